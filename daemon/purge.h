/*
 * purge.h - the retention purge, a job.
 * What it owns and must never do: purge.c.
 */
#ifndef REFD_PURGE_H
#define REFD_PURGE_H

struct app;
struct job;

/* The retention purge as a job (stop it with job_stop). */
struct job *purge_start(struct app *app);

#endif
