/*
 * test_query_remote.c - queries over a capture whose object is only in the
 * object store (a second local store stands in for it): the answer is
 * packet for packet the one the local object gave, a selective query reads
 * a small part of the object from the store, a repeat query is served
 * from the cache, and a store that fails the read fails the query with
 * -EREMOTEIO naming the capture and the store (query_check_remote too).
 * Captures come from mkcap (MKCAP in the environment; skipped without it).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "import.h"
#include "objcache.h"
#include "objstore.h"
#include "query.h"
#include "reindex.h"
#include "ring.h"
#include "tier.h"
#include "vault.h"

#define PACKETS 40000u

struct fixture {
	char dir[64];
	struct vault *v;
	struct ring *ring;
	struct store *remote;
	struct objstore *os;
	struct objcache *cache;
	uint8_t sha[32];
	uint64_t size;
	char filter[256]; /* one conversation */
};

/* What a query gave: how many packets, and a hash of them in order. */
struct answer {
	uint64_t packets;
	EVP_MD_CTX *md;
	uint8_t digest[32];
};

static int rm_entry(const char *path, const struct stat *s, int flag, struct FTW *ftw)
{
	(void)s, (void)flag, (void)ftw;
	return remove(path);
}

static int on_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct answer *a = opaque;
	a->packets++;
	EVP_DigestUpdate(a->md, &pkt->ts_ns, sizeof(pkt->ts_ns));
	EVP_DigestUpdate(a->md, &pkt->origlen, sizeof(pkt->origlen));
	EVP_DigestUpdate(a->md, pkt->data, pkt->caplen);
	return 0;
}

static int run(struct fixture *f, const char *filter, struct answer *a, struct query_stats *st,
	       struct errbuf *eb)
{
	struct query_params p = { .filter = filter };
	struct query *q = NULL;
	unsigned n = 0;
	*a = (struct answer){ .md = EVP_MD_CTX_new() };
	EVP_DigestInit_ex(a->md, EVP_sha256(), NULL);
	int err = query_new(&q, f->v, &p, eb);
	if (!err)
		err = query_run(q, f->ring, on_packet, a, eb);
	if (q && st)
		*st = *query_stats(q);
	query_free(q);
	EVP_DigestFinal_ex(a->md, a->digest, &n);
	EVP_MD_CTX_free(a->md);
	return err;
}

/* The conversation of an untagged IPv4 TCP packet near the middle. */
static int pick_flow(void *opaque, const struct capfile_packet *pkt)
{
	struct fixture *f = opaque;
	const uint8_t *d = pkt->data;
	static unsigned seen;
	if (++seen < PACKETS / 2 || f->filter[0] || pkt->caplen < 54 || d[12] != 8 || d[13] != 0 ||
	    d[23] != 6)
		return 0;
	unsigned ihl = (d[14] & 15u) * 4;
	if (14 + ihl + 4 > pkt->caplen)
		return 0;
	const uint8_t *tcp = d + 14 + ihl;
	snprintf(f->filter, sizeof(f->filter),
		 "host %u.%u.%u.%u and host %u.%u.%u.%u and tcp port %u and tcp port %u", d[26],
		 d[27], d[28], d[29], d[30], d[31], d[32], d[33], tcp[0] << 8 | tcp[1],
		 tcp[2] << 8 | tcp[3]);
	return 0;
}

static void find_object(struct fixture *f)
{
	struct query_params p = { 0 };
	struct query *q = NULL;
	struct errbuf eb;
	struct capture_record *rec = NULL;
	assert_int_equal(catalog_get(vault_catalog(f->v), 1, &rec), 0);
	memcpy(f->sha, rec->sha256, 32);
	f->size = rec->file_size;
	capture_record_free(rec);
	assert_int_equal(query_new(&q, f->v, &p, &eb), 0);
	assert_int_equal(query_run(q, f->ring, pick_flow, f, &eb), 0);
	query_free(q);
	assert_true(f->filter[0]);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct errbuf eb = { { 0 } };
	char cmd[512], cap[128], root[128];
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_query_remote.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if (!getenv("MKCAP") || ring_new(&f->ring, 16) < 0) {
		print_message("skipped: needs MKCAP and io_uring\n");
		exit(77);
	}
	snprintf(root, sizeof(root), "%s/vault", f->dir);
	assert_int_equal(vault_open_flags(&f->v, root, VAULT_CREATE, &eb), 0);
	snprintf(cap, sizeof(cap), "%s/in.pcap", f->dir);
	snprintf(cmd, sizeof(cmd), "%s --packets %u --hosts 40 --flows 0 --seed 7 -o %s",
		 getenv("MKCAP"), PACKETS, cap);
	assert_int_equal(system(cmd), 0);
	struct import_source src = { .path = cap, .name = cap, .ring = f->ring };
	struct import_result res;
	struct import_info info;
	assert_int_equal(import_file(f->ring, &vault_sink_ops, f->v, &src, &res, &info, &eb), 0);
	snprintf(root, sizeof(root), "%s/remote", f->dir);
	assert_int_equal(store_open(&f->remote, root, &eb), 0);
	assert_int_equal(objstore_local_new(&f->os, f->remote, &eb), 0);
	snprintf(root, sizeof(root), "%s/vault", f->dir);
	assert_int_equal(objcache_open(&f->cache, root, 1u << 30, &eb), 0);
	find_object(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vault_close(f->v);
	objcache_free(f->cache);
	objstore_free(f->os);
	store_close(f->remote);
	ring_free(f->ring);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Tiers the object (tier.h): a copy in the store, the catalog says
 * remote, the local one gone. */
static void tier(struct fixture *f)
{
	struct errbuf eb = { { 0 } };
	int fd = -1;
	vault_set_objstore(f->v, f->os);
	vault_set_objcache(f->v, f->cache);
	assert_int_equal(tier_object(f->v, f->os, f->sha, NULL, &eb), 0);
	assert_int_equal(store_object_open(vault_store(f->v), f->sha), -ENOENT);
	assert_int_equal(vault_object_open(f->v, f->sha, &fd), VAULT_OBJECT_REMOTE);
}

static void test_same_answer_fewer_bytes(void **state)
{
	struct fixture *f = *state;
	struct answer local_sel, local_all, a;
	struct query_stats st;
	struct errbuf eb = { { 0 } };

	assert_int_equal(run(f, f->filter, &local_sel, NULL, &eb), 0);
	assert_true(local_sel.packets >= 1);
	assert_int_equal(run(f, "tcp or udp", &local_all, NULL, &eb), 0);
	tier(f);

	assert_int_equal(run(f, f->filter, &a, &st, &eb), 0);
	assert_int_equal(a.packets, local_sel.packets);
	assert_memory_equal(a.digest, local_sel.digest, 32);
	assert_true(st.bytes_remote > 0);
	assert_true(st.bytes_remote * 20 < f->size); /* candidates only */

	/* Again: from the cache, the store not asked. */
	struct objcache_stats cs;
	objcache_get_stats(f->cache, &cs);
	uint64_t remote_reads = cs.remote_reads;
	assert_int_equal(run(f, f->filter, &a, &st, &eb), 0);
	assert_memory_equal(a.digest, local_sel.digest, 32);
	assert_int_equal(st.bytes_remote, 0);
	objcache_get_stats(f->cache, &cs);
	assert_int_equal(cs.remote_reads, remote_reads);
	assert_true(cs.hits > 0);

	/* A filter the index cannot narrow: the whole object, scanned. */
	assert_int_equal(run(f, "tcp or udp", &a, &st, &eb), 0);
	assert_int_equal(a.packets, local_all.packets);
	assert_memory_equal(a.digest, local_all.digest, 32);
}

static void test_store_failure_is_eremoteio(void **state)
{
	struct fixture *f = *state;
	struct answer a;
	struct errbuf eb = { { 0 } };
	struct query_params p = { .filter = f->filter };
	struct query *q = NULL;

	tier(f);
	/* The store lost it: the check before an answer says so (-ENODATA,
	 * a 502: not worth a retry), and so does a query that reads anyway. */
	assert_int_equal(objstore_remove(f->os, f->sha, &eb), 0);
	assert_int_equal(query_new(&q, f->v, &p, &eb), 0);
	assert_int_equal(query_check_remote(q, &eb), -ENODATA);
	assert_non_null(strstr(eb.msg, "capture 1"));
	assert_non_null(strstr(eb.msg, objstore_describe(f->os)));
	assert_non_null(strstr(eb.msg, "fsck --remote"));
	query_free(q);
	eb.msg[0] = '\0';
	assert_int_equal(run(f, f->filter, &a, NULL, &eb), -ENODATA);
	assert_non_null(strstr(eb.msg, "capture 1"));
	assert_non_null(strstr(eb.msg, objstore_describe(f->os)));
	assert_non_null(strstr(eb.msg, "fsck --remote"));
}

/* fsck --repair's rebuild of a tiered object's packet index: from the
 * object store, the same answers after; a store that cannot serve it
 * (here: it lost the object) fails before the index is touched. */
static void test_reindex_tiered(void **state)
{
	struct fixture *f = *state;
	struct answer before, a;
	struct errbuf eb = { { 0 } };
	uint64_t size, refs, objnum, packets = 0;

	assert_int_equal(run(f, f->filter, &before, NULL, &eb), 0);
	tier(f);
	assert_int_equal(catalog_object_get(vault_catalog(f->v), f->sha, &size, &refs, &objnum), 0);
	assert_int_equal(reindex_object(f->v, f->ring, f->sha, objnum, &packets, &eb), 0);
	assert_int_equal(packets, PACKETS);
	assert_int_equal(run(f, f->filter, &a, NULL, &eb), 0);
	assert_int_equal(a.packets, before.packets);
	assert_memory_equal(a.digest, before.digest, 32);

	assert_int_equal(objstore_remove(f->os, f->sha, &eb), 0);
	eb.msg[0] = '\0';
	/* Missing from the store: lost data (objread's -ENODATA), not a store
	 * to wait for. */
	assert_int_equal(reindex_object(f->v, f->ring, f->sha, objnum, &packets, &eb), -ENODATA);
	assert_non_null(strstr(eb.msg, objstore_describe(f->os)));
	/* The index was kept: the query's blocks are cached, so it answers. */
	assert_int_equal(run(f, f->filter, &a, NULL, &eb), 0);
	assert_memory_equal(a.digest, before.digest, 32);
}

/* Imports another mkcap capture (seed) and returns its object's SHA-256. */
static void import_more(struct fixture *f, unsigned seed, uint8_t sha[32])
{
	struct errbuf eb = { { 0 } };
	char cmd[512], cap[128];
	struct import_result res;
	struct import_info info;

	snprintf(cap, sizeof(cap), "%s/in%u.pcap", f->dir, seed);
	snprintf(cmd, sizeof(cmd), "%s --packets %u --hosts 40 --flows 0 --seed %u -o %s",
		 getenv("MKCAP"), PACKETS / 4, seed, cap);
	assert_int_equal(system(cmd), 0);
	struct import_source src = { .path = cap, .name = cap, .ring = f->ring };
	assert_int_equal(import_file(f->ring, &vault_sink_ops, f->v, &src, &res, &info, &eb), 0);
	memcpy(sha, res.sha256, 32);
}

/* Several remote captures in one query: the answer is the local one, and
 * a repeat asks the store for nothing. */
static void test_several_captures(void **state)
{
	struct fixture *f = *state;
	struct answer local, a;
	struct query_stats st;
	struct errbuf eb = { { 0 } };
	uint8_t more[3][32];
	const char *filter = "host 10.0.0.5 and tcp";

	for (unsigned i = 0; i < 3; i++)
		import_more(f, 20 + i, more[i]);
	assert_int_equal(run(f, filter, &local, NULL, &eb), 0);
	assert_true(local.packets > 100);
	tier(f);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(tier_object(f->v, f->os, more[i], NULL, &eb), 0);
	assert_int_equal(run(f, filter, &a, &st, &eb), 0);
	assert_int_equal(a.packets, local.packets);
	assert_memory_equal(a.digest, local.digest, 32);
	struct objcache_stats cs;
	objcache_get_stats(f->cache, &cs);
	assert_true(cs.miss_bytes > 0);
	uint64_t reads = cs.remote_reads;
	assert_int_equal(run(f, filter, &a, &st, &eb), 0);
	assert_memory_equal(a.digest, local.digest, 32);
	objcache_get_stats(f->cache, &cs);
	assert_int_equal(cs.remote_reads, reads);
}

static void test_local_check_passes(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { { 0 } };
	struct query_params p = { 0 };
	struct query *q = NULL;

	vault_set_objstore(f->v, f->os); /* configured, nothing tiered */
	vault_set_objcache(f->v, f->cache);
	assert_int_equal(query_new(&q, f->v, &p, &eb), 0);
	assert_int_equal(query_check_remote(q, &eb), 0);
	query_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_same_answer_fewer_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_failure_is_eremoteio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reindex_tiered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_captures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_check_passes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
