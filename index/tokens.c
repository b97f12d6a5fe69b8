/*
 * tokens.c - API tokens (see tokens.h).
 *
 * Value of "token:" + sha256(secret): JSON {name, scopes, tags,
 * created_ns, cloudshark, sha256}. The lookup is by hash, so the secret
 * itself never reaches RocksDB; the stored hash is compared again with
 * CRYPTO_memcmp so that no byte-by-byte comparison of attacker-chosen
 * input happens in our code.
 */
#include "tokens.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "cleanup.h"
#include "db.h"
#include "monoclock.h"
#include "store.h"
#include "wallclock.h"
#include "textesc.h"

#define KEY_PREFIX "token:"
#define KEY_PREFIX_LEN (sizeof(KEY_PREFIX) - 1)
#define KEY_LEN (KEY_PREFIX_LEN + 32)

static const char *const scope_names[] = { "read", "upload", "delete", "admin" };

int token_scopes_parse(const char *list, unsigned *scopes, struct errbuf *eb)
{
	*scopes = 0;
	const char *p = list;
	while (*p) {
		size_t len = strcspn(p, ",");
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(scope_names); i++) {
			if (len == strlen(scope_names[i]) && !strncmp(p, scope_names[i], len)) {
				*scopes |= 1u << i;
				known = true;
			}
		}
		if (!known)
			return errbuf_set(eb, -EINVAL, "unknown scope '%.*s' (read, upload, delete, admin)",
					  (int)len, p);
		p += len + (p[len] == ',');
	}
	if (!*scopes)
		return errbuf_set(eb, -EINVAL, "no scopes given (read, upload, delete, admin)");
	return 0;
}

char *token_scopes_format(unsigned scopes, char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(scope_names) && used < size; i++)
		if (scopes & (1u << i))
			used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "," : "",
						 scope_names[i]);
	return buf;
}

bool token_allows(const struct token_info *t, unsigned need)
{
	return (t->scopes & TOKEN_SCOPE_ADMIN) || (t->scopes & need) == need;
}

static bool name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > TOKEN_NAME_MAX)
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@-") ==
	       len;
}

/* md: a fetched SHA-256, or NULL for the implicitly fetched one. */
static int hash_secret(const char *secret, const EVP_MD *md, uint8_t key[KEY_LEN])
{
	unsigned n = 0;
	memcpy(key, KEY_PREFIX, KEY_PREFIX_LEN);
	if (!EVP_Digest(secret, strlen(secret), key + KEY_PREFIX_LEN, &n, md ? md : EVP_sha256(),
			NULL) ||
	    n != 32)
		return -EIO;
	return 0;
}

struct token_info *token_info_free(struct token_info *t)
{
	if (!t)
		return NULL;
	for (size_t i = 0; i < t->ntags; i++)
		free(t->tags[i]);
	free(t->tags);
	free(t);
	return NULL;
}

static int info_from_json(const void *buf, size_t len, struct token_info **out)
{
	json_t *o = json_loadb(buf, len, 0, NULL);
	struct token_info *t = calloc(1, sizeof(*t));
	json_t *tags = json_object_get(o, "tags");
	int err = -EIO;
	if (!o || !t || !json_is_string(json_object_get(o, "name")))
		goto out;
	snprintf(t->name, sizeof(t->name), "%s", json_string_value(json_object_get(o, "name")));
	t->scopes = (unsigned)json_integer_value(json_object_get(o, "scopes"));
	t->created_ns = (uint64_t)json_integer_value(json_object_get(o, "created_ns"));
	t->cloudshark = json_is_true(json_object_get(o, "cloudshark"));
	t->tags = calloc(json_array_size(tags) + 1, sizeof(*t->tags));
	if (!t->tags)
		goto out;
	for (size_t i = 0; i < json_array_size(tags); i++) {
		const char *s = json_string_value(json_array_get(tags, i));
		if (s && !(t->tags[t->ntags++] = strdup(s)))
			goto out;
	}
	*out = t;
	t = NULL;
	err = 0;
out:
	token_info_free(t);
	json_decref(o);
	return err;
}

/* The stored hash must equal ours; checked in constant time. */
static bool stored_hash_matches(const void *val, size_t vlen, const uint8_t *hash)
{
	json_t *o = json_loadb(val, vlen, 0, NULL);
	uint8_t stored[32];
	const char *hex = json_string_value(json_object_get(o, "sha256"));
	bool ok = hex && sha256_parse(hex, stored) == 0 && CRYPTO_memcmp(stored, hash, 32) == 0;
	json_decref(o);
	return ok;
}

static bool secret_plausible(const char *secret)
{
	return secret && *secret && strlen(secret) < TOKEN_SECRET_MAX;
}

/* token_verify after the hashing. */
static int verify_key(struct db *db, const uint8_t key[KEY_LEN], struct token_info **out)
{
	_cleanup_free_ void *val = NULL;
	size_t vlen = 0;
	int err = db_get(db, DB_CF_META, key, KEY_LEN, &val, &vlen);
	if (err == -ENOENT)
		return -EACCES;
	if (err)
		return err;
	if (!stored_hash_matches(val, vlen, key + KEY_PREFIX_LEN))
		return -EACCES;
	return info_from_json(val, vlen, out);
}

int token_verify(struct db *db, const char *secret, struct token_info **out)
{
	uint8_t key[KEY_LEN];
	*out = NULL;
	if (!secret_plausible(secret))
		return -EACCES;
	int err = hash_secret(secret, NULL, key);
	return err ? err : verify_key(db, key, out);
}

/* ---- the cache ---- */

#define TOKEN_CACHE_SLOTS 16

struct token_cache_slot {
	uint8_t hash[32];
	struct token_info *info; /* NULL: empty */
	uint64_t expires_ms;
};

struct token_cache {
	pthread_mutex_t lock;
	EVP_MD *sha256; /* fetched once: the implicit fetch costs a lookup per call */
	uint64_t generation; /* bumped by clear, so a check racing it does not refill */
	struct token_cache_slot slots[TOKEN_CACHE_SLOTS];
};

static struct token_info *info_clone(const struct token_info *t)
{
	struct token_info *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	*c = *t;
	c->ntags = 0;
	c->tags = calloc(t->ntags + 1, sizeof(*c->tags));
	if (!c->tags)
		return token_info_free(c);
	for (size_t i = 0; i < t->ntags; i++)
		if (!(c->tags[c->ntags++] = strdup(t->tags[i])))
			return token_info_free(c);
	return c;
}

int token_cache_new(struct token_cache **out)
{
	struct token_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!c->sha256) {
		free(c);
		return -EIO;
	}
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

static void slots_clear(struct token_cache *c)
{
	for (size_t i = 0; i < TOKEN_CACHE_SLOTS; i++)
		c->slots[i].info = token_info_free(c->slots[i].info);
}

struct token_cache *token_cache_free(struct token_cache *c)
{
	if (!c)
		return NULL;
	slots_clear(c);
	EVP_MD_free(c->sha256);
	pthread_mutex_destroy(&c->lock);
	free(c);
	return NULL;
}

void token_cache_clear(struct token_cache *c)
{
	pthread_mutex_lock(&c->lock);
	slots_clear(c);
	c->generation++;
	pthread_mutex_unlock(&c->lock);
}

/* A copy of the cached token of hash, or NULL (also when out of memory). */
static struct token_info *cache_lookup(struct token_cache *c, const uint8_t hash[32],
				       uint64_t *generation)
{
	struct token_cache_slot *s = &c->slots[hash[0] % TOKEN_CACHE_SLOTS];
	struct token_info *found = NULL;
	pthread_mutex_lock(&c->lock);
	*generation = c->generation;
	if (s->info && s->expires_ms > mono_ms() && CRYPTO_memcmp(s->hash, hash, 32) == 0)
		found = info_clone(s->info);
	pthread_mutex_unlock(&c->lock);
	return found;
}

static void cache_store(struct token_cache *c, const uint8_t hash[32], uint64_t generation,
			const struct token_info *t)
{
	struct token_cache_slot *s = &c->slots[hash[0] % TOKEN_CACHE_SLOTS];
	struct token_info *copy = info_clone(t);
	pthread_mutex_lock(&c->lock);
	if (copy && generation == c->generation) {
		token_info_free(s->info);
		memcpy(s->hash, hash, 32);
		s->info = copy;
		s->expires_ms = mono_ms() + TOKEN_CACHE_TTL_MS;
		copy = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	token_info_free(copy);
}

int token_verify_cached(struct token_cache *c, struct db *db, const char *secret,
			struct token_info **out)
{
	uint8_t key[KEY_LEN];
	uint64_t generation;
	*out = NULL;
	if (!secret_plausible(secret))
		return -EACCES;
	int err = hash_secret(secret, c->sha256, key);
	if (err)
		return err;
	const uint8_t *hash = key + KEY_PREFIX_LEN;
	if ((*out = cache_lookup(c, hash, &generation)))
		return 0;
	err = verify_key(db, key, out);
	if (!err)
		cache_store(c, hash, generation, *out);
	return err;
}

json_t *token_info_json(const struct token_info *t)
{
	char created[32];
	time_t secs = (time_t)(t->created_ns / 1000000000u);
	struct tm tm;
	if (!gmtime_r(&secs, &tm) || !strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(created, sizeof(created), "%" PRIu64, t->created_ns);
	json_t *scopes = json_array(), *tags = json_array();
	for (size_t i = 0; i < ARRAY_SIZE(scope_names); i++)
		if (t->scopes & (1u << i))
			json_array_append_new(scopes, json_string(scope_names[i]));
	for (size_t i = 0; i < t->ntags; i++)
		json_array_append_new(tags, json_string(t->tags[i]));
	return json_pack("{sssosssosb}", "name", t->name, "scopes", scopes, "created", created,
			 "tags", tags, "cloudshark", t->cloudshark);
}

int token_foreach(struct db *db, token_fn fn, void *opaque)
{
	struct db_iter *it = NULL;
	int err = db_iter_new(db, DB_CF_META, &it);
	if (err)
		return err;
	for (db_iter_seek(it, KEY_PREFIX, KEY_PREFIX_LEN); !err && db_iter_valid(it);
	     db_iter_next(it)) {
		size_t klen, vlen;
		const void *k = db_iter_key(it, &klen);
		if (klen != KEY_LEN || memcmp(k, KEY_PREFIX, KEY_PREFIX_LEN) != 0)
			break;
		const void *v = db_iter_value(it, &vlen);
		struct token_info *t = NULL;
		err = info_from_json(v, vlen, &t);
		if (!err)
			err = fn(opaque, t);
		token_info_free(t);
	}
	db_iter_free(it);
	return err;
}

/* Finds the key of the token named name. */
static int find_name(struct db *db, const char *name, uint8_t key[KEY_LEN])
{
	struct db_iter *it = NULL;
	int err = db_iter_new(db, DB_CF_META, &it);
	if (err)
		return err;
	err = -ENOENT;
	for (db_iter_seek(it, KEY_PREFIX, KEY_PREFIX_LEN); err == -ENOENT && db_iter_valid(it);
	     db_iter_next(it)) {
		size_t klen, vlen;
		const void *k = db_iter_key(it, &klen);
		if (klen != KEY_LEN || memcmp(k, KEY_PREFIX, KEY_PREFIX_LEN) != 0)
			break;
		const void *v = db_iter_value(it, &vlen);
		json_t *o = json_loadb(v, vlen, 0, NULL);
		const char *n = json_string_value(json_object_get(o, "name"));
		if (n && !strcmp(n, name)) {
			memcpy(key, k, KEY_LEN);
			err = 0;
		}
		json_decref(o);
	}
	db_iter_free(it);
	return err;
}

static int check_new_token(struct db *db, const char *name, unsigned scopes,
			   const char *const *tags, size_t ntags, struct errbuf *eb)
{
	uint8_t key[KEY_LEN];
	char shown[160];
	if (!name_valid(name))
		return errbuf_set(eb, -EINVAL,
				  "bad token name '%s': 1-64 characters of A-Z a-z 0-9 . _ @ -",
				  text_shown(name, shown, sizeof(shown)));
	if (!scopes || scopes >= 1u << ARRAY_SIZE(scope_names))
		return errbuf_set(eb, -EINVAL, "bad scopes");
	for (size_t i = 0; i < ntags; i++)
		if (!catalog_tag_valid(tags[i]))
			return errbuf_set(eb, -EINVAL, "bad tag '%s'",
					  text_shown(tags[i], shown, sizeof(shown)));
	int err = find_name(db, name, key);
	if (err == 0)
		return errbuf_set(eb, -EEXIST, "a token named '%s' exists already", name);
	return err == -ENOENT ? 0 : errbuf_set(eb, err, "reading tokens: %s", strerror(-err));
}

static json_t *token_json(const char *name, unsigned scopes, const char *const *tags,
			  size_t ntags, bool cloudshark, const uint8_t *hash)
{
	char hex[65];
	sha256_hex(hash, hex);
	json_t *jtags = json_array();
	for (size_t i = 0; i < ntags; i++)
		json_array_append_new(jtags, json_string(tags[i]));
	return json_pack("{sssIsosIsoss}", "name", name, "scopes", (json_int_t)scopes, "tags", jtags,
			 "created_ns",
			 (json_int_t)wall_ns(),
			 "cloudshark", json_boolean(cloudshark), "sha256", hex);
}

static int make_secret(bool cloudshark, char secret[TOKEN_SECRET_MAX])
{
	uint8_t raw[32];
	size_t n = cloudshark ? 16 : 32;
	if (RAND_bytes(raw, (int)n) != 1)
		return -EIO;
	for (size_t i = 0; i < n; i++)
		snprintf(secret + 2 * i, 3, "%02x", raw[i]);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int token_add(struct db *db, const char *name, unsigned scopes, const char *const *tags,
	      size_t ntags, bool cloudshark, char secret[TOKEN_SECRET_MAX], struct errbuf *eb)
{
	uint8_t key[KEY_LEN];
	struct db_batch *b = NULL;
	int err = check_new_token(db, name, scopes, tags, ntags, eb);
	if (err)
		return err;
	if ((err = make_secret(cloudshark, secret)) || (err = hash_secret(secret, NULL, key)))
		return errbuf_set(eb, err, "no random bytes for the token");
	json_t *o = token_json(name, scopes, tags, ntags, cloudshark, key + KEY_PREFIX_LEN);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text || db_batch_new(&b) < 0) {
		free(text);
		return errbuf_set(eb, -ENOMEM, "out of memory");
	}
	db_batch_put(b, DB_CF_META, key, sizeof(key), text, strlen(text));
	err = db_write(db, b, true, eb);
	db_batch_free(b);
	free(text);
	return err;
}

int token_revoke(struct db *db, const char *name, struct errbuf *eb)
{
	uint8_t key[KEY_LEN];
	struct db_batch *b = NULL;
	int err = find_name(db, name, key);
	if (err == -ENOENT)
		return errbuf_set(eb, err, "no token named '%s'", name);
	if (err)
		return errbuf_set(eb, err, "reading tokens: %s", strerror(-err));
	if ((err = db_batch_new(&b)) < 0)
		return errbuf_set(eb, err, "out of memory");
	db_batch_delete(b, DB_CF_META, key, sizeof(key));
	err = db_write(db, b, true, eb);
	db_batch_free(b);
	return err;
}
