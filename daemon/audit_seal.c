/*
 * audit_seal.c - two periodic jobs of the audit ledger v2: the sealer and the
 * head publisher.
 *
 * The sealer submits audit_seal(batch) (sql/migrations/0041): in one
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
 * Timers: a minimal task runner of its own (run -> one statement -> next
 * delay), shaped like the job module the house is getting (daemon/job.c):
 * each task becomes a job_def {run, next} when that lands.
 *
 * Owns: the two tasks and their single in-flight statements.
 * Must never: compute a seq or a hash itself, or hold the key anywhere but
 * app->signer; free a task inside the pool's callback path while the pool
 * still owes it one (stop marks, the callback frees).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "app.h"
#include "audit_head.h"
#include "audit_seal.h"
#include "config.h"
#include "db_pool.h"
#include "log.h"
#include "metrics.h"

#define SEAL_RETRY_MS 1000
#define HEAD_RETRY_MS 10000

struct seal_task;
typedef long (*seal_next_fn)(struct seal_task *t, enum db_status st, const PGresult *res);

struct audit_sealer;

struct seal_task {
	struct app *app;
	struct audit_sealer *owner;
	const char *name;
	const char *stmt;
	struct event *timer;
	long (*params)(struct seal_task *t, char bufs[2][512], const char *vals[2]);
	seal_next_fn next;
	long retry_ms;
	int inflight;      /* the run's statement or the publish */
	int stopping;
};

struct audit_sealer {
	struct seal_task seal;
	struct seal_task head;
};

/* ---- the task runner (to be replaced by job.c) ------------------------- */

static void task_arm(struct seal_task *t, long ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = t->retry_ms;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(t->timer, &tv);
}

static void task_free(struct seal_task *t)
{
	if (t->timer)
		event_free(t->timer);
	t->timer = NULL;
}

/* A stopped task's statement came back: free it, and the sealer when its
 * sibling is gone too. */
static void task_reap(struct seal_task *t);

static void task_done(void *arg, enum db_status st, const PGresult *res)
{
	struct seal_task *t = arg;
	long ms;

	t->inflight--;
	if (t->stopping) {
		if (t->inflight == 0)
			task_reap(t);
		return;
	}
	ms = t->next(t, st, res);
	if (ms < 0)
		log_warn("audit_task_failed", "task=%s status=%s sqlstate=%s", t->name,
			 db_status_to_str(st), res ? db_sqlstate(res) : "");
	if (t->inflight == 0)
		task_arm(t, ms);
}

static void task_run(evutil_socket_t fd, short what, void *arg)
{
	struct seal_task *t = arg;
	char bufs[2][512];
	const char *vals[2] = { NULL, NULL };
	long n;

	(void)fd;
	(void)what;
	if (t->inflight || t->stopping)
		return;
	n = t->params(t, bufs, vals);
	if (n < 0) {                    /* nothing to do now: -n ms later */
		task_arm(t, -n);
		return;
	}
	t->inflight = 1;
	if (!db_submit(t->app->pool, t->stmt, (int)n, vals, task_done, t, 0))
		t->inflight = 0;        /* pool closed: shutting down */
}

static int task_init(struct seal_task *t, struct audit_sealer *owner, struct app *app,
		     long first_ms)
{
	t->app = app;
	t->owner = owner;
	t->timer = evtimer_new(app->base, task_run, t);
	if (!t->timer)
		return -1;
	task_arm(t, first_ms);
	return 0;
}

static void task_stop(struct seal_task *t)
{
	if (t->timer)
		evtimer_del(t->timer);
	t->stopping = 1;
	if (!t->inflight)
		task_free(t);
}

/* ---- the sealer --------------------------------------------------------- */

static long seal_params(struct seal_task *t, char bufs[2][512], const char *vals[2])
{
	snprintf(bufs[0], sizeof(bufs[0]), "%d", t->app->cfg->audit_seal_batch);
	vals[0] = bufs[0];
	return 1;
}

static long seal_next(struct seal_task *t, enum db_status st, const PGresult *res)
{
	json_t *j;
	long sealed, ms = t->app->cfg->audit_seal_interval_ms;

	if (st != DB_OK || PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
		return -1;
	j = json_loadb(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -1;
	}
	sealed = (long)json_integer_value(json_object_get(j, "sealed"));
	if (sealed > 0)
		metrics_count(t->app->metrics, "referrald_audit_sealed_total", (unsigned long)sealed);
	if (json_is_true(json_object_get(j, "busy")))
		metrics_count(t->app->metrics, "referrald_audit_seal_busy_total", 1);
	else if (json_is_true(json_object_get(j, "more")))
		ms = 0;
	json_decref(j);
	return ms;
}

/* ---- the head publisher ------------------------------------------------- */

static void head_published(void *arg, enum db_status st, const PGresult *res)
{
	struct seal_task *t = arg;

	if (st != DB_OK) {
		log_warn("audit_head_publish_failed", "status=%s sqlstate=%s",
			 db_status_to_str(st), res ? db_sqlstate(res) : "");
	} else if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		metrics_count(t->app->metrics, "referrald_audit_heads_published_total", 1);
	}
	task_done(t, DB_OK, NULL);
}

static long head_params(struct seal_task *t, char bufs[2][512], const char *vals[2])
{
	(void)bufs;
	(void)vals;
	if (!t->app->signer)
		return -t->app->cfg->audit_head_interval_ms;
	return 0;
}

static long head_next(struct seal_task *t, enum db_status st, const PGresult *res)
{
	long every = t->app->cfg->audit_head_interval_ms / 2;
	struct audit_head h;
	json_t *j;
	char *text;
	char ival[40];
	const char *vals[2];

	if (res == NULL && st == DB_OK)         /* the publish came back */
		return every > 0 ? every : 1;
	if (st != DB_OK || PQntuples(res) != 1 || PQgetisnull(res, 0, 0) ||
	    audit_head_from_db(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), &h) < 0 ||
	    audit_head_sign(t->app->signer, &h) < 0)
		return -1;
	j = audit_head_to_json(&h);
	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return -1;
	/* 0.45 of the interval: with runs every half interval, some daemon's
	 * run always finds the last event old enough within one interval. */
	snprintf(ival, sizeof(ival), "%ld milliseconds",
		 t->app->cfg->audit_head_interval_ms * 45 / 100);
	vals[0] = text;
	vals[1] = ival;
	t->inflight++;
	if (!db_submit(t->app->pool, "audit_head_publish", 2, vals, head_published, t, 0))
		t->inflight--;
	free(text);
	return every > 0 ? every : 1;
}

static void task_reap(struct seal_task *t)
{
	struct audit_sealer *s = t->owner;

	task_free(t);
	if (s->seal.stopping && s->head.stopping && !s->seal.timer && !s->head.timer)
		free(s);
}

/* ---- start / stop ------------------------------------------------------- */

struct audit_sealer *audit_sealer_start(struct app *app)
{
	struct audit_sealer *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->seal.name = "seal";
	s->seal.stmt = "audit_seal";
	s->seal.params = seal_params;
	s->seal.next = seal_next;
	s->seal.retry_ms = SEAL_RETRY_MS;
	s->head.name = "head";
	s->head.stmt = "audit_head";
	s->head.params = head_params;
	s->head.next = head_next;
	s->head.retry_ms = HEAD_RETRY_MS;
	/* The first head soon after start (a restarted daemon announces where
	 * the chain stands), the first seal at once. */
	if (task_init(&s->seal, s, app, 0) < 0 || task_init(&s->head, s, app, 1000) < 0) {
		task_free(&s->seal);
		task_free(&s->head);
		free(s);
		return NULL;
	}
	return s;
}

void audit_sealer_stop(struct audit_sealer *s)
{
	if (!s)
		return;
	task_stop(&s->seal);
	task_stop(&s->head);
	/* A task whose statement is still out frees itself when it returns;
	 * the last one frees the whole (task_free). */
	if (!s->seal.timer && !s->head.timer)
		free(s);
}
