/*
 * api_stats.c - GET /v1/stats (JSON) and GET /metrics (Prometheus text
 * exposition format 0.0.4): the catalog's totals, the store's free space,
 * the index's memory (block cache, memtables), the daemon's import
 * counters and scrub state when it shares them, and this server's request, upload and
 * query counters with a query latency histogram.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "api_priv.h"
#include "catalog.h"
#include "db.h"
#include "store.h"
#include "vault.h"
#include "vstats.h"

struct snapshot {
	struct catalog_totals t;
	uint64_t free_bytes, fs_bytes;
	struct db_memory mem;
	bool have_imports;
	struct api_import_stats imp;
	bool have_scrub;
	struct api_scrub_stats scrub;
};

static int take_snapshot(struct api_server *api, struct snapshot *s)
{
	int err = catalog_totals(vault_catalog(api->vault), &s->t);
	if (!err)
		err = store_space(vault_store(api->vault), &s->free_bytes, &s->fs_bytes);
	db_memory(vault_db(api->vault), &s->mem);
	if (!err && api->hooks.import_stats) {
		api->hooks.import_stats(api->hooks.opaque, &s->imp);
		s->have_imports = true;
	}
	if (!err && api->hooks.scrub_stats) {
		api->hooks.scrub_stats(api->hooks.opaque, &s->scrub);
		s->have_scrub = true;
	}
	return err;
}

/* The store's statistics as `capvault stats` prints them, then the
 * daemon's import counters. */
void api_stats(struct api_call *c)
{
	struct snapshot s = { 0 };
	json_t *o = NULL;
	int err = take_snapshot(c->api, &s);
	if (!err)
		err = vault_stats_json(c->api->vault, &o);
	if (err)
		return api_error_errno(c, err, "stats", NULL);
	if (s.have_imports)
		json_object_set_new(
			o, "imports",
			json_pack("{sIsIsIsIsIsIsIsI}", "folders", (json_int_t)s.imp.folders, "seen",
				  (json_int_t)s.imp.seen, "imported", (json_int_t)s.imp.imported,
				  "duplicates", (json_int_t)s.imp.duplicates, "failed",
				  (json_int_t)s.imp.failed, "bytes", (json_int_t)s.imp.bytes,
				  "packets", (json_int_t)s.imp.packets, "queue_length",
				  (json_int_t)s.imp.queue_length));
	api_json(c, 200, o);
}

static void metric(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	fprintf(f, "# HELP capvault_%s %s\n# TYPE capvault_%s %s\ncapvault_%s %" PRIu64 "\n", name,
		help, name, type, name, v);
}

static void store_metrics(FILE *f, const struct snapshot *s)
{
	metric(f, "captures", "gauge", "Captures in the catalog.", s->t.captures);
	metric(f, "objects", "gauge", "Distinct stored capture files.", s->t.objects);
	metric(f, "store_bytes", "gauge", "Bytes of stored capture files.", s->t.object_bytes);
	metric(f, "packets", "gauge", "Packets in all captures.", s->t.packets);
	metric(f, "index_bytes", "gauge", "Bytes of packet index written.", s->t.index_bytes);
	metric(f, "free_bytes", "gauge", "Free bytes on the store's file system.", s->free_bytes);
	metric(f, "index_block_cache_bytes", "gauge", "Bytes in the index's block cache.",
	       s->mem.block_cache_bytes);
	metric(f, "index_block_cache_capacity_bytes", "gauge", "Capacity of the index's block cache.",
	       s->mem.block_cache_capacity);
	metric(f, "index_memtable_bytes", "gauge", "Bytes in the index's memtables (not flushed).",
	       s->mem.memtable_bytes);
	/* A leak raises the bytes in use; fragmentation only the heap. */
	struct mallinfo2 mi = mallinfo2();
	metric(f, "malloc_in_use_bytes", "gauge", "Bytes the process has allocated and not freed.",
	       mi.uordblks + mi.hblkhd);
	metric(f, "malloc_heap_bytes", "gauge", "Bytes malloc holds from the system (in use or not).",
	       mi.arena + mi.hblkhd);
	if (!s->have_imports)
		return;
	metric(f, "import_files_seen_total", "counter", "Files the watcher reported.", s->imp.seen);
	metric(f, "imports_total", "counter", "Files imported from folders.", s->imp.imported);
	metric(f, "import_duplicates_total", "counter", "Imported files already stored.",
	       s->imp.duplicates);
	metric(f, "import_failures_total", "counter", "Files that failed to import.", s->imp.failed);
	metric(f, "import_bytes_total", "counter", "Bytes imported from folders.", s->imp.bytes);
	metric(f, "import_packets_total", "counter", "Packets imported from folders.",
	       s->imp.packets);
	metric(f, "import_queue_length", "gauge", "Files waiting to be imported.",
	       s->imp.queue_length);
	metric(f, "import_retries_total", "counter",
	       "Transient import failures, each followed by a retry.", s->imp.retried);
	metric(f, "import_retrying", "gauge", "Files waiting to be retried.", s->imp.retrying);
}

static void scrub_metrics(FILE *f, const struct snapshot *s)
{
	if (!s->have_scrub)
		return;
	metric(f, "scrub_objects_total", "counter", "Objects the scrub re-hashed.",
	       s->scrub.objects_total);
	metric(f, "scrub_bytes_total", "counter", "Bytes the scrub re-hashed.",
	       s->scrub.bytes_total);
	metric(f, "scrub_corrupt_objects", "gauge",
	       "Objects the last scrub found not hashing to their names.", s->scrub.corrupt);
	metric(f, "scrub_quarantined_total", "counter", "Corrupt objects moved to quarantine/.",
	       s->scrub.quarantined_total);
	metric(f, "scrub_last_run_timestamp_seconds", "gauge",
	       "End of the last complete scrub (Unix time; 0: none yet).",
	       s->scrub.last_end_ns / 1000000000u);
}

static void server_metrics(FILE *f, struct api_metrics *m)
{
	metric(f, "http_requests_total", "counter", "HTTP requests.", m->requests);
	metric(f, "uploads_total", "counter", "Uploads stored.", m->uploads);
	metric(f, "upload_bytes_total", "counter", "Bytes received by uploads.", m->upload_bytes);
	metric(f, "upload_failures_total", "counter", "Uploads refused or failed.",
	       m->upload_failures);
	metric(f, "downloads_total", "counter", "Capture downloads.", m->downloads);
	metric(f, "queries_total", "counter", "Packet queries run.", m->queries);
	metric(f, "query_failures_total", "counter", "Packet queries that failed.",
	       m->query_failures);
	metric(f, "query_packets_total", "counter", "Packets returned by queries.",
	       m->query_packets);
	fprintf(f, "# HELP capvault_query_duration_seconds Packet query latency.\n"
		   "# TYPE capvault_query_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (size_t i = 0; i <= API_LAT_BUCKETS; i++) {
		cum += m->query_lat[i];
		if (i < API_LAT_BUCKETS)
			fprintf(f, "capvault_query_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
				api_latency_bounds[i], cum);
		else
			fprintf(f, "capvault_query_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
				cum);
	}
	fprintf(f, "capvault_query_duration_seconds_sum %.6f\ncapvault_query_duration_seconds_count %"
		   PRIu64 "\n", (double)m->query_lat_sum_us / 1e6, cum);
}

void api_metrics(struct api_call *c)
{
	struct snapshot s = { 0 };
	char *text = NULL;
	size_t len = 0;
	int err = take_snapshot(c->api, &s);
	if (err)
		return api_error_errno(c, err, "metrics", NULL);
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return api_error_errno(c, -ENOMEM, "metrics", NULL);
	store_metrics(f, &s);
	scrub_metrics(f, &s);
	server_metrics(f, &c->api->m);
	if (fclose(f) != 0) {
		free(text);
		return api_error_errno(c, -ENOMEM, "metrics", NULL);
	}
	http_respond(c->r, 200, "text/plain; version=0.0.4", text, len, NULL);
	free(text);
}
