/*
 * cli_query.h - `capvault query`, shared by the thin front (which answers
 * through a running daemon) and the offline engine (which opens the
 * store): the options as both parse them, the output file, the plan as
 * printed, and the query through the daemon.
 */
#ifndef CAPVAULT_CLI_QUERY_H
#define CAPVAULT_CLI_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query.h"

struct capwrite;
struct cli_remote;

#define CLI_QUERY_USAGE                                                                          \
	"query [--store DIR] [--after T] [--before T] [--capture ID]... [--tag T]... [--limit N]\n" \
	"                 [--count] [--explain] [-w FILE] [FILTER]"

struct query_cli {
	const char *store, *outpath;
	const char *after, *before; /* as given, for the daemon */
	bool count, explain;
	struct query_params params;
	uint64_t ids[64];
	const char *tags[16];
	int outfd;
	struct capwrite *writer; /* the offline engine's */
};

/* Parses the subcommand's argv (after "query") into c, which starts
 * zeroed with outfd = STDOUT_FILENO. Returns 0, or -EINVAL after printing
 * a bad value (the caller prints the usage). */
int cli_query_parse(struct query_cli *c, int argc, char **argv);

/* Opens -w FILE, or checks that stdout is not a terminal. Returns 0 or a
 * negative errno (printed). */
int cli_query_open_outfd(struct query_cli *c);

/* Writes len bytes to c->outfd (opaque is c). Returns 0 or -errno. */
int cli_query_write(void *opaque, const void *buf, size_t len);

void cli_query_print_explain(const struct query_stats *st);

/* The query through the daemon r; returns the exit code. */
int cli_query_remote(struct cli_remote *r, struct query_cli *c);

/* Closes the output file and frees the parsed filter. */
void cli_query_release(struct query_cli *c);

#endif
