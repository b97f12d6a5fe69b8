/*
 * vstats.c - a store's statistics as JSON (see vstats.h): the catalog's
 * totals, the file system's space, the index's size on disk, and one
 * pass over the catalog for per-tag totals and the time span.
 */
#include "vstats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "db.h"
#include "query.h"
#include "store.h"
#include "vault.h"

/* What a pass over the captures adds to catalog_totals. */
struct stats_extra {
	json_t *tags;               /* tag -> {captures, bytes, packets} */
	uint64_t oldest_id, oldest_ns, newest_id, newest_ns;
	int64_t first_packet_ns, last_packet_ns;
	bool any, any_packets;
};

/* "2024-05-01 14:00:00": query_format_time to the second. */
static void format_time(int64_t ns, char *buf, size_t len)
{
	char t[QUERY_TIME_LEN];
	query_format_time(ns, t, sizeof(t));
	t[strcspn(t, ".")] = '\0';
	t[strcspn(t, "T")] = ' ';
	snprintf(buf, len, "%.19s", t); /* years 1677..2262: always 19 */
}

static void add_u64(json_t *o, const char *key, uint64_t v)
{
	json_int_t cur = json_integer_value(json_object_get(o, key));
	json_object_set_new(o, key, json_integer(cur + (json_int_t)v));
}

static int stats_visit(void *opaque, const struct capture_record *rec)
{
	struct stats_extra *x = opaque;
	for (size_t i = 0; i < rec->ntags; i++) {
		json_t *t = json_object_get(x->tags, rec->tags[i]);
		if (!t) {
			t = json_object();
			json_object_set_new(x->tags, rec->tags[i], t);
		}
		add_u64(t, "captures", 1);
		add_u64(t, "bytes", rec->file_size);
		add_u64(t, "packets", rec->packets);
	}
	if (!x->any || rec->import_time_ns < x->oldest_ns)
		x->oldest_id = rec->id, x->oldest_ns = rec->import_time_ns;
	if (!x->any || rec->import_time_ns >= x->newest_ns)
		x->newest_id = rec->id, x->newest_ns = rec->import_time_ns;
	x->any = true;
	if (rec->packets && (!x->any_packets || rec->earliest_ts_ns < x->first_packet_ns))
		x->first_packet_ns = rec->earliest_ts_ns;
	if (rec->packets && (!x->any_packets || rec->latest_ts_ns > x->last_packet_ns))
		x->last_packet_ns = rec->latest_ts_ns;
	x->any_packets |= rec->packets > 0;
	return 0;
}

static json_t *stats_capture(bool any, uint64_t id, uint64_t ns)
{
	char when[32];
	if (!any)
		return json_null();
	format_time((int64_t)ns, when, sizeof(when));
	return json_pack("{sIss}", "id", (json_int_t)id, "import_time", when);
}

static int stats_add_extra(struct vault *v, json_t *obj)
{
	struct stats_extra x = { .tags = json_object() };
	int err = catalog_foreach(vault_catalog(v), NULL, stats_visit, &x);
	static const enum db_cf index_cfs[] = { DB_CF_FLOWS, DB_CF_POSTINGS, DB_CF_TINDEX,
						DB_CF_CONTEXTS, DB_CF_OBJTERMS };
	uint64_t db_bytes = 0;
	char when[32];
	for (size_t i = 0; i < sizeof(index_cfs) / sizeof(index_cfs[0]); i++)
		db_bytes += db_cf_size(vault_db(v), index_cfs[i]);
	json_object_set_new(obj, "index_sst_bytes", json_integer((json_int_t)db_bytes));
	json_object_set_new(obj, "oldest_capture", stats_capture(x.any, x.oldest_id, x.oldest_ns));
	json_object_set_new(obj, "newest_capture", stats_capture(x.any, x.newest_id, x.newest_ns));
	format_time(x.first_packet_ns, when, sizeof(when));
	json_object_set_new(obj, "first_packet", x.any_packets ? json_string(when) : json_null());
	format_time(x.last_packet_ns, when, sizeof(when));
	json_object_set_new(obj, "last_packet", x.any_packets ? json_string(when) : json_null());
	json_object_set_new(obj, "tags", x.tags);
	return err;
}

int vault_stats_json(struct vault *v, json_t **out)
{
	struct catalog_totals t = { 0 };
	uint64_t free_bytes = 0, total_bytes = 0;
	*out = NULL;
	int err = catalog_totals(vault_catalog(v), &t);
	if (!err)
		err = store_space(vault_store(v), &free_bytes, &total_bytes);
	if (err)
		return err;
	json_t *obj = json_pack("{sIsIsIsIsIsIsI}", "captures", (json_int_t)t.captures, "objects",
				(json_int_t)t.objects, "object_bytes", (json_int_t)t.object_bytes,
				"packets", (json_int_t)t.packets, "index_bytes",
				(json_int_t)t.index_bytes, "free_bytes", (json_int_t)free_bytes,
				"fs_total_bytes", (json_int_t)total_bytes);
	if (!obj)
		return -ENOMEM;
	err = stats_add_extra(v, obj);
	if (err < 0) {
		json_decref(obj);
		return err;
	}
	*out = obj;
	return 0;
}
