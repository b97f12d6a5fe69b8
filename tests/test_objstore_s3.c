/*
 * test_objstore_s3.c - the S3 backend (index/objstore/objstore_s3.c)
 * against a real Ceph RGW, which tests/integration/objstore_s3.sh starts
 * (tools/rgw-test) and describes in the environment: CAPVAULT_S3_ENDPOINT,
 * _BUCKET, _REGION, _CREDENTIALS, _TLS_ENDPOINT, _CA_FILE,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY. Without them the RGW tests
 * skip; the credentials-file tests run anyway.
 *
 * Each test works under its own key prefix, so runs do not meet.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "blockdig.h"
#include "config.h"
#include "monoclock.h"
#include "objstore.h"
#include "objstore_config.h"
#include "s3cred.h"
#include "s3prefix.h"
#include "s3xml.h"

extern char **environ;

static char tmpdir[] = "/tmp/test_objstore_s3.XXXXXX";
static unsigned prefix_seq;

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static bool have_rgw(void)
{
	return env("CAPVAULT_S3_ENDPOINT") && env("CAPVAULT_S3_BUCKET");
}

#define NEED_RGW()                                     \
	do {                                           \
		if (!have_rgw()) {                     \
			skip();                        \
		}                                      \
	} while (0)

static void sha256(const void *buf, size_t len, uint8_t sha[32])
{
	unsigned n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_non_null(ctx);
	assert_true(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL));
	assert_true(EVP_DigestUpdate(ctx, buf, len));
	assert_true(EVP_DigestFinal_ex(ctx, sha, &n));
	EVP_MD_CTX_free(ctx);
}

static void hex(const uint8_t sha[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", sha[i]);
}

/* Deterministic bytes (xorshift), so a failure is reproducible. */
static uint8_t *make_bytes(size_t len, uint64_t seed)
{
	uint8_t *b = malloc(len ? len : 1);
	uint64_t x = seed * 2 + 1;

	assert_non_null(b);
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)x;
	}
	return b;
}

/* The bytes in a file, opened for reading. */
static int file_of(const uint8_t *buf, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/obj.XXXXXX", tmpdir);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
	return fd;
}

struct cfgbuf {
	struct objstore_s3_config cfg;
	char prefix[64];
};

/* A config for the test RGW under a fresh prefix. */
static void rgw_config(struct cfgbuf *cb)
{
	memset(cb, 0, sizeof(*cb));
	snprintf(cb->prefix, sizeof(cb->prefix), "t%ld-%u/", (long)getpid(), ++prefix_seq);
	cb->cfg = (struct objstore_s3_config){
		.endpoint = env("CAPVAULT_S3_ENDPOINT"),
		.bucket = env("CAPVAULT_S3_BUCKET"),
		.region = env("CAPVAULT_S3_REGION"),
		.access_key = env("AWS_ACCESS_KEY_ID"),
		.secret_key = env("AWS_SECRET_ACCESS_KEY"),
		.prefix = cb->prefix,
		.connect_timeout_ms = 5000,
		.request_timeout_ms = 20000,
		.max_inflight = 4,
		.part_size = 5u << 20,
	};
}

static struct objstore *open_store(const struct objstore_s3_config *cfg)
{
	struct objstore *os = NULL;
	struct errbuf eb = { "" };

	int r = objstore_s3_new(&os, cfg, &eb);
	if (r < 0)
		fail_msg("objstore_s3_new: %d %s", r, eb.msg);
	return os;
}

/* A store of the test RGW under a fresh prefix (cb). */
static struct objstore *open_rgw(struct cfgbuf *cb)
{
	rgw_config(cb);
	return open_store(&cb->cfg);
}

/* An object as the tests put it: deterministic bytes, a file of them
 * opened for reading, and their name. */
struct object {
	uint8_t *bytes;
	size_t size;
	uint8_t sha[32];
	char hex[65];
	int fd;
};

static void object_new(struct object *o, size_t size, uint64_t seed)
{
	o->bytes = make_bytes(size, seed);
	o->size = size;
	o->fd = file_of(o->bytes, size);
	sha256(o->bytes, size, o->sha);
	hex(o->sha, o->hex);
}

static void object_free(struct object *o)
{
	close(o->fd);
	free(o->bytes);
}

/* Puts o; a failure fails the test with the store's message. */
static void put_ok(struct objstore *os, const struct object *o)
{
	struct errbuf eb = { "" };
	int r = objstore_put(os, o->sha, o->fd, o->size, &eb);
	if (r)
		fail_msg("put of %zu bytes: %d %s", o->size, r, eb.msg);
}

/* The bucket's key of o under cb's prefix. */
static void object_key(const struct cfgbuf *cb, const struct object *o, char *key, size_t size)
{
	snprintf(key, size, "%sobjects/%.2s/%s", cb->prefix, o->hex, o->hex);
}

/* The endpoint of a loopback socket that never answers: bound and
 * listening (connections are taken, and wait), or only bound and closed
 * (connections are refused). Returns the socket, or -1 once closed. */
static int silent_endpoint(char *endpoint, size_t size, bool listening)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	if (listening)
		assert_int_equal(listen(s, 16), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
	snprintf(endpoint, size, "http://127.0.0.1:%u", ntohs(a.sin_port));
	if (!listening) {
		close(s);
		s = -1;
	}
	return s;
}

/* The environment's keys, put aside while a test reads them from a file. */
struct saved_keys {
	char *id, *secret;
};

static void keys_unset(struct saved_keys *k)
{
	k->id = env("AWS_ACCESS_KEY_ID") ? strdup(env("AWS_ACCESS_KEY_ID")) : NULL;
	k->secret = env("AWS_SECRET_ACCESS_KEY") ? strdup(env("AWS_SECRET_ACCESS_KEY")) : NULL;
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
}

static void keys_restore(struct saved_keys *k)
{
	if (k->id)
		setenv("AWS_ACCESS_KEY_ID", k->id, 1);
	if (k->secret)
		setenv("AWS_SECRET_ACCESS_KEY", k->secret, 1);
	free(k->id);
	free(k->secret);
}

/* The --aws-sigv4 and --user arguments of curl(1) for the test user. */
struct sigv4_args {
	char sigv4[128], user[512];
};

static void sigv4_args(struct sigv4_args *a)
{
	snprintf(a->user, sizeof(a->user), "%s:%s", env("AWS_ACCESS_KEY_ID"),
		 env("AWS_SECRET_ACCESS_KEY"));
	snprintf(a->sigv4, sizeof(a->sigv4), "aws:amz:%s:s3",
		 env("CAPVAULT_S3_REGION") ? env("CAPVAULT_S3_REGION") : "us-east-1");
}

/* curl(1) PUTs the bytes under key, as a user or another tool would, with
 * no check of ours in between. */
static void raw_put(const char *key, const uint8_t *buf, size_t len)
{
	char path[128], url[1024];
	struct sigv4_args sa;
	pid_t pid;
	int status = 0;

	snprintf(path, sizeof(path), "%s/raw", tmpdir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	snprintf(url, sizeof(url), "%s/%s/%s", env("CAPVAULT_S3_ENDPOINT"),
		 env("CAPVAULT_S3_BUCKET"), key);
	sigv4_args(&sa);
	char *argv[] = { "curl", "-sf", "--aws-sigv4", sa.sigv4, "--user", sa.user, "-H",
			 "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-T", path, url, NULL };
	assert_int_equal(posix_spawnp(&pid, "curl", NULL, NULL, argv, environ), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* curl(1) with SigV4 and an empty body: METHOD on key?query, the answer
 * in out. */
static void raw_request(const char *method, const char *key, const char *query, char *out,
			size_t size)
{
	char url[1024];
	struct sigv4_args sa;
	int fds[2];
	pid_t pid;
	int status = 0;
	posix_spawn_file_actions_t fa;

	snprintf(url, sizeof(url), "%s/%s/%s?%s", env("CAPVAULT_S3_ENDPOINT"),
		 env("CAPVAULT_S3_BUCKET"), key, query);
	sigv4_args(&sa);
	char *argv[] = { "curl", "-sf", "-X", (char *)method, "--aws-sigv4", sa.sigv4, "--user",
			 sa.user, "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", url, NULL };
	assert_int_equal(pipe(fds), 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	posix_spawn_file_actions_addclose(&fa, fds[0]);
	assert_int_equal(posix_spawnp(&pid, "curl", &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[1]);
	size_t used = 0;
	ssize_t n;
	while (used + 1 < size && (n = read(fds[0], out + used, size - 1 - used)) > 0)
		used += (size_t)n;
	out[used] = '\0';
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A put killed half way leaves an unfinished multipart upload; the next
 * put of the same object aborts it. */
static void test_multipart_leftovers(void **state)
{
	struct cfgbuf cb;
	struct object o;
	char key[256], prefix_q[300], out[16384];
	struct errbuf eb = { "" };

	(void)state;
	NEED_RGW();
	struct objstore *os = open_rgw(&cb);
	object_new(&o, (5u << 20) + 100, 50);
	object_key(&cb, &o, key, sizeof(key));
	/* libcurl 7.88 signs the query as written: '/' must be %2F already. */
	size_t q = (size_t)snprintf(prefix_q, sizeof(prefix_q), "prefix=");
	for (const char *k = key; *k; k++)
		q += (size_t)snprintf(prefix_q + q, sizeof(prefix_q) - q, *k == '/' ? "%%2F" : "%c", *k);
	snprintf(prefix_q + q, sizeof(prefix_q) - q, "&uploads=");
	raw_request("POST", key, "uploads=", out, sizeof(out));
	assert_non_null(strstr(out, "<UploadId>"));
	raw_request("GET", "", prefix_q, out, sizeof(out));
	assert_non_null(strstr(out, "<Upload>"));
	put_ok(os, &o);
	raw_request("GET", "", prefix_q, out, sizeof(out));
	assert_null(strstr(out, "<Upload>"));
	assert_int_equal(objstore_verify(os, o.sha, &eb), 0);
	assert_int_equal(objstore_remove(os, o.sha, &eb), 0);
	object_free(&o);
	objstore_free(os);
}

struct collect {
	uint8_t *buf;
	size_t len, cap;
	int stop_after; /* calls before returning 7; 0: never */
	int calls;
};

static int collect(void *opaque, const void *buf, size_t len)
{
	struct collect *c = opaque;

	if (c->stop_after && ++c->calls >= c->stop_after)
		return 7;
	if (c->len + len > c->cap) {
		c->cap = (c->len + len) * 2;
		c->buf = realloc(c->buf, c->cap);
		assert_non_null(c->buf);
	}
	memcpy(c->buf + c->len, buf, len);
	c->len += len;
	return 0;
}

/* Puts an object and checks every way of reading it back. */
static void put_and_read(struct objstore *os, size_t size, uint64_t seed)
{
	struct object o;
	struct errbuf eb = { "" };
	uint64_t got = 0;

	object_new(&o, size, seed);
	const uint8_t *sha = o.sha, *bytes = o.bytes;
	assert_int_equal(objstore_stat(os, sha, &got, &eb), -ENOENT);
	put_ok(os, &o);
	assert_int_equal(objstore_stat(os, sha, &got, &eb), 0);
	assert_int_equal(got, size);
	assert_int_equal(objstore_verify(os, sha, &eb), 0);
	/* Already there: confirmed and left alone. */
	put_ok(os, &o);

	struct collect c = { 0 };
	assert_int_equal(objstore_read_stream(os, sha, 0, UINT64_MAX, collect, &c, &eb), 0);
	assert_int_equal(c.len, size);
	assert_memory_equal(c.buf, bytes, size);
	c.len = 0;
	assert_int_equal(objstore_read_stream(os, sha, size / 3, size / 4, collect, &c, &eb), 0);
	assert_int_equal(c.len, size / 4);
	assert_memory_equal(c.buf, bytes + size / 3, size / 4);
	c.len = 0;
	assert_int_equal(objstore_read_stream(os, sha, size - 10, UINT64_MAX, collect, &c, &eb),
			 0);
	assert_int_equal(c.len, 10);
	assert_memory_equal(c.buf, bytes + size - 10, 10);
	/* The caller's nonzero stops the stream and comes back. */
	struct collect stop = { .stop_after = 1 };
	assert_int_equal(objstore_read_stream(os, sha, 0, UINT64_MAX, collect, &stop, &eb), 7);
	free(stop.buf);
	free(c.buf);

	assert_int_equal(objstore_remove(os, sha, &eb), 0);
	assert_int_equal(objstore_stat(os, sha, &got, &eb), -ENOENT);
	assert_int_equal(objstore_remove(os, sha, &eb), 0);
	assert_int_equal(objstore_verify(os, sha, &eb), -ENOENT);
	object_free(&o);
}

static void test_put_small(void **state)
{
	struct cfgbuf cb;

	(void)state;
	NEED_RGW();
	struct objstore *os = open_rgw(&cb);
	put_and_read(os, 100000, 1);
	objstore_free(os);
}

/* Two vaults on one prefix: the first put claims it (its owner key), the
 * other vault's puts and removes are refused naming both, and the owner
 * (opened again) goes on. */
static void test_owner(void **state)
{
	struct cfgbuf cb;
	struct object o;
	struct errbuf eb = { "" };

	(void)state;
	NEED_RGW();
	struct objstore *mine = open_rgw(&cb), *theirs = open_store(&cb.cfg);
	objstore_set_owner(mine, "vault 0001");
	objstore_set_owner(theirs, "vault 0002");
	object_new(&o, 5000, 7);
	put_ok(mine, &o);
	assert_int_equal(objstore_put(theirs, o.sha, o.fd, o.size, &eb), -EEXIST);
	assert_non_null(strstr(eb.msg, "belongs to another vault"));
	assert_non_null(strstr(eb.msg, "vault 0001"));
	errbuf_clear(&eb);
	assert_int_equal(objstore_remove(theirs, o.sha, &eb), -EEXIST);
	uint64_t size = 0;
	assert_int_equal(objstore_stat(theirs, o.sha, &size, &eb), 0); /* reads are not refused */
	objstore_free(mine);
	mine = open_store(&cb.cfg);
	objstore_set_owner(mine, "vault 0001");
	assert_int_equal(objstore_remove(mine, o.sha, &eb), 0);
	objstore_free(mine);
	objstore_free(theirs);
	object_free(&o);
}

/* Two vaults claiming one fresh prefix at the same moment: exactly one
 * owns it (the owner key is written create-only, If-None-Match: *);
 * with a plain PUT then a read back, both could read their own value
 * back before the other's write, and both would own it. */
struct claimer {
	struct objstore *os;
	pthread_barrier_t *start;
	int r;
	struct errbuf eb;
};

static void *claim_main(void *opaque)
{
	struct claimer *c = opaque;

	pthread_barrier_wait(c->start);
	c->r = objstore_claim(c->os, &c->eb);
	return NULL;
}

static void test_owner_race(void **state)
{
	(void)state;
	NEED_RGW();
	for (int round = 0; round < 12; round++) {
		struct cfgbuf cb;
		pthread_barrier_t start;
		struct claimer c[2] = { { .os = open_rgw(&cb) }, { .os = open_store(&cb.cfg) } };
		pthread_t t[2];

		pthread_barrier_init(&start, NULL, 2);
		objstore_set_owner(c[0].os, "vault 000a");
		objstore_set_owner(c[1].os, "vault 000b");
		for (int i = 0; i < 2; i++) {
			c[i].start = &start;
			assert_int_equal(pthread_create(&t[i], NULL, claim_main, &c[i]), 0);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&start);
		if ((c[0].r == 0) == (c[1].r == 0))
			fail_msg("round %d: claims %d (%s) and %d (%s)", round, c[0].r, c[0].eb.msg,
				 c[1].r, c[1].eb.msg);
		assert_int_equal(c[0].r + c[1].r, -EEXIST);
		objstore_free(c[0].os);
		objstore_free(c[1].os);
	}
}

static void test_put_multipart(void **state)
{
	struct cfgbuf cb;

	(void)state;
	NEED_RGW();
	struct objstore *os = open_rgw(&cb);
	/* Three parts, the last one short. */
	put_and_read(os, (11u << 20) + 12345, 2);
	objstore_free(os);
}

struct got_states {
	uint8_t *s;
	size_t n;
};

static int got_state(void *opaque, uint64_t first, const uint8_t *states, size_t n)
{
	struct got_states *g = opaque;

	assert_int_equal(first, g->n);
	g->s = realloc(g->s, (g->n + n) * BLOCKDIG_STATE);
	assert_non_null(g->s);
	memcpy(g->s + g->n * BLOCKDIG_STATE, states, n * BLOCKDIG_STATE);
	g->n += n;
	return 0;
}

/* Puts a new object of size with states handed out, and checks they are
 * those of a pass of its own and that the bytes read back; the object is
 * left stored (o, for the caller to free). */
static void put_chained_ok(struct objstore *os, struct object *o, size_t size, uint64_t seed)
{
	struct errbuf eb = { "" };
	struct got_states g = { 0 }, want = { 0 };
	struct objstore_states st = { .emit = got_state, .opaque = &g, .per_emit = 7 };
	struct blockchain *c = NULL;
	struct collect back = { 0 };
	uint8_t whole[32];

	object_new(o, size, seed);
	assert_true(objstore_put_chains(os, size));
	assert_int_equal(objstore_put_chained(os, o->sha, o->fd, size, &st, &eb), 0);
	assert_true(st.complete);
	assert_int_equal(blockchain_new(&c, 1, got_state, &want), 0);
	assert_int_equal(blockchain_update(c, o->bytes, size), 0);
	assert_int_equal(blockchain_finish(c, whole), 0);
	blockchain_free(c);
	assert_memory_equal(whole, o->sha, 32);
	assert_int_equal(g.n, size / OBJCACHE_BLOCK);
	assert_int_equal(want.n, g.n);
	assert_memory_equal(g.s, want.s, g.n * BLOCKDIG_STATE);
	assert_int_equal(objstore_read_stream(os, o->sha, 0, UINT64_MAX, collect, &back, &eb), 0);
	assert_int_equal(back.len, size);
	assert_memory_equal(back.buf, o->bytes, size);
	free(back.buf);
	free(g.s);
	free(want.s);
}

/* A multipart upload hands out the chaining states of the hash it checks
 * the local copy with (objstore_put_chained), the same a pass of its own
 * makes; a single PUT or an object stored already hands none out, and a
 * copy that does not hash to the name is refused. */
static void test_put_chained(void **state)
{
	struct cfgbuf cb;
	struct object o;
	struct errbuf eb = { "" };
	struct got_states g = { 0 };
	struct objstore_states st = { .emit = got_state, .opaque = &g, .per_emit = 7 };
	size_t size = (11u << 20) + 12345;

	(void)state;
	NEED_RGW();
	struct objstore *os = open_rgw(&cb);
	assert_false(objstore_put_chains(os, 5u << 20));
	put_chained_ok(os, &o, size, 4);
	/* Stored already: confirmed by reading it back, nothing handed out. */
	assert_int_equal(objstore_put_chained(os, o.sha, o.fd, size, &st, &eb), 0);
	assert_false(st.complete);
	assert_int_equal(g.n, 0);
	assert_int_equal(objstore_remove(os, o.sha, &eb), 0);
	/* Bytes that are not the object's. */
	o.sha[3] ^= 1;
	assert_int_equal(objstore_put_chained(os, o.sha, o.fd, size, &st, &eb), -EIO);
	assert_false(st.complete);
	object_free(&o);
	/* A single PUT hashes nothing here. */
	free(g.s);
	g = (struct got_states){ 0 };
	object_new(&o, 100000, 5);
	assert_int_equal(objstore_put_chained(os, o.sha, o.fd, 100000, &st, &eb), 0);
	assert_false(st.complete);
	assert_int_equal(g.n, 0);
	object_free(&o);
	objstore_free(os);
}

/* With parts of 20 MiB the first two are 5 and 10 MiB: objects that end
 * in each of them, on the boundaries and a byte past, and in a full-size
 * part. */
static void test_put_ramp(void **state)
{
	const size_t mib = 1u << 20;
	const size_t sizes[] = { 20 * mib + 1, 35 * mib, 35 * mib + 1, 41 * mib + 777 };
	struct cfgbuf cb;
	struct errbuf eb = { "" };

	(void)state;
	NEED_RGW();
	rgw_config(&cb);
	cb.cfg.part_size = 20 * mib;
	struct objstore *os = open_store(&cb.cfg);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct object o;
		put_chained_ok(os, &o, sizes[i], 40 + i);
		assert_int_equal(objstore_remove(os, o.sha, &eb), 0);
		object_free(&o);
	}
	objstore_free(os);
}

static void test_put_empty(void **state)
{
	struct cfgbuf cb;
	struct object o;
	uint64_t got = 1;
	struct errbuf eb = { "" };

	(void)state;
	NEED_RGW();
	struct objstore *os = open_rgw(&cb);
	object_new(&o, 0, 0);
	put_ok(os, &o);
	assert_int_equal(objstore_stat(os, o.sha, &got, &eb), 0);
	assert_int_equal(got, 0);
	assert_int_equal(objstore_verify(os, o.sha, &eb), 0);
	object_free(&o);
	objstore_free(os);
}

/* Local bytes that do not hash to the name never get stored as it. */
static void check_put_wrong_bytes(size_t size)
{
	struct cfgbuf cb;
	struct object o;
	struct errbuf eb = { "" };
	uint64_t got = 0;

	struct objstore *os = open_rgw(&cb);
	object_new(&o, size, 3);
	o.sha[5] ^= 1;
	assert_int_equal(objstore_put(os, o.sha, o.fd, size, &eb), -EIO);
	assert_int_equal(objstore_stat(os, o.sha, &got, &eb), -ENOENT);
	object_free(&o);
	objstore_free(os);
}

static void test_put_wrong_bytes(void **state)
{
	(void)state;
	NEED_RGW();
	check_put_wrong_bytes(4096);
	check_put_wrong_bytes((6u << 20) + 1);
}

/* An object changed behind our back: verify says so, put repairs it. */
static void test_tampered(void **state)
{
	struct cfgbuf cb;
	struct object o;
	uint8_t *other;
	char key[256];
	struct errbuf eb = { "" };

	(void)state;
	NEED_RGW();
	other = make_bytes(50000, 6);
	struct objstore *os = open_rgw(&cb);
	object_new(&o, 50000, 4);
	object_key(&cb, &o, key, sizeof(key));
	raw_put(key, other, 50000);
	assert_int_equal(objstore_verify(os, o.sha, &eb), -EIO);
	assert_non_null(strstr(eb.msg, o.hex));
	put_ok(os, &o); /* over the tampered one */
	assert_int_equal(objstore_verify(os, o.sha, &eb), 0);
	assert_int_equal(objstore_remove(os, o.sha, &eb), 0);
	object_free(&o);
	free(other);
	objstore_free(os);
}

struct listed {
	int objects, strays;
	uint8_t shas[4][32];
	char stray[256];
	uint64_t stray_size;
};

static int on_list(void *opaque, const uint8_t *sha, const char *key, uint64_t size)
{
	struct listed *l = opaque;

	if (!sha) {
		l->strays++;
		snprintf(l->stray, sizeof(l->stray), "%s", key);
		l->stray_size = size;
		return 0;
	}
	assert_true(l->objects < 4);
	memcpy(l->shas[l->objects++], sha, 32);
	return 0;
}

static int stop_list(void *opaque, const uint8_t *sha, const char *key, uint64_t size)
{
	(void)opaque;
	(void)sha;
	(void)key;
	(void)size;
	return 5;
}

static void test_list(void **state)
{
	struct cfgbuf cb;
	struct errbuf eb = { "" };
	uint8_t sha[2][32];
	char key[256];
	struct listed l = { 0 };

	(void)state;
	NEED_RGW();
	struct objstore *os = open_rgw(&cb);
	for (int i = 0; i < 2; i++) {
		struct object o;
		object_new(&o, 1000 + (size_t)i, 10 + (uint64_t)i);
		put_ok(os, &o);
		memcpy(sha[i], o.sha, 32);
		object_free(&o);
	}
	snprintf(key, sizeof(key), "%sobjects/zz/not-an-object", cb.prefix);
	raw_put(key, (const uint8_t *)"stray", 5);
	/* Outside objects/: not listed. */
	snprintf(key, sizeof(key), "%sother", cb.prefix);
	raw_put(key, (const uint8_t *)"x", 1);

	assert_int_equal(objstore_list(os, on_list, &l, &eb), 0);
	assert_int_equal(l.objects, 2);
	assert_int_equal(l.strays, 1);
	assert_string_equal(l.stray, "objects/zz/not-an-object");
	assert_int_equal(l.stray_size, 5);
	bool a = !memcmp(l.shas[0], sha[0], 32) || !memcmp(l.shas[1], sha[0], 32);
	bool b = !memcmp(l.shas[0], sha[1], 32) || !memcmp(l.shas[1], sha[1], 32);
	assert_true(a && b);
	assert_int_equal(objstore_list(os, stop_list, NULL, &eb), 5);
	objstore_free(os);

	/* One key a page: three pages, through continuation tokens. */
	cb.cfg.list_page = 1;
	os = open_store(&cb.cfg);
	memset(&l, 0, sizeof(l));
	assert_int_equal(objstore_list(os, on_list, &l, &eb), 0);
	assert_int_equal(l.objects, 2);
	assert_int_equal(l.strays, 1);
	objstore_free(os);
}

static void test_read_ranges(void **state)
{
	struct cfgbuf cb;
	const size_t size = 3u << 20;
	struct object o;
	struct errbuf eb = { "" };
	enum { N = 300 };
	struct objstore_range r[N];
	uint8_t *bufs[N];
	uint64_t x = 99;

	(void)state;
	NEED_RGW();
	struct objstore *os = open_rgw(&cb);
	object_new(&o, size, 20);
	uint8_t *sha = o.sha, *bytes = o.bytes;
	put_ok(os, &o);
	/* Runs of adjacent ranges (merged), near ones (merged across a small
	 * gap), far ones, overlapping ones, empty ones, out of order. */
	for (int i = 0; i < N; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t off;
		uint32_t len = (uint32_t)(x >> 40) % 3000;
		if (i % 3 == 1)
			off = r[i - 1].offset + r[i - 1].len; /* adjacent */
		else if (i % 7 == 0 && i)
			off = r[i - 1].offset; /* overlapping */
		else
			off = (x >> 20) % (size - 3000);
		if (i % 50 == 17)
			len = 0;
		if (off + len > size)
			len = (uint32_t)(size - off);
		bufs[i] = malloc(len ? len : 1);
		assert_non_null(bufs[i]);
		r[i] = (struct objstore_range){ off, len, bufs[i] };
	}
	for (int i = 0; i < N / 2; i++) { /* out of order */
		struct objstore_range t = r[i];
		r[i] = r[N - 1 - i];
		r[N - 1 - i] = t;
	}
	int ret = objstore_read_ranges(os, sha, r, N, &eb);
	if (ret)
		fail_msg("read_ranges: %d %s", ret, eb.msg);
	for (int i = 0; i < N; i++) {
		assert_memory_equal(r[i].buf, bytes + r[i].offset, r[i].len ? r[i].len : 0);
		free(r[i].buf);
	}
	/* A range past the end is an error, not short data. */
	uint8_t tail[100];
	struct objstore_range past = { size - 50, 100, tail };
	assert_int_equal(objstore_read_ranges(os, sha, &past, 1, &eb), -EIO);
	/* An absent object. */
	sha[0] ^= 1;
	struct objstore_range one = { 0, 10, tail };
	assert_int_equal(objstore_read_ranges(os, sha, &one, 1, &eb), -ENOENT);
	sha[0] ^= 1;
	assert_int_equal(objstore_remove(os, sha, &eb), 0);
	object_free(&o);
	objstore_free(os);
}

struct worker {
	struct objstore *os;
	const uint8_t *sha;
	const uint8_t *bytes;
	size_t size;
	int seed, failures;
};

/* Reads of one object from several threads at once, through one objstore
 * (its pooled handles and connections). */
static void *worker_run(void *opaque)
{
	struct worker *w = opaque;
	struct errbuf eb = { "" };
	uint8_t a[5000], b[7000];
	uint64_t got = 0;

	for (int i = 0; i < 15; i++) {
		uint64_t off = ((uint64_t)(w->seed * 7919 + i * 104729)) % (w->size - 20000);
		struct objstore_range r[2] = { { off, sizeof(a), a }, { off + 9000, sizeof(b), b } };
		if (objstore_read_ranges(w->os, w->sha, r, 2, &eb) || memcmp(a, w->bytes + off, sizeof(a)) ||
		    memcmp(b, w->bytes + off + 9000, sizeof(b)))
			w->failures++;
		if (objstore_stat(w->os, w->sha, &got, &eb) || got != w->size)
			w->failures++;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct cfgbuf cb;
	struct object o;
	struct errbuf eb = { "" };
	pthread_t t[6];
	struct worker w[6];

	(void)state;
	NEED_RGW();
	struct objstore *os = open_rgw(&cb);
	object_new(&o, 1u << 20, 40);
	put_ok(os, &o);
	for (int i = 0; i < 6; i++) {
		w[i] = (struct worker){ os, o.sha, o.bytes, o.size, i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	assert_int_equal(objstore_remove(os, o.sha, &eb), 0);
	object_free(&o);
	objstore_free(os);
}

static void test_bad_secret(void **state)
{
	struct cfgbuf cb;
	struct errbuf eb = { "" };
	uint8_t sha[32] = { 1 };
	uint64_t got;

	(void)state;
	NEED_RGW();
	rgw_config(&cb);
	cb.cfg.secret_key = "not-the-secret-at-all-0123456789abcdef";
	struct objstore *os = open_store(&cb.cfg);
	assert_int_equal(objstore_stat(os, sha, &got, &eb), -EACCES);
	assert_non_null(strstr(eb.msg, "403"));
	assert_null(strstr(eb.msg, cb.cfg.secret_key));
	assert_null(strstr(eb.msg, cb.cfg.access_key));
	assert_null(strstr(objstore_describe(os), cb.cfg.access_key));
	objstore_free(os);
}

/* From the credentials file, the environment's keys out of the way. */
static void test_credentials_file(void **state)
{
	struct cfgbuf cb;
	struct errbuf eb = { "" };
	uint8_t sha[32] = { 2 };
	uint64_t got;
	struct saved_keys keys;

	(void)state;
	NEED_RGW();
	if (!env("CAPVAULT_S3_CREDENTIALS"))
		skip();
	rgw_config(&cb);
	keys_unset(&keys);
	cb.cfg.access_key = cb.cfg.secret_key = NULL;
	cb.cfg.credentials_file = env("CAPVAULT_S3_CREDENTIALS");
	struct objstore *os = open_store(&cb.cfg);
	assert_int_equal(objstore_stat(os, sha, &got, &eb), -ENOENT);
	objstore_free(os);
	keys_restore(&keys);
}

static void test_refused(void **state)
{
	struct cfgbuf cb;
	struct errbuf eb = { "" };
	uint8_t sha[32] = { 3 };
	uint64_t got;
	char endpoint[64];

	(void)state;
	NEED_RGW();
	silent_endpoint(endpoint, sizeof(endpoint), false);
	rgw_config(&cb);
	cb.cfg.endpoint = endpoint;
	struct objstore *os = open_store(&cb.cfg);
	assert_int_equal(objstore_stat(os, sha, &got, &eb), -ECONNREFUSED);
	assert_non_null(strstr(eb.msg, endpoint));
	objstore_free(os);
}

/* A store that takes the connection and never answers. */
static void test_timeout(void **state)
{
	struct cfgbuf cb;
	struct errbuf eb = { "" };
	uint8_t sha[32] = { 4 }, buf[10];
	uint64_t got;
	char endpoint[64];

	(void)state;
	NEED_RGW();
	int s = silent_endpoint(endpoint, sizeof(endpoint), true);
	rgw_config(&cb);
	cb.cfg.endpoint = endpoint;
	cb.cfg.request_timeout_ms = 1000;
	struct objstore *os = open_store(&cb.cfg);
	assert_int_equal(objstore_stat(os, sha, &got, &eb), -ETIMEDOUT);
	struct objstore_range r = { 0, sizeof(buf), buf };
	assert_int_equal(objstore_read_ranges(os, sha, &r, 1, &eb), -ETIMEDOUT);
	struct collect c = { 0 };
	assert_int_equal(objstore_read_stream(os, sha, 0, UINT64_MAX, collect, &c, &eb),
			 -ETIMEDOUT);
	objstore_free(os);
	close(s);
}

/* read_timeout bounds reads (stat, ranges, streams) on its own: with a
 * minute for other requests, a store that never answers fails every read
 * within it (the guard: well before the minute). */
static void test_read_timeout(void **state)
{
	struct cfgbuf cb;
	struct errbuf eb = { "" };
	uint8_t sha[32] = { 4 }, buf[10];
	uint64_t got;
	char endpoint[64];

	(void)state;
	NEED_RGW();
	int s = silent_endpoint(endpoint, sizeof(endpoint), true);
	rgw_config(&cb);
	cb.cfg.endpoint = endpoint;
	cb.cfg.request_timeout_ms = 60000;
	cb.cfg.read_timeout_ms = 1000;
	struct objstore *os = open_store(&cb.cfg);
	double t0 = mono_s();
	assert_int_equal(objstore_stat(os, sha, &got, &eb), -ETIMEDOUT);
	struct objstore_range r = { 0, sizeof(buf), buf };
	assert_int_equal(objstore_read_ranges(os, sha, &r, 1, &eb), -ETIMEDOUT);
	struct collect c = { 0 };
	assert_int_equal(objstore_read_stream(os, sha, 0, UINT64_MAX, collect, &c, &eb),
			 -ETIMEDOUT);
	assert_true(mono_s() - t0 < 30);
	objstore_free(os);
	close(s);
}

static void test_tls(void **state)
{
	struct cfgbuf cb;
	struct errbuf eb = { "" };
	uint8_t sha[32] = { 5 };
	uint64_t got;

	(void)state;
	NEED_RGW();
	if (!env("CAPVAULT_S3_TLS_ENDPOINT") || !env("CAPVAULT_S3_CA_FILE"))
		skip();
	rgw_config(&cb);
	cb.cfg.endpoint = env("CAPVAULT_S3_TLS_ENDPOINT");
	cb.cfg.ca_file = env("CAPVAULT_S3_CA_FILE");
	struct objstore *os = open_store(&cb.cfg);
	put_and_read(os, (5u << 20) + 7, 30);
	objstore_free(os);
	/* The system's CAs do not know the self-signed certificate. */
	cb.cfg.ca_file = NULL;
	os = open_store(&cb.cfg);
	assert_int_equal(objstore_stat(os, sha, &got, &eb), -EPROTO);
	objstore_free(os);
}

/* The daemon's way: the object_store section of a configuration, the
 * keys from its credentials_file, unless the environment has keys. */
static void test_from_config(void **state)
{
	char text[2048], prefix[64];
	struct config *cfg = NULL;
	struct objstore *os = NULL;
	struct errbuf eb = { "" };
	uint8_t sha[32] = { 6 };
	uint64_t got;

	(void)state;
	NEED_RGW();
	if (!env("CAPVAULT_S3_CREDENTIALS"))
		skip();
	snprintf(prefix, sizeof(prefix), "t%ld-cfg/", (long)getpid());
	snprintf(text, sizeof(text),
		 "store: /nonexistent/vault\nobject_store:\n  endpoint: %s\n  bucket: %s\n"
		 "  credentials_file: %s\n  prefix: %s\n  request_timeout: 5s\n",
		 env("CAPVAULT_S3_ENDPOINT"), env("CAPVAULT_S3_BUCKET"),
		 env("CAPVAULT_S3_CREDENTIALS"), prefix);
	assert_int_equal(config_load_buffer(&cfg, text, strlen(text), "test", NULL,
					    CONFIG_NO_PATH_CHECKS, NULL), 0);
	assert_true(cfg->object_store.enabled);
	assert_int_equal(cfg->object_store.part_size, 32u << 20);
	struct saved_keys keys;
	keys_unset(&keys);
	assert_int_equal(objstore_from_config(&os, &cfg->object_store, &eb), 0);
	assert_non_null(strstr(objstore_describe(os), prefix));
	assert_int_equal(objstore_stat(os, sha, &got, &eb), -ENOENT);
	objstore_free(os);
	/* The environment's keys win over the file's. */
	setenv("AWS_ACCESS_KEY_ID", keys.id, 1);
	setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-wrong-secret-wrong-secret", 1);
	assert_int_equal(objstore_from_config(&os, &cfg->object_store, &eb), 0);
	assert_int_equal(objstore_stat(os, sha, &got, &eb), -EACCES);
	objstore_free(os);
	keys_restore(&keys);
	config_free(cfg);
}

/* ---- credentials files, no store needed ---- */

static char *write_file(const char *name, const char *text, mode_t mode)
{
	char *path = NULL;

	assert_true(asprintf(&path, "%s/%s", tmpdir, name) > 0);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void test_cred_file(void **state)
{
	struct s3cred c;
	struct errbuf eb = { "" };
	struct saved_keys keys;
	char *path = write_file("creds",
				"# comment\n[default]\naws_access_key_id = AKDEF\n"
				"aws_secret_access_key=SKDEF\n\n; other\n[profile backup]\n"
				"  aws_access_key_id =  AKB  \naws_secret_access_key = SK/B+x=\n"
				"region = eu\n[partial]\naws_access_key_id = only\n"
				"[empty]\naws_access_key_id =\naws_secret_access_key = SKEMPTY\n",
				0640);

	(void)state;
	keys_unset(&keys);
	assert_int_equal(s3cred_load(&c, path, NULL, &eb), 0);
	assert_string_equal(c.access_key, "AKDEF");
	assert_string_equal(c.secret_key, "SKDEF");
	s3cred_clear(&c);
	assert_int_equal(s3cred_load(&c, path, "backup", &eb), 0);
	assert_string_equal(c.access_key, "AKB");
	assert_string_equal(c.secret_key, "SK/B+x=");
	s3cred_clear(&c);
	assert_int_equal(s3cred_load(&c, path, "partial", &eb), -ENOENT);
	assert_null(strstr(eb.msg, "only"));
	/* An empty key is none, not one sent empty (adv15a). */
	assert_int_equal(s3cred_load(&c, path, "empty", &eb), -ENOENT);
	assert_non_null(strstr(eb.msg, "lacks aws_access_key_id"));
	assert_null(strstr(eb.msg, "SKEMPTY"));
	assert_int_equal(s3cred_load(&c, path, "nope", &eb), -ENOENT);
	assert_non_null(strstr(eb.msg, "nope"));
	/* The environment wins over the file, both variables or none. */
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	assert_int_equal(s3cred_load(&c, path, NULL, &eb), -EINVAL);
	setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
	assert_int_equal(s3cred_load(&c, path, NULL, &eb), 0);
	assert_string_equal(c.access_key, "AKENV");
	s3cred_clear(&c);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(s3cred_load(&c, NULL, NULL, &eb), -EINVAL);
	/* Readable by others: refused. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(s3cred_load(&c, path, NULL, &eb), -EPERM);
	assert_non_null(strstr(eb.msg, path));
	assert_null(strstr(eb.msg, "SKDEF"));
	free(path);
	path = write_file("bad", "[default]\naws_access_key_id AK\n", 0600);
	assert_int_equal(s3cred_load(&c, path, NULL, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, ":2:"));
	free(path);
	assert_int_equal(s3cred_load(&c, "/nonexistent/creds", NULL, &eb), -ENOENT);
	/* A FIFO in its place is refused at once, not waited on (a reload
	 * holds the keys' lock); a file past 64 KiB is refused unread. */
	assert_true(asprintf(&path, "%s/fifo", tmpdir) > 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(s3cred_load(&c, path, NULL, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "not a regular file"));
	free(path);
	path = write_file("huge", "[default]\n", 0600);
	assert_int_equal(truncate(path, 65537), 0);
	assert_int_equal(s3cred_load(&c, path, NULL, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "larger than"));
	free(path);
	keys_restore(&keys);
}

static void test_bad_config(void **state)
{
	struct objstore *os = (struct objstore *)1;
	struct errbuf eb = { "" };
	struct objstore_s3_config cfg = { .endpoint = "ftp://x", .bucket = "b",
					  .access_key = "a", .secret_key = "s" };

	(void)state;
	assert_int_equal(objstore_s3_new(&os, &cfg, &eb), -EINVAL);
	assert_null(os);
	cfg.endpoint = "http://127.0.0.1:1";
	cfg.part_size = 1 << 20;
	assert_int_equal(objstore_s3_new(&os, &cfg, &eb), -EINVAL);
	cfg.part_size = 6ull << 30;
	assert_int_equal(objstore_s3_new(&os, &cfg, &eb), -EINVAL);
	cfg.part_size = 0;
	cfg.bucket = "a/b";
	assert_int_equal(objstore_s3_new(&os, &cfg, &eb), -EINVAL);
	cfg.bucket = "b";
	assert_int_equal(objstore_s3_new(&os, &cfg, &eb), 0);
	assert_string_equal(objstore_describe(os), "s3://b/ at http://127.0.0.1:1");
	objstore_free(os);
}

/* One request's head, as a store on loopback received it; answered
 * with answer, or a bare 404 when it is NULL. */
struct heard {
	int listener;
	const char *answer;
	char head[8192];
};

static void *hear_one(void *opaque)
{
	struct heard *h = opaque;
	const char *answer = h->answer ? h->answer
				       : "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
	size_t used = 0;
	int c = accept(h->listener, NULL, NULL);

	while (c >= 0 && used + 1 < sizeof(h->head) && !strstr(h->head, "\r\n\r\n")) {
		ssize_t n = read(c, h->head + used, sizeof(h->head) - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
		h->head[used] = '\0';
	}
	if (c >= 0) {
		(void)!write(c, answer, strlen(answer));
		close(c);
	}
	return NULL;
}

/* Temporary credentials: the session token (from the file, or
 * AWS_SESSION_TOKEN with the environment's keys) goes out as
 * x-amz-security-token, among the signed headers; one with a line break
 * is refused. */
static void test_session_token(void **state)
{
	struct cfgbuf cb;
	struct errbuf eb = { "" };
	struct saved_keys keys;
	struct s3cred c;
	struct heard h = { 0 };
	uint8_t sha[32] = { 5 };
	uint64_t got;
	char endpoint[64];
	pthread_t t;
	char *path = write_file("sts", "[default]\naws_access_key_id = ASIATEMP\n"
				"aws_secret_access_key = SKTEMP\naws_session_token = FwoTOKEN/x+y=\n",
				0600);

	(void)state;
	keys_unset(&keys);
	assert_int_equal(s3cred_load(&c, path, NULL, &eb), 0);
	assert_string_equal(c.session_token, "FwoTOKEN/x+y=");
	s3cred_clear(&c);
	setenv("AWS_ACCESS_KEY_ID", "ASIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
	setenv("AWS_SESSION_TOKEN", "ENVTOKEN", 1);
	assert_int_equal(s3cred_load(&c, NULL, NULL, &eb), 0);
	assert_string_equal(c.session_token, "ENVTOKEN");
	s3cred_clear(&c);
	setenv("AWS_SESSION_TOKEN", "BAD\r\nx-evil: 1", 1);
	assert_int_equal(s3cred_load(&c, NULL, NULL, &eb), -EINVAL);
	assert_null(strstr(eb.msg, "evil"));
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");

	h.listener = silent_endpoint(endpoint, sizeof(endpoint), true);
	memset(&cb, 0, sizeof(cb));
	cb.cfg = (struct objstore_s3_config){ .endpoint = endpoint, .bucket = "b",
					      .credentials_file = path, .request_timeout_ms = 5000 };
	struct objstore *os = open_store(&cb.cfg);
	assert_int_equal(pthread_create(&t, NULL, hear_one, &h), 0);
	assert_int_equal(objstore_stat(os, sha, &got, &eb), -ENOENT);
	pthread_join(t, NULL);
	objstore_free(os);
	close(h.listener);
	keys_restore(&keys);
	free(path);
	assert_non_null(strstr(h.head, "\r\nx-amz-security-token: FwoTOKEN/x+y=\r\n"));
	const char *signed_headers = strstr(h.head, "SignedHeaders=");
	assert_non_null(signed_headers);
	const char *end = strchr(signed_headers, ',');
	assert_non_null(end);
	char list[256];
	snprintf(list, sizeof(list), "%.*s", (int)(end - signed_headers), signed_headers);
	assert_non_null(strstr(list, "x-amz-security-token"));
	assert_non_null(strstr(h.head, "Credential=ASIATEMP/"));
}

/* One request to a listener that answers 404; its head into h->head. */
static void heard_request(struct objstore *os, struct heard *h)
{
	struct errbuf eb = { "" };
	uint8_t sha[32] = { 6 };
	uint64_t got;
	pthread_t t;

	memset(h->head, 0, sizeof(h->head));
	assert_int_equal(pthread_create(&t, NULL, hear_one, h), 0);
	assert_int_equal(objstore_stat(os, sha, &got, &eb), -ENOENT);
	pthread_join(t, NULL);
}

/* Makes path look written 5 s ago, and lets a 1 ms recheck come due. */
static void settle(const char *path)
{
	struct timespec t[2];
	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= 5;
	t[1] = t[0];
	assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
	usleep(20000);
}

/* Temporary credentials renewed by another program: the file is read
 * again when it changes and has settled; a file changed less than a
 * second ago (maybe half written) or that cannot be parsed leaves the
 * keys in use. */
static void test_credentials_renewed(void **state)
{
	struct cfgbuf cb;
	struct saved_keys keys;
	struct heard h = { 0 };
	char endpoint[64];
	char *path = write_file("renew", "[default]\naws_access_key_id = ASIAONE\n"
				"aws_secret_access_key = SKONE\naws_session_token = TOKENONE\n",
				0600);

	(void)state;
	keys_unset(&keys);
	h.listener = silent_endpoint(endpoint, sizeof(endpoint), true);
	memset(&cb, 0, sizeof(cb));
	cb.cfg = (struct objstore_s3_config){ .endpoint = endpoint, .bucket = "b",
					      .credentials_file = path, .request_timeout_ms = 5000,
					      .cred_recheck_ms = 1 };
	struct objstore *os = open_store(&cb.cfg);
	heard_request(os, &h);
	assert_non_null(strstr(h.head, "Credential=ASIAONE/"));
	assert_non_null(strstr(h.head, "\r\nx-amz-security-token: TOKENONE\r\n"));

	free(write_file("renew", "[default]\naws_access_key_id = ASIATWO\n"
			"aws_secret_access_key = SKTWO\naws_session_token = TOKENTWO-LONGER\n",
			0600));
	settle(path);
	heard_request(os, &h);
	assert_non_null(strstr(h.head, "Credential=ASIATWO/"));
	assert_non_null(strstr(h.head, "\r\nx-amz-security-token: TOKENTWO-LONGER\r\n"));
	assert_null(strstr(h.head, "TOKENONE"));

	/* Being rewritten: it parses, but it changed less than a second ago. */
	free(write_file("renew", "[default]\naws_access_key_id = ASIATHREE\n"
			"aws_secret_access_key = SK", 0600));
	usleep(20000);
	heard_request(os, &h);
	assert_non_null(strstr(h.head, "Credential=ASIATWO/"));

	free(write_file("renew", "[default]\naws_access_key_id = ASIATH", 0600));
	settle(path);
	heard_request(os, &h);
	assert_non_null(strstr(h.head, "Credential=ASIATWO/"));

	objstore_free(os);
	close(h.listener);
	keys_restore(&keys);
	free(path);
}


/* F0: a prefix whose URL encoding is long (3 characters a byte) still
 * gives each object its whole key, up to the longest prefix S3's 1024
 * byte keys allow; one longer is refused, not cut. */
static void test_long_prefix(void **state)
{
	static char prefix[1024];
	struct heard h = { 0 };
	struct errbuf eb = { "" };
	struct objstore *os;
	char endpoint[64], want[128], sha_hex[65];
	uint8_t sha[32] = { 6 };

	(void)state;
	hex(sha, sha_hex);
	snprintf(want, sizeof(want), "a/objects/%.2s/%s HTTP/1.1\r\n", sha_hex, sha_hex);
	h.listener = silent_endpoint(endpoint, sizeof(endpoint), true);
	struct objstore_s3_config cfg = { .endpoint = endpoint, .bucket = "b", .prefix = prefix,
					  .access_key = "a", .secret_key = "s",
					  .request_timeout_ms = 5000 };
	/* 500 spaces: 1500 characters in the URL, past the old 1100. */
	memset(prefix, ' ', 500);
	memcpy(prefix + 500, "a/", 3);
	os = open_store(&cfg);
	heard_request(os, &h);
	objstore_free(os);
	assert_non_null(strstr(h.head, want));
	/* 949 bytes, the longest: each 2-byte character is 6 in the URL. */
	for (int i = 0; i < 473; i++)
		memcpy(prefix + 2 * i, "\xc3\xa9", 2);
	memcpy(prefix + 946, "xa/", 4);
	assert_int_equal(strlen(prefix), 949);
	os = open_store(&cfg);
	heard_request(os, &h);
	objstore_free(os);
	assert_non_null(strstr(h.head, want));
	memcpy(prefix + 946, "xxa/", 5);
	os = (struct objstore *)1;
	assert_int_equal(objstore_s3_new(&os, &cfg, &eb), -EINVAL);
	assert_null(os);
	assert_non_null(strstr(eb.msg, "1024"));
	close(h.listener);
}

static const char *const bad_prefixes[] = {
	"../victim/", "b/../", "./", "x/./y/", "x//y/", "/a/", "a/../", "..//",
};

/* F1: a prefix that an HTTP library or the store would normalise into
 * another one (another prefix, or another bucket) is refused. */
static void test_dot_prefix(void **state)
{
	static const char *const good[] = { "a.b/..c/", "site-a/", "noslash", "..", "a/..", "...", "a/.x/" };
	struct objstore_s3_config cfg = { .endpoint = "http://127.0.0.1:1", .bucket = "b",
					  .access_key = "a", .secret_key = "s" };
	struct errbuf eb = { "" };
	struct objstore *os;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++) {
		cfg.prefix = bad_prefixes[i];
		errbuf_clear(&eb);
		if (objstore_s3_new(&os, &cfg, &eb) != -EINVAL)
			fail_msg("prefix '%s' taken", bad_prefixes[i]);
		assert_non_null(strstr(eb.msg, "prefix"));
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cfg.prefix = good[i];
		if (objstore_s3_new(&os, &cfg, &eb) != 0)
			fail_msg("prefix '%s' refused: %s", good[i], eb.msg);
		objstore_free(os);
	}
}

/* The first error of loading an object_store section with these lines. */
static int load_section(const char *lines, char *msg, size_t size)
{
	char text[4096];
	struct config *cfg = NULL;
	struct config_errors *errs = NULL;

	snprintf(text, sizeof(text), "store: /nonexistent/vault\nobject_store:\n  bucket: bkt\n%s",
		 lines);
	assert_int_equal(config_errors_new(&errs), 0);
	int r = config_load_buffer(&cfg, text, strlen(text), "t.yaml", NULL,
				   CONFIG_NO_PATH_CHECKS, errs);
	const struct config_error *e = config_errors_get(errs, 0);
	snprintf(msg, size, "%s", e ? e->text : "");
	config_free(cfg);
	config_errors_free(errs);
	return r;
}

/* F0, F1 at the configuration's check, with its file:line:col; F11: an
 * endpoint holding a password is refused without repeating it. */
static void test_config_checks(void **state)
{
	char lines[2048], msg[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++) {
		snprintf(lines, sizeof(lines), "  endpoint: http://127.0.0.1:1\n  prefix: \"%s\"\n",
			 bad_prefixes[i]);
		assert_int_equal(load_section(lines, msg, sizeof(msg)), -EINVAL);
		if (!strstr(msg, "t.yaml:5:11: invalid prefix"))
			fail_msg("prefix '%s': %s", bad_prefixes[i], msg);
	}
	snprintf(lines, sizeof(lines), "  endpoint: http://127.0.0.1:1\n  prefix: \"%0*d/\"\n",
		 S3_PREFIX_MAX, 0);
	assert_int_equal(load_section(lines, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "t.yaml:5:11: invalid prefix: it is longer than 949 bytes"));
	snprintf(lines, sizeof(lines), "  endpoint: http://127.0.0.1:1\n  prefix: \"%0*d/\"\n",
		 S3_PREFIX_MAX - 1, 0);
	assert_int_equal(load_section(lines, msg, sizeof(msg)), 0);

	assert_int_equal(load_section("  endpoint: http://user:s3cr3t@127.0.0.1:1\n", msg,
				      sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "t.yaml:4:13: invalid endpoint"));
	assert_null(strstr(msg, "s3cr3t"));
	struct objstore_s3_config cfg = { .endpoint = "http://user:s3cr3t@127.0.0.1:1",
					  .bucket = "b", .access_key = "a", .secret_key = "s" };
	struct errbuf eb = { "" };
	struct objstore *os;
	assert_int_equal(objstore_s3_new(&os, &cfg, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "endpoint"));
	assert_null(strstr(eb.msg, "s3cr3t"));
	cfg.endpoint = "ftp://user:s3cr3t@127.0.0.1:1";
	assert_int_equal(objstore_s3_new(&os, &cfg, &eb), -EINVAL);
	assert_null(strstr(eb.msg, "s3cr3t"));
	assert_int_equal(load_section("  endpoint: ftp://user:s3cr3t@127.0.0.1:1\n", msg,
				      sizeof(msg)), -EINVAL);
	assert_null(strstr(msg, "s3cr3t"));
}


/* F10: a 404 whose body says NoSuchBucket is not "no such object"
 * (-ENOENT, which a remove takes for done and the mover for gone): it is
 * an error naming the bucket. NoSuchKey, or a bare 404, stays -ENOENT. */
static void test_no_bucket(void **state)
{
	static const char no_bucket[] =
		"HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\nContent-Length: 98\r\n\r\n"
		"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><BucketName>gone</BucketName>"
		"</Error>\n\n\n\n\n\n\n\n";
	static const char no_key[] =
		"HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\nContent-Length: 47\r\n\r\n"
		"<Error><Code>NoSuchKey</Code></Error>\n\n\n\n\n\n\n\n\n\n";
	struct heard h = { 0 };
	struct errbuf eb = { "" };
	char endpoint[64];
	uint8_t sha[32] = { 7 };
	pthread_t t;

	(void)state;
	h.listener = silent_endpoint(endpoint, sizeof(endpoint), true);
	struct objstore_s3_config cfg = { .endpoint = endpoint, .bucket = "gone",
					  .access_key = "a", .secret_key = "s",
					  .request_timeout_ms = 5000 };
	struct objstore *os = open_store(&cfg);
	h.answer = no_bucket;
	assert_int_equal(pthread_create(&t, NULL, hear_one, &h), 0);
	assert_int_equal(objstore_remove(os, sha, &eb), -ENXIO);
	pthread_join(t, NULL);
	assert_non_null(strstr(eb.msg, "NoSuchBucket"));
	assert_non_null(strstr(eb.msg, "bucket 'gone'"));
	h.answer = no_key;
	assert_int_equal(pthread_create(&t, NULL, hear_one, &h), 0);
	assert_int_equal(objstore_remove(os, sha, &eb), 0);
	pthread_join(t, NULL);
	objstore_free(os);
	close(h.listener);
}


/* One answer to objstore_check (the owner key's GET): the state it
 * leaves (adv15a). */
static enum objstore_state state_after(struct objstore *os, struct heard *h, const char *answer,
				       struct errbuf *eb)
{
	struct objstore_health health;
	pthread_t t;

	h->answer = answer;
	assert_int_equal(pthread_create(&t, NULL, hear_one, h), 0);
	(void)objstore_check(os, eb);
	pthread_join(t, NULL);
	h->answer = NULL;
	objstore_health(os, &health);
	return health.state;
}

#define S3_ERROR(status, code)                                                              \
	"HTTP/1.1 " status "\r\nContent-Type: application/xml\r\nContent-Length: "          \
	"64\r\n\r\n<Error><Code>" code "</Code></Error>                                         " \
	"                                        "

/* A store that answers every request with a redirect or a 400 about the
 * configuration or the keys (AWS to a wrong region: 301 PermanentRedirect
 * or 400 AuthorizationHeaderMalformed; temporary keys past their time:
 * 400 ExpiredToken) is refused, as with a 403, not ok: the start's check
 * said "ok" to it (and the alert on a store not ok never fired) while
 * every move failed. A 400 about one request's bytes leaves it ok, and
 * one without a code (a HEAD's) changes nothing. */
static void test_config_refusals(void **state)
{
	struct heard h = { 0 };
	struct errbuf eb = { "" };
	char endpoint[64];

	(void)state;
	h.listener = silent_endpoint(endpoint, sizeof(endpoint), true);
	struct objstore_s3_config cfg = { .endpoint = endpoint, .bucket = "capvault",
					  .access_key = "a", .secret_key = "s",
					  .request_timeout_ms = 5000 };
	struct objstore *os = open_store(&cfg);
	assert_int_equal(state_after(os, &h, NULL, &eb), OBJSTORE_OK); /* 404: no owner yet */
	assert_int_equal(state_after(os, &h, S3_ERROR("400 Bad Request",
						      "AuthorizationHeaderMalformed"), &eb),
			 OBJSTORE_REFUSED);
	assert_non_null(strstr(eb.msg, "HTTP 400 AuthorizationHeaderMalformed"));
	assert_int_equal(state_after(os, &h, NULL, &eb), OBJSTORE_OK);
	assert_int_equal(state_after(os, &h, S3_ERROR("301 Moved Permanently",
						      "PermanentRedirect"), &eb),
			 OBJSTORE_REFUSED);
	assert_non_null(strstr(eb.msg, "HTTP 301 PermanentRedirect"));
	assert_int_equal(state_after(os, &h, S3_ERROR("400 Bad Request", "ExpiredToken"), &eb),
			 OBJSTORE_REFUSED);
	assert_int_equal(state_after(os, &h, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
				     &eb),
			 OBJSTORE_REFUSED);
	assert_int_equal(state_after(os, &h, S3_ERROR("400 Bad Request",
						      "XAmzContentSHA256Mismatch"), &eb),
			 OBJSTORE_OK);
	/* The store's code is its text, not ours: no line break or control
	 * of it reaches the message (`capvault status` prints it). */
	assert_int_equal(state_after(os, &h, S3_ERROR("403 Forbidden",
						      "Denied&#10;objstore: ok&#9;"), &eb),
			 OBJSTORE_REFUSED);
	assert_non_null(strstr(eb.msg, "HTTP 403 Denied?objstore: ok?"));
	objstore_free(os);
	close(h.listener);
}

/* One request answered 403 (as to keys the store does not know): its
 * errno and message into eb, its head into h->head. */
static int refused_request(struct objstore *os, struct heard *h, struct errbuf *eb)
{
	static const char forbidden[] =
		"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: 47\r\n\r\n"
		"<Error><Code>AccessDenied</Code></Error>\n\n\n\n\n\n\n";
	uint8_t sha[32] = { 8 };
	uint64_t got;
	pthread_t t;

	h->answer = forbidden;
	memset(h->head, 0, sizeof(h->head));
	assert_int_equal(pthread_create(&t, NULL, hear_one, h), 0);
	int r = objstore_stat(os, sha, &got, eb);
	pthread_join(t, NULL);
	h->answer = NULL;
	return r;
}

/* F8: a changed credentials file that cannot be used (others may read
 * it, bad syntax, no such profile, a folder in its place) leaves the old
 * keys in use, and a refused request's message says why; once the file
 * is usable again (or back as it was) the message no longer does. */
static void test_credentials_refused(void **state)
{
	static const char good[] = "[default]\naws_access_key_id = ASIAONE\n"
				   "aws_secret_access_key = SKONE\n";
	struct saved_keys keys;
	struct heard h = { 0 };
	struct errbuf eb = { "" };
	char endpoint[64];
	char *path = write_file("refused", good, 0600);

	(void)state;
	keys_unset(&keys);
	h.listener = silent_endpoint(endpoint, sizeof(endpoint), true);
	struct objstore_s3_config cfg = { .endpoint = endpoint, .bucket = "b",
					  .credentials_file = path, .request_timeout_ms = 5000,
					  .cred_recheck_ms = 1 };
	struct objstore *os = open_store(&cfg);
	assert_int_equal(refused_request(os, &h, &eb), -EACCES);
	assert_null(strstr(eb.msg, "credentials file"));

	free(write_file("refused", "[default]\naws_access_key_id = ASIATWO\n"
			"aws_secret_access_key = SKTWO\n", 0644));
	settle(path);
	assert_int_equal(refused_request(os, &h, &eb), -EACCES);
	assert_non_null(strstr(h.head, "Credential=ASIAONE/"));
	assert_non_null(strstr(eb.msg, "credentials file was not taken"));
	assert_non_null(strstr(eb.msg, "0644"));
	assert_null(strstr(eb.msg, "SKTWO"));

	free(write_file("refused", "[default]\naws_access_key_id ASIATWO\n", 0600));
	settle(path);
	assert_int_equal(refused_request(os, &h, &eb), -EACCES);
	assert_non_null(strstr(eb.msg, ":2: expected"));

	free(write_file("refused", good, 0600));
	settle(path);
	assert_int_equal(refused_request(os, &h, &eb), -EACCES);
	assert_null(strstr(eb.msg, "credentials file"));

	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkdir(path, 0700), 0);
	settle(path);
	assert_int_equal(refused_request(os, &h, &eb), -EACCES);
	assert_non_null(strstr(h.head, "Credential=ASIAONE/"));
	assert_non_null(strstr(eb.msg, "credentials file was not taken"));

	objstore_free(os);
	close(h.listener);
	assert_int_equal(rmdir(path), 0);
	keys_restore(&keys);
	free(path);
}


static int count_element(void *opaque, unsigned depth, const char *name, const char *text)
{
	(void)depth;
	(void)name;
	(void)text;
	++*(unsigned *)opaque;
	return 0;
}

/* F0's class in the answers: an element text past 4 KiB (a key, a
 * continuation token) is refused, not passed on cut short, where it would
 * name another key or page. */
static void test_xml_long_text(void **state)
{
	char xml[8192];
	unsigned n = 0;

	(void)state;
	snprintf(xml, sizeof(xml), "<R><Key>%0*d</Key></R>", 4096, 0);
	assert_int_equal(s3xml_parse(xml, strlen(xml), count_element, &n), 0);
	assert_int_equal(n, 2);
	snprintf(xml, sizeof(xml), "<R><Key>%0*d</Key></R>", 4097, 0);
	assert_int_equal(s3xml_parse(xml, strlen(xml), count_element, &n), -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cred_file),
		cmocka_unit_test(test_session_token),
		cmocka_unit_test(test_credentials_renewed),
		cmocka_unit_test(test_credentials_refused),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_long_prefix),
		cmocka_unit_test(test_dot_prefix),
		cmocka_unit_test(test_config_checks),
		cmocka_unit_test(test_no_bucket),
		cmocka_unit_test(test_config_refusals),
		cmocka_unit_test(test_xml_long_text),
		cmocka_unit_test(test_put_small),
		cmocka_unit_test(test_owner),
		cmocka_unit_test(test_owner_race),
		cmocka_unit_test(test_put_empty),
		cmocka_unit_test(test_put_multipart),
		cmocka_unit_test(test_put_chained),
		cmocka_unit_test(test_put_ramp),
		cmocka_unit_test(test_put_wrong_bytes),
		cmocka_unit_test(test_multipart_leftovers),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_read_ranges),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_bad_secret),
		cmocka_unit_test(test_credentials_file),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_read_timeout),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_from_config),
	};

	if (!mkdtemp(tmpdir))
		return 1;
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		r = r ? r : 1;
	return r;
}
