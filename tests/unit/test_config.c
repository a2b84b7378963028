/*
 * test_config.c - the configuration parser: good files, every kind of bad
 * file (with the line it names), defaults, sections, quoting, the reload rules
 * and the reference table.
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

#include "config.h"
#include "log.h"

static char dir[64];
static char cert[128], key[128], uic[128], data[128], ca[128];

static void touch(char *out, size_t n, const char *name)
{
	FILE *f;

	snprintf(out, n, "%s/%s", dir, name);
	f = fopen(out, "w");
	assert_non_null(f);
	fputs("x\n", f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_config.XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	touch(cert, sizeof(cert), "server.crt");
	touch(key, sizeof(key), "server.key");
	touch(uic, sizeof(uic), "uic.key");
	touch(data, sizeof(data), "data.keys");
	touch(ca, sizeof(ca), "ca.crt");
	return 0;
}

static int teardown(void **state)
{
	char p[256];
	const char *names[] = { "server.crt", "server.key", "uic.key", "data.keys", "ca.crt",
				"t.conf", "u.conf", NULL };

	(void)state;
	for (int i = 0; names[i]; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

/* Write a file made of the minimal good config, then extra text. */
static const char *write_conf(const char *name, const char *head, const char *extra)
{
	static char path[2][256];
	static int which;
	char *p = path[which++ & 1];
	FILE *f;

	snprintf(p, 256, "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	if (head)
		fputs(head, f);
	else
		fprintf(f,
			"# minimal\n"
			"[server]\n"
			"listen = 127.0.0.1:18443\n"
			"[tls]\n"
			"cert_file = %s\n"
			"key_file = %s\n"
			"[database]\n"
			"conninfo = \"host=/tmp dbname=referrald\"\n"
			"[security]\n"
			"uic_key_file = %s\n"
			"data_key_file = %s\n"
			"token_key_file = %s\n"
			"key_store_conninfo = \"host=/tmp dbname=referrald_keys\"\n",
			cert, key, uic, data, data);
	if (extra)
		fputs(extra, f);
	fclose(f);
	return p;
}

static void expect_error(const char *extra, const char *want)
{
	struct config c;
	char err[512] = "";
	const char *p = write_conf("t.conf", NULL, extra);

	assert_int_equal(config_load(p, &c, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static void test_minimal_defaults(void **state)
{
	struct config c;
	char err[512] = "";
	const char *p = write_conf("t.conf", NULL, NULL);

	(void)state;
	assert_int_equal(config_load(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.listen, "127.0.0.1:18443");
	assert_string_equal(c.db_conninfo, "host=/tmp dbname=referrald");
	assert_int_equal(c.client_cert, CLIENT_CERT_OPTIONAL);
	assert_null(c.mtls_listen);
	assert_null(c.metrics_listen);
	assert_null(c.tls_ca_file);
	assert_int_equal(c.max_body_size, 64 * 1024);
	assert_int_equal(c.max_header_size, 8 * 1024);
	assert_int_equal(c.read_timeout_ms, 10000);
	assert_int_equal(c.idle_timeout_ms, 60000);
	assert_int_equal(c.db_pool_size, 8);
	assert_int_equal(c.db_migrate, MIGRATE_AUTO);
	assert_int_equal(c.log_level, LOG_INFO);
	assert_int_equal(c.log_format, LOG_FMT_LOGFMT);
	assert_string_equal(c.tls_min_version, "1.2");
	assert_string_equal(c.allowed_methods, "GET,POST,PUT,PATCH,DELETE");
	config_free(&c);
	assert_null(c.listen);
}

static void test_full_values(void **state)
{
	struct config c;
	char err[512] = "";
	char extra[1024];
	const char *p;

	(void)state;
	snprintf(extra, sizeof(extra),
		 "\n; a semicolon comment\n"
		 "[server]   # sections may come back\n"
		 "  client_cert   =   require  \n"
		 "mtls_listen = [::1]:18444\n"
		 "metrics_listen = 127.0.0.1:18445 # inline comment\n"
		 "max_body_size = 1m\n"
		 "max_header_size = 16K\n"
		 "read_timeout = 500ms\n"
		 "write_timeout = 2m\n"
		 "idle_timeout = 1h\n"
		 "drain_timeout = 0s\n"
		 "[tls]\n"
		 "ca_file = \"%s\"\n"
		 "min_version = 1.3\n"
		 "office_cert_identity = subject\n"
		 "[database]\n"
		 "pool_size = 3\n"
		 "migrate = off\n"
		 "[log]\n"
		 "level = debug\n"
		 "format = json\n",
		 ca);
	p = write_conf("t.conf", NULL, extra);
	assert_int_equal(config_load(p, &c, err, sizeof(err)), 0);
	assert_int_equal(c.client_cert, CLIENT_CERT_REQUIRE);
	assert_string_equal(c.mtls_listen, "[::1]:18444");
	assert_string_equal(c.metrics_listen, "127.0.0.1:18445");
	assert_int_equal(c.max_body_size, 1024 * 1024);
	assert_int_equal(c.max_header_size, 16 * 1024);
	assert_int_equal(c.read_timeout_ms, 500);
	assert_int_equal(c.write_timeout_ms, 120000);
	assert_int_equal(c.idle_timeout_ms, 3600000);
	assert_int_equal(c.drain_timeout_ms, 0);
	assert_string_equal(c.tls_ca_file, ca);
	assert_string_equal(c.tls_min_version, "1.3");
	assert_int_equal(c.office_cert_identity, CERT_ID_SUBJECT);
	assert_int_equal(c.db_pool_size, 3);
	assert_int_equal(c.db_migrate, MIGRATE_OFF);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(c.log_format, LOG_FMT_JSON);
	config_free(&c);
}

static void test_quoting(void **state)
{
	struct config c;
	char err[512] = "";
	const char *p;

	(void)state;
	p = write_conf("t.conf", NULL,
		       "[server]\nallowed_methods = \"GET,POST\" ; trailing\n"
		       "[tls]\nciphers = \"A\\\"B\"\n");
	assert_int_equal(config_load(p, &c, err, sizeof(err)), 0);
	assert_string_equal(c.allowed_methods, "GET,POST");
	assert_string_equal(c.tls_ciphers, "A\"B");
	config_free(&c);

	expect_error("[server]\nallowed_methods = \"GET\n", "t.conf:15: unterminated quoted value");
	expect_error("[server]\nallowed_methods = \"GET\" x\n", "t.conf:15: text after the closing");
}

static void test_bom_and_crlf(void **state)
{
	struct config c;
	char err[512] = "";
	char head[1024];
	const char *p;

	(void)state;
	snprintf(head, sizeof(head),
		 "\xef\xbb\xbf[server]\r\nlisten = 127.0.0.1:1\r\n[tls]\r\ncert_file = %s\r\n"
		 "key_file = %s\r\n[database]\r\nconninfo = x\r\n[security]\r\n"
		 "uic_key_file = %s\r\ndata_key_file = %s\r\ntoken_key_file = %s\r\n"
		 "key_store_conninfo = k\r\n",
		 cert, key, uic, data, data);
	p = write_conf("u.conf", head, NULL);
	if (config_load(p, &c, err, sizeof(err)) != 0)
		fail_msg("load failed: %s", err);
	assert_string_equal(c.listen, "127.0.0.1:1");
	assert_string_equal(c.tls_cert_file, cert);
	config_free(&c);
}

static void test_unknown_key_has_line(void **state)
{
	(void)state;
	/* the minimal file has 11 lines; the extra starts at line 12 */
	expect_error("[server]\nlisten_port = 1\n", "t.conf:15: unknown key \"listen_port\" in [server]");
}

static void test_unknown_section(void **state)
{
	(void)state;
	expect_error("\n[serv]\n", "t.conf:15: unknown section [serv]");
}

static void test_key_outside_section(void **state)
{
	struct config c;
	char err[512] = "";
	const char *p = write_conf("u.conf", "\n# nothing yet\nlisten = 1.2.3.4:5\n", NULL);

	(void)state;
	assert_int_equal(config_load(p, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "u.conf:3: key outside a [section]"));
}

static void test_bad_duration(void **state)
{
	(void)state;
	expect_error("[server]\nread_timeout = 10\n",
		     "t.conf:15: bad value for server.read_timeout: expected a duration");
	expect_error("[server]\nread_timeout = 10 s\n", "t.conf:15: bad value");
	expect_error("[server]\nread_timeout = -5s\n", "t.conf:15: bad value");
	expect_error("[server]\nread_timeout = 99999999999999999999h\n", "t.conf:15: bad value");
	expect_error("[server]\nread_timeout = 2d\n", "t.conf:15: bad value for server.read_timeout: "
						      "must be between 100ms and 1h");
}

static void test_bad_size_int_enum(void **state)
{
	(void)state;
	expect_error("[server]\nmax_body_size = 64q\n", "t.conf:15: bad value for server.max_body_size");
	expect_error("[server]\nmax_body_size = 1g\n", "must be between 1k and 64m");
	expect_error("[database]\npool_size = 0\n", "t.conf:15: bad value for database.pool_size: must "
						    "be between 1 and 512");
	expect_error("[database]\npool_size = 4x\n", "expected an integer");
	expect_error("[log]\nlevel = loud\n", "expected one of debug, info, warn, error");
	expect_error("[tls]\nmin_version = 1.1\n", "expected 1.2 or 1.3");
	expect_error("[server]\nallowed_methods = GET,TRACE\n", "t.conf:15: bad value for server.allowed_methods");
	expect_error("[server]\nmtls_listen = 127.0.0.1\n", "t.conf:15: bad value for server.mtls_listen: expected IP:port");
	expect_error("[server]\nmtls_listen = 127.0.0.1:0\n", "expected IP:port");
	expect_error("[server]\nmtls_listen = 127.0.0.1:65536\n", "expected IP:port");
	expect_error("[server]\nmtls_listen = localhost:443\n", "expected IP:port");
	expect_error("[server]\nmtls_listen = ::1:443\n", "expected IP:port");
	expect_error("[server]\nmtls_listen = []:443\n", "expected IP:port");
}

static void test_missing_required_file(void **state)
{
	char extra[512];

	(void)state;
	snprintf(extra, sizeof(extra), "[tls]\nca_file = %s/nope.crt\n", dir);
	expect_error(extra, "t.conf:15: tls.ca_file: cannot read");
	expect_error(extra, "No such file or directory");
}

static void test_missing_required_key(void **state)
{
	struct config c;
	char err[512] = "";
	const char *p;

	(void)state;
	p = write_conf("u.conf", "[server]\nlisten = 127.0.0.1:1\n", NULL);
	assert_int_equal(config_load(p, &c, err, sizeof(err)), -1);
	/* no line number: the key is absent from the file */
	assert_non_null(strstr(err, "u.conf: missing required key tls.cert_file"));
}

/* The key store is required: without it no referral's data key exists. */
static void test_key_store_required(void **state)
{
	struct config c;
	char err[512] = "", head[1024];
	const char *p;

	(void)state;
	snprintf(head, sizeof(head),
		 "[server]\nlisten = 127.0.0.1:1\n[tls]\ncert_file = %s\nkey_file = %s\n"
		 "[database]\nconninfo = x\n[security]\nuic_key_file = %s\ndata_key_file = %s\n"
		 "token_key_file = %s\n", cert, key, uic, data, data);
	p = write_conf("ks.conf", head, NULL);
	assert_int_equal(config_load(p, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing required key security.key_store_conninfo"));
	p = write_conf("ks.conf", head, "key_store_conninfo = \"dbname=referrald_keys\"\n");
	if (config_load(p, &c, err, sizeof(err)) != 0)
		fail_msg("load failed: %s", err);
	assert_string_equal(c.key_store_conninfo, "dbname=referrald_keys");
	assert_int_equal(c.key_store_pool_size, 4);
	assert_int_equal(c.retention_batch, 100);
	config_free(&c);
}

static void test_missing_config_file(void **state)
{
	struct config c;
	char err[512] = "";

	(void)state;
	assert_int_equal(config_load("/nonexistent/referrald.conf", &c, err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/referrald.conf: cannot open: No such file or directory");
}

static void test_duplicate_key(void **state)
{
	(void)state;
	expect_error("[server]\nlisten = 127.0.0.1:2\n",
		     "t.conf:15: duplicate key server.listen (first set on line 3)");
}

static void test_syntax(void **state)
{
	(void)state;
	expect_error("[server\n", "t.conf:14: expected [section]");
	expect_error("[server] x\n", "t.conf:14: text after [section]");
	expect_error("[server]\njust words\n", "t.conf:15: expected key = value");
	expect_error("[server]\n= 3\n", "t.conf:15: missing key");
	expect_error("[server]\nlisten =\n", "t.conf:15: duplicate key");
}

static void test_cross_checks(void **state)
{
	(void)state;
	expect_error("[server]\nclient_cert = require\n", "t.conf: tls.ca_file is required");
	expect_error("[server]\nmtls_listen = 127.0.0.1:9\n", "t.conf: tls.ca_file is required");
	expect_error("[server]\nmetrics_listen = 127.0.0.1:18443\n", "metrics_listen must differ");
}

static void test_secret_never_echoed(void **state)
{
	struct config c;
	char err[512] = "";
	const char *p;

	(void)state;
	/* A bad value is described, never repeated: it may be a password. */
	p = write_conf("t.conf", NULL, "[database]\nreconnect_max = hunter2\n");
	assert_int_equal(config_load(p, &c, err, sizeof(err)), -1);
	assert_null(strstr(err, "hunter2"));
}

static void load_ok(const char *extra, struct config *c)
{
	char err[512] = "";
	const char *p = write_conf("t.conf", NULL, extra);

	if (config_load(p, c, err, sizeof(err)) != 0)
		fail_msg("load failed: %s", err);
}

static void test_reload_rules(void **state)
{
	struct config a, b;
	char err[256] = "";

	(void)state;
	load_ok(NULL, &a);
	load_ok("[log]\nlevel = warn\n[server]\nmax_body_size = 128k\nread_timeout = 3s\n"
		"[tls]\nmin_version = 1.3\n",
		&b);
	assert_int_equal(config_check_reload(&a, &b, err, sizeof(err)), 0);
	config_free(&b);
	config_free(&a);

	load_ok(NULL, &a);
	load_ok("[database]\npool_size = 2\n", &b);
	assert_int_equal(config_check_reload(&a, &b, err, sizeof(err)), -1);
	assert_string_equal(err, "database.pool_size cannot change on reload (restart needed)");
	config_free(&b);

	load_ok("[server]\nmetrics_listen = 127.0.0.1:9999\n", &b);
	assert_int_equal(config_check_reload(&a, &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "server.metrics_listen"));
	config_free(&b);
	config_free(&a);
}

static void test_reference_lists_every_key(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	assert_non_null(f);
	config_print_reference(f);
	fclose(f);
	assert_non_null(strstr(buf, "| `[server] listen` | IP:port | (none) | yes | no |"));
	assert_non_null(strstr(buf, "| `[log] level` | enum debug\\|info\\|warn\\|error | `info` | no | yes |"));
	assert_non_null(strstr(buf, "`[database] conninfo`"));
	assert_non_null(strstr(buf, "`[webhooks] batch`"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_full_values),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_bom_and_crlf),
		cmocka_unit_test(test_unknown_key_has_line),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_key_outside_section),
		cmocka_unit_test(test_bad_duration),
		cmocka_unit_test(test_bad_size_int_enum),
		cmocka_unit_test(test_missing_required_file),
		cmocka_unit_test(test_missing_required_key),
		cmocka_unit_test(test_key_store_required),
		cmocka_unit_test(test_missing_config_file),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_cross_checks),
		cmocka_unit_test(test_secret_never_echoed),
		cmocka_unit_test(test_reload_rules),
		cmocka_unit_test(test_reference_lists_every_key),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
