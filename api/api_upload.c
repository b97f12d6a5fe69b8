/*
 * api_upload.c - uploads: POST /v1/captures and CloudShark's upload.
 *
 * A raw body is fed to an import pass chunk by chunk as it arrives, so an
 * upload of any size needs the same memory. A multipart body is spooled to
 * a file in the store's tmp/ (fields such as additional_tags may come
 * after the file, and the record is built from them when the import
 * starts), then imported from there with may_link: the spool file becomes
 * the object by a hard link, so its bytes are written once. Bodies over
 * api.max_upload_size get 413: at once when Content-Length says so, else
 * when the limit is crossed (the rest is discarded).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "annot.h"
#include "api_priv.h"
#include "tokens.h"
#include "urlfetch.h"
#include "catalog.h"
#include "cleanup.h"
#include "config.h"
#include "import.h"
#include "objcache.h"
#include "parse.h"
#include "retention.h"
#include "ring.h"
#include "store.h"
#include "vault.h"
#include "textesc.h"

#define RING_ENTRIES 64
#define FIELD_MAX 4096
/* Room the spool leaves beside retention.min_free: what index/store.c
 * keeps for RocksDB's own writes on the same file system. */
#define SPOOL_INDEX_RESERVE (4u << 20)

/* The vault's sink, bounded: the decompressed bytes of one capture. */
struct capped_sink {
	void *inner;
	uint64_t limit;
	bool *over_limit; /* set when the limit stops an upload */
};

struct capped_job {
	void *inner;
	uint64_t limit, stored;
	bool *over_limit;
};

struct upload {
	struct api_call call;  /* for replies; its seg[] and token are not used */
	struct upload_meta meta;
	uint64_t limit, received;
	uint64_t declared; /* Content-Length, 0 when not sent */
	bool over_limit; /* the upload is over limit (else -EFBIG is the store's) */
	struct capped_sink sink;
	struct ring *ring;
	struct import_pass *pass;
	int err;
	struct errbuf eb;
	/* multipart */
	int spool_fd;
	char *spool_path;
	bool have_file;
	char *part_name;       /* the file part's file name */
	char *fields[3];       /* name, tags, comments as received */
	char *keylog;          /* the keylog part (TLS key log), if any */
	size_t keylog_len;
	const char **merge_tags; /* of meta.tags, those a duplicate may add */
	size_t nmerge_tags;
};

enum { F_NAME, F_TAGS, F_COMMENT };

void api_upload_meta_free(struct upload_meta *m)
{
	free(m->name);
	free(m->comment);
	free(m->source_path);
	api_strv_free(m->tags, m->ntags);
	memset(m, 0, sizeof(*m));
}

static int capped_begin(void *sink, const struct import_source *src, void **job,
			struct errbuf *eb)
{
	struct capped_sink *cs = sink;
	struct capped_job *cj = calloc(1, sizeof(*cj));
	if (!cj)
		return -ENOMEM;
	cj->limit = cs->limit;
	cj->over_limit = cs->over_limit;
	int err = vault_sink_ops.begin(cs->inner, src, &cj->inner, eb);
	if (err) {
		free(cj);
		return err;
	}
	*job = cj;
	return 0;
}

static int capped_expect(void *job, uint64_t capture_bytes, struct errbuf *eb)
{
	struct capped_job *cj = job;
	return vault_sink_ops.expect(cj->inner, capture_bytes, eb);
}

static int capped_data(void *job, const void *buf, size_t len, struct errbuf *eb)
{
	struct capped_job *cj = job;
	cj->stored += len;
	if (cj->stored > cj->limit) {
		*cj->over_limit = true;
		return errbuf_set(eb, -EFBIG, "over %" PRIu64 " bytes once decompressed", cj->limit);
	}
	return vault_sink_ops.data(cj->inner, buf, len, eb);
}

static int capped_data_wait(void *job, struct errbuf *eb)
{
	struct capped_job *cj = job;
	return vault_sink_ops.data_wait ? vault_sink_ops.data_wait(cj->inner, eb) : 0;
}

static int capped_context(void *job, uint64_t offset, const void *blob, size_t len)
{
	return vault_sink_ops.context(((struct capped_job *)job)->inner, offset, blob, len);
}

static int capped_packet(void *job, const struct capfile_packet *pkt)
{
	return vault_sink_ops.packet(((struct capped_job *)job)->inner, pkt);
}

static int capped_commit(void *job, const struct import_info *info, struct import_result *res,
			 struct errbuf *eb)
{
	struct capped_job *cj = job;
	int err = vault_sink_ops.commit(cj->inner, info, res, eb);
	free(cj);
	return err;
}

static void capped_abort(void *job)
{
	struct capped_job *cj = job;
	vault_sink_ops.abort(cj->inner);
	free(cj);
}

static const struct import_sink_ops capped_sink_ops = {
	.begin = capped_begin,
	.expect = capped_expect,
	.data = capped_data,
	.data_wait = capped_data_wait,
	.context = capped_context,
	.packet = capped_packet,
	.commit = capped_commit,
	.abort = capped_abort,
};

int api_upload_add_tags(struct api_call *c, struct upload_meta *m, const char *list)
{
	size_t before = m->ntags;
	if (api_split_list(list, &m->tags, &m->ntags) < 0) {
		api_error_errno(c, -ENOMEM, "tags", NULL);
		return -EINVAL;
	}
	if (m->ntags > CATALOG_TAGS_MAX) {
		api_error(c, 400, "bad_tag", "%zu tags: a capture holds at most %d", m->ntags,
			  CATALOG_TAGS_MAX);
		return -EINVAL;
	}
	for (size_t i = before; i < m->ntags; i++) {
		if (!catalog_tag_valid(m->tags[i])) {
			char shown[160];
			api_error(c, 400, "bad_tag",
				  "bad tag '%s': 1-128 characters of A-Z a-z 0-9 . _ : / @ + -",
				  text_shown(m->tags[i], shown, sizeof(shown)));
			return -EINVAL;
		}
	}
	return 0;
}

static struct upload *upload_new(struct api_call *c)
{
	struct upload *u = calloc(1, sizeof(*u));
	size_t n = 0;
	const char *const *tags = api_token_tags(c, &n);
	if (!u)
		return NULL;
	u->call = *c;
	u->call.token = NULL;
	u->call.nseg = 0;
	u->spool_fd = -1;
	/* The unix socket is the capvault CLI's import, which offline has no
	 * such limit (as body_timeout, max_upload_size is for the network). */
	u->limit = http_req_local(c->r) ? UINT64_MAX : c->api->cfg->api.max_upload_size;
	u->sink = (struct capped_sink){ .inner = c->api->vault, .limit = u->limit,
					.over_limit = &u->over_limit };
	for (size_t i = 0; i < n; i++)
		api_upload_add_tags(c, &u->meta, tags[i]); /* valid: checked at token add */
	return u;
}

static void upload_free(void *ctx)
{
	struct upload *u = ctx;
	import_pass_free(u->pass);
	ring_free(u->ring);
	if (u->spool_fd >= 0)
		close(u->spool_fd);
	if (u->spool_path)
		unlink(u->spool_path);
	free(u->spool_path);
	free(u->part_name);
	free(u->merge_tags);
	free(u->keylog);
	for (size_t i = 0; i < ARRAY_SIZE(u->fields); i++)
		free(u->fields[i]);
	api_upload_meta_free(&u->meta);
	free(u);
}

static const char *upload_name(const struct upload *u)
{
	return u->meta.name ? u->meta.name : u->part_name ? u->part_name : "upload";
}

/* Error texts from the import name the file it read: the client learns
 * its upload's name instead (api_error hides the store's folders). */
static void scrub_paths(struct upload *u)
{
	if (u->spool_path)
		api_text_replace(u->eb.msg, sizeof(u->eb.msg), u->spool_path, upload_name(u));
}

static void reply_error(struct upload *u)
{
	struct api_call *c = &u->call;
	atomic_fetch_add(&c->api->m.upload_failures, 1);
	scrub_paths(u);
	switch (u->err) {
	case -EFBIG:
		if (!u->over_limit && u->received <= u->limit) {
			api_error(c, 507, "no_space", "storing the upload: %s", u->eb.msg);
			break;
		}
		api_error(c, 413, "too_large",
			  "the upload is larger than api.max_upload_size (%" PRIu64 " bytes)%s%s",
			  u->limit, u->eb.msg[0] ? ": " : "", u->eb.msg);
		break;
	case -EINVAL:
		api_error(c, 422, "bad_capture", "not a valid capture: %s", u->eb.msg);
		break;
	default:
		api_error_errno(c, u->err, "storing the upload", u->eb.msg);
	}
}

/* A new capture stored decompressed drops its name's ".gz" (or ".zst"):
 * the name says what a download gives. A duplicate keeps the name it
 * was first stored under (this arrival's name is listed among its
 * others as sent). */
static int fix_name(struct upload *u, const struct import_result *res,
		    struct capture_record **rec)
{
	struct catalog *cat = vault_catalog(u->call.api->vault);
	char *plain = res->duplicate ? NULL : api_decompressed_name((*rec)->name, (*rec)->compression);
	if (!plain)
		return 0;
	int err = catalog_update_name(cat, (*rec)->id, plain, &u->eb);
	free(plain);
	if (err)
		return err;
	capture_record_free(*rec);
	*rec = NULL;
	return catalog_get(cat, res->capture_id, rec);
}

/* The keylog part, stored with the capture (a duplicate's too). */
static int store_keylog(struct upload *u, const struct import_result *res)
{
	struct vault *v = u->call.api->vault;
	if (!u->keylog_len)
		return 0;
	return annot_keylog_put(vault_catalog(v), vault_db(v), res->capture_id, u->keylog,
				u->keylog_len, &u->eb);
}

static void reply_done(struct upload *u, const struct import_result *res)
{
	struct api_call *c = &u->call;
	struct capture_record *rec = NULL;
	int err = catalog_get(vault_catalog(c->api->vault), res->capture_id, &rec);
	if (!err)
		err = fix_name(u, res, &rec);
	if (!err)
		err = store_keylog(u, res);
	if (err) {
		capture_record_free(rec);
		return api_error_errno(c, err, "recording the upload", u->eb.msg);
	}
	atomic_fetch_add(&c->api->m.uploads, 1);
	atomic_fetch_add(&c->api->m.upload_bytes, u->received);
	api_audit(c, "upload", rec, "DUPLICATE", res->duplicate ? "yes" : "no", (char *)NULL);
	if (c->cloudshark) {
		char id[24];
		snprintf(id, sizeof(id), "%" PRIu64, rec->id);
		api_json(c, 200, json_pack("{soss}", "filename", catalog_json_text(rec->name), "id", id));
	} else {
		json_t *o = capture_record_to_json(rec);
		char loc[48];
		snprintf(loc, sizeof(loc), "/v1/captures/%" PRIu64, rec->id);
		const char *const hdr[] = { "Location", loc, NULL };
		json_object_set_new(o, "duplicate", json_boolean(res->duplicate));
		api_json_headers(c, res->duplicate ? 200 : 201, o, hdr);
	}
	capture_record_free(rec);
}

/* An upload that turns out to duplicate a stored capture adds its tags to
 * that capture: someone else's. Without the delete scope, it adds none that
 * a retention policy selects by (api_tag_may_delete), as for a PATCH. */
static void restrict_merge_tags(struct upload *u, struct import_source *src)
{
	if (api_call_allows(&u->call, TOKEN_SCOPE_DELETE))
		return;
	free(u->merge_tags);
	u->nmerge_tags = 0;
	u->merge_tags = calloc(u->meta.ntags + 1, sizeof(*u->merge_tags));
	for (size_t i = 0; u->merge_tags && i < u->meta.ntags; i++)
		if (!api_tag_may_delete(&u->call, u->meta.tags[i]))
			u->merge_tags[u->nmerge_tags++] = u->meta.tags[i];
	src->merge_tags = u->merge_tags;
	src->nmerge_tags = u->nmerge_tags;
	src->has_merge_tags = true;
}

/* path is the spool file of a multipart upload: never recorded as the
 * capture's source ("" records none), which is what the sender named on
 * the unix socket, if anything. */
static struct import_source upload_source(struct upload *u, const char *path)
{
	struct import_source src = {
		.path = path,
		.name = upload_name(u),
		.tags = (const char *const *)u->meta.tags,
		.ntags = u->meta.ntags,
		.comment = u->meta.comment,
		.source_path = u->meta.source_path ? u->meta.source_path : path ? "" : NULL,
		.ring = u->ring,
		.may_link = path != NULL,
	};
	restrict_merge_tags(u, &src);
	return src;
}

/* --- raw bodies --- */

static int raw_data(void *ctx, struct http_req *r, const void *buf, size_t len)
{
	struct upload *u = ctx;
	(void)r;
	u->received += len;
	if (u->received > u->limit)
		return u->err = -EFBIG;
	u->err = import_pass_feed(u->pass, buf, len, &u->eb);
	return u->err;
}

static void raw_end(void *ctx, struct http_req *r)
{
	struct upload *u = ctx;
	struct import_result res = { 0 };
	struct import_info info = { 0 };
	(void)r;
	if (!u->err && u->received == 0) {
		atomic_fetch_add(&u->call.api->m.upload_failures, 1);
		return api_error(&u->call, 400, "empty_body", "the request has no body to import");
	}
	if (!u->err)
		u->err = import_pass_finish(u->pass, &res, &info, &u->eb);
	if (u->err)
		reply_error(u);
	else
		reply_done(u, &res);
}

static const struct http_body_ops raw_ops = { .data = raw_data, .end = raw_end,
					      .free = upload_free };

/* Replies 413 at once when the declared length is over the limit. */
static bool length_ok(struct upload *u)
{
	const char *cl = http_req_header(u->call.r, "Content-Length");
	uint64_t len = 0;
	if (cl && api_parse_u64(cl, &len) == 0)
		u->declared = len;
	if (cl && api_parse_u64(cl, &len) == 0 && len > u->limit) {
		u->err = -EFBIG;
		u->over_limit = true;
		reply_error(u);
		return false;
	}
	return true;
}

static void start_raw(struct upload *u)
{
	struct import_source src = upload_source(u, NULL);
	int err = ring_new(&u->ring, RING_ENTRIES);
	src.ring = u->ring;
	src.stream_bytes = u->declared;
	if (!err)
		err = import_pass_new(&u->pass, &capped_sink_ops, &u->sink, &src, &u->eb);
	if (err) {
		u->err = err;
		reply_error(u);
		upload_free(u);
		return;
	}
	http_req_read_body(u->call.r, &raw_ops, u);
}

/* --- multipart bodies --- */

int api_spool_open(struct api_call *c, int *fd, char **path)
{
	const char *root = store_root(vault_store(c->api->vault));
	if (asprintf(path, "%s/tmp/upload-XXXXXX", root) < 0) {
		*path = NULL;
		return -ENOMEM;
	}
	*fd = mkostemp(*path, O_CLOEXEC);
	if (*fd < 0) {
		int err = errno ? -errno : -EIO;
		free(*path);
		*path = NULL;
		return err;
	}
	return 0;
}

static int spool_open(struct upload *u)
{
	return api_spool_open(&u->call, &u->spool_fd, &u->spool_path);
}

/* -ENOSPC (u->eb) when writing len more bytes would take the file
 * system below the free space imports keep, even once the read-through
 * cache of remote objects gave way (its bytes can be fetched again). */
static int spool_room(struct upload *u, size_t len)
{
	const struct config_retention *rc = &u->call.api->cfg->retention;
	struct vault *v = u->call.api->vault;
	uint64_t free_bytes = 0, total = 0;
	if (store_space(vault_store(v), &free_bytes, &total) < 0)
		return 0; /* unknown: the write itself will say */
	uint64_t keep = retention_min_free(rc->min_free_bytes, rc->min_free_percent, total) +
			SPOOL_INDEX_RESERVE;
	if (free_bytes >= keep && free_bytes - keep >= len)
		return 0;
	if (vault_objcache(v) && objcache_trim(vault_objcache(v), keep + len) > 0 &&
	    store_space(vault_store(v), &free_bytes, &total) == 0 && free_bytes >= keep &&
	    free_bytes - keep >= len)
		return 0;
	return errbuf_set(&u->eb, -ENOSPC,
			  "no room to receive the upload: %" PRIu64 " bytes free, %" PRIu64
			  " kept free (retention.min_free and the index's reserve)",
			  free_bytes, keep);
}

static int file_part(struct upload *u, const char *filename, const char *data, uint64_t off,
		     size_t len)
{
	if (off == 0) {
		if (u->have_file)
			return u->err = -EEXIST;
		u->have_file = true;
		if (filename && *filename && !(u->part_name = strdup(filename)))
			return u->err = -ENOMEM;
		if ((u->err = spool_open(u)) < 0)
			return u->err;
	}
	u->received += len;
	if (u->received > u->limit)
		return u->err = -EFBIG;
	if (len && (u->err = spool_room(u, len)) < 0)
		return u->err;
	if (len && (u->err = ring_pwrite(u->ring, u->spool_fd, data, len, off)) < 0)
		return u->err;
	return 0;
}

/* Appends a piece of a small text field. */
static int text_part(struct upload *u, int which, const char *data, uint64_t off, size_t len)
{
	char *old = u->fields[which];
	size_t have = old && off ? strlen(old) : 0;
	if (have + len > FIELD_MAX)
		return u->err = -E2BIG;
	char *s = realloc(off ? old : NULL, have + len + 1);
	if (!s)
		return u->err = -ENOMEM;
	if (!off)
		free(old);
	memcpy(s + have, data, len);
	s[have + len] = '\0';
	u->fields[which] = s;
	return 0;
}

/* Appends a piece of the key log, at most ANNOT_KEYLOG_MAX bytes. */
static int keylog_part(struct upload *u, const char *data, uint64_t off, size_t len)
{
	if (off != u->keylog_len || u->keylog_len + len > ANNOT_KEYLOG_MAX)
		return u->err = -EMSGSIZE;
	char *grown = realloc(u->keylog, u->keylog_len + len + 1);
	if (!grown)
		return u->err = -ENOMEM;
	memcpy(grown + u->keylog_len, data, len);
	u->keylog = grown;
	u->keylog_len += len;
	return 0;
}

static int form_field(void *ctx, const char *key, const char *filename, const char *data,
		      uint64_t off, size_t len)
{
	struct upload *u = ctx;
	if (!strcmp(key, "file"))
		return file_part(u, filename, data, off, len);
	if (!strcmp(key, "name") || !strcmp(key, "filename"))
		return text_part(u, F_NAME, data, off, len);
	if (!strcmp(key, "tags") || !strcmp(key, "additional_tags"))
		return text_part(u, F_TAGS, data, off, len);
	if (!strcmp(key, "comments") || !strcmp(key, "comment"))
		return text_part(u, F_COMMENT, data, off, len);
	if (!strcmp(key, "keylog"))
		return keylog_part(u, data, off, len);
	return 0; /* unknown fields are ignored, as CloudShark does */
}

/* Moves the text fields into meta; replies and returns false on bad tags. */
static bool take_fields(struct upload *u)
{
	if (u->fields[F_NAME] && *u->fields[F_NAME]) {
		free(u->meta.name);
		u->meta.name = u->fields[F_NAME];
		u->fields[F_NAME] = NULL;
	}
	if (u->fields[F_COMMENT]) {
		free(u->meta.comment);
		u->meta.comment = u->fields[F_COMMENT];
		u->fields[F_COMMENT] = NULL;
	}
	return !u->fields[F_TAGS] || api_upload_add_tags(&u->call, &u->meta, u->fields[F_TAGS]) == 0;
}

static void form_end(void *ctx, struct http_req *r, bool well_formed)
{
	struct upload *u = ctx;
	struct import_result res = { 0 };
	struct import_info info = { 0 };
	(void)r;
	if (u->err == -EEXIST || u->err == -E2BIG || u->err == -EMSGSIZE ||
	    (!u->err && !well_formed)) {
		atomic_fetch_add(&u->call.api->m.upload_failures, 1);
		return api_error(&u->call, 400, "bad_form", "%s",
				 u->err == -EEXIST   ? "more than one 'file' field" :
				 u->err == -E2BIG    ? "a text field is longer than 4096 bytes" :
				 u->err == -EMSGSIZE ? "the keylog part is larger than 1 MiB" :
						       "malformed multipart/form-data body");
	}
	if (!u->err && !u->have_file) {
		atomic_fetch_add(&u->call.api->m.upload_failures, 1);
		return api_error(&u->call, 400, "missing_file", "the form has no 'file' field");
	}
	if (u->err)
		return reply_error(u);
	if (!take_fields(u))
		return;
	/* Written: closed before the import, which links the spool file only
	 * when nobody has it open for writing (store.h), us included. */
	if (u->spool_fd >= 0)
		close(u->spool_fd);
	u->spool_fd = -1;
	struct import_source src = upload_source(u, u->spool_path);
	u->err = import_file(u->ring, &capped_sink_ops, &u->sink, &src, &res, &info, &u->eb);
	if (u->err)
		reply_error(u);
	else
		reply_done(u, &res);
}

static const struct http_form_ops form_ops = { .field = form_field, .end = form_end,
					       .free = upload_free };

static void start_form(struct upload *u)
{
	int err = ring_new(&u->ring, RING_ENTRIES);
	if (err) {
		u->err = err;
		reply_error(u);
		upload_free(u);
		return;
	}
	if (http_req_read_form(u->call.r, &form_ops, u) < 0) {
		api_error(&u->call, 415, "unsupported_media_type", "not a form body");
		upload_free(u);
	}
}

/* --- entry points --- */

static bool is_multipart(struct http_req *r)
{
	const char *ct = http_req_header(r, "Content-Type");
	return ct && strncasecmp(ct, "multipart/form-data", 19) == 0;
}

/* Query-string options: name/filename, tags/additional_tags, comments;
 * source_path, on the unix socket only (the capvault CLI's file). */
static bool query_meta(struct api_call *c, struct upload *u)
{
	const char *name = http_req_arg(c->r, "name");
	const char *tags = http_req_arg(c->r, "tags");
	const char *comment = http_req_arg(c->r, "comments");
	name = name ? name : http_req_arg(c->r, "filename");
	tags = tags ? tags : http_req_arg(c->r, "additional_tags");
	comment = comment ? comment : http_req_arg(c->r, "comment");
	const char *source = http_req_arg(c->r, "source_path");
	if (source && !http_req_local(c->r)) {
		api_error(c, 403, "forbidden", "source_path is only taken on the unix socket");
		return false;
	}
	if (source && *source && !(u->meta.source_path = strdup(source))) {
		api_error_errno(c, -ENOMEM, "upload", NULL);
		return false;
	}
	if ((name && *name && !(u->meta.name = strdup(name))) ||
	    (comment && !(u->meta.comment = strdup(comment)))) {
		api_error_errno(c, -ENOMEM, "upload", NULL);
		return false;
	}
	return !tags || api_upload_add_tags(c, &u->meta, tags) == 0;
}

static void upload_start(struct api_call *c, bool multipart)
{
	struct upload *u = upload_new(c);
	if (!u)
		return api_error_errno(c, -ENOMEM, "upload", NULL);
	if (!query_meta(c, u) || !length_ok(u)) {
		upload_free(u);
		return;
	}
	if (multipart)
		start_form(u);
	else
		start_raw(u);
}

void api_upload(struct api_call *c)
{
	upload_start(c, is_multipart(c->r));
}

/* Replies to a failed fetch by what went wrong. */
static void url_error(struct api_call *c, int err, const struct errbuf *eb)
{
	switch (err) {
	case -EPERM: api_error(c, 403, "forbidden", "%s", eb->msg); break;
	case -EFBIG:
		api_error(c, 413, "too_large", "%s (%" PRIu64 " bytes)", eb->msg,
			  c->api->cfg->api.max_upload_size);
		break;
	case -EINVAL: api_error(c, 400, "bad_request", "%s", eb->msg); break;
	case -EIO:
	case -ETIMEDOUT: api_error(c, 502, "bad_gateway", "%s", eb->msg); break;
	default: api_error_errno(c, err, "url", eb->msg);
	}
}

/* CloudShark's upload by url=: fetched into the spool (urlfetch.h says
 * what is refused), then imported as an upload. Off unless
 * cloudshark.url_upload_allow lists prefixes. */
static void url_upload(struct api_call *c, const char *url)
{
	const struct config *cfg = c->api->cfg;
	const struct config_strv *allow = &cfg->cloudshark.url_upload_allow;
	struct errbuf eb = { { 0 } };
	char *path = NULL;
	int fd = -1;
	if (!allow->n)
		return api_error(c, 403, "forbidden",
				 "upload by url= is off (cloudshark.url_upload_allow lists no prefix)");
	struct urlfetch_opts o = {
		.allow = (const char *const *)allow->v,
		.nallow = allow->n,
		.max_bytes = cfg->api.max_upload_size,
		.connect_timeout_s = 10,
		.min_rate = cfg->api.body_min_rate,
		.slow_time_s = (unsigned)(cfg->api.body_timeout_ns / 1000000000u),
	};
	int err = api_spool_open(c, &fd, &path);
	if (err || !path)
		return api_error_errno(c, err ? err : -ENOMEM, "upload", NULL);
	err = urlfetch_to_fd(url, &o, fd, &eb);
	if (close(fd) < 0 && !err)
		err = errbuf_set(&eb, -EIO, "url: cannot write the download");
	if (err) {
		unlink(path);
		free(path);
		atomic_fetch_add(&c->api->m.upload_failures, 1);
		return url_error(c, err, &eb);
	}
	const char *name = http_req_arg(c->r, "filename");
	char *from_url = name && *name ? NULL : urlfetch_file_name(url);
	api_upload_file(c, path, from_url ? from_url : name, http_req_arg(c->r, "additional_tags"),
			http_req_arg(c->r, "comments"));
	free(from_url);
}

void api_cs_upload(struct api_call *c)
{
	const char *url = http_req_arg(c->r, "url");
	if (url)
		return url_upload(c, url);
	bool post = !strcmp(http_req_method(c->r), "POST");
	if (post && !is_multipart(c->r))
		return api_error(c, 415, "unsupported_media_type",
				 "POST upload needs a multipart/form-data body with a 'file' field");
	upload_start(c, post);
}

void api_upload_file(struct api_call *c, char *path, const char *name, const char *tags,
		     const char *comment)
{
	struct import_result res = { 0 };
	struct import_info info = { 0 };
	struct upload *u = upload_new(c);
	if (!u) {
		unlink(path);
		free(path);
		return api_error_errno(c, -ENOMEM, "upload", NULL);
	}
	u->spool_path = path;
	if ((name && *name && !(u->meta.name = strdup(name))) ||
	    (comment && !(u->meta.comment = strdup(comment)))) {
		api_error_errno(c, -ENOMEM, "upload", NULL);
		return upload_free(u);
	}
	if ((tags && api_upload_add_tags(&u->call, &u->meta, tags) < 0))
		return upload_free(u);
	struct stat st;
	if (stat(path, &st) == 0)
		u->received = (uint64_t)st.st_size;
	if ((u->err = ring_new(&u->ring, RING_ENTRIES)) == 0) {
		struct import_source src = upload_source(u, u->spool_path);
		u->err = import_file(u->ring, &capped_sink_ops, &u->sink, &src, &res, &info, &u->eb);
	}
	if (u->err)
		reply_error(u);
	else
		reply_done(u, &res);
	upload_free(u);
}
