/*
 * catalog.h - the capture catalog in RocksDB (see db.h for the keys).
 *
 * A capture record is one imported capture: its name, tags and the object
 * (sha256) holding its bytes, plus what the reader learnt about it. Several
 * records may share one object; the object record counts them.
 *
 * catalog_commit is the single place a capture becomes visible: under one
 * lock it checks for the object's existing capture (dedup), assigns an id,
 * and writes the record, its tag/time/sha keys, the object refcount and
 * whatever the caller already put in the batch (the packet index) as one
 * synced WriteBatch.
 *
 * Names, source paths, comments and errors are bytes, as a client or a
 * file system gave them (any byte but NUL, UTF-8 or not). The record holds
 * the bytes; its JSON (stored, and served as it is) holds their escaped
 * form (textesc.h), which is valid UTF-8 and reads back to the same bytes.
 */
#ifndef CAPVAULT_CATALOG_H
#define CAPVAULT_CATALOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "errbuf.h"

/* Positive outcome of catalog_commit: the object already had a capture. */
#define CATALOG_DUPLICATE 1
/* Positive outcome of catalog_remove_if: the check kept the capture. */
#define CATALOG_KEPT 2

/* Another arrival of a capture's bytes (a duplicate): its name, where it
 * came from (or NULL), and when. */
struct capture_arrival {
	char *name;
	char *source_path;
	uint64_t import_time_ns;
};

/* At most this many other arrivals are listed; later ones add only their
 * tags. */
#define CATALOG_ARRIVALS_MAX 32

/* Where an object's bytes are (invariant 7: always at least one verified
 * place the catalog names). */
enum catalog_location {
	CATALOG_LOCAL = 0,  /* the local store only (also records from before tiering) */
	CATALOG_REMOTE = 1, /* the object store only */
	CATALOG_BOTH = 2,   /* both: a tiering under way, or a remote object imported again */
};
/* "local", "remote", "both". */
const char *catalog_location_name(enum catalog_location loc);
/* The inverse; -EINVAL for anything else. */
int catalog_location_parse(const char *s, enum catalog_location *loc);

struct capture_record {
	uint64_t id;
	char *name;           /* never NULL in a record read from the catalog */
	uint8_t sha256[32];
	uint64_t file_size;   /* bytes of the stored (decompressed) capture */
	uint64_t source_size; /* bytes of the source as received */
	char format[8];       /* "pcap", "pcapng" */
	char compression[8];  /* "none", "gzip", "zstd" */
	uint16_t version_major, version_minor;
	bool big_endian;
	bool nanosecond;
	uint32_t snaplen;
	uint32_t linktypes[16];
	uint32_t nlinktypes;
	uint32_t pcap_linktype_ext; /* pcap header bits above the link type (FCS length) */
	uint32_t interfaces;
	uint32_t sections;
	uint64_t packets;
	uint64_t data_bytes;
	uint64_t wire_bytes;
	int64_t first_ts_ns, last_ts_ns;        /* file order; ns, capfile.h */
	int64_t earliest_ts_ns, latest_ts_ns;   /* min / max */
	bool time_ordered;
	uint64_t time_saturated; /* packets whose time was beyond the ns range */
	uint64_t oversized;
	bool truncated;
	char *error;          /* truncation message, or NULL */
	uint64_t import_time_ns;
	/* The latest arrival of these bytes, a duplicate's, when later than
	 * import_time_ns (else 0): the bytes imported again are young again
	 * for retention's age by import (catalog_record_arrived_ns). */
	uint64_t last_arrival_ns;
	char *source_path;    /* or NULL */
	char *comment;        /* or NULL */
	char **tags;
	size_t ntags;
	struct capture_arrival *also; /* other arrivals of the same bytes */
	size_t nalso;
	/* Not stored: the tags this arrival may add to the capture it turns out
	 * to duplicate, when that is fewer than tags (an uploader without the
	 * delete scope adds no tag a retention policy selects by). */
	char **merge_tags;
	size_t nmerge_tags;
	bool has_merge_tags;
	uint64_t index_bytes; /* bytes of packet index written for it */
	uint64_t objnum;      /* the object's number in the packet index */
	/* A copy of the object record's location, kept in the same batch, so
	 * that listings served from the stored JSON show it. */
	enum catalog_location location;
};

struct catalog;

int catalog_new(struct catalog **out, struct db *db, struct errbuf *eb);
struct catalog *catalog_free(struct catalog *cat);

/* Releases a record and everything it points to. Accepts NULL. */
void capture_record_free(struct capture_record *rec);
/* Adds a tag if not present. Returns 0 or -ENOMEM. */
int capture_record_add_tag(struct capture_record *rec, const char *tag);
/* When rec's bytes last arrived: its import, or a later duplicate's. */
uint64_t catalog_record_arrived_ns(const struct capture_record *rec);
/* Tag syntax: 1-128 bytes of [A-Za-z0-9._:/@+-]. */
bool catalog_tag_valid(const char *tag);

/* The most tags one capture holds: an import or edit past it is refused
 * (-EINVAL); a duplicate's tags past it are not added (its arrival is). */
#define CATALOG_TAGS_MAX 256

/* Allocates a number for a new object's packet index entries. */
uint64_t catalog_next_objnum(struct catalog *cat);

/*
 * Makes rec durable. If a capture of the same sha256 exists, rec is merged
 * into it instead (its tags added, its name and source listed among the
 * capture's other arrivals unless already there: a re-import after a crash
 * adds nothing) with sync, batch is not written, *existing_id is filled
 * and CATALOG_DUPLICATE returned; only then may the duplicate's source go.
 * Else assigns rec->id, adds rec (and the rest of batch) with sync and
 * returns 0. Negative errno on failure (eb).
 */
int catalog_commit(struct catalog *cat, struct capture_record *rec, struct db_batch *batch,
		   uint64_t *existing_id, struct errbuf *eb);

/* Returns 0 with *out (caller frees), -ENOENT, or -EIO. */
int catalog_get(struct catalog *cat, uint64_t id, struct capture_record **out);
/* Finds a capture by decimal id, or by a sha256 prefix of at least 8 hex
 * digits. -ENOENT, or -EINVAL when ambiguous or malformed (eb). */
int catalog_lookup(struct catalog *cat, const char *id_or_sha, struct capture_record **out,
		   struct errbuf *eb);
/* First capture stored for an object: 0, or -ENOENT. */
int catalog_find_sha(struct catalog *cat, const uint8_t sha[32], uint64_t *id);

/* Calls fn for each capture in id order (only those tagged `tag` when not
 * NULL). The record is freed after fn returns; nonzero stops. */
typedef int (*catalog_record_fn)(void *opaque, const struct capture_record *rec);
int catalog_foreach(struct catalog *cat, const char *tag, catalog_record_fn fn, void *opaque);

/* The stored JSON of each capture with an id greater than after_id, in id
 * order, without parsing it (it is what capture_record_to_json gives):
 * the fast path for listings, a page at a time (its blocks stay in the
 * block cache). Nonzero from fn stops. */
typedef int (*catalog_raw_fn)(void *opaque, uint64_t id, const char *json, size_t len);
int catalog_foreach_raw(struct catalog *cat, uint64_t after_id, catalog_raw_fn fn, void *opaque);
/* The same, newest first: the captures with an id below before_id
 * (CATALOG_RAW_FROM_END: all), in descending id order. */
#define CATALOG_RAW_FROM_END UINT64_MAX
int catalog_foreach_raw_desc(struct catalog *cat, uint64_t before_id, catalog_raw_fn fn,
			     void *opaque);
/* The stored JSON of one capture (caller frees). Returns 0, -ENOENT or -EIO. */
int catalog_get_raw(struct catalog *cat, uint64_t id, char **json, size_t *len);

/*
 * The capture summary: what a listing selects and sorts by, for every
 * capture, kept in memory so that a sorted or searched listing never
 * parses the records. Built from a snapshot of the captures family on
 * the first call (imports go on meanwhile: their writes are replayed on
 * top), then changed by every commit, duplicate merge, tag/name/comment
 * update and removal right after its batch is written, under the catalog
 * lock: it always holds what the records hold. Costs ~100 bytes per
 * capture plus its name and tags.
 */
struct capture_summary {
	uint64_t id;
	const char *name;  /* bytes, as capture_record.name */
	const char *tags;  /* each NUL-terminated, ntags of them */
	size_t ntags;
	uint64_t file_size;
	uint64_t packets;
	uint64_t import_time_ns;
	int64_t earliest_ts_ns, latest_ts_ns;
};
/* Starts building the summary on a thread of its own, so that the first
 * listing finds it ready (the daemon calls it at start; catalog_free
 * stops and joins it). Call once, from the thread that frees the
 * catalog. Returns 0 or a negative errno. */
int catalog_summary_prepare(struct catalog *cat);
/* Whether s carries tag. */
bool capture_summary_has_tag(const struct capture_summary *s, const char *tag);
/* Calls fn for each capture with an id greater than after_id (0: all), in
 * id order, under a read lock that blocks writers: fn must be quick and
 * must not call into the catalog. Nonzero from fn stops and is returned;
 * -ENOMEM or -EIO when the summary cannot be built. */
typedef int (*catalog_summary_fn)(void *opaque, const struct capture_summary *s);
int catalog_foreach_summary(struct catalog *cat, uint64_t after_id, catalog_summary_fn fn,
			    void *opaque);

/* The record as a JSON object (what `capvault info --json` prints); text
 * fields in their escaped form. NULL only when out of memory. */
json_t *capture_record_to_json(const struct capture_record *rec);
/* A client- or file-system-supplied string (name, path, comment) as a
 * JSON string of its escaped form; json_null() for NULL. NULL only when
 * out of memory (json_string would also fail on bytes that are not UTF-8:
 * this never does). */
json_t *catalog_json_text(const char *s);

/*
 * Removes capture id in one synced batch: its record, tag/time/bysha keys
 * and one reference of its object. When that was the last reference the
 * object record and its object-keyed index entries (pindex_delete_object)
 * go too, *unlink_object is set and sha gets the object's hash: the caller
 * then removes the object file (store_object_remove), after this returns,
 * so a crash in between leaves only an unreferenced object that
 * vault_open cleans. Returns 0, -ENOENT, or a negative errno (eb).
 */
int catalog_remove(struct catalog *cat, uint64_t id, bool *unlink_object, uint8_t sha[32],
		   struct errbuf *eb);

/*
 * catalog_remove, decided by check on the record as it is at that moment:
 * check runs under the catalog lock, so no tag change, rename or duplicate
 * merge lands between the decision and the delete. check returns 0 to
 * delete, a positive value to keep (catalog_remove_if then returns
 * CATALOG_KEPT, with check's reason in eb), or a negative errno.
 */
typedef int (*catalog_check_fn)(void *opaque, const struct capture_record *rec,
				struct errbuf *eb);
int catalog_remove_if(struct catalog *cat, uint64_t id, catalog_check_fn check, void *opaque,
		      bool *unlink_object, uint8_t sha[32], struct errbuf *eb);

/*
 * Called under the catalog lock by catalog_remove when an object lost its
 * last reference (to unlink the object file before any import can commit
 * a new record for it), and by catalog_commit before writing a record (to
 * check the object file is still there: a negative errno refuses the
 * commit with -EAGAIN). Either may be NULL.
 */
struct catalog_object_hooks {
	int (*check)(void *opaque, const uint8_t sha[32]);
	int (*release)(void *opaque, const uint8_t sha[32]);
	/* Also under the lock, when the object that lost its last reference
	 * was remote or both: the remote copy is now an orphan to remove. */
	int (*release_remote)(void *opaque, const uint8_t sha[32]);
	void *opaque;
};
void catalog_set_object_hooks(struct catalog *cat, const struct catalog_object_hooks *hooks);
/* True when a release hook is set: the catalog itself unlinks an object's
 * local file, under its lock, when the last capture goes. Its callers must
 * then not unlink it again after the lock is released: by then an import
 * of the same bytes may have published that file anew and committed a
 * capture for it (a remote-only object, whose local file the hook does
 * not touch, is the plain case). */
bool catalog_releases_objects(struct catalog *cat);

/*
 * Runs fn(opaque) under the catalog lock: no capture is committed or
 * removed and no object file released meanwhile (what a consistent
 * backup of a live store needs). fn must not call back into the catalog's
 * locking functions. Returns what fn returns.
 */
int catalog_quiesce(struct catalog *cat, int (*fn)(void *opaque), void *opaque);

/* Replaces the tags (validated) / name / comment (NULL clears) of capture
 * id in one synced batch. Return 0, -ENOENT, -EINVAL or -EIO (eb). */
int catalog_update_tags(struct catalog *cat, uint64_t id, char *const *tags, size_t ntags,
			struct errbuf *eb);
/* Adds the tags add[] and removes del[] (add validated) of capture id in
 * one synced batch, on the record as it is under the lock: unlike
 * replacing the whole list from a copy read earlier, it keeps a tag that
 * a duplicate or another client added meanwhile. Same returns. */
int catalog_edit_tags(struct catalog *cat, uint64_t id, char *const *add, size_t nadd,
		      char *const *del, size_t ndel, struct errbuf *eb);
int catalog_update_name(struct catalog *cat, uint64_t id, const char *name, struct errbuf *eb);
int catalog_update_comment(struct catalog *cat, uint64_t id, const char *comment,
			   struct errbuf *eb);

/* Writes (refs > 0) or deletes (refs == 0, with the object's index
 * entries) the object record of sha, synced: fsck's repairs. A record
 * that exists keeps its location; a new one is local. */
int catalog_object_put(struct catalog *cat, const uint8_t sha[32], uint64_t size, uint64_t refs,
		       uint64_t objnum, struct errbuf *eb);

/* The object record of sha: 0 with size, refs and objnum, -ENOENT, -EIO. */
int catalog_object_get(struct catalog *cat, const uint8_t sha[32], uint64_t *size,
		       uint64_t *refs, uint64_t *objnum);

/* Where object sha is: 0 with *loc, -ENOENT (no object record) or -EIO.
 * The one question readers and the tier mover ask. */
int catalog_object_location(struct catalog *cat, const uint8_t sha[32],
			    enum catalog_location *loc);

/*
 * Moves object sha from location expect to to, under the catalog lock, in
 * one synced batch (the object record and every capture record of it).
 * -ENOENT when the object has no record any more (pruned meanwhile),
 * -ESTALE when it is not at expect (eb says where it is). When to is
 * CATALOG_REMOTE and the object had a local copy, the object hooks'
 * release unlinks it after the write and before the lock is let go, so no
 * import can find the local file in between and count on it.
 */
int catalog_object_relocate(struct catalog *cat, const uint8_t sha[32],
			    enum catalog_location expect, enum catalog_location to,
			    struct errbuf *eb);

/*
 * What reads of a tiered object's ranges from the object store are
 * checked against (blockdig.h): the chaining states of its SHA-256 after
 * each whole block, or, for objects tiered before them, a digest of each
 * block. They are written before the move that makes the object remote
 * is recorded, whose synced write makes them durable, and removed with
 * the object's last capture; being of the object's bytes, they never
 * change. Kept in meta.
 *
 * catalog_block_states_put records n states from the one after block
 * first_block (a multiple of CATALOG_STATES_PER_KEY; n at most that),
 * catalog_block_digests_put n digests from block first_block's (a
 * multiple of CATALOG_DIGESTS_PER_KEY; n at most that), not synced.
 * catalog_block_states gives the n states after blocks block..block+n-1,
 * catalog_block_digest one block's digest: 0, -ENOENT when one is not
 * recorded, or another negative errno. catalog_block_digests_drop forgets
 * all of both (of an object of size bytes), not synced: for records made
 * from bytes that turned out not to be the object's. States go 64 to a
 * key (2 KiB), as a block's check reads the two around it: a read of a
 * whole object copies 1/32 of its size out of the index.
 */
#define CATALOG_DIGESTS_PER_KEY 1024
#define CATALOG_STATES_PER_KEY 64
int catalog_block_states_put(struct catalog *cat, const uint8_t sha[32], uint64_t first_block,
			     const uint8_t *states, size_t n, struct errbuf *eb);
int catalog_block_digests_put(struct catalog *cat, const uint8_t sha[32], uint64_t first_block,
			      const uint8_t *digests, size_t n, struct errbuf *eb);
int catalog_block_digests_drop(struct catalog *cat, const uint8_t sha[32], uint64_t size,
			       struct errbuf *eb);
/* Whether object sha has any block states or digests recorded (a move of
 * it got under way); a catalog that cannot say counts as yes. */
bool catalog_block_records_any(struct catalog *cat, const uint8_t sha[32]);
int catalog_block_states(struct catalog *cat, const uint8_t sha[32], uint64_t block, size_t n,
			 uint8_t *states);
int catalog_block_digest(struct catalog *cat, const uint8_t sha[32], uint64_t block,
			 uint8_t digest[16]);

/* Calls fn for each object record in sha order: its size, references and
 * location. Nonzero from fn stops and is returned. */
typedef int (*catalog_object_fn)(void *opaque, const uint8_t sha[32], uint64_t size,
				 uint64_t refs, enum catalog_location loc);
int catalog_foreach_object(struct catalog *cat, catalog_object_fn fn, void *opaque);

/*
 * Remote copies waiting to be removed from the object store. When the last
 * capture of a remote or both object goes, the batch that deletes its
 * record also writes a pending removal for it, so the removal survives a
 * restart (the release_remote hook only queues it in memory). fn gets
 * each one in sha order; nonzero from fn stops and is returned.
 *
 * catalog_remote_removed forgets sha's pending removal once it was done
 * (kept false: the remote copy was removed, the catalog naming none) or
 * not wanted (kept true: the object is remote again). Under the lock, and
 * only while the catalog still says so: if the object's last capture went
 * again meanwhile, the new pending removal stays. Returns 0 or a negative
 * errno (eb).
 */
typedef int (*catalog_sha_fn)(void *opaque, const uint8_t sha[32]);
int catalog_foreach_remote_removal(struct catalog *cat, catalog_sha_fn fn, void *opaque);
int catalog_remote_removed(struct catalog *cat, const uint8_t sha[32], bool kept,
			   struct errbuf *eb);

/* The vault's id: 32 hex digits, drawn at random the first time it is
 * asked for and kept in the index (so a backup and its restore share it).
 * It names the vault as owner of an object store prefix (objstore.h).
 * Returns 0 or a negative errno (eb). */
#define CATALOG_VAULT_ID_HEX 33
int catalog_vault_id(struct catalog *cat, char hex[CATALOG_VAULT_ID_HEX], struct errbuf *eb);

/* Totals over all captures. */
struct catalog_totals {
	uint64_t captures;
	uint64_t objects;
	uint64_t object_bytes;
	uint64_t remote_objects;  /* remote or both */
	uint64_t remote_bytes;
	uint64_t local_objects;   /* local or both */
	uint64_t local_bytes;
	uint64_t packets;
	uint64_t index_bytes;
};
int catalog_totals(struct catalog *cat, struct catalog_totals *out);

#endif
