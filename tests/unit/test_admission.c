/*
 * test_admission.c - unit tests of shared/admission.c: limits, token
 * buckets (fake and real clock), the per-address and per-subject tables
 * filling up and evicting, counters and histograms, and multi-process
 * tests with fork(): concurrent admission, SIGKILLed workers, and workers
 * SIGKILLed while holding the lock. Every test runs under alarm(30).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../shared/admission.h"
#include "../../shared/util.h"

/* ---- helpers ---- */

static struct sockaddr_storage v4(const char *s)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(40000);
	assert_int_equal(inet_pton(AF_INET, s, &in->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *s)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(40000);
	assert_int_equal(inet_pton(AF_INET6, s, &in6->sin6_addr), 1);
	return ss;
}

/* A distinct IPv6 address per n. */
static struct sockaddr_storage v6n(unsigned n)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "2001:db8:%x::%x", (n >> 16) & 0xffff,
		 n & 0xffff);
	return v6(buf);
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static struct adm *new_adm(const struct adm_limits *l, int *cell)
{
	char err[256] = "";
	struct adm *a = adm_create(err, sizeof(err));

	if (!a)
		fail_msg("adm_create: %s", err);
	adm_set_limits(a, l);
	*cell = adm_cell_claim(a, getpid());
	assert_int_equal(*cell, 0);
	return a;
}

static enum adm_verdict admit_at(struct adm *a, int cell,
				 struct sockaddr_storage *ss, const char *subj,
				 struct adm_ticket *t, long *retry, int64_t now)
{
	return adm_admit_at(a, cell, ss ? SA(*ss) : NULL, subj, t, retry, now);
}

static int setup(void **state)
{
	(void)state;
	alarm(30);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	alarm(0);
	return 0;
}

/* ---- worker-like child processes ---- */

struct kid {
	pid_t pid;
	int cell;
	int to_kid;	/* parent writes "go" (the cell index) */
	int from_kid;	/* child writes one byte per event */
};

typedef int (*kid_fn)(struct adm *a, int cell, int out, void *arg);

/* Forks a child that waits for kid_go, then runs fn and exits with its
 * return value. The parent claims its cell, as the master does. */
static void kid_spawn(struct kid *k, struct adm *a, kid_fn fn, void *arg)
{
	int down[2], up[2];
	int cell;

	assert_int_equal(pipe(down), 0);
	assert_int_equal(pipe(up), 0);
	k->pid = fork();
	assert_true(k->pid >= 0);
	if (k->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(down[1]);
		close(up[0]);
		alarm(20);
		if (read(down[0], &cell, sizeof(cell)) != sizeof(cell))
			_exit(250);
		_exit(fn(a, cell, up[1], arg));
	}
	close(down[0]);
	close(up[1]);
	k->to_kid = down[1];
	k->from_kid = up[0];
	k->cell = adm_cell_claim(a, k->pid);
	assert_true(k->cell >= 0);
}

static void kid_go(struct kid *k)
{
	assert_int_equal(write(k->to_kid, &k->cell, sizeof(k->cell)),
			 sizeof(k->cell));
}

/* Waits up to ms for the child's next byte; returns it or -1. */
static int kid_event(struct kid *k, int ms)
{
	struct pollfd p = { .fd = k->from_kid, .events = POLLIN };
	unsigned char c;

	if (poll(&p, 1, ms) != 1 || read(k->from_kid, &c, 1) != 1)
		return -1;
	return c;
}

static int kid_reap(struct kid *k)
{
	int st;

	assert_int_equal(waitpid(k->pid, &st, 0), k->pid);
	close(k->to_kid);
	close(k->from_kid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void kid_kill(struct kid *k)
{
	assert_int_equal(kill(k->pid, SIGKILL), 0);
	assert_int_equal(kid_reap(k), 128 + SIGKILL);
}

static void kid_say(int out, char c)
{
	if (write(out, &c, 1) != 1)
		_exit(251);
}

/* ---- basics ---- */

static void test_verdict_names(void **state)
{
	(void)state;
	assert_string_equal(adm_verdict_name(ADM_OK), "ok");
	assert_string_equal(adm_verdict_name(ADM_FULL), "max_conn");
	assert_string_equal(adm_verdict_name(ADM_PER_IP), "per_ip");
	assert_string_equal(adm_verdict_name(ADM_RATE_IP), "rate_ip");
	assert_string_equal(adm_verdict_name(ADM_RATE_GLOBAL), "rate_global");
	assert_string_equal(adm_verdict_name(ADM_PER_SUBJECT), "per_subject");
	assert_string_equal(adm_verdict_name(ADM_BUSY), "busy");
	assert_string_equal(adm_verdict_name((enum adm_verdict)99), "unknown");
}

static int count_dev_shm(const char *prefix)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static void test_create_leaves_no_name(void **state)
{
	struct adm_limits l = { .max_conn = 3 };
	char prefix[64];
	struct adm *a, *b;
	char err[256];
	int cell;

	(void)state;
	snprintf(prefix, sizeof(prefix), "ech3-%ld-", (long)getpid());
	a = new_adm(&l, &cell);
	assert_int_equal(count_dev_shm(prefix), 0);
	assert_true(adm_fd(a) >= 0);
	assert_true(fcntl(adm_fd(a), F_GETFD) & FD_CLOEXEC);
	assert_true(adm_region_size() > 1024 * 1024);

	/* a second mapping of the same fd sees the same region */
	b = adm_attach(adm_fd(a), err, sizeof(err));
	assert_non_null(b);
	struct adm_ticket t;
	assert_int_equal(adm_admit(b, cell, NULL, NULL, &t, NULL), ADM_OK);
	assert_int_equal(adm_open(a), 1);
	assert_int_equal(adm_max_conn(b), 3);
	adm_release(a, &t);
	assert_int_equal(adm_open(b), 0);
	adm_destroy(b);
	adm_destroy(a);

	/* attach refuses something that is not a region */
	assert_null(adm_attach(0, err, sizeof(err)));
	assert_true(strlen(err) > 0);
}

static void test_idle_touches_few_pages(void **state)
{
	struct adm_limits l = { .max_conn = 100, .per_ip = 10, .ip_rate = 5,
				.ip_burst = 10, .per_subject = 5 };
	struct sockaddr_storage ss = v4("192.0.2.1");
	struct adm_ticket t;
	struct adm *a;
	long idle, used;
	int cell;

	(void)state;
	a = new_adm(&l, &cell);
	for (int i = 0; i < 7; i++)
		assert_true(adm_cell_claim(a, getpid()) > 0);
	idle = adm_resident_bytes(a);
	assert_int_equal(admit_at(a, cell, &ss, "alice", &t, NULL, 1000),
			 ADM_OK);
	adm_release(a, &t);
	used = adm_resident_bytes(a);
	print_message("region %zu bytes; idle with 8 workers: %ld bytes "
		      "resident; after one tunnel: %ld\n",
		      adm_region_size(), idle, used);
	assert_true(idle >= 0 && idle <= 8192);
	assert_true(used >= idle && used <= 32768);
	adm_destroy(a);
}

/* ---- limits ---- */

static void test_max_conn_exact(void **state)
{
	struct adm_limits l = { .max_conn = 5 };
	struct adm_ticket t[6], extra;
	struct sockaddr_storage ss = v4("198.51.100.7");
	struct adm *a;
	long retry = 0;
	int cell;

	(void)state;
	a = new_adm(&l, &cell);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(adm_admit(a, cell, SA(ss), NULL, &t[i], &retry),
				 ADM_OK);
		assert_true(t[i].slot >= 0);
	}
	assert_int_equal(adm_open(a), 5);
	assert_int_equal(adm_admit(a, cell, SA(ss), NULL, &t[5], &retry),
			 ADM_FULL);
	assert_int_equal(t[5].slot, -1);
	assert_int_equal(retry, 1);
	adm_release(a, &t[2]);
	assert_int_equal(adm_open(a), 4);
	assert_int_equal(adm_admit(a, cell, SA(ss), NULL, &t[2], NULL), ADM_OK);
	assert_int_equal(adm_admit(a, cell, SA(ss), NULL, &extra, NULL),
			 ADM_FULL);

	uint64_t c[ADM_C__COUNT];
	adm_sum(a, c);
	assert_int_equal(c[ADM_C_ADMITTED], 6);
	assert_int_equal(c[ADM_C_REFUSED_LIMIT], 2);
	assert_int_equal(c[ADM_C_REFUSED_RATE], 0);

	/* lowering the limit on reload refuses new ones, keeps open ones */
	l.max_conn = 2;
	adm_set_limits(a, &l);
	assert_int_equal(adm_admit(a, cell, SA(ss), NULL, &extra, NULL),
			 ADM_FULL);
	for (int i = 0; i < 5; i++)
		adm_release(a, &t[i]);
	assert_int_equal(adm_open(a), 0);
	adm_destroy(a);
}

static void test_max_conn_clamp_and_unlimited(void **state)
{
	struct adm_limits l = { .max_conn = 100000, .per_ip = -3,
				.ip_rate = -1 };
	struct adm_limits got;
	struct adm_ticket t[40];
	struct adm *a;
	int cell;

	(void)state;
	a = new_adm(&l, &cell);
	assert_int_equal(adm_max_conn(a), ADM_MAX_SLOTS);
	adm_get_limits(a, &got);
	assert_int_equal(got.per_ip, 0);
	assert_true(got.ip_rate == 0);

	l.max_conn = 0;		/* unlimited, still counted */
	l.global_rate = 3;
	l.global_burst = 0;	/* means 1 */
	adm_set_limits(a, &l);
	adm_get_limits(a, &got);
	assert_int_equal(got.global_burst, 1);
	l.global_rate = 0;
	adm_set_limits(a, &l);
	assert_int_equal(adm_max_conn(a), 0);
	for (int i = 0; i < 40; i++)
		assert_int_equal(adm_admit(a, cell, NULL, NULL, &t[i], NULL),
				 ADM_OK);
	assert_int_equal(adm_open(a), 40);
	for (int i = 0; i < 40; i++)
		adm_release(a, &t[i]);
	assert_int_equal(adm_open(a), 0);
	adm_destroy(a);
}

static void test_per_ip(void **state)
{
	struct adm_limits l = { .max_conn = 100, .per_ip = 2 };
	struct sockaddr_storage x = v4("203.0.113.5"), y = v4("203.0.113.6");
	struct adm_ticket t[3], u;
	struct adm *a;
	long retry = 0;
	int cell;

	(void)state;
	a = new_adm(&l, &cell);
	assert_int_equal(adm_admit(a, cell, SA(x), NULL, &t[0], &retry), ADM_OK);
	assert_int_equal(adm_admit(a, cell, SA(x), NULL, &t[1], &retry), ADM_OK);
	assert_int_equal(adm_admit(a, cell, SA(x), NULL, &t[2], &retry),
			 ADM_PER_IP);
	assert_int_equal(retry, 1);
	assert_int_equal(adm_admit(a, cell, SA(y), NULL, &u, NULL), ADM_OK);
	adm_release(a, &t[0]);
	assert_int_equal(adm_admit(a, cell, SA(x), NULL, &t[2], NULL), ADM_OK);
	assert_int_equal(adm_admit(a, cell, SA(x), NULL, &t[0], NULL),
			 ADM_PER_IP);
	assert_int_equal(adm_open(a), 3);
	adm_release(a, &t[1]);
	adm_release(a, &t[2]);
	adm_release(a, &u);
	assert_int_equal(adm_open(a), 0);
	adm_destroy(a);
}

static void test_per_subject(void **state)
{
	struct adm_limits l = { .max_conn = 100, .per_subject = 2 };
	struct adm_ticket t[3], b, n[5], l1, l2, l3;
	char long1[101], long2[101];
	struct adm *a;
	long retry = 0;
	int cell;

	(void)state;
	a = new_adm(&l, &cell);
	assert_int_equal(adm_admit(a, cell, NULL, "alice", &t[0], NULL), ADM_OK);
	assert_int_equal(adm_admit(a, cell, NULL, "alice", &t[1], NULL), ADM_OK);
	assert_int_equal(adm_admit(a, cell, NULL, "alice", &t[2], &retry),
			 ADM_PER_SUBJECT);
	assert_int_equal(retry, 1);
	assert_int_equal(adm_admit(a, cell, NULL, "bob", &b, NULL), ADM_OK);
	/* no subject: not limited */
	for (int i = 0; i < 5; i++)
		assert_int_equal(adm_admit(a, cell, NULL, NULL, &n[i], NULL),
				 ADM_OK);
	adm_release(a, &t[0]);
	assert_int_equal(adm_admit(a, cell, NULL, "alice", &t[0], NULL), ADM_OK);

	/* long subjects equal in the kept 63 bytes are still distinct */
	memset(long1, 'x', 100);
	long1[100] = '\0';
	memcpy(long2, long1, sizeof(long1));
	long2[99] = 'y';
	assert_int_equal(adm_admit(a, cell, NULL, long1, &l1, NULL), ADM_OK);
	assert_int_equal(adm_admit(a, cell, NULL, long1, &l2, NULL), ADM_OK);
	assert_int_equal(adm_admit(a, cell, NULL, long2, &l3, NULL), ADM_OK);
	adm_release(a, &l3);
	assert_int_equal(adm_admit(a, cell, NULL, long1, &l3, NULL),
			 ADM_PER_SUBJECT);
	adm_destroy(a);
}

static void test_ipv4_ipv6_distinct(void **state)
{
	struct adm_limits l = { .max_conn = 100, .per_ip = 1 };
	struct sockaddr_storage a4 = v4("10.0.0.1");
	struct sockaddr_storage a6 = v6("2001:db8::a00:1");
	struct sockaddr_storage compat = v6("::a00:1");
	struct sockaddr_storage mapped = v6("::ffff:10.0.0.1");
	struct sockaddr_storage loop6 = v6("::1");
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct adm_ticket t[8];
	struct adm *a;
	int cell;

	(void)state;
	a = new_adm(&l, &cell);
	assert_int_equal(adm_admit(a, cell, SA(a4), NULL, &t[0], NULL), ADM_OK);
	assert_int_equal(adm_admit(a, cell, SA(a6), NULL, &t[1], NULL), ADM_OK);
	assert_int_equal(adm_admit(a, cell, SA(compat), NULL, &t[2], NULL),
			 ADM_OK);
	assert_int_equal(adm_admit(a, cell, SA(loop6), NULL, &t[3], NULL),
			 ADM_OK);
	/* a v4-mapped IPv6 address is the IPv4 client itself */
	assert_int_equal(adm_admit(a, cell, SA(mapped), NULL, &t[4], NULL),
			 ADM_PER_IP);
	assert_int_equal(adm_admit(a, cell, SA(a4), NULL, &t[4], NULL),
			 ADM_PER_IP);
	/* other families and no address: no per-address accounting, no flag */
	assert_int_equal(adm_admit(a, cell, (const struct sockaddr *)&un, NULL,
				   &t[5], NULL), ADM_OK);
	assert_int_equal(adm_admit(a, cell, (const struct sockaddr *)&un, NULL,
				   &t[6], NULL), ADM_OK);
	assert_int_equal(t[6].flags, 0);
	assert_int_equal(adm_admit(a, cell, NULL, NULL, &t[7], NULL), ADM_OK);
	assert_int_equal(adm_table_full_events(a), 0);
	adm_release(a, &t[0]);
	assert_int_equal(adm_admit(a, cell, SA(mapped), NULL, &t[0], NULL),
			 ADM_OK);
	adm_destroy(a);
}

static void test_release_idempotent(void **state)
{
	struct adm_limits l = { .max_conn = 2 };
	struct adm_ticket t, copy, none = { .slot = -1 };
	struct adm *a;
	int cell;

	(void)state;
	a = new_adm(&l, &cell);
	assert_int_equal(adm_admit(a, cell, NULL, "s", &t, NULL), ADM_OK);
	copy = t;
	adm_release(a, &t);
	assert_int_equal(t.slot, -1);
	assert_int_equal(adm_open(a), 0);
	adm_release(a, &t);
	adm_release(a, &none);
	adm_release(a, NULL);
	assert_int_equal(adm_open(a), 0);

	/* a stale copy must not free the slot's next tenant */
	struct adm_ticket next;
	assert_int_equal(adm_admit(a, cell, NULL, NULL, &next, NULL), ADM_OK);
	assert_int_equal(next.slot, copy.slot);
	copy.cell = cell + 1;	/* pretend another worker held it */
	adm_release(a, &copy);
	assert_int_equal(adm_open(a), 1);
	adm_release(a, &next);
	assert_int_equal(adm_open(a), 0);
	adm_destroy(a);
}

/* ---- token buckets ---- */

static void test_token_bucket_ip(void **state)
{
	struct adm_limits l = { .max_conn = 100, .ip_rate = 2, .ip_burst = 3 };
	struct sockaddr_storage x = v4("192.0.2.10"), y = v4("192.0.2.11");
	struct adm_ticket t;
	struct adm *a;
	long retry = 0;
	int cell;
	int64_t t0 = 1000000;

	(void)state;
	a = new_adm(&l, &cell);
	/* burst: 3 at once, then refused */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(admit_at(a, cell, &x, NULL, &t, &retry, t0),
				 ADM_OK);
		adm_release(a, &t);
	}
	assert_int_equal(admit_at(a, cell, &x, NULL, &t, &retry, t0),
			 ADM_RATE_IP);
	assert_int_equal(retry, 1);
	assert_int_equal(t.slot, -1);
	/* another address has its own bucket */
	assert_int_equal(admit_at(a, cell, &y, NULL, &t, &retry, t0), ADM_OK);
	adm_release(a, &t);
	/* 2/s: one token after 500 ms, not before */
	assert_int_equal(admit_at(a, cell, &x, NULL, &t, &retry, t0 + 499),
			 ADM_RATE_IP);
	assert_int_equal(admit_at(a, cell, &x, NULL, &t, &retry, t0 + 500),
			 ADM_OK);
	adm_release(a, &t);
	assert_int_equal(admit_at(a, cell, &x, NULL, &t, &retry, t0 + 500),
			 ADM_RATE_IP);
	/* long idle refills to the burst, not beyond */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(admit_at(a, cell, &x, NULL, &t, NULL,
					  t0 + 100000), ADM_OK);
		adm_release(a, &t);
	}
	assert_int_equal(admit_at(a, cell, &x, NULL, &t, NULL, t0 + 100000),
			 ADM_RATE_IP);

	/* slow rate: Retry-After says when the next token comes */
	l.ip_rate = 0.1;
	l.ip_burst = 1;
	adm_set_limits(a, &l);
	assert_int_equal(admit_at(a, cell, &y, NULL, &t, NULL, t0 + 200000),
			 ADM_OK);
	adm_release(a, &t);
	assert_int_equal(admit_at(a, cell, &y, NULL, &t, &retry, t0 + 200000),
			 ADM_RATE_IP);
	assert_int_equal(retry, 10);
	assert_int_equal(admit_at(a, cell, &y, NULL, &t, &retry, t0 + 205000),
			 ADM_RATE_IP);
	assert_int_equal(retry, 5);
	assert_int_equal(admit_at(a, cell, &y, NULL, &t, &retry, t0 + 209001),
			 ADM_RATE_IP);
	assert_int_equal(retry, 1);
	assert_int_equal(admit_at(a, cell, &y, NULL, &t, &retry, t0 + 210000),
			 ADM_OK);

	uint64_t c[ADM_C__COUNT];
	adm_sum(a, c);
	assert_int_equal(c[ADM_C_REFUSED_RATE], 7);
	adm_destroy(a);
}

static void test_token_bucket_global(void **state)
{
	struct adm_limits l = { .max_conn = 100, .global_rate = 1,
				.global_burst = 2 };
	struct adm_ticket t;
	struct sockaddr_storage s;
	struct adm *a;
	long retry = 0;
	int cell, ok = 0;
	int64_t t0 = 5000000;

	(void)state;
	a = new_adm(&l, &cell);
	for (unsigned i = 0; i < 10; i++) {
		s = v6n(i);
		enum adm_verdict v = admit_at(a, cell, &s, NULL, &t, &retry, t0);

		if (v == ADM_OK) {
			ok++;
			adm_release(a, &t);
		} else {
			assert_int_equal(v, ADM_RATE_GLOBAL);
			assert_int_equal(retry, 1);
		}
	}
	assert_int_equal(ok, 2);
	/* refusals took no tokens: after 1 s exactly one more */
	ok = 0;
	for (unsigned i = 10; i < 20; i++) {
		s = v6n(i);
		if (admit_at(a, cell, &s, NULL, &t, NULL, t0 + 1000) == ADM_OK) {
			ok++;
			adm_release(a, &t);
		}
	}
	assert_int_equal(ok, 1);
	adm_destroy(a);
}

static void test_token_bucket_real_clock(void **state)
{
	struct adm_limits l = { .max_conn = 10, .ip_rate = 20, .ip_burst = 1 };
	struct sockaddr_storage x = v4("192.0.2.77");
	struct adm_ticket t;
	struct adm *a;
	long retry;
	int cell;

	(void)state;
	a = new_adm(&l, &cell);
	assert_int_equal(adm_admit(a, cell, SA(x), NULL, &t, &retry), ADM_OK);
	adm_release(a, &t);
	assert_int_equal(adm_admit(a, cell, SA(x), NULL, &t, &retry),
			 ADM_RATE_IP);
	assert_int_equal(retry, 1);
	usleep(120 * 1000);	/* 20/s: a token every 50 ms */
	assert_int_equal(adm_admit(a, cell, SA(x), NULL, &t, &retry), ADM_OK);
	adm_release(a, &t);
	adm_destroy(a);
}

/* ---- tables filling up and evicting ---- */

static void test_ip_table_full_degrades_then_evicts(void **state)
{
	enum { N = ADM_IP_ENTRIES + 64 };
	struct adm_limits l = { .max_conn = 0, .per_ip = 1 };
	struct adm_ticket *t = calloc(N, sizeof(*t)), extra, again;
	struct sockaddr_storage s;
	struct adm *a;
	int cell, n, first_full = -1;

	(void)state;
	assert_non_null(t);
	a = new_adm(&l, &cell);
	/* distinct addresses, all kept open: the table must fill */
	for (n = 0; n < N; n++) {
		s = v6n((unsigned)n);
		assert_int_equal(admit_at(a, cell, &s, NULL, &t[n], NULL, 1000),
				 ADM_OK);
		if (t[n].flags & ADM_TF_IP_UNTRACKED) {
			first_full = n;
			n++;
			break;
		}
	}
	print_message("per-address table first full after %d addresses\n",
		      first_full);
	/* linear probing, 64-entry windows: about 3/4 full on average */
	assert_true(first_full > ADM_IP_ENTRIES / 3);
	assert_true(first_full <= ADM_IP_ENTRIES);
	assert_int_equal(adm_table_full_events(a), 1);
	uint64_t c[ADM_C__COUNT];
	adm_sum(a, c);
	assert_int_equal(c[ADM_C_TABLE_FULL], 1);
	assert_int_equal(c[ADM_C_ADMITTED], (uint64_t)n);

	/* untracked: per_ip cannot hold for it, but the global limit does */
	assert_int_equal(admit_at(a, cell, &s, NULL, &again, NULL, 1000),
			 ADM_OK);
	assert_true(again.flags & ADM_TF_IP_UNTRACKED);
	assert_int_equal(adm_table_full_events(a), 2);
	assert_int_equal(adm_open(a), n + 1);
	l.max_conn = n + 1;
	adm_set_limits(a, &l);
	assert_int_equal(admit_at(a, cell, &s, NULL, &extra, NULL, 1000),
			 ADM_FULL);
	l.max_conn = 0;
	adm_set_limits(a, &l);

	/* all closed: idle entries are evicted for new addresses */
	adm_release(a, &again);
	for (int i = 0; i < n; i++)
		adm_release(a, &t[i]);
	assert_int_equal(adm_open(a), 0);
	int fulls = adm_table_full_events(a);
	for (int i = 0; i < 300; i++) {
		s = v6n(100000u + (unsigned)i);
		assert_int_equal(admit_at(a, cell, &s, NULL, &t[i], NULL, 2000),
				 ADM_OK);
		assert_int_equal(t[i].flags, 0);
	}
	assert_int_equal(adm_table_full_events(a), fulls);
	/* and per_ip holds again for them */
	s = v6n(100000u);
	assert_int_equal(admit_at(a, cell, &s, NULL, &extra, NULL, 2000),
			 ADM_PER_IP);
	free(t);
	adm_destroy(a);
}

static void test_ip_eviction_waits_for_full_bucket(void **state)
{
	struct adm_limits l = { .max_conn = 0, .ip_rate = 1, .ip_burst = 1 };
	struct sockaddr_storage s;
	struct adm_ticket t;
	struct adm *a;
	int cell, untracked = 0;
	int64_t t0 = 1000000;

	(void)state;
	a = new_adm(&l, &cell);
	/* closed at once, but their buckets are empty: not evictable */
	for (unsigned i = 0; i < 2 * ADM_IP_ENTRIES; i++) {
		s = v6n(i);
		assert_int_equal(admit_at(a, cell, &s, NULL, &t, NULL, t0),
				 ADM_OK);
		untracked += (t.flags & ADM_TF_IP_UNTRACKED) != 0;
		adm_release(a, &t);
	}
	assert_true(untracked >= ADM_IP_ENTRIES);
	assert_int_equal(adm_table_full_events(a), untracked);
	/* 1 s later every bucket is full again: all evictable */
	for (unsigned i = 0; i < 500; i++) {
		s = v6n(50000u + i);
		assert_int_equal(admit_at(a, cell, &s, NULL, &t, NULL,
					  t0 + 1000), ADM_OK);
		assert_int_equal(t.flags, 0);
		adm_release(a, &t);
	}

	/* without a rate, closed entries are evictable at once */
	l.ip_rate = 0;
	adm_set_limits(a, &l);
	int fulls = adm_table_full_events(a);
	for (unsigned i = 0; i < 3 * ADM_IP_ENTRIES; i++) {
		s = v6n(200000u + i);
		assert_int_equal(admit_at(a, cell, &s, NULL, &t, NULL,
					  t0 + 1000), ADM_OK);
		adm_release(a, &t);
	}
	assert_int_equal(adm_table_full_events(a), fulls);
	adm_destroy(a);
}

static void test_subject_table_full_degrades(void **state)
{
	enum { N = ADM_SUBJ_ENTRIES + 8 };
	struct adm_limits l = { .max_conn = 0, .per_subject = 1 };
	struct adm_ticket *t = calloc(N, sizeof(*t));
	struct adm *a;
	char subj[32];
	int cell, n, first_full = -1;

	(void)state;
	assert_non_null(t);
	a = new_adm(&l, &cell);
	for (n = 0; n < N; n++) {
		snprintf(subj, sizeof(subj), "user-%d", n);
		assert_int_equal(adm_admit(a, cell, NULL, subj, &t[n], NULL),
				 ADM_OK);
		if (t[n].flags & ADM_TF_SUBJECT_UNTRACKED) {
			first_full = n++;
			break;
		}
	}
	assert_true(first_full > ADM_SUBJ_ENTRIES / 3);
	assert_int_equal(adm_subject_full_events(a), 1);
	assert_int_equal(adm_table_full_events(a), 0);
	for (int i = 0; i < n; i++)
		adm_release(a, &t[i]);
	assert_int_equal(adm_open(a), 0);
	/* evicted for new subjects once closed */
	assert_int_equal(adm_admit(a, cell, NULL, "newcomer", &t[0], NULL),
			 ADM_OK);
	assert_int_equal(t[0].flags, 0);
	assert_int_equal(adm_admit(a, cell, NULL, "newcomer", &t[1], NULL),
			 ADM_PER_SUBJECT);
	free(t);
	adm_destroy(a);
}

/* ---- counters, histograms, cells ---- */

static void test_hist_cumulative(void **state)
{
	struct adm_limits l = { 0 };
	uint64_t b[ADM_HIST_BUCKETS + 1], count;
	double sum;
	struct adm *a;
	int cell;

	(void)state;
	a = new_adm(&l, &cell);
	assert_true(adm_hist_bounds[ADM_H_CONNECT][0] == 0.001);
	assert_true(adm_hist_bounds[ADM_H_CONNECT][ADM_HIST_BUCKETS - 1] == 10);
	assert_true(adm_hist_bounds[ADM_H_DURATION][0] == 1);
	assert_true(adm_hist_bounds[ADM_H_DURATION][ADM_HIST_BUCKETS - 1] ==
		    86400);
	adm_observe(a, cell, ADM_H_CONNECT, 0.0005);
	adm_observe(a, cell, ADM_H_CONNECT, 0.001);	/* le: inclusive */
	adm_observe(a, cell, ADM_H_CONNECT, 0.003);
	adm_observe(a, cell, ADM_H_CONNECT, 20);	/* +Inf only */
	adm_observe(a, cell, ADM_H_CONNECT, -1);	/* as 0 */
	adm_observe(a, cell, ADM_H_DURATION, 100);
	adm_hist_sum(a, ADM_H_CONNECT, b, &sum, &count);
	assert_int_equal(count, 5);
	assert_int_equal(b[0], 3);
	assert_int_equal(b[1], 3);
	assert_int_equal(b[2], 4);	/* 0.005 */
	assert_int_equal(b[ADM_HIST_BUCKETS - 1], 4);
	assert_int_equal(b[ADM_HIST_BUCKETS], 5);
	assert_true(sum > 20.0044 && sum < 20.0046);
	adm_hist_sum(a, ADM_H_DURATION, b, &sum, &count);
	assert_int_equal(count, 1);
	assert_int_equal(b[4], 0);	/* 60 */
	assert_int_equal(b[5], 1);	/* 300 */
	assert_true(sum == 100.0);
	adm_destroy(a);
}

static int kid_counts(struct adm *a, int cell, int out, void *arg)
{
	(void)out;
	(void)arg;
	adm_count(a, cell, ADM_C_BYTES_UP, 1000);
	adm_count(a, cell, ADM_C_TUNNELS_OK, 3);
	adm_observe(a, cell, ADM_H_DURATION, 2);
	return 0;
}

static void test_counters_fold_into_retired(void **state)
{
	struct adm_limits l = { 0 };
	uint64_t c[ADM_C__COUNT], b[ADM_HIST_BUCKETS + 1], count;
	struct kid k;
	struct adm *a;
	double sum;
	int cell;

	(void)state;
	a = new_adm(&l, &cell);
	adm_count(a, cell, ADM_C_BYTES_UP, 5);
	adm_count(a, cell, ADM_C_REFUSED_AUTH, 1);
	adm_count(a, cell, ADM_C__COUNT, 1);	/* ignored */
	adm_count(a, -1, ADM_C_BYTES_UP, 1);	/* ignored */
	kid_spawn(&k, a, kid_counts, NULL);
	assert_int_equal(adm_workers_alive(a), 2);
	kid_go(&k);
	assert_int_equal(kid_reap(&k), 0);
	adm_sum(a, c);
	assert_int_equal(c[ADM_C_BYTES_UP], 1005);
	assert_int_equal(adm_cell_reclaim(a, k.cell), 0);
	assert_int_equal(adm_cell_reclaim(a, k.cell), 0);	/* free: no-op */
	assert_int_equal(adm_workers_alive(a), 1);
	adm_sum(a, c);
	assert_int_equal(c[ADM_C_BYTES_UP], 1005);
	assert_int_equal(c[ADM_C_TUNNELS_OK], 3);
	assert_int_equal(c[ADM_C_REFUSED_AUTH], 1);
	adm_hist_sum(a, ADM_H_DURATION, b, &sum, &count);
	assert_int_equal(count, 1);
	assert_true(sum == 2.0);
	/* the freed cell is reused, starting from zero */
	assert_int_equal(adm_cell_claim(a, getpid()), k.cell);
	adm_count(a, k.cell, ADM_C_BYTES_UP, 1);
	adm_sum(a, c);
	assert_int_equal(c[ADM_C_BYTES_UP], 1006);
	adm_destroy(a);
}

static void test_cells_run_out(void **state)
{
	struct adm_limits l = { 0 };
	struct adm *a;
	int cell;

	(void)state;
	a = new_adm(&l, &cell);
	for (int i = 1; i < ADM_MAX_CELLS; i++)
		assert_int_equal(adm_cell_claim(a, getpid()), i);
	assert_int_equal(adm_cell_claim(a, getpid()), -1);
	assert_int_equal(adm_workers_alive(a), ADM_MAX_CELLS);
	assert_int_equal(adm_cell_reclaim(a, 77), 0);
	assert_int_equal(adm_cell_claim(a, getpid()), 77);
	assert_int_equal(adm_cell_claim(a, 0), -1);
	assert_int_equal(adm_cell_reclaim(a, ADM_MAX_CELLS), -1);
	adm_destroy(a);
}

static void test_release_queued_when_lock_busy(void **state)
{
	struct adm_limits l = { .max_conn = 5 };
	struct adm_ticket t, u;
	struct adm *a;
	int cell;
	int64_t t0;

	(void)state;
	a = new_adm(&l, &cell);
	assert_int_equal(adm_admit(a, cell, NULL, NULL, &t, NULL), ADM_OK);
	assert_int_equal(adm_admit(a, cell, NULL, NULL, &u, NULL), ADM_OK);
	assert_int_equal(adm_lock(a, cell, 100), 0);
	t0 = now_ms();
	adm_release(a, &t);	/* cannot lock: queued, bounded wait */
	assert_true(now_ms() - t0 < 1500);
	assert_int_equal(t.slot, -1);
	assert_int_equal(adm_open(a), 2);
	assert_int_equal(adm_admit(a, cell, NULL, NULL, &t, NULL), ADM_BUSY);
	adm_unlock(a, cell);
	assert_int_equal(adm_flush(a, cell), 1);
	assert_int_equal(adm_flush(a, cell), 0);
	assert_int_equal(adm_open(a), 1);
	adm_release(a, &u);
	assert_int_equal(adm_open(a), 0);
	adm_destroy(a);
}

/* ---- multi-process ---- */

static int kid_admit80(struct adm *a, int cell, int out, void *arg)
{
	struct adm_ticket t;
	int ok = 0;

	(void)out;
	(void)arg;
	for (int i = 0; i < 80; i++) {
		enum adm_verdict v = adm_admit(a, cell, NULL, NULL, &t, NULL);

		if (v == ADM_OK)
			ok++;
		else if (v != ADM_FULL)
			return 200;
	}
	return ok;
}

static void test_fork_concurrent_max_conn(void **state)
{
	struct adm_limits l = { .max_conn = 50 };
	struct kid k[4];
	struct adm *a;
	int cell, total = 0;

	(void)state;
	a = new_adm(&l, &cell);
	for (int i = 0; i < 4; i++)
		kid_spawn(&k[i], a, kid_admit80, NULL);
	for (int i = 0; i < 4; i++)
		kid_go(&k[i]);
	for (int i = 0; i < 4; i++) {
		int rc = kid_reap(&k[i]);

		assert_true(rc <= 50);
		total += rc;
	}
	assert_int_equal(total, 50);
	assert_int_equal(adm_open(a), 50);
	uint64_t c[ADM_C__COUNT];
	adm_sum(a, c);
	assert_int_equal(c[ADM_C_ADMITTED], 50);
	assert_int_equal(c[ADM_C_REFUSED_LIMIT], 4 * 80 - 50);
	/* the workers exited without releasing: reclaim gives all back */
	for (int i = 0; i < 4; i++)
		assert_int_equal(adm_cell_reclaim(a, k[i].cell), 0);
	assert_int_equal(adm_open(a), 0);
	adm_destroy(a);
}

/* Admits *(int *)arg tunnels from 192.0.2.200, reports 'r', then either
 * waits to be killed or also takes the lock (recorded or not) first. */
struct kid_plan {
	int tunnels;
	int lock;	/* 0 none, 1 recorded, 2 unrecorded */
};

static int kid_hold(struct adm *a, int cell, int out, void *arg)
{
	const struct kid_plan *p = arg;
	struct sockaddr_storage y = v4("192.0.2.200");
	struct adm_ticket t;

	for (int i = 0; i < p->tunnels; i++)
		if (adm_admit(a, cell, SA(y), "kid", &t, NULL) != ADM_OK)
			return 201;
	if (p->lock == 1 && adm_lock(a, cell, 1000) != 0)
		return 202;
	if (p->lock == 2 && adm_test_lock_unrecorded(a, cell, 1000) != 0)
		return 203;
	kid_say(out, 'r');
	for (;;)
		pause();
}

static void test_fork_sigkill_releases_slots(void **state)
{
	struct adm_limits l = { .max_conn = 10, .per_ip = 7,
				.per_subject = 7 };
	struct sockaddr_storage x = v4("192.0.2.100"), y = v4("192.0.2.200");
	struct kid_plan plan = { .tunnels = 7 };
	struct adm_ticket mine[2], t[8];
	struct kid k;
	struct adm *a;
	int cell;

	(void)state;
	a = new_adm(&l, &cell);
	for (int i = 0; i < 2; i++)
		assert_int_equal(adm_admit(a, cell, SA(x), NULL, &mine[i], NULL),
				 ADM_OK);
	kid_spawn(&k, a, kid_hold, &plan);
	kid_go(&k);
	assert_int_equal(kid_event(&k, 5000), 'r');
	assert_int_equal(adm_open(a), 9);
	assert_int_equal(adm_admit(a, cell, SA(y), NULL, &t[0], NULL),
			 ADM_PER_IP);
	assert_int_equal(adm_admit(a, cell, NULL, "kid", &t[0], NULL),
			 ADM_PER_SUBJECT);
	kid_kill(&k);
	assert_int_equal(adm_open(a), 9);	/* still counted until reclaim */
	assert_int_equal(adm_cell_reclaim(a, k.cell), 0);
	assert_int_equal(adm_open(a), 2);	/* exactly its 7 */
	/* its address and subject counts dropped too: up to the limit again */
	for (int i = 0; i < 7; i++)
		assert_int_equal(adm_admit(a, cell, SA(y), "kid", &t[i], NULL),
				 ADM_OK);
	assert_int_equal(adm_admit(a, cell, SA(x), NULL, &t[7], NULL), ADM_OK);
	assert_int_equal(adm_open(a), 10);
	assert_int_equal(adm_admit(a, cell, SA(x), NULL, &t[7], NULL),
			 ADM_FULL);
	adm_destroy(a);
}

static void check_admits_after_repair(struct adm *a, int cell, int kid_tunnels)
{
	struct sockaddr_storage y = v4("192.0.2.200");
	struct adm_ticket t[8];
	int64_t t0 = now_ms();

	assert_int_equal(adm_admit(a, cell, SA(y), "kid", &t[0], NULL), ADM_OK);
	assert_true(now_ms() - t0 < 2000);
	/* per-address and per-subject counts were rebuilt without the kid's */
	for (int i = 1; i < kid_tunnels; i++)
		assert_int_equal(adm_admit(a, cell, SA(y), "kid", &t[i], NULL),
				 ADM_OK);
	assert_int_equal(adm_admit(a, cell, SA(y), NULL, &t[7], NULL),
			 ADM_PER_IP);
	assert_int_equal(adm_admit(a, cell, NULL, "kid", &t[7], NULL),
			 ADM_PER_SUBJECT);
	/* and the lock works normally again */
	assert_int_equal(adm_lock(a, cell, 100), 0);
	adm_unlock(a, cell);
}

static void run_kill_holding_lock(int lock_kind, int64_t min_ms)
{
	struct adm_limits l = { .max_conn = 10, .per_ip = 5, .per_subject = 5 };
	struct sockaddr_storage x = v4("192.0.2.100");
	struct kid_plan plan = { .tunnels = 5, .lock = lock_kind };
	struct adm_ticket mine, t;
	struct kid k;
	struct adm *a;
	long retry = 0;
	int cell;
	int64_t t0, took;

	a = new_adm(&l, &cell);
	assert_int_equal(adm_admit(a, cell, SA(x), NULL, &mine, NULL), ADM_OK);
	kid_spawn(&k, a, kid_hold, &plan);
	kid_go(&k);
	assert_int_equal(kid_event(&k, 5000), 'r');
	assert_int_equal(adm_open(a), 6);
	/* the lock is stuck: refused as busy within the timeout, no hang */
	t0 = now_ms();
	assert_int_equal(adm_admit(a, cell, SA(x), NULL, &t, &retry), ADM_BUSY);
	took = now_ms() - t0;
	assert_true(took >= 900 && took < 1600);
	assert_int_equal(retry, 1);
	kid_kill(&k);
	t0 = now_ms();
	assert_int_equal(adm_cell_reclaim(a, k.cell), 0);
	took = now_ms() - t0;
	print_message("reclaim of a worker killed holding the lock (%s): "
		      "%lld ms\n", lock_kind == 1 ? "recorded" : "unrecorded",
		      (long long)took);
	assert_true(took >= min_ms && took < 1500);
	assert_int_equal(adm_open(a), 1);
	check_admits_after_repair(a, cell, 5);
	assert_int_equal(adm_open(a), 6);
	adm_destroy(a);
}

static void test_fork_sigkill_holding_lock(void **state)
{
	(void)state;
	run_kill_holding_lock(1, 0);
}

static void test_fork_sigkill_before_recording_holder(void **state)
{
	(void)state;
	run_kill_holding_lock(2, 200);
}

/* The claim-before-fork pattern: the child inherits its cell index. */
static void test_fork_claim_before_fork(void **state)
{
	struct adm_limits l = { .max_conn = 4 };
	struct adm_ticket t;
	struct adm *a;
	int cell, kcell, up[2], st;
	pid_t pid;
	char c;

	(void)state;
	a = new_adm(&l, &cell);
	kcell = adm_cell_claim(a, getpid());
	assert_int_equal(kcell, 1);
	assert_int_equal(pipe(up), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(20);
		for (int i = 0; i < 3; i++)
			if (adm_admit(a, kcell, NULL, NULL, &t, NULL) != ADM_OK)
				_exit(1);
		kid_say(up[1], 'r');
		for (;;)
			pause();
	}
	adm_cell_set_pid(a, kcell, pid);
	close(up[1]);
	assert_int_equal(read(up[0], &c, 1), 1);
	close(up[0]);
	assert_int_equal(adm_open(a), 3);
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_int_equal(adm_cell_reclaim(a, kcell), 0);
	assert_int_equal(adm_open(a), 0);
	assert_int_equal(adm_workers_alive(a), 1);
	adm_destroy(a);
}

static int kid_exit(struct adm *a, int cell, int out, void *arg)
{
	(void)a;
	(void)cell;
	(void)out;
	(void)arg;
	return 0;
}

/* A live holder is never overridden, recorded or not. */
static void run_live_holder(int lock_kind)
{
	struct adm_limits l = { .max_conn = 10 };
	struct kid_plan plan = { .tunnels = 0, .lock = lock_kind };
	struct adm_ticket t;
	struct kid holder, dead;
	struct adm *a;
	int cell;
	int64_t t0, took;

	a = new_adm(&l, &cell);
	kid_spawn(&holder, a, kid_hold, &plan);
	kid_go(&holder);
	assert_int_equal(kid_event(&holder, 5000), 'r');
	kid_spawn(&dead, a, kid_exit, NULL);
	kid_go(&dead);
	assert_int_equal(kid_reap(&dead), 0);
	t0 = now_ms();
	assert_int_equal(adm_cell_reclaim(a, dead.cell), -1);
	assert_int_equal(errno, EBUSY);
	took = now_ms() - t0;
	assert_true(took >= 1900 && took < 3000);
	assert_int_equal(adm_workers_alive(a), 3);
	assert_int_equal(adm_lock(a, -1, 100), -1);	/* still held */
	assert_int_equal(errno, ETIMEDOUT);
	kid_kill(&holder);
	assert_int_equal(adm_cell_reclaim(a, holder.cell), 0);
	assert_int_equal(adm_cell_reclaim(a, dead.cell), 0);
	assert_int_equal(adm_workers_alive(a), 1);
	assert_int_equal(adm_admit(a, cell, NULL, NULL, &t, NULL), ADM_OK);
	adm_destroy(a);
}

static void test_reclaim_waits_for_live_recorded_holder(void **state)
{
	(void)state;
	run_live_holder(1);
}

static void test_reclaim_waits_for_live_unrecorded_holder(void **state)
{
	(void)state;
	run_live_holder(2);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_verdict_names),
		T(test_create_leaves_no_name),
		T(test_idle_touches_few_pages),
		T(test_max_conn_exact),
		T(test_max_conn_clamp_and_unlimited),
		T(test_per_ip),
		T(test_per_subject),
		T(test_ipv4_ipv6_distinct),
		T(test_release_idempotent),
		T(test_token_bucket_ip),
		T(test_token_bucket_global),
		T(test_token_bucket_real_clock),
		T(test_ip_table_full_degrades_then_evicts),
		T(test_ip_eviction_waits_for_full_bucket),
		T(test_subject_table_full_degrades),
		T(test_hist_cumulative),
		T(test_counters_fold_into_retired),
		T(test_cells_run_out),
		T(test_release_queued_when_lock_busy),
		T(test_fork_concurrent_max_conn),
		T(test_fork_sigkill_releases_slots),
		T(test_fork_claim_before_fork),
		T(test_fork_sigkill_holding_lock),
		T(test_fork_sigkill_before_recording_holder),
		T(test_reclaim_waits_for_live_recorded_holder),
		T(test_reclaim_waits_for_live_unrecorded_holder),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
