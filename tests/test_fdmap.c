/*
 * test_fdmap.c - common/fdmap.c: every byte of the range handed over in
 * order, a range past the end refused, and a file cut short during the
 * walk an error instead of SIGBUS, while a SIGBUS elsewhere still kills.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fdmap.h"

#define FILE_SIZE (2 * FDMAP_WINDOW + 12345)

struct gathered {
	uint8_t *buf;
	size_t len, calls;
	int fd;       /* truncate_fn: the file to cut */
	int stop_at;  /* stop_fn: the call that returns -ECANCELED */
};

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 2654435761u >> 13);
}

static int make_file(void)
{
	char path[] = "/tmp/test_fdmap.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	uint8_t *buf = malloc(FILE_SIZE);
	assert_non_null(buf);
	for (uint64_t i = 0; i < FILE_SIZE; i++)
		buf[i] = pattern(i);
	assert_int_equal(write(fd, buf, FILE_SIZE), FILE_SIZE);
	free(buf);
	return fd;
}

static int gather_fn(void *opaque, const uint8_t *data, size_t len)
{
	struct gathered *g = opaque;

	assert_true(len > 0 && len <= FDMAP_WINDOW);
	memcpy(g->buf + g->len, data, len);
	g->len += len;
	g->calls++;
	return 0;
}

static void check_range(int fd, uint64_t off, uint64_t len)
{
	struct gathered g = { .buf = malloc(len + 1) };

	assert_non_null(g.buf);
	assert_int_equal(fdmap_each(fd, off, len, gather_fn, &g), 0);
	assert_int_equal(g.len, len);
	for (uint64_t i = 0; i < len; i++)
		if (g.buf[i] != pattern(off + i))
			fail_msg("byte %llu of the range at %llu differs", (unsigned long long)i,
				 (unsigned long long)off);
	free(g.buf);
}

static void test_ranges(void **state)
{
	int fd = make_file();

	(void)state;
	check_range(fd, 0, FILE_SIZE);
	check_range(fd, 4097, FDMAP_WINDOW + 3); /* unaligned start, across windows */
	check_range(fd, FDMAP_WINDOW, FDMAP_WINDOW);
	check_range(fd, FILE_SIZE - 1, 1);
	check_range(fd, 17, 0);
	close(fd);
}

static void test_past_the_end(void **state)
{
	int fd = make_file();
	struct gathered g = { .buf = malloc(FILE_SIZE + 2) };

	(void)state;
	assert_int_equal(fdmap_each(fd, 0, FILE_SIZE + 1, gather_fn, &g), -EIO);
	assert_int_equal(fdmap_each(fd, FILE_SIZE, 1, gather_fn, &g), -EIO);
	assert_int_equal(fdmap_each(fd, UINT64_MAX, 2, gather_fn, &g), -EIO);
	assert_int_equal(g.calls, 0);
	free(g.buf);
	close(fd);
}

static int stop_fn(void *opaque, const uint8_t *data, size_t len)
{
	struct gathered *g = opaque;

	(void)data;
	(void)len;
	return ++g->calls == (size_t)g->stop_at ? -ECANCELED : 0;
}

static void test_fn_stops(void **state)
{
	int fd = make_file();
	struct gathered g = { .stop_at = 2 };

	(void)state;
	assert_int_equal(fdmap_each(fd, 0, FILE_SIZE, stop_fn, &g), -ECANCELED);
	assert_int_equal(g.calls, 2);
	close(fd);
}

/* Cuts the file at its first call, then reads the rest of its window. */
static int truncate_fn(void *opaque, const uint8_t *data, size_t len)
{
	struct gathered *g = opaque;
	volatile uint8_t sum = 0;

	g->calls++;
	assert_int_equal(ftruncate(g->fd, 0), 0);
	for (size_t i = 0; i < len; i += 4096)
		sum += data[i];
	return sum == 255 ? 1 : 2; /* not reached: the first page faults */
}

static void test_cut_short_meanwhile(void **state)
{
	(void)state;
	/* Twice: the first jump out must leave SIGBUS usable for the next. */
	for (int round = 0; round < 2; round++) {
		int fd = make_file();
		struct gathered g = { .fd = fd };
		assert_int_equal(fdmap_each(fd, 0, FILE_SIZE, truncate_fn, &g), -EIO);
		assert_int_equal(g.calls, 1);
		close(fd);
	}
	int fd = make_file();
	check_range(fd, 0, FILE_SIZE); /* and walks work again */
	close(fd);
}

/* In a thread that blocks every signal (as capvaultd's workers do), the
 * fault still comes back as -EIO, and the thread's mask is as it was. */
static void test_cut_short_with_signals_blocked(void **state)
{
	sigset_t all, old, now;
	int fd = make_file();
	struct gathered g = { .fd = fd };

	(void)state;
	sigfillset(&all);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &all, &old), 0);
	assert_int_equal(fdmap_each(fd, 0, FILE_SIZE, truncate_fn, &g), -EIO);
	assert_int_equal(pthread_sigmask(SIG_SETMASK, NULL, &now), 0);
	assert_true(sigismember(&now, SIGBUS));
	assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
	close(fd);
}

static void test_other_sigbus_still_kills(void **state)
{
	int fd = make_file();
	pid_t pid;
	int status = 0;

	(void)state;
	check_range(fd, 0, 10); /* the handler is in place */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		volatile uint8_t *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED || ftruncate(fd, 0) < 0)
			_exit(3);
		_exit(p[0] == 7 ? 4 : 5);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGBUS);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_past_the_end),
		cmocka_unit_test(test_fn_stops),
		cmocka_unit_test(test_cut_short_meanwhile),
		cmocka_unit_test(test_cut_short_with_signals_blocked),
		cmocka_unit_test(test_other_sigbus_still_kills),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
