/*
 * watch.c - see watch.h.
 *
 * One inotify instance serves every inotify folder; its reads and an eventfd
 * (for watch_wakeup) are queued on the ring, and timers are the wait
 * timeout of ring_wait_event, so a single ring_wait_event drives it all.
 *
 * Three hash tables keep the state:
 * - wds: inotify watch descriptor -> folder and subfolder path,
 * - folder->files: for polled folders every file present (size, mtime, when
 *   it was first seen that way, whether it was reported); for inotify
 *   folders only files found by a scan that are not settled yet,
 * - seen: recent reports, so an event and a scan that both see a file
 *   report it once; entries expire after the dedup window (WATCH_DEDUP_MS,
 *   or longer than twice the longest settle time, which a scan-found file
 *   may wait before its second report is compared).
 */
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "monoclock.h"
#include "ring.h"
#include "wallclock.h"

#define TOK_INOTIFY 1
#define TOK_WAKE 2
#define NEVER UINT64_MAX
#define LOST_RETRY_MS 1000u
/* How often an inotify folder's path is checked to still be the folder
 * watched: a mount over it (or a folder renamed in its place) sends no
 * event to the old one's watch. */
#define ROOT_CHECK_MS 5000u
#define WALK_MAX_DEPTH 64
#define PUMP_MAX 256 /* completions handled per watch_run_once */
/* IN_ATTRIB: a folder's permissions changed (made unreadable or readable
 * again); the same events for files in it are ignored. */
#define DIR_MASK                                                                  \
	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | \
	 IN_ATTRIB | IN_ONLYDIR | IN_EXCL_UNLINK)

/* ---- a small chained hash table with intrusive nodes ---- */

struct hnode {
	struct hnode *next;
	uint64_t hash;
};

struct htab {
	struct hnode **b;
	size_t nb, n;
	struct hnode *none; /* always NULL: what htab_find points at before the first add */
};

typedef bool (*htab_eq_fn)(const struct hnode *node, const void *key);

static void htab_rehash(struct htab *t, size_t nb)
{
	struct hnode **b = calloc(nb, sizeof(*b));
	if (!b)
		return; /* keep the old buckets: slower, still correct */
	for (size_t i = 0; i < t->nb; i++) {
		for (struct hnode *x = t->b[i], *next; x; x = next) {
			next = x->next;
			x->next = b[x->hash & (nb - 1)];
			b[x->hash & (nb - 1)] = x;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

static int htab_add(struct htab *t, struct hnode *x)
{
	if (t->n >= t->nb)
		htab_rehash(t, t->nb ? t->nb * 2 : 16);
	if (!t->nb)
		return -ENOMEM;
	x->next = t->b[x->hash & (t->nb - 1)];
	t->b[x->hash & (t->nb - 1)] = x;
	t->n++;
	return 0;
}

/* Returns the link that points at the match, or at NULL if there is none. */
static struct hnode **htab_find(struct htab *t, uint64_t hash, htab_eq_fn eq, const void *key)
{
	if (!t->nb)
		return &t->none;
	struct hnode **l = &t->b[hash & (t->nb - 1)];
	while (*l && ((*l)->hash != hash || !eq(*l, key)))
		l = &(*l)->next;
	return l;
}

static struct hnode *htab_unlink(struct htab *t, struct hnode **l)
{
	struct hnode *x = *l;
	*l = x->next;
	t->n--;
	return x;
}

/* Memory proportional to what is present: shrink after mass removals. */
static void htab_fit(struct htab *t)
{
	if (t->nb > 16 && t->n * 8 < t->nb)
		htab_rehash(t, t->nb / 4 > 16 ? t->nb / 4 : 16);
}

/* Calls fn on every node; fn returns true to have it unlinked (it then owns it). */
static void htab_filter(struct htab *t, bool (*fn)(void *ctx, struct hnode *x), void *ctx)
{
	for (size_t i = 0; i < t->nb; i++) {
		for (struct hnode **l = &t->b[i]; *l;) {
			struct hnode *x = *l, *next = x->next;
			if (fn(ctx, x)) { /* x may be freed by now */
				*l = next;
				t->n--;
			} else {
				l = &x->next;
			}
		}
	}
}

static bool drop_free(void *ctx, struct hnode *x)
{
	(void)ctx;
	free(x);
	return true;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return mix64(h);
}

/* ---- state ---- */

struct wdir {
	struct hnode h;
	int wd;
	int folder;
	dev_t dev;
	ino_t ino;
	char *rel; /* "" for the folder itself */
};

struct fentry {
	struct hnode h;
	uint64_t size;
	int64_t mtime_ns;
	ino_t ino;
	uint64_t stable_since; /* monotonic ms when size/mtime were first seen */
	uint32_t gen;          /* scan that last saw it */
	bool reported;
	char path[];
};

struct seen_key {
	dev_t dev;
	ino_t ino;
	uint64_t path_hash;
};

struct seen {
	struct hnode h;
	struct seen_key k;
	uint64_t size;
	int64_t mtime_ns;
	uint64_t at;
};

struct folder {
	int id;
	char *path;
	size_t path_len;
	bool recursive;
	enum watch_mode mode; /* resolved: inotify or poll */
	unsigned interval_ms, settle_ms;
	char **ignore, **exclude;
	struct htab files;
	uint32_t gen;
	bool scan_due;
	bool lost;        /* inotify: the folder itself went away */
	bool read_failed; /* the last scan could not read it (inotify: rescanned until it can) */
	bool warned_long, warned_deep; /* a path too long, a tree too deep: said once */
	uint64_t next_tick;
	uint64_t settle_tick; /* poll: when the first unsettled file may be ready */
	dev_t root_dev;       /* inotify: the folder watched at its path */
	ino_t root_ino;
	uint64_t root_check;  /* ... looked at again then (ROOT_CHECK_MS) */
};

struct watch {
	struct ring *ring;
	bool own_ring;
	struct watch_callbacks cb;
	void *opaque;
	struct folder **folders;
	size_t nfolders;
	int ifd, efd;
	bool ino_armed, wake_armed, woken, closing;
	uint64_t wake_val;
	struct htab wds, seen;
	uint64_t next_purge;
	uint64_t dedup_ms;
	int nreported;
	alignas(struct inotify_event) char ibuf[64 * 1024];
};

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

__attribute__((format(printf, 3, 4))) static void wlog(struct watch *w, enum log_level level,
							const char *fmt, ...)
{
	if (!w->cb.on_log)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	w->cb.on_log(w->opaque, level, msg);
}

static struct folder *folder_get(struct watch *w, int id)
{
	return id >= 0 && (size_t)id < w->nfolders ? w->folders[id] : NULL;
}

/* ---- file system types ---- */

struct fstype {
	uint32_t magic;
	const char *name;
	const char *why; /* NULL: inotify works */
};

#define REMOTE "inotify does not see remote writes"
#define VIRTUAL "inotify does not see changes of a virtual file system"

static const struct fstype fstypes[] = {
	{0xEF53, "ext4", NULL},         {0x58465342, "xfs", NULL},
	{0x9123683E, "btrfs", NULL},     {0x01021994, "tmpfs", NULL},
	{0x2FC12FC1, "zfs", NULL},       {0xF2F52010, "f2fs", NULL},
	{0x794C7630, "overlayfs", NULL}, {0x858458F6, "ramfs", NULL},
	{0x52654973, "reiserfs", NULL},  {0x3153464A, "jfs", NULL},
	{0x3434, "nilfs2", NULL},        {0xCA451A4E, "bcachefs", NULL},
	{0x4D44, "vfat", NULL},          {0x2011BAB0, "exfat", NULL},
	{0x5346544E, "ntfs", NULL},      {0x7366746E, "ntfs3", NULL},
	{0x482B, "hfsplus", NULL},       {0x9660, "iso9660", NULL},
	{0x15013346, "udf", NULL},       {0x73717368, "squashfs", NULL},
	/* Cluster file systems: inotify sees this node's writes only. */
	{0x7461636F, "ocfs2", NULL},     {0x01161970, "gfs2", NULL},
	{0x6969, "nfs", "nfs: " REMOTE},
	{0x517B, "smb", "smb: " REMOTE},
	{0xFF534D42, "cifs", "cifs: " REMOTE},
	{0xFE534D42, "smb2", "smb2: " REMOTE},
	{0x65735546, "fuse", "fuse: " REMOTE},
	{0x00C36400, "ceph", "ceph: " REMOTE},
	{0x01021997, "9p", "9p: " REMOTE},
	{0x5346414F, "afs", "afs: " REMOTE},
	{0x6B414653, "kafs", "kafs: " REMOTE},
	{0x73757245, "coda", "coda: " REMOTE},
	{0x564C, "ncp", "ncp: " REMOTE},
	{0x0BD00BD0, "lustre", "lustre: " REMOTE},
	{0x47504653, "gpfs", "gpfs: " REMOTE},
	{0x19830326, "beegfs", "beegfs: " REMOTE},
	{0x20030528, "orangefs", "orangefs: " REMOTE},
	{0x786F4256, "vboxsf", "vboxsf: " REMOTE},
	{0x9FA0, "proc", "proc: " VIRTUAL},
	{0x62656572, "sysfs", "sysfs: " VIRTUAL},
};

static const struct fstype *fstype_find(unsigned long f_type)
{
	/* Compare 32 bits: f_type is a signed long, some magics have bit 31 set. */
	uint32_t magic = (uint32_t)(f_type & 0xFFFFFFFFu);
	for (size_t i = 0; i < ARRAY_SIZE(fstypes); i++)
		if (fstypes[i].magic == magic)
			return &fstypes[i];
	return NULL;
}

const char *watch_fstype_name(unsigned long f_type)
{
	const struct fstype *t = fstype_find(f_type);
	return t ? t->name : NULL;
}

enum watch_mode watch_mode_for_fstype(unsigned long f_type, const char **why)
{
	const struct fstype *t = fstype_find(f_type);
	const char *reason = !t ? "unknown file system, assumed local" : t->why ? t->why : t->name;
	if (why)
		*why = reason;
	return t && t->why ? WATCH_MODE_POLL : WATCH_MODE_INOTIFY;
}

/* ---- names ---- */

bool watch_name_is_partial(const char *name)
{
	static const char *const suffixes[] = {".part",	       ".tmp",	    ".filepart", "~",
					       ".crdownload", ".partial"};
	if (name[0] == '.' || name[0] == '\0')
		return true;
	size_t n = strlen(name);
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t k = strlen(suffixes[i]);
		if (n >= k && strcasecmp(name + n - k, suffixes[i]) == 0)
			return true;
	}
	return false;
}

static bool glob_ignored(const struct folder *f, const char *name, const char *path)
{
	const char *rel = path[f->path_len] ? path + f->path_len + 1 : "";
	for (char **g = f->ignore; g && *g; g++) {
		bool pathglob = strchr(*g, '/') != NULL;
		if (fnmatch(*g, pathglob ? rel : name, pathglob ? FNM_PATHNAME : 0) == 0)
			return true;
	}
	return false;
}

static bool file_ignored(const struct folder *f, const char *name, const char *path)
{
	return watch_name_is_partial(name) || glob_ignored(f, name, path);
}

/* Hidden folders (.failed, .snapshot, .Trash) are never entered. */
static bool dir_ignored(const struct folder *f, const char *name, const char *path)
{
	if (name[0] == '.')
		return true;
	for (char **x = f->exclude; x && *x; x++)
		if (strcmp(*x, path) == 0)
			return true;
	return glob_ignored(f, name, path);
}

/* rel_dir of a file below f: what lies between f->path and the last '/'. */
static void rel_dir_of(const struct folder *f, const char *path, char *out, size_t size)
{
	const char *rel = path + f->path_len + 1;
	const char *slash = strrchr(rel, '/');
	size_t n = slash ? (size_t)(slash - rel) : 0;
	if (n >= size)
		n = size - 1;
	memcpy(out, rel, n);
	out[n] = '\0';
}

/* ---- reporting and dedup ---- */

static bool seen_eq(const struct hnode *x, const void *key)
{
	const struct seen *s = (const struct seen *)x;
	const struct seen_key *k = key;
	return s->k.dev == k->dev && s->k.ino == k->ino && s->k.path_hash == k->path_hash;
}

/* True when this very appearance was reported within the dedup window;
 * otherwise remembers it. */
static bool seen_before(struct watch *w, const char *path, const struct stat *st)
{
	struct seen_key k = {.dev = st->st_dev, .ino = st->st_ino, .path_hash = hash_str(path)};
	uint64_t h = mix64(k.path_hash ^ mix64((uint64_t)k.ino) ^ ((uint64_t)k.dev << 1));
	uint64_t now = mono_ms();
	struct hnode **l = htab_find(&w->seen, h, seen_eq, &k);
	struct seen *s = (struct seen *)*l;
	if (s && s->size == (uint64_t)st->st_size && s->mtime_ns == mtime_ns(st) &&
	    now - s->at < w->dedup_ms)
		return true;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return false; /* report anyway: the importer dedups by content */
		s->k = k;
		s->h.hash = h;
		if (htab_add(&w->seen, &s->h) < 0) {
			free(s);
			return false;
		}
	}
	s->size = (uint64_t)st->st_size;
	s->mtime_ns = mtime_ns(st);
	s->at = now;
	if (w->next_purge == NEVER)
		w->next_purge = now + w->dedup_ms / 2;
	return false;
}

static void report(struct watch *w, struct folder *f, const char *path, const struct stat *st)
{
	if (seen_before(w, path, st))
		return;
	char rel[PATH_MAX];
	rel_dir_of(f, path, rel, sizeof(rel));
	w->nreported++;
	w->cb.on_ready(w->opaque, f->id, path, rel, st);
}

struct purge_ctx {
	uint64_t now, window;
};

static bool purge_one(void *ctx, struct hnode *x)
{
	const struct purge_ctx *c = ctx;
	if (c->now - ((struct seen *)x)->at < c->window)
		return false;
	free(x);
	return true;
}

static void seen_purge(struct watch *w, uint64_t now)
{
	struct purge_ctx c = {.now = now, .window = w->dedup_ms};
	htab_filter(&w->seen, purge_one, &c);
	htab_fit(&w->seen);
	w->next_purge = w->seen.n ? now + w->dedup_ms / 2 : NEVER;
}

/* ---- tracked files (polled, or waiting to settle) ---- */

static bool fentry_eq(const struct hnode *x, const void *key)
{
	return strcmp(((const struct fentry *)x)->path, key) == 0;
}

static struct hnode **fentry_find(struct folder *f, const char *path)
{
	return htab_find(&f->files, hash_str(path), fentry_eq, path);
}

static bool fentry_changed(struct fentry *e, const struct stat *st, uint64_t now)
{
	if (e->size == (uint64_t)st->st_size && e->mtime_ns == mtime_ns(st) && e->ino == st->st_ino)
		return false;
	e->size = (uint64_t)st->st_size;
	e->mtime_ns = mtime_ns(st);
	e->ino = st->st_ino;
	e->stable_since = now;
	e->reported = false;
	return true;
}

/* Finds or adds the entry for path and updates it; NULL without memory. */
static struct fentry *track(struct folder *f, const char *path, const struct stat *st,
			    uint64_t now)
{
	struct fentry *e = (struct fentry *)*fentry_find(f, path);
	if (!e) {
		size_t n = strlen(path) + 1;
		e = calloc(1, sizeof(*e) + n);
		if (!e)
			return NULL;
		memcpy(e->path, path, n);
		e->h.hash = hash_str(path);
		e->size = UINT64_MAX;
		if (htab_add(&f->files, &e->h) < 0) {
			free(e);
			return NULL;
		}
	}
	fentry_changed(e, st, now);
	e->gen = f->gen;
	return e;
}

static void untrack(struct folder *f, const char *path)
{
	struct hnode **l = fentry_find(f, path);
	if (*l)
		free(htab_unlink(&f->files, l));
}

static bool settled(const struct folder *f, const struct fentry *e, uint64_t now)
{
	return now - e->stable_since >= f->settle_ms;
}

static unsigned pending_check_ms(const struct folder *f)
{
	unsigned ms = f->settle_ms / 4;
	return ms < 10 ? 10 : ms > 1000 ? 1000 : ms;
}

/* A file a scan found or a writer closed. Polled: ready once settled.
 * inotify: ready now if it was last written longer than the settle time
 * ago, else once unchanged (size, mtime, inode) for the settle time; a
 * later IN_CLOSE_WRITE or change restarts the wait. */
static void found_file(struct watch *w, struct folder *f, const char *path, const struct stat *st)
{
	uint64_t now = mono_ms();
	if (f->mode == WATCH_MODE_INOTIFY) {
		int64_t age_ns = (int64_t)wall_ns() - mtime_ns(st);
		if (age_ns >= (int64_t)f->settle_ms * 1000000) {
			untrack(f, path);
			report(w, f, path, st);
		} else if (track(f, path, st, now) && f->next_tick == NEVER) {
			f->next_tick = now + pending_check_ms(f);
		}
		return;
	}
	struct fentry *e = track(f, path, st, now);
	if (e && !e->reported && settled(f, e, now)) {
		e->reported = true;
		report(w, f, path, st);
	} else if (e && !e->reported && e->stable_since + f->settle_ms < f->settle_tick) {
		f->settle_tick = e->stable_since + f->settle_ms;
	}
}

struct settle_ctx {
	struct watch *w;
	struct folder *f;
	uint64_t now;
};

static bool settle_one(void *ctx, struct hnode *x)
{
	struct settle_ctx *c = ctx;
	struct fentry *e = (struct fentry *)x;
	struct stat st;
	if (e->reported)
		return false;
	if (lstat(e->path, &st) < 0 || !S_ISREG(st.st_mode))
		return false; /* the next scan sweeps it */
	if (!fentry_changed(e, &st, c->now) && settled(c->f, e, c->now)) {
		e->reported = true;
		report(c->w, c->f, e->path, &st);
	} else if (e->stable_since + c->f->settle_ms < c->f->settle_tick) {
		c->f->settle_tick = e->stable_since + c->f->settle_ms;
	}
	return false;
}

/* Polled folders: a file a scan found unsettled is looked at again (one
 * lstat, not a scan) when its settle time is up, so it is reported within
 * one interval plus the settle time of appearing, not two intervals. */
static void settle_check(struct watch *w, struct folder *f)
{
	struct settle_ctx c = {.w = w, .f = f, .now = mono_ms()};
	f->settle_tick = NEVER;
	htab_filter(&f->files, settle_one, &c);
}

struct pending_ctx {
	struct watch *w;
	struct folder *f;
	uint64_t now;
};

static bool pending_one(void *ctx, struct hnode *x)
{
	struct pending_ctx *c = ctx;
	struct fentry *e = (struct fentry *)x;
	struct stat st;
	if (lstat(e->path, &st) < 0 || !S_ISREG(st.st_mode)) {
		free(e);
		return true;
	}
	if (fentry_changed(e, &st, c->now) || !settled(c->f, e, c->now))
		return false;
	report(c->w, c->f, e->path, &st);
	free(e);
	return true;
}

/* inotify folders: report the scan-found files that have settled. */
static void pending_check(struct watch *w, struct folder *f)
{
	struct pending_ctx c = {.w = w, .f = f, .now = mono_ms()};
	htab_filter(&f->files, pending_one, &c);
	htab_fit(&f->files);
	f->next_tick = f->files.n ? c.now + pending_check_ms(f) : NEVER;
}

static bool sweep_one(void *ctx, struct hnode *x)
{
	const struct folder *f = ctx;
	if (((struct fentry *)x)->gen == f->gen)
		return false;
	free(x);
	return true;
}

/* ---- inotify watches ---- */

static bool wdir_eq(const struct hnode *x, const void *key)
{
	return ((const struct wdir *)x)->wd == *(const int *)key;
}

static struct hnode **wdir_find(struct watch *w, int wd)
{
	return htab_find(&w->wds, mix64((uint64_t)(unsigned)wd), wdir_eq, &wd);
}

static bool wdir_free(void *ctx, struct hnode *x)
{
	(void)ctx;
	free(((struct wdir *)x)->rel);
	free(x);
	return true;
}

static void wdir_drop(struct watch *w, struct hnode **l, bool rm)
{
	struct wdir *d = (struct wdir *)htab_unlink(&w->wds, l);
	if (rm)
		inotify_rm_watch(w->ifd, d->wd);
	free(d->rel);
	free(d);
}

/* Watches the folder at path (below f) and records it; an existing watch
 * (same inode seen under a new name after a rename) is re-homed. */
static int watch_dir(struct watch *w, struct folder *f, const char *path)
{
	/* EACCES: unreadable; the listing that follows reports it. */
	int wd = inotify_add_watch(w->ifd, path, DIR_MASK);
	if (wd < 0)
		return -errno;
	struct stat st = {0};
	stat(path, &st);
	char *rel = strdup(path[f->path_len] ? path + f->path_len + 1 : "");
	if (!rel)
		return -ENOMEM;
	struct wdir *d = (struct wdir *)*wdir_find(w, wd);
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d) {
			free(rel);
			inotify_rm_watch(w->ifd, wd);
			return -ENOMEM;
		}
		d->wd = wd;
		d->h.hash = mix64((uint64_t)(unsigned)wd);
		if (htab_add(&w->wds, &d->h) < 0) {
			free(d);
			free(rel);
			inotify_rm_watch(w->ifd, wd);
			return -ENOMEM;
		}
	}
	free(d->rel);
	d->rel = rel;
	d->folder = f->id;
	d->dev = st.st_dev;
	d->ino = st.st_ino;
	if (!rel[0]) {
		f->root_dev = st.st_dev;
		f->root_ino = st.st_ino;
	}
	return wd;
}

static void wdir_path(const struct folder *f, const struct wdir *d, const char *name, char *out,
		      size_t size)
{
	snprintf(out, size, "%s%s%s%s%s", f->path, d->rel[0] ? "/" : "", d->rel, name ? "/" : "",
		 name ? name : "");
}

struct drop_ctx {
	struct watch *w;
	const struct folder *f;
	const char *rel;  /* NULL: every watch of the folder */
	bool check_inode; /* keep watches whose path still is their folder */
};

static bool drop_match(void *ctx, struct hnode *x)
{
	struct drop_ctx *c = ctx;
	struct wdir *d = (struct wdir *)x;
	if (d->folder != c->f->id)
		return false;
	if (c->rel) {
		size_t n = strlen(c->rel);
		if (strncmp(d->rel, c->rel, n) != 0 || (d->rel[n] != '\0' && d->rel[n] != '/'))
			return false;
	}
	if (c->check_inode) {
		char path[PATH_MAX];
		struct stat st;
		wdir_path(c->f, d, NULL, path, sizeof(path));
		if (stat(path, &st) == 0 && st.st_dev == d->dev && st.st_ino == d->ino)
			return false;
	}
	inotify_rm_watch(c->w->ifd, d->wd);
	free(d->rel);
	free(d);
	return true;
}

static void drop_watches(struct watch *w, const struct folder *f, const char *rel, bool check)
{
	struct drop_ctx c = {.w = w, .f = f, .rel = rel, .check_inode = check};
	htab_filter(&w->wds, drop_match, &c);
	htab_fit(&w->wds);
}

/* ---- scanning ---- */

struct scan {
	char path[PATH_MAX];
	size_t len;
	int err; /* first error other than a vanished subfolder */
};

static void walk(struct watch *w, struct folder *f, struct scan *sc, unsigned depth);

/* inotify ran out of watches: polling still sees every file. */
static void fall_back_to_poll(struct watch *w, struct folder *f, int err)
{
	wlog(w, LOG_LEVEL_WARNING,
	     "folder %s: cannot add inotify watch (%s; see fs.inotify.max_user_watches): "
	     "polling every %ums instead",
	     f->path, strerror(-err), f->interval_ms);
	drop_watches(w, f, NULL, false);
	f->mode = WATCH_MODE_POLL;
	f->next_tick = mono_ms() + f->interval_ms;
}

static void walk_entry(struct watch *w, struct folder *f, struct scan *sc, int dfd,
		       const char *name, unsigned depth)
{
	struct stat st;
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return; /* vanished since readdir */
	size_t save = sc->len;
	int n = snprintf(sc->path + save, sizeof(sc->path) - save, "/%s", name);
	/* Skipped, and said once: not a folder that cannot be read (which
	 * would be rescanned every second for as long as the name exists). */
	if (n < 0 || (size_t)n >= sizeof(sc->path) - save) {
		sc->path[save] = '\0';
		if (!f->warned_long)
			wlog(w, LOG_LEVEL_WARNING, "folder %s: skipping %.200s in %.200s...: its path "
			     "is longer than %zu bytes", f->path, name, sc->path, sizeof(sc->path) - 1);
		f->warned_long = true;
		return;
	}
	sc->len += (size_t)n;
	if (S_ISDIR(st.st_mode)) {
		if (!f->recursive || dir_ignored(f, name, sc->path)) {
			/* not looked into */
		} else if (depth < WALK_MAX_DEPTH) {
			walk(w, f, sc, depth + 1);
		} else {
			if (!f->warned_deep)
				wlog(w, LOG_LEVEL_WARNING, "folder %s: not looking below %.300s...: "
				     "over %u levels deep", f->path, sc->path, WALK_MAX_DEPTH);
			f->warned_deep = true;
		}
	} else if (S_ISREG(st.st_mode) && !file_ignored(f, name, sc->path)) {
		found_file(w, f, sc->path, &st);
	}
	sc->len = save;
	sc->path[save] = '\0';
}

/* Watches sc->path first and lists it second, so that nothing created in
 * between is missed: it is either listed or seen by the watch. */
static void walk(struct watch *w, struct folder *f, struct scan *sc, unsigned depth)
{
	if (f->mode == WATCH_MODE_INOTIFY) {
		int wd = watch_dir(w, f, sc->path);
		if (wd == -ENOSPC || wd == -ENOMEM)
			fall_back_to_poll(w, f, wd);
		else if (wd < 0 && wd != -ENOENT && wd != -ENOTDIR && wd != -EACCES)
			wlog(w, LOG_LEVEL_WARNING, "folder %s: cannot watch %s: %s", f->path,
			     sc->path, strerror(-wd));
	}
	DIR *d = opendir(sc->path);
	if (!d) {
		if (errno != ENOENT || depth == 0)
			sc->err = sc->err ? sc->err : errno;
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		walk_entry(w, f, sc, dirfd(d), de->d_name, depth);
	closedir(d);
}

static int scan_from(struct watch *w, struct folder *f, const char *path)
{
	struct scan sc = {.len = strlen(path)};
	if (sc.len >= sizeof(sc.path))
		return ENAMETOOLONG;
	memcpy(sc.path, path, sc.len + 1);
	walk(w, f, &sc, 0);
	return sc.err;
}

/* A full scan: the start-up scan, a rescan, or one poll interval. */
static void folder_scan(struct watch *w, struct folder *f)
{
	f->scan_due = false;
	if (f->lost)
		return;
	f->gen++;
	f->settle_tick = NEVER; /* found_file sets it again */
	int err = scan_from(w, f, f->path);
	if (err && !f->read_failed)
		wlog(w, LOG_LEVEL_WARNING, "folder %s: cannot scan: %s", f->path, strerror(err));
	else if (!err && f->read_failed)
		wlog(w, LOG_LEVEL_INFO, "folder %s: readable again", f->path);
	f->read_failed = err != 0;
	uint64_t now = mono_ms();
	if (f->mode == WATCH_MODE_POLL) {
		/* After an I/O error keep what we knew: forgetting files would
		 * report them again once the share is back. */
		if (!err || err == ENOENT) {
			htab_filter(&f->files, sweep_one, f);
			htab_fit(&f->files);
		}
		f->next_tick = now + f->interval_ms;
	} else if (err && err != ENOENT) {
		f->next_tick = now + LOST_RETRY_MS;
	} else {
		f->next_tick = f->files.n ? now + pending_check_ms(f) : NEVER;
	}
}

/* ---- inotify events ---- */

static void folder_lost(struct watch *w, struct folder *f, const char *why)
{
	if (f->lost)
		return;
	f->lost = true;
	drop_watches(w, f, NULL, false);
	htab_filter(&f->files, drop_free, NULL);
	f->next_tick = mono_ms() + LOST_RETRY_MS;
	wlog(w, LOG_LEVEL_WARNING, "folder %s: %s; waiting for it to come back", f->path, why);
}

static void folder_retry(struct watch *w, struct folder *f)
{
	struct stat st;
	f->next_tick = mono_ms() + LOST_RETRY_MS;
	if (stat(f->path, &st) < 0 || !S_ISDIR(st.st_mode))
		return;
	if (watch_dir(w, f, f->path) < 0)
		return;
	f->lost = false;
	f->scan_due = true;
	wlog(w, LOG_LEVEL_INFO, "folder %s: back, watching with inotify again", f->path);
}

/* IN_DELETE_SELF / IN_MOVE_SELF / IN_IGNORED on a watched folder. A folder
 * renamed inside the tree was already re-homed by its IN_MOVED_TO, so only
 * watches whose path no longer leads to their folder are dropped. */
static void on_dir_self(struct watch *w, struct folder *f, struct hnode **l, uint32_t mask)
{
	struct wdir *d = (struct wdir *)*l;
	if (d->rel[0] == '\0') {
		struct stat st;
		if (!(mask & IN_IGNORED) && stat(f->path, &st) == 0 && st.st_dev == d->dev &&
		    st.st_ino == d->ino)
			return;
		folder_lost(w, f, "deleted or moved away"); /* drops d too */
		return;
	}
	if (mask & IN_IGNORED) {
		wdir_drop(w, l, false);
		return;
	}
	char *rel = strdup(d->rel);
	if (rel)
		drop_watches(w, f, rel, true);
	free(rel);
}

/* A file announced in a folder that cannot be read now: say so once, and
 * rescan until it can be (the file is found then). */
static void folder_unreadable(struct watch *w, struct folder *f, const char *path, int err)
{
	if (!f->read_failed)
		wlog(w, LOG_LEVEL_WARNING, "folder %s: cannot read %s: %s; retrying", f->path, path,
		     strerror(err));
	f->read_failed = true;
	uint64_t retry = mono_ms() + LOST_RETRY_MS;
	if (f->next_tick > retry)
		f->next_tick = retry;
}

static void on_file_event(struct watch *w, struct folder *f, const char *path, const char *name,
			  uint32_t mask)
{
	struct stat st;
	if (file_ignored(f, name, path))
		return;
	if (lstat(path, &st) < 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			folder_unreadable(w, f, path, errno);
		return;
	}
	if (!S_ISREG(st.st_mode))
		return;
	if (mask & IN_MOVED_TO) {
		/* Renamed into place: the writer is done with it. */
		untrack(f, path);
		report(w, f, path, &st);
	} else if ((mask & IN_CLOSE_WRITE) || st.st_nlink > 1) {
		/* A writer may reopen it to append (or write the header, close, and
		 * append), and a hard link appears without IN_CLOSE_WRITE: either
		 * is ready once unchanged for the settle time. */
		found_file(w, f, path, &st);
	}
}

static void on_event(struct watch *w, const struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		wlog(w, LOG_LEVEL_WARNING, "inotify queue overflowed: rescanning inotify folders");
		for (size_t i = 0; i < w->nfolders; i++)
			if (w->folders[i] && w->folders[i]->mode == WATCH_MODE_INOTIFY)
				w->folders[i]->scan_due = true;
		return;
	}
	struct hnode **l = wdir_find(w, ev->wd);
	struct wdir *d = (struct wdir *)*l;
	struct folder *f = d ? folder_get(w, d->folder) : NULL;
	if (!f || f->mode != WATCH_MODE_INOTIFY)
		return; /* a watch dropped while its events were queued */
	if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
		on_dir_self(w, f, l, ev->mask);
		return;
	}
	if (ev->mask & IN_ATTRIB) {
		if (ev->len == 0)
			f->scan_due = true; /* a watched folder's own permissions */
		return;
	}
	if (ev->len == 0)
		return;
	char path[PATH_MAX];
	wdir_path(f, d, ev->name, path, sizeof(path));
	if (!(ev->mask & IN_ISDIR))
		on_file_event(w, f, path, ev->name, ev->mask);
	else if (f->recursive && !dir_ignored(f, ev->name, path))
		scan_from(w, f, path); /* a new subfolder and what is already in it */
}

static void on_inotify_read(struct watch *w, int res)
{
	if (res < 0 && res != -EINTR && res != -EAGAIN && res != -ECANCELED)
		wlog(w, LOG_LEVEL_ERR, "inotify read: %s", strerror(-res));
	for (int off = 0; res > 0 && off + (int)sizeof(struct inotify_event) <= res;) {
		const struct inotify_event *ev = (const void *)(w->ibuf + off);
		on_event(w, ev);
		off += (int)(sizeof(*ev) + ev->len);
	}
}

/* ---- the event loop ---- */

static int arm_inotify(struct watch *w)
{
	int err = ring_queue_read(w->ring, w->ifd, w->ibuf, sizeof(w->ibuf), TOK_INOTIFY);
	w->ino_armed = err == 0;
	return err;
}

static int arm_wake(struct watch *w)
{
	int err = ring_queue_read(w->ring, w->efd, &w->wake_val, sizeof(w->wake_val), TOK_WAKE);
	w->wake_armed = err == 0;
	return err;
}

static int dispatch(struct watch *w, uint64_t token, int res)
{
	if (token == TOK_WAKE) {
		w->wake_armed = false;
		w->woken = true;
		return w->closing ? 0 : arm_wake(w);
	}
	if (token == TOK_INOTIFY) {
		w->ino_armed = false;
		if (w->closing)
			return 0;
		on_inotify_read(w, res);
		return arm_inotify(w);
	}
	return 0; /* not ours: the ring is meant to be the watch's alone */
}

/* A watched folder's periodic work: find it again when lost, rescan it
 * while it cannot be read, else look at the files still settling. */
static void folder_tick(struct watch *w, struct folder *f)
{
	if (f->lost)
		folder_retry(w, f);
	else if (f->read_failed)
		folder_scan(w, f);
	else
		pending_check(w, f);
}

/* An inotify folder whose path now leads elsewhere (a mount over it, or
 * another folder in its place): lost, so found again at its path and
 * rescanned, as one deleted or moved away. */
static void root_check(struct watch *w, struct folder *f, uint64_t now)
{
	struct stat st;

	f->root_check = now + ROOT_CHECK_MS;
	if (stat(f->path, &st) == 0 && (st.st_dev != f->root_dev || st.st_ino != f->root_ino))
		folder_lost(w, f, "its path leads to another folder now (mounted over, or replaced)");
}

static void run_due(struct watch *w)
{
	uint64_t now = mono_ms();
	for (size_t i = 0; i < w->nfolders; i++) {
		struct folder *f = w->folders[i];
		if (!f)
			continue;
		if (f->mode == WATCH_MODE_INOTIFY && !f->lost && now >= f->root_check)
			root_check(w, f, now);
		if (f->scan_due || (f->mode == WATCH_MODE_POLL && now >= f->next_tick))
			folder_scan(w, f);
		else if (f->mode == WATCH_MODE_POLL && now >= f->settle_tick)
			settle_check(w, f);
		else if (now >= f->next_tick)
			folder_tick(w, f);
	}
	if (now >= w->next_purge)
		seen_purge(w, now);
}

/* How long to wait: until the next timer, at most timeout_ms. */
static int next_wait(const struct watch *w, int timeout_ms)
{
	uint64_t next = w->next_purge;
	for (size_t i = 0; i < w->nfolders; i++) {
		const struct folder *f = w->folders[i];
		if (f && f->scan_due)
			return 0;
		if (f && f->next_tick < next)
			next = f->next_tick;
		if (f && f->settle_tick < next)
			next = f->settle_tick;
		if (f && f->mode == WATCH_MODE_INOTIFY && !f->lost && f->root_check < next)
			next = f->root_check;
	}
	if (next == NEVER)
		return timeout_ms;
	uint64_t now = mono_ms();
	uint64_t left = next > now ? next - now : 0;
	if (timeout_ms >= 0 && left > (uint64_t)timeout_ms)
		return timeout_ms;
	return left > INT_MAX ? INT_MAX : (int)left;
}

int watch_run_once(struct watch *w, int timeout_ms)
{
	w->nreported = 0;
	uint64_t deadline = timeout_ms >= 0 ? mono_ms() + (uint64_t)timeout_ms : NEVER;
	run_due(w);
	int err = 0;
	for (int i = 0; i < PUMP_MAX && !w->woken; i++) {
		uint64_t now = mono_ms();
		int left = deadline == NEVER ? -1 : deadline > now ? (int)(deadline - now) : 0;
		uint64_t token;
		int res;
		/* After the first completion only drain what is already there. */
		err = ring_wait_event(w->ring, i == 0 ? next_wait(w, left) : 0, &token, &res);
		if (err <= 0)
			break;
		err = dispatch(w, token, res);
		if (err < 0)
			break;
	}
	w->woken = false;
	run_due(w);
	return err < 0 ? err : w->nreported;
}

void watch_wakeup(struct watch *w)
{
	uint64_t one = 1;
	/* EAGAIN means the counter is full: a wakeup is pending anyway. */
	if (write(w->efd, &one, sizeof(one)) < 0)
		return;
}

static bool unreport_one(void *ctx, struct hnode *x)
{
	(void)ctx;
	((struct fentry *)x)->reported = false;
	return false;
}

/* The caller asks because it may have dropped reports (a full queue): so
 * forget what was reported and report every settled file again. */
void watch_rescan(struct watch *w)
{
	htab_filter(&w->seen, drop_free, NULL);
	htab_fit(&w->seen);
	w->next_purge = NEVER;
	for (size_t i = 0; i < w->nfolders; i++) {
		struct folder *f = w->folders[i];
		if (!f)
			continue;
		f->scan_due = true;
		if (f->mode == WATCH_MODE_POLL)
			htab_filter(&f->files, unreport_one, NULL);
	}
}

/* ---- folders ---- */

static char *path_norm(const char *base, const char *path)
{
	char *s = NULL;
	if (path[0] == '/' || !base)
		s = strdup(path);
	else if (asprintf(&s, "%s/%s", base, path) < 0)
		s = NULL;
	if (!s)
		return NULL;
	size_t n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

static void strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* Copies v, each entry normalized against base when base is not NULL, and
 * appends extra when not NULL. */
static char **strv_copy(const char *const *v, const char *base, const char *extra)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	char **out = calloc(n + 2, sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i <= n; i++) {
		const char *s = i < n ? v[i] : extra;
		if (!s)
			break;
		out[i] = base ? path_norm(base, s) : strdup(s);
		if (!out[i]) {
			strv_free(out);
			return NULL;
		}
	}
	return out;
}

static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return path[0] == '/' && path[1] != '\0';
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

static bool folder_excludes(const struct folder *f, const char *path)
{
	for (char **x = f->exclude; x && *x; x++)
		if (strcmp(*x, path) == 0 || path_under(path, *x))
			return true;
	return false;
}

/* Two folders may nest only if the outer one does not enter the inner. */
static bool folders_overlap(const struct folder *a, const struct folder *b)
{
	if (strcmp(a->path, b->path) == 0)
		return true;
	if (path_under(b->path, a->path))
		return a->recursive && !folder_excludes(a, b->path);
	if (path_under(a->path, b->path))
		return b->recursive && !folder_excludes(b, a->path);
	return false;
}

static struct folder *folder_free(struct folder *f)
{
	if (f) {
		htab_filter(&f->files, drop_free, NULL);
		free(f->files.b);
		strv_free(f->ignore);
		strv_free(f->exclude);
		free(f->path);
		free(f);
	}
	return NULL;
}

static int folder_make(struct folder **out, const struct watch_folder_cfg *cfg,
		       struct errbuf *eb)
{
	char *failed = NULL;
	struct folder *f = calloc(1, sizeof(*f));
	if (!f || !(f->path = path_norm(NULL, cfg->path)))
		goto nomem;
	if (asprintf(&failed, "%s/.failed", f->path) < 0) {
		failed = NULL;
		goto nomem;
	}
	f->ignore = strv_copy(cfg->ignore, NULL, NULL);
	f->exclude = strv_copy(cfg->exclude, f->path, failed);
	free(failed);
	failed = NULL;
	if (!f->ignore || !f->exclude)
		goto nomem;
	f->path_len = strlen(f->path);
	f->recursive = cfg->recursive;
	f->interval_ms = cfg->poll_interval_ms ? cfg->poll_interval_ms : WATCH_DEFAULT_POLL_MS;
	f->settle_ms = cfg->settle_ms ? cfg->settle_ms : WATCH_DEFAULT_SETTLE_MS;
	f->next_tick = NEVER;
	f->settle_tick = NEVER;
	f->scan_due = true;
	*out = f;
	return 0;
nomem:
	free(failed);
	folder_free(f);
	return errbuf_set(eb, -ENOMEM, "folder %s: out of memory", cfg->path);
}

/* Decides inotify or poll and says why, for the log line. */
static int folder_pick_mode(struct folder *f, enum watch_mode mode, char *why, size_t size,
			    struct errbuf *eb)
{
	struct statfs sfs;
	if (statfs(f->path, &sfs) < 0)
		return errbuf_set(eb, -errno, "folder %s: %s", f->path, strerror(errno));
	const char *name = watch_fstype_name((unsigned long)sfs.f_type);
	const char *reason;
	f->mode = watch_mode_for_fstype((unsigned long)sfs.f_type, &reason);
	if (mode != WATCH_MODE_AUTO) {
		f->mode = mode;
		snprintf(why, size, "%s, as configured", name ? name : "unknown file system");
	} else if (!name) {
		snprintf(why, size, "%s 0x%lx", reason, (unsigned long)sfs.f_type);
	} else {
		snprintf(why, size, "%s", reason);
	}
	return 0;
}

static int watch_inotify_start(struct watch *w, struct errbuf *eb)
{
	if (w->ifd >= 0)
		return 0;
	w->ifd = inotify_init1(IN_CLOEXEC);
	if (w->ifd < 0)
		return errbuf_set(eb, -errno, "inotify_init1: %s", strerror(errno));
	int err = arm_inotify(w);
	if (err < 0)
		return errbuf_set(eb, err, "queueing the inotify read: %s", strerror(-err));
	return 0;
}

static int folder_slot(struct watch *w)
{
	for (size_t i = 0; i < w->nfolders; i++)
		if (!w->folders[i])
			return (int)i;
	struct folder **v = reallocarray(w->folders, w->nfolders + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	w->folders = v;
	w->folders[w->nfolders] = NULL;
	return (int)w->nfolders++;
}

static int folder_check(struct watch *w, const struct folder *f, struct errbuf *eb)
{
	struct stat st;
	if (stat(f->path, &st) < 0)
		return errbuf_set(eb, -errno, "folder %s: %s", f->path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return errbuf_set(eb, -ENOTDIR, "folder %s: not a directory", f->path);
	for (size_t i = 0; i < w->nfolders; i++)
		if (w->folders[i] && folders_overlap(w->folders[i], f))
			return errbuf_set(eb, -EEXIST, "folder %s: overlaps watched folder %s",
					  f->path, w->folders[i]->path);
	return 0;
}

static int folder_start(struct watch *w, struct folder *f, const char *why, struct errbuf *eb)
{
	if (f->mode == WATCH_MODE_INOTIFY) {
		int err = watch_inotify_start(w, eb);
		if (err < 0)
			return err;
		err = watch_dir(w, f, f->path);
		if (err < 0)
			return errbuf_set(eb, err, "folder %s: inotify_add_watch: %s", f->path,
					  strerror(-err));
		wlog(w, LOG_LEVEL_INFO, "folder %s: watching with inotify (%s)", f->path, why);
	} else if (f->interval_ms % 1000 == 0) {
		wlog(w, LOG_LEVEL_INFO, "folder %s: polling every %us (%s)", f->path,
		     f->interval_ms / 1000, why);
	} else {
		wlog(w, LOG_LEVEL_INFO, "folder %s: polling every %ums (%s)", f->path, f->interval_ms,
		     why);
	}
	return 0;
}

int watch_add_folder(struct watch *w, const struct watch_folder_cfg *cfg, struct errbuf *eb)
{
	struct folder *f = NULL;
	char why[256];
	errbuf_clear(eb);
	if (!cfg->path || !cfg->path[0])
		return errbuf_set(eb, -EINVAL, "folder: empty path");
	int err = folder_make(&f, cfg, eb);
	if (err < 0)
		return err;
	err = folder_check(w, f, eb);
	if (!err)
		err = folder_pick_mode(f, cfg->mode, why, sizeof(why), eb);
	if (!err) {
		f->id = folder_slot(w);
		if (f->id < 0)
			err = errbuf_set(eb, f->id, "folder %s: out of memory", f->path);
	}
	if (!err)
		err = folder_start(w, f, why, eb);
	if (err < 0) {
		folder_free(f);
		return err;
	}
	w->folders[f->id] = f;
	if (w->dedup_ms < 2 * (uint64_t)f->settle_ms + 1000)
		w->dedup_ms = 2 * (uint64_t)f->settle_ms + 1000;
	return f->id;
}

int watch_remove_folder(struct watch *w, int id)
{
	struct folder *f = folder_get(w, id);
	if (!f)
		return -ENOENT;
	if (w->ifd >= 0)
		drop_watches(w, f, NULL, false);
	w->folders[id] = folder_free(f);
	return 0;
}

/* ---- lifecycle ---- */

int watch_new(struct watch **out, struct ring *ring, const struct watch_callbacks *cb,
	      void *opaque)
{
	if (!cb || !cb->on_ready)
		return -EINVAL;
	struct watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->cb = *cb;
	w->opaque = opaque;
	w->ifd = -1;
	w->next_purge = NEVER;
	w->dedup_ms = WATCH_DEDUP_MS;
	w->ring = ring;
	int err = 0;
	if (!ring) {
		err = ring_new(&w->ring, 8);
		w->own_ring = err == 0;
	}
	w->efd = err ? -1 : eventfd(0, EFD_CLOEXEC);
	if (!err && w->efd < 0)
		err = -errno;
	if (!err)
		err = arm_wake(w);
	if (err < 0) {
		watch_free(w);
		return err;
	}
	*out = w;
	return 0;
}

/* The kernel may still write into ibuf and wake_val until the reads
 * complete: cancel them and wait for their completions before freeing. */
static bool watch_quiesce(struct watch *w)
{
	w->closing = true;
	if (w->ino_armed)
		ring_queue_cancel(w->ring, TOK_INOTIFY);
	if (w->wake_armed)
		ring_queue_cancel(w->ring, TOK_WAKE);
	for (int i = 0; i < 50 && (w->ino_armed || w->wake_armed); i++) {
		uint64_t token;
		int res;
		if (ring_wait_event(w->ring, 100, &token, &res) < 0)
			break;
		dispatch(w, token, res);
		if (i == 10) { /* a cancel can race with a read just being issued */
			if (w->ino_armed)
				ring_queue_cancel(w->ring, TOK_INOTIFY);
			if (w->wake_armed)
				ring_queue_cancel(w->ring, TOK_WAKE);
		}
	}
	return !w->ino_armed && !w->wake_armed;
}

struct watch *watch_free(struct watch *w)
{
	if (!w)
		return NULL;
	bool quiet = w->ring ? watch_quiesce(w) : true;
	for (size_t i = 0; i < w->nfolders; i++)
		folder_free(w->folders[i]);
	free(w->folders);
	htab_filter(&w->wds, wdir_free, NULL);
	htab_filter(&w->seen, drop_free, NULL);
	free(w->wds.b);
	free(w->seen.b);
	if (w->ifd >= 0)
		close(w->ifd);
	if (w->efd >= 0)
		close(w->efd);
	if (w->own_ring)
		ring_free(w->ring); /* tears down whatever is still in flight */
	/* A read still in flight on a shared ring may yet write into w: better
	 * to leak it than to let the kernel write into freed memory. */
	if (quiet || w->own_ring)
		free(w);
	return NULL;
}
