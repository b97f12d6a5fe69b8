/*
 * config.c - loads a configuration: reads the file, walks the YAML tree
 * against the schema (config_schema.c), collects every error, and hands
 * over a struct config only when there are none.
 *
 * The walk is generic: what a key means, its type, range and default live
 * in the schema table, so adding a setting is one row there plus its
 * documentation in default.yaml/capvault.yaml (a test checks the latter).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "config_priv.h"

extern const char config_default_yaml[];

static void parse_map(struct parse_ctx *c, const struct section *sec, const struct ytree *map,
		      void *obj);

int section_find(const struct section *sec, const char *key)
{
	for (size_t i = 0; i < sec->n_opts; i++) {
		if (!strcmp(sec->opts[i].key, key))
			return (int)i;
	}
	return -1;
}

/* Optimal string alignment distance (Damerau-Levenshtein without
 * substring moves): a swapped pair of letters counts as one typo. */
static size_t osa_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[3][64];

	if (la >= 63 || lb >= 63)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t *cur = d[i % 3], *prev = d[(i - 1) % 3], *prev2 = d[(i + 1) % 3];
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = prev[j - 1] + cost;
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			cur[j] = best;
		}
	}
	return d[la % 3][lb];
}

/* The closest valid key within two edits, or NULL. */
static const char *suggest(const struct section *sec, const char *key)
{
	const char *best = NULL;
	size_t best_d = 3;

	for (size_t i = 0; i < sec->n_opts; i++) {
		size_t d = osa_distance(key, sec->opts[i].key);
		if (d < best_d && d < strlen(sec->opts[i].key)) {
			best = sec->opts[i].key;
			best_d = d;
		}
	}
	return best;
}

static const char *kind_name(const struct ytree *node)
{
	if (node->kind == YTREE_MAP)
		return "a mapping";
	if (node->kind == YTREE_SEQ)
		return "a list";
	return ytree_is_null(node) ? "nothing" : "a value";
}

static void parse_scalar(struct parse_ctx *c, const struct option *o, const struct ytree *node,
			 void *obj, bool *ok)
{
	struct errbuf why = { "" };

	if (node->kind != YTREE_SCALAR || ytree_is_null(node)) {
		ctx_error(c, node, "expected %s for '%s', got %s", o->type->expect, o->key,
			  kind_name(node));
		*ok = false;
		return;
	}
	int r = o->type->parse(c, o, node->text, obj, &why);
	if (r == -ENOMEM)
		c->oom = r;
	else if (r < 0)
		ctx_error(c, node, "%s", why.msg);
	if (r < 0)
		*ok = false;
}

static void parse_list(struct parse_ctx *c, const struct option *o, const struct ytree *node,
		       void *obj, bool *ok)
{
	if (ytree_is_null(node))
		return;
	if (node->kind == YTREE_SCALAR) {
		parse_scalar(c, o, node, obj, ok);
		return;
	}
	if (node->kind != YTREE_SEQ) {
		ctx_error(c, node, "expected %s for '%s', got %s", o->type->expect, o->key,
			  kind_name(node));
		*ok = false;
		return;
	}
	for (size_t i = 0; i < node->n; i++)
		parse_scalar(c, o, node->items[i], obj, ok);
}

static void parse_section_list(struct parse_ctx *c, const struct option *o,
			       const struct ytree *node, void *obj, bool *ok)
{
	void **array = FIELD(obj, o, void *);
	size_t *count = (size_t *)((char *)obj + o->count_offset);

	if (ytree_is_null(node))
		return;
	if (node->kind != YTREE_SEQ) {
		ctx_error(c, node, "expected %s for '%s', got %s", o->type->expect, o->key,
			  kind_name(node));
		*ok = false;
		return;
	}
	*array = calloc(node->n ? node->n : 1, o->sub->size);
	if (!*array) {
		c->oom = -ENOMEM;
		return;
	}
	for (size_t i = 0; i < node->n; i++) {
		const struct ytree *item = node->items[i];
		if (item->kind != YTREE_MAP) {
			ctx_error(c, item, "expected %s, got %s", o->sub->what, kind_name(item));
			*ok = false;
			continue;
		}
		parse_map(c, o->sub, item, (char *)*array + *count * o->sub->size);
		++*count;
	}
}

/* Returns whether the value was valid; node NULL means "use the default". */
static bool parse_value(struct parse_ctx *c, const struct option *o, const struct ytree *node,
			void *obj)
{
	bool ok = true;

	switch (o->type->shape) {
	case SHAPE_SCALAR:
		parse_scalar(c, o, node, obj, &ok);
		break;
	case SHAPE_LIST:
		parse_list(c, o, node, obj, &ok);
		break;
	case SHAPE_SECTION:
		if (node->kind != YTREE_MAP && !ytree_is_null(node)) {
			ctx_error(c, node, "expected %s for '%s', got %s", o->type->expect, o->key,
				  kind_name(node));
			ok = false;
		}
		parse_map(c, o->sub, node->kind == YTREE_MAP ? node : NULL,
			  FIELD(obj, o, void));
		break;
	case SHAPE_SECTION_LIST:
		parse_section_list(c, o, node, obj, &ok);
		break;
	}
	return ok;
}

/* Defaults go through the same parser as values, so they cannot disagree
 * with the documented syntax; a default that fails is a schema bug. */
static void apply_default(struct parse_ctx *c, const struct option *o, void *obj)
{
	struct errbuf why = { "" };

	if (o->type->shape == SHAPE_SECTION) {
		parse_map(c, o->sub, NULL, FIELD(obj, o, void));
		return;
	}
	/* A list's default holds its items one per line. */
	for (const char *d = o->def; d && *d;) {
		size_t len = o->type->shape == SHAPE_LIST ? strcspn(d, "\n") : strlen(d);
		_cleanup_free_ char *item = strndup(d, len);
		int r = item ? o->type->parse(c, o, item, obj, &why) : -ENOMEM;
		if (r == -ENOMEM)
			c->oom = r;
		else if (r < 0)
			ctx_error(c, NULL, "internal error: default of '%s': %s", o->key, why.msg);
		d += len + (d[len] == '\n');
	}
}

static void parse_pair(struct parse_ctx *c, const struct section *sec, const struct ytree *key,
		       const struct ytree *value, const struct ytree **keys,
		       const struct ytree **vals, void *obj)
{
	if (key->kind != YTREE_SCALAR) {
		ctx_error(c, key, "expected a key name, got %s", kind_name(key));
		return;
	}
	int i = section_find(sec, key->text);
	if (i < 0) {
		const char *hint = suggest(sec, key->text);
		if (hint)
			ctx_error(c, key, "unknown key '%s' (did you mean '%s'?)", key->text, hint);
		else
			ctx_error(c, key, "unknown key '%s'", key->text);
		return;
	}
	if (keys[i]) {
		ctx_error(c, key, "duplicate key '%s' (first set at line %u)", key->text,
			  keys[i]->line);
		return;
	}
	keys[i] = key;
	if (parse_value(c, &sec->opts[i], value, obj))
		vals[i] = value;
}

#define MAX_SECTION_OPTS 32

static void parse_map(struct parse_ctx *c, const struct section *sec, const struct ytree *map,
		      void *obj)
{
	const struct ytree *keys[MAX_SECTION_OPTS] = { 0 };
	const struct ytree *vals[MAX_SECTION_OPTS] = { 0 };

	for (size_t i = 0; map && i + 1 < map->n; i += 2)
		parse_pair(c, sec, map->items[i], map->items[i + 1], keys, vals, obj);
	for (size_t i = 0; i < sec->n_opts; i++) {
		if (keys[i])
			continue;
		if (sec->opts[i].flags & OPT_REQUIRED)
			ctx_error(c, map, "%s is missing '%s'", sec->what, sec->opts[i].key);
		else
			apply_default(c, &sec->opts[i], obj);
	}
	if (sec->check)
		sec->check(c, obj, map, vals);
}

static void free_section(const struct section *sec, void *obj)
{
	for (size_t i = 0; i < sec->n_opts; i++) {
		const struct option *o = &sec->opts[i];
		if (o->type->shape == SHAPE_SECTION) {
			free_section(o->sub, FIELD(obj, o, void));
		} else if (o->type->shape == SHAPE_SECTION_LIST) {
			char *array = *FIELD(obj, o, char *);
			size_t n = *(size_t *)((char *)obj + o->count_offset);
			for (size_t j = 0; j < n; j++)
				free_section(o->sub, array + j * o->sub->size);
			free(array);
		} else if (o->type->free) {
			o->type->free(o, obj);
		}
	}
}

struct config *config_free(struct config *cfg)
{
	if (!cfg)
		return NULL;
	free_section(&config_root_section, cfg);
	free(cfg->source);
	free(cfg);
	return NULL;
}

static int parse_tree(struct parse_ctx *c, const struct ytree *root, struct config *cfg)
{
	if (root && root->kind != YTREE_MAP && !ytree_is_null(root)) {
		ctx_error(c, root, "the configuration must be a mapping of keys to values, got %s",
			  kind_name(root));
		return -EINVAL;
	}
	parse_map(c, &config_root_section, root && root->kind == YTREE_MAP ? root : NULL, cfg);
	if (c->oom)
		return c->oom;
	return c->n_errors ? -EINVAL : 0;
}

int config_load_buffer(struct config **out, const char *text, size_t len, const char *name,
		       const char *base_dir, unsigned flags, struct config_errors *errs)
{
	struct parse_ctx c = { .file = name, .base_dir = base_dir, .flags = flags, .errs = errs };
	struct ytree_error yerr = { 0 };
	struct ytree *root = NULL;

	*out = NULL;
	int r = ytree_parse(&root, text, len, &yerr);
	if (r == -EINVAL) {
		if (errs && config_errors_add(errs, name, yerr.line, yerr.col, yerr.message) < 0)
			return -ENOMEM;
		return r;
	}
	if (r < 0)
		return r;
	struct config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->source = strdup(name))) {
		ytree_free(root);
		config_free(cfg);
		return -ENOMEM;
	}
	r = parse_tree(&c, root, cfg);
	ytree_free(root);
	if (r < 0) {
		config_free(cfg);
		return r;
	}
	*out = cfg;
	return 0;
}

/* The whole file, NUL-terminated; a config is small, and reading it at
 * once lets libyaml report exact marks. */
static int read_file(const char *path, char **text, size_t *len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	size_t used = 0, cap = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		if (used == cap) {
			if (cap >= (64u << 20))
				return -EFBIG;
			cap = cap ? cap * 2 : 8192;
			char *grown = realloc(buf, cap + 1);
			if (!grown)
				return -ENOMEM;
			buf = grown;
		}
		ssize_t n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	*len = used;
	*text = TAKE_PTR(buf);
	return 0;
}

/* Relative paths in a file are relative to its folder, made absolute so a
 * daemon that changes directory still finds them. */
static int file_base_dir(const char *path, char **out)
{
	_cleanup_free_ char *copy = strdup(path);

	if (!copy)
		return -ENOMEM;
	*out = realpath(dirname(copy), NULL);
	return *out ? 0 : -errno;
}

int config_load(struct config **out, const char *path, struct config_errors *errs)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_free_ char *base = NULL;
	size_t len = 0;

	*out = NULL;
	int r = read_file(path, &text, &len);
	if (r == 0)
		r = file_base_dir(path, &base);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		char msg[256];
		snprintf(msg, sizeof(msg), "cannot read: %s", strerror(-r));
		if (errs && config_errors_add(errs, path, 0, 0, msg) < 0)
			return -ENOMEM;
		return r;
	}
	return config_load_buffer(out, text, len, path, base, 0, errs);
}

int config_load_default(struct config **out, unsigned flags, struct config_errors *errs)
{
	return config_load_buffer(out, config_default_yaml, strlen(config_default_yaml),
				  "<default>", NULL, flags, errs);
}

const char *config_default_text(void)
{
	return config_default_yaml;
}

/* Key paths are built once into static storage: the schema is constant,
 * and a caller listing keys should not have to free anything. */
static char keys_text[4096];
static const char *keys_list[128];
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void add_keys(const struct section *sec, const char *prefix, size_t *used, size_t *n)
{
	for (size_t i = 0; i < sec->n_opts && *n + 1 < ARRAY_SIZE(keys_list); i++) {
		const struct option *o = &sec->opts[i];
		char *name = keys_text + *used;
		int len = snprintf(name, sizeof(keys_text) - *used, "%s%s", prefix, o->key);
		if (len < 0 || (size_t)len + 1 >= sizeof(keys_text) - *used)
			return;
		*used += (size_t)len + 1;
		keys_list[(*n)++] = name;
		if (o->sub) {
			char sub[128];
			snprintf(sub, sizeof(sub), "%s%s", name,
				 o->type->shape == SHAPE_SECTION_LIST ? "[]." : ".");
			add_keys(o->sub, sub, used, n);
		}
	}
}

static void build_keys(void)
{
	size_t used = 0, n = 0;

	add_keys(&config_root_section, "", &used, &n);
	keys_list[n] = NULL;
}

const char *const *config_keys(void)
{
	pthread_once(&keys_once, build_keys);
	return keys_list;
}
