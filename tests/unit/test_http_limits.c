/*
 * test_http_limits.c - the request-framing rules of http_limits.c: method
 * lists, Content-Length parsing, the token bytes, the header-list checks and
 * the raw scan of a request head (NUL, control bytes, bare CR/LF, obs-fold).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <event2/http.h>

#include "http_limits.h"

static void test_methods(void **state)
{
	unsigned m = 0;

	(void)state;
	assert_int_equal(http_methods_parse("GET", &m), 0);
	assert_int_equal(m, EVHTTP_REQ_GET);
	assert_int_equal(http_methods_parse("GET,POST,PUT,PATCH,DELETE", &m), 0);
	assert_int_equal(m, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
				    EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE);
	assert_int_equal(http_methods_parse("HEAD,OPTIONS", &m), 0);
	assert_int_equal(m, EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	assert_int_equal(http_methods_parse("", &m), -1);
	assert_int_equal(http_methods_parse(NULL, &m), -1);
	assert_int_equal(http_methods_parse("GET,", &m), -1);
	assert_int_equal(http_methods_parse(",GET", &m), -1);
	assert_int_equal(http_methods_parse("get", &m), -1);
	assert_int_equal(http_methods_parse("GET,TRACE", &m), -1);
	assert_int_equal(http_methods_parse("GETX", &m), -1);
	assert_int_equal(http_methods_parse("GET, POST", &m), -1);
}

static void test_content_length(void **state)
{
	uint64_t n = 99;

	(void)state;
	assert_int_equal(http_content_length_parse("0", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(http_content_length_parse("65536", &n), 0);
	assert_int_equal(n, 65536);
	assert_int_equal(http_content_length_parse("000012", &n), 0);
	assert_int_equal(n, 12);
	assert_int_equal(http_content_length_parse("123456789012345678", &n), 0);
	assert_int_equal(http_content_length_parse("1234567890123456789", &n), -1);
	assert_int_equal(http_content_length_parse("+2", &n), -1);
	assert_int_equal(http_content_length_parse("-2", &n), -1);
	assert_int_equal(http_content_length_parse(" 2", &n), -1);
	assert_int_equal(http_content_length_parse("2 ", &n), -1);
	assert_int_equal(http_content_length_parse("2,2", &n), -1);
	assert_int_equal(http_content_length_parse("0x10", &n), -1);
	assert_int_equal(http_content_length_parse("1e3", &n), -1);
	assert_int_equal(http_content_length_parse("", &n), -1);
	assert_int_equal(http_content_length_parse(NULL, &n), -1);
}

/* Runs a whole header list; returns the reason or NULL. */
static const char *check(const char *const *kv)
{
	struct http_hdr_check c;

	http_hdr_check_init(&c);
	for (; kv[0] != NULL; kv += 2)
		if (http_hdr_check_one(&c, kv[0], kv[1]) != 0)
			return c.bad;
	if (http_hdr_check_end(&c) != 0)
		return c.bad;
	return NULL;
}

static void test_headers(void **state)
{
	(void)state;
	const char *ok[] = { "Host", "x", "Content-Type", "application/json", "Content-Length",
			     "12", "Authorization", "Bearer abc\tdef", NULL };
	const char *chunked[] = { "Host", "x", "Transfer-Encoding", "Chunked", NULL };
	const char *dup_cl[] = { "Content-Length", "2", "content-length", "2", NULL };
	const char *dup_cl_diff[] = { "Content-Length", "2", "Content-Length", "3", NULL };
	const char *plus_cl[] = { "Content-Length", "+2", NULL };
	const char *list_cl[] = { "Content-Length", "2, 2", NULL };
	const char *cl_te[] = { "Content-Length", "3", "Transfer-Encoding", "chunked", NULL };
	const char *te_cl[] = { "Transfer-Encoding", "chunked", "Content-Length", "3", NULL };
	const char *te_gzip[] = { "Transfer-Encoding", "gzip, chunked", NULL };
	const char *te_dup[] = { "Transfer-Encoding", "chunked", "Transfer-Encoding", "chunked",
				 NULL };
	const char *te_identity[] = { "Transfer-Encoding", "identity", NULL };
	const char *ctl[] = { "X-A", "a\x01" "b", NULL };
	const char *del[] = { "X-A", "a\x7f", NULL };
	const char *cr[] = { "X-A", "a\rb", NULL };
	const char *lf[] = { "X-A", "a\nb", NULL };
	const char *sp_name[] = { "Content-Length ", "2", NULL };
	const char *colon_name[] = { "X:A", "2", NULL };
	const char *empty_name[] = { "", "2", NULL };
	const char *obs_text[] = { "X-A", "caf\xc3\xa9", NULL };

	assert_null(check(ok));
	assert_null(check(chunked));
	assert_null(check(obs_text));
	assert_string_equal(check(dup_cl), "duplicate_content_length");
	assert_string_equal(check(dup_cl_diff), "duplicate_content_length");
	assert_string_equal(check(plus_cl), "bad_content_length");
	assert_string_equal(check(list_cl), "bad_content_length");
	assert_string_equal(check(cl_te), "content_length_with_transfer_encoding");
	assert_string_equal(check(te_cl), "content_length_with_transfer_encoding");
	assert_string_equal(check(te_gzip), "bad_transfer_encoding");
	assert_string_equal(check(te_dup), "duplicate_transfer_encoding");
	assert_string_equal(check(te_identity), "bad_transfer_encoding");
	assert_string_equal(check(ctl), "control_char_in_header");
	assert_string_equal(check(del), "control_char_in_header");
	assert_string_equal(check(cr), "control_char_in_header");
	assert_string_equal(check(lf), "control_char_in_header");
	assert_string_equal(check(sp_name), "bad_header_name");
	assert_string_equal(check(colon_name), "bad_header_name");
	assert_string_equal(check(empty_name), "empty_header_name");
}

/* Scan a head given as one buffer, or split at every byte (TLS records can
 * cut anywhere); both must agree. */
static enum http_scan_state scan(const char *head, size_t len, const char **why,
				 size_t *used_total)
{
	struct http_head_scan a, b;
	size_t used, i, tot = 0;
	enum http_scan_state st1, st2 = HS_HEAD;

	http_head_scan_reset(&a);
	st1 = http_head_scan(&a, (const unsigned char *)head, len, &used);
	http_head_scan_reset(&b);
	for (i = 0; i < len && st2 == HS_HEAD; i++) {
		size_t u;
		st2 = http_head_scan(&b, (const unsigned char *)head + i, 1, &u);
		tot += u;
	}
	assert_int_equal(st1, st2);
	assert_int_equal(used, tot);
	*why = a.bad;
	if (used_total)
		*used_total = used;
	return st1;
}

#define SCAN(lit, why, used) scan(lit, sizeof(lit) - 1, why, used)

static void test_head_scan(void **state)
{
	const char *why;
	size_t used;
	static const char good[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-T: a\tb\r\n\r\nBODY\n\x01";

	(void)state;
	assert_int_equal(SCAN(good, &why, &used), HS_DONE);
	/* stops right after the empty line: the body is not looked at */
	assert_int_equal(used, strlen("GET /healthz HTTP/1.1\r\nHost: x\r\nX-T: a\tb\r\n\r\n"));
	assert_int_equal(SCAN("GET / HTTP/1.1\r\nHost: x\r\n", &why, NULL), HS_HEAD);
	assert_int_equal(SCAN("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", &why, NULL), HS_DONE);

	assert_int_equal(SCAN("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", &why, NULL), HS_BAD);
	assert_string_equal(why, "nul_in_head");
	assert_int_equal(SCAN("GET / HTTP/1.1\r\nX: a\x01" "b\r\n\r\n", &why, NULL), HS_BAD);
	assert_string_equal(why, "control_char_in_head");
	assert_int_equal(SCAN("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", &why, NULL), HS_BAD);
	assert_string_equal(why, "control_char_in_head");
	assert_int_equal(SCAN("GET / HTTP/1.1\nHost: x\n\n", &why, NULL), HS_BAD);
	assert_string_equal(why, "bare_lf");
	assert_int_equal(SCAN("GET / HTTP/1.1\r\nHost: x\n\r\n", &why, NULL), HS_BAD);
	assert_string_equal(why, "bare_lf");
	assert_int_equal(SCAN("GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n", &why, NULL), HS_BAD);
	assert_string_equal(why, "bare_cr");
	assert_int_equal(SCAN("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", &why, NULL), HS_BAD);
	assert_string_equal(why, "obs_fold");
	assert_int_equal(SCAN("GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", &why, NULL), HS_BAD);
	assert_string_equal(why, "obs_fold");
	/* a NUL after the head is body, not ours to judge */
	assert_int_equal(SCAN("GET / HTTP/1.1\r\n\r\n\0", &why, NULL), HS_DONE);
}

static void test_head_scan_resume(void **state)
{
	struct http_head_scan s;
	size_t used;

	(void)state;
	/* once bad, it stays bad; once done, further bytes are not consumed */
	http_head_scan_reset(&s);
	assert_int_equal(http_head_scan(&s, (const unsigned char *)"A\n", 2, &used), HS_BAD);
	assert_int_equal(http_head_scan(&s, (const unsigned char *)"\r\n\r\n", 4, &used), HS_BAD);
	assert_int_equal(used, 0);
	http_head_scan_reset(&s);
	assert_int_equal(http_head_scan(&s, (const unsigned char *)"A\r\n\r\n", 5, &used),
			 HS_DONE);
	assert_int_equal(http_head_scan(&s, (const unsigned char *)"\0\0", 2, &used), HS_DONE);
	assert_int_equal(used, 0);
	/* reset re-arms for the next request on the connection */
	http_head_scan_reset(&s);
	assert_int_equal(http_head_scan(&s, (const unsigned char *)"B\r\nX: \0", 7, &used),
			 HS_BAD);
}

/* The table says what RFC 9110 says: visible ASCII but the separators. */
static void test_tchar(void **state)
{
	(void)state;
	for (int c = 0; c < 256; c++) {
		int want = c > 0x20 && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;

		assert_int_equal(http_tchar((unsigned char)c), want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_tchar),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_head_scan),
		cmocka_unit_test(test_head_scan_resume),
	};
	return cmocka_run_group_tests_name("http_limits", tests, NULL, NULL);
}
