/* The image store (see store.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "store.h"
#include "unit.h"

#define SUFFIX ".squashfs"

int image_version_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > IMAGE_VERSION_MAX || s[0] == '.')
                return false;
        return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+~-") ==
               n;
}

int image_store_current(const char *store, const char *name, char **ret_path, char **ret_version) {
        _cleanup_close_ int dfd = -1;
        _cleanup_free_ char *dir = NULL, *path = NULL, *version = NULL;
        char target[IMAGE_VERSION_MAX + sizeof(SUFFIX) + 1];
        struct stat st;
        ssize_t n;
        size_t l;

        if (!image_name_is_valid(name))
                return -EINVAL;
        if (asprintf_safe(&dir, "%s/%s", store, name) < 0)
                return -ENOMEM;
        dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        n = readlinkat(dfd, "current", target, sizeof(target));
        if (n < 0)
                return errno == EINVAL ? -EBADMSG : -errno;
        if ((size_t) n >= sizeof(target))
                return -EBADMSG;
        target[n] = 0;
        l = (size_t) n;
        if (l <= strlen(SUFFIX) || !endswith(target, SUFFIX))
                return -EBADMSG;
        version = strndup(target, l - strlen(SUFFIX));
        if (!version)
                return -ENOMEM;
        if (!image_version_is_valid(version))
                return -EBADMSG;
        /* The link names a file in the same directory, and that is a regular file. */
        if (fstatat(dfd, target, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        if (asprintf_safe(&path, "%s/%s", dir, target) < 0)
                return -ENOMEM;
        *ret_path = TAKE_PTR(path);
        if (ret_version)
                *ret_version = TAKE_PTR(version);
        return 0;
}
