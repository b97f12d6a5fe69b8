/*
 * sink.h - where an import pass sends what it reads.
 *
 * ingest/ reads captures and knows nothing about storage; whoever stores
 * them (index/, or an in-memory double in tests) implements these ops.
 * One job per imported capture: begin, then data (each followed by
 * data_wait when the sink has it)/context/packet calls in file order, then
 * exactly one of commit or abort.
 */
#ifndef CAPVAULT_SINK_H
#define CAPVAULT_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "capfile.h"
#include "decomp.h"
#include "errbuf.h"

struct ring;

struct import_source {
	const char *path;        /* the source file, NULL for a stream */
	const char *name;        /* capture name to record */
	const char *const *tags; /* ntags tags to attach */
	size_t ntags;
	/* When set, the tags a duplicate may add to the capture it duplicates
	 * (otherwise all of tags). */
	const char *const *merge_tags;
	size_t nmerge_tags;
	bool has_merge_tags;
	const char *comment;     /* may be NULL */
	const char *source_path; /* recorded as the source instead of path (an
				    upload of a file its sender names, a file
				    the daemon claimed; "" records none: a
				    spool file); may be NULL */
	struct ring *ring;       /* the calling thread's ring, for the sink's own I/O */
	/* The caller removes the source after a successful import, so the sink
	 * may hard-link an uncompressed source into the store instead of
	 * copying it. */
	bool may_link;
	/* Set by import_fd: the file the pass reads. A sink that opens path
	 * itself must refuse another file (the path replaced in between). */
	bool has_inode;
	dev_t dev;
	ino_t ino;
	/* A stream's length when known before it is read (an upload's
	 * Content-Length), 0 when not: uncompressed, it is the capture's
	 * size, which the pass hands to the sink's expect. */
	uint64_t stream_bytes;
};

/* What the pass learnt, handed to commit. */
struct import_info {
	struct capfile_summary summary;
	enum decomp_kind compression;
	uint64_t source_bytes;  /* bytes read from the source */
	uint64_t capture_bytes; /* decompressed bytes (the stored object) */
	const char *truncation; /* message when the last record was cut, else NULL */
};

struct import_result {
	uint64_t capture_id;
	uint8_t sha256[32];
	bool duplicate;  /* these bytes were already stored; capture_id is the existing one */
	bool linked;     /* the source was hard-linked, not copied */
};

struct import_sink_ops {
	/* Starts a job; returns 0 or a negative errno (eb says why). */
	int (*begin)(void *sink, const struct import_source *src, void **job, struct errbuf *eb);
	/* Optional: the capture's size, before its first byte, when the source
	 * is a stream of known length that is not compressed. Returns 0 or a
	 * negative errno (eb says why), which ends the pass. */
	int (*expect)(void *job, uint64_t capture_bytes, struct errbuf *eb);
	/* Decompressed capture bytes, in order. */
	int (*data)(void *job, const void *buf, size_t len, struct errbuf *eb);
	/* Optional. When set, data may go on reading buf on another thread
	 * after it returns (hashing and storing it while the pass parses it),
	 * and the pass calls data_wait before buf is reused; data_wait returns
	 * 0 or the negative errno of that work (eb says why). */
	int (*data_wait)(void *job, struct errbuf *eb);
	/* Decoding context change (see capfile.h). */
	int (*context)(void *job, uint64_t offset, const void *blob, size_t len);
	/* One packet record. */
	int (*packet)(void *job, const struct capfile_packet *pkt);
	/* Publishes the capture durably; frees the job whatever it returns. */
	int (*commit)(void *job, const struct import_info *info, struct import_result *res,
		      struct errbuf *eb);
	/* Drops the job and every trace of it; frees the job. */
	void (*abort)(void *job);
};

#endif
