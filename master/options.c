/*
 * options.c - command-line parsing and configuration assembly.
 */
#include "options.h"

#include "../shared/privs.h"
#include "policy.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void options_usage(FILE *out)
{
	fputs(
"usage: ech3 [options]\n"
"       ech3 token --sub NAME [options]   (mint a JWT; ech3 token --help)\n"
"\n"
"A WebSocket-to-TCP tunnel server (pre-forked master and workers).\n"
"\n"
"options:\n"
"  -c, --config FILE     libconfig file (default " CONFIG_DEFAULT_FILE
" if it exists)\n"
"  -l, --listen ADDR     listen address, host:port or [v6]:port (repeatable)\n"
"  -w, --workers N       worker processes (0: one per usable CPU)\n"
"      --set KEY=VALUE   set any configuration key (repeatable)\n"
"  -t, --test            check the configuration, print it (secrets masked)\n"
"  -s, --signal NAME     signal the running master (found through pid_file):\n"
"                        reload, stop, quit, reopen or upgrade\n"
"  -h, --help            this help\n"
"  -v, --version         print the version\n"
"\n"
"Settings come from, in increasing precedence: defaults, the file, the\n"
"environment (ECH3_<KEY>, and PORT, TOKEN, PRIP), then flags.\n"
"\n"
"signals to the master:\n"
"  SIGTERM, SIGQUIT  graceful stop: stop accepting, drain up to\n"
"                    shutdown_timeout, exit 0 (a second SIGTERM: at once)\n"
"  SIGINT            stop at once\n"
"  SIGHUP            reload: re-read the configuration, start new workers,\n"
"                    old ones drain up to drain_timeout; an invalid\n"
"                    configuration is logged and the old one kept\n"
"  SIGUSR1           reopen the log file\n"
"  SIGUSR2           binary upgrade: exec the binary on disk with the\n"
"                    listening sockets, then drain the old workers\n"
"\n"
"See docs/ (configuration.md, operations.md) for everything else.\n",
	      out);
}

int options_add_set(struct options *o, const char *s)
{
	char **v = realloc(o->sets, (o->nsets + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	o->sets = v;
	if ((v[o->nsets] = strdup(s)) == NULL)
		return -1;
	o->nsets++;
	return 0;
}

static int add_listen(struct options *o, const char *addr)
{
	size_t old = o->listen ? strlen(o->listen) : 0;
	char *n = realloc(o->listen, old + strlen(addr) + 2);

	if (n == NULL)
		return -1;
	if (old == 0)
		strcpy(n, addr);
	else
		sprintf(n + old, ",%s", addr);
	o->listen = n;
	return 0;
}

int options_parse(struct options *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "workers", required_argument, NULL, 'w' },
		{ "set", required_argument, NULL, 'S' },
		{ "test", no_argument, NULL, 't' },
		{ "signal", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'v' },
		{ "print-config-doc", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	char buf[64];
	int ch, r = 0;

	memset(o, 0, sizeof(*o));
	o->mode = MODE_RUN;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:l:w:ts:hv", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o->file = optarg; break;
		case 'l': r = add_listen(o, optarg); break;
		case 'w':
			snprintf(buf, sizeof(buf), "workers=%s", optarg);
			r = options_add_set(o, buf);
			break;
		case 'S': r = options_add_set(o, optarg); break;
		case 't': o->mode = MODE_TEST; break;
		case 's':
			o->mode = MODE_SIGNAL;
			o->signal = optarg;
			if (options_signal_number(optarg) < 0) {
				fprintf(stderr, "ech3: -s %s: expected reload, "
					"stop, quit, reopen or upgrade\n", optarg);
				return -1;
			}
			break;
		case 'h': o->mode = MODE_HELP; break;
		case 'v': o->mode = MODE_VERSION; break;
		case 'D': o->mode = MODE_DOC; break;
		default:
			options_usage(stderr);
			return -1;
		}
		if (r < 0) {
			fprintf(stderr, "ech3: out of memory\n");
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ech3: unexpected argument '%s'\n", argv[optind]);
		options_usage(stderr);
		return -1;
	}
	return 0;
}

void options_free(struct options *o)
{
	for (size_t i = 0; i < o->nsets; i++)
		free(o->sets[i]);
	free(o->sets);
	free(o->listen);
}

/* Loads JWT keys and certificates and parses egress lists once, so
 * mistakes fail -t, the start or the reload. */
static int check_policy(const struct config *cfg, char *err, size_t errlen)
{
	struct worker_policy pol;

	memset(&pol, 0, sizeof(pol));
	if (policy_build(cfg, NULL, 0, &pol, err, errlen) < 0)
		return -1;
	policy_free(&pol);
	return 0;
}

struct config *options_build_config(const struct options *o, char *err,
				    size_t errlen)
{
	struct config *cfg = config_new();
	const char *file = o->file;
	struct privs privs;

	if (cfg == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (file == NULL && access(CONFIG_DEFAULT_FILE, F_OK) == 0)
		file = CONFIG_DEFAULT_FILE;
	if (file != NULL && config_load_file(cfg, file, err, errlen) < 0)
		goto fail;
	if (config_load_env(cfg, err, errlen) < 0)
		goto fail;
	if (o->listen != NULL &&
	    config_set_value(cfg, "listen", o->listen, "--listen", err,
			     errlen) < 0)
		goto fail;
	for (size_t i = 0; i < o->nsets; i++)
		if (config_set(cfg, o->sets[i], err, errlen) < 0)
			goto fail;
	if (config_finish(cfg, err, errlen) < 0 ||
	    check_policy(cfg, err, errlen) < 0 ||
	    privs_resolve(cfg, &privs, err, errlen) < 0)
		goto fail;
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}

int options_signal_number(const char *name)
{
	static const struct { const char *name; int sig; } map[] = {
		{ "reload", SIGHUP }, { "stop", SIGTERM }, { "quit", SIGQUIT },
		{ "reopen", SIGUSR1 }, { "upgrade", SIGUSR2 },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(name, map[i].name) == 0)
			return map[i].sig;
	return -1;
}
