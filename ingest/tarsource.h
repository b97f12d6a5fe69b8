/*
 * tarsource.h - a tar archive read as one sequential stream (a file,
 * standard input, a pipe or a tape device), member by member, with no
 * seek and nothing unpacked to disk. Plain, gzip, zstd, bzip2 and xz
 * compressed; ustar, pax, GNU and v7 headers.
 *
 * The caller walks the members with tarsource_next, asks
 * tarsource_head whether the current one is a capture (by its first
 * bytes, never its name) and then takes its data block by block with
 * tarsource_data, feeding an import pass. This is the only file that
 * includes <archive.h>.
 */
#ifndef CAPVAULT_TARSOURCE_H
#define CAPVAULT_TARSOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

struct tarsource;

/* Read size for files and pipes, and the default block for tape
 * devices (tar's 20 x 512 bytes). */
#define TARSOURCE_READ_SIZE (1u << 20)
#define TARSOURCE_TAPE_BLOCK 10240u

struct tar_member {
	const char *name;   /* as in the archive, valid until the next tarsource_next */
	uint64_t size;      /* from the header */
	/* NULL for a regular file; else what the member is ("a symbolic
	 * link", "a device", "a FIFO"...): it has no data to read. */
	const char *not_file;
};

/*
 * Opens path ("-": standard input, which is then not closed) for reading
 * as a tar stream. Each read(2) asks for block_size bytes; 0 picks
 * TARSOURCE_TAPE_BLOCK for a character device and TARSOURCE_READ_SIZE
 * otherwise. Returns 0 or a negative errno (eb says why).
 */
int tarsource_open(struct tarsource **out, const char *path, size_t block_size,
		   struct errbuf *eb);
struct tarsource *tarsource_free(struct tarsource *ts);

/*
 * Moves to the next member that is a file, or a symlink, FIFO, socket or
 * device (m->not_file says which; it has no data); directories and hard
 * links are passed over, and unread data of the current member is read
 * past. Returns
 * 1 with *m filled, 0 at the end of the archive, or a negative errno when
 * the archive itself is unreadable from here on (eb says why).
 */
int tarsource_next(struct tarsource *ts, struct tar_member *m, struct errbuf *eb);

/*
 * Reads the first bytes of the current member (up to 64 KiB, enough to
 * see through gzip or zstd) and says whether they start a capture:
 * returns 1 (a pcap or pcapng, maybe compressed), 0 (not a capture), or a
 * negative errno (-EIO: the member's data is unreadable). *head and *len
 * are the bytes read so far; they belong to the member's data and must be
 * fed before what tarsource_data returns next.
 */
int tarsource_head(struct tarsource *ts, const void **head, size_t *len, struct errbuf *eb);

/* Next data block of the current member: returns 1 with buf/len, 0 at the
 * member's end, or a negative errno (eb says why). */
int tarsource_data(struct tarsource *ts, const void **buf, size_t *len, struct errbuf *eb);

/* Whether the archive broke while a member's data was read (the error
 * was returned for that member; tarsource_next fails from then on). */
bool tarsource_data_broken(const struct tarsource *ts);

/* Bytes read from the underlying file so far (compressed, if it is). */
uint64_t tarsource_bytes_read(const struct tarsource *ts);

/*
 * Whether the first len bytes of a member (the whole member when at_end)
 * start a capture: 1 yes, 0 no, -EAGAIN when more bytes are needed.
 * Compressed data is decompressed far enough to see the capture magic.
 */
int tarsource_sniff(const void *buf, size_t len, bool at_end);

/* Whether the regular file at path is a tar archive (maybe compressed):
 * 1 yes, 0 no (or unreadable: the import that follows says why), or
 * -ENOMEM. */
int tarsource_probe(const char *path);

#endif
