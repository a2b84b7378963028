/*
 * followup.h - the follow-up jobs: re-matching of unassigned assignments,
 * deadline reminders and level-2 escalation (periodic, on the loop).
 */
#ifndef REFD_FOLLOWUP_H
#define REFD_FOLLOWUP_H

struct app;
struct followup;

struct followup *followup_start(struct app *app);
/* Stops both jobs; each frees itself once its statement in flight returns. */
void followup_stop(struct followup *f);

#endif
