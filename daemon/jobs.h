/*
 * jobs.h - the daemon's periodic jobs, each one struct job_def (job.h)
 * defined by its client file, which says what it owns and must never do.
 * main.c starts them with job_launch() in its table's order.
 */
#ifndef REFD_JOBS_H
#define REFD_JOBS_H

#include "job.h"

extern const struct job_def sweeper_job;   /* sweeper.c: deadlines */
extern const struct job_def outbox_job;    /* outbox.c: webhooks */
extern const struct job_def purge_job;     /* purge.c: old idempotency keys */
extern const struct job_def retention_job; /* retention.c: closed referrals */
extern const struct job_def erasure_job;   /* erasure.c: forgotten data keys */
extern const struct job_def seal_job;      /* audit_seal.c: the audit sealer */
extern const struct job_def head_job;      /* audit_seal.c: signed audit heads */
extern const struct job_def rematch_job;   /* followup.c: re-matching */
extern const struct job_def steps_job;     /* followup.c: reminders, level 2 */

#endif
