/*
 * auth.c - the static token check: the whole Sec-WebSocket-Protocol value
 * or one of its comma-separated entries must equal the token (compared in
 * constant time); that value is echoed in the 101. Anonymous mode echoes
 * the first offered entry so strict clients (browsers, ws) accept the 101.
 */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "../shared/util.h"

/* Calls fn on each trimmed comma-separated entry until it returns 1. */
static int each_entry(const char *v, size_t len,
		      int (*fn)(const char *, size_t, void *), void *arg)
{
	size_t i = 0;

	while (i < len) {
		size_t s, e;
		while (i < len && (v[i] == ' ' || v[i] == '\t'))
			i++;
		s = i;
		while (i < len && v[i] != ',')
			i++;
		e = i++;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e > s && fn(v + s, e - s, arg))
			return 1;
	}
	return 0;
}

struct match {
	const char *token;
	size_t token_len;
	const char *hit;
	size_t hit_len;
};

static int match_token(const char *s, size_t n, void *arg)
{
	struct match *m = arg;

	if (!ct_equal(s, n, m->token, m->token_len))
		return 0;
	m->hit = s;
	m->hit_len = n;
	return 1;
}

static int take_first(const char *s, size_t n, void *arg)
{
	struct match *m = arg;

	m->hit = s;
	m->hit_len = n;
	return 1;
}

int auth_check(const struct config *cfg, const struct http_request *req,
	       struct auth_result *out)
{
	const struct http_header *h =
		http_header_get(req, "Sec-WebSocket-Protocol");
	struct match m = { cfg->token, strlen(cfg->token), NULL, 0 };

	memset(out, 0, sizeof(*out));
	snprintf(out->user, sizeof(out->user), "-");
	if (m.token_len > 0 && h != NULL) {
		if (ct_equal(h->value, h->value_len, m.token, m.token_len)) {
			out->protocol = h->value;
			out->protocol_len = h->value_len;
			return 0;
		}
		if (each_entry(h->value, h->value_len, match_token, &m)) {
			out->protocol = m.hit;
			out->protocol_len = m.hit_len;
			return 0;
		}
	}
	if (cfg->allow_anonymous) {
		if (h != NULL && each_entry(h->value, h->value_len, take_first, &m)) {
			out->protocol = m.hit;
			out->protocol_len = m.hit_len;
		}
		snprintf(out->user, sizeof(out->user), "anonymous");
		return 0;
	}
	out->reason = h == NULL ? "missing_token" : "invalid_token";
	return -1;
}
