/*
 * capfile.c - incremental pcap/pcapng reader (see capfile.h).
 *
 * The input is cut into "units": the pcap file header, pcap records and
 * pcapng blocks. A unit that lies wholly inside the caller's buffer is
 * decoded in place (zero copy); only a unit straddling two buffers is
 * gathered in an internal buffer, which never grows past
 * CAPFILE_MAX_RECORD because every length is validated before it is used.
 *
 * Behaviour follows libpcap 1.10 where the formats leave room:
 *  - pcap link type: the low 16 bits of the header field (the upper bits
 *    carry FCS-length flags, LT_LINKTYPE_EXT).
 *  - pcap snapshot: header snaplen, or the link type's maximum when it is
 *    0 or > INT_MAX. A record whose caplen exceeds the link type's maximum
 *    ("max_snaplen_for_dlt") is an error; one that only exceeds the
 *    snapshot is counted in summary.oversized and delivered cut to the
 *    snapshot, as pcap_next_ex does. The same cut applies to pcapng EPB/PB.
 *  - pcap 2.0-2.2 files have caplen and len swapped; 2.3 maybe (swap when
 *    caplen > len), as libpcap does.
 *  - pcap microseconds are multiplied by 1000 and added without
 *    normalisation (a usec field > 999999 just carries into seconds).
 *  - pcap seconds are unsigned (1970..2106), as the file format's
 *    specification and libpcap's development branch read them; 1.10 read
 *    them signed, so it dates seconds >= 2^31 before 1970.
 *  - pcapng times are floor(units / if_tsresol) + if_tsoffset, exact (no
 *    intermediate overflow) before being saturated (capfile.h).
 * Deliberately more lenient than libpcap: pcapng sections of different byte
 * orders and interfaces with different link types/snaplens are accepted.
 *
 * Context blobs (little-endian, versioned):
 *   0  "CVCX"  4  version(1)  5 format  6 flags(1=big-endian,2=nsec)
 *   7  pcap length-swap mode  8 u32 section  12 u32 interface count
 *   16 per interface, 24 bytes: u32 linktype, u32 snaplen, u32 snapshot,
 *      u8 tsresol, 3 pad, i64 tsoffset
 */
#include "capfile.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define PCAP_HDR_LEN 24
#define PCAP_REC_HDR 16
#define PCAPNG_SHB 0x0A0D0D0Au
#define PCAPNG_IDB 1u
#define PCAPNG_PB 2u
#define PCAPNG_SPB 3u
#define PCAPNG_EPB 6u
#define PCAPNG_BOM 0x1A2B3C4Du
#define SHB_MIN_LEN 28
/* Interfaces per section; bounds the context blob (re-sent after each run
 * of IDBs). */
#define MAX_IFACES 4096
/* Context blob bytes per file: each blob holds every interface of its
 * section, so a file that interleaves IDBs and packets would otherwise
 * make the index (and a query's memory) grow with the square of its
 * interfaces, and with its sections. */
#define MAX_CONTEXT_BYTES (16u * 1024 * 1024)
#define BLOB_HDR 16
#define BLOB_IFACE 24
#define BLOB_VERSION 1
#define NS_PER_SEC 1000000000ull
#define TSRESOL_DEFAULT 6

enum lenswap { LENSWAP_NO = 0, LENSWAP_YES, LENSWAP_MAYBE };

struct iface {
	uint32_t linktype;
	uint32_t snaplen;  /* as written */
	uint32_t snapshot; /* effective cut, libpcap's pcap_adjust_snapshot */
	uint8_t tsresol;
	int64_t tsoffset;
};

/* Everything needed to decode one record: the live reader's state, or a
 * context blob (then ifaces is NULL and blob_if points at the entries). */
struct view {
	enum capfile_format format;
	bool swap; /* file byte order differs from the host's */
	bool big_endian;
	bool nsec;
	uint8_t lenswap;
	uint32_t section;
	uint32_t nifaces;
	const struct iface *ifaces;
	const uint8_t *blob_if;
};

struct capfile {
	capfile_packet_fn on_packet;
	capfile_context_fn on_context;
	void *opaque;
	struct capfile_summary sum;
	struct view v;
	struct iface *ifaces;
	uint32_t ifcap;
	bool header_done;
	bool last_saturated;  /* the last packet's time was saturated */
	int failed;           /* sticky error or callback value */
	struct errbuf err;    /* message for a sticky error */
	uint64_t offset;      /* file offset of the next unit */
	uint64_t total_in;
	uint8_t *pend;        /* a unit straddling buffers */
	size_t pend_len, pend_cap;
	uint8_t *blob;
	size_t blob_cap;
	uint64_t ctx_bytes;   /* context blob bytes emitted so far */
	bool ctx_pending;     /* IDBs read since the last context was emitted */
	uint64_t ctx_at;      /* ... and the offset where their context starts */
};

static inline uint32_t rd32(const uint8_t *p, bool swap)
{
	uint32_t x;
	memcpy(&x, p, 4);
	return swap ? __builtin_bswap32(x) : x;
}

static inline uint16_t rd16(const uint8_t *p, bool swap)
{
	uint16_t x;
	memcpy(&x, p, 2);
	return swap ? __builtin_bswap16(x) : x;
}

static inline uint64_t rd64(const uint8_t *p, bool swap)
{
	uint64_t x;
	memcpy(&x, p, 8);
	return swap ? __builtin_bswap64(x) : x;
}

/* Little-endian helpers for the context blob. */
static uint32_t le32(const uint8_t *p)
{
	return rd32(p, __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
}

static void put_le32(uint8_t *p, uint32_t x)
{
	if (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
		x = __builtin_bswap32(x);
	memcpy(p, &x, 4);
}

static void put_le64(uint8_t *p, uint64_t x)
{
	if (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
		x = __builtin_bswap64(x);
	memcpy(p, &x, 8);
}

static bool host_big_endian(void)
{
	return __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__;
}

/* libpcap's max_snaplen_for_dlt(): a few link types carry huge frames. */
static uint32_t max_snaplen(uint32_t linktype)
{
	switch (linktype) {
	case 231: /* DBUS */
		return 128u * 1024 * 1024;
	case 279: /* EBHSCR */
		return 8u * 1024 * 1024;
	case 249: /* USBPCAP */
		return 1024u * 1024;
	default:
		return 262144;
	}
}

static uint32_t adjust_snapshot(uint32_t linktype, uint32_t snaplen)
{
	if (snaplen == 0 || snaplen > INT_MAX)
		return max_snaplen(linktype);
	return snaplen;
}

/* Saturates an exact ns count to the int64 range; sets *sat when it had to. */
static int64_t saturate_ns(__int128 ns, bool *sat)
{
	*sat = ns < (__int128)INT64_MIN || ns > (__int128)INT64_MAX;
	if (ns < (__int128)INT64_MIN)
		return INT64_MIN;
	if (ns > (__int128)INT64_MAX)
		return INT64_MAX;
	return (int64_t)ns;
}

/* Converts pcapng timestamp units to ns. tsresol: bit 7 clear = 10^-n s,
 * set = 2^-n s. 128-bit math, so no resolution or offset can overflow
 * before the result is saturated. Fractions round down, as libpcap's
 * "t % tsresol" does: the time is floor(units / resolution) + offset. */
static int64_t units_to_ns(uint64_t units, uint8_t tsresol, int64_t tsoffset, bool *sat)
{
	unsigned n = tsresol & 0x7f;
	__int128 ns;

	if (tsresol & 0x80) {
		ns = (__int128)(((unsigned __int128)units * NS_PER_SEC) >> n);
	} else if (n <= 9) {
		ns = (__int128)units;
		for (unsigned i = n; i < 9; i++)
			ns *= 10;
	} else {
		unsigned __int128 q = units;
		for (unsigned i = 9; i < n && q; i++)
			q /= 10;
		ns = (__int128)q;
	}
	ns += (__int128)tsoffset * (__int128)NS_PER_SEC;
	return saturate_ns(ns, sat);
}

static bool view_iface(const struct view *v, uint32_t i, struct iface *out)
{
	if (i >= v->nifaces)
		return false;
	if (v->ifaces) {
		*out = v->ifaces[i];
		return true;
	}
	const uint8_t *e = v->blob_if + (size_t)i * BLOB_IFACE;
	out->linktype = le32(e);
	out->snaplen = le32(e + 4);
	out->snapshot = le32(e + 8);
	out->tsresol = e[12];
	out->tsoffset = (int64_t)((uint64_t)le32(e + 16) | (uint64_t)le32(e + 20) << 32);
	return true;
}

/* ---- single-record decoding, shared by the stream and decode_record ---- */

static int decode_pcap(const struct view *v, const uint8_t *rec, size_t len, uint64_t offset,
		       struct capfile_packet *out, struct errbuf *eb)
{
	struct iface ifc;
	uint32_t caplen = rd32(rec + 8, v->swap), origlen = rd32(rec + 12, v->swap);

	if (!view_iface(v, 0, &ifc))
		return errbuf_set(eb, -EINVAL, "offset %llu: no link type", (unsigned long long)offset);
	if (v->lenswap == LENSWAP_YES || (v->lenswap == LENSWAP_MAYBE && caplen > origlen)) {
		uint32_t t = caplen;
		caplen = origlen;
		origlen = t;
	}
	if ((size_t)caplen + PCAP_REC_HDR != len)
		return errbuf_set(eb, -EINVAL, "offset %llu: record length %zu does not match caplen %u",
				  (unsigned long long)offset, len, caplen);
	uint64_t sec = rd32(rec, v->swap), frac = rd32(rec + 4, v->swap);
	out->offset = offset;
	out->record_len = (uint32_t)len;
	/* At most (2^32 - 1) * (10^9 + 1000) ns: never beyond int64. */
	out->ts_ns = (int64_t)(sec * NS_PER_SEC + (v->nsec ? frac : frac * 1000));
	out->ts_saturated = false;
	out->ts_units = (uint64_t)out->ts_ns;
	out->ts_offset = 0;
	out->ts_resol = 9;
	out->caplen = caplen < ifc.snapshot ? caplen : ifc.snapshot;
	out->origlen = origlen;
	out->section = 0;
	out->ifindex = 0;
	out->linktype = ifc.linktype;
	out->data = rec + PCAP_REC_HDR;
	return 0;
}

/* EPB (type 6) and obsolete PB (type 2) share a layout after the id. */
static int decode_epb(const struct view *v, const uint8_t *rec, size_t len, uint64_t offset,
		      struct capfile_packet *out, struct errbuf *eb)
{
	struct iface ifc;
	bool pb = rd32(rec, v->swap) == PCAPNG_PB;
	uint32_t id = pb ? rd16(rec + 8, v->swap) : rd32(rec + 8, v->swap);

	if (len < 32)
		return errbuf_set(eb, -EINVAL, "offset %llu: packet block of %zu bytes is too short",
				  (unsigned long long)offset, len);
	if (!view_iface(v, id, &ifc))
		return errbuf_set(eb, -EINVAL, "offset %llu: packet refers to undefined interface %u",
				  (unsigned long long)offset, id);
	uint32_t caplen = rd32(rec + 20, v->swap);
	if (caplen > len - 32)
		return errbuf_set(eb, -EINVAL,
				  "offset %llu: captured length %u exceeds the block body (%zu bytes)",
				  (unsigned long long)offset, caplen, len - 32);
	uint64_t units = (uint64_t)rd32(rec + 12, v->swap) << 32 | rd32(rec + 16, v->swap);
	out->offset = offset;
	out->record_len = (uint32_t)len;
	out->ts_ns = units_to_ns(units, ifc.tsresol, ifc.tsoffset, &out->ts_saturated);
	out->ts_units = units;
	out->ts_offset = ifc.tsoffset;
	out->ts_resol = ifc.tsresol;
	out->caplen = caplen < ifc.snapshot ? caplen : ifc.snapshot;
	out->origlen = rd32(rec + 24, v->swap);
	out->section = v->section;
	out->ifindex = id;
	out->linktype = ifc.linktype;
	out->data = rec + 28;
	return 0;
}

static int decode_spb(const struct view *v, const uint8_t *rec, size_t len, uint64_t offset,
		      struct capfile_packet *out, struct errbuf *eb)
{
	struct iface ifc;

	if (len < 16)
		return errbuf_set(eb, -EINVAL, "offset %llu: simple packet block of %zu bytes is too short",
				  (unsigned long long)offset, len);
	if (!view_iface(v, 0, &ifc))
		return errbuf_set(eb, -EINVAL, "offset %llu: simple packet block without interface 0",
				  (unsigned long long)offset);
	uint32_t origlen = rd32(rec + 8, v->swap);
	uint32_t caplen = origlen;
	if (ifc.snaplen && caplen > ifc.snaplen)
		caplen = ifc.snaplen;
	if (caplen > len - 16)
		caplen = (uint32_t)(len - 16);
	out->offset = offset;
	out->record_len = (uint32_t)len;
	out->ts_ns = 0; /* SPBs carry no timestamp */
	out->ts_saturated = false;
	out->ts_units = 0;
	out->ts_offset = 0;
	out->ts_resol = 9;
	out->caplen = caplen;
	out->origlen = origlen;
	out->section = v->section;
	out->ifindex = 0;
	out->linktype = ifc.linktype;
	out->data = rec + 12;
	return 0;
}

/* Decodes one complete unit after the file header. Returns 0 for a packet,
 * 1 for a block without one, or -EINVAL. */
static int decode_unit(const struct view *v, const uint8_t *rec, size_t len, uint64_t offset,
		       struct capfile_packet *out, struct errbuf *eb)
{
	if (v->format == CAPFILE_FORMAT_PCAP) {
		if (len < PCAP_REC_HDR)
			return errbuf_set(eb, -EINVAL, "offset %llu: short pcap record",
					  (unsigned long long)offset);
		return decode_pcap(v, rec, len, offset, out, eb);
	}
	if (len < 12)
		return errbuf_set(eb, -EINVAL, "offset %llu: short pcapng block",
				  (unsigned long long)offset);
	switch (rd32(rec, v->swap)) {
	case PCAPNG_EPB:
	case PCAPNG_PB:
		return decode_epb(v, rec, len, offset, out, eb);
	case PCAPNG_SPB:
		return decode_spb(v, rec, len, offset, out, eb);
	default:
		return 1;
	}
}

/* ---- unit boundaries ---- */

static int pcapng_block_len(const uint8_t *p, bool swap, uint64_t offset, uint32_t *need,
			    struct errbuf *eb)
{
	uint32_t blen = rd32(p + 4, swap);

	if (blen < 12 || blen % 4 != 0 || blen > CAPFILE_MAX_RECORD)
		return errbuf_set(eb, -EINVAL,
				  "offset %llu: bad pcapng block length %u (must be a multiple of 4, "
				  "at least 12, at most %u)",
				  (unsigned long long)offset, blen, CAPFILE_MAX_RECORD);
	*need = blen;
	return 0;
}

/* Reads the byte-order magic of an SHB (at least 12 bytes present). */
static int shb_order(const uint8_t *p, uint64_t offset, bool *swap, struct errbuf *eb)
{
	uint32_t bom = rd32(p + 8, false);

	if (bom == PCAPNG_BOM)
		*swap = false;
	else if (bom == __builtin_bswap32(PCAPNG_BOM))
		*swap = true;
	else
		return errbuf_set(eb, -EINVAL,
				  "offset %llu: section header has a bad byte-order magic 0x%08x",
				  (unsigned long long)offset + 8, bom);
	return 0;
}

static int pcapng_unit_len(const struct capfile *cf, const uint8_t *p, size_t avail,
			   uint32_t *need, struct errbuf *eb)
{
	bool swap = cf->v.swap;

	if (avail < 8) {
		*need = 8;
		return 0;
	}
	if (!cf->header_done || rd32(p, false) == PCAPNG_SHB) {
		if (avail < 12) {
			*need = 12;
			return 0;
		}
		int r = shb_order(p, cf->offset, &swap, eb);
		if (r < 0)
			return r;
	}
	return pcapng_block_len(p, swap, cf->offset, need, eb);
}

static int pcap_unit_len(const struct capfile *cf, const uint8_t *p, size_t avail,
			 uint32_t *need, struct errbuf *eb)
{
	if (!cf->header_done) {
		*need = PCAP_HDR_LEN;
		return 0;
	}
	if (avail < PCAP_REC_HDR) {
		*need = PCAP_REC_HDR;
		return 0;
	}
	uint32_t caplen = rd32(p + 8, cf->v.swap), origlen = rd32(p + 12, cf->v.swap);
	if (cf->v.lenswap == LENSWAP_YES || (cf->v.lenswap == LENSWAP_MAYBE && caplen > origlen))
		caplen = origlen;
	uint32_t max = max_snaplen(cf->ifaces[0].linktype);
	if (caplen > max || caplen > CAPFILE_MAX_RECORD - PCAP_REC_HDR)
		return errbuf_set(eb, -EINVAL,
				  "offset %llu: invalid packet capture length %u, bigger than maximum of %u",
				  (unsigned long long)cf->offset, caplen, max);
	*need = PCAP_REC_HDR + caplen;
	return 0;
}

static int sniff_or_fail(struct capfile *cf, const uint8_t *p, struct errbuf *eb)
{
	cf->v.format = capfile_sniff(p, 4);
	if (cf->v.format == CAPFILE_FORMAT_UNKNOWN)
		return errbuf_set(eb, -EINVAL, "offset 0: not a pcap or pcapng file (magic 0x%08x)",
				  rd32(p, host_big_endian() ? false : true));
	cf->sum.format = cf->v.format;
	return 0;
}

/* Total length of the unit starting at p, or (when avail is too short to
 * tell) the number of bytes needed to find out; either way > avail means
 * "wait for more". */
static int unit_len(struct capfile *cf, const uint8_t *p, size_t avail, uint32_t *need,
		    struct errbuf *eb)
{
	if (cf->v.format == CAPFILE_FORMAT_UNKNOWN) {
		if (avail < 4) {
			*need = 4;
			return 0;
		}
		int r = sniff_or_fail(cf, p, eb);
		if (r < 0)
			return r;
	}
	if (cf->v.format == CAPFILE_FORMAT_PCAP)
		return pcap_unit_len(cf, p, avail, need, eb);
	return pcapng_unit_len(cf, p, avail, need, eb);
}

/* ---- state changes ---- */

static int ensure_ifaces(struct capfile *cf, uint32_t n)
{
	if (n <= cf->ifcap)
		return 0;
	uint32_t cap = cf->ifcap ? cf->ifcap * 2 : 8;
	while (cap < n)
		cap *= 2;
	struct iface *t = reallocarray(cf->ifaces, cap, sizeof(*t));
	if (!t)
		return -ENOMEM;
	cf->ifaces = t;
	cf->ifcap = cap;
	cf->v.ifaces = t;
	return 0;
}

static void note_linktype(struct capfile *cf, uint32_t linktype)
{
	struct capfile_summary *s = &cf->sum;

	for (uint32_t i = 0; i < s->nlinktypes; i++)
		if (s->linktypes[i] == linktype)
			return;
	if (s->nlinktypes < CAPFILE_MAX_LINKTYPES)
		s->linktypes[s->nlinktypes++] = linktype;
}

static int emit_context(struct capfile *cf, uint64_t offset, struct errbuf *eb)
{
	size_t len = BLOB_HDR + (size_t)cf->v.nifaces * BLOB_IFACE;

	cf->ctx_pending = false;
	if (!cf->on_context)
		return 0;
	cf->ctx_bytes += len;
	if (cf->ctx_bytes > MAX_CONTEXT_BYTES)
		return errbuf_set(eb, -EINVAL,
				  "offset %llu: the interface descriptions of this file would take more "
				  "than %u MiB of index (too many interfaces between packets)",
				  (unsigned long long)cf->offset, MAX_CONTEXT_BYTES >> 20);
	if (len > cf->blob_cap) {
		uint8_t *b = realloc(cf->blob, len * 2);
		if (!b)
			return -ENOMEM;
		cf->blob = b;
		cf->blob_cap = len * 2;
	}
	uint8_t *b = cf->blob;
	memset(b, 0, len);
	memcpy(b, "CVCX", 4);
	b[4] = BLOB_VERSION;
	b[5] = (uint8_t)cf->v.format;
	b[6] = (uint8_t)((cf->v.big_endian ? 1 : 0) | (cf->v.nsec ? 2 : 0));
	b[7] = cf->v.lenswap;
	put_le32(b + 8, cf->v.section);
	put_le32(b + 12, cf->v.nifaces);
	for (uint32_t i = 0; i < cf->v.nifaces; i++) {
		uint8_t *e = b + BLOB_HDR + (size_t)i * BLOB_IFACE;
		put_le32(e, cf->ifaces[i].linktype);
		put_le32(e + 4, cf->ifaces[i].snaplen);
		put_le32(e + 8, cf->ifaces[i].snapshot);
		e[12] = cf->ifaces[i].tsresol;
		put_le64(e + 16, (uint64_t)cf->ifaces[i].tsoffset);
	}
	return cf->on_context(cf->opaque, offset, b, len);
}

static int pcap_version_check(uint16_t major, uint16_t minor, struct errbuf *eb)
{
	if ((major == 2 && minor <= 4) || (major == 543 && minor == 0))
		return 0;
	return errbuf_set(eb, -EINVAL, "offset 4: unsupported pcap version %u.%u (expected 2.x)",
			  major, minor);
}

static int pcap_header(struct capfile *cf, const uint8_t *p, struct errbuf *eb)
{
	uint32_t magic = rd32(p, false);
	bool nsec = magic == 0xa1b23c4du || magic == 0x4d3cb2a1u;
	bool swap = magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u;
	uint16_t major = rd16(p + 4, swap), minor = rd16(p + 6, swap);
	int r = pcap_version_check(major, minor, eb);

	if (r < 0 || (r = ensure_ifaces(cf, 1)) < 0)
		return r;
	cf->v.swap = swap;
	cf->v.big_endian = swap != host_big_endian();
	cf->v.nsec = nsec;
	cf->v.lenswap = major == 2 ? (minor < 3 ? LENSWAP_YES : minor == 3 ? LENSWAP_MAYBE : 0) : 0;
	cf->v.nifaces = 1;
	struct iface *ifc = &cf->ifaces[0];
	ifc->snaplen = rd32(p + 16, swap);
	ifc->linktype = rd32(p + 20, swap) & 0xffff;
	cf->sum.pcap_linktype_ext = rd32(p + 20, swap) & 0xffff0000u;
	ifc->snapshot = adjust_snapshot(ifc->linktype, ifc->snaplen);
	ifc->tsresol = nsec ? 9 : 6;
	ifc->tsoffset = 0;
	struct capfile_summary *s = &cf->sum;
	s->big_endian = cf->v.big_endian;
	s->nanosecond = nsec;
	s->version_major = major;
	s->version_minor = minor;
	s->snaplen = ifc->snaplen;
	s->sections = 1;
	s->interfaces = 1;
	note_linktype(cf, ifc->linktype);
	cf->header_done = true;
	return emit_context(cf, PCAP_HDR_LEN, eb);
}

static int check_trailer(const struct capfile *cf, const uint8_t *p, size_t len, bool swap,
			 struct errbuf *eb)
{
	uint32_t trail = rd32(p + len - 4, swap);

	if (trail == len)
		return 0;
	return errbuf_set(eb, -EINVAL,
			  "offset %llu: block length %zu and trailing length %u differ",
			  (unsigned long long)cf->offset, len, trail);
}

static int pcapng_shb(struct capfile *cf, const uint8_t *p, size_t len, struct errbuf *eb)
{
	bool swap = false;
	int r = shb_order(p, cf->offset, &swap, eb);

	if (r < 0)
		return r;
	if (len < SHB_MIN_LEN)
		return errbuf_set(eb, -EINVAL, "offset %llu: section header block of %zu bytes is too short",
				  (unsigned long long)cf->offset, len);
	uint16_t major = rd16(p + 12, swap), minor = rd16(p + 14, swap);
	if (major != 1)
		return errbuf_set(eb, -EINVAL, "offset %llu: unsupported pcapng version %u.%u (expected 1.x)",
				  (unsigned long long)cf->offset + 12, major, minor);
	cf->v.swap = swap;
	cf->v.big_endian = swap != host_big_endian();
	cf->v.nifaces = 0;
	if (!cf->header_done) {
		cf->sum.big_endian = cf->v.big_endian;
		cf->sum.version_major = major;
		cf->sum.version_minor = minor;
		cf->header_done = true;
	}
	cf->v.section = cf->sum.sections++;
	return emit_context(cf, cf->offset + len, eb);
}

/* Walks IDB options for if_tsresol (9) and if_tsoffset (14). */
static int idb_options(struct capfile *cf, const uint8_t *p, size_t len, struct iface *ifc,
		       struct errbuf *eb)
{
	size_t pos = 16, end = len - 4;

	while (pos + 4 <= end) {
		uint16_t code = rd16(p + pos, cf->v.swap), olen = rd16(p + pos + 2, cf->v.swap);
		if (code == 0)
			break;
		if (olen > end - pos - 4)
			return errbuf_set(eb, -EINVAL,
					  "offset %llu: interface option %u of %u bytes overruns its block",
					  (unsigned long long)(cf->offset + pos), code, olen);
		if (code == 9 && olen >= 1)
			ifc->tsresol = p[pos + 4];
		else if (code == 14 && olen >= 8)
			ifc->tsoffset = (int64_t)rd64(p + pos + 4, cf->v.swap);
		pos += 4 + (((size_t)olen + 3) & ~(size_t)3);
	}
	return 0;
}

static int pcapng_idb(struct capfile *cf, const uint8_t *p, size_t len, struct errbuf *eb)
{
	struct iface ifc = { .tsresol = TSRESOL_DEFAULT };

	if (len < 20)
		return errbuf_set(eb, -EINVAL, "offset %llu: interface block of %zu bytes is too short",
				  (unsigned long long)cf->offset, len);
	if (cf->v.nifaces >= MAX_IFACES)
		return errbuf_set(eb, -EINVAL, "offset %llu: more than %u interfaces in one section",
				  (unsigned long long)cf->offset, MAX_IFACES);
	ifc.linktype = rd16(p + 8, cf->v.swap);
	ifc.snaplen = rd32(p + 12, cf->v.swap);
	ifc.snapshot = adjust_snapshot(ifc.linktype, ifc.snaplen);
	int r = idb_options(cf, p, len, &ifc, eb);
	if (r < 0 || (r = ensure_ifaces(cf, cf->v.nifaces + 1)) < 0)
		return r;
	cf->ifaces[cf->v.nifaces++] = ifc;
	cf->sum.interfaces++;
	if (ifc.snaplen > cf->sum.snaplen)
		cf->sum.snaplen = ifc.snaplen;
	note_linktype(cf, ifc.linktype);
	/* One context for a run of IDBs, emitted before the next other block:
	 * the IDBs of a run share their section's byte order, so whatever
	 * reads them with the context before the run reads them alike. */
	cf->ctx_pending = true;
	cf->ctx_at = cf->offset + len;
	return 0;
}

static int deliver(struct capfile *cf, const struct capfile_packet *pkt)
{
	struct capfile_summary *s = &cf->sum;

	if (s->packets == 0) {
		s->first_ts_ns = s->earliest_ts_ns = s->latest_ts_ns = pkt->ts_ns;
	} else {
		/* Two saturated times in a row are equal here whatever their
		 * true order: claim no order that is not known. */
		if (pkt->ts_ns < s->last_ts_ns || (pkt->ts_saturated && cf->last_saturated &&
						   pkt->ts_ns == s->last_ts_ns))
			s->time_ordered = false;
		if (pkt->ts_ns < s->earliest_ts_ns)
			s->earliest_ts_ns = pkt->ts_ns;
		if (pkt->ts_ns > s->latest_ts_ns)
			s->latest_ts_ns = pkt->ts_ns;
	}
	s->last_ts_ns = pkt->ts_ns;
	cf->last_saturated = pkt->ts_saturated;
	s->time_saturated += pkt->ts_saturated;
	s->packets++;
	s->data_bytes += pkt->caplen;
	s->wire_bytes += pkt->origlen;
	return cf->on_packet ? cf->on_packet(cf->opaque, pkt) : 0;
}

/* Counts a record whose stored caplen exceeds its interface's snaplen (an
 * SPB's caplen is derived from the snaplen, so it never is). */
static void note_oversized(struct capfile *cf, const uint8_t *p, const struct capfile_packet *pkt)
{
	uint32_t stored;
	struct iface ifc;

	if (cf->v.format == CAPFILE_FORMAT_PCAP)
		stored = pkt->record_len - PCAP_REC_HDR;
	else if (rd32(p, cf->v.swap) == PCAPNG_SPB)
		return;
	else
		stored = rd32(p + 20, cf->v.swap);
	if (view_iface(&cf->v, pkt->ifindex, &ifc) && ifc.snaplen && stored > ifc.snaplen)
		cf->sum.oversized++;
}

static int process_unit(struct capfile *cf, const uint8_t *p, size_t len, struct errbuf *eb)
{
	struct capfile_packet pkt;
	int r;

	if (cf->v.format == CAPFILE_FORMAT_PCAP && !cf->header_done)
		return pcap_header(cf, p, eb);
	if (cf->v.format == CAPFILE_FORMAT_PCAPNG) {
		uint32_t type = rd32(p, cf->v.swap);
		bool swap = cf->v.swap;
		if (type == PCAPNG_SHB && (r = shb_order(p, cf->offset, &swap, eb)) < 0)
			return r;
		if ((r = check_trailer(cf, p, len, swap, eb)) < 0)
			return r;
		if (type != PCAPNG_IDB && cf->ctx_pending && (r = emit_context(cf, cf->ctx_at, eb)) < 0)
			return r;
		if (type == PCAPNG_SHB)
			return pcapng_shb(cf, p, len, eb);
		if (type == PCAPNG_IDB)
			return pcapng_idb(cf, p, len, eb);
	}
	r = decode_unit(&cf->v, p, len, cf->offset, &pkt, eb);
	if (r != 0)
		return r < 0 ? r : 0;
	note_oversized(cf, p, &pkt);
	return deliver(cf, &pkt);
}

/* ---- feeding ---- */

int capfile_new(struct capfile **out, capfile_packet_fn on_packet, capfile_context_fn on_context,
		void *opaque)
{
	struct capfile *cf = calloc(1, sizeof(*cf));

	if (!cf)
		return -ENOMEM;
	cf->on_packet = on_packet;
	cf->on_context = on_context;
	cf->opaque = opaque;
	cf->sum.time_ordered = true;
	*out = cf;
	return 0;
}

struct capfile *capfile_free(struct capfile *cf)
{
	if (cf) {
		free(cf->ifaces);
		free(cf->pend);
		free(cf->blob);
		free(cf);
	}
	return NULL;
}

static int pend_reserve(struct capfile *cf, size_t need)
{
	if (need <= cf->pend_cap)
		return 0;
	size_t cap = cf->pend_cap ? cf->pend_cap : 65536;
	while (cap < need)
		cap *= 2;
	uint8_t *b = realloc(cf->pend, cap);
	if (!b)
		return -ENOMEM;
	cf->pend = b;
	cf->pend_cap = cap;
	return 0;
}

/* Completes the unit held in pend from the input. Returns 0 with *done set
 * when the unit was processed, 0 with *done clear when the input ran out. */
static int fill_pending(struct capfile *cf, const uint8_t **p, size_t *n, bool *done,
			struct errbuf *eb)
{
	uint32_t need = 0;
	int r;

	*done = false;
	for (;;) {
		if ((r = unit_len(cf, cf->pend, cf->pend_len, &need, eb)) < 0)
			return r;
		if (need <= cf->pend_len)
			break;
		if ((r = pend_reserve(cf, need)) < 0)
			return r;
		size_t take = need - cf->pend_len < *n ? need - cf->pend_len : *n;
		memcpy(cf->pend + cf->pend_len, *p, take);
		cf->pend_len += take;
		*p += take;
		*n -= take;
		if (cf->pend_len < need)
			return 0;
	}
	r = process_unit(cf, cf->pend, need, eb);
	cf->offset += need;
	cf->sum.valid_bytes = cf->offset;
	cf->pend_len = 0;
	*done = true;
	return r;
}

/* Makes an error sticky: later calls return it with the same message. */
static int fail(struct capfile *cf, int r, struct errbuf *eb)
{
	cf->failed = r;
	if (r > 0 && !eb->msg[0])
		errbuf_set(eb, r, "offset %llu: stopped by a callback (%d)",
			   (unsigned long long)cf->offset, r);
	cf->err = *eb;
	return r;
}

static int feed_units(struct capfile *cf, const uint8_t *p, size_t n, struct errbuf *eb)
{
	uint32_t need = 0;
	int r;

	while (n) {
		if ((r = unit_len(cf, p, n, &need, eb)) < 0)
			return r;
		if (need > n)
			break;
		r = process_unit(cf, p, need, eb);
		cf->offset += need;
		cf->sum.valid_bytes = cf->offset;
		if (r)
			return r;
		p += need;
		n -= need;
	}
	if (n) {
		/* n < need <= CAPFILE_MAX_RECORD: bounded. */
		if ((r = pend_reserve(cf, n)) < 0)
			return r;
		memcpy(cf->pend, p, n);
		cf->pend_len = n;
	}
	return 0;
}

int capfile_feed(struct capfile *cf, const void *buf, size_t len, struct errbuf *eb)
{
	const uint8_t *p = buf;
	size_t n = len;
	bool done = true;
	struct errbuf local;
	int r;

	if (!eb)
		eb = &local;
	errbuf_clear(eb);
	if (cf->failed) {
		if (eb)
			*eb = cf->err;
		return cf->failed;
	}
	cf->total_in += len;
	if (cf->pend_len) {
		if ((r = fill_pending(cf, &p, &n, &done, eb)) != 0)
			return fail(cf, r, eb);
		if (!done)
			return 0;
	}
	if ((r = feed_units(cf, p, n, eb)) != 0)
		return fail(cf, r, eb);
	return 0;
}

static int header_missing(const struct capfile *cf, struct errbuf *eb)
{
	if (cf->total_in == 0)
		return errbuf_set(eb, -EINVAL, "offset 0: empty file");
	if (cf->v.format == CAPFILE_FORMAT_UNKNOWN)
		return errbuf_set(eb, -EINVAL,
				  "offset 0: not a pcap or pcapng file (only %llu bytes)",
				  (unsigned long long)cf->total_in);
	return errbuf_set(eb, -EINVAL, "offset %llu: file ends inside the %s file header",
			  (unsigned long long)cf->total_in, capfile_format_name(cf->v.format));
}

int capfile_finish(struct capfile *cf, struct errbuf *eb)
{
	uint32_t need = 0;
	struct errbuf local;

	if (!eb)
		eb = &local;
	errbuf_clear(eb);
	if (cf->failed) {
		if (eb)
			*eb = cf->err;
		return cf->failed;
	}
	if (!cf->header_done)
		return fail(cf, header_missing(cf, eb), eb);
	int r;
	if (cf->ctx_pending && (r = emit_context(cf, cf->ctx_at, eb)) < 0)
		return fail(cf, r, eb);
	if (cf->pend_len == 0)
		return 0;
	cf->sum.truncated = true;
	struct errbuf tmp;
	if (unit_len(cf, cf->pend, cf->pend_len, &need, &tmp) < 0 || need <= cf->pend_len)
		need = 0;
	if (cf->pend_len < (cf->v.format == CAPFILE_FORMAT_PCAP ? PCAP_REC_HDR : 8u))
		return errbuf_set(eb, CAPFILE_TRUNCATED,
				  "offset %llu: truncated record header (%zu bytes present)",
				  (unsigned long long)cf->offset, cf->pend_len);
	return errbuf_set(eb, CAPFILE_TRUNCATED,
			  "offset %llu: truncated record (%zu of %u bytes present)",
			  (unsigned long long)cf->offset, cf->pend_len, need);
}

const struct capfile_summary *capfile_summary(const struct capfile *cf)
{
	return &cf->sum;
}

enum capfile_format capfile_sniff(const void *buf, size_t len)
{
	uint32_t magic;

	if (len < 4)
		return CAPFILE_FORMAT_UNKNOWN;
	memcpy(&magic, buf, 4);
	switch (magic) {
	case 0xa1b2c3d4u:
	case 0xd4c3b2a1u:
	case 0xa1b23c4du:
	case 0x4d3cb2a1u:
		return CAPFILE_FORMAT_PCAP;
	case PCAPNG_SHB:
		return CAPFILE_FORMAT_PCAPNG;
	default:
		return CAPFILE_FORMAT_UNKNOWN;
	}
}

/* ---- random access via context blobs ---- */

static int blob_view(const void *blob, size_t bloblen, struct view *v)
{
	const uint8_t *b = blob;

	if (!b || bloblen < BLOB_HDR || memcmp(b, "CVCX", 4) != 0 || b[4] != BLOB_VERSION)
		return -EINVAL;
	memset(v, 0, sizeof(*v));
	v->format = b[5];
	if (v->format != CAPFILE_FORMAT_PCAP && v->format != CAPFILE_FORMAT_PCAPNG)
		return -EINVAL;
	v->big_endian = b[6] & 1;
	v->nsec = (b[6] & 2) != 0;
	v->swap = v->big_endian != host_big_endian();
	v->lenswap = b[7];
	v->section = le32(b + 8);
	v->nifaces = le32(b + 12);
	if (v->nifaces > MAX_IFACES || bloblen != BLOB_HDR + (size_t)v->nifaces * BLOB_IFACE)
		return -EINVAL;
	v->blob_if = b + BLOB_HDR;
	return 0;
}

int capfile_record_length(const void *blob, size_t bloblen, const void *hdr, size_t hdrlen,
			  uint32_t *record_len)
{
	struct view v;
	struct iface ifc;
	const uint8_t *p = hdr;

	if (blob_view(blob, bloblen, &v) < 0 || hdrlen < CAPFILE_RECORD_HEADER)
		return -EINVAL;
	if (v.format == CAPFILE_FORMAT_PCAPNG) {
		/* A new section may switch byte order: its own BOM says how. */
		bool swap = rd32(p, false) == PCAPNG_SHB ? rd32(p + 8, false) != PCAPNG_BOM : v.swap;
		uint32_t blen = rd32(p + 4, swap);
		if (blen < 12 || blen % 4 != 0 || blen > CAPFILE_MAX_RECORD)
			return -EINVAL;
		*record_len = blen;
		return 0;
	}
	uint32_t caplen = rd32(p + 8, v.swap), origlen = rd32(p + 12, v.swap);
	if (v.lenswap == LENSWAP_YES || (v.lenswap == LENSWAP_MAYBE && caplen > origlen))
		caplen = origlen;
	if (!view_iface(&v, 0, &ifc) || caplen > max_snaplen(ifc.linktype) ||
	    caplen > CAPFILE_MAX_RECORD - PCAP_REC_HDR)
		return -EINVAL;
	*record_len = PCAP_REC_HDR + caplen;
	return 0;
}

int capfile_decode_record(const void *blob, size_t bloblen, const void *rec, size_t len,
			  uint64_t offset, struct capfile_packet *out)
{
	struct view v;
	const uint8_t *p = rec;
	uint32_t need = 0;

	if (blob_view(blob, bloblen, &v) < 0 || len < CAPFILE_RECORD_HEADER ||
	    capfile_record_length(blob, bloblen, rec, len, &need) < 0 || need != len)
		return -EINVAL;
	if (v.format == CAPFILE_FORMAT_PCAPNG) {
		uint32_t type = rd32(p, v.swap);
		if (type == PCAPNG_SHB || rd32(p + len - 4, v.swap) != len)
			return type == PCAPNG_SHB ? 1 : -EINVAL;
	}
	return decode_unit(&v, p, len, offset, out, NULL);
}

const char *capfile_format_name(enum capfile_format format)
{
	switch (format) {
	case CAPFILE_FORMAT_PCAP:
		return "pcap";
	case CAPFILE_FORMAT_PCAPNG:
		return "pcapng";
	default:
		return "unknown";
	}
}
