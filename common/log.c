/*
 * log.c - see log.h. One write(2) per line so concurrent threads do not
 * interleave their messages; one datagram per journal entry (journald's
 * native protocol: "KEY=value\n", or "KEY\n" + 64-bit little-endian
 * length + bytes + "\n" for a value with a newline).
 */
#include "log.h"

#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "textesc.h"

#define LINE_MAX_BYTES 4096

static const char *log_progname = "capvault";
static enum log_level log_max_level = LOG_LEVEL_INFO;
static bool log_prefix_levels = true;
static _Atomic int log_file_fd = -1;
static pthread_mutex_t journal_lock = PTHREAD_MUTEX_INITIALIZER;
static int journal_fd = -1;             /* under journal_lock */
static struct sockaddr_un journal_addr; /* under journal_lock */
static _Atomic bool journal_only;

void log_set_journal_only(bool on)
{
	journal_only = on;
}

void log_set_journal(const char *socket_path)
{
	pthread_mutex_lock(&journal_lock);
	if (journal_fd >= 0)
		close(journal_fd);
	journal_fd = -1;
	if (socket_path && strlen(socket_path) < sizeof(journal_addr.sun_path)) {
		journal_addr = (struct sockaddr_un){ .sun_family = AF_UNIX };
		memcpy(journal_addr.sun_path, socket_path, strlen(socket_path) + 1);
		journal_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	}
	pthread_mutex_unlock(&journal_lock);
}

/* stderr is the journal when JOURNAL_STREAM is its "device:inode". */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	return js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	       (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_file(int fd)
{
	log_file_fd = fd;
}

void log_init(const char *progname, enum log_level level, bool prefix_levels)
{
	log_progname = progname;
	log_max_level = level;
	log_prefix_levels = prefix_levels;
	if (stderr_is_journal())
		log_set_journal(LOG_JOURNAL_SOCKET);
}

void log_set_level(enum log_level level)
{
	log_max_level = level;
}

int log_level_parse(const char *name, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} names[] = {
		{ "error", LOG_LEVEL_ERR },   { "warning", LOG_LEVEL_WARNING },
		{ "warn", LOG_LEVEL_WARNING }, { "info", LOG_LEVEL_INFO },
		{ "debug", LOG_LEVEL_DEBUG },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

bool log_enabled(enum log_level level)
{
	return level <= log_max_level;
}

/* The line with "2026-11-26T10:59:13.123Z " in front; one write, so
 * lines of concurrent threads do not mix. */
static void log_write_file(const char *line, size_t len)
{
	char out[4200];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(out + n, sizeof(out) - n, ".%03ldZ ", ts.tv_nsec / 1000000);
	if (len > sizeof(out) - n)
		len = sizeof(out) - n;
	memcpy(out + n, line, len);
	ssize_t written = write(log_file_fd, out, n + len);
	(void)written;
}

/* Appends the escaped form of src (flags as textesc.h) at *used. */
static void put_escaped(char *line, size_t size, size_t *used, const char *src, unsigned flags)
{
	text_escape(src, flags, line + *used, size - *used);
	*used += strlen(line + *used);
}

static void put_text(char *line, size_t size, size_t *used, const char *text)
{
	int n = snprintf(line + *used, size - *used, "%s", text);
	if (n > 0)
		*used += (size_t)n < size - *used ? (size_t)n : size - *used - 1;
}

/* The line without its "<N>prog: " head: the message escaped, then the
 * fields. Returns its length. */
static size_t format_body(char *line, size_t size, int errnum, const struct log_field *f,
			  size_t nf, const char *fmt, va_list ap)
{
	char msg[LINE_MAX_BYTES];
	size_t used = 0;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	line[0] = '\0';
	put_escaped(line, size, &used, msg, TEXT_ESC_CONTROLS);
	if (errnum != 0) {
		put_text(line, size, &used, ": ");
		put_text(line, size, &used, strerror(errnum));
	}
	for (size_t i = 0; i < nf; i++) {
		char key[64];
		size_t k = 0;
		if (!f[i].value)
			continue;
		for (; k < sizeof(key) - 1 && f[i].key[k]; k++)
			key[k] = (char)tolower((unsigned char)f[i].key[k]);
		key[k] = '\0';
		put_text(line, size, &used, " ");
		put_text(line, size, &used, key);
		put_text(line, size, &used, "=\"");
		put_escaped(line, size, &used, f[i].value, TEXT_ESC_CONTROLS | TEXT_ESC_QUOTE);
		put_text(line, size, &used, "\"");
	}
	return used;
}

/* Adds one field to a journal datagram being built in mem. */
static void journal_field(FILE *mem, const char *prefix, const char *key, const char *value)
{
	if (!strchr(value, '\n')) {
		fprintf(mem, "%s%s=%s\n", prefix, key, value);
		return;
	}
	uint64_t len = htole64((uint64_t)strlen(value));
	fprintf(mem, "%s%s\n", prefix, key);
	fwrite(&len, sizeof(len), 1, mem);
	fprintf(mem, "%s\n", value);
}

/* One entry to journald; false when it was not sent (then the caller
 * writes the line to stderr: a line is never lost). */
static bool journal_send(enum log_level level, const char *body, const struct log_field *f,
			 size_t nf)
{
	char *dgram = NULL;
	size_t len = 0;
	bool sent = false;
	FILE *mem = open_memstream(&dgram, &len);
	if (!mem)
		return false;
	char prio[4];
	snprintf(prio, sizeof(prio), "%d", (int)level);
	journal_field(mem, "", "MESSAGE", body);
	journal_field(mem, "", "PRIORITY", prio);
	journal_field(mem, "", "SYSLOG_IDENTIFIER", log_progname);
	for (size_t i = 0; i < nf; i++)
		if (f[i].value)
			journal_field(mem, "CAPVAULT_", f[i].key, f[i].value);
	if (fclose(mem) == 0) {
		pthread_mutex_lock(&journal_lock);
		sent = journal_fd >= 0 &&
		       sendto(journal_fd, dgram, len, MSG_NOSIGNAL, (struct sockaddr *)&journal_addr,
			      sizeof(journal_addr)) == (ssize_t)len;
		pthread_mutex_unlock(&journal_lock);
	}
	free(dgram);
	return sent;
}

static void log_emit_fields(enum log_level level, int errnum, const struct log_field *f,
			    size_t nf, const char *fmt, va_list ap)
{
	char line[LINE_MAX_BYTES];
	size_t used = 0, text = 0; /* text: where the line after "<N>" starts */

	if (log_prefix_levels)
		text = (size_t)snprintf(line, sizeof(line), "<%d>", (int)level);
	used = text + (size_t)snprintf(line + text, sizeof(line) - text, "%.64s: ", log_progname);
	used += format_body(line + used, sizeof(line) - used - 1, errnum, f, nf, fmt, ap);
	bool journaled = nf && journal_send(level, line + text, f, nf);
	line[used++] = '\n';
	if (!journaled && !(nf && journal_only)) {
		ssize_t written = write(STDERR_FILENO, line, used);
		(void)written;
	}
	if (log_file_fd >= 0)
		log_write_file(line, used);
}

static void log_emit(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	log_emit_fields(level, errnum, NULL, 0, fmt, ap);
}

void log_fields(enum log_level level, const struct log_field *fields, size_t n, const char *fmt,
		...)
{
	if (!log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_emit_fields(level, 0, fields, n, fmt, ap);
	va_end(ap);
}

#define LOG_BODY(level, errnum)                          \
	do {                                             \
		if (!log_enabled(level))                 \
			return;                          \
		va_list ap;                              \
		va_start(ap, fmt);                       \
		log_emit(level, errnum, fmt, ap);        \
		va_end(ap);                              \
	} while (0)

void log_warn(const char *fmt, ...)
{
	int saved = errno;
	LOG_BODY(LOG_LEVEL_WARNING, saved);
}

void log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_WARNING, 0);
}

void log_errx(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_ERR, 0);
}

void log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_INFO, 0);
}

void log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LEVEL_DEBUG, 0);
}

/*
 * Exits with status 1 without running exit()'s handlers: a fatal error
 * can come while other threads still work (capvaultd's mover, cache
 * writer and scrub start before its API), and exit() would then destroy
 * RocksDB's static state, and ours, under them. What stdio holds is
 * written first; the log is written line by line already.
 */
static _Noreturn void die_now(void)
{
	fflush(NULL);
	_exit(1);
}

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERR, saved, fmt, ap);
	va_end(ap);
	die_now();
}

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERR, 0, fmt, ap);
	va_end(ap);
	die_now();
}

#define AUDIT_FIELDS_MAX 16

void log_audit(const char *action, const char *token, const char *client,
	       const char *capture_id, const char *sha256, const char *name, va_list ap)
{
	struct log_field f[AUDIT_FIELDS_MAX];
	size_t n = 0;
	f[n++] = (struct log_field){ "ACTION", action };
	f[n++] = (struct log_field){ "TOKEN", token };
	f[n++] = (struct log_field){ "CLIENT", client };
	if (capture_id) {
		f[n++] = (struct log_field){ "CAPTURE_ID", capture_id };
		f[n++] = (struct log_field){ "SHA256", sha256 };
		f[n++] = (struct log_field){ "NAME", name };
	}
	for (const char *k; n < AUDIT_FIELDS_MAX && (k = va_arg(ap, const char *));)
		f[n++] = (struct log_field){ k, va_arg(ap, const char *) };
	log_fields(LOG_LEVEL_INFO, f, n, "audit: %s", action);
}
