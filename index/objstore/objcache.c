/*
 * objcache.c - see objcache.h.
 *
 * Layout under <root>/cache/: ab/<sha256 hex>.blk holds the cached blocks
 * of one object (a "pack"), ab/<sha256 hex>.obj the whole object, tmp/
 * the whole-object writes in progress (emptied on open), state the boot
 * id of the last open and whether it was closed cleanly.
 *
 * A pack is a sparse file: a header (magic, the object's size), a bitmap
 * of the blocks it holds, then block n at pack_base + n * OBJCACHE_BLOCK.
 * One file per object, not per block: creating a file per fetched block
 * was most of the daemon's CPU in a cold query, and opening one per hit
 * most of a repeat's. A block's bit is set only after its bytes are
 * written, and cleared before they are punched out (eviction), so after
 * a crash of the daemon the bitmap never names bytes that are not there.
 *
 * The index is a tree (tsearch) of entries keyed by (sha, block), with an
 * intrusive LRU list, under one mutex; the accounting always matches what
 * the bitmaps name, and the blocks being written. Bitmap bytes are written
 * under the mutex, from the index. Block bytes are written outside it,
 * each only while its entry is pending (centry.job), which nothing
 * punches. Every block of an object holds the same bytes whoever writes
 * it (they are the object's), so a late write (its entry evicted while it
 * was pending) can leave only unaccounted bytes: the last job to finish a
 * block punches them when no entry names it. Reads
 * happen outside the mutex and are checked against the entry's
 * generation afterwards: an entry evicted (punched) during the read, or
 * put back, makes it a miss; so does the object's pack being removed
 * since the reader opened it (its packref's epoch changed).
 *
 * Blocks fetched for queries are written by a thread of the cache's own
 * (the query goes on fetching meanwhile). A reader of a pending block
 * waits until it is on disk. At most WRITE_QUEUE_MAX blocks wait; past
 * that, or without the thread, the fetching thread writes the block.
 * Without hole punching (a filesystem that lacks it), evicting a block
 * removes its whole pack. A pack goes with the last block of its object.
 *
 * The free-space floor (objcache_set_keep_free): room is what the cache
 * may still write before the file system's free space would fall below
 * it. It is set from fstatvfs's f_bavail (the free space retention and
 * the store read), less what the cache has promised itself but not
 * written yet (unwritten: queued blocks, the rest of whole copies being
 * downloaded), since those are not in the file system's count. Between
 * two looks it moves with the cache: an admission takes its bytes
 * rounded up to pages (and a page for a new pack's header), anything
 * forgotten gives back its bytes (no more than punching or unlinking
 * frees), so the estimate errs toward the floor being kept; every look
 * corrects it, including for what others wrote or freed meanwhile.
 */
#include "objcache.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <search.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fdio.h"
#include "hexdigit.h"
#include "monoclock.h"
#include "store.h"

#define CACHE_DIR "cache"
#define DIR_MODE 0750
#define FILE_MODE 0440
#define PACK_MODE 0640
/* Version 2: its blocks were checked against their digests when fetched.
 * Packs of version 1 (blocks cached unchecked) are not packs to rebuild,
 * so a start removes them. */
#define PACK_MAGIC "CVBLKS2\n"
#define PACK_HEADER 16 /* the magic, then the object's size, little-endian */
#define PAGE 4096u
#define WHOLE (-1)
#define STREAM_CHUNK (1u << 20)
#define MTIME_GRAIN_S 60
#define WRITE_QUEUE_MAX 128 /* blocks waiting for the writer: 8 MiB */

const double objcache_latency_bounds[8] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5 };

/* A fetched block on its way to disk. */
struct wjob {
	struct wjob *next;
	uint8_t sha[32];
	int64_t block;
	uint64_t objsize;
	size_t len;
	bool dropped; /* its entry went (evicted) before it was written */
	uint64_t disk; /* counted in unwritten until written (or skipped) */
	uint8_t data[];
};

struct centry {
	uint8_t sha[32];
	int64_t block; /* WHOLE for the whole object */
	uint64_t size;    /* bytes held: the block's, or the object's */
	uint64_t objsize; /* the object's */
	uint64_t gen;     /* tells a reader its entry is still the one it read */
	struct centry *prev, *next; /* LRU: head is the most recent */
	struct centry *pack_prev, *pack_next; /* the object's other blocks */
	struct wjob *job;           /* not on disk yet: being written */
	/* Its bytes matched their record since this process cached them (a
	 * fetched block, a whole copy after its SHA-256) or first read them
	 * (a block found at start): served without hashing them again. */
	bool checked;
};

/* The entries of an object's blocks (pending ones too): its pack goes
 * with the last, else evicted objects would leave empty packs (a page and
 * an inode each) for as long as the daemon runs; and removing the pack
 * forgets them without a walk of the whole index. Its pack file is only
 * ever removed with it (or as it goes), so a reader's fd opened while a
 * packref of a given epoch was there is of the current file for as long
 * as that packref is. */
struct packref {
	uint8_t sha[32];
	struct centry *blocks; /* never empty: the packref goes with its last */
	uint64_t epoch;        /* unique, as generations are */
};

/* Forgets remembered by object: a read that overlaps more of them than
 * this is not cached whatever its object (forgotten_since_locked). */
#define FORGOT_RING 64

struct objcache {
	char *dir; /* <root>/cache */
	int dir_fd, tmp_fd;
	uint64_t max;
	pthread_mutex_t lock;
	void *tree;
	void *packs; /* struct packref by sha */
	struct centry lru; /* sentinel */
	struct objcache_stats st;
	uint64_t next_gen;
	/* objcache_forget calls so far, and the objects of the latest:
	 * bytes of an object read from the store before its forget are not
	 * cached after it, since the store may no longer hold them (a
	 * removal forgets its object). Under lock. */
	uint64_t forgets;
	uint8_t forgot[FORGOT_RING][32];
	bool no_punch;       /* evict as without hole punching (tests) */
	objcache_check_fn check_fn; /* what fetched blocks must match */
	void *check_opaque;
	objcache_notice_fn notice_fn; /* mended faults, for the log */
	void *notice_opaque;
	char boot_id[64];
	/* The free-space floor, under lock (see the top of this file). */
	uint64_t keep_free;    /* 0: none */
	int64_t room;          /* may go negative: over the floor */
	uint64_t unwritten;
	uint64_t since_look;   /* bytes admitted since the last look */
	double looked_at;      /* mono_s of the last look; 0: never */
	objcache_statfs_fn statfs_fn; /* tests */
	void *statfs_opaque;
	/* The writer thread and its queue, under lock. */
	pthread_t writer;
	bool writer_running, stopping, writing;
	pthread_cond_t work, written;
	struct wjob *queue_head, *queue_tail;
	unsigned queued;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct centry *x = a, *y = b;
	int c = memcmp(x->sha, y->sha, 32);
	if (c)
		return c;
	return x->block < y->block ? -1 : x->block > y->block;
}

/* "ab/<hex>.obj" for the whole object, "ab/<hex>.blk" for its pack. */
static void entry_name(const uint8_t sha[32], bool whole, char *buf, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char hex[65];

	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[sha[i] >> 4];
		hex[2 * i + 1] = digits[sha[i] & 15];
	}
	hex[64] = '\0';
	snprintf(buf, len, "%.2s/%s.%s", hex, hex, whole ? "obj" : "blk");
}

/* Parses "<hex>.obj" (*whole true) or "<hex>.blk"; false for anything else. */
static bool parse_name(const char *name, uint8_t sha[32], bool *whole)
{
	for (int i = 0; i < 32; i++) {
		int hi = hex_digit_value(name[2 * i]);
		int lo = hi < 0 ? -1 : hex_digit_value(name[2 * i + 1]);
		if (lo < 0)
			return false;
		sha[i] = (uint8_t)(hi << 4 | lo);
	}
	*whole = strcmp(name + 64, ".obj") == 0;
	return *whole || strcmp(name + 64, ".blk") == 0;
}

/* ---- packs ---- */

static uint64_t pack_blocks(uint64_t objsize)
{
	return (objsize + OBJCACHE_BLOCK - 1) / OBJCACHE_BLOCK;
}

/* Offset of block 0 in the pack: past the header and the bitmap. */
static uint64_t pack_base(uint64_t objsize)
{
	uint64_t end = PACK_HEADER + (pack_blocks(objsize) + 7) / 8;
	return (end + PAGE - 1) / PAGE * PAGE;
}

static void pack_header(uint64_t objsize, uint8_t hdr[PACK_HEADER])
{
	memcpy(hdr, PACK_MAGIC, 8);
	for (int i = 0; i < 8; i++)
		hdr[8 + i] = (uint8_t)(objsize >> (8 * i));
}

/* Checks an open pack's header; writes it into an empty pack when for
 * writing. Returns 0 or -EIO. */
static int pack_check(int fd, uint64_t objsize, bool writing)
{
	uint8_t want[PACK_HEADER], got[PACK_HEADER];
	pack_header(objsize, want);
	ssize_t n = pread(fd, got, sizeof(got), 0);
	if (n == 0 && writing)
		return pwrite(fd, want, sizeof(want), 0) == (ssize_t)sizeof(want) ? 0 : -EIO;
	return n == (ssize_t)sizeof(got) && memcmp(got, want, sizeof(got)) == 0 ? 0 : -EIO;
}

enum pack_mode { PACK_READ, PACK_WRITE, PACK_CREATE };

/* Opens sha's pack; PACK_CREATE makes it (and its fan-out folder) when
 * missing. Returns an fd or a negative errno. */
static int pack_open(struct objcache *c, const uint8_t sha[32], uint64_t objsize,
		     enum pack_mode mode)
{
	char name[80];
	/* O_NONBLOCK: a FIFO put in its place must not hang us (the header
	 * check then refuses it); no effect on a regular file. */
	int flags = (mode == PACK_READ ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;

	if (mode == PACK_CREATE)
		flags |= O_CREAT;
	entry_name(sha, false, name, sizeof(name));
	int fd = openat(c->dir_fd, name, flags, PACK_MODE);
	if (fd < 0 && mode == PACK_CREATE && errno == ENOENT) {
		name[2] = '\0';
		mkdirat(c->dir_fd, name, DIR_MODE);
		name[2] = '/';
		fd = openat(c->dir_fd, name, flags, PACK_MODE);
	}
	if (fd < 0)
		return -errno;
	int r = pack_check(fd, objsize, mode == PACK_CREATE);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* ---- the index ---- */

static void lru_unlink(struct centry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_push_head(struct objcache *c, struct centry *e)
{
	e->prev = &c->lru;
	e->next = c->lru.next;
	c->lru.next->prev = e;
	c->lru.next = e;
}

static struct centry *find_locked(struct objcache *c, const uint8_t sha[32], int64_t block)
{
	struct centry key;
	memcpy(key.sha, sha, 32);
	key.block = block;
	struct centry **found = tfind(&key, &c->tree, entry_cmp);
	return found ? *found : NULL;
}

static int packref_cmp(const void *a, const void *b)
{
	return memcmp(((const struct packref *)a)->sha, ((const struct packref *)b)->sha, 32);
}

/* Under the lock: sha's packref, made when add; NULL when it has no block
 * entry (or, add, without memory). */
static struct packref *packref_locked(struct objcache *c, const uint8_t sha[32], bool add)
{
	struct packref key = { 0 }, *p, **found;
	memcpy(key.sha, sha, 32);
	found = tfind(&key, &c->packs, packref_cmp);
	if (found || !add)
		return found ? *found : NULL;
	if (!(p = calloc(1, sizeof(*p))))
		return NULL;
	*p = key;
	p->epoch = ++c->next_gen;
	found = tsearch(p, &c->packs, packref_cmp);
	if (!found || *found != p) {
		free(p);
		return NULL;
	}
	return p;
}

/* Under the lock: e's object has one block entry more. */
static void packref_link_locked(struct packref *p, struct centry *e)
{
	e->pack_prev = NULL;
	e->pack_next = p->blocks;
	if (p->blocks)
		p->blocks->pack_prev = e;
	p->blocks = e;
}

static void packref_free_locked(struct objcache *c, struct packref *p)
{
	tdelete(p, &c->packs, packref_cmp);
	free(p);
}

/* Under the lock: e's object has one block entry less (no packref after
 * its last). */
static void packref_unlink_locked(struct objcache *c, struct centry *e)
{
	struct packref *p = packref_locked(c, e->sha, false);
	if (!p)
		return;
	if (e->pack_prev)
		e->pack_prev->pack_next = e->pack_next;
	else
		p->blocks = e->pack_next;
	if (e->pack_next)
		e->pack_next->pack_prev = e->pack_prev;
	if (!p->blocks)
		packref_free_locked(c, p);
}

/* Under the lock: writes the bitmap byte that holds block's bit as the
 * index has it (a bit for each block on disk). */
static int mark_locked(struct objcache *c, int fd, const uint8_t sha[32], int64_t block)
{
	uint8_t byte = 0;
	int64_t first = block & ~(int64_t)7;
	for (int i = 0; i < 8; i++) {
		const struct centry *e = find_locked(c, sha, first + i);
		if (e && !e->job)
			byte |= (uint8_t)(1u << i);
	}
	return pwrite(fd, &byte, 1, (off_t)(PACK_HEADER + block / 8)) == 1 ? 0 : -EIO;
}

static void forget_locked(struct objcache *c, struct centry *e, bool evicted)
{
	lru_unlink(e);
	tdelete(e, &c->tree, entry_cmp);
	if (e->block != WHOLE)
		packref_unlink_locked(c, e);
	c->st.bytes -= e->size;
	c->st.files--;
	c->room += (int64_t)e->size;
	if (evicted) {
		c->st.evictions++;
		c->st.evicted_bytes += e->size;
	}
}

static void drop_pack_locked(struct objcache *c, const uint8_t sha[32]);
static void unlink_pack_locked(struct objcache *c, const uint8_t sha[32]);

/* Under the lock, once no entry names the block: clears its bit, then
 * punches its bytes out of the pack. Without hole punching, the pack goes
 * (and every block it holds); with no block of the object left, too. */
static void punch_locked(struct objcache *c, const uint8_t sha[32], int64_t block,
			 uint64_t objsize, size_t len)
{
	int fd = pack_open(c, sha, objsize, PACK_WRITE);
	if (fd < 0)
		return; /* no pack: nothing to punch */
	bool ok = !c->no_punch && mark_locked(c, fd, sha, block) == 0 &&
		  fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			    (off_t)(pack_base(objsize) + (uint64_t)block * OBJCACHE_BLOCK),
			    (off_t)len) == 0;
	close(fd);
	if (!ok)
		drop_pack_locked(c, sha);
	else if (!packref_locked(c, sha, false))
		unlink_pack_locked(c, sha);
}

/* Under the lock: forgets e, and punches its block (a whole object's file
 * goes). A pending block's writer punches it once written. */
static void drop_locked(struct objcache *c, struct centry *e, bool evicted)
{
	char name[80];

	forget_locked(c, e, evicted);
	if (e->job) {
		e->job->dropped = true;
	} else if (e->block == WHOLE) {
		entry_name(e->sha, true, name, sizeof(name));
		unlinkat(c->dir_fd, name, 0);
	} else {
		punch_locked(c, e->sha, e->block, e->objsize, (size_t)e->size);
	}
	free(e);
}

/* Under the lock, with sha's packref gone: removes its pack file (blocks
 * cached later go into a new one). */
static void unlink_pack_locked(struct objcache *c, const uint8_t sha[32])
{
	char name[80];

	entry_name(sha, false, name, sizeof(name));
	unlinkat(c->dir_fd, name, 0);
}

/* Under the lock: removes sha's pack and forgets its blocks (their
 * pending writes land in the removed file, and are not marked). */
static void drop_pack_locked(struct objcache *c, const uint8_t sha[32])
{
	struct packref *p;

	unlink_pack_locked(c, sha);
	while ((p = packref_locked(c, sha, false)) != NULL) {
		struct centry *e = p->blocks;
		forget_locked(c, e, false); /* the packref goes with the last */
		if (e->job)
			e->job->dropped = true;
		free(e);
	}
}

/* ---- the free-space floor ---- */

#define LOOK_EVERY_S 1.0
#define ROOM_MAX ((int64_t)1 << 62) /* no file system is near: keeps room's sums in range */

static uint64_t round_page(uint64_t n)
{
	return (n + PAGE - 1) / PAGE * PAGE;
}

static int fs_free(struct objcache *c, uint64_t *free_bytes)
{
	struct statvfs sv;

	if (c->statfs_fn)
		return c->statfs_fn(c->statfs_opaque, free_bytes);
	if (fstatvfs(c->dir_fd, &sv) < 0)
		return -errno;
	*free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

/* Under the lock: sets room from the file system's free space when it was
 * last looked at a second or OBJCACHE_STATFS_BYTES admitted ago (or now,
 * when force). When fstatvfs fails, room stays as it was. */
static void look_locked(struct objcache *c, bool force)
{
	uint64_t free_bytes = 0;
	double now = mono_s();

	if (!c->keep_free)
		return;
	if (!force && c->looked_at && c->since_look < OBJCACHE_STATFS_BYTES &&
	    now - c->looked_at < LOOK_EVERY_S)
		return;
	if (fs_free(c, &free_bytes) < 0)
		return;
	int64_t avail = free_bytes < (uint64_t)ROOM_MAX ? (int64_t)free_bytes : ROOM_MAX;
	c->room = avail - (int64_t)c->keep_free - (int64_t)c->unwritten;
	c->looked_at = now;
	c->since_look = 0;
}

/* Under the lock: whether size more bytes, taking disk bytes of the file
 * system, fit both the bound and the floor. */
static bool fits_locked(struct objcache *c, uint64_t size, uint64_t disk)
{
	return c->st.bytes + size <= c->max && (!c->keep_free || c->room >= (int64_t)disk);
}

/* Under the lock: evicts the least recently used until size bytes taking
 * disk bytes of the file system fit, or nothing is left; whether they fit. */
static bool evict_locked(struct objcache *c, uint64_t size, uint64_t disk)
{
	look_locked(c, false);
	/* Short of room as last looked at: look again before evicting or
	 * refusing (space freed since, e.g. a file removed, shows at once). */
	if (!fits_locked(c, size, disk))
		look_locked(c, true);
	while (c->st.files > 0 && !fits_locked(c, size, disk))
		drop_locked(c, c->lru.prev, true);
	return fits_locked(c, size, disk);
}

/* Under the lock: disk bytes are being written (or will be) for the cache. */
static void take_room_locked(struct objcache *c, uint64_t size, uint64_t disk)
{
	c->room -= (int64_t)disk;
	c->unwritten += disk;
	c->since_look += size;
}

/* What the cache may hold now, as last looked at. */
static uint64_t limit_locked(struct objcache *c)
{
	if (!c->keep_free || c->room >= (int64_t)c->max)
		return c->max;
	int64_t limit = (int64_t)c->st.bytes + c->room; /* less than it holds: over the floor */
	if (limit <= 0)
		return 0;
	return (uint64_t)limit < c->max ? (uint64_t)limit : c->max;
}

/* Under the lock: adds an entry (most recent first, unless at_tail:
 * rebuilding, oldest last). NULL when it was there already or memory ran
 * out. */
static struct centry *add_locked(struct objcache *c, const uint8_t sha[32], int64_t block,
				 uint64_t size, uint64_t objsize, bool at_tail)
{
	struct centry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	memcpy(e->sha, sha, 32);
	e->block = block;
	e->size = size;
	e->objsize = objsize;
	e->gen = ++c->next_gen;
	struct packref *p = block == WHOLE ? NULL : packref_locked(c, sha, true);
	struct centry **found = block == WHOLE || p ? tsearch(e, &c->tree, entry_cmp) : NULL;
	if (!found || *found != e) {
		if (p && !p->blocks)
			packref_free_locked(c, p); /* made for e */
		free(e);
		return NULL;
	}
	if (p)
		packref_link_locked(p, e);
	if (at_tail) {
		e->next = &c->lru;
		e->prev = c->lru.prev;
		c->lru.prev->next = e;
		c->lru.prev = e;
	} else {
		lru_push_head(c, e);
	}
	c->st.bytes += size;
	c->st.files++;
	return e;
}

/* ---- opening: state, leftovers, rebuilding the accounting ---- */

static void read_boot_id(char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	buf[0] = '\0';
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/* Writes "<boot id> <clean>" to state durably. */
static int write_state(struct objcache *c, bool clean)
{
	char line[96];
	int n = snprintf(line, sizeof(line), "%s %d\n", c->boot_id, clean ? 1 : 0);
	/* A new file, never what a symlink left in its place names (which
	 * would be truncated and written over). */
	unlinkat(c->dir_fd, "state.tmp", 0);
	_cleanup_close_ int fd = openat(c->dir_fd, "state.tmp",
					O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	if (write(fd, line, (size_t)n) != n || fsync(fd) < 0)
		return -EIO;
	if (renameat(c->dir_fd, "state.tmp", c->dir_fd, "state") < 0 || fsync(c->dir_fd) < 0)
		return -errno;
	return 0;
}

/* Whether the files can be trusted: no reboot since the last open, or
 * that open ended with a clean close (which synced them). */
static bool state_trusted(struct objcache *c)
{
	char line[96] = "", boot[64];
	int clean = 0;
	struct stat s;
	/* O_NONBLOCK: a FIFO in its place must not hang the open (it is
	 * refused, as anything but a regular file). */
	_cleanup_close_ int fd = openat(c->dir_fd, "state",
					O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	ssize_t n = fd < 0 || fstat(fd, &s) < 0 || !S_ISREG(s.st_mode) ?
			    -1 : read(fd, line, sizeof(line) - 1);

	if (n <= 0)
		return false;
	line[n] = '\0';
	if (sscanf(line, "%63s %d", boot, &clean) != 2)
		return false;
	return clean == 1 || (c->boot_id[0] && strcmp(boot, c->boot_id) == 0);
}

static void empty_dir(int dir)
{
	int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

struct found {
	uint8_t sha[32];
	int64_t block;
	uint64_t size, objsize;
	struct timespec mtime;
};

struct found_vec {
	struct found *v;
	size_t n, cap;
};

static int found_push(struct found_vec *fv, const struct found *f)
{
	if (fv->n == fv->cap) {
		size_t cap = fv->cap ? fv->cap * 2 : 256;
		struct found *grown = realloc(fv->v, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		fv->v = grown;
		fv->cap = cap;
	}
	fv->v[fv->n++] = *f;
	return 0;
}

static size_t block_len(uint64_t block, uint64_t size)
{
	uint64_t off = block * OBJCACHE_BLOCK;
	return size - off < OBJCACHE_BLOCK ? (size_t)(size - off) : OBJCACHE_BLOCK;
}

/* Lists the blocks named by bits[0..n), the bitmap's bytes from block
 * first on, whose bytes lie wholly within the file (end: its size). */
static int scan_bits(const uint8_t *bits, size_t n, uint64_t first, uint64_t nblocks,
		     uint64_t end, struct found *f, struct found_vec *fv)
{
	uint64_t base = pack_base(f->objsize);
	for (uint64_t b = first; b < nblocks && (b - first) / 8 < n; b++) {
		if (!(bits[(b - first) / 8] >> (b % 8) & 1))
			continue;
		f->block = (int64_t)b;
		f->size = block_len(b, f->objsize);
		if (base + b * OBJCACHE_BLOCK + f->size > end)
			break; /* cut short: not there, nor any later block */
		int r = found_push(fv, f);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Lists the blocks an open pack's bitmap names (f: its sha and mtime;
 * end: its size). Blocks past the end are not there (a truncated file,
 * or a header claiming a huge object), so the bitmap is read only as far
 * as blocks that could be, a page at a time: its length comes from a
 * header that may be garbage. Returns how many, or a negative errno
 * (-EIO: not a pack). */
static ssize_t scan_pack(int fd, uint64_t end, struct found *f, struct found_vec *fv)
{
	uint8_t hdr[PACK_HEADER], bits[PAGE];
	if (pread(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || memcmp(hdr, PACK_MAGIC, 8))
		return -EIO;
	f->objsize = 0;
	for (int i = 7; i >= 0; i--)
		f->objsize = f->objsize << 8 | hdr[8 + i];
	if (f->objsize == 0 || f->objsize > (1ull << 52))
		return -EIO;
	uint64_t base = pack_base(f->objsize), nblocks = pack_blocks(f->objsize);
	if (end <= base)
		return 0;
	if (nblocks > (end - base) / OBJCACHE_BLOCK + 1)
		nblocks = (end - base) / OBJCACHE_BLOCK + 1;
	size_t before = fv->n;
	for (uint64_t first = 0; first < nblocks; first += 8 * PAGE) {
		ssize_t n = pread(fd, bits, sizeof(bits), (off_t)(PACK_HEADER + first / 8));
		if (n <= 0)
			break;
		int r = scan_bits(bits, (size_t)n, first, nblocks, end, f, fv);
		if (r < 0)
			return r;
	}
	return (ssize_t)(fv->n - before);
}

/* Lists one cache file (a whole object, or a pack's blocks); false when
 * it is not one, or names nothing. */
static int scan_file(int dir, const char *name, struct found_vec *fv)
{
	struct found f;
	struct stat s;
	bool whole;
	if (!parse_name(name, f.sha, &whole))
		return 0;
	_cleanup_close_ int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &s) < 0 || !S_ISREG(s.st_mode) || s.st_size <= 0)
		return 0;
	f.mtime = s.st_mtim;
	if (s.st_mtim.tv_sec > time(NULL)) {
		/* A future mtime (a clock set back, a copy from elsewhere)
		 * counts as now, and is made now: else it would sort as the
		 * newest at every start, for as long as the clock lags it. */
		clock_gettime(CLOCK_REALTIME, &f.mtime);
		futimens(fd, NULL);
	}
	if (!whole) {
		ssize_t n = scan_pack(fd, (uint64_t)s.st_size, &f, fv);
		return n == -ENOMEM ? -ENOMEM : n > 0;
	}
	f.block = WHOLE;
	f.size = f.objsize = (uint64_t)s.st_size;
	int r = found_push(fv, &f);
	return r < 0 ? r : 1;
}

/* Lists one fan-out folder's cache files; removes the others (untrusted
 * files too, when trust is false). */
static int scan_fanout(int dir, const char *fan, bool trust, struct found_vec *fv)
{
	/* O_NOFOLLOW: a symlink in a fan-out's place is removed, never
	 * followed, else the sweep below would empty the folder it names. */
	int fd = openat(dir, fan, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;
	int r = 0;

	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
		unlinkat(dir, fan, 0);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while (r >= 0 && (de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r = trust ? scan_file(dirfd(d), de->d_name, fv) : 0;
		if (r == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	return r < 0 ? r : 0;
}

static int cmp_newest_first(const void *a, const void *b)
{
	const struct timespec *x = &((const struct found *)a)->mtime;
	const struct timespec *y = &((const struct found *)b)->mtime;
	if (x->tv_sec != y->tv_sec)
		return x->tv_sec < y->tv_sec ? 1 : -1;
	return x->tv_nsec < y->tv_nsec ? 1 : x->tv_nsec > y->tv_nsec ? -1 : 0;
}

static int rebuild(struct objcache *c, bool trust)
{
	char fan[12];
	struct found_vec fv = { 0 };
	int r = 0;

	for (int i = 0; i < 256 && r == 0; i++) {
		snprintf(fan, sizeof(fan), "%02x", i);
		r = scan_fanout(c->dir_fd, fan, trust, &fv);
	}
	if (r == 0 && fv.n > 1)
		qsort(fv.v, fv.n, sizeof(*fv.v), cmp_newest_first);
	for (size_t i = 0; r == 0 && i < fv.n; i++)
		add_locked(c, fv.v[i].sha, fv.v[i].block, fv.v[i].size, fv.v[i].objsize, true);
	free(fv.v);
	return r;
}

static int open_dirs(struct objcache *c, const char *root, struct errbuf *eb)
{
	size_t len = strlen(root) + sizeof("/" CACHE_DIR);
	if (!(c->dir = malloc(len)))
		return -ENOMEM;
	snprintf(c->dir, len, "%s/%s", root, CACHE_DIR);
	if (mkdir(c->dir, DIR_MODE) < 0 && errno != EEXIST)
		return errbuf_set(eb, -errno, "cannot create %s: %s", c->dir, strerror(errno));
	/* As tmp below: a symlink (or file) in the cache folder's place is
	 * removed and the folder made, never followed, else the start would
	 * empty the tmp/ and NN/ folders of the folder it names. */
	c->dir_fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c->dir_fd < 0 && (errno == ELOOP || errno == ENOTDIR) && unlink(c->dir) == 0 &&
	    mkdir(c->dir, DIR_MODE) == 0)
		c->dir_fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c->dir_fd < 0)
		return errbuf_set(eb, -errno, "cannot open %s: %s", c->dir, strerror(errno));
	if (mkdirat(c->dir_fd, "tmp", DIR_MODE) < 0 && errno != EEXIST)
		return errbuf_set(eb, -errno, "cannot create %s/tmp: %s", c->dir, strerror(errno));
	/* Emptied at every open: a symlink (or file) in its place is removed
	 * and the folder made, never followed to empty the folder it names. */
	c->tmp_fd = openat(c->dir_fd, "tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c->tmp_fd < 0 && (errno == ELOOP || errno == ENOTDIR) &&
	    unlinkat(c->dir_fd, "tmp", 0) == 0 && mkdirat(c->dir_fd, "tmp", DIR_MODE) == 0)
		c->tmp_fd = openat(c->dir_fd, "tmp",
				   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (c->tmp_fd < 0)
		return errbuf_set(eb, -errno, "cannot open %s/tmp: %s", c->dir, strerror(errno));
	return 0;
}

static void *writer_main(void *opaque);

int objcache_open(struct objcache **out, const char *root, uint64_t max_bytes,
		  struct errbuf *eb)
{
	struct objcache *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->dir_fd = c->tmp_fd = -1;
	c->max = c->st.max_bytes = max_bytes;
	c->lru.next = c->lru.prev = &c->lru;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->written, NULL);
	read_boot_id(c->boot_id, sizeof(c->boot_id));
	r = open_dirs(c, root, eb);
	if (r == 0) {
		empty_dir(c->tmp_fd);
		r = rebuild(c, state_trusted(c));
	}
	if (r == 0 && (r = write_state(c, false)) < 0)
		errbuf_set(eb, r, "cannot write %s/state: %s", c->dir, strerror(-r));
	if (r < 0) {
		objcache_free(c);
		return r;
	}
	evict_locked(c, 0, 0);
	/* Every signal blocked in it: they stay with the threads that expect
	 * them. Without it, blocks are written by the threads that fetch them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	c->writer_running = pthread_create(&c->writer, NULL, writer_main, c) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	*out = c;
	return 0;
}

static void destroy_entry(void *p)
{
	free(p);
}

struct objcache *objcache_free(struct objcache *c)
{
	if (!c)
		return NULL;
	if (c->writer_running) { /* it writes what waits, then ends */
		pthread_mutex_lock(&c->lock);
		c->stopping = true;
		pthread_cond_signal(&c->work);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->writer, NULL);
	}
	if (c->dir_fd >= 0 && syncfs(c->dir_fd) == 0)
		write_state(c, true);
	tdestroy(c->tree, destroy_entry);
	tdestroy(c->packs, destroy_entry);
	if (c->tmp_fd >= 0)
		close(c->tmp_fd);
	if (c->dir_fd >= 0)
		close(c->dir_fd);
	pthread_cond_destroy(&c->written);
	pthread_cond_destroy(&c->work);
	pthread_mutex_destroy(&c->lock);
	free(c->dir);
	free(c);
	return NULL;
}

/* ---- whole objects' files ---- */

/* Recency survives a restart, to the minute: a metadata write on every
 * hit would cost more than the hit (failure: only the order after a
 * restart is off). An mtime in the future is touched too, else it would
 * never be (and would sort as the newest at every start). */
static void touch(int fd, const struct stat *s)
{
	time_t now = time(NULL);

	if (s->st_mtim.tv_sec + MTIME_GRAIN_S < now || s->st_mtim.tv_sec > now)
		futimens(fd, NULL);
}

/* Opens the cached whole object when it holds exactly size bytes, making
 * it the most recent. Returns an fd or -ENOENT; *checked (may be NULL):
 * its entry's. */
static int whole_open(struct objcache *c, const uint8_t sha[32], uint64_t size, bool *checked)
{
	char name[80];
	struct stat s;

	pthread_mutex_lock(&c->lock);
	struct centry *e = find_locked(c, sha, WHOLE);
	if (e) {
		lru_unlink(e);
		lru_push_head(c, e);
	}
	if (checked)
		*checked = e && e->checked;
	pthread_mutex_unlock(&c->lock);
	if (!e)
		return -ENOENT;
	entry_name(sha, true, name, sizeof(name));
	int fd = openat(c->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &s) == 0 && (uint64_t)s.st_size == size) {
		touch(fd, &s);
		return fd;
	}
	if (fd >= 0)
		close(fd);
	/* Evicted meanwhile, or not the length asked for: never served. */
	pthread_mutex_lock(&c->lock);
	if ((e = find_locked(c, sha, WHOLE)) != NULL)
		drop_locked(c, e, false);
	pthread_mutex_unlock(&c->lock);
	return -ENOENT;
}

/* A new temp file in tmp/; its name into name. */
static int tmp_create(struct objcache *c, char *name, size_t len)
{
	static _Atomic unsigned seq;
	for (int tries = 0; tries < 100; tries++) {
		snprintf(name, len, "w%d-%u", (int)getpid(), seq++);
		/* Created read-only: the fd still writes, the file never will. */
		int fd = openat(c->tmp_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, FILE_MODE);
		if (fd >= 0 || errno != EEXIST)
			return fd < 0 ? -errno : fd;
	}
	return -EEXIST;
}

/* Renames tmp/<tmpname> to name, making its fan-out folder when missing. */
static int rename_in(struct objcache *c, const char *tmpname, char *name)
{
	if (renameat(c->tmp_fd, tmpname, c->dir_fd, name) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	name[2] = '\0';
	mkdirat(c->dir_fd, name, DIR_MODE);
	name[2] = '/';
	return renameat(c->tmp_fd, tmpname, c->dir_fd, name) == 0 ? 0 : -errno;
}

/* Makes room above the floor for a whole copy of size bytes that the
 * download is about to write, when one may be kept (at most a quarter of
 * what the cache may hold). Returns the disk bytes it takes (0: no copy). */
static uint64_t reserve_whole(struct objcache *c, uint64_t size)
{
	uint64_t disk = round_page(size);

	pthread_mutex_lock(&c->lock);
	look_locked(c, true); /* one look per download costs nothing beside it */
	bool ok = size > 0 && size <= limit_locked(c) / 4 && evict_locked(c, 0, disk);
	if (ok)
		take_room_locked(c, size, disk);
	pthread_mutex_unlock(&c->lock);
	return ok ? disk : 0;
}

/* Publishes tmp/<tmpname> (size bytes, complete, hashed) as the whole
 * object; disk: the room reserve_whole took for it (given back when it is
 * not kept). */
/* Under the lock: whether sha was forgotten since the cache had counted
 * since forgets (or it cannot tell: too many since). */
static bool forgotten_since_locked(const struct objcache *c, const uint8_t sha[32],
				   uint64_t since)
{
	if (c->forgets - since > FORGOT_RING)
		return true;
	for (uint64_t k = since; k < c->forgets; k++)
		if (memcmp(c->forgot[k % FORGOT_RING], sha, 32) == 0)
			return true;
	return false;
}

static void publish_whole(struct objcache *c, const char *tmpname, const uint8_t sha[32],
			  uint64_t size, uint64_t disk, uint64_t forgets)
{
	char name[80];
	bool added = false;

	entry_name(sha, true, name, sizeof(name));
	pthread_mutex_lock(&c->lock);
	/* Its room above the floor is taken already: made for the bound, and
	 * for the floor only when the free space shrank meanwhile. */
	if (!forgotten_since_locked(c, sha, forgets) && !find_locked(c, sha, WHOLE) &&
	    size <= c->max &&
	    evict_locked(c, size, 0)) {
		struct centry *e = rename_in(c, tmpname, name) == 0 ?
					   add_locked(c, sha, WHOLE, size, size, false) : NULL;
		if (e)
			e->checked = true; /* its SHA-256 matched its name */
		added = e != NULL;
		if (!added)
			unlinkat(c->dir_fd, name, 0);
	}
	if (!added)
		c->room += (int64_t)disk;
	pthread_mutex_unlock(&c->lock);
	if (!added)
		unlinkat(c->tmp_fd, tmpname, 0);
}

/* ---- blocks ---- */

/* Under the lock: publishes what was written of j (written: its bytes
 * are in the pack open as fd), unless its entry went meanwhile. Then,
 * with no entry for the block, its bytes are punched: whether or not j
 * wrote them, an earlier job whose entry went may have (each job's write
 * ends before its finish, so the last job to finish leaves no bytes that
 * no entry names). */
static void finish_job_locked(struct objcache *c, struct wjob *j, bool written, int fd)
{
	/* An entry that went (j->dropped) was freed: e is another's, if any. */
	struct centry *e = find_locked(c, j->sha, j->block);

	if (e && e->job == j) {
		e->job = NULL;
		if (!written || mark_locked(c, fd, j->sha, j->block) < 0)
			drop_locked(c, e, false);
	} else if (!e) {
		punch_locked(c, j->sha, j->block, j->objsize, j->len);
	}
}

/* Writes j's block into its pack (unless skip: its entry went), then
 * publishes it and wakes its readers. */
static void write_job(struct objcache *c, struct wjob *j, bool skip)
{
	int fd = skip ? -1 : pack_open(c, j->sha, j->objsize, PACK_CREATE);
	if (fd == -EIO) { /* not a pack of this object: the next write makes one */
		pthread_mutex_lock(&c->lock);
		drop_pack_locked(c, j->sha);
		pthread_mutex_unlock(&c->lock);
	}
	uint64_t off = pack_base(j->objsize) + (uint64_t)j->block * OBJCACHE_BLOCK;
	bool written = fd >= 0 && fd_pwrite_all(fd, j->data, j->len, off) == 0;

	pthread_mutex_lock(&c->lock);
	c->unwritten -= j->disk; /* on disk now (or never: then room was given back) */
	finish_job_locked(c, j, written, fd);
	pthread_cond_broadcast(&c->written);
	pthread_mutex_unlock(&c->lock);
	if (fd >= 0)
		close(fd);
}

enum admit { ADMIT_NONE, ADMIT_QUEUED, ADMIT_MINE };

/* Under the lock: indexes j's block as pending and queues it for the
 * writer, or leaves the writing to the caller (ADMIT_MINE). */
static enum admit admit_locked(struct objcache *c, struct wjob *j)
{
	if (find_locked(c, j->sha, j->block))
		return ADMIT_NONE; /* cached already, or on its way */
	/* Its pages, a header page for a new pack, and one of the bitmap
	 * when its bit lies past the first page. */
	uint64_t disk = round_page(j->len) + (packref_locked(c, j->sha, false) ? 0 : PAGE) +
			(PACK_HEADER + (uint64_t)j->block / 8 >= PAGE ? PAGE : 0);
	if (!evict_locked(c, j->len, disk))
		return ADMIT_NONE; /* even an empty cache would take the floor */
	struct centry *e = add_locked(c, j->sha, j->block, j->len, j->objsize, false);
	if (!e)
		return ADMIT_NONE;
	e->checked = true; /* fill_batch checked it before caching it */
	e->job = j;
	j->disk = disk;
	take_room_locked(c, j->len, disk);
	if (!c->writer_running || c->stopping || c->queued >= WRITE_QUEUE_MAX)
		return ADMIT_MINE;
	j->next = NULL;
	if (c->queue_tail)
		c->queue_tail->next = j;
	else
		c->queue_head = j;
	c->queue_tail = j;
	c->queued++;
	pthread_cond_signal(&c->work);
	return ADMIT_QUEUED;
}

/* A job for block `block` (len bytes) of object sha (objsize bytes), its
 * bytes to be filled in; NULL without memory. */
static struct wjob *job_new(const uint8_t sha[32], uint64_t block, uint64_t objsize, size_t len)
{
	struct wjob *j = malloc(sizeof(*j) + len);
	if (j) {
		*j = (struct wjob){ .block = (int64_t)block, .objsize = objsize, .len = len };
		memcpy(j->sha, sha, 32);
	}
	return j;
}

/* Caches j's block as received (its length was checked by the caller):
 * through the writer thread when it can take it, unless its object was
 * forgotten since the read began (forgets: the count before it). Takes j. */
static void store_job(struct objcache *c, struct wjob *j, uint64_t forgets)
{
	enum admit how = ADMIT_NONE;
	pthread_mutex_lock(&c->lock);
	if (j->len <= c->max && !forgotten_since_locked(c, j->sha, forgets))
		how = admit_locked(c, j);
	pthread_mutex_unlock(&c->lock);
	if (how == ADMIT_MINE)
		write_job(c, j, false);
	if (how != ADMIT_QUEUED)
		free(j);
}

static void *writer_main(void *opaque)
{
	struct objcache *c = opaque;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->queue_head && !c->stopping)
			pthread_cond_wait(&c->work, &c->lock);
		struct wjob *j = c->queue_head;
		if (!j)
			break; /* stopping, and every block written */
		c->queue_head = j->next;
		if (!c->queue_head)
			c->queue_tail = NULL;
		c->queued--;
		c->writing = true;
		bool skip = j->dropped;
		pthread_mutex_unlock(&c->lock);
		write_job(c, j, skip);
		free(j);
		pthread_mutex_lock(&c->lock);
		c->writing = false;
		pthread_cond_broadcast(&c->written);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

void objcache_flush(struct objcache *c)
{
	pthread_mutex_lock(&c->lock);
	while (c->queue_head || c->writing)
		pthread_cond_wait(&c->written, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

static void count_remote(struct objcache *c, double started, int err)
{
	double took = mono_s() - started;

	pthread_mutex_lock(&c->lock);
	c->st.remote_reads++;
	if (err < 0)
		c->st.remote_errors++;
	c->st.remote_seconds_sum += took;
	for (int i = 0; i < 8; i++)
		if (took <= objcache_latency_bounds[i])
			c->st.remote_seconds_le[i]++;
	pthread_mutex_unlock(&c->lock);
}

static void count_access(struct objcache *c, bool hit, uint64_t bytes)
{
	pthread_mutex_lock(&c->lock);
	if (hit) {
		c->st.hits++;
		c->st.hit_bytes += bytes;
	} else {
		c->st.misses++;
		c->st.miss_bytes += bytes;
	}
	pthread_mutex_unlock(&c->lock);
}

/* ---- ranges ---- */

/* The bytes [*lo, *hi) that range r wants of [base, base + len); false
 * when none. */
static bool overlap(const struct objstore_range *r, uint64_t base, size_t len, uint64_t *lo,
		    uint64_t *hi)
{
	uint64_t end = r->offset + r->len;
	*lo = r->offset > base ? r->offset : base;
	*hi = end < base + len ? end : base + len;
	return *lo < *hi;
}

/* Copies what ranges r[0..n) want of the bytes [base, base + len). */
static void copy_overlaps(struct objstore_range *r, size_t n, const uint8_t *buf, uint64_t base,
			  size_t len)
{
	uint64_t lo, hi;
	for (size_t i = 0; i < n; i++)
		if (overlap(&r[i], base, len, &lo, &hi))
			memcpy((uint8_t *)r[i].buf + (lo - r[i].offset), buf + (lo - base),
			       (size_t)(hi - lo));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorted unique block numbers the ranges touch. */
static int wanted_blocks(const struct objstore_range *r, size_t n, uint64_t **out, size_t *nout)
{
	size_t cap = 0, k = 0;
	uint64_t *v = NULL;
	for (size_t i = 0; i < n; i++) {
		if (r[i].len == 0)
			continue;
		uint64_t first = r[i].offset / OBJCACHE_BLOCK;
		uint64_t last = (r[i].offset + r[i].len - 1) / OBJCACHE_BLOCK;
		for (uint64_t b = first; b <= last; b++) {
			if (k == cap) {
				cap = cap ? cap * 2 : 64;
				uint64_t *grown = realloc(v, cap * sizeof(*v));
				if (!grown) {
					free(v);
					return -ENOMEM;
				}
				v = grown;
			}
			v[k++] = b;
		}
	}
	if (k > 1)
		qsort(v, k, sizeof(*v), cmp_u64);
	size_t u = k ? 1 : 0;
	for (size_t i = 1; i < k; i++)
		if (v[i] != v[u - 1])
			v[u++] = v[i];
	*out = v;
	*nout = u;
	return 0;
}

struct batch {
	uint64_t block[OBJCACHE_BATCH];
	struct objstore_range fetch[OBJCACHE_BATCH];
	struct wjob *job[OBJCACHE_BATCH]; /* fetch[i] fills job[i]'s bytes */
	size_t nfetch;
	int pack_fd; /* the object's pack, open for reading: -1 not yet, < -1 none */
	uint64_t pack_epoch; /* of the object's packref before pack_fd was opened (0: none) */
	bool keep;   /* the fetched blocks are cached (objcache_read_through: not) */
	uint8_t scratch[OBJCACHE_BLOCK]; /* a cached block, checked before it is served */
};

/* The generation of block's entry once its bytes are on disk (waiting
 * while they are written), the entry made the most recent; 0 when the
 * block is not cached with len bytes. *checked: the entry's. */
static uint64_t block_gen(struct objcache *c, const uint8_t sha[32], int64_t block, size_t len,
			  bool *checked)
{
	pthread_mutex_lock(&c->lock);
	struct centry *e = find_locked(c, sha, block);
	while (e && e->job) { /* on disk soon: wait rather than fetch again */
		pthread_cond_wait(&c->written, &c->lock);
		e = find_locked(c, sha, block);
	}
	uint64_t gen = e && e->size == len ? e->gen : 0;
	*checked = gen && e->checked;
	if (gen) {
		lru_unlink(e);
		lru_push_head(c, e);
	}
	pthread_mutex_unlock(&c->lock);
	return gen;
}

/* The epoch of sha's packref, 0 when it has none (no pack file to trust). */
static uint64_t pack_epoch_locked(struct objcache *c, const uint8_t sha[32])
{
	const struct packref *p = packref_locked(c, sha, false);
	return p ? p->epoch : 0;
}

/* Whether block's entry is still the one of generation gen: not evicted
 * (punched) while it was read, and the object's pack not removed since
 * bt's fd of it was opened (it may be of a removed pack, whose holes read
 * as zeros: it is closed, to be opened again). */
static bool block_still(struct objcache *c, struct batch *bt, const uint8_t sha[32],
			int64_t block, uint64_t gen)
{
	pthread_mutex_lock(&c->lock);
	const struct centry *e = find_locked(c, sha, block);
	bool same = e && e->gen == gen;
	bool stale = !bt->pack_epoch || pack_epoch_locked(c, sha) != bt->pack_epoch;
	pthread_mutex_unlock(&c->lock);
	if (stale) {
		close(bt->pack_fd);
		bt->pack_fd = -1;
	}
	return same && !stale;
}

/* The object's pack for reading, opened once per batch run; a pack the
 * index names but that is gone or not a pack is forgotten (not for other
 * errors, such as running out of fds, which say nothing of the file).
 * Returns an fd or a negative errno. */
static int batch_pack(struct objcache *c, struct batch *bt, const uint8_t sha[32], uint64_t size)
{
	struct stat s;

	if (bt->pack_fd != -1)
		return bt->pack_fd;
	pthread_mutex_lock(&c->lock);
	bt->pack_epoch = pack_epoch_locked(c, sha);
	pthread_mutex_unlock(&c->lock);
	bt->pack_fd = pack_open(c, sha, size, PACK_READ);
	if (bt->pack_fd >= 0) {
		if (fstat(bt->pack_fd, &s) == 0)
			touch(bt->pack_fd, &s);
		return bt->pack_fd;
	}
	if (bt->pack_fd == -ENOENT || bt->pack_fd == -EIO) {
		pthread_mutex_lock(&c->lock);
		if (bt->pack_epoch && pack_epoch_locked(c, sha) == bt->pack_epoch)
			drop_pack_locked(c, sha);
		pthread_mutex_unlock(&c->lock);
	}
	bt->pack_fd = -2;
	return bt->pack_fd;
}

/* Forgets block's entry of generation gen, whose bytes could not be read
 * from its (current) pack: kept, it would refuse the fresh copy and stay a
 * miss for good. */
static void forget_unreadable(struct objcache *c, const uint8_t sha[32], int64_t block,
			      uint64_t gen)
{
	pthread_mutex_lock(&c->lock);
	struct centry *e = find_locked(c, sha, block);
	if (e && e->gen == gen)
		drop_locked(c, e, false);
	pthread_mutex_unlock(&c->lock);
}

/* Reads what the ranges want of a cached block (bytes [base, base + len)
 * of the object, at file offset at) straight into their buffers. */
static int serve_cached(int fd, uint64_t at, uint64_t base, size_t len,
			struct objstore_range *r, size_t n)
{
	int err = 0;
	uint64_t lo, hi;
	for (size_t i = 0; i < n && !err; i++)
		if (overlap(&r[i], base, len, &lo, &hi))
			err = fd_pread_all(fd, (uint8_t *)r[i].buf + (lo - r[i].offset), (size_t)(hi - lo),
					   at + (lo - base));
	return err;
}

/* Notes that block's entry of generation gen matched its record. */
static void mark_checked(struct objcache *c, const uint8_t sha[32], int64_t block, uint64_t gen)
{
	pthread_mutex_lock(&c->lock);
	struct centry *e = find_locked(c, sha, block);
	if (e && e->gen == gen)
		e->checked = true;
	pthread_mutex_unlock(&c->lock);
}

/*
 * A cached block (its len bytes at buf) against what was recorded when its
 * object was tiered, as blocks fetched from the store are: 0 when it
 * matches or nothing was recorded (counted once, when it was fetched),
 * -EBADMSG when it differs (bit rot, or changed by hand: counted corrupt,
 * and told to the notice function), or the lookup's error.
 */
static int cached_block_check(struct objcache *c, const uint8_t sha[32], uint64_t size,
			      uint64_t block, const void *buf, size_t len, bool whole)
{
	char name[80], hex[65], msg[400];
	int r = c->check_fn ? c->check_fn(c->check_opaque, sha, size, block, buf, len) : -ENOENT;

	if (r == -ENOENT)
		return 0;
	if (r != -EBADMSG)
		return r;
	pthread_mutex_lock(&c->lock);
	c->st.corrupt++;
	pthread_mutex_unlock(&c->lock);
	if (c->notice_fn) {
		entry_name(sha, whole, name, sizeof(name));
		sha256_hex(sha, hex);
		snprintf(msg, sizeof(msg), "cache file %s/%s of object %s: bytes %" PRIu64 "-%" PRIu64
			 " do not match the digest recorded when it was tiered; removed; served "
			 "from the object store instead", c->dir, name, hex, block * OBJCACHE_BLOCK,
			 block * OBJCACHE_BLOCK + len - 1);
		c->notice_fn(c->notice_opaque, msg);
	}
	return r;
}

/* Serves the ranges' parts in block from the pack, once the whole block
 * matched its record; false when the block is not cached, went while it
 * was read, or does not match (then it goes, and is fetched again). */
static bool read_cached_block(struct objcache *c, struct batch *bt, const uint8_t sha[32],
			      uint64_t size, uint64_t block, struct objstore_range *r, size_t nr)
{
	size_t len = block_len(block, size);
	bool checked;
	uint64_t gen = block_gen(c, sha, (int64_t)block, len, &checked);
	if (!gen || batch_pack(c, bt, sha, size) < 0)
		return false;
	uint64_t at = pack_base(size) + block * OBJCACHE_BLOCK;
	int err = checked ? serve_cached(bt->pack_fd, at, block * OBJCACHE_BLOCK, len, r, nr)
			  : fd_pread_all(bt->pack_fd, bt->scratch, len, (off_t)at);
	bool still = block_still(c, bt, sha, (int64_t)block, gen);
	int bad = !err && still && !checked ?
			  cached_block_check(c, sha, size, block, bt->scratch, len, false) :
			  0;
	if ((err || bad == -EBADMSG) && still)
		forget_unreadable(c, sha, (int64_t)block, gen);
	if (err || bad || !still)
		return false;
	if (!checked) {
		copy_overlaps(r, nr, bt->scratch, block * OBJCACHE_BLOCK, len);
		mark_checked(c, sha, (int64_t)block, gen);
	}
	return true;
}

void objcache_set_check(struct objcache *c, objcache_check_fn fn, void *opaque)
{
	c->check_fn = fn;
	c->check_opaque = opaque;
}

void objcache_set_notice(struct objcache *c, objcache_notice_fn fn, void *opaque)
{
	c->notice_fn = fn;
	c->notice_opaque = opaque;
}

/* Block number block of object sha (its len bytes at buf) against what
 * was recorded when the object was tiered: 0 when it matches or nothing
 * was recorded (counted unchecked), -EBADMSG when it differs (counted
 * corrupt), or the lookup's error. */
static int block_matches(struct objcache *c, const uint8_t sha[32], uint64_t size,
			 uint64_t block, const void *buf, size_t len)
{
	int r = c->check_fn ? c->check_fn(c->check_opaque, sha, size, block, buf, len) : -ENOENT;

	if (r == -ENOENT || r == -EBADMSG) {
		pthread_mutex_lock(&c->lock);
		if (r == -ENOENT)
			c->st.unchecked++;
		else
			c->st.corrupt++;
		pthread_mutex_unlock(&c->lock);
	}
	return r == -ENOENT ? 0 : r;
}

/* A fetched block against its digest: 0, or -EBADMSG (eb) when it
 * differs, or the lookup's error. */
static int check_block(struct objcache *c, struct objstore *os, const uint8_t sha[32],
		       uint64_t size, const struct objstore_range *f, struct errbuf *eb)
{
	uint64_t block = f->offset / OBJCACHE_BLOCK;
	char hex[65];
	int r = block_matches(c, sha, size, block, f->buf, f->len);

	if (r == 0)
		return 0;
	if (r != -EBADMSG)
		return errbuf_set(eb, r, "%s: block %" PRIu64 ": its digest: %s",
				  objstore_describe(os), block, strerror(-r));
	sha256_hex(sha, hex);
	return errbuf_set(eb, -EBADMSG, "%s: object %s: bytes %" PRIu64 "-%" PRIu64 " do not "
			  "match the digest recorded when it was tiered (the object in the store "
			  "is corrupt or was replaced; run capvault fsck --remote --verify)",
			  objstore_describe(os), hex, f->offset, f->offset + f->len - 1);
}

/* Fills the ranges' parts in blocks bt->block[0..n): cached blocks from
 * the pack, the others fetched in one objstore_read_ranges call, checked
 * against their digests, then copied out and cached. */
static int fill_batch(struct objcache *c, struct objstore *os, const uint8_t sha[32],
		      uint64_t size, struct batch *bt, size_t n, struct objstore_range *r,
		      size_t nr, uint64_t *fetched, struct errbuf *eb)
{
	bt->nfetch = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = block_len(bt->block[i], size);
		if (read_cached_block(c, bt, sha, size, bt->block[i], r, nr)) {
			count_access(c, true, len);
			continue;
		}
		/* Fetched straight into the job that will write it. */
		struct wjob *j = job_new(sha, bt->block[i], size, len);
		if (!j)
			return -ENOMEM;
		bt->job[bt->nfetch] = j;
		bt->fetch[bt->nfetch++] = (struct objstore_range){
			.offset = bt->block[i] * OBJCACHE_BLOCK, .len = (uint32_t)len, .buf = j->data
		};
	}
	if (bt->nfetch == 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	uint64_t forgets = c->forgets;
	pthread_mutex_unlock(&c->lock);
	double started = mono_s();
	int err = objstore_read_ranges(os, sha, bt->fetch, bt->nfetch, eb);
	for (size_t i = 0; i < bt->nfetch && !err; i++)
		err = check_block(c, os, sha, size, &bt->fetch[i], eb);
	count_remote(c, started, err);
	for (size_t i = 0; i < bt->nfetch; i++) {
		if (err) {
			free(bt->job[i]);
			continue;
		}
		count_access(c, false, bt->fetch[i].len);
		if (fetched)
			*fetched += bt->fetch[i].len;
		copy_overlaps(r, nr, bt->fetch[i].buf, bt->fetch[i].offset, bt->fetch[i].len);
		if (bt->keep)
			store_job(c, bt->job[i], forgets);
		else
			free(bt->job[i]);
	}
	bt->nfetch = 0;
	return err;
}

static void drop_whole_locked(struct objcache *c, const uint8_t sha[32]);

/* Fills the ranges from a whole copy found at start, a block at a time,
 * each once it matched its record: 0, or -EBADMSG for a block that does
 * not (the copy is removed; the caller reads the store instead). */
static int serve_whole_checking(struct objcache *c, int fd, const uint8_t sha[32],
				uint64_t size, struct objstore_range *r, size_t n)
{
	_cleanup_free_ uint64_t *blocks = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	size_t nblocks = 0;
	int err = wanted_blocks(r, n, &blocks, &nblocks);

	if (err == 0 && !(buf = malloc(OBJCACHE_BLOCK)))
		err = -ENOMEM;
	for (size_t i = 0; i < nblocks && !err; i++) {
		size_t len = block_len(blocks[i], size);
		err = fd_pread_all(fd, buf, len, (off_t)(blocks[i] * OBJCACHE_BLOCK));
		if (!err)
			err = cached_block_check(c, sha, size, blocks[i], buf, len, true);
		if (!err)
			copy_overlaps(r, n, buf, blocks[i] * OBJCACHE_BLOCK, len);
	}
	if (err == -EBADMSG) {
		pthread_mutex_lock(&c->lock);
		drop_whole_locked(c, sha);
		pthread_mutex_unlock(&c->lock);
	}
	return err;
}

/* Serves the ranges from the cached whole object; -ENOENT when absent. A
 * copy this process cached was checked whole then and is read as it is;
 * one found at start is checked block by block as it is read. */
static int read_from_whole(struct objcache *c, const uint8_t sha[32], uint64_t size,
			   struct objstore_range *r, size_t n)
{
	uint64_t bytes = 0;
	bool checked;
	int fd = whole_open(c, sha, size, &checked);
	int err = 0;

	if (fd < 0)
		return fd;
	if (checked)
		for (size_t i = 0; i < n && !err; i++)
			err = fd_pread_all(fd, r[i].buf, r[i].len, r[i].offset);
	else
		err = serve_whole_checking(c, fd, sha, size, r, n);
	close(fd);
	for (size_t i = 0; i < n && !err; i++)
		bytes += r[i].len;
	if (!err)
		count_access(c, true, bytes);
	return err;
}

static int read_ranges(struct objcache *c, struct objstore *os, const uint8_t sha[32],
		       uint64_t size, struct objstore_range *r, size_t n, bool keep,
		       uint64_t *fetched, struct errbuf *eb)
{
	_cleanup_free_ uint64_t *blocks = NULL;
	_cleanup_free_ struct batch *bt = NULL;
	size_t nblocks = 0;
	int err;

	for (size_t i = 0; i < n; i++)
		if (r[i].offset > size || r[i].len > size - r[i].offset)
			return errbuf_set(eb, -EIO, "read past the end of a %" PRIu64 "-byte object",
					  size);
	if (read_from_whole(c, sha, size, r, n) == 0)
		return 0;
	if ((err = wanted_blocks(r, n, &blocks, &nblocks)) < 0)
		return err;
	if (!(bt = calloc(1, sizeof(*bt))))
		return -ENOMEM;
	bt->pack_fd = -1;
	bt->keep = keep;
	for (size_t i = 0; i < nblocks && !err; i += OBJCACHE_BATCH) {
		size_t k = nblocks - i < OBJCACHE_BATCH ? nblocks - i : OBJCACHE_BATCH;
		memcpy(bt->block, blocks + i, k * sizeof(uint64_t));
		err = fill_batch(c, os, sha, size, bt, k, r, n, fetched, eb);
	}
	for (size_t i = 0; i < bt->nfetch; i++)
		free(bt->job[i]); /* out of memory midway */
	if (bt->pack_fd >= 0)
		close(bt->pack_fd);
	return err;
}

int objcache_read_ranges(struct objcache *c, struct objstore *os, const uint8_t sha[32],
			 uint64_t size, struct objstore_range *r, size_t n, uint64_t *fetched,
			 struct errbuf *eb)
{
	return read_ranges(c, os, sha, size, r, n, true, fetched, eb);
}

int objcache_read_through(struct objcache *c, struct objstore *os, const uint8_t sha[32],
			  uint64_t size, struct objstore_range *r, size_t n, struct errbuf *eb)
{
	return read_ranges(c, os, sha, size, r, n, false, NULL, eb);
}

/* ---- whole objects ---- */

bool objcache_has_object(struct objcache *c, const uint8_t sha[32])
{
	pthread_mutex_lock(&c->lock);
	bool has = find_locked(c, sha, WHOLE) != NULL;
	pthread_mutex_unlock(&c->lock);
	return has;
}

/* A whole object passing through, from the store or the cached copy:
 * hashed, handed to the caller but for its last OBJCACHE_HOLD_BACK bytes
 * (until the hash matches), and copied to a temp file while it may still
 * be cached. */
struct tee {
	struct objcache *c;
	objstore_data_fn fn;
	void *opaque;
	int fd; /* -1: not keeping a copy */
	uint64_t size;     /* the object's: a copy never grows past it */
	uint64_t disk;     /* the room reserve_whole took for the copy */
	uint64_t unwritten; /* of it, still counted in the cache's unwritten */
	uint64_t forgets;  /* the cache's forgets before the copy's first byte was read */
	EVP_MD_CTX *md;
	uint64_t got, passed;
	const uint8_t *sha;
	uint8_t *held; /* the last block that matched its digest, not handed on yet */
	size_t nheld;
	uint8_t *blk;  /* the block being received */
	size_t nblk;
	uint64_t block; /* its number */
	bool bad_block; /* a block did not match its digest: block is its number */
	bool verified; /* every byte went through and hashed to the name */
};

static int tee_init(struct tee *t, struct objcache *c, const uint8_t sha[32], uint64_t size,
		    objstore_data_fn fn, void *opaque)
{
	*t = (struct tee){ .c = c, .sha = sha, .size = size, .fn = fn, .opaque = opaque,
			   .fd = -1 };
	t->md = EVP_MD_CTX_new();
	t->held = malloc(OBJCACHE_BLOCK);
	t->blk = malloc(OBJCACHE_BLOCK);
	if (!t->md || !t->held || !t->blk || !EVP_DigestInit_ex(t->md, EVP_sha256(), NULL))
		return -ENOMEM;
	return 0;
}

static void tee_free(struct tee *t)
{
	EVP_MD_CTX_free(t->md);
	free(t->held);
	free(t->blk);
}

static int tee_pass(struct tee *t, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	t->passed += len;
	return t->fn(t->opaque, buf, len);
}

/* The block just received against its record (objcache_set_check):
 * 0, -EBADMSG (t->bad_block), or the lookup's error. */
static int tee_check_block(struct tee *t)
{
	int r = block_matches(t->c, t->sha, t->size, t->block, t->blk, t->nblk);

	t->bad_block = r == -EBADMSG;
	return r;
}

/*
 * Takes the stream's bytes a block at a time: a block reaches fn only
 * once it matched its digest and the next block is whole, so the last
 * block (OBJCACHE_HOLD_BACK) also waits for the whole object's SHA-256.
 */
static int tee_take(struct tee *t, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		size_t take = OBJCACHE_BLOCK - t->nblk < len ? OBJCACHE_BLOCK - t->nblk : len;
		memcpy(t->blk + t->nblk, buf, take);
		t->nblk += take;
		buf += take;
		len -= take;
		if (t->nblk < OBJCACHE_BLOCK)
			break;
		int r = tee_check_block(t);
		if (r == 0)
			r = tee_pass(t, t->held, t->nheld);
		if (r != 0)
			return r;
		uint8_t *spare = t->held;
		t->held = t->blk;
		t->nheld = t->nblk;
		t->blk = spare;
		t->nblk = 0;
		t->block++;
	}
	return 0;
}

/* len bytes of the copy are in the file system's count now. */
static void tee_written(struct tee *t, uint64_t len)
{
	uint64_t n = len < t->unwritten ? len : t->unwritten;

	pthread_mutex_lock(&t->c->lock);
	t->c->unwritten -= n;
	pthread_mutex_unlock(&t->c->lock);
	t->unwritten -= n;
}

static int tee_data(void *opaque, const void *buf, size_t len)
{
	struct tee *t = opaque;

	if (!EVP_DigestUpdate(t->md, buf, len))
		return -ENOMEM;
	t->got += len;
	if (t->fd >= 0 && (t->got > t->size || write(t->fd, buf, len) != (ssize_t)len)) {
		close(t->fd);
		t->fd = -1; /* no copy, the download goes on */
	} else if (t->fd >= 0) {
		tee_written(t, len);
	}
	return tee_take(t, buf, len);
}

/* Once every byte went through: -EBADMSG unless the last, shorter block
 * matches its digest and all of them hash to sha, else hands on the
 * bytes held (and returns what the caller's fn says). */
static int tee_check(struct tee *t, const uint8_t sha[32])
{
	uint8_t got[32];
	unsigned n = 0;
	int r = t->nblk ? tee_check_block(t) : 0;

	if (r != 0)
		return r;
	if (!EVP_DigestFinal_ex(t->md, got, &n) || n != 32)
		return -ENOMEM;
	if (memcmp(got, sha, 32) != 0)
		return -EBADMSG;
	t->verified = true;
	r = tee_pass(t, t->held, t->nheld);
	if (r == 0)
		r = tee_pass(t, t->blk, t->nblk);
	t->nheld = t->nblk = 0;
	return r;
}

/* What a stream that failed with -EBADMSG was: a block that did not
 * match its digest, or bytes that did not hash to the object's name. */
static void tee_what(const struct tee *t, char *out, size_t len)
{
	uint64_t from = t->block * OBJCACHE_BLOCK;

	if (t->bad_block)
		snprintf(out, len, "bytes %" PRIu64 "-%" PRIu64 " do not match the digest recorded "
			 "when it was tiered", from, from + t->nblk - 1);
	else
		snprintf(out, len, "its bytes do not hash to its SHA-256");
}

/* Publishes the copy when it holds the whole object, hashed to its name. */
static void tee_finish(struct tee *t, const char *tmpname, const uint8_t sha[32], uint64_t size)
{
	bool publish = t->fd >= 0 && t->verified && t->got == size;

	if (!t->disk)
		return;
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	tee_written(t, t->unwritten); /* what was not written never will be */
	if (publish) {
		publish_whole(t->c, tmpname, sha, size, t->disk, t->forgets);
	} else {
		if (tmpname[0])
			unlinkat(t->c->tmp_fd, tmpname, 0);
		pthread_mutex_lock(&t->c->lock);
		t->c->room += (int64_t)t->disk;
		pthread_mutex_unlock(&t->c->lock);
	}
	t->disk = 0;
}

static int stream_cached(int fd, uint64_t size, struct tee *t)
{
	_cleanup_free_ uint8_t *buf = malloc(STREAM_CHUNK);
	uint64_t off = 0;

	if (!buf)
		return -ENOMEM;
	while (off < size) {
		size_t want = size - off < STREAM_CHUNK ? (size_t)(size - off) : STREAM_CHUNK;
		int r = fd_pread_all(fd, buf, want, off);
		if (r == 0)
			r = tee_data(t, buf, want);
		if (r != 0)
			return r;
		off += want;
	}
	return 0;
}

static void count_corrupt(struct objcache *c)
{
	pthread_mutex_lock(&c->lock);
	c->st.corrupt++;
	pthread_mutex_unlock(&c->lock);
}

/* Under the lock: forgets the indexed whole copy of sha, if any. */
static void drop_whole_locked(struct objcache *c, const uint8_t sha[32])
{
	struct centry *e = find_locked(c, sha, WHOLE);
	if (e)
		drop_locked(c, e, false);
}

/* The cached copy of sha is not the object's bytes: it goes (bit rot,
 * or changed by hand), so the next read fetches the store's. */
static int cached_corrupt(struct objcache *c, const struct tee *t, struct errbuf *eb)
{
	char name[80], hex[65], what[160];

	entry_name(t->sha, true, name, sizeof(name));
	sha256_hex(t->sha, hex);
	tee_what(t, what, sizeof(what));
	pthread_mutex_lock(&c->lock);
	drop_whole_locked(c, t->sha);
	c->st.corrupt += !t->bad_block; /* block_matches counted a bad block */
	pthread_mutex_unlock(&c->lock);
	return errbuf_set(eb, -EBADMSG, "cache file %s/%s of object %s: %s; removed", c->dir,
			  name, hex, what);
}

/* Streams the object from the store through t, keeping a copy when it
 * may be cached. */
static int stream_remote(struct objcache *c, struct objstore *os, const uint8_t sha[32],
			 uint64_t size, struct tee *t, struct errbuf *eb)
{
	char tmpname[64] = "", hex[65];

	pthread_mutex_lock(&c->lock);
	t->forgets = c->forgets;
	pthread_mutex_unlock(&c->lock);
	if ((t->disk = t->unwritten = reserve_whole(c, size)) > 0 &&
	    (t->fd = tmp_create(c, tmpname, sizeof(tmpname))) < 0)
		tmpname[0] = '\0';
	double started = mono_s();
	int r = objstore_read_stream(os, sha, 0, UINT64_MAX, tee_data, t, eb);
	if (r == 0 && t->got != size)
		r = errbuf_set(eb, -EIO, "%s: object store gave %" PRIu64 " bytes of %" PRIu64,
			       objstore_describe(os), t->got, size);
	if (r == 0)
		r = tee_check(t, sha);
	if (r == -EBADMSG) {
		char what[160];
		sha256_hex(sha, hex);
		tee_what(t, what, sizeof(what));
		errbuf_set(eb, r,
			   "%s: object %s: %s (the object in the store is corrupt or was "
			   "replaced; run capvault fsck --remote --verify); not served",
			   objstore_describe(os), hex, what);
		if (!t->bad_block) /* block_matches counted that */
			count_corrupt(c);
		objcache_forget(c, sha); /* its blocks may be of the same bad bytes */
	}
	count_remote(c, started, r < 0 ? r : 0);
	if (r == 0)
		count_access(c, false, size);
	tee_finish(t, tmpname, sha, size);
	return r;
}

int objcache_read_stream(struct objcache *c, struct objstore *os, const uint8_t sha[32],
			 uint64_t size, objstore_data_fn fn, void *opaque, struct errbuf *eb)
{
	struct tee t;
	int r = tee_init(&t, c, sha, size, fn, opaque);
	int fd = r < 0 ? r : whole_open(c, sha, size, NULL);

	if (fd >= 0) {
		r = stream_cached(fd, size, &t);
		close(fd);
		if (r == 0)
			r = tee_check(&t, sha);
		if (r == 0)
			count_access(c, true, size);
		if (r == -EBADMSG)
			cached_corrupt(c, &t, eb);
		if (r == -EBADMSG && t.passed == 0) { /* nothing handed on: ask the store */
			if (c->notice_fn)
				c->notice_fn(c->notice_opaque, eb->msg);
			errbuf_clear(eb);
			tee_free(&t);
			r = tee_init(&t, c, sha, size, fn, opaque);
		} else {
			tee_free(&t);
			return r;
		}
	}
	if (r == 0)
		r = stream_remote(c, os, sha, size, &t, eb);
	tee_free(&t);
	return r;
}

void objcache_forget(struct objcache *c, const uint8_t sha[32])
{
	char name[80];

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	memcpy(c->forgot[c->forgets % FORGOT_RING], sha, 32);
	c->forgets++;
	drop_whole_locked(c, sha);
	entry_name(sha, true, name, sizeof(name));
	unlinkat(c->dir_fd, name, 0); /* not indexed: never served, but gone too */
	drop_pack_locked(c, sha);
	pthread_mutex_unlock(&c->lock);
}

void objcache_without_punch(struct objcache *c)
{
	pthread_mutex_lock(&c->lock);
	c->no_punch = true;
	pthread_mutex_unlock(&c->lock);
}

void objcache_set_statfs_for_tests(struct objcache *c, objcache_statfs_fn fn, void *opaque)
{
	pthread_mutex_lock(&c->lock);
	c->statfs_fn = fn;
	c->statfs_opaque = opaque;
	c->looked_at = 0;
	pthread_mutex_unlock(&c->lock);
}

void objcache_set_keep_free(struct objcache *c, uint64_t keep_free)
{
	pthread_mutex_lock(&c->lock);
	c->keep_free = keep_free < (uint64_t)ROOM_MAX ? keep_free : (uint64_t)ROOM_MAX;
	look_locked(c, true);
	pthread_mutex_unlock(&c->lock);
}

uint64_t objcache_trim(struct objcache *c, uint64_t want_free)
{
	uint64_t free_bytes = 0, evicted = 0;

	if (!c)
		return 0;
	pthread_mutex_lock(&c->lock);
	look_locked(c, true);
	/* The bytes to free: for the floor, and for want_free (which holds
	 * without a floor too), the blocks not written yet counted as taken. */
	int64_t short_by = c->keep_free ? -c->room : 0;
	if (want_free && fs_free(c, &free_bytes) == 0) {
		int64_t more = (want_free < (uint64_t)ROOM_MAX ? (int64_t)want_free : ROOM_MAX) -
			       (free_bytes < (uint64_t)ROOM_MAX ? (int64_t)free_bytes : ROOM_MAX) +
			       (int64_t)c->unwritten;
		short_by = more > short_by ? more : short_by;
	}
	while (c->st.files > 0 && short_by > 0) {
		struct centry *e = c->lru.prev;
		short_by -= (int64_t)e->size;
		evicted += e->size;
		drop_locked(c, e, true);
	}
	pthread_mutex_unlock(&c->lock);
	return evicted;
}

void objcache_get_stats(struct objcache *c, struct objcache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	look_locked(c, false);
	*out = c->st;
	out->keep_free = c->keep_free;
	out->limit_bytes = limit_locked(c);
	pthread_mutex_unlock(&c->lock);
}
