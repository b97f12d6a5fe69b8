/*
 * store.h - the content-addressed object store (git loose objects are the
 * model): <root>/objects/ab/<sha256 hex> holds the decompressed bytes of a
 * capture, read-only; <root>/tmp/ holds writes in progress, on the same
 * file system so publishing is a link or rename.
 *
 * A writer either copies (hashing as it writes to tmp/) or, when the caller
 * gives up the source file, it lives on the store's file system, we own it
 * and nobody has it open for writing (a read lease proves it), only
 * hashes and publishes the source by hard link. Publishing fsyncs the file,
 * links it to its final name (EEXIST means "already stored") and fsyncs
 * the fan-out folder, so a published object survives power loss.
 */
#ifndef CAPVAULT_STORE_H
#define CAPVAULT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "errbuf.h"

struct ring;
struct store;
struct store_writer;

/* Positive outcome of store_writer_publish: the object was already there. */
#define STORE_EXISTS 1

/* Creates root, objects/ and tmp/ as needed and removes tmp/ leftovers
 * (store_open_flags with STORE_CREATE). Returns 0 or a negative errno (eb
 * names the path). */
int store_open(struct store **out, const char *root, struct errbuf *eb);
/* STORE_KEEP_TMP: leave tmp/ leftovers (for fsck, which reports them).
 * STORE_CREATE: create root (its parent must exist) and objects/ when
 * missing; without it both must exist (-ENOENT). tmp/ is created when
 * missing either way. Whether root is a store at all is the caller's
 * question (vault_open asks it). */
#define STORE_KEEP_TMP 1u
#define STORE_CREATE 2u
int store_open_flags(struct store **out, const char *root, unsigned flags, struct errbuf *eb);
/* Removes the temp files of writes that died (store_tmp_is_ours); leaves
 * everything else in tmp/ alone and never fails on it. Only for the
 * store's one writer: another process's imports in progress live there
 * too (vault_open calls it once it holds the index's lock). */
int store_clean_tmp(struct store *st, struct errbuf *eb);
/* True for the names capvault gives its temp files in tmp/ ("obj-" and
 * "upload-" with mkstemp's six characters). */
bool store_tmp_is_ours(const char *name);
struct store *store_close(struct store *st);
const char *store_root(const struct store *st);

/* "ab/abcdef..." relative to objects/, as 64 lowercase hex digits. */
void sha256_hex(const uint8_t sha[32], char hex[65]);
/* Parses 64 hex digits; returns 0 or -EINVAL. */
int sha256_parse(const char *hex, uint8_t sha[32]);

/*
 * Starts an object. With link_source set, on the store's file system,
 * owned by our effective uid and under our read lease (no one has it open
 * for writing), the writer only hashes and store_writer_publish links
 * link_source; else it copies into tmp/. A linked writer whose lease
 * breaks (someone opened the source for writing) fails its writes,
 * finish or publish with -EAGAIN. Returns 0 or a negative errno.
 */
int store_writer_new(struct store *st, struct ring *ring, const char *link_source,
		     struct store_writer **out, struct errbuf *eb);
/*
 * For a copy: the bytes are the uncompressed file at path, so the writer
 * copies each written range from it in the kernel (copy_file_range) rather
 * than writing the buffer it is handed; store_writer_finish fails with
 * -EAGAIN if the file changed (size, mtime, ctime) meanwhile. Falls back
 * to plain writes where the kernel cannot copy. Returns 0 or -errno.
 */
int store_writer_copy_from(struct store_writer *w, const char *path);
/* Frees the writer; an unpublished temp file is removed. Accepts NULL. */
struct store_writer *store_writer_free(struct store_writer *w);
/* Appends bytes (hashing them). Returns 0 or a negative errno (-ENOSPC). */
int store_writer_write(struct store_writer *w, const void *buf, size_t len, struct errbuf *eb);
/*
 * Same, but the hashing (and the writing of bytes we were given) may run
 * on the writer's own thread after this returns, while the caller goes on
 * with buf (parsing it): buf must stay valid and unchanged until
 * store_writer_wait. The writing may also be done here, before returning,
 * when the writer's thread is the busier. Writes stay in call order.
 * Returns 0 or the negative errno of this write or of an earlier one.
 */
int store_writer_write_async(struct store_writer *w, const void *buf, size_t len,
			     struct errbuf *eb);
/* Waits until the writes handed over are done. Returns 0 or the negative
 * errno of the first that failed (eb says why, as store_writer_write's). */
int store_writer_wait(struct store_writer *w, struct errbuf *eb);
/* Ends the object (waiting for asynchronous writes): fills sha256 and size. */
int store_writer_finish(struct store_writer *w, uint8_t sha256[32], uint64_t *size,
			struct errbuf *eb);
/* Makes the finished object durable under its name. Returns 0, STORE_EXISTS,
 * or a negative errno. */
int store_writer_publish(struct store_writer *w, struct errbuf *eb);
/* True when the writer linked rather than copied. */
bool store_writer_linked(const struct store_writer *w);
/* False when the writer links or copies a file (opened by path) other
 * than inode ino of dev: the path was replaced after the caller opened it,
 * and the bytes the caller reads are not the ones that would be stored. */
bool store_writer_source_is(const struct store_writer *w, dev_t dev, ino_t ino);

/* Path of an object into buf. Returns 0 or -ENAMETOOLONG. */
int store_object_path(const struct store *st, const uint8_t sha[32], char *buf, size_t len);
/* Opens an object read-only; returns an fd or a negative errno. */
int store_object_open(const struct store *st, const uint8_t sha[32]);
/* Removes an object file and fsyncs its folder; -ENOENT if absent. */
int store_object_remove(const struct store *st, const uint8_t sha[32]);

/*
 * Moves the object aside, into quarantine/<sha256 hex>.<n> under the root
 * (n: 0 the first time the name is quarantined, then 1, ...): a corrupt
 * object (its bytes do not hash to its name) is kept as evidence but no
 * import dedups onto it, and storing the same bytes again publishes a
 * good object. Returns 0, -ENOENT (no such object) or a negative errno
 * (eb, which may be NULL).
 */
int store_object_quarantine(const struct store *st, const uint8_t sha[32], struct errbuf *eb);
/* True when an object of that name was ever quarantined. */
bool store_object_quarantined(const struct store *st, const uint8_t sha[32]);

/* Calls fn for every object file (by name); nonzero from fn stops. */
typedef int (*store_object_fn)(void *opaque, const uint8_t sha[32], uint64_t size);
int store_foreach_object(const struct store *st, store_object_fn fn, void *opaque);

/* Calls fn for every entry of tmp/ (by name); nonzero from fn stops. */
typedef int (*store_tmp_fn)(void *opaque, const char *name);
int store_foreach_tmp(const struct store *st, store_tmp_fn fn, void *opaque);
/* Removes one tmp/ entry. Returns 0 or a negative errno. */
int store_tmp_remove(const struct store *st, const char *name);

/* SHA-256 of the bytes fd reads to its end, through ring (the object
 * name those bytes would have). Returns 0 or a negative errno. */
int store_hash_fd(struct ring *ring, int fd, uint8_t sha[32]);

/* Free bytes and total bytes of the store's file system. */
int store_space(const struct store *st, uint64_t *free_bytes, uint64_t *total_bytes);

#endif
