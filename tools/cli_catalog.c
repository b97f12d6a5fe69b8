/*
 * cli_catalog.c - `capvault ls`, `info` and `stats`: read the catalog and
 * print it for people (aligned text) or machines (--json).
 *
 * With capvaultd running they ask it (GET /v1/captures, /v1/captures/ID,
 * /v1/stats) and print its JSON the same way: the daemon's records are
 * the catalog's own JSON, so both paths print the same bytes.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "cleanup.h"
#include "cli.h"
#include "log.h"
#include "cli_remote.h"
#include "query.h"
#include "store.h"
#include "textesc.h"
#include "vault.h"
#include "vstats.h"

struct catalog_args {
	const char *store;
	const char *tag;
	bool json;
	int first_arg;
};

/* Parses the options shared by the read-only commands. */
static int catalog_args_parse(int argc, char **argv, struct catalog_args *a)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "tag", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "s:t:j", opts, NULL)) != -1) {
		switch (c) {
		case 's': a->store = optarg; break;
		case 't': a->tag = optarg; break;
		case 'j': a->json = true; break;
		default: return -EINVAL;
		}
	}
	a->first_arg = optind;
	return 0;
}

static struct vault *open_vault(const char *store)
{
	struct vault *v = NULL;
	struct errbuf eb = { { 0 } };
	if (vault_open(&v, cli_store_path(store), &eb) < 0)
		fprintf(stderr, "capvault: %s\n", eb.msg);
	return v;
}

/* "2024-05-01 14:00:00": query_format_time to the second. */
static void format_time(int64_t ns, char *buf, size_t len)
{
	char t[QUERY_TIME_LEN];
	query_format_time(ns, t, sizeof(t));
	t[strcspn(t, ".")] = '\0';
	t[strcspn(t, "T")] = ' ';
	snprintf(buf, len, "%.19s", t); /* years 1677..2262: always 19 */
}


void cli_audit(const char *action, const struct capture_record *rec, ...)
{
	static bool ready;
	if (!ready) {
		ready = true;
		log_set_journal_only(true);
		if (access(LOG_JOURNAL_SOCKET, W_OK) == 0)
			log_set_journal(LOG_JOURNAL_SOCKET);
	}
	char client[64], id[24] = "", hex[65] = "";
	snprintf(client, sizeof(client), "offline:uid=%u,pid=%d", (unsigned)getuid(), (int)getpid());
	if (rec) {
		snprintf(id, sizeof(id), "%" PRIu64, rec->id);
		sha256_hex(rec->sha256, hex);
	}
	va_list ap;
	va_start(ap, rec);
	log_audit(action, "offline", client, rec ? id : NULL, hex, rec ? rec->name : NULL, ap);
	va_end(ap);
}

char *cli_shown_name(const char *raw)
{
	return text_escape_dup(raw ? raw : "", TEXT_ESC_CONTROLS);
}

char *cli_shown_json(const char *escaped)
{
	char *raw = NULL;
	if (!escaped || text_unescape(escaped, false, &raw) < 0)
		return cli_shown_name(escaped);
	char *out = cli_shown_name(raw);
	free(raw);
	return out;
}

/* name is already cli_shown_name()d. */
static void ls_line(uint64_t id, const char *sha, uint64_t packets, uint64_t size,
		    int64_t first_ns, const char *name, const char *tags)
{
	char first[32], hex[13];
	format_time(first_ns, first, sizeof(first));
	snprintf(hex, sizeof(hex), "%.12s", sha);
	printf("%-8" PRIu64 " %-12s %10" PRIu64 " %12" PRIu64 "  %-19s  %-24s %s\n", id, hex,
	       packets, size, packets ? first : "-", name ? name : "?", tags);
}

static void ls_header(void)
{
	printf("%-8s %-12s %10s %12s  %-19s  %-24s %s\n", "ID", "SHA256", "PACKETS", "BYTES",
	       "FIRST PACKET (UTC)", "NAME", "TAGS");
}

static int ls_print(void *opaque, const struct capture_record *rec)
{
	json_t *array = opaque;
	if (array) {
		json_t *o = capture_record_to_json(rec);
		return o ? json_array_append_new(array, o) : -ENOMEM;
	}
	char hex[65], tags[256] = "";
	size_t used = 0;
	sha256_hex(rec->sha256, hex);
	for (size_t i = 0; i < rec->ntags && used < sizeof(tags); i++)
		used += (size_t)snprintf(tags + used, sizeof(tags) - used, "%s%s", i ? "," : "",
					 rec->tags[i]);
	char *name = cli_shown_name(rec->name);
	ls_line(rec->id, hex, rec->packets, rec->file_size, rec->earliest_ts_ns, name, tags);
	free(name);
	return 0;
}

/* A record from the daemon, printed as ls_print prints the catalog's. */
static void ls_print_json(json_t *rec)
{
	char tags[256] = "";
	size_t used = 0, i;
	json_t *t;
	json_array_foreach(json_object_get(rec, "tags"), i, t) {
		if (used < sizeof(tags))
			used += (size_t)snprintf(tags + used, sizeof(tags) - used, "%s%s",
						 i ? "," : "", json_string_value(t));
	}
#define U64(k) ((uint64_t)json_integer_value(json_object_get(rec, k)))
	const char *sha = json_string_value(json_object_get(rec, "sha256"));
	char *name = cli_shown_json(json_string_value(json_object_get(rec, "name")));
	ls_line(U64("id"), sha ? sha : "", U64("packets"), U64("file_size"),
		json_integer_value(json_object_get(rec, "earliest_packet_time_ns")),
		name ? name : "", tags);
	free(name);
#undef U64
}

/* An API error reply as the offline path words it. */
static void remote_error(json_t *reply, int status, const char *what)
{
	if (status == 404 && what)
		fprintf(stderr, "capvault: %s\n", what);
	else
		fprintf(stderr, "capvault: %s\n", cli_remote_message(reply, status));
}

/* Pages through GET /v1/captures; text lines as they come, or one array. */
static int ls_remote(struct cli_remote *r, const struct catalog_args *a)
{
	json_t *all = a->json ? json_array() : NULL;
	_cleanup_free_ char *cursor = NULL;
	int rc = CLI_EXIT_OK;
	if (!a->json)
		ls_header();
	do {
		_cleanup_free_ char *target = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&target, &len);
		if (!f)
			return CLI_EXIT_FAILED;
		fputs("/v1/captures?limit=1000", f);
		if (a->tag)
			httpc_put_arg(f, '&', "tag", a->tag);
		if (cursor)
			httpc_put_arg(f, '&', "cursor", cursor);
		fclose(f);
		json_t *reply = NULL, *rec;
		size_t i;
		int status = cli_remote_json(r, "GET", target, NULL, &reply);
		free(cursor);
		cursor = NULL;
		if (status != 200) {
			if (status > 0)
				fprintf(stderr, "capvault: listing the catalog: %s\n",
					cli_remote_message(reply, status));
			rc = CLI_EXIT_FAILED;
		}
		json_array_foreach(rc ? NULL : json_object_get(reply, "captures"), i, rec) {
			if (all)
				json_array_append(all, rec);
			else
				ls_print_json(rec);
		}
		const char *next = json_string_value(json_object_get(reply, "next_cursor"));
		if (!rc && next)
			cursor = strdup(next);
		json_decref(reply);
	} while (cursor);
	if (all && !rc) {
		json_dumpf(all, stdout, JSON_INDENT(2));
		putchar('\n');
	}
	json_decref(all);
	return rc;
}

int cli_ls(int argc, char **argv, const char *usage)
{
	struct catalog_args a = { 0 };
	if (catalog_args_parse(argc, argv, &a) < 0 || a.first_arg != argc) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	struct cli_remote *r = NULL;
	int via = cli_remote_open(&r, a.store);
	if (via != 0) {
		int rc = via > 0 ? ls_remote(r, &a) : CLI_EXIT_FAILED;
		cli_remote_free(r);
		return rc;
	}
	struct vault *v = open_vault(a.store);
	if (!v)
		return CLI_EXIT_FAILED;
	json_t *array = a.json ? json_array() : NULL;
	if (!a.json)
		ls_header();
	int err = catalog_foreach(vault_catalog(v), a.tag, ls_print, array);
	if (array) {
		json_dumpf(array, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(array);
	}
	vault_close(v);
	if (err < 0) {
		fprintf(stderr, "capvault: listing the catalog: %s\n", strerror(-err));
		return CLI_EXIT_FAILED;
	}
	return CLI_EXIT_OK;
}

/* The duplicates merged into a capture, one line each:
 * "also_imported_as       NAME from SOURCE at TIME", names and paths
 * shown as cli_shown_json shows them. */
static void print_arrivals(const char *key, json_t *arr)
{
	size_t i;
	json_t *ar;
	if (json_array_size(arr) == 0)
		printf("%-22s %s\n", key, "[]");
	json_array_foreach(arr, i, ar) {
		const char *name = json_string_value(json_object_get(ar, "name"));
		const char *src = json_string_value(json_object_get(ar, "source_path"));
		const char *at = json_string_value(json_object_get(ar, "import_time"));
		_cleanup_free_ char *shown_name = name ? cli_shown_json(name) : NULL;
		_cleanup_free_ char *shown_src = src ? cli_shown_json(src) : NULL;
		printf("%-22s %s from %s at %s\n", key, shown_name ? shown_name : "-",
		       shown_src ? shown_src : "upload", at ? at : "-");
	}
}

/* One "key: value" line per field, in the JSON's order; strings (names,
 * paths, comments) as cli_shown_json shows them, so each is one line. */
static void print_json_fields(json_t *obj)
{
	const char *key;
	json_t *val;
	json_object_foreach(obj, key, val) {
		if (!strcmp(key, "also_imported_as") && json_is_array(val)) {
			print_arrivals(key, val);
			continue;
		}
		char *text = json_is_string(val) ? cli_shown_json(json_string_value(val))
						 : json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
		printf("%-22s %s\n", key, text ? text : "?");
		free(text);
	}
}

static void print_object(json_t *obj, bool json)
{
	if (json) {
		json_dumpf(obj, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print_json_fields(obj);
	}
}

static int info_remote(struct cli_remote *r, const char *arg, bool json)
{
	_cleanup_free_ char *target = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&target, &len);
	if (!f)
		return CLI_EXIT_FAILED;
	fputs("/v1/captures/", f);
	httpc_put_segment(f, arg);
	fclose(f);
	json_t *reply = NULL;
	int status = cli_remote_json(r, "GET", target, NULL, &reply);
	if (status == 200)
		print_object(reply, json);
	else if (status == 400 && !strncmp(cli_remote_message(reply, status), "capture: ", 9))
		fprintf(stderr, "capvault: %s\n", cli_remote_message(reply, status) + 9);
	else if (status > 0)
		remote_error(reply, status, json_object_get(reply, "message") ? NULL : "no such capture");
	json_decref(reply);
	return status == 200 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

int cli_info(int argc, char **argv, const char *usage)
{
	struct catalog_args a = { 0 };
	if (catalog_args_parse(argc, argv, &a) < 0 || a.first_arg != argc - 1) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	struct cli_remote *r = NULL;
	int via = cli_remote_open(&r, a.store);
	if (via != 0) {
		int rc = via > 0 ? info_remote(r, argv[a.first_arg], a.json) : CLI_EXIT_FAILED;
		cli_remote_free(r);
		return rc;
	}
	struct vault *v = open_vault(a.store);
	if (!v)
		return CLI_EXIT_FAILED;
	struct capture_record *rec = NULL;
	struct errbuf eb = { { 0 } };
	int err = catalog_lookup(vault_catalog(v), argv[a.first_arg], &rec, &eb);
	if (err < 0) {
		fprintf(stderr, "capvault: %s\n",
			eb.msg[0] ? eb.msg : err == -ENOENT ? "no such capture" : strerror(-err));
		vault_close(v);
		return CLI_EXIT_FAILED;
	}
	json_t *obj = capture_record_to_json(rec);
	if (obj)
		print_object(obj, a.json);
	json_decref(obj);
	capture_record_free(rec);
	vault_close(v);
	return obj ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

/* GET /v1/stats is vault_stats_json and, from a daemon, its import
 * counters: those are `capvault status`'s, not the store's. */
static int stats_remote(struct cli_remote *r, bool json)
{
	json_t *reply = NULL;
	int status = cli_remote_json(r, "GET", "/v1/stats", NULL, &reply);
	if (status == 200) {
		json_object_del(reply, "imports");
		print_object(reply, json);
	} else if (status > 0) {
		fprintf(stderr, "capvault: stats: %s\n", cli_remote_message(reply, status));
	}
	json_decref(reply);
	return status == 200 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

int cli_stats(int argc, char **argv, const char *usage)
{
	struct catalog_args a = { 0 };
	if (catalog_args_parse(argc, argv, &a) < 0 || a.first_arg != argc) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	struct cli_remote *r = NULL;
	int via = cli_remote_open(&r, a.store);
	if (via != 0) {
		int rc = via > 0 ? stats_remote(r, a.json) : CLI_EXIT_FAILED;
		cli_remote_free(r);
		return rc;
	}
	struct vault *v = open_vault(a.store);
	if (!v)
		return CLI_EXIT_FAILED;
	json_t *obj = NULL;
	int err = vault_stats_json(v, &obj);
	vault_close(v);
	if (err < 0) {
		fprintf(stderr, "capvault: stats: %s\n", strerror(-err));
		return CLI_EXIT_FAILED;
	}
	print_object(obj, a.json);
	json_decref(obj);
	return CLI_EXIT_OK;
}
