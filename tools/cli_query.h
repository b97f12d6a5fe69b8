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
	"query [--store DIR] [--after T] [--before T] [--capture ID]... [--tag T]...\n"            \
	"                 [-c N|--limit N] [--count] [--explain] [-w FILE|-] [-AeKlnNqStvxX] [-F FILE | FILTER]"

/* What passes to the output, watched for pcapng interfaces: tcpdump
 * (libpcap 1.10) stops at the first interface of another link type. */
struct query_scan {
	uint8_t hdr[12];  /* a block's type, length and (an IDB's) link type */
	size_t have;
	uint64_t skip;    /* of the current block, after its header */
	bool started, pcapng, swap, lost;
	uint32_t linktypes[16];
	size_t nlinktypes;
};

struct query_cli {
	const char *store, *outpath;
	const char *filter_file;    /* -F: the filter is this file's text */
	const char *after, *before; /* as given, for the daemon */
	bool count, explain;
	struct query_params params;
	uint64_t ids[64];
	const char *tags[16];
	char print_flags[64];    /* tcpdump's print options given (-v, -e, -X...) */
	int outfd;
	char *tmp_path;          /* -w FILE is written here, renamed when complete */
	int printer;             /* pid of tcpdump printing the packets, or 0 */
	struct query_scan scan;
	struct capwrite *writer; /* the offline engine's */
};

/* Parses the subcommand's argv (after "query") into c, which starts
 * zeroed with outfd = STDOUT_FILENO. Returns 0, or -EINVAL after printing
 * a bad value (the caller prints the usage). */
int cli_query_parse(struct query_cli *c, int argc, char **argv);

/* Opens the output: -w FILE (a temporary name beside it until
 * cli_query_finish), -w - (standard output, not a terminal), or else a
 * tcpdump -r - -nn (plus the print options given) that prints the packets,
 * as tcpdump itself would. Returns 0 or a negative errno (printed). */
int cli_query_open_outfd(struct query_cli *c);

/* Ends the output of a query whose exit code so far is rc: -w FILE takes
 * its final name only when rc is 0, the printer is waited for, and an
 * answer of several link types is named (tcpdump would read only the
 * first one's packets). Returns the exit code. */
int cli_query_finish(struct query_cli *c, int rc);

/* Writes len bytes to c->outfd (opaque is c). Returns 0 or -errno. */
int cli_query_write(void *opaque, const void *buf, size_t len);

void cli_query_print_explain(const struct query_stats *st);

/* The query through the daemon r; returns the exit code. */
int cli_query_remote(struct cli_remote *r, struct query_cli *c);

/* Closes the output file and frees the parsed filter. */
void cli_query_release(struct query_cli *c);

#endif
