/*
 * query.h - packet queries: a BPF filter (tcpdump syntax), a time window
 * and a capture selection in; the matching packets out, as a stream.
 *
 * The index only proposes candidates (a superset); every candidate is read
 * back from its object (batched io_uring preads, in offset order) and run
 * through libpcap's compiled filter for its link type, so the answer is
 * packet for packet what `tcpdump -r` gives (DESIGN.md invariant 4).
 * Packets of one capture come in file order, as tcpdump reads them;
 * captures follow each other in time, and captures whose times overlap are
 * merged by packet time (through spill files in the store's tmp/, so
 * memory stays bounded).
 */
#ifndef CAPVAULT_QUERY_H
#define CAPVAULT_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capfile.h"
#include "errbuf.h"

struct vault;
struct ring;
struct query;

struct query_params {
	const char *filter;          /* BPF expression; NULL or "" matches all */
	bool has_after, has_before;  /* without either, the window is unbounded that side */
	int64_t after_ns;            /* packets at or after this time (capfile.h) */
	int64_t before_ns;           /* packets strictly before this time */
	const uint64_t *capture_ids; /* only these captures, when ncapture_ids > 0 */
	size_t ncapture_ids;
	const char *const *tags;     /* only captures having all these tags */
	size_t ntags;
	uint64_t limit;              /* stop after this many packets; 0: no limit */
	/* A cursor into an earlier run with the same other parameters: the
	 * output starts at the packet whose record begins at resume_offset in
	 * capture resume_capture (after it, with resume_after). Captures
	 * that come before it in output order are not read, nor the part of
	 * its own object before the offset (unless its times overlap
	 * another's: then the merge is replayed up to it). */
	bool has_resume, resume_after;
	uint64_t resume_capture, resume_offset;
};

struct query_stats {
	char plan[512];             /* the planner's reading of the filter */
	bool plan_all;              /* the planner could not narrow anything */
	uint64_t captures_total;
	uint64_t captures_selected; /* after ids, tags and time window */
	uint64_t flows_candidate;
	uint64_t packets_candidate; /* records decoded */
	uint64_t packets_matched;
	uint64_t packets_indexed;   /* of those matched, counted from the time index, not read */
	uint64_t bytes_read;
	uint64_t reads;
	uint64_t bytes_remote;      /* what the object store sent for it (missed cache blocks) */
	double elapsed_ms;
};

/* Called once per matching packet, in output order; nonzero stops. */
typedef int (*query_packet_fn)(void *opaque, const struct capfile_packet *pkt);

/*
 * Selects the captures, plans and compiles the filter. Returns 0; -EINVAL
 * for a filter libpcap rejects (eb has libpcap's message) or an unknown
 * capture id (eb); -E2BIG (eb) for a filter over filter.h's size bounds;
 * -ENOENT for an unknown capture id; other negative errnos.
 */
int query_new(struct query **out, struct vault *v, const struct query_params *params,
	      struct errbuf *eb);
struct query *query_free(struct query *q);

/* The output format that fits the selected captures: pcap when they share
 * one link type, time resolution and pcap header FCS bits (which *linktype
 * then carries above its low 16 bits, as tcpdump -w keeps them), else
 * pcapng. */
void query_output_format(const struct query *q, enum capfile_format *format,
			 uint32_t *linktype, bool *nanosecond, uint32_t *snaplen);

/* Runs the query. Returns 0, or a negative errno (eb), or what fn returned;
 * -ENOENT (eb) when the resume capture is not selected.
 * A capture whose object is only in the object store (vault.h) is read
 * through the vault's cache, candidate ranges only; when the store fails
 * (down, slow past its timeout, 5xx, 403) the query stops with
 * -EREMOTEIO and eb names the capture and the store (objstore_describe). */
int query_run(struct query *q, struct ring *ring, query_packet_fn fn, void *opaque,
	      struct errbuf *eb);
/*
 * For callers that commit to an answer before running (an HTTP status goes
 * out before the stream): asks the object store about the first selected
 * capture that only it holds (and the cache does not hold whole), so a
 * store that is down, refuses or is slower than its timeout fails the
 * query now, with -EREMOTEIO and eb naming the capture and the store,
 * rather than cutting the stream. An object the store does not have is
 * -ENODATA, one of another size -EBADMSG (lost data, not worth a retry).
 * Returns 0 when no capture is remote or the store answers.
 */
int query_check_remote(struct query *q, struct errbuf *eb);

/* query_run without the time-order merge of captures whose times
 * overlap: fn gets each capture's matches in file order, one capture
 * after the other. For counting: nothing is spilled to tmp/, so counts
 * work on a full disk. With a packet limit it is query_run. */
int query_run_unordered(struct query *q, struct ring *ring, query_packet_fn fn, void *opaque,
			struct errbuf *eb);
/*
 * Counts the matches (query_stats()->packets_matched) without handing
 * them to anyone: query_run_unordered with no fn. When the filter accepts
 * every packet of a capture and there is no limit, the blocks of its
 * sparse time index that lie wholly inside the window are counted from
 * the index, not read.
 */
int query_count(struct query *q, struct ring *ring, struct errbuf *eb);
const struct query_stats *query_stats(const struct query *q);
/* The id of the capture of the packet being handed to a query_packet_fn
 * (valid during that call); pkt->offset is its record's offset there. */
uint64_t query_packet_capture(const struct query *q);

/*
 * Parses RFC 3339 ("2024-05-01T14:00:00.25Z", "...+02:00"; a space may
 * stand for the T) or epoch seconds with an optional minus and fraction
 * ("1714572000.25", "-86400") into signed ns. Dates must exist (no
 * 2024-02-31, no 24:00). Returns 0; -EINVAL for text that is no such
 * time, -ERANGE for a time outside (INT64_MIN, INT64_MAX] ns, the bounds
 * a window can have (capfile.h); eb (may be NULL) says why, quoting text.
 */
int query_parse_time(const char *text, int64_t *ns, struct errbuf *eb);

/* RFC 3339 UTC with nanoseconds ("1969-12-31T23:59:59.999999999Z") of
 * any ns time; QUERY_TIME_LEN bytes always suffice. */
#define QUERY_TIME_LEN 40
void query_format_time(int64_t ns, char *buf, size_t len);

/*
 * Cancelling: a query stops soon after query_cancel (any thread) or once
 * its gone check says so, and query_run / query_count return -ECANCELED
 * (eb says how far it got). The gone check is called by the thread that
 * runs the query, before each capture and every QUERY_POLL_PACKETS
 * candidate packets: it asks whether whoever wants the answer is still
 * there (an HTTP client that left), so a query nobody waits for does not
 * run to its end.
 */
#define QUERY_POLL_PACKETS 4096u
typedef bool (*query_gone_fn)(void *opaque);
void query_cancel(struct query *q);
void query_set_gone_check(struct query *q, query_gone_fn fn, void *opaque);

#endif
