/*
 * planner.h - turns a tcpdump/BPF filter expression into index lookups.
 *
 * The plan is a boolean tree (AND/OR) of posting-key terms whose answer is a
 * SUPERSET of the flows holding packets the real filter matches; the exact
 * answer always comes from libpcap (index/filter.h) run on each candidate
 * (DESIGN.md invariant 4). Parsing never fails on odd input: whatever the
 * planner does not understand becomes ALL (narrows nothing), and only
 * libpcap decides whether an expression is valid.
 *
 * Understood: host, net (N/len, N mask M, partial dotted quads), port,
 * portrange, with src/dst/"src or dst"/"src and dst" and ip/ip6/arp/rarp/
 * tcp/udp/sctp qualifiers; tcp, udp, sctp, icmp, icmp6, igmp, pim, vrrp,
 * carp, ah, esp, ip, ip6, arp, rarp; [ip|ip6] proto N|\name; ether proto
 * N|\ip|\ip6|\arp|\rarp; vlan [ID]; and, &&, or, ||, not, !, parentheses,
 * and tcpdump's qualifier inheritance ("port 80 or 443").
 *
 * Relaxations (all keep the superset property):
 *  - and/or have equal precedence and associate left, as in libpcap's
 *    grammar.y ("%left OR AND"); not binds tightest.
 *  - src/dst are dropped: "src host A" plans as "host A".
 *  - ip/ip6 qualifiers on proto and port are dropped: "ip6 proto 17" plans
 *    as "proto 17", "ip host A" as "host A".
 *  - not X plans as ALL: negation of a superset is not a superset.
 *  - A term that libpcap evaluates at an offset shifted by an earlier
 *    "vlan" keyword is kept only when the expression forces every earlier
 *    vlan tag to be present (e.g. "vlan 10 and host A"); otherwise, and
 *    after any mpls/pppoes/geneve/vxlan/batadv, it is ALL.
 *  - Terms the index cannot answer exactly are ALL: hostnames, MAC
 *    addresses, IPv6 extension-header protocol numbers (0, 43, 44, 60),
 *    ether proto <= 1500 or a VLAN TPID, unknown service names.
 * Simplification: AND with ALL is the other side; OR with ALL is ALL.
 */
#ifndef CAPVAULT_PLANNER_H
#define CAPVAULT_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pktkeys.h"

enum plan_term_kind {
	PLAN_T_IP4,       /* addr[0..3]: either endpoint address */
	PLAN_T_IP4NET,    /* addr[0..3]/prefix */
	PLAN_T_IP6,       /* addr[0..15] */
	PLAN_T_IP6NET,    /* addr/prefix */
	PLAN_T_TCPPORT,   /* either endpoint port in [lo, hi], proto 6 */
	PLAN_T_UDPPORT,   /* ... proto 17 */
	PLAN_T_SCTPPORT,  /* ... proto 132 */
	PLAN_T_PORT,      /* ... proto 6, 17 or 132 */
	PLAN_T_PROTO,     /* IP protocol == value */
	PLAN_T_ETHERTYPE, /* ethertype == value (after VLAN tags) */
	PLAN_T_VLAN,      /* some recorded VLAN id == value */
	PLAN_T_VLAN_ANY,  /* VLAN-tagged */
};

/*
 * One posting-key lookup. Ports are always ranges (lo == hi for "port P",
 * so a lookup is one range scan); nets have their host bits cleared.
 */
struct plan_term {
	enum plan_term_kind kind;
	uint8_t addr[16];
	uint8_t prefix;  /* IP4 32, IP6 128, nets their length */
	uint16_t lo, hi; /* port range */
	uint32_t value;  /* PROTO, ETHERTYPE, VLAN */
};

struct plan;

/*
 * Parses expr (NULL or "" means everything) into *out. Returns 0, or
 * -ENOMEM. Never fails on syntax: what it cannot plan is ALL.
 */
int planner_parse(const char *expr, struct plan **out);
struct plan *plan_free(struct plan *p);

/* True when the plan narrows nothing (every flow is a candidate). */
bool plan_is_all(const struct plan *p);

/*
 * Writes a one-line readable form, e.g. "(ip4 10.0.0.1 OR ip4 10.0.0.2)
 * AND tcpport 443", NUL-terminated and truncated to len. Returns the length
 * the full text needs (like snprintf).
 */
size_t plan_explain(const struct plan *p, char *buf, size_t len);

/*
 * The reference meaning of a term: true when the key's KNOWN fields satisfy
 * it (an unknown field never matches). A lookup for a term must return at
 * least every flow whose key satisfies this. The index therefore posts, per
 * flow: ip4/ip6 of each known address (ARP included), the proto when known,
 * tcp/udp/sctp port of each known port under its proto, the ethertype when
 * known, each recorded VLAN id, and "vlan" when tagged or when the
 * ethertype is a VLAN TPID (a tag cut short by the snaplen).
 */
bool plan_term_match_key(const struct plan_term *t, const struct flow_key *key);

/* True when the flow with this key is a candidate of the plan. */
bool plan_match_key(const struct plan *p, const struct flow_key *key);

/* A growable sorted set of flow ids. Zero-initialise; release when done. */
struct plan_ids {
	uint64_t *ids;
	size_t n;
	size_t cap;
};

/* Appends one id. Returns 0 or -ENOMEM. */
int plan_ids_push(struct plan_ids *s, uint64_t id);
void plan_ids_release(struct plan_ids *s);

#define PLAN_LOOKUP_ALL 1
#define PLAN_EVAL_ALL 1

struct plan_lookup_ops {
	/*
	 * Appends (plan_ids_push) the ids of every flow the term may match to
	 * out, which is empty on entry; sorted and unique is fastest but not
	 * required. Returns 0, PLAN_LOOKUP_ALL when the term cannot narrow
	 * (e.g. too many postings), or a negative errno.
	 */
	int (*lookup)(void *opaque, const struct plan_term *term, struct plan_ids *out);
};

/*
 * Runs the plan: leaves are looked up, AND intersects, OR unites, with
 * short-cuts (an empty left side of AND skips the right). Returns 0 with
 * the sorted, deduplicated candidate flow ids in *out (zero-initialised by
 * the caller, released by the caller); PLAN_EVAL_ALL when nothing narrows
 * (out empty); or the lookup's negative errno / -ENOMEM.
 */
int plan_eval(const struct plan *p, const struct plan_lookup_ops *ops, void *opaque,
	      struct plan_ids *out);

#endif
