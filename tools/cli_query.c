/*
 * cli_query.c - `capvault query FILTER`: the matching packets as pcap (or
 * pcapng when link types or resolutions differ) to -w FILE or a
 * non-terminal stdout; --count prints the count, --explain the plan.
 * Exit codes: 0 done, 1 failed, 2 bad usage or a filter libpcap rejects.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capwrite.h"
#include "cli.h"
#include "query.h"
#include "ring.h"
#include "vault.h"

struct query_cli {
	const char *store, *outpath;
	bool count, explain;
	struct query_params params;
	uint64_t ids[64];
	const char *tags[16];
	int outfd;
	struct capwrite *writer;
};

static int write_all(void *opaque, const void *buf, size_t len)
{
	struct query_cli *c = opaque;
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(c->outfd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int on_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct query_cli *c = opaque;
	return c->writer ? capwrite_packet(c->writer, pkt) : 0;
}

static int parse_option(struct query_cli *c, int opt, const char *arg)
{
	struct query_params *p = &c->params;
	char *end;
	switch (opt) {
	case 'a': p->has_after = true; return query_parse_time(arg, &p->after_ns);
	case 'b': p->has_before = true; return query_parse_time(arg, &p->before_ns);
	case 's': c->store = arg; return 0;
	case 'w': c->outpath = arg; return 0;
	case 'C': c->count = true; return 0;
	case 'e': c->explain = true; return 0;
	case 'l':
		p->limit = strtoull(arg, &end, 10);
		return *end || !*arg ? -EINVAL : 0;
	case 'c':
		if (p->ncapture_ids == sizeof(c->ids) / sizeof(c->ids[0]))
			return -E2BIG;
		c->ids[p->ncapture_ids] = strtoull(arg, &end, 10);
		return *end || !*arg ? -EINVAL : (p->ncapture_ids++, 0);
	case 't':
		if (p->ntags == sizeof(c->tags) / sizeof(c->tags[0]))
			return -E2BIG;
		c->tags[p->ntags++] = arg;
		return 0;
	}
	return -EINVAL;
}

static int parse_args(struct query_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "after", required_argument, NULL, 'a' }, { "before", required_argument, NULL, 'b' },
		{ "store", required_argument, NULL, 's' }, { "capture", required_argument, NULL, 'c' },
		{ "tag", required_argument, NULL, 't' },   { "limit", required_argument, NULL, 'l' },
		{ "count", no_argument, NULL, 'C' },       { "explain", no_argument, NULL, 'e' },
		{ 0 },
	};
	int opt;
	while ((opt = getopt_long(argc, argv, "+w:a:b:s:c:t:l:Ce", opts, NULL)) != -1) {
		if (opt == '?' || parse_option(c, opt, optarg) < 0) {
			if (opt != '?')
				fprintf(stderr, "capvault: query: bad value '%s' for -%c\n", optarg, opt);
			return -EINVAL;
		}
	}
	/* The filter may be given as several words, as tcpdump takes it. */
	size_t len = 0;
	for (int i = optind; i < argc; i++)
		len += strlen(argv[i]) + 1;
	char *filter = calloc(1, len + 1);
	if (!filter)
		return -ENOMEM;
	for (int i = optind; i < argc; i++) {
		size_t used = strlen(filter);
		snprintf(filter + used, len + 1 - used, "%s%s", i > optind ? " " : "", argv[i]);
	}
	c->params.filter = filter;
	c->params.capture_ids = c->ids;
	c->params.tags = c->tags;
	return 0;
}

static void print_explain(const struct query_stats *st)
{
	fprintf(stderr,
		"plan: %s\ncaptures: %" PRIu64 " selected of %" PRIu64 "\ncandidate flows: %" PRIu64
		"%s\ncandidate packets: %" PRIu64 "\nmatched packets: %" PRIu64
		"\nbytes read: %" PRIu64 " in %" PRIu64 " reads\nelapsed: %.3f ms\n",
		st->plan, st->captures_selected, st->captures_total, st->flows_candidate,
		st->plan_all ? " (the plan narrows nothing: every packet in the window is read)" : "",
		st->packets_candidate, st->packets_matched, st->bytes_read, st->reads,
		st->elapsed_ms);
}

static int open_output(struct query_cli *c, struct query *q)
{
	enum capfile_format format;
	uint32_t linktype, snaplen;
	bool nsec;
	if (c->count)
		return 0;
	if (c->outpath && strcmp(c->outpath, "-") != 0) {
		c->outfd = open(c->outpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->outfd < 0) {
			fprintf(stderr, "capvault: %s: %s\n", c->outpath, strerror(errno));
			return -errno;
		}
	} else if (isatty(STDOUT_FILENO)) {
		fprintf(stderr, "capvault: not writing a capture to a terminal: use -w FILE or --count\n");
		return -EINVAL;
	}
	query_output_format(q, &format, &linktype, &nsec, &snaplen);
	return capwrite_new(&c->writer, format, linktype, nsec, snaplen, write_all, c);
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
		err = query_run(q, ring, on_packet, c, &eb);
	if (!err && c->writer)
		err = capwrite_flush(c->writer);
	if (err)
		fprintf(stderr, "capvault: query: %s\n", eb.msg[0] ? eb.msg : strerror(-err));
	else if (c->count)
		printf("%" PRIu64 "\n", query_stats(q)->packets_matched);
	if (c->explain)
		print_explain(query_stats(q));
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
	if (parse_args(&c, argc, argv) < 0) {
		fprintf(stderr, "usage: capvault %s\n", usage);
		goto out;
	}
	rc = CLI_EXIT_FAILED;
	/* Reading needs no crash cleanup; the next writer does it. */
	if (vault_open_flags(&v, cli_store_path(c.store), VAULT_NO_CLEANUP, &eb) < 0) {
		fprintf(stderr, "capvault: %s\n", eb.msg);
		goto out;
	}
	if (ring_new(&ring, 64) < 0) {
		fprintf(stderr, "capvault: io_uring is not available\n");
		goto out;
	}
	rc = run_query(&c, v, ring);
out:
	capwrite_free(c.writer);
	if (c.outfd != STDOUT_FILENO && c.outfd >= 0)
		close(c.outfd);
	ring_free(ring);
	vault_close(v);
	free((char *)c.params.filter);
	return rc;
}
