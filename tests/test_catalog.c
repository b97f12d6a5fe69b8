/*
 * test_catalog.c - unit tests of the RocksDB wrapper and the capture
 * catalog: records round-trip through commit/get with every field, one
 * capture per object (duplicates write nothing), lookups by id and sha256
 * prefix, tags, counters that survive a reopen, a held store that is
 * -EBUSY instead of a hang, and the token cache (a hit equals the stored
 * token; cleared, a revoked token is refused at once), and the capture
 * summary listings select from, which agrees with the records after
 * every kind of write.
 */
#include <errno.h>
#include <inttypes.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "annot.h"
#include "catalog.h"
#include "db.h"
#include "store.h"
#include "tokens.h"

struct fixture {
	char dir[64];
	char dbdir[128];
	struct db *db;
	struct catalog *cat;
};

static int rm_entry(const char *path, const struct stat *s, int flag, struct FTW *ftw)
{
	(void)s, (void)flag, (void)ftw;
	return remove(path);
}

static void open_all(struct fixture *f)
{
	struct errbuf eb;

	assert_int_equal(db_open(&f->db, f->dbdir, &eb), 0);
	assert_int_equal(catalog_new(&f->cat, f->db, &eb), 0);
}

static void close_all(struct fixture *f)
{
	f->cat = catalog_free(f->cat);
	f->db = db_close(f->db);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_catalog.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->dbdir, sizeof(f->dbdir), "%s/index", f->dir);
	open_all(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close_all(f);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* A record with every field set to something distinct. */
static struct capture_record *make_record(const char *name, uint8_t sha_byte)
{
	struct capture_record *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->name = strdup(name);
	memset(r->sha256, sha_byte, 32);
	r->sha256[31] = 0x5a;
	r->file_size = 1000003;
	r->source_size = 250001;
	snprintf(r->format, sizeof(r->format), "pcap");
	snprintf(r->compression, sizeof(r->compression), "gzip");
	r->version_major = 2;
	r->version_minor = 4;
	r->big_endian = true;
	r->nanosecond = true;
	r->snaplen = 262144;
	r->linktypes[0] = 1;   /* EN10MB */
	r->linktypes[1] = 113; /* LINUX_SLL */
	r->nlinktypes = 2;
	r->interfaces = 2;
	r->sections = 1;
	r->packets = 1000;
	r->data_bytes = 500000;
	r->wire_bytes = 600000;
	r->first_ts_ns = 1700000000123456789ull;
	r->last_ts_ns = 1700000009000000000ull;
	r->earliest_ts_ns = 1700000000000000001ull;
	r->latest_ts_ns = 1700000010000000001ull; /* 10 s later */
	r->time_ordered = false;
	r->oversized = 3;
	r->truncated = true;
	r->error = strdup("truncated record at byte 999");
	r->import_time_ns = 1710000000000000000ull;
	r->source_path = strdup("/srv/drop/a.pcap.gz");
	r->comment = strdup("a comment");
	assert_int_equal(capture_record_add_tag(r, "site:paris"), 0);
	assert_int_equal(capture_record_add_tag(r, "web"), 0);
	assert_int_equal(capture_record_add_tag(r, "web"), 0); /* no duplicates */
	r->index_bytes = 4242;
	r->objnum = 7;
	return r;
}

/* catalog_commit of rec in a batch of its own: its result (*existing: a
 * duplicate's capture). */
static int commit_as(struct fixture *f, struct capture_record *rec, uint64_t *existing)
{
	struct db_batch *b = NULL;
	struct errbuf eb;

	assert_int_equal(db_batch_new(&b), 0);
	int r = catalog_commit(f->cat, rec, b, existing, &eb);
	db_batch_free(b);
	return r;
}

static uint64_t commit(struct fixture *f, struct capture_record *rec)
{
	uint64_t existing = 0;

	assert_int_equal(commit_as(f, rec, &existing), 0);
	assert_true(rec->id > 0);
	return rec->id;
}

static void assert_same_record(const struct capture_record *a, const struct capture_record *b)
{
	assert_int_equal(a->id, b->id);
	assert_string_equal(a->name, b->name);
	assert_memory_equal(a->sha256, b->sha256, 32);
	assert_int_equal(a->file_size, b->file_size);
	assert_int_equal(a->source_size, b->source_size);
	assert_string_equal(a->format, b->format);
	assert_string_equal(a->compression, b->compression);
	assert_int_equal(a->version_major, b->version_major);
	assert_int_equal(a->version_minor, b->version_minor);
	assert_int_equal(a->big_endian, b->big_endian);
	assert_int_equal(a->nanosecond, b->nanosecond);
	assert_int_equal(a->snaplen, b->snaplen);
	assert_int_equal(a->nlinktypes, b->nlinktypes);
	assert_memory_equal(a->linktypes, b->linktypes, a->nlinktypes * sizeof(a->linktypes[0]));
	assert_int_equal(a->interfaces, b->interfaces);
	assert_int_equal(a->sections, b->sections);
	assert_int_equal(a->packets, b->packets);
	assert_int_equal(a->data_bytes, b->data_bytes);
	assert_int_equal(a->wire_bytes, b->wire_bytes);
	assert_int_equal(a->first_ts_ns, b->first_ts_ns);
	assert_int_equal(a->last_ts_ns, b->last_ts_ns);
	assert_int_equal(a->earliest_ts_ns, b->earliest_ts_ns);
	assert_int_equal(a->latest_ts_ns, b->latest_ts_ns);
	assert_int_equal(a->time_ordered, b->time_ordered);
	assert_int_equal(a->time_saturated, b->time_saturated);
	assert_int_equal(a->oversized, b->oversized);
	assert_int_equal(a->truncated, b->truncated);
	assert_string_equal(a->error, b->error);
	assert_int_equal(a->import_time_ns, b->import_time_ns);
	assert_string_equal(a->source_path, b->source_path);
	assert_string_equal(a->comment, b->comment);
	assert_int_equal(a->ntags, b->ntags);
	for (size_t i = 0; i < a->ntags; i++)
		assert_string_equal(a->tags[i], b->tags[i]);
	assert_int_equal(a->index_bytes, b->index_bytes);
	assert_int_equal(a->objnum, b->objnum);
}

/* The time family's keys, as (flipped time, id) pairs, in key order. */
static size_t time_keys(struct fixture *f, uint64_t *times, uint64_t *ids, size_t max)
{
	struct db_iter *it = NULL;
	size_t n = 0;

	assert_int_equal(db_iter_new(f->db, DB_CF_TIME, &it), 0);
	for (db_iter_seek_first(it); db_iter_valid(it); db_iter_next(it)) {
		size_t klen;
		const uint8_t *k = db_iter_key(it, &klen);
		assert_int_equal(klen, 16);
		assert_true(n < max);
		times[n] = be64_get(k);
		ids[n++] = be64_get(k + 8);
	}
	db_iter_free(it);
	return n;
}

/* Times before 1970 and saturated ones round-trip, print as what they
 * are, and the time keys sort in time order. */
static void test_signed_times(void **state)
{
	struct fixture *f = *state;
	struct capture_record *a = make_record("old.pcapng", 0x31), *b = make_record("b", 0x32);
	struct capture_record *got = NULL;
	uint64_t times[4], ids[4];

	a->first_ts_ns = a->earliest_ts_ns = -100000000000000ll;
	a->last_ts_ns = a->latest_ts_ns = INT64_MAX;
	a->time_saturated = 2;
	uint64_t ida = commit(f, a), idb = commit(f, b);
	assert_int_equal(catalog_get(f->cat, ida, &got), 0);
	assert_same_record(a, got);
	assert_true(got->earliest_ts_ns == -100000000000000ll);
	assert_true(got->latest_ts_ns == INT64_MAX);
	assert_int_equal(got->time_saturated, 2);
	json_t *o = capture_record_to_json(got);
	assert_string_equal(json_string_value(json_object_get(o, "first_packet_time")),
			    "1969-12-30T20:13:20.000000000Z");
	assert_string_equal(json_string_value(json_object_get(o, "first_packet_time_epoch")),
			    "-100000.000000000");
	assert_true(json_integer_value(json_object_get(o, "first_packet_time_ns")) ==
		    -100000000000000ll);
	assert_false(json_is_true(json_object_get(o, "first_packet_time_saturated")));
	assert_true(json_is_true(json_object_get(o, "latest_packet_time_saturated")));
	assert_int_equal(json_integer_value(json_object_get(o, "time_saturated")), 2);
	json_decref(o);
	capture_record_free(got);
	/* before 1970 sorts first */
	assert_int_equal(time_keys(f, times, ids, 4), 2);
	assert_int_equal(ids[0], ida);
	assert_int_equal(ids[1], idb);
	bool unlink_object = false;
	uint8_t sha[32];
	assert_int_equal(catalog_remove(f->cat, ida, &unlink_object, sha, NULL), 0);
	assert_int_equal(time_keys(f, times, ids, 4), 1);
	capture_record_free(a);
	capture_record_free(b);
}

/* A store written when times were unsigned: its records read with the
 * times they meant (past 2^63 ns saturated), its time keys are rewritten
 * once at open and removed with their capture. */
static void test_unsigned_store(void **state)
{
	struct fixture *f = *state;
	struct db_batch *b = NULL;
	struct errbuf eb;
	uint8_t key[16];
	uint64_t times[4], ids[4];
	static const char old[] =
		"{\"id\":5,\"name\":\"old\",\"sha256\":\"4141414141414141414141414141414141414141"
		"414141414141414141414141\",\"packets\":3,\"first_packet_time_ns\":1700000000000000000,"
		"\"earliest_packet_time_ns\":1700000000000000000,\"last_packet_time_ns\":-1,"
		"\"latest_packet_time_ns\":-1,\"time_ordered\":true,\"objnum\":9,\"tags\":[]}";

	assert_int_equal(db_batch_new(&b), 0);
	be64_put(key, 5);
	db_batch_put(b, DB_CF_CAPTURES, key, 8, old, strlen(old));
	be64_put(key, 1700000000000000000ull);
	be64_put(key + 8, 5);
	db_batch_put(b, DB_CF_TIME, key, 16, "", 0);
	db_batch_delete(b, DB_CF_META, "time_keys", 9);
	assert_int_equal(db_write(f->db, b, true, &eb), 0);
	db_batch_free(b);
	close_all(f);
	open_all(f);

	struct capture_record *got = NULL;
	assert_int_equal(catalog_get(f->cat, 5, &got), 0);
	assert_true(got->earliest_ts_ns == 1700000000000000000ll);
	assert_true(got->first_ts_ns == 1700000000000000000ll);
	assert_true(got->latest_ts_ns == INT64_MAX);
	assert_true(got->last_ts_ns == INT64_MAX);
	capture_record_free(got);
	assert_int_equal(time_keys(f, times, ids, 4), 1);
	assert_true(times[0] == (1700000000000000000ull ^ (1ull << 63)));
	assert_int_equal(ids[0], 5);
	/* once: a reopen changes nothing */
	close_all(f);
	open_all(f);
	assert_int_equal(time_keys(f, times, ids, 4), 1);
	assert_true(times[0] == (1700000000000000000ull ^ (1ull << 63)));
	bool unlink_object = false;
	uint8_t sha[32];
	assert_int_equal(catalog_remove(f->cat, 5, &unlink_object, sha, NULL), 0);
	assert_int_equal(time_keys(f, times, ids, 4), 0);
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct capture_record *rec = make_record("a.pcap.gz", 0xab), *got = NULL;

	assert_int_equal(commit(f, rec), 1);
	assert_int_equal(rec->ntags, 2);
	assert_int_equal(catalog_get(f->cat, 1, &got), 0);
	assert_same_record(rec, got);
	capture_record_free(got);
	assert_int_equal(catalog_get(f->cat, 2, &got), -ENOENT);

	/* Optional strings absent stay absent. */
	struct capture_record *bare = calloc(1, sizeof(*bare));
	bare->sha256[0] = 1;
	assert_int_equal(commit(f, bare), 2);
	assert_int_equal(catalog_get(f->cat, 2, &got), 0);
	assert_string_equal(got->name, ""); /* a read record always has a name */
	assert_null(got->error);
	assert_null(got->comment);
	assert_int_equal(got->ntags, 0);
	assert_true(got->import_time_ns > 0); /* set at commit */
	capture_record_free(got);
	capture_record_free(bare);
	capture_record_free(rec);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	assert_non_null(s);
	return s;
}

static void test_json_output(void **state)
{
	struct fixture *f = *state;
	struct capture_record *rec = make_record("a.pcap.gz", 0xab);
	json_t *o;

	commit(f, rec);
	o = capture_record_to_json(rec);
	assert_non_null(o);
	assert_string_equal(jstr(o, "version"), "2.4");
	assert_string_equal(jstr(o, "byte_order"), "big-endian");
	assert_string_equal(jstr(o, "time_precision"), "nanoseconds");
	assert_string_equal(jstr(o, "sha256"),
			    "ababababababababababababababababababababababababababababababab5a");
	assert_string_equal(jstr(o, "first_packet_time"), "2023-11-14T22:13:20.123456789Z");
	assert_string_equal(jstr(o, "earliest_packet_time"), "2023-11-14T22:13:20.000000001Z");
	assert_string_equal(jstr(o, "import_time"), "2024-03-09T16:00:00.000000000Z");
	json_t *lt = json_array_get(json_object_get(o, "linktypes"), 0);
	assert_int_equal(json_integer_value(json_object_get(lt, "linktype")), 1);
	assert_string_equal(jstr(lt, "name"), "EN10MB");
	assert_string_equal(jstr(lt, "description"), "Ethernet");
	assert_true(json_real_value(json_object_get(o, "duration_s")) == 10.0);
	assert_true(json_real_value(json_object_get(o, "avg_packet_size")) == 500.0);
	assert_true(json_real_value(json_object_get(o, "avg_packet_rate")) == 100.0);
	assert_true(json_real_value(json_object_get(o, "data_byte_rate")) == 50000.0);
	assert_true(json_real_value(json_object_get(o, "data_bit_rate")) == 400000.0);
	assert_int_equal(json_integer_value(json_object_get(o, "oversized_records")), 3);
	assert_true(json_is_true(json_object_get(o, "truncated")));
	assert_int_equal(json_array_size(json_object_get(o, "tags")), 2);
	json_decref(o);

	/* No packets: no times, no rates, no division by zero. */
	rec->packets = 0;
	o = capture_record_to_json(rec);
	assert_true(json_is_null(json_object_get(o, "first_packet_time")));
	assert_true(json_real_value(json_object_get(o, "avg_packet_size")) == 0.0);
	assert_true(json_real_value(json_object_get(o, "avg_packet_rate")) == 0.0);
	json_decref(o);
	capture_record_free(rec);
}

static void test_duplicate(void **state)
{
	struct fixture *f = *state;
	struct capture_record *a = make_record("a.pcap", 0x11), *b = make_record("b.pcap", 0x11);
	struct db_batch *batch = NULL;
	struct errbuf eb;
	uint64_t existing = 0;
	void *val = NULL;
	size_t vlen;

	assert_int_equal(commit(f, a), 1);
	/* The packet index entries of the duplicate must not land either. */
	db_batch_new(&batch);
	db_batch_put(batch, DB_CF_FLOWS, "dup-flow", 8, "x", 1);
	assert_int_equal(catalog_commit(f->cat, b, batch, &existing, &eb), CATALOG_DUPLICATE);
	assert_int_equal(existing, 1);
	assert_int_equal(db_get(f->db, DB_CF_FLOWS, "dup-flow", 8, &val, &vlen), -ENOENT);
	db_batch_free(batch);

	/* A new object commits the caller's entries with the record. */
	struct capture_record *c = make_record("c.pcap", 0x22);
	db_batch_new(&batch);
	db_batch_put(batch, DB_CF_FLOWS, "new-flow", 8, "y", 1);
	assert_int_equal(catalog_commit(f->cat, c, batch, &existing, &eb), 0);
	assert_int_equal(c->id, 2);
	assert_int_equal(db_get(f->db, DB_CF_FLOWS, "new-flow", 8, &val, &vlen), 0);
	assert_int_equal(vlen, 1);
	free(val);
	db_batch_free(batch);

	uint64_t id = 0;
	assert_int_equal(catalog_find_sha(f->cat, c->sha256, &id), 0);
	assert_int_equal(id, 2);
	capture_record_free(a);
	capture_record_free(b);
	capture_record_free(c);
}

static void test_lookup(void **state)
{
	struct fixture *f = *state;
	struct capture_record *a = make_record("a", 0xab), *b = make_record("b", 0xab), *got = NULL;
	struct errbuf eb;
	char hex[65];

	b->sha256[31] = 0x5b; /* shares 62 hex digits with a */
	commit(f, a);
	commit(f, b);
	assert_int_equal(catalog_lookup(f->cat, "2", &got, &eb), 0);
	assert_string_equal(got->name, "b");
	got = (capture_record_free(got), NULL);
	assert_int_equal(catalog_lookup(f->cat, "3", &got, &eb), -ENOENT);

	sha256_hex(a->sha256, hex);
	assert_int_equal(catalog_lookup(f->cat, hex, &got, &eb), 0);
	assert_int_equal(got->id, 1);
	got = (capture_record_free(got), NULL);
	hex[63] = 'B'; /* upper case, and b's full hash */
	assert_int_equal(catalog_lookup(f->cat, hex, &got, &eb), 0);
	assert_int_equal(got->id, 2);
	got = (capture_record_free(got), NULL);
	hex[63] = '\0'; /* 62 digits: shared by a and b */
	hex[62] = '\0';
	assert_int_equal(catalog_lookup(f->cat, "abababab", &got, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "ambiguous"));
	assert_int_equal(catalog_lookup(f->cat, hex, &got, &eb), -EINVAL);
	assert_int_equal(catalog_lookup(f->cat, "abab", &got, &eb), -EINVAL);
	assert_int_equal(catalog_lookup(f->cat, "cdcdcdcd", &got, &eb), -ENOENT);
	assert_int_equal(catalog_lookup(f->cat, "not-an-id", &got, &eb), -EINVAL);
	assert_int_equal(catalog_lookup(f->cat, "", &got, &eb), -EINVAL);
	assert_null(got);
	capture_record_free(a);
	capture_record_free(b);
}

static void test_lookup_odd_prefix(void **state)
{
	struct fixture *f = *state;
	struct capture_record *a = make_record("a", 0x12), *b = make_record("b", 0x13), *got = NULL;
	struct errbuf eb;

	commit(f, a); /* 121212... */
	commit(f, b); /* 131313... */
	assert_int_equal(catalog_lookup(f->cat, "121212121", &got, &eb), 0);
	assert_int_equal(got->id, 1);
	got = (capture_record_free(got), NULL);
	assert_int_equal(catalog_lookup(f->cat, "131313131", &got, &eb), 0);
	assert_int_equal(got->id, 2);
	got = (capture_record_free(got), NULL);
	/* All digits and 8 long: tried as a prefix, then as an id. */
	assert_int_equal(catalog_lookup(f->cat, "00000002", &got, &eb), 0);
	assert_int_equal(got->id, 2);
	capture_record_free(got);
	capture_record_free(a);
	capture_record_free(b);
}

struct collected {
	uint64_t ids[16];
	size_t n;
	size_t stop_after;
};

static int collect(void *opaque, const struct capture_record *rec)
{
	struct collected *c = opaque;

	c->ids[c->n++] = rec->id;
	return c->stop_after && c->n == c->stop_after ? 99 : 0;
}

static void test_tags_foreach(void **state)
{
	struct fixture *f = *state;
	struct capture_record *r[3];
	struct collected c = { 0 };

	for (int i = 0; i < 3; i++) {
		r[i] = calloc(1, sizeof(*r[i]));
		r[i]->sha256[0] = (uint8_t)(i + 1);
	}
	capture_record_add_tag(r[0], "web");
	capture_record_add_tag(r[1], "webserver");
	capture_record_add_tag(r[2], "web");
	capture_record_add_tag(r[2], "dns");
	for (int i = 0; i < 3; i++)
		commit(f, r[i]);

	assert_int_equal(catalog_foreach(f->cat, "web", collect, &c), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.ids[0], 1);
	assert_int_equal(c.ids[1], 3);
	c = (struct collected){ 0 };
	assert_int_equal(catalog_foreach(f->cat, "dns", collect, &c), 0);
	assert_int_equal(c.n, 1);
	c = (struct collected){ 0 };
	assert_int_equal(catalog_foreach(f->cat, "nope", collect, &c), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(catalog_foreach(f->cat, NULL, collect, &c), 0);
	assert_int_equal(c.n, 3);
	c = (struct collected){ .stop_after = 2 };
	assert_int_equal(catalog_foreach(f->cat, NULL, collect, &c), 99);
	assert_int_equal(c.n, 2);

	assert_true(catalog_tag_valid("site:paris/rack-1@a+b_c.d"));
	assert_false(catalog_tag_valid(""));
	assert_false(catalog_tag_valid("has space"));
	char longtag[130];
	memset(longtag, 'a', 129);
	longtag[129] = '\0';
	assert_false(catalog_tag_valid(longtag));

	struct capture_record *bad = calloc(1, sizeof(*bad));
	struct db_batch *b = NULL;
	struct errbuf eb;
	uint64_t existing;
	bad->sha256[0] = 9;
	capture_record_add_tag(bad, "bad tag");
	db_batch_new(&b);
	assert_int_equal(catalog_commit(f->cat, bad, b, &existing, &eb), -EINVAL);
	db_batch_free(b);
	capture_record_free(bad);
	for (int i = 0; i < 3; i++)
		capture_record_free(r[i]);
}

/* The tags and the (name, source) of each record in a fresh catalog_get. */
static json_t *stored(struct fixture *f, uint64_t id)
{
	struct capture_record *rec = NULL;
	assert_int_equal(catalog_get(f->cat, id, &rec), 0);
	json_t *o = capture_record_to_json(rec);
	capture_record_free(rec);
	return o;
}

/* A duplicate adds its tags, name and source to the existing record in a
 * synced batch (the record is what retention and queries see); arriving
 * again (a re-import after a crash) changes nothing more. */
static void test_duplicate_merges(void **state)
{
	struct fixture *f = *state;
	struct capture_record *a = make_record("x.pcap", 0x33);
	struct errbuf eb;
	uint64_t existing = 0;
	free(a->source_path);
	a->source_path = strdup("/in/scratch/x.pcap");
	for (size_t i = 0; i < a->ntags; i++)
		free(a->tags[i]);
	a->ntags = 0;
	assert_int_equal(capture_record_add_tag(a, "scratch"), 0);
	assert_int_equal(commit(f, a), 1);
	for (int round = 0; round < 2; round++) {
		struct capture_record *b = make_record("important.pcap", 0x33);
		free(b->source_path);
		b->source_path = strdup("/in/keep/important.pcap");
		assert_int_equal(capture_record_add_tag(b, "keep"), 0);
		assert_int_equal(commit_as(f, b, &existing), CATALOG_DUPLICATE);
		assert_int_equal(existing, 1);
		capture_record_free(b);
	}
	/* The first arrival again: nothing to add. */
	struct capture_record *again = make_record("x.pcap", 0x33);
	free(again->source_path);
	again->source_path = strdup("/in/scratch/x.pcap");
	assert_int_equal(commit_as(f, again, &existing), CATALOG_DUPLICATE);
	capture_record_free(again);

	json_t *o = stored(f, 1);
	char *tags = json_dumps(json_object_get(o, "tags"), JSON_COMPACT);
	assert_string_equal(tags, "[\"scratch\",\"site:paris\",\"web\",\"keep\"]");
	free(tags);
	assert_string_equal(json_string_value(json_object_get(o, "name")), "x.pcap");
	json_t *also = json_object_get(o, "also_imported_as");
	assert_int_equal(json_array_size(also), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(also, 0), "name")),
			    "important.pcap");
	assert_string_equal(json_string_value(json_object_get(json_array_get(also, 0),
							      "source_path")),
			    "/in/keep/important.pcap");
	json_decref(o);
	struct collected c = { 0 };
	assert_int_equal(catalog_foreach(f->cat, "keep", collect, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.ids[0], 1);
	/* It survives a reopen and a tag edit. */
	close_all(f);
	open_all(f);
	char *t[] = { "keep" };
	assert_int_equal(catalog_update_tags(f->cat, 1, t, 1, &eb), 0);
	o = stored(f, 1);
	assert_int_equal(json_array_size(json_object_get(o, "also_imported_as")), 1);
	json_decref(o);
	capture_record_free(a);
}

/* A capture holds at most CATALOG_TAGS_MAX tags: a duplicate adds its
 * arrival but no tags past it; an edit past it is refused, one that takes
 * away as many as it adds is not; a new capture past it is refused. */
static void test_tags_bound(void **state)
{
	struct fixture *f = *state;
	struct capture_record *a = make_record("x.pcap", 0x34);
	struct errbuf eb;
	uint64_t existing = 0;
	char tag[32];
	for (int i = (int)a->ntags; i < CATALOG_TAGS_MAX; i++) {
		snprintf(tag, sizeof(tag), "t%d", i);
		assert_int_equal(capture_record_add_tag(a, tag), 0);
	}
	assert_int_equal(commit(f, a), 1);
	struct capture_record *b = make_record("y.pcap", 0x34);
	assert_int_equal(capture_record_add_tag(b, "more"), 0);
	assert_int_equal(commit_as(f, b, &existing), CATALOG_DUPLICATE);
	capture_record_free(b);
	json_t *o = stored(f, 1);
	assert_int_equal(json_array_size(json_object_get(o, "tags")), CATALOG_TAGS_MAX);
	assert_int_equal(json_array_size(json_object_get(o, "also_imported_as")), 1);
	json_decref(o);
	char *add[] = { "one-more" }, *del[] = { "t100" };
	assert_int_equal(catalog_edit_tags(f->cat, 1, add, 1, NULL, 0, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "at most"));
	assert_int_equal(catalog_edit_tags(f->cat, 1, add, 1, del, 1, &eb), 0);
	/* A new capture past the bound is refused. */
	struct capture_record *c = make_record("z.pcap", 0x35);
	for (int i = 0; i <= CATALOG_TAGS_MAX; i++) {
		snprintf(tag, sizeof(tag), "u%d", i);
		assert_int_equal(capture_record_add_tag(c, tag), 0);
	}
	assert_int_equal(commit_as(f, c, &existing), -EINVAL);
	capture_record_free(c);
	capture_record_free(a);
}

/* add/remove edits the tags as they are under the lock: a tag a duplicate
 * merged in after the caller last read the record stays. */
static void test_edit_tags(void **state)
{
	struct fixture *f = *state;
	struct capture_record *a = make_record("a.pcap", 0x44), *b = make_record("b.pcap", 0x44);
	struct errbuf eb;
	uint64_t existing = 0;
	assert_int_equal(commit(f, a), 1);
	assert_int_equal(capture_record_add_tag(b, "keep"), 0);
	assert_int_equal(commit_as(f, b, &existing), CATALOG_DUPLICATE);
	char *add[] = { "case:42", "web" }, *del[] = { "site:paris", "absent" };
	assert_int_equal(catalog_edit_tags(f->cat, 1, add, 2, del, 2, &eb), 0);
	json_t *o = stored(f, 1);
	char *tags = json_dumps(json_object_get(o, "tags"), JSON_COMPACT);
	assert_string_equal(tags, "[\"web\",\"keep\",\"case:42\"]");
	free(tags);
	json_decref(o);
	struct collected c = { 0 };
	assert_int_equal(catalog_foreach(f->cat, "site:paris", collect, &c), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(catalog_foreach(f->cat, "case:42", collect, &c), 0);
	assert_int_equal(c.n, 1);
	char *bad[] = { "no spaces" };
	assert_int_equal(catalog_edit_tags(f->cat, 1, bad, 1, NULL, 0, &eb), -EINVAL);
	assert_int_equal(catalog_edit_tags(f->cat, 99, add, 1, NULL, 0, &eb), -ENOENT);
	capture_record_free(a);
	capture_record_free(b);
}

static void test_totals(void **state)
{
	struct fixture *f = *state;
	struct capture_record *a = make_record("a", 1), *b = make_record("b", 2);
	struct catalog_totals t;

	commit(f, a);
	b->file_size = 7;
	b->packets = 5;
	commit(f, b);
	assert_int_equal(catalog_totals(f->cat, &t), 0);
	assert_int_equal(t.captures, 2);
	assert_int_equal(t.objects, 2);
	assert_int_equal(t.object_bytes, 1000003 + 7);
	assert_int_equal(t.packets, 1005);
	assert_int_equal(t.index_bytes, 2 * 4242);
	capture_record_free(a);
	capture_record_free(b);
}

static void test_lock_held(void **state)
{
	struct fixture *f = *state;
	struct db *db2 = NULL;
	struct errbuf eb;
	pid_t pid;
	int status;

	/* Same process: RocksDB says "lock hold by current process". */
	assert_int_equal(db_open(&db2, f->dbdir, &eb), -EBUSY);
	assert_null(db2);
	assert_non_null(strstr(eb.msg, "is in use by another process"));
	assert_non_null(strstr(eb.msg, f->dbdir));

	/* Another process: EAGAIN on the LOCK file, reported at once. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(db_open(&db2, f->dbdir, &eb) == -EBUSY ? 0 : 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_reopen_counters(void **state)
{
	struct fixture *f = *state;
	struct capture_record *a = make_record("a", 1), *b = make_record("b", 2);

	uint64_t n1 = catalog_next_objnum(f->cat);
	uint64_t n2 = catalog_next_objnum(f->cat);
	assert_int_equal(n2, n1 + 1);
	commit(f, a);
	close_all(f);
	open_all(f);
	assert_true(catalog_next_objnum(f->cat) > n2);
	assert_int_equal(commit(f, b), 2);
	struct capture_record *got = NULL;
	assert_int_equal(catalog_get(f->cat, 1, &got), 0);
	assert_same_record(a, got);
	capture_record_free(got);
	capture_record_free(a);
	capture_record_free(b);
}

static void test_token_cache(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	struct token_cache *cache = NULL;
	struct token_info *t = NULL;
	char secret[TOKEN_SECRET_MAX];
	const char *tags[] = { "site-a", "lab" };

	assert_int_equal(token_cache_new(&cache), 0);
	assert_int_equal(token_add(f->db, "reader", TOKEN_SCOPE_READ, tags, 2, false, secret, &eb), 0);
	for (int round = 0; round < 2; round++) { /* a miss, then a hit */
		assert_int_equal(token_verify_cached(cache, f->db, secret, &t), 0);
		assert_string_equal(t->name, "reader");
		assert_int_equal(t->scopes, TOKEN_SCOPE_READ);
		assert_int_equal(t->ntags, 2);
		assert_string_equal(t->tags[1], "lab");
		t = token_info_free(t);
	}
	secret[0] ^= 1; /* another secret */
	assert_int_equal(token_verify_cached(cache, f->db, secret, &t), -EACCES);
	assert_null(t);
	secret[0] ^= 1; /* back to the real one */
	assert_int_equal(token_verify_cached(cache, f->db, "", &t), -EACCES);

	assert_int_equal(token_revoke(f->db, "reader", &eb), 0);
	token_cache_clear(cache);
	assert_int_equal(token_verify_cached(cache, f->db, secret, &t), -EACCES);
	assert_null(t);
	token_cache_free(cache);
}

static void test_db_basics(void **state)
{
	struct fixture *f = *state;
	struct db_batch *b = NULL;
	struct db_iter *it = NULL;
	struct errbuf eb;
	uint8_t k[8];
	size_t klen, n = 0;
	char cp[160];

	db_batch_new(&b);
	for (uint64_t i = 1; i <= 5; i++) {
		be64_put(k, i);
		db_batch_put(b, DB_CF_TINDEX, k, 8, "v", 1);
	}
	be64_put(k, 2);
	db_batch_delete(b, DB_CF_TINDEX, k, 8);
	assert_true(db_batch_bytes(b) > 0);
	assert_int_equal(db_write(f->db, b, false, &eb), 0);
	db_batch_free(b);

	db_iter_new(f->db, DB_CF_TINDEX, &it);
	/* The snapshot does not see later writes. */
	db_batch_new(&b);
	be64_put(k, 9);
	db_batch_put(b, DB_CF_TINDEX, k, 8, "v", 1);
	assert_int_equal(db_write(f->db, b, true, &eb), 0);
	db_batch_free(b);
	for (db_iter_seek_first(it); db_iter_valid(it); db_iter_next(it))
		n++;
	assert_int_equal(n, 4);
	be64_put(k, 2);
	db_iter_seek_for_prev(it, k, 8);
	assert_true(db_iter_valid(it));
	assert_int_equal(be64_get(db_iter_key(it, &klen)), 1);
	db_iter_seek_last(it);
	assert_int_equal(be64_get(db_iter_key(it, &klen)), 5);
	db_iter_free(it);

	assert_true(db_cf_size(f->db, DB_CF_TINDEX) > 0);
	snprintf(cp, sizeof(cp), "%s/checkpoint", f->dir);
	assert_int_equal(db_checkpoint(f->db, cp, &eb), 0);
	struct db *copy = NULL;
	assert_int_equal(db_open(&copy, cp, &eb), 0);
	void *val = NULL;
	size_t vlen;
	assert_int_equal(db_get(copy, DB_CF_TINDEX, k, 8, &val, &vlen), -ENOENT); /* deleted */
	be64_put(k, 9);
	assert_int_equal(db_get(copy, DB_CF_TINDEX, k, 8, &val, &vlen), 0);
	free(val);
	db_close(copy);
	assert_null(db_close(NULL));
	assert_null(db_batch_free(NULL));
}

/* Names, paths and comments are bytes (issue 15.1): any of them, UTF-8
 * or not, is stored (escaped, textesc.h) and read back the same. */
static void test_hostile_text(void **state)
{
	struct fixture *f = *state;
	char all[256], *got_json = NULL;
	size_t len = 0;
	for (int i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	const char *names[] = { "bad\xff\xfe.pcap", all, "a\\xff\\\\b\n\"%.pcap", "\xc3" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct capture_record *rec = make_record(names[i], (uint8_t)(0x40 + i)), *got = NULL;
		free(rec->comment);
		free(rec->source_path);
		rec->comment = strdup(names[i]);
		rec->source_path = strdup(names[i]);
		uint64_t id = commit(f, rec);
		assert_true(id > 0);
		assert_int_equal(catalog_get(f->cat, id, &got), 0);
		assert_string_equal(got->name, names[i]);
		assert_string_equal(got->comment, names[i]);
		assert_string_equal(got->source_path, names[i]);
		/* The stored JSON is valid (jansson refuses what is not UTF-8). */
		assert_int_equal(catalog_get_raw(f->cat, id, &got_json, &len), 0);
		json_t *o = json_loadb(got_json, len, 0, NULL);
		assert_non_null(o);
		assert_non_null(json_string_value(json_object_get(o, "name")));
		json_decref(o);
		free(got_json);
		/* A rename to any bytes, too. */
		struct errbuf eb = { { 0 } };
		assert_int_equal(catalog_update_name(f->cat, id, "x\x80\\y", &eb), 0);
		capture_record_free(got);
		assert_int_equal(catalog_get(f->cat, id, &got), 0);
		assert_string_equal(got->name, "x\x80\\y");
		capture_record_free(got);
		capture_record_free(rec);
	}
	json_t *j = catalog_json_text("bad\xff\\");
	assert_string_equal(json_string_value(j), "bad\\xff\\\\");
	json_decref(j);
}

/* Annotations and key logs: set, replace, remove, listed by frame, and
 * gone with their capture (nothing stored for one that is not there). */
static void test_annotations(void **state)
{
	struct fixture *f = *state;
	struct capture_record *rec = make_record("a.pcap", 0x51);
	struct annotation *a = NULL;
	struct errbuf eb = { { 0 } };
	size_t n = 0, len = 0;
	char *keys = NULL;
	bool unlink_object = false;
	uint8_t sha[32];

	assert_int_equal(commit(f, rec), 1);
	assert_int_equal(annot_set(f->cat, f->db, 1, 10, "ten", &eb), 0);
	assert_int_equal(annot_set(f->cat, f->db, 1, 2, "two\x01\xff", &eb), 0);
	assert_int_equal(annot_set(f->cat, f->db, 1, 3, "three", &eb), 0);
	assert_int_equal(annot_set(f->cat, f->db, 1, 3, NULL, &eb), 0);
	assert_int_equal(annot_set(f->cat, f->db, 1, 10, "TEN", &eb), 0);
	assert_int_equal(annot_set(f->cat, f->db, 1, 0, "zero", &eb), -EINVAL);
	assert_int_equal(annot_set(f->cat, f->db, 9, 1, "none", &eb), -ENOENT);
	assert_int_equal(annot_list(f->db, 1, &a, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(a[0].frame, 2);
	assert_string_equal(a[0].text, "two\x01\xff");
	assert_int_equal(a[1].frame, 10);
	assert_string_equal(a[1].text, "TEN");
	assert_true(a[1].created_ns > 0);
	annot_list_free(a, n);

	assert_int_equal(annot_keylog_get(f->db, 1, &keys, &len), -ENOENT);
	assert_int_equal(annot_keylog_put(f->cat, f->db, 1, "CLIENT_RANDOM a b\n", 18, &eb), 0);
	assert_int_equal(annot_keylog_get(f->db, 1, &keys, &len), 0);
	assert_int_equal(len, 18);
	free(keys);

	assert_int_equal(catalog_remove(f->cat, 1, &unlink_object, sha, &eb), 0);
	assert_int_equal(annot_list(f->db, 1, &a, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(annot_keylog_get(f->db, 1, &keys, &len), -ENOENT);
	capture_record_free(rec);
}

/* A capture's listing fields as one line, from its summary or its record. */
struct lines {
	char **v;
	size_t n;
};

static void lines_add(struct lines *l, uint64_t id, const char *name, const char *tags,
		      uint64_t size, uint64_t packets, uint64_t imported, int64_t first,
		      int64_t last)
{
	char *line = NULL;
	assert_true(asprintf(&line, "%" PRIu64 "|%s|%s|%" PRIu64 "|%" PRIu64 "|%" PRIu64
			     "|%" PRId64 "|%" PRId64, id, name, tags, size, packets, imported,
			     first, last) > 0);
	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	assert_non_null(l->v);
	l->v[l->n++] = line;
}

static int summary_line(void *opaque, const struct capture_summary *s)
{
	char tags[1024] = "";
	size_t used = 0;
	const char *t = s->tags;
	for (size_t i = 0; i < s->ntags; i++, t += strlen(t) + 1) {
		used += (size_t)snprintf(tags + used, sizeof(tags) - used, "%s,", t);
		assert_true(used < sizeof(tags));
		assert_true(capture_summary_has_tag(s, t));
	}
	assert_false(capture_summary_has_tag(s, "never"));
	lines_add(opaque, s->id, s->name, tags, s->file_size, s->packets, s->import_time_ns,
		  s->earliest_ts_ns, s->latest_ts_ns);
	return 0;
}

static int record_line(void *opaque, const struct capture_record *r)
{
	char tags[1024] = "";
	size_t used = 0;
	for (size_t i = 0; i < r->ntags; i++) {
		used += (size_t)snprintf(tags + used, sizeof(tags) - used, "%s,", r->tags[i]);
		assert_true(used < sizeof(tags));
	}
	lines_add(opaque, r->id, r->name, tags, r->file_size, r->packets, r->import_time_ns,
		  r->earliest_ts_ns, r->latest_ts_ns);
	return 0;
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	*l = (struct lines){ 0 };
}

/* The summary lists what the records hold, from after_id on. */
static void assert_summary_matches(struct fixture *f, uint64_t after_id)
{
	struct lines want = { 0 }, got = { 0 };
	assert_int_equal(catalog_foreach(f->cat, NULL, record_line, &want), 0);
	assert_int_equal(catalog_foreach_summary(f->cat, after_id, summary_line, &got), 0);
	size_t skip = 0;
	while (skip < want.n && strtoull(want.v[skip], NULL, 10) <= after_id)
		skip++;
	assert_int_equal(got.n, want.n - skip);
	for (size_t i = 0; i < got.n; i++)
		assert_string_equal(got.v[i], want.v[skip + i]);
	lines_free(&want);
	lines_free(&got);
}

static int keep_it(void *opaque, const struct capture_record *rec, struct errbuf *eb)
{
	(void)opaque, (void)rec, (void)eb;
	return 1;
}

static int delete_it(void *opaque, const struct capture_record *rec, struct errbuf *eb)
{
	(void)opaque, (void)rec, (void)eb;
	return 0;
}

static int stop_at_second(void *opaque, const struct capture_summary *s)
{
	(void)s;
	return ++*(int *)opaque == 2 ? 7 : 0;
}

/* The in-memory summary agrees with the records after every kind of
 * write: commits, duplicate merges, tag edits and replacements, renames,
 * comments, removals (plain and decided by a check); built on first use,
 * and again after a reopen, skipping an unreadable record as
 * catalog_foreach does. */
static void test_summary(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	uint64_t existing = 0;
	bool unlink = false;
	uint8_t sha[32];
	struct db_batch *b = NULL;

	assert_summary_matches(f, 0); /* built empty */
	for (int i = 0; i < 40; i++) {
		char name[32];
		snprintf(name, sizeof(name), "c%02d-%s.pcap", i, i % 3 ? "web" : "dns");
		struct capture_record *r = make_record(name, (uint8_t)(i + 1));
		r->packets = (uint64_t)(i * 7 % 11);
		r->file_size = (uint64_t)(i * 13 % 17) * 100;
		r->earliest_ts_ns = (int64_t)(i % 5) * 1000000000 - 3000000000;
		r->latest_ts_ns = r->earliest_ts_ns + i;
		r->import_time_ns = 1710000000000000000ull + (uint64_t)(i % 4);
		commit(f, r);
		capture_record_free(r);
		if (i % 9 == 0)
			assert_summary_matches(f, 0);
	}
	assert_summary_matches(f, 0);
	assert_summary_matches(f, 17);
	assert_summary_matches(f, 40);

	/* A duplicate adds its tag to capture 5. */
	struct capture_record *dup = make_record("again.pcap", 5);
	assert_int_equal(capture_record_add_tag(dup, "merged"), 0);
	db_batch_new(&b);
	assert_int_equal(catalog_commit(f->cat, dup, b, &existing, &eb), CATALOG_DUPLICATE);
	db_batch_free(b);
	capture_record_free(dup);
	assert_int_equal(existing, 5);
	assert_summary_matches(f, 0);

	char *add[] = { "case:1" }, *del[] = { "web" }, *repl[] = { "only" };
	assert_int_equal(catalog_edit_tags(f->cat, 7, add, 1, del, 1, &eb), 0);
	assert_int_equal(catalog_update_tags(f->cat, 8, repl, 1, &eb), 0);
	assert_int_equal(catalog_update_tags(f->cat, 9, NULL, 0, &eb), 0);
	assert_int_equal(catalog_update_name(f->cat, 10, "renamed.pcap", &eb), 0);
	assert_int_equal(catalog_update_comment(f->cat, 11, NULL, &eb), 0);
	assert_summary_matches(f, 0);

	assert_int_equal(catalog_remove(f->cat, 1, &unlink, sha, &eb), 0);
	assert_int_equal(catalog_remove(f->cat, 20, &unlink, sha, &eb), 0);
	assert_int_equal(catalog_remove(f->cat, 40, &unlink, sha, &eb), 0);
	assert_int_equal(catalog_remove(f->cat, 40, &unlink, sha, &eb), -ENOENT);
	assert_int_equal(catalog_remove_if(f->cat, 21, keep_it, NULL, &unlink, sha, &eb),
			 CATALOG_KEPT);
	assert_int_equal(catalog_remove_if(f->cat, 22, delete_it, NULL, &unlink, sha, &eb), 0);
	assert_summary_matches(f, 0);
	assert_summary_matches(f, 20);

	/* A new capture after removals lands at the end. */
	struct capture_record *r = make_record("late.pcap", 200);
	assert_int_equal(commit(f, r), 41);
	capture_record_free(r);
	assert_summary_matches(f, 0);

	int calls = 0;
	assert_int_equal(catalog_foreach_summary(f->cat, 0, stop_at_second, &calls), 7);
	assert_int_equal(calls, 2);

	/* Rebuilt from the records after a reopen, leaving out one that is
	 * not a record. */
	uint8_t key[8];
	be64_put(key, 30);
	db_batch_new(&b);
	db_batch_put(b, DB_CF_CAPTURES, key, 8, "not json", 8);
	assert_int_equal(db_write(f->db, b, true, &eb), 0);
	db_batch_free(b);
	close_all(f);
	open_all(f);
	assert_summary_matches(f, 0);
	assert_int_equal(catalog_update_name(f->cat, 2, "after-reopen.pcap", &eb), 0);
	assert_summary_matches(f, 0);
}

/* Writes racing the summary's build: commits, tag edits and removals on
 * one thread while the first listing builds it on another. */
struct racer {
	struct catalog *cat;
	int base;
};

static void *race_writes(void *opaque)
{
	struct racer *rc = opaque;
	struct errbuf eb;
	uint64_t existing = 0;
	bool unlink = false;
	uint8_t sha[32];
	for (int i = 0; i < 30; i++) {
		char name[32];
		snprintf(name, sizeof(name), "race%d.pcap", rc->base + i);
		struct capture_record *r = make_record(name, 0);
		r->sha256[0] = (uint8_t)(rc->base + i);
		r->sha256[1] = (uint8_t)((rc->base + i) >> 8);
		struct db_batch *b = NULL;
		db_batch_new(&b);
		assert_int_equal(catalog_commit(rc->cat, r, b, &existing, &eb), 0);
		db_batch_free(b);
		char *add[] = { "raced" };
		if (i % 3 == 0)
			assert_int_equal(catalog_edit_tags(rc->cat, r->id, add, 1, NULL, 0, &eb), 0);
		if (i % 5 == 0)
			assert_int_equal(catalog_remove(rc->cat, r->id, &unlink, sha, &eb), 0);
		capture_record_free(r);
	}
	return NULL;
}

static int count_one(void *opaque, const struct capture_summary *s)
{
	(void)s;
	++*(size_t *)opaque;
	return 0;
}

static void test_summary_build_race(void **state)
{
	struct fixture *f = *state;
	for (int i = 0; i < 300; i++) {
		struct capture_record *r = make_record("seed.pcap", 0);
		r->sha256[0] = (uint8_t)i;
		r->sha256[1] = (uint8_t)(i >> 8);
		r->sha256[2] = 0xee;
		commit(f, r);
		capture_record_free(r);
	}
	for (int round = 0; round < 8; round++) {
		/* A fresh catalog: its summary is not built yet. */
		struct errbuf eb;
		f->cat = catalog_free(f->cat);
		assert_int_equal(catalog_new(&f->cat, f->db, &eb), 0);
		struct racer rc = { .cat = f->cat, .base = 1000 + round * 30 };
		pthread_t t;
		assert_int_equal(pthread_create(&t, NULL, race_writes, &rc), 0);
		size_t n = 0;
		assert_int_equal(catalog_foreach_summary(f->cat, 0, count_one, &n), 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_summary_matches(f, 0);
	}
	/* Prepared on its own thread: ready for the listing, or stopped by
	 * catalog_free halfway. */
	for (int round = 0; round < 4; round++) {
		struct errbuf eb;
		f->cat = catalog_free(f->cat);
		assert_int_equal(catalog_new(&f->cat, f->db, &eb), 0);
		assert_int_equal(catalog_summary_prepare(f->cat), 0);
		assert_int_equal(catalog_summary_prepare(f->cat), 0); /* once */
		if (round % 2)
			assert_summary_matches(f, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_annotations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signed_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsigned_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tags_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_merges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_tags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_summary_build_race, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_odd_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tags_foreach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_totals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_held, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_db_basics, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_cache, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
