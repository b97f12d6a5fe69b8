/*
 * objstore.c - dispatch of objstore.h's calls to the backend's table.
 */
#include "objstore_priv.h"

#include <string.h>

struct objstore *objstore_free(struct objstore *os)
{
	if (os)
		os->ops->destroy(os);
	return NULL;
}

const char *objstore_describe(const struct objstore *os)
{
	return os->description;
}

const char *objstore_reason(const struct objstore *os, const struct errbuf *eb, int err)
{
	size_t len = strlen(os->description);
	const char *msg = eb && eb->msg[0] ? eb->msg : strerror(-err);
	if (!strncmp(msg, os->description, len) && !strncmp(msg + len, ": ", 2))
		msg += len + 2;
	return msg;
}

int objstore_put(struct objstore *os, const uint8_t sha[32], int fd, uint64_t size,
		 struct errbuf *eb)
{
	return os->ops->put(os, sha, fd, size, eb);
}

int objstore_stat(struct objstore *os, const uint8_t sha[32], uint64_t *size, struct errbuf *eb)
{
	return os->ops->stat(os, sha, size, eb);
}

int objstore_verify(struct objstore *os, const uint8_t sha[32], struct errbuf *eb)
{
	return os->ops->verify(os, sha, eb);
}

int objstore_remove(struct objstore *os, const uint8_t sha[32], struct errbuf *eb)
{
	return os->ops->remove(os, sha, eb);
}

int objstore_list(struct objstore *os, objstore_list_fn fn, void *opaque, struct errbuf *eb)
{
	return os->ops->list(os, fn, opaque, eb);
}

int objstore_read_ranges(struct objstore *os, const uint8_t sha[32], struct objstore_range *r,
			 size_t n, struct errbuf *eb)
{
	return os->ops->read_ranges(os, sha, r, n, eb);
}

int objstore_read_stream(struct objstore *os, const uint8_t sha[32], uint64_t offset,
			 uint64_t len, objstore_data_fn fn, void *opaque, struct errbuf *eb)
{
	return os->ops->read_stream(os, sha, offset, len, fn, opaque, eb);
}
