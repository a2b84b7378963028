/*
 * erasure.h - the data-key erasure job. What it owns and must never do:
 * erasure.c.
 */
#ifndef REFD_ERASURE_H
#define REFD_ERASURE_H

struct app;
struct job;

struct job *erasure_start(struct app *app);

#endif
