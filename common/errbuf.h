/*
 * errbuf.h - a caller-owned buffer for a human-readable error detail
 * (path, byte offset) that goes with a negative errno return.
 */
#ifndef CAPVAULT_ERRBUF_H
#define CAPVAULT_ERRBUF_H

#include <stdarg.h>
#include <stdio.h>

struct errbuf {
	char msg[512];
};

static inline void errbuf_clear(struct errbuf *eb)
{
	if (eb)
		eb->msg[0] = '\0';
}

/* Fills eb (when not NULL) and returns err, so callers can write
 * "return errbuf_set(eb, -EINVAL, "...", ...);". */
__attribute__((format(printf, 3, 4))) static inline int errbuf_set(struct errbuf *eb, int err,
								     const char *fmt, ...)
{
	if (eb) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(eb->msg, sizeof(eb->msg), fmt, ap);
		va_end(ap);
	}
	return err;
}

#endif
