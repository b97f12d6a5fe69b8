/*
 * vault.c - see vault.h.
 *
 * The import sink's commit is where invariant 1 is kept: the object is
 * published durably first (fsync, link, fsync folder), then the catalog
 * batch is written with sync. Only after both does the caller touch the
 * source. A crash in between leaves an unreferenced object, which
 * vault_open removes.
 */
#include "vault.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "db.h"
#include "pindex.h"
#include "retention.h"
#include "ring.h"

struct vault {
	struct store *store;
	struct db *db;
	struct catalog *catalog;
	_Atomic uint64_t min_free_bytes;
	_Atomic unsigned min_free_percent;
};

struct vault_job {
	struct vault *vault;
	struct store_writer *writer;
	struct db_batch *batch;
	struct capture_record *rec;
	struct pindex_builder *pindex;
};

static int vault_remove_unreferenced(void *opaque, const uint8_t sha[32], uint64_t size)
{
	struct vault *v = opaque;
	void *val = NULL;
	size_t vlen = 0;
	(void)size;
	int err = db_get(v->db, DB_CF_OBJECTS, sha, 32, &val, &vlen);
	free(val);
	if (err == -ENOENT)
		store_object_remove(v->store, sha);
	return 0;
}

/* Index entries of object numbers never committed (an import that died
 * after a partial index flush) are removed. */
static int vault_drop_uncommitted_index(struct vault *v, struct errbuf *eb)
{
	struct db_batch *batch = NULL;
	int err = db_batch_new(&batch);
	if (err)
		return err;
	pindex_delete_from(v->db, batch, catalog_next_objnum(v->catalog));
	err = db_write(v->db, batch, true, eb);
	db_batch_free(batch);
	return err;
}

/* Catalog hooks: under the catalog lock, an object losing its last
 * reference is unlinked before any import can commit a record for it, and
 * a commit whose object file is gone (pruned meanwhile) is refused. */
static int vault_object_check(void *opaque, const uint8_t sha[32])
{
	struct vault *v = opaque;
	int fd = store_object_open(v->store, sha);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

static int vault_object_release(void *opaque, const uint8_t sha[32])
{
	struct vault *v = opaque;
	return store_object_remove(v->store, sha);
}

void vault_set_min_free(struct vault *v, uint64_t min_free_bytes, unsigned min_free_percent)
{
	atomic_store(&v->min_free_bytes, min_free_bytes);
	atomic_store(&v->min_free_percent, min_free_percent);
}

int vault_remove(struct vault *v, uint64_t id, uint64_t *freed, struct errbuf *eb)
{
	uint8_t sha[32];
	uint64_t size = 0;
	bool unlink_object = false;
	struct capture_record *rec = NULL;
	if (freed)
		*freed = 0;
	if (catalog_get(v->catalog, id, &rec) == 0)
		size = rec->file_size;
	capture_record_free(rec);
	int err = catalog_remove(v->catalog, id, &unlink_object, sha, eb);
	if (err || !unlink_object)
		return err;
	/* The release hook unlinked it already; -ENOENT is that. */
	err = store_object_remove(v->store, sha);
	if (freed)
		*freed = size;
	return err == -ENOENT ? 0 : err;
}

int vault_open(struct vault **out, const char *root, struct errbuf *eb)
{
	return vault_open_flags(out, root, 0, eb);
}

int vault_open_flags(struct vault **out, const char *root, unsigned flags, struct errbuf *eb)
{
	bool cleanup = !(flags & VAULT_NO_CLEANUP);
	char dbdir[PATH_MAX];
	struct vault *v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	/* tmp/ is cleaned only under the index's lock: while another process
	 * has the store open, its imports in progress are in there. */
	int err = store_open_flags(&v->store, root, STORE_KEEP_TMP, eb);
	if (!err && snprintf(dbdir, sizeof(dbdir), "%s/index", root) >= (int)sizeof(dbdir))
		err = errbuf_set(eb, -ENAMETOOLONG, "%s: path too long", root);
	if (!err)
		err = db_open(&v->db, dbdir, eb);
	if (!err && cleanup)
		err = store_clean_tmp(v->store, eb);
	if (!err)
		err = catalog_new(&v->catalog, v->db, eb);
	if (!err) {
		struct catalog_object_hooks hooks = { .check = vault_object_check,
						      .release = vault_object_release,
						      .opaque = v };
		catalog_set_object_hooks(v->catalog, &hooks);
		if (cleanup)
			err = store_foreach_object(v->store, vault_remove_unreferenced, v);
	}
	if (!err && cleanup)
		err = vault_drop_uncommitted_index(v, eb);
	if (err) {
		if (eb && eb->msg[0] == '\0')
			errbuf_set(eb, err, "%s: %s", root, strerror(-err));
		vault_close(v);
		return err;
	}
	*out = v;
	return 0;
}

struct vault *vault_close(struct vault *v)
{
	if (!v)
		return NULL;
	catalog_free(v->catalog);
	db_close(v->db);
	store_close(v->store);
	free(v);
	return NULL;
}

struct catalog *vault_catalog(struct vault *v)
{
	return v->catalog;
}

struct store *vault_store(struct vault *v)
{
	return v->store;
}

struct db *vault_db(struct vault *v)
{
	return v->db;
}

static void vault_job_free(struct vault_job *job)
{
	if (!job)
		return;
	store_writer_free(job->writer);
	pindex_builder_free(job->pindex);
	db_batch_free(job->batch);
	capture_record_free(job->rec);
	free(job);
}

/* A compressed source cannot be linked: its object is the decompressed
 * bytes. Looks at the magic, as the reader does. */
static bool source_is_compressed(const char *path)
{
	uint8_t magic[4] = { 0 };
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic))
		return false;
	return (magic[0] == 0x1f && magic[1] == 0x8b) ||
	       (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd);
}

static int record_fill_source(struct capture_record *rec, const struct import_source *src)
{
	char abspath[PATH_MAX];
	rec->name = strdup(src->name ? src->name : "capture");
	if (!rec->name)
		return -ENOMEM;
	if (src->path || src->source_path) {
		const char *p = src->source_path	       ? src->source_path :
				realpath(src->path, abspath) ? abspath : src->path;
		if (!(rec->source_path = strdup(p)))
			return -ENOMEM;
	}
	if (src->comment && !(rec->comment = strdup(src->comment)))
		return -ENOMEM;
	for (size_t i = 0; i < src->ntags; i++) {
		int err = capture_record_add_tag(rec, src->tags[i]);
		if (err)
			return err;
	}
	return 0;
}

static int vault_begin(void *sink, const struct import_source *src, void **out,
		       struct errbuf *eb)
{
	struct vault *v = sink;
	int err = retention_check_min_free(v->store, atomic_load(&v->min_free_bytes),
					   atomic_load(&v->min_free_percent), eb);
	if (err)
		return err;
	struct vault_job *job = calloc(1, sizeof(*job));
	if (!job)
		return -ENOMEM;
	job->vault = v;
	job->rec = calloc(1, sizeof(*job->rec));
	err = job->rec ? db_batch_new(&job->batch) : -ENOMEM;
	if (!err)
		err = record_fill_source(job->rec, src);
	if (!err) {
		job->rec->objnum = catalog_next_objnum(v->catalog);
		err = pindex_builder_new(&job->pindex, v->db, job->rec->objnum);
	}
	const char *link_source = NULL;
	bool plain_file = !err && src->path && !source_is_compressed(src->path);
	if (plain_file && src->may_link)
		link_source = src->path;
	if (!err)
		err = store_writer_new(v->store, src->ring, link_source, &job->writer, eb);
	/* Not linked: the kernel copies the file's bytes (best effort). */
	if (!err && plain_file && !store_writer_linked(job->writer))
		store_writer_copy_from(job->writer, src->path);
	if (!err && src->has_inode && !store_writer_source_is(job->writer, src->dev, src->ino))
		err = errbuf_set(eb, -EAGAIN, "the source changed while it was being imported");
	if (err) {
		vault_job_free(job);
		return err;
	}
	*out = job;
	return 0;
}

static int vault_data(void *opaque, const void *buf, size_t len, struct errbuf *eb)
{
	struct vault_job *job = opaque;
	return store_writer_write_async(job->writer, buf, len, eb);
}

static int vault_data_wait(void *opaque, struct errbuf *eb)
{
	struct vault_job *job = opaque;
	return store_writer_wait(job->writer, eb);
}

static int vault_context(void *opaque, uint64_t offset, const void *blob, size_t len)
{
	struct vault_job *job = opaque;
	return pindex_builder_context(job->pindex, offset, blob, len);
}

static int vault_packet(void *opaque, const struct capfile_packet *pkt)
{
	struct vault_job *job = opaque;
	return pindex_builder_packet(job->pindex, pkt);
}

/* Removes index entries a builder may have flushed for a job that did not
 * commit. Best effort: leftovers are only space, never wrong answers. */
static void vault_drop_job_index(struct vault_job *job)
{
	struct db_batch *batch = NULL;
	if (db_batch_new(&batch) < 0)
		return;
	pindex_delete_object(job->vault->db, batch, job->rec->objnum);
	db_write(job->vault->db, batch, false, NULL);
	db_batch_free(batch);
}

static void record_fill_summary(struct capture_record *rec, const struct import_info *info)
{
	const struct capfile_summary *s = &info->summary;
	snprintf(rec->format, sizeof(rec->format), "%s", capfile_format_name(s->format));
	snprintf(rec->compression, sizeof(rec->compression), "%s",
		 decomp_kind_name(info->compression));
	rec->source_size = info->source_bytes;
	rec->version_major = s->version_major;
	rec->version_minor = s->version_minor;
	rec->big_endian = s->big_endian;
	rec->nanosecond = s->nanosecond;
	rec->snaplen = s->snaplen;
	rec->nlinktypes = s->nlinktypes < 16 ? s->nlinktypes : 16;
	memcpy(rec->linktypes, s->linktypes, rec->nlinktypes * sizeof(rec->linktypes[0]));
	rec->interfaces = s->interfaces;
	rec->sections = s->sections;
	rec->packets = s->packets;
	rec->data_bytes = s->data_bytes;
	rec->wire_bytes = s->wire_bytes;
	rec->first_ts_ns = s->first_ts_ns;
	rec->last_ts_ns = s->last_ts_ns;
	rec->earliest_ts_ns = s->earliest_ts_ns;
	rec->latest_ts_ns = s->latest_ts_ns;
	rec->time_ordered = s->time_ordered;
	rec->oversized = s->oversized;
	rec->truncated = s->truncated;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int vault_commit(void *opaque, const struct import_info *info, struct import_result *res,
			struct errbuf *eb)
{
	struct vault_job *job = opaque;
	struct capture_record *rec = job->rec;
	uint64_t existing = 0;
	record_fill_summary(rec, info);
	if (info->truncation && !(rec->error = strdup(info->truncation))) {
		vault_job_free(job);
		return -ENOMEM;
	}
	rec->import_time_ns = now_ns();
	/* The index first: building its batch keeps this thread busy while
	 * the copy's last chunks reach the disk, which publishing waits for. */
	int err = pindex_builder_finish(job->pindex, job->batch, &rec->index_bytes, eb);
	if (!err)
		err = store_writer_finish(job->writer, rec->sha256, &rec->file_size, eb);
	if (!err)
		err = store_writer_publish(job->writer, eb);
	if (err >= 0)
		res->linked = store_writer_linked(job->writer) && err != STORE_EXISTS;
	if (err >= 0)
		err = catalog_commit(job->vault->catalog, rec, job->batch, &existing, eb);
	if (err != 0)
		vault_drop_job_index(job);
	if (err >= 0) {
		memcpy(res->sha256, rec->sha256, 32);
		res->duplicate = err == CATALOG_DUPLICATE;
		res->capture_id = res->duplicate ? existing : rec->id;
		err = 0;
	}
	vault_job_free(job);
	return err;
}

static void vault_abort(void *opaque)
{
	struct vault_job *job = opaque;
	if (job->rec)
		vault_drop_job_index(job);
	vault_job_free(job);
}

const struct import_sink_ops vault_sink_ops = {
	.begin = vault_begin,
	.data = vault_data,
	.data_wait = vault_data_wait,
	.context = vault_context,
	.packet = vault_packet,
	.commit = vault_commit,
	.abort = vault_abort,
};
