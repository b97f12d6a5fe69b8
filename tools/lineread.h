/*
 * lineread.h - reading text files line by line with a bound on the line:
 * the CLI's list and journal files may be anything a user names
 * (/dev/zero, /dev/full, a capture), and getline would grow its buffer
 * until memory runs out on a file without newlines.
 */
#ifndef CAPVAULT_LINEREAD_H
#define CAPVAULT_LINEREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/*
 * Reads one line into buf (NUL-terminated, without its '\n'; *len is its
 * length, which counts any NUL bytes in it). *newline says whether it
 * ended with '\n' (false for a last line without one). Returns 1 for a
 * line, 0 at the end of the file, -E2BIG when the line does not fit in
 * size - 1 bytes (reading stops there), or -EIO.
 */
int line_read(FILE *f, char *buf, size_t size, size_t *len, bool *newline);

#endif
