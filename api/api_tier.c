/*
 * api_tier.c - POST /v1/tier (move captures' objects to the object store
 * now) and the tier mover's metrics.
 *
 * Body: {"captures": ["ID" | "SHA256 prefix", ...], "dry_run": bool}.
 * A dry run says what would move, also without an object store. The
 * moves run one after another, between the daemon's own (the hook
 * takes the mover's lock), without retries: the reply says how each went
 * and `capvault tier` exits 1 when one failed. Scope: delete, as for
 * prune: moving a capture off the local disk is a retention decision, and
 * a remote capture answers queries only while the store answers.
 */
#include <errno.h>
#include <string.h>

#include "api_priv.h"
#include "catalog.h"
#include "objstore.h"
#include "store.h"
#include "tier.h"
#include "vault.h"

#define TIER_ARGS_MAX 1024

/* One capture named in the request: its entry in the reply. */
static json_t *tier_one(struct api_call *c, const char *arg, bool dry_run, uint64_t *tiered,
			uint64_t *bytes_total, bool *failed)
{
	struct api_server *api = c->api;
	struct capture_record *rec = NULL;
	struct errbuf eb = { { 0 } };
	char hex[65];
	int r = catalog_lookup(vault_catalog(api->vault), arg, &rec, &eb);
	json_t *o = json_pack("{so}", "capture", catalog_json_text(arg));

	if (r < 0) {
		*failed = true;
		json_object_set_new(o, "result", json_string("error"));
		/* Escaped: a message may quote bytes that are not UTF-8. */
		json_object_set_new(o, "error", catalog_json_text(eb.msg[0] ? eb.msg :
								  r == -ENOENT ? "no such capture" :
								  strerror(-r)));
		return o;
	}
	enum catalog_location loc = CATALOG_LOCAL;
	catalog_object_location(vault_catalog(api->vault), rec->sha256, &loc);
	sha256_hex(rec->sha256, hex);
	json_object_set_new(o, "id", json_integer((json_int_t)rec->id));
	json_object_set_new(o, "name", catalog_json_text(rec->name));
	json_object_set_new(o, "sha256", json_string(hex));
	json_object_set_new(o, "size", json_integer((json_int_t)rec->file_size));
	json_object_set_new(o, "location_before", json_string(catalog_location_name(loc)));
	const char *result = loc == CATALOG_REMOTE ? "already_remote" : "would_tier";
	uint64_t bytes = 0;
	if (!dry_run && loc != CATALOG_REMOTE) {
		r = api->hooks.tier(api->hooks.opaque, rec->sha256, &bytes, &eb);
		result = r == 0 ? "tiered" : r == TIER_ALREADY ? "already_remote" : "error";
		if (r == 0) {
			(*tiered)++;
			*bytes_total += bytes;
			api_audit(c, "tier", rec, (char *)NULL);
		}
		if (r < 0) {
			*failed = true;
			json_object_set_new(o, "error", catalog_json_text(eb.msg[0] ? eb.msg :
									  strerror(-r)));
		}
		catalog_object_location(vault_catalog(api->vault), rec->sha256, &loc);
	}
	json_object_set_new(o, "location", json_string(catalog_location_name(loc)));
	json_object_set_new(o, "result", json_string(result));
	capture_record_free(rec);
	return o;
}

static void tier_done(struct api_call *c, uint64_t unused, json_t *doc)
{
	(void)unused;
	const json_t *caps = json_object_get(doc, "captures");
	const json_t *dry = json_object_get(doc, "dry_run");
	if (!json_is_array(caps) || json_array_size(caps) == 0)
		return api_error(c, 422, "bad_field", "captures: a non-empty array of capture ids "
				 "or sha256 prefixes");
	if (json_array_size(caps) > TIER_ARGS_MAX)
		return api_error(c, 422, "bad_field", "captures: at most %d per request",
				 TIER_ARGS_MAX);
	if (dry && !json_is_boolean(dry))
		return api_error(c, 422, "bad_field", "dry_run is a boolean");
	bool dry_run = json_is_true(dry), failed = false;
	struct api_tier_stats st = { 0 };
	if (c->api->hooks.tier_stats)
		c->api->hooks.tier_stats(c->api->hooks.opaque, &st);
	if (!dry_run && (!c->api->hooks.tier || !st.enabled))
		return api_error(c, 409, "no_object_store",
				 "no object store is configured (object_store: in the daemon's "
				 "configuration)");
	size_t i;
	json_t *v;
	json_array_foreach(caps, i, v) {
		if (!json_is_string(v))
			return api_error(c, 422, "bad_field", "captures[%zu]: a string", i);
	}
	uint64_t tiered = 0, bytes = 0;
	json_t *list = json_array();
	json_array_foreach(caps, i, v) {
		/* A stop does not wait for the rest of a long batch: each move is
		 * whole or not begun, and the next request asks again. */
		if (atomic_load(&c->api->stopping) && !dry_run) {
			json_array_append_new(list, json_pack("{sosssss}", "capture",
							      catalog_json_text(json_string_value(v)),
							      "result", "error", "error",
							      "capvaultd is stopping: not moved"));
			failed = true;
			continue;
		}
		json_array_append_new(list, tier_one(c, json_string_value(v), dry_run, &tiered,
						     &bytes, &failed));
	}
	api_json(c, 200, json_pack("{sbsosIsIsb}", "dry_run", dry_run, "objects", list, "tiered",
				   (json_int_t)tiered, "bytes", (json_int_t)bytes, "failed", failed));
}

void api_tier(struct api_call *c)
{
	api_read_json(c, 0, tier_done);
}

/* The object store's state (objstore.h): one series per state, 1 for the
 * current one (a gauge per state, as Prometheus writes an enum; all 0
 * without a store, so rules need not know whether there is one); with a
 * store, up and the latest exchange's time. */
static void store_metrics(FILE *f, const struct api_tier_stats *s)
{
	const char *now = s->enabled ? s->store_state : NULL;

	fprintf(f, "# HELP capvault_tier_store_state The object store's state: 1 for the current "
		   "one, all 0 without an object store.\n"
		   "# TYPE capvault_tier_store_state gauge\n");
	for (int i = 0; i < OBJSTORE_STATES; i++) {
		const char *name = objstore_state_name((enum objstore_state)i);
		fprintf(f, "capvault_tier_store_state{state=\"%s\"} %d\n", name,
			now && !strcmp(name, now));
	}
	if (!now)
		return;
	api_metric(f, "tier_store_up", "gauge",
		   "1 when the object store's latest answer was good (state ok).", s->store_up);
	api_metric(f, "tier_store_checked_timestamp_seconds", "gauge",
		   "Unix time of the latest exchange with the object store (0: none yet).",
		   s->store_checked_ns / 1000000000u);
}

void api_tier_metrics(FILE *f, struct api_server *api, const struct catalog_totals *totals)
{
	static const char *const kinds[API_TIER_ERRORS] = {
		[API_TIER_TIMEOUT] = "timeout",     [API_TIER_REFUSED] = "refused",
		[API_TIER_FORBIDDEN] = "forbidden", [API_TIER_SERVER] = "server",
		[API_TIER_HASH] = "hash_mismatch",  [API_TIER_OTHER] = "other",
	};
	struct api_tier_stats s = { 0 };
	const struct catalog_totals t = *totals;

	if (!api->hooks.tier_stats)
		return;
	api->hooks.tier_stats(api->hooks.opaque, &s);
	api_metric(f, "tier_enabled", "gauge", "1 when an object store is configured.", s.enabled);
	api_metric(f, "remote_objects", "gauge", "Objects in the object store (remote or both).",
	       t.remote_objects);
	api_metric(f, "remote_bytes", "gauge", "Bytes of objects in the object store.", t.remote_bytes);
	api_metric(f, "local_objects", "gauge", "Objects with a local copy (local or both).",
	       t.local_objects);
	api_metric(f, "local_bytes", "gauge", "Bytes of objects with a local copy.", t.local_bytes);
	api_metric(f, "tier_queue_length", "gauge", "Moves and remote removals waiting.",
	       s.queue_length);
	api_metric(f, "tier_queue_bytes", "gauge", "Bytes of the moves waiting.", s.queue_bytes);
	api_metric(f, "tiered_objects_total", "counter", "Objects moved to the object store.",
	       s.tiered_objects);
	api_metric(f, "tiered_bytes_total", "counter", "Bytes moved to the object store.",
	       s.tiered_bytes);
	api_metric(f, "tier_removed_objects_total", "counter",
	       "Remote objects removed once no capture referenced them.", s.removed_objects);
	api_metric(f, "tier_retries_total", "counter", "Moves and removals retried after a failure.",
	       s.retries);
	api_metric(f, "tier_dropped_total", "counter", "Moves and removals not queued: queue full.",
	       s.dropped);
	api_metric_by(f, "tier_errors_total", "Failed moves and removals, by kind.", "kind", kinds,
		      s.errors, API_TIER_ERRORS);
	api_histogram_counts(f, "tier_put_duration_seconds", "Time to store and confirm one object.",
			     api_tier_latency_bounds, s.put_lat, API_TIER_LAT_BUCKETS,
			     (double)s.put_lat_sum_us / 1e6);	store_metrics(f, &s);
}
