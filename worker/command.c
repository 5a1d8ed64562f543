/*
 * command.c - parsing of the tunnel's text commands, as settled in
 * PROTOCOL-FACTS: the target ends at the first '|'; a trailing field that
 * is exactly "|PYIP=<list>" at the end gives per-tunnel fallback hosts;
 * everything between is the first data (which may itself contain '|').
 */
#include "command.h"

#include <string.h>

#include "../shared/util.h"

enum command_kind command_kind(const char *msg, size_t len)
{
	if (len >= 8 && memcmp(msg, "CONNECT:", 8) == 0)
		return CMD_CONNECT;
	if (len >= COMMAND_DATA_PREFIX && memcmp(msg, "DATA:", 5) == 0)
		return CMD_DATA;
	if (len == 5 && memcmp(msg, "CLOSE", 5) == 0)
		return CMD_CLOSE;
	return CMD_UNKNOWN;
}

/* Host names and addresses: letters, digits, '-', '.', '_', and ':' or
 * '%' inside IPv6 literals. Anything else (NUL, spaces, '/', '@') is not
 * a host. */
static int host_ok(const char *h, size_t n, int v6)
{
	if (n == 0 || n > TARGET_HOST_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')
			continue;
		if (c == ':' || (v6 && c == '%'))
			continue;
		return 0;
	}
	return 1;
}

const char *target_parse(const char *s, size_t len, char *host,
			 size_t hostsz, int *port)
{
	const char *colon = NULL, *h = s;
	size_t hl;
	int v6 = 0;

	if (len == 0)
		return "empty target";
	if (s[0] == '[') {
		const char *rb = memchr(s, ']', len);
		if (rb == NULL || rb + 1 >= s + len || rb[1] != ':')
			return "bad IPv6 target (want [addr]:port)";
		h = s + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
		v6 = 1;
	} else {
		for (size_t i = len; i > 0; i--)
			if (s[i - 1] == ':') {
				colon = s + i - 1;
				break;
			}
		if (colon == NULL)
			return "missing port";
		hl = (size_t)(colon - s);
	}
	if (hl >= hostsz || !host_ok(h, hl, v6))
		return "bad host";
	*port = parse_port(colon + 1, (size_t)(s + len - colon - 1), 0);
	if (*port < 0)
		return "bad port";
	memcpy(host, h, hl);
	host[hl] = '\0';
	return NULL;
}

const char *command_parse_connect(const char *msg, size_t len,
				  struct connect_req *out)
{
	const char *t = msg + 8, *end = msg + len, *bar, *last, *data_end;

	memset(out, 0, sizeof(*out));
	if (command_kind(msg, len) != CMD_CONNECT)
		return "expected CONNECT";
	bar = memchr(t, '|', (size_t)(end - t));
	if (bar == NULL)
		return target_parse(t, (size_t)(end - t), out->host,
				    sizeof(out->host), &out->port);
	/* The last '|' at or after the target's: does "PYIP=" follow it? */
	last = bar;
	for (const char *p = end; p > bar + 1; p--)
		if (p[-1] == '|') {
			last = p - 1;
			break;
		}
	data_end = end;
	if (end - last >= 6 && memcmp(last + 1, "PYIP=", 5) == 0) {
		out->pyip = last + 6;
		out->pyip_len = (size_t)(end - out->pyip);
		data_end = last;
	}
	out->first = bar + 1;
	out->first_len = data_end > bar ? (size_t)(data_end - bar - 1) : 0;
	return target_parse(t, (size_t)(bar - t), out->host,
			    sizeof(out->host), &out->port);
}
