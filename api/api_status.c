/*
 * api_status.c - GET /v1/imports (the watched folders with their watch
 * mode and counters, the queue, recent failures) and GET /v1/status (what
 * `capvault status` prints: version, uptime, the settings a reload
 * changed that need a restart, the store and its space, captures and
 * bytes, the imports, and the scrub).
 *
 * Without a daemon behind the server (hooks not set), the imports are
 * empty lists and zero counters.
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "api_priv.h"
#include "catalog.h"
#include "config.h"
#include "monoclock.h"
#include "store.h"
#include "vault.h"

#define FAILURES_SHOWN 16
#define RETRYING_SHOWN 16

static json_t *time_json(uint64_t ns)
{
	time_t secs = (time_t)(ns / 1000000000u);
	struct tm tm;
	char buf[32];
	if (!gmtime_r(&secs, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return json_null();
	return json_string(buf);
}

static void folder_json(void *ctx, const struct api_folder_info *f)
{
	json_array_append_new(
		ctx, json_pack("{sosssssbsIsIsIsIsIsIsI}", "path", catalog_json_text(f->path), "watch", f->watch,
			       "after_import", f->after_import, "recursive", f->recursive, "seen",
			       (json_int_t)f->seen, "imported", (json_int_t)f->imported,
			       "duplicates", (json_int_t)f->duplicates, "failed",
			       (json_int_t)f->failed, "retried", (json_int_t)f->retried, "bytes",
			       (json_int_t)f->bytes, "packets", (json_int_t)f->packets));
}

/* The files waiting for a retry after a transient failure. */
static json_t *retrying_json(struct api_server *api)
{
	struct api_import_retry r[RETRYING_SHOWN];
	size_t n = api->hooks.import_retrying ?
			   api->hooks.import_retrying(api->hooks.opaque, r, RETRYING_SHOWN) :
			   0;
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		/* Names are bytes: escaped (textesc.h), as in recent_failures; a
		 * name that is not UTF-8 made json_pack fail and the entry vanish. */
		json_array_append_new(a, json_pack("{sososI}", "path", catalog_json_text(r[i].path),
						   "error", catalog_json_text(r[i].error), "attempts",
						   (json_int_t)r[i].attempts));
	return a;
}

static json_t *imports_json(struct api_server *api)
{
	struct api_import_stats st = { 0 };
	struct api_import_failure fails[FAILURES_SHOWN];
	size_t nfails = 0;
	json_t *folders = json_array(), *failures = json_array();
	if (api->hooks.import_stats)
		api->hooks.import_stats(api->hooks.opaque, &st);
	if (api->hooks.import_folders)
		api->hooks.import_folders(api->hooks.opaque, folder_json, folders);
	if (api->hooks.import_failures)
		nfails = api->hooks.import_failures(api->hooks.opaque, fails, FAILURES_SHOWN);
	for (size_t i = 0; i < nfails; i++)
		/* File names are bytes: shown escaped (textesc.h), never dropped. */
		json_array_append_new(failures, json_pack("{sososo}", "path",
							  catalog_json_text(fails[i].path), "error",
							  catalog_json_text(fails[i].error), "time",
							  time_json(fails[i].time_ns)));
	return json_pack("{sosIsIsos{sIsIsIsIsIsIsI}so}", "folders", folders, "queue_length",
			 (json_int_t)st.queue_length, "retrying_count", (json_int_t)st.retrying,
			 "retrying", retrying_json(api), "totals", "seen", (json_int_t)st.seen,
			 "imported", (json_int_t)st.imported, "duplicates",
			 (json_int_t)st.duplicates, "failed", (json_int_t)st.failed, "retried",
			 (json_int_t)st.retried, "bytes", (json_int_t)st.bytes, "packets",
			 (json_int_t)st.packets, "recent_failures", failures);
}

void api_imports(struct api_call *c)
{
	api_json(c, 200, imports_json(c->api));
}

/* The scrub's state; null without a daemon behind the server. */
static json_t *scrub_json(struct api_server *api)
{
	struct api_scrub_stats sc = { 0 };
	if (!api->hooks.scrub_stats)
		return json_null();
	api->hooks.scrub_stats(api->hooks.opaque, &sc);
	return json_pack("{sbsbsososIsIsI}", "enabled", sc.enabled, "running", sc.running,
			 "last_run", sc.last_end_ns ? time_json(sc.last_end_ns) : json_null(),
			 "next_run", sc.next_ns ? time_json(sc.next_ns) : json_null(),
			 "last_objects", (json_int_t)sc.last_objects, "corrupt_objects",
			 (json_int_t)sc.corrupt, "quarantined", (json_int_t)sc.quarantined_total);
}

/* The object store's state: null without one. */
static json_t *store_json(const struct api_tier_stats *ts)
{
	if (!ts->enabled || !ts->store_state)
		return json_null();
	json_t *error = ts->store_error[0] ? json_string(ts->store_error) : json_null();
	if (!error) /* not UTF-8: a path of the local backend, say */
		error = json_string("(the message is not UTF-8)");
	return json_pack("{sssososo}", "state", ts->store_state, "error", error, "since",
			 ts->store_since_ns ? time_json(ts->store_since_ns) : json_null(), "checked",
			 ts->store_checked_ns ? time_json(ts->store_checked_ns) : json_null());
}

/* The object tier: where the objects are and the mover's queue; null
 * without a daemon behind the server, enabled false without a store. */
static json_t *tier_json(struct api_server *api, const struct catalog_totals *t)
{
	struct api_tier_stats ts = { 0 };
	if (!api->hooks.tier_stats)
		return json_null();
	api->hooks.tier_stats(api->hooks.opaque, &ts);
	uint64_t errors = 0;
	for (size_t i = 0; i < API_TIER_ERRORS; i++)
		errors += ts.errors[i];
	return json_pack("{sbsIsIsIsIsIsIsIsIso}", "enabled", ts.enabled, "remote_objects",
			 (json_int_t)t->remote_objects, "remote_bytes", (json_int_t)t->remote_bytes,
			 "local_objects", (json_int_t)t->local_objects, "local_bytes",
			 (json_int_t)t->local_bytes, "queue_length", (json_int_t)ts.queue_length,
			 "queue_bytes", (json_int_t)ts.queue_bytes, "tiered_objects",
			 (json_int_t)ts.tiered_objects, "errors", (json_int_t)errors, "store",
			 store_json(&ts));
}

void api_status(struct api_call *c)
{
	struct api_server *api = c->api;
	struct catalog_totals t = { 0 };
	uint64_t free_bytes = 0, fs_bytes = 0;
	int err = catalog_totals(vault_catalog(api->vault), &t);
	if (!err)
		err = store_space(vault_store(api->vault), &free_bytes, &fs_bytes);
	if (err)
		return api_error_errno(c, err, "status", NULL);
	json_t *o = json_pack(
		"{sss{sosIso}s{sssIsI}sIsIsIso}", "version", CAPVAULT_VERSION, "daemon", "started",
		time_json(api->started_ns), "uptime_s",
		(json_int_t)((mono_ns() - api->started_mono_ns) / 1000000000u), "restart_needed",
		api_restart_needed(api), "store", "path",
		store_root(vault_store(api->vault)), "free_bytes", (json_int_t)free_bytes,
		"fs_total_bytes", (json_int_t)fs_bytes, "captures", (json_int_t)t.captures,
		"object_bytes", (json_int_t)t.object_bytes, "packets", (json_int_t)t.packets,
		"imports", imports_json(api));
	json_object_set_new(o, "scrub", scrub_json(api));
	json_object_set_new(o, "tier", tier_json(api, &t));
	api_json(c, 200, o);
}
