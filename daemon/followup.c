/*
 * followup.c - the follow-up jobs on the daemon's loop: re-matching of
 * unassigned assignments, and deadline reminders with level-2 escalation.
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
 * Both are clients of job.c (timer, one run at a time, drain, retry).
 * Owns: the jobs' parameters, reading their results, when the next full
 * re-matching pass is due.
 * Must never: log ids of clients (it logs counts).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

#include "app.h"
#include "config.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"

#define FOLLOWUP_BATCH 100
#define REMATCH_BUSY_MS 200     /* a candidate was locked by another transaction */

struct rematch {
	struct app *app;
	int full;             /* the statement in flight is a full pass */
	long long last_full;  /* monotonic ms of the last full pass started; 0 = none yet */
};

static long long followup_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Re-matching ------------------------------------------------------------ */

static int rematch_init(struct app *app, struct job *j, void *arg)
{
	struct rematch *m = arg;

	(void)j;
	m->app = app;
	return 0;
}

static long rematch_run(struct job *j, void *arg)
{
	struct rematch *m = arg;
	long long now = followup_now_ms();
	char batch[16];
	const char *params[2] = { NULL, batch };

	m->full = m->last_full == 0 || now - m->last_full >= m->app->cfg->rematch_interval_ms;
	if (m->full)
		m->last_full = now;
	params[0] = m->full ? "true" : "false";
	snprintf(batch, sizeof(batch), "%d", FOLLOWUP_BATCH);
	return job_submit(j, "rematch_run", 2, params) < 0 ? JOB_FAILED : JOB_RUNNING;
}

static long rematch_next(void *arg, enum db_status st, const PGresult *res)
{
	struct rematch *m = arg;
	const struct config *cfg = m->app->cfg;
	json_t *r = job_result_object(st, res);
	long offered, busy, more;
	long long until_full;

	if (!r) {
		if (m->full)
			m->last_full = 0; /* that full pass did not happen: the next run is one */
		return JOB_FAILED;
	}
	offered = job_json_long(r, "offered");
	busy = job_json_long(r, "busy");
	more = json_is_true(json_object_get(r, "more"));
	json_decref(r);
	if (offered > 0) {
		metrics_add(m->app->metrics, M_REMATCH_OFFERS, (unsigned long)offered);
		log_info("rematch_offered", "offered=%ld full=%d", offered, m->full);
	}
	if (more)
		return JOB_NOW;
	if (busy > 0)
		return REMATCH_BUSY_MS;
	until_full = m->last_full + cfg->rematch_interval_ms - followup_now_ms();
	if (until_full < 0)
		until_full = 0;
	return until_full < cfg->rematch_poll_ms ? (long)until_full : cfg->rematch_poll_ms;
}

const struct job_def rematch_job = {
	.name = "rematch",
	/* Soon after start (a full pass: nobody left waiting by a restart),
	 * not at once: start-up has more urgent work. */
	.first_ms = 200,
	.arg_size = sizeof(struct rematch),
	.init = rematch_init,
	.run = rematch_run,
	.next = rematch_next,
};

/* Reminders and level-2 escalation ------------------------------------------ */

static long steps_run(struct job *j, void *arg)
{
	struct app *app = arg;
	char batch[16], after[40];
	const char *params[2] = { batch, after };

	snprintf(batch, sizeof(batch), "%d", FOLLOWUP_BATCH);
	snprintf(after, sizeof(after), "%ld milliseconds", app->cfg->escalate_after_ms);
	return job_submit(j, "deadline_steps", 2, params) < 0 ? JOB_FAILED : JOB_RUNNING;
}

static long steps_next(void *arg, enum db_status st, const PGresult *res)
{
	struct app *app = arg;
	json_t *r = job_result_object(st, res), *in;
	long reminded, escalated, more, sleep_ms = app->cfg->sweeper_max_sleep_ms;

	if (!r)
		return JOB_FAILED;
	reminded = job_json_long(r, "reminded");
	escalated = job_json_long(r, "escalated");
	more = json_is_true(json_object_get(r, "more"));
	in = json_object_get(r, "next_in_ms");
	if (json_is_integer(in) && json_integer_value(in) < sleep_ms)
		sleep_ms = json_integer_value(in) < 5 ? 5 : (long)json_integer_value(in);
	json_decref(r);
	if (reminded > 0)
		metrics_add(app->metrics, M_DEADLINE_REMINDERS, (unsigned long)reminded);
	if (escalated > 0)
		metrics_add(app->metrics, M_ESCALATIONS_LEVEL2, (unsigned long)escalated);
	if (reminded > 0 || escalated > 0)
		log_info("deadline_steps", "reminded=%ld escalated=%ld", reminded, escalated);
	return more ? JOB_NOW : sleep_ms;
}

const struct job_def steps_job = {
	.name = "deadline_steps",
	.first_ms = 100,
	.run = steps_run,
	.next = steps_next,
};
