/*
 * api.c - the API server: sockets, routing, authentication, error
 * replies.
 *
 * Routing looks only at the method and the path (never the Host header).
 * Every route but GET /v1/health needs a token with the route's scope,
 * except on the unix socket, whose file mode (0660) is the guard there.
 * Native calls send "Authorization: Bearer <token>"; CloudShark calls put
 * the token in the path (/api/v1/<token>/...), as CloudShark clients do:
 * so no reply and no log line echoes a CloudShark path.
 *
 * Every change is logged as an audit line (api_audit); every request at
 * debug level. A reply's message is in the escaped form of textesc.h:
 * whatever bytes a path or a name holds, the reply is valid JSON.
 */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api_priv.h"
#include "catalog.h"
#include "cleanup.h"
#include "config.h"
#include "log.h"
#include "monoclock.h"
#include "parse.h"
#include "store.h"
#include "textesc.h"
#include "tokens.h"
#include "vault.h"
#include "viewer.h"
#include "wallclock.h"

#define LISTEN_BACKLOG 128

struct route {
	const char *method;
	const char *pattern; /* '*' matches one path segment */
	unsigned scope;      /* 0: anonymous */
	void (*fn)(struct api_call *c);
	bool cloudshark;
};

static void health(struct api_call *c)
{
	api_json(c, 200, json_pack("{ssss}", "status", "ok", "version", CAPVAULT_VERSION));
}

static const struct route routes[] = {
	{ "GET", "/v1/health", 0, health, false },
	{ "GET", "/v1/captures", TOKEN_SCOPE_READ, api_captures_list, false },
	{ "POST", "/v1/captures", TOKEN_SCOPE_UPLOAD, api_upload, false },
	{ "GET", "/v1/captures/*", TOKEN_SCOPE_READ, api_capture_get, false },
	{ "DELETE", "/v1/captures/*", TOKEN_SCOPE_DELETE, api_capture_delete, false },
	{ "PATCH", "/v1/captures/*", TOKEN_SCOPE_UPLOAD, api_capture_patch, false },
	{ "GET", "/v1/captures/*/file", TOKEN_SCOPE_READ, api_capture_file, false },
	{ "GET", "/v1/captures/*/annotations", TOKEN_SCOPE_READ, api_annotations_get, false },
	{ "POST", "/v1/captures/*/annotations", TOKEN_SCOPE_UPLOAD, api_annotations_post, false },
	{ "GET", "/v1/packets", TOKEN_SCOPE_READ, api_packets, false },
	{ "GET", "/v1/decode/list", TOKEN_SCOPE_READ, api_decode_list, false },
	{ "GET", "/v1/decode/packet", TOKEN_SCOPE_READ, api_decode_packet, false },
	{ "GET", "/v1/stats", TOKEN_SCOPE_READ, api_stats, false },
	{ "GET", "/v1/status", TOKEN_SCOPE_READ, api_status, false },
	{ "GET", "/v1/imports", TOKEN_SCOPE_READ, api_imports, false },
	{ "GET", "/metrics", TOKEN_SCOPE_READ, api_metrics, false },
	{ "POST", "/v1/prune", TOKEN_SCOPE_DELETE, api_prune, false },
	{ "GET", "/v1/retention", TOKEN_SCOPE_READ, api_retention, false },
	{ "POST", "/v1/tier", TOKEN_SCOPE_DELETE, api_tier, false },
	{ "GET", "/v1/tokens", TOKEN_SCOPE_ADMIN, api_tokens_list, false },
	{ "POST", "/v1/tokens", TOKEN_SCOPE_ADMIN, api_tokens_create, false },
	{ "DELETE", "/v1/tokens/*", TOKEN_SCOPE_ADMIN, api_token_revoke, false },
	{ "POST", "/v1/backup", TOKEN_SCOPE_ADMIN, api_backup, false },
	{ "POST", "/api/v1/*/upload", TOKEN_SCOPE_UPLOAD, api_cs_upload, true },
	{ "PUT", "/api/v1/*/upload", TOKEN_SCOPE_UPLOAD, api_cs_upload, true },
	{ "GET", "/api/v1/*/info/*", TOKEN_SCOPE_READ, api_cs_info, true },
	{ "GET", "/api/v1/*/search", TOKEN_SCOPE_READ, api_cs_search, true },
	{ "GET", "/api/v1/*/download/*", TOKEN_SCOPE_READ, api_cs_download, true },
	{ "POST", "/api/v1/*/delete/*", TOKEN_SCOPE_DELETE, api_cs_delete, true },
	{ "POST", "/api/v1/*/delete", TOKEN_SCOPE_DELETE, api_cs_delete, true },
	{ "GET", "/api/v1/*/annotations/*", TOKEN_SCOPE_READ, api_cs_annotations, true },
	{ "POST", "/api/v1/*/annotations/*", TOKEN_SCOPE_UPLOAD, api_cs_annotations, true },
	{ "POST", "/api/v1/*/merge", TOKEN_SCOPE_UPLOAD, api_cs_merge, true },
};

_Static_assert(ARRAY_SIZE(routes) == API_ROUTES, "API_ROUTES must count the routes");

const char *api_route_pattern(size_t route)
{
	return route < ARRAY_SIZE(routes) ? routes[route].pattern : "other";
}

/* --- replies --- */

void api_json_headers(struct api_call *c, unsigned status, json_t *o, const char *const *headers)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text) {
		static const char oom[] =
			"{\"status\": 500, \"error\": \"internal\", \"message\": \"out of memory\"}";
		http_respond(c->r, 500, "application/json", oom, sizeof(oom) - 1, NULL);
		return;
	}
	size_t len = strlen(text);
	text[len] = '\n'; /* overwrites the NUL: the length is explicit */
	http_respond_owned(c->r, status, "application/json", text, len + 1, headers);
}

void api_json(struct api_call *c, unsigned status, json_t *o)
{
	api_json_headers(c, status, o, NULL);
}

void api_text_replace(char *buf, size_t size, const char *from, const char *to)
{
	size_t o = 0, flen = strlen(from);
	const char *s = buf, *at;
	char *out;
	if (!flen || !strstr(buf, from) || !(out = malloc(size)))
		return;
	while (o < size - 1 && (at = strstr(s, from))) {
		o += (size_t)snprintf(out + o, size - o, "%.*s%s", (int)(at - s), s, to);
		s = at + flen;
	}
	if (o < size - 1)
		snprintf(out + o, size - o, "%s", s);
	memcpy(buf, out, size);
	free(out);
}

void api_error(struct api_call *c, unsigned status, const char *code, const char *fmt, ...)
{
	char raw[1024], msg[4 * sizeof(raw)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* Error texts from the store name its folders; a remote client has no
	 * business knowing them (the unix socket's local user may). */
	if (c->api && c->api->vault && !http_req_local(c->r))
		api_text_replace(raw, sizeof(raw), store_root(vault_store(c->api->vault)),
				 "the store");
	/* Names and paths in it may be any bytes, and the cut may split a
	 * character: json_pack takes only UTF-8. */
	text_escape(raw, 0, msg, sizeof(msg));
	static const char *const auth_hdr[] = { "WWW-Authenticate", "Bearer", NULL };
	json_t *o = c->cloudshark ?
			    json_pack("{sis[s]}", "status", (int)status, "exceptions", msg) :
			    json_pack("{sissss}", "status", (int)status, "error", code, "message", msg);
	api_json_headers(c, status, o, status == 401 && !c->cloudshark ? auth_hdr : NULL);
}

void api_error_errno(struct api_call *c, int err, const char *what, const char *detail)
{
	const char *msg = detail && *detail ? detail : strerror(-err);
	switch (err) {
	case -ENOENT: api_error(c, 404, "not_found", "%s: %s", what, msg); break;
	case -EINVAL: api_error(c, 400, "bad_request", "%s: %s", what, msg); break;
	case -ENOSPC: api_error(c, 507, "no_space", "%s: %s", what, msg); break;
	case -EBUSY:
	case -EAGAIN: api_error(c, 503, "busy", "%s: %s", what, msg); break;
	case -EREMOTEIO: api_error(c, 503, "object_store_unavailable", "%s: %s", what, msg); break;
	/* A remote capture's object missing from the store, or not its bytes. */
	case -ENODATA: api_error(c, 502, "object_missing", "%s: %s", what, msg); break;
	case -EBADMSG: api_error(c, 502, "object_corrupt", "%s: %s", what, msg); break;
	default: api_error(c, 500, "internal", "%s: %s", what, msg); break;
	}
}

bool api_call_allows(const struct api_call *c, unsigned scope)
{
	return (c->scopes & TOKEN_SCOPE_ADMIN) || (c->scopes & scope) == scope;
}


void api_audit(const struct api_call *c, const char *action, const struct capture_record *rec,
	       ...)
{
	char id[24] = "", hex[65] = "";
	if (rec) {
		snprintf(id, sizeof(id), "%" PRIu64, rec->id);
		sha256_hex(rec->sha256, hex);
	}
	va_list ap;
	va_start(ap, rec);
	log_audit(action, c->who, c->peer, rec ? id : NULL, hex, rec ? rec->name : NULL, ap);
	va_end(ap);
}

const char *const *api_token_tags(const struct api_call *c, size_t *n)
{
	*n = c->token ? c->token->ntags : 0;
	return c->token ? (const char *const *)c->token->tags : NULL;
}

struct capture_record *api_capture_arg(struct api_call *c, const char *arg)
{
	struct capture_record *rec = NULL;
	struct errbuf eb = { { 0 } };
	int err = catalog_lookup(vault_catalog(c->api->vault), arg, &rec, &eb);
	if (err == -ENOENT && eb.msg[0])
		api_error(c, 404, "not_found", "%s", eb.msg); /* as `capvault info` says it */
	else if (err == -ENOENT)
		api_error(c, 404, "not_found", "no capture '%s'", arg);
	else if (err)
		api_error_errno(c, err, "capture", eb.msg);
	return err ? NULL : rec;
}

/* --- routing --- */

/* Splits the path into c->seg; false when it has too many segments. */
static bool split_path(struct api_call *c, const char *path)
{
	snprintf(c->segbuf, sizeof(c->segbuf), "%s", path);
	c->nseg = 0;
	for (char *save = NULL, *s = strtok_r(c->segbuf, "/", &save); s;
	     s = strtok_r(NULL, "/", &save)) {
		if (c->nseg == API_MAX_SEGS)
			return false;
		c->seg[c->nseg++] = s;
	}
	return strlen(path) < sizeof(c->segbuf);
}

static bool pattern_matches(const struct api_call *c, const char *pattern)
{
	char buf[128];
	size_t n = 0;
	snprintf(buf, sizeof(buf), "%s", pattern);
	for (char *save = NULL, *s = strtok_r(buf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (n >= c->nseg || (strcmp(s, "*") != 0 && strcmp(s, c->seg[n]) != 0))
			return false;
		n++;
	}
	return n == c->nseg;
}

static void method_not_allowed(struct api_call *c)
{
	char allow[128] = "";
	size_t used = 0;
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++)
		if (pattern_matches(c, routes[i].pattern) && used < sizeof(allow))
			used += (size_t)snprintf(allow + used, sizeof(allow) - used, "%s%s",
						 used ? ", " : "", routes[i].method);
	const char *const hdr[] = { "Allow", allow, NULL };
	static const char msg[] = "method not allowed here; see the Allow header";
	json_t *o = c->cloudshark ?
			    json_pack("{sis[s]}", "status", 405, "exceptions", msg) :
			    json_pack("{sissss}", "status", 405, "error", "method_not_allowed",
				      "message", msg);
	api_json_headers(c, 405, o, hdr);
}

static const char *bearer_token(struct http_req *r)
{
	const char *h = http_req_header(r, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return h;
}

/* A refused call is logged (info) by its route, as an audit line. */
static void denied(struct api_call *c, const struct route *rt, const char *why)
{
	char route[160];
	snprintf(route, sizeof(route), "%s %s", rt->method, rt->pattern);
	api_audit(c, "denied", NULL, "ROUTE", route, "REASON", why, (char *)NULL);
}

/* A CloudShark path's token, checked before its route is: a client with
 * a wrong token learns that (401) whatever it asked for. Replies 401 and
 * returns false for an unknown one. */
static bool cs_token_known(struct api_call *c)
{
	if (http_req_local(c->r) || c->nseg < 3 || strcmp(c->seg[0], "api") != 0 ||
	    strcmp(c->seg[1], "v1") != 0)
		return true;
	struct token_info *t = NULL;
	int err = token_verify_cached(c->api->tokens, vault_db(c->api->vault), c->seg[2], &t);
	token_info_free(t);
	if (err != -EACCES)
		return true; /* the route's own check answers other errors */
	api_error(c, 401, "bad_token", "the token is not valid (unknown or revoked)");
	api_audit(c, "denied", NULL, "ROUTE", "/api/v1/*", "REASON", "bad token", (char *)NULL);
	return false;
}

/* Fills c->token; replies 401/403 and returns false when not allowed. */
static bool authorize(struct api_call *c, const struct route *rt)
{
	if (http_req_local(c->r)) {
		c->scopes = ~0u;
		snprintf(c->who, sizeof(c->who), "unix-socket");
		return true;
	}
	if (!rt->scope)
		return true;
	const char *secret = rt->cloudshark ? c->seg[2] : bearer_token(c->r);
	struct session ss = { 0 };
	/* The viewer's session cookie stands for its token; a change made with
	 * it must echo the session's CSRF token (a cookie is sent along with a
	 * request another site makes, the header is not). */
	if (!secret && !rt->cloudshark && viewer_cookie_session(c, &ss) == 0) {
		if (strcmp(rt->method, "GET") && !viewer_csrf_ok(c, &ss)) {
			session_clear(&ss);
			api_error(c, 403, "csrf", "a change made with the session cookie needs the "
				  "session's X-CSRF-Token header");
			denied(c, rt, "missing CSRF token");
			return false;
		}
		secret = ss.secret;
	}
	if (!secret || !*secret) {
		api_error(c, 401, "missing_token", "this call needs a token: Authorization: Bearer <token>");
		denied(c, rt, "missing token");
		return false;
	}
	int err = token_verify_cached(c->api->tokens, vault_db(c->api->vault), secret, &c->token);
	session_clear(&ss);
	if (err == -EACCES) {
		api_error(c, 401, "bad_token", "the token is not valid (unknown or revoked)");
		denied(c, rt, "bad token");
		return false;
	}
	if (err) {
		api_error_errno(c, err, "checking the token", NULL);
		return false;
	}
	c->scopes = c->token->scopes;
	snprintf(c->who, sizeof(c->who), "%s", c->token->name);
	if (!token_allows(c->token, rt->scope)) {
		char need[64];
		token_scopes_format(rt->scope, need, sizeof(need));
		api_error(c, 403, "forbidden", "token '%s' lacks the '%s' scope", c->token->name, need);
		denied(c, rt, "missing scope");
		return false;
	}
	return true;
}

/* Logs the request at debug level (by its route: a CloudShark path holds
 * the token), then runs it. */
static void run(struct api_call *c, const struct route *rt)
{
	if (log_enabled(LOG_LEVEL_DEBUG)) {
		const struct log_field f[] = { { "TOKEN", c->who }, { "CLIENT", c->peer } };
		log_fields(LOG_LEVEL_DEBUG, f, ARRAY_SIZE(f), "request: %s %s%s%s", rt->method,
			   c->cloudshark ? rt->pattern : http_req_path(c->r),
			   c->cloudshark && c->nseg > 4 ? " " : "", c->cloudshark && c->nseg > 4 ? c->seg[4] : "");
	}
	rt->fn(c);
}

/* A head over the server's limits is refused before its path, token or
 * route is looked at; in the shape of the API it was meant for. */
static bool refuse_oversize(struct api_call *c)
{
	unsigned status = http_req_oversize(c->r);
	if (status == 414)
		api_error(c, 414, "uri_too_long", "the request target (path and query) is over %u KiB",
			  HTTP_MAX_URI_BYTES / 1024);
	else if (status)
		api_error(c, status, "headers_too_large", "the request headers are over %u KiB",
			  HTTP_MAX_HEADER_BYTES / 1024);
	return status != 0;
}

bool api_args_once(struct api_call *c, const char *const *names)
{
	for (; *names; names++) {
		if (http_req_arg_count(c->r, *names) > 1) {
			api_error(c, 400, "bad_parameter",
				  "%s is given more than once; give it once (a list of captures "
				  "or tags is comma-separated)", *names);
			return false;
		}
	}
	return true;
}

/* A %00 in a query argument would cut it short: "filter=tcp%00udp" run
 * as "tcp", "name=a%00b" stored as "a". Refused, in the API's shape. */
static bool refuse_nul_arg(struct api_call *c)
{
	const char *name = http_req_nul_arg(c->r);
	if (name)
		api_error(c, 400, "bad_parameter",
			  "query argument '%s' holds a NUL byte (%%00), which no parameter may hold",
			  name);
	return name != NULL;
}

static void dispatch(void *app, struct http_req *r)
{
	struct api_server *api = app;
	struct api_call c = { .api = api, .r = r, .who = "-" };
	const char *path = http_req_path(r);
	http_req_peer(r, c.peer, sizeof(c.peer));
	c.cloudshark = strncmp(path, "/api/", 5) == 0;
	if (refuse_oversize(&c) || refuse_nul_arg(&c))
		return;
	if (!split_path(&c, path)) {
		api_error(&c, 404, "not_found", "no such resource");
		return;
	}
	if (viewer_owns(path))
		return viewer_dispatch(&c);
	if (c.cloudshark)
		api_cs_normalize((char **)c.seg, c.nseg);
	const struct route *rt = NULL;
	bool path_known = false;
	int known = -1; /* the first route whose pattern matches the path */
	for (size_t i = 0; i < ARRAY_SIZE(routes) && !rt; i++) {
		if (!pattern_matches(&c, routes[i].pattern))
			continue;
		if (!path_known)
			known = (int)i;
		path_known = true;
		if (!strcmp(routes[i].method, http_req_method(r)))
			rt = &routes[i];
	}
	if (rt)
		http_req_set_route(r, (int)(rt - routes));
	else if (path_known)
		http_req_set_route(r, known);
	if (!rt && c.cloudshark && !cs_token_known(&c))
		; /* replied 401 */
	else if (!rt && path_known)
		method_not_allowed(&c);
	else if (!rt && c.cloudshark) /* the path holds a token: never echoed */
		api_error(&c, 404, "not_found", "no such resource: CloudShark calls are "
			  "/api/v1/<token>/upload, info/ID, search, download/ID, delete/ID, "
			  "annotations/ID and merge");
	else if (!rt)
		api_error(&c, 404, "not_found", "no such resource: %s", path);
	else if (authorize(&c, rt))
		run(&c, rt);
	token_info_free(c.token);
}

/* --- sockets --- */

/* The path may hold a socket left by a daemon that died: that one is
 * replaced. A socket someone still answers on (another capvaultd given
 * the same path) or anything that is not a socket is refused. */
static int claim_unix_path(const struct sockaddr_un *sa, struct errbuf *eb)
{
	const char *path = sa->sun_path;
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : errbuf_set(eb, -errno, "%s: %s", path, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return errbuf_set(eb, -EEXIST, "%s: exists and is not a socket; not replacing it",
				  path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errbuf_set(eb, -errno, "unix socket: %s", strerror(errno));
	/* EAGAIN: its backlog is full, which is live too. */
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN)
		return errbuf_set(eb, -EADDRINUSE,
				  "%s: another process (capvaultd?) is serving on this socket; "
				  "not taking it over",
				  path);
	if (errno != ECONNREFUSED && errno != ENOENT)
		return errbuf_set(eb, -errno, "%s: %s", path, strerror(errno));
	if (unlink(path) < 0 && errno != ENOENT)
		return errbuf_set(eb, -errno, "%s: cannot remove the stale socket: %s", path,
				  strerror(errno));
	return 0;
}

static int listen_unix(struct api_server *s, const char *path, int *fd_out, struct errbuf *eb)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	if (strlen(path) >= sizeof(sa.sun_path))
		return errbuf_set(eb, -ENAMETOOLONG, "%s: socket path too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int err = claim_unix_path(&sa, eb);
	if (err)
		return err;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errbuf_set(eb, -errno, "unix socket: %s", strerror(errno));
	mode_t old = umask(0117); /* born 0660: never briefly world-writable */
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || chmod(path, 0660) < 0 || listen(fd, LISTEN_BACKLOG) < 0 ||
	    lstat(path, &st) < 0)
		return errbuf_set(eb, -errno, "%s: %s", path, strerror(errno));
	s->unix_id = st;
	*fd_out = TAKE_FD(fd);
	return 0;
}

static int listen_addr(const struct addrinfo *ai, int *fd_out)
{
	int one = 1;
	_cleanup_close_ int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
					ai->ai_protocol);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
		return -errno;
	*fd_out = TAKE_FD(fd);
	return 0;
}

static bool is_loopback(const struct addrinfo *ai)
{
	if (ai->ai_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) == 127;
	if (ai->ai_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr);
	return false;
}

/* The unix socket's clients are trusted, and what they upload may come
 * from a slow local source (a tape seeking): no per-address or body-rate
 * limit there. */
static struct http_limits limits_of(const struct config_api *ca, bool local)
{
	return (struct http_limits){
		.max_per_client = local ? 0 : ca->max_connections_per_ip,
		.timeout_s = (unsigned)(ca->timeout_ns / 1000000000u),
		.header_timeout_ms = ca->header_timeout_ns / 1000000u,
		.body_timeout_ms = local ? 0 : ca->body_timeout_ns / 1000000u,
		.body_min_rate = ca->body_min_rate,
	};
}

static int add_server(struct api_server *s, int fd, bool local, struct errbuf *eb)
{
	const struct config_api *ca = &s->cfg->api;
	struct http_listen_cfg lc = {
		.fd = fd,
		.local = local,
		.tls_cert = local ? NULL : s->tls_cert,
		.tls_key = local ? NULL : s->tls_key,
		.max_connections = ca->max_connections,
		.limits = limits_of(ca, local),
		.responded = api_count_response,
	};
	struct http_server **grown = realloc(s->servers, (s->nservers + 1) * sizeof(*grown));
	if (!grown) {
		close(fd);
		return errbuf_set(eb, -ENOMEM, "out of memory");
	}
	s->servers = grown;
	int err = http_server_new(&s->servers[s->nservers], &lc, dispatch, s, eb);
	if (!err)
		s->nservers++;
	return err;
}

static int listen_tcp(struct api_server *s, const struct config_listen *l, struct errbuf *eb)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%u", l->port);
	int gai = getaddrinfo(l->host, port, &hints, &res);
	if (gai)
		return errbuf_set(eb, -EADDRNOTAVAIL, "api.listen %s: %s", l->host, gai_strerror(gai));
	int err = 0;
	for (struct addrinfo *ai = res; ai && !err; ai = ai->ai_next) {
		int fd = -1;
		if ((err = listen_addr(ai, &fd)) < 0) {
			errbuf_set(eb, err, "api.listen %s port %u: %s", l->host, l->port,
				   strerror(-err));
			break;
		}
		if (!is_loopback(ai) && !s->tls_cert)
			log_warnx("api: plain HTTP on non-loopback %s port %u: tokens travel in clear text",
				  l->host, l->port);
		err = add_server(s, fd, false, eb);
	}
	freeaddrinfo(res);
	return err;
}

/* A certificate chain or key is a few KiB; the bound keeps a wrong path
 * (/dev/zero, a capture) from being read into memory whole. */
#define PEM_MAX (1u << 20)

/* Reads a small PEM file whole. */
static int read_pem(const char *path, char **out, struct errbuf *eb)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, total = 0;
	if (!f)
		return errbuf_set(eb, -errno, "%s: %s", path, strerror(errno));
	FILE *mem = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while (mem && total <= PEM_MAX && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		fwrite(chunk, 1, n, mem);
		total += n;
	}
	if (!mem || fclose(mem) != 0) {
		free(buf);
		return errbuf_set(eb, -ENOMEM, "%s: out of memory", path);
	}
	if (total > PEM_MAX) {
		free(buf);
		return errbuf_set(eb, -EFBIG, "%s: over %u bytes: not a PEM file", path, PEM_MAX);
	}
	*out = buf;
	return 0;
}

static int start_all(struct api_server *s, struct errbuf *eb)
{
	const struct config_api *ca = &s->cfg->api;
	int err = 0;
	if (ca->tls_cert) {
		if (!http_tls_supported())
			return errbuf_set(eb, -ENOTSUP, "api.tls: libmicrohttpd was built without TLS");
		if ((err = read_pem(ca->tls_cert, &s->tls_cert, eb)) ||
		    (err = read_pem(ca->tls_key, &s->tls_key, eb)))
			return err;
	}
	for (size_t i = 0; i < ca->n_listen && !err; i++)
		err = listen_tcp(s, &ca->listen[i], eb);
	if (!err && ca->unix_socket && *ca->unix_socket) {
		int fd = -1;
		if (!(err = listen_unix(s, ca->unix_socket, &fd, eb))) {
			s->unix_path = strdup(ca->unix_socket);
			err = s->unix_path ? add_server(s, fd, true, eb) : -ENOMEM;
		}
	}
	return err;
}

int api_server_start(struct api_server **out, const struct config *cfg, struct vault *v,
		     const struct api_hooks *hooks, struct errbuf *eb)
{
	struct api_server *s = calloc(1, sizeof(*s));
	if (!s)
		return errbuf_set(eb, -ENOMEM, "out of memory");
	s->cfg = cfg;
	s->start_cfg = cfg;
	pthread_mutex_init(&s->reload_lock, NULL);
	pthread_mutex_init(&s->decoder_lock, NULL);
	s->vault = v;
	s->started_ns = wall_ns();
	s->started_mono_ns = mono_ns();
	if (hooks)
		s->hooks = *hooks;
	int err = token_cache_new(&s->tokens);
	if (err) {
		free(s);
		return errbuf_set(eb, err, "cannot set up the token cache: %s", strerror(-err));
	}
	if ((err = session_store_new(&s->sessions)) < 0) {
		api_server_stop(s);
		return errbuf_set(eb, err, "cannot set up the session store: %s", strerror(-err));
	}
	err = start_all(s, eb);
	if (err) {
		api_server_stop(s);
		return err;
	}
	*out = s;
	return 0;
}

struct api_server *api_server_stop(struct api_server *s)
{
	if (!s)
		return NULL;
	atomic_store(&s->stopping, true);
	for (size_t i = 0; i < s->nservers; i++)
		http_server_free(s->servers[i]);
	/* Only the socket we made, not one that replaced it meanwhile (whose
	 * inode number may be ours again: the change time tells them apart). */
	struct stat st;
	if (s->unix_path && lstat(s->unix_path, &st) == 0 && st.st_dev == s->unix_id.st_dev &&
	    st.st_ino == s->unix_id.st_ino && st.st_ctim.tv_sec == s->unix_id.st_ctim.tv_sec &&
	    st.st_ctim.tv_nsec == s->unix_id.st_ctim.tv_nsec)
		unlink(s->unix_path);
	free(s->servers);
	free(s->unix_path);
	free(s->tls_cert);
	free(s->tls_key);
	json_decref(s->restart_needed);
	pthread_mutex_destroy(&s->reload_lock);
	api_decoder_free(s->decoder);
	pthread_mutex_destroy(&s->decoder_lock);
	token_cache_free(s->tokens);
	session_store_free(s->sessions);
	free(s);
	return NULL;
}

/* --- reload --- */

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

static bool listen_differs(const struct config_api *a, const struct config_api *b)
{
	if (a->n_listen != b->n_listen)
		return true;
	for (size_t i = 0; i < a->n_listen; i++)
		if (a->listen[i].port != b->listen[i].port ||
		    strcmp(a->listen[i].host, b->listen[i].host))
			return true;
	return false;
}

/* Adds to names[] the api settings that differ from those the listeners
 * were set up with: only a restart applies them. */
static size_t api_restart_names(const struct config_api *was, const struct config_api *now,
				const char **names, size_t n, size_t max)
{
	if (n < max && listen_differs(was, now))
		names[n++] = "api.listen";
	if (n < max && str_differs(was->unix_socket, now->unix_socket))
		names[n++] = "api.unix_socket";
	if (n < max && !was->tls_cert != !now->tls_cert)
		names[n++] = "api.tls";
	if (n < max && was->max_connections != now->max_connections)
		names[n++] = "api.max_connections";
	return n;
}

/* The decoder is made once, from the configuration at start. */
static bool decoder_differs(const struct config_decoder *a, const struct config_decoder *b)
{
	return strcmp(a->path, b->path) || a->timeout_ns != b->timeout_ns ||
	       a->memory != b->memory || a->max_output != b->max_output ||
	       a->max_running != b->max_running || a->warm != b->warm;
}

/* A new certificate and key for every TLS listener; all or none. */
static int reload_tls(struct api_server *s, const struct config_api *ca, struct errbuf *eb)
{
	char *cert = NULL, *key = NULL;
	int err = read_pem(ca->tls_cert, &cert, eb);
	if (!err)
		err = read_pem(ca->tls_key, &key, eb);
	for (size_t i = 0; i < s->nservers && !err; i++)
		if ((err = http_server_set_tls(s->servers[i], cert, key, eb)) == -ENOTSUP)
			err = 0; /* the unix socket */
	free(cert);
	free(key);
	return err;
}

int api_server_reload(struct api_server *s, const struct config *cfg, const char **restart,
		      size_t *n, size_t max, struct errbuf *eb)
{
	const struct config_api *ca = &cfg->api;
	int err = 0;
	*n = api_restart_names(&s->start_cfg->api, ca, restart, *n, max);
	if (*n < max && decoder_differs(&s->start_cfg->decoder, &cfg->decoder))
		restart[(*n)++] = "decoder";
	json_t *names = json_array();
	for (size_t i = 0; names && i < *n; i++)
		json_array_append_new(names, json_string(restart[i]));
	pthread_mutex_lock(&s->reload_lock);
	json_decref(s->restart_needed);
	s->restart_needed = names;
	pthread_mutex_unlock(&s->reload_lock);
	for (size_t i = 0; i < s->nservers; i++) {
		struct http_limits l = limits_of(ca, i + 1 == s->nservers && s->unix_path);
		http_server_set_limits(s->servers[i], &l);
	}
	if (ca->tls_cert && s->start_cfg->api.tls_cert)
		err = reload_tls(s, ca, eb);
	atomic_store(&s->cfg, cfg);
	return err;
}

json_t *api_restart_needed(struct api_server *s)
{
	pthread_mutex_lock(&s->reload_lock);
	json_t *names = s->restart_needed ? json_deep_copy(s->restart_needed) : json_array();
	pthread_mutex_unlock(&s->reload_lock);
	return names;
}
