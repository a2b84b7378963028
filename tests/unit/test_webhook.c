/*
 * test_webhook.c - the pure parts of the webhook sender: the Signature
 * header (webhook.md's worked example, byte for byte), the retry back-off
 * (doubling, ceiling, jitter bounds), and the outcome names that reach logs
 * and the outbox's last_error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "outbox.h"
#include "webhook.h"

static void sign_worked_example(void **state)
{
	/* proto/webhook.md, "Worked example". */
	const char *secret = "whsec-demo-0123456789abcdef";
	const char *body =
		"{\"id\":\"1f7c2a9e-8b3d-4e5f-9a6b-7c8d9e0f1a2b\",\"type\":\"assignment.offered\","
		"\"created_at\":\"2026-11-28T09:00:00Z\",\"data\":{\"assignment_id\":"
		"\"5d6c7b8a-1e2f-4a3b-8c9d-0e1f2a3b4c5d\",\"worker_id\":"
		"\"7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d\",\"detail_url\":"
		"\"/v1/assignments/5d6c7b8a-1e2f-4a3b-8c9d-0e1f2a3b4c5d\"}}";
	char out[128];

	(void)state;
	assert_int_equal(webhook_sign(secret, strlen(secret), 1795856400LL, body, strlen(body),
				      out, sizeof(out)), 0);
	assert_string_equal(out, "t=1795856400,v1=2099ce782f39d2635503ae1f3b1977ad7850973c53acdbbbe"
				 "024f75abdaa08ba");
}

static void sign_depends_on_time_secret_and_body(void **state)
{
	char a[128], b[128];

	(void)state;
	assert_int_equal(webhook_sign("k0123456789abcdef", 17, 1, "{}", 2, a, sizeof(a)), 0);
	assert_int_equal(webhook_sign("k0123456789abcdef", 17, 2, "{}", 2, b, sizeof(b)), 0);
	assert_string_not_equal(a + 4, b + 4);
	assert_int_equal(webhook_sign("k0123456789abcdeF", 17, 1, "{}", 2, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(webhook_sign("k0123456789abcdef", 17, 1, "{ }", 3, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	/* Too small a buffer is refused, never truncated into a wrong header. */
	assert_int_equal(webhook_sign("k", 1, 1, "{}", 2, b, 40), -1);
}

static void backoff_doubles_up_to_the_ceiling(void **state)
{
	(void)state;
	/* jitter 0.5 = no change. */
	assert_int_equal(outbox_backoff_ms(1, 10000, 3600000, 0.5), 10000);
	assert_int_equal(outbox_backoff_ms(2, 10000, 3600000, 0.5), 20000);
	assert_int_equal(outbox_backoff_ms(3, 10000, 3600000, 0.5), 40000);
	assert_int_equal(outbox_backoff_ms(9, 10000, 3600000, 0.5), 2560000);
	assert_int_equal(outbox_backoff_ms(10, 10000, 3600000, 0.5), 3600000);
	assert_int_equal(outbox_backoff_ms(1000, 10000, 3600000, 0.5), 3600000);
	/* +-20 % at the extremes of the jitter. */
	assert_int_equal(outbox_backoff_ms(1, 10000, 3600000, 0.0), 8000);
	assert_true(outbox_backoff_ms(1, 10000, 3600000, 0.999999) <= 12000);
	assert_true(outbox_backoff_ms(1, 10000, 3600000, 0.999999) >= 11999);
	assert_int_equal(outbox_backoff_ms(0, 10000, 3600000, 0.5), 10000);
}

static void outcome_names(void **state)
{
	(void)state;
	assert_string_equal(webhook_outcome_to_str(WH_DELIVERED), "delivered");
	assert_string_equal(webhook_outcome_to_str(WH_TLS), "tls");
	assert_string_equal(webhook_outcome_to_str(WH_CONNECT), "connect");
	assert_string_equal(webhook_outcome_to_str(WH_TIMEOUT), "timeout");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sign_worked_example),
		cmocka_unit_test(sign_depends_on_time_secret_and_body),
		cmocka_unit_test(backoff_doubles_up_to_the_ceiling),
		cmocka_unit_test(outcome_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
