/*
 * url.h - the fixed-target URL (target_url): tcp://host:port,
 * ws://host[:port][/path] or wss://host[:port][/path].
 */
#ifndef ECH3_URL_H
#define ECH3_URL_H

enum url_scheme { URL_NONE = 0, URL_TCP, URL_WS, URL_WSS };

struct url {
	enum url_scheme scheme;
	char host[254];		/* without brackets */
	int port;
	char path[512];		/* "/..." with the query, for ws/wss */
	char hostport[264];	/* as sent in Host: ("h:p" or "[v6]:p") */
};

/* Parses s; "" gives URL_NONE. Returns 0, or -1 with a reason in *why. */
int url_parse(const char *s, struct url *u, const char **why);

#endif
