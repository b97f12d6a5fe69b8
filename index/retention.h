/*
 * retention.h - which captures retention policies delete, and deleting
 * them.
 *
 * retention_plan reads the catalog once and decides; retention_apply
 * deletes what a plan lists, so a dry run (plan only) and a real run
 * (plan, then apply) report the same captures. Each deletion is decided
 * again on the record as it is when it goes, under the catalog lock that
 * the delete holds: a capture tagged protect_tag meanwhile (or by a
 * duplicate merged into it), or no longer in the policy that chose it, or
 * no longer over its max_age, is kept and reported "kept". Nothing here logs or
 * reads a clock or the file system on its own: the time and the free
 * space come from the caller, so tests can fake both.
 *
 * Rules, in order:
 *  1. A capture tagged protect_tag is never deleted, by any rule.
 *  2. Each remaining capture belongs to the first policy that matches it
 *     (all of the policy's tags, and, when the policy names a folder, a
 *     source_path under that folder). A policy deletes its captures older
 *     than max_age (age from import time, or from the last packet's time
 *     with age_by_last_packet; a capture without packets ages from its
 *     import) and those beyond the newest max_count (newest by the same
 *     time).
 *  3. While the objects still kept add up to more than max_total_size,
 *     the oldest captures (by import time, then id) go, whatever their
 *     policy.
 *  4. While the free space (as reported, plus what the plan frees) is
 *     below min_free (bytes, or percent of the file system), the oldest
 *     with a local copy go likewise (one only in the object store frees
 *     no local space).
 *  5. Objects with a local copy that no deletion removes are tiered (moved
 *     to the object store, the plan's tier list): a policy's captures
 *     older than its tier_after (aged as for max_age), then, while the
 *     local copies still add up to more than local_max_size, the oldest
 *     (by import time, then id), whatever their policy, protected ones
 *     too (tiering keeps the bytes).
 * Bytes freed count an object's size only on the deletion that removes its
 * last reference; min_free counts only local copies freed.
 *
 * This header depends on nothing from config/: the programs convert their
 * configuration into these structs.
 */
#ifndef CAPVAULT_RETENTION_H
#define CAPVAULT_RETENTION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

struct catalog;
struct store;

struct retention_policy {
	const char *name;
	const char *const *tags; /* all must be present; none matches any */
	size_t ntags;
	const char *folder;      /* or NULL: every arrival of the capture
				  * (source_path and the duplicates'
				  * sources) must be under it */
	bool has_max_age;
	uint64_t max_age_ns;
	bool age_by_last_packet;
	bool has_max_count;
	uint64_t max_count;
	bool has_tier_after;
	uint64_t tier_after_ns; /* its captures older than this (same age) are tiered */
};

struct retention_rules {
	const char *protect_tag;   /* or NULL */
	uint64_t max_total_size;   /* 0: none (local and remote objects count) */
	uint64_t local_max_size;   /* 0: none (only local copies count) */
	uint64_t min_free_bytes;   /* 0: none */
	unsigned min_free_percent; /* 0: none */
	const struct retention_policy *policies;
	size_t n_policies;
};

/* Free and total bytes of the store's file system. */
typedef int (*retention_space_fn)(void *opaque, uint64_t *free_bytes, uint64_t *total_bytes);

struct retention_env {
	uint64_t now_ns;
	retention_space_fn space; /* NULL: min_free is not checked */
	void *space_opaque;
	/* The object store answers and a tier mover takes the plan's tier
	 * list: min_free then frees an object that has a remote copy as well
	 * (a move under way, or a remote object imported again) by ending its
	 * move, where it would otherwise delete its captures. */
	bool finish_moves;
	/* Room an import waits for beyond the min_free floor (vault_room_wanted):
	 * pruned for as the floor is, when one is set. */
	uint64_t room_wanted;
};

struct retention_item {
	uint64_t id;
	char *name;
	uint8_t sha256[32];
	char *policy;         /* policy name, "max_total_size" or "min_free" */
	char reason[192];
	uint64_t file_size;
	uint64_t bytes_freed; /* 0 when another capture still uses the object;
			       * after apply, what its deletion really freed */
	int result;           /* after apply: 0, CATALOG_KEPT, or a negative errno */
	char error[512];      /* after apply: why it failed or was kept, or a warning */
	int rule;             /* the policy's index, or -1 for a store-wide rule */
	bool by_count;        /* chosen by max_count (kept by rank) */
};

/* An object to move to the object store (tier.h): the first capture that
 * chose it. Not done by retention_apply: the daemon's tier mover does it. */
struct retention_tier_item {
	uint64_t id;
	char *name;
	uint8_t sha256[32];
	char *policy;         /* policy name, or "local_max_size" */
	char reason[192];
	uint64_t file_size;
};

struct retention_plan {
	struct retention_item *items; /* in deletion order */
	size_t n;
	struct retention_tier_item *tier; /* oldest first */
	size_t ntier;
	uint64_t tier_bytes;
	uint64_t bytes_freed;
	uint64_t free_before, fs_total; /* when the env has a space function */
	uint64_t min_free;              /* the floor in bytes, 0 when none */
	bool below_min_free_after;      /* the plan cannot reach min_free */
	const struct retention_rules *rules; /* what apply decides by again */
	uint64_t now_ns;
	/* The env's space function when min_free is set: apply keeps what was
	 * planned for min_free once the floor is met anyway (another deletion,
	 * files removed beside the store since the plan). */
	retention_space_fn space;
	void *space_opaque;
};

/* The store's own space function (opaque: struct store *). */
int retention_store_space(void *store, uint64_t *free_bytes, uint64_t *total_bytes);

/* "1536MiB", "9000B": a unit once the number reaches 10240 of the smaller one. */
void retention_fmt_size(uint64_t bytes, char *buf, size_t len);

/* The floor in bytes (the larger of bytes and percent of total). */
uint64_t retention_min_free(uint64_t min_free_bytes, unsigned min_free_percent,
			    uint64_t total_bytes);

/*
 * Decides what rules delete now. Returns 0 with *out (free with
 * retention_plan_free), or a negative errno (eb). rules must stay valid
 * until the plan is applied.
 */
int retention_plan(struct catalog *cat, const struct retention_rules *rules,
		   const struct retention_env *env, struct retention_plan **out,
		   struct errbuf *eb);
struct retention_plan *retention_plan_free(struct retention_plan *plan);

/*
 * Deletes every capture of plan that the rules still delete when its turn
 * comes (catalog_remove_if, then the object file when its last reference
 * went), recording each item's result (CATALOG_KEPT with the reason in
 * error) and keeping on after a failure. plan->bytes_freed becomes what
 * was really freed. Returns 0 when all went or were kept, else the first
 * error.
 */
int retention_apply(struct catalog *cat, struct store *st, struct retention_plan *plan);

/*
 * 0 when the file system of st has at least the floor free, -ENOSPC with
 * eb "store below min_free (X free < Y): import refused" when not, or
 * another negative errno when it cannot tell.
 */
int retention_check_min_free(struct store *st, uint64_t min_free_bytes,
			     unsigned min_free_percent, struct errbuf *eb);

/* The plan as one JSON document: what `capvault prune --json` prints and
 * POST /v1/prune answers (captures with id, name, sha256, policy, reason,
 * sizes, and after a real run whether each was deleted). */
json_t *retention_plan_to_json(const struct retention_plan *plan, bool dry_run);

#endif
