/*
 * capvaultd.c - the capvault daemon: watches the configured import
 * folders and imports every capture that lands there into the vault.
 *
 * main is a straight line: parse arguments, load the configuration, open
 * the vault, start the watch and the import workers, run the loop until
 * SIGTERM/SIGINT, shut down. Signal handlers only set flags; the loop
 * acts on them (SIGHUP reloads the configuration, keeping the old one if
 * the new one has errors).
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <malloc.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "api.h"
#include "catalog.h"
#include "cleanup.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "monoclock.h"
#include "objcache.h"
#include "objstore.h"
#include "objstore_config.h"
#include "retention_config.h"
#include "sdnotify.h"
#include "vault.h"
#include "watch.h"

#define LOOP_TIMEOUT_MS 200
/* After reports were dropped on a full queue, give the workers a moment
 * before watch_rescan reports every file again. */
#define RESCAN_DELAY_MS 1000u
/* How often systemd's STATUS= line is refreshed. */
#define STATUS_EVERY_MS 5000u
/* glibc keeps freed memory (RocksDB's flushed memtables, import and query
 * buffers) inside its arenas; giving it back this often keeps the RSS at
 * what is in use. */
#define MALLOC_TRIM_EVERY_MS 30000u
/* glibc gives each new thread its own arena, up to 8 per core, and every
 * arena keeps its own free memory; the API starts a thread per
 * connection, so without a cap the arenas multiply the RSS. The
 * environment's MALLOC_ARENA_MAX, if set, wins. */
#define MALLOC_ARENAS 2
/* glibc serves a large block by mmap only until such a block is freed;
 * then it raises that threshold to the block's size (up to 32 MiB), and
 * later 1 MiB read and gather buffers, memtable arena blocks and
 * compaction buffers come from the heap, where they leave holes. A fixed
 * threshold keeps them mmapped, so freeing one gives its pages back. The
 * environment's MALLOC_MMAP_THRESHOLD_, if set, wins. */
#define MALLOC_MMAP_THRESHOLD (256u << 10)

struct daemon {
	const char *config_path;       /* NULL: the embedded default */
	struct config *cfg;
	struct config **retired;       /* replaced configs: workers may still read them */
	size_t n_retired;
	struct vault *vault;
	struct watch *watch;
	struct daemon_folder *folders;
	struct daemon_workers workers;
	uint64_t rescan_at_ms;         /* 0: none scheduled */
	struct api_server *api;
	struct sdnotify *notify;       /* systemd notifications (no-op without systemd) */
	uint64_t status_at_ms;         /* next STATUS= update */
	uint64_t trim_at_ms;           /* next malloc_trim */
	struct daemon_retention retention;
	struct daemon_scrub scrub;
	struct daemon_tier tier;
	struct objcache *cache;        /* remote objects' bytes, when an object store is set */
	int log_fd;                    /* cfg->log_file, or -1 */
};

static volatile sig_atomic_t got_stop, got_hup;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = 1;
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static const char usage_text[] =
	"usage: capvaultd [--config FILE] [--check-config FILE] [--print-default-config] [--version]\n"
	"       capvaultd --help\n";

static void usage(void)
{
	fputs(usage_text, stderr);
	exit(2);
}

static int help(void)
{
	return printf("%s\n"
		      "The capvault daemon: imports what is dropped into its folders, serves the\n"
		      "HTTP API and the unix socket, prunes by its retention rules.\n\n"
		      "  -c, --config FILE         run with this configuration (default: the\n"
		      "                            embedded one, see --print-default-config)\n"
		      "      --check-config FILE   check a configuration and exit (0: valid)\n"
		      "      --print-default-config  print the embedded configuration\n"
		      "      --version             print the version\n"
		      "  -h, --help                print this help\n\n"
		      "SIGHUP reloads the configuration, SIGTERM stops after the imports in\n"
		      "progress. See capvaultd(8) and capvault.yaml(5).\n",
		      usage_text) < 0;
}

static void print_errors(const struct config_errors *errs, bool to_log)
{
	for (size_t i = 0; i < config_errors_count(errs); i++) {
		const struct config_error *e = config_errors_get(errs, i);
		if (to_log)
			log_errx("%s", e->text);
		else
			fprintf(stderr, "%s\n", e->text);
	}
}

/* What the daemon's start would refuse in object_store beyond the
 * config's own checks: its credentials (an unusable file, no such
 * profile, others may read it). Nothing is sent to the store. */
static int check_object_store(const char *path, const struct config_object_store *cos)
{
	struct objstore *os = NULL;
	struct errbuf eb = { { 0 } };
	int err = objstore_from_config(&os, cos, &eb);

	if (err < 0)
		fprintf(stderr, "%s: object_store: %s\n", path, eb.msg[0] ? eb.msg : strerror(-err));
	objstore_free(os);
	return err;
}

static int check_config(const char *path)
{
	struct config_errors *errs = NULL;
	struct config *cfg = NULL;
	if (config_errors_new(&errs) < 0)
		return 1;
	int err = config_load(&cfg, path, errs);
	print_errors(errs, false);
	if (err && config_errors_count(errs) == 0)
		fprintf(stderr, "%s: %s\n", path, strerror(-err));
	if (!err && cfg->object_store.enabled)
		err = check_object_store(path, &cfg->object_store);
	if (!err)
		printf("configuration OK\n");
	config_free(cfg);
	config_errors_free(errs);
	return err ? 1 : 0;
}

/* Returns the --config path (NULL for the default); exits for the
 * options that only print. */
static const char *parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", required_argument, NULL, 'k' },
		{ "print-default-config", no_argument, NULL, 'p' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *config = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'k')
			exit(check_config(optarg));
		else if (c == 'p') /* `> capvault.yaml` on a full disk fails */
			exit(fputs(config_default_text(), stdout) < 0 || fflush(stdout) != 0);
		else if (c == 'V')
			exit(printf("capvaultd %s\n", CAPVAULT_VERSION) < 0);
		else if (c == 'h')
			exit(help());
		else
			usage();
	}
	if (optind != argc)
		usage();
	return config;
}

/* The default config names ./capvault-data and ./autoimport; create them
 * so a bare `capvaultd` works in an empty folder. */
static int load_config(struct config **cfg, const char *path, struct config_errors *errs)
{
	if (path)
		return config_load(cfg, path, errs);
	int err = config_load_default(cfg, CONFIG_NO_PATH_CHECKS, errs);
	if (err)
		return err;
	config_free(*cfg);
	*cfg = NULL;
	if (mkdir("capvault-data", 0755) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir("autoimport", 0755) < 0 && errno != EEXIST)
		return -errno;
	return config_load_default(cfg, 0, errs);
}

static struct config *load_or_die(const char *path)
{
	struct config_errors *errs = NULL;
	struct config *cfg = NULL;
	if (config_errors_new(&errs) < 0)
		fatalx("out of memory");
	int err = load_config(&cfg, path, errs);
	print_errors(errs, false);
	config_errors_free(errs);
	if (err && err != -EINVAL)
		fatalx("%s: %s", path ? path : "<default>", strerror(-err));
	if (err)
		exit(1);
	return cfg;
}

static struct daemon_folder *folder_by_id(struct daemon *d, int id)
{
	for (struct daemon_folder *f = d->folders; f; f = f->next)
		if (f->watch_id == id)
			return f;
	return NULL;
}

static struct daemon_folder *folder_by_path(struct daemon *d, const char *path)
{
	for (struct daemon_folder *f = d->folders; f; f = f->next)
		if (f->watch_id >= 0 && !strcmp(f->path, path))
			return f;
	return NULL;
}

static void on_ready(void *opaque, int id, const char *path, const char *rel_dir,
		     const struct stat *st)
{
	struct daemon *d = opaque;
	struct daemon_folder *f = folder_by_id(d, id);
	(void)st;
	if (!f)
		return;
	atomic_fetch_add(&f->ctr.seen, 1);
	int rc = daemon_queue_push(d->workers.queue, f, path, rel_dir, NULL);
	if (rc == -ENOSPC || rc == -ENOMEM) {
		if (!d->rescan_at_ms)
			log_warnx("import queue full: %s dropped, rescanning later", path);
		if (!d->rescan_at_ms)
			d->rescan_at_ms = mono_ms() + RESCAN_DELAY_MS;
	}
}

static void on_watch_log(void *opaque, enum log_level level, const char *msg)
{
	(void)opaque;
	if (level <= LOG_LEVEL_ERR)
		log_errx("%s", msg);
	else if (level <= LOG_LEVEL_WARNING)
		log_warnx("%s", msg);
	else if (level <= LOG_LEVEL_INFO)
		log_info("%s", msg);
	else
		log_debug("%s", msg);
}

static const struct watch_callbacks watch_cb = { .on_ready = on_ready, .on_log = on_watch_log };

static unsigned ns_to_ms(uint64_t ns)
{
	uint64_t ms = ns / 1000000u;
	/* 0 means "the watch's default" to watch.h; settle 0 means at once. */
	return ms ? (ms > 0xffffffffu ? 0xffffffffu : (unsigned)ms) : 1;
}

static int watch_folder(struct daemon *d, const struct config_import *ci)
{
	const char *exclude[] = { ci->failed_folder, ci->move_to, NULL };
	const char **ignore = calloc(ci->ignore.n + 1, sizeof(*ignore));
	if (!ignore)
		return -ENOMEM;
	for (size_t i = 0; i < ci->ignore.n; i++)
		ignore[i] = ci->ignore.v[i];
	struct watch_folder_cfg wc = {
		.path = ci->path,
		.recursive = ci->recursive,
		.mode = ci->watch == CONFIG_WATCH_INOTIFY ? WATCH_MODE_INOTIFY :
			ci->watch == CONFIG_WATCH_POLL	   ? WATCH_MODE_POLL :
							     WATCH_MODE_AUTO,
		.poll_interval_ms = ns_to_ms(ci->poll_interval_ns),
		.settle_ms = ns_to_ms(ci->settle_time_ns),
		.ignore = ignore,
		.exclude = exclude,
	};
	struct errbuf eb = { { 0 } };
	int id = watch_add_folder(d->watch, &wc, &eb);
	free(ignore);
	if (id < 0)
		log_errx("%s: cannot watch: %s", ci->path, eb.msg[0] ? eb.msg : strerror(-id));
	return id;
}

static int add_folder(struct daemon *d, const struct config_import *ci)
{
	struct daemon_folder *f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(ci->path))) {
		free(f);
		return -ENOMEM;
	}
	atomic_store(&f->cfg, ci);
	f->next = d->folders;
	d->folders = f;
	f->watch_id = watch_folder(d, ci);
	if (f->watch_id >= 0)
		log_info("watching %s", ci->path);
	/* A killed run's claims: finished (or handed back) before new files. */
	int rc = f->watch_id >= 0 ? daemon_claims_recover(&d->workers, f) : 0;
	if (rc < 0 && rc != -ENOENT)
		log_warnx("%s/%s: %s", ci->path, DAEMON_CLAIM_DIR, strerror(-rc));
	return f->watch_id < 0 ? f->watch_id : 0;
}

/* Keeps <store>/claim-folders: hand_back at start, for the claims of
 * folders dropped from the configuration (daemon.h). In the store the
 * daemon runs on: a reloaded file naming another store: (which needs a
 * restart) does not move the list there. */
static void note_claim_folders(struct daemon *d, bool hand_back)
{
	const char *store = (d->n_retired ? d->retired[0] : d->cfg)->store;
	const char **paths = calloc(d->cfg->n_imports + 1, sizeof(*paths));
	for (size_t i = 0; paths && i < d->cfg->n_imports; i++)
		paths[i] = d->cfg->imports[i].path;
	int err = paths ? daemon_claim_folders_update(store, paths, d->cfg->n_imports, hand_back)
			: -ENOMEM;
	if (err)
		log_warnx("%s/" DAEMON_CLAIM_FOLDERS ": %s", store, strerror(-err));
	free(paths);
}

/* Folders in the new config are added, or keep watching with its
 * settings for tags and after_import (watch settings such as globs
 * change on restart); folders no longer listed are removed. */
static void apply_config(struct daemon *d, struct config *cfg)
{
	for (struct daemon_folder *f = d->folders; f; f = f->next) {
		bool listed = false;
		for (size_t i = 0; i < cfg->n_imports && !listed; i++)
			listed = !strcmp(cfg->imports[i].path, f->path);
		if (!listed && f->watch_id >= 0) {
			watch_remove_folder(d->watch, f->watch_id);
			log_info("no longer watching %s", f->path);
			f->watch_id = -1;
		}
	}
	for (size_t i = 0; i < cfg->n_imports; i++) {
		struct daemon_folder *f = folder_by_path(d, cfg->imports[i].path);
		if (f)
			atomic_store(&f->cfg, &cfg->imports[i]);
		else
			add_folder(d, &cfg->imports[i]);
	}
}

/* (Re)opens the configured log file: after SIGHUP, a rotated file is let
 * go and a new one started. The new file takes over the old descriptor
 * number (dup2), so a thread logging meanwhile never writes to a closed
 * one. The old file stays if the new one cannot be opened. */
static void open_log_file(struct daemon *d, const char *path)
{
	int fd = path ? open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640) : -1;
	if (path && fd < 0) {
		log_warn("log file %s", path);
		return;
	}
	if (fd >= 0 && d->log_fd >= 0) {
		dup3(fd, d->log_fd, O_CLOEXEC);
		close(fd);
		return;
	}
	log_set_file(fd);
	if (d->log_fd >= 0)
		close(d->log_fd);
	d->log_fd = fd;
}

#define RESTART_NAMES_MAX 8

static bool text_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

/* The tier mover and the cache keep the object store they started with. */
static bool object_store_changed(const struct config_object_store *a,
				 const struct config_object_store *b)
{
	return a->enabled != b->enabled || text_differs(a->endpoint, b->endpoint) ||
	       text_differs(a->bucket, b->bucket) || text_differs(a->region, b->region) ||
	       text_differs(a->credentials_file, b->credentials_file) ||
	       text_differs(a->profile, b->profile) ||
	       /* unset and "" are the same prefix, the bucket's root */
	       text_differs(a->prefix ? a->prefix : "", b->prefix ? b->prefix : "") ||
	       text_differs(a->ca_file, b->ca_file) || a->cache_size != b->cache_size ||
	       a->connect_timeout_ns != b->connect_timeout_ns ||
	       a->request_timeout_ns != b->request_timeout_ns ||
	       a->read_timeout_ns != b->read_timeout_ns ||
	       a->max_inflight != b->max_inflight || a->part_size != b->part_size;
}

/* The API takes the new limits and certificate; what neither it nor the
 * daemon can change while running (compared with the configuration the
 * daemon started with) is named in the log and in `capvault status`. */
static void reload_api(struct daemon *d, const struct config *cfg)
{
	const struct config *first = d->n_retired ? d->retired[0] : d->cfg;
	const char *names[RESTART_NAMES_MAX];
	size_t n = 0;
	struct errbuf eb = { { 0 } };
	if (strcmp(cfg->store, first->store))
		names[n++] = "store";
	if (cfg->jobs != first->jobs)
		names[n++] = "jobs";
	if (object_store_changed(&cfg->object_store, &first->object_store))
		names[n++] = "object_store";
	if (api_server_reload(d->api, cfg, names, &n, RESTART_NAMES_MAX, &eb) < 0)
		log_errx("reload: api.tls: %s; the previous certificate stays in use", eb.msg);
	if (!n)
		return;
	char list[256] = "";
	for (size_t i = 0, used = 0; i < n && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 names[i]);
	log_warnx("reload: changed settings that need a restart: %s", list);
}

static void reload(struct daemon *d)
{
	struct config_errors *errs = NULL;
	struct config *cfg = NULL;
	if (config_errors_new(&errs) < 0)
		return;
	int err = load_config(&cfg, d->config_path, errs);
	if (err) {
		print_errors(errs, true);
		log_errx("reload failed (%s); keeping the running configuration", strerror(-err));
		config_errors_free(errs);
		return;
	}
	config_errors_free(errs);
	struct config **grown = realloc(d->retired, (d->n_retired + 1) * sizeof(*grown));
	if (!grown) {
		config_free(cfg);
		return;
	}
	d->retired = grown;
	d->retired[d->n_retired++] = d->cfg;
	d->cfg = cfg;
	/* load_config returns 0 only with cfg set; the analyzer assumes a failed
	 * mkdir may leave errno 0 there. */
	log_set_level(cfg->log_level); // NOLINT(clang-analyzer-core.NullDereference)
	open_log_file(d, cfg->log_file);
	apply_config(d, cfg);
	note_claim_folders(d, false);
	if (daemon_retention_configure(&d->retention, d->vault, &cfg->retention) < 0)
		log_warnx("reload: retention rules not updated: out of memory");
	reload_api(d, cfg);
	daemon_scrub_configure(&d->scrub, &cfg->scrub);
	log_info("configuration reloaded from %s", cfg->source);
}

/* One line for `systemctl status`: what this run imported, and the queue. */
static void notify_status(struct daemon *d)
{
	unsigned long long imported = 0, duplicates = 0, failed = 0;
	for (struct daemon_folder *f = d->folders; f; f = f->next) {
		imported += atomic_load(&f->ctr.imported);
		duplicates += atomic_load(&f->ctr.duplicates);
		failed += atomic_load(&f->ctr.failed);
	}
	sdnotify_sendf(d->notify, "STATUS=%llu captures imported, %llu duplicates, %llu failed; "
				  "%u files queued, %u waiting for a retry",
		       imported, duplicates, failed, daemon_queue_length(d->workers.queue),
		       daemon_queue_parked(d->workers.queue, NULL, NULL));
	d->status_at_ms = mono_ms() + STATUS_EVERY_MS;
}

/* The watchdog is pinged from here, so a stuck main loop gets restarted. */
static void notify_tick(struct daemon *d)
{
	uint64_t now = mono_ms();
	int err = sdnotify_watchdog_tick(d->notify, now);
	if (err < 0)
		log_warnx("systemd watchdog: %s", strerror(-err));
	if (sdnotify_enabled(d->notify) && now >= d->status_at_ms)
		notify_status(d);
}

static void trim_tick(struct daemon *d)
{
	uint64_t now = mono_ms();
	if (now < d->trim_at_ms)
		return;
	d->trim_at_ms = now + MALLOC_TRIM_EVERY_MS;
	malloc_trim(0);
}

static void run_loop(struct daemon *d)
{
	while (!got_stop) {
		int rc = watch_run_once(d->watch, LOOP_TIMEOUT_MS);
		if (rc < 0 && rc != -EINTR) {
			log_errx("watch: %s", strerror(-rc));
			break;
		}
		if (got_hup) {
			got_hup = 0;
			sdnotify_reloading(d->notify);
			reload(d);
			sdnotify_send(d->notify, "READY=1");
		}
		daemon_queue_promote(d->workers.queue);
		/* Space freed: files refused for lack of it need not wait out
		 * their back-off. */
		if (daemon_retention_tick(&d->retention))
			daemon_queue_retry_now(d->workers.queue);
		notify_tick(d);
		trim_tick(d);
		if (d->rescan_at_ms && mono_ms() >= d->rescan_at_ms &&
		    daemon_queue_length(d->workers.queue) < DAEMON_QUEUE_MAX / 2) {
			d->rescan_at_ms = 0;
			watch_rescan(d->watch);
		}
	}
}

static void log_summary(struct daemon *d)
{
	for (struct daemon_folder *f = d->folders; f; f = f->next) {
		struct daemon_counters *c = &f->ctr;
		log_info("%s: %llu seen, %llu imported, %llu duplicates, %llu failed; "
			 "%llu packets, %llu bytes",
			 f->path, (unsigned long long)c->seen, (unsigned long long)c->imported,
			 (unsigned long long)c->duplicates, (unsigned long long)c->failed,
			 (unsigned long long)c->packets, (unsigned long long)c->bytes);
	}
	log_info("stopped; %u files left in the queue, %u waiting for a retry",
		 daemon_queue_length(d->workers.queue),
		 daemon_queue_parked(d->workers.queue, NULL, NULL));
}

/* Before any thread exists: sdnotify_new edits the environment. */
static void open_notify(struct daemon *d)
{
	int err = sdnotify_new(&d->notify);
	if (err < 0)
		log_warnx("NOTIFY_SOCKET: %s; not notifying systemd", strerror(-err));
}

/* The names of the import folders that are right inside the store (the
 * packaged /var/lib/capvault/autoimport): a store folder holding only
 * those still counts as empty. NULL-terminated; NULL when out of memory. */
static char **import_folders_in_store(const struct config *cfg)
{
	char **names = calloc(cfg->n_imports + 1, sizeof(*names));
	_cleanup_free_ char *store = realpath(cfg->store, NULL);
	for (size_t i = 0, n = 0; names && store && i < cfg->n_imports; i++) {
		_cleanup_free_ char *path = realpath(cfg->imports[i].path, NULL);
		char *slash = path ? strrchr(path, '/') : NULL;
		if (!slash || (size_t)(slash - path) != strlen(store) ||
		    strncmp(path, store, (size_t)(slash - path)) != 0)
			continue;
		if (!(names[n++] = strdup(slash + 1)))
			break;
	}
	return names;
}

static void open_all(struct daemon *d)
{
	struct errbuf eb = { { 0 } };
	daemon_failures_init(&d->workers.failures);
	/* The daemon creates its store on a missing or empty folder only. */
	char **allowed = import_folders_in_store(d->cfg);
	int err = vault_open_create(&d->vault, d->cfg->store, VAULT_CREATE,
				    (const char *const *)allowed, &eb);
	for (size_t i = 0; allowed && allowed[i]; i++)
		free(allowed[i]);
	free(allowed);
	if (err)
		fatalx("%s", eb.msg[0] ? eb.msg : strerror(-err));
	d->workers.vault = d->vault;
	if ((err = daemon_kept_open(&d->workers.kept, d->cfg->store)) < 0)
		fatalx("%s/autoimport.kept: %s", d->cfg->store, strerror(-err));
	if ((err = daemon_queue_new(&d->workers.queue)) < 0)
		fatalx("queue: %s", strerror(-err));
	if ((err = watch_new(&d->watch, NULL, &watch_cb, d)) < 0)
		fatalx("watch: %s", strerror(-err));
	if ((err = daemon_retention_configure(&d->retention, d->vault, &d->cfg->retention)) < 0)
		fatalx("retention: %s", strerror(-err));
}

static void free_all(struct daemon *d)
{
	d->notify = sdnotify_free(d->notify);
	watch_free(d->watch);
	daemon_queue_free(d->workers.queue);
	daemon_kept_free(d->workers.kept);
	daemon_retention_release(&d->retention);
	daemon_failures_destroy(&d->workers.failures);
	vault_close(d->vault);
	while (d->folders) {
		struct daemon_folder *f = d->folders;
		d->folders = f->next;
		free(f->path);
		free(f);
	}
	for (size_t i = 0; i < d->n_retired; i++)
		config_free(d->retired[i]);
	free(d->retired);
	config_free(d->cfg);
}

/* The API's view of the import counters. Folders are only ever
 * prepended and never freed before shutdown, so walking the list from an
 * API thread is safe. */
static void api_import_stats(void *opaque, struct api_import_stats *out)
{
	struct daemon *d = opaque;
	for (struct daemon_folder *f = __atomic_load_n(&d->folders, __ATOMIC_ACQUIRE); f;
	     f = f->next) {
		out->folders += f->watch_id >= 0;
		out->seen += f->ctr.seen;
		out->imported += f->ctr.imported;
		out->duplicates += f->ctr.duplicates;
		out->failed += f->ctr.failed;
		out->bytes += f->ctr.bytes;
		out->packets += f->ctr.packets;
		out->retried += f->ctr.retried;
	}
	for (size_t i = 0; i < API_IMPORT_REASONS; i++)
		out->failed_by[i] = atomic_load(&d->workers.failures.by_reason[i]);
	out->queue_length = daemon_queue_length(d->workers.queue);
	out->retrying = daemon_queue_parked(d->workers.queue, NULL, NULL);
}

static const char *watch_mode_name(const struct config_import *ci)
{
	struct statfs sf;
	if (ci->watch == CONFIG_WATCH_INOTIFY)
		return "inotify";
	if (ci->watch == CONFIG_WATCH_POLL)
		return "poll";
	if (statfs(ci->path, &sf) < 0)
		return "auto";
	return watch_mode_for_fstype((unsigned long)sf.f_type, NULL) == WATCH_MODE_POLL ? "poll" :
											 "inotify";
}

/* The watched folders for /v1/imports, walked as api_import_stats does. */
static void api_import_folders(void *opaque, api_folder_fn fn, void *ctx)
{
	struct daemon *d = opaque;
	for (struct daemon_folder *f = __atomic_load_n(&d->folders, __ATOMIC_ACQUIRE); f;
	     f = f->next) {
		const struct config_import *ci = atomic_load(&f->cfg);
		char after[PATH_MAX + 8];
		if (f->watch_id < 0)
			continue;
		snprintf(after, sizeof(after), "%s%s",
			 ci->after_import == CONFIG_AFTER_DELETE ? "delete" :
			 ci->after_import == CONFIG_AFTER_KEEP	 ? "keep" :
								   "move:",
			 ci->after_import == CONFIG_AFTER_MOVE ? ci->move_to : "");
		struct api_folder_info info = {
			.path = f->path, .watch = watch_mode_name(ci), .after_import = after,
			.recursive = ci->recursive, .seen = f->ctr.seen, .imported = f->ctr.imported,
			.duplicates = f->ctr.duplicates, .failed = f->ctr.failed,
			.bytes = f->ctr.bytes, .packets = f->ctr.packets, .retried = f->ctr.retried,
		};
		fn(ctx, &info);
	}
}

static size_t api_import_failures(void *opaque, struct api_import_failure *out, size_t max)
{
	struct daemon *d = opaque;
	struct daemon_failure got[DAEMON_FAILURES_KEPT];
	size_t n = daemon_failures_copy(&d->workers.failures, got, max < DAEMON_FAILURES_KEPT ? max :
									  DAEMON_FAILURES_KEPT);
	for (size_t i = 0; i < n; i++) {
		_Static_assert(sizeof(out[i].path) == sizeof(got[i].path) &&
				       sizeof(out[i].error) == sizeof(got[i].error),
			       "the failure records match");
		memcpy(out[i].path, got[i].path, sizeof(out[i].path));
		memcpy(out[i].error, got[i].error, sizeof(out[i].error));
		out[i].time_ns = got[i].time_ns;
	}
	return n;
}

struct retry_copy {
	struct api_import_retry *out;
	size_t n, max;
};

static void retry_copy_one(void *ctx, const struct daemon_item *it)
{
	struct retry_copy *c = ctx;
	if (c->n == c->max)
		return;
	struct api_import_retry *r = &c->out[c->n++];
	snprintf(r->path, sizeof(r->path), "%s", it->path);
	snprintf(r->error, sizeof(r->error), "%s", it->error ? it->error : "");
	r->attempts = it->attempts;
}

/* The files waiting for a retry, for /v1/imports. */
static size_t api_import_retrying(void *opaque, struct api_import_retry *out, size_t max)
{
	struct daemon *d = opaque;
	struct retry_copy c = { .out = out, .max = max };
	daemon_queue_parked(d->workers.queue, retry_copy_one, &c);
	return c.n;
}

/* POST /v1/prune and GET /v1/retention: the rules and timer the main
 * loop runs, under their lock. */
static int api_prune(void *opaque, bool dry_run, struct retention_plan **out, struct errbuf *eb)
{
	struct daemon *d = opaque;
	int err = daemon_retention_prune(&d->retention, dry_run, out, eb);
	if (!dry_run && *out && (*out)->bytes_freed)
		daemon_queue_retry_now(d->workers.queue);
	return err;
}

static void api_retention(void *opaque, api_retention_fn fn, void *ctx)
{
	struct daemon *d = opaque;
	daemon_retention_describe(&d->retention, fn, ctx);
}

static void api_scrub_stats(void *opaque, struct api_scrub_stats *out)
{
	struct daemon *d = opaque;
	daemon_scrub_stats(&d->scrub, out);
}

static int api_tier(void *opaque, const uint8_t sha[32], uint64_t *bytes, struct errbuf *eb)
{
	struct daemon *d = opaque;
	return daemon_tier_now(&d->tier, sha, bytes, eb);
}

static void api_tier_stats(void *opaque, struct api_tier_stats *out)
{
	struct daemon *d = opaque;
	daemon_tier_stats(&d->tier, out);
}

static void start_api(struct daemon *d)
{
	static struct api_hooks hooks = { .import_stats = api_import_stats,
					  .import_folders = api_import_folders,
					  .import_failures = api_import_failures,
					  .import_retrying = api_import_retrying,
					  .prune = api_prune,
					  .retention = api_retention,
					  .scrub_stats = api_scrub_stats,
					  .tier = api_tier,
					  .tier_stats = api_tier_stats };
	struct errbuf eb = { { 0 } };
	hooks.opaque = d;
	int err = api_server_start(&d->api, d->cfg, d->vault, &hooks, &eb);
	if (err)
		fatalx("api: %s", eb.msg[0] ? eb.msg : strerror(-err));
}

static void log_cache_notice(void *opaque, const char *msg)
{
	(void)opaque;
	log_warnx("object store cache: %s; served from the object store instead", msg);
}

/* The read-through cache of the object store's bytes, in the store's
 * cache/ folder, once the tier has set an object store on the vault. Its
 * bytes can be fetched again, the captures beside them cannot: it keeps
 * a floor of free space above retention.min_free (retention_cache_keep_free;
 * daemon_retention sets it again on a reload) and gives way to it now. */
static int open_cache(struct daemon *d, struct errbuf *eb)
{
	const struct config_object_store *os = &d->cfg->object_store;
	const struct config_retention *rc = &d->cfg->retention;
	uint64_t bound = os->enabled ? os->cache_size : OBJSTORE_CACHE_DEFAULT;
	uint64_t free_bytes = 0, fs_bytes = 0;
	if (!vault_objstore(d->vault))
		return 0;
	int err = objcache_open(&d->cache, d->cfg->store, bound, eb);
	if (err)
		return err;
	uint64_t floor = retention_cache_floor_set(d->cache, vault_store(d->vault),
						   rc->min_free_bytes, rc->min_free_percent);
	uint64_t evicted = objcache_trim(d->cache, 0);
	objcache_set_notice(d->cache, log_cache_notice, NULL);
	vault_set_objcache(d->vault, d->cache);
	if (evicted)
		log_info("object store cache: evicted %" PRIu64 " bytes to keep %" PRIu64
			 " bytes free on the file system of %s", evicted, floor, d->cfg->store);
	if (store_space(vault_store(d->vault), &free_bytes, &fs_bytes) == 0 && bound > fs_bytes)
		log_warnx("object store cache: cache_size (%" PRIu64 " bytes) is more than the file "
			  "system of %s holds (%" PRIu64 " bytes): the cache stops short of it, "
			  "keeping %" PRIu64 " bytes free there; set object_store.cache_size "
			  "below the file system's size",
			  bound, d->cfg->store, fs_bytes, floor);
	return 0;
}

int main(int argc, char **argv)
{
	struct daemon d = { .log_fd = -1 };
	/* Before any thread exists, so that every thread is bound by it. */
	if (!getenv("MALLOC_ARENA_MAX"))
		mallopt(M_ARENA_MAX, MALLOC_ARENAS);
	if (!getenv("MALLOC_MMAP_THRESHOLD_"))
		mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD);
	d.config_path = parse_args(argc, argv);
	d.cfg = load_or_die(d.config_path);
	log_init("capvaultd", d.cfg->log_level, true);
	open_log_file(&d, d.cfg->log_file);
	install_signals();
	open_notify(&d);
	open_all(&d);
	for (size_t i = 0; i < d.cfg->n_imports; i++)
		add_folder(&d, &d.cfg->imports[i]);
	note_claim_folders(&d, true);
	/* The capture list's summary, built while the rest starts: the
	 * first listing need not wait for it. */
	if (catalog_summary_prepare(vault_catalog(d.vault)) < 0)
		log_warnx("capture list: cannot start building its summary; the first "
			  "listing will");
	/* Before the API, whose threads read its state. */
	int err = daemon_scrub_start(&d.scrub, d.vault, &d.cfg->scrub);
	if (err)
		fatalx("scrub: %s", strerror(-err));
	struct errbuf eb = { { 0 } };
	/* Before the workers and the API: removals reach its queue, and
	 * interrupted moves are finished first. */
	if ((err = daemon_tier_start(&d.tier, d.vault, d.cfg, &eb)) < 0)
		fatalx("object store: %s", eb.msg[0] ? eb.msg : strerror(-err));
	d.retention.tier = &d.tier;
	if ((err = open_cache(&d, &eb)) < 0)
		fatalx("object store cache: %s", eb.msg[0] ? eb.msg : strerror(-err));
	start_api(&d);
	err = daemon_workers_start(&d.workers, d.cfg->jobs ? d.cfg->jobs : 1);
	if (err)
		fatalx("workers: %s", strerror(-err));
	log_info("started: store %s, %zu folders, %u workers", d.cfg->store, d.cfg->n_imports,
		 d.workers.n);
	sdnotify_send(d.notify, "READY=1");
	notify_status(&d);
	run_loop(&d);
	sdnotify_send(d.notify, "STOPPING=1");
	d.api = api_server_stop(d.api);
	daemon_scrub_stop(&d.scrub);
	log_info("stopping: finishing the files being imported");
	daemon_workers_join(&d.workers);
	daemon_tier_stop(&d.tier);
	vault_set_objcache(d.vault, NULL);
	d.cache = objcache_free(d.cache);
	log_summary(&d);
	free_all(&d);
	open_log_file(&d, NULL);
	return 0;
}
