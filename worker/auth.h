/*
 * auth.h - deciding whether an upgrade request may open a tunnel: the
 * static token and JWTs, from the carriers in order (Authorization:
 * Bearer, Sec-WebSocket-Protocol whole or one entry, the `token` query
 * parameter), and which Sec-WebSocket-Protocol value the 101 echoes.
 */
#ifndef ECH3_AUTH_H
#define ECH3_AUTH_H

#include <stddef.h>

#include "../shared/config.h"
#include "../shared/jwt.h"
#include "http.h"

/* Refusal reasons, in the order metrics count them. */
extern const char *const auth_reasons[];
#define AUTH_REASONS 16

struct auth_result {
	const char *protocol;	/* value to echo (into the request), or NULL */
	size_t protocol_len;
	int in_protocol;	/* protocol carried the credential itself */
	char user[64];		/* "-" (static token), "anonymous", JWT sub
				 * (printable, for logs) */
	char subject[256];	/* the exact JWT sub, for per-subject limits */
	const char *reason;	/* refusal class (a fixed string) */
	int jwt;		/* a JWT was presented (reason goes in the body) */
	struct jwt_claims *claims; /* malloc'd when a JWT limits destinations */
};

/* Returns 0 when authorised (out filled; free out->claims later), -1
 * when not (out->reason set). Never logs or copies a token. jwt may be
 * NULL (JWT off). */
int auth_check(const struct config *cfg, const struct jwt_keyset *jwt,
	       const struct http_request *req, struct auth_result *out);

/* Index of reason in auth_reasons (the last one for unknown reasons). */
int auth_reason_index(const char *reason);

#endif
