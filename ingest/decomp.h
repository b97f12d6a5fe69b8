/*
 * decomp.h - streaming gzip/zstd detection and decompression.
 *
 * Fed the raw bytes of a file, it recognises gzip or zstd by magic bytes
 * (never by name) and passes the decompressed bytes on, in order, through
 * a callback; anything else passes through unchanged. Output is produced
 * in bounded chunks, so a compression bomb costs time, not memory.
 */
#ifndef CAPVAULT_DECOMP_H
#define CAPVAULT_DECOMP_H

#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

enum decomp_kind {
	DECOMP_UNKNOWN = 0, /* fewer than 4 bytes seen so far */
	DECOMP_NONE,
	DECOMP_GZIP,
	DECOMP_ZSTD,
};

/* Receives output bytes; nonzero stops decompression and is returned. */
typedef int (*decomp_out_fn)(void *opaque, const void *buf, size_t len);

struct decomp;

int decomp_new(struct decomp **out, decomp_out_fn on_output, void *opaque);
struct decomp *decomp_free(struct decomp *d);

/* Returns 0, -EINVAL on corrupt compressed data (eb names the input
 * offset), -ENOMEM, or what on_output returned. */
int decomp_feed(struct decomp *d, const void *buf, size_t len, struct errbuf *eb);
/* End of input: 0, or DECOMP_CUT (eb: where) when a compressed stream
 * ended early: what came out before the cut is whole (a truncated capture,
 * whose valid part an import keeps, as a cut plain file's). */
#define DECOMP_CUT 1
int decomp_finish(struct decomp *d, struct errbuf *eb);

enum decomp_kind decomp_kind(const struct decomp *d);
/* "none", "gzip", "zstd". */
const char *decomp_kind_name(enum decomp_kind kind);
uint64_t decomp_bytes_in(const struct decomp *d);
uint64_t decomp_bytes_out(const struct decomp *d);

#endif
