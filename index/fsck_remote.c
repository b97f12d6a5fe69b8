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

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "objcache.h"
#include "objstore.h"
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

static int on_key(void *opaque, const uint8_t *sha, const char *key, uint64_t size)
{
	struct fsck_remote *f = opaque;
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
	f->c->bytes_hashed += o->size;
	r = objstore_verify(f->os, o->sha, &eb);
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
