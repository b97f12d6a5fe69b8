/*
 * pindex.h - the packet and flow index, built during the import pass from
 * the records the reader emits (no second read of the capture).
 *
 * Keys (column families of db.h; numbers big-endian):
 *   flows     objnum(8) first flowid(4)    -> block of flows with consecutive ids
 *   postings  term, objnum(8) first id(4)  -> the term's flow ids (varint deltas)
 *   tindex    objnum(8) seq(4)             -> version(1) min_ts(8) max_ts(8) offset(8)
 *                                             packets(4)
 *   contexts  objnum(8) offset(8)          -> reader context blob (capfile.h)
 *   objterms  objnum(8) seq(4)             -> the postings keys of one flush: per
 *                                             term, length(1) term first id(4)
 * A term is one kind byte and its value: 'A' IPv4 address (4), 'B' IPv6
 * address (16), 'T'/'U'/'S' TCP/UDP/SCTP port (2), 'P' IP protocol (1),
 * 'E' ethertype (2), 'V' VLAN id (2).
 *
 * A flow is the packets of one canonical flow key (both directions) of one
 * object; its record lists their offsets, delta- and varint-encoded, with
 * first/last time and packet/byte counts. Flows are stored in blocks of up
 * to 256 and a term's flows in one posting list per object (and flush), so
 * a capture of many small flows costs few RocksDB entries. Memory is bounded: past
 * PINDEX_FLUSH_BYTES of pending entries the builder writes what it has
 * (unsynced) and starts fresh flows; the final part goes into the capture's
 * catalog batch, so a capture is visible only with its whole index.
 * Postings are keyed by term first (a query looks a term up across
 * objects), so deleting an object's postings needs their keys: objterms
 * lists them, written in the same batch as the postings themselves.
 */
#ifndef CAPVAULT_PINDEX_H
#define CAPVAULT_PINDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "capfile.h"
#include "db.h"
#include "errbuf.h"

#define PINDEX_FLUSH_BYTES (64u << 20)
#define PINDEX_TINDEX_EVERY 4096

enum pindex_term_kind {
	PTERM_IP4 = 'A',
	PTERM_IP6 = 'B',
	PTERM_TCP_PORT = 'T',
	PTERM_UDP_PORT = 'U',
	PTERM_SCTP_PORT = 'S',
	PTERM_PROTO = 'P',
	PTERM_ETHERTYPE = 'E',
	PTERM_VLAN = 'V',
};

/* A sparse time index entry (tindex value): up to PINDEX_TINDEX_EVERY
 * packets from byte offset on, their earliest and latest time. The
 * builder writes them, queries read them; only these two know the bytes. */
struct pindex_tblock {
	int64_t min_ts, max_ts; /* ns, capfile.h */
	uint64_t offset;
	uint32_t packets;
};
#define PINDEX_TBLOCK_LEN 29
void pindex_tblock_encode(const struct pindex_tblock *t, uint8_t out[PINDEX_TBLOCK_LEN]);
/* Returns 0, or -EINVAL when val is not a tindex value. */
int pindex_tblock_decode(const void *val, size_t len, struct pindex_tblock *out);

struct pindex_builder;

int pindex_builder_new(struct pindex_builder **out, struct db *db, uint64_t objnum);
struct pindex_builder *pindex_builder_free(struct pindex_builder *b);
int pindex_builder_context(struct pindex_builder *b, uint64_t offset, const void *blob,
			   size_t len);
int pindex_builder_packet(struct pindex_builder *b, const struct capfile_packet *pkt);
/* Puts the rest of the index into batch; *index_bytes gets the bytes of
 * keys and values written for this object in all. */
int pindex_builder_finish(struct pindex_builder *b, struct db_batch *batch,
			  uint64_t *index_bytes, struct errbuf *eb);

/* Deletes every index entry of objnum into batch: the object-keyed ones
 * (flows, tindex, contexts, objterms) by range, its postings one by one
 * as objterms (read from db) lists them. Postings of objects indexed
 * before objterms existed are left; queries skip a posting whose object is
 * gone. */
void pindex_delete_object(struct db *db, struct db_batch *batch, uint64_t objnum);
/* Same for every objnum >= first (leftovers of imports that never
 * committed). */
void pindex_delete_from(struct db *db, struct db_batch *batch, uint64_t first_objnum);

/* The object number of a postings key; -EINVAL when it is too short. */
int pindex_posting_objnum(const void *key, size_t klen, uint64_t *objnum);

/* Encodes a term key prefix; returns its length (at most 17). */
size_t pindex_term(uint8_t *buf, enum pindex_term_kind kind, const void *value);
size_t pindex_term_value_len(enum pindex_term_kind kind);

/* Reading flow blocks: one value of the flows column family holds the
 * flows of consecutive ids, the key's id being the first. */
struct pindex_flow {
	uint32_t id;
	int64_t first_ts_ns, last_ts_ns;
	uint64_t packets, bytes;
	const uint8_t *offsets; /* varint deltas, the first from 0 */
	size_t offsets_len;
};
struct pindex_flow_cursor {
	const uint8_t *p, *end;
	uint32_t prev_id;
	bool is_unsigned; /* written before times were signed (pindex.c) */
};
/* Starts reading the block val (under key). Returns 0 or -EINVAL. */
int pindex_flow_block_open(const void *val, size_t len, const uint8_t *key, size_t klen,
			   struct pindex_flow_cursor *cur);
/* The next flow of the block: 0, 1 at the end, or -EINVAL. */
int pindex_flow_next(struct pindex_flow_cursor *cur, struct pindex_flow *out);
/* Decodes the next offset; returns 0, or -EINVAL at the end or on garbage. */
int pindex_next_offset(const uint8_t **p, const uint8_t *end, uint64_t *offset);

#endif
