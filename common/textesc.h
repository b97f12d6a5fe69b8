/*
 * textesc.h - how capvault shows a byte string that a client or a file
 * system supplied (a capture's name, source path, comment): losslessly,
 * and never as something a JSON parser, a terminal or a log reader would
 * take for something else.
 *
 * The escaped form: valid UTF-8 is kept as it is, except that a backslash
 * is written "\\" and each byte that is not part of valid UTF-8 is written
 * "\xHH" (two lower-case hex digits). It is always valid UTF-8, so JSON
 * can carry it. TEXT_ESC_CONTROLS also writes each byte of a control
 * character (C0, DEL, the C1 controls U+0080-U+009F, the bidirectional
 * marks, embeddings, overrides and isolates, and the line and paragraph
 * separators U+2028-U+2029) as "\xHH": for terminals, logs and file
 * names. TEXT_ESC_QUOTE also writes '"' as
 * "\x22".
 *
 * Reading back is the same whatever the flags: "\\" is a backslash and
 * "\xHH" the byte HH; every other character stands for itself.
 */
#ifndef CAPVAULT_TEXTESC_H
#define CAPVAULT_TEXTESC_H

#include <stdbool.h>
#include <stddef.h>

enum {
	TEXT_ESC_CONTROLS = 1,
	TEXT_ESC_QUOTE = 2,
};

/*
 * Writes the escaped form of the len bytes at s into buf (always
 * NUL-terminated when size > 0; cut before an escape or character that
 * would not fit whole). Returns the length the whole escaped form needs,
 * without the NUL, as snprintf does.
 */
size_t text_escape_mem(const char *s, size_t len, unsigned flags, char *buf, size_t size);
size_t text_escape(const char *s, unsigned flags, char *buf, size_t size);
/* The escaped form of s, malloc'd; NULL when out of memory. */
char *text_escape_dup(const char *s, unsigned flags);
/* s as a message quotes a client's text (a bad tag or name): escaped with
 * TEXT_ESC_CONTROLS | TEXT_ESC_QUOTE into buf, cut to fit. Returns buf. */
const char *text_shown(const char *s, char *buf, size_t size);
/* True when s is its own escaped form (nothing to escape). */
bool text_is_plain(const char *s, unsigned flags);

/*
 * Reads an escaped form back into malloc'd bytes (*out). Strict: a
 * backslash followed by anything but '\' or "xHH", and "\x00", are
 * -EINVAL. Lenient (strict false): such a backslash stands for itself
 * (records written before names were escaped). Returns 0, -EINVAL or
 * -ENOMEM.
 */
int text_unescape(const char *s, bool strict, char **out);

#endif
