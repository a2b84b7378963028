/*
 * clock.h - milliseconds to timeouts, and the monotonic clock.
 * What it owns and must never do: clock.c.
 */
#ifndef REFD_CLOCK_H
#define REFD_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

/* A libevent timeout of ms milliseconds (negative counts as 0). */
struct timeval clock_tv(long ms);
/* The monotonic clock, for durations and deadlines (never wall time). */
uint64_t clock_mono_ms(void);
uint64_t clock_mono_us(void);
uint64_t clock_mono_ns(void);

#endif
