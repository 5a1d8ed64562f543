/*
 * test_ws.c - worker/ws.c: Sec-WebSocket-Accept, and the server-side
 * frame rules of ws_next() (fed with ws_prime() and a socketpair) and
 * what ws_send() puts on the wire.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../worker/ws.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- Sec-WebSocket-Accept ---- */

static void test_accept_rfc6455_example(void **state)
{
	char out[29];

	(void)state;
	memset(out, 'X', sizeof(out));
	ws_accept_key(S("dGhlIHNhbXBsZSBub25jZQ=="), out);
	/* RFC 6455 section 1.3 */
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(out[28], '\0');
}

static void test_accept_other_keys(void **state)
{
	char out[29];

	(void)state;
	ws_accept_key(S("x3JJHMbDL1EzLkh9GBhXDw=="), out);
	assert_string_equal(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
	ws_accept_key(S("AQIDBAUGBwgJCgsMDQ4PEA=="), out);
	assert_string_equal(out, "C/0nmHhBztSRGR1CwL6Tf4ZjwpY=");
	/* only key[0..key_len) is hashed */
	ws_accept_key("abcdef", 3, out);
	assert_string_equal(out, "zwKd5BnoWxQ6GxTxxSmBSHGHX9M=");
}

static void test_accept_long_key_is_bounded(void **state)
{
	char big[300], a[29], b[29];

	(void)state;
	memset(big, 'k', sizeof(big));
	/* must not overflow its stack buffer; longer keys are truncated */
	ws_accept_key(big, sizeof(big), a);
	ws_accept_key(big, 64, b);
	assert_int_equal(strlen(a), 28);
	assert_string_equal(a, b);
}

/* ---- receiving frames ---- */

/* Builds a client frame (masked unless mask is 0) into out. */
static size_t frame(uint8_t *out, int fin, int rsv, int op, int mask,
		    const void *payload, size_t len)
{
	static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	const uint8_t *p = payload;
	size_t n = 0;

	out[n++] = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | op);
	if (len < 126) {
		out[n++] = (uint8_t)((mask ? 0x80 : 0) | len);
	} else if (len < 65536) {
		out[n++] = (uint8_t)((mask ? 0x80 : 0) | 126);
		out[n++] = (uint8_t)(len >> 8);
		out[n++] = (uint8_t)len;
	} else {
		out[n++] = (uint8_t)((mask ? 0x80 : 0) | 127);
		for (int i = 7; i >= 0; i--)
			out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	if (mask) {
		memcpy(out + n, key, 4);
		n += 4;
	}
	for (size_t i = 0; i < len; i++)
		out[n++] = mask ? (uint8_t)(p[i] ^ key[i % 4]) : p[i];
	return n;
}

struct fixture {
	int sv[2];	/* sv[0]: the server's io, sv[1]: the "client" */
	struct io io;
	struct ws *ws;
	uint8_t buf[70000];
	size_t len;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, f->sv) < 0)
		return -1;
	f->io.fd = f->sv[0];
	f->ws = ws_new(&f->io, 1000);
	if (f->ws == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ws_free(f->ws);
	close(f->sv[0]);
	close(f->sv[1]);
	free(f);
	return 0;
}

static void add(struct fixture *f, int fin, int rsv, int op, int mask,
		const void *payload, size_t len)
{
	assert_true(f->len + len + 14 <= sizeof(f->buf));
	f->len += frame(f->buf + f->len, fin, rsv, op, mask, payload, len);
}

static void prime(struct fixture *f)
{
	assert_int_equal(ws_prime(f->ws, f->buf, f->len), 0);
	f->len = 0;
}

static void expect_data(struct ws *ws, enum ws_opcode op, int first,
			int last, const char *data, size_t len)
{
	struct ws_event ev;

	assert_int_equal(ws_next(ws, &ev), WS_EV_DATA);
	assert_int_equal(ev.type, WS_EV_DATA);
	assert_int_equal(ev.opcode, op);
	assert_int_equal(ev.first, first);
	assert_int_equal(ev.last, last);
	assert_int_equal(ev.len, len);
	if (len > 0)
		assert_memory_equal(ev.data, data, len);
}

static void expect_error(struct ws *ws, uint16_t code)
{
	struct ws_event ev;

	assert_int_equal(ws_next(ws, &ev), WS_EV_ERROR);
	assert_int_equal(ev.type, WS_EV_ERROR);
	assert_int_equal(ev.code, code);
	assert_non_null(ev.reason);
}

static void test_next_nothing_buffered(void **state)
{
	struct fixture *f = *state;
	struct ws_event ev;

	assert_int_equal(ws_pending(f->ws), 0);
	assert_int_equal(ws_next(f->ws, &ev), WS_EV_NONE);
	assert_int_equal(ev.type, WS_EV_NONE);
	assert_int_equal(ws_prime(f->ws, "", 0), 0);
	assert_int_equal(ws_next(f->ws, &ev), WS_EV_NONE);
}

static void test_next_text_and_binary(void **state)
{
	struct fixture *f = *state;
	struct ws_event ev;

	add(f, 1, 0, WS_TEXT, 1, S("CONNECT:h:1"));
	add(f, 1, 0, WS_BINARY, 1, S("\0\x01\xff"));
	add(f, 1, 0, WS_BINARY, 1, "", 0);
	/* text is not checked for UTF-8 */
	add(f, 1, 0, WS_TEXT, 1, S("\xff\xfe"));
	prime(f);
	assert_int_equal(ws_pending(f->ws), 1);
	expect_data(f->ws, WS_TEXT, 1, 1, S("CONNECT:h:1"));
	expect_data(f->ws, WS_BINARY, 1, 1, S("\0\x01\xff"));
	expect_data(f->ws, WS_BINARY, 1, 1, "", 0);
	expect_data(f->ws, WS_TEXT, 1, 1, S("\xff\xfe"));
	assert_int_equal(ws_next(f->ws, &ev), WS_EV_NONE);
	assert_int_equal(ws_pending(f->ws), 0);
}

static void test_next_fragmented_with_ping(void **state)
{
	struct fixture *f = *state;
	struct ws_event ev;

	add(f, 0, 0, WS_BINARY, 1, S("ab"));
	add(f, 1, 0, WS_PING, 1, S("p!"));
	add(f, 0, 0, WS_CONT, 1, "", 0);	/* empty middle: skipped */
	add(f, 0, 0, WS_CONT, 1, S("cd"));
	add(f, 1, 0, WS_PONG, 1, "", 0);
	add(f, 1, 0, WS_CONT, 1, S("ef"));
	add(f, 1, 0, WS_TEXT, 1, S("next"));
	prime(f);
	expect_data(f->ws, WS_BINARY, 1, 0, S("ab"));
	assert_int_equal(ws_next(f->ws, &ev), WS_EV_PING);
	assert_int_equal(ev.len, 2);
	assert_memory_equal(ev.data, "p!", 2);
	expect_data(f->ws, WS_BINARY, 0, 0, S("cd"));
	assert_int_equal(ws_next(f->ws, &ev), WS_EV_PONG);
	assert_int_equal(ev.len, 0);
	expect_data(f->ws, WS_BINARY, 0, 1, S("ef"));
	expect_data(f->ws, WS_TEXT, 1, 1, S("next"));
}

static void test_next_protocol_errors(void **state)
{
	struct fixture *f = *state;

	add(f, 1, 0, WS_TEXT, 0, S("unmasked"));
	prime(f);
	expect_error(f->ws, 1002);
}

static void test_next_rsv_bits(void **state)
{
	struct fixture *f = *state;

	add(f, 1, 4, WS_TEXT, 1, S("x"));	/* RSV1 (compression) */
	prime(f);
	expect_error(f->ws, 1002);
}

static void test_next_reserved_opcodes(void **state)
{
	static const int ops[] = { 0x3, 0x7, 0xb, 0xf };

	(void)state;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		void *st;

		assert_int_equal(setup(&st), 0);
		add(st, 1, 0, ops[i], 1, S("x"));
		prime(st);
		expect_error(((struct fixture *)st)->ws, 1002);
		teardown(&st);
	}
}

static void test_next_continuation_without_message(void **state)
{
	struct fixture *f = *state;

	add(f, 1, 0, WS_CONT, 1, S("x"));
	prime(f);
	expect_error(f->ws, 1002);
}

static void test_next_new_message_inside_fragmented(void **state)
{
	struct fixture *f = *state;

	add(f, 0, 0, WS_TEXT, 1, S("a"));
	add(f, 1, 0, WS_TEXT, 1, S("b"));
	prime(f);
	expect_data(f->ws, WS_TEXT, 1, 0, S("a"));
	expect_error(f->ws, 1002);
}

static void test_next_control_frame_rules(void **state)
{
	struct fixture *f = *state;
	char big[126];

	memset(big, 'x', sizeof(big));
	add(f, 1, 0, WS_PING, 1, big, sizeof(big));	/* > 125 */
	prime(f);
	expect_error(f->ws, 1002);
}

static void test_next_fragmented_control(void **state)
{
	struct fixture *f = *state;

	add(f, 0, 0, WS_PING, 1, S("x"));
	prime(f);
	expect_error(f->ws, 1002);
}

static void test_next_max_message(void **state)
{
	struct fixture *f = *state;
	char p[1001];

	memset(p, 'm', sizeof(p));
	add(f, 1, 0, WS_BINARY, 1, p, 1000);	/* exactly the limit */
	add(f, 1, 0, WS_BINARY, 1, p, 1001);
	prime(f);
	expect_data(f->ws, WS_BINARY, 1, 1, p, 1000);
	expect_error(f->ws, 1009);
}

static void test_next_max_message_fragmented(void **state)
{
	struct fixture *f = *state;
	char p[600];

	memset(p, 'm', sizeof(p));
	add(f, 0, 0, WS_BINARY, 1, p, 600);
	add(f, 1, 0, WS_CONT, 1, p, 401);	/* 1001 in total */
	prime(f);
	expect_data(f->ws, WS_BINARY, 1, 0, p, 600);
	expect_error(f->ws, 1009);
}

static void test_next_close_codes(void **state)
{
	static const struct {
		const char *payload;
		size_t len;
		enum ws_event_type type;
		uint16_t code;
	} cases[] = {
		{ "", 0, WS_EV_CLOSE, 1005 },
		{ "\x03\xe8", 2, WS_EV_CLOSE, 1000 },
		{ "\x03\xe8" "bye", 5, WS_EV_CLOSE, 1000 },
		{ "\x03\xe9", 2, WS_EV_CLOSE, 1001 },
		{ "\x03\xf3", 2, WS_EV_CLOSE, 1011 },
		{ "\x0b\xb8", 2, WS_EV_CLOSE, 3000 },
		{ "\x13\x87", 2, WS_EV_CLOSE, 4999 },
		{ "\x03", 1, WS_EV_ERROR, 1002 },	/* 1-byte payload */
		{ "\x03\xe7", 2, WS_EV_ERROR, 1002 },	/* 999 */
		{ "\x03\xec", 2, WS_EV_ERROR, 1002 },	/* 1004 */
		{ "\x03\xed", 2, WS_EV_ERROR, 1002 },	/* 1005 */
		{ "\x03\xee", 2, WS_EV_ERROR, 1002 },	/* 1006 */
		{ "\x03\xf7", 2, WS_EV_ERROR, 1002 },	/* 1015 */
		{ "\x13\x88", 2, WS_EV_ERROR, 1002 },	/* 5000 */
		{ "\x00\x00", 2, WS_EV_ERROR, 1002 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *st;
		struct fixture *f;
		struct ws_event ev;

		assert_int_equal(setup(&st), 0);
		f = st;
		add(f, 1, 0, WS_CLOSE, 1, cases[i].payload, cases[i].len);
		prime(f);
		if (ws_next(f->ws, &ev) != cases[i].type ||
		    ev.code != cases[i].code)
			fail_msg("close case #%zu: type %d code %u", i,
				 (int)ev.type, ev.code);
		if (ev.type == WS_EV_CLOSE) {
			assert_int_equal(ev.len, cases[i].len);
			if (cases[i].len > 0)
				assert_memory_equal(ev.data, cases[i].payload,
						    cases[i].len);
		}
		teardown(&st);
	}
}

/* Bytes arriving in pieces through the socket. */
static void test_next_streamed_in_pieces(void **state)
{
	struct fixture *f = *state;
	char p[300];
	struct ws_event ev;
	size_t total, got = 0;

	for (size_t i = 0; i < sizeof(p); i++)
		p[i] = (char)i;
	add(f, 1, 0, WS_BINARY, 1, p, sizeof(p));	/* 16-bit length */
	total = f->len;
	/* the first 3 bytes came with the HTTP head */
	assert_int_equal(ws_prime(f->ws, f->buf, 3), 0);
	assert_int_equal(ws_next(f->ws, &ev), WS_EV_NONE);
	for (size_t off = 3; off < total; off += 7) {
		size_t n = total - off < 7 ? total - off : 7;

		assert_int_equal(write(f->sv[1], f->buf + off, n), (ssize_t)n);
		assert_int_equal(ws_fill(f->ws), (long)n);
		while (ws_next(f->ws, &ev) == WS_EV_DATA) {
			assert_int_equal(ev.opcode, WS_BINARY);
			assert_int_equal(ev.first, got == 0);
			assert_memory_equal(ev.data, p + got, ev.len);
			got += ev.len;
			assert_int_equal(ev.last, got == sizeof(p));
		}
		assert_int_equal(ev.type, WS_EV_NONE);
	}
	assert_int_equal(got, sizeof(p));
	/* EOF */
	close(f->sv[1]);
	f->sv[1] = socket(AF_UNIX, SOCK_STREAM, 0);	/* for teardown */
	assert_int_equal(ws_fill(f->ws), 0);
}

static void test_next_64bit_length(void **state)
{
	struct fixture *f = *state;
	struct ws *ws;
	struct ws_event ev;
	static char p[66000];
	size_t got = 0;

	ws = ws_new(&f->io, sizeof(p));
	assert_non_null(ws);
	memset(p, 'z', sizeof(p));
	add(f, 1, 0, WS_BINARY, 1, p, sizeof(p));
	assert_int_equal(ws_prime(ws, f->buf, f->len), 0);
	while (ws_next(ws, &ev) == WS_EV_DATA) {
		got += ev.len;
		if (ev.last)
			break;
	}
	assert_int_equal(ev.type, WS_EV_DATA);
	assert_int_equal(got, sizeof(p));
	ws_free(ws);
}

/* ---- sending ---- */

static void test_send_frames(void **state)
{
	struct fixture *f = *state;
	uint8_t got[64];

	assert_int_equal(ws_send(f->ws, WS_TEXT, "hi", 2), 0);
	assert_int_equal(read(f->sv[1], got, sizeof(got)), 4);
	assert_memory_equal(got, "\x81\x02hi", 4);	/* fin, unmasked */

	assert_int_equal(ws_send(f->ws, WS_BINARY, "", 0), 0);
	assert_int_equal(read(f->sv[1], got, sizeof(got)), 2);
	assert_memory_equal(got, "\x82\x00", 2);

	assert_int_equal(ws_send(f->ws, WS_PONG, "p", 1), 0);
	assert_int_equal(read(f->sv[1], got, sizeof(got)), 3);
	assert_memory_equal(got, "\x8a\x01p", 3);
}

static void test_send_close_once(void **state)
{
	struct fixture *f = *state;
	uint8_t got[16];

	assert_int_equal(ws_close_sent(f->ws), 0);
	assert_int_equal(ws_send_close(f->ws, 1009), 0);
	assert_int_equal(ws_close_sent(f->ws), 1);
	assert_int_equal(read(f->sv[1], got, sizeof(got)), 4);
	assert_memory_equal(got, "\x88\x02\x03\xf1", 4);
	/* second close: nothing sent; data after close refused */
	assert_int_equal(ws_send_close(f->ws, 1000), 0);
	assert_int_equal(ws_send(f->ws, WS_TEXT, "x", 1), -1);
	assert_int_equal(recv(f->sv[1], got, sizeof(got), MSG_DONTWAIT), -1);
}

static void test_send_to_closed_peer(void **state)
{
	struct fixture *f = *state;

	close(f->sv[1]);
	f->sv[1] = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(ws_send(f->ws, WS_TEXT, "x", 1), -1);
	/* and stays failed */
	assert_int_equal(ws_send(f->ws, WS_TEXT, "x", 1), -1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_rfc6455_example),
		cmocka_unit_test(test_accept_other_keys),
		cmocka_unit_test(test_accept_long_key_is_bounded),
		T(test_next_nothing_buffered),
		T(test_next_text_and_binary),
		T(test_next_fragmented_with_ping),
		T(test_next_protocol_errors),
		T(test_next_rsv_bits),
		cmocka_unit_test(test_next_reserved_opcodes),
		T(test_next_continuation_without_message),
		T(test_next_new_message_inside_fragmented),
		T(test_next_control_frame_rules),
		T(test_next_fragmented_control),
		T(test_next_max_message),
		T(test_next_max_message_fragmented),
		cmocka_unit_test(test_next_close_codes),
		T(test_next_streamed_in_pieces),
		T(test_next_64bit_length),
		T(test_send_frames),
		T(test_send_close_once),
		T(test_send_to_closed_peer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
