/*
 * daemon_failures.c - a small ring of the daemon's latest import
 * failures (path, why, when), read by the API for /v1/imports, and their
 * counts by reason for /metrics.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "wallclock.h"

void daemon_failures_init(struct daemon_failures *f)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
}

void daemon_failures_destroy(struct daemon_failures *f)
{
	pthread_mutex_destroy(&f->lock);
}

/* A handful of reasons an operator acts on differently: fix the sender
 * (malformed), the disk (io), make room (no_space), the permissions. */
static enum api_import_reason reason_of(int err)
{
	switch (err) {
	case -EINVAL: return API_IMPORT_MALFORMED;
	case -EIO: return API_IMPORT_IO;
	case -ENOSPC:
	case -EDQUOT: return API_IMPORT_NO_SPACE;
	case -EACCES:
	case -EPERM:
	case -EROFS: return API_IMPORT_PERMISSION;
	default: return API_IMPORT_OTHER;
	}
}

void daemon_failures_note(struct daemon_failures *f, const char *path, const char *why, int err)
{
	atomic_fetch_add(&f->by_reason[reason_of(err)], 1);
	uint64_t now_ns = wall_ns();
	pthread_mutex_lock(&f->lock);
	struct daemon_failure *e = &f->v[f->next];
	snprintf(e->path, sizeof(e->path), "%s", path);
	snprintf(e->error, sizeof(e->error), "%s", why);
	e->time_ns = now_ns;
	f->next = (f->next + 1) % DAEMON_FAILURES_KEPT;
	if (f->n < DAEMON_FAILURES_KEPT)
		f->n++;
	pthread_mutex_unlock(&f->lock);
}

size_t daemon_failures_copy(struct daemon_failures *f, struct daemon_failure *out, size_t max)
{
	pthread_mutex_lock(&f->lock);
	size_t n = f->n < max ? f->n : max;
	for (size_t i = 0; i < n; i++)
		out[i] = f->v[(f->next + DAEMON_FAILURES_KEPT - 1 - i) % DAEMON_FAILURES_KEPT];
	pthread_mutex_unlock(&f->lock);
	return n;
}
