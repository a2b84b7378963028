/*
 * sweeper.h - the deadline sweeper, a job.
 * What it owns and must never do: sweeper.c.
 */
#ifndef REFD_SWEEPER_H
#define REFD_SWEEPER_H

struct app;
struct job;

/* The deadline sweeper as a job (stop it with job_stop). */
struct job *sweeper_start(struct app *app);

#endif
