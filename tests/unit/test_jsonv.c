/*
 * test_jsonv.c - strict JSON input: parsing caps, the referral schema, the
 * format checks and query strings. Pure functions only (no loop, no database).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api_schema.h"
#include "jsonv.h"
#include "vocab.h"

static const char *good_referral =
	"{\"external_ref\":\"BISH-2026-00042\","
	"\"client\":{\"uic\":\"AB0312M85\",\"birth_year\":1985,\"gender\":\"m\","
	"\"languages\":[\"ky\",\"ru\"],\"region\":\"bishkek\","
	"\"contact\":{\"phone\":\"+996555123456\"}},"
	"\"needs\":[\"harm_reduction\",\"legal_support\"],\"urgency\":\"normal\","
	"\"consent\":{\"services\":true,\"report_back\":false,"
	"\"obtained_at\":\"2026-11-27T10:00:00Z\"},"
	"\"probation\":{\"starts_on\":\"2026-11-20\",\"ends_on\":\"2027-05-20\"},"
	"\"note\":\"free text for the worker\"}";

/* Parse + validate + rules; returns 0 or -1 with *e. */
static int check_referral(const char *text, struct jv_error *e)
{
	json_t *j = jsonv_parse(text, strlen(text), 65536, e);
	int rc;

	if (!j)
		return -1;
	rc = jsonv_validate(j, api_body_referral, "", e);
	if (rc == 0)
		rc = api_referral_rules(j, e);
	json_decref(j);
	return rc;
}

/* Replace the first occurrence of from by to in the good referral. */
static int check_variant(const char *from, const char *to, struct jv_error *e)
{
	char buf[4096];
	const char *p = strstr(good_referral, from);

	assert_non_null(p);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(p - good_referral), good_referral, to,
		 p + strlen(from));
	return check_referral(buf, e);
}

static void expect_error(const char *from, const char *to, int status, const char *code,
			 const char *field)
{
	struct jv_error e;

	memset(&e, 0, sizeof(e));
	assert_int_equal(check_variant(from, to, &e), -1);
	assert_int_equal(e.status, status);
	assert_string_equal(e.code, code);
	assert_string_equal(e.field, field);
}

static void test_good_referral(void **state)
{
	struct jv_error e;
	(void)state;
	assert_int_equal(check_referral(good_referral, &e), 0);
}

static void test_parse_errors(void **state)
{
	struct jv_error e;
	json_t *j;
	char deep[256];
	(void)state;

	j = jsonv_parse("{\"a\":1,\"a\":2}", 13, 100, &e);
	assert_null(j);
	assert_string_equal(e.code, "duplicate_key");

	j = jsonv_parse("{\"a\":1} x", 9, 100, &e);
	assert_null(j);
	assert_string_equal(e.code, "malformed_json");

	j = jsonv_parse("{\"a\":1}{}", 9, 100, &e);
	assert_null(j);
	assert_string_equal(e.code, "malformed_json");

	j = jsonv_parse("[1,2]", 5, 100, &e);
	assert_null(j);
	assert_string_equal(e.code, "invalid_type");

	j = jsonv_parse("", 0, 100, &e);
	assert_null(j);
	assert_string_equal(e.code, "malformed_json");

	j = jsonv_parse("{\"a\":\"x\\u0000y\"}", 16, 100, &e);
	assert_null(j);

	j = jsonv_parse("{\"a\":1}", 7, 3, &e);
	assert_null(j);
	assert_int_equal(e.status, 413);

	/* 9 levels of objects: over the cap of 8, with the pointer of the
	 * first container too deep. */
	snprintf(deep, sizeof(deep), "{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":"
		 "{}}}}}}}}}");
	j = jsonv_parse(deep, strlen(deep), 1000, &e);
	assert_null(j);
	assert_string_equal(e.code, "nesting_too_deep");
	assert_string_equal(e.field, "/a/a/a/a/a/a/a/a");

	/* Thousands of levels: jansson's own limit, same answer. */
	{
		char *huge = malloc(20001);
		memset(huge, '[', 10000);
		memset(huge + 10000, ']', 10000);
		huge[20000] = '\0';
		j = jsonv_parse(huge, 20000, 65536, &e);
		assert_null(j);
		assert_string_equal(e.code, "nesting_too_deep");
		free(huge);
	}
}

static void test_referral_fields(void **state)
{
	(void)state;
	/* No client name field exists. */
	expect_error("\"uic\":", "\"name\":\"Jane\",\"uic\":", 400, "unknown_field", "/client/name");
	expect_error("\"needs\":", "\"extra\":1,\"needs\":", 400, "unknown_field", "/extra");
	expect_error("\"uic\":\"AB0312M85\",", "", 400, "missing_field", "/client/uic");
	expect_error("\"AB0312M85\"", "\"AB\"", 400, "invalid_value", "/client/uic");
	expect_error("\"AB0312M85\"", "\"AB03 12\"", 400, "invalid_value", "/client/uic");
	expect_error("\"AB0312M85\"", "12345", 400, "invalid_type", "/client/uic");
	expect_error("1985", "\"1985\"", 400, "invalid_type", "/client/birth_year");
	expect_error("1985", "1985.0", 400, "invalid_type", "/client/birth_year");
	expect_error("1985", "1899", 400, "invalid_value", "/client/birth_year");
	expect_error("1985", "2999", 400, "invalid_value", "/client/birth_year");
	expect_error("\"gender\":\"m\"", "\"gender\":\"male\"", 400, "invalid_value",
		     "/client/gender");
	expect_error("[\"ky\",\"ru\"]", "[\"ky\",\"ky\"]", 400, "invalid_value",
		     "/client/languages/1");
	expect_error("[\"ky\",\"ru\"]", "[\"KY\"]", 400, "invalid_value", "/client/languages/0");
	expect_error("[\"ky\",\"ru\"]", "[]", 400, "invalid_value", "/client/languages");
	expect_error("\"bishkek\"", "\"Bishkek\"", 400, "invalid_value", "/client/region");
	expect_error("\"+996555123456\"", "\"0555123456\"", 400, "invalid_value",
		     "/client/contact/phone");
	expect_error("\"+996555123456\"", "\"+99655512345678901\"", 400, "invalid_value",
		     "/client/contact/phone");
	expect_error("[\"harm_reduction\",\"legal_support\"]", "[\"housing\"]", 400,
		     "invalid_value", "/needs/0");
	expect_error("[\"harm_reduction\",\"legal_support\"]",
		     "[\"legal_support\",\"legal_support\"]", 400, "invalid_value", "/needs/1");
	expect_error("\"normal\"", "\"soon\"", 400, "invalid_value", "/urgency");
	/* Consent to services is the database's rule (one layer,
	 * api_referral_submit: 422 consent_required); here it is only a boolean. */
	{
		struct jv_error e0;
		assert_int_equal(check_variant("\"services\":true", "\"services\":false", &e0), 0);
	}
	expect_error("\"services\":true", "\"services\":\"yes\"", 400, "invalid_type",
		     "/consent/services");
	expect_error("\"2026-11-27T10:00:00Z\"", "\"yesterday\"", 400, "invalid_value",
		     "/consent/obtained_at");
	expect_error("\"2027-05-20\"", "\"2026-11-19\"", 400, "invalid_value",
		     "/probation/ends_on");
	expect_error("\"2027-05-20\"", "\"2027-02-30\"", 400, "invalid_value",
		     "/probation/ends_on");
	expect_error("\"BISH-2026-00042\"", "\"\"", 400, "invalid_value", "/external_ref");
	expect_error("\"client\":{", "\"client\":{\"client\":{},", 400, "unknown_field",
		     "/client/client");
}

static void test_note_length(void **state)
{
	struct jv_error e;
	char *buf = malloc(16384), *note = malloc(8192);
	const char *p = strstr(good_referral, "\"free text for the worker\"");
	(void)state;

	/* 2000 code points of a two-byte letter: fine; 2001: too long. */
	for (int n = 2000; n <= 2001; n++) {
		size_t o = 0;
		note[o++] = '"';
		for (int i = 0; i < n; i++) {
			note[o++] = (char)0xd0;
			note[o++] = (char)0x96;
		}
		note[o++] = '"';
		note[o] = '\0';
		snprintf(buf, 16384, "%.*s%s}", (int)(p - good_referral), good_referral, note);
		if (n == 2000) {
			assert_int_equal(check_referral(buf, &e), 0);
		} else {
			assert_int_equal(check_referral(buf, &e), -1);
			assert_string_equal(e.field, "/note");
		}
	}
	free(buf);
	free(note);
}

static void test_formats(void **state)
{
	(void)state;
	assert_int_equal(jsonv_is_time("2026-11-28T09:00:00Z", 20), 0);
	assert_int_equal(jsonv_is_time("2026-11-28T09:00:00.123+05:00", 29), 0);
	assert_int_equal(jsonv_is_time("2026-11-28 09:00:00Z", 20), -1);
	assert_int_equal(jsonv_is_time("2026-13-28T09:00:00Z", 20), -1);
	assert_int_equal(jsonv_is_time("2026-11-28T24:00:00Z", 20), -1);
	assert_int_equal(jsonv_is_date("2024-02-29", 10), 0);
	assert_int_equal(jsonv_is_date("2023-02-29", 10), -1);
	assert_int_equal(jsonv_is_uuid("0b7e6a36-5a55-4c6e-9d5d-1c1f8e0e2f11", 36), 0);
	assert_int_equal(jsonv_is_uuid("0b7e6a36-5a55-4c6e-9d5d-1c1f8e0e2f1g", 36), -1);
	assert_int_equal(jsonv_is_duration("PT24H", 5), 0);
	assert_int_equal(jsonv_is_duration("P7D", 3), 0);
	assert_int_equal(jsonv_is_duration("PT2S", 4), 0);
	assert_int_equal(jsonv_is_duration("P1DT2H30M", 9), 0);
	assert_int_equal(jsonv_is_duration("P1M", 3), -1);  /* months vary: refused */
	assert_int_equal(jsonv_is_duration("PT", 2), -1);
	assert_int_equal(jsonv_is_duration("P24H", 4), -1);
	assert_int_equal(jsonv_is_duration("PT1S2H", 6), -1);
	assert_int_equal(jsonv_is_phone("+996555123456", 13), 0);
	assert_int_equal(jsonv_is_phone("+1234567", 8), -1);
	assert_int_equal(jsonv_is_idem_key("abc", 3), 0);
	assert_int_equal(jsonv_is_idem_key("a\tb", 3), -1);
	assert_int_equal(jsonv_is_https_url("https://partner.example/hook", 28), 0);
	assert_int_equal(jsonv_is_https_url("http://partner.example/hook", 27), -1);
	assert_int_equal(jsonv_utf8_len("\xd0\x96x", 3), 2);
}

static void test_query(void **state)
{
	static const struct jv_qparam params[] = {
		JQP_ENUM("status", vocab_referral_status),
		JQP_STR("since", jsonv_is_time),
		JQP_BOOL("overdue"),
		JQP_LIMIT,
		JQP_CURSOR,
		JQ_END,
	};
	struct jv_error e;
	json_t *a;
	(void)state;

	a = json_object();
	assert_int_equal(jsonv_query("status=open&limit=500&overdue=true&cursor=abc_-1", params, a,
				     &e), 0);
	assert_int_equal(json_integer_value(json_object_get(a, "limit")), 200);
	assert_true(json_is_true(json_object_get(a, "overdue")));
	assert_string_equal(json_string_value(json_object_get(a, "status")), "open");
	json_decref(a);

	a = json_object();
	assert_int_equal(jsonv_query("since=2026-11-28T09%3A00%3A00Z", params, a, &e), 0);
	json_decref(a);

	a = json_object();
	assert_int_equal(jsonv_query("limit=0", params, a, &e), -1);
	assert_string_equal(e.code, "invalid_value");
	assert_string_equal(e.field, "/limit");
	json_decref(a);

	a = json_object();
	assert_int_equal(jsonv_query("limit=-5", params, a, &e), -1);
	json_decref(a);

	a = json_object();
	assert_int_equal(jsonv_query("status=pending", params, a, &e), -1);
	assert_string_equal(e.field, "/status");
	json_decref(a);

	a = json_object();
	assert_int_equal(jsonv_query("cursor=%3Cscript%3E", params, a, &e), -1);
	assert_string_equal(e.code, "invalid_cursor");
	json_decref(a);

	a = json_object();
	assert_int_equal(jsonv_query("colour=red", params, a, &e), -1);
	assert_string_equal(e.code, "unknown_field");
	assert_string_equal(e.field, "/colour");
	json_decref(a);

	a = json_object();
	assert_int_equal(jsonv_query("status=open&status=closed", params, a, &e), -1);
	assert_string_equal(e.code, "duplicate_key");
	json_decref(a);
}

/* JV_ENUM and enum arrays: a value of the set passes; another, the empty
 * string, a wrong type or a repeat is refused with the member's pointer. */
static void test_enum(void **state)
{
	static const struct jv_field fields[] = {
		JVF_ENUM("urgency", JV_REQUIRED, 1, 16, vocab_urgency),
		JVF_ENUM_ARRAY("needs", JV_UNIQUE, 1, 2, vocab_need, 32),
		JV_END,
	};
	static const struct { const char *body; int rc; const char *code, *field; } cases[] = {
		{ "{\"urgency\":\"urgent\"}", 0, NULL, NULL },
		{ "{\"urgency\":\"normal\",\"needs\":[\"legal_support\"]}", 0, NULL, NULL },
		{ "{\"urgency\":\"urgentx\"}", -1, "invalid_value", "/urgency" },
		{ "{\"urgency\":\"Urgent\"}", -1, "invalid_value", "/urgency" },
		{ "{\"urgency\":\"\"}", -1, "invalid_value", "/urgency" },
		{ "{\"urgency\":1}", -1, "invalid_type", "/urgency" },
		{ "{}", -1, "missing_field", "/urgency" },
		{ "{\"urgency\":\"normal\",\"needs\":[\"housing\"]}", -1, "invalid_value",
		  "/needs/0" },
		{ "{\"urgency\":\"normal\",\"needs\":[\"legal_support\",\"legal_support\"]}", -1,
		  "invalid_value", "/needs/1" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct jv_error e;
		json_t *j = jsonv_parse(cases[i].body, strlen(cases[i].body), 4096, &e);

		assert_non_null(j);
		assert_int_equal(jsonv_validate(j, fields, "", &e), cases[i].rc);
		if (cases[i].rc != 0) {
			assert_string_equal(e.code, cases[i].code);
			assert_string_equal(e.field, cases[i].field);
		}
		json_decref(j);
	}
	assert_true(vocab_has(vocab_assignment_status, "on_hold", 7));
	assert_false(vocab_has(vocab_assignment_status, "on_hol", 6));
	assert_false(vocab_has(vocab_assignment_status, "on_holdx", 8));
}

/* Errors never carry the value, even when the value was the problem. */
static void test_no_echo(void **state)
{
	struct jv_error e;
	(void)state;

	assert_int_equal(check_variant("\"AB0312M85\"", "\"CANARY UIC 99\"", &e), -1);
	assert_null(strstr(e.message, "CANARY"));
	assert_null(strstr(e.field, "CANARY"));
	/* A key that looks like data is not named either. */
	assert_int_equal(check_variant("\"uic\":", "\"+996 CANARY\":1,\"uic\":", &e), -1);
	assert_string_equal(e.code, "unknown_field");
	assert_null(strstr(e.field, "CANARY"));
	/* Nor a UIC pasted as a key: only the parent object is named. */
	assert_int_equal(check_variant("\"uic\":", "\"AB0312M85\":1,\"uic\":", &e), -1);
	assert_string_equal(e.code, "unknown_field");
	assert_string_equal(e.field, "/client");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_referral),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_referral_fields),
		cmocka_unit_test(test_note_length),
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_enum),
		cmocka_unit_test(test_no_echo),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
