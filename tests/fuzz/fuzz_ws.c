/*
 * fuzz_ws.c - libFuzzer harness for WebSocket frame parsing (worker/ws.c
 * on wslay's frame layer): ws_new on a socketpair, the input's first part
 * handed over with ws_prime (bytes that came with the HTTP head), the rest
 * delivered through the socket in chunks and read with ws_fill, and
 * ws_next looped the way the server's tunnel does.
 *
 * Input: byte 0 = max_message selector (bits 0-1: 1 KiB / 64 KiB / 16 MiB
 * / 2^63) and bits 2-7 = chunk size for the socket part (1..64 << n);
 * byte 1 = how much of the rest is primed (proportion); the rest = bytes
 * from the client.
 *
 * The event loop mirrors worker/tunnel.c: events are consumed until an
 * ERROR or CLOSE event (relay ends: finish()), or the bytes run out; then,
 * as linger() does after the server's close frame, ws_next keeps parsing
 * what is buffered until a CLOSE or ERROR event or no more bytes. Send
 * paths (pong, close) are not exercised: nothing reads the socket's peer
 * for our replies beyond the buffer, so ws_send is left out.
 *
 * Invariants (abort = finding): events are one of the enum values; DATA
 * carries WS_TEXT/WS_BINARY, first/last flags consistent with a message
 * boundary, and never more bytes per message than max_message; control
 * payloads are <= 125 bytes; CLOSE codes are valid wire codes or 1005;
 * ERROR codes are 1002 or 1009; the returned type equals ev->type
 * (except for WS_EV_NONE: ws_next may return NONE with ev->type left at
 * DATA after skipping an empty middle fragment - callers only look at the
 * return value, so that is tolerated here).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../worker/io.h"
#include "../../worker/ws.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static int sv[2] = { -1, -1 };

struct feed {
	struct ws *ws;
	const uint8_t *p;
	size_t left, chunk;
};

/* Delivers the next chunk through the socket and ws_fill()s it.
 * Returns 0 when nothing is left. */
static int feed_more(struct feed *f)
{
	size_t n = f->left < f->chunk ? f->left : f->chunk;
	ssize_t w;
	long r;

	if (n == 0)
		return 0;
	w = send(sv[1], f->p, n, MSG_NOSIGNAL);
	if (w <= 0)
		abort();
	f->p += w;
	f->left -= (size_t)w;
	r = ws_fill(f->ws);
	CHECK(r > 0);
	return 1;
}

struct msgstate {
	int in_msg;
	uint64_t len;
	uint64_t max;
};

static void check_event(const struct ws_event *ev, struct msgstate *m)
{
	switch (ev->type) {
	case WS_EV_DATA:
		CHECK(ev->opcode == WS_TEXT || ev->opcode == WS_BINARY);
		CHECK(ev->first == !m->in_msg);
		if (ev->first)
			m->len = 0;
		m->len += ev->len;
		CHECK(m->len <= m->max);
		CHECK(ev->len == 0 || ev->data != NULL);
		m->in_msg = !ev->last;
		break;
	case WS_EV_PING:
	case WS_EV_PONG:
		CHECK(ev->len <= 125);
		break;
	case WS_EV_CLOSE:
		CHECK(ev->len <= 125);
		CHECK(ev->code == 1005 || (ev->code >= 1000 && ev->code <= 4999));
		break;
	case WS_EV_ERROR:
		CHECK(ev->code == 1002 || ev->code == 1009);
		CHECK(ev->reason != NULL);
		break;
	case WS_EV_NONE:
		break;
	default:
		__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t maxes[4] = { 1024, 65536, 16u << 20, 1ull << 63 };
	struct io io = { -1, NULL };
	struct msgstate m = { 0, 0, 0 };
	struct ws_event ev;
	struct feed f;
	enum ws_event_type t;
	size_t prime;
	struct ws *ws;
	int guard;

	if (sv[0] < 0) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
			abort();
		fcntl(sv[0], F_SETFL, O_NONBLOCK);
		fcntl(sv[1], F_SETFL, O_NONBLOCK);
	}
	if (size < 2)
		return 0;
	m.max = maxes[data[0] & 3];
	f.chunk = (size_t)1 << ((data[0] >> 2) % 17);	/* 1 .. 64 KiB */
	prime = (size - 2) * data[1] / 255;
	io.fd = sv[0];
	ws = ws_new(&io, m.max);
	if (ws == NULL)
		return 0;
	f.ws = ws;
	f.p = data + 2 + prime;
	f.left = size - 2 - prime;
	if (ws_prime(ws, data + 2, prime) < 0)
		abort();

	/* the relay: until ERROR / CLOSE or the bytes run out */
	for (guard = 0;; guard++) {
		CHECK(guard < 10000000);
		t = ws_next(ws, &ev);
		check_event(&ev, &m);
		CHECK(t == WS_EV_NONE || ev.type == t);
		if (t == WS_EV_ERROR || t == WS_EV_CLOSE)
			break;
		if (t == WS_EV_NONE && !feed_more(&f))
			break;
	}
	/* linger(): keep parsing until the peer's CLOSE, an ERROR, or EOF.
	 * -DFUZZ_WS_NO_LINGER leaves this out, to explore past a known bug
	 * in this phase (see tests/fuzz/crashes-found/README.md). */
#ifndef FUZZ_WS_NO_LINGER
	if (t == WS_EV_ERROR || t == WS_EV_CLOSE) {
		for (guard = 0;; guard++) {
			CHECK(guard < 10000000);
			t = ws_next(ws, &ev);
			CHECK(t == WS_EV_NONE || ev.type == t);
			if (t == WS_EV_ERROR || t == WS_EV_CLOSE)
				break;
			if (t == WS_EV_NONE && !feed_more(&f))
				break;
		}
	}
#endif
	ws_free(ws);
	/* drop anything left unread in the socket */
	{
		char sink[4096];
		while (recv(sv[0], sink, sizeof(sink), 0) > 0)
			;
	}
	return 0;
}
