/*
 * test_target.c - worker/target.c: splitting PYIP host lists, and
 * target_connect() against local listeners and closed ports (direct
 * first, fallback hosts only when the direct connect fails).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../worker/egress.h"
#include "../../worker/target.h"
#include "../../shared/util.h"

/* The default egress policy refuses loopback; these tests target it. */
static const struct egress *loopback_ok(void)
{
	static struct egress *e;
	static const char *const allow[] = { "127.0.0.0/8", "::1/128" };
	char err[128];

	if (e == NULL)
		e = egress_new(allow, 2, NULL, 0, NULL, 0, err, sizeof(err));
	return e;
}

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- target_split_hosts ---- */

static void test_split_basic(void **state)
{
	char st[128];
	const char *out[8];

	(void)state;
	assert_int_equal(target_split_hosts(S("a.example,10.0.0.2,::1"), st,
					    sizeof(st), out, 8), 3);
	assert_string_equal(out[0], "a.example");
	assert_string_equal(out[1], "10.0.0.2");
	assert_string_equal(out[2], "::1");
	/* the copies live in storage */
	assert_true(out[0] >= st && out[2] < st + sizeof(st));

	assert_int_equal(target_split_hosts(S("single"), st, sizeof(st), out,
					    8), 1);
	assert_string_equal(out[0], "single");
}

static void test_split_trims_and_skips_empty(void **state)
{
	char st[128];
	const char *out[8];

	(void)state;
	assert_int_equal(target_split_hosts(S("  a  ,, b,  ,c ,"), st,
					    sizeof(st), out, 8), 3);
	assert_string_equal(out[0], "a");
	assert_string_equal(out[1], "b");
	assert_string_equal(out[2], "c");
	assert_int_equal(target_split_hosts(S(""), st, sizeof(st), out, 8), 0);
	assert_int_equal(target_split_hosts(S(","), st, sizeof(st), out, 8), 0);
	assert_int_equal(target_split_hosts(S(" , , "), st, sizeof(st), out,
					    8), 0);
}

static void test_split_max(void **state)
{
	char st[128];
	const char *out[3];

	(void)state;
	out[2] = "sentinel";
	assert_int_equal(target_split_hosts(S("a,b,c,d,e"), st, sizeof(st),
					    out, 2), 2);
	assert_string_equal(out[0], "a");
	assert_string_equal(out[1], "b");
	assert_string_equal(out[2], "sentinel");
	assert_int_equal(target_split_hosts(S("a,b"), st, sizeof(st), out, 0),
			 0);
}

static void test_split_storage_bounds(void **state)
{
	char st[16];
	const char *out[8];

	(void)state;
	/* "abc\0" + "d\0" = 6 bytes: exactly fits a 6-byte storage */
	memset(st, 'Z', sizeof(st));
	assert_int_equal(target_split_hosts(S("abc,d"), st, 6, out, 8), 2);
	assert_string_equal(out[0], "abc");
	assert_string_equal(out[1], "d");
	assert_int_equal(st[6], 'Z');	/* nothing written past storage */

	/* 5 bytes: the second one no longer fits */
	memset(st, 'Z', sizeof(st));
	assert_int_equal(target_split_hosts(S("abc,d"), st, 5, out, 8), 1);
	assert_string_equal(out[0], "abc");
	assert_int_equal(st[5], 'Z');

	/* nothing fits in 0 bytes */
	memset(st, 'Z', sizeof(st));
	assert_int_equal(target_split_hosts(S("a"), st, 0, out, 8), 0);
	assert_int_equal(st[0], 'Z');
}

static void test_split_respects_len(void **state)
{
	char st[64];
	const char *out[4];

	(void)state;
	assert_int_equal(target_split_hosts("a,bcd,e", 3, st, sizeof(st), out,
					    4), 2);
	assert_string_equal(out[0], "a");
	assert_string_equal(out[1], "b");
}

/* ---- target_connect ---- */

/* A listening TCP socket on addr (port 0: any); returns fd, sets *port. */
static int listen_on(const char *addr, int port, int *out_port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET, addr, &a.sin_addr), 1);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	if (out_port != NULL)
		*out_port = ntohs(a.sin_port);
	return fd;
}

/* A port on 127.0.0.1 that refuses connections: bound, never listening
 * (held open so nobody else takes it during the test). */
static int closed_port(int *port)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* 1 when lfd has a connection waiting within ms. */
static int has_pending(int lfd, int ms)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static void assert_connected_to(int cfd, int lfd)
{
	struct sockaddr_in local, peer;
	socklen_t l1 = sizeof(local), l2 = sizeof(peer);
	int afd = accept(lfd, NULL, NULL);
	char c = 'x';

	assert_true(afd >= 0);
	assert_int_equal(getsockname(cfd, (struct sockaddr *)&local, &l1), 0);
	assert_int_equal(getpeername(afd, (struct sockaddr *)&peer, &l2), 0);
	assert_int_equal(local.sin_port, peer.sin_port);
	assert_int_equal(local.sin_addr.s_addr, peer.sin_addr.s_addr);
	/* and bytes flow */
	assert_int_equal(write(cfd, &c, 1), 1);
	c = 0;
	assert_int_equal(read(afd, &c, 1), 1);
	assert_int_equal(c, 'x');
	close(afd);
}

static void test_connect_direct(void **state)
{
	struct target_result res;
	int port, lfd = listen_on("127.0.0.1", 0, &port), v;
	socklen_t vl = sizeof(v);
	char want[64];

	(void)state;
	memset(&res, 0x5a, sizeof(res));
	assert_int_equal(target_connect(loopback_ok(), "127.0.0.1", port, NULL, 0, 2000,
					&res), 0);
	assert_true(res.fd >= 0);
	assert_string_equal(res.via, "direct");
	snprintf(want, sizeof(want), "127.0.0.1:%d", port);
	assert_string_equal(res.peer, want);
	assert_string_equal(res.err, "");
	assert_true(res.connect_ms >= 0 && res.connect_ms < 2000);

	/* blocking, close-on-exec, TCP_NODELAY and keepalive */
	assert_int_equal(fcntl(res.fd, F_GETFL) & O_NONBLOCK, 0);
	assert_true(fcntl(res.fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(getsockopt(res.fd, IPPROTO_TCP, TCP_NODELAY, &v, &vl),
			 0);
	assert_true(v != 0);
	vl = sizeof(v);
	assert_int_equal(getsockopt(res.fd, SOL_SOCKET, SO_KEEPALIVE, &v, &vl),
			 0);
	assert_true(v != 0);

	assert_connected_to(res.fd, lfd);
	close(res.fd);
	close(lfd);
}

static void test_connect_by_name(void **state)
{
	struct target_result res;
	int port, lfd = listen_on("127.0.0.1", 0, &port);
	char want[64];

	(void)state;
	/* "localhost" may resolve to ::1 first (refused: nothing listens
	 * there); every address is tried in turn */
	assert_int_equal(target_connect(loopback_ok(), "localhost", port, NULL, 0, 2000,
					&res), 0);
	snprintf(want, sizeof(want), "127.0.0.1:%d", port);
	assert_string_equal(res.peer, want);
	assert_string_equal(res.via, "direct");
	assert_connected_to(res.fd, lfd);
	close(res.fd);
	close(lfd);
}

static void test_connect_refused(void **state)
{
	struct target_result res;
	int port, hold = closed_port(&port);
	char want[64];

	(void)state;
	assert_int_equal(target_connect(loopback_ok(), "127.0.0.1", port, NULL, 0, 2000,
					&res), -1);
	assert_int_equal(res.fd, -1);
	snprintf(want, sizeof(want), "127.0.0.1:%d", port);
	assert_non_null(strstr(res.err, want));
	assert_non_null(strstr(res.err, strerror(ECONNREFUSED)));
	assert_true(res.connect_ms < 2000);
	close(hold);
}

static void test_connect_fallback_used_when_direct_fails(void **state)
{
	struct target_result res;
	int port, lfd = listen_on("127.0.0.1", 0, &port);
	const char *fb[] = { "127.0.0.3", "127.0.0.1", "127.0.0.4" };
	char want[64];

	(void)state;
	/* nothing listens on 127.0.0.2/.3 at that port: refused */
	assert_int_equal(target_connect(loopback_ok(), "127.0.0.2", port, fb, 3, 2000, &res),
			 0);
	assert_true(res.fd >= 0);
	assert_ptr_equal(res.via, fb[1]);
	snprintf(want, sizeof(want), "127.0.0.1:%d", port);
	assert_string_equal(res.peer, want);
	assert_connected_to(res.fd, lfd);
	close(res.fd);
	close(lfd);
}

static void test_connect_fallback_not_tried_when_direct_works(void **state)
{
	struct target_result res;
	int port, l1 = listen_on("127.0.0.1", 0, &port), l2;
	const char *fb[] = { "127.0.0.2" };

	(void)state;
	l2 = listen_on("127.0.0.2", port, NULL);
	if (l2 < 0) {
		close(l1);
		skip();
	}
	assert_int_equal(target_connect(loopback_ok(), "127.0.0.1", port, fb, 1, 2000, &res),
			 0);
	assert_string_equal(res.via, "direct");
	assert_true(has_pending(l1, 1000));
	assert_false(has_pending(l2, 200));
	assert_connected_to(res.fd, l1);
	close(res.fd);
	close(l1);
	close(l2);
}

static void test_connect_fallbacks_in_order(void **state)
{
	struct target_result res;
	int port, l1 = listen_on("127.0.0.1", 0, &port), l2;
	const char *fb[] = { "127.0.0.3", "127.0.0.2", "127.0.0.1" };

	(void)state;
	l2 = listen_on("127.0.0.2", port, NULL);
	if (l2 < 0) {
		close(l1);
		skip();
	}
	/* direct 127.0.0.4 refused; .3 refused; .2 is the first that works */
	assert_int_equal(target_connect(loopback_ok(), "127.0.0.4", port, fb, 3, 2000, &res),
			 0);
	assert_ptr_equal(res.via, fb[1]);
	assert_true(has_pending(l2, 1000));
	assert_false(has_pending(l1, 200));
	assert_connected_to(res.fd, l2);
	close(res.fd);
	close(l1);
	close(l2);
}

static void test_connect_all_fail(void **state)
{
	struct target_result res;
	int port, hold = closed_port(&port);
	const char *fb[] = { "127.0.0.2", "127.0.0.3" };
	char want[64];

	(void)state;
	assert_int_equal(target_connect(loopback_ok(), "127.0.0.1", port, fb, 2, 2000, &res),
			 -1);
	assert_int_equal(res.fd, -1);
	/* the direct failure is what is reported, plus the count */
	snprintf(want, sizeof(want), "127.0.0.1:%d", port);
	assert_non_null(strstr(res.err, want));
	assert_non_null(strstr(res.err, "(and 2 fallback hosts failed)"));
	close(hold);
}

static void test_connect_ipv6_loopback(void **state)
{
	struct sockaddr_in6 a;
	socklen_t len = sizeof(a);
	struct target_result res;
	int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0), port;
	char want[64];

	(void)state;
	if (lfd < 0)
		skip();
	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	a.sin6_addr = in6addr_loopback;
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(lfd);
		skip();	/* no ::1 on this host */
	}
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin6_port);
	assert_int_equal(target_connect(loopback_ok(), "::1", port, NULL, 0, 2000, &res), 0);
	snprintf(want, sizeof(want), "[::1]:%d", port);
	assert_string_equal(res.peer, want);
	close(res.fd);

	/* a direct target that refuses, falling back to ::1 */
	{
		const char *fb[] = { "::1" };

		assert_int_equal(target_connect(loopback_ok(), "127.0.0.2", port, fb, 1, 2000,
						&res), 0);
		assert_ptr_equal(res.via, fb[0]);
		assert_string_equal(res.peer, want);
		close(res.fd);
	}
	close(lfd);
}

static void test_connect_unresolvable(void **state)
{
	struct target_result res;

	(void)state;
	/* not a valid name at all: getaddrinfo fails without the network */
	assert_int_equal(target_connect(loopback_ok(), "bad host name!", 80, NULL, 0, 2000,
					&res), -1);
	assert_int_equal(res.fd, -1);
	assert_non_null(strstr(res.err, "bad host name!"));
}

/* A listener whose accept queue is full drops SYNs: the connect hangs
 * until the deadline. */
static void test_connect_timeout(void **state)
{
	struct target_result res;
	int port, lfd = listen_on("127.0.0.1", 0, &port);
	int fillers[64], nf = 0, stalled = 0;
	struct sockaddr_in a;
	int64_t t0;

	(void)state;
	assert_int_equal(listen(lfd, 0), 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (nf < 64 && !stalled) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		assert_true(fd >= 0);
		fillers[nf++] = fd;
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			continue;
		assert_int_equal(errno, EINPROGRESS);
		if (poll(&p, 1, 300) == 0)
			stalled = 1;
	}
	if (!stalled) {
		for (int i = 0; i < nf; i++)
			close(fillers[i]);
		close(lfd);
		skip();
	}
	t0 = now_ms();
	assert_int_equal(target_connect(loopback_ok(), "127.0.0.1", port, NULL, 0, 300, &res),
			 -1);
	assert_true(now_ms() - t0 >= 290);
	assert_true(now_ms() - t0 < 3000);
	assert_true(res.connect_ms >= 290);
	assert_non_null(strstr(res.err, "timed out"));
	for (int i = 0; i < nf; i++)
		close(fillers[i]);
	close(lfd);
}

/* The default policy refuses loopback after resolution, fallbacks too. */
static void test_connect_default_egress_refuses_loopback(void **state)
{
	const char *fb[] = { "localhost" };
	struct target_result res;

	(void)state;
	assert_int_equal(target_connect(NULL, "127.0.0.1", 9, fb, 1, 2000, &res),
			 -1);
	assert_int_equal(res.fd, -1);
	assert_int_equal(res.refused, 1);
	assert_non_null(strstr(res.err, "egress"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_split_basic),
		cmocka_unit_test(test_split_trims_and_skips_empty),
		cmocka_unit_test(test_split_max),
		cmocka_unit_test(test_split_storage_bounds),
		cmocka_unit_test(test_split_respects_len),
		cmocka_unit_test(test_connect_direct),
		cmocka_unit_test(test_connect_by_name),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_connect_fallback_used_when_direct_fails),
		cmocka_unit_test(test_connect_fallback_not_tried_when_direct_works),
		cmocka_unit_test(test_connect_fallbacks_in_order),
		cmocka_unit_test(test_connect_all_fail),
		cmocka_unit_test(test_connect_ipv6_loopback),
		cmocka_unit_test(test_connect_unresolvable),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_connect_default_egress_refuses_loopback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
