/*
 * objread.h - reading a capture's object from its start to its end,
 * wherever the catalog says it is: the local file, or (tiered) the object
 * store through the read-through cache, a bounded buffer at a time.
 *
 * For readers that consume an object in order (annotated downloads,
 * merge, reindex). The tier is decided by vault_object_open; a remote
 * object is checked (size, reachability) when opened, so a caller that
 * has not answered yet can still fail with 503.
 */
#ifndef CAPVAULT_OBJREAD_H
#define CAPVAULT_OBJREAD_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "errbuf.h"

struct objread;
struct vault;

/*
 * Opens object sha (size bytes, of capture id: for messages; 0 names the
 * object instead). Returns 0, -ENOENT when no tier holds it, -EREMOTEIO
 * (eb: "capture N: object store ...: why") when it is remote and the
 * store cannot serve it or no store is set (offline), -ENODATA when the
 * store does not have it and -EBADMSG when it holds another size (lost
 * data, as API callers answer: 502, not 503), or another negative errno.
 */
int objread_open(struct objread **out, struct vault *v, uint64_t id, const uint8_t sha[32],
		 uint64_t size, struct errbuf *eb);
/* The next bytes: > 0, 0 at the end, or a negative errno (-EREMOTEIO
 * with eb when the object store failed part-way; -ENODATA when it lost
 * the object meanwhile; -EBADMSG when a block read does not match its
 * digest or, instead of the end, the bytes read of a remote object do
 * not hash to its name: then the cache forgets what it holds of it).
 * Read from the start, in order: the check covers every byte. */
ssize_t objread_read(struct objread *r, void *buf, size_t len, struct errbuf *eb);
/* Accepts NULL; returns NULL. */
struct objread *objread_free(struct objread *r);

/* Whether err is one of the object store's answers above (eb says it). */
static inline bool objread_store_error(int err)
{
	return err == -EREMOTEIO || err == -ENODATA || err == -EBADMSG;
}

#endif
