/*
 * test_config.c - shared/config.c: defaults, the libconfig file, the
 * environment (ECH3_<KEY> and compat TOKEN, PRIP, PORT), --set, the
 * cross-checks, listen address parsing and printing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../shared/config.h"
#include "../../shared/log.h"

extern char **environ;

struct fx {
	struct config *cfg;
	char path[64];	/* temp config file, "" when none */
	char err[CONFIG_ERR_MAX];
};

/* Removes every variable config_load_env() looks at. */
static void clean_env(void)
{
	char *names[256];
	size_t n = 0;

	for (char **e = environ; *e != NULL && n < 256; e++) {
		const char *eq = strchr(*e, '=');
		if (eq != NULL && strncmp(*e, "ECH3_", 5) == 0)
			names[n++] = strndup(*e, (size_t)(eq - *e));
	}
	for (size_t i = 0; i < n; i++) {
		unsetenv(names[i]);
		free(names[i]);
	}
	unsetenv("TOKEN");
	unsetenv("PRIP");
	unsetenv("PORT");
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	clean_env();
	f->cfg = config_new();
	if (f->cfg == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	clean_env();
	if (f->path[0] != '\0')
		unlink(f->path);
	config_free(f->cfg);
	free(f);
	return 0;
}

/* Writes text to a fresh temp file (its path in f->path). */
static const char *write_file(struct fx *f, const char *text)
{
	int fd;
	size_t len = strlen(text);

	if (f->path[0] != '\0')
		unlink(f->path);
	strcpy(f->path, "/tmp/ech3-test-cfg-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return f->path;
}

/* Loads text as a config file; returns what config_load_file returns. */
static int load(struct fx *f, const char *text)
{
	f->err[0] = '\0';
	return config_load_file(f->cfg, write_file(f, text), f->err,
				sizeof(f->err));
}

static void assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

static void assert_lacks(const char *hay, const char *needle)
{
	if (strstr(hay, needle) != NULL)
		fail_msg("'%s' contains '%s'", hay, needle);
}

/* "path:line" as an error message must show it. */
static void assert_where(struct fx *f, int line)
{
	char where[96];

	snprintf(where, sizeof(where), "%s:%d", f->path, line);
	assert_contains(f->err, where);
}

static void assert_list(const struct strlist *l, size_t n, ...)
{
	va_list ap;

	assert_int_equal(l->n, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(l->v[i], va_arg(ap, const char *));
	va_end(ap);
}

static int set(struct fx *f, const char *assignment)
{
	f->err[0] = '\0';
	return config_set(f->cfg, assignment, f->err, sizeof(f->err));
}

static int env(struct fx *f)
{
	f->err[0] = '\0';
	return config_load_env(f->cfg, f->err, sizeof(f->err));
}

static int finish(struct fx *f)
{
	f->err[0] = '\0';
	return config_finish(f->cfg, f->err, sizeof(f->err));
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
	struct fx *f = *state;
	struct config *c = f->cfg;

	assert_list(&c->listen, 1, "0.0.0.0:8080");
	assert_int_equal(c->workers, 0);
	assert_string_equal(c->pid_file, "");
	assert_int_equal(c->thread_stack, 256);
	assert_int_equal(c->shutdown_timeout, 25);
	assert_int_equal(c->drain_timeout, 300);
	assert_int_equal(c->max_draining_generations, 2);
	assert_string_equal(c->user, "nobody");
	assert_string_equal(c->group, "");
	assert_int_equal(c->allow_root, 0);
	assert_string_equal(c->tls_cert, "");
	assert_string_equal(c->tls_key, "");
	assert_string_equal(c->token, "");
	assert_int_equal(c->allow_anonymous, 0);
	assert_int_equal(c->fallback_hosts.n, 0);
	assert_int_equal(c->first_data_base64, B64_AUTO);
	assert_int_equal(c->connect_timeout, 10);
	assert_int_equal(c->handshake_timeout, 10);
	assert_int_equal(c->ping_interval, 30);
	assert_int_equal(c->ping_timeout, 20);
	assert_int_equal(c->idle_timeout, 0);
	assert_int_equal(c->max_lifetime, 0);
	assert_int_equal(c->max_message, 16 * 1024 * 1024);
	assert_int_equal(c->max_command, 65536);
	assert_int_equal(c->max_header_bytes, 8192);
	assert_int_equal(c->max_headers, 64);
	assert_int_equal(c->log_level, LOG_INFO);
	assert_int_equal(c->log_format, LOG_FMT_TEXT);
	assert_string_equal(c->log_file, "");
	assert_null(c->file);
	assert_int_equal(finish(f), 0);
}

/* ---- the file ---- */

static void test_file_all_types(void **state)
{
	struct fx *f = *state;
	struct config *c = f->cfg;

	assert_int_equal(load(f,
		"# a comment\n"
		"listen = [ \"127.0.0.1:9000\", \"[::1]:9001\" ];\n"
		"workers = 4;\n"
		"pid_file = \"/run/ech3.pid\";\n"
		"token = \"s3cret\";\n"
		"allow_anonymous = true;\n"
		"fallback_hosts = \"a.example, 10.0.0.1 ,,b\";\n"
		"first_data_base64 = \"on\";\n"
		"connect_timeout = 5;\n"
		"max_message = 1048576;\n"
		"max_command = 4096;\n"
		"log_level = \"debug\";\n"
		"log_format = \"json\";\n"
		"log_file = \"/var/log/ech3.log\";\n"), 0);
	assert_string_equal(f->err, "");
	assert_list(&c->listen, 2, "127.0.0.1:9000", "[::1]:9001");
	assert_int_equal(c->workers, 4);
	assert_string_equal(c->pid_file, "/run/ech3.pid");
	assert_string_equal(c->token, "s3cret");
	assert_int_equal(c->allow_anonymous, 1);
	assert_list(&c->fallback_hosts, 3, "a.example", "10.0.0.1", "b");
	assert_int_equal(c->first_data_base64, B64_ON);
	assert_int_equal(c->connect_timeout, 5);
	assert_int_equal(c->max_message, 1048576);
	assert_int_equal(c->max_command, 4096);
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_int_equal(c->log_format, LOG_FMT_JSON);
	assert_string_equal(c->log_file, "/var/log/ech3.log");
	assert_non_null(c->file);
	assert_string_equal(c->file, f->path);
	/* untouched keys keep their defaults */
	assert_int_equal(c->ping_interval, 30);
	assert_int_equal(finish(f), 0);
}

static void test_file_lists(void **state)
{
	struct fx *f = *state;

	/* a list () as well as an array [] */
	assert_int_equal(load(f, "fallback_hosts = ( \"x\", \"y\" );\n"), 0);
	assert_list(&f->cfg->fallback_hosts, 2, "x", "y");
	/* an empty array clears */
	assert_int_equal(load(f, "fallback_hosts = [];\n"), 0);
	assert_int_equal(f->cfg->fallback_hosts.n, 0);
	/* a single string for listen */
	assert_int_equal(load(f, "listen = \":7000\";\n"), 0);
	assert_list(&f->cfg->listen, 1, ":7000");
}

static void test_file_unknown_key(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f,
		"workers = 2;\n"
		"\n"
		"no_such_setting = 5;\n"), -1);
	assert_where(f, 3);
	assert_contains(f->err, "no_such_setting");
	assert_contains(f->err, "unknown");
}

static void test_file_unknown_nested_key(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f,
		"workers = 2;\n"
		"log: {\n"
		"  level = \"debug\";\n"
		"};\n"), -1);
	assert_where(f, 3);
	assert_contains(f->err, "log.level");
}

static void test_file_bad_type(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f, "token = \"a\";\nworkers = \"4\";\n"), -1);
	assert_where(f, 2);
	assert_contains(f->err, "workers");
	assert_contains(f->err, "wrong type");

	assert_int_equal(load(f, "\n\n\n\nallow_anonymous = \"yes\";\n"), -1);
	assert_where(f, 5);
	assert_contains(f->err, "allow_anonymous");

	assert_int_equal(load(f, "token = 1234;\n"), -1);
	assert_where(f, 1);
	assert_contains(f->err, "token");

	assert_int_equal(load(f, "connect_timeout = 1.5;\n"), -1);
	assert_where(f, 1);
	assert_contains(f->err, "connect_timeout");

	assert_int_equal(load(f, "listen = 8080;\n"), -1);
	assert_contains(f->err, "listen");

	assert_int_equal(load(f, "workers = [ 1 ];\n"), -1);
	assert_contains(f->err, "workers");
}

static void test_file_bad_list_element(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f, "# x\nlisten = [ 8080 ];\n"), -1);
	assert_where(f, 2);
	assert_contains(f->err, "listen");
}

static void test_file_out_of_range(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f, "# workers\nworkers = 1000;\n"), -1);
	assert_where(f, 2);
	assert_contains(f->err, "workers");
	assert_contains(f->err, "out of range");

	assert_int_equal(load(f, "max_message = 10;\n"), -1);
	assert_where(f, 1);
	assert_contains(f->err, "max_message");

	assert_int_equal(load(f, "connect_timeout = 0;\n"), -1);
	assert_contains(f->err, "connect_timeout");

	assert_int_equal(load(f, "workers = -1;\n"), -1);
	assert_contains(f->err, "workers");

	assert_int_equal(load(f, "workers = 100000000000L;\n"), -1);
	assert_contains(f->err, "workers");

	/* the limits themselves are in range */
	assert_int_equal(load(f, "workers = 256;\nconnect_timeout = 1;\n"), 0);
	assert_int_equal(f->cfg->workers, 256);
	assert_int_equal(f->cfg->connect_timeout, 1);
}

static void test_file_bad_enum(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f, "\nlog_level = \"verbose\";\n"), -1);
	assert_where(f, 2);
	assert_contains(f->err, "log_level");
	assert_contains(f->err, "verbose");
	assert_int_equal(load(f, "first_data_base64 = \"maybe\";\n"), -1);
	assert_contains(f->err, "first_data_base64");
	/* the one alias */
	assert_int_equal(load(f, "log_level = \"warning\";\n"), 0);
	assert_int_equal(f->cfg->log_level, LOG_WARN);
}

static void test_file_syntax_error(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f, "workers = 2;\nthis is not libconfig\n"), -1);
	assert_where(f, 2);
}

static void test_file_missing(void **state)
{
	struct fx *f = *state;
	const char *p = "/nonexistent-dir/ech3.cfg";

	assert_int_equal(config_load_file(f->cfg, p, f->err, sizeof(f->err)),
			 -1);
	assert_contains(f->err, p);
	assert_null(f->cfg->file);
}

/* ---- the environment ---- */

static void test_env_ech3_vars(void **state)
{
	struct fx *f = *state;
	struct config *c = f->cfg;

	setenv("ECH3_WORKERS", "3", 1);
	setenv("ECH3_LISTEN", "127.0.0.1:1, [::1]:2", 1);
	setenv("ECH3_ALLOW_ANONYMOUS", "yes", 1);
	setenv("ECH3_MAX_MESSAGE", "2m", 1);
	setenv("ECH3_LOG_FORMAT", "json", 1);
	setenv("ECH3_PID_FILE", "/tmp/p", 1);
	assert_int_equal(env(f), 0);
	assert_int_equal(c->workers, 3);
	assert_list(&c->listen, 2, "127.0.0.1:1", "[::1]:2");
	assert_int_equal(c->allow_anonymous, 1);
	assert_int_equal(c->max_message, 2 * 1024 * 1024);
	assert_int_equal(c->log_format, LOG_FMT_JSON);
	assert_string_equal(c->pid_file, "/tmp/p");
}

static void test_env_bad_values(void **state)
{
	struct fx *f = *state;

	setenv("ECH3_WORKERS", "many", 1);
	assert_int_equal(env(f), -1);
	assert_contains(f->err, "ECH3_WORKERS");
	assert_contains(f->err, "many");
	unsetenv("ECH3_WORKERS");

	setenv("ECH3_WORKERS", "999", 1);
	assert_int_equal(env(f), -1);
	assert_contains(f->err, "ECH3_WORKERS");
	assert_contains(f->err, "out of range");
	unsetenv("ECH3_WORKERS");

	setenv("ECH3_ALLOW_ANONYMOUS", "perhaps", 1);
	assert_int_equal(env(f), -1);
	assert_contains(f->err, "ECH3_ALLOW_ANONYMOUS");
	unsetenv("ECH3_ALLOW_ANONYMOUS");

	setenv("ECH3_LOG_LEVEL", "loud", 1);
	assert_int_equal(env(f), -1);
	assert_contains(f->err, "ECH3_LOG_LEVEL");
}

static void test_env_compat_token_prip(void **state)
{
	struct fx *f = *state;

	setenv("TOKEN", "compat-token", 1);
	setenv("PRIP", "1.1.1.1,fb.example", 1);
	assert_int_equal(env(f), 0);
	assert_string_equal(f->cfg->token, "compat-token");
	assert_list(&f->cfg->fallback_hosts, 2, "1.1.1.1", "fb.example");
}

static void test_env_ech3_beats_compat(void **state)
{
	struct fx *f = *state;

	setenv("TOKEN", "compat-token", 1);
	setenv("ECH3_TOKEN", "new-token", 1);
	setenv("PRIP", "1.1.1.1", 1);
	setenv("ECH3_FALLBACK_HOSTS", "2.2.2.2,3.3.3.3", 1);
	assert_int_equal(env(f), 0);
	assert_string_equal(f->cfg->token, "new-token");
	assert_list(&f->cfg->fallback_hosts, 2, "2.2.2.2", "3.3.3.3");
}

static void test_env_empty_token_ignored(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f, "token = \"from-file\";\n"), 0);
	setenv("TOKEN", "", 1);
	assert_int_equal(env(f), 0);
	assert_string_equal(f->cfg->token, "from-file");
}

static void test_env_port_replaces_every_port(void **state)
{
	struct fx *f = *state;

	assert_int_equal(load(f, "listen = [ \"127.0.0.1:1000\", \"[::1]:1001\","
				 " \":1002\", \"1003\" ];\n"), 0);
	setenv("PORT", "9090", 1);
	assert_int_equal(env(f), 0);
	assert_list(&f->cfg->listen, 4, "127.0.0.1:9090", "[::1]:9090",
		    ":9090", ":9090");
	assert_int_equal(finish(f), 0);
}

static void test_env_port_keeps_tls_marks(void **state)
{
	struct fx *f = *state;

	setenv("ECH3_LISTEN", "127.0.0.1:1 tls,[::1]:2 plain,3 tls", 1);
	setenv("PORT", "4430", 1);
	assert_int_equal(env(f), 0);
	assert_list(&f->cfg->listen, 3, "127.0.0.1:4430 tls",
		    "[::1]:4430 plain", ":4430 tls");
}

static void test_env_port_applies_to_ech3_listen(void **state)
{
	struct fx *f = *state;

	setenv("ECH3_LISTEN", "10.0.0.1:1,10.0.0.2:2", 1);
	setenv("PORT", "3000", 1);
	assert_int_equal(env(f), 0);
	assert_list(&f->cfg->listen, 2, "10.0.0.1:3000", "10.0.0.2:3000");
}

static void test_env_port_default_listen(void **state)
{
	struct fx *f = *state;

	setenv("PORT", "0", 1);	/* 0: any free port, fine for listening */
	assert_int_equal(env(f), 0);
	assert_list(&f->cfg->listen, 1, "0.0.0.0:0");
	unsetenv("PORT");

	setenv("PORT", "", 1);	/* empty: ignored */
	assert_int_equal(env(f), 0);
	assert_list(&f->cfg->listen, 1, "0.0.0.0:0");
}

static void test_env_bad_port(void **state)
{
	static const char *const bad[] = { "abc", "65536", "-1", "80 ", "1e3" };
	struct fx *f = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("PORT", bad[i], 1);
		if (env(f) != -1)
			fail_msg("PORT='%s' accepted", bad[i]);
		assert_contains(f->err, "PORT");
	}
	assert_list(&f->cfg->listen, 1, "0.0.0.0:8080");
}

/* ---- --set ---- */

static void test_set_values(void **state)
{
	struct fx *f = *state;
	struct config *c = f->cfg;

	assert_int_equal(set(f, "workers=8"), 0);
	assert_int_equal(c->workers, 8);
	assert_int_equal(set(f, "token=a=b"), 0);	/* first '=' splits */
	assert_string_equal(c->token, "a=b");
	assert_int_equal(set(f, "token="), 0);
	assert_string_equal(c->token, "");
	assert_int_equal(set(f, "listen=1.2.3.4:5, :6"), 0);
	assert_list(&c->listen, 2, "1.2.3.4:5", ":6");
	assert_int_equal(set(f, "max_message=2k"), 0);
	assert_int_equal(c->max_message, 2048);
	assert_int_equal(set(f, "max_message=1M"), 0);
	assert_int_equal(c->max_message, 1024 * 1024);
	assert_int_equal(set(f, "max_message=1g"), 0);
	assert_int_equal(c->max_message, 1024L * 1024 * 1024);
	assert_int_equal(set(f, "log_level=warning"), 0);
	assert_int_equal(c->log_level, LOG_WARN);
	assert_int_equal(set(f, "first_data_base64=off"), 0);
	assert_int_equal(c->first_data_base64, B64_OFF);
}

static void test_set_bools(void **state)
{
	static const char *const yes[] = { "1", "true", "TRUE", "yes", "On" };
	static const char *const no[] = { "0", "false", "No", "off", "" };
	struct fx *f = *state;
	char a[64];

	for (size_t i = 0; i < 5; i++) {
		snprintf(a, sizeof(a), "allow_anonymous=%s", yes[i]);
		assert_int_equal(set(f, a), 0);
		assert_int_equal(f->cfg->allow_anonymous, 1);
		snprintf(a, sizeof(a), "allow_anonymous=%s", no[i]);
		assert_int_equal(set(f, a), 0);
		assert_int_equal(f->cfg->allow_anonymous, 0);
	}
	assert_int_equal(set(f, "allow_anonymous=2"), -1);
	assert_contains(f->err, "allow_anonymous");
	assert_int_equal(set(f, "allow_anonymous=y"), -1);
}

static void test_set_errors(void **state)
{
	struct fx *f = *state;
	char longkey[128];

	assert_int_equal(set(f, "workers"), -1);
	assert_contains(f->err, "workers");
	assert_int_equal(set(f, "=5"), -1);
	assert_int_equal(set(f, ""), -1);
	assert_int_equal(set(f, "nope=1"), -1);
	assert_contains(f->err, "nope");
	assert_contains(f->err, "--set");
	assert_int_equal(set(f, "Workers=1"), -1);	/* keys are exact */
	assert_int_equal(set(f, "workers=1.5"), -1);
	assert_contains(f->err, "workers");
	assert_int_equal(set(f, "workers=0x10"), -1);
	assert_int_equal(set(f, "workers="), -1);
	assert_int_equal(set(f, "workers=4kb"), -1);
	assert_int_equal(set(f, "workers=k"), -1);
	assert_int_equal(set(f, "workers=257"), -1);
	assert_contains(f->err, "out of range");
	assert_int_equal(set(f, "max_message=99999999999999999999"), -1);
	assert_int_equal(set(f, "log_format=xml"), -1);
	memset(longkey, 'k', sizeof(longkey));
	strcpy(longkey + 100, "=1");
	assert_int_equal(set(f, longkey), -1);
	/* failures leave the old value */
	assert_int_equal(f->cfg->workers, 0);
	assert_int_equal(f->cfg->max_message, 16 * 1024 * 1024);
}

/* A k/m/g suffix must not wrap a huge number into range. */
static void test_set_suffix_overflow(void **state)
{
	struct fx *f = *state;

	/* 2^54 + 16 KiB = 2^64 + 16384: wraps to 16384 if unchecked */
	assert_int_equal(set(f, "max_message=18014398509482000k"), -1);
	assert_int_equal(f->cfg->max_message, 16 * 1024 * 1024);
	/* 2^44 + 2 MiB = 2^64 + 2 MiB */
	assert_int_equal(set(f, "max_message=17592186044418m"), -1);
	assert_int_equal(f->cfg->max_message, 16 * 1024 * 1024);
	/* 2^34 + 1 GiB = 2^64 + 1 GiB */
	assert_int_equal(set(f, "max_message=17179869185g"), -1);
	assert_int_equal(f->cfg->max_message, 16 * 1024 * 1024);
}

/* ---- precedence: file < env < --set ---- */

static void test_precedence(void **state)
{
	struct fx *f = *state;
	struct config *c = f->cfg;

	assert_int_equal(load(f,
		"workers = 2;\n"
		"token = \"file\";\n"
		"connect_timeout = 7;\n"
		"listen = \"127.0.0.1:1\";\n"), 0);
	setenv("ECH3_WORKERS", "3", 1);
	setenv("ECH3_TOKEN", "env", 1);
	setenv("PORT", "2", 1);
	assert_int_equal(env(f), 0);
	assert_int_equal(set(f, "workers=4"), 0);
	assert_int_equal(finish(f), 0);

	assert_int_equal(c->workers, 4);		/* --set */
	assert_string_equal(c->token, "env");		/* env over file */
	assert_int_equal(c->connect_timeout, 7);	/* file only */
	assert_list(&c->listen, 1, "127.0.0.1:2");	/* PORT over file */

	/* --set listen comes after PORT and wins */
	assert_int_equal(set(f, "listen=127.0.0.1:5"), 0);
	assert_list(&c->listen, 1, "127.0.0.1:5");
}

/* ---- cross-checks ---- */

static void test_finish_checks(void **state)
{
	struct fx *f = *state;

	assert_int_equal(set(f, "max_message=1024"), 0);
	assert_int_equal(finish(f), -1);	/* max_command 65536 > 1024 */
	assert_contains(f->err, "max_command");
	assert_int_equal(set(f, "max_command=1024"), 0);
	assert_int_equal(finish(f), 0);		/* equal is fine */

	/* the token travels in an HTTP header: no control characters */
	assert_int_equal(set(f, "token=tab\there"), 0);
	assert_int_equal(finish(f), -1);
	assert_contains(f->err, "token");
	assert_lacks(f->err, "tab\there");	/* no secret in messages */
	assert_int_equal(set(f, "token=a\x01" "b"), 0);
	assert_int_equal(finish(f), -1);
	assert_int_equal(set(f, "token=a\x7f"), 0);
	assert_int_equal(finish(f), -1);
	assert_int_equal(set(f, "token=line\r\nX-Evil: 1"), 0);
	assert_int_equal(finish(f), -1);
	assert_int_equal(set(f, "token=Good-Token_123~!"), 0);
	assert_int_equal(finish(f), 0);

	assert_int_equal(set(f, "fallback_hosts=ok.example,bad/host"), 0);
	assert_int_equal(finish(f), -1);
	assert_contains(f->err, "bad/host");
	assert_int_equal(set(f, "fallback_hosts=ok.example,10.0.0.1,::1"), 0);
	assert_int_equal(finish(f), 0);

	assert_int_equal(set(f, "listen=127.0.0.1:80,nonsense"), 0);
	assert_int_equal(finish(f), -1);
	assert_contains(f->err, "nonsense");
	assert_int_equal(set(f, "listen="), 0);
	assert_int_equal(finish(f), -1);
	assert_contains(f->err, "listen");
	assert_int_equal(set(f, "listen=127.0.0.1:70000"), 0);
	assert_int_equal(finish(f), -1);
}

/* ---- listen addresses ---- */

static void test_parse_listen(void **state)
{
	struct fx *f = *state;
	struct config *c = f->cfg;
	int tls = -1;
	struct sockaddr_storage ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	unsigned len = 0;
	char buf[64];

	assert_int_equal(config_parse_listen(c, "127.0.0.1:8080", &ss, &len,
					     &tls), 0);
	assert_int_equal(tls, 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(len, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(a4->sin_port), 8080);
	assert_int_equal(ntohl(a4->sin_addr.s_addr), 0x7f000001);

	assert_int_equal(config_parse_listen(c, ":9", &ss, &len, &tls), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(a4->sin_port), 9);
	assert_int_equal(a4->sin_addr.s_addr, htonl(INADDR_ANY));

	assert_int_equal(config_parse_listen(c, "7070", &ss, &len, &tls), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(a4->sin_port), 7070);
	assert_int_equal(a4->sin_addr.s_addr, htonl(INADDR_ANY));

	assert_int_equal(config_parse_listen(c, "*:1", &ss, &len, &tls), 0);
	assert_int_equal(a4->sin_addr.s_addr, htonl(INADDR_ANY));

	assert_int_equal(config_parse_listen(c, "0.0.0.0:0", &ss, &len, &tls), 0);
	assert_int_equal(ntohs(a4->sin_port), 0);

	assert_int_equal(config_parse_listen(c, "[::1]:443", &ss, &len, &tls), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(len, sizeof(struct sockaddr_in6));
	assert_int_equal(ntohs(a6->sin6_port), 443);
	assert_true(IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr));

	assert_int_equal(config_parse_listen(c, "[::]:80", &ss, &len, &tls), 0);
	assert_true(IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr));

	assert_int_equal(config_parse_listen(c, "[2001:db8::5]:65535", &ss,
					     &len, &tls), 0);
	assert_non_null(inet_ntop(AF_INET6, &a6->sin6_addr, buf, sizeof(buf)));
	assert_string_equal(buf, "2001:db8::5");
	assert_int_equal(ntohs(a6->sin6_port), 65535);
}

static void test_parse_listen_errors(void **state)
{
	static const char *const bad[] = {
		"", ":", "1.2.3.4:", "1.2.3.4", "1.2.3.4:65536", "1.2.3.4:-1",
		"1.2.3.4:http", "1.2.3.4:80x", "256.0.0.1:80", "1.2.3:80",
		"[::1]", "[::1]:", "[::1]:99999", "::1:80", "[::1:80",
		"[]:80", "[1.2.3.4]:80", "[zz::1]:80", "host name:80",
		" 1.2.3.4:80", "1.2.3.4 :80",
		"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:80",
	};
	struct fx *f = *state;
	struct sockaddr_storage ss;
	unsigned len;
	int tls;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (config_parse_listen(f->cfg, bad[i], &ss, &len, &tls) != -1)
			fail_msg("listen '%s' accepted", bad[i]);
}

static void test_parse_listen_tls_marks(void **state)
{
	struct fx *f = *state;
	struct sockaddr_storage ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	unsigned len;
	int tls = -1;

	assert_int_equal(config_parse_listen(f->cfg, "127.0.0.1:443 tls", &ss,
					     &len, &tls), 0);
	assert_int_equal(tls, 1);
	assert_int_equal(ntohs(a4->sin_port), 443);
	assert_int_equal(config_parse_listen(f->cfg, "[::1]:80 plain", &ss,
					     &len, &tls), 0);
	assert_int_equal(tls, 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(config_parse_listen(f->cfg, ":81   tls", &ss, &len,
					     &tls), 0);
	assert_int_equal(tls, 1);
	/* unmarked: TLS exactly when tls_cert is set */
	assert_int_equal(config_parse_listen(f->cfg, ":82", &ss, &len, &tls),
			 0);
	assert_int_equal(tls, 0);
	assert_int_equal(set(f, "tls_cert=/etc/ech3/cert.pem"), 0);
	assert_int_equal(config_parse_listen(f->cfg, ":82", &ss, &len, &tls),
			 0);
	assert_int_equal(tls, 1);
	assert_int_equal(config_parse_listen(f->cfg, ":82 plain", &ss, &len,
					     &tls), 0);
	assert_int_equal(tls, 0);
	/* anything else after the address */
	assert_int_equal(config_parse_listen(f->cfg, ":83 TLS", &ss, &len,
					     &tls), -1);
	assert_int_equal(config_parse_listen(f->cfg, ":83 ssl", &ss, &len,
					     &tls), -1);
	assert_int_equal(config_parse_listen(f->cfg, ":83 tls plain", &ss,
					     &len, &tls), -1);
	assert_int_equal(config_parse_listen(f->cfg, ":83 ", &ss, &len, &tls),
			 -1);
	assert_int_equal(config_parse_listen(f->cfg, "tls", &ss, &len, &tls),
			 -1);
}

static void test_finish_tls_needs_cert_and_key(void **state)
{
	struct fx *f = *state;

	assert_int_equal(set(f, "listen=127.0.0.1:443 tls,127.0.0.1:80"), 0);
	assert_int_equal(finish(f), -1);
	assert_contains(f->err, "tls_cert");
	assert_int_equal(set(f, "tls_cert=/c.pem"), 0);
	assert_int_equal(finish(f), -1);
	assert_contains(f->err, "tls_key");
	assert_int_equal(set(f, "tls_key=/k.pem"), 0);
	assert_int_equal(finish(f), 0);
	/* all plain: no cert needed */
	assert_int_equal(set(f, "tls_cert="), 0);
	assert_int_equal(set(f, "tls_key="), 0);
	assert_int_equal(set(f, "listen=127.0.0.1:80 plain,:81"), 0);
	assert_int_equal(finish(f), 0);
	assert_int_equal(set(f, "listen=:81 tlsx"), 0);
	assert_int_equal(finish(f), -1);
	assert_contains(f->err, ":81 tlsx");
}

/* ---- printing ---- */

/* noinline: gcc's -Wdangling-pointer misreads open_memstream's &buf once
 * this is inlined into a caller */
__attribute__((noinline)) static char *print_to_string(const struct config *c)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *m = open_memstream(&buf, &size);

	assert_non_null(m);
	config_print(c, m);
	fclose(m);
	return buf;
}

static void test_print_masks_secrets(void **state)
{
	struct fx *f = *state;
	char *out;

	assert_int_equal(set(f, "token=TopSecretValue"), 0);
	assert_int_equal(set(f, "workers=5"), 0);
	assert_int_equal(set(f, "fallback_hosts=a,b"), 0);
	out = print_to_string(f->cfg);
	assert_lacks(out, "TopSecretValue");
	assert_contains(out, "token = \"********\";\n");
	assert_contains(out, "workers = 5;\n");
	assert_contains(out, "fallback_hosts = [ \"a\", \"b\" ];\n");
	assert_contains(out, "listen = [ \"0.0.0.0:8080\" ];\n");
	assert_contains(out, "allow_anonymous = false;\n");
	assert_contains(out, "first_data_base64 = \"auto\";\n");
	assert_contains(out, "log_level = \"info\";\n");
	assert_contains(out, "# effective settings (no file)");
	free(out);

	/* an empty token is shown as empty (nothing to hide) */
	assert_int_equal(set(f, "token="), 0);
	assert_int_equal(set(f, "fallback_hosts="), 0);
	out = print_to_string(f->cfg);
	assert_contains(out, "token = \"\";\n");
	assert_contains(out, "fallback_hosts = [];\n");
	free(out);
}

static void test_print_names_file(void **state)
{
	struct fx *f = *state;
	char *out, want[128];

	assert_int_equal(load(f, "workers = 1;\n"), 0);
	out = print_to_string(f->cfg);
	snprintf(want, sizeof(want), "# effective settings (%s)", f->path);
	assert_contains(out, want);
	free(out);
}

/* What `ech3 -t` prints loads back as the same settings. */
static void roundtrip(struct fx *f)
{
	struct config *back = config_new();
	char *out = print_to_string(f->cfg), *out2 = NULL;
	int rc, same = 0;

	assert_non_null(back);
	write_file(f, out);
	rc = config_load_file(back, f->path, f->err, sizeof(f->err));
	if (rc == 0) {
		out2 = print_to_string(back);
		/* same text apart from the header line naming the file */
		same = strcmp(strchr(out, '\n'), strchr(out2, '\n')) == 0;
	}
	config_free(back);
	if (rc != 0 || !same) {
		/* report without leaking what the failure skips */
		static char msg[4096];

		snprintf(msg, sizeof(msg), "%s\n--- printed:\n%s--- reprinted:\n%s",
			 rc != 0 ? f->err : "reloaded settings differ", out,
			 out2 != NULL ? out2 : "");
		free(out);
		free(out2);
		fail_msg("printed config does not round-trip: %s", msg);
	}
	free(out);
	free(out2);
}

static void test_print_roundtrip(void **state)
{
	struct fx *f = *state;

	roundtrip(f);
	assert_int_equal(set(f, "listen=127.0.0.1:1,[::1]:2"), 0);
	assert_int_equal(set(f, "fallback_hosts=x.example,10.1.1.1"), 0);
	assert_int_equal(set(f, "log_level=debug"), 0);
	assert_int_equal(set(f, "max_message=1g"), 0);
	assert_int_equal(set(f, "max_lifetime=31536000"), 0);
	assert_int_equal(set(f, "allow_anonymous=on"), 0);
	assert_int_equal(set(f, "pid_file=/run/e.pid"), 0);
	roundtrip(f);
}

/* Strings with '"' or '\' must be escaped to stay libconfig syntax. */
static void test_print_roundtrip_escapes(void **state)
{
	struct fx *f = *state;

	assert_int_equal(set(f, "log_file=/tmp/a\"b\\c.log"), 0);
	roundtrip(f);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_file_all_types),
		T(test_file_lists),
		T(test_file_unknown_key),
		T(test_file_unknown_nested_key),
		T(test_file_bad_type),
		T(test_file_bad_list_element),
		T(test_file_out_of_range),
		T(test_file_bad_enum),
		T(test_file_syntax_error),
		T(test_file_missing),
		T(test_env_ech3_vars),
		T(test_env_bad_values),
		T(test_env_compat_token_prip),
		T(test_env_ech3_beats_compat),
		T(test_env_empty_token_ignored),
		T(test_env_port_replaces_every_port),
		T(test_env_port_applies_to_ech3_listen),
		T(test_env_port_keeps_tls_marks),
		T(test_env_port_default_listen),
		T(test_env_bad_port),
		T(test_set_values),
		T(test_set_bools),
		T(test_set_errors),
		T(test_set_suffix_overflow),
		T(test_precedence),
		T(test_finish_checks),
		T(test_parse_listen),
		T(test_parse_listen_errors),
		T(test_parse_listen_tls_marks),
		T(test_finish_tls_needs_cert_and_key),
		T(test_print_masks_secrets),
		T(test_print_names_file),
		T(test_print_roundtrip),
		T(test_print_roundtrip_escapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
