/*
 * objcache.h - a read-through cache, on local disk, of the bytes of
 * objects that live in an object store (objstore.h), bounded in bytes and
 * evicting the least recently used.
 *
 * It lives in <store root>/cache/, never in objects/: a cached file is
 * never taken for an object of the vault (fsck, backup, dedup and
 * retention do not see it). Two granularities:
 * - blocks of OBJCACHE_BLOCK bytes, aligned, for the byte ranges queries
 *   read, kept in one sparse file per object: a repeat query over the
 *   same packets is served locally, and a query never fetches more than a
 *   block around each candidate span;
 * - whole objects, for downloads that read an object to its end (and
 *   whose SHA-256 is then checked): a second download, and any query of
 *   that object, read the local copy.
 * What is served was written by us after a verified read: a whole object
 * only when its bytes hashed to its name (it appears under its name by
 * rename of a finished temp file), a block only with the length asked for
 * and once its bytes are written (a bitmap in its file says which are).
 * After a reboot that did not follow a clean close (the page cache may
 * have lost what was written), the cache starts empty; otherwise its
 * accounting is rebuilt from the files (recency from their mtimes, which
 * hits refresh).
 * Every call is safe from several threads at once.
 */
#ifndef CAPVAULT_OBJCACHE_H
#define CAPVAULT_OBJCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "errbuf.h"
#include "objstore.h"

struct objcache;

/* Block size of query reads: 64 KiB. Query spans are records a few KiB
 * long and up to 256 KiB of nearby ones; a block much larger would fetch
 * mostly bytes nobody asked for around each lone candidate (a selective
 * query must read far less than the object), a much smaller one would
 * make the cache millions of files. Adjacent missing blocks go out as one
 * Range GET (the backend merges them). */
#define OBJCACHE_BLOCK (64u * 1024)

/*
 * What a block fetched from the store must match (blockdig.h): fn gives
 * the digest recorded for block number block of object sha when it was
 * tiered: 0, -ENOENT when none was (an object tiered before digests were
 * kept: its blocks are served unchecked, and counted), or another
 * negative errno, which fails the read. A block that does not match is
 * neither served nor cached: the read fails with -EBADMSG, eb naming the
 * block. Set once, before the first read; without it nothing is checked.
 */
#define OBJCACHE_DIGEST 16
typedef int (*objcache_digest_fn)(void *opaque, const uint8_t sha[32], uint64_t block,
				  uint8_t digest[OBJCACHE_DIGEST]);
void objcache_set_digests(struct objcache *c, objcache_digest_fn fn, void *opaque);

/*
 * Opens (creating as needed) the cache in <root>/cache, bounded by
 * max_bytes (0: nothing is cached, every read goes to the store). Evicts
 * down to max_bytes at once. Returns 0 or a negative errno (eb).
 */
int objcache_open(struct objcache **out, const char *root, uint64_t max_bytes,
		  struct errbuf *eb);
/* Marks the cache as closed cleanly (after writing the blocks that wait
 * for its writer thread, and syncing); accepts NULL. */
struct objcache *objcache_free(struct objcache *c);

/* Returns once every block queued for the cache's writer thread is on
 * disk. A block the writer cannot take (its queue full, or no thread) is
 * written by the reading thread before its read returns, so after the
 * reads a caller made, all their blocks are there. Only for looking at the
 * files: reads wait for the blocks they need. */
void objcache_flush(struct objcache *c);

/*
 * Fills the ranges of object sha (size bytes) from cached blocks or the
 * whole cached object, fetching the missing blocks from os with one
 * objstore_read_ranges call per batch (so the backend merges adjacent
 * blocks and keeps several requests in flight) and caching them. Memory
 * beyond the callers' buffers: at most OBJCACHE_BATCH blocks. Ranges past
 * size are an error (-EIO). *fetched (may be NULL) grows by the bytes the
 * store sent. Returns 0 or the first error: the store's errors pass
 * through unchanged, with eb; -EBADMSG for a fetched block that does not
 * match its digest (objcache_set_digests).
 */
#define OBJCACHE_BATCH 64
int objcache_read_ranges(struct objcache *c, struct objstore *os, const uint8_t sha[32],
			 uint64_t size, struct objstore_range *r, size_t n, uint64_t *fetched,
			 struct errbuf *eb);

/*
 * Streams the whole object (size bytes) to fn: from the cached copy when
 * there is one, else from os (objstore_read_stream), keeping a copy that
 * is cached once the whole object has been read and hashed to its name
 * (only when it takes at most a quarter of the cache: one download must
 * not flush what queries use). Every byte is hashed, wherever it comes
 * from, and the last OBJCACHE_HOLD_BACK bytes reach fn only once the
 * SHA-256 matches the object's name: otherwise -EBADMSG (eb names the
 * store or the cache file), so fn never sees the whole of bytes that are
 * not the object. A cached copy that fails the check is removed; when fn
 * had been given none of its bytes (objects up to OBJCACHE_HOLD_BACK) the
 * object is read from the store instead. Nonzero from fn stops and is
 * returned.
 */
#define OBJCACHE_HOLD_BACK (64u * 1024)
int objcache_read_stream(struct objcache *c, struct objstore *os, const uint8_t sha[32],
			 uint64_t size, objstore_data_fn fn, void *opaque, struct errbuf *eb);

/*
 * Forgets every cached block (its pack file too) and the whole copy of
 * object sha: for when they can no longer be trusted (the object was
 * removed from the store, or found corrupt there). Readers that were
 * reading them meanwhile take a forgotten block for a miss. Blocks or a
 * whole copy whose fetch is in flight at the time may still be cached
 * after it (a whole copy only if it hashes to its name). Accepts NULL
 * (no cache).
 */
void objcache_forget(struct objcache *c, const uint8_t sha[32]);

/* True when the whole object is cached (a download will not touch the
 * store). */
bool objcache_has_object(struct objcache *c, const uint8_t sha[32]);

struct objcache_stats {
	uint64_t max_bytes;
	uint64_t bytes, files;             /* held now */
	uint64_t hits, misses;             /* blocks or whole objects read from the cache / the store */
	uint64_t hit_bytes, miss_bytes;
	uint64_t evictions, evicted_bytes;
	uint64_t remote_reads, remote_errors; /* requests to the store (read_ranges / read_stream calls) */
	uint64_t corrupt; /* whole objects, from the store or the cache, that failed their
			   * SHA-256, and fetched blocks that failed their digest */
	uint64_t unchecked; /* fetched blocks with no digest recorded to check them */
	uint64_t remote_seconds_le[8];     /* remote reads that took at most objcache_latency_bounds[i] */
	double remote_seconds_sum;
};
/* Upper bounds (seconds) of the remote read latency histogram's buckets. */
extern const double objcache_latency_bounds[8];
void objcache_get_stats(struct objcache *c, struct objcache_stats *out);

/* Evicts from now on as on a file system without hole punching, where
 * evicting a block removes its object's whole pack (for tests). */
void objcache_without_punch(struct objcache *c);

#endif
