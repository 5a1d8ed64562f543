/*
 * policy.c - building the workers' decision objects from a configuration.
 */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/admission.h"
#include "../shared/jwt.h"
#include "../shared/tls.h"
#include "../worker/egress.h"

static int jwt_configured(const struct config *cfg)
{
	return cfg->jwt_secret[0] != '\0' || cfg->jwt_secret_file[0] != '\0' ||
	       cfg->jwt_keys.n > 0;
}

static int build_jwt(const struct config *cfg, struct worker_policy *pol,
		     char *err, size_t errlen)
{
	struct jwt_settings s;
	char why[256];

	if (!jwt_configured(cfg))
		return 0;
	memset(&s, 0, sizeof(s));
	s.secret = cfg->jwt_secret;
	s.secret_file = cfg->jwt_secret_file;
	s.secret_kid = cfg->jwt_secret_kid;
	s.keys = (const char *const *)cfg->jwt_keys.v;
	s.nkeys = cfg->jwt_keys.n;
	s.issuer = cfg->jwt_issuer;
	s.audience = cfg->jwt_audience;
	s.require_exp = cfg->jwt_require_exp;
	s.leeway = cfg->jwt_leeway;
	s.max_token_bytes = cfg->jwt_max_token_bytes;
	pol->jwt = jwt_keyset_load(&s, why, sizeof(why));
	if (pol->jwt == NULL) {
		snprintf(err, errlen, "jwt: %s", why);
		return -1;
	}
	return 0;
}

static int build_egress(const struct config *cfg, const struct listener *ls,
			size_t nls, struct worker_policy *pol, char *err,
			size_t errlen)
{
	struct sockaddr_storage own[64];
	size_t nown = 0;
	char why[256];

	for (size_t i = 0; i < nls && nown < 64; i++)
		own[nown++] = ls[i].addr;
	pol->egress = egress_new((const char *const *)cfg->egress_allow.v,
				 cfg->egress_allow.n,
				 (const char *const *)cfg->egress_deny.v,
				 cfg->egress_deny.n, own, nown, why, sizeof(why));
	if (pol->egress == NULL) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	if (cfg->trusted_proxies.n == 0)
		return 0;
	pol->trusted = egress_new((const char *const *)cfg->trusted_proxies.v,
				  cfg->trusted_proxies.n, NULL, 0, NULL, 0, why,
				  sizeof(why));
	if (pol->trusted == NULL) {
		snprintf(err, errlen, "trusted_proxies: %s", why);
		return -1;
	}
	return 0;
}

/* Certificates are read here, by the master, once per configuration:
 * every worker of a generation (respawned ones too) uses this copy, so a
 * certificate file broken after a refused reload cannot break them. */
static int build_tls(const struct config *cfg, struct worker_policy *pol,
		     char *err, size_t errlen)
{
	if (cfg->tls_cert[0] != '\0' || cfg->tls_key[0] != '\0') {
		pol->tls_ctx = tls_server_ctx(cfg->tls_cert, cfg->tls_key, err,
					      errlen);
		if (pol->tls_ctx == NULL)
			return -1;
	}
	if (strncmp(cfg->target_url, "wss://", 6) == 0) {
		char why[256];
		pol->upstream_ctx = tls_client_ctx(cfg->target_ca_file, why,
						   sizeof(why));
		if (pol->upstream_ctx == NULL) {
			snprintf(err, errlen, "target_ca_file: %s", why);
			return -1;
		}
	}
	return 0;
}

int policy_build(const struct config *cfg, const struct listener *ls,
		 size_t nls, struct worker_policy *pol, char *err,
		 size_t errlen)
{
	struct adm *adm = pol->adm;

	memset(pol, 0, sizeof(*pol));
	pol->adm = adm;
	if (build_jwt(cfg, pol, err, errlen) < 0 ||
	    build_egress(cfg, ls, nls, pol, err, errlen) < 0 ||
	    build_tls(cfg, pol, err, errlen) < 0) {
		policy_free(pol);
		pol->adm = adm;
		return -1;
	}
	return 0;
}

void policy_free(struct worker_policy *pol)
{
	jwt_keyset_free(pol->jwt);
	egress_free(pol->egress);
	egress_free(pol->trusted);
	SSL_CTX_free(pol->tls_ctx);
	SSL_CTX_free(pol->upstream_ctx);
	pol->jwt = NULL;
	pol->egress = NULL;
	pol->trusted = NULL;
	pol->tls_ctx = NULL;
	pol->upstream_ctx = NULL;
}

void policy_set_limits(const struct config *cfg, struct adm *adm)
{
	struct adm_limits l;

	memset(&l, 0, sizeof(l));
	l.max_conn = cfg->max_conn;
	l.per_ip = cfg->max_conn_per_ip;
	l.ip_rate = (double)cfg->rate_per_ip;
	l.ip_burst = cfg->rate_per_ip_burst;
	l.global_rate = (double)cfg->rate_global;
	l.global_burst = cfg->rate_global_burst;
	l.per_subject = cfg->max_conn_per_subject;
	adm_set_limits(adm, &l);
}

const char *policy_auth_mode(const struct config *cfg,
			     const struct worker_policy *pol)
{
	int tok = cfg->token[0] != '\0';
	int jwt = pol->jwt != NULL && jwt_keyset_enabled(pol->jwt);

	if (tok && jwt)
		return cfg->allow_anonymous ? "token+jwt+anonymous" : "token+jwt";
	if (jwt)
		return cfg->allow_anonymous ? "jwt+anonymous" : "jwt";
	if (tok)
		return cfg->allow_anonymous ? "token+anonymous" : "token";
	return "anonymous";
}
