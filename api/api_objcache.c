/*
 * api_objcache.c - the metrics of reading tiered captures: the
 * read-through cache (hits, misses, bytes, its bound and free-space floor,
 * evictions) and the latency of the reads it sends to the object store
 * (objcache.h).
 */
#include <stdio.h>

#include "api_priv.h"
#include "cleanup.h"
#include "objcache.h"
#include "vault.h"

void api_objcache_metrics(FILE *f, struct api_server *api)
{
	struct objcache *c = vault_objcache(api->vault);
	struct objcache_stats s;
	if (!c)
		return;
	objcache_get_stats(c, &s);
	api_metric(f, "cache_max_bytes", "gauge", "Bound of the read-through cache of remote objects.",
	       s.max_bytes);
	api_metric(f, "cache_keep_free_bytes", "gauge",
		   "Free space the read-through cache leaves on its file system (from "
		   "retention.min_free).",
		   s.keep_free);
	api_metric(f, "cache_limit_bytes", "gauge",
		   "Bytes the read-through cache may hold now: its bound, or less when the free "
		   "space above cache_keep_free_bytes allows less.",
		   s.limit_bytes);
	api_metric(f, "cache_bytes", "gauge", "Bytes in the read-through cache.", s.bytes);
	api_metric(f, "cache_files", "gauge", "Blocks and whole objects in the read-through cache.",
	       s.files);
	api_metric(f, "cache_hits_total", "counter", "Blocks or objects read from the cache.", s.hits);
	api_metric(f, "cache_misses_total", "counter", "Blocks or objects read from the object store.",
	       s.misses);
	api_metric(f, "cache_hit_bytes_total", "counter", "Bytes read from the cache.", s.hit_bytes);
	api_metric(f, "cache_miss_bytes_total", "counter", "Bytes read from the object store.",
	       s.miss_bytes);
	api_metric(f, "cache_evictions_total", "counter", "Cache files evicted (least recently used).",
	       s.evictions);
	api_metric(f, "cache_evicted_bytes_total", "counter", "Bytes evicted from the cache.",
	       s.evicted_bytes);
	api_metric(f, "remote_read_errors_total", "counter", "Reads the object store failed.",
	       s.remote_errors);
	api_metric(f, "remote_corrupt_total", "counter",
		   "Whole objects (from the store or the cache) that failed their SHA-256, and "
		   "blocks fetched that failed the digest recorded at tiering.",
		   s.corrupt);
	api_metric(f, "remote_unchecked_blocks_total", "counter",
		   "Blocks fetched from the store with no digest recorded to check them "
		   "(objects tiered before digests were kept).",
		   s.unchecked);
	api_histogram(f, "remote_read_duration_seconds",
		      "Reads sent to the object store (a batch of ranges, or a download).",
		      objcache_latency_bounds, s.remote_seconds_le, ARRAY_SIZE(s.remote_seconds_le),
		      s.remote_reads, s.remote_seconds_sum);
}
