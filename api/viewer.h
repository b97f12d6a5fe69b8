/*
 * viewer.h - the web viewer as the API's router sees it: which paths are
 * the viewer's, serving them, and the session cookie that the /v1 API
 * takes in place of a bearer token (viewer.c). Private to api/.
 */
#ifndef CAPVAULT_VIEWER_H
#define CAPVAULT_VIEWER_H

#include <stdbool.h>

#include "session.h"

struct api_call;

/* The viewer's own data: the asset table built into the binary. */
struct viewer_asset {
	const char *name;  /* path under viewer/, e.g. "app.js" */
	const char *type;  /* Content-Type */
	const unsigned char *data;
	unsigned long size;
	const char *etag;  /* quoted */
};
extern const struct viewer_asset viewer_assets[];
extern const unsigned long viewer_nassets;

/* True for the paths the viewer serves: its pages, /login, /logout,
 * /assets/..., /v1/session; not the rest of /v1/, /api/ or /metrics. */
bool viewer_owns(const char *path);
/* Serves a viewer path (c->seg split, no token yet). */
void viewer_dispatch(struct api_call *c);
/*
 * The session named by the request's cookie. Returns 0 with *out (wipe
 * it with session_clear), -ENOENT when there is no cookie or no such live
 * session.
 */
int viewer_cookie_session(struct api_call *c, struct session *out);
/* True when the request carries the session's CSRF token in its
 * X-CSRF-Token header. */
bool viewer_csrf_ok(struct api_call *c, const struct session *ss);

#endif
