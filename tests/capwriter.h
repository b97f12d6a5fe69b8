/*
 * capwriter.h - builds pcap and pcapng captures for tests and mkcap.
 *
 * Everything is appended to a struct cwbuf, which either grows in memory
 * or, when bound to a FILE, flushes in large writes so captures of any
 * size stream out with bounded memory. Byte order is chosen per call (a
 * pcapng section's blocks must all use its SHB's order); nothing checks
 * that the result is valid, so tests can also build broken captures, and
 * cw_truncate/cw_poke* make corrupt variants of a finished buffer.
 *
 * cw_frame builds Ethernet frames (optionally 802.1Q tagged) carrying
 * IPv4/IPv6 with TCP/UDP/ICMP, or ARP, with correct lengths and IPv4
 * header checksums (L4 checksums on request).
 */
#ifndef CAPVAULT_CAPWRITER_H
#define CAPVAULT_CAPWRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cwbuf {
	uint8_t *data;
	size_t len, cap;
	FILE *fp;        /* when set, data is a staging buffer flushed to fp */
	uint64_t offset; /* bytes written so far (flushed + staged) */
	int err;         /* first error (negative errno), sticky */
};

/* A growing in-memory buffer. */
void cwbuf_init_mem(struct cwbuf *b);
/* A buffer that flushes to fp whenever it holds about 4 MiB. */
void cwbuf_init_file(struct cwbuf *b, FILE *fp);
/* Writes what is staged (FILE mode). Returns 0 or a negative errno. */
int cwbuf_flush(struct cwbuf *b);
/* Frees the buffer (does not close fp). */
void cwbuf_release(struct cwbuf *b);
/* Appends raw bytes. */
void cwbuf_put(struct cwbuf *b, const void *p, size_t len);

/* Memory-mode corruption helpers (offsets are absolute). */
void cw_truncate(struct cwbuf *b, size_t len);
void cw_poke8(struct cwbuf *b, size_t off, uint8_t v);
void cw_poke32(struct cwbuf *b, size_t off, uint32_t v, bool big_endian);

#define CW_MAGIC_USEC 0xa1b2c3d4u
#define CW_MAGIC_NSEC 0xa1b23c4du

/* pcap: 24-byte file header; linktype written as is (high bits too). */
void cw_pcap_header(struct cwbuf *b, bool big_endian, bool nsec, uint32_t snaplen,
		    uint32_t linktype);
/* A record: frac is usec or nsec per the header; caplen bytes of data
 * (NULL = a fill pattern) are stored. */
void cw_pcap_record(struct cwbuf *b, bool big_endian, uint32_t sec, uint32_t frac,
		    const void *data, uint32_t caplen, uint32_t origlen);

/* pcapng blocks. tsresol < 0 omits if_tsresol; has_tsoffset adds
 * if_tsoffset. Data NULL = fill pattern; bodies are padded to 4 bytes. */
void cw_shb(struct cwbuf *b, bool big_endian);
void cw_idb(struct cwbuf *b, bool big_endian, uint16_t linktype, uint32_t snaplen, int tsresol,
	    bool has_tsoffset, int64_t tsoffset);
void cw_epb(struct cwbuf *b, bool big_endian, uint32_t ifid, uint64_t ts_units, const void *data,
	    uint32_t caplen, uint32_t origlen);
/* SPB: stored bytes of data, original length origlen. */
void cw_spb(struct cwbuf *b, bool big_endian, const void *data, uint32_t stored,
	    uint32_t origlen);
/* Obsolete Packet Block (type 2). */
void cw_pb(struct cwbuf *b, bool big_endian, uint16_t ifid, uint64_t ts_units, const void *data,
	   uint32_t caplen, uint32_t origlen);
/* Any block type with an opaque body (unknown/custom blocks). */
void cw_block(struct cwbuf *b, bool big_endian, uint32_t type, const void *body,
	      uint32_t bodylen);

/* ---- compression ---- */

/* in (len bytes) gzip-compressed (level 6) into out (cap bytes). Returns
 * the compressed length, or 0 when it does not fit or zlib fails. */
size_t cw_gzip(const void *in, size_t len, void *out, size_t cap);

/* ---- frames ---- */

enum cw_l3 { CW_IPV4, CW_IPV6, CW_ARP };

struct cw_frame {
	enum cw_l3 l3;
	uint8_t proto;          /* 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6 */
	uint8_t src_mac[6], dst_mac[6];
	uint16_t vlan;          /* 802.1Q VLAN id; 0 = untagged */
	uint8_t src_ip[16], dst_ip[16]; /* IPv4 uses the first 4 bytes */
	uint16_t sport, dport;  /* TCP/UDP ports; ICMP: id and sequence */
	uint8_t tcp_flags;      /* e.g. 0x18 PSH|ACK */
	uint32_t seq, ack;
	uint8_t ttl;            /* 0 = 64 */
	uint32_t payload_len;
	uint8_t payload_fill;   /* payload byte i is fill + i */
	bool l4_checksum;       /* compute TCP/UDP/ICMP checksums */
};

/* Writes the frame into out (cap bytes). Returns its length, or 0 when
 * it would not fit or the IP length field would overflow. */
size_t cw_build_frame(const struct cw_frame *f, uint8_t *out, size_t cap);
/* Internet checksum (RFC 1071) of len bytes, folded, not inverted. */
uint16_t cw_csum_fold(uint32_t sum);
uint32_t cw_csum_add(uint32_t sum, const void *p, size_t len);

#endif
