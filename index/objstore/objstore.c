/*
 * objstore.c - dispatch of objstore.h's calls to the backend's table.
 */
#include "objstore_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store.h"

void objstore_base_init(struct objstore *os, const struct objstore_ops *ops)
{
	os->ops = ops;
	pthread_mutex_init(&os->watch.lock, NULL);
}

void objstore_base_fini(struct objstore *os)
{
	pthread_mutex_destroy(&os->watch.lock);
}

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

int objstore_put_chained(struct objstore *os, const uint8_t sha[32], int fd, uint64_t size,
			 struct objstore_states *states, struct errbuf *eb)
{
	states->complete = false;
	if (!os->ops->put_chained)
		return objstore_put(os, sha, fd, size, eb);
	int r = objstore_claim(os, eb);
	return r < 0 ? r : os->ops->put_chained(os, sha, fd, size, states, eb);
}

bool objstore_put_chains(struct objstore *os, uint64_t size)
{
	return os->ops->put_chains && os->ops->put_chains(os, size);
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
	os->nwitness = 0;
	atomic_store(&os->claimed, false);
}

void objstore_add_witness(struct objstore *os, const uint8_t sha[32])
{
	if (os->nwitness < OBJSTORE_WITNESSES)
		memcpy(os->witness[os->nwitness++], sha, 32);
}

/* No owner key: 0 when the store holds one of the witnesses (or there are
 * none), -ENXIO when it holds none of them, or the store's error. */
static int witnesses_there(struct objstore *os, struct errbuf *eb)
{
	char hex[65];
	int r = 0;

	for (unsigned i = 0; i < os->nwitness; i++) {
		uint64_t size = 0;
		r = objstore_stat(os, os->witness[i], &size, eb);
		if (r != -ENOENT)
			return r;
	}
	if (r == 0)
		return 0;
	errbuf_clear(eb);
	sha256_hex(os->witness[0], hex);
	char more[48] = "";
	if (os->nwitness > 1)
		snprintf(more, sizeof(more), " (nor %u more it asked for)", os->nwitness - 1);
	return errbuf_set(eb, -ENXIO,
			  "%s has no %s key, nor object %s%s that this vault's catalog says it "
			  "moved there: is this the endpoint, bucket and prefix its objects went "
			  "to? Nothing is moved there or removed from it (if those objects are "
			  "truly gone, remove their captures, which fsck --remote lists; capvaultd "
			  "asks for others when it starts again)",
			  os->description, OBJSTORE_OWNER_KEY, hex, more);
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

int objstore_owner(struct objstore *os, char *buf, size_t len, struct errbuf *eb)
{
	char found[OBJSTORE_OWNER_MAX + 2] = "";

	if (!os->ops->owner_get)
		return -ENOENT;
	int r = os->ops->owner_get(os, found, sizeof(found), eb);
	if (r == 0)
		snprintf(buf, len, "%s", shown_owner(found));
	return r;
}

int objstore_claim(struct objstore *os, struct errbuf *eb)
{
	char found[OBJSTORE_OWNER_MAX + 2] = "", value[OBJSTORE_OWNER_MAX + 1];

	if (!os->owner[0] || !os->ops->owner_get || atomic_load(&os->claimed))
		return 0;
	int r = os->ops->owner_get(os, found, sizeof(found), eb);
	if (r == -ENOENT) {
		errbuf_clear(eb);
		if ((r = witnesses_there(os, eb)) < 0)
			return r;
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

/* ---- the store's state ---- */

const char *objstore_state_name(enum objstore_state s)
{
	static const char *const names[OBJSTORE_STATES] = {
		[OBJSTORE_UNKNOWN] = "unknown",	    [OBJSTORE_OK] = "ok",
		[OBJSTORE_UNREACHABLE] = "unreachable", [OBJSTORE_REFUSED] = "refused",
		[OBJSTORE_NO_BUCKET] = "no_bucket",
	};
	return (unsigned)s < OBJSTORE_STATES ? names[s] : "unknown";
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Under the lock: the state as shown. A refused credentials file wins
 * over requests that still work with the older keys, not over a request
 * that failed otherwise. */
static void shown_locked(const struct objstore_watch *w, struct objstore_health *out)
{
	bool cred = w->cred_error[0] && (w->state == OBJSTORE_OK || w->state == OBJSTORE_UNKNOWN);

	out->state = cred ? OBJSTORE_REFUSED : w->state;
	snprintf(out->error, sizeof(out->error), "%s", cred ? w->cred_error : w->error);
	out->since_ns = w->since_ns;
	out->checked_ns = w->checked_ns;
}

void objstore_health(struct objstore *os, struct objstore_health *out)
{
	pthread_mutex_lock(&os->watch.lock);
	shown_locked(&os->watch, out);
	pthread_mutex_unlock(&os->watch.lock);
}

void objstore_set_health_hook(struct objstore *os, objstore_health_fn fn, void *opaque)
{
	pthread_mutex_lock(&os->watch.lock);
	os->watch.fn = fn;
	os->watch.opaque = opaque;
	pthread_mutex_unlock(&os->watch.lock);
}

/* What to tell the hook once the lock is released. */
struct change {
	objstore_health_fn fn; /* NULL: nothing changed, or no hook */
	void *opaque;
	enum objstore_state before;
	struct objstore_health now;
};

/* Under the lock, after a change of the watch: the shown state's start
 * moves when the state does. */
static void settle_locked(struct objstore_watch *w, struct change *c)
{
	c->fn = NULL;
	c->before = w->shown;
	w->checked_ns = now_ns();
	shown_locked(w, &c->now);
	if (c->now.state == w->shown && w->since_ns)
		return;
	w->shown = c->now.state;
	w->since_ns = c->now.since_ns = w->checked_ns;
	c->fn = w->fn;
	c->opaque = w->opaque;
}

static void notify(const struct change *c)
{
	if (c->fn)
		c->fn(c->opaque, c->before, &c->now);
}

void objstore_note(struct objstore *os, enum objstore_state s, const char *error)
{
	struct objstore_watch *w = &os->watch;
	struct change c;

	pthread_mutex_lock(&w->lock);
	w->state = s;
	snprintf(w->error, sizeof(w->error), "%s", s == OBJSTORE_OK || !error ? "" : error);
	settle_locked(w, &c);
	pthread_mutex_unlock(&w->lock);
	notify(&c);
}

void objstore_note_credentials(struct objstore *os, const char *why)
{
	struct objstore_watch *w = &os->watch;
	struct change c;

	pthread_mutex_lock(&w->lock);
	if (why[0])
		snprintf(w->cred_error, sizeof(w->cred_error),
			 "%s (the keys read before it are still in use)", why);
	else
		w->cred_error[0] = '\0';
	settle_locked(w, &c);
	pthread_mutex_unlock(&w->lock);
	notify(&c);
}

int objstore_check(struct objstore *os, struct errbuf *eb)
{
	if (!os->ops->check)
		return errbuf_set(eb, -EOPNOTSUPP, "%s: no check", os->description);
	return os->ops->check(os, eb);
}
