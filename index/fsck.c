/*
 * fsck.c - store checks and safe repairs (see fsck.h).
 *
 * Promises:
 * - Every problem is reported, one line each, and checking goes on after
 *   it; nothing is modified without repair.
 * - Objects are hashed as a stream of ring reads: memory stays bounded
 *   whatever their size.
 * - Repairs only remove what nothing can use (leftovers, unreferenced
 *   objects, dead index entries, captures whose bytes are gone) or rewrite
 *   derived counts; captured bytes are never removed.
 */
#include "fsck.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "db.h"
#include "objstore.h"
#include "pindex.h"
#include "reindex.h"
#include "ring.h"
#include "store.h"
#include "vault.h"

struct cap {
	uint64_t id;
	uint8_t sha[32];
	uint64_t file_size, objnum, packets;
	bool marked; /* tagged FSCK_DAMAGED_TAG */
};

struct obj {
	uint8_t sha[32];
	uint64_t size, refs, objnum;
	bool has_file, has_record;
	uint64_t file_size;
	uint64_t captures; /* counted */
	bool dead;         /* record removed by a repair */
	bool corrupt;      /* unreadable, or its content does not hash to its name */
	enum catalog_location loc; /* the record's */
};

struct fsck {
	struct vault *v;
	struct catalog *cat;
	struct store *st;
	struct db *db;
	struct ring *ring;
	bool repair;
	bool verify_only; /* fsck_verify: object hashes and what follows from them */
	fsck_report_fn report;
	void *opaque;
	struct fsck_counts *c;
	struct cap *caps;
	size_t ncaps, capcap;
	struct obj *objs;
	size_t nobjs, objcap;
};

void fsck_problem(fsck_report_fn report, void *opaque, struct fsck_counts *c, bool repaired,
		  const char *fmt, ...)
{
	char text[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	c->problems++;
	if (repaired)
		c->repaired++;
	if (report)
		report(opaque, text, repaired);
}

#define problem(f, repaired, ...) \
	fsck_problem((f)->report, (f)->opaque, (f)->c, (repaired), __VA_ARGS__)

static int cmp_obj(const void *a, const void *b)
{
	return memcmp(((const struct obj *)a)->sha, ((const struct obj *)b)->sha, 32);
}

static struct obj *obj_find(struct fsck *f, const uint8_t sha[32])
{
	struct obj key = { 0 };
	memcpy(key.sha, sha, 32);
	return f->nobjs ? bsearch(&key, f->objs, f->nobjs, sizeof(*f->objs), cmp_obj) : NULL;
}

/* Finds or appends the object sha (records without a file: rare). */
static struct obj *obj_add(struct fsck *f, const uint8_t sha[32])
{
	for (size_t i = 0; i < f->nobjs; i++)
		if (memcmp(f->objs[i].sha, sha, 32) == 0)
			return &f->objs[i];
	if (f->nobjs == f->objcap) {
		size_t cap = f->objcap ? f->objcap * 2 : 64;
		struct obj *o = realloc(f->objs, cap * sizeof(*o));
		if (!o)
			return NULL;
		f->objs = o;
		f->objcap = cap;
	}
	struct obj *o = &f->objs[f->nobjs++];
	*o = (struct obj){ 0 };
	memcpy(o->sha, sha, 32);
	return o;
}

/* ---- gathering ---- */

static int on_object_file(void *opaque, const uint8_t sha[32], uint64_t size)
{
	struct fsck *f = opaque;
	if (f->nobjs == f->objcap) {
		size_t cap = f->objcap ? f->objcap * 2 : 64;
		struct obj *o = realloc(f->objs, cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		f->objs = o;
		f->objcap = cap;
	}
	struct obj *o = &f->objs[f->nobjs++];
	*o = (struct obj){ .has_file = true, .file_size = size };
	memcpy(o->sha, sha, 32);
	return 0;
}

static int on_capture(void *opaque, const struct capture_record *rec)
{
	struct fsck *f = opaque;
	if (f->ncaps == f->capcap) {
		size_t cap = f->capcap ? f->capcap * 2 : 64;
		struct cap *c = realloc(f->caps, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		f->caps = c;
		f->capcap = cap;
	}
	struct cap *c = &f->caps[f->ncaps++];
	*c = (struct cap){ .id = rec->id, .file_size = rec->file_size, .objnum = rec->objnum,
			   .packets = rec->packets };
	memcpy(c->sha, rec->sha256, 32);
	for (size_t i = 0; i < rec->ntags; i++)
		c->marked |= strcmp(rec->tags[i], FSCK_DAMAGED_TAG) == 0;
	return 0;
}

/* Object files, then object records merged in, sorted by sha. */
static int collect(struct fsck *f)
{
	int r = store_foreach_object(f->st, on_object_file, f);
	if (r < 0)
		return r;
	if (f->nobjs > 1)
		qsort(f->objs, f->nobjs, sizeof(*f->objs), cmp_obj);
	struct db_iter *it = NULL;
	if ((r = db_iter_new(f->db, DB_CF_OBJECTS, &it)) < 0)
		return r;
	size_t nfiles = f->nobjs;
	for (db_iter_seek_first(it); db_iter_valid(it); db_iter_next(it)) {
		size_t klen = 0;
		const uint8_t *k = db_iter_key(it, &klen);
		if (klen != 32)
			continue;
		struct obj key = { 0 }, *o;
		memcpy(key.sha, k, 32);
		/* no files at all (every object tiered): bsearch takes no NULL base */
		o = nfiles ? bsearch(&key, f->objs, nfiles, sizeof(*f->objs), cmp_obj) : NULL;
		if (!o && !(o = obj_add(f, k))) {
			r = -ENOMEM;
			break;
		}
		o->has_record = true;
		catalog_object_get(f->cat, k, &o->size, &o->refs, &o->objnum);
		catalog_object_location(f->cat, k, &o->loc);
	}
	db_iter_free(it);
	if (r < 0)
		return r;
	if (f->nobjs > 1)
		qsort(f->objs, f->nobjs, sizeof(*f->objs), cmp_obj);
	return catalog_foreach(f->cat, NULL, on_capture, f);
}

/* ---- checks ---- */

struct hasher {
	EVP_MD_CTX *ctx;
	uint64_t bytes;
	int (*pace)(void *opaque, size_t len);
	void *pace_opaque;
};

static int hash_chunk(void *opaque, const void *buf, size_t len)
{
	struct hasher *h = opaque;
	h->bytes += len;
	return EVP_DigestUpdate(h->ctx, buf, len) ? 0 : -EIO;
}

static int hash_chunk_paced(void *opaque, const void *buf, size_t len)
{
	struct hasher *h = opaque;
	int r = h->pace ? h->pace(h->pace_opaque, len) : 0;
	return r ? r : hash_chunk(h, buf, len);
}

int fsck_hash_object(const struct store *st, struct ring *ring, const uint8_t sha[32],
		     struct fsck_hash *out, int (*pace)(void *opaque, size_t len), void *opaque)
{
	unsigned n = 0;
	struct stat s;
	struct hasher h = { .ctx = EVP_MD_CTX_new(), .pace = pace, .pace_opaque = opaque };
	int fd = store_object_open(st, sha);
	int r = fd < 0 ? fd : !h.ctx || !EVP_DigestInit_ex(h.ctx, EVP_sha256(), NULL) ? -ENOMEM : 0;
	if (r == 0 && fstat(fd, &s) < 0)
		r = -errno;
	if (r == 0) {
		out->dev = s.st_dev;
		out->ino = s.st_ino;
		out->mode = s.st_mode;
		r = ring_read_stream(ring, fd, RING_CHUNK, RING_DEPTH, hash_chunk_paced, &h);
	}
	if (r == 0 && (!EVP_DigestFinal_ex(h.ctx, out->got, &n) || n != 32))
		r = -EIO;
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(h.ctx);
	out->bytes = h.bytes;
	if (r < 0)
		return r;
	return memcmp(out->got, sha, 32) != 0;
}

/* Marks (or unmarks) one capture: its tags with FSCK_DAMAGED_TAG added
 * or removed. Returns 0 or a negative errno (eb). */
static int set_damaged(struct catalog *cat, uint64_t id, bool damaged, struct errbuf *eb)
{
	struct capture_record *rec = NULL;
	int r = catalog_get(cat, id, &rec);
	if (r < 0)
		return errbuf_set(eb, r, "capture %" PRIu64 ": %s", id, strerror(-r));
	bool tagged = false;
	for (size_t i = 0; i < rec->ntags; i++)
		tagged |= strcmp(rec->tags[i], FSCK_DAMAGED_TAG) == 0;
	if (tagged == damaged) {
		capture_record_free(rec);
		return 0;
	}
	char **tags = calloc(rec->ntags + 1, sizeof(*tags));
	size_t n = 0;
	r = tags ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < rec->ntags; i++)
		if (strcmp(rec->tags[i], FSCK_DAMAGED_TAG) != 0)
			tags[n++] = rec->tags[i];
	if (r == 0 && damaged)
		tags[n++] = (char *)FSCK_DAMAGED_TAG;
	if (r == 0)
		r = catalog_update_tags(cat, id, tags, n, eb);
	free(tags);
	capture_record_free(rec);
	return r;
}

struct find_sha {
	const uint8_t *sha;
	uint64_t *ids;
	size_t n, cap;
};

static int on_capture_of(void *opaque, const struct capture_record *rec)
{
	struct find_sha *fs = opaque;
	if (memcmp(rec->sha256, fs->sha, 32) != 0)
		return 0;
	if (fs->n == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 4;
		uint64_t *ids = realloc(fs->ids, cap * sizeof(*ids));
		if (!ids)
			return -ENOMEM;
		fs->ids = ids;
		fs->cap = cap;
	}
	fs->ids[fs->n++] = rec->id;
	return 0;
}

struct quarantine_call {
	struct store *st;
	const uint8_t *sha;
	dev_t dev;
	ino_t ino;
	struct errbuf *eb;
};

/* Under the catalog lock: no capture of the object is committed or
 * removed meanwhile, and the file moved is the one that was hashed (not
 * a good object a new import published after a prune). */
static int quarantine_locked(void *opaque)
{
	struct quarantine_call *q = opaque;
	char path[4096];
	struct stat s;
	if (store_object_path(q->st, q->sha, path, sizeof(path)) < 0 || stat(path, &s) < 0)
		return -ENOENT;
	if (s.st_dev != q->dev || s.st_ino != q->ino)
		return -ESTALE;
	return store_object_quarantine(q->st, q->sha, q->eb);
}

int fsck_quarantine(struct vault *v, const uint8_t sha[32], const struct fsck_hash *h,
		    uint64_t *captures, struct errbuf *eb)
{
	struct quarantine_call q = { .st = vault_store(v), .sha = sha, .dev = h->dev, .ino = h->ino,
				     .eb = eb };
	*captures = 0;
	errbuf_clear(eb);
	int r = catalog_quiesce(vault_catalog(v), quarantine_locked, &q);
	if (r < 0)
		return r;
	/* A "both" object still has its remote copy, confirmed when it was
	 * stored: the catalog names that one alone, and no capture is
	 * damaged. (An import that publishes the bytes again meanwhile makes
	 * it both first: -ESTALE, then the captures are tagged below, to be
	 * untagged by the next fsck --repair.) */
	enum catalog_location loc = CATALOG_LOCAL;
	struct errbuf ignored = { { 0 } };
	if (catalog_object_location(vault_catalog(v), sha, &loc) == 0 && loc == CATALOG_BOTH &&
	    catalog_object_relocate(vault_catalog(v), sha, CATALOG_BOTH, CATALOG_REMOTE,
				    &ignored) == 0)
		return FSCK_REMOTE_KEPT;
	return fsck_tag_damaged(v, sha, true, captures, eb);
}

int fsck_tag_damaged(struct vault *v, const uint8_t sha[32], bool damaged, uint64_t *captures,
		     struct errbuf *eb)
{
	struct find_sha fs = { .sha = sha };
	int r = catalog_foreach(vault_catalog(v), NULL, on_capture_of, &fs);

	*captures = 0;
	for (size_t i = 0; r == 0 && i < fs.n; i++)
		if ((r = set_damaged(vault_catalog(v), fs.ids[i], damaged, eb)) == 0)
			(*captures)++;
	free(fs.ids);
	return r;
}

/* An object anyone can write is one write away from corrupt (someone made
 * it writable, or an old link-mode import left its source's mode). */
static void check_mode(struct fsck *f, const struct obj *o, const struct fsck_hash *h,
		       const char *hex)
{
	char path[4096];
	if (!(h->mode & 0222))
		return;
	bool done = f->repair && store_object_path(f->st, o->sha, path, sizeof(path)) == 0 &&
		    chmod(path, 0444) == 0;
	problem(f, done, "object %s: writable (mode %04o)%s", hex, (unsigned)(h->mode & 07777),
		done ? "; made read-only" : "");
}

/* Returns true when the object reads back and hashes to its name. With
 * repair, a corrupt one is quarantined and its captures marked damaged:
 * the bytes are kept, no import dedups onto them, and storing the same
 * bytes again restores the captures. */
static bool check_hash(struct fsck *f, struct obj *o)
{
	char hex[65], got[65];
	struct fsck_hash h = { 0 };
	int r = fsck_hash_object(f->st, f->ring, o->sha, &h, NULL, NULL);
	f->c->bytes_hashed += h.bytes;
	sha256_hex(o->sha, hex);
	if (r < 0) {
		problem(f, false, "object %s: cannot read: %s", hex, strerror(-r));
		return false;
	}
	if (r == 0) {
		check_mode(f, o, &h, hex);
		return true;
	}
	sha256_hex(h.got, got);
	f->c->corrupt++;
	if (!f->repair) {
		problem(f, false, "object %s: content hashes to %s (corrupt)", hex, got);
		return false;
	}
	struct errbuf eb = { { 0 } };
	uint64_t captures = 0;
	r = fsck_quarantine(f->v, o->sha, &h, &captures, &eb);
	if (r >= 0)
		o->has_file = false;
	if (r == FSCK_REMOTE_KEPT) {
		o->loc = CATALOG_REMOTE;
		problem(f, true, "object %s: content hashes to %s (corrupt); moved to quarantine/, "
			"its copy in the object store is the one recorded now", hex, got);
		return false;
	}
	/* Not counted as repaired: the captures stay damaged until the same
	 * bytes are imported again (or they are removed). */
	problem(f, false, "object %s: content hashes to %s (corrupt)%s%s%" PRIu64 "%s", hex, got,
		r == 0 ? "; moved to quarantine/, " : "; cannot quarantine it: ",
		r == 0 ? "" : (eb.msg[0] ? eb.msg : strerror(-r)), r == 0 ? captures : 0,
		r == 0 ? " captures tagged " FSCK_DAMAGED_TAG : "");
	return false;
}

static void drop_capture(struct fsck *f, const struct cap *c, const char *why)
{
	char hex[65];
	struct errbuf eb = { { 0 } };
	uint8_t sha[32];
	bool unlink_object = false;
	bool done = false;
	sha256_hex(c->sha, hex);
	if (f->repair)
		done = catalog_remove(f->cat, c->id, &unlink_object, sha, &eb) == 0;
	problem(f, done, "capture %" PRIu64 ": object %s %s%s%s%s", c->id, hex, why,
		done ? "; record dropped" : "", eb.msg[0] ? "; " : "", eb.msg);
	struct obj *o = obj_find(f, c->sha);
	if (done && o && unlink_object)
		o->dead = true;
}

/* A capture whose object was quarantined as corrupt: kept (its record is
 * evidence, and the same bytes imported again restore it), marked. */
static void report_damaged(struct fsck *f, struct cap *c)
{
	char hex[65];
	struct errbuf eb = { { 0 } };
	bool marked = c->marked || (f->repair && set_damaged(f->cat, c->id, true, &eb) == 0);
	sha256_hex(c->sha, hex);
	problem(f, false, "capture %" PRIu64 ": object %s was quarantined as corrupt%s; import the "
		"same bytes again to restore it, or remove the capture", c->id, hex,
		marked ? " (tagged " FSCK_DAMAGED_TAG ")" : "");
	c->marked = marked;
}

/* Captures tagged damaged whose object is whole again (the same bytes
 * were imported after the quarantine): the tag goes. */
static void check_restored(struct fsck *f, const struct obj *o)
{
	for (size_t i = 0; i < f->ncaps; i++) {
		struct cap *c = &f->caps[i];
		if (!c->marked || memcmp(c->sha, o->sha, 32) != 0)
			continue;
		struct errbuf eb = { { 0 } };
		bool done = f->repair && set_damaged(f->cat, c->id, false, &eb) == 0;
		problem(f, done, "capture %" PRIu64 ": tagged " FSCK_DAMAGED_TAG " but its object is "
			"whole again%s", c->id, done ? "; tag removed" : "");
	}
}

/*
 * Whether a capture whose local object is missing may still have its bytes
 * in the object store: a move killed after its put and before the catalog
 * said "both" leaves the record local and the copy in the bucket. The
 * store, when one is configured, says; without one, block records of the
 * object say a move got under way. Such a capture is kept for fsck
 * --remote --repair, which takes the bucket's copy when it hashes to its
 * name: dropping it here made that copy an orphan, and that fsck removed
 * the only copy.
 */
static bool maybe_in_store(struct fsck *f, const uint8_t sha[32], uint64_t size,
			   const char **where)
{
	struct objstore *os = vault_objstore(f->v);
	struct errbuf eb = { { 0 } };
	uint64_t got = 0;

	if (os) {
		*where = "the object store holds it";
		int r = objstore_stat(os, sha, &got, &eb);
		return (r == 0 && got == size) || (r < 0 && r != -ENOENT);
	}
	*where = "a move of it to the object store was under way";
	return catalog_block_records_any(f->cat, sha);
}

static void check_captures(struct fsck *f)
{
	char hex[65];
	for (size_t i = 0; i < f->ncaps; i++) {
		struct cap *c = &f->caps[i];
		struct obj *o = obj_find(f, c->sha);
		f->c->captures++;
		if (o)
			o->captures++;
		/* A tiered object's bytes are in the object store: fsck --remote
		 * checks them there (a corrupt local copy of it may be in
		 * quarantine/: the remote one is whole). */
		if (o && !o->has_file && o->has_record && o->loc != CATALOG_LOCAL)
			continue;
		if ((!o || !o->has_file) && store_object_quarantined(f->st, c->sha)) {
			report_damaged(f, c);
			continue;
		}
		const char *where = NULL;
		if ((!o || !o->has_file) && !f->verify_only &&
		    maybe_in_store(f, c->sha, c->file_size, &where)) {
			sha256_hex(c->sha, hex);
			problem(f, false, "capture %" PRIu64 ": object %s is missing here, and %s: "
				"kept; `capvault fsck --remote --repair --config FILE` takes the "
				"store's copy when it hashes to its name (if the store has none, "
				"`capvault rm %" PRIu64 "` removes the capture)", c->id, hex, where, c->id);
			continue;
		}
		if (!o || !o->has_file) {
			if (!f->verify_only)
				drop_capture(f, c, "is missing");
			continue;
		}
		if (o->file_size != c->file_size) {
			sha256_hex(c->sha, hex);
			problem(f, false,
				"capture %" PRIu64 ": object %s has %" PRIu64 " bytes, the record says %" PRIu64,
				c->id, hex, o->file_size, c->file_size);
		}
	}
}

static bool has_prefix(struct db *db, enum db_cf cf, uint64_t objnum)
{
	struct db_iter *it = NULL;
	uint8_t key[8];
	size_t klen = 0;
	bool found = false;
	if (db_iter_new(db, cf, &it) < 0)
		return true; /* cannot tell: do not accuse */
	be64_put(key, objnum);
	db_iter_seek(it, key, 8);
	if (db_iter_valid(it)) {
		const uint8_t *k = db_iter_key(it, &klen);
		found = klen >= 8 && memcmp(k, key, 8) == 0;
	}
	db_iter_free(it);
	return found;
}

static uint64_t first_objnum(struct fsck *f, const struct obj *o)
{
	for (size_t i = 0; i < f->ncaps; i++)
		if (memcmp(f->caps[i].sha, o->sha, 32) == 0)
			return f->caps[i].objnum;
	return o->objnum;
}

static uint64_t packets_of(struct fsck *f, const struct obj *o)
{
	for (size_t i = 0; i < f->ncaps; i++)
		if (memcmp(f->caps[i].sha, o->sha, 32) == 0)
			return f->caps[i].packets;
	return 0;
}

/* Refcounts, records without captures, captures without records. */
/* The catalog's location against the local file: a remote object with a
 * whole local copy is both (an import of its bytes that died before
 * saying so); a "both" without the local copy is remote once the store
 * confirms it has the object. */
static void check_location(struct fsck *f, struct obj *o, const char *hex)
{
	struct errbuf eb = { { 0 } };
	struct objstore *os = vault_objstore(f->v);
	uint64_t size = 0;
	bool done = false;

	if (!o->has_record || o->captures == 0)
		return;
	if (o->loc == CATALOG_REMOTE && o->has_file && !o->corrupt) {
		if (f->repair)
			done = catalog_object_relocate(f->cat, o->sha, CATALOG_REMOTE, CATALOG_BOTH,
						       &eb) == 0;
		problem(f, done, "object %s: the catalog says remote but a local copy exists%s", hex,
			done ? "; now recorded as both" : "");
	} else if (o->loc == CATALOG_BOTH && !o->has_file) {
		if (f->repair && os && objstore_stat(os, o->sha, &size, &eb) == 0 &&
		    size == o->size)
			done = catalog_object_relocate(f->cat, o->sha, CATALOG_BOTH, CATALOG_REMOTE,
						       &eb) == 0;
		problem(f, done, "object %s: the catalog says both but there is no local copy%s%s%s",
			hex, done ? "; now recorded as remote" : "", eb.msg[0] ? ": " : "", eb.msg);
	}
}

static void check_object_record(struct fsck *f, struct obj *o)
{
	char hex[65];
	struct errbuf eb = { { 0 } };
	bool done = false;
	sha256_hex(o->sha, hex);
	if (o->dead)
		return;
	if (o->has_record && o->captures == 0) {
		if (f->repair)
			done = catalog_object_put(f->cat, o->sha, 0, 0, o->objnum, &eb) == 0;
		problem(f, done, "object record %s has no capture%s", hex, done ? "; removed" : "");
		o->dead = done;
		return;
	}
	if (!o->has_record && o->captures > 0) {
		uint64_t objnum = first_objnum(f, o);
		if (f->repair)
			done = catalog_object_put(f->cat, o->sha, o->file_size, o->captures, objnum,
						  &eb) == 0;
		problem(f, done, "object %s has %" PRIu64 " captures but no object record%s", hex,
			o->captures, done ? "; record written" : "");
		if (done) {
			o->has_record = true;
			o->refs = o->captures;
			o->objnum = objnum;
		}
		return;
	}
	if (o->has_record && o->refs != o->captures) {
		if (f->repair)
			done = catalog_object_put(f->cat, o->sha, o->size, o->captures, o->objnum,
						  &eb) == 0;
		problem(f, done, "object %s: refcount %" PRIu64 " but %" PRIu64 " captures%s", hex,
			o->refs, o->captures, done ? "; fixed" : "");
	}
	check_location(f, o, hex);
}

static bool flow_offsets_decode(const struct pindex_flow *fl)
{
	const uint8_t *p = fl->offsets, *end = p + fl->offsets_len;
	uint64_t off = 0;
	while (p < end)
		if (pindex_next_offset(&p, end, &off) < 0)
			return false;
	return true;
}

/* Every flow block of the object decodes, and its flows hold as many
 * packets as the capture has (each packet is in exactly one flow). */
static bool flows_intact(struct fsck *f, const struct obj *o, uint64_t packets)
{
	struct db_iter *it = NULL;
	uint8_t prefix[8];
	uint64_t indexed = 0;
	bool ok = true;
	if (db_iter_new(f->db, DB_CF_FLOWS, &it) < 0)
		return true; /* cannot tell: do not accuse */
	be64_put(prefix, o->objnum);
	for (db_iter_seek(it, prefix, 8); ok && db_iter_valid(it); db_iter_next(it)) {
		size_t klen = 0, vlen = 0;
		const uint8_t *key = db_iter_key(it, &klen);
		if (klen < 8 || memcmp(key, prefix, 8) != 0)
			break;
		const void *val = db_iter_value(it, &vlen);
		struct pindex_flow_cursor cur;
		struct pindex_flow fl;
		int step = -1;
		if (pindex_flow_block_open(val, vlen, key, klen, &cur) == 0)
			while ((step = pindex_flow_next(&cur, &fl)) == 0 && flow_offsets_decode(&fl))
				indexed += fl.packets;
		ok = step == 1;
	}
	db_iter_free(it);
	return ok && indexed == packets;
}

static void check_index_present(struct fsck *f, const struct obj *o)
{
	char hex[65];
	uint64_t packets = packets_of(f, o);
	if (o->dead || !o->has_record || o->captures == 0 || packets == 0)
		return;
	if (has_prefix(f->db, DB_CF_FLOWS, o->objnum) && has_prefix(f->db, DB_CF_TINDEX, o->objnum) &&
	    flows_intact(f, o, packets))
		return;
	sha256_hex(o->sha, hex);
	/* A tiered object is rebuilt from the object store when fsck was
	 * given one (reindex reads it through the cache); without one, say
	 * what would bring it back rather than "missing". */
	bool remote = !o->has_file && o->loc != CATALOG_LOCAL;
	bool readable = remote && vault_objstore(f->v) && vault_objcache(f->v);
	if (f->repair && !o->corrupt && remote && !readable) {
		problem(f, false,
			"object %s (object number %" PRIu64 "): packet index missing or damaged "
			"(not rebuilt: its bytes are only in the object store, which fsck reads only "
			"when given capvaultd's configuration: run fsck --repair --config FILE)",
			hex, o->objnum);
		return;
	}
	if (!f->repair || o->corrupt || (!o->has_file && !readable)) {
		problem(f, false,
			"object %s (object number %" PRIu64 "): packet index missing or damaged%s", hex,
			o->objnum,
			!f->repair ? "" : " (not repaired: the object is missing or corrupt)");
		return;
	}
	/* The object hashed to its name: its bytes are the capture's, so the
	 * index the import built can be built again from them. */
	struct errbuf eb = { { 0 } };
	packets = 0;
	int err = reindex_object(f->v, f->ring, o->sha, o->objnum, &packets, &eb);
	if (err)
		problem(f, false,
			"object %s (object number %" PRIu64 "): packet index missing or damaged; "
			"rebuilding it failed: %s", hex, o->objnum, eb.msg[0] ? eb.msg : strerror(-err));
	else
		problem(f, true,
			"object %s (object number %" PRIu64 "): packet index missing or damaged; "
			"rebuilt from the object (%" PRIu64 " packets)", hex, o->objnum, packets);
}

static void check_unreferenced(struct fsck *f, struct obj *o)
{
	char hex[65];
	bool done = false;
	if (!o->has_file || (o->has_record && !o->dead) || o->captures > 0)
		return;
	if (o->dead)
		return; /* catalog_remove's release hook already unlinked it */
	sha256_hex(o->sha, hex);
	if (f->repair) {
		int r = store_object_remove(f->st, o->sha);
		done = r == 0 || r == -ENOENT;
	}
	problem(f, done, "object %s is referenced by no capture%s", hex, done ? "; removed" : "");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Index entries (flows, tindex, contexts) whose object number is no live
 * object's. Seeks from one object number to the next. */
static void check_dead_index(struct fsck *f, const uint64_t *live, size_t nlive)
{
	static const struct { enum db_cf cf; const char *name; } cfs[] = {
		{ DB_CF_FLOWS, "flows" }, { DB_CF_TINDEX, "tindex" }, { DB_CF_CONTEXTS, "contexts" },
		{ DB_CF_OBJTERMS, "objterms" },
	};
	for (size_t i = 0; i < sizeof(cfs) / sizeof(cfs[0]); i++) {
		struct db_iter *it = NULL;
		if (db_iter_new(f->db, cfs[i].cf, &it) < 0)
			continue;
		for (db_iter_seek_first(it); db_iter_valid(it);) {
			size_t klen = 0;
			const uint8_t *k = db_iter_key(it, &klen);
			if (klen < 8) {
				db_iter_next(it);
				continue;
			}
			uint64_t objnum = be64_get(k);
			if (!nlive || !bsearch(&objnum, live, nlive, sizeof(*live), cmp_u64)) {
				bool done = false;
				struct db_batch *b = NULL;
				if (f->repair && db_batch_new(&b) == 0) {
					pindex_delete_object(f->db, b, objnum);
					done = db_write(f->db, b, true, NULL) == 0;
					db_batch_free(b);
				}
				problem(f, done, "%s: index entries of object number %" PRIu64
					" which no object has%s", cfs[i].name, objnum,
					done ? "; removed" : "");
			}
			if (objnum == UINT64_MAX)
				break;
			uint8_t next[8];
			be64_put(next, objnum + 1);
			db_iter_seek(it, next, 8);
		}
		db_iter_free(it);
	}
}

/* Deletes the keys gathered in *b (when repairing) and starts a new batch. */
static bool flush_deletes(struct fsck *f, struct db_batch **b)
{
	bool done = *b && db_write(f->db, *b, true, NULL) == 0;
	db_batch_free(*b);
	*b = NULL;
	return done && db_batch_new(b) == 0;
}

/* Postings whose object number is no live object's: stores indexed before
 * objterms existed kept the postings of every deleted object (queries
 * skip them; they cost room and compaction). One line for all of them. */
static void check_dead_postings(struct fsck *f, const uint64_t *live, size_t nlive)
{
	struct db_iter *it = NULL;
	struct db_batch *b = NULL;
	uint64_t dead = 0;
	bool done = true;
	if (db_iter_new(f->db, DB_CF_POSTINGS, &it) < 0)
		return;
	if (f->repair && db_batch_new(&b) < 0)
		done = false;
	for (db_iter_seek_first(it); db_iter_valid(it); db_iter_next(it)) {
		size_t klen = 0;
		const uint8_t *k = db_iter_key(it, &klen);
		uint64_t objnum = UINT64_MAX;
		pindex_posting_objnum(k, klen, &objnum);
		if (nlive && bsearch(&objnum, live, nlive, sizeof(*live), cmp_u64))
			continue;
		dead++;
		if (b)
			db_batch_delete(b, DB_CF_POSTINGS, k, klen);
		if (b && dead % 65536 == 0)
			done &= flush_deletes(f, &b);
	}
	db_iter_free(it);
	if (f->repair)
		done &= b && db_write(f->db, b, true, NULL) == 0;
	db_batch_free(b);
	if (dead)
		problem(f, f->repair && done, "postings: %" PRIu64 " entries of object numbers "
			"which no object has%s", dead, f->repair && done ? "; removed" : "");
}

static int on_tmp(void *opaque, const char *name)
{
	struct fsck *f = opaque;
	/* What capvault did not make is not its to remove, even on --repair. */
	if (!store_tmp_is_ours(name)) {
		problem(f, false, "%s/tmp/%s: not made by capvault; left alone", store_root(f->st),
			name);
		return 0;
	}
	bool done = f->repair && store_tmp_remove(f->st, name) == 0;
	problem(f, done, "%s/tmp/%s: leftover of an interrupted write%s", store_root(f->st), name,
		done ? "; removed" : "");
	return 0;
}

static int check_objects(struct fsck *f)
{
	uint64_t *live = calloc(f->nobjs ? f->nobjs : 1, sizeof(*live));
	size_t nlive = 0;
	if (!live)
		return -ENOMEM;
	for (size_t i = 0; i < f->nobjs; i++) {
		struct obj *o = &f->objs[i];
		if (o->has_file) {
			f->c->objects++;
			o->corrupt = !check_hash(f, o);
			if (!o->corrupt)
				check_restored(f, o);
		}
		if (f->verify_only)
			continue;
		check_object_record(f, o);
		check_index_present(f, o);
		check_unreferenced(f, o);
		if (o->has_record && !o->dead)
			live[nlive++] = o->objnum;
	}
	if (nlive > 1)
		qsort(live, nlive, sizeof(*live), cmp_u64);
	if (!f->verify_only) {
		check_dead_index(f, live, nlive);
		check_dead_postings(f, live, nlive);
	}
	free(live);
	return 0;
}

static int fsck_mode(struct vault *v, struct ring *ring, bool repair, bool verify_only,
		     fsck_report_fn report, void *opaque, struct fsck_counts *counts,
		     struct errbuf *eb)
{
	struct fsck f = { .v = v, .cat = vault_catalog(v), .st = vault_store(v), .db = vault_db(v),
			  .ring = ring, .repair = repair, .verify_only = verify_only,
			  .report = report, .opaque = opaque, .c = counts };
	errbuf_clear(eb);
	*counts = (struct fsck_counts){ 0 };
	int r = verify_only ? 0 : store_foreach_tmp(f.st, on_tmp, &f);
	if (r < 0)
		errbuf_set(eb, r, "%s/tmp: %s", store_root(f.st), strerror(-r));
	if (r == 0 && (r = collect(&f)) < 0)
		errbuf_set(eb, r, "reading the store: %s", strerror(-r));
	if (r == 0) {
		check_captures(&f);
		r = check_objects(&f);
	}
	free(f.caps);
	free(f.objs);
	return r;
}

int fsck_run(struct vault *v, struct ring *ring, bool repair, fsck_report_fn report,
	     void *opaque, struct fsck_counts *counts, struct errbuf *eb)
{
	return fsck_mode(v, ring, repair, false, report, opaque, counts, eb);
}

int fsck_verify(struct vault *v, struct ring *ring, bool repair, fsck_report_fn report,
		void *opaque, struct fsck_counts *counts, struct errbuf *eb)
{
	return fsck_mode(v, ring, repair, true, report, opaque, counts, eb);
}
