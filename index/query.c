/*
 * query.c - see query.h.
 *
 * Stages: select captures (catalog: ids, tags, time overlap) -> plan the
 * filter (planner.h) and look its terms up in the postings -> per object:
 * the candidate flows' chunks give record offsets (or, when the planner
 * cannot narrow, the sparse time index gives byte ranges) -> batched
 * preads -> decode each record with its reader context -> time window and
 * libpcap filter -> callback.
 */
#include "query.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buffill.h"
#include "capwrite.h"
#include "cleanup.h"
#include "db.h"
#include "filter.h"
#include "monoclock.h"
#include "objcache.h"
#include "objstore.h"
#include "pindex.h"
#include "pktkeys.h"
#include "planner.h"
#include "ring.h"
#include "vault.h"

struct selected {
	uint64_t id, objnum, file_size;
	int64_t earliest, latest;
	uint8_t sha[32];
	uint32_t linktypes[16], nlinktypes;
	uint32_t linktype_ext; /* pcap header bits above the link type */
	uint32_t snaplen;
	bool nanosecond;
	bool pcapng;
};

struct query {
	struct vault *v;
	/* The window, inclusive: [lo, hi]. Without bounds it is every time
	 * there is, saturated ones too (capfile.h); lo > hi: empty. */
	int64_t lo, hi;
	uint64_t limit;
	bool count_only; /* query_count: nobody wants the packets */
	struct filter_set *filter;
	struct plan *plan;
	struct selected *sel;
	size_t nsel, capsel;
	struct query_stats stats;
	/* selection inputs, borrowed during query_new only */
	const struct query_params *params;
	struct errbuf *eb;
	/* cancelling (query_cancel, query_set_gone_check) */
	atomic_bool cancelled;
	query_gone_fn gone;
	void *gone_opaque;
	uint32_t since_poll; /* candidates since gone was last asked */
	uint64_t cur_capture; /* of the packet being output */
	/* the cursor (query_params.has_resume), copied */
	bool has_resume, resume_after;
	uint64_t resume_capture, resume_offset;
};

void query_cancel(struct query *q)
{
	atomic_store(&q->cancelled, true);
}

void query_set_gone_check(struct query *q, query_gone_fn fn, void *opaque)
{
	q->gone = fn;
	q->gone_opaque = opaque;
}

/* -ECANCELED once the query is cancelled; asks the gone check when now is
 * true or every QUERY_POLL_PACKETS calls. */
static int check_cancelled(struct query *q, bool now)
{
	if (q->gone && (now || ++q->since_poll >= QUERY_POLL_PACKETS)) {
		q->since_poll = 0;
		if (q->gone(q->gone_opaque))
			query_cancel(q);
	}
	return atomic_load_explicit(&q->cancelled, memory_order_relaxed) ? -ECANCELED : 0;
}

static bool has_tag(const struct capture_record *rec, const char *tag)
{
	for (size_t i = 0; i < rec->ntags; i++)
		if (strcmp(rec->tags[i], tag) == 0)
			return true;
	return false;
}

/* Whether times [first, last] meet the window. */
static bool overlaps(const struct query *q, int64_t first, int64_t last)
{
	return last >= q->lo && first <= q->hi;
}

static bool within(const struct query *q, int64_t first, int64_t last)
{
	return first >= q->lo && last <= q->hi;
}

/* [after, before) as an inclusive [lo, hi]; no bound, no limit. */
static void set_window(struct query *q, const struct query_params *p)
{
	q->lo = p->has_after ? p->after_ns : INT64_MIN;
	q->hi = INT64_MAX;
	if (p->has_before && p->before_ns == INT64_MIN)
		q->lo = INT64_MAX, q->hi = INT64_MIN; /* nothing is before it */
	else if (p->has_before)
		q->hi = p->before_ns - 1;
}

static bool wanted(const struct query *q, const struct capture_record *rec)
{
	const struct query_params *p = q->params;
	bool id_ok = p->ncapture_ids == 0;
	for (size_t i = 0; i < p->ncapture_ids && !id_ok; i++)
		id_ok = p->capture_ids[i] == rec->id;
	if (!id_ok || rec->packets == 0)
		return false;
	for (size_t i = 0; i < p->ntags; i++)
		if (!has_tag(rec, p->tags[i]))
			return false;
	return overlaps(q, rec->earliest_ts_ns, rec->latest_ts_ns);
}

static int select_one(void *opaque, const struct capture_record *rec)
{
	struct query *q = opaque;
	q->stats.captures_total++;
	if (!wanted(q, rec))
		return 0;
	if (q->nsel == q->capsel) {
		size_t cap = q->capsel ? q->capsel * 2 : 16;
		struct selected *grown = realloc(q->sel, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		q->sel = grown;
		q->capsel = cap;
	}
	struct selected *s = &q->sel[q->nsel++];
	*s = (struct selected){ .id = rec->id, .objnum = rec->objnum, .file_size = rec->file_size,
				.earliest = rec->earliest_ts_ns, .latest = rec->latest_ts_ns,
				.nlinktypes = rec->nlinktypes, .snaplen = rec->snaplen,
				.linktype_ext = rec->pcap_linktype_ext,
				.nanosecond = rec->nanosecond,
				.pcapng = strcmp(rec->format, "pcapng") == 0 };
	memcpy(s->sha, rec->sha256, 32);
	memcpy(s->linktypes, rec->linktypes, sizeof(s->linktypes));
	return 0;
}

static int by_earliest(const void *a, const void *b)
{
	const struct selected *x = a, *y = b;
	if (x->earliest != y->earliest)
		return x->earliest < y->earliest ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Every capture id asked for must exist, even if the window excludes it. */
static int check_ids(struct query *q)
{
	for (size_t i = 0; i < q->params->ncapture_ids; i++) {
		struct capture_record *rec = NULL;
		int err = catalog_get(vault_catalog(q->v), q->params->capture_ids[i], &rec);
		capture_record_free(rec);
		if (err == -ENOENT)
			return errbuf_set(q->eb, -ENOENT, "no capture with id %llu",
					  (unsigned long long)q->params->capture_ids[i]);
		if (err < 0)
			return err;
	}
	return 0;
}

static int select_captures(struct query *q)
{
	int err = check_ids(q);
	if (err)
		return err;
	const char *tag = q->params->ntags ? q->params->tags[0] : NULL;
	err = catalog_foreach(vault_catalog(q->v), tag, select_one, q);
	if (err)
		return err;
	if (q->nsel > 1)
		qsort(q->sel, q->nsel, sizeof(*q->sel), by_earliest);
	q->stats.captures_selected = q->nsel;
	return 0;
}

/*
 * libpcap decides whether the filter is valid: it must compile for at
 * least one link type of the selected captures (Ethernet when none is
 * selected). Link types it does not compile for simply match nothing.
 */
static int compile_filter(struct query *q)
{
	int compiled = 0, err = 0;
	uint32_t refused = 0;   /* a link type libpcap refused, and why */
	char why[sizeof(q->eb->msg)] = "";
	for (size_t i = 0; i < q->nsel; i++) {
		for (uint32_t j = 0; j < q->sel[i].nlinktypes; j++) {
			const struct filter *f;
			err = filter_set_get(q->filter, q->sel[i].linktypes[j], &f, q->eb);
			if (err == -ENOMEM)
				return err;
			compiled += err == 0;
			if (err && !why[0]) {
				refused = q->sel[i].linktypes[j];
				snprintf(why, sizeof(why), "%s", q->eb->msg);
			}
		}
	}
	if (compiled > 0) {
		errbuf_clear(q->eb);
		return 0;
	}
	const struct filter *f;
	err = filter_set_get(q->filter, 1, &f, q->eb);
	/* Named with libpcap's reason: with no filter at all, that is a link
	 * type it does not know (tcpdump -r refuses such a file too). */
	if (err == 0 && q->nsel > 0)
		return errbuf_set(q->eb, -EINVAL,
				  "%s the link types selected (link type %" PRIu32 ": %s)",
				  q->params->filter && *q->params->filter ? "filter does not apply to" :
									      "libpcap cannot read",
				  refused, why[0] ? why : "refused");
	return err;
}

int query_new(struct query **out, struct vault *v, const struct query_params *params,
	      struct errbuf *eb)
{
	struct query *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->v = v;
	q->params = params;
	q->eb = eb;
	set_window(q, params);
	q->limit = params->limit;
	q->has_resume = params->has_resume;
	q->resume_after = params->resume_after;
	q->resume_capture = params->resume_capture;
	q->resume_offset = params->resume_offset;
	const char *expr = params->filter ? params->filter : "";
	int err = filter_check_size(expr, eb);
	if (err) {
		free(q);
		return err;
	}
	err = filter_set_new(&q->filter, expr, FILTER_DEFAULT_SNAPLEN);
	if (!err)
		err = planner_parse(expr, &q->plan);
	if (!err)
		err = select_captures(q);
	if (!err)
		err = compile_filter(q);
	if (err) {
		query_free(q);
		return err;
	}
	plan_explain(q->plan, q->stats.plan, sizeof(q->stats.plan));
	q->stats.plan_all = plan_is_all(q->plan);
	q->params = NULL;
	q->eb = NULL;
	*out = q;
	return 0;
}

struct query *query_free(struct query *q)
{
	if (!q)
		return NULL;
	filter_set_free(q->filter);
	plan_free(q->plan);
	free(q->sel);
	free(q);
	return NULL;
}

const struct query_stats *query_stats(const struct query *q)
{
	return &q->stats;
}

uint64_t query_packet_capture(const struct query *q)
{
	return q->cur_capture;
}

void query_output_format(const struct query *q, enum capfile_format *format,
			 uint32_t *linktype, bool *nanosecond, uint32_t *snaplen)
{
	bool single = true;
	uint32_t ext = 0;
	*linktype = 1;
	*nanosecond = false;
	*snaplen = 0;
	for (size_t i = 0; i < q->nsel; i++) {
		const struct selected *s = &q->sel[i];
		/* pcap holds 1970..2106 only (capwrite.h) */
		if (!capwrite_pcap_time(s->earliest) || !capwrite_pcap_time(s->latest))
			single = false;
		if (i == 0) {
			*linktype = s->linktypes[0];
			*nanosecond = s->nanosecond;
			ext = s->linktype_ext;
		}
		/* pcapng input keeps its own resolution only in pcapng output;
		 * pcap inputs whose FCS bits differ cannot share one header */
		if (s->nlinktypes != 1 || s->linktypes[0] != *linktype ||
		    s->nanosecond != *nanosecond || s->pcapng || s->linktype_ext != ext)
			single = false;
		if (s->snaplen > *snaplen)
			*snaplen = s->snaplen;
	}
	*format = single ? CAPFILE_FORMAT_PCAP : CAPFILE_FORMAT_PCAPNG;
	if (single)
		*linktype |= ext;
	if (*snaplen == 0)
		*snaplen = FILTER_DEFAULT_SNAPLEN;
}

/* ---- reading records back ---- */

struct context {
	uint64_t offset;
	void *blob;
	size_t len;
};

struct object_run {
	struct query *q;
	struct ring *ring;
	const struct selected *sel;
	int fd;       /* the local copy; -1 when remote */
	bool remote;  /* read through the vault's cache and object store */
	struct context *ctx;
	size_t nctx;
	query_packet_fn fn;   /* where matches go: the output, or a spill */
	void *opaque;
	uint64_t matched, limit; /* this object's matches; 0: no limit */
	/* with has_start, records before start_offset (and at it, with
	 * skip_start) are not output: a cursor (query_params.has_resume) */
	bool has_start, skip_start;
	uint64_t start_offset;
	/* replaying a merge up to a cursor at time cut_ts: stop after cut_max
	 * matches counted from the first one later than cut_ts (0: never) */
	int64_t cut_ts;
	uint64_t cut_max, cut_seen;
	uint8_t *big; /* for a record larger than a read span */
	struct errbuf *eb;
	/* the compiled filter of the last packet's link type (NULL: it does
	 * not compile for it), so that each packet takes no lock */
	const struct filter *filter;
	uint32_t filter_linktype;
	bool filter_known;
};

static void contexts_free(struct object_run *r)
{
	for (size_t i = 0; i < r->nctx; i++)
		free(r->ctx[i].blob);
	free(r->ctx);
	r->ctx = NULL;
	r->nctx = 0;
}

static int contexts_load(struct object_run *r)
{
	struct db_iter *it = NULL;
	uint8_t prefix[8];
	size_t cap = 0;
	be64_put(prefix, r->sel->objnum);
	int err = db_iter_new(vault_db(r->q->v), DB_CF_CONTEXTS, &it);
	if (err)
		return err;
	for (db_iter_seek(it, prefix, 8); db_iter_valid(it) && !err; db_iter_next(it)) {
		size_t klen, vlen;
		const uint8_t *key = db_iter_key(it, &klen);
		const void *val = db_iter_value(it, &vlen);
		if (klen != 16 || memcmp(key, prefix, 8) != 0)
			break;
		if (r->nctx == cap) {
			cap = cap ? cap * 2 : 8;
			struct context *grown = realloc(r->ctx, cap * sizeof(*grown));
			if (!grown) {
				err = -ENOMEM;
				break;
			}
			r->ctx = grown;
		}
		struct context *c = &r->ctx[r->nctx];
		c->offset = be64_get(key + 8);
		c->len = vlen;
		if (!(c->blob = malloc(vlen ? vlen : 1)))
			err = -ENOMEM;
		else
			memcpy(c->blob, val, vlen), r->nctx++;
	}
	db_iter_free(it);
	return err;
}

/* The context in force at offset: the last one at or before it. */
static const struct context *context_at(const struct object_run *r, uint64_t offset)
{
	size_t lo = 0, hi = r->nctx;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->ctx[mid].offset <= offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &r->ctx[lo - 1] : NULL;
}

/* The compiled filter for linktype in *out (NULL: it does not compile for
 * it, nothing matches). Returns 0 or -ENOMEM. */
static int filter_for(struct object_run *r, uint32_t linktype, const struct filter **out)
{
	if (!r->filter_known || r->filter_linktype != linktype) {
		const struct filter *f = NULL;
		int err = filter_set_get(r->q->filter, linktype, &f, NULL);
		if (err == -ENOMEM)
			return err; /* not remembered: may work next time */
		r->filter = err ? NULL : f;
		r->filter_linktype = linktype;
		r->filter_known = true;
	}
	*out = r->filter;
	return 0;
}

static bool before_start(const struct object_run *r, uint64_t offset)
{
	return r->has_start && (offset < r->start_offset ||
				(r->skip_start && offset == r->start_offset));
}

/* Time window, then the exact filter, then the caller. Returns 1 when the
 * limit is reached. */
static int process_packet(struct object_run *r, const struct capfile_packet *pkt)
{
	struct query *q = r->q;
	int err = check_cancelled(q, false);
	if (err)
		return err;
	q->stats.packets_candidate++;
	if (!overlaps(q, pkt->ts_ns, pkt->ts_ns) || before_start(r, pkt->offset))
		return 0;
	const struct filter *f;
	err = filter_for(r, pkt->linktype, &f);
	if (err)
		return err;
	if (!f || !filter_match(f, pkt->caplen, pkt->origlen, pkt->data))
		return 0;
	r->matched++;
	err = r->fn(r->opaque, pkt);
	if (err)
		return err;
	if (r->cut_max && (r->cut_seen || pkt->ts_ns > r->cut_ts) && ++r->cut_seen >= r->cut_max)
		return 1;
	return r->limit && r->matched >= r->limit ? 1 : 0;
}

static bool capture_gone(struct query *q, uint64_t id);

/* Fills the ranges of a remote object through the cache. A failure of
 * the store becomes -EREMOTEIO, naming the store and the capture; a block
 * that fails its check -EBADMSG, an object the store lacks -ENODATA. */
static int remote_ranges(struct object_run *r, struct objstore_range *rg, size_t n)
{
	struct vault *v = r->q->v;
	struct errbuf eb = { .msg = "" };
	int err = objcache_read_ranges(vault_objcache(v), vault_objstore(v), r->sel->sha,
				       r->sel->file_size, rg, n, &r->q->stats.bytes_remote, &eb);
	if (err == 0 || err == -ENOMEM || err == -ECANCELED)
		return err;
	if (err == -ENOENT && capture_gone(r->q, r->sel->id))
		return err; /* pruned meanwhile: run_object ends quietly */
	/* A block that is not what was tiered, or an object the store does
	 * not have: lost data, as check_one_remote says of them, not worth a
	 * retry. */
	int as = err == -EBADMSG ? -EBADMSG : err == -ENOENT ? -ENODATA : -EREMOTEIO;
	return errbuf_set(r->eb, as, "capture %llu: object store %s: %s%s",
			  (unsigned long long)r->sel->id, objstore_describe(vault_objstore(v)),
			  objstore_reason(vault_objstore(v), &eb, err),
			  as == -ENODATA ? "; run capvault fsck --remote" : "");
}

/* pread of a remote object: short at its end, as a file's. */
static ssize_t remote_pread(struct object_run *r, void *buf, size_t len, uint64_t off)
{
	uint64_t size = r->sel->file_size;
	if (off >= size)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	struct objstore_range rg = { .offset = off, .len = (uint32_t)len, .buf = buf };
	int err = len ? remote_ranges(r, &rg, 1) : 0;
	return err < 0 ? err : (ssize_t)len;
}

static ssize_t read_at(struct object_run *r, void *buf, size_t len, uint64_t off)
{
	ssize_t n = r->remote ? remote_pread(r, buf, len, off)
			      : ring_pread(r->ring, r->fd, buf, len, off);
	if (n > 0) {
		r->q->stats.bytes_read += (uint64_t)n;
		r->q->stats.reads++;
	}
	return n;
}

/*
 * Decodes the record at off from buf (holding bytes [base, base+len)).
 * Returns 0 with *rlen set; -EAGAIN when the record is not wholly in buf;
 * -EINVAL for garbage. Non-packet blocks come back with pkt->data NULL.
 */
static int decode_in(struct object_run *r, const uint8_t *buf, uint64_t base, size_t len,
		     uint64_t off, struct capfile_packet *pkt, uint32_t *rlen)
{
	const struct context *c = context_at(r, off);
	if (!c)
		return -EINVAL;
	size_t at = (size_t)(off - base);
	if (off < base || at + CAPFILE_RECORD_HEADER > len)
		return -EAGAIN;
	if (capfile_record_length(c->blob, c->len, buf + at, len - at, rlen) < 0)
		return -EINVAL;
	if (*rlen > len - at)
		return -EAGAIN;
	int res = capfile_decode_record(c->blob, c->len, buf + at, *rlen, off, pkt);
	if (res < 0)
		return -EINVAL;
	if (res == 1)
		pkt->data = NULL;
	return 0;
}

/* A record that did not fit the span: read it alone. */
static int read_single(struct object_run *r, uint64_t off, struct capfile_packet *pkt,
		       uint32_t *rlen)
{
	uint8_t hdr[CAPFILE_RECORD_HEADER];
	const struct context *c = context_at(r, off);
	ssize_t n = read_at(r, hdr, sizeof(hdr), off);
	if (n < 0)
		return (int)n;
	if (!c || (size_t)n < sizeof(hdr) ||
	    capfile_record_length(c->blob, c->len, hdr, sizeof(hdr), rlen) < 0)
		return -EINVAL;
	free(r->big);
	if (!(r->big = malloc(*rlen)))
		return -ENOMEM;
	n = read_at(r, r->big, *rlen, off);
	if (n < 0)
		return (int)n;
	if ((size_t)n < *rlen)
		return -EINVAL; /* the truncated last record */
	return decode_in(r, r->big, off, *rlen, off, pkt, rlen);
}

/* ---- candidates: offsets from flows, or byte ranges ---- */

struct u64vec {
	uint64_t *v;
	size_t n, cap;
};

static int u64vec_push(struct u64vec *vec, uint64_t x)
{
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 256;
		uint64_t *grown = realloc(vec->v, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		vec->v = grown;
		vec->cap = cap;
	}
	vec->v[vec->n++] = x;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void u64vec_sort_unique(struct u64vec *vec)
{
	if (vec->n == 0)
		return;
	qsort(vec->v, vec->n, sizeof(uint64_t), cmp_u64);
	size_t out = 1;
	for (size_t i = 1; i < vec->n; i++)
		if (vec->v[i] != vec->v[out - 1])
			vec->v[out++] = vec->v[i];
	vec->n = out;
}

/* Appends the offsets of a flow that overlaps the time window. */
static int flow_offsets(struct object_run *r, const struct pindex_flow *f, struct u64vec *offsets)
{
	if (!overlaps(r->q, f->first_ts_ns, f->last_ts_ns))
		return 0;
	const uint8_t *p = f->offsets, *end = p + f->offsets_len;
	uint64_t off = 0;
	int err = 0;
	while (p < end && !err) {
		if (pindex_next_offset(&p, end, &off) < 0)
			return -EIO;
		err = u64vec_push(offsets, off);
	}
	return err;
}

/*
 * The offsets of the candidate flows ids[0..n) (sorted, of this object):
 * each flow block is found once (the last block starting at or before the
 * next wanted id) and walked in step with the wanted ids.
 */
static int candidate_offsets(struct object_run *r, struct db_iter *it, const uint64_t *ids,
			     size_t n, struct u64vec *offsets)
{
	size_t i = 0;
	int err = 0;
	while (i < n && !err) {
		uint8_t key[12];
		be64_put(key, r->sel->objnum);
		uint32_t want = (uint32_t)ids[i];
		be32_put(key + 8, want);
		db_iter_seek_for_prev(it, key, sizeof(key));
		size_t klen = 0, vlen = 0;
		const uint8_t *bkey = db_iter_valid(it) ? db_iter_key(it, &klen) : NULL;
		const void *bval = bkey ? db_iter_value(it, &vlen) : NULL;
		struct pindex_flow_cursor cur;
		if (!bkey || klen != 12 || memcmp(bkey, key, 8) != 0) {
			i++; /* no block holds it: an index left by a crash; skip */
			continue;
		}
		/* A block that does not decode would silently drop packets the
		 * filter matches: the query fails instead (fsck finds it). */
		if (pindex_flow_block_open(bval, vlen, bkey, klen, &cur) < 0)
			return -EIO;
		struct pindex_flow f;
		int step = 0;
		while (i < n && !err && (step = pindex_flow_next(&cur, &f)) == 0) {
			while (i < n && (uint32_t)ids[i] < f.id)
				i++; /* wanted, but not in the index: skip */
			if (i < n && (uint32_t)ids[i] == f.id) {
				r->q->stats.flows_candidate++;
				err = check_cancelled(r->q, false);
				if (!err)
					err = flow_offsets(r, &f, offsets);
				i++;
			}
		}
		if (!err && step < 0)
			err = -EIO;
		if (!err && i < n && (uint32_t)ids[i] == want)
			i++; /* the block ended before the wanted id */
	}
	return err;
}

/* Counting only, and every packet of this capture matches the filter:
 * what the window holds of it can be counted from the time index. */
static bool counts_from_index(const struct object_run *r)
{
	if (!r->q->count_only || r->q->limit || r->sel->nlinktypes == 0)
		return false;
	for (uint32_t i = 0; i < r->sel->nlinktypes; i++) {
		const struct filter *f;
		if (filter_set_get(r->q->filter, r->sel->linktypes[i], &f, NULL) != 0 ||
		    !filter_matches_all(f))
			return false;
	}
	return true;
}

/* The [begin, end) byte ranges of sparse time index blocks that overlap
 * the window, adjacent ones merged, as pairs in *ranges. With count_inside,
 * the packets of blocks wholly inside the window are counted as matches
 * here and their bytes left out of the ranges. */
static int time_ranges(struct object_run *r, bool count_inside, struct u64vec *ranges)
{
	struct db_iter *it = NULL;
	uint8_t prefix[8];
	be64_put(prefix, r->sel->objnum);
	int err = db_iter_new(vault_db(r->q->v), DB_CF_TINDEX, &it);
	bool open = false;
	for (db_iter_seek(it, prefix, 8); !err && db_iter_valid(it); db_iter_next(it)) {
		size_t klen, vlen;
		struct pindex_tblock t;
		const uint8_t *key = db_iter_key(it, &klen);
		const void *val = db_iter_value(it, &vlen);
		if (klen != 12 || memcmp(key, prefix, 8) != 0 || pindex_tblock_decode(val, vlen, &t))
			break;
		bool overlap = overlaps(r->q, t.min_ts, t.max_ts);
		if (overlap && count_inside && within(r->q, t.min_ts, t.max_ts)) {
			r->q->stats.packets_matched += t.packets;
			r->q->stats.packets_indexed += t.packets;
			overlap = false; /* counted: nothing to read */
		}
		if (open && !overlap) {
			err = u64vec_push(ranges, t.offset);
			open = false;
		} else if (!open && overlap) {
			err = u64vec_push(ranges, t.offset);
			open = true;
		}
	}
	if (!err && open)
		err = u64vec_push(ranges, r->sel->file_size);
	db_iter_free(it);
	return err;
}

/* ---- reading ---- */

#define SPAN_MAX (256u * 1024)
#define SPAN_GAP (64u * 1024)
#define SPAN_TAIL 2048u /* read past the last offset: most records are shorter */
#define SPAN_BATCH 32

/* Walks whole records in [begin, end), reading 1 MiB at a time. */
static int scan_range(struct object_run *r, uint64_t begin, uint64_t end, uint8_t *buf)
{
	uint64_t pos = begin;
	while (pos < end) {
		size_t want = end - pos < RING_CHUNK ? (size_t)(end - pos) : RING_CHUNK;
		ssize_t n = read_at(r, buf, want, pos);
		if (n <= 0)
			return n < 0 ? (int)n : 0;
		uint64_t off = pos;
		for (;;) {
			struct capfile_packet pkt;
			uint32_t rlen;
			int err = decode_in(r, buf, pos, (size_t)n, off, &pkt, &rlen);
			if (err == -EAGAIN && off == pos)
				err = read_single(r, off, &pkt, &rlen);
			if (err == -EAGAIN)
				break;
			if (err < 0)
				return err == -EINVAL ? 0 : err; /* a cut last record ends the scan */
			off += rlen;
			if (pkt.data && (err = process_packet(r, &pkt)) != 0)
				return err;
			if (off >= end)
				break;
		}
		pos = off;
	}
	return 0;
}

struct span {
	struct ring_read_req req;
	size_t first, count; /* offsets[first .. first+count) */
};

/* Groups sorted offsets into spans of nearby records. */
static size_t make_spans(const struct object_run *r, const uint64_t *offs, size_t n, size_t i,
			 struct span *spans, uint8_t *bufs)
{
	size_t nspans = 0;
	while (i < n && nspans < SPAN_BATCH) {
		struct span *s = &spans[nspans];
		s->first = i;
		uint64_t begin = offs[i];
		while (i + 1 < n && offs[i + 1] - offs[i] < SPAN_GAP &&
		       offs[i + 1] + SPAN_TAIL - begin <= SPAN_MAX)
			i++;
		uint64_t end = offs[i] + SPAN_TAIL;
		if (end > r->sel->file_size)
			end = r->sel->file_size;
		s->count = i - s->first + 1;
		s->req = (struct ring_read_req){ .fd = r->fd, .buf = bufs + nspans * SPAN_MAX,
						 .len = (size_t)(end - begin), .off = begin };
		nspans++;
		i++;
	}
	return nspans;
}

static int process_span(struct object_run *r, const struct span *s, const uint64_t *offs)
{
	if (s->req.result < 0)
		return (int)s->req.result;
	r->q->stats.bytes_read += (uint64_t)s->req.result;
	r->q->stats.reads++;
	for (size_t k = s->first; k < s->first + s->count; k++) {
		struct capfile_packet pkt;
		uint32_t rlen;
		int err = decode_in(r, s->req.buf, s->req.off, (size_t)s->req.result, offs[k], &pkt,
				    &rlen);
		if (err == -EAGAIN)
			err = read_single(r, offs[k], &pkt, &rlen);
		if (err == -EINVAL)
			continue; /* e.g. the cut last record of a truncated capture */
		if (err < 0)
			return err;
		if (pkt.data && (err = process_packet(r, &pkt)) != 0)
			return err;
	}
	return 0;
}

/* The spans of a remote object, in one call: the cache fetches its
 * missing blocks with one request batch (merged, several in flight). */
static int remote_batch(struct object_run *r, struct ring_read_req *reqs, size_t n)
{
	struct objstore_range rg[SPAN_BATCH];
	for (size_t k = 0; k < n; k++)
		rg[k] = (struct objstore_range){ .offset = reqs[k].off, .len = (uint32_t)reqs[k].len,
						 .buf = reqs[k].buf };
	int err = remote_ranges(r, rg, n);
	for (size_t k = 0; k < n; k++)
		reqs[k].result = err < 0 ? err : (ssize_t)reqs[k].len;
	return err;
}

/* Reads the records at sorted offsets, SPAN_BATCH spans per ring batch. */
static int read_offsets(struct object_run *r, const struct u64vec *offs)
{
	struct span spans[SPAN_BATCH];
	uint8_t *bufs = malloc((size_t)SPAN_BATCH * SPAN_MAX);
	if (!bufs)
		return -ENOMEM;
	int err = 0;
	for (size_t i = 0; i < offs->n && !err;) {
		size_t nspans = make_spans(r, offs->v, offs->n, i, spans, bufs);
		struct ring_read_req reqs[SPAN_BATCH];
		for (size_t k = 0; k < nspans; k++)
			reqs[k] = spans[k].req;
		err = r->remote ? remote_batch(r, reqs, nspans)
				: ring_pread_batch(r->ring, reqs, nspans);
		for (size_t k = 0; k < nspans && !err; k++) {
			spans[k].req.result = reqs[k].result;
			err = process_span(r, &spans[k], offs->v);
		}
		i = spans[nspans - 1].first + spans[nspans - 1].count;
	}
	free(bufs);
	return err;
}

/* ---- planning: postings lookups ---- */

struct lookup_ctx {
	struct query *q;
	uint64_t *objnums; /* selected objects, sorted */
	size_t nobj;
};

static bool objnum_selected(const struct lookup_ctx *lc, uint64_t objnum)
{
	return lc->nobj && bsearch(&objnum, lc->objnums, lc->nobj, sizeof(uint64_t), cmp_u64);
}

/* Adds the flows of every posting list with a term in [lo, hi] (both of
 * klen bytes) whose object is selected. */
static int scan_postings(struct lookup_ctx *lc, const uint8_t *lo, const uint8_t *hi, size_t klen,
			 struct plan_ids *out)
{
	struct db_iter *it = NULL;
	int err = db_iter_new(vault_db(lc->q->v), DB_CF_POSTINGS, &it);
	if (err)
		return err;
	for (db_iter_seek(it, lo, klen); db_iter_valid(it) && !err; db_iter_next(it)) {
		size_t len, vlen;
		const uint8_t *key = db_iter_key(it, &len);
		if (len != klen + 12 || memcmp(key, hi, klen) > 0)
			break;
		uint64_t objnum;
		pindex_posting_objnum(key, len, &objnum); /* len was checked */
		if (!objnum_selected(lc, objnum))
			continue;
		const uint8_t *p = db_iter_value(it, &vlen), *end = p + vlen;
		uint64_t id = 0;
		while (!err && p < end) {
			if (pindex_next_offset(&p, end, &id) < 0)
				err = -EIO;
			else
				err = plan_ids_push(out, objnum << 32 | (uint32_t)id);
		}
	}
	db_iter_free(it);
	return err;
}

static int lookup_port(struct lookup_ctx *lc, enum pindex_term_kind kind, uint16_t lo,
		       uint16_t hi, struct plan_ids *out)
{
	uint8_t lokey[3] = { (uint8_t)kind, (uint8_t)(lo >> 8), (uint8_t)lo };
	uint8_t hikey[3] = { (uint8_t)kind, (uint8_t)(hi >> 8), (uint8_t)hi };
	return scan_postings(lc, lokey, hikey, 3, out);
}

/* An address or a network: the range of addresses it covers. */
static int lookup_addr(struct lookup_ctx *lc, const struct plan_term *t, struct plan_ids *out)
{
	bool v6 = t->kind == PLAN_T_IP6 || t->kind == PLAN_T_IP6NET;
	size_t alen = v6 ? 16 : 4;
	unsigned prefix = t->prefix > alen * 8 ? (unsigned)alen * 8 : t->prefix;
	uint8_t lo[17], hi[17];
	lo[0] = hi[0] = v6 ? PTERM_IP6 : PTERM_IP4;
	for (size_t i = 0; i < alen; i++) {
		unsigned bits = prefix > i * 8 ? prefix - (unsigned)i * 8 : 0;
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff00 >> bits);
		lo[1 + i] = t->addr[i] & mask;
		hi[1 + i] = (uint8_t)(t->addr[i] | (uint8_t)~mask);
	}
	return scan_postings(lc, lo, hi, 1 + alen, out);
}

static int lookup_term(void *opaque, const struct plan_term *t, struct plan_ids *out)
{
	struct lookup_ctx *lc = opaque;
	uint8_t lo[3], hi[3];
	switch (t->kind) {
	case PLAN_T_IP4: case PLAN_T_IP4NET: case PLAN_T_IP6: case PLAN_T_IP6NET:
		return lookup_addr(lc, t, out);
	case PLAN_T_TCPPORT: return lookup_port(lc, PTERM_TCP_PORT, t->lo, t->hi, out);
	case PLAN_T_UDPPORT: return lookup_port(lc, PTERM_UDP_PORT, t->lo, t->hi, out);
	case PLAN_T_SCTPPORT: return lookup_port(lc, PTERM_SCTP_PORT, t->lo, t->hi, out);
	case PLAN_T_PORT: {
		int err = lookup_port(lc, PTERM_TCP_PORT, t->lo, t->hi, out);
		if (!err)
			err = lookup_port(lc, PTERM_UDP_PORT, t->lo, t->hi, out);
		return err ? err : lookup_port(lc, PTERM_SCTP_PORT, t->lo, t->hi, out);
	}
	case PLAN_T_PROTO:
		lo[0] = hi[0] = PTERM_PROTO;
		lo[1] = hi[1] = (uint8_t)t->value;
		return t->value > 255 ? 0 : scan_postings(lc, lo, hi, 2, out);
	case PLAN_T_ETHERTYPE: case PLAN_T_VLAN: case PLAN_T_VLAN_ANY:
		lo[0] = hi[0] = t->kind == PLAN_T_ETHERTYPE ? PTERM_ETHERTYPE : PTERM_VLAN;
		lo[1] = hi[1] = (uint8_t)(t->value >> 8);
		lo[2] = hi[2] = (uint8_t)t->value;
		if (t->kind == PLAN_T_VLAN_ANY)
			lo[1] = lo[2] = 0, hi[1] = hi[2] = 0xff;
		return scan_postings(lc, lo, hi, 3, out);
	}
	return PLAN_LOOKUP_ALL;
}

static const struct plan_lookup_ops lookup_ops = { .lookup = lookup_term };

/* Candidate global flow ids (objnum << 32 | flowid), sorted; *all when the
 * plan narrows nothing. */
static int plan_candidates(struct query *q, struct plan_ids *cand, bool *all)
{
	struct lookup_ctx lc = { .q = q, .nobj = q->nsel };
	lc.objnums = malloc((q->nsel ? q->nsel : 1) * sizeof(uint64_t));
	if (!lc.objnums)
		return -ENOMEM;
	for (size_t i = 0; i < q->nsel; i++)
		lc.objnums[i] = q->sel[i].objnum;
	qsort(lc.objnums, lc.nobj, sizeof(uint64_t), cmp_u64);
	int err = plan_eval(q->plan, &lookup_ops, &lc, cand);
	free(lc.objnums);
	*all = err == PLAN_EVAL_ALL;
	if (err < 0)
		return err;
	if (!*all && cand->n > 1)
		qsort(cand->ids, cand->n, sizeof(uint64_t), cmp_u64);
	return 0;
}

/* ---- running ---- */

static int run_flows(struct object_run *r, const struct plan_ids *cand)
{
	uint64_t lo = r->sel->objnum << 32, hi = lo | 0xffffffffu;
	size_t a = 0, b = cand->n;
	while (a < b) { /* first id >= lo */
		size_t mid = (a + b) / 2;
		if (cand->ids[mid] < lo)
			a = mid + 1;
		else
			b = mid;
	}
	size_t end = a;
	while (end < cand->n && cand->ids[end] <= hi)
		end++;
	struct u64vec offsets = { 0 };
	struct db_iter *it = NULL;
	int err = db_iter_new(vault_db(r->q->v), DB_CF_FLOWS, &it);
	if (!err)
		err = candidate_offsets(r, it, cand->ids + a, end - a, &offsets);
	db_iter_free(it);
	u64vec_sort_unique(&offsets);
	size_t skip = 0;
	while (skip < offsets.n && before_start(r, offsets.v[skip]))
		skip++;
	if (skip) {
		offsets.n -= skip;
		memmove(offsets.v, offsets.v + skip, offsets.n * sizeof(uint64_t));
	}
	if (!err)
		err = read_offsets(r, &offsets);
	free(offsets.v);
	return err;
}

/* Where a scan that must reach offset can begin: the start of the time
 * index block holding it, a record boundary whatever offset is (a cursor
 * comes from a client), else the first record. */
static uint64_t block_start(struct object_run *r, uint64_t offset)
{
	uint64_t at = r->ctx[0].offset;
	struct db_iter *it = NULL;
	uint8_t prefix[8];
	be64_put(prefix, r->sel->objnum);
	if (db_iter_new(vault_db(r->q->v), DB_CF_TINDEX, &it) < 0)
		return at;
	for (db_iter_seek(it, prefix, 8); db_iter_valid(it); db_iter_next(it)) {
		size_t klen, vlen;
		struct pindex_tblock t;
		const uint8_t *key = db_iter_key(it, &klen);
		const void *val = db_iter_value(it, &vlen);
		if (klen != 12 || memcmp(key, prefix, 8) != 0 ||
		    pindex_tblock_decode(val, vlen, &t) || t.offset > offset)
			break;
		at = t.offset;
	}
	db_iter_free(it);
	return at;
}

/* scan_range of [begin, end), from the cursor's block on when there is a
 * cursor (process_packet skips the records before the cursor's). */
static int scan_from(struct object_run *r, uint64_t begin, uint64_t end, uint8_t *buf)
{
	if (r->has_start && r->start_offset >= end)
		return 0;
	if (r->has_start && r->start_offset > begin) {
		uint64_t block = block_start(r, r->start_offset);
		begin = block > begin ? block : begin;
	}
	return scan_range(r, begin, end, buf);
}

static int run_all(struct object_run *r)
{
	if (r->nctx == 0)
		return 0;
	uint8_t *buf = malloc(RING_CHUNK);
	if (!buf)
		return -ENOMEM;
	struct u64vec ranges = { 0 };
	bool count_inside = counts_from_index(r);
	int err = 0;
	if (r->q->lo == INT64_MIN && r->q->hi == INT64_MAX && !count_inside) {
		err = scan_from(r, r->ctx[0].offset, r->sel->file_size, buf);
	} else {
		err = time_ranges(r, count_inside, &ranges);
		for (size_t i = 0; !err && i + 1 < ranges.n; i += 2)
			err = scan_from(r, ranges.v[i], ranges.v[i + 1], buf);
	}
	free(ranges.v);
	free(buf);
	return err;
}

/* The index knows the flows only of link types pktkeys dissects; for any
 * other, a term such as "ip6" cannot be looked up, so every packet is a
 * candidate. */
static bool indexed_linktypes(const struct selected *s)
{
	for (uint32_t i = 0; i < s->nlinktypes; i++) {
		switch (s->linktypes[i]) {
		case PKTKEY_LT_NULL: case PKTKEY_LT_ETHERNET: case PKTKEY_LT_DLT_RAW12:
		case PKTKEY_LT_DLT_RAW14: case PKTKEY_LT_RAW: case PKTKEY_LT_LOOP:
		case PKTKEY_LT_LINUX_SLL: case PKTKEY_LT_IPV4: case PKTKEY_LT_IPV6:
		case PKTKEY_LT_LINUX_SLL2:
			break;
		default:
			return false;
		}
	}
	return true;
}

static bool capture_gone(struct query *q, uint64_t id)
{
	struct capture_record *rec = NULL;
	int err = catalog_get(vault_catalog(q->v), id, &rec);
	capture_record_free(rec);
	return err == -ENOENT;
}

static int run_object(struct object_run *r, const struct plan_ids *cand, bool all)
{
	all = all || !indexed_linktypes(r->sel);
	int where = vault_object_open(r->q->v, r->sel->sha, &r->fd);
	if (where == -ENOENT && capture_gone(r->q, r->sel->id))
		return 0; /* deleted (pruned) since the query began: not an error */
	if (where == -EREMOTEIO)
		return errbuf_set(r->eb, where, "capture %llu: its object is in the object store, "
				  "which only capvaultd reads (query through it)",
				  (unsigned long long)r->sel->id);
	if (where < 0) {
		char hex[65];
		sha256_hex(r->sel->sha, hex);
		return errbuf_set(r->eb, where, "capture %llu: object %s: %s",
				  (unsigned long long)r->sel->id, hex, strerror(-where));
	}
	r->remote = where == VAULT_OBJECT_REMOTE;
	int err = contexts_load(r);
	if (!err)
		err = all ? run_all(r) : run_flows(r, cand);
	if (err == -ENOENT && r->remote)
		err = 0; /* the store lost it because it was pruned meanwhile */
	if (err == -EIO && !all && r->eb && !r->eb->msg[0])
		errbuf_set(r->eb, err, "capture %llu: its packet index does not decode",
			   (unsigned long long)r->sel->id);
	contexts_free(r);
	if (r->fd >= 0)
		close(r->fd);
	free(r->big);
	r->big = NULL;
	return err;
}

/* The store's answer about one remote capture's object. */
static int check_one_remote(struct query *q, const struct selected *sel, struct errbuf *eb)
{
	struct vault *v = q->v;
	struct errbuf sub = { .msg = "" };
	uint64_t size = 0;
	if (objcache_has_object(vault_objcache(v), sel->sha))
		return 0;
	int err = objstore_stat(vault_objstore(v), sel->sha, &size, &sub);
	if (err == -ENOENT && capture_gone(q, sel->id))
		return 0;
	/* As a download checks it: another object under its name is not it.
	 * Blocks cached from it go too, so that a repeat query the cache
	 * could answer without the store fails the same way until fsck
	 * --remote deals with it, rather than answer one time in two. */
	if (err == 0 && size != sel->file_size) {
		err = errbuf_set(&sub, -EIO, "holds %" PRIu64 " bytes, not %" PRIu64, size,
				 sel->file_size);
		objcache_forget(vault_objcache(v), sel->sha);
	}
	/* Not there, or not it: lost data, which a retry will not bring back. */
	if (err == -ENOENT || err == -EIO)
		return errbuf_set(eb, err == -ENOENT ? -ENODATA : -EBADMSG,
				  "capture %llu: object store %s: %s; run capvault fsck --remote",
				  (unsigned long long)sel->id, objstore_describe(vault_objstore(v)),
				  objstore_reason(vault_objstore(v), &sub, err));
	if (err < 0)
		return errbuf_set(eb, -EREMOTEIO, "capture %llu: object store %s: %s",
				  (unsigned long long)sel->id, objstore_describe(vault_objstore(v)),
				  objstore_reason(vault_objstore(v), &sub, err));
	return 1;
}

int query_check_remote(struct query *q, struct errbuf *eb)
{
	for (size_t i = 0; i < q->nsel; i++) {
		int fd = -1;
		int where = vault_object_open(q->v, q->sel[i].sha, &fd);
		if (fd >= 0)
			close(fd);
		if (where != VAULT_OBJECT_REMOTE)
			continue;
		int err = check_one_remote(q, &q->sel[i], eb);
		if (err != 0)
			return err < 0 ? err : 0; /* one answer says the store is there */
	}
	return 0;
}

/* ---- output: in order, counted, up to the limit ---- */

struct output {
	struct query *q;
	query_packet_fn fn;
	void *opaque;
	uint64_t capture; /* of the packets handed to output_packet */
	bool seeking;     /* replaying a merge up to the cursor's packet */
};

/* Whether a replayed merge is still before the cursor's packet. */
static bool seek_cursor(struct output *o, const struct capfile_packet *pkt)
{
	struct query *q = o->q;
	if (!o->seeking)
		return false;
	if (o->capture != q->resume_capture || pkt->offset != q->resume_offset)
		return true;
	o->seeking = false;
	return q->resume_after;
}

/* Returns 1 once the query's packet limit is reached. */
static int output_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct output *o = opaque;
	struct query *q = o->q;
	if (seek_cursor(o, pkt))
		return 0;
	q->cur_capture = o->capture;
	int err = o->fn ? o->fn(o->opaque, pkt) : 0;
	if (err)
		return err;
	q->stats.packets_matched++;
	return q->limit && q->stats.packets_matched >= q->limit ? 1 : 0;
}

/* ---- merging captures whose times overlap ---- */

/*
 * Each capture of an overlapping group is queried into its own spill file
 * (anonymous, in the store's tmp/), then the spills are merged by packet
 * time; ties go to the capture that starts first. Each spill keeps its
 * capture's file order, so a capture's packets never change order. Memory
 * stays bounded: a spill is written and read through one buffer.
 */
#define SPILL_BUFFER (256u * 1024)
#define SPILL_HEADER 46 /* the packet's fields below, in this order */

struct spill {
	struct ring *ring;
	int fd;
	uint8_t *buf;
	size_t used, len;  /* write: used bytes; read: [used, len) unread */
	uint64_t off;      /* file offset of the next write or read */
	uint8_t *data;     /* the current packet's bytes (read side) */
	size_t datacap;
	struct capfile_packet head;
	bool has_head;
	uint64_t capture; /* whose packets these are */
	bool any;         /* written: first_ts is the first packet's time */
	int64_t first_ts;
};

static int spill_flush(struct spill *s)
{
	int err = s->used ? ring_pwrite(s->ring, s->fd, s->buf, s->used, s->off) : 0;
	s->off += s->used;
	s->used = 0;
	return err;
}

static int spill_flush_full(void *opaque)
{
	return spill_flush(opaque);
}

static int spill_put(struct spill *s, const void *p, size_t n)
{
	return buf_fill(s->buf, SPILL_BUFFER, &s->used, p, n, spill_flush_full, s);
}

static int spill_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct spill *s = opaque;
	uint8_t hdr[SPILL_HEADER];
	if (!s->any)
		s->first_ts = pkt->ts_ns;
	s->any = true;
	memcpy(hdr, &pkt->ts_ns, 8);
	memcpy(hdr + 8, &pkt->caplen, 4);
	memcpy(hdr + 12, &pkt->origlen, 4);
	memcpy(hdr + 16, &pkt->linktype, 4);
	memcpy(hdr + 20, &pkt->ts_units, 8);
	memcpy(hdr + 28, &pkt->ts_offset, 8);
	hdr[36] = pkt->ts_resol;
	hdr[37] = pkt->ts_saturated;
	memcpy(hdr + 38, &pkt->offset, 8);
	int err = spill_put(s, hdr, sizeof(hdr));
	return err ? err : spill_put(s, pkt->data, pkt->caplen);
}

/* Copies n bytes of the spill into dst. Returns 0, 1 at the end, or -errno. */
static int spill_get(struct spill *s, void *dst, size_t n)
{
	while (n > 0) {
		if (s->used == s->len) {
			ssize_t got = ring_pread(s->ring, s->fd, s->buf, SPILL_BUFFER, s->off);
			if (got < 0)
				return (int)got;
			if (got == 0)
				return 1;
			s->off += (uint64_t)got;
			s->used = 0;
			s->len = (size_t)got;
		}
		size_t k = s->len - s->used < n ? s->len - s->used : n;
		/* buf is allocated when the spill is opened, before any read. */
		memcpy(dst, s->buf + s->used, k); // NOLINT(clang-analyzer-core.NonNullParamChecker)
		s->used += k;
		dst = (uint8_t *)dst + k;
		n -= k;
	}
	return 0;
}

/* Reads the spill's next packet into s->head. */
static int spill_next(struct spill *s)
{
	uint8_t hdr[SPILL_HEADER];
	int err = spill_get(s, hdr, sizeof(hdr));
	s->has_head = false;
	if (err)
		return err == 1 ? 0 : err;
	memcpy(&s->head.ts_ns, hdr, 8);
	memcpy(&s->head.caplen, hdr + 8, 4);
	memcpy(&s->head.origlen, hdr + 12, 4);
	memcpy(&s->head.linktype, hdr + 16, 4);
	memcpy(&s->head.ts_units, hdr + 20, 8);
	memcpy(&s->head.ts_offset, hdr + 28, 8);
	s->head.ts_resol = hdr[36];
	s->head.ts_saturated = hdr[37] != 0;
	memcpy(&s->head.offset, hdr + 38, 8);
	if (s->head.caplen > s->datacap) {
		uint8_t *grown = realloc(s->data, s->head.caplen);
		if (!grown)
			return -ENOMEM;
		s->data = grown;
		s->datacap = s->head.caplen;
	}
	err = spill_get(s, s->data, s->head.caplen);
	if (err)
		return err == 1 ? -EIO : err;
	s->head.data = s->data;
	s->has_head = true;
	return 0;
}

static int spill_open(struct spill *s, struct query *q, struct ring *ring)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/tmp", store_root(vault_store(q->v)));
	*s = (struct spill){ .ring = ring, .fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600) };
	if (s->fd < 0)
		return -errno;
	if (!(s->buf = malloc(SPILL_BUFFER))) {
		close(s->fd);
		return -ENOMEM;
	}
	return 0;
}

static void spill_close(struct spill *s)
{
	if (s->buf) {
		close(s->fd);
		free(s->buf);
		free(s->data);
	}
}

/* Emits the spills' packets by time. */
static int merge_spills(struct spill *spills, size_t n, struct output *out)
{
	int err = 0;
	for (size_t i = 0; i < n && !err; i++) {
		err = spill_flush(&spills[i]);
		spills[i].off = 0;
		spills[i].used = spills[i].len = 0;
		if (!err)
			err = spill_next(&spills[i]);
	}
	while (!err) {
		struct spill *min = NULL;
		for (size_t i = 0; i < n; i++)
			if (spills[i].has_head && (!min || spills[i].head.ts_ns < min->head.ts_ns))
				min = &spills[i];
		if (!min)
			break;
		out->capture = min->capture;
		err = output_packet(out, &min->head);
		if (!err)
			err = spill_next(min);
	}
	return err;
}

/* The cursor as where the run of sel[i] starts (query_params.has_resume). */
static void start_at_cursor(const struct query *q, struct object_run *r, bool inclusive)
{
	if (!q->has_resume || r->sel->id != q->resume_capture)
		return;
	r->has_start = true;
	r->start_offset = q->resume_offset;
	r->skip_start = !inclusive && q->resume_after;
}

/*
 * Queries sel[first..last) into spills, then merges them. With the
 * cursor in the group (out->seeking) the merge is replayed up to its
 * packet: what the other captures gave before it is known only by
 * merging. The cursor's capture goes first (from the cursor on), which
 * gives the cursor's time T; a capture's packets that the merge gives
 * before the cursor are a prefix of its spill ending before its first
 * packet later than T, so each spill needs that prefix and limit more.
 */
static int run_merged(struct query *q, struct ring *ring, size_t first, size_t last,
		      const struct plan_ids *cand, bool all, struct output *out,
		      struct errbuf *eb)
{
	size_t n = last - first, lead = 0;
	struct spill *spills = calloc(n, sizeof(*spills));
	if (!spills)
		return -ENOMEM;
	for (size_t i = 0; out->seeking && i < n; i++)
		if (q->sel[first + i].id == q->resume_capture)
			lead = i;
	int err = 0;
	for (size_t k = 0; k < n && !err; k++) {
		size_t i = k == 0 ? lead : k <= lead ? k - 1 : k; /* the cursor's first */
		err = check_cancelled(q, true);
		if (!err)
			err = spill_open(&spills[i], q, ring);
		spills[i].capture = q->sel[first + i].id;
		struct object_run r = { .q = q, .ring = ring, .sel = &q->sel[first + i],
					.fn = spill_packet, .opaque = &spills[i],
					.limit = out->seeking ? 0 : q->limit, .eb = eb };
		start_at_cursor(q, &r, true);
		if (out->seeking && k > 0 && spills[lead].any && q->limit) {
			r.cut_ts = spills[lead].first_ts;
			r.cut_max = q->limit;
		}
		if (out->seeking && k == 0 && q->limit)
			r.limit = q->limit + 1; /* the cursor's packet, then a page */
		if (!err)
			err = run_object(&r, cand, all);
		if (err == 1)
			err = 0; /* this capture gave the limit: the merge decides */
	}
	if (!err)
		err = merge_spills(spills, n, out);
	for (size_t i = 0; i < n; i++)
		spill_close(&spills[i]);
	free(spills);
	return err;
}

/* The index in sel of the cursor's capture (0 without a cursor). */
static int cursor_index(struct query *q, size_t *at, struct errbuf *eb)
{
	*at = 0;
	if (!q->has_resume)
		return 0;
	for (size_t i = 0; i < q->nsel; i++)
		if (q->sel[i].id == q->resume_capture) {
			*at = i;
			return 0;
		}
	return errbuf_set(eb, -ENOENT, "the cursor's capture %llu is not selected (deleted?)",
			  (unsigned long long)q->resume_capture);
}

/* The end of the group of captures starting at i whose times overlap. */
static size_t overlap_group_end(const struct query *q, size_t i)
{
	int64_t latest = q->sel[i].latest;
	size_t j = i + 1;
	for (; j < q->nsel && q->sel[j].earliest <= latest; j++)
		if (q->sel[j].latest > latest)
			latest = q->sel[j].latest;
	return j;
}

static int query_run_mode(struct query *q, struct ring *ring, query_packet_fn fn, void *opaque,
			  bool ordered, struct errbuf *eb)
{
	double start = mono_ms_f();
	struct plan_ids cand = { 0 };
	struct output out = { .q = q, .fn = fn, .opaque = opaque };
	bool all = true;
	int err = q->nsel ? plan_candidates(q, &cand, &all) : 0;
	size_t at;
	if (!err)
		err = cursor_index(q, &at, eb);
	for (size_t i = 0; !err && i < q->nsel;) {
		size_t end = ordered ? overlap_group_end(q, i) : i + 1;
		if (end <= at) {
			i = end; /* before the cursor */
			continue;
		}
		if ((err = check_cancelled(q, true)) != 0)
			break;
		out.seeking = q->has_resume && i <= at && end - i > 1;
		if (end - i > 1) {
			err = run_merged(q, ring, i, end, &cand, all, &out, eb);
		} else {
			struct object_run r = { .q = q, .ring = ring, .sel = &q->sel[i],
						.fn = output_packet, .opaque = &out, .eb = eb };
			start_at_cursor(q, &r, false);
			out.capture = q->sel[i].id;
			err = run_object(&r, &cand, all);
		}
		i = end;
	}
	plan_ids_release(&cand);
	q->stats.elapsed_ms = mono_ms_f() - start;
	if (err == -ECANCELED)
		errbuf_set(eb, err, "query cancelled after %llu candidate packets",
			   (unsigned long long)q->stats.packets_candidate);
	return err == 1 ? 0 : err; /* 1: the packet limit was reached */
}

int query_run(struct query *q, struct ring *ring, query_packet_fn fn, void *opaque,
	      struct errbuf *eb)
{
	return query_run_mode(q, ring, fn, opaque, true, eb);
}

int query_run_unordered(struct query *q, struct ring *ring, query_packet_fn fn, void *opaque,
			struct errbuf *eb)
{
	/* With a limit, which packets come first decides what is counted. */
	return query_run_mode(q, ring, fn, opaque, q->limit != 0, eb);
}

int query_count(struct query *q, struct ring *ring, struct errbuf *eb)
{
	q->count_only = true;
	int err = query_run_mode(q, ring, NULL, NULL, q->limit != 0, eb);
	q->count_only = false;
	return err;
}
