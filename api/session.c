/*
 * session.c - the viewer's login sessions: a fixed-size table under one
 * lock, looked up by a linear scan. SESSION_MAX is small enough that a
 * scan costs less than the token check every request makes anyway.
 */
#include "session.h"
#include "monoclock.h"
#include "wallclock.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
	char id[SESSION_ID_LEN + 1]; /* "" when free */
	struct session s;
	/* CLOCK_MONOTONIC ms: a ttl is elapsed time, so a step of the time
	 * of day (a clock that was a year ahead set right) neither stretches
	 * nor cuts it; s.expires_s is filled from it when read. */
	uint64_t expires_ms;
};

struct session_store {
	pthread_mutex_t lock;
	struct slot slots[SESSION_MAX];
};

int session_store_new(struct session_store **out)
{
	struct session_store *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

struct session_store *session_store_free(struct session_store *s)
{
	if (!s)
		return NULL;
	OPENSSL_cleanse(s->slots, sizeof(s->slots));
	pthread_mutex_destroy(&s->lock);
	free(s);
	return NULL;
}

static int random_hex(char out[SESSION_ID_LEN + 1])
{
	unsigned char raw[SESSION_ID_LEN / 2];
	if (RAND_bytes(raw, (int)sizeof(raw)) != 1)
		return -EIO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

bool session_token_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	return la == lb && CRYPTO_memcmp(a, b, la) == 0;
}

void session_clear(struct session *ss)
{
	OPENSSL_cleanse(ss, sizeof(*ss));
}

/* A free or expired slot, else the one that expires first. Under lock. */
static struct slot *pick_slot(struct session_store *s, uint64_t now)
{
	struct slot *best = &s->slots[0];
	for (size_t i = 0; i < SESSION_MAX; i++) {
		struct slot *sl = &s->slots[i];
		if (!sl->id[0] || sl->expires_ms <= now)
			return sl;
		if (sl->expires_ms < best->expires_ms)
			best = sl;
	}
	return best;
}

int session_open(struct session_store *s, const char *secret, uint64_t ttl_s,
		 char id[SESSION_ID_LEN + 1], struct session *out)
{
	struct session ss = { 0 };
	if (strlen(secret) >= sizeof(ss.secret))
		return -EINVAL;
	if (random_hex(id) < 0 || random_hex(ss.csrf) < 0)
		return -EIO;
	memcpy(ss.secret, secret, strlen(secret) + 1);
	uint64_t now = mono_ms();
	ss.expires_s = wall_s() + ttl_s;
	pthread_mutex_lock(&s->lock);
	struct slot *sl = pick_slot(s, now);
	OPENSSL_cleanse(sl, sizeof(*sl));
	memcpy(sl->id, id, SESSION_ID_LEN + 1);
	sl->s = ss;
	sl->expires_ms = now + ttl_s * 1000u;
	pthread_mutex_unlock(&s->lock);
	*out = ss;
	session_clear(&ss);
	return 0;
}

/* The slot named id, or NULL. Under lock. */
static struct slot *find_slot(struct session_store *s, const char *id)
{
	if (strlen(id) != SESSION_ID_LEN)
		return NULL;
	for (size_t i = 0; i < SESSION_MAX; i++)
		if (s->slots[i].id[0] && CRYPTO_memcmp(s->slots[i].id, id, SESSION_ID_LEN) == 0)
			return &s->slots[i];
	return NULL;
}

int session_get(struct session_store *s, const char *id, struct session *out)
{
	int err = -ENOENT;
	pthread_mutex_lock(&s->lock);
	struct slot *sl = find_slot(s, id);
	uint64_t now = mono_ms();
	if (sl && sl->expires_ms > now) {
		*out = sl->s;
		out->expires_s = wall_s() + (sl->expires_ms - now) / 1000u;
		err = 0;
	} else if (sl) {
		OPENSSL_cleanse(sl, sizeof(*sl));
	}
	pthread_mutex_unlock(&s->lock);
	return err;
}

void session_close(struct session_store *s, const char *id)
{
	pthread_mutex_lock(&s->lock);
	struct slot *sl = find_slot(s, id);
	if (sl)
		OPENSSL_cleanse(sl, sizeof(*sl));
	pthread_mutex_unlock(&s->lock);
}
