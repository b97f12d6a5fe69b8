/*
 * api_annot.c - annotations (a text on one frame of a capture) and the
 * downloads that carry what is attached to a capture:
 *   GET/POST /v1/captures/{id}/annotations      (native, for the viewer)
 *   GET/POST /api/v1/<token>/annotations/<id>   (CloudShark's shape)
 *   GET /v1/captures/{id}/file?annotations=1&keylog=1 (and CloudShark's
 *   download/<id> with the same options): the capture as pcapng with each
 *   annotation as its packet's comment and the TLS key log as a
 *   Decryption Secrets Block, converted as it streams (bounded memory).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "annot.h"
#include "api_priv.h"
#include "capfile.h"
#include "capwrite.h"
#include "catalog.h"
#include "cleanup.h"
#include "log.h"
#include "objread.h"
#include "parse.h"
#include "textesc.h"
#include "vault.h"

#define READ_CHUNK (64u * 1024)

static json_t *time_text(uint64_t ns)
{
	char buf[64];
	return json_string(api_cs_time((int64_t)ns, buf, sizeof(buf)));
}

/* The list as the native API gives it, or (cs) as CloudShark's array of
 * {line, capture_id, text, user}. NULL when out of memory. */
static json_t *annot_json(const struct annotation *a, size_t n, uint64_t id, bool cs)
{
	char idtext[24];
	json_t *list = json_array();
	snprintf(idtext, sizeof(idtext), "%" PRIu64, id);
	for (size_t i = 0; list && i < n; i++) {
		json_t *o = cs ? json_pack("{sIsssoss}", "line", (json_int_t)a[i].frame, "capture_id",
					   idtext, "text", catalog_json_text(a[i].text), "user", "") :
				 json_pack("{sIsoso}", "frame", (json_int_t)a[i].frame, "text",
					   catalog_json_text(a[i].text), "created_at",
					   time_text(a[i].created_ns));
		if (!o || json_array_append_new(list, o) < 0) {
			json_decref(list);
			return NULL;
		}
	}
	return cs || !list ? list : json_pack("{so}", "annotations", list);
}

/* Replies with the annotations of capture id (204 when quiet). */
static void reply_list(struct api_call *c, uint64_t id, bool quiet)
{
	struct annotation *a = NULL;
	size_t n = 0;
	if (quiet) {
		http_respond(c->r, 204, "application/json", "", 0, NULL);
		return;
	}
	int err = annot_list(vault_db(c->api->vault), id, &a, &n);
	if (err)
		return api_error_errno(c, err, "annotations", NULL);
	json_t *o = annot_json(a, n, id, c->cloudshark);
	annot_list_free(a, n);
	api_json(c, 200, o);
}

/* Sets (or with no text removes) one annotation, then replies. */
static void set_one(struct api_call *c, uint64_t id, const char *frame, const char *text,
		    bool quiet)
{
	struct errbuf eb = { { 0 } };
	struct capture_record *rec = NULL;
	uint64_t f = 0;
	if (!frame || api_parse_u64(frame, &f) < 0 || f == 0)
		return api_error(c, 400, "bad_request", "frame: a frame number (1, 2, ...) is needed");
	int err = catalog_get(vault_catalog(c->api->vault), id, &rec);
	if (!err && f > rec->packets)
		err = errbuf_set(&eb, -EINVAL, "frame %" PRIu64 ": the capture has %" PRIu64 " packets",
				 f, rec->packets);
	if (!err)
		err = annot_set(vault_catalog(c->api->vault), vault_db(c->api->vault), id, f, text,
				&eb);
	if (!err)
		api_audit(c, text && *text ? "annotate" : "unannotate", rec, "FRAME", frame,
			  (char *)NULL);
	capture_record_free(rec);
	if (err)
		return api_error_errno(c, err, "annotation", eb.msg);
	reply_list(c, id, quiet);
}

static bool truthy(const char *v)
{
	return v && (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes"));
}

/* --- CloudShark: frame, text and quiet from the query or a form body --- */

struct cs_form {
	struct api_call call; /* for replies; seg[] and token are not used */
	uint64_t id;
	char *fields[3];
	bool too_long;
};

enum { CS_FRAME, CS_TEXT, CS_QUIET };

static int cs_form_field(void *ctx, const char *key, const char *filename, const char *data,
			 uint64_t off, size_t len)
{
	struct cs_form *f = ctx;
	int which = !strcmp(key, "frame") ? CS_FRAME : !strcmp(key, "text") ? CS_TEXT :
		    !strcmp(key, "quiet") ? CS_QUIET : -1;
	(void)filename;
	if (which < 0)
		return 0;
	size_t have = f->fields[which] ? strlen(f->fields[which]) : 0;
	if (off != have || have + len > ANNOT_TEXT_MAX) {
		f->too_long = true;
		return 1;
	}
	char *s = realloc(f->fields[which], have + len + 1);
	if (!s)
		return 1;
	memcpy(s + have, data, len);
	s[have + len] = '\0';
	f->fields[which] = s;
	return 0;
}

static void cs_form_end(void *ctx, struct http_req *r, bool well_formed)
{
	struct cs_form *f = ctx;
	struct api_call *c = &f->call;
	const char *frame = f->fields[CS_FRAME] ? f->fields[CS_FRAME] : http_req_arg(r, "frame");
	const char *text = f->fields[CS_TEXT] ? f->fields[CS_TEXT] : http_req_arg(r, "text");
	const char *quiet = f->fields[CS_QUIET] ? f->fields[CS_QUIET] : http_req_arg(r, "quiet");
	if (f->too_long)
		return api_error(c, 400, "bad_request", "text: at most %u bytes", ANNOT_TEXT_MAX);
	if (!well_formed)
		return api_error(c, 400, "bad_form", "malformed form body");
	set_one(c, f->id, frame, text, truthy(quiet));
}

static void cs_form_free(void *ctx)
{
	struct cs_form *f = ctx;
	for (size_t i = 0; i < ARRAY_SIZE(f->fields); i++)
		free(f->fields[i]);
	free(f);
}

static const struct http_form_ops cs_form_ops = { .field = cs_form_field, .end = cs_form_end,
						  .free = cs_form_free };

static bool has_form_body(struct http_req *r)
{
	const char *ct = http_req_header(r, "Content-Type");
	return ct && (!strncasecmp(ct, "application/x-www-form-urlencoded", 33) ||
		      !strncasecmp(ct, "multipart/form-data", 19));
}

void api_cs_annotations(struct api_call *c)
{
	struct capture_record *rec = api_capture_arg(c, c->seg[4]);
	if (!rec)
		return;
	uint64_t id = rec->id;
	capture_record_free(rec);
	if (strcmp(http_req_method(c->r), "POST") != 0)
		return reply_list(c, id, false);
	if (!has_form_body(c->r))
		return set_one(c, id, http_req_arg(c->r, "frame"), http_req_arg(c->r, "text"),
			       truthy(http_req_arg(c->r, "quiet")));
	struct cs_form *f = calloc(1, sizeof(*f));
	if (!f)
		return api_error_errno(c, -ENOMEM, "annotation", NULL);
	f->call = *c;
	f->call.token = NULL;
	f->call.nseg = 0;
	f->id = id;
	if (http_req_read_form(c->r, &cs_form_ops, f) < 0) {
		cs_form_free(f);
		api_error(c, 415, "unsupported_media_type", "not a form body");
	}
}

/* --- native --- */

void api_annotations_get(struct api_call *c)
{
	struct capture_record *rec = api_capture_arg(c, c->seg[2]);
	if (!rec)
		return;
	reply_list(c, rec->id, false);
	capture_record_free(rec);
}

static void native_post_done(struct api_call *c, uint64_t id, json_t *doc)
{
	json_t *frame = json_object_get(doc, "frame"), *text = json_object_get(doc, "text");
	char ftext[24];
	if (!json_is_integer(frame) || json_integer_value(frame) < 1 ||
	    (text && !json_is_string(text) && !json_is_null(text)))
		return api_error(c, 400, "bad_request",
				 "the body is {\"frame\": N (1, 2, ...), \"text\": \"...\"}; "
				 "no or empty text removes the annotation");
	snprintf(ftext, sizeof(ftext), "%" JSON_INTEGER_FORMAT, json_integer_value(frame));
	/* The JSON holds text in its escaped form (as names are): bytes back. */
	char *bytes = NULL;
	if (json_is_string(text) && text_unescape(json_string_value(text), false, &bytes) < 0)
		return api_error(c, 400, "bad_request", "text: bad escape");
	set_one(c, id, ftext, bytes, false);
	free(bytes);
}

void api_annotations_post(struct api_call *c)
{
	struct capture_record *rec = api_capture_arg(c, c->seg[2]);
	if (!rec)
		return;
	uint64_t id = rec->id;
	capture_record_free(rec);
	api_read_json(c, id, native_post_done);
}

/* --- downloads with annotations and key log --- */

struct pcapng_stream {
	struct objread *src;
	uint64_t id;
	struct capfile *cf;
	struct capwrite *w;
	struct annotation *ann;
	size_t nann, next;
	uint64_t frame;
	char *out;
	size_t out_len, out_off, out_cap;
	bool eof;
	char chunk[READ_CHUNK];
};

static int stream_out(void *opaque, const void *buf, size_t len)
{
	struct pcapng_stream *s = opaque;
	if (s->out_len + len > s->out_cap) {
		size_t cap = s->out_len + len + CAPWRITE_BUFFER;
		char *grown = realloc(s->out, cap);
		if (!grown)
			return -ENOMEM;
		s->out = grown;
		s->out_cap = cap;
	}
	memcpy(s->out + s->out_len, buf, len);
	s->out_len += len;
	return 0;
}

static int stream_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct pcapng_stream *s = opaque;
	const char *comment = NULL;
	s->frame++;
	while (s->next < s->nann && s->ann[s->next].frame < s->frame)
		s->next++;
	if (s->next < s->nann && s->ann[s->next].frame == s->frame)
		comment = s->ann[s->next++].text;
	return capwrite_packet_comment(s->w, pkt, comment);
}

/* Reads and converts until there is output or the end. */
static int stream_fill(struct pcapng_stream *s)
{
	struct errbuf eb = { { 0 } };
	s->out_len = s->out_off = 0;
	while (s->out_len == 0 && !s->eof) {
		ssize_t n = objread_read(s->src, s->chunk, sizeof(s->chunk), &eb);
		if (n < 0) {
			/* The status went out: all that is left is to cut the
			 * stream and say why in the log. */
			log_warnx("download of capture %" PRIu64 ": %s", s->id,
				  eb.msg[0] ? eb.msg : strerror((int)-n));
			return -EIO;
		}
		if (n > 0 && capfile_feed(s->cf, s->chunk, (size_t)n, &eb) != 0)
			return -EIO;
		if (n == 0) {
			if (capfile_finish(s->cf, &eb) < 0)
				return -EIO;
			s->eof = true;
			if (capwrite_flush(s->w) != 0)
				return -EIO;
		}
	}
	return 0;
}

static ssize_t stream_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
	struct pcapng_stream *s = ctx;
	(void)pos;
	if (s->out_off == s->out_len && !s->eof && stream_fill(s) < 0)
		return HTTP_STREAM_ERROR;
	if (s->out_off == s->out_len)
		return HTTP_STREAM_END;
	size_t n = s->out_len - s->out_off < max ? s->out_len - s->out_off : max;
	memcpy(buf, s->out + s->out_off, n);
	s->out_off += n;
	return (ssize_t)n;
}

static void stream_free(void *ctx)
{
	struct pcapng_stream *s = ctx;
	if (!s)
		return;
	capwrite_free(s->w);
	capfile_free(s->cf);
	annot_list_free(s->ann, s->nann);
	objread_free(s->src);
	free(s->out);
	free(s);
}

/* Sets s up: the object open, the annotations and key log loaded (as
 * asked), the pcapng header (and secrets block) written. A tiered
 * capture's store is asked now, so its failure is a 503 (eb). */
static int stream_open(struct api_call *c, const struct capture_record *rec, bool annotations,
		       bool keylog, struct pcapng_stream *s, struct errbuf *eb)
{
	struct db *db = vault_db(c->api->vault);
	char *keys = NULL;
	size_t keylen = 0;
	int err;
	if (annotations && (err = annot_list(db, rec->id, &s->ann, &s->nann)) < 0)
		return err;
	if (keylog && (err = annot_keylog_get(db, rec->id, &keys, &keylen)) < 0 && err != -ENOENT)
		return err;
	s->id = rec->id;
	err = objread_open(&s->src, c->api->vault, rec->id, rec->sha256, rec->file_size, eb);
	if (err == -ENOENT)
		err = -EIO;
	else if (!err && !(err = capfile_new(&s->cf, stream_packet, NULL, s)))
		err = capwrite_new(&s->w, CAPFILE_FORMAT_PCAPNG,
				   rec->nlinktypes ? rec->linktypes[0] : 1, true, rec->snaplen,
				   stream_out, s);
	if (!err && keylen)
		err = capwrite_secrets(s->w, CAPWRITE_SECRETS_TLS, keys, keylen);
	free(keys);
	return err;
}

/* "x.pcap" / "x.cap" / "x" -> "x.pcapng". */
static char *pcapng_name(const char *name)
{
	size_t len = strlen(name);
	static const char *const ext[] = { ".pcapng", ".pcap", ".cap" };
	for (size_t i = 0; i < ARRAY_SIZE(ext); i++) {
		size_t el = strlen(ext[i]);
		if (len > el && !strcasecmp(name + len - el, ext[i])) {
			len -= el;
			break;
		}
	}
	char *out = NULL;
	return asprintf(&out, "%.*s.pcapng", (int)len, name) < 0 ? NULL : out;
}

bool api_send_attached(struct api_call *c, const struct capture_record *rec)
{
	bool annotations = truthy(http_req_arg(c->r, "annotations"));
	bool keylog = truthy(http_req_arg(c->r, "keylog"));
	if (!annotations && !keylog)
		return false;
	struct pcapng_stream *s = calloc(1, sizeof(*s));
	if (!s) {
		api_error_errno(c, -ENOMEM, "download", NULL);
		return true;
	}
	struct errbuf eb = { { 0 } };
	int err = stream_open(c, rec, annotations, keylog, s, &eb);
	char *name = err ? NULL : pcapng_name(rec->name);
	if (err || !name) {
		stream_free(s);
		free(name);
		api_error_errno(c, err ? err : -ENOMEM, "download",
				objread_store_error(err) ? eb.msg : NULL);
		return true;
	}
	char disp[API_DISPOSITION_MAX];
	api_content_disposition(name, disp, sizeof(disp));
	free(name);
	const char *const hdr[] = { "Content-Disposition", disp, NULL };
	atomic_fetch_add(&c->api->m.downloads, 1);
	http_respond_stream(c->r, 200, "application/x-pcapng", HTTP_SIZE_UNKNOWN, stream_read,
			    stream_free, s, hdr);
	return true;
}
