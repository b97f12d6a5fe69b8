/*
 * cli_import.c - `capvault import`: files and folder trees, in sorted
 * order, one line per file and a summary. A file that fails is left
 * untouched; with --move a file is removed only after its capture is
 * durably stored (object fsynced and catalog batch synced).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "import.h"
#include "store.h"
#include "vault.h"

struct import_run {
	struct vault *vault;
	struct ring *ring;
	char **tags;
	size_t ntags;
	bool move;
	unsigned imported, duplicates, failed;
	uint64_t packets, bytes;
};

static void import_report(struct import_run *run, const char *path, int err,
			  const struct import_result *res, const struct import_info *info,
			  const struct errbuf *eb)
{
	char hex[65];
	if (err) {
		run->failed++;
		printf("FAILED     %s\n", eb->msg[0] ? eb->msg : strerror(-err));
		return;
	}
	sha256_hex(res->sha256, hex);
	hex[12] = '\0';
	if (res->duplicate) {
		run->duplicates++;
		printf("duplicate  %-8llu %s  %s (already stored)\n",
		       (unsigned long long)res->capture_id, hex, path);
		return;
	}
	run->imported++;
	run->packets += info->summary.packets;
	run->bytes += info->capture_bytes;
	printf("imported   %-8llu %s  %llu packets  %s%s%s\n", (unsigned long long)res->capture_id,
	       hex, (unsigned long long)info->summary.packets, path,
	       res->linked ? " (linked)" : "", info->summary.truncated ? " (truncated)" : "");
}

static int import_one(struct import_run *run, const char *path)
{
	const char *slash = strrchr(path, '/');
	struct import_source src = {
		.path = path,
		.name = slash ? slash + 1 : path,
		.tags = (const char *const *)run->tags,
		.ntags = run->ntags,
		.may_link = run->move,
		.ring = run->ring,
	};
	struct import_result res;
	struct import_info info;
	struct errbuf eb = { { 0 } };
	int err = import_file(run->ring, &vault_sink_ops, run->vault, &src, &res, &info, &eb);
	import_report(run, path, err, &res, &info, &eb);
	if (!err && run->move && unlink(path) < 0)
		fprintf(stderr, "capvault: %s: stored, but could not remove it: %s\n", path,
			strerror(errno));
	return err;
}

static int import_path(struct import_run *run, const char *path);

static int import_dir(struct import_run *run, const char *dir)
{
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		run->failed++;
		printf("FAILED     %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
			char child[PATH_MAX];
			if (snprintf(child, sizeof(child), "%s/%s", dir, name) < (int)sizeof(child))
				import_path(run, child);
		}
		free(names[i]);
	}
	free(names);
	return 0;
}

/* Symlinks are not followed inside folder trees: a link loop or a link
 * out of the tree would import what the user did not name. */
static int import_path(struct import_run *run, const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		run->failed++;
		printf("FAILED     %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (S_ISDIR(st.st_mode))
		return import_dir(run, path);
	if (S_ISREG(st.st_mode))
		return import_one(run, path);
	return 0;
}

static int split_tags(const char *list, char ***tags, size_t *ntags)
{
	_cleanup_free_ char *copy = strdup(list);
	if (!copy)
		return -ENOMEM;
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!catalog_tag_valid(t)) {
			fprintf(stderr, "capvault: invalid tag '%s' (letters, digits and ._:/@+- only)\n", t);
			return -EINVAL;
		}
		char **grown = realloc(*tags, (*ntags + 1) * sizeof(char *));
		if (!grown)
			return -ENOMEM;
		*tags = grown;
		if (!((*tags)[(*ntags)++] = strdup(t)))
			return -ENOMEM;
	}
	return 0;
}

static void import_summary(const struct import_run *run)
{
	printf("%u imported, %u duplicate%s, %u failed; %llu packets, %llu bytes\n", run->imported,
	       run->duplicates, run->duplicates == 1 ? "" : "s", run->failed,
	       (unsigned long long)run->packets, (unsigned long long)run->bytes);
}

static int import_run_all(struct import_run *run, const char *store, char **paths, int npaths)
{
	struct errbuf eb = { { 0 } };
	int err = vault_open(&run->vault, store, &eb);
	if (err) {
		fprintf(stderr, "capvault: %s\n", eb.msg);
		return CLI_EXIT_FAILED;
	}
	err = ring_new(&run->ring, 16);
	if (err) {
		fprintf(stderr, "capvault: io_uring: %s\n", strerror(-err));
		vault_close(run->vault);
		return CLI_EXIT_FAILED;
	}
	for (int i = 0; i < npaths; i++)
		import_path(run, paths[i]);
	import_summary(run);
	ring_free(run->ring);
	vault_close(run->vault);
	return run->failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int cli_import(int argc, char **argv, const char *usage)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "tags", required_argument, NULL, 't' },
		{ "move", no_argument, NULL, 'm' },
		{ 0 },
	};
	struct import_run run = { 0 };
	const char *store = NULL;
	int c, rc = CLI_EXIT_USAGE;
	while ((c = getopt_long(argc, argv, "s:t:m", opts, NULL)) != -1) {
		if (c == 's')
			store = optarg;
		else if (c == 'm')
			run.move = true;
		else if (c != 't' || split_tags(optarg, &run.tags, &run.ntags) < 0)
			goto out;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		goto out;
	}
	rc = import_run_all(&run, cli_store_path(store), argv + optind, argc - optind);
out:
	for (size_t i = 0; i < run.ntags; i++)
		free(run.tags[i]);
	free(run.tags);
	return rc;
}
