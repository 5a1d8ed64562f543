/*
 * main.c - ech3's entry point: parse the command line, build the
 * configuration, then either check it (-t), print help or version, or
 * become the master.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../shared/config.h"
#include "../shared/log.h"
#include "master.h"
#include "options.h"

int main(int argc, char **argv)
{
	struct options opt;
	struct config *cfg;
	char err[CONFIG_ERR_MAX];
	int rc;

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
	if (opt.mode == MODE_TEST) {
		config_print(cfg, stdout);
		printf("# configuration ok\n");
		config_free(cfg);
		options_free(&opt);
		return 0;
	}
	rc = master_run(&opt, cfg);
	options_free(&opt);
	return rc;
}
