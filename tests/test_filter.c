/*
 * test_filter.c - the libpcap wrapper: errors carry libpcap's text, matches
 * and non-matches per link type, the per-link-type cache of filter_set,
 * byte-swapped DLT_NULL headers, and link type names.
 */
#include <errno.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_expression),
		cmocka_unit_test(test_match_per_link_type),
		cmocka_unit_test(test_null_swapped),
		cmocka_unit_test(test_set_cache),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
