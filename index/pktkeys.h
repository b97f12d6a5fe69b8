/*
 * pktkeys.h - packet dissection for indexing: link type + packet bytes in,
 * canonical flow key out.
 *
 * Promises:
 *  - Never reads outside data[0, caplen). A header cut short by caplen gives
 *    a partial key; the PKTKEY_K_* bits in flags say which fields are known.
 *    A field that is not known is zero. What BPF could still read of a cut
 *    header is kept, so the index finds every packet libpcap accepts: a VLAN
 *    id without the next ethertype (ethertype stays the TPID), the SLL2
 *    protocol, an IPv6 fragment's next header, and the leading 32-bit words
 *    of a cut IPv6 address (marked known, zero-padded).
 *  - Both directions of a conversation give the same key. Endpoint "a" is
 *    the lower of (address, port) and (address, port) compared as bytes
 *    (addresses big-endian, then port); the return value says whether the
 *    packet went a->b or b->a. When only one side's address is known the
 *    endpoints stay in packet order (src = a).
 *  - Keys are fully initialised (padding included), so they can be compared
 *    with memcmp and hashed as bytes.
 *
 * What goes in the key (the outer-most IP header only, like BPF):
 *  - Ethernet and Linux SLL/SLL2: up to PKTKEY_MAX_VLAN 802.1Q / 802.1ad
 *    tags (TPID 0x8100, 0x88a8, 0x9100), outer first; ethertype is the one
 *    after the tags. More tags than that: dissection stops (ethertype 0x8100).
 *  - Raw/NULL/LOOP links: ethertype is synthesised (0x0800 / 0x86dd) so
 *    "ip" and "ip6" terms work on every link type.
 *  - IPv4/IPv6 addresses; IP protocol. IPv6 hop-by-hop (0), routing (43),
 *    fragment (44) and destination options (60) headers are walked, at most
 *    PKTKEY_MAX_EXTHDR of them; proto is the first header that is not one of
 *    those. A non-first fragment (either IP version) has no ports.
 *  - TCP, UDP, SCTP ports. ICMP and ICMPv6 leave the ports zero on purpose:
 *    BPF's "port" never matches them, and putting type/code or the echo id
 *    there would split one ping conversation into many flows.
 *  - ARP/RARP (Ethernet and SLL): the sender and target protocol addresses
 *    at ARP offsets 14 and 24 as IPv4 addresses (ipver 4, proto 0), because
 *    BPF's "host X" also matches ARP packets there.
 *  - Anything else: linktype and ethertype only (a per-protocol pseudo-flow).
 */
#ifndef CAPVAULT_PKTKEYS_H
#define CAPVAULT_PKTKEYS_H

#include <stddef.h>
#include <stdint.h>

#define PKTKEY_MAX_VLAN 2
#define PKTKEY_MAX_EXTHDR 8

/* Known-field bits in flow_key.flags. */
enum {
	PKTKEY_K_ETHERTYPE = 1u << 0,
	PKTKEY_K_PROTO = 1u << 1,
	PKTKEY_K_ADDR_A = 1u << 2,
	PKTKEY_K_ADDR_B = 1u << 3,
	PKTKEY_K_PORT_A = 1u << 4,
	PKTKEY_K_PORT_B = 1u << 5,
	/* Not a first fragment: ports are absent, not unknown. */
	PKTKEY_F_FRAGMENT = 1u << 6,
	/* The packet ended inside a header we wanted to read. */
	PKTKEY_F_TRUNCATED = 1u << 7,
};

/* Link types (LINKTYPE_* values as stored in pcap/pcapng files). */
enum {
	PKTKEY_LT_NULL = 0,
	PKTKEY_LT_ETHERNET = 1,
	PKTKEY_LT_DLT_RAW12 = 12,
	PKTKEY_LT_DLT_RAW14 = 14,
	PKTKEY_LT_RAW = 101,
	PKTKEY_LT_LOOP = 108,
	PKTKEY_LT_LINUX_SLL = 113,
	PKTKEY_LT_IPV4 = 228,
	PKTKEY_LT_IPV6 = 229,
	PKTKEY_LT_LINUX_SLL2 = 276,
};

struct flow_key {
	uint8_t addr_a[16]; /* IPv4: first 4 bytes, rest zero */
	uint8_t addr_b[16];
	uint32_t linktype;
	uint16_t port_a;
	uint16_t port_b;
	uint16_t ethertype;
	uint16_t vlan[PKTKEY_MAX_VLAN]; /* 12-bit ids, outer first */
	uint16_t flags;                 /* PKTKEY_K_* | PKTKEY_F_* */
	uint8_t vlan_count;             /* tags recorded in vlan[] */
	uint8_t ipver;                  /* 0, 4 (also ARP) or 6: family of addr_a/b */
	uint8_t proto;                  /* IP protocol (after IPv6 extension headers) */
	uint8_t pad_;                   /* always zero */
};

enum pktkeys_dir {
	PKTKEYS_A_TO_B = 0, /* packet source is endpoint a */
	PKTKEYS_B_TO_A = 1,
};

/*
 * Fills *key from one packet of the given link type (LINKTYPE_* value).
 * Returns PKTKEYS_A_TO_B or PKTKEYS_B_TO_A; never fails (an unknown link
 * type or garbage gives a key with just the link type).
 */
enum pktkeys_dir pktkeys_extract(uint32_t linktype, const uint8_t *data, size_t caplen,
				 struct flow_key *key);

/* True when both directions' addresses were known (so the key is canonical). */
static inline int pktkeys_is_canonical(const struct flow_key *key)
{
	return (key->flags & (PKTKEY_K_ADDR_A | PKTKEY_K_ADDR_B)) ==
	       (PKTKEY_K_ADDR_A | PKTKEY_K_ADDR_B);
}

#endif
