/*
 * s3prefix.h - which object_store prefixes the S3 backend takes. One
 * rule for both places that check it: the configuration
 * (config/config_schema.c, whose message names file:line:col) and
 * objstore_s3_new() (for any other caller). Header-only because the
 * configuration library links no index code.
 *
 * Why each rule: an S3 key is at most 1024 bytes, and a prefix too long
 * for the keys made from it would leave every object without a key of its
 * own. A "." or ".." segment is removed by the store or by an HTTP
 * library normalising the path (RFC 3986, 5.2.4), so the objects would land
 * under another prefix, or in another bucket, than the one listed; an
 * empty segment ("//", a leading "/") is merged the same way by some
 * stores and proxies.
 */
#ifndef CAPVAULT_S3PREFIX_H
#define CAPVAULT_S3PREFIX_H

#include <string.h>

#define S3_KEY_MAX 1024 /* S3's longest key, in bytes */
/* The longest key the backend writes after the prefix: "objects/ab/" and
 * 64 hex digits (a multipart upload uses the object's key; a listing
 * asks for "<prefix>objects/"). */
#define S3_KEY_TAIL 75
#define S3_PREFIX_MAX 949
_Static_assert(S3_PREFIX_MAX == S3_KEY_MAX - S3_KEY_TAIL, "S3_PREFIX_MAX");

/* NULL when the backend can use prefix, else why not: a phrase that does
 * not repeat the prefix. */
static inline const char *s3_prefix_problem(const char *prefix)
{
	if (strlen(prefix) > S3_PREFIX_MAX)
		return "is longer than 949 bytes (an S3 key is at most 1024 bytes: the prefix, "
		       "then objects/ab/ and 64 hex digits)";
	for (const char *p = prefix; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return "holds a control character";
	}
	for (const char *seg = prefix, *slash; (slash = strchr(seg, '/')); seg = slash + 1) {
		size_t n = (size_t)(slash - seg);
		if (n == 0)
			return seg == prefix ? "starts with '/'" : "has an empty segment ('//')";
		if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return "has a '.' or '..' segment, which would put the objects under "
			       "another prefix or bucket";
	}
	return NULL;
}

#endif
