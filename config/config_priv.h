/*
 * config_priv.h - what the files of config/ share and nobody else sees:
 * the schema's shape, the parse context that collects errors, and the
 * error list's append.
 */
#ifndef CAPVAULT_CONFIG_PRIV_H
#define CAPVAULT_CONFIG_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "errbuf.h"
#include "yaml_tree.h"

/* Past this many errors the rest are probably noise from one mistake. */
#define CONFIG_MAX_ERRORS 100

struct parse_ctx {
	const char *file;
	const char *base_dir; /* NULL: relative paths stay as written */
	unsigned flags;       /* CONFIG_NO_PATH_CHECKS */
	struct config_errors *errs;
	unsigned n_errors;
	int oom;              /* -ENOMEM once an allocation failed */
};

/* Records "FILE:LINE:COL: message" at node (line 0 when node is NULL). */
void ctx_error(struct parse_ctx *c, const struct ytree *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The rules between the folders and files a configuration names
 * (config_paths.c); root is the file's top mapping. */
void config_check_paths(struct parse_ctx *c, const struct config *cfg, const struct ytree *root);

int config_errors_add(struct config_errors *errs, const char *file, unsigned line, unsigned col,
		      const char *message);

struct option;

enum opt_shape {
	SHAPE_SCALAR,       /* one scalar */
	SHAPE_LIST,         /* a scalar or a list of scalars, each parsed alone */
	SHAPE_SECTION,      /* a mapping into an embedded struct */
	SHAPE_SECTION_LIST, /* a list of mappings into an array of structs */
};

struct opt_type {
	enum opt_shape shape;
	const char *expect; /* "a boolean (true/false)", for wrong-shape errors */
	/* Parses one scalar (or list item) into obj. Returns 0, -EINVAL with
	 * the reason in why, or -ENOMEM. */
	int (*parse)(struct parse_ctx *c, const struct option *o, const char *text, void *obj,
		     struct errbuf *why);
	/* Frees what parse allocated in obj; NULL if nothing. */
	void (*free)(const struct option *o, void *obj);
};

struct section;

enum {
	OPT_REQUIRED = 1u << 0,
	OPT_EMPTY_OK = 1u << 1, /* t_string: "" is a value (object_store.prefix) */
};

/* One row of the schema, like redis' standardConfig. */
struct option {
	const char *key;
	const struct opt_type *type;
	size_t offset;         /* of the field in the section's struct */
	size_t count_offset;   /* SHAPE_SECTION_LIST: of the size_t count */
	uint64_t min, max;     /* numbers, durations, sizes */
	const char *def;       /* default, parsed like a value; NULL: none */
	unsigned flags;
	const char *const *names;      /* enums: names[value], NULL-terminated */
	const struct section *sub;     /* sections */
};

struct section {
	const char *what;      /* "import folder", for "X is missing 'path'" */
	const struct option *opts;
	size_t n_opts;
	size_t size;           /* of the struct, for section lists */
	/* Cross-field rules, run after every option of one mapping is parsed.
	 * vals[i] is the value node of opts[i] when it was given and valid,
	 * else NULL; map is NULL when the whole section was absent. */
	void (*check)(struct parse_ctx *c, void *obj, const struct ytree *map,
		      const struct ytree *const *vals);
};

extern const struct section config_root_section;

/* Index of key in sec->opts, or -1. */
int section_find(const struct section *sec, const char *key);

#define FIELD(obj, o, type) ((type *)((char *)(obj) + (o)->offset))

#endif
