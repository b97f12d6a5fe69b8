/*
 * capwrite.h - streaming writer of pcap and pcapng, for query results.
 *
 * Output goes through a callback in chunks of at most CAPWRITE_BUFFER
 * bytes; memory stays bounded whatever is written. pcap output has one
 * link type and one time resolution, and holds times from 1970 to 2106
 * only (unsigned 32-bit seconds); pcapng output gets one interface
 * (nanosecond resolution) per link type, added as packets need them, and
 * more with an if_tsoffset for packets dated before 1970 and with the
 * source's if_tsresol and if_tsoffset for saturated times (capfile.h),
 * so that every time reads back (tcpdump -tt) as it read from the source.
 */
#ifndef CAPVAULT_CAPWRITE_H
#define CAPVAULT_CAPWRITE_H

#include <stdbool.h>
#include <stdint.h>

#include "capfile.h"

#define CAPWRITE_BUFFER (256u * 1024)

/* Receives output bytes; nonzero stops writing and is returned. */
typedef int (*capwrite_out_fn)(void *opaque, const void *buf, size_t len);

struct capwrite;

/* format is PCAP (then linktype and nanosecond apply) or PCAPNG (then
 * linktype gets the first interface). Writes the file header. Returns 0 or a negative errno. */
int capwrite_new(struct capwrite **out, enum capfile_format format, uint32_t linktype,
		 bool nanosecond, uint32_t snaplen, capwrite_out_fn fn, void *opaque);
/* Flushes what is buffered and frees the writer. Accepts NULL. */
struct capwrite *capwrite_free(struct capwrite *w);

/* Whether pcap output can hold the time ns. */
bool capwrite_pcap_time(int64_t ns);
/* Appends one packet. Returns 0, -EINVAL (pcap output, other link type),
 * -ERANGE (pcap output, a time it cannot hold), -E2BIG (pcapng output,
 * more than 64 interfaces), or what the output callback returned. */
int capwrite_packet(struct capwrite *w, const struct capfile_packet *pkt);
/* capwrite_packet, with a packet comment (opt_comment; NULL or "": none)
 * on pcapng output. -EINVAL on pcap output or for a comment longer than
 * CAPWRITE_COMMENT_MAX. */
#define CAPWRITE_COMMENT_MAX 65000u
int capwrite_packet_comment(struct capwrite *w, const struct capfile_packet *pkt,
			    const char *comment);
/* A pcapng Decryption Secrets Block (type: CAPWRITE_SECRETS_TLS for a TLS
 * key log), read by Wireshark for the packets after it. pcapng output
 * only (-EINVAL), at most CAPWRITE_SECRETS_MAX bytes. */
#define CAPWRITE_SECRETS_TLS 0x544c534bu
#define CAPWRITE_SECRETS_MAX (64u << 20)
int capwrite_secrets(struct capwrite *w, uint32_t type, const void *data, size_t len);
/* Hands buffered bytes to the callback. */
int capwrite_flush(struct capwrite *w);
uint64_t capwrite_packets(const struct capwrite *w);

#endif
