/*
 * purge.c - the retention purge, a client of job.c.
 *
 * Each run submits "idempotency_purge" (sql/functions/10_deadlines_outbox.sql): it deletes at
 * most PURGE_BATCH idempotency records older than [retention]
 * idempotency_keys, oldest first, through their created_at index, and says
 * how many. A full batch means more are due: run again shortly, so a backlog
 * drains in small transactions that never hold many row locks; otherwise
 * sleep [retention] interval. Several daemons may purge at once: a row
 * deleted by one is simply not found by the other.
 *
 * Owns: the purge's parameters and reading its count.
 * Must never: delete anything a protocol promise still needs (a replay
 * within [retention] idempotency_keys gets the stored answer).
 */
#include <stdio.h>
#include <stdlib.h>

#include "app.h"
#include "config.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"

#define PURGE_BATCH 1000
#define PURGE_AGAIN_MS 100     /* after a full batch */
#define PURGE_RETRY_MS 10000   /* after a database error */

static long purge_run(struct job *j, void *arg)
{
	struct app *app = arg;
	char older[40], batch[16];
	const char *params[2] = { older, batch };

	snprintf(older, sizeof(older), "%ld milliseconds", app->cfg->retention_idempotency_ms);
	snprintf(batch, sizeof(batch), "%d", PURGE_BATCH);
	return job_submit(j, "idempotency_purge", 2, params) < 0 ? JOB_FAILED : JOB_RUNNING;
}

static long purge_next(void *arg, enum db_status st, const PGresult *res)
{
	struct app *app = arg;
	long n;

	if (st != DB_OK || PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
		return JOB_FAILED;
	n = atol(PQgetvalue(res, 0, 0));
	if (n > 0) {
		log_info("purge_done", "idempotency_keys=%ld", n);
		metrics_add(app->metrics, M_PURGED_IDEMPOTENCY_KEYS, (unsigned long)n);
	}
	return n >= PURGE_BATCH ? PURGE_AGAIN_MS : app->cfg->retention_interval_ms;
}

/* Not at once: a fleet restarting together should not all purge in the
 * same second, and start-up has more urgent work. */
static long purge_first(const struct app *app)
{
	return app->cfg->retention_interval_ms;
}

const struct job_def purge_job = {
	.name = "purge",
	.retry_ms = PURGE_RETRY_MS,
	.first = purge_first,
	.run = purge_run,
	.next = purge_next,
};
