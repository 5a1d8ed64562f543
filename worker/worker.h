/*
 * worker.h - a worker process: its accept loop over the listening sockets
 * the master handed it, the registry of its live connections, and its
 * graceful drain when told to stop.
 */
#ifndef ECH3_WORKER_H
#define ECH3_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "../shared/config.h"
#include "../shared/privs.h"

struct conn;

struct worker {
	const struct config *cfg;
	int slot;			/* worker slot number */
	const int *listen_fds;
	const int *listen_tls;		/* 1: that socket speaks TLS */
	size_t nlisten;
	struct ssl_ctx_st *tls_ctx;	/* SSL_CTX for TLS listeners */
	pthread_attr_t thread_attr;
	pthread_mutex_t lock;		/* guards conns */
	struct conn *conns;
	atomic_long active;		/* live connections */
	atomic_uint next_id;
	unsigned id_base;
};

struct worker_args {
	const struct config *cfg;
	int slot;
	const int *fds;		/* this slot's listening sockets */
	const int *tls;		/* per socket: 1 if it speaks TLS */
	size_t nfds;
	pid_t master;		/* the parent; the worker ends if it dies */
	struct privs privs;	/* whom to run as */
};

/* Runs a worker until told to stop; never returns (exits the process). */
void worker_main(const struct worker_args *a) __attribute__((noreturn));

void worker_register(struct worker *w, struct conn *c);
void worker_unregister(struct worker *w, struct conn *c);

#endif
