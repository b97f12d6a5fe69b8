/*
 * import_journal.c - see import_journal.h.
 *
 * The loaded lines are kept sorted by key for binary search; lines
 * appended during the run are only written, since each source is visited
 * once per run.
 */
#include "import_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "hexdigit.h"
#include "fdio.h"
#include "lineread.h"

struct journal {
	struct journal_entry *v;
	size_t n;
	int fd;                 /* -1 when read-only */
	bool need_newline;      /* the file ends in a torn line */
	pthread_mutex_t lock;
};

static bool escaped(char c)
{
	return c == '%' || c == '\t' || c == '\n' || c == '\r';
}

int journal_format_line(char *buf, size_t size, const char *key, uint64_t sz,
			const uint8_t sha256[32], uint64_t capture_id)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (const char *k = key; *k; k++) {
		if (o + 4 > size)
			return -ENAMETOOLONG;
		if (escaped(*k)) {
			buf[o++] = '%';
			buf[o++] = hex[(uint8_t)*k >> 4];
			buf[o++] = hex[(uint8_t)*k & 15];
		} else {
			buf[o++] = *k;
		}
	}
	if (o + 1 + 20 + 1 + 64 + 1 + 20 + 2 > size)
		return -ENAMETOOLONG;
	o += (size_t)snprintf(buf + o, size - o, "\t%" PRIu64 "\t", sz);
	for (int i = 0; i < 32; i++) {
		buf[o++] = hex[sha256[i] >> 4];
		buf[o++] = hex[sha256[i] & 15];
	}
	o += (size_t)snprintf(buf + o, size - o, "\t%" PRIu64 "\n", capture_id);
	return (int)o;
}

/* A decimal number filling exactly [s, e). */
static int parse_u64(const char *s, const char *e, uint64_t *out)
{
	uint64_t v = 0;
	if (s == e || e - s > 20)
		return -EINVAL;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static char *unescape_key(const char *s, size_t len)
{
	char *key = malloc(len + 1);
	size_t o = 0;
	if (!key)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '%') {
			key[o++] = s[i];
			continue;
		}
		int hi = i + 2 < len ? hex_digit_value(s[i + 1]) : -1, lo = hi >= 0 ? hex_digit_value(s[i + 2]) : -1;
		if (lo < 0 || !escaped((char)(hi << 4 | lo))) {
			free(key);
			return NULL;
		}
		key[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	key[o] = '\0';
	return key;
}

int journal_parse_line(const char *line, size_t len, struct journal_entry *e)
{
	if (len == 0 || line[0] == '#')
		return 1;
	const char *tab[3], *end = line + len;
	const char *p = end;
	for (int i = 2; i >= 0; i--) {
		while (p > line && p[-1] != '\t')
			p--;
		if (p == line)
			return -EINVAL;
		tab[i] = --p; /* at the tab */
	}
	if (tab[0] == line || memchr(line, '\n', len) || memchr(line, '\r', len))
		return -EINVAL;
	if (parse_u64(tab[0] + 1, tab[1], &e->size) < 0 ||
	    parse_u64(tab[2] + 1, end, &e->capture_id) < 0 || tab[2] - tab[1] - 1 != 64)
		return -EINVAL;
	for (int i = 0; i < 32; i++) {
		int hi = hex_digit_value(tab[1][1 + 2 * i]), lo = hex_digit_value(tab[1][2 + 2 * i]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		e->sha256[i] = (uint8_t)(hi << 4 | lo);
	}
	if (memchr(line, '\t', (size_t)(tab[0] - line)))
		return -EINVAL;
	e->key = unescape_key(line, (size_t)(tab[0] - line));
	return e->key ? 0 : -EINVAL;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct journal_entry *)a)->key, ((const struct journal_entry *)b)->key);
}

/* Lines longer than journal_append writes are not a journal's: a file
 * without newlines (/dev/full, a capture) is refused, not read whole. */
static int journal_load(struct journal *j, FILE *f, size_t *lineno)
{
	_cleanup_free_ char *line = malloc(JOURNAL_LINE_MAX);
	size_t alloc = 0, n;
	bool newline;
	int r;
	if (!line)
		return -ENOMEM;
	while ((r = line_read(f, line, JOURNAL_LINE_MAX, &n, &newline)) == 1) {
		++*lineno;
		if (!newline) {
			j->need_newline = true; /* torn by a crash: ignored */
			break;
		}
		struct journal_entry e;
		if (journal_parse_line(line, n, &e) != 0)
			continue;
		if (j->n == alloc) {
			alloc = alloc ? 2 * alloc : 256;
			struct journal_entry *grown = realloc(j->v, alloc * sizeof(*grown));
			if (!grown) {
				free(e.key);
				return -ENOMEM;
			}
			j->v = grown;
		}
		e.used = false;
		j->v[j->n++] = e;
	}
	if (r == -E2BIG)
		++*lineno;
	if (r < 0)
		return r;
	if (j->n > 1)
		qsort(j->v, j->n, sizeof(*j->v), entry_cmp);
	return 0;
}

int journal_open(struct journal **out, const char *path, bool read_only, struct errbuf *eb)
{
	struct journal *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->fd = -1;
	pthread_mutex_init(&j->lock, NULL);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	int err = 0;
	if (!f && errno != ENOENT)
		err = errbuf_set(eb, -errno, "journal %s: %s", path, strerror(errno));
	size_t lineno = 0;
	if (!err && f && (err = journal_load(j, f, &lineno)) == -E2BIG)
		errbuf_set(eb, err, "journal %s: line %zu is over %u bytes: not an import journal",
			   path, lineno, JOURNAL_LINE_MAX);
	else if (err < 0)
		errbuf_set(eb, err, "journal %s: %s", path, strerror(-err));
	if (!err && !read_only) {
		j->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (j->fd < 0)
			err = errbuf_set(eb, -errno, "journal %s: %s", path, strerror(errno));
	}
	if (err) {
		journal_free(j);
		return err;
	}
	*out = j;
	return 0;
}

struct journal *journal_free(struct journal *j)
{
	if (!j)
		return NULL;
	for (size_t i = 0; i < j->n; i++)
		free(j->v[i].key);
	free(j->v);
	if (j->fd >= 0)
		close(j->fd);
	pthread_mutex_destroy(&j->lock);
	free(j);
	return NULL;
}

size_t journal_count(const struct journal *j)
{
	return j ? j->n : 0;
}

bool journal_done(struct journal *j, const char *key, uint64_t size)
{
	if (!j || !j->n)
		return false;
	struct journal_entry probe = { .key = (char *)key };
	struct journal_entry *e = bsearch(&probe, j->v, j->n, sizeof(*j->v), entry_cmp);
	if (!e)
		return false;
	/* Several lines may share the key: a source that changed (any line of
	 * its size will do), or an archive's member name used twice (each
	 * line stands for one member: a second member of the same name and
	 * size is done only if a second line says so). */
	while (e > j->v && strcmp(e[-1].key, key) == 0)
		e--;
	bool done = false;
	pthread_mutex_lock(&j->lock);
	for (; !done && e < j->v + j->n && strcmp(e->key, key) == 0; e++)
		if (e->size == size && !e->used)
			done = e->used = true;
	pthread_mutex_unlock(&j->lock);
	return done;
}

int journal_append(struct journal *j, const char *key, uint64_t size, const uint8_t sha256[32],
		   uint64_t capture_id, struct errbuf *eb)
{
	char line[JOURNAL_LINE_MAX];
	int len = journal_format_line(line + 1, sizeof(line) - 1, key, size, sha256, capture_id);
	if (len < 0)
		return errbuf_set(eb, len, "journal: key too long: %s", key);
	line[0] = '\n';
	pthread_mutex_lock(&j->lock);
	bool nl = j->need_newline;
	int err = fd_write_all(j->fd, nl ? line : line + 1, (size_t)len + nl);
	if (!err && fdatasync(j->fd) < 0)
		err = -errno;
	if (!err)
		j->need_newline = false;
	pthread_mutex_unlock(&j->lock);
	if (err)
		return errbuf_set(eb, err, "journal: %s", strerror(-err));
	return 0;
}
