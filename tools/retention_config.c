/*
 * retention_config.c - see retention_config.h.
 */
#include "retention_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objcache.h"
#include "store.h"

/* What index/store.c keeps free for RocksDB's own writes. */
#define CACHE_INDEX_RESERVE (4u << 20)
#define CACHE_FS_PERCENT 5u

uint64_t retention_cache_keep_free(uint64_t min_free_bytes, unsigned min_free_percent,
				   uint64_t fs_bytes)
{
	uint64_t floor = retention_min_free(min_free_bytes, min_free_percent, fs_bytes);
	uint64_t share = retention_min_free(0, CACHE_FS_PERCENT, fs_bytes);
	floor = floor > share ? floor : share;
	return floor > UINT64_MAX - CACHE_INDEX_RESERVE ? UINT64_MAX : floor + CACHE_INDEX_RESERVE;
}

uint64_t retention_cache_floor_set(struct objcache *cache, struct store *st,
				   uint64_t min_free_bytes, unsigned min_free_percent)
{
	uint64_t free_bytes = 0, total = 0;
	if (!cache || store_space(st, &free_bytes, &total) < 0)
		return 0;
	uint64_t floor = retention_cache_keep_free(min_free_bytes, min_free_percent, total);
	objcache_set_keep_free(cache, floor);
	return floor;
}

int retention_space_after_trim(void *opaque, uint64_t *free_bytes, uint64_t *total_bytes)
{
	const struct retention_cache_space *cs = opaque;
	struct objcache_stats s;
	int r = store_space(cs->st, free_bytes, total_bytes);
	if (r < 0 || !cs->cache)
		return r;
	objcache_get_stats(cs->cache, &s);
	if (s.keep_free > *free_bytes)
		*free_bytes += s.bytes < s.keep_free - *free_bytes ? s.bytes : s.keep_free - *free_bytes;
	return 0;
}

int retention_rules_from_config(const struct config_retention *rc, struct retention_rules *rules)
{
	struct retention_policy *p = calloc(rc->n_policies ? rc->n_policies : 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < rc->n_policies; i++) {
		const struct config_policy *c = &rc->policies[i];
		p[i] = (struct retention_policy){
			.name = c->name,
			.tags = (const char *const *)c->tags.v,
			.ntags = c->tags.n,
			.folder = c->folder,
			.has_max_age = c->has_max_age,
			.max_age_ns = c->max_age_ns,
			.age_by_last_packet = c->age_by == CONFIG_AGE_BY_LAST_PACKET,
			.has_max_count = c->has_max_count,
			.max_count = c->max_count,
			.has_tier_after = c->has_tier_after,
			.tier_after_ns = c->tier_after_ns,
		};
	}
	*rules = (struct retention_rules){
		.protect_tag = rc->protect_tag,
		.max_total_size = rc->max_total_size,
		.local_max_size = rc->local_max_size,
		.min_free_bytes = rc->min_free_bytes,
		.min_free_percent = rc->min_free_percent,
		.policies = p,
		.n_policies = rc->n_policies,
	};
	return 0;
}

void retention_rules_release(struct retention_rules *rules)
{
	free((void *)rules->policies);
	rules->policies = NULL;
	rules->n_policies = 0;
}

struct config *retention_load_config(const char *path)
{
	struct config_errors *errs = NULL;
	struct config *cfg = NULL;
	if (config_errors_new(&errs) < 0)
		return NULL;
	int err = path ? config_load(&cfg, path, errs)
		       : config_load_default(&cfg, CONFIG_NO_PATH_CHECKS, errs);
	for (size_t i = 0; i < config_errors_count(errs); i++)
		fprintf(stderr, "%s\n", config_errors_get(errs, i)->text);
	if (err && config_errors_count(errs) == 0)
		fprintf(stderr, "capvault: %s: %s\n", path ? path : "<default>", strerror(-err));
	config_errors_free(errs);
	return err ? NULL : cfg;
}
