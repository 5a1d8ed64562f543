/*
 * test_util.c - shared/util.c: strict base64, constant-time compare,
 * ports, address formatting, random tokens, case-insensitive compare.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "../../shared/util.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- base64 ---- */

static void test_b64_rfc4648_vectors(void **state)
{
	static const struct {
		const char *enc, *dec;
	} v[] = {
		{ "Zg==", "f" }, { "Zm8=", "fo" }, { "Zm9v", "foo" },
		{ "Zm9vYg==", "foob" }, { "Zm9vYmE=", "fooba" },
		{ "Zm9vYmFy", "foobar" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		unsigned char out[16];
		char enc[16];
		size_t el = strlen(v[i].enc), dl = strlen(v[i].dec);

		assert_int_equal(base64_is_strict(v[i].enc, el), 1);
		memset(out, 0xAA, sizeof(out));
		assert_int_equal(base64_decode_strict(v[i].enc, el, out),
				 (long)dl);
		assert_memory_equal(out, v[i].dec, dl);
		assert_int_equal(base64_encode((const unsigned char *)v[i].dec,
					       dl, enc), el);
		assert_string_equal(enc, v[i].enc);
	}
}

static void test_b64_full_alphabet(void **state)
{
	const char *all = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			  "0123456789+/";
	unsigned char out[48];
	char back[65];

	(void)state;
	assert_int_equal(base64_is_strict(all, 64), 1);
	assert_int_equal(base64_decode_strict(all, 64, out), 48);
	assert_int_equal(base64_encode(out, 48, back), 64);
	assert_string_equal(back, all);
	/* '+' and '/' decode to 62 and 63: "+/+/" -> fb ff bf */
	assert_int_equal(base64_decode_strict(S("+/+/"), out), 3);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(out[2], 0xbf);
}

static void test_b64_bad_length(void **state)
{
	unsigned char out[16];

	(void)state;
	assert_int_equal(base64_is_strict(S("")), 0);
	assert_int_equal(base64_is_strict(S("Z")), 0);
	assert_int_equal(base64_is_strict(S("Zg")), 0);	/* no padding */
	assert_int_equal(base64_is_strict(S("Zg=")), 0);
	assert_int_equal(base64_is_strict(S("Zm9")), 0);
	assert_int_equal(base64_is_strict(S("Zm9vY")), 0);
	assert_int_equal(base64_is_strict(S("Zg===")), 0);
	assert_int_equal(base64_decode_strict(S("Zg"), out), -1);
	assert_int_equal(base64_decode_strict(S("Zm9vY"), out), -1);
	assert_int_equal(base64_decode_strict(S(""), out), -1);
}

static void test_b64_bad_padding(void **state)
{
	unsigned char out[16];

	(void)state;
	assert_int_equal(base64_is_strict(S("====")), 0);
	assert_int_equal(base64_is_strict(S("Z===")), 0);	/* 3 '=' */
	assert_int_equal(base64_is_strict(S("=Zg=")), 0);
	assert_int_equal(base64_is_strict(S("Z=g=")), 0);	/* '=' inside */
	assert_int_equal(base64_is_strict(S("Zg=a")), 0);
	assert_int_equal(base64_is_strict(S("Zg==Zg==")), 0); /* mid pad */
	assert_int_equal(base64_is_strict(S("Zm8=Zm9v")), 0);
	assert_int_equal(base64_decode_strict(S("Zg==Zg=="), out), -1);
	assert_int_equal(base64_decode_strict(S("Z==="), out), -1);
}

static void test_b64_nonzero_trailing_bits(void **state)
{
	unsigned char out[16];

	(void)state;
	/* "Zg==" is canonical for "f"; Zh/Zi/.../Zv set the unused 4 bits */
	assert_int_equal(base64_is_strict(S("Zh==")), 0);
	assert_int_equal(base64_is_strict(S("Zv==")), 0);
	assert_int_equal(base64_is_strict(S("Zw==")), 1); /* 'w' = 48 */
	/* "Zm8=" is canonical for "fo"; '9' = 61 leaves 2 bits set */
	assert_int_equal(base64_is_strict(S("Zm9=")), 0);
	assert_int_equal(base64_is_strict(S("Zm+=")), 0);
	assert_int_equal(base64_decode_strict(S("Zh=="), out), -1);
	assert_int_equal(base64_decode_strict(S("Zm9="), out), -1);
}

static void test_b64_alphabet_strict(void **state)
{
	unsigned char out[16];

	(void)state;
	/* URL-safe alphabet is not standard base64 */
	assert_int_equal(base64_is_strict(S("ab-_")), 0);
	assert_int_equal(base64_is_strict(S("ab-/")), 0);
	assert_int_equal(base64_is_strict(S("ab+_")), 0);
	assert_int_equal(base64_is_strict(S("ab+/")), 1);
	assert_int_equal(base64_decode_strict(S("ab-_"), out), -1);
	/* whitespace, line breaks, NUL and high bytes */
	assert_int_equal(base64_is_strict(S("Zm 9")), 0);
	assert_int_equal(base64_is_strict(S("Zm9v\n")), 0);
	assert_int_equal(base64_is_strict(S("Zm9v\r\nZm9v")), 0);
	assert_int_equal(base64_is_strict(S("Zm\0v")), 0);
	assert_int_equal(base64_is_strict(S("Zm\xc3v")), 0);
	assert_int_equal(base64_is_strict(S("Zm9.")), 0);
	assert_int_equal(base64_decode_strict(S("Zm\0v"), out), -1);
}

static void test_b64_respects_len(void **state)
{
	unsigned char out[16];

	(void)state;
	/* only s[0..len) counts: trailing junk outside len is ignored */
	assert_int_equal(base64_is_strict("Zm9v!!!!", 4), 1);
	assert_int_equal(base64_decode_strict("Zm9v!!!!", 4, out), 3);
	assert_memory_equal(out, "foo", 3);
	/* and a valid prefix does not make an invalid whole valid */
	assert_int_equal(base64_is_strict("Zm9v!!!!", 8), 0);
}

static void test_b64_roundtrip_all_lengths(void **state)
{
	unsigned char in[100], dec[100];
	char enc[4 * ((100 + 2) / 3) + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 37 + 11);
	in[5] = 0;
	in[6] = 0xff;
	for (size_t len = 1; len <= sizeof(in); len++) {
		size_t el = base64_encode(in, len, enc);

		assert_int_equal(el, 4 * ((len + 2) / 3));
		assert_int_equal(strlen(enc), el);
		assert_int_equal(base64_is_strict(enc, el), 1);
		memset(dec, 0, sizeof(dec));
		assert_int_equal(base64_decode_strict(enc, el, dec), (long)len);
		assert_memory_equal(dec, in, len);
	}
	assert_int_equal(base64_encode(in, 0, enc), 0);
	assert_string_equal(enc, "");
}

/* A 24-char WebSocket key decodes to exactly 16 bytes. */
static void test_b64_ws_key(void **state)
{
	unsigned char out[18];

	(void)state;
	assert_int_equal(base64_decode_strict(S("dGhlIHNhbXBsZSBub25jZQ=="),
					      out), 16);
	assert_memory_equal(out, "the sample nonce", 16);
	assert_int_equal(base64_decode_strict(S("AAAAAAAAAAAAAAAAAAAAAAAA"),
					      out), 18);
}

/* ---- ct_equal ---- */

static void test_ct_equal(void **state)
{
	(void)state;
	assert_int_equal(ct_equal("secret", 6, "secret", 6), 1);
	assert_int_equal(ct_equal("secreT", 6, "secret", 6), 0);
	assert_int_equal(ct_equal("Secret", 6, "secret", 6), 0);
	assert_int_equal(ct_equal("secre", 5, "secret", 6), 0);	/* prefix */
	assert_int_equal(ct_equal("secrets", 7, "secret", 6), 0);
	assert_int_equal(ct_equal("secret\0", 7, "secret", 6), 0);
	assert_int_equal(ct_equal("", 0, "secret", 6), 0);
	assert_int_equal(ct_equal("x", 1, "", 0), 0);
	assert_int_equal(ct_equal("", 0, "", 0), 1);
	assert_int_equal(ct_equal("a\0b", 3, "a\0b", 3), 1);
	assert_int_equal(ct_equal("a\0b", 3, "a\0c", 3), 0);
	/* only the first la bytes of a are looked at */
	assert_int_equal(ct_equal("abcXYZ", 3, "abc", 3), 1);
}

/* ---- parse_port ---- */

static void test_parse_port(void **state)
{
	(void)state;
	assert_int_equal(parse_port(S("1"), 0), 1);
	assert_int_equal(parse_port(S("80"), 0), 80);
	assert_int_equal(parse_port(S("443"), 0), 443);
	assert_int_equal(parse_port(S("65535"), 0), 65535);
	assert_int_equal(parse_port(S("08080"), 0), 8080);
	assert_int_equal(parse_port(S("65536"), 0), -1);
	assert_int_equal(parse_port(S("99999"), 0), -1);
	assert_int_equal(parse_port(S("100000"), 0), -1);
	assert_int_equal(parse_port(S("000080"), 0), -1);	/* > 5 digits */
	assert_int_equal(parse_port(S("0"), 0), -1);
	assert_int_equal(parse_port(S("00"), 0), -1);
	assert_int_equal(parse_port(S("0"), 1), 0);
	assert_int_equal(parse_port(S("00000"), 1), 0);
	assert_int_equal(parse_port(S(""), 0), -1);
	assert_int_equal(parse_port(S(""), 1), -1);
	assert_int_equal(parse_port(S("abc"), 0), -1);
	assert_int_equal(parse_port(S("8a"), 0), -1);
	assert_int_equal(parse_port(S("-1"), 1), -1);
	assert_int_equal(parse_port(S("+80"), 0), -1);
	assert_int_equal(parse_port(S(" 80"), 0), -1);
	assert_int_equal(parse_port(S("80 "), 0), -1);
	assert_int_equal(parse_port(S("8\0"), 0), -1);
	assert_int_equal(parse_port(S("0x50"), 0), -1);
	/* len bounds the digits */
	assert_int_equal(parse_port("8080abc", 4, 0), 8080);
	assert_int_equal(parse_port("655359", 5, 0), 65535);
}

/* ---- sockaddr formatting ---- */

static void test_sockaddr_format_v4(void **state)
{
	struct sockaddr_in a;
	char out[64];

	(void)state;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(8080);
	assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &a.sin_addr), 1);
	sockaddr_format((struct sockaddr *)&a, out, sizeof(out));
	assert_string_equal(out, "192.0.2.7:8080");
	sockaddr_format_host((struct sockaddr *)&a, out, sizeof(out));
	assert_string_equal(out, "192.0.2.7");

	a.sin_port = htons(65535);
	a.sin_addr.s_addr = htonl(INADDR_ANY);
	sockaddr_format((struct sockaddr *)&a, out, sizeof(out));
	assert_string_equal(out, "0.0.0.0:65535");

	/* truncation stays NUL-terminated inside size */
	memset(out, 'Z', sizeof(out));
	sockaddr_format((struct sockaddr *)&a, out, 5);
	assert_string_equal(out, "0.0.");
	assert_int_equal(out[5], 'Z');
}

static void test_sockaddr_format_v6(void **state)
{
	struct sockaddr_in6 a;
	char out[80];

	(void)state;
	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	a.sin6_port = htons(443);
	a.sin6_addr = in6addr_loopback;
	sockaddr_format((struct sockaddr *)&a, out, sizeof(out));
	assert_string_equal(out, "[::1]:443");
	sockaddr_format_host((struct sockaddr *)&a, out, sizeof(out));
	assert_string_equal(out, "::1");

	assert_int_equal(inet_pton(AF_INET6, "2001:db8::a:b", &a.sin6_addr), 1);
	a.sin6_port = htons(1);
	sockaddr_format((struct sockaddr *)&a, out, sizeof(out));
	assert_string_equal(out, "[2001:db8::a:b]:1");

	assert_int_equal(inet_pton(AF_INET6, "::ffff:10.1.2.3", &a.sin6_addr),
			 1);
	sockaddr_format((struct sockaddr *)&a, out, sizeof(out));
	assert_string_equal(out, "[::ffff:10.1.2.3]:1");

	/* longest IPv6 text form fits the formatter's buffers */
	assert_int_equal(inet_pton(AF_INET6,
				   "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
				   &a.sin6_addr), 1);
	a.sin6_port = htons(65535);
	sockaddr_format((struct sockaddr *)&a, out, sizeof(out));
	assert_string_equal(out,
			    "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}

static void test_sockaddr_format_unknown_family(void **state)
{
	struct sockaddr_un u;
	char out[16];

	(void)state;
	memset(&u, 0, sizeof(u));
	u.sun_family = AF_UNIX;
	sockaddr_format((struct sockaddr *)&u, out, sizeof(out));
	assert_string_equal(out, "?");
	sockaddr_format_host((struct sockaddr *)&u, out, sizeof(out));
	assert_string_equal(out, "?");
}

/* ---- random_hex ---- */

static int all_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static void test_random_bytes(void **state)
{
	static unsigned char big[1 << 20];
	unsigned char a[32], b[32];
	size_t zeros = 0;

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	assert_int_equal(random_bytes(a, sizeof(a)), 0);
	assert_int_equal(random_bytes(b, sizeof(b)), 0);
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(random_bytes(a, 0), 0);
	/* more than one getrandom() call may hand out */
	assert_int_equal(random_bytes(big, sizeof(big)), 0);
	for (size_t i = 0; i < sizeof(big); i++)
		zeros += big[i] == 0;
	assert_true(zeros < sizeof(big) / 128);	/* ~1/256 expected */
}

static void test_random_hex(void **state)
{
	char a[129], b[129];

	(void)state;
	memset(a, 'X', sizeof(a));
	assert_int_equal(random_hex(a, 16), 0);
	assert_int_equal(strlen(a), 32);
	assert_true(all_lower_hex(a, 32));
	assert_int_equal(random_hex(b, 16), 0);
	assert_string_not_equal(a, b);

	assert_int_equal(random_hex(a, 64), 0);
	assert_int_equal(strlen(a), 128);
	assert_true(all_lower_hex(a, 128));

	assert_int_equal(random_hex(a, 1), 0);
	assert_int_equal(strlen(a), 2);

	memset(b, 'X', sizeof(b));
	assert_int_equal(random_hex(b, 65), -1);
	assert_int_equal(b[0], 'X');	/* nothing written */
}

/* ---- strn_ieq, clocks ---- */

static void test_strn_ieq(void **state)
{
	(void)state;
	assert_int_equal(strn_ieq(S("Upgrade"), "upgrade"), 1);
	assert_int_equal(strn_ieq(S("WEBSOCKET"), "websocket"), 1);
	assert_int_equal(strn_ieq(S("websocket"), "websocket"), 1);
	assert_int_equal(strn_ieq(S("websockets"), "websocket"), 0);
	assert_int_equal(strn_ieq(S("websocke"), "websocket"), 0);
	assert_int_equal(strn_ieq("websocketXYZ", 9, "websocket"), 1);
	assert_int_equal(strn_ieq(S(""), ""), 1);
	assert_int_equal(strn_ieq(S(""), "a"), 0);
	assert_int_equal(strn_ieq(S("a"), ""), 0);
	assert_int_equal(strn_ieq(S("abc"), "abd"), 0);
	/* a NUL inside s never matches a longer literal */
	assert_int_equal(strn_ieq(S("ab\0"), "ab"), 0);
}

static void test_now_ms(void **state)
{
	int64_t a, b;

	(void)state;
	a = now_ms();
	b = now_ms();
	assert_true(a > 0);
	assert_true(b >= a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_rfc4648_vectors),
		cmocka_unit_test(test_b64_full_alphabet),
		cmocka_unit_test(test_b64_bad_length),
		cmocka_unit_test(test_b64_bad_padding),
		cmocka_unit_test(test_b64_nonzero_trailing_bits),
		cmocka_unit_test(test_b64_alphabet_strict),
		cmocka_unit_test(test_b64_respects_len),
		cmocka_unit_test(test_b64_roundtrip_all_lengths),
		cmocka_unit_test(test_b64_ws_key),
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_parse_port),
		cmocka_unit_test(test_sockaddr_format_v4),
		cmocka_unit_test(test_sockaddr_format_v6),
		cmocka_unit_test(test_sockaddr_format_unknown_family),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_random_hex),
		cmocka_unit_test(test_strn_ieq),
		cmocka_unit_test(test_now_ms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
