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
 * Besides its bound in bytes, the cache can keep a floor of free space on
 * its file system (objcache_set_keep_free): its bytes can be fetched
 * again, the vault's captures and index beside them cannot, so it gives
 * way first.
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
 * What a block fetched from the store must match (blockdig.h): fn checks
 * block number block of object sha (size bytes), its len bytes at buf,
 * against what was recorded when it was tiered: 0 when it matches,
 * -EBADMSG when not, -ENOENT when nothing was (an object tiered before
 * blocks were recorded: its blocks are served unchecked, and counted), or
 * another negative errno, which fails the read. A block that does not
 * match is neither served nor cached: the read fails with -EBADMSG, eb
 * naming the block. Cached blocks and whole copies found at open are
 * checked the same way before a range read first serves them (blocks
 * once, whole copies at each read): one that does not match (changed on
 * disk) is removed, counted corrupt, told to the notice function, and
 * read from the store instead. What this cache stored itself was checked
 * then and is served as it is. Set once, before the first read; without
 * it nothing is checked.
 */
#define OBJCACHE_DIGEST 16
typedef int (*objcache_check_fn)(void *opaque, const uint8_t sha[32], uint64_t size,
				 uint64_t block, const void *buf, size_t len);
void objcache_set_check(struct objcache *c, objcache_check_fn fn, void *opaque);

/*
 * Told of what went wrong but was mended on the way, for the operator's
 * log: a cached copy that no longer hashed to its object and was removed,
 * the read then served from the store. msg names the cache file and the
 * object. Set once, before the first read; without it such reads stay
 * silent (the corrupt count of objcache_get_stats still counts them).
 */
typedef void (*objcache_notice_fn)(void *opaque, const char *msg);
void objcache_set_notice(struct objcache *c, objcache_notice_fn fn, void *opaque);

/*
 * Opens (creating as needed) the cache in <root>/cache, bounded by
 * max_bytes (0: nothing is cached, every read goes to the store). Evicts
 * down to max_bytes at once. Returns 0 or a negative errno (eb).
 */
int objcache_open(struct objcache **out, const char *root, uint64_t max_bytes,
		  struct errbuf *eb);
/*
 * Keeps at least keep_free bytes free on the cache's file system (0: no
 * floor, the default): a block or a whole copy is cached only once the
 * least recently used entries made room for it above the floor, and
 * nothing is cached when even an empty cache could not respect it (reads
 * are served all the same). Blocks fetched but not yet written, and whole
 * copies being downloaded, count as taken. The free space is looked at
 * (fstatvfs) at most once per OBJCACHE_STATFS_BYTES of blocks cached or
 * per second, and before each whole copy is downloaded;
 * in between the cache counts what it writes and frees, rounding what it
 * writes up, so it errs toward more free space. Looks at the free space
 * now; evicts only at the next admission or objcache_trim.
 */
#define OBJCACHE_STATFS_BYTES (1u << 20)
void objcache_set_keep_free(struct objcache *c, uint64_t keep_free);

/*
 * Looks at the free space now and evicts, least recently used first,
 * until the file system has the floor free and want_free bytes too (or
 * the cache is empty): for a caller about to refuse work, or to remove a
 * capture, for lack of space. Returns the bytes evicted. Accepts NULL
 * (no cache: 0).
 */
uint64_t objcache_trim(struct objcache *c, uint64_t want_free);

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
 * match what its move recorded (objcache_set_check).
 */
#define OBJCACHE_BATCH 64
int objcache_read_ranges(struct objcache *c, struct objstore *os, const uint8_t sha[32],
			 uint64_t size, struct objstore_range *r, size_t n, uint64_t *fetched,
			 struct errbuf *eb);

/*
 * As objcache_read_ranges (cached blocks served, fetched ones checked
 * against their digests), but what it fetches is not cached: for reads
 * that go through a whole object or a long range once (merges, reindex,
 * annotated and Range downloads), which must not flush the blocks queries
 * use.
 */
int objcache_read_through(struct objcache *c, struct objstore *os, const uint8_t sha[32],
			  uint64_t size, struct objstore_range *r, size_t n, struct errbuf *eb);

/*
 * Streams the whole object (size bytes) to fn: from the cached copy when
 * there is one, else from os (objstore_read_stream), keeping a copy that
 * is cached once the whole object has been read and hashed to its name
 * (only when it takes at most a quarter of what the cache may hold,
 * limit_bytes: one download must not flush what queries use, and its
 * room above the free-space floor is made before it is downloaded).
 * Every byte is checked, wherever it comes from: each block against its
 * record (objcache_set_check) before it reaches fn, and the last block
 * (OBJCACHE_HOLD_BACK) only once the whole SHA-256 matches the object's
 * name: otherwise -EBADMSG (eb names the store or the cache file, and the
 * block), so fn never sees a block that is not the object's, nor the
 * whole of bytes that are not the object. A cached copy that fails a
 * check is removed; when fn had been given none of its bytes the object
 * is read from the store instead. Nonzero from fn stops and is returned.
 */
#define OBJCACHE_HOLD_BACK OBJCACHE_BLOCK
int objcache_read_stream(struct objcache *c, struct objstore *os, const uint8_t sha[32],
			 uint64_t size, objstore_data_fn fn, void *opaque, struct errbuf *eb);

/*
 * Forgets every cached block (its pack file too) and the whole copy of
 * object sha: for when they can no longer be trusted (the object was
 * removed from the store, or found corrupt there). Readers that were
 * reading them meanwhile take a forgotten block for a miss, and what
 * reads of it in flight at the time fetch from the store is served but
 * not cached (nor, when more than 64 objects were forgotten during a
 * read, what that read fetched of any), so a download racing the removal
 * of its object leaves no copy behind.
 * Accepts NULL (no cache).
 */
void objcache_forget(struct objcache *c, const uint8_t sha[32]);

/* True when the whole object is cached (a download will not touch the
 * store). */
bool objcache_has_object(struct objcache *c, const uint8_t sha[32]);

struct objcache_stats {
	uint64_t max_bytes;
	uint64_t keep_free;   /* objcache_set_keep_free's floor, 0 when none */
	uint64_t limit_bytes; /* what it may hold now: max_bytes, or less when the free
			       * space above keep_free allows less (as last looked at) */
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

/* Takes the free space of the cache's file system from fn instead of
 * fstatvfs (for tests: a file system of a given size without a mount). fn
 * is called with the cache's lock held and must not call the cache; it
 * returns 0 or a negative errno. */
typedef int (*objcache_statfs_fn)(void *opaque, uint64_t *free_bytes);
void objcache_set_statfs_for_tests(struct objcache *c, objcache_statfs_fn fn, void *opaque);

#endif
