/*
 * test_planner.c - the planner: explain strings for each primitive,
 * precedence, qualifier inheritance, ALL for what it does not know, set
 * evaluation, and the superset property against libpcap itself: whenever
 * the compiled filter accepts a generated packet, plan_match_key must
 * accept that packet's flow key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filter.h"
#include "pktkeys.h"
#include "planner.h"

static void expect_plan(const char *expr, const char *want)
{
	struct plan *p = NULL;
	char buf[512];

	assert_int_equal(planner_parse(expr, &p), 0);
	plan_explain(p, buf, sizeof(buf));
	if (strcmp(buf, want))
		fail_msg("'%s' planned as '%s', want '%s'", expr, buf, want);
	plan_free(p);
}

static void test_primitives(void **state)
{
	(void)state;
	expect_plan("host 10.0.0.1", "ip4 10.0.0.1");
	expect_plan("src host 10.0.0.1", "ip4 10.0.0.1");
	expect_plan("dst host 2001:db8::1", "ip6 2001:db8::1");
	expect_plan("ip host 10.0.0.1", "ip4 10.0.0.1");
	expect_plan("net 10.0.0.0/8", "net4 10.0.0.0/8");
	expect_plan("net 192.168 ", "net4 192.168.0.0/16");
	expect_plan("net 10", "net4 10.0.0.0/8");
	expect_plan("host 10.1", "net4 10.1.0.0/16");
	expect_plan("net 172.16.0.0 mask 255.240.0.0", "net4 172.16.0.0/12");
	expect_plan("src net 2001:db8::/32", "net6 2001:db8::/32");
	expect_plan("port 80", "port 80");
	expect_plan("src port 53", "port 53");
	expect_plan("tcp port 443", "tcpport 443");
	expect_plan("udp dst port 53", "udpport 53");
	expect_plan("sctp port 9", "sctpport 9");
	expect_plan("portrange 1000-2000", "port 1000-2000");
	expect_plan("tcp src portrange 2000-1000", "tcpport 1000-2000");
	expect_plan("tcp", "proto 6");
	expect_plan("udp", "proto 17");
	expect_plan("sctp", "proto 132");
	expect_plan("icmp", "proto 1");
	expect_plan("icmp6", "proto 58");
	expect_plan("ip", "ethertype 0x0800");
	expect_plan("ip6", "ethertype 0x86dd");
	expect_plan("arp", "ethertype 0x0806");
	expect_plan("proto 47", "proto 47");
	expect_plan("ip proto \\tcp", "proto 6");
	expect_plan("ip6 proto 17", "proto 17");
	expect_plan("ether proto 0x88cc", "ethertype 0x88cc");
	expect_plan("ether proto \\arp", "ethertype 0x0806");
	expect_plan("vlan", "vlan");
	expect_plan("vlan 100", "vlan 100");
	expect_plan("src or dst port 80", "port 80");
	expect_plan("host (10.0.0.1 or 10.0.0.2)", "ip4 10.0.0.1 OR ip4 10.0.0.2");
}

static void test_precedence(void **state)
{
	(void)state;
	/* libpcap: and/or equal precedence, left associative */
	expect_plan("tcp or udp and port 53", "(proto 6 OR proto 17) AND port 53");
	expect_plan("port 53 and tcp or udp", "(port 53 AND proto 6) OR proto 17");
	expect_plan("tcp or (udp and port 53)", "proto 6 OR (proto 17 AND port 53)");
	expect_plan("host 10.0.0.1 && tcp port 443 || host 10.0.0.2",
		    "(ip4 10.0.0.1 AND tcpport 443) OR ip4 10.0.0.2");
	expect_plan("((tcp))", "proto 6");
}

static void test_inheritance(void **state)
{
	(void)state;
	expect_plan("host 1.2.3.4 or 5.6.7.8", "ip4 1.2.3.4 OR ip4 5.6.7.8");
	expect_plan("port 80 or 443", "port 80 OR port 443");
	expect_plan("tcp port 80 or 443 or 8080", "tcpport 80 OR tcpport 443 OR tcpport 8080");
	expect_plan("net 10.0.0.0/8 or 192.168.0.0/16", "net4 10.0.0.0/8 OR net4 192.168.0.0/16");
	expect_plan("host 1.1.1.1 and not 2.2.2.2", "ip4 1.1.1.1");
	expect_plan("host 1.1.1.1 or (2.2.2.2 or 3.3.3.3)",
		    "ip4 1.1.1.1 OR ip4 2.2.2.2 OR ip4 3.3.3.3");
	/* "( expr )" keeps the qualifier from before the parenthesis */
	expect_plan("host 1.1.1.1 and (port 80) or 2.2.2.2",
		    "(ip4 1.1.1.1 AND port 80) OR ip4 2.2.2.2");
	expect_plan("tcp and 80", "proto 6"); /* 80 has no qualifier: ALL */
}

static void test_unknown_and_not(void **state)
{
	(void)state;
	expect_plan("", "ALL");
	expect_plan("tcp[13] & 2 != 0", "ALL");
	expect_plan("tcp[tcpflags] & (tcp-syn|tcp-ack) != 0 and port 80", "port 80");
	expect_plan("len > 100 and host 10.0.0.1", "ip4 10.0.0.1");
	expect_plan("greater 100 or tcp", "ALL");
	expect_plan("host example.com", "ALL");
	expect_plan("ether host 00:11:22:33:44:55 and udp", "proto 17");
	expect_plan("gateway foo", "ALL");
	expect_plan("not tcp", "ALL");
	expect_plan("! host 10.0.0.1 and udp", "proto 17");
	expect_plan("tcp and not port 22", "proto 6");
	expect_plan("port http_unknown_name_xyz", "ALL");
	expect_plan("ip6 proto 0", "ALL");
	expect_plan("ether proto 0x8100", "ALL");
	expect_plan("ether proto 0x42", "ALL");
	expect_plan("((((", "ALL");
	expect_plan("host", "ALL");
	expect_plan("tcp )", "ALL");
	expect_plan("mpls and host 10.0.0.1", "ALL");
	/* vlan shifts later terms: kept only when the tags are guaranteed */
	expect_plan("vlan 10 and host 10.0.0.1", "vlan 10 AND ip4 10.0.0.1");
	expect_plan("vlan or host 10.0.0.1", "ALL");
	expect_plan("host 10.0.0.1 or vlan", "ip4 10.0.0.1 OR vlan");
	expect_plan("vlan and vlan 20 and tcp", "vlan AND vlan 20 AND proto 6");
	expect_plan("(vlan or tcp) and host 10.0.0.1", "ALL");
	expect_plan("vlan and vlan and vlan 30", "vlan AND vlan AND vlan");
	expect_plan("vlan and vlan and vlan and tcp", "vlan AND vlan AND vlan");
}

static void test_parse_big_input(void **state)
{
	size_t n = 200000;
	char *s = malloc(n + 1);
	struct plan *p;

	(void)state;
	memset(s, '(', n);
	s[n] = '\0';
	assert_int_equal(planner_parse(s, &p), 0);
	assert_true(plan_is_all(p));
	plan_free(p);
	for (size_t i = 0; i + 8 < n; i += 8)
		memcpy(s + i, "tcp or ", 7), s[i + 7] = ' ';
	memcpy(s + n - 8, "udp     ", 8);
	assert_int_equal(planner_parse(s, &p), 0);
	assert_true(plan_is_all(p));
	plan_free(p);
	free(s);
}

/* ---- evaluation with an in-memory index ---- */

struct fake_index {
	struct flow_key keys[8];
	size_t n;
	int lookups;
};

static int fake_lookup(void *opaque, const struct plan_term *t, struct plan_ids *out)
{
	struct fake_index *fi = opaque;

	fi->lookups++;
	for (size_t i = fi->n; i-- > 0;) /* unsorted on purpose */
		if (plan_term_match_key(t, &fi->keys[i]) && plan_ids_push(out, i + 1) < 0)
			return -ENOMEM;
	return 0;
}

static const struct plan_lookup_ops fake_ops = { .lookup = fake_lookup };

static void add_v4(struct fake_index *fi, const char *a, const char *b, uint8_t proto,
		   uint16_t pa, uint16_t pb)
{
	struct flow_key *k = &fi->keys[fi->n++];

	memset(k, 0, sizeof(*k));
	k->linktype = 1;
	k->ipver = 4;
	k->proto = proto;
	k->ethertype = 0x0800;
	k->port_a = pa;
	k->port_b = pb;
	k->flags = PKTKEY_K_ETHERTYPE | PKTKEY_K_PROTO | PKTKEY_K_ADDR_A | PKTKEY_K_ADDR_B |
		   PKTKEY_K_PORT_A | PKTKEY_K_PORT_B;
	sscanf(a, "%hhu.%hhu.%hhu.%hhu", &k->addr_a[0], &k->addr_a[1], &k->addr_a[2], &k->addr_a[3]);
	sscanf(b, "%hhu.%hhu.%hhu.%hhu", &k->addr_b[0], &k->addr_b[1], &k->addr_b[2], &k->addr_b[3]);
}

static void eval_expect(struct fake_index *fi, const char *expr, int want_r, const char *want)
{
	struct plan *p;
	struct plan_ids ids = { 0 };
	char got[128] = "";
	size_t off = 0;
	int r;

	assert_int_equal(planner_parse(expr, &p), 0);
	r = plan_eval(p, &fake_ops, fi, &ids);
	assert_int_equal(r, want_r);
	for (size_t i = 0; i < ids.n; i++)
		off += (size_t)snprintf(got + off, sizeof(got) - off, "%s%llu", i ? "," : "",
					(unsigned long long)ids.ids[i]);
	if (strcmp(got, want))
		fail_msg("'%s' gave {%s}, want {%s}", expr, got, want);
	plan_ids_release(&ids);
	plan_free(p);
}

static void test_eval(void **state)
{
	struct fake_index fi = { 0 };

	(void)state;
	add_v4(&fi, "10.0.0.1", "10.0.0.2", 6, 1234, 443);
	add_v4(&fi, "10.0.0.1", "10.0.0.3", 17, 53, 5353);
	add_v4(&fi, "10.0.0.4", "192.168.1.1", 6, 80, 40000);
	add_v4(&fi, "10.0.0.5", "10.0.0.6", 1, 0, 0);
	eval_expect(&fi, "host 10.0.0.1", 0, "1,2");
	eval_expect(&fi, "host 10.0.0.1 and tcp", 0, "1");
	eval_expect(&fi, "tcp port 443 or udp port 53", 0, "1,2");
	eval_expect(&fi, "net 192.168.0.0/16 or icmp", 0, "3,4");
	eval_expect(&fi, "portrange 400-500 and host 10.0.0.2", 0, "1");
	eval_expect(&fi, "not tcp", PLAN_EVAL_ALL, "");
	eval_expect(&fi, "len > 10 and port 80", 0, "3");
	fi.lookups = 0;
	eval_expect(&fi, "host 1.2.3.4 and port 80", 0, "");
	assert_int_equal(fi.lookups, 1); /* empty left side skips the right */
}

/* ---- superset property against libpcap ---- */

struct spec {
	uint32_t lt;
	int nvlan;
	uint16_t vlan[3];
	int kind; /* 4, 6, 'a' (ARP), 0 (other ethertype) */
	uint8_t proto;
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	int frag;   /* 0 none, 1 first, 2 later */
	int ext;    /* IPv6 hop-by-hop headers before the rest */
	int swapnull;
};

static size_t put16(uint8_t *b, size_t o, uint16_t v)
{
	b[o] = (uint8_t)(v >> 8);
	b[o + 1] = (uint8_t)v;
	return o + 2;
}

static size_t build_l4(uint8_t *b, size_t o, const struct spec *s)
{
	o = put16(b, o, s->sport);
	o = put16(b, o, s->dport);
	memset(b + o, 0, 16);
	return o + 16;
}

static size_t build_ip4(uint8_t *b, size_t o, const struct spec *s)
{
	memset(b + o, 0, 20);
	b[o] = 0x45;
	put16(b, o + 2, 60);
	put16(b, o + 6, s->frag == 2 ? 100 : s->frag == 1 ? 0x2000 : 0);
	b[o + 8] = 64;
	b[o + 9] = s->proto;
	memcpy(b + o + 12, s->src, 4);
	memcpy(b + o + 16, s->dst, 4);
	return build_l4(b, o + 20, s);
}

static size_t build_ip6(uint8_t *b, size_t o, const struct spec *s)
{
	size_t h = o;

	memset(b + o, 0, 40);
	b[o] = 0x60;
	b[o + 7] = 64;
	memcpy(b + o + 8, s->src, 16);
	memcpy(b + o + 24, s->dst, 16);
	o += 40;
	uint8_t *nh = &b[h + 6];
	for (int i = 0; i < s->ext; i++) {
		*nh = 0; /* hop-by-hop (60/43 behave the same for the walk) */
		memset(b + o, 0, 8);
		nh = &b[o];
		o += 8;
	}
	if (s->frag) {
		*nh = 44;
		memset(b + o, 0, 8);
		nh = &b[o];
		put16(b, o + 2, s->frag == 2 ? 0x0100 : 0x0001);
		o += 8;
	}
	*nh = s->proto;
	return build_l4(b, o, s);
}

static size_t build_l3(uint8_t *b, size_t o, const struct spec *s)
{
	switch (s->kind) {
	case 4:
		return build_ip4(b, o, s);
	case 6:
		return build_ip6(b, o, s);
	case 'a':
		memset(b + o, 0, 28);
		put16(b, o, 1);
		put16(b, o + 2, 0x0800);
		b[o + 4] = 6;
		b[o + 5] = 4;
		memcpy(b + o + 14, s->src, 4);
		memcpy(b + o + 24, s->dst, 4);
		return o + 28;
	default:
		memset(b + o, 0xab, 30);
		return o + 30;
	}
}

static uint16_t spec_ethertype(const struct spec *s)
{
	return s->kind == 4 ? 0x0800 : s->kind == 6 ? 0x86dd : s->kind == 'a' ? 0x0806 : 0x88cc;
}

static size_t build_eth_payload(uint8_t *b, size_t o, const struct spec *s)
{
	for (int i = 0; i < s->nvlan; i++) {
		o = put16(b, o, i == 0 && s->nvlan > 1 ? 0x88a8 : 0x8100);
		o = put16(b, o, s->vlan[i]);
	}
	o = put16(b, o, spec_ethertype(s));
	return build_l3(b, o, s);
}

static size_t build(uint8_t *b, const struct spec *s)
{
	uint32_t af = s->kind == 6 ? 30 : 2;

	switch (s->lt) {
	case 1:
		memset(b, 0x02, 12);
		return build_eth_payload(b, 12, s);
	case 113:
		memset(b, 0, 14);
		return build_eth_payload(b, 14, s);
	case 276:
		memset(b, 0, 20);
		put16(b, 0, spec_ethertype(s));
		return build_l3(b, 20, s);
	case 0:
		if (s->swapnull)
			af = __builtin_bswap32(af);
		memcpy(b, &af, 4);
		return build_l3(b, 4, s);
	case 108:
		put16(b, 0, 0);
		put16(b, 2, (uint16_t)af);
		return build_l3(b, 4, s);
	default: /* 101 */
		return build_l3(b, 0, s);
	}
}

static uint32_t rnd(uint64_t *st, uint32_t n)
{
	*st = *st * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*st >> 33) % n;
}

static void random_spec(uint64_t *st, struct spec *s)
{
	static const uint32_t lts[] = { 1, 1, 1, 113, 276, 0, 108, 101 };
	static const uint8_t protos[] = { 6, 6, 17, 17, 132, 1, 58, 47 };
	static const uint16_t ports[] = { 22, 53, 80, 443, 1000, 1500, 2000, 8080 };
	static const uint16_t vlans[] = { 10, 20, 30 };
	static const char *const a4[] = { "\x0a\x00\x00\x01", "\x0a\x00\x00\x02",
					  "\xc0\xa8\x01\x01", "\xac\x10\x05\x05" };
	static const uint8_t a6[][16] = {
		{ 0x20, 0x01, 0x0d, 0xb8, [15] = 1 },
		{ 0x20, 0x01, 0x0d, 0xb8, [15] = 2 },
		{ 0xfe, 0x80, [15] = 9 },
	};

	memset(s, 0, sizeof(*s));
	s->lt = lts[rnd(st, 8)];
	s->nvlan = (s->lt == 1 || s->lt == 113) ? (int)rnd(st, 4) : 0;
	for (int i = 0; i < s->nvlan; i++)
		s->vlan[i] = vlans[rnd(st, 3)];
	s->kind = (int[]){ 4, 4, 6, 6, 'a', 0 }[rnd(st, 6)];
	if (s->lt != 1 && s->lt != 113 && s->lt != 276 && (s->kind == 'a' || s->kind == 0))
		s->kind = 4;
	s->proto = protos[rnd(st, 8)];
	s->sport = ports[rnd(st, 8)];
	s->dport = ports[rnd(st, 8)];
	s->frag = rnd(st, 5) == 0 ? 1 + (int)rnd(st, 2) : 0;
	s->ext = s->kind == 6 ? (int)rnd(st, 3) / 2 : 0;
	s->swapnull = (int)rnd(st, 2);
	if (s->kind == 6) {
		memcpy(s->src, a6[rnd(st, 3)], 16);
		memcpy(s->dst, a6[rnd(st, 3)], 16);
	} else {
		memcpy(s->src, a4[rnd(st, 4)], 4);
		memcpy(s->dst, a4[rnd(st, 4)], 4);
	}
}

static const char *const superset_exprs[] = {
	"host 10.0.0.1", "src host 10.0.0.2", "dst host 192.168.1.1", "host 2001:db8::1",
	"net 10.0.0.0/24", "net 192.168", "net 2001:db8::/32", "net 172.16.0.0 mask 255.240.0.0",
	"port 80", "src port 443", "tcp port 22", "udp port 53", "sctp port 8080",
	"portrange 1000-2000", "tcp dst portrange 50-100", "tcp", "udp", "sctp", "icmp", "icmp6",
	"ip", "ip6", "arp", "proto 47", "ip proto \\udp", "ip6 proto 6", "ether proto 0x88cc",
	"vlan", "vlan 10", "vlan 20 and host 10.0.0.1", "vlan and vlan 30 and port 80",
	"vlan or host 10.0.0.1", "vlan and (tcp or udp)", "(vlan 10 or vlan 20) and ip6",
	"host 10.0.0.1 or 10.0.0.2 and port 80 or 443", "tcp or udp and port 53",
	"not tcp", "not host 10.0.0.1 and udp", "arp host 10.0.0.2", "ip host 172.16.5.5",
	"tcp[13] & 2 != 0 or port 22", "len > 40 and icmp", "host 10.0.0.1 and (port 80 or 22)",
	"ip6 and not ip6 proto 58", "ether proto \\ip6", "vlan and vlan and ip",
	"udp portrange 0-100 or tcp src port 1500", "icmp or icmp6 or arp",
};

static void check_superset(struct filter_set *const *fsets, struct plan *const *plans,
			   const struct spec *s, int *matches)
{
	uint8_t pkt[256];
	size_t len = build(pkt, s);

	for (size_t cut = len; cut + 1 > 0; cut = cut > 8 ? cut - 7 : cut - 1) {
		struct flow_key key;

		pktkeys_extract(s->lt, pkt, cut, &key);
		for (size_t e = 0; e < sizeof(superset_exprs) / sizeof(*superset_exprs); e++) {
			int m = filter_set_match(fsets[e], s->lt, (uint32_t)cut, (uint32_t)len, pkt,
						 NULL);
			if (m <= 0)
				continue;
			(*matches)++;
			if (!plan_match_key(plans[e], &key))
				fail_msg("'%s' matched a packet (lt %u kind %d vlans %d cut %zu/%zu)"
					 " whose key the plan rejects",
					 superset_exprs[e], s->lt, s->kind, s->nvlan, cut, len);
		}
		if (cut == 0)
			break;
	}
}

static void test_superset_vs_libpcap(void **state)
{
	enum { NE = sizeof(superset_exprs) / sizeof(*superset_exprs) };
	struct filter_set *fsets[NE];
	struct plan *plans[NE];
	uint64_t st = 42;
	int matches = 0;

	(void)state;
	for (size_t e = 0; e < NE; e++) {
		assert_int_equal(filter_set_new(&fsets[e], superset_exprs[e], 0), 0);
		assert_int_equal(planner_parse(superset_exprs[e], &plans[e]), 0);
	}
	for (int i = 0; i < 3000; i++) {
		struct spec s;

		random_spec(&st, &s);
		check_superset(fsets, plans, &s, &matches);
	}
	assert_true(matches > 10000);
	for (size_t e = 0; e < NE; e++) {
		filter_set_free(fsets[e]);
		plan_free(plans[e]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_primitives),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_inheritance),
		cmocka_unit_test(test_unknown_and_not),
		cmocka_unit_test(test_parse_big_input),
		cmocka_unit_test(test_eval),
		cmocka_unit_test(test_superset_vs_libpcap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
