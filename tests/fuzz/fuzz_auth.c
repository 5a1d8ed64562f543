/*
 * fuzz_auth.c - libFuzzer harness for authentication (worker/auth.c and
 * the JWT verifier in shared/jwt.c): a request built from the input with
 * http_parse_request, then auth_check with a config that has a static
 * token and a JWT keyset with an HMAC secret - the token extraction path
 * (Authorization: Bearer, Sec-WebSocket-Protocol whole and per entry, the
 * percent-decoded `token` query parameter) and jwt_verify behind it.
 *
 * Byte 0 of the input is a selector:
 *   bits 0-2  mode
 *     0,6,7  the rest is a raw request head
 *     1      the rest is the Sec-WebSocket-Protocol value of a template
 *     2      the rest is the Authorization value ("Bearer " prepended)
 *     3      the rest is the query string of the request target
 *     4      the rest is "<JWT header JSON>\n<JWT payload JSON>": the
 *            harness signs it with the HMAC secret (HS256/384/512 by bits
 *            5-6) so claim checking past the signature is reached; bit 7
 *            puts it in Sec-WebSocket-Protocol instead of Bearer
 *     5      the rest goes straight to jwt_verify, jwt_looks_like and
 *            jwt_dest_parse
 *   bit 3    config with allow_anonymous
 *   bit 4    keyset B (kid, issuer, audience, exp required) instead of A
 * Bytes that cannot appear in a header value or target are mapped to
 * '.' (modes 1-4), so most inputs reach auth_check.
 *
 * Invariants (abort = finding): auth_check returns 0 or -1; on 0 the user
 * is a NUL-terminated string and the echoed protocol lies inside the
 * request buffer; on -1 a reason is set and no claims are left; the
 * reason's index is in range; jwt_verify's reason is NULL exactly on
 * success.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../../shared/config.h"
#include "../../shared/jwt.h"
#include "../../worker/auth.h"
#include "../../worker/http.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define TOKEN "fuzz-static-token-0123"
#define SECRET "fuzz-hmac-secret-0123456789abcdefghijklmnop"

static struct config *cfg_plain, *cfg_anon;
static struct jwt_keyset *ks_a, *ks_b;
static int debug;	/* FUZZ_AUTH_DEBUG=1: print each verdict (seed checks) */

static void init(void)
{
	char err[CONFIG_ERR_MAX];
	struct jwt_settings a = { 0 }, b = { 0 };

	cfg_plain = config_new();
	cfg_anon = config_new();
	if (cfg_plain == NULL || cfg_anon == NULL ||
	    config_set(cfg_plain, "token=" TOKEN, err, sizeof(err)) < 0 ||
	    config_set(cfg_plain, "jwt.secret=" SECRET, err, sizeof(err)) < 0 ||
	    config_set(cfg_anon, "token=" TOKEN, err, sizeof(err)) < 0 ||
	    config_set(cfg_anon, "allow_anonymous=true", err, sizeof(err)) < 0)
		abort();
	a.secret = SECRET;
	a.max_token_bytes = 8192;
	b.secret = SECRET;
	b.secret_kid = "k1";
	b.issuer = "fuzz-iss";
	b.audience = "fuzz-aud";
	b.require_exp = 1;
	b.leeway = 30;
	b.max_token_bytes = 512;
	debug = getenv("FUZZ_AUTH_DEBUG") != NULL;
	ks_a = jwt_keyset_load(&a, err, sizeof(err));
	ks_b = jwt_keyset_load(&b, err, sizeof(err));
	if (ks_a == NULL || ks_b == NULL || !jwt_keyset_enabled(ks_a))
		abort();
}

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0, i;

	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	if (n - i == 1) {
		unsigned v = (unsigned)in[i] << 16;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
	} else if (n - i == 2) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
	}
	return o;
}

/* header.payload.signature, HMAC-signed with SECRET. */
static char *sign(const uint8_t *d, size_t n, int alg)
{
	const EVP_MD *md = alg == 1 ? EVP_sha384() : alg == 2 ? EVP_sha512()
							       : EVP_sha256();
	const uint8_t *nl = memchr(d, '\n', n);
	size_t hl = nl != NULL ? (size_t)(nl - d) : n;
	size_t pl = nl != NULL ? n - hl - 1 : 0;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char *t = malloc((n + 64) * 2 + 16);
	size_t o;

	if (t == NULL)
		return NULL;
	o = b64url(d, hl, t);
	t[o++] = '.';
	o += b64url(nl != NULL ? nl + 1 : d, pl, t + o);
	if (HMAC(md, SECRET, (int)strlen(SECRET), (unsigned char *)t, o, mac,
		 &maclen) == NULL) {
		free(t);
		return NULL;
	}
	t[o++] = '.';
	o += b64url(mac, maclen, t + o);
	t[o] = '\0';
	return t;
}

/* Header values and targets cannot hold control bytes: map them. */
static void clean(char *s, size_t n, int target)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f || (target && (c == ' ' || c >= 0x80)))
			s[i] = '.';
	}
}

static char *build(const char *fmt_pre, const char *v, size_t vn,
		   const char *post, size_t *len)
{
	size_t a = strlen(fmt_pre), c = strlen(post);
	char *r = malloc(a + vn + c);

	if (r == NULL)
		return NULL;
	memcpy(r, fmt_pre, a);
	memcpy(r + a, v, vn);
	memcpy(r + a + vn, post, c);
	*len = a + vn + c;
	return r;
}

#define HEAD "GET /tunnel HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n" \
	     "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" \
	     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"

static void run_auth(const struct config *cfg, const struct jwt_keyset *ks,
		     const char *buf, size_t len)
{
	struct http_header headers[16];
	struct http_request req;
	struct auth_result out;
	long r = http_parse_request(buf, len, &req, headers, 16);
	int rc;

	if (r <= 0)
		return;
	rc = auth_check(cfg, ks, &req, &out);
	CHECK(rc == 0 || rc == -1);
	if (debug)
		fprintf(stderr, "auth_check: %d user=%.64s reason=%s\n", rc,
			out.user, out.reason ? out.reason : "-");
	CHECK(memchr(out.user, '\0', sizeof(out.user)) != NULL);
	CHECK(auth_reason_index(out.reason) >= 0 &&
	      auth_reason_index(out.reason) < AUTH_REASONS);
	if (rc == 0) {
		if (out.protocol != NULL)
			CHECK(out.protocol >= buf &&
			      out.protocol + out.protocol_len <= buf + len);
		if (out.claims != NULL)
			CHECK(out.claims->ndest <= JWT_DEST_MAX);
		free(out.claims);
	} else {
		CHECK(out.reason != NULL && out.claims == NULL);
	}
	/* the keyset-less path too (JWT off) */
	rc = auth_check(cfg, NULL, &req, &out);
	CHECK(rc == 0 || rc == -1);
	free(out.claims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct config *cfg;
	const struct jwt_keyset *ks;
	char *v = NULL, *req = NULL, *tok = NULL;
	size_t n, len = 0;
	unsigned sel;

	if (cfg_plain == NULL)
		init();
	if (size < 1)
		return 0;
	sel = data[0];
	cfg = sel & 8 ? cfg_anon : cfg_plain;
	ks = sel & 16 ? ks_b : ks_a;
	data++;
	n = size - 1;
	v = malloc(n ? n : 1);
	if (v == NULL)
		return 0;
	memcpy(v, data, n);

	switch (sel & 7) {
	case 1:
		clean(v, n, 0);
		req = build(HEAD "Sec-WebSocket-Protocol: ", v, n, "\r\n\r\n", &len);
		break;
	case 2:
		clean(v, n, 0);
		req = build(HEAD "Authorization: Bearer ", v, n, "\r\n\r\n", &len);
		break;
	case 3:
		clean(v, n, 1);
		req = build("GET /?", v, n, " HTTP/1.1\r\nHost: x\r\n\r\n", &len);
		break;
	case 4:
		tok = sign(data, n, (int)(sel >> 5) & 3);
		if (tok == NULL)
			break;
		req = build(sel & 128 ? HEAD "Sec-WebSocket-Protocol: chat, "
				      : HEAD "Authorization: Bearer ",
			    tok, strlen(tok), "\r\n\r\n", &len);
		break;
	case 5: {
		struct jwt_claims c;
		struct jwt_dest d;
		const char *why = "unset";
		int rc = jwt_verify(ks, v, n, 1700000000L, &c, &why);
		if (debug)
			fprintf(stderr, "jwt_verify: %d %s\n", rc,
				why ? why : "-");
		CHECK((rc == 0) == (why == NULL));
		CHECK(memchr(c.sub, '\0', sizeof(c.sub)) != NULL);
		CHECK(c.ndest <= JWT_DEST_MAX);
		(void)jwt_looks_like(v, n);
		if (jwt_dest_parse(v, n, &d) == 0) {
			CHECK(memchr(d.host, '\0', sizeof(d.host)) != NULL);
			CHECK(d.port_lo >= 0 && d.port_lo <= d.port_hi &&
			      d.port_hi <= 65535);
		}
		break;
	}
	default:
		req = malloc(n ? n : 1);
		if (req != NULL) {
			memcpy(req, data, n);
			len = n;
		}
		break;
	}
	if (req != NULL)
		run_auth(cfg, ks, req, len);
	free(req);
	free(tok);
	free(v);
	return 0;
}
