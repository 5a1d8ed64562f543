/*
 * options.h - the command line, and building a whole configuration from
 * its sources in order: defaults, file, environment, flags. The master
 * keeps the options so a reload builds the next configuration the same way.
 */
#ifndef ECH3_OPTIONS_H
#define ECH3_OPTIONS_H

#include <stddef.h>

#include "../shared/config.h"

enum run_mode { MODE_RUN, MODE_TEST, MODE_HELP, MODE_VERSION, MODE_DOC,
		MODE_SIGNAL };

struct options {
	enum run_mode mode;
	const char *file;	/* -c; NULL = default file if it exists */
	char **sets;		/* "key=value" from flags, in order */
	size_t nsets;
	char *listen;		/* -l values joined with ',' */
	const char *signal;	/* -s: reload, stop, quit, reopen, upgrade */
};

/* Parses argv. Returns 0, or -1 after printing a usage error. */
int options_parse(struct options *o, int argc, char **argv);
void options_free(struct options *o);

/* Appends a "key=value" as --set does. Returns 0 or -1 (out of memory). */
int options_add_set(struct options *o, const char *s);

/* Builds and checks a config. NULL with err set when invalid. */
struct config *options_build_config(const struct options *o, char *err,
				    size_t errlen);

void options_usage(FILE *out);

/* -s NAME: the signal number, or -1 if NAME is unknown. */
int options_signal_number(const char *name);

#endif
