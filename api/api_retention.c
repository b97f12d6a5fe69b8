/*
 * api_retention.c - POST /v1/prune and GET /v1/retention.
 *
 * The daemon owns the retention rules and their timer; these handlers
 * reach them through the hooks (api.h), so a prune through the API runs
 * under the same lock as the daemon's scheduled runs and logs every
 * deletion the same way. POST /v1/prune answers the same document as
 * `capvault prune --json` (tools/cli_maint.c): api.sh compares the two.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api_priv.h"
#include "catalog.h"
#include "cleanup.h"
#include "retention.h"
#include "store.h"
#include "vault.h"

#define NS_PER_S 1000000000u

/* "1", "true", "yes" (any case) are true; "0", "false", "no", "" false. */
static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes" }, *const no[] = { "0", "false", "no", "" };
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
		if (!strcasecmp(s, yes[i]))
			return *out = true, 0;
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		if (!strcasecmp(s, no[i]))
			return *out = false, 0;
	return -EINVAL;
}

/* One audit line for the run, and one per capture it deleted (the
 * daemon's own lines say why, these say who asked). */
static void audit_prune(struct api_call *c, const struct retention_plan *plan, bool dry_run)
{
	char count[24];
	snprintf(count, sizeof(count), "%zu", plan->n);
	api_audit(c, "prune", NULL, "DRY_RUN", dry_run ? "yes" : "no", "CAPTURES", count, (char *)NULL);
	for (size_t i = 0; !dry_run && i < plan->n; i++) {
		const struct retention_item *it = &plan->items[i];
		if (it->result != 0)
			continue;
		struct capture_record rec = { .id = it->id, .name = it->name };
		memcpy(rec.sha256, it->sha256, sizeof(rec.sha256));
		api_audit(c, "prune-delete", &rec, "POLICY", it->policy, (char *)NULL);
	}
}

static void prune_done(struct api_call *c, uint64_t unused, json_t *doc)
{
	(void)unused;
	struct api_server *api = c->api;
	bool dry_run = false;
	const char *q = http_req_arg(c->r, "dry_run");
	json_t *b = json_object_get(doc, "dry_run");
	if (q && parse_bool(q, &dry_run) < 0)
		return api_error(c, 400, "bad_request", "dry_run: expected 1/0, true/false or yes/no");
	if (b && !json_is_boolean(b))
		return api_error(c, 422, "bad_field", "dry_run is a boolean");
	if (b)
		dry_run = dry_run || json_is_true(b);
	struct retention_plan *plan = NULL;
	struct errbuf eb = { { 0 } };
	int err = api->hooks.prune(api->hooks.opaque, dry_run, &plan, &eb);
	if (!plan)
		return api_error_errno(c, err ? err : -EIO, "prune", eb.msg);
	audit_prune(c, plan, dry_run);
	/* A deletion that failed is in the list with its error: still 200,
	 * as the CLI prints the list and exits 1. */
	api_json(c, 200, retention_plan_to_json(plan, dry_run));
	retention_plan_free(plan);
}

void api_prune(struct api_call *c)
{
	if (!c->api->hooks.prune)
		return api_error(c, 501, "not_implemented", "this server does not run retention");
	api_read_json(c, 0, prune_done);
}

static json_t *time_json(uint64_t ns)
{
	time_t secs = (time_t)(ns / NS_PER_S);
	struct tm tm;
	char buf[32];
	if (!gmtime_r(&secs, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return json_null();
	return json_string(buf);
}

static json_t *policy_json(const struct retention_policy *p)
{
	json_t *tags = json_array();
	for (size_t i = 0; i < p->ntags; i++)
		json_array_append_new(tags, json_string(p->tags[i]));
	json_t *o = json_pack("{sssoso}", "name", p->name, "tags", tags, "folder",
			      catalog_json_text(p->folder));
	if (!o)
		return NULL;
	json_object_set_new(o, "max_age_seconds",
			    p->has_max_age ? json_integer((json_int_t)(p->max_age_ns / NS_PER_S)) :
					     json_null());
	json_object_set_new(o, "age_by", json_string(p->age_by_last_packet ? "last_packet" : "import"));
	json_object_set_new(o, "max_count",
			    p->has_max_count ? json_integer((json_int_t)p->max_count) : json_null());
	return o;
}

struct describe_ctx {
	struct api_server *api;
	json_t *out;
};

static void describe(void *ctx, const struct retention_rules *r, uint64_t interval_ns,
		     uint64_t next_run_ns)
{
	struct describe_ctx *d = ctx;
	json_t *policies = json_array();
	for (size_t i = 0; i < r->n_policies; i++)
		json_array_append_new(policies, policy_json(&r->policies[i]));
	uint64_t free_bytes = 0, total = 0;
	bool have_space = store_space(vault_store(d->api->vault), &free_bytes, &total) == 0;
	json_t *min_free = json_pack("{sIsI}", "bytes", (json_int_t)r->min_free_bytes, "percent",
				     (json_int_t)r->min_free_percent);
	if (have_space)
		json_object_set_new(min_free, "effective_bytes",
				    json_integer((json_int_t)retention_min_free(
					    r->min_free_bytes, r->min_free_percent, total)));
	d->out = json_pack("{sIsosIsososIso}", "interval_seconds",
			   (json_int_t)(interval_ns / NS_PER_S), "next_run", time_json(next_run_ns),
			   "next_run_unix", (json_int_t)(next_run_ns / NS_PER_S), "protect_tag",
			   r->protect_tag ? json_string(r->protect_tag) : json_null(), "min_free",
			   min_free, "max_total_size", (json_int_t)r->max_total_size, "policies",
			   policies);
	if (have_space)
		json_object_set_new(d->out, "free_bytes", json_integer((json_int_t)free_bytes));
}

void api_retention(struct api_call *c)
{
	struct api_server *api = c->api;
	if (!api->hooks.retention)
		return api_error(c, 501, "not_implemented", "this server does not run retention");
	struct describe_ctx d = { .api = api };
	api->hooks.retention(api->hooks.opaque, describe, &d);
	if (!d.out)
		return api_error_errno(c, -ENOMEM, "retention", NULL);
	api_json(c, 200, d.out);
}
