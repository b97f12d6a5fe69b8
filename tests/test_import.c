/*
 * test_import.c - the import pass (ring reads -> decomp -> sink + reader)
 * against an in-memory sink: every byte reaches the sink in order, every
 * packet is reported, a malformed file aborts the job with the path and
 * offset in the message, a truncated one commits with the truncation.
 * A sink with data_wait (one that stores on another thread) gets each
 * buffer unchanged until its data_wait, gets small pieces gathered into
 * whole MiB, and a data_wait error fails the import with the sink's
 * message.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "capwriter.h"
#include "import.h"

struct mem_sink {
	uint8_t *data;
	size_t len;
	const void *pending; /* async sink: handed to data, not yet waited for */
	size_t pending_len;
	uint8_t *pending_copy; /* what pending held when data got it */
	unsigned waits;
	unsigned fail_wait; /* nonzero: that data_wait call fails with -ENOSPC */
	uint64_t packets, contexts;
	int begun, committed, aborted;
	bool truncated;
};

static int sink_begin(void *sink, const struct import_source *src, void **job, struct errbuf *eb)
{
	(void)src;
	(void)eb;
	struct mem_sink *s = sink;
	s->begun++;
	*job = s;
	return 0;
}

static int sink_data(void *job, const void *buf, size_t len, struct errbuf *eb)
{
	(void)eb;
	struct mem_sink *s = job;
	s->data = realloc(s->data, s->len + len);
	memcpy(s->data + s->len, buf, len);
	s->len += len;
	return 0;
}

static int sink_context(void *job, uint64_t offset, const void *blob, size_t len)
{
	(void)offset;
	(void)blob;
	(void)len;
	((struct mem_sink *)job)->contexts++;
	return 0;
}

static int sink_packet(void *job, const struct capfile_packet *pkt)
{
	(void)pkt;
	((struct mem_sink *)job)->packets++;
	return 0;
}

static int sink_commit(void *job, const struct import_info *info, struct import_result *res,
		       struct errbuf *eb)
{
	(void)eb;
	struct mem_sink *s = job;
	s->committed++;
	s->truncated = info->truncation != NULL;
	res->capture_id = 7;
	return 0;
}

static void sink_abort(void *job)
{
	((struct mem_sink *)job)->aborted++;
}

static const struct import_sink_ops mem_ops = {
	.begin = sink_begin, .data = sink_data, .context = sink_context,
	.packet = sink_packet, .commit = sink_commit, .abort = sink_abort,
};

/* As if another thread stored buf: kept by pointer until data_wait. */
static int async_data(void *job, const void *buf, size_t len, struct errbuf *eb)
{
	(void)eb;
	struct mem_sink *s = job;
	assert_null(s->pending); /* one buffer in flight at a time */
	s->pending = buf;
	s->pending_len = len;
	s->pending_copy = malloc(len);
	memcpy(s->pending_copy, buf, len);
	return 0;
}

static int async_data_wait(void *job, struct errbuf *eb)
{
	struct mem_sink *s = job;
	assert_non_null(s->pending);
	/* The pass has not reused the buffer before waiting for us. */
	assert_memory_equal(s->pending, s->pending_copy, s->pending_len);
	int err = sink_data(job, s->pending, s->pending_len, eb);
	free(s->pending_copy);
	s->pending = s->pending_copy = NULL;
	if (++s->waits == s->fail_wait)
		return errbuf_set(eb, -ENOSPC, "cannot write tmp/obj: disk full");
	return err;
}

static int async_commit(void *job, const struct import_info *info, struct import_result *res,
			struct errbuf *eb)
{
	assert_null(((struct mem_sink *)job)->pending);
	return sink_commit(job, info, res, eb);
}

static void async_abort(void *job)
{
	assert_null(((struct mem_sink *)job)->pending);
	sink_abort(job);
}

static const struct import_sink_ops async_ops = {
	.begin = sink_begin, .data = async_data, .data_wait = async_data_wait,
	.context = sink_context, .packet = sink_packet, .commit = async_commit,
	.abort = async_abort,
};

/* Writes a pcap of n packets of 1000 bytes to a temp file; returns its path. */
static char *write_capture(unsigned n, size_t cut, struct cwbuf *b)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/capvault-import-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	cwbuf_init_mem(b);
	cw_pcap_header(b, false, false, 65535, 1);
	for (unsigned i = 0; i < n; i++)
		cw_pcap_record(b, false, 1000 + i, i, NULL, 1000, 1000);
	if (cut)
		cw_truncate(b, b->len - cut);
	assert_int_equal(write(fd, b->data, b->len), (ssize_t)b->len);
	close(fd);
	return path;
}

static void run_import_with(const struct import_sink_ops *ops, const char *path,
			    struct mem_sink *s, int *err, struct errbuf *eb)
{
	struct ring *ring = NULL;
	assert_int_equal(ring_new(&ring, 8), 0);
	struct import_source src = { .path = path, .name = "x", .ring = ring };
	struct import_result res;
	struct import_info info;
	*err = import_file(ring, ops, s, &src, &res, &info, eb);
	ring_free(ring);
}

static void run_import(const char *path, struct mem_sink *s, int *err, struct errbuf *eb)
{
	run_import_with(&mem_ops, path, s, err, eb);
}

/* ~5 MiB: several ring chunks in flight. */
static void check_large_file(const struct import_sink_ops *ops, struct mem_sink *s)
{
	struct cwbuf b;
	struct errbuf eb = { { 0 } };
	int err;
	const char *path = write_capture(5000, 0, &b);
	run_import_with(ops, path, s, &err, &eb);
	assert_int_equal(err, 0);
	assert_int_equal(s->packets, 5000);
	assert_int_equal(s->len, b.len);
	assert_memory_equal(s->data, b.data, b.len);
	assert_int_equal(s->committed, 1);
	assert_int_equal(s->aborted, 0);
	assert_false(s->truncated);
	unlink(path);
	cwbuf_release(&b);
	free(s->data);
}

static void test_large_file_all_bytes_in_order(void **state)
{
	(void)state;
	struct mem_sink s = { 0 };
	check_large_file(&mem_ops, &s);
}

static void test_async_sink_all_bytes_in_order(void **state)
{
	(void)state;
	struct mem_sink s = { 0 };
	check_large_file(&async_ops, &s);
	assert_true(s.waits > 1); /* several chunks, each waited for */
}

/* Pieces of 10,000 bytes (as an upload arrives) reach an async sink
 * gathered into whole MiB after the first, and still all of them, in
 * order. */
static void test_async_sink_small_pieces_gathered(void **state)
{
	(void)state;
	struct cwbuf b;
	struct errbuf eb = { { 0 } };
	struct mem_sink s = { 0 };
	struct import_pass *pass = NULL;
	struct import_source src = { .name = "x" };
	struct import_result res;
	const char *path = write_capture(5000, 0, &b);
	unlink(path);
	assert_int_equal(import_pass_new(&pass, &async_ops, &s, &src, &eb), 0);
	for (size_t off = 0; off < b.len; off += 10000) {
		size_t n = b.len - off < 10000 ? b.len - off : 10000;
		assert_int_equal(import_pass_feed(pass, b.data + off, n, &eb), 0);
	}
	assert_int_equal(import_pass_finish(pass, &res, NULL, &eb), 0);
	import_pass_free(pass);
	assert_int_equal(s.packets, 5000);
	assert_int_equal(s.len, b.len);
	assert_memory_equal(s.data, b.data, b.len);
	/* The first piece alone (a body that is no capture fails on it). */
	assert_int_equal(s.waits, 1 + (b.len - 10000 + (1u << 20) - 1) / (1u << 20));
	assert_int_equal(s.committed, 1);
	cwbuf_release(&b);
	free(s.data);
}

static void test_truncated_commits_with_truncation(void **state)
{
	(void)state;
	struct cwbuf b;
	struct mem_sink s = { 0 };
	struct errbuf eb = { { 0 } };
	int err;
	const char *path = write_capture(10, 100, &b);
	run_import(path, &s, &err, &eb);
	assert_int_equal(err, 0);
	assert_int_equal(s.packets, 9);
	assert_true(s.truncated);
	assert_int_equal(s.committed, 1);
	unlink(path);
	cwbuf_release(&b);
	free(s.data);
}

static void check_corrupt(const struct import_sink_ops *ops, struct mem_sink *s)
{
	struct cwbuf b;
	struct errbuf eb = { { 0 } };
	int err;
	char *path = write_capture(3, 0, &b);
	int fd = open(path, O_WRONLY);
	assert_int_equal(pwrite(fd, "<htm", 4, 0), 4);
	close(fd);
	run_import_with(ops, path, s, &err, &eb);
	assert_int_equal(err, -EINVAL);
	assert_int_equal(s->aborted, 1);
	assert_int_equal(s->committed, 0);
	assert_non_null(strstr(eb.msg, path));
	assert_non_null(strstr(eb.msg, "offset 0: not a pcap or pcapng file"));
	unlink(path);
	cwbuf_release(&b);
	free(s->data);
}

static void test_corrupt_aborts_with_path_and_offset(void **state)
{
	(void)state;
	struct mem_sink s = { 0 };
	check_corrupt(&mem_ops, &s);
}

/* A parse error still wins over a sink that stored the bytes fine. */
static void test_async_sink_corrupt(void **state)
{
	(void)state;
	struct mem_sink s = { 0 };
	check_corrupt(&async_ops, &s);
	assert_int_equal(s.waits, 1);
}

static void test_missing_file(void **state)
{
	(void)state;
	struct mem_sink s = { 0 };
	struct errbuf eb = { { 0 } };
	int err;
	run_import("/nonexistent/capture.pcap", &s, &err, &eb);
	assert_int_equal(err, -ENOENT);
	assert_int_equal(s.begun, 0);
	assert_non_null(strstr(eb.msg, "/nonexistent/capture.pcap"));
}

/* The sink's error (a write on its thread failing) fails the import with
 * its message, and the job is aborted. */
static void test_async_sink_error_aborts(void **state)
{
	(void)state;
	struct cwbuf b;
	struct mem_sink s = { .fail_wait = 3 };
	struct errbuf eb = { { 0 } };
	int err;
	const char *path = write_capture(5000, 0, &b);
	run_import_with(&async_ops, path, &s, &err, &eb);
	assert_int_equal(err, -ENOSPC);
	assert_int_equal(s.waits, 3);
	assert_int_equal(s.aborted, 1);
	assert_int_equal(s.committed, 0);
	assert_non_null(strstr(eb.msg, path));
	assert_non_null(strstr(eb.msg, "cannot write tmp/obj: disk full"));
	unlink(path);
	cwbuf_release(&b);
	free(s.data);
}

/* A pipe is read at its current position, one read at a time. */
static void test_pipe(void **state)
{
	(void)state;
	struct cwbuf b;
	struct mem_sink s = { 0 };
	struct errbuf eb = { { 0 } };
	const char *path = write_capture(300, 0, &b);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		for (size_t off = 0; off < b.len; off += 4000) {
			size_t n = b.len - off < 4000 ? b.len - off : 4000;
			if (write(fds[1], b.data + off, n) != (ssize_t)n)
				_exit(1);
		}
		_exit(0);
	}
	close(fds[1]);
	struct ring *ring = NULL;
	assert_int_equal(ring_new(&ring, 8), 0);
	struct import_source src = { .name = "stdin", .ring = ring };
	struct import_result res;
	int err = import_fd(ring, &mem_ops, &s, fds[0], &src, &res, NULL, &eb);
	ring_free(ring);
	close(fds[0]);
	assert_int_equal(err, 0);
	assert_int_equal(s.packets, 300);
	assert_memory_equal(s.data, b.data, b.len);
	unlink(path);
	cwbuf_release(&b);
	free(s.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_large_file_all_bytes_in_order),
		cmocka_unit_test(test_truncated_commits_with_truncation),
		cmocka_unit_test(test_corrupt_aborts_with_path_and_offset),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_pipe),
		cmocka_unit_test(test_async_sink_all_bytes_in_order),
		cmocka_unit_test(test_async_sink_small_pieces_gathered),
		cmocka_unit_test(test_async_sink_error_aborts),
		cmocka_unit_test(test_async_sink_corrupt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
