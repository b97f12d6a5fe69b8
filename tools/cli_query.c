/*
 * cli_query.c - `capvault query FILTER` in the offline engine: the
 * matching packets as pcap (or pcapng when link types or resolutions
 * differ) to -w FILE or a non-terminal stdout; --count prints the count,
 * --explain the plan. Exit codes: 0 done, 1 failed, 2 bad usage or a
 * filter libpcap rejects.
 *
 * With capvaultd running it goes through the daemon (cli_query_remote.c),
 * as the thin front does; otherwise it opens the store itself.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "capwrite.h"
#include "cli.h"
#include "cli_query.h"
#include "cli_remote.h"
#include "ring.h"
#include "vault.h"

static int on_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct query_cli *c = opaque;
	return c->writer ? capwrite_packet(c->writer, pkt) : 0;
}

static int open_output(struct query_cli *c, struct query *q)
{
	enum capfile_format format;
	uint32_t linktype, snaplen;
	bool nsec;
	if (c->count)
		return 0;
	int err = cli_query_open_outfd(c);
	if (err)
		return err;
	query_output_format(q, &format, &linktype, &nsec, &snaplen);
	return capwrite_new(&c->writer, format, linktype, nsec, snaplen, cli_query_write, c);
}

static int run_query(struct query_cli *c, struct vault *v, struct ring *ring)
{
	struct query *q = NULL;
	struct errbuf eb = { { 0 } };
	int err = query_new(&q, v, &c->params, &eb);
	if (err) {
		fprintf(stderr, "capvault: query: %s\n", eb.msg[0] ? eb.msg : strerror(-err));
		return err == -EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
	}
	err = open_output(c, q);
	if (!err)
		err = c->count ? query_count(q, ring, &eb) : query_run(q, ring, on_packet, c, &eb);
	if (!err && c->writer)
		err = capwrite_flush(c->writer);
	if (err == -ECANCELED && c->printer) /* the printer has all it wants */
		err = 0;
	if (err)
		fprintf(stderr, "capvault: query: %s\n", eb.msg[0] ? eb.msg : strerror(-err));
	else if (c->count)
		printf("%" PRIu64 "\n", query_stats(q)->packets_matched);
	if (c->explain)
		cli_query_print_explain(query_stats(q));
	query_free(q);
	return err ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int cli_query(int argc, char **argv, const char *usage)
{
	struct query_cli c = { .outfd = STDOUT_FILENO };
	struct vault *v = NULL;
	struct ring *ring = NULL;
	struct errbuf eb = { { 0 } };
	int rc = CLI_EXIT_USAGE;
	if (cli_query_parse(&c, argc, argv) < 0) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		goto out;
	}
	rc = CLI_EXIT_FAILED;
	struct cli_remote *remote = NULL;
	int via = cli_remote_open(&remote, c.store);
	if (via != 0) {
		rc = cli_query_finish(&c, via > 0 ? cli_query_remote(remote, &c) : CLI_EXIT_FAILED);
		cli_remote_free(remote);
		goto out;
	}
	/* A query must answer fast: it leaves the crash cleanup (a walk of
	 * every object and a synced write) to the next command that opens
	 * the store normally. */
	if (vault_open_flags(&v, cli_store_path(c.store), VAULT_NO_CLEANUP, &eb) < 0) {
		fprintf(stderr, "capvault: %s\n", eb.msg);
		goto out;
	}
	if (ring_new(&ring, 64) < 0) {
		fprintf(stderr, "capvault: io_uring is not available\n");
		goto out;
	}
	rc = run_query(&c, v, ring);
	c.writer = capwrite_free(c.writer); /* its last bytes before the output ends */
	rc = cli_query_finish(&c, rc);
out:
	capwrite_free(c.writer);
	cli_query_release(&c);
	ring_free(ring);
	vault_close(v);
	return rc;
}
