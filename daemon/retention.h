/*
 * retention.h - the retention job. What it owns and must never do:
 * retention.c.
 */
#ifndef REFD_RETENTION_H
#define REFD_RETENTION_H

struct app;
struct job;

struct job *retention_start(struct app *app);

#endif
