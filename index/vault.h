/*
 * vault.h - an open capvault store: the object store, the RocksDB catalog
 * and the packet index under one root folder, and the import sink that
 * writes into them.
 *
 * Opening a vault also restores the invariants after a crash: the temp
 * files of writes that died are removed from tmp/ (nothing else there is
 * touched) and objects that no capture references are unlinked (an import
 * that died between publishing its object and committing its catalog
 * batch). Opening never creates a store unless asked (VAULT_CREATE).
 */
#ifndef CAPVAULT_VAULT_H
#define CAPVAULT_VAULT_H

#include "catalog.h"
#include "errbuf.h"
#include "sink.h"
#include "store.h"

struct vault;

/*
 * Opens the store at root: a folder whose marker (storemark.h) says it is
 * a complete store, or a store made before markers existed (objects/ and
 * our RocksDB in index/), which is then marked. Anything else is refused
 * and left untouched: -ENOENT "not a capvault store ... `capvault init`"
 * (a missing or empty folder too), -EINVAL for an interrupted creation,
 * backup or restore, -EBUSY when another process has the store.
 */
int vault_open(struct vault **out, const char *root, struct errbuf *eb);
/* VAULT_NO_CLEANUP: leave tmp/ leftovers, unreferenced objects and
 * uncommitted index entries alone (fsck reports them itself).
 * VAULT_CREATE: also create the store when root is missing (its parent
 * must exist), an empty folder, or a creation that was interrupted; a
 * folder holding anything else is refused with -ENOTEMPTY. */
#define VAULT_NO_CLEANUP 1u
#define VAULT_CREATE 2u
int vault_open_flags(struct vault **out, const char *root, unsigned flags, struct errbuf *eb);
/* vault_open_flags, where root also counts as empty for VAULT_CREATE
 * when it holds the folders named in allowed (NULL-terminated): capvaultd's
 * import folders inside its store (/var/lib/capvault/autoimport). */
int vault_open_create(struct vault **out, const char *root, unsigned flags,
		      const char *const *allowed, struct errbuf *eb);
/* Positive outcome of vault_create: root was a store already. */
#define VAULT_EXISTS 1
/* `capvault init`: creates the store at root (as VAULT_CREATE) and
 * closes it. Returns 0, VAULT_EXISTS (a store already; one made before
 * markers is marked) or a negative errno (eb). A marked store is not
 * opened, so this answers even while capvaultd has it. */
int vault_create(const char *root, struct errbuf *eb);
struct vault *vault_close(struct vault *v);

struct objstore;
/* The object store of tiered objects (not owned; NULL: none configured).
 * Set once, before the vault is shared between threads. */
void vault_set_objstore(struct vault *v, struct objstore *os);
struct objstore *vault_objstore(struct vault *v);
/* When a capture removal drops the last reference of a remote object, fn
 * (called under the catalog lock: it must only queue) is told to remove
 * the remote copy; without fn it is removed at once. Set before sharing. */
void vault_set_remote_release(struct vault *v, int (*fn)(void *opaque, const uint8_t sha[32]),
			      void *opaque);

struct catalog *vault_catalog(struct vault *v);
struct store *vault_store(struct vault *v);
struct db *vault_db(struct vault *v);

/*
 * The object tier's read side: the cache of remote objects' bytes
 * (objcache.h), which readers of remote objects use with vault_objstore.
 * Not owned (freed by the caller after vault_close); NULL: remote objects
 * cannot be read. Set before the vault is shared between threads.
 */
struct objcache;
void vault_set_objcache(struct vault *v, struct objcache *cache);
struct objcache *vault_objcache(struct vault *v);

/* Positive outcome of vault_object_open: read the object remotely. */
#define VAULT_OBJECT_REMOTE 1
/*
 * Where to read object sha from: 0 with *fd its local copy, open
 * read-only (preferred when both tiers hold it); VAULT_OBJECT_REMOTE with
 * *fd -1 when only the object store has it (read it through
 * vault_objcache / vault_objstore); -ENOENT when neither; -EREMOTEIO
 * when only the object store has it and no store or cache is set;
 * another negative errno when the local copy cannot be opened. The
 * catalog's location decides (a "both" whose file is missing is read
 * remotely).
 */
int vault_object_open(struct vault *v, const uint8_t sha[32], int *fd);

/* Sets the min_free floor (bytes, or percent of the store's file system;
 * 0 and 0: none). While the store is below it, a new import is refused
 * at its start with -ENOSPC "store below min_free (X free < Y): import
 * refused". Safe to call while imports run. */
void vault_set_min_free(struct vault *v, uint64_t min_free_bytes, unsigned min_free_percent);

/* Sets retention's max_total_size (0: none), which no one capture may
 * exceed. Safe to call while imports run.
 *
 * An import that cannot be kept fails with -EFBIG, saying why, before
 * retention deletes anything for it: a capture larger than
 * max_total_size, or one needing more room than the store's file system
 * would have with every local capture pruned and the read-through cache
 * emptied, less min_free. A plain file is measured at its start, a
 * stream of known length (an upload's Content-Length, a tar member's
 * header) before its first byte (vault_expect); another stream as its
 * bytes come. */
void vault_set_max_total_size(struct vault *v, uint64_t max_total_size);

/* Sets retention's protect_tag (NULL or "": none): the local bytes of
 * the captures it tags are no room retention can make for an import.
 * Safe to call while imports run. Returns 0 or -ENOMEM. */
int vault_set_protect_tag(struct vault *v, const char *tag);

/* An import that fits only once the oldest captures are pruned fails
 * with -ENOSPC and asks for its room here: the bytes wanted beyond
 * min_free (the largest asked since the last take), for retention to
 * prune for before the import is retried. take: read and reset. */
uint64_t vault_room_wanted(struct vault *v, bool take);

/* Deletes capture id: catalog batch first (synced), then the object file
 * when no capture uses it any more. Returns 0, -ENOENT or a negative
 * errno (eb). *freed (may be NULL) gets the bytes of an unlinked object. */
int vault_remove(struct vault *v, uint64_t id, uint64_t *freed, struct errbuf *eb);

/* The sink ops; pass the vault as the sink argument. Safe to use from
 * several threads at once, each with its own ring. */
extern const struct import_sink_ops vault_sink_ops;

#endif
