/*
 * api_objcache.c - the metrics of reading tiered captures: the
 * read-through cache (hits, misses, bytes, evictions) and the latency of
 * the reads it sends to the object store (objcache.h).
 */
#include <inttypes.h>
#include <stdio.h>

#include "api_priv.h"
#include "objcache.h"
#include "vault.h"

static void metric(FILE *f, const char *name, const char *type, const char *help, uint64_t v)
{
	fprintf(f, "# HELP capvault_%s %s\n# TYPE capvault_%s %s\ncapvault_%s %" PRIu64 "\n", name,
		help, name, type, name, v);
}

static void latency_metric(FILE *f, const struct objcache_stats *s)
{
	const char *name = "capvault_remote_read_duration_seconds";
	fprintf(f, "# HELP %s Reads sent to the object store (a batch of ranges, or a download).\n"
		   "# TYPE %s histogram\n", name, name);
	for (size_t i = 0; i < 8; i++)
		fprintf(f, "%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, objcache_latency_bounds[i],
			s->remote_seconds_le[i]);
	fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n%s_sum %.6f\n%s_count %" PRIu64 "\n", name,
		s->remote_reads, name, s->remote_seconds_sum, name, s->remote_reads);
}

void api_objcache_metrics(FILE *f, struct api_server *api)
{
	struct objcache *c = vault_objcache(api->vault);
	struct objcache_stats s;
	if (!c)
		return;
	objcache_get_stats(c, &s);
	metric(f, "cache_max_bytes", "gauge", "Bound of the read-through cache of remote objects.",
	       s.max_bytes);
	metric(f, "cache_bytes", "gauge", "Bytes in the read-through cache.", s.bytes);
	metric(f, "cache_files", "gauge", "Blocks and whole objects in the read-through cache.",
	       s.files);
	metric(f, "cache_hits_total", "counter", "Blocks or objects read from the cache.", s.hits);
	metric(f, "cache_misses_total", "counter", "Blocks or objects read from the object store.",
	       s.misses);
	metric(f, "cache_hit_bytes_total", "counter", "Bytes read from the cache.", s.hit_bytes);
	metric(f, "cache_miss_bytes_total", "counter", "Bytes read from the object store.",
	       s.miss_bytes);
	metric(f, "cache_evictions_total", "counter", "Cache files evicted (least recently used).",
	       s.evictions);
	metric(f, "cache_evicted_bytes_total", "counter", "Bytes evicted from the cache.",
	       s.evicted_bytes);
	metric(f, "remote_read_errors_total", "counter", "Reads the object store failed.",
	       s.remote_errors);
	latency_metric(f, &s);
}
