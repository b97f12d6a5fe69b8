/*
 * reindex.c - see reindex.h. The sink below implements the ingest sink
 * ops but stores nothing: the bytes are already the object, so only the
 * packet index builder sees the pass.
 */
#include "reindex.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog.h"
#include "db.h"
#include "import.h"
#include "objread.h"
#include "pindex.h"
#include "store.h"
#include "vault.h"

struct reindex {
	struct db *db;
	uint64_t objnum;
	struct pindex_builder *b;
};

/* Removes every entry of objnum (a builder may have flushed some). */
static int drop_index(struct db *db, uint64_t objnum, struct errbuf *eb)
{
	struct db_batch *batch = NULL;
	int err = db_batch_new(&batch);
	if (err)
		return errbuf_set(eb, err, "out of memory");
	pindex_delete_object(db, batch, objnum);
	err = db_write(db, batch, true, eb);
	db_batch_free(batch);
	return err;
}

static int rx_begin(void *sink, const struct import_source *src, void **job, struct errbuf *eb)
{
	struct reindex *rx = sink;
	(void)src;
	int err = pindex_builder_new(&rx->b, rx->db, rx->objnum);
	if (err)
		return errbuf_set(eb, err, "index builder: %s", strerror(-err));
	*job = rx;
	return 0;
}

static int rx_data(void *job, const void *buf, size_t len, struct errbuf *eb)
{
	(void)job, (void)buf, (void)len, (void)eb;
	return 0;
}

static int rx_context(void *job, uint64_t offset, const void *blob, size_t len)
{
	struct reindex *rx = job;
	return pindex_builder_context(rx->b, offset, blob, len);
}

static int rx_packet(void *job, const struct capfile_packet *pkt)
{
	struct reindex *rx = job;
	return pindex_builder_packet(rx->b, pkt);
}

static int rx_commit(void *job, const struct import_info *info, struct import_result *res,
		     struct errbuf *eb)
{
	struct reindex *rx = job;
	struct db_batch *batch = NULL;
	uint64_t index_bytes = 0;
	(void)info, (void)res;
	int err = db_batch_new(&batch);
	if (!err)
		err = pindex_builder_finish(rx->b, batch, &index_bytes, eb);
	if (!err)
		err = db_write(rx->db, batch, true, eb);
	db_batch_free(batch);
	rx->b = pindex_builder_free(rx->b);
	return err;
}

static void rx_abort(void *job)
{
	struct reindex *rx = job;
	rx->b = pindex_builder_free(rx->b);
}

static const struct import_sink_ops reindex_ops = {
	.begin = rx_begin,
	.data = rx_data,
	.context = rx_context,
	.packet = rx_packet,
	.commit = rx_commit,
	.abort = rx_abort,
};

#define REMOTE_CHUNK (256u * 1024)

/* A tiered object: the same pass, fed from r (the object store, or the
 * cache when it holds the object) a chunk at a time. */
static int import_remote(struct reindex *rx, struct objread *r, struct ring *ring,
			 struct import_info *info, struct errbuf *eb)
{
	struct import_source src = { .name = "(object store)", .ring = ring };
	struct import_result res;
	struct import_pass *p = NULL;
	char *buf = malloc(REMOTE_CHUNK);
	int err = buf ? import_pass_new(&p, &reindex_ops, rx, &src, eb) : -ENOMEM;
	for (ssize_t n = 1; !err && n > 0;) {
		n = objread_read(r, buf, REMOTE_CHUNK, eb);
		err = n < 0 ? (int)n : n > 0 ? import_pass_feed(p, buf, (size_t)n, eb) : 0;
	}
	if (!err)
		err = import_pass_finish(p, &res, info, eb);
	import_pass_free(p);
	free(buf);
	return err;
}

/* A tiered object (or one whose local copy is gone) opened for reading
 * before its index is dropped, so a store that cannot serve it leaves
 * the index as it was: 0 with *r, 1 when it is local, or an error. */
static int open_remote(struct vault *v, const uint8_t sha[32], struct objread **r,
		       struct errbuf *eb)
{
	uint64_t size = 0, refs, objnum;
	int fd = -1;
	int err = vault_object_open(v, sha, &fd);
	if (fd >= 0)
		close(fd);
	if (err == 0 || (err < 0 && err != -EREMOTEIO))
		return 1; /* the local path (its errors said by the import) */
	if ((err = catalog_object_get(vault_catalog(v), sha, &size, &refs, &objnum)))
		return errbuf_set(eb, err, "object record: %s", strerror(-err));
	return objread_open(r, v, 0, sha, size, eb);
}

int reindex_object(struct vault *v, struct ring *ring, const uint8_t sha[32], uint64_t objnum,
		   uint64_t *packets, struct errbuf *eb)
{
	char path[PATH_MAX];
	struct reindex rx = { .db = vault_db(v), .objnum = objnum };
	struct objread *remote = NULL;
	int err = open_remote(v, sha, &remote, eb);
	if (err < 0)
		return err;
	if (!remote && (err = store_object_path(vault_store(v), sha, path, sizeof(path))))
		return errbuf_set(eb, err, "object path: %s", strerror(-err));
	if ((err = drop_index(rx.db, objnum, eb))) {
		objread_free(remote);
		return err;
	}
	struct import_source src = { .path = path, .name = path, .ring = ring };
	struct import_result res;
	struct import_info info;
	err = remote ? import_remote(&rx, remote, ring, &info, eb)
		     : import_file(ring, &reindex_ops, &rx, &src, &res, &info, eb);
	objread_free(remote);
	if (err) {
		struct errbuf ignored = { { 0 } };
		drop_index(rx.db, objnum, &ignored);
		return err;
	}
	if (packets)
		*packets = info.summary.packets;
	return 0;
}
