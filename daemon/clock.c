/*
 * clock.c - the one conversion from milliseconds to a libevent timeout, and
 * the monotonic clock every duration and deadline in the daemon is read from.
 *
 * Owns: nothing but arithmetic.
 * Must never: read the wall clock (durations would jump with NTP).
 */
#include <time.h>

#include "clock.h"

struct timeval clock_tv(long ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

uint64_t clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t clock_mono_us(void)
{
	return clock_mono_ns() / 1000u;
}

uint64_t clock_mono_ms(void)
{
	return clock_mono_ns() / 1000000u;
}
