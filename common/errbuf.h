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

#ifdef __clang_analyzer__
/* For clang's analyzer only (clang-tidy): it does not inline variadic
 * functions, so it would not know that the result is err and would follow
 * error paths as if they succeeded. (errbuf_set) calls the function. */
#define errbuf_set(eb, err, ...)                                          \
	({                                                                \
		int errbuf_err_ = (err);                                  \
		(void)(errbuf_set)((eb), errbuf_err_, __VA_ARGS__);       \
		errbuf_err_;                                              \
	})
#endif

#endif
