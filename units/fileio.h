/* Reading small configuration files safely: bounded, regular files only. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "macro.h"

/* Reads a regular file of at most max bytes (O_CLOEXEC, no FIFOs or devices: -EBADFD,
 * directories: -EISDIR), into a NUL-terminated buffer grown as needed. -EFBIG when the
 * file is larger than max. */
int read_file_bounded(const char *path, size_t max, char **ret, size_t *ret_size);
/* Reads fd from its offset to its end: at most max bytes (-EFBIG beyond), NUL-terminated. */
int read_fd_bounded(int fd, size_t max, char **ret, size_t *ret_size);

/* Reads at most size - 1 bytes of dir_fd/name (a sysfs or cgroupfs attribute) into buf,
 * NUL-terminated: the number read, or -errno. */
int read_small_at(int dir_fd, const char *name, char *buf, size_t size);

/* mkdir -p: every missing directory of path with mode; existing ones are fine. */
int mkdir_p(const char *path, mode_t mode);

/* Replaces path with data atomically: PATH.tmp written and fsynced, renamed over path,
 * then the directory fsynced, so that a power cut leaves the old or the new file. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
