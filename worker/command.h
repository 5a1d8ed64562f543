/*
 * command.h - the tunnel protocol's text commands (pure parsing, no I/O):
 * CONNECT:<target>[|<first data>][|PYIP=<hosts>], DATA:<bytes>, CLOSE,
 * and the <target> forms host:port, v4:port, [v6]:port.
 */
#ifndef ECH3_COMMAND_H
#define ECH3_COMMAND_H

#include <stddef.h>

#define TARGET_HOST_MAX 253

enum command_kind {
	CMD_UNKNOWN = 0,
	CMD_CONNECT,
	CMD_DATA,
	CMD_CLOSE,
};

struct connect_req {
	char host[TARGET_HOST_MAX + 1];
	int port;
	const char *first;	/* into the message */
	size_t first_len;
	const char *pyip;	/* the list after "|PYIP=", or NULL */
	size_t pyip_len;
};

/* What kind of command msg[0..len) is, from its prefix alone. */
enum command_kind command_kind(const char *msg, size_t len);

/* Parses a whole CONNECT message. Returns NULL on success, or a short
 * reason ("bad port", ...) suitable for an ERROR: reply. */
const char *command_parse_connect(const char *msg, size_t len,
				  struct connect_req *out);

/* Parses "<host>:<port>" / "[v6]:<port>". Returns NULL or a reason. */
const char *target_parse(const char *s, size_t len, char *host,
			 size_t hostsz, int *port);

/* Length of the "DATA:" prefix. */
#define COMMAND_DATA_PREFIX 5

#endif
