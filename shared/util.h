/*
 * util.h - small pure helpers both processes use: time, strings,
 * base64, constant-time comparison, random tokens, address formatting.
 */
#ifndef ECH3_UTIL_H
#define ECH3_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Monotonic clock in milliseconds. */
int64_t now_ms(void);

/* 1 when a and b (lengths la, lb) are equal; time depends only on lb. */
int ct_equal(const void *a, size_t la, const void *b, size_t lb);

/* 1 when s[0..len) is strictly valid standard base64: alphabet, length a
 * multiple of 4, at most two '=' only at the end, zero unused bits. */
int base64_is_strict(const char *s, size_t len);

/* Decodes strictly valid base64 into out (room for len/4*3 bytes).
 * Returns the decoded length, or -1 when the input is not strict. */
long base64_decode_strict(const char *s, size_t len, unsigned char *out);

/* Encodes len bytes as base64 into out (room for 4*((len+2)/3)+1). */
size_t base64_encode(const unsigned char *in, size_t len, char *out);

/* Steps through the entries of a comma-separated list (a header value, a
 * cgroup controller list), blanks (space, tab) trimmed, empty entries
 * skipped. *pos starts at 0. Returns 1 with the entry in *item / *ilen, 0
 * at the end. */
int list_next(const char *value, size_t len, size_t *pos, const char **item,
	      size_t *ilen);

/* Fills out with 2*nbytes lowercase hex chars of random data plus NUL.
 * Returns 0, or -1 if the system has no randomness to give. */
int random_hex(char *out, size_t nbytes);

/* Fills buf with n bytes from the kernel's CSPRNG (getrandom(2)). Returns
 * 0, or -1 with errno set. Used instead of RAND_bytes() on the connection
 * paths: starting OpenSSL's DRBG touches over a megabyte of libcrypto in
 * every worker. */
int random_bytes(void *buf, size_t n);

/* Parses a decimal port "1".."65535" (digits only). Returns the port or
 * -1. allow_zero accepts "0" (listen addresses). */
int parse_port(const char *s, size_t len, int allow_zero);

/* Formats a socket address as "1.2.3.4:80" or "[::1]:80". */
void sockaddr_format(const struct sockaddr *sa, char *out, size_t size);

/* Formats only the address part ("1.2.3.4", "::1"). */
void sockaddr_format_host(const struct sockaddr *sa, char *out, size_t size);

/* Case-insensitive comparison of s[0..len) with the NUL-terminated lit. */
int strn_ieq(const char *s, size_t len, const char *lit);

#endif
