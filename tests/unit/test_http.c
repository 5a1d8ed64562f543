/*
 * test_http.c - worker/http.c: the request-head parser and the WebSocket
 * upgrade checks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/http.h"

#define S(lit) (lit), (sizeof(lit) - 1)
#define MAXH 64

struct parsed {
	struct http_request req;
	struct http_header hdr[MAXH];
	long r;
};

static long parse_n(struct parsed *p, const char *buf, size_t len,
		    size_t max)
{
	memset(p, 0, sizeof(*p));
	p->r = http_parse_request(buf, len, &p->req, p->hdr, max);
	return p->r;
}

static long parse(struct parsed *p, const char *buf, size_t len)
{
	return parse_n(p, buf, len, MAXH);
}

static void assert_span(const char *p, size_t n, const char *want)
{
	assert_int_equal(n, strlen(want));
	assert_memory_equal(p, want, n);
}

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static const char upgrade_req[] =
	"GET /tunnel?x=1 HTTP/1.1\r\n"
	"Host: example.com\r\n"
	"Upgrade: websocket\r\n"
	"Connection: Upgrade\r\n"
	"Sec-WebSocket-Key: " KEY "\r\n"
	"Sec-WebSocket-Version: 13\r\n"
	"\r\n";

/* ---- the parser ---- */

static void test_parse_basic(void **state)
{
	struct parsed p;
	const struct http_header *h;

	(void)state;
	assert_int_equal(parse(&p, S(upgrade_req)),
			 (long)(sizeof(upgrade_req) - 1));
	assert_span(p.req.method, p.req.method_len, "GET");
	assert_span(p.req.target, p.req.target_len, "/tunnel?x=1");
	assert_int_equal(p.req.minor, 1);
	assert_int_equal(p.req.nheaders, 5);
	assert_ptr_equal(p.req.headers, p.hdr);
	assert_span(p.hdr[0].name, p.hdr[0].name_len, "Host");
	assert_span(p.hdr[0].value, p.hdr[0].value_len, "example.com");
	assert_span(p.hdr[4].name, p.hdr[4].name_len, "Sec-WebSocket-Version");
	assert_span(p.hdr[4].value, p.hdr[4].value_len, "13");
	/* pointers point into the caller's buffer (no copies) */
	assert_true(p.req.method == upgrade_req);
	assert_true(p.hdr[0].name >= upgrade_req &&
		    p.hdr[0].name < upgrade_req + sizeof(upgrade_req));

	h = http_header_get(&p.req, "host");
	assert_non_null(h);
	assert_ptr_equal(h, &p.hdr[0]);
	h = http_header_get(&p.req, "SEC-WEBSOCKET-KEY");
	assert_non_null(h);
	assert_span(h->value, h->value_len, KEY);
	assert_null(http_header_get(&p.req, "Sec-WebSocket-Protocol"));
	assert_null(http_header_get(&p.req, "Hos"));
	assert_null(http_header_get(&p.req, "Hostname"));
	assert_int_equal(http_path_len(&p.req), 7);	/* "/tunnel" */
}

static void test_parse_http10_and_methods(void **state)
{
	struct parsed p;

	(void)state;
	assert_true(parse(&p, S("HEAD / HTTP/1.0\r\n\r\n")) > 0);
	assert_int_equal(p.req.minor, 0);
	assert_span(p.req.method, p.req.method_len, "HEAD");
	assert_int_equal(p.req.nheaders, 0);
	assert_int_equal(parse(&p, S("X-CUSTOM! /a HTTP/1.1\r\n\r\n")), 25);
	assert_span(p.req.method, p.req.method_len, "X-CUSTOM!");
	assert_true(parse(&p, S("OPTIONS * HTTP/1.1\r\n\r\n")) > 0);
	assert_span(p.req.target, p.req.target_len, "*");
	assert_true(parse(&p, S("GET http://h/p?q HTTP/1.1\r\n\r\n")) > 0);
	assert_span(p.req.target, p.req.target_len, "http://h/p?q");
}

static void test_parse_returns_head_len_with_trailing_bytes(void **state)
{
	struct parsed p;
	char buf[256];
	const char *head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t hl = strlen(head);

	(void)state;
	snprintf(buf, sizeof(buf), "%s%s", head, "GET / HTTP/1.1\r\n");
	assert_int_equal(parse(&p, buf, strlen(buf)), (long)hl);
	snprintf(buf, sizeof(buf), "%s%s", head, "\x81\x85zzzzhello");
	assert_int_equal(parse(&p, buf, strlen(buf)), (long)hl);
}

/* A client may send its first WebSocket frame right behind the request;
 * the caller passes those bytes to the parser too (conn.c hands the
 * whole buffer in, then ws_prime()s what follows the head). Masked frame
 * bytes routinely contain 0x00, which must not make the head "bad". */
static void test_parse_nul_after_head_is_not_bad(void **state)
{
	struct parsed p;
	char buf[256];
	const char *head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t hl = strlen(head);
	static const char frame[] = "\x82\x82\x00\x00\x00\x00\x00\x00";

	(void)state;
	memcpy(buf, head, hl);
	memcpy(buf + hl, frame, sizeof(frame) - 1);
	assert_int_equal(parse(&p, buf, hl + sizeof(frame) - 1), (long)hl);
}

static void test_parse_incomplete_every_split(void **state)
{
	struct parsed p;
	size_t total = sizeof(upgrade_req) - 1;
	char *copy = malloc(total);

	(void)state;
	assert_non_null(copy);
	for (size_t n = 0; n < total; n++) {
		/* an exact-size heap copy so ASan sees any overread */
		memcpy(copy, upgrade_req, n);
		if (parse(&p, copy, n) != HTTP_INCOMPLETE)
			fail_msg("prefix of %zu/%zu bytes: got %ld", n, total,
				 p.r);
	}
	memcpy(copy, upgrade_req, total);
	assert_int_equal(parse(&p, copy, total), (long)total);
	free(copy);
}

static void test_parse_incomplete_every_split_lf(void **state)
{
	static const char req[] = "GET /x HTTP/1.1\nHost: h\nA: b\n\n";
	struct parsed p;
	size_t total = sizeof(req) - 1;

	(void)state;
	for (size_t n = 0; n < total; n++)
		if (parse(&p, req, n) != HTTP_INCOMPLETE)
			fail_msg("LF prefix %zu: got %ld", n, p.r);
	assert_int_equal(parse(&p, req, total), (long)total);
	assert_int_equal(p.req.nheaders, 2);
}

static void test_parse_lf_only_and_mixed(void **state)
{
	struct parsed p;

	(void)state;
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\nHost: h\n\n")), 24);
	assert_int_equal(p.req.minor, 1);
	assert_int_equal(p.req.nheaders, 1);
	assert_span(p.hdr[0].value, p.hdr[0].value_len, "h");
	/* mixed line ends */
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nHost: h\n\r\n")), 26);
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\nHost: h\r\n\n")), 25);
	assert_span(p.hdr[0].value, p.hdr[0].value_len, "h");
}

static void test_parse_header_values(void **state)
{
	struct parsed p;

	(void)state;
	assert_true(parse(&p, S("GET / HTTP/1.1\r\n"
				"A:x\r\n"
				"B:   spaced   \r\n"
				"C:\t\ttabbed\t \r\n"
				"D:\r\n"
				"E:   \r\n"
				"F: in ner\tvalue\r\n"
				"G: \x80\xff obs-text\r\n"
				"\r\n")) > 0);
	assert_int_equal(p.req.nheaders, 7);
	assert_span(p.hdr[0].value, p.hdr[0].value_len, "x");
	assert_span(p.hdr[1].value, p.hdr[1].value_len, "spaced");
	assert_span(p.hdr[2].value, p.hdr[2].value_len, "tabbed");
	assert_int_equal(p.hdr[3].value_len, 0);
	assert_int_equal(p.hdr[4].value_len, 0);
	assert_span(p.hdr[5].value, p.hdr[5].value_len, "in ner\tvalue");
	assert_span(p.hdr[6].value, p.hdr[6].value_len, "\x80\xff obs-text");
	assert_span(p.hdr[6].name, p.hdr[6].name_len, "G");
}

static void test_parse_header_without_colon(void **state)
{
	struct parsed p;

	(void)state;
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nHost\r\n\r\n")),
			 HTTP_BAD);
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nHost a\r\n\r\n")),
			 HTTP_BAD);
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nHost: a\r\n"
				     "garbage\r\n\r\n")), HTTP_BAD);
	/* a bad line is rejected as soon as it is complete */
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nHost\r\n")), HTTP_BAD);
}

static void test_parse_bad_header_names(void **state)
{
	struct parsed p;

	(void)state;
	/* whitespace between name and colon (RFC 7230 3.2.4: reject) */
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nHost : a\r\n\r\n")),
			 HTTP_BAD);
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n")),
			 HTTP_BAD);
	/* empty name */
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\n: a\r\n\r\n")),
			 HTTP_BAD);
	/* non-token characters */
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n")),
			 HTTP_BAD);
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nHo\"st: a\r\n\r\n")),
			 HTTP_BAD);
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nH\x80: a\r\n\r\n")),
			 HTTP_BAD);
	/* all the tchar punctuation is fine */
	assert_true(parse(&p, S("GET / HTTP/1.1\r\n"
				"!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n")) > 0);
	assert_span(p.hdr[0].name, p.hdr[0].name_len,
		    "!#$%&'*+-.^_`|~09azAZ");
}

static void test_parse_control_chars_in_value(void **state)
{
	struct parsed p;

	(void)state;
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nA: x\x01y\r\n\r\n")),
			 HTTP_BAD);
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nA: x\x7fy\r\n\r\n")),
			 HTTP_BAD);
	/* bare CR inside a value */
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nA: x\ry\r\n\r\n")),
			 HTTP_BAD);
	/* CR CR LF: the line keeps one CR */
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nA: x\r\r\n\r\n")),
			 HTTP_BAD);
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nA: x\x1b[0m\r\n\r\n")),
			 HTTP_BAD);
}

static void test_parse_obs_fold(void **state)
{
	struct parsed p;

	(void)state;
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nA: x\r\n"
				     " continued\r\n\r\n")), HTTP_BAD);
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nA: x\r\n"
				     "\tcontinued\r\n\r\n")), HTTP_BAD);
	/* whitespace before the first header line */
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\n Host: a\r\n\r\n")),
			 HTTP_BAD);
	/* a whitespace-only line is not the blank line */
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nA: x\r\n \r\n\r\n")),
			 HTTP_BAD);
}

static void test_parse_nul_bytes(void **state)
{
	struct parsed p;

	(void)state;
	assert_int_equal(parse(&p, S("GET /\0 HTTP/1.1\r\n\r\n")), HTTP_BAD);
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nA: x\0y\r\n\r\n")),
			 HTTP_BAD);
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nA\0: x\r\n\r\n")),
			 HTTP_BAD);
	assert_int_equal(parse(&p, S("\0GET / HTTP/1.1\r\n\r\n")), HTTP_BAD);
	/* a NUL is rejected at once, before the line or head is complete */
	assert_int_equal(parse(&p, S("GET /\0")), HTTP_BAD);
	assert_int_equal(parse(&p, S("GET / HTTP/1.1\r\nHost: a\0")), HTTP_BAD);
}

static void test_parse_request_line_errors(void **state)
{
	static const char *const bad[] = {
		"\r\n\r\n",			/* empty request line */
		"GET\r\n\r\n",
		"GET /\r\n\r\n",
		"GET / \r\n\r\n",
		"GET  / HTTP/1.1\r\n\r\n",	/* double space */
		"GET /  HTTP/1.1\r\n\r\n",
		" GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1 \r\n\r\n",	/* trailing space */
		"GET\t/\tHTTP/1.1\r\n\r\n",
		"GET / HTTP/1.2\r\n\r\n",
		"GET / HTTP/2.0\r\n\r\n",
		"GET / HTTP/1.10\r\n\r\n",
		"GET / HTTP/1\r\n\r\n",
		"GET / HTTP/1.\r\n\r\n",
		"GET / http/1.1\r\n\r\n",
		"GET / HTTPS/1.1\r\n\r\n",
		"GET / HTTP/1.1x\r\n\r\n",
		"G@T / HTTP/1.1\r\n\r\n",	/* non-token method */
		"GET /a\x7f HTTP/1.1\r\n\r\n",	/* DEL in target */
		"GET /a\x01 HTTP/1.1\r\n\r\n",
		"GET /a\rb HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\r\n\r\n",
		"GET / HTTP/1.1 extra\r\n\r\n",
	};
	struct parsed p;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(&p, bad[i], strlen(bad[i])) != HTTP_BAD)
			fail_msg("request #%zu \"%s\": got %ld, want %d", i,
				 bad[i], p.r, HTTP_BAD);
}

static void test_parse_too_many_headers(void **state)
{
	char buf[1024];
	struct parsed p;
	size_t n;

	(void)state;
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 4; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "H%d: v\r\n",
				      i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");

	/* exactly max fits */
	assert_int_equal(parse_n(&p, buf, n, 4), (long)n);
	assert_int_equal(p.req.nheaders, 4);
	/* one more than max */
	assert_int_equal(parse_n(&p, buf, n, 3), HTTP_TOO_LARGE);
	assert_int_equal(parse_n(&p, buf, n, 1), HTTP_TOO_LARGE);
	assert_int_equal(parse_n(&p, buf, n, 0), HTTP_TOO_LARGE);
	/* the overflow is seen before the head is complete */
	assert_int_equal(parse_n(&p, buf, n - 2, 3), HTTP_TOO_LARGE);
	/* headers not written beyond max */
	assert_int_equal(p.req.nheaders, 3);
	/* no headers at all with max 0 */
	assert_int_equal(parse_n(&p, S("GET / HTTP/1.1\r\n\r\n"), 0), 18);
}

static void test_parse_too_many_headers_no_overflow(void **state)
{
	char buf[4096];
	struct http_request req;
	struct http_header hdr[5];	/* sentinel after the 4 usable */
	size_t n;

	(void)state;
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X%d: y\r\n",
				      i);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\r\n");
	memset(&hdr[4], 0x5a, sizeof(hdr[4]));
	assert_int_equal(http_parse_request(buf, n, &req, hdr, 4),
			 HTTP_TOO_LARGE);
	for (size_t i = 0; i < sizeof(hdr[4]); i++)
		assert_int_equal(((unsigned char *)&hdr[4])[i], 0x5a);
}

static void test_header_count_and_get(void **state)
{
	struct parsed p;
	const struct http_header *h;

	(void)state;
	assert_true(parse(&p, S("GET / HTTP/1.1\r\n"
				"X-A: 1\r\nx-a: 2\r\nX-B: 3\r\nX-A: 4\r\n"
				"\r\n")) > 0);
	assert_int_equal(http_header_count(&p.req, "X-A"), 3);
	assert_int_equal(http_header_count(&p.req, "x-b"), 1);
	assert_int_equal(http_header_count(&p.req, "X-C"), 0);
	assert_int_equal(http_header_count(&p.req, "X-"), 0);
	h = http_header_get(&p.req, "x-A");
	assert_non_null(h);
	assert_span(h->value, h->value_len, "1");	/* the first one */
}

static void test_list_has(void **state)
{
	(void)state;
	assert_int_equal(http_list_has(S("Upgrade"), "upgrade"), 1);
	assert_int_equal(http_list_has(S("keep-alive, Upgrade"), "upgrade"), 1);
	assert_int_equal(http_list_has(S("keep-alive,Upgrade"), "upgrade"), 1);
	assert_int_equal(http_list_has(S("Upgrade, keep-alive"), "upgrade"), 1);
	assert_int_equal(http_list_has(S(" ,\t, UPGRADE \t,,"), "upgrade"), 1);
	assert_int_equal(http_list_has(S("keep-alive"), "upgrade"), 0);
	assert_int_equal(http_list_has(S("upgrades"), "upgrade"), 0);
	assert_int_equal(http_list_has(S("xupgrade"), "upgrade"), 0);
	assert_int_equal(http_list_has(S("up grade"), "upgrade"), 0);
	assert_int_equal(http_list_has(S("upgrade;q=1"), "upgrade"), 0);
	assert_int_equal(http_list_has(S(""), "upgrade"), 0);
	assert_int_equal(http_list_has(S(",,,"), "upgrade"), 0);
	/* only value[0..len) is looked at */
	assert_int_equal(http_list_has("upgradeX", 7, "upgrade"), 1);
	assert_int_equal(http_list_has("keep-alive, upgrade", 10, "upgrade"),
			 0);
}

static void test_path_len(void **state)
{
	struct parsed p;

	(void)state;
	assert_true(parse(&p, S("GET /a/b?x=1&y=2 HTTP/1.1\r\n\r\n")) > 0);
	assert_int_equal(http_path_len(&p.req), 4);
	assert_true(parse(&p, S("GET /?q HTTP/1.1\r\n\r\n")) > 0);
	assert_int_equal(http_path_len(&p.req), 1);
	assert_true(parse(&p, S("GET /plain HTTP/1.1\r\n\r\n")) > 0);
	assert_int_equal(http_path_len(&p.req), 6);
	assert_true(parse(&p, S("GET ?only HTTP/1.1\r\n\r\n")) > 0);
	assert_int_equal(http_path_len(&p.req), 0);
}

/* ---- http_check_upgrade ---- */

/* Parses a request built from the given header lines and classifies it. */
static enum upgrade_check check(const char *reqline, const char *headers,
				const char **key, size_t *key_len)
{
	static char buf[4096];
	static struct parsed p;
	int n = snprintf(buf, sizeof(buf), "%s\r\n%s\r\n", reqline, headers);

	assert_true(n > 0 && (size_t)n < sizeof(buf));
	if (parse(&p, buf, (size_t)n) != n)
		fail_msg("request did not parse: %ld\n%s", p.r, buf);
	*key = NULL;
	*key_len = 0;
	return http_check_upgrade(&p.req, key, key_len);
}

#define GOOD_HDRS_BUT(conn, key, ver)                                         \
	"Host: h\r\nUpgrade: websocket\r\n" conn key ver

static void test_upgrade_ok(void **state)
{
	struct parsed p;
	const char *key = NULL;
	size_t klen = 0;

	(void)state;
	assert_true(parse(&p, S(upgrade_req)) > 0);
	assert_int_equal(http_check_upgrade(&p.req, &key, &klen), UPGRADE_OK);
	assert_non_null(key);
	assert_int_equal(klen, 24);
	assert_memory_equal(key, KEY, 24);
	assert_true(key > upgrade_req &&
		    key < upgrade_req + sizeof(upgrade_req));
}

static void test_upgrade_case_and_lists(void **state)
{
	const char *key;
	size_t klen;

	(void)state;
	assert_int_equal(check("GET / HTTP/1.1",
			       "upgrade: WebSocket\r\n"
			       "connection: keep-alive, Upgrade\r\n"
			       "sec-websocket-key: " KEY "\r\n"
			       "sec-websocket-version: 13\r\n",
			       &key, &klen), UPGRADE_OK);
	assert_int_equal(klen, 24);
	assert_memory_equal(key, KEY, 24);
	assert_int_equal(check("GET / HTTP/1.1",
			       "Upgrade: h2c, websocket\r\n"
			       "Connection: Upgrade, HTTP2-Settings\r\n"
			       "Sec-WebSocket-Key: " KEY "\r\n"
			       "Sec-WebSocket-Version: 13\r\n",
			       &key, &klen), UPGRADE_OK);
}

static void test_upgrade_none(void **state)
{
	const char *key;
	size_t klen;

	(void)state;
	assert_int_equal(check("GET / HTTP/1.1", "Host: h\r\n", &key, &klen),
			 UPGRADE_NONE);
	assert_int_equal(check("GET / HTTP/1.0", "", &key, &klen),
			 UPGRADE_NONE);
	assert_int_equal(check("POST /x HTTP/1.1",
			       "Upgrade: h2c\r\nConnection: Upgrade\r\n",
			       &key, &klen), UPGRADE_NONE);
	/* a WebSocket key alone does not make it an upgrade */
	assert_int_equal(check("GET / HTTP/1.1",
			       "Connection: Upgrade\r\n"
			       "Sec-WebSocket-Key: " KEY "\r\n"
			       "Sec-WebSocket-Version: 13\r\n",
			       &key, &klen), UPGRADE_NONE);
	assert_null(key);
}

static void test_upgrade_bad_method_version(void **state)
{
	const char *key;
	size_t klen;
	const char *h = GOOD_HDRS_BUT("Connection: Upgrade\r\n",
				      "Sec-WebSocket-Key: " KEY "\r\n",
				      "Sec-WebSocket-Version: 13\r\n");

	(void)state;
	assert_int_equal(check("POST / HTTP/1.1", h, &key, &klen), UPGRADE_BAD);
	assert_int_equal(check("get / HTTP/1.1", h, &key, &klen), UPGRADE_BAD);
	assert_int_equal(check("GETX / HTTP/1.1", h, &key, &klen),
			 UPGRADE_BAD);
	assert_int_equal(check("GET / HTTP/1.0", h, &key, &klen), UPGRADE_BAD);
	assert_null(key);
}

static void test_upgrade_bad_connection(void **state)
{
	const char *key;
	size_t klen;

	(void)state;
	assert_int_equal(check("GET / HTTP/1.1",
			       GOOD_HDRS_BUT("",
					     "Sec-WebSocket-Key: " KEY "\r\n",
					     "Sec-WebSocket-Version: 13\r\n"),
			       &key, &klen), UPGRADE_BAD);
	assert_int_equal(check("GET / HTTP/1.1",
			       GOOD_HDRS_BUT("Connection: keep-alive\r\n",
					     "Sec-WebSocket-Key: " KEY "\r\n",
					     "Sec-WebSocket-Version: 13\r\n"),
			       &key, &klen), UPGRADE_BAD);
	assert_int_equal(check("GET / HTTP/1.1",
			       GOOD_HDRS_BUT("Connection: upgraded\r\n",
					     "Sec-WebSocket-Key: " KEY "\r\n",
					     "Sec-WebSocket-Version: 13\r\n"),
			       &key, &klen), UPGRADE_BAD);
	assert_null(key);
}

static void test_upgrade_bad_keys(void **state)
{
	static const char *const bad_keys[] = {
		"",
		"dGhlIHNhbXBsZSBub25jZQ=",	/* 23 chars */
		"dGhlIHNhbXBsZSBub25jZQ===",	/* 25 chars */
		"dGhlIHNhbXBsZSBub25jZR==",	/* non-zero trailing bits */
		"AAAAAAAAAAAAAAAAAAAAAAAA",	/* 24 chars, 18 bytes */
		"dGhlIHNhbXBsZSBub25jZ-==",	/* URL-safe alphabet */
		"dGhlIHNhbXBsZSBub25j ZQ=",	/* space inside */
		"dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
		"dGhlIHNhbXBsZSBub25jZQ",	/* no padding */
	};
	const char *key;
	size_t klen;
	char hdrs[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
		snprintf(hdrs, sizeof(hdrs),
			 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\n"
			 "Sec-WebSocket-Version: 13\r\n", bad_keys[i]);
		if (check("GET / HTTP/1.1", hdrs, &key, &klen) != UPGRADE_BAD)
			fail_msg("key #%zu '%s' was accepted", i, bad_keys[i]);
		assert_null(key);
	}
	/* surrounding whitespace is OWS, not part of the key */
	assert_int_equal(check("GET / HTTP/1.1",
			       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			       "Sec-WebSocket-Key: \t " KEY " \t\r\n"
			       "Sec-WebSocket-Version: 13\r\n", &key, &klen),
			 UPGRADE_OK);
	assert_int_equal(klen, 24);
}

static void test_upgrade_missing_or_duplicate_key(void **state)
{
	const char *key;
	size_t klen;

	(void)state;
	assert_int_equal(check("GET / HTTP/1.1",
			       GOOD_HDRS_BUT("Connection: Upgrade\r\n", "",
					     "Sec-WebSocket-Version: 13\r\n"),
			       &key, &klen), UPGRADE_BAD);
	assert_int_equal(check("GET / HTTP/1.1",
			       GOOD_HDRS_BUT("Connection: Upgrade\r\n",
					     "Sec-WebSocket-Key: " KEY "\r\n"
					     "Sec-WebSocket-Key: " KEY "\r\n",
					     "Sec-WebSocket-Version: 13\r\n"),
			       &key, &klen), UPGRADE_BAD);
	assert_int_equal(check("GET / HTTP/1.1",
			       GOOD_HDRS_BUT("Connection: Upgrade\r\n",
					     "Sec-WebSocket-Key: " KEY "\r\n"
					     "sec-websocket-key: "
					     "AAAAAAAAAAAAAAAAAAAAAA==\r\n",
					     "Sec-WebSocket-Version: 13\r\n"),
			       &key, &klen), UPGRADE_BAD);
	/* duplicate version headers are ambiguous too */
	assert_int_equal(check("GET / HTTP/1.1",
			       GOOD_HDRS_BUT("Connection: Upgrade\r\n",
					     "Sec-WebSocket-Key: " KEY "\r\n",
					     "Sec-WebSocket-Version: 13\r\n"
					     "Sec-WebSocket-Version: 13\r\n"),
			       &key, &klen), UPGRADE_BAD);
	assert_null(key);
}

static void test_upgrade_wrong_version_426(void **state)
{
	static const char *const versions[] = {
		"8", "12", "14", "0", "", "13, 8", "130", "1 3",
	};
	const char *key;
	size_t klen;
	char hdrs[512];

	(void)state;
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		snprintf(hdrs, sizeof(hdrs),
			 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: " KEY "\r\n"
			 "Sec-WebSocket-Version: %s\r\n", versions[i]);
		if (check("GET / HTTP/1.1", hdrs, &key, &klen) !=
		    UPGRADE_VERSION)
			fail_msg("version '%s' not answered with 426",
				 versions[i]);
		assert_null(key);
	}
	/* a missing version is answered with 426 as well */
	assert_int_equal(check("GET / HTTP/1.1",
			       GOOD_HDRS_BUT("Connection: Upgrade\r\n",
					     "Sec-WebSocket-Key: " KEY "\r\n",
					     ""),
			       &key, &klen), UPGRADE_VERSION);
	/* a bad key is still a 400, whatever the version */
	assert_int_equal(check("GET / HTTP/1.1",
			       GOOD_HDRS_BUT("Connection: Upgrade\r\n",
					     "Sec-WebSocket-Key: short\r\n",
					     "Sec-WebSocket-Version: 8\r\n"),
			       &key, &klen), UPGRADE_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_basic),
		cmocka_unit_test(test_parse_http10_and_methods),
		cmocka_unit_test(test_parse_returns_head_len_with_trailing_bytes),
		cmocka_unit_test(test_parse_nul_after_head_is_not_bad),
		cmocka_unit_test(test_parse_incomplete_every_split),
		cmocka_unit_test(test_parse_incomplete_every_split_lf),
		cmocka_unit_test(test_parse_lf_only_and_mixed),
		cmocka_unit_test(test_parse_header_values),
		cmocka_unit_test(test_parse_header_without_colon),
		cmocka_unit_test(test_parse_bad_header_names),
		cmocka_unit_test(test_parse_control_chars_in_value),
		cmocka_unit_test(test_parse_obs_fold),
		cmocka_unit_test(test_parse_nul_bytes),
		cmocka_unit_test(test_parse_request_line_errors),
		cmocka_unit_test(test_parse_too_many_headers),
		cmocka_unit_test(test_parse_too_many_headers_no_overflow),
		cmocka_unit_test(test_header_count_and_get),
		cmocka_unit_test(test_list_has),
		cmocka_unit_test(test_path_len),
		cmocka_unit_test(test_upgrade_ok),
		cmocka_unit_test(test_upgrade_case_and_lists),
		cmocka_unit_test(test_upgrade_none),
		cmocka_unit_test(test_upgrade_bad_method_version),
		cmocka_unit_test(test_upgrade_bad_connection),
		cmocka_unit_test(test_upgrade_bad_keys),
		cmocka_unit_test(test_upgrade_missing_or_duplicate_key),
		cmocka_unit_test(test_upgrade_wrong_version_426),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
