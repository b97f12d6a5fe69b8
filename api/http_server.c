/*
 * http_server.c - http.h over libmicrohttpd; the only file that includes
 * <microhttpd.h>.
 *
 * One MHD daemon per listening socket (the caller creates and binds the
 * sockets, so IPv6, unix sockets and their permissions are its choice),
 * each with a thread per connection, a connection limit (in all and per
 * client address, with a share kept for addresses that hold none, so a
 * few addresses cannot take every connection), an idle timeout, and two
 * deadlines that a watchdog thread enforces: for a request's headers, and
 * a minimum rate for its body. libmicrohttpd's own timeout is an idle
 * one, which a client trickling a byte now and then never trips
 * (slowloris). Responses are built by the handlers into the request and
 * queued here, so handlers never see MHD's calling rules (a response may
 * only be queued on the first call or after the body has been read).
 *
 * TLS goes through GnuTLS (libmicrohttpd's TLS library, included only
 * here): TLS 1.2 and 1.3 with forward-secret AEAD suites, and a
 * certificate callback, so that a new certificate is presented from the
 * next handshake on without closing the listener.
 */
#include "http.h"
#include "parse.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "monoclock.h"

#define STREAM_BLOCK (256u * 1024)
#define FORM_BUFFER (64u * 1024)

/* Mozilla's "intermediate" profile in GnuTLS terms: TLS 1.2 and 1.3
 * only (RFC 8996 retired 1.0 and 1.1), ECDHE or DHE key exchange,
 * AES-GCM or ChaCha20-Poly1305; no CBC, no SHA-1 MAC, no RSA key
 * transport. The server's order of preference wins. */
static const char tls_priorities[] =
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
	"+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:+DHE-RSA:"
	"%SERVER_PRECEDENCE";

#define TLS_MAX_CHAIN 16

/* A certificate chain and its key as GnuTLS takes them from the
 * certificate callback. Replaced ones stay until the server stops: a
 * session may point into them for as long as it lasts. */
struct tls_cert {
	struct tls_cert *older;
	gnutls_pcert_st chain[TLS_MAX_CHAIN];
	unsigned n;
	gnutls_privkey_t key;
};

/* A connection as the watchdog and the accept policy see it. */
struct conn_watch {
	struct conn_watch *prev, *next;
	struct http_server *srv;
	int fd;
	struct sockaddr_storage addr; /* the client's */
	/* When it began waiting for a request's headers (it opened, or its
	 * previous reply was done), mono_ns(); 0 when not waiting. */
	atomic_uint_fast64_t waiting_since_ns;
	/* When the body being read began (0: none), the bytes of it so far,
	 * and whether our consumer holds some: then we are the slow one. */
	atomic_uint_fast64_t body_since_ns;
	atomic_uint_fast64_t body_bytes;
	atomic_bool consuming;
	/* The watchdog's: the body and the start of its current period. */
	uint64_t mark_body, mark_ns, mark_bytes;
	bool cut;
};

struct http_server {
	struct MHD_Daemon *daemon;
	bool local;
	http_handler_fn handler;
	void (*responded)(void *app, int route, unsigned status);
	void *app;
	unsigned max_connections;
	pthread_t watchdog;
	bool watchdog_running;
	pthread_mutex_t lock; /* guards what follows */
	struct http_limits limits;
	struct tls_cert *cert; /* newest first */
	pthread_cond_t wake;
	struct conn_watch *conns;
	unsigned nconns;
	bool stopping;
};

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	struct conn_watch *watch; /* NULL when unwatched */
	char *method, *path;
	struct MHD_Response *resp;
	unsigned status;
	bool responded;
	const struct http_body_ops *body;
	const struct http_form_ops *form;
	void *body_ctx;
	struct MHD_PostProcessor *pp;
	struct api_mp_end mp_end; /* multipart: where the epilogue starts */
	bool mp_known;            /* mp_end was set up */
	bool discard;   /* the consumer failed: drop the rest of the body */
	bool form_bad;  /* the form did not parse */
	bool deferred;  /* answered at once, queued on the next call */
	void *app_data;
	int route;      /* http_req_set_route; -1: none */
	unsigned oversize; /* http_req_oversize */
	char nul_arg[64];  /* http_req_nul_arg; "" when none */
};

bool http_tls_supported(void)
{
	return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

const char *http_req_method(const struct http_req *r) { return r->method; }
const char *http_req_path(const struct http_req *r) { return r->path; }
bool http_req_local(const struct http_req *r) { return r->srv->local; }
void **http_req_app_data(struct http_req *r) { return &r->app_data; }
void http_req_set_route(struct http_req *r, int route) { r->route = route; }

const char *http_req_peer(const struct http_req *r, char *buf, size_t size)
{
	const union MHD_ConnectionInfo *ci;
	snprintf(buf, size, "?");
	if (r->srv->local) {
		struct ucred cred;
		socklen_t len = sizeof(cred);
		ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
			snprintf(buf, size, "unix:uid=%u,pid=%d", (unsigned)cred.uid, (int)cred.pid);
		else
			snprintf(buf, size, "unix");
		return buf;
	}
	ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	char ip[INET6_ADDRSTRLEN];
	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		if (inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)))
			snprintf(buf, size, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		if (inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)))
			snprintf(buf, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
	}
	return buf;
}
bool http_req_responded(const struct http_req *r) { return r->resp || r->responded; }

bool http_socket_gone(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };
	return fd >= 0 && poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static int req_socket(struct http_req *r)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	return ci ? ci->connect_fd : -EBADF;
}

bool http_req_client_gone(struct http_req *r)
{
	return http_socket_gone(req_socket(r));
}

int http_req_dup_socket(struct http_req *r)
{
	int fd = req_socket(r);
	if (fd < 0)
		return fd;
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return fd < 0 ? -errno : fd;
}

const char *http_req_arg(struct http_req *r, const char *key)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_req_header(struct http_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct arg_count {
	const char *key;
	unsigned n;
};

static enum MHD_Result count_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				 const char *value)
{
	struct arg_count *a = cls;
	(void)kind;
	(void)value;
	a->n += key && !strcmp(key, a->key);
	return MHD_YES;
}

unsigned http_req_arg_count(struct http_req *r, const char *key)
{
	struct arg_count a = { key, 0 };
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, count_arg, &a);
	return a.n;
}

struct arg_iter {
	http_arg_fn fn;
	void *opaque;
};

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key,
			      const char *value)
{
	struct arg_iter *it = cls;
	(void)kind;
	it->fn(it->opaque, key, value);
	return MHD_YES;
}

void http_req_args_foreach(struct http_req *r, http_arg_fn fn, void *opaque)
{
	struct arg_iter it = { fn, opaque };
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, on_arg, &it);
}

void http_req_read_body(struct http_req *r, const struct http_body_ops *ops, void *ctx)
{
	r->body = ops;
	r->body_ctx = ctx;
}

static enum MHD_Result on_form_field(void *cls, enum MHD_ValueKind kind, const char *key,
				     const char *filename, const char *content_type,
				     const char *transfer_encoding, const char *data, uint64_t off,
				     size_t size)
{
	struct http_req *r = cls;
	(void)kind, (void)content_type, (void)transfer_encoding;
	if (r->discard)
		return MHD_NO;
	if (r->form->field(r->body_ctx, key, filename, data, off, size) != 0)
		r->discard = true;
	return r->discard ? MHD_NO : MHD_YES;
}

int http_req_read_form(struct http_req *r, const struct http_form_ops *ops, void *ctx)
{
	r->form = ops;
	r->body_ctx = ctx;
	r->pp = MHD_create_post_processor(r->conn, FORM_BUFFER, on_form_field, r);
	const char *ct = http_req_header(r, "Content-Type");
	r->mp_known = ct && !strncasecmp(ct, "multipart/", 10) &&
		      api_mp_end_init(&r->mp_end, ct) == 0;
	if (!r->pp) {
		r->form = NULL;
		r->body_ctx = NULL;
		return -EINVAL;
	}
	return 0;
}

static int add_headers(struct MHD_Response *resp, const char *ctype, const char *const *headers)
{
	if (ctype && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES)
		return -ENOMEM;
	for (size_t i = 0; headers && headers[i]; i += 2)
		if (MHD_add_response_header(resp, headers[i], headers[i + 1]) != MHD_YES)
			return -ENOMEM;
	return 0;
}

static int set_response(struct http_req *r, unsigned status, struct MHD_Response *resp,
			const char *ctype, const char *const *headers)
{
	if (!resp)
		return -ENOMEM;
	if (add_headers(resp, ctype, headers) < 0) {
		MHD_destroy_response(resp);
		return -ENOMEM;
	}
	if (r->resp)
		MHD_destroy_response(r->resp);
	r->resp = resp;
	r->status = status;
	return 0;
}

int http_respond(struct http_req *r, unsigned status, const char *ctype, const void *buf,
		 size_t len, const char *const *headers)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)buf, MHD_RESPMEM_MUST_COPY);
	return set_response(r, status, resp, ctype, headers);
}

int http_respond_owned(struct http_req *r, unsigned status, const char *ctype, void *buf,
		       size_t len, const char *const *headers)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!resp)
		free(buf);
	return set_response(r, status, resp, ctype, headers);
}

int http_respond_stream(struct http_req *r, unsigned status, const char *ctype, uint64_t size,
			http_stream_fn fn, void (*free_fn)(void *ctx), void *ctx,
			const char *const *headers)
{
	/* Our reader's contract matches MHD's: same signature, -1 end, -2 error. */
	struct MHD_Response *resp = MHD_create_response_from_callback(
		size == HTTP_SIZE_UNKNOWN ? MHD_SIZE_UNKNOWN : size, STREAM_BLOCK, fn, ctx, free_fn);
	if (!resp && free_fn)
		free_fn(ctx);
	return set_response(r, status, resp, ctype, headers);
}

static enum MHD_Result queue(struct http_req *r)
{
	if (!r->resp) {
		static const char msg[] =
			"{\"status\": 500, \"error\": \"internal\", \"message\": \"no response\"}";
		http_respond(r, 500, "application/json", msg, sizeof(msg) - 1, NULL);
		if (!r->resp)
			return MHD_NO;
	}
	enum MHD_Result rc = MHD_queue_response(r->conn, r->status, r->resp);
	MHD_destroy_response(r->resp);
	r->resp = NULL;
	r->responded = true;
	if (r->srv->responded)
		r->srv->responded(r->srv->app, r->route, r->status);
	return rc;
}

static struct http_req *req_new(struct http_server *s, struct MHD_Connection *conn,
				const char *url, const char *method)
{
	struct http_req *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->srv = s;
	r->conn = conn;
	r->route = -1;
	r->path = strdup(url);
	r->method = strdup(method);
	if (!r->path || !r->method) {
		free(r->path);
		free(r->method);
		free(r);
		return NULL;
	}
	return r;
}

static void feed(struct http_req *r, const char *data, size_t size)
{
	struct conn_watch *w = r->watch;
	if (w)
		atomic_fetch_add(&w->body_bytes, size);
	if (r->discard)
		return;
	if (w)
		atomic_store(&w->consuming, true);
	if (r->pp) {
		/* libmicrohttpd refuses bytes after the close delimiter: an
		 * epilogue (RFC 2046 allows one, and says to ignore it) is
		 * left out here. */
		if (r->mp_known)
			size = api_mp_end_feed(&r->mp_end, data, size);
		if (size && MHD_post_process(r->pp, data, size) != MHD_YES && !r->discard)
			r->form_bad = true, r->discard = true;
	} else if (r->body && r->body->data(r->body_ctx, r, data, size) < 0) {
		r->discard = true;
	}
	if (w)
		atomic_store(&w->consuming, false);
}

/* The body starts (at) or ends (0) for the rate watchdog. */
static void watch_body(struct http_req *r, uint64_t at)
{
	if (!r->watch)
		return;
	atomic_store(&r->watch->body_bytes, 0);
	atomic_store(&r->watch->body_since_ns, at);
}

static void end_body(struct http_req *r)
{
	if (r->pp) {
		if (MHD_destroy_post_processor(r->pp) != MHD_YES && !r->discard)
			r->form_bad = true;
		r->pp = NULL;
		r->form->end(r->body_ctx, r, !r->form_bad);
	} else if (r->body) {
		r->body->end(r->body_ctx, r);
	}
}

static enum MHD_Result add_value_size(void *cls, enum MHD_ValueKind kind, const char *key,
				      const char *value)
{
	size_t *total = cls;
	(void)kind;
	*total += strlen(key) + (value ? strlen(value) : 0) + 2;
	return MHD_YES;
}

static size_t values_size(struct MHD_Connection *conn, enum MHD_ValueKind kind)
{
	size_t total = 0;
	MHD_get_connection_values(conn, kind, add_value_size, &total);
	return total;
}

/* Judged before the handler runs, so that it can refuse the request in
 * the API's own shape. The connection's memory (start_mhd) is what lets
 * heads over these limits reach us at all. */
static unsigned oversize(struct MHD_Connection *conn, const char *url)
{
	if (strlen(url) + values_size(conn, MHD_GET_ARGUMENT_KIND) > HTTP_MAX_URI_BYTES)
		return 414;
	return values_size(conn, MHD_HEADER_KIND) > HTTP_MAX_HEADER_BYTES ? 431 : 0;
}

unsigned http_req_oversize(const struct http_req *r) { return r->oversize; }

/* A query argument decoded from %00 would be cut at its NUL by every
 * lookup (a filter "tcp%00udp" read as "tcp"): it is found here, by the
 * lengths libmicrohttpd keeps, and refused before the handler runs. */
static enum MHD_Result find_nul_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				    size_t key_size, const char *value, size_t value_size)
{
	struct http_req *r = cls;
	(void)kind;
	if (memchr(key, '\0', key_size) || (value && memchr(value, '\0', value_size))) {
		size_t n = strnlen(key, sizeof(r->nul_arg) - 1);
		memcpy(r->nul_arg, key, n);
		r->nul_arg[n] = '\0';
		if (!n)
			snprintf(r->nul_arg, sizeof(r->nul_arg), "%s", "(unnamed)");
		return MHD_NO;
	}
	return MHD_YES;
}

const char *http_req_nul_arg(const struct http_req *r)
{
	return r->nul_arg[0] ? r->nul_arg : NULL;
}

static struct conn_watch *watch_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void watch_set_waiting(struct MHD_Connection *conn, bool waiting)
{
	struct conn_watch *w = watch_of(conn);
	if (w)
		atomic_store(&w->waiting_since_ns, waiting ? mono_ns() : 0);
}

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (b->sa_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
	return true;
}

/* The accept policy: an address gets at most max_per_client connections,
 * and the last quarter of max_connections only goes to addresses that
 * hold none, so that a few addresses holding slow connections cannot
 * starve the others. Runs on the listening thread, as the connection
 * notifications do, so the counts are those of every accepted one. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct http_server *s = cls;
	(void)len;
	if (s->local)
		return MHD_YES;
	unsigned reserve = s->max_connections / 4 ? s->max_connections / 4 : 1, mine = 0;
	pthread_mutex_lock(&s->lock);
	for (struct conn_watch *w = s->conns; w; w = w->next)
		mine += same_host(&w->addr, addr);
	bool ok = !(s->limits.max_per_client && mine >= s->limits.max_per_client) &&
		  !(mine && s->nconns + reserve >= s->max_connections);
	pthread_mutex_unlock(&s->lock);
	if (!ok)
		log_debug("http: %u connections from one address, %u in all: connection refused",
			  mine, s->nconns);
	return ok ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct http_server *s = cls;
	struct conn_watch *w = *socket_context;
	unsigned timeout_s;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ai =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (!ci || !(w = calloc(1, sizeof(*w))))
			return; /* unwatched: the idle timeout still applies */
		w->srv = s;
		w->fd = ci->connect_fd;
		if (ai && ai->client_addr)
			memcpy(&w->addr, ai->client_addr,
			       ai->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
			       ai->client_addr->sa_family == AF_INET  ? sizeof(struct sockaddr_in) :
									sizeof(sa_family_t));
		atomic_init(&w->waiting_since_ns, mono_ns());
		pthread_mutex_lock(&s->lock);
		timeout_s = s->limits.timeout_s;
		s->nconns++;
		w->next = s->conns;
		if (s->conns)
			s->conns->prev = w;
		else if (s->watchdog_running)
			pthread_cond_signal(&s->wake); /* it sleeps while there is none */
		s->conns = w;
		pthread_mutex_unlock(&s->lock);
		*socket_context = w;
		/* Outside our lock: this takes libmicrohttpd's. */
		MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, timeout_s);
	} else if (w) { /* closed; libmicrohttpd closes the socket after this */
		pthread_mutex_lock(&s->lock);
		s->nconns--;
		if (w->prev)
			w->prev->next = w->next;
		else
			s->conns = w->next;
		if (w->next)
			w->next->prev = w->prev;
		pthread_mutex_unlock(&s->lock);
		free(w);
		*socket_context = NULL;
	}
}

static bool headers_overdue(const struct http_server *s, struct conn_watch *w, uint64_t now)
{
	uint64_t since = atomic_load(&w->waiting_since_ns);
	/* since may be newer than now: set after now was read. */
	if (!since || since > now || now - since < s->limits.header_timeout_ms * 1000000u)
		return false;
	log_debug("http: request headers not in after %" PRIu64 " ms: connection closed",
		  s->limits.header_timeout_ms);
	return true;
}

/* Judges a body at the end of each period of body_timeout_ms: too few
 * bytes came in it, and the connection goes. While our consumer holds
 * bytes, a new period starts: the client cannot send meanwhile. */
static bool body_too_slow(const struct http_server *s, struct conn_watch *w, uint64_t now)
{
	uint64_t since = atomic_load(&w->body_since_ns), bytes = atomic_load(&w->body_bytes);
	uint64_t period_ms = s->limits.body_timeout_ms;
	if (!since || since > now || !period_ms)
		return false;
	if (w->mark_body != since) {
		w->mark_body = since;
		w->mark_ns = since;
		w->mark_bytes = 0;
	}
	if (atomic_load(&w->consuming) || now - w->mark_ns < period_ms * 1000000u) {
		if (atomic_load(&w->consuming))
			w->mark_ns = now, w->mark_bytes = bytes;
		return false;
	}
	uint64_t need = s->limits.body_min_rate * period_ms / 1000u;
	if (bytes - w->mark_bytes >= (need ? need : 1)) {
		w->mark_ns = now;
		w->mark_bytes = bytes;
		return false;
	}
	log_info("http: request body: %" PRIu64 " bytes in %" PRIu64 " ms, under %" PRIu64
		 " bytes/s: connection closed",
		 bytes - w->mark_bytes, period_ms, s->limits.body_min_rate);
	return true;
}

/* Shuts down the sockets of connections whose headers are overdue or
 * whose body is too slow; their threads then see the end of the stream
 * and close them. Under s->lock, so no socket is closed (and its number
 * reused) meanwhile. */
static void cut_overdue(struct http_server *s)
{
	uint64_t now = mono_ns();
	for (struct conn_watch *w = s->conns; w; w = w->next) {
		if (w->cut || !(headers_overdue(s, w, now) || body_too_slow(s, w, now)))
			continue;
		w->cut = true;
		shutdown(w->fd, SHUT_RDWR);
	}
}

#define WATCHDOG_PERIOD_NS (100u * 1000000u)

/* Every WATCHDOG_PERIOD_NS while there are connections; an idle server
 * does not wake it. */
static void *watchdog_main(void *arg)
{
	struct http_server *s = arg;
	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		if (!s->conns) {
			pthread_cond_wait(&s->wake, &s->lock);
			continue;
		}
		struct timespec until = mono_deadline(WATCHDOG_PERIOD_NS);
		pthread_cond_timedwait(&s->wake, &s->lock, &until);
		cut_overdue(s);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int watchdog_start(struct http_server *s)
{
	int err = mono_cond_init(&s->wake);
	if (err)
		return err;
	if ((err = pthread_create(&s->watchdog, NULL, watchdog_main, s)) != 0) {
		pthread_cond_destroy(&s->wake);
		return -err;
	}
	s->watchdog_running = true;
	return 0;
}

static void watchdog_stop(struct http_server *s)
{
	if (!s->watchdog_running)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->watchdog, NULL);
	pthread_cond_destroy(&s->wake);
	s->watchdog_running = false;
}

static bool has_body(struct MHD_Connection *conn)
{
	const char *len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_CONTENT_LENGTH);
	return (len && strcmp(len, "0") != 0) ||
	       MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/*
 * An answer decided before the body was read (a refused scope, a bad
 * parameter) goes out after the body when the body is small enough to be
 * sent whole by a client that does not wait for "100 Continue" (curl
 * waits above 1 MiB): closing on unread bytes resets the connection, and
 * the reset can reach the client before it reads the answer.
 */
#define DRAIN_MAX (1u << 20)

static bool small_body(struct MHD_Connection *conn)
{
	const char *len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end = NULL;
	unsigned long long n = len ? strtoull(len, &end, 10) : 0;
	return len && *len >= '0' && *len <= '9' && end && *end == '\0' && n <= DRAIN_MAX &&
	       !MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
					    MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_req *r = *con_cls;
	(void)version;
	if (!r) {
		watch_set_waiting(conn, false);
		if (!(r = req_new(s, conn, url, method)))
			return MHD_NO;
		r->watch = watch_of(conn);
		*con_cls = r;
		r->oversize = oversize(conn, url);
		MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, find_nul_arg, r);
		s->handler(s->app, r);
		/* libmicrohttpd closes the connection after a response queued
		 * in this first call (it cannot tell where the next request
		 * starts). That is right for a body that will not be read; a
		 * request without one is answered on the next call, which
		 * follows at once, and its connection stays open. */
		bool early = r->resp && has_body(conn);
		if (early && !r->body && !r->form && small_body(conn)) {
			r->discard = true; /* read to its end, then answered */
			watch_body(r, mono_ns());
			return MHD_YES;
		}
		if (early || (!r->resp && !r->body && !r->form))
			return queue(r);
		r->deferred = r->resp != NULL;
		if (!r->deferred)
			watch_body(r, mono_ns());
		return MHD_YES;
	}
	if (r->responded)
		return MHD_YES;
	if (r->deferred)
		return queue(r);
	if (*upload_data_size) {
		feed(r, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	watch_body(r, 0);
	end_body(r);
	return queue(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_req *r = *con_cls;
	(void)cls, (void)toe;
	watch_set_waiting(conn, true); /* for the next request's headers */
	if (!r)
		return;
	watch_body(r, 0);
	if (r->pp)
		MHD_destroy_post_processor(r->pp);
	const struct http_body_ops *b = r->body;
	const struct http_form_ops *f = r->form;
	if (b && b->free)
		b->free(r->body_ctx);
	else if (f && f->free)
		f->free(r->body_ctx);
	if (r->resp)
		MHD_destroy_response(r->resp);
	free(r->path);
	free(r->method);
	free(r);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	log_debug("http: %s", msg);
}

static struct tls_cert *tls_cert_free(struct tls_cert *c)
{
	while (c) {
		struct tls_cert *older = c->older;
		for (unsigned i = 0; i < c->n; i++)
			gnutls_pcert_deinit(&c->chain[i]);
		if (c->key)
			gnutls_privkey_deinit(c->key);
		free(c);
		c = older;
	}
	return NULL;
}

/* Checks that the key belongs to the certificate (as GnuTLS itself does
 * when it loads a pair), then loads both for the callback. */
static int tls_cert_load(struct tls_cert **out, const char *cert_pem, const char *key_pem,
			 struct errbuf *eb)
{
	gnutls_datum_t cd = { (unsigned char *)cert_pem, (unsigned)strlen(cert_pem) };
	gnutls_datum_t kd = { (unsigned char *)key_pem, (unsigned)strlen(key_pem) };
	gnutls_certificate_credentials_t pair;
	if (gnutls_certificate_allocate_credentials(&pair) < 0)
		return errbuf_set(eb, -ENOMEM, "TLS: out of memory");
	int rc = gnutls_certificate_set_x509_key_mem(pair, &cd, &kd, GNUTLS_X509_FMT_PEM);
	gnutls_certificate_free_credentials(pair);
	struct tls_cert *c = rc < 0 ? NULL : calloc(1, sizeof(*c));
	if (c) {
		unsigned n = TLS_MAX_CHAIN;
		rc = gnutls_pcert_list_import_x509_raw(c->chain, &n, &cd, GNUTLS_X509_FMT_PEM, 0);
		c->n = rc < 0 ? 0 : n;
		if (rc >= 0 && (rc = gnutls_privkey_init(&c->key)) >= 0)
			rc = gnutls_privkey_import_x509_raw(c->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
	}
	if (rc < 0 || !c) {
		tls_cert_free(c);
		return rc < 0 ? errbuf_set(eb, -EINVAL, "TLS certificate and key: %s",
					   gnutls_strerror(rc)) :
				errbuf_set(eb, -ENOMEM, "TLS: out of memory");
	}
	*out = c;
	return 0;
}

/* GnuTLS asks for the certificate at each handshake. libmicrohttpd sets
 * the session's pointer to the connection, whose socket context is ours. */
static int tls_pick_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
			 const gnutls_pk_algorithm_t *algos, int nalgos, gnutls_pcert_st **chain,
			 unsigned *n, gnutls_privkey_t *key)
{
	struct MHD_Connection *conn = gnutls_session_get_ptr(session);
	struct conn_watch *w = conn ? watch_of(conn) : NULL;
	(void)req_ca_dn, (void)nreqs, (void)algos, (void)nalgos;
	if (!w)
		return -1;
	pthread_mutex_lock(&w->srv->lock);
	struct tls_cert *c = w->srv->cert;
	if (c) {
		*chain = c->chain;
		*n = c->n;
		*key = c->key;
	}
	pthread_mutex_unlock(&w->srv->lock);
	return c ? 0 : -1;
}

int http_server_set_tls(struct http_server *s, const char *cert_pem, const char *key_pem,
			struct errbuf *eb)
{
	struct tls_cert *c = NULL;
	if (!s->cert)
		return errbuf_set(eb, -ENOTSUP, "this listener does not use TLS");
	int err = tls_cert_load(&c, cert_pem, key_pem, eb);
	if (err)
		return err;
	pthread_mutex_lock(&s->lock);
	c->older = s->cert;
	s->cert = c;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void http_server_set_limits(struct http_server *s, const struct http_limits *l)
{
	pthread_mutex_lock(&s->lock);
	s->limits = *l;
	pthread_mutex_unlock(&s->lock);
}

static struct MHD_Daemon *start_mhd(struct http_server *s, const struct http_listen_cfg *cfg)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_ERROR_LOG | (s->cert ? MHD_USE_TLS : 0);
	/* The per-address limit and the idle timeout are ours (on_accept,
	 * on_connection), so that they can change while running. */
	return MHD_start_daemon(
		flags, 0, on_accept, s, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_LISTEN_SOCKET, cfg->fd, MHD_OPTION_CONNECTION_LIMIT,
		cfg->max_connections, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
		/* A request's head must fit in this for libmicrohttpd to hand
		 * it to us at all: over it, libmicrohttpd answers 414 or 431
		 * itself, with its own HTML. 128 KiB holds the 48 KiB we accept
		 * and lets heads to about 120 KiB be refused by the handler in
		 * the API's JSON; the memory stays bounded per connection. The
		 * cost: libmicrohttpd zeroes the whole buffer after every
		 * request on a kept-alive connection (at 128 KiB, 6% of the CPU
		 * of GET /v1/captures?limit=50 in our measure). Upload
		 * bodies arrive in pieces of at most this buffer, which the
		 * import pass gathers into 1 MiB. */
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128u << 10),
		s->cert ? MHD_OPTION_HTTPS_PRIORITIES : MHD_OPTION_END, tls_priorities,
		MHD_OPTION_HTTPS_CERT_CALLBACK, tls_pick_cert, MHD_OPTION_END);
}

int http_server_new(struct http_server **out, const struct http_listen_cfg *cfg,
		    http_handler_fn handler, void *app, struct errbuf *eb)
{
	struct http_server *s = calloc(1, sizeof(*s));
	int err = s ? 0 : errbuf_set(eb, -ENOMEM, "HTTP server: out of memory");
	if (s) {
		s->local = cfg->local;
		s->handler = handler;
		s->responded = cfg->responded;
		s->app = app;
		s->max_connections = cfg->max_connections;
		s->limits = cfg->limits;
		pthread_mutex_init(&s->lock, NULL);
		if (cfg->tls_cert)
			err = tls_cert_load(&s->cert, cfg->tls_cert, cfg->tls_key, eb);
		if (!err && (err = watchdog_start(s)))
			errbuf_set(eb, err, "HTTP server: %s", strerror(-err));
	}
	if (!err && !(s->daemon = start_mhd(s, cfg)))
		err = errbuf_set(eb, -EIO, "libmicrohttpd could not start%s",
				 s->cert ? " (check the TLS certificate and key)" : "");
	if (err) {
		close(cfg->fd);
		http_server_free(s);
		return err;
	}
	*out = s;
	return 0;
}

struct http_server *http_server_free(struct http_server *s)
{
	if (!s)
		return NULL;
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	watchdog_stop(s);
	tls_cert_free(s->cert);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return NULL;
}
