/*
 * parse.h - the small request parsers of the API, kept apart from the
 * server so unit tests and fuzzers can call them: HTTP Range, decimal
 * numbers, comma lists, CloudShark date ranges, and a safe
 * Content-Disposition value.
 */
#ifndef CAPVAULT_API_PARSE_H
#define CAPVAULT_API_PARSE_H

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

/* `attachment; filename="..."; filename*=UTF-8''...`: the quoted form has
 * only printable ASCII without '"' and '\\' (others become '_'), the
 * extended form is percent-encoded. Truncates to fit; returns buf. */
char *api_content_disposition(const char *name, char *buf, size_t size);

#endif
