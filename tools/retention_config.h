/*
 * retention_config.h - the config's retention: section as index/'s
 * retention rules (index/ includes nothing from config/, so the programs
 * convert), and the loading of the config the CLI's prune reads.
 */
#ifndef CAPVAULT_RETENTION_CONFIG_H
#define CAPVAULT_RETENTION_CONFIG_H

#include "config.h"
#include "retention.h"

/* Fills rules from rc; the rules point into rc (keep it alive) and own
 * only their policies array. Returns 0 or -ENOMEM. */
int retention_rules_from_config(const struct config_retention *rc, struct retention_rules *rules);
/* Frees what retention_rules_from_config allocated. */
void retention_rules_release(struct retention_rules *rules);

/*
 * The free space the object store's read-through cache keeps on the
 * store's file system of fs_bytes (objcache_set_keep_free), from
 * retention.min_free: the larger of min_free and 5% of the file system,
 * plus the 4 MiB the store keeps for the index. Above min_free, so the
 * cache alone never makes retention prune a capture or refuse an import;
 * above the 4 MiB the store refuses to write into (and the spool of an
 * upload keeps beside min_free), so it never makes a copy fail; 5% so
 * that, without min_free, a capture the size of a few percent of the
 * disk is taken in without waiting for the cache to give way.
 */
uint64_t retention_cache_keep_free(uint64_t min_free_bytes, unsigned min_free_percent,
				   uint64_t fs_bytes);

/*
 * Sets that floor on cache (a cache in store's cache/ folder) from the
 * rules' min_free and the store's file system. Returns the floor, or 0
 * when the file system's size could not be read (the floor is left as
 * it was).
 */
struct objcache;
struct store;
uint64_t retention_cache_floor_set(struct objcache *cache, struct store *st,
				   uint64_t min_free_bytes, unsigned min_free_percent);

/*
 * retention_env's space function for a plan made as if the cache
 * (opaque: a struct retention_cache_space) had given way to its floor
 * first, as a real run does before it plans (objcache_trim): the
 * store's free space plus the cache bytes that trimming would free. For
 * dry runs, which must not evict.
 */
struct retention_cache_space {
	struct store *st;
	struct objcache *cache; /* NULL: none */
};
int retention_space_after_trim(void *opaque, uint64_t *free_bytes, uint64_t *total_bytes);

/* Loads path, or the embedded default (no path checks) when NULL,
 * printing every error to stderr. Returns the config or NULL. */
struct config *retention_load_config(const char *path);

#endif
