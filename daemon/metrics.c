/*
 * metrics.c - Prometheus text metrics for one process.
 *
 * Owns: fixed-size counter tables (routes x status codes, a latency histogram
 * per route, free-form counters named by the code) and their rendering in
 * the Prometheus text exposition format 0.0.4.
 * Must never: take a label from client input: route names come from the
 * static route table, statuses are integers, counter names are literals in
 * the code. Tables are fixed, so a bug elsewhere cannot grow memory without
 * bound; what does not fit is counted under "other".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "db_pool.h"
#include "metrics.h"

#define METRICS_MAX_ROUTES 64
#define METRICS_MAX_STATUSES 24   /* distinct statuses kept per route */
#define METRICS_MAX_COUNTERS 64
#define METRICS_MAX_JOBS 16
#define METRICS_NAME_MAX 64

/* Upper bounds of the latency buckets, in microseconds. */
static const uint64_t bucket_us[] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};
#define NBUCKETS ((int)(sizeof(bucket_us) / sizeof(bucket_us[0])))

struct metrics_status {
	int status;
	unsigned long count;
};

struct metrics_route {
	char name[METRICS_NAME_MAX];
	int nstatus;
	struct metrics_status status[METRICS_MAX_STATUSES];
	unsigned long other_status;          /* statuses beyond the table */
	unsigned long bucket[NBUCKETS];      /* non-cumulative; summed when rendering */
	unsigned long count;
	uint64_t sum_us;
};

struct metrics_counter {
	char name[METRICS_NAME_MAX];
	unsigned long value;
};

struct metrics_job {
	char name[METRICS_NAME_MAX];
	unsigned long runs, failures;
	unsigned long bucket[NBUCKETS];      /* non-cumulative, as for routes */
	uint64_t sum_us;
};

struct metrics {
	int njobs;
	struct metrics_job job[METRICS_MAX_JOBS];
	int nroutes;
	struct metrics_route route[METRICS_MAX_ROUTES];
	int ncounters;
	struct metrics_counter counter[METRICS_MAX_COUNTERS];
};

struct metrics *metrics_new(void)
{
	return calloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
	free(m);
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
	return n > 0 && n < METRICS_NAME_MAX - 10;   /* room for the prefix */
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

	for (i = 0; i < NBUCKETS; i++)
		if (duration_us <= bucket_us[i])
			break;
	if (i < NBUCKETS)
		rt->bucket[i]++;
	rt->count++;
	rt->sum_us += duration_us;
}

void metrics_count(struct metrics *m, const char *name, unsigned long n)
{
	int i;

	if (m == NULL || name == NULL || !metrics_name_ok(name))
		return;
	for (i = 0; i < m->ncounters; i++) {
		if (strcmp(m->counter[i].name, name) == 0) {
			m->counter[i].value += n;
			return;
		}
	}
	if (m->ncounters == METRICS_MAX_COUNTERS)
		return;
	i = m->ncounters++;
	strcpy(m->counter[i].name, name);
	m->counter[i].value = n;
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
	int i;

	if (h == NULL)
		return;
	h->runs++;
	if (failed)
		h->failures++;
	for (i = 0; i < NBUCKETS; i++)
		if (duration_us <= bucket_us[i])
			break;
	if (i < NBUCKETS)
		h->bucket[i]++;
	h->sum_us += duration_us;
}

static void metrics_render_jobs(const struct metrics *m, struct evbuffer *out)
{
	int i, j;

	evbuffer_add_printf(out, "# HELP referrald_job_runs_total Runs of each periodic job.\n"
				 "# TYPE referrald_job_runs_total counter\n");
	for (i = 0; i < m->njobs; i++)
		evbuffer_add_printf(out, "referrald_job_runs_total{job=\"%s\"} %lu\n",
				    m->job[i].name, m->job[i].runs);
	evbuffer_add_printf(out, "# HELP referrald_job_failures_total Runs of each periodic job "
				 "that failed.\n"
				 "# TYPE referrald_job_failures_total counter\n");
	for (i = 0; i < m->njobs; i++)
		evbuffer_add_printf(out, "referrald_job_failures_total{job=\"%s\"} %lu\n",
				    m->job[i].name, m->job[i].failures);
	evbuffer_add_printf(out, "# HELP referrald_job_duration_seconds Time from the start of "
				 "a run to its end.\n"
				 "# TYPE referrald_job_duration_seconds histogram\n");
	for (i = 0; i < m->njobs; i++) {
		const struct metrics_job *h = &m->job[i];
		unsigned long cum = 0;

		for (j = 0; j < NBUCKETS; j++) {
			cum += h->bucket[j];
			evbuffer_add_printf(out,
					    "referrald_job_duration_seconds_bucket{job=\"%s\","
					    "le=\"%g\"} %lu\n",
					    h->name, (double)bucket_us[j] / 1e6, cum);
		}
		evbuffer_add_printf(out,
				    "referrald_job_duration_seconds_bucket{job=\"%s\",le=\"+Inf\"} %lu\n"
				    "referrald_job_duration_seconds_sum{job=\"%s\"} %.6f\n"
				    "referrald_job_duration_seconds_count{job=\"%s\"} %lu\n",
				    h->name, h->runs, h->name, (double)h->sum_us / 1e6, h->name,
				    h->runs);
	}
}

static void metrics_render_gauge(struct evbuffer *out, const char *name, const char *help,
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
	for (i = 0; m && i < m->nroutes; i++) {
		const struct metrics_route *rt = &m->route[i];
		unsigned long cum = 0;
		for (j = 0; j < NBUCKETS; j++) {
			cum += rt->bucket[j];
			evbuffer_add_printf(out,
					    "referrald_http_request_duration_seconds_bucket"
					    "{route=\"%s\",le=\"%g\"} %lu\n",
					    rt->name, (double)bucket_us[j] / 1e6, cum);
		}
		evbuffer_add_printf(out,
				    "referrald_http_request_duration_seconds_bucket"
				    "{route=\"%s\",le=\"+Inf\"} %lu\n"
				    "referrald_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
				    "referrald_http_request_duration_seconds_count{route=\"%s\"} %lu\n",
				    rt->name, rt->count, rt->name, (double)rt->sum_us / 1e6, rt->name,
				    rt->count);
	}

	if (pool == NULL) {
		memset(&zero, 0, sizeof(zero));
		pool = &zero;
	}
	metrics_render_gauge(out, "referrald_db_pool_size", "Configured database connections.",
			     "gauge", (unsigned long)pool->size);
	metrics_render_gauge(out, "referrald_db_pool_connected",
			     "Database connections ready for queries.", "gauge",
			     (unsigned long)pool->connected);
	metrics_render_gauge(out, "referrald_db_pool_busy",
			     "Database connections with an operation in flight.", "gauge",
			     (unsigned long)pool->busy);
	metrics_render_gauge(out, "referrald_db_pool_waiting",
			     "Database operations waiting for a connection.", "gauge",
			     (unsigned long)pool->waiting);
	metrics_render_gauge(out, "referrald_db_errors_total",
			     "Database operations that failed (error, unavailable, timeout).",
			     "counter", pool->errors);
	metrics_render_gauge(out, "referrald_db_timeouts_total",
			     "Database operations cancelled at their deadline.", "counter",
			     pool->timeouts);
	metrics_render_gauge(out, "referrald_db_reconnects_total",
			     "Database reconnections.", "counter", pool->reconnects);

	if (m)
		metrics_render_jobs(m, out);
	for (i = 0; m && i < m->ncounters; i++) {
		const char *name = m->counter[i].name;
		const char *prefix = strncmp(name, "referrald_", 10) == 0 ? "" : "referrald_";
		evbuffer_add_printf(out, "# TYPE %s%s counter\n%s%s %lu\n", prefix, name, prefix,
				    name, m->counter[i].value);
	}
}
