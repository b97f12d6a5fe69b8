/*
 * cli_catalog.c - `capvault ls`, `info` and `stats`: read the catalog and
 * print it for people (aligned text) or machines (--json).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "db.h"
#include "store.h"
#include "vault.h"

const char *cli_store_path(const char *option)
{
	if (option)
		return option;
	const char *env = getenv("CAPVAULT_STORE");
	return env && *env ? env : "./capvault-data";
}

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
	/* Reading needs no crash cleanup; the next writer does it. */
	if (vault_open_flags(&v, cli_store_path(store), VAULT_NO_CLEANUP, &eb) < 0)
		fprintf(stderr, "capvault: %s\n", eb.msg);
	return v;
}

static void format_time(uint64_t ns, char *buf, size_t len)
{
	time_t secs = (time_t)(ns / 1000000000u);
	struct tm tm;
	if (!gmtime_r(&secs, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "%" PRIu64 "s", ns / 1000000000u);
}

static int ls_print(void *opaque, const struct capture_record *rec)
{
	json_t *array = opaque;
	if (array)
		return json_array_append_new(array, capture_record_to_json(rec));
	char first[32], hex[65], tags[256] = "";
	size_t used = 0;
	format_time(rec->earliest_ts_ns, first, sizeof(first));
	sha256_hex(rec->sha256, hex);
	hex[12] = '\0';
	for (size_t i = 0; i < rec->ntags && used < sizeof(tags); i++)
		used += (size_t)snprintf(tags + used, sizeof(tags) - used, "%s%s", i ? "," : "",
					 rec->tags[i]);
	printf("%-8" PRIu64 " %-12s %10" PRIu64 " %12" PRIu64 "  %-19s  %-24s %s\n", rec->id, hex,
	       rec->packets, rec->file_size, rec->packets ? first : "-", rec->name, tags);
	return 0;
}

int cli_ls(int argc, char **argv, const char *usage)
{
	struct catalog_args a = { 0 };
	if (catalog_args_parse(argc, argv, &a) < 0 || a.first_arg != argc) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	struct vault *v = open_vault(a.store);
	if (!v)
		return CLI_EXIT_FAILED;
	json_t *array = a.json ? json_array() : NULL;
	if (!a.json)
		printf("%-8s %-12s %10s %12s  %-19s  %-24s %s\n", "ID", "SHA256", "PACKETS", "BYTES",
		       "FIRST PACKET (UTC)", "NAME", "TAGS");
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

/* One "key: value" line per field, in the JSON's order. */
static void print_json_fields(json_t *obj)
{
	const char *key;
	json_t *val;
	json_object_foreach(obj, key, val) {
		char *text = json_is_string(val) ? NULL : json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
		printf("%-22s %s\n", key, text ? text : json_string_value(val));
		free(text);
	}
}

int cli_info(int argc, char **argv, const char *usage)
{
	struct catalog_args a = { 0 };
	if (catalog_args_parse(argc, argv, &a) < 0 || a.first_arg != argc - 1) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		return CLI_EXIT_USAGE;
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
	if (a.json) {
		json_dumpf(obj, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print_json_fields(obj);
	}
	json_decref(obj);
	capture_record_free(rec);
	vault_close(v);
	return CLI_EXIT_OK;
}

/* What stats adds over catalog_totals: per-tag totals, the oldest and
 * newest capture (by import time) and the packet time span. */
struct stats_extra {
	json_t *tags;               /* tag -> {captures, bytes, packets} */
	uint64_t oldest_id, oldest_ns, newest_id, newest_ns;
	uint64_t first_packet_ns, last_packet_ns;
	bool any, any_packets;
};

static void add_u64(json_t *o, const char *key, uint64_t v)
{
	json_int_t cur = json_integer_value(json_object_get(o, key));
	json_object_set_new(o, key, json_integer(cur + (json_int_t)v));
}

static int stats_visit(void *opaque, const struct capture_record *rec)
{
	struct stats_extra *x = opaque;
	for (size_t i = 0; i < rec->ntags; i++) {
		json_t *t = json_object_get(x->tags, rec->tags[i]);
		if (!t) {
			t = json_object();
			json_object_set_new(x->tags, rec->tags[i], t);
		}
		add_u64(t, "captures", 1);
		add_u64(t, "bytes", rec->file_size);
		add_u64(t, "packets", rec->packets);
	}
	if (!x->any || rec->import_time_ns < x->oldest_ns)
		x->oldest_id = rec->id, x->oldest_ns = rec->import_time_ns;
	if (!x->any || rec->import_time_ns >= x->newest_ns)
		x->newest_id = rec->id, x->newest_ns = rec->import_time_ns;
	x->any = true;
	if (rec->packets && (!x->any_packets || rec->earliest_ts_ns < x->first_packet_ns))
		x->first_packet_ns = rec->earliest_ts_ns;
	if (rec->packets && (!x->any_packets || rec->latest_ts_ns > x->last_packet_ns))
		x->last_packet_ns = rec->latest_ts_ns;
	x->any_packets |= rec->packets > 0;
	return 0;
}

static json_t *stats_capture(bool any, uint64_t id, uint64_t ns)
{
	char when[32];
	if (!any)
		return json_null();
	format_time(ns, when, sizeof(when));
	return json_pack("{sIss}", "id", (json_int_t)id, "import_time", when);
}

static int stats_add_extra(struct vault *v, json_t *obj)
{
	struct stats_extra x = { .tags = json_object() };
	int err = catalog_foreach(vault_catalog(v), NULL, stats_visit, &x);
	static const enum db_cf index_cfs[] = { DB_CF_FLOWS, DB_CF_POSTINGS, DB_CF_TINDEX,
						DB_CF_CONTEXTS };
	uint64_t db_bytes = 0;
	char when[32];
	for (size_t i = 0; i < sizeof(index_cfs) / sizeof(index_cfs[0]); i++)
		db_bytes += db_cf_size(vault_db(v), index_cfs[i]);
	json_object_set_new(obj, "index_sst_bytes", json_integer((json_int_t)db_bytes));
	json_object_set_new(obj, "oldest_capture", stats_capture(x.any, x.oldest_id, x.oldest_ns));
	json_object_set_new(obj, "newest_capture", stats_capture(x.any, x.newest_id, x.newest_ns));
	format_time(x.first_packet_ns, when, sizeof(when));
	json_object_set_new(obj, "first_packet", x.any_packets ? json_string(when) : json_null());
	format_time(x.last_packet_ns, when, sizeof(when));
	json_object_set_new(obj, "last_packet", x.any_packets ? json_string(when) : json_null());
	json_object_set_new(obj, "tags", x.tags);
	return err;
}

int cli_stats(int argc, char **argv, const char *usage)
{
	struct catalog_args a = { 0 };
	if (catalog_args_parse(argc, argv, &a) < 0 || a.first_arg != argc) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		return CLI_EXIT_USAGE;
	}
	struct vault *v = open_vault(a.store);
	if (!v)
		return CLI_EXIT_FAILED;
	struct catalog_totals t = { 0 };
	uint64_t free_bytes = 0, total_bytes = 0;
	int err = catalog_totals(vault_catalog(v), &t);
	if (!err)
		err = store_space(vault_store(v), &free_bytes, &total_bytes);
	json_t *obj = json_pack("{sIsIsIsIsIsIsI}", "captures", (json_int_t)t.captures, "objects",
				(json_int_t)t.objects, "object_bytes", (json_int_t)t.object_bytes,
				"packets", (json_int_t)t.packets, "index_bytes",
				(json_int_t)t.index_bytes, "free_bytes", (json_int_t)free_bytes,
				"fs_total_bytes", (json_int_t)total_bytes);
	if (!err)
		err = stats_add_extra(v, obj);
	vault_close(v);
	if (err < 0) {
		fprintf(stderr, "capvault: stats: %s\n", strerror(-err));
		json_decref(obj);
		return CLI_EXIT_FAILED;
	}
	if (a.json) {
		json_dumpf(obj, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print_json_fields(obj);
	}
	json_decref(obj);
	return CLI_EXIT_OK;
}
