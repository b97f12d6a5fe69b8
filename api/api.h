/*
 * api.h - capvault's HTTP API server: the native API under /v1/, the
 * CloudShark-compatible API under /api/v1/<token>/, /metrics, on the
 * configured TCP addresses (TLS when a certificate is configured) and on
 * the unix socket (admin without a token; its file mode 0660 is the
 * guard).
 */
#ifndef CAPVAULT_API_H
#define CAPVAULT_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

struct config;
struct vault;
struct api_server;

/* Why an import failed, for capvault_import_failures_total{reason}. */
enum api_import_reason {
	API_IMPORT_MALFORMED,  /* not a capture we can read (moved to the failed folder) */
	API_IMPORT_IO,         /* EIO reading the file or writing the store */
	API_IMPORT_NO_SPACE,   /* ENOSPC, EDQUOT */
	API_IMPORT_PERMISSION, /* EACCES, EPERM, EROFS */
	API_IMPORT_OTHER,
	API_IMPORT_REASONS
};

/* What the daemon's import side has done, for /v1/stats and /metrics. */
struct api_import_stats {
	uint64_t seen, imported, duplicates, failed, bytes, packets;
	uint64_t failed_by[API_IMPORT_REASONS]; /* the failed ones by reason */
	uint64_t retried;      /* transient failures, each followed by a retry */
	uint64_t queue_length;
	uint64_t retrying;     /* files waiting for their retry */
	uint64_t folders;
};

/* One watched folder, for /v1/imports and /v1/status. */
struct api_folder_info {
	const char *path;
	const char *watch;        /* "inotify" or "poll" (what auto chose) */
	const char *after_import; /* "delete", "keep", "move:DIR" */
	bool recursive;
	uint64_t seen, imported, duplicates, failed, bytes, packets, retried;
};

/* One recent import failure. */
struct api_import_failure {
	char path[512];
	char error[512];
	uint64_t time_ns;         /* CLOCK_REALTIME */
};

/* The daemon's scrub (every object re-hashed), for /metrics and /v1/status. */
struct api_scrub_stats {
	bool enabled;             /* scrub.interval is not 0 */
	bool running;             /* a pass is under way */
	uint64_t objects_total;   /* objects hashed since the daemon started */
	uint64_t bytes_total;     /* bytes hashed since the daemon started */
	uint64_t quarantined_total;
	uint64_t corrupt;         /* found by the last pass (the running one, once it found more) */
	uint64_t last_objects;    /* objects the last complete pass hashed */
	uint64_t last_end_ns;     /* end of the last complete pass (CLOCK_REALTIME); 0: none */
	uint64_t next_ns;         /* next pass's start (CLOCK_REALTIME); 0: none planned */
};

/* Why a move to (or removal from) the object store failed, for
 * capvault_tier_errors_total{kind}. */
enum api_tier_error {
	API_TIER_TIMEOUT,   /* no answer in time */
	API_TIER_REFUSED,   /* the store is down or unreachable */
	API_TIER_FORBIDDEN, /* 401, 403 */
	API_TIER_SERVER,    /* 5xx or a malformed answer */
	API_TIER_HASH,      /* the stored bytes did not hash to the object's name */
	API_TIER_OTHER,
	API_TIER_ERRORS
};
/* Upper bounds (seconds) of the put latency histogram's buckets. */
#define API_TIER_LAT_BUCKETS 8
extern const double api_tier_latency_bounds[API_TIER_LAT_BUCKETS];
/* The daemon's tier mover, for /metrics and /v1/status. */
struct api_tier_stats {
	bool enabled;             /* an object store is configured */
	uint64_t queue_length, queue_bytes; /* moves and removals waiting */
	uint64_t tiered_objects, tiered_bytes; /* moved since start */
	uint64_t removed_objects; /* remote copies removed since start */
	uint64_t retries;         /* failures followed by a retry */
	uint64_t dropped;         /* not queued: the queue was full */
	uint64_t errors[API_TIER_ERRORS];
	uint64_t put_lat[API_TIER_LAT_BUCKETS + 1]; /* per bucket, the last +Inf */
	uint64_t put_lat_sum_us;
	/* The object store's state (objstore.h's objstore_health), when
	 * enabled: its name ("unknown", "ok", "unreachable", "refused",
	 * "no_bucket"), why not ok ("" when ok), since when and the latest
	 * exchange (Unix ns, 0: none yet). */
	const char *store_state;
	bool store_up;
	char store_error[512];
	uint64_t store_since_ns, store_checked_ns;
};

/* One file waiting to be retried after a transient failure. */
struct api_import_retry {
	char path[512];
	char error[512];
	unsigned attempts;
};

typedef void (*api_folder_fn)(void *ctx, const struct api_folder_info *f);

struct retention_rules;
struct retention_plan;
/* The retention rules in force, their interval and the next scheduled run
 * (Unix time, ns), for GET /v1/retention. */
typedef void (*api_retention_fn)(void *ctx, const struct retention_rules *rules,
				 uint64_t interval_ns, uint64_t next_run_ns);

/* Optional: how the server reads the daemon's counters. */
struct api_hooks {
	void (*import_stats)(void *opaque, struct api_import_stats *out);
	/* Calls fn for each watched folder. */
	void (*import_folders)(void *opaque, api_folder_fn fn, void *ctx);
	/* Copies up to max recent failures, newest first; returns how many. */
	size_t (*import_failures)(void *opaque, struct api_import_failure *out, size_t max);
	/* Copies up to max files waiting for a retry; returns how many. */
	size_t (*import_retrying)(void *opaque, struct api_import_retry *out, size_t max);
	/* Runs the retention rules in force now; dry_run only plans. Returns
	 * 0 with *out (retention_plan_free), or a negative errno (eb). */
	int (*prune)(void *opaque, bool dry_run, struct retention_plan **out, struct errbuf *eb);
	/* Calls fn with the rules in force (under the daemon's lock). */
	void (*retention)(void *opaque, api_retention_fn fn, void *ctx);
	/* Fills the scrub's state. */
	void (*scrub_stats)(void *opaque, struct api_scrub_stats *out);
	/* Moves object sha to the object store now (between the tier mover's
	 * own moves): 0, a positive TIER_ALREADY (tier.h) or a negative errno
	 * (eb; -ENODEV: no object store configured). */
	int (*tier)(void *opaque, const uint8_t sha[32], uint64_t *bytes, struct errbuf *eb);
	/* Fills the tier mover's state. */
	void (*tier_stats)(void *opaque, struct api_tier_stats *out);
	void *opaque;
};

/*
 * Creates the sockets and starts serving. cfg, v and hooks must outlive
 * the server. Returns 0 or a negative errno (eb names the address).
 */
int api_server_start(struct api_server **out, const struct config *cfg, struct vault *v,
		     const struct api_hooks *hooks, struct errbuf *eb);
/*
 * Applies a reloaded configuration: max_upload_size and the connection
 * limits and timeouts at once, a new TLS certificate and key (read again
 * even when their paths did not change: a renewed certificate replaces
 * the file) from the next handshake on. restart[0..*n) names settings
 * the caller cannot apply; the api's own (api.listen, api.unix_socket,
 * api.tls turned on or off, api.max_connections) are appended, up to
 * max, and the whole list is what GET /v1/status reports. cfg must
 * outlive the server. Returns 0, or a negative errno when the new
 * certificate cannot be used (eb; the old one stays, the rest applies).
 */
int api_server_reload(struct api_server *s, const struct config *cfg, const char **restart,
		      size_t *n, size_t max, struct errbuf *eb);
/* Stops serving (waits for the requests in progress) and removes the
 * unix socket. Accepts NULL; returns NULL. */
struct api_server *api_server_stop(struct api_server *s);

#endif
