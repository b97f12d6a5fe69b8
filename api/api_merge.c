/*
 * api_merge.c - CloudShark's merge: POST /api/v1/<token>/merge?
 * capture_ids=a,b[&filename=][&additional_tags=][&duplicates=remove].
 *
 * The packets of the captures are merged by time as mergecap does (the
 * earliest next packet first; on equal times the one of the capture
 * listed last) into a pcapng file in the store's tmp/, which is then
 * imported as an upload is (content-addressed, indexed). Each capture is
 * read a chunk at a time: memory stays bounded whatever their sizes.
 * duplicates=remove drops a packet whose bytes equal one of the four
 * packets written before it, as `editcap -d` does after a merge.
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_priv.h"
#include "capfile.h"
#include "capwrite.h"
#include "catalog.h"
#include "config.h"
#include "objread.h"
#include "parse.h"
#include "vault.h"

#define MERGE_MAX_INPUTS 64
#define READ_CHUNK (64u * 1024)
#define DUP_WINDOW 4 /* editcap -d: the previous four packets */

struct queued {
	struct queued *next;
	struct capfile_packet pkt;
	uint8_t data[];
};

/* One capture being read: the packets of its last chunk, in order. */
struct input {
	struct objread *src;
	struct capfile *cf;
	struct queued *head, *tail;
	bool eof;
	int err;
};

struct merge {
	struct input in[MERGE_MAX_INPUTS];
	size_t nin;
	int out_fd;
	uint64_t written, limit;
	struct capwrite *w;
	bool dedup;
	struct { uint32_t len; uint8_t md[32]; } seen[DUP_WINDOW];
	size_t nseen, seen_at;
	char *chunk; /* READ_CHUNK bytes */
	struct errbuf eb; /* why reading an input failed */
};

static int queue_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct input *in = opaque;
	struct queued *q = malloc(sizeof(*q) + pkt->caplen);
	if (!q)
		return -ENOMEM;
	q->next = NULL;
	q->pkt = *pkt;
	memcpy(q->data, pkt->data, pkt->caplen);
	q->pkt.data = q->data;
	if (in->tail)
		in->tail->next = q;
	else
		in->head = q;
	in->tail = q;
	return 0;
}

/* Reads chunks (into chunk, READ_CHUNK bytes) until a packet is queued
 * or the capture ends. A failed read's error (the object store's, as
 * objread_store_error tells) passes through with its message in rerr. */
static int input_fill(struct input *in, char *chunk, struct errbuf *rerr)
{
	struct errbuf eb = { { 0 } };
	while (!in->head && !in->eof) {
		ssize_t n = objread_read(in->src, chunk, READ_CHUNK, rerr);
		if (n < 0)
			return objread_store_error((int)n) ? (int)n : -EIO;
		if (n == 0) {
			in->eof = true;
			if (capfile_finish(in->cf, &eb) < 0)
				return -EIO;
		} else if (capfile_feed(in->cf, chunk, (size_t)n, &eb) != 0) {
			return -EIO;
		}
	}
	return 0;
}

static void input_pop(struct input *in)
{
	struct queued *q = in->head;
	in->head = q->next;
	if (!in->head)
		in->tail = NULL;
	free(q);
}

static void input_close(struct input *in)
{
	while (in->head)
		input_pop(in);
	capfile_free(in->cf);
	objread_free(in->src);
}

static int out_write(void *opaque, const void *buf, size_t len)
{
	struct merge *m = opaque;
	m->written += len;
	if (m->written > m->limit)
		return -EFBIG;
	for (const char *p = buf; len > 0;) {
		ssize_t n = write(m->out_fd, p, len);
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* True when the packet's bytes equal one of the last DUP_WINDOW kept. */
static bool seen_before(struct merge *m, const struct capfile_packet *pkt)
{
	uint8_t md[32];
	unsigned mdlen = 0;
	if (!EVP_Digest(pkt->data, pkt->caplen, md, &mdlen, EVP_sha256(), NULL))
		return false;
	for (size_t i = 0; i < m->nseen; i++)
		if (m->seen[i].len == pkt->caplen && !memcmp(m->seen[i].md, md, 32))
			return true;
	m->seen[m->seen_at].len = pkt->caplen;
	memcpy(m->seen[m->seen_at].md, md, 32);
	m->seen_at = (m->seen_at + 1) % DUP_WINDOW;
	if (m->nseen < DUP_WINDOW)
		m->nseen++;
	return false;
}

/* The input whose next packet is earliest, or -1 when all have ended.
 * On equal times the one listed last, as mergecap picks (its is_earlier
 * is true for equal times, and it keeps the last such input). */
static int earliest(struct merge *m, int *err)
{
	int best = -1;
	for (size_t i = 0; i < m->nin; i++) {
		if ((*err = input_fill(&m->in[i], m->chunk, &m->eb)) < 0)
			return -1;
		if (m->in[i].head && (best < 0 || m->in[i].head->pkt.ts_ns <=
							  m->in[best].head->pkt.ts_ns))
			best = (int)i;
	}
	return best;
}

static int merge_run(struct merge *m)
{
	int err = 0, i;
	while ((i = earliest(m, &err)) >= 0) {
		const struct capfile_packet *pkt = &m->in[i].head->pkt;
		if (!(m->dedup && seen_before(m, pkt)) && (err = capwrite_packet(m->w, pkt)) != 0)
			return err;
		input_pop(&m->in[i]);
	}
	return err ? err : capwrite_flush(m->w);
}

static int merge_open(struct api_call *c, struct merge *m, struct capture_record **recs)
{
	int err = 0;
	uint32_t snaplen = 0;
	const size_t nin = m->nin;
	for (size_t i = 0; i < nin && !err; i++) {
		if (!recs[i])
			return -EINVAL; /* find_inputs filled every one */
		snaplen = recs[i]->snaplen > snaplen ? recs[i]->snaplen : snaplen;
		err = objread_open(&m->in[i].src, c->api->vault, recs[i]->id, recs[i]->sha256,
				   recs[i]->file_size, &m->eb);
		if (err == -ENOENT)
			err = -EIO;
		else if (!err)
			err = capfile_new(&m->in[i].cf, queue_packet, NULL, &m->in[i]);
	}
	if (!err)
		err = capwrite_new(&m->w, CAPFILE_FORMAT_PCAPNG,
				   recs[0]->nlinktypes ? recs[0]->linktypes[0] : 1, true, snaplen,
				   out_write, m);
	return err;
}

/* "merged 3-7": CloudShark's name of a merge. */
static char *default_name(char **ids, size_t n)
{
	char *name = strdup("merged ");
	for (size_t i = 0; name && i < n; i++) {
		char *longer = NULL;
		if (asprintf(&longer, "%s%s%s", name, i ? "-" : "", ids[i]) < 0)
			longer = NULL;
		free(name);
		name = longer;
	}
	return name;
}

/* Looks the captures up; replies and returns false when one is missing. */
static bool find_inputs(struct api_call *c, char **ids, size_t n, struct capture_record **recs)
{
	for (size_t i = 0; i < n; i++)
		if (!(recs[i] = api_capture_arg(c, ids[i])))
			return false;
	return true;
}

static void merge_into(struct api_call *c, struct capture_record **recs, size_t n,
		       const char *name, bool dedup)
{
	struct merge m = { .nin = n, .out_fd = -1, .dedup = dedup,
			   .limit = c->api->cfg->api.max_upload_size };
	char *path = NULL;
	int err = (m.chunk = malloc(READ_CHUNK)) ? api_spool_open(c, &m.out_fd, &path) : -ENOMEM;
	if (!err)
		err = merge_open(c, &m, recs);
	if (!err)
		err = merge_run(&m);
	capwrite_free(m.w);
	free(m.chunk);
	for (size_t i = 0; i < n; i++)
		input_close(&m.in[i]);
	if (m.out_fd >= 0 && close(m.out_fd) < 0 && !err)
		err = -errno;
	if (err && path)
		unlink(path);
	if (err == -EFBIG)
		api_error(c, 413, "too_large",
			  "the merged capture is larger than api.max_upload_size (%" PRIu64 " bytes)",
			  m.limit);
	else if (err)
		api_error_errno(c, err, "merging", objread_store_error(err) ? m.eb.msg : NULL);
	else
		api_upload_file(c, path, name, http_req_arg(c->r, "additional_tags"), NULL);
	if (err)
		free(path);
}

void api_cs_merge(struct api_call *c)
{
	char **ids = NULL;
	size_t n = 0;
	struct capture_record *recs[MERGE_MAX_INPUTS] = { 0 };
	const char *dup = http_req_arg(c->r, "duplicates");
	const char *filename = http_req_arg(c->r, "filename");
	if (api_split_list(http_req_arg(c->r, "capture_ids"), &ids, &n) < 0)
		api_error_errno(c, -ENOMEM, "merge", NULL);
	else if (n < 1 || n > MERGE_MAX_INPUTS)
		api_error(c, 400, "bad_request", "capture_ids: 1 to %d comma-separated capture ids",
			  MERGE_MAX_INPUTS);
	else if (dup && *dup && strcmp(dup, "remove") != 0)
		api_error(c, 400, "bad_request", "duplicates: 'remove' or nothing");
	else if (find_inputs(c, ids, n, recs)) {
		char *name = filename && *filename ? strdup(filename) : default_name(ids, n);
		if (!name)
			api_error_errno(c, -ENOMEM, "merge", NULL);
		else
			merge_into(c, recs, n, name, dup && !strcmp(dup, "remove"));
		free(name);
	}
	for (size_t i = 0; i < n && i < MERGE_MAX_INPUTS; i++)
		capture_record_free(recs[i]);
	api_strv_free(ids, n);
}
