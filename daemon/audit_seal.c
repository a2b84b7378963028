/*
 * audit_seal.c - two periodic jobs of the audit ledger v2, clients of job.c:
 * the sealer and the head publisher.
 *
 * The sealer submits audit_seal(batch) (sql/functions/03_audit.sql): in one
 * transaction, under an advisory lock only one sealer in the cluster holds
 * at a time (another daemon's run answers "busy" at once), it chains the
 * committed, unsealed records below the snapshot's xmin horizon onto the
 * head. All the decisions (which records, their order, seq and hashes) are
 * the database's; this side only says when. A full batch runs again at once,
 * otherwise [audit] seal_interval later. A daemon killed mid-batch loses
 * nothing: the batch's transaction rolls back whole and the next run (of
 * any daemon) seals the same records.
 *
 * The head publisher, every half [audit] head_interval: reads audit_head(),
 * signs "seq|hash|at" with the Ed25519 key (audit_head.c) and hands the
 * signed head to audit_head_publish(), which queues an audit.head outbox
 * event unless one (from any daemon) went out less than 0.45 interval ago:
 * so the events come at least once per head_interval between all daemons.
 *
 * Owns: the two jobs' statements and the reading of their results.
 * Must never: compute a seq or a hash itself, or hold the key anywhere but
 * app->signer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "app.h"
#include "audit_head.h"
#include "config.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"

#define HEAD_RETRY_MS 10000

/* ---- the sealer --------------------------------------------------------- */

static long seal_run(struct job *j, void *arg)
{
	struct app *app = arg;

	return job_submit_batch(j, "audit_seal", app->cfg->audit_seal_batch);
}

static long seal_next(void *arg, enum db_status st, const PGresult *res)
{
	struct app *app = arg;
	json_t *j = job_result_object(st, res);
	long sealed, ms = app->cfg->audit_seal_interval_ms;

	if (!j)
		return JOB_FAILED;
	sealed = job_json_long(j, "sealed");
	if (sealed > 0)
		metrics_add(app->metrics, M_AUDIT_SEALED, (unsigned long)sealed);
	if (json_is_true(json_object_get(j, "busy")))
		metrics_add(app->metrics, M_AUDIT_SEAL_BUSY, 1);
	else if (json_is_true(json_object_get(j, "more")))
		ms = JOB_NOW;
	json_decref(j);
	return ms;
}

const struct job_def seal_job = {
	.name = "audit_seal",
	.run = seal_run,
	.next = seal_next,
};

/* ---- the head publisher ------------------------------------------------- */

static long head_every(const struct app *app)
{
	long every = app->cfg->audit_head_interval_ms / 2;

	return every > 0 ? every : 1;
}

static void head_published(void *arg, enum db_status st, const PGresult *res)
{
	struct app *app = arg;

	if (st != DB_OK)
		log_warn("audit_head_publish_failed", "status=%s sqlstate=%s",
			 db_status_to_str(st), res ? db_sqlstate(res) : "");
	else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0)
		metrics_add(app->metrics, M_AUDIT_HEADS_PUBLISHED, 1);
}

/* The job's own handle for the publish: set at start (one job per app). */
struct head_ctx {
	struct app *app;
	struct job *job;
};

static int head_init(struct app *app, struct job *j, void *arg)
{
	struct head_ctx *c = arg;

	c->app = app;
	c->job = j;
	return 0;
}

static long head_run(struct job *j, void *arg)
{
	struct head_ctx *c = arg;

	if (!c->app->signer)
		return c->app->cfg->audit_head_interval_ms;     /* nothing to sign with */
	return job_submit(j, "audit_head", 0, NULL) < 0 ? JOB_FAILED : JOB_RUNNING;
}

static long head_next(void *arg, enum db_status st, const PGresult *res)
{
	struct head_ctx *c = arg;
	struct audit_head h;
	json_t *j;
	char *text;
	char ival[40];
	const char *vals[2];

	if (st != DB_OK || PQntuples(res) != 1 || PQgetisnull(res, 0, 0) ||
	    audit_head_from_db(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), &h) < 0 ||
	    audit_head_sign(c->app->signer, &h) < 0)
		return JOB_FAILED;
	j = audit_head_to_json(&h);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return JOB_FAILED;
	/* 0.45 of the interval: with runs every half interval, some daemon's
	 * run always finds the last event old enough within one interval. */
	snprintf(ival, sizeof(ival), "%ld milliseconds",
		 c->app->cfg->audit_head_interval_ms * 45 / 100);
	vals[0] = text;
	vals[1] = ival;
	job_submit_op(c->job, "audit_head_publish", 2, vals, head_published, c->app);
	free(text);
	return head_every(c->app);
}

const struct job_def head_job = {
	.name = "audit_head",
	.retry_ms = HEAD_RETRY_MS,
	/* Soon after start: a restarted daemon announces where the chain is. */
	.first_ms = 1000,
	.arg_size = sizeof(struct head_ctx),
	.init = head_init,
	.run = head_run,
	.next = head_next,
};
