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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

static void scan_output(struct query_scan *s, const uint8_t *p, size_t len);

int cli_query_write(void *opaque, const void *buf, size_t len)
{
	struct query_cli *c = opaque;
	scan_output(&c->scan, buf, len);
	int err = fd_write_all(c->outfd, buf, len);
	/* The printer stopped reading (| head): the rest is not wanted. */
	return err == -EPIPE && c->printer ? -ECANCELED : err;
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
	case 'E': c->explain = true; return 0;
	case 'L':
	case 'c': /* tcpdump's -c N: at most N packets */
		return parse_count(arg, &p->limit);
	case 'I':
		if (p->ncapture_ids == sizeof(c->ids) / sizeof(c->ids[0]))
			return -E2BIG;
		if (parse_count(arg, &c->ids[p->ncapture_ids]) < 0 || !c->ids[p->ncapture_ids])
			return -EINVAL;
		p->ncapture_ids++;
		return 0;
	case 'T':
		if (p->ntags == sizeof(c->tags) / sizeof(c->tags[0]))
			return -E2BIG;
		c->tags[p->ntags++] = arg;
		return 0;
	}
	return -EINVAL;
}

/* tcpdump's options that only change how packets are printed. */
#define PRINT_FLAGS "AeKlnNqStvxX"

/* The filter may be given as several words, as tcpdump takes it. */
static int add_word(struct query_cli *c, const char *word)
{
	const char *old = c->params.filter;
	char *joined = NULL;
	if (asprintf(&joined, "%s%s%s", old ? old : "", old ? " " : "", word) < 0)
		return -ENOMEM;
	free((char *)old);
	c->params.filter = joined;
	return 0;
}

/* tcpdump's -F FILE: the filter is the file's text, '#' to the end of a
 * line a comment (as tcpdump reads it). At most FILTER_FILE_MAX bytes. */
#define FILTER_FILE_MAX (64u * 1024)
static int read_filter_file(const char *path, char **out)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "capvault: query: -F %s: %s\n", path, strerror(errno));
		return -EINVAL;
	}
	char *text = malloc(FILTER_FILE_MAX + 1);
	size_t n = text ? fread(text, 1, FILTER_FILE_MAX + 1, f) : 0;
	bool failed = text && ferror(f);
	fclose(f);
	if (!text)
		return -ENOMEM;
	if (failed || n > FILTER_FILE_MAX || memchr(text, '\0', n)) {
		fprintf(stderr, "capvault: query: -F %s: %s\n", path,
			failed ? "cannot read it" : n > FILTER_FILE_MAX ? "over 64 KiB: not a filter"
									: "it holds a NUL byte");
		free(text);
		return -EINVAL;
	}
	text[n] = '\0';
	for (char *p = text; (p = strchr(p, '#')) != NULL;)
		while (*p && *p != '\n')
			*p++ = ' ';
	*out = text;
	return 0;
}

int cli_query_parse(struct query_cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "after", required_argument, NULL, 'a' }, { "before", required_argument, NULL, 'b' },
		{ "store", required_argument, NULL, 's' }, { "capture", required_argument, NULL, 'I' },
		{ "tag", required_argument, NULL, 'T' },   { "limit", required_argument, NULL, 'L' },
		{ "count", no_argument, NULL, 'C' },       { "explain", no_argument, NULL, 'E' },
		{ 0 },
	};
	int opt, longindex = -1;
	/* Options may follow the filter, as tcpdump takes them; tcpdump's
	 * print options go to the tcpdump that prints the packets. --tag has
	 * no short form: -t is tcpdump's (no timestamps), and a "t:" here
	 * made it take the next word and --tag a print flag. */
	optind = 1;
	while ((opt = getopt_long(argc, argv, "-w:a:b:s:c:F:r:C" PRINT_FLAGS, opts, &longindex)) !=
	       -1) {
		if (opt == 'r') {
			fprintf(stderr, "capvault: query: -r: capvault query reads the vault, not a "
					"file: `capvault import %s` first, or read it with tcpdump -r\n",
				optarg);
			return -EINVAL;
		}
		if (opt == 'F') {
			c->filter_file = optarg;
			continue;
		}
		if (opt == 1) {
			if (add_word(c, optarg) < 0)
				return -ENOMEM;
			continue;
		}
		if (strchr(PRINT_FLAGS, opt) && opt) {
			size_t n = strlen(c->print_flags);
			if (n + 1 >= sizeof(c->print_flags))
				return -E2BIG;
			c->print_flags[n] = (char)opt;
			continue;
		}
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
	/* After "--", the rest is filter too. */
	for (int i = optind; i < argc; i++)
		if (add_word(c, argv[i]) < 0)
			return -ENOMEM;
	if (c->filter_file) {
		if (c->params.filter) {
			fprintf(stderr, "capvault: query: -F %s and a filter expression: give one of "
					"them\n", c->filter_file);
			return -EINVAL;
		}
		int err = read_filter_file(c->filter_file, (char **)&c->params.filter);
		if (err < 0)
			return err;
	}
	if (!c->params.filter && !(c->params.filter = strdup("")))
		return -ENOMEM;
	c->params.capture_ids = c->ids;
	c->params.tags = c->tags;
	return 0;
}

void cli_query_print_explain(const struct query_stats *st)
{
	char indexed[96] = "", remote[64] = "";
	if (st->bytes_remote)
		snprintf(remote, sizeof(remote), " (%" PRIu64 " sent by the object store)",
			 st->bytes_remote);
	if (st->packets_indexed)
		snprintf(indexed, sizeof(indexed),
			 " (%" PRIu64 " counted from the time index, not read)", st->packets_indexed);
	fprintf(stderr,
		"plan: %s\ncaptures: %" PRIu64 " selected of %" PRIu64 "\ncandidate flows: %" PRIu64
		"%s\ncandidate packets: %" PRIu64 "\nmatched packets: %" PRIu64 "%s"
		"\nbytes read: %" PRIu64 " in %" PRIu64 " reads%s\nelapsed: %.3f ms\n",
		st->plan, st->captures_selected, st->captures_total, st->flows_candidate,
		st->plan_all ? " (the plan narrows nothing: every packet in the window is read)" : "",
		st->packets_candidate, st->packets_matched, indexed, st->bytes_read, st->reads,
		remote, st->elapsed_ms);
}

/* -w FILE that is not a regular file (/dev/null, a FIFO, a symlink):
 * written where it is, as tcpdump does. A rename over it would replace
 * the device node or the link itself. */
static int open_in_place(struct query_cli *c)
{
	c->outfd = open(c->outpath, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
	if (c->outfd < 0) {
		int err = -errno;
		fprintf(stderr, "capvault: %s: %s\n", c->outpath, strerror(errno));
		return err;
	}
	return 0;
}

/* -w FILE: a new file or a regular one is written under a temporary
 * name beside it and renamed, so that a query that fails leaves the file
 * that was there. A file replaced keeps its mode. */
static int open_file(struct query_cli *c)
{
	struct stat st;
	mode_t mode = 0644; /* as open(2) with 0644 under the usual umask */
	if (lstat(c->outpath, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return open_in_place(c);
		mode = st.st_mode & 07777;
	}
	if (asprintf(&c->tmp_path, "%s.capvault-XXXXXX", c->outpath) < 0) {
		c->tmp_path = NULL;
		return -ENOMEM;
	}
	c->outfd = mkostemp(c->tmp_path, O_CLOEXEC);
	if (c->outfd < 0) {
		int err = -errno;
		fprintf(stderr, "capvault: %s: %s\n", c->outpath, strerror(errno));
		free(c->tmp_path);
		c->tmp_path = NULL;
		return err;
	}
	if (fchmod(c->outfd, mode) < 0) {
		int err = -errno;
		fprintf(stderr, "capvault: %s: %s\n", c->tmp_path, strerror(errno));
		return err;
	}
	return 0;
}

/* The printer: tcpdump reading the answer on its standard input. */
static int start_printer(struct query_cli *c)
{
	char *argv[8 + sizeof(c->print_flags)];
	char flags[sizeof(c->print_flags)][3];
	size_t n = 0;
	argv[n++] = "tcpdump";
	argv[n++] = "-r";
	argv[n++] = "-";
	argv[n++] = "-nn";
	for (size_t i = 0; c->print_flags[i]; i++) {
		if (c->print_flags[i] == 'n')
			continue; /* -nn already */
		snprintf(flags[i], sizeof(flags[i]), "-%c", c->print_flags[i]);
		argv[n++] = flags[i];
	}
	argv[n] = NULL;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int err = -errno;
		close(fds[0]);
		close(fds[1]);
		return err;
	}
	if (pid == 0) {
		dup2(fds[0], STDIN_FILENO);
		execvp("tcpdump", argv);
		fprintf(stderr, "capvault: query: cannot run tcpdump to print the packets (%s): "
			"install tcpdump, or write them with -w FILE\n", strerror(errno));
		_exit(127);
	}
	close(fds[0]);
	/* A printer that stops early (| head) ends the query, not the program. */
	signal(SIGPIPE, SIG_IGN);
	c->printer = pid;
	c->outfd = fds[1];
	return 0;
}

int cli_query_open_outfd(struct query_cli *c)
{
	if (c->outpath && strcmp(c->outpath, "-") != 0)
		return open_file(c);
	if (c->outpath) {
		if (isatty(STDOUT_FILENO)) {
			fprintf(stderr, "capvault: not writing a capture to a terminal: -w - is for "
					"a pipe; use -w FILE, or no -w to print the packets\n");
			return -EINVAL;
		}
		return 0;
	}
	int err = start_printer(c);
	if (err)
		fprintf(stderr, "capvault: query: cannot start tcpdump: %s\n", strerror(-err));
	return err;
}

static uint32_t scan_u32(const struct query_scan *s, const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return s->swap ? __builtin_bswap32(v) : v;
}

/* One block header of the pcapng stream: notes an IDB's link type. */
static void scan_block(struct query_scan *s)
{
	uint32_t type = scan_u32(s, s->hdr);
	if (type == 0x0A0D0D0Au) { /* a section: its byte order */
		uint32_t magic;
		memcpy(&magic, s->hdr + 8, 4);
		s->swap = magic == 0x4D3C2B1Au;
	}
	uint32_t len = scan_u32(s, s->hdr + 4);
	if (len < 12 || len % 4) {
		s->lost = true;
		return;
	}
	if (type == 1) {
		uint16_t lt;
		memcpy(&lt, s->hdr + 8, 2);
		lt = s->swap ? __builtin_bswap16(lt) : lt;
		bool known = false;
		for (size_t i = 0; i < s->nlinktypes; i++)
			known |= s->linktypes[i] == lt;
		if (!known && s->nlinktypes < sizeof(s->linktypes) / sizeof(s->linktypes[0]))
			s->linktypes[s->nlinktypes++] = lt;
	}
	s->skip = len - 12;
}

static void scan_output(struct query_scan *s, const uint8_t *p, size_t len)
{
	if (!s->started && len >= 4) {
		s->started = true;
		s->pcapng = p[0] == 0x0A && p[1] == 0x0D && p[2] == 0x0D && p[3] == 0x0A;
	}
	while (s->pcapng && !s->lost && len) {
		if (s->skip) {
			size_t n = s->skip < len ? (size_t)s->skip : len;
			s->skip -= n, p += n, len -= n;
			continue;
		}
		size_t n = sizeof(s->hdr) - s->have < len ? sizeof(s->hdr) - s->have : len;
		memcpy(s->hdr + s->have, p, n);
		s->have += n, p += n, len -= n;
		if (s->have == sizeof(s->hdr)) {
			s->have = 0;
			scan_block(s);
		}
	}
}

int cli_query_finish(struct query_cli *c, int rc)
{
	if (c->outfd >= 0 && c->tmp_path && rc == 0 && fdatasync(c->outfd) < 0) {
		fprintf(stderr, "capvault: %s: %s\n", c->outpath, strerror(errno));
		rc = CLI_EXIT_FAILED;
	}
	if (c->outfd != STDOUT_FILENO && c->outfd >= 0)
		close(c->outfd);
	c->outfd = -1;
	if (c->tmp_path) {
		if (rc == 0 && rename(c->tmp_path, c->outpath) < 0) {
			fprintf(stderr, "capvault: %s: %s\n", c->outpath, strerror(errno));
			rc = CLI_EXIT_FAILED;
		}
		if (rc != 0)
			unlink(c->tmp_path);
		free(c->tmp_path);
		c->tmp_path = NULL;
	}
	if (c->printer > 0) {
		int status = 0;
		while (waitpid(c->printer, &status, 0) < 0 && errno == EINTR)
			;
		c->printer = 0;
		if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
			rc = CLI_EXIT_FAILED;
	}
	if (c->scan.nlinktypes > 1)
		fprintf(stderr,
			"capvault: query: the answer holds packets of %zu link types (pcapng); tcpdump "
			"(libpcap 1.10) %s only the packets of the first one. Read the whole answer with "
			"tshark -r FILE, or query one link type at a time (--capture)\n",
			c->scan.nlinktypes, c->outpath ? "reads" : "printed");
	c->scan.nlinktypes = 0;
	return rc;
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
		.bytes_remote = U64("bytes_remote"),
		.elapsed_ms = json_real_value(json_object_get(o, "elapsed_ms")),
	};
#undef U64
	snprintf(st.plan, sizeof(st.plan), "%s", plan ? plan : "?");
	cli_query_print_explain(&st);
}

/* An error reply of /v1/packets, worded and exited as the local path. */
static int remote_failed(json_t *reply, int status)
{
	const char *why = cli_remote_message(reply, status);

	/* The daemon's message starts with what failed, "query: ", too. */
	if (!strncmp(why, "query: ", 7))
		why += 7;
	if (status > 0)
		fprintf(stderr, "capvault: query: %s\n", why);
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
	if (err == -ECANCELED) /* the printer has all it wants */
		return CLI_EXIT_OK;
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
	cli_query_finish(c, CLI_EXIT_FAILED);
	free((char *)c->params.filter);
	c->params.filter = NULL;
}
