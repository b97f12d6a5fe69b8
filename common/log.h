/*
 * log.h - leveled logging to stderr with journald "<N>" prefixes.
 *
 * Only programs (tools/) and the daemon's top level log; library code
 * returns errors. The level is checked before any formatting is done.
 */
#ifndef CAPVAULT_LOG_H
#define CAPVAULT_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

/* Sets the program name printed before each line and the maximum level. */
void log_init(const char *progname, enum log_level level, bool prefix_levels);
void log_set_level(enum log_level level);
/* Also writes each line to fd (-1: stop), with a UTC timestamp, for a log
 * file on systems without journald. The caller owns fd. */
void log_set_file(int fd);
/* Parses "error", "warning", "info", "debug"; returns -EINVAL otherwise. */
int log_level_parse(const char *name, enum log_level *out);
bool log_enabled(enum log_level level);

/* log_warn appends ": strerror(errno)"; the *x variants do not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* For mains only: log and exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
