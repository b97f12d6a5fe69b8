/*
 * cli_status.c - `capvault status`: what the running daemon says about
 * itself (GET /v1/status): version, uptime, the settings a reload
 * changed that need a restart, the store and its free
 * space, captures and bytes, the watched folders with their watch mode,
 * the queue, the files waiting for a retry and the latest import
 * failures. Exit code 1 when no daemon
 * answers.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_remote.h"

#define U64(o, k) ((uint64_t)json_integer_value(json_object_get((o), (k))))
#define STR(o, k) (json_string_value(json_object_get((o), (k))) ?: "?")

static void print_folders(json_t *imports)
{
	json_t *f;
	size_t i;
	printf("queue:       %" PRIu64 " files, %" PRIu64 " waiting for a retry\n",
	       U64(imports, "queue_length"), U64(imports, "retrying_count"));
	json_array_foreach(json_object_get(imports, "folders"), i, f) {
		if (i == 0)
			printf("folders:\n");
		printf("  %s  watch=%s after_import=%s%s\n    seen %" PRIu64 ", imported %" PRIu64
		       ", duplicates %" PRIu64 ", failed %" PRIu64 ", retried %" PRIu64 "; %" PRIu64
		       " bytes, %" PRIu64 " packets\n",
		       STR(f, "path"), STR(f, "watch"), STR(f, "after_import"),
		       json_is_true(json_object_get(f, "recursive")) ? " recursive" : "",
		       U64(f, "seen"), U64(f, "imported"), U64(f, "duplicates"), U64(f, "failed"),
		       U64(f, "retried"), U64(f, "bytes"), U64(f, "packets"));
	}
	/* Paths and errors hold file names: shown as ls shows names (one
	 * line, no control characters), never raw. */
	json_array_foreach(json_object_get(imports, "retrying"), i, f) {
		if (i == 0)
			printf("retrying:\n");
		_cleanup_free_ char *path = cli_shown_json(STR(f, "path"));
		_cleanup_free_ char *error = cli_shown_json(STR(f, "error"));
		printf("  %s  after %" PRIu64 " attempts: %s\n", path ?: "?", U64(f, "attempts"),
		       error ?: "?");
	}
	json_array_foreach(json_object_get(imports, "recent_failures"), i, f) {
		if (i == 0)
			printf("recent failures:\n");
		_cleanup_free_ char *path = cli_shown_json(STR(f, "path"));
		_cleanup_free_ char *error = cli_shown_json(STR(f, "error"));
		printf("  %s  %s: %s\n", STR(f, "time"), path ?: "?", error ?: "?");
	}
}

/* The last scrub pass: when, how many objects, how many corrupt. */
static void print_scrub(json_t *sc)
{
	if (!json_is_object(sc))
		return;
	if (!json_is_true(json_object_get(sc, "enabled"))) {
		printf("scrub:       off\n");
		return;
	}
	if (json_is_string(json_object_get(sc, "last_run")))
		printf("scrub:       last pass %s: %" PRIu64 " objects, %" PRIu64 " corrupt%s\n",
		       STR(sc, "last_run"), U64(sc, "last_objects"), U64(sc, "corrupt_objects"),
		       json_is_true(json_object_get(sc, "running")) ? "; a pass is running" : "");
	else
		printf("scrub:       no pass yet%s\n",
		       json_is_true(json_object_get(sc, "running")) ? "; the first is running" : "");
	if (json_is_string(json_object_get(sc, "next_run")))
		printf("             next pass %s\n", STR(sc, "next_run"));
	if (U64(sc, "corrupt_objects"))
		printf("             corrupt objects are in quarantine/; their captures are tagged "
		       "capvault:damaged (capvault ls --tag capvault:damaged)\n");
}

/* The object store's state: one line, with why when it is not ok. */
static void print_store(json_t *s)
{
	const char *state = json_string_value(json_object_get(s, "state"));
	const char *error = json_string_value(json_object_get(s, "error"));

	if (!state)
		return;
	if (!json_is_string(json_object_get(s, "checked")))
		printf("objstore:    %s (not asked yet)\n", state);
	else
		printf("objstore:    %s since %s (last asked %s)%s%s\n", state, STR(s, "since"),
		       STR(s, "checked"), error ? ": " : "", error ? error : "");
}

/* The object tier, when an object store is configured. */
static void print_tier(json_t *t)
{
	if (!json_is_true(json_object_get(t, "enabled")))
		return;
	printf("tier:        %" PRIu64 " objects remote (%" PRIu64 " bytes), %" PRIu64
	       " local (%" PRIu64 " bytes); %" PRIu64 " moves queued (%" PRIu64 " bytes), %"
	       PRIu64 " moved, %" PRIu64 " errors since start\n",
	       U64(t, "remote_objects"), U64(t, "remote_bytes"), U64(t, "local_objects"),
	       U64(t, "local_bytes"), U64(t, "queue_length"), U64(t, "queue_bytes"),
	       U64(t, "tiered_objects"), U64(t, "errors"));
	print_store(json_object_get(t, "store"));
}

static void print_status(json_t *st)
{
	json_t *d = json_object_get(st, "daemon"), *store = json_object_get(st, "store");
	uint64_t up = U64(d, "uptime_s");
	printf("capvaultd:   %s, up %" PRIu64 "d %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64
	       " (since %s)\n",
	       STR(st, "version"), up / 86400, up / 3600 % 24, up / 60 % 60, up % 60,
	       STR(d, "started"));
	json_t *name;
	size_t i;
	json_array_foreach(json_object_get(d, "restart_needed"), i, name)
		printf("%s%s", i ? ", " : "restart:     changed settings that need a restart: ",
		       json_string_value(name) ?: "?");
	if (json_array_size(json_object_get(d, "restart_needed")))
		putchar('\n');
	printf("store:       %s\nfree:        %" PRIu64 " of %" PRIu64 " bytes\n", STR(store, "path"),
	       U64(store, "free_bytes"), U64(store, "fs_total_bytes"));
	printf("captures:    %" PRIu64 " (%" PRIu64 " bytes, %" PRIu64 " packets)\n",
	       U64(st, "captures"), U64(st, "object_bytes"), U64(st, "packets"));
	print_folders(json_object_get(st, "imports"));
	print_scrub(json_object_get(st, "scrub"));
	print_tier(json_object_get(st, "tier"));
}

int cli_status(int argc, char **argv, const char *usage)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	const char *store = NULL;
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "s:j", opts, NULL)) != -1) {
		if (c == 's')
			store = optarg;
		else if (c == 'j')
			json = true;
		else
			goto usage;
	}
	if (optind != argc)
		goto usage;
	struct cli_remote *r = NULL;
	int via = cli_remote_open(&r, store);
	if (via == 0)
		fprintf(stderr, "capvault: capvaultd is not running for %s (no %s/capvault.sock)\n",
			cli_store_path(store), cli_store_path(store));
	if (via <= 0)
		return CLI_EXIT_FAILED;
	json_t *reply = NULL;
	int status = cli_remote_json(r, "GET", "/v1/status", NULL, &reply);
	cli_remote_free(r);
	if (status == 200 && json) {
		json_dumpf(reply, stdout, JSON_INDENT(2));
		putchar('\n');
	} else if (status == 200) {
		print_status(reply);
	} else if (status > 0) {
		fprintf(stderr, "capvault: status: %s\n", cli_remote_message(reply, status));
	}
	json_decref(reply);
	return status == 200 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
usage:
	fprintf(stderr, "usage: capvault %s\n", usage);
	return CLI_EXIT_USAGE;
}
