/*
 * http.c - a strict, allocation-free parser for the HTTP/1.1 request head
 * of an upgrade, and the WebSocket handshake checks. Limits on total size
 * are the caller's (it owns the buffer); this file limits the header count
 * and rejects anything ambiguous: NUL bytes, control characters, line
 * folding, header lines without a colon, names that are not tokens.
 */
#include "http.h"

#include <string.h>

#include "../shared/util.h"

static int is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Finds the end of the line starting at p: returns the index of '\n'
 * relative to buf, or -1 if none before len. */
static long line_end(const char *buf, size_t pos, size_t len)
{
	const char *nl = memchr(buf + pos, '\n', len - pos);

	return nl != NULL ? (long)(nl - buf) : -1;
}

/* Length of the line content [pos, nl) without a trailing '\r'. */
static size_t line_len(const char *buf, size_t pos, long nl)
{
	size_t n = (size_t)nl - pos;

	return n > 0 && buf[pos + n - 1] == '\r' ? n - 1 : n;
}

static int parse_request_line(const char *s, size_t n,
			      struct http_request *req)
{
	size_t i = 0, start;

	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i >= n || s[i] != ' ')
		return -1;
	req->method = s;
	req->method_len = i;
	start = ++i;
	while (i < n && (unsigned char)s[i] > 0x20 && s[i] != 0x7f)
		i++;
	if (i == start || i >= n || s[i] != ' ')
		return -1;
	req->target = s + start;
	req->target_len = i - start;
	i++;
	if (n - i != 8 || memcmp(s + i, "HTTP/1.", 7) != 0 ||
	    (s[i + 7] != '0' && s[i + 7] != '1'))
		return -1;
	req->minor = s[i + 7] - '0';
	return 0;
}

static int parse_header(const char *s, size_t n, struct http_header *h)
{
	size_t i = 0, vs, ve;

	while (i < n && is_tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i >= n || s[i] != ':')
		return -1;
	h->name = s;
	h->name_len = i;
	vs = i + 1;
	while (vs < n && (s[vs] == ' ' || s[vs] == '\t'))
		vs++;
	ve = n;
	while (ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t'))
		ve--;
	for (size_t k = vs; k < ve; k++) {
		unsigned char c = (unsigned char)s[k];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
	}
	h->value = s + vs;
	h->value_len = ve - vs;
	return 0;
}

static int parse_status_line(const char *s, size_t n,
			     struct http_request *req, int *status)
{
	if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 ||
	    (s[7] != '0' && s[7] != '1') || s[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return -1;
	if (n > 12 && s[12] != ' ')
		return -1;
	req->minor = s[7] - '0';
	*status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	return 0;
}

/* Parses the first line with first_line, then the header lines. */
static long parse_head(const char *buf, size_t len, struct http_request *req,
		       struct http_header *headers, size_t max, int *status)
{
	size_t pos = 0;
	long nl;
	int r;

	memset(req, 0, sizeof(*req));
	req->headers = headers;
	nl = line_end(buf, 0, len);
	if (memchr(buf, '\0', nl < 0 ? len : (size_t)nl) != NULL)
		return HTTP_BAD;	/* NUL in the head, even an unfinished one */
	if (nl < 0)
		return HTTP_INCOMPLETE;
	r = status != NULL
		    ? parse_status_line(buf, line_len(buf, 0, nl), req, status)
		    : parse_request_line(buf, line_len(buf, 0, nl), req);
	if (r < 0)
		return HTTP_BAD;
	pos = (size_t)nl + 1;
	for (;;) {
		size_t n;

		nl = line_end(buf, pos, len);
		if (memchr(buf + pos, '\0', (nl < 0 ? len : (size_t)nl) - pos) != NULL)
			return HTTP_BAD;
		if (nl < 0)
			return HTTP_INCOMPLETE;
		n = line_len(buf, pos, nl);
		if (n == 0)
			return nl + 1;
		if (buf[pos] == ' ' || buf[pos] == '\t')
			return HTTP_BAD;	/* obsolete line folding */
		if (req->nheaders == max)
			return HTTP_TOO_LARGE;
		if (parse_header(buf + pos, n, &headers[req->nheaders]) < 0)
			return HTTP_BAD;
		req->nheaders++;
		pos = (size_t)nl + 1;
	}
}

long http_parse_request(const char *buf, size_t len, struct http_request *req,
			struct http_header *headers, size_t max)
{
	return parse_head(buf, len, req, headers, max, NULL);
}

long http_parse_response(const char *buf, size_t len, struct http_request *req,
			 struct http_header *headers, size_t max, int *status)
{
	return parse_head(buf, len, req, headers, max, status);
}

const struct http_header *http_header_get(const struct http_request *req,
					  const char *name)
{
	for (size_t i = 0; i < req->nheaders; i++)
		if (strn_ieq(req->headers[i].name, req->headers[i].name_len,
			     name))
			return &req->headers[i];
	return NULL;
}

size_t http_header_count(const struct http_request *req, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < req->nheaders; i++)
		n += (size_t)strn_ieq(req->headers[i].name,
				      req->headers[i].name_len, name);
	return n;
}

int http_list_has(const char *value, size_t len, const char *token)
{
	const char *item;
	size_t pos = 0, n;

	while (list_next(value, len, &pos, &item, &n))
		if (strn_ieq(item, n, token))
			return 1;
	return 0;
}

size_t http_path_len(const struct http_request *req)
{
	const char *q = memchr(req->target, '?', req->target_len);

	return q != NULL ? (size_t)(q - req->target) : req->target_len;
}

enum upgrade_check http_check_upgrade(const struct http_request *req,
				      const char **key, size_t *key_len)
{
	const struct http_header *up = http_header_get(req, "Upgrade");
	const struct http_header *conn = http_header_get(req, "Connection");
	const struct http_header *ver, *k;
	unsigned char raw[18];

	if (up == NULL || !http_list_has(up->value, up->value_len, "websocket"))
		return UPGRADE_NONE;
	if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0 ||
	    req->minor != 1)
		return UPGRADE_BAD;
	if (conn == NULL ||
	    !http_list_has(conn->value, conn->value_len, "upgrade"))
		return UPGRADE_BAD;
	if (http_header_count(req, "Sec-WebSocket-Key") != 1 ||
	    http_header_count(req, "Sec-WebSocket-Version") > 1)
		return UPGRADE_BAD;
	k = http_header_get(req, "Sec-WebSocket-Key");
	if (k->value_len != 24 ||
	    base64_decode_strict(k->value, k->value_len, raw) != 16)
		return UPGRADE_BAD;
	ver = http_header_get(req, "Sec-WebSocket-Version");
	if (ver == NULL || !strn_ieq(ver->value, ver->value_len, "13"))
		return UPGRADE_VERSION;
	*key = k->value;
	*key_len = k->value_len;
	return UPGRADE_OK;
}
