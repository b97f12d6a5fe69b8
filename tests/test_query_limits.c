/*
 * test_query_limits.c - a query stops when it is cancelled or when its
 * gone check says that nobody waits for the answer any more (the HTTP
 * client left), in count and in stream mode, and a filter over the size
 * bounds is refused before anything runs. Captures come from mkcap (MKCAP
 * in the environment; skipped without it).
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

#include "filter.h"
#include "import.h"
#include "query.h"
#include "ring.h"
#include "vault.h"

#define PACKETS 40000u

struct fixture {
	char dir[64];
	struct vault *v;
	struct ring *ring;
};

static int rm_entry(const char *path, const struct stat *s, int flag, struct FTW *ftw)
{
	(void)s, (void)flag, (void)ftw;
	return remove(path);
}

static void import_one(struct fixture *f, unsigned seed)
{
	struct errbuf eb = { { 0 } };
	char cmd[512], cap[128];
	snprintf(cap, sizeof(cap), "%s/in%u.pcap", f->dir, seed);
	snprintf(cmd, sizeof(cmd), "%s --packets %u --hosts 12 --flows 200 --seed %u -o %s",
		 getenv("MKCAP"), PACKETS, seed, cap);
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_query_limits.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if (!getenv("MKCAP") || ring_new(&f->ring, 16) < 0) {
		print_message("skipped: needs MKCAP and io_uring\n");
		exit(77);
	}
	assert_int_equal(vault_open_flags(&f->v, f->dir, VAULT_CREATE, &eb), 0);
	import_one(f, 1);
	import_one(f, 2);
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

/* Says "gone" from its after-th call on, and counts the calls. */
struct watcher {
	unsigned calls, after;
};

static bool gone_after(void *opaque)
{
	struct watcher *w = opaque;
	return ++w->calls >= w->after;
}

static int on_packet(void *opaque, const struct capfile_packet *pkt)
{
	(void)pkt;
	(*(uint64_t *)opaque)++;
	return 0;
}

static void test_runs_to_the_end_while_wanted(void **state)
{
	struct fixture *f = *state;
	struct query_params p = { .filter = "ip or ip6 or arp" };
	struct watcher w = { .after = UINT32_MAX };
	struct errbuf eb = { { 0 } };
	struct query *q = NULL;
	assert_int_equal(query_new(&q, f->v, &p, &eb), 0);
	query_set_gone_check(q, gone_after, &w);
	assert_int_equal(query_count(q, f->ring, &eb), 0);
	assert_int_equal(query_stats(q)->packets_candidate, 2 * PACKETS);
	assert_true(w.calls >= 2 * PACKETS / QUERY_POLL_PACKETS);
	query_free(q);
}

/* The client leaves in the middle of the first capture: the count stops
 * there, far from the end. */
static void test_count_stops_when_gone(void **state)
{
	struct fixture *f = *state;
	struct query_params p = { .filter = "ip or ip6 or arp" };
	struct watcher w = { .after = 3 };
	struct errbuf eb = { { 0 } };
	struct query *q = NULL;
	assert_int_equal(query_new(&q, f->v, &p, &eb), 0);
	query_set_gone_check(q, gone_after, &w);
	assert_int_equal(query_count(q, f->ring, &eb), -ECANCELED);
	assert_non_null(strstr(eb.msg, "cancelled"));
	assert_true(query_stats(q)->packets_candidate < PACKETS);
	assert_int_equal(w.calls, 3);
	query_free(q);
}

static void test_stream_stops_when_gone(void **state)
{
	struct fixture *f = *state;
	struct query_params p = { 0 };
	struct watcher w = { .after = 2 };
	struct errbuf eb = { { 0 } };
	struct query *q = NULL;
	uint64_t got = 0;
	assert_int_equal(query_new(&q, f->v, &p, &eb), 0);
	query_set_gone_check(q, gone_after, &w);
	assert_int_equal(query_run(q, f->ring, on_packet, &got, &eb), -ECANCELED);
	assert_true(got < PACKETS);
	query_free(q);
}

static void test_cancelled_before_run(void **state)
{
	struct fixture *f = *state;
	struct query_params p = { .filter = "tcp" };
	struct errbuf eb = { { 0 } };
	struct query *q = NULL;
	uint64_t got = 0;
	assert_int_equal(query_new(&q, f->v, &p, &eb), 0);
	query_cancel(q);
	assert_int_equal(query_run(q, f->ring, on_packet, &got, &eb), -ECANCELED);
	assert_int_equal(got, 0);
	query_free(q);
}

static void test_huge_filter_refused(void **state)
{
	struct fixture *f = *state;
	size_t cap = 700 * 32, len = 0;
	char *expr = malloc(cap);
	struct errbuf eb = { { 0 } };
	struct query *q = NULL;
	assert_non_null(expr);
	for (unsigned i = 0; i < 700; i++)
		len += (size_t)snprintf(expr + len, cap - len, "%shost 10.0.%u.%u", i ? " or " : "",
					i / 256, i % 256);
	struct query_params p = { .filter = expr };
	assert_int_equal(query_new(&q, f->v, &p, &eb), -E2BIG);
	assert_null(q);
	assert_non_null(strstr(eb.msg, "at most"));
	free(expr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_to_the_end_while_wanted),
		cmocka_unit_test(test_count_stops_when_gone),
		cmocka_unit_test(test_stream_stops_when_gone),
		cmocka_unit_test(test_cancelled_before_run),
		cmocka_unit_test(test_huge_filter_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
