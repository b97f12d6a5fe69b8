/*
 * blockcheck.h - a block of a tiered object, as read back from the object
 * store, against what the catalog recorded of it when it was tiered
 * (blockdig.h): the chaining states around it, or for an object tiered
 * before states were kept, its digest. An object of one block needs
 * neither: its name checks it.
 */
#ifndef CAPVAULT_BLOCKCHECK_H
#define CAPVAULT_BLOCKCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

/* Block number block of object sha (size bytes), its len bytes at buf: 0
 * when it matches, -EBADMSG when not, -ENOENT when nothing is recorded
 * for it, or the catalog's error. */
int blockcheck(struct catalog *cat, const uint8_t sha[32], uint64_t size, uint64_t block,
	       const void *buf, size_t len);

#endif
