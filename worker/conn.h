/*
 * conn.h - one client connection, from accept to close, on its own thread:
 * read the upgrade request, route plain HTTP, authenticate, upgrade, then
 * hand the WebSocket to the tunnel.
 */
#ifndef ECH3_CONN_H
#define ECH3_CONN_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../shared/admission.h"
#include "command.h"
#include "io.h"

struct worker;

struct conn {
	struct worker *w;
	const struct config *cfg;
	struct io io;			/* the client */
	int kind;			/* enum listen_kind it came in on */
	struct sockaddr_storage client_sa; /* the client (behind proxies) */
	struct jwt_claims *claims;	/* destination limits of its JWT */
	struct adm_ticket ticket;	/* its admission slot */
	int jwt;			/* authenticated by a JWT */
	int upgraded;			/* got (or was about to get) a 101 */
	int head_only;			/* a HEAD request: no body */
	char *subject;			/* its exact sub (JWT only) */
	_Atomic int tcp_fd;		/* the target, or -1 */
	atomic_int cut;			/* cut by the worker's drain deadline */
	char id[9];			/* short id on every log line */
	char client[64];		/* client address, "ip:port" */
	char user[64];			/* "-" or who authenticated */
	char target[TARGET_HOST_MAX + 10];
	int64_t start_ms;
	uint64_t up, down;		/* client-to-target, target-to-client */
	const char *end;		/* how the tunnel ended, for the log */
	struct conn *prev, *next;	/* the worker's registry */
	struct conn *qnext;		/* the worker's hand-over queue */
};

/* Allocates a conn for an accepted socket. NULL when out of memory. */
struct conn *conn_new(struct worker *w, int fd, const struct sockaddr *peer);

/* Serves the connection to its end, then unregisters and frees it. */
void conn_run(struct conn *c);

/* Closes a conn's sockets (and TLS state) and frees it. */
void conn_free(struct conn *c);

#endif
