/*
 * api_packets.c - GET /v1/packets: the query engine of `capvault query`
 * over HTTP, as a pcap/pcapng stream, a count (count=1) or the plan
 * (explain=1).
 *
 * query_run pushes packets; HTTP pulls bytes. A producer thread runs the
 * query and writes the capture into a bounded buffer that the response's
 * reader drains, each side waiting for the other, so memory stays at the
 * buffer's size however many packets match and a slow client only slows
 * the query. When the client leaves, the query is cancelled: the
 * producer (through its own duplicate of the socket: it may outlive the
 * request's callbacks) and the count and explain runs look at the
 * connection between captures and every few thousand packets, so a query
 * that matches little, and so writes nothing for long, stops too; the
 * reader's free callback cancels the producer and joins it.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_priv.h"
#include "capwrite.h"
#include "log.h"
#include "monoclock.h"
#include "objread.h"
#include "parse.h"
#include "query.h"
#include "ring.h"

#define PIPE_SIZE (1u << 20)
/* How long the status waits for a query to end (see answer_whole). */
#define WHOLE_WAIT_NS (200ull * 1000000)
#define MAX_IDS 1024
#define RING_ENTRIES 64

const double api_latency_bounds[API_LAT_BUCKETS] = { 0.001, 0.005, 0.01, 0.05, 0.1,
						     0.5,   1,     5,    30,   300 };

struct pstream {
	struct api_server *api;
	int sock; /* a duplicate of the client's socket, for the producer to watch */
	struct query *q;
	struct capwrite *w;
	pthread_t thread;
	bool started;
	bool answered; /* replied with an error before the stream: counted there */
	bool count, explain; /* the request's flags: a count (with the plan), no packets */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *buf;
	size_t head, len; /* ring buffer of PIPE_SIZE */
	bool done, cancel;
	int err;
	char why[sizeof(((struct errbuf *)0)->msg)]; /* the producer's error text */
	uint64_t t0_ns; /* mono_ns() at the request's start */
	/* the request's parameters, owned here */
	char *filter;
	char **tags;
	size_t ntags;
	uint64_t *ids;
	struct query_params params;
};

/* Seconds since t0_ns (mono_ns). */
static double since(uint64_t t0_ns)
{
	return (double)(mono_ns() - t0_ns) / 1e9;
}

static void record_latency(struct api_server *api, double secs, bool failed)
{
	size_t b = 0;
	while (b < API_LAT_BUCKETS && secs > api_latency_bounds[b])
		b++;
	atomic_fetch_add(&api->m.query_lat[b], 1);
	atomic_fetch_add(&api->m.query_lat_sum_us, (uint64_t)(secs * 1e6));
	atomic_fetch_add(&api->m.queries, 1);
	if (failed)
		atomic_fetch_add(&api->m.query_failures, 1);
}

/* capwrite output: blocks while the buffer is full. */
static int pipe_write(void *opaque, const void *data, size_t len)
{
	struct pstream *p = opaque;
	const char *s = data;
	pthread_mutex_lock(&p->mu);
	while (len > 0 && !p->cancel) {
		if (p->len == PIPE_SIZE) {
			pthread_cond_wait(&p->cv, &p->mu);
			continue;
		}
		size_t tail = (p->head + p->len) % PIPE_SIZE;
		size_t room = PIPE_SIZE - p->len, run = PIPE_SIZE - tail;
		size_t n = len < room ? len : room;
		n = n < run ? n : run;
		memcpy(p->buf + tail, s, n);
		p->len += n;
		s += n;
		len -= n;
		pthread_cond_broadcast(&p->cv);
	}
	int rc = p->cancel ? -ECANCELED : 0;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static int on_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct pstream *p = opaque;
	return capwrite_packet(p->w, pkt);
}

static void *producer(void *arg)
{
	struct pstream *p = arg;
	struct ring *ring = NULL;
	struct errbuf eb = { { 0 } };
	enum capfile_format format;
	uint32_t linktype, snaplen;
	bool nsec;
	query_output_format(p->q, &format, &linktype, &nsec, &snaplen);
	int err = ring_new(&ring, RING_ENTRIES);
	if (!err)
		err = capwrite_new(&p->w, format, linktype, nsec, snaplen, pipe_write, p);
	if (!err)
		err = query_run(p->q, ring, on_packet, p, &eb);
	if (!err)
		err = capwrite_flush(p->w);
	ring_free(ring);
	pthread_mutex_lock(&p->mu);
	p->err = err;
	snprintf(p->why, sizeof(p->why), "%s", eb.msg);
	p->done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void cancel_locked(struct pstream *p)
{
	p->cancel = true;
	query_cancel(p->q);
	pthread_cond_broadcast(&p->cv);
}

static ssize_t pipe_read(void *ctx, uint64_t pos, char *out, size_t max)
{
	struct pstream *p = ctx;
	(void)pos;
	pthread_mutex_lock(&p->mu);
	while (p->len == 0 && !p->done)
		pthread_cond_wait(&p->cv, &p->mu);
	size_t n = 0;
	while (n < max && p->len > 0) {
		size_t run = PIPE_SIZE - p->head, want = max - n;
		size_t k = p->len < run ? p->len : run;
		k = k < want ? k : want;
		memcpy(out + n, p->buf + p->head, k);
		p->head = (p->head + k) % PIPE_SIZE;
		p->len -= k;
		n += k;
	}
	pthread_cond_broadcast(&p->cv);
	ssize_t rc = n ? (ssize_t)n : p->err ? HTTP_STREAM_ERROR : HTTP_STREAM_END;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static void pstream_free(void *ctx)
{
	struct pstream *p = ctx;
	if (!p)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->mu);
		cancel_locked(p);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	}
	if (p->started && !p->answered) {
		if (p->err == -ECANCELED)
			log_info("query: the client left: %s", p->why[0] ? p->why : "cancelled");
		else if (objread_store_error(p->err)) /* the status went out: the stream is cut */
			log_errx("query cut short: %s", p->why[0] ? p->why : strerror(-p->err));
		else if (p->err)
			log_warnx("query cut short: %s", p->why[0] ? p->why : strerror(-p->err));
		record_latency(p->api, since(p->t0_ns), p->err != 0);
		atomic_fetch_add(&p->api->m.query_packets, query_stats(p->q)->packets_matched);
	}
	capwrite_free(p->w);
	query_free(p->q);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->buf);
	free(p->filter);
	api_strv_free(p->tags, p->ntags);
	free(p->ids);
	if (p->sock >= 0)
		close(p->sock);
	free(p);
}

/* --- parameters --- */

static int parse_ids(struct pstream *p, const char *list)
{
	char **v = NULL;
	size_t n = 0;
	int err = api_split_list(list, &v, &n);
	if (!err && n > MAX_IDS)
		err = -E2BIG;
	if (!err && !(p->ids = calloc(n ? n : 1, sizeof(*p->ids))))
		err = -ENOMEM;
	for (size_t i = 0; !err && i < n; i++)
		err = api_parse_u64(v[i], &p->ids[i]);
	p->params.capture_ids = p->ids;
	p->params.ncapture_ids = err ? 0 : n;
	api_strv_free(v, n);
	return err;
}

/* A flag's value: "1", "true" or "" set it, "0" or "false" clear it; false
 * for anything else (a typo is refused, not read as false). */
static bool flag_value(const char *v, bool *out)
{
	if (!strcmp(v, "1") || !strcmp(v, "true") || !*v)
		return *out = true;
	*out = false;
	return !strcmp(v, "0") || !strcmp(v, "false");
}

/* Fills p->params from the query string; replies 400 and returns false. */
static bool parse_params(struct api_call *c, struct pstream *p)
{
	struct query_params *qp = &p->params;
	const char *filter = http_req_arg(c->r, "filter"), *v;
	const char *bad = NULL;
	struct errbuf eb = { { 0 } };
	static const char *const once[] = { "filter", "after", "before", "limit", "captures",
					     "tags", "count", "explain", NULL };
	if (!api_args_once(c, once))
		return false;
	if (filter && !(p->filter = strdup(filter)))
		bad = "filter";
	qp->filter = p->filter;
	if ((v = http_req_arg(c->r, "after")) && (qp->has_after = true) &&
	    query_parse_time(v, &qp->after_ns, &eb) < 0)
		bad = "after";
	if ((v = http_req_arg(c->r, "before")) && (qp->has_before = true) &&
	    query_parse_time(v, &qp->before_ns, &eb) < 0)
		bad = "before";
	if ((v = http_req_arg(c->r, "limit")) && api_parse_u64(v, &qp->limit) < 0)
		bad = "limit";
	if ((v = http_req_arg(c->r, "captures")) && parse_ids(p, v) < 0)
		bad = "captures (comma-separated ids)";
	if ((v = http_req_arg(c->r, "tags")) && api_split_list(v, &p->tags, &p->ntags) < 0)
		bad = "tags";
	if ((v = http_req_arg(c->r, "count")) && !flag_value(v, &p->count))
		bad = "count (1, true or empty; 0 or false)";
	if ((v = http_req_arg(c->r, "explain")) && !flag_value(v, &p->explain))
		bad = "explain (1, true or empty; 0 or false)";
	qp->tags = (const char *const *)p->tags;
	qp->ntags = p->ntags;
	if (bad && eb.msg[0])
		api_error(c, 400, "bad_parameter", "bad value for %s: %s", bad, eb.msg);
	else if (bad)
		api_error(c, 400, "bad_parameter", "bad value for %s", bad);
	return !bad;
}

static json_t *stats_json(const struct query_stats *st)
{
	return json_pack("{sssbsIsIsIsIsIsIsIsIsIsf}", "plan", st->plan, "plan_all", st->plan_all,
			 "captures_total", (json_int_t)st->captures_total, "captures_selected",
			 (json_int_t)st->captures_selected, "flows_candidate",
			 (json_int_t)st->flows_candidate, "packets_candidate",
			 (json_int_t)st->packets_candidate, "packets_matched",
			 (json_int_t)st->packets_matched, "packets_indexed",
			 (json_int_t)st->packets_indexed, "bytes_read", (json_int_t)st->bytes_read,
			 "reads", (json_int_t)st->reads, "bytes_remote", (json_int_t)st->bytes_remote,
			 "elapsed_ms", st->elapsed_ms);
}

static bool client_gone(void *opaque)
{
	return http_req_client_gone(opaque);
}

static bool socket_gone(void *opaque)
{
	return http_socket_gone(((struct pstream *)opaque)->sock);
}

/* count=1 / explain=1: runs the query here, without output, until the
 * client leaves. */
static void run_counting(struct api_call *c, struct pstream *p, bool explain)
{
	struct ring *ring = NULL;
	struct errbuf eb = { { 0 } };
	int err = ring_new(&ring, RING_ENTRIES);
	query_set_gone_check(p->q, client_gone, c->r);
	if (!err)
		err = query_count(p->q, ring, &eb);
	ring_free(ring);
	record_latency(c->api, since(p->t0_ns), err != 0);
	if (err == -ECANCELED)
		log_info("query: the client left: %s", eb.msg);
	if (err)
		return api_error_errno(c, err, "query", eb.msg);
	const struct query_stats *st = query_stats(p->q);
	atomic_fetch_add(&c->api->m.query_packets, st->packets_matched);
	if (explain)
		api_json(c, 200, stats_json(st));
	else
		api_json(c, 200, json_pack("{sI}", "count", (json_int_t)st->packets_matched));
}

/* Starts the producer; false when it could not be (replied, p freed). */
static bool start_producer(struct api_call *c, struct pstream *p)
{
	p->sock = http_req_dup_socket(c->r);
	if (p->sock >= 0)
		query_set_gone_check(p->q, socket_gone, p);
	if (!(p->buf = malloc(PIPE_SIZE)) ||
	    pthread_create(&p->thread, NULL, producer, p) != 0) {
		api_error_errno(c, -ENOMEM, "query", "cannot start the query thread");
		pstream_free(p);
		return false;
	}
	p->started = true;
	return true;
}

static void respond_stream(struct api_call *c, struct pstream *p)
{
	enum capfile_format format;
	uint32_t linktype, snaplen;
	bool nsec;
	query_output_format(p->q, &format, &linktype, &nsec, &snaplen);
	static const char *const hdr[] = { "Content-Disposition",
					   "attachment; filename=\"packets.pcap\"", NULL };
	static const char *const hdr_ng[] = { "Content-Disposition",
					      "attachment; filename=\"packets.pcapng\"", NULL };
	bool ng = format == CAPFILE_FORMAT_PCAPNG;
	http_respond_stream(c->r, 200, ng ? "application/x-pcapng" : "application/vnd.tcpdump.pcap",
			    HTTP_SIZE_UNKNOWN, pipe_read, pstream_free, p, ng ? hdr_ng : hdr);
}

/*
 * A query that ends within WHOLE_WAIT_NS with its whole output in the
 * buffer is answered as it ended: with its error's status (503 for a
 * store that failed it, 502 for lost data) instead of 200 and a stream
 * cut short, or, when it read nothing from the store (a repeat query
 * served by the cache, or only local captures), 200 without asking the
 * store whether it is there: a round trip that made a small repeat query
 * half as fast again as on local objects. True when answered (p handed
 * on or freed); false when the caller is to ask the store before the
 * status goes out.
 */
static bool answer_whole(struct api_call *c, struct pstream *p)
{
	struct timespec until = mono_deadline(WHOLE_WAIT_NS);
	int err = 0;
	char why[sizeof(p->why)];

	pthread_mutex_lock(&p->mu);
	while (!p->done && p->len < PIPE_SIZE &&
	       pthread_cond_timedwait(&p->cv, &p->mu, &until) != ETIMEDOUT)
		;
	bool ended = p->done;
	if (ended) {
		err = p->err;
		snprintf(why, sizeof(why), "%s", p->why);
	}
	pthread_mutex_unlock(&p->mu);
	/* One that read from the store still asks it: the store's answer
	 * also tells an object of another size (502) from the right one. */
	if (!ended || (err == 0 && query_stats(p->q)->bytes_remote > 0))
		return false;
	if (err == 0) {
		respond_stream(c, p);
		return true;
	}
	/* The request was checked when the query was made: what the run
	 * fails with is the vault's (a local object gone, say, is lost
	 * data), not a resource the request names that is not there. */
	if (err == -ENOENT || err == -EINVAL)
		err = -EIO;
	record_latency(c->api, since(p->t0_ns), true);
	if (err == -ECANCELED)
		log_info("query: the client left: %s", why[0] ? why : "cancelled");
	else
		log_warnx("query failed: %s", why[0] ? why : strerror(-err));
	api_error_errno(c, err, "query", why[0] ? why : NULL);
	p->answered = true;
	pstream_free(p);
	return true;
}

void api_packets(struct api_call *c)
{
	struct pstream *p = calloc(1, sizeof(*p));
	struct errbuf eb = { { 0 } };
	if (!p)
		return api_error_errno(c, -ENOMEM, "query", NULL);
	p->api = c->api;
	p->sock = -1;
	pthread_mutex_init(&p->mu, NULL);
	mono_cond_init(&p->cv);
	p->t0_ns = mono_ns();
	if (!parse_params(c, p))
		return pstream_free(p);
	int err = query_new(&p->q, c->api->vault, &p->params, &eb);
	if (err == -EINVAL || err == -E2BIG) {
		record_latency(c->api, since(p->t0_ns), true);
		api_error(c, 400, err == -E2BIG ? "filter_too_large" : "bad_filter", "%s",
			  eb.msg[0] ? eb.msg : "bad query");
		return pstream_free(p);
	}
	if (err) {
		record_latency(c->api, since(p->t0_ns), true);
		api_error_errno(c, err, "query", eb.msg);
		return pstream_free(p);
	}
	if (p->count || p->explain) {
		run_counting(c, p, p->explain);
		return pstream_free(p);
	}
	/* The status goes out before the stream: a remote capture whose
	 * store does not answer fails the query here, with 503. The query
	 * runs meanwhile (its output waits in the buffer), so the store's
	 * answer costs no time of its own when it is there; a query that
	 * ends first needs no question to the store at all. */
	if (!start_producer(c, p) || answer_whole(c, p))
		return;
	if ((err = query_check_remote(p->q, &eb)) < 0) {
		record_latency(c->api, since(p->t0_ns), true);
		api_error_errno(c, err, "query", eb.msg);
		p->answered = true;
		return pstream_free(p);
	}
	respond_stream(c, p);
}
