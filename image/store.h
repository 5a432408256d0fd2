/* The image store: installed squashfs images under /var/lib/vigil/images/.
 *
 * Layout: STORE/NAME/VERSION.squashfs for each kept version, and STORE/NAME/current, a
 * symbolic link to the selected VERSION.squashfs in the same directory (replaced
 * atomically by rename(2) when an update is installed). */
#pragma once

#include <stddef.h>

#define IMAGE_VERSION_MAX 64

/* The selected version of image NAME: its file (absolute) and version string.
 * -ENOENT when NAME is not installed, -EBADMSG when `current` is not a link to a
 * VERSION.squashfs beside it, or another -errno. */
int image_store_current(const char *store, const char *name, char **ret_path, char **ret_version);

/* A version: 1 to 64 of [A-Za-z0-9._+~-], not starting with "." */
int image_version_is_valid(const char *s);
