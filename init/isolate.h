/* Isolation drivers: how a service's commands are confined.
 *
 * The spawn path is the same for every kind of isolation: sys.c asks the unit's driver
 * to prepare a start (parent side: find and mount the root, get the identity), clones
 * with the namespaces the driver asks for, and in the child calls the driver twice:
 * enter() as vigil's root right after stdio is set up (build the root, pivot into it),
 * and join() once the credentials are resolved (take on the container's identity).
 * Everything else (credentials, capabilities, seccomp, exec) is common code in spawn.c.
 * Only the `namespace` driver exists; a `vm` driver would prepare a micro-VM instead. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "store.h"
#include "unit.h"

typedef struct isolation_driver isolation_driver;

typedef struct isolation {
        const isolation_driver *driver;
        unsigned long clone_flags; /* namespaces the child is created in */
        const char *root;          /* host path of the root tree: a mounted image or a directory */
        const char *volumes_dir;   /* where Volume= names live */
        char image_version[IMAGE_VERSION_MAX + 1]; /* Image='s version started; "" otherwise */
        int userns_fd;                             /* the service's user namespace, or -1 */
        int netns_fd;   /* Network=none: the service's network namespace, or -1 */
        uid_t uid_base; /* host uid (and gid) of the container's 0 */
} isolation;

struct isolation_driver {
        const char *name;
        /* Child, as vigil's root inside the new namespaces: mounts, pivot_root, host
         * name, loopback. notify_socket (a host path, or NULL) is made reachable at the
         * same path inside. Returns 0, or -errno with *what naming the step. */
        int (*enter)(const isolation *iso, const unit *u, const char *notify_socket,
                     const char **what);
        /* Child, after the credentials are resolved and before they are applied. */
        int (*join)(const isolation *iso, const char **what);
};

typedef struct isolation_dirs {
        const char *images;  /* /var/lib/vigil/images */
        const char *volumes; /* /var/lib/vigil/volumes */
        const char *state;   /* /var/lib/vigil/state: the user namespace ranges */
        const char *runtime; /* /run/vigil: where images are mounted */
} isolation_dirs;

/* Parent side, before each start of a command of u: fills *ret, or returns 0 with
 * ret->driver NULL when u is not isolated. Mounted images and user namespaces are
 * kept and shared between starts. On failure logs why (naming the unit) and returns
 * -errno. */
int isolation_prepare(const unit *u, const isolation_dirs *dirs, isolation *ret);

/* The host uid range of NAME's user namespace: allocated on first use, recorded in
 * STATE/userns, the same ever after. Exposed for tests. */
int userns_range_get(const char *state_dir, const char *name, uid_t *ret_base);

#define USERNS_RANGE_SIZE 65536u
#define USERNS_RANGE_FIRST 0x80000u /* 524288, as systemd's container range */
#define USERNS_RANGES_MAX 28000u
