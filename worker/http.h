/*
 * http.h - the HTTP/1.1 request parser (pure: no I/O) and the checks of a
 * WebSocket upgrade request (RFC 6455 section 4.2.1).
 */
#ifndef ECH3_HTTP_H
#define ECH3_HTTP_H

#include <stddef.h>

struct http_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

struct http_request {
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	int minor;			/* HTTP/1.<minor> */
	struct http_header *headers;	/* caller's array */
	size_t nheaders;
};

#define HTTP_INCOMPLETE 0
#define HTTP_BAD (-400)
#define HTTP_TOO_LARGE (-431)

/* Parses the request head in buf[0..len). headers has room for max
 * entries. Returns the length of the head (through the blank line) when
 * complete, HTTP_INCOMPLETE when more bytes are needed, HTTP_BAD for a
 * malformed request, HTTP_TOO_LARGE for more than max header lines. */
long http_parse_request(const char *buf, size_t len, struct http_request *req,
			struct http_header *headers, size_t max);

/* Parses a response head ("HTTP/1.1 101 ...", headers, blank line) the
 * same way; req->minor is set and *status gets the status code. */
long http_parse_response(const char *buf, size_t len, struct http_request *req,
			 struct http_header *headers, size_t max, int *status);

/* The first header named name (case-insensitive), or NULL. */
const struct http_header *http_header_get(const struct http_request *req,
					  const char *name);

/* How many headers are named name. */
size_t http_header_count(const struct http_request *req, const char *name);

/* 1 when the comma-separated value contains token (case-insensitive). */
int http_list_has(const char *value, size_t len, const char *token);

/* The request path without the query, as pointer and length. */
size_t http_path_len(const struct http_request *req);

enum upgrade_check {
	UPGRADE_NONE = 0,	/* a plain HTTP request */
	UPGRADE_OK = 1,
	UPGRADE_BAD = 2,	/* 400 */
	UPGRADE_VERSION = 3,	/* 426 with Sec-WebSocket-Version: 13 */
};

/* Classifies the request; on UPGRADE_OK *key points at the client's
 * Sec-WebSocket-Key (24 base64 chars). */
enum upgrade_check http_check_upgrade(const struct http_request *req,
				      const char **key, size_t *key_len);

#endif
