/*
 * import.c - see import.h.
 *
 * Data flow of one pass: raw bytes -> decomp (gzip/zstd/none) -> for each
 * decompressed chunk (small ones gathered to PASS_GATHER_BYTES first):
 * sink->data (hash + store, maybe on the sink's own thread) and
 * capfile_feed, whose packet and context callbacks go to the sink, then
 * sink->data_wait. The first error wins and
 * stops the pass; the sink job is then aborted, so nothing is left.
 */
#include "import.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buffill.h"
#include "cleanup.h"

/* Output in pieces smaller than this is gathered into one buffer of this
 * size first: a sink that stores on its own thread (data_wait) overlaps
 * with parsing only a piece at a time, and uploads arrive in pieces of
 * tens of KiB. The first piece goes through at once, so that a body that
 * is no capture fails on it; the buffer (one per pass: 1 MiB for each
 * upload in progress) is made when the second comes. */
#define PASS_GATHER_BYTES (1u << 20)

struct import_pass {
	const struct import_sink_ops *ops;
	void *job;
	struct decomp *decomp;
	struct capfile *capfile;
	struct errbuf *eb;   /* the current call's error buffer */
	uint8_t *gather;     /* PASS_GATHER_BYTES, made on first use */
	size_t gathered;
	bool output_seen;    /* a piece of output went through */
	uint64_t source_bytes;
	uint64_t stream_bytes; /* import_source's, for the sink's expect */
	bool finished;
};

static int pass_on_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct import_pass *p = opaque;
	return p->ops->packet(p->job, pkt);
}

static int pass_on_context(void *opaque, uint64_t offset, const void *blob, size_t len)
{
	struct import_pass *p = opaque;
	return p->ops->context(p->job, offset, blob, len);
}

/* Decompressed bytes: store them, then parse them. A sink with data_wait
 * hashes and stores them on its own thread while we parse, so the buffer
 * takes as long as the slower of the two rather than their sum; buf is
 * reused once we return, so we wait for the sink before that. */
static int pass_process(struct import_pass *p, const void *buf, size_t len)
{
	int err = p->ops->data(p->job, buf, len, p->eb);
	if (err)
		return err;
	int parsed = capfile_feed(p->capfile, buf, len, p->eb);
	if (!p->ops->data_wait)
		return parsed;
	/* A store error comes first, as when storing came before parsing. */
	err = p->ops->data_wait(p->job, p->eb);
	return err ? err : parsed;
}

static int pass_flush(struct import_pass *p)
{
	size_t n = p->gathered;
	p->gathered = 0;
	return n ? pass_process(p, p->gather, n) : 0;
}

static int pass_flush_full(void *opaque)
{
	return pass_flush(opaque);
}

static int pass_on_output(void *opaque, const void *buf, size_t len)
{
	struct import_pass *p = opaque;
	bool first = !p->output_seen;
	p->output_seen = true;
	if (first && p->stream_bytes && p->ops->expect && p->eb &&
	    decomp_kind(p->decomp) == DECOMP_NONE) {
		int err = p->ops->expect(p->job, p->stream_bytes, p->eb);
		if (err)
			return err;
	}
	if (!p->gather && !first && p->ops->data_wait && len < PASS_GATHER_BYTES)
		p->gather = malloc(PASS_GATHER_BYTES); /* without it: piece by piece */
	if (!p->gather || len >= PASS_GATHER_BYTES) {
		int err = pass_flush(p);
		return err ? err : pass_process(p, buf, len);
	}
	return buf_fill(p->gather, PASS_GATHER_BYTES, &p->gathered, buf, len, pass_flush_full, p);
}

int import_pass_new(struct import_pass **out, const struct import_sink_ops *ops, void *sink,
		    const struct import_source *src, struct errbuf *eb)
{
	struct import_pass *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->ops = ops;
	p->stream_bytes = src->stream_bytes;
	int err = decomp_new(&p->decomp, pass_on_output, p);
	if (!err)
		err = capfile_new(&p->capfile, pass_on_packet, pass_on_context, p);
	if (!err)
		err = ops->begin(sink, src, &p->job, eb);
	if (err) {
		p->job = NULL;
		import_pass_free(p);
		return err;
	}
	*out = p;
	return 0;
}

int import_pass_feed(struct import_pass *p, const void *buf, size_t len, struct errbuf *eb)
{
	if (p->finished)
		return -EINVAL;
	p->eb = eb;
	p->source_bytes += len;
	int err = decomp_feed(p->decomp, buf, len, eb);
	p->eb = NULL;
	return err;
}

int import_pass_finish(struct import_pass *p, struct import_result *res, struct import_info *info,
		       struct errbuf *eb)
{
	struct errbuf trunc = { { 0 } }, cut = { { 0 } };
	char cut_and_trunc[sizeof(cut.msg) + sizeof(trunc.msg) + 2];
	p->eb = eb;
	int err = decomp_finish(p->decomp, &cut);
	bool stream_cut = err == DECOMP_CUT;
	if (err < 0)
		errbuf_set(eb, err, "%s", cut.msg);
	else
		err = pass_flush(p);
	p->eb = NULL;
	if (!err) {
		err = capfile_finish(p->capfile, &trunc);
		if (err < 0 && stream_cut) /* e.g. nothing came out before the cut */
			errbuf_set(eb, err, "%s; %s", cut.msg, trunc.msg);
		else if (err < 0)
			errbuf_set(eb, err, "%s", trunc.msg);
	}
	/* A compressed file cut short is a truncated capture: its packets
	 * up to the cut are kept, and the cut is reported. */
	const char *truncation = err == CAPFILE_TRUNCATED ? trunc.msg : NULL;
	if (stream_cut && err >= 0) {
		snprintf(cut_and_trunc, sizeof(cut_and_trunc), "%s%s%s", cut.msg,
			 truncation ? "; " : "", truncation ? truncation : "");
		truncation = cut_and_trunc;
	}
	if (err < 0) {
		p->ops->abort(p->job);
		p->job = NULL;
		p->finished = true;
		return err;
	}
	struct import_info local = {
		.summary = *capfile_summary(p->capfile),
		.compression = decomp_kind(p->decomp),
		.source_bytes = p->source_bytes,
		.capture_bytes = decomp_bytes_out(p->decomp),
		.truncation = truncation,
	};
	local.summary.truncated |= stream_cut;
	memset(res, 0, sizeof(*res));
	err = p->ops->commit(p->job, &local, res, eb);
	p->job = NULL;
	p->finished = true;
	if (info) {
		*info = local;
		info->truncation = NULL; /* trunc is local to this call */
	}
	return err;
}

struct import_pass *import_pass_free(struct import_pass *p)
{
	if (!p)
		return NULL;
	if (p->job)
		p->ops->abort(p->job);
	capfile_free(p->capfile);
	decomp_free(p->decomp);
	free(p->gather);
	free(p);
	return NULL;
}

struct feed_ctx {
	struct import_pass *pass;
	struct errbuf *eb;
};

static int feed_chunk(void *opaque, const void *buf, size_t len)
{
	struct feed_ctx *fc = opaque;
	return import_pass_feed(fc->pass, buf, len, fc->eb);
}

int import_fd(struct ring *ring, const struct import_sink_ops *ops, void *sink, int fd,
	      const struct import_source *src, struct import_result *res,
	      struct import_info *info, struct errbuf *eb)
{
	struct import_pass *pass = NULL;
	const char *what = src->path ? src->path : src->name;
	struct import_source read = *src;
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		read.has_inode = true;
		read.dev = st.st_dev;
		read.ino = st.st_ino;
	}
	int err = import_pass_new(&pass, ops, sink, &read, eb);
	if (err)
		return err;
	struct feed_ctx fc = { .pass = pass, .eb = eb };
	errbuf_clear(eb);
	err = ring_read_stream(ring, fd, RING_CHUNK, RING_DEPTH, feed_chunk, &fc);
	if (err && eb && eb->msg[0] == '\0')
		errbuf_set(eb, err, "read: %s", strerror(-err));
	if (!err)
		err = import_pass_finish(pass, res, info, eb);
	import_pass_free(pass);
	if (err < 0 && eb) {
		char detail[sizeof(eb->msg)];
		memcpy(detail, eb->msg, sizeof(detail));
		errbuf_set(eb, err, "%s: %s", what ? what : "-", detail);
	}
	return err;
}

int import_file(struct ring *ring, const struct import_sink_ops *ops, void *sink,
		const struct import_source *src, struct import_result *res,
		struct import_info *info, struct errbuf *eb)
{
	_cleanup_close_ int fd = open(src->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return errbuf_set(eb, -errno, "%s: %s", src->path, strerror(errno));
	return import_fd(ring, ops, sink, fd, src, res, info, eb);
}
