/*
 * fsck_remote.c - `capvault fsck --remote`: the object store against the
 * catalog (see fsck.h).
 *
 * An orphan is an object in the bucket that the catalog does not name
 * there: no record at all (its last capture went and the removal did not
 * happen), or a record that says local (a move killed after its put and
 * before "both"). Removing it loses nothing: the catalog never pointed at
 * it. A remote object whose bytes do not hash to its name, or that is
 * missing, is never "repaired" by deleting a record: a local copy (both)
 * becomes the one the catalog names, else it is reported.
 */
#include "fsck.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockcheck.h"
#include "blockdig.h"
#include "catalog.h"
#include "hexdigit.h"
#include "objcache.h"
#include "objstore.h"
#include "s3prefix.h"
#include "store.h"
#include "vault.h"

struct remote_obj {
	uint8_t sha[32];
	uint64_t size;
};

struct fsck_remote {
	struct vault *v;
	struct catalog *cat;
	struct objstore *os;
	bool repair, verify;
	fsck_report_fn report;
	void *opaque;
	struct fsck_counts *c;
	struct remote_obj *objs;
	size_t n, cap;
};

/* fsck.c's reporting, on this walk's counts. */
#define problem(f, repaired, ...) \
	fsck_problem((f)->report, (f)->opaque, (f)->c, (repaired), __VA_ARGS__)

static int cmp_remote(const void *a, const void *b)
{
	return memcmp(((const struct remote_obj *)a)->sha, ((const struct remote_obj *)b)->sha, 32);
}

static bool ends_with(const char *s, size_t len, const char *tail)
{
	size_t n = strlen(tail);
	return len >= n && memcmp(s + len - n, tail, n) == 0;
}

/* A key of another vault whose prefix extends this one's ("objects/" and
 * "", "a/b/" and "a/", "aobjects/" and "a"): its objects' names or its
 * owner key, under ours. Not this vault's to report; left alone as every
 * stray is. */
static bool nested_vault_key(const char *key)
{
	static const char objects[] = "objects/";
	size_t len = strlen(key), name = sizeof(objects) - 1 + 3 + 64;

	size_t tail;
	if (ends_with(key, len, OBJSTORE_OWNER_KEY)) {
		tail = strlen(OBJSTORE_OWNER_KEY);
	} else {
		if (len <= name || memcmp(key + len - name, objects, sizeof(objects) - 1) != 0)
			return false;
		const char *dir = key + len - 67, *hex = key + len - 64;
		if (dir[2] != '/' || dir[0] != hex[0] || dir[1] != hex[1])
			return false;
		for (size_t i = 0; i < 64; i++)
			if (hex_digit_value(hex[i]) < 0 || isupper((unsigned char)hex[i]))
				return false;
		tail = name;
	}
	/* The rest of that vault's prefix must be one a config could hold
	 * (no empty, "." or ".." segment). */
	char rest[S3_KEY_MAX + 1];
	if (len - tail >= sizeof(rest))
		return false;
	memcpy(rest, key, len - tail);
	rest[len - tail] = '\0';
	return s3_prefix_problem(rest) == NULL;
}

static int on_key(void *opaque, const uint8_t *sha, const char *key, uint64_t size)
{
	struct fsck_remote *f = opaque;
	if (!sha && nested_vault_key(key))
		return 0;
	if (!sha) {
		problem(f, false, "remote key %s is not an object name (a stray; left alone)", key);
		return 0;
	}
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		struct remote_obj *o = realloc(f->objs, cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		f->objs = o;
		f->cap = cap;
	}
	memcpy(f->objs[f->n].sha, sha, 32);
	f->objs[f->n++].size = size;
	return 0;
}

static bool has_local(struct fsck_remote *f, const uint8_t sha[32])
{
	int fd = store_object_open(vault_store(f->v), sha);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/* A remote copy the catalog cannot count on (corrupt, wrong size): the
 * local copy of a "both" object becomes the one it names. */
static bool fall_back_local(struct fsck_remote *f, const uint8_t sha[32],
			    enum catalog_location loc, struct errbuf *eb)
{
	return f->repair && loc == CATALOG_BOTH && has_local(f, sha) &&
	       catalog_object_relocate(f->cat, sha, CATALOG_BOTH, CATALOG_LOCAL, eb) == 0;
}

/* One read of a remote object for --verify: its SHA-256, and each block
 * checked against what the catalog recorded of it (blockcheck.h) or
 * (write) its chaining states recorded there. */
struct digest_pass {
	struct catalog *cat;
	const uint8_t *sha;
	uint64_t size;
	struct blockchain *chain;
	bool write;
	uint8_t *blk;            /* the block being received (not write) */
	size_t nblk;
	uint64_t block;          /* its number */
	uint64_t missing, wrong; /* blocks with nothing recorded, or not the bytes' */
	int catalog_err;         /* the catalog failed (not the object) */
	struct errbuf *eb;
};

static int catalog_failed(struct digest_pass *p, int r)
{
	p->catalog_err = r;
	return errbuf_set(p->eb, r, "the catalog's block records: %s",
			  p->eb->msg[0] ? p->eb->msg : strerror(-r));
}

static int pass_states(void *opaque, uint64_t first, const uint8_t *states, size_t n)
{
	struct digest_pass *p = opaque;
	int r = catalog_block_states_put(p->cat, p->sha, first, states, n, p->eb);

	return r < 0 ? catalog_failed(p, r) : 0;
}

static int check_block(struct digest_pass *p)
{
	int r = blockcheck(p->cat, p->sha, p->size, p->block++, p->blk, p->nblk);

	p->nblk = 0;
	p->missing += r == -ENOENT;
	p->wrong += r == -EBADMSG;
	return r < 0 && r != -ENOENT && r != -EBADMSG ? catalog_failed(p, r) : 0;
}

static int pass_data(void *opaque, const void *buf, size_t len)
{
	struct digest_pass *p = opaque;
	const uint8_t *at = buf;
	int r = blockchain_update(p->chain, buf, len);

	while (r == 0 && !p->write && len > 0) {
		size_t take = OBJCACHE_BLOCK - p->nblk < len ? OBJCACHE_BLOCK - p->nblk : len;
		memcpy(p->blk + p->nblk, at, take);
		p->nblk += take;
		at += take;
		len -= take;
		if (p->nblk == OBJCACHE_BLOCK)
			r = check_block(p);
	}
	return r;
}

/* Reads the whole object once: 0, or -EIO when its bytes do not hash to
 * its name, or the store's or the catalog's error (eb; p->catalog_err). */
static int digest_pass_run(struct fsck_remote *f, struct digest_pass *p)
{
	uint8_t got[32] = { 0 };
	char hex[65];
	int r = blockchain_new(&p->chain, CATALOG_STATES_PER_KEY, p->write ? pass_states : NULL, p);

	if (r == 0 && !p->write && !(p->blk = malloc(OBJCACHE_BLOCK)))
		r = -ENOMEM;
	if (r == 0)
		r = objstore_read_stream(f->os, p->sha, 0, UINT64_MAX, pass_data, p, p->eb);
	if (r == 0 && p->nblk)
		r = check_block(p);
	if (r == 0)
		r = blockchain_finish(p->chain, got);
	p->chain = blockchain_free(p->chain);
	free(p->blk);
	p->blk = NULL;
	if (r == 0 && memcmp(got, p->sha, 32)) {
		sha256_hex(got, hex);
		r = errbuf_set(p->eb, -EIO, "its bytes hash to %s, not to its name", hex);
	}
	return r;
}

/* The block states of o recorded again from one read of the store's copy:
 * what was recorded before goes first, and what this read recorded goes
 * too when the read fails for the object's reasons (not the catalog's).
 * 0, or the error (eb). */
static int record_from_store(struct fsck_remote *f, const struct remote_obj *o,
			     struct errbuf *eb)
{
	struct digest_pass w = { .cat = f->cat, .sha = o->sha, .size = o->size, .write = true,
				 .eb = eb };
	struct errbuf ignored = { { 0 } };
	int r = catalog_block_digests_drop(f->cat, o->sha, o->size, eb);

	if (r < 0)
		return r;
	r = digest_pass_run(f, &w);
	f->c->bytes_hashed += o->size;
	if (r < 0 && !w.catalog_err)
		catalog_block_digests_drop(f->cat, o->sha, o->size, &ignored);
	return r;
}

/* --repair of missing or wrong digests: recorded from a second read, and
 * dropped again if that read's bytes turn out not to be the object's (the
 * store changed between the reads): an object without digests is read
 * unchecked, one with wrong digests not at all. fsck runs with capvaultd
 * stopped, so no read sees them meanwhile. */
static void rerecord_digests(struct fsck_remote *f, const struct remote_obj *o,
			     const struct digest_pass *found, const char *hex)
{
	struct errbuf eb = { { 0 } };
	int r = record_from_store(f, o, &eb);

	if (r < 0)
		problem(f, false, "remote object %s: %" PRIu64 " block digests missing and %" PRIu64
			" wrong, not recorded again: %s%s", hex, found->missing, found->wrong,
			eb.msg[0] ? eb.msg : strerror(-r),
			r == -EIO ? " (its bytes changed since the first read: run --verify again)"
				  : "");
	else
		problem(f, true, "remote object %s: %" PRIu64 " block digests missing and %" PRIu64
			" wrong; recorded again", hex, found->missing, found->wrong);
}

/*
 * --verify of one object: its bytes against its name, and the catalog's
 * block digests (which reads of its parts are checked against) against
 * its bytes. Missing digests (an object tiered by an older capvaultd: its
 * parts are read unchecked) and wrong ones (reads of those parts fail)
 * are a problem, which --repair fixes. Returns 0 when the object's bytes
 * are sound (digest problems are reported here), else the store's error
 * or -EIO, for the caller to report; a catalog error is reported here
 * and returns 0, as it says nothing of the object.
 */
static int verify_listed(struct fsck_remote *f, const struct remote_obj *o, struct errbuf *eb)
{
	struct digest_pass p = { .cat = f->cat, .sha = o->sha, .size = o->size, .eb = eb };
	char hex[65];
	int r = digest_pass_run(f, &p);

	f->c->bytes_hashed += o->size;
	sha256_hex(o->sha, hex);
	if (p.catalog_err) {
		problem(f, false, "remote object %s: %s", hex, eb->msg);
		return 0;
	}
	if (r < 0 || (p.missing == 0 && p.wrong == 0))
		return r;
	if (f->repair)
		rerecord_digests(f, o, &p, hex);
	else
		problem(f, false, "remote object %s: %" PRIu64 " block digests missing (those "
			"blocks are read unchecked) and %" PRIu64 " wrong (reads of those fail); "
			"--repair records them again", hex, p.missing, p.wrong);
	return 0;
}

/*
 * --repair of a local record whose local copy is missing while the bucket
 * holds the object (a move killed before "both", then the local copy lost
 * or quarantined): the bucket's copy, hashed against its name in one read
 * that also records its block states, becomes the one the catalog names,
 * so the capture reads from the store again. False (eb) when it cannot.
 */
static bool adopt_remote(struct fsck_remote *f, const struct remote_obj *o, uint64_t size,
			 struct errbuf *eb)
{
	int r;

	if (o->size != size) {
		errbuf_set(eb, -EIO, "it has %" PRIu64 " bytes, the catalog says %" PRIu64, o->size,
			   size);
		return false;
	}
	r = record_from_store(f, o, eb);
	if (r == 0)
		r = catalog_object_relocate(f->cat, o->sha, CATALOG_LOCAL, CATALOG_BOTH, eb);
	/* Left "both" when this fails: capvaultd's start finishes such a move. */
	if (r == 0)
		r = catalog_object_relocate(f->cat, o->sha, CATALOG_BOTH, CATALOG_REMOTE, eb);
	/* Whole again: its captures (tagged when the local copy was
	 * quarantined) are not damaged. */
	uint64_t untagged = 0;
	if (r == 0)
		r = fsck_tag_damaged(f->v, o->sha, false, &untagged, eb);
	return r == 0;
}

static void check_listed(struct fsck_remote *f, const struct remote_obj *o)
{
	struct errbuf eb = { { 0 } };
	enum catalog_location loc = CATALOG_LOCAL;
	uint64_t size = 0;
	char hex[65];
	bool done = false;
	int r = catalog_object_get(f->cat, o->sha, &size, NULL, NULL);

	sha256_hex(o->sha, hex);
	f->c->objects++;
	if (r == 0)
		r = catalog_object_location(f->cat, o->sha, &loc);
	if (r < 0 && r != -ENOENT) {
		problem(f, false, "remote object %s: cannot read the catalog: %s", hex, strerror(-r));
		return;
	}
	/* A local record without its local copy (lost, or quarantined as
	 * corrupt): the bucket's copy (a move that died before "both") may be
	 * the only one there is, never an orphan to remove. */
	if (r == 0 && loc == CATALOG_LOCAL && !has_local(f, o->sha)) {
		if (f->repair && adopt_remote(f, o, size, &eb)) {
			problem(f, true, "remote object %s: the catalog kept it locally only, and the "
				"local copy is missing; the bucket's copy hashes to its name and is "
				"the one recorded now (remote)", hex);
			return;
		}
		enum catalog_location now = CATALOG_LOCAL;
		if (f->repair && catalog_object_location(f->cat, o->sha, &now) == 0 &&
		    now != CATALOG_LOCAL) {
			/* Part way: "both" is finished by capvaultd's start. */
			problem(f, true, "remote object %s: the local copy is missing; the bucket's "
				"copy hashes to its name and is recorded (%s), then: %s", hex,
				catalog_location_name(now), eb.msg[0] ? eb.msg : "unknown error");
			return;
		}
		problem(f, false, "remote object %s: the catalog keeps it locally only, and the "
			"local copy is missing: kept, as it may be the only copy there is%s%s%s",
			hex, f->repair ? "; not taken as the recorded copy: " : "",
			f->repair ? (eb.msg[0] ? eb.msg : "unknown error") : "",
			f->repair ? "" : " (--repair checks it and records it as remote)");
		return;
	}
	if (r == -ENOENT || loc == CATALOG_LOCAL) {
		if (f->repair && (done = objstore_remove(f->os, o->sha, &eb) == 0))
			objcache_forget(vault_objcache(f->v), o->sha);
		problem(f, done, "remote object %s is an orphan (%s)%s%s%s", hex,
			r == -ENOENT ? "no capture references it" :
				       "the catalog keeps it locally only",
			done ? "; removed" : "", eb.msg[0] ? ": " : "", eb.msg);
		return;
	}
	if (o->size != size) {
		done = fall_back_local(f, o->sha, loc, &eb);
		problem(f, done, "remote object %s has %" PRIu64 " bytes, the catalog says %" PRIu64
			"%s", hex, o->size, size, done ? "; the local copy is the one recorded now" : "");
		return;
	}
	if (!f->verify)
		return;
	r = verify_listed(f, o, &eb);
	if (r == 0)
		return;
	if (r == -EIO) {
		f->c->corrupt++;
		/* Blocks cached from it may hold the wrong bytes too. */
		objcache_forget(vault_objcache(f->v), o->sha);
	}
	char why[512];
	snprintf(why, sizeof(why), "%s", eb.msg[0] ? eb.msg : strerror(-r));
	errbuf_clear(&eb);
	done = r == -EIO && fall_back_local(f, o->sha, loc, &eb);
	problem(f, done, "remote object %s: %s%s", hex, why,
		done ? "; the local copy is the one recorded now" :
		r == -EIO ? " (corrupt: kept; import the same bytes again to restore it)" : "");
}

static int check_record(void *opaque, const uint8_t sha[32], uint64_t size, uint64_t refs,
			enum catalog_location loc)
{
	struct fsck_remote *f = opaque;
	struct remote_obj key = { 0 };
	struct errbuf eb = { { 0 } };
	char hex[65];
	(void)size, (void)refs;

	if (loc == CATALOG_LOCAL)
		return 0;
	memcpy(key.sha, sha, 32);
	if (f->n && bsearch(&key, f->objs, f->n, sizeof(*f->objs), cmp_remote))
		return 0;
	sha256_hex(sha, hex);
	bool done = f->repair && loc == CATALOG_BOTH && has_local(f, sha) &&
		    catalog_object_relocate(f->cat, sha, CATALOG_BOTH, CATALOG_LOCAL, &eb) == 0;
	problem(f, done, "object %s: the catalog says %s but the object store does not have it%s",
		hex, catalog_location_name(loc),
		done ? "; the local copy is the one recorded now" :
		loc == CATALOG_REMOTE ? " (its captures cannot be read)" : "");
	return 0;
}

int fsck_remote(struct vault *v, struct objstore *os, bool repair, bool verify,
		fsck_report_fn report, void *opaque, struct fsck_counts *counts,
		struct errbuf *eb)
{
	struct fsck_remote f = { .v = v, .cat = vault_catalog(v), .os = os, .repair = repair,
				 .verify = verify, .report = report, .opaque = opaque,
				 .c = counts };
	errbuf_clear(eb);
	*counts = (struct fsck_counts){ 0 };
	int r = objstore_list(os, on_key, &f, eb);
	if (r < 0 && !eb->msg[0])
		errbuf_set(eb, r, "listing %s: %s", objstore_describe(os), strerror(-r));
	if (r == 0) {
		if (f.n > 1)
			qsort(f.objs, f.n, sizeof(*f.objs), cmp_remote);
		for (size_t i = 0; i < f.n; i++)
			check_listed(&f, &f.objs[i]);
		r = catalog_foreach_object(f.cat, check_record, &f);
		if (r < 0)
			errbuf_set(eb, r, "reading the catalog: %s", strerror(-r));
	}
	free(f.objs);
	return r;
}
