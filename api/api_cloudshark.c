/*
 * api_cloudshark.c - the CloudShark API v1 (/api/v1/<token>/...) so that
 * scripts written for CloudShark work unchanged: info with CloudShark's
 * field names, search with its parameters and paging, download, delete.
 * Uploads are in api_upload.c. Ids are our capture ids, as strings.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "catalog.h"
#include "parse.h"
#include "textesc.h"
#include "vault.h"

#define SEARCH_DEFAULT_LIMIT 10
#define SEARCH_MAX_LIMIT 1000

static json_t *tag_list(const struct capture_record *rec)
{
	char buf[4096];
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < rec->ntags && used < sizeof(buf); i++)
		used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "," : "",
					 rec->tags[i]);
	return json_string(buf);
}

static json_t *id_string(uint64_t id)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%" PRIu64, id);
	return json_string(buf);
}

/* Copies key `from` of the native record as `to`. */
static void copy(json_t *dst, const char *to, json_t *src, const char *from)
{
	json_t *v = json_object_get(src, from);
	json_object_set(dst, to, v ? v : json_null());
}

/* A native number as CloudShark's two-decimal string. */
static void set_decimal(json_t *dst, const char *to, json_t *src, const char *from)
{
	char buf[64];
	json_t *v = json_object_get(src, from);
	json_object_set_new(dst, to, json_string(api_cs_decimal(v ? json_number_value(v) : 0.0,
								   buf, sizeof(buf))));
}

static void set_time(json_t *dst, const char *to, int64_t ns, bool known)
{
	char buf[64];
	json_object_set_new(dst, to, known ? json_string(api_cs_time(ns, buf, sizeof(buf))) :
					     json_string(""));
}

/* capinfos's names of the file types. */
static const char *file_type(const struct capture_record *rec)
{
	return !strcmp(rec->format, "pcapng") ? "Wireshark/... - pcapng" :
	       !strcmp(rec->format, "pcap") ? "Wireshark/tcpdump/... - pcap" : rec->format;
}

/*
 * The info of a capture in CloudShark's documented fields and types:
 * counts and sizes as numbers; duration, rates and the average packet
 * size as strings with two decimals; truncated "Yes"/"No"; comments ""
 * when there are none; times with a numeric UTC offset. Fields it has no
 * meaning for here (user, group) are "", public?/group_write? false.
 * NULL when out of memory.
 */
static json_t *cs_info(const struct capture_record *rec)
{
	json_t *n = capture_record_to_json(rec), *o = n ? json_object() : NULL;
	if (!o) {
		json_decref(n);
		return NULL;
	}
	json_t *lt = json_array_get(json_object_get(n, "linktypes"), 0);
	json_object_set_new(o, "id", id_string(rec->id));
	json_object_set_new(o, "cap_file_id", json_integer((json_int_t)rec->id));
	copy(o, "filename", n, "name");
	copy(o, "size", n, "file_size");
	copy(o, "data_size", n, "data_bytes");
	copy(o, "num_packets", n, "packets");
	set_decimal(o, "duration", n, "duration_s");
	set_time(o, "start_time", rec->earliest_ts_ns, rec->packets > 0);
	set_time(o, "end_time", rec->latest_ts_ns, rec->packets > 0);
	set_decimal(o, "avg_packet_size", n, "avg_packet_size");
	set_decimal(o, "avg_packet_rate", n, "avg_packet_rate");
	set_decimal(o, "data_byte_rate", n, "data_byte_rate");
	set_decimal(o, "data_bit_rate", n, "data_bit_rate");
	json_t *enc = json_object_get(lt, "description");
	json_object_set_new(o, "encapsulation", enc ? json_incref(enc) : json_string(""));
	json_object_set_new(o, "file_type", json_string(file_type(rec)));
	json_object_set_new(o, "truncated", json_string(rec->truncated ? "Yes" : "No"));
	json_t *comment = json_object_get(n, "comment");
	json_object_set_new(o, "comments",
			    json_is_string(comment) ? json_incref(comment) : json_string(""));
	json_object_set_new(o, "tag_list", tag_list(rec));
	set_time(o, "created_at", (int64_t)rec->import_time_ns, true);
	json_object_set_new(o, "file_source", json_string(rec->source_path ? "autoimport" : "upload"));
	json_object_set_new(o, "user", json_string(""));
	json_object_set_new(o, "group", json_string(""));
	json_object_set_new(o, "public?", json_false());
	json_object_set_new(o, "group_write?", json_false());
	copy(o, "also_imported_as", n, "also_imported_as"); /* ours: the duplicates merged in */
	copy(o, "sha256", n, "sha256");
	json_decref(n);
	return o;
}

void api_cs_info(struct api_call *c)
{
	struct capture_record *rec = api_capture_arg(c, c->seg[4]);
	if (!rec)
		return;
	api_json(c, 200, cs_info(rec));
	capture_record_free(rec);
}

void api_cs_download(struct api_call *c)
{
	struct capture_record *rec = api_capture_arg(c, c->seg[4]);
	if (!rec)
		return;
	api_send_capture(c, rec);
	capture_record_free(rec);
}

static void cs_delete_done(struct api_call *c, uint64_t id, json_t *doc)
{
	(void)id;
	json_t *jid = json_object_get(doc, "id");
	char buf[24];
	const char *arg = json_string_value(jid);
	if (json_is_integer(jid)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(jid));
		arg = buf;
	}
	if (!arg)
		return api_error(c, 400, "bad_request", "delete needs an id");
	struct capture_record *rec = api_capture_arg(c, arg);
	if (!rec)
		return;
	api_delete_capture(c, rec);
	capture_record_free(rec);
}

/* POST delete/<id>, or POST delete with {"id": ...} in the body. */
void api_cs_delete(struct api_call *c)
{
	if (c->nseg == 4)
		return api_read_json(c, 0, cs_delete_done);
	struct capture_record *rec = api_capture_arg(c, c->seg[4]);
	if (!rec)
		return;
	api_delete_capture(c, rec);
	capture_record_free(rec);
}

struct search {
	char **tags;
	size_t ntags;
	const char *filename;
	bool has_date;
	uint64_t from_ns, to_ns;
	uint64_t *hits; /* the id of every match, oldest first */
	size_t nhits, cap;
	bool bad;
};

static void search_arg(void *opaque, const char *key, const char *value)
{
	struct search *s = opaque;
	if (!value)
		return;
	if (!strcmp(key, "search[tags][]") || !strcmp(key, "search[tags]") ||
	    !strcmp(key, "search[tag]"))
		s->bad |= api_split_list(value, &s->tags, &s->ntags) < 0;
	else if (!strcmp(key, "search[filename]"))
		s->filename = value;
	else if (!strcmp(key, "search[date]") && *value)
		s->bad |= !(s->has_date = api_parse_cs_date_range(value, &s->from_ns, &s->to_ns) == 0);
}

/* search[filename] is a substring of the name's bytes or of its shown
 * (escaped) form, ignoring ASCII case. */
static bool name_matches(const char *name, const char *want)
{
	if (!name)
		return false;
	if (strcasestr(name, want))
		return true;
	if (text_is_plain(name, 0))
		return false;
	char *shown = text_escape_dup(name, 0);
	bool hit = shown && strcasestr(shown, want);
	free(shown);
	return hit;
}

/* Selects from the catalog's summary (no record parsed); only the page's
 * records are read. */
static int search_one(void *opaque, const struct capture_summary *sum)
{
	struct search *s = opaque;
	for (size_t i = 0; i < s->ntags; i++)
		if (!capture_summary_has_tag(sum, s->tags[i]))
			return 0;
	if (s->filename && *s->filename && !name_matches(sum->name, s->filename))
		return 0;
	if (s->has_date && (sum->import_time_ns < s->from_ns || sum->import_time_ns >= s->to_ns))
		return 0;
	if (s->nhits == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		uint64_t *grown = realloc(s->hits, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		s->hits = grown;
		s->cap = cap;
	}
	s->hits[s->nhits++] = sum->id;
	return 0;
}

/* The page's captures, newest first as CloudShark lists them; one deleted
 * since the selection is left out. */
static json_t *search_page(struct api_call *c, const struct search *s, uint64_t limit,
			   uint64_t page)
{
	json_t *out = json_array();
	for (uint64_t i = (page - 1) * limit; out && i < s->nhits && i < page * limit; i++) {
		struct capture_record *rec = NULL;
		if (catalog_get(vault_catalog(c->api->vault), s->hits[s->nhits - 1 - i], &rec) < 0)
			continue;
		json_t *o = cs_info(rec);
		capture_record_free(rec);
		if (!o || json_array_append_new(out, o) < 0) {
			json_decref(out);
			out = NULL;
		}
	}
	return out;
}

/* limit/page as CloudShark takes them; false when malformed. */
static bool paging(struct api_call *c, uint64_t *limit, uint64_t *page)
{
	const char *l = http_req_arg(c->r, "limit"), *p = http_req_arg(c->r, "page");
	*limit = SEARCH_DEFAULT_LIMIT;
	*page = 1;
	if ((l && api_parse_u64(l, limit) < 0) || (p && api_parse_u64(p, page) < 0))
		return false;
	return *limit >= 1 && *limit <= SEARCH_MAX_LIMIT && *page >= 1 && *page <= 1000000000u;
}

void api_cs_search(struct api_call *c)
{
	struct search s = { 0 };
	uint64_t limit, page;
	http_req_args_foreach(c->r, search_arg, &s);
	if (s.bad || !paging(c, &limit, &page)) {
		api_strv_free(s.tags, s.ntags);
		return api_error(c, 400, "bad_request",
				 "bad search: search[date] is M/D/YYYY-M/D/YYYY, limit 1-%d, page >= 1",
				 SEARCH_MAX_LIMIT);
	}
	int err = catalog_foreach_summary(vault_catalog(c->api->vault), 0, search_one, &s);
	api_strv_free(s.tags, s.ntags);
	json_t *out = err < 0 ? NULL : search_page(c, &s, limit, page);
	size_t total = s.nhits;
	free(s.hits);
	if (!out)
		return api_error_errno(c, err < 0 ? err : -ENOMEM, "search", NULL);
	api_json(c, 200, json_pack("{sosIsIsI}", "captures", out, "total_pages",
				   (json_int_t)((total + limit - 1) / limit), "total_count",
				   (json_int_t)total, "page", (json_int_t)page));
}
