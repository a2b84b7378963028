/*
 * erasure.c - deletes from the key store the data keys that
 * referral_forget() queued (sql/functions/60_retention.sql), a client of
 * job.c. Each run reads the oldest queued referral ids, deletes their keys
 * from the key store (datakey.c), then takes them off the queue. It runs
 * every ERASURE_INTERVAL_MS, and at once when a request or the retention
 * job has just committed a forget (datakeys_erase_queued()), so a key
 * outlives its referral's personal data by one round trip to the key
 * store (and within ERASURE_INTERVAL_MS when the caller did not say so).
 * Deleting a key twice is harmless: several daemons may run this at
 * once, and a run cut short is simply repeated.
 *
 * Owns: the run's ids between its three steps.
 * Must never: take an id off the queue before the key store said its key
 * is gone.
 */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "datakey.h"
#include "jobs.h"
#include "log.h"

#define ERASURE_BATCH 500
#define ERASURE_INTERVAL_MS 1000L
#define ERASURE_RETRY_MS 2000L

struct erasure {
	struct app *app;
	struct job *job;
	char *list;         /* "{id,id,...}" of the run under way */
	int n;
};

static void erasure_finish(struct erasure *e, long next_ms)
{
	free(e->list);
	e->list = NULL;
	job_done(e->job, next_ms);   /* last: may free e */
}

static void erasure_dequeued(void *arg, enum db_status st, const PGresult *res)
{
	struct erasure *e = arg;
	int n = e->n;

	(void)res;
	if (st != DB_OK) {
		erasure_finish(e, JOB_FAILED);
		return;
	}
	log_info("data_keys_erased", "count=%d", n);
	erasure_finish(e, n >= ERASURE_BATCH ? JOB_NOW : ERASURE_INTERVAL_MS);
}

static void erasure_deleted(void *arg, enum db_status st, const PGresult *res)
{
	struct erasure *e = arg;
	const char *params[1];

	(void)res;
	params[0] = e->list;
	if (st != DB_OK ||
	    job_submit_op(e->job, "data_key_erasures_done", 1, params, erasure_dequeued, e) < 0)
		erasure_finish(e, JOB_FAILED);
}

static void erasure_due(void *arg, enum db_status st, const PGresult *res)
{
	struct erasure *e = arg;
	const char *csv;
	const char **ids = NULL;
	char *copy = NULL, *p, *save = NULL;
	size_t len;
	int n = 0;

	if (st != DB_OK || PQntuples(res) != 1) {
		erasure_finish(e, JOB_FAILED);
		return;
	}
	csv = PQgetvalue(res, 0, 0);
	len = strlen(csv);
	if (len == 0) {
		erasure_finish(e, ERASURE_INTERVAL_MS);
		return;
	}
	copy = strdup(csv);
	ids = calloc(len / 2 + 2, sizeof(*ids));
	e->list = malloc(len + 3);
	if (!copy || !ids || !e->list)
		goto fail;
	e->list[0] = '{';
	memcpy(e->list + 1, csv, len);
	e->list[len + 1] = '}';
	e->list[len + 2] = '\0';
	for (p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save))
		ids[n++] = p;
	e->n = n;
	if (datakeys_erase(e->app->datakeys, ids, (size_t)n, erasure_deleted, e) < 0)
		goto fail;
	free(ids);
	free(copy);
	return;
fail:
	free(ids);
	free(copy);
	erasure_finish(e, JOB_FAILED);
}

static long erasure_run(struct job *j, void *arg)
{
	struct erasure *e = arg;
	char batch[16];
	const char *params[1] = { batch };

	(void)j;
	snprintf(batch, sizeof(batch), "%d", ERASURE_BATCH);
	if (job_submit_op(e->job, "data_key_erasures_due", 1, params, erasure_due, e) < 0)
		return JOB_FAILED;
	return JOB_RUNNING;
}

static void erasure_kick(void *arg)
{
	struct erasure *e = arg;

	job_run_now(e->job);
}

static void erasure_stop(void *arg)
{
	struct erasure *e = arg;

	datakeys_set_erase_hook(e->app->datakeys, NULL, NULL);
}

static void erasure_free(void *arg)
{
	struct erasure *e = arg;

	free(e->list);
}

static int erasure_init(struct app *app, struct job *j, void *arg)
{
	struct erasure *e = arg;

	e->app = app;
	e->job = j;
	datakeys_set_erase_hook(app->datakeys, erasure_kick, e);
	return 0;
}

/* The first run at once: keys queued while no daemon ran are due. */
const struct job_def erasure_job = {
	.name = "erasure",
	.retry_ms = ERASURE_RETRY_MS,
	.arg_size = sizeof(struct erasure),
	.init = erasure_init,
	.run = erasure_run,
	.stop = erasure_stop,
	.free = erasure_free,
};
