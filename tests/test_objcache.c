/*
 * test_objcache.c - the read-through cache of remote objects
 * (index/objstore/objcache.c), with a second local store standing in for
 * the object store: ranges come back exact, a repeat read is served from
 * the cache without touching the store, the cache never holds more than
 * its bound and evicts the least recently used, its accounting survives a
 * restart (and an unclean reboot empties it), a whole object is cached
 * only when it hashed to its name, concurrent readers agree, and on a
 * file system short of space the cache keeps its free-space floor (a
 * fake file system whose free space is its size less the cache's files).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "blockdig.h"
#include "objcache.h"
#include "objstore.h"
#include "objstore_priv.h"
#include "ring.h"
#include "store.h"

#define BLK OBJCACHE_BLOCK
#define OBJ_SIZE (10u * BLK + 777) /* a short last block */

struct fixture {
	char dir[64];
	char remote_root[128], cache_root[128];
	struct store *remote;
	struct objstore *os;
	struct objcache *c;
	uint8_t *bytes;
	uint8_t sha[32];
};

static int rm_entry(const char *path, const struct stat *s, int flag, struct FTW *ftw)
{
	(void)s, (void)flag, (void)ftw;
	return remove(path);
}

static void put_object(struct fixture *f, const uint8_t *bytes, size_t len, uint8_t sha[32])
{
	struct errbuf eb;
	unsigned n = 0;
	char src[160];

	EVP_Digest(bytes, len, sha, &n, EVP_sha256(), NULL);
	snprintf(src, sizeof(src), "%s/src", f->dir);
	int fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, len), (ssize_t)len);
	assert_int_equal(objstore_put(f->os, sha, fd, len, &eb), 0);
	close(fd);
	unlink(src);
}

static int setup_with(void **state, uint64_t max)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct errbuf eb;
	struct ring *probe = NULL;

	assert_non_null(f);
	if (ring_new(&probe, 4) < 0) {
		fprintf(stderr, "no io_uring here\n");
		exit(77);
	}
	ring_free(probe);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_objcache.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->remote_root, sizeof(f->remote_root), "%s/remote", f->dir);
	snprintf(f->cache_root, sizeof(f->cache_root), "%s/vault", f->dir);
	assert_int_equal(mkdir(f->cache_root, 0750), 0);
	assert_int_equal(store_open(&f->remote, f->remote_root, &eb), 0);
	assert_int_equal(objstore_local_new(&f->os, f->remote, &eb), 0);
	f->bytes = malloc(OBJ_SIZE);
	assert_non_null(f->bytes);
	for (size_t i = 0; i < OBJ_SIZE; i++)
		f->bytes[i] = (uint8_t)(i * 13 + (i >> 10));
	put_object(f, f->bytes, OBJ_SIZE, f->sha);
	assert_int_equal(objcache_open(&f->c, f->cache_root, max, &eb), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 64u * BLK);
}

static int setup_small(void **state)
{
	return setup_with(state, 3u * BLK);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	objcache_free(f->c);
	objstore_free(f->os);
	store_close(f->remote);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f->bytes);
	free(f);
	return 0;
}

/* Reads [off, off + len) through the cache and checks the bytes. */
static void read_check(struct fixture *f, uint64_t off, uint32_t len)
{
	struct errbuf eb = { 0 };
	uint8_t *buf = malloc(len);
	struct objstore_range r = { .offset = off, .len = len, .buf = buf };

	assert_int_equal(objcache_read_ranges(f->c, f->os, f->sha, OBJ_SIZE, &r, 1, NULL, &eb), 0);
	assert_memory_equal(buf, f->bytes + off, len);
	free(buf);
}

static struct objcache_stats stats(struct fixture *f)
{
	struct objcache_stats s;
	objcache_get_stats(f->c, &s);
	return s;
}

static void test_miss_then_hit(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	uint8_t a[100], b[5000], c[700];
	struct objstore_range r[3] = {
		{ .offset = 3 * BLK + 50, .len = sizeof(b), .buf = b },
		{ .offset = 10, .len = sizeof(a), .buf = a },
		{ .offset = OBJ_SIZE - sizeof(c), .len = sizeof(c), .buf = c },
	};

	assert_int_equal(objcache_read_ranges(f->c, f->os, f->sha, OBJ_SIZE, r, 3, NULL, &eb), 0);
	assert_memory_equal(a, f->bytes + 10, sizeof(a));
	assert_memory_equal(b, f->bytes + 3 * BLK + 50, sizeof(b));
	assert_memory_equal(c, f->bytes + OBJ_SIZE - sizeof(c), sizeof(c));
	struct objcache_stats s = stats(f);
	assert_int_equal(s.misses, 3); /* blocks 0, 3 and the last */
	assert_int_equal(s.hits, 0);
	assert_int_equal(s.remote_reads, 1); /* one batch: one call to the store */
	assert_int_equal(s.files, 3);
	assert_int_equal(s.bytes, 2 * BLK + 777);
	/* Again, with the store's copy gone: all from the cache. */
	assert_int_equal(objstore_remove(f->os, f->sha, &eb), 0);
	memset(a, 0, sizeof(a));
	memset(c, 0, sizeof(c));
	assert_int_equal(objcache_read_ranges(f->c, f->os, f->sha, OBJ_SIZE, r, 3, NULL, &eb), 0);
	assert_memory_equal(a, f->bytes + 10, sizeof(a));
	assert_memory_equal(c, f->bytes + OBJ_SIZE - sizeof(c), sizeof(c));
	s = stats(f);
	assert_int_equal(s.hits, 3);
	assert_int_equal(s.remote_reads, 1);
	/* A block not cached: the store's error comes through. */
	r[0].offset = 5 * BLK;
	assert_int_equal(objcache_read_ranges(f->c, f->os, f->sha, OBJ_SIZE, r, 1, NULL, &eb), -ENOENT);
	assert_int_equal(stats(f).remote_errors, 1);
	/* Past the end: refused before asking anyone. */
	r[0].offset = OBJ_SIZE - 10;
	assert_int_equal(objcache_read_ranges(f->c, f->os, f->sha, OBJ_SIZE, r, 1, NULL, &eb), -EIO);
}

/* Block digests of the fixture's object, as objects tiered before chaining
 * states have them, checked by digest_check; a test may spoil one or make
 * the lookup fail. */
#define NBLK (OBJ_SIZE / BLK + 1)
struct digests {
	uint8_t d[NBLK][OBJCACHE_DIGEST];
	size_t n;
	int fail; /* digest_check's answer when nonzero */
};

static int digest_check(void *opaque, const uint8_t sha[32], uint64_t size, uint64_t block,
			const void *buf, size_t len)
{
	struct digests *ds = opaque;
	uint8_t got[OBJCACHE_DIGEST];

	(void)sha, (void)size;
	if (ds->fail)
		return ds->fail;
	if (block >= ds->n)
		return -ENOENT;
	assert_int_equal(blockdig_of(buf, len, got), 0);
	return memcmp(got, ds->d[block], sizeof(got)) ? -EBADMSG : 0;
}

/* The byte(s) at off as cached: equal to the object's or not. */
static void read_check_bytes(struct fixture *f, uint64_t off, uint32_t len, bool equal)
{
	struct errbuf eb = { 0 };
	uint8_t buf[64];
	struct objstore_range r = { .offset = off, .len = len, .buf = buf };

	assert_true(len <= sizeof(buf));
	assert_int_equal(objcache_read_ranges(f->c, f->os, f->sha, OBJ_SIZE, &r, 1, NULL, &eb), 0);
	assert_int_equal(memcmp(buf, f->bytes + off, len) == 0, equal);
}

/* The cache closed and opened again (a restart), checking against ds. */
static void reopen(struct fixture *f, struct digests *ds)
{
	struct errbuf eb = { 0 };

	f->c = objcache_free(f->c);
	assert_int_equal(objcache_open(&f->c, f->cache_root, 64u * BLK, &eb), 0);
	objcache_set_check(f->c, digest_check, ds);
}

static void test_block_digests(void **state)
{
	struct fixture *f = *state;
	struct digests ds = { .n = NBLK };
	struct errbuf eb = { 0 };
	uint8_t buf[100];
	struct objstore_range r = { .offset = 4 * BLK + 10, .len = sizeof(buf), .buf = buf };

	for (size_t b = 0; b < NBLK; b++) {
		size_t len = b + 1 < NBLK ? BLK : OBJ_SIZE - b * BLK;
		assert_int_equal(blockdig_of(f->bytes + b * BLK, len, ds.d[b]), 0);
	}
	objcache_set_check(f->c, digest_check, &ds);
	read_check(f, 0, 3 * BLK);
	read_check(f, OBJ_SIZE - 500, 500);
	assert_int_equal(stats(f).unchecked, 0);
	assert_int_equal(stats(f).corrupt, 0);
	/* Block 4 not what was tiered: refused, not cached, counted. */
	ds.d[4][0] ^= 1;
	assert_int_equal(objcache_read_ranges(f->c, f->os, f->sha, OBJ_SIZE, &r, 1, NULL, &eb),
			 -EBADMSG);
	assert_non_null(strstr(eb.msg, "bytes 262144-327679 do not match the digest"));
	assert_int_equal(stats(f).corrupt, 1);
	assert_int_equal(stats(f).remote_errors, 1);
	objcache_flush(f->c);
	uint64_t files = stats(f).files;
	ds.d[4][0] ^= 1;
	assert_int_equal(objcache_read_ranges(f->c, f->os, f->sha, OBJ_SIZE, &r, 1, NULL, &eb), 0);
	assert_memory_equal(buf, f->bytes + r.offset, sizeof(buf));
	objcache_flush(f->c);
	assert_int_equal(stats(f).files, files + 1);
	/* A lookup that fails fails the read; none recorded: served, counted. */
	ds.fail = -EIO;
	r.offset = 6 * BLK;
	assert_int_equal(objcache_read_ranges(f->c, f->os, f->sha, OBJ_SIZE, &r, 1, NULL, &eb),
			 -EIO);
	ds.fail = -ENOENT;
	read_check(f, 6 * BLK, 100);
	assert_int_equal(stats(f).unchecked, 1);
}

static void test_spanning_blocks(void **state)
{
	struct fixture *f = *state;

	read_check(f, BLK - 10, 20);      /* across a block boundary */
	read_check(f, 2 * BLK - 5, BLK + 10); /* three blocks */
	assert_int_equal(stats(f).misses, 4); /* 0, 1, 2, 3: block 1 once */
	read_check(f, 0, OBJ_SIZE);       /* everything: several batches */
	assert_int_equal(stats(f).hits, 5); /* block 1 before, then 0-3 */
	assert_int_equal(stats(f).files, 11);
}

static size_t len_of_block(uint64_t block)
{
	return OBJ_SIZE - block * BLK < BLK ? (size_t)(OBJ_SIZE - block * BLK) : BLK;
}

/* Whether the object's pack names block: then its bit is set and its
 * bytes are the object's; else they read as zeros (punched, or never
 * written). */
static bool cached_file(struct fixture *f, uint64_t block)
{
	char hex[65], path[512];
	uint8_t hdr[16], byte = 0;
	static uint8_t buf[BLK], zeros[BLK];

	objcache_flush(f->c); /* blocks are written by the cache's thread */
	sha256_hex(f->sha, hex);
	snprintf(path, sizeof(path), "%s/cache/%.2s/%s.blk", f->cache_root, hex, hex);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	assert_int_equal(pread(fd, hdr, sizeof(hdr), 0), sizeof(hdr));
	assert_memory_equal(hdr, "CVBLKS2\n", 8);
	uint64_t nblocks = (OBJ_SIZE + BLK - 1) / BLK;
	uint64_t base = (16 + (nblocks + 7) / 8 + 4095) / 4096 * 4096;
	bool set = pread(fd, &byte, 1, (off_t)(16 + block / 8)) == 1 && (byte >> (block % 8) & 1);
	size_t len = len_of_block(block);
	ssize_t n = pread(fd, buf, len, (off_t)(base + block * BLK));
	close(fd);
	if (set) {
		assert_int_equal(n, (ssize_t)len);
		assert_memory_equal(buf, f->bytes + block * BLK, len);
	} else if (n > 0) {
		assert_memory_equal(buf, zeros, (size_t)n);
	}
	return set;
}

static void test_lru_bound(void **state)
{
	struct fixture *f = *state; /* 3 blocks at most */

	read_check(f, 0, 10);
	read_check(f, BLK, 10);
	read_check(f, 2 * BLK, 10);
	read_check(f, 5, 10); /* block 0 is now the most recent */
	read_check(f, 3 * BLK, 10);
	struct objcache_stats s = stats(f);
	assert_int_equal(s.evictions, 1);
	assert_true(s.bytes <= s.max_bytes);
	assert_true(cached_file(f, 0));
	assert_false(cached_file(f, 1)); /* the least recently used went */
	assert_true(cached_file(f, 2));
	assert_true(cached_file(f, 3));
	read_check(f, 4 * BLK, 10);
	/* Recency now 3, 0, 2 (0 was read again after 2): 2 goes. */
	assert_false(cached_file(f, 2));
	assert_true(cached_file(f, 0));
	assert_true(cached_file(f, 4));
	assert_int_equal(stats(f).evictions, 2);
}

static void test_restart(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	char path[512];

	read_check(f, 0, 10);
	read_check(f, 4 * BLK, 10);
	uint64_t bytes = stats(f).bytes;
	/* A partial write left behind by a crash. */
	snprintf(path, sizeof(path), "%s/cache/tmp/w1-1", f->cache_root);
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	f->c = objcache_free(f->c);
	assert_int_equal(objcache_open(&f->c, f->cache_root, 64u * BLK, &eb), 0);
	assert_int_equal(stats(f).bytes, bytes);
	assert_int_equal(stats(f).files, 2);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(objstore_remove(f->os, f->sha, &eb), 0);
	read_check(f, 4 * BLK + 1, 100); /* served from before the restart */
	assert_int_equal(stats(f).hits, 1);
	/* A smaller bound on reopening: evicted down to it. */
	f->c = objcache_free(f->c);
	assert_int_equal(objcache_open(&f->c, f->cache_root, BLK, &eb), 0);
	assert_int_equal(stats(f).files, 1);
	assert_true(stats(f).bytes <= BLK);	/* A pack of version 1 (its blocks cached before they were checked
	 * against digests) is removed at start, not served. */
	char hex[65];
	sha256_hex(f->sha, hex);
	snprintf(path, sizeof(path), "%s/cache/%.2s/%s.blk", f->cache_root, hex, hex);
	f->c = objcache_free(f->c);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "CVBLKS1\n", 8, 0), 8);
	close(fd);
	assert_int_equal(objcache_open(&f->c, f->cache_root, 64u * BLK, &eb), 0);
	assert_int_equal(stats(f).files, 0);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_unclean_reboot_empties(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	char path[512];

	read_check(f, 0, 10);
	f->c = objcache_free(f->c);
	/* As if the machine went down while the cache was open. */
	snprintf(path, sizeof(path), "%s/cache/state", f->cache_root);
	FILE *st = fopen(path, "w");
	assert_non_null(st);
	fprintf(st, "00000000-0000-0000-0000-000000000000 0\n");
	fclose(st);
	assert_int_equal(objcache_open(&f->c, f->cache_root, 64u * BLK, &eb), 0);
	assert_int_equal(stats(f).files, 0);
	assert_false(cached_file(f, 0));
}

static void test_bad_pack_not_served(void **state)
{
	struct fixture *f = *state;
	char hex[65], path[512];

	read_check(f, 0, 10);
	assert_true(cached_file(f, 0));
	sha256_hex(f->sha, hex);
	snprintf(path, sizeof(path), "%s/cache/%.2s/%s.blk", f->cache_root, hex, hex);
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "garbage!", 8, 0), 8); /* not a pack any more */
	close(fd);
	/* Block 5 cannot go into it: the writer removes it (and forgets
	 * block 0, which it held). */
	read_check(f, 5 * BLK, 10);
	assert_false(cached_file(f, 5));
	assert_int_equal(stats(f).files, 0);
	read_check(f, 0, 10); /* fetched again */
	assert_int_equal(stats(f).misses, 3);
	assert_int_equal(stats(f).hits, 0);
	assert_true(cached_file(f, 0)); /* in a new pack */
	read_check(f, 5 * BLK, 10);
	assert_true(cached_file(f, 5));
	read_check(f, 3, 10);
	assert_int_equal(stats(f).hits, 1);
	assert_int_equal(stats(f).files, 2);

	/* A reader finding the pack bad forgets it too. */
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "garbage!", 8, 0), 8);
	close(fd);
	read_check(f, 0, 10);
	assert_int_equal(stats(f).hits, 1);
	assert_int_equal(stats(f).files, 1); /* block 0 again, block 5 gone */
	assert_true(cached_file(f, 0));
}

/* A FIFO where the object's pack should be (put there by someone else)
 * neither hangs a reader nor the cache's opening: it is no pack. */
static void test_fifo_pack_not_opened(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	char hex[65], path[512];

	read_check(f, 0, 10);
	assert_true(cached_file(f, 0));
	sha256_hex(f->sha, hex);
	snprintf(path, sizeof(path), "%s/cache/%.2s/%s.blk", f->cache_root, hex, hex);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0640), 0);
	read_check(f, 0, 10); /* fetched again, the FIFO forgotten */
	assert_int_equal(stats(f).hits, 0);
	objcache_flush(f->c);
	f->c = objcache_free(f->c);
	unlink(path);
	assert_int_equal(mkfifo(path, 0640), 0);
	assert_int_equal(objcache_open(&f->c, f->cache_root, 64u * BLK, &eb), 0);
	assert_int_equal(stats(f).files, 0);
	assert_int_equal(access(path, F_OK), -1); /* removed as no cache file */
}

/* A daemon killed while the cache was open, on the same boot: the blocks
 * whose bits were set are served after it, with their bytes. */
static void test_killed_keeps_blocks(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };

	/* The child opens its own: a fork has none of the cache's threads. */
	f->c = objcache_free(f->c);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (objcache_open(&f->c, f->cache_root, 64u * BLK, &eb) != 0)
			_exit(1);
		read_check(f, 0, 10);
		read_check(f, 3 * BLK + 5, 2 * BLK);
		objcache_flush(f->c);
		_exit(0); /* no objcache_free: as after kill -9 */
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(status, 0);
	assert_int_equal(objcache_open(&f->c, f->cache_root, 64u * BLK, &eb), 0);
	assert_int_equal(stats(f).files, 4); /* blocks 0, 3, 4, 5 */
	assert_int_equal(objstore_remove(f->os, f->sha, &eb), 0);
	read_check(f, 3 * BLK, 3 * BLK);
	read_check(f, 0, 100);
	assert_int_equal(stats(f).misses, 0);
}

static void pack_path(struct fixture *f, char *path, size_t len)
{
	char hex[65];
	sha256_hex(f->sha, hex);
	snprintf(path, len, "%s/cache/%.2s/%s.blk", f->cache_root, hex, hex);
}

/* Opening the cache with at most 1 GiB more address space than it has:
 * 0 when it opens and counts nothing. */
static int open_bounded(struct fixture *f)
{
	struct errbuf eb = { 0 };
	unsigned long pages = 0;
	FILE *statm = fopen("/proc/self/statm", "r");
	if (!statm || fscanf(statm, "%lu", &pages) != 1)
		return 2;
	fclose(statm);
	rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (1ull << 30);
	struct rlimit rl = { .rlim_cur = cap, .rlim_max = cap };
	if (setrlimit(RLIMIT_AS, &rl) < 0)
		return 2;
	if (objcache_open(&f->c, f->cache_root, 64u * BLK, &eb) != 0)
		return 1;
	return stats(f).files == 0 ? 0 : 3;
}

/* A pack whose header claims an enormous object (the largest scan_pack
 * accepts) with its first 8 bits set: the blocks it names lie gigabytes
 * past the end of the file, so they are not there; rebuilding neither
 * counts them nor allocates a bitmap of the claimed size. */
static void test_rebuild_huge_header(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	char path[512];
	uint8_t pack[17] = "CVBLKS2\n";

	read_check(f, 0, 10);
	f->c = objcache_free(f->c);
	pack[8 + 6] = 0x10; /* 1 << 52, little-endian */
	pack[16] = 0xff;
	pack_path(f, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, pack, sizeof(pack)), sizeof(pack));
	close(fd);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(open_bounded(f)); /* no objcache_free: the cap may not allow it */
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(objcache_open(&f->c, f->cache_root, 64u * BLK, &eb), 0);
	assert_int_equal(stats(f).files, 0);
	assert_int_equal(access(path, F_OK), -1); /* names nothing: removed */
	read_check(f, 0, 10);
	assert_int_equal(stats(f).misses, 1);
}

/* A pack cut short (its last named block partly past the end): on
 * reopening, that block is not counted, so it is fetched and cached again
 * (counted, it would stay a miss for good: its entry refuses the copy). */
static void test_rebuild_truncated_pack(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	char path[512];

	read_check(f, 0, 10);
	read_check(f, 3 * BLK, 10);
	f->c = objcache_free(f->c);
	pack_path(f, path, sizeof(path));
	assert_int_equal(truncate(path, 4096 + 3 * BLK + 100), 0);
	assert_int_equal(objcache_open(&f->c, f->cache_root, 64u * BLK, &eb), 0);
	assert_int_equal(stats(f).files, 1); /* block 0 */
	read_check(f, 3 * BLK, 10);
	read_check(f, 3 * BLK + 5, 10);
	read_check(f, 1, 10);
	assert_int_equal(stats(f).misses, 1);
	assert_int_equal(stats(f).hits, 2);
}

/* A pack that cannot be opened for want of file descriptors is not
 * forgotten: that says nothing of the file. */
static void test_out_of_fds_keeps_pack(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	struct rlimit old, low;
	uint8_t buf[10];
	struct objstore_range r = { .offset = 5, .len = sizeof(buf), .buf = buf };

	read_check(f, 0, 10);
	assert_true(cached_file(f, 0));
	int lowest = open("/dev/null", O_RDONLY); /* the next fd a call would get */
	assert_true(lowest >= 0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = (struct rlimit){ .rlim_cur = (rlim_t)lowest, .rlim_max = old.rlim_max };
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	int err = objcache_read_ranges(f->c, f->os, f->sha, OBJ_SIZE, &r, 1, NULL, &eb);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_not_equal(err, 0); /* neither the pack nor the store could be opened */
	assert_int_equal(stats(f).files, 1);
	read_check(f, 5, 10);
	assert_int_equal(stats(f).hits, 1);
}

/* A cached block that cannot be read (its pack cut short while the cache
 * runs) is forgotten: fetched once more, then served again (kept, its
 * entry would refuse the fresh copy and stay a miss for good). */
static void test_unreadable_block_forgotten(void **state)
{
	struct fixture *f = *state;
	char path[512];

	read_check(f, 0, 10);
	read_check(f, 3 * BLK, 10);
	objcache_flush(f->c);
	pack_path(f, path, sizeof(path));
	assert_int_equal(truncate(path, 4096 + 3 * BLK + 100), 0);
	read_check(f, 3 * BLK + 200, 10); /* past the cut: a miss */
	read_check(f, 3 * BLK + 300, 10);
	read_check(f, 1, 10);
	struct objcache_stats s = stats(f);
	assert_int_equal(s.misses, 3);
	assert_int_equal(s.hits, 2);
	assert_int_equal(s.files, 2);
	assert_true(cached_file(f, 3));
}

struct sink {
	uint8_t *buf;
	size_t len;
};

static int sink_fn(void *opaque, const void *buf, size_t len)
{
	struct sink *s = opaque;
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

/* Sets a cache file's mtime to now + ahead seconds. */
static void set_mtime(const char *path, long ahead)
{
	struct timespec ts[2];
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec += ahead;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static time_t mtime_of(const char *path)
{
	struct stat s;
	assert_int_equal(stat(path, &s), 0);
	return s.st_mtim.tv_sec;
}

/* A cache file whose mtime is in the future (a clock set back) is touched
 * by a hit like a stale one: else it never would be, and a restart would
 * sort it as the newest for as long as the clock lags it. */
static void test_future_mtime_touched(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	struct sink s = { .buf = malloc(OBJ_SIZE) };
	char hex[65], pack[512], whole[512];

	sha256_hex(f->sha, hex);
	snprintf(pack, sizeof(pack), "%s/cache/%.2s/%s.blk", f->cache_root, hex, hex);
	snprintf(whole, sizeof(whole), "%s/cache/%.2s/%s.obj", f->cache_root, hex, hex);
	read_check(f, 0, 10);
	objcache_flush(f->c);
	set_mtime(pack, 86400);
	read_check(f, 5, 10); /* a hit */
	assert_true(mtime_of(pack) <= time(NULL));
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &s, &eb), 0);
	set_mtime(whole, 86400);
	s.len = 0;
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &s, &eb), 0);
	assert_true(mtime_of(whole) <= time(NULL));
	assert_int_equal(stats(f).hits, 2);
	free(s.buf);
}

/* At a start, a file with a future mtime counts as written now (and is
 * made so): a block cached after it is the newer, and an eviction down
 * to one block keeps that one. */
static void test_future_mtime_rebuild(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	char hex[65], pack[512];
	uint8_t *other = malloc(BLK), sha2[32];

	sha256_hex(f->sha, hex);
	snprintf(pack, sizeof(pack), "%s/cache/%.2s/%s.blk", f->cache_root, hex, hex);
	read_check(f, 0, 10);
	objcache_flush(f->c);
	set_mtime(pack, 86400);
	f->c = objcache_free(f->c);
	assert_int_equal(objcache_open(&f->c, f->cache_root, 64u * BLK, &eb), 0);
	assert_true(mtime_of(pack) <= time(NULL));
	usleep(50000); /* past the file system's timestamp grain */
	for (size_t i = 0; i < BLK; i++)
		other[i] = (uint8_t)(i * 7);
	put_object(f, other, BLK, sha2);
	struct objstore_range r = { .offset = 0, .len = 10, .buf = other };
	assert_int_equal(objcache_read_ranges(f->c, f->os, sha2, BLK, &r, 1, NULL, &eb), 0);
	objcache_flush(f->c);
	f->c = objcache_free(f->c);
	assert_int_equal(objcache_open(&f->c, f->cache_root, BLK, &eb), 0);
	assert_int_equal(stats(f).files, 1);
	assert_false(cached_file(f, 0)); /* the older went */
	free(other);
}

static void test_whole_object(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	struct sink s = { .buf = malloc(OBJ_SIZE) };

	assert_false(objcache_has_object(f->c, f->sha));
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &s, &eb), 0);
	assert_int_equal(s.len, OBJ_SIZE);
	assert_memory_equal(s.buf, f->bytes, OBJ_SIZE);
	assert_true(objcache_has_object(f->c, f->sha));
	assert_int_equal(objstore_remove(f->os, f->sha, &eb), 0);
	s.len = 0;
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &s, &eb), 0);
	assert_memory_equal(s.buf, f->bytes, OBJ_SIZE);
	read_check(f, 7 * BLK + 3, 5000); /* ranges from the whole copy */
	assert_int_equal(stats(f).hits, 2);
	assert_int_equal(stats(f).remote_reads, 1);
	free(s.buf);
}

/* Overwrites one byte of a file (made writable first) with its complement. */
static void flip_byte(const char *path, off_t at)
{
	uint8_t b = 0;
	assert_int_equal(chmod(path, 0644), 0);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, at), 1);
	b = (uint8_t)~b;
	assert_int_equal(pwrite(fd, &b, 1, at), 1);
	close(fd);
}

static void tamper_remote(struct fixture *f, off_t at)
{
	char path[256];
	assert_int_equal(store_object_path(f->remote, f->sha, path, sizeof(path)), 0);
	flip_byte(path, at);
}

/* Bytes from the store that do not hash to the object's name are never
 * all handed on: the stream fails (the caller sees a short object), and
 * nothing of the object stays cached. */
static void test_corrupt_object_not_cached(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	struct sink s = { .buf = malloc(OBJ_SIZE) };

	read_check(f, 2 * BLK, 10); /* a block cached before: it goes too */
	objcache_flush(f->c);
	assert_int_equal(stats(f).files, 1);
	tamper_remote(f, 99);
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &s, &eb),
			 -EBADMSG);
	assert_true(s.len < OBJ_SIZE);
	assert_non_null(strstr(eb.msg, "SHA-256"));
	assert_false(objcache_has_object(f->c, f->sha));
	assert_int_equal(stats(f).files, 0);
	assert_int_equal(stats(f).remote_errors, 1);
	assert_int_equal(stats(f).corrupt, 1);
	free(s.buf);
}

/* The same for an object too large to be cached whole (more than a
 * quarter of the cache), whose bytes used not to be hashed at all; the
 * last bytes are held back until the hash is checked. */
static void test_corrupt_large_object_fails(void **state)
{
	struct fixture *f = *state; /* 3 blocks: the object is far over a quarter */
	struct errbuf eb = { 0 };
	struct sink s = { .buf = malloc(OBJ_SIZE) };

	tamper_remote(f, OBJ_SIZE - 1); /* the very last byte */
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &s, &eb),
			 -EBADMSG);
	assert_true(s.len < OBJ_SIZE);
	assert_int_equal(stats(f).remote_errors, 1);
	/* Intact, it streams whole. */
	tamper_remote(f, OBJ_SIZE - 1);
	s.len = 0;
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &s, &eb), 0);
	assert_int_equal(s.len, OBJ_SIZE);
	assert_memory_equal(s.buf, f->bytes, OBJ_SIZE);
	free(s.buf);
}

static void cache_path(struct fixture *f, const uint8_t sha[32], const char *ext, char *path,
		       size_t len)
{
	char hex[65];
	sha256_hex(sha, hex);
	snprintf(path, len, "%s/cache/%.2s/%s.%s", f->cache_root, hex, hex, ext);
}

/* A whole object that changed in the cache is not served as it is: the
 * download fails once the hash is checked, the copy goes, and the next
 * download reads the store. */
static void test_corrupt_cached_whole_dropped(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	struct sink s = { .buf = malloc(OBJ_SIZE) };
	char path[512];

	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &s, &eb), 0);
	assert_true(objcache_has_object(f->c, f->sha));
	cache_path(f, f->sha, "obj", path, sizeof(path));
	flip_byte(path, 3 * BLK);
	s.len = 0;
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &s, &eb),
			 -EBADMSG);
	assert_true(s.len < OBJ_SIZE);
	assert_false(objcache_has_object(f->c, f->sha));
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(stats(f).corrupt, 1);
	s.len = 0;
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &s, &eb), 0);
	assert_int_equal(s.len, OBJ_SIZE);
	assert_memory_equal(s.buf, f->bytes, OBJ_SIZE);
	assert_int_equal(stats(f).remote_reads, 2);
	free(s.buf);
}

struct notes {
	int n;
	char last[512];
};

static void note_fn(void *opaque, const char *msg)
{
	struct notes *notes = opaque;

	notes->n++;
	snprintf(notes->last, sizeof(notes->last), "%s", msg);
}

/* A small object (held back whole while hashed) whose cached copy is bad
 * is read from the store instead, and the download succeeds; the notice
 * function is told, for the log. */
/* Cached bytes changed on disk (bit rot, or by hand) are checked like the
 * store's before a range read serves them: a pack's block or a whole
 * copy that does not match its record goes, counted corrupt, and the
 * range comes from the store instead, never the changed bytes. */
static void test_corrupt_cached_ranges_refetched(void **state)
{
	struct fixture *f = *state;
	struct digests ds = { .n = NBLK };
	struct errbuf eb = { 0 };
	struct sink s = { .buf = malloc(OBJ_SIZE) };
	char path[512];

	for (size_t b = 0; b < NBLK; b++) {
		size_t len = b + 1 < NBLK ? BLK : OBJ_SIZE - b * BLK;
		assert_int_equal(blockdig_of(f->bytes + b * BLK, len, ds.d[b]), 0);
	}
	objcache_set_check(f->c, digest_check, &ds);
	read_check(f, 2 * BLK, 100);
	assert_true(cached_file(f, 2));
	cache_path(f, f->sha, "blk", path, sizeof(path));
	flip_byte(path, 4096 + 2 * BLK + 50); /* pack_base of an 11-block object: a page */
	/* Checked when fetched: served as it is until the cache opens again
	 * (as the store's own objects are, between scrubs). */
	read_check_bytes(f, 2 * BLK + 50, 1, false);
	assert_int_equal(stats(f).corrupt, 0);
	reopen(f, &ds);
	read_check(f, 2 * BLK, 100); /* found at start: checked at its first read */
	assert_int_equal(stats(f).corrupt, 1);
	assert_int_equal(stats(f).remote_reads, 1);
	read_check(f, 2 * BLK, 100); /* the block fetched again is cached again */
	assert_int_equal(stats(f).remote_reads, 1);
	/* A whole copy: its block 5 changed. */
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &s, &eb), 0);
	assert_true(objcache_has_object(f->c, f->sha));
	cache_path(f, f->sha, "obj", path, sizeof(path));
	flip_byte(path, 5 * BLK + 7);
	read_check_bytes(f, 5 * BLK + 7, 1, false);
	reopen(f, &ds);
	read_check(f, 5 * BLK, 100);
	assert_int_equal(stats(f).corrupt, 1);
	assert_false(objcache_has_object(f->c, f->sha));
	assert_int_equal(access(path, F_OK), -1);
	free(s.buf);
}

static void test_corrupt_cached_small_refetched(void **state)
{
	struct fixture *f = *state;
	struct notes notes = { 0 };
	struct errbuf eb = { 0 };
	uint8_t obj[5000], got[5000], sha[32];
	struct sink s = { .buf = got };
	char path[512];

	for (size_t i = 0; i < sizeof(obj); i++)
		obj[i] = (uint8_t)(i * 31 + 1);
	put_object(f, obj, sizeof(obj), sha);
	objcache_set_notice(f->c, note_fn, &notes);
	assert_int_equal(objcache_read_stream(f->c, f->os, sha, sizeof(obj), sink_fn, &s, &eb), 0);
	assert_int_equal(notes.n, 0);
	cache_path(f, sha, "obj", path, sizeof(path));
	flip_byte(path, 4000);
	s.len = 0;
	assert_int_equal(objcache_read_stream(f->c, f->os, sha, sizeof(obj), sink_fn, &s, &eb), 0);
	assert_int_equal(notes.n, 1); /* mended, and said so */
	assert_non_null(strstr(notes.last, path + strlen(f->cache_root) + strlen("/cache/")));
	assert_non_null(strstr(notes.last, "removed"));
	assert_string_equal(eb.msg, "");
	assert_int_equal(s.len, sizeof(obj));
	assert_memory_equal(got, obj, sizeof(obj));
	assert_int_equal(stats(f).corrupt, 1);
	assert_int_equal(stats(f).remote_reads, 2);
	assert_true(objcache_has_object(f->c, sha)); /* the store's good copy */
}

/* objcache_forget drops every block and the whole copy of one object
 * (its pack file too) and nothing of another; the next read asks the
 * store again. */
static void test_forget_object(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	struct sink s = { .buf = malloc(OBJ_SIZE) };
	uint8_t other[3000], sha2[32], buf[10];
	char path[512];

	memset(other, 'x', sizeof(other));
	put_object(f, other, sizeof(other), sha2);
	read_check(f, 0, 10);
	read_check(f, 5 * BLK, 10);
	struct objstore_range r = { .offset = 0, .len = sizeof(buf), .buf = buf };
	assert_int_equal(objcache_read_ranges(f->c, f->os, sha2, sizeof(other), &r, 1, NULL, &eb), 0);
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &s, &eb), 0);
	objcache_flush(f->c);
	assert_int_equal(stats(f).files, 4);
	objcache_forget(f->c, f->sha);
	assert_false(objcache_has_object(f->c, f->sha));
	assert_int_equal(stats(f).files, 1);
	assert_int_equal(stats(f).bytes, sizeof(other));
	cache_path(f, f->sha, "obj", path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	cache_path(f, f->sha, "blk", path, sizeof(path));
	assert_int_equal(access(path, F_OK), -1);
	cache_path(f, sha2, "blk", path, sizeof(path));
	assert_int_equal(access(path, F_OK), 0);
	uint64_t before = stats(f).remote_reads;
	read_check(f, 0, 10);
	assert_int_equal(stats(f).remote_reads, before + 1);
	objcache_forget(f->c, f->sha); /* again, and of an object never cached: nothing */
	objcache_forget(f->c, (uint8_t[32]){ 1 });
	objcache_forget(NULL, f->sha);
	assert_int_equal(stats(f).files, 1);
	free(s.buf);
}

/* A download whose object is removed from the store (and so forgotten
 * by the cache) while it streams still gets the object's bytes, but
 * leaves no copy of an object the store no longer holds (adv14). */
struct forgetting_sink {
	struct sink s;
	struct fixture *f;
};

static int forgetting_sink_fn(void *opaque, const void *buf, size_t len)
{
	struct forgetting_sink *fs = opaque;
	struct errbuf eb = { 0 };
	if (fs->s.len == 0) {
		assert_int_equal(objstore_remove(fs->f->os, fs->f->sha, &eb), 0);
		objcache_forget(fs->f->c, fs->f->sha);
	}
	return sink_fn(&fs->s, buf, len);
}

static void test_forget_during_download(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	struct forgetting_sink fs = { .s = { .buf = malloc(OBJ_SIZE) }, .f = f };

	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, forgetting_sink_fn,
					      &fs, &eb), 0);
	assert_int_equal(fs.s.len, OBJ_SIZE);
	assert_memory_equal(fs.s.buf, f->bytes, OBJ_SIZE);
	objcache_flush(f->c);
	assert_false(objcache_has_object(f->c, f->sha));
	assert_int_equal(stats(f).files, 0);
	assert_int_equal(stats(f).bytes, 0);
	free(fs.s.buf);
}

/* The same for blocks a query fetched while their object was forgotten. */
static const struct objstore_ops *unhooked;
static struct fixture *hooked_fixture;

/* What each hooked read forgets after its fetch: its own object, and how
 * many times another one. */
static bool forget_self;
static unsigned other_forgets;

static int forgetting_read_ranges(struct objstore *os, const uint8_t sha[32],
				  struct objstore_range *r, size_t n, struct errbuf *eb)
{
	uint8_t other[32];
	int err = unhooked->read_ranges(os, sha, r, n, eb);

	memcpy(other, sha, 32);
	other[0] ^= 1;
	if (forget_self)
		objcache_forget(hooked_fixture->c, sha);
	for (unsigned i = 0; i < other_forgets; i++)
		objcache_forget(hooked_fixture->c, other);
	return err;
}

static void hook_forgets(struct fixture *f, bool self, unsigned others)
{
	static struct objstore_ops hooked;

	unhooked = f->os->ops;
	hooked = *unhooked;
	hooked.read_ranges = forgetting_read_ranges;
	hooked_fixture = f;
	forget_self = self;
	other_forgets = others;
	f->os->ops = &hooked;
}

static void test_forget_during_range_read(void **state)
{
	struct fixture *f = *state;

	hook_forgets(f, true, 0);
	read_check(f, 2 * BLK + 5, 3 * BLK);
	objcache_flush(f->c);
	assert_int_equal(stats(f).files, 0);
	f->os->ops = unhooked;
	uint64_t before = stats(f).remote_reads;
	read_check(f, 2 * BLK + 5, 3 * BLK); /* not cached: fetched again, and cached now */
	assert_int_equal(stats(f).remote_reads, before + 1);
	objcache_flush(f->c);
	assert_int_equal(stats(f).files, 4);
}

/* A forget of another object during a read does not keep the read's
 * blocks out of the cache; more forgets than the cache remembers do. */
static void test_forget_of_other_object(void **state)
{
	struct fixture *f = *state;

	hook_forgets(f, false, 65);
	read_check(f, 2 * BLK + 5, 3 * BLK);
	objcache_flush(f->c);
	assert_int_equal(stats(f).files, 0);
	other_forgets = 1;
	read_check(f, 2 * BLK + 5, 3 * BLK);
	objcache_flush(f->c);
	assert_int_equal(stats(f).files, 4);
	f->os->ops = unhooked;
}

struct forgetter {
	struct fixture *f;
	_Atomic bool stop;
};

static void *forget_main(void *opaque)
{
	struct forgetter *g = opaque;
	while (!g->stop)
		objcache_forget(g->f->c, g->f->sha);
	return NULL;
}

static int count_packs(struct fixture *f)
{
	char path[512];
	int n = 0;
	for (int i = 0; i < 256; i++) {
		snprintf(path, sizeof(path), "%s/cache/%02x", f->cache_root, i);
		DIR *d = opendir(path);
		struct dirent *de;
		while (d && (de = readdir(d)) != NULL)
			n += strstr(de->d_name, ".blk") != NULL;
		if (d)
			closedir(d);
	}
	return n;
}

/* Objects whose every block was evicted leave no pack behind: in a daemon
 * that runs for months, an empty pack per object ever read (a page and an
 * inode each) would grow the cache on disk without bound. */
static void test_evicted_pack_removed(void **state)
{
	struct fixture *f = *state; /* 3 blocks at most */
	struct errbuf eb = { 0 };
	uint8_t obj[2 * BLK], sha[32], buf[10];

	for (int k = 0; k < 6; k++) {
		memset(obj, 'a' + k, sizeof(obj));
		put_object(f, obj, sizeof(obj), sha);
		struct objstore_range r = { .offset = BLK + 5, .len = sizeof(buf), .buf = buf };
		assert_int_equal(objcache_read_ranges(f->c, f->os, sha, sizeof(obj), &r, 1, NULL, &eb), 0);
		assert_memory_equal(buf, obj, sizeof(buf));
	}
	objcache_flush(f->c);
	assert_int_equal(stats(f).files, 3);
	assert_int_equal(count_packs(f), 3);
	read_check(f, 0, 10); /* another object's block: one pack in, one out */
	objcache_flush(f->c);
	assert_int_equal(count_packs(f), 3);
	assert_true(cached_file(f, 0));
}

/* An object of exactly two blocks (no short last one) is cached, named by
 * its pack and served after a restart; an empty object needs no block. */
static void test_edge_sizes(void **state)
{
	struct fixture *f = *state;
	struct errbuf eb = { 0 };
	uint8_t obj[2 * BLK], sha[32], buf[BLK], none;
	struct sink s = { .buf = &none };

	for (size_t i = 0; i < sizeof(obj); i++)
		obj[i] = (uint8_t)(i * 7 + 3);
	put_object(f, obj, sizeof(obj), sha);
	struct objstore_range r = { .offset = BLK, .len = BLK, .buf = buf };
	assert_int_equal(objcache_read_ranges(f->c, f->os, sha, sizeof(obj), &r, 1, NULL, &eb), 0);
	assert_memory_equal(buf, obj + BLK, BLK);
	f->c = objcache_free(f->c);
	assert_int_equal(objcache_open(&f->c, f->cache_root, 64u * BLK, &eb), 0);
	assert_int_equal(stats(f).files, 1);
	assert_int_equal(stats(f).bytes, BLK);
	assert_int_equal(objstore_remove(f->os, sha, &eb), 0);
	memset(buf, 0, sizeof(buf));
	r.offset = 2 * BLK - 100, r.len = 100;
	assert_int_equal(objcache_read_ranges(f->c, f->os, sha, sizeof(obj), &r, 1, NULL, &eb), 0);
	assert_memory_equal(buf, obj + 2 * BLK - 100, 100);
	assert_int_equal(stats(f).hits, 1);

	put_object(f, obj, 0, sha);
	r = (struct objstore_range){ .offset = 0, .len = 0, .buf = buf };
	assert_int_equal(objcache_read_ranges(f->c, f->os, sha, 0, &r, 1, NULL, &eb), 0);
	assert_int_equal(objcache_read_stream(f->c, f->os, sha, 0, sink_fn, &s, &eb), 0);
	assert_int_equal(s.len, 0);
	assert_int_equal(stats(f).files, 1);
}

struct worker {
	struct fixture *f;
	unsigned seed;
	uint32_t max_len; /* of a read */
	int failures;
};

static void *worker_main(void *opaque)
{
	struct worker *w = opaque;
	uint8_t *buf = malloc(w->max_len);

	for (int i = 0; buf && i < 300; i++) {
		struct errbuf eb;
		uint64_t off = (uint64_t)rand_r(&w->seed) % (OBJ_SIZE - w->max_len);
		uint32_t len = 1 + (uint32_t)rand_r(&w->seed) % w->max_len;
		struct objstore_range r = { .offset = off, .len = len, .buf = buf };
		if (objcache_read_ranges(w->f->c, w->f->os, w->f->sha, OBJ_SIZE, &r, 1, NULL, &eb) != 0 ||
		    memcmp(buf, w->f->bytes + off, len) != 0)
			w->failures++;
	}
	free(buf);
	return NULL;
}

/* Four threads reading at random through a cache of 3 blocks (constant
 * eviction) get the object's bytes, and the pack then names exactly the
 * blocks the cache counts. */
static void run_readers(struct fixture *f, uint32_t max_len)
{
	pthread_t t[4];
	struct worker w[4];

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .f = f, .seed = (unsigned)i + 1, .max_len = max_len };
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	objcache_flush(f->c);
	struct objcache_stats s = stats(f);
	assert_true(s.bytes <= s.max_bytes);
	assert_true(s.evictions > 0);
	/* The accounting matches the pack: every block it names holds the
	 * object's bytes, the others read as zeros. */
	uint64_t named = 0;
	for (uint64_t b = 0; b < (OBJ_SIZE + BLK - 1) / BLK; b++)
		named += cached_file(f, b);
	assert_int_equal(named, s.files);
}

static void test_concurrent_readers(void **state)
{
	run_readers(*state, 9000);
}

/* Readers racing a thread that forgets the object over and over still
 * get the object's bytes (a forgotten block is a miss, never a hole). */
static void test_concurrent_forget(void **state)
{
	struct fixture *f = *state;
	struct forgetter g = { .f = f };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, forget_main, &g), 0);
	pthread_t rt[3];
	struct worker w[3];
	for (int i = 0; i < 3; i++) {
		w[i] = (struct worker){ .f = f, .seed = (unsigned)i + 7, .max_len = 3 * BLK };
		assert_int_equal(pthread_create(&rt[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(rt[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	g.stop = true;
	pthread_join(t, NULL);
	objcache_forget(f->c, f->sha);
	objcache_flush(f->c);
	assert_int_equal(stats(f).files, 0);
	assert_int_equal(stats(f).bytes, 0);
}

/* Where evicting a block removes its whole pack: a reader whose pack was
 * removed while it read never takes the removed file's holes for bytes
 * (reads of several blocks, so that one goes while the others are read). */
static void test_concurrent_readers_without_punch(void **state)
{
	struct fixture *f = *state;
	objcache_without_punch(f->c);
	run_readers(f, 5 * BLK);
}

/* ---- the free-space floor ---- */

/* A file system of `size` bytes that holds only the cache's folder: its
 * free space is the size less what the files there take on disk. */
struct fake_fs {
	char dir[160];
	uint64_t size;
	uint64_t low_free; /* the least free space seen by the cache or a check */
};

static uint64_t du_bytes;

static int du_entry(const char *path, const struct stat *s, int flag, struct FTW *ftw)
{
	(void)path, (void)ftw;
	if (flag == FTW_F && S_ISREG(s->st_mode))
		du_bytes += (uint64_t)s->st_blocks * 512;
	return 0;
}

static uint64_t fake_free_now(struct fake_fs *fs)
{
	du_bytes = 0;
	assert_int_equal(nftw(fs->dir, du_entry, 16, FTW_PHYS), 0);
	uint64_t free_bytes = du_bytes < fs->size ? fs->size - du_bytes : 0;
	if (free_bytes < fs->low_free)
		fs->low_free = free_bytes;
	return free_bytes;
}

static int fake_statfs(void *opaque, uint64_t *free_bytes)
{
	*free_bytes = fake_free_now(opaque);
	return 0;
}

static void fake_fs_attach(struct fixture *f, struct fake_fs *fs, uint64_t size)
{
	snprintf(fs->dir, sizeof(fs->dir), "%s/cache", f->cache_root);
	fs->size = size;
	fs->low_free = UINT64_MAX;
	objcache_set_statfs_for_tests(f->c, fake_statfs, fs);
}

/* A second object of nblk whole blocks in the store. */
static uint8_t *put_big(struct fixture *f, size_t nblk, uint8_t sha[32])
{
	uint8_t *bytes = malloc(nblk * BLK);
	assert_non_null(bytes);
	for (size_t i = 0; i < nblk * BLK; i++)
		bytes[i] = (uint8_t)(i * 7 + (i >> 12));
	put_object(f, bytes, nblk * BLK, sha);
	return bytes;
}

/* Reads block b of the big object (each a read of its own) and checks it. */
static void read_big(struct fixture *f, const uint8_t *bytes, size_t nblk, const uint8_t sha[32],
		     uint64_t b)
{
	struct errbuf eb = { 0 };
	uint8_t buf[300];
	struct objstore_range r = { .offset = b * BLK + 100, .len = sizeof(buf), .buf = buf };

	assert_int_equal(objcache_read_ranges(f->c, f->os, sha, nblk * BLK, &r, 1, NULL, &eb), 0);
	assert_memory_equal(buf, bytes + r.offset, sizeof(buf));
}

/* The cache's bound is far more than the file system: it fills only down
 * to the floor, evicting the least recently used, and every block it
 * caches stays there (the most recent is a hit). */
static void test_keep_free_bounds_cache(void **state)
{
	struct fixture *f = *state;
	struct fake_fs fs;
	uint8_t sha[32];
	size_t nblk = 48;
	uint8_t *bytes = put_big(f, nblk, sha);

	fake_fs_attach(f, &fs, 24u * BLK);
	objcache_set_keep_free(f->c, 12u * BLK);
	for (uint64_t b = 0; b < nblk; b++) {
		read_big(f, bytes, nblk, sha, b);
		objcache_flush(f->c);
		assert_true(fake_free_now(&fs) >= 12u * BLK);
	}
	assert_true(fs.low_free >= 12u * BLK);
	struct objcache_stats s = stats(f);
	assert_int_equal(s.keep_free, 12u * BLK);
	assert_true(s.bytes >= 8u * BLK); /* it caches up to the floor, not nothing */
	assert_true(s.bytes <= 12u * BLK);
	assert_true(s.limit_bytes >= s.bytes && s.limit_bytes <= 12u * BLK);
	assert_true(s.evictions >= nblk - 12);
	uint64_t hits = s.hits;
	read_big(f, bytes, nblk, sha, nblk - 1);
	assert_int_equal(stats(f).hits, hits + 1);
	free(bytes);
}

/* Not even an empty cache would keep the floor: reads are served, nothing
 * is cached, blocks or whole copies. */
static void test_keep_free_nothing_fits(void **state)
{
	struct fixture *f = *state;
	struct fake_fs fs;
	struct errbuf eb = { 0 };
	struct sink sk = { .buf = malloc(OBJ_SIZE) };

	read_check(f, 0, 1000); /* one block cached before the floor was set */
	fake_fs_attach(f, &fs, 8u * BLK);
	objcache_set_keep_free(f->c, 10u * BLK);
	read_check(f, 3 * BLK, 5000);
	read_check(f, 5 * BLK + 10, 2 * BLK);
	objcache_flush(f->c);
	struct objcache_stats s = stats(f);
	assert_int_equal(s.files, 0);
	assert_int_equal(s.bytes, 0);
	assert_int_equal(s.limit_bytes, 0);
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &sk, &eb), 0);
	assert_int_equal(sk.len, OBJ_SIZE);
	assert_memory_equal(sk.buf, f->bytes, OBJ_SIZE);
	assert_false(objcache_has_object(f->c, f->sha));
	assert_int_equal(stats(f).files, 0);
	free(sk.buf);
}

/* The free space shrinks (another writer took it): objcache_trim evicts
 * the least recently used down to the floor at once, and for want_free. */
static void test_trim(void **state)
{
	struct fixture *f = *state;
	struct fake_fs fs;
	uint8_t sha[32];
	size_t nblk = 20;
	uint8_t *bytes = put_big(f, nblk, sha);

	fake_fs_attach(f, &fs, 40u * BLK);
	objcache_set_keep_free(f->c, 8u * BLK);
	for (uint64_t b = 0; b < nblk; b++)
		read_big(f, bytes, nblk, sha, b);
	objcache_flush(f->c);
	assert_int_equal(stats(f).files, nblk);
	assert_int_equal(objcache_trim(f->c, 0), 0); /* above the floor: nothing to do */
	fs.size -= 16u * BLK;
	uint64_t evicted = objcache_trim(f->c, 0);
	assert_true(evicted >= 4u * BLK);
	assert_true(fake_free_now(&fs) >= 8u * BLK);
	struct objcache_stats s = stats(f);
	assert_true(s.files < nblk);
	assert_true(s.limit_bytes >= s.bytes && s.limit_bytes < s.bytes + BLK);
	uint64_t hits = s.hits;
	read_big(f, bytes, nblk, sha, nblk - 1); /* the most recent stayed */
	assert_int_equal(stats(f).hits, hits + 1);
	/* Room for more than the floor: evicts further, oldest first. */
	evicted = objcache_trim(f->c, 16u * BLK);
	assert_true(evicted > 0);
	assert_true(fake_free_now(&fs) >= 16u * BLK);
	assert_true(stats(f).files > 0);
	assert_int_equal(objcache_trim(NULL, 0), 0);
	free(bytes);
}

/* A whole copy's room above the floor is made (by evicting blocks) before
 * its download writes it; the floor holds all along. */
static void test_keep_free_whole_copy(void **state)
{
	struct fixture *f = *state;
	struct fake_fs fs;
	struct errbuf eb = { 0 };
	struct sink sk = { .buf = malloc(OBJ_SIZE) };
	uint8_t sha[32];
	size_t nblk = 45;
	uint8_t *bytes = put_big(f, nblk, sha);

	fake_fs_attach(f, &fs, 60u * BLK);
	objcache_set_keep_free(f->c, 8u * BLK);
	for (uint64_t b = 0; b < nblk; b++)
		read_big(f, bytes, nblk, sha, b);
	objcache_flush(f->c);
	uint64_t evictions = stats(f).evictions;
	assert_int_equal(objcache_read_stream(f->c, f->os, f->sha, OBJ_SIZE, sink_fn, &sk, &eb), 0);
	assert_memory_equal(sk.buf, f->bytes, OBJ_SIZE);
	assert_true(objcache_has_object(f->c, f->sha));
	assert_true(stats(f).evictions > evictions);
	assert_true(fs.low_free >= 8u * BLK);
	assert_true(fake_free_now(&fs) >= 8u * BLK);
	free(sk.buf);
	free(bytes);
}

/* Without a floor, limit_bytes is the bound. */
static void test_limit_without_floor(void **state)
{
	struct fixture *f = *state;
	read_check(f, 0, 100);
	struct objcache_stats s = stats(f);
	assert_int_equal(s.keep_free, 0);
	assert_int_equal(s.limit_bytes, 64u * BLK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_miss_then_hit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spanning_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_block_digests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lru_bound, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_future_mtime_touched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_future_mtime_rebuild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unclean_reboot_empties, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_pack_not_served, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fifo_pack_not_opened, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_keeps_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_huge_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_truncated_pack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_block_forgotten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_out_of_fds_keeps_pack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_evicted_pack_removed, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_edge_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_whole_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_object_not_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_large_object_fails, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_cached_whole_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_cached_small_refetched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_cached_ranges_refetched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_during_download, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_during_range_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_of_other_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_readers, setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_readers_without_punch, setup_small,
						teardown),
		cmocka_unit_test_setup_teardown(test_keep_free_bounds_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_free_nothing_fits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_free_whole_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limit_without_floor, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
