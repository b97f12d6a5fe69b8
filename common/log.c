/*
 * log.c - see log.h. One write(2) per line so concurrent threads do not
 * interleave their messages.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_progname = "capvault";
static enum log_level log_max_level = LOG_LEVEL_INFO;
static bool log_prefix_levels = true;
static _Atomic int log_file_fd = -1;

void log_set_file(int fd)
{
	log_file_fd = fd;
}

void log_init(const char *progname, enum log_level level, bool prefix_levels)
{
	log_progname = progname;
	log_max_level = level;
	log_prefix_levels = prefix_levels;
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

static void log_emit(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	char line[4096];
	size_t used = 0;
	int n;

	if (log_prefix_levels)
		n = snprintf(line, sizeof(line), "<%d>%s: ", (int)level, log_progname);
	else
		n = snprintf(line, sizeof(line), "%s: ", log_progname);
	if (n > 0)
		used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	n = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
	if (n > 0)
		used += (size_t)n < sizeof(line) - used ? (size_t)n : sizeof(line) - used - 1;
	if (errnum != 0 && used < sizeof(line) - 1) {
		n = snprintf(line + used, sizeof(line) - used, ": %s", strerror(errnum));
		if (n > 0)
			used += (size_t)n < sizeof(line) - used ? (size_t)n : sizeof(line) - used - 1;
	}
	if (used >= sizeof(line) - 1)
		used = sizeof(line) - 2;
	line[used++] = '\n';
	ssize_t written = write(STDERR_FILENO, line, used);
	if (log_file_fd >= 0)
		log_write_file(line, used);
	(void)written;
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

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
