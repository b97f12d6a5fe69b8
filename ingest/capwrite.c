/*
 * capwrite.c - see capwrite.h. Writes little-endian (host order on the
 * machines we run on) files: pcap 2.4, pcapng 1.0.
 */
#include "capwrite.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buffill.h"

#define PCAPNG_SHB 0x0A0D0D0Au
#define PCAPNG_IDB 0x00000001u
#define PCAPNG_EPB 0x00000006u
#define PCAPNG_DSB 0x0000000Au
#define PCAPNG_OPT_COMMENT 1u
#define PCAPNG_MAX_IFACES 64
/* if_tsoffset of the interfaces that carry times before 1970: at or
 * below INT64_MIN ns, so every such time is a uint64 count of ns past it. */
#define NEG_TSOFFSET (-9223372037ll)
#define NEG_BASE_NS (9223372037000000000ull) /* -NEG_TSOFFSET * 10^9 */

struct capwrite {
	enum capfile_format format;
	uint32_t linktype;
	bool nanosecond;
	uint32_t snaplen;
	capwrite_out_fn out;
	void *opaque;
	uint8_t *buf;
	size_t used;
	uint64_t packets;
	struct iface {
		uint32_t linktype;
		uint8_t tsresol;
		int64_t tsoffset;
	} ifaces[PCAPNG_MAX_IFACES];
	uint32_t nifaces;
};

int capwrite_flush(struct capwrite *w)
{
	if (w->used == 0)
		return 0;
	int err = w->out(w->opaque, w->buf, w->used);
	w->used = 0;
	return err;
}

static int flush_full(void *opaque)
{
	return capwrite_flush(opaque);
}

static int put(struct capwrite *w, const void *data, size_t len)
{
	return buf_fill(w->buf, CAPWRITE_BUFFER, &w->used, data, len, flush_full, w);
}

static int put32(struct capwrite *w, uint32_t v)
{
	return put(w, &v, sizeof(v));
}

/* Zeros up to the next multiple of 4 after len bytes. */
static int pad(struct capwrite *w, size_t len)
{
	static const uint8_t zeros[4];
	return put(w, zeros, ((len + 3u) & ~(size_t)3u) - len);
}

/* A pcapng option: code, length, value, padding. */
static int put_option(struct capwrite *w, uint16_t code, const void *val, size_t len)
{
	uint16_t h[2] = { code, (uint16_t)len };
	int err = put(w, h, sizeof(h));
	if (!err)
		err = put(w, val, len);
	return err ? err : pad(w, len);
}

static int write_pcap_header(struct capwrite *w)
{
	struct {
		uint32_t magic;
		uint16_t major, minor;
		int32_t thiszone;
		uint32_t sigfigs, snaplen, linktype;
	} __attribute__((packed)) hdr = { w->nanosecond ? 0xa1b23c4du : 0xa1b2c3d4u, 2, 4, 0, 0, w->snaplen, w->linktype };
	return put(w, &hdr, sizeof(hdr));
}

static int write_shb(struct capwrite *w)
{
	struct {
		uint32_t type, len, bom;
		uint16_t major, minor;
		int64_t section_len;
		uint32_t len2;
	} __attribute__((packed)) shb = { PCAPNG_SHB, 28, 0x1A2B3C4Du, 1, 0, -1, 28 };
	return put(w, &shb, sizeof(shb));
}

/* An IDB with if_tsresol, and if_tsoffset unless 0. */
static int write_idb(struct capwrite *w, const struct iface *ifc)
{
	bool offset = ifc->tsoffset != 0;
	struct {
		uint32_t type, len;
		uint16_t linktype, reserved;
		uint32_t snaplen;
		uint16_t opt_code, opt_len;
		uint8_t tsresol, pad[3];
	} __attribute__((packed)) idb = { PCAPNG_IDB, offset ? 44 : 32, (uint16_t)ifc->linktype, 0,
					  w->snaplen, 9, 1, ifc->tsresol, { 0 } };
	struct {
		uint16_t code, len;
		int64_t value;
	} __attribute__((packed)) tsoffset = { 14, 8, ifc->tsoffset };
	uint32_t end = 0;
	int err = put(w, &idb, sizeof(idb));
	if (!err && offset)
		err = put(w, &tsoffset, sizeof(tsoffset));
	if (!err)
		err = put32(w, end);
	return err ? err : put32(w, idb.len);
}

static int pcapng_iface(struct capwrite *w, const struct iface *want, uint32_t *ifid);

int capwrite_new(struct capwrite **out, enum capfile_format format, uint32_t linktype,
		 bool nanosecond, uint32_t snaplen, capwrite_out_fn fn, void *opaque)
{
	if (format != CAPFILE_FORMAT_PCAP && format != CAPFILE_FORMAT_PCAPNG)
		return -EINVAL;
	struct capwrite *w = calloc(1, sizeof(*w));
	if (!w || !(w->buf = malloc(CAPWRITE_BUFFER))) {
		free(w);
		return -ENOMEM;
	}
	w->format = format;
	w->linktype = linktype;
	w->nanosecond = nanosecond;
	w->snaplen = snaplen ? snaplen : 262144;
	w->out = fn;
	w->opaque = opaque;
	int err = format == CAPFILE_FORMAT_PCAP ? write_pcap_header(w) : write_shb(w);
	uint32_t ifid;
	/* An interface up front: a pcapng without one is unreadable, even empty. */
	if (!err && format == CAPFILE_FORMAT_PCAPNG)
		err = pcapng_iface(w, &(struct iface){ .linktype = linktype, .tsresol = 9 }, &ifid);
	if (err) {
		free(w->buf);
		free(w);
		return err;
	}
	*out = w;
	return 0;
}

struct capwrite *capwrite_free(struct capwrite *w)
{
	if (!w)
		return NULL;
	capwrite_flush(w);
	free(w->buf);
	free(w);
	return NULL;
}

bool capwrite_pcap_time(int64_t ns)
{
	return ns >= 0 && ns / 1000000000 <= UINT32_MAX;
}

static int pcap_packet(struct capwrite *w, const struct capfile_packet *pkt)
{
	if (pkt->linktype != (w->linktype & 0xffff))
		return -EINVAL;
	uint32_t frac = (uint32_t)(pkt->ts_ns % 1000000000u);
	uint32_t rec[4] = {
		(uint32_t)(pkt->ts_ns / 1000000000u),
		w->nanosecond ? frac : frac / 1000,
		pkt->caplen,
		pkt->origlen,
	};
	int err = put(w, rec, sizeof(rec));
	return err ? err : put(w, pkt->data, pkt->caplen);
}

/* The interface id for a link type and time encoding, writing its IDB
 * the first time. */
static int pcapng_iface(struct capwrite *w, const struct iface *want, uint32_t *ifid)
{
	for (uint32_t i = 0; i < w->nifaces; i++) {
		const struct iface *f = &w->ifaces[i];
		if (f->linktype == want->linktype && f->tsresol == want->tsresol &&
		    f->tsoffset == want->tsoffset) {
			*ifid = i;
			return 0;
		}
	}
	if (w->nifaces == PCAPNG_MAX_IFACES)
		return -E2BIG;
	int err = write_idb(w, want);
	if (err)
		return err;
	w->ifaces[w->nifaces] = *want;
	*ifid = w->nifaces++;
	return 0;
}

static int pcapng_packet(struct capwrite *w, const struct capfile_packet *pkt,
			 const char *comment)
{
	uint32_t ifid;
	struct iface want = { .linktype = pkt->linktype, .tsresol = 9 };
	/* Modulo 2^64: a time before 1970 plus NEG_BASE_NS is >= 0. */
	uint64_t units = (uint64_t)pkt->ts_ns + (pkt->ts_ns < 0 ? NEG_BASE_NS : 0);
	if (pkt->ts_ns < 0)
		want.tsoffset = NEG_TSOFFSET;
	/* A saturated time goes out as the file had it, on an interface
	 * that reads it as the source's did. */
	if (pkt->ts_saturated) {
		want.tsresol = pkt->ts_resol;
		want.tsoffset = pkt->ts_offset;
		units = pkt->ts_units;
	}
	int err = pcapng_iface(w, &want, &ifid);
	if (err)
		return err;
	uint32_t padded = (pkt->caplen + 3u) & ~3u;
	size_t clen = comment ? strlen(comment) : 0;
	/* opt_comment, then opt_endofopt (4 bytes) */
	uint32_t opts = clen ? 4 + (((uint32_t)clen + 3u) & ~3u) + 4 : 0;
	uint32_t total = 32 + padded + opts;
	uint32_t hdr[7] = { PCAPNG_EPB, total, ifid, (uint32_t)(units >> 32),
			    (uint32_t)units, pkt->caplen, pkt->origlen };
	if ((err = put(w, hdr, sizeof(hdr))) || (err = put(w, pkt->data, pkt->caplen)) ||
	    (err = pad(w, pkt->caplen)))
		return err;
	if (clen && ((err = put_option(w, PCAPNG_OPT_COMMENT, comment, clen)) || (err = put32(w, 0))))
		return err;
	return put32(w, total);
}

int capwrite_packet(struct capwrite *w, const struct capfile_packet *pkt)
{
	return capwrite_packet_comment(w, pkt, NULL);
}

int capwrite_packet_comment(struct capwrite *w, const struct capfile_packet *pkt,
			    const char *comment)
{
	if (w->format == CAPFILE_FORMAT_PCAP && !capwrite_pcap_time(pkt->ts_ns))
		return -ERANGE; /* 32-bit seconds would wrap it to another time */
	if (comment && *comment && (w->format != CAPFILE_FORMAT_PCAPNG ||
				    strlen(comment) > CAPWRITE_COMMENT_MAX))
		return -EINVAL;
	int err = w->format == CAPFILE_FORMAT_PCAP ? pcap_packet(w, pkt) :
						     pcapng_packet(w, pkt, comment);
	if (!err)
		w->packets++;
	return err;
}

int capwrite_secrets(struct capwrite *w, uint32_t type, const void *data, size_t len)
{
	if (w->format != CAPFILE_FORMAT_PCAPNG || len > CAPWRITE_SECRETS_MAX)
		return -EINVAL;
	uint32_t total = 20 + (((uint32_t)len + 3u) & ~3u);
	uint32_t hdr[4] = { PCAPNG_DSB, total, type, (uint32_t)len };
	int err = put(w, hdr, sizeof(hdr));
	if (!err)
		err = put(w, data, len);
	if (!err)
		err = pad(w, len);
	return err ? err : put32(w, total);
}

uint64_t capwrite_packets(const struct capwrite *w)
{
	return w->packets;
}
