/*
 * cli_remote.h - how a capvault subcommand reaches a running capvaultd:
 * its unix socket (<store>/capvault.sock, else /run/capvault/capvault.sock
 * when that daemon serves the same store), or --url with a token. With
 * no daemon the subcommand opens the store itself, and prints the same.
 */
#ifndef CAPVAULT_CLI_REMOTE_H
#define CAPVAULT_CLI_REMOTE_H

#include <jansson.h>
#include <stdbool.h>

#include "httpc.h"
#include "sink.h"

struct cli_remote;

/* The default socket of a packaged install, tried after <store>/capvault.sock. */
#define CLI_RUN_SOCKET "/run/capvault/capvault.sock"

/*
 * Takes the connection options (--url, --token, --cacert, --socket, each
 * as "--opt VALUE" or "--opt=VALUE") out of argv, wherever they are
 * before a "--". Returns 0, or -EINVAL after printing why.
 */
int cli_remote_options(int *argc, char **argv);

/* True when --url or $CAPVAULT_URL names a daemon (after
 * cli_remote_options). */
bool cli_remote_has_url(void);
/* That URL, or NULL. */
const char *cli_remote_url(void);

/* The TLS that https URLs use; without it they fail. The engine sets
 * OpenSSL's; the thin front, which leaves URLs to the engine, links none. */
void cli_remote_set_tls(const struct httpc_tls_ops *ops);

/*
 * Finds the daemon for the store (--store, $CAPVAULT_STORE, or the
 * default). Returns 1 with *out connected; 0 when no daemon runs there
 * (nothing listens: open the store); -1 after printing an error (--url or
 * --socket given but unusable, a socket we may not use, a TLS failure).
 */
int cli_remote_open(struct cli_remote **out, const char *store_option);
struct cli_remote *cli_remote_free(struct cli_remote *r);

/* True when talking to a daemon over TCP (--url) rather than its socket. */
bool cli_remote_is_url(const struct cli_remote *r);

/* Sends req (adding the token); returns the status or -1 (printed). */
int cli_remote_send(struct cli_remote *r, struct httpc_request *req);
struct httpc *cli_remote_http(struct cli_remote *r);

/*
 * A request with an optional JSON body, its JSON reply in *reply (NULL
 * when the body is not JSON). Returns the status, or -1 after printing a
 * transport error.
 */
int cli_remote_json(struct cli_remote *r, const char *method, const char *target, json_t *body,
		    json_t **reply);

/*
 * Uploads one capture (POST /v1/captures), its bytes pulled from fn
 * (size bytes, or -1: chunked), named name with tags; source_path (may be
 * NULL) is recorded as its source over the unix socket. Fills res and
 * info as a local import pass would (packets, bytes, truncated). Returns
 * 0, or a negative errno with eb worded as the local import words it.
 */
int cli_remote_upload(struct cli_remote *r, const char *name, const char *const *tags,
		      size_t ntags, const char *source_path, httpc_body_fn fn, void *opaque,
		      int64_t size, struct import_result *res, struct import_info *info,
		      struct errbuf *eb);

/* The message of an API error reply ("message", or CloudShark's
 * "exceptions"[0]), or a generic text for the status. */
const char *cli_remote_message(json_t *reply, int status);

#endif
