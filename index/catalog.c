/*
 * catalog.c - the capture catalog (see catalog.h and the keys in db.h).
 *
 * Promises:
 * - catalog_commit is the one place a capture becomes visible. One mutex
 *   covers the dedup check, id assignment and the synced write, so two
 *   imports of the same bytes cannot both commit, and ids are never
 *   reused: "next_id" and "next_objnum" are written in the same batch as
 *   the record they were used for.
 * - Packet times are signed ns (capfile.h): before 1970 negative, beyond
 *   the range saturated; the JSON's time_saturated counts the packets
 *   whose time was, and "<time>_saturated" says whether a packet time
 *   stands for one beyond the end its text shows. Records written before
 *   times were signed have no time_saturated and hold unsigned times,
 *   which JSON shows negative from 2^63 ns on: read back, those saturate.
 *   The time family's keys flip the sign bit so that they sort in time
 *   order; catalog_new rewrites once the keys of a store written before
 *   (meta "time_keys").
 * - A record is stored as the same JSON that capture_record_to_json
 *   prints, so what `capvault info --json` shows is what is on disk.
 *   Parsing tolerates missing fields (older records) with zero defaults.
 * - Text fields (name, error, source_path, comment) are stored in their
 *   escaped form (textesc.h) and read back to the bytes they were: a name
 *   that is not UTF-8 is kept, never dropped.
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
 * truncated, error, source_path, comment, tags, also_imported_as
 * ([{name, source_path, import_time, ...}]: the duplicates merged into
 * the record), index_bytes, objnum, location ("local", "remote", "both":
 * a copy of the object record's, see below).
 *
 * Object records (objects family) are JSON {size, refs, objnum,
 * location}; a record without location (written before tiering) is
 * local. The location is the truth (invariant 7); each capture record of
 * the object carries a copy written in the same synced batch, so that
 * listings served from the stored JSON show it. Only
 * catalog_object_relocate moves an object, under the lock; an import of
 * the bytes of a remote object (its local file published again) makes it
 * both.
 *
 * A duplicate is merged into the capture of its object under the same
 * lock, in one synced batch, before the importer may remove its source:
 * its tags (a protect tag protects), its name and its source. A removal
 * may be decided under that lock too (catalog_remove_if), so a retention
 * run never deletes a capture that a tag change or a duplicate has just
 * protected.
 */
#include "catalog.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "annot.h"
#include "cleanup.h"
#include "filter.h"
#include "blockdig.h"
#include "objcache.h"
#include "pindex.h"
#include "query.h"
#include "store.h"
#include "textesc.h"
#include "wallclock.h"

#define TAG_MAX 128
#define SHA_PREFIX_MIN 8

struct catalog {
	struct db *db;
	pthread_mutex_t lock;
	uint64_t next_id;     /* under lock */
	uint64_t next_objnum; /* under lock */
	struct catalog_object_hooks hooks;
	struct summary *summary; /* the capture summary, see its section */
};

static struct summary *summary_new(void);
static struct summary *summary_free(struct summary *sum);

static const char META_NEXT_ID[] = "next_id";
static const char META_VAULT_ID[] = "vault_id";
static const char META_NEXT_OBJNUM[] = "next_objnum";
static const char META_TIME_KEYS[] = "time_keys"; /* "signed": see time_key */
static const char META_LOCATIONS[] = "locations"; /* "1": every record has one */

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

/* Time family key: the time with its sign bit flipped (so that keys sort
 * by time, before 1970 first), then the id. */
static void time_key(uint8_t key[16], int64_t ns, uint64_t id)
{
	be64_put(key, (uint64_t)ns ^ (1ull << 63));
	be64_put(key + 8, id);
}

/* Rewrites one record of a migration's column family into b. Returns 0,
 * or a negative errno that stops the migration: its marker is not
 * written, and the next open tries again. */
typedef int (*migrate_fn)(struct db *db, struct db_batch *b, const void *key, size_t klen,
			  const void *val, size_t vlen);

struct migration {
	const char *marker; /* its key in the meta family, present once done */
	const char *done;   /* the marker's value */
	enum db_cf cf;      /* the family whose records it rewrites */
	migrate_fn fn;
	/* Written in batches of MIGRATE_BATCH_BYTES (bounded memory), for a
	 * rewrite that may run over a record twice; else in one batch with
	 * the marker, for one that must not be left half done. */
	bool batched;
};

/* Batches of a batched migration are written at this size. */
#define MIGRATE_BATCH_BYTES (4u << 20)

/* Writes b and starts a new one in *b. Returns 0 or a negative errno. */
static int migrate_flush(struct db *db, struct db_batch **b)
{
	int r = db_write(db, *b, true, NULL);
	*b = db_batch_free(*b);
	return r ? r : db_batch_new(b);
}

/*
 * Runs m over every record of its family, once: the marker goes in the
 * last synced batch. Best effort: the migrations rewrite what a listing
 * shows or what nothing reads yet, so a store that cannot be read or
 * written now (a full disk) still opens, and the next open tries again.
 */
static void migrate_once(struct db *db, const struct migration *m)
{
	_cleanup_free_ void *val = NULL;
	size_t vlen = 0;
	struct db_iter *it = NULL;
	struct db_batch *b = NULL;

	if (db_get(db, DB_CF_META, m->marker, strlen(m->marker), &val, &vlen) == 0)
		return;
	int r = db_batch_new(&b);
	if (r == 0 && (r = db_iter_new(db, m->cf, &it)) == 0)
		db_iter_seek_first(it);
	for (; r == 0 && db_iter_valid(it); db_iter_next(it)) {
		size_t klen = 0, len = 0;
		const void *k = db_iter_key(it, &klen);
		const void *v = db_iter_value(it, &len);
		r = m->fn(db, b, k, klen, v, len);
		if (r == 0 && m->batched && db_batch_bytes(b) >= MIGRATE_BATCH_BYTES)
			r = migrate_flush(db, &b);
	}
	if (r == 0) {
		db_batch_put(b, DB_CF_META, m->marker, strlen(m->marker), m->done, strlen(m->done));
		db_write(db, b, true, NULL);
	}
	db_iter_free(it);
	db_batch_free(b);
}

/*
 * A store written before times were signed has time keys of the unsigned
 * time: rewrites them as time_key does, in one batch (a key rewritten
 * twice would be wrong). One key per capture, so this is quick even for
 * large stores; the packet index tells its own old values apart
 * (pindex.c). Nothing reads the time family yet.
 */
static int time_key_migrate(struct db *db, struct db_batch *b, const void *key, size_t klen,
			    const void *val, size_t vlen)
{
	(void)db, (void)val, (void)vlen;
	if (klen != 16)
		return 0;
	uint64_t t = be64_get(key);
	uint8_t nkey[16];
	time_key(nkey, t > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)t,
		 be64_get((const uint8_t *)key + 8));
	db_batch_delete(b, DB_CF_TIME, key, klen);
	db_batch_put(b, DB_CF_TIME, nkey, sizeof(nkey), "", 0);
	return 0;
}

static const struct migration time_keys_migration = {
	.marker = META_TIME_KEYS, .done = "signed", .cf = DB_CF_TIME, .fn = time_key_migrate,
};

static int put_json(struct db_batch *b, enum db_cf cf, const void *key, size_t klen, json_t *o);
static enum catalog_location get_location(const json_t *o);
static const char *get_str(const json_t *o, const char *key);

/* The location the objects column family gives the capture record o's
 * object: 0, -ENOENT (no object record: the record is left as it is, for
 * fsck to report), -EIO. */
static int record_object_location(struct db *db, const json_t *o, enum catalog_location *loc)
{
	_cleanup_free_ void *val = NULL;
	size_t vlen = 0;
	uint8_t sha[32];
	const char *hex = get_str(o, "sha256");
	if (!hex || sha256_parse(hex, sha) < 0)
		return -ENOENT;
	int r = db_get(db, DB_CF_OBJECTS, sha, 32, &val, &vlen);
	if (r < 0)
		return r == -ENOENT ? r : -EIO;
	json_t *obj = json_loadb(val, vlen, 0, NULL);
	r = json_is_object(obj) ? 0 : -EIO;
	if (r == 0)
		*loc = get_location(obj);
	json_decref(obj);
	return r;
}

/*
 * Capture records written before the object tier have no "location":
 * each gets its object's, from the objects column family (the truth;
 * an object record without one is local), so that the listing served
 * from the stored JSON shows it. A record that has one is left alone, so
 * the batches may be written as they fill.
 */
static int location_migrate(struct db *db, struct db_batch *b, const void *key, size_t klen,
			    const void *val, size_t vlen)
{
	json_t *o = json_loadb(val, vlen, 0, NULL);
	enum catalog_location loc = CATALOG_LOCAL;
	int r = json_is_object(o) && !json_object_get(o, "location")
			? record_object_location(db, o, &loc) : -ENOENT;
	if (r == 0 && json_object_set_new(o, "location", json_string(catalog_location_name(loc))) == 0)
		r = put_json(b, DB_CF_CAPTURES, key, klen, json_incref(o));
	else if (r == -ENOENT)
		r = 0;
	json_decref(o);
	return r;
}

static const struct migration locations_migration = {
	.marker = META_LOCATIONS, .done = "1", .cf = DB_CF_CAPTURES, .fn = location_migrate,
	.batched = true,
};

int catalog_new(struct catalog **out, struct db *db, struct errbuf *eb)
{
	struct catalog *cat = calloc(1, sizeof(*cat));
	uint64_t last;

	errbuf_clear(eb);
	if (!cat)
		return errbuf_set(eb, -ENOMEM, "out of memory");
	cat->db = db;
	if (!(cat->summary = summary_new())) {
		free(cat);
		return errbuf_set(eb, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&cat->lock, NULL);
	cat->next_id = load_counter(db, META_NEXT_ID);
	last = id_after_last(db);
	if (last > cat->next_id)
		cat->next_id = last;
	cat->next_objnum = load_counter(db, META_NEXT_OBJNUM);
	migrate_once(db, &time_keys_migration);
	migrate_once(db, &locations_migration);
	*out = cat;
	return 0;
}

struct catalog *catalog_free(struct catalog *cat)
{
	if (cat) {
		summary_free(cat->summary); /* joins its builder, which takes the lock */
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
	for (size_t i = 0; i < rec->nalso; i++) {
		free(rec->also[i].name);
		free(rec->also[i].source_path);
	}
	free(rec->also);
	for (size_t i = 0; i < rec->nmerge_tags; i++)
		free(rec->merge_tags[i]);
	free(rec->merge_tags);
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
static json_t *json_time(int64_t ns)
{
	char buf[QUERY_TIME_LEN];

	query_format_time(ns, buf, sizeof(buf));
	return json_string(buf);
}

static void set_u64(json_t *o, const char *key, uint64_t v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

json_t *catalog_json_text(const char *s)
{
	if (!s)
		return json_null();
	if (text_is_plain(s, 0))
		return json_string(s);
	char *esc = text_escape_dup(s, 0);
	json_t *j = esc ? json_string(esc) : NULL;
	free(esc);
	return j;
}

/* false only when out of memory: capture_record_to_json then gives no
 * record rather than one without the field. */
static bool set_str(json_t *o, const char *key, const char *s)
{
	return json_object_set_new(o, key, catalog_json_text(s)) == 0;
}

/* "<key>" as text (null when there is no such time), "<key>_ns", and
 * "<key>_epoch" as exact decimal seconds in a string: JSON readers that
 * use doubles (jq, JavaScript) cannot hold nanoseconds since 1970. */
static void set_time(json_t *o, const char *key, int64_t ns, bool known)
{
	char nskey[64], epoch[32];
	/* -0.5 s is "-0.500000000": the sign, then the magnitude. */
	uint64_t mag = ns < 0 ? 0 - (uint64_t)ns : (uint64_t)ns;

	snprintf(nskey, sizeof(nskey), "%s_ns", key);
	json_object_set_new(o, key, known ? json_time(ns) : json_null());
	json_object_set_new(o, nskey, json_integer(ns));
	snprintf(nskey, sizeof(nskey), "%s_epoch", key);
	snprintf(epoch, sizeof(epoch), "%s%" PRIu64 ".%09" PRIu64, ns < 0 ? "-" : "",
		 mag / 1000000000u, mag % 1000000000u);
	json_object_set_new(o, nskey, known ? json_string(epoch) : json_null());
}

/* A packet time, and "<key>_saturated": true when it stands for a time
 * beyond the range (capfile.h), which its text then is the end of. */
static void set_packet_time(json_t *o, const char *key, int64_t ns,
			    const struct capture_record *rec)
{
	char satkey[64];
	bool sat = rec->time_saturated > 0 && (ns == INT64_MIN || ns == INT64_MAX);

	set_time(o, key, ns, rec->packets > 0);
	snprintf(satkey, sizeof(satkey), "%s_saturated", key);
	json_object_set_new(o, satkey, json_boolean(sat));
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

/* NULL when out of memory. */
static json_t *json_tags(const struct capture_record *rec)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < rec->ntags; i++) {
		if (json_array_append_new(a, catalog_json_text(rec->tags[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* NULL when out of memory. */
static json_t *json_also(const struct capture_record *rec)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < rec->nalso; i++) {
		const struct capture_arrival *ar = &rec->also[i];
		json_t *o = json_object();
		bool ok = o && set_str(o, "name", ar->name) &&
			  set_str(o, "source_path", ar->source_path);
		if (ok)
			set_time(o, "import_time", (int64_t)ar->import_time_ns, ar->import_time_ns != 0);
		if (!ok || json_array_append_new(a, o) < 0) {
			if (ok)
				o = NULL; /* json_array_append_new took it */
			json_decref(o);
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static void json_add_times(json_t *o, const struct capture_record *rec)
{
	bool any = rec->packets > 0;
	/* unsigned: the span of two int64 times may exceed INT64_MAX */
	double dur = any ? (double)((uint64_t)rec->latest_ts_ns - (uint64_t)rec->earliest_ts_ns) / 1e9
			 : 0.0;

	set_packet_time(o, "first_packet_time", rec->first_ts_ns, rec);
	set_packet_time(o, "last_packet_time", rec->last_ts_ns, rec);
	set_packet_time(o, "earliest_packet_time", rec->earliest_ts_ns, rec);
	set_packet_time(o, "latest_packet_time", rec->latest_ts_ns, rec);
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
	if (rec->pcap_linktype_ext)
		set_u64(o, "pcap_linktype_ext", rec->pcap_linktype_ext);
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
	bool ok = set_str(o, "name", rec->name ? rec->name : "");
	ok &= set_str(o, "sha256", hex);
	set_u64(o, "file_size", rec->file_size);
	set_u64(o, "source_size", rec->source_size);
	json_add_format(o, rec);
	set_u64(o, "packets", rec->packets);
	set_u64(o, "data_bytes", rec->data_bytes);
	set_u64(o, "wire_bytes", rec->wire_bytes);
	json_add_times(o, rec);
	json_object_set_new(o, "time_ordered", json_boolean(rec->time_ordered));
	set_u64(o, "time_saturated", rec->time_saturated);
	set_u64(o, "oversized_records", rec->oversized);
	json_object_set_new(o, "truncated", json_boolean(rec->truncated));
	ok &= set_str(o, "error", rec->error);
	set_time(o, "import_time", (int64_t)rec->import_time_ns, rec->import_time_ns != 0);
	if (rec->last_arrival_ns)
		set_time(o, "last_arrival_time", (int64_t)rec->last_arrival_ns, true);
	ok &= set_str(o, "source_path", rec->source_path);
	ok &= set_str(o, "comment", rec->comment);
	json_t *tags = json_tags(rec);
	ok &= tags && json_object_set_new(o, "tags", tags) == 0;
	json_t *also = json_also(rec);
	ok &= also && json_object_set_new(o, "also_imported_as", also) == 0;
	set_u64(o, "index_bytes", rec->index_bytes);
	set_u64(o, "objnum", rec->objnum);
	ok &= json_object_set_new(o, "location",
				  json_string(catalog_location_name(rec->location))) == 0;
	if (!ok) {
		json_decref(o);
		return NULL;
	}
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

static const char *const location_names[] = {
	[CATALOG_LOCAL] = "local", [CATALOG_REMOTE] = "remote", [CATALOG_BOTH] = "both",
};

const char *catalog_location_name(enum catalog_location loc)
{
	return (unsigned)loc < 3 ? location_names[loc] : "local";
}

int catalog_location_parse(const char *s, enum catalog_location *loc)
{
	for (unsigned i = 0; s && i < 3; i++) {
		if (strcmp(s, location_names[i]) == 0) {
			*loc = (enum catalog_location)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* A location field; absent or unknown (records from before tiering): local. */
static enum catalog_location get_location(const json_t *o)
{
	enum catalog_location loc = CATALOG_LOCAL;

	catalog_location_parse(get_str(o, "location"), &loc);
	return loc;
}

static json_t *object_json(uint64_t size, uint64_t refs, uint64_t objnum,
			   enum catalog_location loc)
{
	return json_pack("{sIsIsIss}", "size", (json_int_t)size, "refs", (json_int_t)refs,
			 "objnum", (json_int_t)objnum, "location", catalog_location_name(loc));
}

/* The bytes of an optional text field (its escaped form read back);
 * false only when out of memory. Lenient: a record written before names
 * were escaped keeps a lone backslash as it was. */
static bool dup_str(const json_t *o, const char *key, char **out)
{
	const char *s = get_str(o, key);

	*out = NULL;
	return !s || text_unescape(s, false, out) == 0;
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
	rec->pcap_linktype_ext = (uint32_t)get_u64(o, "pcap_linktype_ext") & 0xffff0000u;
	rec->interfaces = (uint32_t)get_u64(o, "interfaces");
	rec->sections = (uint32_t)get_u64(o, "sections");
}

/* A packet time of a record; see the top of the file for older ones. */
static int64_t get_time(const json_t *o, const char *key, bool is_unsigned)
{
	int64_t ns = json_integer_value(json_object_get(o, key));
	return is_unsigned && ns < 0 ? INT64_MAX : ns;
}

static void parse_times(const json_t *o, struct capture_record *rec)
{
	const json_t *sat = json_object_get(o, "time_saturated");

	rec->first_ts_ns = get_time(o, "first_packet_time_ns", !sat);
	rec->last_ts_ns = get_time(o, "last_packet_time_ns", !sat);
	rec->earliest_ts_ns = get_time(o, "earliest_packet_time_ns", !sat);
	rec->latest_ts_ns = get_time(o, "latest_packet_time_ns", !sat);
	rec->time_ordered = json_is_true(json_object_get(o, "time_ordered"));
	rec->time_saturated = (uint64_t)json_integer_value(sat);
}

static void parse_counts(const json_t *o, struct capture_record *rec)
{
	rec->id = get_u64(o, "id");
	rec->file_size = get_u64(o, "file_size");
	rec->source_size = get_u64(o, "source_size");
	rec->packets = get_u64(o, "packets");
	rec->data_bytes = get_u64(o, "data_bytes");
	rec->wire_bytes = get_u64(o, "wire_bytes");
	parse_times(o, rec);
	rec->oversized = get_u64(o, "oversized_records");
	rec->truncated = json_is_true(json_object_get(o, "truncated"));
	rec->import_time_ns = get_u64(o, "import_time_ns");
	rec->last_arrival_ns = get_u64(o, "last_arrival_time_ns");
	rec->index_bytes = get_u64(o, "index_bytes");
	rec->objnum = get_u64(o, "objnum");
}

uint64_t catalog_record_arrived_ns(const struct capture_record *rec)
{
	return rec->last_arrival_ns > rec->import_time_ns ? rec->last_arrival_ns
							  : rec->import_time_ns;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* True when rec already knows the arrival (name, source_path). */
static bool knows_arrival(const struct capture_record *rec, const char *name, const char *source)
{
	if (same_str(rec->name, name) && same_str(rec->source_path, source))
		return true;
	for (size_t i = 0; i < rec->nalso; i++)
		if (same_str(rec->also[i].name, name) && same_str(rec->also[i].source_path, source))
			return true;
	return false;
}

/* Lists the arrival on rec unless known or the list is full: 1 when
 * added, 0 when not, -ENOMEM. */
static int add_arrival(struct capture_record *rec, const char *name, const char *source,
		       uint64_t import_time_ns)
{
	if (knows_arrival(rec, name, source) || rec->nalso >= CATALOG_ARRIVALS_MAX)
		return 0;
	struct capture_arrival *also = realloc(rec->also, (rec->nalso + 1) * sizeof(*also));
	if (!also)
		return -ENOMEM;
	rec->also = also;
	struct capture_arrival *ar = &also[rec->nalso];
	*ar = (struct capture_arrival){ .import_time_ns = import_time_ns };
	ar->name = name ? strdup(name) : NULL;
	ar->source_path = source ? strdup(source) : NULL;
	rec->nalso++; /* freed with rec even when a strdup failed */
	return (name && !ar->name) || (source && !ar->source_path) ? -ENOMEM : 1;
}

static int parse_also(const json_t *o, struct capture_record *rec)
{
	const json_t *also = json_object_get(o, "also_imported_as");
	size_t i;
	json_t *ar;
	int r = 0;

	json_array_foreach(also, i, ar) {
		char *name = NULL, *source = NULL;
		/* Stored escaped (textesc.h), held as the bytes they stand for. */
		if (r >= 0 && json_is_object(ar) && dup_str(ar, "name", &name) &&
		    dup_str(ar, "source_path", &source))
			r = add_arrival(rec, name, source, get_u64(ar, "import_time_ns"));
		else if (r >= 0 && json_is_object(ar))
			r = -ENOMEM;
		free(name);
		free(source);
	}
	return r < 0 ? r : 0;
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
		rec->location = get_location(o);
		if (!dup_str(o, "name", &rec->name) || !dup_str(o, "error", &rec->error) ||
		    !dup_str(o, "source_path", &rec->source_path) ||
		    !dup_str(o, "comment", &rec->comment))
			r = -ENOMEM;
		/* Never NULL: records that lost their name (stored before names
		 * were escaped, when a non-UTF-8 name was dropped) read as "". */
		if (r == 0 && !rec->name && !(rec->name = strdup("")))
			r = -ENOMEM;
	}
	json_array_foreach(tags, i, t) {
		if (r == 0 && json_is_string(t))
			r = capture_record_add_tag(rec, json_string_value(t));
	}
	if (r == 0)
		r = parse_also(o, rec);
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
	/* Eight to twenty digits may still be a (large) id; more cannot be a
	 * 64-bit one (64 of them are a sha256). */
	if (r == -ENOENT && digits && len <= 20)
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

int catalog_foreach_raw_desc(struct catalog *cat, uint64_t before_id, catalog_raw_fn fn,
			     void *opaque)
{
	struct db_iter *it = NULL;
	uint8_t start[8];
	if (before_id == 0)
		return 0;
	int r = db_iter_new_short(cat->db, DB_CF_CAPTURES, &it);
	if (r < 0)
		return r;
	be64_put(start, before_id == CATALOG_RAW_FROM_END ? before_id : before_id - 1);
	for (db_iter_seek_for_prev(it, start, sizeof(start)); r == 0 && db_iter_valid(it);
	     db_iter_prev(it)) {
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
		uint64_t size = get_u64(o, "size");
		enum catalog_location loc = get_location(o);
		t->objects++;
		t->object_bytes += size;
		if (loc != CATALOG_LOCAL) {
			t->remote_objects++;
			t->remote_bytes += size;
		}
		if (loc != CATALOG_REMOTE) {
			t->local_objects++;
			t->local_bytes += size;
		}
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

/* ---- the capture summary (catalog.h) ----
 *
 * An array of pointers in id order: commits append (ids only grow), a
 * removal moves the pointers after it (8 bytes each: ~0.1 ms at 100,000
 * captures). Each entry is one allocation: the fields, then the name and
 * tags as NUL-terminated strings. Writers hold the catalog lock and take
 * the write lock only to swap an entry in; readers take the read lock.
 * When an entry cannot be made (out of memory) the whole summary is
 * dropped and rebuilt by the next reader, never left stale. The build
 * reads a snapshot without the catalog lock; writes meanwhile are logged
 * and replayed on top of it (summary_install).
 */
struct summary_entry {
	struct capture_summary s;
	char text[];
};

/* A write that landed while the summary was being built: capture id's
 * new entry, or NULL for its removal. */
struct summary_change {
	uint64_t id;
	struct summary_entry *e;
};

struct summary {
	pthread_rwlock_t lock;
	struct summary_entry **v; /* under lock */
	size_t n, cap;
	bool built;
	/* While building (under lock): the writes since the build's snapshot,
	 * in order; log_failed when one could not be logged. */
	bool building, log_failed;
	struct summary_change *log;
	size_t nlog, logcap;
	pthread_mutex_t build_lock; /* one builder at a time */
	pthread_t warm;            /* catalog_summary_prepare's builder */
	bool warming;
	atomic_bool stop;          /* the catalog is being freed: give up */
};

static struct summary *summary_new(void)
{
	struct summary *sum = calloc(1, sizeof(*sum));
	if (sum) {
		pthread_rwlock_init(&sum->lock, NULL);
		pthread_mutex_init(&sum->build_lock, NULL);
	}
	return sum;
}

/* Empties sum; the caller holds the write lock or is its only user. */
static void summary_clear(struct summary *sum)
{
	for (size_t i = 0; i < sum->n; i++)
		free(sum->v[i]);
	free(sum->v);
	sum->v = NULL;
	sum->n = sum->cap = 0;
	sum->built = false;
}

static struct summary *summary_free(struct summary *sum)
{
	if (sum) {
		if (sum->warming) {
			atomic_store(&sum->stop, true);
			pthread_join(sum->warm, NULL);
		}
		summary_clear(sum);
		pthread_rwlock_destroy(&sum->lock);
		pthread_mutex_destroy(&sum->build_lock);
		free(sum);
	}
	return NULL;
}

static struct summary_entry *summary_entry_new(const struct capture_record *rec)
{
	const char *name = rec->name ? rec->name : "";
	size_t len = strlen(name) + 1;
	for (size_t i = 0; i < rec->ntags; i++)
		len += strlen(rec->tags[i]) + 1;
	struct summary_entry *e = malloc(sizeof(*e) + len);
	if (!e)
		return NULL;
	char *p = stpcpy(e->text, name) + 1;
	e->s = (struct capture_summary){ .id = rec->id, .name = e->text, .tags = p,
					 .ntags = rec->ntags, .file_size = rec->file_size,
					 .packets = rec->packets,
					 .import_time_ns = rec->import_time_ns,
					 .earliest_ts_ns = rec->earliest_ts_ns,
					 .latest_ts_ns = rec->latest_ts_ns };
	for (size_t i = 0; i < rec->ntags; i++)
		p = stpcpy(p, rec->tags[i]) + 1;
	return e;
}

bool capture_summary_has_tag(const struct capture_summary *s, const char *tag)
{
	const char *t = s->tags;
	for (size_t i = 0; i < s->ntags; i++, t += strlen(t) + 1)
		if (!strcmp(t, tag))
			return true;
	return false;
}

/* The first position whose id is not below id. */
static size_t summary_lower_bound(const struct summary *sum, uint64_t id)
{
	size_t lo = 0, hi = sum->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sum->v[mid]->s.id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Puts e in its place, replacing the entry of its id; write lock held. */
static int summary_put(struct summary *sum, struct summary_entry *e)
{
	size_t i = summary_lower_bound(sum, e->s.id);
	if (i < sum->n && sum->v[i]->s.id == e->s.id) {
		free(sum->v[i]);
		sum->v[i] = e;
		return 0;
	}
	if (sum->n == sum->cap) {
		size_t cap = sum->cap ? sum->cap * 2 : 1024;
		struct summary_entry **v = realloc(sum->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		sum->v = v;
		sum->cap = cap;
	}
	memmove(&sum->v[i + 1], &sum->v[i], (sum->n - i) * sizeof(*sum->v));
	sum->v[i] = e;
	sum->n++;
	return 0;
}

static void summary_remove(struct summary *sum, uint64_t id)
{
	size_t i = summary_lower_bound(sum, id);
	if (i < sum->n && sum->v[i]->s.id == id) {
		free(sum->v[i]);
		memmove(&sum->v[i], &sum->v[i + 1], (sum->n - i - 1) * sizeof(*sum->v));
		sum->n--;
	}
}

/* A write during a build, kept for the builder; write lock held. */
static void summary_log(struct summary *sum, uint64_t id, struct summary_entry *e)
{
	if (sum->nlog == sum->logcap) {
		size_t cap = sum->logcap ? sum->logcap * 2 : 64;
		struct summary_change *log = realloc(sum->log, cap * sizeof(*log));
		if (!log) {
			free(e);
			sum->log_failed = true;
			return;
		}
		sum->log = log;
		sum->logcap = cap;
	}
	sum->log[sum->nlog++] = (struct summary_change){ .id = id, .e = e };
}

/* Called under the catalog lock once rec's batch is written. */
static void summary_note(struct catalog *cat, const struct capture_record *rec)
{
	struct summary *sum = cat->summary;
	pthread_rwlock_wrlock(&sum->lock);
	if (sum->built || sum->building) {
		struct summary_entry *e = summary_entry_new(rec);
		if (sum->building && e)
			summary_log(sum, rec->id, e);
		else if (sum->building)
			sum->log_failed = true;
		else if (!e || summary_put(sum, e) < 0) {
			free(e);
			summary_clear(sum);
		}
	}
	pthread_rwlock_unlock(&sum->lock);
}

/* Called under the catalog lock once capture id's removal is written. */
static void summary_forget(struct catalog *cat, uint64_t id)
{
	struct summary *sum = cat->summary;
	pthread_rwlock_wrlock(&sum->lock);
	if (sum->building)
		summary_log(sum, id, NULL);
	else
		summary_remove(sum, id);
	pthread_rwlock_unlock(&sum->lock);
}

/* Adds the stored record k/v to into: 0, -EIO (not a record: left out,
 * as catalog_foreach leaves it out) or -ENOMEM. */
static int summary_add_stored(struct summary *into, const uint8_t *k, const char *v, size_t vlen)
{
	struct capture_record *rec = NULL;
	int r = record_from_json(v, vlen, &rec);
	if (r < 0)
		return r;
	rec->id = be64_get(k);
	struct summary_entry *e = summary_entry_new(rec);
	capture_record_free(rec);
	if (e && summary_put(into, e) == 0)
		return 0;
	free(e);
	return -ENOMEM;
}

/* Reads every record of the iterator's snapshot into a fresh summary. */
static int summary_build(struct db_iter *it, struct summary *into, const atomic_bool *stop)
{
	int r = 0;
	for (db_iter_seek_first(it); r == 0 && db_iter_valid(it); db_iter_next(it)) {
		if (atomic_load_explicit(stop, memory_order_relaxed))
			return -ECANCELED;
		size_t klen = 0, vlen = 0;
		const uint8_t *k = db_iter_key(it, &klen);
		const char *v = db_iter_value(it, &vlen);
		if (klen == 8 && summary_add_stored(into, k, v, vlen) == -ENOMEM)
			r = -ENOMEM;
	}
	return r;
}

/* The writes logged during the build, in order, on top of its snapshot;
 * write lock held. Ends the build. */
static int summary_replay(struct summary *sum, struct summary *fresh)
{
	int r = sum->log_failed ? -ENOMEM : 0;
	for (size_t i = 0; i < sum->nlog; i++) {
		struct summary_change *ch = &sum->log[i];
		if (r == 0 && ch->e)
			r = summary_put(fresh, ch->e);
		else if (r == 0)
			summary_remove(fresh, ch->id);
		if (r < 0)
			free(ch->e);
	}
	free(sum->log);
	sum->log = NULL;
	sum->nlog = sum->logcap = 0;
	sum->building = sum->log_failed = false;
	return r;
}

/* Builds the summary and installs it. The catalog lock is held only to
 * take the snapshot (the iterator's) and to install: imports go on while
 * the records are parsed (seconds at 100,000 captures), their writes
 * logged and replayed on top of the snapshot. */
static int summary_install(struct catalog *cat)
{
	struct summary *sum = cat->summary, fresh = { 0 };
	struct db_iter *it = NULL;
	int r = 0;
	pthread_mutex_lock(&sum->build_lock);
	pthread_rwlock_rdlock(&sum->lock);
	bool built = sum->built; /* by the builder this one waited for */
	pthread_rwlock_unlock(&sum->lock);
	if (built)
		goto out;
	pthread_mutex_lock(&cat->lock);
	r = db_iter_new(cat->db, DB_CF_CAPTURES, &it);
	pthread_rwlock_wrlock(&sum->lock);
	sum->building = r == 0;
	pthread_rwlock_unlock(&sum->lock);
	pthread_mutex_unlock(&cat->lock);
	if (r < 0)
		goto out;
	r = summary_build(it, &fresh, &sum->stop);
	db_iter_free(it);
	pthread_mutex_lock(&cat->lock);
	pthread_rwlock_wrlock(&sum->lock);
	int replayed = summary_replay(sum, &fresh);
	r = r < 0 ? r : replayed;
	summary_clear(sum);
	if (r == 0) {
		sum->v = fresh.v;
		sum->n = fresh.n;
		sum->cap = fresh.cap;
		sum->built = true;
	} else {
		summary_clear(&fresh);
	}
	pthread_rwlock_unlock(&sum->lock);
	pthread_mutex_unlock(&cat->lock);
out:
	pthread_mutex_unlock(&sum->build_lock);
	return r;
}

static void *summary_warm_main(void *opaque)
{
	/* A failure leaves it unbuilt: the first listing tries again. */
	summary_install(opaque);
	return NULL;
}

int catalog_summary_prepare(struct catalog *cat)
{
	struct summary *sum = cat->summary;
	if (sum->warming)
		return 0;
	int r = -pthread_create(&sum->warm, NULL, summary_warm_main, cat);
	sum->warming = r == 0;
	return r;
}

int catalog_foreach_summary(struct catalog *cat, uint64_t after_id, catalog_summary_fn fn,
			    void *opaque)
{
	struct summary *sum = cat->summary;
	int r = 0;
	/* Built once; again only if a writer ran out of memory and dropped it. */
	for (;;) {
		pthread_rwlock_rdlock(&sum->lock);
		if (sum->built)
			break;
		pthread_rwlock_unlock(&sum->lock);
		if ((r = summary_install(cat)) < 0)
			return r;
	}
	size_t i = summary_lower_bound(sum, after_id);
	if (i < sum->n && sum->v[i]->s.id == after_id)
		i++;
	for (; r == 0 && i < sum->n; i++)
		r = fn(opaque, &sum->v[i]->s);
	pthread_rwlock_unlock(&sum->lock);
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

/* The object record with one more reference (objnum kept if it existed);
 * rec gets its location. Called after the check hook found the local
 * file: an object that was remote only is now both. */
static int put_object(struct catalog *cat, struct capture_record *rec, struct db_batch *b)
{
	_cleanup_free_ void *val = NULL;
	size_t vlen = 0;
	uint64_t refs = 0, objnum = rec->objnum;
	enum catalog_location loc = CATALOG_LOCAL;
	json_t *old;

	if (db_get(cat->db, DB_CF_OBJECTS, rec->sha256, 32, &val, &vlen) == 0 &&
	    (old = json_loadb(val, vlen, 0, NULL)) != NULL) {
		refs = get_u64(old, "refs");
		if (json_object_get(old, "objnum"))
			objnum = get_u64(old, "objnum");
		loc = get_location(old);
		json_decref(old);
	}
	rec->location = loc == CATALOG_REMOTE ? CATALOG_BOTH : loc;
	return put_json(b, DB_CF_OBJECTS, rec->sha256, 32,
			object_json(rec->file_size, refs + 1, objnum, rec->location));
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
	time_key(key, rec->earliest_ts_ns, rec->id);
	db_batch_put(b, DB_CF_TIME, key, 16, "", 0);
	memcpy(key, rec->sha256, 32);
	be64_put(key + 32, rec->id);
	db_batch_put(b, DB_CF_BYSHA, key, 40, "", 0);
}

/* Adds everything rec needs to the batch; called under the lock. */
static int put_record(struct catalog *cat, struct capture_record *rec, struct db_batch *b)
{
	uint8_t key[8];
	int r = put_object(cat, rec, b);

	be64_put(key, rec->id);
	if (r == 0)
		r = put_json(b, DB_CF_CAPTURES, key, sizeof(key), capture_record_to_json(rec));
	if (r < 0)
		return r;
	put_index_keys(rec, b);
	be64_put(key, rec->id + 1);
	db_batch_put(b, DB_CF_META, META_NEXT_ID, strlen(META_NEXT_ID), key, 8);
	be64_put(key, cat->next_objnum);
	db_batch_put(b, DB_CF_META, META_NEXT_OBJNUM, strlen(META_NEXT_OBJNUM), key, 8);
	return 0;
}

/* rec's tags: valid, and no more than CATALOG_TAGS_MAX unless they were
 * more before (was: the count before, or 0) and are not more now, so a
 * capture tagged past it before the bound can still lose tags. */
static int check_tags(const struct capture_record *rec, size_t was, struct errbuf *eb)
{
	if (rec->ntags > CATALOG_TAGS_MAX && rec->ntags > was)
		return errbuf_set(eb, -EINVAL, "%zu tags: a capture holds at most %d",
				  rec->ntags, CATALOG_TAGS_MAX);
	for (size_t i = 0; i < rec->ntags; i++) {
		if (!catalog_tag_valid(rec->tags[i])) {
			char shown[160];
			return errbuf_set(eb, -EINVAL,
					  "invalid tag '%s' (1-128 of A-Z a-z 0-9 . _ : / @ + -)",
					  text_shown(rec->tags[i], shown, sizeof(shown)));
		}
	}
	return 0;
}

static int merge_locked(struct catalog *cat, uint64_t id, const struct capture_record *dup,
			struct errbuf *eb);
static int relocate_locked(struct catalog *cat, const uint8_t sha[32],
			   enum catalog_location expect, enum catalog_location to,
			   struct errbuf *eb);
static int object_get(struct catalog *cat, const uint8_t sha[32], uint64_t *size,
		      uint64_t *refs, uint64_t *objnum, enum catalog_location *loc);

static int commit_locked(struct catalog *cat, struct capture_record *rec, struct db_batch *batch,
			 uint64_t *existing_id, struct errbuf *eb)
{
	int r = catalog_find_sha(cat, rec->sha256, existing_id);

	if (rec->import_time_ns == 0)
		rec->import_time_ns = wall_ns();
	if (r != 0 && r != -ENOENT)
		return errbuf_set(eb, r, "cannot read the catalog: %s", strerror(-r));
	/* Also for a duplicate: its object may have been quarantined as
	 * corrupt since this import published (found it stored): a retry
	 * publishes these bytes again. But a duplicate whose object was moved
	 * to the object store meanwhile (its local file went on purpose, the
	 * bytes are confirmed there) merges as it is. */
	bool local = !cat->hooks.check || cat->hooks.check(cat->hooks.opaque, rec->sha256) == 0;
	enum catalog_location loc = CATALOG_LOCAL;
	if (!local && !(r == 0 && object_get(cat, rec->sha256, NULL, NULL, NULL, &loc) == 0 &&
			loc == CATALOG_REMOTE))
		return errbuf_set(eb, -EAGAIN, "the object was pruned or quarantined while "
				  "importing; retry");
	if (r == 0) {
		r = merge_locked(cat, *existing_id, rec, eb);
		if (r < 0)
			return r;
		/* The local file is back: a remote object is both now. Not
		 * written (-ESTALE: it was not remote only; another error: the
		 * merge is durable all the same), the next start or fsck finds
		 * the local file and says both. */
		struct errbuf ignored = { { 0 } };
		if (local)
			relocate_locked(cat, rec->sha256, CATALOG_REMOTE, CATALOG_BOTH, &ignored);
		return CATALOG_DUPLICATE;
	}
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
	summary_note(cat, rec);
	return 0;
}

int catalog_commit(struct catalog *cat, struct capture_record *rec, struct db_batch *batch,
		   uint64_t *existing_id, struct errbuf *eb)
{
	int r;

	errbuf_clear(eb);
	r = check_tags(rec, 0, eb);
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

bool catalog_releases_objects(struct catalog *cat)
{
	pthread_mutex_lock(&cat->lock);
	bool r = cat->hooks.release != NULL;
	pthread_mutex_unlock(&cat->lock);
	return r;
}

static int object_get(struct catalog *cat, const uint8_t sha[32], uint64_t *size,
		      uint64_t *refs, uint64_t *objnum, enum catalog_location *loc)
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
	if (loc)
		*loc = get_location(o);
	json_decref(o);
	return 0;
}

int catalog_object_get(struct catalog *cat, const uint8_t sha[32], uint64_t *size,
		       uint64_t *refs, uint64_t *objnum)
{
	return object_get(cat, sha, size, refs, objnum, NULL);
}

int catalog_object_location(struct catalog *cat, const uint8_t sha[32],
			    enum catalog_location *loc)
{
	return object_get(cat, sha, NULL, NULL, NULL, loc);
}

int catalog_foreach_object(struct catalog *cat, catalog_object_fn fn, void *opaque)
{
	struct db_iter *it = NULL;
	int r = db_iter_new(cat->db, DB_CF_OBJECTS, &it);

	if (r < 0)
		return r;
	for (db_iter_seek_first(it); r == 0 && db_iter_valid(it); db_iter_next(it)) {
		size_t klen = 0, vlen = 0;
		const uint8_t *k = db_iter_key(it, &klen);
		const char *v = db_iter_value(it, &vlen);
		json_t *o = klen == 32 ? json_loadb(v, vlen, 0, NULL) : NULL;
		if (json_is_object(o))
			r = fn(opaque, k, get_u64(o, "size"), get_u64(o, "refs"), get_location(o));
		json_decref(o);
	}
	db_iter_free(it);
	return r;
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
	time_key(key, rec->earliest_ts_ns, rec->id);
	db_batch_delete(b, DB_CF_TIME, key, 16);
	memcpy(key, rec->sha256, 32);
	be64_put(key + 32, rec->id);
	db_batch_delete(b, DB_CF_BYSHA, key, 40);
}

/* One reference less on rec's object; *last when it was the last, *loc
 * where it was. */
static int drop_object_ref(struct catalog *cat, const struct capture_record *rec,
			   struct db_batch *b, bool *last, enum catalog_location *loc)
{
	uint64_t size = 0, refs = 0, objnum = rec->objnum;
	int r = object_get(cat, rec->sha256, &size, &refs, &objnum, loc);

	*last = false;
	if (r == -ENOENT || (r == 0 && refs <= 1)) {
		db_batch_delete(b, DB_CF_OBJECTS, rec->sha256, 32);
		pindex_delete_object(cat->db, b, objnum);
		*last = true;
		return 0;
	}
	if (r < 0)
		return r;
	return put_json(b, DB_CF_OBJECTS, rec->sha256, 32, object_json(size, refs - 1, objnum, *loc));
}

/* A pending removal of a remote copy (catalog.h): "rmremote:" + sha256 in
 * meta, empty value. */
#define RMREMOTE_PREFIX "rmremote:"
#define RMREMOTE_PREFIX_LEN (sizeof(RMREMOTE_PREFIX) - 1)
#define RMREMOTE_KEY_LEN (RMREMOTE_PREFIX_LEN + 32)

static void rmremote_key(uint8_t key[RMREMOTE_KEY_LEN], const uint8_t sha[32])
{
	memcpy(key, RMREMOTE_PREFIX, RMREMOTE_PREFIX_LEN);
	memcpy(key + RMREMOTE_PREFIX_LEN, sha, 32);
}

/* Block digests (catalog.h): "blkdig:" + sha256 + be64(first block) in
 * meta, 16 bytes a block; chaining states: "blkchn:" + the same, 32 bytes
 * a block. */
#define BLKDIG_PREFIX "blkdig:"
#define BLKCHN_PREFIX "blkchn:"
#define BLKDIG_PREFIX_LEN (sizeof(BLKDIG_PREFIX) - 1)
#define BLKDIG_KEY_LEN (BLKDIG_PREFIX_LEN + 32 + 8)
static_assert(OBJCACHE_DIGEST == 16, "catalog.h gives digests of 16 bytes");
static_assert(BLOCKDIG_STATE == 32, "catalog.h gives states of 32 bytes");
static_assert(sizeof(BLKCHN_PREFIX) == sizeof(BLKDIG_PREFIX), "one key length");

static void blkdig_key(uint8_t key[BLKDIG_KEY_LEN], const char *prefix, const uint8_t sha[32],
		       uint64_t first)
{
	memcpy(key, prefix, BLKDIG_PREFIX_LEN);
	memcpy(key + BLKDIG_PREFIX_LEN, sha, 32);
	be64_put(key + BLKDIG_PREFIX_LEN + 32, first);
}

/* Whether sha has a record key of prefix: records are written from
 * block 0 up, so its first key tells (an error says yes). */
static bool blkdig_any(struct catalog *cat, const char *prefix, const uint8_t sha[32])
{
	uint8_t key[BLKDIG_KEY_LEN];
	_cleanup_free_ void *val = NULL;
	size_t vlen = 0;

	blkdig_key(key, prefix, sha, 0);
	return db_get(cat->db, DB_CF_META, key, sizeof(key), &val, &vlen) != -ENOENT;
}

bool catalog_block_records_any(struct catalog *cat, const uint8_t sha[32])
{
	return blkdig_any(cat, BLKDIG_PREFIX, sha) || blkdig_any(cat, BLKCHN_PREFIX, sha);
}

/* Deletes every digest and state key of sha, an object of size bytes,
 * into b: one point delete per key (a range delete per removal slows
 * RocksDB's reads down as they pile up), and none for an object that has
 * no records (one never tiered), which most removals are. */
static void blkdig_delete(struct catalog *cat, struct db_batch *b, const uint8_t sha[32],
			  uint64_t size)
{
	uint64_t blocks = size / OBJCACHE_BLOCK + (size % OBJCACHE_BLOCK != 0);
	uint8_t key[BLKDIG_KEY_LEN];
	bool digests = blkdig_any(cat, BLKDIG_PREFIX, sha);
	bool states = blkdig_any(cat, BLKCHN_PREFIX, sha);

	for (uint64_t first = 0; digests && first < blocks; first += CATALOG_DIGESTS_PER_KEY) {
		blkdig_key(key, BLKDIG_PREFIX, sha, first);
		db_batch_delete(b, DB_CF_META, key, sizeof(key));
	}
	for (uint64_t first = 0; states && first < blocks; first += CATALOG_STATES_PER_KEY) {
		blkdig_key(key, BLKCHN_PREFIX, sha, first);
		db_batch_delete(b, DB_CF_META, key, sizeof(key));
	}
}

static int blkdig_put(struct catalog *cat, const char *prefix, const uint8_t sha[32],
		      uint64_t first_block, const uint8_t *records, size_t n, size_t each,
		      size_t per_key, struct errbuf *eb)
{
	uint8_t key[BLKDIG_KEY_LEN];
	struct db_batch *b = NULL;

	if (first_block % per_key || n == 0 || n > per_key)
		return errbuf_set(eb, -EINVAL, "block records from block %" PRIu64 ": %zu of them",
				  first_block, n);
	int r = db_batch_new(&b);
	if (r < 0)
		return errbuf_set(eb, r, "block records: %s", strerror(-r));
	blkdig_key(key, prefix, sha, first_block);
	db_batch_put(b, DB_CF_META, key, sizeof(key), records, n * each);
	r = db_write(cat->db, b, false, eb);
	db_batch_free(b);
	return r;
}

/* Records [block, block + n) into out, from the keys that hold them: 0,
 * -ENOENT when one is missing, or the database's error. */
static int blkdig_get(struct catalog *cat, const char *prefix, const uint8_t sha[32],
		      uint64_t block, size_t n, uint8_t *out, size_t each, size_t per_key)
{
	while (n > 0) {
		uint64_t first = block - block % per_key;
		size_t take = first + per_key - block < n ? (size_t)(first + per_key - block) : n;
		uint8_t key[BLKDIG_KEY_LEN];
		_cleanup_free_ uint8_t *val = NULL;
		size_t vlen = 0;

		blkdig_key(key, prefix, sha, first);
		int r = db_get(cat->db, DB_CF_META, key, sizeof(key), (void **)&val, &vlen);
		if (r < 0)
			return r;
		if ((block - first + take) * each > vlen)
			return -ENOENT;
		memcpy(out, val + (block - first) * each, take * each);
		out += take * each;
		block += take;
		n -= take;
	}
	return 0;
}

int catalog_block_digests_put(struct catalog *cat, const uint8_t sha[32], uint64_t first_block,
			      const uint8_t *digests, size_t n, struct errbuf *eb)
{
	return blkdig_put(cat, BLKDIG_PREFIX, sha, first_block, digests, n, OBJCACHE_DIGEST,
			  CATALOG_DIGESTS_PER_KEY, eb);
}

int catalog_block_states_put(struct catalog *cat, const uint8_t sha[32], uint64_t first_block,
			     const uint8_t *states, size_t n, struct errbuf *eb)
{
	return blkdig_put(cat, BLKCHN_PREFIX, sha, first_block, states, n, BLOCKDIG_STATE,
			  CATALOG_STATES_PER_KEY, eb);
}

int catalog_block_digests_drop(struct catalog *cat, const uint8_t sha[32], uint64_t size,
			       struct errbuf *eb)
{
	struct db_batch *b = NULL;
	int r = db_batch_new(&b);

	if (r < 0)
		return errbuf_set(eb, r, "block digests: %s", strerror(-r));
	blkdig_delete(cat, b, sha, size);
	r = db_write(cat->db, b, false, eb);
	db_batch_free(b);
	return r;
}

int catalog_block_digest(struct catalog *cat, const uint8_t sha[32], uint64_t block,
			 uint8_t digest[16])
{
	return blkdig_get(cat, BLKDIG_PREFIX, sha, block, 1, digest, OBJCACHE_DIGEST,
			  CATALOG_DIGESTS_PER_KEY);
}

int catalog_block_states(struct catalog *cat, const uint8_t sha[32], uint64_t block, size_t n,
			 uint8_t *states)
{
	return blkdig_get(cat, BLKCHN_PREFIX, sha, block, n, states, BLOCKDIG_STATE,
			  CATALOG_STATES_PER_KEY);
}

int catalog_vault_id(struct catalog *cat, char hex[CATALOG_VAULT_ID_HEX], struct errbuf *eb)
{
	uint8_t id[16] = { 0 };
	_cleanup_free_ void *val = NULL;
	size_t vlen = 0;

	pthread_mutex_lock(&cat->lock);
	int r = db_get(cat->db, DB_CF_META, META_VAULT_ID, strlen(META_VAULT_ID), &val, &vlen);
	if (r == 0 && vlen == sizeof(id)) {
		memcpy(id, val, sizeof(id));
	} else if (r == 0 || r == -ENOENT) {
		struct db_batch *b = NULL;
		if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id))
			r = errbuf_set(eb, -EIO, "cannot draw the vault's id: %s", strerror(errno));
		else if ((r = db_batch_new(&b)) == 0) {
			db_batch_put(b, DB_CF_META, META_VAULT_ID, strlen(META_VAULT_ID), id,
				     sizeof(id));
			r = db_write(cat->db, b, true, eb);
			db_batch_free(b);
		}
	}
	pthread_mutex_unlock(&cat->lock);
	if (r < 0)
		return eb->msg[0] ? r : errbuf_set(eb, r, "vault id: %s", strerror(-r));
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
	return 0;
}

int catalog_foreach_remote_removal(struct catalog *cat, catalog_sha_fn fn, void *opaque)
{
	struct db_iter *it = NULL;
	int r = db_iter_new(cat->db, DB_CF_META, &it);

	if (r < 0)
		return r;
	for (db_iter_seek(it, RMREMOTE_PREFIX, RMREMOTE_PREFIX_LEN); r == 0 && db_iter_valid(it);
	     db_iter_next(it)) {
		size_t klen = 0;
		const uint8_t *k = db_iter_key(it, &klen);
		if (klen < RMREMOTE_PREFIX_LEN || memcmp(k, RMREMOTE_PREFIX, RMREMOTE_PREFIX_LEN))
			break;
		if (klen == RMREMOTE_KEY_LEN)
			r = fn(opaque, k + RMREMOTE_PREFIX_LEN);
	}
	db_iter_free(it);
	return r;
}

int catalog_remote_removed(struct catalog *cat, const uint8_t sha[32], bool kept,
			   struct errbuf *eb)
{
	enum catalog_location loc = CATALOG_LOCAL;
	struct db_batch *b = NULL;
	uint8_t key[RMREMOTE_KEY_LEN];
	int r;

	errbuf_clear(eb);
	pthread_mutex_lock(&cat->lock);
	r = object_get(cat, sha, NULL, NULL, NULL, &loc);
	bool remote = r == 0 && loc != CATALOG_LOCAL;
	/* Else its last capture went again since the decision: the pending
	 * removal written then stays. */
	if ((r == 0 || r == -ENOENT) && remote == kept && (r = db_batch_new(&b)) == 0) {
		rmremote_key(key, sha);
		db_batch_delete(b, DB_CF_META, key, sizeof(key));
		/* Not synced: losing it only repeats a removal, a no-op. */
		r = db_write(cat->db, b, false, eb);
		db_batch_free(b);
	} else if (r == -ENOENT) {
		r = 0;
	}
	pthread_mutex_unlock(&cat->lock);
	return r < 0 && !eb->msg[0] ? errbuf_set(eb, r, "%s", strerror(-r)) : r;
}

static int remove_locked(struct catalog *cat, uint64_t id, catalog_check_fn check, void *opaque,
			 bool *unlink_object, uint8_t sha[32], struct errbuf *eb)
{
	struct capture_record *rec = NULL;
	struct db_batch *b = NULL;
	uint8_t key[8];
	bool last = false;
	enum catalog_location loc = CATALOG_LOCAL;
	int r = catalog_get(cat, id, &rec);

	if (r < 0)
		return errbuf_set(eb, r, "capture %" PRIu64 ": %s", id,
				  r == -ENOENT ? "no such capture" : strerror(-r));
	if (check && (r = check(opaque, rec, eb)) != 0) {
		capture_record_free(rec);
		return r < 0 ? r : CATALOG_KEPT;
	}
	r = db_batch_new(&b);
	if (r == 0) {
		be64_put(key, id);
		db_batch_delete(b, DB_CF_CAPTURES, key, sizeof(key));
		delete_index_keys(rec, b);
		annot_batch_delete_capture(b, id);
		r = drop_object_ref(cat, rec, b, &last, &loc);
	}
	if (r == 0 && last && loc != CATALOG_LOCAL) {
		uint8_t rm[RMREMOTE_KEY_LEN];
		rmremote_key(rm, rec->sha256);
		db_batch_put(b, DB_CF_META, rm, sizeof(rm), "", 0);
	}
	if (r == 0 && last)
		blkdig_delete(cat, b, rec->sha256, rec->file_size);
	if (r == 0)
		r = db_write(cat->db, b, true, eb);
	else
		errbuf_set(eb, r, "capture %" PRIu64 ": %s", id, strerror(-r));
	if (r == 0)
		summary_forget(cat, id);
	if (r == 0 && last) {
		memcpy(sha, rec->sha256, 32);
		*unlink_object = true;
		if (cat->hooks.release && loc != CATALOG_REMOTE)
			cat->hooks.release(cat->hooks.opaque, rec->sha256);
		if (cat->hooks.release_remote && loc != CATALOG_LOCAL)
			cat->hooks.release_remote(cat->hooks.opaque, rec->sha256);
	}
	db_batch_free(b);
	capture_record_free(rec);
	return r;
}

int catalog_remove_if(struct catalog *cat, uint64_t id, catalog_check_fn check, void *opaque,
		      bool *unlink_object, uint8_t sha[32], struct errbuf *eb)
{
	errbuf_clear(eb);
	*unlink_object = false;
	pthread_mutex_lock(&cat->lock);
	int r = remove_locked(cat, id, check, opaque, unlink_object, sha, eb);
	pthread_mutex_unlock(&cat->lock);
	return r;
}

int catalog_remove(struct catalog *cat, uint64_t id, bool *unlink_object, uint8_t sha[32],
		   struct errbuf *eb)
{
	return catalog_remove_if(cat, id, NULL, NULL, unlink_object, sha, eb);
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
	if (r == 0)
		summary_note(cat, rec);
	db_batch_free(b);
	return r;
}

/* dup's tags and arrival added to capture id, and its time as the last
 * arrival: 1 when the record changed, 0 when it knew them all, -ENOMEM. */
static int merge_into(struct capture_record *rec, const struct capture_record *dup)
{
	size_t ntags = rec->ntags;
	int r = 0;
	bool later = dup->import_time_ns > catalog_record_arrived_ns(rec);

	if (later)
		rec->last_arrival_ns = dup->import_time_ns;

	char *const *tags = dup->has_merge_tags ? dup->merge_tags : dup->tags;
	size_t n = dup->has_merge_tags ? dup->nmerge_tags : dup->ntags;

	for (size_t i = 0; r == 0 && i < n && rec->ntags < CATALOG_TAGS_MAX; i++)
		r = capture_record_add_tag(rec, tags[i]);
	if (r == 0)
		r = add_arrival(rec, dup->name, dup->source_path, dup->import_time_ns);
	return r < 0 ? r : r > 0 || rec->ntags != ntags || later;
}

/* Under the lock: the duplicate dup lands in the record of capture id,
 * synced, before the importer may touch dup's source. */
static int merge_locked(struct catalog *cat, uint64_t id, const struct capture_record *dup,
			struct errbuf *eb)
{
	struct capture_record *old = NULL, *rec = NULL;
	int r = catalog_get(cat, id, &old);

	if (r == 0)
		r = catalog_get(cat, id, &rec);
	if (r == 0) {
		r = merge_into(rec, dup);
		if (r > 0)
			r = rewrite_locked(cat, old, rec, eb);
	}
	if (r < 0 && eb && !eb->msg[0])
		errbuf_set(eb, r, "adding the duplicate to capture %" PRIu64 ": %s", id,
			   strerror(-r));
	capture_record_free(old);
	capture_record_free(rec);
	return r < 0 ? r : 0;
}

enum update_field { UPDATE_TAGS, UPDATE_EDIT_TAGS, UPDATE_NAME, UPDATE_COMMENT };

struct update {
	enum update_field field;
	char *const *tags; /* UPDATE_TAGS: the new list; UPDATE_EDIT_TAGS: added */
	size_t ntags;
	char *const *del;  /* UPDATE_EDIT_TAGS: removed */
	size_t ndel;
	const char *text;
};

static void remove_tag(struct capture_record *rec, const char *tag)
{
	for (size_t k = 0; k < rec->ntags; k++) {
		if (strcmp(rec->tags[k], tag) == 0) {
			free(rec->tags[k]);
			memmove(&rec->tags[k], &rec->tags[k + 1], (rec->ntags - k - 1) * sizeof(char *));
			rec->ntags--;
			return;
		}
	}
}

static int apply_update(struct capture_record *rec, const struct update *u)
{
	char **slot = u->field == UPDATE_NAME ? &rec->name : &rec->comment;

	if (u->field == UPDATE_NAME || u->field == UPDATE_COMMENT) {
		free(*slot);
		*slot = u->text ? strdup(u->text) : NULL;
		return u->text && !*slot ? -ENOMEM : 0;
	}
	if (u->field == UPDATE_TAGS) {
		for (size_t i = 0; i < rec->ntags; i++)
			free(rec->tags[i]);
		free(rec->tags);
		rec->tags = NULL;
		rec->ntags = 0;
	}
	for (size_t i = 0; i < u->ndel; i++)
		remove_tag(rec, u->del[i]);
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
		r = check_tags(rec, old->ntags, eb);
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

int catalog_edit_tags(struct catalog *cat, uint64_t id, char *const *add, size_t nadd,
		      char *const *del, size_t ndel, struct errbuf *eb)
{
	struct update u = { .field = UPDATE_EDIT_TAGS, .tags = add, .ntags = nadd, .del = del,
			    .ndel = ndel };
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
	}
	pthread_mutex_lock(&cat->lock);
	if (refs > 0) {
		enum catalog_location loc = CATALOG_LOCAL;
		object_get(cat, sha, NULL, NULL, NULL, &loc);
		r = put_json(b, DB_CF_OBJECTS, sha, 32, object_json(size, refs, objnum, loc));
	}
	if (r == 0)
		r = db_write(cat->db, b, true, eb);
	pthread_mutex_unlock(&cat->lock);
	db_batch_free(b);
	return r;
}

/* ---- where objects are ---- */

/* Each capture record of sha, with location loc, into b. */
static int relocate_captures(struct catalog *cat, const uint8_t sha[32],
			     enum catalog_location loc, struct db_batch *b)
{
	struct db_iter *it = NULL;
	int r = db_iter_new(cat->db, DB_CF_BYSHA, &it);

	if (r < 0)
		return r;
	for (db_iter_seek(it, sha, 32); r == 0 && db_iter_valid(it); db_iter_next(it)) {
		size_t klen = 0;
		const uint8_t *k = db_iter_key(it, &klen);
		struct capture_record *rec = NULL;
		if (klen != 40 || memcmp(k, sha, 32) != 0)
			break;
		if (catalog_get(cat, be64_get(k + 32), &rec) < 0)
			continue; /* a stale bysha key: fsck's business */
		rec->location = loc;
		r = put_json(b, DB_CF_CAPTURES, k + 32, 8, capture_record_to_json(rec));
		capture_record_free(rec);
	}
	db_iter_free(it);
	return r;
}

static int relocate_locked(struct catalog *cat, const uint8_t sha[32],
			   enum catalog_location expect, enum catalog_location to,
			   struct errbuf *eb)
{
	uint64_t size = 0, refs = 0, objnum = 0;
	enum catalog_location loc = CATALOG_LOCAL;
	struct db_batch *b = NULL;
	char hex[65];
	int r = object_get(cat, sha, &size, &refs, &objnum, &loc);

	sha256_hex(sha, hex);
	if (r < 0)
		return errbuf_set(eb, r, "object %s: %s", hex,
				  r == -ENOENT ? "no longer in the catalog" : strerror(-r));
	if (loc != expect)
		return errbuf_set(eb, -ESTALE, "object %s is %s, not %s", hex,
				  catalog_location_name(loc), catalog_location_name(expect));
	if (loc == to)
		return 0;
	r = db_batch_new(&b);
	if (r == 0)
		r = put_json(b, DB_CF_OBJECTS, sha, 32, object_json(size, refs, objnum, to));
	if (r == 0)
		r = relocate_captures(cat, sha, to, b);
	if (r == 0)
		r = db_write(cat->db, b, true, eb);
	else
		errbuf_set(eb, r, "object %s: %s", hex, strerror(-r));
	db_batch_free(b);
	/* Synced: the remote copy is what the catalog names now. */
	if (r == 0 && to == CATALOG_REMOTE && loc != CATALOG_REMOTE && cat->hooks.release)
		cat->hooks.release(cat->hooks.opaque, sha);
	return r;
}

int catalog_object_relocate(struct catalog *cat, const uint8_t sha[32],
			    enum catalog_location expect, enum catalog_location to,
			    struct errbuf *eb)
{
	errbuf_clear(eb);
	pthread_mutex_lock(&cat->lock);
	int r = relocate_locked(cat, sha, expect, to, eb);
	pthread_mutex_unlock(&cat->lock);
	return r;
}
