/*
 * outbox.h - the partner notification sender: a periodic job on the daemon's
 * loop that delivers the transactional outbox's events as signed webhooks.
 *
 * Owns: one timer, at most one claim in flight, at most
 * [webhooks] max_inflight events being delivered (each to its endpoints one
 * after another, so never more deliveries than that in flight), and the
 * webhook client (TLS context, resolver) they use. What is due, delivered or
 * given up lives in PostgreSQL (outbox rows), never only in memory, so a
 * restart loses nothing and several daemons share one outbox.
 * Must never: block the loop; log or send client data, a secret, a URL or an
 * endpoint's answer (event ids, webhook ids, outcome classes and status codes
 * only); free itself while the pool still owes it a callback.
 */
#ifndef REFD_OUTBOX_H
#define REFD_OUTBOX_H

struct app;
struct outbox;

/* NULL on failure (the reason is logged: e.g. the CA file cannot be read). */
struct outbox *outbox_start(struct app *app);
/* Stop claiming, abandon deliveries in flight (their events stay leased in
 * the outbox and are sent again when the lease runs out: at-least-once), and
 * free once the pool has returned every operation. */
void outbox_stop(struct outbox *o);

/* Delay in ms before retry after the n-th failed attempt (n >= 1):
 * min(base * 2^(n-1), max), scaled by jitter01 in [0,1) to +-20 %. */
long outbox_backoff_ms(int n, long base_ms, long max_ms, double jitter01);

#endif
