#include "objread.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "objcache.h"
#include "objstore.h"
#include "store.h"
#include "vault.h"

/* A remote object is fetched this much at a time, as OBJREAD_PARTS
 * ranges in one objstore_read_ranges call (so the backend may keep them
 * in flight together); merge holds one buffer per input. */
#define OBJREAD_AHEAD (1u << 20)
#define OBJREAD_PARTS 4

struct objread {
	struct vault *v;
	uint64_t size;
	char label[80]; /* "capture N", or "object <sha256>" */
	uint8_t sha[32];
	int fd;        /* the local copy, or -1 */
	bool cached;   /* remote, but the cache holds it whole */
	uint64_t pos;  /* remote: next offset to fetch */
	char *buf;     /* remote: fetched, not yet read */
	size_t head, used;
	EVP_MD_CTX *md; /* remote: of every byte fetched, checked at the end */
	bool checked;
};

/* -EREMOTEIO with a message naming the capture and the store (once:
 * the backend's own message may start with it). A missing object (the
 * store's 404) says so, and what to run: that is lost data, not a store
 * to wait for. */
static int remote_error(struct objread *r, int err, struct errbuf *why, struct errbuf *eb)
{
	struct objstore *os = vault_objstore(r->v);
	if (err == -ENOENT)
		return errbuf_set(eb, -ENODATA,
				  "%s: object store %s does not have its object (%s); run "
				  "capvault fsck --remote",
				  r->label, objstore_describe(os), objstore_reason(os, why, err));
	return errbuf_set(eb, err == -EBADMSG ? -EBADMSG : -EREMOTEIO, "%s: object store %s: %s",
			  r->label, objstore_describe(os), objstore_reason(os, why, err));
}

/* At the end of a remote object: every byte read must hash to its name
 * (readers consume it in order, from its start), else -EREMOTEIO, and
 * the cache forgets what it holds of it (the bad bytes may be its). */
static int remote_verify(struct objread *r, struct errbuf *eb)
{
	uint8_t got[32];
	unsigned n = 0;
	char hex[65];

	r->checked = true;
	if (!EVP_DigestFinal_ex(r->md, got, &n) || n != 32)
		return -ENOMEM;
	if (memcmp(got, r->sha, 32) == 0)
		return 0;
	objcache_forget(vault_objcache(r->v), r->sha);
	sha256_hex(r->sha, hex);
	return errbuf_set(eb, r->cached ? -EREMOTEIO : -EBADMSG,
			  "%s: object store %s: its bytes%s do not hash to its SHA-256 %s; %s",
			  r->label, objstore_describe(vault_objstore(r->v)),
			  r->cached ? " (from the read-through cache)" : "", hex,
			  r->cached ? "the cached copy was dropped, try again" :
				      "the object in the store is corrupt or was replaced, run "
				      "capvault fsck --remote --verify");
}

/* The store answers for the object now, with its size: a caller that
 * has not sent its status yet can still answer 503. */
static int remote_check(struct objread *r, struct errbuf *eb)
{
	struct errbuf why = { { 0 } };
	uint64_t size = 0;
	if ((r->cached = objcache_has_object(vault_objcache(r->v), r->sha)))
		return 0;
	int err = objstore_stat(vault_objstore(r->v), r->sha, &size, &why);
	if (err == 0 && size != r->size) /* another object under its name: not it */
		err = errbuf_set(&why, -EBADMSG, "holds %" PRIu64 " bytes, not %" PRIu64, size,
				 r->size);
	return err ? remote_error(r, err, &why, eb) : 0;
}

int objread_open(struct objread **out, struct vault *v, uint64_t id, const uint8_t sha[32],
		 uint64_t size, struct errbuf *eb)
{
	struct objread *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*r = (struct objread){ .v = v, .size = size, .fd = -1 };
	memcpy(r->sha, sha, 32);
	if (id) {
		snprintf(r->label, sizeof(r->label), "capture %" PRIu64, id);
	} else {
		char hex[65];
		sha256_hex(sha, hex);
		snprintf(r->label, sizeof(r->label), "object %s", hex);
	}
	int err = vault_object_open(v, sha, &r->fd);
	if (err == -EREMOTEIO)
		err = errbuf_set(eb, -EREMOTEIO,
				 "%s: its object is in the object store, which only capvaultd "
				 "reads", r->label);
	else if (err == -ENOENT)
		err = errbuf_set(eb, -ENOENT, "%s: object missing", r->label);
	else if (err < 0)
		err = errbuf_set(eb, err, "%s: object: %s", r->label, strerror(-err));
	else if (err == VAULT_OBJECT_REMOTE)
		err = (r->buf = malloc(OBJREAD_AHEAD)) && (r->md = EVP_MD_CTX_new()) &&
				      EVP_DigestInit_ex(r->md, EVP_sha256(), NULL) ?
			      remote_check(r, eb) :
			      -ENOMEM;
	if (err) {
		objread_free(r);
		return err;
	}
	*out = r;
	return 0;
}

/* Fetches the next OBJREAD_AHEAD bytes (fewer at the end). */
static int remote_fill(struct objread *r, struct errbuf *eb)
{
	struct objstore_range rg[OBJREAD_PARTS];
	struct errbuf why = { { 0 } };
	uint64_t left = r->size - r->pos;
	size_t n = 0, total = 0;
	while (n < OBJREAD_PARTS && left > 0) {
		uint32_t len = OBJREAD_AHEAD / OBJREAD_PARTS;
		len = left < len ? (uint32_t)left : len;
		rg[n++] = (struct objstore_range){ .offset = r->pos + total, .len = len,
						   .buf = r->buf + total };
		total += len;
		left -= len;
	}
	/* Through the cache, whose fetched blocks are checked against their
	 * digests before any reader sees them; not cached, so that reading a
	 * whole object does not flush what queries use. */
	struct objcache *cache = vault_objcache(r->v);
	int err = cache ? objcache_read_through(cache, vault_objstore(r->v), r->sha, r->size, rg,
						n, &why)
			: objstore_read_ranges(vault_objstore(r->v), r->sha, rg, n, &why);
	if (err)
		return remote_error(r, err, &why, eb);
	if (!EVP_DigestUpdate(r->md, r->buf, total))
		return -ENOMEM;
	r->pos += total;
	r->head = 0;
	r->used = total;
	return 0;
}

ssize_t objread_read(struct objread *r, void *buf, size_t len, struct errbuf *eb)
{
	if (r->fd >= 0) {
		ssize_t n = read(r->fd, buf, len);
		int e = errno;
		return n < 0 ? errbuf_set(eb, -e, "%s: read: %s", r->label, strerror(e)) : n;
	}
	if (r->used == 0 && r->pos < r->size) {
		int err = remote_fill(r, eb);
		if (err)
			return err;
	}
	if (r->used == 0 && !r->checked) {
		int err = remote_verify(r, eb);
		if (err)
			return err;
	}
	size_t n = len < r->used ? len : r->used;
	memcpy(buf, r->buf + r->head, n);
	r->head += n;
	r->used -= n;
	return (ssize_t)n;
}

struct objread *objread_free(struct objread *r)
{
	if (!r)
		return NULL;
	if (r->fd >= 0)
		close(r->fd);
	EVP_MD_CTX_free(r->md);
	free(r->buf);
	free(r);
	return NULL;
}
