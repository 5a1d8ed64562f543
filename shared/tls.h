/*
 * tls.h - OpenSSL contexts: the listener's server context (certificate
 * chain and key from PEM files, TLS 1.2 and 1.3, modern ciphers, ALPN
 * http/1.1) and the client context for wss:// upstreams (verifying).
 */
#ifndef ECH3_TLS_H
#define ECH3_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Builds a server context from PEM files. NULL with err set (naming the
 * file and OpenSSL's reason) when the certificate or key is unusable. */
SSL_CTX *tls_server_ctx(const char *cert_file, const char *key_file,
			char *err, size_t errlen);

/* Builds a verifying client context; ca_file NULL or "" uses the system
 * store. NULL with err set on failure. */
SSL_CTX *tls_client_ctx(const char *ca_file, char *err, size_t errlen);

#endif
