/*
 * parse.h - the small request parsers of the API, kept apart from the
 * server so unit tests and fuzzers can call them: HTTP Range, decimal
 * numbers, comma lists, CloudShark date ranges, a safe
 * Content-Disposition value, and the sort order and cursor of a listing.
 */
#ifndef CAPVAULT_API_PARSE_H
#define CAPVAULT_API_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A Range header against a file of size bytes. Returns 0 with the one
 * range in *start and *len; 1 when the header is absent, not a "bytes" range
 * or has several ranges (serve the whole file, RFC 9110 allows it);
 * -ERANGE when it cannot be satisfied (416).
 */
int api_parse_range(const char *header, uint64_t size, uint64_t *start, uint64_t *len);

/* Strict decimal: digits only, no sign, no overflow. 0 or -EINVAL. */
int api_parse_u64(const char *s, uint64_t *out);

/* Splits "a, b,,c" into malloc'd strings (spaces trimmed, empties
 * dropped), appending to *v / *n. Returns 0 or -ENOMEM. */
int api_split_list(const char *s, char ***v, size_t *n);
void api_strv_free(char **v, size_t n);

/* CloudShark's search[date]: "M/D/YYYY-M/D/YYYY" or one "M/D/YYYY", UTC
 * days; *from_ns inclusive, *to_ns exclusive (end of the last day).
 * Returns 0 or -EINVAL. */
int api_parse_cs_date_range(const char *s, uint64_t *from_ns, uint64_t *to_ns);

/* CloudShark path segments (/api/v1/<token>/<call>/...) as they are
 * routed: the token (segment 2) in lower case, since CloudShark's tokens
 * are hexadecimal compared without case, and a ".json" format suffix cut
 * from the call (segment 3: search.json is search), as CloudShark's
 * routes take it. */
void api_cs_normalize(char **seg, size_t nseg);

/* CloudShark's info values: a number as a string with two decimals
 * ("12.30"; "0.00" for a value that is not finite), and a time in
 * nanoseconds as "YYYY-MM-DDTHH:MM:SS+00:00" (what Python's
 * strptime('%Y-%m-%dT%H:%M:%S%z') reads). Return buf. */
char *api_cs_decimal(double v, char *buf, size_t size);
char *api_cs_time(int64_t ns, char *buf, size_t size);

/* The name a decompressed upload is stored under: name without a
 * trailing ".gz", ".gzip" or ".zst" (any case) when the bytes were
 * compressed that way; NULL when nothing is to be cut (or nothing
 * would be left). Caller frees. */
char *api_decompressed_name(const char *name, const char *compression);

/* The end of a multipart body's close delimiter ("CRLF--boundary--",
 * RFC 2046 5.1.1) in a body read in pieces: what follows it is the
 * epilogue, which a reader ignores. */
#define API_BOUNDARY_MAX 70
struct api_mp_end {
	char delim[API_BOUNDARY_MAX + 7];
	uint8_t fail[API_BOUNDARY_MAX + 7]; /* KMP failure function of delim */
	size_t dlen, matched;
	bool done;
};
/* From a Content-Type's boundary parameter (quoted or not). 0, or
 * -EINVAL when it has none or one longer than API_BOUNDARY_MAX. */
int api_mp_end_init(struct api_mp_end *m, const char *content_type);
/* How many bytes of buf come before the end of the close delimiter
 * (len when it does not end in buf; 0 once it has been seen). */
size_t api_mp_end_feed(struct api_mp_end *m, const char *buf, size_t len);

/* `attachment; filename="..."; filename*=UTF-8''...` for a name of any
 * bytes (RFC 6266). The extended form is the name's escaped form
 * (textesc.h, with TEXT_ESC_CONTROLS: always UTF-8, and lossless)
 * percent-encoded; the quoted form, for clients without RFC 5987, has
 * only printable ASCII without '"', '\\' and '%' (others become '_').
 * API_DISPOSITION_MAX holds any name up to 1 KiB whole; longer ones are
 * cut at an escape's end. Returns buf. */
#define API_DISPOSITION_MAX (1024 * 4 * 3 + 400)
char *api_content_disposition(const char *name, char *buf, size_t size);

/* The orders GET /v1/captures offers: capture id (the default), import
 * time, first (earliest) and last (latest) packet time, name, stored size,
 * packet count. */
enum api_sort_key {
	API_SORT_ID,
	API_SORT_IMPORTED,
	API_SORT_FIRST_PACKET,
	API_SORT_LAST_PACKET,
	API_SORT_NAME,
	API_SORT_SIZE,
	API_SORT_PACKETS,
};
struct api_sort {
	enum api_sort_key key;
	bool desc;
};
/* "key" or "-key" (descending). Returns 0 or -EINVAL. */
int api_parse_sort(const char *s, struct api_sort *out);
/* The keys as the error message lists them: "id, imported, ...". */
extern const char api_sort_keys_text[];

/* Where a capture stands in a sorted listing: its value of the sort key
 * (num, or name for API_SORT_NAME, never NULL there) and its id, which
 * breaks ties. */
struct api_sort_pos {
	uint64_t num;
	char *name;
	uint64_t id;
};
/* Orders a before b (< 0), after (> 0); descending reverses both the key
 * and the tie-break, so a listing and its cursor agree on one order. */
int api_sort_cmp(const struct api_sort *s, const struct api_sort_pos *a,
		 const struct api_sort_pos *b);
/* The cursor after p: "SPEC:VALUE:ID", SPEC as given to api_parse_sort,
 * a name as hex. Malloc'd; NULL when out of memory. */
char *api_sort_cursor(const struct api_sort *s, const struct api_sort_pos *p);
/* Reads a cursor api_sort_cursor made for the same order into *p (p->name
 * malloc'd for API_SORT_NAME). Returns 0, or -EINVAL (malformed, or made
 * for another order), or -ENOMEM. */
int api_parse_sort_cursor(const char *text, const struct api_sort *s, struct api_sort_pos *p);

#endif
