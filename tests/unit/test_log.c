/*
 * test_log.c - the log line layout in both formats, levels, escaping, and the
 * one-event-one-line rule whatever the caller passes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static char out[65536];

/* Run the log call with stderr pointing at a temporary file, return what was written. */
#define CAPTURE(call)                                                        \
	do {                                                                 \
		FILE *tmp_ = tmpfile();                                      \
		int saved_ = dup(2);                                         \
		size_t n_;                                                   \
		assert_non_null(tmp_);                                       \
		dup2(fileno(tmp_), 2);                                       \
		call;                                                        \
		dup2(saved_, 2);                                             \
		close(saved_);                                               \
		rewind(tmp_);                                                \
		n_ = fread(out, 1, sizeof(out) - 1, tmp_);                   \
		out[n_] = '\0';                                              \
		fclose(tmp_);                                                \
	} while (0)

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

static void test_logfmt_layout(void **state)
{
	regex_t re;

	(void)state;
	log_setup(LOG_INFO, LOG_FMT_LOGFMT);
	CAPTURE(log_event(LOG_INFO, "0123abcd", "http.request", "route=%s status=%d", "health", 200));
	assert_int_equal(regcomp(&re,
				 "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
				 "level=info event=http.request request_id=0123abcd route=health "
				 "status=200\n$",
				 REG_EXTENDED),
			 0);
	if (regexec(&re, out, 0, NULL, 0) != 0)
		fail_msg("unexpected line: %s", out);
	regfree(&re);

	CAPTURE(log_info("start", "version=%s", "0.1.0"));
	assert_non_null(strstr(out, " level=info event=start version=0.1.0\n"));
	assert_null(strstr(out, "request_id"));
}

static void test_levels(void **state)
{
	(void)state;
	log_setup(LOG_WARN, LOG_FMT_LOGFMT);
	assert_false(log_enabled(LOG_INFO));
	assert_true(log_enabled(LOG_ERROR));
	CAPTURE(log_info("hidden", "a=1"));
	assert_string_equal(out, "");
	CAPTURE(log_error("shown", "a=1"));
	assert_non_null(strstr(out, "level=error event=shown a=1"));
	CAPTURE(log_warn("shown", "a=1"));
	assert_non_null(strstr(out, "level=warn"));
	log_setup(LOG_DEBUG, LOG_FMT_LOGFMT);
	CAPTURE(log_debug("dbg", "%s", ""));
	assert_non_null(strstr(out, "level=debug event=dbg\n"));
}

static void test_level_parse(void **state)
{
	enum log_level l;

	(void)state;
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_parse("WARNING", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_level_parse("error", &l), 0);
	assert_int_equal(l, LOG_ERROR);
	assert_int_equal(log_level_parse("loud", &l), -1);
}

static void test_esc(void **state)
{
	char buf[64];
	char small[8];

	(void)state;
	assert_string_equal(log_esc(buf, sizeof(buf), "a \"b\" \\c\nd\te"),
			    "a \\\"b\\\" \\\\c\\nd\\te");
	assert_string_equal(log_esc(buf, sizeof(buf), "\x01\xc3\xa9"), "\\x01\\xc3\\xa9");
	/* truncation never splits an escape and always terminates */
	assert_string_equal(log_esc(small, sizeof(small), "abcdef\"g"), "abcdef");
	assert_string_equal(log_esc(small, sizeof(small), NULL), "");
}

static void test_one_line_always(void **state)
{
	(void)state;
	log_setup(LOG_INFO, LOG_FMT_LOGFMT);
	/* A careless caller passing a newline still produces one line. */
	CAPTURE(log_info("ev\nil", "x=%s", "a\nb\rc"));
	assert_int_equal(count_lines(out), 1);
	assert_non_null(strstr(out, "event=ev?il x=a?b?c\n"));

	log_setup(LOG_INFO, LOG_FMT_JSON);
	CAPTURE(log_info("ev\nil", "x=%s", "a\nb"));
	assert_int_equal(count_lines(out), 1);
}

static void test_long_line(void **state)
{
	char *big = malloc(10000);

	(void)state;
	memset(big, 'a', 9999);
	big[9999] = '\0';
	log_setup(LOG_INFO, LOG_FMT_LOGFMT);
	CAPTURE(log_info("big", "v=%s", big));
	assert_int_equal(count_lines(out), 1);
	assert_int_equal(strlen(out), strlen(strstr(out, "v=")) + (size_t)(strstr(out, "v=") - out));
	assert_non_null(strstr(out, big));
	free(big);
}

static void test_json_members(void **state)
{
	char esc[64];
	json_t *j;
	json_error_t e;

	(void)state;
	log_setup(LOG_INFO, LOG_FMT_JSON);
	CAPTURE(log_event(LOG_ERROR, "ffee", "db.error", "status=%d ms=%s route=%s reason=\"%s\" "
				     "neg=-3 zero=0 lead=007 word",
			  503, "12.5", "referrals.create",
			  log_esc(esc, sizeof(esc), "bad \"thing\"\x01\xc3\xa9")));
	assert_int_equal(count_lines(out), 1);
	j = json_loads(out, 0, &e);
	if (!j)
		fail_msg("not JSON (%s): %s", e.text, out);
	assert_string_equal(json_string_value(json_object_get(j, "level")), "error");
	assert_string_equal(json_string_value(json_object_get(j, "event")), "db.error");
	assert_string_equal(json_string_value(json_object_get(j, "request_id")), "ffee");
	assert_int_equal(json_integer_value(json_object_get(j, "status")), 503);
	assert_true(json_is_real(json_object_get(j, "ms")));
	assert_int_equal(json_integer_value(json_object_get(j, "neg")), -3);
	assert_int_equal(json_integer_value(json_object_get(j, "zero")), 0);
	assert_string_equal(json_string_value(json_object_get(j, "lead")), "007");
	assert_string_equal(json_string_value(json_object_get(j, "route")), "referrals.create");
	assert_string_equal(json_string_value(json_object_get(j, "reason")),
			    "bad \"thing\"\\x01\\xc3\\xa9");
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "word");
	assert_non_null(json_string_value(json_object_get(j, "ts")));
	json_decref(j);
}

static void test_json_raw_bytes(void **state)
{
	json_t *j;
	json_error_t e;

	(void)state;
	log_setup(LOG_INFO, LOG_FMT_JSON);
	/* Unescaped quotes/backslashes/high bytes in a bare value stay valid JSON. */
	CAPTURE(log_info("odd", "v=a\\b\"c\xff"));
	j = json_loads(out, 0, &e);
	if (!j)
		fail_msg("not JSON (%s): %s", e.text, out);
	json_decref(j);
	CAPTURE(log_info("odd", "q=\"unterminated\\"));
	j = json_loads(out, 0, &e);
	if (!j)
		fail_msg("not JSON (%s): %s", e.text, out);
	json_decref(j);
	log_setup(LOG_INFO, LOG_FMT_LOGFMT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_logfmt_layout),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_level_parse),
		cmocka_unit_test(test_esc),
		cmocka_unit_test(test_one_line_always),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_json_members),
		cmocka_unit_test(test_json_raw_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
