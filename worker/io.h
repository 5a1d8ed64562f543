/*
 * io.h - blocking reads and writes on one connection's socket, with
 * EINTR handled and short writes completed. The single place the
 * relay touches a client or target socket, so TLS can slot in here.
 */
#ifndef ECH3_IO_H
#define ECH3_IO_H

#include <stddef.h>
#include <sys/types.h>

struct io {
	int fd;
};

/* One read of at most len bytes. Returns >0, 0 at EOF, -1 on error. */
ssize_t io_read(struct io *io, void *buf, size_t len);

/* Writes all of buf. more hints that more bytes follow at once
 * (MSG_MORE). Returns 0 or -1 (errno set; EAGAIN = write timeout). */
int io_write_all(struct io *io, const void *buf, size_t len, int more);

/* Waits up to timeout_ms for fd to become readable.
 * Returns 1 readable, 0 timeout, -1 error. */
int io_wait_readable(int fd, int timeout_ms);

/* Sets send and receive timeouts on a socket (0 = none). */
int io_set_timeouts(int fd, int send_ms, int recv_ms);

#endif
