/*
 * test_store.c - unit tests of the object store (index/store.c): objects
 * are named by the SHA-256 of their bytes, published once, read-only,
 * linked rather than copied on the same file system, and nothing is left
 * in tmp/ by a writer that did not publish. Asynchronous writes (on the
 * writer's thread) store and hash exactly what synchronous ones do, and
 * report a failed write with the same message.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "ring.h"
#include "store.h"

struct fixture {
	char dir[64];
	char root[128];
	struct store *st;
	struct ring *ring;
};

static int rm_entry(const char *path, const struct stat *s, int flag, struct FTW *ftw)
{
	(void)s, (void)flag, (void)ftw;
	return remove(path);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct errbuf eb;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/store", f->dir);
	assert_int_equal(store_open(&f->st, f->root, &eb), 0);
	int r = ring_new(&f->ring, 8);
	if (r < 0) {
		rm_rf(f->dir);
		free(f);
		fprintf(stderr, "no io_uring here (%s)\n", strerror(-r));
		exit(77);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ring_free(f->ring);
	store_close(f->st);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void sha_of(const void *buf, size_t len, uint8_t sha[32])
{
	unsigned int n = 0;
	assert_true(EVP_Digest(buf, len, sha, &n, EVP_sha256(), NULL));
	assert_int_equal(n, 32);
}

/* Invariant check: nothing in tmp/, every object read-only and named by
 * the hash of its bytes. */
static int check_object(void *opaque, const uint8_t sha[32], uint64_t size)
{
	struct fixture *f = opaque;
	struct stat s;
	uint8_t got[32];
	int fd = store_object_open(f->st, sha);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &s), 0);
	assert_int_equal(s.st_mode & 07777, 0444);
	assert_int_equal((uint64_t)s.st_size, size);
	char *buf = malloc(size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, size, 0), (ssize_t)size);
	sha_of(buf, size, got);
	assert_memory_equal(got, sha, 32);
	free(buf);
	close(fd);
	return 0;
}

static void assert_sane_store(struct fixture *f)
{
	char tmp[256];

	snprintf(tmp, sizeof(tmp), "%s/tmp", f->root);
	assert_int_equal(count_entries(tmp), 0);
	assert_int_equal(store_foreach_object(f->st, check_object, f), 0);
}

/* Stores buf (in two writes, to cover appending) and returns publish's result. */
static int put(struct fixture *f, const char *link_source, const void *buf, size_t len,
	       uint8_t sha[32])
{
	struct store_writer *w = NULL;
	struct errbuf eb;
	uint64_t size = 0;
	int r;

	assert_int_equal(store_writer_new(f->st, f->ring, link_source, &w, &eb), 0);
	assert_int_equal(store_writer_write(w, buf, len / 2, &eb), 0);
	assert_int_equal(store_writer_write(w, (const char *)buf + len / 2, len - len / 2, &eb), 0);
	assert_int_equal(store_writer_finish(w, sha, &size, &eb), 0);
	assert_int_equal(size, len);
	r = store_writer_publish(w, &eb);
	store_writer_free(w);
	return r;
}

static void test_sha_vector(void **state)
{
	struct fixture *f = *state;
	const char *want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	uint8_t sha[32], parsed[32];
	char hex[65], path[512], expect[512];

	assert_int_equal(put(f, NULL, "abc", 3, sha), 0);
	sha256_hex(sha, hex);
	assert_string_equal(hex, want);
	assert_int_equal(sha256_parse(want, parsed), 0);
	assert_memory_equal(parsed, sha, 32);
	assert_int_equal(store_object_path(f->st, sha, path, sizeof(path)), 0);
	snprintf(expect, sizeof(expect), "%s/objects/ba/%s", f->root, want);
	assert_string_equal(path, expect);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(store_object_path(f->st, sha, path, 10), -ENAMETOOLONG);
	assert_int_equal(sha256_parse("abc", parsed), -EINVAL);
	assert_sane_store(f);
}

static void test_publish_dedup(void **state)
{
	struct fixture *f = *state;
	const char data[] = "the same bytes, twice";
	uint8_t a[32], b[32];
	char path[512], buf[64];

	assert_int_equal(put(f, NULL, data, sizeof(data), a), 0);
	assert_int_equal(put(f, NULL, data, sizeof(data), b), STORE_EXISTS);
	assert_memory_equal(a, b, 32);
	store_object_path(f->st, a, path, sizeof(path));
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), (ssize_t)sizeof(data));
	assert_memory_equal(buf, data, sizeof(data));
	close(fd);
	assert_sane_store(f);
}

static void test_object_read_only(void **state)
{
	struct fixture *f = *state;
	uint8_t sha[32];
	char path[512];
	struct stat s;

	assert_int_equal(put(f, NULL, "read only", 9, sha), 0);
	store_object_path(f->st, sha, path, sizeof(path));
	assert_int_equal(stat(path, &s), 0);
	assert_int_equal(s.st_mode & 07777, 0444);
	if (geteuid() != 0) /* root ignores modes */
		assert_true(open(path, O_WRONLY) < 0);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/* Link mode needs a read lease on the source (store.h): where the file
 * system grants none (some FUSE, NFS, fs.leases-enable=0) the store
 * copies, and the tests of linking skip. */
static void skip_without_leases(const char *path)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	bool ok = fcntl(fd, F_SETLEASE, F_RDLCK) == 0;
	close(fd);
	if (!ok)
		skip();
}

static void test_link_mode(void **state)
{
	struct fixture *f = *state;
	const char data[] = "a capture moved into the vault";
	char src[256], path[512];
	struct store_writer *w = NULL;
	struct stat a, b;
	struct errbuf eb;
	uint8_t sha[32];

	snprintf(src, sizeof(src), "%s/source.pcap", f->dir);
	write_file(src, data, sizeof(data));
	skip_without_leases(src);
	assert_int_equal(store_writer_new(f->st, f->ring, src, &w, &eb), 0);
	assert_true(store_writer_linked(w));
	store_writer_free(w);

	assert_int_equal(put(f, src, data, sizeof(data), sha), 0);
	store_object_path(f->st, sha, path, sizeof(path));
	assert_int_equal(stat(src, &a), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_dev, b.st_dev);
	assert_int_equal(b.st_mode & 07777, 0444);
	/* The same bytes again, linked: already stored. */
	assert_int_equal(put(f, src, data, sizeof(data), sha), STORE_EXISTS);
	assert_sane_store(f);
}

/* Bytes that are not the source's (e.g. a decompressed source) must not
 * be published by linking the source. */
static void test_link_mode_size_mismatch(void **state)
{
	struct fixture *f = *state;
	char src[256];
	struct store_writer *w = NULL;
	struct errbuf eb;
	uint8_t sha[32];
	uint64_t size;

	snprintf(src, sizeof(src), "%s/compressed.gz", f->dir);
	write_file(src, "short", 5);
	skip_without_leases(src);
	assert_int_equal(store_writer_new(f->st, f->ring, src, &w, &eb), 0);
	assert_true(store_writer_linked(w));
	assert_int_equal(store_writer_write(w, "much longer content", 19, &eb), 0);
	assert_int_equal(store_writer_finish(w, sha, &size, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, src));
	store_writer_free(w);
	assert_int_equal(store_foreach_object(f->st, check_object, f), 0);
}

/* Copy mode: the kernel copies the source's bytes; they become the object
 * only if the source did not change while it was read. */
static void test_copy_from_source(void **state)
{
	struct fixture *f = *state;
	char data[100000], src[256], path[512], back[sizeof(data)];
	struct store_writer *w = NULL;
	struct errbuf eb;
	uint8_t sha[32];
	uint64_t size;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	snprintf(src, sizeof(src), "%s/copied.pcap", f->dir);
	write_file(src, data, sizeof(data));
	assert_int_equal(store_writer_new(f->st, f->ring, NULL, &w, &eb), 0);
	assert_int_equal(store_writer_copy_from(w, src), 0);
	assert_int_equal(store_writer_write(w, data, 60000, &eb), 0);
	assert_int_equal(store_writer_write(w, data + 60000, sizeof(data) - 60000, &eb), 0);
	assert_int_equal(store_writer_finish(w, sha, &size, &eb), 0);
	assert_int_equal(store_writer_publish(w, &eb), 0);
	store_writer_free(w);
	store_object_path(f->st, sha, path, sizeof(path));
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(back, 1, sizeof(back), fp), sizeof(data));
	fclose(fp);
	assert_memory_equal(back, data, sizeof(data));
	assert_sane_store(f);

	/* Written to while being copied: refused, nothing published. */
	assert_int_equal(store_writer_new(f->st, f->ring, NULL, &w, &eb), 0);
	assert_int_equal(store_writer_copy_from(w, src), 0);
	assert_int_equal(store_writer_write(w, data, sizeof(data), &eb), 0);
	usleep(10000);
	write_file(src, data, sizeof(data));
	assert_int_equal(store_writer_finish(w, sha, &size, &eb), -EAGAIN);
	assert_non_null(strstr(eb.msg, "changed"));
	store_writer_free(w);
	assert_sane_store(f);
}

static void test_unpublished_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct store_writer *w = NULL;
	struct errbuf eb;
	uint8_t sha[32];
	uint64_t size;
	char tmp[256];

	snprintf(tmp, sizeof(tmp), "%s/tmp", f->root);
	assert_int_equal(store_writer_new(f->st, f->ring, NULL, &w, &eb), 0);
	assert_false(store_writer_linked(w));
	assert_int_equal(store_writer_write(w, "abandoned", 9, &eb), 0);
	assert_int_equal(count_entries(tmp), 1);
	store_writer_free(w);
	assert_int_equal(count_entries(tmp), 0);

	/* Finished but not published: still nothing. */
	assert_int_equal(store_writer_new(f->st, f->ring, NULL, &w, &eb), 0);
	assert_int_equal(store_writer_write(w, "abandoned", 9, &eb), 0);
	assert_int_equal(store_writer_finish(w, sha, &size, &eb), 0);
	store_writer_free(w);
	assert_int_equal(count_entries(tmp), 0);
	assert_int_equal(store_object_open(f->st, sha), -ENOENT);
	assert_null(store_writer_free(NULL));
}

/* Bytes i*31 + i/4096: no two MiB alike. */
static uint8_t *pattern(size_t len)
{
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + i / 4096);
	return buf;
}

/* Writes buf asynchronously in uneven pieces, small ones (written on the
 * caller's thread) among large ones, waiting after most as the import
 * pass does, and returns the finished writer's hash. */
static void write_async_pieces(struct store_writer *w, const uint8_t *buf, size_t len,
			       uint8_t sha[32])
{
	static const size_t pieces[] = { 1u << 20, 100, 300u << 10, (64u << 10) - 1, 2u << 20, 7 };
	struct errbuf eb;
	uint64_t size = 0;
	size_t off = 0;
	for (unsigned i = 0; off < len; i++) {
		size_t n = pieces[i % 6] < len - off ? pieces[i % 6] : len - off;
		assert_int_equal(store_writer_write_async(w, buf + off, n, &eb), 0);
		if (i % 3 != 1) /* else the next write waits for this one */
			assert_int_equal(store_writer_wait(w, &eb), 0);
		off += n;
	}
	assert_int_equal(store_writer_finish(w, sha, &size, &eb), 0);
	assert_int_equal(size, len);
}

static void assert_object_is(struct fixture *f, const uint8_t sha[32], const uint8_t *buf,
			     size_t len)
{
	char path[512];
	uint8_t *back = malloc(len + 1);
	store_object_path(f->st, sha, path, sizeof(path));
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fread(back, 1, len + 1, fp), len);
	fclose(fp);
	assert_memory_equal(back, buf, len);
	free(back);
}

static void test_async_writes(void **state)
{
	struct fixture *f = *state;
	const size_t len = (9u << 20) + 12345;
	uint8_t *buf = pattern(len);
	uint8_t want[32], sha[32];
	struct store_writer *w = NULL;
	struct errbuf eb;
	char src[256];

	/* Copy from our buffer. */
	assert_int_equal(store_writer_new(f->st, f->ring, NULL, &w, &eb), 0);
	write_async_pieces(w, buf, len, sha);
	assert_int_equal(store_writer_publish(w, &eb), 0);
	store_writer_free(w);
	assert_int_equal(EVP_Digest(buf, len, want, NULL, EVP_sha256(), NULL), 1);
	assert_memory_equal(sha, want, 32);
	assert_object_is(f, sha, buf, len);
	assert_int_equal(store_object_remove(f->st, sha), 0);

	/* Copied in the kernel from the source file. */
	snprintf(src, sizeof(src), "%s/big.pcap", f->dir);
	write_file(src, buf, len);
	assert_int_equal(store_writer_new(f->st, f->ring, NULL, &w, &eb), 0);
	assert_int_equal(store_writer_copy_from(w, src), 0);
	write_async_pieces(w, buf, len, sha);
	assert_int_equal(store_writer_publish(w, &eb), 0);
	store_writer_free(w);
	assert_memory_equal(sha, want, 32);
	assert_object_is(f, sha, buf, len);
	assert_int_equal(store_object_remove(f->st, sha), 0);

	/* Linked: only hashed. */
	skip_without_leases(src);
	assert_int_equal(store_writer_new(f->st, f->ring, src, &w, &eb), 0);
	assert_true(store_writer_linked(w));
	write_async_pieces(w, buf, len, sha);
	assert_int_equal(store_writer_publish(w, &eb), 0);
	store_writer_free(w);
	assert_memory_equal(sha, want, 32);
	assert_object_is(f, sha, buf, len);
	assert_sane_store(f);
	free(buf);
}

/* A write that fails (here: past RLIMIT_FSIZE, as a full disk would) is
 * reported by the write itself or the wait after it, whichever thread
 * made it, then by every later call, and leaves nothing behind. */
/* Files this process writes may grow to max bytes; past that a write
 * fails with EFBIG (SIGXFSZ ignored). The old limit goes to *old. */
static void limit_file_size(rlim_t max, struct rlimit *old)
{
	assert_int_equal(getrlimit(RLIMIT_FSIZE, old), 0);
	struct rlimit small = { .rlim_cur = max, .rlim_max = old->rlim_max };
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
}

static void restore_file_size(const struct rlimit *old)
{
	assert_int_equal(setrlimit(RLIMIT_FSIZE, old), 0);
	signal(SIGXFSZ, SIG_DFL);
}

static void test_async_write_error(void **state)
{
	struct fixture *f = *state;
	const size_t len = 3u << 20;
	uint8_t *buf = pattern(len), sha[32];
	struct store_writer *w = NULL;
	struct rlimit old;
	struct errbuf eb = { { 0 } };
	uint64_t size;
	char tmp[256];

	assert_int_equal(store_writer_new(f->st, f->ring, NULL, &w, &eb), 0);
	limit_file_size(1u << 20, &old);
	assert_int_equal(store_writer_write_async(w, buf, 512u << 10, &eb), 0);
	assert_int_equal(store_writer_wait(w, &eb), 0);
	int r = store_writer_write_async(w, buf + (512u << 10), 1u << 20, &eb);
	assert_int_equal(r ? r : store_writer_wait(w, &eb), -EFBIG);
	restore_file_size(&old);
	assert_non_null(strstr(eb.msg, "cannot write "));
	assert_non_null(strstr(eb.msg, "/tmp/obj-"));
	assert_non_null(strstr(eb.msg, strerror(EFBIG)));
	eb.msg[0] = '\0';
	assert_int_equal(store_writer_write_async(w, buf, 1u << 20, &eb), -EFBIG);
	assert_non_null(strstr(eb.msg, strerror(EFBIG)));
	assert_int_equal(store_writer_write(w, buf, 10, &eb), -EFBIG);
	assert_int_equal(store_writer_finish(w, sha, &size, &eb), -EFBIG);
	store_writer_free(w);
	snprintf(tmp, sizeof(tmp), "%s/tmp", f->root);
	assert_int_equal(count_entries(tmp), 0);
	assert_sane_store(f);
	free(buf);
}

/* Copy mode past the first chunk, by O_DIRECT writes from the source
 * hasher's buffers and (direct false) by the copier thread: a failed write
 * reaches the writer's calls, a source cut short while it is copied is
 * refused, and a writer freed in the middle of a copy leaves nothing
 * behind. */
static void copy_errors(struct fixture *f, bool direct)
{
	const size_t len = 20u << 20;
	uint8_t *buf = pattern(len), sha[32];
	struct store_writer *w = NULL;
	struct rlimit old;
	struct errbuf eb = { { 0 } };
	uint64_t size;
	char src[256], tmp[256];

	snprintf(src, sizeof(src), "%s/copier.pcap", f->dir);
	snprintf(tmp, sizeof(tmp), "%s/tmp", f->root);
	write_file(src, buf, len);
	if (direct)
		unsetenv("CAPVAULT_NO_DIRECT_IO");
	else
		setenv("CAPVAULT_NO_DIRECT_IO", "1", 1);

	limit_file_size(10u << 20, &old);
	assert_int_equal(store_writer_new(f->st, f->ring, NULL, &w, &eb), 0);
	assert_int_equal(store_writer_copy_from(w, src), 0);
	int r = 0;
	for (size_t off = 0; off < len && r == 0; off += 1u << 20)
		r = store_writer_write_async(w, buf + off, 1u << 20, &eb);
	if (r == 0)
		r = store_writer_finish(w, sha, &size, &eb);
	assert_int_equal(r, -EFBIG);
	restore_file_size(&old);
	assert_non_null(strstr(eb.msg, direct ? "cannot copy the source to " : "cannot write "));
	assert_non_null(strstr(eb.msg, "/tmp/obj-"));
	assert_non_null(strstr(eb.msg, strerror(EFBIG)));
	assert_int_equal(store_writer_finish(w, sha, &size, &eb), -EFBIG);
	store_writer_free(w);
	assert_int_equal(count_entries(tmp), 0);

	/* Cut short after the copy began: the copy ends early, and the
	 * bytes hashed are not the file's. */
	assert_int_equal(store_writer_new(f->st, f->ring, NULL, &w, &eb), 0);
	assert_int_equal(store_writer_copy_from(w, src), 0);
	assert_int_equal(truncate(src, 9u << 20), 0);
	for (size_t off = 0; off < len; off += 1u << 20)
		assert_int_equal(store_writer_write(w, buf + off, 1u << 20, &eb), 0);
	assert_int_equal(store_writer_finish(w, sha, &size, &eb), -EAGAIN);
	assert_non_null(strstr(eb.msg, "changed"));
	store_writer_free(w);
	assert_int_equal(count_entries(tmp), 0);

	/* Freed while copying. */
	write_file(src, buf, len);
	assert_int_equal(store_writer_new(f->st, f->ring, NULL, &w, &eb), 0);
	assert_int_equal(store_writer_copy_from(w, src), 0);
	store_writer_free(w);
	assert_int_equal(count_entries(tmp), 0);
	assert_sane_store(f);
	free(buf);
}

static void test_copier_errors(void **state)
{
	copy_errors(*state, true);
	copy_errors(*state, false);
	unsetenv("CAPVAULT_NO_DIRECT_IO");
}

/* The writer tells whether the file it links or copies is the one the
 * caller reads (a path replaced between the two opens is refused). */
static void test_source_is(void **state)
{
	struct fixture *f = *state;
	struct store_writer *w = NULL;
	struct errbuf eb;
	struct stat a, b;
	char src[256], other[256];

	snprintf(src, sizeof(src), "%s/same.pcap", f->dir);
	snprintf(other, sizeof(other), "%s/other.pcap", f->dir);
	write_file(src, "one", 3);
	write_file(other, "two", 3);
	assert_int_equal(stat(src, &a), 0);
	assert_int_equal(stat(other, &b), 0);

	assert_int_equal(store_writer_new(f->st, f->ring, NULL, &w, &eb), 0);
	assert_true(store_writer_source_is(w, b.st_dev, b.st_ino)); /* writes what it is given */
	assert_int_equal(store_writer_copy_from(w, src), 0);
	assert_true(store_writer_source_is(w, a.st_dev, a.st_ino));
	assert_false(store_writer_source_is(w, b.st_dev, b.st_ino));
	store_writer_free(w);

	skip_without_leases(src);
	assert_int_equal(store_writer_new(f->st, f->ring, src, &w, &eb), 0);
	assert_true(store_writer_linked(w));
	assert_true(store_writer_source_is(w, a.st_dev, a.st_ino));
	assert_false(store_writer_source_is(w, b.st_dev, b.st_ino));
	store_writer_free(w);
	assert_sane_store(f);
}

static void test_tmp_cleanup_on_open(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb;
	char path[256];

	snprintf(path, sizeof(path), "%s/tmp/obj-crAsh9", f->root);
	write_file(path, "half", 4);
	snprintf(path, sizeof(path), "%s/tmp/upload-Ab3dE6", f->root);
	write_file(path, "half", 4);
	/* Not capvault's: a person's file and folder stay, and the open
	 * still succeeds (a folder that cannot be removed once failed it). */
	snprintf(path, sizeof(path), "%s/tmp/important.txt", f->root);
	write_file(path, "keep", 4);
	snprintf(path, sizeof(path), "%s/tmp/obj-crashed-dir", f->root);
	assert_int_equal(mkdir(path, 0750), 0);
	snprintf(path, sizeof(path), "%s/tmp/obj-crashed-dir/inside", f->root);
	write_file(path, "keep", 4);
	store_close(f->st);
	assert_int_equal(store_open(&f->st, f->root, &eb), 0);
	snprintf(path, sizeof(path), "%s/tmp", f->root);
	assert_int_equal(count_entries(path), 2);
	snprintf(path, sizeof(path), "%s/tmp/important.txt", f->root);
	assert_int_equal(access(path, F_OK), 0);
	assert_true(store_tmp_is_ours("obj-a1B2c3"));
	assert_false(store_tmp_is_ours("obj-a1B2c"));
	assert_false(store_tmp_is_ours("obj-a1B2c3.x"));
	assert_false(store_tmp_is_ours("important.txt"));
	snprintf(path, sizeof(path), "%s/objects", f->root);
	struct stat s;
	assert_int_equal(stat(path, &s), 0);
	assert_int_equal(s.st_mode & 0777, 0750);
}

struct seen {
	int n;
	uint64_t bytes;
};

static int count_object(void *opaque, const uint8_t sha[32], uint64_t size)
{
	struct seen *s = opaque;
	(void)sha;
	s->n++;
	s->bytes += size;
	return 0;
}

static int stop_at_first(void *opaque, const uint8_t sha[32], uint64_t size)
{
	(void)opaque, (void)sha, (void)size;
	return 42;
}

static void test_foreach(void **state)
{
	struct fixture *f = *state;
	struct seen seen = { 0 };
	uint8_t sha[32];
	char path[512];

	assert_int_equal(put(f, NULL, "one", 3, sha), 0);
	assert_int_equal(put(f, NULL, "two!", 4, sha), 0);
	assert_int_equal(put(f, NULL, "three", 5, sha), 0);
	/* Junk the walk must skip. */
	snprintf(path, sizeof(path), "%s/objects/README", f->root);
	write_file(path, "x", 1);
	snprintf(path, sizeof(path), "%s/objects/zz", f->root);
	assert_int_equal(mkdir(path, 0750), 0);
	snprintf(path, sizeof(path), "%s/objects/ab", f->root);
	mkdir(path, 0750);
	snprintf(path, sizeof(path), "%s/objects/ab/not-a-hash", f->root);
	write_file(path, "x", 1);
	snprintf(path, sizeof(path), "%s/objects/ab/cd%062d", f->root, 0);
	write_file(path, "x", 1); /* hex but in the wrong fan-out folder */

	assert_int_equal(store_foreach_object(f->st, count_object, &seen), 0);
	assert_int_equal(seen.n, 3);
	assert_int_equal(seen.bytes, 12);
	assert_int_equal(store_foreach_object(f->st, stop_at_first, NULL), 42);

	assert_int_equal(store_object_remove(f->st, sha), 0);
	assert_int_equal(store_object_remove(f->st, sha), -ENOENT);
	seen = (struct seen){ 0 };
	assert_int_equal(store_foreach_object(f->st, count_object, &seen), 0);
	assert_int_equal(seen.n, 2);
}

/* Issue 15.4: a writer that still holds the source open for writing (one
 * fd closed, which the watcher sees as close-write, one kept) must not be
 * able to change the object: the store copies such a source. */
static void test_link_refuses_open_writer(void **state)
{
	struct fixture *f = *state;
	const char data[] = "a capture whose writer keeps an fd";
	char src[256], path[512];
	struct stat a, b;
	uint8_t sha[32];

	snprintf(src, sizeof(src), "%s/written.pcap", f->dir);
	write_file(src, data, sizeof(data));
	int wfd = open(src, O_WRONLY | O_APPEND);
	assert_true(wfd >= 0);
	assert_int_equal(put(f, src, data, sizeof(data), sha), 0);
	store_object_path(f->st, sha, path, sizeof(path));
	assert_int_equal(stat(src, &a), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_true(a.st_ino != b.st_ino); /* copied, not linked */
	assert_int_equal(write(wfd, "appended", 8), 8);
	close(wfd);
	assert_sane_store(f);
}

/* A writer that opens the source while it is hashed breaks the store's
 * lease: the import is refused (a retry copies), nothing is linked. */
static void test_link_lease_broken(void **state)
{
	struct fixture *f = *state;
	const char data[] = "a capture someone opens for writing mid-import";
	char src[256];
	struct store_writer *w = NULL;
	struct errbuf eb;
	uint8_t sha[32];
	uint64_t size;

	snprintf(src, sizeof(src), "%s/reopened.pcap", f->dir);
	write_file(src, data, sizeof(data));
	skip_without_leases(src);
	assert_int_equal(store_writer_new(f->st, f->ring, src, &w, &eb), 0);
	assert_true(store_writer_linked(w));
	/* O_NONBLOCK: the open fails at once (EWOULDBLOCK) but breaks the
	 * lease, as a blocking writer's open would. */
	int wfd = open(src, O_WRONLY | O_NONBLOCK);
	assert_int_equal(wfd, -1);
	assert_int_equal(errno, EWOULDBLOCK);
	assert_int_equal(store_writer_write(w, data, sizeof(data), &eb), -EAGAIN);
	assert_int_equal(store_writer_finish(w, sha, &size, &eb), -EAGAIN);
	store_writer_free(w);
	assert_int_equal(store_foreach_object(f->st, stop_at_first, NULL), 0);
	assert_sane_store(f);
}

/* Issue 15.5: a file another user owns is copied (its owner could make it
 * writable again; a non-root store cannot even make it read-only). */
static void test_link_other_owner_copies(void **state)
{
	struct fixture *f = *state;
	const char data[] = "a capture some group member dropped";
	char src[256], path[512];
	struct store_writer *w = NULL;
	struct stat a, b;
	struct errbuf eb;
	uint8_t sha[32];

	if (geteuid() != 0)
		skip(); /* cannot give a file away; tests/integration/link_owner.sh */
	snprintf(src, sizeof(src), "%s/theirs.pcap", f->dir);
	write_file(src, data, sizeof(data));
	assert_int_equal(chown(src, 4242, 4242), 0);
	assert_int_equal(store_writer_new(f->st, f->ring, src, &w, &eb), 0);
	assert_false(store_writer_linked(w));
	store_writer_free(w);
	assert_int_equal(put(f, src, data, sizeof(data), sha), 0);
	store_object_path(f->st, sha, path, sizeof(path));
	assert_int_equal(stat(src, &a), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_true(a.st_ino != b.st_ino);
	assert_int_equal(a.st_mode & 07777, 0644); /* the source is left as it was */
	assert_sane_store(f);
}

/* A corrupt object moved aside is kept (quarantine/), and the same bytes
 * stored again publish a good object rather than dedup onto nothing; an
 * object whose size is not the bytes' is replaced at publish. */
static void test_quarantine(void **state)
{
	struct fixture *f = *state;
	const char data[] = "bytes that get corrupted on disk";
	char path[512], qdir[256];
	uint8_t sha[32];
	struct errbuf eb;

	assert_int_equal(put(f, NULL, data, sizeof(data), sha), 0);
	assert_false(store_object_quarantined(f->st, sha));
	assert_int_equal(store_object_quarantine(f->st, sha, &eb), 0);
	assert_true(store_object_quarantined(f->st, sha));
	assert_int_equal(store_object_quarantine(f->st, sha, &eb), -ENOENT);
	snprintf(qdir, sizeof(qdir), "%s/quarantine", f->root);
	assert_int_equal(count_entries(qdir), 1);
	assert_int_equal(put(f, NULL, data, sizeof(data), sha), 0); /* not STORE_EXISTS */
	assert_sane_store(f);

	/* Appended to in place (what 15.4's writer did): replaced. */
	store_object_path(f->st, sha, path, sizeof(path));
	assert_int_equal(chmod(path, 0644), 0);
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "junk", 4), 4);
	close(fd);
	assert_int_equal(chmod(path, 0444), 0);
	assert_int_equal(put(f, NULL, data, sizeof(data), sha), 0);
	assert_int_equal(count_entries(qdir), 2);
	assert_sane_store(f);
}

static void test_space(void **state)
{
	struct fixture *f = *state;
	uint64_t free_bytes = 0, total = 0;

	assert_int_equal(store_space(f->st, &free_bytes, &total), 0);
	assert_true(total > 0);
	assert_true(free_bytes <= total);
	assert_string_equal(store_root(f->st), f->root);
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct store *st = NULL;
	struct errbuf eb;
	char path[256];

	snprintf(path, sizeof(path), "%s/no/such/parent", f->dir);
	assert_int_equal(store_open(&st, path, &eb), -ENOENT);
	assert_non_null(strstr(eb.msg, "no/such"));
	assert_null(store_close(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sha_vector, setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_object_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_mode_size_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_from_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copier_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_is, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unpublished_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_write_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tmp_cleanup_on_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_space, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_refuses_open_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_lease_broken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_other_owner_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
