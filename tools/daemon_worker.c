/*
 * daemon_worker.c - capvaultd's import workers. Each worker owns an
 * io_uring ring and imports one ready file at a time into the vault, then
 * applies the folder's after_import (delete, move, keep).
 *
 * Promises: a source file is removed or moved only after its capture is
 * durably stored (import_file returned 0); a malformed file is moved to
 * the failed folder with a .error note and never deleted; a file that hit
 * a transient error (disk full, I/O error, a store or folder it may not
 * write or read, a source that changed while it was read) is left in
 * place and retried with back-off; a source deleted or moved away while
 * it was imported is reported, and nothing of it is kept.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "import.h"
#include "log.h"
#include "store.h"
#include "vault.h"

#define MAX_TAGS 64

/* mkdir -p; an existing folder is fine. */
static int mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* rename() that never replaces: a file already at dst (an earlier drop of
 * the same name, which may be the only copy of a capture that could not be
 * imported) is kept, and this one becomes dst.1, dst.2, ... */
static int rename_keeping(const char *path, char *dst, size_t size)
{
	size_t base = strlen(dst);
	for (unsigned i = 1; i <= 1000; i++) {
		if (renameat2(AT_FDCWD, path, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
			return 0;
		/* A file system without RENAME_NOREPLACE: look, then rename. */
		if (errno == EINVAL && access(dst, F_OK) < 0 && errno == ENOENT)
			return rename(path, dst) < 0 ? -errno : 0;
		if (errno != EEXIST && errno != EINVAL)
			return -errno;
		if (snprintf(dst + base, size - base, ".%u", i) >= (int)(size - base))
			return -ENAMETOOLONG;
	}
	return -EEXIST;
}

/* Moves path to dir/rel_dir/name, keeping the subfolder it was found in,
 * and writes the destination to dst. */
static int move_into(const char *path, const char *dir, const char *rel_dir, char *dst, size_t size)
{
	char sub[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	if (snprintf(sub, sizeof(sub), "%s%s%s", dir, *rel_dir ? "/" : "", rel_dir) >= (int)sizeof(sub) ||
	    snprintf(dst, size, "%s/%s", sub, name) >= (int)size)
		return -ENAMETOOLONG;
	int err = mkdir_p(sub);
	if (err)
		return err;
	return rename_keeping(path, dst, size);
}

/* Tags: the folder's, then each subfolder name when asked; names that
 * are not valid tags are skipped rather than failing the import. */
static size_t build_tags(const struct config_import *ci, const char *rel_dir, char *buf,
			 size_t size, const char **tags)
{
	size_t n = 0;
	for (size_t i = 0; i < ci->tags.n && n < MAX_TAGS; i++)
		tags[n++] = ci->tags.v[i];
	if (!ci->tags_from_subfolders || snprintf(buf, size, "%s", rel_dir) >= (int)size)
		return n;
	char *save = NULL;
	for (char *t = strtok_r(buf, "/", &save); t && n < MAX_TAGS; t = strtok_r(NULL, "/", &save)) {
		if (catalog_tag_valid(t))
			tags[n++] = t;
		else
			log_warnx("%s: subfolder '%s' is not a valid tag, skipped", ci->path, t);
	}
	return n;
}

static void write_error_note(const char *dst, const char *msg)
{
	char note[PATH_MAX];
	if (snprintf(note, sizeof(note), "%s.error", dst) >= (int)sizeof(note))
		return;
	_cleanup_close_ int fd = open(note, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || dprintf(fd, "%s\n", msg) < 0 || fsync(fd) < 0)
		log_warn("%s", note);
}

static void handle_malformed(struct daemon_item *it, const struct config_import *ci,
			     const char *msg)
{
	char dst[PATH_MAX];
	atomic_fetch_add(&it->folder->ctr.failed, 1);
	int err = move_into(it->path, ci->failed_folder, it->rel_dir, dst, sizeof(dst));
	if (err) {
		log_warnx("failed %s: %s; could not move it to %s: %s", it->path, msg,
			  ci->failed_folder, strerror(-err));
		return;
	}
	write_error_note(dst, msg);
	log_warnx("failed %s: %s; moved to %s", it->path, msg, dst);
}

static void after_success(struct daemon_item *it, const struct config_import *ci,
			  struct daemon_kept *kept, const struct stat *st)
{
	char dst[PATH_MAX];
	int err = 0;
	if (ci->after_import == CONFIG_AFTER_DELETE)
		err = unlink(it->path) < 0 ? -errno : 0;
	else if (ci->after_import == CONFIG_AFTER_MOVE)
		err = move_into(it->path, ci->move_to, it->rel_dir, dst, sizeof(dst));
	else
		err = daemon_kept_add(kept, st);
	if (err)
		log_warnx("%s: stored, but after_import failed: %s", it->path, strerror(-err));
}

static void report(struct daemon_item *it, const struct import_result *res,
		   const struct import_info *info)
{
	struct daemon_counters *c = &it->folder->ctr;
	char hex[65];
	sha256_hex(res->sha256, hex);
	hex[12] = '\0';
	atomic_fetch_add(res->duplicate ? &c->duplicates : &c->imported, 1);
	if (!res->duplicate) {
		atomic_fetch_add(&c->bytes, info->capture_bytes);
		atomic_fetch_add(&c->packets, info->summary.packets);
	}
	log_info("%s %s: capture %llu sha256 %s %llu packets",
		 res->duplicate ? "duplicate" : "imported", it->path,
		 (unsigned long long)res->capture_id, hex,
		 (unsigned long long)info->summary.packets);
}

/* Errors that a later attempt may not meet: space freed, permissions or
 * a read-only mount fixed, a source replaced or written to settled. */
static bool is_transient(int err)
{
	return err == -ENOSPC || err == -EBUSY || err == -EIO || err == -ENOMEM ||
	       err == -EAGAIN || err == -EDQUOT || err == -EACCES || err == -EPERM ||
	       err == -EROFS || err == -ESTALE;
}

/* lstat's errno for a path that is not there (as opposed to unreadable). */
static bool is_gone_errno(int err)
{
	return err == ENOENT || err == ENOTDIR;
}

static bool vanished(const char *path)
{
	struct stat st;
	return lstat(path, &st) < 0 && is_gone_errno(errno);
}

/* Returns true when the item was parked for a retry (not done). */
static bool import_one(struct daemon_workers *w, struct ring *ring, struct daemon_item *it)
{
	const struct config_import *ci = atomic_load(&it->folder->cfg);
	struct stat st;
	int stat_err = lstat(it->path, &st) < 0 ? errno : 0;
	if (stat_err && !is_gone_errno(stat_err)) {
		/* Its folder cannot be read for now (permissions). */
		log_warnx("retrying %s later: %s", it->path, strerror(stat_err));
		daemon_queue_retry(w->queue, it);
		return true;
	}
	if (stat_err || !S_ISREG(st.st_mode)) {
		/* Imported by a previous run or moved away; after a retry, say so. */
		if (it->attempts)
			log_warnx("%s: gone before its retry (deleted or moved away); nothing stored",
				  it->path);
		return false;
	}
	if (ci->after_import == CONFIG_AFTER_KEEP && daemon_kept_has(w->kept, &st)) {
		log_info("skipped %s: kept, already imported", it->path);
		return false;
	}
	char tagbuf[PATH_MAX];
	const char *tags[MAX_TAGS];
	const char *slash = strrchr(it->path, '/');
	struct import_source src = {
		.path = it->path,
		.name = slash ? slash + 1 : it->path,
		.tags = tags,
		.ntags = build_tags(ci, it->rel_dir, tagbuf, sizeof(tagbuf), tags),
		.ring = ring,
		/* Only a source that is deleted afterwards: a moved one would
		 * stay a second name of the object's inode, in a folder where
		 * people edit files (invariant 6). */
		.may_link = ci->after_import == CONFIG_AFTER_DELETE,
	};
	struct import_result res;
	struct import_info info;
	struct errbuf eb = { { 0 } };
	int err = import_file(ring, &vault_sink_ops, w->vault, &src, &res, &info, &eb);
	const char *msg = eb.msg[0] ? eb.msg : strerror(-err);
	if (!err) {
		report(it, &res, &info);
		after_success(it, ci, w->kept, &st);
	} else if (vanished(it->path)) {
		log_warnx("%s: deleted or moved away while being imported (%s); nothing stored",
			  it->path, msg);
	} else if (err == -EINVAL) {
		daemon_failures_note(&w->failures, it->path, msg);
		handle_malformed(it, ci, msg);
	} else if (is_transient(err)) {
		log_warnx("retrying %s later: %s", it->path, msg);
		daemon_queue_retry(w->queue, it);
		return true;
	} else {
		atomic_fetch_add(&it->folder->ctr.failed, 1);
		daemon_failures_note(&w->failures, it->path, msg);
		log_warnx("failed %s: %s (left in place)", it->path, msg);
	}
	return false;
}

static void *worker_main(void *arg)
{
	struct daemon_workers *w = arg;
	struct ring *ring = NULL;
	int err = ring_new(&ring, 16);
	if (err) {
		log_errx("worker: io_uring: %s", strerror(-err));
		return NULL;
	}
	struct daemon_item *it;
	while ((it = daemon_queue_pop(w->queue)))
		if (!import_one(w, ring, it))
			daemon_queue_done(w->queue, it);
	ring_free(ring);
	return NULL;
}

int daemon_workers_start(struct daemon_workers *w, unsigned n)
{
	w->threads = calloc(n, sizeof(*w->threads));
	if (!w->threads)
		return -ENOMEM;
	/* Signals go to the main thread only, which polls their flags. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int err = 0;
	for (w->n = 0; w->n < n && !err; w->n++)
		err = -pthread_create(&w->threads[w->n], NULL, worker_main, w);
	if (err)
		w->n--;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

void daemon_workers_join(struct daemon_workers *w)
{
	daemon_queue_stop(w->queue);
	for (unsigned i = 0; i < w->n; i++)
		pthread_join(w->threads[i], NULL);
	free(w->threads);
	w->threads = NULL;
	w->n = 0;
}
