/*
 * egress.h - the egress policy: which addresses a tunnel may connect to.
 * Owns parsing of the allow/deny lists, the built-in table of internal
 * ranges, ech3's own listen addresses, and the per-address decision.
 *
 * Decision for one resolved address (port included) and the host name the
 * client asked for, first rule that applies wins:
 *   1. an egress.deny entry matching it (CIDR or host pattern, and port)
 *      refuses: "denied by egress.deny";
 *   2. else an egress.allow entry matching it (CIDR, or a host pattern
 *      matching the requested name, and port) allows - an allowed host
 *      pattern trusts whatever that name resolves to;
 *   3. else ech3's own listen addresses ("own-address") and the built-in
 *      internal ranges (loopback, RFC 1918, CGNAT, link-local and cloud
 *      metadata, ULA, multicast, unspecified, reserved, documentation and
 *      benchmark ranges, non-global IPv6) refuse;
 *   4. else it is allowed (public internet).
 * IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96) and NAT64
 * (64:ff9b::/96) addresses are judged as the IPv4 address they embed, for
 * the built-in ranges, own addresses and allow entries; a deny entry
 * matches either the embedded IPv4 or the IPv6 form. A 6to4 (2002::/16)
 * address embedding an internal IPv4 is refused like that IPv4.
 *
 * Entry syntax: "CIDR", "CIDR:port", "CIDR:lo-hi"; IPv6 with a port in
 * brackets "[fd00::/8]:80-90" (a bare IPv6 CIDR has no port part); a lone
 * address is a /32 or /128; host patterns "example.com" (that name only)
 * and "*.example.com" (any name below it, not example.com itself), each
 * optionally with ":port" or ":lo-hi". Names compare case-insensitively,
 * ignoring one trailing dot. Address bits beyond the prefix are an error.
 *
 * The object is immutable after egress_new, so workers may share it
 * between threads. Wildcard own addresses (0.0.0.0, ::) are expanded with
 * getifaddrs once, in egress_new.
 */
#ifndef ECH3_EGRESS_H
#define ECH3_EGRESS_H

#include <stddef.h>
#include <sys/socket.h>

struct egress;

/* Builds a policy. allow/deny: entries as above; own: ech3's listen
 * addresses with their ports (0.0.0.0 or :: means every local interface
 * address with that port; a :: wildcard includes the IPv4 ones, as a
 * dual-stack socket accepts both). Returns NULL with err naming the bad
 * entry (or the failing call). */
struct egress *egress_new(const char *const *allow, size_t nallow,
			  const char *const *deny, size_t ndeny,
			  const struct sockaddr_storage *own, size_t nown,
			  char *err, size_t errlen);
void egress_free(struct egress *e);

/* Decides for one address about to be connected to (after DNS); host is
 * the name the client asked for (may be NULL or an address literal).
 * Returns 1 when allowed, 0 when refused with *reason (if reason is not
 * NULL) a short static string: "loopback", "private", "link-local",
 * "metadata", "cgnat", "ula", "multicast", "broadcast", "reserved",
 * "unspecified", "own-address", "denied by egress.deny",
 * "unsupported address family". */
int egress_allowed(const struct egress *e, const char *host,
		   const struct sockaddr *sa, const char **reason);

/* One-line summary for the startup log, e.g. "default (internal refused),
 * allow=2 [10.0.0.0/8 *.example.com:443], deny=0, own=3". Truncated to
 * size. */
/* 1 when sa (address and port) matches an entry of the allow list, with
 * no other rule applied: this is how a plain address list, such as
 * trusted_proxies, is matched. */
int egress_allow_listed(const struct egress *e, const struct sockaddr *sa);

void egress_describe(const struct egress *e, char *out, size_t size);

#endif
