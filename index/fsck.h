/*
 * fsck.h - checking a store, and repairing what can be repaired safely
 * (git's builtin/fsck.c is the model: keep going after each problem and
 * report them all).
 *
 * Open the vault with VAULT_NO_CLEANUP so the leftovers that opening
 * would silently remove are reported too.
 *
 * Checks: every object file's SHA-256 (streamed through ring reads, never
 * read whole) against its name; every capture's object present with the
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
 * name. A corrupt object (hash mismatch) is reported but not touched: its
 * bytes may still be what someone needs.
 */
#ifndef CAPVAULT_FSCK_H
#define CAPVAULT_FSCK_H

#include <stdbool.h>
#include <stdint.h>

#include "errbuf.h"

struct vault;
struct ring;

/* One problem: text names the capture id, hash or path; repaired says
 * whether --repair fixed it. */
typedef void (*fsck_report_fn)(void *opaque, const char *text, bool repaired);

struct fsck_counts {
	uint64_t objects, captures;   /* looked at */
	uint64_t bytes_hashed;
	uint64_t problems, repaired;
};

/*
 * Checks (and with repair, repairs) the vault. Returns 0 when the checks
 * ran (problems or not: see counts), or a negative errno when they could
 * not (eb).
 */
int fsck_run(struct vault *v, struct ring *ring, bool repair, fsck_report_fn report,
	     void *opaque, struct fsck_counts *counts, struct errbuf *eb);

/*
 * Backup: a RocksDB checkpoint into dir/index, and every referenced object
 * hard-linked (copied across file systems) into dir/objects, so dir is a
 * store itself. dir must not exist or be empty. v may be in use (the
 * daemon's): the checkpoint and links are made under the catalog lock
 * (catalog_quiesce). Returns 0 or a negative errno (eb).
 */
int backup_create(struct vault *v, const char *dir, uint64_t *objects, struct errbuf *eb);

/*
 * Restore: copies the store (or backup) at src into dst, which must not
 * exist or be empty: index files copied, objects hard-linked or copied.
 * Returns 0 or a negative errno (eb).
 */
int backup_restore(const char *src, const char *dst, struct errbuf *eb);

#endif
