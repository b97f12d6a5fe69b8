/*
 * fdmap.h - a file's bytes handed to a function straight from the page
 * cache, a mapped window at a time, for passes that only read them
 * (hashing): no copy into a buffer, and no more of the file mapped at once
 * than one window, so the resident set does not grow with the file.
 */
#ifndef CAPVAULT_FDMAP_H
#define CAPVAULT_FDMAP_H

#include <stddef.h>
#include <stdint.h>

/* The bytes mapped at once (a multiple of every page size). */
#define FDMAP_WINDOW (4u << 20)

/* Called on each piece in order; a non-zero return stops the walk and is
 * returned. */
typedef int (*fdmap_fn)(void *opaque, const uint8_t *data, size_t len);

/*
 * Hands fd's bytes [off, off + len) to fn, FDMAP_WINDOW (or less) at a
 * time. A file that is shorter than off + len, or shrinks meanwhile (which
 * would raise SIGBUS on a mapped page), gives -EIO instead of a signal:
 * fn must then not rely on having seen the whole range. fn must not
 * longjmp, call fdmap_each, or keep a pointer to data. Returns 0, fn's
 * first non-zero return, or a negative errno.
 */
int fdmap_each(int fd, uint64_t off, uint64_t len, fdmap_fn fn, void *opaque);

#endif
