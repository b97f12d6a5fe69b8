/*
 * daemon_worker.c - capvaultd's import workers. Each worker owns an
 * io_uring ring and imports one ready file at a time into the vault, then
 * applies the folder's after_import (delete, move, keep).
 *
 * Promises:
 * - Only what was imported is removed. Unless after_import is keep, a
 *   worker first claims the file: it renames it into the folder's private
 *   DAEMON_CLAIM_DIR (same file system, so the rename is atomic and takes
 *   exactly the inode the name held), imports it from there and removes
 *   or moves the claimed file. A file renamed over the dropped name
 *   meanwhile is a new file under the old name, imported on its own.
 *   Where a file cannot be claimed (a subfolder on another file system, a
 *   sticky folder) it is imported in place and removed only if its name
 *   still holds the inode that was imported.
 * - A source file is removed or moved only after its capture is durably
 *   stored (import returned 0). A killed daemon's claims are queued again
 *   at the next start (daemon_claims_recover): imported then, or a
 *   duplicate of what was already committed, so each capture is in the
 *   catalog exactly once.
 * - Nothing but a regular file is read, moved or removed: the file is
 *   opened without following symlinks and without blocking (a FIFO), and
 *   its descriptor checked; anything else is handed back under its name.
 * - Nothing is overwritten: moves into the failed folder or a move:
 *   folder pick a free name (x.1.pcap, x.2.pcap...), and so do .error
 *   notes.
 * - A malformed file is moved to the failed folder with a .error note; a
 *   file that hit a transient error (disk full, I/O error, permissions, a
 *   source that changed while it was read) is handed back, counted as
 *   retried, listed as retrying and retried with back-off; after
 *   DAEMON_RETRY_LIMIT such failures of its own (a full store is not the
 *   file's fault and is retried as long as it lasts) it is left in place,
 *   counted as failed and listed with the recent failures.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <fts.h>
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
#define UNIQUE_TRIES 10000

/* mkdir -p; an existing folder is fine. */
static int mkdir_p(const char *dir, mode_t mode)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static bool same_file(const char *path, const struct stat *st)
{
	struct stat now;
	return lstat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

/* rename(2) that never replaces dst. Where the file system lacks
 * RENAME_NOREPLACE (some FUSE and network file systems), link + unlink,
 * which fails on an existing dst too; where it has no hard links either,
 * a rename once dst was seen free (the destinations are the daemon's:
 * its claims, failed and move folders). src is unlinked only while it
 * still names the linked inode. */
static int rename_noreplace(const char *src, const char *dst)
{
	if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -errno;
	if (link(src, dst) == 0) {
		struct stat st;
		if (lstat(dst, &st) == 0 && same_file(src, &st) && unlink(src) < 0) {
			int err = -errno;
			unlink(dst); /* not moved: no second name left behind */
			return err;
		}
		return 0;
	}
	if (errno == EEXIST || errno == ENOENT)
		return -errno;
	struct stat st;
	if (lstat(dst, &st) == 0)
		return -EEXIST;
	return rename(src, dst) < 0 ? -errno : 0;
}

/* The n-th free name for name: n = 0 is name itself, else a number before
 * the first extension (a.pcap.gz -> a.1.pcap.gz), so the name still says
 * what the file is. */
static int unique_name(const char *dir, const char *name, unsigned n, char *out, size_t size)
{
	const char *dot = strchr(name + 1, '.');
	int len = n == 0  ? snprintf(out, size, "%s/%s", dir, name)
		  : !dot ? snprintf(out, size, "%s/%s.%u", dir, name, n)
			 : snprintf(out, size, "%s/%.*s.%u%s", dir, (int)(dot - name), name, n, dot);
	return len < 0 || (size_t)len >= size ? -ENAMETOOLONG : 0;
}

/* Writes the .error note for dst, which must not exist yet. */
static int write_error_note(const char *dst, const char *msg)
{
	char note[PATH_MAX];
	if (snprintf(note, sizeof(note), "%s.error", dst) >= (int)sizeof(note))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd =
		open(note, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (dprintf(fd, "%s\n", msg) < 0 || fsync(fd) < 0) {
		int err = -errno;
		unlink(note);
		return err;
	}
	return 0;
}

static void drop_error_note(const char *dst)
{
	char note[PATH_MAX];
	if (snprintf(note, sizeof(note), "%s.error", dst) < (int)sizeof(note))
		unlink(note);
}

/* Moves path to dir/rel_dir/<name, or the first free variant>, keeping the
 * subfolder it was found in, never replacing a file there; with note, a
 * <dst>.error note is written first (so both names are free). dst gets
 * the destination. */
static int move_into(const char *path, const char *name, const char *dir, const char *rel_dir,
		     const char *note, char *dst, size_t size)
{
	char sub[PATH_MAX];
	if (snprintf(sub, sizeof(sub), "%s%s%s", dir, *rel_dir ? "/" : "", rel_dir) >= (int)sizeof(sub))
		return -ENAMETOOLONG;
	int err = mkdir_p(sub, 0755);
	for (unsigned n = 0; !err && n < UNIQUE_TRIES; n++) {
		err = unique_name(sub, name, n, dst, size);
		if (!err && note)
			err = write_error_note(dst, note);
		if (err == -EEXIST) {
			err = 0;
			continue;
		}
		if (!err)
			err = rename_noreplace(path, dst);
		if (err && note && err != -ENAMETOOLONG)
			drop_error_note(dst);
		if (err != -EEXIST)
			return err;
		err = 0;
	}
	return err ? err : -EEXIST;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* ---- claims ---- */

/* The import folder an item was found in: its path less "/rel_dir/name". */
static int folder_root(const struct daemon_item *it, char *out, size_t size)
{
	size_t n = (size_t)(base_name(it->path) - it->path);
	size_t rel = strlen(it->rel_dir);
	if (n == 0)
		return -EINVAL;
	n--; /* the slash before the name */
	if (rel) {
		if (n < rel + 1 || strncmp(it->path + n - rel, it->rel_dir, rel) != 0)
			return -EINVAL;
		n -= rel + 1;
	}
	if (n >= size)
		return -ENAMETOOLONG;
	memcpy(out, it->path, n);
	out[n] = '\0';
	return 0;
}

/* Creates the folder's claim folder, private to the daemon. One that is
 * not a folder the daemon owns (a symlink planted by a writer) is refused. */
static int claim_dir(const char *root, const char *rel_dir, char *out, size_t size)
{
	char top[PATH_MAX];
	struct stat st;
	if (snprintf(top, sizeof(top), "%s/" DAEMON_CLAIM_DIR, root) >= (int)sizeof(top) ||
	    snprintf(out, size, "%s%s%s", top, *rel_dir ? "/" : "", rel_dir) >= (int)size)
		return -ENAMETOOLONG;
	if (mkdir(top, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(top, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return -EPERM;
	return *rel_dir ? mkdir_p(out, 0700) : 0;
}

/* Renames the file into the claim folder. Returns 0 (it->claim set) or a
 * negative errno: -ENOENT when the name is gone. */
static int claim(struct daemon_item *it)
{
	char root[PATH_MAX], dir[PATH_MAX], dst[PATH_MAX];
	int err = folder_root(it, root, sizeof(root));
	if (!err)
		err = claim_dir(root, it->rel_dir, dir, sizeof(dir));
	if (!err && snprintf(dst, sizeof(dst), "%s/%s", dir, base_name(it->path)) >= (int)sizeof(dst))
		err = -ENAMETOOLONG;
	if (!err)
		err = rename_noreplace(it->path, dst);
	if (!err && !(it->claim = strdup(dst))) {
		rename_noreplace(dst, it->path);
		err = -ENOMEM;
	}
	return err;
}

/* Hands a claimed file back under its name. Returns 0, or -EEXIST when
 * the name holds another file by now (the file stays claimed). */
static int unclaim(struct daemon_item *it)
{
	if (!it->claim)
		return 0;
	int err = rename_noreplace(it->claim, it->path);
	if (err && err != -ENOENT)
		return err;
	free(it->claim);
	it->claim = NULL;
	return 0;
}

/* The claim is done with (removed or moved by the caller). */
static void claim_release(struct daemon_item *it)
{
	free(it->claim);
	it->claim = NULL;
}

/* Where the file is now. */
static const char *where(const struct daemon_item *it)
{
	return it->claim ? it->claim : it->path;
}

/* Puts a claimed file the daemon will not import back under its name, or
 * when that was taken meanwhile into the failed folder with why. */
static void hand_back(struct daemon_item *it, const struct config_import *ci, const char *why)
{
	char dst[PATH_MAX];
	if (!it->claim || unclaim(it) == 0)
		return;
	int err = move_into(it->claim, base_name(it->path), ci->failed_folder, it->rel_dir, why,
			    dst, sizeof(dst));
	if (err)
		log_warnx("%s: could not hand it back nor move it to %s: %s; it stays in %s",
			  it->path, ci->failed_folder, strerror(-err), it->claim);
	else
		log_warnx("%s: %s; its name was taken meanwhile, moved to %s", it->path, why, dst);
	claim_release(it);
}

int daemon_claims_recover(struct daemon_workers *w, struct daemon_folder *f)
{
	char top[PATH_MAX], orig[PATH_MAX], rel_dir[PATH_MAX];
	if (snprintf(top, sizeof(top), "%s/" DAEMON_CLAIM_DIR, f->path) >= (int)sizeof(top))
		return -ENAMETOOLONG;
	struct stat st;
	if (lstat(top, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		log_warnx("%s: not a folder of this daemon's user, ignored", top);
		return 0;
	}
	char *const roots[] = { top, NULL };
	FTS *fts = fts_open(roots, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
	if (!fts)
		return -errno;
	int n = 0;
	size_t top_len = strlen(top);
	for (FTSENT *e; (e = fts_read(fts));) {
		if (e->fts_info == FTS_D || e->fts_info == FTS_DP || e->fts_info == FTS_DNR ||
		    e->fts_info == FTS_ERR || e->fts_info == FTS_NS || e->fts_level == 0)
			continue;
		const char *rel = e->fts_path + top_len + 1;
		size_t dir_len = (size_t)(base_name(rel) - rel);
		snprintf(rel_dir, sizeof(rel_dir), "%.*s", dir_len ? (int)dir_len - 1 : 0, rel);
		if (snprintf(orig, sizeof(orig), "%s/%s", f->path, rel) >= (int)sizeof(orig))
			continue;
		int rc = daemon_queue_push(w->queue, f, orig, rel_dir, e->fts_path);
		if (rc == 0)
			n++;
		else
			log_warnx("%s: claimed by an earlier run, not queued: %s", e->fts_path,
				  strerror(rc > 0 ? EEXIST : -rc));
	}
	fts_close(fts);
	if (n)
		log_info("%s: %d files an earlier run had claimed queued again", f->path, n);
	return n;
}

/* ---- one import ---- */

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

static void handle_malformed(struct daemon_workers *w, struct daemon_item *it,
			     const struct config_import *ci, const char *msg)
{
	char dst[PATH_MAX];
	atomic_fetch_add(&it->folder->ctr.failed, 1);
	daemon_failures_note(&w->failures, it->path, msg);
	int err = move_into(where(it), base_name(it->path), ci->failed_folder, it->rel_dir, msg,
			    dst, sizeof(dst));
	if (err) {
		log_warnx("failed %s: %s; could not move it to %s: %s", it->path, msg,
			  ci->failed_folder, strerror(-err));
		hand_back(it, ci, msg);
		return;
	}
	claim_release(it);
	log_warnx("failed %s: %s; moved to %s", it->path, msg, dst);
}

/* st: the imported file. Unclaimed, it is removed or moved only while its
 * name still holds it. */
static void after_success(struct daemon_item *it, const struct config_import *ci,
			  struct daemon_kept *kept, const struct stat *st)
{
	char dst[PATH_MAX];
	int err = 0;
	if (ci->after_import == CONFIG_AFTER_KEEP)
		err = daemon_kept_add(kept, st);
	else if (!it->claim && !same_file(it->path, st))
		err = -ESTALE; /* replaced since: not the file imported */
	else if (ci->after_import == CONFIG_AFTER_DELETE)
		err = unlink(where(it)) < 0 ? -errno : 0;
	else
		err = move_into(where(it), base_name(it->path), ci->move_to, it->rel_dir, NULL, dst,
				sizeof(dst));
	if (err == -ESTALE)
		log_warnx("%s: stored; its name holds another file by now, left alone", it->path);
	else if (err)
		log_warnx("%s: stored, but after_import failed: %s", it->path, strerror(-err));
	if (!err)
		claim_release(it);
	else
		hand_back(it, ci, "stored, but after_import failed");
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

/* The store is full: not the file's fault, retried as long as it lasts
 * (retention frees space and retries at once). */
static bool is_store_full(int err)
{
	return err == -ENOSPC || err == -EDQUOT;
}

/* lstat's errno for a path that is not there (as opposed to unreadable). */
static bool is_gone_errno(int err)
{
	return err == ENOENT || err == ENOTDIR;
}

/* A transient failure: hand the file back and retry it later, or give up
 * after DAEMON_RETRY_LIMIT. Returns true when the item was parked. */
static bool transient(struct daemon_workers *w, struct daemon_item *it,
		      const struct config_import *ci, const struct stat *st, int err,
		      const char *msg)
{
	if (it->claim && unclaim(it) < 0)
		log_warnx("%s: its name holds another file by now; retrying it from %s", it->path,
			  it->claim);
	if (is_store_full(err) || it->attempts + 1 < DAEMON_RETRY_LIMIT) {
		atomic_fetch_add(&it->folder->ctr.retried, 1);
		log_warnx("retrying %s later: %s", it->path, msg);
		daemon_queue_retry(w->queue, it, msg);
		return true;
	}
	char why[600];
	snprintf(why, sizeof(why), "gave up after %u attempts, left in place: %s",
		 it->attempts + 1, msg);
	it->gave_up = true;
	it->last = (struct daemon_gave_up){ st->st_dev, st->st_ino, st->st_size, st->st_mtim };
	hand_back(it, ci, why);
	atomic_fetch_add(&it->folder->ctr.failed, 1);
	daemon_failures_note(&w->failures, it->path, why);
	log_warnx("failed %s: %s", it->path, why);
	return false;
}

/* Opens the file without following a symlink or blocking on a FIFO, and
 * checks it is a regular file. Returns the descriptor (blocking again),
 * -ENODEV for anything else, or a negative errno. */
static int open_regular(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP || errno == ENXIO || errno == EWOULDBLOCK ? -ENODEV : -errno;
	int flags = fstat(fd, st) < 0 ? -1 : fcntl(fd, F_GETFL);
	int err = flags < 0			     ? -errno
		  : !S_ISREG(st->st_mode)	     ? -ENODEV
		  : fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ? -errno
								: 0;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* The file this item gave up on, unchanged: left alone until it changes. */
static bool given_up(const struct daemon_item *it, const struct stat *st)
{
	return it->gave_up && it->last.dev == st->st_dev && it->last.ino == st->st_ino &&
	       it->last.size == st->st_size && it->last.mtime.tv_sec == st->st_mtim.tv_sec &&
	       it->last.mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* What to do with a name before importing it. Returns 1 to import, 0 when
 * there is nothing to do, -1 when the item was parked. */
static int prepare(struct daemon_workers *w, struct daemon_item *it, const struct config_import *ci)
{
	struct stat st;
	if (it->claim)
		return 1;
	if (lstat(it->path, &st) < 0) {
		if (is_gone_errno(errno)) {
			if (it->attempts) /* imported by a previous run or moved away */
				log_warnx("%s: gone before its retry (deleted or moved away); "
					  "nothing stored", it->path);
			return 0;
		}
		/* Its folder cannot be read for now (permissions). */
		log_warnx("retrying %s later: %s", it->path, strerror(errno));
		daemon_queue_retry(w->queue, it, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || given_up(it, &st))
		return 0;
	if (ci->after_import == CONFIG_AFTER_KEEP)
		return 1; /* never removed: nothing to claim */
	int err = claim(it);
	if (err == -ENOENT)
		return 0;
	if (err == -EEXIST) {
		log_warnx("retrying %s later: its claim %s/%s is taken", it->path, DAEMON_CLAIM_DIR,
			  base_name(it->path));
		daemon_queue_retry(w->queue, it, "claim taken");
		return -1;
	}
	if (err)
		log_debug("%s: imported in place, cannot claim it: %s", it->path, strerror(-err));
	return 1;
}

/* The path a claimed file was dropped at, its folder resolved as the
 * catalog records an unclaimed file's (realpath). */
static const char *dropped_path(const struct daemon_item *it, char *buf, size_t size)
{
	char dir[PATH_MAX], real[PATH_MAX];
	size_t n = (size_t)(base_name(it->path) - it->path);
	if (n == 0 || n > sizeof(dir))
		return it->path;
	snprintf(dir, n, "%s", it->path); /* without the last slash */
	if (!realpath(dir, real) ||
	    snprintf(buf, size, "%s/%s", real, base_name(it->path)) >= (int)size)
		return it->path;
	return buf;
}

/* The import's message, naming the file where it was dropped rather than
 * its claim. */
static void message(const struct daemon_item *it, int err, const struct errbuf *eb, char *out,
		    size_t size)
{
	size_t n = it->claim ? strlen(it->claim) : 0;
	if (!eb->msg[0])
		snprintf(out, size, "%s", strerror(-err));
	else if (n && !strncmp(eb->msg, it->claim, n))
		snprintf(out, size, "%s%s", it->path, eb->msg + n);
	else
		snprintf(out, size, "%s", eb->msg);
}

/* Returns true when the item was parked for a retry (not done). */
static bool import_one(struct daemon_workers *w, struct ring *ring, struct daemon_item *it)
{
	const struct config_import *ci = atomic_load(&it->folder->cfg);
	int go = prepare(w, it, ci);
	if (go <= 0)
		return go < 0;
	struct stat st;
	int fd = open_regular(where(it), &st);
	if (fd == -ENODEV || fd == -ENOENT) {
		if (fd == -ENODEV)
			log_info("%s: not a regular file, left alone", it->path);
		hand_back(it, ci, "not a regular file");
		return false;
	}
	if (fd < 0) {
		char msg[600];
		snprintf(msg, sizeof(msg), "%s: %s", it->path, strerror(-fd));
		struct stat now;
		if (is_transient(fd) && lstat(where(it), &now) == 0)
			return transient(w, it, ci, &now, fd, msg);
		hand_back(it, ci, msg);
		return false;
	}
	if (ci->after_import == CONFIG_AFTER_KEEP && daemon_kept_has(w->kept, &st)) {
		close(fd);
		log_info("skipped %s: kept, already imported", it->path);
		return false;
	}
	char tagbuf[PATH_MAX], dropped[PATH_MAX];
	const char *tags[MAX_TAGS];
	struct import_source src = {
		.path = where(it),
		.name = base_name(it->path),
		.source_path = it->claim ? dropped_path(it, dropped, sizeof(dropped)) : NULL,
		.tags = tags,
		.ntags = build_tags(ci, it->rel_dir, tagbuf, sizeof(tagbuf), tags),
		.ring = ring,
		.may_link = ci->after_import != CONFIG_AFTER_KEEP,
	};
	struct import_result res;
	struct import_info info;
	struct errbuf eb = { { 0 } };
	int err = import_fd(ring, &vault_sink_ops, w->vault, fd, &src, &res, &info, &eb);
	close(fd);
	char msg[sizeof(eb.msg)];
	message(it, err, &eb, msg, sizeof(msg));
	if (!err) {
		report(it, &res, &info);
		after_success(it, ci, w->kept, &st);
	} else if (!same_file(where(it), &st)) {
		log_warnx("%s: deleted or moved away while being imported (%s); nothing stored",
			  it->path, msg);
		claim_release(it);
	} else if (err == -EINVAL) {
		handle_malformed(w, it, ci, msg);
	} else if (is_transient(err)) {
		return transient(w, it, ci, &st, err, msg);
	} else {
		atomic_fetch_add(&it->folder->ctr.failed, 1);
		daemon_failures_note(&w->failures, it->path, msg);
		log_warnx("failed %s: %s (left in place)", it->path, msg);
		hand_back(it, ci, msg);
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
