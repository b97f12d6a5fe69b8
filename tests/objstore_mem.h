/*
 * objstore_mem.h - an in-memory object store backend for unit tests: the
 * objstore.h contract (put confirms, keys named by SHA-256, strays) with
 * faults on demand.
 */
#ifndef CAPVAULT_TEST_OBJSTORE_MEM_H
#define CAPVAULT_TEST_OBJSTORE_MEM_H

#include <stdint.h>

#include "objstore.h"

int objstore_mem_new(struct objstore **out);
/* The next n puts (any object) fail with err. */
void objstore_mem_fail_puts(struct objstore *os, unsigned n, int err);
/* The next n stats fail with err. */
void objstore_mem_fail_stats(struct objstore *os, unsigned n, int err);
/* The next n removals fail with err. */
void objstore_mem_fail_removes(struct objstore *os, unsigned n, int err);
/* Replaces the stored bytes of sha by len bytes of buf (a tampered or
 * stray object); sha NULL adds a stray key. */
void objstore_mem_set(struct objstore *os, const uint8_t *sha, const char *key,
		      const void *buf, size_t len);
/* fn(opaque) runs at the start of each put (once set), as something
 * else happening while the bytes are on their way; NULL: none. */
void objstore_mem_on_put(struct objstore *os, void (*fn)(void *opaque), void *opaque);
/* Puts of more than size bytes hand out their chaining states, as S3's
 * multipart uploads do (objstore_put_chained); 0, the default: none. */
void objstore_mem_chain_above(struct objstore *os, uint64_t size);
/* Whether sha is stored; how many objects are. */
int objstore_mem_has(struct objstore *os, const uint8_t sha[32]);
unsigned objstore_mem_count(struct objstore *os);

#endif
