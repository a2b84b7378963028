/*
 * metrics.h - Prometheus text metrics: requests by route and status, a latency
 * histogram, pool gauges, database errors.
 *
 * Owns: counters in memory (per process).
 * Must never: carry labels derived from client input other than the route
 * name and status code.
 */
#ifndef REFD_METRICS_H
#define REFD_METRICS_H

#include <stdint.h>

struct metrics;
struct evbuffer;
struct db_pool_stats;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
void metrics_observe_request(struct metrics *m, const char *route, int status,
			     uint64_t duration_us);
void metrics_count(struct metrics *m, const char *name, unsigned long n);  /* free-form counters, e.g. "sweeper_missed_total" */
/* A periodic job's runs, failures and run durations, by job name. The
 * handle is kept by its job; NULL (metrics off or table full) is accepted by
 * metrics_job_observe. */
struct metrics_job *metrics_job(struct metrics *m, const char *name);
void metrics_job_observe(struct metrics_job *h, int failed, uint64_t duration_us);
void metrics_render(const struct metrics *m, const struct db_pool_stats *pool,
		    struct evbuffer *out);

#endif
