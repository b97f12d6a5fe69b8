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
struct vault *vault_close(struct vault *v);

struct catalog *vault_catalog(struct vault *v);
struct store *vault_store(struct vault *v);
struct db *vault_db(struct vault *v);

/* The sink ops; pass the vault as the sink argument. Safe to use from
 * several threads at once, each with its own ring. */
extern const struct import_sink_ops vault_sink_ops;

#endif
