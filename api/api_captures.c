/*
 * api_captures.c - /v1/captures/{id}: one capture's record, its bytes
 * (streamed with pread, HTTP Range; from the object store, or the cache
 * when it holds the object, for a capture that was tiered), delete and
 * patch. The listing is in api_list.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_priv.h"
#include "catalog.h"
#include "cleanup.h"
#include "log.h"
#include "objcache.h"
#include "objstore.h"
#include "retention.h"
#include "textesc.h"
#include "tokens.h"
#include "parse.h"
#include "store.h"
#include "vault.h"

/* A plain id is answered with the stored JSON as it is. */
static bool capture_get_raw(struct api_call *c, const char *arg)
{
	uint64_t id;
	char *json = NULL;
	size_t len = 0;
	if (strlen(arg) >= 8 || api_parse_u64(arg, &id) < 0 ||
	    catalog_get_raw(vault_catalog(c->api->vault), id, &json, &len) < 0)
		return false;
	http_respond_owned(c->r, 200, "application/json", json, len, NULL);
	return true;
}

void api_capture_get(struct api_call *c)
{
	if (capture_get_raw(c, c->seg[2]))
		return;
	struct capture_record *rec = api_capture_arg(c, c->seg[2]);
	if (!rec)
		return;
	api_json(c, 200, capture_record_to_json(rec));
	capture_record_free(rec);
}

struct file_stream {
	int fd;
	uint64_t start, len;
};

static ssize_t file_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
	struct file_stream *f = ctx;
	if (pos >= f->len)
		return HTTP_STREAM_END;
	size_t want = f->len - pos < max ? (size_t)(f->len - pos) : max;
	ssize_t n;
	do
		n = pread(f->fd, buf, want, (off_t)(f->start + pos));
	while (n < 0 && errno == EINTR);
	return n > 0 ? n : HTTP_STREAM_ERROR; /* 0: the object shrank, which it never may */
}

static void file_free(void *ctx)
{
	struct file_stream *f = ctx;
	close(f->fd);
	free(f);
}

static const char *capture_ctype(const struct capture_record *rec)
{
	return strcmp(rec->format, "pcapng") == 0 ? "application/x-pcapng" :
						    "application/vnd.tcpdump.pcap";
}

/* Replies 416 or sets the range; false when replied. */
static bool pick_range(struct api_call *c, uint64_t size, struct file_stream *f, bool *partial)
{
	int rc = api_parse_range(http_req_header(c->r, "Range"), size, &f->start, &f->len);
	*partial = rc == 0;
	if (rc == 1) {
		f->start = 0;
		f->len = size;
	} else if (rc < 0) {
		char cr[48];
		snprintf(cr, sizeof(cr), "bytes */%" PRIu64, size);
		const char *const hdr[] = { "Content-Range", cr, NULL };
		json_t *o = json_pack("{sissss}", "status", 416, "error", "bad_range", "message",
				      "the range is outside the file");
		api_json_headers(c, 416, o, hdr);
	}
	return rc >= 0;
}

/*
 * A tiered capture's bytes: a thread pushes them (objcache_read_stream, or
 * objcache_read_ranges for a part) into a bounded buffer that the response drains,
 * each side waiting for the other, so memory stays at the buffer's size
 * and a slow client only slows the reads. The reader's free callback
 * stops the thread and joins it.
 */
#define REMOTE_PIPE (1u << 20)

struct remote_stream {
	struct vault *v;
	uint8_t sha[32];
	uint64_t id, size, start, len;
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *buf;
	size_t head, used;
	bool done, cancel;
	int err;
};

static int remote_push(void *opaque, const void *data, size_t len)
{
	struct remote_stream *s = opaque;
	const char *p = data;
	pthread_mutex_lock(&s->mu);
	while (len > 0 && !s->cancel) {
		if (s->used == REMOTE_PIPE) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		size_t tail = (s->head + s->used) % REMOTE_PIPE;
		size_t n = REMOTE_PIPE - s->used;
		n = n < REMOTE_PIPE - tail ? n : REMOTE_PIPE - tail;
		n = n < len ? n : len;
		memcpy(s->buf + tail, p, n);
		s->used += n;
		p += n;
		len -= n;
		pthread_cond_broadcast(&s->cv);
	}
	int rc = s->cancel ? -ECANCELED : 0;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* A range of an object, chunk by chunk through the cache: from the whole
 * copy when it holds one, else as blocks fetched and checked against
 * what their move recorded (objcache_set_check), and not cached: a long
 * range must not flush what queries use. */
static int remote_range(struct remote_stream *s, struct errbuf *eb)
{
	struct objcache *cache = vault_objcache(s->v);
	_cleanup_free_ char *chunk = malloc(REMOTE_PIPE);
	int err = chunk ? 0 : -ENOMEM;
	for (uint64_t off = 0; !err && off < s->len; off += REMOTE_PIPE) {
		uint32_t n = s->len - off < REMOTE_PIPE ? (uint32_t)(s->len - off) : REMOTE_PIPE;
		struct objstore_range r = { .offset = s->start + off, .len = n, .buf = chunk };
		err = objcache_read_through(cache, vault_objstore(s->v), s->sha, s->size, &r, 1, eb);
		if (!err)
			err = remote_push(s, chunk, n);
	}
	return err;
}

static void *remote_producer(void *arg)
{
	struct remote_stream *s = arg;
	struct objstore *os = vault_objstore(s->v);
	struct objcache *cache = vault_objcache(s->v);
	struct errbuf eb = { { 0 } };
	int err;
	if (s->start == 0 && s->len == s->size)
		err = objcache_read_stream(cache, os, s->sha, s->size, remote_push, s, &eb);
	else
		err = remote_range(s, &eb);
	if (err == -EBADMSG) /* the held-back end never goes: the client sees a short body */
		log_errx("download of capture %" PRIu64 " cut short: object store %s: %s", s->id,
			 objstore_describe(os), objstore_reason(os, &eb, err));
	else if (err && err != -ECANCELED)
		log_warnx("download of capture %" PRIu64 ": object store %s: %s", s->id,
			  objstore_describe(os), objstore_reason(os, &eb, err));
	pthread_mutex_lock(&s->mu);
	s->err = err;
	s->done = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static ssize_t remote_read(void *ctx, uint64_t pos, char *out, size_t max)
{
	struct remote_stream *s = ctx;
	(void)pos;
	pthread_mutex_lock(&s->mu);
	while (s->used == 0 && !s->done)
		pthread_cond_wait(&s->cv, &s->mu);
	size_t n = 0;
	while (n < max && s->used > 0) {
		size_t k = REMOTE_PIPE - s->head;
		k = k < s->used ? k : s->used;
		k = k < max - n ? k : max - n;
		memcpy(out + n, s->buf + s->head, k);
		s->head = (s->head + k) % REMOTE_PIPE;
		s->used -= k;
		n += k;
	}
	pthread_cond_broadcast(&s->cv);
	ssize_t rc = n ? (ssize_t)n : s->err ? HTTP_STREAM_ERROR : HTTP_STREAM_END;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static void remote_free(void *ctx)
{
	struct remote_stream *s = ctx;
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		s->cancel = true;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s->buf);
	free(s);
}

/* The status goes out before the bytes: the store is asked first (unless
 * the cache holds the object), so a store that is down, refuses or is
 * slower than its timeout fails the download with 503 now; one that
 * answers that it does not have the object (-ENOENT: a 404), with 502
 * object_missing, and one whose object has another size, with 502
 * object_corrupt: that is lost data, not worth retrying. */
static int remote_check(struct api_call *c, const struct capture_record *rec)
{
	struct vault *v = c->api->vault;
	struct errbuf eb = { { 0 } };
	uint64_t size = 0;
	if (objcache_has_object(vault_objcache(v), rec->sha256))
		return 0;
	int err = objstore_stat(vault_objstore(v), rec->sha256, &size, &eb);
	bool wrong_size = err == 0 && size != rec->file_size;
	if (wrong_size)
		err = errbuf_set(&eb, -EIO, "holds %" PRIu64 " bytes, not %" PRIu64, size,
				 rec->file_size);
	if (err == 0)
		return 0;
	char msg[sizeof(eb.msg) + 160];
	snprintf(msg, sizeof(msg), "capture %" PRIu64 ": object store %s: %s", rec->id,
		 objstore_describe(vault_objstore(v)), objstore_reason(vault_objstore(v), &eb, err));
	/* Another object under its name is not it: lost data, as a query
	 * answers it (502 object_corrupt), not a store to wait for (503). */
	if (wrong_size) {
		log_errx("download: %s: the object in the store is not its own", msg);
		api_error(c, 502, "object_corrupt", "download: %s; run capvault fsck --remote", msg);
		return -EBADMSG;
	}
	if (err == -ENOENT) {
		log_errx("download: %s: the object is missing", msg);
		api_error(c, 502, "object_missing",
			  "download: capture %" PRIu64 ": object store %s does not have its object "
			  "(%s); run capvault fsck --remote",
			  rec->id, objstore_describe(vault_objstore(v)),
			  objstore_reason(vault_objstore(v), &eb, err));
		return -ENOENT;
	}
	api_error_errno(c, -EREMOTEIO, "download", msg);
	return -EREMOTEIO;
}

static void send_remote(struct api_call *c, const struct capture_record *rec)
{
	struct remote_stream *s = calloc(1, sizeof(*s));
	bool partial = false;
	struct file_stream range;
	if (!s)
		return api_error_errno(c, -ENOMEM, "download", NULL);
	*s = (struct remote_stream){ .v = c->api->vault, .id = rec->id, .size = rec->file_size };
	memcpy(s->sha, rec->sha256, 32);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (!pick_range(c, s->size, &range, &partial) || remote_check(c, rec) < 0)
		return remote_free(s);
	s->start = range.start;
	s->len = range.len;
	if (!(s->buf = malloc(REMOTE_PIPE)) ||
	    pthread_create(&s->thread, NULL, remote_producer, s) != 0) {
		remote_free(s);
		return api_error_errno(c, -ENOMEM, "download", "cannot start the download thread");
	}
	s->started = true;
	char disp[API_DISPOSITION_MAX], cr[80];
	snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, s->start,
		 s->start + s->len - 1, s->size);
	api_content_disposition(rec->name, disp, sizeof(disp));
	const char *const hdr[] = { "Content-Disposition", disp, "Accept-Ranges", "bytes",
				    partial ? "Content-Range" : NULL, cr, NULL };
	atomic_fetch_add(&c->api->m.downloads, 1);
	http_respond_stream(c->r, partial ? 206 : 200, capture_ctype(rec), s->len, remote_read,
			    remote_free, s, hdr);
}

void api_send_capture(struct api_call *c, const struct capture_record *rec)
{
	if (api_send_attached(c, rec))
		return;
	struct file_stream *f = calloc(1, sizeof(*f));
	struct stat st;
	bool partial = false;
	if (!f)
		return api_error_errno(c, -ENOMEM, "download", NULL);
	if (vault_object_open(c->api->vault, rec->sha256, &f->fd) == VAULT_OBJECT_REMOTE) {
		free(f);
		return send_remote(c, rec);
	}
	if (f->fd < 0 || fstat(f->fd, &st) < 0) {
		int err = f->fd < 0 ? f->fd : -errno;
		if (f->fd >= 0)
			close(f->fd);
		free(f);
		return api_error_errno(c, err == -ENOENT ? -EIO : err, "opening the capture", NULL);
	}
	if (!pick_range(c, (uint64_t)st.st_size, f, &partial))
		return file_free(f);
	char disp[API_DISPOSITION_MAX], cr[80];
	snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, f->start,
		 f->start + f->len - 1, (uint64_t)st.st_size);
	api_content_disposition(rec->name, disp, sizeof(disp));
	const char *const hdr[] = { "Content-Disposition", disp, "Accept-Ranges", "bytes",
				    partial ? "Content-Range" : NULL, cr, NULL };
	atomic_fetch_add(&c->api->m.downloads, 1);
	http_respond_stream(c->r, partial ? 206 : 200, capture_ctype(rec), f->len, file_read,
			    file_free, f, hdr);
}

void api_capture_file(struct api_call *c)
{
	struct capture_record *rec = api_capture_arg(c, c->seg[2]);
	if (!rec)
		return;
	api_send_capture(c, rec);
	capture_record_free(rec);
}

/* Deletes rec (catalog first, then the object if unused); replies. */
void api_delete_capture(struct api_call *c, const struct capture_record *rec)
{
	struct errbuf eb = { { 0 } };
	uint64_t freed = 0;
	int err = vault_remove(c->api->vault, rec->id, &freed, &eb);
	if (err)
		return api_error_errno(c, err, "deleting the capture", eb.msg);
	char id[24], freed_text[24];
	snprintf(id, sizeof(id), "%" PRIu64, rec->id);
	snprintf(freed_text, sizeof(freed_text), "%" PRIu64, freed);
	api_audit(c, "delete", rec, "FREED_BYTES", freed_text, (char *)NULL);
	/* "o" with catalog_json_text: a name need not be UTF-8 ("s" would
	 * fail and answer 500 for a delete that was done). */
	if (c->cloudshark)
		api_json(c, 200, json_pack("{sssosb}", "id", id, "filename",
					   catalog_json_text(rec->name), "deleted", 1));
	else
		api_json(c, 200, json_pack("{sIsosI}", "deleted", (json_int_t)rec->id, "name",
					   catalog_json_text(rec->name), "freed_bytes",
					   (json_int_t)freed));
}

void api_capture_delete(struct api_call *c)
{
	struct capture_record *rec = api_capture_arg(c, c->seg[2]);
	if (!rec)
		return;
	api_delete_capture(c, rec);
	capture_record_free(rec);
}

/* --- small JSON bodies (PATCH, CloudShark delete) --- */

#define JSON_BODY_MAX (64u * 1024)

struct json_body {
	struct api_call call; /* for replies; seg[] and token are not used */
	char *buf;
	size_t len;
	bool too_big;
	uint64_t id;          /* the capture named in the path, or 0 */
	void (*done)(struct api_call *c, uint64_t id, json_t *doc);
};

static int json_body_data(void *ctx, struct http_req *r, const void *buf, size_t len)
{
	struct json_body *jb = ctx;
	(void)r;
	if (jb->len + len > JSON_BODY_MAX) {
		jb->too_big = true;
		return -EFBIG;
	}
	char *grown = realloc(jb->buf, jb->len + len + 1);
	if (!grown)
		return -ENOMEM;
	memcpy(grown + jb->len, buf, len);
	jb->buf = grown;
	jb->len += len;
	jb->buf[jb->len] = '\0';
	return 0;
}

static void json_body_end(void *ctx, struct http_req *r)
{
	struct json_body *jb = ctx;
	json_error_t jerr;
	(void)r;
	if (jb->too_big)
		return api_error(&jb->call, 413, "too_large", "the JSON body is over %u bytes",
				 JSON_BODY_MAX);
	/* A key given twice is refused, not read as its last value. */
	json_t *doc = jb->len ? json_loadb(jb->buf, jb->len, JSON_REJECT_DUPLICATES, &jerr)
			      : json_object();
	if (!json_is_object(doc)) {
		json_decref(doc);
		return api_error(&jb->call, 400, "bad_json", "the body must be a JSON object%s%s",
				 jb->len ? ": " : "", jb->len ? jerr.text : "");
	}
	jb->done(&jb->call, jb->id, doc);
	json_decref(doc);
}

static void json_body_free(void *ctx)
{
	struct json_body *jb = ctx;
	free(jb->buf);
	free(jb);
}

static const struct http_body_ops json_body_ops = { .data = json_body_data,
						    .end = json_body_end,
						    .free = json_body_free };

void api_read_json(struct api_call *c, uint64_t id,
		   void (*done)(struct api_call *c, uint64_t id, json_t *doc))
{
	struct json_body *jb = calloc(1, sizeof(*jb));
	if (!jb)
		return api_error_errno(c, -ENOMEM, "request body", NULL);
	jb->call = *c;
	jb->call.token = NULL;
	jb->call.nseg = 0;
	jb->id = id;
	jb->done = done;
	http_req_read_body(c->r, &json_body_ops, jb);
}

/* --- PATCH --- */

/*
 * Tags decide what retention deletes: the protect tag shields a capture,
 * and a capture belongs to the first policy whose tags it has (which may
 * delete it, or, by max_count, others). So changing a tag that the rules
 * in force name (the protect tag, a policy's tag) can lead to a deletion
 * and needs the delete scope; other tags change no policy and need only
 * upload. With no rules to ask, every tag change needs delete.
 */
struct tag_risk {
	char *const *changed;
	size_t n;
	const char *why; /* the first risky tag's reason, or NULL */
	char buf[192];
};

static bool policy_names(const struct retention_policy *p, const char *tag)
{
	for (size_t i = 0; i < p->ntags; i++)
		if (!strcmp(p->tags[i], tag))
			return true;
	return false;
}

static void tag_risk_check(void *ctx, const struct retention_rules *rules, uint64_t interval_ns,
			   uint64_t next_run_ns)
{
	struct tag_risk *t = ctx;
	(void)interval_ns;
	(void)next_run_ns;
	for (size_t i = 0; i < t->n && !t->why; i++) {
		if (rules->protect_tag && !strcmp(rules->protect_tag, t->changed[i])) {
			snprintf(t->buf, sizeof(t->buf), "'%s' is the retention protect tag",
				 t->changed[i]);
			t->why = t->buf;
		}
		for (size_t p = 0; p < rules->n_policies && !t->why; p++) {
			if (policy_names(&rules->policies[p], t->changed[i])) {
				snprintf(t->buf, sizeof(t->buf),
					 "'%s' selects retention policy '%.64s'", t->changed[i],
					 rules->policies[p].name);
				t->why = t->buf;
			}
		}
	}
}

struct policy_tag {
	const char *tag;
	bool selects;
};

static void policy_tag_check(void *ctx, const struct retention_rules *rules, uint64_t interval_ns,
			     uint64_t next_run_ns)
{
	struct policy_tag *t = ctx;
	(void)interval_ns;
	(void)next_run_ns;
	for (size_t p = 0; p < rules->n_policies && !t->selects; p++)
		t->selects = policy_names(&rules->policies[p], t->tag);
}

bool api_tag_may_delete(struct api_call *c, const char *tag)
{
	struct policy_tag t = { .tag = tag, .selects = !c->api->hooks.retention };
	if (c->api->hooks.retention)
		c->api->hooks.retention(c->api->hooks.opaque, policy_tag_check, &t);
	return t.selects;
}

static bool strv_has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* Replies 403 and returns false when the call may not change rec's tags
 * to v (n of them). */
static bool may_retag(struct api_call *c, const struct capture_record *rec, char *const *v,
		      size_t n)
{
	if (api_call_allows(c, TOKEN_SCOPE_DELETE))
		return true;
	char **changed = calloc(n + rec->ntags + 1, sizeof(*changed));
	struct tag_risk t = { .changed = changed };
	if (!changed) {
		api_error_errno(c, -ENOMEM, "updating the capture", NULL);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (!strv_has(rec->tags, rec->ntags, v[i]))
			changed[t.n++] = v[i];
	for (size_t i = 0; i < rec->ntags; i++)
		if (!strv_has(v, n, rec->tags[i]))
			changed[t.n++] = rec->tags[i];
	if (t.n && c->api->hooks.retention)
		c->api->hooks.retention(c->api->hooks.opaque, tag_risk_check, &t);
	else if (t.n)
		t.why = "no retention rules to check the change against";
	free(changed);
	if (t.why) {
		api_error(c, 403, "forbidden", "changing the tags can lead to a deletion (%s): "
			  "token '%s' lacks the 'delete' scope", t.why, c->who);
		api_audit(c, "denied", rec, "ROUTE", "PATCH /v1/captures/*", "REASON", t.why, (char *)NULL);
	}
	return !t.why;
}

/* The tags of a PATCH as strings (v[n] NULL); -EINVAL (eb) or -ENOMEM. */
static int patch_tag_list(json_t *tags, char ***out, size_t *n, struct errbuf *eb)
{
	*n = json_array_size(tags);
	char **v = calloc(*n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++) {
		if (!(v[i] = (char *)json_string_value(json_array_get(tags, i)))) {
			free(v);
			return errbuf_set(eb, -EINVAL, "tags must be strings");
		}
	}
	*out = v;
	return 0;
}

/* A JSON text field read as the escaped form it is shown in (textesc.h):
 * what GET gave, PATCHed back, is the same bytes. NULL stays NULL. */
static int patch_text(json_t *v, const char *what, char **out, struct errbuf *eb)
{
	*out = NULL;
	if (!json_is_string(v))
		return 0;
	int err = text_unescape(json_string_value(v), true, out);
	if (err == -EINVAL)
		return errbuf_set(eb, err, "%s is not in the escaped form (a backslash is "
				  "doubled, or starts xHH, HH two hex digits but not 00)", what);
	return err;
}

/* "tags" replaces the list; "add_tags" and "remove_tags" edit the list as
 * it is when the edit lands, so a tag added meanwhile (by a duplicate, or
 * another client) stays. */
struct patch {
	char **tags, **add, **del;
	size_t ntags, nadd, ndel;
	char *name, *comment;
	bool has_tags, has_edit, has_name, has_comment;
};

static void patch_free(struct patch *p)
{
	free(p->tags);
	free(p->add);
	free(p->del);
	free(p->name);
	free(p->comment);
}

/* Reads and checks the body into p; replies and returns false when bad. */
static bool patch_parse(struct api_call *c, json_t *doc, struct patch *p)
{
	static const char *const known[] = { "name", "tags", "add_tags", "remove_tags", "comment" };
	struct errbuf eb = { { 0 } };
	const char *key;
	json_t *value;
	/* A misspelt field ("tag") would otherwise answer 200 and change nothing. */
	json_object_foreach (doc, key, value) {
		size_t i = 0;
		while (i < ARRAY_SIZE(known) && strcmp(key, known[i]) != 0)
			i++;
		if (i == ARRAY_SIZE(known)) {
			api_error(c, 422, "bad_field",
				  "unknown field '%.64s' (a PATCH takes name, tags, add_tags, "
				  "remove_tags and comment)", key);
			return false;
		}
	}
	json_t *name = json_object_get(doc, "name"), *tags = json_object_get(doc, "tags");
	json_t *comment = json_object_get(doc, "comment");
	json_t *add = json_object_get(doc, "add_tags"), *del = json_object_get(doc, "remove_tags");
	if ((name && !json_is_string(name)) || (tags && !json_is_array(tags)) ||
	    (add && !json_is_array(add)) || (del && !json_is_array(del)) ||
	    (comment && !json_is_string(comment) && !json_is_null(comment))) {
		api_error(c, 422, "bad_field",
			  "name is a string, tags, add_tags and remove_tags arrays of strings, "
			  "comment a string or null");
		return false;
	}
	p->has_name = name != NULL;
	p->has_tags = tags != NULL;
	p->has_edit = add || del;
	p->has_comment = comment != NULL;
	int err = patch_text(name, "name", &p->name, &eb);
	if (!err && p->name && !p->name[0])
		err = errbuf_set(&eb, -EINVAL, "name is empty (a capture keeps a name)");
	if (!err)
		err = patch_text(comment, "comment", &p->comment, &eb);
	if (!err && tags)
		err = patch_tag_list(tags, &p->tags, &p->ntags, &eb);
	if (!err)
		err = patch_tag_list(add, &p->add, &p->nadd, &eb);
	if (!err)
		err = patch_tag_list(del, &p->del, &p->ndel, &eb);
	if (err == -EINVAL)
		api_error(c, 422, "bad_field", "%s", eb.msg);
	else if (err)
		api_error_errno(c, err, "updating the capture", eb.msg);
	return err == 0;
}

static int patch_apply(struct api_call *c, uint64_t id, const struct patch *p, struct errbuf *eb)
{
	struct catalog *cat = vault_catalog(c->api->vault);
	int err = 0;
	if (p->has_name)
		err = catalog_update_name(cat, id, p->name, eb);
	if (!err && p->has_tags)
		err = catalog_update_tags(cat, id, p->tags, p->ntags, eb);
	if (!err && p->has_edit)
		err = catalog_edit_tags(cat, id, p->add, p->nadd, p->del, p->ndel, eb);
	if (!err && p->has_comment)
		err = catalog_update_comment(cat, id, p->comment, eb);
	return err;
}

/* The audit line of a PATCH: what changed, from what to what. */
static void patch_audit(struct api_call *c, const struct capture_record *old,
			const struct capture_record *rec, const struct patch *p)
{
	char old_tags[1024] = "", new_tags[1024] = "";
	size_t o = 0, n = 0;
	for (size_t i = 0; i < old->ntags && o < sizeof(old_tags); i++)
		o += (size_t)snprintf(old_tags + o, sizeof(old_tags) - o, "%s%s", i ? "," : "",
				      old->tags[i]);
	for (size_t i = 0; i < rec->ntags && n < sizeof(new_tags); i++)
		n += (size_t)snprintf(new_tags + n, sizeof(new_tags) - n, "%s%s", i ? "," : "",
				      rec->tags[i]);
	bool tags_changed = p->has_tags || p->has_edit;
	api_audit(c, "update", rec, "OLD_NAME", p->has_name ? old->name : NULL, "OLD_TAGS",
		  tags_changed ? old_tags : NULL, "TAGS", tags_changed ? new_tags : NULL, "COMMENT",
		  p->has_comment ? (p->comment ? p->comment : "") : NULL, (char *)NULL);
}

/* may_retag for add_tags/remove_tags: the list they make of rec's. */
static bool may_edit_tags(struct api_call *c, const struct capture_record *rec,
			  const struct patch *p)
{
	char **v = calloc(rec->ntags + p->nadd + 1, sizeof(*v));
	size_t n = 0;
	if (!v) {
		api_error_errno(c, -ENOMEM, "updating the capture", NULL);
		return false;
	}
	for (size_t i = 0; i < rec->ntags; i++)
		if (!strv_has(p->del, p->ndel, rec->tags[i]))
			v[n++] = rec->tags[i];
	for (size_t i = 0; i < p->nadd; i++)
		if (!strv_has(v, n, p->add[i]) && !strv_has(p->del, p->ndel, p->add[i]))
			v[n++] = p->add[i];
	bool ok = may_retag(c, rec, v, n);
	free(v);
	return ok;
}

static pthread_mutex_t patch_lock = PTHREAD_MUTEX_INITIALIZER;

static void patch_done(struct api_call *c, uint64_t id, json_t *doc)
{
	struct catalog *cat = vault_catalog(c->api->vault);
	struct errbuf eb = { { 0 } };
	struct capture_record *old = NULL, *rec = NULL;
	struct patch p = { 0 };
	int err;
	if (!patch_parse(c, doc, &p))
		goto out;
	/* The tags checked are the tags replaced: no other PATCH between. */
	pthread_mutex_lock(&patch_lock);
	if ((err = catalog_get(cat, id, &old)) < 0)
		api_error_errno(c, err, "reading the capture", NULL);
	else if ((p.has_tags && !may_retag(c, old, p.tags, p.ntags)) ||
		 (p.has_edit && !may_edit_tags(c, old, &p)))
		err = -EACCES;
	else if ((err = patch_apply(c, id, &p, &eb)) < 0)
		api_error_errno(c, err, "updating the capture", eb.msg);
	pthread_mutex_unlock(&patch_lock);
	if (err)
		goto out;
	if ((err = catalog_get(cat, id, &rec)) < 0) {
		api_error_errno(c, err, "reading the capture", NULL);
		goto out;
	}
	patch_audit(c, old, rec, &p);
	api_json(c, 200, capture_record_to_json(rec));
out:
	capture_record_free(old);
	capture_record_free(rec);
	patch_free(&p);
}

void api_capture_patch(struct api_call *c)
{
	struct capture_record *rec = api_capture_arg(c, c->seg[2]);
	if (!rec)
		return;
	uint64_t id = rec->id;
	capture_record_free(rec);
	api_read_json(c, id, patch_done);
}
