/*
 * audit_seal.h - the audit ledger v2's periodic jobs (job.c clients): the
 * sealer and the signed-head publisher.
 */
#ifndef REFD_AUDIT_SEAL_H
#define REFD_AUDIT_SEAL_H

struct app;
struct job;

/* Stop either with job_stop. */
struct job *audit_seal_start(struct app *app);
struct job *audit_head_start(struct app *app);

#endif
