/*
 * ring.c - see ring.h. The only file that includes <liburing.h>.
 *
 * Streaming reads keep up to `depth` reads of `chunk` bytes in flight and
 * deliver completed chunks strictly in file order; a short read in the
 * middle of a regular file (possible on network file systems) is finished
 * by a follow-up read of the remainder before delivery.
 */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "monoclock.h"

struct ring {
	struct io_uring uring;
	unsigned entries;
	struct ring_event *events; /* outstanding event-loop requests */
};

static void ring_events_free(struct ring *r);

/*
 * Test hook (tests/crash/faults.sh): CAPVAULT_FAULT="write:N[:MARKER]" or
 * "fsync:N[:MARKER]" makes the process's Nth ring_pwrite or ring_fsync
 * fail with -EIO without doing it, and creates the file MARKER when it
 * does, so a test can prove that a failed write or fsync is reported and
 * loses nothing. "pause:N:MARKER" (tests/crash/fs_faults.sh) instead
 * holds the Nth chunk ring_read_stream delivers until the test removes
 * MARKER (at most FAULT_PAUSE_MAX_S), so it can change the source in the
 * middle of an import. Read once, at the first ring_new; unset, each
 * write, fsync and chunk costs one relaxed load.
 */
enum { FAULT_NONE, FAULT_WRITE, FAULT_FSYNC, FAULT_PAUSE };
#define FAULT_PAUSE_MAX_S 60
static struct {
	int op;
	unsigned long n;
	char marker[256];
	atomic_ulong count;
} fault;
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;

static void fault_init(void)
{
	const char *spec = getenv("CAPVAULT_FAULT");
	char *end;
	if (!spec)
		return;
	if (strncmp(spec, "write:", 6) == 0)
		fault.op = FAULT_WRITE;
	else if (strncmp(spec, "fsync:", 6) == 0)
		fault.op = FAULT_FSYNC;
	else if (strncmp(spec, "pause:", 6) == 0)
		fault.op = FAULT_PAUSE;
	else
		return;
	fault.n = strtoul(spec + 6, &end, 10);
	if (*end == ':')
		snprintf(fault.marker, sizeof(fault.marker), "%s", end + 1);
}

/* True when this call of op is the one to fail. */
static bool fault_fires(int op)
{
	if (fault.op != op || atomic_fetch_add(&fault.count, 1) + 1 != fault.n)
		return false;
	if (fault.marker[0]) {
		int fd = open(fault.marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
	}
	return true;
}

/* The pause hook: waits while the marker it created exists. */
static void fault_pause(void)
{
	if (!fault_fires(FAULT_PAUSE))
		return;
	const struct timespec tick = {.tv_nsec = 10 * 1000000};
	for (int i = 0; i < FAULT_PAUSE_MAX_S * 100 && access(fault.marker, F_OK) == 0; i++)
		nanosleep(&tick, NULL);
}

int ring_new(struct ring **out, unsigned entries)
{
	pthread_once(&fault_once, fault_init);
	struct ring *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	int err = io_uring_queue_init(entries, &r->uring, 0);
	if (err < 0) {
		free(r);
		return err;
	}
	r->entries = entries;
	*out = r;
	return 0;
}

struct ring *ring_free(struct ring *r)
{
	if (r) {
		io_uring_queue_exit(&r->uring);
		ring_events_free(r);
		free(r);
	}
	return NULL;
}

static struct io_uring_sqe *ring_get_sqe(struct ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
	if (!sqe) {
		io_uring_submit(&r->uring);
		sqe = io_uring_get_sqe(&r->uring);
	}
	return sqe;
}

/*
 * Every request carries a pointer to a ring_op as user_data, so that a
 * synchronous call made while streaming reads are in flight on the same
 * ring (the store writes from inside the read callback) takes only its own
 * completion; the others are recorded in their ops for their owner.
 */
struct ring_op {
	bool completed;
	int res;
};

/* Takes one completion (waiting if wait) and records it in its op. */
static int ring_reap(struct ring *r, bool wait)
{
	struct io_uring_cqe *cqe;
	int err = wait ? io_uring_wait_cqe(&r->uring, &cqe) : io_uring_peek_cqe(&r->uring, &cqe);
	if (err < 0)
		return err;
	struct ring_op *op = io_uring_cqe_get_data(cqe);
	if (op) {
		op->completed = true;
		op->res = cqe->res;
	}
	io_uring_cqe_seen(&r->uring, cqe);
	return 0;
}

/* Submits the prepared SQE (tagged with op) and waits for its result. */
static int ring_run_one(struct ring *r, struct io_uring_sqe *sqe)
{
	struct ring_op op = { 0 };
	io_uring_sqe_set_data(sqe, &op);
	int err = io_uring_submit(&r->uring);
	if (err < 0)
		return err;
	while (!op.completed) {
		err = ring_reap(r, true);
		if (err < 0 && err != -EINTR)
			return err;
	}
	return op.res;
}

ssize_t ring_pread(struct ring *r, int fd, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	while (done < len) {
		struct io_uring_sqe *sqe = ring_get_sqe(r);
		if (!sqe)
			return -EBUSY;
		unsigned n = len - done > (1u << 30) ? (1u << 30) : (unsigned)(len - done);
		io_uring_prep_read(sqe, fd, (char *)buf + done, n, off + done);
		int res = ring_run_one(r, sqe);
		if (res == -EAGAIN || res == -EINTR)
			continue;
		if (res < 0)
			return res;
		if (res == 0)
			break;
		done += (size_t)res;
	}
	return (ssize_t)done;
}

int ring_pwrite(struct ring *r, int fd, const void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	if (fault_fires(FAULT_WRITE))
		return -EIO;
	while (done < len) {
		struct io_uring_sqe *sqe = ring_get_sqe(r);
		if (!sqe)
			return -EBUSY;
		unsigned n = len - done > (1u << 30) ? (1u << 30) : (unsigned)(len - done);
		io_uring_prep_write(sqe, fd, (const char *)buf + done, n, off + done);
		int res = ring_run_one(r, sqe);
		if (res == -EAGAIN || res == -EINTR)
			continue;
		if (res < 0)
			return res;
		if (res == 0)
			return -EIO;
		done += (size_t)res;
	}
	return 0;
}

int ring_fsync(struct ring *r, int fd, bool datasync)
{
	if (fault_fires(FAULT_FSYNC))
		return -EIO;
	for (;;) {
		struct io_uring_sqe *sqe = ring_get_sqe(r);
		if (!sqe)
			return -EBUSY;
		io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
		int res = ring_run_one(r, sqe);
		if (res != -EINTR && res != -EAGAIN)
			return res < 0 ? res : 0;
	}
}

int ring_writeback(struct ring *r, int fd, uint64_t off, uint64_t len)
{
	struct io_uring_sqe *sqe = ring_get_sqe(r);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_sync_file_range(sqe, fd, (unsigned)len, off, SYNC_FILE_RANGE_WRITE);
	int res = ring_run_one(r, sqe);
	return res < 0 ? res : 0;
}

struct stream_slot {
	struct ring_op op; /* the in-flight read's completion */
	uint8_t *buf;
	size_t filled;  /* bytes read so far into buf */
	size_t want;    /* bytes asked for */
	uint64_t off;   /* file offset of buf[0] */
	bool busy;      /* a read is in flight */
	bool done;      /* complete (filled == want, or EOF reached) */
	bool eof;       /* the read returned 0 */
	int err;
};

struct stream {
	struct ring *r;
	int fd;
	bool seekable;
	size_t chunk;
	unsigned depth;
	struct stream_slot *slots;
	uint64_t next_off;  /* next offset to request */
	unsigned head;      /* slot to deliver next */
	bool eof_seen;
	unsigned inflight;
};

static int stream_submit(struct stream *s, struct stream_slot *slot)
{
	struct io_uring_sqe *sqe = ring_get_sqe(s->r);
	if (!sqe)
		return -EBUSY;
	/* Pipes and devices read at the current position (offset -1). */
	uint64_t off = s->seekable ? slot->off + slot->filled : (uint64_t)-1;
	io_uring_prep_read(sqe, s->fd, slot->buf + slot->filled, (unsigned)(slot->want - slot->filled),
			   off);
	io_uring_sqe_set_data(sqe, &slot->op);
	slot->op.completed = false;
	slot->busy = true;
	s->inflight++;
	return 0;
}

static int stream_start_slot(struct stream *s, struct stream_slot *slot)
{
	slot->off = s->next_off;
	slot->filled = 0;
	slot->want = s->chunk;
	slot->done = slot->eof = false;
	slot->err = 0;
	s->next_off += s->chunk;
	return stream_submit(s, slot);
}

/* Handles one completion: finished, EOF, error, or resubmit a short read. */
static int stream_complete(struct stream *s, struct stream_slot *slot)
{
	int res = slot->op.res;
	slot->op.completed = false;
	slot->busy = false;
	s->inflight--;
	if (res == -EAGAIN || res == -EINTR)
		return stream_submit(s, slot);
	if (res < 0) {
		slot->err = res;
		slot->done = true;
		return 0;
	}
	if (res == 0) {
		slot->eof = slot->done = true;
		return 0;
	}
	slot->filled += (size_t)res;
	/* A pipe delivers what it has: hand it on rather than wait to fill. */
	if (slot->filled == slot->want || !s->seekable)
		slot->done = true;
	else
		return stream_submit(s, slot);
	return 0;
}

static bool stream_any_completed(const struct stream *s)
{
	for (unsigned i = 0; i < s->depth; i++)
		if (s->slots[i].busy && s->slots[i].op.completed)
			return true;
	return false;
}

/* Collects completions (a synchronous call may have collected some
 * already) and handles every completed slot. */
static int stream_reap(struct stream *s)
{
	int err = io_uring_submit(&s->r->uring);
	if (err < 0 && err != -EINTR && err != -EBUSY)
		return err;
	if (!stream_any_completed(s)) {
		err = ring_reap(s->r, true);
		if (err < 0 && err != -EINTR)
			return err;
	}
	while (ring_reap(s->r, false) == 0)
		;
	for (unsigned i = 0; i < s->depth; i++) {
		struct stream_slot *slot = &s->slots[i];
		if (slot->busy && slot->op.completed && (err = stream_complete(s, slot)) < 0)
			return err;
	}
	return 0;
}

/* Delivers completed slots in order; refills them while not at EOF. */
static int stream_deliver(struct stream *s, ring_chunk_fn fn, void *opaque)
{
	for (;;) {
		struct stream_slot *slot = &s->slots[s->head];
		if (slot->busy || !slot->done)
			return 0;
		if (slot->err)
			return slot->err;
		if (slot->filled > 0) {
			fault_pause();
			int err = fn(opaque, slot->buf, slot->filled);
			if (err)
				return err;
		}
		if (slot->eof || (s->seekable && slot->filled < slot->want))
			s->eof_seen = true;
		slot->done = false;
		if (!s->eof_seen) {
			int err = s->seekable ? stream_start_slot(s, slot) : 0;
			if (err)
				return err;
		}
		s->head = (s->head + 1) % s->depth;
		if (!s->seekable && !s->eof_seen) {
			int err = stream_start_slot(s, &s->slots[s->head]);
			if (err)
				return err;
		}
	}
}

static void stream_drain(struct stream *s)
{
	/* stream_deliver may have refilled slots before another reached EOF:
	 * their reads are prepared but not yet submitted, and waiting for
	 * them without submitting would wait forever. */
	int err = io_uring_submit(&s->r->uring);
	if (err < 0 && err != -EINTR && err != -EBUSY)
		return;
	for (unsigned i = 0; i < s->depth; i++) {
		struct stream_slot *slot = &s->slots[i];
		while (slot->busy && !slot->op.completed) {
			if (ring_reap(s->r, true) < 0)
				return;
		}
		if (slot->busy) {
			slot->busy = false;
			s->inflight--;
		}
	}
}

static int stream_run(struct stream *s, ring_chunk_fn fn, void *opaque)
{
	unsigned initial = s->seekable ? s->depth : 1;
	for (unsigned i = 0; i < initial; i++) {
		int err = stream_start_slot(s, &s->slots[i]);
		if (err)
			return err;
	}
	while (!s->eof_seen || s->inflight > 0) {
		if (s->eof_seen && s->inflight > 0) {
			stream_drain(s); /* reads past EOF: nothing to deliver */
			break;
		}
		int err = stream_reap(s);
		if (err)
			return err;
		err = stream_deliver(s, fn, opaque);
		if (err)
			return err;
	}
	return 0;
}

int ring_read_stream(struct ring *r, int fd, size_t chunk, unsigned depth, ring_chunk_fn fn,
		     void *opaque)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (depth == 0 || depth > r->entries)
		depth = r->entries;
	if (chunk == 0 || chunk > (1u << 30))
		chunk = RING_CHUNK;
	struct stream s = {
		.r = r, .fd = fd, .seekable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode),
		.chunk = chunk, .depth = depth,
	};
	s.slots = calloc(depth, sizeof(*s.slots));
	if (!s.slots)
		return -ENOMEM;
	int err = 0;
	for (unsigned i = 0; i < depth && !err; i++) {
		s.slots[i].buf = aligned_alloc(4096, chunk);
		if (!s.slots[i].buf)
			err = -ENOMEM;
	}
	if (!err)
		err = stream_run(&s, fn, opaque);
	stream_drain(&s);
	for (unsigned i = 0; i < depth; i++)
		free(s.slots[i].buf);
	free(s.slots);
	return err;
}

/* ---- ring_copy_stream: read, hand on, write the same bytes elsewhere ---- */

enum copy_state { COPY_IDLE, COPY_READING, COPY_READ, COPY_WRITING };

struct copy_slot {
	struct ring_op op;
	uint8_t *buf;
	uint64_t off;      /* file offset of buf[0] */
	size_t filled;     /* bytes read */
	size_t padded;     /* bytes to write: filled rounded up to RING_DIRECT_ALIGN */
	size_t written;
	enum copy_state state;
	bool busy;         /* a request is in flight */
};

struct copy {
	struct ring *r;
	int in_fd, out_fd;
	size_t chunk;
	unsigned depth;
	struct copy_slot *slots;
	uint64_t next_off;    /* next offset to read */
	uint64_t deliver_off; /* next offset to hand to fn */
	bool eof_seen;        /* a short chunk was delivered: read no further */
	unsigned inflight;
};

static int copy_submit(struct copy *c, struct copy_slot *slot)
{
	struct io_uring_sqe *sqe = ring_get_sqe(c->r);
	if (!sqe)
		return -EBUSY;
	if (slot->state == COPY_READING)
		io_uring_prep_read(sqe, c->in_fd, slot->buf + slot->filled,
				   (unsigned)(c->chunk - slot->filled), slot->off + slot->filled);
	else
		io_uring_prep_write(sqe, c->out_fd, slot->buf + slot->written,
				    (unsigned)(slot->padded - slot->written), slot->off + slot->written);
	io_uring_sqe_set_data(sqe, &slot->op);
	slot->op.completed = false;
	slot->busy = true;
	c->inflight++;
	return 0;
}

static int copy_start_read(struct copy *c, struct copy_slot *slot)
{
	if (c->eof_seen) {
		slot->state = COPY_IDLE;
		return 0;
	}
	slot->off = c->next_off;
	c->next_off += c->chunk;
	slot->filled = slot->written = 0;
	slot->state = COPY_READING;
	return copy_submit(c, slot);
}

/* Handles a completed read or write of slot. */
static int copy_complete(struct copy *c, struct copy_slot *slot)
{
	int res = slot->op.res;
	slot->op.completed = false;
	slot->busy = false;
	c->inflight--;
	if (res == -EAGAIN || res == -EINTR)
		return copy_submit(c, slot);
	if (res < 0)
		return res;
	if (slot->state == COPY_READING) {
		slot->filled += (size_t)res;
		if (res > 0 && slot->filled < c->chunk)
			return copy_submit(c, slot);
		slot->state = COPY_READ;
		return 0;
	}
	if (res == 0)
		return -EIO;
	slot->written += (size_t)res;
	return slot->written < slot->padded ? copy_submit(c, slot) : copy_start_read(c, slot);
}

/* Hands the next chunk in file order to fn, if it has been read, and
 * starts its write. Returns 1 when it did, 0 when it is not there yet. */
static int copy_deliver(struct copy *c, ring_chunk_fn fn, void *opaque, uint64_t *total)
{
	for (unsigned i = 0; i < c->depth; i++) {
		struct copy_slot *slot = &c->slots[i];
		if (slot->state != COPY_READ || slot->off != c->deliver_off)
			continue;
		if (slot->filled < c->chunk)
			c->eof_seen = true;
		if (slot->filled == 0) {
			slot->state = COPY_IDLE;
			return 1;
		}
		int err = fn(opaque, slot->buf, slot->filled);
		if (err)
			return err < 0 ? err : -ECANCELED;
		if (fault_fires(FAULT_WRITE))
			return -EIO;
		*total += slot->filled;
		c->deliver_off += slot->filled;
		slot->padded = (slot->filled + RING_DIRECT_ALIGN - 1) & ~(size_t)(RING_DIRECT_ALIGN - 1);
		memset(slot->buf + slot->filled, 0, slot->padded - slot->filled);
		slot->state = COPY_WRITING;
		err = copy_submit(c, slot);
		return err ? err : 1;
	}
	return 0;
}

static int copy_run(struct copy *c, ring_chunk_fn fn, void *opaque, uint64_t *total)
{
	for (unsigned i = 0; i < c->depth; i++) {
		int err = copy_start_read(c, &c->slots[i]);
		if (err)
			return err;
	}
	for (;;) {
		int d;
		while ((d = copy_deliver(c, fn, opaque, total)) == 1)
			;
		if (d < 0)
			return d;
		if (c->inflight == 0)
			return 0; /* everything delivered and written */
		int err = io_uring_submit(&c->r->uring);
		if (err < 0 && err != -EINTR && err != -EBUSY)
			return err;
		err = ring_reap(c->r, true);
		if (err < 0 && err != -EINTR)
			return err;
		while (ring_reap(c->r, false) == 0)
			;
		for (unsigned i = 0; i < c->depth; i++) {
			struct copy_slot *slot = &c->slots[i];
			if (slot->busy && slot->op.completed && (err = copy_complete(c, slot)) < 0)
				return err;
		}
	}
}

/* Waits for every request still in flight: their buffers are freed next.
 * False when the ring failed first: the buffers must then stay. */
static bool copy_drain(struct copy *c)
{
	for (unsigned i = 0; i < c->depth; i++) {
		struct copy_slot *slot = &c->slots[i];
		while (slot->busy && !slot->op.completed) {
			int err = io_uring_submit(&c->r->uring);
			if (err < 0 && err != -EINTR && err != -EAGAIN && err != -EBUSY)
				return false;
			err = ring_reap(c->r, true);
			if (err < 0 && err != -EINTR && err != -EAGAIN)
				return false;
		}
	}
	return true;
}

int ring_copy_stream(struct ring *r, int in_fd, int out_fd, size_t chunk, unsigned depth,
		     ring_chunk_fn fn, void *opaque, uint64_t *total)
{
	*total = 0;
	if (depth == 0 || depth > r->entries)
		depth = r->entries;
	if (chunk == 0 || chunk > (1u << 30) || chunk % RING_DIRECT_ALIGN)
		return -EINVAL;
	struct copy c = { .r = r, .in_fd = in_fd, .out_fd = out_fd, .chunk = chunk, .depth = depth };
	c.slots = calloc(depth, sizeof(*c.slots));
	if (!c.slots)
		return -ENOMEM;
	int err = 0;
	for (unsigned i = 0; i < depth && !err; i++) {
		c.slots[i].buf = aligned_alloc(RING_DIRECT_ALIGN, chunk);
		if (!c.slots[i].buf)
			err = -ENOMEM;
	}
	if (!err)
		err = copy_run(&c, fn, opaque, total);
	if (!copy_drain(&c))
		return err ? err : -EIO; /* the kernel may still fill the buffers: kept */
	for (unsigned i = 0; i < depth; i++)
		free(c.slots[i].buf);
	free(c.slots);
	return err;
}

int ring_pread_batch(struct ring *r, struct ring_read_req *reqs, size_t n)
{
	struct ring_op *ops = calloc(n ? n : 1, sizeof(*ops));
	size_t next = 0, inflight = 0, collected = 0;
	if (!ops)
		return -ENOMEM;
	while (collected < n) {
		while (next < n && inflight < r->entries) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
			if (!sqe)
				break;
			io_uring_prep_read(sqe, reqs[next].fd, reqs[next].buf, (unsigned)reqs[next].len,
					   reqs[next].off);
			io_uring_sqe_set_data(sqe, &ops[next]);
			next++;
			inflight++;
		}
		int err = io_uring_submit(&r->uring);
		if (err >= 0 || err == -EINTR)
			err = ring_reap(r, true);
		if (err < 0 && err != -EINTR) {
			free(ops); /* only on a broken ring: nothing is in flight we can wait for */
			return err;
		}
		while (ring_reap(r, false) == 0)
			;
		for (size_t i = collected; i < next && ops[i].completed; i++) {
			reqs[i].result = ops[i].res;
			collected++;
			inflight--;
		}
	}
	free(ops);
	/* Finish short reads (rare: network file systems) synchronously. */
	for (size_t i = 0; i < n; i++) {
		if (reqs[i].result >= 0 && (size_t)reqs[i].result < reqs[i].len) {
			ssize_t more = ring_pread(r, reqs[i].fd, (char *)reqs[i].buf + reqs[i].result,
						  reqs[i].len - (size_t)reqs[i].result,
						  reqs[i].off + (uint64_t)reqs[i].result);
			reqs[i].result = more < 0 ? more : reqs[i].result + more;
		}
	}
	return 0;
}

/*
 * Event-loop requests carry a ring_event, whose first member is the same
 * ring_op every request carries, so ring_reap (called by a synchronous call
 * or by ring_wait_event) records their completions like any other; the
 * outstanding ones are listed in the ring until ring_wait_event hands them
 * out.
 */
struct ring_event {
	struct ring_op op;
	uint64_t token;
	struct ring_event *next;
};

static void ring_events_free(struct ring *r)
{
	while (r->events) {
		struct ring_event *ev = r->events;
		r->events = ev->next;
		free(ev);
	}
}

int ring_queue_read(struct ring *r, int fd, void *buf, size_t len, uint64_t token)
{
	if (len > (1u << 30))
		return -EINVAL;
	struct io_uring_sqe *sqe = ring_get_sqe(r);
	if (!sqe)
		return -EBUSY;
	struct ring_event *ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->token = token;
	/* Offset -1: read at the current position, as fds without one need. */
	io_uring_prep_read(sqe, fd, buf, (unsigned)len, (uint64_t)-1);
	io_uring_sqe_set_data(sqe, &ev->op);
	ev->next = r->events;
	r->events = ev;
	int err = io_uring_submit(&r->uring);
	return err < 0 && err != -EBUSY ? err : 0; /* -EBUSY: submitted with the next call */
}

int ring_queue_cancel(struct ring *r, uint64_t token)
{
	struct ring_event *ev = r->events;
	while (ev && (ev->token != token || ev->op.completed))
		ev = ev->next;
	if (!ev)
		return -ENOENT;
	struct io_uring_sqe *sqe = ring_get_sqe(r);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel(sqe, &ev->op, 0);
	/* No op: the cancel's own result is not interesting, the target's is. */
	io_uring_sqe_set_data(sqe, NULL);
	int err = io_uring_submit(&r->uring);
	return err < 0 && err != -EBUSY ? err : 0;
}

/* Unlinks the oldest completed event, or returns NULL. */
static struct ring_event *ring_event_take(struct ring *r)
{
	struct ring_event **found = NULL;
	for (struct ring_event **l = &r->events; *l; l = &(*l)->next)
		if ((*l)->op.completed)
			found = l; /* the list is newest first: keep the last */
	if (!found)
		return NULL;
	struct ring_event *ev = *found;
	*found = ev->next;
	return ev;
}

/* Waits until a completion is there (not taking it) or timeout_ms passed. */
static int ring_wait_any(struct ring *r, int timeout_ms)
{
	struct io_uring_cqe *cqe;
	int err = io_uring_submit(&r->uring);
	if (err < 0 && err != -EINTR && err != -EAGAIN && err != -EBUSY)
		return err;
	if (timeout_ms == 0)
		return io_uring_peek_cqe(&r->uring, &cqe);
	if (timeout_ms < 0)
		return io_uring_wait_cqe(&r->uring, &cqe);
	struct __kernel_timespec ts = {
		.tv_sec = timeout_ms / 1000,
		.tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
	};
	return io_uring_wait_cqe_timeout(&r->uring, &cqe, &ts);
}

int ring_wait_event(struct ring *r, int timeout_ms, uint64_t *token, int *res)
{
	int64_t deadline = timeout_ms > 0 ? (int64_t)mono_ms() + timeout_ms : 0;
	for (;;) {
		struct ring_event *ev = ring_event_take(r);
		if (ev) {
			*token = ev->token;
			*res = ev->op.res;
			free(ev);
			return 1;
		}
		int left = timeout_ms;
		if (timeout_ms > 0) {
			int64_t now = (int64_t)mono_ms();
			left = now < deadline ? (int)(deadline - now) : 0;
		}
		int err = ring_wait_any(r, left);
		if (err == -ETIME || err == -EAGAIN || err == -EINTR)
			return 0;
		if (err < 0)
			return err;
		while (ring_reap(r, false) == 0)
			;
	}
}
