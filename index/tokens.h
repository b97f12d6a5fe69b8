/*
 * tokens.h - API tokens, kept in the database (meta column family, keys
 * "token:" + SHA-256 of the secret).
 *
 * A token's secret is random (OpenSSL RAND_bytes: 256 bits, or 128 bits
 * for the 32-hex-digit CloudShark form), handed to the caller once at
 * creation and never stored: only its SHA-256 is. Checking a secret
 * hashes it, looks the hash up and compares in constant time. Each token
 * has a unique name, scopes and optional default tags that uploads made
 * with it receive.
 */
#ifndef CAPVAULT_TOKENS_H
#define CAPVAULT_TOKENS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

struct db;

enum token_scope {
	TOKEN_SCOPE_READ = 1u << 0,
	TOKEN_SCOPE_UPLOAD = 1u << 1,
	TOKEN_SCOPE_DELETE = 1u << 2,
	TOKEN_SCOPE_ADMIN = 1u << 3, /* implies every other scope */
};

/* Long enough for either secret form and its NUL. */
#define TOKEN_SECRET_MAX 80
#define TOKEN_NAME_MAX 64

struct token_info {
	char name[TOKEN_NAME_MAX + 1];
	unsigned scopes;
	char **tags;
	size_t ntags;
	uint64_t created_ns;
	bool cloudshark;
};

/* Parses "read,upload,..." into scope bits. Returns 0 or -EINVAL (eb). */
int token_scopes_parse(const char *list, unsigned *scopes, struct errbuf *eb);
/* Writes "read,upload" for the bits into buf; returns buf. */
char *token_scopes_format(unsigned scopes, char *buf, size_t size);
/* True when the token's scopes grant `need` (admin grants everything). */
bool token_allows(const struct token_info *t, unsigned need);

/*
 * Creates a token. Names are 1-64 bytes of [A-Za-z0-9._@-]; tags must be
 * valid catalog tags. The secret (64 hex digits, or 32 when cloudshark)
 * goes to secret. Returns 0, -EEXIST when the name is taken, -EINVAL (eb)
 * or another negative errno.
 */
int token_add(struct db *db, const char *name, unsigned scopes, const char *const *tags,
	      size_t ntags, bool cloudshark, char secret[TOKEN_SECRET_MAX], struct errbuf *eb);

/* Checks a secret. Returns 0 with *out (free with token_info_free), or
 * -EACCES for an unknown secret, or another negative errno. */
int token_verify(struct db *db, const char *secret, struct token_info **out);

/*
 * Verified tokens for a server that sees the same few tokens on call after
 * call (a token check is a hash, a database read and two JSON parses). An
 * entry lives at most TOKEN_CACHE_TTL_MS; token_cache_clear drops them all
 * and must follow every revocation made through the cache's owner. Only
 * valid tokens are kept, keyed by the secret's SHA-256. Thread-safe.
 */
#define TOKEN_CACHE_TTL_MS 2000
struct token_cache;
int token_cache_new(struct token_cache **out);
struct token_cache *token_cache_free(struct token_cache *c);
void token_cache_clear(struct token_cache *c);
/* token_verify, answered from the cache when it holds the secret. */
int token_verify_cached(struct token_cache *c, struct db *db, const char *secret,
			struct token_info **out);

/* Calls fn for each token (in hash order); nonzero from fn stops and is
 * returned. */
typedef int (*token_fn)(void *opaque, const struct token_info *t);
int token_foreach(struct db *db, token_fn fn, void *opaque);

/* Deletes the token named name. Returns 0, -ENOENT, or a negative errno. */
int token_revoke(struct db *db, const char *name, struct errbuf *eb);

/*
 * A token as the API lists it and `capvault token ls` prints it, never
 * with its hash: {"name", "scopes": ["read", ...], "created": RFC 3339 UTC
 * to the second, "tags": [...], "cloudshark"}. NULL when out of memory.
 */
json_t *token_info_json(const struct token_info *t);

struct token_info *token_info_free(struct token_info *t);

#endif
