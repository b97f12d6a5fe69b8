/*
 * backup.c - backup (of an open store, the daemon's too) and offline
 * restore (see fsck.h).
 *
 * Promises:
 * - A backup is a store: DIR/index is a RocksDB checkpoint (consistent at
 *   one instant), DIR/objects holds every object an object record names,
 *   hard-linked when on the same file system (objects are read-only and
 *   never rewritten, so sharing the inode is safe), else copied.
 * - Copies are fsynced, as are the folders they land in, before success is
 *   returned.
 * - Neither touches the source; both refuse a destination that holds
 *   anything.
 * - A backup of a store in use (capvaultd's, through POST /v1/backup) is
 *   still consistent: the checkpoint and the object links are made under
 *   the catalog lock, so imports wait to commit and nothing is pruned
 *   meanwhile (links take milliseconds; copies across file systems make
 *   imports wait longer).
 */
#include "fsck.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "cleanup.h"
#include "db.h"
#include "store.h"
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

/* Copies src to dst (new file, mode), fsynced. */
static int copy_file(const char *src, const char *dst, mode_t mode, struct errbuf *eb)
{
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return errbuf_set(eb, -errno, "%s: %s", src, strerror(errno));
	_cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (out < 0)
		return errbuf_set(eb, -errno, "%s: %s", dst, strerror(errno));
	int r = copy_data(in, out);
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	if (r < 0) {
		unlink(dst);
		return errbuf_set(eb, r, "copying %s to %s: %s", src, dst, strerror(-r));
	}
	return 0;
}

static int link_or_copy(const char *src, const char *dst, struct errbuf *eb)
{
	if (link(src, dst) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK)
		return errbuf_set(eb, -errno, "linking %s to %s: %s", src, dst, strerror(errno));
	return copy_file(src, dst, 0444, eb);
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

struct backup_job {
	struct vault *v;
	const char *dir;
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
		sha256_hex(k, hex);
		r = store_object_path(vault_store(job->v), k, src, sizeof(src));
		if (r == 0)
			r = object_dest(job->dir, hex, dst, sizeof(dst), job->eb);
		if (r == 0)
			r = link_or_copy(src, dst, job->eb);
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
	return r;
}

int backup_create(struct vault *v, const char *dir, uint64_t *objects, struct errbuf *eb)
{
	struct backup_job job = { .v = v, .dir = dir, .eb = eb };
	errbuf_clear(eb);
	*objects = 0;
	int r = make_empty_dir(dir, eb);
	if (r == 0)
		r = catalog_quiesce(vault_catalog(v), backup_locked, &job);
	if (r == 0)
		r = sync_objects(dir, eb);
	if (r < 0 && eb && !eb->msg[0])
		errbuf_set(eb, r, "backup to %s: %s", dir, strerror(-r));
	*objects = job.objects;
	return r;
}

/* Copies (index) or links (objects) every regular file of src into dst. */
static int copy_dir(const char *src, const char *dst, bool may_link, struct errbuf *eb)
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
			r = copy_dir(s, d, may_link, eb);
		else if (S_ISREG(st.st_mode))
			r = may_link ? link_or_copy(s, d, eb) : copy_file(s, d, st.st_mode & 0777, eb);
	}
	closedir(dir);
	if (r == 0 && (r = fsync_path(dst)) < 0)
		errbuf_set(eb, r, "%s: %s", dst, strerror(-r));
	return r;
}

int backup_restore(const char *src, const char *dst, struct errbuf *eb)
{
	char s[PATH_MAX], d[PATH_MAX];
	struct stat st;
	errbuf_clear(eb);
	int r = path_join(s, sizeof(s), src, "index/CURRENT", eb);
	if (r == 0 && stat(s, &st) < 0)
		return errbuf_set(eb, -ENOENT, "%s: not a capvault backup (no index/CURRENT)", src);
	if (r == 0)
		r = make_empty_dir(dst, eb);
	if (r == 0)
		r = make_layout(dst, eb);
	if (r == 0)
		r = path_join(s, sizeof(s), src, "index", eb);
	if (r == 0)
		r = path_join(d, sizeof(d), dst, "index", eb);
	if (r == 0)
		r = copy_dir(s, d, false, eb);
	if (r == 0)
		r = path_join(s, sizeof(s), src, "objects", eb);
	if (r == 0)
		r = path_join(d, sizeof(d), dst, "objects", eb);
	if (r == 0)
		r = copy_dir(s, d, true, eb);
	if (r == 0 && (r = fsync_path(dst)) < 0)
		errbuf_set(eb, r, "%s: %s", dst, strerror(-r));
	return r;
}
