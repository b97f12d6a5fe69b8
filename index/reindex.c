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

#include "db.h"
#include "import.h"
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

int reindex_object(struct vault *v, struct ring *ring, const uint8_t sha[32], uint64_t objnum,
		   uint64_t *packets, struct errbuf *eb)
{
	char path[PATH_MAX];
	struct reindex rx = { .db = vault_db(v), .objnum = objnum };
	int err = store_object_path(vault_store(v), sha, path, sizeof(path));
	if (err)
		return errbuf_set(eb, err, "object path: %s", strerror(-err));
	if ((err = drop_index(rx.db, objnum, eb)))
		return err;
	struct import_source src = { .path = path, .name = path, .ring = ring };
	struct import_result res;
	struct import_info info;
	err = import_file(ring, &reindex_ops, &rx, &src, &res, &info, eb);
	if (err) {
		struct errbuf ignored = { { 0 } };
		drop_index(rx.db, objnum, &ignored);
		return err;
	}
	if (packets)
		*packets = info.summary.packets;
	return 0;
}
