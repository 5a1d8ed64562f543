/*
 * proxy.c - fixed targets. tcp://: binary and text payload go to the
 * service as bytes, its bytes come back as binary frames, its EOF closes
 * the WebSocket with 1000. ws:// and wss://: ech3 opens its own WebSocket
 * (wslay frames, client role) to the backend, forwarding the subprotocols
 * the client offered other than the one carrying its credential, and
 * relays each message chunk by chunk keeping its type; pings, pongs and
 * close frames (code and reason) pass through both ways.
 */
#include "proxy.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../shared/admission.h"
#include "../shared/config.h"
#include "../shared/log.h"
#include "../shared/url.h"
#include "../shared/util.h"
#include "auth.h"
#include "conn.h"
#include "http.h"
#include "routes.h"
#include "target.h"
#include "tunnel.h"
#include "worker.h"
#include "ws.h"

#define PBUF_SIZE (64 * 1024)
#define RESP_MAX 8192

struct proxy {
	struct url url;
	struct io io;		/* the backend */
	struct ws *bws;		/* ws/wss: the backend WebSocket */
	char protocol[256];	/* subprotocol the backend chose */
	char *leftover;		/* bytes after the backend's 101 */
	size_t nleftover;
};

static void count(struct conn *c, enum adm_counter k, uint64_t n)
{
	adm_count(c->w->pol->adm, c->w->cell, k, n);
}

static void bad_gateway(struct conn *c, const char *why)
{
	static const char body[] = "{\"error\":\"bad gateway\"}";

	log_msg(LOG_WARN, c->id, "target_url unavailable client=%s: %s",
		c->client, why);
	respond(c, "502 Bad Gateway", "application/json", NULL, body,
		sizeof(body) - 1);
	c->end = "bad gateway";
}

/* ---- opening the backend ---- */

static int tls_connect(struct conn *c, struct proxy *p, char *err,
		       size_t errlen)
{
	SSL *ssl = SSL_new(c->w->pol->upstream_ctx);
	int ms = (int)c->cfg->connect_timeout * 1000;

	if (ssl == NULL || SSL_set_fd(ssl, p->io.fd) != 1) {
		SSL_free(ssl);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p->io.ssl = ssl;
	/* An IP literal is checked against IP subjectAltNames and is not
	 * sent as SNI (RFC 6066); a name is both. */
	if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), p->url.host) != 1 &&
	    (SSL_set_tlsext_host_name(ssl, p->url.host) != 1 ||
	     SSL_set1_host(ssl, p->url.host) != 1)) {
		snprintf(err, errlen, "cannot set the expected host name");
		return -1;
	}
	(void)io_set_timeouts(p->io.fd, ms, ms);
	if (SSL_connect(ssl) != 1) {
		long v = SSL_get_verify_result(ssl);
		snprintf(err, errlen, "TLS to %.100s failed: %.80s", p->url.hostport,
			 v != X509_V_OK ? X509_verify_cert_error_string(v)
					: "handshake error");
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* The client's offered subprotocols minus the one that carried its
 * credential, comma-separated into out. */
static void forward_protocols(const struct http_request *req,
			      const struct auth_result *auth, char *out,
			      size_t size)
{
	const struct http_header *h =
		http_header_get(req, "Sec-WebSocket-Protocol");
	size_t n = 0, pos = 0, len;
	const char *item;

	out[0] = '\0';
	if (h == NULL || (auth->in_protocol && auth->protocol == h->value &&
			  auth->protocol_len == h->value_len))
		return;	/* none, or the whole header was the credential */
	while (list_next(h->value, h->value_len, &pos, &item, &len)) {
		if (auth->in_protocol && auth->protocol == item &&
		    auth->protocol_len == len)
			continue;
		if (n + len + 3 > size)
			return;
		n += (size_t)snprintf(out + n, size - n, "%s%.*s", n ? ", " : "",
				      (int)len, item);
	}
}

static int read_response(struct conn *c, struct proxy *p, char *buf,
			 long *head, size_t *len)
{
	int64_t deadline = now_ms() + c->cfg->connect_timeout * 1000;
	struct http_header hdrs[64];
	struct http_request resp;
	int status = 0;

	*len = 0;
	for (;;) {
		int64_t left = deadline - now_ms();
		ssize_t n;

		*head = http_parse_response(buf, *len, &resp, hdrs, 64, &status);
		if (*head > 0 || *head < 0)
			break;
		if (*len == RESP_MAX || left <= 0 ||
		    io_wait_readable(&p->io, (int)left) <= 0)
			return -1;
		n = io_read(&p->io, buf + *len, RESP_MAX - *len);
		if (n <= 0)
			return -1;
		*len += (size_t)n;
	}
	return *head > 0 && status == 101 ? 0 : -1;
}

static int check_accept(struct proxy *p, const char *buf, long head,
			const char *key)
{
	struct http_header hdrs[64];
	struct http_request resp;
	const struct http_header *h;
	char want[29];
	int status;

	if (http_parse_response(buf, (size_t)head, &resp, hdrs, 64, &status) <= 0)
		return -1;
	ws_accept_key(key, 24, want);
	h = http_header_get(&resp, "Sec-WebSocket-Accept");
	if (h == NULL || h->value_len != 28 || memcmp(h->value, want, 28) != 0)
		return -1;
	h = http_header_get(&resp, "Sec-WebSocket-Protocol");
	if (h != NULL && h->value_len < sizeof(p->protocol))
		snprintf(p->protocol, sizeof(p->protocol), "%.*s",
			 (int)h->value_len, h->value);
	return 0;
}

static int ws_handshake(struct conn *c, struct proxy *p,
			const struct http_request *req,
			const struct auth_result *auth, char *err, size_t errlen)
{
	unsigned char raw[16];
	char key[25], protos[512], line[1200], *buf;
	size_t len;
	long head;
	int n;

	if (random_bytes(raw, sizeof(raw)) < 0)
		return snprintf(err, errlen, "no randomness"), -1;
	base64_encode(raw, sizeof(raw), key);
	forward_protocols(req, auth, protos, sizeof(protos));
	n = snprintf(line, sizeof(line),
		     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		     "Sec-WebSocket-Version: 13\r\nUser-Agent: ech3/" ECH3_VERSION
		     "\r\n%s%s%s\r\n", p->url.path, p->url.hostport, key,
		     protos[0] ? "Sec-WebSocket-Protocol: " : "", protos,
		     protos[0] ? "\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(line) ||
	    io_write_all(&p->io, line, (size_t)n, 0) < 0)
		return snprintf(err, errlen, "cannot send the upgrade"), -1;
	if ((buf = malloc(RESP_MAX)) == NULL)
		return snprintf(err, errlen, "out of memory"), -1;
	if (read_response(c, p, buf, &head, &len) < 0 ||
	    check_accept(p, buf, head, key) < 0) {
		free(buf);
		return snprintf(err, errlen, "the backend refused the "
				"WebSocket upgrade"), -1;
	}
	p->bws = ws_new_client(&p->io, (uint64_t)c->cfg->max_message);
	if (p->bws == NULL ||
	    ws_prime(p->bws, buf + head, len - (size_t)head) < 0) {
		free(buf);
		return snprintf(err, errlen, "out of memory"), -1;
	}
	free(buf);
	return 0;
}

int proxy_open(struct conn *c, const struct http_request *req,
	       const struct auth_result *auth, struct proxy **out,
	       const char **protocol, size_t *plen)
{
	struct proxy *p = calloc(1, sizeof(*p));
	struct target_result res;
	const char *why = NULL;
	char err[200];

	*out = NULL;
	if (p == NULL || url_parse(c->cfg->target_url, &p->url, &why) < 0) {
		free(p);
		bad_gateway(c, why != NULL ? why : "out of memory");
		return -1;
	}
	p->io.fd = -1;
	snprintf(c->target, sizeof(c->target), "%s", c->cfg->target_url);
	if (target_connect(c->w->pol->egress, p->url.host, p->url.port, NULL, 0,
			   (int)c->cfg->connect_timeout * 1000, &res) < 0) {
		count(c, res.refused ? ADM_C_REFUSED_EGRESS
				     : ADM_C_CONNECT_ERRORS, 1);
		bad_gateway(c, res.err);
		free(p);
		return -1;
	}
	p->io.fd = res.fd;
	atomic_store(&c->tcp_fd, res.fd);
	adm_observe(c->w->pol->adm, c->w->cell, ADM_H_CONNECT,
		    (double)res.connect_ms / 1000.0);
	if ((p->url.scheme == URL_WSS && tls_connect(c, p, err, sizeof(err)) < 0) ||
	    (p->url.scheme != URL_TCP &&
	     ws_handshake(c, p, req, auth, err, sizeof(err)) < 0)) {
		count(c, ADM_C_CONNECT_ERRORS, 1);
		bad_gateway(c, err);
		proxy_free(p);
		return -1;
	}
	*protocol = auth->protocol;
	*plen = auth->protocol_len;
	if (p->protocol[0] != '\0') {
		*protocol = p->protocol;
		*plen = strlen(p->protocol);
	}
	count(c, ADM_C_TUNNELS_OK, 1);
	*out = p;
	return 0;
}

void proxy_free(struct proxy *p)
{
	if (p == NULL)
		return;
	ws_free(p->bws);
	io_tls_close(&p->io);
	/* the socket itself is c->tcp_fd, closed with the connection */
	free(p->leftover);
	free(p);
}

/* ---- relaying ---- */

struct relay {
	struct conn *c;
	struct ws *ws;		/* the client */
	struct proxy *p;
	int done;
	uint8_t *buf;		/* tcp:// reads */
};

static void end(struct relay *r, const char *why)
{
	if (!r->done && r->c->end == NULL)
		r->c->end = atomic_load(&r->c->cut) ? "closed at the drain deadline"
						     : why;
	r->done = 1;
}

/* Forwards one event from one side to the other (ws/wss). */
static void forward(struct relay *r, const struct ws_event *ev,
		    struct ws *to, int from_client)
{
	uint64_t *bytes = from_client ? &r->c->up : &r->c->down;
	int ok = 0;

	switch (ev->type) {
	case WS_EV_DATA:
		ok = ws_send_frame(to, ev->first ? ev->opcode : WS_CONT,
				   ev->last, ev->data, ev->len);
		*bytes += ev->len;
		count(r->c, from_client ? ADM_C_BYTES_UP : ADM_C_BYTES_DOWN,
		      ev->len);
		break;
	case WS_EV_PING:
	case WS_EV_PONG:
		ok = ws_send(to, ev->type == WS_EV_PING ? WS_PING : WS_PONG,
			     ev->data, ev->len);
		break;
	case WS_EV_CLOSE:
		(void)ws_send_close_reason(to, ev->code == 1005 ? 1000 : ev->code,
					   ev->len > 2 ? ev->data + 2 : NULL,
					   ev->len > 2 ? ev->len - 2 : 0);
		(void)ws_send_close_reason(from_client ? r->ws : r->p->bws,
					   ev->code == 1005 ? 1000 : ev->code,
					   NULL, 0);
		end(r, from_client ? "client close frame" : "backend close frame");
		return;
	case WS_EV_ERROR:
		log_msg(LOG_WARN, r->c->id, "protocol error from %s: %s",
			from_client ? "client" : "backend", ev->reason);
		(void)ws_send_close(from_client ? r->ws : r->p->bws, ev->code);
		(void)ws_send_close(to, 1011);
		end(r, ev->reason);
		return;
	case WS_EV_NONE:
		return;
	}
	if (ok < 0)
		end(r, from_client ? "backend write error" : "client write error");
}

/* tcp://: client payload (binary or text) becomes bytes. */
static void client_to_tcp(struct relay *r, const struct ws_event *ev)
{
	switch (ev->type) {
	case WS_EV_DATA:
		if (ev->len > 0 && io_write_all(&r->p->io, ev->data, ev->len, 0) < 0) {
			(void)ws_send_close(r->ws, 1011);
			end(r, "target write error");
			return;
		}
		r->c->up += ev->len;
		count(r->c, ADM_C_BYTES_UP, ev->len);
		break;
	case WS_EV_PING:
		if (ws_send(r->ws, WS_PONG, ev->data, ev->len) < 0)
			end(r, "client write error");
		break;
	case WS_EV_PONG:
	case WS_EV_NONE:
		break;
	case WS_EV_CLOSE:
		(void)ws_send_close(r->ws, ev->code == 1005 ? 1000 : ev->code);
		end(r, "client close frame");
		break;
	case WS_EV_ERROR:
		log_msg(LOG_WARN, r->c->id, "protocol error client=%s: %s",
			r->c->client, ev->reason);
		(void)ws_send_close(r->ws, ev->code);
		end(r, ev->reason);
		break;
	}
}

static void drain(struct relay *r, struct ws *from, int from_client)
{
	struct ws_event ev;

	while (!r->done && ws_next(from, &ev) != WS_EV_NONE) {
		if (r->p->url.scheme == URL_TCP)
			client_to_tcp(r, &ev);
		else
			forward(r, &ev, from_client ? r->p->bws : r->ws,
				from_client);
	}
}

static void on_readable(struct relay *r, int client)
{
	struct ws *from = client ? r->ws : r->p->bws;
	ssize_t n;

	if (client || r->p->url.scheme != URL_TCP) {
		long got = ws_fill(from);
		if (got <= 0) {
			if (client)
				(void)ws_send_close(r->p->bws ? r->p->bws : r->ws,
						    1001);
			else
				(void)ws_send_close(r->ws, 1011);
			end(r, client ? "client EOF" : "backend EOF");
			return;
		}
		drain(r, from, client);
		return;
	}
	if (r->buf == NULL && (r->buf = malloc(PBUF_SIZE)) == NULL) {
		end(r, "out of memory");
		return;
	}
	n = io_read(&r->p->io, r->buf, PBUF_SIZE);
	if (n <= 0) {
		(void)ws_send_close(r->ws, 1000);
		end(r, n == 0 ? "target EOF" : "target read error");
		return;
	}
	if (ws_send(r->ws, WS_BINARY, r->buf, (size_t)n) < 0) {
		end(r, "client write error");
		return;
	}
	r->c->down += (uint64_t)n;
	count(r->c, ADM_C_BYTES_DOWN, (uint64_t)n);
}

void proxy_run(struct conn *c, struct ws *ws, struct proxy *p)
{
	struct relay r = { c, ws, p, 0, NULL };
	int wto = write_timeout_ms(c->cfg);

	(void)io_set_timeouts(c->io.fd, wto, wto);
	(void)io_set_timeouts(p->io.fd, wto, wto);
	if (ws_pending(ws))
		drain(&r, ws, 1);
	if (p->bws != NULL && ws_pending(p->bws))
		drain(&r, p->bws, 0);
	while (!r.done) {
		struct pollfd f[2] = {
			{ .fd = c->io.fd, .events = POLLIN },
			{ .fd = p->io.fd, .events = POLLIN },
		};
		int timeout = io_pending(&c->io) || io_pending(&p->io) ? 0 : 60000;
		int n = poll(f, 2, timeout);

		if (n < 0 && errno != EINTR)
			break;
		if (io_pending(&c->io))
			f[0].revents |= POLLIN;
		if (io_pending(&p->io))
			f[1].revents |= POLLIN;
		if (f[0].revents != 0)
			on_readable(&r, 1);
		if (!r.done && f[1].revents != 0)
			on_readable(&r, 0);
	}
	free(r.buf);
	(void)shutdown(p->io.fd, SHUT_RDWR);
}
