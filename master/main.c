/*
 * main.c - ech3's entry point: parse the command line, build the
 * configuration, then either check it (-t), print help or version, or
 * become the master.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/config.h"
#include "../shared/log.h"
#include "master.h"
#include "options.h"
#include "tokencmd.h"
#include "upgrade.h"

/* ech3 -s NAME: signals the master whose pid is in pid_file. */
static int signal_master(const struct config *cfg, const char *name)
{
	FILE *f;
	long pid = 0;

	if (cfg->pid_file[0] == '\0') {
		fprintf(stderr, "ech3: -s needs pid_file to be set\n");
		return 1;
	}
	f = fopen(cfg->pid_file, "r");
	if (f == NULL || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
		fprintf(stderr, "ech3: no master pid in %s%s%s\n", cfg->pid_file,
			f == NULL ? ": " : "", f == NULL ? strerror(errno) : "");
		if (f != NULL)
			fclose(f);
		return 1;
	}
	fclose(f);
	if (kill((pid_t)pid, options_signal_number(name)) < 0) {
		fprintf(stderr, "ech3: signal %s to pid %ld: %s\n", name, pid,
			strerror(errno));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options opt;
	struct config *cfg;
	char err[CONFIG_ERR_MAX];
	int rc;

	if (argc > 1 && strcmp(argv[1], "token") == 0)
		return tokencmd_main(argc - 1, argv + 1);
	if (options_parse(&opt, argc, argv) < 0)
		return 2;
	switch (opt.mode) {
	case MODE_HELP:
		options_usage(stdout);
		options_free(&opt);
		return 0;
	case MODE_VERSION:
		printf("ech3 " ECH3_VERSION "\n");
		options_free(&opt);
		return 0;
	case MODE_DOC:
		config_print_doc(stdout);
		options_free(&opt);
		return 0;
	default:
		break;
	}
	cfg = options_build_config(&opt, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "ech3: configuration error: %s\n", err);
		options_free(&opt);
		return 1;
	}
	if (opt.mode == MODE_SIGNAL) {
		rc = signal_master(cfg, opt.signal);
		config_free(cfg);
		options_free(&opt);
		return rc;
	}
	if (opt.mode == MODE_TEST) {
		config_print(cfg, stdout);
		printf("# configuration ok\n");
		config_free(cfg);
		options_free(&opt);
		return 0;
	}
	upgrade_init(argv);
	rc = master_run(&opt, cfg);
	options_free(&opt);
	return rc;
}
