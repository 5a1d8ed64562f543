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
#include <sys/socket.h>
#include <unistd.h>

#include "../shared/config.h"
#include "../shared/log.h"
#include "../shared/util.h"
#include "../shared/admission.h"
#include "auth.h"
#include "clientaddr.h"
#include "http.h"
#include "proxy.h"
#include "routes.h"
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
	memcpy(&c->client_sa, peer, peer->sa_family == AF_INET6
					    ? sizeof(struct sockaddr_in6)
					    : sizeof(struct sockaddr_in));
	c->ticket.slot = -1;
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
	free(c->claims);
	free(c->subject);
	io_tls_close(&c->io);
	if (c->io.fd >= 0)
		close(c->io.fd);
	free(c);
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

static int send_101(struct conn *c, const char *key, size_t key_len,
		    const char *protocol, size_t protocol_len)
{
	char accept[29], *head;
	size_t cap = 160 + (protocol != NULL ? protocol_len : 0);
	int n, r;

	/* The echoed subprotocol may be a long JWT: size the head for it. */
	if ((head = malloc(cap)) == NULL)
		return -1;
	ws_accept_key(key, key_len, accept);
	n = snprintf(head, cap,
		     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
		     accept);
	if (protocol != NULL)
		n += snprintf(head + n, cap - (size_t)n,
			      "Sec-WebSocket-Protocol: %.*s\r\n",
			      (int)protocol_len, protocol);
	n += snprintf(head + n, cap - (size_t)n, "\r\n");
	r = io_write_all(&c->io, head, (size_t)n, 0);
	free(head);
	return r;
}

static void refuse_json(struct conn *c, const char *status,
			const char *extra, const char *body)
{
	respond(c, status, "application/json", extra, body, strlen(body));
}

/* Authenticates; on refusal answers 401 and returns -1. */
static int authenticate(struct conn *c, const struct http_request *req,
			struct auth_result *auth)
{
	char body[128];

	if (auth_check(c->cfg, c->w->pol->jwt, req, auth) == 0) {
		snprintf(c->user, sizeof(c->user), "%s", auth->user);
		c->claims = auth->claims;
		c->jwt = auth->jwt;
		if (c->jwt && (c->subject = strdup(auth->subject)) == NULL) {
			refuse_json(c, "503 Service Unavailable", NULL,
				    "{\"error\":\"out of memory\"}");
			c->end = "out of memory";
			return -1;
		}
		return 0;
	}
	adm_count(c->w->pol->adm, c->w->cell, ADM_C_REFUSED_AUTH, 1);
	adm_count(c->w->pol->adm, c->w->cell,
		  ADM_C_AUTH_REASON0 + auth_reason_index(auth->reason), 1);
	if (auth->jwt)
		snprintf(body, sizeof(body),
			 "{\"error\":\"unauthorized\",\"reason\":\"%s\"}",
			 auth->reason);
	else
		snprintf(body, sizeof(body), "{\"error\":\"unauthorized\"}");
	refuse_json(c, "401 Unauthorized", NULL, body);
	log_msg(LOG_WARN, c->id, "auth refused client=%s user=%s reason=%s",
		c->client, auth->jwt ? auth->user : "-", auth->reason);
	c->end = "auth refused";
	return -1;
}

/* Takes a slot in the shared admission region; on refusal answers 429
 * (or 503 when the region is busy) and returns -1. */
static int admit(struct conn *c)
{
	long retry = 1;
	char extra[64];
	enum adm_verdict v;

	v = adm_admit(c->w->pol->adm, c->w->cell,
		      (const struct sockaddr *)&c->client_sa,
		      c->subject,
		      &c->ticket, &retry);
	if (v == ADM_OK) {
		if (c->ticket.flags != 0)
			log_warn("admission table full: client %s admitted "
				 "without per-address or per-subject "
				 "accounting", c->client);
		return 0;
	}
	snprintf(extra, sizeof(extra), "Retry-After: %ld\r\n", retry < 1 ? 1 : retry);
	if (v == ADM_BUSY)
		refuse_json(c, "503 Service Unavailable", extra,
			    "{\"error\":\"admission busy\"}");
	else if (v == ADM_FULL)
		refuse_json(c, "429 Too Many Requests", extra,
			    "{\"error\":\"too many connections\"}");
	else
		refuse_json(c, "429 Too Many Requests", extra,
			    v == ADM_RATE_IP || v == ADM_RATE_GLOBAL
				    ? "{\"error\":\"too many new connections\"}"
				    : "{\"error\":\"too many connections\"}");
	log_msg(LOG_WARN, c->id, "admission refused client=%s user=%s "
		"limit=%s", c->client, c->user, adm_verdict_name(v));
	c->end = "admission refused";
	return -1;
}

/* Handles an upgrade request; returns the WebSocket on success (and the
 * opened fixed target in *proxy when target_url is set). */
static struct ws *upgrade(struct conn *c, struct request_buf *rb,
			  struct proxy **proxy)
{
	const char *key = NULL, *proto;
	size_t key_len = 0, plen;
	struct auth_result auth;
	struct ws *ws;

	switch (http_check_upgrade(&rb->req, &key, &key_len)) {
	case UPGRADE_NONE:
		routes_plain(c, &rb->req);
		return NULL;
	case UPGRADE_BAD:
		respond(c, "400 Bad Request", "text/plain", NULL,
			"bad websocket upgrade request\n", 30);
		c->end = "bad upgrade";
		return NULL;
	case UPGRADE_VERSION:
		respond(c, "426 Upgrade Required", "text/plain",
			"Sec-WebSocket-Version: 13\r\n",
			"unsupported websocket version\n", 30);
		c->end = "bad websocket version";
		return NULL;
	case UPGRADE_OK:
		break;
	}
	if (c->kind == LISTEN_METRICS) {
		respond(c, "404 Not Found", "text/plain", NULL, "not found\n", 10);
		c->end = "http";
		return NULL;
	}
	if (authenticate(c, &rb->req, &auth) < 0 || admit(c) < 0)
		return NULL;
	proto = auth.protocol;
	plen = auth.protocol_len;
	if (c->cfg->target_url[0] != '\0' &&
	    proxy_open(c, &rb->req, &auth, proxy, &proto, &plen) < 0) {
		adm_release(c->w->pol->adm, &c->ticket);
		return NULL;
	}
	ws = ws_new(&c->io, (uint64_t)c->cfg->max_message);
	c->upgraded = 1;
	if (ws == NULL || send_101(c, key, key_len, proto, plen) < 0 ||
	    ws_prime(ws, rb->data + rb->head_len,
		     rb->len - (size_t)rb->head_len) < 0) {
		ws_free(ws);
		c->end = "upgrade failed";
		return NULL;
	}
	return ws;
}

/* The access line, when a tunnel ends: never a token or payload. */
static void log_access(const struct conn *c)
{
	log_msg(LOG_INFO, c->id, "access client=%s user=%s target=%s up=%llu "
		"down=%llu dur_ms=%lld end=\"%s\"", c->client, c->user,
		c->target, (unsigned long long)c->up,
		(unsigned long long)c->down,
		(long long)(now_ms() - c->start_ms), c->end ? c->end : "-");
}

static void serve(struct conn *c)
{
	const struct config *cfg = c->cfg;
	struct request_buf rb;
	struct proxy *proxy = NULL;
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
	if (c->kind == LISTEN_TLS && io_tls_accept(&c->io, c->w->pol->tls_ctx, c->start_ms +
				    cfg->handshake_timeout * 1000, &c->end) < 0)
		goto out;
	status = read_head(c, &rb);
	if (status == 400) {
		respond(c, "400 Bad Request", "text/plain", NULL,
			"malformed request\n", 18);
		c->end = "malformed request";
	} else if (status == 431) {
		respond(c, "431 Request Header Fields Too Large", "text/plain",
			NULL, "request header too large\n", 25);
		c->end = "request header too large";
	}
	if (status != 0)
		goto out;
	clientaddr_resolve(c->w->pol->trusted, (struct sockaddr *)&c->client_sa,
			   &rb.req, &c->client_sa, c->client, sizeof(c->client));
	ws = upgrade(c, &rb, &proxy);
	free(rb.data);
	free(rb.headers);
	rb.data = NULL;
	rb.headers = NULL;
	if (ws != NULL) {
		if (proxy != NULL)
			proxy_run(c, ws, proxy);
		else
			tunnel_run(c, ws);
		ws_free(ws);
		log_access(c);
	}
	proxy_free(proxy);
	adm_release(c->w->pol->adm, &c->ticket);
out:
	free(rb.data);
	free(rb.headers);
}

/* After an HTTP answer without an upgrade: stop writing, then read and
 * drop what the client still sends (bounded in time and bytes) before
 * closing, so the kernel does not answer unread bytes with a reset that
 * can destroy the response in flight (a 431 to a huge request). */
static void linger_close(struct conn *c)
{
	int64_t deadline = now_ms() + 1000;
	size_t budget = 1024 * 1024;
	char buf[2048];

	if (shutdown(c->io.fd, SHUT_WR) < 0)
		return;
	while (budget > 0) {
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || io_wait_readable(&c->io, (int)left) <= 0)
			return;
		n = io_read(&c->io, buf, sizeof(buf));
		if (n <= 0)
			return;
		budget -= (size_t)n < budget ? (size_t)n : budget;
	}
}

void conn_run(struct conn *c)
{
	struct worker *w = c->w;

	serve(c);
	if (!c->upgraded && c->io.ssl == NULL && c->end != NULL &&
	    strcmp(c->end, "handshake timeout") != 0)
		linger_close(c);
	if (c->end == NULL)
		c->end = "closed";
	worker_conn_end(w, c);
}
