/*
 * storemark.c - see storemark.h.
 *
 * The marker is one line, "capvault-store FORMAT[ STATE]", so a person
 * who finds the folder can read what it is. It is written beside its
 * final name and renamed over it: a crash leaves the old marker or the
 * new one, never half of one.
 */
#include "storemark.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"

#define STOREMARK_TEMP "." STOREMARK_NAME ".new"

static const char *const state_words[] = {
	[STOREMARK_STORE] = "",
	[STOREMARK_CREATING] = " creating",
	[STOREMARK_BACKUP] = " backup-in-progress",
	[STOREMARK_RESTORE] = " restore-in-progress",
};

const char *storemark_what(enum storemark m)
{
	switch (m) {
	case STOREMARK_CREATING: return "an interrupted store creation";
	case STOREMARK_BACKUP: return "an interrupted backup";
	case STOREMARK_RESTORE: return "an interrupted restore";
	case STOREMARK_STORE: return "a capvault store";
	case STOREMARK_NONE: break;
	}
	return "not a capvault store";
}

static int parse(const char *line, const char *shown, enum storemark *out, struct errbuf *eb)
{
	char state[32] = "";
	int format = 0, n = 0;
	if (sscanf(line, STOREMARK_NAME " %d%n", &format, &n) != 1)
		return errbuf_set(eb, -EINVAL, "%s/" STOREMARK_NAME ": not a capvault marker", shown);
	if (format > STOREMARK_FORMAT)
		return errbuf_set(eb, -EPROTO, "%s: a store of format %d, made by a newer capvault "
				  "(this one reads format %d)", shown, format, STOREMARK_FORMAT);
	snprintf(state, sizeof(state), "%s", line + n);
	state[strcspn(state, "\n")] = '\0';
	for (size_t i = STOREMARK_STORE; i < sizeof(state_words) / sizeof(state_words[0]); i++) {
		if (strcmp(state, state_words[i]) == 0) {
			*out = (enum storemark)i;
			return 0;
		}
	}
	return errbuf_set(eb, -EINVAL, "%s/" STOREMARK_NAME ": unknown state '%s'", shown, state);
}

int storemark_read(int dirfd, const char *shown, enum storemark *out, struct errbuf *eb)
{
	char line[128];
	_cleanup_close_ int fd = openat(dirfd, STOREMARK_NAME, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	*out = STOREMARK_NONE;
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return errbuf_set(eb, -errno, "%s/" STOREMARK_NAME ": %s", shown, strerror(errno));
	ssize_t n = pread(fd, line, sizeof(line) - 1, 0);
	if (n < 0)
		return errbuf_set(eb, -errno, "%s/" STOREMARK_NAME ": %s", shown, strerror(errno));
	line[n] = '\0';
	return parse(line, shown, out, eb);
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int storemark_write(int dirfd, const char *shown, enum storemark m, struct errbuf *eb)
{
	char line[96];
	if (m == STOREMARK_NONE || m >= sizeof(state_words) / sizeof(state_words[0]))
		return errbuf_set(eb, -EINVAL, "%s: no such marker state", shown);
	int len = snprintf(line, sizeof(line), STOREMARK_NAME " %d%s\n", STOREMARK_FORMAT,
			   state_words[m]);
	_cleanup_close_ int fd = openat(dirfd, STOREMARK_TEMP,
					O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	int r = fd < 0 ? -errno : write_all(fd, line, (size_t)len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, STOREMARK_TEMP, dirfd, STOREMARK_NAME) < 0)
		r = -errno;
	if (r == 0 && fsync(dirfd) < 0)
		r = -errno;
	if (r < 0)
		return errbuf_set(eb, r, "cannot write %s/" STOREMARK_NAME ": %s", shown,
				  strerror(-r));
	return 0;
}

static bool allowed_dir(int dirfd, const struct dirent *de, const char *const *allowed)
{
	struct stat st;
	for (; allowed && *allowed; allowed++)
		if (!strcmp(de->d_name, *allowed))
			return fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			       S_ISDIR(st.st_mode);
	return false;
}

int storemark_dir_empty(int dirfd, const char *const *allowed)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;
	int empty = 1;
	if (!d) {
		int r = -errno;
		if (fd >= 0)
			close(fd);
		return r;
	}
	while (empty && (de = readdir(d)) != NULL)
		empty = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
			!strcmp(de->d_name, STOREMARK_TEMP) || allowed_dir(dirfd, de, allowed);
	closedir(d);
	return empty;
}
