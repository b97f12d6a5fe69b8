/*
 * daemon.h - the pieces of capvaultd shared by its main loop (capvaultd.c),
 * its work queue (daemon_queue.c) and its import workers
 * (daemon_worker.c).
 *
 * Threads: the main thread owns the watch and the config; N workers pop
 * ready files from the queue and import them. Folders and configs are
 * never freed before shutdown, so a worker may keep pointers to them
 * across a SIGHUP reload; a reload only swaps a folder's config pointer.
 */
#ifndef CAPVAULT_DAEMON_H
#define CAPVAULT_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "api.h"
#include "config.h"
#include "retention.h"

struct vault;

/* Bounded so a burst of millions of files cannot exhaust memory; a
 * dropped event is recovered by a later rescan. */
#define DAEMON_QUEUE_MAX 4096u

struct daemon_counters {
	/* retried: transient failures, each parking a file for a retry. */
	atomic_uint_fast64_t seen, imported, duplicates, failed, bytes, packets, retried;
};

struct daemon_folder {
	int watch_id;            /* -1 once removed by a reload */
	char *path;
	_Atomic(const struct config_import *) cfg;
	struct daemon_counters ctr;
	struct daemon_folder *next;
};

/* After this many transient failures of its own (not a full store), a
 * file is given up on: left in place, counted as failed and listed with
 * the recent failures; it is tried again when it changes (the watcher
 * reports it anew) or at the next start. */
#define DAEMON_RETRY_LIMIT 5u

/* Where a worker claims a file before importing it (see daemon_worker.c):
 * <import folder>/.capvault-claim/<subfolder>/<name>. */
#define DAEMON_CLAIM_DIR ".capvault-claim"

struct daemon_item {
	struct daemon_folder *folder;
	char *path;              /* where the file was dropped */
	char *rel_dir;
	char *claim;             /* where it is held while claimed, or NULL */
	/* The claim's folder, held open (O_PATH) from the claim on, and the
	 * claim reached through it (/proc/self/fd/N/NAME): a writer who
	 * renames .capvault-claim and puts a symlink in its place meanwhile
	 * cannot make the daemon read, remove or move another file. -1 and
	 * NULL when not claimed, or when not anchored (no /proc, no openat2):
	 * then claim is used. */
	int claim_dir;
	char *claim_at;
	char *error;             /* the last transient failure, or NULL */
	unsigned attempts;       /* transient failures so far */
	/* The file given up on (dev, ino, size, mtime), so that the path
	 * queued again (the name reported anew) skips it unless it changed. */
	bool gave_up;
	struct daemon_gave_up { dev_t dev; ino_t ino; off_t size; struct timespec mtime; } last;
	uint64_t not_before_ms;  /* retry time (monotonic) */
	struct daemon_item *next;
};

struct daemon_queue;
struct daemon_kept;

int daemon_queue_new(struct daemon_queue **out);
struct daemon_queue *daemon_queue_free(struct daemon_queue *q);
/* Returns 0, 1 when the path is already queued or in flight (then it is
 * queued again once the worker is done with it: the name may now be a
 * new file), or -ENOSPC when the queue is full (dropped, rescan later),
 * -ENOMEM. claim: where the file is already held (a claim found at
 * start-up), or NULL. */
int daemon_queue_push(struct daemon_queue *q, struct daemon_folder *f, const char *path,
		      const char *rel_dir, const char *claim);
/* Blocks until an item is ready or the queue is stopped (NULL). */
struct daemon_item *daemon_queue_pop(struct daemon_queue *q);
/* The worker is done with the item: forgets its path and frees it. */
void daemon_queue_done(struct daemon_queue *q, struct daemon_item *it);
/* Parks the item until now + back-off; its path stays "in flight". why
 * (may be NULL) is kept for daemon_queue_parked. */
void daemon_queue_retry(struct daemon_queue *q, struct daemon_item *it, const char *why);
/* Calls fn for each parked item (under the queue's lock: fn must only
 * copy); returns how many are parked. */
unsigned daemon_queue_parked(struct daemon_queue *q,
			     void (*fn)(void *ctx, const struct daemon_item *it), void *ctx);
/* Moves parked items whose time has come back into the queue. */
void daemon_queue_promote(struct daemon_queue *q);
/* Moves every parked item back into the queue now, whatever its back-off
 * (space was just freed: the files refused for lack of it may fit). */
void daemon_queue_retry_now(struct daemon_queue *q);
/* Wakes every worker; pop returns NULL from now on. */
void daemon_queue_stop(struct daemon_queue *q);
unsigned daemon_queue_length(struct daemon_queue *q);

/* The files an after_import: keep folder has imported, by (dev, ino,
 * size, mtime), persisted in <store>/autoimport.kept. */
int daemon_kept_open(struct daemon_kept **out, const char *store);
struct daemon_kept *daemon_kept_free(struct daemon_kept *k);
bool daemon_kept_has(struct daemon_kept *k, const struct stat *st);
/* Returns 0 or a negative errno (the record may not survive a crash). */
int daemon_kept_add(struct daemon_kept *k, const struct stat *st);

/* The last few import failures, for GET /v1/imports and `capvault
 * status` (daemon_failures.c). Zero-initialized is empty; the lock is
 * set up by daemon_failures_init. */
#define DAEMON_FAILURES_KEPT 16
struct daemon_failure {
	char path[512];
	char error[512];
	uint64_t time_ns;
};
struct daemon_failures {
	pthread_mutex_t lock;
	struct daemon_failure v[DAEMON_FAILURES_KEPT];
	size_t next, n;
	atomic_uint_fast64_t by_reason[API_IMPORT_REASONS]; /* since start */
};
void daemon_failures_init(struct daemon_failures *f);
void daemon_failures_destroy(struct daemon_failures *f);
/* Records a failure and counts it by reason: err is the negative errno
 * the import ended with (-EINVAL: the file is malformed). */
void daemon_failures_note(struct daemon_failures *f, const char *path, const char *why, int err);
/* Copies up to max failures, newest first, into out; returns how many. */
size_t daemon_failures_copy(struct daemon_failures *f, struct daemon_failure *out, size_t max);

struct daemon_workers {
	struct vault *vault;
	struct daemon_failures failures;
	struct daemon_queue *queue;
	struct daemon_kept *kept;
	pthread_t *threads;
	unsigned n;
};

/* Starts n workers. Returns 0 or a negative errno. */
int daemon_workers_start(struct daemon_workers *w, unsigned n);

/* The files of an import folder (daemon_files.c). */
/* Renames the item's file into its folder's claim folder (it->claim set).
 * Returns 0 or a negative errno: -ENOENT when the name is gone, -EEXIST
 * when the claim is taken; others mean it cannot be claimed here (another
 * file system, a sticky folder...). */
int daemon_claim(struct daemon_item *it);
/* Hands a claimed file back under its name (it->claim cleared). Returns 0,
 * or -EEXIST when the name holds another file by now (still claimed). */
int daemon_unclaim(struct daemon_item *it);
/* Forgets the claim: the caller removed or moved the claimed file. */
void daemon_claim_release(struct daemon_item *it);
/* A claim found at start-up (daemon_claims_recover) held by its folder's
 * descriptor, as daemon_claim holds a new one. Returns 0 or a negative
 * errno: -ELOOP when a folder on its way is a symlink. */
int daemon_claim_anchor(struct daemon_item *it);
/* The path that reaches the claimed file (claim_at, else claim). */
const char *daemon_claim_path(const struct daemon_item *it);
/* Queues every file a previous run left claimed in folder f (killed
 * while importing it), so it is finished or handed back; call before
 * the watcher's first scan. Returns how many, or a negative errno. */
int daemon_claims_recover(struct daemon_workers *w, struct daemon_folder *f);
/* Hands back under their names the files an earlier run left claimed in
 * the import folder root, which is no longer in the configuration (so
 * nothing there is imported). Returns how many stay claimed (a name taken
 * meanwhile, a symlinked subfolder), or a negative errno. */
int daemon_claims_hand_back(const char *root);
/* <store>/DAEMON_CLAIM_FOLDERS lists every import folder whose claim
 * folder may hold files: the configured ones (paths[0..n)), and those
 * dropped from the configuration while anything stays claimed there. With
 * hand_back (at start, before any worker runs), the claims of those are
 * handed back first (daemon_claims_hand_back); at a reload, a dropped
 * folder's files may still be in the workers' hands, so it only stays
 * listed. Returns 0 or a negative errno. */
#define DAEMON_CLAIM_FOLDERS "claim-folders"
int daemon_claim_folders_update(const char *store, const char *const *paths, size_t n,
				bool hand_back);
/* Moves path to dir/rel_dir/<name, or the first free variant: x.1.pcap,
 * x.2.pcap...>, never replacing anything; with note, <dst>.error is
 * written first. dst gets the destination. Returns 0 or a negative errno. */
int daemon_move_into(const char *path, const char *name, const char *dir, const char *rel_dir,
		     const char *note, char *dst, size_t size);
/* A failed or move: folder inside the import folder root (the default
 * <root>/.failed) is checked before anything is moved there: the folder
 * of it right below root, which a writer could have made first or
 * replaced by a symlink to anywhere (the store's tmp/, whose files the
 * next start removes; root itself, whose .error notes then fail in turn),
 * must be a folder (not a symlink) of the daemon's user; it is made
 * (0755) when missing. A folder outside root is the configuration's.
 * Returns 0, or a negative errno: -EPERM when it is not the daemon's. */
int daemon_destination_check(const char *root, const char *dir);
/* Whether the item's claim folder (<folder>/DAEMON_CLAIM_DIR) is still
 * the daemon's: a writer can rename it within the import folder and put a
 * symlink in its place while a file is imported, and a path through it
 * then reaches another folder's file of the same name. 0 (or no claim),
 * else a negative errno (-EPERM). */
int daemon_claim_intact(const struct daemon_item *it);
/* Opens the item's file where it was dropped (not its claim) with flags,
 * through no symlink and without leaving its import folder: a subfolder
 * swapped for a symlink gives -ELOOP. Returns the descriptor or
 * a negative errno. */
int daemon_open_beneath(const struct daemon_item *it, int flags);
/* True while path names the inode st describes. */
bool daemon_same_file(const char *path, const struct stat *st);
/* The last component of path. */
const char *daemon_base_name(const char *path);
/* Stops the queue and joins every worker. */
void daemon_workers_join(struct daemon_workers *w);

struct daemon_tier;
/* Retention runs (daemon_retention.c): the policies every interval and
 * while the store is below min_free, and on request of the API. The lock
 * guards the rules and the schedule: the main loop and API threads both
 * use them. */
struct daemon_retention {
	pthread_mutex_t lock;
	struct vault *vault;
	struct retention_rules rules; /* points into the config in force */
	uint64_t interval_ms;
	uint64_t next_ms;             /* next scheduled run (monotonic) */
	uint64_t low_check_ms;        /* next free-space check */
	uint64_t last_low_run_ms;
	bool refusing;                /* pruning could not reach min_free */
	struct daemon_tier *tier;     /* where tier_after and local_max_size send objects */
};

/* (Re)reads the rules from rc (kept alive by the caller) and passes the
 * min_free floor to the vault. Returns 0 or -ENOMEM. */
int daemon_retention_configure(struct daemon_retention *dr, struct vault *v,
			       const struct config_retention *rc);
void daemon_retention_release(struct daemon_retention *dr);
/* Runs the policies when due or below min_free; call from the main loop.
 * Returns true when it freed space. Skips a tick while the API prunes. */
bool daemon_retention_tick(struct daemon_retention *dr);
/* Runs them now, logging every deletion. Returns 0 or a negative errno. */
int daemon_retention_run(struct daemon_retention *dr);
/* For POST /v1/prune: plans with the rules in force and, unless dry_run,
 * deletes (logging each deletion). Returns 0 with *out (free with
 * retention_plan_free), or a negative errno (eb). */
int daemon_retention_prune(struct daemon_retention *dr, bool dry_run,
			   struct retention_plan **out, struct errbuf *eb);
/* For GET /v1/retention: calls fn with the rules in force, the interval
 * and the next scheduled run (Unix time, ns), under the lock. */
void daemon_retention_describe(struct daemon_retention *dr,
			       void (*fn)(void *ctx, const struct retention_rules *rules,
					  uint64_t interval_ns, uint64_t next_run_ns),
			       void *ctx);

/* The scrub (daemon_scrub.c): every scrub.interval, on its own thread,
 * every object re-hashed against its name at most scrub.rate bytes a
 * second; corrupt ones quarantined and logged. The lock guards all of it. */
struct api_scrub_stats;
struct ring;
struct daemon_scrub {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;   /* stop, or a new schedule or rate */
	bool started, stop, running;
	struct vault *vault;
	struct ring *ring;     /* the scrub thread's */
	uint64_t interval_ms;  /* 0: off */
	uint64_t rate;         /* bytes per second */
	uint64_t next_ms;      /* next pass (monotonic) */
	uint64_t pass_start_ms, pass_bytes, pass_objects, pass_corrupt;
	uint64_t objects_total, bytes_total, quarantined_total;
	uint64_t corrupt;      /* the last pass's, or the running one's once higher */
	uint64_t last_objects, last_end_ns;
};

/* Starts the scrub's thread (it waits for its first pass: at once when
 * the last recorded one ended an interval ago or more, or none was).
 * Returns 0 or a negative errno. */
int daemon_scrub_start(struct daemon_scrub *s, struct vault *v, const struct config_scrub *cfg);
/* A reload: the new rate at once, the new interval from the last pass. */
void daemon_scrub_configure(struct daemon_scrub *s, const struct config_scrub *cfg);
/* Stops a pass under way and ends the thread. Safe if never started. */
void daemon_scrub_stop(struct daemon_scrub *s);
void daemon_scrub_stats(struct daemon_scrub *s, struct api_scrub_stats *out);

/* The tier mover (daemon_tier.c): one thread moving objects to the object
 * store (tier.h: put and confirm, "both", "remote", then the local copy
 * goes) and removing the remote copies no capture references any more,
 * one at a time, from a bounded queue. A failure is retried with back-off
 * (the queue keeps its place); imports go on locally meanwhile. A full
 * queue drops the request: retention asks again at its next run, and a
 * dropped removal leaves an orphan for `capvault fsck --remote --repair`. */
#define DAEMON_TIER_QUEUE_MAX 4096u
/* The store is asked again (objstore_check) this long after its last
 * check, when no move or removal is due then, so its state in status
 * stays current without traffic. */
#define DAEMON_TIER_CHECK_MS 60000u
struct api_tier_stats;
struct objstore;
struct store;
struct daemon_tier_job;
struct daemon_tier {
	pthread_t thread;
	pthread_mutex_t lock;  /* the queue and the counters */
	pthread_cond_t cond;   /* a job, or stop */
	pthread_mutex_t move;  /* one move or removal at a time (tier.h) */
	bool started, stop;
	struct vault *vault;
	struct objstore *os;   /* owned */
	struct daemon_tier_job *jobs; /* DAEMON_TIER_QUEUE_MAX slots, in order */
	size_t n;
	uint64_t queue_bytes;
	uint64_t tiered_objects, tiered_bytes, removed_objects, retries, dropped;
	uint64_t errors[6];    /* by enum api_tier_error */
	uint64_t put_lat[9], put_lat_sum_us;
	/* While the store as a whole fails (its state not ok after a job
	 * failed), no queued job starts before hold_until_ms: one job probes
	 * it per hold, the hold growing as a job's back-off does. */
	uint64_t hold_until_ms;
	unsigned holds;
};

/* Opens the configured object store (NULL in *os when none is) and
 * starts the mover; first finishes what a crash left half done (tier.h's
 * tier_resume). The mover's first request checks the store (objstore.h's
 * objstore_check) and logs its state; a change of state later is logged
 * too. Returns 0 or a negative errno (eb). */
int daemon_tier_start(struct daemon_tier *t, struct vault *v, const struct config *cfg,
		      struct errbuf *eb);
/* Ends the thread (the move under way finishes) and frees the store. */
void daemon_tier_stop(struct daemon_tier *t);
bool daemon_tier_enabled(struct daemon_tier *t);
/* Whether the object store answered the latest request (objstore_health),
 * or has not been asked yet. */
bool daemon_tier_store_up(struct daemon_tier *t);
/* Queues a move of object sha (size bytes). 0, 1 when already queued,
 * -ENOSPC (full: dropped), -ENODEV (no object store). */
int daemon_tier_push(struct daemon_tier *t, const uint8_t sha[32], uint64_t size);
/* Moves sha now, between the mover's own moves, without retrying (POST
 * /v1/tier): tier_object's returns. */
int daemon_tier_now(struct daemon_tier *t, const uint8_t sha[32], uint64_t *bytes,
		    struct errbuf *eb);
void daemon_tier_stats(struct daemon_tier *t, struct api_tier_stats *out);

#endif
