/*
 * daemon_files.c - what capvaultd's workers do to the files of an import
 * folder: claim a file (rename it into the folder's DAEMON_CLAIM_DIR),
 * hand it back, find what a killed run left claimed, and move a file into
 * the failed or a move: folder without ever replacing anything there.
 *
 * Renames never replace: renameat2(RENAME_NOREPLACE), or where a file
 * system lacks it, link + unlink, or a rename once the destination was
 * seen free (only for destinations the daemon alone writes).
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <linux/openat2.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"

#define UNIQUE_TRIES 10000

/* mkdir -p; an existing folder is fine. */
static int mkdir_p(const char *dir, mode_t mode)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

bool daemon_same_file(const char *path, const struct stat *st)
{
	struct stat now;
	return lstat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

/* rename(2) that never replaces dst. Where the file system lacks
 * RENAME_NOREPLACE (some FUSE and network file systems), link + unlink,
 * which fails on an existing dst too; where it has no hard links either,
 * a rename once dst was seen free (the destinations are the daemon's:
 * its claims, failed and move folders). src is unlinked only while it
 * still names the linked inode. */
static int rename_noreplace(const char *src, const char *dst)
{
	if (renameat2(AT_FDCWD, src, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -errno;
	if (link(src, dst) == 0) {
		struct stat st;
		if (lstat(dst, &st) == 0 && daemon_same_file(src, &st) && unlink(src) < 0) {
			int err = -errno;
			unlink(dst); /* not moved: no second name left behind */
			return err;
		}
		return 0;
	}
	if (errno == EEXIST || errno == ENOENT)
		return -errno;
	struct stat st;
	if (lstat(dst, &st) == 0)
		return -EEXIST;
	return rename(src, dst) < 0 ? -errno : 0;
}

/* The n-th free name for name: n = 0 is name itself, else a number before
 * the first extension (a.pcap.gz -> a.1.pcap.gz), so the name still says
 * what the file is. */
static int unique_name(const char *dir, const char *name, unsigned n, char *out, size_t size)
{
	const char *dot = strchr(name + 1, '.');
	int stem = dot ? (int)(dot - name) : (int)strlen(name);
	int len = n == 0 ? snprintf(out, size, "%s/%s", dir, name) :
			   snprintf(out, size, "%s/%.*s.%u%s", dir, stem, name, n, dot ? dot : "");
	return len < 0 || (size_t)len >= size ? -ENAMETOOLONG : 0;
}

/* The name a moved file takes: its own, or, when that with a variant's
 * ".NNNN" and its note's ".error" would pass NAME_MAX (a 255-byte name:
 * no note could be made and the file stayed), cut before its extension.
 * The note names the file's path as it was found. */
#define MOVED_NAME_MAX (NAME_MAX - sizeof(".error") + 1 - sizeof(".NNNN") + 1)
static void fit_name(const char *name, char out[NAME_MAX + 1])
{
	size_t len = strlen(name);
	const char *dot = strchr(name + 1, '.');
	size_t ext = dot && strlen(dot) <= 32 ? strlen(dot) : 0;

	if (len <= MOVED_NAME_MAX)
		snprintf(out, NAME_MAX + 1, "%s", name);
	else
		snprintf(out, NAME_MAX + 1, "%.*s%s", (int)(MOVED_NAME_MAX - ext), name,
			 ext ? dot : "");
}

/* Writes the .error note for dst, which must not exist yet. */
static int write_error_note(const char *dst, const char *msg)
{
	char note[PATH_MAX];
	if (snprintf(note, sizeof(note), "%s.error", dst) >= (int)sizeof(note))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd =
		open(note, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (dprintf(fd, "%s\n", msg) < 0 || fsync(fd) < 0) {
		int err = -errno;
		unlink(note);
		return err;
	}
	return 0;
}

static void drop_error_note(const char *dst)
{
	char note[PATH_MAX];
	if (snprintf(note, sizeof(note), "%s.error", dst) < (int)sizeof(note))
		unlink(note);
}

/* Moves path to dir/rel_dir/<name, or the first free variant>, keeping the
 * subfolder it was found in, never replacing a file there; with note, a
 * <dst>.error note is written first (so both names are free). dst gets
 * the destination. */
int daemon_move_into(const char *path, const char *name, const char *dir, const char *rel_dir,
		     const char *note, char *dst, size_t size)
{
	char sub[PATH_MAX], fit[NAME_MAX + 1];
	if (snprintf(sub, sizeof(sub), "%s%s%s", dir, *rel_dir ? "/" : "", rel_dir) >= (int)sizeof(sub))
		return -ENAMETOOLONG;
	fit_name(name, fit);
	int err = mkdir_p(sub, 0755);
	for (unsigned n = 0; !err && n < UNIQUE_TRIES; n++) {
		err = unique_name(sub, note ? fit : name, n, dst, size);
		if (!err && note)
			err = write_error_note(dst, note);
		if (err == -EEXIST) {
			err = 0;
			continue;
		}
		if (!err) {
			err = rename_noreplace(path, dst);
			if (err && note)
				drop_error_note(dst); /* ours: written just above */
		}
		if (err != -EEXIST)
			return err;
		err = 0;
	}
	return err ? err : -EEXIST;
}

int daemon_destination_check(const char *root, const char *dir)
{
	size_t n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		n--;
	if (strncmp(dir, root, n) != 0 || dir[n] != '/')
		return 0;
	const char *first = dir + n;
	while (*first == '/')
		first++;
	size_t len = strcspn(first, "/");
	if (len == 0)
		return 0;
	char top[PATH_MAX];
	if (snprintf(top, sizeof(top), "%.*s", (int)(first - dir + (ptrdiff_t)len), dir) >=
	    (int)sizeof(top))
		return -ENAMETOOLONG;
	struct stat st;
	if (mkdir(top, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(top, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return -EPERM;
	return 0;
}

const char *daemon_base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* ---- claims ---- */

/* The import folder an item was found in: its path less "/rel_dir/name". */
static int folder_root(const struct daemon_item *it, char *out, size_t size)
{
	size_t n = (size_t)(daemon_base_name(it->path) - it->path);
	size_t rel = strlen(it->rel_dir);
	if (n == 0)
		return -EINVAL;
	n--; /* the slash before the name */
	if (rel) {
		if (n < rel + 1 || strncmp(it->path + n - rel, it->rel_dir, rel) != 0)
			return -EINVAL;
		n -= rel + 1;
	}
	if (n >= size)
		return -ENAMETOOLONG;
	memcpy(out, it->path, n);
	out[n] = '\0';
	return 0;
}

/* Creates the folder's claim folder, private to the daemon. One that is
 * not a folder the daemon owns (a symlink planted by a writer) is refused. */
static int claim_dir(const char *root, const char *rel_dir, char *out, size_t size)
{
	char top[PATH_MAX];
	struct stat st;
	if (snprintf(top, sizeof(top), "%s/" DAEMON_CLAIM_DIR, root) >= (int)sizeof(top) ||
	    snprintf(out, size, "%s%s%s", top, *rel_dir ? "/" : "", rel_dir) >= (int)size)
		return -ENAMETOOLONG;
	if (mkdir(top, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(top, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return -EPERM;
	return *rel_dir ? mkdir_p(out, 0700) : 0;
}

/* Opens rel (a path below the import folder root, "" for the root) with
 * flags, following no symlink on the way and never leaving root: a
 * subfolder a writer swapped for a symlink (to the store's index/, say)
 * is refused with -ELOOP, not followed. -ENOSYS where the
 * kernel has no openat2 (before 5.6). Returns the descriptor. */
static int open_beneath(const char *root, const char *rel, int flags)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -errno;
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof(how));
	if (fd < 0)
		return errno == EXDEV ? -ELOOP : -errno; /* left root: as a symlink */
	return (int)fd;
}

int daemon_open_beneath(const struct daemon_item *it, int flags)
{
	char root[PATH_MAX], rel[PATH_MAX];
	int err = folder_root(it, root, sizeof(root));
	if (err)
		return err;
	if (snprintf(rel, sizeof(rel), "%s%s%s", it->rel_dir, *it->rel_dir ? "/" : "",
		     daemon_base_name(it->path)) >= (int)sizeof(rel))
		return -ENAMETOOLONG;
	int fd = open_beneath(root, rel, flags);
	if (fd == -ENOSYS && (fd = open(it->path, flags | O_CLOEXEC)) < 0)
		fd = -errno;
	return fd;
}

/* The claim's folder below root, opened O_PATH through no symlink. */
static int open_claim_dir(const char *root, const char *rel_dir)
{
	char rel_claim[PATH_MAX];
	if (snprintf(rel_claim, sizeof(rel_claim), "%s%s%s", DAEMON_CLAIM_DIR, *rel_dir ? "/" : "",
		     rel_dir) >= (int)sizeof(rel_claim))
		return -ENAMETOOLONG;
	return open_beneath(root, rel_claim, O_PATH | O_DIRECTORY);
}

/* The rename of the claim, between the folders' descriptors: a subfolder
 * swapped for a symlink since the file was seen is never followed.
 * *claim_dir gets the claim folder's descriptor (-1 without openat2). */
static int claim_rename(const char *root, const struct daemon_item *it, const char *name,
			const char *dst, int *dir_out)
{
	*dir_out = -1;
	_cleanup_close_ int src = open_beneath(root, it->rel_dir, O_PATH | O_DIRECTORY);
	if (src == -ENOSYS)
		return rename_noreplace(it->path, dst);
	if (src < 0)
		return src;
	int dir = open_claim_dir(root, it->rel_dir);
	if (dir < 0)
		return dir;
	int err = renameat2(src, name, dir, name, RENAME_NOREPLACE) == 0 ? 0 : -errno;
	if (err == -EINVAL || err == -ENOSYS || err == -EOPNOTSUPP)
		err = rename_noreplace(it->path, dst); /* no RENAME_NOREPLACE here */
	if (err)
		close(dir);
	else
		*dir_out = dir;
	return err;
}

/* Holds the claim through its folder's descriptor dir (taken over; -1:
 * none): claim_at is the claim by /proc/self/fd. Without /proc, the
 * descriptor is kept and claim_at is the plain path. */
static int anchor_claim(struct daemon_item *it, int dir)
{
	it->claim_dir = dir;
	if (dir >= 0 && access("/proc/self/fd", X_OK) == 0) {
		if (asprintf(&it->claim_at, "/proc/self/fd/%d/%s", dir,
			     daemon_base_name(it->claim)) < 0)
			it->claim_at = NULL;
	} else {
		it->claim_at = strdup(it->claim);
	}
	return it->claim_at ? 0 : -ENOMEM;
}

int daemon_claim_anchor(struct daemon_item *it)
{
	char root[PATH_MAX];
	if (!it->claim || it->claim_at)
		return 0;
	int err = folder_root(it, root, sizeof(root));
	if (err)
		return err;
	int dir = open_claim_dir(root, it->rel_dir);
	if (dir < 0 && dir != -ENOSYS)
		return dir;
	return anchor_claim(it, dir);
}

const char *daemon_claim_path(const struct daemon_item *it)
{
	return it->claim_at ? it->claim_at : it->claim;
}

/* Renames the file into the claim folder. Returns 0 (it->claim set) or a
 * negative errno: -ENOENT when the name is gone, -ELOOP when a folder on
 * its way is a symlink. */
int daemon_claim(struct daemon_item *it)
{
	char root[PATH_MAX], dir[PATH_MAX], dst[PATH_MAX];
	int err = folder_root(it, root, sizeof(root));
	if (!err)
		err = claim_dir(root, it->rel_dir, dir, sizeof(dir));
	const char *name = daemon_base_name(it->path);
	if (!err && snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst))
		err = -ENAMETOOLONG;
	int dirfd = -1;
	if (!err)
		err = claim_rename(root, it, name, dst, &dirfd);
	if (!err && !(it->claim = strdup(dst))) {
		if (dirfd >= 0)
			close(dirfd);
		rename_noreplace(dst, it->path);
		err = -ENOMEM;
	} else if (!err && anchor_claim(it, dirfd) < 0) {
		rename_noreplace(dst, it->path);
		daemon_claim_release(it);
		err = -ENOMEM;
	}
	return err;
}

int daemon_claim_intact(const struct daemon_item *it)
{
	char root[PATH_MAX], top[PATH_MAX];
	struct stat st;
	if (!it->claim)
		return 0;
	int err = folder_root(it, root, sizeof(root));
	if (err)
		return err;
	if (snprintf(top, sizeof(top), "%s/" DAEMON_CLAIM_DIR, root) >= (int)sizeof(top))
		return -ENAMETOOLONG;
	if (lstat(top, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) && st.st_uid == geteuid() ? 0 : -EPERM;
}

/* Hands a claimed file back under its name: from the claim's folder
 * descriptor into its own folder opened beneath the import folder (a
 * subfolder swapped for a symlink meanwhile is not followed: -ELOOP).
 * Returns 0, or -EEXIST when the name holds another file by now (the
 * file stays claimed). */
int daemon_unclaim(struct daemon_item *it)
{
	char root[PATH_MAX], dst[PATH_MAX];
	if (!it->claim)
		return 0;
	int err = daemon_claim_intact(it);
	if (!err)
		err = folder_root(it, root, sizeof(root));
	if (err)
		return err;
	_cleanup_close_ int dir = open_beneath(root, it->rel_dir, O_PATH | O_DIRECTORY);
	if (dir >= 0 && snprintf(dst, sizeof(dst), "/proc/self/fd/%d/%s", dir,
				 daemon_base_name(it->path)) >= (int)sizeof(dst))
		return -ENAMETOOLONG;
	if (dir < 0 && dir != -ENOSYS)
		return dir;
	bool by_fd = dir >= 0 && access("/proc/self/fd", X_OK) == 0;
	err = rename_noreplace(daemon_claim_path(it), by_fd ? dst : it->path);
	if (err && err != -ENOENT)
		return err;
	daemon_claim_release(it);
	return 0;
}

/* The claim is done with (removed or moved by the caller). */
void daemon_claim_release(struct daemon_item *it)
{
	free(it->claim);
	free(it->claim_at);
	if (it->claim_dir >= 0)
		close(it->claim_dir);
	it->claim = it->claim_at = NULL;
	it->claim_dir = -1;
}

int daemon_claims_recover(struct daemon_workers *w, struct daemon_folder *f)
{
	char top[PATH_MAX], orig[PATH_MAX], rel_dir[PATH_MAX];
	if (snprintf(top, sizeof(top), "%s/" DAEMON_CLAIM_DIR, f->path) >= (int)sizeof(top))
		return -ENAMETOOLONG;
	struct stat st;
	if (lstat(top, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		log_warnx("%s: not a folder of this daemon's user, ignored", top);
		return 0;
	}
	char *const roots[] = { top, NULL };
	FTS *fts = fts_open(roots, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
	if (!fts)
		return -errno;
	int n = 0;
	size_t top_len = strlen(top);
	for (FTSENT *e; (e = fts_read(fts));) {
		if (e->fts_info == FTS_D || e->fts_info == FTS_DP || e->fts_info == FTS_DNR ||
		    e->fts_info == FTS_ERR || e->fts_info == FTS_NS || e->fts_level == 0)
			continue;
		const char *rel = e->fts_path + top_len + 1;
		size_t dir_len = (size_t)(daemon_base_name(rel) - rel);
		snprintf(rel_dir, sizeof(rel_dir), "%.*s", dir_len ? (int)dir_len - 1 : 0, rel);
		if (snprintf(orig, sizeof(orig), "%s/%s", f->path, rel) >= (int)sizeof(orig))
			continue;
		int rc = daemon_queue_push(w->queue, f, orig, rel_dir, e->fts_path);
		if (rc == 0)
			n++;
		else
			log_warnx("%s: claimed by an earlier run, not queued: %s", e->fts_path,
				  strerror(rc > 0 ? EEXIST : -rc));
	}
	fts_close(fts);
	if (n)
		log_info("%s: %d files an earlier run had claimed queued again", f->path, n);
	return n;
}

/* ---- claims of folders dropped from the configuration ---- */

/* Hands one claimed file (rel below the claim folder) back under its
 * name, between descriptors opened beneath the folder root: a subfolder
 * swapped for a symlink is not followed. 0 or a negative errno. */
static int hand_back_one(const char *root, const char *rel)
{
	char dir_rel[PATH_MAX];
	const char *name = daemon_base_name(rel);
	size_t dir_len = (size_t)(name - rel);
	snprintf(dir_rel, sizeof(dir_rel), "%.*s", dir_len ? (int)dir_len - 1 : 0, rel);
	_cleanup_close_ int src = open_claim_dir(root, dir_rel);
	if (src < 0)
		return src;
	_cleanup_close_ int dst = open_beneath(root, dir_rel, O_PATH | O_DIRECTORY);
	if (dst < 0)
		return dst;
	return renameat2(src, name, dst, name, RENAME_NOREPLACE) < 0 ? -errno : 0;
}

int daemon_claims_hand_back(const char *root)
{
	char top[PATH_MAX];
	struct stat st;
	if (snprintf(top, sizeof(top), "%s/" DAEMON_CLAIM_DIR, root) >= (int)sizeof(top))
		return -ENAMETOOLONG;
	if (lstat(top, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return 0; /* not the daemon's: nothing of it to hand back */
	char *const roots[] = { top, NULL };
	FTS *fts = fts_open(roots, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
	if (!fts)
		return -errno;
	int back = 0, left = 0;
	size_t top_len = strlen(top);
	for (FTSENT *e; (e = fts_read(fts));) {
		if (e->fts_info == FTS_DP) {
			rmdir(e->fts_path); /* when emptied */
			continue;
		}
		if (e->fts_level == 0 || e->fts_info == FTS_D)
			continue;
		if (e->fts_info != FTS_F) {
			left++;
			continue;
		}
		int err = hand_back_one(root, e->fts_path + top_len + 1);
		if (err) {
			left++;
			log_warnx("%s: cannot hand it back under its name (%s); it stays there",
				  e->fts_path, strerror(-err));
		} else {
			back++;
		}
	}
	fts_close(fts);
	if (back)
		log_info("%s: no longer an import folder: %d files an earlier run had claimed "
			 "handed back under their names, not imported",
			 root, back);
	return left;
}

/* Reads the record's lines into *out. */
static int read_claim_folders(const char *path, char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int err = 0;
	while (!err && (len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = '\0';
		if (!len)
			continue;
		char **grown = realloc(*out, (*n + 1) * sizeof(**out));
		if (!grown) {
			err = -ENOMEM;
			break;
		}
		*out = grown;
		if (!(grown[*n] = strdup(line)))
			err = -ENOMEM;
		else
			++*n;
	}
	free(line);
	fclose(f);
	return err;
}

/* Whether path is one of paths[0..n), by name or as the same folder. */
static bool listed(const char *const *paths, size_t n, const char *path)
{
	struct stat a, b;
	bool known = stat(path, &a) == 0;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(paths[i], path) ||
		    (known && stat(paths[i], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino))
			return true;
	return false;
}

int daemon_claim_folders_update(const char *store, const char *const *paths, size_t n,
				bool hand_back)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	if (snprintf(path, sizeof(path), "%s/" DAEMON_CLAIM_FOLDERS, store) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	char **old = NULL;
	size_t n_old = 0;
	int err = read_claim_folders(path, &old, &n_old);
	FILE *f = err ? NULL : fopen(tmp, "we");
	if (!err && !f)
		err = -errno;
	for (size_t i = 0; f && i < n; i++)
		fprintf(f, "%s\n", paths[i]);
	for (size_t i = 0; i < n_old; i++) {
		if (listed(paths, n, old[i]) || listed((const char *const *)old, i, old[i]))
			continue;
		/* Dropped from the config: handed back at a start, kept listed
		 * while anything stays claimed there. */
		if ((!hand_back || daemon_claims_hand_back(old[i]) != 0) && f)
			fprintf(f, "%s\n", old[i]);
	}
	for (size_t i = 0; i < n_old; i++)
		free(old[i]);
	free(old);
	if (f && (fflush(f) != 0 || fsync(fileno(f)) < 0))
		err = -errno;
	if (f && fclose(f) != 0 && !err)
		err = -errno;
	if (f && !err && rename(tmp, path) < 0)
		err = -errno;
	if (f && err)
		unlink(tmp);
	return err;
}
