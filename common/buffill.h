/*
 * buffill.h - copying bytes into a fixed buffer that is flushed each time
 * it fills: the write-behind buffers of capture writers, spills and the
 * import's gather buffer.
 */
#ifndef CAPVAULT_BUFFILL_H
#define CAPVAULT_BUFFILL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Called with the full buffer; it must empty it (set *used to 0, or
 * hand the bytes on). Returns 0 or a negative errno. */
typedef int (*buf_flush_fn)(void *opaque);

/* Appends len bytes of data to buf (cap bytes, *used of them taken),
 * flushing whenever it is full. Returns 0 or flush's first error. */
static inline int buf_fill(uint8_t *buf, size_t cap, size_t *used, const void *data, size_t len,
			   buf_flush_fn flush, void *opaque)
{
	const uint8_t *p = data;
	while (len > 0) {
		size_t n = cap - *used < len ? cap - *used : len;
		memcpy(buf + *used, p, n);
		*used += n;
		p += n;
		len -= n;
		if (*used == cap) {
			int err = flush(opaque);
			if (err)
				return err;
		}
	}
	return 0;
}

#endif
