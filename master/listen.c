/*
 * listen.c - creating the per-slot SO_REUSEPORT listening sockets.
 */
#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shared/config.h"
#include "../shared/log.h"
#include "../shared/util.h"
#include "upgrade.h"

#define LISTEN_BACKLOG 4096

static int open_one(struct listener *l)
{
	int one = 1, fd;
	const struct sockaddr *sa = (const struct sockaddr *)&l->addr;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, sa, l->addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	return fd;
fail:
	log_error("listen on %s: %s", l->name, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* After the first bind to port 0, learn the port the kernel chose. */
static int learn_port(struct listener *l, int fd)
{
	socklen_t len = sizeof(l->addr);

	if (getsockname(fd, (struct sockaddr *)&l->addr, &len) < 0) {
		log_error("getsockname: %s", strerror(errno));
		return -1;
	}
	l->addrlen = len;
	sockaddr_format((struct sockaddr *)&l->addr, l->bound, sizeof(l->bound));
	return 0;
}

int listener_open(struct listener *l, const struct config *cfg,
		  const char *addr, size_t nslots)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", addr);
	if (config_parse_listen(cfg, addr, &l->addr, &l->addrlen, &l->tls) < 0) {
		log_error("listen: bad address '%s'", addr);
		return -1;
	}
	l->fds = calloc(nslots, sizeof(*l->fds));
	if (l->fds == NULL) {
		log_error("out of memory");
		return -1;
	}
	/* Sockets handed over by a binary upgrade come first. */
	l->nslots = upgrade_adopt(addr, l->fds, nslots);
	if (l->nslots > 0 && learn_port(l, l->fds[0]) < 0) {
		listener_close(l);
		return -1;
	}
	for (size_t i = l->nslots; i < nslots; i++) {
		int fd = open_one(l);
		if (fd < 0 || (i == 0 && learn_port(l, fd) < 0)) {
			if (fd >= 0)
				close(fd);
			listener_close(l);
			return -1;
		}
		l->fds[l->nslots++] = fd;
	}
	return 0;
}

int listener_resize(struct listener *l, size_t nslots)
{
	int *fds;

	if (nslots <= l->nslots) {
		for (size_t i = nslots; i < l->nslots; i++)
			close(l->fds[i]);
		l->nslots = nslots;
		return 0;
	}
	fds = realloc(l->fds, nslots * sizeof(*fds));
	if (fds == NULL) {
		log_error("out of memory");
		return -1;
	}
	l->fds = fds;
	while (l->nslots < nslots) {
		int fd = open_one(l);
		if (fd < 0)
			return -1;
		l->fds[l->nslots++] = fd;
	}
	return 0;
}

int listener_dup(const struct listener *l, struct listener *out)
{
	*out = *l;
	out->nslots = 0;
	out->fds = calloc(l->nslots > 0 ? l->nslots : 1, sizeof(*out->fds));
	if (out->fds == NULL) {
		log_error("out of memory");
		return -1;
	}
	for (size_t i = 0; i < l->nslots; i++) {
		int fd = fcntl(l->fds[i], F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			log_error("dup listener %s: %s", l->name, strerror(errno));
			listener_close(out);
			return -1;
		}
		out->fds[out->nslots++] = fd;
	}
	return 0;
}

void listener_close(struct listener *l)
{
	for (size_t i = 0; i < l->nslots; i++)
		close(l->fds[i]);
	free(l->fds);
	l->fds = NULL;
	l->nslots = 0;
}
