/*
 * auth.h - deciding whether an upgrade request may open a tunnel, and
 * which Sec-WebSocket-Protocol value the 101 echoes.
 */
#ifndef ECH3_AUTH_H
#define ECH3_AUTH_H

#include <stddef.h>

#include "../shared/config.h"
#include "http.h"

struct auth_result {
	const char *protocol;	/* value to echo (into the request), or NULL */
	size_t protocol_len;
	char user[64];		/* who, for logs: "-" for the static token */
	const char *reason;	/* refusal class, for the 401 body and log */
};

/* Returns 0 when the request is authorised (out filled), -1 when not
 * (out->reason set). Never logs or copies the token. */
int auth_check(const struct config *cfg, const struct http_request *req,
	       struct auth_result *out);

#endif
