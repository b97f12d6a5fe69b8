/*
 * blockdig.h - digests of an object's blocks, so that a range read from
 * the object store can be checked without reading the whole object.
 *
 * An object's SHA-256 checks only a read of all of it. A query or a range
 * download reads blocks (OBJCACHE_BLOCK bytes, aligned, the last one
 * shorter), so each block gets a digest of its own when the object is
 * tiered, kept in the catalog (catalog_block_digests_put): the first
 * OBJCACHE_DIGEST bytes of the block's SHA-256. Truncated to 128 bits, a
 * digest still cannot be matched by other bytes (a second preimage), and
 * it keeps them at 1/4096 of the object's size.
 */
#ifndef CAPVAULT_BLOCKDIG_H
#define CAPVAULT_BLOCKDIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objcache.h"

struct blockdig;

/* The digest of one block's bytes; -ENOMEM. */
int blockdig_of(const void *buf, size_t len, uint8_t out[OBJCACHE_DIGEST]);

/*
 * Digests of a stream of an object's bytes from its start, handed to emit
 * per_emit at a time (fewer at the end) with the number of the first
 * block they are of, and with whole the SHA-256 of the whole stream
 * (digests are only worth keeping once the bytes they were made from are
 * known to be the object's; without it, one hash of each byte instead of
 * two). Memory: per_emit digests. Nonzero from emit stops and is returned
 * by the call that made it.
 */
typedef int (*blockdig_emit_fn)(void *opaque, uint64_t first_block, const uint8_t *digests,
				size_t n);
int blockdig_new(struct blockdig **out, size_t per_emit, bool whole, blockdig_emit_fn emit,
		 void *opaque);
int blockdig_update(struct blockdig *d, const void *buf, size_t len);
/* Digests the last, shorter block, emits what is left, and gives the
 * whole stream's SHA-256 (when asked for at blockdig_new; whole may then
 * be NULL otherwise). */
int blockdig_finish(struct blockdig *d, uint8_t whole[32]);
/* Accepts NULL; returns NULL. */
struct blockdig *blockdig_free(struct blockdig *d);

#endif
