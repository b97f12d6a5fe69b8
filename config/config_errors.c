/*
 * config_errors.c - the list of every error one load found, kept in the
 * order found so they read top to bottom like a compiler's.
 */
#include "config_priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct config_errors {
	struct config_error *v;
	size_t n;
	size_t cap;
};

int config_errors_new(struct config_errors **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

struct config_errors *config_errors_free(struct config_errors *errs)
{
	if (!errs)
		return NULL;
	for (size_t i = 0; i < errs->n; i++) {
		free((char *)errs->v[i].file);
		free((char *)errs->v[i].text);
	}
	free(errs->v);
	free(errs);
	return NULL;
}

size_t config_errors_count(const struct config_errors *errs)
{
	return errs ? errs->n : 0;
}

const struct config_error *config_errors_get(const struct config_errors *errs, size_t i)
{
	return errs && i < errs->n ? &errs->v[i] : NULL;
}

static int grow(struct config_errors *errs)
{
	if (errs->n < errs->cap)
		return 0;
	size_t cap = errs->cap ? errs->cap * 2 : 8;
	struct config_error *v = reallocarray(errs->v, cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	errs->v = v;
	errs->cap = cap;
	return 0;
}

int config_errors_add(struct config_errors *errs, const char *file, unsigned line, unsigned col,
		      const char *message)
{
	char *text = NULL;
	int r;

	if (grow(errs) < 0)
		return -ENOMEM;
	if (line)
		r = asprintf(&text, "%s:%u:%u: %s", file, line, col, message);
	else
		r = asprintf(&text, "%s: %s", file, message);
	char *name = strdup(file);
	if (r < 0 || !name) {
		free(r < 0 ? NULL : text);
		free(name);
		return -ENOMEM;
	}
	/* message is the tail of text, after the "FILE:LINE:COL: " prefix. */
	errs->v[errs->n++] = (struct config_error){
		.file = name, .line = line, .col = col,
		.message = text + strlen(text) - strlen(message), .text = text,
	};
	return 0;
}

void ctx_error(struct parse_ctx *c, const struct ytree *at, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (++c->n_errors > CONFIG_MAX_ERRORS + 1 || !c->errs)
		return;
	if (c->n_errors == CONFIG_MAX_ERRORS + 1) {
		snprintf(msg, sizeof(msg), "too many errors, stopped listing them");
	} else {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	if (config_errors_add(c->errs, c->file, at ? at->line : 0, at ? at->col : 0, msg) < 0)
		c->oom = -ENOMEM;
}
