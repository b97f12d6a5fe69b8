/*
 * api_captures.c - /v1/captures/{id}: one capture's record, its bytes
 * (streamed with pread, HTTP Range), delete and patch. The listing is in
 * api_list.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_priv.h"
#include "catalog.h"
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

void api_send_capture(struct api_call *c, const struct capture_record *rec)
{
	struct file_stream *f = calloc(1, sizeof(*f));
	struct stat st;
	bool partial = false;
	if (!f)
		return api_error_errno(c, -ENOMEM, "download", NULL);
	f->fd = store_object_open(vault_store(c->api->vault), rec->sha256);
	if (f->fd < 0 || fstat(f->fd, &st) < 0) {
		int err = f->fd < 0 ? f->fd : -errno;
		if (f->fd >= 0)
			close(f->fd);
		free(f);
		return api_error_errno(c, err == -ENOENT ? -EIO : err, "opening the capture", NULL);
	}
	if (!pick_range(c, (uint64_t)st.st_size, f, &partial))
		return file_free(f);
	char disp[1100], cr[80];
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
	char id[24];
	snprintf(id, sizeof(id), "%" PRIu64, rec->id);
	if (c->cloudshark)
		api_json(c, 200, json_pack("{sssssb}", "id", id, "filename", rec->name, "deleted", 1));
	else
		api_json(c, 200, json_pack("{sIsssI}", "deleted", (json_int_t)rec->id, "name",
					   rec->name, "freed_bytes", (json_int_t)freed));
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
	json_t *doc = jb->len ? json_loadb(jb->buf, jb->len, 0, &jerr) : json_object();
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

/* The strings of the array a (borrowed; NULL gives an empty list). */
static int string_list(json_t *a, char ***out, struct errbuf *eb)
{
	size_t n = json_array_size(a);
	char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!(v[i] = (char *)json_string_value(json_array_get(a, i)))) {
			free(v);
			return errbuf_set(eb, -EINVAL, "tags must be strings");
		}
	}
	*out = v;
	return 0;
}

/* "tags" replaces the list; "add_tags" and "remove_tags" edit the list as
 * it is when the edit lands, so a tag added meanwhile (by a duplicate, or
 * another client) stays. */
static int patch_tags(struct api_call *c, uint64_t id, json_t *tags, json_t *add, json_t *del,
		      struct errbuf *eb)
{
	struct catalog *cat = vault_catalog(c->api->vault);
	char **t = NULL, **a = NULL, **d = NULL;
	int err = string_list(tags, &t, eb);
	if (!err)
		err = string_list(add, &a, eb);
	if (!err)
		err = string_list(del, &d, eb);
	if (!err && tags)
		err = catalog_update_tags(cat, id, t, json_array_size(tags), eb);
	if (!err && (add || del))
		err = catalog_edit_tags(cat, id, a, json_array_size(add), d, json_array_size(del), eb);
	free(t);
	free(a);
	free(d);
	return err;
}

static void patch_done(struct api_call *c, uint64_t id, json_t *doc)
{
	struct catalog *cat = vault_catalog(c->api->vault);
	struct errbuf eb = { { 0 } };
	json_t *name = json_object_get(doc, "name"), *tags = json_object_get(doc, "tags");
	json_t *comment = json_object_get(doc, "comment");
	json_t *add = json_object_get(doc, "add_tags"), *del = json_object_get(doc, "remove_tags");
	if ((name && !json_is_string(name)) || (tags && !json_is_array(tags)) ||
	    (add && !json_is_array(add)) || (del && !json_is_array(del)) ||
	    (comment && !json_is_string(comment) && !json_is_null(comment)))
		return api_error(c, 422, "bad_field",
				 "name is a string, tags, add_tags and remove_tags arrays of strings, "
				 "comment a string or null");
	int err = 0;
	if (name)
		err = catalog_update_name(cat, id, json_string_value(name), &eb);
	if (!err && (tags || add || del))
		err = patch_tags(c, id, tags, add, del, &eb);
	if (!err && comment)
		err = catalog_update_comment(cat, id, json_string_value(comment), &eb);
	if (err)
		return api_error_errno(c, err, "updating the capture", eb.msg);
	struct capture_record *rec = NULL;
	if ((err = catalog_get(cat, id, &rec)) < 0)
		return api_error_errno(c, err, "reading the capture", NULL);
	api_json(c, 200, capture_record_to_json(rec));
	capture_record_free(rec);
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
