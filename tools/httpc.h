/*
 * httpc.h - a small HTTP/1.1 client for the capvault CLI: one persistent
 * connection to capvaultd over its unix socket, plain TCP, or TLS with
 * certificate verification (OpenSSL, only in httpc.c).
 *
 * Bodies stream both ways with bounded memory: a request body is pulled
 * from a callback (Content-Length when known, else chunked) and a
 * response body is read piece by piece (Content-Length, chunked, or up to
 * the close), so uploads and query results of any size cost the same.
 */
#ifndef CAPVAULT_HTTPC_H
#define CAPVAULT_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "errbuf.h"
#include "httpc_tls.h"

struct httpc;

struct httpc_target {
	const char *unix_path; /* the unix socket, or NULL for host:port */
	const char *host;      /* TCP: name or address (IPv6 without brackets) */
	unsigned port;
	bool tls;
	const struct httpc_tls_ops *tls_ops; /* https needs one (httpc_tls.h) */
	const char *cacert;    /* PEM file to trust instead of the system's; NULL: system */
	const char *prefix;    /* path prefix of the API ("" or "/capvault") */
};

/*
 * Parses "http://HOST[:PORT][/PREFIX]" or "https://..." (IPv6 in
 * brackets) into t, pointing into *storage (the caller frees it).
 * Returns 0 or -EINVAL (eb).
 */
int httpc_parse_url(const char *url, struct httpc_target *t, char **storage, struct errbuf *eb);

/* Connects (and for TLS, verifies the server's certificate and name).
 * Returns 0, or a negative errno: -ENOENT / -ECONNREFUSED when nothing
 * listens there, -EPROTO for a TLS failure (eb says why). */
int httpc_connect(struct httpc **out, const struct httpc_target *t, struct errbuf *eb);
struct httpc *httpc_free(struct httpc *c);

/* Pulls the next request body bytes into buf: count, 0 at the end, or a
 * negative errno (the request is abandoned; a message it put in the
 * errbuf that httpc_send was given is kept). */
typedef ssize_t (*httpc_body_fn)(void *opaque, void *buf, size_t max);

struct httpc_request {
	const char *method;
	const char *target;          /* path and query string, encoded, without the prefix */
	const char *const *headers;  /* name, value pairs, NULL-terminated; may be NULL */
	const char *content_type;    /* with a body */
	const void *body;            /* a small body in memory, or */
	size_t body_len;
	httpc_body_fn body_fn;       /* a streamed one */
	void *body_opaque;
	int64_t body_size;           /* of body_fn: bytes, or -1 for chunked */
};

/*
 * Sends the request and reads the response's status line and headers.
 * Returns the status (100-599) or a negative errno (eb). When the server
 * answers before taking the whole body (a 413), that answer is returned.
 * The body is then read with httpc_read or httpc_read_all, or skipped by
 * the next request.
 */
int httpc_send(struct httpc *c, const struct httpc_request *req, struct errbuf *eb);

/* The value of a response header (case-insensitive), or NULL. */
const char *httpc_header(const struct httpc *c, const char *name);

/* Reads response body bytes: count, 0 at its end, or a negative errno. */
ssize_t httpc_read(struct httpc *c, void *buf, size_t len, struct errbuf *eb);
/* Reads the whole response body (NUL-terminated) if it is at most max
 * bytes. Returns 0, -EFBIG, or a negative errno (eb). */
int httpc_read_all(struct httpc *c, size_t max, char **out, size_t *len, struct errbuf *eb);

/* Appends "key=value" (value percent-encoded) to f with sep before it. */
void httpc_put_arg(FILE *f, char sep, const char *key, const char *value);
/* Appends s percent-encoded as one path segment. */
void httpc_put_segment(FILE *f, const char *s);

#endif
