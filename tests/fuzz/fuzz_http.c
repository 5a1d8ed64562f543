/*
 * fuzz_http.c - libFuzzer harness for the HTTP request-head parser
 * (worker/http.c): http_parse_request on arbitrary bytes with a small
 * header array, then every helper the server runs on a parsed request
 * (http_check_upgrade, http_header_get/count, http_list_has,
 * http_path_len).
 *
 * Input: byte 0 picks the header-array size (0..15); the rest is the
 * request head. The head is copied into an exactly-sized heap buffer so
 * AddressSanitizer sees any read past its end.
 *
 * Invariants checked (abort = finding):
 *   - the result is HTTP_INCOMPLETE, HTTP_BAD, HTTP_TOO_LARGE or a length
 *     in 1..len ending just after a '\n';
 *   - every parsed pointer lies inside the buffer;
 *   - the server parses incrementally (conn.c read_head re-parses after
 *     each read): when the whole head parses, every shorter prefix must be
 *     HTTP_INCOMPLETE (a split TCP segment must never turn a valid
 *     request into 400/431), and parsing exactly the head gives the same
 *     length;
 *   - http_check_upgrade's key, on UPGRADE_OK, is 24 bytes inside the
 *     buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/http.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
	return p >= buf && p + n <= buf + len && n <= len;
}

static void check_request(const struct http_request *req, const char *buf,
			  size_t len, size_t max)
{
	CHECK(req->nheaders <= max);
	CHECK(inside(req->method, req->method_len, buf, len));
	CHECK(inside(req->target, req->target_len, buf, len));
	CHECK(req->minor == 0 || req->minor == 1);
	for (size_t i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		CHECK(h->name_len > 0);
		CHECK(inside(h->name, h->name_len, buf, len));
		CHECK(inside(h->value, h->value_len, buf, len));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_header headers[16];
	struct http_request req;
	const char *key = NULL;
	size_t key_len = 0, max, len;
	char *buf;
	long r;

	if (size < 1)
		return 0;
	max = data[0] & 0x0f;
	len = size - 1;
	buf = malloc(len ? len : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, len);

	r = http_parse_request(buf, len, &req, headers, max);
	CHECK(r == HTTP_INCOMPLETE || r == HTTP_BAD || r == HTTP_TOO_LARGE ||
	      (r > 0 && (size_t)r <= len && buf[r - 1] == '\n'));
	if (r > 0) {
		struct http_request again;
		struct http_header h2[16];
		enum upgrade_check u;
		const struct http_header *h;
		size_t plen;

		check_request(&req, buf, (size_t)r, max);
		u = http_check_upgrade(&req, &key, &key_len);
		CHECK(u == UPGRADE_NONE || u == UPGRADE_OK || u == UPGRADE_BAD ||
		      u == UPGRADE_VERSION);
		if (u == UPGRADE_OK)
			CHECK(key_len == 24 && inside(key, key_len, buf, len));
		plen = http_path_len(&req);
		CHECK(plen <= req.target_len);
		for (size_t i = 0; i < req.nheaders; i++) {
			(void)http_list_has(req.headers[i].value,
					    req.headers[i].value_len, "upgrade");
			(void)http_list_has(req.headers[i].value,
					    req.headers[i].value_len, "");
		}
		h = http_header_get(&req, "Sec-WebSocket-Protocol");
		CHECK(h == NULL || http_header_count(&req,
						     "sec-websocket-protocol") >= 1);

		/* exactly the head: same answer */
		CHECK(http_parse_request(buf, (size_t)r, &again, h2, max) == r);
		/* a few shorter prefixes: incomplete, never an error */
		for (size_t k = 1; k <= 8; k++) {
			size_t cut = (size_t)r * k / 9;
			CHECK(http_parse_request(buf, cut, &again, h2, max) ==
			      HTTP_INCOMPLETE);
		}
		CHECK(http_parse_request(buf, (size_t)r - 1, &again, h2, max) ==
		      HTTP_INCOMPLETE);
	}
	free(buf);
	return 0;
}
