/*
 * tier.c - see tier.h.
 */
#include "tier.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockdig.h"
#include "catalog.h"
#include "cleanup.h"
#include "fdmap.h"
#include "objcache.h"
#include "objstore.h"
#include "store.h"
#include "vault.h"

/* The kill hook of tests (tier.h), read once; unset, a relaxed load per
 * step. */
static struct {
	int point;          /* -1: none */
	unsigned long n;
	atomic_ulong count;
} kill_at = { .point = -1 };
static pthread_once_t kill_once = PTHREAD_ONCE_INIT;

static void kill_init(void)
{
	static const char *const names[] = { [TIER_AT_PUT] = "put", [TIER_AT_BOTH] = "both",
					     [TIER_AT_REMOTE] = "remote" };
	const char *spec = getenv("CAPVAULT_TIER_KILL");
	const char *colon = spec ? strchr(spec, ':') : NULL;

	for (int i = 0; colon && i < 3; i++) {
		if ((size_t)(colon - spec) == strlen(names[i]) &&
		    strncmp(spec, names[i], strlen(names[i])) == 0) {
			kill_at.n = strtoul(colon + 1, NULL, 10);
			kill_at.point = i;
		}
	}
}

static void maybe_kill(enum tier_point p)
{
	pthread_once(&kill_once, kill_init);
	if (kill_at.point == (int)p && atomic_fetch_add(&kill_at.count, 1) + 1 == kill_at.n)
		raise(SIGKILL);
}

static void *close_fd(void *opaque)
{
	int *fd = opaque;

	close(*fd);
	free(fd);
	return NULL;
}

/*
 * Closes the last descriptor of an unlinked local copy on a thread of its
 * own: that close frees the file's blocks and page cache, which for a
 * 256 MiB object took 150 ms, as long as the rest of tiering after the
 * upload; the caller's answer need not wait for it. The name is already
 * gone, so nothing can find the file meanwhile.
 */
static void close_in_background(int fd)
{
	pthread_attr_t attr;
	pthread_t t;
	bool started = false;
	int *arg = malloc(sizeof(*arg));

	if (arg && pthread_attr_init(&attr) == 0) {
		*arg = fd;
		started = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
			  pthread_create(&t, &attr, close_fd, arg) == 0;
		pthread_attr_destroy(&attr);
	}
	if (!started) {
		free(arg);
		close(fd);
	}
}

struct digest_sink {
	struct catalog *cat;
	const uint8_t *sha;
	struct errbuf eb; /* its own: the put's hasher may emit on a thread of its own */
};

static int put_states(void *opaque, uint64_t first_block, const uint8_t *states, size_t n)
{
	struct digest_sink *s = opaque;

	return catalog_block_states_put(s->cat, s->sha, first_block, states, n, &s->eb);
}

struct digest_pass {
	struct blockchain *c;
	const atomic_bool *stop;
};

static int digest_piece(void *opaque, const uint8_t *data, size_t len)
{
	struct digest_pass *p = opaque;

	return atomic_load(p->stop) ? -ECANCELED : blockchain_update(p->c, data, len);
}

/*
 * Records the chaining states of the local copy's blocks (blockdig.h),
 * which the reads of its ranges from the store will be checked against,
 * in one read and one hash of each byte that also checks the copy against
 * its name: states of rotted bytes would fail every read of the sound
 * remote copy, so they are dropped then. For when the put did not hand
 * them out (objstore_put_chained).
 */
static int record_states(struct vault *v, int fd, const uint8_t sha[32], uint64_t size,
			 const atomic_bool *stop, struct errbuf *eb)
{
	struct digest_sink sink = { .cat = vault_catalog(v), .sha = sha };
	struct digest_pass pass = { .stop = stop };
	uint8_t whole[32] = { 0 };
	char hex[65], got[65];
	int r = blockchain_new(&pass.c, CATALOG_STATES_PER_KEY, put_states, &sink);

	if (r == 0)
		r = fdmap_each(fd, 0, size, digest_piece, &pass);
	if (r == 0)
		r = blockchain_finish(pass.c, whole);
	blockchain_free(pass.c);
	sha256_hex(sha, hex);
	if (r == 0 && memcmp(whole, sha, 32) != 0) {
		sha256_hex(whole, got);
		r = errbuf_set(eb, -EIO, "object %s: the local copy hashes to %s, not to its name "
			       "(capvault fsck --verify quarantines it)", hex, got);
	}
	if (r < 0 && !eb->msg[0])
		errbuf_set(eb, r, "object %s: block states of the local copy: %s", hex,
			   sink.eb.msg[0] ? sink.eb.msg : strerror(-r));
	if (r < 0) {
		struct errbuf ignored = { { 0 } };
		catalog_block_digests_drop(vault_catalog(v), sha, size, &ignored);
	}
	return r;
}

struct digest_job {
	struct vault *v;
	int fd;
	const uint8_t *sha;
	uint64_t size;
	atomic_bool stop; /* the put failed: no need to go on */
	int r;
	struct errbuf eb;
};

static void *digest_main(void *opaque)
{
	struct digest_job *j = opaque;

	j->r = record_states(j->v, j->fd, j->sha, j->size, &j->stop, &j->eb);
	return NULL;
}

/*
 * The put, and the states of the local copy's blocks made on a thread of
 * their own meanwhile, while the store receives and hashes the bytes
 * (tools/bench/tier, 512 MiB to RGW on 2 cores: 2.6 s with digests made
 * first, 2.1 s this way, 1.95 s without digests). Without a thread, one
 * after the other.
 */
static int put_beside_states(struct vault *v, struct objstore *os, const uint8_t sha[32],
			     int fd, uint64_t size, struct errbuf *eb)
{
	struct digest_job j = { .v = v, .fd = fd, .sha = sha, .size = size };
	pthread_t t;

	atomic_init(&j.stop, false);
	bool threaded = pthread_create(&t, NULL, digest_main, &j) == 0;

	if (!threaded)
		digest_main(&j);
	int r = threaded || j.r == 0 ? objstore_put(os, sha, fd, size, eb) : 0;
	if (threaded) {
		/* A put that failed (the store down, say) does not wait for the
		 * rest of a large object to be read: the move is tried again. */
		atomic_store(&j.stop, r < 0);
		pthread_join(t, NULL);
	}
	if (r == 0 && j.r < 0) {
		errbuf_set(eb, j.r, "%s", j.eb.msg);
		r = j.r;
	}
	return r;
}

/*
 * Whether every block of object sha (size bytes) has what reads of it from
 * the store are checked against (blockcheck.h): states, or an older
 * capvault's digests; an object of one block needs none.
 */
static bool records_complete(struct catalog *cat, const uint8_t sha[32], uint64_t size)
{
	uint64_t blocks = size / OBJCACHE_BLOCK + (size % OBJCACHE_BLOCK != 0);
	uint8_t rec[BLOCKDIG_STATE];
	bool ok = true;

	if (blocks <= 1)
		return true;
	/* States after blocks 0 .. blocks - 2: the last key of each. */
	for (uint64_t first = 0; ok && first <= blocks - 2; first += CATALOG_STATES_PER_KEY) {
		uint64_t end = first + CATALOG_STATES_PER_KEY - 1;
		ok = catalog_block_states(cat, sha, end < blocks - 2 ? end : blocks - 2, 1, rec) == 0;
	}
	if (ok)
		return true;
	ok = true;
	for (uint64_t first = 0; ok && first < blocks; first += CATALOG_DIGESTS_PER_KEY) {
		uint64_t end = first + CATALOG_DIGESTS_PER_KEY - 1;
		ok = catalog_block_digest(cat, sha, end < blocks - 1 ? end : blocks - 1, rec) == 0;
	}
	return ok;
}

/*
 * Puts the local copy fd in the store and records its blocks' states.
 * A multipart upload hashes the copy against its name anyway, and hands
 * the states out of that hash (one hash of each byte fewer: 512 MiB to
 * RGW on 2 cores took 1.75 s instead of 2.0 s); otherwise, or when the
 * store turned out to hold the object already (the put then reads that
 * copy, not this one), they are made from this copy beside or after it.
 */
static int put_with_states(struct vault *v, struct objstore *os, const uint8_t sha[32], int fd,
			   uint64_t size, enum catalog_location loc, struct errbuf *eb)
{
	struct digest_sink sink = { .cat = vault_catalog(v), .sha = sha };
	struct objstore_states states = { .emit = put_states, .opaque = &sink,
					  .per_emit = CATALOG_STATES_PER_KEY };
	struct errbuf ignored = { { 0 } };
	uint64_t stored = 0;
	atomic_bool never = false;

	/* A "both" object was recorded when it was first tiered, from bytes
	 * that hashed to its name: those records are its remote copy's, and a
	 * pass over this copy (rotted, say) must not replace or drop them. The
	 * put checks the remote copy, or uploads this one, which the store
	 * or the multipart upload checks against the name. */
	if (loc == CATALOG_BOTH && records_complete(vault_catalog(v), sha, size))
		return objstore_put(os, sha, fd, size, eb);
	if (!objstore_put_chains(os, size))
		return put_beside_states(v, os, sha, fd, size, eb);
	/* Already in the store at its size (or it cannot say): the put will
	 * check that copy, not hash this one. */
	int st = objstore_stat(os, sha, &stored, &ignored);
	if ((st == 0 && stored == size) || (st < 0 && st != -ENOENT))
		return put_beside_states(v, os, sha, fd, size, eb);
	int r = objstore_put_chained(os, sha, fd, size, &states, eb);
	if (r < 0 && sink.eb.msg[0]) {
		struct errbuf put_eb = *eb;
		errbuf_set(eb, r, "%s (%s)", put_eb.msg, sink.eb.msg);
	}
	if (r < 0)
		catalog_block_digests_drop(vault_catalog(v), sha, size, &ignored);
	if (r == 0 && !states.complete)
		r = record_states(v, fd, sha, size, &never, eb);
	return r;
}

int tier_object(struct vault *v, struct objstore *os, const uint8_t sha[32], uint64_t *bytes,
		struct errbuf *eb)
{
	struct catalog *cat = vault_catalog(v);
	enum catalog_location loc = CATALOG_LOCAL;
	uint64_t size = 0;
	struct stat st;
	char hex[65];
	int r = catalog_object_get(cat, sha, &size, NULL, NULL);

	errbuf_clear(eb);
	if (bytes)
		*bytes = 0;
	sha256_hex(sha, hex);
	if (r == 0)
		r = catalog_object_location(cat, sha, &loc);
	if (r < 0)
		return errbuf_set(eb, r, "object %s: %s", hex,
				  r == -ENOENT ? "no capture references it" : strerror(-r));
	if (loc == CATALOG_REMOTE)
		return TIER_ALREADY;
	_cleanup_close_ int fd = store_object_open(vault_store(v), sha);
	if (fd < 0)
		return errbuf_set(eb, fd, "object %s: cannot open the local copy: %s", hex,
				  strerror(-fd));
	if (fstat(fd, &st) < 0)
		return errbuf_set(eb, -errno, "object %s: %s", hex, strerror(errno));
	if ((uint64_t)st.st_size != size)
		return errbuf_set(eb, -EIO, "object %s: the local copy has %lld bytes, the catalog "
				  "says %llu", hex, (long long)st.st_size, (unsigned long long)size);
	r = put_with_states(v, os, sha, fd, size, loc, eb);
	/* -ENOENT says "no capture references it" to the callers, and the
	 * mover drops such a job unlogged and uncounted: the store's own (a
	 * missing folder or bucket, a 404 without an S3 code) is a failure to
	 * count and retry. */
	if (r == -ENOENT)
		r = -ENXIO;
	if (r < 0)
		return r;
	maybe_kill(TIER_AT_PUT);
	/* Two synced steps, so that a crash between them is told apart from
	 * an orphan: "both" means the remote copy was confirmed. */
	if (loc == CATALOG_LOCAL) {
		r = catalog_object_relocate(cat, sha, CATALOG_LOCAL, CATALOG_BOTH, eb);
		if (r == -ENOENT) {
			/* Its last capture went meanwhile, and its digests with it.
			 * It was local then, so no removal of a remote copy was
			 * asked for: the copy just put is no capture's, removed
			 * here rather than left as an orphan (under the move
			 * lock, nothing else makes the object remote meanwhile). */
			struct errbuf ignored = { { 0 } };
			catalog_block_digests_drop(cat, sha, size, &ignored);
			tier_remove_remote(v, os, sha, &ignored);
			errbuf_set(eb, r, "object %s: its last capture was removed while it was "
				   "being moved", hex);
		}
		if (r < 0)
			return r;
		maybe_kill(TIER_AT_BOTH);
	}
	/* The last capture may have gone during the put, taking the block
	 * records with it, and the same bytes come back (imported again): the
	 * object is that import's now, without records, and would be read
	 * unchecked once remote. Recorded again from this copy, checked
	 * against the name. */
	if (!records_complete(cat, sha, size)) {
		atomic_bool never = false;
		r = record_states(v, fd, sha, size, &never, eb);
		if (r < 0)
			return r;
	}
	r = catalog_object_relocate(cat, sha, CATALOG_BOTH, CATALOG_REMOTE, eb);
	if (r < 0)
		return r;
	maybe_kill(TIER_AT_REMOTE);
	close_in_background(TAKE_FD(fd));
	if (bytes)
		*bytes = size;
	return 0;
}

int tier_remove_remote(struct vault *v, struct objstore *os, const uint8_t sha[32],
		       struct errbuf *eb)
{
	struct catalog *cat = vault_catalog(v);
	enum catalog_location loc = CATALOG_LOCAL;
	char hex[65];
	int r = catalog_object_location(cat, sha, &loc);

	errbuf_clear(eb);
	sha256_hex(sha, hex);
	if (r < 0 && r != -ENOENT)
		return errbuf_set(eb, r, "object %s: cannot read the catalog: %s", hex,
				  strerror(-r));
	int outcome = r == 0 && loc != CATALOG_LOCAL ? TIER_KEPT : objstore_remove(os, sha, eb);
	if (outcome < 0)
		return outcome;
	/* Gone from the store: a later object of these bytes is fetched
	 * afresh, not served from what was cached of this one. */
	if (outcome != TIER_KEPT)
		objcache_forget(vault_objcache(v), sha);
	struct errbuf why = { { 0 } };
	r = catalog_remote_removed(cat, sha, outcome == TIER_KEPT, &why);
	if (r < 0)
		return errbuf_set(eb, r, "object %s: removal done, but not recorded: %s", hex,
				  why.msg[0] ? why.msg : strerror(-r));
	return outcome;
}

struct resume {
	struct vault *v;
	struct objstore *os;
	tier_object_fn fn;
	tier_remove_fn remove_fn;
	void *opaque;
	uint64_t fixed;
	int err;
	struct errbuf *eb;
};

static bool has_local(struct vault *v, const uint8_t sha[32])
{
	int fd = store_object_open(vault_store(v), sha);

	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

static int resume_one(void *opaque, const uint8_t sha[32], uint64_t size, uint64_t refs,
		      enum catalog_location loc)
{
	struct resume *s = opaque;
	struct catalog *cat = vault_catalog(s->v);
	struct errbuf eb = { { 0 } };
	uint64_t got = 0;
	int r = 0;

	(void)refs;
	if (loc == CATALOG_LOCAL)
		return 0;
	bool local = has_local(s->v, sha);
	if (loc == CATALOG_REMOTE && local) {
		r = catalog_object_relocate(cat, sha, CATALOG_REMOTE, CATALOG_BOTH, &eb);
		s->fixed += r == 0;
		loc = CATALOG_BOTH;
	}
	if (r == 0 && loc == CATALOG_BOTH && local)
		r = s->fn ? s->fn(s->opaque, sha, size) : 0;
	else if (r == 0 && loc == CATALOG_BOTH && s->os &&
		 objstore_stat(s->os, sha, &got, &eb) == 0 && got == size) {
		r = catalog_object_relocate(cat, sha, CATALOG_BOTH, CATALOG_REMOTE, &eb);
		s->fixed += r == 0;
	}
	/* Keep going: one object the store cannot answer for now is retried
	 * at the next start; the first error is reported. */
	if (r < 0 && s->err == 0) {
		s->err = r;
		errbuf_set(s->eb, r, "%s", eb.msg[0] ? eb.msg : strerror(-r));
	}
	return 0;
}

static int resume_removal(void *opaque, const uint8_t sha[32])
{
	struct resume *s = opaque;

	return s->remove_fn ? s->remove_fn(s->opaque, sha) : 0;
}

int tier_resume(struct vault *v, struct objstore *os, tier_object_fn fn, tier_remove_fn remove_fn,
		void *opaque, uint64_t *fixed, struct errbuf *eb)
{
	struct resume s = { .v = v, .os = os, .fn = fn, .remove_fn = remove_fn, .opaque = opaque,
			    .eb = eb };
	int r;

	errbuf_clear(eb);
	r = catalog_foreach_object(vault_catalog(v), resume_one, &s);
	if (r == 0)
		r = catalog_foreach_remote_removal(vault_catalog(v), resume_removal, &s);
	if (fixed)
		*fixed = s.fixed;
	if (r < 0)
		return errbuf_set(eb, r, "reading the catalog: %s", strerror(-r));
	return s.err;
}
