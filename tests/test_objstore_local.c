/*
 * test_objstore_local.c - the local store as an objstore backend
 * (index/objstore/objstore_local.c): put writes through the store's writer
 * and refuses bytes that do not hash to the name, a put of a present
 * object is a confirmation, stat/verify/remove/list answer about the same
 * objects/ files, and reads return exactly the bytes asked for; the
 * store's state (objstore_check, objstore_health) for a missing and a
 * read-only folder.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "objstore.h"
#include "ring.h"
#include "store.h"

#define OBJ_SIZE (3u * 1024 * 1024 + 123) /* several read_stream chunks */

struct fixture {
	char dir[64];
	char root[128];
	struct store *st;
	struct objstore *os;
	uint8_t *bytes;
	uint8_t sha[32];
	int src_fd;
};

static int rm_entry(const char *path, const struct stat *s, int flag, struct FTW *ftw)
{
	(void)s, (void)flag, (void)ftw;
	return remove(path);
}

static void sha256(const void *buf, size_t len, uint8_t out[32])
{
	unsigned n = 0;
	EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct errbuf eb;
	struct ring *probe = NULL;
	char src[160];

	assert_non_null(f);
	if (ring_new(&probe, 4) < 0) {
		fprintf(stderr, "no io_uring here\n");
		exit(77);
	}
	ring_free(probe);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_objlocal.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/store", f->dir);
	assert_int_equal(store_open(&f->st, f->root, &eb), 0);
	assert_int_equal(objstore_local_new(&f->os, f->st, &eb), 0);
	f->bytes = malloc(OBJ_SIZE);
	assert_non_null(f->bytes);
	for (size_t i = 0; i < OBJ_SIZE; i++)
		f->bytes[i] = (uint8_t)(i * 7 + (i >> 12));
	sha256(f->bytes, OBJ_SIZE, f->sha);
	snprintf(src, sizeof(src), "%s/source", f->dir);
	f->src_fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(f->src_fd >= 0);
	assert_int_equal(write(f->src_fd, f->bytes, OBJ_SIZE), (ssize_t)OBJ_SIZE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->src_fd);
	objstore_free(f->os);
	store_close(f->st);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f->bytes);
	free(f);
	return 0;
}

static int count_tmp(void *opaque, const char *name)
{
	(void)name;
	(*(int *)opaque)++;
	return 0;
}

static void test_put_stat_verify(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	uint64_t size = 0;
	char path[256];
	struct stat s;

	assert_int_equal(objstore_stat(f->os, f->sha, &size, &eb), -ENOENT);
	assert_int_equal(objstore_put(f->os, f->sha, f->src_fd, OBJ_SIZE, &eb), 0);
	assert_int_equal(objstore_stat(f->os, f->sha, &size, &eb), 0);
	assert_int_equal(size, OBJ_SIZE);
	assert_int_equal(objstore_verify(f->os, f->sha, &eb), 0);
	assert_int_equal(store_object_path(f->st, f->sha, path, sizeof(path)), 0);
	assert_int_equal(stat(path, &s), 0);
	assert_int_equal(s.st_mode & 0777, 0444);
	/* Present with the right size: confirmed, the file left alone. */
	ino_t ino = s.st_ino;
	assert_int_equal(objstore_put(f->os, f->sha, f->src_fd, OBJ_SIZE, &eb), 0);
	assert_int_equal(stat(path, &s), 0);
	assert_int_equal(s.st_ino, ino);
	assert_non_null(strstr(objstore_describe(f->os), f->root));
}

static void test_put_wrong_bytes_refused(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	uint8_t other[32];
	uint64_t size;
	int tmp = 0;

	memcpy(other, f->sha, 32);
	other[0] ^= 1;
	assert_int_equal(objstore_put(f->os, other, f->src_fd, OBJ_SIZE, &eb), -EIO);
	assert_non_null(strstr(eb.msg, "do not hash"));
	assert_int_equal(objstore_stat(f->os, other, &size, &eb), -ENOENT);
	/* Fewer bytes than promised: refused too. */
	assert_int_equal(objstore_put(f->os, f->sha, f->src_fd, OBJ_SIZE + 10, &eb), -EIO);
	assert_int_equal(objstore_stat(f->os, f->sha, &size, &eb), -ENOENT);
	assert_int_equal(store_foreach_tmp(f->st, count_tmp, &tmp), 0);
	assert_int_equal(tmp, 0);
}

static void test_verify_finds_corruption(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	char path[256];

	assert_int_equal(objstore_put(f->os, f->sha, f->src_fd, OBJ_SIZE, &eb), 0);
	assert_int_equal(store_object_path(f->st, f->sha, path, sizeof(path)), 0);
	assert_int_equal(chmod(path, 0644), 0);
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	uint8_t flipped = (uint8_t)~f->bytes[1000];
	assert_int_equal(pwrite(fd, &flipped, 1, 1000), 1);
	close(fd);
	assert_int_equal(objstore_verify(f->os, f->sha, &eb), -EIO);
	assert_non_null(strstr(eb.msg, "do not hash"));
	/* A put of the right bytes is not confirmed by the corrupt copy of
	 * the same size: it replaces it (advtier D). */
	assert_int_equal(objstore_put(f->os, f->sha, f->src_fd, OBJ_SIZE, &eb), 0);
	assert_int_equal(objstore_verify(f->os, f->sha, &eb), 0);
}

struct seen {
	int n;
	uint8_t sha[32];
	char key[80];
	uint64_t size;
};

static int list_fn(void *opaque, const uint8_t *sha, const char *key, uint64_t size)
{
	struct seen *s = opaque;

	assert_non_null(sha);
	s->n++;
	memcpy(s->sha, sha, 32);
	snprintf(s->key, sizeof(s->key), "%s", key);
	s->size = size;
	return 0;
}

static void test_list_remove(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	struct seen s = { 0 };
	char hex[65], want[80];
	uint64_t size;

	assert_int_equal(objstore_put(f->os, f->sha, f->src_fd, OBJ_SIZE, &eb), 0);
	assert_int_equal(objstore_list(f->os, list_fn, &s, &eb), 0);
	assert_int_equal(s.n, 1);
	assert_memory_equal(s.sha, f->sha, 32);
	sha256_hex(f->sha, hex);
	snprintf(want, sizeof(want), "objects/%.2s/%s", hex, hex);
	assert_string_equal(s.key, want);
	assert_int_equal(s.size, OBJ_SIZE);
	assert_int_equal(objstore_remove(f->os, f->sha, &eb), 0);
	assert_int_equal(objstore_stat(f->os, f->sha, &size, &eb), -ENOENT);
	assert_int_equal(objstore_remove(f->os, f->sha, &eb), 0); /* absent: fine */
	s.n = 0;
	assert_int_equal(objstore_list(f->os, list_fn, &s, &eb), 0);
	assert_int_equal(s.n, 0);
}

static void test_read_ranges(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	static const uint64_t offs[] = { 0, 5000, 5100, OBJ_SIZE - 100, 1u << 20 };
	static const uint32_t lens[] = { 10, 100, 7, 100, 70000 };
	struct objstore_range r[5];
	uint8_t *bufs[5];

	assert_int_equal(objstore_put(f->os, f->sha, f->src_fd, OBJ_SIZE, &eb), 0);
	for (int i = 0; i < 5; i++) {
		bufs[i] = malloc(lens[i]);
		r[i] = (struct objstore_range){ .offset = offs[i], .len = lens[i], .buf = bufs[i] };
	}
	assert_int_equal(objstore_read_ranges(f->os, f->sha, r, 5, &eb), 0);
	for (int i = 0; i < 5; i++)
		assert_memory_equal(bufs[i], f->bytes + offs[i], lens[i]);
	/* Past the end: an error, never a short buffer passed off as whole. */
	r[0].offset = OBJ_SIZE - 5;
	assert_int_equal(objstore_read_ranges(f->os, f->sha, r, 1, &eb), -EIO);
	for (int i = 0; i < 5; i++)
		free(bufs[i]);
	uint8_t none[32] = { 0 };
	assert_int_equal(objstore_read_ranges(f->os, none, r, 1, &eb), -ENOENT);
}

struct collect {
	uint8_t *buf;
	size_t len;
	int calls;
	int stop_after;
};

static int collect_fn(void *opaque, const void *buf, size_t len)
{
	struct collect *c = opaque;

	memcpy(c->buf + c->len, buf, len);
	c->len += len;
	return ++c->calls == c->stop_after ? 42 : 0;
}

static void test_read_stream(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	struct collect c = { .buf = malloc(OBJ_SIZE) };

	assert_int_equal(objstore_put(f->os, f->sha, f->src_fd, OBJ_SIZE, &eb), 0);
	assert_int_equal(objstore_read_stream(f->os, f->sha, 0, UINT64_MAX, collect_fn, &c, &eb), 0);
	assert_int_equal(c.len, OBJ_SIZE);
	assert_memory_equal(c.buf, f->bytes, OBJ_SIZE);
	c.len = 0;
	assert_int_equal(objstore_read_stream(f->os, f->sha, 12345, 2000000, collect_fn, &c, &eb), 0);
	assert_int_equal(c.len, 2000000);
	assert_memory_equal(c.buf, f->bytes + 12345, 2000000);
	c.len = 0;
	c.calls = 0;
	c.stop_after = 2;
	assert_int_equal(objstore_read_stream(f->os, f->sha, 0, UINT64_MAX, collect_fn, &c, &eb), 42);
	assert_int_equal(objstore_read_stream(f->os, f->sha, OBJ_SIZE - 1, 2, collect_fn, &c, &eb),
			 -EIO);
	free(c.buf);
}

struct changes {
	unsigned n;
	enum objstore_state before, now;
};

static void on_change(void *opaque, enum objstore_state before, const struct objstore_health *now)
{
	struct changes *c = opaque;
	c->n++;
	c->before = before;
	c->now = now->state;
}

/* A store given by its folder: a missing parent is a state (no_bucket,
 * naming it), not a failure to make the backend; once the parent is
 * there, the next call opens (makes) the store and the state is ok. */
static void test_state_of_a_folder(void **state)
{
	struct fixture *f = *state;
	struct objstore *os = NULL;
	struct objstore_health h;
	struct changes c = { 0 };
	struct errbuf eb = { "" };
	char parent[160], root[200];
	uint64_t size;

	snprintf(parent, sizeof(parent), "%s/mnt", f->dir);
	snprintf(root, sizeof(root), "%s/bucket", parent);
	assert_int_equal(objstore_local_open(&os, root, &eb), 0);
	objstore_set_health_hook(os, on_change, &c);
	objstore_health(os, &h);
	assert_int_equal(h.state, OBJSTORE_UNKNOWN);
	assert_int_equal(h.checked_ns, 0);
	assert_string_equal(objstore_state_name(h.state), "unknown");

	assert_int_equal(objstore_check(os, &eb), -ENOENT);
	objstore_health(os, &h);
	assert_int_equal(h.state, OBJSTORE_NO_BUCKET);
	assert_string_equal(objstore_state_name(h.state), "no_bucket");
	assert_non_null(strstr(h.error, parent));
	assert_true(h.since_ns > 0 && h.checked_ns >= h.since_ns);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.before, OBJSTORE_UNKNOWN);
	/* Any call finds the same, and the state does not change. */
	assert_int_equal(objstore_stat(os, f->sha, &size, &eb), -ENOENT);
	assert_int_equal(c.n, 1);

	assert_int_equal(mkdir(parent, 0700), 0);
	assert_int_equal(objstore_check(os, &eb), 0);
	objstore_health(os, &h);
	assert_int_equal(h.state, OBJSTORE_OK);
	assert_string_equal(h.error, "");
	assert_int_equal(c.n, 2);
	assert_int_equal(c.before, OBJSTORE_NO_BUCKET);
	assert_int_equal(c.now, OBJSTORE_OK);
	assert_int_equal(objstore_put(os, f->sha, f->src_fd, OBJ_SIZE, &eb), 0);
	assert_int_equal(objstore_stat(os, f->sha, &size, &eb), 0);
	assert_int_equal(size, OBJ_SIZE);
	objstore_free(os);
}

/* A folder that cannot be written (as a user other than root, whom the
 * mode does not stop): refused. */
static void test_state_read_only(void **state)
{
	struct fixture *f = *state;
	struct objstore_health h;
	struct errbuf eb = { "" };
	char objects[200];

	if (geteuid() == 0)
		skip();
	assert_int_equal(objstore_check(f->os, &eb), 0);
	snprintf(objects, sizeof(objects), "%s/objects", f->root);
	assert_int_equal(chmod(objects, 0555), 0);
	assert_int_equal(objstore_check(f->os, &eb), -EACCES);
	objstore_health(f->os, &h);
	assert_int_equal(h.state, OBJSTORE_REFUSED);
	assert_non_null(strstr(h.error, "cannot write in"));
	assert_int_equal(chmod(objects, 0755), 0);
}

/* A put the folder cannot take shows in the state, and the next one that
 * works clears it; bytes that do not hash to the name are the source's
 * fault and leave the state alone. */
static void test_state_of_puts(void **state)
{
	struct fixture *f = *state;
	struct objstore_health h;
	struct errbuf eb = { "" };
	char tmp[200], aside[200];
	uint8_t wrong[32] = { 1 };

	assert_int_equal(objstore_check(f->os, &eb), 0);
	assert_int_equal(objstore_put(f->os, wrong, f->src_fd, OBJ_SIZE, &eb), -EIO);
	objstore_health(f->os, &h);
	assert_int_equal(h.state, OBJSTORE_OK);
	snprintf(tmp, sizeof(tmp), "%s/tmp", f->root);
	snprintf(aside, sizeof(aside), "%s/tmp.aside", f->root);
	assert_int_equal(rename(tmp, aside), 0);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	int r = objstore_put(f->os, f->sha, f->src_fd, OBJ_SIZE, &eb);
	assert_true(r < 0);
	objstore_health(f->os, &h);
	assert_int_not_equal(h.state, OBJSTORE_OK);
	assert_true(h.error[0] != '\0');
	assert_int_equal(unlink(tmp), 0);
	assert_int_equal(rename(aside, tmp), 0);
	assert_int_equal(objstore_put(f->os, f->sha, f->src_fd, OBJ_SIZE, &eb), 0);
	objstore_health(f->os, &h);
	assert_int_equal(h.state, OBJSTORE_OK);
	assert_string_equal(h.error, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_stat_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_wrong_bytes_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify_finds_corruption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_of_a_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_of_puts, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
