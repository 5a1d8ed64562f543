/*
 * egress.c - the egress policy: parsing allow/deny entries, expanding own
 * listen addresses, the built-in internal ranges and the per-address
 * decision (precedence documented in egress.h).
 */
#include "egress.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ENTRY_MAX 300	/* longest entry accepted, as written */
#define NAME_MAX_LEN 253
#define LABEL_MAX_LEN 63

#define R_DENIED "denied by egress.deny"
#define R_OWN "own-address"
#define R_FAMILY "unsupported address family"

struct ip {
	int family;		/* AF_INET (in b[0..3]) or AF_INET6 */
	unsigned char b[16];
};

struct cidr {
	struct ip ip;
	unsigned prefix;
};

struct rule {
	int is_name;
	struct cidr net;	/* when !is_name */
	char *name;		/* when is_name: lowercased, without "*." */
	int wildcard;		/* "*.name": strictly below name */
	unsigned lo, hi;	/* port range; 0-65535 when none given */
	char *text;		/* the entry as written, trimmed */
};

struct rules {
	struct rule *v;
	size_t n;
};

struct own_addr {
	struct ip ip;
	unsigned port;
};

struct egress {
	struct rules allow, deny;
	struct own_addr *own;
	size_t nown, ownsize;
};

/* ---- built-in ranges ---- */

struct range {
	struct cidr net;
	const char *reason;
};

#define V4(a, b, c, d, len, why) \
	{ { { AF_INET, { a, b, c, d } }, len }, why }
#define V6(len, why, ...) \
	{ { { AF_INET6, { __VA_ARGS__ } }, len }, why }

/* Searched in order: the more specific entry comes first. */
static const struct range builtin[] = {
	V4(0, 0, 0, 0, 32, "unspecified"),
	V4(0, 0, 0, 0, 8, "reserved"),
	V4(10, 0, 0, 0, 8, "private"),
	V4(100, 100, 100, 200, 32, "metadata"),	/* Alibaba Cloud */
	V4(100, 64, 0, 0, 10, "cgnat"),
	V4(127, 0, 0, 0, 8, "loopback"),
	V4(168, 63, 129, 16, 32, "metadata"),	/* Azure WireServer */
	V4(169, 254, 169, 254, 32, "metadata"),
	V4(169, 254, 0, 0, 16, "link-local"),
	V4(172, 16, 0, 0, 12, "private"),
	V4(192, 0, 0, 192, 32, "metadata"),	/* Oracle Cloud */
	V4(192, 0, 0, 0, 24, "reserved"),
	V4(192, 0, 2, 0, 24, "reserved"),
	V4(192, 88, 99, 0, 24, "reserved"),	/* 6to4 relay anycast */
	V4(192, 168, 0, 0, 16, "private"),
	V4(198, 18, 0, 0, 15, "reserved"),
	V4(198, 51, 100, 0, 24, "reserved"),
	V4(203, 0, 113, 0, 24, "reserved"),
	V4(224, 0, 0, 0, 4, "multicast"),
	V4(255, 255, 255, 255, 32, "broadcast"),
	V4(240, 0, 0, 0, 4, "reserved"),
	V6(128, "unspecified", 0),
	V6(128, "loopback", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1),
	V6(48, "reserved", 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01), /* NAT64 local */
	V6(64, "reserved", 0x01, 0x00),			/* discard-only */
	V6(23, "reserved", 0x20, 0x01),			/* IETF protocols */
	V6(32, "reserved", 0x20, 0x01, 0x0d, 0xb8),	/* documentation */
	V6(20, "reserved", 0x3f, 0xff),			/* documentation */
	V6(16, "reserved", 0x5f, 0x00),			/* SRv6 SIDs */
	V6(128, "metadata", 0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0,
	   0, 0, 0, 0, 0, 0, 0x02, 0x54),		/* AWS */
	V6(7, "ula", 0xfc),
	V6(10, "link-local", 0xfe, 0x80),
	V6(10, "reserved", 0xfe, 0xc0),			/* site-local */
	V6(8, "multicast", 0xff),
};

static const struct cidr global_unicast6 = { { AF_INET6, { 0x20 } }, 3 };
static const struct cidr sixtofour = { { AF_INET6, { 0x20, 0x02 } }, 16 };

/* ---- addresses ---- */

static int ip_in(const struct ip *ip, const struct cidr *c)
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;

	if (ip->family != c->ip.family)
		return 0;
	if (memcmp(ip->b, c->ip.b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((ip->b[full] ^ c->ip.b[full]) & (0xff00u >> rest) & 0xff) == 0;
}

static int ip_equal(const struct ip *a, const struct ip *b)
{
	size_t n = a->family == AF_INET ? 4 : 16;

	return a->family == b->family && memcmp(a->b, b->b, n) == 0;
}

/* Reads family, address and port. Returns 0, or -1 for other families. */
static int ip_from_sockaddr(const struct sockaddr *sa, struct ip *ip,
			    unsigned *port)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;

	memset(ip, 0, sizeof(*ip));
	if (sa->sa_family == AF_INET) {
		memcpy(&s4, sa, sizeof(s4));
		ip->family = AF_INET;
		memcpy(ip->b, &s4.sin_addr, 4);
		*port = ntohs(s4.sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(&s6, sa, sizeof(s6));
		ip->family = AF_INET6;
		memcpy(ip->b, &s6.sin6_addr, 16);
		*port = ntohs(s6.sin6_port);
		return 0;
	}
	return -1;
}

static void ip_v4(struct ip *out, const unsigned char *b4)
{
	memset(out, 0, sizeof(*out));
	out->family = AF_INET;
	memcpy(out->b, b4, 4);
}

/* The IPv4 address an IPv6 one stands for: IPv4-mapped ::ffff:0:0/96,
 * IPv4-compatible ::/96 (but :: and ::1) and NAT64 64:ff9b::/96. Returns 1
 * with *v4 set, or 0. */
static int ip_embedded_v4(const struct ip *ip, struct ip *v4)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const unsigned char nat64[12] = { 0x00, 0x64, 0xff, 0x9b };
	static const unsigned char zero[15];

	if (ip->family != AF_INET6)
		return 0;
	if (memcmp(ip->b, zero, 15) == 0 && ip->b[15] <= 1)
		return 0;	/* :: and ::1 are IPv6's own */
	if (memcmp(ip->b, mapped, 12) != 0 && memcmp(ip->b, zero, 12) != 0 &&
	    memcmp(ip->b, nat64, 12) != 0)
		return 0;
	ip_v4(v4, ip->b + 12);
	return 1;
}

/* The address judged: the embedded IPv4 when there is one, else ip. */
static void ip_effective(const struct ip *ip, struct ip *eff)
{
	if (!ip_embedded_v4(ip, eff))
		*eff = *ip;
}

static const char *builtin_lookup(const struct ip *ip)
{
	for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
		if (ip_in(ip, &builtin[i].net))
			return builtin[i].reason;
	return NULL;
}

/* Why the built-in ranges refuse ip (already effective), or NULL. */
static const char *builtin_reason(const struct ip *ip)
{
	const char *why = builtin_lookup(ip);
	struct ip v4;

	if (why != NULL || ip->family != AF_INET6)
		return why;
	if (!ip_in(ip, &global_unicast6))
		return "reserved";
	if (ip_in(ip, &sixtofour)) {
		ip_v4(&v4, ip->b + 2);
		return builtin_lookup(&v4);
	}
	return NULL;
}

/* ---- parsing ---- */

/* Decimal digits only, 1 to 5 of them, value at most max. Returns 0. */
static int parse_uint(const char *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_port(const char *s, size_t len, unsigned *port,
		      const char **why)
{
	if (parse_uint(s, len, 65535, port) < 0 || *port == 0) {
		*why = "port must be a number from 1 to 65535";
		return -1;
	}
	return 0;
}

/* "port" or "lo-hi". Returns 0, or -1 with *why. */
static int parse_ports(const char *s, unsigned *lo, unsigned *hi,
		       const char **why)
{
	const char *dash = strchr(s, '-');

	if (dash == NULL) {
		if (parse_port(s, strlen(s), lo, why) < 0)
			return -1;
		*hi = *lo;
		return 0;
	}
	if (parse_port(s, (size_t)(dash - s), lo, why) < 0 ||
	    parse_port(dash + 1, strlen(dash + 1), hi, why) < 0)
		return -1;
	if (*lo > *hi) {
		*why = "port range is lo-hi with lo <= hi";
		return -1;
	}
	return 0;
}

/* A v6 rule inside ::ffff:0:0/96 means the same as the IPv4 one. */
static void cidr_unmap(struct cidr *c)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	unsigned char b4[4];

	if (c->ip.family != AF_INET6 || c->prefix < 96 ||
	    memcmp(c->ip.b, mapped, 12) != 0)
		return;
	memcpy(b4, c->ip.b + 12, 4);
	ip_v4(&c->ip, b4);
	c->prefix -= 96;
}

/* "addr" or "addr/len" of the given family. Returns 0, or -1 with *why. */
static int parse_cidr(const char *s, int family, struct cidr *c,
		      const char **why)
{
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned max = family == AF_INET ? 32 : 128;
	char abuf[INET6_ADDRSTRLEN];
	struct cidr masked;

	memset(c, 0, sizeof(*c));
	c->ip.family = family;
	if (alen >= sizeof(abuf)) {
		*why = family == AF_INET ? "bad IPv4 address" : "bad IPv6 address";
		return -1;
	}
	memcpy(abuf, s, alen);
	abuf[alen] = '\0';
	if (inet_pton(family, abuf, c->ip.b) != 1) {
		*why = family == AF_INET ? "bad IPv4 address"
			: "bad IPv6 address (with a port it needs brackets: "
			  "[addr/len]:port)";
		return -1;
	}
	c->prefix = max;
	if (slash != NULL &&
	    parse_uint(slash + 1, strlen(slash + 1), max, &c->prefix) < 0) {
		*why = family == AF_INET ? "prefix length must be 0 to 32"
			: "prefix length must be 0 to 128 (with a port an "
			  "IPv6 CIDR needs brackets: [addr/len]:port)";
		return -1;
	}
	masked = *c;
	memset(masked.ip.b, 0, sizeof(masked.ip.b));
	memcpy(masked.ip.b, c->ip.b, c->prefix / 8);
	if (c->prefix % 8)
		masked.ip.b[c->prefix / 8] = (unsigned char)
			(c->ip.b[c->prefix / 8] & (0xff00u >> (c->prefix % 8)));
	if (memcmp(masked.ip.b, c->ip.b, sizeof(c->ip.b)) != 0) {
		*why = "address has bits set beyond the prefix length";
		return -1;
	}
	cidr_unmap(c);
	return 0;
}

/* Checks one label of a host pattern. */
static int label_ok(const char *s, size_t len)
{
	if (len == 0 || len > LABEL_MAX_LEN || s[0] == '-' || s[len - 1] == '-')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

/* "name" or "*.name". Returns 0, or -1 with *why. */
static int parse_name(const char *s, struct rule *r, const char **why)
{
	size_t len, i = 0, start, last = 0;
	int numeric_last = 1;

	r->wildcard = strncmp(s, "*.", 2) == 0;
	if (r->wildcard)
		s += 2;
	len = strlen(s);
	if (len > 0 && s[len - 1] == '.')
		len--;
	*why = "bad host name pattern (a name, or *. and a name)";
	if (len == 0 || len > NAME_MAX_LEN)
		return -1;
	while (i <= len) {
		start = i;
		while (i < len && s[i] != '.')
			i++;
		if (!label_ok(s + start, i - start))
			return -1;
		last = start;
		i++;
	}
	for (i = last; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			numeric_last = 0;
	if (numeric_last)
		return -1;
	r->name = strndup(s, len);
	if (r->name == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (i = 0; i < len; i++)
		r->name[i] = (char)tolower((unsigned char)r->name[i]);
	r->is_name = 1;
	return 0;
}

/* Only digits, dots and a slash: meant as an IPv4 CIDR. */
static int looks_ipv4(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s) && *s != '.' && *s != '/')
			return 0;
	return 1;
}

/* Splits buf (modified) into the address part and the port part (NULL
 * when none). *v6 is set when the address part must be IPv6. */
static int split_entry(char *buf, char **addr, char **ports, int *v6,
		       const char **why)
{
	char *colon = strchr(buf, ':');

	*ports = NULL;
	*v6 = 0;
	*addr = buf;
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');
		if (close == NULL) {
			*why = "missing ']'";
			return -1;
		}
		*close = '\0';
		*addr = buf + 1;
		*v6 = 1;
		if (close[1] == ':')
			*ports = close + 2;
		else if (close[1] != '\0') {
			*why = "after ']' only ':port' or ':lo-hi' may follow";
			return -1;
		}
		return 0;
	}
	if (colon != NULL && strchr(colon + 1, ':') != NULL) {
		*v6 = 1;	/* a bare IPv6 CIDR: no port part */
		return 0;
	}
	if (colon != NULL) {
		*colon = '\0';
		*ports = colon + 1;
	}
	return 0;
}

/* Copies text trimmed of blanks into buf. Returns 0, or -1 with *why. */
static int trim_copy(const char *text, char *buf, size_t size,
		     const char **why)
{
	size_t s = 0, e = text ? strlen(text) : 0;

	while (s < e && isspace((unsigned char)text[s]))
		s++;
	while (e > s && isspace((unsigned char)text[e - 1]))
		e--;
	if (e == s) {
		*why = "empty entry";
		return -1;
	}
	if (e - s >= size) {
		*why = "entry too long";
		return -1;
	}
	memcpy(buf, text + s, e - s);
	buf[e - s] = '\0';
	return 0;
}

/* Parses one entry into r (zeroed by the caller). Returns 0, or -1 with
 * *why. */
static int parse_fields(const char *text, struct rule *r, const char **why)
{
	char buf[ENTRY_MAX], *addr, *ports;
	int v6;

	if (trim_copy(text, buf, sizeof(buf), why) < 0)
		return -1;
	r->text = strdup(buf);
	if (r->text == NULL) {
		*why = "out of memory";
		return -1;
	}
	if (split_entry(buf, &addr, &ports, &v6, why) < 0)
		return -1;
	r->lo = 0;
	r->hi = 65535;
	if (ports != NULL && parse_ports(ports, &r->lo, &r->hi, why) < 0)
		return -1;
	if (addr[0] == '\0') {
		*why = "missing address or host name";
		return -1;
	}
	if (v6)
		return parse_cidr(addr, AF_INET6, &r->net, why);
	if (looks_ipv4(addr))
		return parse_cidr(addr, AF_INET, &r->net, why);
	return parse_name(addr, r, why);
}

static void rule_free(struct rule *r)
{
	free(r->name);
	free(r->text);
	memset(r, 0, sizeof(*r));
}

/* As parse_fields, but r holds nothing to free on failure. */
static int parse_entry(const char *text, struct rule *r, const char **why)
{
	if (parse_fields(text, r, why) == 0)
		return 0;
	rule_free(r);
	return -1;
}

static void rules_free(struct rules *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		rule_free(&rs->v[i]);
	free(rs->v);
	rs->v = NULL;
	rs->n = 0;
}

static void set_err(char *err, size_t errlen, const char *list,
		    const char *text, const char *why)
{
	if (err == NULL || errlen == 0)
		return;
	snprintf(err, errlen, "egress.%s entry \"%.*s\": %s", list,
		 ENTRY_MAX, text ? text : "", why);
}

static int rules_parse(struct rules *rs, const char *const *list, size_t n,
		       const char *name, char *err, size_t errlen)
{
	const char *why = NULL;

	if (n == 0)
		return 0;
	rs->v = calloc(n, sizeof(*rs->v));
	if (rs->v == NULL) {
		set_err(err, errlen, name, "", "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (parse_entry(list[i], &rs->v[i], &why) < 0) {
			set_err(err, errlen, name, list[i], why);
			return -1;
		}
		rs->n = i + 1;
	}
	return 0;
}

/* ---- own addresses ---- */

static int own_push(struct egress *e, const struct ip *ip, unsigned port)
{
	struct own_addr *v;

	if (e->nown == e->ownsize) {
		size_t size = e->ownsize ? e->ownsize * 2 : 8;
		v = realloc(e->own, size * sizeof(*v));
		if (v == NULL)
			return -1;
		e->own = v;
		e->ownsize = size;
	}
	ip_effective(ip, &e->own[e->nown].ip);
	e->own[e->nown].port = port;
	e->nown++;
	return 0;
}

/* Adds every interface address of the families a wildcard of family
 * serves (an IPv6 wildcard serves IPv4 too). Returns 0 or -1 (errno). */
static int own_expand(struct egress *e, int family, unsigned port)
{
	struct ifaddrs *list, *ifa;
	struct ip ip;
	unsigned ignored;
	int r = 0;

	if (getifaddrs(&list) < 0)
		return -1;
	for (ifa = list; ifa != NULL && r == 0; ifa = ifa->ifa_next) {
		if (ifa->ifa_addr == NULL)
			continue;
		if (ifa->ifa_addr->sa_family != AF_INET &&
		    (family != AF_INET6 || ifa->ifa_addr->sa_family != AF_INET6))
			continue;
		if (ip_from_sockaddr(ifa->ifa_addr, &ip, &ignored) < 0)
			continue;
		if (own_push(e, &ip, port) < 0) {
			errno = ENOMEM;
			r = -1;
		}
	}
	freeifaddrs(list);
	return r;
}

static int ip_is_unspecified(const struct ip *ip)
{
	static const unsigned char zero[16];

	return memcmp(ip->b, zero, ip->family == AF_INET ? 4 : 16) == 0;
}

static int own_add_all(struct egress *e, const struct sockaddr_storage *own,
		       size_t nown, char *err, size_t errlen)
{
	struct ip ip;
	unsigned port;

	for (size_t i = 0; i < nown; i++) {
		if (ip_from_sockaddr((const struct sockaddr *)&own[i], &ip,
				     &port) < 0) {
			snprintf(err, errlen, "egress: own address %zu: %s", i,
				 R_FAMILY);
			return -1;
		}
		if (ip_is_unspecified(&ip) ? own_expand(e, ip.family, port) < 0
					   : own_push(e, &ip, port) < 0) {
			snprintf(err, errlen, "egress: listing own addresses: %s",
				 strerror(errno ? errno : ENOMEM));
			return -1;
		}
	}
	return 0;
}

/* ---- the object ---- */

struct egress *egress_new(const char *const *allow, size_t nallow,
			  const char *const *deny, size_t ndeny,
			  const struct sockaddr_storage *own, size_t nown,
			  char *err, size_t errlen)
{
	struct egress *e = calloc(1, sizeof(*e));
	char dummy[1];

	if (err == NULL || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	if (e == NULL) {
		snprintf(err, errlen, "egress: out of memory");
		return NULL;
	}
	if (rules_parse(&e->allow, allow, nallow, "allow", err, errlen) < 0 ||
	    rules_parse(&e->deny, deny, ndeny, "deny", err, errlen) < 0 ||
	    own_add_all(e, own, nown, err, errlen) < 0) {
		egress_free(e);
		return NULL;
	}
	return e;
}

void egress_free(struct egress *e)
{
	if (e == NULL)
		return;
	rules_free(&e->allow);
	rules_free(&e->deny);
	free(e->own);
	free(e);
}

/* ---- the decision ---- */

/* host (one trailing dot ignored) against a name rule. */
static int name_match(const struct rule *r, const char *host)
{
	size_t hl, nl = strlen(r->name);

	if (host == NULL)
		return 0;
	hl = strlen(host);
	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (!r->wildcard)
		return hl == nl && strncasecmp(host, r->name, nl) == 0;
	return hl > nl + 1 && host[hl - nl - 1] == '.' &&
	       strncasecmp(host + hl - nl, r->name, nl) == 0;
}

static int rule_match(const struct rule *r, const char *host,
		      const struct ip *ip, unsigned port)
{
	if (port < r->lo || port > r->hi)
		return 0;
	return r->is_name ? name_match(r, host) : ip_in(ip, &r->net);
}

static int rules_match(const struct rules *rs, const char *host,
		       const struct ip *ip, unsigned port)
{
	for (size_t i = 0; i < rs->n; i++)
		if (rule_match(&rs->v[i], host, ip, port))
			return 1;
	return 0;
}

static int own_match(const struct egress *e, const struct ip *ip,
		     unsigned port)
{
	for (size_t i = 0; i < e->nown; i++)
		if (e->own[i].port == port && ip_equal(&e->own[i].ip, ip))
			return 1;
	return 0;
}

static int refuse(const char **reason, const char *why)
{
	if (reason != NULL)
		*reason = why;
	return 0;
}

int egress_allowed(const struct egress *e, const char *host,
		   const struct sockaddr *sa, const char **reason)
{
	static const struct egress none;
	struct ip raw, eff;
	unsigned port;
	const char *why;

	if (reason != NULL)
		*reason = NULL;
	if (e == NULL)
		e = &none;
	if (sa == NULL || ip_from_sockaddr(sa, &raw, &port) < 0)
		return refuse(reason, R_FAMILY);
	ip_effective(&raw, &eff);
	if (rules_match(&e->deny, host, &eff, port) ||
	    (!ip_equal(&raw, &eff) && rules_match(&e->deny, host, &raw, port)))
		return refuse(reason, R_DENIED);
	if (rules_match(&e->allow, host, &eff, port))
		return 1;
	if (own_match(e, &eff, port))
		return refuse(reason, R_OWN);
	why = builtin_reason(&eff);
	if (why != NULL)
		return refuse(reason, why);
	return 1;
}

int egress_allow_listed(const struct egress *e, const struct sockaddr *sa)
{
	struct ip raw, eff;
	unsigned port;

	if (e == NULL || sa == NULL || ip_from_sockaddr(sa, &raw, &port) < 0)
		return 0;
	ip_effective(&raw, &eff);
	return rules_match(&e->allow, NULL, &eff, port);
}

/* ---- description ---- */

static void append(char *out, size_t size, size_t *used, const char *s)
{
	size_t len = strlen(s);

	if (*used + 1 >= size)
		return;
	if (len > size - 1 - *used)
		len = size - 1 - *used;
	memcpy(out + *used, s, len);
	*used += len;
	out[*used] = '\0';
}

static void describe_rules(const struct rules *rs, const char *name,
			   char *out, size_t size, size_t *used)
{
	char head[48];

	snprintf(head, sizeof(head), ", %s=%zu", name, rs->n);
	append(out, size, used, head);
	for (size_t i = 0; i < rs->n; i++) {
		append(out, size, used, i == 0 ? " [" : " ");
		append(out, size, used, rs->v[i].text);
	}
	if (rs->n > 0)
		append(out, size, used, "]");
}

void egress_describe(const struct egress *e, char *out, size_t size)
{
	static const struct egress none;
	size_t used = 0;
	char tail[48];

	if (out == NULL || size == 0)
		return;
	out[0] = '\0';
	if (e == NULL)
		e = &none;
	append(out, size, &used, "default (internal refused)");
	describe_rules(&e->allow, "allow", out, size, &used);
	describe_rules(&e->deny, "deny", out, size, &used);
	snprintf(tail, sizeof(tail), ", own=%zu", e->nown);
	append(out, size, &used, tail);
}
