/*
 * faultinject.c - an LD_PRELOAD shim for tests/crash/faults.sh: makes the
 * Nth call of one kind of durable-storage call fail, as a dying disk or a
 * full one would, so the test can prove each failure is reported and
 * loses nothing.
 *
 *   FAULT_OP    fsync (fsync, fdatasync), rename (rename, renameat,
 *               renameat2), link (link, linkat), or write (write, pwrite,
 *               pwritev, writev on regular files other than 0-2; RocksDB's
 *               WAL, MANIFEST and SST writes go through these)
 *   FAULT_N     which call fails, counting from 1 over the whole process
 *   FAULT_ERRNO the errno it fails with (default EIO)
 *   FAULT_MARK  a file created when the fault fires
 *   FAULT_BT    set: print a backtrace of the failed call to stderr
 *
 * Not a failure but a delay, for races (tests/integration/remove_reimport.sh):
 *   FAULT_UNLINK_DELAY_DIR  an unlinkat() in a folder whose path ends with
 *                           this waits FAULT_UNLINK_DELAY_MS (default 3000)
 *                           first, and says so on stderr
 *   FAULT_UNLINK_DELAY_NAME an unlink() of a path whose last part is this
 *                           waits as long, after creating FAULT_DELAY_MARK
 *                           (tests/integration/claim_swap_late.sh)
 *
 * capvault's own object writes and fsyncs go through io_uring, which this
 * shim cannot see; ingest/ring.c's CAPVAULT_FAULT hook covers those.
 */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

enum { OP_NONE, OP_FSYNC, OP_RENAME, OP_LINK, OP_WRITE };

static int fault_op = -1;
static unsigned long fault_n;
static int fault_errno = EIO;
static atomic_ulong fault_count;

static void fault_setup(void)
{
	const char *op = getenv("FAULT_OP"), *n = getenv("FAULT_N"), *e = getenv("FAULT_ERRNO");
	int o = OP_NONE;
	if (op && strcmp(op, "fsync") == 0)
		o = OP_FSYNC;
	else if (op && strcmp(op, "rename") == 0)
		o = OP_RENAME;
	else if (op && strcmp(op, "link") == 0)
		o = OP_LINK;
	else if (op && strcmp(op, "write") == 0)
		o = OP_WRITE;
	fault_n = n ? strtoul(n, NULL, 10) : 0;
	if (e && atoi(e) > 0)
		fault_errno = atoi(e);
	__atomic_store_n(&fault_op, o, __ATOMIC_RELEASE);
}

/* True (errno set) when this call of op is the one to fail. */
static bool fault_fires(int op)
{
	if (__atomic_load_n(&fault_op, __ATOMIC_ACQUIRE) < 0)
		fault_setup();
	if (fault_op != op || atomic_fetch_add(&fault_count, 1) + 1 != fault_n)
		return false;
	const char *mark = getenv("FAULT_MARK");
	if (mark) {
		int fd = open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		if (fd >= 0)
			close(fd);
	}
	if (getenv("FAULT_BT")) {
		void *frames[32];
		backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
	}
	errno = fault_errno;
	return true;
}

/*
 * A regular file other than stdin/out/err and RocksDB's info LOG: Debian's
 * RocksDB is built with assertions, and after one failed LOG write the
 * next one aborts the process (WritableFileWriter::
 * AssertFalseAndGetStatusForPrevError). That is a crash, which loses
 * nothing (tests/crash/crash_loop.sh), but it would stop this test.
 */
static bool regular(int fd)
{
	struct stat st;
	char link[64], path[4096];
	if (fd <= 2 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return true;
	path[n] = '\0';
	const char *base = strrchr(path, '/');
	return strcmp(base ? base + 1 : path, "LOG") != 0;
}

#define NEXT(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

int fsync(int fd)
{
	return fault_fires(OP_FSYNC) ? -1 : NEXT(fsync)(fd);
}

int fdatasync(int fd)
{
	return fault_fires(OP_FSYNC) ? -1 : NEXT(fdatasync)(fd);
}

int rename(const char *a, const char *b)
{
	return fault_fires(OP_RENAME) ? -1 : NEXT(rename)(a, b);
}

int renameat(int da, const char *a, int db, const char *b)
{
	return fault_fires(OP_RENAME) ? -1 : NEXT(renameat)(da, a, db, b);
}

int renameat2(int da, const char *a, int db, const char *b, unsigned flags)
{
	return fault_fires(OP_RENAME) ? -1 : NEXT(renameat2)(da, a, db, b, flags);
}

int link(const char *a, const char *b)
{
	return fault_fires(OP_LINK) ? -1 : NEXT(link)(a, b);
}

int linkat(int da, const char *a, int db, const char *b, int flags)
{
	return fault_fires(OP_LINK) ? -1 : NEXT(linkat)(da, a, db, b, flags);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	if (regular(fd) && fault_fires(OP_WRITE))
		return -1;
	return NEXT(write)(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (regular(fd) && fault_fires(OP_WRITE))
		return -1;
	return NEXT(pwrite)(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	if (regular(fd) && fault_fires(OP_WRITE))
		return -1;
	return NEXT(pwrite64)(fd, buf, len, off);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	if (regular(fd) && fault_fires(OP_WRITE))
		return -1;
	return NEXT(writev)(fd, iov, n);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	if (regular(fd) && fault_fires(OP_WRITE))
		return -1;
	return NEXT(pwritev)(fd, iov, n, off);
}

int unlinkat(int dirfd, const char *name, int flags)
{
	const char *want = getenv("FAULT_UNLINK_DELAY_DIR"), *ms = getenv("FAULT_UNLINK_DELAY_MS");
	char link[64], path[4096];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
	ssize_t n = want && dirfd >= 0 ? readlink(link, path, sizeof(path) - 1) : -1;
	size_t wl = want ? strlen(want) : 0;
	if (n >= (ssize_t)wl && n > 0) {
		path[n] = '\0';
		if (strcmp(path + n - wl, want) == 0) {
			fprintf(stderr, "faultinject: unlinkat %s/%s delayed\n", path, name);
			usleep((useconds_t)(ms ? atoi(ms) : 3000) * 1000u);
		}
	}
	return NEXT(unlinkat)(dirfd, name, flags);
}

int unlink(const char *path)
{
	const char *want = getenv("FAULT_UNLINK_DELAY_NAME"), *ms = getenv("FAULT_UNLINK_DELAY_MS");
	const char *slash = strrchr(path, '/'), *mark = getenv("FAULT_DELAY_MARK");
	if (want && strcmp(slash ? slash + 1 : path, want) == 0) {
		fprintf(stderr, "faultinject: unlink %s delayed\n", path);
		if (mark)
			close(open(mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
		usleep((useconds_t)(ms ? atoi(ms) : 3000) * 1000u);
	}
	return NEXT(unlink)(path);
}
