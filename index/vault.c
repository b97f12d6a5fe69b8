/*
 * vault.c - see vault.h.
 *
 * The import sink's commit is where invariant 1 is kept: the object is
 * published durably first (fsync, link, fsync folder), then the catalog
 * batch is written with sync. Only after both does the caller touch the
 * source. A crash in between leaves an unreferenced object, which
 * vault_open removes.
 */
#include "vault.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blockcheck.h"
#include "cleanup.h"
#include "db.h"
#include "decomp.h"
#include "objcache.h"
#include "objstore.h"
#include "pindex.h"
#include "retention.h"
#include "ring.h"
#include "storemark.h"
#include "wallclock.h"

struct vault {
	struct store *store;
	struct db *db;
	struct catalog *catalog;
	struct objstore *objstore; /* not owned */
	/* Who removes a remote copy no capture references any more (the
	 * daemon's tier mover); NULL: removed at once, under the lock. */
	int (*remote_release)(void *opaque, const uint8_t sha[32]);
	void *remote_release_opaque;
	_Atomic uint64_t min_free_bytes;
	_Atomic unsigned min_free_percent;
	_Atomic uint64_t max_total_size;
	/* Room beyond min_free an import waits for, that retention prunes
	 * the oldest captures for (vault_room_wanted). */
	_Atomic uint64_t room_wanted;
	/* retention.protect_tag: its captures are no room retention can make. */
	pthread_mutex_t protect_lock;
	char *protect_tag;
	struct objcache *objcache; /* not owned: remote objects' bytes read before */
};

struct vault_job {
	struct vault *vault;
	struct store_writer *writer;
	/* Hashed before the import (space was short) and already stored: the
	 * writer "links" that object, and commit checks the hash again. */
	bool stored_first;
	uint8_t first_sha[32];
	/* A stream's bytes so far, and how many it may write before its room
	 * is checked (again): free space above min_free at its start, then
	 * the most it could ever take (room_at_most). */
	uint64_t written, check_at, room;
	bool room_known;
	char *compressed_path; /* a compressed file: measured when room is short */
	bool has_inode;	       /* the file being imported, when known: */
	dev_t dev;	       /* the one measured must be it */
	ino_t ino;
	struct db_batch *batch;
	struct capture_record *rec;
	struct pindex_builder *pindex;
};

static int vault_remove_unreferenced(void *opaque, const uint8_t sha[32], uint64_t size)
{
	struct vault *v = opaque;
	void *val = NULL;
	size_t vlen = 0;
	(void)size;
	int err = db_get(v->db, DB_CF_OBJECTS, sha, 32, &val, &vlen);
	free(val);
	if (err == -ENOENT)
		store_object_remove(v->store, sha);
	return 0;
}

/* Index entries of object numbers never committed (an import that died
 * after a partial index flush) are removed. */
static int vault_drop_uncommitted_index(struct vault *v, struct errbuf *eb)
{
	struct db_batch *batch = NULL;
	int err = db_batch_new(&batch);
	if (err)
		return err;
	pindex_delete_from(v->db, batch, catalog_next_objnum(v->catalog));
	err = db_write(v->db, batch, true, eb);
	db_batch_free(batch);
	return err;
}

/* Catalog hooks: under the catalog lock, an object losing its last
 * reference is unlinked before any import can commit a record for it, and
 * a commit whose object file is gone (pruned meanwhile) is refused. */
static int vault_object_check(void *opaque, const uint8_t sha[32])
{
	struct vault *v = opaque;
	int fd = store_object_open(v->store, sha);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int vault_object_release(void *opaque, const uint8_t sha[32])
{
	struct vault *v = opaque;
	return store_object_remove(v->store, sha);
}

/* A failure leaves an orphan in the bucket, which fsck --remote finds. */
static int vault_object_release_remote(void *opaque, const uint8_t sha[32])
{
	struct vault *v = opaque;
	struct errbuf eb = { { 0 } };

	if (v->remote_release)
		return v->remote_release(v->remote_release_opaque, sha);
	return v->objstore ? objstore_remove(v->objstore, sha, &eb) : 0;
}

void vault_set_remote_release(struct vault *v, int (*fn)(void *opaque, const uint8_t sha[32]),
			      void *opaque)
{
	v->remote_release_opaque = opaque;
	v->remote_release = fn;
}

struct witnesses {
	struct objstore *os;
	unsigned left;
};

static int add_witness(void *opaque, const uint8_t sha[32], uint64_t size, uint64_t refs,
		       enum catalog_location loc)
{
	struct witnesses *w = opaque;

	(void)size;
	(void)refs;
	if (loc == CATALOG_LOCAL)
		return 0;
	objstore_add_witness(w->os, sha);
	return --w->left == 0;
}

void vault_set_objstore(struct vault *v, struct objstore *os)
{
	char id[CATALOG_VAULT_ID_HEX], owner[OBJSTORE_OWNER_MAX];
	struct errbuf eb = { { 0 } };

	v->objstore = os;
	/* Without an id (an index that cannot be written), puts and removes
	 * go unclaimed: such a vault writes nothing. */
	if (os && catalog_vault_id(v->catalog, id, &eb) == 0) {
		snprintf(owner, sizeof(owner), "vault %s", id);
		objstore_set_owner(os, owner);
		/* Some objects the catalog says are there, for a claim to find
		 * (objstore_add_witness); a catalog that cannot be read names
		 * none, and the claim goes on as for a new vault. */
		struct witnesses w = { .os = os, .left = OBJSTORE_WITNESSES };
		(void)catalog_foreach_object(v->catalog, add_witness, &w);
	}
}

struct objstore *vault_objstore(struct vault *v)
{
	return v->objstore;
}

static int block_check(void *opaque, const uint8_t sha[32], uint64_t size, uint64_t block,
		       const void *buf, size_t len)
{
	return blockcheck(opaque, sha, size, block, buf, len);
}

void vault_set_objcache(struct vault *v, struct objcache *cache)
{
	v->objcache = cache;
	/* Blocks fetched from the store are checked against what the
	 * catalog recorded when their object was tiered. */
	if (cache)
		objcache_set_check(cache, block_check, v->catalog);
}

struct objcache *vault_objcache(struct vault *v)
{
	return v->objcache;
}

/* The local copy, or the remote one when only the store has it (or a
 * crash mid-tiering left a "both" without its file). */
static int open_local_or_remote(struct vault *v, const uint8_t sha[32], bool remote_ok, int *fd)
{
	*fd = store_object_open(v->store, sha);
	if (*fd >= 0)
		return 0;
	int err = *fd;
	*fd = -1;
	return err == -ENOENT && remote_ok ? VAULT_OBJECT_REMOTE : err;
}

/* The catalog's location of sha, as vault_object_open goes by it: 0 with
 * *loc, -ENOENT for an object it does not name (read as local), or
 * another negative errno. */
static int object_location(struct vault *v, const uint8_t sha[32], enum catalog_location *loc)
{
	*loc = CATALOG_LOCAL;
	return catalog_object_location(v->catalog, sha, loc);
}

/* The one place that decides which tier a read goes to: the catalog's
 * location of the object (catalog_object_location). */
int vault_object_open(struct vault *v, const uint8_t sha[32], int *fd)
{
	enum catalog_location loc;
	bool can_read_remote = v->objstore && v->objcache;
	int err = object_location(v, sha, &loc);
	*fd = -1;
	if (err < 0 && err != -ENOENT)
		return err;
	if (err == 0 && loc == CATALOG_REMOTE)
		return can_read_remote ? VAULT_OBJECT_REMOTE : -EREMOTEIO;
	int r = open_local_or_remote(v, sha, err == 0 && loc == CATALOG_BOTH && can_read_remote, fd);
	if (r != -ENOENT || !can_read_remote)
		return r;
	/* A move may have ended between the look and the open: it records
	 * the remote location before it unlinks the local copy, so a second
	 * look tells a finished move from an object that is gone. */
	err = object_location(v, sha, &loc);
	return err == 0 && loc != CATALOG_LOCAL ? VAULT_OBJECT_REMOTE : r;
}

void vault_set_min_free(struct vault *v, uint64_t min_free_bytes, unsigned min_free_percent)
{
	atomic_store(&v->min_free_bytes, min_free_bytes);
	atomic_store(&v->min_free_percent, min_free_percent);
}

void vault_set_max_total_size(struct vault *v, uint64_t max_total_size)
{
	atomic_store(&v->max_total_size, max_total_size);
}

int vault_set_protect_tag(struct vault *v, const char *tag)
{
	char *copy = tag && *tag ? strdup(tag) : NULL;
	if (tag && *tag && !copy)
		return -ENOMEM;
	pthread_mutex_lock(&v->protect_lock);
	char *was = v->protect_tag;
	v->protect_tag = copy;
	pthread_mutex_unlock(&v->protect_lock);
	free(was);
	return 0;
}

uint64_t vault_room_wanted(struct vault *v, bool take)
{
	return take ? atomic_exchange(&v->room_wanted, 0) : atomic_load(&v->room_wanted);
}

static void want_room(struct vault *v, uint64_t bytes)
{
	uint64_t was = atomic_load(&v->room_wanted);
	while (was < bytes && !atomic_compare_exchange_weak(&v->room_wanted, &was, bytes))
		;
}

int vault_remove(struct vault *v, uint64_t id, uint64_t *freed, struct errbuf *eb)
{
	uint8_t sha[32];
	uint64_t size = 0;
	bool unlink_object = false;
	struct capture_record *rec = NULL;
	if (freed)
		*freed = 0;
	if (catalog_get(v->catalog, id, &rec) == 0)
		size = rec->file_size;
	capture_record_free(rec);
	int err = catalog_remove(v->catalog, id, &unlink_object, sha, eb);
	if (err || !unlink_object)
		return err;
	if (freed)
		*freed = size;
	/* The release hook unlinked the local file under the catalog lock.
	 * Not again here: an import of the same bytes may have published it
	 * anew and committed a capture for it since (adv15c). */
	if (catalog_releases_objects(v->catalog))
		return 0;
	err = store_object_remove(v->store, sha);
	return err == -ENOENT ? 0 : err;
}

int vault_open(struct vault **out, const char *root, struct errbuf *eb)
{
	return vault_open_flags(out, root, 0, eb);
}

/* What root is, as far as opening it goes. */
enum vault_kind {
	KIND_MISSING,  /* no such folder */
	KIND_EMPTY,    /* an empty folder */
	KIND_STORE,    /* marked complete */
	KIND_LEGACY,   /* made before the marker: objects/ and our RocksDB in index/ */
	KIND_UNFINISHED, /* marked creating, backup or restore in progress */
	KIND_FOREIGN,  /* anything else */
};

static int vault_probe(const char *root, const char *const *allowed, enum vault_kind *kind,
		       enum storemark *mark, struct errbuf *eb)
{
	char path[PATH_MAX];
	struct stat st;
	_cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		*kind = KIND_MISSING;
		return 0;
	}
	if (fd < 0)
		return errbuf_set(eb, -errno, "%s: %s", root, strerror(errno));
	int r = storemark_read(fd, root, mark, eb);
	if (r < 0)
		return r;
	if (*mark != STOREMARK_NONE) {
		*kind = *mark == STOREMARK_STORE ? KIND_STORE : KIND_UNFINISHED;
		return 0;
	}
	if ((r = storemark_dir_empty(fd, allowed)) < 0)
		return errbuf_set(eb, r, "%s: %s", root, strerror(-r));
	if (r == 1) {
		*kind = KIND_EMPTY;
		return 0;
	}
	if (snprintf(path, sizeof(path), "%s/index", root) >= (int)sizeof(path))
		return errbuf_set(eb, -ENAMETOOLONG, "%s: path too long", root);
	bool legacy = fstatat(fd, "objects", &st, 0) == 0 && S_ISDIR(st.st_mode) &&
		      db_probe(path) == 1;
	*kind = legacy ? KIND_LEGACY : KIND_FOREIGN;
	return 0;
}

/* Whether this open may go on, and whether it creates the store. */
static int vault_admit(const char *root, enum vault_kind kind, enum storemark mark,
		       unsigned flags, struct errbuf *eb)
{
	bool create = flags & VAULT_CREATE;
	switch (kind) {
	case KIND_STORE:
	case KIND_LEGACY:
		return 0;
	case KIND_MISSING:
	case KIND_EMPTY:
		if (create)
			return 1;
		return errbuf_set(eb, -ENOENT, "%s: not a capvault store (%s): create one with "
				  "`capvault init --store %s`", root,
				  kind == KIND_MISSING ? "no such folder" : "an empty folder", root);
	case KIND_UNFINISHED:
		if (create && mark == STOREMARK_CREATING)
			return 1;
		return errbuf_set(eb, -EINVAL, "%s: %s, not a usable store%s", root,
				  storemark_what(mark),
				  mark == STOREMARK_CREATING ? ": run `capvault init` on it again" :
				  ": remove it and make it again");
	case KIND_FOREIGN:
		break;
	}
	if (create)
		return errbuf_set(eb, -ENOTEMPTY, "%s: not a capvault store (no %s/" STOREMARK_NAME
				  ") and not empty: refusing to turn it into one", root, root);
	return errbuf_set(eb, -ENOENT, "%s: not a capvault store (no %s/" STOREMARK_NAME "): "
			  "create one with `capvault init --store DIR` on a new or empty folder",
			  root, root);
}

/* The root folder (its parent must exist) and a "creating" marker in it. */
static int vault_begin_create(const char *root, enum vault_kind kind, struct errbuf *eb)
{
	if (kind == KIND_UNFINISHED)
		return 0;
	if (kind == KIND_MISSING && mkdir(root, 0750) < 0 && errno != EEXIST)
		return errbuf_set(eb, -errno, "cannot create %s: %s", root, strerror(errno));
	_cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errbuf_set(eb, -errno, "%s: %s", root, strerror(errno));
	return storemark_write(fd, root, STOREMARK_CREATING, eb);
}

static int vault_mark_complete(const char *root, struct errbuf *eb)
{
	_cleanup_close_ int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errbuf_set(eb, -errno, "%s: %s", root, strerror(errno));
	return storemark_write(fd, root, STOREMARK_STORE, eb);
}

/* Decides, from what root holds, whether to open it, create it or refuse;
 * returns 1 when the marker must be written once the store is open (a
 * store being created, or one made before there was a marker). */
static int vault_prepare(const char *root, unsigned flags, const char *const *allowed,
			 struct errbuf *eb)
{
	enum vault_kind kind = KIND_FOREIGN;
	enum storemark mark = STOREMARK_NONE;
	char dbdir[PATH_MAX];
	int r = vault_probe(root, allowed, &kind, &mark, eb);
	if (r == 0)
		r = vault_admit(root, kind, mark, flags, eb);
	if (r == 1)
		return vault_begin_create(root, kind, eb) ?: 1;
	if (r < 0 || kind == KIND_LEGACY)
		return r < 0 ? r : 1;
	/* An empty index would make every object look unreferenced (and
	 * removed): a store whose index is gone is refused, not recreated. */
	snprintf(dbdir, sizeof(dbdir), "%s/index", root);
	r = db_probe(dbdir);
	if (r == 0)
		return errbuf_set(eb, -ENOENT, "%s: the store's index is missing (no %s/CURRENT)",
				  root, dbdir);
	return r < 0 ? errbuf_set(eb, r, "%s: not a capvault index", dbdir) : 0;
}

int vault_open_flags(struct vault **out, const char *root, unsigned flags, struct errbuf *eb)
{
	return vault_open_create(out, root, flags, NULL, eb);
}

int vault_open_create(struct vault **out, const char *root, unsigned flags,
		      const char *const *allowed, struct errbuf *eb)
{
	bool cleanup = !(flags & VAULT_NO_CLEANUP);
	char dbdir[PATH_MAX];
	errbuf_clear(eb);
	int mark = vault_prepare(root, flags, allowed, eb);
	if (mark < 0)
		return mark;
	struct vault *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->protect_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	/* tmp/ is cleaned only under the index's lock: while another process
	 * has the store open, its imports in progress are in there. */
	int err = store_open_flags(&v->store, root, STORE_KEEP_TMP | (mark ? STORE_CREATE : 0), eb);
	if (!err && snprintf(dbdir, sizeof(dbdir), "%s/index", root) >= (int)sizeof(dbdir))
		err = errbuf_set(eb, -ENAMETOOLONG, "%s: path too long", root);
	if (!err)
		err = db_open(&v->db, dbdir, eb);
	if (!err && cleanup)
		err = store_clean_tmp(v->store, eb);
	if (!err)
		err = catalog_new(&v->catalog, v->db, eb);
	if (!err) {
		struct catalog_object_hooks hooks = { .check = vault_object_check,
						      .release = vault_object_release,
						      .release_remote = vault_object_release_remote,
						      .opaque = v };
		catalog_set_object_hooks(v->catalog, &hooks);
		if (cleanup)
			err = store_foreach_object(v->store, vault_remove_unreferenced, v);
	}
	if (!err && cleanup)
		err = vault_drop_uncommitted_index(v, eb);
	/* Last: only a store that opened whole is marked complete. */
	if (!err && mark)
		err = vault_mark_complete(root, eb);
	if (err) {
		if (eb && eb->msg[0] == '\0')
			errbuf_set(eb, err, "%s: %s", root, strerror(-err));
		vault_close(v);
		return err;
	}
	*out = v;
	return 0;
}

int vault_create(const char *root, struct errbuf *eb)
{
	enum vault_kind kind = KIND_FOREIGN;
	enum storemark mark = STOREMARK_NONE;
	struct vault *v = NULL;
	errbuf_clear(eb);
	int r = vault_probe(root, NULL, &kind, &mark, eb);
	if (r < 0 || kind == KIND_STORE)
		return r < 0 ? r : VAULT_EXISTS;
	r = vault_open_flags(&v, root, VAULT_CREATE, eb);
	vault_close(v);
	return r < 0 ? r : kind == KIND_LEGACY ? VAULT_EXISTS : 0;
}

struct vault *vault_close(struct vault *v)
{
	if (!v)
		return NULL;
	catalog_free(v->catalog);
	db_close(v->db);
	store_close(v->store);
	free(v->protect_tag);
	free(v);
	return NULL;
}

struct catalog *vault_catalog(struct vault *v)
{
	return v->catalog;
}

struct store *vault_store(struct vault *v)
{
	return v->store;
}

struct db *vault_db(struct vault *v)
{
	return v->db;
}

static void vault_job_free(struct vault_job *job)
{
	if (!job)
		return;
	store_writer_free(job->writer);
	pindex_builder_free(job->pindex);
	db_batch_free(job->batch);
	capture_record_free(job->rec);
	free(job->compressed_path);
	free(job);
}

/* A compressed source cannot be linked: its object is the decompressed
 * bytes. Looks at the magic, as the reader does. */
static bool source_is_compressed(const char *path)
{
	uint8_t magic[4] = { 0 };
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic))
		return false;
	return (magic[0] == 0x1f && magic[1] == 0x8b) ||
	       (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd);
}

static int record_fill_source(struct capture_record *rec, const struct import_source *src)
{
	char abspath[PATH_MAX];
	rec->name = strdup(src->name ? src->name : "capture");
	if (!rec->name)
		return -ENOMEM;
	if (src->source_path || src->path) {
		const char *p = src->source_path ? src->source_path :
				realpath(src->path, abspath) ? abspath : src->path;
		if (*p && !(rec->source_path = strdup(p)))
			return -ENOMEM;
	}
	if (src->comment && !(rec->comment = strdup(src->comment)))
		return -ENOMEM;
	for (size_t i = 0; i < src->ntags; i++) {
		int err = capture_record_add_tag(rec, src->tags[i]);
		if (err)
			return err;
	}
	rec->has_merge_tags = src->has_merge_tags;
	if (src->has_merge_tags &&
	    !(rec->merge_tags = calloc(src->nmerge_tags + 1, sizeof(*rec->merge_tags))))
		return -ENOMEM;
	for (size_t i = 0; src->has_merge_tags && i < src->nmerge_tags; i++) {
		if (!(rec->merge_tags[i] = strdup(src->merge_tags[i])))
			return -ENOMEM;
		rec->nmerge_tags++;
	}
	return 0;
}

static uint64_t file_size(const char *path)
{
	struct stat s;
	return stat(path, &s) < 0 ? 0 : (uint64_t)s.st_size;
}

/* The room a copy of path needs: its size and the store's 4 MiB reserve
 * for the index (0 when path cannot be read). */
static uint64_t copy_room(const char *path)
{
	uint64_t size = file_size(path);
	return size ? size + (4u << 20) : 0;
}

/* The room a copy of path needs is not free. */
static bool room_short(struct vault *v, const char *path)
{
	uint64_t free_bytes = 0, total = 0;
	uint64_t need = copy_room(path);
	if (!need || store_space(v->store, &free_bytes, &total) < 0)
		return false;
	return free_bytes < need;
}

/* Room the index's writes for one import keep in reserve. */
#define INDEX_RESERVE (4u << 20)

/* Free space above the floor, now: min_free, and never less than the
 * index's reserve (0 when below; UINT64_MAX when the space cannot be
 * read: nothing is refused then). floor_out: that floor, and how much of
 * it is the reserve's beyond min_free. */
static uint64_t room_now(struct vault *v, uint64_t *floor_out, uint64_t *reserve_out)
{
	uint64_t free_bytes = 0, total = 0;
	if (store_space(v->store, &free_bytes, &total) < 0)
		return UINT64_MAX;
	uint64_t min_free = retention_min_free(atomic_load(&v->min_free_bytes),
					       atomic_load(&v->min_free_percent), total);
	uint64_t floor = min_free > INDEX_RESERVE ? min_free : INDEX_RESERVE;
	if (floor_out)
		*floor_out = floor;
	if (reserve_out)
		*reserve_out = floor - min_free;
	return free_bytes > floor ? free_bytes - floor : 0;
}

/* The distinct local objects of the captures tagged protect_tag. */
struct kept_objects {
	struct kept_object {
		uint8_t sha[32];
		uint64_t size;
	} *o;
	size_t n, cap;
};

static int kept_one(void *opaque, const struct capture_record *rec)
{
	struct kept_objects *k = opaque;
	if (rec->location == CATALOG_REMOTE)
		return 0;
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 16;
		struct kept_object *o = realloc(k->o, cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		k->o = o;
		k->cap = cap;
	}
	memcpy(k->o[k->n].sha, rec->sha256, 32);
	k->o[k->n++].size = rec->file_size;
	return 0;
}

static int cmp_kept(const void *a, const void *b)
{
	return memcmp(((const struct kept_object *)a)->sha, ((const struct kept_object *)b)->sha, 32);
}

/* The local bytes retention never prunes: those of the objects of the
 * captures tagged protect_tag (0 without one, UINT64_MAX when the
 * catalog cannot be read). */
static uint64_t protected_bytes(struct vault *v)
{
	struct kept_objects k = { 0 };
	int r = 0;
	pthread_mutex_lock(&v->protect_lock);
	char *tag = v->protect_tag ? strdup(v->protect_tag) : NULL;
	if (v->protect_tag && !tag)
		r = -ENOMEM;
	pthread_mutex_unlock(&v->protect_lock);
	if (r == 0 && tag)
		r = catalog_foreach(v->catalog, tag, kept_one, &k);
	free(tag);
	uint64_t bytes = 0;
	if (r == 0 && k.n > 1)
		qsort(k.o, k.n, sizeof(*k.o), cmp_kept);
	for (size_t i = 0; r == 0 && i < k.n; i++)
		if (i == 0 || memcmp(k.o[i].sha, k.o[i - 1].sha, 32) != 0)
			bytes += k.o[i].size;
	free(k.o);
	return r < 0 ? UINT64_MAX : bytes;
}

/*
 * The most a capture that has written `written` bytes could ever take:
 * the room above min_free now, those bytes, and all that pruning every
 * local capture and emptying the read-through cache would free (pruning
 * moves bytes from the one to the other, so the sum holds while
 * retention makes room); protected captures' bytes are not counted.
 * Reads the catalog: called only once space is short.
 */
static uint64_t room_at_most(struct vault *v, uint64_t written, char *how, size_t len,
			     uint64_t *kept_out)
{
	uint64_t floor = 0, now = room_now(v, &floor, NULL);
	struct catalog_totals t = { 0 };
	struct objcache_stats cs = { 0 };
	uint64_t kept = now == UINT64_MAX ? 0 : protected_bytes(v);
	if (now == UINT64_MAX || kept == UINT64_MAX || catalog_totals(v->catalog, &t) < 0)
		return UINT64_MAX;
	if (v->objcache)
		objcache_get_stats(v->objcache, &cs);
	/* Protected captures are never pruned: no room retention can make. */
	kept = kept < t.local_bytes ? kept : t.local_bytes;
	t.local_bytes -= kept;
	if (kept_out)
		*kept_out = kept;
	uint64_t room = now + written + t.local_bytes + cs.bytes;
	char a[32], b[32], c[32];
	retention_fmt_size(room, a, sizeof(a));
	retention_fmt_size(t.local_bytes + cs.bytes, b, sizeof(b));
	retention_fmt_size(floor, c, sizeof(c));
	snprintf(how, len,
		 "the store can take at most %s, even with every local capture pruned%s (they "
		 "hold %s with the cache) and min_free (at least the index's reserve, %s) kept",
		 a, kept ? " but the protected ones" : "", b, c);
	return room;
}

/* Larger than max_total_size: it could never be kept. */
static int too_large(struct vault *v, uint64_t need, bool more_than, struct errbuf *eb)
{
	char a[32], b[32];
	retention_fmt_size(need, a, sizeof(a));
	retention_fmt_size(atomic_load(&v->max_total_size), b, sizeof(b));
	return errbuf_set(eb, -EFBIG,
			  "the capture needs %s%s: retention's max_total_size is %s; not imported, "
			  "so that retention deletes nothing for it",
			  more_than ? "more than " : "", a, b);
}

/* More than the store can take whatever retention prunes (room_at_most's
 * how): the file waits for space (the daemon retries it), and retention
 * prunes nothing for it. */
static int never_fits(uint64_t need, bool more_than, const char *how, struct errbuf *eb)
{
	char a[32];
	retention_fmt_size(need, a, sizeof(a));
	return errbuf_set(eb, -ENOSPC,
			  "the capture needs %s%s: %s; waiting, as retention prunes nothing for it",
			  more_than ? "more than " : "", a, how);
}

/*
 * Whether `more` bytes (of a capture of `need`, `written` of them stored
 * already) can be written now: 0 when they fit above min_free; -EFBIG
 * when the capture is larger than max_total_size (it could never be
 * kept); else -ENOSPC: without min_free, nothing is pruned for room; one
 * that does not fit even with every unprotected capture pruned waits for
 * space, with nothing pruned for it (the room may come from files that
 * are not captures); one that fits once the oldest captures are pruned
 * asks retention for its room, and the import is retried once it is
 * made (before, retention deleted captures only while the import
 * happened to hold the space, and a retry could find it given back). ask
 * false (an announced stream: an upload, whose
 * sender may never come back for the room): 0 then, and retention prunes
 * for min_free as its bytes arrive, no more than they take.
 */
static int check_fits(struct vault *v, uint64_t need, uint64_t written, bool ask,
		      struct errbuf *eb)
{
	uint64_t max_total = atomic_load(&v->max_total_size);
	if (max_total && need > max_total)
		return too_large(v, need, false, eb);
	uint64_t floor = 0, reserve = 0, now = room_now(v, &floor, &reserve);
	uint64_t more = need - written;
	if (now != UINT64_MAX && more > now && v->objcache) {
		/* The read-through cache gives way first: its bytes can be fetched again. */
		objcache_trim(v->objcache, floor + more);
		now = room_now(v, NULL, NULL);
	}
	if (now == UINT64_MAX || more <= now)
		return 0;
	char how[320], a[32], b[32];
	retention_fmt_size(need, a, sizeof(a));
	retention_fmt_size(now, b, sizeof(b));
	if (!atomic_load(&v->min_free_bytes) && !atomic_load(&v->min_free_percent))
		return errbuf_set(eb, -ENOSPC,
				  "%s: the capture needs %s, the store has %s free beyond the "
				  "index's reserve",
				  strerror(ENOSPC), a, b);
	if (need > room_at_most(v, written, how, sizeof(how), NULL))
		return never_fits(need, false, how, eb);
	if (!ask)
		return 0;
	want_room(v, need + reserve); /* the attempt's own bytes are given back first */
	return errbuf_set(eb, -ENOSPC,
			  "the capture needs %s, %s free above min_free: waiting for retention to "
			  "prune the oldest captures",
			  a, b);
}

/* Checks min_free for an import; short of it, or of the room a plain
 * file's copy needs, the read-through cache gives way first (its bytes
 * can be fetched again): trimmed to its floor, which is above min_free,
 * and to that room with as much again as the reserve for the import's
 * own index writes, then checked again. */
static int check_floor(struct vault *v, const struct import_source *src, bool plain_file,
		       struct errbuf *eb)
{
	uint64_t bytes = atomic_load(&v->min_free_bytes);
	unsigned pct = atomic_load(&v->min_free_percent);
	int r = retention_check_min_free(v->store, bytes, pct, eb);
	if (!v->objcache)
		return r;
	bool short_room = plain_file && room_short(v, src->path);
	if (r != -ENOSPC && !short_room)
		return r;
	objcache_trim(v->objcache, short_room ? copy_room(src->path) + (4u << 20) : 0);
	errbuf_clear(eb);
	return retention_check_min_free(v->store, bytes, pct, eb);
}

/*
 * Space is short: a plain source whose bytes are already stored needs
 * none, so its bytes are hashed first (an extra read, only on a nearly
 * full disk). True, with the object's path in objpath, when they are.
 */
static bool stored_already(struct vault *v, const struct import_source *src,
			   struct vault_job *job, char *objpath, size_t len)
{
	_cleanup_close_ int fd = src->ring ? open(src->path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0 || store_hash_fd(src->ring, fd, job->first_sha) < 0 ||
	    store_object_path(v->store, job->first_sha, objpath, len) < 0)
		return false;
	return access(objpath, F_OK) == 0;
}

static int vault_begin(void *sink, const struct import_source *src, void **out,
		       struct errbuf *eb)
{
	struct vault *v = sink;
	char objpath[PATH_MAX];
	bool plain_file = src->path && !source_is_compressed(src->path);
	int floor_err = check_floor(v, src, plain_file, eb);
	if (floor_err && floor_err != -ENOSPC)
		return floor_err;
	struct vault_job *job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	/* Short of the room, or of the room above min_free (check_fits would
	 * have retention prune for bytes a duplicate does not need). */
	if (plain_file && (floor_err || room_short(v, src->path) ||
			   room_now(v, NULL, NULL) < file_size(src->path)))
		job->stored_first = stored_already(v, src, job, objpath, sizeof(objpath));
	if (floor_err && !job->stored_first) {
		free(job);
		return floor_err; /* eb says why */
	}
	errbuf_clear(eb);
	job->vault = v;
	job->rec = calloc(1, sizeof(*job->rec));
	int err = job->rec ? db_batch_new(&job->batch) : -ENOMEM;
	if (!err)
		err = record_fill_source(job->rec, src);
	if (!err) {
		job->rec->objnum = catalog_next_objnum(v->catalog);
		err = pindex_builder_new(&job->pindex, v->db, job->rec->objnum);
	}
	const char *link_source = NULL;
	if (job->stored_first)
		link_source = objpath; /* nothing is written: publish finds it stored */
	else if (plain_file && src->may_link)
		link_source = src->path;
	if (!err)
		err = store_writer_new(v->store, src->ring, link_source, &job->writer, eb);
	/* Not linked: the kernel copies the file's bytes (best effort). */
	if (!err && plain_file && !store_writer_linked(job->writer))
		store_writer_copy_from(job->writer, src->path);
	if (!err && src->has_inode && !job->stored_first &&
	    !store_writer_source_is(job->writer, src->dev, src->ino))
		err = errbuf_set(eb, -EAGAIN, "the source changed while it was being imported");
	if (!err && plain_file && !job->stored_first && !store_writer_linked(job->writer)) {
		uint64_t size = file_size(src->path);
		err = check_fits(v, size, 0, true, eb);
		/* It fits: checked again (stream_room, which reads the catalog's
		 * totals) only past that size, a file still growing. */
		job->check_at = size;
	} else if (!err && plain_file) {
		job->check_at = UINT64_MAX; /* linked, or stored already: nothing written */
	}
	if (!err && !plain_file) { /* a stream: measured as it comes (vault_data) */
		uint64_t now = room_now(v, NULL, NULL);
		uint64_t max_total = atomic_load(&v->max_total_size);
		job->check_at = max_total && max_total < now ? max_total : now;
		if (src->path && !(job->compressed_path = strdup(src->path)))
			err = -ENOMEM;
		job->has_inode = src->has_inode;
		job->dev = src->dev;
		job->ino = src->ino;
	}
	if (err) {
		vault_job_free(job);
		return err;
	}
	*out = job;
	return 0;
}

/* Decompressing a file only to count its bytes, up to a limit. */
struct measure {
	struct decomp *d;
	struct errbuf *eb;
	uint64_t out, stop_after;
	bool corrupt; /* the decompressor refused the data (eb says where) */
};

static int measure_out(void *opaque, const void *buf, size_t len)
{
	struct measure *m = opaque;
	(void)buf;
	m->out += len;
	return m->out > m->stop_after ? 1 : 0;
}

static int measure_in(void *opaque, const void *buf, size_t len)
{
	struct measure *m = opaque;
	int r = decomp_feed(m->d, buf, len, m->eb);
	m->corrupt = r == -EINVAL;
	return r;
}

/* Whether fd is the file the job imports (a name can be given another
 * file while the import reads the one it opened). */
static bool same_file(const struct vault_job *job, int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	       (!job->has_inode || (st.st_dev == job->dev && st.st_ino == job->ino));
}

/* The bytes the job's compressed file decompresses to (a stream cut
 * short counts to its cut, as the import keeps it), or UINT64_MAX past
 * limit, or 0 when it cannot be measured: not readable, or not the file
 * being imported. Data the decompressor refuses gives -EINVAL (eb says
 * where): the import would fail there too, and fails now, before
 * retention prunes anything for it. Its own ring: the import's is in the
 * middle of reading the same file. */
static int decompressed_size(const struct vault_job *job, uint64_t limit, uint64_t *size,
			     struct errbuf *eb)
{
	struct measure m = { .stop_after = limit, .eb = eb };
	struct ring *ring = NULL;
	_cleanup_close_ int fd = open(job->compressed_path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	*size = 0;
	if (fd < 0 || !same_file(job, fd) || ring_new(&ring, 4) < 0)
		return 0;
	int r = decomp_new(&m.d, measure_out, &m);
	if (r == 0)
		r = ring_read_stream(ring, fd, 1u << 20, 2, measure_in, &m);
	decomp_free(m.d);
	ring_free(ring);
	if (m.corrupt)
		return -EINVAL;
	errbuf_clear(eb);
	*size = r == 1 ? UINT64_MAX : r == 0 ? m.out : 0;
	return 0;
}

/*
 * A stream past the room above min_free it had at its start: from here
 * retention would delete captures for it. A compressed file is measured
 * first and then checked as a plain file is (check_fits), so retention
 * deletes nothing for a capture that will not fit in the end (a
 * compression bomb), and makes the room for one that will. Another
 * stream of unknown length (a compressed tar member, a chunked upload)
 * cannot be measured: it goes on up to the most it could ever take
 * (room_at_most), and no further than max_total_size. Returns 0, -EFBIG,
 * -ENOSPC, or -EINVAL for a compressed file whose data is corrupt.
 */
static int stream_room(struct vault_job *job, struct errbuf *eb)
{
	uint64_t max_total = atomic_load(&job->vault->max_total_size);
	char how[320];
	if (max_total && job->written > max_total)
		return too_large(job->vault, max_total, true, eb);
	if (!job->room_known) {
		job->room_known = true;
		job->room = room_at_most(job->vault, job->written, how, sizeof(how), NULL);
		job->check_at = max_total && max_total < job->room ? max_total : job->room;
		uint64_t size = 0;
		if (job->room != UINT64_MAX && job->compressed_path) {
			int err = decompressed_size(job, job->room, &size, eb);
			if (err)
				return err;
		}
		if (size == UINT64_MAX)
			job->check_at = 0;
		else if (size >= job->written)
			return check_fits(job->vault, size, job->written, true, eb);
	}
	if (job->written <= job->check_at)
		return 0;
	room_at_most(job->vault, job->written, how, sizeof(how), NULL);
	return never_fits(job->room, true, how, eb);
}

/* A stream of known size (an uncompressed upload): checked as a plain
 * file is, before its first byte, but it asks retention for no room: one
 * that fits once the oldest captures go is taken as its bytes come. */
static int vault_expect(void *opaque, uint64_t capture_bytes, struct errbuf *eb)
{
	struct vault_job *job = opaque;
	if (job->stored_first)
		return 0;
	int err = check_fits(job->vault, capture_bytes, 0, false, eb);
	if (!err && job->check_at < capture_bytes)
		job->check_at = capture_bytes; /* it fits: no check on the way */
	return err;
}

static int vault_data(void *opaque, const void *buf, size_t len, struct errbuf *eb)
{
	struct vault_job *job = opaque;
	job->written += len;
	if (job->written > job->check_at && !job->stored_first) {
		int err = stream_room(job, eb);
		if (err)
			return err;
	}
	return store_writer_write_async(job->writer, buf, len, eb);
}

static int vault_data_wait(void *opaque, struct errbuf *eb)
{
	struct vault_job *job = opaque;
	return store_writer_wait(job->writer, eb);
}

static int vault_context(void *opaque, uint64_t offset, const void *blob, size_t len)
{
	struct vault_job *job = opaque;
	return pindex_builder_context(job->pindex, offset, blob, len);
}

static int vault_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct vault_job *job = opaque;
	return pindex_builder_packet(job->pindex, pkt);
}

/* Removes index entries a builder may have flushed for a job that did not
 * commit. Best effort: leftovers are only space, never wrong answers. */
static void vault_drop_job_index(struct vault_job *job)
{
	struct db_batch *batch = NULL;
	if (db_batch_new(&batch) < 0)
		return;
	pindex_delete_object(job->vault->db, batch, job->rec->objnum);
	db_write(job->vault->db, batch, false, NULL);
	db_batch_free(batch);
}

static void record_fill_summary(struct capture_record *rec, const struct import_info *info)
{
	const struct capfile_summary *s = &info->summary;
	snprintf(rec->format, sizeof(rec->format), "%s", capfile_format_name(s->format));
	snprintf(rec->compression, sizeof(rec->compression), "%s",
		 decomp_kind_name(info->compression));
	rec->source_size = info->source_bytes;
	rec->version_major = s->version_major;
	rec->version_minor = s->version_minor;
	rec->big_endian = s->big_endian;
	rec->nanosecond = s->nanosecond;
	rec->snaplen = s->snaplen;
	rec->nlinktypes = s->nlinktypes < 16 ? s->nlinktypes : 16;
	memcpy(rec->linktypes, s->linktypes, rec->nlinktypes * sizeof(rec->linktypes[0]));
	rec->pcap_linktype_ext = s->pcap_linktype_ext;
	rec->interfaces = s->interfaces;
	rec->sections = s->sections;
	rec->packets = s->packets;
	rec->data_bytes = s->data_bytes;
	rec->wire_bytes = s->wire_bytes;
	rec->first_ts_ns = s->first_ts_ns;
	rec->last_ts_ns = s->last_ts_ns;
	rec->earliest_ts_ns = s->earliest_ts_ns;
	rec->latest_ts_ns = s->latest_ts_ns;
	rec->time_ordered = s->time_ordered;
	rec->time_saturated = s->time_saturated;
	rec->oversized = s->oversized;
	rec->truncated = s->truncated;
}

static int vault_commit(void *opaque, const struct import_info *info, struct import_result *res,
			struct errbuf *eb)
{
	struct vault_job *job = opaque;
	struct capture_record *rec = job->rec;
	uint64_t existing = 0;
	record_fill_summary(rec, info);
	if (info->truncation && !(rec->error = strdup(info->truncation))) {
		vault_job_free(job);
		return -ENOMEM;
	}
	rec->import_time_ns = wall_ns();
	/* The index first: building its batch keeps this thread busy while
	 * the copy's last chunks reach the disk, which publishing waits for. */
	int err = pindex_builder_finish(job->pindex, job->batch, &rec->index_bytes, eb);
	if (!err)
		err = store_writer_finish(job->writer, rec->sha256, &rec->file_size, eb);
	if (!err && job->stored_first && memcmp(rec->sha256, job->first_sha, 32) != 0)
		err = errbuf_set(eb, -EAGAIN, "the source changed while it was being imported");
	if (!err)
		err = store_writer_publish(job->writer, eb);
	if (err >= 0)
		res->linked = store_writer_linked(job->writer) && err != STORE_EXISTS;
	if (err >= 0)
		err = catalog_commit(job->vault->catalog, rec, job->batch, &existing, eb);
	if (err != 0)
		vault_drop_job_index(job);
	if (err >= 0) {
		memcpy(res->sha256, rec->sha256, 32);
		res->duplicate = err == CATALOG_DUPLICATE;
		res->capture_id = res->duplicate ? existing : rec->id;
		err = 0;
	}
	vault_job_free(job);
	return err;
}

static void vault_abort(void *opaque)
{
	struct vault_job *job = opaque;
	if (job->rec)
		vault_drop_job_index(job);
	vault_job_free(job);
}

const struct import_sink_ops vault_sink_ops = {
	.begin = vault_begin,
	.expect = vault_expect,
	.data = vault_data,
	.data_wait = vault_data_wait,
	.context = vault_context,
	.packet = vault_packet,
	.commit = vault_commit,
	.abort = vault_abort,
};
