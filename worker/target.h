/*
 * target.h - opening the TCP connection to a tunnel's target: name
 * resolution (IPv4 and IPv6), each address in turn under one deadline,
 * then the fallback hosts with the target's port when the direct connect
 * fails, each address checked against the egress policy first (no DNS
 * rebinding bypass). The socket comes back blocking, with TCP_NODELAY and
 * keepalive.
 */
#ifndef ECH3_TARGET_H
#define ECH3_TARGET_H

#include <stddef.h>

#define TARGET_MAX_FALLBACKS 16

struct target_result {
	int fd;			/* connected socket, or -1 */
	char peer[64];		/* address actually connected to */
	const char *via;	/* "direct" or the fallback host used */
	char err[160];		/* why it failed, for ERROR: and the log */
	long connect_ms;	/* time spent connecting */
	int refused;		/* the egress policy refused every address */
};

struct egress;

/* Connects to host:port, then to each fallback in order with the same
 * port. Every resolved address is checked against the egress policy
 * before it is connected to (NULL: the built-in default). timeout_ms
 * bounds each host's attempt. Returns 0 with res->fd set, or -1 with
 * res->err set. */
int target_connect(const struct egress *egress, const char *host, int port,
		   const char *const *fallbacks, size_t nfallbacks,
		   int timeout_ms, struct target_result *res);

/* Splits a comma-separated host list (PYIP=) into at most max entries of
 * storage (NUL-terminated copies). Returns the count. */
size_t target_split_hosts(const char *list, size_t len, char *storage,
			  size_t storage_size, const char **out, size_t max);

#endif
