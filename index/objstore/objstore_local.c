/*
 * objstore_local.c - the content-addressed store (store.h) as a backend of
 * objstore.h: the same objects/ab/<sha256> files, so the object tier can
 * treat "here" and "there" alike (and tests can run without a bucket).
 *
 * Promises:
 * - put writes through the store's own writer (hashing while copying,
 *   tmp/ + fsync + link), so an object it publishes is as durable and as
 *   verified as an imported one; bytes that do not hash to the name are
 *   refused (-EIO) and leave nothing behind. An object already present
 *   with the right size is confirmed once it hashes to its name (read
 *   back, as the S3 backend does), else replaced by the bytes given.
 * - Reads are plain preads of the read-only object file; no memory beyond
 *   one bounded chunk buffer per read_stream call.
 * - Every call is safe from several threads: the calls that need an
 *   io_uring ring (put, verify) make their own, since a ring belongs to
 *   one thread.
 * - A store given by its folder (objstore_local_open) is opened at the
 *   first call that needs it, and at each later one until that works:
 *   the state (objstore_health) says why meanwhile, as an S3 bucket's
 *   does while the bucket is missing or refuses.
 */
#include "objstore_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "fdio.h"
#include "ring.h"
#include "store.h"

/* Bytes per pread of put's source and of read_stream. */
#define LOCAL_CHUNK (1u << 20)
/* Queue depth of the ring made for one put or verify. */
#define LOCAL_RING_ENTRIES 8

struct objstore_local {
	struct objstore base;
	_Atomic(struct store *) st; /* set once */
	/* objstore_local_open's: the folder, and the store opened from it. */
	char *root;
	struct store *owned;
	pthread_mutex_t open_lock;
};

/* Once local_ready() said 0. */
static struct store *local_store(struct objstore *os)
{
	return atomic_load(&((struct objstore_local *)os)->st);
}

/* What a failure to reach the folder means for the store's state. */
static enum objstore_state local_state(int err)
{
	switch (err) {
	case -ENOENT:
	case -ENOTDIR:
		return OBJSTORE_NO_BUCKET;
	case -EACCES:
	case -EPERM:
	case -EROFS:
		return OBJSTORE_REFUSED;
	default:
		return OBJSTORE_UNREACHABLE;
	}
}

/* 0 once the store is open (opening it when it is not yet), else why not
 * (eb, and the store's state). */
static int local_ready(struct objstore *os, struct errbuf *eb)
{
	struct objstore_local *l = (struct objstore_local *)os;
	struct errbuf own = { "" };
	struct store *st = NULL;
	int r = 0;

	if (atomic_load(&l->st))
		return 0;
	pthread_mutex_lock(&l->open_lock);
	if (!l->owned) {
		r = store_open_flags(&st, l->root, STORE_CREATE, &own);
		if (r == 0) {
			l->owned = st;
			atomic_store(&l->st, st);
		}
	}
	pthread_mutex_unlock(&l->open_lock);
	if (st)
		objstore_note(os, OBJSTORE_OK, NULL);
	if (r < 0) {
		if (!own.msg[0])
			errbuf_set(&own, r, "cannot open %s: %s", l->root, strerror(-r));
		objstore_note(os, local_state(r), own.msg);
		if (eb)
			*eb = own;
	}
	return r;
}

static void local_destroy(struct objstore *os)
{
	struct objstore_local *l = (struct objstore_local *)os;

	if (l->root) {
		store_close(l->owned);
		pthread_mutex_destroy(&l->open_lock);
		free(l->root);
	}
	objstore_base_fini(os);
	free(os);
}

/* "objects/ab/<hex>" of the local store, for messages. */
static void local_name(struct objstore *os, const uint8_t sha[32], char *buf, size_t len)
{
	char hex[65];

	sha256_hex(sha, hex);
	snprintf(buf, len, "%s/objects/%.2s/%s", store_root(local_store(os)), hex, hex);
}

/* Opens the object; -ENOENT when absent, other errors with eb. */
static int local_open(struct objstore *os, const uint8_t sha[32], struct errbuf *eb)
{
	char name[PATH_MAX];
	int fd = local_ready(os, eb);

	if (fd < 0)
		return fd;
	fd = store_object_open(local_store(os), sha);

	if (fd >= 0 || fd == -ENOENT) {
		if (fd == -ENOENT) {
			local_name(os, sha, name, sizeof(name));
			errbuf_set(eb, fd, "%s: no such object", name);
		}
		return fd;
	}
	local_name(os, sha, name, sizeof(name));
	return errbuf_set(eb, fd, "cannot open %s: %s", name, strerror(-fd));
}

static int local_stat(struct objstore *os, const uint8_t sha[32], uint64_t *size,
		      struct errbuf *eb)
{
	_cleanup_close_ int fd = local_open(os, sha, eb);
	struct stat s;

	if (fd < 0)
		return fd;
	if (fstat(fd, &s) < 0) {
		char name[PATH_MAX];
		local_name(os, sha, name, sizeof(name));
		return errbuf_set(eb, -errno, "cannot stat %s: %s", name, strerror(errno));
	}
	*size = (uint64_t)s.st_size;
	return 0;
}

/* Copies size bytes of fd from offset 0 into the writer. */
static int put_copy(struct store_writer *w, int fd, uint64_t size, struct errbuf *eb)
{
	_cleanup_free_ uint8_t *buf = malloc(LOCAL_CHUNK);
	uint64_t off = 0;

	if (!buf)
		return -ENOMEM;
	while (off < size) {
		size_t want = size - off < LOCAL_CHUNK ? (size_t)(size - off) : LOCAL_CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errbuf_set(eb, -errno, "cannot read the object's source at %llu: %s",
					  (unsigned long long)off, strerror(errno));
		if (n == 0)
			return errbuf_set(eb, -EIO, "the object's source ends at %llu of %llu bytes",
					  (unsigned long long)off, (unsigned long long)size);
		int r = store_writer_write(w, buf, (size_t)n, eb);
		if (r < 0)
			return r;
		off += (uint64_t)n;
	}
	return 0;
}

/* Whether a failed put's err is the folder's doing (it cannot take the
 * object), not the source's: the store's state then says so. */
static bool folder_fault(int err)
{
	return err == -EACCES || err == -EPERM || err == -EROFS || err == -ENOSPC ||
	       err == -EDQUOT || err == -ENOENT || err == -ENOTDIR;
}

/* Writes, checks and publishes the object from fd. */
static int put_write(struct objstore *os, struct ring *ring, const uint8_t sha[32], int fd,
		     uint64_t size, struct errbuf *eb)
{
	struct store_writer *w = NULL;
	uint8_t got[32];
	uint64_t got_size = 0;
	char hex[65];
	int r = store_writer_new(local_store(os), ring, NULL, &w, eb);

	if (r == 0)
		r = put_copy(w, fd, size, eb);
	if (r == 0)
		r = store_writer_finish(w, got, &got_size, eb);
	if (r == 0 && (got_size != size || memcmp(got, sha, 32) != 0)) {
		sha256_hex(sha, hex);
		r = errbuf_set(eb, -EIO, "%s: the bytes given do not hash to the object's name",
			       hex);
	}
	if (r == 0)
		r = store_writer_publish(w, eb);
	store_writer_free(w);
	if (r == 0)
		objstore_note(os, OBJSTORE_OK, NULL);
	else if (folder_fault(r))
		objstore_note(os, local_state(r), eb ? eb->msg : strerror(-r));
	return r < 0 ? r : 0;
}

static int local_verify(struct objstore *os, const uint8_t sha[32], struct errbuf *eb);

static int local_put(struct objstore *os, const uint8_t sha[32], int fd, uint64_t size,
		     struct errbuf *eb)
{
	struct ring *ring = NULL;
	uint64_t have = 0;
	int r = local_stat(os, sha, &have, eb);

	if (r == 0 && have == size) {
		/* Confirmed once it hashes to its name, as the S3 backend's put
		 * checks a stored copy: the tier removes the local copy on this
		 * word, and one that rotted or was replaced here (which fsck
		 * --remote says to restore by importing the bytes again) would
		 * be left the only one (advtier D). Such a copy is put anew. */
		r = local_verify(os, sha, eb);
		if (r != -EIO)
			return r;
		errbuf_clear(eb);
		r = store_object_remove(local_store(os), sha);
		if (r < 0 && r != -ENOENT) {
			char name[PATH_MAX];
			local_name(os, sha, name, sizeof(name));
			return errbuf_set(eb, r, "cannot replace %s, which does not hash to its "
					  "name: %s", name, strerror(-r));
		}
		r = -ENOENT;
	}
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0) {
		/* Named by its hash, yet the wrong size: never overwritten,
		 * fsck quarantines it. */
		char name[PATH_MAX];
		local_name(os, sha, name, sizeof(name));
		return errbuf_set(eb, -EIO, "%s holds %llu bytes, not %llu", name,
				  (unsigned long long)have, (unsigned long long)size);
	}
	r = ring_new(&ring, LOCAL_RING_ENTRIES);
	if (r < 0)
		return errbuf_set(eb, r, "cannot set up io_uring: %s", strerror(-r));
	r = put_write(os, ring, sha, fd, size, eb);
	ring_free(ring);
	return r;
}

static int local_verify(struct objstore *os, const uint8_t sha[32], struct errbuf *eb)
{
	_cleanup_close_ int fd = local_open(os, sha, eb);
	struct ring *ring = NULL;
	uint8_t got[32];
	char name[PATH_MAX];
	int r;

	if (fd < 0)
		return fd;
	r = ring_new(&ring, LOCAL_RING_ENTRIES);
	if (r < 0)
		return errbuf_set(eb, r, "cannot set up io_uring: %s", strerror(-r));
	r = store_hash_fd(ring, fd, got);
	ring_free(ring);
	local_name(os, sha, name, sizeof(name));
	if (r < 0)
		return errbuf_set(eb, r, "cannot read %s: %s", name, strerror(-r));
	if (memcmp(got, sha, 32) != 0)
		return errbuf_set(eb, -EIO, "%s: its bytes do not hash to its name", name);
	return 0;
}

static int local_remove(struct objstore *os, const uint8_t sha[32], struct errbuf *eb)
{
	int r = local_ready(os, eb);

	if (r < 0)
		return r;
	r = store_object_remove(local_store(os), sha);

	if (r == 0 || r == -ENOENT)
		return 0;
	char name[PATH_MAX];
	local_name(os, sha, name, sizeof(name));
	return errbuf_set(eb, r, "cannot remove %s: %s", name, strerror(-r));
}

struct list_ctx {
	objstore_list_fn fn;
	void *opaque;
};

static int list_one(void *opaque, const uint8_t sha[32], uint64_t size)
{
	struct list_ctx *c = opaque;
	char hex[65], key[80];

	sha256_hex(sha, hex);
	snprintf(key, sizeof(key), "objects/%.2s/%s", hex, hex);
	return c->fn(c->opaque, sha, key, size);
}

/* Only object-named files: the store's own fsck reports the rest of
 * objects/ (strays, tmp/ leftovers). */
static int local_list(struct objstore *os, objstore_list_fn fn, void *opaque, struct errbuf *eb)
{
	struct list_ctx c = { .fn = fn, .opaque = opaque };
	int r = local_ready(os, eb);

	if (r < 0)
		return r;
	r = store_foreach_object(local_store(os), list_one, &c);

	if (r < 0 && eb && !eb->msg[0])
		errbuf_set(eb, r, "cannot list %s/objects: %s", store_root(local_store(os)),
			   strerror(-r));
	return r;
}

/* Reads exactly len bytes at off; -EIO when the object ends first. */
static int pread_full(int fd, void *buf, size_t len, uint64_t off, const char *name,
		      struct errbuf *eb)
{
	int err = fd_pread_all(fd, buf, len, off);
	if (err == -EIO)
		return errbuf_set(eb, err, "%s ends before byte %llu", name,
				  (unsigned long long)(off + len));
	if (err < 0)
		return errbuf_set(eb, err, "cannot read %s at %llu: %s", name,
				  (unsigned long long)off, strerror(-err));
	return 0;
}

static int local_read_ranges(struct objstore *os, const uint8_t sha[32], struct objstore_range *r,
			     size_t n, struct errbuf *eb)
{
	_cleanup_close_ int fd = local_open(os, sha, eb);
	char name[PATH_MAX];

	if (fd < 0)
		return fd;
	local_name(os, sha, name, sizeof(name));
	for (size_t i = 0; i < n; i++) {
		int err = pread_full(fd, r[i].buf, r[i].len, r[i].offset, name, eb);
		if (err < 0)
			return err;
	}
	return 0;
}

static int local_read_stream(struct objstore *os, const uint8_t sha[32], uint64_t offset,
			     uint64_t len, objstore_data_fn fn, void *opaque, struct errbuf *eb)
{
	_cleanup_close_ int fd = local_open(os, sha, eb);
	_cleanup_free_ uint8_t *buf = NULL;
	char name[PATH_MAX];
	struct stat s;

	if (fd < 0)
		return fd;
	local_name(os, sha, name, sizeof(name));
	if (fstat(fd, &s) < 0)
		return errbuf_set(eb, -errno, "cannot stat %s: %s", name, strerror(errno));
	if (len == UINT64_MAX)
		len = (uint64_t)s.st_size > offset ? (uint64_t)s.st_size - offset : 0;
	if (offset > (uint64_t)s.st_size || len > (uint64_t)s.st_size - offset)
		return errbuf_set(eb, -EIO, "%s ends before byte %llu", name,
				  (unsigned long long)(offset + len));
	buf = malloc(LOCAL_CHUNK);
	if (!buf)
		return -ENOMEM;
	while (len > 0) {
		size_t want = len < LOCAL_CHUNK ? (size_t)len : LOCAL_CHUNK;
		int r = pread_full(fd, buf, want, offset, name, eb);
		if (r == 0)
			r = fn(opaque, buf, want);
		if (r != 0)
			return r;
		offset += want;
		len -= want;
	}
	return 0;
}

/* The owner key is the file <root>/capvault-vault. */
static int owner_path(struct objstore *os, char *path, size_t len, const char *suffix)
{
	if (snprintf(path, len, "%s/" OBJSTORE_OWNER_KEY "%s", store_root(local_store(os)),
		     suffix) >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

static int local_owner_get(struct objstore *os, char *buf, size_t len, struct errbuf *eb)
{
	char path[PATH_MAX];
	int r = local_ready(os, eb);

	if (r < 0)
		return r;
	r = owner_path(os, path, sizeof(path), "");
	if (r < 0)
		return errbuf_set(eb, r, "%s: %s", os->description, strerror(-r));
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT :
					 errbuf_set(eb, -errno, "cannot open %s: %s", path,
						    strerror(errno));
	ssize_t n = read(fd, buf, len - 1);
	if (n < 0)
		return errbuf_set(eb, -errno, "cannot read %s: %s", path, strerror(errno));
	buf[n] = '\0';
	return 0;
}

/* Written whole beside it, then linked into place, which fails when a
 * value is there already: a crash never leaves half a value. */
static int local_owner_put(struct objstore *os, const char *value, size_t len,
			   struct errbuf *eb)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int r = local_ready(os, eb);

	if (r < 0)
		return r;
	r = owner_path(os, path, sizeof(path), "");
	if (r == 0)
		r = owner_path(os, tmp, sizeof(tmp), ".new");
	if (r < 0)
		return errbuf_set(eb, r, "%s: %s", os->description, strerror(-r));
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return errbuf_set(eb, -errno, "cannot create %s: %s", tmp, strerror(errno));
	r = fd_pwrite_all(fd, value, len, 0);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && link(tmp, path) < 0 && errno != EEXIST)
		r = -errno;
	unlink(tmp);
	return r < 0 ? errbuf_set(eb, r, "cannot write %s: %s", path, strerror(-r)) : 0;
}

/* The folder is there (made when missing) and a file can be made in its
 * objects/: an unnamed one, gone when closed, where the file system
 * offers them. */
static int local_check(struct objstore *os, struct errbuf *eb)
{
	struct errbuf own = { "" };
	char dir[PATH_MAX];
	int r = local_ready(os, eb);

	if (r < 0)
		return r;
	if (snprintf(dir, sizeof(dir), "%s/objects", store_root(local_store(os))) >=
	    (int)sizeof(dir))
		return errbuf_set(eb, -ENAMETOOLONG, "%s: %s", os->description,
				  strerror(ENAMETOOLONG));
	int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	else if (errno == EOPNOTSUPP || errno == EISDIR)
		r = access(dir, W_OK) < 0 ? -errno : 0;
	else
		r = -errno;
	if (r < 0)
		errbuf_set(&own, r, "cannot write in %s: %s", dir, strerror(-r));
	objstore_note(os, r < 0 ? local_state(r) : OBJSTORE_OK, own.msg);
	if (r < 0 && eb)
		*eb = own;
	return r;
}

static const struct objstore_ops local_ops = {
	.destroy = local_destroy,
	.put = local_put,
	.stat = local_stat,
	.verify = local_verify,
	.remove = local_remove,
	.list = local_list,
	.read_ranges = local_read_ranges,
	.read_stream = local_read_stream,
	.owner_get = local_owner_get,
	.owner_put = local_owner_put,
	.check = local_check,
};

int objstore_local_new(struct objstore **out, struct store *st, struct errbuf *eb)
{
	struct objstore_local *l = calloc(1, sizeof(*l));

	(void)eb;
	if (!l)
		return -ENOMEM;
	objstore_base_init(&l->base, &local_ops);
	atomic_init(&l->st, st);
	snprintf(l->base.description, sizeof(l->base.description), "local store %s",
		 store_root(st));
	*out = &l->base;
	return 0;
}

int objstore_local_open(struct objstore **out, const char *root, struct errbuf *eb)
{
	struct objstore_local *l = calloc(1, sizeof(*l));

	if (!l || !(l->root = strdup(root))) {
		free(l);
		return errbuf_set(eb, -ENOMEM, "local store %s: %s", root, strerror(ENOMEM));
	}
	objstore_base_init(&l->base, &local_ops);
	atomic_init(&l->st, NULL);
	pthread_mutex_init(&l->open_lock, NULL);
	snprintf(l->base.description, sizeof(l->base.description), "local store %s", root);
	*out = &l->base;
	return 0;
}
