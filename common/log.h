/*
 * log.h - leveled logging to stderr with journald "<N>" prefixes.
 *
 * Only programs (tools/) and the daemon's top level log; library code
 * returns errors. The level is checked before any formatting is done.
 *
 * A line is always one line: the message is written in the escaped form
 * of textesc.h with TEXT_ESC_CONTROLS (a backslash as "\\", control
 * characters and bytes that are not UTF-8 as "\xHH"), so a name with a
 * newline in it cannot forge a line, and the line reads back losslessly.
 */
#ifndef CAPVAULT_LOG_H
#define CAPVAULT_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

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
/*
 * Sends lines with fields (log_fields) to journald's native socket at path
 * as structured entries, instead of as text on stderr (NULL: stop). The
 * daemon needs not call it: log_init does when stderr is the journal
 * (JOURNAL_STREAM names its device and inode).
 */
void log_set_journal(const char *socket_path);
#define LOG_JOURNAL_SOCKET "/run/systemd/journal/socket"
/* On: lines with fields go to the journal or nowhere (never stderr): for
 * the CLI's audit lines, which must not change what the CLI prints. */
void log_set_journal_only(bool on);
/* Parses "error", "warning", "info", "debug"; returns -EINVAL otherwise. */
int log_level_parse(const char *name, enum log_level *out);
bool log_enabled(enum log_level level);

/* log_warn appends ": strerror(errno)"; the *x variants do not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A structured field: key in upper case ([A-Z0-9_], journald's rules),
 * value any bytes (NULL: left out). */
struct log_field {
	const char *key;
	const char *value;
};
/*
 * One line: the message, then ` key="value"` for each field (key in lower
 * case, value escaped with TEXT_ESC_CONTROLS | TEXT_ESC_QUOTE). Under
 * journald (log_set_journal) one entry instead, MESSAGE being that line,
 * PRIORITY, SYSLOG_IDENTIFIER, and CAPVAULT_<KEY> with each value's exact
 * bytes. The log file (log_set_file) gets the line either way.
 */
void log_fields(enum log_level level, const struct log_field *fields, size_t n, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));
/*
 * One "audit: ACTION" line through log_fields at info: ACTION, TOKEN and
 * CLIENT, then CAPTURE_ID, SHA256 and NAME when capture_id is not NULL,
 * then the KEY, value pairs of ap up to a NULL key (at most 16 fields in
 * all). The daemon's API and the offline CLI write the same lines.
 */
void log_audit(const char *action, const char *token, const char *client,
	       const char *capture_id, const char *sha256, const char *name, va_list ap);
/* For mains only: log and exit(1). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
