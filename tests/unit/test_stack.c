/*
 * test_stack.c - worker/stack.c: a connection thread gives back the stack
 * pages below its frame and keeps what it still uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../worker/stack.h"

#define DEEP (64 * 1024)

struct probe {
	int deep_resident;	/* the deep page before the trim */
	int deep_after;		/* ... and after it */
	int frame_resident;	/* this frame's page after the trim */
	int canary_ok;		/* locals of the caller survived */
};

static uintptr_t deep_page;

static int resident(uintptr_t addr)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char v = 0;

	if (mincore((void *)(addr & ~(uintptr_t)(page - 1)), 1, &v) != 0)
		return -1;
	return v & 1;
}

/* Touches DEEP bytes of stack below the caller, then returns. */
__attribute__((noinline)) static void go_deep(void)
{
	volatile char big[DEEP];

	for (size_t i = 0; i < sizeof(big); i += 256)
		big[i] = 0x5a;
	deep_page = (uintptr_t)&big[0];
}

static void *thread_body(void *arg)
{
	struct probe *p = arg;
	volatile char canary[512];
	volatile char here;

	for (size_t i = 0; i < sizeof(canary); i++)
		canary[i] = 0x33;
	stack_note();
	go_deep();
	p->deep_resident = resident(deep_page);
	stack_trim();
	p->deep_after = resident(deep_page);
	p->frame_resident = resident((uintptr_t)&here);
	p->canary_ok = 1;
	for (size_t i = 0; i < sizeof(canary); i++)
		if (canary[i] != 0x33)
			p->canary_ok = 0;
	go_deep();	/* the released pages come back on demand */
	return NULL;
}

static void run_thread(struct probe *p)
{
	pthread_attr_t a;
	pthread_t th;

	memset(p, 0, sizeof(*p));
	assert_int_equal(pthread_attr_init(&a), 0);
	assert_int_equal(pthread_attr_setstacksize(&a, 256 * 1024), 0);
	assert_int_equal(pthread_create(&th, &a, thread_body, p), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	pthread_attr_destroy(&a);
}

static void test_trim_releases_deep_pages(void **state)
{
	struct probe p;

	(void)state;
	run_thread(&p);
	assert_int_equal(p.deep_resident, 1);
	assert_int_equal(p.deep_after, 0);
	assert_int_equal(p.frame_resident, 1);
	assert_true(p.canary_ok);
}

static void test_trim_twice_and_again(void **state)
{
	struct probe p;

	(void)state;
	/* A second thread gets its own bounds (or glibc's cached stack). */
	run_thread(&p);
	run_thread(&p);
	assert_int_equal(p.deep_after, 0);
	assert_true(p.canary_ok);
}

static void *unnoted_body(void *arg)
{
	int *ok = arg;

	go_deep();
	stack_trim();	/* no stack_note(): must leave the stack alone */
	*ok = resident(deep_page) == 1;
	return NULL;
}

static void test_trim_without_note_is_a_no_op(void **state)
{
	pthread_t th;
	int ok = 0;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, unnoted_body, &ok), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(ok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trim_releases_deep_pages),
		cmocka_unit_test(test_trim_twice_and_again),
		cmocka_unit_test(test_trim_without_note_is_a_no_op),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
