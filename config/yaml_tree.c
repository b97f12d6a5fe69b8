/*
 * yaml_tree.c - see yaml_tree.h. The only file that includes <yaml.h>.
 *
 * Built from libyaml's event parser rather than its document loader: the
 * loader expands aliases and recurses without a depth limit, and both are
 * ways for a hostile or fuzzed file to exhaust memory or stack.
 */
#include "yaml_tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct builder {
	struct ytree *root;
	struct ytree *stack[YTREE_MAX_DEPTH];
	size_t depth;
	unsigned documents;
	struct ytree_error *err;
};

static int fail(struct ytree_error *err, const yaml_mark_t *mark, const char *msg)
{
	err->line = mark ? (unsigned)mark->line + 1 : 0;
	err->col = mark ? (unsigned)mark->column + 1 : 0;
	snprintf(err->message, sizeof(err->message), "%s", msg);
	return -EINVAL;
}

struct ytree *ytree_free(struct ytree *node)
{
	if (!node)
		return NULL;
	for (size_t i = 0; i < node->n; i++)
		ytree_free(node->items[i]);
	free(node->items);
	free(node->text);
	free(node);
	return NULL;
}

bool ytree_is_null(const struct ytree *node)
{
	if (node->kind != YTREE_SCALAR || !node->plain)
		return false;
	return !node->text[0] || !strcmp(node->text, "~") || !strcmp(node->text, "null") ||
	       !strcmp(node->text, "Null") || !strcmp(node->text, "NULL");
}

/* Appends to a parent's items; the array doubles when n reaches a power of
 * two, so no capacity field is needed. */
static int append(struct ytree *parent, struct ytree *child)
{
	/* stack[0..depth) always holds nodes; the analyzer loses that across
	 * the event loop of ytree_parse. */
	size_t n = parent->n; // NOLINT(clang-analyzer-core.NullDereference)

	if (n == 0 || (n & (n - 1)) == 0) {
		size_t cap = n ? n * 2 : 4;
		struct ytree **items = reallocarray(parent->items, cap, sizeof(*items));
		if (!items)
			return -ENOMEM;
		parent->items = items;
	}
	parent->items[parent->n++] = child;
	return 0;
}

/* Hangs a new node under the current collection (or makes it the root),
 * so whatever happens next it is freed with the tree. */
static int attach(struct builder *b, struct ytree *node)
{
	if (b->depth == 0) {
		if (b->root) {
			ytree_free(node);
			return -EINVAL;
		}
		b->root = node;
		return 0;
	}
	int r = append(b->stack[b->depth - 1], node);
	if (r < 0)
		ytree_free(node);
	return r;
}

static struct ytree *node_new(enum ytree_kind kind, const yaml_mark_t *mark)
{
	struct ytree *node = calloc(1, sizeof(*node));

	if (node) {
		node->kind = kind;
		node->line = (unsigned)mark->line + 1;
		node->col = (unsigned)mark->column + 1;
	}
	return node;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	const char *value = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;

	if (memchr(value, '\0', len))
		return fail(b->err, &ev->start_mark, "a value contains a NUL character");
	struct ytree *node = node_new(YTREE_SCALAR, &ev->start_mark);
	if (!node)
		return -ENOMEM;
	node->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	node->text = strndup(value, len);
	if (!node->text) {
		ytree_free(node);
		return -ENOMEM;
	}
	return attach(b, node);
}

static int on_collection(struct builder *b, const yaml_event_t *ev, enum ytree_kind kind)
{
	if (b->depth == YTREE_MAX_DEPTH)
		return fail(b->err, &ev->start_mark, "nested too deeply");
	struct ytree *node = node_new(kind, &ev->start_mark);
	if (!node)
		return -ENOMEM;
	int r = attach(b, node);
	if (r < 0)
		return r;
	b->stack[b->depth++] = node;
	return 0;
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (b->documents++ > 0)
			return fail(b->err, &ev->start_mark,
				    "only one YAML document is allowed in a configuration file");
		return 0;
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_collection(b, ev, YTREE_SEQ);
	case YAML_MAPPING_START_EVENT:
		return on_collection(b, ev, YTREE_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		b->depth--;
		return 0;
	case YAML_ALIAS_EVENT:
		return fail(b->err, &ev->start_mark, "YAML aliases (*name) are not supported");
	default:
		return 0;
	}
}

/* libyaml's reader reports a byte offset rather than a mark. */
static void offset_to_mark(const char *text, size_t len, size_t offset, yaml_mark_t *mark)
{
	mark->line = 0;
	mark->column = 0;
	for (size_t i = 0; i < offset && i < len; i++) {
		if (text[i] == '\n') {
			mark->line++;
			mark->column = 0;
		} else {
			mark->column++;
		}
	}
}

static int syntax_error(const yaml_parser_t *p, const char *text, size_t len,
			struct ytree_error *err)
{
	char msg[sizeof(err->message)];
	yaml_mark_t mark = p->problem_mark;

	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (p->error == YAML_READER_ERROR)
		offset_to_mark(text, len, p->problem_offset, &mark);
	if (p->context)
		snprintf(msg, sizeof(msg), "YAML syntax error: %s: %s", p->context,
			 p->problem ? p->problem : "unknown problem");
	else
		snprintf(msg, sizeof(msg), "YAML syntax error: %s",
			 p->problem ? p->problem : "unknown problem");
	return fail(err, &mark, msg);
}

int ytree_parse(struct ytree **out, const char *text, size_t len, struct ytree_error *err)
{
	struct builder b = { .err = err };
	yaml_parser_t parser;
	int r = 0;

	*out = NULL;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	for (bool done = false; !done && r == 0;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			r = syntax_error(&parser, text, len, err);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		r = on_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	if (r < 0) {
		ytree_free(b.root);
		return r;
	}
	*out = b.root;
	return 0;
}
