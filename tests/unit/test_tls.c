/*
 * test_tls.c - the server context of tls.c, driven through in-memory
 * handshakes (a BIO pair, no sockets): the TLS 1.2 floor and the optional
 * 1.3 floor, client certificates (verified, required, foreign), the peer
 * identity (fingerprint as `openssl x509 -outform DER | sha256sum` prints it,
 * RFC 2253 subject), and reload keeping the old context on failure.
 * Certificates are made with the openssl command in a temp dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "request.h"
#include "tls.h"

static char dir[64];
static char office_fp[65];

static void path(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int setup(void **state)
{
	FILE *f;
	char fp[128];
	const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_tls.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	if (sh("cd %s && exec >/dev/null 2>&1 && "
	       "openssl req -x509 %s -keyout ca.key -out ca.crt -subj '/CN=test CA' -days 2 && "
	       "openssl req -x509 %s -keyout fca.key -out fca.crt -subj '/CN=foreign CA' -days 2 && "
	       "openssl req %s -keyout srv.key -out srv.csr -subj '/CN=localhost' && "
	       "openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
	       "-out srv.crt -days 2 && "
	       "openssl req %s -keyout srv2.key -out srv2.csr -subj '/CN=localhost' && "
	       "openssl x509 -req -in srv2.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
	       "-out srv2.crt -days 2 && "
	       "openssl req %s -keyout off.key -out off.csr "
	       "-subj '/C=KG/O=Office, Bishkek/CN=office-1' && "
	       "openssl x509 -req -in off.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
	       "-out off.crt -days 2 && "
	       "openssl req %s -keyout for.key -out for.csr -subj '/CN=intruder' && "
	       "openssl x509 -req -in for.csr -CA fca.crt -CAkey fca.key -CAcreateserial "
	       "-out for.crt -days 2 && "
	       "openssl x509 -in off.crt -outform DER | sha256sum | cut -c1-64 > off.fp",
	       dir, ec, ec, ec, ec, ec, ec) != 0)
		return -1;
	path(fp, sizeof(fp), "off.fp");
	f = fopen(fp, "r");
	if (f == NULL || fgets(office_fp, sizeof(office_fp), f) == NULL)
		return -1;
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return sh("rm -rf %s", dir) == 0 ? 0 : -1;
}

struct files {
	char cert[128], key[128], ca[128];
};

static void conf(struct config *c, struct files *f, const char *cert, const char *key,
		 const char *minv)
{
	memset(c, 0, sizeof(*c));
	path(f->cert, sizeof(f->cert), cert);
	path(f->key, sizeof(f->key), key);
	path(f->ca, sizeof(f->ca), "ca.crt");
	c->tls_cert_file = f->cert;
	c->tls_key_file = f->key;
	c->tls_ca_file = f->ca;
	c->tls_min_version = (char *)minv;
}

/* Handshake a client against server SSL sv through a BIO pair. Returns 1
 * when both sides completed, 0 when either failed. */
static int handshake(SSL *sv, int client_max, const char *cert, const char *key)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *cl;
	BIO *b1, *b2;
	char p1[128], p2[128];
	int i, cdone = 0, sdone = 0, ok = 0;

	assert_non_null(cctx);
	SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION);
	SSL_CTX_set_security_level(cctx, 0);    /* let the client offer old versions */
	if (client_max)
		SSL_CTX_set_max_proto_version(cctx, client_max);
	if (cert) {
		path(p1, sizeof(p1), cert);
		path(p2, sizeof(p2), key);
		assert_int_equal(SSL_CTX_use_certificate_file(cctx, p1, SSL_FILETYPE_PEM), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(cctx, p2, SSL_FILETYPE_PEM), 1);
	}
	cl = SSL_new(cctx);
	assert_int_equal(BIO_new_bio_pair(&b1, 0, &b2, 0), 1);
	SSL_set_bio(sv, b1, b1);
	SSL_set_bio(cl, b2, b2);
	SSL_set_accept_state(sv);
	SSL_set_connect_state(cl);
	for (i = 0; i < 50 && !(cdone && sdone); i++) {
		int rc;

		if (!cdone) {
			rc = SSL_do_handshake(cl);
			if (rc == 1)
				cdone = 1;
			else if (SSL_get_error(cl, rc) != SSL_ERROR_WANT_READ)
				goto out;
		}
		if (!sdone) {
			rc = SSL_do_handshake(sv);
			if (rc == 1)
				sdone = 1;
			else if (SSL_get_error(sv, rc) != SSL_ERROR_WANT_READ)
				goto out;
		}
	}
	/* TLS 1.3 clients finish before the server has judged their
	 * certificate: push one record through so a refusal shows. */
	if (cdone && sdone) {
		char buf[8];
		int rc = SSL_write(cl, "ping", 4);
		if (rc == 4 && SSL_read(sv, buf, sizeof(buf)) == 4)
			ok = 1;
	}
out:
	ERR_clear_error();
	SSL_free(cl);
	SSL_CTX_free(cctx);
	return ok;
}

static void test_floor_and_identity(void **state)
{
	struct config c;
	struct files f;
	char err[256];
	struct tls_server *t;
	struct peer_cert pc;
	SSL *sv;

	(void)state;
	conf(&c, &f, "srv.crt", "srv.key", "1.2");
	t = tls_server_new(&c, err, sizeof(err));
	assert_non_null(t);

	/* TLS 1.2 without a certificate: fine, no identity */
	sv = tls_server_new_ssl(t, 0);
	assert_int_equal(handshake(sv, TLS1_2_VERSION, NULL, NULL), 1);
	tls_peer_identity(sv, &pc);
	assert_int_equal(pc.present, 0);
	assert_int_equal(SSL_get_current_compression(sv) == NULL, 1);
	SSL_free(sv);

	/* TLS 1.1 and 1.0 never */
	sv = tls_server_new_ssl(t, 0);
	assert_int_equal(handshake(sv, TLS1_1_VERSION, NULL, NULL), 0);
	SSL_free(sv);
	sv = tls_server_new_ssl(t, 0);
	assert_int_equal(handshake(sv, TLS1_VERSION, NULL, NULL), 0);
	SSL_free(sv);

	/* the office certificate, TLS 1.3 and 1.2: identity as documented */
	sv = tls_server_new_ssl(t, 1);
	assert_int_equal(handshake(sv, 0, "off.crt", "off.key"), 1);
	assert_string_equal(SSL_get_version(sv), "TLSv1.3");
	tls_peer_identity(sv, &pc);
	assert_int_equal(pc.present, 1);
	assert_string_equal(pc.fingerprint, office_fp);
	assert_string_equal(pc.subject, "CN=office-1,O=Office\\, Bishkek,C=KG");
	SSL_free(sv);
	sv = tls_server_new_ssl(t, 0);
	assert_int_equal(handshake(sv, TLS1_2_VERSION, "off.crt", "off.key"), 1);
	tls_peer_identity(sv, &pc);
	assert_int_equal(pc.present, 1);
	assert_string_equal(pc.fingerprint, office_fp);
	SSL_free(sv);

	/* required: no certificate fails, in 1.2 and 1.3 */
	sv = tls_server_new_ssl(t, 1);
	assert_int_equal(handshake(sv, TLS1_2_VERSION, NULL, NULL), 0);
	SSL_free(sv);
	sv = tls_server_new_ssl(t, 1);
	assert_int_equal(handshake(sv, 0, NULL, NULL), 0);
	SSL_free(sv);

	/* a foreign CA's certificate fails even where certificates are optional */
	sv = tls_server_new_ssl(t, 0);
	assert_int_equal(handshake(sv, 0, "for.crt", "for.key"), 0);
	tls_peer_identity(sv, &pc);
	assert_int_equal(pc.present, 0);
	SSL_free(sv);

	tls_peer_identity(NULL, &pc);
	assert_int_equal(pc.present, 0);
	tls_server_free(t);
}

static void test_min_13(void **state)
{
	struct config c;
	struct files f;
	char err[256];
	struct tls_server *t;
	SSL *sv;

	(void)state;
	conf(&c, &f, "srv.crt", "srv.key", "1.3");
	t = tls_server_new(&c, err, sizeof(err));
	assert_non_null(t);
	sv = tls_server_new_ssl(t, 0);
	assert_int_equal(handshake(sv, TLS1_2_VERSION, NULL, NULL), 0);
	SSL_free(sv);
	sv = tls_server_new_ssl(t, 0);
	assert_int_equal(handshake(sv, 0, NULL, NULL), 1);
	SSL_free(sv);
	tls_server_free(t);

	conf(&c, &f, "srv.crt", "srv.key", "1.1");
	assert_null(tls_server_new(&c, err, sizeof(err)));
}

static void test_bad_files_and_reload(void **state)
{
	struct config c;
	struct files f;
	char err[256];
	struct tls_server *t;
	SSL *old, *sv;

	(void)state;
	conf(&c, &f, "srv.crt", "srv2.key", "1.2");        /* key of another cert */
	assert_null(tls_server_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "srv2.key"));
	conf(&c, &f, "missing.crt", "srv.key", "1.2");
	assert_null(tls_server_new(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "missing.crt"));

	conf(&c, &f, "srv.crt", "srv.key", "1.2");
	t = tls_server_new(&c, err, sizeof(err));
	assert_non_null(t);
	old = tls_server_new_ssl(t, 0);     /* an established connection's SSL */

	conf(&c, &f, "srv2.crt", "srv.key", "1.2");
	assert_int_equal(tls_server_reload(t, &c, err, sizeof(err)), -1);
	sv = tls_server_new_ssl(t, 0);      /* still the old, working context */
	assert_int_equal(handshake(sv, 0, NULL, NULL), 1);
	SSL_free(sv);

	conf(&c, &f, "srv2.crt", "srv2.key", "1.2");
	assert_int_equal(tls_server_reload(t, &c, err, sizeof(err)), 0);
	sv = tls_server_new_ssl(t, 0);
	assert_int_equal(handshake(sv, 0, NULL, NULL), 1);
	SSL_free(sv);
	/* the SSL made before the swap still works on its old context */
	assert_int_equal(handshake(old, 0, NULL, NULL), 1);
	SSL_free(old);
	tls_server_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_floor_and_identity),
		cmocka_unit_test(test_min_13),
		cmocka_unit_test(test_bad_files_and_reload),
	};
	return cmocka_run_group_tests_name("tls", tests, setup, teardown);
}
