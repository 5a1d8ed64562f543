/*
 * io.h - blocking reads and writes on one connection's socket, plain or
 * TLS, with EINTR handled and short writes completed. The single place
 * the relay touches a client or target socket.
 */
#ifndef ECH3_IO_H
#define ECH3_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/ssl.h>

struct io {
	int fd;
	SSL *ssl;	/* NULL for plain TCP */
};

/* One read of at most len bytes. Returns >0, 0 at EOF, -1 on error. */
ssize_t io_read(struct io *io, void *buf, size_t len);

/* Writes all of buf. more hints that more bytes follow at once
 * (MSG_MORE). Returns 0 or -1 (errno set; EAGAIN = write timeout). */
int io_write_all(struct io *io, const void *buf, size_t len, int more);

/* Writes head then body as one stream (one sendmsg() on plain TCP).
 * Returns 0 or -1 as io_write_all. */
int io_write2(struct io *io, const void *head, size_t hlen, const void *body,
	      size_t blen);

/* 1 when bytes are already buffered (decrypted TLS) and a read will not
 * block, whatever poll() says about the socket. */
int io_pending(const struct io *io);

/* Waits up to timeout_ms for io to become readable.
 * Returns 1 readable, 0 timeout, -1 error. */
int io_wait_readable(const struct io *io, int timeout_ms);

/* Sets send and receive timeouts on a socket (0 = none). */
int io_set_timeouts(int fd, int send_ms, int recv_ms);

/* Runs the TLS server handshake on io->fd with ctx before deadline_ms
 * (monotonic). Returns 0, or -1 with a reason in *why. */
int io_tls_accept(struct io *io, SSL_CTX *ctx, int64_t deadline_ms,
		  const char **why);

/* Closes the TLS session (best effort) and frees it. */
void io_tls_close(struct io *io);

#endif
