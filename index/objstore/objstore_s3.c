/*
 * objstore_s3.c - the S3 backend of objstore.h, on libcurl (the only file
 * that includes it), signed by libcurl itself (CURLOPT_AWS_SIGV4).
 *
 * Path-style URLs, endpoint/bucket/key, so a bucket name needs no DNS.
 * Every request carries x-amz-content-sha256, which RGW requires: the hash
 * of the body when known, else the empty body's. libcurl 7.88 signs the
 * query string as written, so queries are written canonical here: sorted,
 * "name=" for a bare name, values encoded with '/' as %2F.
 *
 * Confirmation of a put (objstore.h) without reading the object back: a
 * single PUT sends the object's name as its x-amz-content-sha256, and a
 * multipart upload sends each part's SHA-256 (hashed from the file just
 * before the part goes out, while the whole file's hash is checked against
 * the name), so the store itself refuses bytes that differ from what was
 * hashed (400 XAmzContentSHA256Mismatch); a HEAD then checks the size.
 * Measured against RGW 16.2 (loopback): the store's hashing costs a
 * signed upload up to a quarter of its time (see "Part size" for how
 * parts win it back), while reading back and hashing adds 35-130% of the
 * upload's time; RGW 16.2 ignores x-amz-checksum-sha256 (a wrong one is
 * accepted), so the flexible checksums cannot confirm anything.
 *
 * Part size: objects over part_size (32 MiB by default) go in parts (the
 * first two smaller, see part_nominal),
 * max_inflight at once. Measured against RGW 16.2 on loopback (512 MiB,
 * 2 cores, beast with tcp_nodelay=1): one signed PUT took 1.2-1.3 times as
 * long as curl -T with UNSIGNED-PAYLOAD, because RGW hashes the body in
 * the one thread that receives it; 32 or 64 MiB parts, 4 in flight, took
 * 1.0-1.1 times as long (RGW hashes parts on several threads), although
 * each part is hashed here first and the whole file once more. Memory
 * does not grow with the part size or the parts in flight: parts are
 * streamed from the file.
 *
 * Thread safety: a call takes curl handles from a locked pool of idle
 * ones and gives them back, so one handle (and its open connections) is
 * only ever in one thread's hands, and a query's many small reads do not
 * each pay a TCP and TLS handshake. libcurl's share object holds only TLS
 * sessions and DNS answers: its connection sharing is documented unsafe
 * between concurrent threads.
 */
#include "objstore_priv.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blockdig.h"
#include "cleanup.h"
#include "fdio.h"
#include "fdmap.h"
#include "monoclock.h"
#include "s3cred.h"
#include "s3prefix.h"
#include "s3xml.h"

#define PART_MIN (5ull << 20)       /* S3's smallest part but the last */
#define PART_MAX (5ull << 30)       /* S3's largest part, and largest single PUT */
#define PART_COUNT_MAX 10000        /* S3's most parts of one upload */
#define ANSWER_MAX (64u << 10)      /* kept of an error or a small XML answer */
#define LIST_ANSWER_MAX (8u << 20)  /* one ListObjectsV2 page (1000 keys) */
#define MERGE_GAP (64u << 10)       /* read a gap this small rather than ask twice */
#define MERGE_MAX (8u << 20)        /* longest merged range request */
/* A key, or its URL path (each byte up to 3 characters), with its NUL. */
#define KEY_MAX (3 * S3_PREFIX_MAX + S3_KEY_TAIL + 1)
#define POOL_MAX 16                 /* idle handles kept, each with its connections */
#define RECHECK_MS 10000            /* how often the credentials file is looked at */

/* SHA-256 of no bytes: the payload hash of GET, HEAD and DELETE. */
static const char empty_sha[] =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct s3 {
	struct objstore base;
	char *endpoint;   /* no trailing '/' */
	char *bucket;
	char *prefix;     /* as configured, for list's prefix= and relative keys */
	char *prefix_url; /* percent-encoded for the path */
	char *ca_file;
	struct keys {
		pthread_mutex_t lock;
		char *userpwd;      /* "access:secret" for libcurl's signer; wiped */
		char *token_header; /* "x-amz-security-token: ..." (signed), or NULL; wiped */
		/* Read again when it changes (temporary credentials renewed by
		 * another program); NULL when the keys came from the config. */
		char *file, *profile;
		struct stat seen; /* the file as last read */
		/* Why the file as it is now was not taken ("" when it was):
		 * a 401/403 then says so, since the keys in use are older than
		 * the file. Never a key (s3cred.h's messages hold none). */
		char refused[sizeof(((struct errbuf *)0)->msg)];
		double next_check;
		long recheck_ms;
		bool lock_ready;
	} keys;
	char sigv4[160];
	long connect_ms, request_ms;
	long read_ms; /* reads for queries and downloads (and stat): fail fast */
	unsigned max_inflight;
	uint64_t part_size;
	uint32_t list_page;
	CURLSH *share;
	pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
	bool locks_ready;
	struct pool {
		pthread_mutex_t lock;
		void *idle[POOL_MAX];
		unsigned n;
	} easies, multis;
};

/* One HTTP exchange and what came back. */
struct req {
	struct s3 *s3;
	CURL *h;
	struct curl_slist *hdrs;
	const char *method;
	const char *what;       /* the key, for messages */
	char *url;
	/* A 2xx body goes to data when set, else to answer (at most
	 * answer_max); a non-2xx body to answer, cut at ANSWER_MAX. */
	int (*data)(struct req *rq, const char *buf, size_t len);
	void *opaque;
	char *answer;
	size_t answer_len, answer_max;
	bool checked;           /* the status was looked at, at the first byte */
	long status;
	int cb_err;             /* why a callback stopped the transfer */
	struct errbuf *eb;      /* where a callback says why */
	char etag[80];
	char content_range[96];
	/* The upload's source: [up_off, up_off + up_len) of fd. */
	int fd;
	uint64_t up_off, up_len, up_done;
	char curl_err[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void hex32(const uint8_t sha[32], char out[65])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = digits[sha[i] >> 4];
		out[2 * i + 1] = digits[sha[i] & 15];
	}
	out[64] = '\0';
}

static bool unreserved(unsigned char ch)
{
	return isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* SigV4's URI encoding; '/' kept when keep_slash (paths), else %2F. */
static char *uri_encode(const char *s, bool keep_slash)
{
	char *out = malloc(strlen(s) * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (unreserved(*p) || (keep_slash && *p == '/'))
			*o++ = (char)*p;
		else
			o += snprintf(o, 4, "%%%02X", *p);
	}
	*o = '\0';
	return out;
}

/*
 * The object's key "<prefix>objects/ab/<hex>" (for messages) and its URL
 * path: 0, or an error rather than a key cut short, which would name
 * another object (all objects one key). objstore_s3_new() bounds the
 * prefix so that both fit; this is the check that none is ever sent cut.
 */
static int object_key(const struct s3 *s3, const uint8_t sha[32], char key[KEY_MAX],
		      char path[KEY_MAX], struct errbuf *eb)
{
	char hex[65];

	hex32(sha, hex);
	int k = snprintf(key, KEY_MAX, "%sobjects/%.2s/%s", s3->prefix, hex, hex);
	int u = snprintf(path, KEY_MAX, "%sobjects/%.2s/%s", s3->prefix_url, hex, hex);
	if (k < 0 || k > S3_KEY_MAX || u < 0 || u >= KEY_MAX)
		return errbuf_set(eb, -ENAMETOOLONG, "%s: object %s: its key would be longer "
				  "than S3's %d bytes", s3->base.description, hex, S3_KEY_MAX);
	return 0;
}

/* ---- one request ---- */

/* text into out when it fits whole, else "" (never cut short). */
static bool copy_whole(char *out, size_t size, const char *text)
{
	size_t n = strlen(text);

	if (n >= size) {
		out[0] = '\0';
		return false;
	}
	memcpy(out, text, n + 1);
	return true;
}

/* Text from the store's answer made fit for a message, in place: each
 * byte outside printable ASCII becomes '?'. The store is not ours to
 * trust, and its text goes on to `capvault status` and query errors on a
 * terminal, where a line break or an escape would pass for ours. */
static void shown_text(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

static size_t on_header(char *buf, size_t size, size_t n, void *opaque)
{
	struct req *rq = opaque;
	size_t len = size * n;
	char *value;

	if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {
		rq->etag[0] = rq->content_range[0] = '\0';
		return len;
	}
	char line[256];
	if (len >= sizeof(line))
		return len; /* no header we keep is this long: left out, never cut */
	size_t l = len;
	memcpy(line, buf, l);
	while (l && (line[l - 1] == '\r' || line[l - 1] == '\n'))
		l--;
	line[l] = '\0';
	value = strchr(line, ':');
	if (!value)
		return len;
	*value++ = '\0';
	while (*value == ' ')
		value++;
	/* One too long is left empty, not cut: a part without its ETag, or a
	 * range without its Content-Range, then fails with a message. */
	if (!strcasecmp(line, "etag"))
		copy_whole(rq->etag, sizeof(rq->etag), value);
	else if (!strcasecmp(line, "content-range")) {
		copy_whole(rq->content_range, sizeof(rq->content_range), value);
		shown_text(rq->content_range); /* it may be quoted in an error */
	}
	return len;
}

static int keep_answer(struct req *rq, const char *buf, size_t len, size_t max)
{
	if (rq->answer_len + len > max) {
		if (rq->status / 100 == 2)
			return errbuf_set(rq->eb, -EIO, "%s: %s %s: answer longer than %zu bytes",
					  rq->s3->base.description, rq->method, rq->what, max);
		len = max - rq->answer_len;
	}
	if (!len)
		return 0;
	char *grown = realloc(rq->answer, rq->answer_len + len + 1);
	if (!grown)
		return -ENOMEM;
	rq->answer = grown;
	memcpy(rq->answer + rq->answer_len, buf, len);
	rq->answer_len += len;
	rq->answer[rq->answer_len] = '\0';
	return 0;
}

static size_t on_body(char *buf, size_t size, size_t n, void *opaque)
{
	struct req *rq = opaque;
	size_t len = size * n;
	int r;

	if (!rq->checked) {
		curl_easy_getinfo(rq->h, CURLINFO_RESPONSE_CODE, &rq->status);
		rq->checked = true;
	}
	if (rq->status / 100 == 2 && rq->data)
		r = rq->data(rq, buf, len);
	else
		r = keep_answer(rq, buf, len, rq->status / 100 == 2 ? rq->answer_max : ANSWER_MAX);
	if (r == 0)
		return len;
	rq->cb_err = r;
	return len ? 0 : 1; /* anything but len fails the transfer */
}

static size_t on_upload(char *buf, size_t size, size_t n, void *opaque)
{
	struct req *rq = opaque;
	size_t want = size * n;
	uint64_t left = rq->up_len - rq->up_done;

	if (want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	ssize_t got;
	do
		got = pread(rq->fd, buf, want, (off_t)(rq->up_off + rq->up_done));
	while (got < 0 && errno == EINTR);
	if (got <= 0) {
		/* 0: the file is shorter than its size */
		rq->cb_err = errbuf_set(rq->eb, got < 0 ? -errno : -EIO,
					"%s: %s %s: reading the local copy at %" PRIu64 ": %s",
					rq->s3->base.description, rq->method, rq->what,
					rq->up_off + rq->up_done,
					got < 0 ? strerror(errno) : "shorter than its size");
		return CURL_READFUNC_ABORT;
	}
	rq->up_done += (uint64_t)got;
	return (size_t)got;
}

/* libcurl rewinds an upload it must send again (a reused connection
 * found closed): the source is read with pread, so this is a reset. */
static int on_seek(void *opaque, curl_off_t offset, int origin)
{
	struct req *rq = opaque;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > rq->up_len)
		return CURL_SEEKFUNC_CANTSEEK;
	rq->up_done = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

static void req_done(struct req *rq)
{
	/* The handle goes back to the pool: no pointer into rq may stay in it
	 * (the reset keeps its connections). */
	if (rq->h)
		curl_easy_reset(rq->h);
	curl_slist_free_all(rq->hdrs);
	free(rq->url);
	free(rq->answer);
	rq->hdrs = NULL;
	rq->url = rq->answer = NULL;
}

static int req_header(struct req *rq, const char *line)
{
	struct curl_slist *l = curl_slist_append(rq->hdrs, line);

	if (!l)
		return -ENOMEM;
	rq->hdrs = l;
	return 0;
}

/* ---- credentials ---- */

/* Under the lock, or before any request: the signer's strings of cred. */
static int keys_set(struct keys *k, const struct s3cred *cred)
{
	char *userpwd = NULL, *token = NULL;

	if (asprintf(&userpwd, "%s:%s", cred->access_key, cred->secret_key) < 0)
		return -ENOMEM;
	if (cred->session_token &&
	    asprintf(&token, "x-amz-security-token: %s", cred->session_token) < 0) {
		s3cred_wipe(userpwd);
		return -ENOMEM;
	}
	s3cred_wipe(k->userpwd);
	s3cred_wipe(k->token_header);
	k->userpwd = userpwd;
	k->token_header = token;
	return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Whether the file was last changed a second ago or more: one being
 * rewritten in place can parse with a value cut short. A time far in the
 * future (a clock set wrong) counts as settled. */
static bool settled(const struct stat *st)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	double age = (double)(now.tv_sec - st->st_mtim.tv_sec) +
		     (double)(now.tv_nsec - st->st_mtim.tv_nsec) / 1e9;
	return age >= 1 || age < -60;
}

/*
 * Under the lock: reads the credentials file again when it changed since
 * it was read, at most every recheck_ms, once it has settled and if it
 * did not change while read. A file that cannot be read or parsed then
 * leaves the keys in use, is tried again at the next check, and the
 * reason is kept for the refused requests' messages and the store's
 * state (the library logs nothing itself: its callers log the errors it
 * returns, and the daemon the state's changes).
 */
static void keys_reread(struct keys *k)
{
	struct stat before, after;
	struct s3cred cred = { 0 };
	struct errbuf eb = { "" };
	double t = mono_s();

	if (!k->file || t < k->next_check)
		return;
	k->next_check = t + (double)k->recheck_ms / 1000;
	if (stat(k->file, &before) < 0) {
		snprintf(k->refused, sizeof(k->refused), "credentials file %s: %s", k->file,
			 strerror(errno));
		return;
	}
	if (same_file(&before, &k->seen))
		k->refused[0] = '\0'; /* back as it was read */
	if (same_file(&before, &k->seen) || !settled(&before))
		return;
	int r = s3cred_load(&cred, k->file, k->profile, &eb);
	if (r == 0 && stat(k->file, &after) == 0 && same_file(&before, &after)) {
		r = keys_set(k, &cred);
		if (r == 0) {
			k->seen = before;
			k->refused[0] = '\0';
		}
	} else if (r == 0) {
		r = 1; /* changed while read: tried again, nothing to say yet */
	}
	if (r < 0)
		snprintf(k->refused, sizeof(k->refused), "%s",
			 eb.msg[0] ? eb.msg : strerror(-r));
	s3cred_clear(&cred);
}

/* keys_reread(); whether the reason the file is refused changed. */
static bool keys_refresh(struct keys *k)
{
	char before[sizeof(k->refused)];

	memcpy(before, k->refused, sizeof(before));
	keys_reread(k);
	return strcmp(before, k->refused) != 0;
}

/* The request's credentials: libcurl copies both strings. A change of
 * the credentials file's fate goes to the store's state (outside the
 * lock: the state's hook may log). */
static int keys_apply(struct s3 *s3, struct req *rq)
{
	struct keys *k = &s3->keys;
	char refused[sizeof(k->refused)];
	int r = 0;

	pthread_mutex_lock(&k->lock);
	bool changed = keys_refresh(k);
	if (changed)
		memcpy(refused, k->refused, sizeof(refused));
	if (curl_easy_setopt(rq->h, CURLOPT_USERPWD, k->userpwd) != CURLE_OK)
		r = -ENOMEM;
	/* libcurl signs every header it is given: the token is signed too,
	 * as temporary credentials require. */
	else if (k->token_header)
		r = req_header(rq, k->token_header);
	pthread_mutex_unlock(&k->lock);
	if (changed)
		objstore_note_credentials(&s3->base, refused);
	return r;
}

/*
 * Sets h up for one request: path is the URL-encoded key (or "" for the
 * bucket), query is canonical already (or NULL), payload is the hex
 * SHA-256 the body will have. limit_ms: the request's time limit, or
 * with stream (a transfer as long as an object) the longest a transfer
 * may stall (no byte moving), not its total time.
 */
static int req_init(struct req *rq, struct s3 *s3, CURL *h, const char *method,
		    const char *what, const char *path, const char *query, const char *payload,
		    bool stream, long limit_ms)
{
	char hdr[128];

	*rq = (struct req){ .s3 = s3, .h = h, .method = method, .what = what, .fd = -1,
			    .answer_max = ANSWER_MAX };
	if (asprintf(&rq->url, "%s/%s/%s%s%s", s3->endpoint, s3->bucket, path, query ? "?" : "",
		     query ? query : "") < 0) {
		rq->url = NULL;
		return -ENOMEM;
	}
	int n = snprintf(hdr, sizeof(hdr), "x-amz-content-sha256: %s", payload);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return -EINVAL; /* a payload hash is 64 hex digits */
	rq->hdrs = curl_slist_append(NULL, hdr);
	if (!rq->hdrs)
		return -ENOMEM;
	curl_easy_reset(h);
	if (keys_apply(s3, rq) < 0)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_URL, rq->url);
	/* The key as it is: libcurl would otherwise remove "." and ".."
	 * segments, and write to another key, or bucket, than the one named
	 * (objstore_s3_new() refuses such a prefix too). */
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_SHARE, s3->share);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Plain http is for a store on this host (the configuration allows
	 * no other): never through a proxy that http_proxy or ALL_PROXY
	 * names, which would carry the captures' bytes off it unencrypted.
	 * https may go through one, verified end to end. */
	if (!strncmp(s3->endpoint, "http://", 7))
		curl_easy_setopt(h, CURLOPT_PROXY, "");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s3->sigv4);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	/* ca_file alone: libcurl would also trust its built-in CA folder
	 * (Debian's /etc/ssl/certs), so a ca_file naming a private CA did not
	 * keep out a certificate any public CA signed. */
	if (s3->ca_file) {
		curl_easy_setopt(h, CURLOPT_CAINFO, s3->ca_file);
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, s3->connect_ms);
	if (stream) {
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (limit_ms + 999) / 1000);
	} else {
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, limit_ms);
	}
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, rq->curl_err);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, rq);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, rq);
	curl_easy_setopt(h, CURLOPT_PRIVATE, rq);
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	else if (!strcmp(method, "DELETE"))
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	return 0;
}

static void req_upload(struct req *rq, int fd, uint64_t off, uint64_t len)
{
	rq->fd = fd;
	rq->up_off = off;
	rq->up_len = len;
	curl_easy_setopt(rq->h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(rq->h, CURLOPT_READFUNCTION, on_upload);
	curl_easy_setopt(rq->h, CURLOPT_READDATA, rq);
	curl_easy_setopt(rq->h, CURLOPT_SEEKFUNCTION, on_seek);
	curl_easy_setopt(rq->h, CURLOPT_SEEKDATA, rq);
	curl_easy_setopt(rq->h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
}

static void req_post(struct req *rq, const char *body, size_t len)
{
	curl_easy_setopt(rq->h, CURLOPT_POST, 1L);
	curl_easy_setopt(rq->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(rq->h, CURLOPT_POSTFIELDS, body);
}

static int curl_errno(CURL *h, CURLcode cc)
{
	long os_errno = 0;

	switch (cc) {
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == EHOSTUNREACH || os_errno == ENETUNREACH)
			return -EHOSTUNREACH;
		return os_errno == ETIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		return -EPROTO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/*
 * code: the <Error><Code> of the answer, "" when none (a HEAD has no
 * body). Only a missing object is -ENOENT, which callers take for "gone
 * meanwhile, nothing to do": a missing bucket is -ENXIO, and another 404
 * (NoSuchUpload: an upload aborted under us) -EIO, so that both count as
 * failures and are tried again.
 */
/* Why the credentials file's latest version is not in use, into out
 * ("" when it is, or when the keys did not come from a file). */
static void keys_refused(struct s3 *s3, char *out, size_t size)
{
	pthread_mutex_lock(&s3->keys.lock);
	snprintf(out, size, "%s", s3->keys.refused);
	pthread_mutex_unlock(&s3->keys.lock);
}

static int status_errno(long status, const char *code)
{
	if (status == 404 && !strcmp(code, "NoSuchBucket"))
		return -ENXIO;
	if (status == 404)
		return !*code || !strcmp(code, "NoSuchKey") ? -ENOENT : -EIO;
	if (status == 401 || status == 403)
		return -EACCES;
	return -EIO;
}

/* What the exchange came to: 0 for a 2xx, else an errno and eb. */
static int req_outcome(struct req *rq, CURLcode cc, struct errbuf *eb)
{
	const char *desc = rq->s3->base.description;

	curl_easy_getinfo(rq->h, CURLINFO_RESPONSE_CODE, &rq->status);
	if (rq->cb_err == -ENOMEM)
		return -ENOMEM;
	if (rq->cb_err > 0)
		return rq->cb_err; /* the caller's fn stopped the stream */
	if (rq->cb_err < 0 && (cc == CURLE_WRITE_ERROR || cc == CURLE_ABORTED_BY_CALLBACK ||
			       cc == CURLE_READ_ERROR || cc == CURLE_OK))
		return rq->cb_err; /* the callback filled eb when it had more to say */
	if (cc != CURLE_OK)
		return errbuf_set(eb, curl_errno(rq->h, cc), "%s: %s %s: %s", desc, rq->method,
				  rq->what, rq->curl_err[0] ? rq->curl_err : curl_easy_strerror(cc));
	if (rq->status / 100 == 2)
		return 0;
	char code[128] = "";
	if (rq->answer && s3xml_find(rq->answer, rq->answer_len, 2, "Code", code, sizeof(code)))
		code[0] = '\0';
	shown_text(code);
	int err = status_errno(rq->status, code);
	char refused[sizeof(eb->msg)] = "", note[sizeof(refused) + 128] = "";
	if (err == -ENXIO)
		snprintf(note, sizeof(note), ": the store has no bucket '%s'", rq->s3->bucket);
	else if (err == -EACCES)
		keys_refused(rq->s3, refused, sizeof(refused));
	if (refused[0])
		snprintf(note, sizeof(note), " (older keys in use: the changed credentials file "
			 "was not taken: %s)", refused);
	return errbuf_set(eb, err, "%s: %s %s: HTTP %ld%s%s%s", desc, rq->method, rq->what,
			  rq->status, code[0] ? " " : "", code, note);
}

/*
 * What a 3xx or 400 answer says of the store's state: a redirect (AWS's
 * 301 PermanentRedirect to a wrong region) or a 400 that refuses the
 * configuration or the keys (AWS's AuthorizationHeaderMalformed to a
 * wrong region, ExpiredToken to temporary keys past their time, a bucket
 * name it rejects) is refused, as a 403 is: every request will get it.
 * Another 400 is about this request's body (its SHA-256, a part), and
 * the store works; one without a body (a HEAD's) says nothing either way.
 * Returns 1 for refused, 0 for ok, -1 for nothing to note.
 */
static int refuses_config(const struct req *rq)
{
	static const char *const codes[] = {
		"AuthorizationHeaderMalformed", "ExpiredToken", "InvalidToken",
		"TokenRefreshRequired", "InvalidBucketName", "IllegalLocationConstraintException",
		"PermanentRedirect", "AuthorizationQueryParametersError",
	};
	char code[128] = "";

	if (rq->status >= 300 && rq->status < 400)
		return 1;
	if (rq->status != 400)
		return 0;
	if (!rq->answer || s3xml_find(rq->answer, rq->answer_len, 2, "Code", code, sizeof(code)) ||
	    !code[0])
		return -1;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (!strcmp(code, codes[i]))
			return 1;
	return 0;
}

/* The exchange's outcome for the store's state: no connection or answer,
 * or the answer's status. Not what the caller's callbacks or this side's
 * own limits decided (memory, a malformed URL). */
static void req_note(const struct req *rq, CURLcode cc, int r, const char *msg)
{
	struct objstore *os = &rq->s3->base;
	enum objstore_state s;
	int refuses = refuses_config(rq);

	if (r == -ENOMEM || r == -EINVAL)
		return;
	if ((cc != CURLE_OK && !rq->cb_err) || rq->status >= 500)
		s = OBJSTORE_UNREACHABLE;
	else if (rq->status == 401 || rq->status == 403 || refuses > 0)
		s = OBJSTORE_REFUSED;
	else if (r == -ENXIO)
		s = OBJSTORE_NO_BUCKET;
	else if (rq->status > 0 && refuses == 0)
		s = OBJSTORE_OK;
	else
		return; /* no answer, or one that says nothing either way */
	objstore_note(os, s, msg);
}

static int req_finish(struct req *rq, CURLcode cc, struct errbuf *eb)
{
	struct errbuf own = { "" };
	int r = req_outcome(rq, cc, eb ? eb : &own);

	req_note(rq, cc, r, eb ? eb->msg : own.msg);
	return r;
}

static int req_run(struct req *rq, struct errbuf *eb)
{
	rq->eb = eb;
	curl_easy_setopt(rq->h, CURLOPT_HTTPHEADER, rq->hdrs);
	return req_finish(rq, curl_easy_perform(rq->h), eb);
}

/* A request whose answer (body or headers) is all the caller wants. */
static int simple(struct s3 *s3, CURL *h, struct req *rq, const char *method,
		  const char *what, const char *path, const char *query, struct errbuf *eb)
{
	int r = req_init(rq, s3, h, method, what, path, query, empty_sha, false, s3->request_ms);

	return r < 0 ? r : req_run(rq, eb);
}

static void *pool_get(struct pool *p)
{
	void *v = NULL;

	pthread_mutex_lock(&p->lock);
	if (p->n)
		v = p->idle[--p->n];
	pthread_mutex_unlock(&p->lock);
	return v;
}

/* Whether v was kept; else the caller frees it. */
static bool pool_put(struct pool *p, void *v)
{
	bool kept = false;

	pthread_mutex_lock(&p->lock);
	if (p->n < POOL_MAX) {
		p->idle[p->n++] = v;
		kept = true;
	}
	pthread_mutex_unlock(&p->lock);
	return kept;
}

/* An easy handle lent by s3's pool (a new one when it is empty). */
struct easy {
	struct s3 *s3;
	CURL *h;
};

static struct easy easy_get(struct s3 *s3)
{
	CURL *h = pool_get(&s3->easies);

	return (struct easy){ s3, h ? h : curl_easy_init() };
}

static void easy_put(struct s3 *s3, CURL *h)
{
	if (h && !pool_put(&s3->easies, h))
		curl_easy_cleanup(h);
}

static void easy_release(struct easy *e)
{
	easy_put(e->s3, e->h);
}

/* ---- stat, remove ---- */

/* limit_ms: read_ms when a reader asks (stat), request_ms within a put. */
static int head_size(struct s3 *s3, CURL *h, const uint8_t sha[32], uint64_t *size,
		     long limit_ms, struct errbuf *eb)
{
	char key[KEY_MAX], path[KEY_MAX];
	struct req rq;
	curl_off_t len = -1;

	int r = object_key(s3, sha, key, path, eb);
	if (r < 0)
		return r;
	r = req_init(&rq, s3, h, "HEAD", key, path, NULL, empty_sha, false, limit_ms);
	if (r == 0)
		r = req_run(&rq, eb);
	if (r == 0) {
		curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
		if (len < 0)
			r = errbuf_set(eb, -EIO, "%s: HEAD %s: no Content-Length",
				       s3->base.description, key);
		else
			*size = (uint64_t)len;
	}
	req_done(&rq);
	return r;
}

static int s3_stat(struct objstore *os, const uint8_t sha[32], uint64_t *size,
		   struct errbuf *eb)
{
	_cleanup_(easy_release) struct easy e = easy_get((struct s3 *)os);

	return e.h ? head_size((struct s3 *)os, e.h, sha, size, ((struct s3 *)os)->read_ms, eb) : -ENOMEM;
}

static int s3_remove(struct objstore *os, const uint8_t sha[32], struct errbuf *eb)
{
	struct s3 *s3 = (struct s3 *)os;
	_cleanup_(easy_release) struct easy e = easy_get(s3);
	CURL *h = e.h;
	char key[KEY_MAX], path[KEY_MAX];
	struct req rq;

	if (!h)
		return -ENOMEM;
	int r = object_key(s3, sha, key, path, eb);
	if (r < 0)
		return r;
	r = simple(s3, h, &rq, "DELETE", key, path, NULL, eb);
	req_done(&rq);
	return r == -ENOENT ? 0 : r;
}

/* ---- streaming reads: read_stream, verify ---- */

struct stream {
	uint64_t offset, len; /* len UINT64_MAX: to the end */
	uint64_t got;
	objstore_data_fn fn;
	void *opaque;
	bool ranged;
	struct errbuf *eb;
};

/* "bytes FIRST-LAST/TOTAL" */
static bool parse_content_range(const char *s, uint64_t *first, uint64_t *last)
{
	char *end;

	if (strncmp(s, "bytes ", 6))
		return false;
	s += 6;
	if (!isdigit((unsigned char)*s))
		return false;
	*first = strtoull(s, &end, 10);
	if (*end != '-' || !isdigit((unsigned char)end[1]))
		return false;
	*last = strtoull(end + 1, &end, 10);
	return *end == '/' && *last >= *first;
}

static int stream_data(struct req *rq, const char *buf, size_t len)
{
	struct stream *st = rq->opaque;

	if (st->got == 0 && st->ranged) {
		uint64_t first, last;
		if (rq->status != 206 || !parse_content_range(rq->content_range, &first, &last) ||
		    first != st->offset)
			return errbuf_set(st->eb, -EIO, "%s: GET %s: HTTP %ld, Content-Range '%s' "
					  "for bytes from %" PRIu64,
					  rq->s3->base.description, rq->what, rq->status,
					  rq->content_range, st->offset);
	}
	if (st->len != UINT64_MAX && len > st->len - st->got)
		return errbuf_set(st->eb, -EIO, "%s: GET %s: more bytes than asked for",
				  rq->s3->base.description, rq->what);
	st->got += len;
	int r = st->fn(st->opaque, buf, len);
	/* A caller's nonzero stops the stream and is returned as it is; a
	 * positive value cannot be told from ours, a negative one needs no
	 * message of ours. */
	return r;
}

static int stream_object(struct s3 *s3, const uint8_t sha[32], struct stream *st,
			 struct errbuf *eb)
{
	_cleanup_(easy_release) struct easy e = easy_get(s3);
	CURL *h = e.h;
	char key[KEY_MAX], path[KEY_MAX], range[64];
	struct req rq;

	if (!h)
		return -ENOMEM;
	int r = object_key(s3, sha, key, path, eb);
	if (r < 0)
		return r;
	st->eb = eb;
	r = req_init(&rq, s3, h, "GET", key, path, NULL, empty_sha, true, s3->read_ms);
	if (r == 0) {
		st->ranged = st->offset > 0 || st->len != UINT64_MAX;
		if (st->len == UINT64_MAX)
			snprintf(range, sizeof(range), "%" PRIu64 "-", st->offset);
		else
			snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, st->offset,
				 st->offset + st->len - 1);
		if (st->ranged)
			curl_easy_setopt(h, CURLOPT_RANGE, range);
		rq.data = stream_data;
		rq.opaque = st;
		r = req_run(&rq, eb);
	}
	if (r == 0 && st->len != UINT64_MAX && st->got != st->len)
		r = errbuf_set(eb, -EIO, "%s: GET %s: %" PRIu64 " bytes of %" PRIu64 " asked for",
			       s3->base.description, key, st->got, st->len);
	req_done(&rq);
	return r;
}

static int s3_read_stream(struct objstore *os, const uint8_t sha[32], uint64_t offset,
			  uint64_t len, objstore_data_fn fn, void *opaque, struct errbuf *eb)
{
	struct stream st = { .offset = offset, .len = len, .fn = fn, .opaque = opaque };

	if (len == 0)
		return 0;
	if (len != UINT64_MAX && offset + len < offset)
		return errbuf_set(eb, -EINVAL, "%s: range past 2^64", os->description);
	return stream_object((struct s3 *)os, sha, &st, eb);
}

static int hash_chunk(void *opaque, const void *buf, size_t len)
{
	return EVP_DigestUpdate(opaque, buf, len) ? 0 : -ENOMEM;
}

static void md_freep(EVP_MD_CTX **ctx)
{
	EVP_MD_CTX_free(*ctx);
}

static int s3_verify(struct objstore *os, const uint8_t sha[32], struct errbuf *eb)
{
	_cleanup_(md_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct stream st = { .len = UINT64_MAX, .fn = hash_chunk };
	uint8_t got[32];
	unsigned n = 0;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		return -ENOMEM;
	st.opaque = ctx;
	int r = stream_object((struct s3 *)os, sha, &st, eb);
	if (r != 0)
		return r;
	if (!EVP_DigestFinal_ex(ctx, got, &n) || n != 32)
		return -ENOMEM;
	if (memcmp(got, sha, 32)) {
		char key[KEY_MAX], path[KEY_MAX], hex[65];
		if (object_key((struct s3 *)os, sha, key, path, eb) < 0)
			return -EIO;
		hex32(got, hex);
		return errbuf_set(eb, -EIO, "%s: %s: its %" PRIu64 " bytes hash to %s, not to "
				  "the object's name", os->description, key, st.got, hex);
	}
	return 0;
}

/* ---- put ---- */

/* The object's own hash as the payload hash: the store checks it. */
static int put_single(struct s3 *s3, CURL *h, const uint8_t sha[32], int fd, uint64_t size,
		      struct errbuf *eb)
{
	char key[KEY_MAX], path[KEY_MAX], hex[65];
	struct req rq;

	int r = object_key(s3, sha, key, path, eb);
	if (r < 0)
		return r;
	hex32(sha, hex);
	r = req_init(&rq, s3, h, "PUT", key, path, NULL, hex, true, s3->request_ms);
	if (r == 0)
		r = req_header(&rq, "Content-Type: application/octet-stream");
	if (r == 0) {
		req_upload(&rq, fd, 0, size);
		r = req_run(&rq, eb);
	}
	req_done(&rq);
	return r;
}

struct upload {
	struct s3 *s3;
	CURL *h;
	char key[KEY_MAX], path[KEY_MAX];
	char *id;           /* the upload id, URL-encoded */
	uint64_t part_size;
	unsigned ramp_parts; /* smaller parts first (part_nominal) */
	unsigned n_parts;
	char (*etags)[80];
	struct blockchain *whole; /* the file's hash, part after part */
};

static int upload_start(struct upload *up, struct errbuf *eb)
{
	struct req rq;
	char id[1024];

	int r = req_init(&rq, up->s3, up->h, "POST", up->key, up->path, "uploads=", empty_sha,
			 false, up->s3->request_ms);
	if (r == 0)
		r = req_header(&rq, "Content-Type: application/octet-stream");
	if (r == 0) {
		req_post(&rq, "", 0);
		r = req_run(&rq, eb);
	}
	if (r == 0 && (!rq.answer ||
		       s3xml_find(rq.answer, rq.answer_len, 2, "UploadId", id, sizeof(id)) < 0))
		r = errbuf_set(eb, -EIO, "%s: POST %s?uploads: no UploadId in the answer",
			       up->s3->base.description, up->key);
	if (r == 0 && !(up->id = uri_encode(id, false)))
		r = -ENOMEM;
	req_done(&rq);
	return r;
}

struct part_hash {
	EVP_MD_CTX *part;
	struct blockchain *whole;
	int states_err; /* handing out the block states failed (objstore_states) */
};

static int hash_piece(void *opaque, const uint8_t *data, size_t len)
{
	struct part_hash *ph = opaque;

	if (!EVP_DigestUpdate(ph->part, data, len))
		return -ENOMEM;
	int r = blockchain_update(ph->whole, data, len);
	if (r < 0)
		ph->states_err = r;
	return r;
}

/* Hashes one part from the file, into its own hash and the whole file's,
 * from the page cache without a copy (fdmap.h). */
static int hash_part(struct upload *up, int fd, uint64_t off, uint64_t len, char hex[65],
		     struct errbuf *eb)
{
	_cleanup_(md_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct part_hash ph = { .part = ctx, .whole = up->whole };
	uint8_t sha[32];
	unsigned n = 0;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		return -ENOMEM;
	int r = fdmap_each(fd, off, len, hash_piece, &ph);
	if (r < 0 && ph.states_err)
		return errbuf_set(eb, r, "%s: %s: recording the block states: %s",
				  up->s3->base.description, up->key, strerror(-r));
	if (r < 0)
		return errbuf_set(eb, r, "%s: %s: reading the local copy's bytes %" PRIu64 "-%" PRIu64
				  ": %s", up->s3->base.description, up->key, off, off + len - 1,
				  r == -EIO ? "shorter than its size" : strerror(-r));
	if (!EVP_DigestFinal_ex(ctx, sha, &n) || n != 32)
		return -ENOMEM;
	hex32(sha, hex);
	return 0;
}

/* <CompleteMultipartUpload>, each ETag kept to the characters an ETag
 * has so the store's answer cannot inject XML. */
static char *complete_body(const struct upload *up, size_t *len)
{
	size_t cap = 64 + (size_t)up->n_parts * 160, used = 0;
	char *body = malloc(cap);

	if (!body)
		return NULL;
	used += (size_t)snprintf(body, cap, "<CompleteMultipartUpload>");
	for (unsigned i = 0; i < up->n_parts; i++) {
		char etag[80];
		size_t e = 0;
		for (const char *p = up->etags[i]; *p && e + 1 < sizeof(etag); p++) {
			if (isalnum((unsigned char)*p) || *p == '"' || *p == '-')
				etag[e++] = *p;
		}
		etag[e] = '\0';
		used += (size_t)snprintf(body + used, cap - used,
					 "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>",
					 i + 1, etag);
	}
	used += (size_t)snprintf(body + used, cap - used, "</CompleteMultipartUpload>");
	*len = used;
	return body;
}

static int sha256_hex(const void *buf, size_t len, char hex[65])
{
	uint8_t sha[32];
	unsigned n = 0;
	_cleanup_(md_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(ctx, buf, len) || !EVP_DigestFinal_ex(ctx, sha, &n) || n != 32)
		return -ENOMEM;
	hex32(sha, hex);
	return 0;
}

static int upload_complete(struct upload *up, struct errbuf *eb)
{
	size_t len = 0;
	_cleanup_free_ char *body = complete_body(up, &len);
	_cleanup_free_ char *query = NULL;
	char hex[65], code[128];
	struct req rq;

	if (!body || sha256_hex(body, len, hex) < 0 ||
	    asprintf(&query, "uploadId=%s", up->id) < 0)
		return -ENOMEM;
	int r = req_init(&rq, up->s3, up->h, "POST", up->key, up->path, query, hex, true,
			 up->s3->request_ms);
	if (r == 0)
		r = req_header(&rq, "Content-Type: application/xml");
	if (r == 0) {
		req_post(&rq, body, len);
		r = req_run(&rq, eb);
	}
	/* S3 may answer 200 and still fail, with an <Error> body. */
	if (r == 0 && rq.answer && s3xml_find(rq.answer, rq.answer_len, 2, "Code", code,
					      sizeof(code)) == 0)
		r = errbuf_set(eb, -EIO, "%s: POST %s?uploadId: %s", up->s3->base.description,
			       up->key, code);
	req_done(&rq);
	return r;
}

static void upload_abort(struct upload *up)
{
	_cleanup_free_ char *query = NULL;
	struct req rq;

	/* Best effort: a failed abort leaves parts that the bucket's
	 * lifecycle rule or the next fsck --remote finds. */
	if (asprintf(&query, "uploadId=%s", up->id) < 0)
		return;
	(void)simple(up->s3, up->h, &rq, "DELETE", up->key, up->path, query, NULL);
	req_done(&rq);
}

/* Upload ids of unfinished uploads of one key (ListMultipartUploads). */
struct leftovers {
	const char *key;
	char upload_key[S3_KEY_MAX + 1];
	char id[1024];
	char **ids;
	size_t n;
	int oom;
};

static int leftover_element(void *opaque, unsigned depth, const char *name, const char *text)
{
	struct leftovers *l = opaque;

	/* A text that does not fit is left out, not cut: a cut one could
	 * match another key, or abort another upload. */
	if (depth == 3 && !strcmp(name, "Key"))
		copy_whole(l->upload_key, sizeof(l->upload_key), text);
	else if (depth == 3 && !strcmp(name, "UploadId"))
		copy_whole(l->id, sizeof(l->id), text);
	if (depth != 2 || strcmp(name, "Upload"))
		return 0;
	if (!strcmp(l->upload_key, l->key) && l->id[0]) {
		char **grown = reallocarray(l->ids, l->n + 1, sizeof(*l->ids));
		if (!grown || !(grown[l->n] = uri_encode(l->id, false))) {
			l->ids = grown ? grown : l->ids;
			return -ENOMEM;
		}
		l->ids = grown;
		l->n++;
	}
	l->upload_key[0] = l->id[0] = '\0';
	return 0;
}

/*
 * Aborts the unfinished uploads of this object's key: a put killed half
 * way (kill -9, a crash) leaves its parts in the bucket, invisible to
 * ListObjectsV2 and so to fsck, until someone aborts them; the next put of
 * the same object, which a restarted mover makes, is that someone. Best
 * effort: a store that cannot list uploads still gets the put.
 */
static void abort_leftovers(struct upload *up)
{
	struct leftovers l = { .key = up->key };
	_cleanup_free_ char *prefix = uri_encode(up->key, false);
	_cleanup_free_ char *query = NULL;
	struct req rq;

	if (!prefix || asprintf(&query, "prefix=%s&uploads=", prefix) < 0)
		return;
	if (simple(up->s3, up->h, &rq, "GET", up->key, "", query, NULL) == 0 && rq.answer)
		(void)s3xml_parse(rq.answer, rq.answer_len, leftover_element, &l);
	req_done(&rq);
	char *own = up->id;
	for (size_t i = 0; i < l.n; i++) {
		up->id = l.ids[i];
		upload_abort(up);
		free(l.ids[i]);
	}
	up->id = own;
	free(l.ids);
}

/*
 * The parts' SHA-256s, made in order by one thread ahead of the uploads
 * (signing needs a part's hash before it goes out): up->whole is only
 * ever this thread's.
 */
struct hasher {
	struct upload *up;
	int fd;
	uint64_t size;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned done;      /* parts hashed */
	int r;              /* hashing failed (eb says why) */
	bool stop;          /* the uploads failed: no need to go on */
	char (*hex)[65];
	struct errbuf eb;
};

/*
 * The first parts are smaller (a quarter, then half the part size, never
 * under S3's least): a part goes out only once it is hashed, so the first
 * part's hashing is time the upload simply waits. Measured here: the
 * first of 32 MiB went out some 45 ms after the upload began, the first of
 * 8 MiB 11 ms after, of a 64 MiB object's move of 0.3-0.4 s.
 */
static uint64_t part_nominal(const struct upload *up, unsigned i)
{
	if (i >= up->ramp_parts)
		return up->part_size;
	uint64_t len = up->part_size >> (up->ramp_parts - i);
	return len < PART_MIN ? PART_MIN : len;
}

static uint64_t part_offset(const struct upload *up, unsigned i)
{
	uint64_t off = 0;
	unsigned k = 0;

	for (; k < i && k < up->ramp_parts; k++)
		off += part_nominal(up, k);
	return off + (uint64_t)(i - k) * up->part_size;
}

static uint64_t part_len(const struct upload *up, unsigned i, uint64_t size)
{
	uint64_t off = part_offset(up, i), len = part_nominal(up, i);

	return size - off < len ? size - off : len;
}

static unsigned count_parts(const struct upload *up, uint64_t size)
{
	unsigned n = 0;
	uint64_t off = 0;

	for (; n < up->ramp_parts && off < size; n++)
		off += part_nominal(up, n);
	if (off >= size)
		return n;
	return n + (unsigned)((size - off + up->part_size - 1) / up->part_size);
}

static void *hasher_run(void *opaque)
{
	struct hasher *hs = opaque;
	const struct upload *up = hs->up;

	for (unsigned i = 0; i < up->n_parts; i++) {
		char hex[65];
		pthread_mutex_lock(&hs->lock);
		bool stop = hs->stop;
		pthread_mutex_unlock(&hs->lock);
		if (stop)
			break;
		int r = hash_part(hs->up, hs->fd, part_offset(up, i), part_len(up, i, hs->size),
				  hex, &hs->eb);
		pthread_mutex_lock(&hs->lock);
		if (r < 0)
			hs->r = r;
		else
			memcpy(hs->hex[i], hex, sizeof(hex));
		hs->done += r == 0;
		pthread_cond_broadcast(&hs->cond);
		pthread_mutex_unlock(&hs->lock);
		if (r < 0)
			break;
	}
	return NULL;
}

/* 1 when part i's hash is ready (waiting for it when wait), 0 when not
 * yet, or the hashing's error. */
static int hasher_ready(struct hasher *hs, unsigned i, bool wait)
{
	int r;

	pthread_mutex_lock(&hs->lock);
	while (wait && hs->done <= i && hs->r == 0)
		pthread_cond_wait(&hs->cond, &hs->lock);
	r = hs->r < 0 ? hs->r : hs->done > i;
	pthread_mutex_unlock(&hs->lock);
	return r;
}

/* One part upload in flight. */
struct part_slot {
	struct req rq;
	CURL *h;
	unsigned part;
	bool busy;
};

static int part_start(struct upload *up, struct part_slot *sl, unsigned i, int fd,
		      uint64_t size, const char *hex, CURLM *m, struct errbuf *eb)
{
	_cleanup_free_ char *query = NULL;

	if (asprintf(&query, "partNumber=%u&uploadId=%s", i + 1, up->id) < 0)
		return -ENOMEM;
	int r = req_init(&sl->rq, up->s3, sl->h, "PUT", up->key, up->path, query, hex, true,
			 up->s3->request_ms);
	if (r < 0)
		return r;
	req_upload(&sl->rq, fd, part_offset(up, i), part_len(up, i, size));
	sl->rq.eb = eb;
	curl_easy_setopt(sl->h, CURLOPT_HTTPHEADER, sl->rq.hdrs);
	if (curl_multi_add_handle(m, sl->h) != CURLM_OK) {
		req_done(&sl->rq);
		return -ENOMEM;
	}
	sl->part = i;
	sl->busy = true;
	return 0;
}

static int part_end(struct upload *up, struct part_slot *sl, CURLM *m, CURLcode cc,
		    struct errbuf *eb)
{
	int r = req_finish(&sl->rq, cc, eb);

	if (r == 0 && !sl->rq.etag[0])
		r = errbuf_set(eb, -EIO, "%s: PUT %s part %u: no ETag", up->s3->base.description,
			       up->key, sl->part + 1);
	if (r == 0)
		memcpy(up->etags[sl->part], sl->rq.etag, sizeof(sl->rq.etag));
	curl_multi_remove_handle(m, sl->h);
	req_done(&sl->rq);
	sl->busy = false;
	return r;
}

struct parts_run {
	struct upload *up;
	struct hasher *hs;
	struct part_slot *sl;
	unsigned nsl, next, active;
	CURLM *m;
	int fd;
	uint64_t size;
};

/* Starts parts on idle slots while their hashes are ready; waits for a
 * hash only when nothing is in flight. */
static int parts_fill(struct parts_run *run, struct errbuf *eb)
{
	for (unsigned k = 0; k < run->nsl && run->next < run->up->n_parts; k++) {
		if (run->sl[k].busy)
			continue;
		int h = hasher_ready(run->hs, run->next, run->active == 0);
		if (h < 0)
			return errbuf_set(eb, h, "%s", run->hs->eb.msg);
		if (h == 0)
			return 0;
		int r = part_start(run->up, &run->sl[k], run->next, run->fd, run->size,
				   run->hs->hex[run->next], run->m, eb);
		if (r < 0)
			return r;
		run->next++;
		run->active++;
	}
	return 0;
}

static int parts_loop(struct parts_run *run, struct errbuf *eb)
{
	int r = 0, running = 0;

	while (r == 0 && (run->next < run->up->n_parts || run->active)) {
		CURLMsg *msg;
		int left;
		r = parts_fill(run, eb);
		if (r < 0)
			break;
		CURLMcode mc = curl_multi_perform(run->m, &running);
		if (mc != CURLM_OK)
			return errbuf_set(eb, -EIO, "%s: PUT %s: %s", run->up->s3->base.description,
					  run->up->key, curl_multi_strerror(mc));
		while (r == 0 && (msg = curl_multi_info_read(run->m, &left))) {
			struct req *rq = NULL;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&rq);
			r = part_end(run->up, (struct part_slot *)rq, run->m, msg->data.result, eb);
			run->active--;
		}
		/* Short, so a part whose hash just became ready starts soon. */
		if (r == 0 && run->active)
			curl_multi_poll(run->m, NULL, 0, 20, NULL);
	}
	return r;
}

/*
 * Uploads the parts, up to max_inflight at once, each as soon as the
 * hashing thread has its hash. Memory: no part is held, each streams from
 * the file.
 */
static int send_parts(struct upload *up, int fd, uint64_t size, struct errbuf *eb)
{
	struct hasher hs = { .up = up, .fd = fd, .size = size };
	struct parts_run run = { .up = up, .hs = &hs, .fd = fd, .size = size };
	pthread_t t;
	int r = -ENOMEM;

	run.nsl = up->s3->max_inflight < up->n_parts ? up->s3->max_inflight : up->n_parts;
	hs.hex = calloc(up->n_parts, sizeof(*hs.hex));
	run.sl = calloc(run.nsl, sizeof(*run.sl));
	run.m = curl_multi_init();
	for (unsigned k = 0; run.sl && k < run.nsl; k++)
		run.sl[k].h = easy_get(up->s3).h;
	pthread_mutex_init(&hs.lock, NULL);
	pthread_cond_init(&hs.cond, NULL);
	bool ok = hs.hex && run.sl && run.m;
	for (unsigned k = 0; ok && k < run.nsl; k++)
		ok = run.sl[k].h != NULL;
	if (ok && pthread_create(&t, NULL, hasher_run, &hs) == 0) {
		r = parts_loop(&run, eb);
		pthread_mutex_lock(&hs.lock);
		hs.stop = true;
		pthread_mutex_unlock(&hs.lock);
		pthread_join(t, NULL);
	}
	for (unsigned k = 0; run.sl && k < run.nsl; k++) {
		if (run.sl[k].busy) {
			curl_multi_remove_handle(run.m, run.sl[k].h);
			req_done(&run.sl[k].rq);
		}
		easy_put(up->s3, run.sl[k].h);
	}
	if (run.m)
		curl_multi_cleanup(run.m);
	pthread_cond_destroy(&hs.cond);
	pthread_mutex_destroy(&hs.lock);
	free(run.sl);
	free(hs.hex);
	return r;
}

static int upload_parts(struct upload *up, const uint8_t sha[32], int fd, uint64_t size,
			struct errbuf *eb)
{
	uint8_t whole[32];

	int r = send_parts(up, fd, size, eb);
	if (r < 0)
		return r;
	r = blockchain_finish(up->whole, whole);
	if (r < 0)
		return errbuf_set(eb, r, "%s: %s: recording the block states: %s",
				  up->s3->base.description, up->key, strerror(-r));
	if (memcmp(whole, sha, 32))
		return errbuf_set(eb, -EIO, "%s: %s: the local copy does not hash to the "
				  "object's name", up->s3->base.description, up->key);
	return upload_complete(up, eb);
}

static int put_multipart(struct s3 *s3, CURL *h, const uint8_t sha[32], int fd, uint64_t size,
			 struct objstore_states *states, struct errbuf *eb)
{
	struct upload up = { .s3 = s3, .h = h, .part_size = s3->part_size, .ramp_parts = 2 };
	int r;

	/* Parts grow past the part size rather than past S3's count (and
	 * then all have the one size). */
	if ((size + up.part_size - 1) / up.part_size > PART_COUNT_MAX - up.ramp_parts) {
		up.part_size = ((size / PART_COUNT_MAX) | ((1u << 20) - 1)) + 1;
		up.ramp_parts = 0;
	}
	up.n_parts = count_parts(&up, size);
	r = object_key(s3, sha, up.key, up.path, eb);
	if (r < 0)
		return r;
	up.etags = calloc(up.n_parts, sizeof(*up.etags));
	r = blockchain_new(&up.whole, states ? states->per_emit : 1, states ? states->emit : NULL,
			   states ? states->opaque : NULL);
	if (!up.etags) {
		r = -ENOMEM;
	} else if (r == 0) {
		abort_leftovers(&up);
		r = upload_start(&up, eb);
	}
	if (r == 0) {
		r = upload_parts(&up, sha, fd, size, eb);
		if (r < 0)
			upload_abort(&up);
	}
	free(up.id);
	free(up.etags);
	blockchain_free(up.whole);
	return r;
}

static int s3_put_chained(struct objstore *os, const uint8_t sha[32], int fd, uint64_t size,
			  struct objstore_states *states, struct errbuf *eb)
{
	struct s3 *s3 = (struct s3 *)os;
	_cleanup_(easy_release) struct easy e = easy_get(s3);
	CURL *h = e.h;
	uint64_t have = 0;
	char key[KEY_MAX], path[KEY_MAX];

	if (!h)
		return -ENOMEM;
	int r = head_size(s3, h, sha, &have, s3->request_ms, eb);
	if (r == 0 && have == size) {
		r = s3_verify(os, sha, eb);
		if (r != -EIO)
			return r; /* 0: already there and sound */
	} else if (r < 0 && r != -ENOENT) {
		return r;
	}
	errbuf_clear(eb);
	bool multipart = size > s3->part_size;
	r = multipart ? put_multipart(s3, h, sha, fd, size, states, eb)
		      : put_single(s3, h, sha, fd, size, eb);
	if (r == 0)
		r = head_size(s3, h, sha, &have, s3->request_ms, eb);
	if (r == 0 && have != size)
		r = object_key(s3, sha, key, path, eb) < 0 ? -EIO :
		    errbuf_set(eb, -EIO, "%s: %s: stored %" PRIu64 " bytes, not %" PRIu64,
			       os->description, key, have, size);
	if (r == 0 && states)
		states->complete = multipart;
	return r;
}

static int s3_put(struct objstore *os, const uint8_t sha[32], int fd, uint64_t size,
		  struct errbuf *eb)
{
	return s3_put_chained(os, sha, fd, size, NULL, eb);
}

/* Only a multipart upload hashes the local copy (a single PUT sends the
 * name as the body's hash, and the store checks it). */
static bool s3_put_chains(struct objstore *os, uint64_t size)
{
	return size > ((struct s3 *)os)->part_size;
}

/* ---- read_ranges ---- */

/* One request: ranges idx[first, first + count) of the sorted index,
 * covering [start, end). */
struct group {
	uint64_t start, end;
	size_t first, count;
};

struct fetch {
	struct req rq;
	CURL *h;
	const struct group *g;
	struct objstore_range **idx;
	size_t next;      /* first range of the group not yet filled */
	uint64_t pos;     /* offset of the next byte to come */
	struct errbuf *eb;
	bool busy;
};

static int cmp_offset(const void *a, const void *b)
{
	const struct objstore_range *x = *(struct objstore_range *const *)a;
	const struct objstore_range *y = *(struct objstore_range *const *)b;

	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int range_data(struct req *rq, const char *buf, size_t len)
{
	struct fetch *f = rq->opaque;
	const struct group *g = f->g;
	uint64_t end = f->pos + len;

	if (f->pos == g->start) {
		uint64_t first, last;
		if (rq->status != 206 || !parse_content_range(rq->content_range, &first, &last) ||
		    first != g->start || last != g->end - 1)
			return errbuf_set(f->eb, -EIO, "%s: GET %s: HTTP %ld, Content-Range '%s' "
					  "for bytes %" PRIu64 "-%" PRIu64,
					  rq->s3->base.description, rq->what, rq->status,
					  rq->content_range, g->start, g->end - 1);
	}
	if (end > g->end)
		return errbuf_set(f->eb, -EIO, "%s: GET %s: more bytes than asked for",
				  rq->s3->base.description, rq->what);
	while (f->next < g->first + g->count &&
	       f->idx[f->next]->offset + f->idx[f->next]->len <= f->pos)
		f->next++;
	for (size_t k = f->next; k < g->first + g->count && f->idx[k]->offset < end; k++) {
		struct objstore_range *r = f->idx[k];
		uint64_t from = r->offset > f->pos ? r->offset : f->pos;
		uint64_t to = r->offset + r->len < end ? r->offset + r->len : end;
		if (from < to)
			memcpy((char *)r->buf + (from - r->offset), buf + (from - f->pos),
			       (size_t)(to - from));
	}
	f->pos = end;
	return 0;
}

static int fetch_start(struct fetch *f, struct s3 *s3, const char *key, const char *path,
		       CURLM *m)
{
	char range[64];

	int r = req_init(&f->rq, s3, f->h, "GET", key, path, NULL, empty_sha, false, s3->read_ms);
	if (r < 0)
		return r;
	snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, f->g->start, f->g->end - 1);
	curl_easy_setopt(f->h, CURLOPT_RANGE, range);
	curl_easy_setopt(f->h, CURLOPT_HTTPHEADER, f->rq.hdrs);
	f->rq.data = range_data;
	f->rq.opaque = f;
	f->rq.eb = f->eb;
	f->next = f->g->first;
	f->pos = f->g->start;
	if (curl_multi_add_handle(m, f->h) != CURLM_OK)
		return -ENOMEM;
	f->busy = true;
	return 0;
}

static int fetch_end(struct fetch *f, CURLM *m, CURLcode cc)
{
	int r = req_finish(&f->rq, cc, f->eb);

	if (r == 0 && f->pos != f->g->end)
		r = errbuf_set(f->eb, -EIO, "%s: GET %s: short answer: %" PRIu64 " bytes of %" PRIu64,
			       f->rq.s3->base.description, f->rq.what, f->pos - f->g->start,
			       f->g->end - f->g->start);
	curl_multi_remove_handle(m, f->h);
	req_done(&f->rq);
	f->busy = false;
	return r;
}

/* Sorted ranges into requests: a gap up to MERGE_GAP is read through. */
static size_t make_groups(struct objstore_range **idx, size_t n, struct group *g)
{
	size_t ng = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t end = idx[i]->offset + idx[i]->len;
		struct group *last = ng ? &g[ng - 1] : NULL;
		if (last && idx[i]->offset <= last->end + MERGE_GAP &&
		    (end <= last->end || end - last->start <= MERGE_MAX)) {
			if (end > last->end)
				last->end = end;
			last->count = i + 1 - last->first;
			continue;
		}
		g[ng++] = (struct group){ idx[i]->offset, end, i, 1 };
	}
	return ng;
}

struct ranges_run {
	struct s3 *s3;
	CURLM *m;
	struct fetch *f;
	unsigned nf;
	const struct group *g;
	size_t ng, started;
	struct objstore_range **idx;
	char key[KEY_MAX], path[KEY_MAX];
};

static int start_free_slots(struct ranges_run *run)
{
	for (unsigned i = 0; i < run->nf && run->started < run->ng; i++) {
		if (run->f[i].busy)
			continue;
		run->f[i].g = &run->g[run->started++];
		int r = fetch_start(&run->f[i], run->s3, run->key, run->path, run->m);
		if (r < 0)
			return r;
	}
	return 0;
}

static int ranges_loop(struct ranges_run *run)
{
	int r = start_free_slots(run), running = 1;

	while (r == 0 && (running || run->started < run->ng)) {
		CURLMsg *msg;
		int left;
		bool done = false;
		CURLMcode mc = curl_multi_perform(run->m, &running);
		if (mc != CURLM_OK)
			return errbuf_set(run->f[0].eb, mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO,
					  "%s: GET %s: %s", run->s3->base.description, run->key,
					  curl_multi_strerror(mc));
		while (r == 0 && (msg = curl_multi_info_read(run->m, &left))) {
			struct req *rq = NULL;
			done = true;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&rq);
			r = fetch_end((struct fetch *)rq, run->m, msg->data.result);
			if (r == 0)
				r = start_free_slots(run);
			running = 1; /* perform again: a new transfer may have started */
		}
		/* After a completion, perform first: with nothing left to
		 * wait for, the poll would sleep its whole second. */
		if (r == 0 && running && !done)
			curl_multi_poll(run->m, NULL, 0, 1000, NULL);
	}
	return r;
}

static int s3_read_ranges(struct objstore *os, const uint8_t sha[32], struct objstore_range *r,
			  size_t n, struct errbuf *eb)
{
	struct s3 *s3 = (struct s3 *)os;
	struct ranges_run run = { .s3 = s3 };
	size_t live = 0;
	int ret = -ENOMEM;

	_cleanup_free_ struct objstore_range **idx = calloc(n ? n : 1, sizeof(*idx));
	_cleanup_free_ struct group *g = calloc(n ? n : 1, sizeof(*g));
	if (!idx || !g)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (r[i].len)
			idx[live++] = &r[i];
	}
	if (!live)
		return 0;
	qsort(idx, live, sizeof(*idx), cmp_offset);
	run.idx = idx;
	run.g = g;
	run.ng = make_groups(idx, live, g);
	run.nf = s3->max_inflight < run.ng ? s3->max_inflight : (unsigned)run.ng;
	if (object_key(s3, sha, run.key, run.path, eb) < 0)
		return -ENAMETOOLONG;
	/* A multi handle keeps the connections of the transfers it ran. */
	run.m = pool_get(&s3->multis);
	if (!run.m)
		run.m = curl_multi_init();
	run.f = calloc(run.nf, sizeof(*run.f));
	bool ok = run.m && run.f;
	for (unsigned i = 0; ok && i < run.nf; i++) {
		run.f[i] = (struct fetch){ .h = easy_get(s3).h, .idx = idx, .eb = eb };
		ok = run.f[i].h != NULL;
	}
	if (ok)
		ret = ranges_loop(&run);
	for (unsigned i = 0; run.f && i < run.nf; i++) {
		if (run.f[i].busy) {
			curl_multi_remove_handle(run.m, run.f[i].h);
			req_done(&run.f[i].rq);
		}
		easy_put(s3, run.f[i].h);
	}
	free(run.f);
	if (run.m && !pool_put(&s3->multis, run.m))
		curl_multi_cleanup(run.m);
	return ret;
}

/* ---- list ---- */

struct list_page {
	struct s3 *s3;
	objstore_list_fn fn;
	void *opaque;
	char key[S3_KEY_MAX + 1];
	uint64_t size;
	bool truncated;
	char token[4097]; /* s3xml's longest text */
	int stopped; /* fn's nonzero */
};

/* A key relative to the prefix: "objects/ab/<64 lowercase hex>" names an
 * object, anything else is a stray. */
static bool key_sha(const char *key, uint8_t sha[32])
{
	static const char hexd[] = "0123456789abcdef";

	if (strncmp(key, "objects/", 8) || strlen(key) != 8 + 3 + 64 || key[10] != '/' ||
	    key[8] != key[11] || key[9] != key[12])
		return false;
	for (int i = 0; i < 64; i++) {
		const char *p = strchr(hexd, key[11 + i]);
		if (!key[11 + i] || !p)
			return false;
		if (i % 2 == 0)
			sha[i / 2] = (uint8_t)((p - hexd) << 4);
		else
			sha[i / 2] |= (uint8_t)(p - hexd);
	}
	return true;
}

static int list_element(void *opaque, unsigned depth, const char *name, const char *text)
{
	struct list_page *p = opaque;
	size_t plen = strlen(p->s3->prefix);

	/* A key or token that does not fit fails the listing (a malformed
	 * answer): cut short, it would name another key or page. */
	bool whole = true;
	if (depth == 3 && !strcmp(name, "Key"))
		whole = copy_whole(p->key, sizeof(p->key), text);
	else if (depth == 3 && !strcmp(name, "Size"))
		p->size = strtoull(text, NULL, 10);
	else if (depth == 2 && !strcmp(name, "IsTruncated"))
		p->truncated = !strcmp(text, "true");
	else if (depth == 2 && !strcmp(name, "NextContinuationToken"))
		whole = copy_whole(p->token, sizeof(p->token), text);
	if (!whole)
		return -EIO;
	if (depth != 2 || strcmp(name, "Contents"))
		return 0;
	if (strncmp(p->key, p->s3->prefix, plen))
		return 0; /* not ours: the store answered outside the prefix */
	uint8_t sha[32];
	const char *rel = p->key + plen;
	int r = p->fn(p->opaque, key_sha(rel, sha) ? sha : NULL, rel, p->size);
	if (r)
		p->stopped = r;
	p->key[0] = '\0';
	p->size = 0;
	return r;
}

static int list_one(struct list_page *p, CURL *h, const char *query, struct errbuf *eb)
{
	struct req rq;

	int r = req_init(&rq, p->s3, h, "GET", "objects/ (list)", "", query, empty_sha, false,
			 p->s3->request_ms);
	if (r == 0) {
		rq.answer_max = LIST_ANSWER_MAX;
		r = req_run(&rq, eb);
	}
	p->truncated = false;
	p->token[0] = '\0';
	if (r == 0)
		r = rq.answer ? s3xml_parse(rq.answer, rq.answer_len, list_element, p) : 0;
	if (r < 0 && !p->stopped && r != -ENOMEM && rq.status / 100 == 2)
		r = errbuf_set(eb, -EIO, "%s: list: malformed answer", p->s3->base.description);
	if (r == 0 && p->truncated && !p->token[0])
		r = errbuf_set(eb, -EIO, "%s: list: truncated without a continuation token",
			       p->s3->base.description);
	req_done(&rq);
	return r;
}

static int s3_list(struct objstore *os, objstore_list_fn fn, void *opaque, struct errbuf *eb)
{
	struct s3 *s3 = (struct s3 *)os;
	_cleanup_(easy_release) struct easy e = easy_get(s3);
	CURL *h = e.h;
	_cleanup_free_ char *objects = NULL;
	_cleanup_free_ char *prefix = NULL;
	struct list_page p = { .s3 = s3, .fn = fn, .opaque = opaque };
	int r;

	if (!h || asprintf(&objects, "%sobjects/", s3->prefix) < 0 ||
	    !(prefix = uri_encode(objects, false)))
		return -ENOMEM;
	do {
		_cleanup_free_ char *token = p.token[0] ? uri_encode(p.token, false) : NULL;
		_cleanup_free_ char *query = NULL;
		if (p.token[0] && !token)
			return -ENOMEM;
		char max_keys[32] = "";
		if (s3->list_page)
			snprintf(max_keys, sizeof(max_keys), "max-keys=%" PRIu32 "&", s3->list_page);
		/* Sorted by name, as libcurl 7.88 signs the query as written. */
		if (asprintf(&query, "%s%s%slist-type=2&%sprefix=%s",
			     token ? "continuation-token=" : "", token ? token : "", token ? "&" : "",
			     max_keys, prefix) < 0)
			return -ENOMEM;
		r = list_one(&p, h, query, eb);
	} while (r == 0 && p.truncated);
	return r;
}

/* ---- new, free ---- */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *opaque)
{
	struct s3 *s3 = opaque;

	(void)h;
	(void)access;
	pthread_mutex_lock(&s3->locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *opaque)
{
	struct s3 *s3 = opaque;

	(void)h;
	pthread_mutex_unlock(&s3->locks[data]);
}

static int share_new(struct s3 *s3)
{
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&s3->locks[i], NULL);
	pthread_mutex_init(&s3->easies.lock, NULL);
	pthread_mutex_init(&s3->multis.lock, NULL);
	s3->locks_ready = true;
	s3->share = curl_share_init();
	if (!s3->share)
		return -ENOMEM;
	curl_share_setopt(s3->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(s3->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(s3->share, CURLSHOPT_USERDATA, s3);
	if (curl_share_setopt(s3->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) ||
	    curl_share_setopt(s3->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS))
		return -ENOMEM;
	return 0;
}

static void s3_destroy(struct objstore *os)
{
	struct s3 *s3 = (struct s3 *)os;

	/* Handles first: they hold the share. */
	for (unsigned i = 0; i < s3->easies.n; i++)
		curl_easy_cleanup(s3->easies.idle[i]);
	for (unsigned i = 0; i < s3->multis.n; i++)
		curl_multi_cleanup(s3->multis.idle[i]);
	if (s3->share)
		curl_share_cleanup(s3->share);
	if (s3->locks_ready) {
		for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
			pthread_mutex_destroy(&s3->locks[i]);
		pthread_mutex_destroy(&s3->easies.lock);
		pthread_mutex_destroy(&s3->multis.lock);
	}

	s3cred_wipe(s3->keys.userpwd);
	s3cred_wipe(s3->keys.token_header);
	free(s3->keys.file);
	free(s3->keys.profile);
	if (s3->keys.lock_ready)
		pthread_mutex_destroy(&s3->keys.lock);
	free(s3->endpoint);
	free(s3->bucket);
	free(s3->prefix);
	free(s3->prefix_url);
	free(s3->ca_file);
	objstore_base_fini(&s3->base);
	free(s3);
}

/* ---- the owner key (objstore.h) ---- */

static int owner_key(const struct s3 *s3, char key[KEY_MAX], char path[KEY_MAX],
		     struct errbuf *eb)
{
	int k = snprintf(key, KEY_MAX, "%s" OBJSTORE_OWNER_KEY, s3->prefix);
	int u = snprintf(path, KEY_MAX, "%s" OBJSTORE_OWNER_KEY, s3->prefix_url);
	if (k < 0 || k > S3_KEY_MAX || u < 0 || u >= KEY_MAX)
		return errbuf_set(eb, -ENAMETOOLONG, "%s: its owner key would be longer than "
				  "S3's %d bytes", s3->base.description, S3_KEY_MAX);
	return 0;
}

static int s3_owner_get(struct objstore *os, char *buf, size_t len, struct errbuf *eb)
{
	struct s3 *s3 = (struct s3 *)os;
	_cleanup_(easy_release) struct easy e = easy_get(s3);
	char key[KEY_MAX], path[KEY_MAX];
	struct req rq;

	if (!e.h)
		return -ENOMEM;
	int r = owner_key(s3, key, path, eb);
	if (r < 0)
		return r;
	r = req_init(&rq, s3, e.h, "GET", key, path, NULL, empty_sha, false, s3->request_ms);
	if (r == 0) {
		rq.answer_max = len - 1;
		r = req_run(&rq, eb);
	}
	if (r == 0) { /* at most len - 1 bytes: answer_max */
		if (rq.answer_len)
			memcpy(buf, rq.answer, rq.answer_len);
		buf[rq.answer_len] = '\0';
	}
	req_done(&rq);
	return r;
}

/* PUT from a memory file: the upload path reads its body with pread.
 * Create-only (If-None-Match: *, which RGW 16.2 and S3 honour with 412
 * when the key exists): of two vaults claiming at once, only one writes,
 * and the other gets -EEXIST (objstore_priv.h). */
static int s3_owner_put(struct objstore *os, const char *value, size_t len, struct errbuf *eb)
{
	struct s3 *s3 = (struct s3 *)os;
	_cleanup_(easy_release) struct easy e = easy_get(s3);
	char key[KEY_MAX], path[KEY_MAX], hex[65];
	struct req rq;

	if (!e.h)
		return -ENOMEM;
	int r = owner_key(s3, key, path, eb);
	if (r < 0)
		return r;
	if (sha256_hex(value, len, hex) < 0)
		return -ENOMEM;
	_cleanup_close_ int fd = memfd_create("capvault-owner", MFD_CLOEXEC);
	r = fd < 0 ? -errno : fd_pwrite_all(fd, value, len, 0);
	if (r < 0)
		return errbuf_set(eb, r, "%s: owner key: %s", s3->base.description, strerror(-r));
	r = req_init(&rq, s3, e.h, "PUT", key, path, NULL, hex, false, s3->request_ms);
	if (r == 0)
		r = req_header(&rq, "If-None-Match: *");
	if (r == 0) {
		req_upload(&rq, fd, 0, (uint64_t)len);
		r = req_run(&rq, eb);
	}
	if (r < 0 && rq.status == 412)
		r = -EEXIST;
	req_done(&rq);
	return r;
}

/* The owner key's GET (objstore.h's objstore_check): the bucket, the
 * keys and the right to read objects, all the tier needs but writing,
 * in one small request that AWS's own "ListBucket" right does not gate
 * the way a bucket HEAD or a listing is. */
static int s3_check(struct objstore *os, struct errbuf *eb)
{
	char value[OBJSTORE_OWNER_MAX + 2];
	int r = s3_owner_get(os, value, sizeof(value), eb);

	if (r == -ENOENT)
		errbuf_clear(eb);
	return r == -ENOENT ? 0 : r;
}

static const struct objstore_ops s3_ops = {
	.destroy = s3_destroy,
	.put = s3_put,
	.put_chained = s3_put_chained,
	.put_chains = s3_put_chains,
	.stat = s3_stat,
	.verify = s3_verify,
	.remove = s3_remove,
	.list = s3_list,
	.read_ranges = s3_read_ranges,
	.read_stream = s3_read_stream,
	.owner_get = s3_owner_get,
	.owner_put = s3_owner_put,
	.check = s3_check,
};

static int check_config(const struct objstore_s3_config *cfg, struct errbuf *eb)
{
	/* Not repeated, nor kept for objstore_describe(): a password in
	 * user:password@ must reach no message or log. */
	if (cfg->endpoint && strchr(cfg->endpoint, '@'))
		return errbuf_set(eb, -EINVAL, "S3 endpoint: no user:password@ in it (the keys "
				  "go in the credentials file or the environment)");
	if (!cfg->endpoint || (strncmp(cfg->endpoint, "https://", 8) &&
			       strncmp(cfg->endpoint, "http://", 7)))
		return errbuf_set(eb, -EINVAL, "S3 endpoint '%s' is not an http:// or https:// URL",
				  cfg->endpoint ? cfg->endpoint : "");
	if (!cfg->bucket || !*cfg->bucket || strchr(cfg->bucket, '/'))
		return errbuf_set(eb, -EINVAL, "S3 bucket '%s' is not a bucket name",
				  cfg->bucket ? cfg->bucket : "");
	for (const char *p = cfg->region ? cfg->region : ""; *p; p++) {
		if ((!isalnum((unsigned char)*p) && *p != '-' && *p != '_') || p - cfg->region >= 64)
			return errbuf_set(eb, -EINVAL, "S3 region '%.64s' is not a region name",
					  cfg->region);
	}
	if (cfg->part_size && (cfg->part_size < PART_MIN || cfg->part_size > PART_MAX))
		return errbuf_set(eb, -EINVAL, "S3 part size %" PRIu64 " is not 5 MiB to 5 GiB",
				  cfg->part_size);
	const char *why = cfg->prefix ? s3_prefix_problem(cfg->prefix) : NULL;
	if (why)
		return errbuf_set(eb, -EINVAL, "S3 prefix: it %s", why);
	return 0;
}

/* seen: the credentials file as it was before cred was read from it, to
 * read it again when it changes; NULL when cred did not come from it. */
static int copy_config(struct s3 *s3, const struct objstore_s3_config *cfg,
		       const struct s3cred *cred, const struct stat *seen)
{
	size_t len = strlen(cfg->endpoint);

	while (len && cfg->endpoint[len - 1] == '/')
		len--;
	s3->endpoint = strndup(cfg->endpoint, len);
	s3->bucket = strdup(cfg->bucket);
	s3->prefix = strdup(cfg->prefix ? cfg->prefix : "");
	s3->prefix_url = uri_encode(s3->prefix ? s3->prefix : "", true);
	s3->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
	if (!s3->endpoint || !s3->bucket || !s3->prefix || !s3->prefix_url ||
	    (cfg->ca_file && !s3->ca_file) || keys_set(&s3->keys, cred) < 0)
		return -ENOMEM;
	s3->keys.recheck_ms = cfg->cred_recheck_ms ? (long)cfg->cred_recheck_ms : RECHECK_MS;
	s3->keys.next_check = mono_s() + (double)s3->keys.recheck_ms / 1000;
	if (seen) {
		s3->keys.seen = *seen;
		s3->keys.file = strdup(cfg->credentials_file);
		s3->keys.profile = cfg->profile ? strdup(cfg->profile) : NULL;
		if (!s3->keys.file || (cfg->profile && !s3->keys.profile))
			return -ENOMEM;
	}
	snprintf(s3->sigv4, sizeof(s3->sigv4), "aws:amz:%s:s3",
		 cfg->region ? cfg->region : OBJSTORE_REGION_DEFAULT);
	s3->connect_ms = cfg->connect_timeout_ms ? (long)cfg->connect_timeout_ms
						 : OBJSTORE_CONNECT_TIMEOUT_S_DEFAULT * 1000L;
	s3->request_ms = cfg->request_timeout_ms ? (long)cfg->request_timeout_ms
						 : OBJSTORE_REQUEST_TIMEOUT_S_DEFAULT * 1000L;
	s3->read_ms = cfg->read_timeout_ms ? (long)cfg->read_timeout_ms : s3->request_ms;
	s3->max_inflight = cfg->max_inflight ? cfg->max_inflight : OBJSTORE_MAX_INFLIGHT_DEFAULT;
	s3->part_size = cfg->part_size ? cfg->part_size : OBJSTORE_PART_DEFAULT;
	s3->list_page = cfg->list_page;
	snprintf(s3->base.description, sizeof(s3->base.description), "s3://%s/%s at %s",
		 s3->bucket, s3->prefix, s3->endpoint);
	return 0;
}

int objstore_s3_new(struct objstore **out, const struct objstore_s3_config *cfg,
		    struct errbuf *eb)
{
	struct s3cred cred = { 0 };
	struct stat seen;
	bool track = false;
	int r = check_config(cfg, eb);

	*out = NULL;
	if (r < 0)
		return r;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_result != CURLE_OK)
		return errbuf_set(eb, -ENOMEM, "libcurl: %s", curl_easy_strerror(curl_init_result));
	if (cfg->access_key && cfg->secret_key) {
		cred.access_key = strdup(cfg->access_key);
		cred.secret_key = strdup(cfg->secret_key);
		r = cred.access_key && cred.secret_key ? 0 : -ENOMEM;
	} else {
		/* Looked at first: a change while it is read shows later. */
		track = cfg->credentials_file && stat(cfg->credentials_file, &seen) == 0;
		r = s3cred_load(&cred, cfg->credentials_file, cfg->profile, eb);
	}
	struct s3 *s3 = r == 0 ? calloc(1, sizeof(*s3)) : NULL;
	if (r == 0 && !s3)
		r = -ENOMEM;
	if (r == 0) {
		objstore_base_init(&s3->base, &s3_ops);
		s3->keys.lock_ready = pthread_mutex_init(&s3->keys.lock, NULL) == 0;
		r = s3->keys.lock_ready ? copy_config(s3, cfg, &cred, track ? &seen : NULL) : -ENOMEM;
		if (r == 0)
			r = share_new(s3);
	}
	s3cred_clear(&cred);
	if (r < 0) {
		if (s3)
			s3_destroy(&s3->base);
		return r;
	}
	*out = &s3->base;
	return 0;
}
