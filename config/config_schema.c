/*
 * config_schema.c - every setting capvault reads: its key, type, range and
 * default (the tables), plus the rules that span several keys (the check
 * functions). Adding a setting means a row here and its documentation in
 * capvault.yaml; test_config checks that every key is documented.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "config_types.h"
#include "mountid.h"
#include "objstore.h"
#include "s3prefix.h"

#define MS (1000ull * 1000)
#define SEC (1000 * MS)
/* "16" from 16: the object store's defaults are numbers in objstore.h. */
#define STR_(x) #x
#define STR(x) STR_(x)

/* ---- types only one setting uses ---- */

static int listen_error(const char *text, const char *detail, struct errbuf *why)
{
	return errbuf_set(why, -EINVAL,
			  "invalid listen address '%s': %s (expected HOST:PORT, e.g. "
			  "127.0.0.1:8080 or [::1]:8080)",
			  text, detail);
}

static int split_host_port(const char *text, char *host, size_t size, const char **port,
			   struct errbuf *why)
{
	const char *colon;

	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		unsigned char addr[16];
		if (!end || (size_t)(end - text - 1) >= size)
			return listen_error(text, "no closing ']'", why);
		memcpy(host, text + 1, (size_t)(end - text - 1));
		host[end - text - 1] = '\0';
		if (inet_pton(AF_INET6, host, addr) != 1)
			return listen_error(text, "not an IPv6 address in the brackets", why);
		colon = end + 1;
		if (*colon != ':')
			return listen_error(text, "no port", why);
	} else {
		colon = strchr(text, ':');
		if (!colon)
			return listen_error(text, "no port", why);
		if (strchr(colon + 1, ':'))
			return listen_error(text, "IPv6 addresses go in brackets", why);
		if (colon == text || (size_t)(colon - text) >= size)
			return listen_error(text, "no host; 0.0.0.0 or [::] listens on all addresses", why);
		memcpy(host, text, (size_t)(colon - text));
		host[colon - text] = '\0';
		for (const char *p = host; *p; p++) {
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
				return listen_error(text, "not a host name or address", why);
		}
	}
	*port = colon + 1;
	return 0;
}

/* Two spellings of one address (::1 and 0:0::1) are the same host. */
static bool same_host(const char *a, const char *b)
{
	unsigned char x[16], y[16];
	int af = strchr(a, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(af, a, x) == 1 && inet_pton(af, b, y) == 1)
		return !memcmp(x, y, af == AF_INET6 ? 16 : 4);
	return !strcasecmp(a, b);
}

static int parse_listen(struct parse_ctx *c, const struct option *o, const char *text, void *obj,
			struct errbuf *why)
{
	struct config_listen **v = FIELD(obj, o, struct config_listen *);
	size_t *n = (size_t *)((char *)obj + o->count_offset);
	char host[256];
	const char *port = NULL;
	unsigned long p = 0;

	(void)c;
	int r = split_host_port(text, host, sizeof(host), &port, why);
	if (r < 0)
		return r;
	for (const char *d = port; *d && p <= 65535; d++)
		p = isdigit((unsigned char)*d) ? p * 10 + (unsigned long)(*d - '0') : 99999999;
	if (!*port || p == 0 || p > 65535)
		return listen_error(text, "the port must be 1-65535", why);
	/* Listed twice, the second bind fails at start with "Address already
	 * in use", as if another program held the port. */
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].port == p && same_host((*v)[i].host, host))
			return errbuf_set(why, -EINVAL, "listen address '%s' is listed twice", text);
	struct config_listen *grown = reallocarray(*v, *n + 1, sizeof(**v));
	if (!grown)
		return -ENOMEM;
	*v = grown;
	grown[*n] = (struct config_listen){ .host = strdup(host), .port = (uint16_t)p };
	if (!grown[*n].host)
		return -ENOMEM;
	++*n;
	return 0;
}

static void free_listen(const struct option *o, void *obj)
{
	struct config_listen *v = *FIELD(obj, o, struct config_listen *);
	size_t n = *(size_t *)((char *)obj + o->count_offset);

	for (size_t i = 0; i < n; i++)
		free(v[i].host);
	free(v);
}

static int parse_after_import(struct parse_ctx *c, const struct option *o, const char *text,
			      void *obj, struct errbuf *why)
{
	struct config_import *imp = obj;

	(void)o;
	if (!strcmp(text, "delete")) {
		imp->after_import = CONFIG_AFTER_DELETE;
	} else if (!strcmp(text, "keep")) {
		imp->after_import = CONFIG_AFTER_KEEP;
	} else if (!strncmp(text, "move:", 5) && text[5]) {
		imp->after_import = CONFIG_AFTER_MOVE;
		return config_path_resolve(c, text + 5, &imp->move_to);
	} else {
		return errbuf_set(why, -EINVAL,
				  "invalid after_import '%s' (valid: delete, keep, move:FOLDER)", text);
	}
	return 0;
}

static void free_after_import(const struct option *o, void *obj)
{
	(void)o;
	free(((struct config_import *)obj)->move_to);
}

/* "5%" of the filesystem, or an absolute size. */
static int parse_min_free(struct parse_ctx *c, const struct option *o, const char *text,
			  void *obj, struct errbuf *why)
{
	struct config_retention *ret = obj;
	size_t len = strlen(text);

	(void)c;
	(void)o;
	if (len > 1 && text[len - 1] == '%') {
		unsigned pct = 0;
		for (size_t i = 0; i + 1 < len; i++) {
			if (isdigit((unsigned char)text[i]))
				pct = pct * 10 + (unsigned)(text[i] - '0');
			if (!isdigit((unsigned char)text[i]) || pct > 99)
				return errbuf_set(why, -EINVAL, "'min_free' must be a size or a whole "
						  "percentage from 0%% to 99%%, got '%s'", text);
		}
		ret->min_free_percent = pct;
		return 0;
	}
	return config_parse_size(text, &ret->min_free_bytes, why);
}

static const struct opt_type t_listen = { SHAPE_LIST, "a list of HOST:PORT", parse_listen,
					  free_listen };
static const struct opt_type t_after_import = { SHAPE_SCALAR, "delete, keep or move:FOLDER",
						parse_after_import, free_after_import };
static const struct opt_type t_min_free = { SHAPE_SCALAR, "a size or a percentage",
					    parse_min_free, NULL };

/* ---- checks that need the filesystem or several keys ---- */

static bool path_checks(const struct parse_ctx *c)
{
	return !(c->flags & CONFIG_NO_PATH_CHECKS);
}

/* Which option of sec is key, for the vals[] a check gets. */
static const struct ytree *val(const struct section *sec, const struct ytree *const *vals,
			       const char *key)
{
	int i = section_find(sec, key);
	return i >= 0 ? vals[i] : NULL;
}

/* Whether map has key at all, valid or not. */
static bool key_given(const struct ytree *map, const char *key)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		if (map->items[i]->kind == YTREE_SCALAR && !strcmp(map->items[i]->text, key))
			return true;
	}
	return false;
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A folder the daemon may create: its parent must be there. */
static void check_parent(struct parse_ctx *c, const struct ytree *at, const char *what,
			 const char *path, const char *shown)
{
	_cleanup_free_ char *parent = strdup(path);
	char *slash;

	if (!parent) {
		c->oom = -ENOMEM;
		return;
	}
	slash = strrchr(parent, '/');
	/* Relative to the working directory, which exists. (_cleanup_free_
	 * frees parent; cppcheck does not know the attribute.) */
	if (!slash)
		// cppcheck-suppress memleak
		return;
	slash[slash == parent] = '\0';
	if (!is_dir(parent))
		ctx_error(c, at, "the folder holding %s '%s' does not exist", what, shown);
}

/* The mount a folder is on (statx's mnt_id): the folder's own, or its
 * parent's when it is not made yet; 0 when that cannot be told. */
static uint64_t mount_of(const char *path)
{
	uint64_t mnt = mount_id_at(AT_FDCWD, path, 0);
	if (mnt)
		return mnt;
	_cleanup_free_ char *parent = strdup(path);
	char *slash = parent ? strrchr(parent, '/') : NULL;
	if (!slash)
		// cppcheck-suppress memleak
		return 0; /* _cleanup_free_ frees parent; cppcheck does not know it */
	slash[slash == parent] = '\0';
	return mount_id_at(AT_FDCWD, parent, 0);
}

/* Files are moved out of an import folder by rename, which fails across
 * mounts (EXDEV, even two mounts of one file system): every file would
 * stay where it is, failing, import after import. */
static void check_same_mount(struct parse_ctx *c, const struct ytree *at, const char *what,
			     const char *folder, const char *import_folder)
{
	uint64_t there = mount_of(folder), home = mount_of(import_folder);

	if (there && home && there != home)
		ctx_error(c, at,
			  "%s '%s' is on another mount than the import folder '%s': files are "
			  "moved there by rename, which cannot cross mounts; pick a folder on the "
			  "import folder's mount",
			  what, folder, import_folder);
}

/* ---- the tables ---- */

#define KEY(S, k, field, t, lo, hi, d, fl)                                              \
	{                                                                               \
		.key = (k), .type = &(t), .offset = offsetof(S, field), .min = (lo),      \
		.max = (hi), .def = (d), .flags = (fl)                                  \
	}

static const char *const watch_names[] = { "auto", "inotify", "poll", NULL };
static const char *const age_by_names[] = { "import", "last_packet", NULL };

static void import_check(struct parse_ctx *c, void *obj, const struct ytree *map,
			 const struct ytree *const *vals);
static void tls_check(struct parse_ctx *c, void *obj, const struct ytree *map,
		      const struct ytree *const *vals);
static void policy_check(struct parse_ctx *c, void *obj, const struct ytree *map,
			 const struct ytree *const *vals);
static void retention_check(struct parse_ctx *c, void *obj, const struct ytree *map,
			    const struct ytree *const *vals);
static void root_check(struct parse_ctx *c, void *obj, const struct ytree *map,
		       const struct ytree *const *vals);

#define I struct config_import
static const struct option import_opts[] = {
	KEY(I, "path", path, t_path, 0, 0, NULL, OPT_REQUIRED),
	KEY(I, "recursive", recursive, t_bool, 0, 0, "true", 0),
	{ .key = "watch", .type = &t_enum, .offset = offsetof(I, watch), .def = "auto",
	  .names = watch_names },
	KEY(I, "poll_interval", poll_interval_ns, t_duration, 100 * MS, 86400 * SEC, "10s", 0),
	KEY(I, "settle_time", settle_time_ns, t_duration, 0, 3600 * SEC, "2s", 0),
	/* Hidden files and the usual partial-download suffixes. */
	KEY(I, "ignore", ignore, t_strv, 0, 0, ".*\n*.tmp\n*.part", 0),
	KEY(I, "tags", tags, t_tags, 0, 0, NULL, 0),
	KEY(I, "tags_from_subfolders", tags_from_subfolders, t_bool, 0, 0, "false", 0),
	KEY(I, "after_import", after_import, t_after_import, 0, 0, "delete", 0),
	KEY(I, "failed_folder", failed_folder, t_path, 0, 0, NULL, 0),
};
#undef I
static const struct section import_section = {
	.what = "import folder", .opts = import_opts, .n_opts = ARRAY_SIZE(import_opts),
	.size = sizeof(struct config_import), .check = import_check,
};

#define T struct config_api
static const struct option tls_opts[] = {
	KEY(T, "cert", tls_cert, t_path, 0, 0, NULL, 0),
	KEY(T, "key", tls_key, t_path, 0, 0, NULL, 0),
};
static const struct section tls_section = {
	.what = "api.tls", .opts = tls_opts, .n_opts = ARRAY_SIZE(tls_opts), .check = tls_check,
};

static const struct option api_opts[] = {
	{ .key = "listen", .type = &t_listen, .offset = offsetof(T, listen),
	  .count_offset = offsetof(T, n_listen), .def = "127.0.0.1:8080" },
	KEY(T, "unix_socket", unix_socket, t_path, 0, 0, NULL, 0),
	/* tls's fields live in struct config_api itself: offset 0. */
	{ .key = "tls", .type = &t_section, .offset = 0, .sub = &tls_section },
	KEY(T, "max_upload_size", max_upload_size, t_size, 1ull << 20, UINT64_MAX, "16GiB", 0),
	KEY(T, "max_connections", max_connections, t_uint, 1, 65536, "64", 0),
	KEY(T, "timeout", timeout_ns, t_duration, SEC, 86400 * SEC, "60s", 0),
	KEY(T, "header_timeout", header_timeout_ns, t_duration, SEC, 86400 * SEC, "10s", 0),
	KEY(T, "max_connections_per_ip", max_connections_per_ip, t_uint, 0, 65536, "32", 0),
	KEY(T, "body_timeout", body_timeout_ns, t_duration, SEC, 86400 * SEC, "30s", 0),
	KEY(T, "body_min_rate", body_min_rate, t_size, 0, 1ull << 30, "1KiB", 0),
};
#undef T
static const struct section api_section = {
	.what = "api", .opts = api_opts, .n_opts = ARRAY_SIZE(api_opts),
};

#define P struct config_policy
static const struct option policy_opts[] = {
	KEY(P, "name", name, t_string, 0, 0, NULL, OPT_REQUIRED),
	KEY(P, "tags", tags, t_tags, 0, 0, NULL, 0),
	KEY(P, "folder", folder, t_path, 0, 0, NULL, 0),
	KEY(P, "max_age", max_age_ns, t_duration, 0, UINT64_MAX, NULL, 0),
	{ .key = "age_by", .type = &t_enum, .offset = offsetof(P, age_by), .def = "import",
	  .names = age_by_names },
	KEY(P, "max_count", max_count, t_u64, 0, UINT64_MAX, NULL, 0),
	KEY(P, "allow_empty", allow_empty, t_bool, 0, 0, "false", 0),
	KEY(P, "tier_after", tier_after_ns, t_duration, 0, UINT64_MAX, NULL, 0),
};
#undef P
static const struct section policy_section = {
	.what = "retention policy", .opts = policy_opts, .n_opts = ARRAY_SIZE(policy_opts),
	.size = sizeof(struct config_policy), .check = policy_check,
};

#define R struct config_retention
static const struct option retention_opts[] = {
	KEY(R, "interval", interval_ns, t_duration, SEC, 30 * 86400 * SEC, "1h", 0),
	KEY(R, "protect_tag", protect_tag, t_string, 0, 0, "keep", 0),
	KEY(R, "max_total_size", max_total_size, t_size, 0, UINT64_MAX, "0", 0),
	KEY(R, "local_max_size", local_max_size, t_size, 0, UINT64_MAX, "0", 0),
	KEY(R, "min_free", min_free_bytes, t_min_free, 0, 0, "0", 0),
	{ .key = "policies", .type = &t_section_list, .offset = offsetof(R, policies),
	  .count_offset = offsetof(R, n_policies), .sub = &policy_section },
};
#undef R
static const struct section retention_section = {
	.what = "retention", .opts = retention_opts, .n_opts = ARRAY_SIZE(retention_opts),
	.check = retention_check,
};

#define S struct config_scrub
static const struct option scrub_opts[] = {
	KEY(S, "interval", interval_ns, t_duration, 0, 365 * 86400 * SEC, "7d", 0),
	KEY(S, "rate", rate, t_size, 1ull << 20, UINT64_MAX, "64MiB", 0),
};
#undef S
static const struct section scrub_section = {
	.what = "scrub", .opts = scrub_opts, .n_opts = ARRAY_SIZE(scrub_opts),
};

#define D struct config_decoder
static const struct option decoder_opts[] = {
	KEY(D, "path", path, t_string, 0, 0, "tshark", 0),
	KEY(D, "timeout", timeout_ns, t_duration, 100 * MS, 600 * SEC, "10s", 0),
	KEY(D, "memory", memory, t_size, 64ull << 20, UINT64_MAX, "2GiB", 0),
	KEY(D, "max_output", max_output, t_size, 64ull << 10, 4ull << 30, "64MiB", 0),
	KEY(D, "max_running", max_running, t_uint, 1, 256, "4", 0),
	KEY(D, "warm", warm, t_bool, 0, 0, "true", 0),
};
#undef D
static const struct section decoder_section = {
	.what = "decoder", .opts = decoder_opts, .n_opts = ARRAY_SIZE(decoder_opts),
};

#define CS struct config_cloudshark
static const struct option cloudshark_opts[] = {
	KEY(CS, "url_upload_allow", url_upload_allow, t_strv, 0, 0, NULL, 0),
};
#undef CS
static const struct section cloudshark_section = {
	.what = "cloudshark", .opts = cloudshark_opts, .n_opts = ARRAY_SIZE(cloudshark_opts),
};

static void object_store_check(struct parse_ctx *c, void *obj, const struct ytree *map,
			       const struct ytree *const *vals);

#define O struct config_object_store
static const struct option object_store_opts[] = {
	/* Required when the section is there: object_store_check says so. */
	KEY(O, "endpoint", endpoint, t_string, 0, 0, NULL, 0),
	KEY(O, "bucket", bucket, t_string, 0, 0, NULL, 0),
	KEY(O, "region", region, t_string, 0, 0, OBJSTORE_REGION_DEFAULT, 0),
	KEY(O, "credentials_file", credentials_file, t_path, 0, 0, NULL, 0),
	KEY(O, "profile", profile, t_string, 0, 0, "default", 0),
	/* "" (the bucket's root) as README and capvault.yaml spell the default. */
	KEY(O, "prefix", prefix, t_string, 0, 0, NULL, OPT_EMPTY_OK),
	KEY(O, "cache_size", cache_size, t_size, 0, UINT64_MAX, STR(OBJSTORE_CACHE_GIB_DEFAULT) "GiB", 0),
	KEY(O, "ca_file", ca_file, t_path, 0, 0, NULL, 0),
	KEY(O, "connect_timeout", connect_timeout_ns, t_duration, 100 * MS, 600 * SEC,
	    STR(OBJSTORE_CONNECT_TIMEOUT_S_DEFAULT) "s", 0),
	KEY(O, "request_timeout", request_timeout_ns, t_duration, 100 * MS, 3600 * SEC,
	    STR(OBJSTORE_REQUEST_TIMEOUT_S_DEFAULT) "s", 0),
	/* Its own default, not the library's (request_timeout): queries fail fast. */
	KEY(O, "read_timeout", read_timeout_ns, t_duration, 100 * MS, 3600 * SEC, "10s", 0),
	KEY(O, "max_inflight", max_inflight, t_uint, 1, 64, STR(OBJSTORE_MAX_INFLIGHT_DEFAULT), 0),
	KEY(O, "part_size", part_size, t_size, 5ull << 20, 5ull << 30,
	    STR(OBJSTORE_PART_MIB_DEFAULT) "MiB", 0),
};
#undef O
static const struct section object_store_section = {
	.what = "object_store", .opts = object_store_opts,
	.n_opts = ARRAY_SIZE(object_store_opts), .check = object_store_check,
};

#define C struct config
static const struct option root_opts[] = {
	KEY(C, "store", store, t_path, 0, 0, NULL, OPT_REQUIRED),
	{ .key = "import", .type = &t_section_list, .offset = offsetof(C, imports),
	  .count_offset = offsetof(C, n_imports), .sub = &import_section },
	/* No default: root_check counts the CPUs. */
	KEY(C, "jobs", jobs, t_uint, 1, 256, NULL, 0),
	KEY(C, "log_level", log_level, t_log_level, 0, 0, "info", 0),
	KEY(C, "log_file", log_file, t_path, 0, 0, NULL, 0),
	{ .key = "api", .type = &t_section, .offset = offsetof(C, api), .sub = &api_section },
	{ .key = "retention", .type = &t_section, .offset = offsetof(C, retention),
	  .sub = &retention_section },
	{ .key = "scrub", .type = &t_section, .offset = offsetof(C, scrub),
	  .sub = &scrub_section },
	{ .key = "decoder", .type = &t_section, .offset = offsetof(C, decoder),
	  .sub = &decoder_section },
	{ .key = "cloudshark", .type = &t_section, .offset = offsetof(C, cloudshark),
	  .sub = &cloudshark_section },
	{ .key = "object_store", .type = &t_section, .offset = offsetof(C, object_store),
	  .sub = &object_store_section },
};
#undef C
const struct section config_root_section = {
	.what = "the configuration", .opts = root_opts, .n_opts = ARRAY_SIZE(root_opts),
	.check = root_check,
};

/* ---- the checks ---- */

static void import_check(struct parse_ctx *c, void *obj, const struct ytree *map,
			 const struct ytree *const *vals)
{
	struct config_import *imp = obj;
	const struct ytree *path = val(&import_section, vals, "path");
	const struct ytree *after = val(&import_section, vals, "after_import");
	const struct ytree *failed = val(&import_section, vals, "failed_folder");

	(void)map;
	if (!path)
		return;
	if (!imp->failed_folder && asprintf(&imp->failed_folder, "%s/.failed", imp->path) < 0) {
		imp->failed_folder = NULL;
		c->oom = -ENOMEM;
	}
	if (!path_checks(c))
		return;
	if (!is_dir(imp->path))
		ctx_error(c, path, "import folder '%s' does not exist", path->text);
	if (after && imp->move_to) {
		check_parent(c, after, "the after_import folder", imp->move_to, after->text + 5);
		check_same_mount(c, after, "the after_import folder", imp->move_to, imp->path);
	}
	if (failed && imp->failed_folder)
		check_same_mount(c, failed, "the failed folder", imp->failed_folder, imp->path);
}

static void tls_check(struct parse_ctx *c, void *obj, const struct ytree *map,
		      const struct ytree *const *vals)
{
	struct config_api *api = obj;
	const struct ytree *cert = val(&tls_section, vals, "cert");
	const struct ytree *key = val(&tls_section, vals, "key");

	if (!api->tls_cert != !api->tls_key) {
		ctx_error(c, map, "api.tls needs both 'cert' and 'key'");
		return;
	}
	if (!path_checks(c))
		return;
	if (cert && api->tls_cert && access(api->tls_cert, F_OK) < 0)
		ctx_error(c, cert, "TLS certificate '%s' does not exist", cert->text);
	if (key && api->tls_key && access(api->tls_key, F_OK) < 0)
		ctx_error(c, key, "TLS key '%s' does not exist", key->text);
}

/* A zero limit would prune every matching capture at once: almost always
 * a typo, so it has to be asked for by name. */
static void policy_check(struct parse_ctx *c, void *obj, const struct ytree *map,
			 const struct ytree *const *vals)
{
	struct config_policy *pol = obj;
	const struct ytree *age = val(&policy_section, vals, "max_age");
	const struct ytree *count = val(&policy_section, vals, "max_count");
	const struct ytree *tier = val(&policy_section, vals, "tier_after");

	pol->has_max_age = age != NULL;
	pol->has_max_count = count != NULL;
	pol->has_tier_after = tier != NULL;
	if (age && pol->max_age_ns == 0 && !pol->allow_empty)
		ctx_error(c, age, "max_age 0 deletes every matching capture: add "
				  "'allow_empty: true' to mean it");
	if (count && pol->max_count == 0 && !pol->allow_empty)
		ctx_error(c, count, "max_count 0 deletes every matching capture: add "
				    "'allow_empty: true' to mean it");
	/* Only when neither was written at all: a rejected value already has
	 * its own error. */
	if (!age && !count && !tier && pol->name && map && !key_given(map, "max_age") &&
	    !key_given(map, "max_count") && !key_given(map, "tier_after"))
		ctx_error(c, map, "retention policy '%s' sets none of max_age, max_count and "
			  "tier_after", pol->name);
}

static void retention_check(struct parse_ctx *c, void *obj, const struct ytree *map,
			    const struct ytree *const *vals)
{
	struct config_retention *ret = obj;
	const struct ytree *protect = val(&retention_section, vals, "protect_tag");
	const struct ytree *policies = val(&retention_section, vals, "policies");

	(void)map;
	if (ret->protect_tag && !config_tag_valid(ret->protect_tag))
		ctx_error(c, protect,
			  "invalid tag '%s' (tags are 1-128 of A-Z a-z 0-9 . _ : / @ + -)",
			  ret->protect_tag);
	for (size_t i = 0; policies && policies->n == ret->n_policies && i < ret->n_policies; i++) {
		for (size_t j = 0; j < i; j++) {
			const char *a = ret->policies[i].name, *b = ret->policies[j].name;
			if (a && b && !strcmp(a, b))
				ctx_error(c, policies->items[i],
					  "two retention policies are named '%s'", a);
		}
	}
}

/* The host of an http(s) URL with nothing after host[:port] but '/'. */
static bool endpoint_host(const char *url, char *host, size_t size, bool *tls)
{
	const char *p, *end;

	*tls = !strncmp(url, "https://", 8);
	if (!*tls && strncmp(url, "http://", 7))
		return false;
	p = url + (*tls ? 8 : 7);
	if (*p == '[') {
		end = strchr(p, ']');
		if (!end)
			return false;
		p++;
	} else {
		end = p + strcspn(p, ":/");
	}
	if (end == p || (size_t)(end - p) >= size)
		return false;
	memcpy(host, p, (size_t)(end - p));
	host[end - p] = '\0';
	for (const char *h = host; *h; h++) {
		if (!isalnum((unsigned char)*h) && !strchr(".-:", *h))
			return false;
	}
	end += *end == ']';
	if (*end == ':') {
		/* 1-65535: libcurl refuses another port only at the first
		 * request, which the store's state would not show. */
		char *stop;
		if (!isdigit((unsigned char)end[1]))
			return false;
		errno = 0;
		unsigned long port = strtoul(end + 1, &stop, 10);
		if (errno || port < 1 || port > 65535)
			return false;
		end = stop;
	}
	return !*end || !strcmp(end, "/");
}

static bool is_loopback(const char *host)
{
	struct in_addr a4;

	if (!strcmp(host, "localhost") || !strcmp(host, "::1"))
		return true;
	return inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* S3's bucket names: 3-63 of a-z 0-9 . -, starting and ending with a
 * letter or digit, no "..", ".-" or "-.", not an IPv4 address. */
static bool bucket_valid(const char *b)
{
	size_t len = strlen(b);

	if (len < 3 || len > 63 || !isalnum((unsigned char)b[0]) ||
	    !isalnum((unsigned char)b[len - 1]))
		return false;
	for (const char *p = b; *p; p++) {
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && !strchr(".-", *p))
			return false;
	}
	/* Nor what S3 refuses besides (InvalidBucketName, seen only at the
	 * first request): two dots, or a dot and a dash, side by side, and
	 * the form of an IPv4 address. */
	struct in_addr a4;
	return !strstr(b, "..") && !strstr(b, ".-") && !strstr(b, "-.") &&
	       inet_pton(AF_INET, b, &a4) != 1;
}

static void object_store_paths(struct parse_ctx *c, const struct config_object_store *os,
			       const struct ytree *const *vals)
{
	const struct ytree *cred = val(&object_store_section, vals, "credentials_file");
	const struct ytree *ca = val(&object_store_section, vals, "ca_file");

	if (cred && os->credentials_file && access(os->credentials_file, F_OK) < 0)
		ctx_error(c, cred, "credentials file '%s' does not exist", cred->text);
	struct stat st;
	if (ca && os->ca_file && stat(os->ca_file, &st) < 0)
		ctx_error(c, ca, "CA file '%s' does not exist", ca->text);
	/* A folder (an OpenSSL CA folder, say) fails every request's TLS
	 * set-up ("error setting certificate file"), not the start. */
	else if (ca && os->ca_file && !S_ISREG(st.st_mode))
		ctx_error(c, ca, "CA file '%s' is not a file", ca->text);
}

static void object_store_check(struct parse_ctx *c, void *obj, const struct ytree *map,
			       const struct ytree *const *vals)
{
	struct config_object_store *os = obj;
	const struct ytree *endpoint = val(&object_store_section, vals, "endpoint");
	const struct ytree *bucket = val(&object_store_section, vals, "bucket");
	const struct ytree *region = val(&object_store_section, vals, "region");
	const struct ytree *prefix = val(&object_store_section, vals, "prefix");
	char host[256];
	bool tls = false;

	if (!map)
		return;
	os->enabled = true;
	if (!key_given(map, "endpoint"))
		ctx_error(c, map, "object_store is missing 'endpoint'");
	if (!key_given(map, "bucket"))
		ctx_error(c, map, "object_store is missing 'bucket'");
	/* Not repeated: a password in user:password@ must not reach a log. */
	if (endpoint && strchr(os->endpoint, '@'))
		ctx_error(c, endpoint, "invalid endpoint: no user:password@ in it (the keys go "
				       "in credentials_file or the environment)");
	else if (endpoint && !endpoint_host(os->endpoint, host, sizeof(host), &tls))
		ctx_error(c, endpoint, "invalid endpoint '%s' (expected https://HOST[:PORT])",
			  os->endpoint);
	else if (endpoint && !tls && !is_loopback(host))
		ctx_error(c, endpoint, "endpoint '%s' is plain http: use https:// (http:// "
				       "only to a loopback address)", os->endpoint);
	if (bucket && !bucket_valid(os->bucket))
		ctx_error(c, bucket, "invalid bucket '%s' (3-63 of a-z 0-9 . -, a letter or digit "
				     "first and last, no '..', '.-' or '-.', not an IP address)",
			  os->bucket);
	/* At most 64 characters, as objstore_s3_new() takes (a longer one
	 * would pass here and stop capvaultd at start). */
	for (const char *p = region && os->region ? os->region : ""; *p; p++) {
		if ((!isalnum((unsigned char)*p) && *p != '-' && *p != '_') ||
		    p - os->region >= 64) {
			ctx_error(c, region, "invalid region '%s'", os->region);
			break;
		}
	}
	const char *why = prefix && os->prefix ? s3_prefix_problem(os->prefix) : NULL;
	if (why)
		ctx_error(c, prefix, "invalid prefix: it %s", why);
	if (path_checks(c))
		object_store_paths(c, os, vals);
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > 256 ? 256 : (unsigned)n;
}

static void check_store(struct parse_ctx *c, const struct config *cfg, const struct ytree *at)
{
	struct stat st;

	if (stat(cfg->store, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			ctx_error(c, at, "store '%s' is not a folder", at->text);
		return;
	}
	check_parent(c, at, "the store", cfg->store, at->text);
}

static void root_check(struct parse_ctx *c, void *obj, const struct ytree *map,
		       const struct ytree *const *vals)
{
	struct config *cfg = obj;
	const struct ytree *store = val(&config_root_section, vals, "store");

	(void)map;
	if (cfg->jobs == 0)
		cfg->jobs = online_cpus();
	if (!store)
		return;
	if (!cfg->api.unix_socket &&
	    asprintf(&cfg->api.unix_socket, "%s/capvault.sock", cfg->store) < 0) {
		cfg->api.unix_socket = NULL;
		c->oom = -ENOMEM;
	}
	if (path_checks(c)) {
		check_store(c, cfg, store);
		config_check_paths(c, cfg, map);
	}
}
