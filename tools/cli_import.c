/*
 * cli_import.c - `capvault import`: files, folder trees, lists of paths
 * and tar streams (files, standard input, tape devices), several sources
 * at once (--jobs), resumable (--journal), with progress and a summary.
 *
 * The sources are listed first, in a deterministic order (arguments as
 * given, folders walked in sorted order), then worker threads, each with
 * its own ring, take them in that order; their per-source lines are
 * printed in that same order whatever finishes first. A file that fails
 * is left untouched; with --move a file is removed only after its capture
 * is durably stored (object fsynced and catalog batch synced). A tar
 * member is streamed into the import pass; nothing is unpacked to disk.
 *
 * With capvaultd running, each file and tar member is streamed to it
 * instead (POST /v1/captures), one at a time so capture ids follow the
 * same order, and the same lines are printed from its replies.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "cleanup.h"
#include "cli.h"
#include "cli_remote.h"
#include "import.h"
#include "import_journal.h"
#include "lineread.h"
#include "monoclock.h"
#include "store.h"
#include "tarsource.h"
#include "textesc.h"
#include "vault.h"

#define MAX_TAGS 64
#define SUMMARY_NAMES 100

struct import_opts {
	const char *store, *journal, *from_list;
	char **tags;
	size_t ntags;
	bool move, follow, tags_from_path, dry_run, quiet, json;
	unsigned jobs;
	size_t block_size;
};

/* One source: a file found by the walk, or a tar stream named by --tar. */
struct item {
	char *path;
	char *rel_dir;  /* folder between the argument and the file, for --tags-from-path */
	uint64_t size;  /* 0 for a stream */
	bool tar;
	bool done;
	char *out;      /* lines waiting for the items before this one */
	size_t outlen;
};

struct note {
	char *source, *why;
};

/* At most NOTES_MAX sources per list are kept (each is also printed on
 * its own line as it goes): a tape of a million log files would otherwise
 * hold a million names. The rest are only counted. */
#define NOTES_MAX 10000
struct notes {
	struct note *v;
	size_t n, alloc;
	size_t more; /* noted past NOTES_MAX */
};

struct import_run {
	const struct import_opts *o;
	struct vault *vault;
	struct cli_remote *remote;    /* the daemon, when it runs: no vault then */
	struct journal *journal;
	struct item *items;
	size_t nitems, alloc;
	pthread_mutex_t lock;
	pthread_cond_t wake;          /* the progress thread's timer */
	pthread_cond_t turn;          /* next_print moved: an item may commit */
	size_t next_item, next_print;
	unsigned long imported, duplicates, skipped, failed, journaled, sources_done;
	uint64_t packets, bytes;
	uint64_t src_done, src_total; /* bytes read from the sources; total when known */
	bool total_known, has_tar, stop, progress_shown, tty;
	int fatal;                    /* a worker could not start */
	bool have_store;              /* --move: the store folder, never removed from */
	dev_t store_dev;
	ino_t store_ino;
	uint64_t t0_ns;               /* mono_ns() at the start */
	struct notes failures, skips;
};

/* ---- output, in item order ---- */

static void out_write(struct import_run *run, const char *buf, size_t len)
{
	if (run->progress_shown) {
		fputs("\r\033[K", stderr);
		run->progress_shown = false;
	}
	fwrite(buf, 1, len, stdout);
}

/* Prints a per-source line now when every earlier item is done, else
 * keeps it with the item. Call with the lock held. */
__attribute__((format(printf, 3, 4))) static void item_line(struct import_run *run, size_t i,
							    const char *fmt, ...)
{
	if (run->o->quiet || run->o->json)
		return;
	char *line = NULL;
	va_list ap;
	va_start(ap, fmt);
	int len = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	/* Names are bytes (a tar member "x\ny\e[31m"): shown escaped
	 * (textesc.h), as ls shows them, so one source is one line and no
	 * name reaches the terminal as control characters. */
	bool newline = len > 0 && line[len - 1] == '\n';
	if (newline)
		line[len - 1] = '\0';
	char *shown = text_escape_dup(line, TEXT_ESC_CONTROLS);
	free(line);
	if (!shown || asprintf(&line, "%s%s", shown, newline ? "\n" : "") < 0) {
		free(shown);
		return;
	}
	free(shown);
	len = (int)strlen(line);
	struct item *it = &run->items[i];
	if (i == run->next_print) {
		out_write(run, line, (size_t)len);
	} else {
		char *grown = realloc(it->out, it->outlen + (size_t)len);
		if (grown) {
			memcpy(grown + it->outlen, line, (size_t)len);
			it->out = grown;
			it->outlen += (size_t)len;
		}
	}
	free(line);
}

static void item_flush(struct import_run *run, struct item *it)
{
	if (it->outlen)
		out_write(run, it->out, it->outlen);
	free(it->out);
	it->out = NULL;
	it->outlen = 0;
}

static void item_finished(struct import_run *run, size_t i)
{
	pthread_mutex_lock(&run->lock);
	run->items[i].done = true;
	while (run->next_print < run->nitems && run->items[run->next_print].done)
		item_flush(run, &run->items[run->next_print++]);
	if (run->next_print < run->nitems)
		item_flush(run, &run->items[run->next_print]);
	fflush(stdout);
	pthread_cond_broadcast(&run->turn);
	pthread_mutex_unlock(&run->lock);
}

/*
 * Captures are committed in item order, so capture ids follow the sorted
 * order whatever --jobs is: a worker reads, hashes, stores and indexes
 * its source in parallel with the others, then waits here until every
 * earlier item is done before its (short) commit. Every earlier item is
 * held by a running worker, so the wait always ends.
 */
static void wait_turn(struct import_run *run, size_t i)
{
	pthread_mutex_lock(&run->lock);
	while (run->next_print < i)
		pthread_cond_wait(&run->turn, &run->lock);
	pthread_mutex_unlock(&run->lock);
}

static void note_add(struct notes *ns, const char *source, const char *why)
{
	if (ns->n == NOTES_MAX) {
		ns->more++;
		return;
	}
	if (ns->n == ns->alloc) {
		size_t alloc = ns->alloc ? 2 * ns->alloc : 16;
		struct note *grown = realloc(ns->v, alloc * sizeof(*grown));
		if (!grown)
			return;
		ns->v = grown;
		ns->alloc = alloc;
	}
	struct note *n = &ns->v[ns->n];
	n->source = strdup(source);
	n->why = why ? strdup(why) : NULL;
	if (n->source)
		ns->n++;
	else
		free(n->why);
}

static void notes_free(struct notes *ns)
{
	for (size_t i = 0; i < ns->n; i++) {
		free(ns->v[i].source);
		free(ns->v[i].why);
	}
	free(ns->v);
}

/* ---- outcomes of one source ---- */

/* eb messages start with the path; the summary lists source and reason apart. */
static const char *reason_of(const char *source, const char *msg)
{
	size_t n = strlen(source);
	return strncmp(msg, source, n) == 0 && strncmp(msg + n, ": ", 2) == 0 ? msg + n + 2 : msg;
}

static void report_failed(struct import_run *run, size_t i, const char *source, int err,
			  const char *msg)
{
	const char *why = msg && msg[0] ? reason_of(source, msg) : strerror(-err);
	pthread_mutex_lock(&run->lock);
	run->failed++;
	run->sources_done++;
	note_add(&run->failures, source, why);
	item_line(run, i, "FAILED     %s: %s\n", source, why);
	pthread_mutex_unlock(&run->lock);
}

/* why: what the source is, "not a capture" when NULL. */
static void report_skipped(struct import_run *run, size_t i, const char *source,
			   const char *why)
{
	pthread_mutex_lock(&run->lock);
	run->skipped++;
	run->sources_done++;
	note_add(&run->skips, source, why);
	item_line(run, i, "skipped    %s (%s)\n", source, why ? why : "not a capture");
	pthread_mutex_unlock(&run->lock);
}

static void report_journaled(struct import_run *run, uint64_t size, bool count_bytes)
{
	pthread_mutex_lock(&run->lock);
	run->journaled++;
	run->sources_done++;
	if (count_bytes)
		run->src_done += size;
	pthread_mutex_unlock(&run->lock);
}

static void report_dry(struct import_run *run, size_t i, const char *source, uint64_t size)
{
	pthread_mutex_lock(&run->lock);
	run->imported++;
	run->bytes += size;
	run->sources_done++;
	item_line(run, i, "would import  %12" PRIu64 "  %s\n", size, source);
	pthread_mutex_unlock(&run->lock);
}

static void report_done(struct import_run *run, size_t i, const char *source,
			const struct import_result *res, const struct import_info *info)
{
	char hex[65];
	sha256_hex(res->sha256, hex);
	hex[12] = '\0';
	pthread_mutex_lock(&run->lock);
	run->sources_done++;
	if (res->duplicate) {
		run->duplicates++;
		item_line(run, i, "duplicate  %-8" PRIu64 " %s  %s (already stored)\n", res->capture_id,
			  hex, source);
	} else {
		run->imported++;
		run->packets += info->summary.packets;
		run->bytes += info->capture_bytes;
		item_line(run, i, "imported   %-8" PRIu64 " %s  %" PRIu64 " packets  %s%s%s\n",
			  res->capture_id, hex, info->summary.packets, source,
			  res->linked ? " (linked)" : "", info->summary.truncated ? " (truncated)" : "");
	}
	pthread_mutex_unlock(&run->lock);
}

static void add_src_bytes(struct import_run *run, uint64_t n)
{
	pthread_mutex_lock(&run->lock);
	run->src_done += n;
	pthread_mutex_unlock(&run->lock);
}

/* Records a finished source in the journal; a journal that cannot be
 * written is a failure of the run, not of the capture (it is stored). */
static void journal_record(struct import_run *run, const char *key, uint64_t size,
			   const struct import_result *res)
{
	struct errbuf eb = { { 0 } };
	if (run->journal && journal_append(run->journal, key, size, res->sha256, res->capture_id, &eb) < 0) {
		pthread_mutex_lock(&run->lock);
		run->failed++;
		note_add(&run->failures, key, eb.msg);
		pthread_mutex_unlock(&run->lock);
		fprintf(stderr, "capvault: %s\n", eb.msg);
	}
}

/* ---- tags ---- */

/* --tags, then (with --tags-from-path) each folder name of dir and of the
 * member's own path. Names that are not valid tags are skipped. */
static size_t build_tags(const struct import_run *run, const char *dir, const char *member,
			 char *buf, size_t size, const char **tags)
{
	size_t n = 0;
	for (size_t i = 0; i < run->o->ntags && n < MAX_TAGS; i++)
		tags[n++] = run->o->tags[i];
	if (!run->o->tags_from_path)
		return n;
	const char *slash = member ? strrchr(member, '/') : NULL;
	int len = snprintf(buf, size, "%s/%.*s", dir ? dir : "", slash ? (int)(slash - member) : 0,
			   member ? member : "");
	if (len < 0 || (size_t)len >= size)
		return n;
	char *save = NULL;
	for (char *t = strtok_r(buf, "/", &save); t && n < MAX_TAGS; t = strtok_r(NULL, "/", &save)) {
		if (strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
			continue;
		if (catalog_tag_valid(t)) {
			tags[n++] = t;
		} else {
			_cleanup_free_ char *shown = text_escape_dup(t, TEXT_ESC_CONTROLS);
			fprintf(stderr, "capvault: folder '%s' is not a valid tag, not added\n",
				shown ? shown : "?");
		}
	}
	return n;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash && slash[1] ? slash + 1 : path;
}

/* ---- tar streams ---- */

struct tar_ctx {
	struct import_run *run;
	struct ring *ring;
	struct tarsource *ts;
	size_t item;
	uint64_t read_seen; /* tarsource_bytes_read already added to src_done */
};

static void tar_progress(struct tar_ctx *tc)
{
	uint64_t now = tarsource_bytes_read(tc->ts);
	add_src_bytes(tc->run, now - tc->read_seen);
	tc->read_seen = now;
}

/* A tar member's bytes as an upload body: its head, then the rest. */
struct tar_body {
	struct tar_ctx *tc;
	const char *buf;
	size_t len;
	bool end;
	struct errbuf *eb;
};

static ssize_t tar_body_read(void *opaque, void *out, size_t max)
{
	struct tar_body *tb = opaque;
	while (tb->len == 0 && !tb->end) {
		const void *buf;
		int r = tarsource_data(tb->tc->ts, &buf, &tb->len, tb->eb);
		if (r < 0)
			return r;
		tb->buf = buf;
		tb->end = r == 0;
		if (r == 0)
			tb->len = 0;
		tar_progress(tb->tc);
	}
	size_t n = tb->len < max ? tb->len : max;
	if (n)
		memcpy(out, tb->buf, n);
	tb->buf += n;
	tb->len -= n;
	return (ssize_t)n;
}

/* Streams the current member, its first bytes already read, into a pass
 * (or to the daemon). */
static int tar_feed_member(struct tar_ctx *tc, const void *head, size_t hlen,
			   const struct import_source *src, struct import_result *res,
			   struct import_info *info, struct errbuf *eb)
{
	if (tc->run->remote) {
		struct tar_body tb = { .tc = tc, .buf = head, .len = hlen, .eb = eb };
		wait_turn(tc->run, tc->item);
		int64_t length = src->stream_bytes ? (int64_t)src->stream_bytes : -1;
		return cli_remote_upload(tc->run->remote, src->name, src->tags, src->ntags, NULL,
					 tar_body_read, &tb, length, res, info, eb);
	}
	struct import_pass *pass = NULL;
	int err = import_pass_new(&pass, &vault_sink_ops, tc->run->vault, src, eb);
	if (err)
		return err;
	err = import_pass_feed(pass, head, hlen, eb);
	const void *buf;
	size_t len;
	int r = 0;
	while (!err && (r = tarsource_data(tc->ts, &buf, &len, eb)) == 1) {
		err = import_pass_feed(pass, buf, len, eb);
		tar_progress(tc);
	}
	if (!err && r < 0)
		err = r;
	if (!err) {
		wait_turn(tc->run, tc->item);
		err = import_pass_finish(pass, res, info, eb);
	}
	import_pass_free(pass);
	return err;
}

static void tar_member(struct tar_ctx *tc, const struct item *it, const struct tar_member *m)
{
	struct import_run *run = tc->run;
	_cleanup_free_ char *key = NULL;
	if (asprintf(&key, "%s!%s", it->path, m->name) < 0)
		return;
	if (m->not_file) {
		report_skipped(run, tc->item, key, m->not_file);
		return;
	}
	if (journal_done(run->journal, key, m->size)) {
		report_journaled(run, m->size, false);
		return;
	}
	const void *head;
	size_t hlen;
	struct errbuf eb = { { 0 } };
	int r = tarsource_head(tc->ts, &head, &hlen, &eb);
	tar_progress(tc);
	if (r < 0) {
		report_failed(run, tc->item, key, r, eb.msg);
		return;
	}
	if (r == 0) {
		report_skipped(run, tc->item, key, NULL);
		return;
	}
	if (run->o->dry_run) {
		report_dry(run, tc->item, key, m->size);
		return;
	}
	char tagbuf[PATH_MAX * 2];
	const char *tags[MAX_TAGS];
	struct import_source src = {
		.name = base_name(m->name),
		.tags = tags,
		.ntags = build_tags(run, it->rel_dir, m->name, tagbuf, sizeof(tagbuf), tags),
		.ring = tc->ring,
		/* The header's size: a tar member's data is exactly that long
		 * (sparse members are refused), so it is measured before its
		 * first byte, as a file or an upload of known length is. */
		.stream_bytes = m->size,
	};
	struct import_result res;
	struct import_info info;
	int err = tar_feed_member(tc, head, hlen, &src, &res, &info, &eb);
	if (err) {
		report_failed(run, tc->item, key, err, eb.msg);
		return;
	}
	report_done(run, tc->item, key, &res, &info);
	journal_record(run, key, m->size, &res);
}

/* Reads one archive to its end; a member that fails fails alone, an
 * archive that becomes unreadable fails from there on. */
static void import_tar(struct import_run *run, struct ring *ring, size_t i)
{
	const struct item *it = &run->items[i];
	struct errbuf eb = { { 0 } };
	struct tar_ctx tc = { .run = run, .ring = ring, .item = i };
	int err = tarsource_open(&tc.ts, it->path, run->o->block_size, &eb);
	if (err) {
		report_failed(run, i, it->path, err, eb.msg);
		return;
	}
	struct tar_member m;
	int r;
	while ((r = tarsource_next(tc.ts, &m, &eb)) == 1) {
		tar_progress(&tc);
		tar_member(&tc, it, &m);
	}
	tar_progress(&tc);
	/* Not said twice when a member just failed on the same broken stream. */
	if (r < 0 && !tarsource_data_broken(tc.ts))
		report_failed(run, i, it->path, r, eb.msg);
	tarsource_free(tc.ts);
}

/* ---- files ---- */

enum file_kind { FILE_CAPTURE, FILE_TAR, FILE_OTHER };

/* A capture by its magic; else a tar archive by libarchive's detection;
 * else "other" (a compressed capture, or not a capture at all: the
 * import pass or, for --dry-run, a decompressing sniff says which). */
static enum file_kind file_kind(const char *path, bool sniff_compressed)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return FILE_OTHER;
	uint8_t head[16];
	ssize_t n = read(fd, head, sizeof(head));
	if (n >= 4 && capfile_sniff(head, (size_t)n) != CAPFILE_FORMAT_UNKNOWN)
		return FILE_CAPTURE;
	if (tarsource_probe(path) == 1)
		return FILE_TAR;
	if (!sniff_compressed || n < 4)
		return FILE_OTHER;
	_cleanup_free_ uint8_t *buf = malloc(64 * 1024);
	ssize_t got = buf ? pread(fd, buf, 64 * 1024, 0) : -1;
	if (got > 0 && tarsource_sniff(buf, (size_t)got, got < 64 * 1024) == 1)
		return FILE_CAPTURE;
	return FILE_OTHER;
}

struct file_feed {
	struct import_pass *pass;
	struct errbuf *eb;
};

static int file_chunk(void *opaque, const void *buf, size_t len)
{
	struct file_feed *ff = opaque;
	return import_pass_feed(ff->pass, buf, len, ff->eb);
}

static ssize_t fd_body_read(void *opaque, void *out, size_t max)
{
	int fd = *(int *)opaque;
	ssize_t n;
	do
		n = read(fd, out, max);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* The file streamed to the daemon, its length announced. */
static int upload_file(struct import_run *run, size_t i, int fd, const struct import_source *src,
		       struct import_result *res, struct import_info *info, struct errbuf *eb)
{
	struct stat st;
	char abspath[PATH_MAX];
	if (fstat(fd, &st) < 0)
		return errbuf_set(eb, -errno, "%s", strerror(errno));
	wait_turn(run, i);
	return cli_remote_upload(run->remote, src->name, src->tags, src->ntags,
				 realpath(src->path, abspath) ? abspath : src->path, fd_body_read,
				 &fd, (int64_t)st.st_size, res, info, eb);
}

/* import_file, with the commit waiting for the item's turn. */
static int import_file_in_turn(struct import_run *run, struct ring *ring, size_t i, int fd,
			       const struct import_source *src, struct import_result *res,
			       struct import_info *info, struct errbuf *eb)
{
	if (run->remote)
		return upload_file(run, i, fd, src, res, info, eb);
	struct file_feed ff = { .eb = eb };
	int err = import_pass_new(&ff.pass, &vault_sink_ops, run->vault, src, eb);
	if (err)
		return err;
	err = ring_read_stream(ring, fd, RING_CHUNK, RING_DEPTH, file_chunk, &ff);
	if (err && eb->msg[0] == '\0')
		errbuf_set(eb, err, "read: %s", strerror(-err));
	if (!err) {
		wait_turn(run, i);
		err = import_pass_finish(ff.pass, res, info, eb);
	}
	import_pass_free(ff.pass);
	return err;
}

static void remove_name(const char *shown, const char *path, const struct stat *st);

/* Whether path (symlinks resolved) lies inside the store's folder: its
 * objects are imported as duplicates of themselves. */
static bool inside_store(const struct import_run *run, const char *path)
{
	char real[PATH_MAX];
	if (!run->have_store || !realpath(path, real))
		return false;
	for (char *slash; (slash = strrchr(real, '/'));) {
		slash[slash == real ? 1 : 0] = '\0';
		struct stat st;
		if (stat(real, &st) == 0 && st.st_dev == run->store_dev && st.st_ino == run->store_ino)
			return true;
		if (slash == real)
			break;
	}
	return false;
}

/* --move: removes path only while it still names the file imported (st).
 * A file renamed over the name meanwhile (a writer's next capture) is
 * another capture, not imported: it stays. A file inside the store (one
 * of its objects, found a duplicate of itself) is never removed: that
 * would remove the capture's only copy. */
static void remove_imported(const struct import_run *run, const char *path, int fd,
			    const struct stat *st)
{
	struct stat now;
	_cleanup_free_ char *shown = text_escape_dup(path, TEXT_ESC_CONTROLS);
	if (!shown)
		return;
	if (inside_store(run, path)) {
		fprintf(stderr, "capvault: %s: inside the store; not removed\n", shown);
		return;
	}
	/* A file some program still writes (tcpdump's current file of a
	 * rotation) was imported as far as it was written: removing it would
	 * lose the rest. A read lease is granted only while nobody has the
	 * file open for writing, and held until the name is removed; where
	 * leases are not available, a file that changed since it was read
	 * stays too. */
	bool leased = fcntl(fd, F_SETSIG, SIGURG) == 0 && fcntl(fd, F_SETLEASE, F_RDLCK) == 0;
	if (!leased && errno == EAGAIN) {
		fprintf(stderr, "capvault: %s: stored as it was, but it is still open for writing; "
				"not removed\n", shown);
		return;
	}
	if (fstat(fd, &now) == 0 && (now.st_size != st->st_size ||
				     now.st_mtim.tv_sec != st->st_mtim.tv_sec ||
				     now.st_mtim.tv_nsec != st->st_mtim.tv_nsec)) {
		fprintf(stderr, "capvault: %s: stored as it was, but it changed since; not removed\n",
			shown);
		if (leased)
			fcntl(fd, F_SETLEASE, F_UNLCK);
		return;
	}
	remove_name(shown, path, st);
	if (leased)
		fcntl(fd, F_SETLEASE, F_UNLCK);
}

/* Removes path while it names st's file. */
static void remove_name(const char *shown, const char *path, const struct stat *st)
{
	struct stat now;
	int err = lstat(path, &now) < 0 ? -errno : 0;
	/* A symlink named on the command line: the link goes, as before. */
	if (!err && S_ISLNK(now.st_mode) && stat(path, &now) < 0)
		err = -errno;
	if (!err && (now.st_dev != st->st_dev || now.st_ino != st->st_ino)) {
		fprintf(stderr, "capvault: %s: stored; its name holds another file by now, left alone\n",
			shown);
		return;
	}
	if (!err && unlink(path) < 0)
		err = -errno;
	if (err)
		fprintf(stderr, "capvault: %s: stored, but could not remove it: %s\n", shown,
			strerror(-err));
}

static void import_one_file(struct import_run *run, struct ring *ring, size_t i)
{
	const struct item *it = &run->items[i];
	char tagbuf[PATH_MAX * 2];
	const char *tags[MAX_TAGS];
	struct import_source src = {
		.path = it->path,
		.name = base_name(it->path),
		.tags = tags,
		.ntags = build_tags(run, it->rel_dir, NULL, tagbuf, sizeof(tagbuf), tags),
		.may_link = run->o->move,
		.ring = ring,
	};
	struct import_result res = { 0 };
	struct import_info info = { 0 };
	struct errbuf eb = { { 0 } };
	struct stat st;
	_cleanup_close_ int fd = open(src.path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int err = fd < 0 || fstat(fd, &st) < 0 ? errbuf_set(&eb, -errno, "%s", strerror(errno)) : 0;
	if (!err)
		err = import_file_in_turn(run, ring, i, fd, &src, &res, &info, &eb);
	add_src_bytes(run, it->size);
	if (err) {
		report_failed(run, i, it->path, err, eb.msg);
		return;
	}
	report_done(run, i, it->path, &res, &info);
	journal_record(run, it->path, it->size, &res);
	if (run->o->move)
		remove_imported(run, it->path, fd, &st);
}

static void import_item(struct import_run *run, struct ring *ring, size_t i)
{
	const struct item *it = &run->items[i];
	if (it->tar)
		return import_tar(run, ring, i);
	if (journal_done(run->journal, it->path, it->size))
		return report_journaled(run, it->size, true);
	enum file_kind kind = file_kind(it->path, run->o->dry_run);
	if (kind == FILE_TAR)
		return import_tar(run, ring, i);
	if (!run->o->dry_run)
		return import_one_file(run, ring, i);
	add_src_bytes(run, it->size);
	if (kind == FILE_CAPTURE)
		report_dry(run, i, it->path, it->size);
	else
		report_failed(run, i, it->path, -EINVAL, "not a capture");
}

static void *worker_main(void *opaque)
{
	struct import_run *run = opaque;
	struct ring *ring = NULL;
	if (!run->o->dry_run) {
		int err = ring_new(&ring, 16);
		if (err) {
			pthread_mutex_lock(&run->lock);
			run->fatal = err;
			pthread_mutex_unlock(&run->lock);
			return NULL;
		}
	}
	for (;;) {
		pthread_mutex_lock(&run->lock);
		size_t i = run->next_item < run->nitems ? run->next_item++ : SIZE_MAX;
		pthread_mutex_unlock(&run->lock);
		if (i == SIZE_MAX)
			break;
		import_item(run, ring, i);
		item_finished(run, i);
	}
	ring_free(ring);
	return NULL;
}

/* ---- listing the sources ---- */

static int item_add(struct import_run *run, const char *path, const char *rel_dir,
		    uint64_t size, bool tar)
{
	if (run->nitems == run->alloc) {
		size_t alloc = run->alloc ? 2 * run->alloc : 64;
		struct item *grown = realloc(run->items, alloc * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		run->items = grown;
		run->alloc = alloc;
	}
	struct item *it = &run->items[run->nitems];
	*it = (struct item){ .path = strdup(path), .rel_dir = strdup(rel_dir), .size = size, .tar = tar };
	if (!it->path || !it->rel_dir) {
		free(it->path);
		free(it->rel_dir);
		return -ENOMEM;
	}
	run->nitems++;
	run->src_total += size;
	return 0;
}

/* The folders being walked, to stop a --follow loop. */
struct walk_stack {
	dev_t dev[64];
	ino_t ino[64];
	size_t n;
};

static void walk_fail_why(struct import_run *run, const char *path, const char *why)
{
	run->failed++;
	note_add(&run->failures, path, why);
	if (!run->o->quiet && !run->o->json)
		printf("FAILED     %s: %s\n", path, why);
}

static void walk_fail(struct import_run *run, const char *path, int err)
{
	walk_fail_why(run, path, strerror(err));
}

static const char *node_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFIFO: return "a FIFO";
	case S_IFSOCK: return "a socket";
	default: return "not a file or folder";
	}
}

static int walk(struct import_run *run, const char *path, const char *rel, bool top,
		struct walk_stack *ws);

static int walk_dir(struct import_run *run, const char *dir, const char *rel,
		    const struct stat *st, struct walk_stack *ws)
{
	for (size_t i = 0; i < ws->n; i++) {
		if (ws->dev[i] == st->st_dev && ws->ino[i] == st->st_ino) {
			fprintf(stderr, "capvault: %s: symbolic link loop, not followed\n", dir);
			return 0;
		}
	}
	if (ws->n == ARRAY_SIZE(ws->dev)) {
		walk_fail(run, dir, ELOOP);
		return 0;
	}
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort), err = 0;
	if (n < 0) {
		walk_fail(run, dir, errno);
		return 0;
	}
	ws->dev[ws->n] = st->st_dev;
	ws->ino[ws->n++] = st->st_ino;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		char child[PATH_MAX], childrel[PATH_MAX];
		if (!err && strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
			int a = snprintf(child, sizeof(child), "%s/%s", dir, name);
			int b = snprintf(childrel, sizeof(childrel), "%s%s%s", rel, *rel ? "/" : "", name);
			if (a >= (int)sizeof(child) || b >= (int)sizeof(childrel))
				walk_fail(run, dir, ENAMETOOLONG);
			else
				err = walk(run, child, childrel, false, ws);
		}
		free(names[i]);
	}
	free(names);
	ws->n--;
	return err;
}

/* A path named by the user is followed if it is a symbolic link; inside
 * a tree, links are followed only with --follow (a loop, or a link out of
 * the tree, would import what the user did not name). rel is the path
 * below the argument; its folder part gives --tags-from-path. */
static int walk(struct import_run *run, const char *path, const char *rel, bool top,
		struct walk_stack *ws)
{
	struct stat st;
	int r = top || run->o->follow ? stat(path, &st) : lstat(path, &st);
	if (r < 0) {
		walk_fail(run, path, errno);
		return 0;
	}
	if (S_ISDIR(st.st_mode))
		return walk_dir(run, path, rel, &st, ws);
	if (!S_ISREG(st.st_mode)) {
		char why[96];
		snprintf(why, sizeof(why), "%s, not a capture file",
			 node_kind(st.st_mode));
		if (top)
			walk_fail_why(run, path, why);
		return 0;
	}
	char dir[PATH_MAX];
	const char *slash = strrchr(rel, '/');
	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - rel) : 0, rel);
	return item_add(run, path, dir, (uint64_t)st.st_size, false);
}

static int add_tar(struct import_run *run, const char *path)
{
	struct stat st;
	bool stream = strcmp(path, "-") == 0 || stat(path, &st) < 0 || !S_ISREG(st.st_mode);
	if (stream)
		run->total_known = false;
	run->has_tar = true;
	return item_add(run, path, "", stream ? 0 : (uint64_t)st.st_size, true);
}

/* One path a line; a line longer than a path can be is refused with its
 * number (a file without newlines is not read into memory whole). */
static int add_list(struct import_run *run, const char *list)
{
	FILE *f = strcmp(list, "-") == 0 ? stdin : fopen(list, "re");
	if (!f) {
		fprintf(stderr, "capvault: %s: %s\n", list, strerror(errno));
		return -errno;
	}
	_cleanup_free_ char *line = malloc(PATH_MAX);
	size_t n, lineno = 0;
	bool newline;
	int err = line ? 0 : -ENOMEM;
	struct walk_stack ws = { .n = 0 };
	while (!err && (err = line_read(f, line, PATH_MAX, &n, &newline)) == 1) {
		lineno++;
		err = n > 0 ? walk(run, line, "", true, &ws) : 0;
	}
	if (err == -E2BIG)
		fprintf(stderr, "capvault: %s: line %zu is over %u bytes, longer than a path\n", list,
			lineno + 1, (unsigned)PATH_MAX);
	else if (err == -EIO)
		fprintf(stderr, "capvault: %s: read error\n", list);
	if (f != stdin)
		fclose(f);
	return err;
}

/* ---- progress ---- */

static double elapsed(const struct import_run *run)
{
	return (double)(mono_ns() - run->t0_ns) / 1e9;
}

static void human_bytes(uint64_t b, char *buf, size_t size)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB" };
	double v = (double)b;
	size_t u = 0;
	while (v >= 1000 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1000;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

/* One line: sources done (of the total when known), bytes, rate, ETA,
 * failures. Call with the lock held. */
static void progress_print(struct import_run *run)
{
	double t = elapsed(run);
	double rate = t > 0 ? (double)run->src_done / t : 0;
	char done[32], files[64], eta[32] = "";
	human_bytes(run->src_done, done, sizeof(done));
	if (run->has_tar)
		snprintf(files, sizeof(files), "%lu sources", run->sources_done);
	else
		snprintf(files, sizeof(files), "%lu/%zu files", run->sources_done, run->nitems);
	if (run->total_known && rate > 0 && run->src_total >= run->src_done) {
		uint64_t s = (uint64_t)((double)(run->src_total - run->src_done) / rate);
		snprintf(eta, sizeof(eta), ", ETA %" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600,
			 s / 60 % 60, s % 60);
	}
	if (run->tty) {
		fprintf(stderr, "\r\033[K%s, %s, %.1f MB/s%s, %lu failed", files, done, rate / 1e6, eta,
			run->failed);
		run->progress_shown = true;
	} else {
		fprintf(stderr, "capvault: import: %s, %s, %.1f MB/s%s, %lu failed\n", files, done,
			rate / 1e6, eta, run->failed);
	}
	fflush(stderr);
}

static void *progress_main(void *opaque)
{
	struct import_run *run = opaque;
	uint64_t period_ms = run->tty ? 250 : 10000;
	pthread_mutex_lock(&run->lock);
	while (!run->stop) {
		struct timespec until = mono_deadline(period_ms * 1000000u);
		if (pthread_cond_timedwait(&run->wake, &run->lock, &until) == ETIMEDOUT && !run->stop)
			progress_print(run);
	}
	if (run->progress_shown)
		fputs("\r\033[K", stderr);
	run->progress_shown = false;
	pthread_mutex_unlock(&run->lock);
	return NULL;
}

/* ---- summary ---- */

static void summary_notes(const char *title, const struct notes *ns)
{
	if (!ns->n)
		return;
	printf("%s:\n", title);
	for (size_t i = 0; i < ns->n && i < SUMMARY_NAMES; i++) {
		_cleanup_free_ char *source = text_escape_dup(ns->v[i].source, TEXT_ESC_CONTROLS);
		_cleanup_free_ char *why =
			ns->v[i].why ? text_escape_dup(ns->v[i].why, TEXT_ESC_CONTROLS) : NULL;
		printf("  %s%s%s\n", source ? source : "?", why ? ": " : "", why ? why : "");
	}
	if (ns->n + ns->more > SUMMARY_NAMES)
		printf("  ... and %zu more\n", ns->n + ns->more - SUMMARY_NAMES);
}

/* with_why: objects with source and error; else the sources' names. */
static json_t *notes_json(const struct notes *ns, bool with_why)
{
	json_t *a = json_array();
	for (size_t i = 0; i < ns->n; i++)
		/* File names are bytes: shown escaped (textesc.h), never dropped. */
		json_array_append_new(a, with_why && ns->v[i].why ? json_pack("{s:o, s:o}", "source",
								  catalog_json_text(ns->v[i].source),
								  "error", catalog_json_text(ns->v[i].why))
						      : catalog_json_text(ns->v[i].source));
	return a;
}

static void summary_json(const struct import_run *run, double t)
{
	json_t *o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "dry_run",
			      run->o->dry_run, "imported", (json_int_t)run->imported, "duplicates",
			      (json_int_t)run->duplicates, "skipped", (json_int_t)run->skipped, "failed",
			      (json_int_t)run->failed, "already_in_journal", (json_int_t)run->journaled,
			      "packets", (json_int_t)run->packets, "bytes", (json_int_t)run->bytes,
			      "seconds", t);
	json_object_set_new(o, "source_bytes", json_integer((json_int_t)run->src_done));
	json_object_set_new(o, "failures", notes_json(&run->failures, true));
	json_object_set_new(o, "skipped_sources", notes_json(&run->skips, false));
	if (run->failures.more)
		json_object_set_new(o, "failures_not_listed", json_integer((json_int_t)run->failures.more));
	if (run->skips.more)
		json_object_set_new(o, "skipped_not_listed", json_integer((json_int_t)run->skips.more));
	json_dumpf(o, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(o);
}

/* The last line keeps the foundation's shape ("N imported, N duplicates,
 * N failed; N packets, N bytes") for scripts, then what is new. */
static void summary_text(const struct import_run *run)
{
	summary_notes("failed", &run->failures);
	summary_notes("skipped (not captures)", &run->skips);
	if (run->o->dry_run) {
		printf("dry run: %lu captures, %" PRIu64 " bytes would be imported; %lu skipped "
		       "(not captures), %lu failed, %lu already in the journal\n",
		       run->imported, run->bytes, run->skipped, run->failed, run->journaled);
		return;
	}
	printf("%lu imported, %lu duplicate%s, %lu failed; %" PRIu64 " packets, %" PRIu64
	       " bytes; %lu skipped (not captures)",
	       run->imported, run->duplicates, run->duplicates == 1 ? "" : "s", run->failed,
	       run->packets, run->bytes, run->skipped);
	if (run->journal)
		printf(", %lu already in the journal", run->journaled);
	putchar('\n');
}

/* ---- the command ---- */

static int run_workers(struct import_run *run)
{
	/* One upload at a time: the daemon commits in arrival order. */
	unsigned jobs = run->remote ? 1 : run->o->jobs;
	if (jobs > run->nitems)
		jobs = run->nitems ? (unsigned)run->nitems : 1;
	pthread_t progress, *threads = calloc(jobs, sizeof(*threads));
	if (!threads)
		return -ENOMEM;
	bool show = !run->o->quiet;
	if (show && pthread_create(&progress, NULL, progress_main, run) != 0)
		show = false;
	unsigned started = 0;
	for (; started < jobs; started++)
		if (pthread_create(&threads[started], NULL, worker_main, run) != 0)
			break;
	if (started == 0)
		worker_main(run);
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	pthread_mutex_lock(&run->lock);
	run->stop = true;
	pthread_cond_signal(&run->wake);
	pthread_mutex_unlock(&run->lock);
	if (show)
		pthread_join(progress, NULL);
	return run->fatal;
}

/* --move never removes a file of the store (see remove_imported): the
 * store's folder, the daemon's as its status names it, else ours. */
static void find_store(struct import_run *run)
{
	_cleanup_free_ char *daemon_store = NULL;
	const char *dir = NULL;
	if (run->remote && !cli_remote_is_url(run->remote)) {
		json_t *reply = NULL;
		if (cli_remote_json(run->remote, "GET", "/v1/status", NULL, &reply) == 200) {
			const char *p = json_string_value(
				json_object_get(json_object_get(reply, "store"), "path"));
			if (p && text_unescape(p, false, &daemon_store) < 0)
				daemon_store = NULL;
		}
		json_decref(reply);
		dir = daemon_store;
	} else if (!run->remote) {
		dir = cli_store_path(run->o->store);
	}
	struct stat st;
	if (dir && stat(dir, &st) == 0) {
		run->have_store = true;
		run->store_dev = st.st_dev;
		run->store_ino = st.st_ino;
	}
}

static int open_outputs(struct import_run *run)
{
	const struct import_opts *o = run->o;
	struct errbuf eb = { { 0 } };
	if (o->journal && journal_open(&run->journal, o->journal, o->dry_run, &eb) < 0) {
		fprintf(stderr, "capvault: %s\n", eb.msg);
		return -1;
	}
	int via = o->dry_run ? 0 : cli_remote_open(&run->remote, o->store);
	if (via < 0)
		return -1;
	if (!o->dry_run && !via && vault_open(&run->vault, cli_store_path(o->store), &eb) < 0) {
		fprintf(stderr, "capvault: %s\n", eb.msg);
		return -1;
	}
	if (o->move && !o->dry_run)
		find_store(run);
	return 0;
}

static int import_run_all(struct import_run *run, char **tars, size_t ntars, char **paths,
			  int npaths)
{
	struct walk_stack ws = { .n = 0 };
	int err = 0;
	run->total_known = true;
	run->t0_ns = mono_ns();
	run->tty = isatty(STDERR_FILENO);
	for (size_t i = 0; !err && i < ntars; i++)
		err = add_tar(run, tars[i]);
	for (int i = 0; !err && i < npaths; i++)
		err = walk(run, paths[i], "", true, &ws);
	if (!err && run->o->from_list)
		err = add_list(run, run->o->from_list);
	if (err) {
		fprintf(stderr, "capvault: listing the sources: %s\n", strerror(-err));
		return CLI_EXIT_FAILED;
	}
	if (open_outputs(run) < 0)
		return CLI_EXIT_FAILED;
	fflush(stdout);
	err = run_workers(run);
	if (err) {
		fprintf(stderr, "capvault: io_uring: %s\n", strerror(-err));
		return CLI_EXIT_FAILED;
	}
	if (run->o->json)
		summary_json(run, elapsed(run));
	else
		summary_text(run);
	return run->failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

static int split_tags(const char *list, struct import_opts *o)
{
	_cleanup_free_ char *copy = strdup(list);
	if (!copy)
		return -ENOMEM;
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!catalog_tag_valid(t)) {
			char shown[160];
			fprintf(stderr, "capvault: invalid tag '%s' (letters, digits and ._:/@+- only)\n",
				text_shown(t, shown, sizeof(shown)));
			return -EINVAL;
		}
		if (o->ntags == MAX_TAGS / 2) {
			fprintf(stderr, "capvault: more than %d tags\n", MAX_TAGS / 2);
			return -EINVAL;
		}
		char **grown = realloc(o->tags, (o->ntags + 1) * sizeof(char *));
		if (!grown)
			return -ENOMEM;
		o->tags = grown;
		if (!(o->tags[o->ntags++] = strdup(t)))
			return -ENOMEM;
	}
	return 0;
}

static int parse_count(const char *s, const char *what, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max || s[0] == '-') {
		fprintf(stderr, "capvault: %s: expected a number from 1 to %lu, got '%s'\n", what, max, s);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

enum { OPT_TAGS_FROM_PATH = 256, OPT_DRY_RUN, OPT_FROM_LIST, OPT_BLOCK_SIZE };

static int parse_opt(int c, struct import_opts *o, char ***tars, size_t *ntars)
{
	unsigned long v;
	switch (c) {
	case 's': o->store = optarg; return 0;
	case 'm': o->move = true; return 0;
	case 't': return split_tags(optarg, o);
	case 'L': o->follow = true; return 0;
	case 'q': o->quiet = true; return 0;
	case 'J': o->journal = optarg; return 0;
	case 'j': o->json = true; return 0;
	case OPT_TAGS_FROM_PATH: o->tags_from_path = true; return 0;
	case OPT_DRY_RUN: o->dry_run = true; return 0;
	case OPT_FROM_LIST: o->from_list = optarg; return 0;
	case 'n':
		if (parse_count(optarg, "--jobs", 256, &v) < 0)
			return -EINVAL;
		o->jobs = (unsigned)v;
		return 0;
	case OPT_BLOCK_SIZE:
		if (parse_count(optarg, "--block-size", 64ul << 20, &v) < 0)
			return -EINVAL;
		o->block_size = v;
		return 0;
	case 'T': {
		char **grown = realloc(*tars, (*ntars + 1) * sizeof(char *));
		if (!grown)
			return -ENOMEM;
		*tars = grown;
		(*tars)[(*ntars)++] = optarg;
		return 0;
	}
	default: return -EINVAL;
	}
}

/* Two readers of standard input cannot share it. */
static bool stdin_twice(const struct import_opts *o, char **tars, size_t ntars, char **args,
			int nargs)
{
	int n = o->from_list && strcmp(o->from_list, "-") == 0;
	for (size_t i = 0; i < ntars; i++)
		n += strcmp(tars[i], "-") == 0;
	for (int i = 0; i < nargs; i++)
		n += strcmp(args[i], "-") == 0;
	return n > 1;
}

int cli_import(int argc, char **argv, const char *usage)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "tags", required_argument, NULL, 't' },
		{ "move", no_argument, NULL, 'm' },
		{ "jobs", required_argument, NULL, 'n' },
		{ "follow", no_argument, NULL, 'L' },
		{ "from-list", required_argument, NULL, OPT_FROM_LIST },
		{ "tags-from-path", no_argument, NULL, OPT_TAGS_FROM_PATH },
		{ "journal", required_argument, NULL, 'J' },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "quiet", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "tar", required_argument, NULL, 'T' },
		{ "block-size", required_argument, NULL, OPT_BLOCK_SIZE },
		{ 0 },
	};
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	struct import_opts o = { .jobs = nproc > 0 ? (unsigned)nproc : 1 };
	struct import_run run = { .o = &o };
	_cleanup_free_ char **tars = NULL;
	size_t ntars = 0;
	int c, rc = CLI_EXIT_USAGE;
	while ((c = getopt_long(argc, argv, "s:t:mn:LqT:", opts, NULL)) != -1)
		if (parse_opt(c, &o, &tars, &ntars) < 0)
			goto out;
	int nargs = argc - optind;
	if ((nargs <= 0 && !ntars && !o.from_list) || stdin_twice(&o, tars, ntars, argv + optind, nargs)) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "-") == 0) {
			fprintf(stderr, "capvault: read a tar stream from standard input with --tar -\n");
			goto out;
		}
	}
	pthread_mutex_init(&run.lock, NULL);
	mono_cond_init(&run.wake);
	pthread_cond_init(&run.turn, NULL);
	rc = import_run_all(&run, tars, ntars, argv + optind, nargs);
	vault_close(run.vault);
	cli_remote_free(run.remote);
	journal_free(run.journal);
	for (size_t i = 0; i < run.nitems; i++) {
		free(run.items[i].path);
		free(run.items[i].rel_dir);
		free(run.items[i].out);
	}
	free(run.items);
	notes_free(&run.failures);
	notes_free(&run.skips);
	pthread_cond_destroy(&run.wake);
	pthread_cond_destroy(&run.turn);
	pthread_mutex_destroy(&run.lock);
out:
	for (size_t i = 0; i < o.ntags; i++)
		free(o.tags[i]);
	free(o.tags);
	return rc;
}
