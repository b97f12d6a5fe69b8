/*
 * cli_query_remote.c - `capvault query` through a running capvaultd, and
 * what the offline engine shares with it (see cli_query.h): the query is
 * GET /v1/packets with the same parameters; the stream is copied to the
 * output as it arrives, and the count and plan come back as JSON printed
 * like the local ones. Linked into the thin front, so nothing here may
 * need the store's libraries.
 */
#include "cli_query.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "cli_remote.h"
#include "fdio.h"

/* A window bound; says what is wrong with a bad one (the caller then
 * names the option). */
static int parse_time(const char *arg, int64_t *ns)
{
	struct errbuf eb = { { 0 } };
	int err = query_parse_time(arg, ns, &eb);
	if (err)
		fprintf(stderr, "capvault: query: %s\n", eb.msg);
	return err;
}

int cli_query_write(void *opaque, const void *buf, size_t len)
{
	const struct query_cli *c = opaque;
	return fd_write_all(c->outfd, buf, len);
}

/* Digits only: strtoull would take "-1" as 2^64-1 and " 4" as 4. */
static int parse_count(const char *arg, uint64_t *out)
{
	uint64_t v = 0;

	if (!*arg)
		return -EINVAL;
	for (const char *d = arg; *d; d++) {
		if (*d < '0' || *d > '9' || v > (UINT64_MAX - (uint64_t)(*d - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*d - '0');
	}
	*out = v;
	return 0;
}

static int parse_option(struct query_cli *c, int opt, const char *arg)
{
	struct query_params *p = &c->params;
	switch (opt) {
	case 'a': c->after = arg; p->has_after = true; return parse_time(arg, &p->after_ns);
	case 'b': c->before = arg; p->has_before = true; return parse_time(arg, &p->before_ns);
	case 's': c->store = arg; return 0;
	case 'w': c->outpath = arg; return 0;
	case 'C': c->count = true; return 0;
	case 'e': c->explain = true; return 0;
	case 'l':
		return parse_count(arg, &p->limit);
	case 'c':
		if (p->ncapture_ids == sizeof(c->ids) / sizeof(c->ids[0]))
			return -E2BIG;
		if (parse_count(arg, &c->ids[p->ncapture_ids]) < 0 || !c->ids[p->ncapture_ids])
			return -EINVAL;
		p->ncapture_ids++;
		return 0;
	case 't':
		if (p->ntags == sizeof(c->tags) / sizeof(c->tags[0]))
			return -E2BIG;
		c->tags[p->ntags++] = arg;
		return 0;
	}
	return -EINVAL;
}

int cli_query_parse(struct query_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "after", required_argument, NULL, 'a' }, { "before", required_argument, NULL, 'b' },
		{ "store", required_argument, NULL, 's' }, { "capture", required_argument, NULL, 'c' },
		{ "tag", required_argument, NULL, 't' },   { "limit", required_argument, NULL, 'l' },
		{ "count", no_argument, NULL, 'C' },       { "explain", no_argument, NULL, 'e' },
		{ 0 },
	};
	int opt, longindex = -1;
	while ((opt = getopt_long(argc, argv, "+w:a:b:s:c:t:l:Ce", opts, &longindex)) != -1) {
		if (opt == '?' || parse_option(c, opt, optarg) < 0) {
			/* Named as typed: --after, or -a. */
			if (opt != '?' && longindex >= 0)
				fprintf(stderr, "capvault: query: bad value '%s' for --%s\n", optarg,
					opts[longindex].name);
			else if (opt != '?')
				fprintf(stderr, "capvault: query: bad value '%s' for -%c\n", optarg, opt);
			return -EINVAL;
		}
		longindex = -1;
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

void cli_query_print_explain(const struct query_stats *st)
{
	char indexed[96] = "";
	if (st->packets_indexed)
		snprintf(indexed, sizeof(indexed),
			 " (%" PRIu64 " counted from the time index, not read)", st->packets_indexed);
	fprintf(stderr,
		"plan: %s\ncaptures: %" PRIu64 " selected of %" PRIu64 "\ncandidate flows: %" PRIu64
		"%s\ncandidate packets: %" PRIu64 "\nmatched packets: %" PRIu64 "%s"
		"\nbytes read: %" PRIu64 " in %" PRIu64 " reads\nelapsed: %.3f ms\n",
		st->plan, st->captures_selected, st->captures_total, st->flows_candidate,
		st->plan_all ? " (the plan narrows nothing: every packet in the window is read)" : "",
		st->packets_candidate, st->packets_matched, indexed, st->bytes_read, st->reads,
		st->elapsed_ms);
}

int cli_query_open_outfd(struct query_cli *c)
{
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
	return 0;
}

static char *remote_target(const struct query_cli *c, bool count, bool explain)
{
	char *target = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&target, &len);
	if (!f)
		return NULL;
	fputs("/v1/packets", f);
	char sep = '?';
	if (c->params.filter && *c->params.filter)
		httpc_put_arg(f, sep, "filter", c->params.filter), sep = '&';
	if (c->after)
		httpc_put_arg(f, sep, "after", c->after), sep = '&';
	if (c->before)
		httpc_put_arg(f, sep, "before", c->before), sep = '&';
	if (c->params.limit)
		fprintf(f, "%climit=%" PRIu64, sep, c->params.limit), sep = '&';
	for (size_t i = 0; i < c->params.ncapture_ids; i++)
		fprintf(f, "%s%" PRIu64, i ? "," : sep == '?' ? "?captures=" : "&captures=", c->ids[i]);
	if (c->params.ncapture_ids)
		sep = '&';
	for (size_t i = 0; i < c->params.ntags; i++) {
		fputs(i ? "," : sep == '?' ? "?tags=" : "&tags=", f);
		httpc_put_segment(f, c->tags[i]);
	}
	if (c->params.ntags)
		sep = '&';
	if (explain)
		fprintf(f, "%cexplain=1", sep);
	else if (count)
		fprintf(f, "%ccount=1", sep);
	if (fclose(f) != 0) {
		free(target);
		return NULL;
	}
	return target;
}

static void print_explain_json(json_t *o)
{
#define U64(k) ((uint64_t)json_integer_value(json_object_get(o, k)))
	const char *plan = json_string_value(json_object_get(o, "plan"));
	struct query_stats st = {
		.plan_all = json_is_true(json_object_get(o, "plan_all")),
		.captures_total = U64("captures_total"),
		.captures_selected = U64("captures_selected"),
		.flows_candidate = U64("flows_candidate"),
		.packets_candidate = U64("packets_candidate"),
		.packets_matched = U64("packets_matched"),
		.packets_indexed = U64("packets_indexed"),
		.bytes_read = U64("bytes_read"),
		.reads = U64("reads"),
		.elapsed_ms = json_real_value(json_object_get(o, "elapsed_ms")),
	};
#undef U64
	snprintf(st.plan, sizeof(st.plan), "%s", plan ? plan : "?");
	cli_query_print_explain(&st);
}

/* An error reply of /v1/packets, worded and exited as the local path. */
static int remote_failed(json_t *reply, int status)
{
	if (status > 0)
		fprintf(stderr, "capvault: query: %s\n", cli_remote_message(reply, status));
	return status == 400 ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
}

/* count=1 or explain=1: a JSON answer, no packets. */
static int remote_json(struct cli_remote *r, struct query_cli *c, bool explain)
{
	_cleanup_free_ char *target = remote_target(c, true, explain);
	json_t *reply = NULL;
	int status = target ? cli_remote_json(r, "GET", target, NULL, &reply) : -1;
	int rc = CLI_EXIT_OK;
	if (status != 200)
		rc = remote_failed(reply, status);
	else if (c->count)
		printf("%" PRIu64 "\n", (uint64_t)json_integer_value(json_object_get(
						reply, explain ? "packets_matched" : "count")));
	if (status == 200 && explain)
		print_explain_json(reply);
	json_decref(reply);
	return rc;
}

static int remote_stream(struct cli_remote *r, struct query_cli *c)
{
	_cleanup_free_ char *target = remote_target(c, false, false);
	struct httpc_request req = { .method = "GET", .target = target };
	struct errbuf eb = { { 0 } };
	int status = target ? cli_remote_send(r, &req) : -1;
	if (status != 200) {
		json_t *reply = NULL;
		char *body = NULL;
		if (status > 0 && httpc_read_all(cli_remote_http(r), 1u << 20, &body, NULL, NULL) == 0)
			reply = json_loads(body, 0, NULL);
		free(body);
		int rc = remote_failed(reply, status);
		json_decref(reply);
		return rc;
	}
	if (cli_query_open_outfd(c) < 0)
		return CLI_EXIT_FAILED;
	_cleanup_free_ char *buf = malloc(256 * 1024);
	ssize_t n = buf ? 0 : -ENOMEM;
	int err = 0;
	while (buf && !err && (n = httpc_read(cli_remote_http(r), buf, 256 * 1024, &eb)) > 0)
		err = cli_query_write(c, buf, (size_t)n);
	if (n < 0 || err) {
		fprintf(stderr, "capvault: query: %s\n",
			err ? strerror(-err) : eb.msg[0] ? eb.msg : strerror((int)-n));
		return CLI_EXIT_FAILED;
	}
	return c->explain ? remote_json(r, c, true) : CLI_EXIT_OK;
}

int cli_query_remote(struct cli_remote *r, struct query_cli *c)
{
	if (c->count)
		return remote_json(r, c, c->explain);
	return remote_stream(r, c);
}

void cli_query_release(struct query_cli *c)
{
	if (c->outfd != STDOUT_FILENO && c->outfd >= 0)
		close(c->outfd);
	c->outfd = -1;
	free((char *)c->params.filter);
	c->params.filter = NULL;
}
