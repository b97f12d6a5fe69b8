/*
 * cleanup.h - __attribute__((cleanup)) helpers for locals.
 *
 * Use these or one "out:" label in a function, never both.
 */
#ifndef CAPVAULT_CLEANUP_H
#define CAPVAULT_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void cleanup_freep(void *p)
{
	free(*(void **)p);
}

static inline void cleanup_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void cleanup_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(cleanup_freep)
#define _cleanup_close_ _cleanup_(cleanup_closep)
#define _cleanup_fclose_ _cleanup_(cleanup_fclosep)

/* Hands ownership out of a cleanup variable. */
#define TAKE_PTR(p)                        \
	({                                 \
		__typeof__(p) taken_ = (p); \
		(p) = NULL;                \
		taken_;                    \
	})
#define TAKE_FD(fd)              \
	({                       \
		int taken_ = (fd); \
		(fd) = -1;       \
		taken_;          \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
