/*
 * store.c - the content-addressed object store (see store.h); git's loose
 * objects are the model.
 *
 * Promises:
 * - An object name is the SHA-256 of exactly the bytes under it. Copies
 *   are hashed as they are written; linked sources are hashed as the caller
 *   feeds them and refused when the source's size or inode differs.
 * - A published object is durable: the file is fsynced, linked (never
 *   renamed over anything: EEXIST means "already stored") and its fan-out
 *   folder fsynced, as is objects/ the first time this process uses a
 *   fan-out folder. Only then does publish return.
 * - No partial object is ever visible under objects/; a writer freed before
 *   publishing removes its temp file; store_clean_tmp removes the temp
 *   files of writers that died, and nothing else.
 * - Objects are read-only (0444).
 * - A published object never changes (invariant 6). A source is linked
 *   only when we own it (its owner could make it writable again) and hold
 *   a read lease on it from before its first byte is hashed until after
 *   the link: the kernel grants one only while nobody has the file open
 *   for writing, and any later open for writing breaks it, which refuses
 *   the import (-EAGAIN; a retry copies). Else the source is copied. Once
 *   linked and sealed, only our uid or root can open the inode for
 *   writing. An object found changed is quarantined (quarantine/), never
 *   deduped onto or deleted.
 * File data and fsyncs go through the caller's io_uring ring. Calls that
 * get no ring (store_open, store_object_remove) fsync folders directly.
 * Asynchronous writes (store_writer_write_async) hash, and write bytes
 * they are given, on one worker thread per writer, which has its own
 * ring: a ring belongs to one thread. When the caller had to wait for the
 * worker, it stores the next buffer itself, on its own ring. One write at
 * a time is in flight, so the bytes reach SHA-256 and the temp file in
 * order.
 * Copy mode (store_writer_copy_from: the bytes are an uncompressed file's)
 * copies a file of up to 8 MiB in the kernel at once and hashes the
 * caller's bytes. A larger one needs none of the caller's bytes: the
 * worker reads the file itself, hashes it and writes it O_DIRECT from its
 * own buffers; where O_DIRECT is refused, it only hashes and a copier
 * thread copies in the kernel. Finish refuses a source that changed.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "hexdigit.h"
#include "mountid.h"
#include "ring.h"

#define DIR_MODE 0750
#define OBJECT_MODE 0444
#define QUARANTINE_DIR "quarantine"
/* "ab/" + 64 hex digits + NUL */
#define REL_NAME_LEN 68

struct store {
	char *root;
	int root_fd, objects_fd, tmp_fd;
	dev_t dev;
	uint64_t mnt_id; /* objects/'s mount (statx), 0 when the kernel cannot say */
	/* Fan-out folders known to exist durably (objects/ fsynced after
	 * creating them), one bit per first byte of the hash. */
	_Atomic uint64_t fanout_durable[4];
};

/* The thread that runs a writer's asynchronous writes, one at a time. */
struct writer_worker {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a write handed over, finished, or quit */
	struct ring *ring;   /* the worker's own */
	const void *buf;
	size_t len;
	bool pending; /* buf/len handed over and not yet written */
	bool hash_only; /* the caller stores buf itself */
	bool quit;
	bool joined;
	int err;      /* the first failed write's, then every later call's */
	struct errbuf eb;
	uint64_t hashed; /* a source hasher's bytes so far (its own until joined) */
	bool source_grew; /* the hasher found more than the source had */
};

/* Copy mode: the thread that copies the source file into the temp file.
 * The copy needs none of the bytes the caller reads, so it runs on its own
 * rather than in step with hashing and parsing them. */
struct writer_copier {
	pthread_t thread;
	struct ring *ring;  /* the copier's own, for writeback */
	uint64_t copied;    /* end of the bytes copied: the thread's until joined */
	atomic_bool stop;
	atomic_int err;     /* set before the thread ends; eb is then final */
	struct errbuf eb;
	bool running;       /* false: no thread could start; the copy is made at finish */
	bool joined;        /* ended: err and copied are final */
};

struct store_writer {
	struct store *st;
	struct ring *ring;
	struct writer_worker *worker; /* started by the first asynchronous write */
	EVP_MD_CTX *ctx;
	int fd;           /* the temp file, or the link source */
	char *tmp_name;   /* name in tmp/ until published or removed */
	char *link_source;
	int copy_fd;      /* the source, for kernel-side copies; -1: write what we are given */
	int direct_fd;    /* the temp file opened O_DIRECT, when the source hasher copies */
	struct writer_copier *copier; /* copying the source's bytes after the first chunk */
	struct stat src_st; /* the source (copied or linked) as it was when the import began */
	uint64_t size;
	uint8_t sha[32];
	bool linked, finished, published;
	bool verified; /* finish succeeded: the bytes are the ones named */
	bool sync_only; /* no worker could be started: write on the caller's thread */
	bool hashes_source; /* the worker reads the copied source and hashes it */
	bool caller_waited; /* the last wait found the worker busy */
};

void sha256_hex(const uint8_t sha[32], char hex[65])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[sha[i] >> 4];
		hex[2 * i + 1] = digits[sha[i] & 15];
	}
	hex[64] = '\0';
}

int sha256_parse(const char *hex, uint8_t sha[32])
{
	for (int i = 0; i < 32; i++) {
		int hi = hex_digit_value(hex[2 * i]);
		int lo = hi < 0 ? -1 : hex_digit_value(hex[2 * i + 1]);
		if (lo < 0)
			return -EINVAL;
		sha[i] = (uint8_t)(hi << 4 | lo);
	}
	return hex[64] == '\0' ? 0 : -EINVAL;
}

/* "ab/abcdef..." relative to objects/. */
static void rel_name(const uint8_t sha[32], char rel[REL_NAME_LEN])
{
	char hex[65];

	sha256_hex(sha, hex);
	snprintf(rel, REL_NAME_LEN, "%.2s/%s", hex, hex);
}

/* Creates dirfd/name if missing; a new folder's parent is fsynced so the
 * folder survives a crash. */
static int make_dir(int dirfd, const char *name, const char *shown, struct errbuf *eb)
{
	if (mkdirat(dirfd, name, DIR_MODE) < 0) {
		if (errno == EEXIST)
			return 0;
		return errbuf_set(eb, -errno, "cannot create %s: %s", shown, strerror(errno));
	}
	if (fsync(dirfd) < 0)
		return errbuf_set(eb, -errno, "cannot fsync parent of %s: %s", shown, strerror(errno));
	return 0;
}

static int open_dir(int dirfd, const char *name, const char *shown, struct errbuf *eb)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return errbuf_set(eb, -errno, "cannot open %s: %s", shown, strerror(errno));
	return fd;
}

/* Creates root (its parent must exist) and opens it. */
static int open_root(const char *root, struct errbuf *eb)
{
	_cleanup_free_ char *parent = strdup(root);
	_cleanup_close_ int pfd = -1;
	const char *base;
	char *slash;
	size_t n;

	if (!parent)
		return -ENOMEM;
	for (n = strlen(parent); n > 1 && parent[n - 1] == '/'; n--)
		parent[n - 1] = '\0';
	slash = strrchr(parent, '/');
	if (slash && slash[1] == '\0') /* "/" */
		return open_dir(AT_FDCWD, root, root, eb);
	base = slash ? root + (slash + 1 - parent) : root;
	if (slash == parent)
		slash++; /* keep "/" as the parent of "/name" */
	if (slash)
		*slash = '\0';
	pfd = open_dir(AT_FDCWD, slash ? parent : ".", slash ? parent : ".", eb);
	if (pfd < 0)
		return pfd;
	int r = make_dir(pfd, base, root, eb);
	return r < 0 ? r : open_dir(pfd, base, root, eb);
}

bool store_tmp_is_ours(const char *name)
{
	static const char *const prefixes[] = { "obj-", "upload-" };
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i]);
		/* mkstemp's six letters and digits */
		if (strncmp(name, prefixes[i], n) == 0 && strlen(name + n) == 6 &&
		    strspn(name + n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == 6)
			return true;
	}
	return false;
}

/* Only what the store and the upload spool create is removed: tmp/ is a
 * folder a person can put things into, and they are not ours to delete.
 * Nothing found there fails the open: what cannot be removed stays. */
int store_clean_tmp(struct store *st, struct errbuf *eb)
{
	int fd = openat(st->tmp_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return errbuf_set(eb, -errno, "cannot list %s/tmp: %s", st->root, strerror(errno));
	}
	while ((de = readdir(d)) != NULL) {
		if (store_tmp_is_ours(de->d_name))
			unlinkat(st->tmp_fd, de->d_name, 0);
	}
	closedir(d);
	return 0;
}

/* dirfd/name, created first when create is set. */
static int open_subdir(struct store *st, const char *name, bool create, struct errbuf *eb)
{
	char shown[4096];
	snprintf(shown, sizeof(shown), "%s/%s", st->root, name);
	int r = create ? make_dir(st->root_fd, name, shown, eb) : 0;
	return r < 0 ? r : open_dir(st->root_fd, name, shown, eb);
}

static uint64_t fd_mount(int fd)
{
	return mount_id_at(fd, "", AT_EMPTY_PATH);
}

static int store_open_dirs(struct store *st, unsigned flags, struct errbuf *eb)
{
	bool create = flags & STORE_CREATE;
	struct stat so, stt;

	st->root_fd = create ? open_root(st->root, eb) : open_dir(AT_FDCWD, st->root, st->root, eb);
	if (st->root_fd < 0)
		return st->root_fd;
	/* A store without objects/ lost them: never hide that with an empty
	 * folder. tmp/ holds nothing to lose. */
	st->objects_fd = open_subdir(st, "objects", create, eb);
	if (st->objects_fd < 0)
		return st->objects_fd;
	st->tmp_fd = open_subdir(st, "tmp", true, eb);
	if (st->tmp_fd < 0)
		return st->tmp_fd;
	if (fstat(st->objects_fd, &so) < 0 || fstat(st->tmp_fd, &stt) < 0)
		return errbuf_set(eb, -errno, "cannot stat %s: %s", st->root, strerror(errno));
	/* Publishing links tmp/ files into objects/: one mount only (a link
	 * fails across two, even two mounts of one file system). */
	st->mnt_id = fd_mount(st->objects_fd);
	uint64_t tmp_mnt = fd_mount(st->tmp_fd);
	if (so.st_dev != stt.st_dev || (st->mnt_id && tmp_mnt && st->mnt_id != tmp_mnt))
		return errbuf_set(eb, -EXDEV, "%s/tmp and %s/objects are on different mounts",
				  st->root, st->root);
	st->dev = so.st_dev;
	return 0;
}

int store_open(struct store **out, const char *root, struct errbuf *eb)
{
	return store_open_flags(out, root, STORE_CREATE, eb);
}

int store_open_flags(struct store **out, const char *root, unsigned flags, struct errbuf *eb)
{
	struct store *st = calloc(1, sizeof(*st));
	int r;

	errbuf_clear(eb);
	if (!st)
		return -ENOMEM;
	st->root_fd = st->objects_fd = st->tmp_fd = -1;
	st->root = strdup(root);
	r = st->root ? store_open_dirs(st, flags, eb) : -ENOMEM;
	if (r == 0 && !(flags & STORE_KEEP_TMP))
		r = store_clean_tmp(st, eb);
	if (r < 0) {
		store_close(st);
		return r;
	}
	*out = st;
	return 0;
}

struct store *store_close(struct store *st)
{
	if (!st)
		return NULL;
	if (st->tmp_fd >= 0)
		close(st->tmp_fd);
	if (st->objects_fd >= 0)
		close(st->objects_fd);
	if (st->root_fd >= 0)
		close(st->root_fd);
	free(st->root);
	free(st);
	return NULL;
}

const char *store_root(const struct store *st)
{
	return st->root;
}

int store_object_path(const struct store *st, const uint8_t sha[32], char *buf, size_t len)
{
	char rel[REL_NAME_LEN];

	rel_name(sha, rel);
	int n = snprintf(buf, len, "%s/objects/%s", st->root, rel);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Copy mode: a fresh temp file in tmp/ (mkostemp names are unique). */
static int writer_open_tmp(struct store_writer *w, struct errbuf *eb)
{
	size_t len = strlen(w->st->root) + sizeof("/tmp/obj-XXXXXX");
	_cleanup_free_ char *path = malloc(len);

	if (!path)
		return -ENOMEM;
	snprintf(path, len, "%s/tmp/obj-XXXXXX", w->st->root);
	w->fd = mkostemp(path, O_CLOEXEC);
	if (w->fd < 0)
		return errbuf_set(eb, -errno, "cannot create temp file in %s/tmp: %s", w->st->root,
				  strerror(errno));
	w->tmp_name = strdup(strrchr(path, '/') + 1);
	return w->tmp_name ? 0 : -ENOMEM;
}

/*
 * Link mode's guard (invariant 6: a published object never changes). A
 * read lease (F_SETLEASE F_RDLCK) is granted only while no one has the
 * file open for writing (a writable mapping counts), and any later open
 * for writing or truncate breaks it. Held from before the first byte is
 * hashed until the writer is freed, an intact lease proves no one could
 * write the bytes between hashing and publishing. Only the file's owner
 * (or CAP_LEASE) gets one, and not every file system grants them (NFS,
 * FUSE): the source is then copied. A break is seen by asking, never by
 * signal: the kernel would send SIGIO, which ends a process that does not
 * expect it, so the signal is SIGURG (ignored unless handled) and the fd
 * gets no owner to signal once the lease is set (setting one names us).
 */
static bool lease_take(int fd)
{
	if (fcntl(fd, F_SETSIG, SIGURG) < 0 || fcntl(fd, F_SETLEASE, F_RDLCK) < 0)
		return false;
	fcntl(fd, F_SETOWN, 0);
	return true;
}

/* Nobody broke the lease, and nobody has the file open for writing now:
 * setting the lease again checks that, which also covers an open that has
 * taken write access but not yet reached the lease. */
static bool lease_intact(int fd)
{
	if (fcntl(fd, F_GETLEASE) != F_RDLCK || fcntl(fd, F_SETLEASE, F_RDLCK) < 0)
		return false;
	fcntl(fd, F_SETOWN, 0);
	return true;
}

/*
 * Link mode when the source is a regular file on the store's mount
 * that nobody else can still write: ours (another owner can always make
 * it writable again, and a store that is not root cannot even make it
 * read-only: issue 15.5), and under our read lease (nobody has it open
 * for writing: issue 15.4). Decided here, because once the bytes are
 * hashed it is too late to start copying them.
 */
static int writer_try_link(struct store_writer *w, const char *source, struct errbuf *eb)
{
	struct stat s;
	int fd = open(source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return errbuf_set(eb, -errno, "cannot open %s: %s", source, strerror(errno));
	uint64_t mnt = fd_mount(fd);
	if (fstat(fd, &s) < 0 || !S_ISREG(s.st_mode) || s.st_dev != w->st->dev ||
	    (mnt && w->st->mnt_id && mnt != w->st->mnt_id) || s.st_uid != geteuid() ||
	    !lease_take(fd)) {
		close(fd);
		return 0;
	}
	w->src_st = s;
	w->link_source = strdup(source);
	if (!w->link_source) {
		close(fd);
		return -ENOMEM;
	}
	w->fd = fd;
	w->linked = true;
	return 0;
}

int store_writer_new(struct store *st, struct ring *ring, const char *link_source,
		     struct store_writer **out, struct errbuf *eb)
{
	struct store_writer *w = calloc(1, sizeof(*w));
	int r = 0;

	errbuf_clear(eb);
	if (!w)
		return -ENOMEM;
	w->st = st;
	w->ring = ring;
	w->fd = -1;
	w->copy_fd = -1;
	w->direct_fd = -1;
	w->ctx = EVP_MD_CTX_new();
	if (!w->ctx || !EVP_DigestInit_ex(w->ctx, EVP_sha256(), NULL))
		r = errbuf_set(eb, -ENOMEM, "cannot set up SHA-256");
	if (r == 0 && link_source)
		r = writer_try_link(w, link_source, eb);
	if (r == 0 && !w->linked)
		r = writer_open_tmp(w, eb);
	if (r < 0) {
		store_writer_free(w);
		return r;
	}
	*out = w;
	return 0;
}

static void worker_free(struct store_writer *w);
static int worker_start(struct store_writer *w, void *(*fn)(void *));
static void *source_hasher_main(void *opaque);
static int copier_join(struct store_writer *w, bool cancel, struct errbuf *eb);

struct store_writer *store_writer_free(struct store_writer *w)
{
	if (!w)
		return NULL;
	worker_free(w);
	copier_join(w, true, NULL);
	free(w->copier);
	if (w->fd >= 0)
		close(w->fd);
	if (w->copy_fd >= 0)
		close(w->copy_fd);
	if (w->direct_fd >= 0)
		close(w->direct_fd);
	/* Unpublished bytes never stay behind (disk full, parse error...). */
	if (w->tmp_name)
		unlinkat(w->st->tmp_fd, w->tmp_name, 0);
	EVP_MD_CTX_free(w->ctx);
	free(w->tmp_name);
	free(w->link_source);
	free(w);
	return NULL;
}

/*
 * Copies never take the file system's last STORE_RESERVE_BYTES: RocksDB
 * needs a little room for its WAL, MANIFEST and info LOG, and Debian's
 * RocksDB (built with assertions) aborts the process when a second write
 * to its LOG fails, so an object that filled the disk to the last byte
 * would crash the import, or capvaultd, at the next RocksDB log line
 * (tests/crash/diskfull.sh). Refused like the disk refuses: -ENOSPC.
 */
#define STORE_RESERVE_BYTES (4u << 20)

static int writer_check_reserve(struct store_writer *w, size_t len, struct errbuf *eb)
{
	uint64_t free_bytes = 0, total = 0;
	if (store_space(w->st, &free_bytes, &total) < 0 || free_bytes >= len + STORE_RESERVE_BYTES)
		return 0;
	return errbuf_set(eb, -ENOSPC, "cannot write %s/tmp/%s: %s (%llu bytes free, %u kept for the index)",
			  w->st->root, w->tmp_name, strerror(ENOSPC), (unsigned long long)free_bytes,
			  STORE_RESERVE_BYTES);
}

/* Every STORE_WRITEBACK_BYTES written, starts the disk on them: the copy
 * then reaches the disk while we hash and index the rest, and the final
 * fsync waits for little (as `cp` + `sync` would not overlap). Advisory:
 * a failure here shows up in the fsync that publishing does. */
#define STORE_WRITEBACK_BYTES (8u << 20)
static void writer_writeback(struct store_writer *w, struct ring *ring, size_t len)
{
	uint64_t before = w->size / STORE_WRITEBACK_BYTES, after = (w->size + len) / STORE_WRITEBACK_BYTES;
	if (after > before)
		ring_writeback(ring, w->fd, (before) * (uint64_t)STORE_WRITEBACK_BYTES,
			       (after - before) * (uint64_t)STORE_WRITEBACK_BYTES);
}

/* Starts a writer thread with every signal blocked: signals stay with the
 * threads that expect them. Returns 0 or a negative errno. */
static int start_thread(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int r = -pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

/* The error of a source that changed while it was imported (-EAGAIN: a
 * retry imports it as it is then). */
static int source_changed_error(struct errbuf *eb)
{
	return errbuf_set(eb, -EAGAIN, "the source changed while it was being imported");
}

/*
 * Copies the source's bytes [off, +len) to the same place in the temp file
 * in the kernel (copy_file_range: no trip through our memory, a reflink
 * where the file system has them). Returns 0, 1 when the kernel cannot
 * copy between these files, 2 when the source ended early (it changed:
 * store_writer_finish says so), or a negative errno.
 */
static int copy_range(struct store_writer *w, uint64_t off, size_t len)
{
	size_t done = 0;
	while (done < len) {
		loff_t in = (loff_t)(off + done), out = in;
		ssize_t n = copy_file_range(w->copy_fd, &in, w->fd, &out, len - done, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && off + done == 0 &&
		    (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
			return 1;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 2;
		done += (size_t)n;
	}
	return 0;
}

/* Copies the source's [from, to) chunk by chunk, starting the disk on each
 * (as writer_writeback), until done, stopped or failed; c->copied says how
 * far it got. Returns copy_range's codes. */
static int copy_chunks(struct store_writer *w, struct writer_copier *c, struct ring *ring,
		       uint64_t to, struct errbuf *eb)
{
	while (c->copied < to && !atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		size_t len = to - c->copied < STORE_WRITEBACK_BYTES ? (size_t)(to - c->copied) :
								       STORE_WRITEBACK_BYTES;
		int r = writer_check_reserve(w, len, eb);
		if (r == 0)
			r = copy_range(w, c->copied, len);
		if (r < 0)
			return errbuf_set(eb, r, "cannot write %s/tmp/%s: %s", w->st->root, w->tmp_name,
					  strerror(-r));
		if (r > 0)
			return r;
		if (ring)
			ring_writeback(ring, w->fd, c->copied, len);
		c->copied += len;
	}
	return 0;
}

static void *copier_main(void *opaque)
{
	struct store_writer *w = opaque;
	struct writer_copier *c = w->copier;
	/* The copy has slack (it only has to end before the pass does), the
	 * hashing has none: on two cores the three threads took turns, and
	 * the hashing thread's share of a core set the pace. At the lowest
	 * priority the copy runs in the time the others wait for each other. */
	setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	int r = copy_chunks(w, c, c->ring, (uint64_t)w->src_st.st_size, &c->eb);
	atomic_store(&c->err, r < 0 ? r : 0);
	return NULL;
}

/* The copier's error, if it failed (copied to eb), else 0. */
static int copier_status(struct store_writer *w, struct errbuf *eb)
{
	int r = atomic_load(&w->copier->err);
	if (r < 0 && eb)
		*eb = w->copier->eb;
	return r < 0 ? r : 0;
}

/* Ends the copy and returns its error: the thread stops at its next chunk
 * and, unless cancel, the rest is copied here (the thread runs at the
 * lowest priority, which a busy machine would starve while we wait). */
static int copier_join(struct store_writer *w, bool cancel, struct errbuf *eb)
{
	struct writer_copier *c = w->copier;
	if (!c)
		return 0;
	if (!c->joined) {
		atomic_store(&c->stop, true);
		if (c->running)
			pthread_join(c->thread, NULL);
		atomic_store(&c->stop, false);
		if (!cancel && atomic_load(&c->err) == 0) {
			int r = copy_chunks(w, c, w->ring, (uint64_t)w->src_st.st_size, &c->eb);
			atomic_store(&c->err, r < 0 ? r : 0);
		}
		c->joined = true;
		c->ring = ring_free(c->ring);
	}
	int r = copier_status(w, eb);
	if (r == 0 && c->copied != (uint64_t)w->src_st.st_size)
		r = source_changed_error(eb);
	return r;
}

/* Starts the copier thread on [from, source size). Without a thread, the
 * copy is made by copier_join. */
static int copier_start(struct store_writer *w, uint64_t from)
{
	struct writer_copier *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->copied = from;
	w->copier = c;
	if ((uint64_t)w->src_st.st_size <= from || ring_new(&c->ring, 4) < 0)
		return 0;
	c->running = start_thread(&c->thread, copier_main, w) == 0;
	return 0;
}

/*
 * Opens the temp file a second time, O_DIRECT, for a copy the source
 * hasher writes from the buffers it reads the source into: the copy then
 * costs no CPU for a second copy in the page cache and its writeback
 * (copy_file_range took a core for half the import's time). Checked with
 * one block written (some file systems take the flag and refuse the
 * writes). Returns the fd or -1. CAPVAULT_NO_DIRECT_IO=1 (tests) keeps
 * to the copier.
 */
static int open_direct(struct store_writer *w)
{
	const char *off = getenv("CAPVAULT_NO_DIRECT_IO");
	if (off && strcmp(off, "1") == 0)
		return -1;
	int fd = openat(w->st->tmp_fd, w->tmp_name, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -1;
	void *block = aligned_alloc(RING_DIRECT_ALIGN, RING_DIRECT_ALIGN);
	bool ok = block && (memset(block, 0, RING_DIRECT_ALIGN),
			    ring_pwrite(w->ring, fd, block, RING_DIRECT_ALIGN, 0) == 0);
	free(block);
	if (ftruncate(w->fd, 0) < 0 || !ok) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Copy mode for a file past the first chunk: the source hasher copies
 * through O_DIRECT where it can; true when it started. */
static bool start_direct_copy(struct store_writer *w)
{
	if ((uint64_t)w->src_st.st_size <= STORE_WRITEBACK_BYTES || (w->direct_fd = open_direct(w)) < 0)
		return false;
	w->hashes_source = worker_start(w, source_hasher_main) == 0;
	if (!w->hashes_source) {
		close(w->direct_fd);
		w->direct_fd = -1;
	}
	return w->hashes_source;
}

int store_writer_copy_from(struct store_writer *w, const char *path)
{
	if (w->linked || w->copy_fd >= 0 || w->size > 0 || w->worker)
		return -EINVAL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &w->src_st) < 0 || !S_ISREG(w->src_st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	w->copy_fd = fd;
	if (start_direct_copy(w))
		return 0;
	/* Else the copier: the first chunk here, so that when the kernel
	 * cannot copy between these files, or the copy fails, the writer
	 * writes what it is given. */
	struct writer_copier first = { 0 };
	struct errbuf ignored;
	uint64_t size = (uint64_t)w->src_st.st_size;
	int r = copy_chunks(w, &first, w->ring,
			    size < STORE_WRITEBACK_BYTES ? size : STORE_WRITEBACK_BYTES, &ignored);
	if (r == 0)
		r = copier_start(w, first.copied);
	if (r == 0 && w->copier->running)
		w->hashes_source = worker_start(w, source_hasher_main) == 0;
	if (r != 0) {
		close(w->copy_fd);
		w->copy_fd = -1;
		if (ftruncate(w->fd, 0) < 0)
			return -errno;
		return r < 0 ? r : -EOPNOTSUPP;
	}
	return 0;
}

static int writer_hash(struct store_writer *w, const void *buf, size_t len, struct errbuf *eb)
{
	if (w->hashes_source)
		return 0;
	if (!EVP_DigestUpdate(w->ctx, buf, len))
		return errbuf_set(eb, -EIO, "SHA-256 update failed");
	return 0;
}

/* Stores one buffer (unless linked or copied by the copier), with the I/O
 * on ring (the calling thread's). */
static int writer_store(struct store_writer *w, struct ring *ring, const void *buf, size_t len,
			struct errbuf *eb)
{
	if (w->copy_fd >= 0) { /* the copier or the source hasher writes */
		int r = w->copier ? copier_status(w, eb) : 0;
		if (r < 0)
			return r;
	} else if (w->linked) {
		/* Someone opened the source for writing: stop now (a retry
		 * copies), which also ends their wait for our lease. */
		if (fcntl(w->fd, F_GETLEASE) != F_RDLCK)
			return source_changed_error(eb);
	} else {
		int r = writer_check_reserve(w, len, eb);
		if (r < 0)
			return r;
		r = ring_pwrite(ring, w->fd, buf, len, w->size);
		if (r < 0)
			return errbuf_set(eb, r, "cannot write %s/tmp/%s: %s", w->st->root, w->tmp_name,
					  strerror(-r));
		writer_writeback(w, ring, len);
	}
	w->size += len;
	return 0;
}

static int writer_write_on(struct store_writer *w, struct ring *ring, const void *buf, size_t len,
			   struct errbuf *eb)
{
	int r = writer_hash(w, buf, len, eb);
	return r < 0 ? r : writer_store(w, ring, buf, len, eb);
}

int store_writer_write(struct store_writer *w, const void *buf, size_t len, struct errbuf *eb)
{
	if (w->finished || (w->worker && w->worker->joined))
		return errbuf_set(eb, -EINVAL, "write after finish");
	int r = store_writer_wait(w, eb);
	return r < 0 ? r : writer_write_on(w, w->ring, buf, len, eb);
}

static void *worker_main(void *opaque)
{
	struct store_writer *w = opaque;
	struct writer_worker *k = w->worker;
	pthread_mutex_lock(&k->lock);
	for (;;) {
		while (!k->pending && !k->quit)
			pthread_cond_wait(&k->cond, &k->lock);
		if (!k->pending)
			break;
		pthread_mutex_unlock(&k->lock);
		int r = k->hash_only ? writer_hash(w, k->buf, k->len, &k->eb) :
				       writer_write_on(w, k->ring, k->buf, k->len, &k->eb);
		pthread_mutex_lock(&k->lock);
		k->err = r;
		k->pending = false;
		pthread_cond_broadcast(&k->cond);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* Starts the writer's worker thread (running fn) and ring. Returns 0 or a
 * negative errno (the writer then writes synchronously). */
static int worker_start(struct store_writer *w, void *(*fn)(void *))
{
	struct writer_worker *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	int r = ring_new(&k->ring, 4);
	if (r < 0) {
		free(k);
		return r;
	}
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cond, NULL);
	w->worker = k;
	r = start_thread(&k->thread, fn, w);
	if (r < 0) {
		w->worker = NULL;
		pthread_cond_destroy(&k->cond);
		pthread_mutex_destroy(&k->lock);
		ring_free(k->ring);
		free(k);
	}
	return r;
}

/* Ends the worker's thread: a buffer worker once it wrote what it was
 * handed, a source hasher once it read the whole source, or at once when
 * cancel. Its error stays for store_writer_wait. */
static void worker_join(struct store_writer *w, bool cancel)
{
	struct writer_worker *k = w->worker;
	if (!k || k->joined)
		return;
	pthread_mutex_lock(&k->lock);
	if (cancel || !w->hashes_source)
		__atomic_store_n(&k->quit, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	k->joined = true;
}

static void worker_free(struct store_writer *w)
{
	struct writer_worker *k = w->worker;
	if (!k)
		return;
	worker_join(w, true);
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->lock);
	ring_free(k->ring);
	free(k);
	w->worker = NULL;
}

static int source_hash_chunk(void *opaque, const void *buf, size_t len)
{
	struct store_writer *w = opaque;
	struct writer_worker *k = w->worker;
	if (__atomic_load_n(&k->quit, __ATOMIC_ACQUIRE))
		return -ECANCELED;
	/* Grown since the import began: refused at finish, so read no more. */
	if (len > (uint64_t)w->src_st.st_size - k->hashed) {
		k->source_grew = true;
		return -ECANCELED;
	}
	if (w->direct_fd >= 0) {
		int r = writer_check_reserve(w, len, &k->eb);
		if (r < 0)
			return r;
	}
	if (!EVP_DigestUpdate(w->ctx, buf, len))
		return -EIO;
	k->hashed += len;
	return 0;
}

/*
 * Copy mode: the source is a regular file the kernel copies, so its bytes
 * need not come from the caller. Handed each buffer the caller parsed,
 * this thread and the caller worked in step, each waiting for the other
 * at every buffer (the hashing was the slower, the parsing waited a
 * quarter of the time). Reading the file itself, it hashes at its own
 * pace. The bytes hashed, copied and parsed are the same if the file did
 * not change meanwhile, which store_writer_finish checks.
 */
static void *source_hasher_main(void *opaque)
{
	struct store_writer *w = opaque;
	struct writer_worker *k = w->worker;
	uint64_t total = 0;
	int r = w->direct_fd < 0 ?
		ring_read_stream(k->ring, w->copy_fd, RING_CHUNK, RING_DEPTH, source_hash_chunk, w) :
		ring_copy_stream(k->ring, w->copy_fd, w->direct_fd, RING_CHUNK, RING_DEPTH,
				 source_hash_chunk, w, &total);
	/* The last block was written whole. */
	if (r == 0 && w->direct_fd >= 0 && ftruncate(w->fd, (off_t)total) < 0)
		r = -errno;
	/* Cancelled (freed) or stopped at growth: finish finds the source
	 * changed; any other error is the import's. */
	bool stopped = r == -ECANCELED && (__atomic_load_n(&k->quit, __ATOMIC_ACQUIRE) ||
					   k->source_grew);
	if (r < 0 && !stopped) {
		pthread_mutex_lock(&k->lock);
		if (!k->eb.msg[0])
			errbuf_set(&k->eb, r, "cannot %s %s/tmp/%s: %s",
				   w->direct_fd < 0 ? "hash the source of" : "copy the source to",
				   w->st->root, w->tmp_name, strerror(-r));
		k->err = r;
		pthread_mutex_unlock(&k->lock);
	}
	return NULL;
}

/* Below this, a write is not worth the round trip to another thread. */
#define STORE_ASYNC_MIN_BYTES (64u << 10)

int store_writer_write_async(struct store_writer *w, const void *buf, size_t len,
			     struct errbuf *eb)
{
	if (w->worker && w->worker->joined) /* a finish began */
		return store_writer_write(w, buf, len, eb);
	int r = store_writer_wait(w, eb);
	if (r < 0)
		return r;
	bool worth_it = len >= STORE_ASYNC_MIN_BYTES && !w->finished && !w->hashes_source;
	if (worth_it && !w->worker && !w->sync_only)
		w->sync_only = worker_start(w, worker_main) < 0;
	if (!worth_it || !w->worker)
		return store_writer_write(w, buf, len, eb);
	/* Whichever thread was idle last time stores this buffer: the caller
	 * when it had to wait for the worker (SHA-256 alone can keep a core
	 * busy), else the worker. Parsing, indexing, hashing and storing cost
	 * different amounts for different captures and sources. */
	bool store_here = w->caller_waited;
	w->caller_waited = false;
	struct writer_worker *k = w->worker;
	pthread_mutex_lock(&k->lock);
	k->buf = buf;
	k->len = len;
	k->hash_only = store_here;
	k->pending = true;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	if (!store_here)
		return 0;
	r = writer_store(w, w->ring, buf, len, eb);
	if (r < 0) { /* as the worker's own errors: every later call reports it */
		store_writer_wait(w, NULL);
		pthread_mutex_lock(&k->lock);
		if (k->err == 0) {
			k->err = r;
			if (eb)
				k->eb = *eb;
		}
		pthread_mutex_unlock(&k->lock);
	}
	return r;
}

int store_writer_wait(struct store_writer *w, struct errbuf *eb)
{
	struct writer_worker *k = w->worker;
	if (!k)
		return 0;
	pthread_mutex_lock(&k->lock);
	w->caller_waited |= k->pending;
	while (k->pending)
		pthread_cond_wait(&k->cond, &k->lock);
	int r = k->err;
	pthread_mutex_unlock(&k->lock);
	if (r < 0 && eb)
		*eb = k->eb;
	return r;
}

/* Written, truncated, replaced, renamed or unlinked since the import
 * began (the last three change st_ctim). */
static bool source_changed(const struct store_writer *w, int fd)
{
	struct stat now;
	const struct stat *then = &w->src_st;
	return fstat(fd, &now) < 0 || now.st_size != then->st_size || now.st_ino != then->st_ino ||
	       now.st_mtim.tv_sec != then->st_mtim.tv_sec ||
	       now.st_mtim.tv_nsec != then->st_mtim.tv_nsec ||
	       now.st_ctim.tv_sec != then->st_ctim.tv_sec ||
	       now.st_ctim.tv_nsec != then->st_ctim.tv_nsec;
}

int store_writer_finish(struct store_writer *w, uint8_t sha256[32], uint64_t *size,
			struct errbuf *eb)
{
	unsigned int n = 0;
	struct stat s;

	if (!w->finished) {
		int r = store_writer_wait(w, eb);
		if (r < 0)
			return r;
		worker_join(w, false);
		r = store_writer_wait(w, eb); /* a source hasher's error */
		if (r < 0)
			return r;
		if (w->hashes_source && w->worker->hashed != (uint64_t)w->src_st.st_size)
			return source_changed_error(eb);
		if (!EVP_DigestFinal_ex(w->ctx, w->sha, &n) || n != 32)
			return errbuf_set(eb, -EIO, "SHA-256 final failed");
		w->finished = true;
	}
	/* A linked object is the source file itself: its bytes must be the
	 * ones hashed, so it must not have changed while they were read
	 * (a retry then imports it as it is), and they must not be, say, a
	 * compressed source's expansion. */
	if (w->linked && (source_changed(w, w->fd) || !lease_intact(w->fd)))
		return source_changed_error(eb);
	if (w->linked) {
		if (fstat(w->fd, &s) < 0)
			return errbuf_set(eb, -errno, "cannot stat %s: %s", w->link_source,
					  strerror(errno));
		if ((uint64_t)s.st_size != w->size)
			return errbuf_set(eb, -EINVAL,
					  "%s has %lld bytes but %llu were hashed; cannot link it",
					  w->link_source, (long long)s.st_size,
					  (unsigned long long)w->size);
	}
	/* A kernel-side copy took the source's bytes, not the ones hashed:
	 * they are the same only if nobody wrote to the source meanwhile. */
	if (w->copy_fd >= 0) {
		int r = w->copier ? copier_join(w, false, eb) : 0;
		if (r < 0)
			return r;
		if (source_changed(w, w->copy_fd) || (uint64_t)w->src_st.st_size != w->size)
			return source_changed_error(eb);
	}
	memcpy(sha256, w->sha, 32);
	*size = w->size;
	w->verified = true;
	return 0;
}

bool store_writer_linked(const struct store_writer *w)
{
	return w->linked;
}

bool store_writer_source_is(const struct store_writer *w, dev_t dev, ino_t ino)
{
	if (!w->linked && w->copy_fd < 0)
		return true;
	return w->src_st.st_dev == dev && w->src_st.st_ino == ino;
}

static int fsync_dir(struct ring *ring, int dirfd, const char *name)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	return ring ? ring_fsync(ring, fd, false) : (fsync(fd) < 0 ? -errno : 0);
}

/* Makes sure objects/ab exists durably before an object is linked in. */
static int ensure_fanout(struct store_writer *w, struct errbuf *eb)
{
	struct store *st = w->st;
	uint8_t b = w->sha[0];
	uint64_t bit = UINT64_C(1) << (b & 63);
	char name[3];

	if (atomic_load(&st->fanout_durable[b >> 6]) & bit)
		return 0;
	snprintf(name, sizeof(name), "%02x", b);
	if (mkdirat(st->objects_fd, name, DIR_MODE) < 0 && errno != EEXIST)
		return errbuf_set(eb, -errno, "cannot create %s/objects/%s: %s", st->root, name,
				  strerror(errno));
	/* Also when it existed: its creator may not have fsynced objects/ yet. */
	int r = ring_fsync(w->ring, st->objects_fd, false);
	if (r < 0)
		return errbuf_set(eb, r, "cannot fsync %s/objects: %s", st->root, strerror(-r));
	atomic_fetch_or(&st->fanout_durable[b >> 6], bit);
	return 0;
}

/* Makes the file durable and read-only before it gets its name. The
 * fan-out folder comes first: a store that cannot take the object (read
 * only, no permission) then leaves a linked source as it was. */
static int seal_file(struct store_writer *w, const char *shown, struct errbuf *eb)
{
	int r = ensure_fanout(w, eb);
	if (r < 0)
		return r;
	if (fchmod(w->fd, OBJECT_MODE) < 0)
		return errbuf_set(eb, -errno, "cannot make %s read-only: %s", shown, strerror(errno));
	r = ring_fsync(w->ring, w->fd, false);
	if (r < 0)
		return errbuf_set(eb, r, "cannot fsync %s: %s", shown, strerror(-r));
	return 0;
}

/* Refuses to keep a link whose inode is not the file that was hashed (the
 * source path was replaced in between). */
static int check_linked_inode(struct store_writer *w, const char *rel, struct errbuf *eb)
{
	struct stat a, b;

	if (fstat(w->fd, &a) < 0 || fstatat(w->st->objects_fd, rel, &b, AT_SYMLINK_NOFOLLOW) < 0)
		return errbuf_set(eb, -errno, "cannot stat %s: %s", w->link_source, strerror(errno));
	if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return 0;
	unlinkat(w->st->objects_fd, rel, 0);
	return errbuf_set(eb, -ESTALE, "%s was replaced while being imported", w->link_source);
}

/*
 * Links from (at fromfd) to objects/rel: 0, or 1 when the object is
 * already stored. A file under that name with another size than the
 * bytes named was changed in place (issue 15.4's writer appended to a
 * linked object): it is quarantined and the name taken, so an import of
 * the same bytes never dedups onto a corrupt object. (A change that keeps
 * the size is the scrub's to find.) Returns 0, 1 or a negative errno.
 */
static int link_object(struct store_writer *w, int fromfd, const char *from, const char *rel,
		       struct errbuf *eb)
{
	for (int tries = 0; tries < 3; tries++) {
		struct stat s;
		if (linkat(fromfd, from, w->st->objects_fd, rel, 0) == 0)
			return 0;
		if (errno != EEXIST)
			return errbuf_set(eb, -errno, "cannot link %s to %s/objects/%s: %s", from,
					  w->st->root, rel, strerror(errno));
		int r = fstatat(w->st->objects_fd, rel, &s, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
		if (r == 0 && (uint64_t)s.st_size == w->size)
			return 1;
		if (r == -ENOENT) /* removed meanwhile: link again */
			continue;
		if (r < 0)
			return errbuf_set(eb, r, "cannot stat %s/objects/%s: %s", w->st->root, rel,
					  strerror(-r));
		r = store_object_quarantine(w->st, w->sha, eb);
		if (r < 0 && r != -ENOENT)
			return r;
	}
	return errbuf_set(eb, -EAGAIN, "%s/objects/%s keeps changing", w->st->root, rel);
}

/*
 * Sealed (read-only: only we or root may open it for writing from now on)
 * and linked, the object is the source's inode; the lease, intact after
 * the link, shows nobody opened it for writing since before it was hashed.
 * A broken one takes the name back (-EAGAIN: a retry copies).
 */
static int publish_link(struct store_writer *w, const char *rel, bool *exists, struct errbuf *eb)
{
	int r = seal_file(w, w->link_source, eb);

	if (r < 0)
		return r;
	r = link_object(w, AT_FDCWD, w->link_source, rel, eb);
	if (r != 0) {
		*exists = r == 1;
		return r < 0 ? r : 0;
	}
	r = check_linked_inode(w, rel, eb);
	if (r == 0 && !lease_intact(w->fd)) {
		unlinkat(w->st->objects_fd, rel, 0);
		r = source_changed_error(eb);
	}
	return r;
}

static int publish_copy(struct store_writer *w, const char *rel, bool *exists, struct errbuf *eb)
{
	char shown[4096];
	int r;

	snprintf(shown, sizeof(shown), "%s/tmp/%s", w->st->root, w->tmp_name);
	r = seal_file(w, shown, eb);
	if (r < 0)
		return r;
	/* link(), not rename(): an intact object is never replaced. */
	r = link_object(w, w->st->tmp_fd, w->tmp_name, rel, eb);
	if (r < 0)
		return r;
	*exists = r == 1;
	if (unlinkat(w->st->tmp_fd, w->tmp_name, 0) < 0)
		return errbuf_set(eb, -errno, "cannot remove %s: %s", shown, strerror(errno));
	free(w->tmp_name);
	w->tmp_name = NULL;
	return 0;
}

int store_writer_publish(struct store_writer *w, struct errbuf *eb)
{
	char rel[REL_NAME_LEN];
	bool exists = false;
	int r;

	errbuf_clear(eb);
	if (!w->verified || w->published)
		return errbuf_set(eb, -EINVAL, "publish before a successful finish, or twice");
	rel_name(w->sha, rel);
	r = w->linked ? publish_link(w, rel, &exists, eb) : publish_copy(w, rel, &exists, eb);
	if (r < 0)
		return r;
	/* Even when it existed: whoever linked it may not have fsynced yet. */
	rel[2] = '\0';
	r = fsync_dir(w->ring, w->st->objects_fd, rel);
	if (r < 0)
		return errbuf_set(eb, r, "cannot fsync %s/objects/%s: %s", w->st->root, rel,
				  strerror(-r));
	w->published = true;
	return exists ? STORE_EXISTS : 0;
}

static int hash_chunk(void *opaque, const void *buf, size_t len)
{
	return EVP_DigestUpdate(opaque, buf, len) ? 0 : -EIO;
}

int store_hash_fd(struct ring *ring, int fd, uint8_t sha[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned n = 0;
	int r = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ? 0 : -ENOMEM;
	if (r == 0)
		r = ring_read_stream(ring, fd, RING_CHUNK, RING_DEPTH, hash_chunk, ctx);
	if (r == 0 && (!EVP_DigestFinal_ex(ctx, sha, &n) || n != 32))
		r = -EIO;
	EVP_MD_CTX_free(ctx);
	return r;
}

int store_object_open(const struct store *st, const uint8_t sha[32])
{
	char rel[REL_NAME_LEN];

	rel_name(sha, rel);
	int fd = openat(st->objects_fd, rel, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int store_object_remove(const struct store *st, const uint8_t sha[32])
{
	char rel[REL_NAME_LEN];

	rel_name(sha, rel);
	if (unlinkat(st->objects_fd, rel, 0) < 0)
		return -errno;
	rel[2] = '\0';
	return fsync_dir(NULL, st->objects_fd, rel);
}

/* quarantine/ under the root, created on first use. Returns an fd or a
 * negative errno. */
static int open_quarantine(const struct store *st, bool create)
{
	if (create && mkdirat(st->root_fd, QUARANTINE_DIR, DIR_MODE) == 0 && fsync(st->root_fd) < 0)
		return -errno;
	int fd = openat(st->root_fd, QUARANTINE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int store_object_quarantine(const struct store *st, const uint8_t sha[32], struct errbuf *eb)
{
	char rel[REL_NAME_LEN], name[80];
	_cleanup_close_ int qfd = open_quarantine(st, true);
	int r = -EEXIST;

	rel_name(sha, rel);
	if (qfd < 0)
		return errbuf_set(eb, qfd, "cannot create %s/%s: %s", st->root, QUARANTINE_DIR,
				  strerror(-qfd));
	/* Never over an earlier quarantine of the same name: both are kept. */
	for (unsigned n = 0; r == -EEXIST && n < 1000; n++) {
		snprintf(name, sizeof(name), "%s.%u", rel + 3, n);
		r = renameat2(st->objects_fd, rel, qfd, name, RENAME_NOREPLACE) < 0 ? -errno : 0;
	}
	if (r == -ENOENT)
		return r;
	if (r < 0)
		return errbuf_set(eb, r, "cannot move %s/objects/%s to %s/%s: %s", st->root, rel,
				  st->root, QUARANTINE_DIR, strerror(-r));
	rel[2] = '\0';
	if (fsync(qfd) < 0 || (r = fsync_dir(NULL, st->objects_fd, rel)) < 0)
		return errbuf_set(eb, r < 0 ? r : -errno, "cannot fsync %s/%s: %s", st->root,
				  QUARANTINE_DIR, strerror(r < 0 ? -r : errno));
	return 0;
}

bool store_object_quarantined(const struct store *st, const uint8_t sha[32])
{
	char hex[65], name[80];
	_cleanup_close_ int qfd = open_quarantine(st, false);

	if (qfd < 0)
		return false;
	sha256_hex(sha, hex);
	snprintf(name, sizeof(name), "%s.0", hex);
	return faccessat(qfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[n] == '\0';
}

/* Reports the objects of one fan-out folder; odd names are skipped. */
static int foreach_in_fanout(const struct store *st, const char *fan, store_object_fn fn,
			     void *opaque)
{
	int fd = openat(st->objects_fd, fan, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;
	int r = 0;

	if (!d) {
		r = errno == ENOTDIR ? 0 : -errno; /* a stray file named like a folder */
		if (fd >= 0)
			close(fd);
		return r;
	}
	while (r == 0 && (de = readdir(d)) != NULL) {
		struct stat s;
		uint8_t sha[32];
		if (!is_lower_hex(de->d_name, 64) || memcmp(de->d_name, fan, 2) != 0 ||
		    sha256_parse(de->d_name, sha) < 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &s, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(s.st_mode))
			continue;
		r = fn(opaque, sha, (uint64_t)s.st_size);
	}
	closedir(d);
	return r;
}

/* A fresh open file description of dirfd's folder: a dup would share its
 * offset with dirfd and with concurrent walks. NULL with errno on failure. */
static DIR *opendir_fresh(int dirfd)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d && fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return d;
}

int store_foreach_object(const struct store *st, store_object_fn fn, void *opaque)
{
	DIR *d = opendir_fresh(st->objects_fd);
	struct dirent *de;
	int r = 0;

	if (!d)
		return -errno;
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (is_lower_hex(de->d_name, 2))
			r = foreach_in_fanout(st, de->d_name, fn, opaque);
	}
	closedir(d);
	return r;
}

int store_foreach_tmp(const struct store *st, store_tmp_fn fn, void *opaque)
{
	DIR *d = opendir_fresh(st->tmp_fd);
	struct dirent *de;
	int r = 0;

	if (!d)
		return -errno;
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			r = fn(opaque, de->d_name);
	}
	closedir(d);
	return r;
}

int store_tmp_remove(const struct store *st, const char *name)
{
	if (unlinkat(st->tmp_fd, name, 0) == 0)
		return 0;
	if (errno == EISDIR && unlinkat(st->tmp_fd, name, AT_REMOVEDIR) == 0)
		return 0;
	return -errno;
}

int store_space(const struct store *st, uint64_t *free_bytes, uint64_t *total_bytes)
{
	struct statvfs sv;

	if (fstatvfs(st->objects_fd, &sv) < 0)
		return -errno;
	*free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	*total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
	return 0;
}
