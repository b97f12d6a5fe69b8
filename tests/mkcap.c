/*
 * mkcap.c - writes deterministic synthetic captures for integration tests
 * and benchmarks.
 *
 *   mkcap [--format pcap|pcapng] [--nsec] [--big-endian] [--linktype N]
 *         [--packets N] [--size BYTES] [--hosts N] [--seed S] [--start EPOCH]
 *         [--interval-us N] [--payload N] [--flows N] [--truncate] [--corrupt]
 *         [--gzip|--zstd] [--tsresol R --tsoffset S --units U --step N] -o FILE
 *
 * The same arguments always give the same bytes. Traffic is a pseudo-random
 * mix of TCP/UDP/ICMP over IPv4/IPv6 between --hosts hosts, some frames
 * 802.1Q tagged, a few ARP. Link type 1 gets Ethernet frames; 101 (raw IP)
 * gets the IP packet alone; any other link type is written with Ethernet
 * bytes under that number. The capture streams out through capwriter's
 * staging buffer (and through zlib/zstd via a fopencookie FILE), so memory
 * does not depend on --size. --truncate cuts the last record in half;
 * --corrupt breaks the length field of the middle record. For times at the
 * ends of what the formats hold, pcapng output takes the interface's
 * if_tsresol byte (--tsresol, e.g. 0x94 for 2^-20 s), an if_tsoffset in
 * seconds (--tsoffset, may be negative) and raw timestamps: packet i at
 * --units + i * --step (unsigned 64-bit, wrapping).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "capwriter.h"

enum compress { COMP_NONE, COMP_GZIP, COMP_ZSTD };

struct opts {
	bool pcapng, nsec, big_endian, truncate, corrupt;
	uint32_t linktype;
	uint64_t packets, size, hosts, seed, start, interval_us;
	uint64_t flows; /* 0: every packet its own conversation */
	long payload; /* < 0: random */
	bool raw_units;            /* --units given: pcapng timestamps as is */
	int tsresol;               /* < 0: the default */
	bool has_tsoffset;
	int64_t tsoffset;
	uint64_t units, step;
	enum compress comp;
	const char *out;
};

/* ---- compressing FILE (fopencookie) ---- */

struct zcookie {
	FILE *fp;
	enum compress comp;
	z_stream z;
	ZSTD_CStream *zs;
	uint8_t buf[1 << 20];
};

static int z_drain(struct zcookie *c, const void *p, size_t n, bool end)
{
	if (c->comp == COMP_GZIP) {
		c->z.next_in = (Bytef *)p;
		c->z.avail_in = (uInt)n;
		int zr;
		do {
			c->z.next_out = c->buf;
			c->z.avail_out = sizeof(c->buf);
			zr = deflate(&c->z, end ? Z_FINISH : Z_NO_FLUSH);
			size_t got = sizeof(c->buf) - c->z.avail_out;
			if (zr == Z_STREAM_ERROR || fwrite(c->buf, 1, got, c->fp) != got)
				return -1;
		} while (c->z.avail_out == 0 || (end && zr != Z_STREAM_END));
		return 0;
	}
	ZSTD_inBuffer in = { p, n, 0 };
	size_t left;
	do {
		ZSTD_outBuffer out = { c->buf, sizeof(c->buf), 0 };
		left = ZSTD_compressStream2(c->zs, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
		if (ZSTD_isError(left) || fwrite(c->buf, 1, out.pos, c->fp) != out.pos)
			return -1;
	} while (in.pos < in.size || (end && left != 0));
	return 0;
}

static ssize_t z_write(void *cookie, const char *p, size_t n)
{
	return z_drain(cookie, p, n, false) == 0 ? (ssize_t)n : -1;
}

static int z_close(void *cookie)
{
	struct zcookie *c = cookie;
	int r = z_drain(c, NULL, 0, true);

	if (c->comp == COMP_GZIP)
		deflateEnd(&c->z);
	else
		ZSTD_freeCStream(c->zs);
	if (fclose(c->fp) != 0)
		r = -1;
	free(c);
	return r;
}

static FILE *open_output(const struct opts *o)
{
	FILE *fp = fopen(o->out, "wb");

	if (!fp || o->comp == COMP_NONE)
		return fp;
	struct zcookie *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fp = fp;
	c->comp = o->comp;
	if (o->comp == COMP_GZIP) {
		if (deflateInit2(&c->z, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return NULL;
	} else {
		c->zs = ZSTD_createCStream();
		if (!c->zs)
			return NULL;
		ZSTD_CCtx_setParameter(c->zs, ZSTD_c_compressionLevel, 1);
	}
	cookie_io_functions_t io = { .write = z_write, .close = z_close };
	return fopencookie(c, "w", io);
}

/* ---- traffic ---- */

static uint64_t rnd(uint64_t *s)
{
	/* splitmix64: fast, and the same sequence on every platform */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void host_addr(struct cw_frame *f, uint64_t h, bool src)
{
	uint8_t *ip = src ? f->src_ip : f->dst_ip, *mac = src ? f->src_mac : f->dst_mac;

	memset(ip, 0, 16);
	if (f->l3 == CW_IPV6) {
		ip[0] = 0xfd;
		ip[1] = 0x00;
		for (int i = 0; i < 8; i++)
			ip[15 - i] = (uint8_t)(h >> (8 * i));
		ip[8] = 0; /* keep the interface id small and readable */
	} else {
		ip[0] = 10;
		ip[1] = (uint8_t)(h >> 16);
		ip[2] = (uint8_t)(h >> 8);
		ip[3] = (uint8_t)(h + 1);
	}
	static const uint8_t oui[3] = { 0x02, 0x00, 0x5e };
	memcpy(mac, oui, 3);
	mac[3] = (uint8_t)(h >> 16);
	mac[4] = (uint8_t)(h >> 8);
	mac[5] = (uint8_t)h;
}

static void pick_frame(struct cw_frame *f, const struct opts *o, uint64_t *rs, uint64_t i)
{
	static const uint16_t ports[] = { 80, 443, 53, 22, 25, 123, 8080, 3306 };
	/* With --flows, the conversation's addresses, ports and protocol come
	 * from one of N fixed seeds, so packets repeat their 5-tuple. */
	uint64_t conv = o->flows ? (o->seed + 1) * 0x9e3779b97f4a7c15ull + rnd(rs) % o->flows : 0;
	uint64_t *cs = o->flows ? &conv : rs;
	uint64_t r = rnd(cs), a = rnd(cs) % o->hosts, b = rnd(cs) % o->hosts;

	memset(f, 0, sizeof(*f));
	if (b == a)
		b = (a + 1) % o->hosts;
	unsigned kind = r % 100;
	f->l3 = kind < 2 ? CW_ARP : kind < 27 ? CW_IPV6 : CW_IPV4;
	unsigned p = (r >> 8) % 10;
	f->proto = p < 6 ? 6 : p < 9 ? 17 : (f->l3 == CW_IPV6 ? 58 : 1);
	f->vlan = (r >> 16) % 10 == 0 ? (uint16_t)(100 + (r >> 24) % 4) : 0;
	host_addr(f, a, true);
	host_addr(f, b, false);
	f->sport = (uint16_t)(1024 + (r >> 32) % 60000);
	f->dport = ports[(r >> 48) % (sizeof(ports) / sizeof(ports[0]))];
	f->tcp_flags = 0x18;
	f->seq = (uint32_t)i;
	f->ack = (uint32_t)(r >> 20);
	f->payload_len = o->payload >= 0 ? (uint32_t)o->payload : (uint32_t)(rnd(rs) % 1400);
	f->payload_fill = (uint8_t)i;
}

/* Builds packet i's bytes into frame; returns the length. */
static size_t make_packet(const struct opts *o, uint64_t *rs, uint64_t i, uint8_t *frame,
			  size_t cap)
{
	struct cw_frame f;

	pick_frame(&f, o, rs, i);
	if (o->linktype == 101 && f.l3 == CW_ARP)
		f.l3 = CW_IPV4;
	if (o->linktype == 101)
		f.vlan = 0;
	size_t n = cw_build_frame(&f, frame, cap);
	if (o->linktype == 101 && n > 14) {
		memmove(frame, frame + 14, n - 14);
		n -= 14;
	}
	return n;
}

static void write_header(struct cwbuf *b, const struct opts *o)
{
	if (!o->pcapng) {
		cw_pcap_header(b, o->big_endian, o->nsec, 262144, o->linktype);
		return;
	}
	cw_shb(b, o->big_endian);
	cw_idb(b, o->big_endian, (uint16_t)o->linktype, 262144,
	       o->tsresol >= 0 ? o->tsresol : o->nsec ? 9 : -1, o->has_tsoffset, o->tsoffset);
}

static void write_packet(struct cwbuf *b, const struct opts *o, uint64_t i, const uint8_t *d,
			 uint32_t len)
{
	uint64_t us = o->start * 1000000 + i * o->interval_us;

	if (o->pcapng && o->raw_units) {
		cw_epb(b, o->big_endian, 0, o->units + i * o->step, d, len, len);
		return;
	}
	if (o->pcapng) {
		cw_epb(b, o->big_endian, 0, o->nsec ? us * 1000 + i % 1000 : us, d, len, len);
		return;
	}
	uint32_t frac = o->nsec ? (uint32_t)(us % 1000000) * 1000 + (uint32_t)(i % 1000)
				: (uint32_t)(us % 1000000);
	cw_pcap_record(b, o->big_endian, (uint32_t)(us / 1000000), frac, d, len, len);
}

/* The last record was just staged: drop the second half of it. */
static void cut_last(struct cwbuf *b, size_t reclen)
{
	size_t cut = reclen / 2;

	if (cut > b->len)
		cut = b->len;
	b->len -= cut;
	b->offset -= cut;
}

/* The record just staged gets an impossible length field. */
static void corrupt_last(struct cwbuf *b, const struct opts *o, size_t reclen)
{
	uint8_t *rec = b->data + b->len - reclen;

	if (o->pcapng)
		rec[o->big_endian ? 7 : 4] ^= 0x03; /* total length no longer a multiple of 4 */
	else
		rec[o->big_endian ? 8 : 11] = 0xff; /* caplen > 16 MiB */
}

static int generate(struct cwbuf *b, const struct opts *o)
{
	static uint8_t frame[65536 + 64];
	uint64_t rs = o->seed, limit = o->packets;

	write_header(b, o);
	if (!limit && !o->size)
		limit = 1000;
	for (uint64_t i = 0; (!limit || i < limit) && (!o->size || b->offset < o->size); i++) {
		size_t n = make_packet(o, &rs, i, frame, sizeof(frame));
		uint64_t before = b->offset;
		write_packet(b, o, i, frame, (uint32_t)n);
		bool last = (limit && i + 1 == limit) || (o->size && b->offset >= o->size);
		if (o->corrupt && i == (limit ? limit / 2 : 10))
			corrupt_last(b, o, b->offset - before);
		if (o->truncate && last)
			cut_last(b, b->offset - before);
		if (b->err)
			return b->err;
	}
	return cwbuf_flush(b);
}

/* ---- command line ---- */

static uint64_t parse_size(const char *s)
{
	char *end;
	uint64_t v = strtoull(s, &end, 10);

	switch (*end) {
	case 'k': case 'K':
		return v << 10;
	case 'm': case 'M':
		return v << 20;
	case 'g': case 'G':
		return v << 30;
	default:
		return v;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: mkcap [--format pcap|pcapng] [--nsec] [--big-endian] [--linktype N]\n"
			"             [--packets N] [--size BYTES] [--hosts N] [--seed S] [--start EPOCH]\n"
			"             [--interval-us N] [--payload N] [--flows N] [--truncate] [--corrupt]\n"
			"             [--gzip|--zstd] [--tsresol R --tsoffset S --units U --step N]\n"
			"             -o FILE\n");
	exit(2);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "format", 1, 0, 'f' },   { "nsec", 0, 0, 'n' },        { "big-endian", 0, 0, 'b' },
		{ "linktype", 1, 0, 'l' }, { "packets", 1, 0, 'p' },     { "size", 1, 0, 's' },
		{ "hosts", 1, 0, 'H' },    { "seed", 1, 0, 'S' },        { "start", 1, 0, 't' },
		{ "interval-us", 1, 0, 'i' }, { "payload", 1, 0, 'P' },  { "truncate", 0, 0, 'T' },
		{ "corrupt", 0, 0, 'C' },  { "gzip", 0, 0, 'g' },        { "zstd", 0, 0, 'z' },
		{ "output", 1, 0, 'o' },   { "flows", 1, 0, 'F' },       { "tsresol", 1, 0, 'R' },
		{ "tsoffset", 1, 0, 'O' }, { "units", 1, 0, 'U' },       { "step", 1, 0, 'D' },
		{ 0, 0, 0, 0 },
	};
	int c;

	*o = (struct opts){ .linktype = 1, .hosts = 16, .seed = 1, .start = 1700000000,
			    .interval_us = 1000, .payload = -1, .tsresol = -1, .step = 1 };
	while ((c = getopt_long(argc, argv, "o:", lo, NULL)) != -1) {
		switch (c) {
		case 'f': o->pcapng = strcmp(optarg, "pcapng") == 0;
			  if (!o->pcapng && strcmp(optarg, "pcap") != 0) usage();
			  break;
		case 'n': o->nsec = true; break;
		case 'b': o->big_endian = true; break;
		case 'l': o->linktype = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'p': o->packets = strtoull(optarg, NULL, 0); break;
		case 's': o->size = parse_size(optarg); break;
		case 'H': o->hosts = strtoull(optarg, NULL, 0); break;
		case 'S': o->seed = strtoull(optarg, NULL, 0); break;
		case 't': o->start = strtoull(optarg, NULL, 0); break;
		case 'i': o->interval_us = strtoull(optarg, NULL, 0); break;
		case 'P': o->payload = strtol(optarg, NULL, 0); break;
		case 'T': o->truncate = true; break;
		case 'C': o->corrupt = true; break;
		case 'g': o->comp = COMP_GZIP; break;
		case 'z': o->comp = COMP_ZSTD; break;
		case 'o': o->out = optarg; break;
		case 'F': o->flows = strtoull(optarg, NULL, 0); break;
		case 'R': o->tsresol = (int)strtol(optarg, NULL, 0); break;
		case 'O': o->has_tsoffset = true; o->tsoffset = strtoll(optarg, NULL, 0); break;
		case 'U': o->raw_units = true; o->units = strtoull(optarg, NULL, 0); break;
		case 'D': o->step = strtoull(optarg, NULL, 0); break;
		default: usage();
		}
	}
	if (!o->out || optind != argc || o->hosts < 2 || o->payload > 65000)
		usage();
}

int main(int argc, char **argv)
{
	struct opts o;
	struct cwbuf b;

	parse_args(argc, argv, &o);
	FILE *fp = open_output(&o);
	if (!fp) {
		fprintf(stderr, "mkcap: %s: %s\n", o.out, strerror(errno));
		return 1;
	}
	cwbuf_init_file(&b, fp);
	int r = generate(&b, &o);
	cwbuf_release(&b);
	if (fclose(fp) != 0 || r != 0) {
		fprintf(stderr, "mkcap: %s: write failed\n", o.out);
		return 1;
	}
	return 0;
}
