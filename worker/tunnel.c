/*
 * tunnel.c - one tunnel's protocol and relay loop on the connection's
 * thread. poll() watches the client and the target; payload is streamed
 * (client chunks are coalesced into one write, target reads become one
 * binary frame each); a blocked write stops reading the other side, which
 * is the backpressure. Decisions the old servers got wrong:
 *   - binary or DATA: before CONNECT: ERROR:, tunnel ends;
 *   - binary after CONNECT but before CONNECTED: relayed in order (the
 *     connect is synchronous, so those frames wait in the socket);
 *   - a second CONNECT, or an unknown text command: ERROR:, tunnel ends;
 *   - commands are commands only in text frames.
 */
#include "tunnel.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../shared/admission.h"
#include "../shared/config.h"
#include "../shared/jwt.h"
#include "../shared/log.h"
#include "../shared/util.h"
#include "command.h"
#include "conn.h"
#include "routes.h"
#include "stack.h"
#include "target.h"
#include "worker.h"
#include "ws.h"

#define TBUF_SIZE (64 * 1024)	/* one read from the target */
#define OBUF_SIZE (64 * 1024)	/* client payload coalesced per write */
#define LINGER_MS 2000		/* wait for the client's close frame */
/* A tunnel still open this long after setup gives back the stack pages
 * setup touched (stack.c); short-lived tunnels never pay the madvise()
 * and the TLB flush it brings. */
#define SETTLE_MS 500

enum tstate { T_WAIT, T_OPEN, T_DONE };
enum tmode { TX_NONE, TX_BUFFER, TX_STREAM };

struct tunnel {
	struct conn *c;
	struct ws *ws;
	const struct config *cfg;
	struct io tcp;
	enum tstate state;
	enum tmode text;
	char *cmd;
	size_t cmd_len, cmd_cap;
	uint8_t *obuf;
	size_t olen;
	uint8_t *tbuf;
	int64_t last_rx, ping_sent, last_data;
	int opened;		/* reached CONNECTED */
	int64_t settle_at;	/* trim the stack when still open then (0: no) */
};

static void count(struct tunnel *t, enum adm_counter k, uint64_t n)
{
	adm_count(t->c->w->pol->adm, t->c->w->cell, k, n);
}

/* How long a write (or a TLS read) may block before the peer counts as
 * gone. */
int write_timeout_ms(const struct config *cfg)
{
	long ms = (cfg->ping_interval + cfg->ping_timeout) * 1000;

	return ms > 10000 ? (int)ms : 60000;
}

static void finish(struct tunnel *t, const char *why, uint16_t code)
{
	if (t->state == T_DONE)
		return;
	t->state = T_DONE;
	if (atomic_load(&t->c->cut))
		why = "closed at the drain deadline";
	if (t->c->end == NULL)
		t->c->end = why;
	if (code != 0)
		(void)ws_send_close(t->ws, code);
}

static void fail(struct tunnel *t, const char *why, const char *detail)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "ERROR:%s%s%s", why,
			 detail ? ": " : "", detail ? detail : "");

	if (n >= (int)sizeof(msg))
		n = sizeof(msg) - 1;
	log_msg(LOG_WARN, t->c->id, "tunnel refused client=%s target=%s: %s",
		t->c->client, t->c->target, msg + 6);
	(void)ws_send(t->ws, WS_TEXT, msg, (size_t)n);
	finish(t, why, 1000);
}

/* ---- client to target ---- */

/* Writes client payload to the target (what waits in the coalescing
 * buffer, then data, in one sendmsg()) and counts it. */
static void write_target(struct tunnel *t, const void *data, size_t len)
{
	size_t held = t->olen;
	int r = held == 0 ? io_write_all(&t->tcp, data, len, 0)
		: len == 0 ? io_write_all(&t->tcp, t->obuf, held, 0)
			   : io_write2(&t->tcp, t->obuf, held, data, len);

	t->olen = 0;
	if (r < 0) {
		finish(t, errno == EAGAIN ? "target write timeout"
					  : "target write error", 1000);
		return;
	}
	t->c->up += held + len;
	count(t, ADM_C_BYTES_UP, held + len);
	t->last_data = now_ms();
}

static void flush_out(struct tunnel *t)
{
	if (t->olen == 0 || t->state == T_DONE)
		return;
	write_target(t, NULL, 0);
}

static void out_append(struct tunnel *t, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (len >= OBUF_SIZE / 4) {
		/* large: straight from the receive buffer, behind what the
		 * coalescing buffer holds (the end of the previous frame) */
		write_target(t, data, len);
		return;
	}
	while (len > 0 && t->state != T_DONE) {
		size_t room;
		if (t->obuf == NULL && (t->obuf = malloc(OBUF_SIZE)) == NULL) {
			finish(t, "out of memory", 1011);
			return;
		}
		room = OBUF_SIZE - t->olen;
		if (room > len)
			room = len;
		memcpy(t->obuf + t->olen, p, room);
		t->olen += room;
		p += room;
		len -= room;
		if (t->olen == OBUF_SIZE)
			flush_out(t);
	}
}

/* ---- CONNECT ---- */

/* Decodes base64 first data per first_data_base64. Returns the bytes to
 * write (maybe a new allocation in *owned), or NULL with *bad set. */
static const char *first_data(struct tunnel *t, const struct connect_req *r,
			      size_t *len, char **owned, int *bad)
{
	int mode = t->cfg->first_data_base64;
	long n;

	*owned = NULL;
	*bad = 0;
	*len = r->first_len;
	if (r->first_len == 0 || mode == B64_OFF ||
	    (mode == B64_AUTO && !base64_is_strict(r->first, r->first_len)))
		return r->first;
	*owned = malloc(r->first_len / 4 * 3 + 3);
	if (*owned == NULL) {
		*bad = 1;
		return NULL;
	}
	n = base64_decode_strict(r->first, r->first_len,
				 (unsigned char *)*owned);
	if (n < 0) {
		*bad = 1;
		return NULL;
	}
	*len = (size_t)n;
	return *owned;
}

/* A JWT's destination claim narrows where the client may go: the target
 * and any PYIP hosts it names (the operator's own fallback_hosts are not
 * the client's choice). Returns the number of allowed hosts kept. */
static size_t client_hosts_allowed(const struct tunnel *t, const char **hosts,
				   size_t n, int port)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (t->c->claims == NULL ||
		    jwt_dest_allowed(t->c->claims, hosts[i], port))
			hosts[k++] = hosts[i];
	return k;
}

static int open_target(struct tunnel *t, const struct connect_req *r)
{
	char storage[1024];
	const char *hosts[TARGET_MAX_FALLBACKS];
	const char *const *fb = (const char *const *)t->cfg->fallback_hosts.v;
	size_t nfb = t->cfg->fallback_hosts.n;
	struct target_result res;

	if (t->c->claims != NULL &&
	    !jwt_dest_allowed(t->c->claims, r->host, r->port)) {
		count(t, ADM_C_REFUSED_EGRESS, 1);
		fail(t, "destination not allowed by token", t->c->target);
		return -1;
	}
	if (r->pyip != NULL && r->pyip_len > 0) {
		nfb = target_split_hosts(r->pyip, r->pyip_len, storage,
					 sizeof(storage), hosts,
					 TARGET_MAX_FALLBACKS);
		nfb = client_hosts_allowed(t, hosts, nfb, r->port);
		fb = hosts;
	}
	if (target_connect(t->c->w->pol->egress, r->host, r->port, fb, nfb,
			   (int)t->cfg->connect_timeout * 1000, &res) < 0) {
		count(t, res.refused ? ADM_C_REFUSED_EGRESS
				     : ADM_C_CONNECT_ERRORS, 1);
		fail(t, res.refused ? "egress refused" : "connect failed",
		     res.err);
		return -1;
	}
	adm_observe(t->c->w->pol->adm, t->c->w->cell, ADM_H_CONNECT,
		    (double)res.connect_ms / 1000.0);
	t->tcp.fd = res.fd;
	atomic_store(&t->c->tcp_fd, res.fd);
	(void)io_set_timeouts(res.fd, write_timeout_ms(t->cfg), 0);
	log_msg(LOG_DEBUG, t->c->id, "connected target=%s peer=%s via=%s "
		"connect_ms=%ld", t->c->target, res.peer, res.via,
		res.connect_ms);
	return 0;
}

static void do_connect(struct tunnel *t, const char *msg, size_t len)
{
	struct connect_req r;
	const char *why, *data;
	char *owned;
	size_t dlen;
	int bad;

	if (t->state != T_WAIT) {
		fail(t, "already connected", "one CONNECT per WebSocket");
		return;
	}
	why = command_parse_connect(msg, len, &r);
	if (why != NULL) {
		fail(t, "invalid target", why);
		return;
	}
	snprintf(t->c->target, sizeof(t->c->target),
		 strchr(r.host, ':') ? "[%s]:%d" : "%s:%d", r.host, r.port);
	data = first_data(t, &r, &dlen, &owned, &bad);
	if (bad) {
		free(owned);
		fail(t, "invalid first data", "not valid base64");
		return;
	}
	if (open_target(t, &r) < 0) {
		free(owned);
		return;
	}
	if (dlen > 0 && io_write_all(&t->tcp, data, dlen, 0) < 0) {
		free(owned);
		fail(t, "target write failed", strerror(errno));
		return;
	}
	free(owned);
	t->c->up += dlen;
	count(t, ADM_C_BYTES_UP, dlen);
	count(t, ADM_C_TUNNELS_OK, 1);
	t->state = T_OPEN;
	t->opened = 1;
	t->settle_at = now_ms() + SETTLE_MS;	/* connecting went deep */
	t->last_data = now_ms();
	if (ws_send(t->ws, WS_TEXT, "CONNECTED", 9) < 0)
		finish(t, "client write error", 0);
	else
		log_msg(LOG_INFO, t->c->id, "tunnel open client=%s user=%s "
			"target=%s", t->c->client, t->c->user, t->c->target);
}

/* ---- text messages ---- */

static void on_command(struct tunnel *t, const char *msg, size_t len)
{
	switch (command_kind(msg, len)) {
	case CMD_CONNECT:
		do_connect(t, msg, len);
		break;
	case CMD_DATA:
		if (t->state != T_OPEN)
			fail(t, "DATA before CONNECT", NULL);
		else
			out_append(t, msg + COMMAND_DATA_PREFIX,
				   len - COMMAND_DATA_PREFIX);
		break;
	case CMD_CLOSE:
		flush_out(t);	/* what came before CLOSE still goes out */
		finish(t, "client CLOSE", 1000);
		break;
	case CMD_UNKNOWN:
		fail(t, t->state == T_WAIT ? "expected CONNECT"
					   : "unknown command", NULL);
		break;
	}
}

static int cmd_append(struct tunnel *t, const uint8_t *p, size_t n)
{
	if (t->cmd_len + n > (size_t)t->cfg->max_command) {
		log_msg(LOG_WARN, t->c->id, "text command over max_command");
		finish(t, "command over max_command", 1009);
		return -1;
	}
	if (t->cmd_len + n > t->cmd_cap) {
		size_t cap = t->cmd_cap ? t->cmd_cap : 256;
		char *nc;
		while (cap < t->cmd_len + n)
			cap *= 2;
		if ((nc = realloc(t->cmd, cap)) == NULL) {
			finish(t, "out of memory", 1011);
			return -1;
		}
		t->cmd = nc;
		t->cmd_cap = cap;
	}
	memcpy(t->cmd + t->cmd_len, p, n);
	t->cmd_len += n;
	return 0;
}

static void cmd_reset(struct tunnel *t)
{
	free(t->cmd);
	t->cmd = NULL;
	t->cmd_len = t->cmd_cap = 0;
	t->text = TX_NONE;
}

/* A DATA: message on an open tunnel streams straight to the target. */
static void maybe_stream(struct tunnel *t)
{
	if (t->state != T_OPEN || t->cmd_len < COMMAND_DATA_PREFIX ||
	    command_kind(t->cmd, t->cmd_len) != CMD_DATA)
		return;
	out_append(t, t->cmd + COMMAND_DATA_PREFIX,
		   t->cmd_len - COMMAND_DATA_PREFIX);
	cmd_reset(t);
	t->text = TX_STREAM;
}

static void on_text(struct tunnel *t, const struct ws_event *ev)
{
	if (ev->first)
		t->text = TX_BUFFER;
	if (t->text == TX_STREAM) {
		out_append(t, ev->data, ev->len);
	} else {
		if (cmd_append(t, ev->data, ev->len) < 0)
			return;
		if (!ev->last)
			maybe_stream(t);
	}
	if (!ev->last || t->state == T_DONE)
		return;
	if (t->text == TX_BUFFER)
		on_command(t, t->cmd, t->cmd_len);
	cmd_reset(t);
}

static void on_binary(struct tunnel *t, const struct ws_event *ev)
{
	if (t->state != T_OPEN) {
		fail(t, "binary data before CONNECT", NULL);
		return;
	}
	out_append(t, ev->data, ev->len);
}

/* ---- events from the client ---- */

static void on_ws_event(struct tunnel *t, const struct ws_event *ev)
{
	t->last_rx = now_ms();
	t->ping_sent = 0;
	switch (ev->type) {
	case WS_EV_DATA:
		if (ev->opcode == WS_TEXT)
			on_text(t, ev);
		else
			on_binary(t, ev);
		break;
	case WS_EV_PING:
		if (ws_send(t->ws, WS_PONG, ev->data, ev->len) < 0)
			finish(t, "client write error", 0);
		break;
	case WS_EV_PONG:
		break;
	case WS_EV_CLOSE:
		flush_out(t);
		finish(t, "client close frame",
		       ev->code == 1005 ? 1000 : ev->code);
		break;
	case WS_EV_ERROR:
		log_msg(LOG_WARN, t->c->id, "protocol error client=%s: %s",
			t->c->client, ev->reason);
		finish(t, ev->reason, ev->code);
		break;
	case WS_EV_NONE:
		break;
	}
}

static void drain_ws(struct tunnel *t)
{
	struct ws_event ev;

	while (t->state != T_DONE && ws_next(t->ws, &ev) != WS_EV_NONE)
		on_ws_event(t, &ev);
	flush_out(t);
	if (t->olen == 0) {
		/* Flushed: like the other relay buffers, the coalescing buffer
		 * lives only while there is something in it. */
		free(t->obuf);
		t->obuf = NULL;
	}
}

static void on_client_readable(struct tunnel *t)
{
	long n = ws_fill(t->ws);

	if (n <= 0) {
		finish(t, n == 0 ? "client EOF" : "client read error", 0);
		return;
	}
	drain_ws(t);
}

/* ---- target to client ---- */

static void on_target_readable(struct tunnel *t)
{
	ssize_t n;

	if (t->tbuf == NULL && (t->tbuf = malloc(TBUF_SIZE)) == NULL) {
		finish(t, "out of memory", 1011);
		return;
	}
	n = io_read(&t->tcp, t->tbuf, TBUF_SIZE);
	if (n <= 0) {
		(void)ws_send(t->ws, WS_TEXT, "CLOSE", 5);
		finish(t, n == 0 ? "target EOF" : "target read error", 1000);
		return;
	}
	if (ws_send(t->ws, WS_BINARY, t->tbuf, (size_t)n) < 0) {
		finish(t, "client write error", 0);
		return;
	}
	t->c->down += (uint64_t)n;
	count(t, ADM_C_BYTES_DOWN, (uint64_t)n);
	t->last_data = now_ms();
	if (n < TBUF_SIZE / 2) {
		/* Drained: an idle tunnel holds no buffer. */
		free(t->tbuf);
		t->tbuf = NULL;
	}
}

/* ---- timers ---- */

/* Returns the poll timeout in ms until the next timer, acting on any that
 * are due. */
static int timers(struct tunnel *t)
{
	const struct config *cfg = t->cfg;
	int64_t now = now_ms(), next = now + 60000;

	if (cfg->max_lifetime > 0) {
		int64_t at = t->c->start_ms + cfg->max_lifetime * 1000;
		if (now >= at) {
			(void)ws_send(t->ws, WS_TEXT, "CLOSE", 5);
			finish(t, "max lifetime", 1000);
			return 0;
		}
		next = at < next ? at : next;
	}
	if (cfg->idle_timeout > 0) {
		int64_t at = t->last_data + cfg->idle_timeout * 1000;
		if (now >= at) {
			(void)ws_send(t->ws, WS_TEXT, "CLOSE", 5);
			finish(t, "idle timeout", 1000);
			return 0;
		}
		next = at < next ? at : next;
	}
	if (cfg->ping_interval > 0) {
		int64_t at;
		if (t->ping_sent != 0) {
			at = t->ping_sent + cfg->ping_timeout * 1000;
			if (now >= at) {
				finish(t, "ping timeout", 1001);
				return 0;
			}
		} else {
			at = t->last_rx + cfg->ping_interval * 1000;
			if (now >= at) {
				if (ws_send(t->ws, WS_PING, "ech3", 4) < 0) {
					finish(t, "client write error", 0);
					return 0;
				}
				t->ping_sent = now;
				at = now + cfg->ping_timeout * 1000;
			}
		}
		next = at < next ? at : next;
	}
	return (int)(next - now);
}

/* ---- the loop ---- */

static void relay(struct tunnel *t)
{
	while (t->state != T_DONE) {
		struct pollfd p[2] = {
			{ .fd = t->c->io.fd, .events = POLLIN },
			{ .fd = t->tcp.fd, .events = POLLIN },
		};
		int timeout = timers(t), r;

		if (t->state == T_DONE)
			break;
		if (t->settle_at != 0) {
			int64_t left = t->settle_at - now_ms();

			if (left <= 0) {
				stack_trim();
				t->settle_at = 0;
			} else if (left < timeout) {
				timeout = (int)left;
			}
		}
		if (io_pending(&t->c->io))
			timeout = 0;	/* TLS bytes already decrypted */
		r = poll(p, t->tcp.fd >= 0 ? 2 : 1, timeout);
		if (r >= 0 && io_pending(&t->c->io)) {
			p[0].revents |= POLLIN;
			r++;
		}
		if (r < 0 && errno != EINTR) {
			finish(t, "poll error", 1011);
			break;
		}
		if (r == 0)
			t->settle_at = 1;	/* quiet: drop what traffic touched */
		if (r <= 0)
			continue;
		if (p[0].revents != 0)
			on_client_readable(t);
		if (t->state != T_DONE && t->tcp.fd >= 0 && p[1].revents != 0)
			on_target_readable(t);
	}
}

/* After our close frame: stop the target, then give the client a moment
 * to answer with its own close frame so no reset eats our last bytes. */
static void linger(struct tunnel *t)
{
	int64_t deadline = now_ms() + LINGER_MS;
	struct ws_event ev;

	if (t->tcp.fd >= 0)
		(void)shutdown(t->tcp.fd, SHUT_RDWR);
	if (!ws_close_sent(t->ws))
		return;
	(void)shutdown(t->c->io.fd, SHUT_WR);
	for (;;) {
		int64_t left = deadline - now_ms();
		enum ws_event_type e;

		while ((e = ws_next(t->ws, &ev)) != WS_EV_NONE)
			if (e == WS_EV_CLOSE || e == WS_EV_ERROR)
				return;
		if (left <= 0 || io_wait_readable(&t->c->io, (int)left) <= 0 ||
		    ws_fill(t->ws) <= 0)
			return;
	}
}

void tunnel_run(struct conn *c, struct ws *ws)
{
	struct tunnel t;
	const struct config *cfg = c->cfg;

	memset(&t, 0, sizeof(t));
	t.c = c;
	t.ws = ws;
	t.cfg = cfg;
	t.tcp.fd = -1;
	t.state = T_WAIT;
	t.last_rx = t.last_data = now_ms();
	/* The handshake and the token check went deep. */
	t.settle_at = now_ms() + SETTLE_MS;
	/* A peer that stops reading, or a TLS peer that sends half a
	 * record, cannot hold this thread forever. */
	(void)io_set_timeouts(c->io.fd, write_timeout_ms(cfg),
			      write_timeout_ms(cfg));
	if (ws_pending(ws))
		drain_ws(&t);
	relay(&t);
	if (t.tcp.fd >= 0)
		(void)io_set_timeouts(t.tcp.fd, 1000, 0);
	linger(&t);
	cmd_reset(&t);
	free(t.obuf);
	free(t.tbuf);
	if (t.opened)
		adm_observe(c->w->pol->adm, c->w->cell, ADM_H_DURATION,
			    (double)(now_ms() - c->start_ms) / 1000.0);
}
