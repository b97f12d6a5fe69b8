/*
 * filter.h - the exact packet filter: libpcap's compiled BPF, wrapped.
 *
 * This and index/catalog.c are the only files that include <pcap/pcap.h>.
 * A filter_set holds one expression and compiles it lazily, once per link
 * type it meets, with the same options tcpdump -r uses (optimizer on,
 * netmask unknown, the given snaplen). The answer of filter_set_match is
 * the truth the index only approximates (DESIGN.md invariant 4).
 *
 * Link types are LINKTYPE_* values as stored in capture files; they are
 * mapped to the host's DLT_* values before compiling (101 -> DLT_RAW, ...).
 *
 * Thread safety: compiles run in parallel (libpcap 1.8 and later, which
 * meson requires, documents pcap_compile as safe in several threads), so
 * one slow compile delays only its own query. A filter_set is safe to
 * share between threads (its cache has its own lock). filter_match on a
 * compiled filter needs no lock.
 *
 * Size: libpcap's compile time grows much faster than the expression (its
 * optimizer is worse than quadratic in the blocks: 700 "host" terms took
 * 25 s, 128 "portrange" terms 5 s, 64 of them 0.6 s), and an expression
 * comes from whoever holds a read token. Expressions are bounded in bytes
 * and in terms (primitives joined by and/or), which bounds the compile.
 */
#ifndef CAPVAULT_FILTER_H
#define CAPVAULT_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errbuf.h"

#define FILTER_DEFAULT_SNAPLEN 262144
#define FILTER_MAX_BYTES 4096
#define FILTER_MAX_TERMS 64

/*
 * Returns 0 when expr is within FILTER_MAX_BYTES and FILTER_MAX_TERMS,
 * else -E2BIG with the reason in eb. filter_new checks it too.
 */
int filter_check_size(const char *expr, struct errbuf *eb);

struct filter;
struct filter_set;

/*
 * Compiles expr for one link type. Returns 0; -EINVAL with libpcap's error
 * text in eb when the expression does not compile for that link type (an
 * empty expression matches everything); -E2BIG (eb) when it is over the
 * size bounds; -ENOMEM.
 */
int filter_new(struct filter **out, const char *expr, uint32_t linktype, uint32_t snaplen,
	       struct errbuf *eb);
struct filter *filter_free(struct filter *f);

/*
 * True when the packet (caplen bytes at data, origlen on the wire) passes.
 * A BPF program that reads past caplen rejects the packet, like tcpdump.
 */
bool filter_match(const struct filter *f, uint32_t caplen, uint32_t origlen, const uint8_t *data);

/*
 * True when f accepts every packet whatever its bytes: its program is a
 * single "accept" (the empty expression, or one libpcap's optimizer
 * reduced to that).
 */
bool filter_matches_all(const struct filter *f);

/*
 * A set of compiled copies of one expression, keyed by link type. The
 * expression is copied. Returns 0 or -ENOMEM. Nothing is compiled yet: call
 * filter_set_check to validate against a link type up front.
 */
int filter_set_new(struct filter_set **out, const char *expr, uint32_t snaplen);
struct filter_set *filter_set_free(struct filter_set *fs);
const char *filter_set_expr(const struct filter_set *fs);

/*
 * Compiles (once) for linktype and returns the cached filter in *out (owned
 * by fs, valid until filter_set_free). Returns 0, -EINVAL with libpcap's
 * message in eb or -E2BIG (both cached: later calls fail the same way), or
 * -ENOMEM.
 */
int filter_set_get(struct filter_set *fs, uint32_t linktype, const struct filter **out,
		   struct errbuf *eb);

/*
 * filter_set_get + filter_match. Returns 1 (match), 0 (no match), or the
 * negative errno of filter_set_get.
 */
int filter_set_match(struct filter_set *fs, uint32_t linktype, uint32_t caplen, uint32_t origlen,
		     const uint8_t *data, struct errbuf *eb);

/*
 * libpcap's short name ("EN10MB") and description ("Ethernet") of a
 * LINKTYPE_* value; static strings, NULL when libpcap does not know it.
 */
const char *filter_linktype_name(uint32_t linktype);
const char *filter_linktype_description(uint32_t linktype);

#endif
