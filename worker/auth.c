/*
 * auth.c - static token and JWT authentication of an upgrade request.
 *
 * Carriers are tried in order: Authorization: Bearer, then
 * Sec-WebSocket-Protocol (the whole value, then each comma-separated
 * entry), then the `token` query parameter. A credential that looks like
 * a JWT (when JWT keys are configured) is verified and its verdict is
 * final; anything else is compared with the static token in constant
 * time, and a mismatch moves on to the next candidate. The 101 echoes the
 * Sec-WebSocket-Protocol entry that carried the credential, or else the
 * first offered entry (browsers and ws refuse a 101 that drops it).
 */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../shared/util.h"

const char *const auth_reasons[AUTH_REASONS] = {
	"missing_token", "invalid_token", "token_too_long", "malformed",
	"unsupported_alg", "unknown_kid", "alg_key_mismatch",
	"invalid_signature", "expired", "not_yet_valid", "missing_exp",
	"invalid_issuer", "invalid_audience", "invalid_claims",
	"internal_error", "other",
};

int auth_reason_index(const char *reason)
{
	for (int i = 0; i < AUTH_REASONS - 1; i++)
		if (reason != NULL && strcmp(reason, auth_reasons[i]) == 0)
			return i;
	return AUTH_REASONS - 1;
}

enum verdict { NO_MATCH, ACCEPTED, REFUSED };

struct ctx {
	const struct config *cfg;
	const struct jwt_keyset *jwt;
	struct auth_result *out;
	int seen;		/* some credential was presented */
};

/* Judges one credential. */
static enum verdict judge(struct ctx *x, const char *s, size_t n)
{
	const char *why = NULL;
	struct jwt_claims claims;

	x->seen = 1;
	if (x->jwt != NULL && jwt_looks_like(s, n)) {
		x->out->jwt = 1;
		if (jwt_verify(x->jwt, s, n, (long)time(NULL), &claims,
			       &why) < 0) {
			x->out->reason = why != NULL ? why : "invalid_token";
			snprintf(x->out->user, sizeof(x->out->user), "%s",
				 claims.sub);
			return REFUSED;
		}
		snprintf(x->out->user, sizeof(x->out->user), "%s", claims.sub);
		snprintf(x->out->subject, sizeof(x->out->subject), "%s",
			 claims.sub_key);
		if (claims.has_dest) {
			x->out->claims = malloc(sizeof(claims));
			if (x->out->claims == NULL) {
				x->out->reason = "internal_error";
				return REFUSED;
			}
			memcpy(x->out->claims, &claims, sizeof(claims));
		}
		return ACCEPTED;
	}
	if (x->cfg->token[0] != '\0' &&
	    ct_equal(s, n, x->cfg->token, strlen(x->cfg->token))) {
		snprintf(x->out->user, sizeof(x->out->user), "-");
		return ACCEPTED;
	}
	return NO_MATCH;
}

static enum verdict try_bearer(struct ctx *x, const struct http_request *req)
{
	const struct http_header *h = http_header_get(req, "Authorization");

	if (h == NULL || h->value_len < 7 || !strn_ieq(h->value, 7, "Bearer "))
		return NO_MATCH;
	return judge(x, h->value + 7, h->value_len - 7);
}

static enum verdict try_protocol(struct ctx *x, const struct http_request *req)
{
	const struct http_header *h =
		http_header_get(req, "Sec-WebSocket-Protocol");
	const char *v, *item;
	size_t len, pos = 0, n;
	enum verdict r;

	if (h == NULL)
		return NO_MATCH;
	v = h->value;
	len = h->value_len;
	/* The whole value first: the old server compared it whole. */
	if ((r = judge(x, v, len)) != NO_MATCH) {
		x->out->protocol = v;
		x->out->protocol_len = len;
		x->out->in_protocol = 1;
		return r;
	}
	while (list_next(v, len, &pos, &item, &n)) {
		if (item == v && n == len)
			continue;	/* the whole value: judged above */
		if ((r = judge(x, item, n)) != NO_MATCH) {
			x->out->protocol = item;
			x->out->protocol_len = n;
			x->out->in_protocol = 1;
			return r;
		}
	}
	return NO_MATCH;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes s[0..n) into out (room for n). Returns the length. */
static size_t pct_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n + 0 && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			out[o++] = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i] == '+' ? ' ' : s[i];
		}
	}
	return o;
}

static enum verdict try_query(struct ctx *x, const struct http_request *req)
{
	const char *q = memchr(req->target, '?', req->target_len);
	const char *end = req->target + req->target_len;

	if (q == NULL)
		return NO_MATCH;
	for (const char *p = q + 1; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pe = amp != NULL ? amp : end;
		if (pe - p > 6 && memcmp(p, "token=", 6) == 0) {
			size_t n = (size_t)(pe - p - 6);
			char *buf = malloc(n + 1);
			enum verdict r;
			if (buf == NULL) {
				x->out->reason = "internal_error";
				return REFUSED;
			}
			r = judge(x, buf, pct_decode(p + 6, n, buf));
			free(buf);
			return r;
		}
		p = pe + 1;
	}
	return NO_MATCH;
}

/* When the credential did not travel in Sec-WebSocket-Protocol, echo the
 * first offered entry, if any. */
static void echo_first(const struct http_request *req, struct auth_result *out)
{
	const struct http_header *h =
		http_header_get(req, "Sec-WebSocket-Protocol");
	size_t pos = 0;

	if (h == NULL || out->protocol != NULL)
		return;
	if (!list_next(h->value, h->value_len, &pos, &out->protocol,
			    &out->protocol_len))
		out->protocol = NULL;
}

int auth_check(const struct config *cfg, const struct jwt_keyset *jwt,
	       const struct http_request *req, struct auth_result *out)
{
	struct ctx x = { cfg, jwt, out, 0 };
	enum verdict r;

	memset(out, 0, sizeof(*out));
	snprintf(out->user, sizeof(out->user), "-");
	if (jwt != NULL && !jwt_keyset_enabled(jwt))
		x.jwt = NULL;
	r = try_bearer(&x, req);
	if (r == NO_MATCH)
		r = try_protocol(&x, req);
	if (r == NO_MATCH)
		r = try_query(&x, req);
	if (r == NO_MATCH && cfg->allow_anonymous) {
		snprintf(out->user, sizeof(out->user), "anonymous");
		r = ACCEPTED;
	}
	if (r == ACCEPTED) {
		echo_first(req, out);
		return 0;
	}
	if (out->reason == NULL)
		out->reason = x.seen ? "invalid_token" : "missing_token";
	free(out->claims);
	out->claims = NULL;
	return -1;
}
