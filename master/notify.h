/*
 * notify.h - the systemd notification protocol (sd_notify): one datagram
 * of "KEY=value" lines to $NOTIFY_SOCKET. Written here instead of linking
 * libsystemd, which would map six more libraries (lzma, zstd, lz4,
 * gcrypt, gpg-error, cap) into every ech3 process for one sendmsg().
 */
#ifndef ECH3_NOTIFY_H
#define ECH3_NOTIFY_H

/* Sends state when NOTIFY_SOCKET is set; does nothing otherwise. Returns
 * 1 sent, 0 not under systemd, -1 on error. */
int notify(const char *state);

int notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
