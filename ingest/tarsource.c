/*
 * tarsource.c - see tarsource.h.
 *
 * libarchive pulls its input through our read callback, which does plain
 * read(2)s of a fixed size and registers no skip or seek callback: a tape
 * or a pipe is read strictly forward, one block size at a time. Member
 * data comes from archive_read_data_block without a copy, except for the
 * few first bytes tarsource_head needs to see through a compressed
 * member.
 */
#include "tarsource.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mtio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capfile.h"
#include "decomp.h"

#define HEAD_MAX (64u * 1024)

struct tarsource {
	struct archive *a;
	int fd;
	bool own_fd;
	bool fatal;          /* the archive can no longer be read */
	bool data_broken;    /* ... because a member's data could not be */
	size_t block_size;
	uint8_t *buf;        /* read(2) buffer handed to libarchive */
	uint64_t bytes_read;
	/* The current member. */
	uint64_t pos;        /* data offset reached */
	bool member_eof;
	uint8_t *head;       /* copy of the first bytes, when they spanned blocks */
	const void *pending; /* a block (or its tail) not yet handed out */
	size_t pending_len;
};

static la_ssize_t ts_read(struct archive *a, void *opaque, const void **out)
{
	struct tarsource *ts = opaque;
	for (;;) {
		ssize_t n = read(ts->fd, ts->buf, ts->block_size);
		if (n >= 0) {
			ts->bytes_read += (uint64_t)n;
			*out = ts->buf;
			return n;
		}
		if (errno != EINTR) {
			archive_set_error(a, errno, "read: %s", strerror(errno));
			return -1;
		}
	}
}

/* A tape drive in fixed-block mode says its block size; reads must ask
 * for exactly that (or a multiple). */
static size_t pick_block_size(int fd, size_t asked)
{
	struct stat st;
	if (asked)
		return asked;
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode))
		return TARSOURCE_READ_SIZE;
	struct mtget mt;
	if (ioctl(fd, MTIOCGET, &mt) == 0) {
		size_t bs = ((unsigned long)mt.mt_dsreg & MT_ST_BLKSIZE_MASK) >> MT_ST_BLKSIZE_SHIFT;
		if (bs > 0)
			return bs;
	}
	return TARSOURCE_TAPE_BLOCK;
}

static int ts_error(struct tarsource *ts, struct errbuf *eb, int r)
{
	int e = archive_errno(ts->a);
	const char *msg = archive_error_string(ts->a);
	if (r == ARCHIVE_FATAL)
		ts->fatal = true;
	return errbuf_set(eb, e > 0 ? -e : -EIO, "%s", msg ? msg : "archive error");
}

int tarsource_open(struct tarsource **out, const char *path, size_t block_size,
		   struct errbuf *eb)
{
	struct tarsource *ts = calloc(1, sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	ts->fd = -1;
	if (strcmp(path, "-") == 0) {
		ts->fd = STDIN_FILENO;
	} else {
		ts->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (ts->fd < 0) {
			int e = errno;
			tarsource_free(ts);
			return errbuf_set(eb, -e, "%s: %s", path, strerror(e));
		}
		ts->own_fd = true;
		(void)posix_fadvise(ts->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	ts->block_size = pick_block_size(ts->fd, block_size);
	ts->buf = malloc(ts->block_size);
	ts->head = malloc(HEAD_MAX);
	ts->a = archive_read_new();
	if (!ts->buf || !ts->head || !ts->a) {
		tarsource_free(ts);
		return -ENOMEM;
	}
	archive_read_support_filter_all(ts->a);
	archive_read_support_format_tar(ts->a);
	if (archive_read_open(ts->a, ts, NULL, ts_read, NULL) != ARCHIVE_OK) {
		int err = ts_error(ts, eb, ARCHIVE_FATAL);
		tarsource_free(ts);
		return err;
	}
	*out = ts;
	return 0;
}

struct tarsource *tarsource_free(struct tarsource *ts)
{
	if (!ts)
		return NULL;
	if (ts->a)
		archive_read_free(ts->a);
	if (ts->own_fd)
		close(ts->fd);
	free(ts->buf);
	free(ts->head);
	free(ts);
	return NULL;
}

int tarsource_next(struct tarsource *ts, struct tar_member *m, struct errbuf *eb)
{
	for (;;) {
		if (ts->fatal)
			return errbuf_set(eb, -EIO, "archive unreadable after an earlier error");
		struct archive_entry *e;
		int r = archive_read_next_header(ts->a, &e);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return ts_error(ts, eb, ARCHIVE_FATAL);
		/* Hard links carry no data; their target was read before them.
		 * Folders are only the way to their members. */
		unsigned type = archive_entry_filetype(e);
		if (type == AE_IFDIR || archive_entry_hardlink(e))
			continue;
		m->not_file = type == AE_IFREG	 ? NULL :
			      type == AE_IFLNK	 ? "a symbolic link" :
			      type == AE_IFIFO	 ? "a FIFO" :
			      type == AE_IFSOCK ? "a socket" :
			      type == AE_IFCHR || type == AE_IFBLK ? "a device" :
							     "not a file";
		ts->pos = 0;
		ts->member_eof = false;
		ts->pending = NULL;
		ts->pending_len = 0;
		m->name = archive_entry_pathname(e);
		if (!m->name)
			m->name = "(unnamed)";
		m->size = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
		return 1;
	}
}

/* The next block straight from libarchive: 1, 0 at the member's end, or a
 * negative errno. */
static int raw_block(struct tarsource *ts, const void **buf, size_t *len, struct errbuf *eb)
{
	for (;;) {
		if (ts->member_eof)
			return 0;
		if (ts->fatal)
			return errbuf_set(eb, -EIO, "archive unreadable after an earlier error");
		size_t size;
		la_int64_t off;
		int r = archive_read_data_block(ts->a, buf, &size, &off);
		if (r == ARCHIVE_EOF) {
			ts->member_eof = true;
			return 0;
		}
		if (r < ARCHIVE_WARN) {
			ts->data_broken = r == ARCHIVE_FATAL;
			return ts_error(ts, eb, r);
		}
		if ((uint64_t)off != ts->pos)
			return errbuf_set(eb, -ENOTSUP, "sparse member (hole at offset %llu)",
					  (unsigned long long)ts->pos);
		ts->pos += size;
		if (size) {
			*len = size;
			return 1;
		}
	}
}

int tarsource_data(struct tarsource *ts, const void **buf, size_t *len, struct errbuf *eb)
{
	if (ts->pending_len) {
		*buf = ts->pending;
		*len = ts->pending_len;
		ts->pending = NULL;
		ts->pending_len = 0;
		return 1;
	}
	return raw_block(ts, buf, len, eb);
}

/* Hands out the first block itself when it decides alone; otherwise
 * copies blocks into ts->head until the sniff decides, keeping the tail
 * of the last block pending. */
int tarsource_head(struct tarsource *ts, const void **head, size_t *len, struct errbuf *eb)
{
	const void *b;
	size_t n = 0, have = 0;
	int r, verdict = -EAGAIN;
	while (verdict == -EAGAIN) {
		r = raw_block(ts, &b, &n, eb);
		if (r < 0)
			return r;
		if (r == 0) {
			verdict = tarsource_sniff(ts->head, have, true);
			break;
		}
		if (have == 0 && (n >= HEAD_MAX || tarsource_sniff(b, n, false) != -EAGAIN)) {
			*head = b;
			*len = n;
			return tarsource_sniff(b, n, false);
		}
		size_t take = n < HEAD_MAX - have ? n : HEAD_MAX - have;
		memcpy(ts->head + have, b, take);
		have += take;
		if (take < n) {
			ts->pending = (const uint8_t *)b + take;
			ts->pending_len = n - take;
		}
		verdict = tarsource_sniff(ts->head, have, false);
	}
	*head = ts->head;
	*len = have;
	return verdict;
}

bool tarsource_data_broken(const struct tarsource *ts)
{
	return ts->data_broken;
}

uint64_t tarsource_bytes_read(const struct tarsource *ts)
{
	return ts->bytes_read;
}

struct peek {
	uint8_t b[4];
	size_t n;
};

static int peek_out(void *opaque, const void *buf, size_t len)
{
	struct peek *pk = opaque;
	size_t take = len < 4 - pk->n ? len : 4 - pk->n;
	memcpy(pk->b + pk->n, buf, take);
	pk->n += take;
	return pk->n == 4 ? 1 : 0;
}

int tarsource_sniff(const void *buf, size_t len, bool at_end)
{
	const uint8_t *b = buf;
	if (len < 4)
		return at_end ? 0 : -EAGAIN;
	if (capfile_sniff(buf, len) != CAPFILE_FORMAT_UNKNOWN)
		return 1;
	bool gzip = b[0] == 0x1f && b[1] == 0x8b;
	bool zstd = b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd;
	if (!gzip && !zstd)
		return 0;
	struct peek pk = { .n = 0 };
	struct decomp *d = NULL;
	if (decomp_new(&d, peek_out, &pk) < 0)
		return 1; /* let the import itself say what is wrong */
	int err = decomp_feed(d, buf, len, NULL);
	decomp_free(d);
	if (pk.n == 4)
		return capfile_sniff(pk.b, 4) != CAPFILE_FORMAT_UNKNOWN;
	/* Corrupt or cut compressed data: a failed import, not a skip. */
	if (err < 0 || len >= HEAD_MAX || at_end)
		return 1;
	return -EAGAIN;
}

int tarsource_probe(const char *path)
{
	struct archive *a = archive_read_new();
	if (!a)
		return -ENOMEM;
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	int ret = 0;
	if (archive_read_open_filename(a, path, TARSOURCE_TAPE_BLOCK) == ARCHIVE_OK) {
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		ret = r == ARCHIVE_OK || r == ARCHIVE_WARN;
	}
	archive_read_free(a);
	return ret;
}
