/*
 * urlfetch.c - see urlfetch.h.
 */
#include "urlfetch.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void init_curl(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The parts of a URL that decide whether it is allowed. */
struct url_parts {
	char *scheme, *host, *port, *path;
};

static void parts_free(struct url_parts *p)
{
	curl_free(p->scheme);
	curl_free(p->host);
	curl_free(p->port);
	curl_free(p->path);
	memset(p, 0, sizeof(*p));
}

static int parts_get(const char *url, struct url_parts *p)
{
	CURLU *u = curl_url();
	int err = -EINVAL;
	memset(p, 0, sizeof(*p));
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &p->scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &p->host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &p->port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &p->path, 0) == CURLUE_OK)
		err = 0;
	curl_url_cleanup(u);
	if (err)
		parts_free(p);
	return err;
}

int urlfetch_allowed(const char *url, const char *const *allow, size_t nallow,
		     const char **matched)
{
	struct url_parts want, pre;
	int err = parts_get(url, &want);
	if (err)
		return err;
	err = -EPERM;
	for (size_t i = 0; i < nallow && err; i++) {
		if (parts_get(allow[i], &pre) < 0)
			continue;
		if (!strcasecmp(want.scheme, pre.scheme) && !strcasecmp(want.host, pre.host) &&
		    !strcmp(want.port, pre.port) && !strncmp(want.path, pre.path, strlen(pre.path))) {
			err = 0;
			*matched = allow[i];
		}
		parts_free(&pre);
	}
	parts_free(&want);
	return err;
}

/* Loopback, link-local, private, CGNAT, multicast, unspecified,
 * broadcast: what a server must not be made to reach on a client's
 * behalf. */
static bool v4_refused(uint32_t a)
{
	return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||
	       (a >> 16) == 0xa9fe || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8 ||
	       (a >> 22) == (0x64400000u >> 22) || (a >> 28) >= 0xe;
}

static bool addr_refused(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return v4_refused(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
	if (sa->sa_family != AF_INET6)
		return true;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a) || IN6_IS_ADDR_V4COMPAT(a)) {
		uint32_t v4;
		memcpy(&v4, &a->s6_addr[12], 4);
		return v4_refused(ntohl(v4));
	}
	return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
	       IN6_IS_ADDR_SITELOCAL(a) || IN6_IS_ADDR_MULTICAST(a) ||
	       (a->s6_addr[0] & 0xfe) == 0xfc; /* unique local fc00::/7 */
}

/* Whether the address is the one the allowed prefix names literally. */
static bool addr_is_host(const struct sockaddr *sa, const char *host)
{
	char lit[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(host);
	/* CURLU gives IPv6 hosts in brackets. */
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof(lit)) {
		memcpy(lit, host + 1, len - 2);
		lit[len - 2] = '\0';
		host = lit;
	}
	if (sa->sa_family == AF_INET) {
		struct in_addr want;
		return inet_pton(AF_INET, host, &want) == 1 &&
		       want.s_addr == ((const struct sockaddr_in *)sa)->sin_addr.s_addr;
	}
	struct in6_addr want6;
	return sa->sa_family == AF_INET6 && inet_pton(AF_INET6, host, &want6) == 1 &&
	       !memcmp(&want6, &((const struct sockaddr_in6 *)sa)->sin6_addr, sizeof(want6));
}

struct fetch {
	int fd;
	uint64_t got, max;
	bool too_big, write_failed, refused;
	char allowed_host[256];
	char refused_addr[INET6_ADDRSTRLEN];
};

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct fetch *f = clientp;
	(void)purpose;
	if (addr_refused(&a->addr) && !addr_is_host(&a->addr, f->allowed_host)) {
		const void *raw = a->family == AF_INET ?
					  (const void *)&((struct sockaddr_in *)&a->addr)->sin_addr :
					  (const void *)&((struct sockaddr_in6 *)&a->addr)->sin6_addr;
		if (!inet_ntop(a->family, raw, f->refused_addr, sizeof(f->refused_addr)))
			snprintf(f->refused_addr, sizeof(f->refused_addr), "?");
		f->refused = true;
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static size_t write_body(char *ptr, size_t size, size_t n, void *userdata)
{
	struct fetch *f = userdata;
	size_t len = size * n;
	if (f->got + len > f->max) {
		f->too_big = true;
		return 0;
	}
	f->got += len;
	for (const char *p = ptr; len > 0;) {
		ssize_t w = write(f->fd, p, len);
		if (w < 0) {
			f->write_failed = true;
			return 0;
		}
		p += w;
		len -= (size_t)w;
	}
	return size * n;
}

static int setup(CURL *h, const char *url, const struct urlfetch_opts *o, struct fetch *f)
{
	CURLcode rc = CURLE_OK;
#define SET(opt, val) (rc = rc == CURLE_OK ? curl_easy_setopt(h, opt, val) : rc)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
	SET(CURLOPT_OPENSOCKETDATA, f);
	SET(CURLOPT_WRITEFUNCTION, write_body);
	SET(CURLOPT_WRITEDATA, f);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)(o->max_bytes > INT64_MAX ? INT64_MAX : o->max_bytes));
	SET(CURLOPT_CONNECTTIMEOUT, (long)o->connect_timeout_s);
	SET(CURLOPT_LOW_SPEED_LIMIT, (long)(o->min_rate ? o->min_rate : 1));
	SET(CURLOPT_LOW_SPEED_TIME, (long)o->slow_time_s);
	SET(CURLOPT_USERAGENT, "capvault/" CAPVAULT_VERSION);
	SET(CURLOPT_FAILONERROR, 0L);
#undef SET
	return rc == CURLE_OK ? 0 : -ENOTSUP;
}

static int fetch_result(CURL *h, CURLcode rc, struct fetch *f, struct errbuf *eb)
{
	long status = 0;
	if (f->refused)
		return errbuf_set(eb, -EPERM,
				  "url: the server's address %s is loopback, link-local or private, "
				  "and the allowed prefix does not name it",
				  f->refused_addr);
	if (f->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		return errbuf_set(eb, -EFBIG, "url: the capture is larger than api.max_upload_size");
	if (f->write_failed)
		return errbuf_set(eb, -EIO, "url: cannot write the download");
	if (rc != CURLE_OK)
		return errbuf_set(eb, rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO, "url: %s",
				  curl_easy_strerror(rc));
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return errbuf_set(eb, -EIO, "url: the server answered HTTP %ld%s", status,
				  status >= 300 && status < 400 ? " (redirects are not followed)" : "");
	return 0;
}

int urlfetch_to_fd(const char *url, const struct urlfetch_opts *o, int fd, struct errbuf *eb)
{
	const char *matched = NULL;
	struct url_parts pre;
	struct fetch f = { .fd = fd, .max = o->max_bytes };
	int err = urlfetch_allowed(url, o->allow, o->nallow, &matched);
	if (err == -EINVAL)
		return errbuf_set(eb, err, "url: not a URL");
	if (err)
		return errbuf_set(eb, err, "url: not under an allowed prefix (cloudshark.url_upload_allow)");
	if ((err = parts_get(matched, &pre)) < 0)
		return errbuf_set(eb, err, "url: bad allowed prefix");
	snprintf(f.allowed_host, sizeof(f.allowed_host), "%s", pre.host);
	parts_free(&pre);
	pthread_once(&curl_once, init_curl);
	if (curl_init_result != CURLE_OK)
		return errbuf_set(eb, -EIO, "url: libcurl: %s", curl_easy_strerror(curl_init_result));
	CURL *h = curl_easy_init();
	if (!h)
		return errbuf_set(eb, -ENOMEM, "out of memory");
	err = setup(h, url, o, &f);
	if (err)
		errbuf_set(eb, err, "url: libcurl lacks an option we need");
	else
		err = fetch_result(h, curl_easy_perform(h), &f, eb);
	curl_easy_cleanup(h);
	return err;
}

char *urlfetch_file_name(const char *url)
{
	struct url_parts p;
	char *name = NULL;
	if (parts_get(url, &p) < 0)
		return NULL;
	const char *slash = strrchr(p.path, '/');
	const char *last = slash ? slash + 1 : p.path;
	if (*last) {
		int len = 0;
		char *dec = curl_easy_unescape(NULL, last, 0, &len);
		if (dec && len > 0 && !memchr(dec, '\0', (size_t)len))
			name = strdup(dec);
		curl_free(dec);
	}
	parts_free(&p);
	return name;
}
