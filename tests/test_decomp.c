/*
 * test_decomp.c - unit tests of gzip/zstd detection and streaming
 * decompression (ingest/decomp.c). Compressed inputs are made here with
 * zlib (cw_gzip) and libzstd so each case states exactly what went in.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include "capwriter.h"
#include "decomp.h"

struct sinkbuf {
	uint8_t *data;
	size_t len, cap;
	size_t max_chunk;
	size_t calls;
	int stop_after; /* return 7 after this many calls */
};

static int on_output(void *opaque, const void *buf, size_t len)
{
	struct sinkbuf *s = opaque;

	assert_true(len > 0);
	if (len > s->max_chunk)
		s->max_chunk = len;
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->data = realloc(s->data, s->cap);
		assert_non_null(s->data);
	}
	memcpy(s->data + s->len, buf, len);
	s->len += len;
	s->calls++;
	return s->stop_after && (int)s->calls >= s->stop_after ? 7 : 0;
}

/* Runs input through a decomp in step-sized feeds (0 = one feed). */
static int run(struct sinkbuf *s, const uint8_t *in, size_t len, size_t step,
	       enum decomp_kind *kind, struct errbuf *eb)
{
	struct decomp *d = NULL;
	int r = 0;

	assert_int_equal(decomp_new(&d, on_output, s), 0);
	for (size_t pos = 0; pos < len && r == 0;) {
		size_t n = step && len - pos > step ? step : len - pos;
		r = decomp_feed(d, in + pos, n, eb);
		pos += n;
	}
	if (r == 0)
		r = decomp_finish(d, eb);
	*kind = decomp_kind(d);
	if (r == 0) {
		assert_int_equal(decomp_bytes_in(d), len);
		assert_int_equal(decomp_bytes_out(d), s->len);
	}
	assert_null(decomp_free(d));
	return r;
}

static uint8_t *sample(size_t len)
{
	uint8_t *p = malloc(len);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 31) ^ (i >> 7));
	return p;
}

static size_t gzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t n = cw_gzip(in, len, out, cap);

	assert_true(n > 0);
	return n;
}

static size_t zstd(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
	size_t n = ZSTD_compress(out, cap, in, len, 3);

	assert_false(ZSTD_isError(n));
	return n;
}

static void check_roundtrip(size_t (*compress)(const uint8_t *, size_t, uint8_t *, size_t),
			    enum decomp_kind want)
{
	size_t len = 300000, cap = len + 4096;
	uint8_t *in = sample(len), *c = malloc(cap);
	size_t clen = compress(in, len, c, cap);
	enum decomp_kind kind;
	struct errbuf eb;
	static const size_t steps[] = { 0, 1, 3, 4096 };

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct sinkbuf s = { 0 };
		assert_int_equal(run(&s, c, clen, steps[i], &kind, &eb), 0);
		assert_int_equal(kind, want);
		assert_int_equal(s.len, len);
		assert_memory_equal(s.data, in, len);
		assert_true(s.max_chunk <= 256 * 1024);
		free(s.data);
	}
	free(in);
	free(c);
}

static void test_gzip_roundtrip(void **state)
{
	(void)state;
	check_roundtrip(gzip, DECOMP_GZIP);
}

static void test_zstd_roundtrip(void **state)
{
	(void)state;
	check_roundtrip(zstd, DECOMP_ZSTD);
}

/* Concatenated members (and frames) decode as one stream. */
static void check_multi(size_t (*compress)(const uint8_t *, size_t, uint8_t *, size_t),
			enum decomp_kind want, size_t zero_pad)
{
	uint8_t *a = sample(5000), c[20000] = { 0 };
	size_t n = compress(a, 5000, c, sizeof(c));
	n += compress((const uint8_t *)"second member", 13, c + n, sizeof(c) - n);
	n += zero_pad; /* c is zeroed */
	enum decomp_kind kind;
	struct errbuf eb;

	for (size_t step = 0; step <= 1; step++) {
		struct sinkbuf s = { 0 };
		assert_int_equal(run(&s, c, n, step, &kind, &eb), 0);
		assert_int_equal(kind, want);
		assert_int_equal(s.len, 5013);
		assert_memory_equal(s.data, a, 5000);
		assert_memory_equal(s.data + 5000, "second member", 13);
		free(s.data);
	}
	free(a);
}

static void test_gzip_multi_member(void **state)
{
	(void)state;
	check_multi(gzip, DECOMP_GZIP, 0);
	check_multi(gzip, DECOMP_GZIP, 512); /* tape padding */
}

static void test_zstd_multi_frame(void **state)
{
	(void)state;
	check_multi(zstd, DECOMP_ZSTD, 0);
}

static void test_passthrough(void **state)
{
	uint8_t *in = sample(10000);
	struct errbuf eb;
	enum decomp_kind kind;
	struct sinkbuf s = { 0 };

	(void)state;
	in[0] = 0xd4; /* a pcap magic */
	assert_int_equal(run(&s, in, 10000, 1, &kind, &eb), 0);
	assert_int_equal(kind, DECOMP_NONE);
	assert_int_equal(s.len, 10000);
	assert_memory_equal(s.data, in, 10000);
	free(s.data);
	/* fewer than 4 bytes: passed through even if they look like gzip */
	memset(&s, 0, sizeof(s));
	assert_int_equal(run(&s, (const uint8_t *)"\x1f\x8b\x08", 3, 0, &kind, &eb), 0);
	assert_int_equal(kind, DECOMP_NONE);
	assert_int_equal(s.len, 3);
	assert_memory_equal(s.data, "\x1f\x8b\x08", 3);
	free(s.data);
	/* empty input */
	memset(&s, 0, sizeof(s));
	assert_int_equal(run(&s, in, 0, 0, &kind, &eb), 0);
	assert_int_equal(kind, DECOMP_NONE);
	assert_int_equal(s.len, 0);
	free(in);
	assert_string_equal(decomp_kind_name(DECOMP_ZSTD), "zstd");
	assert_string_equal(decomp_kind_name(DECOMP_GZIP), "gzip");
	assert_string_equal(decomp_kind_name(DECOMP_NONE), "none");
}

static void test_corrupt_and_truncated(void **state)
{
	uint8_t *in = sample(50000), c[60000];
	size_t n = gzip(in, 50000, c, sizeof(c));
	enum decomp_kind kind;
	struct errbuf eb;
	struct sinkbuf s = { 0 };

	(void)state;
	assert_int_equal(run(&s, c, n - 10, 0, &kind, &eb), DECOMP_CUT);
	char want[64];
	snprintf(want, sizeof(want), "offset %zu: gzip stream ends early", n - 10);
	assert_string_equal(eb.msg, want);
	free(s.data);
	memset(&s, 0, sizeof(s));
	c[3] = 0xe0; /* reserved FLG bits: rejected in the header */
	assert_int_equal(run(&s, c, n, 1, &kind, &eb), -EINVAL);
	/* zlib reports after consuming the bad byte */
	assert_string_equal(eb.msg, "offset 4: corrupt gzip data (unknown header flags set)");
	free(s.data);

	n = zstd(in, 50000, c, sizeof(c));
	memset(&s, 0, sizeof(s));
	assert_int_equal(run(&s, c, n - 1, 0, &kind, &eb), DECOMP_CUT);
	snprintf(want, sizeof(want), "offset %zu: zstd stream ends early", n - 1);
	assert_string_equal(eb.msg, want);
	free(s.data);
	memset(&s, 0, sizeof(s));
	c[4] = 0xff; /* frame header descriptor with the reserved bit set */
	assert_int_equal(run(&s, c, n, 0, &kind, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "corrupt zstd data"));
	free(s.data);
	free(in);
}

static void test_garbage_after_padding(void **state)
{
	uint8_t c[4096] = { 0 };
	size_t n = gzip((const uint8_t *)"abc", 3, c, sizeof(c));
	enum decomp_kind kind;
	struct errbuf eb;
	struct sinkbuf s = { 0 };

	(void)state;
	c[n + 8] = 'x';
	assert_int_equal(run(&s, c, n + 16, 0, &kind, &eb), -EINVAL);
	char want[64];
	snprintf(want, sizeof(want), "offset %zu: data after gzip zero padding", n + 8);
	assert_string_equal(eb.msg, want);
	free(s.data);
}

/* 64 MiB of zeros compress to ~64 KiB; output still comes in <= 256 KiB. */
static void test_bomb_bounded(void **state)
{
	size_t len = 64u << 20;
	uint8_t *zeros = calloc(1, len), *c = malloc(1 << 20);
	size_t n = zstd(zeros, len, c, 1 << 20);
	enum decomp_kind kind;
	struct errbuf eb;
	struct sinkbuf s = { 0 };

	(void)state;
	assert_true(n < 1 << 20);
	assert_int_equal(run(&s, c, n, 0, &kind, &eb), 0);
	assert_int_equal(s.len, len);
	assert_true(s.max_chunk <= 256 * 1024);
	assert_true(s.calls >= len / (256 * 1024));
	free(s.data);
	free(zeros);
	free(c);
}

static void test_callback_stops(void **state)
{
	uint8_t *in = sample(1 << 20), *c = malloc(2 << 20);
	size_t n = gzip(in, 1 << 20, c, 2 << 20);
	enum decomp_kind kind;
	struct errbuf eb;
	struct sinkbuf s = { .stop_after = 2 };

	(void)state;
	assert_int_equal(run(&s, c, n, 0, &kind, &eb), 7);
	assert_int_equal(s.calls, 2);
	free(s.data);
	free(in);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gzip_roundtrip),
		cmocka_unit_test(test_zstd_roundtrip),
		cmocka_unit_test(test_gzip_multi_member),
		cmocka_unit_test(test_zstd_multi_frame),
		cmocka_unit_test(test_passthrough),
		cmocka_unit_test(test_corrupt_and_truncated),
		cmocka_unit_test(test_garbage_after_padding),
		cmocka_unit_test(test_bomb_bounded),
		cmocka_unit_test(test_callback_stops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
