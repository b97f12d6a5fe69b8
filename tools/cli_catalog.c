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
	if (vault_open(&v, cli_store_path(store), &eb) < 0)
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
	vault_close(v);
	if (err < 0) {
		fprintf(stderr, "capvault: stats: %s\n", strerror(-err));
		return CLI_EXIT_FAILED;
	}
	json_t *obj = json_pack("{sIsIsIsIsIsIsI}", "captures", (json_int_t)t.captures, "objects",
				(json_int_t)t.objects, "object_bytes", (json_int_t)t.object_bytes,
				"packets", (json_int_t)t.packets, "index_bytes",
				(json_int_t)t.index_bytes, "free_bytes", (json_int_t)free_bytes,
				"fs_total_bytes", (json_int_t)total_bytes);
	if (a.json) {
		json_dumpf(obj, stdout, JSON_INDENT(2));
		putchar('\n');
	} else {
		print_json_fields(obj);
	}
	json_decref(obj);
	return CLI_EXIT_OK;
}
