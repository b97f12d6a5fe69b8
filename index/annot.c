/*
 * annot.c - see annot.h.
 */
#include "annot.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "cleanup.h"
#include "textesc.h"
#include "wallclock.h"

#define ANNOT_PREFIX "annot:"
#define ANNOT_PREFIX_LEN (sizeof(ANNOT_PREFIX) - 1)
#define KEYLOG_PREFIX "keylog:"
#define KEYLOG_PREFIX_LEN (sizeof(KEYLOG_PREFIX) - 1)

/* "annot:" id [frame]: frame UINT64_MAX is not written (the prefix only). */
static size_t annot_key(uint8_t *key, uint64_t id, uint64_t frame, bool with_frame)
{
	memcpy(key, ANNOT_PREFIX, ANNOT_PREFIX_LEN);
	be64_put(key + ANNOT_PREFIX_LEN, id);
	if (!with_frame)
		return ANNOT_PREFIX_LEN + 8;
	be64_put(key + ANNOT_PREFIX_LEN + 8, frame);
	return ANNOT_PREFIX_LEN + 16;
}

static size_t keylog_key(uint8_t *key, uint64_t id)
{
	memcpy(key, KEYLOG_PREFIX, KEYLOG_PREFIX_LEN);
	be64_put(key + KEYLOG_PREFIX_LEN, id);
	return KEYLOG_PREFIX_LEN + 8;
}

/* One put or delete, under the catalog lock after checking the capture
 * is there (so none is written for a capture being deleted). */
struct locked_write {
	struct catalog *cat;
	struct db *db;
	uint64_t id;
	const void *key, *val;
	size_t klen, vlen;
	bool del;
	struct errbuf *eb;
};

static int write_locked(void *opaque)
{
	struct locked_write *w = opaque;
	struct capture_record *rec = NULL;
	struct db_batch *b = NULL;
	int r = catalog_get(w->cat, w->id, &rec);
	capture_record_free(rec);
	if (r < 0)
		return errbuf_set(w->eb, r, "capture %" PRIu64 ": %s", w->id,
				  r == -ENOENT ? "no such capture" : strerror(-r));
	if ((r = db_batch_new(&b)) < 0)
		return errbuf_set(w->eb, r, "out of memory");
	if (w->del)
		db_batch_delete(b, DB_CF_META, w->key, w->klen);
	else
		db_batch_put(b, DB_CF_META, w->key, w->klen, w->val, w->vlen);
	r = db_write(w->db, b, true, w->eb);
	db_batch_free(b);
	return r;
}

int annot_set(struct catalog *cat, struct db *db, uint64_t id, uint64_t frame, const char *text,
	      struct errbuf *eb)
{
	uint8_t key[ANNOT_PREFIX_LEN + 16];
	if (frame == 0)
		return errbuf_set(eb, -EINVAL, "frame numbers start at 1");
	if (text && strlen(text) > ANNOT_TEXT_MAX)
		return errbuf_set(eb, -EINVAL, "an annotation is at most %u bytes", ANNOT_TEXT_MAX);
	bool del = !text || !*text;
	_cleanup_free_ char *val = NULL;
	if (!del) {
		json_t *o = json_pack("{sosI}", "text", catalog_json_text(text), "created_ns",
				      (json_int_t)wall_ns());
		val = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (!val)
			return errbuf_set(eb, -ENOMEM, "out of memory");
	}
	struct locked_write w = { .cat = cat, .db = db, .id = id, .key = key,
				  .klen = annot_key(key, id, frame, true), .val = val,
				  .vlen = val ? strlen(val) : 0, .del = del, .eb = eb };
	return catalog_quiesce(cat, write_locked, &w);
}

/* The stored text's bytes back from their escaped JSON form. */
static int parse_one(const void *v, size_t vlen, uint64_t frame, struct annotation *a)
{
	json_t *o = json_loadb(v, vlen, 0, NULL);
	const char *text = json_string_value(json_object_get(o, "text"));
	a->frame = frame;
	a->created_ns = (uint64_t)json_integer_value(json_object_get(o, "created_ns"));
	a->text = NULL;
	int r = text ? text_unescape(text, false, &a->text) : -ENOMEM;
	json_decref(o);
	return r < 0 ? -ENOMEM : 0;
}

int annot_list(struct db *db, uint64_t id, struct annotation **out, size_t *n)
{
	uint8_t prefix[ANNOT_PREFIX_LEN + 8];
	size_t plen = annot_key(prefix, id, 0, false), cap = 0;
	struct db_iter *it = NULL;
	struct annotation *a = NULL;
	int r = db_iter_new(db, DB_CF_META, &it);
	*out = NULL;
	*n = 0;
	for (db_iter_seek(it, prefix, plen); r == 0 && it && db_iter_valid(it); db_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *k = db_iter_key(it, &klen);
		if (klen != plen + 8 || memcmp(k, prefix, plen) != 0)
			break;
		if (*n == cap) {
			cap = cap ? 2 * cap : 16;
			struct annotation *grown = realloc(a, cap * sizeof(*a));
			if (!grown) {
				r = -ENOMEM;
				break;
			}
			a = grown;
		}
		const void *v = db_iter_value(it, &vlen);
		if ((r = parse_one(v, vlen, be64_get(k + plen), &a[*n])) == 0)
			(*n)++;
	}
	db_iter_free(it);
	if (r < 0) {
		annot_list_free(a, *n);
		*n = 0;
		return r;
	}
	*out = a;
	return 0;
}

void annot_list_free(struct annotation *a, size_t n)
{
	for (size_t i = 0; a && i < n; i++)
		free(a[i].text);
	free(a);
}

int annot_keylog_put(struct catalog *cat, struct db *db, uint64_t id, const void *data,
		     size_t len, struct errbuf *eb)
{
	uint8_t key[KEYLOG_PREFIX_LEN + 8];
	if (len > ANNOT_KEYLOG_MAX)
		return errbuf_set(eb, -EFBIG, "a key log is at most %u bytes", ANNOT_KEYLOG_MAX);
	struct locked_write w = { .cat = cat, .db = db, .id = id, .key = key,
				  .klen = keylog_key(key, id), .val = data, .vlen = len,
				  .del = len == 0, .eb = eb };
	return catalog_quiesce(cat, write_locked, &w);
}

int annot_keylog_get(struct db *db, uint64_t id, char **data, size_t *len)
{
	uint8_t key[KEYLOG_PREFIX_LEN + 8];
	void *val = NULL;
	int r = db_get(db, DB_CF_META, key, keylog_key(key, id), &val, len);
	*data = r == 0 ? val : NULL;
	return r;
}

void annot_batch_delete_capture(struct db_batch *b, uint64_t id)
{
	uint8_t begin[ANNOT_PREFIX_LEN + 8], end[ANNOT_PREFIX_LEN + 8], key[KEYLOG_PREFIX_LEN + 8];
	size_t len = annot_key(begin, id, 0, false);
	annot_key(end, id + 1, 0, false);
	/* id + 1 wraps only for the last id, which is never assigned. */
	db_batch_delete_range(b, DB_CF_META, begin, len, end, len);
	db_batch_delete(b, DB_CF_META, key, keylog_key(key, id));
}
