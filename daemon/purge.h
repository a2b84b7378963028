/*
 * purge.h - the retention purge: a periodic job on the daemon's loop that
 * deletes records kept only for a while (idempotency records).
 *
 * Owns: one timer and at most one purge in flight.
 * Must never: block the loop; delete anything a protocol promise still needs
 * (a replay within [retention] idempotency_keys gets the stored answer).
 */
#ifndef REFD_PURGE_H
#define REFD_PURGE_H

struct app;
struct purge;

struct purge *purge_start(struct app *app);
void purge_stop(struct purge *p);

#endif
