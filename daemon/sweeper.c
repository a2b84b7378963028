/*
 * sweeper.c - launch -> run -> handler -> parse -> retry, for deadlines.
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
 * Owns: its timer and the single in-flight operation (inflight flag).
 * Must never: keep deadlines in memory; free itself inside its own db callback
 * while a result is being handled (stop only marks it, see sweeper_stop).
 */
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "app.h"
#include "config.h"
#include "db_pool.h"
#include "log.h"
#include "metrics.h"
#include "sweeper.h"

#define SWEEP_RETRY_MS 1000 /* after a database error */
#define SWEEP_MIN_SLEEP_MS 5

struct sweeper {
	struct app *app;
	struct event *timer;
	int inflight;  /* a sweep statement is with the pool */
	int stopping;  /* sweeper_stop called while inflight: free on completion */
	int again;     /* poked while inflight: run once more right after */
};

static void sweeper_run(struct sweeper *s);

static void sweeper_arm(struct sweeper *s, long ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(s->timer, &tv);
}

static void sweeper_free(struct sweeper *s)
{
	if (s->timer)
		event_free(s->timer);
	free(s);
}

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
static int sweeper_parse(const PGresult *res, long *processed, long *next_ms)
{
	json_t *j, *v;
	json_error_t jerr;

	if (PQntuples(res) != 1 || PQnfields(res) != 1 || PQgetisnull(res, 0, 0))
		return -1;
	j = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
	if (!j)
		return -1;
	v = json_object_get(j, "processed");
	*processed = json_is_integer(v) ? (long)json_integer_value(v) : 0;
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

static void sweeper_handle(void *arg, enum db_status st, const PGresult *res)
{
	struct sweeper *s = arg;
	long processed = 0, next_ms = -1, sleep_ms;
	long max_sleep = s->app->cfg->sweeper_max_sleep_ms;

	s->inflight = 0;
	if (s->stopping) {
		sweeper_free(s);
		return;
	}
	if (st != DB_OK || sweeper_parse(res, &processed, &next_ms) < 0) {
		log_warn("sweeper_failed", "status=%s sqlstate=%s", db_status_to_str(st),
			 res ? db_sqlstate(res) : "");
		metrics_count(s->app->metrics, "referrald_sweeper_errors_total", 1);
		sweeper_arm(s, SWEEP_RETRY_MS);
		return;
	}
	if (processed > 0) {
		metrics_count(s->app->metrics, "referrald_sweeper_deadlines_missed_total",
			      (unsigned long)processed);
		log_info("sweeper_swept", "missed=%ld", processed);
	}
	if (processed >= s->app->cfg->sweeper_batch || s->again) {
		s->again = 0;
		sweeper_arm(s, 0);
		return;
	}
	sleep_ms = max_sleep;
	if (next_ms >= 0 && next_ms < sleep_ms)
		sleep_ms = next_ms < SWEEP_MIN_SLEEP_MS ? SWEEP_MIN_SLEEP_MS : next_ms;
	sweeper_arm(s, sleep_ms);
}

static void sweeper_run(struct sweeper *s)
{
	char batch[24];
	const char *params[1];

	if (s->inflight)
		return;
	snprintf(batch, sizeof(batch), "%d", s->app->cfg->sweeper_batch);
	params[0] = batch;
	s->inflight = 1;
	if (!db_submit(s->app->pool, "deadline_sweep", 1, params, sweeper_handle, s, 0)) {
		/* Pool closed: we are shutting down; nothing to retry. */
		s->inflight = 0;
	}
}

static void sweeper_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	sweeper_run(arg);
}

struct sweeper *sweeper_start(struct app *app)
{
	struct sweeper *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->app = app;
	s->timer = evtimer_new(app->base, sweeper_timer_cb, s);
	if (!s->timer) {
		free(s);
		return NULL;
	}
	sweeper_arm(s, 0);
	return s;
}

void sweeper_poke(struct sweeper *s)
{
	if (!s || s->stopping)
		return;
	if (s->inflight) {
		s->again = 1;
		return;
	}
	evtimer_del(s->timer);
	sweeper_arm(s, 0);
}

void sweeper_stop(struct sweeper *s)
{
	if (!s)
		return;
	evtimer_del(s->timer);
	if (s->inflight) {
		/* The pool still owes us a callback: free there, not here. */
		s->stopping = 1;
		return;
	}
	sweeper_free(s);
}
