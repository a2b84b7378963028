/*
 * purge.c - launch -> run -> handler -> parse -> retry, for retention.
 *
 * Each run submits "idempotency_purge" (sql/functions/10_deadlines_outbox.sql): it deletes at
 * most PURGE_BATCH idempotency records older than [retention]
 * idempotency_keys, oldest first, through their created_at index, and says
 * how many. A full batch means more are due: run again shortly, so a backlog
 * drains in small transactions that never hold many row locks; otherwise
 * sleep [retention] interval. Several daemons may purge at once: a row
 * deleted by one is simply not found by the other.
 *
 * Owns: its timer and the single in-flight operation.
 * Must never: free itself inside its own db callback while stop is pending
 * elsewhere (stop only marks it when an operation is in flight).
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include "app.h"
#include "config.h"
#include "db_pool.h"
#include "log.h"
#include "metrics.h"
#include "purge.h"

#define PURGE_BATCH 1000
#define PURGE_AGAIN_MS 100     /* after a full batch */
#define PURGE_RETRY_MS 10000   /* after a database error */

struct purge {
	struct app *app;
	struct event *timer;
	int inflight;
	int stopping;
};

static void purge_arm(struct purge *p, long ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(p->timer, &tv);
}

static void purge_free(struct purge *p)
{
	event_free(p->timer);
	free(p);
}

static void purge_done(void *arg, enum db_status st, const PGresult *res)
{
	struct purge *p = arg;
	long n;

	p->inflight = 0;
	if (p->stopping) {
		purge_free(p);
		return;
	}
	if (st != DB_OK || PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		log_warn("purge_failed", "status=%s sqlstate=%s", db_status_to_str(st),
			 res ? db_sqlstate(res) : "");
		purge_arm(p, PURGE_RETRY_MS);
		return;
	}
	n = atol(PQgetvalue(res, 0, 0));
	if (n > 0) {
		log_info("purge_done", "idempotency_keys=%ld", n);
		metrics_count(p->app->metrics, "referrald_purged_idempotency_keys_total",
			      (unsigned long)n);
	}
	purge_arm(p, n >= PURGE_BATCH ? PURGE_AGAIN_MS : p->app->cfg->retention_interval_ms);
}

static void purge_run(evutil_socket_t fd, short what, void *arg)
{
	struct purge *p = arg;
	char older[40], batch[16];
	const char *params[2] = { older, batch };

	(void)fd;
	(void)what;
	if (p->inflight)
		return;
	snprintf(older, sizeof(older), "%ld milliseconds", p->app->cfg->retention_idempotency_ms);
	snprintf(batch, sizeof(batch), "%d", PURGE_BATCH);
	p->inflight = 1;
	if (!db_submit(p->app->pool, "idempotency_purge", 2, params, purge_done, p, 0))
		p->inflight = 0; /* pool closed: shutting down */
}

struct purge *purge_start(struct app *app)
{
	struct purge *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->app = app;
	p->timer = evtimer_new(app->base, purge_run, p);
	if (!p->timer) {
		free(p);
		return NULL;
	}
	/* Not at once: a fleet restarting together should not all purge in
	 * the same second, and start-up has more urgent work. */
	purge_arm(p, app->cfg->retention_interval_ms);
	return p;
}

void purge_stop(struct purge *p)
{
	if (!p)
		return;
	evtimer_del(p->timer);
	if (p->inflight) {
		/* The pool still owes us a callback: free there, not here. */
		p->stopping = 1;
		return;
	}
	purge_free(p);
}
