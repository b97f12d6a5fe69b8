/*
 * vault.h - an open capvault store: the object store, the RocksDB catalog
 * and the packet index under one root folder, and the import sink that
 * writes into them.
 *
 * Opening a vault also restores the invariants after a crash: tmp/
 * leftovers are removed and objects that no capture references are
 * unlinked (an import that died between publishing its object and
 * committing its catalog batch).
 */
#ifndef CAPVAULT_VAULT_H
#define CAPVAULT_VAULT_H

#include "catalog.h"
#include "errbuf.h"
#include "sink.h"
#include "store.h"

struct vault;

/* Opens (creating) the store at root. -EBUSY when another process has it. */
int vault_open(struct vault **out, const char *root, struct errbuf *eb);
/* VAULT_NO_CLEANUP: leave tmp/ leftovers, unreferenced objects and
 * uncommitted index entries alone (fsck reports them itself). */
#define VAULT_NO_CLEANUP 1u
int vault_open_flags(struct vault **out, const char *root, unsigned flags, struct errbuf *eb);
struct vault *vault_close(struct vault *v);

struct catalog *vault_catalog(struct vault *v);
struct store *vault_store(struct vault *v);
struct db *vault_db(struct vault *v);

/* Sets the min_free floor (bytes, or percent of the store's file system;
 * 0 and 0: none). While the store is below it, a new import is refused
 * at its start with -ENOSPC "store below min_free (X free < Y): import
 * refused". Safe to call while imports run. */
void vault_set_min_free(struct vault *v, uint64_t min_free_bytes, unsigned min_free_percent);

/* Deletes capture id: catalog batch first (synced), then the object file
 * when no capture uses it any more. Returns 0, -ENOENT or a negative
 * errno (eb). *freed (may be NULL) gets the bytes of an unlinked object. */
int vault_remove(struct vault *v, uint64_t id, uint64_t *freed, struct errbuf *eb);

/* The sink ops; pass the vault as the sink argument. Safe to use from
 * several threads at once, each with its own ring. */
extern const struct import_sink_ops vault_sink_ops;

#endif
