/*
 * capvault - the command-line tool's thin front.
 *
 * A query through the unix socket of a running capvaultd is answered here,
 * by a program that links only the HTTP client, jansson and libc: its
 * start costs a fraction of the engine's, which loads RocksDB, libstdc++,
 * libpcap, liburing, OpenSSL and the rest. Everything else (every other
 * command, a query with no daemon or with --url, --version, usage errors
 * of the connection options) is the engine's: capvault-offline, run with exec and the user's argv and
 * environment unchanged, so its output, exit codes and process id are the
 * ones the user sees. The engine decides daemon or store again itself,
 * with the same code.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_query.h"
#include "cli_remote.h"
#include "log.h"

#define ENGINE_NAME "capvault-offline"

/* Runs path with argv; returns only when that failed, keeping in *err
 * the first failure other than "not there". */
static void try_exec(const char *path, char **argv, int *err)
{
	execv(path, argv);
	if (*err == ENOENT)
		*err = errno;
}

/* The engine: beside this program (the build tree), else where meson
 * installed it, found from this program's folder (so a --destdir or moved
 * tree works), else at its configured absolute path. */
static _Noreturn void run_engine(char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + sizeof(CAPVAULT_ENGINE_REL)];
	int err = ENOENT;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash = n > 0 ? memrchr(self, '/', (size_t)n) : NULL;
	if (slash) {
		*slash = '\0';
		snprintf(path, sizeof(path), "%s/" ENGINE_NAME, self);
		try_exec(path, argv, &err);
		snprintf(path, sizeof(path), "%s/" CAPVAULT_ENGINE_REL, self);
		try_exec(path, argv, &err);
	}
	try_exec(CAPVAULT_ENGINE_ABS, argv, &err);
	fprintf(stderr, "capvault: cannot run " ENGINE_NAME " (beside this program, or "
			CAPVAULT_ENGINE_REL " from it, or " CAPVAULT_ENGINE_ABS "): %s\n",
		strerror(err));
	exit(CLI_EXIT_FAILED);
}

/* `capvault query`: through the daemon when one answers, else the
 * engine's. */
static int query(int argc, char **argv, char **given)
{
	struct query_cli c = { .outfd = STDOUT_FILENO };
	struct cli_remote *remote = NULL;
	int rc = CLI_EXIT_USAGE;
	if (cli_query_parse(&c, argc, argv) < 0) {
		fprintf(stderr, "usage: capvault %s\n", CLI_QUERY_USAGE);
		goto out;
	}
	int via = cli_remote_open(&remote, c.store);
	if (via == 0) {
		cli_query_release(&c);
		run_engine(given);
	}
	rc = cli_query_finish(&c, via > 0 ? cli_query_remote(remote, &c) : CLI_EXIT_FAILED);
	cli_remote_free(remote);
out:
	cli_query_release(&c);
	return rc;
}

int main(int argc, char **argv)
{
	/* cli_remote_options takes its options out of argv: the engine gets
	 * the words as the user gave them. */
	char **given = calloc((size_t)argc + 1, sizeof(*given));
	if (!given) {
		fprintf(stderr, "capvault: %s\n", strerror(ENOMEM));
		return CLI_EXIT_FAILED;
	}
	memcpy(given, argv, (size_t)argc * sizeof(*argv));
	log_init("capvault", LOG_LEVEL_INFO, false);
	if (cli_remote_options(&argc, argv) < 0) {
		free(given);
		return CLI_EXIT_USAGE;
	}
	if (argc < 2 || strcmp(argv[1], "query") != 0 || cli_remote_has_url() ||
	    cli_wants_help(argc - 1, argv + 1))
		run_engine(given);
	int rc = query(argc - 1, argv + 1, given);
	free(given);
	return cli_close_stdout(rc);
}
