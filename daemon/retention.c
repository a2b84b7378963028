/*
 * retention.c - the retention job, a client of job.c: each run is one
 * retention_run() batch (sql/functions/60_retention.sql) that destroys the
 * personal data of referrals closed longer than contact_after_close and
 * deletes those closed longer than record_after_close, at most [retention]
 * batch of each per transaction, so no run holds its row locks long. A full
 * batch runs again at once; otherwise the job sleeps until the next referral
 * falls due (the database says when), at most RETENTION_MAX_SLEEP_MS, so a
 * referral closed meanwhile, or a shorter policy, is acted on within 5 s of
 * its due time. Several daemons: the batch takes an advisory lock, the
 * others are told busy and come back; a forgotten referral is never
 * forgotten again, so each is erased, audited and counted once.
 *
 * Owns: reading the batch's counts; telling the erasure job to delete the
 * keys a batch queued.
 * Must never: log an id or anything but counts.
 */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "app.h"
#include "config.h"
#include "datakey.h"
#include "jobs.h"
#include "log.h"

#define RETENTION_MAX_SLEEP_MS 4000L
#define RETENTION_SLACK_MS 20L      /* wake just after the due time, not before */
#define RETENTION_RETRY_MS 2000L

static long retention_run(struct job *j, void *arg)
{
	struct app *app = arg;
	char batch[16];
	const char *params[1] = { batch };

	snprintf(batch, sizeof(batch), "%d", app->cfg->retention_batch);
	return job_submit(j, "retention_run", 1, params) < 0 ? JOB_FAILED : JOB_RUNNING;
}

static long retention_next(void *arg, enum db_status st, const PGresult *res)
{
	struct app *app = arg;
	json_t *r;
	json_int_t forgotten, purged, ms;
	long next = RETENTION_MAX_SLEEP_MS;
	json_t *nm;
	int more;

	if (st != DB_OK || PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
		return JOB_FAILED;
	r = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	if (!json_is_object(r)) {
		json_decref(r);
		return JOB_FAILED;
	}
	forgotten = json_integer_value(json_object_get(r, "forgotten"));
	purged = json_integer_value(json_object_get(r, "purged"));
	ms = json_integer_value(json_object_get(r, "ms"));
	more = json_is_true(json_object_get(r, "more"));
	nm = json_object_get(r, "next_ms");
	if (json_is_integer(nm) && json_integer_value(nm) + RETENTION_SLACK_MS < next)
		next = (long)json_integer_value(nm) + RETENTION_SLACK_MS;
	json_decref(r);
	if (forgotten > 0 || purged > 0) {
		/* ms: how long the batch's transaction held its row locks. */
		log_info("retention_done", "contact_erased=%lld record_purged=%lld ms=%lld",
			 (long long)forgotten, (long long)purged, (long long)ms);
		/* The batch queued their keys: delete them now. */
		datakeys_erase_queued(app->datakeys);
	}
	return more ? JOB_NOW : next;
}

const struct job_def retention_job = {
	.name = "retention",
	.retry_ms = RETENTION_RETRY_MS,
	.first_ms = 1000,
	.run = retention_run,
	.next = retention_next,
};
