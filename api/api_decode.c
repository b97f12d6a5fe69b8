/*
 * api_decode.c - the viewer's decoded packets: GET /v1/decode/list (one
 * line per packet, as Wireshark's packet list shows it, paged) and GET
 * /v1/decode/packet (one packet's detail tree and bytes).
 *
 * We dissect nothing ourselves: the query engine picks the packets (a
 * page of them, never more), writes them as a pcap/pcapng stream, and
 * tshark decodes that stream in a sandboxed child (sandbox.h). Whatever
 * tshark does (crash, hang, flood), the request answers 502 with what
 * happened and the daemon goes on.
 *
 * Pages go to tshark as pcapng, so that a capture's TLS key log (an
 * upload's keylog part) rides along as a Decryption Secrets Block before
 * its first packet: tshark decrypts with it, and reads no key file.
 *
 * A page's cursor is its last packet's capture and record offset (and its
 * frame number when known): the next page is the same query resumed right
 * after that record (query_params.has_resume), so pages neither skip nor
 * repeat packets, and page n of a large capture costs what page 1 does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "annot.h"
#include "api_priv.h"
#include "capwrite.h"
#include "config.h"
#include "log.h"
#include "parse.h"
#include "pdml.h"
#include "pktkeys.h"
#include "query.h"
#include "ring.h"
#include "sandbox.h"
#include "vault.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000
#define PAGE_BYTES (32u << 20) /* capture bytes fed to one run, about */
#define RING_ENTRIES 64
#define CONTEXT_MAX 1000 /* earlier packets of its flow fed with a detail's packet */
#define TARGET_MARK "capvault-detail-target"

struct api_decoder {
	struct sandbox *sb;
	char name[64]; /* "tshark 4.0.17" */
};

static const char *const list_args[] = {
	"-r", "-", "-n", "-T", "json", "-e", "frame.number", "-e", "_ws.col.Protocol",
	"-e", "_ws.col.Source", "-e", "_ws.col.Destination", "-e", "_ws.col.Info", NULL
};
/* Only the marked packet is printed; the earlier ones of its flow are
 * dissected first (a TLS handshake, TCP reassembly), as in Wireshark. */
static const char tree_filter[] = "frame.comment == \"" TARGET_MARK "\"";
static const char *const tree_args[] = { "-r", "-", "-n", "-T", "pdml", "-Y", tree_filter, NULL };

/* --- the decoder, made at the first request --- */

void api_decoder_free(struct api_decoder *d)
{
	if (d) {
		sandbox_free(d->sb);
		free(d);
	}
}

/* "tshark 4.0.17" from `tshark -v`, else the program's name. */
static void decoder_name(struct api_decoder *d, const char *path)
{
	static const char *const args[] = { "-v", NULL };
	struct sandbox_result res;
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	snprintf(d->name, sizeof(d->name), "%s", base);
	if (sandbox_run(d->sb, args, false, NULL, 0, &res, NULL) < 0)
		return;
	const char *v = res.outcome == SANDBOX_OK ? strstr(res.out, "(Wireshark) ") : NULL;
	unsigned major, minor, micro;
	if (v && sscanf(v, "(Wireshark) %u.%u.%u", &major, &minor, &micro) == 3)
		snprintf(d->name, sizeof(d->name), "tshark %u.%u.%u", major, minor, micro);
	sandbox_result_clear(&res);
}

/* The server's decoder, made now if need be; replies 503 and returns
 * NULL when there can be none. */
static struct api_decoder *get_decoder(struct api_call *c)
{
	struct api_server *s = c->api;
	const struct config_decoder *cd = &s->start_cfg->decoder;
	struct errbuf eb = { { 0 } };
	pthread_mutex_lock(&s->decoder_lock);
	if (!s->decoder) {
		struct sandbox_cfg sc = { .path = cd->path,
					  .timeout_ms = (uint32_t)(cd->timeout_ns / 1000000),
					  .memory = cd->memory, .max_output = cd->max_output,
					  .cpu_s = (uint32_t)(cd->timeout_ns / 1000000000) + 2,
					  .max_running = cd->max_running };
		struct api_decoder *d = calloc(1, sizeof(*d));
		int err = d ? sandbox_new(&d->sb, &sc, &eb) : -ENOMEM;
		if (!err) {
			if (cd->warm) { /* they load while `-v` runs */
				sandbox_prepare(d->sb, list_args);
				sandbox_prepare(d->sb, tree_args);
			}
			decoder_name(d, cd->path);
			log_info("decoder: %s, confined by %s", d->name, sandbox_confinement(d->sb));
			s->decoder = d;
		} else {
			free(d);
			log_warnx("decoder: %s", eb.msg[0] ? eb.msg : strerror(-err));
		}
	}
	struct api_decoder *d = s->decoder;
	pthread_mutex_unlock(&s->decoder_lock);
	if (!d)
		api_error(c, 503, "decoder_unavailable", "no packet decoder: %s",
			  eb.msg[0] ? eb.msg : "it could not be started");
	return d;
}

/* A run that did not end well as a reply: 502 naming what happened. */
static bool reply_failed_run(struct api_call *c, struct api_decoder *d,
			     const struct sandbox_result *res, const char *what)
{
	static const char *const codes[] = {
		[SANDBOX_EXIT] = "decoder_failed", [SANDBOX_SIGNAL] = "decoder_crashed",
		[SANDBOX_TIMEOUT] = "decoder_timeout", [SANDBOX_OVERSIZE] = "decoder_output_too_large",
	};
	if (res->outcome == SANDBOX_OK)
		return false;
	char how[160], tail[256] = "";
	sandbox_describe(d->sb, res, how, sizeof(how));
	/* its last line of complaint, if any */
	const char *e = res->err;
	size_t n = strlen(e);
	while (n && (e[n - 1] == '\n' || e[n - 1] == '\r'))
		n--;
	size_t b = n;
	while (b && e[b - 1] != '\n')
		b--;
	if (n > b && res->outcome == SANDBOX_EXIT)
		snprintf(tail, sizeof(tail), ": %.*s", (int)(n - b), e + b);
	log_warnx("decoder: %s: %s %s%s", what, d->name, how, tail);
	api_error(c, 502, codes[res->outcome], "the decoder (%s) %s while decoding %s%s", d->name,
		  how, what, tail);
	return true;
}

/* --- the packets: a query into a capture stream in memory --- */

struct page_pkt {
	uint64_t capture, offset;
	int64_t ts_ns;
	uint32_t origlen, linktype;
};

struct page {
	struct query *q;
	struct capwrite *w;
	char *bytes;
	size_t len, cap;
	struct page_pkt *pk;
	size_t n, max;
	uint8_t *data; /* the first packet's bytes (the detail route) */
	uint32_t datalen;
	bool cut;      /* stopped at PAGE_BYTES */
	struct vault *vault;
	uint64_t *keyed; /* captures whose key log question is settled */
	size_t nkeyed;
	/* a detail's stream: its flow up to the target packet, which alone
	 * goes into pk[] and is marked (TARGET_MARK) */
	bool context;
	uint64_t target;
	size_t ncontext;
};

static int page_write(void *opaque, const void *buf, size_t len)
{
	struct page *p = opaque;
	if (p->cap - p->len < len) {
		size_t cap = p->cap ? p->cap : 64 * 1024;
		while (cap - p->len < len)
			cap *= 2;
		char *grown = realloc(p->bytes, cap);
		if (!grown)
			return -ENOMEM;
		p->bytes = grown;
		p->cap = cap;
	}
	memcpy(p->bytes + p->len, buf, len);
	p->len += len;
	return 0;
}

/* Before a capture's first packet in the stream: its key log, if any. */
static int page_keylog(struct page *p, uint64_t capture)
{
	for (size_t i = 0; i < p->nkeyed; i++)
		if (p->keyed[i] == capture)
			return 0;
	uint64_t *grown = realloc(p->keyed, (p->nkeyed + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	p->keyed = grown;
	p->keyed[p->nkeyed++] = capture;
	char *keys = NULL;
	size_t len = 0;
	int err = annot_keylog_get(vault_db(p->vault), capture, &keys, &len);
	if (err == -ENOENT)
		return 0;
	if (!err && len > 0)
		err = capwrite_secrets(p->w, CAPWRITE_SECRETS_TLS, keys, len);
	free(keys);
	return err;
}

/* A packet of the flow before a detail's target: fed for context. */
static int page_context(struct page *p, const struct capfile_packet *pkt)
{
	if (pkt->offset > p->target)
		return 1; /* past it: it is not in this flow's answer */
	if (p->ncontext >= CONTEXT_MAX || p->len >= PAGE_BYTES)
		return 0;
	p->ncontext++;
	return capwrite_packet(p->w, pkt);
}

static int page_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct page *p = opaque;
	int err = page_keylog(p, query_packet_capture(p->q));
	if (err)
		return err;
	if (p->context && pkt->offset != p->target)
		return page_context(p, pkt);
	if (p->n > 0 && p->len >= PAGE_BYTES) {
		p->cut = true;
		return 1; /* stops the query: the page is full */
	}
	if (p->n == 0 && !(p->data = malloc(pkt->caplen ? pkt->caplen : 1)))
		return -ENOMEM;
	if (p->n == 0) {
		memcpy(p->data, pkt->data, pkt->caplen);
		p->datalen = pkt->caplen;
	}
	p->pk[p->n++] = (struct page_pkt){ .capture = query_packet_capture(p->q),
					   .offset = pkt->offset, .ts_ns = pkt->ts_ns,
					   .origlen = pkt->origlen, .linktype = pkt->linktype };
	if (!p->context)
		return capwrite_packet(p->w, pkt);
	err = capwrite_packet_comment(p->w, pkt, TARGET_MARK);
	return err ? err : 1; /* the target ends a detail's stream */
}

static void page_free(struct page *p)
{
	capwrite_free(p->w);
	query_free(p->q);
	free(p->bytes);
	free(p->pk);
	free(p->data);
	free(p->keyed);
}

static bool client_gone(void *opaque)
{
	return http_req_client_gone(opaque);
}

/* Runs the query of qp into p (at most qp->limit packets). Replies and
 * returns false on failure. */
static bool page_fill(struct api_call *c, const struct query_params *qp, struct page *p)
{
	struct errbuf eb = { { 0 } };
	struct ring *ring = NULL;
	enum capfile_format format;
	uint32_t linktype = 1, snaplen = 0;
	bool nsec = false;
	p->max = qp->limit ? qp->limit : 1; /* a detail's stream: its one target */
	p->vault = c->api->vault;
	int err = (p->pk = calloc(p->max, sizeof(*p->pk))) ? 0 : -ENOMEM;
	if (!err)
		err = query_new(&p->q, c->api->vault, qp, &eb);
	if (err == -EINVAL || err == -E2BIG) {
		api_error(c, 400, err == -E2BIG ? "filter_too_large" : "bad_filter", "%s",
			  eb.msg[0] ? eb.msg : "bad query");
		return false;
	}
	if (!err) {
		query_output_format(p->q, &format, &linktype, &nsec, &snaplen);
		query_set_gone_check(p->q, client_gone, c->r);
		err = ring_new(&ring, RING_ENTRIES);
	}
	/* pcapng whatever the captures are: it carries key logs */
	if (!err)
		err = capwrite_new(&p->w, CAPFILE_FORMAT_PCAPNG, linktype & 0xffff, nsec, snaplen,
				   page_write, p);
	if (!err)
		err = query_run(p->q, ring, page_packet, p, &eb);
	if (!err)
		err = capwrite_flush(p->w);
	ring_free(ring);
	if (err)
		api_error_errno(c, err, "query", eb.msg);
	return !err;
}

/* --- GET /v1/decode/list --- */

struct list_req {
	struct query_params qp;
	uint64_t capture;
	uint64_t frame;   /* of the cursor's packet; 0: not known */
	bool ordinal;     /* frame numbers are known: one capture, everything */
};

/* "<capture>:<offset>:<frame>", as next_cursor makes it. */
static int parse_cursor(const char *text, struct list_req *lr)
{
	char buf[80], *sep1, *sep2;
	if (strlen(text) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", text);
	if (!(sep1 = strchr(buf, ':')) || !(sep2 = strchr(sep1 + 1, ':')))
		return -EINVAL;
	*sep1 = *sep2 = '\0';
	lr->qp.has_resume = lr->qp.resume_after = true;
	if (api_parse_u64(buf, &lr->qp.resume_capture) < 0 ||
	    api_parse_u64(sep1 + 1, &lr->qp.resume_offset) < 0 ||
	    api_parse_u64(sep2 + 1, &lr->frame) < 0)
		return -EINVAL;
	return 0;
}

static bool parse_list(struct api_call *c, struct list_req *lr)
{
	struct query_params *qp = &lr->qp;
	struct errbuf eb = { { 0 } };
	const char *v, *bad = NULL;
	static const char *const once[] = { "filter", "after", "before", "limit", "capture",
					     "cursor", NULL };
	if (!api_args_once(c, once))
		return false;
	qp->filter = http_req_arg(c->r, "filter");
	qp->limit = PAGE_DEFAULT;
	if ((v = http_req_arg(c->r, "after")) && (qp->has_after = true) &&
	    query_parse_time(v, &qp->after_ns, &eb) < 0)
		bad = "after";
	if ((v = http_req_arg(c->r, "before")) && (qp->has_before = true) &&
	    query_parse_time(v, &qp->before_ns, &eb) < 0)
		bad = "before";
	if ((v = http_req_arg(c->r, "limit")) &&
	    (api_parse_u64(v, &qp->limit) < 0 || qp->limit == 0 || qp->limit > PAGE_MAX))
		bad = "limit (1 to 1000)";
	if ((v = http_req_arg(c->r, "capture")) && api_parse_u64(v, &lr->capture) < 0)
		bad = "capture (an id)";
	if ((v = http_req_arg(c->r, "cursor")) && parse_cursor(v, lr) < 0)
		bad = "cursor (as a page's \"next\" gave it)";
	if (bad) {
		api_error(c, 400, "bad_parameter", "bad value for %s%s%s", bad,
			  eb.msg[0] ? ": " : "", eb.msg);
		return false;
	}
	if (http_req_arg(c->r, "capture")) {
		qp->capture_ids = &lr->capture;
		qp->ncapture_ids = 1;
	}
	lr->ordinal = qp->ncapture_ids == 1 && (!qp->filter || !*qp->filter) && !qp->has_after &&
		      !qp->has_before && (!qp->has_resume || lr->frame > 0);
	return true;
}

static const char *layer_text(json_t *layers, const char *key)
{
	json_t *v = json_object_get(layers, key);
	const char *s = json_string_value(json_is_array(v) ? json_array_get(v, 0) : v);
	return s ? s : "";
}

/* tshark's -T json lines, by frame number (1-based in this run). */
static json_t **index_lines(json_t *doc, size_t n)
{
	json_t **by = calloc(n ? n : 1, sizeof(*by));
	size_t i;
	json_t *e;
	json_array_foreach(doc, i, e) {
		json_t *layers = json_object_get(json_object_get(e, "_source"), "layers");
		unsigned long long num = strtoull(layer_text(layers, "frame.number"), NULL, 10);
		if (by && num >= 1 && num <= n)
			by[num - 1] = layers;
	}
	return by;
}

static json_t *list_packet(const struct list_req *lr, const struct page_pkt *pk, size_t i,
			   json_t *layers)
{
	char ref[48], when[QUERY_TIME_LEN];
	snprintf(ref, sizeof(ref), "%" PRIu64 ":%" PRIu64, pk->capture, pk->offset);
	query_format_time(pk->ts_ns, when, sizeof(when));
	json_t *frame = lr->ordinal ? json_integer((json_int_t)(lr->frame + i + 1)) : json_null();
	return json_pack("{sssIsosssIsIssssssss}", "ref", ref, "capture", (json_int_t)pk->capture,
			 "frame", frame, "time", when, "time_ns", (json_int_t)pk->ts_ns, "length",
			 (json_int_t)pk->origlen, "protocol", layer_text(layers, "_ws.col.Protocol"),
			 "source", layer_text(layers, "_ws.col.Source"), "destination",
			 layer_text(layers, "_ws.col.Destination"), "info",
			 layer_text(layers, "_ws.col.Info"));
}

static json_t *next_cursor(const struct list_req *lr, const struct page *p)
{
	if (p->n == 0 || (p->n < p->max && !p->cut))
		return json_null();
	const struct page_pkt *last = &p->pk[p->n - 1];
	char text[80];
	snprintf(text, sizeof(text), "%" PRIu64 ":%" PRIu64 ":%" PRIu64, last->capture,
		 last->offset, lr->ordinal ? lr->frame + p->n : 0);
	return json_string(text);
}

static void reply_list(struct api_call *c, struct api_decoder *d, const struct list_req *lr,
		       const struct page *p, const char *out, size_t outlen)
{
	json_error_t jerr;
	json_t *doc = p->n ? json_loadb(out, outlen, 0, &jerr) : json_array();
	if (!json_is_array(doc)) {
		json_decref(doc);
		log_warnx("decoder: %s: its packet list is not JSON", d->name);
		return api_error(c, 502, "decoder_bad_output",
				 "the decoder (%s) wrote no packet list we can read", d->name);
	}
	json_t **by = index_lines(doc, p->n);
	json_t *packets = json_array();
	bool ok = by && packets;
	for (size_t i = 0; ok && i < p->n; i++)
		ok = json_array_append_new(packets, list_packet(lr, &p->pk[i], i, by[i])) == 0;
	free(by);
	json_decref(doc);
	if (!ok) {
		json_decref(packets);
		return api_error_errno(c, -ENOMEM, "decode", NULL);
	}
	api_json(c, 200, json_pack("{sososs}", "packets", packets, "next", next_cursor(lr, p),
				   "decoder", d->name));
}

void api_decode_list(struct api_call *c)
{
	struct list_req lr = { 0 };
	struct page p = { 0 };
	if (!parse_list(c, &lr))
		return;
	struct api_decoder *d = get_decoder(c);
	if (!d || !page_fill(c, &lr.qp, &p))
		return page_free(&p);
	struct sandbox_result res = { 0 };
	struct errbuf eb = { { 0 } };
	int err = p.n ? sandbox_run(d->sb, list_args, c->api->start_cfg->decoder.warm, p.bytes, p.len, &res, &eb) : 0;
	if (err == -EBUSY)
		api_error(c, 503, "busy", "%s", eb.msg);
	else if (err)
		api_error(c, 502, "decoder_failed", "%s", eb.msg);
	else if (!reply_failed_run(c, d, &res, "a packet list"))
		reply_list(c, d, &lr, &p, res.out, res.outlen);
	sandbox_result_clear(&res);
	page_free(&p);
}

/* --- GET /v1/decode/packet?ref=<capture>:<offset> --- */

static json_t *hex_of(const uint8_t *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char *text = malloc(2 * len + 1);
	if (!text)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		text[2 * i] = digits[data[i] >> 4];
		text[2 * i + 1] = digits[data[i] & 15];
	}
	json_t *s = json_stringn(text, 2 * len);
	free(text);
	return s;
}

static void reply_packet(struct api_call *c, const char *ref, const struct page *p,
			 const char *pdml, size_t len, struct api_decoder *d)
{
	struct errbuf eb = { { 0 } };
	json_t *tree = NULL;
	int err = pdml_tree(pdml, len, &tree, &eb);
	if (err == -ENOMEM)
		return api_error_errno(c, err, "decode", NULL);
	if (err) {
		log_warnx("decoder: %s: %s", d->name, eb.msg);
		return api_error(c, 502, "decoder_bad_output", "the decoder (%s): %s", d->name,
				 eb.msg);
	}
	char when[QUERY_TIME_LEN];
	query_format_time(p->pk[0].ts_ns, when, sizeof(when));
	api_json(c, 200,
		 json_pack("{sssIsssIsIsIsososs}", "ref", ref, "capture",
			   (json_int_t)p->pk[0].capture, "time", when, "time_ns",
			   (json_int_t)p->pk[0].ts_ns, "length", (json_int_t)p->pk[0].origlen,
			   "captured_length", (json_int_t)p->datalen, "tree", tree, "hex",
			   hex_of(p->data, p->datalen), "decoder", d->name));
}

/* A BPF filter for the TCP/UDP/SCTP conversation of packet p->pk[0]
 * (its bytes in p->data), or false when it has none we can name. */
static bool flow_filter(const struct page *p, char *buf, size_t len)
{
	struct flow_key k;
	pktkeys_extract(p->pk[0].linktype, p->data, p->datalen, &k);
	const char *proto = k.proto == 6 ? "tcp" : k.proto == 17 ? "udp" : k.proto == 132 ? "sctp" : NULL;
	unsigned want = PKTKEY_K_ADDR_A | PKTKEY_K_ADDR_B | PKTKEY_K_PORT_A | PKTKEY_K_PORT_B;
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	int af = k.ipver == 6 ? AF_INET6 : AF_INET;
	if (!proto || (k.flags & want) != want || (k.flags & PKTKEY_F_FRAGMENT) || k.vlan_count ||
	    (k.ipver != 4 && k.ipver != 6) || !inet_ntop(af, k.addr_a, a, sizeof(a)) ||
	    !inet_ntop(af, k.addr_b, b, sizeof(b)))
		return false;
	snprintf(buf, len, "%s and host %s and host %s and port %u and port %u", proto, a, b,
		 k.port_a, k.port_b);
	return true;
}

/* The packet at offset of capture id alone; replies 404 and returns
 * false when no record starts there. */
static bool detail_alone(struct api_call *c, uint64_t id, uint64_t offset, struct page *p)
{
	struct query_params qp = { .capture_ids = &id, .ncapture_ids = 1, .limit = 1,
				   .has_resume = true, .resume_capture = id, .resume_offset = offset };
	if (!page_fill(c, &qp, p))
		return false;
	if (p->n == 1 && p->pk[0].offset == offset)
		return true;
	api_error(c, 404, "not_found", "capture %" PRIu64 " has no packet at byte %" PRIu64, id,
		  offset);
	return false;
}

/*
 * The detail's stream: the packet at offset of capture id, marked, after
 * the earlier packets of its flow (at most CONTEXT_MAX, from the flow's
 * start). The packet alone first: is there one, of which flow? Replies
 * and returns false on failure.
 */
static bool detail_stream(struct api_call *c, uint64_t id, uint64_t offset, struct page *p)
{
	struct page alone = { 0 };
	char filter[256];
	bool ok = detail_alone(c, id, offset, &alone);
	bool flow = ok && flow_filter(&alone, filter, sizeof(filter));
	page_free(&alone);
	if (!ok)
		return false;
	struct query_params qp = { .capture_ids = &id, .ncapture_ids = 1, .filter = filter };
	*p = (struct page){ .context = true, .target = offset };
	if (flow && (!page_fill(c, &qp, p) || p->n == 1))
		return p->n == 1; /* replied when it failed */
	page_free(p); /* no flow, or BPF's idea of it left the packet out */
	*p = (struct page){ .context = true, .target = offset };
	return detail_alone(c, id, offset, p);
}

void api_decode_packet(struct api_call *c)
{
	const char *ref = http_req_arg(c->r, "ref");
	struct list_req lr = { 0 };
	struct page p = { 0 };
	char text[80];
	snprintf(text, sizeof(text), "%s:0", ref ? ref : "");
	if (!ref || strlen(ref) > 48 || parse_cursor(text, &lr) < 0)
		return api_error(c, 400, "bad_parameter",
				 "ref must be <capture id>:<byte offset>, as the packet list gives it");
	struct api_decoder *d = get_decoder(c);
	if (!d || !detail_stream(c, lr.qp.resume_capture, lr.qp.resume_offset, &p))
		return page_free(&p);
	struct sandbox_result res = { 0 };
	struct errbuf eb = { { 0 } };
	int err = sandbox_run(d->sb, tree_args, c->api->start_cfg->decoder.warm, p.bytes, p.len,
			      &res, &eb);
	if (err == -EBUSY)
		api_error(c, 503, "busy", "%s", eb.msg);
	else if (err)
		api_error(c, 502, "decoder_failed", "%s", eb.msg);
	else if (!reply_failed_run(c, d, &res, "a packet"))
		reply_packet(c, ref, &p, res.out, res.outlen, d);
	sandbox_result_clear(&res);
	page_free(&p);
}
