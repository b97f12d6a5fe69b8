/*
 * catalog.c - the capture catalog (see catalog.h and the keys in db.h).
 *
 * Promises:
 * - catalog_commit is the one place a capture becomes visible. One mutex
 *   covers the dedup check, id assignment and the synced write, so two
 *   imports of the same bytes cannot both commit, and ids are never
 *   reused: "next_id" and "next_objnum" are written in the same batch as
 *   the record they were used for.
 * - A record is stored as the same JSON that capture_record_to_json
 *   prints, so what `capvault info --json` shows is what is on disk.
 *   Parsing tolerates missing fields (older records) with zero defaults.
 *
 * JSON field names: id, name, sha256, file_size, source_size, format,
 * compression, version ("2.4"), byte_order ("little-endian"/"big-endian"),
 * time_precision ("microseconds"/"nanoseconds"), snaplen, linktypes
 * ([{linktype, name, description}]), interfaces, sections, packets,
 * data_bytes, wire_bytes, first_packet_time, last_packet_time,
 * earliest_packet_time, latest_packet_time, import_time (RFC 3339 UTC with
 * nanoseconds, null when unknown, each with an integer "<name>_ns"
 * companion), duration_s, avg_packet_size, avg_packet_rate,
 * data_byte_rate, data_bit_rate, time_ordered, oversized_records,
 * truncated, error, source_path, comment, tags, index_bytes, objnum.
 */
#include "catalog.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "filter.h"
#include "pindex.h"
#include "store.h"

#define TAG_MAX 128
#define SHA_PREFIX_MIN 8

struct catalog {
	struct db *db;
	pthread_mutex_t lock;
	uint64_t next_id;     /* under lock */
	uint64_t next_objnum; /* under lock */
	struct catalog_object_hooks hooks;
};

static const char META_NEXT_ID[] = "next_id";
static const char META_NEXT_OBJNUM[] = "next_objnum";

static uint64_t load_counter(struct db *db, const char *name)
{
	_cleanup_free_ void *val = NULL;
	size_t vlen = 0;

	if (db_get(db, DB_CF_META, name, strlen(name), &val, &vlen) < 0 || vlen != 8)
		return 1;
	return be64_get(val);
}

/* One past the highest stored id, in case the counter went missing. */
static uint64_t id_after_last(struct db *db)
{
	struct db_iter *it = NULL;
	uint64_t next = 1;
	size_t klen = 0;

	if (db_iter_new(db, DB_CF_CAPTURES, &it) < 0)
		return next;
	db_iter_seek_last(it);
	if (db_iter_valid(it)) {
		const uint8_t *k = db_iter_key(it, &klen);
		if (klen == 8)
			next = be64_get(k) + 1;
	}
	db_iter_free(it);
	return next;
}

int catalog_new(struct catalog **out, struct db *db, struct errbuf *eb)
{
	struct catalog *cat = calloc(1, sizeof(*cat));
	uint64_t last;

	errbuf_clear(eb);
	if (!cat)
		return errbuf_set(eb, -ENOMEM, "out of memory");
	cat->db = db;
	pthread_mutex_init(&cat->lock, NULL);
	cat->next_id = load_counter(db, META_NEXT_ID);
	last = id_after_last(db);
	if (last > cat->next_id)
		cat->next_id = last;
	cat->next_objnum = load_counter(db, META_NEXT_OBJNUM);
	*out = cat;
	return 0;
}

struct catalog *catalog_free(struct catalog *cat)
{
	if (cat) {
		pthread_mutex_destroy(&cat->lock);
		free(cat);
	}
	return NULL;
}

void capture_record_free(struct capture_record *rec)
{
	if (!rec)
		return;
	free(rec->name);
	free(rec->error);
	free(rec->source_path);
	free(rec->comment);
	for (size_t i = 0; i < rec->ntags; i++)
		free(rec->tags[i]);
	free(rec->tags);
	free(rec);
}

int capture_record_add_tag(struct capture_record *rec, const char *tag)
{
	char **tags;

	for (size_t i = 0; i < rec->ntags; i++)
		if (strcmp(rec->tags[i], tag) == 0)
			return 0;
	tags = realloc(rec->tags, (rec->ntags + 1) * sizeof(*tags));
	if (!tags)
		return -ENOMEM;
	rec->tags = tags;
	rec->tags[rec->ntags] = strdup(tag);
	if (!rec->tags[rec->ntags])
		return -ENOMEM;
	rec->ntags++;
	return 0;
}

bool catalog_tag_valid(const char *tag)
{
	size_t n = strlen(tag);

	if (n == 0 || n > TAG_MAX)
		return false;
	/* No NUL and no separator-like bytes: tags are key prefixes. */
	return strspn(tag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:/@+-") == n;
}

uint64_t catalog_next_objnum(struct catalog *cat)
{
	pthread_mutex_lock(&cat->lock);
	uint64_t n = cat->next_objnum++;
	pthread_mutex_unlock(&cat->lock);
	return n;
}

/* ---- JSON ---- */

/* RFC 3339 UTC with nanoseconds, e.g. 2024-05-01T12:00:00.123456789Z. */
static json_t *json_time(uint64_t ns)
{
	time_t s = (time_t)(ns / 1000000000u);
	char buf[64];
	struct tm tm;
	size_t n;

	if (!gmtime_r(&s, &tm))
		return json_null();
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%09" PRIu64 "Z", ns % 1000000000u);
	return json_string(buf);
}

static void set_u64(json_t *o, const char *key, uint64_t v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

static void set_str(json_t *o, const char *key, const char *s)
{
	json_object_set_new(o, key, s ? json_string(s) : json_null());
}

/* "<key>" as text (null when there is no such time), "<key>_ns", and
 * "<key>_epoch" as exact decimal seconds in a string: JSON readers that
 * use doubles (jq, JavaScript) cannot hold nanoseconds since 1970. */
static void set_time(json_t *o, const char *key, uint64_t ns, bool known)
{
	char nskey[64], epoch[32];

	snprintf(nskey, sizeof(nskey), "%s_ns", key);
	json_object_set_new(o, key, known ? json_time(ns) : json_null());
	set_u64(o, nskey, ns);
	snprintf(nskey, sizeof(nskey), "%s_epoch", key);
	snprintf(epoch, sizeof(epoch), "%llu.%09llu", (unsigned long long)(ns / 1000000000u),
		 (unsigned long long)(ns % 1000000000u));
	json_object_set_new(o, nskey, known ? json_string(epoch) : json_null());
}

static json_t *json_linktypes(const struct capture_record *rec)
{
	json_t *a = json_array();

	for (uint32_t i = 0; i < rec->nlinktypes && i < 16; i++) {
		json_t *o = json_object();
		set_u64(o, "linktype", rec->linktypes[i]);
		set_str(o, "name", filter_linktype_name(rec->linktypes[i]));
		set_str(o, "description", filter_linktype_description(rec->linktypes[i]));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *json_tags(const struct capture_record *rec)
{
	json_t *a = json_array();

	for (size_t i = 0; i < rec->ntags; i++)
		json_array_append_new(a, json_string(rec->tags[i]));
	return a;
}

static void json_add_times(json_t *o, const struct capture_record *rec)
{
	bool any = rec->packets > 0;
	double dur = any ? (double)(rec->latest_ts_ns - rec->earliest_ts_ns) / 1e9 : 0.0;

	set_time(o, "first_packet_time", rec->first_ts_ns, any);
	set_time(o, "last_packet_time", rec->last_ts_ns, any);
	set_time(o, "earliest_packet_time", rec->earliest_ts_ns, any);
	set_time(o, "latest_packet_time", rec->latest_ts_ns, any);
	json_object_set_new(o, "duration_s", json_real(dur));
	json_object_set_new(o, "avg_packet_size",
			    json_real(any ? (double)rec->data_bytes / (double)rec->packets : 0.0));
	json_object_set_new(o, "avg_packet_rate",
			    json_real(dur > 0 ? (double)rec->packets / dur : 0.0));
	json_object_set_new(o, "data_byte_rate",
			    json_real(dur > 0 ? (double)rec->data_bytes / dur : 0.0));
	json_object_set_new(o, "data_bit_rate",
			    json_real(dur > 0 ? 8.0 * (double)rec->data_bytes / dur : 0.0));
}

static void json_add_format(json_t *o, const struct capture_record *rec)
{
	char version[16];

	set_str(o, "format", rec->format);
	set_str(o, "compression", rec->compression);
	snprintf(version, sizeof(version), "%u.%u", rec->version_major, rec->version_minor);
	set_str(o, "version", version);
	set_str(o, "byte_order", rec->big_endian ? "big-endian" : "little-endian");
	set_str(o, "time_precision", rec->nanosecond ? "nanoseconds" : "microseconds");
	set_u64(o, "snaplen", rec->snaplen);
	json_object_set_new(o, "linktypes", json_linktypes(rec));
	set_u64(o, "interfaces", rec->interfaces);
	set_u64(o, "sections", rec->sections);
}

json_t *capture_record_to_json(const struct capture_record *rec)
{
	json_t *o = json_object();
	char hex[65];

	if (!o)
		return NULL;
	sha256_hex(rec->sha256, hex);
	set_u64(o, "id", rec->id);
	set_str(o, "name", rec->name);
	set_str(o, "sha256", hex);
	set_u64(o, "file_size", rec->file_size);
	set_u64(o, "source_size", rec->source_size);
	json_add_format(o, rec);
	set_u64(o, "packets", rec->packets);
	set_u64(o, "data_bytes", rec->data_bytes);
	set_u64(o, "wire_bytes", rec->wire_bytes);
	json_add_times(o, rec);
	json_object_set_new(o, "time_ordered", json_boolean(rec->time_ordered));
	set_u64(o, "oversized_records", rec->oversized);
	json_object_set_new(o, "truncated", json_boolean(rec->truncated));
	set_str(o, "error", rec->error);
	set_time(o, "import_time", rec->import_time_ns, rec->import_time_ns != 0);
	set_str(o, "source_path", rec->source_path);
	set_str(o, "comment", rec->comment);
	json_object_set_new(o, "tags", json_tags(rec));
	set_u64(o, "index_bytes", rec->index_bytes);
	set_u64(o, "objnum", rec->objnum);
	return o;
}

static uint64_t get_u64(const json_t *o, const char *key)
{
	return (uint64_t)json_integer_value(json_object_get(o, key));
}

static const char *get_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* strdup of an optional string field; false only when out of memory. */
static bool dup_str(const json_t *o, const char *key, char **out)
{
	const char *s = get_str(o, key);

	*out = s ? strdup(s) : NULL;
	return !s || *out;
}

static void parse_format(const json_t *o, struct capture_record *rec)
{
	const char *v = get_str(o, "version");
	const char *bo = get_str(o, "byte_order");
	const char *tp = get_str(o, "time_precision");
	const json_t *lts = json_object_get(o, "linktypes");
	size_t i;
	json_t *lt;

	snprintf(rec->format, sizeof(rec->format), "%s", get_str(o, "format") ?: "");
	snprintf(rec->compression, sizeof(rec->compression), "%s",
		 get_str(o, "compression") ?: "");
	if (v && sscanf(v, "%4hu.%4hu", &rec->version_major, &rec->version_minor) != 2)
		rec->version_major = rec->version_minor = 0;
	rec->big_endian = bo && strcmp(bo, "big-endian") == 0;
	rec->nanosecond = tp && strcmp(tp, "nanoseconds") == 0;
	rec->snaplen = (uint32_t)get_u64(o, "snaplen");
	json_array_foreach(lts, i, lt) {
		if (rec->nlinktypes < ARRAY_SIZE(rec->linktypes))
			rec->linktypes[rec->nlinktypes++] = (uint32_t)get_u64(lt, "linktype");
	}
	rec->interfaces = (uint32_t)get_u64(o, "interfaces");
	rec->sections = (uint32_t)get_u64(o, "sections");
}

static void parse_counts(const json_t *o, struct capture_record *rec)
{
	rec->id = get_u64(o, "id");
	rec->file_size = get_u64(o, "file_size");
	rec->source_size = get_u64(o, "source_size");
	rec->packets = get_u64(o, "packets");
	rec->data_bytes = get_u64(o, "data_bytes");
	rec->wire_bytes = get_u64(o, "wire_bytes");
	rec->first_ts_ns = get_u64(o, "first_packet_time_ns");
	rec->last_ts_ns = get_u64(o, "last_packet_time_ns");
	rec->earliest_ts_ns = get_u64(o, "earliest_packet_time_ns");
	rec->latest_ts_ns = get_u64(o, "latest_packet_time_ns");
	rec->time_ordered = json_is_true(json_object_get(o, "time_ordered"));
	rec->oversized = get_u64(o, "oversized_records");
	rec->truncated = json_is_true(json_object_get(o, "truncated"));
	rec->import_time_ns = get_u64(o, "import_time_ns");
	rec->index_bytes = get_u64(o, "index_bytes");
	rec->objnum = get_u64(o, "objnum");
}

/* Parses a stored record. Returns 0, -EIO (not a record) or -ENOMEM. */
static int record_from_json(const char *buf, size_t len, struct capture_record **out)
{
	json_t *o = json_loadb(buf, len, 0, NULL);
	struct capture_record *rec = calloc(1, sizeof(*rec));
	const char *sha = o ? get_str(o, "sha256") : NULL;
	const json_t *tags = o ? json_object_get(o, "tags") : NULL;
	int r = rec ? 0 : -ENOMEM;
	size_t i;
	json_t *t;

	if (r == 0 && (!json_is_object(o) || !sha || sha256_parse(sha, rec->sha256) < 0))
		r = -EIO;
	if (r == 0) {
		parse_counts(o, rec);
		parse_format(o, rec);
		if (!dup_str(o, "name", &rec->name) || !dup_str(o, "error", &rec->error) ||
		    !dup_str(o, "source_path", &rec->source_path) ||
		    !dup_str(o, "comment", &rec->comment))
			r = -ENOMEM;
	}
	json_array_foreach(tags, i, t) {
		if (r == 0 && json_is_string(t))
			r = capture_record_add_tag(rec, json_string_value(t));
	}
	json_decref(o);
	if (r < 0) {
		capture_record_free(rec);
		return r;
	}
	*out = rec;
	return 0;
}

/* ---- reading ---- */

int catalog_get(struct catalog *cat, uint64_t id, struct capture_record **out)
{
	_cleanup_free_ void *val = NULL;
	uint8_t key[8];
	size_t vlen = 0;
	int r;

	be64_put(key, id);
	r = db_get(cat->db, DB_CF_CAPTURES, key, sizeof(key), &val, &vlen);
	if (r < 0)
		return r == -ENOENT ? r : -EIO;
	r = record_from_json(val, vlen, out);
	if (r == 0)
		(*out)->id = id; /* the key is the truth */
	return r;
}

int catalog_find_sha(struct catalog *cat, const uint8_t sha[32], uint64_t *id)
{
	struct db_iter *it = NULL;
	int r = db_iter_new(cat->db, DB_CF_BYSHA, &it);
	size_t klen = 0;

	if (r < 0)
		return r;
	r = -ENOENT;
	db_iter_seek(it, sha, 32);
	if (db_iter_valid(it)) {
		const uint8_t *k = db_iter_key(it, &klen);
		if (klen == 40 && memcmp(k, sha, 32) == 0) {
			*id = be64_get(k + 32);
			r = 0;
		}
	}
	db_iter_free(it);
	return r;
}

static int lookup_id(struct catalog *cat, const char *s, struct capture_record **out,
		     struct errbuf *eb)
{
	char *end;
	errno = 0;
	unsigned long long id = strtoull(s, &end, 10);

	if (errno || *end || id == 0)
		return errbuf_set(eb, -ENOENT, "no capture with id %s", s);
	int r = catalog_get(cat, id, out);
	if (r == -ENOENT)
		return errbuf_set(eb, r, "no capture with id %s", s);
	if (r < 0)
		return errbuf_set(eb, r, "cannot read capture %s: %s", s, strerror(-r));
	return 0;
}

/* True when the bysha key k starts with the hex prefix (len digits). */
static bool sha_key_matches(const uint8_t *k, const uint8_t *p, size_t len)
{
	if (memcmp(k, p, len / 2) != 0)
		return false;
	return len % 2 == 0 || (k[len / 2] >> 4) == (p[len / 2] >> 4);
}

/* Finds the one object whose sha256 starts with hex; its first capture. */
static int lookup_prefix(struct catalog *cat, const char *hex, size_t len, uint64_t *id,
			 struct errbuf *eb)
{
	uint8_t p[33] = { 0 }, first[32];
	struct db_iter *it = NULL;
	bool found = false;
	int r = 0;

	for (size_t i = 0; i < len; i++) {
		char c[2] = { hex[i], 0 };
		p[i / 2] |= (uint8_t)(strtoul(c, NULL, 16) << (i % 2 ? 0 : 4));
	}
	if ((r = db_iter_new(cat->db, DB_CF_BYSHA, &it)) < 0)
		return r;
	for (db_iter_seek(it, p, (len + 1) / 2); db_iter_valid(it); db_iter_next(it)) {
		size_t klen = 0;
		const uint8_t *k = db_iter_key(it, &klen);
		if (klen != 40 || !sha_key_matches(k, p, len))
			break;
		if (found && memcmp(first, k, 32) != 0) {
			r = errbuf_set(eb, -EINVAL, "sha256 prefix %s is ambiguous", hex);
			break;
		}
		if (!found) { /* ids sort ascending: the first capture of the object */
			memcpy(first, k, 32);
			*id = be64_get(k + 32);
			found = true;
		}
	}
	db_iter_free(it);
	if (r == 0 && !found)
		r = errbuf_set(eb, -ENOENT, "no capture with sha256 prefix %s", hex);
	return r;
}

int catalog_lookup(struct catalog *cat, const char *id_or_sha, struct capture_record **out,
		   struct errbuf *eb)
{
	size_t len = strlen(id_or_sha);
	bool digits = len && strspn(id_or_sha, "0123456789") == len;
	bool hex = len && strspn(id_or_sha, "0123456789abcdefABCDEF") == len;
	uint64_t id = 0;
	int r;

	errbuf_clear(eb);
	if (digits && len < SHA_PREFIX_MIN)
		return lookup_id(cat, id_or_sha, out, eb);
	if (!hex || len > 64)
		return errbuf_set(eb, -EINVAL, "'%s' is neither a capture id nor a sha256 prefix",
				  id_or_sha);
	if (len < SHA_PREFIX_MIN)
		return errbuf_set(eb, -EINVAL, "sha256 prefix '%s' is too short (%d hex digits minimum)",
				  id_or_sha, SHA_PREFIX_MIN);
	_cleanup_free_ char *lower = strdup(id_or_sha);
	if (!lower)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		lower[i] = (char)(lower[i] | 0x20); /* hex digits only: ASCII lower-case */
	r = lookup_prefix(cat, lower, len, &id, eb);
	/* Eight digits or more may still be a (large) id. */
	if (r == -ENOENT && digits)
		return lookup_id(cat, id_or_sha, out, eb);
	if (r < 0)
		return r;
	r = catalog_get(cat, id, out);
	return r < 0 ? errbuf_set(eb, r, "cannot read capture %" PRIu64 ": %s", id, strerror(-r))
		     : 0;
}

static int foreach_all(struct catalog *cat, catalog_record_fn fn, void *opaque)
{
	struct db_iter *it = NULL;
	int r = db_iter_new(cat->db, DB_CF_CAPTURES, &it);

	if (r < 0)
		return r;
	for (db_iter_seek_first(it); r == 0 && db_iter_valid(it); db_iter_next(it)) {
		size_t klen = 0, vlen = 0;
		const uint8_t *k = db_iter_key(it, &klen);
		const char *v = db_iter_value(it, &vlen);
		struct capture_record *rec = NULL;
		if (klen != 8 || record_from_json(v, vlen, &rec) < 0)
			continue; /* not a record: skip, like fsck keeps going */
		rec->id = be64_get(k);
		r = fn(opaque, rec);
		capture_record_free(rec);
	}
	db_iter_free(it);
	return r;
}

int catalog_foreach_raw(struct catalog *cat, uint64_t after_id, catalog_raw_fn fn, void *opaque)
{
	struct db_iter *it = NULL;
	uint8_t start[8];
	int r = db_iter_new_short(cat->db, DB_CF_CAPTURES, &it);

	if (r < 0)
		return r;
	be64_put(start, after_id + 1);
	for (db_iter_seek(it, start, sizeof(start)); r == 0 && db_iter_valid(it);
	     db_iter_next(it)) {
		size_t klen = 0, vlen = 0;
		const uint8_t *k = db_iter_key(it, &klen);
		const char *v = db_iter_value(it, &vlen);
		if (klen == 8)
			r = fn(opaque, be64_get(k), v, vlen);
	}
	db_iter_free(it);
	return r;
}

int catalog_get_raw(struct catalog *cat, uint64_t id, char **json, size_t *len)
{
	uint8_t key[8];
	void *val = NULL;
	be64_put(key, id);
	int r = db_get(cat->db, DB_CF_CAPTURES, key, sizeof(key), &val, len);
	*json = r == 0 ? val : NULL;
	return r;
}

static int foreach_tag(struct catalog *cat, const char *tag, catalog_record_fn fn, void *opaque)
{
	size_t tlen = strlen(tag);
	struct db_iter *it = NULL;
	int r = db_iter_new(cat->db, DB_CF_TAGS, &it);

	if (r < 0)
		return r;
	/* The prefix includes the NUL so "web" does not match "webserver". */
	for (db_iter_seek(it, tag, tlen + 1); r == 0 && db_iter_valid(it); db_iter_next(it)) {
		size_t klen = 0;
		const uint8_t *k = db_iter_key(it, &klen);
		struct capture_record *rec = NULL;
		if (klen != tlen + 9 || memcmp(k, tag, tlen + 1) != 0)
			break;
		int g = catalog_get(cat, be64_get(k + tlen + 1), &rec);
		if (g == -ENOENT)
			continue;
		r = g < 0 ? g : fn(opaque, rec);
		capture_record_free(rec);
	}
	db_iter_free(it);
	return r;
}

int catalog_foreach(struct catalog *cat, const char *tag, catalog_record_fn fn, void *opaque)
{
	return tag ? foreach_tag(cat, tag, fn, opaque) : foreach_all(cat, fn, opaque);
}

static int sum_captures(struct catalog *cat, struct catalog_totals *t)
{
	struct db_iter *it = NULL;
	int r = db_iter_new(cat->db, DB_CF_CAPTURES, &it);

	if (r < 0)
		return r;
	for (db_iter_seek_first(it); db_iter_valid(it); db_iter_next(it)) {
		size_t vlen = 0;
		const char *v = db_iter_value(it, &vlen);
		json_t *o = json_loadb(v, vlen, 0, NULL);
		t->captures++;
		t->packets += get_u64(o, "packets");
		t->index_bytes += get_u64(o, "index_bytes");
		json_decref(o);
	}
	db_iter_free(it);
	return 0;
}

static int sum_objects(struct catalog *cat, struct catalog_totals *t)
{
	struct db_iter *it = NULL;
	int r = db_iter_new(cat->db, DB_CF_OBJECTS, &it);

	if (r < 0)
		return r;
	for (db_iter_seek_first(it); db_iter_valid(it); db_iter_next(it)) {
		size_t vlen = 0;
		const char *v = db_iter_value(it, &vlen);
		json_t *o = json_loadb(v, vlen, 0, NULL);
		t->objects++;
		t->object_bytes += get_u64(o, "size");
		json_decref(o);
	}
	db_iter_free(it);
	return 0;
}

int catalog_totals(struct catalog *cat, struct catalog_totals *out)
{
	struct catalog_totals t = { 0 };
	int r = sum_captures(cat, &t);

	if (r == 0)
		r = sum_objects(cat, &t);
	if (r == 0)
		*out = t;
	return r;
}

/* ---- committing ---- */

static int put_json(struct db_batch *b, enum db_cf cf, const void *key, size_t klen, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (!s)
		return -ENOMEM;
	db_batch_put(b, cf, key, klen, s, strlen(s));
	free(s);
	return 0;
}

/* The object record with one more reference (objnum kept if it existed). */
static int put_object(struct catalog *cat, const struct capture_record *rec, struct db_batch *b)
{
	_cleanup_free_ void *val = NULL;
	size_t vlen = 0;
	uint64_t refs = 0, objnum = rec->objnum;
	json_t *old;

	if (db_get(cat->db, DB_CF_OBJECTS, rec->sha256, 32, &val, &vlen) == 0 &&
	    (old = json_loadb(val, vlen, 0, NULL)) != NULL) {
		refs = get_u64(old, "refs");
		if (json_object_get(old, "objnum"))
			objnum = get_u64(old, "objnum");
		json_decref(old);
	}
	json_t *o = json_pack("{sIsIsI}", "size", (json_int_t)rec->file_size, "refs",
			      (json_int_t)(refs + 1), "objnum", (json_int_t)objnum);
	return put_json(b, DB_CF_OBJECTS, rec->sha256, 32, o);
}

static void put_index_keys(const struct capture_record *rec, struct db_batch *b)
{
	uint8_t key[TAG_MAX + 9];

	for (size_t i = 0; i < rec->ntags; i++) {
		size_t n = strlen(rec->tags[i]);
		memcpy(key, rec->tags[i], n);
		key[n] = 0;
		be64_put(key + n + 1, rec->id);
		db_batch_put(b, DB_CF_TAGS, key, n + 9, "", 0);
	}
	be64_put(key, rec->earliest_ts_ns);
	be64_put(key + 8, rec->id);
	db_batch_put(b, DB_CF_TIME, key, 16, "", 0);
	memcpy(key, rec->sha256, 32);
	be64_put(key + 32, rec->id);
	db_batch_put(b, DB_CF_BYSHA, key, 40, "", 0);
}

/* Adds everything rec needs to the batch; called under the lock. */
static int put_record(struct catalog *cat, const struct capture_record *rec, struct db_batch *b)
{
	uint8_t key[8];
	int r;

	be64_put(key, rec->id);
	r = put_json(b, DB_CF_CAPTURES, key, sizeof(key), capture_record_to_json(rec));
	if (r == 0)
		r = put_object(cat, rec, b);
	if (r < 0)
		return r;
	put_index_keys(rec, b);
	be64_put(key, rec->id + 1);
	db_batch_put(b, DB_CF_META, META_NEXT_ID, strlen(META_NEXT_ID), key, 8);
	be64_put(key, cat->next_objnum);
	db_batch_put(b, DB_CF_META, META_NEXT_OBJNUM, strlen(META_NEXT_OBJNUM), key, 8);
	return 0;
}

static int check_tags(const struct capture_record *rec, struct errbuf *eb)
{
	for (size_t i = 0; i < rec->ntags; i++)
		if (!catalog_tag_valid(rec->tags[i]))
			return errbuf_set(eb, -EINVAL,
					  "invalid tag '%s' (1-128 of A-Z a-z 0-9 . _ : / @ + -)",
					  rec->tags[i]);
	return 0;
}

static int commit_locked(struct catalog *cat, struct capture_record *rec, struct db_batch *batch,
			 uint64_t *existing_id, struct errbuf *eb)
{
	struct timespec now;
	int r = catalog_find_sha(cat, rec->sha256, existing_id);

	if (r != 0 && r != -ENOENT)
		return errbuf_set(eb, r, "cannot read the catalog: %s", strerror(-r));
	/* Also for a duplicate: its object may have been quarantined as
	 * corrupt since this import published (found it stored): a retry
	 * publishes these bytes again. */
	if (cat->hooks.check && cat->hooks.check(cat->hooks.opaque, rec->sha256) < 0)
		return errbuf_set(eb, -EAGAIN, "the object was pruned or quarantined while "
				  "importing; retry");
	if (r == 0)
		return CATALOG_DUPLICATE;
	if (rec->import_time_ns == 0 && clock_gettime(CLOCK_REALTIME, &now) == 0)
		rec->import_time_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	rec->id = cat->next_id;
	r = put_record(cat, rec, batch);
	if (r == 0)
		r = db_write(cat->db, batch, true, eb);
	else
		errbuf_set(eb, r, "cannot build the catalog record: %s", strerror(-r));
	if (r < 0) {
		rec->id = 0;
		return r;
	}
	cat->next_id++;
	return 0;
}

int catalog_commit(struct catalog *cat, struct capture_record *rec, struct db_batch *batch,
		   uint64_t *existing_id, struct errbuf *eb)
{
	int r;

	errbuf_clear(eb);
	r = check_tags(rec, eb);
	if (r < 0)
		return r;
	pthread_mutex_lock(&cat->lock);
	r = commit_locked(cat, rec, batch, existing_id, eb);
	pthread_mutex_unlock(&cat->lock);
	return r;
}

/* ---- removing and updating ---- */

void catalog_set_object_hooks(struct catalog *cat, const struct catalog_object_hooks *hooks)
{
	pthread_mutex_lock(&cat->lock);
	cat->hooks = hooks ? *hooks : (struct catalog_object_hooks){ 0 };
	pthread_mutex_unlock(&cat->lock);
}

int catalog_object_get(struct catalog *cat, const uint8_t sha[32], uint64_t *size,
		       uint64_t *refs, uint64_t *objnum)
{
	_cleanup_free_ void *val = NULL;
	size_t vlen = 0;
	int r = db_get(cat->db, DB_CF_OBJECTS, sha, 32, &val, &vlen);

	if (r < 0)
		return r == -ENOENT ? r : -EIO;
	json_t *o = json_loadb(val, vlen, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return -EIO;
	}
	if (size)
		*size = get_u64(o, "size");
	if (refs)
		*refs = get_u64(o, "refs");
	if (objnum)
		*objnum = get_u64(o, "objnum");
	json_decref(o);
	return 0;
}

static void delete_index_keys(const struct capture_record *rec, struct db_batch *b)
{
	uint8_t key[TAG_MAX + 9];

	for (size_t i = 0; i < rec->ntags; i++) {
		size_t n = strlen(rec->tags[i]);
		if (n > TAG_MAX)
			continue;
		memcpy(key, rec->tags[i], n);
		key[n] = 0;
		be64_put(key + n + 1, rec->id);
		db_batch_delete(b, DB_CF_TAGS, key, n + 9);
	}
	be64_put(key, rec->earliest_ts_ns);
	be64_put(key + 8, rec->id);
	db_batch_delete(b, DB_CF_TIME, key, 16);
	memcpy(key, rec->sha256, 32);
	be64_put(key + 32, rec->id);
	db_batch_delete(b, DB_CF_BYSHA, key, 40);
}

/* One reference less on rec's object; *last when it was the last. */
static int drop_object_ref(struct catalog *cat, const struct capture_record *rec,
			   struct db_batch *b, bool *last)
{
	uint64_t size = 0, refs = 0, objnum = rec->objnum;
	int r = catalog_object_get(cat, rec->sha256, &size, &refs, &objnum);

	*last = false;
	if (r == -ENOENT || (r == 0 && refs <= 1)) {
		db_batch_delete(b, DB_CF_OBJECTS, rec->sha256, 32);
		pindex_delete_object(cat->db, b, objnum);
		*last = true;
		return 0;
	}
	if (r < 0)
		return r;
	json_t *o = json_pack("{sIsIsI}", "size", (json_int_t)size, "refs", (json_int_t)(refs - 1),
			      "objnum", (json_int_t)objnum);
	return put_json(b, DB_CF_OBJECTS, rec->sha256, 32, o);
}

static int remove_locked(struct catalog *cat, uint64_t id, bool *unlink_object, uint8_t sha[32],
			 struct errbuf *eb)
{
	struct capture_record *rec = NULL;
	struct db_batch *b = NULL;
	uint8_t key[8];
	bool last = false;
	int r = catalog_get(cat, id, &rec);

	if (r < 0)
		return errbuf_set(eb, r, "capture %" PRIu64 ": %s", id,
				  r == -ENOENT ? "no such capture" : strerror(-r));
	r = db_batch_new(&b);
	if (r == 0) {
		be64_put(key, id);
		db_batch_delete(b, DB_CF_CAPTURES, key, sizeof(key));
		delete_index_keys(rec, b);
		r = drop_object_ref(cat, rec, b, &last);
	}
	if (r == 0)
		r = db_write(cat->db, b, true, eb);
	else
		errbuf_set(eb, r, "capture %" PRIu64 ": %s", id, strerror(-r));
	if (r == 0 && last) {
		memcpy(sha, rec->sha256, 32);
		*unlink_object = true;
		if (cat->hooks.release)
			cat->hooks.release(cat->hooks.opaque, rec->sha256);
	}
	db_batch_free(b);
	capture_record_free(rec);
	return r;
}

int catalog_remove(struct catalog *cat, uint64_t id, bool *unlink_object, uint8_t sha[32],
		   struct errbuf *eb)
{
	errbuf_clear(eb);
	*unlink_object = false;
	pthread_mutex_lock(&cat->lock);
	int r = remove_locked(cat, id, unlink_object, sha, eb);
	pthread_mutex_unlock(&cat->lock);
	return r;
}

int catalog_quiesce(struct catalog *cat, int (*fn)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&cat->lock);
	int r = fn(opaque);
	pthread_mutex_unlock(&cat->lock);
	return r;
}

/* Rewrites rec (same id) and its tag keys, replacing old's; under lock. */
static int rewrite_locked(struct catalog *cat, const struct capture_record *old,
			  const struct capture_record *rec, struct errbuf *eb)
{
	struct db_batch *b = NULL;
	uint8_t key[8];
	int r = db_batch_new(&b);

	if (r < 0)
		return r;
	delete_index_keys(old, b);
	be64_put(key, rec->id);
	r = put_json(b, DB_CF_CAPTURES, key, sizeof(key), capture_record_to_json(rec));
	if (r == 0) {
		put_index_keys(rec, b);
		r = db_write(cat->db, b, true, eb);
	}
	db_batch_free(b);
	return r;
}

enum update_field { UPDATE_TAGS, UPDATE_NAME, UPDATE_COMMENT };

struct update {
	enum update_field field;
	char *const *tags;
	size_t ntags;
	const char *text;
};

static int apply_update(struct capture_record *rec, const struct update *u)
{
	char **slot = u->field == UPDATE_NAME ? &rec->name : &rec->comment;

	if (u->field != UPDATE_TAGS) {
		free(*slot);
		*slot = u->text ? strdup(u->text) : NULL;
		return u->text && !*slot ? -ENOMEM : 0;
	}
	for (size_t i = 0; i < rec->ntags; i++)
		free(rec->tags[i]);
	free(rec->tags);
	rec->tags = NULL;
	rec->ntags = 0;
	for (size_t i = 0; i < u->ntags; i++) {
		int r = capture_record_add_tag(rec, u->tags[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int update_record(struct catalog *cat, uint64_t id, const struct update *u,
			 struct errbuf *eb)
{
	struct capture_record *old = NULL, *rec = NULL;
	int r;

	errbuf_clear(eb);
	pthread_mutex_lock(&cat->lock);
	r = catalog_get(cat, id, &old);
	if (r == 0)
		r = catalog_get(cat, id, &rec);
	if (r == 0)
		r = apply_update(rec, u);
	if (r == 0)
		r = check_tags(rec, eb);
	if (r == 0)
		r = rewrite_locked(cat, old, rec, eb);
	pthread_mutex_unlock(&cat->lock);
	if (r < 0 && eb && !eb->msg[0])
		errbuf_set(eb, r, "capture %" PRIu64 ": %s", id,
			   r == -ENOENT ? "no such capture" : strerror(-r));
	capture_record_free(old);
	capture_record_free(rec);
	return r;
}

int catalog_update_tags(struct catalog *cat, uint64_t id, char *const *tags, size_t ntags,
			struct errbuf *eb)
{
	struct update u = { .field = UPDATE_TAGS, .tags = tags, .ntags = ntags };
	return update_record(cat, id, &u, eb);
}

int catalog_update_name(struct catalog *cat, uint64_t id, const char *name, struct errbuf *eb)
{
	struct update u = { .field = UPDATE_NAME, .text = name };
	return update_record(cat, id, &u, eb);
}

int catalog_update_comment(struct catalog *cat, uint64_t id, const char *comment,
			   struct errbuf *eb)
{
	struct update u = { .field = UPDATE_COMMENT, .text = comment };
	return update_record(cat, id, &u, eb);
}

int catalog_object_put(struct catalog *cat, const uint8_t sha[32], uint64_t size, uint64_t refs,
		       uint64_t objnum, struct errbuf *eb)
{
	struct db_batch *b = NULL;
	int r = db_batch_new(&b);

	errbuf_clear(eb);
	if (r < 0)
		return r;
	if (refs == 0) {
		db_batch_delete(b, DB_CF_OBJECTS, sha, 32);
		pindex_delete_object(cat->db, b, objnum);
	} else {
		r = put_json(b, DB_CF_OBJECTS, sha, 32,
			     json_pack("{sIsIsI}", "size", (json_int_t)size, "refs",
				       (json_int_t)refs, "objnum", (json_int_t)objnum));
	}
	pthread_mutex_lock(&cat->lock);
	if (r == 0)
		r = db_write(cat->db, b, true, eb);
	pthread_mutex_unlock(&cat->lock);
	db_batch_free(b);
	return r;
}
