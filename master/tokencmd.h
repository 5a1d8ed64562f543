/*
 * tokencmd.h - `ech3 token`: mint a JWT from the configured key for an
 * operator to hand to a user.
 */
#ifndef ECH3_TOKENCMD_H
#define ECH3_TOKENCMD_H

/* Runs `ech3 token ...` (argv[0] is "token"); returns the exit status. */
int tokencmd_main(int argc, char **argv);

#endif
