/*
 * session.h - the web viewer's login sessions, kept in the daemon's
 * memory only (a restart logs everyone out).
 *
 * A session is a random id (the cookie's value, 256 bits) naming the
 * token it was opened with, a CSRF token (256 bits, which every change
 * made with the cookie must echo in X-CSRF-Token) and an expiry. The
 * token's secret is kept so that every request checks it again: revoking
 * the token ends its sessions at once. Ids and CSRF tokens are compared
 * in constant time. The store holds at most SESSION_MAX sessions; a new
 * one past that replaces the one closest to its expiry.
 */
#ifndef CAPVAULT_SESSION_H
#define CAPVAULT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokens.h"

#define SESSION_ID_LEN 64   /* hex digits */
#define SESSION_MAX 4096
#define SESSION_TTL_S (12 * 3600)

struct session_store;

/* What a request's cookie names. */
struct session {
	char secret[TOKEN_SECRET_MAX];
	char csrf[SESSION_ID_LEN + 1];
	uint64_t expires_s; /* CLOCK_REALTIME seconds, as of when it was read */
};

int session_store_new(struct session_store **out);
struct session_store *session_store_free(struct session_store *s);

/* Opens a session for the token secret, lasting ttl_s seconds. Writes its
 * id (SESSION_ID_LEN hex digits and a NUL) and fills *out. Returns 0, or
 * -ENOMEM, -EIO (no randomness). */
int session_open(struct session_store *s, const char *secret, uint64_t ttl_s,
		 char id[SESSION_ID_LEN + 1], struct session *out);
/* Copies the live session named id into *out. Returns 0, or -ENOENT (no
 * such session, or it expired: then it is removed). */
int session_get(struct session_store *s, const char *id, struct session *out);
/* Ends the session named id (none: nothing happens). */
void session_close(struct session_store *s, const char *id);
/* True when a and b (NUL-terminated) are equal, in time independent of
 * where they differ. */
bool session_token_equal(const char *a, const char *b);
/* Wipes a copy of a session. */
void session_clear(struct session *ss);

#endif
