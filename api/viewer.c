/*
 * viewer.c - the web viewer: its pages, its assets (built into the
 * binary, viewer_assets.c) and its login.
 *
 * A page is the shell (viewer/shell.html) around the page's own markup
 * and module script; the script fills it from the /v1 API, which takes
 * the session cookie in place of a bearer token (api.c's authorize).
 * Nothing about a capture is in a page itself, and no page is served
 * without a login: a request without a live session is sent to /login.
 *
 * Login takes an API token, by a link (/?token=..., any page) or by the
 * form, and opens a server-side session (session.h). The token then never
 * appears in a URL again (the link answers with a redirect to the same
 * page without it) nor in a log (requests are logged by path, without the
 * query). Every change made with the cookie carries the session's CSRF
 * token: the /v1 API wants it in X-CSRF-Token, /logout in its form. Every
 * reply carries a Content-Security-Policy that allows only the server's
 * own scripts and styles, none inline.
 */
#include "viewer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_priv.h"
#include "cleanup.h"
#include "log.h"
#include "tokens.h"
#include "vault.h"

#define COOKIE_NAME "capvault_session"
#define NEXT_MAX 512

static const char csp[] = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
			  "form-action 'self'";

/* Who is looking: a live session's token, or the unix socket. */
struct viewer_user {
	char name[TOKEN_NAME_MAX + 1];
	unsigned scopes;
	char csrf[SESSION_ID_LEN + 1];
};

struct page {
	const char *pattern; /* as api.c's routes: '*' is one segment */
	const char *body;    /* asset with the page's markup */
	const char *script;  /* its module, under /assets/ */
	const char *title;
	const char *nav;     /* the navigation entry it belongs to */
	unsigned scope;
};

static const struct page pages[] = {
	{ "/", "pages/list.html", "list.js", "Captures", "/", TOKEN_SCOPE_READ },
	{ "/captures", "pages/list.html", "list.js", "Captures", "/", TOKEN_SCOPE_READ },
	{ "/captures/*", "pages/capture.html", "capture.js", "Capture", "/", TOKEN_SCOPE_READ },
	{ "/packets", "pages/packets.html", "packets.js", "Packets", "/packets", TOKEN_SCOPE_READ },
	{ "/upload", "pages/upload.html", "upload.js", "Upload", "/upload", TOKEN_SCOPE_UPLOAD },
	{ "/imports", "pages/imports.html", "imports.js", "Imports", "/imports", TOKEN_SCOPE_READ },
	{ "/retention", "pages/retention.html", "retention.js", "Retention", "/retention",
	  TOKEN_SCOPE_READ },
	{ "/tokens", "pages/tokens.html", "tokens.js", "Tokens", "/tokens", TOKEN_SCOPE_ADMIN },
};

static const struct {
	const char *href, *label;
	unsigned scope;
} nav_items[] = {
	{ "/", "Captures", TOKEN_SCOPE_READ },
	{ "/packets", "Packets", TOKEN_SCOPE_READ },
	{ "/upload", "Upload", TOKEN_SCOPE_UPLOAD },
	{ "/imports", "Imports", TOKEN_SCOPE_READ },
	{ "/retention", "Retention", TOKEN_SCOPE_READ },
	{ "/tokens", "Tokens", TOKEN_SCOPE_ADMIN },
};

bool viewer_owns(const char *path)
{
	if (!strcmp(path, "/v1/session"))
		return true;
	return strncmp(path, "/v1/", 4) != 0 && strcmp(path, "/v1") != 0 &&
	       strncmp(path, "/api/", 5) != 0 && strcmp(path, "/metrics") != 0;
}

static const struct viewer_asset *asset(const char *name)
{
	for (unsigned long i = 0; i < viewer_nassets; i++)
		if (!strcmp(viewer_assets[i].name, name))
			return &viewer_assets[i];
	return NULL;
}

/* --- replies --- */

#define MAX_EXTRA 8

/* Replies with the security headers every viewer reply has, then extra
 * (name/value pairs, NULL-terminated, at most MAX_EXTRA pairs). body is
 * malloc'd when owned. */
static void reply(struct api_call *c, unsigned status, const char *ctype, const void *body,
		  size_t len, bool owned, const char *const *extra)
{
	const char *h[2 * (4 + MAX_EXTRA) + 1] = {
		"Content-Security-Policy", csp, "X-Content-Type-Options", "nosniff",
		"Referrer-Policy", "no-referrer", "X-Frame-Options", "DENY",
	};
	size_t n = 8;
	for (size_t i = 0; extra && extra[i] && n < ARRAY_SIZE(h) - 2; i += 2) {
		h[n++] = extra[i];
		h[n++] = extra[i + 1];
	}
	h[n] = NULL;
	if (owned)
		http_respond_owned(c->r, status, ctype, (void *)body, len, h);
	else
		http_respond(c->r, status, ctype, body, len, h);
}

static void reply_json(struct api_call *c, unsigned status, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return api_error_errno(c, -ENOMEM, "session", NULL);
	static const char *const nostore[] = { "Cache-Control", "no-store", NULL };
	reply(c, status, "application/json", text, strlen(text), true, nostore);
}

static void redirect(struct api_call *c, const char *location, const char *cookie)
{
	const char *const h[] = { "Location", location, "Cache-Control", "no-store",
				  cookie ? "Set-Cookie" : NULL, cookie, NULL };
	static const char body[] = "redirecting\n";
	reply(c, 303, "text/plain; charset=utf-8", body, sizeof(body) - 1, false, h);
}

/* --- templates --- */

/* Writes tmpl to f with each {{key}} replaced by its value in vars
 * (key/value pairs, NULL-terminated); an unknown key becomes "". */
static void expand(FILE *f, const char *tmpl, size_t len, const char *const *vars)
{
	const char *p = tmpl, *end = tmpl + len;
	while (p < end) {
		const char *open = memmem(p, (size_t)(end - p), "{{", 2);
		const char *close = open ? memmem(open, (size_t)(end - open), "}}", 2) : NULL;
		if (!close) {
			fwrite(p, 1, (size_t)(end - p), f);
			return;
		}
		fwrite(p, 1, (size_t)(open - p), f);
		size_t klen = (size_t)(close - open - 2);
		for (size_t i = 0; vars[i]; i += 2)
			if (strlen(vars[i]) == klen && !memcmp(vars[i], open + 2, klen))
				fputs(vars[i + 1], f);
		p = close + 2;
	}
}

/* The navigation and the logout button, for a logged-in user. */
static void write_nav(FILE *f, const struct viewer_user *u, const char *current)
{
	fputs("<nav aria-label=\"Main\"><ul>", f);
	for (size_t i = 0; i < ARRAY_SIZE(nav_items); i++) {
		unsigned need = nav_items[i].scope;
		if (!(u->scopes & TOKEN_SCOPE_ADMIN) && (u->scopes & need) != need)
			continue;
		fprintf(f, "<li><a href=\"%s\"%s>%s</a></li>", nav_items[i].href,
			current && !strcmp(current, nav_items[i].href) ? " aria-current=\"page\"" : "",
			nav_items[i].label);
	}
	fprintf(f, "</ul></nav><form class=\"logout\" method=\"post\" action=\"/logout\">"
		   "<span class=\"who\">Signed in as <strong>%s</strong></span>"
		   "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
		   "<button type=\"submit\">Log out</button></form>",
		u->name, u->csrf);
}

struct render {
	const char *title;
	const char *body;    /* asset name */
	const char *script;  /* or NULL */
	const char *nav;     /* current navigation entry */
	const char *message; /* HTML-safe text for {{message}}, or "" */
	const char *next;    /* HTML-safe, for the login form */
};

/* Replies with a page: the shell around rd->body. u NULL: logged out. */
static void render(struct api_call *c, unsigned status, const struct render *rd,
		   const struct viewer_user *u, const char *cookie)
{
	const struct viewer_asset *shell = asset("shell.html"), *body = asset(rd->body);
	char *main = NULL, *nav = NULL, *out = NULL, script[128] = "";
	size_t mlen = 0, nlen = 0, olen = 0;
	FILE *f;
	if (!shell || !body)
		return api_error(c, 500, "internal", "viewer asset missing");
	const char *const vars[] = { "message", rd->message ? rd->message : "", "next",
				     rd->next ? rd->next : "/", NULL };
	if ((f = open_memstream(&main, &mlen))) {
		expand(f, (const char *)body->data, body->size, vars);
		fclose(f);
	}
	if ((f = open_memstream(&nav, &nlen))) {
		if (u)
			write_nav(f, u, rd->nav);
		fclose(f);
	}
	if (rd->script)
		snprintf(script, sizeof(script),
			 "<script type=\"module\" src=\"/assets/%s\"></script>", rd->script);
	const char *const svars[] = { "title", rd->title, "csrf", u ? u->csrf : "", "nav",
				      nav ? nav : "", "main", main ? main : "", "script", script,
				      NULL };
	if (main && nav && (f = open_memstream(&out, &olen))) {
		expand(f, (const char *)shell->data, shell->size, svars);
		fclose(f);
	}
	free(main);
	free(nav);
	if (!out)
		return api_error_errno(c, -ENOMEM, "page", NULL);
	const char *const h[] = { "Cache-Control", "no-store", cookie ? "Set-Cookie" : NULL, cookie,
				  NULL };
	reply(c, status, "text/html; charset=utf-8", out, olen, true, h);
}

static void error_page(struct api_call *c, unsigned status, const char *title,
		       const char *message, const struct viewer_user *u)
{
	const struct render rd = { .title = title, .body = "pages/error.html", .message = message };
	render(c, status, &rd, u, NULL);
}

/* --- sessions --- */

bool viewer_csrf_ok(struct api_call *c, const struct session *ss)
{
	const char *h = http_req_header(c->r, "X-CSRF-Token");
	return h && ss->csrf[0] && session_token_equal(h, ss->csrf);
}

/* Copies the session cookie's value; false when there is none. */
static bool cookie_id(struct api_call *c, char id[SESSION_ID_LEN + 1])
{
	const char *h = http_req_header(c->r, "Cookie");
	static const char key[] = COOKIE_NAME "=";
	for (const char *p = h; p && *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		size_t n = strcspn(p, ";");
		if (n > sizeof(key) - 1 && !strncmp(p, key, sizeof(key) - 1) &&
		    n - (sizeof(key) - 1) == SESSION_ID_LEN) {
			memcpy(id, p + sizeof(key) - 1, SESSION_ID_LEN);
			id[SESSION_ID_LEN] = '\0';
			return true;
		}
		p += n;
	}
	return false;
}

int viewer_cookie_session(struct api_call *c, struct session *out)
{
	char id[SESSION_ID_LEN + 1];
	if (!cookie_id(c, id))
		return -ENOENT;
	return session_get(c->api->sessions, id, out);
}

/* Who the request's session is; false (and the session, when its token
 * is gone, closed) when nobody is logged in. */
static bool current_user(struct api_call *c, struct viewer_user *u, struct session *ss)
{
	*u = (struct viewer_user){ .scopes = 0 };
	if (http_req_local(c->r)) {
		snprintf(u->name, sizeof(u->name), "unix-socket");
		u->scopes = ~0u;
		return true;
	}
	char id[SESSION_ID_LEN + 1];
	if (!cookie_id(c, id) || session_get(c->api->sessions, id, ss) < 0)
		return false;
	struct token_info *t = NULL;
	int err = token_verify_cached(c->api->tokens, vault_db(c->api->vault), ss->secret, &t);
	if (err) {
		if (err == -EACCES)
			session_close(c->api->sessions, id); /* revoked */
		session_clear(ss);
		return false;
	}
	snprintf(u->name, sizeof(u->name), "%s", t->name);
	snprintf(u->csrf, sizeof(u->csrf), "%s", ss->csrf);
	u->scopes = t->scopes;
	snprintf(c->who, sizeof(c->who), "%s", t->name);
	token_info_free(t);
	return true;
}

static bool user_allows(const struct viewer_user *u, unsigned need)
{
	return (u->scopes & TOKEN_SCOPE_ADMIN) || (u->scopes & need) == need;
}

/* The Set-Cookie value for session id (NULL: one that ends it). */
static void cookie_text(struct api_call *c, const char *id, char *buf, size_t size)
{
	snprintf(buf, size, COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%u%s",
		 id ? id : "", id ? SESSION_TTL_S : 0u, c->api->tls_cert ? "; Secure" : "");
}

/* Checks secret and opens a session for it. Returns 0 with the cookie in
 * buf, -EACCES for a bad token, or another negative errno. */
static int login(struct api_call *c, const char *secret, char *cookie, size_t size)
{
	struct token_info *t = NULL;
	int err = token_verify_cached(c->api->tokens, vault_db(c->api->vault), secret, &t);
	if (err)
		return err;
	snprintf(c->who, sizeof(c->who), "%s", t->name);
	token_info_free(t);
	char id[SESSION_ID_LEN + 1];
	struct session ss;
	if ((err = session_open(c->api->sessions, secret, SESSION_TTL_S, id, &ss)) < 0)
		return err;
	session_clear(&ss);
	cookie_text(c, id, cookie, size);
	api_audit(c, "login", NULL, (char *)NULL);
	return 0;
}

/* A path a login may go on to: ours, and no more than a plain path with
 * a query in a small character set (it goes into a page and a header). */
static const char *safe_next(const char *next)
{
	if (!next || next[0] != '/' || next[1] == '/' || strlen(next) >= NEXT_MAX)
		return "/";
	for (const char *p = next; *p; p++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_.-?=&%:,",
			    *p))
			return "/";
	return next;
}

static void login_form(struct api_call *c, unsigned status, const char *message,
		       const char *next)
{
	/* safe_next's characters need no escaping in an attribute but '&'. */
	char esc[NEXT_MAX * 5];
	size_t o = 0;
	for (const char *p = safe_next(next); *p && o + 6 < sizeof(esc); p++)
		o += (size_t)snprintf(esc + o, sizeof(esc) - o, "%s", *p == '&' ? "&amp;" : (char[]){ *p, 0 });
	esc[o] = '\0';
	const struct render rd = { .title = "Log in", .body = "pages/login.html",
				   .script = "login.js", .message = message, .next = esc };
	render(c, status, &rd, NULL, NULL);
}

static bool url_plain(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       strchr("-._~", ch);
}

struct query_rebuild {
	FILE *f;
	bool first;
};

/* Appends an argument but the token to the query being rebuilt. */
static void keep_arg(void *opaque, const char *key, const char *value)
{
	struct query_rebuild *q = opaque;
	if (!strcmp(key, "token"))
		return;
	fputc(q->first ? '?' : '&', q->f);
	q->first = false;
	for (const char *s = key; *s; s++)
		url_plain((unsigned char)*s) ? fputc(*s, q->f) : fprintf(q->f, "%%%02X", (unsigned char)*s);
	if (!value)
		return;
	fputc('=', q->f);
	for (const char *s = value; *s; s++)
		url_plain((unsigned char)*s) ? fputc(*s, q->f) : fprintf(q->f, "%%%02X", (unsigned char)*s);
}

/* /PAGE?token=T: logs in and sends the browser to the same page and query
 * without the token, so it leaves the address bar and the history. */
static void login_by_link(struct api_call *c, const char *secret)
{
	char cookie[256];
	int err = login(c, secret, cookie, sizeof(cookie));
	if (err == -EACCES) {
		api_audit(c, "denied", NULL, "ROUTE", "viewer login link", "REASON", "bad token",
			  (char *)NULL);
		return login_form(c, 401, "The token in that link is not valid (unknown or revoked). "
				  "Ask for a new link, or paste a token below.", "/");
	}
	if (err)
		return error_page(c, 500, "Error", "The login failed on the server; see its log.", NULL);
	char *loc = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&loc, &len);
	if (!f)
		return api_error_errno(c, -ENOMEM, "login", NULL);
	fputs(http_req_path(c->r), f);
	struct query_rebuild q = { .f = f, .first = true };
	http_req_args_foreach(c->r, keep_arg, &q);
	fclose(f);
	redirect(c, loc ? loc : "/", cookie);
	free(loc);
}

/* --- forms (/login, /logout) --- */

struct form {
	struct api_call call; /* a copy: seg and token are not valid */
	char token[TOKEN_SECRET_MAX];
	char next[NEXT_MAX];
	char csrf[SESSION_ID_LEN + 1];
	bool too_long;
	void (*done)(struct form *fm);
};

static int form_field(void *ctx, const char *key, const char *filename, const char *data,
		      uint64_t off, size_t len)
{
	struct form *fm = ctx;
	(void)filename;
	char *dst = !strcmp(key, "token") ? fm->token : !strcmp(key, "next") ? fm->next :
		    !strcmp(key, "csrf")  ? fm->csrf : NULL;
	size_t size = dst == fm->token ? sizeof(fm->token) :
		      dst == fm->next  ? sizeof(fm->next) : sizeof(fm->csrf);
	if (!dst)
		return 0;
	if (off + len >= size) {
		fm->too_long = true;
		return 1;
	}
	memcpy(dst + off, data, len);
	dst[off + len] = '\0';
	return 0;
}

static void form_end(void *ctx, struct http_req *r, bool well_formed)
{
	struct form *fm = ctx;
	fm->call.r = r;
	if (!well_formed || fm->too_long)
		return error_page(&fm->call, 400, "Bad request", "The form did not arrive whole.",
				  NULL);
	fm->done(fm);
}

static void form_free(void *ctx)
{
	struct form *fm = ctx;
	explicit_bzero(fm, sizeof(*fm));
	free(fm);
}

static const struct http_form_ops form_ops = { .field = form_field, .end = form_end,
					       .free = form_free };

static void read_form(struct api_call *c, void (*done)(struct form *fm))
{
	struct form *fm = calloc(1, sizeof(*fm));
	if (!fm)
		return api_error_errno(c, -ENOMEM, "form", NULL);
	fm->call = *c;
	fm->call.token = NULL;
	fm->call.nseg = 0;
	fm->done = done;
	if (http_req_read_form(c->r, &form_ops, fm) < 0) {
		form_free(fm);
		error_page(c, 415, "Bad request", "Send the form as a form.", NULL);
	}
}

static void login_posted(struct form *fm)
{
	struct api_call *c = &fm->call;
	char cookie[256];
	const char *next = safe_next(fm->next[0] ? fm->next : "/");
	int err = fm->token[0] ? login(c, fm->token, cookie, sizeof(cookie)) : -EACCES;
	if (err == -EACCES) {
		api_audit(c, "denied", NULL, "ROUTE", "POST /login", "REASON", "bad token",
			  (char *)NULL);
		return login_form(c, 401, "That token is not valid (unknown or revoked).", next);
	}
	if (err)
		return error_page(c, 500, "Error", "The login failed on the server; see its log.", NULL);
	redirect(c, next, cookie);
}

static void logout_posted(struct form *fm)
{
	struct api_call *c = &fm->call;
	char id[SESSION_ID_LEN + 1], cookie[256];
	struct session ss;
	if (!cookie_id(c, id) || session_get(c->api->sessions, id, &ss) < 0)
		return redirect(c, "/login", NULL);
	bool ok = session_token_equal(fm->csrf, ss.csrf) || viewer_csrf_ok(c, &ss);
	session_clear(&ss);
	if (!ok)
		return error_page(c, 403, "Forbidden",
				  "The logout did not carry this session's CSRF token.", NULL);
	session_close(c->api->sessions, id);
	api_audit(c, "logout", NULL, (char *)NULL);
	cookie_text(c, NULL, cookie, sizeof(cookie));
	redirect(c, "/login", cookie);
}

/* A login form posted from another site is refused (login CSRF): the
 * browser says where the request came from in Sec-Fetch-Site, or else in
 * Origin ("null" under our no-referrer policy, which tells nothing). */
static bool same_origin(struct api_call *c)
{
	const char *site = http_req_header(c->r, "Sec-Fetch-Site");
	if (site)
		return !strcmp(site, "same-origin") || !strcmp(site, "none");
	const char *origin = http_req_header(c->r, "Origin"), *host = http_req_header(c->r, "Host");
	if (!origin || !strcmp(origin, "null"))
		return true;
	const char *p = strstr(origin, "://");
	return host && p && !strcmp(p + 3, host);
}

/* --- GET /v1/session --- */

static void session_info(struct api_call *c)
{
	struct viewer_user u;
	struct session ss = { 0 };
	bool in = current_user(c, &u, &ss);
	uint64_t expires = ss.expires_s;
	session_clear(&ss);
	if (!in) {
		json_t *o = json_pack("{sissss}", "status", 401, "error", "no_session", "message",
				      "not logged in");
		return reply_json(c, 401, o);
	}
	char scopes[64];
	token_scopes_format(u.scopes & TOKEN_SCOPE_ADMIN ? TOKEN_SCOPE_ADMIN | TOKEN_SCOPE_READ |
			    TOKEN_SCOPE_UPLOAD | TOKEN_SCOPE_DELETE : u.scopes, scopes, sizeof(scopes));
	json_t *o = json_pack("{sssssssI}", "token", u.name, "scopes", scopes, "csrf", u.csrf,
			      "expires_unix", (json_int_t)expires);
	reply_json(c, 200, o);
}

/* --- assets --- */

static void serve_asset(struct api_call *c, const char *name)
{
	const struct viewer_asset *a = asset(name);
	/* The templates are served only as pages. */
	if (!a || !strncmp(name, "pages/", 6) || !strcmp(name, "shell.html"))
		return error_page(c, 404, "Not found", "There is no such file.", NULL);
	const char *inm = http_req_header(c->r, "If-None-Match");
	const char *const h[] = { "ETag", a->etag, "Cache-Control", "no-cache", NULL };
	if (inm && !strcmp(inm, a->etag))
		return reply(c, 304, NULL, "", 0, false, h);
	reply(c, 200, a->type, a->data, a->size, false, h);
}

/* --- routing --- */

static bool seg_match(const struct api_call *c, const char *pattern)
{
	char buf[64];
	size_t n = 0;
	snprintf(buf, sizeof(buf), "%s", pattern);
	for (char *save = NULL, *s = strtok_r(buf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (n >= c->nseg || (strcmp(s, "*") && strcmp(s, c->seg[n])))
			return false;
		n++;
	}
	return n == c->nseg;
}

static void serve_page(struct api_call *c, const struct page *pg)
{
	const char *secret = http_req_arg(c->r, "token");
	if (secret)
		return login_by_link(c, secret);
	struct viewer_user u;
	struct session ss;
	if (!current_user(c, &u, &ss)) {
		char loc[NEXT_MAX + 16];
		snprintf(loc, sizeof(loc), "/login?next=%s", safe_next(http_req_path(c->r)));
		return redirect(c, loc, NULL);
	}
	session_clear(&ss);
	if (!user_allows(&u, pg->scope)) {
		char need[32];
		token_scopes_format(pg->scope, need, sizeof(need));
		char msg[160];
		snprintf(msg, sizeof(msg), "This page needs a token with the '%s' scope.", need);
		return error_page(c, 403, "Forbidden", msg, &u);
	}
	const struct render rd = { .title = pg->title, .body = pg->body, .script = pg->script,
				   .nav = pg->nav };
	render(c, 200, &rd, &u, NULL);
}

void viewer_dispatch(struct api_call *c)
{
	const char *method = http_req_method(c->r), *path = http_req_path(c->r);
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	if (log_enabled(LOG_LEVEL_DEBUG)) /* the path only: a query may hold a token */
		log_debug("request: %s %s (viewer) from %s", method, path, c->peer);
	if (!strcmp(path, "/v1/session") && get)
		return session_info(c);
	if (c->nseg == 2 && !strcmp(c->seg[0], "assets") && get)
		return serve_asset(c, c->seg[1]);
	if (!strcmp(path, "/login") && get) {
		const char *secret = http_req_arg(c->r, "token");
		return secret ? login_by_link(c, secret) :
				login_form(c, 200, "", http_req_arg(c->r, "next"));
	}
	if (!strcmp(path, "/login") && post) {
		if (!same_origin(c))
			return error_page(c, 403, "Forbidden", "Log in from this server's own page.",
					  NULL);
		return read_form(c, login_posted);
	}
	if (!strcmp(path, "/logout") && post)
		return read_form(c, logout_posted);
	for (size_t i = 0; i < ARRAY_SIZE(pages); i++) {
		if (!seg_match(c, pages[i].pattern))
			continue;
		if (!get) {
			static const char *const allow[] = { "Allow", "GET", NULL };
			static const char body[] = "method not allowed\n";
			return reply(c, 405, "text/plain; charset=utf-8", body, sizeof(body) - 1, false,
				     allow);
		}
		return serve_page(c, &pages[i]);
	}
	error_page(c, 404, "Not found", "There is no such page.", NULL);
}
