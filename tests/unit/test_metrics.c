/*
 * test_metrics.c - the Prometheus text of metrics.c: counters by route and
 * status, cumulative histogram buckets, pool gauges, the table's counters, and
 * that nothing outside the fixed label alphabet reaches the output.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "db_pool.h"
#include "metrics.h"

/* Render to a NUL-terminated malloc'd string. */
static char *render(const struct metrics *m, const struct db_pool_stats *st)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	assert_non_null(b);
	metrics_render(m, st, b);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	assert_non_null(s);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

static void has(const char *text, const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	if (strstr(text, want) == NULL) {
		fprintf(stderr, "missing line: %s\n--- output:\n%s\n", line, text);
		fail();
	}
}

static void test_requests_and_histogram(void **state)
{
	struct metrics *m = metrics_new();
	char *t;

	(void)state;
	assert_non_null(m);
	metrics_observe_request(m, "healthz", 200, 500);          /* 0.5 ms */
	metrics_observe_request(m, "healthz", 200, 3000);         /* 3 ms */
	metrics_observe_request(m, "referrals.create", 201, 40000);
	metrics_observe_request(m, "referrals.create", 409, 20000000); /* 20 s: +Inf only */
	t = render(m, NULL);
	has(t, "referrald_http_requests_total{route=\"healthz\",status=\"200\"} 2");
	has(t, "referrald_http_requests_total{route=\"referrals.create\",status=\"201\"} 1");
	has(t, "referrald_http_requests_total{route=\"referrals.create\",status=\"409\"} 1");
	has(t, "referrald_http_request_duration_seconds_bucket{route=\"healthz\",le=\"0.001\"} 1");
	has(t, "referrald_http_request_duration_seconds_bucket{route=\"healthz\",le=\"0.0025\"} 1");
	has(t, "referrald_http_request_duration_seconds_bucket{route=\"healthz\",le=\"0.005\"} 2");
	has(t, "referrald_http_request_duration_seconds_bucket{route=\"healthz\",le=\"+Inf\"} 2");
	has(t, "referrald_http_request_duration_seconds_count{route=\"healthz\"} 2");
	has(t, "referrald_http_request_duration_seconds_sum{route=\"healthz\"} 0.003500");
	has(t, "referrald_http_request_duration_seconds_bucket{route=\"referrals.create\","
	       "le=\"10\"} 1");
	has(t, "referrald_http_request_duration_seconds_bucket{route=\"referrals.create\","
	       "le=\"+Inf\"} 2");
	has(t, "# TYPE referrald_http_request_duration_seconds histogram");
	/* without a pool the gauges are still there, at zero */
	has(t, "referrald_db_pool_size 0");
	free(t);
	metrics_free(m);
}

static void test_pool_and_counters(void **state)
{
	struct metrics *m = metrics_new();
	struct db_pool_stats st = { .size = 8, .connected = 7, .busy = 3, .waiting = 2,
				    .errors = 5, .timeouts = 1, .reconnects = 4 };
	char *t;

	(void)state;
	metrics_add(m, M_SWEEPER_MISSED, 2);
	metrics_add(m, M_SWEEPER_MISSED, 3);
	metrics_add(NULL, M_SWEEPER_MISSED, 7);
	t = render(m, &st);
	has(t, "referrald_db_pool_size 8");
	has(t, "referrald_db_pool_connected 7");
	has(t, "referrald_db_pool_busy 3");
	has(t, "referrald_db_pool_waiting 2");
	has(t, "referrald_db_errors_total 5");
	has(t, "referrald_db_timeouts_total 1");
	has(t, "# HELP referrald_sweeper_deadlines_missed_total "
	       "Deadlines the sweeper found missed and acted on.");
	has(t, "# TYPE referrald_sweeper_deadlines_missed_total counter");
	has(t, "referrald_sweeper_deadlines_missed_total 5");
	has(t, "referrald_outbox_retries_total 0");   /* every table counter, from the start */
	free(t);
	metrics_free(m);
}

/* The follow-up gauges: a block set from the database's answer, rendered as
 * given, replaced by the next one, and "fresh" only within its age. */
static void test_gauges_block(void **state)
{
	struct metrics *m = metrics_new();
	char *t;

	(void)state;
	assert_false(metrics_gauges_fresh(m, 5000));
	metrics_set_gauges(m, strdup("# TYPE referrald_escalations_open gauge\n"
				     "referrald_escalations_open{level=\"1\"} 3\n"));
	assert_true(metrics_gauges_fresh(m, 5000));
	assert_false(metrics_gauges_fresh(m, -1));
	t = render(m, NULL);
	has(t, "referrald_escalations_open{level=\"1\"} 3");
	free(t);
	metrics_set_gauges(m, strdup("referrald_escalations_open{level=\"1\"} 0\n"));
	t = render(m, NULL);
	has(t, "referrald_escalations_open{level=\"1\"} 0");
	assert_null(strstr(t, "} 3\n"));
	free(t);
	metrics_set_gauges(NULL, strdup("x")); /* no metrics: freed, no crash */
	metrics_free(m);
}

static void test_labels_are_fixed(void **state)
{
	struct metrics *m = metrics_new();
	char *t, name[32];
	int i;

	(void)state;
	/* Anything outside [A-Za-z0-9._-] is folded into "other". */
	metrics_observe_request(m, "x\"} 1\nevil", 200, 1);
	metrics_observe_request(m, NULL, 404, 1);
	metrics_observe_request(m, "healthz", 1000, 1);  /* not an HTTP status */
	t = render(m, NULL);
	assert_null(strstr(t, "evil"));
	has(t, "referrald_http_requests_total{route=\"other\",status=\"200\"} 1");
	has(t, "referrald_http_requests_total{route=\"other\",status=\"404\"} 1");
	has(t, "referrald_http_requests_total{route=\"healthz\",status=\"other\"} 1");
	free(t);

	/* The table is bounded: many distinct routes never grow it. */
	for (i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		metrics_observe_request(m, name, 200, 1);
	}
	t = render(m, NULL);
	assert_null(strstr(t, "route=\"r499\""));
	/* ...and "other" stays one series */
	{
		const char *p = strstr(t, "referrald_http_requests_total{route=\"other\",status=\"200\"}");
		assert_non_null(p);
		assert_null(strstr(p + 1, "referrald_http_requests_total{route=\"other\",status=\"200\"}"));
	}
	free(t);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_and_histogram),
		cmocka_unit_test(test_pool_and_counters),
		cmocka_unit_test(test_labels_are_fixed),
		cmocka_unit_test(test_gauges_block),
	};
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
