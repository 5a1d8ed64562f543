/*
 * jwt.c - JWT keys, verification and minting on top of libjwt 1.10.
 *
 * libjwt checks a signature with whatever key it is handed - it would use
 * an RSA public key PEM as an HMAC secret - and checks no claim. So this
 * file reads the header itself (strict base64url and a small JSON reader),
 * pins each algorithm to the family and curve of the key, hands libjwt one
 * key at a time and then checks every claim. Nothing here logs, and no
 * token or secret is ever copied into an error message.
 */
#include "jwt.h"

#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jwt.h>		/* libjwt's, never ours: no -Ishared */
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef JWT_H
#error "<jwt.h> resolved to shared/jwt.h: build without -Ishared"
#endif

#define KEY_FILE_MAX 65536L	/* PEM and secret files */
#define TOKEN_BYTES_CAP 65536	/* libjwt 1.10 alloca()s every segment */
#define LEEWAY_MAX 86400L
#define KID_MAX 256
#define JSON_DEPTH_MAX 32
#define RSA_BITS_MIN 2048
#define DEST_ENTRY_MAX 300

enum key_fam { FAM_HMAC, FAM_RSA, FAM_EC };

struct alg_info {
	const char *name;
	jwt_alg_t alg;
	enum key_fam fam;
	const char *curve, *curve_alias;	/* EC only */
};

static const struct alg_info algs[] = {
	{ "HS256", JWT_ALG_HS256, FAM_HMAC, NULL, NULL },
	{ "HS384", JWT_ALG_HS384, FAM_HMAC, NULL, NULL },
	{ "HS512", JWT_ALG_HS512, FAM_HMAC, NULL, NULL },
	{ "RS256", JWT_ALG_RS256, FAM_RSA, NULL, NULL },
	{ "RS384", JWT_ALG_RS384, FAM_RSA, NULL, NULL },
	{ "RS512", JWT_ALG_RS512, FAM_RSA, NULL, NULL },
	{ "ES256", JWT_ALG_ES256, FAM_EC, "prime256v1", "P-256" },
	{ "ES384", JWT_ALG_ES384, FAM_EC, "secp384r1", "P-384" },
	{ "ES512", JWT_ALG_ES512, FAM_EC, "secp521r1", "P-521" },
};

#define NALGS (sizeof(algs) / sizeof(algs[0]))

struct jwt_key {
	char *kid;			/* NULL when none */
	enum key_fam fam;
	const struct alg_info *ec_alg;	/* FAM_EC: the one alg of its curve */
	unsigned char *bytes;		/* secret, or public key PEM + NUL */
	size_t len;
};

struct jwt_keyset {
	struct jwt_key *keys;
	size_t nkeys;
	char *issuer;			/* NULL when not checked */
	char *audience;			/* NULL when not checked */
	int require_exp;
	long leeway;
	long max_token_bytes;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int nonempty(const char *s)
{
	return s != NULL && s[0] != '\0';
}

static const struct alg_info *alg_find(const char *name)
{
	for (size_t i = 0; i < NALGS; i++)
		if (strcmp(algs[i].name, name) == 0)
			return &algs[i];
	return NULL;
}

/* ---- files and keys ---- */

static void buf_free_secret(unsigned char *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

/* Reads a whole file (at most KEY_FILE_MAX bytes) into a malloc'd buffer
 * of the right size with a NUL after the data. */
static unsigned char *file_read(const char *path, size_t *len, char *err,
				size_t errlen)
{
	FILE *f = fopen(path, "rbe");
	unsigned char *big, *buf = NULL;
	size_t n = 0;

	if (f == NULL) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	big = malloc((size_t)KEY_FILE_MAX + 1);
	if (big != NULL)
		n = fread(big, 1, (size_t)KEY_FILE_MAX + 1, f);
	if (big == NULL)
		set_err(err, errlen, "%s: out of memory", path);
	else if (ferror(f))
		set_err(err, errlen, "%s: %s", path, strerror(errno));
	else if (n > (size_t)KEY_FILE_MAX)
		set_err(err, errlen, "%s: larger than %ld bytes", path,
			KEY_FILE_MAX);
	else if ((buf = malloc(n + 1)) == NULL)
		set_err(err, errlen, "%s: out of memory", path);
	fclose(f);
	if (buf != NULL) {
		memcpy(buf, big, n);
		buf[n] = '\0';
		*len = n;
	}
	buf_free_secret(big, n);
	return buf;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Parses a PEM public key (private = 0) or unencrypted private key. */
static EVP_PKEY *pem_parse(const unsigned char *pem, size_t len, int private)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pk;

	if (bio == NULL)
		return NULL;
	if (private)
		pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	else
		pk = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	return pk;
}

/* The family of pk and, for EC, the algorithm its curve pins. Returns 0,
 * or -1 with *why set. */
static int pkey_classify(EVP_PKEY *pk, enum key_fam *fam,
			 const struct alg_info **ec, const char **why)
{
	char group[64];
	size_t glen = 0;

	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pk) < RSA_BITS_MIN) {
			*why = "RSA key shorter than 2048 bits";
			return -1;
		}
		*fam = FAM_RSA;
		*ec = NULL;
		return 0;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen)
		    != 1) {
			*why = "EC key without a named curve";
			return -1;
		}
		for (size_t i = 0; i < NALGS; i++) {
			if (algs[i].fam != FAM_EC)
				continue;
			if (strcmp(group, algs[i].curve) == 0 ||
			    strcmp(group, algs[i].curve_alias) == 0) {
				*fam = FAM_EC;
				*ec = &algs[i];
				return 0;
			}
		}
		*why = "EC curve is not P-256, P-384 or P-521";
		return -1;
	default:
		*why = "not an RSA or EC key";
		return -1;
	}
}

/* Writes pk as PEM (public, or unencrypted PKCS#8 private) into a malloc'd
 * NUL-terminated buffer. Returns 0 or -1. */
static int pkey_to_pem(EVP_PKEY *pk, int private, unsigned char **out,
		       size_t *len)
{
	BIO *bio = BIO_new(private ? BIO_s_secmem() : BIO_s_mem());
	char *data = NULL;
	long n;
	int ok;

	if (bio == NULL)
		return -1;
	if (private)
		ok = PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL,
					      NULL);
	else
		ok = PEM_write_bio_PUBKEY(bio, pk);
	n = ok == 1 ? BIO_get_mem_data(bio, &data) : 0;
	*out = n > 0 ? malloc((size_t)n + 1) : NULL;
	if (*out != NULL) {
		memcpy(*out, data, (size_t)n);
		(*out)[n] = '\0';
		*len = (size_t)n;
	}
	BIO_free(bio);
	return *out != NULL ? 0 : -1;
}

/* Loads a PEM key file: a public key (private = 0) or an unencrypted
 * private key. On success k holds the family and the normalised PEM. */
static int key_file_load(struct jwt_key *k, const char *path, int private,
			 char *err, size_t errlen)
{
	unsigned char *raw;
	size_t rawlen = 0;
	EVP_PKEY *pk;
	const char *why = NULL;
	int rc = -1;

	raw = file_read(path, &rawlen, err, errlen);
	if (raw == NULL)
		return -1;
	pk = pem_parse(raw, rawlen, private);
	buf_free_secret(raw, rawlen);
	if (pk == NULL) {
		set_err(err, errlen, "%s: %s", path,
			private ? "not an unencrypted PEM private key"
				: "not a PEM public key "
				  "(-----BEGIN PUBLIC KEY-----)");
	} else if (pkey_classify(pk, &k->fam, &k->ec_alg, &why) != 0) {
		set_err(err, errlen, "%s: %s", path, why);
	} else if (pkey_to_pem(pk, private, &k->bytes, &k->len) != 0) {
		set_err(err, errlen, "%s: out of memory", path);
	} else {
		rc = 0;
	}
	EVP_PKEY_free(pk);
	ERR_clear_error();
	return rc;
}

static void key_clear(struct jwt_key *k)
{
	free(k->kid);
	buf_free_secret(k->bytes, k->len);
	memset(k, 0, sizeof(*k));
}

/* Strips trailing CR/LF from a secret read from a file. */
static size_t secret_trim(const unsigned char *p, size_t len)
{
	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	return len;
}

static int secret_load(struct jwt_key *k, const struct jwt_settings *s,
		       char *err, size_t errlen)
{
	const char *src = nonempty(s->secret_file) ? s->secret_file
						    : "jwt secret";

	if (nonempty(s->secret_file)) {
		k->bytes = file_read(s->secret_file, &k->len, err, errlen);
		if (k->bytes == NULL)
			return -1;
		k->len = secret_trim(k->bytes, k->len);
	} else {
		k->len = strlen(s->secret);
		k->bytes = malloc(k->len + 1);
		if (k->bytes == NULL) {
			set_err(err, errlen, "jwt secret: out of memory");
			return -1;
		}
		memcpy(k->bytes, s->secret, k->len + 1);
	}
	if (k->len < JWT_SECRET_MIN) {
		set_err(err, errlen, "%s: the secret must be at least %d "
			"bytes", src, JWT_SECRET_MIN);
		return -1;
	}
	k->fam = FAM_HMAC;
	if (nonempty(s->secret_kid) &&
	    (k->kid = strdup(s->secret_kid)) == NULL) {
		set_err(err, errlen, "jwt secret: out of memory");
		return -1;
	}
	return 0;
}

/* Splits "kid=path" (a '=' before any '/') or "path". */
static int key_entry_load(struct jwt_key *k, const char *entry, char *err,
			  size_t errlen)
{
	const char *eq = strchr(entry, '='), *slash = strchr(entry, '/');
	const char *path = entry;

	if (eq != NULL && (slash == NULL || eq < slash)) {
		if (eq == entry || eq[1] == '\0') {
			set_err(err, errlen, "jwt key '%s': expected "
				"kid=path or path", entry);
			return -1;
		}
		k->kid = strndup(entry, (size_t)(eq - entry));
		if (k->kid == NULL) {
			set_err(err, errlen, "jwt key: out of memory");
			return -1;
		}
		path = eq + 1;
	}
	if (path[0] == '\0') {
		set_err(err, errlen, "jwt key: empty path");
		return -1;
	}
	return key_file_load(k, path, 0, err, errlen);
}

static int kids_unique(const struct jwt_keyset *ks, char *err, size_t errlen)
{
	for (size_t i = 0; i < ks->nkeys; i++)
		for (size_t j = i + 1; j < ks->nkeys; j++)
			if (ks->keys[i].kid != NULL &&
			    ks->keys[j].kid != NULL &&
			    strcmp(ks->keys[i].kid, ks->keys[j].kid) == 0) {
				set_err(err, errlen, "jwt: kid '%s' is used "
					"by two keys", ks->keys[i].kid);
				return -1;
			}
	return 0;
}

static int settings_check(const struct jwt_settings *s, char *err,
			  size_t errlen)
{
	if (nonempty(s->secret) && nonempty(s->secret_file)) {
		set_err(err, errlen, "jwt: set the secret or the secret file, "
			"not both");
		return -1;
	}
	if (nonempty(s->secret_kid) && !nonempty(s->secret) &&
	    !nonempty(s->secret_file)) {
		set_err(err, errlen, "jwt: a secret kid but no secret");
		return -1;
	}
	if (s->leeway < 0 || s->leeway > LEEWAY_MAX) {
		set_err(err, errlen, "jwt: leeway %ld is out of range [0, %ld]",
			s->leeway, LEEWAY_MAX);
		return -1;
	}
	if (s->max_token_bytes > TOKEN_BYTES_CAP) {
		set_err(err, errlen, "jwt: max token bytes %ld is above %d",
			s->max_token_bytes, TOKEN_BYTES_CAP);
		return -1;
	}
	if (s->nkeys > 0 && s->keys == NULL) {
		set_err(err, errlen, "jwt: key list missing");
		return -1;
	}
	return 0;
}

static int keyset_copy_settings(struct jwt_keyset *ks,
				const struct jwt_settings *s)
{
	ks->require_exp = s->require_exp != 0;
	ks->leeway = s->leeway;
	ks->max_token_bytes = s->max_token_bytes > 0
				      ? s->max_token_bytes
				      : JWT_DEFAULT_MAX_TOKEN_BYTES;
	if (nonempty(s->issuer) && (ks->issuer = strdup(s->issuer)) == NULL)
		return -1;
	if (nonempty(s->audience) &&
	    (ks->audience = strdup(s->audience)) == NULL)
		return -1;
	return 0;
}

static int keyset_load_keys(struct jwt_keyset *ks,
			    const struct jwt_settings *s, char *err,
			    size_t errlen)
{
	if (nonempty(s->secret) || nonempty(s->secret_file)) {
		if (secret_load(&ks->keys[ks->nkeys], s, err, errlen) != 0)
			return -1;
		ks->nkeys++;
	}
	for (size_t i = 0; i < s->nkeys; i++) {
		if (s->keys[i] == NULL || s->keys[i][0] == '\0')
			continue;
		if (key_entry_load(&ks->keys[ks->nkeys], s->keys[i], err,
				   errlen) != 0)
			return -1;
		ks->nkeys++;
	}
	return kids_unique(ks, err, errlen);
}

struct jwt_keyset *jwt_keyset_load(const struct jwt_settings *s, char *err,
				   size_t errlen)
{
	struct jwt_keyset *ks;

	if (settings_check(s, err, errlen) != 0)
		return NULL;
	ks = calloc(1, sizeof(*ks));
	if (ks == NULL ||
	    (ks->keys = calloc(s->nkeys + 1, sizeof(*ks->keys))) == NULL ||
	    keyset_copy_settings(ks, s) != 0) {
		set_err(err, errlen, "jwt: out of memory");
		jwt_keyset_free(ks);
		return NULL;
	}
	if (keyset_load_keys(ks, s, err, errlen) != 0) {
		/* keys[nkeys] may hold a half-loaded key */
		key_clear(&ks->keys[ks->nkeys]);
		jwt_keyset_free(ks);
		return NULL;
	}
	return ks;
}

int jwt_keyset_enabled(const struct jwt_keyset *ks)
{
	return ks != NULL && ks->nkeys > 0;
}

void jwt_keyset_free(struct jwt_keyset *ks)
{
	if (ks == NULL)
		return;
	if (ks->keys != NULL)
		for (size_t i = 0; i < ks->nkeys; i++)
			key_clear(&ks->keys[i]);
	free(ks->keys);
	free(ks->issuer);
	free(ks->audience);
	free(ks);
}

/* ---- base64url ---- */

static int b64u_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Decodes unpadded base64url s[0..len) with zero unused bits into out
 * (room for len*3/4 bytes; NULL only checks). Returns the length or -1. */
static long b64url_decode(const char *s, size_t len, unsigned char *out)
{
	unsigned acc = 0;
	int bits = 0, v;
	size_t n = 0;

	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		v = b64u_value((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (out != NULL)
				out[n] = (unsigned char)(acc >> bits);
			n++;
			acc &= (1u << bits) - 1;
		}
	}
	return acc == 0 ? (long)n : -1;
}

/* ---- a small strict JSON reader ---- */

struct jr {
	const unsigned char *p, *end;
};

static void jr_init(struct jr *r, const void *s, size_t len)
{
	r->p = s;
	r->end = r->p + len;
}

static int jr_peek(struct jr *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' ||
				 *r->p == '\n' || *r->p == '\r'))
		r->p++;
	return r->p < r->end ? *r->p : -1;
}

static int jr_eat(struct jr *r, int c)
{
	if (jr_peek(r) != c)
		return -1;
	r->p++;
	return 0;
}

static int jr_digit(const struct jr *r)
{
	return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

static int jr_hex4(struct jr *r, unsigned *v)
{
	int d;

	if (r->end - r->p < 4)
		return -1;
	*v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned char c = *r->p++;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			d = (c | 0x20) - 'a' + 10;
		else
			return -1;
		*v = *v << 4 | (unsigned)d;
	}
	return 0;
}

/* After "\u": one code point, joining a surrogate pair. No U+0000. */
static int jr_unicode(struct jr *r, unsigned *cp)
{
	unsigned lo;

	if (jr_hex4(r, cp) != 0 || *cp == 0 || (*cp >= 0xdc00 && *cp <= 0xdfff))
		return -1;
	if (*cp < 0xd800 || *cp > 0xdbff)
		return 0;
	if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
		return -1;
	r->p += 2;
	if (jr_hex4(r, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
		return -1;
	*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
	return 0;
}

static void put_byte(char *out, size_t cap, size_t *n, unsigned b)
{
	if (out != NULL && *n + 1 < cap)
		out[*n] = (char)b;
	(*n)++;
}

static void put_cp(char *out, size_t cap, size_t *n, unsigned cp)
{
	if (cp < 0x80) {
		put_byte(out, cap, n, cp);
	} else if (cp < 0x800) {
		put_byte(out, cap, n, 0xc0 | cp >> 6);
		put_byte(out, cap, n, 0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		put_byte(out, cap, n, 0xe0 | cp >> 12);
		put_byte(out, cap, n, 0x80 | (cp >> 6 & 0x3f));
		put_byte(out, cap, n, 0x80 | (cp & 0x3f));
	} else {
		put_byte(out, cap, n, 0xf0 | cp >> 18);
		put_byte(out, cap, n, 0x80 | (cp >> 12 & 0x3f));
		put_byte(out, cap, n, 0x80 | (cp >> 6 & 0x3f));
		put_byte(out, cap, n, 0x80 | (cp & 0x3f));
	}
}

static int jr_escape(struct jr *r, unsigned *c)
{
	if (r->p >= r->end)
		return -1;
	switch (*r->p++) {
	case '"': *c = '"'; return 0;
	case '\\': *c = '\\'; return 0;
	case '/': *c = '/'; return 0;
	case 'b': *c = '\b'; return 0;
	case 'f': *c = '\f'; return 0;
	case 'n': *c = '\n'; return 0;
	case 'r': *c = '\r'; return 0;
	case 't': *c = '\t'; return 0;
	case 'u': return jr_unicode(r, c);
	default: return -1;
	}
}

/* Reads a string into out (cap bytes with the NUL; NULL skips). Returns
 * the decoded length - when it is >= cap, out holds a truncated prefix -
 * or -1 on bad syntax. */
static long jr_string(struct jr *r, char *out, size_t cap)
{
	size_t n = 0;
	unsigned c;

	if (jr_eat(r, '"') != 0)
		return -1;
	while (r->p < r->end) {
		c = *r->p++;
		if (c == '"') {
			if (out != NULL && cap > 0)
				out[n < cap ? n : cap - 1] = '\0';
			return (long)n;
		}
		if (c < 0x20)
			return -1;
		if (c != '\\') {
			put_byte(out, cap, &n, c);
			continue;
		}
		if (jr_escape(r, &c) != 0)
			return -1;
		put_cp(out, cap, &n, c);
	}
	return -1;
}

static void jr_digits(struct jr *r)
{
	while (jr_digit(r))
		r->p++;
}

/* Reads a number. Integers of more than 18 digits are refused, as jansson
 * refuses what does not fit its json_int_t. v may be NULL. */
static int jr_number(struct jr *r, double *v)
{
	const unsigned char *start, *int_start;
	char buf[64];
	size_t digits;
	int plain = 1;

	jr_peek(r);
	start = r->p;
	if (r->p < r->end && *r->p == '-')
		r->p++;
	if (!jr_digit(r))
		return -1;
	int_start = r->p;
	if (*r->p == '0')
		r->p++;
	else
		jr_digits(r);
	digits = (size_t)(r->p - int_start);
	if (r->p < r->end && *r->p == '.') {
		plain = 0;
		r->p++;
		if (!jr_digit(r))
			return -1;
		jr_digits(r);
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
		plain = 0;
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (!jr_digit(r))
			return -1;
		jr_digits(r);
	}
	if ((plain && digits > 18) || (size_t)(r->p - start) >= sizeof(buf))
		return -1;
	memcpy(buf, start, (size_t)(r->p - start));
	buf[r->p - start] = '\0';
	if (v != NULL) {
		*v = strtod(buf, NULL);
		if (!(*v > -1e300 && *v < 1e300))
			return -1;
	}
	return 0;
}

static int jr_word(struct jr *r, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
		return -1;
	r->p += n;
	return 0;
}

/* Steps through an array: *first is 1 before the opening '['. Returns 1
 * when an element follows, 0 after the closing ']', -1 on bad syntax. */
static int jr_array_next(struct jr *r, int *first)
{
	int c = jr_peek(r);

	if (*first) {
		*first = 0;
		if (c != '[')
			return -1;
		r->p++;
		if (jr_peek(r) != ']')
			return 1;
		r->p++;
		return 0;
	}
	if (c != ',' && c != ']')
		return -1;
	r->p++;
	return c == ',' ? 1 : 0;
}

/* Called with each member's key (NULL when longer than 15 bytes); must
 * consume the value. */
typedef int (*jr_member_fn)(struct jr *r, const char *key, void *arg,
			    int depth);

static int jr_object(struct jr *r, int depth, jr_member_fn fn, void *arg);

static int jr_skip(struct jr *r, int depth)
{
	int first = 1, more;

	if (depth > JSON_DEPTH_MAX)
		return -1;
	switch (jr_peek(r)) {
	case '"':
		return jr_string(r, NULL, 0) < 0 ? -1 : 0;
	case '{':
		return jr_object(r, depth + 1, NULL, NULL);
	case '[':
		while ((more = jr_array_next(r, &first)) == 1)
			if (jr_skip(r, depth + 1) != 0)
				return -1;
		return more;
	case 't':
		return jr_word(r, "true");
	case 'f':
		return jr_word(r, "false");
	case 'n':
		return jr_word(r, "null");
	default:
		return jr_number(r, NULL);
	}
}

/* Walks an object's members; fn NULL skips them all. */
static int jr_object(struct jr *r, int depth, jr_member_fn fn, void *arg)
{
	char key[16];
	long kl;
	int c;

	if (depth > JSON_DEPTH_MAX || jr_eat(r, '{') != 0)
		return -1;
	if (jr_peek(r) == '}') {
		r->p++;
		return 0;
	}
	for (;;) {
		kl = jr_string(r, key, sizeof(key));
		if (kl < 0 || jr_eat(r, ':') != 0)
			return -1;
		if (fn != NULL ? fn(r, kl < (long)sizeof(key) ? key : NULL,
				   arg, depth)
			       : jr_skip(r, depth))
			return -1;
		c = jr_peek(r);
		if (c != '}' && c != ',')
			return -1;
		r->p++;
		if (c == '}')
			return 0;
	}
}

/* A whole document: one object and nothing after it. */
static int jr_document(const void *s, size_t len, jr_member_fn fn, void *arg)
{
	struct jr r;

	jr_init(&r, s, len);
	if (jr_object(&r, 1, fn, arg) != 0)
		return -1;
	return jr_peek(&r) == -1 ? 0 : -1;
}

static int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, need;
	unsigned cp, min;

	while (i < n) {
		cp = s[i];
		if (cp < 0x80) {
			i++;
			continue;
		}
		if (cp >= 0xc2 && cp <= 0xdf)
			need = 1, min = 0x80;
		else if ((cp & 0xf0) == 0xe0)
			need = 2, min = 0x800;
		else if (cp >= 0xf0 && cp <= 0xf4)
			need = 3, min = 0x10000;
		else
			return 0;
		if (n - i <= need)
			return 0;
		cp &= 0x3fu >> need;
		for (size_t k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

/* ---- token structure and header ---- */

struct hdr {
	const struct alg_info *alg;	/* NULL: missing or unsupported */
	char kid[KID_MAX];
	int has_kid;
	int kid_too_long;		/* matches no key */
	unsigned seen;			/* duplicate detection */
};

enum { SEEN_ALG = 1, SEEN_KID = 2, SEEN_TYP = 4 };

static int hdr_once(struct hdr *h, unsigned bit)
{
	if (h->seen & bit)
		return -1;
	h->seen |= bit;
	return 0;
}

static int hdr_alg(struct jr *r, struct hdr *h, int depth)
{
	char name[8];
	long n;

	if (hdr_once(h, SEEN_ALG) != 0)
		return -1;
	if (jr_peek(r) != '"')
		return jr_skip(r, depth);	/* not a string: unsupported */
	n = jr_string(r, name, sizeof(name));
	if (n < 0)
		return -1;
	h->alg = n < (long)sizeof(name) ? alg_find(name) : NULL;
	return 0;
}

static int hdr_kid(struct jr *r, struct hdr *h)
{
	long n;

	if (hdr_once(h, SEEN_KID) != 0)
		return -1;
	n = jr_string(r, h->kid, sizeof(h->kid));
	if (n < 0)
		return -1;
	h->has_kid = 1;
	h->kid_too_long = n >= (long)sizeof(h->kid);
	return 0;
}

/* libjwt 1.10 refuses a typ other than "JWT" (any case); so do we, up
 * front, so that the reason is "malformed" and not a bad signature. */
static int hdr_typ(struct jr *r, struct hdr *h)
{
	char typ[8];
	long n;

	if (hdr_once(h, SEEN_TYP) != 0)
		return -1;
	n = jr_string(r, typ, sizeof(typ));
	return n == 3 && strcasecmp(typ, "JWT") == 0 ? 0 : -1;
}

static int hdr_member(struct jr *r, const char *key, void *arg, int depth)
{
	struct hdr *h = arg;

	if (key == NULL)
		return jr_skip(r, depth);
	if (strcmp(key, "alg") == 0)
		return hdr_alg(r, h, depth);
	if (strcmp(key, "kid") == 0)
		return hdr_kid(r, h);
	if (strcmp(key, "typ") == 0)
		return hdr_typ(r, h);
	if (strcmp(key, "crit") == 0)
		return -1;	/* no extension is understood */
	return jr_skip(r, depth);
}

static const char *const claim_names[] = {
	"exp", "nbf", "iss", "aud", "sub", "ech3_dest",
};

#define NCLAIMS (sizeof(claim_names) / sizeof(claim_names[0]))

/* Refuses a second copy of any claim ech3 reads, so no JSON parser can
 * pick a different one from the one libjwt hands us. */
static int payload_member(struct jr *r, const char *key, void *arg,
			  int depth)
{
	unsigned *seen = arg;

	for (size_t i = 0; key != NULL && i < NCLAIMS; i++) {
		if (strcmp(key, claim_names[i]) != 0)
			continue;
		if (*seen & (1u << i))
			return -1;
		*seen |= 1u << i;
	}
	return jr_skip(r, depth);
}

struct segs {
	const char *head, *body, *sig;
	size_t hlen, blen, slen;
};

static int segs_split(const char *t, size_t len, struct segs *s)
{
	const char *d1 = memchr(t, '.', len), *d2;

	if (d1 == NULL)
		return -1;
	d2 = memchr(d1 + 1, '.', (size_t)(t + len - d1 - 1));
	if (d2 == NULL || memchr(d2 + 1, '.', (size_t)(t + len - d2 - 1)))
		return -1;
	s->head = t;
	s->hlen = (size_t)(d1 - t);
	s->body = d1 + 1;
	s->blen = (size_t)(d2 - d1 - 1);
	s->sig = d2 + 1;
	s->slen = (size_t)(t + len - d2 - 1);
	return s->hlen > 0 && s->blen > 0 ? 0 : -1;
}

/* Decodes a segment holding a JSON object into buf and walks it. */
static int segment_json(const char *seg, size_t len, unsigned char *buf,
			jr_member_fn fn, void *arg)
{
	long n = b64url_decode(seg, len, buf);

	if (n < 0 || !utf8_valid(buf, (size_t)n))
		return -1;
	return jr_document(buf, (size_t)n, fn, arg);
}

/* Everything that can be checked before any key: the structure, header
 * (alg, kid) and payload syntax. Returns NULL or the reason. */
static const char *token_precheck(const char *t, size_t len, struct hdr *h)
{
	struct segs s;
	unsigned char *buf;
	unsigned seen = 0;
	const char *why = NULL;

	if (segs_split(t, len, &s) != 0 ||
	    b64url_decode(s.sig, s.slen, NULL) < 0)
		return "malformed";
	buf = malloc(len);
	if (buf == NULL)
		return "internal_error";
	if (segment_json(s.head, s.hlen, buf, hdr_member, h) != 0)
		why = "malformed";
	else if (h->alg == NULL)
		why = "unsupported_alg";
	else if (segment_json(s.body, s.blen, buf, payload_member, &seen) != 0)
		why = "malformed";
	free(buf);
	return why;
}

/* ---- key choice and signature ---- */

static int key_fits(const struct jwt_key *k, const struct alg_info *a)
{
	if (k->fam != a->fam)
		return 0;
	return k->fam != FAM_EC || k->ec_alg == a;
}

static const struct jwt_key *key_by_kid(const struct jwt_keyset *ks,
					const struct hdr *h)
{
	if (!h->has_kid || h->kid_too_long)
		return NULL;
	for (size_t i = 0; i < ks->nkeys; i++)
		if (ks->keys[i].kid != NULL &&
		    strcmp(ks->keys[i].kid, h->kid) == 0)
			return &ks->keys[i];
	return NULL;
}

/* 0 with *out set, -1 when the key does not verify, -2 out of memory. */
static int key_try(const struct jwt_key *k, const char *tok,
		   const struct alg_info *a, jwt_t **out)
{
	jwt_t *jwt = NULL;
	int rc = jwt_decode(&jwt, tok, k->bytes, (int)k->len);

	ERR_clear_error();
	if (rc == ENOMEM)
		return -2;
	if (rc != 0 || jwt == NULL)
		return -1;
	/* libjwt re-reads alg itself (case-insensitively); it must agree.
	 * This also catches its out-of-memory path that returns 0 with an
	 * unverified, empty token. */
	if (jwt_get_alg(jwt) != a->alg) {
		jwt_free(jwt);
		return -1;
	}
	*out = jwt;
	return 0;
}

static const char *key_try_reason(int rc)
{
	return rc == -2 ? "internal_error" : "invalid_signature";
}

static const char *signature_check(const struct jwt_keyset *ks,
				   const char *tok, const struct hdr *h,
				   jwt_t **out)
{
	const struct jwt_key *k = key_by_kid(ks, h);
	int any = 0, fit = 0, rc = -1;

	if (k != NULL) {
		if (!key_fits(k, h->alg))
			return "alg_key_mismatch";
		rc = key_try(k, tok, h->alg, out);
		return rc == 0 ? NULL : key_try_reason(rc);
	}
	for (size_t i = 0; i < ks->nkeys && rc != 0 && rc != -2; i++) {
		k = &ks->keys[i];
		if (h->has_kid && k->kid != NULL)
			continue;	/* keyed to another kid */
		any = 1;
		if (!key_fits(k, h->alg))
			continue;
		fit = 1;
		rc = key_try(k, tok, h->alg, out);
	}
	if (rc == 0)
		return NULL;
	if (!any)
		return h->has_kid ? "unknown_kid" : "alg_key_mismatch";
	return fit ? key_try_reason(rc) : "alg_key_mismatch";
}

/* ---- claims ---- */

/* A NumericDate claim: 1 present (*v set), 0 absent, -1 not a number,
 * -2 out of memory. */
static int claim_time(jwt_t *jwt, const char *name, double *v)
{
	char *s;
	struct jr r;
	int rc = 1;

	errno = 0;
	s = jwt_get_grants_json(jwt, name);
	if (s == NULL)
		return errno == EINVAL ? 0 : -2;
	jr_init(&r, s, strlen(s));
	if (jr_number(&r, v) != 0 || jr_peek(&r) != -1)
		rc = -1;
	free(s);
	return rc;
}

static long time_to_long(double v)
{
	if (v >= 9.2e18)
		return LONG_MAX;
	if (v <= -9.2e18)
		return LONG_MIN;
	return (long)v;
}

static const char *claims_times(const struct jwt_keyset *ks, jwt_t *jwt,
				long now, struct jwt_claims *c)
{
	double exp = 0, nbf = 0;
	int has_exp = claim_time(jwt, "exp", &exp);
	int has_nbf = claim_time(jwt, "nbf", &nbf);

	if (has_exp == -2 || has_nbf == -2)
		return "internal_error";
	if (has_exp < 0 || has_nbf < 0)
		return "invalid_claims";
	if (!has_exp && ks->require_exp)
		return "missing_exp";
	if (has_exp && exp + (double)ks->leeway < (double)now)
		return "expired";
	if (has_nbf && nbf - (double)ks->leeway > (double)now)
		return "not_yet_valid";
	c->exp = has_exp ? time_to_long(exp) : 0;
	return NULL;
}

static const char *claims_issuer(const struct jwt_keyset *ks, jwt_t *jwt)
{
	const char *iss;

	if (ks->issuer == NULL)
		return NULL;
	iss = jwt_get_grant(jwt, "iss");
	return iss != NULL && strcmp(iss, ks->issuer) == 0 ? NULL
							   : "invalid_issuer";
}

/* 1 when the JSON string or array of strings json holds want, 0 when not
 * (or when it has another shape), -2 out of memory. */
static int json_has_string(const char *json, const char *want)
{
	size_t n = strlen(json);
	char *buf = malloc(n + 1);
	struct jr r;
	int first = 1, more, found = 0;

	if (buf == NULL)
		return -2;
	jr_init(&r, json, n);
	if (jr_peek(&r) == '"') {
		found = jr_string(&r, buf, n + 1) >= 0 &&
			strcmp(buf, want) == 0;
	} else {
		while (!found && (more = jr_array_next(&r, &first)) == 1) {
			if (jr_peek(&r) != '"' ||
			    jr_string(&r, buf, n + 1) < 0)
				break;
			found = strcmp(buf, want) == 0;
		}
	}
	free(buf);
	return found;
}

static const char *claims_audience(const struct jwt_keyset *ks, jwt_t *jwt)
{
	char *aud;
	int rc;

	if (ks->audience == NULL)
		return NULL;
	errno = 0;
	aud = jwt_get_grants_json(jwt, "aud");
	if (aud == NULL)
		return errno == EINVAL ? "invalid_audience" : "internal_error";
	rc = json_has_string(aud, ks->audience);
	free(aud);
	if (rc == -2)
		return "internal_error";
	return rc == 1 ? NULL : "invalid_audience";
}

static void sub_sanitize(char *out, size_t size, const char *sub)
{
	size_t i;

	for (i = 0; i + 1 < size && sub[i] != '\0'; i++)
		out[i] = sub[i] >= 0x20 && sub[i] < 0x7f ? sub[i] : '?';
	out[i] = '\0';
	if (i == 0)
		snprintf(out, size, "-");
}

/* The exact subject for per-subject limits: the raw bytes, or for a long
 * one its first bytes and a 64-bit FNV-1a hash of the whole. */
static void sub_key(char *out, size_t size, const char *sub)
{
	size_t len = strlen(sub);
	uint64_t h = 0xcbf29ce484222325ULL;

	if (len < size) {
		memcpy(out, sub, len + 1);
		return;
	}
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)sub[i]) * 0x100000001b3ULL;
	snprintf(out, size, "%.*s#%016llx", (int)(size - 18), sub,
		 (unsigned long long)h);
}

static const char *claims_sub(jwt_t *jwt, struct jwt_claims *c)
{
	const char *sub;

	errno = 0;
	sub = jwt_get_grant(jwt, "sub");
	if (sub == NULL)	/* ENOENT: absent; otherwise not a string */
		return errno == ENOENT ? NULL : "invalid_claims";
	sub_sanitize(c->sub, sizeof(c->sub), sub);
	sub_key(c->sub_key, sizeof(c->sub_key), sub);
	return NULL;
}

/* Fills c->dest from a JSON array of "host:port" strings. */
static int dest_list_parse(const char *json, struct jwt_claims *c)
{
	char entry[DEST_ENTRY_MAX];
	struct jr r;
	int first = 1, more;
	long n;

	jr_init(&r, json, strlen(json));
	while ((more = jr_array_next(&r, &first)) == 1) {
		if (c->ndest == JWT_DEST_MAX || jr_peek(&r) != '"')
			return -1;
		n = jr_string(&r, entry, sizeof(entry));
		if (n < 0 || n >= (long)sizeof(entry) ||
		    jwt_dest_parse(entry, (size_t)n, &c->dest[c->ndest]) != 0)
			return -1;
		c->ndest++;
	}
	return more == 0 && jr_peek(&r) == -1 ? 0 : -1;
}

static const char *claims_dest(jwt_t *jwt, struct jwt_claims *c)
{
	char *json;
	int rc;

	errno = 0;
	json = jwt_get_grants_json(jwt, "ech3_dest");
	if (json == NULL)
		return errno == EINVAL ? NULL : "internal_error";
	c->has_dest = 1;
	rc = dest_list_parse(json, c);
	free(json);
	return rc == 0 ? NULL : "invalid_claims";
}

static const char *claims_check(const struct jwt_keyset *ks, jwt_t *jwt,
				long now, struct jwt_claims *c)
{
	const char *why = claims_sub(jwt, c);

	if (why == NULL)
		why = claims_times(ks, jwt, now, c);
	if (why == NULL)
		why = claims_issuer(ks, jwt);
	if (why == NULL)
		why = claims_audience(ks, jwt);
	if (why == NULL)
		why = claims_dest(jwt, c);
	return why;
}

static void claims_reset(struct jwt_claims *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->sub, sizeof(c->sub), "-");
}

int jwt_verify(const struct jwt_keyset *ks, const char *token, size_t len,
	       long now, struct jwt_claims *claims, const char **reason)
{
	struct hdr h;
	jwt_t *jwt = NULL;
	char *tok = NULL;
	const char *why;

	claims_reset(claims);
	memset(&h, 0, sizeof(h));
	if (ks == NULL)
		why = "alg_key_mismatch";
	else if (len > (size_t)ks->max_token_bytes)
		why = "token_too_long";
	else if (token == NULL)
		why = "malformed";
	else
		why = token_precheck(token, len, &h);
	if (why == NULL && (tok = strndup(token, len)) == NULL)
		why = "internal_error";
	if (why == NULL)
		why = signature_check(ks, tok, &h, &jwt);
	if (why == NULL)
		why = claims_check(ks, jwt, now, claims);
	jwt_free(jwt);
	free(tok);
	*reason = why;
	if (why == NULL)
		return 0;
	/* Fail closed should a caller ignore the result: no destination. */
	claims->has_dest = 1;
	claims->ndest = 0;
	return -1;
}

/* ---- destinations ---- */

/* A DNS name or IPv4 address: labels of [A-Za-z0-9_-], 1..63 bytes, no
 * empty label. A name whose last label is all digits must be an IPv4
 * address in dotted quad form (so "10.1" is refused). */
static int name_valid(const char *s, size_t len, int wildcard_suffix)
{
	size_t label = 0;
	int last_alpha = 0;
	char ip[16];
	struct in_addr a;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			last_alpha = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
		if (!(c >= '0' && c <= '9'))
			last_alpha = 1;
		if (++label > 63)
			return 0;
	}
	if (label == 0)
		return 0;
	if (last_alpha)
		return 1;
	/* numeric: an IPv4 address, never under a wildcard */
	if (wildcard_suffix || len >= sizeof(ip))
		return 0;
	memcpy(ip, s, len);
	ip[len] = '\0';
	return inet_pton(AF_INET, ip, &a) == 1;
}

static void lower_copy(char *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
	out[len] = '\0';
}

/* Canonical text of an IPv6 address s[0..len). Returns 0 or -1. */
static int v6_canon(const char *s, size_t len, char *out, size_t size)
{
	char buf[INET6_ADDRSTRLEN];
	struct in6_addr a;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET6, buf, &a) != 1 ||
	    inet_ntop(AF_INET6, &a, out, (socklen_t)size) == NULL)
		return -1;
	return 0;
}

static int dest_host(const char *s, size_t len, struct jwt_dest *d)
{
	if (len == 1 && s[0] == '*') {
		snprintf(d->host, sizeof(d->host), "*");
		return 0;
	}
	if (len > 2 && s[0] == '*' && s[1] == '.') {
		if (!name_valid(s + 2, len - 2, 1))
			return -1;
	} else if (!name_valid(s, len, 0)) {
		return -1;
	}
	lower_copy(d->host, s, len);
	return 0;
}

static int dest_ports(const char *s, size_t len, struct jwt_dest *d)
{
	const char *dash = memchr(s, '-', len);

	if (len == 1 && s[0] == '*') {
		d->port_lo = 1;
		d->port_hi = 65535;
		return 0;
	}
	if (dash == NULL) {
		d->port_lo = d->port_hi = parse_port(s, len, 0);
		return d->port_lo < 0 ? -1 : 0;
	}
	d->port_lo = parse_port(s, (size_t)(dash - s), 0);
	d->port_hi = parse_port(dash + 1, (size_t)(s + len - dash - 1), 0);
	return d->port_lo < 0 || d->port_hi < d->port_lo ? -1 : 0;
}

int jwt_dest_parse(const char *s, size_t len, struct jwt_dest *d)
{
	const char *sep;

	memset(d, 0, sizeof(*d));
	if (len > 0 && s[0] == '[') {
		sep = memchr(s, ']', len);
		if (sep == NULL || sep + 1 >= s + len || sep[1] != ':' ||
		    v6_canon(s + 1, (size_t)(sep - s - 1), d->host,
			     sizeof(d->host)) != 0)
			return -1;
		sep++;
	} else {
		sep = memrchr(s, ':', len);
		if (sep == NULL || memchr(s, ':', (size_t)(sep - s)) != NULL ||
		    dest_host(s, (size_t)(sep - s), d) != 0)
			return -1;
	}
	return dest_ports(sep + 1, (size_t)(s + len - sep - 1), d);
}

/* The requested host as destinations store it: lowercase, or canonical
 * IPv6 without brackets. */
static int host_normalize(const char *host, char *out, size_t size)
{
	size_t len = strlen(host);

	if (len >= 2 && host[0] == '[' && host[len - 1] == ']')
		return v6_canon(host + 1, len - 2, out, size);
	if (memchr(host, ':', len) != NULL)
		return v6_canon(host, len, out, size);
	if (len >= size || !name_valid(host, len, 0))
		return -1;
	lower_copy(out, host, len);
	return 0;
}

static int host_match(const char *pattern, const char *host)
{
	size_t pl = strlen(pattern), hl = strlen(host);

	if (strcmp(pattern, "*") == 0)
		return 1;
	if (pl > 2 && pattern[0] == '*' && pattern[1] == '.')
		return hl > pl - 1 &&
		       strcmp(host + hl - (pl - 1), pattern + 1) == 0;
	return strcmp(pattern, host) == 0;
}

int jwt_dest_allowed(const struct jwt_claims *c, const char *host, int port)
{
	char norm[254];

	if (!c->has_dest)
		return 1;
	if (host == NULL || port < 1 || port > 65535 ||
	    host_normalize(host, norm, sizeof(norm)) != 0)
		return 0;
	for (size_t i = 0; i < c->ndest && i < JWT_DEST_MAX; i++)
		if (port >= c->dest[i].port_lo && port <= c->dest[i].port_hi &&
		    host_match(c->dest[i].host, norm))
			return 1;
	return 0;
}

int jwt_looks_like(const char *s, size_t len)
{
	size_t dots = 0, seg = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (seg == 0 || ++dots > 2)
				return 0;
			seg = 0;
		} else if (b64u_value((unsigned char)s[i]) < 0) {
			return 0;
		} else {
			seg++;
		}
	}
	return dots == 2;
}

/* ---- minting ---- */

struct mint_key {
	const struct alg_info *alg;
	unsigned char *owned;		/* private PEM we loaded, or NULL */
	const unsigned char *bytes;
	size_t len;
	const char *kid;		/* NULL: no kid header */
};

static int mint_key_file(const struct jwt_mint_req *r, struct mint_key *mk,
			 char *err, size_t errlen)
{
	struct jwt_key k;

	memset(&k, 0, sizeof(k));
	if (key_file_load(&k, r->key_file, 1, err, errlen) != 0)
		return -1;
	mk->owned = k.bytes;
	mk->bytes = k.bytes;
	mk->len = k.len;
	mk->kid = nonempty(r->kid) ? r->kid : NULL;
	if (r->alg == NULL)
		mk->alg = k.fam == FAM_EC ? k.ec_alg : alg_find("RS256");
	else
		mk->alg = alg_find(r->alg);
	if (mk->alg == NULL || !key_fits(&k, mk->alg)) {
		set_err(err, errlen, "%s: algorithm %s does not fit this key",
			r->key_file, r->alg != NULL ? r->alg : "?");
		return -1;
	}
	return 0;
}

static int mint_key_secret(const struct jwt_keyset *ks,
			   const struct jwt_mint_req *r, struct mint_key *mk,
			   char *err, size_t errlen)
{
	const struct jwt_key *k = NULL;

	for (size_t i = 0; ks != NULL && i < ks->nkeys && k == NULL; i++)
		if (ks->keys[i].fam == FAM_HMAC)
			k = &ks->keys[i];
	if (k == NULL) {
		set_err(err, errlen, "jwt: no secret configured and no "
			"private key file given");
		return -1;
	}
	mk->alg = alg_find(r->alg != NULL ? r->alg : "HS256");
	if (mk->alg == NULL || mk->alg->fam != FAM_HMAC) {
		set_err(err, errlen, "jwt: algorithm %s needs a private key "
			"file; the secret signs HS256/384/512",
			r->alg != NULL ? r->alg : "?");
		return -1;
	}
	mk->bytes = k->bytes;
	mk->len = k->len;
	mk->kid = r->kid != NULL ? (r->kid[0] ? r->kid : NULL) : k->kid;
	return 0;
}

/* {"ech3_dest":["a","b"]} from entries already validated (so no byte
 * needs escaping). NULL with err set. */
static char *mint_dest_json(const struct jwt_mint_req *r, char *err,
			    size_t errlen)
{
	struct jwt_dest d;
	size_t size = 32, off;
	char *json;

	if (r->ndest > JWT_DEST_MAX) {
		set_err(err, errlen, "jwt: at most %d destinations",
			JWT_DEST_MAX);
		return NULL;
	}
	for (size_t i = 0; i < r->ndest; i++) {
		if (r->dest[i] == NULL ||
		    jwt_dest_parse(r->dest[i], strlen(r->dest[i]), &d) != 0) {
			set_err(err, errlen, "jwt: destination '%s' is not "
				"host:port", r->dest[i] ? r->dest[i] : "");
			return NULL;
		}
		size += strlen(r->dest[i]) + 3;
	}
	json = malloc(size);
	if (json == NULL) {
		set_err(err, errlen, "jwt: out of memory");
		return NULL;
	}
	off = (size_t)snprintf(json, size, "{\"ech3_dest\":[");
	for (size_t i = 0; i < r->ndest; i++)
		off += (size_t)snprintf(json + off, size - off, "%s\"%s\"",
					i ? "," : "", r->dest[i]);
	snprintf(json + off, size - off, "]}");
	return json;
}

static int mint_claims(jwt_t *jwt, const struct jwt_mint_req *r, long now,
		       char *err, size_t errlen)
{
	char *dest = NULL;
	int rc = 0;

	if (r->ttl < 0 || r->ttl > LONG_MAX - now) {
		set_err(err, errlen, "jwt: ttl %ld is out of range", r->ttl);
		return -1;
	}
	if (r->ndest > 0 && (dest = mint_dest_json(r, err, errlen)) == NULL)
		return -1;
	if (r->sub != NULL)
		rc |= jwt_add_grant(jwt, "sub", r->sub);
	if (nonempty(r->iss))
		rc |= jwt_add_grant(jwt, "iss", r->iss);
	if (nonempty(r->aud))
		rc |= jwt_add_grant(jwt, "aud", r->aud);
	rc |= jwt_add_grant_int(jwt, "iat", now);
	if (r->ttl > 0)
		rc |= jwt_add_grant_int(jwt, "exp", now + r->ttl);
	if (dest != NULL)
		rc |= jwt_add_grants_json(jwt, dest);
	free(dest);
	if (rc != 0)
		set_err(err, errlen, "jwt: cannot add the claims");
	return rc != 0 ? -1 : 0;
}

char *jwt_mint(const struct jwt_keyset *ks, const struct jwt_mint_req *r,
	       long now, char *err, size_t errlen)
{
	struct mint_key mk;
	jwt_t *jwt = NULL;
	char *tok = NULL;

	memset(&mk, 0, sizeof(mk));
	if (nonempty(r->key_file) ? mint_key_file(r, &mk, err, errlen)
				  : mint_key_secret(ks, r, &mk, err, errlen))
		goto out;
	if (jwt_new(&jwt) != 0) {
		set_err(err, errlen, "jwt: out of memory");
		goto out;
	}
	if (mk.kid != NULL && jwt_add_header(jwt, "kid", mk.kid) != 0) {
		set_err(err, errlen, "jwt: cannot add the kid");
		goto out;
	}
	if (mint_claims(jwt, r, now, err, errlen) != 0)
		goto out;
	if (jwt_set_alg(jwt, mk.alg->alg, mk.bytes, (int)mk.len) != 0 ||
	    (tok = jwt_encode_str(jwt)) == NULL)
		set_err(err, errlen, "jwt: signing with %s failed",
			mk.alg->name);
out:
	jwt_free(jwt);
	buf_free_secret(mk.owned, mk.len);
	ERR_clear_error();
	return tok;
}
