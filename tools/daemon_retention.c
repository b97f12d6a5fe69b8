/*
 * daemon_retention.c - capvaultd's retention runs: the policies every
 * retention.interval, and sooner while the store is below min_free (an
 * import found it so, or the periodic check did). Runs on the main thread
 * between watch events, or on an API thread for POST /v1/prune; one lock
 * keeps the two apart. Every deletion is logged with id, name, sha256,
 * policy and reason, and so is a capture the plan chose but that changed
 * before its turn (tagged protect meanwhile: kept); "imports are refused" is logged when pruning cannot
 * reach min_free, once until it can again.
 * The object store's read-through cache gives way first: its floor of
 * free space follows min_free (retention_cache_keep_free, set again on a
 * reload), and a run trims it to that floor before it plans, so no
 * capture is pruned for space that cache bytes (fetched again at will)
 * hold.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "log.h"
#include "monoclock.h"
#include "objcache.h"
#include "retention_config.h"
#include "store.h"
#include "vault.h"
#include "wallclock.h"

/* How often the free space is looked at between runs. */
#define LOW_SPACE_CHECK_MS 1000u

int daemon_retention_configure(struct daemon_retention *dr, struct vault *v,
			       const struct config_retention *rc)
{
	struct retention_rules rules;
	int err = retention_rules_from_config(rc, &rules);
	if (err)
		return err;
	if (!dr->vault)
		pthread_mutex_init(&dr->lock, NULL);
	pthread_mutex_lock(&dr->lock);
	retention_rules_release(&dr->rules);
	dr->rules = rules;
	dr->interval_ms = rc->interval_ns / 1000000u ? rc->interval_ns / 1000000u : 1;
	/* The first run is at start-up; a reload keeps the schedule. */
	if (!dr->vault || dr->next_ms > mono_ms() + dr->interval_ms)
		dr->next_ms = mono_ms();
	dr->vault = v;
	vault_set_min_free(v, rc->min_free_bytes, rc->min_free_percent);
	vault_set_max_total_size(v, dr->rules.max_total_size);
	err = vault_set_protect_tag(v, dr->rules.protect_tag);
	/* At start the cache opens later and sets its floor itself. */
	retention_cache_floor_set(vault_objcache(v), vault_store(v), rc->min_free_bytes,
				  rc->min_free_percent);
	pthread_mutex_unlock(&dr->lock);
	return err;
}

void daemon_retention_release(struct daemon_retention *dr)
{
	retention_rules_release(&dr->rules);
	if (dr->vault)
		pthread_mutex_destroy(&dr->lock);
}

static void log_plan(struct daemon_retention *dr, const struct retention_plan *plan)
{
	char hex[65];
	for (size_t i = 0; i < plan->n; i++) {
		const struct retention_item *it = &plan->items[i];
		sha256_hex(it->sha256, hex);
		if (it->result == 0)
			log_info("pruned capture %" PRIu64 " %s sha256 %s policy %s: %s; %" PRIu64
				 " bytes freed", it->id, it->name, hex, it->policy, it->reason,
				 it->bytes_freed);
		else if (it->result == CATALOG_KEPT)
			log_info("kept capture %" PRIu64 " %s sha256 %s policy %s: %s since the plan",
				 it->id, it->name, hex, it->policy, it->error);
		else
			log_warnx("pruning capture %" PRIu64 " %s sha256 %s policy %s failed: %s",
				  it->id, it->name, hex, it->policy, it->error);
	}
	if (plan->below_min_free_after && !dr->refusing)
		log_warnx("store still below min_free after pruning: imports are refused");
	else if (!plan->below_min_free_after && dr->refusing && plan->min_free)
		log_info("store back above min_free: imports resume");
	dr->refusing = plan->below_min_free_after;
}

/* The objects the plan tiers go to the tier mover's queue (already
 * queued or moving: skipped; a full queue: the next run asks again). */
static void queue_tiering(struct daemon_retention *dr, const struct retention_plan *plan)
{
	char hex[65];
	size_t queued = 0, full = 0;
	if (!plan->ntier)
		return;
	if (!dr->tier || !daemon_tier_enabled(dr->tier)) {
		log_warnx("retention: %zu objects to tier (tier_after, local_max_size) but no object "
			  "store is configured", plan->ntier);
		return;
	}
	for (size_t i = 0; i < plan->ntier; i++) {
		const struct retention_tier_item *t = &plan->tier[i];
		int r = daemon_tier_push(dr->tier, t->sha256, t->file_size);
		sha256_hex(t->sha256, hex);
		if (r == 0) {
			queued++;
			log_info("tiering capture %" PRIu64 " %s sha256 %s policy %s: %s", t->id,
				 t->name, hex, t->policy, t->reason);
		}
		full += r == -ENOSPC;
	}
	if (full)
		log_warnx("retention: %zu objects not queued for tiering (queue full); the next "
			  "run asks again", full);
	(void)queued;
}

/* The cache's bytes go before any capture does: trimmed down to its
 * floor (above min_free) now, so the plan sees the space they held. */
static void trim_cache(struct daemon_retention *dr)
{
	struct objcache *cache = vault_objcache(dr->vault);
	struct objcache_stats s;
	uint64_t evicted = objcache_trim(cache, 0);
	if (!evicted)
		return;
	objcache_get_stats(cache, &s);
	log_info("retention: evicted %" PRIu64 " bytes of the object store cache to keep %" PRIu64
		 " bytes free; it may hold %" PRIu64 " bytes now",
		 evicted, s.keep_free, s.limit_bytes);
}

/* Plans and, unless dry_run, applies; the caller holds the lock. A dry
 * run evicts nothing: it counts what trimming the cache would free. */
static int run_locked(struct daemon_retention *dr, bool dry_run, struct retention_plan **out,
		      struct errbuf *eb)
{
	struct retention_cache_space cs = { .st = vault_store(dr->vault),
					    .cache = vault_objcache(dr->vault) };
	struct retention_env env = { .now_ns = wall_ns(),
				     .space = dry_run ? retention_space_after_trim
						      : retention_store_space,
				     .space_opaque = dry_run ? (void *)&cs : (void *)cs.st,
				     .finish_moves = dr->tier && daemon_tier_store_up(dr->tier),
				     .room_wanted = dry_run ? 0 : vault_room_wanted(dr->vault, true) };
	struct retention_plan *plan = NULL;
	*out = NULL;
	if (!dry_run)
		trim_cache(dr);
	int err = retention_plan(vault_catalog(dr->vault), &dr->rules, &env, &plan, eb);
	if (err)
		return err;
	if (!dry_run && plan->n)
		err = retention_apply(vault_catalog(dr->vault), vault_store(dr->vault), plan);
	if (!dry_run)
		log_plan(dr, plan);
	if (!dry_run)
		queue_tiering(dr, plan);
	*out = plan;
	return err;
}

int daemon_retention_run(struct daemon_retention *dr)
{
	struct retention_plan *plan = NULL;
	struct errbuf eb = { { 0 } };
	pthread_mutex_lock(&dr->lock);
	int err = run_locked(dr, false, &plan, &eb);
	pthread_mutex_unlock(&dr->lock);
	if (err && !plan)
		log_errx("retention: %s", eb.msg[0] ? eb.msg : strerror(-err));
	retention_plan_free(plan);
	return err;
}

int daemon_retention_prune(struct daemon_retention *dr, bool dry_run,
			   struct retention_plan **out, struct errbuf *eb)
{
	if (!dry_run)
		log_info("prune requested through the API");
	pthread_mutex_lock(&dr->lock);
	int err = run_locked(dr, dry_run, out, eb);
	pthread_mutex_unlock(&dr->lock);
	return err;
}

void daemon_retention_describe(struct daemon_retention *dr,
			       void (*fn)(void *ctx, const struct retention_rules *rules,
					  uint64_t interval_ns, uint64_t next_run_ns),
			       void *ctx)
{
	pthread_mutex_lock(&dr->lock);
	uint64_t now = mono_ms();
	uint64_t left_ms = dr->next_ms > now ? dr->next_ms - now : 0;
	fn(ctx, &dr->rules, dr->interval_ms * 1000000u, wall_ns() + left_ms * 1000000u);
	pthread_mutex_unlock(&dr->lock);
}

/* True when a min_free floor is set and the store is below it. */
static bool below_floor(struct daemon_retention *dr)
{
	if (!dr->rules.min_free_bytes && !dr->rules.min_free_percent)
		return false;
	return retention_check_min_free(vault_store(dr->vault), dr->rules.min_free_bytes,
					dr->rules.min_free_percent, NULL) == -ENOSPC;
}

/* The caller holds the lock. */
static bool tick_locked(struct daemon_retention *dr)
{
	uint64_t now = mono_ms();
	bool due = now >= dr->next_ms;
	if (!due && now >= dr->low_check_ms) {
		dr->low_check_ms = now + LOW_SPACE_CHECK_MS;
		/* Below the floor, or an import waits for room: run now, then at
		 * most once per check period. */
		due = (vault_room_wanted(dr->vault, false) || below_floor(dr)) &&
		      now >= dr->last_low_run_ms + LOW_SPACE_CHECK_MS;
		if (due)
			dr->last_low_run_ms = now;
	}
	if (!due)
		return false;
	dr->next_ms = now + dr->interval_ms;
	struct retention_plan *plan = NULL;
	struct errbuf eb = { { 0 } };
	int err = run_locked(dr, false, &plan, &eb);
	if (err && !plan)
		log_errx("retention: %s", eb.msg[0] ? eb.msg : strerror(-err));
	bool freed = plan && plan->bytes_freed > 0;
	retention_plan_free(plan);
	return freed;
}

bool daemon_retention_tick(struct daemon_retention *dr)
{
	if (pthread_mutex_trylock(&dr->lock) != 0)
		return false; /* the API is pruning */
	bool freed = tick_locked(dr);
	pthread_mutex_unlock(&dr->lock);
	return freed;
}
