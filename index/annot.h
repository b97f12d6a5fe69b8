/*
 * annot.h - what people attach to a capture besides its tags and
 * comment: annotations (a text on one frame, as CloudShark's annotations
 * API and the viewer make them) and a TLS key log (an upload's keylog
 * part, for decoding and for a pcapng Decryption Secrets Block).
 *
 * cat is the catalog of db. Both live in the catalog's database (family "meta", keys
 * "annot:" id(u64 BE) frame(u64 BE) -> JSON {"text","created_ns"} and
 * "keylog:" id(u64 BE) -> the key log's bytes), so a backup holds them
 * and catalog_remove deletes them in the batch that deletes the capture
 * (annot_batch_delete_capture). A write checks, under the catalog lock,
 * that the capture still exists: nothing is left for a deleted one.
 */
#ifndef CAPVAULT_ANNOT_H
#define CAPVAULT_ANNOT_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "errbuf.h"

struct catalog;

/* Longest annotation text, and key log, taken (bytes). */
#define ANNOT_TEXT_MAX 4096u
#define ANNOT_KEYLOG_MAX (1u << 20)

struct annotation {
	uint64_t frame;      /* 1-based, in file order (Wireshark's frame number) */
	char *text;          /* any bytes but NUL */
	uint64_t created_ns; /* CLOCK_REALTIME */
};

/* Sets (text not empty) or removes (text NULL or "") the annotation of
 * frame (>= 1) of capture id, synced. Returns 0, -ENOENT (no such
 * capture), -EINVAL (frame 0, text too long) or -EIO (eb). */
int annot_set(struct catalog *cat, struct db *db, uint64_t id, uint64_t frame, const char *text,
	      struct errbuf *eb);
/* The annotations of capture id by frame (none: *out NULL, *n 0).
 * Returns 0, -ENOMEM or -EIO. */
int annot_list(struct db *db, uint64_t id, struct annotation **out, size_t *n);
void annot_list_free(struct annotation *a, size_t n);

/* Stores (len > 0) or removes (len 0) the TLS key log of capture id,
 * synced. Returns 0, -ENOENT, -EFBIG (over ANNOT_KEYLOG_MAX) or -EIO. */
int annot_keylog_put(struct catalog *cat, struct db *db, uint64_t id, const void *data, size_t len,
		     struct errbuf *eb);
/* The key log of capture id (caller frees): 0, -ENOENT (none), -EIO. */
int annot_keylog_get(struct db *db, uint64_t id, char **data, size_t *len);

/* Adds to b the deletion of everything stored here for capture id. */
void annot_batch_delete_capture(struct db_batch *b, uint64_t id);

#endif
