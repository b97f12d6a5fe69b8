/*
 * daemon_scrub.c - capvaultd's scrub (invariant 6: a published object
 * never changes, and a scheduled scrub proves it): every scrub.interval,
 * on a thread of its own, every object is re-hashed against its name, at
 * most scrub.rate bytes a second so imports and queries keep the disk.
 *
 * Promises:
 * - A corrupt object is logged, moved to quarantine/ (fsck_quarantine:
 *   under the catalog lock, only if it is still the file hashed) and its
 *   captures tagged capvault:damaged; no object is ever deleted.
 * - An object that cannot be read is logged and counted as corrupt, and
 *   left in place (the fault may pass).
 * - The end of the last complete pass is kept in <store>/scrub.last, so a
 *   daemon restarted more often than the interval still scrubs.
 * - Stopping (daemon_scrub_stop) interrupts a pass within one read.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "daemon.h"
#include "fsck.h"
#include "log.h"
#include "monoclock.h"
#include "ring.h"
#include "store.h"
#include "vault.h"
#include "wallclock.h"

#define SCRUB_STATE_FILE "scrub.last"

/* End of the last complete pass, from <store>/scrub.last; 0 if none. */
static uint64_t read_last_end(const char *store)
{
	char path[4096];
	unsigned long long ns = 0;
	snprintf(path, sizeof(path), "%s/" SCRUB_STATE_FILE, store);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

/* Written beside and renamed, so a crash leaves the old time or the new. */
static void write_last_end(const char *store, uint64_t ns)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/" SCRUB_STATE_FILE, store);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	FILE *f = fopen(tmp, "we");
	bool ok = f && fprintf(f, "%" PRIu64 "\n", ns) > 0;
	if (f && fclose(f) != 0)
		ok = false;
	if (!ok || rename(tmp, path) < 0) {
		log_warn("scrub: cannot record the pass in %s", path);
		unlink(tmp);
	}
}

/* Keeps the pass at or below the rate; false once stopping. Called with
 * the lock held. */
static bool pace_locked(struct daemon_scrub *s)
{
	for (;;) {
		if (s->stop)
			return false;
		uint64_t rate = s->rate ? s->rate : 1;
		uint64_t due_ms = s->pass_bytes * 1000u / rate;
		uint64_t now = mono_ms() - s->pass_start_ms;
		if (due_ms <= now)
			return true;
		struct timespec until = mono_deadline((due_ms - now) * 1000000u);
		pthread_cond_timedwait(&s->cond, &s->lock, &until);
	}
}

static int scrub_pace(void *opaque, size_t len)
{
	struct daemon_scrub *s = opaque;
	pthread_mutex_lock(&s->lock);
	bool go = pace_locked(s);
	s->pass_bytes += len;
	s->bytes_total += len;
	pthread_mutex_unlock(&s->lock);
	return go ? 0 : -ECANCELED;
}

static void found_corrupt(struct daemon_scrub *s, const uint8_t sha[32], const struct fsck_hash *h)
{
	char hex[65], got[65];
	struct errbuf eb = { { 0 } };
	uint64_t captures = 0;
	sha256_hex(sha, hex);
	sha256_hex(h->got, got);
	int r = fsck_quarantine(s->vault, sha, h, &captures, &eb);
	if (r == -ESTALE || r == -ENOENT) {
		log_info("scrub: object %s hashed to %s but was replaced meanwhile", hex, got);
		return;
	}
	pthread_mutex_lock(&s->lock);
	s->pass_corrupt++;
	if (s->pass_corrupt > s->corrupt)
		s->corrupt = s->pass_corrupt;
	s->quarantined_total += r >= 0;
	pthread_mutex_unlock(&s->lock);
	if (r == FSCK_REMOTE_KEPT)
		log_warnx("scrub: object %s is corrupt (its bytes hash to %s): its local copy moved "
			  "to %s/quarantine/; its copy in the object store is the one recorded now",
			  hex, got, store_root(vault_store(s->vault)));
	else if (r == 0)
		log_warnx("scrub: object %s is corrupt (its bytes hash to %s): moved to "
			  "%s/quarantine/, %" PRIu64 " captures tagged " FSCK_DAMAGED_TAG
			  "; import the same bytes again to restore them", hex, got,
			  store_root(vault_store(s->vault)), captures);
	else
		log_warnx("scrub: object %s is corrupt (its bytes hash to %s); cannot quarantine "
			  "it: %s", hex, got, eb.msg[0] ? eb.msg : strerror(-r));
}

static int scrub_object(void *opaque, const uint8_t sha[32], uint64_t size)
{
	struct daemon_scrub *s = opaque;
	struct fsck_hash h = { 0 };
	char hex[65];
	(void)size;
	int r = fsck_hash_object(vault_store(s->vault), s->ring, sha, &h, scrub_pace, s);
	if (r == -ECANCELED)
		return r;
	pthread_mutex_lock(&s->lock);
	s->objects_total += r != -ENOENT;
	s->pass_objects += r != -ENOENT;
	if (r < 0 && r != -ENOENT && ++s->pass_corrupt > s->corrupt)
		s->corrupt = s->pass_corrupt;
	pthread_mutex_unlock(&s->lock);
	if (r == 1)
		found_corrupt(s, sha, &h);
	else if (r < 0 && r != -ENOENT) { /* -ENOENT: pruned meanwhile */
		sha256_hex(sha, hex);
		log_warnx("scrub: object %s: cannot read it: %s", hex, strerror(-r));
	}
	return 0;
}

/* One pass over every object. */
static void scrub_pass(struct daemon_scrub *s)
{
	pthread_mutex_lock(&s->lock);
	s->running = true;
	s->pass_start_ms = mono_ms();
	s->pass_bytes = s->pass_objects = s->pass_corrupt = 0;
	pthread_mutex_unlock(&s->lock);
	log_info("scrub: started");
	int r = store_foreach_object(vault_store(s->vault), scrub_object, s);
	uint64_t end = wall_ns();
	pthread_mutex_lock(&s->lock);
	s->running = false;
	bool complete = r == 0;
	if (complete) {
		s->corrupt = s->pass_corrupt;
		s->last_objects = s->pass_objects;
		s->last_end_ns = end;
	}
	s->next_ms = mono_ms() + s->interval_ms;
	uint64_t objects = s->pass_objects, corrupt = s->pass_corrupt, bytes = s->pass_bytes;
	pthread_mutex_unlock(&s->lock);
	if (complete) {
		write_last_end(store_root(vault_store(s->vault)), end);
		log_info("scrub: done: %" PRIu64 " objects, %" PRIu64 " bytes, %" PRIu64 " corrupt",
			 objects, bytes, corrupt);
	} else if (r != -ECANCELED) {
		log_warnx("scrub: pass ended early: %s", strerror(r < 0 ? -r : EIO));
	}
}

static void *scrub_main(void *opaque)
{
	struct daemon_scrub *s = opaque;
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		uint64_t now = mono_ms();
		if (!s->interval_ms || now < s->next_ms) {
			uint64_t wait_ms = s->interval_ms ? s->next_ms - now : 60000u;
			struct timespec until = mono_deadline(wait_ms * 1000000u);
			pthread_cond_timedwait(&s->cond, &s->lock, &until);
			continue;
		}
		pthread_mutex_unlock(&s->lock);
		scrub_pass(s);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* The schedule from the interval and the last pass's end. Lock held. */
static void schedule_locked(struct daemon_scrub *s, uint64_t interval_ns)
{
	s->interval_ms = interval_ns / 1000000u;
	if (interval_ns && !s->interval_ms)
		s->interval_ms = 1;
	uint64_t now_wall = wall_ns(), now = mono_ms();
	/* A pass recorded later than now ended while the clock was ahead:
	 * it counts as ending now, not as putting the next pass that far off. */
	uint64_t last = s->last_end_ns < now_wall ? s->last_end_ns : now_wall;
	uint64_t due_wall = last + interval_ns;
	s->next_ms = due_wall <= now_wall ? now : now + (due_wall - now_wall) / 1000000u;
	pthread_cond_broadcast(&s->cond);
}

int daemon_scrub_start(struct daemon_scrub *s, struct vault *v, const struct config_scrub *cfg)
{
	*s = (struct daemon_scrub){ .vault = v, .rate = cfg->rate };
	int err = ring_new(&s->ring, 4);
	if (err)
		return err;
	pthread_mutex_init(&s->lock, NULL);
	mono_cond_init(&s->cond);
	s->last_end_ns = read_last_end(store_root(vault_store(v)));
	schedule_locked(s, cfg->interval_ns);
	/* Signals stay with the main thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = -pthread_create(&s->thread, NULL, scrub_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		s->ring = ring_free(s->ring);
		return err;
	}
	s->started = true;
	return 0;
}

void daemon_scrub_configure(struct daemon_scrub *s, const struct config_scrub *cfg)
{
	if (!s->started)
		return;
	pthread_mutex_lock(&s->lock);
	s->rate = cfg->rate;
	if (cfg->interval_ns / 1000000u != s->interval_ms)
		schedule_locked(s, cfg->interval_ns);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void daemon_scrub_stop(struct daemon_scrub *s)
{
	if (!s->started)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	s->ring = ring_free(s->ring);
	s->started = false;
}

void daemon_scrub_stats(struct daemon_scrub *s, struct api_scrub_stats *out)
{
	*out = (struct api_scrub_stats){ 0 };
	if (!s->started)
		return;
	pthread_mutex_lock(&s->lock);
	uint64_t now = mono_ms();
	out->enabled = s->interval_ms != 0;
	out->running = s->running;
	out->objects_total = s->objects_total;
	out->bytes_total = s->bytes_total;
	out->quarantined_total = s->quarantined_total;
	out->corrupt = s->corrupt;
	out->last_objects = s->last_objects;
	out->last_end_ns = s->last_end_ns;
	if (out->enabled && !s->running)
		out->next_ns = wall_ns() + (s->next_ms > now ? s->next_ms - now : 0) * 1000000u;
	pthread_mutex_unlock(&s->lock);
}
