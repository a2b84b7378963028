/*
 * api_health.c - liveness, readiness and the metrics page.
 *
 * Owns: GET /healthz (the process answers), GET /readyz (the pool has a
 * connection, the database answers within a short deadline and its schema
 * is the one this binary was built for) and GET /metrics.
 * Must never: need authentication for /healthz and /readyz, block the loop,
 * or say more than "ready" or "not ready" (no server error texts).
 */
#include <stdlib.h>

#include <event2/buffer.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "api.h"
#include "app.h"
#include "config.h"
#include "db_pool.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "request.h"

/* Probes come every few seconds: a slow database is "not ready" well before
 * the general query deadline. */
#define READYZ_TIMEOUT_MS 2000

void api_healthz(struct req *r, const struct api_op *op)
{
	(void)op;
	req_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void readyz_not_ready(struct req *r, const char *message)
{
	req_add_header(r, "Retry-After", "1");
	req_reply_error(r, 503, "not_ready", message, NULL);
}

static void readyz_done(void *arg, enum db_status st, const PGresult *res)
{
	struct req *r = arg;
	int want = refd_migrations_count > 0 ? refd_migrations[refd_migrations_count - 1].version : 0;
	int have;

	if (st != DB_OK || res == NULL || PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		readyz_not_ready(r, st == DB_TIMEOUT ? "database too slow" :
						       "database unavailable");
		return;
	}
	have = atoi(PQgetvalue(res, 0, 0));
	if (have != want) {
		log_event(LOG_WARN, r->id, "schema_not_current", "have=%d want=%d", have, want);
		readyz_not_ready(r, "database schema is not current");
		return;
	}
	req_reply_json(r, 200, json_pack("{s:s,s:i}", "status", "ready", "schema_version", have));
}

void api_readyz(struct req *r, const struct api_op *op)
{
	(void)op;
	struct db_pool_stats st;
	long timeout = READYZ_TIMEOUT_MS;

	if (r->app->draining) {
		readyz_not_ready(r, "shutting down");
		return;
	}
	if (r->app->pool == NULL) {
		readyz_not_ready(r, "database unavailable");
		return;
	}
	db_pool_get_stats(r->app->pool, &st);
	if (st.connected == 0) {
		readyz_not_ready(r, "database unavailable");
		return;
	}
	if (r->app->cfg && r->app->cfg->db_query_timeout_ms > 0 &&
	    r->app->cfg->db_query_timeout_ms < timeout)
		timeout = r->app->cfg->db_query_timeout_ms;
	if (db_submit(r->app->pool, "readyz", 0, NULL, readyz_done, r, timeout) == NULL)
		readyz_not_ready(r, "database unavailable");
}

void api_metrics(struct req *r, const struct api_op *op)
{
	(void)op;
	struct evbuffer *b = evbuffer_new();
	struct db_pool_stats st;
	unsigned char *text;
	size_t len;

	if (b == NULL) {
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	if (r->app->pool != NULL)
		db_pool_get_stats(r->app->pool, &st);
	metrics_render(r->app->metrics, r->app->pool ? &st : NULL, b);
	len = evbuffer_get_length(b);
	text = evbuffer_pullup(b, -1);
	req_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, text ? len : 0);
	evbuffer_free(b);
}
