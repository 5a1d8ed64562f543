/*
 * util.c - small pure helpers: time, constant-time compare, strict base64,
 * random tokens, ports and socket address formatting.
 */
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ct_equal(const void *a, size_t la, const void *b, size_t lb)
{
	const unsigned char *pa = a, *pb = b;
	unsigned char diff = (unsigned char)(la != lb);

	/* Walk the secret (b) fully whatever a holds. */
	for (size_t i = 0; i < lb; i++)
		diff |= (unsigned char)((i < la ? pa[i] : 0) ^ pb[i]);
	return diff == 0;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_is_strict(const char *s, size_t len)
{
	size_t pad = 0;
	int last;

	if (len == 0 || len % 4 != 0)
		return 0;
	if (s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < len - pad; i++)
		if (b64_value((unsigned char)s[i]) < 0)
			return 0;
	if (pad == 0)
		return 1;
	/* The bits the padding leaves unused must be zero. */
	last = b64_value((unsigned char)s[len - pad - 1]);
	return pad == 1 ? (last & 0x03) == 0 : (last & 0x0f) == 0;
}

long base64_decode_strict(const char *s, size_t len, unsigned char *out)
{
	int n;
	size_t pad;

	if (!base64_is_strict(s, len) || len > 0x7ffffff0u)
		return -1;
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	if (n < 0)
		return -1;
	pad = (s[len - 1] == '=') + (s[len - 2] == '=');
	return (long)n - (long)pad;
}

size_t base64_encode(const unsigned char *in, size_t len, char *out)
{
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

int random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char buf[64];

	if (nbytes > sizeof(buf) || random_bytes(buf, nbytes) < 0)
		return -1;
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[buf[i] >> 4];
		out[2 * i + 1] = hex[buf[i] & 15];
	}
	out[2 * nbytes] = '\0';
	return 0;
}

int parse_port(const char *s, size_t len, int allow_zero)
{
	long v = 0;

	if (len == 0 || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > 65535 || (v == 0 && !allow_zero))
		return -1;
	return (int)v;
}

void sockaddr_format_host(const struct sockaddr *sa, char *out, size_t size)
{
	const void *addr;

	if (sa->sa_family == AF_INET6)
		addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else if (sa->sa_family == AF_INET)
		addr = &((const struct sockaddr_in *)sa)->sin_addr;
	else {
		snprintf(out, size, "?");
		return;
	}
	if (inet_ntop(sa->sa_family, addr, out, (socklen_t)size) == NULL)
		snprintf(out, size, "?");
}

void sockaddr_format(const struct sockaddr *sa, char *out, size_t size)
{
	char host[64];
	unsigned port;

	sockaddr_format_host(sa, host, sizeof(host));
	if (sa->sa_family == AF_INET6) {
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
		snprintf(out, size, "[%s]:%u", host, port);
	} else if (sa->sa_family == AF_INET) {
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
		snprintf(out, size, "%s:%u", host, port);
	} else {
		snprintf(out, size, "?");
	}
}

int strn_ieq(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && strncasecmp(s, lit, len) == 0;
}

int list_next(const char *value, size_t len, size_t *pos, const char **item,
	      size_t *ilen)
{
	size_t i = *pos;

	while (i < len) {
		size_t s, e;

		while (i < len && (value[i] == ' ' || value[i] == '\t' ||
				   value[i] == ','))
			i++;
		s = i;
		while (i < len && value[i] != ',')
			i++;
		e = i;
		while (e > s && (value[e - 1] == ' ' || value[e - 1] == '\t'))
			e--;
		if (e > s) {
			*pos = i;
			*item = value + s;
			*ilen = e - s;
			return 1;
		}
	}
	*pos = len;
	return 0;
}
