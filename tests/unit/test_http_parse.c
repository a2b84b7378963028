/*
 * test_http_parse.c - the request head split in place (http_parse.c): the
 * method and version, header lookup (case-insensitive, by length first, the
 * first one wins), body framing, keep-alive and Expect as the transport reads
 * them, and a cleared request.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <event2/http.h>

#include "http_parse.h"

static struct hp_request rq;
static char buf[2048];

static int parse(const char *head)
{
	size_t n = strlen(head);

	assert_true(n < sizeof(buf));
	memcpy(buf, head, n);
	return hp_parse_head(buf, n, &rq);
}

static void test_request_line(void **state)
{
	(void)state;
	assert_int_equal(parse("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
	assert_int_equal(rq.method, EVHTTP_REQ_GET);
	assert_string_equal(rq.target, "/healthz");
	assert_int_equal(rq.minor, 1);
	assert_true(rq.keep_alive);
	assert_int_equal(parse("DELETE /x HTTP/1.0\r\n\r\n"), 0);
	assert_int_equal(rq.method, EVHTTP_REQ_DELETE);
	assert_int_equal(rq.minor, 0);
	assert_false(rq.keep_alive);
	assert_int_equal(parse("OPTIONS * HTTP/1.1\r\n\r\n"), 0);
	assert_int_equal(rq.method, EVHTTP_REQ_OPTIONS);
	/* A prefix or an extension of a known method is not that method. */
	assert_int_equal(parse("GE /x HTTP/1.1\r\n\r\n"), 0);
	assert_int_equal(rq.method, 0);
	assert_int_equal(parse("GETS /x HTTP/1.1\r\n\r\n"), 0);
	assert_int_equal(rq.method, 0);
	assert_int_equal(parse("get /x HTTP/1.1\r\n\r\n"), 0);
	assert_int_equal(rq.method, 0);
	assert_int_equal(parse("G(T /x HTTP/1.1\r\n\r\n"), -1);
	assert_string_equal(rq.bad, "bad_method");
	assert_int_equal(parse("GET /x HTTP/1.2\r\n\r\n"), -1);
	assert_string_equal(rq.bad, "bad_http_version");
	assert_int_equal(parse("GET /x HTTP/1.10\r\n\r\n"), -1);
	assert_int_equal(parse("GET /x HTTP/1.1\r\nHost: a\r\n"), -1);
	assert_string_equal(rq.bad, "incomplete_head");
	/* A CR that does not end a line stays in it, and a value with a
	 * control byte is refused (the raw scan refuses it earlier). */
	assert_int_equal(parse("GET /x HTTP/1.1\r\nX-A: a\rb\r\n\r\n"), -1);
	assert_string_equal(rq.bad, "control_char_in_header");
	assert_int_equal(parse("GET /x HTTP/1.1\r\nX-A: a\r\r\n\r\n"), -1);
	assert_string_equal(rq.bad, "control_char_in_header");
}

static void test_lookup(void **state)
{
	(void)state;
	assert_int_equal(parse("POST /v1/x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t \r\n"
			       "X-Auth: 1\r\nauthorization: second\r\nContent-Length: 3\r\n\r\n"),
			 0);
	assert_int_equal(rq.nh, 5);
	assert_string_equal(hp_header_get(&rq, "authorization"), "Bearer t");
	assert_string_equal(hp_header_get(&rq, "AUTHORIZATION"), "Bearer t");
	assert_int_equal(rq.h[1].name_len, strlen("Authorization"));
	assert_null(hp_header_get(&rq, "Authorizatio"));
	assert_null(hp_header_get(&rq, "Authorization2"));
	assert_null(hp_header_get(&rq, "Auth"));
	assert_string_equal(hp_header_get(&rq, "x-auth"), "1");
	assert_int_equal(rq.content_length, 3);
	assert_false(rq.chunked);
}

static void test_framing(void **state)
{
	(void)state;
	assert_int_equal(parse("POST /x HTTP/1.1\r\ncontent-length: 12\r\n\r\n"), 0);
	assert_int_equal(rq.content_length, 12);
	assert_int_equal(parse("POST /x HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\n\r\n"), 0);
	assert_true(rq.chunked);
	assert_int_equal(rq.content_length, 0);
	assert_int_equal(parse("POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
			 -1);
	assert_int_equal(parse("POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), -1);
	/* Names that only start like the framing headers frame nothing. */
	assert_int_equal(parse("POST /x HTTP/1.1\r\nContent-Lengths: x\r\n"
			       "Transfer-Encodings: gzip\r\n\r\n"),
			 0);
	assert_int_equal(rq.content_length, 0);
	assert_false(rq.chunked);
}

static void test_connection_expect(void **state)
{
	(void)state;
	assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n"), 0);
	assert_false(rq.keep_alive);
	/* The first Connection header is the one read. */
	assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: keep-alive\r\nconnection: close\r\n\r\n"),
			 0);
	assert_true(rq.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\nCONNECTION: keep-alive\r\n\r\n"), 0);
	assert_true(rq.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\nConnections: keep-alive\r\n\r\n"), 0);
	assert_false(rq.keep_alive);
	assert_int_equal(parse("POST / HTTP/1.1\r\nExpect: 100-Continue\r\n"
			       "Content-Length: 2\r\n\r\n"),
			 0);
	assert_true(rq.expect_continue);
	assert_false(rq.bad_expect);
	assert_int_equal(parse("POST / HTTP/1.1\r\nexpect: 100-continue\r\nExpect: x\r\n\r\n"), 0);
	assert_true(rq.expect_continue);
	assert_int_equal(parse("POST / HTTP/1.1\r\nExpect: gzip\r\n\r\n"), 0);
	assert_false(rq.expect_continue);
	assert_true(rq.bad_expect);
	assert_int_equal(parse("POST / HTTP/1.0\r\nExpect: gzip\r\n\r\n"), 0);
	assert_false(rq.bad_expect);
	assert_int_equal(parse("POST / HTTP/1.1\r\nExpects: gzip\r\n\r\n"), 0);
	assert_false(rq.bad_expect);
}

static void test_clear(void **state)
{
	(void)state;
	assert_int_equal(parse("POST /x HTTP/1.1\r\nA: 1\r\nContent-Length: 5\r\n"
			       "Transfer-Encoding: chunked\r\n\r\n"),
			 -1);
	hp_request_clear(&rq);
	assert_null(rq.target);
	assert_int_equal(rq.nh, 0);
	assert_int_equal(rq.method, 0);
	assert_int_equal(rq.content_length, 0);
	assert_false(rq.chunked || rq.keep_alive || rq.expect_continue || rq.bad_expect);
	assert_null(rq.bad);
	assert_null(hp_header_get(&rq, "A"));
}

/* As many headers as allowed parse; one more is refused. */
static void test_many(void **state)
{
	char head[2048];
	size_t o;
	int i;

	(void)state;
	o = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\n");
	for (i = 0; i < HP_MAX_HEADERS; i++)
		o += (size_t)snprintf(head + o, sizeof(head) - o, "H%d: %d\r\n", i, i);
	snprintf(head + o, sizeof(head) - o, "\r\n");
	assert_int_equal(parse(head), 0);
	assert_int_equal(rq.nh, HP_MAX_HEADERS);
	assert_string_equal(hp_header_get(&rq, "h99"), "99");
	snprintf(head + o, sizeof(head) - o, "X: y\r\n\r\n");
	assert_int_equal(parse(head), -1);
	assert_string_equal(rq.bad, "too_many_headers");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_line),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_connection_expect),
		cmocka_unit_test(test_clear),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests_name("http_parse", tests, NULL, NULL);
}
