/*
 * test_clock.c - common/monoclock.h and common/wallclock.h: timed waits
 * run on the monotonic clock, so setting the time of day neither cuts
 * nor stretches them; deadlines carry nanoseconds into seconds.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "monoclock.h"
#include "wallclock.h"

/* A wait on a mono_cond_init() variable lasts until its mono_deadline():
 * on a CLOCK_REALTIME one, that moment (seconds since boot) is decades
 * past, and the wait would end at once. */
static void test_cond_waits_on_monotonic_clock(void **state)
{
	(void)state;
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond;
	const uint64_t wait_ns = 100000000u;

	assert_int_equal(mono_cond_init(&cond), 0);
	pthread_mutex_lock(&lock);
	uint64_t start = mono_ns();
	struct timespec until = mono_deadline(wait_ns);
	int r;
	do
		r = pthread_cond_timedwait(&cond, &lock, &until);
	while (r == 0); /* a spurious wake-up */
	uint64_t waited = mono_ns() - start;
	pthread_mutex_unlock(&lock);
	pthread_cond_destroy(&cond);
	assert_int_equal(r, ETIMEDOUT);
	assert_true(waited >= wait_ns);
}

static void test_deadline_carries_nanoseconds(void **state)
{
	(void)state;
	for (uint64_t ns = 0; ns < 3000000000u; ns += 123456789u) {
		struct timespec before = mono_now(), d = mono_deadline(ns);
		assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000);
		uint64_t at = (uint64_t)d.tv_sec * 1000000000u + (uint64_t)d.tv_nsec;
		uint64_t from = (uint64_t)before.tv_sec * 1000000000u + (uint64_t)before.tv_nsec;
		assert_true(at >= from + ns);
	}
}

/* The time of day, in both units, agrees with time(). */
static void test_wall_clock_is_time_of_day(void **state)
{
	(void)state;
	uint64_t t0 = (uint64_t)time(NULL);
	uint64_t s = wall_s(), ns = wall_ns();
	uint64_t t1 = (uint64_t)time(NULL);
	assert_true(s >= t0 && s <= t1);
	assert_true(ns / 1000000000u >= t0 && ns / 1000000000u <= t1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cond_waits_on_monotonic_clock),
		cmocka_unit_test(test_deadline_carries_nanoseconds),
		cmocka_unit_test(test_wall_clock_is_time_of_day),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
