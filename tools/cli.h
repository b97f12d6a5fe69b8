/*
 * cli.h - the subcommands of the capvault CLI, one function each.
 */
#ifndef CAPVAULT_CLI_H
#define CAPVAULT_CLI_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "errbuf.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILED 1
#define CLI_EXIT_USAGE 2

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv, const char *usage);
	const char *usage;
	/* Opens the store itself whatever runs: --url cannot reach it. */
	bool local_only;
	/* Its first word is a subcommand (token add, cert selfsigned): -h
	 * after it asks for help too. */
	bool subcommands;
};

/* Whether the words after the command name (argv[0]) ask for its help:
 * --help before any "--", or -h as the first word (later, -h is tag's
 * "remove the tag h"). */
static inline bool cli_wants_help(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "-h") == 0)
		return true;
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0)
			return true;
	return false;
}

/* What main returns, given the command's exit code rc: output that did
 * not reach standard output (a full disk, /dev/full, a closed pipe with
 * SIGPIPE ignored) fails the command, which otherwise would exit 0 with
 * a cut `ls --json > file`. */
static inline int cli_close_stdout(int rc)
{
	int err = fflush(stdout) != 0 ? errno : 0;
	if (!err && !ferror(stdout))
		return rc;
	fprintf(stderr, "capvault: writing standard output: %s\n",
		err ? strerror(err) : "write error");
	return rc == CLI_EXIT_OK ? CLI_EXIT_FAILED : rc;
}

/* The store folder: --store, else $CAPVAULT_STORE, else ./capvault-data. */
const char *cli_store_path(const char *option);

int cli_init(int argc, char **argv, const char *usage);
int cli_import(int argc, char **argv, const char *usage);
/* A capture's name (any bytes) as the CLI prints it: its escaped form
 * with control characters escaped too (common/textesc.h), so it is one
 * line whatever it holds. cli_shown_json takes the escaped form JSON
 * carries (the catalog's, the daemon's). Malloc'd; NULL when out of
 * memory. */
char *cli_shown_name(const char *raw);
char *cli_shown_json(const char *escaped);
/* An audit line for a change made without the daemon (rm, tag, prune):
 * to the journal when there is one (its native socket), else nowhere, so
 * the CLI prints exactly what it prints through the daemon. The caller
 * is named by uid and pid; more key/value pairs may follow, ending with
 * NULL. */
struct capture_record;
void cli_audit(const char *action, const struct capture_record *rec, ...)
	__attribute__((sentinel));
int cli_ls(int argc, char **argv, const char *usage);
int cli_info(int argc, char **argv, const char *usage);
int cli_stats(int argc, char **argv, const char *usage);
int cli_query(int argc, char **argv, const char *usage);
int cli_rm(int argc, char **argv, const char *usage);
int cli_tag(int argc, char **argv, const char *usage);
int cli_prune(int argc, char **argv, const char *usage);
int cli_tier(int argc, char **argv, const char *usage);
/* The object store of tiered objects, for the commands that open the
 * store themselves (rm, prune, fsck --remote): cfg's object_store (cfg
 * may be NULL), else CAPVAULT_OBJSTORE_DIR (a second store folder through
 * the local backend: tests and trials). 1 with *out, 0 when none is
 * configured, or a negative errno (eb). */
struct cli_objstore;
struct objstore;
struct config;
int cli_objstore_open(struct cli_objstore **out, const struct config *cfg, struct errbuf *eb);
struct objstore *cli_objstore(struct cli_objstore *c);
void cli_objstore_close(struct cli_objstore *c);
int cli_fsck(int argc, char **argv, const char *usage);
int cli_backup(int argc, char **argv, const char *usage);
int cli_restore(int argc, char **argv, const char *usage);
int cli_token(int argc, char **argv, const char *usage);
int cli_status(int argc, char **argv, const char *usage);
int cli_cert(int argc, char **argv, const char *usage);

#endif
