/*
 * objstore.h - where an object's bytes live: one interface, two backends.
 *
 * The local backend is the content-addressed store (store.h); the S3
 * backend keeps the same objects in a bucket of an S3-compatible store
 * (Ceph RGW, MinIO, AWS S3) under "<prefix>objects/ab/<sha256 hex>",
 * through libcurl with its own SigV4 signing (CURLOPT_AWS_SIGV4). Objects
 * are named by their SHA-256, so a key never changes its bytes: a put of
 * an existing key is a no-op, and dedup and integrity carry over.
 *
 * Errors are negative errnos with eb naming the backend, the object and,
 * for S3, the request and its HTTP status. Never a credential:
 *   -ENOENT     no such object (404, NoSuchKey or no body)
 *   -ENXIO      no such bucket (S3: 404 NoSuchBucket): a failure, not "gone"
 *   -EACCES     refused (401, 403)
 *   -ETIMEDOUT  no answer within the configured timeout
 *   -ECONNREFUSED / -EHOSTUNREACH  the store is down or unreachable
 *   -EIO        5xx, a short or malformed answer, or bytes that do not
 *               hash to the object's name
 *   -EPROTO     TLS failed: the store's certificate is not verified
 * The backend functions are safe to call from several threads at once.
 */
#ifndef CAPVAULT_OBJSTORE_H
#define CAPVAULT_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

struct objstore;
struct store;

/* What a zero or NULL field of objstore_s3_config below means; the
 * object_store section of the configuration (config/config_schema.c)
 * builds its default strings from these, so the two cannot drift apart.
 * Plain numbers: the schema stringifies them. */
#define OBJSTORE_REGION_DEFAULT "us-east-1"
#define OBJSTORE_CONNECT_TIMEOUT_S_DEFAULT 10
#define OBJSTORE_REQUEST_TIMEOUT_S_DEFAULT 30
#define OBJSTORE_MAX_INFLIGHT_DEFAULT 16
#define OBJSTORE_PART_MIB_DEFAULT 32
#define OBJSTORE_PART_DEFAULT ((uint64_t)OBJSTORE_PART_MIB_DEFAULT << 20)
/* object_store.cache_size: the read-through cache (objcache.h) */
#define OBJSTORE_CACHE_GIB_DEFAULT 10
#define OBJSTORE_CACHE_DEFAULT ((uint64_t)OBJSTORE_CACHE_GIB_DEFAULT << 30)

struct objstore_s3_config {
	const char *endpoint;   /* "https://host[:port]"; http:// too (tests on loopback) */
	const char *bucket;
	const char *region;     /* SigV4 scope; NULL: OBJSTORE_REGION_DEFAULT */
	const char *access_key; /* from credentials_file/profile or AWS_ACCESS_KEY_ID */
	const char *secret_key;
	const char *prefix;     /* key prefix, "" when NULL */
	const char *ca_file;    /* NULL: the system's CAs; TLS is always verified */
	uint32_t connect_timeout_ms; /* 0: OBJSTORE_CONNECT_TIMEOUT_S_DEFAULT */
	uint32_t request_timeout_ms; /* whole request, for queries' fail-fast;
				      * 0: OBJSTORE_REQUEST_TIMEOUT_S_DEFAULT */
	uint32_t max_inflight;       /* concurrent requests of one read_ranges call;
				      * 0: OBJSTORE_MAX_INFLIGHT_DEFAULT */
	/* Added for the S3 backend's own reading of credentials (s3cred.h):
	 * used when access_key is NULL. The environment's
	 * AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY win over the file. */
	const char *credentials_file; /* AWS shared-credentials format */
	const char *profile;          /* its section; "default" when NULL */
	uint64_t part_size;           /* multipart above this (max_inflight parts at once);
				       * 0: OBJSTORE_PART_DEFAULT; 5 MiB to 5 GiB */
	uint32_t list_page;           /* keys per list request; 0: the store's (1000) */
	/* Added for fail-fast reads without stalling uploads: each range read
	 * and stat fails past it, a streamed read when no byte moves for it
	 * (queries, downloads). 0: request_timeout_ms. */
	uint32_t read_timeout_ms;
	/* How often credentials_file is looked at for renewed keys (it is read
	 * again when it changed); 0: 10 s. */
	uint32_t cred_recheck_ms;
};

int objstore_s3_new(struct objstore **out, const struct objstore_s3_config *cfg,
		    struct errbuf *eb);
/* The local store as a backend (does not own st). */
int objstore_local_new(struct objstore **out, struct store *st, struct errbuf *eb);
/* The store folder root as a backend, opened (and made when missing, if
 * its parent exists) at its first use and again at each use until that
 * works, so a folder missing at start is a state (objstore_health), not
 * a failure. Fails only when out of memory. */
int objstore_local_open(struct objstore **out, const char *root, struct errbuf *eb);
/* Accepts NULL; returns NULL. */
struct objstore *objstore_free(struct objstore *os);
/* "s3://bucket/prefix at https://host" or "local store /path": for
 * messages and status. Never holds a credential. */
const char *objstore_describe(const struct objstore *os);
/* Why a call failed, for a message that names the store itself: eb's
 * message without the backend's leading "<description>: ", or err's
 * strerror when eb holds none. */
const char *objstore_reason(const struct objstore *os, const struct errbuf *eb, int err);

/*
 * Stores the size bytes fd holds from offset 0 as object sha (multipart
 * above the backend's part size, in bounded memory), then confirms the
 * stored object's size and SHA-256 (by the store's checksum support or by
 * reading it back) before returning 0. An object already stored with the
 * right size and hash is confirmed and left alone.
 */
int objstore_put(struct objstore *os, const uint8_t sha[32], int fd, uint64_t size,
		 struct errbuf *eb);

/*
 * objstore_put, also handing out what tier.c records of the object's
 * blocks when the put hashes the whole local copy anyway (S3's multipart
 * upload, which checks it against the name): that hash's chaining state
 * after each whole block (blockdig.h), to states->emit, per_emit at a time
 * with the number of the first block they follow. states->complete says,
 * once the put returned 0, that every state went out and the bytes they
 * were made of hashed to the name; otherwise (an object the store held
 * already, a single PUT, a backend that does not hash) the caller makes
 * them itself. A nonzero emit fails the put. objstore_put_chains says
 * whether a put of size bytes the store does not hold yet hands them out.
 */
typedef int (*objstore_states_fn)(void *opaque, uint64_t first_block, const uint8_t *states,
				  size_t n);
struct objstore_states {
	objstore_states_fn emit;
	void *opaque;
	size_t per_emit;
	bool complete;
};
int objstore_put_chained(struct objstore *os, const uint8_t sha[32], int fd, uint64_t size,
			 struct objstore_states *states, struct errbuf *eb);
bool objstore_put_chains(struct objstore *os, uint64_t size);
/* Size of the stored object; -ENOENT when absent. */
int objstore_stat(struct objstore *os, const uint8_t sha[32], uint64_t *size,
		  struct errbuf *eb);
/* Re-reads the whole object and checks its SHA-256 against its name:
 * 0, or -EIO (eb) when it does not match. Bounded memory. */
int objstore_verify(struct objstore *os, const uint8_t sha[32], struct errbuf *eb);
/* Removes the object; 0 also when it was already absent. */
int objstore_remove(struct objstore *os, const uint8_t sha[32], struct errbuf *eb);

/*
 * Which vault the objects under this store's prefix belong to. Keys carry
 * no owner, so two vaults given one bucket and prefix would each remove
 * objects the other uses. Once an owner is set (a vault's id), the first
 * put or remove claims the prefix for it: it reads the key
 * "<prefix>" OBJSTORE_OWNER_KEY, writes it when absent, and fails with
 * -EEXIST (eb naming the store and both vaults) when it names another
 * vault; so does every later put and remove. A store that could not be
 * asked is asked again at the next one. Reads are never refused.
 */
#define OBJSTORE_OWNER_KEY "capvault-vault"
#define OBJSTORE_OWNER_MAX 64
void objstore_set_owner(struct objstore *os, const char *owner);
/*
 * An object the owner's catalog says is in this store (up to
 * OBJSTORE_WITNESSES, set before the first put or remove). A claim that
 * finds no owner key asks for them, and when the store has none of them
 * refuses (-ENXIO, eb naming the store and the object) to claim the
 * prefix: the config then names another endpoint, bucket or prefix than
 * the one the vault's objects went to (a restore given the wrong one,
 * say), where moving more objects would split the vault and removals
 * would miss. A vault older than the owner key finds its objects and
 * claims as before.
 */
#define OBJSTORE_WITNESSES 4
void objstore_add_witness(struct objstore *os, const uint8_t sha[32]);
/* The owner key's value, its first line, into buf (shown as "an
 * unreadable value" when it holds anything but printable ASCII): 0,
 * -ENOENT when the store has none, or the store's error (eb). */
int objstore_owner(struct objstore *os, char *buf, size_t len, struct errbuf *eb);
/* The claim on its own (fsck --remote --repair asks it before removing). */
int objstore_claim(struct objstore *os, struct errbuf *eb);

/*
 * The store's state, for status and metrics: what the latest exchange
 * with it came to, whoever made it (objstore_check at start, then every
 * request of the mover, the readers and the cache). The S3 backend also
 * looks at its credentials file: one that changed and cannot be used
 * makes the state "refused" although the older keys still work.
 */
enum objstore_state {
	OBJSTORE_UNKNOWN,     /* nothing asked yet */
	OBJSTORE_OK,          /* it answered (a missing object is an answer) */
	OBJSTORE_UNREACHABLE, /* no connection, a timeout, TLS failed, 5xx */
	OBJSTORE_REFUSED,     /* 401/403 or an unusable credentials file;
			       * local: the folder is not writable */
	OBJSTORE_NO_BUCKET,   /* 404 NoSuchBucket; local: no such folder */
	OBJSTORE_STATES
};
struct objstore_health {
	enum objstore_state state;
	char error[sizeof(((struct errbuf *)0)->msg)]; /* why not ok; "" when ok */
	int64_t since_ns;   /* Unix time the state began; 0: never asked */
	int64_t checked_ns; /* Unix time of the latest exchange; 0: none */
};
/* "unknown", "ok", "unreachable", "refused", "no_bucket". */
const char *objstore_state_name(enum objstore_state s);
void objstore_health(struct objstore *os, struct objstore_health *out);
/*
 * One cheap request that needs what the tier needs: S3, a signed GET of
 * the owner key (absent is fine: the bucket answered, the keys were
 * taken); local, the folder exists (made when missing) and a file can be
 * made in it. 0 or the error (eb); either way the state says it.
 */
int objstore_check(struct objstore *os, struct errbuf *eb);
/* Called after each change of state, from the thread whose request
 * changed it (no lock held), with the state before and the new one. */
typedef void (*objstore_health_fn)(void *opaque, enum objstore_state before,
				   const struct objstore_health *now);
void objstore_set_health_hook(struct objstore *os, objstore_health_fn fn, void *opaque);

/* Every key under the backend's objects/: sha is NULL for a key that is
 * not an object name (a stray, which fsck reports), key is the key
 * relative to the prefix. Nonzero from fn stops and is returned. */
typedef int (*objstore_list_fn)(void *opaque, const uint8_t *sha, const char *key,
				uint64_t size);
int objstore_list(struct objstore *os, objstore_list_fn fn, void *opaque, struct errbuf *eb);

/* One byte range of an object to read into buf. */
struct objstore_range {
	uint64_t offset;
	uint32_t len;
	void *buf;
};
/*
 * Fills every range (sorted by offset or not): adjacent or near ranges are
 * merged into one request, up to max_inflight requests run at once, and
 * memory beyond the callers' buffers stays bounded. Returns 0 or the
 * first error.
 */
int objstore_read_ranges(struct objstore *os, const uint8_t sha[32], struct objstore_range *r,
			 size_t n, struct errbuf *eb);
/* Streams [offset, offset + len) of the object to fn in chunks, in
 * bounded memory (len UINT64_MAX: to the end). Nonzero from fn stops and
 * is returned. */
typedef int (*objstore_data_fn)(void *opaque, const void *buf, size_t len);
int objstore_read_stream(struct objstore *os, const uint8_t sha[32], uint64_t offset,
			 uint64_t len, objstore_data_fn fn, void *opaque, struct errbuf *eb);

#endif
