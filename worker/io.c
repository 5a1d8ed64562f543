/*
 * io.c - blocking socket and TLS reads and writes for one connection.
 */
#include "io.h"

#include <errno.h>
#include <openssl/err.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/time.h>
#include <unistd.h>

#include "../shared/util.h"

static ssize_t tls_read(struct io *io, void *buf, size_t len)
{
	int n = SSL_read(io->ssl, buf, len > 0x40000000 ? 0x40000000 : (int)len);

	if (n > 0)
		return n;
	switch (SSL_get_error(io->ssl, n)) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		return errno == 0 ? 0 : -1;
	default:
		ERR_clear_error();
		errno = EIO;
		return -1;
	}
}

ssize_t io_read(struct io *io, void *buf, size_t len)
{
	ssize_t n;

	if (io->ssl != NULL)
		return tls_read(io, buf, len);
	do
		n = recv(io->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n;
}

static int tls_write_all(struct io *io, const char *p, size_t len)
{
	while (len > 0) {
		size_t chunk = len > 0x40000000 ? 0x40000000 : len;
		int n = SSL_write(io->ssl, p, (int)chunk);
		if (n <= 0) {
			if (SSL_get_error(io->ssl, n) != SSL_ERROR_SYSCALL)
				errno = EIO;
			ERR_clear_error();
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int io_write_all(struct io *io, const void *buf, size_t len, int more)
{
	const char *p = buf;
	int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);

	if (io->ssl != NULL)
		return tls_write_all(io, buf, len);
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

int io_write2(struct io *io, const void *head, size_t hlen, const void *body,
	      size_t blen)
{
	struct iovec iov[2] = {
		{ (void *)head, hlen }, { (void *)body, blen },
	};
	struct msghdr msg;
	int i = 0;

	if (io->ssl != NULL)
		return io_write_all(io, head, hlen, 1) < 0 ? -1
		       : io_write_all(io, body, blen, 0);
	memset(&msg, 0, sizeof(msg));
	while (i < 2) {
		ssize_t n;

		msg.msg_iov = iov + i;
		msg.msg_iovlen = (size_t)(2 - i);
		n = sendmsg(io->fd, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		while (i < 2 && (size_t)n >= iov[i].iov_len) {
			n -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (i < 2) {
			iov[i].iov_base = (char *)iov[i].iov_base + n;
			iov[i].iov_len -= (size_t)n;
		}
	}
	return 0;
}

int io_pending(const struct io *io)
{
	return io->ssl != NULL && SSL_pending(io->ssl) > 0;
}

int io_wait_readable(const struct io *io, int timeout_ms)
{
	struct pollfd pfd = { .fd = io->fd, .events = POLLIN };
	int r;

	if (io_pending(io))
		return 1;
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

int io_tls_accept(struct io *io, SSL_CTX *ctx, int64_t deadline_ms,
		  const char **why)
{
	int64_t left = deadline_ms - now_ms();
	int r;

	*why = "TLS handshake failed";
	if (left <= 0) {
		*why = "handshake timeout";
		return -1;
	}
	io->ssl = SSL_new(ctx);
	if (io->ssl == NULL || SSL_set_fd(io->ssl, io->fd) != 1) {
		*why = "out of memory";
		return -1;
	}
	/* The socket's own timeouts bound a silent or slow handshake. */
	(void)io_set_timeouts(io->fd, (int)left, (int)left);
	r = SSL_accept(io->ssl);
	ERR_clear_error();
	if (r != 1) {
		if (now_ms() >= deadline_ms)
			*why = "handshake timeout";
		return -1;
	}
	/* Poll can report a TLS socket readable while SSL_read still waits
	 * for the rest of a record: keep reads bounded (the relay sets its
	 * own bound later). */
	left = deadline_ms - now_ms();
	(void)io_set_timeouts(io->fd, left > 0 ? (int)left : 1,
			      left > 0 ? (int)left : 1);
	return 0;
}

void io_tls_close(struct io *io)
{
	if (io->ssl == NULL)
		return;
	(void)io_set_timeouts(io->fd, 200, 200);
	(void)SSL_shutdown(io->ssl);
	ERR_clear_error();
	SSL_free(io->ssl);
	io->ssl = NULL;
}
