/*
 * api_admin.c - the admin calls: API tokens (POST/GET /v1/tokens, DELETE
 * /v1/tokens/{name}) and POST /v1/backup, so that `capvault token` and
 * `capvault backup` work while capvaultd holds the store.
 *
 * Promises: a token's secret appears only in the 201 of its creation,
 * never its hash; token names are unique even when two creations race (one
 * lock around check-and-write); a backup is written only when asked on
 * the unix socket (the daemon writes wherever it may, so a TCP token,
 * even an admin one, cannot point it at a path).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "config.h"
#include "fsck.h"
#include "tokens.h"
#include "vault.h"

#define SCOPES_TEXT_MAX 64
#define TOKEN_TAGS_MAX 32

/* token_add checks the name is free, then writes: two at once could both
 * pass the check. */
static pthread_mutex_t token_lock = PTHREAD_MUTEX_INITIALIZER;

/* Replies with the index's own message, unprefixed: the CLI prints it
 * after "token add: " or "backup: " as it does offline. */
static void admin_error(struct api_call *c, int err, const char *msg)
{
	if (!msg || !*msg)
		msg = strerror(-err);
	switch (err) {
	case -EEXIST: api_error(c, 409, "exists", "%s", msg); break;
	case -ENOENT: api_error(c, 404, "not_found", "%s", msg); break;
	case -EINVAL: api_error(c, 400, "bad_request", "%s", msg); break;
	case -ENOSPC: api_error(c, 507, "no_space", "%s", msg); break;
	case -EACCES:
	case -EPERM: api_error(c, 403, "forbidden", "%s", msg); break;
	default: api_error(c, 500, "internal", "%s", msg); break;
	}
}

/* --- GET /v1/tokens --- */

static int list_one(void *opaque, const struct token_info *t)
{
	json_t *o = token_info_json(t);
	return o && json_array_append_new(opaque, o) == 0 ? 0 : -ENOMEM;
}

void api_tokens_list(struct api_call *c)
{
	json_t *tokens = json_array();
	int err = tokens ? token_foreach(vault_db(c->api->vault), list_one, tokens) : -ENOMEM;
	if (err) {
		json_decref(tokens);
		return api_error_errno(c, err, "reading tokens", NULL);
	}
	api_json(c, 200, json_pack("{so}", "tokens", tokens));
}

/* --- POST /v1/tokens --- */

/* "scopes": ["read", ...] (or "read,upload") as token_scopes_parse's text. */
static int scopes_text(json_t *scopes, char *buf, size_t size)
{
	if (json_is_string(scopes)) {
		snprintf(buf, size, "%s", json_string_value(scopes));
		return 0;
	}
	size_t used = 0, i;
	json_t *s;
	buf[0] = '\0';
	if (!json_is_array(scopes))
		return -EINVAL;
	json_array_foreach(scopes, i, s) {
		if (!json_is_string(s))
			return -EINVAL;
		used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? "," : "",
					 json_string_value(s));
		if (used >= size)
			return -EINVAL;
	}
	return 0;
}

static int tags_list(json_t *tags, const char **out, size_t *n)
{
	size_t i;
	json_t *t;
	*n = 0;
	if (!tags || json_is_null(tags))
		return 0;
	if (!json_is_array(tags) || json_array_size(tags) > TOKEN_TAGS_MAX)
		return -EINVAL;
	json_array_foreach(tags, i, t) {
		if (!json_is_string(t))
			return -EINVAL;
		out[(*n)++] = json_string_value(t);
	}
	return 0;
}

/* The new token's record with its secret, read back as GET lists it. */
static json_t *created_json(struct api_call *c, const char *secret)
{
	struct token_info *t = NULL;
	if (token_verify(vault_db(c->api->vault), secret, &t) < 0)
		return NULL;
	json_t *o = token_info_json(t);
	token_info_free(t);
	if (o)
		json_object_set_new(o, "secret", json_string(secret));
	return o;
}

static void token_create_done(struct api_call *c, uint64_t id, json_t *doc)
{
	struct errbuf eb = { { 0 } };
	char scopes_buf[SCOPES_TEXT_MAX], secret[TOKEN_SECRET_MAX];
	const char *tags[TOKEN_TAGS_MAX];
	const char *name = json_string_value(json_object_get(doc, "name"));
	json_t *cs = json_object_get(doc, "cloudshark");
	unsigned scopes = 0;
	size_t ntags = 0;
	(void)id;
	if (!name || scopes_text(json_object_get(doc, "scopes"), scopes_buf, sizeof(scopes_buf)) ||
	    tags_list(json_object_get(doc, "tags"), tags, &ntags) || (cs && !json_is_boolean(cs)))
		return api_error(c, 400, "bad_field",
				 "name is a string, scopes an array of read, upload, delete, admin, "
				 "tags an array of at most %d strings, cloudshark a boolean",
				 TOKEN_TAGS_MAX);
	int err = token_scopes_parse(scopes_buf, &scopes, &eb);
	if (!err) {
		pthread_mutex_lock(&token_lock);
		err = token_add(vault_db(c->api->vault), name, scopes, tags, ntags, json_is_true(cs),
				secret, &eb);
		pthread_mutex_unlock(&token_lock);
	}
	if (err)
		return admin_error(c, err, eb.msg);
	json_t *o = created_json(c, secret);
	explicit_bzero(secret, sizeof(secret));
	char scopes_text_buf[SCOPES_TEXT_MAX];
	token_scopes_format(scopes, scopes_text_buf, sizeof(scopes_text_buf));
	api_audit(c, "token-add", NULL, "TARGET_TOKEN", name, "SCOPES", scopes_text_buf, (char *)NULL);
	if (!o)
		return api_error_errno(c, -EIO, "reading the new token", NULL);
	api_json(c, 201, o);
}

void api_tokens_create(struct api_call *c)
{
	api_read_json(c, 0, token_create_done);
}

/* --- DELETE /v1/tokens/{name} --- */

void api_token_revoke(struct api_call *c)
{
	struct errbuf eb = { { 0 } };
	const char *name = c->seg[2];
	pthread_mutex_lock(&token_lock);
	int err = token_revoke(vault_db(c->api->vault), name, &eb);
	token_cache_clear(c->api->tokens);
	pthread_mutex_unlock(&token_lock);
	if (err)
		return admin_error(c, err, eb.msg);
	api_audit(c, "token-revoke", NULL, "TARGET_TOKEN", name, (char *)NULL);
	api_json(c, 200, json_pack("{ss}", "revoked", name));
}

/* --- POST /v1/backup --- */

static void backup_done(struct api_call *c, uint64_t id, json_t *doc)
{
	struct errbuf eb = { { 0 } };
	const char *dir = json_string_value(json_object_get(doc, "dir"));
	uint64_t objects = 0;
	(void)id;
	if (!dir || dir[0] != '/')
		return api_error(c, 400, "bad_field", "dir is an absolute path (the daemon's "
						      "working folder is not the caller's)");
	const struct config *cfg = c->api->cfg;
	int err = 0;
	for (size_t i = 0; err == 0 && i < cfg->n_imports; i++)
		err = backup_check_outside_folder(dir, cfg->imports[i].path, "the import folder",
						  &eb);
	if (err == 0)
		err = backup_create(c->api->vault, dir, &objects, &eb);
	if (err)
		return admin_error(c, err, eb.msg);
	char count[24];
	snprintf(count, sizeof(count), "%" PRIu64, objects);
	api_audit(c, "backup", NULL, "DIR", dir, "OBJECTS", count, (char *)NULL);
	api_json(c, 200, json_pack("{sssI}", "dir", dir, "objects", (json_int_t)objects));
}

void api_backup(struct api_call *c)
{
	if (!http_req_local(c->r))
		return api_error(c, 403, "unix_socket_only",
				 "backups are made only through the unix socket (the daemon writes "
				 "the copy wherever it is told)");
	api_read_json(c, 0, backup_done);
}
