/*
 * blockdig.c - see blockdig.h.
 */
/* The chaining states need SHA256_CTX's words, which only OpenSSL's
 * low-level SHA-256 calls (deprecated in 3.0, kept through 3.x) give;
 * they run the same assembly as EVP's. */
#define OPENSSL_API_COMPAT 10101

#include "blockdig.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

int blockdig_of(const void *buf, size_t len, uint8_t out[OBJCACHE_DIGEST])
{
	uint8_t sha[32];
	unsigned n = 0;

	if (!EVP_Digest(buf, len, sha, &n, EVP_sha256(), NULL) || n != 32)
		return -ENOMEM;
	memcpy(out, sha, OBJCACHE_DIGEST);
	return 0;
}

struct blockchain {
	SHA256_CTX ctx;
	uint64_t in_block;   /* bytes of the block being read so far */
	uint64_t next_block; /* its number */
	size_t per_emit, n;  /* states waiting in out */
	blockdig_emit_fn emit;
	void *opaque;
	uint8_t out[];
};

static void state_get(const SHA256_CTX *ctx, uint8_t out[BLOCKDIG_STATE])
{
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(ctx->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(ctx->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(ctx->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)ctx->h[i];
	}
}

/* ctx as it was after hashing offset bytes (a multiple of 64) that left
 * it in state: the bit count goes into the last block's padding. */
static void state_set(SHA256_CTX *ctx, const uint8_t state[BLOCKDIG_STATE], uint64_t offset)
{
	SHA256_Init(ctx);
	for (int i = 0; i < 8; i++)
		ctx->h[i] = (SHA_LONG)state[4 * i] << 24 | (SHA_LONG)state[4 * i + 1] << 16 |
			    (SHA_LONG)state[4 * i + 2] << 8 | state[4 * i + 3];
	ctx->Nl = (SHA_LONG)(offset << 3);
	ctx->Nh = (SHA_LONG)(offset >> 29);
}

int blockchain_new(struct blockchain **out, size_t per_emit, blockdig_emit_fn emit,
		   void *opaque)
{
	struct blockchain *c;

	*out = NULL;
	if (per_emit == 0 || per_emit > SIZE_MAX / BLOCKDIG_STATE / 2)
		return -EINVAL;
	c = calloc(1, sizeof(*c) + (emit ? per_emit * BLOCKDIG_STATE : 0));
	if (!c)
		return -ENOMEM;
	if (!SHA256_Init(&c->ctx)) {
		free(c);
		return -ENOMEM;
	}
	c->per_emit = per_emit;
	c->emit = emit;
	c->opaque = opaque;
	*out = c;
	return 0;
}

static int chain_emit_waiting(struct blockchain *c)
{
	int r = c->n ? c->emit(c->opaque, c->next_block - c->n, c->out, c->n) : 0;

	c->n = 0;
	return r;
}

int blockchain_update(struct blockchain *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		size_t take = OBJCACHE_BLOCK - c->in_block;
		take = take < len ? take : len;
		if (!SHA256_Update(&c->ctx, p, take))
			return -ENOMEM;
		c->in_block += take;
		p += take;
		len -= take;
		if (c->in_block < OBJCACHE_BLOCK)
			continue;
		c->in_block = 0;
		c->next_block++;
		if (!c->emit)
			continue;
		state_get(&c->ctx, c->out + c->n++ * BLOCKDIG_STATE);
		int r = c->n == c->per_emit ? chain_emit_waiting(c) : 0;
		if (r)
			return r;
	}
	return 0;
}

int blockchain_finish(struct blockchain *c, uint8_t whole[32])
{
	int r = c->emit ? chain_emit_waiting(c) : 0;

	if (r == 0 && !SHA256_Final(whole, &c->ctx))
		r = -ENOMEM;
	return r;
}

struct blockchain *blockchain_free(struct blockchain *c)
{
	if (c) {
		OPENSSL_cleanse(&c->ctx, sizeof(c->ctx));
		free(c);
	}
	return NULL;
}

int blockchain_check(const uint8_t *before, const uint8_t *after, const uint8_t name[32],
		     uint64_t block, uint64_t size, const void *buf, size_t len)
{
	uint64_t offset = block * OBJCACHE_BLOCK, blocks = (size + OBJCACHE_BLOCK - 1) / OBJCACHE_BLOCK;
	bool last = block + 1 == blocks;
	uint8_t got[32];
	SHA256_CTX ctx;

	if (block >= blocks || (block > 0) != (before != NULL) || (!last && !after))
		return -EINVAL;
	if (len != (last ? size - offset : OBJCACHE_BLOCK))
		return -EBADMSG;
	if (before)
		state_set(&ctx, before, offset);
	else
		SHA256_Init(&ctx);
	SHA256_Update(&ctx, buf, len);
	if (last)
		SHA256_Final(got, &ctx);
	else
		state_get(&ctx, got);
	return memcmp(got, last ? name : after, 32) == 0 ? 0 : -EBADMSG;
}
