/*
 * fuzz_config.c - libFuzzer harness for the settings loader
 * (shared/config.c): the libconfig file path (config_load_file +
 * config_finish + config_print), a --set assignment (config_set on the
 * input as "key=value"), and the compat PORT variable (config_load_env,
 * which rewrites every listen address).
 *
 * The input is written to one temp file (rewritten per run) and read with
 * config_load_file, exactly as `ech3 -c FILE` does. Then the input, cut at
 * its first NUL, is applied as one --set assignment, and the text after
 * its last '#' (a libconfig comment, so the file stays valid; cut at the
 * newline or 15 bytes) as PORT on top of a config whose listen list came
 * from the file. Nothing is checked but memory safety, UB and that every error
 * leaves a NUL-terminated message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../shared/config.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

extern char **environ;

static char path[64];
static int fd = -1;
static FILE *devnull;

static void init(void)
{
	const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	snprintf(path, sizeof(path), "%s/ech3-fuzz-config-XXXXXX", dir);
	fd = mkstemp(path);
	if (fd < 0)
		abort();
	devnull = fopen("/dev/null", "w");
	if (devnull == NULL)
		abort();
	/* Nothing from the caller's environment may change the outcome. */
	for (char **e = environ; e != NULL && *e != NULL;) {
		if (strncmp(*e, "ECH3_", 5) == 0 || strncmp(*e, "PORT=", 5) == 0 ||
		    strncmp(*e, "TOKEN=", 6) == 0 || strncmp(*e, "PRIP=", 5) == 0) {
			char name[128];
			size_t n = strcspn(*e, "=");
			snprintf(name, sizeof(name), "%.*s", (int)n, *e);
			unsetenv(name);
			e = environ;	/* restart: the array changed */
			continue;
		}
		e++;
	}
}

static void cleanup(void)
{
	if (fd >= 0)
		unlink(path);
}

static void check_err(const char *err)
{
	CHECK(memchr(err, '\0', CONFIG_ERR_MAX) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CONFIG_ERR_MAX];
	struct config *cfg;
	char *s, port[16];
	size_t n;

	if (fd < 0) {
		init();
		atexit(cleanup);
	}

	/* 1. the file */
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	cfg = config_new();
	if (cfg == NULL)
		return 0;
	err[0] = '\0';
	if (config_load_file(cfg, path, err, sizeof(err)) == 0) {
		if (config_finish(cfg, err, sizeof(err)) == 0)
			config_print(cfg, devnull);
		else
			check_err(err);
	} else {
		check_err(err);
	}

	/* 2. the input as one --set assignment */
	s = malloc(size + 1);
	if (s == NULL) {
		config_free(cfg);
		return 0;
	}
	memcpy(s, data, size);
	s[size] = '\0';
	err[0] = '\0';
	if (config_set(cfg, s, err, sizeof(err)) == 0)
		(void)config_finish(cfg, err, sizeof(err));
	check_err(err);
	free(s);

	/* 3. PORT from the text after the input's last '#' (a libconfig
	 * comment, so the file stays valid), over the listen list above */
	{
		const uint8_t *h = memrchr(data, '#', size), *e;
		if (h != NULL) {
			h++;
			e = memchr(h, '\n', (size_t)(data + size - h));
			n = (size_t)((e != NULL ? e : data + size) - h);
			if (n > sizeof(port) - 1)
				n = sizeof(port) - 1;
			memcpy(port, h, n);
			port[n] = '\0';
			if (n > 0 && memchr(port, '\0', n) == NULL) {
				setenv("PORT", port, 1);
				err[0] = '\0';
				if (config_load_env(cfg, err, sizeof(err)) == 0)
					(void)config_finish(cfg, err, sizeof(err));
				check_err(err);
				unsetenv("PORT");
			}
		}
	}
	config_free(cfg);
	return 0;
}
