/*
 * admission.h - admission control shared by every process: one anonymous
 * shared-memory region the master creates before forking, holding the
 * global count of open tunnels, per-address and per-subject counts and
 * token buckets, one cell per worker process (slots, metric counters,
 * histograms), and the process-shared semaphore guarding all of it. It
 * owns crash repair: when a worker dies, even holding the lock, the master
 * gives back everything that worker held.
 *
 * Who calls what:
 *   master  adm_create, adm_set_limits, adm_cell_claim (right after fork),
 *           adm_cell_reclaim (after reaping), adm_destroy.
 *   worker  adm_admit / adm_release per tunnel, adm_count / adm_observe for
 *           metrics, adm_flush from a periodic tick.
 *   anyone  adm_open, adm_sum, adm_hist_sum ... (lock-free reads).
 *
 * Nothing waits forever: every wait on the semaphore has a deadline on
 * CLOCK_MONOTONIC (sem_clockwait; immune to wall-clock jumps).
 */
#ifndef ECH3_ADMISSION_H
#define ECH3_ADMISSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define ADM_MAX_CELLS 256	/* worker processes alive at once (all generations) */
#define ADM_MAX_SLOTS 65536	/* hard cap on max_conn */
#define ADM_IP_ENTRIES 4096	/* per-address table (open addressing) */
#define ADM_SUBJ_ENTRIES 4096	/* per-subject table */
#define ADM_SUBJ_MAX 63		/* subject bytes kept (longer ones: hash + length) */
#define ADM_LOCK_TIMEOUT_MS 1000 /* a worker waits this long, then says "busy" */

struct adm_limits {
	long max_conn;		/* global open tunnels; 0 = unlimited (still
				 * counted). Clamped to ADM_MAX_SLOTS: that
				 * many slots exist, so "unlimited" means it. */
	long per_ip;		/* open tunnels per client address; 0 = unlimited */
	double ip_rate;		/* new tunnels per second per address (token
				 * bucket); 0 = off */
	long ip_burst;		/* bucket size per address (< 1 means 1) */
	double global_rate;	/* new tunnels per second, all clients; 0 = off */
	long global_burst;	/* (< 1 means 1) */
	long per_subject;	/* open tunnels per JWT subject; 0 = unlimited */
};

enum adm_verdict {
	ADM_OK = 0,
	ADM_FULL,
	ADM_PER_IP,
	ADM_RATE_IP,
	ADM_RATE_GLOBAL,
	ADM_PER_SUBJECT,
	ADM_BUSY
};

/* "ok", "max_conn", "per_ip", "rate_ip", "rate_global", "per_subject",
 * "busy"; "unknown" for anything else. */
const char *adm_verdict_name(enum adm_verdict v);

/* ticket flags: the tunnel was admitted without that accounting because the
 * table was full (log it; the global limit and global rate still held) */
#define ADM_TF_IP_UNTRACKED 1u
#define ADM_TF_SUBJECT_UNTRACKED 2u

/* Handle of one admitted tunnel; slot -1 = none. */
struct adm_ticket {
	int slot;
	int cell;
	unsigned flags;		/* ADM_TF_* */
};

struct adm;			/* the mapping plus its fd (process-local) */

/* Master: creates the region (shm_open of a unique name, O_EXCL, 0600,
 * unlinked at once; memfd_create if /dev/shm is unusable), maps it shared
 * and initialises the semaphore. The fd is close-on-exec. NULL on failure
 * with a message in err. */
struct adm *adm_create(char *err, size_t errlen);

/* Maps a region created by adm_create from its fd (exec hand-over). Takes
 * a duplicate of fd. NULL on failure with a message in err. */
struct adm *adm_attach(int fd, char *err, size_t errlen);

/* Unmaps and closes; the master at exit (after its workers are gone). */
void adm_destroy(struct adm *a);

int adm_fd(const struct adm *a);

/* Size of the region, and how much of it is backed by memory right now
 * (only touched pages cost memory); -1 if the kernel will not say. */
size_t adm_region_size(void);
long adm_resident_bytes(const struct adm *a);

/* Master at start and reload; workers read the limits from the region at
 * each admission. Negative and NaN values mean 0. Fields are stored one by
 * one, so an admission racing a reload may see old and new fields mixed. */
void adm_set_limits(struct adm *a, const struct adm_limits *l);
void adm_get_limits(const struct adm *a, struct adm_limits *out);

/* Master only: a free cell for that worker pid, or -1. Either right after
 * fork (then hand the index to the child), or before fork with getpid() so
 * the child inherits the index, followed in the parent by
 * adm_cell_set_pid(cell, child) right after fork, before any reaping; if
 * fork failed, adm_cell_reclaim(cell) frees it. */
int adm_cell_claim(struct adm *a, pid_t pid);
void adm_cell_set_pid(struct adm *a, int cell, pid_t pid);

/* Master after reaping that worker (never for a live one): if the worker
 * died holding the lock, take the lock over and rebuild every count from
 * the slot records; release every slot it held; fold its counters and
 * histograms into the retired totals; free the cell. Returns 0, or -1 when
 * a live process kept the lock for the whole wait (about 2 s): call again
 * later, nothing was changed. Reclaiming a free cell returns 0. */
int adm_cell_reclaim(struct adm *a, int cell);

/* Worker: decides one new tunnel. On ADM_OK *t holds the slot, to be given
 * back with adm_release; otherwise t->slot is -1. *retry_after_s (may be
 * NULL) gets the seconds a client should wait: for rate refusals until a
 * token is there (at least 1, at most 86400), otherwise 1.
 * client NULL or not AF_INET/AF_INET6: no per-address accounting. IPv4 and
 * v4-mapped IPv6 are the same address. subject NULL: no per-subject
 * accounting. A full table degrades (see ADM_TF_*), counted in
 * ADM_C_TABLE_FULL and adm_table_full_events / adm_subject_full_events.
 * Counts ADM_C_ADMITTED, ADM_C_REFUSED_LIMIT (max_conn, per_ip,
 * per_subject, busy) and ADM_C_REFUSED_RATE itself; the caller counts the
 * rest. Verdict order: busy, max_conn, per_ip, per_subject, rate_ip,
 * rate_global; tokens are only taken when the tunnel is admitted. */
enum adm_verdict adm_admit(struct adm *a, int cell, const struct sockaddr *client,
			   const char *subject, struct adm_ticket *t,
			   long *retry_after_s);

/* The same with the caller's CLOCK_MONOTONIC time in ms (now_ms()). */
enum adm_verdict adm_admit_at(struct adm *a, int cell,
			      const struct sockaddr *client, const char *subject,
			      struct adm_ticket *t, long *retry_after_s,
			      int64_t now);

/* Gives the slot back; idempotent (t->slot becomes -1). If the lock cannot
 * be had within ADM_LOCK_TIMEOUT_MS the release is queued lock-free on the
 * cell and done by that worker's next admission, release or adm_flush, or
 * by adm_cell_reclaim. */
void adm_release(struct adm *a, struct adm_ticket *t);

/* Worker tick: performs queued releases of that cell. Returns how many, or
 * -1 if the lock was busy (they stay queued). */
int adm_flush(struct adm *a, int cell);

long adm_open(const struct adm *a);		/* global open tunnels now */
long adm_max_conn(const struct adm *a);		/* after clamping; 0 = unlimited */
int adm_table_full_events(const struct adm *a);	/* per-address table full */
int adm_subject_full_events(const struct adm *a); /* per-subject table full */

/* Counters for metrics, per cell, updated lock-free with relaxed atomics by
 * the threads of the owning worker only. */
enum adm_counter {
	ADM_C_ADMITTED,
	ADM_C_REFUSED_AUTH,
	ADM_C_REFUSED_LIMIT,
	ADM_C_REFUSED_RATE,
	ADM_C_REFUSED_EGRESS,
	ADM_C_CONNECT_ERRORS,
	ADM_C_BYTES_UP,
	ADM_C_BYTES_DOWN,
	ADM_C_TUNNELS_OK,
	ADM_C_TABLE_FULL,
	ADM_C_RELOADS,		/* counted by the master: adm_count_master */
	ADM_C_AUTH_REASON0,	/* + index of the refusal reason (metrics) */
	ADM_C__COUNT = ADM_C_AUTH_REASON0 + 16
};
void adm_count(struct adm *a, int cell, enum adm_counter c, uint64_t n);

/* Live cells plus the totals of reclaimed ones; never goes backwards. */
void adm_sum(const struct adm *a, uint64_t out[ADM_C__COUNT]);
/* The master's own counters (reloads), kept with the retired totals. */
void adm_count_master(struct adm *a, enum adm_counter c, uint64_t n);
long adm_workers_alive(const struct adm *a);

/* Fixed-bucket histograms, same discipline as the counters. */
enum adm_hist { ADM_H_CONNECT, ADM_H_DURATION, ADM_H__COUNT };
#define ADM_HIST_BUCKETS 13
/* Upper bounds in seconds ("le"): connect 1 ms .. 10 s, duration 1 s .. 1 day. */
extern const double adm_hist_bounds[ADM_H__COUNT][ADM_HIST_BUCKETS];

/* Records one observation (negative or NaN counts as 0). */
void adm_observe(struct adm *a, int cell, enum adm_hist h, double seconds);

/* CUMULATIVE, as Prometheus wants: buckets[i] = observations <= bound i,
 * buckets[ADM_HIST_BUCKETS] = all of them (+Inf) = *count. *sum in seconds
 * (kept in microseconds). Live cells plus retired totals. */
void adm_hist_sum(const struct adm *a, enum adm_hist h,
		  uint64_t buckets[ADM_HIST_BUCKETS + 1], double *sum,
		  uint64_t *count);

/* ---- the lock itself: for tests and crash-repair drills only ---- */

/* Takes the semaphore within timeout_ms and records this pid as holder.
 * cell is the caller's cell or -1. 0, or -1 with errno ETIMEDOUT. */
int adm_lock(struct adm *a, int cell, long timeout_ms);
void adm_unlock(struct adm *a, int cell);

/* Takes the semaphore WITHOUT recording a holder, as a process killed
 * between sem_clockwait returning and the holder store would leave it. */
int adm_test_lock_unrecorded(struct adm *a, int cell, long timeout_ms);

#endif
