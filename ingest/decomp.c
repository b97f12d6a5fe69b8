/*
 * decomp.c - streaming gzip/zstd detection and decompression (decomp.h).
 *
 * The kind is decided from the first 4 input bytes only (gzip 1f 8b,
 * zstd 28 b5 2f fd); fewer than 4 bytes in total pass through as NONE.
 * Decompressed bytes leave through a fixed 256 KiB buffer, so memory stays
 * bounded whatever the compression ratio. gzip: concatenated members are
 * decompressed one after the other (as gzip -d does) and zero padding after
 * the last member (tape blocks) is ignored. zstd: one DStream handles any
 * number of frames, including skippable ones.
 * This is the only file that includes <zlib.h> and <zstd.h>.
 */
#include "decomp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define OUT_CHUNK (256u * 1024)

struct decomp {
	decomp_out_fn on_output;
	void *opaque;
	enum decomp_kind kind;
	uint8_t head[4]; /* first bytes, held until the kind is known */
	size_t nhead;
	uint64_t in, out;
	z_stream z;
	bool z_init;
	bool member_open;   /* gzip: inside a member */
	bool trailing_zero; /* gzip: saw zero padding after a member */
	ZSTD_DStream *zs;
	size_t zs_hint;     /* last ZSTD_decompressStream result; 0 = frame complete */
	uint8_t *buf;
};

int decomp_new(struct decomp **out, decomp_out_fn on_output, void *opaque)
{
	struct decomp *d = calloc(1, sizeof(*d));

	if (!d)
		return -ENOMEM;
	d->on_output = on_output;
	d->opaque = opaque;
	*out = d;
	return 0;
}

struct decomp *decomp_free(struct decomp *d)
{
	if (d) {
		if (d->z_init)
			inflateEnd(&d->z);
		ZSTD_freeDStream(d->zs);
		free(d->buf);
		free(d);
	}
	return NULL;
}

static int emit(struct decomp *d, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	d->out += len;
	return d->on_output ? d->on_output(d->opaque, buf, len) : 0;
}

static int start(struct decomp *d, enum decomp_kind kind)
{
	d->kind = kind;
	if (kind == DECOMP_NONE)
		return 0;
	d->buf = malloc(OUT_CHUNK);
	if (!d->buf)
		return -ENOMEM;
	if (kind == DECOMP_GZIP) {
		/* 16 + MAX_WBITS: gzip wrapper only, no raw zlib. */
		if (inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK)
			return -ENOMEM;
		d->z_init = true;
		return 0;
	}
	d->zs = ZSTD_createDStream();
	if (!d->zs || ZSTD_isError(ZSTD_initDStream(d->zs)))
		return -ENOMEM;
	return 0;
}

static enum decomp_kind detect(const uint8_t *h)
{
	if (h[0] == 0x1f && h[1] == 0x8b)
		return DECOMP_GZIP;
	if (h[0] == 0x28 && h[1] == 0xb5 && h[2] == 0x2f && h[3] == 0xfd)
		return DECOMP_ZSTD;
	return DECOMP_NONE;
}

/* Between gzip members: skip zero padding, or start the next member. */
static int gzip_between(struct decomp *d, const uint8_t *p, size_t n, size_t *used,
			uint64_t base, struct errbuf *eb)
{
	size_t i = 0;

	while (i < n && p[i] == 0)
		i++;
	if (i > 0)
		d->trailing_zero = true;
	*used = i;
	if (i == n)
		return 0;
	if (d->trailing_zero)
		return errbuf_set(eb, -EINVAL, "offset %llu: data after gzip zero padding",
				  (unsigned long long)(base + i));
	if (inflateReset(&d->z) != Z_OK)
		return -EINVAL;
	d->member_open = true;
	return 0;
}

/* Inflates p[0..n) until the input is used or the member ends. */
static int gzip_member(struct decomp *d, const uint8_t *p, size_t n, size_t *used,
		       uint64_t base, struct errbuf *eb)
{
	int zr, r;

	d->z.next_in = (Bytef *)p;
	d->z.avail_in = (uInt)n;
	do {
		d->z.next_out = d->buf;
		d->z.avail_out = OUT_CHUNK;
		zr = inflate(&d->z, Z_NO_FLUSH);
		if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR || zr == Z_STREAM_ERROR || zr == Z_MEM_ERROR)
			return errbuf_set(eb, zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL,
					  "offset %llu: corrupt gzip data (%s)",
					  (unsigned long long)(base + (size_t)(d->z.next_in - p)),
					  d->z.msg ? d->z.msg : "bad stream");
		if ((r = emit(d, d->buf, OUT_CHUNK - d->z.avail_out)) != 0)
			return r;
		if (zr == Z_STREAM_END) {
			d->member_open = false;
			break;
		}
	} while (d->z.avail_in > 0 || d->z.avail_out == 0);
	*used = n - d->z.avail_in;
	return 0;
}

static int feed_gzip(struct decomp *d, const uint8_t *p, size_t n, uint64_t base,
		     struct errbuf *eb)
{
	size_t used = 0;
	int r;

	while (n > 0) {
		if (d->member_open)
			r = gzip_member(d, p, n, &used, base, eb);
		else
			r = gzip_between(d, p, n, &used, base, eb);
		if (r != 0)
			return r;
		p += used;
		n -= used;
		base += used;
	}
	return 0;
}

static int feed_zstd(struct decomp *d, const uint8_t *p, size_t n, uint64_t base,
		     struct errbuf *eb)
{
	ZSTD_inBuffer in = { p, n, 0 };
	int r;

	for (;;) {
		ZSTD_outBuffer out = { d->buf, OUT_CHUNK, 0 };
		size_t before = in.pos;
		size_t zr = ZSTD_decompressStream(d->zs, &out, &in);
		if (ZSTD_isError(zr))
			return errbuf_set(eb, -EINVAL, "offset %llu: corrupt zstd data (%s)",
					  (unsigned long long)(base + in.pos), ZSTD_getErrorName(zr));
		/* A call that moved nothing after a finished frame returns the
		 * next frame's header size; keep "frame complete" then. */
		if (in.pos != before || out.pos != 0)
			d->zs_hint = zr;
		if ((r = emit(d, d->buf, out.pos)) != 0)
			return r;
		/* A full output buffer may hide more output for the same input. */
		if (in.pos == in.size && out.pos < out.size)
			return 0;
	}
}

static int feed_kind(struct decomp *d, const uint8_t *p, size_t n, uint64_t base,
		     struct errbuf *eb)
{
	switch (d->kind) {
	case DECOMP_GZIP:
		return feed_gzip(d, p, n, base, eb);
	case DECOMP_ZSTD:
		return feed_zstd(d, p, n, base, eb);
	default:
		return emit(d, p, n);
	}
}

/* Decides the kind once 4 bytes are known, then replays the held bytes. */
static int settle(struct decomp *d, enum decomp_kind kind, struct errbuf *eb)
{
	int r = start(d, kind);

	if (r < 0)
		return errbuf_set(eb, r, "cannot set up the %s decoder", decomp_kind_name(kind));
	d->member_open = kind == DECOMP_GZIP;
	return feed_kind(d, d->head, d->nhead, 0, eb);
}

int decomp_feed(struct decomp *d, const void *buf, size_t len, struct errbuf *eb)
{
	const uint8_t *p = buf;
	uint64_t base = d->in;
	int r;

	d->in += len;
	if (d->kind == DECOMP_UNKNOWN) {
		size_t take = sizeof(d->head) - d->nhead < len ? sizeof(d->head) - d->nhead : len;
		memcpy(d->head + d->nhead, p, take);
		d->nhead += take;
		p += take;
		len -= take;
		base += take;
		if (d->nhead < sizeof(d->head))
			return 0;
		if ((r = settle(d, detect(d->head), eb)) != 0)
			return r;
	}
	return feed_kind(d, p, len, base, eb);
}

int decomp_finish(struct decomp *d, struct errbuf *eb)
{
	if (d->kind == DECOMP_UNKNOWN) {
		/* Too short to be compressed: pass through as is. */
		d->kind = DECOMP_NONE;
		return emit(d, d->head, d->nhead);
	}
	if (d->kind == DECOMP_GZIP && d->member_open)
		return errbuf_set(eb, DECOMP_CUT, "offset %llu: gzip stream ends early",
				  (unsigned long long)d->in);
	if (d->kind == DECOMP_ZSTD && d->zs_hint != 0)
		return errbuf_set(eb, DECOMP_CUT, "offset %llu: zstd stream ends early",
				  (unsigned long long)d->in);
	return 0;
}

enum decomp_kind decomp_kind(const struct decomp *d)
{
	return d->kind;
}

const char *decomp_kind_name(enum decomp_kind kind)
{
	switch (kind) {
	case DECOMP_GZIP:
		return "gzip";
	case DECOMP_ZSTD:
		return "zstd";
	case DECOMP_NONE:
		return "none";
	default:
		return "unknown";
	}
}

uint64_t decomp_bytes_in(const struct decomp *d)
{
	return d->in;
}

uint64_t decomp_bytes_out(const struct decomp *d)
{
	return d->out;
}
