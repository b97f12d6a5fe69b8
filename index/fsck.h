/*
 * fsck.h - checking a store, and repairing what can be repaired safely
 * (git's builtin/fsck.c is the model: keep going after each problem and
 * report them all).
 *
 * Open the vault with VAULT_NO_CLEANUP so the leftovers that opening
 * would silently remove are reported too.
 *
 * Checks: every object file's SHA-256 (streamed through ring reads, never
 * read whole) against its name, and its mode (read-only); every capture's object present with the
 * recorded size; object records' refcounts equal to their captures;
 * object records without a capture and captures without an object record;
 * the flow index of each live object with packets; index entries (flows,
 * tindex, contexts) of object numbers no live object has; objects no
 * capture references; tmp/ leftovers.
 *
 * Repairs (with repair set): drop captures whose object file is missing,
 * fix refcounts and object records, remove unreferenced objects, tmp/
 * leftovers and dead index entries, and rebuild a missing or damaged
 * packet index from its object (reindex.h) when the object hashes to its
 * name. A corrupt object (hash mismatch) is never deleted: its bytes may
 * still be what someone needs. Repair moves it to quarantine/ (no import
 * dedups onto it; the same bytes imported again publish a good object)
 * and tags its captures FSCK_DAMAGED_TAG; a capture whose object was
 * quarantined is kept and reported, never dropped, and its tag goes once
 * its object is whole again.
 */
#ifndef CAPVAULT_FSCK_H
#define CAPVAULT_FSCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "errbuf.h"

struct vault;
struct ring;
struct store;

/* The tag of a capture whose object was quarantined as corrupt. */
#define FSCK_DAMAGED_TAG "capvault:damaged"

/* One problem: text names the capture id, hash or path; repaired says
 * whether --repair fixed it. */
typedef void (*fsck_report_fn)(void *opaque, const char *text, bool repaired);

struct fsck_counts {
	uint64_t objects, captures;   /* looked at */
	uint64_t bytes_hashed;
	uint64_t corrupt;             /* objects that did not hash to their names */
	uint64_t problems, repaired;
};

/* One problem found: counted in c (and as repaired when it was), its text
 * handed to report when there is one. The local and the remote walks
 * (fsck.c, fsck_remote.c) both report through it. */
__attribute__((format(printf, 5, 6))) void fsck_problem(fsck_report_fn report, void *opaque,
							 struct fsck_counts *c, bool repaired,
							 const char *fmt, ...);

/*
 * Checks (and with repair, repairs) the vault. Returns 0 when the checks
 * ran (problems or not: see counts), or a negative errno when they could
 * not (eb).
 */
int fsck_run(struct vault *v, struct ring *ring, bool repair, fsck_report_fn report,
	     void *opaque, struct fsck_counts *counts, struct errbuf *eb);

/* fsck_run's object check alone (capvault fsck --verify): every object
 * re-hashed against its name, corrupt ones (with repair) quarantined, and
 * captures whose object was quarantined reported. Same returns. */
int fsck_verify(struct vault *v, struct ring *ring, bool repair, fsck_report_fn report,
		void *opaque, struct fsck_counts *counts, struct errbuf *eb);

/*
 * `capvault fsck --remote`: lists the object store os and checks it
 * against the catalog. Orphans (keys the catalog does not name there: no
 * record, or a record that says local with its local copy there) are
 * reported and, with repair, removed. A record that says local without
 * its local copy keeps the store's copy, which repair makes the recorded
 * one (remote) when it hashes to its name. Strays (keys that are not
 * object names) are reported and left alone, other vaults' keys under
 * this one's (a longer prefix) not even reported. An object the catalog says is remote or both must be in the
 * store with its size; with verify its bytes are re-hashed, and the
 * catalog's block digests of it (blockdig.h) checked against them (with
 * repair, missing or wrong ones are recorded again from the verified
 * bytes). A copy that is missing, of the wrong size or corrupt
 * is never fixed by dropping a capture: with repair, a "both" object's
 * local copy becomes the one recorded; else it is reported. counts:
 * objects (remote objects looked at), bytes_hashed, corrupt, problems,
 * repaired. Same returns as fsck_run.
 */
struct objstore;
int fsck_remote(struct vault *v, struct objstore *os, bool repair, bool verify,
		fsck_report_fn report, void *opaque, struct fsck_counts *counts,
		struct errbuf *eb);

/* One object hashed: its hash, the bytes read, and the file's identity. */
struct fsck_hash {
	uint8_t got[32];
	uint64_t bytes;
	dev_t dev;
	ino_t ino;
	mode_t mode;
};

/*
 * Hashes object sha, streamed through ring reads. pace (may be NULL) is
 * called before each chunk with its length: it may sleep (rate limits),
 * and a nonzero return stops the hashing and is returned. Returns 0 when
 * the bytes hash to the name, 1 when they do not (out->got says to
 * what), or a negative errno (-ENOENT: removed meanwhile).
 */
int fsck_hash_object(const struct store *st, struct ring *ring, const uint8_t sha[32],
		     struct fsck_hash *out, int (*pace)(void *opaque, size_t len), void *opaque);

/*
 * Moves corrupt object sha to quarantine/ (store_object_quarantine) under
 * the catalog lock, provided the file is still the one h hashed, and tags
 * each of its captures FSCK_DAMAGED_TAG (*captures counts them). Safe
 * while the vault imports. Returns 0, FSCK_REMOTE_KEPT (the object was
 * "both": its remote copy is the one recorded now, no capture tagged),
 * -ESTALE (the name now holds another file), -ENOENT, or a negative
 * errno (eb).
 */
#define FSCK_REMOTE_KEPT 1
int fsck_quarantine(struct vault *v, const uint8_t sha[32], const struct fsck_hash *h,
		    uint64_t *captures, struct errbuf *eb);
/* Every capture of object sha tagged FSCK_DAMAGED_TAG (damaged) or not:
 * *captures counts those written. 0 or a negative errno (eb). */
int fsck_tag_damaged(struct vault *v, const uint8_t sha[32], bool damaged, uint64_t *captures,
		     struct errbuf *eb);

/*
 * Backup: a RocksDB checkpoint into dir/index, and every referenced object
 * with a local copy hard-linked (copied across file systems) into
 * dir/objects, so dir is a store itself. An object only in the object
 * store stays there: the checkpoint records its location (and a removal
 * of its last capture in the live store removes it from the bucket). dir must not exist or be empty. v may be in use (the
 * daemon's): the checkpoint and links are made under the catalog lock
 * (catalog_quiesce). Returns 0 or a negative errno (eb).
 */
int backup_create(struct vault *v, const char *dir, uint64_t *objects, struct errbuf *eb);

/* Refuses (-EINVAL, eb) a backup dir that is folder or below it (inodes
 * compared, as backup_create does for the store): capvaultd refuses a
 * backup into one of its import folders, which would import the backup's
 * objects and claim or fail the rest of it. 0 when outside or when folder
 * does not exist. */
int backup_check_outside_folder(const char *dir, const char *folder, const char *what,
				struct errbuf *eb);

/*
 * Restore: copies the store (or backup) at src into dst, which must not
 * exist or be empty: index files copied, objects hard-linked or copied.
 * An object the backup says is remote is looked for in os
 * (objstore_stat): the restored catalog points at it there. Without os,
 * or when the store cannot answer, the restore fails (-ENODEV, or the
 * store's error). One the store no longer holds, or holds at another
 * size (removed after the backup was made, by retention say), does not
 * stop the restore: lost is told of it (capture: one capture of it, 0
 * if none; why: what the store answered), and its captures' records are restored as remote, to be
 * read as lost (502 object_missing) and listed by fsck --remote until
 * removed. Returns 0 or a negative errno (eb).
 */
struct objstore;
typedef void (*backup_lost_fn)(void *opaque, const uint8_t sha[32], uint64_t size,
			       uint64_t capture, const char *why);
int backup_restore(const char *src, const char *dst, struct objstore *os, backup_lost_fn lost,
		   void *opaque, struct errbuf *eb);

#endif
