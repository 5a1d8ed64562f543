/*
 * proxy.h - fixed targets (target_url): every authenticated WebSocket is
 * piped to one TCP service (tcp://), or reverse-proxied to a WebSocket
 * backend (ws://, wss://) message by message, keeping types, pings, pongs
 * and close codes. The backend is opened before the client's 101, so a
 * dead backend is a 502, not a WebSocket that closes at once.
 */
#ifndef ECH3_PROXY_H
#define ECH3_PROXY_H

#include <stddef.h>

struct conn;
struct http_request;
struct auth_result;
struct proxy;
struct ws;

/* Opens the backend for c. On success returns 0 with *out set and
 * *protocol / *plen the subprotocol to echo in the 101 (may be NULL). On
 * failure answers the client (502) itself and returns -1. */
int proxy_open(struct conn *c, const struct http_request *req,
	       const struct auth_result *auth, struct proxy **out,
	       const char **protocol, size_t *plen);

/* Relays until either side ends; logs the access line. */
void proxy_run(struct conn *c, struct ws *ws, struct proxy *p);

void proxy_free(struct proxy *p);

#endif
