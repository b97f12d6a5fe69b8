/*
 * cli_maint.c - `capvault init`, `rm`, `tag`, `prune`, `fsck`, `backup`
 * and `restore`: the commands that make, change or check a store as a
 * whole. init is the only command that creates a store.
 *
 * rm, tag, prune and backup go through capvaultd when it runs (DELETE and
 * PATCH /v1/captures/ID, POST /v1/prune: the daemon's rules in force,
 * POST /v1/backup: the daemon copies its own store); fsck opens the store
 * itself (offline: not while capvaultd holds it), and restore refuses a
 * store a daemon serves. prune lists exactly what it deletes (or, with
 * --dry-run, would delete) and why; fsck exits 0 when the store is clean
 * (or every problem was repaired) and 1 when problems remain.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_remote.h"
#include "fsck.h"
#include "objcache.h"
#include "retention_config.h"
#include "ring.h"
#include "store.h"
#include "tier.h"
#include "vault.h"
#include "wallclock.h"
#include "textesc.h"

struct maint_args {
	const char *store;
	const char *config;
	bool json, dry_run, repair, verify, remote;
	bool stop_at_operand; /* tag: "-old" after the id is an operand */
	const char *allowed;  /* the option letters this command takes */
	int first_arg;
};

static int maint_args_parse(int argc, char **argv, struct maint_args *a)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "repair", no_argument, NULL, 'r' },
		{ "verify", no_argument, NULL, 'V' },
		{ "remote", no_argument, NULL, 'R' },
		{ 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, a->stop_at_operand ? "+s:c:jnr" : "s:c:jnr", opts,
				NULL)) != -1) {
		/* Another command's option is refused, never ignored: rm
		 * --dry-run must not remove. */
		if (c != '?' && !strchr(a->allowed, c)) {
			size_t k = 0;
			while (opts[k].val != c)
				k++;
			fprintf(stderr, "capvault: --%s is not an option of %s\n", opts[k].name,
				argv[0]);
			return -EINVAL;
		}
		switch (c) {
		case 's': a->store = optarg; break;
		case 'c': a->config = optarg; break;
		case 'j': a->json = true; break;
		case 'n': a->dry_run = true; break;
		case 'r': a->repair = true; break;
		case 'V': a->verify = true; break;
		case 'R': a->remote = true; break;
		default: return -EINVAL;
		}
	}
	a->first_arg = optind;
	return 0;
}

static int usage_error(const char *usage)
{
	fprintf(stderr, "usage: capvault %s\n", usage);
	return CLI_EXIT_USAGE;
}

/* The object store of the store open here (one at a time): removing the
 * last capture of a remote object removes the remote copy too. */
static struct cli_objstore *maint_objstore;
/* Whether the configuration named one that could not be opened (its
 * keys, say): said then, not taken for none configured. */
static bool maint_objstore_failed;

static struct vault *open_store_with(const char *store, unsigned flags,
				     const struct config *cfg)
{
	struct vault *v = NULL;
	struct errbuf eb = { { 0 } };
	if (vault_open_flags(&v, cli_store_path(store), flags, &eb) < 0) {
		fprintf(stderr, "capvault: %s\n", eb.msg);
		return NULL;
	}
	maint_objstore_failed = cli_objstore_open(&maint_objstore, cfg, &eb) < 0;
	if (maint_objstore_failed)
		fprintf(stderr, "capvault: object store: %s (the removal of a remote copy "
			"waits for capvaultd's next start)\n", eb.msg);
	vault_set_objstore(v, cli_objstore(maint_objstore));
	return v;
}

static struct vault *open_store(const char *store, unsigned flags)
{
	return open_store_with(store, flags, NULL);
}

static void close_store(struct vault *v)
{
	vault_close(v);
	cli_objstore_close(maint_objstore);
	maint_objstore = NULL;
}

/* ---- init ---- */

int cli_init(int argc, char **argv, const char *usage)
{
	struct maint_args a = { .allowed = "s" };
	if (maint_args_parse(argc, argv, &a) < 0 || a.first_arg != argc)
		return usage_error(usage);
	const char *store = cli_store_path(a.store);
	struct errbuf eb = { { 0 } };
	int r = vault_create(store, &eb);
	if (r < 0) {
		fprintf(stderr, "capvault: init: %s\n", eb.msg[0] ? eb.msg : strerror(-r));
		return CLI_EXIT_FAILED;
	}
	printf(r == VAULT_EXISTS ? "%s: already a capvault store\n" : "created a capvault store in %s\n",
	       store);
	return CLI_EXIT_OK;
}

/* ---- rm ---- */

static char *capture_target(const char *arg)
{
	char *target = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&target, &len);
	if (!f)
		return NULL;
	fputs("/v1/captures/", f);
	httpc_put_segment(f, arg);
	if (fclose(f) != 0) {
		free(target);
		return NULL;
	}
	return target;
}

/* The API's error message as the local path words it. */
static const char *remote_why(json_t *reply, int status)
{
	const char *m = cli_remote_message(reply, status);
	if (status == 404 && !json_object_get(reply, "message"))
		return "no such capture";
	return !strncmp(m, "capture: ", 9) ? m + 9 : m;
}

/* One removed capture as rm --json lists it. */
static int removed_add(json_t *list, uint64_t id, json_t *name, uint64_t freed)
{
	json_t *o = json_pack("{sIsOsI}", "id", (json_int_t)id, "name", name ? name : json_null(),
			      "bytes_freed", (json_int_t)freed);
	return o ? json_array_append_new(list, o) : -1;
}

/* The removed captures (--json) or nothing; a JSON array printed whole at the end. */
static void removed_print(json_t *list)
{
	if (!list)
		return;
	json_dumpf(list, stdout, JSON_COMPACT);
	putchar('\n');
}

static int rm_remote(struct cli_remote *r, char **args, int n, json_t *list)
{
	int rc = CLI_EXIT_OK;
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *target = capture_target(args[i]);
		json_t *reply = NULL;
		int status = target ? cli_remote_json(r, "DELETE", target, NULL, &reply) : -1;
		_cleanup_free_ char *name =
			cli_shown_json(json_string_value(json_object_get(reply, "name")));
		uint64_t id = (uint64_t)json_integer_value(json_object_get(reply, "deleted"));
		uint64_t freed = (uint64_t)json_integer_value(json_object_get(reply, "freed_bytes"));
		if (status == 200 && list) {
			if (removed_add(list, id, json_object_get(reply, "name"), freed))
				rc = CLI_EXIT_FAILED;
		} else if (status == 200) {
			printf("removed %" PRIu64 " %s (%" PRIu64 " bytes freed)\n", id,
			       name ? name : "?", freed);
		} else if (status > 0) {
			fprintf(stderr, "capvault: %s: %s\n", args[i], remote_why(reply, status));
		}
		if (status != 200)
			rc = CLI_EXIT_FAILED;
		json_decref(reply);
	}
	return rc;
}

/* Removes one capture from the open store and reports it (text or into list). */
static int rm_local(struct vault *v, const char *arg, json_t *list)
{
	struct capture_record *rec = NULL;
	struct errbuf eb = { { 0 } };
	uint64_t freed = 0;
	int err = catalog_lookup(vault_catalog(v), arg, &rec, &eb);
	if (!err)
		err = vault_remove(v, rec->id, &freed, &eb);
	if (err) {
		fprintf(stderr, "capvault: %s: %s\n", arg, eb.msg[0] ? eb.msg : strerror(-err));
		capture_record_free(rec);
		return CLI_EXIT_FAILED;
	}
	char freed_text[24];
	snprintf(freed_text, sizeof(freed_text), "%" PRIu64, freed);
	cli_audit("delete", rec, "FREED_BYTES", freed_text, (char *)NULL);
	int rc = CLI_EXIT_OK;
	if (list) {
		json_t *doc = capture_record_to_json(rec);
		if (!doc || removed_add(list, rec->id, json_object_get(doc, "name"), freed))
			rc = CLI_EXIT_FAILED;
		json_decref(doc);
	} else {
		_cleanup_free_ char *name = cli_shown_name(rec->name);
		printf("removed %" PRIu64 " %s (%" PRIu64 " bytes freed)\n", rec->id,
		       name ? name : "?", freed);
	}
	capture_record_free(rec);
	return rc;
}

/* rm --config FILE: the object store of that configuration (used when no
 * daemon runs: the daemon removes remote copies through its own), so the
 * remote copy goes with the last capture of its object. */
int cli_rm(int argc, char **argv, const char *usage)
{
	struct maint_args a = { .allowed = "sjc" };
	if (maint_args_parse(argc, argv, &a) < 0 || a.first_arg >= argc)
		return usage_error(usage);
	struct config *cfg = a.config ? retention_load_config(a.config) : NULL;
	if (a.config && !cfg)
		return CLI_EXIT_FAILED;
	/* --store, else the config file's store, else the usual default. */
	const char *store = a.store ? a.store : cfg ? cfg->store : NULL;
	json_t *list = a.json ? json_array() : NULL;
	struct cli_remote *r = NULL;
	struct vault *v = NULL;
	int rc = CLI_EXIT_OK, via = a.json && !list ? -ENOMEM : cli_remote_open(&r, store);
	bool reached = via > 0;
	if (via != 0) {
		rc = via > 0 ? rm_remote(r, argv + a.first_arg, argc - a.first_arg, list)
			     : CLI_EXIT_FAILED;
		cli_remote_free(r);
	} else if ((v = open_store_with(store, 0, cfg)) != NULL) {
		reached = true;
		for (int i = a.first_arg; i < argc; i++)
			if (rm_local(v, argv[i], list) != CLI_EXIT_OK)
				rc = CLI_EXIT_FAILED;
		close_store(v);
	} else {
		rc = CLI_EXIT_FAILED;
	}
	if (reached)
		removed_print(list);
	json_decref(list);
	config_free(cfg);
	return rc;
}

/* ---- tag ---- */

/* The "+t" (or "t") and "-t" operands as tags to add and to remove (the
 * last operand on a tag decides), pointing into ops. Sent as such, they are
 * applied to the tags as they are when the edit lands: a tag a duplicate
 * or another client added meanwhile is not lost. */
struct tag_ops {
	char **add, **del;
	size_t nadd, ndel;
};

static void tag_ops_free(struct tag_ops *o)
{
	free(o->add);
	free(o->del);
}

static int tag_ops_parse(char **ops, int n, struct tag_ops *o, struct errbuf *eb)
{
	o->add = calloc((size_t)n + 1, sizeof(char *));
	o->del = calloc((size_t)n + 1, sizeof(char *));
	if (!o->add || !o->del)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		const char *t = ops[i] + (ops[i][0] == '+' || ops[i][0] == '-');
		bool last = true;
		char shown[160];
		if (!catalog_tag_valid(t))
			return errbuf_set(eb, -EINVAL, "invalid tag '%s'",
					  text_shown(t, shown, sizeof(shown)));
		for (int k = i + 1; k < n && last; k++)
			last = strcmp(t, ops[k] + (ops[k][0] == '+' || ops[k][0] == '-')) != 0;
		if (last && ops[i][0] == '-')
			o->del[o->ndel++] = (char *)t;
		else if (last)
			o->add[o->nadd++] = (char *)t;
	}
	return 0;
}

static json_t *json_strings(char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* "ID: TAG TAG", or with --json {"id", "tags"}. */
static void print_tags_json(json_t *rec, bool as_json)
{
	json_t *t;
	size_t i;
	if (as_json) {
		json_t *o = json_pack("{sOsO}", "id", json_object_get(rec, "id"), "tags",
				      json_object_get(rec, "tags"));
		if (o)
			json_dumpf(o, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(o);
		return;
	}
	printf("%" PRIu64 ":", (uint64_t)json_integer_value(json_object_get(rec, "id")));
	json_array_foreach(json_object_get(rec, "tags"), i, t)
		printf(" %s", json_string_value(t));
	putchar('\n');
}

/* PATCH add_tags / remove_tags: the daemon edits the tags under its lock. */
static int tag_remote(struct cli_remote *r, char **args, int n, bool as_json)
{
	_cleanup_free_ char *target = capture_target(args[0]);
	struct tag_ops o = { 0 };
	struct errbuf eb = { { 0 } };
	json_t *reply = NULL;
	int status = -1;
	int err = target ? tag_ops_parse(args + 1, n - 1, &o, &eb) : -ENOMEM;
	if (!err) {
		json_t *body = json_pack("{soso}", "add_tags", json_strings(o.add, o.nadd),
					 "remove_tags", json_strings(o.del, o.ndel));
		status = body ? cli_remote_json(r, "PATCH", target, body, &reply) : -1;
		json_decref(body);
	}
	if (status == 200)
		print_tags_json(reply, as_json);
	else if (eb.msg[0])
		fprintf(stderr, "capvault: %s\n", eb.msg);
	else if (status > 0)
		fprintf(stderr, "capvault: %s\n", remote_why(reply, status));
	json_decref(reply);
	tag_ops_free(&o);
	return status == 200 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

/* tag's words in the order maint_args_parse reads them: its long options
 * (--store DIR, --json) wherever they were typed, then the id and the tag
 * changes, whose "-TAG" is no option. In place; argv keeps its words. */
static void tag_options_first(int argc, char **argv)
{
	char **operands = calloc((size_t)argc + 1, sizeof(*operands));
	int nops = 0, w = 1;
	if (!operands)
		return;
	for (int i = 1; i < argc; i++) {
		bool with_value = !strcmp(argv[i], "--store") || !strcmp(argv[i], "-s");
		if (!strcmp(argv[i], "--")) {
			while (++i < argc)
				operands[nops++] = argv[i];
		} else if (with_value && i + 1 < argc) {
			argv[w++] = argv[i];
			argv[w++] = argv[++i];
		} else if (!strncmp(argv[i], "--", 2)) {
			argv[w++] = argv[i]; /* --store=DIR, --json, or a wrong one */
		} else {
			operands[nops++] = argv[i];
		}
	}
	for (int i = 0; i < nops; i++)
		argv[w++] = operands[i];
	free(operands);
}

int cli_tag(int argc, char **argv, const char *usage)
{
	struct maint_args a = { .stop_at_operand = true, .allowed = "sj" };
	tag_options_first(argc, argv);
	if (maint_args_parse(argc, argv, &a) < 0 || a.first_arg + 1 >= argc)
		return usage_error(usage);
	struct cli_remote *r = NULL;
	int via = cli_remote_open(&r, a.store);
	if (via != 0) {
		int rc = via > 0 ? tag_remote(r, argv + a.first_arg, argc - a.first_arg, a.json) : CLI_EXIT_FAILED;
		cli_remote_free(r);
		return rc;
	}
	struct vault *v = open_store(a.store, 0);
	if (!v)
		return CLI_EXIT_FAILED;
	struct capture_record *rec = NULL;
	struct errbuf eb = { { 0 } };
	struct tag_ops o = { 0 };
	int err = catalog_lookup(vault_catalog(v), argv[a.first_arg], &rec, &eb);
	if (!err)
		err = tag_ops_parse(argv + a.first_arg + 1, argc - a.first_arg - 1, &o, &eb);
	if (!err)
		err = catalog_edit_tags(vault_catalog(v), rec->id, o.add, o.nadd, o.del, o.ndel, &eb);
	json_t *doc = NULL;
	if (!err) {
		uint64_t id = rec->id;
		capture_record_free(rec);
		rec = NULL;
		err = catalog_get(vault_catalog(v), id, &rec);
	}
	if (!err) {
		char tags[1024] = "";
		size_t used = 0;
		for (size_t i = 0; i < rec->ntags && used < sizeof(tags); i++)
			used += (size_t)snprintf(tags + used, sizeof(tags) - used, "%s%s", i ? "," : "",
						 rec->tags[i]);
		cli_audit("update", rec, "TAGS", tags, (char *)NULL);
	}
	if (!err && !(doc = capture_record_to_json(rec)))
		err = -ENOMEM;
	if (err)
		fprintf(stderr, "capvault: %s\n", eb.msg[0] ? eb.msg : strerror(-err));
	else
		print_tags_json(doc, a.json);
	json_decref(doc);
	tag_ops_free(&o);
	capture_record_free(rec);
	close_store(v);
	return err ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* ---- prune ---- */

/* The plan as `prune` prints it, from retention_plan_to_json's document (ours, or the
 * daemon's POST /v1/prune reply: the same document, so the same lines). */
static void plan_print(json_t *doc)
{
	bool dry_run = json_is_true(json_object_get(doc, "dry_run"));
	json_t *items = json_object_get(doc, "captures"), *it;
	size_t i;
	json_array_foreach(items, i, it) {
		const char *err = json_string_value(json_object_get(it, "error"));
		const char *sha = json_string_value(json_object_get(it, "sha256"));
		const char *kept = json_string_value(json_object_get(it, "kept"));
		const char *verb = dry_run ? "would delete" :
			json_is_true(json_object_get(it, "deleted")) ? "deleted" : kept ? "kept" : "FAILED";
		if (kept)
			err = kept;
		_cleanup_free_ char *name = cli_shown_json(json_string_value(json_object_get(it, "name")));
		printf("%s %" PRIu64 " %.12s %s [%s] %s; %" PRIu64 " bytes freed%s%s\n", verb,
		       (uint64_t)json_integer_value(json_object_get(it, "id")), sha ? sha : "",
		       name ? name : "?", json_string_value(json_object_get(it, "policy")),
		       json_string_value(json_object_get(it, "reason")),
		       (uint64_t)json_integer_value(json_object_get(it, "bytes_freed")),
		       err ? ": " : "", err ? err : "");
	}
	size_t n = 0;
	json_array_foreach(items, i, it)
		n += dry_run || json_is_true(json_object_get(it, "deleted"));
	printf("%zu captures %s, %" PRIu64 " bytes %s\n", n,
	       dry_run ? "would be deleted" : "deleted",
	       (uint64_t)json_integer_value(json_object_get(doc, "bytes_freed")),
	       dry_run ? "would be freed" : "freed");
	if (json_is_true(json_object_get(doc, "below_min_free")))
		printf("still below min_free after pruning: imports are refused\n");
	json_t *tier = json_object_get(doc, "tier");
	json_array_foreach(tier, i, it) {
		_cleanup_free_ char *name = cli_shown_json(json_string_value(json_object_get(it, "name")));
		printf("%s %" PRIu64 " %.12s %s [%s] %s\n", dry_run ? "would tier" : "tiering",
		       (uint64_t)json_integer_value(json_object_get(it, "id")),
		       json_string_value(json_object_get(it, "sha256")), name ? name : "?",
		       json_string_value(json_object_get(it, "policy")),
		       json_string_value(json_object_get(it, "reason")));
	}
	if (json_array_size(tier))
		printf("%zu objects %s, %" PRIu64 " bytes\n", json_array_size(tier),
		       dry_run ? "would be moved to the object store" :
				 "to move to the object store",
		       (uint64_t)json_integer_value(json_object_get(doc, "tier_bytes")));
}

/* Prints the plan document (--json or lines); 1 when a deletion failed. */
static int plan_output(json_t *doc, const struct maint_args *a)
{
	json_t *it;
	size_t i;
	int failed = 0;
	if (a->json) {
		json_dumpf(doc, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		plan_print(doc);
	}
	json_array_foreach(json_object_get(doc, "captures"), i, it)
		if (!a->dry_run && !json_is_true(json_object_get(it, "deleted")) &&
		    !json_object_get(it, "kept"))
			failed = 1;
	return failed;
}

/* Without a daemon, prune moves the objects its plan tiers itself, when
 * an object store is configured; a failure is printed and counted. */
static int prune_tier(struct vault *v, const struct retention_plan *plan)
{
	struct objstore *os = vault_objstore(v);
	struct errbuf eb = { { 0 } };
	int err, first = 0;
	if (!os) {
		fprintf(stderr, "capvault: prune: %zu objects to tier, but no object store is "
			"configured\n", plan->ntier);
		return -ENODEV;
	}
	for (size_t i = 0; i < plan->ntier; i++) {
		err = tier_object(v, os, plan->tier[i].sha256, NULL, &eb);
		if (err < 0) {
			fprintf(stderr, "capvault: prune: tiering capture %" PRIu64 ": %s\n",
				plan->tier[i].id, eb.msg[0] ? eb.msg : strerror(-err));
			first = first ? first : err;
		}
	}
	return first;
}

/* The read-through cache of remote objects in the store's cache/ folder,
 * when it has one, with its floor of free space (as capvaultd keeps it):
 * without a daemon, prune makes the cache give way before it prunes any
 * capture for min_free. Opened without a bound in bytes (that is the
 * daemon's, from its own configuration): only the floor is enforced. */
static struct objcache *prune_cache(struct vault *v, const struct config *cfg)
{
	char path[PATH_MAX];
	struct stat s;
	struct objcache *cache = NULL;
	struct errbuf eb = { { 0 } };
	const char *root = store_root(vault_store(v));
	if (snprintf(path, sizeof(path), "%s/cache", root) >= (int)sizeof(path) ||
	    stat(path, &s) < 0 || !S_ISDIR(s.st_mode))
		return NULL;
	if (objcache_open(&cache, root, UINT64_MAX, &eb) < 0) {
		fprintf(stderr, "capvault: prune: read-through cache: %s (not trimmed)\n", eb.msg);
		return NULL;
	}
	retention_cache_floor_set(cache, vault_store(v), cfg->retention.min_free_bytes,
				  cfg->retention.min_free_percent);
	return cache;
}

static int prune_run(struct vault *v, const struct config *cfg, const struct maint_args *a)
{
	struct retention_rules rules;
	struct retention_plan *plan = NULL;
	struct errbuf eb = { { 0 } };
	if (retention_rules_from_config(&cfg->retention, &rules) < 0)
		return CLI_EXIT_FAILED;
	struct objcache *cache = prune_cache(v, cfg);
	struct retention_cache_space cs = { .st = vault_store(v), .cache = cache };
	/* As capvaultd: min_free ends the move of an object in both places
	 * rather than delete its captures, when the store answers (this run
	 * tiers its plan itself, prune_tier). */
	struct objstore *os = vault_objstore(v);
	bool floor = cfg->retention.min_free_bytes || cfg->retention.min_free_percent;
	struct errbuf check_eb = { { 0 } };
	/* A dry run evicts nothing: it counts what trimming would free. */
	struct retention_env env = { .now_ns = wall_ns(),
				     .space = a->dry_run ? retention_space_after_trim
							 : retention_store_space,
				     .space_opaque = a->dry_run ? (void *)&cs : (void *)cs.st,
				     .finish_moves = floor && os && objstore_check(os, &check_eb) == 0 };
	uint64_t evicted = a->dry_run ? 0 : objcache_trim(cache, 0);
	if (evicted)
		fprintf(stderr, "capvault: prune: evicted %" PRIu64 " bytes of the object store "
			"cache first, to keep its free space\n", evicted);
	int err = retention_plan(vault_catalog(v), &rules, &env, &plan, &eb);
	objcache_free(cache);
	if (err) {
		fprintf(stderr, "capvault: prune: %s\n", eb.msg[0] ? eb.msg : strerror(-err));
		retention_rules_release(&rules);
		return CLI_EXIT_FAILED;
	}
	if (!a->dry_run)
		err = retention_apply(vault_catalog(v), vault_store(v), plan);
	for (size_t i = 0; !a->dry_run && i < plan->n; i++) {
		const struct retention_item *it = &plan->items[i];
		struct capture_record gone = { .id = it->id, .name = it->name };
		memcpy(gone.sha256, it->sha256, sizeof(gone.sha256));
		if (it->result == 0)
			cli_audit("prune-delete", &gone, "POLICY", it->policy, (char *)NULL);
	}
	json_t *doc = retention_plan_to_json(plan, a->dry_run);
	if (!doc || plan_output(doc, a))
		err = err ? err : -EIO;
	if (!a->dry_run && plan->ntier && prune_tier(v, plan) < 0)
		err = err ? err : -EIO;
	json_decref(doc);
	retention_plan_free(plan);
	retention_rules_release(&rules);
	return err ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* POST /v1/prune: the daemon runs the rules it has in force, under the
 * lock of its scheduled runs, and answers retention_plan_to_json's document. */
static int prune_remote(struct cli_remote *r, const struct maint_args *a)
{
	json_t *reply = NULL, *body = json_pack("{sb}", "dry_run", a->dry_run);
	int status = body ? cli_remote_json(r, "POST", "/v1/prune", body, &reply) : -1;
	int rc = CLI_EXIT_FAILED;
	if (status == 200 && json_is_array(json_object_get(reply, "captures"))) {
		rc = plan_output(reply, a) ? CLI_EXIT_FAILED : CLI_EXIT_OK;
	} else if (status > 0) {
		const char *m = cli_remote_message(reply, status);
		fprintf(stderr, "capvault: prune: %s\n", !strncmp(m, "prune: ", 7) ? m + 7 : m);
	}
	json_decref(body);
	json_decref(reply);
	return rc;
}

int cli_prune(int argc, char **argv, const char *usage)
{
	struct maint_args a = { .allowed = "scjn" };
	if (maint_args_parse(argc, argv, &a) < 0 || a.first_arg != argc)
		return usage_error(usage);
	struct config *cfg = retention_load_config(a.config);
	if (!cfg)
		return CLI_EXIT_FAILED;
	/* --store, else the config file's store, else the usual default. */
	const char *store = a.store ? a.store : a.config ? cfg->store : NULL;
	struct cli_remote *r = NULL;
	struct vault *v = NULL;
	int rc, via = cli_remote_open(&r, store);
	if (via > 0 && a.config) {
		/* The daemon prunes by its own configuration's rules: silently
		 * answering with those would preview the wrong deletions. */
		fprintf(stderr,
			"capvault: prune: capvaultd serves this store and prunes by the rules of its own "
			"configuration; --config %s applies only when no daemon runs. Drop --config to "
			"see the daemon's rules at work, or load %s into the daemon (SIGHUP) first.\n",
			a.config, a.config);
		rc = CLI_EXIT_USAGE;
	} else if (via != 0)
		rc = via > 0 ? prune_remote(r, &a) : CLI_EXIT_FAILED;
	else
		rc = (v = open_store_with(store, 0, cfg)) ? prune_run(v, cfg, &a) : CLI_EXIT_FAILED;
	cli_remote_free(r);
	close_store(v);
	config_free(cfg);
	return rc;
}

/* ---- fsck ---- */

/* Each problem as a line, or (--json, opaque is the items array) as an item. */
static void fsck_print(void *opaque, const char *text, bool repaired)
{
	json_t *items = opaque;
	if (items)
		json_array_append_new(items, json_pack("{sssb}", "text", text, "repaired", repaired));
	else
		printf("%s: %s\n", repaired ? "repaired" : "problem", text);
}

static void fsck_print_json(const struct fsck_counts *c, json_t *items)
{
	json_t *doc = json_pack("{sIsIsIsIsIsIsO}", "objects", (json_int_t)c->objects,
				"bytes_hashed", (json_int_t)c->bytes_hashed, "corrupt",
				(json_int_t)c->corrupt, "captures", (json_int_t)c->captures,
				"problems", (json_int_t)c->problems, "repaired",
				(json_int_t)c->repaired, "items", items);
	if (doc) {
		json_dumpf(doc, stdout, JSON_COMPACT);
		putchar('\n');
	}
	json_decref(doc);
}

/* The store for fsck, with the object store of config_path (the
 * daemon's configuration; NULL: $CAPVAULT_OBJSTORE_DIR's, if set);
 * *cache_size (may be NULL) gets the configuration's cache_size (without
 * one, its default, as the daemon's: a bound of 0 would empty the
 * cache). */
/* What a read-through cache opened by the CLI takes from the config. */
struct cache_settings {
	uint64_t cache_size, min_free_bytes;
	unsigned min_free_percent;
};

static struct vault *open_store_configured(const char *store, const char *config_path,
					   struct cache_settings *cs)
{
	struct config *cfg = config_path ? retention_load_config(config_path) : NULL;
	if (config_path && !cfg)
		return NULL;
	if (cs)
		*cs = (struct cache_settings){
			.cache_size = cfg ? cfg->object_store.cache_size : OBJSTORE_CACHE_DEFAULT,
			.min_free_bytes = cfg ? cfg->retention.min_free_bytes : 0,
			.min_free_percent = cfg ? cfg->retention.min_free_percent : 0,
		};
	struct vault *v = open_store_with(store, VAULT_NO_CLEANUP, cfg);
	config_free(cfg);
	return v;
}

/* fsck --remote [--repair] [--verify]: the object store against the
 * catalog (fsck.h's fsck_remote). */
static int fsck_remote_run(const struct maint_args *a)
{
	struct errbuf eb = { { 0 } };
	int err;
	struct vault *v = open_store_configured(a->store, a->config, NULL);
	if (!v)
		return CLI_EXIT_FAILED;
	struct objstore *os = vault_objstore(v);
	if (!os) {
		fprintf(stderr, "capvault: fsck --remote: %s\n",
			maint_objstore_failed ? "the configuration's object store cannot be "
						"opened (above); nothing was checked"
					      : "no object store is configured");
		close_store(v);
		return CLI_EXIT_FAILED;
	}
	struct fsck_counts c;
	json_t *items = a->json ? json_array() : NULL;
	err = a->json && !items ? -ENOMEM
				: fsck_remote(v, os, a->repair, a->verify, fsck_print, items, &c, &eb);
	close_store(v);
	if (err) {
		fprintf(stderr, "capvault: fsck --remote: %s\n", eb.msg[0] ? eb.msg : strerror(-err));
		json_decref(items);
		return CLI_EXIT_FAILED;
	}
	if (items) {
		fsck_print_json(&c, items);
		json_decref(items);
	} else {
		printf("%" PRIu64 " remote objects (%" PRIu64 " bytes hashed, %" PRIu64
		       " corrupt): %" PRIu64 " problems, %" PRIu64 " repaired\n",
		       c.objects, c.bytes_hashed, c.corrupt, c.problems, c.repaired);
	}
	return c.problems > c.repaired ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* The store, with the object store of config_path (or of
 * $CAPVAULT_OBJSTORE_DIR) and a read-through cache in it, keeping the
 * free space capvaultd's keeps: fsck --repair rebuilds a tiered object's
 * packet index from the object store. */
static struct vault *open_store_reading_remote(const char *store, const char *config_path,
					       struct objcache **cache)
{
	struct errbuf eb = { { 0 } };
	struct cache_settings cs;
	struct vault *v = open_store_configured(store, config_path, &cs);
	*cache = NULL;
	if (v && vault_objstore(v) &&
	    objcache_open(cache, cli_store_path(store), cs.cache_size, &eb) < 0)
		fprintf(stderr, "capvault: read-through cache: %s (tiered objects' indexes are "
			"not rebuilt)\n", eb.msg);
	if (*cache)
		retention_cache_floor_set(*cache, vault_store(v), cs.min_free_bytes,
					  cs.min_free_percent);
	if (v)
		vault_set_objcache(v, *cache);
	return v;
}

int cli_fsck(int argc, char **argv, const char *usage)
{
	struct maint_args a = { .allowed = "sjrVRc" };
	if (maint_args_parse(argc, argv, &a) < 0 || a.first_arg != argc)
		return usage_error(usage);
	if (a.remote)
		return fsck_remote_run(&a);
	struct ring *ring = NULL;
	int err = ring_new(&ring, 16);
	if (err) {
		fprintf(stderr, "capvault: io_uring: %s\n", strerror(-err));
		return CLI_EXIT_FAILED;
	}
	struct objcache *cache = NULL;
	struct vault *v = open_store_reading_remote(a.store, a.config, &cache);
	if (!v) {
		ring_free(ring);
		return CLI_EXIT_FAILED;
	}
	struct fsck_counts c;
	struct errbuf eb = { { 0 } };
	json_t *items = a.json ? json_array() : NULL;
	/* --verify: the object hashes alone (what capvaultd's scrub checks). */
	err = a.json && !items ? -ENOMEM
			       : (a.verify ? fsck_verify : fsck_run)(v, ring, a.repair, fsck_print,
								     items, &c, &eb);
	close_store(v);
	objcache_free(cache);
	ring_free(ring);
	if (err) {
		fprintf(stderr, "capvault: fsck: %s\n", eb.msg[0] ? eb.msg : strerror(-err));
		json_decref(items);
		return CLI_EXIT_FAILED;
	}
	if (items) {
		fsck_print_json(&c, items);
		json_decref(items);
		return c.problems > c.repaired ? CLI_EXIT_FAILED : CLI_EXIT_OK;
	}
	printf("%" PRIu64 " objects (%" PRIu64 " bytes hashed, %" PRIu64 " corrupt), %" PRIu64
	       " captures: %" PRIu64 " problems, %" PRIu64 " repaired\n",
	       c.objects, c.bytes_hashed, c.corrupt, c.captures, c.problems, c.repaired);
	return c.problems > c.repaired ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* ---- backup / restore ---- */

/* DIR as the daemon must see it: absolute (its working folder is not
 * ours). NULL when out of memory or the cwd is unknown. */
static char *absolute_dir(const char *dir)
{
	char *abs = NULL;
	_cleanup_free_ char *cwd = dir[0] == '/' ? NULL : getcwd(NULL, 0);
	if (dir[0] == '/')
		return strdup(dir);
	if (!cwd || asprintf(&abs, "%s/%s", cwd, dir) < 0)
		return NULL;
	return abs;
}

/* POST /v1/backup (unix socket only: the daemon writes DIR itself). */
static int backup_remote(struct cli_remote *r, const char *dir, uint64_t *n, struct errbuf *eb)
{
	_cleanup_free_ char *abs = absolute_dir(dir);
	json_t *reply = NULL, *body = abs ? json_pack("{ss}", "dir", abs) : NULL;
	if (!body)
		return errbuf_set(eb, -ENOMEM, "%s: cannot make the path absolute", dir);
	int status = cli_remote_json(r, "POST", "/v1/backup", body, &reply);
	int err = 0;
	if (status == 200)
		*n = (uint64_t)json_integer_value(json_object_get(reply, "objects"));
	else
		err = errbuf_set(eb, -EIO, "%s", status < 0 ? "the daemon did not answer" :
						 cli_remote_message(reply, status));
	json_decref(body);
	json_decref(reply);
	return err;
}

int cli_backup(int argc, char **argv, const char *usage)
{
	struct maint_args a = { .allowed = "sj" };
	if (maint_args_parse(argc, argv, &a) < 0 || a.first_arg != argc - 1)
		return usage_error(usage);
	struct errbuf eb = { { 0 } };
	struct cli_remote *r = NULL;
	struct vault *v = NULL;
	uint64_t n = 0;
	int err, via = cli_remote_open(&r, a.store);
	if (via < 0)
		return CLI_EXIT_FAILED;
	if (via > 0) {
		err = backup_remote(r, argv[a.first_arg], &n, &eb);
		cli_remote_free(r);
	} else if ((v = open_store(a.store, 0)) != NULL) {
		err = backup_create(v, argv[a.first_arg], &n, &eb);
		close_store(v);
	} else {
		return CLI_EXIT_FAILED;
	}
	if (err) {
		fprintf(stderr, "capvault: backup: %s\n", eb.msg[0] ? eb.msg : strerror(-err));
		return CLI_EXIT_FAILED;
	}
	if (a.json) {
		json_t *doc = json_pack("{sssI}", "dir", argv[a.first_arg], "objects", (json_int_t)n);
		if (!doc)
			return CLI_EXIT_FAILED;
		json_dumpf(doc, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(doc);
		return CLI_EXIT_OK;
	}
	printf("backed up the index and %" PRIu64 " objects to %s\n", n, argv[a.first_arg]);
	return CLI_EXIT_OK;
}

/* restore writes a new store with no daemon: refuse when one serves it. */
static bool daemon_serves(const char *store)
{
	struct cli_remote *r = NULL;
	int via = cli_remote_open(&r, store);
	bool local = via > 0 && !cli_remote_is_url(r);
	cli_remote_free(r);
	if (local)
		fprintf(stderr, "capvault: restore: capvaultd runs on %s; restore is offline only: "
				"stop it, or restore into another folder\n", store);
	return via < 0 || local;
}

/* An object a restore found gone from the object store, and its capture. */
static void note_lost(void *opaque, const uint8_t sha[32], uint64_t size, uint64_t capture,
		      const char *why)
{
	size_t *lost = opaque;
	char hex[65];

	sha256_hex(sha, hex);
	fprintf(stderr, "capvault: restore: object %s (%" PRIu64 " bytes) is lost: %s\n", hex,
		size, why);
	if (capture)
		fprintf(stderr, "capvault: restore: capture %" PRIu64 " (object %s) is restored "
			"but its bytes are gone: reads of it answer object_missing; "
			"`capvault rm %" PRIu64 "` removes it\n", capture, hex, capture);
	(*lost)++;
}

/*
 * Every remote object of the backup is missing. Far likelier than a bucket
 * pruned bare is an object_store config that names another endpoint,
 * bucket or prefix, where removing the captures would lose them for good;
 * the owner key tells them apart. True when it names this vault (its
 * objects were removed since the backup); else *seen says what the store
 * holds there instead, for the message.
 */
static bool store_is_the_vaults(struct objstore *os, struct catalog *cat, char *seen, size_t len)
{
	char id[CATALOG_VAULT_ID_HEX], owner[OBJSTORE_OWNER_MAX], found[OBJSTORE_OWNER_MAX + 2];
	struct errbuf eb = { { 0 } };

	int r = os ? objstore_owner(os, found, sizeof(found), &eb) : -ENOENT;
	if (r == -ENOENT)
		snprintf(seen, len, "it holds no %s key either", OBJSTORE_OWNER_KEY);
	else if (r < 0)
		snprintf(seen, len, "its %s key could not be read: %s", OBJSTORE_OWNER_KEY, eb.msg);
	if (r < 0)
		return false;
	if (catalog_vault_id(cat, id, &eb) < 0) {
		snprintf(seen, len, "this vault's id could not be read: %s", eb.msg);
		return false;
	}
	snprintf(owner, sizeof(owner), "vault %s", id);
	if (strcmp(found, owner) == 0)
		return true;
	snprintf(seen, len, "its %s key names %s, not this %s", OBJSTORE_OWNER_KEY, found, owner);
	return false;
}

int cli_restore(int argc, char **argv, const char *usage)
{
	struct maint_args a = { .allowed = "sc" };
	if (maint_args_parse(argc, argv, &a) < 0 || a.first_arg != argc - 1 || !a.store)
		return usage_error(usage);
	if (daemon_serves(a.store))
		return CLI_EXIT_FAILED;
	struct errbuf eb = { { 0 } };
	size_t lost = 0;
	/* The object store that holds the backup's remote objects. */
	struct config *cfg = a.config ? retention_load_config(a.config) : NULL;
	struct cli_objstore *cos = NULL;
	int err = a.config && !cfg ? -EINVAL : cli_objstore_open(&cos, cfg, &eb);
	config_free(cfg);
	if (err >= 0)
		err = backup_restore(argv[a.first_arg], a.store, cli_objstore(cos), note_lost, &lost,
				     &eb);
	struct vault *v = err ? NULL : open_store(a.store, 0);
	if (err)
		fprintf(stderr, "capvault: restore: %s\n", eb.msg[0] ? eb.msg : strerror(-err));
	struct catalog_totals t = { 0 };
	bool counted = v && catalog_totals(vault_catalog(v), &t) == 0;
	char seen[sizeof(eb.msg) + 160] = "";
	bool wrong_store = counted && lost && lost >= t.objects - t.local_objects && /* all remote */
			   !store_is_the_vaults(cli_objstore(cos), vault_catalog(v), seen, sizeof(seen));
	cli_objstore_close(cos);
	if (!v)
		return CLI_EXIT_FAILED;
	close_store(v);
	if (counted)
		printf("restored %" PRIu64 " captures and %" PRIu64 " objects into %s\n",
		       t.captures, t.objects, a.store);
	if (wrong_store) {
		fprintf(stderr, "capvault: restore: none of the backup's %zu remote objects is in "
			"the object store, and %s: check object_store's endpoint, bucket and prefix "
			"against the vault's (a wrong one makes every remote capture look lost); do "
			"not remove these captures. Restore again into a new folder with the right "
			"config, or run `capvault fsck --remote` once it is right\n", lost, seen);
		return CLI_EXIT_FAILED;
	}
	if (lost)
		fprintf(stderr, "capvault: restore: %zu objects of the backup are no longer in the "
			"object store (removed after the backup was made?); `capvault fsck --remote` "
			"lists them\n", lost);
	return CLI_EXIT_OK;
}
