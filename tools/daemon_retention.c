/*
 * daemon_retention.c - capvaultd's retention runs: the policies every
 * retention.interval, and sooner while the store is below min_free (an
 * import found it so, or the periodic check did). Runs on the main thread
 * between watch events; every deletion is logged with id, name, sha256,
 * policy and reason.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "log.h"
#include "retention_config.h"
#include "store.h"
#include "vault.h"

/* How often the free space is looked at between runs. */
#define LOW_SPACE_CHECK_MS 1000u

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int daemon_retention_configure(struct daemon_retention *dr, struct vault *v,
			       const struct config_retention *rc)
{
	struct retention_rules rules;
	int err = retention_rules_from_config(rc, &rules);
	if (err)
		return err;
	retention_rules_release(&dr->rules);
	dr->rules = rules;
	dr->interval_ms = rc->interval_ns / 1000000u ? rc->interval_ns / 1000000u : 1;
	/* The first run is at start-up; a reload keeps the schedule. */
	if (!dr->vault || dr->next_ms > daemon_now_ms() + dr->interval_ms)
		dr->next_ms = daemon_now_ms();
	dr->vault = v;
	vault_set_min_free(v, rc->min_free_bytes, rc->min_free_percent);
	return 0;
}

void daemon_retention_release(struct daemon_retention *dr)
{
	retention_rules_release(&dr->rules);
}

static void log_plan(const struct retention_plan *plan)
{
	char hex[65];
	for (size_t i = 0; i < plan->n; i++) {
		const struct retention_item *it = &plan->items[i];
		sha256_hex(it->sha256, hex);
		if (it->result == 0)
			log_info("pruned capture %" PRIu64 " %s sha256 %s policy %s: %s; %" PRIu64
				 " bytes freed", it->id, it->name, hex, it->policy, it->reason,
				 it->bytes_freed);
		else
			log_warnx("pruning capture %" PRIu64 " %s sha256 %s policy %s failed: %s",
				  it->id, it->name, hex, it->policy, it->error);
	}
	if (plan->below_min_free_after)
		log_warnx("store still below min_free after pruning: imports are refused");
}

int daemon_retention_run(struct daemon_retention *dr)
{
	struct retention_env env = { .now_ns = wall_ns(), .space = retention_store_space,
				     .space_opaque = vault_store(dr->vault) };
	struct retention_plan *plan = NULL;
	struct errbuf eb = { { 0 } };
	int err = retention_plan(vault_catalog(dr->vault), &dr->rules, &env, &plan, &eb);
	if (err) {
		log_errx("retention: %s", eb.msg[0] ? eb.msg : strerror(-err));
		return err;
	}
	if (plan->n)
		err = retention_apply(vault_catalog(dr->vault), vault_store(dr->vault), plan);
	log_plan(plan);
	retention_plan_free(plan);
	return err;
}

/* True when a min_free floor is set and the store is below it. */
static bool below_floor(struct daemon_retention *dr)
{
	if (!dr->rules.min_free_bytes && !dr->rules.min_free_percent)
		return false;
	return retention_check_min_free(vault_store(dr->vault), dr->rules.min_free_bytes,
					dr->rules.min_free_percent, NULL) == -ENOSPC;
}

void daemon_retention_tick(struct daemon_retention *dr)
{
	uint64_t now = daemon_now_ms();
	bool due = now >= dr->next_ms;
	if (!due && now >= dr->low_check_ms) {
		dr->low_check_ms = now + LOW_SPACE_CHECK_MS;
		/* Below the floor: run now, then at most once per check period. */
		due = below_floor(dr) && now >= dr->last_low_run_ms + LOW_SPACE_CHECK_MS;
		if (due)
			dr->last_low_run_ms = now;
	}
	if (!due)
		return;
	dr->next_ms = now + dr->interval_ms;
	daemon_retention_run(dr);
}
