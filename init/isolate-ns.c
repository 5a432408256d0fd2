/* The `namespace` isolation driver (see isolate.h).
 *
 * Parent side: the root is a squashfs image (Image= from the store, or RootImage=)
 * mounted read-only once through a loop device and shared by every service using it,
 * or a directory (RootDirectory=). The user namespace of a service is created once,
 * kept as an fd and joined at every start; its host uid range is recorded in
 * STATE/userns so that it stays the same across restarts and reboots.
 *
 * Network=none services get a network namespace of their own with loopback up, also made
 * once and joined at each start.
 *
 * Child side, as vigil's root inside fresh mount, PID, IPC, UTS and cgroup namespaces
 * (and the service's network namespace) that belong to the initial user namespace: the
 * root tree is cloned (read-only unless ReadOnly=no), /proc, /sys, /dev, /tmp, /run
 * and the unit's mounts are attached to it through file descriptors, every target
 * resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) so that nothing in the
 * image can redirect a mount onto the host, then pivot_root. Only then does the child
 * join the service's user namespace: the namespaces it lives in stay owned by the
 * initial one, so even the container's root can never mount, unmount or change the
 * host name. */
#include <fcntl.h>
#include <grp.h>
#include <linux/loop.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "creds.h"
#include "fileio.h"
#include "isolate.h"
#include "log.h"
#include "store.h"
#include "strv.h"

/* ---- images, mounted once ---------------------------------------------------------------- */

typedef struct mounted_image {
        dev_t dev;
        ino_t ino;
        char *dir;
} mounted_image;

static mounted_image *images;
static size_t n_images;

#define LOOP_ATTEMPTS 16

/* Binds fd to a free loop device, read-only, detached automatically at the last umount. */
static int loop_attach(int fd, const char *file, char *dev, size_t devsize) {
        _cleanup_close_ int ctl = -1;

        ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl < 0)
                return -errno;
        for (int i = 0; i < LOOP_ATTEMPTS; i++) {
                struct loop_config cfg = {
                        .fd = (uint32_t) fd,
                        .info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
                };
                _cleanup_close_ int lfd = -1;
                int n = ioctl(ctl, LOOP_CTL_GET_FREE);

                if (n < 0)
                        return -errno;
                snprintf(dev, devsize, "/dev/loop%d", n);
                lfd = open(dev, O_RDONLY | O_CLOEXEC);
                if (lfd < 0)
                        return -errno;
                snprintf((char *) cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", file);
                if (ioctl(lfd, LOOP_CONFIGURE, &cfg) >= 0) {
                        /* Mounted before lfd closes, so autoclear cannot strike first. */
                        return TAKE_FD(lfd);
                }
                if (errno != EBUSY)
                        return -errno;
                /* Someone else took it between GET_FREE and CONFIGURE: next one. */
        }
        return -EBUSY;
}

static int image_mount(const char *runtime_dir, const char *file, const char **ret_dir) {
        _cleanup_close_ int fd = -1, lfd = -1;
        _cleanup_free_ char *dir = NULL;
        mounted_image *l;
        char dev[32];
        struct stat st;
        int r;

        fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        for (size_t i = 0; i < n_images; i++)
                if (images[i].dev == st.st_dev && images[i].ino == st.st_ino) {
                        *ret_dir = images[i].dir;
                        return 0;
                }

        if (asprintf_safe(&dir, "%s/images/%llx-%llx", runtime_dir, (unsigned long long) st.st_dev,
                          (unsigned long long) st.st_ino) < 0)
                return -ENOMEM;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        l = reallocarray(images, n_images + 1, sizeof(mounted_image));
        if (!l)
                return -ENOMEM;
        images = l;

        lfd = loop_attach(fd, file, dev, sizeof(dev));
        if (lfd < 0)
                return lfd;
        if (mount(dev, dir, "squashfs", MS_RDONLY | MS_NODEV | MS_NOSUID, NULL) < 0)
                return -errno;
        images[n_images] = (mounted_image){ .dev = st.st_dev, .ino = st.st_ino, .dir = dir };
        *ret_dir = TAKE_PTR(dir);
        n_images++;
        return 0;
}

/* ---- user namespaces, one per service ----------------------------------------------------- */

typedef struct userns_entry {
        char *name;
        uid_t base;
        int fd;
} userns_entry;

static userns_entry *userns_list;
static size_t n_userns;

#define USERNS_FILE "userns"
#define USERNS_FILE_MAX (1024 * 1024)

/* STATE/userns: one "NAME BASE" line per service, replaced whole and atomically. */
int userns_range_get(const char *state_dir, const char *name, uid_t *ret_base) {
        _cleanup_free_ char *path = NULL, *data = NULL, *out = NULL;
        _cleanup_free_ bool *used = NULL;
        size_t size = 0, out_size = 0;
        _cleanup_fclose_ FILE *f = NULL;
        uid_t base;
        unsigned pick;
        int r;

        if (asprintf_safe(&path, "%s/" USERNS_FILE, state_dir) < 0)
                return -ENOMEM;
        r = read_file_bounded(path, USERNS_FILE_MAX, &data, &size);
        if (r < 0 && r != -ENOENT)
                return r;
        used = calloc(USERNS_RANGES_MAX, sizeof(bool));
        f = open_memstream(&out, &out_size);
        if (!used || !f)
                return -ENOMEM;
        for (char *line = data, *next; line && *line; line = next) {
                char n[256];
                unsigned long b;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                /* A damaged line is dropped at this write. */
                if (sscanf(line, "%255s %lu", n, &b) != 2 || b < USERNS_RANGE_FIRST ||
                    (b - USERNS_RANGE_FIRST) % USERNS_RANGE_SIZE != 0 ||
                    (b - USERNS_RANGE_FIRST) / USERNS_RANGE_SIZE >= USERNS_RANGES_MAX)
                        continue;
                if (streq(n, name)) {
                        *ret_base = (uid_t) b;
                        return 0;
                }
                used[(b - USERNS_RANGE_FIRST) / USERNS_RANGE_SIZE] = true;
                fprintf(f, "%s %lu\n", n, b);
        }
        for (pick = 0; pick < USERNS_RANGES_MAX && used[pick]; pick++)
                ;
        if (pick == USERNS_RANGES_MAX)
                return -ENOSPC;
        base = USERNS_RANGE_FIRST + pick * USERNS_RANGE_SIZE;
        fprintf(f, "%s %u\n", name, (unsigned) base);
        if (fflush(f) != 0)
                return -ENOMEM;

        r = mkdir_p(state_dir, 0755);
        if (r >= 0)
                r = write_file_atomic(path, out, out_size, 0644);
        if (r < 0)
                return r;
        *ret_base = base;
        return 0;
}

static int write_map(pid_t pid, const char *file, uid_t base) {
        char path[64], map[64];
        _cleanup_close_ int fd = -1;
        int n;

        snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
        n = snprintf(map, sizeof(map), "0 %u %u\n", (unsigned) base, USERNS_RANGE_SIZE);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, map, (size_t) n) != n)
                return errno ? -errno : -EIO;
        return 0;
}

/* A user namespace mapping 0..65535 to base..base+65535, as an fd: a short-lived
 * child creates it, we write its maps and keep a reference to the namespace. */
static int userns_create(uid_t base) {
        struct clone_args args = { .flags = CLONE_NEWUSER, .exit_signal = 0 };
        _cleanup_close_ int rfd = -1, wfd = -1;
        int fds[2], fd = -1, r;
        char path[64];
        long pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        rfd = fds[0];
        wfd = fds[1];
        pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                char b;

                close(wfd);
                (void) read(rfd, &b, 1);
                _exit(0);
        }

        r = write_map((pid_t) pid, "uid_map", base);
        if (r >= 0)
                r = write_map((pid_t) pid, "gid_map", base);
        if (r >= 0) {
                snprintf(path, sizeof(path), "/proc/%ld/ns/user", pid);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        r = -errno;
        }
        wfd = safe_close(wfd); /* the child exits */
        /* Not a SIGCHLD child: only __WCLONE reaps it, and the manager's waitid() never does. */
        while (waitpid((pid_t) pid, NULL, __WCLONE) < 0 && errno == EINTR)
                ;
        return r < 0 ? r : fd;
}

static int userns_get(const char *state_dir, const char *name, int *ret_fd, uid_t *ret_base) {
        userns_entry *l;
        uid_t base;
        int fd, r;

        for (size_t i = 0; i < n_userns; i++)
                if (streq(userns_list[i].name, name)) {
                        *ret_fd = userns_list[i].fd;
                        *ret_base = userns_list[i].base;
                        return 0;
                }
        r = userns_range_get(state_dir, name, &base);
        if (r < 0)
                return r;
        l = reallocarray(userns_list, n_userns + 1, sizeof(userns_entry));
        if (!l)
                return -ENOMEM;
        userns_list = l;
        l[n_userns].name = strdup(name);
        if (!l[n_userns].name)
                return -ENOMEM;
        fd = userns_create(base);
        if (fd < 0) {
                free(l[n_userns].name);
                return fd;
        }
        l[n_userns].fd = fd;
        l[n_userns].base = base;
        n_userns++;
        *ret_fd = fd;
        *ret_base = base;
        return 0;
}

/* ---- network namespaces, one per Network=none service -------------------------------------- */

typedef struct netns_entry {
        char *name;
        int fd;
} netns_entry;

static netns_entry *netns_list;
static size_t n_netns;

static int loopback_up(void);

/* A network namespace with loopback up, made by stepping PID 1 into a new one and back:
 * no child, and the sockets vigil holds stay where they are. Creating one costs ~1 ms
 * (serialized system-wide), so it is made once per service and joined at each start. */
static int netns_create(void) {
        _cleanup_close_ int self = -1, fd = -1;
        int r;

        self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (self < 0)
                return -errno;
        if (unshare(CLONE_NEWNET) < 0)
                return -errno;
        r = loopback_up();
        if (r >= 0) {
                fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        r = -errno;
        }
        if (setns(self, CLONE_NEWNET) < 0)
                abort(); /* PID 1 stuck in an empty network namespace: let the crash handler act */
        return r < 0 ? r : TAKE_FD(fd);
}

static int netns_get(const char *name, int *ret_fd) {
        netns_entry *l;
        int fd;

        for (size_t i = 0; i < n_netns; i++)
                if (streq(netns_list[i].name, name)) {
                        *ret_fd = netns_list[i].fd;
                        return 0;
                }
        l = reallocarray(netns_list, n_netns + 1, sizeof(netns_entry));
        if (!l)
                return -ENOMEM;
        netns_list = l;
        l[n_netns].name = strdup(name);
        if (!l[n_netns].name)
                return -ENOMEM;
        fd = netns_create();
        if (fd < 0) {
                free(l[n_netns].name);
                return fd;
        }
        l[n_netns++].fd = fd;
        *ret_fd = fd;
        return 0;
}

/* ---- the child: building the root --------------------------------------------------------- */

#define RESOLVE_STRICT (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/* PATH (relative) below dirfd, never through a symbolic link. */
static int open_beneath(int dirfd, const char *path, int flags) {
        struct open_how how = { .flags = (uint64_t) (flags | O_CLOEXEC),
                                .resolve = RESOLVE_STRICT };
        int fd;

        while (*path == '/')
                path++;
        fd = (int) syscall(SYS_openat2, dirfd, *path ? path : ".", &how, sizeof(how));
        return fd < 0 ? -errno : fd;
}

/* Attaches the detached mount tree onto PATH below rootfd. */
static int attach(int tree, int rootfd, const char *path) {
        _cleanup_close_ int target = open_beneath(rootfd, path, O_PATH);

        if (target < 0)
                return target;
        if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return -errno;
        return 0;
}

static int set_attr(int tree, uint64_t attr, bool recursive) {
        struct mount_attr a = { .attr_set = attr };

        if (mount_setattr(tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof(a)) <
            0)
                return -errno;
        return 0;
}

/* A new detached filesystem: fstype with "key=value,..." options. */
static int new_fs(const char *fstype, const char *options, unsigned attrs) {
        _cleanup_close_ int fs = fsopen(fstype, FSOPEN_CLOEXEC);
        int m;

        if (fs < 0)
                return -errno;
        for (const char *p = options ?: ""; *p;) {
                size_t n = strcspn(p, ",");
                char opt[128], *eq;

                if (n >= sizeof(opt))
                        return -EINVAL;
                memcpy(opt, p, n);
                opt[n] = 0;
                eq = strchr(opt, '=');
                if (eq) {
                        *eq = 0;
                        if (fsconfig(fs, FSCONFIG_SET_STRING, opt, eq + 1, 0) < 0)
                                return -errno;
                } else if (!streq(opt, "ro") && !streq(opt, "rw") && !streq(opt, "noexec") &&
                           !streq(opt, "exec") && !streq(opt, "nodev") && !streq(opt, "nosuid") &&
                           fsconfig(fs, FSCONFIG_SET_FLAG, opt, NULL, 0) < 0)
                        return -errno;
                p += n;
                if (*p)
                        p++;
        }
        if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return -errno;
        m = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
        return m < 0 ? -errno : m;
}

/* Mounts a new filesystem at PATH below rootfd; returns its root fd when ret_fd. */
static int mount_fs(int rootfd, const char *path, const char *fstype, const char *options,
                    unsigned attrs, int *ret_fd) {
        int m = new_fs(fstype, options, attrs), r;

        if (m < 0)
                return m;
        r = attach(m, rootfd, path);
        if (r < 0 || !ret_fd)
                safe_close(m);
        else
                *ret_fd = m;
        return r;
}

/* Binds host path SRC onto PATH below rootfd: read-only or not, nosuid, and nodev but for
 * a device node itself (which nodev would make unusable). */
static int bind_host(const char *src, int rootfd, const char *path, bool read_only,
                     bool recursive) {
        _cleanup_close_ int tree = -1;
        struct stat st;
        uint64_t attr = MOUNT_ATTR_NOSUID | (read_only ? MOUNT_ATTR_RDONLY : 0);
        int r;

        tree = open_tree(AT_FDCWD, src,
                         OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
        if (tree < 0)
                return -errno;
        if (fstat(tree, &st) < 0)
                return -errno;
        if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
                attr |= MOUNT_ATTR_NODEV;
        r = set_attr(tree, attr, true);
        if (r < 0)
                return r;
        return attach(tree, rootfd, path);
}

/* Re-attaches the tree at PATH below dirfd read-only, in place. */
static int make_read_only(int dirfd, const char *path) {
        _cleanup_close_ int at = open_beneath(dirfd, path, O_PATH);
        _cleanup_close_ int tree = -1;
        int r;

        if (at < 0)
                return at;
        tree = open_tree(at, "",
                         OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_EMPTY_PATH);
        if (tree < 0)
                return -errno;
        r = set_attr(tree, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, true);
        if (r < 0)
                return r;
        return move_mount(tree, "", at, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0
                       ? -errno
                       : 0;
}

/* Docker's masked and read-only paths of /proc and /sys: what a container must not read
 * (kernel memory, keys, timers of other processes) or change (sysctls, sysrq). */
static const char *const proc_masked[] = {
        "acpi",       "asound",      "kcore",       "keys", "latency_stats",
        "timer_list", "timer_stats", "sched_debug", "scsi",
};
static const char *const proc_read_only[] = { "bus", "fs", "irq", "sys", "sysrq-trigger" };
static const char *const sys_masked[] = { "firmware", "devices/virtual/powercap" };

/* A file is covered by /dev/null, a directory by an empty read-only tmpfs. */
static int mask(int dirfd, const char *path) {
        _cleanup_close_ int at = open_beneath(dirfd, path, O_PATH);
        struct stat st;

        if (at == -ENOENT)
                return 0;
        if (at < 0)
                return at;
        if (fstat(at, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode)) {
                _cleanup_close_ int m = new_fs("tmpfs", "size=0,mode=0555",
                                               MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                                       MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
                if (m < 0)
                        return m;
                return move_mount(m, "", at, "",
                                  MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0
                               ? -errno
                               : 0;
        }
        {
                _cleanup_close_ int null =
                        open_tree(AT_FDCWD, "/dev/null", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                if (null < 0)
                        return -errno;
                return move_mount(null, "", at, "",
                                  MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0
                               ? -errno
                               : 0;
        }
}

static const char *const dev_nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };

/* A minimal /dev: host device nodes bound onto files of a small tmpfs, a devpts of
 * its own, shm and mqueue. */
static int setup_dev(int rootfd, uid_t base, bool userns, const char **what) {
        _cleanup_close_ int dev = -1;
        char opts[96];
        int r;

        *what = "mounting /dev";
        r = mount_fs(rootfd, "dev", "tmpfs", "mode=0755,size=64k,nr_inodes=64",
                     MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, &dev);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
                char src[32];
                int fd;

                *what = "creating a device node in /dev";
                fd = openat(dev, dev_nodes[i], O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0666);
                if (fd < 0)
                        return -errno;
                close(fd);
                snprintf(src, sizeof(src), "/dev/%s", dev_nodes[i]);
                r = bind_host(src, dev, dev_nodes[i], false, false);
                if (r < 0)
                        return r;
        }
        *what = "mounting /dev/pts";
        if (mkdirat(dev, "pts", 0755) < 0 || mkdirat(dev, "shm", 01777) < 0 ||
            mkdirat(dev, "mqueue", 01777) < 0)
                return -errno;
        snprintf(opts, sizeof(opts), "newinstance,ptmxmode=0666,mode=0620,gid=%u",
                 (unsigned) (userns ? base + 5 : 5));
        r = mount_fs(dev, "pts", "devpts", opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, NULL);
        if (r < 0)
                return r;
        *what = "mounting /dev/shm";
        snprintf(opts, sizeof(opts), "mode=1777,size=64m,uid=%u,gid=%u",
                 (unsigned) (userns ? base : 0), (unsigned) (userns ? base : 0));
        r = mount_fs(dev, "shm", "tmpfs", opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, NULL);
        if (r < 0)
                return r;
        *what = "mounting /dev/mqueue";
        r = mount_fs(dev, "mqueue", "mqueue", NULL,
                     MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, NULL);
        if (r < 0)
                return r;
        *what = "creating the links in /dev";
        if (symlinkat("pts/ptmx", dev, "ptmx") < 0 || symlinkat("/proc/self/fd", dev, "fd") < 0 ||
            symlinkat("/proc/self/fd/0", dev, "stdin") < 0 ||
            symlinkat("/proc/self/fd/1", dev, "stdout") < 0 ||
            symlinkat("/proc/self/fd/2", dev, "stderr") < 0)
                return -errno;
        return 0;
}

/* A directory the root must have, as a real directory (not a symlink). */
static int require_dir(int rootfd, const char *path, const char **what) {
        _cleanup_close_ int fd = open_beneath(rootfd, path, O_PATH | O_DIRECTORY);

        if (fd == -ELOOP)
                *what = "the root's mount point is a symbolic link, which vigil refuses";
        else if (fd == -ENOENT)
                *what = "the root lacks a mount point (it needs /proc, /dev, /sys and /tmp)";
        return fd < 0 ? fd : 0;
}

static int loopback_up(void) {
        _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = { .ifr_name = "lo" };

        if (s < 0)
                return -errno;
        if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        return ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

static char what_buf[256];

/* The unit's own mounts, in order. */
static int setup_mounts(const isolation *iso, const unit *u, int rootfd, const char **what) {
        const unit_container *ct = u->container;
        bool userns = iso->userns_fd >= 0;
        uid_t root_uid = userns ? iso->uid_base : 0;
        int r;

        for (size_t i = 0; i < ct->n_mounts; i++) {
                const mount_entry *m = &ct->mounts[i];
                _cleanup_free_ char *src = NULL;

                snprintf(what_buf, sizeof(what_buf), "mounting %s", m->target);
                *what = what_buf;
                if (m->kind == MOUNT_TMPFS) {
                        _cleanup_free_ char *opts = NULL;

                        /* Owned by the container's root unless the unit says otherwise. */
                        if (!strstr(m->options, "uid=") && !strstr(m->options, "gid=") &&
                            asprintf_safe(&opts, "%s%suid=%u,gid=%u", m->options,
                                          *m->options ? "," : "", (unsigned) root_uid,
                                          (unsigned) root_uid) < 0)
                                return -ENOMEM;
                        r = mount_fs(rootfd, m->target, "tmpfs", opts ?: m->options,
                                     MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                             (m->read_only ? MOUNT_ATTR_RDONLY : 0),
                                     NULL);
                } else {
                        if (m->named) {
                                if (asprintf_safe(&src, "%s/%s", iso->volumes_dir, m->source) < 0)
                                        return -ENOMEM;
                                r = mkdir_p(iso->volumes_dir, 0755);
                                if (r < 0)
                                        return r;
                                /* A new volume belongs to the container's root. */
                                if (mkdir(src, 0755) >= 0 && userns &&
                                    chown(src, iso->uid_base, iso->uid_base) < 0)
                                        return -errno;
                        }
                        r = bind_host(src ?: m->source, rootfd, m->target, m->read_only, true);
                        if (r == -ENOENT && m->missing_ok)
                                r = 0;
                }
                if (r == -ELOOP) {
                        snprintf(what_buf, sizeof(what_buf),
                                 "mounting %s: the target is or passes through a symbolic link "
                                 "in the root, which vigil does not follow",
                                 m->target);
                        return r;
                }
                if (r == -ENOENT) {
                        snprintf(what_buf, sizeof(what_buf),
                                 "mounting %s: the source or the target in the root does not exist",
                                 m->target);
                        return r;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Makes the host's notify socket reachable at the same path inside: /run is ours. */
static int setup_notify(int rootfd, const char *socket_path, const char **what) {
        _cleanup_close_ int run = -1;
        const char *rel;
        int fd;

        *what = "making the notify socket reachable (it needs /run in the root)";
        if (!startswith(socket_path, "/run/"))
                return -EINVAL;
        rel = socket_path + strlen("/run/");
        run = open_beneath(rootfd, "run", O_PATH | O_DIRECTORY);
        if (run < 0)
                return run;
        /* Each directory of the path inside /run, then an empty file to bind onto. */
        for (const char *p = rel; (p = strchr(p, '/')); p++) {
                _cleanup_free_ char *d = strndup(rel, (size_t) (p - rel));

                if (!d)
                        return -ENOMEM;
                if (mkdirat(run, d, 0755) < 0 && errno != EEXIST)
                        return -errno;
        }
        fd = openat(run, rel, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        close(fd);
        return bind_host(socket_path, run, rel, false, false);
}

/* Volume=...:U: the directory belongs to the container's User= and Group=, looked up in
 * the image (so after pivot_root), each start. */
static int chown_volumes(const isolation *iso, const unit *u, const char **what) {
        uid_t base = iso->userns_fd >= 0 ? iso->uid_base : 0;
        _cleanup_close_ int root = -1;
        uid_t uid = 0;
        gid_t gid = 0;
        int r;

        for (size_t i = 0; i < u->container->n_mounts; i++) {
                const mount_entry *m = &u->container->mounts[i];
                _cleanup_close_ int fd = -1;

                if (!m->chown)
                        continue;
                if (root < 0) {
                        *what = "looking up User= and Group= for a Volume= with U";
                        if (u->user) {
                                user_record ur = {};

                                r = creds_lookup_user(NULL, u->user, &ur);
                                uid = ur.uid;
                                gid = ur.gid;
                                user_record_done(&ur);
                                if (r < 0)
                                        return r;
                        }
                        if (u->group) {
                                r = creds_lookup_group(NULL, u->group, &gid);
                                if (r < 0)
                                        return r;
                        }
                        if (iso->userns_fd >= 0 &&
                            (uid >= USERNS_RANGE_SIZE || gid >= USERNS_RANGE_SIZE))
                                return -ERANGE;
                        root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (root < 0)
                                return -errno;
                }
                snprintf(what_buf, sizeof(what_buf), "giving %s to the container's user",
                         m->target);
                *what = what_buf;
                fd = open_beneath(root, m->target, O_PATH | O_DIRECTORY);
                if (fd < 0)
                        return fd;
                if (fchownat(fd, "", base + uid, base + gid, AT_EMPTY_PATH) < 0)
                        return -errno;
        }
        return 0;
}

static int ns_enter(const isolation *iso, const unit *u, const char *notify_socket,
                    const char **what) {
        const unit_container *ct = u->container;
        bool userns = iso->userns_fd >= 0;
        _cleanup_close_ int tree = -1, rootfd = -1, proc = -1, sys = -1;
        struct statfs sfs;
        char opts[64];
        int r;

        if (iso->netns_fd >= 0) {
                /* Before /sys is mounted: it shows the network namespace of its mounter. */
                *what = "joining the service's network namespace";
                if (setns(iso->netns_fd, CLONE_NEWNET) < 0)
                        return -errno;
        }

        *what = "making the mounts private";
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno;

        /* Booted from an initramfs, "/" is the rootfs, the one mount without a parent, which
         * pivot_root() refuses to move. A copy of it mounted on top has one: root there (the
         * copy is reached through its fd: a path walk of "/" would stop below it). */
        if (statfs("/", &sfs) < 0)
                return -errno;
        if ((uint32_t) sfs.f_type == RAMFS_MAGIC || (uint32_t) sfs.f_type == TMPFS_MAGIC) {
                _cleanup_close_ int top = -1;

                *what = "leaving the initramfs root";
                top = open_tree(AT_FDCWD, "/", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
                if (top < 0 || move_mount(top, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) < 0 ||
                    fchdir(top) < 0 || chroot(".") < 0)
                        return -errno;
        }

        *what = "cloning the root tree";
        tree = open_tree(AT_FDCWD, iso->root, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree < 0)
                return -errno;
        r = set_attr(tree,
                     MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (ct->read_only ? MOUNT_ATTR_RDONLY : 0),
                     true);
        if (r < 0)
                return r;
        if (move_mount(tree, "", AT_FDCWD, iso->root, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return -errno;
        rootfd = open(iso->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return -errno;

        static const char *const needed[] = { "proc", "dev", "sys", "tmp" };
        for (size_t i = 0; i < ELEMENTSOF(needed); i++) {
                r = require_dir(rootfd, needed[i], what);
                if (r < 0) {
                        snprintf(what_buf, sizeof(what_buf), "checking /%s: %s", needed[i], *what);
                        *what = what_buf;
                        return r;
                }
        }

        *what = "mounting /proc";
        r = mount_fs(rootfd, "proc", "proc", NULL,
                     MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, &proc);
        if (r < 0)
                return r;
        *what = "masking paths in /proc";
        for (size_t i = 0; i < ELEMENTSOF(proc_masked); i++) {
                r = mask(proc, proc_masked[i]);
                if (r < 0)
                        return r;
        }
        *what = "making parts of /proc read-only";
        for (size_t i = 0; i < ELEMENTSOF(proc_read_only); i++) {
                r = make_read_only(proc, proc_read_only[i]);
                if (r < 0 && r != -ENOENT)
                        return r;
        }

        *what = "mounting /sys";
        r = mount_fs(rootfd, "sys", "sysfs", NULL,
                     MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                     &sys);
        if (r < 0)
                return r;
        *what = "masking paths in /sys";
        for (size_t i = 0; i < ELEMENTSOF(sys_masked); i++) {
                r = mask(sys, sys_masked[i]);
                if (r < 0)
                        return r;
        }

        r = setup_dev(rootfd, iso->uid_base, userns, what);
        if (r < 0)
                return r;

        *what = "mounting /tmp";
        snprintf(opts, sizeof(opts), "mode=1777,uid=%u,gid=%u",
                 (unsigned) (userns ? iso->uid_base : 0), (unsigned) (userns ? iso->uid_base : 0));
        r = mount_fs(rootfd, "tmp", "tmpfs", opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, NULL);
        if (r < 0)
                return r;
        r = open_beneath(rootfd, "run", O_PATH | O_DIRECTORY);
        if (r >= 0) {
                close(r);
                *what = "mounting /run";
                snprintf(opts, sizeof(opts), "mode=0755,size=16m,uid=%u,gid=%u",
                         (unsigned) (userns ? iso->uid_base : 0),
                         (unsigned) (userns ? iso->uid_base : 0));
                r = mount_fs(rootfd, "run", "tmpfs", opts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                             NULL);
                if (r < 0)
                        return r;
        }
        if (notify_socket) {
                r = setup_notify(rootfd, notify_socket, what);
                if (r < 0)
                        return r;
        }

        r = setup_mounts(iso, u, rootfd, what);
        if (r < 0)
                return r;

        *what = "changing into the root (pivot_root)";
        if (fchdir(rootfd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
            umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
                return -errno;

        r = chown_volumes(iso, u, what);
        if (r < 0)
                return r;

        *what = "setting the host name";
        {
                const char *h = ct->hostname ?: u->prefix;

                if (sethostname(h, strlen(h)) < 0)
                        return -errno;
        }
        return 0;
}

static int ns_join(const isolation *iso, const char **what) {
        if (iso->userns_fd < 0)
                return 0;
        *what = "joining the user namespace";
        if (setns(iso->userns_fd, CLONE_NEWUSER) < 0)
                return -errno;
        /* Still the host's root, which has no name in here: become the container's root
         * (User= then changes to its user), so that no file on the host is ever
         * accessed as the host's root. */
        *what = "becoming the container's root";
        if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                return -errno;
        return 0;
}

static const isolation_driver namespace_driver = {
        .name = "namespace",
        .enter = ns_enter,
        .join = ns_join,
};

int isolation_prepare(const unit *u, const isolation_dirs *dirs, isolation *ret) {
        const unit_container *ct = u->container;
        isolation iso = {
                .driver = &namespace_driver,
                .clone_flags =
                        CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP,
                .volumes_dir = dirs->volumes,
                .userns_fd = -1,
                .netns_fd = -1,
        };
        int r;

        *ret = (isolation){ .userns_fd = -1, .netns_fd = -1 };
        if (!unit_is_container(u))
                return 0;

        if (ct->image) {
                _cleanup_free_ char *file = NULL, *version = NULL;

                r = image_store_current(dirs->images, ct->image, &file, &version);
                if (r == -ENOENT)
                        return log_error_errno(r,
                                               "%s: image %s is not installed (no %s/%s/current)",
                                               u->name, ct->image, dirs->images, ct->image);
                if (r == -EBADMSG)
                        return log_error_errno(r,
                                               "%s: %s/%s/current is not a link to a "
                                               "VERSION.squashfs beside it",
                                               u->name, dirs->images, ct->image);
                if (r < 0)
                        return log_error_errno(r, "%s: finding image %s: %m", u->name, ct->image);
                r = image_mount(dirs->runtime, file, &iso.root);
                if (r < 0)
                        return log_error_errno(r, "%s: mounting image %s (%s): %m", u->name,
                                               ct->image, file);
                snprintf(iso.image_version, sizeof(iso.image_version), "%s", version);
        } else if (ct->root_image) {
                r = image_mount(dirs->runtime, ct->root_image, &iso.root);
                if (r < 0)
                        return log_error_errno(r, "%s: mounting RootImage=%s: %m", u->name,
                                               ct->root_image);
        } else
                iso.root = ct->root_directory;

        if (ct->network == NETWORK_NONE) {
                r = netns_get(u->name, &iso.netns_fd);
                if (r < 0)
                        return log_error_errno(r, "%s: setting up the network namespace: %m",
                                               u->name);
        }

        /* Containers get a user namespace unless they say UserNS=host. */
        if (ct->user_ns != 0) {
                r = userns_get(dirs->state, u->name, &iso.userns_fd, &iso.uid_base);
                if (r < 0)
                        return log_error_errno(r, "%s: setting up the user namespace: %m", u->name);
        }
        *ret = iso;
        return 0;
}
