/*
 * test_tier.c - where objects are and moving them (index/tier.h, the
 * location functions of catalog.h), against an in-memory object store:
 * records start local; a move puts, records both then remote and only
 * then removes the local copy; a refused put leaves the object local and
 * whole; an import of a remote object's bytes makes it both; removing the
 * last capture of a remote object asks for the remote copy's removal; a
 * crash's leftovers are finished by tier_resume; every capture record
 * carries its object's location.
 */
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "blockcheck.h"
#include "blockdig.h"
#include "catalog.h"
#include "db.h"
#include "fsck.h"
#include "objstore_mem.h"
#include "retention.h"
#include "store.h"
#include "tier.h"
#include "vault.h"

struct fixture {
	char dir[64];
	struct vault *v;
	struct objstore *os;
	unsigned released_remote;
	uint8_t released_sha[32];
};

static int rm_entry(const char *path, const struct stat *s, int flag, struct FTW *ftw)
{
	(void)s, (void)flag, (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct errbuf eb;
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_tier.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(vault_open_flags(&f->v, f->dir, VAULT_CREATE, &eb), 0);
	assert_int_equal(objstore_mem_new(&f->os), 0);
	vault_set_objstore(f->v, f->os);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vault_close(f->v);
	objstore_free(f->os);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void make_object(struct fixture *f, unsigned seed, size_t size, uint8_t sha[32])
{
	char *buf = malloc(size), path[512], dir[512];
	unsigned n = 0;
	assert_non_null(buf);
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)(seed * 31 + i);
	assert_true(EVP_Digest(buf, size, sha, &n, EVP_sha256(), NULL));
	assert_int_equal(store_object_path(vault_store(f->v), sha, path, sizeof(path)), 0);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdir(dir, 0750);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, size, fp), size);
	fclose(fp);
	free(buf);
}

static uint64_t import_ns; /* 0: now */
static uint64_t object_bytes; /* of the next captures; 0: 1000 + seed */
#define OBJ3 (3 * OBJCACHE_BLOCK + 100) /* 4 blocks, 3 states */

/* Commits r (freed here): the outcome; *id (if given) the capture's id. */
static int commit_record(struct fixture *f, struct capture_record *r, uint64_t *id)
{
	struct db_batch *b = NULL;
	struct errbuf eb;
	uint64_t existing = 0;
	assert_int_equal(db_batch_new(&b), 0);
	int rc = catalog_commit(vault_catalog(f->v), r, b, &existing, &eb);
	db_batch_free(b);
	if (id)
		*id = rc == 0 ? r->id : existing;
	capture_record_free(r);
	return rc;
}

/* A capture of seed's bytes; returns CATALOG_DUPLICATE's outcome too. */
static int add_capture(struct fixture *f, unsigned seed, uint8_t sha[32], uint64_t *id)
{
	struct capture_record *r = calloc(1, sizeof(*r));
	char name[32];
	assert_non_null(r);
	snprintf(name, sizeof(name), "cap%u.pcap", seed);
	r->name = strdup(name);
	r->file_size = object_bytes ? object_bytes : 1000 + seed;
	make_object(f, seed, r->file_size, r->sha256);
	r->objnum = catalog_next_objnum(vault_catalog(f->v));
	r->import_time_ns = import_ns;
	memcpy(sha, r->sha256, 32);
	int rc = commit_record(f, r, id);
	assert_true(rc == 0 || rc == CATALOG_DUPLICATE);
	return rc;
}

/* A duplicate of seed's capture committed without writing its object
 * (an import whose publish found the object stored): the outcome. */
static int commit_duplicate(struct fixture *f, unsigned seed, const uint8_t sha[32])
{
	struct capture_record *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	r->name = strdup("again.pcap");
	r->file_size = 1000 + seed;
	memcpy(r->sha256, sha, 32);
	return commit_record(f, r, NULL);
}

static bool has_local(struct fixture *f, const uint8_t sha[32])
{
	int fd = store_object_open(vault_store(f->v), sha);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

static enum catalog_location location_of(struct fixture *f, const uint8_t sha[32])
{
	enum catalog_location loc = 99;
	assert_int_equal(catalog_object_location(vault_catalog(f->v), sha, &loc), 0);
	return loc;
}

/* The location the capture record (its stored JSON) shows. */
static const char *record_location(struct fixture *f, uint64_t id)
{
	static char out[16];
	char *raw = NULL;
	size_t len = 0;
	assert_int_equal(catalog_get_raw(vault_catalog(f->v), id, &raw, &len), 0);
	json_t *o = json_loadb(raw, len, 0, NULL);
	assert_non_null(o);
	const char *loc = json_string_value(json_object_get(o, "location"));
	snprintf(out, sizeof(out), "%s", loc ? loc : "");
	json_decref(o);
	free(raw);
	return out;
}

static void test_starts_local(void **state)
{
	struct fixture *f = *state;
	uint8_t sha[32];
	uint64_t id;
	add_capture(f, 1, sha, &id);
	assert_int_equal(location_of(f, sha), CATALOG_LOCAL);
	assert_string_equal(record_location(f, id), "local");
	enum catalog_location loc;
	assert_int_equal(catalog_location_parse("both", &loc), 0);
	assert_int_equal(loc, CATALOG_BOTH);
	assert_int_equal(catalog_location_parse("elsewhere", &loc), -EINVAL);
	uint8_t none[32] = { 0 };
	assert_int_equal(catalog_object_location(vault_catalog(f->v), none, &loc), -ENOENT);
}

static void test_tier_moves(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t sha[32], sha2[32];
	uint64_t id, id2, bytes = 0;
	add_capture(f, 2, sha, &id);
	add_capture(f, 3, sha2, &id2);
	assert_int_equal(tier_object(f->v, f->os, sha, &bytes, &eb), 0);
	assert_int_equal(bytes, 1002);
	assert_int_equal(location_of(f, sha), CATALOG_REMOTE);
	assert_string_equal(record_location(f, id), "remote");
	assert_true(objstore_mem_has(f->os, sha));
	assert_false(has_local(f, sha));
	/* The other object stays where it was. */
	assert_int_equal(location_of(f, sha2), CATALOG_LOCAL);
	assert_true(has_local(f, sha2));
	assert_int_equal(tier_object(f->v, f->os, sha, &bytes, &eb), TIER_ALREADY);
	/* A wrong expectation changes nothing. */
	assert_int_equal(catalog_object_relocate(vault_catalog(f->v), sha2, CATALOG_BOTH,
						 CATALOG_REMOTE, &eb), -ESTALE);
	assert_int_equal(location_of(f, sha2), CATALOG_LOCAL);
	struct catalog_totals t;
	assert_int_equal(catalog_totals(vault_catalog(f->v), &t), 0);
	assert_int_equal(t.remote_objects, 1);
	assert_int_equal(t.remote_bytes, 1002);
	assert_int_equal(t.local_objects, 1);
}

static void test_put_refused(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t sha[32];
	uint64_t id;
	add_capture(f, 4, sha, &id);
	objstore_mem_fail_puts(f->os, 1, -ETIMEDOUT);
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), -ETIMEDOUT);
	assert_int_equal(location_of(f, sha), CATALOG_LOCAL);
	assert_true(has_local(f, sha));
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), 0);
	assert_int_equal(location_of(f, sha), CATALOG_REMOTE);
	/* A store that answers "no such thing" (a folder or bucket missing):
	 * not the -ENOENT of an object gone from the catalog, which the mover
	 * drops uncounted (advtier F). */
	uint8_t sha2[32];
	uint64_t id2;
	add_capture(f, 5, sha2, &id2);
	objstore_mem_fail_puts(f->os, 1, -ENOENT);
	int r = tier_object(f->v, f->os, sha2, NULL, &eb);
	assert_true(r < 0 && r != -ENOENT);
	assert_int_equal(location_of(f, sha2), CATALOG_LOCAL);
}

static void test_reimport_makes_both(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t sha[32];
	uint64_t id, again;
	add_capture(f, 5, sha, &id);
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), 0);
	assert_false(has_local(f, sha));
	/* The same bytes imported again: the local file is published anew. */
	assert_int_equal(add_capture(f, 5, sha, &again), CATALOG_DUPLICATE);
	assert_int_equal(again, id);
	assert_int_equal(location_of(f, sha), CATALOG_BOTH);
	assert_string_equal(record_location(f, id), "both");
	/* Tiering it again finishes the move. */
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), 0);
	assert_int_equal(location_of(f, sha), CATALOG_REMOTE);
	assert_false(has_local(f, sha));
}

/* A duplicate import whose object was moved to the store between its
 * publish (which found the local file) and its commit: the file went on
 * purpose and the bytes are in the store, so it merges and the object
 * stays remote (advtier E: it failed as "pruned or quarantined"). An
 * object still local in the catalog whose file went is another matter:
 * -EAGAIN, for a retry that publishes the bytes again. */
static void test_duplicate_of_moved_object(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t sha[32], sha2[32];
	uint64_t id, id2;
	add_capture(f, 6, sha, &id);
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), 0);
	assert_false(has_local(f, sha));
	assert_int_equal(commit_duplicate(f, 6, sha), CATALOG_DUPLICATE);
	assert_int_equal(location_of(f, sha), CATALOG_REMOTE);
	assert_string_equal(record_location(f, id), "remote");

	add_capture(f, 7, sha2, &id2);
	assert_int_equal(store_object_remove(vault_store(f->v), sha2), 0);
	assert_int_equal(commit_duplicate(f, 7, sha2), -EAGAIN);
	assert_int_equal(location_of(f, sha2), CATALOG_LOCAL);
}

static int note_release(void *opaque, const uint8_t sha[32])
{
	struct fixture *f = opaque;
	f->released_remote++;
	memcpy(f->released_sha, sha, 32);
	return 0;
}

static void test_remove_remote(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t sha[32], sha2[32];
	uint64_t id, id2;
	add_capture(f, 6, sha, &id);
	add_capture(f, 7, sha2, &id2);
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), 0);
	/* Without a mover, the vault removes the remote copy at once. */
	assert_int_equal(vault_remove(f->v, id, NULL, &eb), 0);
	assert_false(objstore_mem_has(f->os, sha));
	/* With one, it is told, and tier_remove_remote removes it unless the
	 * object is remote again. */
	vault_set_remote_release(f->v, note_release, f);
	assert_int_equal(tier_object(f->v, f->os, sha2, NULL, &eb), 0);
	assert_int_equal(vault_remove(f->v, id2, NULL, &eb), 0);
	assert_int_equal(f->released_remote, 1);
	assert_memory_equal(f->released_sha, sha2, 32);
	assert_true(objstore_mem_has(f->os, sha2));
	uint64_t again;
	add_capture(f, 7, sha2, &again);
	assert_int_equal(tier_object(f->v, f->os, sha2, NULL, &eb), 0);
	/* Referenced again and remote again: kept, and told apart from a
	 * removal (the daemon logs and counts only removals). */
	assert_int_equal(tier_remove_remote(f->v, f->os, sha2, &eb), TIER_KEPT);
	assert_true(objstore_mem_has(f->os, sha2));
	assert_int_equal(vault_remove(f->v, again, NULL, &eb), 0);
	assert_int_equal(tier_remove_remote(f->v, f->os, sha2, &eb), 0);
	assert_false(objstore_mem_has(f->os, sha2));
	/* A local object's removal asks for nothing remote. */
	uint8_t sha3[32];
	uint64_t id3;
	add_capture(f, 8, sha3, &id3);
	assert_int_equal(vault_remove(f->v, id3, NULL, &eb), 0);
	assert_int_equal(f->released_remote, 2);
}

/* The capture removed (rm, prune) while its object is on its way to the
 * store: its object was local at the removal, so no removal of a remote
 * copy was asked for; the move must not leave the copy it put behind as
 * an orphan that only fsck --remote finds (adv advtier A). */
struct rm_during_put {
	struct fixture *f;
	uint64_t id;
	unsigned reimport_seed; /* nonzero: then seed's OBJ3 bytes imported again */
	bool done;
};

static void remove_capture_now(void *opaque)
{
	struct rm_during_put *r = opaque;
	struct errbuf eb;
	uint8_t sha[32];
	uint64_t id;
	if (r->done)
		return;
	r->done = true;
	if (r->reimport_seed)
		usleep(300 * 1000); /* the states of these 4 blocks are recorded by then */
	assert_int_equal(vault_remove(r->f->v, r->id, NULL, &eb), 0);
	if (!r->reimport_seed)
		return;
	object_bytes = OBJ3;
	add_capture(r->f, r->reimport_seed, sha, &id);
	object_bytes = 0;
}

static void test_removed_during_put(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t sha[32];
	uint64_t id;
	add_capture(f, 9, sha, &id);
	vault_set_remote_release(f->v, note_release, f);
	struct rm_during_put r = { .f = f, .id = id };
	objstore_mem_on_put(f->os, remove_capture_now, &r);
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), -ENOENT);
	objstore_mem_on_put(f->os, NULL, NULL);
	assert_true(r.done);
	assert_false(has_local(f, sha));
	assert_int_equal(f->released_remote, 0); /* local at the removal: nothing asked */
	assert_false(objstore_mem_has(f->os, sha));
	assert_int_equal(objstore_mem_count(f->os), 0);
}

/* A local copy that rotted, of an object the store holds already (the
 * put checks the store's copy and does not read this one): the move fails
 * and records no state of the rotted bytes. */
static void test_rotted_copy_not_digested(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t sha[32], got[32];
	char path[512];
	uint64_t id;
	object_bytes = 3 * OBJCACHE_BLOCK + 12;
	add_capture(f, 12, sha, &id);
	object_bytes = 0;
	int fd = store_object_open(vault_store(f->v), sha);
	assert_int_equal(objstore_put(f->os, sha, fd, 3 * OBJCACHE_BLOCK + 12, &eb), 0);
	close(fd);
	assert_int_equal(store_object_path(vault_store(f->v), sha, path, sizeof(path)), 0);
	chmod(path, 0600);
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	fputc('X', fp);
	fclose(fp);
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), -EIO);
	assert_non_null(strstr(eb.msg, "the local copy hashes to"));
	assert_int_equal(catalog_block_states(vault_catalog(f->v), sha, 0, 1, got), -ENOENT);
	assert_int_equal(location_of(f, sha), CATALOG_LOCAL);
	/* The same when the store could not say at first whether it has the
	 * object (its put then finds it and reads nothing here). */
	objstore_mem_fail_stats(f->os, 1, -ETIMEDOUT);
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), -EIO);
	assert_non_null(strstr(eb.msg, "the local copy hashes to"));
	assert_int_equal(catalog_block_states(vault_catalog(f->v), sha, 0, 1, got), -ENOENT);
	assert_int_equal(location_of(f, sha), CATALOG_LOCAL);
}

static void no_report(void *opaque, const char *text, bool repaired)
{
	(void)opaque, (void)text, (void)repaired;
}

static struct fsck_counts fsck_remote_run(struct fixture *f, bool repair)
{
	struct fsck_counts c;
	struct errbuf eb;
	assert_int_equal(fsck_remote(f->v, f->os, repair, true, no_report, NULL, &c, &eb), 0);
	return c;
}

/* Keys of a vault whose prefix extends this one's (its objects and its
 * owner key, under our objects/) are not this vault's problems; a key
 * that only looks like one (another directory, capitals) is a stray. */
static void test_nested_vault_keys(void **state)
{
	struct fixture *f = *state;
	char hex[65], key[160];
	uint8_t sha[32];

	memset(sha, 0xab, sizeof(sha));
	sha256_hex(sha, hex);
	snprintf(key, sizeof(key), "objects/objects/ab/%s", hex);
	objstore_mem_set(f->os, NULL, key, "x", 1);
	snprintf(key, sizeof(key), "objects/b/objects/ab/%s", hex);
	objstore_mem_set(f->os, NULL, key, "x", 1);
	objstore_mem_set(f->os, NULL, "objects/capvault-vault", "x", 1);
	objstore_mem_set(f->os, NULL, "objects/x/capvault-vault", "x", 1);
	assert_int_equal(fsck_remote_run(f, false).problems, 0);
	snprintf(key, sizeof(key), "objects/objects/cd/%s", hex);
	objstore_mem_set(f->os, NULL, key, "x", 1);
	snprintf(key, sizeof(key), "objects/objects/ab/%s", hex);
	for (char *p = key + strlen("objects/objects/"); *p; p++)
		*p = (char)toupper((unsigned char)*p);
	objstore_mem_set(f->os, NULL, key, "x", 1);
	objstore_mem_set(f->os, NULL, "objects/zz/stray", "x", 1);
	/* Under a prefix no config could hold. */
	snprintf(key, sizeof(key), "objects//objects/ab/%s", hex);
	objstore_mem_set(f->os, NULL, key, "x", 1);
	objstore_mem_set(f->os, NULL, "objects/./capvault-vault", "x", 1);
	struct fsck_counts c = fsck_remote_run(f, true);
	assert_int_equal(c.problems, 5);
	assert_int_equal(c.repaired, 0);
	assert_int_equal(objstore_mem_count(f->os), 9);
}

/* Each block of object sha (OBJ3 bytes of seed's pattern) checks against
 * the catalog's records; a changed byte does not. */
static void blocks_check(struct fixture *f, unsigned seed, const uint8_t sha[32])
{
	uint8_t *buf = malloc(OBJCACHE_BLOCK);
	assert_non_null(buf);
	for (uint64_t b = 0; b < 4; b++) {
		size_t len = b < 3 ? OBJCACHE_BLOCK : 100;
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)(seed * 31 + b * OBJCACHE_BLOCK + i);
		assert_int_equal(blockcheck(vault_catalog(f->v), sha, OBJ3, b, buf, len), 0);
		buf[len - 1] ^= 1;
		assert_int_equal(blockcheck(vault_catalog(f->v), sha, OBJ3, b, buf, len), -EBADMSG);
	}
	free(buf);
}

/* Chaining states (blockdig.h): recorded by a move, whether the put hands
 * them out (as S3's multipart upload) or not; checked by fsck --remote
 * --verify and recorded again by --repair, which also turns an older
 * object's digests into states; one key per CATALOG_DIGESTS_PER_KEY
 * blocks, gone with the object's last capture. */
static void test_block_states(void **state)
{
	struct fixture *f = *state;
	struct catalog *cat = vault_catalog(f->v);
	struct errbuf eb;
	uint8_t sha[32], sha2[32], got[32], states[3 * 32], other[3 * 32];
	uint64_t id, id2;
	object_bytes = OBJ3;
	add_capture(f, 9, sha, &id);
	add_capture(f, 10, sha2, &id2);
	object_bytes = 0;
	assert_int_equal(catalog_block_states(cat, sha, 0, 1, got), -ENOENT);
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), 0);
	for (uint64_t b = 0; b < 3; b++)
		assert_int_equal(catalog_block_states(cat, sha, b, 1, states + b * 32), 0);
	assert_int_equal(catalog_block_states(cat, sha, 3, 1, got), -ENOENT);
	blocks_check(f, 9, sha);
	/* The put hands them out: the same checks. */
	objstore_mem_chain_above(f->os, OBJCACHE_BLOCK);
	assert_int_equal(tier_object(f->v, f->os, sha2, NULL, &eb), 0);
	assert_int_equal(catalog_block_states(cat, sha2, 2, 1, got), 0);
	blocks_check(f, 10, sha2);
	assert_int_equal(fsck_remote_run(f, false).problems, 0);
	/* A wrong state: reported; --repair records the bytes' own. */
	memcpy(other, states, sizeof(other));
	other[40] ^= 1;
	assert_int_equal(catalog_block_states_put(cat, sha, 0, other, 3, &eb), 0);
	struct fsck_counts c = fsck_remote_run(f, false);
	assert_int_equal(c.problems, 1);
	assert_int_equal(c.repaired, 0);
	c = fsck_remote_run(f, true);
	assert_int_equal(c.problems, 1);
	assert_int_equal(c.repaired, 1);
	assert_int_equal(catalog_block_states(cat, sha, 1, 1, got), 0);
	assert_memory_equal(got, states + 32, 32);
	assert_int_equal(fsck_remote_run(f, false).problems, 0);
	/* An object tiered with digests still checks, and --repair turns a
	 * wrong one into states. */
	uint8_t digests[4 * 16], *blk = malloc(OBJCACHE_BLOCK);
	assert_non_null(blk);
	for (uint64_t b = 0; b < 4; b++) {
		size_t len = b < 3 ? OBJCACHE_BLOCK : 100;
		for (size_t i = 0; i < len; i++)
			blk[i] = (uint8_t)(9 * 31 + b * OBJCACHE_BLOCK + i);
		assert_int_equal(blockdig_of(blk, len, digests + b * 16), 0);
	}
	assert_int_equal(catalog_block_digests_drop(cat, sha, OBJ3, &eb), 0);
	assert_int_equal(catalog_block_digests_put(cat, sha, 0, digests, 4, &eb), 0);
	blocks_check(f, 9, sha);
	assert_int_equal(fsck_remote_run(f, false).problems, 0);
	digests[20] ^= 1;
	assert_int_equal(catalog_block_digests_put(cat, sha, 0, digests, 4, &eb), 0);
	assert_int_equal(blockcheck(cat, sha, OBJ3, 1, blk, OBJCACHE_BLOCK), -EBADMSG);
	assert_int_equal(fsck_remote_run(f, true).repaired, 1);
	assert_int_equal(catalog_block_digest(cat, sha, 0, got), -ENOENT);
	assert_int_equal(catalog_block_states(cat, sha, 2, 1, got), 0);
	blocks_check(f, 9, sha);
	/* None at all: missing, read unchecked; --repair records them. */
	assert_int_equal(catalog_block_digests_drop(cat, sha, OBJ3, &eb), 0);
	assert_int_equal(blockcheck(cat, sha, OBJ3, 1, blk, OBJCACHE_BLOCK), -ENOENT);
	assert_int_equal(fsck_remote_run(f, false).problems, 1);
	assert_int_equal(fsck_remote_run(f, true).repaired, 1);
	blocks_check(f, 9, sha);
	free(blk);
	/* Keys past the first: blocks 1024 to 1026 in one, and two read
	 * across the boundary of keys. */
	assert_int_equal(catalog_block_states_put(cat, sha, 1024, other, 3, &eb), 0);
	assert_int_equal(catalog_block_states(cat, sha, 1026, 1, got), 0);
	assert_memory_equal(got, other + 64, 32);
	assert_int_equal(catalog_block_states(cat, sha, 1027, 1, got), -ENOENT);
	assert_int_equal(catalog_block_states(cat, sha, 1023, 2, states), -ENOENT);
	uint8_t filler[CATALOG_STATES_PER_KEY * 32];
	memset(filler, 0x33, sizeof(filler));
	assert_int_equal(catalog_block_states_put(cat, sha, 1024 - CATALOG_STATES_PER_KEY, filler,
						  CATALOG_STATES_PER_KEY, &eb), 0);
	assert_int_equal(catalog_block_states(cat, sha, 1023, 2, states), 0);
	assert_memory_equal(states, filler, 32);
	assert_memory_equal(states + 32, other, 32);
	assert_int_equal(catalog_block_states_put(cat, sha, 5, other, 1, &eb), -EINVAL);
	assert_int_equal(catalog_block_states_put(cat, sha, 0, filler, CATALOG_STATES_PER_KEY + 1,
						  &eb), -EINVAL);
	/* Dropped for an object of 1025 blocks: every key goes. */
	assert_int_equal(catalog_block_digests_drop(cat, sha, 1025ull << 16, &eb), 0);
	assert_int_equal(catalog_block_states(cat, sha, 0, 1, got), -ENOENT);
	assert_int_equal(catalog_block_states(cat, sha, 1023, 1, got), -ENOENT);
	assert_int_equal(catalog_block_states(cat, sha, 1026, 1, got), -ENOENT);
	/* The last capture's removal takes them. */
	assert_int_equal(catalog_block_states_put(cat, sha, 0, states, 3, &eb), 0);
	assert_int_equal(vault_remove(f->v, id, NULL, &eb), 0);
	assert_int_equal(catalog_block_states(cat, sha, 0, 1, got), -ENOENT);
}

/* A "both" object (remote, imported again) whose new local copy rotted:
 * moving it again finds the rot, but the states recorded when it was
 * first tiered, from bytes that hashed to its name, are the sound remote
 * copy's and must stay; dropped, every block of it read from the store
 * once it is remote only (fsck's quarantine, min_free) goes unchecked. */
static void test_both_rotted_keeps_states(void **state)
{
	struct fixture *f = *state;
	struct catalog *cat = vault_catalog(f->v);
	struct errbuf eb;
	uint8_t sha[32], got[32], before[32];
	char path[512];
	uint64_t id;
	object_bytes = OBJ3;
	add_capture(f, 14, sha, &id);
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), 0);
	assert_int_equal(catalog_block_states(cat, sha, 1, 1, before), 0);
	assert_int_equal(add_capture(f, 14, sha, &id), CATALOG_DUPLICATE);
	object_bytes = 0;
	assert_int_equal(location_of(f, sha), CATALOG_BOTH);
	assert_int_equal(store_object_path(vault_store(f->v), sha, path, sizeof(path)), 0);
	chmod(path, 0600);
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	fseek(fp, OBJCACHE_BLOCK + 7, SEEK_SET);
	fputc('X', fp);
	fclose(fp);
	/* The store's copy is sound: the move ends there. */
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), 0);
	assert_int_equal(location_of(f, sha), CATALOG_REMOTE);
	assert_int_equal(catalog_block_states(cat, sha, 1, 1, got), 0);
	assert_memory_equal(got, before, 32);
	blocks_check(f, 14, sha);
}

/* The last capture removed and the same bytes imported again while the
 * object is on its way to the store (the states already recorded): the
 * removal takes the states, the import makes the object local again, and
 * the move goes on to make it remote. Its blocks must still be checked,
 * not read unchecked for want of states. */
static void test_removed_and_reimported_during_put(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t sha[32];
	uint64_t id;
	object_bytes = OBJ3;
	add_capture(f, 15, sha, &id);
	object_bytes = 0;
	struct rm_during_put r = { .f = f, .id = id, .reimport_seed = 15 };
	objstore_mem_on_put(f->os, remove_capture_now, &r);
	int rc = tier_object(f->v, f->os, sha, NULL, &eb);
	objstore_mem_on_put(f->os, NULL, NULL);
	assert_true(r.done);
	assert_int_equal(rc, 0);
	assert_int_equal(location_of(f, sha), CATALOG_REMOTE);
	blocks_check(f, 15, sha);
}

/* An object of one block needs no record: its name checks it. */
static void test_one_block_by_name(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t sha[32], buf[1011];
	uint64_t id;
	add_capture(f, 11, sha, &id);
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(11 * 31 + i);
	assert_int_equal(blockcheck(vault_catalog(f->v), sha, sizeof(buf), 0, buf, sizeof(buf)), 0);
	buf[7] ^= 1;
	assert_int_equal(blockcheck(vault_catalog(f->v), sha, sizeof(buf), 0, buf, sizeof(buf)),
			 -EBADMSG);
}

/* A removal the daemon queued, then lost (a restart while the store was
 * down): the catalog keeps it, tier_resume hands it back, and it is
 * forgotten only once done (adv18 F5). */
static int collect_removal(void *opaque, const uint8_t sha[32])
{
	struct fixture *f = opaque;
	f->released_remote++;
	memcpy(f->released_sha, sha, 32);
	return 0;
}

static unsigned pending_removals(struct fixture *f)
{
	struct errbuf eb;
	f->released_remote = 0;
	assert_int_equal(tier_resume(f->v, f->os, NULL, collect_removal, f, NULL, &eb), 0);
	return f->released_remote;
}

static void restart(struct fixture *f)
{
	struct errbuf eb;
	vault_close(f->v);
	assert_int_equal(vault_open_flags(&f->v, f->dir, 0, &eb), 0);
	vault_set_objstore(f->v, f->os);
	vault_set_remote_release(f->v, note_release, f);
}

static void test_removal_survives_restart(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t sha[32], sha2[32];
	uint64_t id, id2, again;
	vault_set_remote_release(f->v, note_release, f);
	add_capture(f, 12, sha, &id);
	assert_int_equal(tier_object(f->v, f->os, sha, NULL, &eb), 0);
	assert_int_equal(vault_remove(f->v, id, NULL, &eb), 0);
	assert_true(objstore_mem_has(f->os, sha));
	restart(f);
	assert_int_equal(pending_removals(f), 1);
	assert_memory_equal(f->released_sha, sha, 32);
	/* A failed removal stays pending. */
	objstore_mem_fail_removes(f->os, 1, -ECONNREFUSED);
	assert_int_equal(tier_remove_remote(f->v, f->os, sha, &eb), -ECONNREFUSED);
	restart(f);
	assert_int_equal(pending_removals(f), 1);
	assert_int_equal(tier_remove_remote(f->v, f->os, sha, &eb), 0);
	assert_false(objstore_mem_has(f->os, sha));
	restart(f);
	assert_int_equal(pending_removals(f), 0);

	/* Invariant 7: the same bytes imported and tiered again before the
	 * removal ran keep their remote copy, and the removal is done. */
	add_capture(f, 13, sha2, &id2);
	assert_int_equal(tier_object(f->v, f->os, sha2, NULL, &eb), 0);
	assert_int_equal(vault_remove(f->v, id2, NULL, &eb), 0);
	add_capture(f, 13, sha2, &again);
	assert_int_equal(tier_object(f->v, f->os, sha2, NULL, &eb), 0);
	restart(f);
	assert_int_equal(pending_removals(f), 1);
	assert_int_equal(tier_remove_remote(f->v, f->os, sha2, &eb), TIER_KEPT);
	assert_true(objstore_mem_has(f->os, sha2));
	assert_int_equal(location_of(f, sha2), CATALOG_REMOTE);
	assert_int_equal(pending_removals(f), 0);
	/* Imported again but local only: the catalog names no remote copy,
	 * so the stale one goes and the local object stays. */
	assert_int_equal(vault_remove(f->v, again, NULL, &eb), 0);
	add_capture(f, 13, sha2, &again);
	assert_int_equal(location_of(f, sha2), CATALOG_LOCAL);
	assert_int_equal(pending_removals(f), 1);
	assert_int_equal(tier_remove_remote(f->v, f->os, sha2, &eb), 0);
	assert_false(objstore_mem_has(f->os, sha2));
	assert_true(has_local(f, sha2));
	assert_int_equal(pending_removals(f), 0);

	/* Removed offline, with no object store known (rm without
	 * --config): pending for the daemon's next start. */
	uint8_t sha3[32];
	uint64_t id3;
	add_capture(f, 14, sha3, &id3);
	assert_int_equal(tier_object(f->v, f->os, sha3, NULL, &eb), 0);
	vault_set_remote_release(f->v, NULL, NULL);
	vault_set_objstore(f->v, NULL);
	assert_int_equal(vault_remove(f->v, id3, NULL, &eb), 0);
	restart(f);
	assert_int_equal(pending_removals(f), 1);
	assert_memory_equal(f->released_sha, sha3, 32);
	assert_int_equal(tier_remove_remote(f->v, f->os, sha3, &eb), 0);
	assert_false(objstore_mem_has(f->os, sha3));
	assert_int_equal(pending_removals(f), 0);
}

static int collect_resume(void *opaque, const uint8_t sha[32], uint64_t size)
{
	struct fixture *f = opaque;
	(void)size;
	f->released_remote++;
	memcpy(f->released_sha, sha, 32);
	return 0;
}

static void test_resume(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	struct catalog *cat = vault_catalog(f->v);
	uint8_t a[32], b[32], c[32];
	uint64_t ia, ib, ic, fixed = 0;
	int fd;
	add_capture(f, 9, a, &ia);
	add_capture(f, 10, b, &ib);
	add_capture(f, 11, c, &ic);
	/* a: killed after "both" (the put confirmed): to be finished. */
	fd = store_object_open(vault_store(f->v), a);
	assert_int_equal(objstore_put(f->os, a, fd, 1009, &eb), 0);
	close(fd);
	assert_int_equal(catalog_object_relocate(cat, a, CATALOG_LOCAL, CATALOG_BOTH, &eb), 0);
	/* b: "both" whose local file is gone, the store has it: remote. */
	fd = store_object_open(vault_store(f->v), b);
	assert_int_equal(objstore_put(f->os, b, fd, 1010, &eb), 0);
	close(fd);
	assert_int_equal(catalog_object_relocate(cat, b, CATALOG_LOCAL, CATALOG_BOTH, &eb), 0);
	assert_int_equal(store_object_remove(vault_store(f->v), b), 0);
	/* c: remote with a local copy imported again: both, then finished. */
	assert_int_equal(tier_object(f->v, f->os, c, NULL, &eb), 0);
	make_object(f, 11, 1011, c);
	assert_int_equal(tier_resume(f->v, f->os, collect_resume, NULL, f, &fixed, &eb), 0);
	assert_int_equal(fixed, 2);
	assert_int_equal(f->released_remote, 2); /* a and c handed back */
	assert_int_equal(location_of(f, a), CATALOG_BOTH);
	assert_int_equal(location_of(f, b), CATALOG_REMOTE);
	assert_string_equal(record_location(f, ib), "remote");
	assert_int_equal(location_of(f, c), CATALOG_BOTH);
	assert_int_equal(tier_object(f->v, f->os, a, NULL, &eb), 0);
	assert_int_equal(location_of(f, a), CATALOG_REMOTE);
	assert_false(has_local(f, a));
}

/* The capture record of id as a record written before locations existed. */
static void strip_location(struct fixture *f, uint64_t id)
{
	struct db_batch *b = NULL;
	struct errbuf eb;
	uint8_t key[8];
	char *raw = NULL;
	size_t len = 0;
	assert_int_equal(catalog_get_raw(vault_catalog(f->v), id, &raw, &len), 0);
	json_t *o = json_loadb(raw, len, 0, NULL);
	free(raw);
	assert_int_equal(json_object_del(o, "location"), 0);
	char *old = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	be64_put(key, id);
	assert_int_equal(db_batch_new(&b), 0);
	db_batch_put(b, DB_CF_CAPTURES, key, 8, old, strlen(old));
	db_batch_delete(b, DB_CF_META, "locations", 9);
	assert_int_equal(db_write(vault_db(f->v), b, true, &eb), 0);
	db_batch_free(b);
	free(old);
	assert_string_equal(record_location(f, id), "");
}

/* Records without "location" get one when the catalog is opened, once:
 * their object's, which the objects column family says (it is the truth,
 * so a record of a remote object does not read "local"). */
static void test_old_records_migrated(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t sha[32], sha2[32];
	uint64_t id, id2;
	add_capture(f, 40, sha, &id);
	add_capture(f, 41, sha2, &id2);
	assert_int_equal(tier_object(f->v, f->os, sha2, NULL, &eb), 0);
	strip_location(f, id);
	strip_location(f, id2);
	struct catalog *cat = NULL;
	assert_int_equal(catalog_new(&cat, vault_db(f->v), &eb), 0);
	catalog_free(cat);
	assert_string_equal(record_location(f, id), "local");
	assert_string_equal(record_location(f, id2), "remote");
}

#define DAY (86400ull * 1000000000ull)
#define NOW (20000ull * DAY)

static uint64_t add_aged(struct fixture *f, unsigned seed, uint64_t days, uint8_t sha[32])
{
	uint64_t id;
	import_ns = NOW - days * DAY;
	add_capture(f, seed, sha, &id);
	import_ns = 0;
	return id;
}

/* A file system with 500 bytes free of 10000. */
static int space_500(void *opaque, uint64_t *free_bytes, uint64_t *total_bytes)
{
	(void)opaque;
	*free_bytes = 500;
	*total_bytes = 10000;
	return 0;
}

static struct retention_plan *plan_of(struct fixture *f, const struct retention_rules *rules)
{
	struct retention_env env = { .now_ns = NOW };
	struct retention_plan *plan = NULL;
	struct errbuf eb;
	assert_int_equal(retention_plan(vault_catalog(f->v), rules, &env, &plan, &eb), 0);
	return plan;
}

static void test_tier_after(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t a[32], b[32], c[32], d[32];
	uint64_t ia = add_aged(f, 20, 1, a);     /* young: stays */
	uint64_t ib = add_aged(f, 21, 3, b);     /* over tier_after: tiered */
	add_aged(f, 22, 10, c);                  /* over max_age: deleted, not tiered */
	add_aged(f, 23, 4, d);                   /* already remote: not again */
	assert_int_equal(tier_object(f->v, f->os, d, NULL, &eb), 0);
	struct retention_policy p = { .name = "all", .has_max_age = true, .max_age_ns = 7 * DAY,
				      .has_tier_after = true, .tier_after_ns = 2 * DAY };
	struct retention_rules rules = { .policies = &p, .n_policies = 1 };
	struct retention_plan *plan = plan_of(f, &rules);
	assert_int_equal(plan->n, 1);
	assert_int_equal(plan->ntier, 1);
	assert_int_equal(plan->tier[0].id, ib);
	assert_memory_equal(plan->tier[0].sha256, b, 32);
	assert_string_equal(plan->tier[0].policy, "all");
	assert_non_null(strstr(plan->tier[0].reason, "tier_after"));
	assert_int_equal(plan->tier_bytes, 1021);
	json_t *doc = retention_plan_to_json(plan, true);
	assert_int_equal(json_array_size(json_object_get(doc, "tier")), 1);
	json_decref(doc);
	retention_plan_free(plan);
	(void)ia;
}

static void test_local_max_size(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t a[32], b[32], c[32], d[32];
	uint64_t ia = add_aged(f, 30, 9, a); /* 1030 bytes, the oldest */
	uint64_t ib = add_aged(f, 31, 8, b); /* 1031 */
	add_aged(f, 32, 7, c);               /* 1032 */
	add_aged(f, 33, 10, d);              /* 1033, remote: does not count */
	assert_int_equal(tier_object(f->v, f->os, d, NULL, &eb), 0);
	/* 3093 local bytes: two oldest go to get to 1100 or less. */
	struct retention_rules rules = { .local_max_size = 1100 };
	struct retention_plan *plan = plan_of(f, &rules);
	assert_int_equal(plan->n, 0);
	assert_int_equal(plan->ntier, 2);
	assert_int_equal(plan->tier[0].id, ia);
	assert_int_equal(plan->tier[1].id, ib);
	assert_string_equal(plan->tier[0].policy, "local_max_size");
	retention_plan_free(plan);
	/* Under the limit: nothing. */
	rules.local_max_size = 4000;
	plan = plan_of(f, &rules);
	assert_int_equal(plan->ntier, 0);
	retention_plan_free(plan);
}

/* min_free deletes only captures with a local copy: one that is only in
 * the object store frees no local byte, and its deletion loses the only
 * copy for nothing. */
static void test_min_free_spares_remote(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t a[32], b[32], c[32];
	add_aged(f, 40, 9, a);               /* the oldest, remote only */
	uint64_t ib = add_aged(f, 41, 8, b); /* local */
	add_aged(f, 42, 7, c);               /* local, the youngest */
	assert_int_equal(tier_object(f->v, f->os, a, NULL, &eb), 0);
	struct retention_rules rules = { .min_free_bytes = 1000 };
	struct retention_env env = { .now_ns = NOW, .space = space_500 };
	struct retention_plan *plan = NULL;
	assert_int_equal(retention_plan(vault_catalog(f->v), &rules, &env, &plan, &eb), 0);
	assert_int_equal(plan->n, 1);
	assert_int_equal(plan->items[0].id, ib);
	assert_string_equal(plan->items[0].policy, "min_free");
	retention_plan_free(plan);
}

/* min_free frees an object that is in both places (here: a remote object
 * imported again) by ending its move when the store answers, which frees
 * the same local bytes and keeps the capture; else it deletes as before. */
static void test_min_free_ends_moves(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint8_t a[32], b[32];
	uint64_t ia = add_aged(f, 50, 9, a); /* the oldest: remote, then imported again */
	add_aged(f, 51, 8, b);
	assert_int_equal(tier_object(f->v, f->os, a, NULL, &eb), 0);
	add_aged(f, 50, 9, a);
	assert_int_equal(location_of(f, a), CATALOG_BOTH);
	struct retention_rules rules = { .min_free_bytes = 1000 };
	struct retention_env env = { .now_ns = NOW, .space = space_500, .finish_moves = true };
	struct retention_plan *plan = NULL;
	assert_int_equal(retention_plan(vault_catalog(f->v), &rules, &env, &plan, &eb), 0);
	assert_int_equal(plan->n, 0);
	assert_int_equal(plan->ntier, 1);
	assert_int_equal(plan->tier[0].id, ia);
	assert_string_equal(plan->tier[0].policy, "min_free");
	assert_non_null(strstr(plan->tier[0].reason, "< min_free"));
	assert_false(plan->below_min_free_after);
	retention_plan_free(plan);
	/* A store that does not answer cannot end the move: deleted. */
	env.finish_moves = false;
	assert_int_equal(retention_plan(vault_catalog(f->v), &rules, &env, &plan, &eb), 0);
	assert_int_equal(plan->n, 1);
	assert_int_equal(plan->items[0].id, ia);
	assert_int_equal(plan->ntier, 0);
	retention_plan_free(plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_starts_local, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tier_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reimport_makes_both, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_of_moved_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_remote, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_during_put, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_vault_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_block_by_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_and_reimported_during_put, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_rotted_keeps_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotted_copy_not_digested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removal_survives_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tier_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_records_migrated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_max_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_min_free_spares_remote, setup, teardown),
		cmocka_unit_test_setup_teardown(test_min_free_ends_moves, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
