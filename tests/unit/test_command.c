/*
 * test_command.c - worker/command.c: command kinds, CONNECT parsing
 * (target, first data, trailing |PYIP=) and target_parse.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "../../worker/command.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void assert_span(const char *p, size_t n, const char *want,
			size_t wlen)
{
	assert_int_equal(n, wlen);
	if (wlen > 0) {
		assert_non_null(p);
		assert_memory_equal(p, want, wlen);
	}
}

#define ASSERT_SPAN(p, n, lit) assert_span((p), (n), (lit), sizeof(lit) - 1)

/* Parses msg (an exact-size heap copy, so ASan catches overreads). */
static const char *connect_parse(const char *msg, size_t len,
				 struct connect_req *out, char **copy)
{
	*copy = malloc(len ? len : 1);
	assert_non_null(*copy);
	memcpy(*copy, msg, len);
	return command_parse_connect(*copy, len, out);
}

/* ---- command_kind ---- */

static void test_command_kind(void **state)
{
	(void)state;
	assert_int_equal(command_kind(S("CONNECT:a:1")), CMD_CONNECT);
	assert_int_equal(command_kind(S("CONNECT:")), CMD_CONNECT);
	assert_int_equal(command_kind(S("CONNECT")), CMD_UNKNOWN);
	assert_int_equal(command_kind(S("connect:a:1")), CMD_UNKNOWN);
	assert_int_equal(command_kind(S(" CONNECT:a:1")), CMD_UNKNOWN);
	assert_int_equal(command_kind(S("DATA:")), CMD_DATA);
	assert_int_equal(command_kind(S("DATA:xyz")), CMD_DATA);
	assert_int_equal(command_kind(S("DATA:\0\xff")), CMD_DATA);
	assert_int_equal(command_kind(S("DATA")), CMD_UNKNOWN);
	assert_int_equal(command_kind(S("data:x")), CMD_UNKNOWN);
	assert_int_equal(command_kind(S("CLOSE")), CMD_CLOSE);
	assert_int_equal(command_kind(S("CLOSE ")), CMD_UNKNOWN);
	assert_int_equal(command_kind(S("CLOSEX")), CMD_UNKNOWN);
	assert_int_equal(command_kind(S("CLOSE\n")), CMD_UNKNOWN);
	assert_int_equal(command_kind(S("close")), CMD_UNKNOWN);
	assert_int_equal(command_kind(S("")), CMD_UNKNOWN);
	assert_int_equal(command_kind(S("PING")), CMD_UNKNOWN);
	/* only msg[0..len) counts */
	assert_int_equal(command_kind("CLOSE", 4), CMD_UNKNOWN);
	assert_int_equal(command_kind("CONNECT:", 7), CMD_UNKNOWN);
	assert_int_equal(command_kind("DATA:", 4), CMD_UNKNOWN);
	assert_int_equal(COMMAND_DATA_PREFIX, 5);
}

/* ---- CONNECT ---- */

static void test_connect_plain(void **state)
{
	struct connect_req r;
	char *c;

	(void)state;
	assert_null(connect_parse(S("CONNECT:example.com:443"), &r, &c));
	assert_string_equal(r.host, "example.com");
	assert_int_equal(r.port, 443);
	assert_int_equal(r.first_len, 0);
	assert_null(r.pyip);
	assert_int_equal(r.pyip_len, 0);
	free(c);

	assert_null(connect_parse(S("CONNECT:10.0.0.1:80"), &r, &c));
	assert_string_equal(r.host, "10.0.0.1");
	assert_int_equal(r.port, 80);
	free(c);

	assert_null(connect_parse(S("CONNECT:a_b-c.d:1"), &r, &c));
	assert_string_equal(r.host, "a_b-c.d");
	assert_int_equal(r.port, 1);
	free(c);

	assert_null(connect_parse(S("CONNECT:h:65535"), &r, &c));
	assert_int_equal(r.port, 65535);
	free(c);
}

static void test_connect_first_data(void **state)
{
	struct connect_req r;
	char *c;

	(void)state;
	assert_null(connect_parse(S("CONNECT:h.example:80|GET / HTTP/1.0\r\n"),
				  &r, &c));
	assert_string_equal(r.host, "h.example");
	assert_int_equal(r.port, 80);
	ASSERT_SPAN(r.first, r.first_len, "GET / HTTP/1.0\r\n");
	assert_true(r.first == c + 21);	/* points into the message */
	assert_null(r.pyip);
	free(c);

	/* empty first data */
	assert_null(connect_parse(S("CONNECT:h:80|"), &r, &c));
	assert_int_equal(r.first_len, 0);
	assert_null(r.pyip);
	free(c);

	/* binary first data, NUL and 0xff included */
	assert_null(connect_parse(S("CONNECT:h:80|\0\x01\xff\0"), &r, &c));
	ASSERT_SPAN(r.first, r.first_len, "\0\x01\xff\0");
	free(c);
}

static void test_connect_first_data_with_bars(void **state)
{
	struct connect_req r;
	char *c;

	(void)state;
	assert_null(connect_parse(S("CONNECT:h:80|a|b|c"), &r, &c));
	assert_string_equal(r.host, "h");
	ASSERT_SPAN(r.first, r.first_len, "a|b|c");
	assert_null(r.pyip);
	free(c);

	assert_null(connect_parse(S("CONNECT:h:80||"), &r, &c));
	ASSERT_SPAN(r.first, r.first_len, "|");
	assert_null(r.pyip);
	free(c);

	assert_null(connect_parse(S("CONNECT:h:80|x|"), &r, &c));
	ASSERT_SPAN(r.first, r.first_len, "x|");
	assert_null(r.pyip);
	free(c);

	/* PYIP= that is not the last field is data */
	assert_null(connect_parse(S("CONNECT:h:80|a|PYIP=1.2.3.4|b"), &r, &c));
	ASSERT_SPAN(r.first, r.first_len, "a|PYIP=1.2.3.4|b");
	assert_null(r.pyip);
	free(c);

	/* not exactly "|PYIP=" */
	assert_null(connect_parse(S("CONNECT:h:80|a|pyip=1.2.3.4"), &r, &c));
	ASSERT_SPAN(r.first, r.first_len, "a|pyip=1.2.3.4");
	assert_null(r.pyip);
	free(c);
	assert_null(connect_parse(S("CONNECT:h:80|a|PYIP"), &r, &c));
	ASSERT_SPAN(r.first, r.first_len, "a|PYIP");
	assert_null(r.pyip);
	free(c);
	assert_null(connect_parse(S("CONNECT:h:80|a| PYIP=x"), &r, &c));
	ASSERT_SPAN(r.first, r.first_len, "a| PYIP=x");
	assert_null(r.pyip);
	free(c);
	assert_null(connect_parse(S("CONNECT:h:80|aPYIP=x"), &r, &c));
	ASSERT_SPAN(r.first, r.first_len, "aPYIP=x");
	assert_null(r.pyip);
	free(c);
}

static void test_connect_pyip(void **state)
{
	struct connect_req r;
	char *c;

	(void)state;
	/* data and fallback list */
	assert_null(connect_parse(S("CONNECT:h:443|hello|PYIP=1.1.1.1,"
				    "fb.example"), &r, &c));
	assert_string_equal(r.host, "h");
	assert_int_equal(r.port, 443);
	ASSERT_SPAN(r.first, r.first_len, "hello");
	assert_non_null(r.pyip);
	ASSERT_SPAN(r.pyip, r.pyip_len, "1.1.1.1,fb.example");
	free(c);

	/* data with '|' and a fallback list */
	assert_null(connect_parse(S("CONNECT:h:443|a|b||PYIP=x"), &r, &c));
	ASSERT_SPAN(r.first, r.first_len, "a|b|");
	ASSERT_SPAN(r.pyip, r.pyip_len, "x");
	free(c);

	/* data that itself looks like "PYIP=", then the real list */
	assert_null(connect_parse(S("CONNECT:h:443|PYIP=a|PYIP=b"), &r, &c));
	ASSERT_SPAN(r.first, r.first_len, "PYIP=a");
	ASSERT_SPAN(r.pyip, r.pyip_len, "b");
	free(c);
}

static void test_connect_pyip_only(void **state)
{
	struct connect_req r;
	char *c;

	(void)state;
	assert_null(connect_parse(S("CONNECT:h:443|PYIP=1.1.1.1,2.2.2.2"), &r,
				  &c));
	assert_string_equal(r.host, "h");
	assert_int_equal(r.port, 443);
	assert_int_equal(r.first_len, 0);
	assert_non_null(r.pyip);
	ASSERT_SPAN(r.pyip, r.pyip_len, "1.1.1.1,2.2.2.2");
	free(c);
}

static void test_connect_pyip_empty_first(void **state)
{
	struct connect_req r;
	char *c;

	(void)state;
	assert_null(connect_parse(S("CONNECT:h:443||PYIP=9.9.9.9"), &r, &c));
	assert_int_equal(r.first_len, 0);
	ASSERT_SPAN(r.pyip, r.pyip_len, "9.9.9.9");
	free(c);
}

static void test_connect_pyip_empty_list(void **state)
{
	struct connect_req r;
	char *c;

	(void)state;
	assert_null(connect_parse(S("CONNECT:h:443|data|PYIP="), &r, &c));
	ASSERT_SPAN(r.first, r.first_len, "data");
	assert_non_null(r.pyip);
	assert_int_equal(r.pyip_len, 0);
	free(c);

	assert_null(connect_parse(S("CONNECT:h:443|PYIP="), &r, &c));
	assert_int_equal(r.first_len, 0);
	assert_non_null(r.pyip);
	assert_int_equal(r.pyip_len, 0);
	free(c);
}

static void test_connect_ipv6(void **state)
{
	struct connect_req r;
	char *c;

	(void)state;
	assert_null(connect_parse(S("CONNECT:[::1]:8080"), &r, &c));
	assert_string_equal(r.host, "::1");
	assert_int_equal(r.port, 8080);
	assert_int_equal(r.first_len, 0);
	free(c);

	assert_null(connect_parse(S("CONNECT:[2001:db8::10]:443|x|y|PYIP=[::2]"),
				  &r, &c));
	assert_string_equal(r.host, "2001:db8::10");
	assert_int_equal(r.port, 443);
	ASSERT_SPAN(r.first, r.first_len, "x|y");
	ASSERT_SPAN(r.pyip, r.pyip_len, "[::2]");
	free(c);

	assert_null(connect_parse(S("CONNECT:[fe80::1%eth0]:22"), &r, &c));
	assert_string_equal(r.host, "fe80::1%eth0");
	assert_int_equal(r.port, 22);
	free(c);

	assert_null(connect_parse(S("CONNECT:[::ffff:1.2.3.4]:1"), &r, &c));
	assert_string_equal(r.host, "::ffff:1.2.3.4");
	free(c);
}

static void test_connect_errors(void **state)
{
	static const struct {
		const char *msg;
		size_t len;
	} bad[] = {
#define B(lit) { lit, sizeof(lit) - 1 }
		B("CONNECT:"),
		B("CONNECT:|data"),
		B("CONNECT:|PYIP=1.1.1.1"),
		B("CONNECT:host"),
		B("CONNECT:host|data"),
		B("CONNECT:host:"),
		B("CONNECT:host:|data"),
		B("CONNECT::80"),
		B("CONNECT:host:0"),
		B("CONNECT:host:65536"),
		B("CONNECT:host:99999"),
		B("CONNECT:host:123456"),
		B("CONNECT:host:abc"),
		B("CONNECT:host:8o"),
		B("CONNECT:host:-1"),
		B("CONNECT:host:+80"),
		B("CONNECT:host: 80"),
		B("CONNECT:host:80 "),
		B("CONNECT: host:80"),
		B("CONNECT:host:0|data"),
		B("CONNECT:host:80\r\n"),
		B("CONNECT:ho st:80"),
		B("CONNECT:host/x:80"),
		B("CONNECT:user@host:80"),
		B("CONNECT:host%1:80"),
		B("CONNECT:ex\0ample.com:80"),
		B("CONNECT:example.com\0:80"),
		B("CONNECT:h\xc3\xa9:80"),
		B("CONNECT:[::1]"),
		B("CONNECT:[::1]:"),
		B("CONNECT:[::1]:0"),
		B("CONNECT:[::1]:65536"),
		B("CONNECT:[::1]80"),
		B("CONNECT:[::1]x:80"),
		B("CONNECT:[::1:80"),
		B("CONNECT:[]:80"),
		B("CONNECT:[::1 ]:80"),
		B("CONNECT:[::1/64]:80"),
		B("connect:host:80"),
		B("DATA:host:80"),
		B("CONNECT"),
#undef B
	};
	struct connect_req r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *c;
		const char *why = connect_parse(bad[i].msg, bad[i].len, &r, &c);

		if (why == NULL)
			fail_msg("#%zu '%.*s' accepted (host '%s' port %d)", i,
				 (int)bad[i].len, bad[i].msg, r.host, r.port);
		assert_true(strlen(why) > 0);
		free(c);
	}
}

static void test_connect_error_reasons(void **state)
{
	struct connect_req r;
	char *c;

	(void)state;
	assert_string_equal(connect_parse(S("CONNECT:h:0"), &r, &c),
			    "bad port");
	free(c);
	assert_string_equal(connect_parse(S("CONNECT:h:65536"), &r, &c),
			    "bad port");
	free(c);
	assert_string_equal(connect_parse(S("CONNECT:h:abc"), &r, &c),
			    "bad port");
	free(c);
	assert_string_equal(connect_parse(S("CONNECT:h:"), &r, &c),
			    "bad port");
	free(c);
	assert_string_equal(connect_parse(S("CONNECT:h"), &r, &c),
			    "missing port");
	free(c);
	assert_string_equal(connect_parse(S("CONNECT:"), &r, &c),
			    "empty target");
	free(c);
	assert_string_equal(connect_parse(S("CONNECT:h h:1"), &r, &c),
			    "bad host");
	free(c);
	assert_string_equal(connect_parse(S("CONNECT:x\0y:1"), &r, &c),
			    "bad host");
	free(c);
	assert_string_equal(connect_parse(S("CONNECT:[::1]"), &r, &c),
			    "bad IPv6 target (want [addr]:port)");
	free(c);
	assert_string_equal(connect_parse(S("DATA:x"), &r, &c),
			    "expected CONNECT");
	free(c);
}

static void test_connect_long_hosts(void **state)
{
	struct connect_req r;
	size_t big = 10 * 1024;
	char *msg = malloc(8 + big + 4 + 6);
	size_t n;

	(void)state;
	assert_non_null(msg);

	/* 10 KiB host */
	memcpy(msg, "CONNECT:", 8);
	memset(msg + 8, 'a', big);
	memcpy(msg + 8 + big, ":80", 3);
	n = 8 + big + 3;
	assert_string_equal(command_parse_connect(msg, n, &r), "bad host");
	/* ...with first data after it */
	memcpy(msg + n, "|x", 2);
	assert_string_equal(command_parse_connect(msg, n + 2, &r), "bad host");

	/* exactly TARGET_HOST_MAX (253) characters is fine */
	memset(msg + 8, 'b', TARGET_HOST_MAX);
	memcpy(msg + 8 + TARGET_HOST_MAX, ":80", 3);
	n = 8 + TARGET_HOST_MAX + 3;
	assert_null(command_parse_connect(msg, n, &r));
	assert_int_equal(strlen(r.host), TARGET_HOST_MAX);
	assert_int_equal(r.host[0], 'b');
	assert_int_equal(r.port, 80);

	/* 254 is not */
	memset(msg + 8, 'b', TARGET_HOST_MAX + 1);
	memcpy(msg + 8 + TARGET_HOST_MAX + 1, ":80", 3);
	n = 8 + TARGET_HOST_MAX + 1 + 3;
	assert_string_equal(command_parse_connect(msg, n, &r), "bad host");

	/* a 10 KiB bracketed IPv6 "host" */
	msg[8] = '[';
	memset(msg + 9, ':', big);
	memcpy(msg + 9 + big, "]:1", 3);
	assert_non_null(command_parse_connect(msg, 9 + big + 3, &r));
	free(msg);
}

static void test_connect_big_first_data(void **state)
{
	struct connect_req r;
	size_t big = 64 * 1024;
	char *msg = malloc(13 + big + 7);

	(void)state;
	assert_non_null(msg);
	memcpy(msg, "CONNECT:h:80|", 13);
	for (size_t i = 0; i < big; i++)
		msg[13 + i] = (char)"ab|"[i % 3];
	memcpy(msg + 13 + big, "|PYIP=z", 7);
	assert_null(command_parse_connect(msg, 13 + big + 7, &r));
	assert_ptr_equal(r.first, msg + 13);
	assert_int_equal(r.first_len, big);
	ASSERT_SPAN(r.pyip, r.pyip_len, "z");
	free(msg);
}

/* ---- target_parse ---- */

static void test_target_parse_forms(void **state)
{
	char host[TARGET_HOST_MAX + 1];
	int port = -7;

	(void)state;
	assert_null(target_parse(S("example.com:80"), host, sizeof(host),
				 &port));
	assert_string_equal(host, "example.com");
	assert_int_equal(port, 80);
	assert_null(target_parse(S("192.168.1.1:8443"), host, sizeof(host),
				 &port));
	assert_string_equal(host, "192.168.1.1");
	assert_int_equal(port, 8443);
	assert_null(target_parse(S("[::1]:1"), host, sizeof(host), &port));
	assert_string_equal(host, "::1");
	assert_int_equal(port, 1);
	assert_null(target_parse(S("[2001:DB8::a]:65535"), host, sizeof(host),
				 &port));
	assert_string_equal(host, "2001:DB8::a");
	assert_int_equal(port, 65535);
	assert_null(target_parse(S("localhost:00022"), host, sizeof(host),
				 &port));
	assert_int_equal(port, 22);
	/* only s[0..len) counts */
	assert_null(target_parse("h:80junk", 4, host, sizeof(host), &port));
	assert_string_equal(host, "h");
	assert_int_equal(port, 80);
}

static void test_target_parse_errors(void **state)
{
	char host[TARGET_HOST_MAX + 1];
	int port;

	(void)state;
	memset(host, 'Q', sizeof(host));
	assert_non_null(target_parse(S(""), host, sizeof(host), &port));
	assert_non_null(target_parse(S(":80"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("h:"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("h"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("h:0"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("h:65536"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("h:1x"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("h\t:1"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("h\n:1"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("[]:1"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("[::1]"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("[::1]:"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("[::1]:x"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("[::1"), host, sizeof(host), &port));
	assert_non_null(target_parse(S("[a b]:1"), host, sizeof(host), &port));
	/* '%' only inside brackets */
	assert_non_null(target_parse(S("h%25:1"), host, sizeof(host), &port));
	/* failed parses leave host alone */
	assert_int_equal(host[0], 'Q');
}

static void test_target_parse_small_buffer(void **state)
{
	char host[8];
	int port;

	(void)state;
	memset(host, 'Q', sizeof(host));
	/* 8 chars + NUL does not fit in 8 bytes */
	assert_non_null(target_parse(S("abcdefgh:1"), host, sizeof(host),
				     &port));
	assert_int_equal(host[0], 'Q');
	/* 7 chars + NUL does */
	assert_null(target_parse(S("abcdefg:1"), host, sizeof(host), &port));
	assert_string_equal(host, "abcdefg");
	assert_non_null(target_parse(S("[1:2:3:45]:1"), host, 8, &port));
	assert_null(target_parse(S("[1:2:3:4]:1"), host, 8, &port));
	assert_string_equal(host, "1:2:3:4");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_kind),
		cmocka_unit_test(test_connect_plain),
		cmocka_unit_test(test_connect_first_data),
		cmocka_unit_test(test_connect_first_data_with_bars),
		cmocka_unit_test(test_connect_pyip),
		cmocka_unit_test(test_connect_pyip_only),
		cmocka_unit_test(test_connect_pyip_empty_first),
		cmocka_unit_test(test_connect_pyip_empty_list),
		cmocka_unit_test(test_connect_ipv6),
		cmocka_unit_test(test_connect_errors),
		cmocka_unit_test(test_connect_error_reasons),
		cmocka_unit_test(test_connect_long_hosts),
		cmocka_unit_test(test_connect_big_first_data),
		cmocka_unit_test(test_target_parse_forms),
		cmocka_unit_test(test_target_parse_errors),
		cmocka_unit_test(test_target_parse_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
