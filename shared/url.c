/*
 * url.c - parsing target_url.
 */
#include "url.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

static int scheme_of(const char *s, struct url *u, const char **rest)
{
	static const struct { const char *p; enum url_scheme s; int port; } k[] = {
		{ "tcp://", URL_TCP, 0 }, { "ws://", URL_WS, 80 },
		{ "wss://", URL_WSS, 443 },
	};

	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
		if (strncmp(s, k[i].p, strlen(k[i].p)) == 0) {
			u->scheme = k[i].s;
			u->port = k[i].port;
			*rest = s + strlen(k[i].p);
			return 0;
		}
	return -1;
}

int url_parse(const char *s, struct url *u, const char **why)
{
	const char *p, *slash, *hend, *colon = NULL;
	size_t hl;

	memset(u, 0, sizeof(*u));
	if (s == NULL || s[0] == '\0')
		return 0;
	if (scheme_of(s, u, &p) < 0)
		return *why = "scheme must be tcp://, ws:// or wss://", -1;
	slash = strchr(p, '/');
	hend = slash != NULL ? slash : p + strlen(p);
	if (u->scheme == URL_TCP && slash != NULL && slash[1] != '\0')
		return *why = "tcp:// takes no path", -1;
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(hend - p));
		if (rb == NULL)
			return *why = "unclosed [ in the host", -1;
		hl = (size_t)(rb - p - 1);
		if (hl == 0 || hl >= sizeof(u->host))
			return *why = "bad host", -1;
		memcpy(u->host, p + 1, hl);
		if (rb + 1 < hend) {
			if (rb[1] != ':')
				return *why = "bad host", -1;
			colon = rb + 1;
		}
	} else {
		colon = memchr(p, ':', (size_t)(hend - p));
		hl = (size_t)((colon != NULL ? colon : hend) - p);
		if (hl == 0 || hl >= sizeof(u->host))
			return *why = "missing or bad host", -1;
		memcpy(u->host, p, hl);
	}
	if (strpbrk(u->host, " @/?#") != NULL)
		return *why = "bad host", -1;
	if (colon != NULL) {
		u->port = parse_port(colon + 1, (size_t)(hend - colon - 1), 0);
		if (u->port < 0)
			return *why = "bad port", -1;
	}
	if (u->port == 0)
		return *why = "tcp:// needs a port", -1;
	snprintf(u->path, sizeof(u->path), "%s", slash != NULL ? slash : "/");
	snprintf(u->hostport, sizeof(u->hostport),
		 strchr(u->host, ':') ? "[%s]:%d" : "%s:%d", u->host, u->port);
	return 0;
}
