/*
 * clientaddr.h - who the client is: the TCP peer, or, only when the peer
 * is one of trusted_proxies, the address a proxy put in X-Forwarded-For
 * (the rightmost entry that is not itself a trusted proxy) or, without
 * that header, CF-Connecting-IP.
 */
#ifndef ECH3_CLIENTADDR_H
#define ECH3_CLIENTADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include "egress.h"
#include "http.h"

/* Fills out (address, port 0 when it came from a header) and text.
 * trusted may be NULL (no proxies trusted). Returns 1 when the address
 * came from a header, 0 when it is the peer. */
int clientaddr_resolve(const struct egress *trusted,
		       const struct sockaddr *peer,
		       const struct http_request *req,
		       struct sockaddr_storage *out, char *text, size_t size);

#endif
