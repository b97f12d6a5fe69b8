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
#include "textesc.h"
#include "vault.h"

#define MAX_TAGS 64

/* Where the file is now. */
static const char *where(const struct daemon_item *it)
{
	return it->claim ? daemon_claim_path(it) : it->path;
}

/* Moves the item's file, where it is now, into dir (see daemon_move_into). */
static int move_to(const struct daemon_item *it, const char *dir, const char *note, char *dst,
		   size_t size)
{
	int err = daemon_claim_intact(it);
	if (!err)
		err = daemon_destination_check(it->folder->path, dir);
	if (err)
		return err;
	return daemon_move_into(where(it), daemon_base_name(it->path), dir, it->rel_dir, note, dst,
				size);
}

/* Puts a claimed file the daemon will not import back under its name, or
 * when that was taken meanwhile into the failed folder with why. */
static void hand_back(struct daemon_item *it, const struct config_import *ci, const char *why)
{
	char dst[PATH_MAX];
	if (!it->claim || daemon_unclaim(it) == 0)
		return;
	int err = move_to(it, ci->failed_folder, why, dst, sizeof(dst));
	if (err)
		log_warnx("%s: could not hand it back nor move it to %s: %s; it stays in %s",
			  it->path, ci->failed_folder, strerror(-err), it->claim);
	else
		log_warnx("%s: %s; its name was taken meanwhile, moved to %s", it->path, why, dst);
	daemon_claim_release(it);
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
	daemon_failures_note(&w->failures, it->path, msg, -EINVAL);
	/* The note outlives the folder the file came from: it names it,
	 * escaped as the log does, so that a name holding a newline cannot
	 * add lines of its own to the note. */
	_cleanup_free_ char *shown = text_escape_dup(it->path, TEXT_ESC_CONTROLS);
	_cleanup_free_ char *note = NULL;
	if (!shown || asprintf(&note, "%s: %s", shown, msg) < 0)
		note = NULL;
	int err = note ? move_to(it, ci->failed_folder, note, dst, sizeof(dst)) : -ENOMEM;
	if (err) {
		log_warnx("failed %s: %s; could not move it to %s: %s", it->path, msg,
			  ci->failed_folder, strerror(-err));
		hand_back(it, ci, msg);
		return;
	}
	daemon_claim_release(it);
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
	else if (!daemon_same_file(where(it), st) || daemon_claim_intact(it) < 0)
		err = -ESTALE; /* replaced since: not the file imported */
	else if (ci->after_import == CONFIG_AFTER_DELETE)
		err = unlink(where(it)) < 0 ? -errno : 0;
	else
		err = move_to(it, ci->move_to, NULL, dst, sizeof(dst));
	if (err == -ESTALE && it->claim) {
		/* The claim folder was moved (a writer renamed it, a symlink in
		 * its place): the path reaches another file; touch nothing. */
		log_warnx("%s: stored; its claim folder was moved or replaced meanwhile, the file "
			  "is left where it went", it->path);
		daemon_claim_release(it);
		return;
	}
	if (err == -ESTALE)
		log_warnx("%s: stored; its name holds another file by now, left alone", it->path);
	else if (err)
		log_warnx("%s: stored, but after_import failed: %s", it->path, strerror(-err));
	if (!err)
		daemon_claim_release(it);
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
	if (it->claim && daemon_unclaim(it) < 0)
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
	daemon_failures_note(&w->failures, it->path, why, err);
	log_warnx("failed %s: %s", it->path, why);
	return false;
}

/* Opens the file without following a symlink or blocking on a FIFO, and
 * checks it is a regular file. Returns the descriptor (blocking again),
 * -ENODEV for anything else, or a negative errno. */
static int open_regular(const struct daemon_item *it, struct stat *st)
{
	/* Unclaimed (imported in place), through no symlinked subfolder. */
	int how = O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC;
	int fd = it->claim ? open(where(it), how) : daemon_open_beneath(it, how);
	if (fd < 0) {
		int e = it->claim ? errno : -fd;
		return e == ELOOP || e == ENXIO || e == EWOULDBLOCK ? -ENODEV : -e;
	}
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
	if (it->claim) { /* found at start-up */
		if (daemon_claim_anchor(it) == -ELOOP) {
			log_warnx("%s: a folder on its claim's path is a symlink; left alone",
				  it->claim);
			return 0;
		}
		return 1; /* anchored, or reached by its path as before */
	}
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
	int err = daemon_claim(it);
	if (err == -ENOENT)
		return 0;
	if (err == -ELOOP) {
		/* A subfolder swapped for a symlink: what it points at is not
		 * the import folder's, and is neither read nor moved. */
		log_warnx("%s: a folder on its path is a symlink (or leaves the import folder); "
			  "left alone", it->path);
		return 0;
	}
	if (err == -EEXIST) {
		log_warnx("retrying %s later: its claim %s/%s is taken", it->path, DAEMON_CLAIM_DIR,
			  daemon_base_name(it->path));
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
	size_t n = (size_t)(daemon_base_name(it->path) - it->path);
	if (n == 0 || n > sizeof(dir))
		return it->path;
	snprintf(dir, n, "%s", it->path); /* without the last slash */
	if (!realpath(dir, real) ||
	    snprintf(buf, size, "%s/%s", real, daemon_base_name(it->path)) >= (int)size)
		return it->path;
	return buf;
}

/* The import's error without the file's name in front (the import names
 * the file it read, the item's claim or its path): the log lines and the
 * failures list name it->path themselves. */
static const char *without_name(const char *msg, const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n && !strncmp(msg, name, n) && !strncmp(msg + n, ": ", 2) ? msg + n + 2 : msg;
}

static void message(const struct daemon_item *it, int err, const struct errbuf *eb, char *out,
		    size_t size)
{
	if (!eb->msg[0])
		snprintf(out, size, "%s", strerror(-err));
	else
		snprintf(out, size, "%s",
			 without_name(without_name(eb->msg, where(it)), it->path));
}

/* Returns true when the item was parked for a retry (not done). */
static bool import_one(struct daemon_workers *w, struct ring *ring, struct daemon_item *it)
{
	const struct config_import *ci = atomic_load(&it->folder->cfg);
	int go = prepare(w, it, ci);
	if (go <= 0)
		return go < 0;
	struct stat st;
	int fd = open_regular(it, &st);
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
		.name = daemon_base_name(it->path),
		.source_path = it->claim ? dropped_path(it, dropped, sizeof(dropped)) : NULL,
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
	int err = import_fd(ring, &vault_sink_ops, w->vault, fd, &src, &res, &info, &eb);
	close(fd);
	char msg[sizeof(eb.msg)];
	message(it, err, &eb, msg, sizeof(msg));
	if (!err) {
		report(it, &res, &info);
		after_success(it, ci, w->kept, &st);
	} else if (!daemon_same_file(where(it), &st)) {
		log_warnx("%s: deleted or moved away while being imported (%s); nothing stored",
			  it->path, msg);
		daemon_claim_release(it);
	} else if (err == -EINVAL) {
		handle_malformed(w, it, ci, msg);
	} else if (is_transient(err)) {
		return transient(w, it, ci, &st, err, msg);
	} else {
		atomic_fetch_add(&it->folder->ctr.failed, 1);
		daemon_failures_note(&w->failures, it->path, msg, err);
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
