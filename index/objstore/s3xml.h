/*
 * s3xml.h - the S3 answers' XML (ListObjectsV2 pages, the upload id of a
 * multipart upload, <Error> bodies), read with expat: the only file that
 * includes it.
 */
#ifndef CAPVAULT_S3XML_H
#define CAPVAULT_S3XML_H

#include <stddef.h>

/*
 * Called at the end of every element with its depth (the root is 1), its
 * name without a namespace and its text (the concatenated character data
 * directly inside it, at most 4 KiB; "" for an element holding only other
 * elements). Nonzero stops the parse and is returned.
 */
typedef int (*s3xml_fn)(void *opaque, unsigned depth, const char *name, const char *text);

/* Returns 0, fn's nonzero value, -EIO for XML that is not well formed or
 * has an element text longer than 4 KiB (never passed on cut short), or
 * -ENOMEM. */
int s3xml_parse(const char *xml, size_t len, s3xml_fn fn, void *opaque);

/* Copies the text of the first element named name at depth (e.g. 2 for
 * <InitiateMultipartUploadResult><UploadId>) to out. Returns 0, -ENOENT
 * when there is none (or the text does not fit), -EIO, -ENOMEM. */
int s3xml_find(const char *xml, size_t len, unsigned depth, const char *name, char *out,
	       size_t size);

#endif
