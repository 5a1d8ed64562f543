/*
 * admission.c - the shared admission region: layout, the process-shared
 * lock and its crash repair, slots and their free list, the per-address
 * and per-subject tables with token buckets, per-worker cells with
 * lock-free counters and histograms, and the retired totals.
 *
 * Truth lives in the slot records: a slot owned by a cell is one open
 * tunnel. Every count (global, per cell, per address, per subject) is
 * derived from them and can be rebuilt from them, which is what the master
 * does after taking the lock over from a process that died holding it.
 * To make that rebuild cheap and exact, a count is only raised after the
 * slot that references it is written, and lowered before the slot lets go
 * of it, so no count ever exceeds the slots that reference it.
 *
 * Every all-zero page is a valid empty state (slot owners, references and
 * list links are stored +1, 0 meaning none), so the region can be created
 * by ftruncate alone and untouched pages never cost memory.
 */
#include "admission.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define ADM_MAGIC 0x31306d6133686365ULL	/* "ech3am01" */
#define ADM_VERSION 1u
#define PROBE_WINDOW 64		/* entries a key may live in from its hash */
#define STALL_MS 200		/* unrecorded-holder observation window */
#define RECLAIM_BUDGET_MS 2000	/* how long reclaim waits for a live holder */
#define RETRY_MAX_S 86400L
#define RATE_MAX 1e9
#define SUM_TRIES 1000

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "int atomics must be lock-free");
_Static_assert((ADM_IP_ENTRIES & (ADM_IP_ENTRIES - 1)) == 0, "power of two");
_Static_assert((ADM_SUBJ_ENTRIES & (ADM_SUBJ_ENTRIES - 1)) == 0, "power of two");

enum { CELL_FREE = 0, CELL_LIVE = 1 };

struct adm_slot {
	int32_t owner;		/* cell + 1; 0 = free */
	int32_t ip;		/* per-address entry + 1; 0 = none */
	int32_t subj;		/* per-subject entry + 1; 0 = none */
	int32_t next;		/* free list: next free slot + 1; 0 = end */
	_Atomic int32_t pnext;	/* queued-release list: next slot + 1 */
};

struct adm_ip {
	uint8_t addr[16];	/* IPv6, IPv4 as v4-mapped */
	int32_t used;		/* 0 = never used: probing stops here */
	int32_t open;
	double tokens;
	int64_t last_ms;	/* CLOCK_MONOTONIC of the last refill */
};

struct adm_subj {
	uint64_t hash;		/* keyed hash of the whole subject */
	uint32_t len;		/* whole length */
	int32_t used;
	int32_t open;
	char name[ADM_SUBJ_MAX + 1];	/* first bytes, NUL-terminated */
};

struct adm_totals {
	_Atomic uint64_t counters[ADM_C__COUNT];
	_Atomic uint64_t hist[ADM_H__COUNT][ADM_HIST_BUCKETS + 1];
	_Atomic uint64_t hist_us[ADM_H__COUNT];
};

struct adm_cell {
	_Alignas(64) _Atomic int state;
	_Atomic pid_t pid;
	/* threads of this worker between "about to wait" and "holder
	 * recorded", or between "holder cleared" and "posted" */
	_Atomic int window;
	_Atomic int32_t pending;	/* queued releases: slot + 1 */
	int32_t open;			/* slots held (under the lock) */
	struct adm_totals t;
};

struct adm_shared_limits {
	_Atomic long max_conn, per_ip, ip_burst, global_burst, per_subject;
	_Atomic double ip_rate, global_rate;
};

struct adm_region {
	uint64_t magic;
	uint32_t version;
	uint32_t pad;
	uint64_t size;
	uint64_t key[2];		/* hash key: addresses are chosen by clients */
	sem_t sem;
	_Atomic pid_t holder;		/* 0 = nobody recorded */
	_Atomic uint64_t lock_seq;	/* successful acquisitions */
	struct adm_shared_limits lim;
	_Atomic long open;		/* written under the lock */
	int32_t free_head;		/* slot + 1 */
	int32_t slots_hwm;		/* slots ever used: [0, hwm) */
	_Atomic int cells_hwm;		/* cells ever claimed: [0, hwm) */
	double g_tokens;
	int64_t g_last_ms;
	_Atomic int ip_full, subj_full;
	_Atomic uint64_t fold_seq;	/* seqlock over folding into retired */
	struct adm_totals retired;
	struct adm_cell cells[ADM_MAX_CELLS];
	struct adm_ip ips[ADM_IP_ENTRIES];
	struct adm_subj subjs[ADM_SUBJ_ENTRIES];
	struct adm_slot slots[ADM_MAX_SLOTS];
};

struct adm {
	struct adm_region *r;
	size_t size;
	int fd;
};

const double adm_hist_bounds[ADM_H__COUNT][ADM_HIST_BUCKETS] = {
	[ADM_H_CONNECT] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
			    0.25, 0.5, 1, 2.5, 5, 10 },
	[ADM_H_DURATION] = { 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200,
			     21600, 43200, 86400 },
};

const char *adm_verdict_name(enum adm_verdict v)
{
	static const char *const names[] = {
		[ADM_OK] = "ok", [ADM_FULL] = "max_conn",
		[ADM_PER_IP] = "per_ip", [ADM_RATE_IP] = "rate_ip",
		[ADM_RATE_GLOBAL] = "rate_global",
		[ADM_PER_SUBJECT] = "per_subject", [ADM_BUSY] = "busy",
	};

	if ((unsigned)v >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[v];
}

/* ---- keyed hash (SipHash-2-4) ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4])
{
	v[0] += v[1]; v[1] = ROTL(v[1], 13); v[1] ^= v[0]; v[0] = ROTL(v[0], 32);
	v[2] += v[3]; v[3] = ROTL(v[3], 16); v[3] ^= v[2];
	v[0] += v[3]; v[3] = ROTL(v[3], 21); v[3] ^= v[0];
	v[2] += v[1]; v[1] = ROTL(v[1], 17); v[1] ^= v[2]; v[2] = ROTL(v[2], 32);
}

static uint64_t siphash(const uint64_t key[2], const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t v[4] = { key[0] ^ 0x736f6d6570736575ULL,
			  key[1] ^ 0x646f72616e646f6dULL,
			  key[0] ^ 0x6c7967656e657261ULL,
			  key[1] ^ 0x7465646279746573ULL };
	uint64_t m, last = (uint64_t)len << 56;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&m, p + i, 8);	/* little-endian host assumed */
		v[3] ^= m;
		sip_round(v);
		sip_round(v);
		v[0] ^= m;
	}
	for (size_t k = 0; i + k < len; k++)
		last |= (uint64_t)p[i + k] << (8 * k);
	v[3] ^= last;
	sip_round(v);
	sip_round(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (int k = 0; k < 4; k++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- the lock ---- */

static int sem_wait_ms(sem_t *s, long ms)
{
	struct timespec ts;
	int rc;

	if (ms < 0)
		ms = 0;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	do
		rc = sem_clockwait(s, CLOCK_MONOTONIC, &ts);
	while (rc == -1 && errno == EINTR);
	return rc;
}

static void lock_record(struct adm_region *r)
{
	atomic_store(&r->holder, getpid());
	atomic_fetch_add(&r->lock_seq, 1);
}

static struct adm_cell *cell_at(struct adm_region *r, int cell)
{
	if (cell < 0 || cell >= ADM_MAX_CELLS)
		return NULL;
	return &r->cells[cell];
}

/* record 0 leaves the holder unrecorded and the window open, exactly as a
 * process killed right after sem_clockwait returned would. */
static int lock_acquire(struct adm_region *r, struct adm_cell *c, long ms,
			int record)
{
	int rc;

	if (c)
		atomic_fetch_add(&c->window, 1);
	rc = sem_wait_ms(&r->sem, ms);
	if (rc == 0 && record)
		lock_record(r);
	if (c && (rc != 0 || record))
		atomic_fetch_sub(&c->window, 1);
	return rc;
}

static void lock_release(struct adm_region *r, struct adm_cell *c)
{
	if (c)
		atomic_fetch_add(&c->window, 1);
	atomic_store(&r->holder, 0);
	sem_post(&r->sem);
	if (c)
		atomic_fetch_sub(&c->window, 1);
}

int adm_lock(struct adm *a, int cell, long timeout_ms)
{
	return lock_acquire(a->r, cell_at(a->r, cell), timeout_ms, 1);
}

void adm_unlock(struct adm *a, int cell)
{
	lock_release(a->r, cell_at(a->r, cell));
}

int adm_test_lock_unrecorded(struct adm *a, int cell, long timeout_ms)
{
	return lock_acquire(a->r, cell_at(a->r, cell), timeout_ms, 0);
}

/* ---- creating and mapping ---- */

static void set_err(char *err, size_t len, const char *what, int e)
{
	if (err && len > 0)
		snprintf(err, len, "admission region: %s: %s", what,
			 strerror(e));
}

size_t adm_region_size(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;

	return (sizeof(struct adm_region) + page - 1) / page * page;
}

/* A fresh shm object with a unique name, unlinked at once; memfd when
 * /dev/shm is unusable. Returns the fd or -1. */
static int open_region_fd(void)
{
	for (int tries = 0; tries < 8; tries++) {
		uint32_t rnd;
		char name[64];
		int fd;

		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			return -1;
		snprintf(name, sizeof(name), "/ech3-%ld-%08x", (long)getpid(),
			 (unsigned)rnd);
		fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd >= 0) {
			shm_unlink(name);
			return fd;
		}
		if (errno != EEXIST)
			break;
	}
	return memfd_create("ech3-admission", MFD_CLOEXEC);
}

static struct adm *map_region(int fd, size_t size, char *err, size_t errlen)
{
	struct adm *a = malloc(sizeof(*a));
	void *p;

	if (!a) {
		set_err(err, errlen, "malloc", errno);
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		set_err(err, errlen, "mmap", errno);
		free(a);
		return NULL;
	}
	a->r = p;
	a->size = size;
	a->fd = fd;
	return a;
}

static int init_region(struct adm_region *r, size_t size)
{
	if (getrandom(r->key, sizeof(r->key), 0) != sizeof(r->key))
		return -1;
	if (sem_init(&r->sem, 1, 1) != 0)
		return -1;
	r->size = size;
	r->version = ADM_VERSION;
	r->magic = ADM_MAGIC;
	return 0;
}

struct adm *adm_create(char *err, size_t errlen)
{
	size_t size = adm_region_size();
	struct adm *a;
	int fd = open_region_fd();

	if (fd < 0) {
		set_err(err, errlen, "shm_open", errno);
		return NULL;
	}
	if (ftruncate(fd, (off_t)size) != 0) {
		set_err(err, errlen, "ftruncate", errno);
		close(fd);
		return NULL;
	}
	a = map_region(fd, size, err, errlen);
	if (!a) {
		close(fd);
		return NULL;
	}
	if (init_region(a->r, size) != 0) {
		set_err(err, errlen, "init", errno);
		adm_destroy(a);
		return NULL;
	}
	return a;
}

struct adm *adm_attach(int fd, char *err, size_t errlen)
{
	size_t size = adm_region_size();
	struct stat st;
	struct adm *a;
	int dup_fd;

	if (fstat(fd, &st) != 0 || (size_t)st.st_size != size) {
		set_err(err, errlen, "attach", EINVAL);
		return NULL;
	}
	dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0) {
		set_err(err, errlen, "dup", errno);
		return NULL;
	}
	a = map_region(dup_fd, size, err, errlen);
	if (!a) {
		close(dup_fd);
		return NULL;
	}
	if (a->r->magic != ADM_MAGIC || a->r->version != ADM_VERSION ||
	    a->r->size != size) {
		set_err(err, errlen, "attach", EPROTO);
		adm_destroy(a);
		return NULL;
	}
	return a;
}

void adm_destroy(struct adm *a)
{
	if (!a)
		return;
	munmap(a->r, a->size);
	close(a->fd);
	free(a);
}

int adm_fd(const struct adm *a)
{
	return a->fd;
}

long adm_resident_bytes(const struct adm *a)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t pages, n = 0;
	unsigned char *vec;

	if (pg <= 0)
		return -1;
	pages = a->size / (size_t)pg;
	vec = malloc(pages);
	if (!vec)
		return -1;
	if (mincore(a->r, a->size, vec) != 0) {
		free(vec);
		return -1;
	}
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	return (long)(n * (size_t)pg);
}

/* ---- limits ---- */

static long clean_count(long v, long max)
{
	if (v < 0)
		return 0;
	return v > max ? max : v;
}

static double clean_rate(double v)
{
	if (!(v > 0))		/* also NaN */
		return 0;
	return v > RATE_MAX ? RATE_MAX : v;
}

static long clean_burst(long burst, double rate)
{
	if (rate <= 0)
		return burst < 0 ? 0 : burst;
	if (burst < 1)
		return 1;
	return burst > (long)RATE_MAX ? (long)RATE_MAX : burst;
}

void adm_set_limits(struct adm *a, const struct adm_limits *l)
{
	struct adm_shared_limits *s = &a->r->lim;
	double ip_rate = clean_rate(l->ip_rate);
	double g_rate = clean_rate(l->global_rate);

	atomic_store(&s->max_conn, clean_count(l->max_conn, ADM_MAX_SLOTS));
	atomic_store(&s->per_ip, clean_count(l->per_ip, ADM_MAX_SLOTS));
	atomic_store(&s->per_subject,
		     clean_count(l->per_subject, ADM_MAX_SLOTS));
	atomic_store(&s->ip_burst, clean_burst(l->ip_burst, ip_rate));
	atomic_store(&s->global_burst, clean_burst(l->global_burst, g_rate));
	atomic_store(&s->ip_rate, ip_rate);
	atomic_store(&s->global_rate, g_rate);
}

void adm_get_limits(const struct adm *a, struct adm_limits *out)
{
	const struct adm_shared_limits *s = &a->r->lim;

	out->max_conn = atomic_load(&s->max_conn);
	out->per_ip = atomic_load(&s->per_ip);
	out->per_subject = atomic_load(&s->per_subject);
	out->ip_burst = atomic_load(&s->ip_burst);
	out->global_burst = atomic_load(&s->global_burst);
	out->ip_rate = atomic_load(&s->ip_rate);
	out->global_rate = atomic_load(&s->global_rate);
}

long adm_max_conn(const struct adm *a)
{
	return atomic_load(&a->r->lim.max_conn);
}

/* ---- cells ---- */

int adm_cell_claim(struct adm *a, pid_t pid)
{
	struct adm_region *r = a->r;
	int hwm = atomic_load(&r->cells_hwm), i;

	if (pid <= 0)
		return -1;
	for (i = 0; i < hwm; i++)
		if (atomic_load(&r->cells[i].state) == CELL_FREE)
			break;
	if (i == ADM_MAX_CELLS)
		return -1;
	struct adm_cell *c = &r->cells[i];

	atomic_store(&c->pid, pid);
	atomic_store(&c->window, 0);
	atomic_store(&c->pending, 0);
	atomic_store(&c->state, CELL_LIVE);
	if (i == hwm)
		atomic_store(&r->cells_hwm, hwm + 1);
	return i;
}

void adm_cell_set_pid(struct adm *a, int cell, pid_t pid)
{
	struct adm_cell *c = cell_at(a->r, cell);

	if (c && pid > 0)
		atomic_store(&c->pid, pid);
}

long adm_workers_alive(const struct adm *a)
{
	const struct adm_region *r = a->r;
	int hwm = atomic_load(&r->cells_hwm);
	long n = 0;

	for (int i = 0; i < hwm; i++)
		n += atomic_load(&r->cells[i].state) == CELL_LIVE;
	return n;
}

/* ---- token buckets ---- */

static double bucket_level(double tokens, int64_t last, int64_t now,
			   double rate, double burst)
{
	if (now > last)
		tokens += (double)(now - last) * rate / 1000.0;
	return tokens > burst ? burst : tokens;
}

static long retry_secs(double level, double rate)
{
	double s = (1.0 - level) / rate;
	long whole;

	if (!(s < (double)RETRY_MAX_S))
		return RETRY_MAX_S;
	whole = (long)s;
	if ((double)whole < s - 1e-9)	/* not 6 for 5.000000000000001 */
		whole++;
	return whole < 1 ? 1 : whole;
}

/* ---- the per-address table ---- */

static int addr_key(const struct sockaddr *sa, uint8_t key[16])
{
	if (!sa)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		memset(key, 0, 10);
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &in->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		memcpy(key, &in6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

static int ip_evictable(const struct adm_ip *e, const struct adm_limits *l,
			int64_t now)
{
	if (e->open != 0)
		return 0;
	if (l->ip_rate <= 0)
		return 1;
	return bucket_level(e->tokens, e->last_ms, now, l->ip_rate,
			    (double)l->ip_burst) >= (double)l->ip_burst;
}

/* The entry of key, made if need be (replacing an idle one in its window);
 * -1 when the window is full of busy entries. */
static int ip_lookup(struct adm_region *r, const uint8_t key[16],
		     const struct adm_limits *l, int64_t now)
{
	uint64_t h = siphash(r->key, key, 16);
	int cand = -1;

	for (int j = 0; j < PROBE_WINDOW; j++) {
		int idx = (int)((h + (uint64_t)j) & (ADM_IP_ENTRIES - 1));
		struct adm_ip *e = &r->ips[idx];

		if (!e->used) {
			if (cand < 0)
				cand = idx;
			break;
		}
		if (memcmp(e->addr, key, 16) == 0)
			return idx;
		if (cand < 0 && ip_evictable(e, l, now))
			cand = idx;
	}
	if (cand < 0)
		return -1;
	struct adm_ip *e = &r->ips[cand];

	memcpy(e->addr, key, 16);
	e->open = 0;
	e->tokens = (double)l->ip_burst;
	e->last_ms = now;
	atomic_signal_fence(memory_order_seq_cst);
	e->used = 1;
	return cand;
}

/* ---- the per-subject table ---- */

static int subj_lookup(struct adm_region *r, const char *subject)
{
	size_t len = strlen(subject);
	size_t keep = len > ADM_SUBJ_MAX ? ADM_SUBJ_MAX : len;
	uint32_t len32 = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
	uint64_t h = siphash(r->key, subject, len);
	int cand = -1;

	for (int j = 0; j < PROBE_WINDOW; j++) {
		int idx = (int)((h + (uint64_t)j) & (ADM_SUBJ_ENTRIES - 1));
		struct adm_subj *e = &r->subjs[idx];

		if (!e->used) {
			if (cand < 0)
				cand = idx;
			break;
		}
		if (e->hash == h && e->len == len32 &&
		    memcmp(e->name, subject, keep) == 0)
			return idx;
		if (cand < 0 && e->open == 0)
			cand = idx;
	}
	if (cand < 0)
		return -1;
	struct adm_subj *e = &r->subjs[cand];

	e->hash = h;
	e->len = len32;
	memcpy(e->name, subject, keep);
	e->name[keep] = '\0';
	e->open = 0;
	atomic_signal_fence(memory_order_seq_cst);
	e->used = 1;
	return cand;
}

/* ---- slots ---- */

static int slot_alloc(struct adm_region *r)
{
	if (r->free_head > 0 && r->free_head <= ADM_MAX_SLOTS) {
		int idx = r->free_head - 1;

		r->free_head = r->slots[idx].next;
		return idx;
	}
	if (r->slots_hwm < ADM_MAX_SLOTS)
		return r->slots_hwm++;
	return -1;
}

static void open_add(struct adm_region *r, long d)
{
	atomic_store_explicit(&r->open,
			      atomic_load_explicit(&r->open,
						   memory_order_relaxed) + d,
			      memory_order_relaxed);
}

/* Slot first, counts after: a count never exceeds its references. */
static int slot_take(struct adm_region *r, int cell, int ipx, int sx)
{
	int idx = slot_alloc(r);

	if (idx < 0)
		return -1;
	struct adm_slot *s = &r->slots[idx];

	s->ip = ipx + 1;
	s->subj = sx + 1;
	s->next = 0;
	s->owner = cell + 1;
	atomic_signal_fence(memory_order_seq_cst);
	if (ipx >= 0)
		r->ips[ipx].open++;
	if (sx >= 0)
		r->subjs[sx].open++;
	r->cells[cell].open++;
	open_add(r, 1);
	return idx;
}

static int ref_ok(int32_t ref, int n)
{
	return ref > 0 && ref <= n;
}

/* Counts first, slot after. Ignores a slot the cell does not own. */
static void slot_release(struct adm_region *r, int idx, int cell)
{
	struct adm_slot *s = &r->slots[idx];

	if (s->owner != cell + 1)
		return;
	if (ref_ok(s->ip, ADM_IP_ENTRIES) && r->ips[s->ip - 1].open > 0)
		r->ips[s->ip - 1].open--;
	if (ref_ok(s->subj, ADM_SUBJ_ENTRIES) &&
	    r->subjs[s->subj - 1].open > 0)
		r->subjs[s->subj - 1].open--;
	if (r->cells[cell].open > 0)
		r->cells[cell].open--;
	open_add(r, -1);
	atomic_signal_fence(memory_order_seq_cst);
	s->owner = 0;
	s->ip = 0;
	s->subj = 0;
	s->next = r->free_head;
	r->free_head = idx + 1;
}

static void pending_push(struct adm_cell *c, struct adm_slot *s, int idx)
{
	int32_t head = atomic_load_explicit(&c->pending, memory_order_relaxed);

	do
		atomic_store_explicit(&s->pnext, head, memory_order_relaxed);
	while (!atomic_compare_exchange_weak_explicit(
		&c->pending, &head, idx + 1, memory_order_release,
		memory_order_relaxed));
}

/* Under the lock: performs the cell's queued releases. Only pushes race
 * with this (no pops), so the list cannot suffer ABA. */
static int pending_drain(struct adm_region *r, int cell)
{
	int32_t ref = atomic_exchange_explicit(&r->cells[cell].pending, 0,
					       memory_order_acquire);
	int n = 0;

	while (ref_ok(ref, ADM_MAX_SLOTS)) {
		int32_t next = atomic_load_explicit(&r->slots[ref - 1].pnext,
						    memory_order_relaxed);

		slot_release(r, ref - 1, cell);
		n++;
		ref = next;
	}
	return n;
}

/* ---- admission ---- */

static void load_limits(const struct adm_region *r, struct adm_limits *l)
{
	const struct adm_shared_limits *s = &r->lim;

	l->max_conn = atomic_load_explicit(&s->max_conn, memory_order_relaxed);
	l->per_ip = atomic_load_explicit(&s->per_ip, memory_order_relaxed);
	l->per_subject =
		atomic_load_explicit(&s->per_subject, memory_order_relaxed);
	l->ip_burst = atomic_load_explicit(&s->ip_burst, memory_order_relaxed);
	l->global_burst =
		atomic_load_explicit(&s->global_burst, memory_order_relaxed);
	l->ip_rate = atomic_load_explicit(&s->ip_rate, memory_order_relaxed);
	l->global_rate =
		atomic_load_explicit(&s->global_rate, memory_order_relaxed);
}

static void count_cell(struct adm_cell *c, enum adm_counter k, uint64_t n)
{
	atomic_fetch_add_explicit(&c->t.counters[k], n, memory_order_relaxed);
}

/* Finds (or makes) the tunnel's per-address and per-subject entries;
 * -1 where there is none, flagging full tables in t. */
static void find_entries(struct adm_region *r, int cell,
			 const struct adm_limits *l,
			 const struct sockaddr *client, const char *subject,
			 int64_t now, struct adm_ticket *t, int *ipx, int *sx)
{
	uint8_t key[16];

	*ipx = -1;
	*sx = -1;
	if (addr_key(client, key) == 0) {
		*ipx = ip_lookup(r, key, l, now);
		if (*ipx < 0) {
			t->flags |= ADM_TF_IP_UNTRACKED;
			atomic_fetch_add(&r->ip_full, 1);
			count_cell(&r->cells[cell], ADM_C_TABLE_FULL, 1);
		}
	}
	if (subject) {
		*sx = subj_lookup(r, subject);
		if (*sx < 0) {
			t->flags |= ADM_TF_SUBJECT_UNTRACKED;
			atomic_fetch_add(&r->subj_full, 1);
			count_cell(&r->cells[cell], ADM_C_TABLE_FULL, 1);
		}
	}
}

/* Checks both buckets without taking tokens; rate verdict or ADM_OK. */
static enum adm_verdict check_rates(struct adm_region *r,
				    const struct adm_limits *l, int ipx,
				    int64_t now, long *retry)
{
	if (ipx >= 0 && l->ip_rate > 0) {
		struct adm_ip *e = &r->ips[ipx];
		double lv = bucket_level(e->tokens, e->last_ms, now,
					 l->ip_rate, (double)l->ip_burst);

		if (lv < 1.0) {
			*retry = retry_secs(lv, l->ip_rate);
			return ADM_RATE_IP;
		}
	}
	if (l->global_rate > 0) {
		double lv = bucket_level(r->g_tokens, r->g_last_ms, now,
					 l->global_rate,
					 (double)l->global_burst);

		if (lv < 1.0) {
			*retry = retry_secs(lv, l->global_rate);
			return ADM_RATE_GLOBAL;
		}
	}
	return ADM_OK;
}

static void take_tokens(struct adm_region *r, const struct adm_limits *l,
			int ipx, int64_t now)
{
	if (ipx >= 0 && l->ip_rate > 0) {
		struct adm_ip *e = &r->ips[ipx];

		e->tokens = bucket_level(e->tokens, e->last_ms, now,
					 l->ip_rate, (double)l->ip_burst) - 1.0;
		if (now > e->last_ms)
			e->last_ms = now;
	}
	if (l->global_rate > 0) {
		r->g_tokens = bucket_level(r->g_tokens, r->g_last_ms, now,
					   l->global_rate,
					   (double)l->global_burst) - 1.0;
		if (now > r->g_last_ms)
			r->g_last_ms = now;
	}
}

static enum adm_verdict admit_locked(struct adm_region *r, int cell,
				     const struct sockaddr *client,
				     const char *subject, struct adm_ticket *t,
				     long *retry, int64_t now)
{
	struct adm_limits l;
	enum adm_verdict v;
	int ipx, sx, idx;

	load_limits(r, &l);
	if (atomic_load(&r->open) >= (l.max_conn > 0 ? l.max_conn
						      : ADM_MAX_SLOTS))
		return ADM_FULL;
	find_entries(r, cell, &l, client, subject, now, t, &ipx, &sx);
	if (ipx >= 0 && l.per_ip > 0 && r->ips[ipx].open >= l.per_ip)
		return ADM_PER_IP;
	if (sx >= 0 && l.per_subject > 0 &&
	    r->subjs[sx].open >= l.per_subject)
		return ADM_PER_SUBJECT;
	v = check_rates(r, &l, ipx, now, retry);
	if (v != ADM_OK)
		return v;
	idx = slot_take(r, cell, ipx, sx);
	if (idx < 0)
		return ADM_FULL;
	take_tokens(r, &l, ipx, now);
	t->slot = idx;
	t->cell = cell;
	return ADM_OK;
}

static void count_verdict(struct adm_cell *c, enum adm_verdict v)
{
	switch (v) {
	case ADM_OK:
		count_cell(c, ADM_C_ADMITTED, 1);
		break;
	case ADM_RATE_IP:
	case ADM_RATE_GLOBAL:
		count_cell(c, ADM_C_REFUSED_RATE, 1);
		break;
	default:
		count_cell(c, ADM_C_REFUSED_LIMIT, 1);
		break;
	}
}

enum adm_verdict adm_admit_at(struct adm *a, int cell,
			      const struct sockaddr *client, const char *subject,
			      struct adm_ticket *t, long *retry_after_s,
			      int64_t now)
{
	struct adm_region *r = a->r;
	struct adm_cell *c = cell_at(r, cell);
	enum adm_verdict v = ADM_BUSY;
	long retry = 1;

	if (retry_after_s)
		*retry_after_s = 1;
	if (!t || !c)
		return ADM_BUSY;
	t->slot = -1;
	t->cell = cell;
	t->flags = 0;
	if (lock_acquire(r, c, ADM_LOCK_TIMEOUT_MS, 1) == 0) {
		pending_drain(r, cell);
		v = admit_locked(r, cell, client, subject, t, &retry, now);
		lock_release(r, c);
	}
	count_verdict(c, v);
	if (retry_after_s)
		*retry_after_s = retry;
	return v;
}

enum adm_verdict adm_admit(struct adm *a, int cell,
			   const struct sockaddr *client, const char *subject,
			   struct adm_ticket *t, long *retry_after_s)
{
	return adm_admit_at(a, cell, client, subject, t, retry_after_s,
			    now_ms());
}

void adm_release(struct adm *a, struct adm_ticket *t)
{
	struct adm_region *r = a->r;
	struct adm_cell *c;
	int slot;

	if (!t || t->slot < 0)
		return;
	slot = t->slot;
	t->slot = -1;
	c = cell_at(r, t->cell);
	if (!c || slot >= ADM_MAX_SLOTS)
		return;
	if (lock_acquire(r, c, ADM_LOCK_TIMEOUT_MS, 1) != 0) {
		pending_push(c, &r->slots[slot], slot);
		return;
	}
	pending_drain(r, t->cell);
	slot_release(r, slot, t->cell);
	lock_release(r, c);
}

int adm_flush(struct adm *a, int cell)
{
	struct adm_region *r = a->r;
	struct adm_cell *c = cell_at(r, cell);
	int n;

	if (!c)
		return -1;
	if (atomic_load(&c->pending) == 0)
		return 0;
	if (lock_acquire(r, c, ADM_LOCK_TIMEOUT_MS, 1) != 0)
		return -1;
	n = pending_drain(r, cell);
	lock_release(r, c);
	return n;
}

long adm_open(const struct adm *a)
{
	return atomic_load(&a->r->open);
}

int adm_table_full_events(const struct adm *a)
{
	return atomic_load(&a->r->ip_full);
}

int adm_subject_full_events(const struct adm *a)
{
	return atomic_load(&a->r->subj_full);
}

/* ---- crash repair ---- */

static int pid_gone(pid_t pid)
{
	return pid > 0 && kill(pid, 0) == -1 && errno == ESRCH;
}

/* The master becomes the holder of a lock whose holder cannot post it. */
static void lock_take_over(struct adm_region *r)
{
	lock_record(r);
}

static int sem_is_taken(sem_t *s)
{
	int v = 1;

	return sem_getvalue(s, &v) == 0 && v <= 0;
}

/*
 * Takes the lock for reclaiming dead cell d. *repaired says the lock was
 * taken over from a dead holder, so the data it guards may be half-updated:
 *  - the recorded holder is the dead worker, or any pid that no longer
 *    exists: it held the semaphore (the holder is recorded only after the
 *    wait succeeds and cleared before the post), and will never post it;
 *  - nobody is recorded, the dead worker had a thread inside the
 *    unrecorded windows (sem_clockwait returned .. holder stored, or holder
 *    cleared .. sem_post), and for a whole STALL_MS the semaphore stayed
 *    taken with no acquisition at all (lock_seq unchanged) and no holder
 *    appearing: a live process passes those windows in nanoseconds, so
 *    the one stuck there is the dead one. (A live thread descheduled for
 *    200 ms exactly there would be misjudged; that needs both a stall of
 *    that length within a few instructions and a worker death at the same
 *    moment.)
 * A live recorded holder is waited for, never overridden: -1 after
 * RECLAIM_BUDGET_MS.
 */
static int lock_for_reclaim(struct adm_region *r, struct adm_cell *d,
			    int *repaired)
{
	pid_t dead = atomic_load(&d->pid);
	int64_t deadline = now_ms() + RECLAIM_BUDGET_MS;

	*repaired = 0;
	for (;;) {
		pid_t h = atomic_load(&r->holder);
		uint64_t seq0 = atomic_load(&r->lock_seq);

		if (h != 0 && (h == dead || pid_gone(h))) {
			lock_take_over(r);
			*repaired = 1;
			return 0;
		}
		if (lock_acquire(r, NULL, STALL_MS, 1) == 0)
			return 0;
		if (h == 0 && atomic_load(&r->holder) == 0 &&
		    atomic_load(&r->lock_seq) == seq0 &&
		    atomic_load(&d->window) > 0 && sem_is_taken(&r->sem)) {
			lock_take_over(r);
			*repaired = 1;
			return 0;
		}
		if (now_ms() >= deadline)
			return -1;
	}
}

/* Normal reclaim: give back every slot the cell owns. */
static void release_cell_slots(struct adm_region *r, int cell)
{
	for (int i = 0; i < r->slots_hwm; i++)
		if (r->slots[i].owner == cell + 1)
			slot_release(r, i, cell);
}

static void fold_totals(struct adm_totals *to, struct adm_totals *from)
{
	for (int k = 0; k < ADM_C__COUNT; k++)
		atomic_fetch_add_explicit(
			&to->counters[k],
			atomic_exchange(&from->counters[k], 0),
			memory_order_relaxed);
	for (int h = 0; h < ADM_H__COUNT; h++) {
		for (int b = 0; b <= ADM_HIST_BUCKETS; b++)
			atomic_fetch_add_explicit(
				&to->hist[h][b],
				atomic_exchange(&from->hist[h][b], 0),
				memory_order_relaxed);
		atomic_fetch_add_explicit(&to->hist_us[h],
					  atomic_exchange(&from->hist_us[h], 0),
					  memory_order_relaxed);
	}
}

/* Seqlock writer (the master only): readers retry while this runs. */
static void fold_and_free_cell(struct adm_region *r, struct adm_cell *c)
{
	uint64_t s = atomic_load_explicit(&r->fold_seq, memory_order_relaxed);

	atomic_store_explicit(&r->fold_seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	fold_totals(&r->retired, &c->t);
	atomic_store(&c->pending, 0);
	atomic_store(&c->window, 0);
	atomic_store(&c->pid, 0);
	c->open = 0;
	atomic_store(&c->state, CELL_FREE);
	atomic_store_explicit(&r->fold_seq, s + 2, memory_order_release);
}

static void rebuild_clear(struct adm_region *r)
{
	int cells = atomic_load(&r->cells_hwm);

	for (int i = 0; i < r->slots_hwm; i++) {
		struct adm_slot *s = &r->slots[i];

		if (ref_ok(s->ip, ADM_IP_ENTRIES))
			r->ips[s->ip - 1].open = 0;
		if (ref_ok(s->subj, ADM_SUBJ_ENTRIES))
			r->subjs[s->subj - 1].open = 0;
	}
	for (int c = 0; c < cells; c++)
		r->cells[c].open = 0;
}

static int slot_live(const struct adm_region *r, const struct adm_slot *s)
{
	return ref_ok(s->owner, ADM_MAX_CELLS) &&
	       atomic_load(&r->cells[s->owner - 1].state) == CELL_LIVE;
}

/*
 * After a take-over: every count from the slot records alone. Slots whose
 * owner is not a live cell become free; the free list is made anew. Only
 * entries some slot references can hold a count (counts go up after the
 * reference is written and down before it is dropped), so clearing those
 * is enough and the rest of the tables is never touched.
 */
static void rebuild(struct adm_region *r)
{
	long open = 0;

	if (r->slots_hwm < 0 || r->slots_hwm > ADM_MAX_SLOTS)
		r->slots_hwm = ADM_MAX_SLOTS;
	rebuild_clear(r);
	r->free_head = 0;
	for (int i = r->slots_hwm - 1; i >= 0; i--) {
		struct adm_slot *s = &r->slots[i];

		if (!slot_live(r, s)) {
			s->owner = s->ip = s->subj = 0;
			s->next = r->free_head;
			r->free_head = i + 1;
			continue;
		}
		open++;
		r->cells[s->owner - 1].open++;
		if (ref_ok(s->ip, ADM_IP_ENTRIES))
			r->ips[s->ip - 1].open++;
		else
			s->ip = 0;
		if (ref_ok(s->subj, ADM_SUBJ_ENTRIES))
			r->subjs[s->subj - 1].open++;
		else
			s->subj = 0;
	}
	atomic_store(&r->open, open);
}

int adm_cell_reclaim(struct adm *a, int cell)
{
	struct adm_region *r = a->r;
	struct adm_cell *c = cell_at(r, cell);
	int repaired;

	if (!c) {
		errno = EINVAL;
		return -1;
	}
	if (atomic_load(&c->state) != CELL_LIVE)
		return 0;
	if (lock_for_reclaim(r, c, &repaired) != 0) {
		errno = EBUSY;
		return -1;
	}
	if (!repaired)
		release_cell_slots(r, cell);
	fold_and_free_cell(r, c);
	if (repaired)
		rebuild(r);
	lock_release(r, NULL);
	return 0;
}

/* ---- counters and histograms ---- */

void adm_count(struct adm *a, int cell, enum adm_counter k, uint64_t n)
{
	struct adm_cell *c = cell_at(a->r, cell);

	if (c && (unsigned)k < ADM_C__COUNT)
		count_cell(c, k, n);
}

void adm_count_master(struct adm *a, enum adm_counter k, uint64_t n)
{
	if ((unsigned)k < ADM_C__COUNT)
		atomic_fetch_add_explicit(&a->r->retired.counters[k], n,
					  memory_order_relaxed);
}

void adm_observe(struct adm *a, int cell, enum adm_hist h, double seconds)
{
	struct adm_cell *c = cell_at(a->r, cell);
	int b = 0;

	if (!c || (unsigned)h >= ADM_H__COUNT)
		return;
	if (!(seconds >= 0))	/* also NaN */
		seconds = 0;
	if (seconds > 1e9)
		seconds = 1e9;
	while (b < ADM_HIST_BUCKETS && seconds > adm_hist_bounds[h][b])
		b++;
	atomic_fetch_add_explicit(&c->t.hist[h][b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->t.hist_us[h],
				  (uint64_t)(seconds * 1e6 + 0.5),
				  memory_order_relaxed);
}

static uint64_t ld(const _Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

/* Adds one totals block into the plain accumulators. */
static void add_totals(const struct adm_totals *t, uint64_t *counters,
		       int h, uint64_t *buckets, uint64_t *us)
{
	if (counters)
		for (int k = 0; k < ADM_C__COUNT; k++)
			counters[k] += ld(&t->counters[k]);
	if (buckets) {
		for (int b = 0; b <= ADM_HIST_BUCKETS; b++)
			buckets[b] += ld(&t->hist[h][b]);
		*us += ld(&t->hist_us[h]);
	}
}

/* Seqlock reader over retired + every cell ever claimed (free ones are
 * zero). Gives up waiting for a fold after SUM_TRIES and uses what it saw. */
static void sum_all(const struct adm_region *r, uint64_t *counters, int h,
		    uint64_t *buckets, uint64_t *us)
{
	for (int tries = 0;; tries++) {
		uint64_t s1 = atomic_load_explicit(&r->fold_seq,
						   memory_order_acquire);
		int cells = atomic_load(&r->cells_hwm);

		if ((s1 & 1) && tries < SUM_TRIES) {
			sched_yield();
			continue;
		}
		if (counters)
			memset(counters, 0, ADM_C__COUNT * sizeof(*counters));
		if (buckets) {
			memset(buckets, 0,
			       (ADM_HIST_BUCKETS + 1) * sizeof(*buckets));
			*us = 0;
		}
		add_totals(&r->retired, counters, h, buckets, us);
		for (int c = 0; c < cells; c++)
			add_totals(&r->cells[c].t, counters, h, buckets, us);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&r->fold_seq, memory_order_relaxed) ==
			    s1 ||
		    tries >= SUM_TRIES)
			return;
	}
}

void adm_sum(const struct adm *a, uint64_t out[ADM_C__COUNT])
{
	sum_all(a->r, out, 0, NULL, NULL);
}

void adm_hist_sum(const struct adm *a, enum adm_hist h,
		  uint64_t buckets[ADM_HIST_BUCKETS + 1], double *sum,
		  uint64_t *count)
{
	uint64_t us = 0;

	if ((unsigned)h >= ADM_H__COUNT) {
		memset(buckets, 0, (ADM_HIST_BUCKETS + 1) * sizeof(*buckets));
		*sum = 0;
		*count = 0;
		return;
	}
	sum_all(a->r, NULL, (int)h, buckets, &us);
	for (int b = 1; b <= ADM_HIST_BUCKETS; b++)
		buckets[b] += buckets[b - 1];
	*count = buckets[ADM_HIST_BUCKETS];
	*sum = (double)us / 1e6;
}
