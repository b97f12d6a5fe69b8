/*
 * planner.c - BPF subset parser, plan simplification, explain and evaluation
 * (see planner.h for what is understood and which relaxations are made).
 *
 * The parser is a small recursive-descent copy of the shape of libpcap's
 * grammar.y: expr = term { (and|or) term } left-associative with equal
 * precedence, term = not term | ( expr ) | primitive. Its one promise is
 * the superset property, so every doubt turns into an ALL node rather than
 * a guess; a syntax error anywhere makes the whole plan ALL.
 */
#include "planner.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Inputs beyond these limits plan as ALL instead of recursing deeply. */
#define MAX_DEPTH 128
#define MAX_NODES 2048
/* Shift added by keywords after which we cannot follow offsets at all. */
#define SHIFT_LOST 1000

enum node_op { N_ALL, N_TERM, N_AND, N_OR };

struct node {
	enum node_op op;
	int shift; /* leaves: vlan keywords lexically before this one */
	struct plan_term t;
	struct node *l, *r;
};

struct plan {
	struct node *root;
};

/* ---- lexer ---- */

enum tok { T_END, T_LP, T_RP, T_NOT, T_AND, T_OR, T_WORD };

struct token {
	enum tok type;
	char w[128];
};

static bool word_ends(const char *s)
{
	return *s == '\0' || isspace((unsigned char)*s) || *s == '(' || *s == ')' ||
	       (*s == '!' && s[1] != '=') || (*s == '&' && s[1] == '&') ||
	       (*s == '|' && s[1] == '|');
}

static void classify_word(struct token *t)
{
	if (!strcmp(t->w, "and") || !strcmp(t->w, "AND"))
		t->type = T_AND;
	else if (!strcmp(t->w, "or") || !strcmp(t->w, "OR"))
		t->type = T_OR;
	else if (!strcmp(t->w, "not") || !strcmp(t->w, "NOT"))
		t->type = T_NOT;
}

/* Reads one token at *pos and advances; T_END does not advance. */
static void lex(const char **pos, struct token *t)
{
	const char *s = *pos;
	size_t n = 0;

	while (isspace((unsigned char)*s))
		s++;
	t->w[0] = '\0';
	t->type = T_WORD;
	if (*s == '\0')
		t->type = T_END;
	else if (*s == '(' || *s == ')' || (*s == '!' && s[1] != '='))
		t->type = *s == '(' ? T_LP : *s == ')' ? T_RP : T_NOT, s++;
	else if ((*s == '&' && s[1] == '&') || (*s == '|' && s[1] == '|'))
		t->type = *s == '&' ? T_AND : T_OR, s += 2;
	else {
		for (; !word_ends(s); s++)
			if (n < sizeof(t->w) - 1)
				t->w[n++] = *s;
		t->w[n] = '\0';
		classify_word(t);
	}
	*pos = s;
}

/* ---- parser state and nodes ---- */

enum pq { PQ_DEFAULT, PQ_IP, PQ_IP6, PQ_ARP, PQ_RARP, PQ_TCP, PQ_UDP, PQ_SCTP, PQ_OTHER };
enum aq { AQ_DEFAULT, AQ_HOST, AQ_NET, AQ_PORT, AQ_PORTRANGE, AQ_PROTO };

/* The qualifier a bare id inherits ("port 80 or 443"); !valid after a
 * primitive without one (libpcap's qerr). */
struct qual {
	bool valid;
	enum pq pq;
	enum aq aq;
};

struct parser {
	const char *pos;
	struct qual q;
	int shift;
	int depth;
	int nodes;
	bool nomem;
	bool syntax;
};

static void peek(const struct parser *ps, struct token *t)
{
	const char *s = ps->pos;

	lex(&s, t);
}

static void node_free(struct node *n)
{
	if (!n)
		return;
	node_free(n->l);
	node_free(n->r);
	free(n);
}

static struct node *mk_node(struct parser *ps, enum node_op op)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n) {
		ps->nomem = true;
		return NULL;
	}
	n->op = op;
	n->shift = ps->shift;
	if (++ps->nodes > MAX_NODES)
		ps->syntax = true;
	return n;
}

static struct node *mk_all(struct parser *ps)
{
	return mk_node(ps, N_ALL);
}

static struct node *mk_term(struct parser *ps, const struct plan_term *t)
{
	struct node *n = mk_node(ps, N_TERM);

	if (n)
		n->t = *t;
	return n;
}

static struct node *mk_bin(struct parser *ps, enum node_op op, struct node *l, struct node *r)
{
	struct node *n = (l && r) ? mk_node(ps, op) : NULL;

	if (!n) {
		node_free(l);
		node_free(r);
		return NULL;
	}
	n->l = l;
	n->r = r;
	return n;
}

/* Skips the rest of a primitive we do not understand ("len > 100",
 * "tcp[tcpflags] & (tcp-syn) != 0"), up to the next and/or at its level. */
static void absorb(struct parser *ps)
{
	int depth = 0;
	struct token t;

	for (;;) {
		peek(ps, &t);
		if (t.type == T_END || (depth == 0 && (t.type == T_AND || t.type == T_OR ||
						       t.type == T_RP)))
			return;
		lex(&ps->pos, &t);
		depth += t.type == T_LP ? 1 : t.type == T_RP ? -1 : 0;
	}
}

static struct node *unknown(struct parser *ps)
{
	absorb(ps);
	ps->q.valid = false;
	return mk_all(ps);
}

/* ---- values ---- */

static bool parse_u32(const char *s, uint32_t *v)
{
	char *end;
	unsigned long x;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	x = strtoul(s, &end, 0);
	if (errno || *end || x > UINT32_MAX)
		return false;
	*v = (uint32_t)x;
	return true;
}

/* libpcap's __pcap_atoin: 1-4 dotted decimal parts; *bits = 8 * parts. */
static bool parse_dotted(const char *s, uint32_t *v, int *bits)
{
	uint32_t acc = 0;
	int parts = 0;

	while (parts < 4) {
		uint32_t part = 0;
		int digits = 0;

		for (; isdigit((unsigned char)*s) && digits < 4; s++, digits++)
			part = part * 10 + (uint32_t)(*s - '0');
		if (digits == 0 || digits == 4 || part > 255)
			return false;
		acc = acc << 8 | part;
		parts++;
		if (*s == '\0')
			break;
		if (*s++ != '.')
			return false;
	}
	if (*s != '\0')
		return false;
	*v = acc;
	*bits = parts * 8;
	return true;
}

static int prefix_of_mask(uint32_t m)
{
	int p = __builtin_popcount(m);

	return (p == 0 ? m == 0 : m == (0xffffffffu << (32 - p))) ? p : -1;
}

static void v4_term(struct plan_term *t, uint32_t v, int prefix)
{
	uint32_t m = prefix ? 0xffffffffu << (32 - prefix) : 0;

	memset(t, 0, sizeof(*t));
	t->kind = prefix == 32 ? PLAN_T_IP4 : PLAN_T_IP4NET;
	t->prefix = (uint8_t)prefix;
	v &= m;
	t->addr[0] = (uint8_t)(v >> 24);
	t->addr[1] = (uint8_t)(v >> 16);
	t->addr[2] = (uint8_t)(v >> 8);
	t->addr[3] = (uint8_t)v;
}

static bool v6_term(struct plan_term *t, const char *s)
{
	char a[INET6_ADDRSTRLEN + 8];
	char *slash;
	uint32_t prefix = 128;

	snprintf(a, sizeof(a), "%s", s);
	slash = strchr(a, '/');
	if (slash) {
		*slash = '\0';
		if (!parse_u32(slash + 1, &prefix) || prefix > 128)
			return false;
	}
	memset(t, 0, sizeof(*t));
	if (inet_pton(AF_INET6, a, t->addr) != 1)
		return false;
	for (unsigned i = prefix; i < 128; i++)
		t->addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
	t->kind = prefix == 128 ? PLAN_T_IP6 : PLAN_T_IP6NET;
	t->prefix = (uint8_t)prefix;
	return true;
}

/*
 * IPv4 value of host/net, following libpcap's gen_ncode/gen_mcode: a dotted
 * value with fewer than 4 parts is promoted to a prefix; a bare number is a
 * full address for host and a promoted net number for net.
 */
static bool v4_value(struct plan_term *t, enum aq aq, const char *s, const char *mask)
{
	char a[64];
	char *slash;
	uint32_t v, len;
	int bits, mbits;

	snprintf(a, sizeof(a), "%s", s);
	slash = strchr(a, '/');
	if (slash)
		*slash = '\0';
	if (!strchr(a, '.')) {
		if (slash || mask || !parse_u32(a, &v))
			return false;
		for (bits = 32; aq == AQ_NET && v && !(v & 0xff000000u); bits -= 8)
			v <<= 8;
		v4_term(t, v, bits);
		return true;
	}
	if (!parse_dotted(a, &v, &bits))
		return false;
	v <<= 32 - bits;
	if (slash) {
		if (!parse_u32(slash + 1, &len) || len > 32)
			return false;
		bits = (int)len;
	} else if (mask) {
		uint32_t m;

		if (!parse_dotted(mask, &m, &mbits) || (bits = prefix_of_mask(m << (32 - mbits))) < 0)
			return false;
	}
	v4_term(t, v, bits);
	return true;
}

static struct node *make_addr(struct parser *ps, struct qual q, const char *s, const char *mask)
{
	struct plan_term t;
	bool ok;

	if (q.pq != PQ_DEFAULT && q.pq != PQ_IP && q.pq != PQ_IP6 && q.pq != PQ_ARP &&
	    q.pq != PQ_RARP)
		return mk_all(ps);
	if (strchr(s, ':'))
		ok = !mask && v6_term(&t, s);
	else
		ok = v4_value(&t, q.aq, s, mask);
	return ok ? mk_term(ps, &t) : mk_all(ps);
}

static bool port_kind(enum pq pq, enum plan_term_kind *k)
{
	switch (pq) {
	case PQ_TCP:
		*k = PLAN_T_TCPPORT;
		return true;
	case PQ_UDP:
		*k = PLAN_T_UDPPORT;
		return true;
	case PQ_SCTP:
		*k = PLAN_T_SCTPPORT;
		return true;
	case PQ_DEFAULT:
	case PQ_IP:
	case PQ_IP6:
		*k = PLAN_T_PORT;
		return true;
	default:
		return false;
	}
}

static struct node *port_leaf(struct parser *ps, enum plan_term_kind k, uint32_t lo, uint32_t hi)
{
	struct plan_term t = { .kind = k, .lo = (uint16_t)lo, .hi = (uint16_t)hi };

	return mk_term(ps, &t);
}

/* A service name: libpcap takes the tcp and the udp (and sctp) entry; we
 * plan the OR of every distinct number found, ALL when there is none. */
static struct node *service_port(struct parser *ps, enum plan_term_kind k, const char *name)
{
	static const char *const protos[] = { "tcp", "udp", "sctp" };
	struct node *res = NULL;
	int seen[3] = { -1, -1, -1 };

	for (int i = 0; i < 3; i++) {
		struct servent se, *sp = NULL;
		char buf[1024];

		if (getservbyname_r(name, protos[i], &se, buf, sizeof(buf), &sp) || !sp)
			continue;
		seen[i] = ntohs((uint16_t)sp->s_port);
		if ((i > 0 && seen[i] == seen[0]) || (i > 1 && seen[i] == seen[1]))
			continue;
		struct node *leaf = port_leaf(ps, k, (uint32_t)seen[i], (uint32_t)seen[i]);
		res = res ? mk_bin(ps, N_OR, res, leaf) : leaf;
		if (!res)
			return NULL;
	}
	return res ? res : mk_all(ps);
}

static struct node *make_port(struct parser *ps, struct qual q, const char *s)
{
	enum plan_term_kind k;
	uint32_t v;

	if (!port_kind(q.pq, &k))
		return mk_all(ps);
	if (parse_u32(s, &v))
		return v <= 65535 ? port_leaf(ps, k, v, v) : mk_all(ps);
	return service_port(ps, k, s);
}

static struct node *make_portrange(struct parser *ps, struct qual q, const char *s)
{
	enum plan_term_kind k;
	char a[64];
	char *dash;
	uint32_t lo, hi;

	snprintf(a, sizeof(a), "%s", s);
	dash = strchr(a, '-');
	if (dash)
		*dash = '\0';
	if (!port_kind(q.pq, &k) || !parse_u32(a, &lo) || (dash && !parse_u32(dash + 1, &hi)))
		return mk_all(ps);
	if (!dash)
		hi = lo;
	if (lo > hi) {
		uint32_t x = lo;
		lo = hi;
		hi = x;
	}
	return hi <= 65535 ? port_leaf(ps, k, lo, hi) : mk_all(ps);
}

static const struct {
	const char *name;
	uint8_t proto;
} ip_protos[] = {
	{ "icmp", 1 }, { "igmp", 2 },   { "tcp", 6 },   { "udp", 17 },   { "gre", 47 },
	{ "esp", 50 }, { "ah", 51 },    { "icmp6", 58 }, { "ospf", 89 }, { "pim", 103 },
	{ "vrrp", 112 }, { "carp", 112 }, { "sctp", 132 },
};

/* IPv6 extension header numbers: BPF sees them where our key walks past. */
static bool proto_plannable(uint32_t v)
{
	return v <= 255 && v != 0 && v != 43 && v != 44 && v != 60;
}

static bool ethertype_plannable(uint32_t v)
{
	return v > 1500 && v <= 0xffff && v != 0x8100 && v != 0x88a8 && v != 0x9100;
}

static bool ether_name(const char *s, uint32_t *v)
{
	if (!strcmp(s, "ip"))
		*v = 0x0800;
	else if (!strcmp(s, "ip6"))
		*v = 0x86dd;
	else if (!strcmp(s, "arp"))
		*v = 0x0806;
	else if (!strcmp(s, "rarp"))
		*v = 0x8035;
	else
		return false;
	return true;
}

static struct node *make_proto(struct parser *ps, struct qual q, const char *s)
{
	struct plan_term t = { .kind = PLAN_T_PROTO };
	bool ok = false;

	if (*s == '\\')
		s++;
	if (q.pq == PQ_OTHER) { /* "ether proto": PQ_OTHER with ether marked below */
		t.kind = PLAN_T_ETHERTYPE;
		ok = (parse_u32(s, &t.value) || ether_name(s, &t.value)) &&
		     ethertype_plannable(t.value);
	} else if (q.pq == PQ_DEFAULT || q.pq == PQ_IP || q.pq == PQ_IP6) {
		ok = parse_u32(s, &t.value);
		for (size_t i = 0; !ok && i < sizeof(ip_protos) / sizeof(ip_protos[0]); i++)
			if (!strcmp(s, ip_protos[i].name))
				t.value = ip_protos[i].proto, ok = true;
		ok = ok && proto_plannable(t.value);
	}
	return ok ? mk_term(ps, &t) : mk_all(ps);
}

static struct node *make_value(struct parser *ps, struct qual q, const char *s, const char *mask)
{
	if (!q.valid)
		return mk_all(ps);
	switch (q.aq) {
	case AQ_DEFAULT:
	case AQ_HOST:
	case AQ_NET:
		return make_addr(ps, q, s, mask);
	case AQ_PORT:
		return mask ? mk_all(ps) : make_port(ps, q, s);
	case AQ_PORTRANGE:
		return mask ? mk_all(ps) : make_portrange(ps, q, s);
	case AQ_PROTO:
		return mask ? mk_all(ps) : make_proto(ps, q, s);
	}
	return mk_all(ps);
}

/* ---- keywords and primitives ---- */

static struct node *parse_expr(struct parser *ps);
static struct node *parse_term(struct parser *ps);

enum kwclass { KW_PNAME, KW_DIR, KW_ADDR, KW_VLAN, KW_LOST };

struct kw {
	const char *name;
	enum kwclass cls;
	int arg; /* pq for KW_PNAME (proto/ethertype below), aq for KW_ADDR */
	enum plan_term_kind kind; /* KW_PNAME alone: PROTO or ETHERTYPE, value */
	uint32_t value;            /* 0 = plans as ALL */
};

static const struct kw keywords[] = {
	{ "ip", KW_PNAME, PQ_IP, PLAN_T_ETHERTYPE, 0x0800 },
	{ "ip6", KW_PNAME, PQ_IP6, PLAN_T_ETHERTYPE, 0x86dd },
	{ "arp", KW_PNAME, PQ_ARP, PLAN_T_ETHERTYPE, 0x0806 },
	{ "rarp", KW_PNAME, PQ_RARP, PLAN_T_ETHERTYPE, 0x8035 },
	{ "tcp", KW_PNAME, PQ_TCP, PLAN_T_PROTO, 6 },
	{ "udp", KW_PNAME, PQ_UDP, PLAN_T_PROTO, 17 },
	{ "sctp", KW_PNAME, PQ_SCTP, PLAN_T_PROTO, 132 },
	{ "icmp", KW_PNAME, PQ_OTHER + 1, PLAN_T_PROTO, 1 },
	{ "icmp6", KW_PNAME, PQ_OTHER + 1, PLAN_T_PROTO, 58 },
	{ "igmp", KW_PNAME, PQ_OTHER + 1, PLAN_T_PROTO, 2 },
	{ "pim", KW_PNAME, PQ_OTHER + 1, PLAN_T_PROTO, 103 },
	{ "vrrp", KW_PNAME, PQ_OTHER + 1, PLAN_T_PROTO, 112 },
	{ "carp", KW_PNAME, PQ_OTHER + 1, PLAN_T_PROTO, 112 },
	{ "ah", KW_PNAME, PQ_OTHER + 1, PLAN_T_PROTO, 51 },
	{ "esp", KW_PNAME, PQ_OTHER + 1, PLAN_T_PROTO, 50 },
	{ "ether", KW_PNAME, PQ_OTHER, PLAN_T_PROTO, 0 },
	{ "src", KW_DIR, 0, PLAN_T_PROTO, 0 },
	{ "dst", KW_DIR, 0, PLAN_T_PROTO, 0 },
	{ "host", KW_ADDR, AQ_HOST, PLAN_T_PROTO, 0 },
	{ "net", KW_ADDR, AQ_NET, PLAN_T_PROTO, 0 },
	{ "port", KW_ADDR, AQ_PORT, PLAN_T_PROTO, 0 },
	{ "portrange", KW_ADDR, AQ_PORTRANGE, PLAN_T_PROTO, 0 },
	{ "proto", KW_ADDR, AQ_PROTO, PLAN_T_PROTO, 0 },
	{ "vlan", KW_VLAN, 0, PLAN_T_VLAN, 0 },
	{ "mpls", KW_LOST, 0, PLAN_T_PROTO, 0 },
	{ "pppoes", KW_LOST, 0, PLAN_T_PROTO, 0 },
	{ "geneve", KW_LOST, 0, PLAN_T_PROTO, 0 },
	{ "vxlan", KW_LOST, 0, PLAN_T_PROTO, 0 },
	{ "batadv", KW_LOST, 0, PLAN_T_PROTO, 0 },
};

static const struct kw *kw_find(const struct token *t)
{
	if (t->type != T_WORD)
		return NULL;
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
		if (!strcmp(t->w, keywords[i].name))
			return &keywords[i];
	return NULL;
}

static bool is_kw(const struct token *t, enum kwclass cls)
{
	const struct kw *k = kw_find(t);

	return k && k->cls == cls;
}

static bool ends_term(const struct token *t)
{
	return t->type == T_END || t->type == T_AND || t->type == T_OR || t->type == T_RP;
}

/* dqual: src, dst, "src or dst", "dst and src", ... (direction is dropped). */
static void skip_dir(struct parser *ps)
{
	struct token t;
	const char *save;

	peek(ps, &t);
	if (!is_kw(&t, KW_DIR))
		return;
	lex(&ps->pos, &t);
	save = ps->pos;
	lex(&ps->pos, &t);
	if (t.type == T_AND || t.type == T_OR) {
		lex(&ps->pos, &t);
		if (is_kw(&t, KW_DIR))
			return;
	}
	ps->pos = save;
}

/* [pname] [dqual] [aqual] value [mask M] */
static struct node *parse_head(struct parser *ps, enum pq pq)
{
	struct qual q = { .valid = true, .pq = pq, .aq = AQ_DEFAULT };
	struct token t, v, m;
	char mask[128];
	bool has_mask = false;

	skip_dir(ps);
	peek(ps, &t);
	if (is_kw(&t, KW_ADDR)) {
		lex(&ps->pos, &t);
		q.aq = (enum aq)kw_find(&t)->arg;
	}
	peek(ps, &v);
	if (v.type == T_NOT || v.type == T_LP) {
		/* "host (A or B)", "host not A": ids inside inherit q */
		struct node *n;

		ps->q = q;
		n = parse_term(ps);
		ps->q = q;
		return n;
	}
	lex(&ps->pos, &v);
	if (v.type != T_WORD || kw_find(&v)) {
		ps->syntax = true;
		return mk_all(ps);
	}
	peek(ps, &m);
	if (m.type == T_WORD && !strcmp(m.w, "mask")) {
		lex(&ps->pos, &m);
		lex(&ps->pos, &m);
		snprintf(mask, sizeof(mask), "%s", m.w);
		has_mask = true;
	}
	ps->q = q;
	return make_value(ps, q, v.w, has_mask ? mask : NULL);
}

static struct node *pname_alone(struct parser *ps, const struct kw *k)
{
	struct plan_term t = { .kind = k->kind, .value = k->value };

	ps->q.valid = false;
	if (k->value == 0)
		return mk_all(ps);
	return mk_term(ps, &t);
}

static struct node *parse_pname(struct parser *ps, const struct kw *k)
{
	struct token t;

	peek(ps, &t);
	if (ends_term(&t))
		return pname_alone(ps, k);
	if ((is_kw(&t, KW_DIR) || is_kw(&t, KW_ADDR)) && k->arg <= PQ_OTHER)
		return parse_head(ps, (enum pq)k->arg);
	return unknown(ps);
}

static struct node *parse_vlan(struct parser *ps)
{
	struct plan_term t = { .kind = PLAN_T_VLAN_ANY };
	struct token v;
	struct node *n;

	peek(ps, &v);
	if (v.type == T_WORD && parse_u32(v.w, &t.value)) {
		lex(&ps->pos, &v);
		t.kind = PLAN_T_VLAN;
	}
	n = t.value <= 4095 ? mk_term(ps, &t) : mk_all(ps);
	ps->shift++;
	ps->q.valid = false;
	return n;
}

/* A word that is no keyword: an id inheriting the last qualifier, or the
 * start of something we do not plan ("len > 100"). */
static struct node *parse_bare(struct parser *ps, const struct token *w)
{
	struct token t;

	peek(ps, &t);
	if (t.type == T_WORD && !strcmp(t.w, "mask")) {
		lex(&ps->pos, &t);
		lex(&ps->pos, &t);
		return make_value(ps, ps->q, w->w, t.type == T_WORD ? t.w : "");
	}
	if (!ends_term(&t))
		return unknown(ps);
	return make_value(ps, ps->q, w->w, NULL);
}

static struct node *parse_primitive(struct parser *ps, const struct token *w)
{
	const struct kw *k = kw_find(w);

	if (!k)
		return parse_bare(ps, w);
	switch (k->cls) {
	case KW_PNAME:
		return parse_pname(ps, k);
	case KW_DIR:
	case KW_ADDR:
		ps->pos -= strlen(w->w); /* let parse_head read the qualifier */
		return parse_head(ps, PQ_DEFAULT);
	case KW_VLAN:
		return parse_vlan(ps);
	case KW_LOST:
		ps->shift += SHIFT_LOST;
		return unknown(ps);
	}
	return unknown(ps);
}

static struct node *parse_term(struct parser *ps)
{
	struct token t;
	struct node *n;
	struct qual saved;

	if (++ps->depth > MAX_DEPTH) {
		ps->syntax = true;
		ps->pos += strlen(ps->pos);
		ps->depth--;
		return mk_all(ps);
	}
	lex(&ps->pos, &t);
	if (t.type == T_NOT) {
		n = parse_term(ps);
		node_free(n); /* not X: a superset of X says nothing about not X */
		n = n ? mk_all(ps) : NULL;
	} else if (t.type == T_LP) {
		saved = ps->q;
		n = parse_expr(ps);
		lex(&ps->pos, &t);
		ps->syntax |= t.type != T_RP;
		ps->q = saved; /* grammar.y: "( expr )" keeps the outer qualifier */
	} else if (t.type == T_WORD) {
		n = parse_primitive(ps, &t);
	} else {
		ps->syntax = true;
		n = mk_all(ps);
	}
	ps->depth--;
	return n;
}

static struct node *parse_expr(struct parser *ps)
{
	struct node *l = parse_term(ps);
	struct token t;

	while (l && !ps->syntax) {
		peek(ps, &t);
		if (t.type != T_AND && t.type != T_OR)
			break;
		lex(&ps->pos, &t);
		l = mk_bin(ps, t.type == T_AND ? N_AND : N_OR, l, parse_term(ps));
	}
	return l;
}

/* ---- post-passes ---- */

/* VLAN depths (bit k: a tag at depth k) that n being true guarantees. */
static uint32_t vlan_required(const struct node *n)
{
	switch (n->op) {
	case N_TERM:
		if ((n->t.kind == PLAN_T_VLAN || n->t.kind == PLAN_T_VLAN_ANY) && n->shift < 32)
			return 1u << n->shift;
		return 0;
	case N_AND:
		return vlan_required(n->l) | vlan_required(n->r);
	case N_OR:
		return vlan_required(n->l) & vlan_required(n->r);
	default:
		return 0;
	}
}

/*
 * libpcap moves every term after a "vlan" keyword 4 bytes further, whatever
 * the boolean structure. A leaf behind s such keywords reads what our keys
 * hold only when tags at depths 0..s-1 are guaranteed (g) by the rest of
 * the expression; otherwise it may read anything and must be ALL.
 */
static void vlan_pass(struct node *n, uint32_t g)
{
	uint32_t need, rl, rr;
	bool is_vlan;

	if (n->op == N_AND || n->op == N_OR) {
		rl = n->op == N_AND ? vlan_required(n->l) : 0;
		rr = n->op == N_AND ? vlan_required(n->r) : 0;
		vlan_pass(n->l, g | rr);
		vlan_pass(n->r, g | rl);
		return;
	}
	if (n->op != N_TERM)
		return;
	is_vlan = n->t.kind == PLAN_T_VLAN || n->t.kind == PLAN_T_VLAN_ANY;
	need = n->shift >= 32 ? UINT32_MAX : (1u << n->shift) - 1;
	if (n->shift >= 32 || (g & need) != need || (!is_vlan && n->shift > PKTKEY_MAX_VLAN))
		n->op = N_ALL;
	else if (is_vlan && n->shift >= PKTKEY_MAX_VLAN)
		n->t.kind = PLAN_T_VLAN_ANY; /* keys record the outer two ids only */
}

static struct node *simplify(struct node *n)
{
	struct node *keep;

	if (n->op != N_AND && n->op != N_OR)
		return n;
	n->l = simplify(n->l);
	n->r = simplify(n->r);
	if (n->l->op != N_ALL && n->r->op != N_ALL)
		return n;
	if (n->op == N_OR) {
		node_free(n->l);
		node_free(n->r);
		n->l = n->r = NULL;
		n->op = N_ALL;
		return n;
	}
	keep = n->l->op == N_ALL ? n->r : n->l;
	node_free(keep == n->l ? n->r : n->l);
	free(n);
	return keep;
}

int planner_parse(const char *expr, struct plan **out)
{
	struct parser ps = { .pos = expr ? expr : "" };
	struct plan *p = calloc(1, sizeof(*p));
	struct node *root;
	struct token t;

	if (!p)
		return -ENOMEM;
	peek(&ps, &t);
	root = t.type == T_END ? mk_all(&ps) : parse_expr(&ps);
	lex(&ps.pos, &t);
	if (root && (ps.syntax || t.type != T_END)) {
		node_free(root);
		root = mk_all(&ps);
	}
	if (!root) {
		free(p);
		return -ENOMEM;
	}
	vlan_pass(root, 0);
	p->root = simplify(root);
	*out = p;
	return 0;
}

struct plan *plan_free(struct plan *p)
{
	if (p) {
		node_free(p->root);
		free(p);
	}
	return NULL;
}

bool plan_is_all(const struct plan *p)
{
	return p->root->op == N_ALL;
}

/* ---- explain ---- */

struct sbuf {
	char *buf;
	size_t len;
	size_t need;
};

__attribute__((format(printf, 2, 3))) static void sb_add(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;
	size_t room = sb->need < sb->len ? sb->len - sb->need : 0;

	va_start(ap, fmt);
	n = vsnprintf(room ? sb->buf + sb->need : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		sb->need += (size_t)n;
}

static void explain_addr(struct sbuf *sb, const struct plan_term *t)
{
	char a[INET6_ADDRSTRLEN];
	bool v6 = t->kind == PLAN_T_IP6 || t->kind == PLAN_T_IP6NET;

	inet_ntop(v6 ? AF_INET6 : AF_INET, t->addr, a, sizeof(a));
	if (t->kind == PLAN_T_IP4 || t->kind == PLAN_T_IP6)
		sb_add(sb, "%s %s", v6 ? "ip6" : "ip4", a);
	else
		sb_add(sb, "%s %s/%u", v6 ? "net6" : "net4", a, t->prefix);
}

static void explain_term(struct sbuf *sb, const struct plan_term *t)
{
	static const char *const port_names[] = {
		[PLAN_T_TCPPORT] = "tcpport",
		[PLAN_T_UDPPORT] = "udpport",
		[PLAN_T_SCTPPORT] = "sctpport",
		[PLAN_T_PORT] = "port",
	};

	switch (t->kind) {
	case PLAN_T_IP4:
	case PLAN_T_IP4NET:
	case PLAN_T_IP6:
	case PLAN_T_IP6NET:
		explain_addr(sb, t);
		break;
	case PLAN_T_TCPPORT:
	case PLAN_T_UDPPORT:
	case PLAN_T_SCTPPORT:
	case PLAN_T_PORT:
		sb_add(sb, "%s %u", port_names[t->kind], t->lo);
		if (t->hi != t->lo)
			sb_add(sb, "-%u", t->hi);
		break;
	case PLAN_T_PROTO:
		sb_add(sb, "proto %u", t->value);
		break;
	case PLAN_T_ETHERTYPE:
		sb_add(sb, "ethertype 0x%04x", t->value);
		break;
	case PLAN_T_VLAN:
		sb_add(sb, "vlan %u", t->value);
		break;
	case PLAN_T_VLAN_ANY:
		sb_add(sb, "vlan");
		break;
	}
}

/* Same-operator chains print flat; a different operator below gets parens. */
static void explain_node(struct sbuf *sb, const struct node *n, enum node_op parent)
{
	bool paren = (n->op == N_AND || n->op == N_OR) && (parent == N_AND || parent == N_OR) &&
		     parent != n->op;

	switch (n->op) {
	case N_ALL:
		sb_add(sb, "ALL");
		return;
	case N_TERM:
		explain_term(sb, &n->t);
		return;
	default:
		break;
	}
	if (paren)
		sb_add(sb, "(");
	explain_node(sb, n->l, n->op);
	sb_add(sb, n->op == N_AND ? " AND " : " OR ");
	explain_node(sb, n->r, n->op);
	if (paren)
		sb_add(sb, ")");
}

size_t plan_explain(const struct plan *p, char *buf, size_t len)
{
	struct sbuf sb = { .buf = buf, .len = len };

	if (buf && len)
		buf[0] = '\0';
	explain_node(&sb, p->root, N_ALL);
	return sb.need;
}

/* ---- key matching (the meaning of a term) ---- */

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, full))
		return false;
	return !rest || ((a[full] ^ b[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

static bool addr_match(const struct plan_term *t, const struct flow_key *k, unsigned ver)
{
	return k->ipver == ver &&
	       (((k->flags & PKTKEY_K_ADDR_A) && prefix_eq(k->addr_a, t->addr, t->prefix)) ||
		((k->flags & PKTKEY_K_ADDR_B) && prefix_eq(k->addr_b, t->addr, t->prefix)));
}

static bool port_match(const struct plan_term *t, const struct flow_key *k)
{
	bool proto_ok;

	if (!(k->flags & PKTKEY_K_PROTO))
		return false;
	switch (t->kind) {
	case PLAN_T_TCPPORT:
		proto_ok = k->proto == 6;
		break;
	case PLAN_T_UDPPORT:
		proto_ok = k->proto == 17;
		break;
	case PLAN_T_SCTPPORT:
		proto_ok = k->proto == 132;
		break;
	default:
		proto_ok = k->proto == 6 || k->proto == 17 || k->proto == 132;
		break;
	}
	return proto_ok &&
	       (((k->flags & PKTKEY_K_PORT_A) && k->port_a >= t->lo && k->port_a <= t->hi) ||
		((k->flags & PKTKEY_K_PORT_B) && k->port_b >= t->lo && k->port_b <= t->hi));
}

static bool vlan_match(const struct plan_term *t, const struct flow_key *k)
{
	uint16_t et = k->ethertype;

	if (t->kind == PLAN_T_VLAN_ANY)
		return k->vlan_count > 0 ||
		       ((k->flags & PKTKEY_K_ETHERTYPE) && (et == 0x8100 || et == 0x88a8 || et == 0x9100));
	for (unsigned i = 0; i < k->vlan_count && i < PKTKEY_MAX_VLAN; i++)
		if (k->vlan[i] == t->value)
			return true;
	return false;
}

bool plan_term_match_key(const struct plan_term *t, const struct flow_key *k)
{
	switch (t->kind) {
	case PLAN_T_IP4:
	case PLAN_T_IP4NET:
		return addr_match(t, k, 4);
	case PLAN_T_IP6:
	case PLAN_T_IP6NET:
		return addr_match(t, k, 6);
	case PLAN_T_TCPPORT:
	case PLAN_T_UDPPORT:
	case PLAN_T_SCTPPORT:
	case PLAN_T_PORT:
		return port_match(t, k);
	case PLAN_T_PROTO:
		return (k->flags & PKTKEY_K_PROTO) && k->proto == t->value;
	case PLAN_T_ETHERTYPE:
		return (k->flags & PKTKEY_K_ETHERTYPE) && k->ethertype == t->value;
	case PLAN_T_VLAN:
	case PLAN_T_VLAN_ANY:
		return vlan_match(t, k);
	}
	return false;
}

static bool node_match(const struct node *n, const struct flow_key *k)
{
	switch (n->op) {
	case N_ALL:
		return true;
	case N_TERM:
		return plan_term_match_key(&n->t, k);
	case N_AND:
		return node_match(n->l, k) && node_match(n->r, k);
	case N_OR:
		return node_match(n->l, k) || node_match(n->r, k);
	}
	return true;
}

bool plan_match_key(const struct plan *p, const struct flow_key *key)
{
	return node_match(p->root, key);
}

/* ---- evaluation ---- */

int plan_ids_push(struct plan_ids *s, uint64_t id)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *ids = realloc(s->ids, cap * sizeof(*ids));

		if (!ids)
			return -ENOMEM;
		s->ids = ids;
		s->cap = cap;
	}
	s->ids[s->n++] = id;
	return 0;
}

void plan_ids_release(struct plan_ids *s)
{
	free(s->ids);
	*s = (struct plan_ids){ 0 };
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Lookups should return sorted unique ids; make sure of it cheaply. */
static void normalize(struct plan_ids *s)
{
	size_t i, w;

	for (i = 1; i < s->n && s->ids[i - 1] < s->ids[i]; i++)
		;
	if (i >= s->n)
		return;
	if (s->n > 1)
		qsort(s->ids, s->n, sizeof(*s->ids), cmp_u64);
	for (i = 1, w = 1; i < s->n; i++)
		if (s->ids[i] != s->ids[w - 1])
			s->ids[w++] = s->ids[i];
	s->n = w;
}

static void intersect(struct plan_ids *a, const struct plan_ids *b)
{
	size_t i = 0, j = 0, w = 0;

	while (i < a->n && j < b->n) {
		if (a->ids[i] < b->ids[j])
			i++;
		else if (a->ids[i] > b->ids[j])
			j++;
		else
			a->ids[w++] = a->ids[i++], j++;
	}
	a->n = w;
}

static int unite(struct plan_ids *a, const struct plan_ids *b)
{
	size_t cap = a->n + b->n + 1;
	uint64_t *m = malloc(cap * sizeof(*m));
	size_t i = 0, j = 0, w = 0;

	if (!m)
		return -ENOMEM;
	while (i < a->n || j < b->n) {
		if (j >= b->n || (i < a->n && a->ids[i] < b->ids[j]))
			m[w++] = a->ids[i++];
		else if (i >= a->n || b->ids[j] < a->ids[i])
			m[w++] = b->ids[j++];
		else
			m[w++] = a->ids[i++], j++;
	}
	free(a->ids);
	a->ids = m;
	a->n = w;
	a->cap = cap;
	return 0;
}

static int eval_node(const struct node *n, const struct plan_lookup_ops *ops, void *opaque,
		     struct plan_ids *out);

/* Combines the left result (rl, in out) with the right subtree. */
static int eval_right(const struct node *n, int rl, const struct plan_lookup_ops *ops,
		      void *opaque, struct plan_ids *out)
{
	struct plan_ids rs = { 0 };
	int rr = eval_node(n->r, ops, opaque, &rs);

	if (rr < 0 || (n->op == N_OR && rr == PLAN_EVAL_ALL)) {
		plan_ids_release(&rs);
		out->n = 0;
		return rr;
	}
	if (n->op == N_AND && rl == PLAN_EVAL_ALL) {
		plan_ids_release(out);
		*out = rs;
		return rr;
	}
	if (n->op == N_AND && rr != PLAN_EVAL_ALL)
		intersect(out, &rs);
	else if (n->op == N_OR)
		rr = unite(out, &rs);
	else
		rr = 0;
	plan_ids_release(&rs);
	return rr;
}

static int eval_node(const struct node *n, const struct plan_lookup_ops *ops, void *opaque,
		     struct plan_ids *out)
{
	int r;

	out->n = 0;
	switch (n->op) {
	case N_ALL:
		return PLAN_EVAL_ALL;
	case N_TERM:
		r = ops->lookup(opaque, &n->t, out);
		if (r == PLAN_LOOKUP_ALL)
			out->n = 0;
		else if (r == 0)
			normalize(out);
		return r < 0 ? r : r ? PLAN_EVAL_ALL : 0;
	default:
		break;
	}
	r = eval_node(n->l, ops, opaque, out);
	if (r < 0 || (n->op == N_AND && r == 0 && out->n == 0) ||
	    (n->op == N_OR && r == PLAN_EVAL_ALL))
		return r;
	return eval_right(n, r, ops, opaque, out);
}

int plan_eval(const struct plan *p, const struct plan_lookup_ops *ops, void *opaque,
	      struct plan_ids *out)
{
	return eval_node(p->root, ops, opaque, out);
}
