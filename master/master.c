/*
 * master.c - the master's loop. Signals are blocked and taken one at a
 * time with sigtimedwait(), so no work ever happens in a handler; timers
 * (respawn backoff, stop deadline) are the wait's timeout.
 *
 *   SIGCHLD           reap; a worker of the current generation that died
 *                     is logged with its cause and respawned (backoff
 *                     doubling from 100 ms to 10 s while it keeps dying)
 *   SIGTERM, SIGQUIT  graceful stop (workers drain up to shutdown_timeout);
 *                     a second SIGTERM stops at once
 *   SIGINT            stop at once
 *   SIGHUP            reload: build a new configuration; if valid, start a
 *                     new generation on the same sockets and tell the old
 *                     one to drain (SIGQUIT); if not, log and keep going
 *   SIGUSR1           reopen the log file (and tell the workers)
 *   SIGUSR2           binary upgrade: exec the binary on disk with the
 *                     listening sockets; when the new master reports in
 *                     (SIGWINCH), drain and exit as on a reload
 */
#include "master.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include "notify.h"
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../shared/log.h"
#include "../shared/cpus.h"
#include "../shared/privs.h"
#include "../shared/util.h"
#include "../worker/egress.h"
#include "../worker/worker.h"
#include "../shared/admission.h"
#include "listen.h"
#include "policy.h"
#include "upgrade.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define STABLE_MS 2000		/* a worker that lived this long was fine */
#define STOP_GRACE_MS 3000	/* past the drain deadline, before SIGKILL */

enum stop { RUNNING = 0, STOP_GRACEFUL, STOP_HANDOVER, STOP_NOW };

struct proc {
	pid_t pid;
	size_t slot;
	unsigned gen;
	int64_t started;
	int cell;		/* admission cell */
};

struct master {
	const struct options *opt;
	struct config *cfg;
	struct listener *ls;
	size_t nls;
	size_t nslots;
	struct proc *procs;
	size_t nprocs, capprocs;
	unsigned gen;
	int64_t *respawn_at;	/* per slot; 0: nothing pending */
	long *backoff;		/* per slot, ms */
	char token[33];		/* generated when none is configured */
	int ncpu;		/* usable CPUs, counted at start and reload */
	int stopping;		/* enum stop */
	int64_t deadline;
	pid_t upgrade_pid;	/* a new master being started, or 0 */
	pid_t pid;		/* this master */
	sigset_t sigs;
	struct worker_policy pol;	/* what new workers decide with */
	int *unreclaimed;	/* cells whose repair must be retried */
	size_t nunreclaimed;
};

/* Counts the usable CPUs again (a container's limit may have changed)
 * and returns how many worker slots cfg asks for. */
static size_t slots_for(struct master *m, const struct config *cfg)
{
	m->ncpu = cpu_count();
	return cfg->workers > 0 ? (size_t)cfg->workers : (size_t)m->ncpu;
}

/* ---- workers ---- */

static void child_start(struct master *m, size_t slot, int cell)
{
	int fds[64], kinds[64];
	size_t n = 0;
	struct worker_args a;
	char err[CONFIG_ERR_MAX];

	for (size_t i = 0; i < m->nls; i++)
		for (size_t s = 0; s < m->ls[i].nslots; s++) {
			if (s == slot && n < 64) {
				kinds[n] = m->ls[i].kind;
				fds[n++] = m->ls[i].fds[s];
			} else {
				close(m->ls[i].fds[s]);
			}
		}
	memset(&a, 0, sizeof(a));
	a.cfg = m->cfg;
	a.slot = (int)slot;
	a.fds = fds;
	a.kinds = kinds;
	a.nfds = n;
	a.master = m->pid;
	a.pol = &m->pol;
	a.cell = cell;
	a.ncpu = m->ncpu;
	if (privs_resolve(m->cfg, &a.privs, err, sizeof(err)) < 0)
		fatal("worker %zu: %s", slot, err);
	worker_main(&a);
}

/* Makes room for one more process before forking it. */
static int procs_reserve(struct master *m)
{
	if (m->nprocs == m->capprocs) {
		size_t cap = m->capprocs ? m->capprocs * 2 : 16;
		struct proc *np = realloc(m->procs, cap * sizeof(*np));
		if (np == NULL)
			return -1;
		m->procs = np;
		m->capprocs = cap;
	}
	return 0;
}

static void spawn(struct master *m, size_t slot)
{
	struct proc p = { 0, slot, m->gen, now_ms(), -1 };

	if (procs_reserve(m) < 0 ||
	    (p.cell = adm_cell_claim(m->pol.adm, m->pid)) < 0) {
		log_error("no room for worker %zu (memory or admission cells); "
			  "retrying", slot);
		m->respawn_at[slot] = now_ms() + BACKOFF_MAX_MS;
		return;
	}
	p.pid = fork();
	if (p.pid < 0) {
		log_error("fork worker %zu: %s; retrying", slot, strerror(errno));
		(void)adm_cell_reclaim(m->pol.adm, p.cell);
		m->respawn_at[slot] = now_ms() + BACKOFF_MAX_MS;
		return;
	}
	if (p.pid == 0) {
		adm_cell_set_pid(m->pol.adm, p.cell, getpid());
		child_start(m, slot, p.cell);
	}
	adm_cell_set_pid(m->pol.adm, p.cell, p.pid);
	m->procs[m->nprocs++] = p;
	m->respawn_at[slot] = 0;
	log_debug("worker %zu started, pid %d, generation %u", slot,
		  (int)p.pid, m->gen);
}

static void describe_status(int status, char *out, size_t size)
{
	if (WIFEXITED(status))
		snprintf(out, size, "exited with status %d",
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, size, "killed by signal %d (%s)%s",
			 WTERMSIG(status), strsignal(WTERMSIG(status)),
			 WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(out, size, "ended with status 0x%x", status);
}

static void on_worker_death(struct master *m, const struct proc *p,
			    int status)
{
	char why[96];
	int64_t now = now_ms();
	long *b = &m->backoff[p->slot];

	describe_status(status, why, sizeof(why));
	if (m->stopping || p->gen != m->gen) {
		log_info("worker %zu (pid %d, generation %u) %s", p->slot,
			 (int)p->pid, p->gen, why);
		return;
	}
	if (now - p->started >= STABLE_MS)
		*b = 0;
	else
		*b = *b == 0 ? BACKOFF_MIN_MS : (*b * 2 > BACKOFF_MAX_MS
							 ? BACKOFF_MAX_MS : *b * 2);
	log_error("worker %zu (pid %d) %s; respawning in %ld ms", p->slot,
		  (int)p->pid, why, *b);
	m->respawn_at[p->slot] = now + *b;
}

/* Gives a dead worker's admission slots back (retried while a live
 * process holds the lock). */
static void reclaim(struct master *m, int cell)
{
	int *v;

	if (adm_cell_reclaim(m->pol.adm, cell) == 0)
		return;
	v = realloc(m->unreclaimed, (m->nunreclaimed + 1) * sizeof(*v));
	if (v == NULL) {
		log_error("out of memory: admission cell %d not reclaimed", cell);
		return;
	}
	m->unreclaimed = v;
	m->unreclaimed[m->nunreclaimed++] = cell;
	log_warn("admission cell %d busy; will retry its repair", cell);
}

static void retry_reclaims(struct master *m)
{
	size_t k = 0;

	for (size_t i = 0; i < m->nunreclaimed; i++)
		if (adm_cell_reclaim(m->pol.adm, m->unreclaimed[i]) < 0)
			m->unreclaimed[k++] = m->unreclaimed[i];
	m->nunreclaimed = k;
}

static void reap(struct master *m)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == m->upgrade_pid) {
			char why[96];
			describe_status(status, why, sizeof(why));
			log_error("binary upgrade failed: the new master %s; "
				  "this master keeps serving", why);
			m->upgrade_pid = 0;
			continue;
		}
		for (size_t i = 0; i < m->nprocs; i++) {
			if (m->procs[i].pid != pid)
				continue;
			struct proc p = m->procs[i];
			m->procs[i] = m->procs[--m->nprocs];
			reclaim(m, p.cell);
			on_worker_death(m, &p, status);
			break;
		}
	}
}

static void signal_gen(struct master *m, int sig, int old_only)
{
	for (size_t i = 0; i < m->nprocs; i++)
		if (!old_only || m->procs[i].gen != m->gen)
			kill(m->procs[i].pid, sig);
}

/* ---- configuration ---- */

/* A generated token stays the same across reloads. */
static int settle_token(struct master *m, struct config *cfg)
{
	/* JWT keys are authentication enough: no static token beside them. */
	if (cfg->token[0] != '\0' || cfg->allow_anonymous ||
	    cfg->jwt_secret[0] != '\0' || cfg->jwt_secret_file[0] != '\0' ||
	    cfg->jwt_keys.n > 0)
		return 0;
	if (m->token[0] == '\0') {
		if (random_hex(m->token, 16) < 0) {
			log_error("no randomness for a token");
			return -1;
		}
		/* Printed once, deliberately: the one place a token is
		 * shown. A JSON collector gets one JSON object. */
		if (cfg->log_format == LOG_FMT_JSON)
			fprintf(stderr, "{\"level\":\"warn\",\"role\":\"master\","
				"\"msg\":\"no token is configured; this run uses "
				"a generated one (set TOKEN, or "
				"ECH3_ALLOW_ANONYMOUS=1)\",\"generated_token\":"
				"\"%s\"}\n", m->token);
		else
			fprintf(stderr,
				"\n  ech3: no token is configured, so this run "
				"uses a generated one:\n\n      %s\n\n"
				"  Clients must send it in Sec-WebSocket-Protocol."
				" Set TOKEN (or token) to choose\n  your own, or "
				"ECH3_ALLOW_ANONYMOUS=1 to run without auth.\n\n",
				m->token);
	}
	free(cfg->token);
	cfg->token = strdup(m->token);
	return cfg->token == NULL ? -1 : 0;
}

static void apply_logging(const struct config *cfg)
{
	struct privs p;
	char err[160];

	log_configure(cfg->log_level, cfg->log_format);
	if (log_open(cfg->log_file) < 0) {
		log_error("log_file %s: %s", cfg->log_file, strerror(errno));
		return;
	}
	/* Workers reopen the file themselves (SIGUSR1) as `user`: a file the
	 * root master just created must be theirs too. */
	if (cfg->log_file[0] != '\0' && privs_resolve(cfg, &p, err, sizeof(err)) == 0 &&
	    p.drop && chown(cfg->log_file, p.uid, p.gid) < 0)
		log_warn("log_file %s: chown to the workers' user: %s",
			 cfg->log_file, strerror(errno));
}

static const char *auth_mode(const struct master *m, const struct config *c)
{
	if (m->token[0] != '\0' && strcmp(c->token, m->token) == 0)
		return m->pol.jwt != NULL ? "generated token+jwt"
					  : "generated token";
	return policy_auth_mode(c, &m->pol);
}

static void log_summary(const struct master *m)
{
	char addrs[512] = "", egress[256];
	size_t n = 0;

	for (size_t i = 0; i < m->nls && n < sizeof(addrs); i++)
		n += (size_t)snprintf(addrs + n, sizeof(addrs) - n, "%s%s",
				      i ? "," : "", m->ls[i].bound);
	egress_describe(m->pol.egress, egress, sizeof(egress));
	log_info("ech3 " ECH3_VERSION " serving: listen=%s workers=%zu "
		 "auth=%s max_conn=%ld per_ip=%ld rate_per_ip=%ld/s "
		 "egress=%s fallback_hosts=%zu metrics=%s",
		 addrs, m->nslots, auth_mode(m, m->cfg), m->cfg->max_conn,
		 m->cfg->max_conn_per_ip, m->cfg->rate_per_ip, egress,
		 m->cfg->fallback_hosts.n,
		 m->cfg->metrics_listen[0] ? m->cfg->metrics_listen
		 : m->cfg->metrics_token[0] ? "token" : "off");
}

/* The listen entries of cfg, then the metrics listener if any. */
static size_t listen_entries(const struct config *cfg, const char **v,
			     int *kind, char *metrics, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->listen.n && n < 63; i++, n++) {
		v[n] = cfg->listen.v[i];
		kind[n] = -1;	/* from the entry: plain or TLS */
	}
	if (cfg->metrics_listen[0] != '\0') {
		snprintf(metrics, size, "%s plain", cfg->metrics_listen);
		v[n] = metrics;
		kind[n++] = LISTEN_METRICS;
	}
	return n;
}

static int open_listeners(struct master *m, const struct config *cfg,
			  size_t nslots, struct listener **out, size_t *nout)
{
	const char *names[64];
	int kinds[64];
	char metrics[128];
	size_t n = listen_entries(cfg, names, kinds, metrics, sizeof(metrics));
	struct listener *ls = calloc(n, sizeof(*ls));

	if (ls == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		/* Reuse an open listener on the same address. */
		struct listener *old = NULL;
		for (size_t j = 0; j < m->nls; j++)
			if (strcmp(m->ls[j].name, names[i]) == 0)
				old = &m->ls[j];
		if (old != NULL && listener_dup(old, &ls[i]) == 0 &&
		    listener_resize(&ls[i], nslots) == 0) {
			/* The same sockets (duplicated descriptors: the old
			 * set stays intact until the reload is committed). */
			struct sockaddr_storage ss;
			unsigned len;
			/* tls_cert may have come or gone: the mode is the new
			 * configuration's (the entry was checked already) */
			(void)config_parse_listen(cfg, names[i], &ss, &len,
						  &ls[i].tls);
		} else if (listener_open(&ls[i], cfg, names[i], nslots) < 0) {
			while (i-- > 0)
				listener_close(&ls[i]);
			free(ls);
			return -1;
		} else {
			log_info("listening on %s (%zu sockets%s)", ls[i].bound,
				 nslots, kinds[i] == LISTEN_METRICS
						 ? ", metrics only" : "");
		}
		ls[i].kind = kinds[i] >= 0 ? kinds[i]
					   : ls[i].tls ? LISTEN_TLS : LISTEN_PLAIN;
	}
	*out = ls;
	*nout = n;
	return 0;
}

static int resize_slots(struct master *m, size_t nslots)
{
	int64_t *ra = calloc(nslots, sizeof(*ra));
	long *bo = calloc(nslots, sizeof(*bo));

	if (ra == NULL || bo == NULL) {
		free(ra);
		free(bo);
		return -1;
	}
	free(m->respawn_at);
	free(m->backoff);
	m->respawn_at = ra;
	m->backoff = bo;
	m->nslots = nslots;
	return 0;
}

/* Keeps at most max_draining_generations old generations: the oldest
 * beyond that are closed at once. */
static void limit_draining(struct master *m)
{
	unsigned keep_from = m->gen > (unsigned)m->cfg->max_draining_generations
				     ? m->gen - (unsigned)m->cfg->max_draining_generations
				     : 0;

	for (size_t i = 0; i < m->nprocs; i++)
		if (m->procs[i].gen < keep_from) {
			log_info("closing worker pid %d of generation %u: more "
				 "than %ld generations draining",
				 (int)m->procs[i].pid, m->procs[i].gen,
				 m->cfg->max_draining_generations);
			kill(m->procs[i].pid, SIGINT);
		}
}

static void reload(struct master *m)
{
	char err[CONFIG_ERR_MAX];
	struct config *cfg = options_build_config(m->opt, err, sizeof(err));
	struct listener *ls;
	struct worker_policy pol;
	size_t nls, nslots;

	notifyf("RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)now_ms() * 1000ULL);
	if (cfg == NULL || settle_token(m, cfg) < 0) {
		notify("READY=1");
		log_error("reload refused, keeping the running configuration: "
			  "%s", cfg == NULL ? err : "token");
		config_free(cfg);
		return;
	}
	nslots = slots_for(m, cfg);
	if (open_listeners(m, cfg, nslots, &ls, &nls) < 0) {
		log_error("reload refused: cannot open the listeners");
		notify("READY=1");
		config_free(cfg);
		return;
	}
	pol.adm = m->pol.adm;
	if (policy_build(cfg, ls, nls, &pol, err, sizeof(err)) < 0 ||
	    (resize_slots(m, nslots) < 0 &&
	     (policy_free(&pol), snprintf(err, sizeof(err), "out of memory")))) {
		log_error("reload refused, keeping the running configuration: "
			  "%s", err);
		for (size_t i = 0; i < nls; i++)
			listener_close(&ls[i]);
		free(ls);
		notify("READY=1");
		config_free(cfg);
		return;
	}
	for (size_t i = 0; i < m->nls; i++)
		listener_close(&m->ls[i]);
	free(m->ls);
	m->ls = ls;
	m->nls = nls;
	policy_free(&m->pol);	/* running workers keep their copies */
	m->pol = pol;
	policy_set_limits(cfg, m->pol.adm);
	adm_count_master(m->pol.adm, ADM_C_RELOADS, 1);
	config_free(m->cfg);
	m->cfg = cfg;
	apply_logging(cfg);
	m->gen++;
	for (size_t s = 0; s < m->nslots; s++)
		spawn(m, s);
	signal_gen(m, SIGQUIT, 1);
	limit_draining(m);
	log_info("reloaded: generation %u started, older workers draining up "
		 "to %ld s", m->gen, cfg->drain_timeout);
	log_summary(m);
	notify("READY=1");
}

/* ---- stopping ---- */

static void close_listeners(struct master *m)
{
	/* New connections are refused at once; the workers keep serving
	 * the ones they have. */
	for (size_t i = 0; i < m->nls; i++)
		listener_close(&m->ls[i]);
}

static void begin_stop(struct master *m, enum stop how)
{
	if ((int)m->stopping >= (int)how)
		return;
	m->stopping = how;
	notify("STOPPING=1");
	close_listeners(m);
	switch (how) {
	case STOP_GRACEFUL:
		log_info("graceful stop: draining up to %ld s",
			 m->cfg->shutdown_timeout);
		m->deadline = now_ms() + m->cfg->shutdown_timeout * 1000 +
			      STOP_GRACE_MS;
		signal_gen(m, SIGTERM, 0);
		break;
	case STOP_HANDOVER:
		log_info("the new master took over; draining up to %ld s",
			 m->cfg->drain_timeout);
		m->deadline = now_ms() + m->cfg->drain_timeout * 1000 +
			      STOP_GRACE_MS;
		signal_gen(m, SIGQUIT, 0);
		break;
	default:
		log_info("stopping now");
		m->deadline = now_ms() + STOP_GRACE_MS;
		signal_gen(m, SIGINT, 0);
		break;
	}
}

static void start_upgrade(struct master *m)
{
	if (m->upgrade_pid != 0) {
		log_warn("binary upgrade already in progress (pid %d)",
			 (int)m->upgrade_pid);
		return;
	}
	m->upgrade_pid = upgrade_exec(m->ls, m->nls);
	if (m->upgrade_pid > 0)
		log_info("binary upgrade: new master started, pid %d",
			 (int)m->upgrade_pid);
}

/* ---- the loop ---- */

static long next_timeout(const struct master *m)
{
	int64_t now = now_ms(), next = now + 1000;

	if (m->stopping)
		next = m->deadline < next ? m->deadline : next;
	for (size_t s = 0; s < m->nslots; s++)
		if (m->respawn_at[s] != 0 && m->respawn_at[s] < next)
			next = m->respawn_at[s];
	return next > now ? (long)(next - now) : 0;
}

static void respawn_due(struct master *m)
{
	int64_t now = now_ms();

	for (size_t s = 0; s < m->nslots; s++)
		if (m->respawn_at[s] != 0 && now >= m->respawn_at[s])
			spawn(m, s);
}

static void handle_signal(struct master *m, int sig, const siginfo_t *info)
{
	switch (sig) {
	case SIGCHLD:
		reap(m);
		break;
	case SIGTERM:
		begin_stop(m, m->stopping ? STOP_NOW : STOP_GRACEFUL);
		break;
	case SIGQUIT:
		begin_stop(m, STOP_GRACEFUL);
		break;
	case SIGINT:
		begin_stop(m, STOP_NOW);
		break;
	case SIGUSR2:
		if (!m->stopping)
			start_upgrade(m);
		break;
	case SIGWINCH:
		if (m->upgrade_pid != 0 && info->si_pid == m->upgrade_pid) {
			m->upgrade_pid = 0;	/* it lives on without us */
			begin_stop(m, STOP_HANDOVER);
		}
		break;
	case SIGHUP:
		if (!m->stopping)
			reload(m);
		break;
	case SIGUSR1:
		apply_logging(m->cfg);
		signal_gen(m, SIGUSR1, 0);
		log_info("log file reopened");
		break;
	default:
		break;
	}
}

static int loop(struct master *m)
{
	for (;;) {
		long ms = next_timeout(m);
		struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
		siginfo_t info;
		int sig = sigtimedwait(&m->sigs, &info, &ts);

		if (sig > 0)
			handle_signal(m, sig, &info);
		reap(m);
		retry_reclaims(m);
		if (m->stopping) {
			if (m->nprocs == 0)
				return 0;
			if (now_ms() >= m->deadline) {
				log_warn("%zu workers still running after the "
					 "deadline; killing them", m->nprocs);
				signal_gen(m, SIGKILL, 0);
				m->deadline = now_ms() + STOP_GRACE_MS;
			}
			continue;
		}
		respawn_due(m);
	}
}

static int write_pid_file(const char *path)
{
	FILE *f;

	if (path[0] == '\0')
		return 0;
	f = fopen(path, "w");
	if (f == NULL) {
		log_error("pid_file %s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(f, "%ld\n", (long)getpid());
	return fclose(f);
}

/* Creates the admission region and the first policy. */
static int start_policy(struct master *m)
{
	char err[CONFIG_ERR_MAX];

	m->pol.adm = adm_create(err, sizeof(err));
	if (m->pol.adm == NULL) {
		log_error("admission region: %s", err);
		return -1;
	}
	if (policy_build(m->cfg, m->ls, m->nls, &m->pol, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	policy_set_limits(m->cfg, m->pol.adm);
	return 0;
}

/* Raises the descriptor limit for max_conn tunnels (two descriptors each,
 * any worker may hold them all) or says how far short it is. */
static void check_nofile(const struct config *cfg, size_t nslots)
{
	long want = (cfg->max_conn > 0 ? cfg->max_conn : 65536) * 2 +
		    (long)nslots * 8 + 64;
	long got = privs_raise_nofile(want);

	if (got >= 0 && got < want)
		log_warn("RLIMIT_NOFILE is %ld but max_conn = %ld needs %ld "
			 "descriptors per worker; raise the limit (ulimit -n, "
			 "LimitNOFILE=) or lower max_conn", got, cfg->max_conn,
			 want);
}

/* Tells systemd, and after a binary upgrade the old master, that this
 * master serves. */
static void announce_ready(void)
{
	pid_t old = upgrade_parent();

	if (old > 0) {
		notifyf("MAINPID=%ld\nREADY=1", (long)getpid());
		if (kill(old, SIGWINCH) < 0)
			log_warn("cannot reach the old master %d: %s", (int)old,
				 strerror(errno));
		unsetenv("ECH3_OLD_MASTER");
	} else {
		notify("READY=1");
	}
}

/* Removes the pid file unless a new master has written its own. */
static void remove_pid_file(const char *path)
{
	FILE *f;
	long pid = 0;

	if (path[0] == '\0' || (f = fopen(path, "r")) == NULL)
		return;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid == (long)getpid())
		unlink(path);
}

int master_run(const struct options *opt, struct config *cfg)
{
	struct master m;
	int rc;

	memset(&m, 0, sizeof(m));
	m.opt = opt;
	m.cfg = cfg;
	m.gen = 1;
	m.pid = getpid();
	log_set_role("master");
	apply_logging(cfg);
	sigemptyset(&m.sigs);
	for (int s = 0, all[] = { SIGCHLD, SIGTERM, SIGQUIT, SIGINT, SIGHUP,
				  SIGUSR1, SIGUSR2, SIGWINCH };
	     s < (int)(sizeof(all) / sizeof(all[0])); s++)
		sigaddset(&m.sigs, all[s]);
	sigprocmask(SIG_BLOCK, &m.sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (settle_token(&m, cfg) < 0 || resize_slots(&m, slots_for(&m, cfg)) < 0 ||
	    open_listeners(&m, cfg, m.nslots, &m.ls, &m.nls) < 0 ||
	    start_policy(&m) < 0)
		return 1;
	check_nofile(cfg, m.nslots);
	if (write_pid_file(cfg->pid_file) < 0)
		return 1;
	upgrade_adopt_done();
	for (size_t s = 0; s < m.nslots; s++)
		spawn(&m, s);
	log_summary(&m);
	announce_ready();
	rc = loop(&m);
	log_info("stopped");
	remove_pid_file(m.cfg->pid_file);
	for (size_t i = 0; i < m.nls; i++)
		listener_close(&m.ls[i]);
	free(m.ls);
	free(m.procs);
	free(m.respawn_at);
	free(m.backoff);
	free(m.unreclaimed);
	policy_free(&m.pol);
	adm_destroy(m.pol.adm);
	config_free(m.cfg);
	return rc;
}
