/*
 * clientaddr.c - the client address behind trusted proxies.
 */
#include "clientaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../shared/util.h"

/* Parses one header entry ("1.2.3.4", "::1", "[::1]", "1.2.3.4:5678"). */
static int parse_ip(const char *s, size_t n, struct sockaddr_storage *ss)
{
	char buf[64];
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	const char *colon;

	while (n > 0 && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= sizeof(buf))
		return -1;
	if (s[0] == '[') {
		const char *rb = memchr(s, ']', n);
		if (rb == NULL)
			return -1;
		n = (size_t)(rb - s - 1);
		s++;
	} else if ((colon = memchr(s, ':', n)) != NULL &&
		   memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) == NULL) {
		n = (size_t)(colon - s);	/* v4 with a port */
	}
	memcpy(buf, s, n);
	buf[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, buf, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

/* Walks one X-Forwarded-For line right to left. Returns 1 when an
 * untrusted entry was found (the client), -1 at garbage (stop), 0 when
 * every entry was a trusted proxy (*found set if any entry parsed). */
static int xff_line(const struct egress *trusted, const struct http_header *h,
		    struct sockaddr_storage *out, int *found)
{
	const char *v = h->value;
	size_t end = h->value_len;

	while (end > 0) {
		size_t start = end;
		struct sockaddr_storage ss;
		while (start > 0 && v[start - 1] != ',')
			start--;
		if (parse_ip(v + start, end - start, &ss) == 0) {
			*out = ss;
			*found = 1;
			if (!egress_allow_listed(trusted, (struct sockaddr *)&ss))
				return 1;
		} else {
			return -1;	/* garbage: stop at what we trust */
		}
		end = start > 0 ? start - 1 : 0;
	}
	return 0;
}

/* The rightmost X-Forwarded-For entry that is not a trusted proxy, over
 * all header lines, the last line first (proxies append lines too). */
static int from_xff(const struct egress *trusted,
		    const struct http_request *req, struct sockaddr_storage *out)
{
	int found = 0;

	for (size_t i = req->nheaders; i > 0; i--) {
		const struct http_header *h = &req->headers[i - 1];
		int r;

		if (!strn_ieq(h->name, h->name_len, "X-Forwarded-For"))
			continue;
		r = xff_line(trusted, h, out, &found);
		if (r != 0)
			return r > 0 || found;
	}
	return found;
}

int clientaddr_resolve(const struct egress *trusted,
		       const struct sockaddr *peer,
		       const struct http_request *req,
		       struct sockaddr_storage *out, char *text, size_t size)
{
	const struct http_header *h;
	struct sockaddr_storage p;	/* peer may alias out */
	int got = 0;

	memset(&p, 0, sizeof(p));
	memcpy(&p, peer, peer->sa_family == AF_INET6
				 ? sizeof(struct sockaddr_in6)
				 : sizeof(struct sockaddr_in));
	peer = (const struct sockaddr *)&p;
	*out = p;
	if (trusted != NULL && egress_allow_listed(trusted, peer)) {
		if (http_header_get(req, "X-Forwarded-For") != NULL)
			got = from_xff(trusted, req, out);
		else if ((h = http_header_get(req, "CF-Connecting-IP")) != NULL)
			got = parse_ip(h->value, h->value_len, out) == 0;
		if (!got)
			*out = p;
	}
	if (got)
		sockaddr_format_host((struct sockaddr *)out, text, size);
	else
		sockaddr_format(peer, text, size);
	return got;
}
