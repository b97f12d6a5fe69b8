/*
 * backup.c - backup (of an open store, the daemon's too) and offline
 * restore (see fsck.h).
 *
 * Promises:
 * - A backup is a store: DIR/index is a RocksDB checkpoint (consistent at
 *   one instant), DIR/objects holds every object an object record names,
 *   hard-linked when on the same file system (objects are read-only and
 *   never rewritten, so sharing the inode is safe), else copied.
 * - An unfinished backup or restore can never pass for a finished one:
 *   the first thing written is a marker saying "in progress"
 *   (storemark.h), the last, after every file and folder is fsynced, the
 *   marker saying "complete". A copy is written under a temp name in
 *   DIR/tmp and renamed to its object name once fsynced, so no object name
 *   ever holds part of an object.
 * - Restore takes only a complete backup (or one made before markers),
 *   and checks every object it restores against its record: size, and
 *   SHA-256 against its name. The first that fails stops it.
 * - Neither touches the source; both refuse a destination that holds
 *   anything, and a destination inside the store (or backup) they copy.
 * - A backup of a store in use (capvaultd's, through POST /v1/backup) is
 *   still consistent: the checkpoint and the object links are made under
 *   the catalog lock, so imports wait to commit and nothing is pruned
 *   meanwhile (links take milliseconds; copies across file systems make
 *   imports wait longer).
 * - The store's own files beside the index that say what was imported
 *   (autoimport.kept: the files of after_import: keep folders imported
 *   once) go with it, copied under the same lock, so a restored store
 *   does not import again a kept file whose capture was removed or
 *   pruned before the backup.
 */
#include "fsck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libgen.h>
#include <openssl/evp.h>

#include "catalog.h"
#include "objstore.h"
#include "cleanup.h"
#include "db.h"
#include "store.h"
#include "storemark.h"
#include "vault.h"

#define COPY_CHUNK (1u << 20)

static int fsync_path(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/* Creates dir, or accepts it when it exists and is empty. */
static int make_empty_dir(const char *dir, struct errbuf *eb)
{
	if (mkdir(dir, 0750) == 0)
		return 0;
	if (errno != EEXIST)
		return errbuf_set(eb, -errno, "%s: %s", dir, strerror(errno));
	DIR *d = opendir(dir);
	if (!d)
		return errbuf_set(eb, -errno, "%s: %s", dir, strerror(errno));
	struct dirent *de;
	int r = 0;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			r = errbuf_set(eb, -EEXIST, "%s: not empty", dir);
	closedir(d);
	return r;
}

static int copy_data(int in, int out)
{
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, COPY_CHUNK, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return -errno;
		break;
	}
	/* No copy_file_range between these file systems: plain copy. */
	_cleanup_free_ char *buf = malloc(COPY_CHUNK);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(in, buf, COPY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : 0;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));
			if (w < 0 && errno != EINTR)
				return -errno;
			done += w > 0 ? w : 0;
		}
	}
}

/* Copies src to dst (new file, mode), fsynced; written as a temp file in
 * tmpdir (one file system with dst) and renamed, so dst never holds a
 * part of src. */
static int copy_file(const char *src, const char *tmpdir, const char *dst, mode_t mode,
		     struct errbuf *eb)
{
	char tmp[PATH_MAX];
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return errbuf_set(eb, -errno, "%s: %s", src, strerror(errno));
	if (snprintf(tmp, sizeof(tmp), "%s/obj-XXXXXX", tmpdir) >= (int)sizeof(tmp))
		return errbuf_set(eb, -ENAMETOOLONG, "%s: path too long", tmpdir);
	_cleanup_close_ int out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0)
		return errbuf_set(eb, -errno, "cannot create a temp file in %s: %s", tmpdir,
				  strerror(errno));
	int r = copy_data(in, out);
	if (r == 0 && (fchmod(out, mode) < 0 || fsync(out) < 0))
		r = -errno;
	if (r == 0 && rename(tmp, dst) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return errbuf_set(eb, r, "copying %s to %s: %s", src, dst, strerror(-r));
	}
	return 0;
}

static int link_or_copy(const char *src, const char *tmpdir, const char *dst, struct errbuf *eb)
{
	if (link(src, dst) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return errbuf_set(eb, -errno, "linking %s to %s: %s", src, dst, strerror(errno));
	return copy_file(src, tmpdir, dst, 0444, eb);
}

static int path_join(char *buf, size_t len, const char *a, const char *b, struct errbuf *eb)
{
	if (snprintf(buf, len, "%s/%s", a, b) >= (int)len)
		return errbuf_set(eb, -ENAMETOOLONG, "%s/%s: path too long", a, b);
	return 0;
}

/* mkdir dir/objects/ab when needed; the object's path into dst. */
static int object_dest(const char *dir, const char *hex, char *dst, size_t len,
		       struct errbuf *eb)
{
	char fan[PATH_MAX];
	if (snprintf(fan, sizeof(fan), "%s/objects/%.2s", dir, hex) >= (int)sizeof(fan))
		return errbuf_set(eb, -ENAMETOOLONG, "%s: path too long", dir);
	if (mkdir(fan, 0750) < 0 && errno != EEXIST)
		return errbuf_set(eb, -errno, "%s: %s", fan, strerror(errno));
	return path_join(dst, len, fan, hex, eb);
}

static int make_layout(const char *dir, struct errbuf *eb)
{
	char p[PATH_MAX];
	int r = path_join(p, sizeof(p), dir, "objects", eb);
	if (r == 0 && mkdir(p, 0750) < 0)
		r = errbuf_set(eb, -errno, "%s: %s", p, strerror(errno));
	if (r == 0)
		r = path_join(p, sizeof(p), dir, "tmp", eb);
	if (r == 0 && mkdir(p, 0750) < 0)
		r = errbuf_set(eb, -errno, "%s: %s", p, strerror(errno));
	return r;
}

/* fsyncs every fan-out folder of dir/objects, objects/ and dir. */
static int sync_objects(const char *dir, struct errbuf *eb)
{
	char p[PATH_MAX], q[PATH_MAX];
	int r = path_join(p, sizeof(p), dir, "objects", eb);
	DIR *d = r == 0 ? opendir(p) : NULL;
	struct dirent *de;
	if (!d)
		return r < 0 ? r : errbuf_set(eb, -errno, "%s: %s", p, strerror(errno));
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		r = path_join(q, sizeof(q), p, de->d_name, eb);
		if (r == 0 && (r = fsync_path(q)) < 0)
			errbuf_set(eb, r, "%s: %s", q, strerror(-r));
	}
	closedir(d);
	if (r == 0 && ((r = fsync_path(p)) < 0 || (r = fsync_path(dir)) < 0))
		errbuf_set(eb, r, "%s: %s", dir, strerror(-r));
	return r;
}

/* ---- where a copy may go ---- */

struct dev_ino {
	dev_t dev;
	ino_t ino;
};

/* dir, or its parent when dir does not exist yet (mkdir needs that).
 * O_PATH: the walk needs no read permission on the folders it passes. */
static int open_nearest(const char *dir)
{
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT)
		return fd >= 0 ? fd : -errno;
	_cleanup_free_ char *copy = strdup(dir);
	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

/* 1 when dir (or where it would be made) is one of the n folders in
 * inside or below one of them, 0 when not, or a negative errno. Walks
 * the real parents ("..") and compares inodes: symlinks, bind mounts,
 * "..", and two spellings of one path make no difference. */
static int is_inside(const char *dir, const struct dev_ino *inside, size_t n)
{
	_cleanup_close_ int fd = open_nearest(dir);
	if (fd < 0)
		return fd;
	for (;;) {
		struct stat st, up;
		if (fstat(fd, &st) < 0)
			return -errno;
		for (size_t i = 0; i < n; i++)
			if (st.st_dev == inside[i].dev && st.st_ino == inside[i].ino)
				return 1;
		int parent = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (parent < 0)
			return -errno;
		close(fd);
		fd = parent;
		if (fstat(fd, &up) < 0)
			return -errno;
		if (up.st_dev == st.st_dev && up.st_ino == st.st_ino)
			return 0; /* "/" is its own parent */
	}
}

/* Refuses a destination inside root (a backup into the store's own tmp/
 * would be a store inside the store). root's folders are compared too, as
 * one of them may be mounted elsewhere as well. */
static int check_outside(const char *dir, const char *root, const char *what,
			 struct errbuf *eb)
{
	static const char *const subs[] = { "", "/objects", "/tmp", "/index" };
	struct dev_ino in[4];
	size_t n = 0;
	char p[PATH_MAX];
	for (size_t i = 0; i < 4; i++) {
		struct stat st;
		snprintf(p, sizeof(p), "%s%s", root, subs[i]);
		if (stat(p, &st) == 0)
			in[n++] = (struct dev_ino){ st.st_dev, st.st_ino };
	}
	int r = is_inside(dir, in, n);
	if (r == 1)
		return errbuf_set(eb, -EINVAL, "%s is inside %s %s: choose a folder outside it",
				  dir, what, root);
	return r < 0 ? errbuf_set(eb, r, "%s: %s", dir, strerror(-r)) : 0;
}

int backup_check_outside_folder(const char *dir, const char *folder, const char *what,
				struct errbuf *eb)
{
	struct stat st;
	if (stat(folder, &st) < 0)
		return 0; /* not there (yet): nothing can be inside it */
	struct dev_ino in = { st.st_dev, st.st_ino };
	int r = is_inside(dir, &in, 1);
	if (r == 1)
		return errbuf_set(eb, -EINVAL, "%s is inside %s %s: choose a folder outside it",
				  dir, what, folder);
	return r < 0 ? errbuf_set(eb, r, "%s: %s", dir, strerror(-r)) : 0;
}

static int mark(const char *dir, enum storemark m, struct errbuf *eb)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errbuf_set(eb, -errno, "%s: %s", dir, strerror(errno));
	return storemark_write(fd, dir, m, eb);
}

/* Files of the store root that belong with its index (see the top). */
static const char *const side_files[] = { "autoimport.kept" };

/* Copies each side file of from that exists into to (tmpdir: to's tmp/). */
static int copy_side_files(const char *from, const char *to, const char *tmpdir,
			   struct errbuf *eb)
{
	char s[PATH_MAX], d[PATH_MAX];
	int r = 0;
	for (size_t i = 0; r == 0 && i < sizeof(side_files) / sizeof(side_files[0]); i++) {
		struct stat st;
		r = path_join(s, sizeof(s), from, side_files[i], eb);
		if (r == 0)
			r = path_join(d, sizeof(d), to, side_files[i], eb);
		if (r != 0)
			break;
		if (lstat(s, &st) < 0) {
			if (errno != ENOENT)
				r = errbuf_set(eb, -errno, "%s: %s", s, strerror(errno));
			continue;
		}
		if (S_ISREG(st.st_mode))
			r = copy_file(s, tmpdir, d, st.st_mode & 0777, eb);
	}
	return r;
}

/* ---- backup ---- */

struct backup_job {
	struct vault *v;
	const char *dir;
	char tmpdir[PATH_MAX];
	uint64_t objects;
	struct errbuf *eb;
};

/* Links (or copies) every object the objects column family names. */
static int link_objects(struct backup_job *job)
{
	char src[PATH_MAX], dst[PATH_MAX], hex[65];
	struct db_iter *it = NULL;
	int r = db_iter_new(vault_db(job->v), DB_CF_OBJECTS, &it);
	if (r == 0)
		db_iter_seek_first(it);
	for (; r == 0 && db_iter_valid(it); db_iter_next(it)) {
		size_t klen = 0;
		const uint8_t *k = db_iter_key(it, &klen);
		if (klen != 32)
			continue;
		enum catalog_location loc = CATALOG_LOCAL;
		/* A remote object stays in the bucket: the checkpoint records
		 * where it is, and a restore checks it is still there. */
		if (catalog_object_location(vault_catalog(job->v), k, &loc) == 0 &&
		    loc == CATALOG_REMOTE)
			continue;
		sha256_hex(k, hex);
		r = store_object_path(vault_store(job->v), k, src, sizeof(src));
		/* "both" without its local file (a crash between an import and
		 * its record): the bucket's copy is the one there is, so it is
		 * recorded, as a remote one, and the restore looks for it there. */
		if (r == 0 && loc == CATALOG_BOTH && access(src, F_OK) < 0 && errno == ENOENT)
			continue;
		if (r == 0)
			r = object_dest(job->dir, hex, dst, sizeof(dst), job->eb);
		if (r == 0)
			r = link_or_copy(src, job->tmpdir, dst, job->eb);
		if (r == 0)
			job->objects++;
	}
	db_iter_free(it);
	return r;
}

/* Under the catalog lock: the checkpoint and the objects it names, so a
 * capture removed meanwhile cannot take an object the checkpoint needs. */
static int backup_locked(void *opaque)
{
	struct backup_job *job = opaque;
	char idx[PATH_MAX];
	int r = path_join(idx, sizeof(idx), job->dir, "index", job->eb);
	if (r == 0)
		r = db_checkpoint(vault_db(job->v), idx, job->eb);
	if (r == 0)
		r = make_layout(job->dir, job->eb);
	if (r == 0)
		r = link_objects(job);
	if (r == 0)
		r = copy_side_files(store_root(vault_store(job->v)), job->dir, job->tmpdir,
				    job->eb);
	return r;
}

int backup_create(struct vault *v, const char *dir, uint64_t *objects, struct errbuf *eb)
{
	struct backup_job job = { .v = v, .dir = dir, .eb = eb };
	errbuf_clear(eb);
	*objects = 0;
	int r = path_join(job.tmpdir, sizeof(job.tmpdir), dir, "tmp", eb);
	if (r == 0)
		r = check_outside(dir, store_root(vault_store(v)), "the store", eb);
	if (r == 0)
		r = make_empty_dir(dir, eb);
	if (r == 0)
		r = mark(dir, STOREMARK_BACKUP, eb);
	if (r == 0)
		r = catalog_quiesce(vault_catalog(v), backup_locked, &job);
	if (r == 0)
		r = sync_objects(dir, eb);
	if (r == 0)
		r = mark(dir, STOREMARK_STORE, eb);
	if (r < 0 && eb && !eb->msg[0])
		errbuf_set(eb, r, "backup to %s: %s", dir, strerror(-r));
	*objects = job.objects;
	return r;
}

/* ---- restore ---- */

/* Copies every regular file of src into dst (the index: a checkpoint). */
static int copy_dir(const char *src, const char *tmpdir, const char *dst, struct errbuf *eb)
{
	char s[PATH_MAX], d[PATH_MAX];
	DIR *dir = opendir(src);
	struct dirent *de;
	int r = 0;
	if (!dir)
		return errbuf_set(eb, -errno, "%s: %s", src, strerror(errno));
	if (mkdir(dst, 0750) < 0 && errno != EEXIST)
		r = errbuf_set(eb, -errno, "%s: %s", dst, strerror(errno));
	while (r == 0 && (de = readdir(dir)) != NULL) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = path_join(s, sizeof(s), src, de->d_name, eb);
		if (r == 0)
			r = path_join(d, sizeof(d), dst, de->d_name, eb);
		if (r == 0 && lstat(s, &st) < 0)
			r = errbuf_set(eb, -errno, "%s: %s", s, strerror(errno));
		if (r != 0)
			break;
		if (S_ISDIR(st.st_mode))
			r = copy_dir(s, tmpdir, d, eb);
		else if (S_ISREG(st.st_mode))
			r = copy_file(s, tmpdir, d, st.st_mode & 0777, eb);
	}
	closedir(dir);
	if (r == 0 && (r = fsync_path(dst)) < 0)
		errbuf_set(eb, r, "%s: %s", dst, strerror(-r));
	return r;
}

/* The SHA-256 and size of the file open at fd, read from its start. */
static int hash_fd(int fd, uint8_t md[32], uint64_t *size)
{
	_cleanup_free_ uint8_t *buf = malloc(COPY_CHUNK);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned n = 0;
	int r = buf && ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ? 0 : -ENOMEM;
	*size = 0;
	while (r == 0) {
		ssize_t got = pread(fd, buf, COPY_CHUNK, (off_t)*size);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			r = got < 0 ? -errno : 1;
			break;
		}
		*size += (uint64_t)got;
		if (!EVP_DigestUpdate(ctx, buf, (size_t)got))
			r = -EIO;
	}
	if (r == 1)
		r = EVP_DigestFinal_ex(ctx, md, &n) && n == 32 ? 0 : -EIO;
	EVP_MD_CTX_free(ctx);
	return r;
}

/* Whether path holds exactly the object sha of size bytes. */
static int verify_object(const char *path, const uint8_t sha[32], uint64_t size,
			 struct errbuf *eb)
{
	uint8_t md[32];
	uint64_t got = 0;
	char hex[65];
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = fd < 0 ? -errno : hash_fd(fd, md, &got);
	if (r < 0)
		return errbuf_set(eb, r, "%s: %s", path, strerror(-r));
	if (got != size)
		return errbuf_set(eb, -EIO, "%s: %" PRIu64 " bytes, its record says %" PRIu64,
				  path, got, size);
	if (memcmp(md, sha, 32) != 0) {
		sha256_hex(md, hex);
		return errbuf_set(eb, -EIO, "%s: its bytes hash to %s, not to its name", path, hex);
	}
	return 0;
}

struct restore_job {
	const char *src, *dst;
	char tmpdir[PATH_MAX];
	struct catalog *cat;
	struct objstore *os;
	backup_lost_fn lost;
	void *lost_opaque;
	struct errbuf *eb;
};

/* An object the backup left in the object store: there with its size, or
 * gone from it (told to job->lost, and restored all the same, as lost);
 * a store that cannot answer fails the restore. */
static int restore_remote(struct restore_job *job, const uint8_t sha[32], uint64_t size,
			  const char *hex)
{
	uint64_t got = 0;
	struct errbuf eb = { { 0 } };
	char why[sizeof(eb.msg) + 128];
	if (!job->os)
		return errbuf_set(job->eb, -ENODEV, "object %s is in the object store, and no "
				  "object store is configured (object_store:)", hex);
	int r = objstore_stat(job->os, sha, &got, &eb);
	if (r < 0 && r != -ENOENT)
		return errbuf_set(job->eb, r, "object %s: %s: %s", hex,
				  objstore_describe(job->os), objstore_reason(job->os, &eb, r));
	if (r == 0 && got == size)
		return 0;
	if (r == -ENOENT)
		snprintf(why, sizeof(why), "not in %s: %s", objstore_describe(job->os),
			 objstore_reason(job->os, &eb, r));
	else
		snprintf(why, sizeof(why), "%s has %llu bytes of it, the backup says %llu",
			 objstore_describe(job->os), (unsigned long long)got,
			 (unsigned long long)size);
	if (job->lost) {
		uint64_t capture = 0;
		if (catalog_find_sha(job->cat, sha, &capture) < 0)
			capture = 0;
		job->lost(job->lost_opaque, sha, size, capture, why);
	}
	return 0;
}

/* A "both" object the backup holds no copy of (its local file was gone
 * when the backup was made): only the object store can have it, and the
 * restored catalog says "remote", which is then the truth. */
static int restore_both_remote(struct restore_job *job, const uint8_t sha[32], uint64_t size,
			       const char *hex)
{
	int r = restore_remote(job, sha, size, hex);
	if (r == 0)
		r = catalog_object_relocate(job->cat, sha, CATALOG_BOTH, CATALOG_REMOTE, job->eb);
	return r;
}

/* One object: checked in the backup, then linked; or copied, and the copy
 * checked before it takes its name. */
static int restore_object(struct restore_job *job, const uint8_t sha[32])
{
	char src[PATH_MAX], dst[PATH_MAX], hex[65];
	uint64_t size = 0, refs = 0, objnum = 0;
	enum catalog_location loc = CATALOG_LOCAL;
	int r = catalog_object_get(job->cat, sha, &size, &refs, &objnum);
	sha256_hex(sha, hex);
	if (r == 0)
		r = catalog_object_location(job->cat, sha, &loc);
	if (r < 0)
		return errbuf_set(job->eb, r, "object %s: unreadable record", hex);
	if (loc == CATALOG_REMOTE)
		return restore_remote(job, sha, size, hex);
	if (snprintf(src, sizeof(src), "%s/objects/%.2s/%s", job->src, hex, hex) >= (int)sizeof(src))
		return errbuf_set(job->eb, -ENAMETOOLONG, "%s: path too long", job->src);
	if (loc == CATALOG_BOTH && access(src, F_OK) < 0 && errno == ENOENT)
		return restore_both_remote(job, sha, size, hex);
	r = object_dest(job->dst, hex, dst, sizeof(dst), job->eb);
	if (r == 0)
		r = verify_object(src, sha, size, job->eb);
	if (r == 0 && link(src, dst) < 0) {
		if (errno != EXDEV && errno != EPERM && errno != EMLINK)
			return errbuf_set(job->eb, -errno, "linking %s to %s: %s", src, dst,
					  strerror(errno));
		r = copy_file(src, job->tmpdir, dst, 0444, job->eb);
		if (r == 0 && (r = verify_object(dst, sha, size, job->eb)) < 0)
			unlink(dst);
	}
	return r;
}

static int restore_objects(struct restore_job *job)
{
	char idx[PATH_MAX];
	struct db *db = NULL;
	struct db_iter *it = NULL;
	int r = path_join(idx, sizeof(idx), job->dst, "index", job->eb);
	if (r == 0)
		r = db_open(&db, idx, job->eb);
	if (r == 0)
		r = catalog_new(&job->cat, db, job->eb);
	if (r == 0 && (r = db_iter_new(db, DB_CF_OBJECTS, &it)) == 0)
		db_iter_seek_first(it);
	for (; r == 0 && db_iter_valid(it); db_iter_next(it)) {
		size_t klen = 0;
		const uint8_t *k = db_iter_key(it, &klen);
		if (klen == 32)
			r = restore_object(job, k);
	}
	db_iter_free(it);
	catalog_free(job->cat);
	db_close(db);
	return r;
}

/* A complete backup, or a store or backup made before markers existed
 * (every object of which is checked as it is restored anyway). */
static int check_backup(const char *src, struct errbuf *eb)
{
	enum storemark m = STOREMARK_NONE;
	char idx[PATH_MAX];
	_cleanup_close_ int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errbuf_set(eb, -errno, "%s: %s", src, strerror(errno));
	int r = storemark_read(fd, src, &m, eb);
	if (r < 0 || m == STOREMARK_STORE)
		return r;
	if (m != STOREMARK_NONE)
		return errbuf_set(eb, -EINVAL, "%s: %s (it never finished): nothing restored", src,
				  storemark_what(m));
	r = path_join(idx, sizeof(idx), src, "index", eb);
	if (r == 0 && db_probe(idx) != 1)
		r = errbuf_set(eb, -ENOENT, "%s: not a capvault backup (no %s/" STOREMARK_NAME
			       " and no index)", src, src);
	return r;
}

int backup_restore(const char *src, const char *dst, struct objstore *os, backup_lost_fn lost,
		   void *opaque, struct errbuf *eb)
{
	struct restore_job job = { .src = src, .dst = dst, .os = os, .lost = lost,
				   .lost_opaque = opaque, .eb = eb };
	char s[PATH_MAX], d[PATH_MAX];
	errbuf_clear(eb);
	int r = check_backup(src, eb);
	if (r == 0)
		r = check_outside(dst, src, "the backup", eb);
	if (r == 0)
		r = make_empty_dir(dst, eb);
	/* From here on dst says what it is: a restore that has not finished. */
	if (r == 0)
		r = mark(dst, STOREMARK_RESTORE, eb);
	if (r == 0)
		r = make_layout(dst, eb);
	if (r == 0)
		r = path_join(job.tmpdir, sizeof(job.tmpdir), dst, "tmp", eb);
	if (r == 0)
		r = path_join(s, sizeof(s), src, "index", eb);
	if (r == 0)
		r = path_join(d, sizeof(d), dst, "index", eb);
	if (r == 0)
		r = copy_dir(s, job.tmpdir, d, eb);
	if (r == 0)
		r = restore_objects(&job);
	if (r == 0)
		r = copy_side_files(src, dst, job.tmpdir, eb);
	if (r == 0)
		r = sync_objects(dst, eb);
	if (r == 0)
		r = mark(dst, STOREMARK_STORE, eb);
	return r;
}
