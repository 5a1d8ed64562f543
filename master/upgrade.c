/*
 * upgrade.c - handing the listening sockets to a new binary (SIGUSR2).
 * ECH3_INHERIT carries "name|fd,fd,...;name|fd,..." (name as configured in
 * listen); ECH3_OLD_MASTER carries the old master's pid.
 */
#include "upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shared/log.h"

#define INHERIT_MAX 1024

/* Process-model state: where to exec from, and what was handed to us. */
static char self_path[PATH_MAX];
static char **self_argv;
static struct {
	char name[64];
	int fd;
} inherited[INHERIT_MAX];
static size_t ninherited;
static int inherit_parsed;

void upgrade_init(char **argv)
{
	ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	const char *del = " (deleted)";

	self_argv = argv;
	if (n < 0) {
		self_path[0] = '\0';
		return;
	}
	self_path[n] = '\0';
	if ((size_t)n > strlen(del) && strcmp(self_path + n - strlen(del), del) == 0)
		self_path[n - strlen(del)] = '\0';
}

static int set_cloexec(int fd, int on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFD, on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC);
}

/* Builds the ECH3_INHERIT value; returns a malloc'd string or NULL. */
static char *inherit_value(const struct listener *ls, size_t nls)
{
	size_t cap = 64, len = 0;
	char *s = malloc(cap);

	if (s == NULL)
		return NULL;
	s[0] = '\0';
	for (size_t i = 0; i < nls; i++) {
		for (size_t k = 0; k <= ls[i].nslots; k++) {
			char part[96];
			int n = k == 0 ? snprintf(part, sizeof(part), "%s%s|",
						  i ? ";" : "", ls[i].name)
				       : snprintf(part, sizeof(part), "%s%d",
						  k > 1 ? "," : "", ls[i].fds[k - 1]);
			if (len + (size_t)n + 1 > cap) {
				char *ns = realloc(s, cap * 2 + (size_t)n);
				if (ns == NULL) {
					free(s);
					return NULL;
				}
				s = ns;
				cap = cap * 2 + (size_t)n;
			}
			memcpy(s + len, part, (size_t)n + 1);
			len += (size_t)n;
		}
	}
	return s;
}

pid_t upgrade_exec(const struct listener *ls, size_t nls)
{
	char *val, ppid[32];
	pid_t pid;

	if (self_path[0] == '\0' || access(self_path, X_OK) < 0) {
		log_error("binary upgrade: cannot execute %s: %s", self_path,
			  strerror(errno));
		return -1;
	}
	if ((val = inherit_value(ls, nls)) == NULL) {
		log_error("binary upgrade: out of memory");
		return -1;
	}
	snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
	pid = fork();
	if (pid == 0) {
		sigset_t none;
		for (size_t i = 0; i < nls; i++)
			for (size_t k = 0; k < ls[i].nslots; k++)
				(void)set_cloexec(ls[i].fds[k], 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		setenv("ECH3_INHERIT", val, 1);
		setenv("ECH3_OLD_MASTER", ppid, 1);
		execv(self_path, self_argv);
		log_error("binary upgrade: exec %s: %s", self_path,
			  strerror(errno));
		_exit(127);
	}
	free(val);
	if (pid < 0)
		log_error("binary upgrade: fork: %s", strerror(errno));
	return pid;
}

static void parse_inherit(void)
{
	const char *v = getenv("ECH3_INHERIT");
	char *copy, *save = NULL, *entry;

	inherit_parsed = 1;
	if (v == NULL || (copy = strdup(v)) == NULL)
		return;
	for (entry = strtok_r(copy, ";", &save); entry != NULL;
	     entry = strtok_r(NULL, ";", &save)) {
		char *bar = strchr(entry, '|'), *save2 = NULL, *f;
		if (bar == NULL)
			continue;
		*bar = '\0';
		for (f = strtok_r(bar + 1, ",", &save2); f != NULL;
		     f = strtok_r(NULL, ",", &save2)) {
			int fd = atoi(f);
			if (ninherited == INHERIT_MAX || fd < 3 ||
			    fcntl(fd, F_GETFD) < 0)
				continue;
			snprintf(inherited[ninherited].name,
				 sizeof(inherited[0].name), "%s", entry);
			inherited[ninherited++].fd = fd;
			(void)set_cloexec(fd, 1);
		}
	}
	free(copy);
}

size_t upgrade_adopt(const char *name, int *fds, size_t max)
{
	size_t n = 0;

	if (!inherit_parsed)
		parse_inherit();
	for (size_t i = 0; i < ninherited && n < max; i++) {
		if (inherited[i].fd < 0 || strcmp(inherited[i].name, name) != 0)
			continue;
		fds[n++] = inherited[i].fd;
		inherited[i].fd = -1;
	}
	return n;
}

void upgrade_adopt_done(void)
{
	for (size_t i = 0; i < ninherited; i++)
		if (inherited[i].fd >= 0)
			close(inherited[i].fd);
	ninherited = 0;
	unsetenv("ECH3_INHERIT");
}

pid_t upgrade_parent(void)
{
	const char *v = getenv("ECH3_OLD_MASTER");

	return v != NULL ? (pid_t)atol(v) : 0;
}
