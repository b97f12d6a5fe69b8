/*
 * test_reindex.c - fsck finds a capture whose packet index was deleted
 * (pindex_delete_object, as a lost or damaged index would look), and
 * fsck --repair rebuilds it from the object (reindex.c) so that queries
 * answer exactly as before; a corrupt object's index is not rebuilt, and
 * a query over damaged flow blocks fails instead of answering short, and
 * fsck finds and rebuilds them. Deleting an object's index deletes its
 * postings too.
 * Captures come from mkcap (MKCAP in the environment; skipped without it).
 */
#include <errno.h>
#include <ftw.h>
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

#include "catalog.h"
#include "db.h"
#include "fsck.h"
#include "import.h"
#include "objcache.h"
#include "objstore.h"
#include "pindex.h"
#include "query.h"
#include "reindex.h"
#include "ring.h"
#include "store.h"
#include "tier.h"
#include "vault.h"

struct fixture {
	char dir[64];
	struct vault *v;
	struct ring *ring;
	uint64_t id, objnum;
	uint8_t sha[32];
};

struct answer {
	uint64_t packets;
	uint64_t sum; /* of offsets and times, order-sensitive */
};

static const char *const filters[] = { "", "tcp", "udp", "host 10.0.0.1", "tcp port 80",
				       "not tcp" };
#define NFILTERS (sizeof(filters) / sizeof(filters[0]))

static int rm_entry(const char *path, const struct stat *s, int flag, struct FTW *ftw)
{
	(void)s, (void)flag, (void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	const char *mkcap = getenv("MKCAP");
	struct fixture *f = calloc(1, sizeof(*f));
	struct errbuf eb = { { 0 } };
	char cmd[512], cap[128];
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_reindex.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if (!mkcap || ring_new(&f->ring, 16) < 0) {
		print_message("skipped: needs MKCAP and io_uring\n");
		exit(77);
	}
	/* The store is created in the empty folder; the capture goes beside. */
	assert_int_equal(vault_open_flags(&f->v, f->dir, VAULT_CREATE, &eb), 0);
	snprintf(cap, sizeof(cap), "%s/in.pcap", f->dir);
	snprintf(cmd, sizeof(cmd), "%s --packets 3000 --hosts 12 --flows 200 --seed 9 -o %s", mkcap,
		 cap);
	assert_int_equal(system(cmd), 0);
	struct import_source src = { .path = cap, .name = "in.pcap", .ring = f->ring };
	struct import_result res;
	struct import_info info;
	assert_int_equal(import_file(f->ring, &vault_sink_ops, f->v, &src, &res, &info, &eb), 0);
	f->id = res.capture_id;
	memcpy(f->sha, res.sha256, 32);
	struct capture_record *rec = NULL;
	char id[24];
	snprintf(id, sizeof(id), "%llu", (unsigned long long)f->id);
	assert_int_equal(catalog_lookup(vault_catalog(f->v), id, &rec, &eb), 0);
	f->objnum = rec->objnum;
	capture_record_free(rec);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vault_close(f->v);
	ring_free(f->ring);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static int on_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct answer *a = opaque;
	a->packets++;
	a->sum = a->sum * 1000003u + pkt->offset + pkt->ts_ns;
	return 0;
}

static struct answer ask(struct fixture *f, const char *filter)
{
	struct answer a = { 0 };
	struct query_params p = { .filter = filter };
	struct query *q = NULL;
	struct errbuf eb = { { 0 } };
	assert_int_equal(query_new(&q, f->v, &p, &eb), 0);
	assert_int_equal(query_run(q, f->ring, on_packet, &a, &eb), 0);
	query_free(q);
	return a;
}

/* Every filter answers as it did before. */
static void assert_same_answers(struct fixture *f, const struct answer before[NFILTERS])
{
	for (size_t i = 0; i < NFILTERS; i++) {
		struct answer after = ask(f, filters[i]);
		assert_int_equal(after.packets, before[i].packets);
		assert_int_equal(after.sum, before[i].sum);
	}
}

struct reports {
	char text[8][768];
	size_t n;
};

static void on_report(void *opaque, const char *text, bool repaired)
{
	struct reports *r = opaque;
	(void)repaired;
	if (r->n < 8)
		snprintf(r->text[r->n++], sizeof(r->text[0]), "%s", text);
}

static struct fsck_counts fsck(struct fixture *f, bool repair, struct reports *r)
{
	struct fsck_counts c;
	struct errbuf eb = { { 0 } };
	memset(r, 0, sizeof(*r));
	assert_int_equal(fsck_run(f->v, f->ring, repair, on_report, r, &c, &eb), 0);
	return c;
}

static void drop_index(struct fixture *f)
{
	struct db_batch *b = NULL;
	struct errbuf eb = { { 0 } };
	assert_int_equal(db_batch_new(&b), 0);
	pindex_delete_object(vault_db(f->v), b, f->objnum);
	assert_int_equal(db_write(vault_db(f->v), b, true, &eb), 0);
	db_batch_free(b);
}

/* Postings of objnum in the store: their key ends objnum(8) first id(4). */
static size_t count_postings(struct fixture *f, uint64_t objnum)
{
	struct db_iter *it = NULL;
	size_t n = 0;
	assert_int_equal(db_iter_new(vault_db(f->v), DB_CF_POSTINGS, &it), 0);
	for (db_iter_seek_first(it); db_iter_valid(it); db_iter_next(it)) {
		size_t klen;
		const uint8_t *k = db_iter_key(it, &klen);
		n += klen >= 12 && be64_get(k + klen - 12) == objnum;
	}
	db_iter_free(it);
	return n;
}

/* Deleting an object's index takes its postings too (objterms lists
 * them), and a rebuild brings them back. */
static void test_delete_takes_postings(void **state)
{
	struct fixture *f = *state;
	size_t before = count_postings(f, f->objnum);
	assert_true(before > 10);
	drop_index(f);
	assert_int_equal(count_postings(f, f->objnum), 0);
	struct reports r;
	fsck(f, true, &r);
	assert_int_equal(count_postings(f, f->objnum), before);
}

/* Postings of an object number no object has (as stores indexed before
 * objterms kept for every deleted object): fsck finds them, --repair
 * removes them and leaves the live ones. */
static void test_dead_postings_removed(void **state)
{
	struct fixture *f = *state;
	size_t live = count_postings(f, f->objnum);
	struct db_batch *b = NULL;
	struct errbuf eb = { { 0 } };
	uint8_t key[5 + 12] = { PTERM_IP4, 10, 9, 8, 7 };
	assert_int_equal(db_batch_new(&b), 0);
	for (uint32_t id = 0; id < 3; id++) {
		be64_put(key + 5, f->objnum + 1000);
		be32_put(key + 13, id);
		db_batch_put(b, DB_CF_POSTINGS, key, sizeof(key), "\x01", 1);
	}
	assert_int_equal(db_write(vault_db(f->v), b, true, &eb), 0);
	db_batch_free(b);

	struct reports r;
	struct fsck_counts c = fsck(f, false, &r);
	assert_int_equal(c.problems, 1);
	assert_non_null(strstr(r.text[0], "postings: 3 entries"));
	c = fsck(f, true, &r);
	assert_int_equal(c.repaired, 1);
	assert_int_equal(count_postings(f, f->objnum + 1000), 0);
	assert_int_equal(count_postings(f, f->objnum), live);
	c = fsck(f, false, &r);
	assert_int_equal(c.problems, 0);
}

static void test_repair_rebuilds(void **state)
{
	struct fixture *f = *state;
	struct answer before[NFILTERS];
	struct reports r;
	for (size_t i = 0; i < NFILTERS; i++)
		before[i] = ask(f, filters[i]);
	assert_true(before[0].packets == 3000);
	assert_true(before[1].packets > 0 && before[1].packets < 3000);
	assert_int_equal(fsck(f, false, &r).problems, 0);

	drop_index(f);
	struct fsck_counts c = fsck(f, false, &r);
	assert_int_equal(c.problems, 1);
	assert_int_equal(c.repaired, 0);
	assert_non_null(strstr(r.text[0], "packet index missing"));

	c = fsck(f, true, &r);
	assert_int_equal(c.problems, 1);
	assert_int_equal(c.repaired, 1);
	assert_non_null(strstr(r.text[0], "rebuilt from the object (3000 packets)"));
	assert_int_equal(fsck(f, false, &r).problems, 0);
	for (size_t i = 0; i < NFILTERS; i++) {
		struct answer a = ask(f, filters[i]);
		assert_true(a.packets == before[i].packets);
		assert_true(a.sum == before[i].sum);
	}
}

/* reindex_object on an index that is still there replaces it with the
 * same entries: the answers do not change. */
static void test_reindex_twice(void **state)
{
	struct fixture *f = *state;
	struct answer before = ask(f, "tcp");
	struct errbuf eb = { { 0 } };
	uint64_t packets = 0;
	assert_int_equal(reindex_object(f->v, f->ring, f->sha, f->objnum, &packets, &eb), 0);
	assert_true(packets == 3000);
	struct answer a = ask(f, "tcp");
	assert_true(a.packets == before.packets && a.sum == before.sum);
	struct reports r;
	assert_int_equal(fsck(f, false, &r).problems, 0);
}

/* A corrupt object is not trusted to rebuild its index. */
static void test_corrupt_not_rebuilt(void **state)
{
	struct fixture *f = *state;
	char path[512];
	struct reports r;
	assert_int_equal(store_object_path(vault_store(f->v), f->sha, path, sizeof(path)), 0);
	chmod(path, 0644);
	FILE *fp = fopen(path, "r+b");
	assert_non_null(fp);
	fseek(fp, 5000, SEEK_SET);
	int ch = fgetc(fp);
	fseek(fp, 5000, SEEK_SET);
	fputc(ch ^ 0xff, fp);
	fclose(fp);
	drop_index(f);
	struct fsck_counts c = fsck(f, true, &r);
	assert_int_equal(c.problems, 2);
	assert_int_equal(c.repaired, 0);
	assert_non_null(strstr(r.text[1], "not repaired: the object is missing or corrupt"));
}

/* Every flow block of the capture cut to half its length. */
static void damage_flow_blocks(struct fixture *f)
{
	struct db_batch *b = NULL;
	struct db_iter *it = NULL;
	struct errbuf eb = { { 0 } };
	uint8_t prefix[8];
	be64_put(prefix, f->objnum);
	assert_int_equal(db_batch_new(&b), 0);
	assert_int_equal(db_iter_new(vault_db(f->v), DB_CF_FLOWS, &it), 0);
	size_t blocks = 0;
	for (db_iter_seek(it, prefix, sizeof(prefix)); db_iter_valid(it); db_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *key = db_iter_key(it, &klen);
		if (klen < 8 || memcmp(key, prefix, 8) != 0)
			break;
		const void *val = db_iter_value(it, &vlen);
		db_batch_put(b, DB_CF_FLOWS, key, klen, val, vlen / 2);
		blocks++;
	}
	db_iter_free(it);
	assert_true(blocks > 0);
	assert_int_equal(db_write(vault_db(f->v), b, true, &eb), 0);
	db_batch_free(b);
}

/* A damaged index must fail the query, not answer with fewer packets. */
static void test_damaged_flows_fail_query(void **state)
{
	struct fixture *f = *state;
	struct answer a = { 0 };
	struct query_params p = { .filter = "host 10.0.0.1" };
	struct query *q = NULL;
	struct errbuf eb = { { 0 } };
	assert_true(ask(f, "host 10.0.0.1").packets > 0);
	damage_flow_blocks(f);
	assert_int_equal(query_new(&q, f->v, &p, &eb), 0);
	assert_int_equal(query_run(q, f->ring, on_packet, &a, &eb), -EIO);
	assert_non_null(strstr(eb.msg, "packet index does not decode"));
	query_free(q);
}

/* fsck finds damaged flow blocks, and --repair rebuilds them. */
static void test_damaged_flows_repaired(void **state)
{
	struct fixture *f = *state;
	struct reports r;
	struct answer before[NFILTERS];
	for (size_t i = 0; i < NFILTERS; i++)
		before[i] = ask(f, filters[i]);
	assert_int_equal(fsck(f, false, &r).problems, 0);
	damage_flow_blocks(f);
	struct fsck_counts c = fsck(f, false, &r);
	assert_int_equal(c.problems, 1);
	assert_non_null(strstr(r.text[0], "packet index missing or damaged"));
	c = fsck(f, true, &r);
	assert_int_equal(c.repaired, 1);
	assert_int_equal(fsck(f, false, &r).problems, 0);
	assert_same_answers(f, before);
}

/* A tiered capture (its bytes only in the object store, which fsck does
 * not read): fsck --repair says its index was not rebuilt and why, not
 * that the object is missing. */
static void test_tiered_not_rebuilt_said(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { { 0 } };
	char path[512];
	struct reports r;
	assert_int_equal(catalog_object_relocate(vault_catalog(f->v), f->sha, CATALOG_LOCAL,
						 CATALOG_BOTH, &eb), 0);
	assert_int_equal(catalog_object_relocate(vault_catalog(f->v), f->sha, CATALOG_BOTH,
						 CATALOG_REMOTE, &eb), 0);
	assert_int_equal(store_object_path(vault_store(f->v), f->sha, path, sizeof(path)), 0);
	unlink(path);
	drop_index(f);
	struct fsck_counts c = fsck(f, true, &r);
	assert_int_equal(c.problems, 1);
	assert_int_equal(c.repaired, 0);
	assert_non_null(strstr(r.text[0], "not rebuilt: its bytes are only in the object store"));
	assert_null(strstr(r.text[0], "missing or corrupt"));
}

/* Given the object store (as fsck --repair --config gives it), fsck
 * rebuilds a tiered capture's index from it, through the cache, and the
 * answers are the ones before; no local copy comes back. */
static void test_tiered_rebuilt_from_store(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { { 0 } };
	char remote_dir[64] = "/tmp/test_reindex_remote.XXXXXX";
	struct store *remote = NULL;
	struct objstore *os = NULL;
	struct objcache *cache = NULL;
	struct reports r;
	int fd = -1;

	struct answer before[NFILTERS];
	for (size_t i = 0; i < NFILTERS; i++)
		before[i] = ask(f, filters[i]);
	assert_non_null(mkdtemp(remote_dir));
	assert_int_equal(store_open(&remote, remote_dir, &eb), 0);
	assert_int_equal(objstore_local_new(&os, remote, &eb), 0);
	assert_int_equal(objcache_open(&cache, f->dir, 1u << 30, &eb), 0);
	vault_set_objstore(f->v, os);
	vault_set_objcache(f->v, cache);
	assert_int_equal(tier_object(f->v, os, f->sha, NULL, &eb), 0);
	drop_index(f);
	struct fsck_counts c = fsck(f, true, &r);
	assert_int_equal(c.problems, 1);
	assert_int_equal(c.repaired, 1);
	assert_int_equal(fsck(f, false, &r).problems, 0);
	assert_same_answers(f, before);
	assert_int_equal(vault_object_open(f->v, f->sha, &fd), VAULT_OBJECT_REMOTE);
	vault_set_objstore(f->v, NULL);
	vault_set_objcache(f->v, NULL);
	objcache_free(cache);
	objstore_free(os);
	store_close(remote);
	nftw(remote_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_repair_rebuilds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_takes_postings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dead_postings_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reindex_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_not_rebuilt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_flows_fail_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_flows_repaired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiered_not_rebuilt_said, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiered_rebuilt_from_store, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
