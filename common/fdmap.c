/*
 * fdmap.c - see fdmap.h.
 *
 * A mapped page whose file was cut short meanwhile raises SIGBUS on
 * access. The handler jumps back into the walk of the thread it hit when
 * the fault is in that walk's window (thread-local); any other SIGBUS gets
 * the default action, as without the handler. A file that cannot be
 * mapped (a file system without mmap) is read into a buffer instead.
 */
#include "fdmap.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdio.h"

/* This thread's walk: where to jump back to, and the window mapped now. */
static __thread struct {
	sigjmp_buf *jump;
	const uint8_t *volatile base;
	volatile size_t span;
} walk_now;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	const uint8_t *at = si->si_addr;

	(void)uctx;
	if (walk_now.jump && walk_now.base && at >= walk_now.base &&
	    at < walk_now.base + walk_now.span)
		siglongjmp(*walk_now.jump, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Put in place at each walk rather than once: whoever set another
 * handler meanwhile (a test harness catching signals, say) would
 * otherwise get the jumps' faults. */
static int ensure_handler(void)
{
	struct sigaction cur, sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO };

	if (sigaction(SIGBUS, NULL, &cur) < 0)
		return -errno;
	if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus)
		return 0;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

/* Maps [start, start + span) of fd read-only with its page tables filled,
 * so the walk takes no fault per page. */
static const uint8_t *map_window(int fd, uint64_t start, size_t span)
{
	void *p = mmap(NULL, span, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)start);

	return p == MAP_FAILED ? NULL : p;
}

/* The rest of the range through a buffer, for a file mmap refuses. */
static int read_rest(int fd, uint64_t at, uint64_t end, fdmap_fn fn, void *opaque)
{
	uint8_t *buf = malloc(FDMAP_WINDOW);
	int r = buf ? 0 : -ENOMEM;

	for (; r == 0 && at < end; at += FDMAP_WINDOW) {
		size_t n = end - at < FDMAP_WINDOW ? (size_t)(end - at) : FDMAP_WINDOW;
		r = fd_pread_all(fd, buf, n, at);
		if (r == 0)
			r = fn(opaque, buf, n);
	}
	free(buf);
	return r;
}

/* The walk proper, its window kept in walk_now for the handler. */
static int walk(int fd, uint64_t off, uint64_t len, fdmap_fn fn, void *opaque)
{
	const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	sigjmp_buf jump;

	if (sigsetjmp(jump, 1)) {
		munmap((void *)walk_now.base, walk_now.span);
		walk_now.jump = NULL;
		walk_now.base = NULL;
		return -EIO;
	}
	walk_now.jump = &jump;
	int r = 0;
	for (uint64_t at = off; r == 0 && at < off + len;) {
		uint64_t start = at / page * page;
		uint64_t want = off + len - start < FDMAP_WINDOW ? off + len - start : FDMAP_WINDOW;
		walk_now.span = (size_t)want;
		walk_now.base = map_window(fd, start, (size_t)want);
		if (!walk_now.base) {
			r = read_rest(fd, at, off + len, fn, opaque);
			break;
		}
		r = fn(opaque, walk_now.base + (at - start), (size_t)(start + want - at));
		munmap((void *)walk_now.base, (size_t)want);
		walk_now.base = NULL;
		at = start + want;
	}
	walk_now.jump = NULL;
	return r;
}

int fdmap_each(int fd, uint64_t off, uint64_t len, fdmap_fn fn, void *opaque)
{
	struct stat st;
	sigset_t bus, old;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size < off + len || off + len < off)
		return -EIO;
	if (len == 0)
		return 0;
	int r = ensure_handler();
	if (r < 0)
		return r;
	/* A thread that blocks every signal (capvaultd's workers do, leaving
	 * signals to the main thread) would be killed by a blocked SIGBUS
	 * from a fault, never reaching the handler: unblocked for the walk. */
	sigemptyset(&bus);
	sigaddset(&bus, SIGBUS);
	r = -pthread_sigmask(SIG_UNBLOCK, &bus, &old);
	if (r < 0)
		return r;
	r = walk(fd, off, len, fn, opaque);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}
