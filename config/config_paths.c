/*
 * config_paths.c - the rules between the folders a configuration names.
 *
 * Each folder is fine alone and destructive together: an import folder
 * that is the store makes the daemon move its own RocksDB files to
 * .failed/; a failed folder that another import folder watches fails its
 * own .error files forever; an import folder that holds the config file or
 * the log file moves them aside as "not a capture". These are refused at
 * load, by comparing canonical paths (symlinks resolved, so /var/run is
 * /run) and, for folders that exist, device and inode (a bind mount of
 * the store is the store).
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "config_priv.h"

/* Folders whose contents belong to the system: a store or an import folder
 * there would write into, or move files out of, the running system. */
static const char *const system_folders[] = {
	"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32",
	"/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp",
	"/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/usr/share", "/var",
	"/var/cache", "/var/lib", "/var/log", "/var/mail", "/var/spool", "/var/tmp",
};

/* Kernel file systems: nothing of ours belongs anywhere below them. */
static const char *const kernel_trees[] = { "/proc", "/sys", "/dev" };

/* Lexically normalised absolute form of path: "." and ".." resolved,
 * repeated and trailing slashes dropped. */
static char *normalise(const char *path)
{
	char cwd[PATH_MAX];
	_cleanup_free_ char *joined = NULL;

	if (path[0] == '/') {
		joined = strdup(path);
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return NULL;
		if (asprintf(&joined, "%s/%s", cwd, path) < 0)
			joined = NULL;
	}
	if (!joined)
		return NULL;
	char *out = malloc(strlen(joined) + 2);
	if (!out)
		return NULL;
	size_t len = 0;
	for (char *save = NULL, *part = strtok_r(joined, "/", &save); part;
	     part = strtok_r(NULL, "/", &save)) {
		if (!strcmp(part, "."))
			continue;
		if (!strcmp(part, "..")) {
			while (len > 0 && out[--len] != '/')
				;
			continue;
		}
		out[len++] = '/';
		memcpy(out + len, part, strlen(part));
		len += strlen(part);
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	return out;
}

/* The canonical path: the longest existing prefix through realpath(3),
 * the rest (what the daemon would create) appended as written. */
static char *canonical(const char *path)
{
	_cleanup_free_ char *norm = normalise(path);
	char real[PATH_MAX];

	if (!norm)
		return NULL;
	size_t cut = strlen(norm);
	for (;;) {
		char saved = norm[cut];
		norm[cut] = '\0';
		bool found = realpath(cut ? norm : "/", real) != NULL;
		norm[cut] = saved;
		if (found)
			break;
		while (cut > 0 && norm[--cut] != '/')
			;
	}
	char *out = NULL;
	const char *rest = norm + cut;
	if (asprintf(&out, "%s%s", strcmp(real, "/") || !*rest ? real : "", rest) < 0)
		return NULL;
	return out;
}

/* Whether inner is outer or lies below it. */
static bool below_or_at(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (!strcmp(outer, "/"))
		return true;
	return !strncmp(inner, outer, n) && (inner[n] == '\0' || inner[n] == '/');
}

/* The same, also through bind mounts: an existing ancestor of inner that
 * is outer's inode. */
static bool contains(const char *outer, const char *inner)
{
	struct stat out_st, st;

	if (below_or_at(inner, outer))
		return true;
	if (stat(outer, &out_st) < 0 || !S_ISDIR(out_st.st_mode))
		return false;
	_cleanup_free_ char *walk = strdup(inner);
	if (!walk)
		return false;
	for (;;) {
		if (stat(walk, &st) == 0 && st.st_dev == out_st.st_dev && st.st_ino == out_st.st_ino)
			return true;
		char *slash = strrchr(walk, '/');
		if (!slash || slash == walk)
			return false;
		*slash = '\0';
	}
}

/* Whether a file at path is one the import folder's watcher would pick up:
 * directly in it, or anywhere below it when recursive, except in hidden
 * folders and the folder's own failed and move-to folders, which it skips. */
static bool watched(const struct config_import *imp, const char *folder, const char *path,
		    const char *failed, const char *move_to)
{
	size_t n = strlen(folder);

	if (!contains(folder, path) || !strcmp(folder, path))
		return false;
	if (!below_or_at(path, folder))
		return true; /* through a bind mount: assume the worst */
	if ((failed && below_or_at(path, failed)) || (move_to && below_or_at(path, move_to)))
		return false;
	const char *rest = path + n + (strcmp(folder, "/") != 0);
	const char *slash = strrchr(rest, '/');
	if (slash && !imp->recursive)
		return false;
	for (const char *p = rest; slash && p < slash; p = strchr(p, '/') + 1) {
		if (*p == '.')
			return false;
	}
	return true;
}

static bool is_system_folder(const char *canon, const char **tree)
{
	for (size_t i = 0; i < ARRAY_SIZE(system_folders); i++) {
		if (!strcmp(canon, system_folders[i])) {
			*tree = NULL;
			return true;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(kernel_trees); i++) {
		if (below_or_at(canon, kernel_trees[i])) {
			*tree = kernel_trees[i];
			return true;
		}
	}
	return false;
}

/* The value node of key in a mapping, or NULL. */
static const struct ytree *map_value(const struct ytree *map, const char *key)
{
	for (size_t i = 0; map && map->kind == YTREE_MAP && i + 1 < map->n; i += 2) {
		if (map->items[i]->kind == YTREE_SCALAR && !strcmp(map->items[i]->text, key))
			return map->items[i + 1];
	}
	return NULL;
}

/* Canonical forms of one import folder's paths, and where to point errors. */
struct folder {
	const struct config_import *imp;
	char *path, *failed, *move_to;
	const struct ytree *at_path, *at_failed, *at_move;
};

static void folders_free(struct folder *f, size_t n)
{
	for (size_t i = 0; f && i < n; i++) {
		free(f[i].path);
		free(f[i].failed);
		free(f[i].move_to);
	}
	free(f);
}

static int folders_load(const struct config *cfg, const struct ytree *imports,
			struct folder **out)
{
	struct folder *f = calloc(cfg->n_imports ? cfg->n_imports : 1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_imports; i++) {
		const struct config_import *imp = &cfg->imports[i];
		const struct ytree *map = imports && i < imports->n ? imports->items[i] : NULL;
		f[i].imp = imp;
		f[i].at_path = map_value(map, "path");
		f[i].at_failed = map_value(map, "failed_folder");
		f[i].at_move = map_value(map, "after_import");
		if (!f[i].at_failed)
			f[i].at_failed = f[i].at_path;
		f[i].path = canonical(imp->path);
		f[i].failed = imp->failed_folder ? canonical(imp->failed_folder) : NULL;
		f[i].move_to = imp->move_to ? canonical(imp->move_to) : NULL;
		if (!f[i].path || (imp->failed_folder && !f[i].failed) ||
		    (imp->move_to && !f[i].move_to)) {
			folders_free(f, cfg->n_imports);
			return -ENOMEM;
		}
	}
	*out = f;
	return 0;
}

static void check_store(struct parse_ctx *c, const char *store, const struct ytree *at)
{
	const char *tree;

	if (!is_system_folder(store, &tree))
		return;
	if (tree)
		ctx_error(c, at, "the store '%s' is inside %s, a kernel file system", at->text,
			  tree);
	else
		ctx_error(c, at, "the store '%s' is the system folder %s: give it a folder of its own",
			  at->text, store);
}

/* One import folder against the store and against a system folder. */
static void check_import(struct parse_ctx *c, const struct folder *f, const char *store)
{
	const char *shown = f->at_path ? f->at_path->text : f->imp->path, *tree;

	if (is_system_folder(f->path, &tree)) {
		if (tree)
			ctx_error(c, f->at_path, "import folder '%s' is inside %s, a kernel file system",
				  shown, tree);
		else
			ctx_error(c, f->at_path,
				  "import folder '%s' is the system folder %s: files that are not "
				  "captures would be moved out of it",
				  shown, f->path);
	}
	if (!strcmp(f->path, store))
		ctx_error(c, f->at_path, "import folder '%s' is the store", shown);
	else if (contains(store, f->path))
		ctx_error(c, f->at_path, "import folder '%s' is inside the store", shown);
	else if (contains(f->path, store))
		ctx_error(c, f->at_path, "import folder '%s' contains the store", shown);
}

/* Whether the watcher of a would pick up a file dropped into folder. */
static bool watches_folder(const struct folder *a, const char *folder)
{
	_cleanup_free_ char *probe = NULL;

	if (asprintf(&probe, "%s/capture.pcap", folder) < 0)
		return false;
	return watched(a->imp, a->path, probe, a->failed, a->move_to);
}

/* Where a folder's failed or after_import files go: never an import
 * folder, never watched by another one, never into the store. */
static void check_destination(struct parse_ctx *c, const struct folder *all, size_t n,
			      size_t self, const char *dest, const struct ytree *at,
			      const char *what, const char *store)
{
	const char *shown = at ? at->text : dest;
	/* The default failed folder is hidden inside its own import folder:
	 * only another import folder at the same place can make it a loop,
	 * and the import folder's own place was checked already. */
	bool implied = at == all[self].at_path;

	if (!strncmp(shown, "move:", 5))
		shown += 5;
	if (implied)
		shown = dest;
	if (!implied && contains(store, dest)) {
		ctx_error(c, at, "%s '%s' is inside the store", what, shown);
		return;
	}
	for (size_t j = 0; j < n; j++) {
		const struct folder *o = &all[j];
		if (!strcmp(dest, o->path)) {
			ctx_error(c, at, "%s '%s' is the import folder '%s'", what, shown,
				  o->at_path ? o->at_path->text : o->imp->path);
			return;
		}
		if (j != self && !implied && watches_folder(o, dest)) {
			ctx_error(c, at, "%s '%s' is inside the import folder '%s', which would import "
					 "from it",
				  what, shown, o->at_path ? o->at_path->text : o->imp->path);
			return;
		}
	}
}

/* Two import folders: the same one twice, or one that another watches,
 * would have two watchers race for the same files. */
static void check_pair(struct parse_ctx *c, const struct folder *a, const struct folder *b)
{
	const char *sa = a->at_path ? a->at_path->text : a->imp->path;
	const char *sb = b->at_path ? b->at_path->text : b->imp->path;

	if (!strcmp(a->path, b->path))
		ctx_error(c, b->at_path, "import folder '%s' is also import folder '%s'", sb, sa);
	else if (watches_folder(a, b->path))
		ctx_error(c, b->at_path, "import folder '%s' is inside import folder '%s', which "
					 "watches it too",
			  sb, sa);
	else if (watches_folder(b, a->path))
		ctx_error(c, b->at_path, "import folder '%s' contains import folder '%s' and watches "
					 "it too",
			  sb, sa);
}

/* Files the daemon itself reads or writes: an import folder that watches
 * one would move it to its failed folder as "not a capture". */
static void check_own_file(struct parse_ctx *c, const struct folder *all, size_t n,
			   const char *file, const struct ytree *at, const char *what)
{
	_cleanup_free_ char *canon = file ? canonical(file) : NULL;

	if (!canon)
		return;
	for (size_t j = 0; j < n; j++) {
		if (watched(all[j].imp, all[j].path, canon, all[j].failed, all[j].move_to)) {
			ctx_error(c, at ? at : all[j].at_path,
				  "%s is inside the import folder '%s', which would take it for a "
				  "capture",
				  what, all[j].at_path ? all[j].at_path->text : all[j].imp->path);
			return;
		}
	}
}

void config_check_paths(struct parse_ctx *c, const struct config *cfg, const struct ytree *root)
{
	const struct ytree *at_store = map_value(root, "store");
	const struct ytree *api = map_value(root, "api");
	const struct ytree *tls = map_value(api, "tls");
	struct folder *f = NULL;

	if (!cfg->store || !at_store)
		return;
	_cleanup_free_ char *store = canonical(cfg->store);
	if (!store || folders_load(cfg, map_value(root, "import"), &f) < 0) {
		c->oom = -ENOMEM;
		return;
	}
	check_store(c, store, at_store);
	for (size_t i = 0; i < cfg->n_imports; i++) {
		check_import(c, &f[i], store);
		for (size_t j = 0; j < i; j++)
			check_pair(c, &f[j], &f[i]);
	}
	for (size_t i = 0; i < cfg->n_imports; i++) {
		if (f[i].failed)
			check_destination(c, f, cfg->n_imports, i, f[i].failed, f[i].at_failed,
					  "the failed folder", store);
		if (f[i].move_to)
			check_destination(c, f, cfg->n_imports, i, f[i].move_to, f[i].at_move,
					  "the after_import folder", store);
	}
	if (c->base_dir)
		check_own_file(c, f, cfg->n_imports, c->file, NULL, "the configuration file");
	check_own_file(c, f, cfg->n_imports, cfg->log_file, map_value(root, "log_file"),
		       "the log file");
	check_own_file(c, f, cfg->n_imports, cfg->api.tls_cert, map_value(tls, "cert"),
		       "the TLS certificate");
	check_own_file(c, f, cfg->n_imports, cfg->api.tls_key, map_value(tls, "key"),
		       "the TLS key");
	folders_free(f, cfg->n_imports);
}
