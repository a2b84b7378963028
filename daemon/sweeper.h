/*
 * sweeper.h - the deadline sweeper: a periodic job on the daemon's loop.
 *
 * Owns: one timer and at most one sweep in flight. The state it acts on lives
 * in PostgreSQL (deadlines, escalations, offers), never in memory, so a
 * restart loses nothing and several daemons on one database act as one.
 * Must never: block the loop; run two sweeps at once in one process.
 */
#ifndef REFD_SWEEPER_H
#define REFD_SWEEPER_H

struct app;
struct sweeper;

struct sweeper *sweeper_start(struct app *app);
/* Make the next sweep happen now (e.g. after a deadline was created with a
 * due time earlier than the one the timer waits for). */
void sweeper_poke(struct sweeper *s);
void sweeper_stop(struct sweeper *s);

#endif
