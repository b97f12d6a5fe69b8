/*
 * capwriter.c - capture and frame builders for tests (see capwriter.h).
 *
 * Speed matters because mkcap writes multi-GiB captures with it: appends
 * are memcpy into one staging buffer, flushed with large fwrite calls.
 */
#include "capwriter.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FLUSH_AT (4u * 1024 * 1024)

void cwbuf_init_mem(struct cwbuf *b)
{
	memset(b, 0, sizeof(*b));
}

void cwbuf_init_file(struct cwbuf *b, FILE *fp)
{
	memset(b, 0, sizeof(*b));
	b->fp = fp;
}

int cwbuf_flush(struct cwbuf *b)
{
	if (!b->fp || b->len == 0 || b->err)
		return b->err;
	if (fwrite(b->data, 1, b->len, b->fp) != b->len)
		b->err = -EIO;
	b->len = 0;
	return b->err;
}

void cwbuf_release(struct cwbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static bool reserve(struct cwbuf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 65536;
	while (cap < b->len + more)
		cap *= 2;
	uint8_t *d = realloc(b->data, cap);
	if (!d) {
		b->err = -ENOMEM;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

/* Returns where len new bytes go (NULL after an error). */
static uint8_t *grab(struct cwbuf *b, size_t len)
{
	if (b->fp && b->len + len > FLUSH_AT && b->len)
		cwbuf_flush(b);
	if (b->err || !reserve(b, len))
		return NULL;
	uint8_t *p = b->data + b->len;
	b->len += len;
	b->offset += len;
	return p;
}

void cwbuf_put(struct cwbuf *b, const void *p, size_t len)
{
	uint8_t *d = grab(b, len);
	if (d && len)
		memcpy(d, p, len);
}

static void put16(uint8_t *p, uint16_t v, bool be)
{
	p[be ? 0 : 1] = (uint8_t)(v >> 8);
	p[be ? 1 : 0] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v, bool be)
{
	for (int i = 0; i < 4; i++)
		p[be ? 3 - i : i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v, bool be)
{
	for (int i = 0; i < 8; i++)
		p[be ? 7 - i : i] = (uint8_t)(v >> (8 * i));
}

/* Data bytes, or a recognisable pattern when data is NULL. */
static void fill(uint8_t *d, const void *data, uint32_t len)
{
	if (data) {
		memcpy(d, data, len);
		return;
	}
	for (uint32_t i = 0; i < len; i++)
		d[i] = (uint8_t)(i * 7 + 1);
}

void cw_truncate(struct cwbuf *b, size_t len)
{
	if (!b->fp && len < b->len) {
		b->len = len;
		b->offset = len;
	}
}

void cw_poke8(struct cwbuf *b, size_t off, uint8_t v)
{
	if (!b->fp && off < b->len)
		b->data[off] = v;
}

void cw_poke32(struct cwbuf *b, size_t off, uint32_t v, bool big_endian)
{
	if (!b->fp && off + 4 <= b->len)
		put32(b->data + off, v, big_endian);
}

void cw_pcap_header(struct cwbuf *b, bool big_endian, bool nsec, uint32_t snaplen,
		    uint32_t linktype)
{
	uint8_t *p = grab(b, 24);

	if (!p)
		return;
	put32(p, nsec ? CW_MAGIC_NSEC : CW_MAGIC_USEC, big_endian);
	put16(p + 4, 2, big_endian);
	put16(p + 6, 4, big_endian);
	put32(p + 8, 0, big_endian);
	put32(p + 12, 0, big_endian);
	put32(p + 16, snaplen, big_endian);
	put32(p + 20, linktype, big_endian);
}

void cw_pcap_record(struct cwbuf *b, bool big_endian, uint32_t sec, uint32_t frac,
		    const void *data, uint32_t caplen, uint32_t origlen)
{
	uint8_t *p = grab(b, 16 + (size_t)caplen);

	if (!p)
		return;
	put32(p, sec, big_endian);
	put32(p + 4, frac, big_endian);
	put32(p + 8, caplen, big_endian);
	put32(p + 12, origlen, big_endian);
	fill(p + 16, data, caplen);
}

static uint32_t pad4(uint32_t n)
{
	return (n + 3) & ~3u;
}

/* Reserves a whole block of total bytes and writes type, both lengths
 * and zeroes the body; returns the block start. */
static uint8_t *block(struct cwbuf *b, bool be, uint32_t type, uint32_t total)
{
	uint8_t *p = grab(b, total);

	if (!p)
		return NULL;
	memset(p + 8, 0, total - 12);
	put32(p, type, be);
	put32(p + 4, total, be);
	put32(p + total - 4, total, be);
	return p;
}

void cw_shb(struct cwbuf *b, bool big_endian)
{
	uint8_t *p = block(b, big_endian, 0x0A0D0D0Au, 28);

	if (!p)
		return;
	put32(p + 8, 0x1A2B3C4Du, big_endian);
	put16(p + 12, 1, big_endian);
	put16(p + 14, 0, big_endian);
	put64(p + 16, UINT64_MAX, big_endian); /* section length unknown */
}

void cw_idb(struct cwbuf *b, bool big_endian, uint16_t linktype, uint32_t snaplen, int tsresol,
	    bool has_tsoffset, int64_t tsoffset)
{
	uint32_t opts = (tsresol >= 0 ? 8 : 0) + (has_tsoffset ? 12 : 0);
	uint32_t total = 20 + opts + (opts ? 4 : 0);
	uint8_t *p = block(b, big_endian, 1, total), *o;

	if (!p)
		return;
	put16(p + 8, linktype, big_endian);
	put32(p + 12, snaplen, big_endian);
	o = p + 16;
	if (tsresol >= 0) {
		put16(o, 9, big_endian);
		put16(o + 2, 1, big_endian);
		o[4] = (uint8_t)tsresol;
		o += 8;
	}
	if (has_tsoffset) {
		put16(o, 14, big_endian);
		put16(o + 2, 8, big_endian);
		put64(o + 4, (uint64_t)tsoffset, big_endian);
		o += 12;
	}
	/* opt_endofopt is the zeroed word left at o when options exist. */
}

static void packet_block(struct cwbuf *b, bool be, uint32_t type, uint32_t ifid,
			 uint64_t ts_units, const void *data, uint32_t caplen, uint32_t origlen)
{
	uint8_t *p = block(b, be, type, 32 + pad4(caplen));

	if (!p)
		return;
	if (type == 2) {
		put16(p + 8, (uint16_t)ifid, be);
		put16(p + 10, 0, be); /* drops count */
	} else {
		put32(p + 8, ifid, be);
	}
	put32(p + 12, (uint32_t)(ts_units >> 32), be);
	put32(p + 16, (uint32_t)ts_units, be);
	put32(p + 20, caplen, be);
	put32(p + 24, origlen, be);
	fill(p + 28, data, caplen);
}

void cw_epb(struct cwbuf *b, bool big_endian, uint32_t ifid, uint64_t ts_units, const void *data,
	    uint32_t caplen, uint32_t origlen)
{
	packet_block(b, big_endian, 6, ifid, ts_units, data, caplen, origlen);
}

void cw_pb(struct cwbuf *b, bool big_endian, uint16_t ifid, uint64_t ts_units, const void *data,
	   uint32_t caplen, uint32_t origlen)
{
	packet_block(b, big_endian, 2, ifid, ts_units, data, caplen, origlen);
}

void cw_spb(struct cwbuf *b, bool big_endian, const void *data, uint32_t stored,
	    uint32_t origlen)
{
	uint8_t *p = block(b, big_endian, 3, 16 + pad4(stored));

	if (!p)
		return;
	put32(p + 8, origlen, big_endian);
	fill(p + 12, data, stored);
}

void cw_block(struct cwbuf *b, bool big_endian, uint32_t type, const void *body,
	      uint32_t bodylen)
{
	uint8_t *p = block(b, big_endian, type, 12 + pad4(bodylen));

	if (p)
		fill(p + 8, body, bodylen);
}

/* ---- frames ---- */

uint32_t cw_csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *d = p;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)d[i] << 8 | d[i + 1];
	if (i < len)
		sum += (uint32_t)d[i] << 8;
	return sum;
}

uint16_t cw_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static void be16(uint8_t *p, uint16_t v)
{
	put16(p, v, true);
}

static void be32(uint8_t *p, uint32_t v)
{
	put32(p, v, true);
}

/* Ethernet (+802.1Q) header; returns its length. */
static size_t l2_header(const struct cw_frame *f, uint8_t *out, uint16_t ethertype)
{
	size_t n = 12;

	memcpy(out, f->dst_mac, 6);
	memcpy(out + 6, f->src_mac, 6);
	if (f->vlan) {
		be16(out + 12, 0x8100);
		be16(out + 14, f->vlan & 0x0fff);
		n = 16;
	}
	be16(out + n, ethertype);
	return n + 2;
}

static size_t l4_header_len(uint8_t proto)
{
	switch (proto) {
	case 6:
		return 20;
	case 17:
	case 1:
	case 58:
		return 8;
	default:
		return 0;
	}
}

static void l4_header(const struct cw_frame *f, uint8_t *p, uint32_t l4len)
{
	if (f->proto == 6) {
		be16(p, f->sport);
		be16(p + 2, f->dport);
		be32(p + 4, f->seq);
		be32(p + 8, f->ack);
		p[12] = 5 << 4; /* data offset: 20 bytes, no options */
		p[13] = f->tcp_flags;
		be16(p + 14, 65535);
		memset(p + 16, 0, 4);
	} else if (f->proto == 17) {
		be16(p, f->sport);
		be16(p + 2, f->dport);
		be16(p + 4, (uint16_t)l4len);
		be16(p + 6, 0);
	} else if (f->proto == 1 || f->proto == 58) {
		p[0] = f->proto == 1 ? 8 : 128; /* echo request */
		p[1] = 0;
		be16(p + 2, 0);
		be16(p + 4, f->sport);
		be16(p + 6, f->dport);
	}
}

/* TCP/UDP/ICMPv6 checksums cover a pseudo-header; ICMPv4 does not. */
static void l4_checksum(const struct cw_frame *f, uint8_t *l4, uint32_t l4len, bool v6)
{
	size_t at = f->proto == 6 ? 16 : f->proto == 17 ? 6 : 2;
	uint32_t sum = 0;
	uint8_t w[4];

	if (f->proto != 1) {
		sum = cw_csum_add(sum, f->src_ip, v6 ? 16 : 4);
		sum = cw_csum_add(sum, f->dst_ip, v6 ? 16 : 4);
		be32(w, l4len);
		sum = cw_csum_add(sum, w, 4);
		sum += f->proto;
	}
	sum = cw_csum_add(sum, l4, l4len);
	uint16_t c = (uint16_t)~cw_csum_fold(sum);
	if (f->proto == 17 && c == 0)
		c = 0xffff;
	be16(l4 + at, c);
}

static void ipv4_header(const struct cw_frame *f, uint8_t *ip, uint32_t total)
{
	ip[0] = 0x45;
	ip[1] = 0;
	be16(ip + 2, (uint16_t)total);
	be16(ip + 4, (uint16_t)(f->seq ^ f->sport));
	be16(ip + 6, 0x4000); /* DF */
	ip[8] = f->ttl ? f->ttl : 64;
	ip[9] = f->proto;
	be16(ip + 10, 0);
	memcpy(ip + 12, f->src_ip, 4);
	memcpy(ip + 16, f->dst_ip, 4);
	be16(ip + 10, (uint16_t)~cw_csum_fold(cw_csum_add(0, ip, 20)));
}

static void ipv6_header(const struct cw_frame *f, uint8_t *ip, uint32_t plen)
{
	be32(ip, 0x60000000u);
	be16(ip + 4, (uint16_t)plen);
	ip[6] = f->proto;
	ip[7] = f->ttl ? f->ttl : 64;
	memcpy(ip + 8, f->src_ip, 16);
	memcpy(ip + 24, f->dst_ip, 16);
}

static size_t arp_frame(const struct cw_frame *f, uint8_t *out, size_t cap)
{
	size_t n = (f->vlan ? 18 : 14) + 28;

	if (n > cap)
		return 0;
	uint8_t *a = out + l2_header(f, out, 0x0806);
	be16(a, 1);      /* Ethernet */
	be16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	be16(a + 6, 1);  /* request */
	memcpy(a + 8, f->src_mac, 6);
	memcpy(a + 14, f->src_ip, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, f->dst_ip, 4);
	return n;
}

size_t cw_build_frame(const struct cw_frame *f, uint8_t *out, size_t cap)
{
	if (f->l3 == CW_ARP)
		return arp_frame(f, out, cap);
	bool v6 = f->l3 == CW_IPV6;
	size_t l2 = f->vlan ? 18 : 14, l3 = v6 ? 40 : 20;
	uint32_t l4len = (uint32_t)l4_header_len(f->proto) + f->payload_len;
	if (l4len > 65535 - (v6 ? 0 : 20) || l2 + l3 + l4len > cap)
		return 0;
	l2_header(f, out, v6 ? 0x86dd : 0x0800);
	uint8_t *ip = out + l2, *l4 = ip + l3;
	if (v6)
		ipv6_header(f, ip, l4len);
	else
		ipv4_header(f, ip, (uint32_t)l3 + l4len);
	l4_header(f, l4, l4len);
	uint8_t *pl = l4 + l4_header_len(f->proto);
	for (uint32_t i = 0; i < f->payload_len; i++)
		pl[i] = (uint8_t)(f->payload_fill + i);
	if (f->l4_checksum && l4_header_len(f->proto))
		l4_checksum(f, l4, l4len, v6);
	return l2 + l3 + l4len;
}

size_t cw_gzip(const void *in, size_t len, void *out, size_t cap)
{
	z_stream z = { 0 };
	size_t n = 0;

	if (len > UINT_MAX || cap > UINT_MAX ||
	    deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) == Z_STREAM_END)
		n = z.total_out;
	deflateEnd(&z);
	return n;
}
