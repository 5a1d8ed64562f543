/*
 * policy.h - turning a configuration into the read-only objects workers
 * decide with (JWT keys, egress policy, trusted proxies) and the limits
 * of the shared admission region. Built at start and on every reload; a
 * failure refuses the reload.
 */
#ifndef ECH3_POLICY_H
#define ECH3_POLICY_H

#include <stddef.h>

#include "../shared/config.h"
#include "../worker/worker.h"
#include "listen.h"

/* Builds pol (its adm is left untouched) from cfg; own addresses are the
 * bound listeners. Returns 0, or -1 with err set. */
int policy_build(const struct config *cfg, const struct listener *ls,
		 size_t nls, struct worker_policy *pol, char *err,
		 size_t errlen);

/* Frees what policy_build made (not the adm). */
void policy_free(struct worker_policy *pol);

/* Copies the admission limits of cfg into the shared region. */
void policy_set_limits(const struct config *cfg, struct adm *adm);

/* One-line description of the authentication mode, for the log. */
const char *policy_auth_mode(const struct config *cfg,
			     const struct worker_policy *pol);

#endif
