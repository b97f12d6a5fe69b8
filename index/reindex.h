/*
 * reindex.h - rebuilding the packet index of one stored object from its
 * bytes: the import pass is run again over the object file (or, for a
 * tiered object, its bytes from the object store) with a sink
 * that only builds the index (flows, tindex, contexts, postings) under the
 * object's number and commits it. Used by fsck --repair for an object
 * whose index is missing or damaged.
 */
#ifndef CAPVAULT_REINDEX_H
#define CAPVAULT_REINDEX_H

#include <stdint.h>

#include "errbuf.h"

struct vault;
struct ring;

/*
 * Deletes what is left of objnum's index, then rebuilds it from the object
 * sha and commits it (synced). *packets (may be NULL) gets the packets
 * indexed. Returns 0, or a negative errno (eb); on failure no partial
 * index of objnum is left. A tiered object is read through the vault's
 * object store and cache; when they cannot serve it (-EREMOTEIO, also
 * when none is set; -ENODATA or -EBADMSG when the store lost the object
 * or holds another: objread_store_error) the index is left as it was.
 */
int reindex_object(struct vault *v, struct ring *ring, const uint8_t sha[32], uint64_t objnum,
		   uint64_t *packets, struct errbuf *eb);

#endif
