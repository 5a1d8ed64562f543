/*
 * test_egress.c - worker/egress.c: the built-in internal ranges, embedded
 * IPv4 (mapped, compatible, NAT64, 6to4) bypass attempts, allow and deny
 * lists with ports and host patterns, precedence, parse errors, own
 * listen addresses and the summary. Addresses are sockaddr values only:
 * nothing here connects anywhere.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "../../worker/egress.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define OK "allowed"

/* addr ("1.2.3.4" or "fd00::1") and port as a sockaddr_storage. */
static struct sockaddr_storage sa_of(const char *addr, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
	} else {
		assert_int_equal(inet_pton(AF_INET6, addr, &s6->sin6_addr), 1);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
	}
	return ss;
}

/* The decision as a string: OK or the refusal reason. */
static const char *decide(const struct egress *e, const char *host,
			  const char *addr, unsigned port)
{
	struct sockaddr_storage ss = sa_of(addr, port);
	const char *why = "unset";
	int r = egress_allowed(e, host, (struct sockaddr *)&ss, &why);

	if (r == 1) {
		assert_null(why);
		return OK;
	}
	assert_int_equal(r, 0);
	assert_non_null(why);
	return why;
}

static void expect(const struct egress *e, const char *host, const char *addr,
		   unsigned port, const char *want)
{
	const char *got = decide(e, host, addr, port);

	if (strcmp(got, want) != 0)
		fail_msg("%s (host %s) port %u: got \"%s\", want \"%s\"", addr,
			 host ? host : "NULL", port, got, want);
}

static struct egress *make(const char *const *allow, size_t nallow,
			   const char *const *deny, size_t ndeny)
{
	char err[256] = "";
	struct egress *e = egress_new(allow, nallow, deny, ndeny, NULL, 0, err,
				      sizeof(err));

	if (e == NULL)
		fail_msg("egress_new: %s", err);
	return e;
}

struct want {
	const char *addr, *reason;
};

static void expect_all(const struct egress *e, const struct want *w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		expect(e, NULL, w[i].addr, 443, w[i].reason);
}

/* ---- defaults ---- */

static void test_default_ipv4_ranges(void **state)
{
	static const struct want w[] = {
		{ "127.0.0.1", "loopback" }, { "127.255.255.254", "loopback" },
		{ "10.0.0.1", "private" }, { "10.255.255.255", "private" },
		{ "172.16.0.1", "private" }, { "172.31.255.255", "private" },
		{ "192.168.0.1", "private" }, { "192.168.255.255", "private" },
		{ "100.64.0.1", "cgnat" }, { "100.127.255.255", "cgnat" },
		{ "169.254.169.254", "metadata" },
		{ "100.100.100.200", "metadata" },
		{ "168.63.129.16", "metadata" }, { "192.0.0.192", "metadata" },
		{ "169.254.0.1", "link-local" },
		{ "169.254.255.255", "link-local" },
		{ "0.0.0.0", "unspecified" }, { "0.1.2.3", "reserved" },
		{ "192.0.0.8", "reserved" }, { "192.0.2.1", "reserved" },
		{ "192.88.99.1", "reserved" }, { "198.18.0.1", "reserved" },
		{ "198.19.255.255", "reserved" }, { "198.51.100.7", "reserved" },
		{ "203.0.113.9", "reserved" }, { "240.0.0.1", "reserved" },
		{ "254.255.255.255", "reserved" },
		{ "224.0.0.1", "multicast" }, { "239.255.255.250", "multicast" },
		{ "255.255.255.255", "broadcast" },
	};

	(void)state;
	expect_all(NULL, w, N(w));
}

static void test_default_ipv6_ranges(void **state)
{
	static const struct want w[] = {
		{ "::1", "loopback" }, { "::", "unspecified" },
		{ "fc00::1", "ula" }, { "fd00::1", "ula" },
		{ "fdff:ffff:ffff:ffff::1", "ula" },
		{ "fd00:ec2::254", "metadata" },
		{ "fe80::1", "link-local" }, { "febf:ffff::1", "link-local" },
		{ "fec0::1", "reserved" },
		{ "ff02::1", "multicast" }, { "ff05::1:3", "multicast" },
		{ "2001:db8::1", "reserved" }, { "2001:db8:ffff::1", "reserved" },
		{ "100::1", "reserved" }, { "2001::1", "reserved" },
		{ "2001:2::1", "reserved" }, { "3fff::1", "reserved" },
		{ "5f00::1", "reserved" }, { "64:ff9b:1::a", "reserved" },
		{ "4000::1", "reserved" }, { "e000::1", "reserved" },
		{ "1::1", "reserved" },
	};

	(void)state;
	expect_all(NULL, w, N(w));
}

static void test_default_public_allowed(void **state)
{
	static const char *const pub[] = {
		"8.8.8.8", "1.1.1.1", "9.255.255.255", "11.0.0.0",
		"100.63.255.255", "100.128.0.0", "126.255.255.255", "128.0.0.0",
		"169.253.255.255", "169.255.0.0", "172.15.255.255",
		"172.32.0.0", "192.167.255.255", "192.169.0.0", "198.17.255.255",
		"198.20.0.0", "223.255.255.255", "2606:4700:4700::1111",
		"2001:4860:4860::8888", "2a00:1450::1", "::ffff:8.8.8.8",
		"64:ff9b::808:808", "2002:808:808::1",
	};

	(void)state;
	for (size_t i = 0; i < N(pub); i++)
		expect(NULL, "example.com", pub[i], 443, OK);
}

/* ---- embedded IPv4 ---- */

static void test_embedded_ipv4_bypass_refused(void **state)
{
	static const struct want w[] = {
		{ "::ffff:127.0.0.1", "loopback" },
		{ "::ffff:10.1.2.3", "private" },
		{ "::ffff:169.254.169.254", "metadata" },
		{ "::ffff:100.64.1.1", "cgnat" },
		{ "::ffff:0.0.0.0", "unspecified" },
		{ "::127.0.0.1", "loopback" },		/* IPv4-compatible */
		{ "::10.0.0.1", "private" },
		{ "::0.0.0.2", "reserved" },
		{ "64:ff9b::7f00:1", "loopback" },	/* NAT64 */
		{ "64:ff9b::a9fe:a9fe", "metadata" },
		{ "64:ff9b::a01:203", "private" },
		{ "64:ff9b::c0a8:101", "private" },
		{ "2002:7f00:1::1", "loopback" },	/* 6to4 */
		{ "2002:a9fe:a9fe::", "metadata" },
		{ "2002:a00:1::1", "private" },
	};

	(void)state;
	expect_all(NULL, w, N(w));
}

/* ---- allow ---- */

static void test_allow_loopback(void **state)
{
	static const char *const allow[] = { "127.0.0.0/8" };
	struct egress *e = make(allow, 1, NULL, 0);

	(void)state;
	expect(e, NULL, "127.0.0.1", 80, OK);
	expect(e, NULL, "127.1.2.3", 65535, OK);
	expect(e, NULL, "::ffff:127.0.0.1", 80, OK);	/* the same target */
	expect(e, NULL, "::1", 80, "loopback");
	expect(e, NULL, "10.0.0.1", 80, "private");
	expect(e, NULL, "128.0.0.1", 80, OK);
	egress_free(e);
}

static void test_allow_port_range(void **state)
{
	static const char *const allow[] = {
		"10.0.0.0/8:8000-8100", "[fd00::/8]:443", "192.168.1.1",
		"172.16.0.0/12:22", "::1",
	};
	struct egress *e = make(allow, N(allow), NULL, 0);

	(void)state;
	expect(e, NULL, "10.1.2.3", 8000, OK);
	expect(e, NULL, "10.1.2.3", 8050, OK);
	expect(e, NULL, "10.1.2.3", 8100, OK);
	expect(e, NULL, "10.1.2.3", 7999, "private");
	expect(e, NULL, "10.1.2.3", 8101, "private");
	expect(e, NULL, "fd00::1", 443, OK);
	expect(e, NULL, "fd12::1", 443, OK);
	expect(e, NULL, "fd00::1", 80, "ula");
	expect(e, NULL, "fc00::1", 443, "ula");
	expect(e, NULL, "192.168.1.1", 1, OK);
	expect(e, NULL, "192.168.1.2", 1, "private");
	expect(e, NULL, "172.20.0.1", 22, OK);
	expect(e, NULL, "172.20.0.1", 23, "private");
	expect(e, NULL, "::1", 5, OK);
	egress_free(e);
}

static void test_allow_mapped_entry_is_ipv4(void **state)
{
	static const char *const allow[] = { "::ffff:172.16.0.0/108" };
	struct egress *e = make(allow, 1, NULL, 0);

	(void)state;
	expect(e, NULL, "172.16.0.1", 80, OK);
	expect(e, NULL, "172.31.0.1", 80, OK);
	expect(e, NULL, "::ffff:172.16.0.1", 80, OK);
	expect(e, NULL, "10.0.0.1", 80, "private");
	egress_free(e);
}

/* Allowing the NAT64 prefix does not open what it embeds. */
static void test_allow_nat64_prefix_does_not_open_internal(void **state)
{
	static const char *const allow[] = { "64:ff9b::/96" };
	struct egress *e = make(allow, 1, NULL, 0);

	(void)state;
	expect(e, NULL, "64:ff9b::7f00:1", 80, "loopback");
	expect(e, NULL, "64:ff9b::808:808", 80, OK);
	egress_free(e);
}

/* ---- deny ---- */

static void test_deny_beats_allow(void **state)
{
	static const char *const allow[] = {
		"10.0.0.0/8", "8.8.8.0/24", "*.corp.test",
	};
	static const char *const deny[] = {
		"10.9.0.0/16", "8.8.8.8:53", "1.1.1.1", "*.bad.corp.test",
		"[2606:4700::/32]:80-90",
	};
	struct egress *e = make(allow, N(allow), deny, N(deny));

	(void)state;
	expect(e, NULL, "10.9.1.1", 80, "denied by egress.deny");
	expect(e, NULL, "10.8.1.1", 80, OK);
	expect(e, NULL, "8.8.8.8", 53, "denied by egress.deny");
	expect(e, NULL, "8.8.8.8", 443, OK);
	expect(e, NULL, "1.1.1.1", 443, "denied by egress.deny");
	expect(e, NULL, "::ffff:1.1.1.1", 443, "denied by egress.deny");
	expect(e, NULL, "64:ff9b::101:101", 443, "denied by egress.deny");
	expect(e, NULL, "::ffff:10.9.0.1", 443, "denied by egress.deny");
	expect(e, "x.bad.corp.test", "10.1.1.1", 443, "denied by egress.deny");
	expect(e, "x.bad.corp.test", "8.8.4.4", 443, "denied by egress.deny");
	expect(e, "x.good.corp.test", "192.168.3.3", 443, OK);
	expect(e, NULL, "2606:4700::1", 85, "denied by egress.deny");
	expect(e, NULL, "2606:4700::1", 91, OK);
	egress_free(e);
}

static void test_deny_everything(void **state)
{
	static const char *const allow[] = { "0.0.0.0/0", "::/0" };
	static const char *const deny[] = { "0.0.0.0/0", "::/0" };
	struct egress *e = make(allow, N(allow), deny, N(deny));

	(void)state;
	expect(e, NULL, "8.8.8.8", 443, "denied by egress.deny");
	expect(e, NULL, "2606:4700:4700::1111", 443, "denied by egress.deny");
	expect(e, NULL, "127.0.0.1", 443, "denied by egress.deny");
	egress_free(e);
}

/* A deny entry in IPv6 form catches the NAT64 form of a public address. */
static void test_deny_nat64_prefix(void **state)
{
	static const char *const deny[] = { "64:ff9b::/96" };
	struct egress *e = make(NULL, 0, deny, 1);

	(void)state;
	expect(e, NULL, "64:ff9b::808:808", 443, "denied by egress.deny");
	expect(e, NULL, "8.8.8.8", 443, OK);
	expect(e, NULL, "::ffff:8.8.8.8", 443, OK);
	egress_free(e);
}

/* ---- host patterns ---- */

static void test_host_patterns_allow(void **state)
{
	static const char *const allow[] = {
		"internal.example.com", "*.corp.test:443",
	};
	struct egress *e = make(allow, N(allow), NULL, 0);

	(void)state;
	expect(e, "internal.example.com", "10.0.0.5", 80, OK);
	expect(e, "INTERNAL.Example.COM", "10.0.0.5", 80, OK);
	expect(e, "internal.example.com.", "10.0.0.5", 80, OK);
	expect(e, "other.example.com", "10.0.0.5", 80, "private");
	expect(e, "xinternal.example.com", "10.0.0.5", 80, "private");
	expect(e, "a.internal.example.com", "10.0.0.5", 80, "private");
	expect(e, "internal.example.com.evil", "10.0.0.5", 80, "private");
	expect(e, "a.corp.test", "10.0.0.5", 443, OK);
	expect(e, "A.B.Corp.Test", "fd00::5", 443, OK);
	expect(e, "corp.test", "10.0.0.5", 443, "private");
	expect(e, ".corp.test", "10.0.0.5", 443, "private");
	expect(e, "acorp.test", "10.0.0.5", 443, "private");
	expect(e, "a.corp.test", "10.0.0.5", 80, "private");
	expect(e, NULL, "10.0.0.5", 443, "private");
	expect(e, "10.0.0.5", "10.0.0.5", 443, "private");
	egress_free(e);
}

static void test_host_patterns_deny(void **state)
{
	static const char *const deny[] = { "*.example.com", "example.org:25" };
	struct egress *e = make(NULL, 0, deny, N(deny));

	(void)state;
	expect(e, "evil.example.com", "8.8.8.8", 443, "denied by egress.deny");
	expect(e, "a.b.EXAMPLE.com", "8.8.8.8", 443, "denied by egress.deny");
	expect(e, "example.com", "8.8.8.8", 443, OK);
	expect(e, "example.org", "8.8.8.8", 25, "denied by egress.deny");
	expect(e, "example.org", "8.8.8.8", 587, OK);
	expect(e, "www.example.org", "8.8.8.8", 25, OK);
	egress_free(e);
}

/* ---- parsing ---- */

static void expect_parse_error(const char *list, const char *entry)
{
	const char *one[1] = { entry };
	int deny = strcmp(list, "deny") == 0;
	char err[512] = "", want[128];
	struct egress *e = egress_new(deny ? NULL : one, deny ? 0 : 1,
				      deny ? one : NULL, deny ? 1 : 0, NULL, 0,
				      err, sizeof(err));

	if (e != NULL) {
		egress_free(e);
		fail_msg("egress.%s entry \"%s\" was accepted", list,
			 entry ? entry : "(null)");
	}
	snprintf(want, sizeof(want), "egress.%s entry \"", list);
	if (strstr(err, want) == NULL ||
	    (entry != NULL && entry[0] != ' ' && strstr(err, entry) == NULL))
		fail_msg("error for \"%s\" does not name it: %s",
			 entry ? entry : "(null)", err);
}

static void test_parse_errors_name_the_entry(void **state)
{
	static const char *const bad[] = {
		"10.0.0.0/33", "fd00::/129", "[fd00::/200]:80", "10.0.0.256",
		"10.0.0.0/8:0", "10.0.0.0/8:65536", "10.0.0.0/8:90-80",
		"10.0.0.0/8:", "10.0.0.0/8:80-", "10.0.0.0/8:-80",
		"10.0.0.0/8:+80", "10.0.0.0/8:8a", "10.0.0.1/8", "fd00::1/8",
		"10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/08x",
		"[fd00::/8", "[fd00::/8]x", "[fd00::/8]:", "fd00::/8:80",
		"[10.0.0.0/8]:80", "[]:80", ":80", "1.2.3", "1.2.3.4.5",
		"example.com:abc", "example.com:0", "exa mple.com", "a..b",
		"*", "*.", "*.*.example.com", "ex*ample.com", "-", "a.123",
		"fe80::1%eth0", "example.com:80:90",
	};

	(void)state;
	for (size_t i = 0; i < N(bad); i++) {
		expect_parse_error("allow", bad[i]);
		expect_parse_error("deny", bad[i]);
	}
}

static void test_parse_empty_entries(void **state)
{
	(void)state;
	expect_parse_error("allow", "");
	expect_parse_error("deny", "   ");
	expect_parse_error("allow", NULL);
}

static void test_parse_error_names_second_entry(void **state)
{
	static const char *const allow[] = { "10.0.0.0/8", "192.168.0.0/33" };
	char err[256] = "";

	(void)state;
	assert_null(egress_new(allow, 2, NULL, 0, NULL, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "\"192.168.0.0/33\""));
	assert_non_null(strstr(err, "egress.allow"));
	assert_null(strstr(err, "\"10.0.0.0/8\""));
}

static void test_parse_good_entries(void **state)
{
	static const char *const good[] = {
		"0.0.0.0/0", "::/0", "[::/0]:1-65535", " 10.0.0.0/8 ",
		"example.com:443", "*.example.com:1000-2000", "Example.COM.",
		"1.2.3.4:1", "1.2.3.4:65535", "[::1]", "[fd00::1]:22",
		"fd00::/8", "::ffff:10.0.0.0/104", "my_host.internal",
		"xn--bcher-kva.example", "[64:ff9b::/96]:443",
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < N(good); i++) {
		const char *one[1] = { good[i] };
		struct egress *e = egress_new(one, 1, one, 1, NULL, 0, err,
					      sizeof(err));
		if (e == NULL)
			fail_msg("\"%s\" refused: %s", good[i], err);
		egress_free(e);
	}
}

static void test_trimmed_entry_matches(void **state)
{
	static const char *const allow[] = { "  10.0.0.0/8:80  " };
	struct egress *e = make(allow, 1, NULL, 0);

	(void)state;
	expect(e, NULL, "10.1.1.1", 80, OK);
	egress_free(e);
}

/* ---- own addresses ---- */

static void test_own_address_refused(void **state)
{
	struct sockaddr_storage own[3] = {
		sa_of("127.0.0.1", 8080), sa_of("8.8.4.4", 443),
		sa_of("2001:4860:4860::8844", 8443),
	};
	char err[256] = "";
	struct egress *e = egress_new(NULL, 0, NULL, 0, own, N(own), err,
				      sizeof(err));

	(void)state;
	assert_non_null(e);
	expect(e, NULL, "127.0.0.1", 8080, "own-address");
	expect(e, NULL, "::ffff:127.0.0.1", 8080, "own-address");
	expect(e, NULL, "127.0.0.1", 8081, "loopback");
	expect(e, NULL, "8.8.4.4", 443, "own-address");
	expect(e, NULL, "64:ff9b::808:404", 443, "own-address");
	expect(e, NULL, "8.8.4.4", 80, OK);
	expect(e, NULL, "2001:4860:4860::8844", 8443, "own-address");
	expect(e, NULL, "2001:4860:4860::8844", 443, OK);
	egress_free(e);
}

/* Precedence: an explicit allow entry opens an own address too. */
static void test_allow_beats_own_address(void **state)
{
	static const char *const allow[] = { "127.0.0.0/8" };
	static const char *const deny[] = { "127.0.0.1:8080" };
	struct sockaddr_storage own[1] = { sa_of("127.0.0.1", 8080) };
	char err[256] = "";
	struct egress *e = egress_new(allow, 1, NULL, 0, own, 1, err,
				      sizeof(err));

	(void)state;
	assert_non_null(e);
	expect(e, NULL, "127.0.0.1", 8080, OK);
	egress_free(e);
	e = egress_new(allow, 1, deny, 1, own, 1, err, sizeof(err));
	assert_non_null(e);
	expect(e, NULL, "127.0.0.1", 8080, "denied by egress.deny");
	egress_free(e);
}

/* Every interface address (IPv4 for 0.0.0.0, both for ::) with the port. */
static void check_wildcard(const char *wildcard)
{
	struct sockaddr_storage own[1] = { sa_of(wildcard, 9999) };
	int v6 = strchr(wildcard, ':') != NULL;
	struct ifaddrs *list, *ifa;
	char err[256] = "", addr[INET6_ADDRSTRLEN];
	struct egress *e = egress_new(NULL, 0, NULL, 0, own, 1, err,
				      sizeof(err));
	int seen_lo = 0;

	assert_non_null(e);
	assert_int_equal(getifaddrs(&list), 0);
	for (ifa = list; ifa != NULL; ifa = ifa->ifa_next) {
		int fam = ifa->ifa_addr ? ifa->ifa_addr->sa_family : -1;
		const void *p;
		if (fam == AF_INET)
			p = &((struct sockaddr_in *)ifa->ifa_addr)->sin_addr;
		else if (fam == AF_INET6 && v6)
			p = &((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
		else
			continue;
		assert_non_null(inet_ntop(fam, p, addr, sizeof(addr)));
		seen_lo |= strcmp(addr, "127.0.0.1") == 0;
		expect(e, NULL, addr, 9999, "own-address");
	}
	freeifaddrs(list);
	assert_true(seen_lo);
	expect(e, NULL, "127.0.0.1", 9998, "loopback");
	expect(e, NULL, "8.8.8.8", 9999, OK);
	egress_free(e);
}

static void test_own_wildcard_expands(void **state)
{
	(void)state;
	check_wildcard("0.0.0.0");
	check_wildcard("::");
}

/* ---- odd inputs and the summary ---- */

static void test_unsupported_family(void **state)
{
	struct sockaddr_un un;
	const char *why = NULL;

	(void)state;
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	assert_int_equal(egress_allowed(NULL, "x", (struct sockaddr *)&un, &why),
			 0);
	assert_string_equal(why, "unsupported address family");
	assert_int_equal(egress_allowed(NULL, "x", NULL, &why), 0);
	assert_string_equal(why, "unsupported address family");
}

static void test_reason_pointer_optional(void **state)
{
	struct sockaddr_storage a = sa_of("127.0.0.1", 1);
	struct sockaddr_storage b = sa_of("1.1.1.1", 1);

	(void)state;
	assert_int_equal(egress_allowed(NULL, NULL, (struct sockaddr *)&a, NULL),
			 0);
	assert_int_equal(egress_allowed(NULL, NULL, (struct sockaddr *)&b, NULL),
			 1);
}

static void test_describe(void **state)
{
	static const char *const allow[] = { "10.0.0.0/8", "*.corp.test:443" };
	static const char *const deny[] = { "10.9.0.0/16" };
	struct egress *e = make(allow, 2, deny, 1);
	char out[256], tiny[8];

	(void)state;
	egress_describe(e, out, sizeof(out));
	assert_non_null(strstr(out, "default (internal refused)"));
	assert_non_null(strstr(out, "allow=2"));
	assert_non_null(strstr(out, "*.corp.test:443"));
	assert_non_null(strstr(out, "deny=1"));
	assert_non_null(strstr(out, "own=0"));
	egress_describe(e, tiny, sizeof(tiny));
	assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
	egress_describe(NULL, out, sizeof(out));
	assert_non_null(strstr(out, "allow=0"));
	egress_free(e);
	egress_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_ipv4_ranges),
		cmocka_unit_test(test_default_ipv6_ranges),
		cmocka_unit_test(test_default_public_allowed),
		cmocka_unit_test(test_embedded_ipv4_bypass_refused),
		cmocka_unit_test(test_allow_loopback),
		cmocka_unit_test(test_allow_port_range),
		cmocka_unit_test(test_allow_mapped_entry_is_ipv4),
		cmocka_unit_test(test_allow_nat64_prefix_does_not_open_internal),
		cmocka_unit_test(test_deny_beats_allow),
		cmocka_unit_test(test_deny_everything),
		cmocka_unit_test(test_deny_nat64_prefix),
		cmocka_unit_test(test_host_patterns_allow),
		cmocka_unit_test(test_host_patterns_deny),
		cmocka_unit_test(test_parse_errors_name_the_entry),
		cmocka_unit_test(test_parse_empty_entries),
		cmocka_unit_test(test_parse_error_names_second_entry),
		cmocka_unit_test(test_parse_good_entries),
		cmocka_unit_test(test_trimmed_entry_matches),
		cmocka_unit_test(test_own_address_refused),
		cmocka_unit_test(test_allow_beats_own_address),
		cmocka_unit_test(test_own_wildcard_expands),
		cmocka_unit_test(test_unsupported_family),
		cmocka_unit_test(test_reason_pointer_optional),
		cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
