/*
 * cli_remote.c - finding and talking to a running capvaultd (see
 * cli_remote.h).
 *
 * "A daemon runs" means its socket exists and connect() succeeds; a
 * missing socket (ENOENT) or nobody listening (ECONNREFUSED: a daemon
 * that died) means the CLI opens the store itself. Any other failure is
 * reported, not papered over by opening a store that is most likely in
 * use.
 */
#include "cli_remote.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "cli.h"

#define REPLY_MAX (64u << 20)
#define TOKEN_HEADER_MAX 256

struct cli_remote {
	struct httpc *http;
	bool url;
	char auth[TOKEN_HEADER_MAX];
};

static struct {
	const char *url, *token, *cacert, *socket;
} opts;

static const struct httpc_tls_ops *tls_ops;

const char *cli_store_path(const char *option)
{
	if (option)
		return option;
	const char *env = getenv("CAPVAULT_STORE");
	return env && *env ? env : "./capvault-data";
}

static const char *const names[] = { "url", "token", "cacert", "socket" };

static const char **slot(size_t i)
{
	const char **slots[] = { &opts.url, &opts.token, &opts.cacert, &opts.socket };
	return slots[i];
}

/* Matches "--name", "--name=v" at argv[i]; sets the option. Returns the
 * number of words used (0: not one of ours, -1: missing value). */
static int take_option(int argc, char **argv, int i)
{
	for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
		size_t n = strlen(names[k]);
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, names[k], n) != 0)
			continue;
		if (a[2 + n] == '=') {
			*slot(k) = a + 3 + n;
			return 1;
		}
		if (a[2 + n] != '\0')
			continue;
		if (i + 1 >= argc)
			return -1;
		*slot(k) = argv[i + 1];
		return 2;
	}
	return 0;
}

int cli_remote_options(int *argc, char **argv)
{
	int out = 1;
	for (int i = 1; i < *argc;) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		int used = take_option(*argc, argv, i);
		if (used < 0) {
			fprintf(stderr, "capvault: %s needs a value\n", argv[i]);
			return -EINVAL;
		}
		if (used == 0)
			argv[out++] = argv[i++];
		else
			i += used;
	}
	argv[out] = NULL;
	*argc = out;
	const char *env_url = getenv("CAPVAULT_URL");
	if (!opts.url)
		opts.url = env_url && *env_url ? env_url : NULL;
	if (!opts.token)
		opts.token = getenv("CAPVAULT_TOKEN");
	if (opts.token && strlen(opts.token) + 32 > TOKEN_HEADER_MAX) {
		fprintf(stderr, "capvault: the token is too long\n");
		return -EINVAL;
	}
	return 0;
}

bool cli_remote_has_url(void)
{
	return opts.url != NULL;
}

const char *cli_remote_url(void)
{
	return opts.url;
}

void cli_remote_set_tls(const struct httpc_tls_ops *ops)
{
	tls_ops = ops;
}

static int open_url(struct cli_remote *r)
{
	struct httpc_target t;
	struct errbuf eb = { { 0 } };
	_cleanup_free_ char *storage = NULL;
	int err = httpc_parse_url(opts.url, &t, &storage, &eb);
	t.cacert = opts.cacert;
	t.tls_ops = tls_ops;
	if (!err)
		err = httpc_connect(&r->http, &t, &eb);
	if (err) {
		fprintf(stderr, "capvault: %s\n", eb.msg[0] ? eb.msg : strerror(-err));
		return -1;
	}
	r->url = true;
	if (opts.token && *opts.token)
		snprintf(r->auth, sizeof(r->auth), "Bearer %s", opts.token);
	return 1;
}

/* 1 connected, 0 nothing listens there, -1 error (printed unless quiet). */
static int open_socket(struct cli_remote *r, const char *path, bool must)
{
	struct httpc_target t = { .unix_path = path, .prefix = "" };
	struct errbuf eb = { { 0 } };
	int err = httpc_connect(&r->http, &t, &eb);
	if (!err)
		return 1;
	if (!must && (err == -ENOENT || err == -ECONNREFUSED || err == -ENOTDIR))
		return 0;
	fprintf(stderr, "capvault: %s\n", eb.msg[0] ? eb.msg : strerror(-err));
	if (err == -EACCES)
		fprintf(stderr, "capvault: capvaultd runs; its socket is for root and the "
				"capvault group\n");
	return -1;
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* The daemon at /run/capvault serves our store when it says so; with no
 * store named and none here, it is the one the user means. */
static bool serves_store(struct cli_remote *r, const char *store, bool named)
{
	json_t *reply = NULL;
	int status = cli_remote_json(r, "GET", "/v1/status", NULL, &reply);
	const char *path = json_string_value(json_object_get(json_object_get(reply, "store"), "path"));
	struct stat st;
	bool here = stat(store, &st) == 0;
	bool ok = (status == 200 && path && same_file(path, store)) || (!named && !here);
	json_decref(reply);
	return ok;
}

int cli_remote_open(struct cli_remote **out, const char *store_option)
{
	struct cli_remote *r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	int rc;
	const char *store = cli_store_path(store_option);
	const char *env_store = getenv("CAPVAULT_STORE");
	bool named = store_option || (env_store && *env_store);
	const char *sock = opts.socket ? opts.socket : getenv("CAPVAULT_SOCKET");
	_cleanup_free_ char *path = NULL;
	if (opts.url) {
		rc = open_url(r);
	} else if (sock && *sock) {
		rc = open_socket(r, sock, true);
	} else if (asprintf(&path, "%s/capvault.sock", store) < 0) {
		path = NULL;
		rc = -1;
	} else if ((rc = open_socket(r, path, false)) == 0 &&
		   (rc = open_socket(r, CLI_RUN_SOCKET, false)) == 1 && !serves_store(r, store, named)) {
		r->http = httpc_free(r->http);
		rc = 0;
	}
	if (rc == 1)
		*out = r;
	else
		cli_remote_free(r);
	return rc;
}

struct cli_remote *cli_remote_free(struct cli_remote *r)
{
	if (r) {
		httpc_free(r->http);
		free(r);
	}
	return NULL;
}

bool cli_remote_is_url(const struct cli_remote *r)
{
	return r->url;
}

struct httpc *cli_remote_http(struct cli_remote *r)
{
	return r->http;
}

int cli_remote_send(struct cli_remote *r, struct httpc_request *req)
{
	const char *const auth[] = { "Authorization", r->auth, NULL };
	struct errbuf eb = { { 0 } };
	req->headers = r->auth[0] ? auth : NULL;
	int status = httpc_send(r->http, req, &eb);
	req->headers = NULL;
	if (status < 0) {
		fprintf(stderr, "capvault: %s\n", eb.msg[0] ? eb.msg : strerror(-status));
		return -1;
	}
	return status;
}

int cli_remote_json(struct cli_remote *r, const char *method, const char *target, json_t *body,
		    json_t **reply)
{
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	_cleanup_free_ char *buf = NULL;
	struct httpc_request req = {
		.method = method,
		.target = target,
		.content_type = text ? "application/json" : NULL,
		.body = text,
		.body_len = text ? strlen(text) : 0,
	};
	struct errbuf eb = { { 0 } };
	size_t len = 0;
	*reply = NULL;
	int status = cli_remote_send(r, &req);
	if (status < 0)
		return -1;
	int err = httpc_read_all(r->http, REPLY_MAX, &buf, &len, &eb);
	if (err) {
		fprintf(stderr, "capvault: %s\n", eb.msg[0] ? eb.msg : strerror(-err));
		return -1;
	}
	*reply = json_loadb(buf, len, 0, NULL);
	if (!*reply && status < 300) {
		fprintf(stderr, "capvault: %s: the daemon's reply is not JSON\n", target);
		return -1;
	}
	return status;
}

const char *cli_remote_message(json_t *reply, int status)
{
	const char *m = json_string_value(json_object_get(reply, "message"));
	if (!m)
		m = json_string_value(json_array_get(json_object_get(reply, "exceptions"), 0));
	if (m)
		return m;
	switch (status) {
	case 401: return "the daemon wants a token (--token or CAPVAULT_TOKEN)";
	case 403: return "the token may not do that";
	case 404: return "not found (is this a capvault daemon?)";
	default: return "the daemon refused the request";
	}
}

static char *upload_target(struct cli_remote *r, const char *name, const char *const *tags,
			   size_t ntags, const char *source_path)
{
	char *target = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&target, &len);
	if (!f)
		return NULL;
	fputs("/v1/captures", f);
	httpc_put_arg(f, '?', "name", name);
	for (size_t i = 0; i < ntags; i++) {
		fputs(i ? "," : "&tags=", f);
		httpc_put_segment(f, tags[i]);
	}
	if (source_path && !r->url)
		httpc_put_arg(f, '&', "source_path", source_path);
	if (fclose(f) != 0) {
		free(target);
		return NULL;
	}
	return target;
}

static int hex_to_sha(const char *hex, uint8_t sha[32])
{
	for (size_t i = 0; i < 32; i++) {
		unsigned v;
		if (!hex || sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -EPROTO;
		sha[i] = (uint8_t)v;
	}
	return 0;
}

/* The reply's record as an import pass's result. */
static int upload_result(json_t *rec, struct import_result *res, struct import_info *info)
{
	memset(res, 0, sizeof(*res));
	memset(info, 0, sizeof(*info));
	res->capture_id = (uint64_t)json_integer_value(json_object_get(rec, "id"));
	res->duplicate = json_is_true(json_object_get(rec, "duplicate"));
	info->summary.packets = (uint64_t)json_integer_value(json_object_get(rec, "packets"));
	info->summary.truncated = json_is_true(json_object_get(rec, "truncated"));
	info->capture_bytes = (uint64_t)json_integer_value(json_object_get(rec, "file_size"));
	info->source_bytes = (uint64_t)json_integer_value(json_object_get(rec, "source_size"));
	return hex_to_sha(json_string_value(json_object_get(rec, "sha256")), res->sha256);
}

int cli_remote_upload(struct cli_remote *r, const char *name, const char *const *tags,
		      size_t ntags, const char *source_path, httpc_body_fn fn, void *opaque,
		      int64_t size, struct import_result *res, struct import_info *info,
		      struct errbuf *eb)
{
	_cleanup_free_ char *target = upload_target(r, name, tags, ntags, source_path);
	_cleanup_free_ char *body = NULL;
	const char *const auth[] = { "Authorization", r->auth, NULL };
	struct httpc_request req = {
		.method = "POST", .target = target, .headers = r->auth[0] ? auth : NULL,
		.content_type = "application/octet-stream",
		.body_fn = fn, .body_opaque = opaque, .body_size = size,
	};
	if (!target)
		return -ENOMEM;
	int status = httpc_send(r->http, &req, eb);
	if (status < 0)
		return status;
	struct errbuf rb = { { 0 } };
	int err = httpc_read_all(r->http, REPLY_MAX, &body, NULL, &rb);
	json_t *reply = err ? NULL : json_loads(body, 0, NULL);
	if (status == 200 || status == 201) {
		err = reply ? upload_result(reply, res, info) : -EPROTO;
		if (err)
			errbuf_set(eb, err, "the daemon's reply is not a capture record");
		json_decref(reply);
		return err;
	}
	static const char *const prefixes[] = { "not a valid capture: ", "storing the upload: " };
	const char *m = cli_remote_message(reply, status);
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (!strncmp(m, prefixes[i], strlen(prefixes[i])))
			m += strlen(prefixes[i]);
	err = errbuf_set(eb, status == 422 ? -EINVAL : status == 507 ? -ENOSPC : -EIO, "%s", m);
	json_decref(reply);
	return err;
}
