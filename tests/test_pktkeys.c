/*
 * test_pktkeys.c - flow keys from hand-built frames of every supported link
 * type, VLAN/QinQ, IPv6 extension headers and fragments, canonical order,
 * and every truncation length of each frame (run under ASan/UBSan: no read
 * may leave the buffer, which is heap-allocated to the exact caplen).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pktkeys.h"

static const uint8_t ip4_tcp[] = {
	0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
	0x01, 0xbb, 0x04, 0xd2, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0, 0, 0, 0, 0, 0,
};

/* IPv6 with hop-by-hop and dstopts, then UDP 53 -> 5353. */
static const uint8_t ip6_ext_udp[] = {
	0x60, 0, 0, 0, 0, 32, 0, 64,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
	60, 0, 0, 0, 0, 0, 0, 0,        /* hop-by-hop -> dstopts */
	17, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* dstopts (16 bytes) -> udp */
	0, 53, 0x14, 0xe9, 0, 8, 0, 0,
};

/* IPv6 non-first fragment of TCP: no ports. */
static const uint8_t ip6_frag2[] = {
	0x60, 0, 0, 0, 0, 16, 44, 64,
	0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
	0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8,
	6, 0, 0x01, 0x00, 0, 0, 0, 1,
	0, 80, 0, 81, 0, 0, 0, 0,
};

static enum pktkeys_dir extract(uint32_t lt, const uint8_t *hdr, size_t hlen, const uint8_t *l3,
				size_t l3len, struct flow_key *k)
{
	uint8_t *b = malloc(hlen + l3len);
	enum pktkeys_dir d;

	if (hlen)
		memcpy(b, hdr, hlen);
	memcpy(b + hlen, l3, l3len);
	d = pktkeys_extract(lt, b, hlen + l3len, k);
	free(b);
	return d;
}

/* Every prefix of the frame, each in its own exact-size heap buffer. */
static void all_truncations(uint32_t lt, const uint8_t *hdr, size_t hlen, const uint8_t *l3,
			    size_t l3len)
{
	uint8_t *full = malloc(hlen + l3len);
	struct flow_key fk;

	if (hlen)
		memcpy(full, hdr, hlen);
	if (l3len)
		memcpy(full + hlen, l3, l3len);
	pktkeys_extract(lt, full, hlen + l3len, &fk);
	for (size_t cut = 0; cut <= hlen + l3len; cut++) {
		uint8_t *b = malloc(cut ? cut : 1);
		struct flow_key k;

		memcpy(b, full, cut);
		pktkeys_extract(lt, cut ? b : NULL, cut, &k);
		assert_int_equal(k.linktype, lt);
		assert_int_equal(k.pad_, 0);
		/* what a prefix reveals agrees with the whole frame */
		if ((k.flags & PKTKEY_K_ETHERTYPE) && k.ethertype != 0x8100 && k.ethertype != 0x88a8)
			assert_int_equal(k.ethertype, fk.ethertype);
		if (k.flags & PKTKEY_K_PROTO)
			assert_int_equal(k.proto, fk.proto);
		assert_true(k.vlan_count <= fk.vlan_count);
		assert_int_equal(k.flags & ~fk.flags & ~PKTKEY_F_TRUNCATED, 0);
		free(b);
	}
	free(full);
}

static void check_ip4_tcp(const struct flow_key *k, uint32_t lt)
{
	static const uint8_t a[4] = { 10, 0, 0, 1 }, b[4] = { 10, 0, 0, 2 };

	assert_int_equal(k->linktype, lt);
	assert_int_equal(k->ethertype, 0x0800);
	assert_int_equal(k->ipver, 4);
	assert_int_equal(k->proto, 6);
	assert_memory_equal(k->addr_a, a, 4);
	assert_memory_equal(k->addr_b, b, 4);
	assert_int_equal(k->port_a, 1234);
	assert_int_equal(k->port_b, 443);
	assert_true(pktkeys_is_canonical(k));
	assert_false(k->flags & PKTKEY_F_TRUNCATED);
}

static void test_link_types(void **state)
{
	static const uint8_t eth[14] = { [12] = 0x08, [13] = 0x00 };
	static const uint8_t sll[16] = { [14] = 0x08, [15] = 0x00 };
	static const uint8_t sll2[20] = { [0] = 0x08, [1] = 0x00 };
	static const uint8_t null_le[4] = { 2, 0, 0, 0 }, null_be[4] = { 0, 0, 0, 2 };
	static const uint8_t loop[4] = { 0, 0, 0, 2 };
	struct flow_key k;

	(void)state;
	/* src 10.0.0.2:443 -> dst 10.0.0.1:1234: endpoint a is 10.0.0.1 */
	assert_int_equal(extract(1, eth, 14, ip4_tcp, sizeof(ip4_tcp), &k), PKTKEYS_B_TO_A);
	check_ip4_tcp(&k, 1);
	extract(113, sll, 16, ip4_tcp, sizeof(ip4_tcp), &k);
	check_ip4_tcp(&k, 113);
	extract(276, sll2, 20, ip4_tcp, sizeof(ip4_tcp), &k);
	check_ip4_tcp(&k, 276);
	extract(0, null_le, 4, ip4_tcp, sizeof(ip4_tcp), &k);
	check_ip4_tcp(&k, 0);
	extract(0, null_be, 4, ip4_tcp, sizeof(ip4_tcp), &k);
	check_ip4_tcp(&k, 0);
	extract(108, loop, 4, ip4_tcp, sizeof(ip4_tcp), &k);
	check_ip4_tcp(&k, 108);
	static const uint32_t raw[] = { 12, 14, 101, 228 };
	for (size_t i = 0; i < 4; i++) {
		extract(raw[i], NULL, 0, ip4_tcp, sizeof(ip4_tcp), &k);
		check_ip4_tcp(&k, raw[i]);
	}
}

static void test_vlan_qinq(void **state)
{
	static const uint8_t qinq[22] = { [12] = 0x88, [13] = 0xa8, [14] = 0x00, [15] = 100,
					  [16] = 0x81, [17] = 0x00, [18] = 0x20, [19] = 200,
					  [20] = 0x08, [21] = 0x00 };
	static const uint8_t three[26] = { [12] = 0x81, [14] = 0, [15] = 1, [16] = 0x81,
					   [18] = 0, [19] = 2, [20] = 0x81, [22] = 0,
					   [23] = 3, [24] = 0x08 };
	struct flow_key k;

	(void)state;
	extract(1, qinq, 22, ip4_tcp, sizeof(ip4_tcp), &k);
	assert_int_equal(k.vlan_count, 2);
	assert_int_equal(k.vlan[0], 100);
	assert_int_equal(k.vlan[1], 200);
	check_ip4_tcp(&k, 1);
	extract(1, three, 26, ip4_tcp, sizeof(ip4_tcp), &k);
	assert_int_equal(k.vlan_count, 2);
	assert_int_equal(k.ethertype, 0x8100); /* deeper than we record: stop */
	assert_int_equal(k.ipver, 0);
	all_truncations(1, qinq, 22, ip4_tcp, sizeof(ip4_tcp));
	all_truncations(1, three, 26, ip4_tcp, sizeof(ip4_tcp));
}

static void test_ipv6(void **state)
{
	static const uint8_t eth6[14] = { [12] = 0x86, [13] = 0xdd };
	struct flow_key k;

	(void)state;
	assert_int_equal(extract(1, eth6, 14, ip6_ext_udp, sizeof(ip6_ext_udp), &k),
			 PKTKEYS_A_TO_B);
	assert_int_equal(k.ipver, 6);
	assert_int_equal(k.proto, 17);
	assert_int_equal(k.port_a, 53);
	assert_int_equal(k.port_b, 5353);
	assert_int_equal(k.addr_a[15], 1);
	assert_int_equal(k.addr_b[15], 2);
	extract(229, NULL, 0, ip6_frag2, sizeof(ip6_frag2), &k);
	assert_int_equal(k.proto, 6);
	assert_true(k.flags & PKTKEY_F_FRAGMENT);
	assert_false(k.flags & (PKTKEY_K_PORT_A | PKTKEY_K_PORT_B));
	assert_int_equal(k.addr_a[15], 8); /* canonical: lower address first */
	all_truncations(1, eth6, 14, ip6_ext_udp, sizeof(ip6_ext_udp));
	all_truncations(229, NULL, 0, ip6_frag2, sizeof(ip6_frag2));
	all_truncations(101, NULL, 0, ip6_ext_udp, sizeof(ip6_ext_udp));
}

static void test_non_ip_and_arp(void **state)
{
	static const uint8_t lldp[20] = { [12] = 0x88, [13] = 0xcc };
	static const uint8_t arp[42] = { [12] = 0x08, [13] = 0x06, [14] = 0, [15] = 1,
					 [16] = 8, [18] = 6, [19] = 4, [21] = 1,
					 [28] = 10, [29] = 0, [30] = 0, [31] = 9,
					 [38] = 10, [39] = 0, [40] = 0, [41] = 1 };
	struct flow_key k, k2;

	(void)state;
	pktkeys_extract(1, lldp, sizeof(lldp), &k);
	assert_int_equal(k.ethertype, 0x88cc);
	assert_int_equal(k.ipver, 0);
	assert_int_equal(k.flags, PKTKEY_K_ETHERTYPE);
	pktkeys_extract(1, arp, sizeof(arp), &k);
	assert_int_equal(k.ethertype, 0x0806);
	assert_int_equal(k.ipver, 4);
	assert_int_equal(k.addr_a[3], 1);
	assert_int_equal(k.addr_b[3], 9);
	pktkeys_extract(147, arp, sizeof(arp), &k2); /* unknown link type */
	assert_int_equal(k2.linktype, 147);
	assert_int_equal(k2.flags, 0);
	all_truncations(1, arp, 42, NULL, 0);
}

static void test_both_directions_same_key(void **state)
{
	static const uint8_t eth[14] = { [12] = 0x08, [13] = 0x00 };
	uint8_t rev[sizeof(ip4_tcp)];
	struct flow_key k1, k2;

	(void)state;
	memcpy(rev, ip4_tcp, sizeof(rev));
	memcpy(rev + 12, ip4_tcp + 16, 4);
	memcpy(rev + 16, ip4_tcp + 12, 4);
	memcpy(rev + 20, ip4_tcp + 22, 2);
	memcpy(rev + 22, ip4_tcp + 20, 2);
	assert_int_equal(extract(1, eth, 14, ip4_tcp, sizeof(ip4_tcp), &k1), PKTKEYS_B_TO_A);
	assert_int_equal(extract(1, eth, 14, rev, sizeof(rev), &k2), PKTKEYS_A_TO_B);
	assert_memory_equal(&k1, &k2, sizeof(k1));
	all_truncations(0, (const uint8_t[]){ 0, 0, 0, 2 }, 4, ip4_tcp, sizeof(ip4_tcp));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_link_types),
		cmocka_unit_test(test_vlan_qinq),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_non_ip_and_arp),
		cmocka_unit_test(test_both_directions_same_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
