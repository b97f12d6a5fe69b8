/*
 * config.h - capvault's YAML configuration, parsed once into an immutable
 * struct config.
 *
 * One YAML file is read (libyaml, wrapped by yaml_tree.c), checked against a
 * schema table (config_schema.c) and turned into a struct config, or into a
 * list of every error found, each "FILE:LINE:COL: message" with 1-based line
 * and column. Nothing is half-loaded: config_load() either hands over a
 * complete, valid config or none at all, so a SIGHUP reload can build the
 * new config fully and swap only on success.
 *
 * Units, fixed here so every reader of struct config agrees:
 *   durations are nanoseconds (uint64_t, field names end in _ns);
 *   sizes are bytes (uint64_t).
 *
 * Paths: in a file, a relative path is relative to the folder holding that
 * file (resolved to an absolute path at load time); in the embedded default
 * and in config_load_buffer() without a base folder, relative paths are kept
 * as written, i.e. relative to the working directory.
 *
 * The struct is public so readers can use its fields directly; treat it as
 * read-only (pass const struct config *) and release it with config_free().
 */
#ifndef CAPVAULT_CONFIG_H
#define CAPVAULT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* A list of strings (tags, globs). */
struct config_strv {
	char **v;
	size_t n;
};

enum config_watch {
	CONFIG_WATCH_AUTO,    /* inotify on local filesystems, polling on NFS/SMB/FUSE */
	CONFIG_WATCH_INOTIFY,
	CONFIG_WATCH_POLL,
};

enum config_after_import {
	CONFIG_AFTER_DELETE, /* default: the vault holds the bytes now */
	CONFIG_AFTER_MOVE,   /* to config_import.move_to */
	CONFIG_AFTER_KEEP,
};

struct config_import {
	char *path;           /* an existing folder */
	bool recursive;
	enum config_watch watch;
	uint64_t poll_interval_ns;
	uint64_t settle_time_ns; /* a file must be unchanged this long */
	struct config_strv ignore; /* fnmatch(3) globs on the file name */
	struct config_strv tags;
	bool tags_from_subfolders;
	enum config_after_import after_import;
	char *move_to;        /* set only for CONFIG_AFTER_MOVE */
	char *failed_folder;  /* default <path>/.failed; the watcher skips it */
};

/* One api.listen entry; host is an IPv4/IPv6 literal or a name, without
 * the brackets an IPv6 address is written with. */
struct config_listen {
	char *host;
	uint16_t port;
};

struct config_api {
	struct config_listen *listen;
	size_t n_listen;
	char *unix_socket;    /* default <store>/capvault.sock */
	char *tls_cert;       /* both NULL, or both set */
	char *tls_key;
	uint64_t max_upload_size;
	unsigned max_connections;
	unsigned max_connections_per_ip; /* TCP; 0: no limit */
	uint64_t timeout_ns;             /* idle */
	uint64_t header_timeout_ns;      /* for a request's headers, in all */
	/* In every body_timeout, a request body must bring body_min_rate
	 * bytes per second (at least one byte). */
	uint64_t body_timeout_ns;
	uint64_t body_min_rate;
};

enum config_age_by {
	CONFIG_AGE_BY_IMPORT,      /* when the capture was imported */
	CONFIG_AGE_BY_LAST_PACKET, /* timestamp of its last packet */
};

struct config_policy {
	char *name;
	struct config_strv tags; /* all must match; empty matches any */
	char *folder;            /* import folder it came from, or NULL */
	bool has_max_age;
	uint64_t max_age_ns;
	enum config_age_by age_by;
	bool has_max_count;
	uint64_t max_count;
	bool allow_empty;        /* set when max_age or max_count is 0 */
	bool has_tier_after;
	uint64_t tier_after_ns;  /* moved to the object store once this old */
};

struct config_retention {
	uint64_t interval_ns;
	char *protect_tag;        /* captures with this tag are never pruned */
	uint64_t max_total_size;  /* 0: no limit */
	uint64_t local_max_size;  /* local copies above it are tiered, oldest first; 0: none */
	uint64_t min_free_bytes;  /* at most one of these two is non-zero */
	unsigned min_free_percent;
	struct config_policy *policies;
	size_t n_policies;
};

/* The daemon's scrub: every object re-hashed against its name. */
struct config_scrub {
	uint64_t interval_ns;     /* between the ends of two passes; 0: off */
	uint64_t rate;            /* bytes read per second, at most */
};

/* The object tier's S3-compatible store (issue 18). Holds where the
 * credentials are, never the keys themselves: objstore_s3_new() reads
 * them (the environment's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY win over
 * credentials_file). tools/objstore_config.h turns this into an objstore. */
struct config_object_store {
	bool enabled;             /* the section is there (endpoint and bucket set) */
	char *endpoint;           /* https://host[:port]; http:// only to loopback */
	char *bucket;
	char *region;             /* default us-east-1 */
	char *credentials_file;   /* NULL: the environment only */
	char *profile;            /* default "default" */
	char *prefix;             /* NULL: none */
	char *ca_file;            /* NULL: the system's CAs */
	uint64_t cache_size;      /* the local read-through cache, bytes */
	uint64_t connect_timeout_ns;
	uint64_t request_timeout_ns; /* a request, or a stall in a transfer */
	unsigned max_inflight;    /* requests in flight: ranges of a read, parts of an upload */
	uint64_t part_size;       /* multipart upload above this */
};

struct config {
	char *source;             /* file name, or "<default>" */
	char *store;
	struct config_import *imports;
	size_t n_imports;
	unsigned jobs;            /* default: online CPUs, capped at 256 */
	enum log_level log_level;
	char *log_file;           /* also log here (reopened on SIGHUP); NULL: stderr only */
	struct config_api api;
	struct config_retention retention;
	struct config_scrub scrub;
	struct config_object_store object_store;
};

/* One collected error. text is "FILE:LINE:COL: message", or "FILE: message"
 * when line is 0 (the error has no place in the text, e.g. an unreadable
 * file). */
struct config_error {
	const char *file;
	unsigned line, col;
	const char *message;
	const char *text;
};

struct config_errors;

/* Returns 0 or -ENOMEM. */
int config_errors_new(struct config_errors **out);
/* Accepts NULL, returns NULL. */
struct config_errors *config_errors_free(struct config_errors *errs);
size_t config_errors_count(const struct config_errors *errs);
/* The i-th error in the order found, or NULL past the end. */
const struct config_error *config_errors_get(const struct config_errors *errs, size_t i);

/* config_load_buffer() flags. */
enum {
	/* Do not look at the filesystem (import folders exist, store's parent
	 * exists): for fuzzing, and for checking a config meant for another
	 * machine. */
	CONFIG_NO_PATH_CHECKS = 1u << 0,
};

/*
 * Reads and checks the file at path. Returns 0 and a config in *out, or a
 * negative errno and NULL in *out: -EINVAL when the configuration has
 * errors, -ENOENT/-EACCES/... when the file cannot be read, -ENOMEM.
 * Every error found is appended to errs (which may be NULL).
 */
int config_load(struct config **out, const char *path, struct config_errors *errs);

/* Loads the embedded default configuration (config/default.yaml); its
 * relative paths stay relative to the working directory. flags as for
 * config_load_buffer(). */
int config_load_default(struct config **out, unsigned flags, struct config_errors *errs);

/*
 * Parses len bytes of text (need not be NUL-terminated). name is used in
 * error messages; relative paths are joined to base_dir, or kept as written
 * when base_dir is NULL. Returns as config_load().
 */
int config_load_buffer(struct config **out, const char *text, size_t len, const char *name,
		       const char *base_dir, unsigned flags, struct config_errors *errs);

/* Accepts NULL, returns NULL. */
struct config *config_free(struct config *cfg);

/* The embedded default configuration text (for --print-default-config). */
const char *config_default_text(void);

/* Every key path the schema knows, NULL-terminated, in schema order:
 * "store", "import[].path", "api.tls.cert", "retention.policies[].name"... */
const char *const *config_keys(void);

/*
 * Value parsers, also used for the schema's defaults. Durations: a number
 * (decimals allowed) and a unit ns, us, ms, s, m, h, d, w; a bare number
 * is seconds. Sizes: a number and a unit B, kB/KB, KiB, MB, MiB, GB, GiB,
 * TB, TiB, PB, PiB, EB, EiB (case-insensitive; bare number is bytes; the
 * single letters K, M, G... are refused as ambiguous). Return 0, -EINVAL
 * (not a duration/size, or not a whole number of ns/bytes) or -ERANGE
 * (does not fit in 64 bits); the reason goes to why (may be NULL).
 */
struct errbuf;
int config_parse_duration(const char *text, uint64_t *ns, struct errbuf *why);
int config_parse_size(const char *text, uint64_t *bytes, struct errbuf *why);

/* Formats with the largest unit that is exact ("90s" -> "90s", 7 days ->
 * "1w", 1536 bytes -> "1536B", 1 GiB -> "1GiB"). Returns buf. */
char *config_format_duration(uint64_t ns, char *buf, size_t size);
char *config_format_size(uint64_t bytes, char *buf, size_t size);

#endif
