/*
 * ws.c - WebSocket framing for one connection. A server frame is a 2-10
 * byte header written with its payload in one sendmsg(); ech3's own
 * client side (ws:// backends), which must mask, uses wslay's frame layer
 * (wslay_frame_send). Receiving parses frame headers here and
 * unmasks the payload in place in the receive buffer, eight bytes at a
 * time, handing the caller chunks that point into that buffer: profiling
 * the relay showed wslay_frame_recv (which copies into a 4 KiB buffer and
 * unmasks a byte at a time) taking 61% of a worker's CPU client-to-target.
 * wslay's event layer is not used either: it validates UTF-8 in text
 * messages (real clients of this protocol send raw bytes) and buffers
 * whole messages. Only control frames (<= 125 bytes) are assembled.
 */
#include "ws.h"

#include <arpa/inet.h>
/* SHA1_Init() and friends are deprecated in OpenSSL 3 in favour of EVP,
 * but EVP_Digest() fetches the algorithm through the provider machinery,
 * which pages over a megabyte of libcrypto into every worker for one
 * 20-byte hash per handshake. The low-level functions are the same
 * implementation without it. */
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "../shared/util.h"

#define WS_RBUF_SIZE (64 * 1024)

struct ws {
	struct io *io;
	wslay_frame_context_ptr frame;
	uint64_t max_message;

	/* receive buffer: bytes read from the socket, not yet given to
	 * wslay; allocated while there are such bytes */
	uint8_t *rbuf;
	size_t rpos, rlen, rcap;

	/* the frame being received */
	int in_frame;
	uint8_t f_opcode, f_fin, f_masked;
	uint8_t f_key[4];
	uint64_t f_len, f_off;

	/* the data message being received */
	int in_msg;
	enum ws_opcode m_opcode;
	uint64_t m_len;
	int m_first;

	/* a control frame's payload */
	uint8_t ctrl[125];
	size_t ctrl_len;

	int send_failed;
	int close_sent;
	int broken;		/* a protocol error was reported: parse no more */
	int client;		/* ech3's own client side: masks, expects unmasked */
};

/* wslay never reads here: ech3 parses incoming frames itself. */
static ssize_t recv_cb(uint8_t *buf, size_t len, int flags, void *user)
{
	(void)buf;
	(void)len;
	(void)flags;
	(void)user;
	return 0;
}

static ssize_t send_cb(const uint8_t *data, size_t len, int flags, void *user)
{
	struct ws *ws = user;

	if (ws->send_failed ||
	    io_write_all(ws->io, data, len, flags & WSLAY_MSG_MORE) < 0) {
		ws->send_failed = 1;
		return -1;
	}
	return (ssize_t)len;
}

static int genmask_cb(uint8_t *buf, size_t len, void *user)
{
	(void)user;
	return random_bytes(buf, len);
}

struct ws *ws_new(struct io *io, uint64_t max_message)
{
	struct ws *ws = calloc(1, sizeof(*ws));

	if (ws == NULL)
		return NULL;
	ws->io = io;
	ws->max_message = max_message;
	return ws;
}

/* ech3's client side masks what it sends: that is wslay's frame layer. */
struct ws *ws_new_client(struct io *io, uint64_t max_message)
{
	static const struct wslay_frame_callbacks cbs = {
		send_cb, recv_cb, genmask_cb
	};
	struct ws *ws = ws_new(io, max_message);

	if (ws == NULL)
		return NULL;
	ws->client = 1;
	if (wslay_frame_context_init(&ws->frame, &cbs, ws) != 0) {
		free(ws);
		return NULL;
	}
	return ws;
}

void ws_free(struct ws *ws)
{
	if (ws == NULL)
		return;
	if (ws->frame != NULL)
		wslay_frame_context_free(ws->frame);
	free(ws->rbuf);
	free(ws);
}

static int rbuf_ensure(struct ws *ws)
{
	if (ws->rbuf == NULL) {
		ws->rbuf = malloc(WS_RBUF_SIZE);
		if (ws->rbuf == NULL)
			return -1;
		ws->rpos = ws->rlen = 0;
		ws->rcap = WS_RBUF_SIZE;
	}
	return 0;
}

/* Gives the buffer back while the connection is idle. */
static void rbuf_release_if_empty(struct ws *ws)
{
	if (ws->rbuf != NULL && ws->rpos == ws->rlen) {
		free(ws->rbuf);
		ws->rbuf = NULL;
		ws->rpos = ws->rlen = 0;
	}
}

int ws_prime(struct ws *ws, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	free(ws->rbuf);
	ws->rcap = len > WS_RBUF_SIZE ? len : WS_RBUF_SIZE;
	ws->rbuf = malloc(ws->rcap);
	if (ws->rbuf == NULL)
		return -1;
	memcpy(ws->rbuf, data, len);
	ws->rpos = 0;
	ws->rlen = len;
	return 0;
}

long ws_fill(struct ws *ws)
{
	ssize_t n;

	if (rbuf_ensure(ws) < 0)
		return -1;
	if (ws->rpos == ws->rlen) {
		ws->rpos = ws->rlen = 0;
	} else if (ws->rpos > 0) {
		/* a partial frame header waits at the end: move it up */
		memmove(ws->rbuf, ws->rbuf + ws->rpos, ws->rlen - ws->rpos);
		ws->rlen -= ws->rpos;
		ws->rpos = 0;
	}
	if (ws->rlen == ws->rcap)
		return 1;	/* still full: parse first */
	n = io_read(ws->io, ws->rbuf + ws->rlen, ws->rcap - ws->rlen);
	if (n > 0)
		ws->rlen += (size_t)n;
	else
		rbuf_release_if_empty(ws);
	return (long)n;
}

int ws_pending(const struct ws *ws)
{
	return ws->rpos < ws->rlen;
}

static enum ws_event_type fail(struct ws_event *ev, uint16_t code,
			       const char *reason)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = WS_EV_ERROR;
	ev->code = code;
	ev->reason = reason;
	return WS_EV_ERROR;
}

static int is_control(uint8_t op)
{
	return (op & 0x8) != 0;
}

static int close_code_valid(uint16_t c)
{
	return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) ||
	       (c >= 3000 && c <= 4999);
}

struct frame_head {
	uint8_t fin, rsv, opcode, masked;
	uint8_t key[4];
	uint64_t len;
};

/* Parses a frame header at p[0..avail). Returns its length, 0 when more
 * bytes are needed, -1 when it is malformed (non-minimal or 2^63+ length,
 * or a control frame that is fragmented or over 125 bytes). */
static int parse_frame_head(const uint8_t *p, size_t avail,
			    struct frame_head *h)
{
	size_t need = 2;
	uint8_t l7;

	if (avail < 2)
		return 0;
	h->fin = p[0] >> 7;
	h->rsv = (p[0] >> 4) & 7;
	h->opcode = p[0] & 0x0f;
	h->masked = p[1] >> 7;
	l7 = p[1] & 0x7f;
	need += l7 == 126 ? 2 : l7 == 127 ? 8 : 0;
	need += h->masked ? 4 : 0;
	if (avail < need)
		return 0;
	if (l7 < 126) {
		h->len = l7;
	} else if (l7 == 126) {
		h->len = (uint64_t)p[2] << 8 | p[3];
		if (h->len < 126)
			return -1;
	} else {
		h->len = 0;
		for (int i = 0; i < 8; i++)
			h->len = h->len << 8 | p[2 + i];
		if (h->len < 65536 || (h->len >> 63) != 0)
			return -1;
	}
	if ((h->opcode & 0x8) && (l7 > 125 || !h->fin))
		return -1;
	if (h->masked)
		memcpy(h->key, p + need - 4, 4);
	return (int)need;
}

/* 16 bytes as one SSE2 register (the x86-64 baseline), with memcpy for
 * unaligned loads and stores. */
typedef uint64_t u64x2 __attribute__((vector_size(16)));

/* Unmasks p[0..n) in place; off is the payload offset of p[0]. The hot
 * loop of the client-to-target relay: 64 bytes per iteration. */
static void unmask(uint8_t *p, size_t n, const uint8_t key[4], uint64_t off)
{
	uint8_t k[16];
	u64x2 m, w[4];
	size_t i = 0;

	for (int j = 0; j < 16; j++)
		k[j] = key[(off + (uint64_t)j) & 3];
	memcpy(&m, k, 16);
	for (; i + 64 <= n; i += 64) {
		memcpy(w, p + i, 64);
		w[0] ^= m;
		w[1] ^= m;
		w[2] ^= m;
		w[3] ^= m;
		memcpy(p + i, w, 64);
	}
	for (; i + 16 <= n; i += 16) {
		memcpy(w, p + i, 16);
		w[0] ^= m;
		memcpy(p + i, w, 16);
	}
	for (; i < n; i++)
		p[i] ^= k[i & 15];
}

/* Checks a frame header the first time a frame's bytes show up. */
static enum ws_event_type frame_start(struct ws *ws,
				      const struct frame_head *f,
				      struct ws_event *ev)
{
	if (f->rsv != 0)
		return fail(ev, 1002, "RSV bits set");
	if (!ws->client && !f->masked)
		return fail(ev, 1002, "unmasked client frame");
	if (ws->client && f->masked)
		return fail(ev, 1002, "masked server frame");
	ws->in_frame = 1;
	ws->f_opcode = f->opcode;
	ws->f_fin = f->fin;
	ws->f_masked = f->masked;
	memcpy(ws->f_key, f->key, 4);
	ws->f_len = f->len;
	ws->f_off = 0;
	if (is_control(f->opcode)) {
		ws->ctrl_len = 0;
		if (f->opcode != WS_CLOSE && f->opcode != WS_PING &&
		    f->opcode != WS_PONG)
			return fail(ev, 1002, "reserved opcode");
		return WS_EV_NONE;
	}
	if (f->opcode == WS_CONT) {
		if (!ws->in_msg)
			return fail(ev, 1002, "continuation without message");
	} else if (f->opcode == WS_TEXT || f->opcode == WS_BINARY) {
		if (ws->in_msg)
			return fail(ev, 1002, "new message inside a "
				    "fragmented one");
		ws->in_msg = 1;
		ws->m_opcode = (enum ws_opcode)f->opcode;
		ws->m_len = 0;
		ws->m_first = 1;
	} else {
		return fail(ev, 1002, "reserved opcode");
	}
	ws->m_len += f->len;
	if (ws->m_len > ws->max_message)
		return fail(ev, 1009, "message over max_message");
	return WS_EV_NONE;
}

static enum ws_event_type control_done(struct ws *ws, struct ws_event *ev)
{
	ev->data = ws->ctrl;
	ev->len = ws->ctrl_len;
	switch (ws->f_opcode) {
	case WS_PING:
		return ev->type = WS_EV_PING;
	case WS_PONG:
		return ev->type = WS_EV_PONG;
	default:
		break;
	}
	if (ws->ctrl_len == 1)
		return fail(ev, 1002, "close frame with a 1-byte payload");
	ev->code = 1005;
	if (ws->ctrl_len >= 2) {
		ev->code = (uint16_t)(ws->ctrl[0] << 8 | ws->ctrl[1]);
		if (!close_code_valid(ev->code))
			return fail(ev, 1002, "invalid close code");
	}
	return ev->type = WS_EV_CLOSE;
}

/* Takes the next frame header from the buffer. Returns 1 when a frame
 * started, 0 when more bytes are needed, or WS_EV_ERROR (ev filled). */
static int next_header(struct ws *ws, struct ws_event *ev)
{
	struct frame_head h = { 0 };
	int n = parse_frame_head(ws->rbuf + ws->rpos, ws->rlen - ws->rpos, &h);

	if (n == 0)
		return 0;
	if (n < 0)
		return fail(ev, 1002, "malformed frame header");
	ws->rpos += (size_t)n;
	if (frame_start(ws, &h, ev) != WS_EV_NONE)
		return WS_EV_ERROR;
	return 1;
}

static enum ws_event_type next_event(struct ws *ws, struct ws_event *ev);

enum ws_event_type ws_next(struct ws *ws, struct ws_event *ev)
{
	enum ws_event_type t;

	if (ws->broken)
		return fail(ev, 1002, "input after a protocol error");
	t = next_event(ws, ev);
	if (t == WS_EV_ERROR)
		ws->broken = 1;	/* the frame state is not to be trusted */
	return t;
}

static enum ws_event_type next_event(struct ws *ws, struct ws_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	for (;;) {
		size_t avail = ws->rbuf != NULL ? ws->rlen - ws->rpos : 0;
		uint64_t left;
		uint8_t *data;
		size_t n;

		if (!ws->in_frame) {
			int r = avail > 0 ? next_header(ws, ev) : 0;
			if (r == WS_EV_ERROR)
				return WS_EV_ERROR;
			if (r == 0) {
				rbuf_release_if_empty(ws);
				return WS_EV_NONE;
			}
			avail = ws->rlen - ws->rpos;
		}
		left = ws->f_len - ws->f_off;
		if (left > 0 && avail == 0) {
			rbuf_release_if_empty(ws);
			return WS_EV_NONE;
		}
		n = left < avail ? (size_t)left : avail;
		data = ws->rbuf != NULL ? ws->rbuf + ws->rpos : NULL;
		if (ws->f_masked && n > 0)
			unmask(data, n, ws->f_key, ws->f_off);
		ws->rpos += n;
		ws->f_off += n;
		if (ws->f_off == ws->f_len)
			ws->in_frame = 0;
		if (is_control(ws->f_opcode)) {
			if (ws->ctrl_len + n > sizeof(ws->ctrl))
				return fail(ev, 1002, "control frame too long");
			if (n > 0)
				memcpy(ws->ctrl + ws->ctrl_len, data, n);
			ws->ctrl_len += n;
			if (!ws->in_frame)
				return control_done(ws, ev);
			continue;
		}
		ev->type = WS_EV_DATA;
		ev->opcode = ws->m_opcode;
		ev->first = ws->m_first;
		ev->last = !ws->in_frame && ws->f_fin;
		ev->data = data;
		ev->len = n;
		ws->m_first = 0;
		if (ev->last)
			ws->in_msg = 0;
		if (ev->len == 0 && !ev->last && !ev->first)
			continue;
		return WS_EV_DATA;
	}
}

/* A server frame (never masked): header and payload in one sendmsg(),
 * without the per-connection wslay context an idle tunnel would hold. */
static int send_server_frame(struct ws *ws, enum ws_opcode op, int fin,
			     const void *data, size_t len)
{
	uint8_t h[10];
	size_t hl = 2;

	h[0] = (uint8_t)((fin ? 0x80 : 0) | (op & 0x0f));
	if (len < 126) {
		h[1] = (uint8_t)len;
	} else if (len < 65536) {
		h[1] = 126;
		h[2] = (uint8_t)(len >> 8);
		h[3] = (uint8_t)len;
		hl = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
		hl = 10;
	}
	if (io_write2(ws->io, h, hl, data, len) < 0) {
		ws->send_failed = 1;
		return -1;
	}
	return 0;
}

int ws_send_frame(struct ws *ws, enum ws_opcode op, int fin,
		  const void *data, size_t len)
{
	struct wslay_frame_iocb f;
	ssize_t r;

	if (ws->send_failed || ws->close_sent)
		return -1;
	if ((op & 0x8) && (len > 125 || !fin))
		return -1;
	if (!ws->client)
		return send_server_frame(ws, op, fin, data, len);
	memset(&f, 0, sizeof(f));
	f.fin = fin ? 1 : 0;
	f.opcode = op;
	f.mask = ws->client;
	f.payload_length = len;
	f.data = data;
	f.data_length = len;
	r = wslay_frame_send(ws->frame, &f);
	if (r < 0 || (size_t)r != len || ws->send_failed) {
		ws->send_failed = 1;
		return -1;
	}
	return 0;
}

int ws_send(struct ws *ws, enum ws_opcode op, const void *data, size_t len)
{
	return ws_send_frame(ws, op, 1, data, len);
}

int ws_send_close_reason(struct ws *ws, uint16_t code, const void *reason,
			 size_t len)
{
	uint8_t p[125];
	int r;

	if (ws->close_sent)
		return 0;
	if (len > sizeof(p) - 2)
		len = sizeof(p) - 2;
	p[0] = (uint8_t)(code >> 8);
	p[1] = (uint8_t)code;
	if (len > 0)
		memcpy(p + 2, reason, len);
	r = ws_send(ws, WS_CLOSE, p, len + 2);
	ws->close_sent = 1;
	return r;
}

int ws_send_close(struct ws *ws, uint16_t code)
{
	return ws_send_close_reason(ws, code, NULL, 0);
}

int ws_close_sent(const struct ws *ws)
{
	return ws->close_sent;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
void ws_accept_key(const char *key, size_t key_len, char out[29])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char sha[SHA_DIGEST_LENGTH];
	SHA_CTX ctx;

	if (key_len > 64)
		key_len = 64;
	SHA1_Init(&ctx);
	SHA1_Update(&ctx, key, key_len);
	SHA1_Update(&ctx, guid, sizeof(guid) - 1);
	SHA1_Final(sha, &ctx);
	base64_encode(sha, sizeof(sha), out);
}
#pragma GCC diagnostic pop
