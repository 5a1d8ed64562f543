/*
 * worker.c - a worker process: accept on this slot's SO_REUSEPORT sockets,
 * give each connection its own small-stack thread (a thread whose
 * connection ended waits up to WORKER_IDLE_SECONDS for the next one, at
 * most WORKER_IDLE_THREADS of them, so a busy server does not create a
 * thread per connection), keep a registry of live connections, and on a
 * stop signal drain: close the listeners, let tunnels finish until the
 * deadline, then cut what is left and exit.
 *
 * Signals (handlers only set flags; a self-pipe wakes the loop):
 *   SIGTERM  drain for shutdown_timeout (also sent when the master dies)
 *   SIGQUIT  drain for drain_timeout (an old generation after a reload)
 *   SIGINT   stop at once
 *   SIGUSR1  reopen the log file
 */
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../shared/admission.h"
#include "../shared/log.h"
#include "../shared/util.h"
#include "conn.h"
#include "stack.h"

#define FORCE_GRACE_MS 2000	/* after cutting tunnels, before _exit */
#define WORKER_ARENAS 4		/* malloc arenas per worker, at most */

enum stop_kind { RUN = 0, STOP_DRAIN, STOP_SHUTDOWN, STOP_NOW };

static volatile sig_atomic_t stop_req;
static volatile sig_atomic_t reopen_req;
static int wake_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	int saved = errno;

	if (sig == SIGUSR1) {
		reopen_req = 1;
		(void)!write(wake_pipe[1], "x", 1);
		errno = saved;
		return;
	}
	enum stop_kind k = sig == SIGINT ? STOP_NOW :
			   sig == SIGQUIT ? STOP_DRAIN : STOP_SHUTDOWN;

	/* A stronger request wins: drain < shutdown < now. */
	if (stop_req == RUN || (int)k > (int)stop_req)
		stop_req = k;
	(void)!write(wake_pipe[1], "x", 1);
	errno = saved;
}

static void setup_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGWINCH, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* glibc keeps freed heap memory for reuse: after a peak of thousands of
 * tunnels a worker would hold their setup buffers' pages for good. Once
 * half the connections of a peak (and at least TRIM_MIN_ENDED) have
 * ended, or the worker is left without connections after at least
 * TRIM_MIN_IDLE, the thread that ended the last one hands the free pages
 * back with malloc_trim(). */
#define TRIM_MIN_ENDED 256
#define TRIM_MIN_IDLE 32

static void maybe_trim_heap(struct worker *w, long active)
{
	long peak = atomic_load(&w->peak);

	if (!(peak - active >= TRIM_MIN_ENDED && active <= peak / 2) &&
	    !(active == 0 && peak >= TRIM_MIN_IDLE))
		return;
	/* one thread trims; the peak starts again from here */
	if (atomic_compare_exchange_strong(&w->peak, &peak, active))
		(void)malloc_trim(0);
}

void worker_register(struct worker *w, struct conn *c)
{
	long now, peak;

	pthread_mutex_lock(&w->lock);
	c->prev = NULL;
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	pthread_mutex_unlock(&w->lock);
	now = atomic_fetch_add(&w->active, 1) + 1;
	peak = atomic_load(&w->peak);
	while (now > peak && !atomic_compare_exchange_weak(&w->peak, &peak, now))
		;
}

void worker_conn_end(struct worker *w, struct conn *c)
{
	pthread_mutex_lock(&w->lock);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&w->lock);
	conn_free(c);
	maybe_trim_heap(w, atomic_fetch_sub(&w->active, 1) - 1);
}

int worker_draining(void)
{
	return stop_req != RUN;
}

/* Waits for a queued connection as an idle thread. Returns it, or NULL
 * when the thread should end. Called and returns with w->lock held. */
static struct conn *await_work(struct worker *w)
{
	struct timespec until, settle;
	struct conn *c;
	int trimmed = 0;

	if (w->queue == NULL &&
	    (stop_req != RUN || w->waiting >= WORKER_IDLE_THREADS))
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &until);	/* w->wake's clock */
	settle = until;
	until.tv_sec += WORKER_IDLE_SECONDS;
	settle.tv_sec += 1;
	w->waiting++;
	while (w->queue == NULL && stop_req == RUN) {
		int r = pthread_cond_timedwait(&w->wake, &w->lock,
					       trimmed ? &until : &settle);
		if (r == ETIMEDOUT && !trimmed) {
			/* No work for a second: wait on a short stack (the
			 * queue is checked again before waiting on) */
			pthread_mutex_unlock(&w->lock);
			stack_trim();
			pthread_mutex_lock(&w->lock);
			trimmed = 1;
		} else if (r != 0) {
			break;
		}
	}
	w->waiting--;
	c = w->queue;
	if (c != NULL)
		w->queue = c->qnext;
	return c;
}

static void *thread_main(void *arg)
{
	struct conn *c = arg;
	struct worker *w = c->w;

	stack_note();
	while (c != NULL) {
		conn_run(c);
		pthread_mutex_lock(&w->lock);
		c = await_work(w);
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

/* Hands c to an idle thread. Returns 1 if one took it. */
static int hand_over(struct worker *w, struct conn *c)
{
	size_t queued = 0;
	struct conn **tail;

	pthread_mutex_lock(&w->lock);
	for (tail = &w->queue; *tail != NULL; tail = &(*tail)->qnext)
		queued++;
	if (w->waiting <= queued) {
		pthread_mutex_unlock(&w->lock);
		return 0;
	}
	c->qnext = NULL;
	*tail = c;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 1;
}

static void spawn(struct worker *w, int fd, const struct sockaddr *peer,
		  int kind)
{
	struct conn *c = conn_new(w, fd, peer);
	pthread_t th;
	int one = 1, r;

	if (c == NULL) {
		log_error("out of memory for a connection; closing it");
		close(fd);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->kind = kind;
	worker_register(w, c);
	if (hand_over(w, c))
		return;
	r = pthread_create(&th, &w->thread_attr, thread_main, c);
	if (r != 0) {
		log_error("cannot start a connection thread: %s; closing "
			  "client %s", strerror(r), c->client);
		worker_conn_end(w, c);
	}
}

/* Accepts what is queued on fd. Returns -1 when out of descriptors. */
static int accept_ready(struct worker *w, int fd, int kind)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int cfd = accept4(fd, (struct sockaddr *)&ss, &len,
				  SOCK_CLOEXEC);

		if (cfd >= 0) {
			spawn(w, cfd, (struct sockaddr *)&ss, kind);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM) {
			log_warn("accept: %s; pausing accepts for 100 ms",
				 strerror(errno));
			return -1;
		}
		return 0;	/* EAGAIN: the queue is empty */
	}
	return 0;
}

static void reopen_if_asked(struct worker *w)
{
	if (!reopen_req)
		return;
	reopen_req = 0;
	if (log_open(w->cfg->log_file) < 0)
		log_error("reopen %s: %s", w->cfg->log_file, strerror(errno));
}

static void accept_loop(struct worker *w)
{
	size_t n = w->nlisten;
	struct pollfd *p = calloc(n + 1, sizeof(*p));

	if (p == NULL)
		fatal("out of memory");
	p[0].fd = wake_pipe[0];
	p[0].events = POLLIN;
	for (size_t i = 0; i < n; i++) {
		p[i + 1].fd = w->listen_fds[i];
		p[i + 1].events = POLLIN;
	}
	while (stop_req == RUN) {
		int r = poll(p, n + 1, 1000);
		char buf[16];

		if (r < 0 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		if (p[0].revents != 0)
			(void)!read(wake_pipe[0], buf, sizeof(buf));
		adm_flush(w->pol->adm, w->cell);	/* releases queued while busy */
		reopen_if_asked(w);
		for (size_t i = 1; r > 0 && i <= n; i++)
			if (p[i].revents != 0 &&
			    accept_ready(w, p[i].fd, w->listen_kind[i - 1]) < 0)
				poll(NULL, 0, 100);
	}
	free(p);
}

/* Cuts every live connection: their threads see EOF and end. */
static void cut_all(struct worker *w)
{
	pthread_mutex_lock(&w->lock);
	for (struct conn *c = w->conns; c != NULL; c = c->next) {
		int tfd = atomic_load(&c->tcp_fd);
		atomic_store(&c->cut, 1);
		(void)shutdown(c->io.fd, SHUT_RDWR);
		if (tfd >= 0)
			(void)shutdown(tfd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&w->lock);
}

/* Waits until no connection is left, or the deadline of the strongest
 * stop request so far passes (a SIGTERM during a reload drain shortens
 * it to shutdown_timeout from then). Returns 1 if connections remain. */
static int wait_idle(struct worker *w)
{
	int64_t start = now_ms(), deadline;
	enum stop_kind seen = (enum stop_kind)stop_req;
	char buf[16];

	deadline = start + (seen == STOP_DRAIN ? w->cfg->drain_timeout
					       : w->cfg->shutdown_timeout) * 1000;
	while (atomic_load(&w->active) > 0) {
		if (stop_req == STOP_NOW)
			return 1;
		if ((enum stop_kind)stop_req != seen) {
			int64_t d = now_ms() + w->cfg->shutdown_timeout * 1000;
			seen = (enum stop_kind)stop_req;
			deadline = d < deadline ? d : deadline;
		}
		if (now_ms() >= deadline)
			return 1;
		reopen_if_asked(w);	/* a draining worker still rotates logs */
		(void)!read(wake_pipe[0], buf, sizeof(buf));
		poll(NULL, 0, 50);
	}
	return 0;
}

/* After cutting: give the threads a moment to log and close. */
static void wait_cut(struct worker *w)
{
	int64_t deadline = now_ms() + FORCE_GRACE_MS;

	while (atomic_load(&w->active) > 0 && now_ms() < deadline)
		poll(NULL, 0, 20);
}

static void __attribute__((noreturn)) drain_and_exit(struct worker *w)
{
	for (size_t i = 0; i < w->nlisten; i++)
		close(w->listen_fds[i]);
	pthread_mutex_lock(&w->lock);
	pthread_cond_broadcast(&w->wake);	/* idle threads end */
	pthread_mutex_unlock(&w->lock);
	log_info("worker %d %s: %ld open connections", w->slot,
		 stop_req == STOP_NOW ? "stopping now" : "draining",
		 atomic_load(&w->active));
	if (wait_idle(w)) {
		log_info("worker %d closing %ld connections", w->slot,
			 atomic_load(&w->active));
		cut_all(w);
		wait_cut(w);
	}
	log_info("worker %d exiting", w->slot);
	_exit(0);
}

/* Drops privileges, then asks for SIGTERM when the master dies (a
 * credential change clears that setting, so it comes after). */
static void become_worker(const struct worker_args *a)
{
	char err[160];

	if (privs_apply(&a->privs, err, sizeof(err)) < 0)
		fatal("worker %d: %s", a->slot, err);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != a->master)
		fatal("worker %d: the master is gone", a->slot);
}

void worker_main(const struct worker_args *a)
{
	static struct worker w;	/* lives for the process */
	const struct config *cfg = a->cfg;
	unsigned char rnd[4];
	int slot = a->slot;

	log_set_role("worker");
	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		fatal("pipe: %s", strerror(errno));
	setup_signals();
	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	w.slot = slot;
	w.listen_fds = a->fds;
	w.listen_kind = a->kinds;
	w.nlisten = a->nfds;
	w.pol = a->pol;
	w.cell = a->cell;
	w.master = a->master;
	become_worker(a);
	/* One malloc arena per usable CPU, at most WORKER_ARENAS, not glibc's
	 * eight per CPU: relay buffers live only while they hold data, so a
	 * freed buffer is soon reused by the next read on any tunnel, and a
	 * thousand idle tunnels do not leave a dozen arenas each holding its
	 * own freed buffers; a few arenas keep threads on different CPUs off
	 * each other's lock. */
	(void)mallopt(M_ARENA_MAX, a->ncpu < 1 ? 1
				   : a->ncpu > WORKER_ARENAS ? WORKER_ARENAS
							     : a->ncpu);
	pthread_mutex_init(&w.lock, NULL);
	{
		/* Idle waits must not stretch when the wall clock is set. */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&w.wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (random_bytes(rnd, sizeof(rnd)) < 0)
		memcpy(rnd, &slot, sizeof(rnd));
	memcpy(&w.id_base, rnd, sizeof(w.id_base));
	pthread_attr_init(&w.thread_attr);
	pthread_attr_setdetachstate(&w.thread_attr, PTHREAD_CREATE_DETACHED);
	if (pthread_attr_setstacksize(&w.thread_attr,
				      (size_t)cfg->thread_stack * 1024) != 0)
		fatal("thread_stack %ld KiB is not usable", cfg->thread_stack);
	log_debug("worker %d serving", slot);
	accept_loop(&w);
	drain_and_exit(&w);
}
