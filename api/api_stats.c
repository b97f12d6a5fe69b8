/*
 * api_stats.c - GET /v1/stats (JSON) and GET /metrics (Prometheus text
 * exposition format 0.0.4): the catalog's totals, the store's free space,
 * the index's memory (block cache, memtables), the daemon's import
 * counters and scrub state when it shares them, and this server's request, upload and
 * query counters with a query latency histogram.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api_priv.h"
#include "catalog.h"
#include "db.h"
#include "store.h"
#include "vault.h"
#include "vstats.h"

const unsigned api_http_statuses[API_STATUSES] = {
	200, 201, 204, 206, 304, 400, 401, 403, 404, 405, 408,
	409, 411, 413, 414, 415, 416, 422, 429, 431, 500, 503, 507,
};

void api_count_response(void *app, int route, unsigned status)
{
	struct api_server *api = app;
	size_t r = route >= 0 && route < API_ROUTES ? (size_t)route : API_ROUTES;
	size_t slot = API_STATUSES + (status >= 100 && status < 600 ? status / 100 - 1 : 4);
	for (size_t i = 0; i < API_STATUSES; i++)
		if (api_http_statuses[i] == status)
			slot = i;
	atomic_fetch_add_explicit(&api->m.responses[r][slot], 1, memory_order_relaxed);
}

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

void api_metric(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	fprintf(f, "# HELP capvault_%s %s\n# TYPE capvault_%s %s\ncapvault_%s %" PRIu64 "\n", name,
		help, name, type, name, v);
}

void api_metric_by(FILE *f, const char *name, const char *help, const char *label,
		   const char *const *names, const uint64_t *values, size_t n)
{
	fprintf(f, "# HELP capvault_%s %s\n# TYPE capvault_%s counter\n", name, help, name);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "capvault_%s{%s=\"%s\"} %" PRIu64 "\n", name, label, names[i], values[i]);
}

static void histogram_bucket(FILE *f, const char *name, double bound, uint64_t le)
{
	fprintf(f, "capvault_%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, bound, le);
}

static void histogram_end(FILE *f, const char *name, uint64_t count, double sum_s)
{
	fprintf(f, "capvault_%s_bucket{le=\"+Inf\"} %" PRIu64 "\ncapvault_%s_sum %.6f\n"
		   "capvault_%s_count %" PRIu64 "\n", name, count, name, sum_s, name, count);
}

void api_histogram(FILE *f, const char *name, const char *help, const double *bounds,
		   const uint64_t *le, size_t n, uint64_t count, double sum_s)
{
	fprintf(f, "# HELP capvault_%s %s\n# TYPE capvault_%s histogram\n", name, help, name);
	for (size_t i = 0; i < n; i++)
		histogram_bucket(f, name, bounds[i], le[i]);
	histogram_end(f, name, count, sum_s);
}

void api_histogram_counts(FILE *f, const char *name, const char *help, const double *bounds,
			  const uint64_t *counts, size_t n, double sum_s)
{
	uint64_t cum = 0;
	fprintf(f, "# HELP capvault_%s %s\n# TYPE capvault_%s histogram\n", name, help, name);
	for (size_t i = 0; i < n; i++)
		histogram_bucket(f, name, bounds[i], cum += counts[i]);
	histogram_end(f, name, cum + counts[n], sum_s);
}

static void store_metrics(FILE *f, const struct snapshot *s)
{
	api_metric(f, "captures", "gauge", "Captures in the catalog.", s->t.captures);
	api_metric(f, "objects", "gauge", "Distinct stored capture files.", s->t.objects);
	api_metric(f, "store_bytes", "gauge", "Bytes of stored capture files.", s->t.object_bytes);
	api_metric(f, "packets", "gauge", "Packets in all captures.", s->t.packets);
	api_metric(f, "index_bytes", "gauge", "Bytes of packet index written.", s->t.index_bytes);
	api_metric(f, "free_bytes", "gauge", "Free bytes on the store's file system.", s->free_bytes);
	api_metric(f, "filesystem_size_bytes", "gauge", "Size of the store's file system.",
	       s->fs_bytes);
	api_metric(f, "index_block_cache_bytes", "gauge", "Bytes in the index's block cache.",
	       s->mem.block_cache_bytes);
	api_metric(f, "index_block_cache_capacity_bytes", "gauge", "Capacity of the index's block cache.",
	       s->mem.block_cache_capacity);
	api_metric(f, "index_memtable_bytes", "gauge", "Bytes in the index's memtables (not flushed).",
	       s->mem.memtable_bytes);
	/* A leak raises the bytes in use; fragmentation only the heap. */
	struct mallinfo2 mi = mallinfo2();
	api_metric(f, "malloc_in_use_bytes", "gauge", "Bytes the process has allocated and not freed.",
	       mi.uordblks + mi.hblkhd);
	api_metric(f, "malloc_heap_bytes", "gauge", "Bytes malloc holds from the system (in use or not).",
	       mi.arena + mi.hblkhd);
	if (!s->have_imports)
		return;
	api_metric(f, "import_files_seen_total", "counter", "Files the watcher reported.", s->imp.seen);
	api_metric(f, "imports_total", "counter", "Files imported from folders.", s->imp.imported);
	api_metric(f, "import_duplicates_total", "counter", "Imported files already stored.",
	       s->imp.duplicates);
	static const char *const reasons[API_IMPORT_REASONS] = {
		[API_IMPORT_MALFORMED] = "malformed", [API_IMPORT_IO] = "io",
		[API_IMPORT_NO_SPACE] = "no_space", [API_IMPORT_PERMISSION] = "permission",
		[API_IMPORT_OTHER] = "other",
	};
	api_metric_by(f, "import_failures_total", "Files that failed to import, by reason.", "reason",
		      reasons, s->imp.failed_by, API_IMPORT_REASONS);
	api_metric(f, "import_bytes_total", "counter", "Bytes imported from folders.", s->imp.bytes);
	api_metric(f, "import_packets_total", "counter", "Packets imported from folders.",
	       s->imp.packets);
	api_metric(f, "import_queue_length", "gauge", "Files waiting to be imported.",
	       s->imp.queue_length);
	api_metric(f, "import_retries_total", "counter",
	       "Transient import failures, each followed by a retry.", s->imp.retried);
	api_metric(f, "import_retrying", "gauge", "Files waiting to be retried.", s->imp.retrying);
}

static void scrub_metrics(FILE *f, const struct snapshot *s)
{
	if (!s->have_scrub)
		return;
	api_metric(f, "scrub_objects_total", "counter", "Objects the scrub re-hashed.",
	       s->scrub.objects_total);
	api_metric(f, "scrub_bytes_total", "counter", "Bytes the scrub re-hashed.",
	       s->scrub.bytes_total);
	api_metric(f, "scrub_corrupt_objects", "gauge",
	       "Objects the last scrub found not hashing to their names.", s->scrub.corrupt);
	api_metric(f, "scrub_quarantined_total", "counter", "Corrupt objects moved to quarantine/.",
	       s->scrub.quarantined_total);
	api_metric(f, "scrub_last_run_timestamp_seconds", "gauge",
	       "End of the last complete scrub (Unix time; 0: none yet).",
	       s->scrub.last_end_ns / 1000000000u);
	api_metric(f, "scrub_last_objects", "gauge", "Objects the last complete scrub re-hashed.",
	       s->scrub.last_objects);
	api_metric(f, "scrub_enabled", "gauge", "1 when scrub.interval is not 0.", s->scrub.enabled);
	api_metric(f, "scrub_running", "gauge", "1 while a scrub pass is under way.", s->scrub.running);
	api_metric(f, "scrub_next_run_timestamp_seconds", "gauge",
	       "Start of the next planned scrub (Unix time; 0: none planned).",
	       s->scrub.next_ns / 1000000000u);
}

/* Responses by route pattern and status; only the pairs seen, so the
 * text stays short. Routes sharing a pattern (GET and DELETE of
 * /v1/captures/ID) are summed under it. */
static void http_metrics(FILE *f, struct api_metrics *m)
{
	fprintf(f, "# HELP capvault_http_requests_total HTTP responses by route pattern and status.\n"
		   "# TYPE capvault_http_requests_total counter\n");
	for (size_t r = 0; r <= API_ROUTES; r++) {
		const char *pattern = api_route_pattern(r);
		bool first = true;
		for (size_t q = 0; q < r && first; q++)
			first = strcmp(api_route_pattern(q), pattern) != 0;
		for (size_t st = 0; first && st < API_STATUS_SLOTS; st++) {
			uint64_t n = 0;
			for (size_t q = r; q <= API_ROUTES; q++)
				if (!strcmp(api_route_pattern(q), pattern))
					n += atomic_load_explicit(&m->responses[q][st],
								  memory_order_relaxed);
			if (!n)
				continue;
			char status[8];
			if (st < API_STATUSES)
				snprintf(status, sizeof(status), "%u", api_http_statuses[st]);
			else
				snprintf(status, sizeof(status), "%zuxx", st - API_STATUSES + 1);
			fprintf(f, "capvault_http_requests_total{route=\"%s\",status=\"%s\"} %" PRIu64
				"\n", pattern, status, n);
		}
	}
}

static void process_metric(FILE *f, const char *name, const char *type, const char *help,
			   double v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

/* Entries in /proc/self/fd, less the one reading it; -1 when unreadable. */
static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	long n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;
}

/* The boot time (Unix seconds) from /proc/stat's btime line; 0 unknown. */
static unsigned long long boot_time(void)
{
	FILE *f = fopen("/proc/stat", "re");
	char line[256];
	unsigned long long bt = 0;
	while (f && fgets(line, sizeof(line), f) && sscanf(line, "btime %llu", &bt) != 1)
		;
	if (f)
		fclose(f);
	return bt;
}

/* The standard process metrics from /proc/self/stat (cpu times, start
 * time in clock ticks after boot, virtual size, resident pages). Left
 * out when /proc cannot be read. */
static void process_metrics(FILE *f)
{
	char buf[1024];
	FILE *st = fopen("/proc/self/stat", "re");
	size_t len = st ? fread(buf, 1, sizeof(buf) - 1, st) : 0;
	if (st)
		fclose(st);
	buf[len] = '\0';
	/* After the command name, which may hold spaces and parentheses. */
	const char *p = strrchr(buf, ')');
	unsigned long long utime, stime, start, vsize;
	long long rss;
	long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long long btime = boot_time();
	if (!p || tick <= 0 || page <= 0 || !btime ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d "
			  "%*d %*d %llu %llu %lld", &utime, &stime, &start, &vsize, &rss) != 5)
		return;
	process_metric(f, "process_cpu_seconds_total", "counter", "User and system CPU time in seconds.",
		       (double)(utime + stime) / (double)tick);
	process_metric(f, "process_start_time_seconds", "gauge", "Start of the process (Unix time).",
		       (double)btime + (double)start / (double)tick);
	process_metric(f, "process_resident_memory_bytes", "gauge", "Resident memory in bytes.",
		       (double)rss * (double)page);
	process_metric(f, "process_virtual_memory_bytes", "gauge", "Virtual memory in bytes.",
		       (double)vsize);
	long fds = open_fds();
	if (fds >= 0)
		process_metric(f, "process_open_fds", "gauge", "Open file descriptors.", (double)fds);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		process_metric(f, "process_max_fds", "gauge", "Limit on open file descriptors.",
			       (double)rl.rlim_cur);
}

static void server_metrics(FILE *f, struct api_metrics *m)
{
	fprintf(f, "# HELP capvault_build_info The running version (the value is always 1).\n"
		   "# TYPE capvault_build_info gauge\ncapvault_build_info{version=\"%s\"} 1\n",
		CAPVAULT_VERSION);
	api_metric(f, "uploads_total", "counter", "Uploads stored.", m->uploads);
	api_metric(f, "upload_bytes_total", "counter", "Bytes received by uploads.", m->upload_bytes);
	api_metric(f, "upload_failures_total", "counter", "Uploads refused or failed.",
	       m->upload_failures);
	api_metric(f, "downloads_total", "counter", "Capture downloads.", m->downloads);
	api_metric(f, "queries_total", "counter", "Packet queries run.", m->queries);
	api_metric(f, "query_failures_total", "counter", "Packet queries that failed.",
	       m->query_failures);
	api_metric(f, "query_packets_total", "counter", "Packets returned by queries.",
	       m->query_packets);
	uint64_t lat[API_LAT_BUCKETS + 1];
	for (size_t i = 0; i <= API_LAT_BUCKETS; i++)
		lat[i] = atomic_load_explicit(&m->query_lat[i], memory_order_relaxed);
	api_histogram_counts(f, "query_duration_seconds", "Packet query latency.",
			     api_latency_bounds, lat, API_LAT_BUCKETS,
			     (double)m->query_lat_sum_us / 1e6);
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
	api_tier_metrics(f, c->api, &s.t);
	api_objcache_metrics(f, c->api);
	server_metrics(f, &c->api->m);
	http_metrics(f, &c->api->m);
	process_metrics(f);
	if (fclose(f) != 0) {
		free(text);
		return api_error_errno(c, -ENOMEM, "metrics", NULL);
	}
	http_respond(c->r, 200, "text/plain; version=0.0.4", text, len, NULL);
	free(text);
}
