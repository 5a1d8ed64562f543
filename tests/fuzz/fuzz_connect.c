/*
 * fuzz_connect.c - libFuzzer harness for the tunnel's text commands
 * (worker/command.c): command_kind, command_parse_connect and target_parse
 * on arbitrary bytes (the payload of a client's text message, which may
 * hold anything, NUL included).
 *
 * The message is copied into an exactly-sized heap buffer. When the input
 * does not start with "CONNECT:" it is also tried with that prefix, so
 * the target parser is reached without the fuzzer having to guess it.
 *
 * Invariants checked (abort = finding):
 *   - on success host is a NUL-terminated string of 1..253 bytes of
 *     [A-Za-z0-9._:%-] (no NUL, no '|'), and port is 1..65535;
 *   - first / pyip point inside the message (first NULL without a '|'),
 *     pyip only after "|PYIP=";
 *   - target_parse with a too-small host buffer fails instead of writing
 *     past it (ASan);
 *   - command_kind only says CONNECT / DATA / CLOSE for those prefixes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/command.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_host(const char *host, int port)
{
	size_t n = strnlen(host, TARGET_HOST_MAX + 1);

	CHECK(n >= 1 && n <= TARGET_HOST_MAX);
	for (size_t i = 0; i < n; i++)
		CHECK(strchr("|/@ \t\r\n", host[i]) == NULL);
	CHECK(port >= 1 && port <= 65535);
}

static void one_message(const char *msg, size_t len)
{
	struct connect_req r;
	enum command_kind k = command_kind(msg, len);
	const char *why;

	CHECK(k == CMD_UNKNOWN || k == CMD_CONNECT || k == CMD_DATA ||
	      k == CMD_CLOSE);
	if (k == CMD_CONNECT)
		CHECK(len >= 8 && memcmp(msg, "CONNECT:", 8) == 0);
	if (k == CMD_DATA)
		CHECK(len >= 5 && memcmp(msg, "DATA:", 5) == 0);
	if (k == CMD_CLOSE)
		CHECK(len == 5 && memcmp(msg, "CLOSE", 5) == 0);
	if (k != CMD_CONNECT)
		return;	/* command_parse_connect is only called on CONNECT */
	why = command_parse_connect(msg, len, &r);
	if (why != NULL)
		return;
	check_host(r.host, r.port);
	if (r.first == NULL) {
		CHECK(r.first_len == 0 && r.pyip == NULL);
	} else {
		CHECK(r.first >= msg + 8 && r.first <= msg + len);
		CHECK(r.first + r.first_len <= msg + len);
	}
	if (r.pyip != NULL) {
		CHECK(r.pyip >= msg + 8 + 6 && r.pyip <= msg + len);
		CHECK(r.pyip + r.pyip_len == msg + len);
		CHECK(memcmp(r.pyip - 6, "|PYIP=", 6) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *msg = malloc(size ? size : 1), *pre;
	char host[TARGET_HOST_MAX + 1], small[8];
	int port = -1;

	if (msg == NULL)
		return 0;
	memcpy(msg, data, size);
	one_message(msg, size);

	/* the target parser alone, as used for CONNECT targets */
	if (target_parse(msg, size, host, sizeof(host), &port) == NULL)
		check_host(host, port);
	/* a host buffer too small for a long host must fail, not overflow */
	memset(small, 0x55, sizeof(small));
	if (target_parse(msg, size, small, sizeof(small), &port) == NULL)
		CHECK(strnlen(small, sizeof(small)) < sizeof(small));

	/* and with the CONNECT: prefix added */
	if (size < 8 || memcmp(data, "CONNECT:", 8) != 0) {
		pre = malloc(size + 8);
		if (pre != NULL) {
			memcpy(pre, "CONNECT:", 8);
			memcpy(pre + 8, data, size);
			one_message(pre, size + 8);
			free(pre);
		}
	}
	free(msg);
	return 0;
}
