/*
 * test_api_parse.c - the API's own request parsers (api/parse.h): HTTP
 * Range, strict decimals, comma lists, CloudShark date ranges and the
 * Content-Disposition value, on good and hostile input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parse.h"
#include "urlfetch.h"

static void range_ok(const char *h, uint64_t size, uint64_t start, uint64_t len)
{
	uint64_t s = 0, l = 0;
	assert_int_equal(api_parse_range(h, size, &s, &l), 0);
	assert_int_equal(s, start);
	assert_int_equal(l, len);
}

static void test_range(void **state)
{
	uint64_t s, l;
	(void)state;
	range_ok("bytes=0-0", 100, 0, 1);
	range_ok("bytes=10-19", 100, 10, 10);
	range_ok("bytes=10-", 100, 10, 90);
	range_ok("bytes=10-1000", 100, 10, 90);
	range_ok("bytes=-30", 100, 70, 30);
	range_ok("bytes=-300", 100, 0, 100);
	range_ok("bytes=99-99", 100, 99, 1);
	assert_int_equal(api_parse_range(NULL, 100, &s, &l), 1);
	assert_int_equal(api_parse_range("items=1-2", 100, &s, &l), 1);
	assert_int_equal(api_parse_range("bytes=1-2,5-6", 100, &s, &l), 1);
	assert_int_equal(api_parse_range("bytes=5-2", 100, &s, &l), 1);
	assert_int_equal(api_parse_range("bytes=a-b", 100, &s, &l), 1);
	assert_int_equal(api_parse_range("bytes=-", 100, &s, &l), 1);
	assert_int_equal(api_parse_range("bytes=", 100, &s, &l), 1);
	assert_int_equal(api_parse_range("bytes=1-2x", 100, &s, &l), 1);
	assert_int_equal(api_parse_range("bytes=99999999999999999999-", 100, &s, &l), 1);
	assert_int_equal(api_parse_range("bytes=100-", 100, &s, &l), -ERANGE);
	assert_int_equal(api_parse_range("bytes=-0", 100, &s, &l), -ERANGE);
	assert_int_equal(api_parse_range("bytes=0-", 0, &s, &l), -ERANGE);
	assert_int_equal(api_parse_range("bytes=-5", 0, &s, &l), -ERANGE);
}

static void test_u64(void **state)
{
	uint64_t v;
	(void)state;
	assert_int_equal(api_parse_u64("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(api_parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(api_parse_u64("18446744073709551616", &v), -EINVAL);
	assert_int_equal(api_parse_u64("", &v), -EINVAL);
	assert_int_equal(api_parse_u64(NULL, &v), -EINVAL);
	assert_int_equal(api_parse_u64("-1", &v), -EINVAL);
	assert_int_equal(api_parse_u64("+1", &v), -EINVAL);
	assert_int_equal(api_parse_u64("1 ", &v), -EINVAL);
	assert_int_equal(api_parse_u64("0x10", &v), -EINVAL);
}

static void test_list(void **state)
{
	char **v = NULL;
	size_t n = 0;
	(void)state;
	assert_int_equal(api_split_list(" a, b ,,c,", &v, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "b");
	assert_string_equal(v[2], "c");
	assert_int_equal(api_split_list("d", &v, &n), 0); /* appends */
	assert_int_equal(n, 4);
	assert_string_equal(v[3], "d");
	assert_int_equal(api_split_list(" , ,", &v, &n), 0);
	assert_int_equal(api_split_list("", &v, &n), 0);
	assert_int_equal(n, 4);
	api_strv_free(v, n);
}

static void test_cs_date(void **state)
{
	uint64_t a, b;
	const uint64_t day = 86400ull * 1000000000ull;
	(void)state;
	assert_int_equal(api_parse_cs_date_range("1/1/1970-1/1/1970", &a, &b), 0);
	assert_true(a == 0 && b == day);
	assert_int_equal(api_parse_cs_date_range("3/1/2024-3/2/2024", &a, &b), 0);
	assert_true(a == 1709251200ull * 1000000000ull && b - a == 2 * day);
	assert_int_equal(api_parse_cs_date_range("12/31/2023", &a, &b), 0);
	assert_true(b - a == day);
	assert_int_equal(api_parse_cs_date_range("2/30/2024", &a, &b), -EINVAL);
	assert_int_equal(api_parse_cs_date_range("13/1/2024", &a, &b), -EINVAL);
	assert_int_equal(api_parse_cs_date_range("3/2/2024-3/1/2024", &a, &b), -EINVAL);
	assert_int_equal(api_parse_cs_date_range("3/1/2024-", &a, &b), -EINVAL);
	assert_int_equal(api_parse_cs_date_range("3/1/2024x", &a, &b), -EINVAL);
	assert_int_equal(api_parse_cs_date_range("2024-03-01", &a, &b), -EINVAL);
	assert_int_equal(api_parse_cs_date_range("", &a, &b), -EINVAL);
	assert_int_equal(api_parse_cs_date_range(NULL, &a, &b), -EINVAL);
}

static void test_disposition(void **state)
{
	char buf[API_DISPOSITION_MAX];
	(void)state;
	assert_string_equal(api_content_disposition("a.pcap", buf, sizeof(buf)),
			    "attachment; filename=\"a.pcap\"; filename*=UTF-8''a.pcap");
	/* The extended form is the escaped form (textesc.h) percent-encoded:
	 * quote as is, backslash doubled, controls as \xHH. */
	assert_string_equal(api_content_disposition("x\"y\\z\r\n%.pcap", buf, sizeof(buf)),
			    "attachment; filename=\"x_y_z___.pcap\"; "
			    "filename*=UTF-8''x%22y%5C%5Cz%5Cx0d%5Cx0a%25.pcap");
	assert_string_equal(api_content_disposition("caf\xc3\xa9 1.pcap", buf, sizeof(buf)),
			    "attachment; filename=\"caf__ 1.pcap\"; "
			    "filename*=UTF-8''caf%C3%A9%201.pcap");
	/* Bytes that are not UTF-8: the extended form stays UTF-8. */
	assert_string_equal(api_content_disposition("bad\xff\xfe.pcap", buf, sizeof(buf)),
			    "attachment; filename=\"bad__.pcap\"; "
			    "filename*=UTF-8''bad%5Cxff%5Cxfe.pcap");
	assert_string_equal(api_content_disposition("", buf, sizeof(buf)),
			    "attachment; filename=\"capture\"; filename*=UTF-8''capture");
	/* A NAME_MAX name of bytes that all need escaping fits whole. */
	char longname[256];
	memset(longname, 0xff, sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	api_content_disposition(longname, buf, sizeof(buf));
	assert_non_null(strstr(buf, "''"));
	assert_int_equal(strlen(strstr(buf, "''") + 2), 255 * 6);
	/* Truncation keeps the header well-formed and NUL-terminated. */
	char small[512], huge[2000];
	memset(huge, '"', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	api_content_disposition(huge, small, sizeof(small));
	size_t pre = strlen("attachment; filename=\"");
	assert_int_equal(strspn(small + pre, "_"), 200);
	assert_int_equal(small[pre + 200], '"');
	assert_true(strlen(small) < sizeof(small));
	const char *ext = strstr(small, "''") + 2;
	assert_int_equal(strlen(ext) % 3, 0); /* whole %22 escapes only */
}

static void test_sort(void **state)
{
	struct api_sort s;
	(void)state;
	assert_int_equal(api_parse_sort("first_packet", &s), 0);
	assert_int_equal(s.key, API_SORT_FIRST_PACKET);
	assert_false(s.desc);
	assert_int_equal(api_parse_sort("-name", &s), 0);
	assert_int_equal(s.key, API_SORT_NAME);
	assert_true(s.desc);
	const char *bad[] = { "", "-", "--size", "Size", "size ", "+size", "sizes", NULL };
	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(api_parse_sort(bad[i], &s), -EINVAL);
	assert_int_equal(api_parse_sort(NULL, &s), -EINVAL);

	/* Ascending: key, then id; descending reverses both. */
	struct api_sort up = { API_SORT_SIZE, false }, down = { API_SORT_SIZE, true };
	struct api_sort_pos a = { .num = 5, .id = 9 }, b = { .num = 7, .id = 1 }, c = { .num = 5, .id = 10 };
	assert_true(api_sort_cmp(&up, &a, &b) < 0);
	assert_true(api_sort_cmp(&up, &a, &c) < 0);
	assert_true(api_sort_cmp(&down, &a, &b) > 0);
	assert_true(api_sort_cmp(&down, &a, &c) > 0);
	assert_int_equal(api_sort_cmp(&up, &a, &a), 0);
}

static void test_sort_cursor(void **state)
{
	struct api_sort size = { API_SORT_SIZE, true }, name = { API_SORT_NAME, false };
	struct api_sort_pos p = { .num = 1234, .id = 56 }, q;
	(void)state;
	char *text = api_sort_cursor(&size, &p);
	assert_string_equal(text, "-size:1234:56");
	assert_int_equal(api_parse_sort_cursor(text, &size, &q), 0);
	assert_int_equal(q.num, 1234);
	assert_int_equal(q.id, 56);
	assert_null(q.name);
	assert_int_equal(api_parse_sort_cursor(text, &name, &q), -EINVAL);
	struct api_sort size_up = { API_SORT_SIZE, false };
	assert_int_equal(api_parse_sort_cursor(text, &size_up, &q), -EINVAL);
	free(text);

	struct api_sort_pos n = { .name = "a:b \xff", .id = 3 };
	text = api_sort_cursor(&name, &n);
	assert_string_equal(text, "name:613a6220ff:3");
	assert_int_equal(api_parse_sort_cursor(text, &name, &q), 0);
	assert_string_equal(q.name, "a:b \xff");
	assert_int_equal(q.id, 3);
	free(q.name);
	free(text);
	n.name = "";
	text = api_sort_cursor(&name, &n);
	assert_string_equal(text, "name::3");
	assert_int_equal(api_parse_sort_cursor(text, &name, &q), 0);
	assert_string_equal(q.name, "");
	free(q.name);
	free(text);

	const char *bad[] = { "size:1:2", "-size:1", "-size::2", "-size:x:2", "-size:1:2x",
			      "-size:99999999999999999999:1", "-sizes:1:2", "-name:61:1", "", NULL };
	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(api_parse_sort_cursor(bad[i], &size, &q), -EINVAL);
	const char *bad_names[] = { "name:6:1", "name:6g:1", "name:0061:1", "name:61", "name:61:",
				    "name:6A:1", NULL };
	for (size_t i = 0; bad_names[i]; i++)
		assert_int_equal(api_parse_sort_cursor(bad_names[i], &name, &q), -EINVAL);
}

static void test_cs_normalize(void **state)
{
	(void)state;
	char a[] = "api", b[] = "v1", t[] = "0123ABCDEF", call[] = "search.json", id[] = "7";
	char *seg[] = { a, b, t, call, id };
	api_cs_normalize(seg, 5);
	assert_string_equal(t, "0123abcdef");
	assert_string_equal(call, "search");
	char c2[] = ".json", c3[] = "info";
	char *seg2[] = { a, b, t, c2 }, *seg3[] = { a, b, t, c3 };
	api_cs_normalize(seg2, 4);
	assert_string_equal(c2, ".json"); /* nothing would be left */
	api_cs_normalize(seg3, 4);
	assert_string_equal(c3, "info");
}

static void test_cs_values(void **state)
{
	(void)state;
	char buf[64];
	assert_string_equal(api_cs_decimal(12.3, buf, sizeof(buf)), "12.30");
	assert_string_equal(api_cs_decimal(0.005, buf, sizeof(buf)), "0.01");
	assert_string_equal(api_cs_decimal(1.0 / 0.0, buf, sizeof(buf)), "0.00");
	assert_string_equal(api_cs_time(1700000000123456789, buf, sizeof(buf)),
			    "2023-11-14T22:13:20+00:00");
	assert_string_equal(api_cs_time(-1, buf, sizeof(buf)), "1969-12-31T23:59:59+00:00");
	char *n = api_decompressed_name("a.pcap.GZ", "gzip");
	assert_string_equal(n, "a.pcap");
	free(n);
	n = api_decompressed_name("b.pcap.zst", "zstd");
	assert_string_equal(n, "b.pcap");
	free(n);
	assert_null(api_decompressed_name("c.pcap.gz", "none"));
	assert_null(api_decompressed_name("c.pcap", "gzip"));
	assert_null(api_decompressed_name(".gz", "gzip"));
}

/* Feeds body in pieces of step bytes; returns where the delimiter ended. */
static size_t mp_end_at(const char *ctype, const char *body, size_t step)
{
	struct api_mp_end m;
	size_t len = strlen(body), at = 0;
	assert_int_equal(api_mp_end_init(&m, ctype), 0);
	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;
		size_t took = api_mp_end_feed(&m, body + off, n);
		at += took;
		if (took < n)
			break;
	}
	return at;
}

static void test_multipart_end(void **state)
{
	(void)state;
	static const char body[] = "--B\r\nx: y\r\n\r\ndata\r\n--Bx\r\n--B--\r\n\r\nepilogue --B--";
	size_t want = strlen("--B\r\nx: y\r\n\r\ndata\r\n--Bx\r\n--B--");
	for (size_t step = 1; step <= sizeof(body); step++)
		assert_int_equal(mp_end_at("multipart/form-data; boundary=B", body, step), want);
	/* Overlapping prefixes: "\r\n--\r\n--..." with boundary "\r\n--"-like text. */
	static const char tricky[] = "--a-\r\n\r\n--a-\r\n--a---\r\n";
	assert_int_equal(mp_end_at("multipart/form-data; boundary=\"a-\"", tricky, 1),
			 strlen("--a-\r\n\r\n--a-\r\n--a---"));
	/* No close delimiter: everything is body. */
	assert_int_equal(mp_end_at("multipart/form-data; boundary=B", "--B\r\n\r\nx", 2), 8);
	struct api_mp_end m;
	assert_int_equal(api_mp_end_init(&m, "multipart/form-data"), -EINVAL);
	char longb[120];
	snprintf(longb, sizeof(longb), "multipart/form-data; boundary=%075d", 0);
	assert_int_equal(api_mp_end_init(&m, longb), -EINVAL);
}

static void test_url_allowed(void **state)
{
	(void)state;
	const char *const allow[] = { "http://127.0.0.1:8000/ok/", "https://Captures.example/pub" };
	const char *m = NULL;
	assert_int_equal(urlfetch_allowed("http://127.0.0.1:8000/ok/a.pcap", allow, 2, &m), 0);
	assert_string_equal(m, allow[0]);
	assert_int_equal(urlfetch_allowed("https://captures.example:443/pub/x", allow, 2, &m), 0);
	assert_string_equal(m, allow[1]);
	/* Another port, scheme, host or path; a host that only starts alike. */
	assert_int_equal(urlfetch_allowed("http://127.0.0.1:8001/ok/a", allow, 2, &m), -EPERM);
	assert_int_equal(urlfetch_allowed("https://127.0.0.1:8000/ok/a", allow, 2, &m), -EPERM);
	assert_int_equal(urlfetch_allowed("http://127.0.0.1:8000/other", allow, 2, &m), -EPERM);
	assert_int_equal(urlfetch_allowed("https://captures.example.evil/pub/x", allow, 2, &m),
			 -EPERM);
	assert_int_equal(urlfetch_allowed("https://captures.example@evil/pub/x", allow, 2, &m),
			 -EPERM);
	assert_int_equal(urlfetch_allowed("ftp://127.0.0.1:8000/ok/a", allow, 2, &m), -EPERM);
	assert_int_equal(urlfetch_allowed("not a url", allow, 2, &m), -EINVAL);
	char *n = urlfetch_file_name("http://h/dir/a%20b.pcap?x=1");
	assert_string_equal(n, "a b.pcap");
	free(n);
	assert_null(urlfetch_file_name("http://h/dir/"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range),     cmocka_unit_test(test_u64),
		cmocka_unit_test(test_list),      cmocka_unit_test(test_cs_date),
		cmocka_unit_test(test_disposition), cmocka_unit_test(test_sort),
		cmocka_unit_test(test_sort_cursor),
		cmocka_unit_test(test_cs_normalize), cmocka_unit_test(test_cs_values),
		cmocka_unit_test(test_multipart_end), cmocka_unit_test(test_url_allowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
