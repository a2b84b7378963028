/*
 * job.c - every periodic worker of the daemon runs under this module: the
 * deadline sweeper, the outbox sender, the retention purge, and whatever is
 * added next. A job is a name and two functions:
 *
 *   run(j, arg)          start one run: job_submit(j, "stmt", n, params) and
 *                        return JOB_RUNNING, or return a delay in ms when
 *                        there is nothing to do now, or JOB_FAILED;
 *   next(arg, st, res)   the statement returned: parse it and say when to run
 *                        again: a due time read from the database (ms until
 *                        it), a fixed interval, JOB_NOW when the batch was
 *                        full, or JOB_FAILED (retried after retry_ms).
 *
 * A client is one struct job_def (jobs.h declares them all): its name, when
 * its first run comes, and, when it keeps state of its own, the size of that
 * state and an init hook; job.c allocates the state, so a client writes no
 * start function. main.c starts each with job_launch(app, &def), holds the
 * returned struct job * and stops it with job_stop(). A client that does
 * more than one statement per run (outbox: deliveries, then acknowledgements)
 * sends the others with job_submit_op(), which keeps it alive until they
 * return, and may end a run itself with job_done(). Optional hooks: stop (abandon
 * work of its own at job_stop) and free (free arg once nothing is in flight).
 *
 *   start --first_ms--> [timer] --> run() --JOB_RUNNING--> statement ...
 *      ^                                   \--delay------> [timer]
 *      |                                    statement returns --> next()
 *      +---------- delay / JOB_NOW / retry_ms after JOB_FAILED <----+
 *
 * State a job acts on lives in PostgreSQL, never only here: several daemons
 * on one database each run their jobs, and the statements (SKIP LOCKED,
 * leases) make that safe.
 *
 * Owns: the job's timer; the rule of one run at a time per job; stop and the
 * deferred free (a job stopped while a run or an operation is in flight is
 * only marked, and freed when the last one returns, from job.c's own
 * callback, so neither the job nor its arg is freed under a caller); the
 * log line of a failed run; the metrics referrald_job_runs_total{job},
 * referrald_job_failures_total{job} and referrald_job_duration_seconds{job}.
 * Must never: block the loop; start a run while one is under way; call
 * next() after job_stop(); log a statement's parameters or error text
 * (status and sqlstate only).
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "app.h"
#include "clock.h"
#include "job.h"
#include "log.h"
#include "metrics.h"

struct job {
	const struct job_def *def;
	void *arg;
	struct app *app;
	struct metrics_job *metrics;
	struct event *timer;
	uint64_t run_start_us;
	int running;   /* a run is under way: its end is owed */
	int ops;       /* job_submit_op operations the pool still owes */
	int stopping;
	int own_arg;   /* arg was allocated by job_launch: freed here */
};

struct job_op {
	struct job *j;
	db_cb cb;
	void *arg;
};

static void job_arm(struct job *j, long ms)
{
	struct timeval tv = clock_tv(ms);

	evtimer_del(j->timer);
	evtimer_add(j->timer, &tv);
}

/* Free once stopped and nothing is owed any more. */
static void job_reap(struct job *j)
{
	if (!j->stopping || j->running || j->ops > 0)
		return;
	event_free(j->timer);
	if (j->def->free)
		j->def->free(j->arg);
	if (j->own_arg)
		free(j->arg);
	free(j);
}

/* The end of a run: metrics, the failure's log line, the next run. */
static void job_end(struct job *j, long next_ms, const char *status, const char *sqlstate)
{
	uint64_t dur_us = clock_mono_us() - j->run_start_us;
	int failed = next_ms == JOB_FAILED || next_ms < 0;
	long retry_ms = j->def->retry_ms ? j->def->retry_ms : JOB_RETRY_MS;

	j->running = 0;
	metrics_job_observe(j->metrics, failed, dur_us);
	if (failed) {
		log_warn("job_failed", "job=%s status=%s sqlstate=%s retry_ms=%ld", j->def->name,
			 status, sqlstate, retry_ms);
		next_ms = retry_ms;
	}
	if (j->stopping)
		job_reap(j);
	else
		job_arm(j, next_ms);
}

static void job_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	long ms;

	(void)fd;
	(void)what;
	if (j->running || j->stopping)
		return;
	j->running = 1;
	j->run_start_us = clock_mono_us();
	ms = j->def->run(j, j->arg);
	if (ms == JOB_RUNNING)
		return;
	if (ms == JOB_FAILED) {
		job_end(j, JOB_FAILED, "not_started", "");
		return;
	}
	j->running = 0; /* nothing to do now: not a run */
	job_arm(j, ms);
}

/* A job not armed yet. */
static struct job *job_new(struct app *app, const struct job_def *def, void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->def = def;
	j->arg = arg;
	j->app = app;
	j->metrics = metrics_job(app->metrics, def->name);
	j->timer = evtimer_new(app->base, job_timer_cb, j);
	if (!j->timer) {
		free(j);
		return NULL;
	}
	return j;
}

struct job *job_start(struct app *app, const struct job_def *def, void *arg, long first_ms)
{
	struct job *j = job_new(app, def, arg);

	if (j)
		job_arm(j, first_ms);
	return j;
}

struct job *job_launch(struct app *app, const struct job_def *def)
{
	void *arg = app;
	struct job *j;

	if (def->arg_size && !(arg = calloc(1, def->arg_size)))
		return NULL;
	j = job_new(app, def, arg);
	if (!j)
		goto fail;
	if (def->init && def->init(app, j, arg) < 0) {
		event_free(j->timer);
		free(j);
		goto fail;
	}
	j->own_arg = def->arg_size != 0;
	job_arm(j, def->first ? def->first(app) : def->first_ms);
	return j;
fail:
	if (def->arg_size)
		free(arg);
	return NULL;
}

void job_stop(struct job *j)
{
	if (!j || j->stopping)
		return;
	j->stopping = 1;
	evtimer_del(j->timer);
	if (j->def->stop)
		j->def->stop(j->arg);
	job_reap(j);
}

void job_run_now(struct job *j)
{
	if (!j || j->stopping || j->running)
		return;
	job_arm(j, 0);
}

static void job_db_cb(void *arg, enum db_status st, const PGresult *res)
{
	struct job *j = arg;

	if (j->stopping) {
		j->running = 0;
		job_reap(j);
		return;
	}
	job_end(j, j->def->next(j->arg, st, res), db_status_to_str(st), db_sqlstate(res));
}

int job_submit(struct job *j, const char *stmt, int nparams, const char *const *values)
{
	if (!db_submit(j->app->pool, stmt, nparams, values, job_db_cb, j, 0))
		return -1;
	return 0;
}

long job_submit_batch(struct job *j, const char *stmt, long batch)
{
	char v[24];
	const char *params[1] = { v };

	snprintf(v, sizeof(v), "%ld", batch);
	return job_submit(j, stmt, 1, params) < 0 ? JOB_FAILED : JOB_RUNNING;
}

json_t *job_result_object(enum db_status st, const PGresult *res)
{
	json_t *o;

	if (st != DB_OK || res == NULL || PQntuples(res) != 1 || PQnfields(res) != 1 ||
	    PQgetisnull(res, 0, 0))
		return NULL;
	o = json_loadb(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

long job_json_long(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

void job_done(struct job *j, long next_ms)
{
	if (!j->running)
		return;
	if (j->stopping) {
		j->running = 0;
		job_reap(j);
		return;
	}
	job_end(j, next_ms, "done", "");
}

static void job_op_cb(void *arg, enum db_status st, const PGresult *res)
{
	struct job_op *op = arg;
	struct job *j = op->j;

	op->cb(op->arg, st, res);
	free(op);
	j->ops--;
	job_reap(j);
}

int job_submit_op(struct job *j, const char *stmt, int nparams, const char *const *values,
		  db_cb cb, void *arg)
{
	struct job_op *op = malloc(sizeof(*op));

	if (!op)
		return -1;
	op->j = j;
	op->cb = cb;
	op->arg = arg;
	if (!db_submit(j->app->pool, stmt, nparams, values, job_op_cb, op, 0)) {
		free(op);
		return -1;
	}
	j->ops++;
	return 0;
}
