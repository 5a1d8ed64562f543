/*
 * test_jwt.c - unit tests of shared/jwt.c: key loading, HS/RS/ES tokens,
 * every refusal reason (alg none, algorithm confusion, kid selection, time
 * and audience claims, malformed input) and the ech3_dest claim. Keys are
 * generated at run time in a mkdtemp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jwt.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../shared/jwt.h"
#include "../../shared/util.h"

#define SECRET "0123456789abcdef0123456789abcdef-test-secret"
#define SECRET2 "another-secret-that-is-long-enough-000000000"

enum {
	K_RSA_PRIV, K_RSA_PUB, K_EC_PRIV, K_EC_PUB, K_EC2_PRIV, K_EC2_PUB,
	K_EC384_PRIV, K_EC384_PUB, K_SECRET_FILE, K_RSA_KID, K_EC_KID_A,
	K_EC_KID_B, NPATHS
};

static const char *const path_names[NPATHS] = {
	"rsa.pem", "rsa.pub", "ec.pem", "ec.pub", "ec2.pem", "ec2.pub",
	"ec384.pem", "ec384.pub", "secret.txt", NULL, NULL, NULL,
};

struct fx {
	char dir[32];
	char path[NPATHS][128];
	long now;
};

/* ---- fixture ---- */

static int write_pair(EVP_PKEY *pk, const char *priv, const char *pub)
{
	FILE *f = fopen(priv, "w");
	int ok;

	if (f == NULL)
		return -1;
	ok = PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	f = fopen(pub, "w");
	if (f == NULL || ok != 1)
		return -1;
	ok = PEM_write_PUBKEY(f, pk);
	fclose(f);
	return ok == 1 ? 0 : -1;
}

static int gen_pair(struct fx *fx, int priv, const char *type,
		    const char *curve)
{
	EVP_PKEY *pk = curve ? EVP_PKEY_Q_keygen(NULL, NULL, type, curve)
			     : EVP_PKEY_Q_keygen(NULL, NULL, type, (size_t)2048);
	int rc;

	if (pk == NULL)
		return -1;
	rc = write_pair(pk, fx->path[priv], fx->path[priv + 1]);
	EVP_PKEY_free(pk);
	return rc;
}

static int group_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	char dir[sizeof(fx->dir)] = "/tmp/ech3-jwt-XXXXXX";
	FILE *f;

	if (fx == NULL || mkdtemp(dir) == NULL)
		return -1;
	memcpy(fx->dir, dir, sizeof(dir));
	for (int i = 0; i < NPATHS; i++)
		if (path_names[i] != NULL)
			snprintf(fx->path[i], sizeof(fx->path[i]), "%s/%s",
				 dir, path_names[i]);
	snprintf(fx->path[K_RSA_KID], sizeof(fx->path[0]), "rsa1=%s/%s", dir,
		 path_names[K_RSA_PUB]);
	snprintf(fx->path[K_EC_KID_A], sizeof(fx->path[0]), "A=%s/%s", dir,
		 path_names[K_EC_PUB]);
	snprintf(fx->path[K_EC_KID_B], sizeof(fx->path[0]), "B=%s/%s", dir,
		 path_names[K_EC2_PUB]);
	if (gen_pair(fx, K_RSA_PRIV, "RSA", NULL) != 0 ||
	    gen_pair(fx, K_EC_PRIV, "EC", "P-256") != 0 ||
	    gen_pair(fx, K_EC2_PRIV, "EC", "P-256") != 0 ||
	    gen_pair(fx, K_EC384_PRIV, "EC", "P-384") != 0)
		return -1;
	f = fopen(fx->path[K_SECRET_FILE], "w");
	if (f == NULL)
		return -1;
	fputs(SECRET "\n", f);
	fclose(f);
	fx->now = (long)time(NULL);
	*state = fx;
	return 0;
}

static int group_teardown(void **state)
{
	struct fx *fx = *state;

	for (int i = 0; i < NPATHS; i++)
		if (path_names[i] != NULL)
			unlink(fx->path[i]);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* ---- helpers ---- */

static struct jwt_keyset *load(const struct jwt_settings *s)
{
	char err[512] = "";
	struct jwt_keyset *ks = jwt_keyset_load(s, err, sizeof(err));

	if (ks == NULL)
		fail_msg("jwt_keyset_load: %s", err);
	return ks;
}

static struct jwt_keyset *load_secret(void)
{
	struct jwt_settings s = { .secret = SECRET };

	return load(&s);
}

static struct jwt_keyset *load_keys(const char *const *keys, size_t n)
{
	struct jwt_settings s = { .keys = keys, .nkeys = n };

	return load(&s);
}

static char *mint(const struct jwt_keyset *ks, const struct jwt_mint_req *r,
		  long now)
{
	char err[512] = "";
	char *t = jwt_mint(ks, r, now, err, sizeof(err));

	if (t == NULL)
		fail_msg("jwt_mint: %s", err);
	return t;
}

/* "ok" or the refusal reason. */
static const char *check(const struct jwt_keyset *ks, const char *tok,
			 long now, struct jwt_claims *c)
{
	struct jwt_claims local;
	const char *reason = "unset";
	int rc = jwt_verify(ks, tok, strlen(tok), now, c ? c : &local,
			    &reason);

	if (rc == 0) {
		assert_null(reason);
		return "ok";
	}
	assert_int_equal(rc, -1);
	assert_non_null(reason);
	return reason;
}

static char *b64url(const void *data, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	size_t n;

	assert_non_null(out);
	n = base64_encode(data, len, out);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	return out;
}

/* A token from raw header and payload JSON, HS256-signed with key (none
 * when key is NULL). */
static char *hand_token(const char *hdr, const char *payload,
			const void *key, size_t keylen)
{
	char *h = b64url(hdr, strlen(hdr)), *p = b64url(payload,
							  strlen(payload));
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	char *input, *sig, *tok;
	size_t n = strlen(h) + strlen(p) + 2;

	input = malloc(n);
	assert_non_null(input);
	snprintf(input, n, "%s.%s", h, p);
	if (key != NULL)
		assert_non_null(HMAC(EVP_sha256(), key, (int)keylen,
				     (unsigned char *)input, strlen(input),
				     mac, &maclen));
	sig = b64url(mac, maclen);
	n = strlen(input) + strlen(sig) + 2;
	tok = malloc(n);
	assert_non_null(tok);
	snprintf(tok, n, "%s.%s", input, sig);
	free(h);
	free(p);
	free(input);
	free(sig);
	return tok;
}

static char *hs_token(const char *payload)
{
	return hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload,
			  SECRET, strlen(SECRET));
}

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = malloc(65536);

	assert_non_null(f);
	assert_non_null(buf);
	*len = fread(buf, 1, 65535, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* ---- valid tokens ---- */

static void test_valid_hs256(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	struct jwt_mint_req r = { .sub = "alice", .ttl = 60 };
	struct jwt_claims c;
	char *t = mint(ks, &r, fx->now);

	assert_true(jwt_keyset_enabled(ks));
	assert_true(jwt_looks_like(t, strlen(t)));
	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_string_equal(c.sub, "alice");
	assert_int_equal(c.exp, fx->now + 60);
	assert_int_equal(c.has_dest, 0);
	assert_true(jwt_dest_allowed(&c, "anything.example", 1));
	/* another secret refuses it */
	{
		struct jwt_settings s = { .secret = SECRET2 };
		struct jwt_keyset *ks2 = load(&s);

		assert_string_equal(check(ks2, t, fx->now, NULL),
				    "invalid_signature");
		jwt_keyset_free(ks2);
	}
	free(t);
	jwt_keyset_free(ks);
}

static void test_valid_hs384_512(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	struct jwt_mint_req r = { .sub = "bob", .ttl = 60, .alg = "HS512" };
	char *t = mint(ks, &r, fx->now);

	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	r.alg = "HS384";
	t = mint(ks, &r, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	jwt_keyset_free(ks);
}

static void test_valid_rs256(void **state)
{
	struct fx *fx = *state;
	const char *keys[] = { fx->path[K_RSA_PUB] };
	struct jwt_keyset *ks = load_keys(keys, 1);
	struct jwt_mint_req r = { .sub = "carol", .ttl = 300,
				  .key_file = fx->path[K_RSA_PRIV] };
	struct jwt_claims c;
	char *t = mint(NULL, &r, fx->now);

	/* header {"alg":"RS256","typ":"JWT"} */
	assert_memory_equal(t, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9", 36);
	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_string_equal(c.sub, "carol");
	free(t);
	r.alg = "RS512";
	t = mint(NULL, &r, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	jwt_keyset_free(ks);
}

static void test_valid_es256(void **state)
{
	struct fx *fx = *state;
	const char *keys[] = { fx->path[K_EC_PUB] };
	struct jwt_keyset *ks = load_keys(keys, 1);
	struct jwt_mint_req r = { .sub = "dave", .ttl = 300,
				  .key_file = fx->path[K_EC_PRIV] };
	struct jwt_claims c;
	char *t = mint(NULL, &r, fx->now);
	const char *sig = strrchr(t, '.') + 1;

	/* header {"alg":"ES256","typ":"JWT"}; JOSE R||S signature */
	assert_memory_equal(t, "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9", 36);
	assert_int_equal(strlen(sig), 86);
	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_string_equal(c.sub, "dave");
	free(t);
	jwt_keyset_free(ks);
}

static void test_es_curve_pinned(void **state)
{
	struct fx *fx = *state;
	const char *keys[] = { fx->path[K_EC384_PUB] };
	struct jwt_keyset *ks = load_keys(keys, 1);
	struct jwt_mint_req r = { .ttl = 60,
				  .key_file = fx->path[K_EC384_PRIV] };
	unsigned char *pem;
	size_t len;
	jwt_t *j;
	char *t = mint(NULL, &r, fx->now);	/* ES384 from the curve */

	assert_memory_equal(t, "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCJ9", 36);
	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	/* jwt_mint refuses ES256 with a P-384 key... */
	{
		char err[256];

		r.alg = "ES256";
		assert_null(jwt_mint(NULL, &r, fx->now, err, sizeof(err)));
	}
	/* ...libjwt does not: an ES256 token signed with P-384 */
	pem = slurp(fx->path[K_EC384_PRIV], &len);
	assert_int_equal(jwt_new(&j), 0);
	assert_int_equal(jwt_add_grant_int(j, "exp", fx->now + 60), 0);
	assert_int_equal(jwt_set_alg(j, JWT_ALG_ES256, pem, (int)len), 0);
	t = jwt_encode_str(j);
	assert_non_null(t);
	assert_string_equal(check(ks, t, fx->now, NULL), "alg_key_mismatch");
	free(t);
	jwt_free(j);
	free(pem);
	jwt_keyset_free(ks);
}

static void test_family_mismatch(void **state)
{
	struct fx *fx = *state;
	const char *keys[] = { fx->path[K_EC_PUB] };
	struct jwt_keyset *ks = load_keys(keys, 1);
	struct jwt_mint_req r = { .ttl = 60,
				  .key_file = fx->path[K_RSA_PRIV] };
	char *t = mint(NULL, &r, fx->now);

	assert_string_equal(check(ks, t, fx->now, NULL), "alg_key_mismatch");
	free(t);
	jwt_keyset_free(ks);
}

/* ---- time claims ---- */

static void test_expired(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	struct jwt_mint_req r = { .ttl = 60 };
	char *t = mint(ks, &r, fx->now);

	assert_string_equal(check(ks, t, fx->now + 60, NULL), "ok");
	assert_string_equal(check(ks, t, fx->now + 61, NULL), "expired");
	assert_string_equal(check(ks, t, fx->now + 100000, NULL), "expired");
	free(t);
	jwt_keyset_free(ks);
}

static void test_not_yet_valid(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	char payload[128];
	char *t;

	snprintf(payload, sizeof(payload), "{\"nbf\":%ld,\"exp\":%ld}",
		 fx->now + 100, fx->now + 1000);
	t = hs_token(payload);
	assert_string_equal(check(ks, t, fx->now, NULL), "not_yet_valid");
	assert_string_equal(check(ks, t, fx->now + 99, NULL),
			    "not_yet_valid");
	assert_string_equal(check(ks, t, fx->now + 100, NULL), "ok");
	free(t);
	jwt_keyset_free(ks);
}

static void test_leeway(void **state)
{
	struct fx *fx = *state;
	struct jwt_settings s = { .secret = SECRET, .leeway = 30 };
	struct jwt_keyset *ks = load(&s);
	char payload[128];
	char *t;

	snprintf(payload, sizeof(payload), "{\"exp\":%ld}", fx->now);
	t = hs_token(payload);
	assert_string_equal(check(ks, t, fx->now + 20, NULL), "ok");
	assert_string_equal(check(ks, t, fx->now + 30, NULL), "ok");
	assert_string_equal(check(ks, t, fx->now + 31, NULL), "expired");
	free(t);
	snprintf(payload, sizeof(payload), "{\"nbf\":%ld}", fx->now + 30);
	t = hs_token(payload);
	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	assert_string_equal(check(ks, t, fx->now - 1, NULL), "not_yet_valid");
	free(t);
	jwt_keyset_free(ks);
	/* without leeway the same tokens are refused */
	s.leeway = 0;
	ks = load(&s);
	snprintf(payload, sizeof(payload), "{\"exp\":%ld}", fx->now);
	t = hs_token(payload);
	assert_string_equal(check(ks, t, fx->now + 1, NULL), "expired");
	free(t);
	jwt_keyset_free(ks);
}

static void test_missing_exp(void **state)
{
	struct fx *fx = *state;
	struct jwt_settings s = { .secret = SECRET, .require_exp = 1 };
	struct jwt_keyset *ks = load(&s);
	struct jwt_mint_req r = { .sub = "noexp", .ttl = 0 };
	struct jwt_claims c;
	char *t = mint(ks, &r, fx->now);

	assert_string_equal(check(ks, t, fx->now, NULL), "missing_exp");
	jwt_keyset_free(ks);
	s.require_exp = 0;
	ks = load(&s);
	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_int_equal(c.exp, 0);
	assert_string_equal(c.sub, "noexp");
	free(t);
	jwt_keyset_free(ks);
}

static void test_time_claim_types(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	struct jwt_claims c;
	char payload[128];
	char *t;

	t = hs_token("{\"exp\":\"9999999999\"}");
	assert_string_equal(check(ks, t, fx->now, NULL), "invalid_claims");
	free(t);
	t = hs_token("{\"nbf\":true}");
	assert_string_equal(check(ks, t, fx->now, NULL), "invalid_claims");
	free(t);
	/* NumericDate may have a fraction */
	snprintf(payload, sizeof(payload), "{\"exp\":%ld.5}", fx->now + 10);
	t = hs_token(payload);
	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_int_equal(c.exp, fx->now + 10);
	free(t);
	t = hs_token("{\"exp\":1e100}");
	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_int_equal(c.exp, LONG_MAX);
	free(t);
	jwt_keyset_free(ks);
}

/* ---- iss and aud ---- */

static void test_issuer(void **state)
{
	struct fx *fx = *state;
	struct jwt_settings s = { .secret = SECRET, .issuer = "https://idp" };
	struct jwt_keyset *ks = load(&s);
	struct jwt_mint_req r = { .ttl = 60, .iss = "https://idp" };
	char *t = mint(ks, &r, fx->now);

	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	r.iss = "https://evil";
	t = mint(ks, &r, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "invalid_issuer");
	free(t);
	r.iss = NULL;
	t = mint(ks, &r, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "invalid_issuer");
	free(t);
	t = hs_token("{\"iss\":[\"https://idp\"]}");
	assert_string_equal(check(ks, t, fx->now, NULL), "invalid_issuer");
	free(t);
	jwt_keyset_free(ks);
}

static void test_audience(void **state)
{
	struct fx *fx = *state;
	struct jwt_settings s = { .secret = SECRET, .audience = "ech3" };
	struct jwt_keyset *ks = load(&s);
	struct jwt_mint_req r = { .ttl = 60, .aud = "ech3" };
	static const struct {
		const char *payload, *want;
	} cases[] = {
		{ "{\"aud\":\"ech3\"}", "ok" },
		{ "{\"aud\":\"other\"}", "invalid_audience" },
		{ "{\"aud\":\"ech3x\"}", "invalid_audience" },
		{ "{\"aud\":[\"a\",\"ech3\"]}", "ok" },
		{ "{\"aud\":[\"e\\u0063h3\"]}", "ok" },
		{ "{\"aud\":[\"a\",\"b\"]}", "invalid_audience" },
		{ "{\"aud\":[]}", "invalid_audience" },
		{ "{\"aud\":[1,\"ech3\"]}", "invalid_audience" },
		{ "{\"aud\":42}", "invalid_audience" },
		{ "{\"sub\":\"x\"}", "invalid_audience" },
	};
	char *t = mint(ks, &r, fx->now);

	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	r.aud = "nope";
	t = mint(ks, &r, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "invalid_audience");
	free(t);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = hs_token(cases[i].payload);
		assert_string_equal(check(ks, t, fx->now, NULL),
				    cases[i].want);
		free(t);
	}
	jwt_keyset_free(ks);
	/* no audience configured: aud is not checked */
	ks = load_secret();
	t = hs_token("{\"aud\":\"whatever\"}");
	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	jwt_keyset_free(ks);
}

/* ---- forged tokens ---- */

static void test_bad_signature(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	struct jwt_mint_req r = { .sub = "eve", .ttl = 60 };
	char *t = mint(ks, &r, fx->now);
	char *sig = strrchr(t, '.') + 1;

	sig[5] = sig[5] == 'A' ? 'B' : 'A';
	assert_string_equal(check(ks, t, fx->now, NULL), "invalid_signature");
	sig[0] = '\0';		/* no signature at all */
	assert_string_equal(check(ks, t, fx->now, NULL), "invalid_signature");
	free(t);
	jwt_keyset_free(ks);
}

static void test_tampered_payload(void **state)
{
	struct fx *fx = *state;
	const char *keys[] = { fx->path[K_RSA_PUB] };
	struct jwt_keyset *ks = load_keys(keys, 1);
	struct jwt_mint_req r = { .sub = "user", .ttl = 60,
				  .key_file = fx->path[K_RSA_PRIV] };
	char *t = mint(NULL, &r, fx->now);
	char payload[128], *body, *forged, *dot1 = strchr(t, '.');
	char *dot2 = strchr(dot1 + 1, '.');
	size_t n;

	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	snprintf(payload, sizeof(payload), "{\"exp\":%ld,\"sub\":\"admin\"}",
		 fx->now + 60);
	body = b64url(payload, strlen(payload));
	n = strlen(t) + strlen(body) + 1;
	forged = malloc(n);
	assert_non_null(forged);
	snprintf(forged, n, "%.*s.%s%s", (int)(dot1 - t), t, body, dot2);
	assert_string_equal(check(ks, forged, fx->now, NULL),
			    "invalid_signature");
	free(forged);
	free(body);
	free(t);
	jwt_keyset_free(ks);
}

static void test_alg_none(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	char payload[128], *body, tok[512];
	static const char *const hdrs[] = {
		"eyJhbGciOiJub25lIn0",			/* {"alg":"none"} */
		"eyJhbGciOiJOb05lIn0",			/* {"alg":"NoNe"} */
		"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0",	/* + typ JWT */
		"eyJ0eXAiOiJKV1QifQ",			/* no alg */
		"eyJhbGciOiJoczI1NiJ9",			/* "hs256" */
		"eyJhbGciOiJQUzI1NiJ9",			/* "PS256" */
		"eyJhbGciOjF9",				/* alg: 1 */
	};

	snprintf(payload, sizeof(payload), "{\"exp\":%ld,\"sub\":\"root\"}",
		 fx->now + 60);
	body = b64url(payload, strlen(payload));
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		snprintf(tok, sizeof(tok), "%s.%s.", hdrs[i], body);
		assert_true(jwt_looks_like(tok, strlen(tok)));
		assert_string_equal(check(ks, tok, fx->now, NULL),
				    "unsupported_alg");
		snprintf(tok, sizeof(tok), "%s.%s.c2ln", hdrs[i], body);
		assert_string_equal(check(ks, tok, fx->now, NULL),
				    "unsupported_alg");
	}
	free(body);
	jwt_keyset_free(ks);
}

static void test_alg_confusion(void **state)
{
	struct fx *fx = *state;
	const char *plain[] = { fx->path[K_RSA_PUB] };
	const char *kidded[] = { fx->path[K_RSA_KID] };
	struct jwt_keyset *ks = load_keys(plain, 1);
	size_t len;
	unsigned char *pem = slurp(fx->path[K_RSA_PUB], &len);
	char payload[128], *t;
	jwt_t *j = NULL;

	snprintf(payload, sizeof(payload), "{\"exp\":%ld,\"sub\":\"root\"}",
		 fx->now + 60);
	t = hand_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, pem,
		       len);
	/* the attack is real: libjwt alone accepts it with the PEM */
	assert_int_equal(jwt_decode(&j, t, pem, (int)len), 0);
	jwt_free(j);
	assert_string_equal(check(ks, t, fx->now, NULL), "alg_key_mismatch");
	free(t);
	jwt_keyset_free(ks);
	/* naming the RSA key's kid does not help */
	ks = load_keys(kidded, 1);
	t = hand_token("{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", payload, pem,
		       len);
	assert_string_equal(check(ks, t, fx->now, NULL), "alg_key_mismatch");
	free(t);
	free(pem);
	jwt_keyset_free(ks);
}

static void test_token_too_long(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	size_t big = 1 << 20;
	char *t = malloc(big + 1);
	struct jwt_settings s = { .secret = SECRET, .max_token_bytes = 100 };
	struct jwt_mint_req r = { .sub = "a-long-subject-name", .ttl = 60 };

	assert_non_null(t);
	memset(t, 'a', big);
	t[100] = '.';
	t[200] = '.';
	t[big] = '\0';
	assert_string_equal(check(ks, t, fx->now, NULL), "token_too_long");
	free(t);
	jwt_keyset_free(ks);
	ks = load(&s);
	t = mint(ks, &r, fx->now);
	assert_true(strlen(t) > 100);
	assert_string_equal(check(ks, t, fx->now, NULL), "token_too_long");
	free(t);
	jwt_keyset_free(ks);
}

static void test_malformed(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	static const char *const raw[] = {
		"", "abc", "a.b", "a.b.c.d", "!!!.???.***", ".eyJ9.x",
		"eyJhbGciOiJIUzI1NiJ9..sig",
		"eyJhbGciOiJIUzI1NiJ9.e30=.sig",	/* padding */
		"eyJhbGciOiJIUzI1NiJ9.e30.s+g/",	/* std alphabet */
		"eyJhbGciOiJIUzI1NiJ9.e.sig",		/* 1 char group */
		"eyJhbGciOiJIUzI1NiJ9.e31.sig",		/* unused bits */
		"bm90IGpzb24.e30.sig",			/* "not json" */
		"eyJhbGciOiJIUzI1NiJ9.WzFd.sig",	/* payload [1] */
	};
	static const struct {
		const char *hdr, *payload;
	} json[] = {
		{ "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", "{}" },
		{ "{\"alg\":\"HS256\",\"typ\":1}", "{}" },
		{ "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", "{}" },
		{ "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{}" },
		{ "{\"alg\":\"HS256\",\"kid\":1}", "{}" },
		{ "{\"alg\":\"HS256\"} x", "{}" },
		{ "{\"alg\":\"HS256\"}", "{\"exp\":1,\"exp\":2}" },
		{ "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"sub\":\"b\"}" },
		{ "{\"alg\":\"HS256\"}", "{\"a\":1,}" },
		{ "{\"alg\":\"HS256\"}", "{\"a\":\"\\u0000\"}" },
		{ "{\"alg\":\"HS256\"}", "{\"a\":\"\\ud800\"}" },
		{ "{\"alg\":\"HS256\"}", "{\"a\":\"\xff\"}" },
		{ "{\"alg\":\"HS256\"}", "{\"a\":1234567890123456789}" },
		{ "{\"alg\":\"HS256\"}", "{\"a\":01}" },
		{ "{\"alg\":\"HS256\"}", "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
					 "[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]"
					 "]]]]]]]}" },
		{ "{\"alg\":\"HS256\"}", "{\"a\":1} {}" },
		{ "[\"alg\",\"HS256\"]", "{}" },
	};
	char *t;

	for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++)
		assert_string_equal(check(ks, raw[i], fx->now, NULL),
				    "malformed");
	for (size_t i = 0; i < sizeof(json) / sizeof(json[0]); i++) {
		t = hand_token(json[i].hdr, json[i].payload, SECRET,
			       strlen(SECRET));
		if (strcmp(check(ks, t, fx->now, NULL), "malformed") != 0)
			fail_msg("case %zu not refused as malformed", i);
		free(t);
	}
	/* a correctly signed but harmless variant of the above passes */
	t = hand_token("{\"alg\":\"HS256\",\"typ\":\"jwt\",\"x\":{\"y\":[1,"
		       "2.5e3,null,true,false,\"\\u00e9\\ud83d\\ude00\"]}}",
		       "{\"a\":\"caf\xc3\xa9\",\"n\":-0.5}", SECRET,
		       strlen(SECRET));
	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	jwt_keyset_free(ks);
}

/* ---- key choice ---- */

static void test_kid_selection(void **state)
{
	struct fx *fx = *state;
	const char *keys[] = { fx->path[K_EC_KID_A], fx->path[K_EC_KID_B] };
	struct jwt_keyset *ks = load_keys(keys, 2);
	struct jwt_mint_req a = { .sub = "a", .ttl = 60, .kid = "A",
				  .key_file = fx->path[K_EC_PRIV] };
	struct jwt_mint_req b = { .sub = "b", .ttl = 60, .kid = "B",
				  .key_file = fx->path[K_EC2_PRIV] };
	struct jwt_claims c;
	char *t;

	t = mint(NULL, &a, fx->now);
	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_string_equal(c.sub, "a");
	free(t);
	t = mint(NULL, &b, fx->now);
	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_string_equal(c.sub, "b");
	free(t);
	/* A's key under B's kid: only B's key is tried */
	a.kid = "B";
	t = mint(NULL, &a, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "invalid_signature");
	free(t);
	a.kid = "C";
	t = mint(NULL, &a, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "unknown_kid");
	free(t);
	/* no kid: every key of the family is tried */
	a.kid = NULL;
	b.kid = NULL;
	t = mint(NULL, &a, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	t = mint(NULL, &b, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	jwt_keyset_free(ks);
}

static void test_secret_kid(void **state)
{
	struct fx *fx = *state;
	const char *keys[] = { fx->path[K_RSA_KID] };
	struct jwt_settings s = { .secret = SECRET, .secret_kid = "hs",
				  .keys = keys, .nkeys = 1 };
	struct jwt_keyset *ks = load(&s);
	struct jwt_mint_req r = { .sub = "k", .ttl = 60 };
	jwt_t *j = NULL;
	char *t;

	t = mint(ks, &r, fx->now);		/* kid "hs" from the secret */
	assert_int_equal(jwt_decode(&j, t, (const unsigned char *)SECRET,
				    (int)strlen(SECRET)), 0);
	assert_string_equal(jwt_get_header(j, "kid"), "hs");
	jwt_free(j);
	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	r.kid = "rsa1";
	t = mint(ks, &r, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "alg_key_mismatch");
	free(t);
	r.kid = "zzz";
	t = mint(ks, &r, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "unknown_kid");
	free(t);
	jwt_keyset_free(ks);
	/* a secret without kid takes any kid no other key has */
	s.secret_kid = NULL;
	ks = load(&s);
	t = mint(ks, &r, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	r.kid = "";				/* no kid header */
	t = mint(ks, &r, fx->now);
	assert_string_equal(check(ks, t, fx->now, NULL), "ok");
	free(t);
	jwt_keyset_free(ks);
}

/* ---- keys ---- */

static void expect_load_error(const struct jwt_settings *s, const char *want)
{
	char err[512] = "";

	assert_null(jwt_keyset_load(s, err, sizeof(err)));
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' lacks '%s'", err, want);
	/* never the secret itself */
	if (s->secret != NULL && s->secret[0] != '\0')
		assert_null(strstr(err, s->secret));
}

static void test_keyset_load(void **state)
{
	struct fx *fx = *state;
	struct jwt_settings none = { .secret = "" };
	struct jwt_settings file = { .secret_file = fx->path[K_SECRET_FILE] };
	const char *missing[] = { "/nonexistent/key.pem" };
	const char *priv[] = { fx->path[K_RSA_PRIV] };
	const char *dup[] = { fx->path[K_EC_KID_A], fx->path[K_EC_KID_A] };
	const char *badkid[] = { "=/x.pem" };
	struct jwt_settings s;
	struct jwt_keyset *ks, *ks2;
	struct jwt_mint_req r = { .ttl = 60 };
	char *t;

	ks = load(&none);
	assert_false(jwt_keyset_enabled(ks));
	jwt_keyset_free(ks);
	assert_false(jwt_keyset_enabled(NULL));
	jwt_keyset_free(NULL);

	/* secret_file loses its newline and equals the inline secret */
	ks = load(&file);
	ks2 = load_secret();
	t = mint(ks, &r, fx->now);
	assert_string_equal(check(ks2, t, fx->now, NULL), "ok");
	free(t);
	jwt_keyset_free(ks);
	jwt_keyset_free(ks2);

	memset(&s, 0, sizeof(s));
	s.keys = missing;
	s.nkeys = 1;
	expect_load_error(&s, "/nonexistent/key.pem");
	s.keys = priv;
	expect_load_error(&s, "not a PEM public key");
	s.keys = dup;
	s.nkeys = 2;
	expect_load_error(&s, "kid 'A'");
	s.keys = badkid;
	s.nkeys = 1;
	expect_load_error(&s, "kid=path");

	memset(&s, 0, sizeof(s));
	s.secret = "abc";
	expect_load_error(&s, "at least 32");
	s.secret_file = fx->path[K_SECRET_FILE];
	expect_load_error(&s, "not both");
	s.secret = NULL;
	s.secret_file = "/nonexistent/secret";
	expect_load_error(&s, "/nonexistent/secret");
	s.secret_file = NULL;
	s.secret = SECRET;
	s.leeway = -1;
	expect_load_error(&s, "leeway");
	s.leeway = 0;
	s.max_token_bytes = 1 << 20;
	expect_load_error(&s, "max token bytes");
	memset(&s, 0, sizeof(s));
	s.secret_kid = "k";
	expect_load_error(&s, "no secret");
}

static void test_verify_edges(void **state)
{
	struct fx *fx = *state;
	struct jwt_settings empty = { .secret = NULL };
	struct jwt_keyset *ks = load(&empty);
	struct jwt_claims c;
	const char *why = NULL;
	char *t = hs_token("{}");

	/* no keys at all, or no keyset: nothing verifies */
	assert_string_equal(check(ks, t, fx->now, &c), "alg_key_mismatch");
	assert_false(jwt_dest_allowed(&c, "a", 1));
	assert_int_equal(jwt_verify(NULL, t, strlen(t), fx->now, &c, &why),
			 -1);
	assert_string_equal(why, "alg_key_mismatch");
	jwt_keyset_free(ks);
	ks = load_secret();
	assert_int_equal(jwt_verify(ks, NULL, 0, fx->now, &c, &why), -1);
	assert_string_equal(why, "malformed");
	/* len, not the NUL, bounds the token */
	assert_int_equal(jwt_verify(ks, t, strlen(t) - 1, fx->now, &c, &why),
			 -1);
	assert_non_null(why);
	assert_int_equal(jwt_verify(ks, t, strlen(t), fx->now, &c, &why), 0);
	free(t);
	jwt_keyset_free(ks);
}

/* ---- destinations ---- */

static void test_dest_parse(void **state)
{
	static const char *const good[] = {
		"*:*", "db.internal:5432", "Example.COM:80", "*.example.com:443",
		"10.0.0.5:22-23", "[::1]:8000-8099", "[2001:DB8::1]:*",
		"under_score.local:1", "a:65535", "1.2.3.4:1-65535",
	};
	static const char *const bad[] = {
		"", ":80", "host", "host:", "host:0", "host:65536", "host:20-10",
		"host:1-", "host:-5", "host:x", "::1:80", "[::1]80", "[::1]",
		"[nope]:80", "*.:80", "a..b:80", ".a:80", "a.:80", "10.1:80",
		"*.10.0.0.1:80", "foo*.com:80", "*foo.com:80", "**:80",
		"a b:80", "[::1%eth0]:80", "256.1.1.1:80", "host:+80",
	};
	struct jwt_dest d;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (jwt_dest_parse(good[i], strlen(good[i]), &d) != 0)
			fail_msg("'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (jwt_dest_parse(bad[i], strlen(bad[i]), &d) == 0)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(jwt_dest_parse("Example.COM:80-90", 17, &d), 0);
	assert_string_equal(d.host, "example.com");
	assert_int_equal(d.port_lo, 80);
	assert_int_equal(d.port_hi, 90);
	assert_int_equal(jwt_dest_parse("[2001:DB8:0::1]:*", 17, &d), 0);
	assert_string_equal(d.host, "2001:db8::1");
	assert_int_equal(d.port_lo, 1);
	assert_int_equal(d.port_hi, 65535);
}

static void test_dest_claim(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	const char *dest[] = { "db.internal:5432", "*.example.com:443",
			       "10.0.0.5:22-23", "[::1]:*" };
	struct jwt_mint_req r = { .sub = "d", .ttl = 60, .dest = dest,
				  .ndest = 4 };
	static const struct {
		const char *host;
		int port, want;
	} cases[] = {
		{ "db.internal", 5432, 1 },
		{ "DB.Internal", 5432, 1 },
		{ "db.internal", 5433, 0 },
		{ "db.internal.", 5432, 0 },
		{ "x.db.internal", 5432, 0 },
		{ "a.example.com", 443, 1 },
		{ "A.B.EXAMPLE.com", 443, 1 },
		{ "a.example.com", 80, 0 },
		{ "example.com", 443, 0 },
		{ "evilexample.com", 443, 0 },
		{ "a.example.com.evil.net", 443, 0 },
		{ "10.0.0.5", 22, 1 },
		{ "10.0.0.5", 23, 1 },
		{ "10.0.0.5", 24, 0 },
		{ "10.0.0.6", 22, 0 },
		{ "::1", 8080, 1 },
		{ "[::1]", 1, 1 },
		{ "0:0::1", 65535, 1 },
		{ "::2", 8080, 0 },
		{ "other.org", 5432, 0 },
		{ "db.internal", 0, 0 },
		{ "", 5432, 0 },
	};
	struct jwt_claims c;
	char *t = mint(ks, &r, fx->now);

	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_int_equal(c.has_dest, 1);
	assert_int_equal(c.ndest, 4);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (jwt_dest_allowed(&c, cases[i].host, cases[i].port) !=
		    cases[i].want)
			fail_msg("%s:%d should be %s", cases[i].host,
				 cases[i].port,
				 cases[i].want ? "allowed" : "refused");
	free(t);
	jwt_keyset_free(ks);
}

static void test_dest_claim_invalid(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	static const char *const bad[] = {
		"{\"ech3_dest\":\"db:5432\"}",
		"{\"ech3_dest\":[\"nope\"]}",
		"{\"ech3_dest\":[1]}",
		"{\"ech3_dest\":{\"a\":1}}",
		"{\"ech3_dest\":[\"a:1\",\"b:2\",\"c:3\",\"d:4\",\"e:5\",\"f:6\","
		"\"g:7\",\"h:8\",\"i:9\",\"j:10\",\"k:11\",\"l:12\",\"m:13\","
		"\"n:14\",\"o:15\",\"p:16\",\"q:17\"]}",
	};
	struct jwt_claims c;
	const char *dest[] = { "a:1", "nope" };
	struct jwt_mint_req r = { .ttl = 60, .dest = dest, .ndest = 2 };
	char err[256], *t;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = hs_token(bad[i]);
		assert_string_equal(check(ks, t, fx->now, &c),
				    "invalid_claims");
		/* a refused token allows no destination */
		assert_false(jwt_dest_allowed(&c, "a", 1));
		free(t);
	}
	/* an empty list allows nothing */
	t = hs_token("{\"ech3_dest\":[]}");
	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_int_equal(c.has_dest, 1);
	assert_false(jwt_dest_allowed(&c, "a", 1));
	free(t);
	/* jwt_mint refuses a bad entry */
	assert_null(jwt_mint(ks, &r, fx->now, err, sizeof(err)));
	assert_non_null(strstr(err, "nope"));
	jwt_keyset_free(ks);
}

/* ---- sub, looks_like, mint errors ---- */

static void test_sub(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	struct jwt_claims c;
	char payload[256];
	char *t;

	t = hs_token("{\"sub\":\"a\\u0001b\\nc\\u00e9\"}");
	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_string_equal(c.sub, "a?b?c??");
	free(t);
	snprintf(payload, sizeof(payload), "{\"sub\":\"%0100d\"}", 7);
	t = hs_token(payload);
	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_int_equal(strlen(c.sub), 63);
	free(t);
	t = hs_token("{}");
	assert_string_equal(check(ks, t, fx->now, &c), "ok");
	assert_string_equal(c.sub, "-");
	free(t);
	t = hs_token("{\"sub\":12}");
	assert_string_equal(check(ks, t, fx->now, &c), "invalid_claims");
	free(t);
	jwt_keyset_free(ks);
}

static void test_looks_like(void **state)
{
	static const char *const yes[] = {
		"a.b.c", "eyJhbGciOiJub25lIn0.e30.", "A-_z.0-9.abc",
	};
	static const char *const no[] = {
		"", "abc", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b+.c",
		"a.b.c=", "0123456789abcdef", "a.b.c ",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(jwt_looks_like(yes[i], strlen(yes[i])));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (jwt_looks_like(no[i], strlen(no[i])))
			fail_msg("'%s' looks like a JWT", no[i]);
	/* the length bounds the scan */
	assert_false(jwt_looks_like("a.b.c", 3));
}

static void test_mint_errors(void **state)
{
	struct fx *fx = *state;
	struct jwt_keyset *ks = load_secret();
	struct jwt_mint_req r = { .ttl = 60 };
	char err[256];

	assert_null(jwt_mint(NULL, &r, fx->now, err, sizeof(err)));
	assert_non_null(strstr(err, "no secret"));
	r.alg = "RS256";
	assert_null(jwt_mint(ks, &r, fx->now, err, sizeof(err)));
	r.alg = "none";
	assert_null(jwt_mint(ks, &r, fx->now, err, sizeof(err)));
	r.alg = NULL;
	r.ttl = -1;
	assert_null(jwt_mint(ks, &r, fx->now, err, sizeof(err)));
	r.ttl = 60;
	r.key_file = "/nonexistent/priv.pem";
	assert_null(jwt_mint(ks, &r, fx->now, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/priv.pem"));
	r.key_file = fx->path[K_RSA_PUB];	/* a public key cannot sign */
	assert_null(jwt_mint(ks, &r, fx->now, err, sizeof(err)));
	r.key_file = fx->path[K_EC_PRIV];
	r.alg = "RS256";
	assert_null(jwt_mint(ks, &r, fx->now, err, sizeof(err)));
	jwt_keyset_free(ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_hs256),
		cmocka_unit_test(test_valid_hs384_512),
		cmocka_unit_test(test_valid_rs256),
		cmocka_unit_test(test_valid_es256),
		cmocka_unit_test(test_es_curve_pinned),
		cmocka_unit_test(test_family_mismatch),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_not_yet_valid),
		cmocka_unit_test(test_leeway),
		cmocka_unit_test(test_missing_exp),
		cmocka_unit_test(test_time_claim_types),
		cmocka_unit_test(test_issuer),
		cmocka_unit_test(test_audience),
		cmocka_unit_test(test_bad_signature),
		cmocka_unit_test(test_tampered_payload),
		cmocka_unit_test(test_alg_none),
		cmocka_unit_test(test_alg_confusion),
		cmocka_unit_test(test_token_too_long),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_kid_selection),
		cmocka_unit_test(test_secret_kid),
		cmocka_unit_test(test_keyset_load),
		cmocka_unit_test(test_verify_edges),
		cmocka_unit_test(test_dest_parse),
		cmocka_unit_test(test_dest_claim),
		cmocka_unit_test(test_dest_claim_invalid),
		cmocka_unit_test(test_sub),
		cmocka_unit_test(test_looks_like),
		cmocka_unit_test(test_mint_errors),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
