/*
 * config.c - the settings table and everything it drives: defaults, the
 * libconfig file (unknown keys and bad types are errors naming file, line
 * and key), ECH3_* and compat environment variables, --set assignments,
 * cross-checks, and printing for `ech3 -t` and the docs.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "url.h"
#include "util.h"

enum cfg_type { T_INT, T_BOOL, T_STR, T_LIST, T_ENUM };

#define F_SECRET 1u	/* never printed */

struct cfg_def {
	const char *key;
	enum cfg_type type;
	size_t off;
	const char *defval;
	long min, max;
	const char *const *choices;	/* T_ENUM: index is the value */
	unsigned flags;
	const char *doc;
};

static const char *const b64_choices[] = { "off", "auto", "on", NULL };
static const char *const level_choices[] = { "error", "warn", "info", "debug",
					     NULL };
static const char *const format_choices[] = { "text", "json", NULL };

#define OFF(f) offsetof(struct config, f)
#define MiB (1024L * 1024L)

static const struct cfg_def defs[] = {
	{ "listen", T_LIST, OFF(listen), "0.0.0.0:8080", 0, 0, NULL, 0,
	  "Addresses to listen on: \"host:port\", \"[v6]:port\" or \":port\", "
	  "each optionally followed by \" tls\" or \" plain\" (unmarked "
	  "addresses speak TLS when tls_cert is set). The compat env PORT "
	  "replaces the port of every address." },
	{ "workers", T_INT, OFF(workers), "0", 0, 256, NULL, 0,
	  "Worker processes; 0 means one per CPU the process may use (its "
	  "CPU affinity, capped by its cgroup's CPU limit, rounded up)." },
	{ "pid_file", T_STR, OFF(pid_file), "", 0, 0, NULL, 0,
	  "Write the master's pid here (empty: none)." },
	{ "thread_stack", T_INT, OFF(thread_stack), "256", 64, 8192, NULL, 0,
	  "Stack size of a connection thread, KiB (virtual; only touched "
	  "pages cost memory)." },
	{ "shutdown_timeout", T_INT, OFF(shutdown_timeout), "25", 0, 86400,
	  NULL, 0, "Seconds a graceful stop lets open tunnels finish." },
	{ "drain_timeout", T_INT, OFF(drain_timeout), "300", 0, 604800, NULL,
	  0, "Seconds old workers keep relaying after a reload." },
	{ "max_draining_generations", T_INT, OFF(max_draining_generations),
	  "2", 1, 64, NULL, 0,
	  "Old worker generations allowed to drain at once after reloads; "
	  "beyond that the oldest is closed." },
	{ "user", T_STR, OFF(user), "nobody", 0, 0, NULL, 0,
	  "When started as root, workers switch to this user (with "
	  "no_new_privs) before accepting; the master stays root to reload." },
	{ "group", T_STR, OFF(group), "", 0, 0, NULL, 0,
	  "Group for the workers; empty: the user's primary group." },
	{ "allow_root", T_BOOL, OFF(allow_root), "false", 0, 0, NULL, 0,
	  "Allow user to be root (workers facing the network as root)." },
	{ "token", T_STR, OFF(token), "", 0, 0, NULL, F_SECRET,
	  "Static token clients send in Sec-WebSocket-Protocol (compat env "
	  "TOKEN). Empty: a random one is generated at start unless "
	  "allow_anonymous is set." },
	{ "allow_anonymous", T_BOOL, OFF(allow_anonymous), "false", 0, 0,
	  NULL, 0, "Accept clients without any token." },
	{ "jwt.secret", T_STR, OFF(jwt_secret), "", 0, 0, NULL, F_SECRET,
	  "HMAC secret for HS256/384/512 tokens (at least 32 bytes)." },
	{ "jwt.secret_file", T_STR, OFF(jwt_secret_file), "", 0, 0, NULL, 0,
	  "Read the HMAC secret from this file instead (newline stripped)." },
	{ "jwt.secret_kid", T_STR, OFF(jwt_secret_kid), "", 0, 0, NULL, 0,
	  "kid of the HMAC secret, for rotation; empty: tokens without kid." },
	{ "jwt.keys", T_LIST, OFF(jwt_keys), "", 0, 0, NULL, 0,
	  "Public keys for RS*/ES* tokens: \"kid=/path/key.pem\" or "
	  "\"/path/key.pem\" (PEM SubjectPublicKeyInfo)." },
	{ "jwt.issuer", T_STR, OFF(jwt_issuer), "", 0, 0, NULL, 0,
	  "Required iss claim; empty: not checked." },
	{ "jwt.audience", T_STR, OFF(jwt_audience), "", 0, 0, NULL, 0,
	  "Required aud claim (string or member of an array); empty: not "
	  "checked." },
	{ "jwt.require_exp", T_BOOL, OFF(jwt_require_exp), "true", 0, 0, NULL,
	  0, "Refuse tokens without exp." },
	{ "jwt.leeway", T_INT, OFF(jwt_leeway), "30", 0, 86400, NULL, 0,
	  "Seconds of clock skew allowed for exp and nbf." },
	{ "jwt.max_token_bytes", T_INT, OFF(jwt_max_token_bytes), "8192", 256,
	  65536, NULL, 0, "Longer tokens are refused unparsed." },
	{ "max_conn", T_INT, OFF(max_conn), "10000", 0, 65536, NULL, 0,
	  "Open tunnels across all workers; above it 429. 0: no limit (the "
	  "hard cap of 65536 still holds)." },
	{ "max_conn_per_ip", T_INT, OFF(max_conn_per_ip), "0", 0, 65536, NULL,
	  0, "Open tunnels per client address; 0: no limit." },
	{ "max_conn_per_subject", T_INT, OFF(max_conn_per_subject), "0", 0,
	  65536, NULL, 0, "Open tunnels per JWT subject; 0: no limit." },
	{ "rate_per_ip", T_INT, OFF(rate_per_ip), "0", 0, 1000000, NULL, 0,
	  "New tunnels per second per client address (token bucket); 0: off." },
	{ "rate_per_ip_burst", T_INT, OFF(rate_per_ip_burst), "20", 1,
	  1000000, NULL, 0, "Bucket size of rate_per_ip." },
	{ "rate_global", T_INT, OFF(rate_global), "0", 0, 10000000, NULL, 0,
	  "New tunnels per second from all clients; 0: off." },
	{ "rate_global_burst", T_INT, OFF(rate_global_burst), "200", 1,
	  10000000, NULL, 0, "Bucket size of rate_global." },
	{ "trusted_proxies", T_LIST, OFF(trusted_proxies), "", 0, 0, NULL, 0,
	  "CIDRs of proxies whose X-Forwarded-For / CF-Connecting-IP name "
	  "the client (ClawCloud's ingress, Cloudflare). Never trusted from "
	  "other peers." },
	{ "egress.allow", T_LIST, OFF(egress_allow), "", 0, 0, NULL, 0,
	  "Destinations allowed despite the internal-range default: "
	  "CIDR[:port[-port]], [v6-CIDR]:port, or host patterns "
	  "(*.example.com[:port])." },
	{ "egress.deny", T_LIST, OFF(egress_deny), "", 0, 0, NULL, 0,
	  "Destinations always refused (same forms); beats egress.allow." },
	{ "metrics_token", T_STR, OFF(metrics_token), "", 0, 0, NULL, F_SECRET,
	  "Serve /metrics on the main listener to Authorization: Bearer "
	  "<this>; empty: not there." },
	{ "metrics_listen", T_STR, OFF(metrics_listen), "", 0, 0, NULL, 0,
	  "Serve /metrics without auth on this separate address (e.g. "
	  "127.0.0.1:9100); empty: no such listener." },
	{ "target_url", T_STR, OFF(target_url), "", 0, 0, NULL, 0,
	  "Fixed target instead of the tunnel protocol: tcp://host:port "
	  "(bytes piped to one TCP service) or ws[s]://host[:port]/path "
	  "(reverse proxy to a WebSocket backend). Empty: the tunnel "
	  "protocol. Egress policy applies to it too." },
	{ "target_ca_file", T_STR, OFF(target_ca_file), "", 0, 0, NULL, 0,
	  "CA bundle verifying a wss:// target_url; empty: the system "
	  "store." },
	{ "fallback_hosts", T_LIST, OFF(fallback_hosts), "", 0, 0, NULL, 0,
	  "Hosts tried in order, with the target's port, when the direct "
	  "connect fails (compat env PRIP, comma-separated)." },
	{ "first_data_base64", T_ENUM, OFF(first_data_base64), "auto", 0, 0,
	  b64_choices, 0,
	  "Decode the CONNECT first data from base64: auto (only when it is "
	  "strictly valid base64), off, on (always; invalid is an error)." },
	{ "connect_timeout", T_INT, OFF(connect_timeout), "10", 1, 300, NULL,
	  0, "Seconds to connect to a target (all its addresses together)." },
	{ "handshake_timeout", T_INT, OFF(handshake_timeout), "10", 1, 300,
	  NULL, 0, "Seconds a client has to send its whole upgrade request." },
	{ "ping_interval", T_INT, OFF(ping_interval), "30", 0, 3600, NULL, 0,
	  "Seconds of client silence before the server pings; 0: never." },
	{ "ping_timeout", T_INT, OFF(ping_timeout), "20", 1, 3600, NULL, 0,
	  "Seconds to wait for any frame after a ping before closing." },
	{ "idle_timeout", T_INT, OFF(idle_timeout), "0", 0, 604800, NULL, 0,
	  "Close a tunnel that moved no payload for this many seconds; 0: "
	  "off (pings keep live tunnels open)." },
	{ "max_lifetime", T_INT, OFF(max_lifetime), "0", 0, 31536000, NULL, 0,
	  "Close any tunnel after this many seconds; 0: off." },
	{ "max_message", T_INT, OFF(max_message), "16777216", 1024,
	  1024L * MiB, NULL, 0,
	  "Largest WebSocket message accepted, bytes (streamed, not "
	  "buffered); above it the connection is closed with 1009." },
	{ "max_command", T_INT, OFF(max_command), "65536", 512, 16 * MiB,
	  NULL, 0,
	  "Largest text command (CONNECT with its first data), bytes; this "
	  "is the only message ech3 buffers." },
	{ "max_header_bytes", T_INT, OFF(max_header_bytes), "8192", 1024,
	  1 * MiB, NULL, 0,
	  "Largest HTTP upgrade request (request line and headers), bytes; "
	  "above it 431." },
	{ "max_headers", T_INT, OFF(max_headers), "64", 8, 1024, NULL, 0,
	  "Most header lines in an upgrade request; above it 431." },
	{ "tls_cert", T_STR, OFF(tls_cert), "", 0, 0, NULL, 0,
	  "PEM certificate chain for TLS listeners (re-read on reload)." },
	{ "tls_key", T_STR, OFF(tls_key), "", 0, 0, NULL, 0,
	  "PEM private key for tls_cert." },
	{ "log_level", T_ENUM, OFF(log_level), "info", 0, 0, level_choices, 0,
	  "error, warn, info or debug." },
	{ "log_format", T_ENUM, OFF(log_format), "text", 0, 0, format_choices,
	  0, "text (for terminals) or json (one object per line)." },
	{ "log_file", T_STR, OFF(log_file), "", 0, 0, NULL, 0,
	  "Append logs to this file instead of stderr; reopened on SIGUSR1." },
};

#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const struct cfg_def *def_find(const char *key)
{
	for (size_t i = 0; i < NDEFS; i++)
		if (strcmp(defs[i].key, key) == 0)
			return &defs[i];
	return NULL;
}

static void strlist_clear(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int strlist_push(struct strlist *l, const char *s, size_t len)
{
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
	char *copy;

	if (v == NULL)
		return -1;
	l->v = v;
	copy = strndup(s, len);
	if (copy == NULL)
		return -1;
	l->v[l->n++] = copy;
	return 0;
}

/* Splits a comma-separated value, trimming blanks, skipping empties. */
static int strlist_parse(struct strlist *l, const char *value)
{
	const char *p = value;

	strlist_clear(l);
	while (*p != '\0') {
		const char *end = strchr(p, ',');
		const char *b = p, *e = end != NULL ? end : p + strlen(p);

		while (b < e && isspace((unsigned char)*b))
			b++;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		if (e > b && strlist_push(l, b, (size_t)(e - b)) < 0)
			return -1;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on", NULL };
	static const char *const no[] = { "0", "false", "no", "off", "", NULL };

	for (int i = 0; yes[i] != NULL; i++)
		if (strcasecmp(s, yes[i]) == 0)
			return *out = 1, 0;
	for (int i = 0; no[i] != NULL; i++)
		if (strcasecmp(s, no[i]) == 0)
			return *out = 0, 0;
	return -1;
}

static int parse_enum(const struct cfg_def *d, const char *s, int *out)
{
	for (int i = 0; d->choices[i] != NULL; i++)
		if (strcmp(s, d->choices[i]) == 0)
			return *out = i, 0;
	if (d->choices == level_choices && strcmp(s, "warning") == 0)
		return *out = LOG_WARN, 0;
	return -1;
}

/* Integers accept a k/m/g suffix (powers of 1024). */
static int parse_int(const char *s, long *out)
{
	char *end;
	long v, mult = 1;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s)
		return -1;
	switch (*end) {
	case 'k': case 'K': mult = 1024; end++; break;
	case 'm': case 'M': mult = MiB; end++; break;
	case 'g': case 'G': mult = 1024 * MiB; end++; break;
	default: break;
	}
	if (*end != '\0' || v > LONG_MAX / mult || v < LONG_MIN / mult)
		return -1;
	*out = v * mult;
	return 0;
}

static void *field(struct config *cfg, const struct cfg_def *d)
{
	return (char *)cfg + d->off;
}

static int check_int(const struct cfg_def *d, long v, const char *source,
		     char *err, size_t errlen)
{
	if (v < d->min || v > d->max) {
		set_err(err, errlen, "%s: %s = %ld is out of range [%ld, %ld]",
			source, d->key, v, d->min, d->max);
		return -1;
	}
	return 0;
}

static int set_string(char **dst, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return -1;
	free(*dst);
	*dst = copy;
	return 0;
}

static int apply_text(struct config *cfg, const struct cfg_def *d,
		      const char *value, const char *source, char *err,
		      size_t errlen)
{
	void *f = field(cfg, d);
	long v;
	int b;

	switch (d->type) {
	case T_INT:
		if (parse_int(value, &v) < 0) {
			set_err(err, errlen, "%s: %s: '%s' is not an integer",
				source, d->key, value);
			return -1;
		}
		if (check_int(d, v, source, err, errlen) < 0)
			return -1;
		*(long *)f = v;
		return 0;
	case T_BOOL:
		if (parse_bool(value, &b) < 0) {
			set_err(err, errlen,
				"%s: %s: '%s' is not a boolean (true/false)",
				source, d->key, value);
			return -1;
		}
		*(int *)f = b;
		return 0;
	case T_ENUM:
		if (parse_enum(d, value, &b) < 0) {
			set_err(err, errlen, "%s: %s: '%s' is not one of the "
				"allowed values", source, d->key, value);
			return -1;
		}
		*(int *)f = b;
		return 0;
	case T_STR:
		if (set_string(f, value) < 0)
			goto nomem;
		return 0;
	case T_LIST:
		if (strlist_parse(f, value) < 0)
			goto nomem;
		return 0;
	}
nomem:
	set_err(err, errlen, "%s: out of memory", source);
	return -1;
}

struct config *config_new(void)
{
	struct config *cfg = calloc(1, sizeof(*cfg));
	char err[CONFIG_ERR_MAX];

	if (cfg == NULL)
		return NULL;
	for (size_t i = 0; i < NDEFS; i++) {
		if (apply_text(cfg, &defs[i], defs[i].defval, "default", err,
			       sizeof(err)) < 0) {
			config_free(cfg);
			return NULL;
		}
	}
	return cfg;
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < NDEFS; i++) {
		void *f = field(cfg, &defs[i]);
		if (defs[i].type == T_STR)
			free(*(char **)f);
		else if (defs[i].type == T_LIST)
			strlist_clear(f);
	}
	free(cfg->file);
	free(cfg);
}

int config_set_value(struct config *cfg, const char *key, const char *value,
		     const char *source, char *err, size_t errlen)
{
	const struct cfg_def *d = def_find(key);

	if (d == NULL) {
		set_err(err, errlen, "%s: unknown setting '%s'", source, key);
		return -1;
	}
	return apply_text(cfg, d, value, source, err, errlen);
}

int config_set(struct config *cfg, const char *assignment, char *err,
	       size_t errlen)
{
	const char *eq = strchr(assignment, '=');
	char key[64];

	if (eq == NULL || eq == assignment ||
	    (size_t)(eq - assignment) >= sizeof(key)) {
		set_err(err, errlen, "--set: expected key=value, got '%s'",
			assignment);
		return -1;
	}
	memcpy(key, assignment, (size_t)(eq - assignment));
	key[eq - assignment] = '\0';
	return config_set_value(cfg, key, eq + 1, "--set", err, errlen);
}

/* ---- the libconfig file ---- */

static int file_value(struct config *cfg, const struct cfg_def *d,
		      config_setting_t *s, const char *where, char *err,
		      size_t errlen)
{
	int t = config_setting_type(s);
	void *f = field(cfg, d);

	switch (d->type) {
	case T_INT:
		if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
			break;
		{
			long long v = config_setting_get_int64(s);
			if (v < LONG_MIN || v > LONG_MAX ||
			    check_int(d, (long)v, where, err, errlen) < 0) {
				if (v < LONG_MIN || v > LONG_MAX)
					set_err(err, errlen, "%s: %s out of "
						"range", where, d->key);
				return -1;
			}
			*(long *)f = (long)v;
		}
		return 0;
	case T_BOOL:
		if (t != CONFIG_TYPE_BOOL)
			break;
		*(int *)f = config_setting_get_bool(s);
		return 0;
	case T_ENUM:
	case T_STR:
		if (t != CONFIG_TYPE_STRING)
			break;
		return apply_text(cfg, d, config_setting_get_string(s), where,
				  err, errlen);
	case T_LIST:
		if (t == CONFIG_TYPE_STRING)
			return apply_text(cfg, d, config_setting_get_string(s),
					  where, err, errlen);
		if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
			break;
		strlist_clear(f);
		for (int i = 0; i < config_setting_length(s); i++) {
			config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			const char *str;
			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				set_err(err, errlen, "%s: %s: every element "
					"must be a string", where, d->key);
				return -1;
			}
			str = config_setting_get_string(e);
			if (strlist_push(f, str, strlen(str)) < 0) {
				set_err(err, errlen, "%s: out of memory", where);
				return -1;
			}
		}
		return 0;
	}
	set_err(err, errlen, "%s: %s has the wrong type (expected %s)", where,
		d->key,
		d->type == T_INT ? "an integer" :
		d->type == T_BOOL ? "true or false" :
		d->type == T_LIST ? "a string or a list of strings" :
				    "a string");
	return -1;
}

/* 1 when some setting lives in group key ("jwt" for jwt.secret). */
static int group_known(const char *key)
{
	size_t n = strlen(key);

	for (size_t i = 0; i < NDEFS; i++)
		if (strncmp(defs[i].key, key, n) == 0 && defs[i].key[n] == '.')
			return 1;
	return 0;
}

static int file_group(struct config *cfg, config_setting_t *group,
		      const char *prefix, const char *path, char *err,
		      size_t errlen)
{
	int n = config_setting_length(group);

	for (int i = 0; i < n; i++) {
		config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		char key[128], where[PATH_MAX + 32];
		const struct cfg_def *d;

		snprintf(key, sizeof(key), "%s%s", prefix, name ? name : "?");
		snprintf(where, sizeof(where), "%s:%u", path,
			 config_setting_source_line(s));
		d = def_find(key);
		/* Recurse into a group (an unknown one then fails on its
		 * first key); an empty unknown group fails here. */
		if (d == NULL && config_setting_type(s) == CONFIG_TYPE_GROUP &&
		    (group_known(key) || config_setting_length(s) > 0)) {
			char sub[130];
			snprintf(sub, sizeof(sub), "%s.", key);
			if (file_group(cfg, s, sub, path, err, errlen) < 0)
				return -1;
			continue;
		}
		if (d == NULL) {
			set_err(err, errlen, "%s: unknown setting '%s'", where,
				key);
			return -1;
		}
		if (file_value(cfg, d, s, where, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int config_load_file(struct config *cfg, const char *path, char *err,
		     size_t errlen)
{
	config_t lc;
	int rc;

	config_init(&lc);
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			set_err(err, errlen, "%s: cannot read: %s", path,
				strerror(errno));
		else
			set_err(err, errlen, "%s:%d: %s", path,
				config_error_line(&lc), config_error_text(&lc));
		config_destroy(&lc);
		return -1;
	}
	rc = file_group(cfg, config_root_setting(&lc), "", path, err, errlen);
	config_destroy(&lc);
	if (rc == 0) {
		free(cfg->file);
		cfg->file = strdup(path);
		if (cfg->file == NULL) {
			set_err(err, errlen, "out of memory");
			return -1;
		}
	}
	return rc;
}

/* ---- the environment ---- */

static void env_name(const char *key, char *out, size_t size)
{
	size_t n = (size_t)snprintf(out, size, "ECH3_");

	for (; *key != '\0' && n + 1 < size; key++)
		out[n++] = *key == '.' ? '_' : (char)toupper((unsigned char)*key);
	out[n] = '\0';
}

/* PORT replaces the port of every listen address. */
static int apply_port(struct config *cfg, const char *port, char *err,
		      size_t errlen)
{
	if (parse_port(port, strlen(port), 1) < 0) {
		set_err(err, errlen, "env PORT: '%s' is not a port", port);
		return -1;
	}
	for (size_t i = 0; i < cfg->listen.n; i++) {
		char *a = cfg->listen.v[i], *sp = strchr(a, ' '), *colon;
		const char *suffix = sp != NULL ? sp : "";
		size_t hostlen;
		char *n;

		if (sp != NULL)
			*sp = '\0';
		colon = strrchr(a, ':');
		hostlen = colon != NULL ? (size_t)(colon - a) : 0;
		if (sp != NULL)
			*sp = ' ';
		n = malloc(hostlen + strlen(port) + strlen(suffix) + 2);
		if (n == NULL) {
			set_err(err, errlen, "out of memory");
			return -1;
		}
		memcpy(n, a, hostlen);
		sprintf(n + hostlen, ":%s%s", port, suffix);
		free(a);
		cfg->listen.v[i] = n;
	}
	return 0;
}

int config_load_env(struct config *cfg, char *err, size_t errlen)
{
	const char *v;
	char name[96], where[128];

	/* Compat names first, so the ECH3_ names win when both are set. */
	if ((v = getenv("TOKEN")) != NULL && v[0] != '\0' &&
	    config_set_value(cfg, "token", v, "env TOKEN", err, errlen) < 0)
		return -1;
	if ((v = getenv("PRIP")) != NULL &&
	    config_set_value(cfg, "fallback_hosts", v, "env PRIP", err,
			     errlen) < 0)
		return -1;
	for (size_t i = 0; i < NDEFS; i++) {
		env_name(defs[i].key, name, sizeof(name));
		if ((v = getenv(name)) == NULL)
			continue;
		snprintf(where, sizeof(where), "env %s", name);
		if (apply_text(cfg, &defs[i], v, where, err, errlen) < 0)
			return -1;
	}
	if ((v = getenv("PORT")) != NULL && v[0] != '\0' &&
	    apply_port(cfg, v, err, errlen) < 0)
		return -1;
	return 0;
}

/* ---- cross-checks ---- */

/* Splits "addr[ tls| plain]" into addr (copied to buf) and the mark. */
static int listen_mark(const struct config *cfg, const char *s, char *buf,
		       size_t size, int *tls)
{
	const char *sp = strchr(s, ' ');
	size_t n = sp != NULL ? (size_t)(sp - s) : strlen(s);

	if (n >= size)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	*tls = cfg->tls_cert != NULL && cfg->tls_cert[0] != '\0';
	if (sp == NULL)
		return 0;
	while (*sp == ' ')
		sp++;
	if (strcmp(sp, "tls") == 0)
		*tls = 1;
	else if (strcmp(sp, "plain") == 0)
		*tls = 0;
	else
		return -1;
	return 0;
}

int config_parse_listen(const struct config *cfg, const char *entry,
			struct sockaddr_storage *ss, unsigned *sslen, int *tls)
{
	char host[INET6_ADDRSTRLEN + 2], s[96];
	const char *colon, *h = s, *p;
	size_t hl;
	int port;

	memset(ss, 0, sizeof(*ss));
	if (listen_mark(cfg, entry, s, sizeof(s), tls) < 0)
		return -1;
	colon = strrchr(s, ':');
	if (colon == NULL) {
		p = s;		/* just a port */
		hl = 0;
	} else {
		p = colon + 1;
		hl = (size_t)(colon - s);
	}
	port = parse_port(p, strlen(p), 1);
	if (port < 0)
		return -1;
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
		if (hl >= sizeof(host))
			return -1;
		memcpy(host, h, hl);
		host[hl] = '\0';
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			return -1;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*a6);
		return 0;
	}
	if (hl >= sizeof(host))
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	if (hl == 0 || strcmp(host, "*") == 0)
		a4->sin_addr.s_addr = htonl(INADDR_ANY);
	else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
		return -1;
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	*sslen = sizeof(*a4);
	return 0;
}

int config_finish(struct config *cfg, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	unsigned len;
	int tls, any_tls = 0;

	if (cfg->listen.n == 0) {
		set_err(err, errlen, "listen: at least one address is needed");
		return -1;
	}
	for (size_t i = 0; i < cfg->listen.n; i++) {
		if (config_parse_listen(cfg, cfg->listen.v[i], &ss, &len,
					&tls) < 0) {
			set_err(err, errlen, "listen: '%s' is not an address "
				"(host:port, [v6]:port or :port, then "
				"optionally tls or plain)", cfg->listen.v[i]);
			return -1;
		}
		any_tls |= tls;
	}
	if (any_tls && (cfg->tls_cert[0] == '\0' || cfg->tls_key[0] == '\0')) {
		set_err(err, errlen, "a TLS listener needs tls_cert and tls_key");
		return -1;
	}
	for (size_t i = 0; i < cfg->fallback_hosts.n; i++) {
		const char *h = cfg->fallback_hosts.v[i];
		if (strlen(h) > 253 || strpbrk(h, " \t/") != NULL) {
			set_err(err, errlen, "fallback_hosts: '%s' is not a "
				"host name or address", h);
			return -1;
		}
	}
	for (const char *p = cfg->token; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			set_err(err, errlen, "token: must not contain control "
				"characters (it travels in an HTTP header)");
			return -1;
		}
	}
	{
		struct url u;
		const char *why = NULL;
		if (url_parse(cfg->target_url, &u, &why) < 0) {
			set_err(err, errlen, "target_url: '%s': %s",
				cfg->target_url, why);
			return -1;
		}
	}
	if (cfg->max_command > cfg->max_message) {
		set_err(err, errlen, "max_command (%ld) must not exceed "
			"max_message (%ld)", cfg->max_command, cfg->max_message);
		return -1;
	}
	return 0;
}

/* ---- printing ---- */

/* Prints s as a libconfig string literal. */
static void print_string(const char *s, FILE *out)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void print_value(const struct config *cfg, const struct cfg_def *d,
			FILE *out)
{
	const void *f = (const char *)cfg + d->off;
	const struct strlist *l;

	switch (d->type) {
	case T_INT:
		fprintf(out, "%ld", *(const long *)f);
		break;
	case T_BOOL:
		fputs(*(const int *)f ? "true" : "false", out);
		break;
	case T_ENUM:
		fprintf(out, "\"%s\"", d->choices[*(const int *)f]);
		break;
	case T_STR:
		if ((d->flags & F_SECRET) && (*(char *const *)f)[0] != '\0')
			fputs("\"********\"", out);
		else
			print_string(*(char *const *)f, out);
		break;
	case T_LIST:
		l = f;
		fputs("[", out);
		for (size_t i = 0; i < l->n; i++) {
			fputs(i ? ", " : " ", out);
			print_string(l->v[i], out);
		}
		fputs(l->n ? " ]" : "]", out);
		break;
	}
}

void config_print(const struct config *cfg, FILE *out)
{
	char group[32] = "";

	fprintf(out, "# effective settings (%s)\n",
		cfg->file != NULL ? cfg->file : "no file");
	for (size_t i = 0; i < NDEFS; i++) {
		const char *key = defs[i].key, *dot = strchr(key, '.');
		size_t gl = dot != NULL ? (size_t)(dot - key) : 0;

		/* Dotted keys print as libconfig groups: jwt = { ... }; */
		if (group[0] != '\0' &&
		    (gl == 0 || strlen(group) != gl || strncmp(group, key, gl) != 0)) {
			fputs("};\n", out);
			group[0] = '\0';
		}
		if (gl > 0 && group[0] == '\0' && gl < sizeof(group)) {
			memcpy(group, key, gl);
			group[gl] = '\0';
			fprintf(out, "%s = {\n", group);
		}
		fprintf(out, "%s%s = ", gl > 0 ? "  " : "", gl > 0 ? dot + 1 : key);
		print_value(cfg, &defs[i], out);
		fputs(";\n", out);
	}
	if (group[0] != '\0')
		fputs("};\n", out);
}

void config_print_doc(FILE *out)
{
	char name[96];

	fputs("| key | env | default | meaning |\n|---|---|---|---|\n", out);
	for (size_t i = 0; i < NDEFS; i++) {
		env_name(defs[i].key, name, sizeof(name));
		fprintf(out, "| `%s` | `%s` | `%s` | %s |\n", defs[i].key, name,
			defs[i].defval, defs[i].doc);
	}
}
