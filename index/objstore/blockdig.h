/*
 * blockdig.h - what is recorded of an object's blocks when it is tiered,
 * so that a range read from the object store can be checked without
 * reading the whole object.
 *
 * An object's SHA-256 checks only a read of all of it. A query or a range
 * download reads blocks (OBJCACHE_BLOCK bytes, aligned, the last one
 * shorter), so the catalog keeps something of each block: the chaining
 * states of the object's SHA-256 between blocks (below, the form used
 * now), or for objects tiered before those, a digest of each block, the
 * first OBJCACHE_DIGEST bytes of its SHA-256 (catalog.h). Neither can be
 * matched by other bytes (a second preimage).
 */
#ifndef CAPVAULT_BLOCKDIG_H
#define CAPVAULT_BLOCKDIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objcache.h"

/* The digest of one block's bytes, as objects tiered before chaining
 * states were recorded with; -ENOMEM. */
int blockdig_of(const void *buf, size_t len, uint8_t out[OBJCACHE_DIGEST]);

/* What a blockchain hands out as it goes (below). */
typedef int (*blockdig_emit_fn)(void *opaque, uint64_t first_block, const uint8_t *records,
				size_t n);

/*
 * Chaining states, the form objects are tiered with now: the object's own
 * SHA-256 runs over it once, and its state after each whole block is kept
 * (BLOCKDIG_STATE bytes: its eight words, big-endian). A block is checked
 * by running the hash from the state before it (the initial one for block
 * 0) over its bytes: any block but the last must reach the state recorded
 * after it, and the last one must finish to the object's name. Where a
 * digest of each block costs a second hash of every byte besides the
 * name's, this needs none, and a block still cannot be matched by other
 * bytes (a second preimage of the compression function).
 *
 * A blockchain hands emit the state after each whole block, per_emit at a
 * time (fewer at the end) with the number of the first block they follow;
 * an object of size bytes gets size / OBJCACHE_BLOCK of them. emit may be
 * NULL (the name's hash alone). Nonzero from emit stops and is returned by
 * the call that made it.
 */
#define BLOCKDIG_STATE 32
struct blockchain;
int blockchain_new(struct blockchain **out, size_t per_emit, blockdig_emit_fn emit,
		   void *opaque);
int blockchain_update(struct blockchain *c, const void *buf, size_t len);
/* Emits what is left and gives the whole stream's SHA-256. */
int blockchain_finish(struct blockchain *c, uint8_t whole[32]);
/* Accepts NULL; returns NULL. */
struct blockchain *blockchain_free(struct blockchain *c);

/*
 * Block number block of an object of size bytes named name, its len bytes
 * at buf, against the states around it: before, the state after the block
 * before it (NULL for block 0); after, the state after it (ignored for the
 * last block, which is checked against name). 0 when it matches, -EBADMSG
 * when not (a wrong length too).
 */
int blockchain_check(const uint8_t *before, const uint8_t *after, const uint8_t name[32],
		     uint64_t block, uint64_t size, const void *buf, size_t len);

#endif
