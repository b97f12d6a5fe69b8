/*
 * test_query_resume.c - a query resumed from a cursor (the last packet a
 * page gave: its capture and record offset) continues exactly where the
 * page stopped: pages of any size, concatenated, are the whole answer,
 * across captures whose times overlap (merged by time) and ones that do
 * not, with and without a filter and a time window. An inclusive cursor
 * gives the packet at that record (one inside a record gives no packet
 * made of its bytes); a cursor into a capture the query does
 * not select is refused. Captures come from mkcap (MKCAP; skipped
 * without it).
 */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "import.h"
#include "query.h"
#include "ring.h"
#include "vault.h"

#define PACKETS 3000u
#define START 1700000000ll

struct fixture {
	char dir[64];
	struct vault *v;
	struct ring *ring;
};

struct pos {
	uint64_t capture, offset;
	int64_t ts;
};

struct list {
	struct query *q;
	struct pos *v;
	size_t n, cap;
};

static int rm_entry(const char *path, const struct stat *s, int flag, struct FTW *ftw)
{
	(void)s, (void)flag, (void)ftw;
	return remove(path);
}

static void import_one(struct fixture *f, unsigned seed, long long start, unsigned interval)
{
	struct errbuf eb = { { 0 } };
	char cmd[512], cap[128];
	snprintf(cap, sizeof(cap), "%s/in%u.pcap", f->dir, seed);
	snprintf(cmd, sizeof(cmd),
		 "%s --packets %u --hosts 12 --flows 50 --seed %u --start %lld --interval-us %u -o %s",
		 getenv("MKCAP"), PACKETS, seed, start, interval, cap);
	assert_int_equal(system(cmd), 0);
	struct import_source src = { .path = cap, .name = cap, .ring = f->ring };
	struct import_result res;
	struct import_info info;
	assert_int_equal(import_file(f->ring, &vault_sink_ops, f->v, &src, &res, &info, &eb), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct errbuf eb = { { 0 } };
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_query_resume.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if (!getenv("MKCAP") || ring_new(&f->ring, 16) < 0) {
		print_message("skipped: needs MKCAP and io_uring\n");
		exit(77);
	}
	assert_int_equal(vault_open_flags(&f->v, f->dir, VAULT_CREATE, &eb), 0);
	/* two captures at the same times (ties), one interleaved with them,
	 * and one alone an hour later */
	import_one(f, 1, START, 1000);
	import_one(f, 2, START, 1000);
	import_one(f, 3, START, 700);
	import_one(f, 4, START + 3600, 1000);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vault_close(f->v);
	ring_free(f->ring);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static int collect(void *opaque, const struct capfile_packet *pkt)
{
	struct list *l = opaque;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->n++] = (struct pos){ query_packet_capture(l->q), pkt->offset, pkt->ts_ns };
	return 0;
}

/* Appends what the query p gives to l; returns what query_run did. */
static int run(struct fixture *f, const struct query_params *p, struct list *l)
{
	struct errbuf eb = { { 0 } };
	int err = query_new(&l->q, f->v, p, &eb);
	if (!err)
		err = query_run(l->q, f->ring, collect, l, &eb);
	l->q = query_free(l->q);
	return err;
}

/* Pages of size page through the answer of p equal the answer in one run. */
static void check_pages(struct fixture *f, struct query_params p, uint64_t page)
{
	struct list whole = { 0 }, paged = { 0 };
	assert_int_equal(run(f, &p, &whole), 0);
	assert_true(whole.n > 0);
	p.limit = page;
	for (;;) {
		size_t before = paged.n;
		assert_int_equal(run(f, &p, &paged), 0);
		assert_true(paged.n - before <= page);
		if (paged.n - before < page)
			break;
		p.has_resume = p.resume_after = true;
		p.resume_capture = paged.v[paged.n - 1].capture;
		p.resume_offset = paged.v[paged.n - 1].offset;
	}
	assert_int_equal(paged.n, whole.n);
	for (size_t i = 0; i < whole.n; i++) {
		assert_int_equal(paged.v[i].capture, whole.v[i].capture);
		assert_int_equal(paged.v[i].offset, whole.v[i].offset);
	}
	free(whole.v);
	free(paged.v);
}

static void test_pages_everything(void **state)
{
	check_pages(*state, (struct query_params){ 0 }, 997);
}

static void test_pages_filtered(void **state)
{
	check_pages(*state, (struct query_params){ .filter = "tcp and host 10.0.0.3" }, 53);
	check_pages(*state, (struct query_params){ .filter = "udp" }, 400);
}

static void test_pages_window(void **state)
{
	struct query_params p = { .has_after = true, .after_ns = (START + 1) * 1000000000ll,
				  .has_before = true, .before_ns = (START + 3601) * 1000000000ll };
	check_pages(*state, p, 211);
}

/* The packet a cursor names, alone: what a detail view asks for. */
static void test_inclusive_cursor(void **state)
{
	struct fixture *f = *state;
	struct list whole = { 0 };
	assert_int_equal(run(f, &(struct query_params){ 0 }, &whole), 0);
	for (size_t i = 0; i < whole.n; i += whole.n / 7) {
		struct list one = { 0 };
		uint64_t id = whole.v[i].capture;
		struct query_params p = { .capture_ids = &id, .ncapture_ids = 1, .limit = 1,
					  .has_resume = true, .resume_capture = id,
					  .resume_offset = whole.v[i].offset };
		assert_int_equal(run(f, &p, &one), 0);
		assert_int_equal(one.n, 1);
		assert_int_equal(one.v[0].capture, id);
		assert_int_equal(one.v[0].offset, whole.v[i].offset);
		assert_int_equal(one.v[0].ts, whole.v[i].ts);
		/* a cursor inside a record: never a record made of its bytes */
		one.n = 0;
		p.resume_offset++;
		assert_int_equal(run(f, &p, &one), 0);
		assert_true(one.n == 0 || one.v[0].offset > p.resume_offset);
		free(one.v);
	}
	free(whole.v);
}

static void test_cursor_outside_selection(void **state)
{
	struct fixture *f = *state;
	struct list l = { 0 };
	uint64_t id = 1;
	struct query_params p = { .capture_ids = &id, .ncapture_ids = 1, .has_resume = true,
				  .resume_capture = 2, .resume_offset = 24 };
	assert_int_equal(run(f, &p, &l), -ENOENT);
	free(l.v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pages_everything),
		cmocka_unit_test(test_pages_filtered),
		cmocka_unit_test(test_pages_window),
		cmocka_unit_test(test_inclusive_cursor),
		cmocka_unit_test(test_cursor_outside_selection),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
