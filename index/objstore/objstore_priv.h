/*
 * objstore_priv.h - what a backend of objstore.h provides: a table of
 * operations, and its state after the common header.
 */
#ifndef CAPVAULT_OBJSTORE_PRIV_H
#define CAPVAULT_OBJSTORE_PRIV_H

#include <stdatomic.h>

#include "objstore.h"

struct objstore_ops {
	void (*destroy)(struct objstore *os);
	int (*put)(struct objstore *os, const uint8_t sha[32], int fd, uint64_t size,
		   struct errbuf *eb);
	int (*stat)(struct objstore *os, const uint8_t sha[32], uint64_t *size, struct errbuf *eb);
	int (*verify)(struct objstore *os, const uint8_t sha[32], struct errbuf *eb);
	int (*remove)(struct objstore *os, const uint8_t sha[32], struct errbuf *eb);
	int (*list)(struct objstore *os, objstore_list_fn fn, void *opaque, struct errbuf *eb);
	int (*read_ranges)(struct objstore *os, const uint8_t sha[32], struct objstore_range *r,
			   size_t n, struct errbuf *eb);
	int (*read_stream)(struct objstore *os, const uint8_t sha[32], uint64_t offset,
			   uint64_t len, objstore_data_fn fn, void *opaque, struct errbuf *eb);
	/* The owner key's value: into buf (0), -ENOENT when there is none,
	 * or an error; and writing value as it is, len bytes, only when the
	 * key is absent: -EEXIST (or 0, where the store cannot tell) when
	 * another write got there first, which the read back then shows. */
	int (*owner_get)(struct objstore *os, char *buf, size_t len, struct errbuf *eb);
	int (*owner_put)(struct objstore *os, const char *value, size_t len, struct errbuf *eb);
};

/* The first member of every backend's state. */
struct objstore {
	const struct objstore_ops *ops;
	char description[256];
	char owner[OBJSTORE_OWNER_MAX]; /* "" until objstore_set_owner */
	atomic_bool claimed;            /* the owner key names owner */
};

#endif
