/*
 * objstore_mem.c - see objstore_mem.h.
 */
#include "objstore_mem.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockdig.h"
#include "objstore_priv.h"
#include "store.h"

#define MEM_MAX 256

struct mem_obj {
	uint8_t sha[32];
	bool stray;
	char key[128];
	unsigned char *buf;
	size_t len;
};

struct mem {
	struct objstore base;
	struct mem_obj v[MEM_MAX];
	unsigned n;
	unsigned fail_puts, fail_removes, fail_stats;
	int fail_err;
	void (*on_put)(void *opaque);
	void *on_put_opaque;
	uint64_t chain_above; /* puts of more bytes hand states out; 0: none */
};

static struct mem_obj *find(struct mem *m, const uint8_t *sha)
{
	for (unsigned i = 0; i < m->n; i++)
		if (!m->v[i].stray && memcmp(m->v[i].sha, sha, 32) == 0)
			return &m->v[i];
	return NULL;
}

static struct mem_obj *add(struct mem *m, const uint8_t *sha, const char *key)
{
	struct mem_obj *o = sha ? find(m, sha) : NULL;
	if (!o && m->n < MEM_MAX) {
		o = &m->v[m->n++];
		*o = (struct mem_obj){ .stray = !sha };
		if (sha)
			memcpy(o->sha, sha, 32);
		snprintf(o->key, sizeof(o->key), "%s", key ? key : "");
	}
	return o;
}

static void mem_destroy(struct objstore *os)
{
	struct mem *m = (struct mem *)os;
	for (unsigned i = 0; i < m->n; i++)
		free(m->v[i].buf);
	objstore_base_fini(os);
	free(m);
}

static bool hashes_to(const struct mem_obj *o, const uint8_t sha[32])
{
	uint8_t got[32];
	SHA256(o->buf, o->len, got);
	return memcmp(got, sha, 32) == 0;
}

static int mem_put(struct objstore *os, const uint8_t sha[32], int fd, uint64_t size,
		   struct errbuf *eb)
{
	struct mem *m = (struct mem *)os;
	if (m->on_put)
		m->on_put(m->on_put_opaque);
	if (m->fail_puts) {
		m->fail_puts--;
		return errbuf_set(eb, m->fail_err, "mem: put refused (%s)", strerror(m->fail_err));
	}
	/* As objstore.h says: one stored whole and sound is left alone. */
	struct mem_obj *have = find(m, sha);
	if (have && have->len == size && hashes_to(have, sha))
		return 0;
	unsigned char *buf = malloc(size ? size : 1);
	if (!buf || pread(fd, buf, size, 0) != (ssize_t)size) {
		free(buf);
		return errbuf_set(eb, -EIO, "mem: short read");
	}
	struct mem_obj *o = add(m, sha, NULL);
	if (!o) {
		free(buf);
		return -ENOSPC;
	}
	free(o->buf);
	o->buf = buf;
	o->len = size;
	return hashes_to(o, sha) ? 0 : errbuf_set(eb, -EIO, "mem: does not hash to its name");
}

/* As S3's multipart upload: the put's hash of the bytes it stores hands
 * out its chaining states (objstore_put_chained). */
static int mem_put_chained(struct objstore *os, const uint8_t sha[32], int fd, uint64_t size,
			   struct objstore_states *states, struct errbuf *eb)
{
	struct mem *m = (struct mem *)os;
	struct mem_obj *had = find(m, sha);
	bool fresh = !had || had->len != size || !hashes_to(had, sha);
	int r = mem_put(os, sha, fd, size, eb);

	if (r < 0 || !fresh || !m->chain_above || size <= m->chain_above)
		return r;
	struct mem_obj *o = find(m, sha);
	struct blockchain *c = NULL;
	uint8_t whole[32];
	r = blockchain_new(&c, states->per_emit, states->emit, states->opaque);
	if (r == 0)
		r = blockchain_update(c, o->buf, o->len);
	if (r == 0)
		r = blockchain_finish(c, whole);
	blockchain_free(c);
	if (r < 0)
		return errbuf_set(eb, r, "mem: states: %s", strerror(-r));
	states->complete = memcmp(whole, sha, 32) == 0;
	return 0;
}

static bool mem_put_chains(struct objstore *os, uint64_t size)
{
	struct mem *m = (struct mem *)os;

	return m->chain_above && size > m->chain_above;
}

void objstore_mem_chain_above(struct objstore *os, uint64_t size)
{
	((struct mem *)os)->chain_above = size;
}

static int mem_stat(struct objstore *os, const uint8_t sha[32], uint64_t *size,
		    struct errbuf *eb)
{
	struct mem *m = (struct mem *)os;
	struct mem_obj *o = find(m, sha);
	if (m->fail_stats) {
		m->fail_stats--;
		return errbuf_set(eb, m->fail_err, "mem: stat refused (%s)", strerror(m->fail_err));
	}
	if (!o)
		return errbuf_set(eb, -ENOENT, "mem: no such object");
	*size = o->len;
	return 0;
}

static int mem_verify(struct objstore *os, const uint8_t sha[32], struct errbuf *eb)
{
	struct mem_obj *o = find((struct mem *)os, sha);
	if (!o)
		return errbuf_set(eb, -ENOENT, "mem: no such object");
	return hashes_to(o, sha) ? 0 : errbuf_set(eb, -EIO, "mem: does not hash to its name");
}

static int mem_remove(struct objstore *os, const uint8_t sha[32], struct errbuf *eb)
{
	struct mem *m = (struct mem *)os;
	struct mem_obj *o = find(m, sha);
	if (m->fail_removes) {
		m->fail_removes--;
		return errbuf_set(eb, m->fail_err, "mem: remove refused (%s)",
				  strerror(m->fail_err));
	}
	if (o) {
		free(o->buf);
		*o = m->v[--m->n];
	}
	return 0;
}

static int mem_list(struct objstore *os, objstore_list_fn fn, void *opaque, struct errbuf *eb)
{
	struct mem *m = (struct mem *)os;
	(void)eb;
	for (unsigned i = 0; i < m->n; i++) {
		char key[128], hex[65];
		if (!m->v[i].stray) {
			sha256_hex(m->v[i].sha, hex);
			snprintf(key, sizeof(key), "objects/%.2s/%s", hex, hex);
		}
		int r = fn(opaque, m->v[i].stray ? NULL : m->v[i].sha,
			   m->v[i].stray ? m->v[i].key : key, m->v[i].len);
		if (r)
			return r;
	}
	return 0;
}

static int mem_read_ranges(struct objstore *os, const uint8_t sha[32], struct objstore_range *r,
			   size_t n, struct errbuf *eb)
{
	struct mem_obj *o = find((struct mem *)os, sha);
	if (!o)
		return errbuf_set(eb, -ENOENT, "mem: no such object");
	for (size_t i = 0; i < n; i++) {
		if (r[i].offset + r[i].len > o->len)
			return errbuf_set(eb, -EIO, "mem: range beyond the end");
		memcpy(r[i].buf, o->buf + r[i].offset, r[i].len);
	}
	return 0;
}

static int mem_read_stream(struct objstore *os, const uint8_t sha[32], uint64_t offset,
			   uint64_t len, objstore_data_fn fn, void *opaque, struct errbuf *eb)
{
	struct mem_obj *o = find((struct mem *)os, sha);
	if (!o)
		return errbuf_set(eb, -ENOENT, "mem: no such object");
	if (offset > o->len)
		return errbuf_set(eb, -EIO, "mem: offset beyond the end");
	if (len > o->len - offset)
		len = o->len - offset;
	return fn(opaque, o->buf + offset, len);
}

static const struct objstore_ops mem_ops = {
	.destroy = mem_destroy,
	.put = mem_put,
	.put_chained = mem_put_chained,
	.put_chains = mem_put_chains,
	.stat = mem_stat,
	.verify = mem_verify,
	.remove = mem_remove,
	.list = mem_list,
	.read_ranges = mem_read_ranges,
	.read_stream = mem_read_stream,
};

int objstore_mem_new(struct objstore **out)
{
	struct mem *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	objstore_base_init(&m->base, &mem_ops);
	snprintf(m->base.description, sizeof(m->base.description), "memory (test)");
	*out = &m->base;
	return 0;
}

void objstore_mem_fail_puts(struct objstore *os, unsigned n, int err)
{
	struct mem *m = (struct mem *)os;
	m->fail_puts = n;
	m->fail_err = err;
}

void objstore_mem_fail_stats(struct objstore *os, unsigned n, int err)
{
	struct mem *m = (struct mem *)os;
	m->fail_stats = n;
	m->fail_err = err;
}

void objstore_mem_on_put(struct objstore *os, void (*fn)(void *opaque), void *opaque)
{
	struct mem *m = (struct mem *)os;
	m->on_put = fn;
	m->on_put_opaque = opaque;
}

void objstore_mem_fail_removes(struct objstore *os, unsigned n, int err)
{
	struct mem *m = (struct mem *)os;
	m->fail_removes = n;
	m->fail_err = err;
}

void objstore_mem_set(struct objstore *os, const uint8_t *sha, const char *key,
		      const void *buf, size_t len)
{
	struct mem_obj *o = add((struct mem *)os, sha, key);
	if (!o)
		return;
	free(o->buf);
	o->buf = malloc(len ? len : 1);
	memcpy(o->buf, buf, len);
	o->len = len;
}

int objstore_mem_has(struct objstore *os, const uint8_t sha[32])
{
	return find((struct mem *)os, sha) != NULL;
}

unsigned objstore_mem_count(struct objstore *os)
{
	return ((struct mem *)os)->n;
}
