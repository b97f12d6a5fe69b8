/*
 * cli_tier.c - `capvault tier [--dry-run] ID|SHA256...`: moves captures'
 * objects to the object store now, through the daemon (POST /v1/tier),
 * whose tier mover owns the object store. Without a daemon a dry run
 * still says where each object is and what would move; a real run needs
 * the daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "objstore.h"
#include "objstore_config.h"
#include "cli.h"
#include "cli_remote.h"
#include "store.h"
#include "textesc.h"
#include "vault.h"

struct tier_args {
	const char *store;
	bool json, dry_run;
	int first_arg;
};

static int tier_args_parse(int argc, char **argv, struct tier_args *a)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "s:jn", opts, NULL)) != -1) {
		switch (c) {
		case 's': a->store = optarg; break;
		case 'j': a->json = true; break;
		case 'n': a->dry_run = true; break;
		default: return -EINVAL;
		}
	}
	a->first_arg = optind;
	return a->first_arg < argc ? 0 : -EINVAL;
}

/* The words for a result that is no failure; NULL for "error" (which may
 * come without its message: adv18 F0) and anything unknown. */
static const char *result_text(const char *result)
{
	static const char *const words[][2] = { { "tiered", "tiered" },
						{ "would_tier", "would tier" },
						{ "already_remote", "already remote" } };

	for (size_t i = 0; result && i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(result, words[i][0]))
			return words[i][1];
	return NULL;
}

/* One line per object of the reply (POST /v1/tier's document). */
static void print_reply(json_t *doc)
{
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(doc, "objects"), i, o) {
		const char *result = json_string_value(json_object_get(o, "result"));
		const char *err = json_string_value(json_object_get(o, "error"));
		char *name = cli_shown_json(json_string_value(json_object_get(o, "name")));
		const char *shown = result_text(result);
		if (!json_object_get(o, "id")) {
			fprintf(stderr, "capvault: %s: %s\n",
				json_string_value(json_object_get(o, "capture")), err ? err : "?");
		} else if (err || !shown) {
			fprintf(stderr, "capvault: tier %" PRIu64 " %s: %s\n",
				(uint64_t)json_integer_value(json_object_get(o, "id")),
				name ? name : "?", err ? err : "failed (no reason given)");
		} else {
			printf("%s %" PRIu64 " %s sha256 %s (%" PRIu64 " bytes): %s\n", shown,
			       (uint64_t)json_integer_value(json_object_get(o, "id")), name ? name : "?",
			       json_string_value(json_object_get(o, "sha256")),
			       (uint64_t)json_integer_value(json_object_get(o, "size")),
			       json_string_value(json_object_get(o, "location")));
		}
		free(name);
	}
}

/* The arguments as POST /v1/tier's body. One that is not UTF-8 cannot be
 * an id or a sha256 prefix, nor go in JSON: it is said here, as the
 * offline run says it (bad set), instead of being left out unsaid. */
static json_t *request_body(char **args, int n, bool dry_run, bool *bad)
{
	json_t *caps = json_array();
	for (int i = 0; caps && i < n; i++) {
		json_t *arg = json_string(args[i]);
		if (!arg) {
			char *esc = text_escape_dup(args[i], 0);
			fprintf(stderr, "capvault: %s: '%s' is neither a capture id nor a sha256 "
				"prefix\n", esc ? esc : "?", esc ? esc : "?");
			free(esc);
			*bad = true;
			continue;
		}
		if (json_array_append_new(caps, arg) < 0) {
			json_decref(caps);
			return NULL;
		}
	}
	if (caps && json_array_size(caps) == 0) {
		json_decref(caps);
		return NULL;
	}
	return caps ? json_pack("{sosb}", "captures", caps, "dry_run", dry_run) : NULL;
}

/* The same document as the daemon's dry run, from the store itself. */
static json_t *dry_run_local(struct vault *v, char **args, int n)
{
	json_t *list = json_array();
	bool failed = false;
	for (int i = 0; i < n; i++) {
		struct capture_record *rec = NULL;
		struct errbuf eb = { { 0 } };
		json_t *o = json_pack("{so}", "capture", catalog_json_text(args[i]));
		int r = catalog_lookup(vault_catalog(v), args[i], &rec, &eb);
		if (r < 0) {
			failed = true;
			json_object_set_new(o, "result", json_string("error"));
			json_object_set_new(o, "error", catalog_json_text(eb.msg[0] ? eb.msg :
									  strerror(-r)));
		} else {
			enum catalog_location loc = CATALOG_LOCAL;
			char hex[65];
			catalog_object_location(vault_catalog(v), rec->sha256, &loc);
			sha256_hex(rec->sha256, hex);
			json_object_set_new(o, "id", json_integer((json_int_t)rec->id));
			json_object_set_new(o, "name", catalog_json_text(rec->name));
			json_object_set_new(o, "sha256", json_string(hex));
			json_object_set_new(o, "size", json_integer((json_int_t)rec->file_size));
			json_object_set_new(o, "location_before",
					    json_string(catalog_location_name(loc)));
			json_object_set_new(o, "location", json_string(catalog_location_name(loc)));
			json_object_set_new(o, "result", json_string(loc == CATALOG_REMOTE ?
								     "already_remote" : "would_tier"));
		}
		capture_record_free(rec);
		json_array_append_new(list, o);
	}
	return json_pack("{sbsosIsIsb}", "dry_run", true, "objects", list, "tiered", 0, "bytes",
			 0, "failed", failed);
}

int cli_tier(int argc, char **argv, const char *usage)
{
	struct tier_args a = { 0 };
	if (tier_args_parse(argc, argv, &a) < 0) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	char **args = argv + a.first_arg;
	int n = argc - a.first_arg;
	struct cli_remote *r = NULL;
	json_t *doc = NULL;
	int via = cli_remote_open(&r, a.store);
	if (via < 0)
		return CLI_EXIT_FAILED;
	bool bad = false;
	if (via > 0) {
		json_t *body = request_body(args, n, a.dry_run, &bad);
		int status = body ? cli_remote_json(r, "POST", "/v1/tier", body, &doc) : -1;
		json_decref(body);
		if (status != 200) {
			if (status > 0)
				fprintf(stderr, "capvault: tier: %s\n", cli_remote_message(doc, status));
			json_decref(doc);
			cli_remote_free(r);
			return CLI_EXIT_FAILED;
		}
		cli_remote_free(r);
	} else if (!a.dry_run) {
		fprintf(stderr, "capvault: tier: no capvaultd runs for %s: the object store is the "
				"daemon's; start it (or use --dry-run)\n", cli_store_path(a.store));
		return CLI_EXIT_FAILED;
	} else {
		struct vault *v = NULL;
		struct errbuf eb = { { 0 } };
		if (vault_open(&v, cli_store_path(a.store), &eb) < 0) {
			fprintf(stderr, "capvault: %s\n", eb.msg);
			return CLI_EXIT_FAILED;
		}
		doc = dry_run_local(v, args, n);
		vault_close(v);
	}
	if (!doc)
		return CLI_EXIT_FAILED;
	if (a.json) {
		json_dumpf(doc, stdout, JSON_COMPACT);
		putchar('\n');
	} else {
		print_reply(doc);
	}
	int rc = bad || json_is_true(json_object_get(doc, "failed")) ? CLI_EXIT_FAILED : CLI_EXIT_OK;
	json_decref(doc);
	return rc;
}

struct cli_objstore {
	struct store *st;     /* CAPVAULT_OBJSTORE_DIR's */
	struct objstore *os;
};

int cli_objstore_open(struct cli_objstore **out, const struct config *cfg, struct errbuf *eb)
{
	const char *dir = getenv("CAPVAULT_OBJSTORE_DIR");
	bool s3 = cfg && cfg->object_store.enabled;
	struct cli_objstore *c;
	int err;

	*out = NULL;
	if (!s3 && (!dir || !*dir))
		return 0;
	if (!(c = calloc(1, sizeof(*c))))
		return errbuf_set(eb, -ENOMEM, "%s", strerror(ENOMEM));
	if (s3) {
		err = objstore_from_config(&c->os, &cfg->object_store, eb);
	} else {
		err = store_open_flags(&c->st, dir, STORE_CREATE, eb);
		if (err == 0)
			err = objstore_local_new(&c->os, c->st, eb);
	}
	if (err < 0) {
		cli_objstore_close(c);
		return err;
	}
	*out = c;
	return 1;
}

struct objstore *cli_objstore(struct cli_objstore *c)
{
	return c ? c->os : NULL;
}

void cli_objstore_close(struct cli_objstore *c)
{
	if (!c)
		return;
	objstore_free(c->os);
	store_close(c->st);
	free(c);
}
