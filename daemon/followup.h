/*
 * followup.h - the follow-up jobs (clients of job.c): re-matching of
 * unassigned assignments, and deadline reminders with level-2 escalation.
 */
#ifndef REFD_FOLLOWUP_H
#define REFD_FOLLOWUP_H

struct app;
struct job;

struct job *rematch_start(struct app *app);
struct job *steps_start(struct app *app);

#endif
