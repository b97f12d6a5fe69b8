/*
 * lineread.c - bounded line reading (see lineread.h).
 */
#include "lineread.h"

#include <errno.h>

int line_read(FILE *f, char *buf, size_t size, size_t *len, bool *newline)
{
	size_t n = 0;
	int c = EOF;

	*newline = false;
	while (n + 1 < size && (c = getc_unlocked(f)) != EOF && c != '\n')
		buf[n++] = (char)c;
	buf[n] = '\0';
	*len = n;
	if (c == '\n') {
		*newline = true;
		return 1;
	}
	if (c != EOF) { /* the buffer is full: is the line over? */
		c = getc_unlocked(f);
		if (c == '\n') {
			*newline = true;
			return 1;
		}
		if (c != EOF)
			return -E2BIG;
	}
	if (ferror(f))
		return -EIO;
	return n > 0 ? 1 : 0;
}
