/*
 * config.h - ech3's settings: one table drives the libconfig file, the
 * environment (ECH3_<KEY>, plus the compat PORT, TOKEN, PRIP), command-line
 * --set flags, `ech3 -t` printing and docs/configuration.md.
 */
#ifndef ECH3_CONFIG_H
#define ECH3_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CONFIG_DEFAULT_FILE "/etc/ech3/ech3.cfg"
#define CONFIG_ERR_MAX 512

struct strlist {
	char **v;
	size_t n;
};

enum first_data_b64 { B64_OFF = 0, B64_AUTO = 1, B64_ON = 2 };

struct config {
	/* listening and processes */
	struct strlist listen;
	long workers;		/* 0 = one per usable CPU (cpus.c) */
	char *pid_file;
	long thread_stack;	/* KiB */
	long shutdown_timeout;	/* s */
	long drain_timeout;	/* s */
	long max_draining_generations;

	/* privileges */
	char *user;
	char *group;
	int allow_root;

	/* auth */
	char *token;
	int allow_anonymous;

	/* JWT */
	char *jwt_secret;
	char *jwt_secret_file;
	char *jwt_secret_kid;
	struct strlist jwt_keys;
	char *jwt_issuer;
	char *jwt_audience;
	int jwt_require_exp;
	long jwt_leeway;
	long jwt_max_token_bytes;

	/* admission */
	long max_conn;
	long max_conn_per_ip;
	long max_conn_per_subject;
	long rate_per_ip;		/* new tunnels per second, 0 = off */
	long rate_per_ip_burst;
	long rate_global;
	long rate_global_burst;
	struct strlist trusted_proxies;

	/* egress */
	struct strlist egress_allow;
	struct strlist egress_deny;

	/* metrics */
	char *metrics_token;
	char *metrics_listen;

	/* fixed target */
	char *target_url;
	char *target_ca_file;

	/* tunnel */
	struct strlist fallback_hosts;
	int first_data_base64;	/* enum first_data_b64 */
	long connect_timeout;	/* s */

	/* limits and timers */
	long handshake_timeout;	/* s */
	long ping_interval;	/* s, 0 = off */
	long ping_timeout;	/* s */
	long idle_timeout;	/* s, 0 = off */
	long max_lifetime;	/* s, 0 = off */
	long max_message;	/* bytes */
	long max_command;	/* bytes */
	long max_header_bytes;	/* bytes */
	long max_headers;

	/* TLS */
	char *tls_cert;
	char *tls_key;

	/* logging */
	int log_level;
	int log_format;
	char *log_file;

	/* where it came from, for messages */
	char *file;
};

/* A fresh config holding every default. NULL on allocation failure. */
struct config *config_new(void);
void config_free(struct config *cfg);

/* Reads a libconfig file into cfg. Returns 0, or -1 with a message naming
 * the file, line and key in err. */
int config_load_file(struct config *cfg, const char *path, char *err,
		     size_t errlen);

/* Applies ECH3_<KEY> and the compat PORT, TOKEN, PRIP from environ.
 * Returns 0 or -1 with err set. */
int config_load_env(struct config *cfg, char *err, size_t errlen);

/* Applies one "key=value" (from --set). Returns 0 or -1 with err set. */
int config_set(struct config *cfg, const char *assignment, char *err,
	       size_t errlen);

/* Sets key from its textual value; source names it in errors. */
int config_set_value(struct config *cfg, const char *key, const char *value,
		     const char *source, char *err, size_t errlen);

/* Cross-checks after every source is applied (and PORT is folded in).
 * Returns 0 or -1 with err set. */
int config_finish(struct config *cfg, char *err, size_t errlen);

/* Prints the effective settings in libconfig syntax, secrets masked. */
void config_print(const struct config *cfg, FILE *out);

/* Prints the settings table as markdown (docs/configuration.md). */
void config_print_doc(FILE *out);

/* Parses a listen entry: "host:port", "[v6]:port" or ":port"/"port"
 * (all IPv4 interfaces), optionally followed by " tls" or " plain".
 * *tls is 1 for a TLS listener: marked " tls", or unmarked while
 * tls_cert is set. Returns 0 or -1. */
struct sockaddr_storage;
int config_parse_listen(const struct config *cfg, const char *s,
			struct sockaddr_storage *ss, unsigned *sslen, int *tls);

#endif
