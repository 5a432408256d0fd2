/* Bringing up the machine as the real PID 1 (kernel filesystems, hostname, lo, modules, fstab)
 * and taking it down at the end; plus the last-resort crash handler. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <libkmod.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

#include "blkid.h"
#include "boot.h"
#include "fileio.h"
#include "log.h"

#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif

/* Bounds on everything read at boot: config files are small, mountinfo can be long. */
#define CONF_FILE_MAX (1024 * 1024)
#define CONF_LINE_MAX 4096
#define CONF_FILES_MAX 1024
#define MOUNTINFO_MAX (16 * 1024 * 1024)
/* Longer than any real module name (the kernel allows 55) so aliases fit too. */
#define MODULE_NAME_MAX 127
/* How long an fstab entry waits for its /dev node to appear (modules probe asynchronously). */
#define DEVICE_WAIT_MSEC 5000
/* After SIGKILL, how long to reap before going on regardless (D-state processes). */
#define KILL_REAP_MSEC 5000
#define UMOUNT_ROUNDS 8

static void sleep_msec(unsigned msec) {
        struct timespec ts = { .tv_sec = msec / 1000, .tv_nsec = (long) (msec % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static uint64_t now_msec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* Walks a buffer line by line, NUL-terminating each line in place. */
typedef struct LineIter {
        char *p, *end;
        unsigned line;
} LineIter;

static char *line_next(LineIter *it, size_t *ret_len) {
        char *start = it->p, *eol;

        if (it->p >= it->end)
                return NULL;
        eol = memchr(start, '\n', (size_t) (it->end - start));
        if (!eol)
                eol = it->end;
        *eol = '\0';
        it->p = eol + 1;
        it->line++;
        *ret_len = (size_t) (eol - start);
        return start;
}

/* Checks one raw line for the limits every config file shares; logs and returns false when bad. */
static bool line_is_sane(const char *file, unsigned line, const char *s, size_t len) {
        if (len > CONF_LINE_MAX) {
                log_error("%s:%u: line too long (%zu bytes, at most %d), ignoring.", file, line,
                          len, CONF_LINE_MAX);
                return false;
        }
        if (strlen(s) != len) {
                log_error("%s:%u: line contains a NUL byte, ignoring.", file, line);
                return false;
        }
        return true;
}

/* ---- hostname ---- */

bool boot_hostname_is_valid(const char *s) {
        size_t n = 0;

        if (isempty(s) || s[0] == '-' || s[0] == '.')
                return false;
        for (const char *p = s; *p; p++, n++) {
                if (n >= BOOT_HOSTNAME_MAX)
                        return false;
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
                      *p == '.'))
                        return false;
                /* empty labels: "a..b", "a." */
                if (*p == '.' && (p[1] == '.' || p[1] == '\0'))
                        return false;
        }
        return true;
}

int boot_hostname_read(const char *path, char ret[static BOOT_HOSTNAME_MAX + 1]) {
        _cleanup_free_ char *buf = NULL;
        size_t size, len;
        LineIter it;
        char *l;
        int r;

        r = read_file_bounded(path, 64 * 1024, &buf, &size);
        if (r < 0)
                return r;

        it = (LineIter){ .p = buf, .end = buf + size };
        while ((l = line_next(&it, &len))) {
                if (strlen(l) != len)
                        return -EINVAL;
                l = strstrip(l);
                if (*l == '\0' || *l == '#')
                        continue;
                if (!boot_hostname_is_valid(l))
                        return -EINVAL;
                snprintf(ret, BOOT_HOSTNAME_MAX + 1, "%s", l); /* valid: it fits */
                return 0;
        }
        return -ENODATA;
}

int boot_set_hostname(const char *etc_hostname) {
        const char *path = etc_hostname ? etc_hostname : "/etc/hostname";
        char name[BOOT_HOSTNAME_MAX + 1];
        int r;

        r = boot_hostname_read(path, name);
        if (r == -ENOENT || r == -ENODATA)
                log_info("No hostname in %s, using \"vigil\".", path);
        else if (r == -EINVAL)
                log_warning("%s: invalid hostname, using \"vigil\".", path);
        else if (r < 0)
                log_warning_errno(r, "Failed to read %s, using \"vigil\": %m", path);
        if (r < 0)
                snprintf(name, sizeof(name), "vigil");

        if (sethostname(name, strlen(name)) < 0)
                return log_error_errno(errno, "Failed to set hostname to \"%s\": %m", name);
        log_info("Hostname set to \"%s\".", name);
        return 0;
}

/* ---- loopback ---- */

static int rtnl_add_address(int ifindex, int family, const void *addr, unsigned prefixlen) {
        struct {
                struct nlmsghdr nh;
                struct ifaddrmsg ifa;
                char attrs[64];
        } req = {};
        struct {
                struct nlmsghdr nh;
                struct nlmsgerr err;
                char rest[256];
        } ack;
        _cleanup_close_ int fd = -1;
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
        size_t alen = family == AF_INET ? 4 : 16;
        const unsigned short types[] = { IFA_LOCAL, IFA_ADDRESS };
        ssize_t k;

        fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0)
                return -errno;

        req.nh.nlmsg_type = RTM_NEWADDR;
        req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        req.nh.nlmsg_seq = 1;
        req.ifa.ifa_family = (unsigned char) family;
        req.ifa.ifa_prefixlen = (unsigned char) prefixlen;
        req.ifa.ifa_scope = RT_SCOPE_HOST;
        req.ifa.ifa_index = (unsigned) ifindex;
        req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifa));
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                struct rtattr *rta =
                        (struct rtattr *) ((char *) &req + NLMSG_ALIGN(req.nh.nlmsg_len));

                rta->rta_type = types[i];
                rta->rta_len = (unsigned short) RTA_LENGTH(alen);
                memcpy(RTA_DATA(rta), addr, alen);
                req.nh.nlmsg_len = NLMSG_ALIGN(req.nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
        }

        if (sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        /* The kernel answers during sendto(), so this does not block for long. */
        do
                k = recv(fd, &ack, sizeof(ack), 0);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        if ((size_t) k < NLMSG_LENGTH(sizeof(struct nlmsgerr)) || ack.nh.nlmsg_type != NLMSG_ERROR)
                return -EPROTO;
        return ack.err.error;
}

int boot_loopback_up(void) {
        struct in_addr lo4 = { .s_addr = htonl(INADDR_LOOPBACK) };
        _cleanup_close_ int fd = -1;
        struct ifreq ifr = {};
        int ifindex, r;

        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open a socket for lo: %m");
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0)
                return log_error_errno(errno, "Failed to find lo: %m");
        ifindex = ifr.ifr_ifindex;
        if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                return log_error_errno(errno, "Failed to read the flags of lo: %m");
        if (!(ifr.ifr_flags & IFF_UP)) {
                ifr.ifr_flags |= IFF_UP;
                if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
                        return log_error_errno(errno, "Failed to bring up lo: %m");
        }

        /* The kernel adds 127.0.0.1/8 and ::1/128 itself when lo goes up (inetdev_event()
         * and addrconf's init_loopback()); adding them exclusively checks that, and repairs
         * a loopback somebody stripped. */
        r = rtnl_add_address(ifindex, AF_INET, &lo4, 8);
        if (r < 0 && r != -EEXIST)
                return log_error_errno(r, "Failed to add 127.0.0.1/8 to lo: %m");
        r = rtnl_add_address(ifindex, AF_INET6, &in6addr_loopback, 128);
        if (r < 0 && r != -EEXIST) {
                /* IPv6 disabled (ipv6.disable=1 or disable_ipv6) is a choice, not a failure. */
                if (r == -EAFNOSUPPORT || r == -EACCES || r == -EPERM)
                        log_debug("No ::1 on lo, IPv6 is off: %s", strerror(-r));
                else
                        log_warning_errno(r, "Failed to add ::1 to lo: %m");
        }
        log_info("Loopback interface lo is up.");
        return 0;
}

/* ---- modules ---- */

static bool module_name_is_valid(const char *s) {
        size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");

        return n > 0 && n <= MODULE_NAME_MAX && s[n] == '\0';
}

static int modules_parse_file(const char *path, boot_module_fn fn, void *userdata) {
        _cleanup_free_ char *buf = NULL;
        int failures = 0;
        size_t size, len;
        LineIter it;
        char *l;
        int r;

        r = read_file_bounded(path, CONF_FILE_MAX, &buf, &size);
        if (r < 0) {
                log_error_errno(r, "Failed to read %s: %m", path);
                return 1;
        }

        it = (LineIter){ .p = buf, .end = buf + size };
        while ((l = line_next(&it, &len))) {
                if (!line_is_sane(path, it.line, l, len)) {
                        failures++;
                        continue;
                }
                l = strstrip(l);
                if (*l == '\0' || *l == '#' || *l == ';')
                        continue;
                if (!module_name_is_valid(l)) {
                        log_error("%s:%u: invalid module name \"%.64s\", ignoring.", path, it.line,
                                  l);
                        failures++;
                        continue;
                }
                if (fn(l, path, it.line, userdata) < 0)
                        failures++;
        }
        return failures;
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int boot_modules_foreach(const char *dir, boot_module_fn fn, void *userdata) {
        _cleanup_(closedirp) DIR *d = NULL;
        char **names = NULL;
        size_t n = 0, cap = 0;
        int failures = 0;
        struct dirent *de;

        d = opendir(dir);
        if (!d) {
                if (errno == ENOENT)
                        return 0;
                log_error_errno(errno, "Failed to open %s: %m", dir);
                return 1;
        }

        while ((errno = 0, de = readdir(d))) {
                struct stat st;

                if (de->d_name[0] == '.' || !endswith(de->d_name, ".conf") ||
                    streq(de->d_name, ".conf"))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0) {
                        log_warning_errno(errno, "Failed to stat %s/%s, ignoring: %m", dir,
                                          de->d_name);
                        continue;
                }
                /* systemd's convention: a symlink to /dev/null masks a file. */
                if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3))
                        continue;
                if (!S_ISREG(st.st_mode)) {
                        log_warning("%s/%s is not a regular file, ignoring.", dir, de->d_name);
                        continue;
                }
                if (n >= CONF_FILES_MAX) {
                        log_error("%s: more than %d files, ignoring the rest.", dir,
                                  CONF_FILES_MAX);
                        failures++;
                        break;
                }
                if (n == cap) {
                        size_t c = cap ? cap * 2 : 16;
                        char **t = realloc(names, c * sizeof(char *));

                        if (!t)
                                goto oom;
                        names = t;
                        cap = c;
                }
                names[n] = strdup(de->d_name);
                if (!names[n])
                        goto oom;
                n++;
        }

        if (n > 0)
                qsort(names, n, sizeof(char *), compare_names);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;

                if (asprintf_safe(&path, "%s/%s", dir, names[i]) < 0) {
                        log_oom();
                        failures++;
                        continue;
                }
                failures += modules_parse_file(path, fn, userdata);
        }
        goto done;

oom:
        log_oom();
        failures++;
done:
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return failures;
}

/* libkmod is needed only while the boot loads modules, and with it come libcrypto and the
 * compression libraries (≈0.5 MB of mapped pages): it is opened then and closed after, so a
 * running PID 1 maps none of them. */
#define KMOD_LIBRARY "libkmod.so.2"

typedef struct kmod_api {
        void *dl;
        typeof(kmod_new) *new_ctx;
        typeof(kmod_unref) *unref;
        typeof(kmod_set_log_fn) *set_log_fn;
        typeof(kmod_load_resources) *load_resources;
        typeof(kmod_module_new_from_lookup) *module_new_from_lookup;
        typeof(kmod_module_unref_list) *module_unref_list;
        typeof(kmod_list_next) *list_next;
        typeof(kmod_module_get_module) *module_get_module;
        typeof(kmod_module_get_name) *module_get_name;
        typeof(kmod_module_get_initstate) *module_get_initstate;
        typeof(kmod_module_probe_insert_module) *module_probe_insert_module;
        typeof(kmod_module_unref) *module_unref;
} kmod_api;

/* Fills api from libkmod.so.2: 0, or -ELIBACC with *ret_error saying why. */
static int kmod_api_open(kmod_api *api, const char **ret_error) {
        static const struct {
                const char *name;
                size_t offset;
        } syms[] = {
                { "kmod_new", offsetof(kmod_api, new_ctx) },
                { "kmod_unref", offsetof(kmod_api, unref) },
                { "kmod_set_log_fn", offsetof(kmod_api, set_log_fn) },
                { "kmod_load_resources", offsetof(kmod_api, load_resources) },
                { "kmod_module_new_from_lookup", offsetof(kmod_api, module_new_from_lookup) },
                { "kmod_module_unref_list", offsetof(kmod_api, module_unref_list) },
                { "kmod_list_next", offsetof(kmod_api, list_next) },
                { "kmod_module_get_module", offsetof(kmod_api, module_get_module) },
                { "kmod_module_get_name", offsetof(kmod_api, module_get_name) },
                { "kmod_module_get_initstate", offsetof(kmod_api, module_get_initstate) },
                { "kmod_module_probe_insert_module",
                  offsetof(kmod_api, module_probe_insert_module) },
                { "kmod_module_unref", offsetof(kmod_api, module_unref) },
        };

        *api = (kmod_api){};
        api->dl = dlopen(KMOD_LIBRARY, RTLD_NOW | RTLD_LOCAL);
        if (!api->dl) {
                *ret_error = dlerror();
                return -ELIBACC;
        }
        for (size_t i = 0; i < ELEMENTSOF(syms); i++) {
                void *f = dlsym(api->dl, syms[i].name);

                if (!f) {
                        *ret_error = dlerror();
                        dlclose(api->dl);
                        *api = (kmod_api){};
                        return -ELIBACC;
                }
                memcpy((char *) api + syms[i].offset, &f, sizeof(f));
        }
        return 0;
}

_printf_(6, 0) static void kmod_log(void *data, int priority, const char *file, int line,
                                    const char *fn, const char *format, va_list args) {
        char buf[512];

        vsnprintf(buf, sizeof(buf), format, args);
        buf[strcspn(buf, "\n")] = '\0';
        log_internal(priority, 0, "libkmod: %s", buf);
}

typedef struct ModuleLoader {
        kmod_api api;
        struct kmod_ctx *ctx;
        int error;       /* libkmod could not be opened or kmod_new() failed: every module
                          * fails the same way */
        const char *why; /* for -ELIBACC: dlerror()'s text */
} ModuleLoader;

static int module_loader_init(ModuleLoader *ml) {
        int r;

        r = kmod_api_open(&ml->api, &ml->why);
        if (r < 0) {
                log_error("Cannot load kernel modules: %s: %s", KMOD_LIBRARY,
                          ml->why ?: "cannot be opened");
                return r;
        }
        ml->ctx = ml->api.new_ctx(NULL, NULL);
        if (!ml->ctx)
                return -ENOMEM;
        ml->api.set_log_fn(ml->ctx, kmod_log, NULL);
        r = ml->api.load_resources(ml->ctx);
        if (r < 0)
                log_warning_errno(r, "Failed to load the module indexes: %m");
        return 0;
}

static void module_loader_done(ModuleLoader *ml) {
        if (ml->ctx)
                ml->api.unref(ml->ctx);
        ml->ctx = NULL;
        if (ml->api.dl)
                dlclose(ml->api.dl);
        ml->api = (kmod_api){};
}

static int load_module(const char *name, const char *file, unsigned line, void *userdata) {
        ModuleLoader *ml = userdata;
        const kmod_api *k = &ml->api;
        struct kmod_list *list = NULL, *l;
        int ret = 0, r;

        if (!ml->ctx && ml->error == 0) {
                r = module_loader_init(ml);
                if (r < 0)
                        ml->error = r;
        }
        if (!ml->ctx) {
                if (ml->error == -ELIBACC)
                        return log_error_errno(ml->error,
                                               "%s:%u: cannot load \"%s\": %s is missing.", file,
                                               line, name, KMOD_LIBRARY);
                return log_error_errno(ml->error, "%s:%u: cannot load \"%s\", libkmod failed: %m",
                                       file, line, name);
        }

        r = k->module_new_from_lookup(ml->ctx, name, &list);
        if (r < 0)
                return log_error_errno(r, "%s:%u: failed to look up module \"%s\": %m", file, line,
                                       name);
        if (!list)
                return log_error_errno(ENOENT, "%s:%u: module \"%s\" not found.", file, line, name);

        for (l = list; l; l = k->list_next(list, l)) {
                struct kmod_module *mod = k->module_get_module(l);
                const char *modname = k->module_get_name(mod);
                int state = k->module_get_initstate(mod);

                if (state == KMOD_MODULE_BUILTIN)
                        log_debug("Module \"%s\" is built in.", modname);
                else if (state == KMOD_MODULE_LIVE)
                        log_debug("Module \"%s\" is already loaded.", modname);
                else {
                        r = k->module_probe_insert_module(mod, KMOD_PROBE_APPLY_BLACKLIST, NULL,
                                                          NULL, NULL, NULL);
                        if (r == 0)
                                log_info("Inserted module \"%s\".", modname);
                        else if (r == KMOD_PROBE_APPLY_BLACKLIST)
                                log_info("%s:%u: module \"%s\" is blacklisted, not loaded.", file,
                                         line, modname);
                        else if (r == -EEXIST)
                                log_debug("Module \"%s\" is already loaded.", modname);
                        else if (r == -ENODEV)
                                /* the module works, the hardware is not there */
                                log_notice("%s:%u: module \"%s\": no such device.", file, line,
                                           modname);
                        else
                                ret = log_error_errno(r,
                                                      "%s:%u: failed to insert module \"%s\": %m",
                                                      file, line, modname);
                }
                k->module_unref(mod);
        }
        k->module_unref_list(list);
        return ret;
}

int boot_load_modules(const char *dir) {
        ModuleLoader ml = {};
        int failures;

        failures = boot_modules_foreach(dir, load_module, &ml);
        module_loader_done(&ml);
        if (failures > 0)
                log_error("%d module(s) from %s failed.", failures, dir);
        return failures;
}

/* ---- fstab ---- */

static const struct mount_opt {
        const char *name;
        unsigned long set, clear;
} mount_opts[] = {
        { "defaults", 0, 0 },
        { "ro", MS_RDONLY, 0 },
        { "rw", 0, MS_RDONLY },
        { "nosuid", MS_NOSUID, 0 },
        { "suid", 0, MS_NOSUID },
        { "nodev", MS_NODEV, 0 },
        { "dev", 0, MS_NODEV },
        { "noexec", MS_NOEXEC, 0 },
        { "exec", 0, MS_NOEXEC },
        { "sync", MS_SYNCHRONOUS, 0 },
        { "async", 0, MS_SYNCHRONOUS },
        { "dirsync", MS_DIRSYNC, 0 },
        { "noatime", MS_NOATIME, 0 },
        { "atime", 0, MS_NOATIME },
        { "nodiratime", MS_NODIRATIME, 0 },
        { "diratime", 0, MS_NODIRATIME },
        { "relatime", MS_RELATIME, 0 },
        { "norelatime", 0, MS_RELATIME },
        { "strictatime", MS_STRICTATIME, 0 },
        { "nostrictatime", 0, MS_STRICTATIME },
        { "lazytime", MS_LAZYTIME, 0 },
        { "nolazytime", 0, MS_LAZYTIME },
        { "mand", MS_MANDLOCK, 0 },
        { "nomand", 0, MS_MANDLOCK },
        { "silent", MS_SILENT, 0 },
        { "loud", 0, MS_SILENT },
        { "bind", MS_BIND, 0 },
        { "rbind", MS_BIND | MS_REC, 0 },
};

static const struct propagation_opt {
        const char *name;
        unsigned long flags;
} propagation_opts[] = {
        { "shared", MS_SHARED },         { "rshared", MS_SHARED | MS_REC },
        { "slave", MS_SLAVE },           { "rslave", MS_SLAVE | MS_REC },
        { "private", MS_PRIVATE },       { "rprivate", MS_PRIVATE | MS_REC },
        { "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
};

/* Options for mount(8) and fstab readers only; the kernel must not see them. */
static bool option_is_userspace(const char *o) {
        static const char *const names[] = { "auto",  "noauto", "nofail", "user",   "nouser",
                                             "users", "owner",  "group",  "_netdev" };

        if (startswith(o, "x-") || startswith(o, "X-") || startswith(o, "comment="))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(o, names[i]))
                        return true;
        return false;
}

void boot_mount_options_done(BootMountOptions *o) {
        o->data = mfree(o->data);
}

int boot_mount_options_parse(const char *options, BootMountOptions *ret) {
        _cleanup_free_ char *copy = NULL, *data = NULL;
        BootMountOptions o = {};
        size_t dlen = 0;
        char *p;

        copy = strdup(options ? options : "");
        data = malloc(strlen(options ? options : "") + 1);
        if (!copy || !data)
                return -ENOMEM;
        data[0] = '\0';

        p = copy;
        while (*p) {
                char *opt = p;
                bool quoted = false, found = false;

                /* Split at commas outside double quotes: context="a,b" is one option. */
                for (; *p && (quoted || *p != ','); p++)
                        if (*p == '"')
                                quoted = !quoted;
                if (quoted)
                        return -EINVAL;
                if (*p)
                        *p++ = '\0';
                if (*opt == '\0')
                        continue;

                for (size_t i = 0; i < ELEMENTSOF(mount_opts); i++)
                        if (streq(opt, mount_opts[i].name)) {
                                o.flags = (o.flags & ~mount_opts[i].clear) | mount_opts[i].set;
                                found = true;
                                break;
                        }
                for (size_t i = 0; !found && i < ELEMENTSOF(propagation_opts); i++)
                        if (streq(opt, propagation_opts[i].name)) {
                                o.propagation = propagation_opts[i].flags;
                                found = true;
                        }
                if (found)
                        continue;
                if (streq(opt, "noauto"))
                        o.noauto = true;
                else if (streq(opt, "auto"))
                        o.noauto = false;
                else if (streq(opt, "nofail"))
                        o.nofail = true;
                if (option_is_userspace(opt))
                        continue;

                if (dlen > 0)
                        data[dlen++] = ',';
                memcpy(data + dlen, opt, strlen(opt) + 1);
                dlen += strlen(opt);
        }

        if (dlen > 0)
                o.data = TAKE_PTR(data);
        *ret = o;
        return 0;
}

/* udev's encoding of names in /dev/disk/by-*: bytes outside a safe set become \xNN. */
static int udev_encode(const char *s, char **ret) {
        static const char safe[] = "#+-.:=@_";
        char *buf, *q;

        buf = malloc(strlen(s) * 4 + 1);
        if (!buf)
                return -ENOMEM;
        q = buf;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (isascii(*p) && (isalnum(*p) || (*p && strchr(safe, *p))))
                        *q++ = (char) *p;
                else if (*p >= 0x80)
                        *q++ = (char) *p; /* udev keeps valid UTF-8; keep high bytes as they are */
                else
                        q += snprintf(q, 5, "\\x%02x", *p);
        }
        *q = '\0';
        *ret = buf;
        return 0;
}

int boot_fstab_source(const char *what, const char *disk_dir, char **ret) {
        _cleanup_free_ char *value = NULL, *encoded = NULL;
        BlkidTag tag;
        int r;

        r = blkid_parse_spec(what, &tag, &value);
        if (r == -ENOENT) {
                *ret = strdup(what);
                return *ret ? 0 : -ENOMEM;
        }
        if (r < 0)
                return r;
        r = udev_encode(value, &encoded);
        if (r < 0)
                return r;
        /* '/' is encoded, but "." and ".." would still walk out of by-*. */
        if (streq(encoded, ".") || streq(encoded, ".."))
                return -EINVAL;
        if (asprintf_safe(ret, "%s/%s/%s", disk_dir ? disk_dir : "/dev/disk",
                          blkid_tag_disk_dir(tag), encoded) < 0)
                return -ENOMEM;
        return 0;
}

/* fstab(5) and mountinfo escape blanks and backslashes as \ooo; decodes in place. */
static int unescape_octal(char *s) {
        char *q = s;

        for (char *p = s; *p; p++) {
                if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
                    p[3] >= '0' && p[3] <= '7') {
                        int c = (p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0');

                        if (c == 0)
                                return -EINVAL;
                        *q++ = (char) c;
                        p += 3;
                } else
                        *q++ = *p;
        }
        *q = '\0';
        return 0;
}

int boot_fstab_foreach(const char *path, boot_fstab_fn fn, void *userdata) {
        _cleanup_free_ char *buf = NULL;
        int failures = 0;
        size_t size, len;
        LineIter it;
        char *l;
        int r;

        r = read_file_bounded(path, CONF_FILE_MAX, &buf, &size);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                log_error_errno(r, "Failed to read %s: %m", path);
                return 1;
        }

        it = (LineIter){ .p = buf, .end = buf + size };
        while ((l = line_next(&it, &len))) {
                char *fields[7] = {}, *save = NULL;
                size_t n = 0;
                bool bad = false;

                if (!line_is_sane(path, it.line, l, len)) {
                        failures++;
                        continue;
                }
                l = strstrip(l);
                if (*l == '\0' || *l == '#')
                        continue;

                for (char *f = strtok_r(l, " \t", &save); f; f = strtok_r(NULL, " \t", &save)) {
                        if (n == ELEMENTSOF(fields)) {
                                bad = true;
                                break;
                        }
                        if (unescape_octal(f) < 0)
                                bad = true;
                        fields[n++] = f;
                }
                if (bad || n < 2 || n > 6) {
                        log_error("%s:%u: not an fstab entry (SOURCE TARGET [TYPE [OPTIONS "
                                  "[DUMP [PASS]]]]), ignoring.",
                                  path, it.line);
                        failures++;
                        continue;
                }

                BootFstabEntry e = {
                        .file = path,
                        .line = it.line,
                        .what = fields[0],
                        .where = fields[1],
                        .type = fields[2] ? fields[2] : "auto",
                        .options = fields[3] ? fields[3] : "defaults",
                };
                if (fn(&e, userdata) < 0)
                        failures++;
        }
        return failures;
}

/* ---- mountinfo ---- */

void boot_mounts_free(BootMount *m, size_t n) {
        for (size_t i = 0; m && i < n; i++) {
                free(m[i].where);
                free(m[i].type);
                free(m[i].source);
        }
        free(m);
}

int boot_mountinfo_read(const char *path, BootMount **ret, size_t *ret_n) {
        _cleanup_free_ char *buf = NULL;
        BootMount *m = NULL;
        size_t size, len, n = 0, cap = 0;
        LineIter it;
        char *l;
        int r;

        r = read_file_bounded(path, MOUNTINFO_MAX, &buf, &size);
        if (r < 0)
                return r;

        it = (LineIter){ .p = buf, .end = buf + size };
        while ((l = line_next(&it, &len))) {
                char *f[6], *save = NULL, *type, *source, *tok;
                BootMountOptions o;

                if (*l == '\0')
                        continue;
                /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER */
                for (size_t i = 0; i < ELEMENTSOF(f); i++)
                        f[i] = strtok_r(i == 0 ? l : NULL, " ", &save);
                while ((tok = strtok_r(NULL, " ", &save)) && !streq(tok, "-"))
                        ;
                type = strtok_r(NULL, " ", &save);
                source = strtok_r(NULL, " ", &save);
                if (!f[5] || !tok || !type || !source || unescape_octal(f[4]) < 0 ||
                    unescape_octal(source) < 0) {
                        r = -EBADMSG;
                        goto fail;
                }
                if (n == cap) {
                        size_t c = cap ? cap * 2 : 32;
                        BootMount *t = realloc(m, c * sizeof(BootMount));

                        if (!t) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        m = t;
                        cap = c;
                }
                r = boot_mount_options_parse(f[5], &o);
                if (r < 0)
                        goto fail;
                boot_mount_options_done(&o);
                m[n] = (BootMount){
                        .where = strdup(f[4]),
                        .type = strdup(type),
                        .source = strdup(source),
                        .flags = o.flags,
                };
                n++;
                if (!m[n - 1].where || !m[n - 1].type || !m[n - 1].source) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        *ret = m;
        *ret_n = n;
        return 0;

fail:
        boot_mounts_free(m, n);
        return r;
}

static bool path_equal_or_under(const char *p, const char *dir) {
        const char *rest = startswith(p, dir);

        return rest && (*rest == '\0' || *rest == '/');
}

bool boot_path_is_api(const char *where) {
        return path_equal_or_under(where, "/proc") || path_equal_or_under(where, "/sys") ||
               path_equal_or_under(where, "/dev");
}

static int is_mounted(const char *where) {
        BootMount *m = NULL;
        size_t n = 0;
        bool found = false;
        int r;

        r = boot_mountinfo_read("/proc/self/mountinfo", &m, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && !found; i++)
                found = streq(m[i].where, where);
        boot_mounts_free(m, n);
        return found;
}

/* ---- mounting ---- */

/* statx() knows mount roots (5.8+); older kernels fall back to comparing with the parent. */
static int is_mount_point(const char *path) {
        struct statx sx;
        struct stat a, b;
        _cleanup_free_ char *parent = NULL;

        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &sx) <
            0)
                return -errno;
        if (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
                return !!(sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);

        if (asprintf_safe(&parent, "%s/..", path) < 0)
                return -ENOMEM;
        if (stat(path, &a) < 0 || stat(parent, &b) < 0)
                return -errno;
        return a.st_dev != b.st_dev || a.st_ino == b.st_ino;
}

static const struct api_mount {
        const char *what, *where, *type;
        unsigned long flags;
        const char *data;
        long magic;
} api_mounts[] = {
        { "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, PROC_SUPER_MAGIC },
        { "sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, SYSFS_MAGIC },
        { "devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=755", TMPFS_MAGIC },
        { "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=000",
          DEVPTS_SUPER_MAGIC },
        { "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", TMPFS_MAGIC },
        { "tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755", TMPFS_MAGIC },
        { "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", TMPFS_MAGIC },
        { "cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
          "nsdelegate,memory_recursiveprot", CGROUP2_SUPER_MAGIC },
};

static bool magic_matches(const struct api_mount *m, long f_type) {
        /* devtmpfs is shmem (TMPFS_MAGIC) or, without CONFIG_TMPFS, ramfs. */
        if (streq(m->type, "devtmpfs"))
                return f_type == TMPFS_MAGIC || f_type == RAMFS_MAGIC;
        return f_type == m->magic;
}

static int mount_api(const struct api_mount *m) {
        struct statfs sfs;
        int r;

        r = is_mount_point(m->where);
        if (r == -ENOENT) {
                r = mkdir_p(m->where, 0755);
                if (r < 0)
                        return log_error_errno(r, "Failed to create %s: %m", m->where);
                r = 0;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to check %s: %m", m->where);
        if (r > 0) {
                /* statfs() alone would see /dev/shm on devtmpfs as tmpfs already. */
                if (statfs(m->where, &sfs) < 0)
                        return log_error_errno(errno, "Failed to statfs %s: %m", m->where);
                if (magic_matches(m, (long) sfs.f_type))
                        log_debug("%s is already mounted.", m->where);
                else
                        log_warning("%s is already mounted, but not as %s (0x%lx); leaving it.",
                                    m->where, m->type, (unsigned long) sfs.f_type);
                return 0;
        }

        if (streq(m->type, "cgroup2")) {
                /* favordynmods (6.0) makes moving a process between cgroups cheap (no RCU
                 * grace period each time, which a move by an admin's tool would otherwise
                 * make every fork wait for); fork and exit pay a little for it.
                 * memory_recursiveprot needs 5.7; nsdelegate 4.13. */
                static const char *const tries[] = { "nsdelegate,memory_recursiveprot,favordynmods",
                                                     "nsdelegate,memory_recursiveprot",
                                                     "nsdelegate", NULL };

                for (size_t i = 0; i < ELEMENTSOF(tries); i++) {
                        r = mount(m->what, m->where, m->type, m->flags, tries[i]);
                        if (r == 0 || errno != EINVAL)
                                break;
                        log_debug("Mounting cgroup2 with \"%s\" failed, retrying.", tries[i]);
                }
        } else
                r = mount(m->what, m->where, m->type, m->flags, m->data);
        if (r < 0)
                return log_error_errno(errno, "Failed to mount %s on %s: %m", m->type, m->where);
        log_debug("Mounted %s on %s.", m->type, m->where);
        return 0;
}

int boot_mount_api_filesystems(void) {
        static const struct {
                const char *target, *link;
        } links[] = {
                { "/proc/self/fd", "/dev/fd" },       { "/proc/self/fd/0", "/dev/stdin" },
                { "/proc/self/fd/1", "/dev/stdout" }, { "/proc/self/fd/2", "/dev/stderr" },
                { "/proc/kcore", "/dev/core" },
        };
        int ret = 0, r;

        for (size_t i = 0; i < ELEMENTSOF(api_mounts); i++) {
                r = mount_api(&api_mounts[i]);
                if (r < 0 && ret == 0)
                        ret = r;
        }

        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                if (streq(links[i].link, "/dev/core") && access("/proc/kcore", F_OK) < 0)
                        continue;
                if (symlink(links[i].target, links[i].link) < 0 && errno != EEXIST)
                        log_warning_errno(errno, "Failed to create %s: %m", links[i].link);
        }
        if (ret == 0)
                log_info("Kernel filesystems are mounted.");
        return ret;
}

/* Waits for a /dev node a module may still be probing; gives up at once when a udev
 * directory (/dev/disk/by-*) does not exist at all, as nothing will create it. */
static void wait_for_device(const char *path) {
        _cleanup_free_ char *dir = NULL;
        char *slash;

        if (!startswith(path, "/dev/") || access(path, F_OK) == 0)
                return;
        dir = strdup(path);
        if (!dir)
                return;
        slash = strrchr(dir, '/');
        *slash = '\0';
        if (access(dir, F_OK) < 0) {
                log_warning("%s does not exist: is udev (or mdev) running to create it?", dir);
                return;
        }
        log_info("Waiting for %s...", path);
        for (unsigned waited = 0; waited < DEVICE_WAIT_MSEC && access(path, F_OK) < 0; waited += 50)
                sleep_msec(50);
}

/* The device of a UUID=/LABEL= source: udev's /dev/disk/by-* link when there is one, else
 * the device whose superblock carries it (an appliance has no udev). Both are retried while
 * modules may still be probing. Logs why it failed (a warning for nofail lines). For a
 * plain source only waits for it, leaving *ret_device NULL. */
static int fstab_find_device(const BootFstabEntry *e, const char *link, bool nofail,
                             char **ret_device) {
        _cleanup_free_ char *value = NULL;
        int level = nofail ? LOG_WARNING : LOG_ERR;
        bool waiting = false;
        BlkidTag tag;
        int r;

        r = blkid_parse_spec(e->what, &tag, &value);
        if (r == -ENOENT) {
                wait_for_device(link);
                return 0;
        }
        if (r < 0)
                return log_internal(level, r, "%s:%u: bad source \"%s\": %m", e->file, e->line,
                                    e->what);

        for (unsigned waited = 0;; waited += 100) {
                _cleanup_free_ char *node = NULL, *other = NULL;

                if (access(link, F_OK) == 0) {
                        *ret_device = realpath(link, NULL);
                        if (!*ret_device)
                                *ret_device = strdup(link);
                        return *ret_device ? 0 : log_oom();
                }
                r = blkid_find("/sys/class/block", "/dev", tag, value, &node, &other, NULL);
                if (r == 0) {
                        *ret_device = TAKE_PTR(node);
                        return 0;
                }
                if (r == -ENOTUNIQ)
                        return log_internal(level, r,
                                            "%s:%u: %s and %s both carry %s: not mounting "
                                            "either on %s.",
                                            e->file, e->line, node, other, e->what, e->where);
                if (r != -ENXIO)
                        return log_internal(level, r,
                                            "%s:%u: failed to look for %s in /sys/class/block: %m",
                                            e->file, e->line, e->what);
                if (waited >= DEVICE_WAIT_MSEC)
                        return log_internal(
                                level, r,
                                "%s:%u: no device carries %s (no link %s, and no ext2/3/4, xfs, "
                                "btrfs, vfat or swap superblock or GPT entry has it).",
                                e->file, e->line, e->what, link);
                if (!waiting)
                        log_info("Waiting for a device with %s...", e->what);
                waiting = true;
                sleep_msec(100);
        }
}

/* fstype "auto": try what the kernel has registered for block devices, as mount(8) and
 * busybox do without libblkid. Only loaded filesystems are listed, so name the type. */
static int mount_auto(const char *what, const char *where, unsigned long flags, const char *data) {
        _cleanup_free_ char *buf = NULL;
        size_t size, len;
        LineIter it;
        char *l;
        int r;

        r = read_file_bounded("/proc/filesystems", 64 * 1024, &buf, &size);
        if (r < 0)
                return r;
        r = -ENODEV;
        it = (LineIter){ .p = buf, .end = buf + size };
        while ((l = line_next(&it, &len))) {
                if (startswith(l, "nodev"))
                        continue;
                l = strstrip(l);
                if (*l == '\0')
                        continue;
                if (mount(what, where, l, flags, data) == 0)
                        return 0;
                r = -errno;
                if (r != -EINVAL && r != -ENODEV)
                        break;
        }
        return r;
}

static int fstab_mount_one(const BootFstabEntry *e, void *userdata) {
        _cleanup_(boot_mount_options_done) BootMountOptions o = {};
        _cleanup_free_ char *source = NULL, *device = NULL, *where = NULL;
        const unsigned long per_mount = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                        MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;
        const char *dev;
        int r;

        r = boot_mount_options_parse(e->options, &o);
        if (r < 0)
                return log_error_errno(r, "%s:%u: bad options \"%s\": %m", e->file, e->line,
                                       e->options);
        if (o.noauto || streq(e->type, "swap") || streq(e->type, "ignore") ||
            streq(e->where, "none") || streq(e->where, "swap"))
                return 0;
        if (streq(e->type, "none") && !(o.flags & MS_BIND)) {
                log_notice("%s:%u: type \"none\" without bind, ignoring.", e->file, e->line);
                return 0;
        }
        if (e->where[0] != '/' || strstr(e->where, "/../") || endswith(e->where, "/.."))
                return log_error_errno(EINVAL, "%s:%u: mount point \"%s\" is not absolute: %m",
                                       e->file, e->line, e->where);
        /* The root is mounted already, by the kernel or the initramfs. */
        if (strspn(e->where, "/") == strlen(e->where))
                return 0;

        r = boot_fstab_source(e->what, NULL, &source);
        if (r < 0)
                return log_error_errno(r, "%s:%u: bad source \"%s\": %m", e->file, e->line,
                                       e->what);

        r = mkdir_p(e->where, 0755);
        if (r < 0)
                goto fail;
        /* mountinfo has canonical paths: compare and mount the same one. */
        where = realpath(e->where, NULL);
        if (!where) {
                r = -errno;
                goto fail;
        }
        r = is_mounted(where);
        if (r > 0) {
                log_debug("%s is already mounted.", where);
                return 0;
        }

        r = fstab_find_device(e, source, o.nofail, &device);
        if (r < 0)
                return o.nofail ? 0 : r;
        dev = device ? device : source;
        if (streq(e->type, "auto") && !(o.flags & MS_BIND))
                r = mount_auto(dev, where, o.flags, o.data);
        else
                r = mount(dev, where, streq(e->type, "none") ? NULL : e->type, o.flags, o.data) < 0
                            ? -errno
                            : 0;
        if (r < 0)
                goto fail;

        /* A bind mount ignores the other flags; they need a remount of the new mount. */
        if ((o.flags & MS_BIND) && (o.flags & per_mount) &&
            mount(NULL, where, NULL, MS_REMOUNT | MS_BIND | (o.flags & per_mount), NULL) < 0) {
                r = -errno;
                goto fail;
        }
        if (o.propagation && mount(NULL, where, NULL, o.propagation, NULL) < 0) {
                r = -errno;
                goto fail;
        }
        if (device)
                log_info("Mounted %s (%s) on %s.", e->what, device, where);
        else
                log_info("Mounted %s on %s.", source, where);
        return 0;

fail:
        /* "LABEL=data (/dev/vdb)" once found, else the source as it is. */
        r = log_internal(o.nofail ? LOG_WARNING : LOG_ERR, r,
                         "%s:%u: failed to mount %s%s%s%s on %s%s: %m", e->file, e->line,
                         device ? e->what : source, device ? " (" : "", device ? device : "",
                         device ? ")" : "", e->where, o.nofail ? " (nofail)" : "");
        return o.nofail ? 0 : r;
}

int boot_mount_fstab(const char *fstab) {
        const char *path = fstab ? fstab : "/etc/fstab";
        int failures;

        failures = boot_fstab_foreach(path, fstab_mount_one, NULL);
        if (failures > 0)
                log_error("%d entr%s of %s failed.", failures, failures == 1 ? "y" : "ies", path);
        return failures;
}

/* ---- shutdown ---- */

/* Reaps whatever has exited; returns true when no child is left. */
static bool reap_all(void) {
        for (;;) {
                pid_t pid = waitpid(-1, NULL, WNOHANG);

                if (pid > 0)
                        continue;
                if (pid < 0 && errno == EINTR)
                        continue;
                return pid < 0 && errno == ECHILD;
        }
}

static bool wait_for_children(unsigned msec) {
        uint64_t deadline = now_msec() + msec;

        for (;;) {
                if (reap_all())
                        return true;
                if (now_msec() >= deadline)
                        return false;
                sleep_msec(20);
        }
}

static void unmount_all(void) {
        BootMount *m = NULL;
        size_t n = 0;
        int r;

        for (unsigned round = 0; round < UMOUNT_ROUNDS; round++) {
                bool progress = false;

                r = boot_mountinfo_read("/proc/self/mountinfo", &m, &n);
                if (r < 0) {
                        log_error_errno(r, "Failed to read mountinfo: %m");
                        break;
                }
                /* Reverse order unmounts children before their parents. */
                for (size_t i = n; i-- > 0;) {
                        if (streq(m[i].where, "/") || boot_path_is_api(m[i].where))
                                continue;
                        if (umount2(m[i].where, UMOUNT_NOFOLLOW) == 0) {
                                log_info("Unmounted %s.", m[i].where);
                                progress = true;
                        } else if (round > 0)
                                log_internal(LOG_DEBUG, errno, "Unmounting %s failed: %m",
                                             m[i].where);
                }
                boot_mounts_free(m, n);
                m = NULL;
                if (!progress)
                        break;
        }

        /* Busy or "/": read-only at least, so the filesystems are clean. */
        r = boot_mountinfo_read("/proc/self/mountinfo", &m, &n);
        if (r < 0) {
                log_error_errno(r, "Failed to read mountinfo, remounting / read-only only: %m");
                if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
                        log_error_errno(errno, "Failed to remount / read-only: %m");
                return;
        }
        for (size_t i = n; i-- > 0;) {
                if (boot_path_is_api(m[i].where) || (m[i].flags & MS_RDONLY))
                        continue;
                if (mount(NULL, m[i].where, NULL,
                          MS_REMOUNT | MS_RDONLY | (m[i].flags & ~MS_RDONLY), NULL) < 0)
                        log_error_errno(errno, "Failed to remount %s read-only: %m", m[i].where);
                else
                        log_info("Remounted %s read-only.", m[i].where);
        }
        boot_mounts_free(m, n);
}

/* The last state of PID 1: all signals blocked, orphans still reaped, never returning. */
static _Noreturn void freeze(void) {
        sigset_t all;

        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (;;) {
                if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD) {
                        struct timespec ts = { .tv_sec = 1 };
                        nanosleep(&ts, NULL);
                }
        }
}

_Noreturn void boot_final_shutdown(int rb_command, unsigned timeout_sec) {
        log_info("Sending SIGTERM to remaining processes...");
        if (kill(-1, SIGTERM) < 0 && errno != ESRCH)
                log_warning_errno(errno, "kill(-1, SIGTERM) failed: %m");
        (void) kill(-1, SIGCONT);

        if (!wait_for_children(timeout_sec * 1000U)) {
                log_info("Sending SIGKILL to remaining processes...");
                if (kill(-1, SIGKILL) < 0 && errno != ESRCH)
                        log_warning_errno(errno, "kill(-1, SIGKILL) failed: %m");
                if (!wait_for_children(KILL_REAP_MSEC))
                        log_warning("Some processes did not die (uninterruptible?), going on.");
        }

        log_info("Syncing filesystems...");
        sync();
        log_info("Unmounting filesystems...");
        unmount_all();
        sync();

        log_info("%s.", rb_command == (int) RB_POWER_OFF     ? "Powering off"
                        : rb_command == (int) RB_HALT_SYSTEM ? "Halting"
                        : rb_command == (int) RB_KEXEC       ? "Rebooting with kexec"
                                                             : "Rebooting");
        reboot(rb_command);
        log_error_errno(errno, "reboot() failed, freezing: %m");
        freeze();
}

/* ---- crash handler ---- */

static int crash_kmsg_fd = -1;
static pid_t crash_pid;
static bool crash_reboot;
static unsigned crash_reboot_delay;
static volatile sig_atomic_t crashing;
/* A stack overflow can only be handled on another stack. */
static char crash_stack[64 * 1024] __attribute__((aligned(16)));

static const char *signal_abbrev(int sig) {
        switch (sig) {
        case SIGSEGV:
                return "SIGSEGV";
        case SIGBUS:
                return "SIGBUS";
        case SIGABRT:
                return "SIGABRT";
        case SIGILL:
                return "SIGILL";
        case SIGFPE:
                return "SIGFPE";
        default:
                return "signal";
        }
}

/* Async-signal-safe message building: no stdio in the handler. */
typedef struct CrashMsg {
        char buf[256];
        size_t n;
} CrashMsg;

static void msg_add(CrashMsg *m, const char *s) {
        while (*s && m->n < sizeof(m->buf))
                m->buf[m->n++] = *s++;
}

static void msg_add_uint(CrashMsg *m, unsigned v) {
        char tmp[12];
        size_t k = 0;

        do
                tmp[k++] = (char) ('0' + v % 10);
        while ((v /= 10) > 0);
        while (k > 0 && m->n < sizeof(m->buf))
                m->buf[m->n++] = tmp[--k];
}

static void crash_say(int sig, const char *what, unsigned num) {
        CrashMsg m = { .n = 0 };

        msg_add(&m, "<2>vigil: caught ");
        msg_add(&m, signal_abbrev(sig));
        msg_add(&m, " (");
        msg_add_uint(&m, (unsigned) sig);
        msg_add(&m, "), ");
        msg_add(&m, what);
        if (num > 0) {
                msg_add_uint(&m, num);
                msg_add(&m, " s");
        }
        msg_add(&m, ".\n");

        /* stderr without the kernel log's "<2>" priority prefix */
        (void) !write(STDERR_FILENO, m.buf + 3, m.n - 3);
        if (crash_kmsg_fd >= 0)
                (void) !write(crash_kmsg_fd, m.buf, m.n);
}

static void crash_handler(int sig) {
        pid_t pid;

        /* A forked child that crashes before exec() must just die, not freeze or reboot. */
        if (getpid() != crash_pid) {
                struct sigaction sa = { .sa_handler = SIG_DFL };
                sigset_t s;

                sigaction(sig, &sa, NULL);
                sigemptyset(&s);
                sigaddset(&s, sig);
                sigprocmask(SIG_UNBLOCK, &s, NULL);
                raise(sig);
                _exit(128 + sig);
        }

        /* SA_NODEFER lets a fault inside this handler land here again instead of
         * killing PID 1; the second time only freezes. */
        if (crashing)
                freeze();
        crashing = 1;

        /* A child with the default action dumps core with our memory; we stay alive. */
        pid = _Fork();
        if (pid == 0) {
                struct sigaction sa = { .sa_handler = SIG_DFL };
                struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
                sigset_t s;

                sigaction(sig, &sa, NULL);
                (void) setrlimit(RLIMIT_CORE, &rl);
                sigemptyset(&s);
                sigaddset(&s, sig);
                sigprocmask(SIG_UNBLOCK, &s, NULL);
                raise(sig);
                _exit(EXIT_FAILURE);
        }
        if (pid > 0) {
                int status = 0;

                /* bounded: a core_pattern pipe helper must not keep us from rebooting */
                for (unsigned waited = 0; waited < 10000; waited += 50) {
                        pid_t k = waitpid(pid, &status, WNOHANG);

                        if (k == pid || (k < 0 && errno != EINTR))
                                break;
                        sleep_msec(50);
                }
                crash_say(sig,
                          WIFSIGNALED(status) && WCOREDUMP(status) ? "core dumped" : "no core dump",
                          0);
        }

        sync();
        if (crash_reboot) {
                sigset_t all;

                if (crash_reboot_delay > 0)
                        crash_say(sig, "rebooting in ", crash_reboot_delay);
                else
                        crash_say(sig, "rebooting", 0);
                sigfillset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                sleep_msec(crash_reboot_delay * 1000U);
                reboot(RB_AUTOBOOT);
        }
        crash_say(sig, "freezing", 0);
        freeze();
}

void boot_install_crash_handler(bool reboot_on_crash, unsigned reboot_delay_sec) {
        static const int sigs[] = { SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE };
        struct sigaction sa = {
                .sa_handler = crash_handler,
                .sa_flags = SA_NODEFER | SA_ONSTACK,
        };
        stack_t ss = { .ss_sp = crash_stack, .ss_size = sizeof(crash_stack) };
        sigset_t unblock;

        crash_pid = getpid();
        crash_reboot = reboot_on_crash;
        crash_reboot_delay = reboot_delay_sec;
        /* Opened now: the handler cannot open files safely. Idempotent, so calling again
         * once /dev is mounted picks up the kernel log. */
        if (crash_kmsg_fd < 0)
                crash_kmsg_fd = open("/dev/kmsg", O_WRONLY | O_NOCTTY | O_CLOEXEC);

        if (sigaltstack(&ss, NULL) < 0)
                log_warning_errno(errno, "Failed to set up the crash handler's stack: %m");
        sigemptyset(&sa.sa_mask);
        sigemptyset(&unblock);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                if (sigaction(sigs[i], &sa, NULL) < 0)
                        log_warning_errno(errno, "Failed to install the crash handler for %s: %m",
                                          signal_abbrev(sigs[i]));
                sigaddset(&unblock, sigs[i]);
        }
        /* The kernel delivers a blocked fault signal with the default action, which kills
         * PID 1 and panics the machine: these must stay unblocked. */
        if (sigprocmask(SIG_UNBLOCK, &unblock, NULL) < 0)
                log_warning_errno(errno, "Failed to unblock the crash signals: %m");
}
