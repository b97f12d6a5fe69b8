/*
 * watch.h - watches import folders and reports files that are ready to
 * import. It never imports, moves or opens a file: it calls on_ready and the
 * daemon queues the import.
 *
 * Promises:
 * - A file is reported once it is complete: on inotify's IN_MOVED_TO (a
 *   rename into place) at once; otherwise (an inotify IN_CLOSE_WRITE, or a
 *   file found by a scan: start-up, a new subfolder, an inotify queue
 *   overflow, a polled folder) once its size, mtime and inode have not
 *   changed for the folder's settle time, so a writer that closes and
 *   reopens it to append within that time is waited for. A file whose
 *   mtime is already older than the settle time (inotify folders) is
 *   reported at once.
 * - Partial names are never reported: dotfiles, *.part, *.tmp, *.filepart,
 *   *~, *.crdownload, *.partial and the folder's ignore globs. Renaming
 *   x.part to x.pcap reports x.pcap.
 * - No file is missed: an inotify queue overflow rescans every inotify
 *   folder. A file is reported once per appearance: a report of the same
 *   (device, inode, path, size, mtime) within WATCH_DEDUP_MS (or twice the
 *   longest settle time, if longer) is dropped. watch_rescan is the
 *   exception: it reports every file present again.
 * - Folders on network and virtual file systems (NFS, SMB, FUSE, Ceph, 9p,
 *   AFS...) are polled, since inotify does not see writes made by other
 *   machines: one directory scan per interval, no thread, memory
 *   proportional to the files present; files that disappear are forgotten.
 *   A file a scan found still settling is lstat'ed again when its settle
 *   time is up, so it is reported within one interval plus the settle time
 *   of appearing.
 * - One io_uring ring drives everything; memory stays bounded under bursts
 *   (callbacks run synchronously, the dedup memory expires).
 *
 * A watch belongs to one thread; only watch_wakeup may be called from
 * another. Callbacks must not call watch_* functions other than
 * watch_wakeup.
 */
#ifndef CAPVAULT_WATCH_H
#define CAPVAULT_WATCH_H

#include <stdbool.h>
#include <sys/stat.h>

#include "errbuf.h"
#include "log.h"

struct ring;
struct watch;

/* How long a report of an unchanged file suppresses the next one. */
#define WATCH_DEDUP_MS 30000u
#define WATCH_DEFAULT_POLL_MS 10000u
#define WATCH_DEFAULT_SETTLE_MS 5000u

enum watch_mode {
	WATCH_MODE_AUTO = 0, /* inotify on local file systems, poll on remote ones */
	WATCH_MODE_INOTIFY,
	WATCH_MODE_POLL,
};

struct watch_folder_cfg {
	const char *path;
	bool recursive;
	enum watch_mode mode;
	unsigned poll_interval_ms; /* 0: WATCH_DEFAULT_POLL_MS */
	unsigned settle_ms;        /* 0: WATCH_DEFAULT_SETTLE_MS */
	/* NULL-terminated lists, may be NULL. Globs (fnmatch) match the file
	 * or folder name, or, when they contain '/', the path relative to the
	 * folder. Excluded folders are absolute or relative to path and are
	 * never entered; <path>/.failed is always excluded. */
	const char *const *ignore;
	const char *const *exclude;
};

struct watch_callbacks {
	/* A file is ready. folder is the id watch_add_folder returned, rel_dir
	 * the subfolder between the import folder and the file ("" at the top,
	 * "lab1/bgp" below), st its lstat. */
	void (*on_ready)(void *opaque, int folder, const char *path, const char *rel_dir,
			 const struct stat *st);
	/* Optional: a log line for the daemon to print ("folder X: ..."). */
	void (*on_log)(void *opaque, enum log_level level, const char *msg);
};

/* ring: NULL to let the watch make its own, or a ring it shares with
 * synchronous ring calls of the same thread (not with another
 * ring_wait_event user: the watch drops completions that are not its own).
 * Returns 0 or a negative errno. */
int watch_new(struct watch **out, struct ring *ring, const struct watch_callbacks *cb,
	      void *opaque);
/* Accepts NULL; returns NULL. */
struct watch *watch_free(struct watch *w);

/* Starts watching a folder; its existing files are scanned on the next
 * watch_run_once. Returns the folder id (>= 0) or a negative errno with
 * detail in eb: -ENOENT, -ENOTDIR, -EEXIST (overlaps a watched folder),
 * -ENOSPC (inotify watch limit). */
int watch_add_folder(struct watch *w, const struct watch_folder_cfg *cfg, struct errbuf *eb);
/* Stops watching a folder; other folders lose no events. Returns 0 or
 * -ENOENT for an unknown id. */
int watch_remove_folder(struct watch *w, int folder);

/* Processes events and timers for at most timeout_ms (negative: until
 * something happens). Returns the number of files reported, or a negative
 * errno when the ring failed. */
int watch_run_once(struct watch *w, int timeout_ms);
/* Makes a running or the next watch_run_once return soon. Thread-safe. */
void watch_wakeup(struct watch *w);
/* Rescans every folder on the next watch_run_once and reports every ready
 * file present again, even those reported before (for a caller that
 * dropped reports, e.g. on a full queue; no need to wait WATCH_DEDUP_MS).
 * Files still settling are reported once they have settled. */
void watch_rescan(struct watch *w);

/* The mode auto picks for a statfs f_type. *why (may be NULL) gets the
 * reason for the log line: the file system's name for inotify, "nfs:
 * inotify does not see remote writes" for poll. */
enum watch_mode watch_mode_for_fstype(unsigned long f_type, const char **why);
/* A short name for an f_type ("ext4", "nfs"), or NULL if unknown. */
const char *watch_fstype_name(unsigned long f_type);
/* True for names of files still being written (dotfiles, *.part...). */
bool watch_name_is_partial(const char *name);

#endif
