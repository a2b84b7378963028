/*
 * outbox.h - the webhook sender's retry arithmetic; the job itself is
 * outbox_job (jobs.h). What it owns and must never do: outbox.c.
 */
#ifndef REFD_OUTBOX_H
#define REFD_OUTBOX_H

/* Delay in ms before retry after the n-th failed attempt (n >= 1):
 * min(base * 2^(n-1), max), scaled by jitter01 in [0,1) to +-20 %. */
long outbox_backoff_ms(int n, long base_ms, long max_ms, double jitter01);

#endif
