/*
 * stack.h - keep a connection thread's resident stack small.
 */
#ifndef ECH3_STACK_H
#define ECH3_STACK_H

/* Records the calling thread's stack bounds. Call once, first thing in a
 * connection thread. */
void stack_note(void);

/* Gives the kernel back the stack pages below the caller's frame (they
 * were touched by deeper calls that have returned: name resolution, JWT
 * verification, TLS handshakes, logging). They come back zero-filled if
 * the thread goes that deep again. A no-op before stack_note(). Costs a
 * syscall and, if pages are freed, a TLB flush: call it when a thread has
 * settled, not per connection. */
void stack_trim(void);

#endif
