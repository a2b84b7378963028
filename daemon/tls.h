/*
 * tls.h - the server's OpenSSL context.
 * What it owns and must never do: tls.c.
 */
#ifndef REFD_TLS_H
#define REFD_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

struct config;
struct peer_cert;
struct tls_server;

struct tls_server *tls_server_new(const struct config *cfg, char *err, size_t errlen);
/* Build a new context from cfg's files; on success swap it in (returns 0),
 * on failure keep the old one and return -1 with the reason. */
int tls_server_reload(struct tls_server *t, const struct config *cfg, char *err, size_t errlen);
/* New SSL for an accepted connection. require_cert: fail the handshake without
 * a client certificate. Returns NULL only on allocation failure. */
SSL *tls_server_new_ssl(struct tls_server *t, int require_cert);
void tls_server_free(struct tls_server *t);

/* Fill *out from the connection's verified peer certificate (present = 0 if none). */
void tls_peer_identity(SSL *ssl, struct peer_cert *out);

#endif
