/*
 * test_sandbox.c - the decoder's child process (api/sandbox.h), with
 * small system programs standing in for tshark: input in, output out
 * (more than a pipe holds, both ways), every outcome (exit status,
 * signal, timeout, oversize) reported and the child gone, warm spares
 * reused, and the confinement seen from inside: no fork, no inherited
 * file descriptors or environment, no core dumps, no file writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox.h"

static struct sandbox *make(const char *path, uint32_t timeout_ms, uint64_t max_output)
{
	struct sandbox_cfg cfg = { .path = path, .timeout_ms = timeout_ms, .memory = 1ull << 30,
				   .max_output = max_output, .cpu_s = 10, .max_running = 4 };
	struct sandbox *sb = NULL;
	struct errbuf eb = { { 0 } };
	assert_int_equal(sandbox_new(&sb, &cfg, &eb), 0);
	return sb;
}

/* Runs path args on input; returns the result (caller clears). */
static struct sandbox_result run(const char *path, const char *const *args, const void *in,
				 size_t len, uint32_t timeout_ms, uint64_t max_output)
{
	struct sandbox *sb = make(path, timeout_ms, max_output);
	struct sandbox_result res;
	struct errbuf eb = { { 0 } };
	assert_int_equal(sandbox_run(sb, args, false, in, len, &res, &eb), 0);
	sandbox_free(sb);
	return res;
}

static void test_input_to_output(void **state)
{
	(void)state;
	size_t len = 4u << 20; /* far more than a pipe holds, both ways */
	char *in = malloc(len);
	assert_non_null(in);
	for (size_t i = 0; i < len; i++)
		in[i] = (char)('a' + i % 26);
	struct sandbox_result res = run("/bin/cat", (const char *[]){ NULL }, in, len, 10000,
					 8u << 20);
	assert_int_equal(res.outcome, SANDBOX_OK);
	assert_int_equal(res.outlen, len);
	assert_memory_equal(res.out, in, len);
	sandbox_result_clear(&res);
	free(in);
}

static void test_exit_status_and_stderr(void **state)
{
	(void)state;
	struct sandbox_result res =
		run("/bin/sh", (const char *[]){ "-c", "echo oops >&2; exit 3", NULL }, NULL, 0,
		    10000, 1024);
	assert_int_equal(res.outcome, SANDBOX_EXIT);
	assert_int_equal(res.status, 3);
	assert_non_null(strstr(res.err, "oops"));
	sandbox_result_clear(&res);
}

static void test_timeout_kills(void **state)
{
	(void)state;
	struct sandbox_result res =
		run("/bin/sleep", (const char *[]){ "30", NULL }, NULL, 0, 300, 1024);
	assert_int_equal(res.outcome, SANDBOX_TIMEOUT);
	assert_true(res.elapsed_ms < 10000);
	sandbox_result_clear(&res);
}

static void test_oversize_kills(void **state)
{
	(void)state;
	struct sandbox_result res = run("/usr/bin/yes", (const char *[]){ NULL }, NULL, 0, 10000,
					65536);
	assert_int_equal(res.outcome, SANDBOX_OVERSIZE);
	assert_int_equal(res.outlen, 65536);
	sandbox_result_clear(&res);
}

static void test_crash_is_a_signal(void **state)
{
	(void)state;
	if (access("/usr/bin/python3", X_OK) != 0)
		skip();
	struct sandbox_result res =
		run("/usr/bin/python3", (const char *[]){ "-c", "import ctypes; ctypes.string_at(0)", NULL },
		    NULL, 0, 10000, 1024);
	assert_int_equal(res.outcome, SANDBOX_SIGNAL);
	assert_int_equal(res.status, SIGSEGV);
	sandbox_result_clear(&res);
}

static void test_no_fork_no_signals(void **state)
{
	(void)state;
	struct sandbox_result res =
		run("/bin/sh", (const char *[]){ "-c", "/bin/true; exit 7", NULL }, NULL, 0, 10000,
		    1024);
	assert_int_equal(res.outcome, SANDBOX_EXIT);
	assert_int_not_equal(res.status, 7); /* the shell gives up at the fork */
	assert_non_null(strstr(res.err, "fork"));
	sandbox_result_clear(&res);
	res = run("/bin/sh", (const char *[]){ "-c", "kill -9 1 && exit 0; exit 7", NULL }, NULL, 0,
		  10000, 1024);
	assert_int_equal(res.outcome, SANDBOX_EXIT);
	assert_int_equal(res.status, 7);
	assert_non_null(strstr(res.err, "kill"));
	sandbox_result_clear(&res);
}

static void test_environment_and_fds(void **state)
{
	(void)state;
	setenv("SANDBOX_TEST_SECRET", "leaked", 1);
	int leak = open("/dev/null", O_RDONLY); /* not close-on-exec */
	assert_true(leak >= 0);
	struct sandbox_result res = run("/usr/bin/env", (const char *[]){ NULL }, NULL, 0, 10000,
					4096);
	assert_int_equal(res.outcome, SANDBOX_OK);
	assert_null(strstr(res.out, "SANDBOX_TEST_SECRET"));
	assert_non_null(strstr(res.out, "HOME=/tmp/capvault-decoder."));
	sandbox_result_clear(&res);
	res = run("/bin/ls", (const char *[]){ "/proc/self/fd", NULL }, NULL, 0, 10000, 4096);
	assert_int_equal(res.outcome, SANDBOX_OK);
	assert_string_equal(res.out, "0\n1\n2\n3\n"); /* 3: ls's own */
	sandbox_result_clear(&res);
	close(leak);
}

static void test_limits(void **state)
{
	(void)state;
	struct sandbox_result res = run("/bin/cat", (const char *[]){ "/proc/self/limits", NULL },
					NULL, 0, 10000, 65536);
	assert_int_equal(res.outcome, SANDBOX_OK);
	assert_non_null(strstr(res.out, "Max core file size        0                    0"));
	assert_non_null(strstr(res.out, "Max file size             0                    0"));
	assert_non_null(strstr(res.out, "Max open files            256                  256"));
	sandbox_result_clear(&res);
}

static void test_warm_spare(void **state)
{
	(void)state;
	struct sandbox *sb = make("/bin/cat", 10000, 1024);
	struct sandbox_result res;
	struct errbuf eb = { { 0 } };
	const char *const args[] = { NULL };
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sandbox_run(sb, args, true, "abc", 3, &res, &eb), 0);
		assert_int_equal(res.outcome, SANDBOX_OK);
		assert_string_equal(res.out, "abc");
		assert_int_equal(res.warm, i > 0);
		sandbox_result_clear(&res);
	}
	sandbox_free(sb);
}

static void test_missing_program(void **state)
{
	(void)state;
	struct sandbox_cfg cfg = { .path = "/nonexistent/tshark", .timeout_ms = 1000,
				   .memory = 1ull << 30, .max_output = 1024, .cpu_s = 1,
				   .max_running = 1 };
	struct sandbox *sb = NULL;
	struct errbuf eb = { { 0 } };
	assert_int_equal(sandbox_new(&sb, &cfg, &eb), -ENOENT);
	assert_non_null(strstr(eb.msg, "/nonexistent/tshark"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_input_to_output),
		cmocka_unit_test(test_exit_status_and_stderr),
		cmocka_unit_test(test_timeout_kills),
		cmocka_unit_test(test_oversize_kills),
		cmocka_unit_test(test_crash_is_a_signal),
		cmocka_unit_test(test_no_fork_no_signals),
		cmocka_unit_test(test_environment_and_fds),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_warm_spare),
		cmocka_unit_test(test_missing_program),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
