/*
 * tls.c - the server's OpenSSL context.
 *
 * Owns: the current SSL_CTX (protocol floor, options, ciphers, certificate
 * and key, the CA that verifies client certificates) and the identity of a
 * verified peer. SIGHUP builds a whole new context and swaps it in: every SSL
 * created earlier holds its own reference to the old context, so established
 * connections continue untouched and the old context dies with the last one.
 * Must never: allow anything below TLS 1.2, renegotiation or compression;
 * hand out an SSL without a certificate; report an unverified certificate as
 * the peer's identity; put key material in error strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "principal.h"
#include "tls.h"

/* Used when the configuration leaves the lists empty: forward-secret AEAD
 * suites only. */
#define TLS_DEFAULT_CIPHERS                                                   \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"          \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"          \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS_DEFAULT_SUITES                                                    \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* Session id contexts: sessions negotiated where a client certificate was
 * optional must never be resumed where one is required (the resumed session
 * might carry no certificate), so the two kinds of SSL use different ones. */
static const unsigned char sid_optional[] = "referrald/optional";
static const unsigned char sid_required[] = "referrald/required";

struct tls_server {
	SSL_CTX *ctx;
	int has_ca;         /* a client CA is configured for this context */
};

/* Write "what: file: openssl reason" into err and clear OpenSSL's queue. */
static void tls_error(char *err, size_t errlen, const char *what, const char *file)
{
	char reason[256] = "unknown error";
	unsigned long e = ERR_peek_last_error();

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	if (file != NULL)
		snprintf(err, errlen, "%s: %s: %s", what, file, reason);
	else
		snprintf(err, errlen, "%s: %s", what, reason);
}

static SSL_CTX *tls_ctx_build(const struct config *cfg, int *has_ca, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	int minv = TLS1_2_VERSION;
	STACK_OF(X509_NAME) *names;

	*has_ca = 0;
	if (cfg->tls_cert_file == NULL || cfg->tls_key_file == NULL) {
		snprintf(err, errlen, "tls: certificate and key files are required");
		return NULL;
	}
	if (cfg->tls_min_version != NULL) {
		if (strcmp(cfg->tls_min_version, "1.3") == 0) {
			minv = TLS1_3_VERSION;
		} else if (strcmp(cfg->tls_min_version, "1.2") != 0) {
			snprintf(err, errlen, "tls: min version must be 1.2 or 1.3");
			return NULL;
		}
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		tls_error(err, errlen, "tls: cannot create context", NULL);
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, minv)) {
		tls_error(err, errlen, "tls: cannot set protocol floor", NULL);
		goto fail;
	}
	/* No renegotiation (a DoS lever and a source of confusion about
	 * which certificate a request came with), no compression (CRIME),
	 * server's cipher order (OpenSSL 3 already refuses client-initiated
	 * renegotiation by default), and a peer that closes without close_notify
	 * is an ordinary EOF rather than an error on OpenSSL 3. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
					 SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* No SSL_MODE_RELEASE_BUFFERS: it frees and allocates the 2 x 17 KiB
	 * buffers at every record, a malloc and free of each per request. The
	 * listener gives them back when a keep-alive connection idles
	 * (http_server.c), so idle connections still pin none. */

	if (!SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers && *cfg->tls_ciphers ?
						  cfg->tls_ciphers :
						  TLS_DEFAULT_CIPHERS)) {
		tls_error(err, errlen, "tls: bad cipher list", NULL);
		goto fail;
	}
	if (!SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites && *cfg->tls_ciphersuites ?
						   cfg->tls_ciphersuites :
						   TLS_DEFAULT_SUITES)) {
		tls_error(err, errlen, "tls: bad TLS 1.3 ciphersuites", NULL);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
		tls_error(err, errlen, "tls: cannot load certificate", cfg->tls_cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1) {
		tls_error(err, errlen, "tls: cannot load private key", cfg->tls_key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_error(err, errlen, "tls: private key does not match certificate",
			  cfg->tls_key_file);
		goto fail;
	}
	if (cfg->tls_ca_file != NULL && *cfg->tls_ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_file, NULL) != 1) {
			tls_error(err, errlen, "tls: cannot load client CA", cfg->tls_ca_file);
			goto fail;
		}
		/* Tell clients which issuers we accept, so office systems
		 * holding several certificates pick the right one. */
		names = SSL_load_client_CA_file(cfg->tls_ca_file);
		if (names == NULL) {
			tls_error(err, errlen, "tls: no CA names in", cfg->tls_ca_file);
			goto fail;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify_depth(ctx, 4);
		*has_ca = 1;
	}
	if (!SSL_CTX_set_session_id_context(ctx, sid_optional, sizeof(sid_optional) - 1)) {
		tls_error(err, errlen, "tls: cannot set session id context", NULL);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_server *tls_server_new(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_server *t = calloc(1, sizeof(*t));

	if (t == NULL) {
		snprintf(err, errlen, "tls: out of memory");
		return NULL;
	}
	t->ctx = tls_ctx_build(cfg, &t->has_ca, err, errlen);
	if (t->ctx == NULL) {
		free(t);
		return NULL;
	}
	return t;
}

int tls_server_reload(struct tls_server *t, const struct config *cfg, char *err, size_t errlen)
{
	int has_ca;
	SSL_CTX *ctx = tls_ctx_build(cfg, &has_ca, err, errlen);

	if (ctx == NULL)
		return -1;
	/* Drops only our reference: live SSLs keep the old context alive. */
	SSL_CTX_free(t->ctx);
	t->ctx = ctx;
	t->has_ca = has_ca;
	return 0;
}

SSL *tls_server_new_ssl(struct tls_server *t, int require_cert)
{
	SSL *ssl = SSL_new(t->ctx);
	int mode;

	if (ssl == NULL)
		return NULL;
	if (require_cert) {
		/* Without a CA nothing can verify, so every handshake fails:
		 * the safe reading of a listener that demands certificates. */
		mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		if (!SSL_set_session_id_context(ssl, sid_required, sizeof(sid_required) - 1)) {
			SSL_free(ssl);
			return NULL;
		}
	} else {
		/* Ask for a certificate when a CA exists: a presented one must
		 * verify (a foreign or expired one fails the handshake), but
		 * clients without one may go on to bearer tokens. */
		mode = t->has_ca ? SSL_VERIFY_PEER : SSL_VERIFY_NONE;
	}
	SSL_set_verify(ssl, mode, NULL);
	return ssl;
}

void tls_server_free(struct tls_server *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

void tls_peer_identity(SSL *ssl, struct peer_cert *out)
{
	X509 *cert;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	BIO *bio = NULL;
	int n;
	static const char hex[] = "0123456789abcdef";

	memset(out, 0, sizeof(*out));
	if (ssl == NULL)
		return;
	cert = SSL_get0_peer_certificate(ssl);
	/* Only a certificate that verified against our CA is an identity. */
	if (cert == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return;
	if (X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
		goto fail;
	for (i = 0; i < mdlen; i++) {
		out->fingerprint[2 * i] = hex[md[i] >> 4];
		out->fingerprint[2 * i + 1] = hex[md[i] & 15];
	}
	out->fingerprint[64] = '\0';

	bio = BIO_new(BIO_s_mem());
	if (bio == NULL)
		goto fail;
	/* Plain RFC 2253 as `openssl x509 -nameopt RFC2253` prints it
	 * (non-ASCII escaped), so operators can copy subjects from there. */
	if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0)
		goto fail;
	n = BIO_read(bio, out->subject, (int)sizeof(out->subject) - 1);
	if (n < 0)
		goto fail;
	out->subject[n] = '\0';
	/* A subject that does not fit would be a different identity when
	 * cut: treat it as no identity at all. */
	if (BIO_pending(bio) > 0)
		goto fail;
	BIO_free(bio);
	out->present = 1;
	return;
fail:
	BIO_free(bio);
	ERR_clear_error();
	memset(out, 0, sizeof(*out));
}
