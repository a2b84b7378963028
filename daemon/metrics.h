/*
 * metrics.h - Prometheus text metrics.
 * What it owns and must never do: metrics.c.
 */
#ifndef REFD_METRICS_H
#define REFD_METRICS_H

#include <stdint.h>

struct metrics;
struct metrics_job;
struct evbuffer;
struct db_pool_stats;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
void metrics_observe_request(struct metrics *m, const char *route, int status,
			     uint64_t duration_us);

/* The daemon's own counters: one table in metrics.c gives each its name and
 * help text; the enum is the handle. */
enum metric {
	M_ACCEPT_REFUSED,          /* referrald_accept_refused_total */
	M_WRITE_TIMEOUTS,          /* referrald_write_timeouts_total */
	M_REQUEST_TIMEOUTS,        /* referrald_request_timeouts_total */
	M_SWEEPER_MISSED,          /* referrald_sweeper_deadlines_missed_total */
	M_PURGED_IDEMPOTENCY_KEYS, /* referrald_purged_idempotency_keys_total */
	M_OUTBOX_ERRORS,           /* referrald_outbox_errors_total */
	M_OUTBOX_DELIVERED,        /* referrald_outbox_events_delivered_total */
	M_OUTBOX_GIVEN_UP,         /* referrald_outbox_events_given_up_total */
	M_OUTBOX_RETRIES,          /* referrald_outbox_retries_total */
	M_WEBHOOK_OK,              /* referrald_webhook_deliveries_ok_total */
	M_WEBHOOK_FAILED,          /* referrald_webhook_deliveries_failed_total */
	M_REMATCH_OFFERS,          /* referrald_rematch_offers_total */
	M_DEADLINE_REMINDERS,      /* referrald_deadline_reminders_total */
	M_ESCALATIONS_LEVEL2,      /* referrald_deadline_escalations_level2_total */
	M_RATE_LIMITED,            /* referrald_rate_limited_total */
	M_AUTH_FAILURES,           /* referrald_auth_failures_total */
	M_REFUSED_PER_ADDRESS,     /* referrald_connections_refused_per_address_total */
	M_AUDIT_SEALED,            /* referrald_audit_sealed_total */
	M_AUDIT_SEAL_BUSY,         /* referrald_audit_seal_busy_total */
	M_AUDIT_HEADS_PUBLISHED,   /* referrald_audit_heads_published_total */
	M_NCOUNTERS
};
void metrics_add(struct metrics *m, enum metric id, unsigned long n);

/* The follow-up gauges read from the database: a rendered text block (owned
 * by m from then on) and whether the one held is younger than max_age_ms. */
void metrics_set_gauges(struct metrics *m, char *text);
int metrics_gauges_fresh(const struct metrics *m, long max_age_ms);
/* A periodic job's runs, failures and run durations, by job name. The
 * handle is kept by its job; NULL is accepted by metrics_job_observe. */
struct metrics_job *metrics_job(struct metrics *m, const char *name);
void metrics_job_observe(struct metrics_job *h, int failed, uint64_t duration_us);

void metrics_render(const struct metrics *m, const struct db_pool_stats *pool,
		    struct evbuffer *out);

#endif
