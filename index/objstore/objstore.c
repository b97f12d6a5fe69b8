/*
 * objstore.c - dispatch of objstore.h's calls to the backend's table.
 */
#include "objstore_priv.h"

#include <errno.h>
#include <stdio.h>
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
	int r = objstore_claim(os, eb);
	return r < 0 ? r : os->ops->put(os, sha, fd, size, eb);
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
	int r = objstore_claim(os, eb);
	return r < 0 ? r : os->ops->remove(os, sha, eb);
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

void objstore_set_owner(struct objstore *os, const char *owner)
{
	snprintf(os->owner, sizeof(os->owner), "%s", owner);
	atomic_store(&os->claimed, false);
}

/* A value read from the store, fit for a message: up to the first line
 * end, or "an unreadable value" when it holds anything but printable
 * ASCII (the bucket is not ours to trust). */
static const char *shown_owner(char *value)
{
	value[strcspn(value, "\n")] = '\0';
	for (const char *p = value; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return "an unreadable value";
	return value;
}

int objstore_claim(struct objstore *os, struct errbuf *eb)
{
	char found[OBJSTORE_OWNER_MAX + 2] = "", value[OBJSTORE_OWNER_MAX + 1];

	if (!os->owner[0] || !os->ops->owner_get || atomic_load(&os->claimed))
		return 0;
	int r = os->ops->owner_get(os, found, sizeof(found), eb);
	if (r == -ENOENT) {
		errbuf_clear(eb);
		/* Written only when absent, then read back: of two vaults that
		 * claim it at once, the one whose write was refused (or, on a
		 * store without create-only writes, did not stay) finds the
		 * other's. */
		int len = snprintf(value, sizeof(value), "%s\n", os->owner);
		r = os->ops->owner_put(os, value, (size_t)len, eb);
		if (r == -EEXIST)
			errbuf_clear(eb);
		if (r == 0 || r == -EEXIST)
			r = os->ops->owner_get(os, found, sizeof(found), eb);
	}
	if (r < 0)
		return r;
	found[strcspn(found, "\n")] = '\0';
	if (strcmp(found, os->owner) != 0)
		return errbuf_set(eb, -EEXIST,
				  "%s belongs to another vault: its %s key names %s, and this is %s; "
				  "give each vault its own prefix (or bucket)",
				  os->description, OBJSTORE_OWNER_KEY, shown_owner(found), os->owner);
	atomic_store(&os->claimed, true);
	return 0;
}
