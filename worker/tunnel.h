/*
 * tunnel.h - the tunnel protocol on an upgraded WebSocket: wait for
 * CONNECT, open the target, answer CONNECTED or ERROR:, then relay bytes
 * both ways with backpressure until either side ends, and log the access
 * line.
 */
#ifndef ECH3_TUNNEL_H
#define ECH3_TUNNEL_H

struct conn;
struct config;
struct ws;

/* How long a blocking write or TLS read may wait before the peer counts
 * as gone: ping_interval + ping_timeout, at least 10 s (60 s when that
 * is shorter). */
int write_timeout_ms(const struct config *cfg);

/* Runs the tunnel to its end. The connection's sockets are closed by the
 * caller. */
void tunnel_run(struct conn *c, struct ws *ws);

#endif
