/*
 * privs.h - who the workers run as. The master stays as it was started
 * (it re-reads configuration and certificates and binds new listeners on
 * reload, as nginx's does); workers, which face the network, switch to
 * `user`/`group` with no_new_privs before they accept anything.
 */
#ifndef ECH3_PRIVS_H
#define ECH3_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

struct privs {
	int drop;	/* 1 when started as root: switch to uid/gid */
	uid_t uid;
	gid_t gid;
};

/* Resolves cfg->user / cfg->group for this process. Returns 0, or -1
 * with err set (unknown user, or root without allow_root). */
int privs_resolve(const struct config *cfg, struct privs *p, char *err,
		  size_t errlen);

/* Switches this process to p (when p->drop) and sets no_new_privs.
 * Returns 0 or -1 with err set. */
int privs_apply(const struct privs *p, char *err, size_t errlen);

/* Raises RLIMIT_NOFILE towards want; returns the soft limit in force. */
long privs_raise_nofile(long want);

#endif
