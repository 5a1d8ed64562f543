/*
 * upgrade.h - binary upgrade (SIGUSR2): the running master forks and
 * execs the binary on disk, handing over its listening sockets through
 * the environment (ECH3_INHERIT); the new master adopts them, starts its
 * workers and tells the old master (SIGWINCH) to drain and exit.
 */
#ifndef ECH3_UPGRADE_H
#define ECH3_UPGRADE_H

#include <stddef.h>
#include <sys/types.h>

#include "listen.h"

/* Remembers the binary path and argv for a later upgrade. */
void upgrade_init(char **argv);

/* Starts the new master with ls handed over. Returns its pid or -1. */
pid_t upgrade_exec(const struct listener *ls, size_t nls);

/* In a new master: the sockets named `name` handed over by the old one.
 * Fills fds (up to max) and returns their count (0 if none); each fd is
 * returned once. Call upgrade_adopt_done() after the last lookup: it
 * closes what nobody adopted and clears the environment. */
size_t upgrade_adopt(const char *name, int *fds, size_t max);
void upgrade_adopt_done(void);

/* The old master's pid when this process was started by an upgrade. */
pid_t upgrade_parent(void);

#endif
