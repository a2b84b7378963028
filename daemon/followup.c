/*
 * followup.c - the follow-up jobs on the daemon's loop: re-matching of
 * unassigned assignments, and deadline reminders with level-2 escalation.
 * Each is launch -> run -> handler -> parse -> retry around one statement.
 *
 * Re-matching ("rematch_run", sql/migrations/0041): every [matching]
 * rematch_poll the notices that changing transactions left (a slot freed,
 * capacity raised, a worker added, back from leave, or serving other
 * regions or languages) are drained and the (region, kind) pairs they name
 * are matched again, oldest first; every [matching] rematch_interval (and
 * first at start) every pair is. A cut-short pass ("more") runs again at
 * once; one that met a busy candidate retries shortly.
 *
 * Steps ("deadline_steps", sql/migrations/0042): reminders due
 * (deadline.due_soon) and level-1 escalations older than [deadlines]
 * escalate_after (level 2, programme supervisors). It sleeps until the next
 * one is due, but never longer than [deadlines] sweeper_max_sleep, since
 * another daemon may have created an earlier one.
 *
 * Several daemons may run both at once: the statements take their rows with
 * FOR UPDATE SKIP LOCKED and re-check them, so each offer, reminder and
 * escalation happens once; nothing is kept in memory but the timers.
 *
 * Owns: its two timers and at most one statement in flight per job.
 * Must never: free a job inside its own db callback while stop is pending
 * elsewhere (stop only marks it when a statement is in flight); log ids of
 * clients (it logs counts).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "app.h"
#include "config.h"
#include "db_pool.h"
#include "followup.h"
#include "log.h"
#include "metrics.h"

#define FJOB_BATCH 100
#define FJOB_RETRY_MS 1000  /* after a database error */
#define FJOB_BUSY_MS 200    /* a candidate was locked by another transaction */

enum fjob_kind { FJOB_REMATCH, FJOB_STEPS };

struct fjob {
	struct app *app;
	enum fjob_kind kind;
	struct event *timer;
	int inflight;
	int stopping;
	int full;           /* the statement in flight is a full re-matching pass */
	long long last_full; /* monotonic ms of the last full pass started; 0 = none */
};

struct followup {
	struct fjob *rematch;
	struct fjob *steps;
};

static long long fjob_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fjob_arm(struct fjob *j, long ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(j->timer, &tv);
}

static long fjob_int(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

/* After a re-matching statement: when to look again. */
static long rematch_next(struct fjob *j, json_t *res)
{
	const struct config *cfg = j->app->cfg;
	long offered = fjob_int(res, "offered"), busy = fjob_int(res, "busy");
	long long until_full;

	if (offered > 0) {
		metrics_count(j->app->metrics, "referrald_rematch_offers_total",
			      (unsigned long)offered);
		log_info("rematch_offered", "offered=%ld full=%d", offered, j->full);
	}
	if (json_is_true(json_object_get(res, "more")))
		return 0;
	if (busy > 0)
		return FJOB_BUSY_MS;
	until_full = j->last_full + cfg->rematch_interval_ms - fjob_now_ms();
	if (until_full < 0)
		until_full = 0;
	return until_full < cfg->rematch_poll_ms ? (long)until_full : cfg->rematch_poll_ms;
}

/* After a steps statement: when to look again. */
static long steps_next(struct fjob *j, json_t *res)
{
	long reminded = fjob_int(res, "reminded"), escalated = fjob_int(res, "escalated");
	long max_sleep = j->app->cfg->sweeper_max_sleep_ms;
	json_t *in = json_object_get(res, "next_in_ms");

	if (reminded > 0)
		metrics_count(j->app->metrics, "referrald_deadline_reminders_total",
			      (unsigned long)reminded);
	if (escalated > 0)
		metrics_count(j->app->metrics, "referrald_deadline_escalations_level2_total",
			      (unsigned long)escalated);
	if (reminded > 0 || escalated > 0)
		log_info("deadline_steps", "reminded=%ld escalated=%ld", reminded, escalated);
	if (json_is_true(json_object_get(res, "more")))
		return 0;
	if (json_is_integer(in) && json_integer_value(in) < max_sleep)
		return json_integer_value(in) < 5 ? 5 : (long)json_integer_value(in);
	return max_sleep;
}

static void fjob_done(void *arg, enum db_status st, const PGresult *res)
{
	struct fjob *j = arg;
	json_t *r = NULL;
	json_error_t jerr;
	long next;

	j->inflight = 0;
	if (j->stopping) {
		event_free(j->timer);
		free(j);
		return;
	}
	if (st == DB_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		r = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
	if (!r) {
		log_warn(j->kind == FJOB_REMATCH ? "rematch_failed" : "deadline_steps_failed",
			 "status=%s sqlstate=%s", db_status_to_str(st), res ? db_sqlstate(res) : "");
		if (j->kind == FJOB_REMATCH && j->full)
			j->last_full = 0; /* the full pass did not happen: again next time */
		fjob_arm(j, FJOB_RETRY_MS);
		return;
	}
	next = j->kind == FJOB_REMATCH ? rematch_next(j, r) : steps_next(j, r);
	json_decref(r);
	fjob_arm(j, next);
}

static void fjob_run(evutil_socket_t fd, short what, void *arg)
{
	struct fjob *j = arg;
	const struct config *cfg = j->app->cfg;
	char a[40], b[40];
	const char *params[2] = { a, b };
	const char *stmt;

	(void)fd;
	(void)what;
	if (j->inflight)
		return;
	if (j->kind == FJOB_REMATCH) {
		long long now = fjob_now_ms();

		j->full = j->last_full == 0 || now - j->last_full >= cfg->rematch_interval_ms;
		if (j->full)
			j->last_full = now;
		snprintf(a, sizeof(a), "%s", j->full ? "true" : "false");
		snprintf(b, sizeof(b), "%d", FJOB_BATCH);
		stmt = "rematch_run";
	} else {
		snprintf(a, sizeof(a), "%d", FJOB_BATCH);
		snprintf(b, sizeof(b), "%ld milliseconds", cfg->escalate_after_ms);
		stmt = "deadline_steps";
	}
	j->inflight = 1;
	if (!db_submit(j->app->pool, stmt, 2, params, fjob_done, j, 0))
		j->inflight = 0; /* pool closed: shutting down */
}

static struct fjob *fjob_new(struct app *app, enum fjob_kind kind, long first_ms)
{
	struct fjob *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->app = app;
	j->kind = kind;
	j->timer = evtimer_new(app->base, fjob_run, j);
	if (!j->timer) {
		free(j);
		return NULL;
	}
	fjob_arm(j, first_ms);
	return j;
}

/* Free now, or mark it and let the owed callback free it. */
static void fjob_stop(struct fjob *j)
{
	if (!j)
		return;
	evtimer_del(j->timer);
	if (j->inflight) {
		j->stopping = 1;
		return;
	}
	event_free(j->timer);
	free(j);
}

struct followup *followup_start(struct app *app)
{
	struct followup *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	/* Soon after start, not at once: start-up has more urgent work. */
	f->rematch = fjob_new(app, FJOB_REMATCH, 200);
	f->steps = fjob_new(app, FJOB_STEPS, 100);
	if (!f->rematch || !f->steps) {
		followup_stop(f);
		return NULL;
	}
	return f;
}

void followup_stop(struct followup *f)
{
	if (!f)
		return;
	fjob_stop(f->rematch);
	fjob_stop(f->steps);
	free(f);
}
