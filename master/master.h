/*
 * master.h - the master process: owns the listening sockets, forks and
 * supervises worker generations, and turns signals into stop, reload and
 * log reopen.
 */
#ifndef ECH3_MASTER_H
#define ECH3_MASTER_H

#include "../shared/config.h"
#include "options.h"

/* Runs until stopped; returns the process exit status. Takes cfg. */
int master_run(const struct options *opt, struct config *cfg);

#endif
