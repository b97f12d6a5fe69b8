/*
 * db.c - the RocksDB wrapper, the only file that includes <rocksdb/c.h>.
 *
 * Promises: the database opens with every column family of db.h, creating
 * the missing ones (an older store gains new families on open) and keeping
 * unknown ones it finds (a newer store still opens). A store locked by
 * another process, or by another handle in this process, is -EBUSY at
 * once, never a wait. Memory stays bounded: one shared 64 MiB block cache
 * that also holds index and filter blocks, write buffers of 32 MiB in all
 * (a rarely written family is flushed after 16 MiB of WAL), a bounded
 * number of open files. A batch is applied atomically across families.
 *
 * A batch is a private log of operations, not a rocksdb_writebatch_t,
 * because RocksDB wants a column family handle for each operation and a
 * handle belongs to one open database, which db_batch_new does not know.
 * db_write turns the log into a RocksDB batch for the database it is
 * given.
 */
#include "db.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "cleanup.h"

#define DB_BLOCK_CACHE_BYTES (64u << 20)
#define DB_WRITE_BUFFER_BYTES (8u << 20)
#define DB_TOTAL_WRITE_BUFFER_BYTES (32u << 20)
/* A family written rarely (captures, objects, tags, time, ...) never fills
 * its write buffer; capping the live WAL flushes it once this much has
 * been written after its oldest entry, instead of holding its memtable
 * for hours. */
#define DB_MAX_WAL_BYTES (16u << 20)
/* Every family with a non-empty memtable holds at least one arena block
 * (by default write buffer / 8 = 1 MiB): eleven of them add up. */
#define DB_ARENA_BLOCK_BYTES (256u << 10)
#define DB_MAX_OPEN_FILES 512
#define DB_BLOOM_BITS_PER_KEY 10.0

static const char *const cf_names[DB_CF_COUNT] = {
	[DB_CF_DEFAULT] = "default", [DB_CF_CAPTURES] = "captures", [DB_CF_OBJECTS] = "objects",
	[DB_CF_TAGS] = "tags",       [DB_CF_TIME] = "time",         [DB_CF_BYSHA] = "bysha",
	[DB_CF_META] = "meta",       [DB_CF_FLOWS] = "flows",       [DB_CF_POSTINGS] = "postings",
	[DB_CF_TINDEX] = "tindex",   [DB_CF_CONTEXTS] = "contexts", [DB_CF_OBJTERMS] = "objterms",
};

struct db {
	rocksdb_t *rdb;
	rocksdb_options_t *opts, *catalog_opts;
	rocksdb_block_based_table_options_t *table, *catalog_table;
	rocksdb_cache_t *cache;
	rocksdb_writeoptions_t *wo_sync, *wo_async;
	rocksdb_readoptions_t *ro;
	rocksdb_column_family_handle_t *cf[DB_CF_COUNT];
	/* Families found on disk that this version does not know. */
	rocksdb_column_family_handle_t **extra;
	size_t nextra;
};

enum batch_op { BATCH_PUT = 1, BATCH_DELETE, BATCH_DELETE_RANGE };

/* One operation in the log: header, then key (or begin), then value
 * (or end). */
struct batch_hdr {
	uint8_t op;
	uint8_t cf;
	uint32_t alen;
	uint32_t blen;
};

struct db_batch {
	uint8_t *buf;
	size_t len, cap;
	bool oom; /* an append failed; db_write refuses the batch */
};

struct db_iter {
	rocksdb_readoptions_t *ro;
	rocksdb_iterator_t *it;
};

/* RocksDB reports its LOCK file held by another process as EAGAIN
 * ("Resource temporarily unavailable") and held by this process as
 * "lock hold by current process ... No locks available". */
static bool is_lock_error(const char *msg)
{
	return strstr(msg, "Resource temporarily unavailable") || strstr(msg, "No locks available") ||
	       strstr(msg, "lock hold by current process") || strstr(msg, "/LOCK:");
}

/* The process that holds RocksDB's LOCK file (a POSIX record lock), and
 * its name; 0 when unknown. Only for a lock held by another process: a
 * process loses its own POSIX locks on a file when it closes any
 * descriptor of it, as this does. */
static pid_t lock_holder(const char *dir, char *name, size_t size)
{
	char path[PATH_MAX];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	snprintf(name, size, "?");
	if (snprintf(path, sizeof(path), "%s/LOCK", dir) >= (int)sizeof(path))
		return 0;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK || fl.l_pid <= 0)
		return 0;
	if (snprintf(path, sizeof(path), "/proc/%d/comm", (int)fl.l_pid) < (int)sizeof(path)) {
		FILE *f = fopen(path, "re");
		if (f && fgets(name, (int)size, f))
			name[strcspn(name, "\n")] = '\0';
		if (f)
			fclose(f);
	}
	return fl.l_pid;
}

/* Maps a RocksDB error string to an errno, fills eb and frees msg. */
static int db_error(struct errbuf *eb, char *msg, const char *dir, const char *what)
{
	int err = -EIO;
	char name[64];

	if (is_lock_error(msg)) {
		/* Looked up only when another process holds it (see lock_holder). */
		pid_t holder = strstr(msg, "Resource temporarily unavailable") ?
				       lock_holder(dir, name, sizeof(name)) : 0;
		err = -EBUSY;
		if (holder > 0)
			errbuf_set(eb, err,
				   "store %s is in use by another process: %s/LOCK is held by process %d (%s)",
				   dir, dir, (int)holder, name);
		else
			errbuf_set(eb, err,
				   "store %s is in use by another process (is capvaultd running?)", dir);
	} else {
		if (strstr(msg, "No space left"))
			err = -ENOSPC;
		else if (strstr(msg, "Permission denied"))
			err = -EACCES;
		errbuf_set(eb, err, "%s %s: %s", what, dir, msg);
	}
	rocksdb_free(msg);
	return err;
}

static rocksdb_block_based_table_options_t *table_options_new(struct db *db, size_t block_size)
{
	rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_size(t, block_size);
	rocksdb_block_based_options_set_block_cache(t, db->cache);
	/* Index and filter blocks live in the cache, so the cache bounds them. */
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
	rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);
	/* Postings and flows are looked up by key; a bloom filter skips SST
	 * files that cannot hold the key. The table takes ownership. */
	rocksdb_block_based_options_set_filter_policy(
		t, rocksdb_filterpolicy_create_bloom_full(DB_BLOOM_BITS_PER_KEY));
	rocksdb_block_based_options_set_format_version(t, 5);
	return t;
}

static void db_options_init(struct db *db)
{
	rocksdb_options_t *o = rocksdb_options_create();
	db->cache = rocksdb_cache_create_lru(DB_BLOCK_CACHE_BYTES);
	rocksdb_block_based_table_options_t *t = table_options_new(db, 4096);
	rocksdb_options_set_block_based_table_factory(o, t);

	rocksdb_options_set_create_if_missing(o, 1);
	rocksdb_options_set_create_missing_column_families(o, 1);
	/* The Debian build links lz4 and zstd: lz4 is cheap for hot levels,
	 * zstd squeezes the bottom level, where most bytes end up. */
	rocksdb_options_set_compression(o, rocksdb_lz4_compression);
	rocksdb_options_set_bottommost_compression(o, rocksdb_zstd_compression);
	rocksdb_options_set_write_buffer_size(o, DB_WRITE_BUFFER_BYTES);
	rocksdb_options_set_db_write_buffer_size(o, DB_TOTAL_WRITE_BUFFER_BYTES);
	rocksdb_options_set_max_total_wal_size(o, DB_MAX_WAL_BYTES);
	rocksdb_options_set_arena_block_size(o, DB_ARENA_BLOCK_BYTES);
	rocksdb_options_set_max_open_files(o, DB_MAX_OPEN_FILES);
	rocksdb_options_set_max_background_jobs(o, 4);
	rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
	/* Errors only in RocksDB's info LOG: fewer writes there means fewer
	 * chances for its assert-on-second-failed-write to abort us on a full
	 * disk (Debian builds RocksDB with assertions on). */
	rocksdb_options_set_info_log_level(o, 3);
	/* The MANIFEST grows slowly here (one entry per flush or compaction):
	 * preallocating RocksDB's default 4 MiB only takes room from a small
	 * store. */
	rocksdb_options_set_manifest_preallocation_size(o, 64u << 10);
	rocksdb_options_set_keep_log_file_num(o, 4);
	rocksdb_options_set_max_log_file_size(o, 4u << 20);
	db->opts = o;
	db->table = t;
	/* Capture records are 1-2 KiB and read in pages of 50 in id order: in
	 * 4 KiB blocks a page crossed some 20 blocks, a block-cache lookup
	 * each (a third of the CPU of listing); 32 KiB blocks hold most of
	 * a page. */
	db->catalog_opts = rocksdb_options_create_copy(o);
	db->catalog_table = table_options_new(db, 32u << 10);
	rocksdb_options_set_block_based_table_factory(db->catalog_opts, db->catalog_table);
}

/* Names to open: ours, then any family on disk we do not know (RocksDB
 * refuses to open a database without all of its families). */
static int db_cf_list(struct db *db, const char *dir, const char ***names, size_t *n,
		      char ***disk, size_t *ndisk)
{
	char *err = NULL;
	*disk = rocksdb_list_column_families(db->opts, dir, ndisk, &err);
	if (err) { /* a new database has no families yet */
		rocksdb_free(err);
		/* The list is allocated even on error. */
		rocksdb_list_column_families_destroy(*disk, 0);
		*disk = NULL;
		*ndisk = 0;
	}
	*names = calloc(DB_CF_COUNT + *ndisk, sizeof(**names));
	if (!*names)
		return -ENOMEM;
	memcpy(*names, cf_names, sizeof(cf_names));
	*n = DB_CF_COUNT;
	for (size_t i = 0; i < *ndisk; i++) {
		bool known = false;
		for (size_t j = 0; j < DB_CF_COUNT; j++)
			known |= strcmp((*disk)[i], cf_names[j]) == 0;
		if (!known)
			(*names)[(*n)++] = (*disk)[i];
	}
	return 0;
}

static int db_open_families(struct db *db, const char *dir, struct errbuf *eb)
{
	const char **names = NULL;
	char **disk = NULL;
	size_t n = 0, ndisk = 0;
	int r = db_cf_list(db, dir, &names, &n, &disk, &ndisk);
	_cleanup_free_ const rocksdb_options_t **opts = calloc(n ? n : 1, sizeof(*opts));
	_cleanup_free_ rocksdb_column_family_handle_t **h = calloc(n ? n : 1, sizeof(*h));
	char *err = NULL;

	if (r == 0 && (!opts || !h))
		r = -ENOMEM;
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		opts[i] = i == DB_CF_CAPTURES ? db->catalog_opts : db->opts;
	db->rdb = rocksdb_open_column_families(db->opts, dir, (int)n, names, opts, h, &err);
	if (err) {
		r = db_error(eb, err, dir, "cannot open database");
		goto out;
	}
	memcpy(db->cf, h, sizeof(db->cf));
	db->nextra = n - DB_CF_COUNT;
	if (db->nextra) {
		db->extra = calloc(db->nextra, sizeof(*db->extra));
		if (!db->extra) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(db->extra, h + DB_CF_COUNT, db->nextra * sizeof(*h));
	}
out:
	free(names);
	if (disk)
		rocksdb_list_column_families_destroy(disk, ndisk);
	return r;
}

int db_probe(const char *dir)
{
	char current[PATH_MAX];
	char *err = NULL;
	size_t n = 0;
	int found = 0;
	if (snprintf(current, sizeof(current), "%s/CURRENT", dir) >= (int)sizeof(current))
		return -ENAMETOOLONG;
	if (access(current, F_OK) < 0)
		return errno == ENOENT ? 0 : -errno;
	rocksdb_options_t *o = rocksdb_options_create();
	char **names = rocksdb_list_column_families(o, dir, &n, &err);
	rocksdb_options_destroy(o);
	if (err) {
		rocksdb_free(err);
		rocksdb_list_column_families_destroy(names, 0);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		found += !strcmp(names[i], cf_names[DB_CF_CAPTURES]) ||
			 !strcmp(names[i], cf_names[DB_CF_OBJECTS]);
	rocksdb_list_column_families_destroy(names, n);
	return found == 2 ? 1 : -EINVAL;
}

int db_open(struct db **out, const char *dir, struct errbuf *eb)
{
	struct db *db = calloc(1, sizeof(*db));
	int r;

	errbuf_clear(eb);
	if (!db)
		return -ENOMEM;
	db_options_init(db);
	db->wo_sync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(db->wo_sync, 1);
	db->wo_async = rocksdb_writeoptions_create();
	db->ro = rocksdb_readoptions_create();
	r = db_open_families(db, dir, eb);
	if (r < 0) {
		db_close(db);
		return r;
	}
	*out = db;
	return 0;
}

struct db *db_close(struct db *db)
{
	if (!db)
		return NULL;
	/* Handles go before the database; a NULL handle means the open failed. */
	for (size_t i = 0; i < DB_CF_COUNT; i++)
		if (db->cf[i])
			rocksdb_column_family_handle_destroy(db->cf[i]);
	for (size_t i = 0; i < db->nextra; i++)
		if (db->extra[i])
			rocksdb_column_family_handle_destroy(db->extra[i]);
	free(db->extra);
	/* Background work stops first (waited for): a compaction finishing
	 * during the close could otherwise schedule another one that nothing
	 * runs or frees (LeakSanitizer saw its 24-byte argument at exit). */
	if (db->rdb)
		rocksdb_cancel_all_background_work(db->rdb, 1);
	if (db->rdb)
		rocksdb_close(db->rdb);
	rocksdb_readoptions_destroy(db->ro);
	rocksdb_writeoptions_destroy(db->wo_async);
	rocksdb_writeoptions_destroy(db->wo_sync);
	rocksdb_options_destroy(db->opts);
	rocksdb_options_destroy(db->catalog_opts);
	rocksdb_block_based_options_destroy(db->table);
	rocksdb_block_based_options_destroy(db->catalog_table);
	rocksdb_cache_destroy(db->cache);
	free(db);
	return NULL;
}

int db_get(struct db *db, enum db_cf cf, const void *key, size_t klen, void **val, size_t *vlen)
{
	char *err = NULL;
	rocksdb_pinnableslice_t *ps =
		rocksdb_get_pinned_cf(db->rdb, db->ro, db->cf[cf], key, klen, &err);
	size_t len = 0;
	const char *p;
	char *copy;

	if (err) {
		rocksdb_free(err);
		return -EIO;
	}
	if (!ps)
		return -ENOENT;
	p = rocksdb_pinnableslice_value(ps, &len);
	/* NUL-terminated so JSON and text values can be used in place. */
	copy = malloc(len + 1);
	if (copy) {
		memcpy(copy, p, len);
		copy[len] = '\0';
	}
	rocksdb_pinnableslice_destroy(ps);
	if (!copy)
		return -ENOMEM;
	*val = copy;
	*vlen = len;
	return 0;
}

int db_batch_new(struct db_batch **out)
{
	struct db_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	*out = b;
	return 0;
}

struct db_batch *db_batch_free(struct db_batch *b)
{
	if (b) {
		free(b->buf);
		free(b);
	}
	return NULL;
}

static void batch_append(struct db_batch *b, enum batch_op op, enum db_cf cf, const void *a,
			 size_t alen, const void *bb, size_t blen)
{
	struct batch_hdr h = { .op = op, .cf = cf, .alen = (uint32_t)alen, .blen = (uint32_t)blen };
	size_t need = sizeof(h) + alen + blen;

	if (b->oom || alen > UINT32_MAX || blen > UINT32_MAX) {
		b->oom = true;
		return;
	}
	if (b->cap - b->len < need) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < need)
			cap *= 2;
		uint8_t *nb = realloc(b->buf, cap);
		if (!nb) {
			b->oom = true;
			return;
		}
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, &h, sizeof(h));
	if (alen)
		memcpy(b->buf + b->len + sizeof(h), a, alen);
	if (blen)
		memcpy(b->buf + b->len + sizeof(h) + alen, bb, blen);
	b->len += need;
}

void db_batch_put(struct db_batch *b, enum db_cf cf, const void *key, size_t klen, const void *val,
		  size_t vlen)
{
	batch_append(b, BATCH_PUT, cf, key, klen, val, vlen);
}

void db_batch_delete(struct db_batch *b, enum db_cf cf, const void *key, size_t klen)
{
	batch_append(b, BATCH_DELETE, cf, key, klen, NULL, 0);
}

void db_batch_delete_range(struct db_batch *b, enum db_cf cf, const void *begin, size_t blen,
			   const void *end, size_t elen)
{
	batch_append(b, BATCH_DELETE_RANGE, cf, begin, blen, end, elen);
}

void db_batch_move(struct db_batch *dst, struct db_batch *src)
{
	if (src->oom || dst->oom) {
		dst->oom = true;
		return;
	}
	if (dst->len == 0) { /* the index of a whole capture: megabytes not copied */
		struct db_batch t = *dst;
		*dst = *src;
		*src = t;
		return;
	}
	if (dst->cap - dst->len < src->len) {
		size_t cap = dst->cap ? dst->cap : 4096;
		while (cap - dst->len < src->len)
			cap *= 2;
		uint8_t *nb = realloc(dst->buf, cap);
		if (!nb) {
			dst->oom = true;
			return;
		}
		dst->buf = nb;
		dst->cap = cap;
	}
	if (src->len)
		memcpy(dst->buf + dst->len, src->buf, src->len);
	dst->len += src->len;
	src->len = 0;
}

size_t db_batch_bytes(const struct db_batch *b)
{
	return b->len;
}

/* Replays the log into a RocksDB batch bound to db's handles. */
static rocksdb_writebatch_t *batch_build(struct db *db, const struct db_batch *b)
{
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();

	for (size_t off = 0; off < b->len;) {
		struct batch_hdr h;
		memcpy(&h, b->buf + off, sizeof(h));
		const char *a = (const char *)b->buf + off + sizeof(h);
		const char *v = a + h.alen;
		rocksdb_column_family_handle_t *cf = db->cf[h.cf];

		if (h.op == BATCH_PUT)
			rocksdb_writebatch_put_cf(wb, cf, a, h.alen, v, h.blen);
		else if (h.op == BATCH_DELETE)
			rocksdb_writebatch_delete_cf(wb, cf, a, h.alen);
		else
			rocksdb_writebatch_delete_range_cf(wb, cf, a, h.alen, v, h.blen);
		off += sizeof(h) + h.alen + h.blen;
	}
	return wb;
}

int db_write(struct db *db, struct db_batch *b, bool sync, struct errbuf *eb)
{
	rocksdb_writebatch_t *wb;
	char *err = NULL;
	int r = 0;

	if (b->oom)
		return errbuf_set(eb, -ENOMEM, "write batch: out of memory");
	wb = batch_build(db, b);
	rocksdb_write(db->rdb, sync ? db->wo_sync : db->wo_async, wb, &err);
	rocksdb_writebatch_destroy(wb);
	if (err) {
		r = strstr(err, "No space left") ? -ENOSPC : -EIO;
		errbuf_set(eb, r, "database write: %s", err);
		rocksdb_free(err);
	}
	return r;
}

static int iter_new(struct db *db, enum db_cf cf, bool fill_cache, struct db_iter **out)
{
	struct db_iter *it = calloc(1, sizeof(*it));

	if (!it)
		return -ENOMEM;
	/* No explicit snapshot: an iterator reads the database as it was at
	 * its creation anyway, and making and releasing one takes the
	 * database's mutex, which every listing thread then queued for. */
	it->ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_fill_cache(it->ro, fill_cache);
	it->it = rocksdb_create_iterator_cf(db->rdb, it->ro, db->cf[cf]);
	*out = it;
	return 0;
}

int db_iter_new(struct db *db, enum db_cf cf, struct db_iter **out)
{
	/* Whole-catalog scans should not push the packet index out of the
	 * small cache; the index's own blocks are what queries read again
	 * and again (without the cache, each query decompresses them anew). */
	bool catalog_scan = cf == DB_CF_CAPTURES || cf == DB_CF_OBJECTS || cf == DB_CF_TAGS ||
			    cf == DB_CF_TIME || cf == DB_CF_BYSHA;
	return iter_new(db, cf, !catalog_scan, out);
}

int db_iter_new_short(struct db *db, enum db_cf cf, struct db_iter **out)
{
	return iter_new(db, cf, true, out);
}

struct db_iter *db_iter_free(struct db_iter *it)
{
	if (!it)
		return NULL;
	rocksdb_iter_destroy(it->it);
	rocksdb_readoptions_destroy(it->ro);
	free(it);
	return NULL;
}

void db_iter_seek(struct db_iter *it, const void *key, size_t klen)
{
	rocksdb_iter_seek(it->it, key, klen);
}

void db_iter_seek_first(struct db_iter *it)
{
	rocksdb_iter_seek_to_first(it->it);
}

void db_iter_seek_last(struct db_iter *it)
{
	rocksdb_iter_seek_to_last(it->it);
}

void db_iter_seek_for_prev(struct db_iter *it, const void *key, size_t klen)
{
	rocksdb_iter_seek_for_prev(it->it, key, klen);
}

bool db_iter_valid(const struct db_iter *it)
{
	return rocksdb_iter_valid(it->it);
}

void db_iter_next(struct db_iter *it)
{
	rocksdb_iter_next(it->it);
}

void db_iter_prev(struct db_iter *it)
{
	rocksdb_iter_prev(it->it);
}

const void *db_iter_key(const struct db_iter *it, size_t *klen)
{
	return rocksdb_iter_key(it->it, klen);
}

const void *db_iter_value(const struct db_iter *it, size_t *vlen)
{
	return rocksdb_iter_value(it->it, vlen);
}

static uint64_t cf_property(struct db *db, enum db_cf cf, const char *name)
{
	uint64_t v = 0;

	if (rocksdb_property_int_cf(db->rdb, db->cf[cf], name, &v) != 0)
		return 0;
	return v;
}

uint64_t db_cf_size(struct db *db, enum db_cf cf)
{
	/* Live SST bytes plus what still sits in memtables (not yet flushed). */
	return cf_property(db, cf, "rocksdb.total-sst-files-size") +
	       cf_property(db, cf, "rocksdb.cur-size-all-mem-tables");
}

void db_memory(struct db *db, struct db_memory *out)
{
	out->block_cache_bytes = rocksdb_cache_get_usage(db->cache);
	out->block_cache_capacity = rocksdb_cache_get_capacity(db->cache);
	out->memtable_bytes = 0;
	for (int cf = 0; cf < DB_CF_COUNT; cf++)
		out->memtable_bytes += cf_property(db, cf, "rocksdb.cur-size-all-mem-tables");
}

uint64_t db_range_size(struct db *db, enum db_cf cf, const void *begin, size_t blen,
		       const void *end, size_t elen)
{
	const char *b = begin, *e = end;
	uint64_t size = 0;
	char *err = NULL;

	rocksdb_approximate_sizes_cf(db->rdb, db->cf[cf], 1, &b, &blen, &e, &elen, &size, &err);
	if (err) {
		rocksdb_free(err);
		return 0;
	}
	return size;
}

int db_checkpoint(struct db *db, const char *dir, struct errbuf *eb)
{
	char *err = NULL;
	rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(db->rdb, &err);

	if (err)
		return db_error(eb, err, dir, "cannot checkpoint database to");
	/* log_size_for_flush 0: always flush memtables, so the copy holds
	 * SST files only and needs no WAL replay. */
	rocksdb_checkpoint_create(cp, dir, 0, &err);
	rocksdb_checkpoint_object_destroy(cp);
	if (err)
		return db_error(eb, err, dir, "cannot checkpoint database to");
	return 0;
}
