/*
 * blockdig.c - see blockdig.h.
 */
#include "blockdig.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

struct blockdig {
	EVP_MD_CTX *md;       /* the block being read */
	EVP_MD_CTX *whole;    /* the stream; NULL when not asked for */
	uint64_t in_block;    /* its bytes so far */
	uint64_t next_block;  /* its number */
	size_t per_emit, n;   /* digests waiting in out */
	blockdig_emit_fn emit;
	void *opaque;
	uint8_t out[];
};

int blockdig_of(const void *buf, size_t len, uint8_t out[OBJCACHE_DIGEST])
{
	uint8_t sha[32];
	unsigned n = 0;

	if (!EVP_Digest(buf, len, sha, &n, EVP_sha256(), NULL) || n != 32)
		return -ENOMEM;
	memcpy(out, sha, OBJCACHE_DIGEST);
	return 0;
}

int blockdig_new(struct blockdig **out, size_t per_emit, bool whole, blockdig_emit_fn emit,
		 void *opaque)
{
	struct blockdig *d;

	*out = NULL;
	if (per_emit == 0 || per_emit > SIZE_MAX / OBJCACHE_DIGEST / 2)
		return -EINVAL;
	d = calloc(1, sizeof(*d) + per_emit * OBJCACHE_DIGEST);
	if (!d)
		return -ENOMEM;
	d->md = EVP_MD_CTX_new();
	d->whole = whole ? EVP_MD_CTX_new() : NULL;
	if (!d->md || (whole && !d->whole) || !EVP_DigestInit_ex(d->md, EVP_sha256(), NULL) ||
	    (whole && !EVP_DigestInit_ex(d->whole, EVP_sha256(), NULL))) {
		blockdig_free(d);
		return -ENOMEM;
	}
	d->per_emit = per_emit;
	d->emit = emit;
	d->opaque = opaque;
	*out = d;
	return 0;
}

static int emit_waiting(struct blockdig *d)
{
	int r = d->n ? d->emit(d->opaque, d->next_block - d->n, d->out, d->n) : 0;

	d->n = 0;
	return r;
}

/* Ends the block being read: its digest joins those waiting. */
static int end_block(struct blockdig *d)
{
	uint8_t sha[32];
	unsigned len = 0;

	if (!EVP_DigestFinal_ex(d->md, sha, &len) || len != 32 ||
	    !EVP_DigestInit_ex(d->md, EVP_sha256(), NULL))
		return -ENOMEM;
	memcpy(d->out + d->n++ * OBJCACHE_DIGEST, sha, OBJCACHE_DIGEST);
	d->next_block++;
	d->in_block = 0;
	return d->n == d->per_emit ? emit_waiting(d) : 0;
}

int blockdig_update(struct blockdig *d, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		size_t take = OBJCACHE_BLOCK - d->in_block;
		take = take < len ? take : len;
		if (!EVP_DigestUpdate(d->md, p, take) ||
		    (d->whole && !EVP_DigestUpdate(d->whole, p, take)))
			return -ENOMEM;
		d->in_block += take;
		p += take;
		len -= take;
		int r = d->in_block == OBJCACHE_BLOCK ? end_block(d) : 0;
		if (r)
			return r;
	}
	return 0;
}

int blockdig_finish(struct blockdig *d, uint8_t whole[32])
{
	unsigned len = 0;
	int r = d->in_block ? end_block(d) : 0;

	if (r == 0)
		r = emit_waiting(d);
	if (r == 0 && d->whole && (!EVP_DigestFinal_ex(d->whole, whole, &len) || len != 32))
		r = -ENOMEM;
	return r;
}

struct blockdig *blockdig_free(struct blockdig *d)
{
	if (d) {
		EVP_MD_CTX_free(d->md);
		EVP_MD_CTX_free(d->whole);
		free(d);
	}
	return NULL;
}
