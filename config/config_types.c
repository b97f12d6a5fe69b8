/*
 * config_types.c - the value types of the schema: how one scalar becomes a
 * field, and which error it gets when it cannot.
 *
 * Each parse function reads one scalar into its field of obj and explains
 * a refusal in why; where the error goes in the file is the caller's job.
 */
#include "config_types.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"

static int parse_string(struct parse_ctx *c, const struct option *o, const char *text, void *obj,
			struct errbuf *why)
{
	(void)c;
	if (!text[0] && !(o->flags & OPT_EMPTY_OK))
		return errbuf_set(why, -EINVAL, "'%s' must not be empty", o->key);
	*FIELD(obj, o, char *) = strdup(text);
	return *FIELD(obj, o, char *) ? 0 : -ENOMEM;
}

static void free_string(const struct option *o, void *obj)
{
	free(*FIELD(obj, o, char *));
}

/* Joins a relative path to the base folder; "./x" and "x/" come out as
 * "BASE/x" so derived paths ("<path>/.failed") read cleanly. */
int config_path_resolve(const struct parse_ctx *c, const char *text, char **out)
{
	size_t len = strlen(text);

	while (len > 1 && text[len - 1] == '/')
		len--;
	if (text[0] == '/' || !c->base_dir) {
		*out = strndup(text, len);
		return *out ? 0 : -ENOMEM;
	}
	while (len > 2 && text[0] == '.' && text[1] == '/') {
		text += 2;
		len -= 2;
	}
	if (len == 1 && text[0] == '.')
		len = 0;
	if (asprintf(out, "%s%s%.*s", c->base_dir, len ? "/" : "", (int)len, text) < 0) {
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int parse_path(struct parse_ctx *c, const struct option *o, const char *text, void *obj,
		      struct errbuf *why)
{
	if (!text[0])
		return errbuf_set(why, -EINVAL, "'%s' must not be empty", o->key);
	return config_path_resolve(c, text, FIELD(obj, o, char *));
}

static int parse_bool(struct parse_ctx *c, const struct option *o, const char *text, void *obj,
		      struct errbuf *why)
{
	(void)c;
	if (!strcmp(text, "true") || !strcmp(text, "True") || !strcmp(text, "TRUE"))
		*FIELD(obj, o, bool) = true;
	else if (!strcmp(text, "false") || !strcmp(text, "False") || !strcmp(text, "FALSE"))
		*FIELD(obj, o, bool) = false;
	else
		return errbuf_set(why, -EINVAL, "expected a boolean (true/false) for '%s', got '%s'",
				  o->key, text);
	return 0;
}

/* Digits only: strtoull would take "-1", " 7" and "0x10". */
static int parse_number(const struct option *o, const char *text, uint64_t *v,
			struct errbuf *why)
{
	*v = 0;
	for (const char *p = text; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return errbuf_set(why, -EINVAL, "expected a whole number for '%s', got '%s'",
					  o->key, text);
		if (__builtin_mul_overflow(*v, 10, v) ||
		    __builtin_add_overflow(*v, (uint64_t)(*p - '0'), v))
			return errbuf_set(why, -EINVAL, "'%s' must be between %" PRIu64
					  " and %" PRIu64 ", got %s", o->key, o->min, o->max, text);
	}
	if (!text[0])
		return errbuf_set(why, -EINVAL, "expected a whole number for '%s'", o->key);
	if (*v < o->min || *v > o->max)
		return errbuf_set(why, -EINVAL, "'%s' must be between %" PRIu64 " and %" PRIu64
				  ", got %s", o->key, o->min, o->max, text);
	return 0;
}

static int parse_uint(struct parse_ctx *c, const struct option *o, const char *text, void *obj,
		      struct errbuf *why)
{
	uint64_t v;

	(void)c;
	int r = parse_number(o, text, &v, why);
	if (r == 0)
		*FIELD(obj, o, unsigned) = (unsigned)v;
	return r;
}

static int parse_u64(struct parse_ctx *c, const struct option *o, const char *text, void *obj,
		     struct errbuf *why)
{
	(void)c;
	return parse_number(o, text, FIELD(obj, o, uint64_t), why);
}

static int range_error(const struct option *o, const char *text, struct errbuf *why,
		       char *(*fmt)(uint64_t, char *, size_t))
{
	char lo[32], hi[32];

	if (o->max == UINT64_MAX)
		return errbuf_set(why, -EINVAL, "'%s' must be at least %s, got '%s'", o->key,
				  fmt(o->min, lo, sizeof(lo)), text);
	return errbuf_set(why, -EINVAL, "'%s' must be between %s and %s, got '%s'", o->key,
			  fmt(o->min, lo, sizeof(lo)), fmt(o->max, hi, sizeof(hi)), text);
}

static int parse_duration(struct parse_ctx *c, const struct option *o, const char *text,
			  void *obj, struct errbuf *why)
{
	uint64_t *v = FIELD(obj, o, uint64_t);

	(void)c;
	int r = config_parse_duration(text, v, why);
	if (r == -ERANGE && o->max != UINT64_MAX)
		return range_error(o, text, why, config_format_duration);
	if (r < 0)
		return -EINVAL;
	if (*v < o->min || *v > o->max)
		return range_error(o, text, why, config_format_duration);
	return 0;
}

static int parse_size(struct parse_ctx *c, const struct option *o, const char *text, void *obj,
		      struct errbuf *why)
{
	uint64_t *v = FIELD(obj, o, uint64_t);

	(void)c;
	int r = config_parse_size(text, v, why);
	if (r == -ERANGE && o->max != UINT64_MAX)
		return range_error(o, text, why, config_format_size);
	if (r < 0)
		return -EINVAL;
	if (*v < o->min || *v > o->max)
		return range_error(o, text, why, config_format_size);
	return 0;
}

/* "a, b, c" for enum errors. */
static void join_names(const char *const *names, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; names[i] && used < size; i++) {
		int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static int parse_enum(struct parse_ctx *c, const struct option *o, const char *text, void *obj,
		      struct errbuf *why)
{
	char valid[128];

	(void)c;
	for (int i = 0; o->names[i]; i++) {
		if (!strcmp(o->names[i], text)) {
			*FIELD(obj, o, int) = i;
			return 0;
		}
	}
	join_names(o->names, valid, sizeof(valid));
	return errbuf_set(why, -EINVAL, "invalid %s '%s' (valid: %s)", o->key, text, valid);
}

static int parse_log_level(struct parse_ctx *c, const struct option *o, const char *text,
			   void *obj, struct errbuf *why)
{
	(void)c;
	if (log_level_parse(text, FIELD(obj, o, enum log_level)) < 0)
		return errbuf_set(why, -EINVAL,
				  "invalid %s '%s' (valid: error, warning, info, debug)", o->key,
				  text);
	return 0;
}

static int strv_push(struct config_strv *sv, const char *text)
{
	char **v = reallocarray(sv->v, sv->n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	sv->v = v;
	sv->v[sv->n] = strdup(text);
	if (!sv->v[sv->n])
		return -ENOMEM;
	sv->n++;
	return 0;
}

static int parse_strv(struct parse_ctx *c, const struct option *o, const char *text, void *obj,
		      struct errbuf *why)
{
	(void)c;
	if (!text[0])
		return errbuf_set(why, -EINVAL, "'%s' entries must not be empty", o->key);
	return strv_push(FIELD(obj, o, struct config_strv), text);
}

static void free_strv(const struct option *o, void *obj)
{
	struct config_strv *sv = FIELD(obj, o, struct config_strv);

	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
}

/* The same rule as the catalog's catalog_tag_valid(), checked here so a bad
 * tag is reported at load time with its line, not at the first import. */
bool config_tag_valid(const char *tag)
{
	size_t len = strlen(tag);

	if (len == 0 || len > 128)
		return false;
	for (const char *p = tag; *p; p++) {
		if (!isalnum((unsigned char)*p) && !strchr("._:/@+-", *p))
			return false;
	}
	return true;
}

static int parse_tag(struct parse_ctx *c, const struct option *o, const char *text, void *obj,
		     struct errbuf *why)
{
	(void)c;
	if (!config_tag_valid(text))
		return errbuf_set(why, -EINVAL,
				  "invalid tag '%s' (tags are 1-128 of A-Z a-z 0-9 . _ : / @ + -)",
				  text);
	return strv_push(FIELD(obj, o, struct config_strv), text);
}

const struct opt_type t_string = { SHAPE_SCALAR, "a string", parse_string, free_string };
const struct opt_type t_path = { SHAPE_SCALAR, "a path", parse_path, free_string };
const struct opt_type t_bool = { SHAPE_SCALAR, "a boolean (true/false)", parse_bool, NULL };
const struct opt_type t_uint = { SHAPE_SCALAR, "a whole number", parse_uint, NULL };
const struct opt_type t_u64 = { SHAPE_SCALAR, "a whole number", parse_u64, NULL };
const struct opt_type t_duration = { SHAPE_SCALAR, "a duration (e.g. 30s)", parse_duration,
				     NULL };
const struct opt_type t_size = { SHAPE_SCALAR, "a size (e.g. 10GiB)", parse_size, NULL };
const struct opt_type t_enum = { SHAPE_SCALAR, "one word", parse_enum, NULL };
const struct opt_type t_log_level = { SHAPE_SCALAR, "one word", parse_log_level, NULL };
const struct opt_type t_strv = { SHAPE_LIST, "a list of strings", parse_strv, free_strv };
const struct opt_type t_tags = { SHAPE_LIST, "a list of tags", parse_tag, free_strv };
const struct opt_type t_section = { SHAPE_SECTION, "a mapping", NULL, NULL };
const struct opt_type t_section_list = { SHAPE_SECTION_LIST, "a list", NULL, NULL };
