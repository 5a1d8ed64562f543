/*
 * privs.c - resolving and dropping privileges, and the descriptor limit.
 */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

int privs_resolve(const struct config *cfg, struct privs *p, char *err,
		  size_t errlen)
{
	struct passwd *pw;
	struct group *gr;

	memset(p, 0, sizeof(*p));
	if (geteuid() != 0)
		return 0;	/* not root: nothing to drop */
	pw = getpwnam(cfg->user);
	if (pw == NULL) {
		snprintf(err, errlen, "user: no such user '%s'", cfg->user);
		return -1;
	}
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	if (cfg->group[0] != '\0') {
		gr = getgrnam(cfg->group);
		if (gr == NULL) {
			snprintf(err, errlen, "group: no such group '%s'",
				 cfg->group);
			return -1;
		}
		p->gid = gr->gr_gid;
	}
	if (p->uid == 0 && !cfg->allow_root) {
		snprintf(err, errlen, "user: refusing to serve as root (set "
			 "user to an unprivileged account, or allow_root = "
			 "true)");
		return -1;
	}
	p->drop = p->uid != 0;
	return 0;
}

int privs_apply(const struct privs *p, char *err, size_t errlen)
{
	if (p->drop) {
		if (setgroups(1, &p->gid) < 0 || setgid(p->gid) < 0 ||
		    setuid(p->uid) < 0) {
			snprintf(err, errlen, "dropping privileges: %s",
				 strerror(errno));
			return -1;
		}
		if (setuid(0) == 0) {
			snprintf(err, errlen, "dropping privileges: root "
				 "could be regained");
			return -1;
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		return -1;
	}
	return 0;
}

long privs_raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (want > 0 && (rlim_t)want > rl.rlim_cur) {
		rl.rlim_cur = (rlim_t)want < rl.rlim_max ? (rlim_t)want
							  : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur == RLIM_INFINITY ? -1 : (long)rl.rlim_cur;
}
