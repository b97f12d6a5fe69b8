/*
 * capfile.h - incremental, streaming reader of pcap and pcapng captures.
 *
 * The caller feeds the (already decompressed) bytes of a capture in file
 * order, in buffers of any size; the reader calls back once per packet
 * record and whenever its decoding state changes (file header, section
 * header, interface description). It never reads past a buffer it was
 * given, keeps at most one record's worth of bytes (bounded by
 * CAPFILE_MAX_RECORD) and never allocates from an unchecked length.
 *
 * The decoding state is also emitted as an opaque "context" blob so that a
 * single record can be decoded later, at random, from its bytes alone
 * (capfile_decode_record): that is how queries read packets back.
 */
#ifndef CAPVAULT_CAPFILE_H
#define CAPVAULT_CAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

/* Largest record (pcap record or pcapng block) accepted, in bytes. */
#define CAPFILE_MAX_RECORD (16u * 1024 * 1024)
/* Most distinct link types listed in a summary. */
#define CAPFILE_MAX_LINKTYPES 16
/* Positive outcome of capfile_finish: the last record was cut short. */
#define CAPFILE_TRUNCATED 1

enum capfile_format {
	CAPFILE_FORMAT_UNKNOWN = 0,
	CAPFILE_FORMAT_PCAP,
	CAPFILE_FORMAT_PCAPNG,
};

/*
 * Packet times are signed 64-bit nanoseconds since 1970-01-01T00:00:00Z,
 * which reach from 1677-09-21T00:12:43.145224192Z (INT64_MIN) to
 * 2262-04-11T23:47:16.854775807Z (INT64_MAX). A pcapng time beyond them
 * (a large if_tsoffset, a coarse if_tsresol with large units) is
 * saturated to the nearer end and flagged: it still compares correctly
 * with every time inside the range, so a time window with bounds inside
 * the range selects it exactly as the true time would.
 */
struct capfile_packet {
	uint64_t offset;     /* of the record header (pcap) or block (pcapng) */
	uint32_t record_len; /* bytes the whole record spans in the file */
	int64_t ts_ns;       /* UTC nanoseconds since the epoch (see below) */
	bool ts_saturated;   /* the time lay beyond ts_ns's range (see below) */
	/* The timestamp as the file has it, for writing a saturated time
	 * back as it was: units of 10^-n s (2^-n with bit 7 of tsresol)
	 * plus tsoffset s. pcap: ns, offset 0. */
	uint64_t ts_units;
	int64_t ts_offset;
	uint8_t ts_resol;
	uint32_t caplen;     /* bytes of packet data present */
	uint32_t origlen;    /* length on the wire */
	uint32_t section;    /* pcapng section number (0-based); 0 for pcap */
	uint32_t ifindex;    /* interface id within the section; 0 for pcap */
	uint32_t linktype;   /* LINKTYPE_* of the interface */
	const uint8_t *data; /* caplen bytes, valid only during the callback */
};

struct capfile_summary {
	enum capfile_format format;
	bool big_endian;        /* of the first section */
	bool nanosecond;        /* pcap: nanosecond magic */
	uint16_t version_major; /* of the file header / first section */
	uint16_t version_minor;
	uint32_t snaplen;       /* pcap header snaplen; pcapng: largest IDB snaplen */
	uint32_t sections;
	uint32_t interfaces;    /* total over all sections */
	uint32_t linktypes[CAPFILE_MAX_LINKTYPES]; /* distinct, in order of appearance */
	uint32_t nlinktypes;
	/* pcap: the header's bits above the link type (FCS length,
	 * LT_LINKTYPE_EXT), kept so a copy can write them back; 0 otherwise */
	uint32_t pcap_linktype_ext;
	uint64_t packets;
	uint64_t data_bytes;     /* sum of caplen */
	uint64_t wire_bytes;     /* sum of origlen */
	int64_t first_ts_ns;     /* of the first packet in file order */
	int64_t last_ts_ns;      /* of the last packet in file order */
	int64_t earliest_ts_ns;  /* smallest timestamp */
	int64_t latest_ts_ns;    /* largest timestamp */
	bool time_ordered;       /* every packet's time >= the previous one's, as far as
				  * known: two saturated times in a row are not known to be */
	uint64_t time_saturated; /* packets whose time was saturated */
	uint64_t oversized;      /* records whose caplen exceeds the snaplen */
	uint64_t valid_bytes;    /* end of the last complete record */
	bool truncated;          /* the input ended inside a record */
};

/* Called once per packet, in file order. Nonzero stops the feed and is
 * returned by capfile_feed. */
typedef int (*capfile_packet_fn)(void *opaque, const struct capfile_packet *pkt);
/* Called when the decoding state changes; records at offsets >= offset
 * decode with this blob until the next call. May be NULL. */
typedef int (*capfile_context_fn)(void *opaque, uint64_t offset, const void *blob, size_t len);

struct capfile;

/* Returns 0 or -ENOMEM. */
int capfile_new(struct capfile **out, capfile_packet_fn on_packet, capfile_context_fn on_context,
		void *opaque);
struct capfile *capfile_free(struct capfile *cf);

/*
 * Feeds the next len bytes. Returns 0; -EINVAL when the input is not a
 * capture or is malformed, with eb saying what and at which byte offset
 * ("offset 0: not a pcap or pcapng file (magic 0x3c68746d)"); or the
 * nonzero value a callback returned. After an error the reader refuses
 * further input.
 */
int capfile_feed(struct capfile *cf, const void *buf, size_t len, struct errbuf *eb);

/*
 * Declares the end of input. Returns 0; CAPFILE_TRUNCATED when the input
 * ended inside a record (eb says where; packets before it were delivered);
 * or -EINVAL when no complete file header was seen.
 */
int capfile_finish(struct capfile *cf, struct errbuf *eb);

/* Totals so far; complete after capfile_finish. */
const struct capfile_summary *capfile_summary(const struct capfile *cf);

/* Guesses the format from the first bytes (at least 4); UNKNOWN if neither. */
enum capfile_format capfile_sniff(const void *buf, size_t len);

/*
 * Length of the record starting with hdr (at least CAPFILE_RECORD_HEADER
 * bytes), decoded with a context blob. Returns 0 and sets *record_len, or
 * -EINVAL.
 */
#define CAPFILE_RECORD_HEADER 16
int capfile_record_length(const void *blob, size_t bloblen, const void *hdr, size_t hdrlen,
			  uint32_t *record_len);

/*
 * Decodes the single packet record rec (record_len bytes read from offset)
 * with a context blob. Returns 0, 1 when the record is a valid block that
 * holds no packet, or -EINVAL.
 */
int capfile_decode_record(const void *blob, size_t bloblen, const void *rec, size_t len,
			  uint64_t offset, struct capfile_packet *out);

/* "pcap", "pcapng" or "unknown". */
const char *capfile_format_name(enum capfile_format format);

#endif
