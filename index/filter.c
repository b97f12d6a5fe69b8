/*
 * filter.c - libpcap BPF compile and match (see filter.h).
 *
 * Compiling goes through a dead pcap_t of the wanted link type, as tcpdump
 * does for -r with -d. The compiled program runs with pcap_offline_filter,
 * the same interpreter tcpdump -r uses, so matching is exact by construction.
 */
#include "filter.h"

#include <ctype.h>
#include <errno.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct filter {
	struct bpf_program prog;
	int dlt;
	uint32_t linktype; /* as in capture files */
};

struct filter_slot {
	uint32_t linktype;
	struct filter *f;  /* NULL when compiling failed */
	int err;           /* 0 or the cached failure */
	char msg[sizeof(((struct errbuf *)0)->msg)];
};

struct filter_set {
	pthread_mutex_t lock;
	char *expr;
	uint32_t snaplen;
	struct filter_slot *slots;
	size_t nslots;
	size_t cap;
};

/* "and", "or", "&&" or "||" at s (any case, as words). Returns its length or 0. */
static size_t joiner_at(const char *expr, const char *s)
{
	bool start = s == expr || !isalnum((unsigned char)s[-1]);

	if ((s[0] == '&' && s[1] == '&') || (s[0] == '|' && s[1] == '|'))
		return 2;
	if (start && !strncasecmp(s, "and", 3) && !isalnum((unsigned char)s[3]))
		return 3;
	if (start && !strncasecmp(s, "or", 2) && !isalnum((unsigned char)s[2]))
		return 2;
	return 0;
}

int filter_check_size(const char *expr, struct errbuf *eb)
{
	size_t len = expr ? strlen(expr) : 0, terms = 1;

	if (len > FILTER_MAX_BYTES)
		return errbuf_set(eb, -E2BIG, "filter is %zu bytes; at most %u are allowed", len,
				  FILTER_MAX_BYTES);
	for (const char *s = expr; s && *s;) {
		size_t n = joiner_at(expr, s);

		terms += n > 0;
		s += n ? n : 1;
	}
	if (terms > FILTER_MAX_TERMS)
		return errbuf_set(eb, -E2BIG,
				  "filter has %zu terms (primitives joined by and/or); at most %u "
				  "are allowed",
				  terms, FILTER_MAX_TERMS);
	return 0;
}

/*
 * LINKTYPE_* (file) to DLT_* (this host's libpcap) for the values that
 * differ; the rest are equal by definition. 12 and 14 are DLT_RAW on some
 * systems and appear in old files, so both mean raw IP here.
 */
static int linktype_to_dlt(uint32_t lt)
{
	switch (lt) {
	case 12:
	case 14:
	case 101:
		return DLT_RAW;
	case 100:
		return DLT_ATM_RFC1483;
	case 102:
		return DLT_SLIP_BSDOS;
	case 103:
		return DLT_PPP_BSDOS;
	case 106:
		return DLT_ATM_CLIP;
	case 108:
		return DLT_LOOP;
	case 117:
		return DLT_PFLOG;
	default:
		return (int)lt;
	}
}

/*
 * A handle that reads an (empty) savefile of the link type, rather than
 * pcap_open_dead: libpcap's code generator treats savefiles specially (for
 * DLT_NULL/LOOP it accepts every BSD AF_INET6 value, not just the host's),
 * and the answer must be what `tcpdump -r` gives. The header is in host
 * byte order, so the handle is not "swapped".
 */
static pcap_t *open_savefile_handle(uint32_t linktype, uint32_t snaplen)
{
	struct {
		uint32_t magic;
		uint16_t major, minor;
		int32_t zone;
		uint32_t sigfigs, snaplen, linktype;
	} __attribute__((packed)) hdr = { 0xa1b2c3d4u, 2, 4, 0, 0, snaplen, linktype };
	char errbuf[PCAP_ERRBUF_SIZE];
	FILE *fp = fmemopen(NULL, sizeof(hdr), "w+");
	if (!fp)
		return NULL;
	if (fwrite(&hdr, sizeof(hdr), 1, fp) != 1 || fseek(fp, 0, SEEK_SET) != 0) {
		fclose(fp);
		return NULL;
	}
	pcap_t *p = pcap_fopen_offline(fp, errbuf); /* owns fp from here */
	if (!p)
		fclose(fp);
	return p;
}

static int compile(struct filter *f, const char *expr, uint32_t snaplen, struct errbuf *eb)
{
	pcap_t *p = open_savefile_handle(f->linktype, snaplen);
	if (!p)
		p = pcap_open_dead(f->dlt, (int)snaplen);
	int r = 0;

	if (!p)
		return -ENOMEM;
	if (pcap_compile(p, &f->prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0)
		r = errbuf_set(eb, -EINVAL, "%s", pcap_geterr(p));
	pcap_close(p);
	return r;
}

int filter_new(struct filter **out, const char *expr, uint32_t linktype, uint32_t snaplen,
	       struct errbuf *eb)
{
	struct filter *f;
	int r = filter_check_size(expr, eb);

	if (r < 0)
		return r;
	if (!(f = calloc(1, sizeof(*f))))
		return -ENOMEM;
	f->dlt = linktype_to_dlt(linktype);
	f->linktype = linktype;
	if (snaplen == 0)
		snaplen = FILTER_DEFAULT_SNAPLEN;
	r = compile(f, expr ? expr : "", snaplen, eb);
	if (r < 0) {
		free(f);
		return r;
	}
	*out = f;
	return 0;
}

struct filter *filter_free(struct filter *f)
{
	if (f) {
		pcap_freecode(&f->prog);
		free(f);
	}
	return NULL;
}

/*
 * DLT_NULL carries the address family in the capturing host's byte order
 * and tcpdump byte-swaps its comparison for files from the other order. A
 * dead pcap_t cannot say "swapped", so a header that only makes sense
 * swapped (a family above 0xffff) is swapped in a copy instead.
 */
static bool null_header_swapped(int dlt, uint32_t caplen, const uint8_t *data)
{
	uint32_t af;

	if (dlt != DLT_NULL || caplen < 4)
		return false;
	memcpy(&af, data, 4);
	return af > 0xffff;
}

static bool match_swapped_null(const struct filter *f, const struct pcap_pkthdr *h,
			       const uint8_t *data)
{
	uint8_t small[4096];
	uint8_t *copy = h->caplen <= sizeof(small) ? small : malloc(h->caplen);
	uint32_t af;
	bool m;

	if (!copy) /* out of memory: the unswapped answer is the best we have */
		return pcap_offline_filter(&f->prog, h, data) != 0;
	memcpy(copy, data, h->caplen);
	memcpy(&af, copy, 4);
	af = __builtin_bswap32(af);
	memcpy(copy, &af, 4);
	m = pcap_offline_filter(&f->prog, h, copy) != 0;
	if (copy != small)
		free(copy);
	return m;
}

bool filter_matches_all(const struct filter *f)
{
	const struct bpf_insn *only = f->prog.bf_insns;

	return f->prog.bf_len == 1 && BPF_CLASS(only->code) == BPF_RET &&
	       BPF_RVAL(only->code) == BPF_K && only->k != 0;
}

bool filter_match(const struct filter *f, uint32_t caplen, uint32_t origlen, const uint8_t *data)
{
	struct pcap_pkthdr h = { .caplen = caplen, .len = origlen };

	if (null_header_swapped(f->dlt, caplen, data))
		return match_swapped_null(f, &h, data);
	return pcap_offline_filter(&f->prog, &h, data) != 0;
}

int filter_set_new(struct filter_set **out, const char *expr, uint32_t snaplen)
{
	struct filter_set *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return -ENOMEM;
	fs->expr = strdup(expr ? expr : "");
	if (!fs->expr) {
		free(fs);
		return -ENOMEM;
	}
	fs->snaplen = snaplen ? snaplen : FILTER_DEFAULT_SNAPLEN;
	pthread_mutex_init(&fs->lock, NULL);
	*out = fs;
	return 0;
}

struct filter_set *filter_set_free(struct filter_set *fs)
{
	if (!fs)
		return NULL;
	for (size_t i = 0; i < fs->nslots; i++)
		filter_free(fs->slots[i].f);
	free(fs->slots);
	free(fs->expr);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
	return NULL;
}

const char *filter_set_expr(const struct filter_set *fs)
{
	return fs->expr;
}

/* Compiles into a new slot; the failure text is kept for later callers. */
static struct filter_slot *add_slot(struct filter_set *fs, uint32_t linktype)
{
	struct filter_slot *s;
	struct errbuf eb = { .msg = "" };

	if (fs->nslots == fs->cap) {
		size_t cap = fs->cap ? fs->cap * 2 : 4;
		struct filter_slot *n = realloc(fs->slots, cap * sizeof(*n));

		if (!n)
			return NULL;
		fs->slots = n;
		fs->cap = cap;
	}
	s = &fs->slots[fs->nslots];
	memset(s, 0, sizeof(*s));
	s->linktype = linktype;
	s->err = filter_new(&s->f, fs->expr, linktype, fs->snaplen, &eb);
	if (s->err == -ENOMEM)
		return NULL; /* not cached: may work next time */
	snprintf(s->msg, sizeof(s->msg), "%s", eb.msg);
	fs->nslots++;
	return s;
}

int filter_set_get(struct filter_set *fs, uint32_t linktype, const struct filter **out,
		   struct errbuf *eb)
{
	struct filter_slot *s = NULL;
	int r;

	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; i < fs->nslots && !s; i++)
		if (fs->slots[i].linktype == linktype)
			s = &fs->slots[i];
	if (!s)
		s = add_slot(fs, linktype);
	if (!s)
		r = -ENOMEM;
	else if (s->err < 0)
		r = errbuf_set(eb, s->err, "%s", s->msg);
	else {
		*out = s->f;
		r = 0;
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

int filter_set_match(struct filter_set *fs, uint32_t linktype, uint32_t caplen, uint32_t origlen,
		     const uint8_t *data, struct errbuf *eb)
{
	const struct filter *f;
	int r = filter_set_get(fs, linktype, &f, eb);

	if (r < 0)
		return r;
	return filter_match(f, caplen, origlen, data) ? 1 : 0;
}

const char *filter_linktype_name(uint32_t linktype)
{
	return pcap_datalink_val_to_name(linktype_to_dlt(linktype));
}

const char *filter_linktype_description(uint32_t linktype)
{
	return pcap_datalink_val_to_description(linktype_to_dlt(linktype));
}
