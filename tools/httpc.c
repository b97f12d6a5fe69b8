/*
 * httpc.c - the CLI's HTTP/1.1 client (see httpc.h); TLS through the
 * caller's httpc_tls_ops.
 *
 * One connection, kept alive between requests; a response body the
 * caller left unread is drained (or the connection reopened) before the
 * next request. Reads go through one 64 KiB buffer; writes go straight
 * to the socket, so memory does not grow with the bodies.
 */
#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cleanup.h"

#define RBUF_SIZE (64u * 1024)
#define HBUF_SIZE (16u * 1024)
#define MAX_HEADERS 64
#define BODY_CHUNK (256u * 1024)
#define DRAIN_MAX (1u << 20) /* more unread body than this: reconnect instead */

enum framing { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

struct httpc {
	/* the target, copied */
	char *unix_path, *host, *cacert, *prefix;
	unsigned port;
	bool tls;
	const struct httpc_tls_ops *tls_ops;
	/* the connection */
	int fd;
	struct httpc_tls *tls_state; /* kept across reconnections */
	bool tls_up;                 /* the session runs: reads and writes go through it */
	bool keep;      /* the last response allows another request */
	char rbuf[RBUF_SIZE];
	size_t rpos, rlen;
	/* the current response */
	char hbuf[HBUF_SIZE];
	size_t hlen;
	const char *hname[MAX_HEADERS], *hval[MAX_HEADERS];
	size_t nheaders;
	enum framing framing;
	uint64_t left;  /* BODY_LENGTH: bytes; BODY_CHUNKED: of this chunk */
	bool body_done;
};

/* ---- URLs ---- */

int httpc_parse_url(const char *url, struct httpc_target *t, char **storage, struct errbuf *eb)
{
	*t = (struct httpc_target){ .prefix = "" };
	bool tls = strncmp(url, "https://", 8) == 0;
	if (!tls && strncmp(url, "http://", 7) != 0)
		return errbuf_set(eb, -EINVAL, "%s: the URL must start with http:// or https://", url);
	const char *rest = url + (tls ? 8 : 7);
	size_t n = strlen(rest);
	/* host part, NUL, prefix (with its leading '/', without trailing ones), NUL */
	char *s = *storage = calloc(1, n + 2);
	if (!s)
		return -ENOMEM;
	const char *slash = strchr(rest, '/');
	size_t hostlen = slash ? (size_t)(slash - rest) : n;
	memcpy(s, rest, hostlen);
	if (slash) {
		char *pre = s + hostlen + 1;
		memcpy(pre, slash, n - hostlen);
		size_t plen = n - hostlen;
		while (plen > 0 && pre[plen - 1] == '/')
			pre[--plen] = '\0';
		t->prefix = pre;
	}
	char *port = NULL;
	if (s[0] == '[') {
		char *end = strchr(s, ']');
		if (!end)
			return errbuf_set(eb, -EINVAL, "%s: unclosed '[' in the host", url);
		*end = '\0';
		t->host = s + 1;
		port = end[1] == ':' ? end + 2 : NULL;
	} else {
		t->host = s;
		if ((port = strchr(s, ':')))
			*port++ = '\0';
	}
	t->tls = tls;
	t->port = tls ? 443 : 80;
	if (port) {
		char *end;
		unsigned long p = strtoul(port, &end, 10);
		if (*end || !*port || p == 0 || p > 65535)
			return errbuf_set(eb, -EINVAL, "%s: bad port '%s'", url, port);
		t->port = (unsigned)p;
	}
	if (!*t->host)
		return errbuf_set(eb, -EINVAL, "%s: no host", url);
	return 0;
}

static void put_encoded(FILE *f, const char *s, bool in_segment)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || strchr("-._~", *p) ||
			     (!in_segment && strchr(",:@/", *p));
		if (plain)
			fputc(*p, f);
		else
			fprintf(f, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
	}
}

void httpc_put_arg(FILE *f, char sep, const char *key, const char *value)
{
	fprintf(f, "%c%s=", sep, key);
	put_encoded(f, value, false);
}

void httpc_put_segment(FILE *f, const char *s)
{
	put_encoded(f, s, true);
}

/* ---- transport ---- */

static int connect_unix(struct httpc *c, struct errbuf *eb)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(c->unix_path) >= sizeof(sa.sun_path))
		return errbuf_set(eb, -ENAMETOOLONG, "%s: socket path too long", c->unix_path);
	memcpy(sa.sun_path, c->unix_path, strlen(c->unix_path) + 1);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return errbuf_set(eb, -errno, "%s: %s", c->unix_path, strerror(errno));
	c->fd = TAKE_FD(fd);
	return 0;
}

static int connect_tcp(struct httpc *c, struct errbuf *eb)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%u", c->port);
	int gai = getaddrinfo(c->host, port, &hints, &res);
	if (gai)
		return errbuf_set(eb, -EHOSTUNREACH, "%s: %s", c->host, gai_strerror(gai));
	int err = -EHOSTUNREACH;
	for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			c->fd = fd;
			break;
		}
		err = -errno;
		if (fd >= 0)
			close(fd);
	}
	freeaddrinfo(res);
	if (c->fd < 0)
		return errbuf_set(eb, err, "%s port %u: %s", c->host, c->port, strerror(-err));
	if (!c->tls)
		return 0;
	err = c->tls_ops->start(&c->tls_state, c->fd, c->host, c->cacert, eb);
	c->tls_up = err == 0;
	return err;
}

static void disconnect(struct httpc *c)
{
	if (c->tls_state)
		c->tls_ops->stop(c->tls_state);
	c->tls_up = false;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->rpos = c->rlen = 0;
	c->keep = false;
}

static int reconnect(struct httpc *c, struct errbuf *eb)
{
	disconnect(c);
	int err = c->unix_path ? connect_unix(c, eb) : connect_tcp(c, eb);
	if (err)
		disconnect(c);
	else
		c->keep = true;
	return err;
}

static int raw_write(struct httpc *c, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n;
		if (c->tls_up) {
			n = c->tls_ops->write(c->tls_state, p, len);
			if (n < 0)
				return (int)n;
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static ssize_t raw_read(struct httpc *c, void *buf, size_t len)
{
	for (;;) {
		if (c->tls_up)
			return c->tls_ops->read(c->tls_state, buf, len);
		ssize_t n = read(c->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : n;
	}
}

static int fill(struct httpc *c)
{
	if (c->rpos < c->rlen)
		return 1;
	ssize_t n = raw_read(c, c->rbuf, sizeof(c->rbuf));
	if (n < 0)
		return (int)n;
	c->rpos = 0;
	c->rlen = (size_t)n;
	return n > 0;
}

/* One CRLF- (or LF-) terminated line into out. 0, -EPROTO or -errno. */
static int read_line(struct httpc *c, char *out, size_t max)
{
	size_t n = 0;
	for (;;) {
		int r = fill(c);
		if (r <= 0)
			return r < 0 ? r : -EPROTO;
		char ch = c->rbuf[c->rpos++];
		if (ch == '\n')
			break;
		if (n + 1 >= max)
			return -EPROTO;
		out[n++] = ch;
	}
	if (n && out[n - 1] == '\r')
		n--;
	out[n] = '\0';
	return 0;
}

/* ---- lifecycle ---- */

int httpc_connect(struct httpc **out, const struct httpc_target *t, struct errbuf *eb)
{
	struct httpc *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->port = t->port;
	c->tls = t->tls && !t->unix_path;
	c->tls_ops = t->tls_ops;
	if (c->tls && !c->tls_ops) {
		httpc_free(c);
		return errbuf_set(eb, -EPROTONOSUPPORT, "%s: https is not available here", t->host);
	}
	if ((t->unix_path && !(c->unix_path = strdup(t->unix_path))) ||
	    (t->host && !(c->host = strdup(t->host))) ||
	    (t->cacert && !(c->cacert = strdup(t->cacert))) ||
	    !(c->prefix = strdup(t->prefix ? t->prefix : ""))) {
		httpc_free(c);
		return -ENOMEM;
	}
	if (c->tls)
		signal(SIGPIPE, SIG_IGN); /* SSL_write has no MSG_NOSIGNAL */
	int err = reconnect(c, eb);
	if (err) {
		httpc_free(c);
		return err;
	}
	c->body_done = true;
	*out = c;
	return 0;
}

struct httpc *httpc_free(struct httpc *c)
{
	if (!c)
		return NULL;
	disconnect(c);
	if (c->tls_state)
		c->tls_ops->free(c->tls_state);
	free(c->unix_path);
	free(c->host);
	free(c->cacert);
	free(c->prefix);
	free(c);
	return NULL;
}

/* ---- requests ---- */

static int send_head(struct httpc *c, const struct httpc_request *req, int64_t size)
{
	_cleanup_free_ char *head = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&head, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: capvault/%s\r\n", req->method,
		c->prefix, req->target, c->unix_path ? "localhost" : c->host, CAPVAULT_VERSION);
	for (size_t i = 0; req->headers && req->headers[i]; i += 2)
		fprintf(f, "%s: %s\r\n", req->headers[i], req->headers[i + 1]);
	if (req->content_type)
		fprintf(f, "Content-Type: %s\r\n", req->content_type);
	if (size >= 0 && (req->body || req->body_fn))
		fprintf(f, "Content-Length: %" PRId64 "\r\n", size);
	else if (req->body_fn)
		fputs("Transfer-Encoding: chunked\r\n", f);
	fputs("\r\n", f);
	if (fclose(f) != 0)
		return -ENOMEM;
	return raw_write(c, head, len);
}

/* Streams body_fn's bytes, framed. -EPIPE when the server stopped reading. */
static int send_stream(struct httpc *c, const struct httpc_request *req, struct errbuf *eb)
{
	_cleanup_free_ char *buf = malloc(BODY_CHUNK + 32);
	uint64_t sent = 0;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = req->body_fn(req->body_opaque, buf + 16, BODY_CHUNK);
		if (n < 0) {
			if (!eb || !eb->msg[0])
				errbuf_set(eb, (int)n, "reading the upload: %s", strerror((int)-n));
			return (int)n;
		}
		if (req->body_size >= 0 && (n == 0 || sent + (uint64_t)n > (uint64_t)req->body_size)) {
			if (n == 0 && sent == (uint64_t)req->body_size)
				return 0;
			return errbuf_set(eb, -EIO, "the upload changed size while being sent");
		}
		int err;
		if (req->body_size >= 0) {
			err = raw_write(c, buf + 16, (size_t)n);
		} else {
			int h = snprintf(buf, 16, "%zx\r\n", (size_t)n);
			memmove(buf + 16 - h, buf, (size_t)h);
			memcpy(buf + 16 + n, "\r\n", 2);
			err = raw_write(c, buf + 16 - h, (size_t)h + (size_t)n + 2);
			if (!err && n == 0)
				return 0;
		}
		if (err)
			return err;
		sent += (uint64_t)n;
	}
}

static int parse_status(const char *line, int *status, bool *http11)
{
	unsigned major, minor, st;
	if (sscanf(line, "HTTP/%1u.%1u %3u", &major, &minor, &st) != 3 || st < 100 || st > 599)
		return -EPROTO;
	*status = (int)st;
	*http11 = major == 1 && minor >= 1;
	return 0;
}

static int read_headers(struct httpc *c)
{
	char line[8192];
	c->hlen = 0;
	c->nheaders = 0;
	for (;;) {
		int err = read_line(c, line, sizeof(line));
		if (err)
			return err;
		if (!line[0])
			return 0;
		char *colon = strchr(line, ':');
		size_t n = strlen(line) + 1;
		if (!colon || c->nheaders == MAX_HEADERS || c->hlen + n > sizeof(c->hbuf))
			continue; /* malformed or too many: ignored */
		char *copy = memcpy(c->hbuf + c->hlen, line, n);
		c->hlen += n;
		copy[colon - line] = '\0';
		char *v = copy + (colon - line) + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		c->hname[c->nheaders] = copy;
		c->hval[c->nheaders++] = v;
	}
}

const char *httpc_header(const struct httpc *c, const char *name)
{
	for (size_t i = 0; i < c->nheaders; i++)
		if (strcasecmp(c->hname[i], name) == 0)
			return c->hval[i];
	return NULL;
}

static void set_framing(struct httpc *c, const char *method, int status, bool http11)
{
	const char *te = httpc_header(c, "Transfer-Encoding");
	const char *cl = httpc_header(c, "Content-Length");
	const char *conn = httpc_header(c, "Connection");
	c->keep = http11 && !(conn && strcasecmp(conn, "close") == 0);
	c->body_done = false;
	if (!strcmp(method, "HEAD") || status == 204 || status == 304) {
		c->framing = BODY_NONE;
	} else if (te && strcasestr(te, "chunked")) {
		c->framing = BODY_CHUNKED;
		c->left = 0;
	} else if (cl) {
		c->framing = BODY_LENGTH;
		c->left = strtoull(cl, NULL, 10);
	} else {
		c->framing = BODY_CLOSE;
		c->keep = false;
	}
	if (c->framing == BODY_NONE || (c->framing == BODY_LENGTH && c->left == 0))
		c->body_done = true;
}

static int read_response(struct httpc *c, const char *method, struct errbuf *eb)
{
	char line[8192];
	int status;
	bool http11;
	do {
		int err = read_line(c, line, sizeof(line));
		if (!err)
			err = parse_status(line, &status, &http11);
		if (!err)
			err = read_headers(c);
		if (err) {
			c->keep = false;
			return errbuf_set(eb, err, "reading the response: %s",
					  err == -EPROTO ? "not an HTTP response (or the server left)" :
							   strerror(-err));
		}
	} while (status < 200);
	set_framing(c, method, status, http11);
	return status;
}

/* Makes the connection ready for a new request. */
static int ready(struct httpc *c, struct errbuf *eb)
{
	if (c->keep && !c->body_done) {
		char buf[8192];
		uint64_t drained = 0;
		ssize_t n;
		while ((n = httpc_read(c, buf, sizeof(buf), NULL)) > 0 && drained < DRAIN_MAX)
			drained += (uint64_t)n;
		if (n != 0)
			c->keep = false;
	}
	return c->keep && c->fd >= 0 ? 0 : reconnect(c, eb);
}

int httpc_send(struct httpc *c, const struct httpc_request *req, struct errbuf *eb)
{
	int err = ready(c, eb);
	if (err)
		return err;
	int64_t size = req->body ? (int64_t)req->body_len : req->body_fn ? req->body_size : -1;
	err = send_head(c, req, size);
	if (!err && req->body && req->body_len)
		err = raw_write(c, req->body, req->body_len);
	else if (!err && req->body_fn)
		err = send_stream(c, req, eb);
	if (err && err != -EPIPE && err != -ECONNRESET) {
		c->keep = false;
		if (!eb || !eb->msg[0])
			errbuf_set(eb, err, "sending the request: %s", strerror(-err));
		return err;
	}
	int status = read_response(c, req->method, eb);
	if (err && status < 0) /* the server left and said nothing */
		return errbuf_set(eb, err, "sending the request: %s", strerror(-err));
	if (err)
		c->keep = false; /* it answered early; the rest of our body is unsent */
	return status;
}

/* ---- response bodies ---- */

static ssize_t read_some(struct httpc *c, void *buf, size_t len)
{
	int r = fill(c);
	if (r <= 0)
		return r;
	size_t n = c->rlen - c->rpos < len ? c->rlen - c->rpos : len;
	memcpy(buf, c->rbuf + c->rpos, n);
	c->rpos += n;
	return (ssize_t)n;
}

static ssize_t read_chunked(struct httpc *c, void *buf, size_t len)
{
	char line[256];
	if (c->left == 0) {
		int err = read_line(c, line, sizeof(line));
		char *end;
		if (err)
			return err;
		c->left = strtoull(line, &end, 16);
		if (end == line)
			return -EPROTO;
		if (c->left == 0) {
			do /* trailers up to the empty line */
				err = read_line(c, line, sizeof(line));
			while (!err && line[0]);
			c->body_done = true;
			return err ? err : 0;
		}
	}
	ssize_t n = read_some(c, buf, c->left < len ? (size_t)c->left : len);
	if (n == 0)
		return -EPROTO;
	if (n > 0 && (c->left -= (uint64_t)n) == 0) {
		int err = read_line(c, line, sizeof(line));
		if (err || line[0])
			return err ? err : -EPROTO;
	}
	return n;
}

ssize_t httpc_read(struct httpc *c, void *buf, size_t len, struct errbuf *eb)
{
	ssize_t n = 0;
	if (c->body_done || len == 0)
		return 0;
	switch (c->framing) {
	case BODY_NONE: n = 0; break;
	case BODY_LENGTH:
		n = read_some(c, buf, c->left < len ? (size_t)c->left : len);
		if (n == 0)
			n = -EPROTO; /* closed before Content-Length bytes */
		else if (n > 0)
			c->left -= (uint64_t)n;
		c->body_done = n > 0 && c->left == 0;
		break;
	case BODY_CHUNKED: n = read_chunked(c, buf, len); break;
	case BODY_CLOSE:
		n = read_some(c, buf, len);
		c->body_done = n == 0;
		break;
	}
	if (n < 0) {
		c->keep = false;
		c->body_done = true;
		errbuf_set(eb, (int)n, "reading the response: %s",
			   n == -EPROTO ? "the server cut it short (a failure after its status "
					  "went out: capvaultd's log says why)" :
					  strerror((int)-n));
	}
	return n;
}

int httpc_read_all(struct httpc *c, size_t max, char **out, size_t *len, struct errbuf *eb)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	ssize_t r = 0;
	while (buf && (r = httpc_read(c, buf + n, cap - n, eb)) > 0) {
		n += (size_t)r;
		if (n > max) {
			free(buf);
			c->keep = false;
			return errbuf_set(eb, -EFBIG, "the response is over %zu bytes", max);
		}
		if (n == cap) {
			char *grown = realloc(buf, 2 * cap + 1);
			if (!grown)
				break;
			buf = grown;
			cap *= 2;
		}
	}
	if (!buf || r > 0) {
		free(buf);
		return -ENOMEM;
	}
	if (r < 0) {
		free(buf);
		return (int)r;
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}
