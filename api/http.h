/*
 * http.h - the HTTP server as the rest of api/ sees it: requests,
 * streamed request bodies (raw or multipart form fields) and responses
 * (buffers or pull-streams). http_server.c implements it over
 * libmicrohttpd and is the only file that includes <microhttpd.h>.
 *
 * One thread per connection, so a handler, a body callback or a stream
 * reader may block (on the disk, or on a query's producer thread) without
 * stalling other clients. Every request gets exactly one response: the
 * handler gives it at once, or installs a body consumer whose end
 * callback gives it once the whole body has arrived.
 */
#ifndef CAPVAULT_HTTP_H
#define CAPVAULT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "errbuf.h"

struct http_req;
struct http_server;

/* Called once per request, when its headers are in. */
typedef void (*http_handler_fn)(void *app, struct http_req *r);

/* What a running server's limits can be changed to (http_server_set_limits). */
struct http_limits {
	unsigned max_per_client; /* TCP connections from one address; 0: no limit */
	unsigned timeout_s;      /* idle, for connections opened from now on */
	/* A request's headers must be in within this long of the connection
	 * opening or the previous reply's end, or the connection is closed. */
	uint64_t header_timeout_ms;
	/* In every body_timeout_ms while a request body is read, at least
	 * body_min_rate bytes per second of it (at least one byte) must
	 * arrive, or the connection is closed. Time our consumer spends on
	 * the bytes does not count against the client. 0: no such check. */
	uint64_t body_timeout_ms;
	uint64_t body_min_rate;
};

struct http_listen_cfg {
	int fd;              /* a bound, listening socket; the server owns it */
	bool local;          /* the unix socket: requests are trusted */
	/* TLS with the certificate and key in PEM text, or NULL for plain
	 * HTTP. TLS 1.2 and 1.3 only, with forward-secret AEAD suites. */
	const char *tls_cert;
	const char *tls_key;
	/* In all. A quarter of them (TCP) is kept for addresses that hold no
	 * connection yet, so a few addresses cannot take every one. */
	unsigned max_connections;
	struct http_limits limits;
	/* Optional: called once per response queued, with the route the
	 * handler set (http_req_set_route; -1 when none) and the status. */
	void (*responded)(void *app, int route, unsigned status);
};

/* Starts serving on cfg->fd. Returns 0 or a negative errno (eb). */
int http_server_new(struct http_server **out, const struct http_listen_cfg *cfg,
		    http_handler_fn handler, void *app, struct errbuf *eb);
/* Stops accepting, waits for the connection threads, closes the socket. */
struct http_server *http_server_free(struct http_server *s);
/* New limits, in force at once (timeout_s: for new connections). */
void http_server_set_limits(struct http_server *s, const struct http_limits *l);
/* Presents this certificate chain and key (PEM) from the next TLS
 * handshake on; connections already open keep theirs. Only on a server
 * started with TLS. Returns 0, or -EINVAL when they do not load or do
 * not match (eb; the old ones stay), -ENOTSUP without TLS. */
int http_server_set_tls(struct http_server *s, const char *cert_pem, const char *key_pem,
			struct errbuf *eb);
/* True when libmicrohttpd was built with TLS. */
bool http_tls_supported(void);

const char *http_req_method(const struct http_req *r);
const char *http_req_path(const struct http_req *r);
/* The first query-string argument named key, or NULL. */
const char *http_req_arg(struct http_req *r, const char *key);
/* How many times the query string gives key (http_req_arg sees the first). */
unsigned http_req_arg_count(struct http_req *r, const char *key);
/* Calls fn for every query-string argument in order (value may be NULL). */
typedef void (*http_arg_fn)(void *opaque, const char *key, const char *value);
void http_req_args_foreach(struct http_req *r, http_arg_fn fn, void *opaque);
const char *http_req_header(struct http_req *r, const char *name);
/* Came in over the unix socket. */
bool http_req_local(const struct http_req *r);
/* The client, for logs: "ADDR:PORT", "[ADDR6]:PORT", or on the unix
 * socket "unix:uid=U,pid=P" (its peer credentials). Returns buf. */
const char *http_req_peer(const struct http_req *r, char *buf, size_t size);
/* A slot for the application's per-request state. */
void **http_req_app_data(struct http_req *r);
/* Tags the request with the application's route number, passed to
 * http_listen_cfg.responded. */
void http_req_set_route(struct http_req *r, int route);

/* Raw body consumer. data returns 0, or a negative errno after which the
 * rest of the body is discarded (the consumer remembers why); end must
 * respond; free (may be NULL) runs when the request is over, always. */
struct http_body_ops {
	int (*data)(void *ctx, struct http_req *r, const void *buf, size_t len);
	void (*end)(void *ctx, struct http_req *r);
	void (*free)(void *ctx);
};
void http_req_read_body(struct http_req *r, const struct http_body_ops *ops, void *ctx);

/* Form consumer (multipart/form-data or urlencoded): field gets each
 * field's bytes in pieces, at increasing offsets; filename is the part's
 * file name or NULL. Returning nonzero discards the rest. */
struct http_form_ops {
	int (*field)(void *ctx, const char *key, const char *filename, const char *data,
		     uint64_t off, size_t len);
	/* well_formed is false when the body did not parse as a form. */
	void (*end)(void *ctx, struct http_req *r, bool well_formed);
	void (*free)(void *ctx);
};
/* Returns 0, or -EINVAL when the body is not a form (Content-Type). */
int http_req_read_form(struct http_req *r, const struct http_form_ops *ops, void *ctx);

/* Response headers: name/value pairs, NULL-terminated (may be NULL). */
int http_respond(struct http_req *r, unsigned status, const char *ctype, const void *buf,
		 size_t len, const char *const *headers);
/* http_respond for a malloc'd body, which it takes over (no copy) and
 * frees whatever happens. */
int http_respond_owned(struct http_req *r, unsigned status, const char *ctype, void *buf,
		       size_t len, const char *const *headers);

/* Stream reader: fills up to max bytes at pos. Returns the count (> 0),
 * HTTP_STREAM_END, or HTTP_STREAM_ERROR (the connection is cut). */
#define HTTP_STREAM_END ((ssize_t)-1)
#define HTTP_STREAM_ERROR ((ssize_t)-2)
#define HTTP_SIZE_UNKNOWN UINT64_MAX
typedef ssize_t (*http_stream_fn)(void *ctx, uint64_t pos, char *buf, size_t max);
/* Responds with a stream of size bytes (or HTTP_SIZE_UNKNOWN: chunked).
 * free_fn(ctx) runs when the response is done or the client left; it is
 * called even when this fails. Returns 0 or -ENOMEM. */
int http_respond_stream(struct http_req *r, unsigned status, const char *ctype, uint64_t size,
			http_stream_fn fn, void (*free_fn)(void *ctx), void *ctx,
			const char *const *headers);

bool http_req_responded(const struct http_req *r);

/* The most a request's head may hold: its target (path and query string,
 * as decoded) and its header fields (names and values). A longer one is
 * seen by the handler, which refuses it (http_req_oversize); one longer
 * than the connection's memory (about 120 KiB for the two together) is
 * refused by the server itself, 414 or 431 without our JSON body. */
#define HTTP_MAX_URI_BYTES (32u * 1024)
#define HTTP_MAX_HEADER_BYTES (16u * 1024)
/* 0 when the request's head is within those limits, else the status to
 * refuse it with: 414 (its target is over HTTP_MAX_URI_BYTES) or 431 (its
 * header fields are over HTTP_MAX_HEADER_BYTES). The handler answers
 * such a request with that status before looking at anything else. */
unsigned http_req_oversize(const struct http_req *r);
/* The name of the first query argument whose name or value holds a NUL
 * byte (sent as %00), which any lookup would cut short; NULL when none.
 * The handler refuses such a request (400) before looking at its path. */
const char *http_req_nul_arg(const struct http_req *r);

/* True once the client has closed or reset its connection (or shut down
 * its sending side): nobody will read the answer. Cheap (one poll with
 * no wait); for handlers that run long. */
bool http_req_client_gone(struct http_req *r);
/* A duplicate of the request's socket, which the caller closes: for a
 * thread that outlives the request's callbacks (a stream's producer) to
 * ask http_socket_gone. Returns the fd or a negative errno. */
int http_req_dup_socket(struct http_req *r);
bool http_socket_gone(int fd);

#endif
