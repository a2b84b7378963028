/*
 * outbox.h - the webhook sender, a job.
 * What it owns and must never do: outbox.c.
 */
#ifndef REFD_OUTBOX_H
#define REFD_OUTBOX_H

struct app;
struct job;

/* The webhook sender as a job (stop it with job_stop). NULL on failure
 * (the reason is logged: e.g. the CA file cannot be read). */
struct job *outbox_start(struct app *app);

/* Delay in ms before retry after the n-th failed attempt (n >= 1):
 * min(base * 2^(n-1), max), scaled by jitter01 in [0,1) to +-20 %. */
long outbox_backoff_ms(int n, long base_ms, long max_ms, double jitter01);

#endif
