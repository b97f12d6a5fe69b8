/*
 * import.h - one import pass over one capture: detect and decompress the
 * bytes, hand them to the sink and to the capture reader, whose packets go
 * to the sink too. Nothing is read twice and nothing is held whole.
 *
 * The pass is push-based (import_pass_feed) so an HTTP upload can drive it
 * chunk by chunk; import_file and import_fd drive it from io_uring reads.
 */
#ifndef CAPVAULT_IMPORT_H
#define CAPVAULT_IMPORT_H

#include "ring.h"
#include "sink.h"

struct import_pass;

/* Starts a pass and the sink job. Returns 0 or a negative errno (eb). */
int import_pass_new(struct import_pass **out, const struct import_sink_ops *ops, void *sink,
		    const struct import_source *src, struct errbuf *eb);
/* Feeds the next raw (possibly compressed) bytes. Returns 0 or a negative
 * errno; -EINVAL means the input is not a valid capture (eb has the byte
 * offset). */
int import_pass_feed(struct import_pass *p, const void *buf, size_t len, struct errbuf *eb);
/* Ends the input and commits the capture. Returns 0 (res and info filled)
 * or a negative errno; on error the sink job is aborted. */
int import_pass_finish(struct import_pass *p, struct import_result *res, struct import_info *info,
		       struct errbuf *eb);
/* Aborts the pass if not finished, and frees it. Accepts NULL. */
struct import_pass *import_pass_free(struct import_pass *p);

/*
 * Imports the file at src->path through ring reads. Returns 0 (res and,
 * when not NULL, info filled), or a negative errno with eb naming the
 * file and, for malformed input, the byte offset. On failure nothing is
 * stored and the source is untouched.
 */
int import_file(struct ring *ring, const struct import_sink_ops *ops, void *sink,
		const struct import_source *src, struct import_result *res,
		struct import_info *info, struct errbuf *eb);

/* Same, from an open descriptor read to its end (a pipe, stdin, a tape). */
int import_fd(struct ring *ring, const struct import_sink_ops *ops, void *sink, int fd,
	      const struct import_source *src, struct import_result *res,
	      struct import_info *info, struct errbuf *eb);

#endif
