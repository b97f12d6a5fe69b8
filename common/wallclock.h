/*
 * wallclock.h - the time of day (CLOCK_REALTIME), for what is recorded or
 * shown as a date: import times, failures, tokens, "now" in a query. It
 * jumps when the clock is set, so it never measures an elapsed time or
 * times a wait: monoclock.h does.
 */
#ifndef CAPVAULT_WALLCLOCK_H
#define CAPVAULT_WALLCLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds since the Unix epoch. */
static inline uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whole seconds since the Unix epoch. */
static inline uint64_t wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec;
}

#endif
