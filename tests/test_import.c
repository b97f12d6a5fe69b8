/*
 * test_import.c - the import pass (ring reads -> decomp -> sink + reader)
 * against an in-memory sink: every byte reaches the sink in order, every
 * packet is reported, a malformed file aborts the job with the path and
 * offset in the message, a truncated one commits with the truncation.
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

static void run_import(const char *path, struct mem_sink *s, int *err, struct errbuf *eb)
{
	struct ring *ring = NULL;
	assert_int_equal(ring_new(&ring, 8), 0);
	struct import_source src = { .path = path, .name = "x", .ring = ring };
	struct import_result res;
	struct import_info info;
	*err = import_file(ring, &mem_ops, s, &src, &res, &info, eb);
	ring_free(ring);
}

static void test_large_file_all_bytes_in_order(void **state)
{
	(void)state;
	struct cwbuf b;
	struct mem_sink s = { 0 };
	struct errbuf eb = { { 0 } };
	int err;
	/* ~5 MiB: several ring chunks in flight */
	const char *path = write_capture(5000, 0, &b);
	run_import(path, &s, &err, &eb);
	assert_int_equal(err, 0);
	assert_int_equal(s.packets, 5000);
	assert_int_equal(s.len, b.len);
	assert_memory_equal(s.data, b.data, b.len);
	assert_int_equal(s.committed, 1);
	assert_int_equal(s.aborted, 0);
	assert_false(s.truncated);
	unlink(path);
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

static void test_corrupt_aborts_with_path_and_offset(void **state)
{
	(void)state;
	struct cwbuf b;
	struct mem_sink s = { 0 };
	struct errbuf eb = { { 0 } };
	int err;
	char *path = write_capture(3, 0, &b);
	int fd = open(path, O_WRONLY);
	assert_int_equal(pwrite(fd, "<htm", 4, 0), 4);
	close(fd);
	run_import(path, &s, &err, &eb);
	assert_int_equal(err, -EINVAL);
	assert_int_equal(s.aborted, 1);
	assert_int_equal(s.committed, 0);
	assert_non_null(strstr(eb.msg, path));
	assert_non_null(strstr(eb.msg, "offset 0: not a pcap or pcapng file"));
	unlink(path);
	cwbuf_release(&b);
	free(s.data);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
