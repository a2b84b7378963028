/*
 * sweeper.c - the deadline sweeper, a client of job.c.
 *
 * Each run submits the "deadline_sweep" statement: the SQL function claims
 * due pending deadlines (due_at <= now(), through the partial index on
 * due_at) with FOR UPDATE SKIP LOCKED, marks them missed and acts (expire and
 * re-offer, escalate) in the same transaction, and returns how many it
 * handled and how long until the next pending deadline is due.
 *
 * Scheduling: a full batch means more may be due, so run again at once;
 * otherwise sleep until the next due time, but never longer than
 * sweeper_max_sleep, because another daemon on the same database may have
 * created an earlier deadline that this process cannot know about. The cost
 * of an idle wake-up is one index probe.
 *
 * Owns: reading the sweep's result and choosing the next due time.
 * Must never: keep deadlines in memory (the database is the state).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "app.h"
#include "config.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"

#define SWEEP_MIN_SLEEP_MS 5

/* Milliseconds from now until an RFC 3339 UTC time ("2026-11-28T09:00:00.123Z"
 * or without fraction); negative when it is past; LONG_MIN when it cannot be
 * parsed. */
static long sweeper_ms_until(const char *ts)
{
	struct tm tm;
	struct timespec now;
	const char *rest;
	long frac_ms = 0, scale = 100;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	rest = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return LONG_MIN;
	if (*rest == '.') {
		for (rest++; *rest >= '0' && *rest <= '9'; rest++) {
			frac_ms += (*rest - '0') * scale;
			scale /= 10;
		}
	}
	t = timegm(&tm);
	clock_gettime(CLOCK_REALTIME, &now);
	return (long)((t - now.tv_sec) * 1000L + frac_ms - now.tv_nsec / 1000000L);
}

/* Parse {"processed": n, "next_due_at": RFC 3339 | null} (or "next_due_in_ms",
 * preferred when present: it is computed on the database's clock). */
static int sweeper_parse(enum db_status st, const PGresult *res, long *processed, long *next_ms)
{
	json_t *j = job_result_object(st, res), *v;

	if (!j)
		return -1;
	*processed = job_json_long(j, "processed");
	v = json_object_get(j, "next_due_in_ms");
	*next_ms = json_is_integer(v) ? (long)json_integer_value(v) : -1;
	v = json_object_get(j, "next_due_at");
	if (*next_ms < 0 && json_is_string(v)) {
		long ms = sweeper_ms_until(json_string_value(v));

		if (ms == LONG_MIN)
			*next_ms = -1; /* unreadable: fall back to the maximum sleep */
		else
			*next_ms = ms < 0 ? 0 : ms; /* already due (clocks disagree): soon */
	}
	json_decref(j);
	return 0;
}

static long sweeper_run(struct job *j, void *arg)
{
	struct app *app = arg;

	return job_submit_batch(j, "deadline_sweep", app->cfg->sweeper_batch);
}

static long sweeper_next(void *arg, enum db_status st, const PGresult *res)
{
	struct app *app = arg;
	long processed = 0, next_ms = -1, sleep_ms = app->cfg->sweeper_max_sleep_ms;

	if (sweeper_parse(st, res, &processed, &next_ms) < 0)
		return JOB_FAILED;
	if (processed > 0) {
		metrics_add(app->metrics, M_SWEEPER_MISSED, (unsigned long)processed);
		log_info("sweeper_swept", "missed=%ld", processed);
	}
	if (processed >= app->cfg->sweeper_batch)
		return JOB_NOW;
	if (next_ms >= 0 && next_ms < sleep_ms)
		sleep_ms = next_ms < SWEEP_MIN_SLEEP_MS ? SWEEP_MIN_SLEEP_MS : next_ms;
	return sleep_ms;
}

const struct job_def sweeper_job = {
	.name = "sweeper",
	.run = sweeper_run,
	.next = sweeper_next,
};
