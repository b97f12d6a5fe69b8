/*
 * test_query_time.c - the one parser of user-given times (query --after
 * and --before, the API's after/before/from/to/imported_after) and the
 * RFC 3339 printer: dates that do not exist are refused, not normalised;
 * times before 1970 work; bounds outside the packet time range are
 * refused with a message naming the range.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "query.h"

static int64_t parse_ok(const char *text)
{
	int64_t ns = 42;
	struct errbuf eb = { { 0 } };
	int err = query_parse_time(text, &ns, &eb);
	if (err)
		fail_msg("'%s': %d %s", text, err, eb.msg);
	return ns;
}

/* Refused with err, eb quoting the text and containing want. */
static void parse_bad(const char *text, int err, const char *want)
{
	int64_t ns = 42;
	struct errbuf eb = { { 0 } };
	assert_int_equal(query_parse_time(text, &ns, &eb), err);
	assert_true(ns == 42);
	assert_non_null(strstr(eb.msg, text));
	if (!strstr(eb.msg, want))
		fail_msg("'%s': message '%s' lacks '%s'", text, eb.msg, want);
	assert_int_equal(query_parse_time(text, &ns, NULL), err);
}

static void test_valid(void **state)
{
	(void)state;
	assert_true(parse_ok("2024-05-01T14:00:00Z") == 1714572000000000000ll);
	assert_true(parse_ok("2024-05-01t14:00:00.25z") == 1714572000250000000ll);
	assert_true(parse_ok("2024-05-01 16:00:00.25+02:00") == 1714572000250000000ll);
	assert_true(parse_ok("2024-02-29T00:00:00Z") == 1709164800000000000ll);
	assert_true(parse_ok("2000-02-29T23:59:59.123456789123Z") == 951868799123456789ll);
	assert_true(parse_ok("1714572000.25") == 1714572000250000000ll);
	assert_true(parse_ok("0") == 0);
	assert_true(parse_ok("1") == 1000000000ll);
	/* a leap second counts as the next second, as POSIX time does */
	assert_true(parse_ok("2016-12-31T23:59:60Z") == 1483228800000000000ll);
}

static void test_before_1970(void **state)
{
	(void)state;
	assert_true(parse_ok("-1") == -1000000000ll);
	assert_true(parse_ok("-100000.5") == -100000500000000ll);
	assert_true(parse_ok("-0.000000001") == -1);
	assert_true(parse_ok("1969-12-31T23:59:59.999999999Z") == -1);
	assert_true(parse_ok("1969-12-30T20:13:20Z") == -100000000000000ll);
	assert_true(parse_ok("1900-01-01T00:00:00Z") == -2208988800000000000ll);
	assert_true(parse_ok("1970-01-01T01:00:00+01:00") == 0);
	/* the ends of what a window can have */
	assert_true(parse_ok("1677-09-21T00:12:43.145224193Z") == INT64_MIN + 1);
	assert_true(parse_ok("2262-04-11T23:47:16.854775807Z") == INT64_MAX);
	assert_true(parse_ok("9223372036.854775807") == INT64_MAX);
	assert_true(parse_ok("-9223372036.854775807") == INT64_MIN + 1);
}

static void test_calendar(void **state)
{
	(void)state;
	parse_bad("2024-02-31T00:00:00Z", -EINVAL, "day 31 does not exist in February 2024");
	parse_bad("2023-02-29T00:00:00Z", -EINVAL, "day 29 does not exist in February 2023");
	parse_bad("1900-02-29T00:00:00Z", -EINVAL, "February 1900");
	parse_bad("2024-04-31T00:00:00Z", -EINVAL, "April");
	parse_bad("2024-13-01T00:00:00Z", -EINVAL, "month 13");
	parse_bad("2024-00-01T00:00:00Z", -EINVAL, "month 00");
	parse_bad("2024-01-00T00:00:00Z", -EINVAL, "day 00");
	parse_bad("2024-01-01T24:00:00Z", -EINVAL, "hour 24");
	parse_bad("2024-01-01T23:60:00Z", -EINVAL, "minute 60");
	parse_bad("2024-01-01T23:59:61Z", -EINVAL, "second 61");
	parse_bad("2024-01-01T00:00:00+24:00", -EINVAL, "offset");
	parse_bad("2024-01-01T00:00:00", -EINVAL, "time zone is required");
}

static void test_syntax(void **state)
{
	(void)state;
	parse_bad("2024-1-01T00:00:00Z", -EINVAL, "not a time");
	parse_bad("2024-01-01T0:00:00Z", -EINVAL, "not a time");
	parse_bad(" 2024-01-01T00:00:00Z", -EINVAL, "not a time");
	parse_bad("2024-01-01T00:00:00.Z", -EINVAL, "not a time");
	parse_bad("2024-01-01T00:00:00Zjunk", -EINVAL, "junk");
	parse_bad("", -EINVAL, "not a time");
	parse_bad("-", -EINVAL, "not a time");
	parse_bad("--5", -EINVAL, "not a time");
	parse_bad("+5", -EINVAL, "not a time");
	parse_bad("5x", -EINVAL, "not a time");
	parse_bad("now-", -EINVAL, "now-DURATION");
	parse_bad("now-5", -EINVAL, "now-DURATION");
	parse_bad("1.", -EINVAL, "not a time");
	parse_bad("yesterday", -EINVAL, "not a time");
}

static void test_range(void **state)
{
	(void)state;
	parse_bad("1677-09-21T00:12:43.145224192Z", -ERANGE, "1677-09-21T00:12:43.145224193Z");
	parse_bad("1600-01-01T00:00:00Z", -ERANGE, "outside");
	parse_bad("2262-04-11T23:47:16.854775808Z", -ERANGE, "2262-04-11T23:47:16.854775807Z");
	parse_bad("9999-12-31T23:59:59Z", -ERANGE, "outside");
	parse_bad("9223372036.854775808", -ERANGE, "outside");
	parse_bad("-9223372037", -ERANGE, "outside");
	parse_bad("99999999999999999999999999999", -ERANGE, "outside");
}

static void test_format(void **state)
{
	(void)state;
	char buf[QUERY_TIME_LEN];
	static const struct { int64_t ns; const char *text; } cases[] = {
		{ 0, "1970-01-01T00:00:00.000000000Z" },
		{ -1, "1969-12-31T23:59:59.999999999Z" },
		{ -100000000000000ll, "1969-12-30T20:13:20.000000000Z" },
		{ 1714572000250000000ll, "2024-05-01T14:00:00.250000000Z" },
		{ 951868799123456789ll, "2000-02-29T23:59:59.123456789Z" },
		{ INT64_MAX, "2262-04-11T23:47:16.854775807Z" },
		{ INT64_MIN, "1677-09-21T00:12:43.145224192Z" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		query_format_time(cases[i].ns, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].text);
		if (cases[i].ns != INT64_MIN)
			assert_true(parse_ok(buf) == cases[i].ns);
	}
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Within a minute of want: the parser reads the clock a moment apart. */
static void near(int64_t got, int64_t want)
{
	int64_t d = got - want;
	if (d < -60000000000 || d > 60000000000)
		fail_msg("%lld is not near %lld", (long long)got, (long long)want);
}

/* Times as people write them: a bare date, a time ago, now+-DURATION. */
static void test_relative(void **state)
{
	const int64_t s = 1000000000, h = 3600 * s;
	(void)state;
	assert_true(parse_ok("2024-05-01") == parse_ok("2024-05-01T00:00:00Z"));
	assert_true(parse_ok("1969-12-31") == -86400 * s);
	near(parse_ok("now"), now_ns());
	near(parse_ok("now-1h"), now_ns() - h);
	near(parse_ok("now+30m"), now_ns() + h / 2);
	near(parse_ok("-1h"), now_ns() - h);
	near(parse_ok("1h"), now_ns() - h);
	near(parse_ok("15m"), now_ns() - h / 4);
	near(parse_ok("1.5d"), now_ns() - 36 * h);
	near(parse_ok("2w"), now_ns() - 14 * 24 * h);
	near(parse_ok("5s"), now_ns() - 5 * s);
	parse_bad("2024-02-30", -EINVAL, "February");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),    cmocka_unit_test(test_before_1970),
		cmocka_unit_test(test_calendar), cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_range),    cmocka_unit_test(test_format),
		cmocka_unit_test(test_relative),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
