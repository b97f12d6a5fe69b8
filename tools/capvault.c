/*
 * capvault-offline - the command-line tool's engine, which the thin
 * `capvault` front (capvault_front.c) runs with the user's argv and
 * environment unchanged for every command it does not answer itself.
 *
 * Talks to a running capvaultd through its unix socket (or --url), and
 * opens the store itself only when no daemon runs; the output is the same
 * either way. Each subcommand is one function taking argc/argv after its name; exit
 * codes: 0 success, 1 some work failed, 2 usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_query.h"
#include "cli_remote.h"
#include "httpc_tls.h"
#include "log.h"

static const struct cli_command commands[] = {
	{ "init", cli_init, "init [--store DIR]", true },
	{ "import", cli_import,
	  "import [--store DIR] [--tags a,b] [--tags-from-path] [--move] [--jobs N] [--follow]\n"
	  "                 [--journal FILE] [--dry-run] [--quiet] [--json] [--block-size BYTES]\n"
	  "                 [--from-list FILE|-] [--tar FILE|-|DEVICE]... [FILE|DIR|TAR...]" },
	{ "ls", cli_ls, "ls [--store DIR] [--tag T] [--json]" },
	{ "info", cli_info, "info [--store DIR] [--json] ID|SHA256" },
	{ "stats", cli_stats, "stats [--store DIR] [--json]" },
	{ "query", cli_query, CLI_QUERY_USAGE },
	{ "rm", cli_rm, "rm [--store DIR] [--config FILE] [--json] ID|SHA256..." },
	{ "tag", cli_tag, "tag [--store DIR] [--json] ID|SHA256 [+]TAG|-TAG..." },
	{ "prune", cli_prune, "prune [--store DIR] [--config FILE] [--dry-run] [--json]" },
	{ "tier", cli_tier, "tier [--store DIR] [--dry-run] [--json] ID|SHA256..." },
	{ "fsck", cli_fsck, "fsck [--store DIR] [--remote] [--config FILE] [--verify] [--repair] [--json]", true },
	{ "backup", cli_backup, "backup [--store DIR] [--json] DIR" },
	{ "restore", cli_restore, "restore DIR --store DIR2 [--config FILE]", true },
	{ "token", cli_token,
	  "token [--store DIR] add NAME --scopes read,upload,delete,admin [--tags a,b] [--cloudshark] | ls [--json] | revoke NAME | link SECRET|-",
	  false, true },
	{ "status", cli_status, "status [--store DIR] [--json]" },
	{ "cert", cli_cert, "cert selfsigned [--out DIR] [--days N] [--cn NAME] [--force]", true, true },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: capvault [--version] [--url URL [--token T] [--cacert FILE]] "
		     "[--socket PATH] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  capvault %s\n", commands[i].usage);
	fprintf(out, "\nThe store defaults to $CAPVAULT_STORE, else ./capvault-data; only init (and\n"
		     "capvaultd) create one. When capvaultd runs (STORE/capvault.sock or\n"
		     CLI_RUN_SOCKET "), commands go through it;\n"
		     "--url (or $CAPVAULT_URL) with --token (or $CAPVAULT_TOKEN) reaches a remote one.\n");
}

/* `capvault CMD --help` answers on stdout; a local-only command refuses a
 * --url rather than silently working on a local store. */
static int run_command(const struct cli_command *c, int argc, char **argv)
{
	if (cli_wants_help(argc, argv) ||
	    (c->subcommands && argc > 2 && !strcmp(argv[2], "-h"))) {
		printf("usage: capvault %s\n", c->usage);
		return CLI_EXIT_OK;
	}
	if (c->local_only && cli_remote_has_url()) {
		fprintf(stderr, "capvault: %s works on a local store only; it cannot reach --url "
				"(or $CAPVAULT_URL): run it on the daemon's host, with --store\n",
			c->name);
		return CLI_EXIT_USAGE;
	}
	return c->run(argc, argv, c->usage);
}

static int run(int argc, char **argv)
{
	cli_remote_set_tls(&httpc_tls_openssl);
	if (cli_remote_options(&argc, argv) < 0)
		return CLI_EXIT_USAGE;
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("capvault %s\n", CAPVAULT_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return run_command(&commands[i], argc - 1, argv + 1);
	}
	fprintf(stderr, "capvault: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	log_init("capvault", LOG_LEVEL_INFO, false);
	return cli_close_stdout(run(argc, argv));
}
