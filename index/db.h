/*
 * db.h - the RocksDB wrapper; the only file that includes <rocksdb/c.h>.
 *
 * One database under <store>/index with a fixed set of column families.
 * Keys are big-endian so that ranges scan in order. Writes go through
 * batches; a batch written with sync is durable when db_write returns.
 *
 * Column families and key schema:
 *   captures  id(u64)                          -> capture record (JSON)
 *   objects   sha256(32)                       -> object record (JSON: size, refs)
 *   tags      tag bytes, 0x00, id(u64)         -> empty
 *   time      earliest_ts_ns(i64 with its sign
 *             bit flipped), id(u64)            -> empty
 *   bysha     sha256(32), id(u64)              -> empty
 *   meta      ASCII name                       -> value ("next_id" -> u64)
 *   flows, postings, tindex, contexts,
 *   objterms                                   -> the packet index (index/pindex.h)
 */
#ifndef CAPVAULT_DB_H
#define CAPVAULT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

enum db_cf {
	DB_CF_DEFAULT = 0,
	DB_CF_CAPTURES,
	DB_CF_OBJECTS,
	DB_CF_TAGS,
	DB_CF_TIME,
	DB_CF_BYSHA,
	DB_CF_META,
	DB_CF_FLOWS,
	DB_CF_POSTINGS,
	DB_CF_TINDEX,
	DB_CF_CONTEXTS,
	DB_CF_OBJTERMS,
	DB_CF_COUNT,
};

struct db;
struct db_batch;
struct db_iter;

/*
 * Opens (creating if missing) the database in dir. Returns 0; -EBUSY when
 * another process holds it (eb: "... is in use by another process"); or
 * another negative errno with eb holding RocksDB's message.
 */
int db_open(struct db **out, const char *dir, struct errbuf *eb);
struct db *db_close(struct db *db);
/* Whether dir holds one of our databases, without opening or creating
 * anything: 1 (a RocksDB with our captures and objects families), 0 (no
 * database: no CURRENT), -EINVAL (a database that is not ours, or that
 * cannot be read) or another negative errno. */
int db_probe(const char *dir);

/* Returns 0 with a malloc'd copy in *val (caller frees), -ENOENT, or -EIO. */
int db_get(struct db *db, enum db_cf cf, const void *key, size_t klen, void **val, size_t *vlen);

int db_batch_new(struct db_batch **out);
struct db_batch *db_batch_free(struct db_batch *b);
void db_batch_put(struct db_batch *b, enum db_cf cf, const void *key, size_t klen, const void *val,
		  size_t vlen);
void db_batch_delete(struct db_batch *b, enum db_cf cf, const void *key, size_t klen);
/* Deletes keys in [begin, end). */
void db_batch_delete_range(struct db_batch *b, enum db_cf cf, const void *begin, size_t blen,
			   const void *end, size_t elen);
/* Appends every operation of src to dst, in order, and empties src (whose
 * buffer dst takes over when it is empty itself). */
void db_batch_move(struct db_batch *dst, struct db_batch *src);
size_t db_batch_bytes(const struct db_batch *b);
/* Applies the batch atomically; sync makes it durable before returning.
 * Returns 0 or -EIO (eb has RocksDB's message; -ENOSPC when disk full). */
int db_write(struct db *db, struct db_batch *b, bool sync, struct errbuf *eb);

/* Iterators see a consistent snapshot taken at creation. */
int db_iter_new(struct db *db, enum db_cf cf, struct db_iter **out);
/* The same for a short read that is done again and again (a page of a
 * listing): its blocks stay in the block cache, which a whole-catalog
 * scan from db_iter_new does not fill. */
int db_iter_new_short(struct db *db, enum db_cf cf, struct db_iter **out);
struct db_iter *db_iter_free(struct db_iter *it);
void db_iter_seek(struct db_iter *it, const void *key, size_t klen);
void db_iter_seek_first(struct db_iter *it);
void db_iter_seek_last(struct db_iter *it);
/* Positions at the last key <= key. */
void db_iter_seek_for_prev(struct db_iter *it, const void *key, size_t klen);
bool db_iter_valid(const struct db_iter *it);
void db_iter_next(struct db_iter *it);
void db_iter_prev(struct db_iter *it);
const void *db_iter_key(const struct db_iter *it, size_t *klen);
const void *db_iter_value(const struct db_iter *it, size_t *vlen);

/* Approximate on-disk bytes of a column family (live SST files). */
uint64_t db_cf_size(struct db *db, enum db_cf cf);
/* Approximate on-disk bytes of the key range [begin, end) in cf. */
uint64_t db_range_size(struct db *db, enum db_cf cf, const void *begin, size_t blen,
		       const void *end, size_t elen);
/* RocksDB's memory now: the shared block cache's bytes in use and its
 * capacity, and every family's memtables (mutable and not yet flushed). */
struct db_memory {
	uint64_t block_cache_bytes, block_cache_capacity, memtable_bytes;
};
void db_memory(struct db *db, struct db_memory *out);
/* Writes a consistent copy (checkpoint) of the database into dir. */
int db_checkpoint(struct db *db, const char *dir, struct errbuf *eb);

/* Big-endian helpers for keys. */
static inline void be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t be64_get(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void be32_put(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

#endif
