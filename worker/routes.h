/*
 * routes.h - plain HTTP on the listeners: `/` (200, as the old server),
 * `/healthz` and `/readyz` (always, without auth), `/metrics` (with
 * metrics_token on the main listener, or openly on metrics_listen), and
 * the response writer every refusal uses.
 */
#ifndef ECH3_ROUTES_H
#define ECH3_ROUTES_H

#include <stddef.h>

struct conn;
struct http_request;

/* Writes a whole response with Content-Length and Connection: close.
 * extra is NULL or header lines ending in CRLF. */
void respond(struct conn *c, const char *status, const char *ctype,
	     const char *extra, const char *body, size_t len);

/* Answers a request that is not a WebSocket upgrade. */
void routes_plain(struct conn *c, const struct http_request *req);

/* 1 when the server can take more clients (for /readyz). */
int routes_ready(const struct conn *c);

#endif
