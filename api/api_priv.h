/*
 * api_priv.h - what the API's handler files share: the server state, a
 * call (one routed request with its token), error and JSON replies, and
 * the metrics they update. Private to api/.
 */
#ifndef CAPVAULT_API_PRIV_H
#define CAPVAULT_API_PRIV_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "api.h"
#include "http.h"

struct token_info;
struct session_store;
struct capture_record;

/* Query latency histogram bounds, in seconds (Prometheus "le"). */
#define API_LAT_BUCKETS 10
extern const double api_latency_bounds[API_LAT_BUCKETS];

/* HTTP responses by route (the routes table's index; API_ROUTES: no
 * route matched) and status (an exact one from api_http_statuses, else
 * its class "1xx".."5xx"). A fixed table of atomics: no lock per request. */
#define API_ROUTES 33
#define API_STATUSES 23
#define API_STATUS_SLOTS (API_STATUSES + 5)
extern const unsigned api_http_statuses[API_STATUSES];
/* Route number route's pattern, "other" past the table: never a request's path. */
const char *api_route_pattern(size_t route);
/* Counts one response (http_listen_cfg.responded; route -1: none). */
void api_count_response(void *api, int route, unsigned status);

struct api_metrics {
	atomic_uint_fast64_t responses[API_ROUTES + 1][API_STATUS_SLOTS];
	atomic_uint_fast64_t uploads, upload_bytes, upload_failures, downloads;
	atomic_uint_fast64_t queries, query_failures, query_packets;
	atomic_uint_fast64_t query_lat[API_LAT_BUCKETS + 1]; /* last: +Inf */
	atomic_uint_fast64_t query_lat_sum_us;
};

struct api_server {
	/* The configuration in force (a reload swaps it; the daemon keeps the
	 * old ones) and the one the listeners were set up from. */
	const struct config *_Atomic cfg;
	const struct config *start_cfg;
	pthread_mutex_t reload_lock; /* guards restart_needed */
	json_t *restart_needed;      /* settings changed that need a restart */
	struct vault *vault;
	struct api_hooks hooks;
	struct http_server **servers;
	size_t nservers;
	atomic_bool stopping;     /* api_server_stop began: long requests stop early */
	char *unix_path;
	struct stat unix_id;      /* the socket file we made, removed at stop */
	char *tls_cert, *tls_key;
	struct api_metrics m;
	struct token_cache *tokens; /* cleared on every revocation */
	struct session_store *sessions; /* the viewer's logins */
	uint64_t started_ns;      /* CLOCK_REALTIME, for /v1/status */
	uint64_t started_mono_ns; /* CLOCK_MONOTONIC: uptime, whatever the clock is set to */
	pthread_mutex_t decoder_lock;  /* guards decoder's making */
	struct api_decoder *decoder;   /* made at the first decode request */
};

/* One request being handled: its route's path segments and its token.
 * A handler that reads a body gets a copy (api_read_json): who, peer and
 * scopes stay valid there, token and seg do not. */
#define API_MAX_SEGS 8
struct api_call {
	struct api_server *api;
	struct http_req *r;
	const char *seg[API_MAX_SEGS]; /* path segments */
	char segbuf[1024];
	size_t nseg;
	struct token_info *token;      /* NULL on the unix socket */
	bool cloudshark;               /* errors in CloudShark's form */
	unsigned scopes;               /* the caller's (all on the unix socket) */
	char who[80];                  /* token name, "unix-socket" or "-" */
	char peer[80];                 /* http_req_peer */
};

/* Replaces every from in the NUL-terminated text in buf (size bytes) by
 * to, cutting at the end of buf. */
void api_text_replace(char *buf, size_t size, const char *from, const char *to);

/* Error reply: native {"status","error","message"} or CloudShark's
 * {"status","exceptions":[message]}. */
void api_error(struct api_call *c, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Replies 400 bad_parameter and returns false when the query string gives
 * one of names (NULL-terminated) more than once: a lookup sees only the
 * first, so captures=1&captures=2 would query capture 1 alone. */
bool api_args_once(struct api_call *c, const char *const *names);
/* An errno from the index as a reply (404 for -ENOENT, 507 for -ENOSPC...). */
void api_error_errno(struct api_call *c, int err, const char *what, const char *detail);
/* JSON reply; takes the reference to o. */
void api_json(struct api_call *c, unsigned status, json_t *o);
void api_json_headers(struct api_call *c, unsigned status, json_t *o, const char *const *headers);
/*
 * Logs a change (info): one line "audit: ACTION key=value ..." and, under
 * journald, one entry with CAPVAULT_* fields: the action, the token (by
 * name, never its secret), the client, and when rec is given the
 * capture's id, sha256 and name. More key/value string pairs may follow,
 * ending with NULL.
 */
void api_audit(const struct api_call *c, const char *action, const struct capture_record *rec,
	       ...) __attribute__((sentinel));
/* True when the call may do what needs scope (the unix socket may all). */
bool api_call_allows(const struct api_call *c, unsigned scope);
/* Whether adding tag to a capture can lead to its deletion: a retention
 * policy selects by it (true too when there are no rules to ask). */
bool api_tag_may_delete(struct api_call *c, const char *tag);
/* Default tags of the call's token (none on the unix socket). */
const char *const *api_token_tags(const struct api_call *c, size_t *n);
/* The capture named by a path segment (decimal id or sha256 prefix);
 * replies 404/400 itself and returns NULL when there is none. */
struct capture_record *api_capture_arg(struct api_call *c, const char *arg);

void api_captures_list(struct api_call *c);
void api_capture_get(struct api_call *c);
void api_capture_file(struct api_call *c);
void api_capture_delete(struct api_call *c);
void api_capture_patch(struct api_call *c);
/* Serves the object of rec (Range aware); frees nothing of rec. */
void api_send_capture(struct api_call *c, const struct capture_record *rec);
/* Deletes rec's capture (and its object when unused) and replies. */
void api_delete_capture(struct api_call *c, const struct capture_record *rec);
/* Reads a JSON object body (at most 64 KiB), then calls done, which
 * replies; replies 400/413 itself for a bad body. */
void api_read_json(struct api_call *c, uint64_t id,
		   void (*done)(struct api_call *c, uint64_t id, json_t *doc));
void api_upload(struct api_call *c);
/* The settings a reload changed that only a restart applies (a new
 * JSON array of names). */
json_t *api_restart_needed(struct api_server *s);
void api_packets(struct api_call *c);
void api_stats(struct api_call *c);
void api_status(struct api_call *c);
void api_imports(struct api_call *c);
void api_metrics(struct api_call *c);
/* The Prometheus text printers of /metrics (api_stats.c), for every file
 * that adds metrics to it; names are without their "capvault_" prefix.
 * One sample with its HELP and TYPE lines: */
void api_metric(FILE *f, const char *name, const char *type, const char *help, uint64_t v);
/* A counter by one label: values[i] with label="names[i]". */
void api_metric_by(FILE *f, const char *name, const char *help, const char *label,
		   const char *const *names, const uint64_t *values, size_t n);
/* A histogram of count observations (sum_s seconds in all), le[i] of
 * them at most bounds[i] seconds (cumulative). */
void api_histogram(FILE *f, const char *name, const char *help, const double *bounds,
		   const uint64_t *le, size_t n, uint64_t count, double sum_s);
/* The same from the count of each bucket: counts[i] over bounds[i - 1]
 * and at most bounds[i], counts[n] over the last (n + 1 of them). */
void api_histogram_counts(FILE *f, const char *name, const char *help, const double *bounds,
			  const uint64_t *counts, size_t n, double sum_s);
/* Retention (api_retention.c). */
void api_prune(struct api_call *c);
void api_retention(struct api_call *c);
/* The object tier (api_tier.c). */
void api_tier(struct api_call *c);
struct catalog_totals;
/* The tier mover's metrics, and the local/remote totals of the snapshot. */
void api_tier_metrics(FILE *f, struct api_server *api, const struct catalog_totals *totals);
/* Reading tiered captures: the cache and the store's latency (api_objcache.c). */
void api_objcache_metrics(FILE *f, struct api_server *api);
/* Admin: tokens and backup (api_admin.c). */
void api_tokens_list(struct api_call *c);
void api_tokens_create(struct api_call *c);
void api_token_revoke(struct api_call *c);
void api_backup(struct api_call *c);
/* The viewer's decoded packets (api_decode.c). */
void api_decode_list(struct api_call *c);
void api_decode_packet(struct api_call *c);
struct api_decoder;
void api_decoder_free(struct api_decoder *d);
void api_cs_upload(struct api_call *c);
void api_cs_info(struct api_call *c);
void api_cs_search(struct api_call *c);
void api_cs_download(struct api_call *c);
void api_cs_delete(struct api_call *c);

/* Annotations (api_annot.c). */
void api_annotations_get(struct api_call *c);
void api_annotations_post(struct api_call *c);
void api_cs_annotations(struct api_call *c);
/* When the call asks for ?annotations=1 or ?keylog=1: replies with rec
 * as pcapng carrying them and returns true; else false (nothing sent). */
bool api_send_attached(struct api_call *c, const struct capture_record *rec);
/* CloudShark's merge (api_merge.c). */
void api_cs_merge(struct api_call *c);
/* Imports the file at path (a file in the store's tmp/, named as
 * store_tmp_is_ours wants; taken over and removed) as an upload named
 * name (NULL: "upload") with the comma-separated tags (checked) and the
 * comment (or NULL), and replies as an upload does. */
void api_upload_file(struct api_call *c, char *path, const char *name, const char *tags,
		     const char *comment);
/* A file in the store's tmp/ for an upload's bytes: 0 with the open fd
 * and its malloc'd path, or a negative errno. */
int api_spool_open(struct api_call *c, int *fd, char **path);

/* Name, comment and tags of an upload, from the query string or form. */
struct upload_meta {
	char *name;
	char *comment;
	char *source_path; /* unix socket only: the client's file */
	char **tags;
	size_t ntags;
};
void api_upload_meta_free(struct upload_meta *m);
/* Adds comma-separated tags, checking each. 0, or -EINVAL (replied). */
int api_upload_add_tags(struct api_call *c, struct upload_meta *m, const char *list);

#endif
