/*
 * yaml_tree.h - the one wrapper around libyaml: turns YAML text into a small
 * tree of scalars, mappings and sequences, each with its 1-based line and
 * column, so the rest of config/ never sees <yaml.h>.
 *
 * Deliberately limited to what a config file needs: one document, no
 * aliases (a billion-laughs file cannot blow up memory), nesting at most
 * YTREE_MAX_DEPTH deep (a fuzzed "[[[[..." cannot blow the stack).
 */
#ifndef CAPVAULT_YAML_TREE_H
#define CAPVAULT_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>

#define YTREE_MAX_DEPTH 32

enum ytree_kind {
	YTREE_SCALAR,
	YTREE_MAP,
	YTREE_SEQ,
};

struct ytree {
	enum ytree_kind kind;
	unsigned line, col; /* 1-based */
	/* Scalars: text is NUL-terminated (scalars holding a NUL byte are
	 * refused); plain is false for quoted and block scalars, so '~' and
	 * '' can be told from "~" and "". */
	char *text;
	bool plain;
	/* Sequences: items[0..n). Mappings: items[2i] is a key, items[2i+1]
	 * its value, in file order. */
	struct ytree **items;
	size_t n;
};

/* Why parsing failed, with its place (line 0 if unknown). */
struct ytree_error {
	unsigned line, col;
	char message[256];
};

/*
 * Parses len bytes of text. Returns 0 and the root node in *out (NULL for
 * a stream with no document or an empty one), -EINVAL with err filled for
 * a syntax error or a construct we refuse, or -ENOMEM.
 */
int ytree_parse(struct ytree **out, const char *text, size_t len, struct ytree_error *err);

/* Accepts NULL, returns NULL. */
struct ytree *ytree_free(struct ytree *node);

/* True for a plain scalar that YAML reads as null: "", "~", "null". */
bool ytree_is_null(const struct ytree *node);

#endif
