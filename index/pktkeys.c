/*
 * pktkeys.c - per-packet dissection into a flow key (see pktkeys.h).
 *
 * This runs once per packet at import time, so it does no allocation, no
 * byte copies beyond the key itself and no library calls but memset/memcpy/
 * memcmp. Every read is preceded by a bounds check against caplen; the
 * dissector stops at the first header that does not fit and records what it
 * learned so far. Offsets follow what libpcap's generated BPF code reads
 * (fixed ARP offsets, the IHL as found), so that a packet the exact filter
 * accepts always has the fields the index needs to find it.
 */
#include "pktkeys.h"

#include <stdbool.h>
#include <string.h>

enum {
	ET_IPV4 = 0x0800,
	ET_ARP = 0x0806,
	ET_RARP = 0x8035,
	ET_IPV6 = 0x86dd,
	ET_VLAN = 0x8100,
	ET_QINQ = 0x88a8,
	ET_QINQ_OLD = 0x9100,
};

enum {
	IPP_HOPOPTS = 0,
	IPP_TCP = 6,
	IPP_UDP = 17,
	IPP_ROUTING = 43,
	IPP_FRAGMENT = 44,
	IPP_DSTOPTS = 60,
	IPP_SCTP = 132,
};

/* A bounded view of the packet: every reader takes an absolute offset. */
struct pkt {
	const uint8_t *p;
	size_t len;
};

static inline bool has(const struct pkt *pk, size_t off, size_t n)
{
	return off <= pk->len && n <= pk->len - off;
}

static inline uint16_t be16(const struct pkt *pk, size_t off)
{
	return (uint16_t)(pk->p[off] << 8 | pk->p[off + 1]);
}

static inline uint32_t be32(const struct pkt *pk, size_t off)
{
	return (uint32_t)pk->p[off] << 24 | (uint32_t)pk->p[off + 1] << 16 |
	       (uint32_t)pk->p[off + 2] << 8 | pk->p[off + 3];
}

static inline void truncated(struct flow_key *key)
{
	key->flags |= PKTKEY_F_TRUNCATED;
}

static void set_ethertype(struct flow_key *key, uint16_t et)
{
	key->ethertype = et;
	key->flags |= PKTKEY_K_ETHERTYPE;
}

/*
 * Copies an address of n bytes at off into endpoint a (src) or b (dst). A
 * cut-off IPv6 address keeps its whole leading 32-bit words (rest zero):
 * BPF tests a short prefix with those words only, so "net X/32" can match
 * such a packet and the key must still carry the prefix.
 */
static void take_addr(const struct pkt *pk, size_t off, size_t n, bool dst, struct flow_key *key)
{
	if (!has(pk, off, n)) {
		truncated(key);
		if (off >= pk->len || (pk->len - off) < 4)
			return;
		n = (pk->len - off) & ~(size_t)3;
	}
	memcpy(dst ? key->addr_b : key->addr_a, pk->p + off, n);
	key->flags |= dst ? PKTKEY_K_ADDR_B : PKTKEY_K_ADDR_A;
}

/* Source and destination ports of TCP/UDP/SCTP, which all start with them. */
static void take_ports(const struct pkt *pk, size_t off, struct flow_key *key)
{
	if (key->proto != IPP_TCP && key->proto != IPP_UDP && key->proto != IPP_SCTP)
		return;
	if (!has(pk, off, 2)) {
		truncated(key);
		return;
	}
	key->port_a = be16(pk, off);
	key->flags |= PKTKEY_K_PORT_A;
	if (!has(pk, off + 2, 2)) {
		truncated(key);
		return;
	}
	key->port_b = be16(pk, off + 2);
	key->flags |= PKTKEY_K_PORT_B;
}

/*
 * IPv4 at off. The version nibble is not checked when the link layer said
 * IPv4, because BPF does not check it either; IHL is used as found for the
 * same reason.
 */
static void dissect_ipv4(const struct pkt *pk, size_t off, struct flow_key *key)
{
	if (!has(pk, off, 10)) {
		truncated(key);
		return;
	}
	key->ipver = 4;
	key->proto = pk->p[off + 9];
	key->flags |= PKTKEY_K_PROTO;
	take_addr(pk, off + 12, 4, false, key);
	take_addr(pk, off + 16, 4, true, key);
	if ((be16(pk, off + 6) & 0x1fff) != 0) {
		key->flags |= PKTKEY_F_FRAGMENT;
		return;
	}
	take_ports(pk, off + (size_t)(pk->p[off] & 0x0f) * 4, key);
}

static bool ipv6_is_exthdr(uint8_t nh)
{
	return nh == IPP_HOPOPTS || nh == IPP_ROUTING || nh == IPP_FRAGMENT || nh == IPP_DSTOPTS;
}

/*
 * Walks the IPv6 extension headers from *off with next header *nh. Returns
 * false when the walk could not finish (truncated, or too many headers), in
 * which case the protocol stays unknown. A non-first fragment ends the walk
 * with the fragment's next header as the protocol and no ports.
 */
static bool ipv6_walk(const struct pkt *pk, size_t *off, uint8_t *nh, struct flow_key *key)
{
	for (int i = 0; i < PKTKEY_MAX_EXTHDR && ipv6_is_exthdr(*nh); i++) {
		size_t hlen;

		if (*nh == IPP_FRAGMENT) {
			/* BPF's "ip6 proto" reads this next-header byte alone */
			if (!has(pk, *off, 1))
				return false;
			*nh = pk->p[*off];
			if (!has(pk, *off, 4)) {
				key->flags |= PKTKEY_F_TRUNCATED;
				*off = pk->len; /* no room for ports either */
				return true;
			}
			if ((be16(pk, *off + 2) & 0xfff8) != 0)
				key->flags |= PKTKEY_F_FRAGMENT;
			hlen = 8;
		} else {
			if (!has(pk, *off, 2))
				return false;
			*nh = pk->p[*off];
			hlen = ((size_t)pk->p[*off + 1] + 1) * 8;
		}
		*off += hlen;
		if (key->flags & PKTKEY_F_FRAGMENT)
			return true;
	}
	return !ipv6_is_exthdr(*nh);
}

static void dissect_ipv6(const struct pkt *pk, size_t off, struct flow_key *key)
{
	uint8_t nh;

	if (!has(pk, off, 7)) {
		truncated(key);
		return;
	}
	key->ipver = 6;
	nh = pk->p[off + 6];
	take_addr(pk, off + 8, 16, false, key);
	take_addr(pk, off + 24, 16, true, key);
	off += 40;
	if (!ipv6_walk(pk, &off, &nh, key)) {
		truncated(key);
		return;
	}
	key->proto = nh;
	key->flags |= PKTKEY_K_PROTO;
	if (!(key->flags & PKTKEY_F_FRAGMENT))
		take_ports(pk, off, key);
}

/* ARP/RARP: BPF's "host" reads the protocol addresses at these fixed offsets. */
static void dissect_arp(const struct pkt *pk, size_t off, struct flow_key *key)
{
	key->ipver = 4;
	take_addr(pk, off + 14, 4, false, key);
	take_addr(pk, off + 24, 4, true, key);
	if (!(key->flags & (PKTKEY_K_ADDR_A | PKTKEY_K_ADDR_B)))
		key->ipver = 0;
}

static void dissect_l3(const struct pkt *pk, size_t off, uint16_t et, struct flow_key *key)
{
	switch (et) {
	case ET_IPV4:
		dissect_ipv4(pk, off, key);
		break;
	case ET_IPV6:
		dissect_ipv6(pk, off, key);
		break;
	case ET_ARP:
	case ET_RARP:
		dissect_arp(pk, off, key);
		break;
	default:
		break;
	}
}

static bool is_vlan_tpid(uint16_t et)
{
	return et == ET_VLAN || et == ET_QINQ || et == ET_QINQ_OLD;
}

/*
 * The ethertype at off-2 is et; skips VLAN tags, then dissects layer 3.
 * Deeper stacks than PKTKEY_MAX_VLAN keep the TPID as the ethertype.
 */
static void dissect_ethertype(const struct pkt *pk, size_t off, uint16_t et, struct flow_key *key)
{
	while (is_vlan_tpid(et) && key->vlan_count < PKTKEY_MAX_VLAN) {
		/* the id alone is enough for BPF's "vlan N", so take it first */
		if (has(pk, off, 2))
			key->vlan[key->vlan_count++] = be16(pk, off) & 0x0fff;
		if (!has(pk, off, 4)) {
			set_ethertype(key, et);
			truncated(key);
			return;
		}
		et = be16(pk, off + 2);
		off += 4;
	}
	set_ethertype(key, et);
	if (!is_vlan_tpid(et))
		dissect_l3(pk, off, et, key);
}

/* Raw IP: the version nibble says which. */
static void dissect_raw(const struct pkt *pk, size_t off, struct flow_key *key)
{
	if (!has(pk, off, 1)) {
		truncated(key);
		return;
	}
	switch (pk->p[off] >> 4) {
	case 4:
		set_ethertype(key, ET_IPV4);
		dissect_ipv4(pk, off, key);
		break;
	case 6:
		set_ethertype(key, ET_IPV6);
		dissect_ipv6(pk, off, key);
		break;
	default:
		break;
	}
}

/* BSD address family values for IPv4 and the three IPv6 values in use. */
static void dissect_af(const struct pkt *pk, uint32_t af, struct flow_key *key)
{
	switch (af) {
	case 2:
		set_ethertype(key, ET_IPV4);
		dissect_ipv4(pk, 4, key);
		break;
	case 24:
	case 28:
	case 30:
		set_ethertype(key, ET_IPV6);
		dissect_ipv6(pk, 4, key);
		break;
	default:
		break;
	}
}

/* LINKTYPE_NULL: the AF is in the capturing host's byte order; take either. */
static void dissect_null(const struct pkt *pk, struct flow_key *key)
{
	uint32_t af;

	if (!has(pk, 0, 4)) {
		truncated(key);
		return;
	}
	af = be32(pk, 0);
	if (af > 0xffff)
		af = __builtin_bswap32(af);
	dissect_af(pk, af, key);
}

static void dissect_link(const struct pkt *pk, uint32_t linktype, struct flow_key *key)
{
	switch (linktype) {
	case PKTKEY_LT_ETHERNET:
		if (has(pk, 0, 14))
			dissect_ethertype(pk, 14, be16(pk, 12), key);
		else
			truncated(key);
		break;
	case PKTKEY_LT_LINUX_SLL:
		if (has(pk, 0, 16))
			dissect_ethertype(pk, 16, be16(pk, 14), key);
		else
			truncated(key);
		break;
	case PKTKEY_LT_LINUX_SLL2:
		if (has(pk, 0, 20))
			dissect_ethertype(pk, 20, be16(pk, 0), key);
		else if (has(pk, 0, 2)) /* the protocol leads the SLL2 header */
			set_ethertype(key, be16(pk, 0)), truncated(key);
		else
			truncated(key);
		break;
	case PKTKEY_LT_NULL:
		dissect_null(pk, key);
		break;
	case PKTKEY_LT_LOOP:
		if (has(pk, 0, 4))
			dissect_af(pk, be32(pk, 0), key);
		else
			truncated(key);
		break;
	case PKTKEY_LT_RAW:
	case PKTKEY_LT_DLT_RAW12:
	case PKTKEY_LT_DLT_RAW14:
		dissect_raw(pk, 0, key);
		break;
	case PKTKEY_LT_IPV4:
		set_ethertype(key, ET_IPV4);
		dissect_ipv4(pk, 0, key);
		break;
	case PKTKEY_LT_IPV6:
		set_ethertype(key, ET_IPV6);
		dissect_ipv6(pk, 0, key);
		break;
	default:
		break;
	}
}

static void swap_endpoints(struct flow_key *key)
{
	uint8_t t[16];
	uint16_t p = key->port_a;
	uint16_t f = key->flags;

	memcpy(t, key->addr_a, 16);
	memcpy(key->addr_a, key->addr_b, 16);
	memcpy(key->addr_b, t, 16);
	key->port_a = key->port_b;
	key->port_b = p;
	f &= (uint16_t) ~(PKTKEY_K_PORT_A | PKTKEY_K_PORT_B);
	if (key->flags & PKTKEY_K_PORT_A)
		f |= PKTKEY_K_PORT_B;
	if (key->flags & PKTKEY_K_PORT_B)
		f |= PKTKEY_K_PORT_A;
	key->flags = f;
}

static uint64_t load_be64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* memcmp order of two 16-byte addresses; inline, as a call per packet
 * showed in profiles. */
static int addr_cmp(const uint8_t *a, const uint8_t *b)
{
	for (int i = 0; i < 16; i += 8) {
		uint64_t x = load_be64(a + i), y = load_be64(b + i);
		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

enum pktkeys_dir pktkeys_extract(uint32_t linktype, const uint8_t *data, size_t caplen,
				 struct flow_key *key)
{
	const struct pkt pk = { .p = data, .len = data ? caplen : 0 };
	int c;

	memset(key, 0, sizeof(*key));
	key->linktype = linktype;
	dissect_link(&pk, linktype, key);
	if (!pktkeys_is_canonical(key))
		return PKTKEYS_A_TO_B;
	c = addr_cmp(key->addr_a, key->addr_b);
	if (c < 0 || (c == 0 && key->port_a <= key->port_b))
		return PKTKEYS_A_TO_B;
	swap_endpoints(key);
	return PKTKEYS_B_TO_A;
}
