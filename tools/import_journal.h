/*
 * import_journal.h - the resume journal of `capvault import --journal`.
 *
 * One line per finished source, appended and fsynced before the next
 * source is reported done:
 *
 *     KEY <TAB> SIZE <TAB> SHA256-HEX <TAB> CAPTURE-ID <LF>
 *
 * KEY is the source path, or ARCHIVE!MEMBER for a tar member, with '%',
 * TAB, LF and CR written as %25, %09, %0A, %0D. Lines starting with '#'
 * and lines that do not parse (the torn last line of a killed run) are
 * ignored when the journal is loaded. A source whose key and size match
 * a loaded line is done; each line answers for one source of a run, so
 * an archive holding one member name twice (appended with tar -r, say)
 * has its second member imported after a kill between the two.
 */
#ifndef CAPVAULT_IMPORT_JOURNAL_H
#define CAPVAULT_IMPORT_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

struct journal;

struct journal_entry {
	char *key;       /* unescaped */
	uint64_t size;
	uint8_t sha256[32];
	uint64_t capture_id;
	bool used;       /* a source of this run was found done by it */
};

/* The longest line (with its LF) a journal holds. */
#define JOURNAL_LINE_MAX 8192u

/*
 * Loads the journal at path (a missing file is an empty journal) and,
 * unless read_only, opens it for appending, creating it. Returns 0 or a
 * negative errno (eb names the file): -E2BIG for a line over
 * JOURNAL_LINE_MAX (a file without newlines is not read whole).
 */

int journal_open(struct journal **out, const char *path, bool read_only, struct errbuf *eb);
struct journal *journal_free(struct journal *j);

/* Number of entries loaded. */
size_t journal_count(const struct journal *j);
/* Whether a source with this key and size is recorded as done by a line
 * no other source of this run was found done by; that line is used up.
 * Safe from several threads. */
bool journal_done(struct journal *j, const char *key, uint64_t size);

/* Appends a line and fsyncs it; safe from several threads. Returns 0 or
 * a negative errno. */
int journal_append(struct journal *j, const char *key, uint64_t size, const uint8_t sha256[32],
		   uint64_t capture_id, struct errbuf *eb);

/*
 * Formats one line (with its LF) into buf. Returns its length, or
 * -ENAMETOOLONG when it does not fit.
 */
int journal_format_line(char *buf, size_t size, const char *key, uint64_t sz,
			const uint8_t sha256[32], uint64_t capture_id);
/*
 * Parses one line (without its LF). Returns 0 with e filled (e->key
 * allocated; free it), 1 for a comment or blank line, or -EINVAL.
 */
int journal_parse_line(const char *line, size_t len, struct journal_entry *e);

#endif
