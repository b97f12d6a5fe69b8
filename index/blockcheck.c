/*
 * blockcheck.c - see blockcheck.h.
 */
#include "blockcheck.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "blockdig.h"

/* The states around block into before and after (those it has: none
 * for block 0's before or the last block's after): 0, or -ENOENT when
 * the object has none (it was tiered with digests), or the catalog's
 * error. */
static int states_around(struct catalog *cat, const uint8_t sha[32], uint64_t block, bool last,
			 uint8_t around[2 * BLOCKDIG_STATE])
{
	if (block == 0)
		return last ? 0 : catalog_block_states(cat, sha, 0, 1, around + BLOCKDIG_STATE);
	return catalog_block_states(cat, sha, block - 1, last ? 1 : 2, around);
}

int blockcheck(struct catalog *cat, const uint8_t sha[32], uint64_t size, uint64_t block,
	       const void *buf, size_t len)
{
	uint64_t blocks = size / OBJCACHE_BLOCK + (size % OBJCACHE_BLOCK != 0);
	uint8_t around[2 * BLOCKDIG_STATE];
	uint8_t want[OBJCACHE_DIGEST], got[OBJCACHE_DIGEST];

	if (block >= blocks)
		return -EBADMSG;
	bool last = block + 1 == blocks;
	int r = states_around(cat, sha, block, last, around);
	if (r == 0)
		return blockchain_check(block ? around : NULL, last ? NULL : around + BLOCKDIG_STATE,
					sha, block, size, buf, len);
	if (r != -ENOENT)
		return r;
	r = catalog_block_digest(cat, sha, block, want);
	if (r == 0)
		r = blockdig_of(buf, len, got);
	return r == 0 && memcmp(want, got, sizeof(got)) != 0 ? -EBADMSG : r;
}
