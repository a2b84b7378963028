/*
 * metrics.c - Prometheus text metrics for one process.
 *
 * Owns: fixed-size counter tables (routes x status codes, a latency histogram
 * per route, the counters of enum metric, the jobs' runs) and their rendering in
 * the Prometheus text exposition format 0.0.4.
 * Must never: take a label from client input: route names come from the
 * static route table, statuses are integers, counter names are literals in
 * the code. (The follow-up gauges' region label is a region slug the
 * database constrains to [a-z0-9-], checked again and capped in number where
 * they are rendered, api_health.c.) Tables are fixed, so a bug elsewhere cannot grow memory without
 * bound; what does not fit is counted under "other".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "db_pool.h"
#include "metrics.h"

#define METRICS_MAX_ROUTES 64
#define METRICS_MAX_STATUSES 24   /* distinct statuses kept per route */
#define METRICS_MAX_JOBS 16
#define METRICS_NAME_MAX 64

/* Upper bounds of the latency buckets, in microseconds. */
static const uint64_t bucket_us[] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};
#define NBUCKETS ((int)(sizeof(bucket_us) / sizeof(bucket_us[0])))

/* A latency histogram: non-cumulative buckets (summed when rendering). */
struct metrics_hist {
	unsigned long bucket[NBUCKETS];
	unsigned long count;
	uint64_t sum_us;
};

struct metrics_status {
	int status;
	unsigned long count;
};

struct metrics_route {
	char name[METRICS_NAME_MAX];
	int nstatus;
	struct metrics_status status[METRICS_MAX_STATUSES];
	unsigned long other_status;          /* statuses beyond the table */
	struct metrics_hist latency;
};


struct metrics_job {
	char name[METRICS_NAME_MAX];
	unsigned long failures;
	struct metrics_hist duration;        /* its count is the number of runs */
};

struct metrics {
	char *gauges;            /* rendered follow-up gauges (api_health.c), or NULL */
	long long gauges_at_ms;  /* monotonic time they were read */
	int njobs;
	struct metrics_job job[METRICS_MAX_JOBS];
	int nroutes;
	struct metrics_route route[METRICS_MAX_ROUTES];
	unsigned long fixed[M_NCOUNTERS];    /* metrics_table's counters */
};

struct metrics *metrics_new(void)
{
	return calloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
	if (m)
		free(m->gauges);
	free(m);
}

static long long metrics_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int metrics_gauges_fresh(const struct metrics *m, long max_age_ms)
{
	return m && m->gauges && metrics_now_ms() - m->gauges_at_ms <= max_age_ms;
}

void metrics_set_gauges(struct metrics *m, char *text)
{
	if (!m) {
		free(text);
		return;
	}
	free(m->gauges);
	m->gauges = text;
	m->gauges_at_ms = metrics_now_ms();
}

/* Route names are short identifiers such as "referrals.create"; anything
 * else (never expected) is folded into "other" so output stays valid. */
static int metrics_label_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return n > 0 && n < METRICS_NAME_MAX;
}

static int metrics_name_ok(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		      (n > 0 && c >= '0' && c <= '9')))
			return 0;
	}
	return n > 0 && n < METRICS_NAME_MAX;
}

static struct metrics_route *metrics_route_find(struct metrics *m, const char *name)
{
	int i;

	for (i = 0; i < m->nroutes; i++)
		if (strcmp(m->route[i].name, name) == 0)
			return &m->route[i];
	return NULL;
}

/* Named routes take the first slots; the last one is always free for the
 * single "other" series, so the output never repeats a label set. */
static struct metrics_route *metrics_route_get(struct metrics *m, const char *name)
{
	struct metrics_route *rt;

	if (name == NULL || !metrics_label_ok(name))
		name = "other";
	rt = metrics_route_find(m, name);
	if (rt != NULL)
		return rt;
	if (strcmp(name, "other") != 0 && m->nroutes >= METRICS_MAX_ROUTES - 1) {
		name = "other";
		rt = metrics_route_find(m, name);
		if (rt != NULL)
			return rt;
	}
	rt = &m->route[m->nroutes++];
	strcpy(rt->name, name);
	return rt;
}

static void metrics_hist_observe(struct metrics_hist *h, uint64_t us)
{
	int i;

	for (i = 0; i < NBUCKETS; i++)
		if (us <= bucket_us[i])
			break;
	if (i < NBUCKETS)
		h->bucket[i]++;
	h->count++;
	h->sum_us += us;
}

/* One series of a histogram family: family_bucket{label="value",le=...}... */
static void metrics_hist_render(struct evbuffer *out, const char *family, const char *label,
				const char *value, const struct metrics_hist *h)
{
	unsigned long cum = 0;

	for (int j = 0; j < NBUCKETS; j++) {
		cum += h->bucket[j];
		evbuffer_add_printf(out, "%s_bucket{%s=\"%s\",le=\"%g\"} %lu\n", family, label,
				    value, (double)bucket_us[j] / 1e6, cum);
	}
	evbuffer_add_printf(out,
			    "%s_bucket{%s=\"%s\",le=\"+Inf\"} %lu\n"
			    "%s_sum{%s=\"%s\"} %.6f\n"
			    "%s_count{%s=\"%s\"} %lu\n",
			    family, label, value, h->count, family, label, value,
			    (double)h->sum_us / 1e6, family, label, value, h->count);
}

void metrics_observe_request(struct metrics *m, const char *route, int status,
			     uint64_t duration_us)
{
	struct metrics_route *rt;
	int i;

	if (m == NULL)
		return;
	rt = metrics_route_get(m, route);
	for (i = 0; i < rt->nstatus; i++)
		if (rt->status[i].status == status)
			break;
	if (i == rt->nstatus) {
		if (rt->nstatus < METRICS_MAX_STATUSES && status >= 100 && status <= 599) {
			rt->status[i].status = status;
			rt->nstatus++;
		} else {
			i = -1;
		}
	}
	if (i >= 0)
		rt->status[i].count++;
	else
		rt->other_status++;

	metrics_hist_observe(&rt->latency, duration_us);
}

/* Every counter of enum metric: name and help, in the enum's order. */
static const struct {
	const char *name, *help;
} metrics_table[M_NCOUNTERS] = {
	[M_ACCEPT_REFUSED] = { "referrald_accept_refused_total",
			       "Connections closed at once: no file descriptor left." },
	[M_WRITE_TIMEOUTS] = { "referrald_write_timeouts_total",
			       "Replies not written out within write_timeout." },
	[M_REQUEST_TIMEOUTS] = { "referrald_request_timeouts_total",
				 "Requests not received within read_timeout." },
	[M_SWEEPER_MISSED] = { "referrald_sweeper_deadlines_missed_total",
			       "Deadlines the sweeper found missed and acted on." },
	[M_PURGED_IDEMPOTENCY_KEYS] = { "referrald_purged_idempotency_keys_total",
					"Idempotency records deleted after their retention." },
	[M_OUTBOX_ERRORS] = { "referrald_outbox_errors_total",
			      "Outbox claims, acknowledgements or rows that failed." },
	[M_OUTBOX_DELIVERED] = { "referrald_outbox_events_delivered_total",
				 "Events every endpoint answered 2xx." },
	[M_OUTBOX_GIVEN_UP] = { "referrald_outbox_events_given_up_total",
				"Events parked after [webhooks] max_attempts." },
	[M_OUTBOX_RETRIES] = { "referrald_outbox_retries_total",
			       "Event attempts scheduled again after a failure." },
	[M_WEBHOOK_OK] = { "referrald_webhook_deliveries_ok_total", "Webhook POSTs answered 2xx." },
	[M_WEBHOOK_FAILED] = { "referrald_webhook_deliveries_failed_total",
			       "Webhook POSTs that failed (status, timeout, TLS, ...)." },
	[M_REMATCH_OFFERS] = { "referrald_rematch_offers_total",
			       "Unassigned assignments offered by the re-matching job." },
	[M_DEADLINE_REMINDERS] = { "referrald_deadline_reminders_total",
				   "deadline.due_soon reminders sent (this process)." },
	[M_ESCALATIONS_LEVEL2] = { "referrald_deadline_escalations_level2_total",
				   "Missed deadlines escalated to programme supervisors (level 2)." },
	[M_RATE_LIMITED] = { "referrald_rate_limited_total",
			     "Requests answered 429 by a [limits] rule." },
	[M_AUTH_FAILURES] = { "referrald_auth_failures_total",
			      "Failed authentications (answered 401)." },
	[M_REFUSED_PER_ADDRESS] = { "referrald_connections_refused_per_address_total",
				    "Connections closed at once: too many from one address." },
	[M_AUDIT_SEALED] = { "referrald_audit_sealed_total",
			     "Audit records sealed into the hash chain." },
	[M_AUDIT_SEAL_BUSY] = { "referrald_audit_seal_busy_total",
				"Sealer runs that found another sealer at work." },
	[M_AUDIT_HEADS_PUBLISHED] = { "referrald_audit_heads_published_total",
				      "Signed audit heads published." },
};

void metrics_add(struct metrics *m, enum metric id, unsigned long n)
{
	if (m != NULL && id < M_NCOUNTERS)
		m->fixed[id] += n;
}

struct metrics_job *metrics_job(struct metrics *m, const char *name)
{
	struct metrics_job *h;

	if (m == NULL || name == NULL || !metrics_name_ok(name))
		return NULL;
	for (int i = 0; i < m->njobs; i++)
		if (strcmp(m->job[i].name, name) == 0)
			return &m->job[i];
	if (m->njobs == METRICS_MAX_JOBS)
		return NULL;
	h = &m->job[m->njobs++];
	strcpy(h->name, name);
	return h;
}

void metrics_job_observe(struct metrics_job *h, int failed, uint64_t duration_us)
{
	if (h == NULL)
		return;
	if (failed)
		h->failures++;
	metrics_hist_observe(&h->duration, duration_us);
}

static void metrics_render_jobs(const struct metrics *m, struct evbuffer *out)
{
	int i;

	evbuffer_add_printf(out, "# HELP referrald_job_runs_total Runs of each periodic job.\n"
				 "# TYPE referrald_job_runs_total counter\n");
	for (i = 0; i < m->njobs; i++)
		evbuffer_add_printf(out, "referrald_job_runs_total{job=\"%s\"} %lu\n",
				    m->job[i].name, m->job[i].duration.count);
	evbuffer_add_printf(out, "# HELP referrald_job_failures_total Runs of each periodic job "
				 "that failed.\n"
				 "# TYPE referrald_job_failures_total counter\n");
	for (i = 0; i < m->njobs; i++)
		evbuffer_add_printf(out, "referrald_job_failures_total{job=\"%s\"} %lu\n",
				    m->job[i].name, m->job[i].failures);
	evbuffer_add_printf(out, "# HELP referrald_job_duration_seconds Time from the start of "
				 "a run to its end.\n"
				 "# TYPE referrald_job_duration_seconds histogram\n");
	for (i = 0; i < m->njobs; i++)
		metrics_hist_render(out, "referrald_job_duration_seconds", "job", m->job[i].name,
				    &m->job[i].duration);
}

/* One unlabelled series: a gauge or a counter. */
static void metrics_render_value(struct evbuffer *out, const char *name, const char *help,
				 const char *type, unsigned long v)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %lu\n", name, help, name, type,
			    name, v);
}

void metrics_render(const struct metrics *m, const struct db_pool_stats *pool,
		    struct evbuffer *out)
{
	int i, j;
	struct db_pool_stats zero;

	evbuffer_add_printf(out, "# HELP referrald_http_requests_total HTTP requests by route "
				 "and status.\n"
				 "# TYPE referrald_http_requests_total counter\n");
	for (i = 0; m && i < m->nroutes; i++) {
		const struct metrics_route *rt = &m->route[i];
		for (j = 0; j < rt->nstatus; j++)
			evbuffer_add_printf(out,
					    "referrald_http_requests_total{route=\"%s\","
					    "status=\"%d\"} %lu\n",
					    rt->name, rt->status[j].status, rt->status[j].count);
		if (rt->other_status)
			evbuffer_add_printf(out,
					    "referrald_http_requests_total{route=\"%s\","
					    "status=\"other\"} %lu\n",
					    rt->name, rt->other_status);
	}

	evbuffer_add_printf(out, "# HELP referrald_http_request_duration_seconds Time from "
				 "request to reply.\n"
				 "# TYPE referrald_http_request_duration_seconds histogram\n");
	for (i = 0; m && i < m->nroutes; i++)
		metrics_hist_render(out, "referrald_http_request_duration_seconds", "route",
				    m->route[i].name, &m->route[i].latency);

	if (pool == NULL) {
		memset(&zero, 0, sizeof(zero));
		pool = &zero;
	}
	metrics_render_value(out, "referrald_db_pool_size", "Configured database connections.",
			     "gauge", (unsigned long)pool->size);
	metrics_render_value(out, "referrald_db_pool_connected",
			     "Database connections ready for queries.", "gauge",
			     (unsigned long)pool->connected);
	metrics_render_value(out, "referrald_db_pool_busy",
			     "Database connections with an operation in flight.", "gauge",
			     (unsigned long)pool->busy);
	metrics_render_value(out, "referrald_db_pool_waiting",
			     "Database operations waiting for a connection.", "gauge",
			     (unsigned long)pool->waiting);
	metrics_render_value(out, "referrald_db_errors_total",
			     "Database operations that failed (error, unavailable, timeout).",
			     "counter", pool->errors);
	metrics_render_value(out, "referrald_db_timeouts_total",
			     "Database operations cancelled at their deadline.", "counter",
			     pool->timeouts);
	metrics_render_value(out, "referrald_db_reconnects_total",
			     "Database reconnections.", "counter", pool->reconnects);

	if (m && m->gauges)
		evbuffer_add(out, m->gauges, strlen(m->gauges));
	if (m)
		metrics_render_jobs(m, out);
	for (i = 0; m && i < M_NCOUNTERS; i++)
		metrics_render_value(out, metrics_table[i].name, metrics_table[i].help, "counter",
				     m->fixed[i]);
}
