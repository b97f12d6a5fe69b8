/*
 * daemon_queue.c - capvaultd's work queue: a bounded FIFO of ready files,
 * a set of the paths queued or being imported (so the watcher reporting a
 * file twice never imports it twice at once), and a list of files parked
 * after a transient error until their back-off has passed.
 *
 * A report of a path already in flight is not dropped: the name may
 * already be another file (renamed over the one being imported), so the
 * path is queued once more when its worker is done.
 *
 * One mutex guards everything; the critical sections are a few pointer
 * moves, never I/O.
 */
#include "daemon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monoclock.h"

#define SET_BUCKETS 1024u
#define RETRY_MAX_MS 60000u

struct set_node {
	char *path;
	bool again; /* reported again while in flight */
	struct set_node *next;
};

struct daemon_queue {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct daemon_item *ring[DAEMON_QUEUE_MAX];
	unsigned head, len;
	struct daemon_item *parked;
	struct set_node *set[SET_BUCKETS];
	atomic_uint length;
	bool stopped;
};

static unsigned path_hash(const char *s)
{
	unsigned h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % SET_BUCKETS;
}

static struct set_node *set_get(struct daemon_queue *q, const char *path)
{
	for (struct set_node *n = q->set[path_hash(path)]; n; n = n->next)
		if (!strcmp(n->path, path))
			return n;
	return NULL;
}

static void set_del(struct daemon_queue *q, const char *path)
{
	for (struct set_node **p = &q->set[path_hash(path)]; *p; p = &(*p)->next) {
		if (!strcmp((*p)->path, path)) {
			struct set_node *n = *p;
			*p = n->next;
			free(n->path);
			free(n);
			return;
		}
	}
}

static void item_free(struct daemon_item *it)
{
	if (!it)
		return;
	free(it->path);
	free(it->rel_dir);
	free(it->claim);
	free(it->claim_at);
	if (it->claim_dir >= 0)
		close(it->claim_dir);
	free(it->error);
	free(it);
}

int daemon_queue_new(struct daemon_queue **out)
{
	struct daemon_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	*out = q;
	return 0;
}

struct daemon_queue *daemon_queue_free(struct daemon_queue *q)
{
	if (!q)
		return NULL;
	for (unsigned i = 0; i < q->len; i++)
		item_free(q->ring[(q->head + i) % DAEMON_QUEUE_MAX]);
	while (q->parked) {
		struct daemon_item *it = q->parked;
		q->parked = it->next;
		item_free(it);
	}
	for (unsigned b = 0; b < SET_BUCKETS; b++)
		while (q->set[b])
			set_del(q, q->set[b]->path);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	free(q);
	return NULL;
}

/* Called with the lock held; the item's path is already in the set. */
static void enqueue_locked(struct daemon_queue *q, struct daemon_item *it)
{
	q->ring[(q->head + q->len) % DAEMON_QUEUE_MAX] = it;
	q->len++;
	atomic_store(&q->length, q->len);
	pthread_cond_signal(&q->cond);
}

static struct daemon_item *item_new(struct daemon_folder *f, const char *path, const char *rel_dir,
				    const char *claim)
{
	struct daemon_item *it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	it->folder = f;
	it->claim_dir = -1;
	it->path = strdup(path);
	it->rel_dir = strdup(rel_dir ? rel_dir : "");
	it->claim = claim ? strdup(claim) : NULL;
	if (!it->path || !it->rel_dir || (claim && !it->claim)) {
		item_free(it);
		return NULL;
	}
	return it;
}

int daemon_queue_push(struct daemon_queue *q, struct daemon_folder *f, const char *path,
		      const char *rel_dir, const char *claim)
{
	int rc = 0;
	pthread_mutex_lock(&q->lock);
	struct set_node *known = set_get(q, path);
	if (known) {
		known->again = true;
		rc = 1;
	} else if (q->len >= DAEMON_QUEUE_MAX) {
		rc = -ENOSPC;
	} else {
		struct daemon_item *it = item_new(f, path, rel_dir, claim);
		struct set_node *n = calloc(1, sizeof(*n));
		if (!it || !n || !(n->path = strdup(path))) {
			item_free(it);
			free(n);
			rc = -ENOMEM;
		} else {
			unsigned b = path_hash(path);
			n->next = q->set[b];
			q->set[b] = n;
			enqueue_locked(q, it);
		}
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

struct daemon_item *daemon_queue_pop(struct daemon_queue *q)
{
	struct daemon_item *it = NULL;
	pthread_mutex_lock(&q->lock);
	while (!q->stopped && q->len == 0)
		pthread_cond_wait(&q->cond, &q->lock);
	if (!q->stopped) {
		it = q->ring[q->head];
		q->head = (q->head + 1) % DAEMON_QUEUE_MAX;
		q->len--;
		atomic_store(&q->length, q->len);
	}
	pthread_mutex_unlock(&q->lock);
	return it;
}

static void park_locked(struct daemon_queue *q, struct daemon_item *it)
{
	it->next = q->parked;
	q->parked = it;
}

/* A path reported again while in flight is looked at once more, as a
 * new file: parked due now, so a full queue cannot lose it. */
void daemon_queue_done(struct daemon_queue *q, struct daemon_item *it)
{
	pthread_mutex_lock(&q->lock);
	struct set_node *n = set_get(q, it->path);
	bool again = n && n->again && !q->stopped;
	if (again) {
		n->again = false;
		it->attempts = 0; /* a new file, or the one given up on (gave_up kept) */
		it->not_before_ms = 0;
		free(it->error);
		it->error = NULL;
		park_locked(q, it);
	} else if (n) {
		set_del(q, it->path);
	}
	pthread_mutex_unlock(&q->lock);
	if (again)
		daemon_queue_promote(q);
	else
		item_free(it);
}

void daemon_queue_retry(struct daemon_queue *q, struct daemon_item *it, const char *why)
{
	unsigned shift = it->attempts < 7 ? it->attempts : 7;
	uint64_t delay = 1000u << shift;
	char *copy = why ? strdup(why) : NULL;
	if (copy) {
		free(it->error);
		it->error = copy;
	}
	it->attempts++;
	it->not_before_ms = mono_ms() + (delay < RETRY_MAX_MS ? delay : RETRY_MAX_MS);
	pthread_mutex_lock(&q->lock);
	park_locked(q, it);
	pthread_mutex_unlock(&q->lock);
}

unsigned daemon_queue_parked(struct daemon_queue *q,
			     void (*fn)(void *ctx, const struct daemon_item *it), void *ctx)
{
	unsigned n = 0;
	pthread_mutex_lock(&q->lock);
	for (const struct daemon_item *it = q->parked; it; it = it->next, n++)
		if (fn)
			fn(ctx, it);
	pthread_mutex_unlock(&q->lock);
	return n;
}

/* A parked item stays parked while the queue is full: it is in the set,
 * so it cannot be lost, only delayed. */
void daemon_queue_promote(struct daemon_queue *q)
{
	uint64_t now = mono_ms();
	pthread_mutex_lock(&q->lock);
	for (struct daemon_item **p = &q->parked; *p;) {
		struct daemon_item *it = *p;
		if (it->not_before_ms <= now && q->len < DAEMON_QUEUE_MAX) {
			*p = it->next;
			it->next = NULL;
			enqueue_locked(q, it);
		} else {
			p = &it->next;
		}
	}
	pthread_mutex_unlock(&q->lock);
}

void daemon_queue_retry_now(struct daemon_queue *q)
{
	pthread_mutex_lock(&q->lock);
	for (struct daemon_item *it = q->parked; it; it = it->next)
		it->not_before_ms = 0;
	pthread_mutex_unlock(&q->lock);
	daemon_queue_promote(q);
}

void daemon_queue_stop(struct daemon_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->stopped = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

unsigned daemon_queue_length(struct daemon_queue *q)
{
	return atomic_load(&q->length);
}
