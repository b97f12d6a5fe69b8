/*
 * storemark.h - the marker file that says a folder is a capvault store
 * (<root>/capvault-store), and in which state.
 *
 * Nothing is ever made a store by being opened: a folder is one when its
 * marker says so. Creating a store, writing a backup and restoring one
 * each write the marker first with an "in progress" state and replace it
 * (write a temp file, fsync, rename, fsync the folder) with the complete
 * state as their very last step, so a store, backup or restore that was
 * interrupted can never be taken for a complete one.
 */
#ifndef CAPVAULT_STOREMARK_H
#define CAPVAULT_STOREMARK_H

#include <stdbool.h>

#include "errbuf.h"

#define STOREMARK_NAME "capvault-store"
/* The format this release writes and reads. */
#define STOREMARK_FORMAT 1

enum storemark {
	STOREMARK_NONE,     /* no marker file */
	STOREMARK_STORE,    /* a complete store (or a complete backup: it is one) */
	STOREMARK_CREATING, /* a store being created (capvault init, capvaultd) */
	STOREMARK_BACKUP,   /* a backup being written */
	STOREMARK_RESTORE,  /* a restore being written */
};

/* Reads dirfd's marker into *out. Returns 0, or a negative errno with eb
 * naming shown (a marker of a newer format or one we cannot parse). */
int storemark_read(int dirfd, const char *shown, enum storemark *out, struct errbuf *eb);
/* Replaces dirfd's marker with m durably (temp file, fsync, rename,
 * fsync of the folder). Returns 0 or a negative errno (eb). */
int storemark_write(int dirfd, const char *shown, enum storemark m, struct errbuf *eb);
/* What an unfinished state is, for messages ("an interrupted backup"). */
const char *storemark_what(enum storemark m);
/* 1 when dirfd holds nothing but a marker's temp file and the folders
 * named in allowed (NULL-terminated; may be NULL), 0 when it holds
 * something else, or a negative errno. */
int storemark_dir_empty(int dirfd, const char *const *allowed);

#endif
