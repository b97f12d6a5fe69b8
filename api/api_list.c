/*
 * api_list.c - GET /v1/captures: the catalog listed with tag, name-glob
 * and time filters, in a chosen order, a page at a time.
 *
 * Unfiltered in id order (either way) the stored JSON texts are joined
 * from the cursor on without being parsed. Any filter or other order
 * selects from the catalog's in-memory capture summary (catalog.h): it
 * scans every capture's summary, keeps the limit + 1 first matches after
 * the cursor in a heap (memory bounded by the page), and then reads only
 * the page's stored records. The cursor names the last capture's sort
 * value and id, so pages stay in order while captures come and go.
 */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "catalog.h"
#include "parse.h"
#include "query.h"
#include "vault.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000

struct list_ctx {
	char **tags;      /* all of these */
	size_t ntags;
	char **any;       /* at least one of these, when nany > 0 */
	size_t nany;
	struct api_sort sort;
	uint64_t after;   /* id order: the cursor, ids greater than this */
	struct api_sort_pos cursor; /* other orders: captures after this */
	bool has_cursor;
	const char *name; /* fnmatch glob on the name, or NULL */
	int64_t from_ns, to_ns;     /* packets overlapping [from, to), when has_* */
	uint64_t since_ns;          /* imported at or after, when has_since */
	bool has_from, has_to, has_since;
	uint64_t limit;
	/* The limit + 1 first captures seen: in id order a list, in other
	 * orders a max-heap. */
	struct api_sort_pos *heap;
	size_t nheap;
};

static bool list_matches(const struct list_ctx *l, const struct capture_summary *s)
{
	if (l->name && fnmatch(l->name, s->name, 0) != 0)
		return false;
	/* [from, to) with to <= from holds no time: no capture has a packet in
	 * it, though one may have packets on both sides. */
	if ((l->has_from && (!s->packets || s->latest_ts_ns < l->from_ns)) ||
	    (l->has_to && (!s->packets || s->earliest_ts_ns >= l->to_ns)) ||
	    (l->has_from && l->has_to && l->to_ns <= l->from_ns) ||
	    (l->has_since && s->import_time_ns < l->since_ns))
		return false;
	for (size_t i = 0; i < l->ntags; i++)
		if (!capture_summary_has_tag(s, l->tags[i]))
			return false;
	for (size_t i = 0; i < l->nany; i++)
		if (capture_summary_has_tag(s, l->any[i]))
			return true;
	return l->nany == 0;
}

static void collect_tag_arg(void *opaque, const char *key, const char *value)
{
	struct list_ctx *l = opaque;
	if (value && !strcmp(key, "tag"))
		api_split_list(value, &l->tags, &l->ntags);
	else if (value && !strcmp(key, "any_tag"))
		api_split_list(value, &l->any, &l->nany);
}

/* name=GLOB, from=T, to=T (packet times), imported_after=T. */
static bool list_filters(struct api_call *c, struct list_ctx *l)
{
	const char *v;
	int64_t since = 0;
	l->name = http_req_arg(c->r, "name");
	if ((v = http_req_arg(c->r, "from")) && (l->has_from = true) &&
	    query_parse_time(v, &l->from_ns, NULL) < 0)
		return false;
	if ((v = http_req_arg(c->r, "to")) && (l->has_to = true) &&
	    query_parse_time(v, &l->to_ns, NULL) < 0)
		return false;
	if ((v = http_req_arg(c->r, "imported_after")) && (l->has_since = true) &&
	    query_parse_time(v, &since, NULL) < 0)
		return false;
	l->since_ns = since > 0 ? (uint64_t)since : 0; /* imports are after 1970 */
	return true;
}

/* A listing's reply, built as text: the stored JSON texts joined. */
struct raw_list {
	char *buf;
	size_t len, cap;
	uint64_t limit, count, last_id;
	bool more;
};

static int raw_append(struct raw_list *l, const char *p, size_t n)
{
	if (l->cap - l->len < n + 1) {
		/* A stored record is 1-2 KiB: room for a page at once, as
		 * reallocating a page's worth as it grows showed in profiles. */
		size_t cap = l->cap ? l->cap : 16384 + (l->limit < 512 ? l->limit : 512) * 2048;
		while (cap - l->len < n + 1)
			cap *= 2;
		char *grown = realloc(l->buf, cap);
		if (!grown)
			return -ENOMEM;
		l->buf = grown;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, p, n);
	l->len += n;
	return 0;
}

static int raw_add_record(struct raw_list *l, const char *json, size_t len)
{
	int err = raw_append(l, l->count ? "," : "", l->count ? 1 : 0);
	l->count++;
	return err ? err : raw_append(l, json, len);
}

/* Closes the array with next_cursor (a string, or null when NULL) and
 * replies; err is what went wrong on the way, if anything. */
static void raw_reply(struct api_call *c, struct raw_list *l, int err, const char *next)
{
	if (err >= 0) {
		err = raw_append(l, "],\"next_cursor\":", 16);
		if (!err && next)
			err = raw_append(l, "\"", 1) ?: raw_append(l, next, strlen(next)) ?:
							    raw_append(l, "\"", 1);
		else if (!err)
			err = raw_append(l, "null", 4);
		if (!err)
			err = raw_append(l, "}\n", 2);
	}
	if (err < 0) {
		api_error_errno(c, err, "listing captures", NULL);
		free(l->buf);
	} else {
		http_respond_owned(c->r, 200, "application/json", l->buf, l->len, NULL);
	}
}

static int raw_one(void *opaque, uint64_t id, const char *json, size_t len)
{
	struct raw_list *l = opaque;
	if (l->count == l->limit) {
		l->more = true;
		return 1;
	}
	l->last_id = id;
	return raw_add_record(l, json, len);
}

/* The unfiltered listing in id order, never parsed. */
static void list_raw(struct api_call *c, uint64_t after, uint64_t limit)
{
	struct raw_list l = { .limit = limit };
	char next[24];
	int err = raw_append(&l, "{\"captures\":[", 13);
	if (!err)
		err = catalog_foreach_raw(vault_catalog(c->api->vault), after, raw_one, &l);
	snprintf(next, sizeof(next), "%" PRIu64, l.last_id);
	raw_reply(c, &l, err, l.more ? next : NULL);
}

/* The unfiltered listing newest first (sort=-id), never parsed either:
 * what the viewer's list shows first. Its cursor is the sorted path's. */
static void list_raw_desc(struct api_call *c, struct list_ctx *l)
{
	struct raw_list rl = { .limit = l->limit };
	int err = raw_append(&rl, "{\"captures\":[", 13);
	if (!err)
		err = catalog_foreach_raw_desc(vault_catalog(c->api->vault),
					       l->has_cursor ? l->cursor.id : CATALOG_RAW_FROM_END,
					       raw_one, &rl);
	const struct api_sort_pos last = { .num = rl.last_id, .name = "", .id = rl.last_id };
	char *next = rl.more && err >= 0 ? api_sort_cursor(&l->sort, &last) : NULL;
	raw_reply(c, &rl, rl.more && err >= 0 && !next ? -ENOMEM : err, next);
	free(next);
}

/* --- other orders --- */

static uint64_t sort_value(enum api_sort_key key, const struct capture_summary *s)
{
	switch (key) {
	case API_SORT_IMPORTED: return s->import_time_ns;
	/* signed times, sign bit flipped: unsigned order is time order */
	case API_SORT_FIRST_PACKET: return (uint64_t)s->earliest_ts_ns ^ (1ull << 63);
	case API_SORT_LAST_PACKET: return (uint64_t)s->latest_ts_ns ^ (1ull << 63);
	case API_SORT_SIZE: return s->file_size;
	case API_SORT_PACKETS: return s->packets;
	case API_SORT_NAME:
	case API_SORT_ID: break;
	}
	return s->id;
}

static void heap_swap(struct api_sort_pos *h, size_t a, size_t b)
{
	struct api_sort_pos t = h[a];
	h[a] = h[b];
	h[b] = t;
}

/* Moves h[i] down until both children sort before it (n entries). */
static void heap_sift_down(const struct api_sort *s, struct api_sort_pos *h, size_t n, size_t i)
{
	for (;;) {
		size_t big = i, kid = 2 * i + 1;
		if (kid < n && api_sort_cmp(s, &h[kid], &h[big]) > 0)
			big = kid;
		if (kid + 1 < n && api_sort_cmp(s, &h[kid + 1], &h[big]) > 0)
			big = kid + 1;
		if (big == i)
			return;
		heap_swap(h, i, big);
		i = big;
	}
}

static void heap_add(struct list_ctx *l, struct api_sort_pos p)
{
	if (l->nheap == l->limit + 1) { /* full: p replaces the last one */
		free(l->heap[0].name);
		l->heap[0] = p;
		heap_sift_down(&l->sort, l->heap, l->nheap, 0);
		return;
	}
	size_t i = l->nheap++;
	l->heap[i] = p;
	while (i && api_sort_cmp(&l->sort, &l->heap[(i - 1) / 2], &l->heap[i]) < 0) {
		heap_swap(l->heap, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static int sorted_one(void *opaque, const struct capture_summary *s)
{
	struct list_ctx *l = opaque;
	if (!list_matches(l, s))
		return 0;
	struct api_sort_pos p = { .num = sort_value(l->sort.key, s), .name = (char *)s->name,
				  .id = s->id };
	if ((l->has_cursor && api_sort_cmp(&l->sort, &p, &l->cursor) <= 0) ||
	    (l->nheap == l->limit + 1 && api_sort_cmp(&l->sort, &p, &l->heap[0]) >= 0))
		return 0;
	if (l->sort.key != API_SORT_NAME)
		p.name = NULL;
	else if (!(p.name = strdup(p.name)))
		return -ENOMEM;
	heap_add(l, p);
	return 0;
}

/* Heapsort's second half: the heap becomes the page in order. */
static void heap_sort(struct list_ctx *l)
{
	for (size_t n = l->nheap; n > 1; n--) {
		heap_swap(l->heap, 0, n - 1);
		heap_sift_down(&l->sort, l->heap, n - 1, 0);
	}
}

/* Replies with the page the heap holds, in order: each record's stored
 * JSON, read now (one deleted since the selection is left out). */
static void sorted_reply(struct api_call *c, struct list_ctx *l)
{
	struct raw_list out = { 0 };
	bool more = l->nheap > l->limit;
	size_t n = more ? l->limit : l->nheap;
	int err = raw_append(&out, "{\"captures\":[", 13);
	for (size_t i = 0; !err && i < n; i++) {
		char *json = NULL;
		size_t len = 0;
		err = catalog_get_raw(vault_catalog(c->api->vault), l->heap[i].id, &json, &len);
		if (!err)
			err = raw_add_record(&out, json, len);
		else if (err == -ENOENT)
			err = 0;
		free(json);
	}
	char *next = NULL;
	if (more && l->sort.key == API_SORT_ID && !l->sort.desc) { /* id order: the id */
		if (asprintf(&next, "%" PRIu64, l->heap[n - 1].id) < 0)
			next = NULL;
	} else if (more) {
		next = api_sort_cursor(&l->sort, &l->heap[n - 1]);
	}
	raw_reply(c, &out, more && !next ? -ENOMEM : err, next);
	free(next);
}

/* In id order the first matches after the cursor are the page: no heap. */
static int in_order_one(void *opaque, const struct capture_summary *s)
{
	struct list_ctx *l = opaque;
	if (!list_matches(l, s))
		return 0;
	l->heap[l->nheap++] = (struct api_sort_pos){ .num = s->id, .id = s->id };
	return l->nheap == l->limit + 1;
}

/* Filtered, or in an order other than id: selected from the summary. */
static void list_selected(struct api_call *c, struct list_ctx *l)
{
	if (!(l->heap = calloc(l->limit + 1, sizeof(*l->heap))))
		return api_error_errno(c, -ENOMEM, "listing captures", NULL);
	struct catalog *cat = vault_catalog(c->api->vault);
	int err = l->sort.key == API_SORT_ID && !l->sort.desc ?
			  catalog_foreach_summary(cat, l->after, in_order_one, l) :
			  catalog_foreach_summary(cat, 0, sorted_one, l);
	if (l->sort.key != API_SORT_ID || l->sort.desc)
		heap_sort(l);
	if (err < 0)
		api_error_errno(c, err, "listing captures", NULL);
	else
		sorted_reply(c, l);
	for (size_t i = 0; i < l->nheap; i++)
		free(l->heap[i].name);
	free(l->heap);
}

/* limit, sort and cursor; false when replied 400. */
static bool list_paging(struct api_call *c, struct list_ctx *l)
{
	const char *limit = http_req_arg(c->r, "limit"), *cursor = http_req_arg(c->r, "cursor");
	const char *sort = http_req_arg(c->r, "sort");
	/* tag and any_tag may come several times (all of them, one of them). */
	static const char *const once[] = { "limit", "cursor", "sort", "name", "from", "to",
					     "imported_after", NULL };
	if (!api_args_once(c, once))
		return false;
	if (limit && (api_parse_u64(limit, &l->limit) < 0 || l->limit == 0 || l->limit > LIST_MAX)) {
		api_error(c, 400, "bad_request", "limit must be 1-%d", LIST_MAX);
		return false;
	}
	if (sort && api_parse_sort(sort, &l->sort) < 0) {
		api_error(c, 400, "bad_sort", "sort must be one of %s, with '-' before it for "
			  "descending order", api_sort_keys_text);
		return false;
	}
	if (!cursor)
		return true;
	int err = l->sort.key == API_SORT_ID && !l->sort.desc ?
			  api_parse_u64(cursor, &l->after) :
			  api_parse_sort_cursor(cursor, &l->sort, &l->cursor);
	l->has_cursor = err == 0;
	if (err < 0)
		api_error(c, 400, "bad_request",
			  "cursor must be the next_cursor of a listing in the same sort order");
	return err == 0;
}

void api_captures_list(struct api_call *c)
{
	struct list_ctx l = { .limit = LIST_DEFAULT };
	if (!list_paging(c, &l))
		return;
	if (!list_filters(c, &l)) {
		api_error(c, 400, "bad_request",
			  "from, to and imported_after take RFC 3339 or epoch seconds");
		free(l.cursor.name);
		return;
	}
	http_req_args_foreach(c->r, collect_tag_arg, &l);
	bool filtered = l.ntags || l.nany || l.name || l.has_from || l.has_to || l.has_since;
	if (l.sort.key == API_SORT_ID && l.sort.desc && !filtered)
		list_raw_desc(c, &l);
	else if (filtered || l.sort.key != API_SORT_ID || l.sort.desc)
		list_selected(c, &l);
	else
		list_raw(c, l.after, l.limit);
	free(l.cursor.name);
	api_strv_free(l.tags, l.ntags);
	api_strv_free(l.any, l.nany);
}
