/*
 * tier.h - moving an object from the local store to the object store, and
 * finishing what a crash left half done (DESIGN.md invariant 7: at every
 * moment the bytes are in at least one verified place the catalog names).
 *
 * The order of one move: objstore_put (which confirms the stored size and
 * SHA-256), the catalog records "both" (synced), then "remote" (synced),
 * and only then, under the catalog lock, the local file goes. A kill at
 * any point leaves either a local object the catalog calls local or both,
 * or a remote one it calls remote or both; a copy in the bucket that the
 * catalog does not name yet is an orphan for fsck --remote.
 *
 * The caller serialises moves and remote removals (the daemon's tier
 * mover runs them one at a time), so a removal of an object no capture
 * references cannot race a put of the same object.
 */
#ifndef CAPVAULT_TIER_H
#define CAPVAULT_TIER_H

#include <stdint.h>

#include "errbuf.h"

struct vault;
struct objstore;

/* Positive outcome of tier_object: the object was remote already. */
#define TIER_ALREADY 1
/* Positive outcome of tier_remove_remote: the remote copy was kept, the
 * object being referenced again and remote again. */
#define TIER_KEPT 2

/* Where a test may kill the process mid-move (CAPVAULT_TIER_KILL=POINT:N:
 * the Nth time POINT is reached): after the put was confirmed, after
 * "both" was recorded, after "remote" was recorded and the local copy
 * removed. */
enum tier_point { TIER_AT_PUT, TIER_AT_BOTH, TIER_AT_REMOTE };

/*
 * Moves object sha to os. Returns 0, TIER_ALREADY, -ENOENT (no capture
 * references it any more), or a negative errno from the store (objstore.h:
 * -ETIMEDOUT, -ECONNREFUSED, -EACCES, -EIO...) or the catalog, with eb.
 * *bytes (may be NULL) gets the bytes put.
 */
int tier_object(struct vault *v, struct objstore *os, const uint8_t sha[32], uint64_t *bytes,
		struct errbuf *eb);

/*
 * Removes the remote copy of sha provided the catalog does not name a
 * remote copy of it (it was imported and tiered again since its last
 * capture went), and then forgets the catalog's pending removal of it
 * (catalog_foreach_remote_removal). Returns 0 (removed), TIER_KEPT, or the
 * store's error (eb; the removal stays pending).
 */
int tier_remove_remote(struct vault *v, struct objstore *os, const uint8_t sha[32],
		       struct errbuf *eb);

/*
 * After a crash or a restart: a "both" object with its local file is
 * passed to fn to be tiered again (the put confirms the copy, then the
 * move finishes); a "both" without it becomes remote once os confirms the
 * copy; a "remote" one with a local file (an import of its bytes that died
 * before saying so) becomes both. Each pending removal of a remote copy
 * (the last capture went, the removal had not succeeded) is passed to
 * remove_fn, to be done by tier_remove_remote. fn and remove_fn may be
 * NULL. Returns 0 or a negative errno (eb); *fixed (may be NULL) counts
 * the records changed.
 */
typedef int (*tier_object_fn)(void *opaque, const uint8_t sha[32], uint64_t size);
typedef int (*tier_remove_fn)(void *opaque, const uint8_t sha[32]);
int tier_resume(struct vault *v, struct objstore *os, tier_object_fn fn, tier_remove_fn remove_fn,
		void *opaque, uint64_t *fixed, struct errbuf *eb);

#endif
