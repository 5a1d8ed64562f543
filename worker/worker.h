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
struct adm;
struct egress;
struct jwt_keyset;

/* What a listening socket is for. */
enum listen_kind { LISTEN_PLAIN = 0, LISTEN_TLS = 1, LISTEN_METRICS = 2 };

/* Read-only decisions shared by every connection of a worker, built by
 * the master from the configuration (and rebuilt on reload). */
struct worker_policy {
	struct jwt_keyset *jwt;		/* NULL: JWT off */
	struct egress *egress;		/* destinations */
	struct egress *trusted;		/* trusted proxies, or NULL */
	struct adm *adm;		/* the shared admission region */
	struct ssl_ctx_st *tls_ctx;	/* listener certificate, or NULL */
	struct ssl_ctx_st *upstream_ctx; /* wss:// target_url CAs, or NULL */
};

/* Threads kept after their connection ends, for the next one. */
#define WORKER_IDLE_THREADS 16
#define WORKER_IDLE_SECONDS 30

struct worker {
	const struct config *cfg;
	int slot;			/* worker slot number */
	const int *listen_fds;
	const int *listen_kind;		/* enum listen_kind per socket */
	size_t nlisten;
	const struct worker_policy *pol;
	int cell;			/* this worker's admission cell */
	pid_t master;
	pthread_attr_t thread_attr;
	pthread_mutex_t lock;		/* guards conns and the thread pool */
	struct conn *conns;
	pthread_cond_t wake;		/* an idle thread has work */
	struct conn *queue;		/* accepted, waiting for an idle thread */
	size_t waiting;			/* idle threads waiting for work */
	atomic_long active;		/* live connections */
	atomic_long peak;		/* most live since the last heap trim */
	atomic_uint next_id;
	unsigned id_base;
};

struct worker_args {
	const struct config *cfg;
	int slot;
	const int *fds;		/* this slot's listening sockets */
	const int *kinds;	/* per socket: enum listen_kind */
	size_t nfds;
	pid_t master;		/* the parent; the worker ends if it dies */
	struct privs privs;	/* whom to run as */
	const struct worker_policy *pol;
	int cell;		/* admission cell claimed by the master */
	int ncpu;		/* usable CPUs, as the master counted them */
};

/* Runs a worker until told to stop; never returns (exits the process). */
void worker_main(const struct worker_args *a) __attribute__((noreturn));

/* 1 once this worker has been told to stop accepting. */
int worker_draining(void);

void worker_register(struct worker *w, struct conn *c);

/* Unlinks c from the registry, frees it (closing its sockets), and only
 * then counts it gone, so a draining worker never exits while a
 * connection is still being closed. */
void worker_conn_end(struct worker *w, struct conn *c);

#endif
