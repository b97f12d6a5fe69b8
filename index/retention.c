/*
 * retention.c - retention plans and their execution (see retention.h).
 *
 * Promises:
 * - A plan is computed from one pass over the catalog and the caller's
 *   clock and free space only; applying it deletes its items, in its
 *   order, so what a dry run lists is what a real run deletes, unless a
 *   capture changed in between.
 * - Protected captures appear in no plan, and are never deleted: apply
 *   decides each deletion again on the record under the catalog lock that
 *   deletes it (protect tag, policy match, age), so a tag change or a
 *   duplicate's merge lands either before (the capture is kept) or after
 *   the capture is gone (it finds no capture).
 * - Deleting goes through catalog_remove_if (one synced batch) before the
 *   object file is unlinked: a crash in between leaves an unreferenced
 *   object that the next vault_open removes.
 */
#include "retention.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "store.h"

#define NS_PER_S 1000000000ull

struct entry {
	uint64_t id;
	char *name;
	uint8_t sha[32];
	uint64_t file_size;
	uint64_t import_ns; /* its last arrival: the import, or a later duplicate's */
	int64_t last_ns;   /* last packet (capfile.h: before 1970 negative), or import
			    * time without packets or with a last packet after it */
	bool late;         /* its last packet is stamped after its import */
	int policy;        /* index, or -1 */
	bool protected;
	bool doomed;
	bool local;        /* its object has a local copy (local or both) */
	bool remote;       /* and a remote one (remote or both) */
	size_t obj;        /* index into the object table */
};

struct object {
	uint64_t size;
	uint64_t refs_left;
	bool local;        /* has a local copy */
	bool remote;       /* has a remote copy */
	bool tiered;       /* in the plan's tier list */
};

struct planner {
	const struct retention_rules *rules;
	const struct retention_env *env;
	struct entry *e;
	size_t n, cap;
	struct object *obj;
	size_t nobj;
	uint64_t kept_bytes;
	uint64_t local_bytes;  /* local copies kept and not planned to tier */
	uint64_t local_freed;  /* local copies the deletions free */
	struct retention_plan *plan;
	size_t items_cap, tier_cap;
};

int retention_store_space(void *store, uint64_t *free_bytes, uint64_t *total_bytes)
{
	return store_space(store, free_bytes, total_bytes);
}

uint64_t retention_min_free(uint64_t min_free_bytes, unsigned min_free_percent,
			    uint64_t total_bytes)
{
	uint64_t pct = min_free_percent ? total_bytes / 100u * min_free_percent +
						  total_bytes % 100u * min_free_percent / 100u
					: 0;
	return pct > min_free_bytes ? pct : min_free_bytes;
}

/* "9d", "36h", "1.5d", "20790d": the largest unit with a value of at least 1. */
static void fmt_duration(uint64_t ns, char *buf, size_t len)
{
	static const struct { const char *u; uint64_t ns; } units[] = {
		{ "d", 86400 * NS_PER_S }, { "h", 3600 * NS_PER_S },
		{ "m", 60 * NS_PER_S },    { "s", NS_PER_S },
	};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ns >= units[i].ns || i + 1 == sizeof(units) / sizeof(units[0])) {
			/* Whole units from 100 on (never "2.079e+04d"), one decimal below. */
			double v = (double)ns / (double)units[i].ns;
			bool whole = v >= 100 || ns % units[i].ns == 0;
			snprintf(buf, len, whole ? "%.0f%s" : "%.1f%s", v, units[i].u);
			return;
		}
	}
}

void retention_fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 10240.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 "B", bytes);
	else /* %.4g would print 10150 as 1.015e+04 */
		snprintf(buf, len, v < 1000.0 ? "%.4g%s" : "%.0f%s", v, units[u]);
}

static bool has_tag(const struct capture_record *rec, const char *tag)
{
	for (size_t i = 0; i < rec->ntags; i++)
		if (strcmp(rec->tags[i], tag) == 0)
			return true;
	return false;
}

/* True when path is folder itself or below it. */
static bool under_folder(const char *path, const char *folder)
{
	size_t n = strlen(folder);
	while (n > 1 && folder[n - 1] == '/')
		n--;
	if (!path || strncmp(path, folder, n) != 0)
		return false;
	return path[n] == '/' || path[n] == '\0' || (n == 1 && folder[0] == '/');
}

/* A folder policy takes a capture only when every arrival of it came
 * through that folder: bytes also dropped elsewhere are not its alone. */
static bool policy_matches(const struct retention_policy *p, const struct capture_record *rec)
{
	for (size_t i = 0; i < p->ntags; i++)
		if (!has_tag(rec, p->tags[i]))
			return false;
	if (!p->folder)
		return true;
	for (size_t i = 0; i < rec->nalso; i++)
		if (!under_folder(rec->also[i].source_path, p->folder))
			return false;
	return under_folder(rec->source_path, p->folder);
}

static bool is_protected(const struct retention_rules *rules, const struct capture_record *rec)
{
	const char *protect = rules->protect_tag;
	return protect && *protect && has_tag(rec, protect);
}

/* The first policy matching rec, or -1. */
static int first_policy(const struct retention_rules *rules, const struct capture_record *rec)
{
	for (size_t i = 0; i < rules->n_policies; i++)
		if (policy_matches(&rules->policies[i], rec))
			return (int)i;
	return -1;
}

/* The time a capture ages from by last packet: its last packet, but
 * never later than its import (no capture holds a packet from after it
 * was imported: a later stamp is a wrong clock, and would keep the
 * capture young, and first in max_count, until that date); its import
 * without packets. *late: the last packet was later than the import. */
static int64_t last_packet_time(const struct capture_record *rec, bool *late)
{
	*late = rec->packets && rec->latest_ts_ns > 0 &&
		(uint64_t)rec->latest_ts_ns > rec->import_time_ns;
	return rec->packets && !*late ? rec->latest_ts_ns : (int64_t)rec->import_time_ns;
}

/* What the age of e under p counts from, for the reasons. */
static const char *age_basis(const struct retention_policy *p, const struct entry *e)
{
	if (!p->age_by_last_packet)
		return "import";
	return e->late ? "import: last packet stamped later" : "last packet";
}

static int collect(void *opaque, const struct capture_record *rec)
{
	struct planner *pl = opaque;
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 64;
		struct entry *e = realloc(pl->e, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		pl->e = e;
		pl->cap = cap;
	}
	struct entry *e = &pl->e[pl->n];
	*e = (struct entry){ .id = rec->id, .file_size = rec->file_size,
			     .import_ns = catalog_record_arrived_ns(rec), .policy = -1,
			     .local = rec->location != CATALOG_REMOTE,
			     .remote = rec->location != CATALOG_LOCAL };
	e->last_ns = last_packet_time(rec, &e->late);
	memcpy(e->sha, rec->sha256, 32);
	if (!(e->name = strdup(rec->name ? rec->name : "")))
		return -ENOMEM;
	pl->n++;
	e->protected = is_protected(pl->rules, rec);
	if (!e->protected)
		e->policy = first_policy(pl->rules, rec);
	return 0;
}

static int cmp_sha(const void *a, const void *b)
{
	const struct entry *const *x = a, *const *y = b;
	int c = memcmp((*x)->sha, (*y)->sha, 32);
	return c ? c : ((*x)->id > (*y)->id) - ((*x)->id < (*y)->id);
}

/* Oldest import first, then lowest id. */
static int cmp_oldest(const void *a, const void *b)
{
	const struct entry *const *x = a, *const *y = b;
	if ((*x)->import_ns != (*y)->import_ns)
		return (*x)->import_ns < (*y)->import_ns ? -1 : 1;
	return ((*x)->id > (*y)->id) - ((*x)->id < (*y)->id);
}

/* Groups the entries by object, counting references. */
static int build_objects(struct planner *pl)
{
	struct entry **by = calloc(pl->n ? pl->n : 1, sizeof(*by));
	pl->obj = calloc(pl->n ? pl->n : 1, sizeof(*pl->obj));
	if (!by || !pl->obj) {
		free(by);
		return -ENOMEM;
	}
	for (size_t i = 0; i < pl->n; i++)
		by[i] = &pl->e[i];
	if (pl->n > 1)
		qsort(by, pl->n, sizeof(*by), cmp_sha);
	for (size_t i = 0; i < pl->n; i++) {
		if (i == 0 || memcmp(by[i]->sha, by[i - 1]->sha, 32) != 0) {
			pl->obj[pl->nobj++] = (struct object){ .size = by[i]->file_size,
							       .local = by[i]->local,
							       .remote = by[i]->remote };
			pl->kept_bytes += by[i]->file_size;
			pl->local_bytes += by[i]->local ? by[i]->file_size : 0;
		}
		by[i]->obj = pl->nobj - 1;
		pl->obj[pl->nobj - 1].refs_left++;
	}
	free(by);
	return 0;
}

/* Adds e to the plan with its reason. */
static int doom(struct planner *pl, struct entry *e, const char *policy, const char *reason)
{
	struct retention_plan *plan = pl->plan;
	if (plan->n == pl->items_cap) {
		size_t cap = pl->items_cap ? pl->items_cap * 2 : 16;
		struct retention_item *items = realloc(plan->items, cap * sizeof(*items));
		if (!items)
			return -ENOMEM;
		plan->items = items;
		pl->items_cap = cap;
	}
	struct retention_item *it = &plan->items[plan->n];
	*it = (struct retention_item){ .id = e->id, .file_size = e->file_size, .rule = -1 };
	memcpy(it->sha256, e->sha, 32);
	snprintf(it->reason, sizeof(it->reason), "%s", reason);
	it->name = strdup(e->name);
	it->policy = strdup(policy);
	if (!it->name || !it->policy) {
		free(it->name);
		free(it->policy);
		return -ENOMEM;
	}
	plan->n++;
	e->doomed = true;
	struct object *o = &pl->obj[e->obj];
	if (--o->refs_left == 0) {
		it->bytes_freed = o->size;
		plan->bytes_freed += o->size;
		pl->kept_bytes -= o->size;
		if (o->local) {
			pl->local_freed += o->size;
			pl->local_bytes -= o->size;
		}
	}
	return 0;
}

/* Adds e's object to the plan's tier list. */
static int tier(struct planner *pl, struct entry *e, const char *policy, const char *reason)
{
	struct retention_plan *plan = pl->plan;
	struct object *o = &pl->obj[e->obj];
	if (plan->ntier == pl->tier_cap) {
		size_t cap = pl->tier_cap ? pl->tier_cap * 2 : 16;
		struct retention_tier_item *t = realloc(plan->tier, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		plan->tier = t;
		pl->tier_cap = cap;
	}
	struct retention_tier_item *t = &plan->tier[plan->ntier];
	*t = (struct retention_tier_item){ .id = e->id, .file_size = e->file_size };
	memcpy(t->sha256, e->sha, 32);
	snprintf(t->reason, sizeof(t->reason), "%s", reason);
	t->name = strdup(e->name);
	t->policy = strdup(policy);
	if (!t->name || !t->policy) {
		free(t->name);
		free(t->policy);
		return -ENOMEM;
	}
	plan->ntier++;
	plan->tier_bytes += o->size;
	pl->local_bytes -= o->size;
	o->tiered = true;
	return 0;
}

static int64_t policy_time(const struct retention_policy *p, const struct entry *e)
{
	return p->age_by_last_packet ? e->last_ns : (int64_t)e->import_ns;
}

/* now - t, exact for a t before 1970; 0 for a t in the future. */
static uint64_t age_of(uint64_t now, int64_t t)
{
	__int128 age = (__int128)now - t;
	if (age <= 0)
		return 0;
	return age > (__int128)UINT64_MAX ? UINT64_MAX : (uint64_t)age;
}

static bool over_age(const struct retention_policy *p, uint64_t now, int64_t t)
{
	return p->has_max_age && age_of(now, t) > p->max_age_ns;
}

/* Why policy p deletes the capture of rank (0 = newest) with age t, or
 * false when it keeps it. */
static bool policy_reason(const struct retention_policy *p, const struct entry *e,
			  uint64_t now, int64_t t, size_t rank, char *buf, size_t len)
{
	uint64_t age = age_of(now, t);
	char a[32], m[32];
	if (over_age(p, now, t)) {
		fmt_duration(age, a, sizeof(a));
		fmt_duration(p->max_age_ns, m, sizeof(m));
		snprintf(buf, len, "age %s > max_age %s (by %s)", a, m, age_basis(p, e));
		return true;
	}
	if (p->has_max_count && rank >= p->max_count) {
		snprintf(buf, len, "newest #%zu of the policy > max_count %" PRIu64, rank + 1,
			 p->max_count);
		return true;
	}
	return false;
}

struct by_time {
	struct entry *e;
	int64_t t;
};

static int cmp_newest(const void *a, const void *b)
{
	const struct by_time *x = a, *y = b;
	if (x->t != y->t)
		return x->t > y->t ? -1 : 1;
	return (x->e->id < y->e->id) - (x->e->id > y->e->id);
}

static int apply_policy(struct planner *pl, size_t pi)
{
	const struct retention_policy *p = &pl->rules->policies[pi];
	struct by_time *m = calloc(pl->n ? pl->n : 1, sizeof(*m));
	size_t nm = 0;
	int r = 0;
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < pl->n; i++)
		if (pl->e[i].policy == (int)pi)
			m[nm++] = (struct by_time){ &pl->e[i], policy_time(p, &pl->e[i]) };
	if (nm > 1)
		qsort(m, nm, sizeof(*m), cmp_newest);
	/* Oldest first, so the plan reads in deletion order. */
	for (size_t k = nm; r == 0 && k-- > 0;) {
		char reason[160];
		if (!policy_reason(p, m[k].e, pl->env->now_ns, m[k].t, k, reason, sizeof(reason)))
			continue;
		r = doom(pl, m[k].e, p->name ? p->name : "", reason);
		if (r == 0) {
			struct retention_item *it = &pl->plan->items[pl->plan->n - 1];
			it->rule = (int)pi;
			it->by_count = !over_age(p, pl->env->now_ns, m[k].t);
		}
	}
	free(m);
	return r;
}

/* Dooms the oldest unprotected captures while over() says so; local_only:
 * only those whose object has a local copy (min_free: removing one that
 * lives only in the object store frees no local byte, and loses its only
 * copy for nothing). With local_only, an object that has a remote copy as
 * well is freed by ending its move instead (retention_env.finish_moves),
 * which frees the same local bytes and keeps its captures. */
static int prune_oldest(struct planner *pl, struct entry **oldest,
			bool (*over)(struct planner *, char *, size_t), const char *policy,
			bool local_only)
{
	char reason[160];
	for (size_t i = 0; i < pl->n && over(pl, reason, sizeof(reason)); i++) {
		struct entry *e = oldest[i];
		/* oldest[0..n) is filled before the call; the analyzer does not see it. */
		struct object *o = &pl->obj[e->obj]; // NOLINT(clang-analyzer-core.NullDereference)
		if (e->protected || e->doomed || (local_only && (!o->local || o->tiered)))
			continue;
		int r;
		if (local_only && o->remote && pl->env->finish_moves) {
			r = tier(pl, e, policy, reason);
			pl->local_freed += o->size;
		} else {
			r = doom(pl, e, policy, reason);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static bool over_total(struct planner *pl, char *reason, size_t len)
{
	char a[32], b[32];
	if (pl->kept_bytes <= pl->rules->max_total_size)
		return false;
	retention_fmt_size(pl->kept_bytes, a, sizeof(a));
	retention_fmt_size(pl->rules->max_total_size, b, sizeof(b));
	snprintf(reason, len, "total size %s > max_total_size %s", a, b);
	return true;
}

static bool below_floor(struct planner *pl, char *reason, size_t len)
{
	struct retention_plan *plan = pl->plan;
	uint64_t free_now = plan->free_before + pl->local_freed;
	char a[32], b[32];
	if (free_now >= plan->min_free)
		return false;
	uint64_t wanted = pl->env->room_wanted;
	retention_fmt_size(free_now, a, sizeof(a));
	retention_fmt_size(plan->min_free - wanted, b, sizeof(b));
	if (!wanted) {
		snprintf(reason, len, "free %s < min_free %s", a, b);
		return true;
	}
	char c[32];
	retention_fmt_size(wanted, c, sizeof(c));
	snprintf(reason, len, "free %s < min_free %s and the %s an import waits for", a, b, c);
	return true;
}

/* Whether e is a candidate for tiering: kept, and its object local and
 * not in the list yet. */
static bool tierable(struct planner *pl, const struct entry *e)
{
	const struct object *o = &pl->obj[e->obj];
	return !e->doomed && o->local && !o->tiered && o->refs_left > 0;
}

/* Rule 5: tier_after by policy, then local_max_size, oldest first. */
static int tier_pass(struct planner *pl, struct entry **oldest)
{
	const struct retention_rules *ru = pl->rules;
	char reason[160], a[32], b[32];
	int r = 0;
	for (size_t i = 0; r == 0 && i < pl->n; i++) {
		struct entry *e = oldest[i];
		const struct retention_policy *p = e->policy >= 0 ? &ru->policies[e->policy] : NULL;
		if (!p || !p->has_tier_after || !tierable(pl, e))
			continue;
		uint64_t age = age_of(pl->plan->now_ns, policy_time(p, e));
		if (age <= p->tier_after_ns)
			continue;
		fmt_duration(age, a, sizeof(a));
		fmt_duration(p->tier_after_ns, b, sizeof(b));
		snprintf(reason, sizeof(reason), "age %s > tier_after %s (by %s)", a, b,
			 age_basis(p, e));
		r = tier(pl, e, p->name, reason);
	}
	for (size_t i = 0; r == 0 && ru->local_max_size && i < pl->n &&
			   pl->local_bytes > ru->local_max_size; i++) {
		if (!tierable(pl, oldest[i]))
			continue;
		retention_fmt_size(pl->local_bytes, a, sizeof(a));
		retention_fmt_size(ru->local_max_size, b, sizeof(b));
		snprintf(reason, sizeof(reason), "local size %s > local_max_size %s", a, b);
		r = tier(pl, oldest[i], "local_max_size", reason);
	}
	return r;
}

static int store_wide(struct planner *pl, struct errbuf *eb)
{
	const struct retention_rules *ru = pl->rules;
	struct retention_plan *plan = pl->plan;
	bool floor = pl->env->space && (ru->min_free_bytes || ru->min_free_percent);
	int r = 0;
	if (floor) {
		r = pl->env->space(pl->env->space_opaque, &plan->free_before, &plan->fs_total);
		if (r < 0)
			return errbuf_set(eb, r, "cannot read the free space: %s", strerror(-r));
		plan->min_free = retention_min_free(ru->min_free_bytes, ru->min_free_percent,
						    plan->fs_total) +
				 pl->env->room_wanted;
		plan->space = pl->env->space;
		plan->space_opaque = pl->env->space_opaque;
	}
	struct entry **oldest = calloc(pl->n ? pl->n : 1, sizeof(*oldest));
	if (!oldest)
		return -ENOMEM;
	for (size_t i = 0; i < pl->n; i++)
		oldest[i] = &pl->e[i];
	if (pl->n > 1)
		qsort(oldest, pl->n, sizeof(*oldest), cmp_oldest);
	if (ru->max_total_size)
		r = prune_oldest(pl, oldest, over_total, "max_total_size", false);
	if (r == 0 && floor) {
		r = prune_oldest(pl, oldest, below_floor, "min_free", true);
		plan->below_min_free_after =
			plan->free_before + pl->local_freed < plan->min_free - pl->env->room_wanted;
	}
	if (r == 0)
		r = tier_pass(pl, oldest);
	free(oldest);
	return r;
}

static void planner_free(struct planner *pl)
{
	for (size_t i = 0; i < pl->n; i++)
		free(pl->e[i].name);
	free(pl->e);
	free(pl->obj);
}

int retention_plan(struct catalog *cat, const struct retention_rules *rules,
		   const struct retention_env *env, struct retention_plan **out,
		   struct errbuf *eb)
{
	struct planner pl = { .rules = rules, .env = env };
	errbuf_clear(eb);
	pl.plan = calloc(1, sizeof(*pl.plan));
	if (!pl.plan)
		return -ENOMEM;
	pl.plan->rules = rules;
	pl.plan->now_ns = env->now_ns;
	int r = catalog_foreach(cat, NULL, collect, &pl);
	if (r < 0)
		errbuf_set(eb, r, "reading the catalog: %s", strerror(-r));
	if (r == 0)
		r = build_objects(&pl);
	for (size_t i = 0; r == 0 && i < rules->n_policies; i++)
		r = apply_policy(&pl, i);
	if (r == 0)
		r = store_wide(&pl, eb);
	planner_free(&pl);
	if (r < 0) {
		if (eb && !eb->msg[0])
			errbuf_set(eb, r, "retention plan: %s", strerror(-r));
		retention_plan_free(pl.plan);
		return r;
	}
	*out = pl.plan;
	return 0;
}

struct retention_plan *retention_plan_free(struct retention_plan *plan)
{
	if (!plan)
		return NULL;
	for (size_t i = 0; i < plan->n; i++) {
		free(plan->items[i].name);
		free(plan->items[i].policy);
	}
	free(plan->items);
	for (size_t i = 0; i < plan->ntier; i++) {
		free(plan->tier[i].name);
		free(plan->tier[i].policy);
	}
	free(plan->tier);
	free(plan);
	return NULL;
}

struct recheck {
	const struct retention_plan *plan;
	const struct retention_item *it;
};

/* Under the catalog lock, on the record as it is now: 0 when the rule
 * that chose it still deletes it, 1 (with the reason) when it keeps it.
 * A max_count rank is the plan's: only the record itself is looked at. */
static int still_due(void *opaque, const struct capture_record *rec, struct errbuf *eb)
{
	const struct recheck *rc = opaque;
	const struct retention_rules *rules = rc->plan->rules;
	const struct retention_item *it = rc->it;
	if (is_protected(rules, rec))
		return errbuf_set(eb, 1, "now tagged %s", rules->protect_tag);
	if (it->rule < 0)
		return 0;
	const struct retention_policy *p = &rules->policies[it->rule];
	if (first_policy(rules, rec) != it->rule)
		return errbuf_set(eb, 1, "no longer under policy %s", p->name ? p->name : "");
	bool late;
	int64_t t = p->age_by_last_packet ? last_packet_time(rec, &late)
					  : (int64_t)catalog_record_arrived_ns(rec);
	if (!it->by_count && !over_age(p, rc->plan->now_ns, t))
		return errbuf_set(eb, 1, "no longer over max_age");
	return 0;
}

/* Whether the floor an item was planned for (min_free) is met now: then it
 * is kept (eb says why), its room there without it. */
static bool floor_met(const struct retention_plan *plan, const struct retention_item *it,
		      struct errbuf *eb)
{
	uint64_t free_bytes = 0, total = 0;
	char a[32], b[32];
	if (it->rule >= 0 || strcmp(it->policy, "min_free") != 0 || !plan->space ||
	    plan->space(plan->space_opaque, &free_bytes, &total) < 0 ||
	    free_bytes < plan->min_free)
		return false;
	retention_fmt_size(free_bytes, a, sizeof(a));
	retention_fmt_size(plan->min_free, b, sizeof(b));
	errbuf_set(eb, CATALOG_KEPT, "free %s >= %s now", a, b);
	return true;
}

int retention_apply(struct catalog *cat, struct store *st, struct retention_plan *plan)
{
	int first = 0;
	plan->bytes_freed = 0;
	for (size_t i = 0; i < plan->n; i++) {
		struct retention_item *it = &plan->items[i];
		struct recheck rc = { plan, it };
		struct errbuf eb = { { 0 } };
		uint8_t sha[32];
		bool unlink_object = false;
		if (floor_met(plan, it, &eb)) {
			it->result = CATALOG_KEPT;
			it->bytes_freed = 0;
			memcpy(it->error, eb.msg, sizeof(it->error));
			continue;
		}
		it->result = catalog_remove_if(cat, it->id, plan->rules ? still_due : NULL, &rc,
					       &unlink_object, sha, &eb);
		it->bytes_freed = it->result == 0 && unlink_object ? it->file_size : 0;
		plan->bytes_freed += it->bytes_freed;
		/* With the release hook the catalog unlinked it under its lock;
		 * unlinking after the lock could remove the file of a capture
		 * an import committed meanwhile. */
		if (it->result == 0 && unlink_object && !catalog_releases_objects(cat)) {
			int r = store_object_remove(st, sha);
			/* -ENOENT: the catalog's release hook removed it already. */
			if (r < 0 && r != -ENOENT)
				errbuf_set(&eb, r, "object not removed: %s (removed at the next start)",
					   strerror(-r));
		}
		if (it->result < 0 && !eb.msg[0])
			errbuf_set(&eb, it->result, "%s", strerror(-it->result));
		memcpy(it->error, eb.msg, sizeof(it->error));
		if (it->result < 0 && !first)
			first = it->result;
	}
	return first;
}

int retention_check_min_free(struct store *st, uint64_t min_free_bytes,
			     unsigned min_free_percent, struct errbuf *eb)
{
	uint64_t free_bytes = 0, total = 0;
	char a[32], b[32];
	if (!min_free_bytes && !min_free_percent)
		return 0;
	int r = store_space(st, &free_bytes, &total);
	if (r < 0)
		return errbuf_set(eb, r, "cannot read the free space of %s: %s", store_root(st),
				  strerror(-r));
	uint64_t floor = retention_min_free(min_free_bytes, min_free_percent, total);
	if (free_bytes >= floor)
		return 0;
	retention_fmt_size(free_bytes, a, sizeof(a));
	retention_fmt_size(floor, b, sizeof(b));
	return errbuf_set(eb, -ENOSPC, "store below min_free (%s free < %s): import refused", a, b);
}

json_t *retention_plan_to_json(const struct retention_plan *plan, bool dry_run)
{
	json_t *items = json_array();
	char hex[65];
	for (size_t i = 0; i < plan->n; i++) {
		const struct retention_item *it = &plan->items[i];
		sha256_hex(it->sha256, hex);
		json_t *o = json_pack("{sIsosssssssIsI}", "id", (json_int_t)it->id, "name",
				      catalog_json_text(it->name),
				      "sha256", hex, "policy", it->policy, "reason", it->reason,
				      "file_size", (json_int_t)it->file_size, "bytes_freed",
				      (json_int_t)it->bytes_freed);
		if (!dry_run)
			json_object_set_new(o, "deleted", json_boolean(it->result == 0));
		if (!dry_run && it->result == CATALOG_KEPT)
			json_object_set_new(o, "kept", catalog_json_text(it->error));
		else if (it->error[0])
			json_object_set_new(o, "error", catalog_json_text(it->error));
		json_array_append_new(items, o);
	}
	json_t *tier_list = json_array();
	for (size_t i = 0; i < plan->ntier; i++) {
		const struct retention_tier_item *t = &plan->tier[i];
		sha256_hex(t->sha256, hex);
		json_array_append_new(tier_list, json_pack("{sIsosssssssI}", "id", (json_int_t)t->id,
						      "name", catalog_json_text(t->name), "sha256",
						      hex, "policy", t->policy, "reason", t->reason,
						      "file_size", (json_int_t)t->file_size));
	}
	return json_pack("{sbsosIsbsosI}", "dry_run", dry_run, "captures", items, "bytes_freed",
			 (json_int_t)plan->bytes_freed, "below_min_free", plan->below_min_free_after,
			 "tier", tier_list, "tier_bytes", (json_int_t)plan->tier_bytes);
}
