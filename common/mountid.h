/*
 * mountid.h - the mount a file is on (statx's mnt_id), for telling whether
 * a rename or link between two places can work: both fail across mounts
 * with EXDEV, even between two mounts of one file system.
 */
#ifndef CAPVAULT_MOUNTID_H
#define CAPVAULT_MOUNTID_H

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

/* dirfd, path and flags as statx takes them; 0 when the kernel cannot say. */
static inline uint64_t mount_id_at(int dirfd, const char *path, int flags)
{
	struct statx stx;

	if (statx(dirfd, path, flags, STATX_MNT_ID, &stx) < 0 || !(stx.stx_mask & STATX_MNT_ID))
		return 0;
	return stx.stx_mnt_id;
}

#endif
