/*
 * test_filter.c - the libpcap wrapper: errors carry libpcap's text, matches
 * and non-matches per link type, the per-link-type cache of filter_set,
 * byte-swapped DLT_NULL headers, and link type names; the size bound on
 * expressions, and compiles that do not wait for each other.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "filter.h"

static const uint8_t ip4_udp[] = {
	0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
	0x30, 0x39, 0, 53, 0, 8, 0, 0,
};

static size_t frame(uint32_t lt, uint8_t *b, int swapped)
{
	size_t h = 0;

	memset(b, 0, 64);
	switch (lt) {
	case 1:
		b[12] = 0x08;
		h = 14;
		break;
	case 113:
		b[14] = 0x08;
		h = 16;
		break;
	case 276:
		b[0] = 0x08;
		h = 20;
		break;
	case 0: {
		uint32_t af = swapped ? __builtin_bswap32(2u) : 2u;
		memcpy(b, &af, 4);
		h = 4;
		break;
	}
	case 108:
		b[3] = 2;
		h = 4;
		break;
	default:
		break;
	}
	memcpy(b + h, ip4_udp, sizeof(ip4_udp));
	return h + sizeof(ip4_udp);
}

static void test_bad_expression(void **state)
{
	struct filter *f = NULL;
	struct errbuf eb = { .msg = "" };

	(void)state;
	assert_int_equal(filter_new(&f, "host and and", 1, 0, &eb), -EINVAL);
	assert_null(f);
	assert_non_null(strstr(eb.msg, "syntax error"));
	assert_int_equal(filter_new(&f, "port 99999", 1, 0, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "port"));
}

static void test_match_per_link_type(void **state)
{
	static const uint32_t lts[] = { 1, 113, 276, 0, 108, 101, 12, 228 };
	uint8_t b[64];

	(void)state;
	for (size_t i = 0; i < sizeof(lts) / sizeof(*lts); i++) {
		struct filter *yes, *no;
		size_t n = frame(lts[i], b, 0);

		assert_int_equal(filter_new(&yes, "udp port 53 and host 10.0.0.2", lts[i], 0, NULL), 0);
		assert_int_equal(filter_new(&no, "tcp or host 10.9.9.9", lts[i], 0, NULL), 0);
		assert_true(filter_match(yes, (uint32_t)n, (uint32_t)n, b));
		assert_false(filter_match(no, (uint32_t)n, (uint32_t)n, b));
		/* a program reading past caplen rejects, like tcpdump */
		assert_false(filter_match(yes, (uint32_t)n - 7, (uint32_t)n, b));
		filter_free(yes);
		filter_free(no);
	}
}

static void test_null_swapped(void **state)
{
	struct filter *f;
	uint8_t b[64];
	size_t n = frame(0, b, 1);

	(void)state;
	assert_int_equal(filter_new(&f, "ip and udp", 0, 0, NULL), 0);
	assert_true(filter_match(f, (uint32_t)n, (uint32_t)n, b));
	filter_free(f);
}

static void test_set_cache(void **state)
{
	struct filter_set *fs;
	const struct filter *f1, *f2;
	struct errbuf eb = { .msg = "" };
	uint8_t b[64];
	size_t n = frame(1, b, 0);

	(void)state;
	assert_int_equal(filter_set_new(&fs, "vlan and udp", 0), 0);
	assert_string_equal(filter_set_expr(fs), "vlan and udp");
	assert_int_equal(filter_set_get(fs, 1, &f1, &eb), 0);
	assert_int_equal(filter_set_get(fs, 1, &f2, &eb), 0);
	assert_ptr_equal(f1, f2);
	assert_int_equal(filter_set_match(fs, 1, (uint32_t)n, (uint32_t)n, b, &eb), 0);
	/* vlan makes no sense on raw IP: libpcap says so, every time */
	assert_int_equal(filter_set_match(fs, 101, 28, 28, ip4_udp, &eb), -EINVAL);
	assert_true(eb.msg[0] != '\0');
	eb.msg[0] = '\0';
	assert_int_equal(filter_set_get(fs, 101, &f1, &eb), -EINVAL);
	assert_true(eb.msg[0] != '\0');
	filter_set_free(fs);
	assert_null(filter_set_free(NULL));
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(filter_linktype_name(1), "EN10MB");
	assert_string_equal(filter_linktype_name(101), "RAW");
	assert_non_null(filter_linktype_description(276));
	assert_null(filter_linktype_name(65000));
}

/* "PRIM1 or PRIM2 or ..." with n primitives made from fmt and the index. */
static char *or_chain(const char *fmt, int n)
{
	size_t cap = (size_t)n * 64 + 1, len = 0;
	char *s = malloc(cap);

	assert_non_null(s);
	s[0] = '\0';
	for (int i = 0; i < n; i++) {
		len += (size_t)snprintf(s + len, cap - len, "%s", i ? " or " : "");
		len += (size_t)snprintf(s + len, cap - len, fmt, i + 1, i + 2);
	}
	return s;
}

/* The 700-term filter of the report compiled for 25 s: refused at once. */
static void test_size_limits(void **state)
{
	struct filter *f = NULL;
	struct errbuf eb = { .msg = "" };
	char *big = or_chain("ip[%d] = %d", 700);
	char *most = or_chain("port %d", FILTER_MAX_TERMS);
	char *over = or_chain("port %d", FILTER_MAX_TERMS + 1);
	char *longest = calloc(1, FILTER_MAX_BYTES + 2);

	(void)state;
	assert_int_equal(filter_new(&f, big, 1, 0, &eb), -E2BIG);
	assert_int_equal(filter_check_size(over, &eb), -E2BIG);
	assert_non_null(strstr(eb.msg, "65 terms"));
	assert_int_equal(filter_check_size(most, &eb), 0);
	assert_int_equal(filter_new(&f, most, 1, 0, &eb), 0);
	filter_free(f);
	/* "&&" and "||" count like "and" and "or" */
	assert_int_equal(filter_check_size("tcp && (udp||icmp) and not arp OR ip6", &eb), 0);
	memset(longest, ' ', FILTER_MAX_BYTES + 1);
	assert_int_equal(filter_check_size(longest, &eb), -E2BIG);
	assert_non_null(strstr(eb.msg, "bytes"));
	longest[FILTER_MAX_BYTES] = '\0';
	assert_int_equal(filter_check_size(longest, &eb), 0);
	free(big);
	free(most);
	free(over);
	free(longest);
}

struct heavy {
	const char *expr;
	atomic_bool started, done;
};

static void *compile_heavy(void *arg)
{
	struct heavy *h = arg;
	struct filter *f = NULL;

	atomic_store(&h->started, true);
	assert_int_equal(filter_new(&f, h->expr, 1, 0, NULL), 0);
	atomic_store(&h->done, true);
	filter_free(f);
	return NULL;
}

/*
 * A plain filter compiles while a heavy one (the most terms allowed, of
 * the kind libpcap's optimizer is slowest on: hundreds of ms) is being
 * compiled in another thread: compiles do not queue behind each other.
 * Behind a lock "tcp" could only finish after the heavy one; beside it,
 * it finishes (in microseconds) while the heavy one still runs. An order
 * of events, not a timing.
 */
static void test_compile_concurrent(void **state)
{
	char *expr = or_chain("portrange %d-%d", FILTER_MAX_TERMS);
	struct heavy h = { .expr = expr };
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	struct filter *f = NULL;
	pthread_t t;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, compile_heavy, &h), 0);
	while (!atomic_load(&h.started))
		nanosleep(&pause, NULL);
	nanosleep(&pause, NULL); /* into pcap_compile */
	assert_int_equal(filter_new(&f, "tcp", 1, 0, NULL), 0);
	bool heavy_done = atomic_load(&h.done);
	filter_free(f);
	pthread_join(t, NULL);
	assert_false(heavy_done);
	free(expr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_expression),
		cmocka_unit_test(test_match_per_link_type),
		cmocka_unit_test(test_null_swapped),
		cmocka_unit_test(test_set_cache),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_compile_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
