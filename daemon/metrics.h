/*
 * metrics.h - Prometheus text metrics.
 * What it owns and must never do: metrics.c.
 */
#ifndef REFD_METRICS_H
#define REFD_METRICS_H

#include <stdint.h>

struct metrics;
struct metrics_counter;
struct metrics_job;
struct evbuffer;
struct db_pool_stats;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
void metrics_observe_request(struct metrics *m, const char *route, int status,
			     uint64_t duration_us);

/* A counter, registered once (at start) by its full name, a literal
 * "referrald_..._total", and counted through the handle. Registering a name
 * again returns the same handle; NULL (metrics off, bad name, table full) is
 * accepted by metrics_add. */
struct metrics_counter *metrics_counter(struct metrics *m, const char *name, const char *help);
void metrics_add(struct metrics_counter *c, unsigned long n);
/* Register-and-add by name in one call, for code not yet holding a handle
 * (looks the name up each time; prefer metrics_counter + metrics_add). */
void metrics_count(struct metrics *m, const char *name, unsigned long n);

/* A periodic job's runs, failures and run durations, by job name. The
 * handle is kept by its job; NULL is accepted by metrics_job_observe. */
struct metrics_job *metrics_job(struct metrics *m, const char *name);
void metrics_job_observe(struct metrics_job *h, int failed, uint64_t duration_us);

void metrics_render(const struct metrics *m, const struct db_pool_stats *pool,
		    struct evbuffer *out);

#endif
