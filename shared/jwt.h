/*
 * jwt.h - JSON Web Token authentication: loading the verification keys,
 * verifying a client's token (signature, algorithm pinning, exp/nbf/iss/
 * aud), the per-token destination limits and minting tokens (`ech3 token`).
 *
 * libjwt 1.10 only checks signatures; every claim check is done here.
 *
 * Keys. One optional HMAC secret (HS256/384/512, at least 32 bytes) and any
 * number of PEM public keys ("-----BEGIN PUBLIC KEY-----"): RSA (>= 2048
 * bits, RS256/384/512) or EC (P-256 ES256, P-384 ES384, P-521 ES512). Each
 * key only ever verifies the algorithms of its own family (and curve), so
 * an HS256 token can never be checked against an RSA public key. A key
 * entry is "kid=path" when it has a '=' before any '/', else just "path".
 *
 * Key choice. A token with a kid uses the key with that kid; if none has
 * it, the keys without a kid are tried; if there are none, "unknown_kid".
 * A token without a kid tries every key of the family its alg needs.
 *
 * Destination claim. "ech3_dest" is a JSON array of at most JWT_DEST_MAX
 * strings "host:port". host is "*" (any), "*.example.com" (any name ending
 * in ".example.com", not example.com itself), an exact name or IPv4
 * address, or "[v6addr]"; port is "*", "N" or "N-M". Names compare
 * case-insensitively, IPv6 by address. An empty array allows nothing; no
 * claim allows everything. Example:
 *   "ech3_dest": ["*.corp.example:443", "10.0.0.5:22", "[::1]:8000-8099"]
 *
 * Header limits. Only alg HS/RS/ES 256/384/512 (exact case); "typ" must be
 * absent or "JWT" (libjwt 1.10 refuses anything else); "crit" is refused;
 * jku/jwk/x5u/x5c are ignored (keys only ever come from the settings).
 * A claim ech3 reads (exp nbf iss aud sub ech3_dest) given twice is
 * "malformed".
 *
 * The keyset is read-only once loaded: share it between threads freely.
 * now is wall-clock unix time (time(NULL)), not now_ms().
 */
#ifndef ECH3_JWT_H
#define ECH3_JWT_H

#include <stddef.h>

#define JWT_DEFAULT_MAX_TOKEN_BYTES 8192
#define JWT_SECRET_MIN 32

struct jwt_settings {		/* filled by the lead from the config */
	const char *secret;	/* HMAC secret inline, or NULL/"" */
	const char *secret_file; /* HMAC secret from a file (trailing newline
				  * stripped), or NULL/"" */
	const char *secret_kid;	/* kid of the secret, or NULL/"" */
	const char *const *keys; /* "kid=/path/key.pem" or "/path/key.pem" */
	size_t nkeys;
	const char *issuer;	/* required iss when non-empty */
	const char *audience;	/* required in aud (string or array) */
	int require_exp;	/* exp claim required */
	long leeway;		/* s of clock skew allowed for exp and nbf */
	long max_token_bytes;	/* longer tokens refused before parsing;
				 * <= 0 means JWT_DEFAULT_MAX_TOKEN_BYTES */
};

struct jwt_keyset;		/* the loaded keys + a copy of the settings */

/* Loads every key. NULL with err naming the file and why. A keyset with no
 * key at all is valid and means JWT is disabled. */
struct jwt_keyset *jwt_keyset_load(const struct jwt_settings *s, char *err,
				   size_t errlen);
int jwt_keyset_enabled(const struct jwt_keyset *ks);
void jwt_keyset_free(struct jwt_keyset *ks);

#define JWT_DEST_MAX 16

struct jwt_dest {
	char host[254];		/* "*", "*.suffix", a name, IPv4 or IPv6
				 * (without brackets); lowercase */
	int port_lo, port_hi;
};

struct jwt_claims {
	char sub[64];		/* "-" if absent; printable ASCII only */
	char sub_key[256];	/* the raw sub (a long one: prefix + hash), for
				 * per-subject limits; "" if absent */
	int has_dest;		/* the token limits destinations */
	struct jwt_dest dest[JWT_DEST_MAX];
	size_t ndest;
	long exp;		/* 0 if absent */
};

/* Verifies token[0..len) at unix time now. Returns 0 with claims filled,
 * or -1 with *reason one of the fixed strings:
 *   token_too_long    longer than max_token_bytes (nothing parsed)
 *   malformed         not three strict base64url segments, header or
 *                     payload not a JSON object, bad typ, crit present
 *   unsupported_alg   alg missing, "none" or not HS/RS/ES 256/384/512
 *   unknown_kid       kid matches no key and no key is kid-less
 *   alg_key_mismatch  no candidate key of the family/curve the alg needs
 *                     (also: ks NULL, or no key at all and no kid)
 *   invalid_signature no candidate key verifies the signature
 *   expired           exp + leeway < now
 *   not_yet_valid     nbf - leeway > now
 *   missing_exp       no exp while exp is required
 *   invalid_issuer    iss missing or not the configured issuer
 *   invalid_audience  the configured audience not in aud
 *   invalid_claims    exp/nbf not numbers, sub not a string, bad ech3_dest
 *   internal_error    out of memory
 * reason is a static string; the token is never copied anywhere. On
 * failure claims->sub is "-" unless the signature was good (then it names
 * the subject, for logs) and no destination is allowed (has_dest = 1,
 * ndest = 0). */
int jwt_verify(const struct jwt_keyset *ks, const char *token, size_t len,
	       long now, struct jwt_claims *claims, const char **reason);

/* 1 if the claims allow host:port (always 1 when !has_dest). host may be
 * a name, an IPv4 address or an IPv6 address with or without brackets. */
int jwt_dest_allowed(const struct jwt_claims *c, const char *host, int port);

/* Parses one "host:port" destination entry. Returns 0 or -1. */
int jwt_dest_parse(const char *s, size_t len, struct jwt_dest *d);

/* 1 when s[0..len) looks like a JWT: two non-empty base64url segments and
 * a possibly empty third (so alg "none" tokens are routed here and
 * refused), separated by two dots. */
int jwt_looks_like(const char *s, size_t len);

struct jwt_mint_req {
	const char *sub;	/* NULL = no sub */
	long ttl;		/* s until exp; 0 = no exp */
	const char *aud;	/* NULL/"" = no aud */
	const char *iss;	/* NULL/"" = no iss */
	const char *const *dest; /* ech3_dest entries, validated */
	size_t ndest;		/* 0 = no ech3_dest claim */
	const char *kid;	/* NULL = the secret's kid (HMAC) or none */
	const char *alg;	/* NULL = HS256 for the secret, or from the
				 * key: RS256 for RSA, ES256/384/512 by curve */
	const char *key_file;	/* private PEM for RS/ES; NULL = the
				 * keyset's HMAC secret */
};

/* Returns a malloc'd token, or NULL with err set. */
char *jwt_mint(const struct jwt_keyset *ks, const struct jwt_mint_req *r,
	       long now, char *err, size_t errlen);

#endif
