/*
 * conn.c - the life of one client connection, top to bottom:
 * read the request head (size and time bounded), answer plain HTTP,
 * check the upgrade, authenticate, send the 101, run the tunnel, log.
 */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shared/config.h"
#include "../shared/log.h"
#include "../shared/util.h"
#include "auth.h"
#include "http.h"
#include "tunnel.h"
#include "worker.h"
#include "ws.h"

struct request_buf {
	char *data;
	size_t len, cap;
	long head_len;
	struct http_request req;
	struct http_header *headers;
};

struct conn *conn_new(struct worker *w, int fd, const struct sockaddr *peer)
{
	struct conn *c = calloc(1, sizeof(*c));
	unsigned id;

	if (c == NULL)
		return NULL;
	c->w = w;
	c->cfg = w->cfg;
	c->io.fd = fd;
	c->tcp_fd = -1;
	id = w->id_base + atomic_fetch_add(&w->next_id, 1);
	snprintf(c->id, sizeof(c->id), "%08x", id);
	sockaddr_format(peer, c->client, sizeof(c->client));
	snprintf(c->user, sizeof(c->user), "-");
	snprintf(c->target, sizeof(c->target), "-");
	c->start_ms = now_ms();
	return c;
}

void conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->tcp_fd >= 0)
		close(c->tcp_fd);
	io_tls_close(&c->io);
	if (c->io.fd >= 0)
		close(c->io.fd);
	free(c);
}

static void respond(struct conn *c, const char *status, const char *ctype,
		    const char *extra, const char *body)
{
	char head[512];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %s\r\nServer: ech3\r\nContent-Type: %s\r\n"
		     "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
		     status, ctype, strlen(body), extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return;
	if (io_write_all(&c->io, head, (size_t)n, 1) == 0)
		(void)io_write_all(&c->io, body, strlen(body), 0);
}

static void respond_json(struct conn *c, const char *status,
			 const char *extra, const char *body)
{
	respond(c, status, "application/json", extra, body);
}

/* Reads until a whole request head is in rb. Returns 0, or an HTTP status
 * to answer (400, 431), or -1 to just close (timeout, EOF, error). */
static int read_head(struct conn *c, struct request_buf *rb)
{
	const struct config *cfg = c->cfg;
	int64_t deadline = c->start_ms + cfg->handshake_timeout * 1000;

	for (;;) {
		long r = http_parse_request(rb->data, rb->len, &rb->req,
					    rb->headers, (size_t)cfg->max_headers);
		int64_t left;
		ssize_t n;

		if (r > 0) {
			rb->head_len = r;
			return 0;
		}
		if (r == HTTP_BAD)
			return 400;
		if (r == HTTP_TOO_LARGE || rb->len == rb->cap)
			return 431;
		left = deadline - now_ms();
		if (left <= 0 || io_wait_readable(&c->io, (int)left) <= 0) {
			c->end = "handshake timeout";
			return -1;
		}
		n = io_read(&c->io, rb->data + rb->len, rb->cap - rb->len);
		if (n <= 0) {
			c->end = n == 0 ? "client EOF in handshake"
					: "read error in handshake";
			return -1;
		}
		rb->len += (size_t)n;
	}
}

static void answer_plain(struct conn *c, const struct http_request *req)
{
	size_t plen = http_path_len(req);
	int is_get = req->method_len == 3 && memcmp(req->method, "GET", 3) == 0;

	if (is_get && plen == 1 && req->target[0] == '/') {
		respond(c, "200 OK", "text/plain", NULL, "ech3 tunnel server OK\n");
		c->end = "http 200";
	} else {
		respond(c, "404 Not Found", "text/plain", NULL, "not found\n");
		c->end = "http 404";
	}
}

static int send_101(struct conn *c, const char *key, size_t key_len,
		    const struct auth_result *auth)
{
	char accept[29], head[512];
	int n;

	ws_accept_key(key, key_len, accept);
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
		     accept);
	if (auth->protocol != NULL && auth->protocol_len < 400 - (size_t)n)
		n += snprintf(head + n, sizeof(head) - (size_t)n,
			      "Sec-WebSocket-Protocol: %.*s\r\n",
			      (int)auth->protocol_len, auth->protocol);
	n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	return io_write_all(&c->io, head, (size_t)n, 0);
}

/* Handles an upgrade request; returns the WebSocket on success. */
static struct ws *upgrade(struct conn *c, struct request_buf *rb)
{
	const char *key = NULL;
	size_t key_len = 0;
	struct auth_result auth;
	struct ws *ws;

	switch (http_check_upgrade(&rb->req, &key, &key_len)) {
	case UPGRADE_NONE:
		answer_plain(c, &rb->req);
		return NULL;
	case UPGRADE_BAD:
		respond(c, "400 Bad Request", "text/plain", NULL,
			"bad websocket upgrade request\n");
		c->end = "bad upgrade";
		return NULL;
	case UPGRADE_VERSION:
		respond(c, "426 Upgrade Required", "text/plain",
			"Sec-WebSocket-Version: 13\r\n",
			"unsupported websocket version\n");
		c->end = "bad websocket version";
		return NULL;
	case UPGRADE_OK:
		break;
	}
	if (auth_check(c->cfg, &rb->req, &auth) < 0) {
		respond_json(c, "401 Unauthorized", NULL,
			     "{\"error\":\"unauthorized\"}");
		log_msg(LOG_WARN, c->id, "auth refused client=%s reason=%s",
			c->client, auth.reason);
		c->end = "auth refused";
		return NULL;
	}
	snprintf(c->user, sizeof(c->user), "%s", auth.user);
	ws = ws_new(&c->io, (uint64_t)c->cfg->max_message);
	if (ws == NULL || send_101(c, key, key_len, &auth) < 0 ||
	    ws_prime(ws, rb->data + rb->head_len,
		     rb->len - (size_t)rb->head_len) < 0) {
		ws_free(ws);
		c->end = "upgrade failed";
		return NULL;
	}
	return ws;
}

static void serve(struct conn *c)
{
	const struct config *cfg = c->cfg;
	struct request_buf rb;
	struct ws *ws;
	int status;

	memset(&rb, 0, sizeof(rb));
	rb.cap = (size_t)cfg->max_header_bytes;
	rb.data = malloc(rb.cap);
	rb.headers = calloc((size_t)cfg->max_headers, sizeof(*rb.headers));
	if (rb.data == NULL || rb.headers == NULL) {
		c->end = "out of memory";
		goto out;
	}
	if (c->tls && io_tls_accept(&c->io, c->w->tls_ctx, c->start_ms +
				    cfg->handshake_timeout * 1000, &c->end) < 0)
		goto out;
	status = read_head(c, &rb);
	if (status == 400) {
		respond(c, "400 Bad Request", "text/plain", NULL,
			"malformed request\n");
		c->end = "malformed request";
	} else if (status == 431) {
		respond(c, "431 Request Header Fields Too Large", "text/plain",
			NULL, "request header too large\n");
		c->end = "request header too large";
	}
	if (status != 0)
		goto out;
	ws = upgrade(c, &rb);
	free(rb.data);
	free(rb.headers);
	rb.data = NULL;
	rb.headers = NULL;
	if (ws != NULL) {
		tunnel_run(c, ws);
		ws_free(ws);
	}
out:
	free(rb.data);
	free(rb.headers);
}

void *conn_thread(void *arg)
{
	struct conn *c = arg;
	struct worker *w = c->w;

	serve(c);
	if (c->end == NULL)
		c->end = "closed";
	worker_unregister(w, c);
	conn_free(c);
	return NULL;
}
