/*
 * stack.c - resident stack of connection threads.
 *
 * A thread keeps every stack page it ever touched. A tunnel that sits in
 * poll() needs two pages (the thread descriptor with the top frames, and
 * one more), but setting it up went deeper: getaddrinfo(), a JWT
 * signature check, a TLS handshake, a log line. Once it has settled down
 * to wait, the thread hands those pages back with MADV_DONTNEED, the way
 * glibc does for the stack of a thread that ends. Idle tunnels are then
 * two pages of stack each, whatever it took to open them.
 *
 * When: a tunnel 500 ms after setup and whenever its poll() times out
 * (tunnel.c), an idle thread after a second without work (worker.c).
 * Never at every setup: a madvise() that frees pages also flushes the
 * TLBs of the other CPUs running the process, which cost a third of the
 * setup rate when it was done per connection.
 */
#include "stack.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

/* This thread's stack block, [stack_lo, stack_hi); 0 if unknown. */
static __thread uintptr_t stack_lo, stack_hi;

void stack_note(void)
{
	pthread_attr_t a;
	void *addr;
	size_t size;

	if (pthread_getattr_np(pthread_self(), &a) != 0)
		return;
	if (pthread_attr_getstack(&a, &addr, &size) == 0) {
		stack_lo = (uintptr_t)addr;
		stack_hi = stack_lo + size;
	}
	pthread_attr_destroy(&a);
}

/* What madvise()'s own call may use below this frame: its return
 * address, the wrapper's red zone, with room to spare. */
#define TRIM_MARGIN 1024

/* noinline: this frame must be below the caller's. The frame address,
 * not a local's: under ASan locals may live on a separate fake stack. */
__attribute__((noinline)) void stack_trim(void)
{
	uintptr_t frame = (uintptr_t)__builtin_frame_address(0);
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t top = (frame - TRIM_MARGIN) & ~(page - 1);

	/* Only ever below the live frames and inside this thread's stack. */
	if (stack_lo == 0 || frame <= stack_lo || frame >= stack_hi ||
	    top <= stack_lo)
		return;
	(void)madvise((void *)stack_lo, top - stack_lo, MADV_DONTNEED);
}
