/*
 * monoclock.h - CLOCK_MONOTONIC in the units its users keep: timeouts,
 * deadlines, latencies and rates. It never jumps with the time of day, so
 * a difference of two readings is a true elapsed time.
 */
#ifndef CAPVAULT_MONOCLOCK_H
#define CAPVAULT_MONOCLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Now, as clock_gettime(CLOCK_MONOTONIC) gives it (it cannot fail). */
static inline struct timespec mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

/* Now in nanoseconds (from an arbitrary start, e.g. boot). */
static inline uint64_t mono_ns(void)
{
	struct timespec ts = mono_now();
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Now in whole microseconds (sd_notify's MONOTONIC_USEC). */
static inline uint64_t mono_us(void)
{
	return mono_ns() / 1000u;
}

/* Now in whole milliseconds, rounded down. */
static inline uint64_t mono_ms(void)
{
	return mono_ns() / 1000000u;
}

/* Now in milliseconds with their fraction. */
static inline double mono_ms_f(void)
{
	struct timespec ts = mono_now();
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Now in seconds with their fraction. */
static inline double mono_s(void)
{
	struct timespec ts = mono_now();
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The moment ns nanoseconds from now, for pthread_cond_timedwait on a
 * condition variable whose clock is CLOCK_MONOTONIC. */
static inline struct timespec mono_deadline(uint64_t ns)
{
	struct timespec ts = mono_now();
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec += (long)(ns % 1000000000u);
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/* A condition variable whose timed waits take mono_deadline() moments,
 * so that setting the time of day neither stretches nor cuts them. */
static inline int mono_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int err = pthread_condattr_init(&attr);
	if (err)
		return -err;
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	err = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return -err;
}

#endif
