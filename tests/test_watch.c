/*
 * test_watch.c - unit tests of the folder watcher (ingest/watch.c).
 *
 * Every test works in a fresh folder under /tmp and proves what watch.h
 * promises: each way a file appears (create and close, cp, mv from outside,
 * a new subfolder that already holds files, rename from x.part) is reported
 * exactly once, partial names never, polled folders after the settle time,
 * nothing is lost when the inotify queue overflows, and a folder that
 * disappears does not hurt. Waits use generous deadlines, never tight
 * timing: a test waits up to DEADLINE_MS for the expected set, then keeps
 * the loop running a little longer to catch duplicates.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "monoclock.h"
#include "ring.h"
#include "watch.h"

#define DEADLINE_MS 10000
#define QUIET_MS 400 /* extra loop time in which no duplicate may show up */
#define MAXREP 12000

struct rep {
	int folder;
	char path[320];
	char rel[64];
	off_t size;
	uint64_t at;
};

struct ctx {
	struct rep *v;
	size_t n;
	char log[8192];
	struct watch *w;
	char dir[PATH_MAX];   /* the watched folder */
	char other[PATH_MAX]; /* a folder beside it, on the same file system */
};

static void on_ready(void *opaque, int folder, const char *path, const char *rel,
		     const struct stat *st)
{
	struct ctx *c = opaque;
	assert_true(c->n < MAXREP);
	struct rep *r = &c->v[c->n++];
	r->folder = folder;
	snprintf(r->path, sizeof(r->path), "%s", path);
	snprintf(r->rel, sizeof(r->rel), "%s", rel);
	r->size = st->st_size;
	r->at = mono_ms();
}

static void on_log(void *opaque, enum log_level level, const char *msg)
{
	struct ctx *c = opaque;
	size_t n = strlen(c->log);
	(void)level;
	snprintf(c->log + n, sizeof(c->log) - n, "%s\n", msg);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->v = calloc(MAXREP, sizeof(*c->v));
	assert_non_null(c->v);
	char base[] = "/tmp/cv-watch-XXXXXX";
	assert_non_null(mkdtemp(base));
	snprintf(c->dir, sizeof(c->dir), "%s/in", base);
	snprintf(c->other, sizeof(c->other), "%s/outside", base);
	assert_int_equal(mkdir(c->dir, 0755), 0);
	assert_int_equal(mkdir(c->other, 0755), 0);
	struct watch_callbacks cb = {.on_ready = on_ready, .on_log = on_log};
	assert_int_equal(watch_new(&c->w, NULL, &cb, c), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	assert_null(watch_free(c->w));
	char base[PATH_MAX];
	snprintf(base, sizeof(base), "%s", c->dir);
	*strrchr(base, '/') = '\0';
	rm_rf(base);
	free(c->v);
	free(c);
	return 0;
}

static int add(struct ctx *c, const char *path, enum watch_mode mode, unsigned settle_ms,
	       unsigned poll_ms, const char *const *ignore, const char *const *exclude)
{
	struct watch_folder_cfg cfg = {
		.path = path, .recursive = true, .mode = mode, .settle_ms = settle_ms,
		.poll_interval_ms = poll_ms, .ignore = ignore, .exclude = exclude,
	};
	struct errbuf eb;
	int id = watch_add_folder(c->w, &cfg, &eb);
	if (id < 0)
		print_message("watch_add_folder: %s\n", eb.msg);
	return id;
}

static void write_file(const char *path, size_t size)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	assert_true(fd >= 0);
	char buf[4096];
	memset(buf, 'x', sizeof(buf));
	for (size_t done = 0; done < size;) {
		size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
		done += n;
	}
	assert_int_equal(close(fd), 0);
}

static void pathf(char *out, const char *dir, const char *fmt, ...)
{
	char name[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
	assert_true(n > 0 && n < PATH_MAX);
}

static size_t count(const struct ctx *c, const char *path)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n; i++)
		n += strcmp(c->v[i].path, path) == 0;
	return n;
}

static const struct rep *find(const struct ctx *c, const char *path)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->v[i].path, path) == 0)
			return &c->v[i];
	return NULL;
}

/* Runs the loop until path was reported (or the deadline passed). */
static bool wait_for(struct ctx *c, const char *path)
{
	uint64_t end = mono_ms() + DEADLINE_MS;
	while (!count(c, path) && mono_ms() < end)
		assert_true(watch_run_once(c->w, 50) >= 0);
	return count(c, path) > 0;
}

static void run_for(struct ctx *c, unsigned ms)
{
	uint64_t end = mono_ms() + ms;
	while (mono_ms() < end)
		assert_true(watch_run_once(c->w, 20) >= 0);
}

static void test_fstype_table(void **state)
{
	(void)state;
	static const unsigned long remote[] = {
		0x6969, 0x517B, 0xFF534D42, 0xFE534D42, 0x65735546, 0x00C36400,
		0x01021997, 0x5346414F, 0x6B414653, 0x73757245, 0x564c,
	};
	const char *why;
	for (size_t i = 0; i < sizeof(remote) / sizeof(remote[0]); i++) {
		why = NULL;
		assert_int_equal(watch_mode_for_fstype(remote[i], &why), WATCH_MODE_POLL);
		assert_non_null(strstr(why, "inotify does not see remote writes"));
	}
	assert_int_equal(watch_mode_for_fstype(0x65735546, &why), WATCH_MODE_POLL);
	assert_string_equal(why, "fuse: inotify does not see remote writes");
	/* f_type is a signed long: CIFS may arrive sign-extended. */
	assert_int_equal(watch_mode_for_fstype((unsigned long)(long)(int32_t)0xFF534D42, NULL),
			 WATCH_MODE_POLL);
	assert_int_equal(watch_mode_for_fstype(0xEF53, &why), WATCH_MODE_INOTIFY);
	assert_string_equal(why, "ext4");
	assert_int_equal(watch_mode_for_fstype(0x58465342, NULL), WATCH_MODE_INOTIFY);
	assert_int_equal(watch_mode_for_fstype(0x9123683E, NULL), WATCH_MODE_INOTIFY);
	assert_int_equal(watch_mode_for_fstype(0x01021994, NULL), WATCH_MODE_INOTIFY);
	assert_int_equal(watch_mode_for_fstype(0x7461636F, NULL), WATCH_MODE_INOTIFY);
	assert_int_equal(watch_mode_for_fstype(0x12345678, &why), WATCH_MODE_INOTIFY);
	assert_non_null(strstr(why, "unknown"));
	assert_string_equal(watch_fstype_name(0x6969), "nfs");
	assert_null(watch_fstype_name(0x12345678));
}

static void test_partial_names(void **state)
{
	(void)state;
	static const char *const partial[] = {".hidden.pcap", "a.part", "a.PART", "a.tmp",
					      "a.filepart", "a.pcap~", "a.crdownload",
					      "a.partial", ""};
	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++)
		assert_true(watch_name_is_partial(partial[i]));
	assert_false(watch_name_is_partial("a.pcap"));
	assert_false(watch_name_is_partial("a.pcapng.gz"));
	assert_false(watch_name_is_partial("party.pcap"));
}

static void test_add_errors(void **state)
{
	struct ctx *c = *state;
	char p[PATH_MAX];
	pathf(p, c->dir, "missing");
	assert_int_equal(add(c, p, WATCH_MODE_AUTO, 100, 100, NULL, NULL), -ENOENT);
	pathf(p, c->dir, "file");
	write_file(p, 1);
	assert_int_equal(add(c, p, WATCH_MODE_AUTO, 100, 100, NULL, NULL), -ENOTDIR);
	assert_true(add(c, c->dir, WATCH_MODE_AUTO, 100, 100, NULL, NULL) >= 0);
	assert_int_equal(add(c, c->dir, WATCH_MODE_AUTO, 100, 100, NULL, NULL), -EEXIST);
	pathf(p, c->dir, "sub");
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(add(c, p, WATCH_MODE_AUTO, 100, 100, NULL, NULL), -EEXIST);
	assert_non_null(strstr(c->log, "watching with inotify"));
}

static void test_create_close(void **state)
{
	struct ctx *c = *state;
	int id = add(c, c->dir, WATCH_MODE_INOTIFY, 300, 0, NULL, NULL);
	assert_true(id >= 0);
	run_for(c, 50);
	char p[PATH_MAX];
	pathf(p, c->dir, "a.pcap");
	write_file(p, 100000);
	assert_true(wait_for(c, p));
	run_for(c, QUIET_MS);
	assert_int_equal(count(c, p), 1);
	assert_int_equal(find(c, p)->folder, id);
	assert_string_equal(find(c, p)->rel, "");
	assert_int_equal(find(c, p)->size, 100000);
	/* An explicit rescan reports it again (once it has settled). */
	watch_rescan(c->w);
	uint64_t end = mono_ms() + DEADLINE_MS;
	while (count(c, p) < 2 && mono_ms() < end)
		assert_true(watch_run_once(c->w, 50) >= 0);
	run_for(c, QUIET_MS);
	assert_int_equal(count(c, p), 2);
}

static void append_file(const char *path, size_t size)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	char buf[512];
	memset(buf, 'y', sizeof(buf));
	for (size_t done = 0; done < size; done += sizeof(buf))
		assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	assert_int_equal(close(fd), 0);
}

/* Issue 15.8: a writer closes after the header and reopens to append
 * within the settle time; the file is reported once, whole, after it. */
static void test_close_then_append(void **state)
{
	struct ctx *c = *state;
	assert_true(add(c, c->dir, WATCH_MODE_INOTIFY, 600, 0, NULL, NULL) >= 0);
	run_for(c, 50);
	char p[PATH_MAX];
	pathf(p, c->dir, "grow.pcap");
	write_file(p, 24);
	for (int i = 0; i < 3; i++) {
		run_for(c, 150);
		append_file(p, 1024);
	}
	assert_int_equal(count(c, p), 0);
	assert_true(wait_for(c, p));
	run_for(c, QUIET_MS);
	assert_int_equal(count(c, p), 1);
	assert_int_equal(find(c, p)->size, 24 + 3 * 1024);
}

static void test_cp_and_mv(void **state)
{
	struct ctx *c = *state;
	assert_true(add(c, c->dir, WATCH_MODE_INOTIFY, 300, 0, NULL, NULL) >= 0);
	run_for(c, 50);
	char src[PATH_MAX], cp_dst[PATH_MAX], mv_src[PATH_MAX], mv_dst[PATH_MAX], cmd[3 * PATH_MAX];
	pathf(src, c->other, "src.pcap");
	write_file(src, 300000);
	pathf(cp_dst, c->dir, "copied.pcap");
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, cp_dst);
	assert_int_equal(system(cmd), 0);
	pathf(mv_src, c->other, "moved.pcap");
	write_file(mv_src, 1000);
	pathf(mv_dst, c->dir, "moved.pcap");
	assert_int_equal(rename(mv_src, mv_dst), 0);
	assert_true(wait_for(c, cp_dst));
	assert_true(wait_for(c, mv_dst));
	run_for(c, QUIET_MS);
	assert_int_equal(count(c, cp_dst), 1);
	assert_int_equal(find(c, cp_dst)->size, 300000);
	assert_int_equal(count(c, mv_dst), 1);
	assert_int_equal(c->n, 2);
}

static void test_nested_new_folders(void **state)
{
	struct ctx *c = *state;
	assert_true(add(c, c->dir, WATCH_MODE_INOTIFY, 100, 0, NULL, NULL) >= 0);
	run_for(c, 50);
	/* Built outside, moved in whole: the files are there before any watch. */
	char p[PATH_MAX], q[PATH_MAX], f1[PATH_MAX], f2[PATH_MAX], f3[PATH_MAX];
	pathf(p, c->other, "lab1");
	assert_int_equal(mkdir(p, 0755), 0);
	pathf(q, c->other, "lab1/bgp");
	assert_int_equal(mkdir(q, 0755), 0);
	pathf(f1, c->other, "lab1/bgp/f1.pcap");
	write_file(f1, 10);
	pathf(q, c->dir, "lab1");
	assert_int_equal(rename(p, q), 0);
	/* mkdir -p a/b && write a/b/f, racing with the watcher. */
	pathf(p, c->dir, "a");
	assert_int_equal(mkdir(p, 0755), 0);
	pathf(p, c->dir, "a/b");
	assert_int_equal(mkdir(p, 0755), 0);
	pathf(f2, c->dir, "a/b/f2.pcap");
	write_file(f2, 20);
	pathf(f1, c->dir, "lab1/bgp/f1.pcap");
	assert_true(wait_for(c, f1));
	assert_true(wait_for(c, f2));
	assert_string_equal(find(c, f1)->rel, "lab1/bgp");
	assert_string_equal(find(c, f2)->rel, "a/b");
	/* The new folders are watched now. */
	pathf(f3, c->dir, "lab1/bgp/f3.pcap");
	write_file(f3, 30);
	assert_true(wait_for(c, f3));
	run_for(c, QUIET_MS);
	assert_int_equal(count(c, f1), 1);
	assert_int_equal(count(c, f2), 1);
	assert_int_equal(count(c, f3), 1);
	assert_int_equal(c->n, 3);
}

static void test_part_then_rename(void **state)
{
	struct ctx *c = *state;
	static const char *const ignore[] = {"*.txt", NULL};
	assert_true(add(c, c->dir, WATCH_MODE_INOTIFY, 100, 0, ignore, NULL) >= 0);
	run_for(c, 50);
	char part[PATH_MAX], final[PATH_MAX], txt[PATH_MAX], dot[PATH_MAX];
	pathf(part, c->dir, "x.part");
	pathf(final, c->dir, "x.pcap");
	pathf(txt, c->dir, "notes.txt");
	pathf(dot, c->dir, ".x.pcap.XXXX");
	write_file(part, 5000);
	write_file(txt, 10);
	write_file(dot, 10);
	run_for(c, 300);
	assert_int_equal(c->n, 0);
	assert_int_equal(rename(part, final), 0);
	assert_true(wait_for(c, final));
	run_for(c, QUIET_MS);
	assert_int_equal(count(c, final), 1);
	assert_int_equal(c->n, 1);
}

static void test_startup_scan(void **state)
{
	struct ctx *c = *state;
	char old[PATH_MAX], young[PATH_MAX], sub[PATH_MAX], failed[PATH_MAX], done[PATH_MAX];
	pathf(sub, c->dir, "s1");
	assert_int_equal(mkdir(sub, 0755), 0);
	pathf(old, c->dir, "s1/old.pcap");
	write_file(old, 10);
	struct timespec times[2] = {{.tv_sec = time(NULL) - 3600}, {.tv_sec = time(NULL) - 3600}};
	assert_int_equal(utimensat(AT_FDCWD, old, times, 0), 0);
	pathf(young, c->dir, "young.pcap");
	write_file(young, 10);
	pathf(failed, c->dir, ".failed");
	assert_int_equal(mkdir(failed, 0755), 0);
	pathf(failed, c->dir, ".failed/bad.pcap");
	write_file(failed, 10);
	pathf(done, c->dir, "done");
	assert_int_equal(mkdir(done, 0755), 0);
	pathf(done, c->dir, "done/imported.pcap");
	write_file(done, 10);
	static const char *const exclude[] = {"done", NULL};
	uint64_t t0 = mono_ms();
	assert_true(add(c, c->dir, WATCH_MODE_INOTIFY, 300, 0, NULL, exclude) >= 0);
	assert_true(wait_for(c, old));
	assert_true(wait_for(c, young));
	/* A young file found by a scan waits to settle; an old one does not. */
	assert_true(find(c, young)->at - t0 >= 300);
	run_for(c, QUIET_MS);
	assert_int_equal(count(c, old), 1);
	assert_int_equal(count(c, young), 1);
	assert_int_equal(c->n, 2);
	assert_string_equal(find(c, old)->rel, "s1");
	/* Files in the excluded done folder stay unseen when written later too. */
	pathf(done, c->dir, "done/later.pcap");
	write_file(done, 10);
	run_for(c, 300);
	assert_int_equal(c->n, 2);
}

static void test_poll_settle(void **state)
{
	struct ctx *c = *state;
	assert_true(add(c, c->dir, WATCH_MODE_POLL, 100, 50, NULL, NULL) >= 0);
	assert_non_null(strstr(c->log, "polling every 50ms"));
	char p[PATH_MAX], q[PATH_MAX], part[PATH_MAX], sub[PATH_MAX];
	pathf(sub, c->dir, "deep");
	assert_int_equal(mkdir(sub, 0755), 0);
	pathf(p, c->dir, "deep/p.pcap");
	pathf(part, c->dir, "deep/p2.part");
	uint64_t t0 = mono_ms();
	write_file(p, 1000);
	write_file(part, 1000);
	assert_true(wait_for(c, p));
	assert_true(find(c, p)->at - t0 >= 100);
	assert_string_equal(find(c, p)->rel, "deep");
	run_for(c, QUIET_MS);
	assert_int_equal(count(c, p), 1);
	assert_int_equal(c->n, 1);
	/* An explicit rescan reports what is present again. */
	watch_rescan(c->w);
	uint64_t end = mono_ms() + DEADLINE_MS;
	while (count(c, p) < 2 && mono_ms() < end)
		assert_true(watch_run_once(c->w, 50) >= 0);
	assert_int_equal(count(c, p), 2);
	/* Rewritten: a new appearance. */
	write_file(p, 2000);
	end = mono_ms() + DEADLINE_MS;
	while (count(c, p) < 3 && mono_ms() < end)
		assert_true(watch_run_once(c->w, 50) >= 0);
	assert_int_equal(count(c, p), 3);
	assert_int_equal(c->v[c->n - 1].size, 2000);
	/* Removed and renamed: forgotten, and the new name is reported. */
	pathf(q, c->dir, "deep/q.pcap");
	assert_int_equal(rename(p, q), 0);
	assert_true(wait_for(c, q));
	run_for(c, QUIET_MS);
	assert_int_equal(count(c, p), 3);
	assert_int_equal(count(c, q), 1);
}

static bool set_max_queued(const char *value, char *old, size_t size)
{
	FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "r+");
	if (!f)
		return false;
	bool ok = !old || fgets(old, (int)size, f);
	rewind(f);
	ok = ok && fputs(value, f) >= 0;
	return fclose(f) == 0 && ok;
}

static void test_overflow(void **state)
{
	struct ctx *c = *state;
	enum { N = 2000 };
	char old[64];
	/* The limit is taken when the inotify instance is made (first folder). */
	if (!set_max_queued("16", old, sizeof(old))) {
		print_message("skipped: cannot write /proc/sys/fs/inotify/max_queued_events\n");
		skip();
	}
	int id = add(c, c->dir, WATCH_MODE_INOTIFY, 200, 0, NULL, NULL);
	set_max_queued(old, NULL, 0);
	assert_true(id >= 0);
	run_for(c, 50);
	char p[PATH_MAX];
	for (int i = 0; i < N; i++) {
		pathf(p, c->dir, "f%04d.pcap", i);
		write_file(p, 64);
	}
	uint64_t end = mono_ms() + DEADLINE_MS;
	while (c->n < N && mono_ms() < end)
		assert_true(watch_run_once(c->w, 50) >= 0);
	run_for(c, QUIET_MS);
	assert_non_null(strstr(c->log, "overflow"));
	static unsigned char hits[N];
	memset(hits, 0, sizeof(hits));
	for (size_t i = 0; i < c->n; i++) {
		int k = -1;
		assert_int_equal(sscanf(strrchr(c->v[i].path, '/'), "/f%d.pcap", &k), 1);
		assert_true(k >= 0 && k < N);
		hits[k]++;
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(hits[i], 1);
	assert_int_equal(c->n, N);
}

/* 10,000 files in one go, the loop not running meanwhile: whether the
 * queue overflows or not, each is reported once. */
static void test_burst(void **state)
{
	struct ctx *c = *state;
	enum { N = 10000 };
	assert_true(add(c, c->dir, WATCH_MODE_AUTO, 200, 0, NULL, NULL) >= 0);
	run_for(c, 50);
	char p[PATH_MAX];
	for (int i = 0; i < N; i++) {
		pathf(p, c->dir, "b%05d.pcap", i);
		write_file(p, 16);
	}
	uint64_t end = mono_ms() + 3 * DEADLINE_MS;
	while (c->n < N && mono_ms() < end)
		assert_true(watch_run_once(c->w, 50) >= 0);
	run_for(c, QUIET_MS);
	static unsigned char hits[N];
	memset(hits, 0, sizeof(hits));
	for (size_t i = 0; i < c->n; i++) {
		int k = -1;
		assert_int_equal(sscanf(strrchr(c->v[i].path, '/'), "/b%d.pcap", &k), 1);
		assert_true(k >= 0 && k < N);
		hits[k]++;
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(hits[i], 1);
	assert_int_equal(c->n, N);
}

static void test_folder_removed(void **state)
{
	struct ctx *c = *state;
	char sub[PATH_MAX], p[PATH_MAX], cmd[PATH_MAX + 16];
	pathf(sub, c->dir, "x/y");
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", sub);
	assert_int_equal(system(cmd), 0);
	assert_true(add(c, c->dir, WATCH_MODE_INOTIFY, 100, 0, NULL, NULL) >= 0);
	run_for(c, 100);
	rm_rf(c->dir);
	run_for(c, 300);
	assert_non_null(strstr(c->log, "deleted or moved away"));
	/* It comes back: watched again. */
	assert_int_equal(mkdir(c->dir, 0755), 0);
	pathf(p, c->dir, "back.pcap");
	write_file(p, 10);
	assert_true(wait_for(c, p));
	/* A watched subfolder moved out: no longer reported, no crash. */
	pathf(sub, c->dir, "m");
	assert_int_equal(mkdir(sub, 0755), 0);
	run_for(c, 100);
	char out[PATH_MAX];
	pathf(out, c->other, "m");
	assert_int_equal(rename(sub, out), 0);
	run_for(c, 100);
	pathf(p, c->other, "m/outside.pcap");
	write_file(p, 10);
	run_for(c, 300);
	assert_int_equal(count(c, p), 0);
}

static void test_subfolder_renamed(void **state)
{
	struct ctx *c = *state;
	char a[PATH_MAX], b[PATH_MAX], p[PATH_MAX];
	pathf(a, c->dir, "a");
	assert_int_equal(mkdir(a, 0755), 0);
	pathf(a, c->dir, "a/inner");
	assert_int_equal(mkdir(a, 0755), 0);
	assert_true(add(c, c->dir, WATCH_MODE_INOTIFY, 100, 0, NULL, NULL) >= 0);
	run_for(c, 100);
	pathf(a, c->dir, "a");
	pathf(b, c->dir, "b");
	assert_int_equal(rename(a, b), 0);
	run_for(c, 100);
	pathf(p, c->dir, "b/inner/f.pcap");
	write_file(p, 10);
	assert_true(wait_for(c, p));
	assert_string_equal(find(c, p)->rel, "b/inner");
}

static void test_add_remove_runtime(void **state)
{
	struct ctx *c = *state;
	char d2[PATH_MAX], p[PATH_MAX], q[PATH_MAX];
	pathf(d2, c->other, "second");
	assert_int_equal(mkdir(d2, 0755), 0);
	int id1 = add(c, c->dir, WATCH_MODE_INOTIFY, 100, 0, NULL, NULL);
	int id2 = add(c, d2, WATCH_MODE_INOTIFY, 100, 0, NULL, NULL);
	assert_true(id1 >= 0 && id2 >= 0 && id1 != id2);
	run_for(c, 50);
	pathf(p, c->dir, "one.pcap");
	write_file(p, 10);
	assert_int_equal(watch_remove_folder(c->w, id2), 0);
	assert_int_equal(watch_remove_folder(c->w, id2), -ENOENT);
	pathf(q, d2, "two.pcap");
	write_file(q, 10);
	assert_true(wait_for(c, p));
	assert_int_equal(find(c, p)->folder, id1);
	run_for(c, 300);
	assert_int_equal(count(c, q), 0);
	/* Added back (like a SIGHUP reload): its existing file is found. */
	int id3 = add(c, d2, WATCH_MODE_AUTO, 100, 0, NULL, NULL);
	assert_true(id3 >= 0);
	assert_true(wait_for(c, q));
	assert_int_equal(find(c, q)->folder, id3);
}

/* The watch's inotify read shares the ring with a synchronous read that
 * may take the inotify completion: the event must still arrive. */
static void test_shared_ring(void **state)
{
	struct ctx *c = *state;
	struct ring *r = NULL;
	assert_int_equal(ring_new(&r, 8), 0);
	struct watch_callbacks cb = {.on_ready = on_ready, .on_log = on_log};
	struct watch *w = NULL;
	assert_int_equal(watch_new(&w, r, &cb, c), 0);
	struct watch *own = c->w;
	c->w = w;
	assert_true(add(c, c->dir, WATCH_MODE_INOTIFY, 100, 0, NULL, NULL) >= 0);
	run_for(c, 50);
	char p[PATH_MAX], buf[64];
	pathf(p, c->dir, "shared.pcap");
	write_file(p, 64);
	int fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(ring_pread(r, fd, buf, sizeof(buf), 0), 64);
		usleep(5000);
	}
	close(fd);
	assert_true(wait_for(c, p));
	assert_int_equal(count(c, p), 1);
	c->w = own;
	assert_null(watch_free(w));
	assert_null(ring_free(r));
}

static void *wake_later(void *arg)
{
	usleep(100 * 1000);
	watch_wakeup(arg);
	return NULL;
}

static void test_wakeup(void **state)
{
	struct ctx *c = *state;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, wake_later, c->w), 0);
	uint64_t t0 = mono_ms();
	assert_int_equal(watch_run_once(c->w, 60000), 0);
	assert_true(mono_ms() - t0 < 30000);
	pthread_join(t, NULL);
}

int main(void)
{
	/* No io_uring (old kernel, seccomp): nothing to test here. */
	struct watch *w = NULL;
	struct watch_callbacks cb = {.on_ready = on_ready};
	int err = watch_new(&w, NULL, &cb, NULL);
	if (err == -ENOSYS || err == -EPERM) {
		fprintf(stderr, "skipped: io_uring unavailable: %s\n", strerror(-err));
		return 77;
	}
	watch_free(w);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fstype_table),
		cmocka_unit_test(test_partial_names),
		cmocka_unit_test_setup_teardown(test_add_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cp_and_mv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_then_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_new_folders, setup, teardown),
		cmocka_unit_test_setup_teardown(test_part_then_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_startup_scan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_settle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_folder_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subfolder_renamed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_remove_runtime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wakeup, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
