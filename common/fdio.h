/*
 * fdio.h - writing a whole buffer to a file descriptor.
 */
#ifndef CAPVAULT_FDIO_H
#define CAPVAULT_FDIO_H

#include <errno.h>
#include <stddef.h>
#include <unistd.h>

/* Writes all len bytes (short writes and EINTR resumed). Returns 0 or a
 * negative errno. */
static inline int fd_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

#endif
