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
#include <string.h>

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
	/* The same bytes every time: no JSON built, dumped and freed per probe
	 * (issue 12: healthz against nginx's static file). */
	static const char body[] = "{\"status\":\"ok\"}";

	(void)op;
	req_reply_raw(r, 200, "application/json; charset=utf-8", body, sizeof(body) - 1);
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

/* The follow-up gauges cost one database statement (partial indexes only);
 * scrapes within this age reuse the last answer. */
#define GAUGES_MAX_AGE_MS 5000
#define GAUGES_MAX_REGIONS 200

static int metrics_slug_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '-'))
			return 0;
	return n > 0 && n <= 64;
}

static long gauge_value(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

/* {"pending": {kind: n}, "overdue": {kind: n}, "unassigned": {region: n},
 * "escalations": {level: n}} -> Prometheus text (every kind and level shown,
 * zero when absent). NULL when out of memory. */
static char *gauges_render(json_t *g)
{
	static const char *const kinds[] = { "accept", "first_contact", "consultation" };
	struct evbuffer *b = evbuffer_new();
	json_t *un, *v;
	const char *key;
	char *text = NULL;
	size_t len;
	int n = 0;
	long other = 0;

	if (!b)
		return NULL;
	evbuffer_add_printf(b, "# HELP referrald_deadlines_pending Pending deadlines by kind.\n"
			       "# TYPE referrald_deadlines_pending gauge\n");
	for (int i = 0; i < 3; i++)
		evbuffer_add_printf(b, "referrald_deadlines_pending{kind=\"%s\"} %ld\n", kinds[i],
				    gauge_value(json_object_get(g, "pending"), kinds[i]));
	evbuffer_add_printf(b, "# HELP referrald_deadlines_overdue Missed deadlines whose "
			       "escalation is still open, by kind.\n"
			       "# TYPE referrald_deadlines_overdue gauge\n");
	for (int i = 0; i < 3; i++)
		evbuffer_add_printf(b, "referrald_deadlines_overdue{kind=\"%s\"} %ld\n", kinds[i],
				    gauge_value(json_object_get(g, "overdue"), kinds[i]));
	evbuffer_add_printf(b, "# HELP referrald_assignments_unassigned Unassigned assignments "
			       "by region.\n# TYPE referrald_assignments_unassigned gauge\n");
	un = json_object_get(g, "unassigned");
	json_object_foreach(un, key, v) {
		if (!json_is_integer(v))
			continue;
		if (n >= GAUGES_MAX_REGIONS || !metrics_slug_ok(key)) {
			other += (long)json_integer_value(v);
			continue;
		}
		evbuffer_add_printf(b, "referrald_assignments_unassigned{region=\"%s\"} %ld\n", key,
				    (long)json_integer_value(v));
		n++;
	}
	if (other)
		evbuffer_add_printf(b, "referrald_assignments_unassigned{region=\"other\"} %ld\n",
				    other);
	evbuffer_add_printf(b, "# HELP referrald_escalations_open Open escalations by level.\n"
			       "# TYPE referrald_escalations_open gauge\n"
			       "referrald_escalations_open{level=\"1\"} %ld\n"
			       "referrald_escalations_open{level=\"2\"} %ld\n",
			    gauge_value(json_object_get(g, "escalations"), "1"),
			    gauge_value(json_object_get(g, "escalations"), "2"));
	len = evbuffer_get_length(b);
	text = malloc(len + 1);
	if (text) {
		evbuffer_copyout(b, text, len);
		text[len] = '\0';
	}
	evbuffer_free(b);
	return text;
}

static void metrics_reply(struct req *r)
{
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

static void metrics_gauges_done(void *arg, enum db_status st, const PGresult *res)
{
	struct req *r = arg;
	json_t *g = NULL;
	json_error_t jerr;
	char *text;

	if (st == DB_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		g = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
	if (g) {
		text = gauges_render(g);
		if (text)
			metrics_set_gauges(r->app->metrics, text);
		json_decref(g);
	} else {
		/* The page still answers, with the last gauges read (if any). */
		log_event(LOG_WARN, r->id, "metrics_gauges_failed", "status=%s",
			  db_status_to_str(st));
	}
	metrics_reply(r);
}

void api_metrics(struct req *r, const struct api_op *op)
{
	(void)op;
	if (r->app->pool == NULL || metrics_gauges_fresh(r->app->metrics, GAUGES_MAX_AGE_MS) ||
	    db_submit(r->app->pool, "followup_gauges", 0, NULL, metrics_gauges_done, r, 0) == NULL)
		metrics_reply(r);
}
