/*
 * ring.h - the io_uring wrapper: every file read and write of capvault
 * goes through here. A ring belongs to one thread.
 *
 * ring_read_stream keeps several large reads in flight and hands the
 * chunks to a callback strictly in file order, so hashing and parsing
 * overlap with the disk. The other calls are synchronous conveniences that
 * handle short reads and writes, -EAGAIN and -EINTR.
 */
#ifndef CAPVAULT_RING_H
#define CAPVAULT_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ring;

/* Default read size and depth for streaming a file. */
#define RING_CHUNK (1u << 20)
#define RING_DEPTH 4

/* Returns 0 or a negative errno (e.g. -ENOSYS without io_uring). */
int ring_new(struct ring **out, unsigned entries);
struct ring *ring_free(struct ring *r);

/* Receives the next chunk of the stream; nonzero stops the stream and is
 * returned by ring_read_stream. */
typedef int (*ring_chunk_fn)(void *opaque, const void *buf, size_t len);

/*
 * Reads fd from its start (regular file: offset 0, `depth` reads of
 * `chunk` bytes in flight) or from its current position (pipe, socket,
 * character device: one read at a time, never a seek) to end of file.
 * Returns 0 at EOF, a negative errno, or what fn returned.
 */
int ring_read_stream(struct ring *r, int fd, size_t chunk, unsigned depth, ring_chunk_fn fn,
		     void *opaque);

/* Alignment of buffers, offsets and lengths for O_DIRECT files. */
#define RING_DIRECT_ALIGN 4096u

/*
 * As ring_read_stream for a regular file, and each chunk fn has taken (fn
 * returned 0) is then written at the same offset to out_fd, which may be
 * opened O_DIRECT: chunk must be a multiple of RING_DIRECT_ALIGN, and the
 * last chunk is written zero-padded to one, so the caller truncates out_fd
 * to *total (the bytes read and handed to fn). Up to depth reads and
 * writes are in flight; a buffer is read into again once written. Returns
 * 0 at EOF, a negative errno (what fn returned, if negative).
 */
int ring_copy_stream(struct ring *r, int in_fd, int out_fd, size_t chunk, unsigned depth,
		     ring_chunk_fn fn, void *opaque, uint64_t *total);

/* Reads exactly len bytes at off unless EOF comes first; returns the number
 * of bytes read or a negative errno. */
ssize_t ring_pread(struct ring *r, int fd, void *buf, size_t len, uint64_t off);
/* Writes all len bytes at off. Returns 0 or a negative errno (-ENOSPC...). */
int ring_pwrite(struct ring *r, int fd, const void *buf, size_t len, uint64_t off);
/* fsync (or fdatasync when datasync) through the ring. */
int ring_fsync(struct ring *r, int fd, bool datasync);
/* Starts writeback of [off, off+len) without waiting for it
 * (sync_file_range SYNC_FILE_RANGE_WRITE), so a later fsync finds most of
 * the data already on its way to the disk. Returns 0 or a negative errno. */
int ring_writeback(struct ring *r, int fd, uint64_t off, uint64_t len);

struct ring_read_req {
	int fd;
	void *buf;
	size_t len;
	uint64_t off;
	ssize_t result; /* bytes read (short only at EOF) or a negative errno */
};

/* Runs n preads, up to the ring's depth at a time, and fills each result.
 * Returns 0, or a negative errno if the ring itself failed. */
int ring_pread_batch(struct ring *r, struct ring_read_req *reqs, size_t n);

/*
 * Event loop. Long-lived requests (a read on an inotify fd or an eventfd)
 * whose completions the caller collects with ring_wait_event, each tagged
 * with a caller-chosen token. They may share a ring with the synchronous
 * calls above: a completion taken by one of those is kept for
 * ring_wait_event.
 */

/* Queues one read of up to len bytes at fd's current position (pipes,
 * eventfd, inotify) and submits it. buf must stay valid until the
 * completion for token has been collected. Returns 0 or a negative errno. */
int ring_queue_read(struct ring *r, int fd, void *buf, size_t len, uint64_t token);

/* Asks the kernel to cancel the outstanding request tagged token; its
 * completion still arrives (usually with -ECANCELED) through
 * ring_wait_event. Returns 0, -ENOENT if there is none, or a negative
 * errno. */
int ring_queue_cancel(struct ring *r, uint64_t token);

/*
 * Waits up to timeout_ms (0: do not wait, negative: forever) for one
 * completion of a queued request and hands out its token and result.
 * Returns 1 when one was delivered, 0 on timeout or signal, or a negative
 * errno when the ring itself failed.
 */
int ring_wait_event(struct ring *r, int timeout_ms, uint64_t *token, int *res);

#endif
