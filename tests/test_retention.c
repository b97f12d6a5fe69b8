/*
 * test_retention.c - retention plans with an injected clock and free
 * space over synthetic captures (catalog records with real tiny objects):
 * max_age by import and by last packet, folders, max_count, the protected
 * tag, first matching policy wins, max_total_size and min_free delete the
 * oldest first, a dry run lists exactly what the real run deletes, and
 * catalog_remove / catalog_update_tags keep the keys and refcounts right.
 */
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

#include "catalog.h"
#include "db.h"
#include "pindex.h"
#include "retention.h"
#include "store.h"
#include "vault.h"

#define DAY (86400ull * 1000000000ull)
#define NOW (20000ull * DAY)

struct fixture {
	char dir[64];
	struct vault *v;
	uint64_t free_bytes, total_bytes; /* the fake file system */
	uint64_t room_wanted;             /* retention_env.room_wanted */
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
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_retention.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(vault_open_flags(&f->v, f->dir, VAULT_CREATE, &eb), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vault_close(f->v);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* Writes size bytes derived from seed as an object; fills sha. */
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

struct spec {
	uint64_t import_days_ago;
	uint64_t last_packet_days_ago; /* 0: no packets */
	const char *tags;              /* comma-separated, or NULL */
	const char *source;            /* or NULL */
	size_t size;
	bool has_last_ns;              /* the last packet at last_ns instead */
	int64_t last_ns;
};

static uint64_t add_capture(struct fixture *f, unsigned seed, const struct spec *s)
{
	struct capture_record *r = calloc(1, sizeof(*r));
	struct db_batch *b = NULL;
	struct errbuf eb;
	uint64_t existing = 0;
	char name[32], tags[128];
	assert_non_null(r);
	snprintf(name, sizeof(name), "cap%u.pcap", seed);
	r->name = strdup(name);
	r->file_size = s->size ? s->size : 100;
	make_object(f, seed, r->file_size, r->sha256);
	r->import_time_ns = NOW - s->import_days_ago * DAY;
	if (s->last_packet_days_ago) {
		r->packets = 1;
		r->earliest_ts_ns = r->latest_ts_ns = (int64_t)(NOW - s->last_packet_days_ago * DAY);
	}
	if (s->has_last_ns) {
		r->packets = 1;
		r->earliest_ts_ns = r->latest_ts_ns = s->last_ns;
	}
	r->source_path = s->source ? strdup(s->source) : NULL;
	r->objnum = catalog_next_objnum(vault_catalog(f->v));
	if (s->tags) {
		snprintf(tags, sizeof(tags), "%s", s->tags);
		for (char *save = NULL, *t = strtok_r(tags, ",", &save); t;
		     t = strtok_r(NULL, ",", &save))
			assert_int_equal(capture_record_add_tag(r, t), 0);
	}
	assert_int_equal(db_batch_new(&b), 0);
	assert_int_equal(catalog_commit(vault_catalog(f->v), r, b, &existing, &eb), 0);
	db_batch_free(b);
	uint64_t id = r->id;
	capture_record_free(r);
	return id;
}

/* The bytes of capture seed's object arriving again (a duplicate) as
 * name from source (or NULL), with tag (or NULL), at import_ns (0: now):
 * returns the capture it merged into. */
static uint64_t add_duplicate(struct fixture *f, unsigned seed, const char *name,
			      const char *source, const char *tag, uint64_t import_ns)
{
	struct capture_record *r = calloc(1, sizeof(*r));
	struct db_batch *b = NULL;
	struct errbuf eb;
	uint64_t existing = 0;
	assert_non_null(r);
	r->name = strdup(name);
	r->source_path = source ? strdup(source) : NULL;
	r->file_size = 100;
	r->import_time_ns = import_ns;
	make_object(f, seed, 100, r->sha256);
	if (tag)
		assert_int_equal(capture_record_add_tag(r, tag), 0);
	assert_int_equal(db_batch_new(&b), 0);
	assert_int_equal(catalog_commit(vault_catalog(f->v), r, b, &existing, &eb), CATALOG_DUPLICATE);
	db_batch_free(b);
	capture_record_free(r);
	return existing;
}

static int fake_space(void *opaque, uint64_t *free_bytes, uint64_t *total_bytes)
{
	struct fixture *f = opaque;
	*free_bytes = f->free_bytes;
	*total_bytes = f->total_bytes;
	return 0;
}

static struct retention_plan *plan(struct fixture *f, const struct retention_rules *rules)
{
	struct retention_env env = { .now_ns = NOW, .space = fake_space, .space_opaque = f,
				     .room_wanted = f->room_wanted };
	struct retention_plan *p = NULL;
	struct errbuf eb;
	assert_int_equal(retention_plan(vault_catalog(f->v), rules, &env, &p, &eb), 0);
	return p;
}

/* The plan's ids, in order, as "1,4,5". */
static const char *ids(const struct retention_plan *p)
{
	static char buf[256];
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < p->n && used < sizeof(buf); i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%llu", i ? "," : "",
					 (unsigned long long)p->items[i].id);
	return buf;
}

static bool exists(struct fixture *f, uint64_t id)
{
	struct capture_record *r = NULL;
	int err = catalog_get(vault_catalog(f->v), id, &r);
	capture_record_free(r);
	return err == 0;
}

static void test_max_age(void **state)
{
	struct fixture *f = *state;
	add_capture(f, 1, &(struct spec){ .import_days_ago = 10, .tags = "lab" });
	add_capture(f, 2, &(struct spec){ .import_days_ago = 2, .last_packet_days_ago = 30, .tags = "lab" });
	add_capture(f, 3, &(struct spec){ .import_days_ago = 9 });
	add_capture(f, 4, &(struct spec){ .import_days_ago = 1, .last_packet_days_ago = 30, .tags = "old" });
	const char *lab[] = { "lab" }, *old[] = { "old" };
	struct retention_policy pol[] = {
		{ .name = "lab-week", .tags = lab, .ntags = 1, .has_max_age = true, .max_age_ns = 7 * DAY },
		{ .name = "old-traffic", .tags = old, .ntags = 1, .has_max_age = true,
		  .max_age_ns = 7 * DAY, .age_by_last_packet = true },
	};
	struct retention_rules rules = { .protect_tag = "keep", .policies = pol, .n_policies = 2 };
	struct retention_plan *p = plan(f, &rules);
	assert_string_equal(ids(p), "1,4");
	assert_string_equal(p->items[0].policy, "lab-week");
	assert_string_equal(p->items[0].reason, "age 10d > max_age 7d (by import)");
	assert_string_equal(p->items[1].reason, "age 30d > max_age 7d (by last packet)");
	assert_int_equal(p->items[0].bytes_freed, 100);
	assert_int_equal(p->bytes_freed, 200);
	retention_plan_free(p);
}

/* Ages of decades print as days, never in exponent notation. */
static void test_age_text(void **state)
{
	struct fixture *f = *state;
	add_capture(f, 1, &(struct spec){ .import_days_ago = 15000 });
	add_capture(f, 2, &(struct spec){ .import_days_ago = 3 });
	struct retention_policy pol[] = {
		{ .name = "all", .has_max_age = true, .max_age_ns = DAY + DAY / 2 },
	};
	struct retention_rules rules = { .protect_tag = "keep", .policies = pol, .n_policies = 1 };
	struct retention_plan *p = plan(f, &rules);
	assert_string_equal(ids(p), "1,2");
	assert_string_equal(p->items[0].reason, "age 15000d > max_age 1.5d (by import)");
	assert_string_equal(p->items[1].reason, "age 3d > max_age 1.5d (by import)");
	retention_plan_free(p);
}

static void test_folder_and_order(void **state)
{
	struct fixture *f = *state;
	add_capture(f, 1, &(struct spec){ .import_days_ago = 5, .source = "/srv/probes/a.pcap" });
	add_capture(f, 2, &(struct spec){ .import_days_ago = 5, .source = "/srv/probes2/b.pcap" });
	add_capture(f, 3, &(struct spec){ .import_days_ago = 5, .tags = "long",
					  .source = "/srv/probes/c.pcap" });
	const char *lng[] = { "long" };
	struct retention_policy pol[] = {
		/* First match wins: #3 is "long" and never reaches "probes". */
		{ .name = "long", .tags = lng, .ntags = 1, .has_max_age = true, .max_age_ns = 100 * DAY },
		{ .name = "probes", .folder = "/srv/probes/", .has_max_age = true, .max_age_ns = DAY },
	};
	struct retention_rules rules = { .policies = pol, .n_policies = 2 };
	struct retention_plan *p = plan(f, &rules);
	assert_string_equal(ids(p), "1");
	assert_string_equal(p->items[0].policy, "probes");
	retention_plan_free(p);
}

static void test_max_count_and_protect(void **state)
{
	struct fixture *f = *state;
	for (unsigned i = 1; i <= 5; i++) /* id i imported 10-i days ago: 5 is newest */
		add_capture(f, i, &(struct spec){ .import_days_ago = 10 - i,
						  .tags = i == 1 ? "x,keep" : "x" });
	const char *x[] = { "x" };
	struct retention_policy pol[] = {
		{ .name = "two", .tags = x, .ntags = 1, .has_max_count = true, .max_count = 2 },
	};
	struct retention_rules rules = { .protect_tag = "keep", .policies = pol, .n_policies = 1 };
	struct retention_plan *p = plan(f, &rules);
	/* #1 is protected and counts for nothing: 5,4 kept, 3,2 go oldest first. */
	assert_string_equal(ids(p), "2,3");
	assert_string_equal(p->items[0].reason, "newest #4 of the policy > max_count 2");
	retention_plan_free(p);
	/* Protected even from max_age 0. */
	pol[0] = (struct retention_policy){ .name = "all", .has_max_age = true, .max_age_ns = 0 };
	p = plan(f, &rules);
	assert_string_equal(ids(p), "2,3,4,5");
	retention_plan_free(p);
}

static void test_total_size_oldest_first(void **state)
{
	struct fixture *f = *state;
	/* ids in an order other than their age. */
	add_capture(f, 1, &(struct spec){ .import_days_ago = 3 });
	add_capture(f, 2, &(struct spec){ .import_days_ago = 9 });
	add_capture(f, 3, &(struct spec){ .import_days_ago = 1 });
	add_capture(f, 4, &(struct spec){ .import_days_ago = 7, .tags = "keep" });
	add_capture(f, 5, &(struct spec){ .import_days_ago = 5 });
	struct retention_rules rules = { .protect_tag = "keep", .max_total_size = 250 };
	struct retention_plan *p = plan(f, &rules);
	/* 500 bytes: oldest unprotected 2 (9d), 5 (5d), 1 (3d) leave 200. */
	assert_string_equal(ids(p), "2,5,1");
	assert_string_equal(p->items[0].policy, "max_total_size");
	assert_string_equal(p->items[0].reason, "total size 500B > max_total_size 250B");
	retention_plan_free(p);
}

/* Four captures of 100 bytes, oldest first, on a file system of 10000
 * bytes with 1000 free: min_free 1250B plans the oldest three. */
static struct retention_plan *plan_short_of_room(struct fixture *f,
						 const struct retention_rules *rules)
{
	for (unsigned i = 1; i <= 4; i++)
		add_capture(f, i, &(struct spec){ .import_days_ago = 10 - i });
	f->free_bytes = 1000;
	f->total_bytes = 10000;
	struct retention_plan *p = plan(f, rules);
	assert_string_equal(ids(p), "1,2,3");
	return p;
}

static void test_min_free(void **state)
{
	struct fixture *f = *state;
	struct retention_rules rules = { .min_free_bytes = 1250 };
	struct retention_plan *p = plan_short_of_room(f, &rules);
	assert_string_equal(p->items[0].reason, "free 1000B < min_free 1250B");
	assert_false(p->below_min_free_after);
	retention_plan_free(p);
	/* 15% of 10000: everything goes and it is still not enough. */
	rules = (struct retention_rules){ .min_free_percent = 15 };
	p = plan(f, &rules);
	assert_string_equal(ids(p), "1,2,3,4");
	assert_true(p->below_min_free_after);
	assert_int_equal(p->min_free, 1500);
	retention_plan_free(p);
	f->free_bytes = 5000;
	p = plan(f, &rules);
	assert_int_equal(p->n, 0);
	retention_plan_free(p);
}

/* Captures planned for min_free are kept when the floor is met by the
 * time they would go (here: space freed beside the store after the plan);
 * before, the plan's list was deleted whatever the free space then. */
static void test_min_free_met_before_apply(void **state)
{
	struct fixture *f = *state;
	struct retention_rules rules = { .min_free_bytes = 1250 };
	struct retention_plan *p = plan_short_of_room(f, &rules);
	f->free_bytes = 1300;
	assert_int_equal(retention_apply(vault_catalog(f->v), vault_store(f->v), p), 0);
	for (size_t i = 0; i < p->n; i++) {
		assert_int_equal(p->items[i].result, CATALOG_KEPT);
		assert_string_equal(p->items[i].error, "free 1300B >= 1250B now");
	}
	assert_int_equal(p->bytes_freed, 0);
	for (uint64_t id = 1; id <= 4; id++)
		assert_true(exists(f, id));
	retention_plan_free(p);
}

/* An import waiting for room: pruned for beyond the floor, said so; with
 * no floor set, nothing is pruned for it. */
static void test_room_wanted(void **state)
{
	struct fixture *f = *state;
	for (unsigned i = 1; i <= 4; i++)
		add_capture(f, i, &(struct spec){ .import_days_ago = 10 - i });
	f->free_bytes = 1300;
	f->total_bytes = 10000;
	f->room_wanted = 150;
	struct retention_rules rules = { .min_free_bytes = 1250 };
	struct retention_plan *p = plan(f, &rules);
	assert_string_equal(ids(p), "1");
	assert_string_equal(p->items[0].reason,
			    "free 1300B < min_free 1250B and the 150B an import waits for");
	assert_false(p->below_min_free_after);
	retention_plan_free(p);
	f->room_wanted = 0;
	p = plan(f, &rules);
	assert_int_equal(p->n, 0);
	retention_plan_free(p);
	f->room_wanted = 150;
	rules = (struct retention_rules){ .max_total_size = 1000 };
	p = plan(f, &rules);
	assert_int_equal(p->n, 0);
	retention_plan_free(p);
}

static void test_dry_run_equals_real_run(void **state)
{
	struct fixture *f = *state;
	for (unsigned i = 1; i <= 6; i++)
		add_capture(f, i, &(struct spec){ .import_days_ago = i * 2, .tags = i % 2 ? "a" : "b" });
	const char *a[] = { "a" };
	struct retention_policy pol[] = {
		{ .name = "a", .tags = a, .ntags = 1, .has_max_age = true, .max_age_ns = 5 * DAY },
	};
	struct retention_rules rules = { .policies = pol, .n_policies = 1, .max_total_size = 350 };
	struct retention_plan *dry = plan(f, &rules);
	char want[256];
	snprintf(want, sizeof(want), "%s", ids(dry));
	assert_string_equal(want, "5,3,6");
	struct retention_plan *real = plan(f, &rules);
	assert_string_equal(ids(real), want);
	assert_int_equal(retention_apply(vault_catalog(f->v), vault_store(f->v), real), 0);
	for (size_t i = 0; i < real->n; i++) {
		assert_int_equal(real->items[i].result, 0);
		assert_false(exists(f, real->items[i].id));
		int fd = store_object_open(vault_store(f->v), real->items[i].sha256);
		assert_int_equal(fd, -ENOENT);
	}
	assert_true(exists(f, 1) && exists(f, 2) && exists(f, 4));
	struct catalog_totals t;
	assert_int_equal(catalog_totals(vault_catalog(f->v), &t), 0);
	assert_int_equal(t.captures, 3);
	assert_int_equal(t.objects, 3);
	retention_plan_free(real);
	retention_plan_free(dry);
	struct retention_plan *again = plan(f, &rules);
	assert_int_equal(again->n, 0);
	retention_plan_free(again);
}

static int count_tag(void *opaque, const struct capture_record *rec)
{
	(void)rec;
	(*(int *)opaque)++;
	return 0;
}

static void test_remove_and_tags(void **state)
{
	struct fixture *f = *state;
	struct catalog *cat = vault_catalog(f->v);
	uint64_t id = add_capture(f, 1, &(struct spec){ .import_days_ago = 1, .tags = "a,b" });
	struct capture_record *rec = NULL;
	struct errbuf eb;
	int n = 0;
	char *tags[] = { "b", "c" };
	assert_int_equal(catalog_update_tags(cat, id, tags, 2, &eb), 0);
	assert_int_equal(catalog_foreach(cat, "a", count_tag, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(catalog_foreach(cat, "c", count_tag, &n), 0);
	assert_int_equal(n, 1);
	char *bad[] = { "no spaces" };
	assert_int_equal(catalog_update_tags(cat, id, bad, 1, &eb), -EINVAL);
	assert_int_equal(catalog_update_comment(cat, id, "hello", &eb), 0);
	assert_int_equal(catalog_get(cat, id, &rec), 0);
	assert_string_equal(rec->comment, "hello");
	/* An index entry of the object goes with its last reference. */
	struct db_batch *b = NULL;
	uint8_t key[12] = { 0 };
	be64_put(key, rec->objnum);
	assert_int_equal(db_batch_new(&b), 0);
	db_batch_put(b, DB_CF_FLOWS, key, sizeof(key), "x", 1);
	assert_int_equal(db_write(vault_db(f->v), b, true, &eb), 0);
	db_batch_free(b);
	bool unlink_object = false;
	uint8_t sha[32];
	assert_int_equal(catalog_remove(cat, id, &unlink_object, sha, &eb), 0);
	assert_true(unlink_object);
	assert_memory_equal(sha, rec->sha256, 32);
	void *val = NULL;
	size_t vlen = 0;
	assert_int_equal(db_get(vault_db(f->v), DB_CF_FLOWS, key, sizeof(key), &val, &vlen), -ENOENT);
	assert_int_equal(catalog_object_get(cat, sha, NULL, NULL, NULL), -ENOENT);
	/* The vault's release hook unlinked the object under the lock. */
	assert_int_equal(store_object_open(vault_store(f->v), sha), -ENOENT);
	n = 0;
	assert_int_equal(catalog_foreach(cat, "c", count_tag, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(catalog_remove(cat, id, &unlink_object, sha, &eb), -ENOENT);
	capture_record_free(rec);
}

/* Each deletion is decided on the record as it is when it goes: a capture
 * tagged protect, or moved out of its policy, after the plan was made is
 * kept and reported so; the others go. */
static void test_apply_decides_on_current_record(void **state)
{
	struct fixture *f = *state;
	struct catalog *cat = vault_catalog(f->v);
	struct errbuf eb;
	for (unsigned i = 1; i <= 4; i++)
		add_capture(f, i, &(struct spec){ .import_days_ago = 10, .tags = "x" });
	add_capture(f, 5, &(struct spec){ .import_days_ago = 20 });
	const char *x[] = { "x" };
	struct retention_policy pol[] = {
		{ .name = "x-week", .tags = x, .ntags = 1, .has_max_age = true, .max_age_ns = 7 * DAY },
	};
	struct retention_rules rules = { .protect_tag = "keep", .policies = pol, .n_policies = 1,
					 .max_total_size = 50 };
	struct retention_plan *p = plan(f, &rules);
	assert_string_equal(ids(p), "1,2,3,4,5");
	char *protect[] = { "x", "keep" }, *moved[] = { "y" }, *keep[] = { "keep" };
	assert_int_equal(catalog_update_tags(cat, 2, protect, 2, &eb), 0);
	assert_int_equal(catalog_update_tags(cat, 3, moved, 1, &eb), 0);
	assert_int_equal(catalog_update_tags(cat, 5, keep, 1, &eb), 0);
	assert_int_equal(retention_apply(cat, vault_store(f->v), p), 0);
	assert_false(exists(f, 1));
	assert_true(exists(f, 2));
	assert_true(exists(f, 3));
	assert_false(exists(f, 4));
	assert_true(exists(f, 5));
	json_t *doc = retention_plan_to_json(p, false);
	json_t *items = json_object_get(doc, "captures");
	const bool want[] = { true, false, false, true, false };
	for (size_t i = 0; i < 5; i++) {
		json_t *it = json_array_get(items, i);
		assert_int_equal(json_is_true(json_object_get(it, "deleted")), want[i]);
		assert_int_equal(json_object_get(it, "kept") != NULL, !want[i]);
	}
	assert_string_equal(json_string_value(json_object_get(json_array_get(items, 1), "kept")),
			    "now tagged keep");
	/* Only what really went counts as freed. */
	assert_int_equal(json_integer_value(json_object_get(doc, "bytes_freed")), 200);
	json_decref(doc);
	retention_plan_free(p);
}

/* The same bytes arriving through a second folder: a folder policy
 * deletes a capture only when every arrival of it came through that folder,
 * and the duplicate's tags (protect) count. */
static void test_duplicate_arrivals_count(void **state)
{
	struct fixture *f = *state;
	add_capture(f, 1, &(struct spec){ .import_days_ago = 5, .source = "/srv/probes/a.pcap" });
	add_capture(f, 2, &(struct spec){ .import_days_ago = 5, .source = "/srv/probes/b.pcap",
					  .tags = "scratch" });
	add_capture(f, 3, &(struct spec){ .import_days_ago = 5, .source = "/srv/probes/c.pcap" });
	/* #1 again from another folder, #2 again with the protect tag. */
	assert_int_equal(add_duplicate(f, 1, "again.pcap", "/srv/elsewhere/again.pcap", NULL, 0), 1);
	assert_int_equal(add_duplicate(f, 2, "important.pcap", "/srv/probes/important.pcap", "keep", 0),
			 2);
	struct retention_policy pol[] = {
		{ .name = "probes", .folder = "/srv/probes", .has_max_age = true, .max_age_ns = DAY },
	};
	struct retention_rules rules = { .protect_tag = "keep", .policies = pol, .n_policies = 1 };
	struct retention_plan *p = plan(f, &rules);
	assert_string_equal(ids(p), "3");
	retention_plan_free(p);
}

/* The same bytes imported again (a duplicate, here a day ago) make a
 * capture young again by import: dropped again after max_age, they are not
 * deleted at the next run (their source is gone by then). By last packet
 * the age stays the packets'. */
static void test_duplicate_arrival_young_again(void **state)
{
	struct fixture *f = *state;
	add_capture(f, 1, &(struct spec){ .import_days_ago = 10, .last_packet_days_ago = 30,
					  .tags = "lab" });
	add_capture(f, 2, &(struct spec){ .import_days_ago = 10, .last_packet_days_ago = 30,
					  .tags = "old" });
	for (unsigned seed = 1; seed <= 2; seed++)
		assert_int_equal(add_duplicate(f, seed, "again.pcap", NULL, NULL, NOW - DAY), seed);
	struct capture_record *got = NULL;
	assert_int_equal(catalog_get(vault_catalog(f->v), 1, &got), 0);
	assert_int_equal(got->import_time_ns, NOW - 10 * DAY);
	assert_int_equal(catalog_record_arrived_ns(got), NOW - DAY);
	capture_record_free(got);
	const char *lab[] = { "lab" }, *old[] = { "old" };
	struct retention_policy pol[] = {
		{ .name = "lab-week", .tags = lab, .ntags = 1, .has_max_age = true, .max_age_ns = 7 * DAY },
		{ .name = "old-traffic", .tags = old, .ntags = 1, .has_max_age = true,
		  .max_age_ns = 7 * DAY, .age_by_last_packet = true },
	};
	struct retention_rules rules = { .protect_tag = "keep", .policies = pol, .n_policies = 2 };
	struct retention_plan *p = plan(f, &rules);
	assert_string_equal(ids(p), "2");
	retention_plan_free(p);
}

/* A duplicate carrying the protect tag arrives between the plan and the
 * deletion: the capture and its object stay, so the duplicate's source may
 * go. */
static void test_duplicate_after_plan(void **state)
{
	struct fixture *f = *state;
	add_capture(f, 1, &(struct spec){ .import_days_ago = 5, .tags = "scratch" });
	const char *scratch[] = { "scratch" };
	struct retention_policy pol[] = {
		{ .name = "scratch", .tags = scratch, .ntags = 1, .has_max_age = true, .max_age_ns = DAY },
	};
	struct retention_rules rules = { .protect_tag = "keep", .policies = pol, .n_policies = 1 };
	struct retention_plan *p = plan(f, &rules);
	assert_string_equal(ids(p), "1");
	struct capture_record *r = calloc(1, sizeof(*r));
	struct db_batch *b = NULL;
	struct errbuf eb;
	uint64_t existing = 0;
	assert_non_null(r);
	r->name = strdup("important.pcap");
	r->file_size = 100;
	make_object(f, 1, 100, r->sha256);
	assert_int_equal(capture_record_add_tag(r, "scratch"), 0);
	assert_int_equal(capture_record_add_tag(r, "keep"), 0);
	assert_int_equal(db_batch_new(&b), 0);
	assert_int_equal(catalog_commit(vault_catalog(f->v), r, b, &existing, &eb), CATALOG_DUPLICATE);
	db_batch_free(b);
	assert_int_equal(retention_apply(vault_catalog(f->v), vault_store(f->v), p), 0);
	assert_true(exists(f, 1));
	int fd = store_object_open(vault_store(f->v), r->sha256);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(p->bytes_freed, 0);
	capture_record_free(r);
	retention_plan_free(p);
}

static void test_min_free_refuses(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { { 0 } };
	assert_int_equal(retention_check_min_free(vault_store(f->v), 0, 0, &eb), 0);
	assert_int_equal(retention_check_min_free(vault_store(f->v), UINT64_MAX / 2, 0, &eb),
			 -ENOSPC);
	assert_non_null(strstr(eb.msg, "store below min_free ("));
	assert_non_null(strstr(eb.msg, "): import refused"));
	char size[32];
	retention_fmt_size(10150u * 1024u, size, sizeof(size));
	assert_string_equal(size, "10150KiB"); /* %.4g gave 1.015e+04KiB */
	retention_fmt_size(1536u * 1024u * 1024u, size, sizeof(size));
	assert_string_equal(size, "1536MiB");
	retention_fmt_size(9000, size, sizeof(size));
	assert_string_equal(size, "9000B");
	assert_int_equal(retention_min_free(100, 10, 10000), 1000);
	assert_int_equal(retention_min_free(5000, 10, 10000), 5000);
}

/* Ages by last packet from times before 1970 and past 2262: exact, not
 * from a time clamped to the epoch. */
static void test_last_packet_outside_range(void **state)
{
	struct fixture *f = *state;
	const int64_t s = 1000000000;
	add_capture(f, 1, &(struct spec){ .import_days_ago = 1, .has_last_ns = true,
					  .last_ns = -50000 * s });
	add_capture(f, 2, &(struct spec){ .import_days_ago = 1, .has_last_ns = true,
					  .last_ns = -100000 * s });
	add_capture(f, 3, &(struct spec){ .import_days_ago = 1, .has_last_ns = true,
					  .last_ns = INT64_MAX });
	struct retention_policy pol[] = {
		{ .name = "two", .has_max_count = true, .max_count = 2, .age_by_last_packet = true },
	};
	struct retention_rules rules = { .policies = pol, .n_policies = 1 };
	struct retention_plan *p = plan(f, &rules);
	/* newest by last packet: 3 (2262+), then 1 (-50000 s); 2 is the oldest */
	assert_string_equal(ids(p), "2");
	retention_plan_free(p);

	/* max_age at 1000 s after the epoch: 2 is 101000 s old, 1 51000 s */
	pol[0] = (struct retention_policy){ .name = "age", .has_max_age = true,
					    .max_age_ns = 60000 * (uint64_t)s,
					    .age_by_last_packet = true };
	struct retention_env env = { .now_ns = 1000 * (uint64_t)s };
	struct errbuf eb;
	assert_int_equal(retention_plan(vault_catalog(f->v), &rules, &env, &p, &eb), 0);
	assert_string_equal(ids(p), "2");
	assert_non_null(strstr(p->items[0].reason, "(by last packet)"));
	retention_plan_free(p);
}

/* A last packet stamped after the import (a probe's clock in 2090) is a
 * wrong clock: such a capture ages from its import, under max_age and
 * max_count, rather than staying the newest and never aging until then. */
static void test_last_packet_after_import(void **state)
{
	struct fixture *f = *state;
	const int64_t y2090 = 3786912000ll * 1000000000ll;
	add_capture(f, 1, &(struct spec){ .import_days_ago = 40, .has_last_ns = true,
					  .last_ns = y2090 });
	add_capture(f, 2, &(struct spec){ .import_days_ago = 2, .last_packet_days_ago = 2 });
	add_capture(f, 3, &(struct spec){ .import_days_ago = 3, .last_packet_days_ago = 3 });
	struct retention_policy pol[] = {
		{ .name = "month", .has_max_age = true, .max_age_ns = 30 * DAY,
		  .age_by_last_packet = true },
	};
	struct retention_rules rules = { .policies = pol, .n_policies = 1 };
	struct retention_plan *p = plan(f, &rules);
	assert_string_equal(ids(p), "1");
	assert_string_equal(p->items[0].reason,
			    "age 40d > max_age 30d (by import: last packet stamped later)");
	retention_plan_free(p);

	/* the newest two by their true ages are 2 and 3 */
	pol[0] = (struct retention_policy){ .name = "two", .has_max_count = true, .max_count = 2,
					    .age_by_last_packet = true };
	p = plan(f, &rules);
	assert_string_equal(ids(p), "1");
	retention_plan_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_last_packet_outside_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_packet_after_import, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_age, setup, teardown),
		cmocka_unit_test_setup_teardown(test_age_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_folder_and_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_count_and_protect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_total_size_oldest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_min_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_room_wanted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run_equals_real_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_and_tags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_min_free_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_decides_on_current_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_arrivals_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_arrival_young_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_min_free_met_before_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_after_plan, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
