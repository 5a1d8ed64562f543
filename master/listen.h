/*
 * listen.h - the master's listening sockets: for each listen address one
 * SO_REUSEPORT socket per worker slot, all bound to the same port (a port
 * of 0 is resolved by the first and reused by the rest). The master keeps
 * every one open for its whole life, so a new worker generation takes over
 * a slot's queue without losing a connection.
 */
#ifndef ECH3_LISTEN_H
#define ECH3_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

struct listener {
	char name[64];			/* as configured */
	char bound[64];			/* with the real port */
	struct sockaddr_storage addr;	/* with the real port */
	unsigned addrlen;
	int tls;			/* speaks TLS */
	int kind;			/* enum listen_kind (worker.h) */
	int *fds;			/* one per slot */
	size_t nslots;
};

struct config;

/* Opens nslots sockets for the listen entry addr. Returns 0 or -1
 * (logged). */
int listener_open(struct listener *l, const struct config *cfg,
		  const char *addr, size_t nslots);

/* Grows or shrinks the slot count (new sockets on the same address).
 * Returns 0 or -1 (logged; the listener keeps its old slots). */
int listener_resize(struct listener *l, size_t nslots);

/* Makes out a copy of l with duplicated descriptors (the same sockets).
 * Returns 0 or -1 (logged). */
int listener_dup(const struct listener *l, struct listener *out);

void listener_close(struct listener *l);

#endif
