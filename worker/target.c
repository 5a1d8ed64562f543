/*
 * target.c - connecting to a tunnel's target with a deadline, trying every
 * resolved address, then the fallback hosts.
 */
#include "target.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../shared/util.h"
#include "egress.h"

static void tune_socket(int fd)
{
	int one = 1;

	/* Best effort: a relay works without them, only slower. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

/* Connects one address before deadline. Returns the fd or -1 (errno). */
static int connect_addr(const struct addrinfo *ai, int64_t deadline)
{
	int fd, err = 0, r;
	socklen_t len = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		for (;;) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int64_t left = deadline - now_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				goto fail;
			}
			r = poll(&p, 1, (int)left);
			if (r > 0)
				break;
			if (r < 0 && errno != EINTR)
				goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			goto fail;
		if (err != 0) {
			errno = err;
			goto fail;
		}
	}
	if (fcntl(fd, F_SETFL, 0) < 0)
		goto fail;
	tune_socket(fd);
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* Tries every address of host the policy allows. Returns the fd or -1
 * with res->err set. */
static int connect_host(const struct egress *egress, const char *host,
			int port, int timeout_ms, struct target_result *res)
{
	struct addrinfo hints, *list = NULL, *ai;
	char portstr[8], addr[64] = "?";
	int64_t deadline = now_ms() + timeout_ms;
	int fd = -1, r, last = 0, tried = 0;
	const char *why = NULL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	r = getaddrinfo(host, portstr, &hints, &list);
	if (r != 0) {
		snprintf(res->err, sizeof(res->err), "cannot resolve %s: %s",
			 host, r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -1;
	}
	for (ai = list; ai != NULL && fd < 0; ai = ai->ai_next) {
		if (!egress_allowed(egress, host, ai->ai_addr, &why)) {
			sockaddr_format(ai->ai_addr, addr, sizeof(addr));
			continue;
		}
		tried++;
		fd = connect_addr(ai, deadline);
		if (fd >= 0)
			sockaddr_format(ai->ai_addr, res->peer, sizeof(res->peer));
		else
			last = errno;
		if (fd < 0 && now_ms() >= deadline)
			break;
	}
	freeaddrinfo(list);
	if (fd < 0 && tried == 0) {
		res->refused = 1;
		snprintf(res->err, sizeof(res->err),
			 "refused by egress policy: %s is %s", addr,
			 why != NULL ? why : "not allowed");
	} else if (fd < 0) {
		snprintf(res->err, sizeof(res->err), "connect to %s:%d failed: %s",
			 host, port, last == ETIMEDOUT ? "timed out" : strerror(last));
	}
	return fd;
}

int target_connect(const struct egress *egress, const char *host, int port,
		   const char *const *fallbacks, size_t nfallbacks,
		   int timeout_ms, struct target_result *res)
{
	int refused;

	int64_t start = now_ms();
	char first_err[sizeof(res->err)];

	memset(res, 0, sizeof(*res));
	res->via = "direct";
	res->fd = connect_host(egress, host, port, timeout_ms, res);
	refused = res->refused;
	if (res->fd < 0 && nfallbacks > 0) {
		memcpy(first_err, res->err, sizeof(first_err));
		for (size_t i = 0; i < nfallbacks && res->fd < 0; i++) {
			res->refused = 0;
			res->fd = connect_host(egress, fallbacks[i], port,
					       timeout_ms, res);
			refused &= res->refused;
			if (res->fd >= 0)
				res->via = fallbacks[i];
		}
		if (res->fd < 0)
			snprintf(res->err, sizeof(res->err),
				 "%.100s (and %zu fallback hosts failed)",
				 first_err, nfallbacks);
	}
	res->refused = res->fd < 0 && refused;
	if (res->fd >= 0)
		res->err[0] = '\0';
	res->connect_ms = (long)(now_ms() - start);
	return res->fd >= 0 ? 0 : -1;
}

size_t target_split_hosts(const char *list, size_t len, char *storage,
			  size_t storage_size, const char **out, size_t max)
{
	size_t n = 0, used = 0, i = 0;

	while (i < len && n < max) {
		size_t s = i, e;
		while (i < len && list[i] != ',')
			i++;
		e = i++;
		while (s < e && list[s] == ' ')
			s++;
		while (e > s && list[e - 1] == ' ')
			e--;
		if (e == s || used + (e - s) + 1 > storage_size)
			continue;
		memcpy(storage + used, list + s, e - s);
		storage[used + (e - s)] = '\0';
		out[n++] = storage + used;
		used += e - s + 1;
	}
	return n;
}
