/*
 * test_session.c - viewer sessions last their time to live as elapsed
 * time, whatever the time of day does meanwhile: a session opened while
 * the clock read a year ahead does not outlive its ttl by that year once
 * the clock is set right, and a clock set forward logs nobody out.
 *
 * The time of day is stepped with libfaketime (FAKETIME_TIMESTAMP_FILE,
 * re-read at each call; CLOCK_MONOTONIC left real): the test runs itself
 * again with it preloaded, and skips (77) where it is not installed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "session.h"
#include "wallclock.h"

static const char *const faketime_libs[] = {
	"/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
	"/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
	"/usr/lib/faketime/libfaketime.so.1",
	"/usr/local/lib/faketime/libfaketime.so.1",
};
static char offset_file[64];

/* The time of day becomes the real one plus spec ("+365d", "+0"). */
static void set_offset(const char *spec)
{
	FILE *f = fopen(offset_file, "we");
	assert_non_null(f);
	assert_true(fprintf(f, "%s\n", spec) > 0);
	assert_int_equal(fclose(f), 0);
}

static void test_clock_set_back(void **state)
{
	(void)state;
	struct session_store *s = NULL;
	struct session ss;
	char id[SESSION_ID_LEN + 1];
	assert_int_equal(session_store_new(&s), 0);

	set_offset("+365d");
	uint64_t ahead = wall_s();
	assert_int_equal(session_open(s, "secret", 2, id, &ss), 0);
	set_offset("+0");
	if (ahead - wall_s() < 300 * 86400u) {
		session_store_free(s);
		skip(); /* libfaketime did not step the clock */
	}
	assert_int_equal(session_get(s, id, &ss), 0);
	assert_true(ss.expires_s <= wall_s() + 2);
	sleep(3);
	assert_int_equal(session_get(s, id, &ss), -ENOENT);

	/* set forward a day: an hour's session goes on */
	assert_int_equal(session_open(s, "secret", 3600, id, &ss), 0);
	set_offset("+1d");
	assert_int_equal(session_get(s, id, &ss), 0);
	assert_true(ss.expires_s > wall_s() + 3500 && ss.expires_s <= wall_s() + 3600);
	session_store_free(s);
}

/* Runs this program again with libfaketime preloaded; returns only when
 * that cannot be done. */
static void rerun_with_faketime(char **argv)
{
	const char *lib = NULL;
	for (size_t i = 0; i < sizeof(faketime_libs) / sizeof(faketime_libs[0]); i++)
		if (access(faketime_libs[i], R_OK) == 0)
			lib = faketime_libs[i];
	if (!lib)
		return;
	char preload[1024], asan[1024];
	const char *old = getenv("LD_PRELOAD"), *old_asan = getenv("ASAN_OPTIONS");
	snprintf(preload, sizeof(preload), "%s%s%s", lib, old ? ":" : "", old ? old : "");
	snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0", old_asan ? old_asan : "",
		 old_asan ? ":" : "");
	setenv("LD_PRELOAD", preload, 1);
	setenv("ASAN_OPTIONS", asan, 1);
	setenv("FAKETIME_TIMESTAMP_FILE", offset_file, 1);
	setenv("FAKETIME_NO_CACHE", "1", 1);
	setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
	execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
	(void)argc;
	const char *file = getenv("FAKETIME_TIMESTAMP_FILE");
	if (!file) {
		snprintf(offset_file, sizeof(offset_file), "/tmp/test_session.XXXXXX");
		int fd = mkstemp(offset_file);
		if (fd < 0)
			return 1;
		close(fd);
		set_offset("+0");
		rerun_with_faketime(argv);
		unlink(offset_file);
		printf("libfaketime not installed\n");
		return 77;
	}
	snprintf(offset_file, sizeof(offset_file), "%s", file);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clock_set_back),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(offset_file);
	return r;
}
