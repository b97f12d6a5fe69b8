/*
 * daemon_tier.c - capvaultd's tier mover (see daemon.h and index/tier.h).
 *
 * One thread, so that a move and a removal of the same object never run
 * at once: a removal is only decided (tier_remove_remote) when no move is
 * under way, and a move re-reads the catalog first. POST /v1/tier moves
 * under the same lock. Removals are queued from the catalog's hook, under
 * the catalog lock: pushing only takes this queue's lock. The catalog
 * also keeps each removal until it is done, so one that a stop, a full
 * queue or a store that stayed down left undone is queued at the next
 * start (tier_resume).
 *
 * A failed job goes back to the queue's end with a back-off doubling from
 * TIER_BACKOFF_MIN_MS to TIER_BACKOFF_MAX_MS; a job whose object went
 * meanwhile (-ENOENT) or is no longer where the move expects (-ESTALE) is
 * done.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "daemon.h"
#include "log.h"
#include "monoclock.h"
#include "objstore.h"
#include "objstore_config.h"
#include "store.h"
#include "tier.h"
#include "vault.h"

#define TIER_BACKOFF_MIN_MS 500u
#define TIER_BACKOFF_MAX_MS 60000u

struct daemon_tier_job {
	uint8_t sha[32];
	uint64_t size;
	bool remove;
	unsigned attempts;
	uint64_t not_before_ms;
};

const double api_tier_latency_bounds[API_TIER_LAT_BUCKETS] = { 0.01, 0.05, 0.1, 0.5,
							      1,    5,    30,  120 };

_Static_assert(API_TIER_ERRORS == 6, "daemon_tier.errors counts enum api_tier_error");
_Static_assert(API_TIER_LAT_BUCKETS + 1 == 9, "daemon_tier.put_lat has the histogram's slots");

/* The errno and message of objstore.h as a kind. -EIO is a server error
 * unless the bytes were the trouble. */
static enum api_tier_error error_kind(int err, const char *msg)
{
	switch (err) {
	case -ETIMEDOUT:
		return API_TIER_TIMEOUT;
	case -ECONNREFUSED:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -ECONNRESET:
		return API_TIER_REFUSED;
	case -EACCES:
	case -EPERM:
		return API_TIER_FORBIDDEN;
	case -EIO:
		return strstr(msg, "hash") || strstr(msg, "SHA-256") ? API_TIER_HASH :
								       API_TIER_SERVER;
	default:
		return API_TIER_OTHER;
	}
}

/* The configuration's object_store; else, for tests and trials, a second
 * store folder (CAPVAULT_OBJSTORE_DIR) through the local backend, so the
 * tier's ordering is exercised without an S3 server. Neither is asked
 * anything here: a store that is down or refuses is a state
 * (store_check), and imports go on locally meanwhile. */
static int open_objstore(struct daemon_tier *t, const struct config *cfg, struct errbuf *eb)
{
	const char *dir = getenv("CAPVAULT_OBJSTORE_DIR");

	if (cfg->object_store.enabled)
		return objstore_from_config(&t->os, &cfg->object_store, eb);
	if (!dir || !*dir)
		return 0;
	return objstore_local_open(&t->os, dir, eb);
}

/* The store's state changed (objstore.h): a line for each change after
 * the first, which store_check reports. Any thread, no lock held. */
static void store_changed(void *opaque, enum objstore_state before,
			  const struct objstore_health *now)
{
	struct daemon_tier *t = opaque;
	struct errbuf why = { "" };

	if (before == OBJSTORE_UNKNOWN)
		return;
	snprintf(why.msg, sizeof(why.msg), "%s", now->error);
	if (now->state == OBJSTORE_OK)
		log_info("tier: object store %s: ok again (was %s)", objstore_describe(t->os),
			 objstore_state_name(before));
	else
		log_warnx("tier: object store %s: %s (was %s): %s", objstore_describe(t->os),
			  objstore_state_name(now->state), objstore_state_name(before),
			  objstore_reason(t->os, &why, -EIO));
}

/* One request to the store: at start, off the start's path (the mover's
 * thread, before its first job), so a misspelt bucket or a refused key
 * shows now, in the log and in status, not at the first move hours
 * later; then every DAEMON_TIER_CHECK_MS when no job is due, so the
 * state stays current without traffic (a changed credentials file, a
 * store back up). Only the first is logged here: store_changed logs each
 * change. */
static void store_check(struct daemon_tier *t, bool first)
{
	struct errbuf eb = { "" };
	struct objstore_health h;

	int r = objstore_check(t->os, &eb);
	if (!first)
		return;
	objstore_health(t->os, &h);
	if (h.error[0])
		snprintf(eb.msg, sizeof(eb.msg), "%s", h.error);
	if (h.state == OBJSTORE_OK)
		log_info("tier: object store %s: ok", objstore_describe(t->os));
	else
		log_warnx("tier: object store %s: %s: %s; imports go on locally, moves wait for "
			  "it", objstore_describe(t->os), objstore_state_name(h.state),
			  objstore_reason(t->os, &eb, r < 0 ? r : -EIO));
}

/* Under lock. */
static int push_locked(struct daemon_tier *t, const struct daemon_tier_job *job)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->jobs[i].remove == job->remove && !memcmp(t->jobs[i].sha, job->sha, 32))
			return 1;
	if (t->n == DAEMON_TIER_QUEUE_MAX) {
		t->dropped++;
		return -ENOSPC;
	}
	t->jobs[t->n++] = *job;
	if (!job->remove)
		t->queue_bytes += job->size;
	pthread_cond_signal(&t->cond);
	return 0;
}

int daemon_tier_push(struct daemon_tier *t, const uint8_t sha[32], uint64_t size)
{
	struct daemon_tier_job job = { .size = size };

	if (!t->os)
		return -ENODEV;
	memcpy(job.sha, sha, 32);
	pthread_mutex_lock(&t->lock);
	int r = push_locked(t, &job);
	pthread_mutex_unlock(&t->lock);
	return r;
}

/* The catalog's hook (under the catalog lock): the last capture of a
 * remote object went. */
static int push_removal(void *opaque, const uint8_t sha[32])
{
	struct daemon_tier *t = opaque;
	struct daemon_tier_job job = { .remove = true };
	char hex[65];

	memcpy(job.sha, sha, 32);
	pthread_mutex_lock(&t->lock);
	int r = push_locked(t, &job);
	pthread_mutex_unlock(&t->lock);
	if (r < 0) {
		sha256_hex(sha, hex);
		log_warnx("tier: object %s: remote copy not removed yet (the tier queue is full); "
			  "its removal is retried at the next start", hex);
	}
	return r < 0 ? r : 0;
}

enum pop { POP_STOP, POP_JOB, POP_CHECK };

/* The first job whose time has come, taken off the queue; POP_CHECK when
 * none is due before check_ms (mono) has come; POP_STOP on stop. Under
 * lock. */
static enum pop pop_locked(struct daemon_tier *t, struct daemon_tier_job *out, uint64_t check_ms)
{
	while (!t->stop) {
		uint64_t now = mono_ms(), next = check_ms;
		if (now < t->hold_until_ms) {
			if (t->hold_until_ms < next)
				next = t->hold_until_ms;
			goto wait;
		}
		for (size_t i = 0; i < t->n; i++) {
			if (t->jobs[i].not_before_ms <= now) {
				*out = t->jobs[i];
				memmove(&t->jobs[i], &t->jobs[i + 1], (t->n - i - 1) * sizeof(*t->jobs));
				t->n--;
				if (!out->remove)
					t->queue_bytes -= out->size;
				return POP_JOB;
			}
			if (t->jobs[i].not_before_ms < next)
				next = t->jobs[i].not_before_ms;
		}
	wait:
		if (check_ms <= now)
			return POP_CHECK;
		struct timespec until = mono_deadline((next - now) * 1000000u);
		pthread_cond_timedwait(&t->cond, &t->lock, &until);
	}
	return POP_STOP;
}

static void observe_put(struct daemon_tier *t, uint64_t us)
{
	size_t b = 0;

	while (b < API_TIER_LAT_BUCKETS && (double)us / 1e6 > api_tier_latency_bounds[b])
		b++;
	t->put_lat[b]++;
	t->put_lat_sum_us += us;
}

/* One job, under the move lock; counts it. Returns its outcome. */
static int run_job(struct daemon_tier *t, const struct daemon_tier_job *job, uint64_t *bytes,
		   struct errbuf *eb)
{
	uint64_t start = mono_ms();
	int r;

	*bytes = 0;
	pthread_mutex_lock(&t->move);
	if (job->remove)
		r = tier_remove_remote(t->vault, t->os, job->sha, eb);
	else
		r = tier_object(t->vault, t->os, job->sha, bytes, eb);
	pthread_mutex_unlock(&t->move);
	pthread_mutex_lock(&t->lock);
	if (!job->remove && r != -ENOENT && r != -ESTALE && r != TIER_ALREADY)
		observe_put(t, (mono_ms() - start) * 1000);
	if (r == 0 && job->remove) {
		t->removed_objects++;
	} else if (r == 0) {
		t->tiered_objects++;
		t->tiered_bytes += *bytes;
	} else if (r < 0 && r != -ENOENT && r != -ESTALE) {
		t->errors[error_kind(r, eb->msg)]++;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

/* The back-off after n failures: 0.5 s, doubling, at most a minute. */
static uint64_t backoff_ms(unsigned n)
{
	uint64_t ms = (uint64_t)TIER_BACKOFF_MIN_MS << (n < 7 ? n : 7);
	return ms < TIER_BACKOFF_MAX_MS ? ms : TIER_BACKOFF_MAX_MS;
}

/*
 * After a job: a store whose state is not ok once a job failed (down,
 * frozen, refusing the keys, no bucket) holds the whole queue, so that a
 * thousand queued moves do not each wait out request_timeout against it
 * (and capvault tier, which takes the move lock, behind them); a job
 * that succeeds, or the minute's check finding it ok, ends the hold.
 */
static void hold_update(struct daemon_tier *t, bool job_failed)
{
	struct objstore_health h;

	objstore_health(t->os, &h);
	bool store_ok = h.state == OBJSTORE_OK || h.state == OBJSTORE_UNKNOWN;
	pthread_mutex_lock(&t->lock);
	if (store_ok) {
		t->hold_until_ms = 0;
		t->holds = 0;
	} else if (job_failed) {
		t->hold_until_ms = mono_ms() + backoff_ms(t->holds);
		t->holds++;
	}
	pthread_mutex_unlock(&t->lock);
}

static void retry(struct daemon_tier *t, struct daemon_tier_job *job, const char *why)
{
	char hex[65];

	job->not_before_ms = mono_ms() + backoff_ms(job->attempts);
	job->attempts++;
	sha256_hex(job->sha, hex);
	pthread_mutex_lock(&t->lock);
	t->retries++;
	int r = push_locked(t, job);
	pthread_mutex_unlock(&t->lock);
	/* Warned at attempts 1, 2, 4, 8...: a store down for hours with a
	 * full queue would otherwise log a line for every job every minute
	 * (4096 a minute); the state's changes are logged apart, and every
	 * attempt at debug level. */
	const char *what = r >= 0 ? "retrying" : job->remove ?
			   "the queue is full: retried at the next start" :
			   "the queue is full: dropped";
	if (r < 0 || (job->attempts & (job->attempts - 1)) == 0)
		log_warnx("tier: %s object %s failed (attempt %u): %s; %s%s",
			  job->remove ? "removing" : "moving", hex, job->attempts, why, what,
			  r >= 0 && job->attempts > 1 ? " (warned again at attempt twice this one)"
						      : "");
	else
		log_debug("tier: %s object %s failed (attempt %u): %s; %s",
			  job->remove ? "removing" : "moving", hex, job->attempts, why, what);
}

/* One job: run, logged, retried when it failed. */
static void do_job(struct daemon_tier *t, struct daemon_tier_job *job)
{
	struct errbuf eb = { { 0 } };
	uint64_t bytes = 0;
	char hex[65];
	int r = run_job(t, job, &bytes, &eb);

	sha256_hex(job->sha, hex);
	if (r == 0 && !job->remove)
		log_info("tiered object %s (%" PRIu64 " bytes) to %s", hex, bytes,
			 objstore_describe(t->os));
	else if (r == 0)
		log_info("removed remote object %s: no capture references it", hex);
	else if (r == TIER_KEPT)
		log_info("kept remote object %s: a capture references it again", hex);
	else if (r < 0 && r != -ENOENT && r != -ESTALE)
		retry(t, job, eb.msg[0] ? eb.msg : strerror(-r));
	hold_update(t, r < 0 && r != -ENOENT && r != -ESTALE);
}

static void *mover(void *arg)
{
	struct daemon_tier *t = arg;
	struct daemon_tier_job job;
	enum pop got;

	store_check(t, true);
	uint64_t check_ms = mono_ms() + DAEMON_TIER_CHECK_MS;
	pthread_mutex_lock(&t->lock);
	while ((got = pop_locked(t, &job, check_ms)) != POP_STOP) {
		pthread_mutex_unlock(&t->lock);
		if (got == POP_JOB) {
			do_job(t, &job);
		} else {
			store_check(t, false);
			hold_update(t, false);
			check_ms = mono_ms() + DAEMON_TIER_CHECK_MS;
		}
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

static int resume_push(void *opaque, const uint8_t sha[32], uint64_t size)
{
	int r = daemon_tier_push(opaque, sha, size);
	return r < 0 && r != -ENOSPC ? r : 0;
}

/* A removal that a stop or a full queue left pending (the catalog keeps
 * it, catalog.h), queued as the catalog's hook queues one; one that does
 * not fit now waits for the next start, and the walk goes on. */
static int resume_removal(void *opaque, const uint8_t sha[32])
{
	push_removal(opaque, sha);
	return 0;
}

int daemon_tier_start(struct daemon_tier *t, struct vault *v, const struct config *cfg,
		      struct errbuf *eb)
{
	uint64_t fixed = 0;

	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->move, NULL);
	mono_cond_init(&t->cond);
	t->vault = v;
	int err = open_objstore(t, cfg, eb);
	if (err < 0 || !t->os)
		return err;
	objstore_set_health_hook(t->os, store_changed, t);
	t->jobs = calloc(DAEMON_TIER_QUEUE_MAX, sizeof(*t->jobs));
	if (!t->jobs)
		return errbuf_set(eb, -ENOMEM, "tier queue: %s", strerror(ENOMEM));
	vault_set_objstore(v, t->os);
	vault_set_remote_release(v, push_removal, t);
	err = tier_resume(v, t->os, resume_push, resume_removal, t, &fixed, eb);
	size_t removals = 0;
	for (size_t i = 0; i < t->n; i++)
		removals += t->jobs[i].remove;
	if (err < 0)
		log_warnx("tier: finishing interrupted moves: %s (retried at the next start)",
			  eb->msg);
	else if (fixed || t->n)
		log_info("tier: %" PRIu64 " object records fixed, %zu interrupted moves and %zu "
			 "pending removals of remote copies to finish", fixed, t->n - removals,
			 removals);
	errbuf_clear(eb);
	err = pthread_create(&t->thread, NULL, mover, t);
	if (err)
		return errbuf_set(eb, -err, "tier mover: %s", strerror(err));
	t->started = true;
	log_info("tier: object store %s", objstore_describe(t->os));
	return 0;
}

void daemon_tier_stop(struct daemon_tier *t)
{
	if (t->started) {
		pthread_mutex_lock(&t->lock);
		t->stop = true;
		pthread_cond_broadcast(&t->cond);
		pthread_mutex_unlock(&t->lock);
		pthread_join(t->thread, NULL);
		t->started = false;
	}
	if (t->vault && t->os) {
		vault_set_remote_release(t->vault, NULL, NULL);
		vault_set_objstore(t->vault, NULL);
	}
	t->os = objstore_free(t->os);
	free(t->jobs);
	t->jobs = NULL;
	if (t->vault) {
		pthread_mutex_destroy(&t->lock);
		pthread_mutex_destroy(&t->move);
		pthread_cond_destroy(&t->cond);
		t->vault = NULL;
	}
}

bool daemon_tier_enabled(struct daemon_tier *t)
{
	return t->os != NULL;
}

bool daemon_tier_store_up(struct daemon_tier *t)
{
	struct objstore_health h;

	if (!t->os)
		return false;
	objstore_health(t->os, &h);
	/* Not asked yet (retention's first run at start can come before the
	 * store's first answer): counted up, as a move that then fails only
	 * puts the choice off to the next run, which knows. */
	return h.state == OBJSTORE_OK || h.state == OBJSTORE_UNKNOWN;
}

int daemon_tier_now(struct daemon_tier *t, const uint8_t sha[32], uint64_t *bytes,
		    struct errbuf *eb)
{
	struct daemon_tier_job job = { 0 };

	if (!t->os)
		return errbuf_set(eb, -ENODEV, "no object store is configured (object_store:)");
	memcpy(job.sha, sha, 32);
	return run_job(t, &job, bytes, eb);
}

void daemon_tier_stats(struct daemon_tier *t, struct api_tier_stats *out)
{
	*out = (struct api_tier_stats){ .enabled = t->os != NULL };
	if (!t->os)
		return;
	pthread_mutex_lock(&t->lock);
	out->queue_length = t->n;
	out->queue_bytes = t->queue_bytes;
	out->tiered_objects = t->tiered_objects;
	out->tiered_bytes = t->tiered_bytes;
	out->removed_objects = t->removed_objects;
	out->retries = t->retries;
	out->dropped = t->dropped;
	memcpy(out->errors, t->errors, sizeof(out->errors));
	memcpy(out->put_lat, t->put_lat, sizeof(out->put_lat));
	out->put_lat_sum_us = t->put_lat_sum_us;
	pthread_mutex_unlock(&t->lock);
	struct objstore_health h;
	objstore_health(t->os, &h);
	out->store_state = objstore_state_name(h.state);
	out->store_up = h.state == OBJSTORE_OK;
	snprintf(out->store_error, sizeof(out->store_error), "%s", h.error);
	out->store_since_ns = h.since_ns > 0 ? (uint64_t)h.since_ns : 0;
	out->store_checked_ns = h.checked_ns > 0 ? (uint64_t)h.checked_ns : 0;
}
