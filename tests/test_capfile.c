/*
 * test_capfile.c - unit tests of the pcap/pcapng reader (ingest/capfile.c).
 *
 * Captures are built with capwriter; every test checks decoded fields
 * against what was written, and the chunking tests prove that the way the
 * input is split never changes the result.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capfile.h"
#include "capwriter.h"

#define MAXPKT 64
#define MAXCTX 16

struct rec {
	struct capfile_packet p;
	uint8_t data[2048];
	bool zero_copy; /* data pointed into the fed buffer */
};

struct ctxrec {
	uint64_t offset;
	uint8_t blob[1024];
	size_t len;
};

struct run {
	struct rec pkts[MAXPKT];
	size_t npkts;
	struct ctxrec ctx[MAXCTX];
	size_t nctx;
	const uint8_t *feed_lo, *feed_hi; /* the buffer being fed */
	int stop_at;                      /* return 42 at this packet (1-based) */
	int feed_rc, finish_rc;
	struct errbuf eb;
	struct capfile_summary sum;
};

static int on_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct run *r = opaque;

	assert_true(r->npkts < MAXPKT);
	assert_true(pkt->caplen <= sizeof(r->pkts[0].data));
	struct rec *x = &r->pkts[r->npkts++];
	x->p = *pkt;
	x->zero_copy = pkt->data >= r->feed_lo && pkt->data + pkt->caplen <= r->feed_hi;
	memcpy(x->data, pkt->data, pkt->caplen);
	x->p.data = x->data;
	return r->stop_at && (int)r->npkts == r->stop_at ? 42 : 0;
}

static int on_context(void *opaque, uint64_t offset, const void *blob, size_t len)
{
	struct run *r = opaque;

	assert_true(r->nctx < MAXCTX);
	assert_true(len <= sizeof(r->ctx[0].blob));
	r->ctx[r->nctx].offset = offset;
	memcpy(r->ctx[r->nctx].blob, blob, len);
	r->ctx[r->nctx++].len = len;
	return 0;
}

/* Feeds buf in pieces: cuts[] are split points (ascending); step > 0
 * feeds step bytes at a time instead. */
static void run_capture_stop(struct run *r, const uint8_t *buf, size_t len, const size_t *cuts,
			     size_t ncuts, size_t step, int stop_at)
{
	struct capfile *cf = NULL;
	size_t pos = 0, ci = 0;

	memset(r, 0, sizeof(*r));
	r->stop_at = stop_at;
	assert_int_equal(capfile_new(&cf, on_packet, on_context, r), 0);
	while (pos < len && r->feed_rc == 0) {
		size_t end = step ? pos + step : (ci < ncuts ? cuts[ci++] : len);
		if (end > len)
			end = len;
		r->feed_lo = buf + pos;
		r->feed_hi = buf + end;
		r->feed_rc = capfile_feed(cf, buf + pos, end - pos, &r->eb);
		pos = end;
	}
	if (r->feed_rc == 0)
		r->finish_rc = capfile_finish(cf, &r->eb);
	r->sum = *capfile_summary(cf);
	capfile_free(cf);
}

static void run_capture(struct run *r, const uint8_t *buf, size_t len, const size_t *cuts,
			size_t ncuts, size_t step)
{
	run_capture_stop(r, buf, len, cuts, ncuts, step, 0);
}

static void run_whole(struct run *r, const struct cwbuf *b)
{
	run_capture(r, b->data, b->len, NULL, 0, 0);
}

static void assert_same_packets(const struct run *a, const struct run *b)
{
	assert_int_equal(a->npkts, b->npkts);
	for (size_t i = 0; i < a->npkts; i++) {
		const struct capfile_packet *x = &a->pkts[i].p, *y = &b->pkts[i].p;
		assert_int_equal(x->offset, y->offset);
		assert_int_equal(x->record_len, y->record_len);
		assert_int_equal(x->ts_ns, y->ts_ns);
		assert_int_equal(x->caplen, y->caplen);
		assert_int_equal(x->origlen, y->origlen);
		assert_int_equal(x->section, y->section);
		assert_int_equal(x->ifindex, y->ifindex);
		assert_int_equal(x->linktype, y->linktype);
		assert_memory_equal(a->pkts[i].data, b->pkts[i].data, x->caplen);
	}
	assert_int_equal(a->nctx, b->nctx);
	for (size_t i = 0; i < a->nctx; i++) {
		assert_int_equal(a->ctx[i].offset, b->ctx[i].offset);
		assert_int_equal(a->ctx[i].len, b->ctx[i].len);
		assert_memory_equal(a->ctx[i].blob, b->ctx[i].blob, a->ctx[i].len);
	}
	assert_memory_equal(&a->sum, &b->sum, sizeof(a->sum));
	assert_int_equal(a->feed_rc, b->feed_rc);
	assert_int_equal(a->finish_rc, b->finish_rc);
	assert_string_equal(a->eb.msg, b->eb.msg);
}

/* Every 2-way split and byte-by-byte feeding give the whole-feed result. */
static void assert_split_invariant(const struct cwbuf *b)
{
	struct run *whole = calloc(1, sizeof(*whole)), *part = calloc(1, sizeof(*part));

	run_whole(whole, b);
	for (size_t cut = 0; cut <= b->len; cut++) {
		run_capture(part, b->data, b->len, &cut, 1, 0);
		assert_same_packets(whole, part);
	}
	for (size_t cut = 1; cut + 7 <= b->len; cut += 5) {
		size_t cuts[2] = { cut, cut + 7 };
		run_capture(part, b->data, b->len, cuts, 2, 0);
		assert_same_packets(whole, part);
	}
	run_capture(part, b->data, b->len, NULL, 0, 1);
	assert_same_packets(whole, part);
	run_capture(part, b->data, b->len, NULL, 0, 3);
	assert_same_packets(whole, part);
	free(whole);
	free(part);
}

/* Decodes every packet again from its record bytes with the context blob
 * in force at its offset, as queries do. */
static void assert_decode_roundtrip(const struct run *r, const struct cwbuf *b)
{
	for (size_t i = 0; i < r->npkts; i++) {
		const struct capfile_packet *p = &r->pkts[i].p;
		const struct ctxrec *c = NULL;
		for (size_t k = 0; k < r->nctx; k++)
			if (r->ctx[k].offset <= p->offset)
				c = &r->ctx[k];
		assert_non_null(c);
		uint32_t rl = 0;
		assert_int_equal(capfile_record_length(c->blob, c->len, b->data + p->offset,
						       CAPFILE_RECORD_HEADER, &rl), 0);
		assert_int_equal(rl, p->record_len);
		struct capfile_packet q;
		assert_int_equal(capfile_decode_record(c->blob, c->len, b->data + p->offset, rl,
						       p->offset, &q), 0);
		assert_int_equal(q.ts_ns, p->ts_ns);
		assert_int_equal(q.caplen, p->caplen);
		assert_int_equal(q.origlen, p->origlen);
		assert_int_equal(q.linktype, p->linktype);
		assert_int_equal(q.ifindex, p->ifindex);
		assert_int_equal(q.section, p->section);
		assert_int_equal(q.offset, p->offset);
		assert_memory_equal(q.data, r->pkts[i].data, q.caplen);
	}
}

/* ---- pcap ---- */

static void build_pcap(struct cwbuf *b, bool be, bool nsec, uint32_t linktype)
{
	uint8_t d[100];

	for (size_t i = 0; i < sizeof(d); i++)
		d[i] = (uint8_t)(0xa0 + i);
	cwbuf_init_mem(b);
	cw_pcap_header(b, be, nsec, 1500, linktype);
	cw_pcap_record(b, be, 1700000000, nsec ? 123456789 : 123456, d, 60, 60);
	cw_pcap_record(b, be, 1700000001, 5, d, 0, 1514);
	cw_pcap_record(b, be, 1700000001, 7, d + 3, 33, 70);
}

static void check_pcap(bool be, bool nsec)
{
	struct cwbuf b;
	struct run *r = calloc(1, sizeof(*r));

	build_pcap(&b, be, nsec, 1);
	run_whole(r, &b);
	assert_int_equal(r->feed_rc, 0);
	assert_int_equal(r->finish_rc, 0);
	assert_int_equal(r->npkts, 3);
	assert_int_equal(r->pkts[0].p.offset, 24);
	assert_int_equal(r->pkts[0].p.record_len, 76);
	assert_int_equal(r->pkts[0].p.ts_ns, 1700000000ull * 1000000000 + (nsec ? 123456789 : 123456000));
	assert_int_equal(r->pkts[0].p.caplen, 60);
	assert_int_equal(r->pkts[0].p.linktype, 1);
	assert_int_equal(r->pkts[0].data[0], 0xa0);
	assert_true(r->pkts[0].zero_copy);
	assert_int_equal(r->pkts[1].p.offset, 100);
	assert_int_equal(r->pkts[1].p.caplen, 0);
	assert_int_equal(r->pkts[1].p.origlen, 1514);
	assert_int_equal(r->pkts[1].p.ts_ns, 1700000001ull * 1000000000 + (nsec ? 5 : 5000));
	assert_int_equal(r->pkts[2].p.offset, 116);
	assert_int_equal(r->pkts[2].data[0], 0xa3);
	const struct capfile_summary *s = &r->sum;
	assert_int_equal(s->format, CAPFILE_FORMAT_PCAP);
	assert_int_equal(s->big_endian, be);
	assert_int_equal(s->nanosecond, nsec);
	assert_int_equal(s->version_major, 2);
	assert_int_equal(s->version_minor, 4);
	assert_int_equal(s->snaplen, 1500);
	assert_int_equal(s->packets, 3);
	assert_int_equal(s->data_bytes, 93);
	assert_int_equal(s->wire_bytes, 60 + 1514 + 70);
	assert_int_equal(s->first_ts_ns, r->pkts[0].p.ts_ns);
	assert_int_equal(s->last_ts_ns, r->pkts[2].p.ts_ns);
	assert_int_equal(s->valid_bytes, b.len);
	assert_true(s->time_ordered);
	assert_false(s->truncated);
	assert_int_equal(s->nlinktypes, 1);
	assert_int_equal(r->nctx, 1);
	assert_int_equal(r->ctx[0].offset, 24);
	assert_decode_roundtrip(r, &b);
	assert_split_invariant(&b);
	cwbuf_release(&b);
	free(r);
}

static void test_pcap_le_usec(void **state)
{
	(void)state;
	check_pcap(false, false);
}

static void test_pcap_be_usec(void **state)
{
	(void)state;
	check_pcap(true, false);
}

static void test_pcap_le_nsec(void **state)
{
	(void)state;
	check_pcap(false, true);
}

static void test_pcap_be_nsec(void **state)
{
	(void)state;
	check_pcap(true, true);
}

static void test_pcap_header_only(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	cwbuf_init_mem(&b);
	cw_pcap_header(&b, false, false, 65535, 105);
	run_whole(&r, &b);
	assert_int_equal(r.finish_rc, 0);
	assert_int_equal(r.sum.packets, 0);
	assert_int_equal(r.sum.linktypes[0], 105);
	assert_int_equal(r.sum.valid_bytes, 24);
	cwbuf_release(&b);
}

static void test_pcap_linktype_fcs_bits_masked(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	build_pcap(&b, false, false, 0x14000000u | 1); /* FCS length 4 present */
	run_whole(&r, &b);
	assert_int_equal(r.finish_rc, 0);
	assert_int_equal(r.pkts[0].p.linktype, 1);
	assert_int_equal(r.sum.linktypes[0], 1);
	cwbuf_release(&b);
}

static void test_pcap_usec_not_normalized(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	cwbuf_init_mem(&b);
	cw_pcap_header(&b, false, false, 100, 1);
	cw_pcap_record(&b, false, 10, 2500000, NULL, 4, 4); /* 2.5 s of usec */
	cw_pcap_record(&b, false, 4294967295u, 0, NULL, 4, 4); /* seconds are unsigned */
	cw_pcap_record(&b, false, 11, 0, NULL, 4, 4);
	run_whole(&r, &b);
	assert_int_equal(r.pkts[0].p.ts_ns, 12500000000ull);
	assert_int_equal(r.pkts[1].p.ts_ns, 4294967295ull * 1000000000);
	assert_false(r.sum.time_ordered);
	assert_int_equal(r.sum.earliest_ts_ns, 11000000000ull);
	assert_int_equal(r.sum.latest_ts_ns, 4294967295ull * 1000000000);
	assert_int_equal(r.sum.first_ts_ns, 12500000000ull);
	assert_int_equal(r.sum.last_ts_ns, 11000000000ull);
	cwbuf_release(&b);
}

static void test_pcap_truncated_record(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	build_pcap(&b, false, false, 1);
	cw_truncate(&b, b.len - 10);
	run_whole(&r, &b);
	assert_int_equal(r.feed_rc, 0);
	assert_int_equal(r.finish_rc, CAPFILE_TRUNCATED);
	assert_string_equal(r.eb.msg, "offset 116: truncated record (39 of 49 bytes present)");
	assert_int_equal(r.npkts, 2);
	assert_true(r.sum.truncated);
	assert_int_equal(r.sum.valid_bytes, 116);
	assert_split_invariant(&b);
	/* cut inside a record header */
	cw_truncate(&b, 120);
	run_whole(&r, &b);
	assert_int_equal(r.finish_rc, CAPFILE_TRUNCATED);
	assert_string_equal(r.eb.msg, "offset 116: truncated record header (4 bytes present)");
	cwbuf_release(&b);
}

static void test_pcap_truncated_header(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	build_pcap(&b, false, false, 1);
	cw_truncate(&b, 20);
	run_whole(&r, &b);
	assert_int_equal(r.finish_rc, -EINVAL);
	assert_string_equal(r.eb.msg, "offset 20: file ends inside the pcap file header");
	assert_int_equal(r.npkts, 0);
	run_capture(&r, b.data, 0, NULL, 0, 0);
	assert_int_equal(r.finish_rc, -EINVAL);
	assert_string_equal(r.eb.msg, "offset 0: empty file");
	run_capture(&r, b.data, 3, NULL, 0, 0);
	assert_int_equal(r.finish_rc, -EINVAL);
	assert_string_equal(r.eb.msg, "offset 0: not a pcap or pcapng file (only 3 bytes)");
	cwbuf_release(&b);
}

static void test_not_a_capture(void **state)
{
	static const char html[] = "<html><body>hello</body></html>";
	struct run r;

	(void)state;
	run_capture(&r, (const uint8_t *)html, sizeof(html) - 1, NULL, 0, 0);
	assert_int_equal(r.feed_rc, -EINVAL);
	assert_string_equal(r.eb.msg, "offset 0: not a pcap or pcapng file (magic 0x3c68746d)");
	run_capture(&r, (const uint8_t *)html, sizeof(html) - 1, NULL, 0, 1);
	assert_int_equal(r.feed_rc, -EINVAL);
	assert_string_equal(r.eb.msg, "offset 0: not a pcap or pcapng file (magic 0x3c68746d)");
	assert_int_equal(capfile_sniff(html, 4), CAPFILE_FORMAT_UNKNOWN);
}

static void test_pcap_bad_version(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	build_pcap(&b, true, false, 1);
	b.data[5] = 1; /* version 1.4 (big-endian major) */
	run_whole(&r, &b);
	assert_int_equal(r.feed_rc, -EINVAL);
	assert_string_equal(r.eb.msg, "offset 4: unsupported pcap version 1.4 (expected 2.x)");
	cwbuf_release(&b);
}

static void test_pcap_caplen_limits(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	/* caplen above snaplen but sane: delivered cut to the snaplen */
	cwbuf_init_mem(&b);
	cw_pcap_header(&b, false, false, 40, 1);
	cw_pcap_record(&b, false, 1, 0, NULL, 100, 100);
	cw_pcap_record(&b, false, 2, 0, NULL, 30, 100);
	run_whole(&r, &b);
	assert_int_equal(r.finish_rc, 0);
	assert_int_equal(r.npkts, 2);
	assert_int_equal(r.pkts[0].p.caplen, 40);
	assert_int_equal(r.pkts[0].p.record_len, 116);
	assert_int_equal(r.pkts[1].p.offset, 24 + 116);
	assert_int_equal(r.sum.oversized, 1);
	assert_int_equal(r.sum.data_bytes, 70);
	assert_decode_roundtrip(&r, &b);
	cwbuf_release(&b);
	/* caplen above libpcap's maximum for the link type: an error */
	cwbuf_init_mem(&b);
	cw_pcap_header(&b, false, false, 65535, 1);
	cw_pcap_record(&b, false, 1, 0, NULL, 10, 10);
	cw_pcap_record(&b, false, 1, 0, NULL, 0, 0);
	cw_poke32(&b, 50 + 8, 262145, false);
	run_whole(&r, &b);
	assert_int_equal(r.feed_rc, -EINVAL);
	assert_string_equal(r.eb.msg,
			    "offset 50: invalid packet capture length 262145, bigger than maximum of 262144");
	assert_int_equal(r.npkts, 1);
	cwbuf_release(&b);
}

static void test_callback_stops(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	build_pcap(&b, false, false, 1);
	run_capture_stop(&r, b.data, b.len, NULL, 0, 0, 2);
	assert_int_equal(r.feed_rc, 42);
	assert_int_equal(r.npkts, 2);
	cwbuf_release(&b);
}

static void test_refuses_after_error(void **state)
{
	static const uint8_t junk[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct capfile *cf;
	struct errbuf eb;

	(void)state;
	assert_int_equal(capfile_new(&cf, NULL, NULL, NULL), 0);
	assert_int_equal(capfile_feed(cf, junk, sizeof(junk), &eb), -EINVAL);
	assert_int_equal(capfile_feed(cf, junk, sizeof(junk), &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "offset 0: not a pcap"));
	assert_int_equal(capfile_finish(cf, &eb), -EINVAL);
	assert_null(capfile_free(cf));
	assert_null(capfile_free(NULL));
}

static void test_sniff(void **state)
{
	static const uint8_t m[][4] = {
		{ 0xd4, 0xc3, 0xb2, 0xa1 }, { 0xa1, 0xb2, 0xc3, 0xd4 }, { 0x4d, 0x3c, 0xb2, 0xa1 },
		{ 0xa1, 0xb2, 0x3c, 0x4d }, { 0x0a, 0x0d, 0x0d, 0x0a }, { 0x1f, 0x8b, 0x08, 0x00 },
	};

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(capfile_sniff(m[i], 4), CAPFILE_FORMAT_PCAP);
	assert_int_equal(capfile_sniff(m[4], 4), CAPFILE_FORMAT_PCAPNG);
	assert_int_equal(capfile_sniff(m[5], 4), CAPFILE_FORMAT_UNKNOWN);
	assert_int_equal(capfile_sniff(m[0], 3), CAPFILE_FORMAT_UNKNOWN);
	assert_string_equal(capfile_format_name(CAPFILE_FORMAT_PCAPNG), "pcapng");
}

/* ---- pcapng ---- */

/* Section 0 (little-endian): IDB0 Ethernet usec, IDB1 raw IP with 2^-20
 * and a tsoffset, an unknown and a custom block, EPBs, SPB, PB.
 * Section 1 (big-endian): IDB0 linktype 105 with 10^-9. */
static void build_pcapng(struct cwbuf *b)
{
	static const uint8_t body[10] = "opaque!!!";

	cwbuf_init_mem(b);
	cw_shb(b, false);                                   /* 0, 28 bytes */
	cw_idb(b, false, 1, 96, -1, false, 0);              /* 28, 20 */
	cw_idb(b, false, 101, 0, 0x80 | 20, true, 100);     /* 48, 44 */
	cw_block(b, false, 0x12345678, body, sizeof(body)); /* 92, 24 */
	cw_block(b, false, 0x00000BAD, body, 4);            /* 116, 16 */
	cw_epb(b, false, 0, 1700000000123456ull, NULL, 60, 60);          /* 132, 92 */
	cw_epb(b, false, 1, (5ull << 20) | (1u << 19), NULL, 20, 1000);  /* 224, 52 */
	cw_spb(b, false, NULL, 64, 200);                    /* 276, 80 */
	cw_pb(b, false, 1, 3ull << 20, NULL, 8, 8);         /* 356, 40 */
	cw_shb(b, true);                                    /* 396 */
	cw_idb(b, true, 105, 65535, 9, false, 0);           /* 424, 32 */
	cw_epb(b, true, 0, 1700000000987654321ull, NULL, 13, 13); /* 456, 48 */
}

static void test_pcapng_sections_and_blocks(void **state)
{
	struct cwbuf b;
	struct run *r = calloc(1, sizeof(*r));

	(void)state;
	build_pcapng(&b);
	run_whole(r, &b);
	assert_int_equal(r->feed_rc, 0);
	assert_int_equal(r->finish_rc, 0);
	assert_int_equal(r->npkts, 5);
	const struct capfile_packet *p = &r->pkts[0].p;
	assert_int_equal(p->offset, 132);
	assert_int_equal(p->ts_ns, 1700000000123456000ull);
	assert_int_equal(p->linktype, 1);
	assert_int_equal(p->record_len, 92);
	assert_int_equal(r->pkts[0].data[0], 1); /* fill pattern starts at 1 */
	p = &r->pkts[1].p; /* 5.5 s at 2^-20 plus 100 s offset */
	assert_int_equal(p->ts_ns, 105500000000ull);
	assert_int_equal(p->ifindex, 1);
	assert_int_equal(p->linktype, 101);
	assert_int_equal(p->caplen, 20);
	assert_int_equal(p->origlen, 1000);
	p = &r->pkts[2].p; /* SPB: interface 0, cut to its snaplen 96 > stored 64 */
	assert_int_equal(p->offset, 276);
	assert_int_equal(p->caplen, 64);
	assert_int_equal(p->origlen, 200);
	assert_int_equal(p->ts_ns, 0);
	assert_int_equal(p->linktype, 1);
	p = &r->pkts[3].p; /* PB on interface 1 */
	assert_int_equal(p->offset, 356);
	assert_int_equal(p->ts_ns, 103000000000ull);
	assert_int_equal(p->caplen, 8);
	p = &r->pkts[4].p;
	assert_int_equal(p->section, 1);
	assert_int_equal(p->ifindex, 0);
	assert_int_equal(p->linktype, 105);
	assert_int_equal(p->ts_ns, 1700000000987654321ull);
	assert_int_equal(p->caplen, 13);
	const struct capfile_summary *s = &r->sum;
	assert_int_equal(s->format, CAPFILE_FORMAT_PCAPNG);
	assert_false(s->big_endian);
	assert_int_equal(s->sections, 2);
	assert_int_equal(s->interfaces, 3);
	assert_int_equal(s->nlinktypes, 3);
	assert_int_equal(s->linktypes[0], 1);
	assert_int_equal(s->linktypes[1], 101);
	assert_int_equal(s->linktypes[2], 105);
	assert_int_equal(s->snaplen, 65535);
	assert_false(s->time_ordered);
	assert_int_equal(s->earliest_ts_ns, 0);
	assert_int_equal(s->latest_ts_ns, 1700000000987654321ull);
	assert_int_equal(s->valid_bytes, b.len);
	/* contexts: after each SHB, and after each run of IDBs (the two
	 * IDBs of the first section make one) */
	assert_int_equal(r->nctx, 4);
	static const uint64_t ctx_off[] = { 28, 92, 424, 456 };
	for (int i = 0; i < 4; i++)
		assert_int_equal(r->ctx[i].offset, ctx_off[i]);
	assert_decode_roundtrip(r, &b);
	/* a non-packet block decodes to 1, the IDB the run's context
	 * stands for too */
	struct capfile_packet q;
	assert_int_equal(capfile_decode_record(r->ctx[0].blob, r->ctx[0].len, b.data + 48, 44, 48, &q), 1);
	assert_int_equal(capfile_decode_record(r->ctx[1].blob, r->ctx[1].len, b.data + 92, 24, 92, &q), 1);
	assert_int_equal(capfile_decode_record(r->ctx[3].blob, r->ctx[3].len, b.data + 424, 32, 424, &q), 1);
	assert_int_equal(capfile_decode_record(r->ctx[1].blob, 3, b.data + 132, 92, 132, &q), -EINVAL);
	assert_int_equal(capfile_decode_record(r->ctx[1].blob, r->ctx[1].len, b.data + 132, 88, 132, &q),
			 -EINVAL);
	assert_split_invariant(&b);
	cwbuf_release(&b);
	free(r);
}

static void test_pcapng_tsresol(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	cwbuf_init_mem(&b);
	cw_shb(&b, true);
	cw_idb(&b, true, 1, 0, 9, false, 0);           /* ns */
	cw_idb(&b, true, 1, 0, 0x80 | 20, false, 0);   /* 2^-20 */
	cw_idb(&b, true, 1, 0, 3, true, -5);           /* ms, -5 s */
	cw_idb(&b, true, 1, 0, 12, false, 0);          /* ps */
	cw_idb(&b, true, 1, 0, 0x80 | 0, false, 0);    /* whole seconds */
	cw_epb(&b, true, 0, UINT64_MAX, NULL, 0, 0);
	cw_epb(&b, true, 1, 1ull << 50, NULL, 0, 0);
	cw_epb(&b, true, 2, 7000, NULL, 0, 0);
	cw_epb(&b, true, 3, 1234567890123ull, NULL, 0, 0);
	cw_epb(&b, true, 4, 1ull << 40, NULL, 0, 0);
	run_whole(&r, &b);
	assert_int_equal(r.finish_rc, 0);
	assert_true(r.sum.big_endian);
	/* 2^64 - 1 ns is past 2262: saturated, and flagged */
	assert_true(r.pkts[0].p.ts_ns == INT64_MAX);
	assert_true(r.pkts[0].p.ts_saturated);
	/* 2^50 units * 1e9 overflows 64 bits before the shift by 20 */
	assert_int_equal(r.pkts[1].p.ts_ns, (1ull << 30) * 1000000000ull);
	assert_false(r.pkts[1].p.ts_saturated);
	assert_int_equal(r.pkts[2].p.ts_ns, 2000000000ull);
	assert_int_equal(r.pkts[3].p.ts_ns, 1234567890ull);
	assert_true(r.pkts[4].p.ts_ns == INT64_MAX); /* 2^40 s saturates */
	assert_true(r.pkts[4].p.ts_saturated);
	assert_int_equal(r.sum.time_saturated, 2);
	cwbuf_release(&b);
}

/* Times before 1970 are negative, not 0: their order and the earliest and
 * latest stay true. A fraction rounds down, as libpcap's does. */
static void test_pcapng_before_1970(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	cwbuf_init_mem(&b);
	cw_shb(&b, false);
	cw_idb(&b, false, 1, 0, 6, true, -100000);      /* us, -100000 s */
	cw_idb(&b, false, 1, 0, 0x80 | 1, true, -1);    /* half seconds, -1 s */
	for (uint64_t i = 0; i < 5; i++)
		cw_epb(&b, false, 0, i * 1000000 + 250000, NULL, 0, 0);
	cw_epb(&b, false, 1, 1, NULL, 0, 0);             /* -0.5 s */
	cw_epb(&b, false, 1, 3, NULL, 0, 0);             /* +0.5 s */
	run_whole(&r, &b);
	assert_int_equal(r.finish_rc, 0);
	assert_int_equal(r.npkts, 7);
	assert_true(r.pkts[0].p.ts_ns == -99999750000000ll);
	assert_true(r.pkts[4].p.ts_ns == -99995750000000ll);
	assert_true(r.pkts[5].p.ts_ns == -500000000ll);
	assert_true(r.pkts[6].p.ts_ns == 500000000ll);
	for (int i = 0; i < 7; i++)
		assert_false(r.pkts[i].p.ts_saturated);
	assert_true(r.sum.time_ordered);
	assert_true(r.sum.earliest_ts_ns == -99999750000000ll);
	assert_true(r.sum.first_ts_ns == -99999750000000ll);
	assert_true(r.sum.latest_ts_ns == 500000000ll);
	assert_int_equal(r.sum.time_saturated, 0);
	cwbuf_release(&b);

	/* out of order before 1970: no longer all "the epoch", so seen */
	cwbuf_init_mem(&b);
	cw_shb(&b, false);
	cw_idb(&b, false, 1, 0, 6, true, -100000);
	cw_epb(&b, false, 0, 2000000, NULL, 0, 0);
	cw_epb(&b, false, 0, 1000000, NULL, 0, 0);
	run_whole(&r, &b);
	assert_false(r.sum.time_ordered);
	cwbuf_release(&b);
}

/* Past both ends of the ns range: saturated to the end, flagged, counted;
 * two saturated times in a row are not known to be in order. */
static void test_pcapng_saturated(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	cwbuf_init_mem(&b);
	cw_shb(&b, false);
	cw_idb(&b, false, 1, 0, 6, false, 0);            /* us */
	cw_idb(&b, false, 1, 0, 9, true, INT64_MIN);      /* ns, the earliest offset */
	cw_epb(&b, false, 0, 1700000000000000ull, NULL, 0, 0);
	cw_epb(&b, false, 0, 1ull << 62, NULL, 0, 0);       /* year 146140 */
	cw_epb(&b, false, 1, 5, NULL, 0, 0);
	run_whole(&r, &b);
	assert_int_equal(r.npkts, 3);
	assert_true(r.pkts[0].p.ts_ns == 1700000000000000000ll);
	assert_true(r.pkts[1].p.ts_ns == INT64_MAX);
	assert_true(r.pkts[1].p.ts_saturated);
	assert_true(r.pkts[2].p.ts_ns == INT64_MIN);
	assert_true(r.pkts[2].p.ts_saturated);
	assert_true(r.sum.earliest_ts_ns == INT64_MIN);
	assert_true(r.sum.latest_ts_ns == INT64_MAX);
	assert_int_equal(r.sum.time_saturated, 2);
	assert_false(r.sum.time_ordered);
	cwbuf_release(&b);

	/* ordered up to one saturated time: still ordered */
	cwbuf_init_mem(&b);
	cw_shb(&b, false);
	cw_idb(&b, false, 1, 0, 6, false, 0);
	cw_epb(&b, false, 0, 1, NULL, 0, 0);
	cw_epb(&b, false, 0, 1ull << 62, NULL, 0, 0);
	run_whole(&r, &b);
	assert_true(r.sum.time_ordered);
	/* a second one: its order to the first is unknown */
	cw_epb(&b, false, 0, (1ull << 62) - 7, NULL, 0, 0);
	run_whole(&r, &b);
	assert_false(r.sum.time_ordered);
	assert_int_equal(r.sum.time_saturated, 2);
	cwbuf_release(&b);
}

static void test_pcapng_undefined_interface(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	cwbuf_init_mem(&b);
	cw_shb(&b, false);
	cw_idb(&b, false, 1, 0, -1, false, 0);
	cw_epb(&b, false, 0, 1, NULL, 4, 4);
	cw_epb(&b, false, 1, 1, NULL, 4, 4); /* at 84 */
	run_whole(&r, &b);
	assert_int_equal(r.feed_rc, -EINVAL);
	assert_string_equal(r.eb.msg, "offset 84: packet refers to undefined interface 1");
	assert_int_equal(r.npkts, 1);
	/* an SPB without any interface */
	cwbuf_release(&b);
	cwbuf_init_mem(&b);
	cw_shb(&b, false);
	cw_spb(&b, false, NULL, 4, 4);
	run_whole(&r, &b);
	assert_int_equal(r.feed_rc, -EINVAL);
	assert_string_equal(r.eb.msg, "offset 28: simple packet block without interface 0");
	cwbuf_release(&b);
}

/* Context blobs hold every interface of their section: a run of IDBs
 * gives one, and a file that would make them grow with the square of its
 * interfaces (an IDB before each packet) is refused, not indexed. */
struct ctx_count {
	size_t n, bytes, packets;
};

static int count_packet(void *opaque, const struct capfile_packet *pkt)
{
	(void)pkt;
	((struct ctx_count *)opaque)->packets++;
	return 0;
}

static int count_context(void *opaque, uint64_t offset, const void *blob, size_t len)
{
	struct ctx_count *c = opaque;
	(void)offset;
	(void)blob;
	c->n++;
	c->bytes += len;
	return 0;
}

static int count_contexts(const struct cwbuf *b, struct ctx_count *c, struct errbuf *eb)
{
	struct capfile *cf = NULL;
	memset(c, 0, sizeof(*c));
	assert_int_equal(capfile_new(&cf, count_packet, count_context, c), 0);
	int rc = capfile_feed(cf, b->data, b->len, eb);
	if (rc == 0)
		rc = capfile_finish(cf, eb);
	capfile_free(cf);
	return rc;
}

static void test_pcapng_many_interfaces(void **state)
{
	struct cwbuf b;
	struct ctx_count c;
	struct errbuf eb;

	(void)state;
	/* 4000 IDBs, then packets: one context after the SHB, one after the run */
	cwbuf_init_mem(&b);
	cw_shb(&b, false);
	for (int i = 0; i < 4000; i++)
		cw_idb(&b, false, 1, 0, -1, false, 0);
	cw_epb(&b, false, 3999, 1, NULL, 4, 4);
	assert_int_equal(count_contexts(&b, &c, &eb), 0);
	assert_int_equal(c.packets, 1);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.bytes, 16 + 16 + 4000 * 24);
	cwbuf_release(&b);

	/* IDBs at the end of the file: their context is still given */
	cwbuf_init_mem(&b);
	cw_shb(&b, false);
	cw_idb(&b, false, 1, 0, -1, false, 0);
	cw_idb(&b, false, 1, 0, -1, false, 0);
	assert_int_equal(count_contexts(&b, &c, &eb), 0);
	assert_int_equal(c.n, 2);
	cwbuf_release(&b);

	/* an IDB before each packet, 2000 times: 48 MB of contexts, refused */
	cwbuf_init_mem(&b);
	cw_shb(&b, false);
	for (int i = 0; i < 2000; i++) {
		cw_idb(&b, false, 1, 0, -1, false, 0);
		cw_epb(&b, false, (uint32_t)i, 1, NULL, 4, 4);
	}
	assert_int_equal(count_contexts(&b, &c, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "interface descriptions of this file would take more than 16 MiB"));
	assert_true(c.bytes <= 16u * 1024 * 1024);
	assert_true(c.packets < 2000);
	cwbuf_release(&b);
}

static void test_pcapng_bad_lengths(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	build_pcapng(&b);
	cw_poke32(&b, 224 + 52 - 4, 56, false); /* trailing length of the 2nd EPB */
	run_whole(&r, &b);
	assert_int_equal(r.feed_rc, -EINVAL);
	assert_string_equal(r.eb.msg, "offset 224: block length 52 and trailing length 56 differ");
	assert_int_equal(r.npkts, 1);
	cwbuf_release(&b);

	build_pcapng(&b);
	cw_poke32(&b, 132 + 4, 90, false); /* not a multiple of 4 */
	run_whole(&r, &b);
	assert_int_equal(r.feed_rc, -EINVAL);
	assert_string_equal(r.eb.msg, "offset 132: bad pcapng block length 90 (must be a multiple "
				      "of 4, at least 12, at most 16777216)");
	cwbuf_release(&b);

	build_pcapng(&b);
	cw_poke32(&b, 132 + 4, 0x7ffffff0u, false); /* never allocated */
	run_whole(&r, &b);
	assert_int_equal(r.feed_rc, -EINVAL);
	assert_non_null(strstr(r.eb.msg, "offset 132: bad pcapng block length 2147483632"));
	cwbuf_release(&b);

	build_pcapng(&b);
	cw_poke32(&b, 132 + 20, 64, false); /* caplen 64 > 60 stored */
	run_whole(&r, &b);
	assert_int_equal(r.feed_rc, -EINVAL);
	assert_string_equal(r.eb.msg,
			    "offset 132: captured length 64 exceeds the block body (60 bytes)");
	cwbuf_release(&b);

	build_pcapng(&b);
	cw_poke32(&b, 8, 0x11223344, false); /* byte-order magic */
	run_whole(&r, &b);
	assert_int_equal(r.feed_rc, -EINVAL);
	assert_string_equal(r.eb.msg,
			    "offset 8: section header has a bad byte-order magic 0x11223344");
	cwbuf_release(&b);
}

static void test_pcapng_truncated(void **state)
{
	struct cwbuf b;
	struct run r;

	(void)state;
	build_pcapng(&b);
	cw_truncate(&b, 456 + 20);
	run_whole(&r, &b);
	assert_int_equal(r.finish_rc, CAPFILE_TRUNCATED);
	assert_string_equal(r.eb.msg, "offset 456: truncated record (20 of 48 bytes present)");
	assert_int_equal(r.npkts, 4);
	assert_int_equal(r.sum.valid_bytes, 456);
	assert_split_invariant(&b);
	cw_truncate(&b, 20); /* inside the first SHB */
	run_whole(&r, &b);
	assert_int_equal(r.finish_rc, -EINVAL);
	assert_string_equal(r.eb.msg, "offset 20: file ends inside the pcapng file header");
	cwbuf_release(&b);
}

static void test_big_record_straddles(void **state)
{
	struct cwbuf b;
	struct run *r = calloc(1, sizeof(*r));
	static uint8_t big[200000];

	(void)state;
	cwbuf_init_mem(&b);
	cw_pcap_header(&b, false, false, 262144, 1);
	cw_pcap_record(&b, false, 1, 0, big, sizeof(big), sizeof(big));
	cw_pcap_record(&b, false, 2, 0, NULL, 10, 10);
	/* the callback only keeps 2048 bytes: check through the summary */
	size_t cuts[] = { 30, 1000, 150000 };
	struct capfile *cf;
	assert_int_equal(capfile_new(&cf, NULL, NULL, NULL), 0);
	for (size_t i = 0, pos = 0; i <= 3; i++) {
		size_t end = i < 3 ? cuts[i] : b.len;
		assert_int_equal(capfile_feed(cf, b.data + pos, end - pos, &r->eb), 0);
		pos = end;
	}
	assert_int_equal(capfile_finish(cf, &r->eb), 0);
	assert_int_equal(capfile_summary(cf)->packets, 2);
	assert_int_equal(capfile_summary(cf)->data_bytes, sizeof(big) + 10);
	capfile_free(cf);
	cwbuf_release(&b);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pcap_le_usec),
		cmocka_unit_test(test_pcap_be_usec),
		cmocka_unit_test(test_pcap_le_nsec),
		cmocka_unit_test(test_pcap_be_nsec),
		cmocka_unit_test(test_pcap_header_only),
		cmocka_unit_test(test_pcap_linktype_fcs_bits_masked),
		cmocka_unit_test(test_pcap_usec_not_normalized),
		cmocka_unit_test(test_pcap_truncated_record),
		cmocka_unit_test(test_pcap_truncated_header),
		cmocka_unit_test(test_not_a_capture),
		cmocka_unit_test(test_pcap_bad_version),
		cmocka_unit_test(test_pcap_caplen_limits),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_refuses_after_error),
		cmocka_unit_test(test_sniff),
		cmocka_unit_test(test_pcapng_sections_and_blocks),
		cmocka_unit_test(test_pcapng_tsresol),
		cmocka_unit_test(test_pcapng_before_1970),
		cmocka_unit_test(test_pcapng_saturated),
		cmocka_unit_test(test_pcapng_undefined_interface),
		cmocka_unit_test(test_pcapng_many_interfaces),
		cmocka_unit_test(test_pcapng_bad_lengths),
		cmocka_unit_test(test_pcapng_truncated),
		cmocka_unit_test(test_big_record_straddles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
