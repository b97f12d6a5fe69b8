/*
 * pindex.c - see pindex.h.
 *
 * Flow block value: version(1)=3, then per flow: id delta from the previous
 * (the first from the key's id), first_ts(8) and last_ts(8) big-endian, then
 * varints packets, bytes, offsets length and the offsets as varint deltas
 * (the first from 0). Offsets of a flow only grow, so deltas stay small.
 *
 * Times in values are signed ns (capfile.h) as two's complement. Stores
 * written before times were signed hold unsigned ones: flow blocks of
 * version 2 and 28-byte tindex values (the signed ones are 29 bytes, a
 * version byte first). Their times read the same below 2^63 ns and
 * saturate above it, as the reader now saturates those packets' times;
 * a time they clamped to 0 (before 1970) stays 0 until the capture is
 * indexed again.
 * Posting value: the term's flow ids, sorted, as varint deltas from 0.
 */
#include "pindex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pktkeys.h"

struct flow {
	struct flow_key key;
	uint32_t id;
	int64_t first_ts, last_ts;
	uint64_t packets, bytes, last_offset;
	uint8_t *offsets;
	size_t len, cap;
};

/* Most terms (a client's port) have one flow: up to TERM_INLINE_IDS ids
 * live in the entry, more in a block of their own. */
#define TERM_INLINE_IDS 2
struct term_entry {
	uint8_t key[17];
	uint8_t len;
	bool used;
	uint32_t n, cap; /* cap TERM_INLINE_IDS: inline */
	union {
		uint32_t inline_ids[TERM_INLINE_IDS];
		uint32_t *ids;
	};
};

static uint32_t *term_ids(struct term_entry *t)
{
	return t->cap > TERM_INLINE_IDS ? t->ids : t->inline_ids;
}

static void term_free(struct term_entry *t)
{
	if (t->cap > TERM_INLINE_IDS)
		free(t->ids);
	*t = (struct term_entry){ 0 };
}

/* A packet between its key's extraction and its flow's update; see
 * pindex_builder_packet. */
struct ahead_packet {
	struct flow_key key;
	uint64_t hash;
	int64_t ts_ns;
	uint64_t offset, caplen;
};

/* Packets in flight between the prefetch of their slot and their update;
 * their flow is prefetched half way. */
#define PINDEX_AHEAD 16

struct pindex_builder {
	struct db *db;
	uint64_t objnum;
	/* This flush's flows, dense and in id order. slots finds them: open
	 * addressing, a power of two at least twice count, each slot the
	 * hash's high half << 32 | index + 1, 0 when empty. The slots are
	 * small enough to stay in cache; the flows are not. */
	struct flow *flows;
	size_t count, flows_cap;
	uint64_t *slots;
	size_t nslots;
	struct ahead_packet ahead[PINDEX_AHEAD];
	unsigned ahead_first, ahead_n;
	uint32_t next_flow_id;
	size_t pending_bytes; /* memory held by offsets lists and the batch */
	size_t flush_bytes;   /* PINDEX_FLUSH_BYTES but in tests */
	struct db_batch *batch; /* entries not yet in a flush or the final batch */
	uint64_t index_bytes;
	struct term_entry *terms; /* open addressing, capacity a power of two */
	size_t tcap, nterms;
	/* sparse time index */
	uint32_t tseq, tcount;
	uint32_t objterms_seq; /* objterms entries written (one per flush) */
	int64_t tmin, tmax;
	uint64_t toffset;
};

static size_t varint_put(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

int pindex_next_offset(const uint8_t **p, const uint8_t *end, uint64_t *offset)
{
	uint64_t v = 0;
	for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
		uint8_t byte = *(*p)++;
		v |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			*offset += v;
			return 0;
		}
	}
	return -EINVAL;
}

size_t pindex_term_value_len(enum pindex_term_kind kind)
{
	switch (kind) {
	case PTERM_IP4: return 4;
	case PTERM_IP6: return 16;
	case PTERM_PROTO: return 1;
	default: return 2;
	}
}

size_t pindex_term(uint8_t *buf, enum pindex_term_kind kind, const void *value)
{
	size_t n = pindex_term_value_len(kind);
	buf[0] = (uint8_t)kind;
	memcpy(buf + 1, value, n);
	return 1 + n;
}

static void obj_key(uint8_t *key, uint64_t objnum, uint64_t second, size_t second_len)
{
	be64_put(key, objnum);
	if (second_len == 4) {
		be32_put(key + 8, (uint32_t)second);
	} else {
		be64_put(key + 8, second);
	}
}

/* A postings key: the term, then objnum(8) and first id(4). */
static size_t posting_key(uint8_t *key, const uint8_t *term, size_t tlen, uint64_t objnum,
			  uint32_t first_id)
{
	memcpy(key, term, tlen);
	obj_key(key + tlen, objnum, first_id, 4);
	return tlen + 12;
}

int pindex_posting_objnum(const void *key, size_t klen, uint64_t *objnum)
{
	if (klen < 12)
		return -EINVAL;
	*objnum = be64_get((const uint8_t *)key + klen - 12);
	return 0;
}

static void put_entry(struct pindex_builder *b, enum db_cf cf, const void *key, size_t klen,
		      const void *val, size_t vlen)
{
	db_batch_put(b->batch, cf, key, klen, val, vlen);
	b->index_bytes += klen + vlen;
	b->pending_bytes += klen + vlen + 32;
}

int pindex_builder_new(struct pindex_builder **out, struct db *db, uint64_t objnum)
{
	struct pindex_builder *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->db = db;
	b->objnum = objnum;
	/* Test hook (tests/integration/query.sh): a small capture takes the
	 * path of a huge one, flushes and all. */
	const char *flush = getenv("CAPVAULT_PINDEX_FLUSH_BYTES");
	char *end = NULL;
	unsigned long long bytes = flush ? strtoull(flush, &end, 10) : 0;
	b->flush_bytes = bytes > 0 && *end == '\0' ? bytes : PINDEX_FLUSH_BYTES;
	b->nslots = 1024;
	b->slots = calloc(b->nslots, sizeof(*b->slots));
	int err = b->slots ? db_batch_new(&b->batch) : -ENOMEM;
	if (err) {
		pindex_builder_free(b);
		return err;
	}
	*out = b;
	return 0;
}

static void flows_clear(struct pindex_builder *b)
{
	for (size_t i = 0; i < b->count; i++)
		free(b->flows[i].offsets);
	b->count = 0;
	if (b->slots)
		memset(b->slots, 0, b->nslots * sizeof(*b->slots));
	b->pending_bytes = 0;
}

struct pindex_builder *pindex_builder_free(struct pindex_builder *b)
{
	if (!b)
		return NULL;
	flows_clear(b);
	free(b->flows);
	free(b->slots);
	for (size_t i = 0; i < b->tcap; i++)
		term_free(&b->terms[i]);
	free(b->terms);
	db_batch_free(b->batch);
	free(b);
	return NULL;
}

int pindex_builder_context(struct pindex_builder *b, uint64_t offset, const void *blob,
			   size_t len)
{
	uint8_t key[16];
	obj_key(key, b->objnum, offset, 8);
	put_entry(b, DB_CF_CONTEXTS, key, sizeof(key), blob, len);
	return 0;
}

/* Word at a time: hashing a key byte by byte cost more than its lookup. */
static uint64_t key_hash(const struct flow_key *k)
{
	const uint8_t *p = (const uint8_t *)k;
	uint64_t h = 0x9e3779b97f4a7c15ull, w;
	size_t i = 0;
	for (; i + 8 <= sizeof(*k); i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	uint64_t tail = 0; /* the last sizeof(*k) % 8 bytes */
	memcpy(&tail, p + i, sizeof(*k) - i);
	h = (h ^ tail) * 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 29);
}

static uint64_t slot_of(uint64_t hash, size_t index)
{
	return (hash >> 32) << 32 | (uint64_t)(index + 1);
}

static void slot_insert(uint64_t *slots, size_t nslots, uint64_t hash, uint64_t slot)
{
	size_t i = hash & (nslots - 1);
	while (slots[i])
		i = (i + 1) & (nslots - 1);
	slots[i] = slot;
}

static int slots_grow(struct pindex_builder *b)
{
	size_t n = b->nslots * 2;
	uint64_t *grown = calloc(n, sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	for (size_t i = 0; i < b->count; i++) {
		uint64_t hash = key_hash(&b->flows[i].key);
		slot_insert(grown, n, hash, slot_of(hash, i));
	}
	free(b->slots);
	b->slots = grown;
	b->nslots = n;
	return 0;
}

static int flow_postings(struct pindex_builder *b, const struct flow *f);

/* Appends a new flow for key, posted under its terms at once (so in id
 * order, and not all at the end); NULL when out of memory. */
static struct flow *flow_new(struct pindex_builder *b, const struct flow_key *key, uint64_t hash)
{
	if ((b->count + 1) * 2 > b->nslots && slots_grow(b) < 0)
		return NULL;
	if (b->count == b->flows_cap) {
		size_t cap = b->flows_cap ? b->flows_cap * 2 : 256;
		struct flow *grown = realloc(b->flows, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		b->flows = grown;
		b->flows_cap = cap;
	}
	struct flow *f = &b->flows[b->count];
	*f = (struct flow){ .key = *key, .id = b->next_flow_id++, .first_ts = INT64_MAX,
			    .last_ts = INT64_MIN };
	slot_insert(b->slots, b->nslots, hash, slot_of(hash, b->count));
	b->count++;
	b->pending_bytes += sizeof(*f) * 2 + sizeof(uint64_t) * 2;
	return flow_postings(b, f) < 0 ? NULL : f;
}

/* The first flow at or after slot *i (in hash's probe sequence) whose
 * slot has hash's tag; *i is left on its slot. NULL at an empty slot. */
static struct flow *flow_probe(const struct pindex_builder *b, uint64_t hash, size_t *i)
{
	uint64_t tag = hash >> 32;
	for (; b->slots[*i]; *i = (*i + 1) & (b->nslots - 1)) {
		if (b->slots[*i] >> 32 == tag)
			return &b->flows[(uint32_t)b->slots[*i] - 1];
	}
	return NULL;
}

/* The flow of key, made when new; NULL when out of memory. */
static struct flow *flow_find(struct pindex_builder *b, const struct flow_key *key, uint64_t hash)
{
	size_t i = hash & (b->nslots - 1);
	for (struct flow *f; (f = flow_probe(b, hash, &i)); i = (i + 1) & (b->nslots - 1)) {
		if (memcmp(&f->key, key, sizeof(*key)) == 0)
			return f;
	}
	return flow_new(b, key, hash);
}

/* Brings the flow a packet will update into the cache, if it exists. */
static void flow_prefetch(const struct pindex_builder *b, uint64_t hash)
{
	size_t i = hash & (b->nslots - 1);
	const char *f = (const char *)flow_probe(b, hash, &i);
	if (f) {
		__builtin_prefetch(f, 1);
		__builtin_prefetch(f + 64, 1);
	}
}

static int flow_add_offset(struct pindex_builder *b, struct flow *f, uint64_t offset)
{
	if (f->cap - f->len < 10) {
		size_t cap = f->cap ? f->cap * 2 : 32;
		uint8_t *grown = realloc(f->offsets, cap);
		if (!grown)
			return -ENOMEM;
		b->pending_bytes += cap - f->cap;
		f->offsets = grown;
		f->cap = cap;
	}
	f->len += varint_put(f->offsets + f->len, offset - f->last_offset);
	f->last_offset = offset;
	return 0;
}

/* ---- postings: term -> flow ids, gathered per flush ---- */

static uint64_t bytes_hash(const uint8_t *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static int terms_grow(struct pindex_builder *b)
{
	size_t cap = b->tcap ? b->tcap * 2 : 1024;
	struct term_entry *grown = calloc(cap, sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	for (size_t i = 0; i < b->tcap; i++) {
		if (!b->terms[i].used)
			continue;
		size_t j = bytes_hash(b->terms[i].key, b->terms[i].len) & (cap - 1);
		while (grown[j].used)
			j = (j + 1) & (cap - 1);
		grown[j] = b->terms[i];
	}
	free(b->terms);
	b->terms = grown;
	b->tcap = cap;
	return 0;
}

static int term_add(struct pindex_builder *b, const uint8_t *key, size_t len, uint32_t id)
{
	if ((b->nterms + 1) * 2 > b->tcap && terms_grow(b) < 0)
		return -ENOMEM;
	size_t i = bytes_hash(key, len) & (b->tcap - 1);
	while (b->terms[i].used && (b->terms[i].len != len || memcmp(b->terms[i].key, key, len)))
		i = (i + 1) & (b->tcap - 1);
	struct term_entry *t = &b->terms[i];
	if (!t->used) {
		t->used = true;
		t->len = (uint8_t)len;
		t->cap = TERM_INLINE_IDS;
		memcpy(t->key, key, len);
		b->nterms++;
		b->pending_bytes += sizeof(*t) * 2;
	}
	if (t->n == t->cap) {
		uint32_t cap = t->cap * 2;
		uint32_t *grown = t->cap > TERM_INLINE_IDS ? realloc(t->ids, cap * sizeof(*grown)) :
							     malloc(cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		if (t->cap == TERM_INLINE_IDS)
			memcpy(grown, t->inline_ids, sizeof(t->inline_ids));
		b->pending_bytes += (cap - t->cap) * sizeof(*grown);
		t->ids = grown;
		t->cap = cap;
	}
	term_ids(t)[t->n++] = id;
	return 0;
}

static int post(struct pindex_builder *b, enum pindex_term_kind kind, const void *value,
		uint32_t id)
{
	uint8_t key[17];
	size_t n = pindex_term(key, kind, value);
	return term_add(b, key, n, id);
}

static int post16(struct pindex_builder *b, enum pindex_term_kind kind, uint16_t v, uint32_t id)
{
	uint8_t be[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	return post(b, kind, be, id);
}

/* The terms of one flow's key, as planner.h expects them. */
static int flow_postings(struct pindex_builder *b, const struct flow *f)
{
	const struct flow_key *k = &f->key;
	enum pindex_term_kind addr = k->ipver == 6 ? PTERM_IP6 : PTERM_IP4;
	bool is_ip = k->ethertype == 0x0800 || k->ethertype == 0x86dd;
	enum pindex_term_kind port = k->proto == 6 ? PTERM_TCP_PORT :
				     k->proto == 17 ? PTERM_UDP_PORT :
				     k->proto == 132 ? PTERM_SCTP_PORT : 0;
	int err = 0;
	if (k->ipver && (k->flags & PKTKEY_K_ADDR_A))
		err = post(b, addr, k->addr_a, f->id);
	if (!err && k->ipver && (k->flags & PKTKEY_K_ADDR_B) &&
	    memcmp(k->addr_a, k->addr_b, sizeof(k->addr_a)) != 0)
		err = post(b, addr, k->addr_b, f->id);
	if (!err && is_ip && (k->flags & PKTKEY_K_PROTO))
		err = post(b, PTERM_PROTO, &k->proto, f->id);
	if (!err && is_ip && port && (k->flags & PKTKEY_K_PORT_A))
		err = post16(b, port, k->port_a, f->id);
	if (!err && is_ip && port && (k->flags & PKTKEY_K_PORT_B) && k->port_b != k->port_a)
		err = post16(b, port, k->port_b, f->id);
	if (!err && (k->flags & PKTKEY_K_ETHERTYPE))
		err = post16(b, PTERM_ETHERTYPE, k->ethertype, f->id);
	for (unsigned i = 0; !err && i < k->vlan_count && i < PKTKEY_MAX_VLAN; i++)
		err = post16(b, PTERM_VLAN, k->vlan[i], f->id);
	return err;
}

static int cmp_term(const void *a, const void *b)
{
	const struct term_entry *x = *(const struct term_entry *const *)a;
	const struct term_entry *y = *(const struct term_entry *const *)b;
	int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
	return c ? c : (int)x->len - (int)y->len;
}

static int term_emit(struct pindex_builder *b, struct term_entry *t)
{
	uint8_t key[17 + 12], small[64];
	const uint32_t *ids = term_ids(t);
	uint8_t *val = t->n * 5 + 1 <= sizeof(small) ? small : malloc(t->n * 5 + 1);
	if (!val)
		return -ENOMEM;
	size_t n = 0;
	uint32_t prev = 0;
	for (size_t j = 0; j < t->n; j++) {
		n += varint_put(val + n, ids[j] - prev);
		prev = ids[j];
	}
	size_t klen = posting_key(key, t->key, t->len, b->objnum, ids[0]);
	put_entry(b, DB_CF_POSTINGS, key, klen, val, n);
	if (val != small)
		free(val);
	term_free(t);
	return 0;
}

/* The objterms record of one term: length, term, first id. */
static size_t objterm_put(uint8_t *p, struct term_entry *t)
{
	p[0] = t->len;
	memcpy(p + 1, t->key, t->len);
	be32_put(p + 1 + t->len, term_ids(t)[0]);
	return 1u + t->len + 4;
}

/* One entry per term: key term + objnum + first id, value the ids as
 * varint deltas; they are sorted already, as flows are posted when made.
 * The first id keeps keys of separate flushes apart. Terms go into the
 * batch in key order: RocksDB's memtable inserts keys that come in order
 * in constant time, random ones each in a search of its skip list (that
 * search was most of the commit of a capture of many flows). Afterwards
 * the table is empty, whatever happened. */
static int terms_emit(struct pindex_builder *b)
{
	struct term_entry **sorted = malloc((b->nterms ? b->nterms : 1) * sizeof(*sorted));
	uint8_t *objterms = malloc((b->nterms ? b->nterms : 1) * (1 + 17 + 4));
	int err = sorted && objterms ? 0 : -ENOMEM;
	size_t n = 0, len = 0;
	for (size_t i = 0; i < b->tcap && !err; i++)
		if (b->terms[i].used)
			sorted[n++] = &b->terms[i];
	if (!err)
		qsort(sorted, n, sizeof(*sorted), cmp_term);
	for (size_t i = 0; i < n && !err; i++) {
		len += objterm_put(objterms + len, sorted[i]);
		err = term_emit(b, sorted[i]);
	}
	if (!err && n > 0) {
		uint8_t key[12];
		obj_key(key, b->objnum, b->objterms_seq++, 4);
		put_entry(b, DB_CF_OBJTERMS, key, sizeof(key), objterms, len);
	}
	free(objterms);
	free(sorted);
	for (size_t i = 0; i < b->tcap && err; i++)
		term_free(&b->terms[i]);
	b->nterms = 0;
	return err;
}

/* ---- flows: blocks of consecutive flow ids ---- */

#define FLOW_BLOCK_FLOWS 256
#define FLOW_BLOCK_VERSION 3
#define FLOW_BLOCK_UNSIGNED 2 /* before times were signed */
#define TBLOCK_VERSION 1
#define TBLOCK_UNSIGNED_LEN 28 /* before times were signed: no version byte */
#define FLOW_BLOCK_BYTES (256u * 1024)

static size_t flow_record_put(uint8_t *p, const struct flow *f, uint32_t prev_id)
{
	size_t n = varint_put(p, f->id - prev_id);
	be64_put(p + n, (uint64_t)f->first_ts);
	be64_put(p + n + 8, (uint64_t)f->last_ts);
	n += 16;
	n += varint_put(p + n, f->packets);
	n += varint_put(p + n, f->bytes);
	n += varint_put(p + n, f->len);
	memcpy(p + n, f->offsets, f->len);
	return n + f->len;
}

/* Writes flows[0..n) (consecutive ids) as one block keyed objnum + first id. */
static int flow_block_emit(struct pindex_builder *b, const struct flow *flows, size_t n)
{
	size_t cap = 1;
	for (size_t i = 0; i < n; i++)
		cap += 5 + 16 + 30 + flows[i].len;
	uint8_t *val = malloc(cap), key[12];
	if (!val)
		return -ENOMEM;
	size_t len = 0;
	val[len++] = FLOW_BLOCK_VERSION;
	uint32_t prev = flows[0].id;
	for (size_t i = 0; i < n; i++) {
		len += flow_record_put(val + len, &flows[i], prev);
		prev = flows[i].id;
	}
	obj_key(key, b->objnum, flows[0].id, 4);
	put_entry(b, DB_CF_FLOWS, key, sizeof(key), val, len);
	free(val);
	return 0;
}

/* Moves every flow and its postings into the batch and starts afresh. */
static int flows_emit_all(struct pindex_builder *b)
{
	int err = 0;
	for (size_t i = 0; i < b->count && !err;) {
		size_t j = i, bytes = 0;
		while (j < b->count && j - i < FLOW_BLOCK_FLOWS && bytes < FLOW_BLOCK_BYTES)
			bytes += b->flows[j++].len + 40;
		err = flow_block_emit(b, b->flows + i, j - i);
		i = j;
	}
	if (!err)
		err = terms_emit(b);
	flows_clear(b);
	return err;
}

/* Bounded memory: writes what is pending, unsynced, outside the final batch. */
static int builder_flush(struct pindex_builder *b)
{
	int err = flows_emit_all(b);
	if (!err)
		err = db_write(b->db, b->batch, false, NULL);
	db_batch_free(b->batch);
	b->batch = NULL;
	if (!err)
		err = db_batch_new(&b->batch);
	b->pending_bytes = 0;
	return err;
}

/* A time of a value written before times were signed. */
static int64_t unsigned_ns(uint64_t v)
{
	return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

void pindex_tblock_encode(const struct pindex_tblock *t, uint8_t out[PINDEX_TBLOCK_LEN])
{
	out[0] = TBLOCK_VERSION;
	be64_put(out + 1, (uint64_t)t->min_ts);
	be64_put(out + 9, (uint64_t)t->max_ts);
	be64_put(out + 17, t->offset);
	be32_put(out + 25, t->packets);
}

int pindex_tblock_decode(const void *val, size_t len, struct pindex_tblock *out)
{
	const uint8_t *p = val;
	if (len == TBLOCK_UNSIGNED_LEN) {
		out->min_ts = unsigned_ns(be64_get(p));
		out->max_ts = unsigned_ns(be64_get(p + 8));
	} else if (len == PINDEX_TBLOCK_LEN && p[0] == TBLOCK_VERSION) {
		p++; /* the same layout follows */
		out->min_ts = (int64_t)be64_get(p);
		out->max_ts = (int64_t)be64_get(p + 8);
	} else {
		return -EINVAL;
	}
	out->offset = be64_get(p + 16);
	out->packets = be32_get(p + 24);
	return 0;
}

static void tindex_emit(struct pindex_builder *b)
{
	uint8_t key[12], val[PINDEX_TBLOCK_LEN];
	const struct pindex_tblock t = {
		.min_ts = b->tmin, .max_ts = b->tmax, .offset = b->toffset, .packets = b->tcount
	};
	obj_key(key, b->objnum, b->tseq++, 4);
	pindex_tblock_encode(&t, val);
	put_entry(b, DB_CF_TINDEX, key, sizeof(key), val, sizeof(val));
	b->tcount = 0;
}

static void tindex_add(struct pindex_builder *b, const struct capfile_packet *pkt)
{
	if (b->tcount == 0) {
		b->tmin = b->tmax = pkt->ts_ns;
		b->toffset = pkt->offset;
	}
	if (pkt->ts_ns < b->tmin)
		b->tmin = pkt->ts_ns;
	if (pkt->ts_ns > b->tmax)
		b->tmax = pkt->ts_ns;
	if (++b->tcount == PINDEX_TINDEX_EVERY)
		tindex_emit(b);
}

static int flow_update(struct pindex_builder *b, const struct ahead_packet *a)
{
	struct flow *f = flow_find(b, &a->key, a->hash);
	if (!f)
		return -ENOMEM;
	if (a->ts_ns < f->first_ts)
		f->first_ts = a->ts_ns;
	if (a->ts_ns > f->last_ts)
		f->last_ts = a->ts_ns;
	f->packets++;
	f->bytes += a->caplen;
	int err = flow_add_offset(b, f, a->offset);
	if (err)
		return err;
	if (b->pending_bytes > b->flush_bytes)
		return builder_flush(b);
	return 0;
}

/* Updates the flow of the oldest packet in flight. */
static int ahead_take(struct pindex_builder *b)
{
	const struct ahead_packet *a = &b->ahead[b->ahead_first];
	b->ahead_first = (b->ahead_first + 1) % PINDEX_AHEAD;
	b->ahead_n--;
	return flow_update(b, a);
}

/* Flows are many and packets of one rarely come together, so a packet's
 * flow is seldom in cache: looked up at once, each packet waited for two
 * memory loads in turn (its slot, then its flow), most of the time of the
 * whole pass. Instead a packet waits PINDEX_AHEAD packets in a queue: its
 * slot is prefetched when it comes in, its flow half way, so both are in
 * cache when it is counted. Packets of one flow keep their order. */
int pindex_builder_packet(struct pindex_builder *b, const struct capfile_packet *pkt)
{
	unsigned last = (b->ahead_first + b->ahead_n) % PINDEX_AHEAD;
	struct ahead_packet *a = &b->ahead[last];
	pktkeys_extract(pkt->linktype, pkt->data, pkt->caplen, &a->key);
	a->hash = key_hash(&a->key);
	a->ts_ns = pkt->ts_ns;
	a->offset = pkt->offset;
	a->caplen = pkt->caplen;
	__builtin_prefetch(&b->slots[a->hash & (b->nslots - 1)]);
	tindex_add(b, pkt);
	if (++b->ahead_n > PINDEX_AHEAD / 2)
		flow_prefetch(b, b->ahead[(last + PINDEX_AHEAD / 2) % PINDEX_AHEAD].hash);
	return b->ahead_n == PINDEX_AHEAD ? ahead_take(b) : 0;
}

int pindex_builder_finish(struct pindex_builder *b, struct db_batch *batch,
			  uint64_t *index_bytes, struct errbuf *eb)
{
	int err = 0;
	while (b->ahead_n && !err)
		err = ahead_take(b);
	if (b->tcount > 0)
		tindex_emit(b);
	if (!err)
		err = flows_emit_all(b);
	if (err)
		return errbuf_set(eb, err, "building the packet index: %s", strerror(-err));
	db_batch_move(batch, b->batch);
	*index_bytes = b->index_bytes;
	return 0;
}

/* Deletes the postings an objterms value lists for objnum. */
static void delete_postings(struct db_batch *batch, uint64_t objnum, const uint8_t *p, size_t len)
{
	uint8_t key[17 + 12];
	for (size_t at = 0; at < len && p[at] >= 1 && p[at] <= 17 && len - at >= 5u + p[at];) {
		size_t tlen = p[at];
		size_t klen = posting_key(key, p + at + 1, tlen, objnum, be32_get(p + at + 1 + tlen));
		db_batch_delete(batch, DB_CF_POSTINGS, key, klen);
		at += 5 + tlen;
	}
}

/* Best effort: a posting left behind costs room, not wrong answers. */
static void delete_objnum_postings(struct db *db, struct db_batch *batch, uint64_t first,
				   uint64_t last)
{
	struct db_iter *it = NULL;
	uint8_t from[8];
	be64_put(from, first);
	if (db_iter_new(db, DB_CF_OBJTERMS, &it) < 0)
		return;
	for (db_iter_seek(it, from, sizeof(from)); db_iter_valid(it); db_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *key = db_iter_key(it, &klen);
		const uint8_t *val = db_iter_value(it, &vlen);
		if (klen != 12 || be64_get(key) >= last)
			break;
		delete_postings(batch, be64_get(key), val, vlen);
	}
	db_iter_free(it);
}

static void delete_objnum_range(struct db *db, struct db_batch *batch, uint64_t first,
				uint64_t last)
{
	static const enum db_cf cfs[] = { DB_CF_FLOWS, DB_CF_TINDEX, DB_CF_CONTEXTS,
					  DB_CF_OBJTERMS };
	delete_objnum_postings(db, batch, first, last);
	uint8_t begin[8], end[8];
	be64_put(begin, first);
	be64_put(end, last);
	for (size_t i = 0; i < sizeof(cfs) / sizeof(cfs[0]); i++)
		db_batch_delete_range(batch, cfs[i], begin, sizeof(begin), end, sizeof(end));
}

void pindex_delete_object(struct db *db, struct db_batch *batch, uint64_t objnum)
{
	delete_objnum_range(db, batch, objnum, objnum + 1);
}

void pindex_delete_from(struct db *db, struct db_batch *batch, uint64_t first_objnum)
{
	delete_objnum_range(db, batch, first_objnum, UINT64_MAX);
}

int pindex_flow_block_open(const void *val, size_t len, const uint8_t *key, size_t klen,
			   struct pindex_flow_cursor *cur)
{
	const uint8_t *p = val;
	if (len < 1 || (p[0] != FLOW_BLOCK_VERSION && p[0] != FLOW_BLOCK_UNSIGNED) || klen != 12)
		return -EINVAL;
	cur->is_unsigned = p[0] == FLOW_BLOCK_UNSIGNED;
	cur->p = p + 1;
	cur->end = p + len;
	cur->prev_id = be32_get(key + 8);
	return 0;
}

int pindex_flow_next(struct pindex_flow_cursor *cur, struct pindex_flow *out)
{
	uint64_t delta = 0, packets = 0, bytes = 0, olen = 0;
	if (cur->p >= cur->end)
		return 1;
	if (pindex_next_offset(&cur->p, cur->end, &delta) < 0 || cur->end - cur->p < 16)
		return -EINVAL;
	out->id = cur->prev_id + (uint32_t)delta;
	uint64_t first = be64_get(cur->p), last = be64_get(cur->p + 8);
	out->first_ts_ns = cur->is_unsigned ? unsigned_ns(first) : (int64_t)first;
	out->last_ts_ns = cur->is_unsigned ? unsigned_ns(last) : (int64_t)last;
	cur->p += 16;
	if (pindex_next_offset(&cur->p, cur->end, &packets) < 0 ||
	    pindex_next_offset(&cur->p, cur->end, &bytes) < 0 ||
	    pindex_next_offset(&cur->p, cur->end, &olen) < 0 || olen > (uint64_t)(cur->end - cur->p))
		return -EINVAL;
	out->packets = packets;
	out->bytes = bytes;
	out->offsets = cur->p;
	out->offsets_len = (size_t)olen;
	cur->p += olen;
	cur->prev_id = out->id;
	return 0;
}
