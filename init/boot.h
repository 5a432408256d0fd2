/* Bringing up the machine as the real PID 1, and taking it down at the end. */
#pragma once

#include <stdbool.h>

/* Mounts /proc, /sys, /dev (devtmpfs), /dev/pts, /dev/shm, /run, /tmp and
 * /sys/fs/cgroup (cgroup2) where they are not mounted yet. Each failure is
 * logged; returns the first error but mounts what it can. */
int boot_mount_api_filesystems(void);
/* hostname from /etc/hostname (first line, validated), else "vigil". */
int boot_set_hostname(const char *etc_hostname);
/* Brings up lo with 127.0.0.1/8 and ::1 (ioctl/netlink, no tools). */
int boot_loopback_up(void);
/* Loads every module named in dir/?*.conf (one per line, # and ; comments) with libkmod,
 * with dependencies; returns how many failed (each logged). */
int boot_load_modules(const char *dir);
/* Mounts the entries of an fstab file (skipping noauto, swap, / and what is mounted),
 * creating mount points; returns how many failed (each logged). */
int boot_mount_fstab(const char *fstab);

/* After the services are stopped: TERM every remaining process, wait up to
 * timeout, KILL, reap, sync, unmount everything in reverse order (remounting
 * read-only what stays busy), then reboot(2) with the given RB_* command. */
_Noreturn void boot_final_shutdown(int rb_command, unsigned timeout_sec);

/* SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE in PID 1: log, sync, then freeze
 * forever or reboot after reboot_delay_sec (never return to the kernel).
 * Unblocks those five; keep them out of any later signal mask: the kernel kills a
 * process whose fault signal is blocked, and PID 1 dying panics the machine.
 * Call again once /dev is mounted so the message also reaches /dev/kmsg. */
void boot_install_crash_handler(bool reboot, unsigned reboot_delay_sec);

/* The pure parts of the above, exposed for tests/unit/test-boot.c: they read files but
 * mount, load or change nothing. */
#define BOOT_HOSTNAME_MAX 64

bool boot_hostname_is_valid(const char *s);
/* First non-empty, non-comment line of path, trimmed and validated, into ret;
 * -ENOENT, -ENODATA (no such line), -EINVAL (invalid) or another -errno. */
int boot_hostname_read(const char *path, char ret[static BOOT_HOSTNAME_MAX + 1]);

/* Calls fn for each valid module name in dir/?*.conf (lexical order, dot files and
 * masked files skipped); returns how many lines were bad or made fn fail. */
typedef int (*boot_module_fn)(const char *module, const char *file, unsigned line, void *userdata);
int boot_modules_foreach(const char *dir, boot_module_fn fn, void *userdata);

/* An fstab options string translated for mount(2). */
typedef struct BootMountOptions {
        unsigned long flags;       /* MS_* for the mount itself */
        unsigned long propagation; /* MS_SHARED/SLAVE/PRIVATE/UNBINDABLE [|MS_REC], or 0 */
        char *data;                /* what the filesystem gets; NULL when nothing */
        bool noauto, nofail;
} BootMountOptions;
int boot_mount_options_parse(const char *options, BootMountOptions *ret);
void boot_mount_options_done(BootMountOptions *o);

/* UUID=, LABEL=, PARTUUID=, PARTLABEL= → disk_dir/by-uuid/... (udev's name encoding);
 * anything else is copied. */
int boot_fstab_source(const char *what, const char *disk_dir, char **ret);

typedef struct BootFstabEntry {
        const char *file;
        unsigned line;
        /* unescaped; type "auto" and options "defaults" when the line has none */
        const char *what, *where, *type, *options;
} BootFstabEntry;
/* Calls fn for each entry of an fstab file; returns how many lines were bad or made fn fail. */
typedef int (*boot_fstab_fn)(const BootFstabEntry *e, void *userdata);
int boot_fstab_foreach(const char *path, boot_fstab_fn fn, void *userdata);

typedef struct BootMount {
        char *where, *type, *source;
        unsigned long flags; /* the per-mount MS_* flags */
} BootMount;
/* Parses a /proc/PID/mountinfo file in its order. */
int boot_mountinfo_read(const char *path, BootMount **ret, size_t *ret_n);
void boot_mounts_free(BootMount *m, size_t n);
/* /proc, /sys, /dev and what is below them: left mounted at shutdown. */
bool boot_path_is_api(const char *where);
