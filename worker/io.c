/*
 * io.c - blocking socket reads and writes for one connection.
 */
#include "io.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

ssize_t io_read(struct io *io, void *buf, size_t len)
{
	ssize_t n;

	do
		n = recv(io->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n;
}

int io_write_all(struct io *io, const void *buf, size_t len, int more)
{
	const char *p = buf;
	int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);

	while (len > 0) {
		ssize_t n = send(io->fd, p, len, flags);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int io_wait_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r;
}

static int set_tv(int fd, int opt, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	return setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

int io_set_timeouts(int fd, int send_ms, int recv_ms)
{
	if (set_tv(fd, SO_SNDTIMEO, send_ms) < 0)
		return -1;
	return set_tv(fd, SO_RCVTIMEO, recv_ms);
}
