/*
 * daemon_kept.c - remembers which files of after_import: keep folders
 * were imported, so a kept file is imported once, also across restarts.
 *
 * A file is known by (device, inode, size, mtime, ctime): a rewritten file
 * has a new size or mtime and is imported again; a new file that reuses a
 * deleted one's inode with its size and mtime (cp -p, rsync -t or tar
 * restore times) has a new ctime, which no user can set, and is imported
 * too. Records of earlier versions have no ctime and match any. Records are text lines
 * appended to <store>/autoimport.kept and fsynced before the import is
 * reported done; a torn last line after a crash is skipped on load (the
 * file is then imported again as a duplicate, which is harmless).
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"

struct kept_rec {
	uint64_t dev, ino, size, mtime_ns, ctime_ns;
};

#define CTIME_UNKNOWN UINT64_MAX

struct daemon_kept {
	pthread_mutex_t lock;
	int fd;
	struct kept_rec *v;
	size_t n, cap;
};

static struct kept_rec rec_of(const struct stat *st)
{
	return (struct kept_rec){
		.dev = st->st_dev,
		.ino = st->st_ino,
		.size = (uint64_t)st->st_size,
		.mtime_ns = (uint64_t)st->st_mtim.tv_sec * 1000000000u + (uint64_t)st->st_mtim.tv_nsec,
		.ctime_ns = (uint64_t)st->st_ctim.tv_sec * 1000000000u + (uint64_t)st->st_ctim.tv_nsec,
	};
}

static int kept_push(struct daemon_kept *k, struct kept_rec r)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 64;
		struct kept_rec *v = realloc(k->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		k->v = v;
		k->cap = cap;
	}
	k->v[k->n++] = r;
	return 0;
}

static int kept_load(struct daemon_kept *k, const char *path)
{
	_cleanup_fclose_ FILE *f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	char line[256];
	while (fgets(line, sizeof(line), f)) {
		struct kept_rec r;
		if (!strchr(line, '\n')) {
			/* Torn by a crash (the end), or longer than a record: the
			 * rest of the line must not be read as a record. */
			int c;
			while ((c = getc(f)) != EOF && c != '\n')
				;
			continue;
		}
		int n = sscanf(line, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
			       &r.dev, &r.ino, &r.size, &r.mtime_ns, &r.ctime_ns);
		if (n == 4)
			r.ctime_ns = CTIME_UNKNOWN;
		if (n >= 4 && kept_push(k, r) < 0)
			return -ENOMEM;
	}
	return 0;
}

int daemon_kept_open(struct daemon_kept **out, const char *store)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/autoimport.kept", store) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	struct daemon_kept *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	pthread_mutex_init(&k->lock, NULL);
	int err = kept_load(k, path);
	k->fd = err ? -1 : open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (!err && k->fd < 0)
		err = -errno;
	if (err) {
		daemon_kept_free(k);
		return err;
	}
	*out = k;
	return 0;
}

struct daemon_kept *daemon_kept_free(struct daemon_kept *k)
{
	if (!k)
		return NULL;
	if (k->fd >= 0)
		close(k->fd);
	pthread_mutex_destroy(&k->lock);
	free(k->v);
	free(k);
	return NULL;
}

bool daemon_kept_has(struct daemon_kept *k, const struct stat *st)
{
	struct kept_rec r = rec_of(st);
	bool found = false;
	pthread_mutex_lock(&k->lock);
	for (size_t i = k->n; i-- > 0 && !found;) {
		const struct kept_rec *e = &k->v[i];
		found = e->dev == r.dev && e->ino == r.ino && e->size == r.size &&
			e->mtime_ns == r.mtime_ns &&
			(e->ctime_ns == CTIME_UNKNOWN || e->ctime_ns == r.ctime_ns);
	}
	pthread_mutex_unlock(&k->lock);
	return found;
}

int daemon_kept_add(struct daemon_kept *k, const struct stat *st)
{
	struct kept_rec r = rec_of(st);
	char line[128];
	int len = snprintf(line, sizeof(line),
			   "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", r.dev,
			   r.ino, r.size, r.mtime_ns, r.ctime_ns);
	int err = 0;
	pthread_mutex_lock(&k->lock);
	if (write(k->fd, line, (size_t)len) != len || fsync(k->fd) < 0)
		err = errno ? -errno : -EIO;
	if (!err)
		err = kept_push(k, r);
	pthread_mutex_unlock(&k->lock);
	return err;
}
