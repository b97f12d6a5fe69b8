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
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockdig.h"
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

/* One read of a remote object for --verify: its SHA-256, and its block
 * digests, compared with the catalog's or (write) recorded there. */
struct digest_pass {
	struct catalog *cat;
	const uint8_t *sha;
	EVP_MD_CTX *md;
	struct blockdig *bd;
	bool write;
	uint64_t differ; /* blocks whose digest is missing or not the bytes' */
	struct errbuf *eb;
};

static int pass_digests(void *opaque, uint64_t first, const uint8_t *d, size_t n)
{
	struct digest_pass *p = opaque;
	uint8_t want[OBJCACHE_DIGEST];

	if (p->write)
		return catalog_block_digests_put(p->cat, p->sha, first, d, n, p->eb);
	for (size_t i = 0; i < n; i++) {
		int r = catalog_block_digest(p->cat, p->sha, first + i, want);
		if (r < 0 && r != -ENOENT)
			return errbuf_set(p->eb, r, "reading the catalog: %s", strerror(-r));
		p->differ += r == -ENOENT || memcmp(want, d + i * OBJCACHE_DIGEST, sizeof(want));
	}
	return 0;
}

static int pass_data(void *opaque, const void *buf, size_t len)
{
	struct digest_pass *p = opaque;

	return EVP_DigestUpdate(p->md, buf, len) ? blockdig_update(p->bd, buf, len) : -ENOMEM;
}

/* Reads the whole object once: 0, or -EIO when its bytes do not hash to
 * its name, or the store's error (eb). */
static int digest_pass_run(struct fsck_remote *f, struct digest_pass *p)
{
	uint8_t got[32] = { 0 };
	unsigned n = 0;
	char hex[65];
	int r = -ENOMEM;

	p->md = EVP_MD_CTX_new();
	if (p->md && EVP_DigestInit_ex(p->md, EVP_sha256(), NULL) &&
	    (r = blockdig_new(&p->bd, CATALOG_DIGESTS_PER_KEY, pass_digests, p)) == 0)
		r = objstore_read_stream(f->os, p->sha, 0, UINT64_MAX, pass_data, p, p->eb);
	if (r == 0)
		r = blockdig_finish(p->bd);
	if (r == 0)
		r = EVP_DigestFinal_ex(p->md, got, &n) && n == 32 ? 0 : -ENOMEM;
	blockdig_free(p->bd);
	EVP_MD_CTX_free(p->md);
	if (r == 0 && memcmp(got, p->sha, 32)) {
		sha256_hex(got, hex);
		r = errbuf_set(p->eb, -EIO, "its bytes hash to %s, not to its name", hex);
	}
	return r;
}

/*
 * --verify of one object: its bytes against its name, and the catalog's
 * block digests (which range reads are checked against) against its
 * bytes. Digests that are missing (an object tiered before they were
 * kept) or wrong are recorded again with repair, from a second read, once
 * the first showed the bytes are the object's.
 */
static int verify_listed(struct fsck_remote *f, const struct remote_obj *o, struct errbuf *eb)
{
	struct digest_pass p = { .cat = f->cat, .sha = o->sha, .eb = eb };
	char hex[65];
	int r = digest_pass_run(f, &p);

	f->c->bytes_hashed += o->size;
	if (r < 0 || p.differ == 0)
		return r;
	sha256_hex(o->sha, hex);
	if (f->repair) {
		struct digest_pass w = { .cat = f->cat, .sha = o->sha, .write = true, .eb = eb };
		r = digest_pass_run(f, &w);
		f->c->bytes_hashed += o->size;
	}
	if (r == 0)
		problem(f, f->repair, "remote object %s: the catalog's digests of %" PRIu64
			" of its blocks are missing or wrong%s", hex, p.differ,
			f->repair ? "; recorded again" : " (reads of them are not checked; run with "
							 "--repair to record them)");
	return r;
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
