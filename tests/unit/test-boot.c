/* Unit tests for init/boot.c: the parsers on fixture files, and the parts that touch the kernel
 * only inside forked children that unshared their own UTS, network or mount namespace. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "boot.h"
#include "log.h"
#include "tap.h"

static const char *fixtures;

static const char *fixture(const char *name) {
        static char bufs[4][PATH_MAX];
        static unsigned next;
        char *b = bufs[next++ % 4];

        snprintf(b, PATH_MAX, "%s/%s", fixtures, name);
        return b;
}

static void find_fixtures(void) {
        static const char *const tries[] = { "boot", "tests/unit/boot", "../tests/unit/boot" };

        fixtures = getenv("BOOT_FIXTURES");
        for (size_t i = 0; !fixtures && i < ELEMENTSOF(tries); i++)
                if (access(tries[i], F_OK) == 0)
                        fixtures = tries[i];
        if (!fixtures) {
                printf("1..0 # SKIP fixtures not found (set BOOT_FIXTURES)\n");
                exit(77);
        }
}

static void skip(const char *what, const char *why) {
        tap_ok(1, "%s # SKIP %s", what, why);
}

/* ---- hostname ---- */

static void test_hostname_valid(void) {
        static const struct {
                const char *s;
                bool valid;
        } cases[] = {
                { "vigil", true },
                { "appliance-01.example.com", true },
                { "a", true },
                { "0", true },
                { "a-", true },
                { "", false },
                { "-a", false },
                { ".a", false },
                { "a.", false },
                { "a..b", false },
                { "Game", false },
                { "game_server", false },
                { "game server", false },
                { "game\n", false },
                { "héllo", false },
                { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true },
                { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                tap_inteq(boot_hostname_is_valid(cases[i].s), cases[i].valid,
                          "hostname valid: case %zu (%zu chars)", i, strlen(cases[i].s));
}

static void test_hostname_read(void) {
        char name[BOOT_HOSTNAME_MAX + 1] = "";

        tap_inteq(boot_hostname_read(fixture("hostname-ok"), name), 0,
                  "hostname: comments and blanks skipped");
        tap_streq(name, "appliance-01.example", "hostname: first real line, trimmed");
        tap_inteq(boot_hostname_read(fixture("hostname-bad"), name), -EINVAL,
                  "hostname: uppercase/underscore rejected");
        tap_inteq(boot_hostname_read(fixture("hostname-long"), name), -EINVAL,
                  "hostname: 65 chars rejected");
        tap_inteq(boot_hostname_read(fixture("hostname-empty"), name), -ENODATA,
                  "hostname: only comments gives ENODATA");
        tap_inteq(boot_hostname_read(fixture("no-such-file"), name), -ENOENT,
                  "hostname: missing file gives ENOENT");
        tap_inteq(boot_hostname_read(fixtures, name), -EISDIR, "hostname: directory refused");
        tap_inteq(boot_hostname_read("/dev/null", name), -EBADFD,
                  "hostname: non-regular file refused");
}

/* ---- modules ---- */

typedef struct Recorded {
        char text[2048];
        int fail_on_line; /* make the callback fail for this line number, 0 for never */
} Recorded;

static int record_module(const char *module, const char *file, unsigned line, void *userdata) {
        Recorded *rec = userdata;
        const char *base = strrchr(file, '/');
        size_t n = strlen(rec->text);

        snprintf(rec->text + n, sizeof(rec->text) - n, "%s%s:%u:%s", n ? " " : "",
                 base ? base + 1 : file, line, module);
        return (int) line == rec->fail_on_line ? -EIO : 0;
}

static void test_modules_fixture(void) {
        Recorded rec = {};
        int r;

        r = boot_modules_foreach(fixture("modules-load.d"), record_module, &rec);
        tap_streq(rec.text,
                  "05-first.conf:1:overlay 10-net.conf:2:virtio_net 10-net.conf:4:veth "
                  "10-net.conf:6:tun 10-net.conf:9:net-pf-10 9-late.conf:1:loop "
                  "9-late.conf:2:squashfs",
                  "modules: lexical file order, comments/blanks/hidden/masked/other files skipped");
        tap_inteq(r, 2, "modules: two bad names counted");

        memset(&rec, 0, sizeof(rec));
        rec.fail_on_line = 4;
        r = boot_modules_foreach(fixture("modules-load.d"), record_module, &rec);
        tap_inteq(r, 3, "modules: a failing load is counted too");

        memset(&rec, 0, sizeof(rec));
        tap_inteq(boot_modules_foreach(fixture("no-such-dir"), record_module, &rec), 0,
                  "modules: missing directory is no failure");
        tap_streq(rec.text, "", "modules: missing directory loads nothing");
}

static int write_file(const char *path, const char *data, size_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ssize_t k;

        if (fd < 0)
                return -errno;
        k = write(fd, data, size);
        close(fd);
        return k == (ssize_t) size ? 0 : -EIO;
}

static void test_modules_limits(const char *tmp) {
        char dir[PATH_MAX / 2], path[PATH_MAX];
        Recorded rec = {};
        char *big;
        size_t n;
        int r;

        snprintf(dir, sizeof(dir), "%s/modules", tmp);
        mkdir(dir, 0755);

        /* a 10000-byte line between two good ones, and a line with a NUL */
        big = malloc(2 * 1024 * 1024 + 64);
        if (!big)
                abort();
        n = (size_t) snprintf(big, 16, "first\n");
        memset(big + n, 'x', 10000);
        n += 10000;
        memcpy(big + n, "\nsec\0nd\nthird\n", 14);
        n += 14;
        snprintf(path, sizeof(path), "%s/a.conf", dir);
        write_file(path, big, n);

        /* more than the 1 MiB a config file may have */
        memset(big, 'y', 2 * 1024 * 1024);
        snprintf(path, sizeof(path), "%s/b.conf", dir);
        write_file(path, big, 2 * 1024 * 1024);

        /* a name longer than any module or alias */
        memset(big, 'z', 200);
        big[200] = '\n';
        snprintf(path, sizeof(path), "%s/c.conf", dir);
        write_file(path, big, 201);
        free(big);

        r = boot_modules_foreach(dir, record_module, &rec);
        tap_streq(rec.text, "a.conf:1:first a.conf:4:third",
                  "modules limits: good lines around huge and NUL lines still load");
        tap_inteq(r, 4, "modules limits: huge line, NUL line, huge file, long name are failures");
}

/* libkmod end to end with a name no kernel has: looked up, never inserted. */
static void test_modules_kmod(const char *tmp) {
        char dir[PATH_MAX / 2], path[PATH_MAX];

        snprintf(dir, sizeof(dir), "%s/kmod", tmp);
        mkdir(dir, 0755);
        snprintf(path, sizeof(path), "%s/x.conf", dir);
        const char *text = "# nothing real\nvigil_test_no_such_module_4711\n";
        write_file(path, text, strlen(text));
        tap_inteq(boot_load_modules(dir), 1, "modules: an unknown module fails through libkmod");
        tap_inteq(boot_load_modules(fixture("no-such-dir")), 0,
                  "modules: no directory, nothing to load");
}

/* ---- mount options ---- */

static void test_mount_options(void) {
        static const struct {
                const char *options;
                unsigned long flags, propagation;
                const char *data;
                bool noauto, nofail;
        } cases[] = {
                { "defaults", 0, 0, NULL, false, false },
                { "", 0, 0, NULL, false, false },
                { "ro", MS_RDONLY, 0, NULL, false, false },
                { "ro,rw", 0, 0, NULL, false, false },
                { "rw,ro", MS_RDONLY, 0, NULL, false, false },
                { "nosuid,nodev,noexec", MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, NULL, false, false },
                { "nosuid,suid", 0, 0, NULL, false, false },
                { "relatime,noatime,nodiratime", MS_RELATIME | MS_NOATIME | MS_NODIRATIME, 0, NULL,
                  false, false },
                { "sync,dirsync", MS_SYNCHRONOUS | MS_DIRSYNC, 0, NULL, false, false },
                { "sync,async", 0, 0, NULL, false, false },
                { "strictatime,lazytime", MS_STRICTATIME | MS_LAZYTIME, 0, NULL, false, false },
                { "bind", MS_BIND, 0, NULL, false, false },
                { "rbind,ro", MS_BIND | MS_REC | MS_RDONLY, 0, NULL, false, false },
                { "bind,rshared", MS_BIND, MS_SHARED | MS_REC, NULL, false, false },
                { "private", 0, MS_PRIVATE, NULL, false, false },
                { "defaults,size=64m,mode=1777", 0, 0, "size=64m,mode=1777", false, false },
                { "noatime,x-systemd.device-timeout=5s,commit=30,X-mount.mkdir", MS_NOATIME, 0,
                  "commit=30", false, false },
                { "nofail,noauto,user,nouser,users,owner,group,_netdev,comment=hi", 0, 0, NULL,
                  true, true },
                { "noauto,auto", 0, 0, NULL, false, false },
                { ",,ro,,errors=remount-ro,", MS_RDONLY, 0, "errors=remount-ro", false, false },
                { "context=\"system_u:object_r:tmp_t:s0:c127,c456\",ro", MS_RDONLY, 0,
                  "context=\"system_u:object_r:tmp_t:s0:c127,c456\"", false, false },
                { "loop", 0, 0, "loop", false, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                BootMountOptions o = {};
                int r = boot_mount_options_parse(cases[i].options, &o);

                tap_ok(r == 0 && o.flags == cases[i].flags &&
                               o.propagation == cases[i].propagation &&
                               o.noauto == cases[i].noauto && o.nofail == cases[i].nofail,
                       "options \"%s\": flags 0x%lx prop 0x%lx noauto %d nofail %d",
                       cases[i].options, o.flags, o.propagation, o.noauto, o.nofail);
                tap_streq(o.data, cases[i].data, "options \"%s\": data", cases[i].options);
                boot_mount_options_done(&o);
        }

        BootMountOptions o = {};
        tap_inteq(boot_mount_options_parse("context=\"a,b", &o), -EINVAL,
                  "options: unterminated quote rejected");
        boot_mount_options_done(&o);
}

/* ---- fstab sources ---- */

static void test_fstab_source(void) {
        static const struct {
                const char *what, *want;
                int r;
        } cases[] = {
                { "/dev/vdb", "/dev/vdb", 0 },
                { "tmpfs", "tmpfs", 0 },
                { "UUID=1234-ABCD", "@/by-uuid/1234-ABCD", 0 },
                { "UUID=\"1234-ABCD\"", "@/by-uuid/1234-ABCD", 0 },
                { "LABEL=my data", "@/by-label/my\\x20data", 0 },
                { "LABEL=a/b", "@/by-label/a\\x2fb", 0 },
                { "LABEL=back\\slash", "@/by-label/back\\x5cslash", 0 },
                { "PARTUUID=0fc63daf-8483", "@/by-partuuid/0fc63daf-8483", 0 },
                { "PARTLABEL=data", "@/by-partlabel/data", 0 },
                { "LABEL=..", NULL, -EINVAL },
                { "LABEL=", NULL, -EINVAL },
                { "UUID=\"\"", NULL, -EINVAL },
        };
        const char *disk = fixture("disk");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *got = NULL, want[PATH_MAX];
                int r = boot_fstab_source(cases[i].what, disk, &got);

                tap_inteq(r, cases[i].r, "source \"%s\": result", cases[i].what);
                if (cases[i].want && cases[i].want[0] == '@')
                        snprintf(want, sizeof(want), "%s%s", disk, cases[i].want + 1);
                else
                        snprintf(want, sizeof(want), "%s", cases[i].want ? cases[i].want : "");
                if (r == 0)
                        tap_streq(got, want, "source \"%s\": path", cases[i].what);
                free(got);
        }

        /* The paths the fixtures hold resolve to files that exist there. */
        static const char *const present[] = { "UUID=1234-ABCD", "LABEL=my data" };
        for (size_t i = 0; i < ELEMENTSOF(present); i++) {
                char *got = NULL;

                boot_fstab_source(present[i], disk, &got);
                tap_ok(got && access(got, F_OK) == 0, "source \"%s\" found in the fake disk dir",
                       present[i]);
                free(got);
        }

        char *dflt = NULL;
        boot_fstab_source("UUID=x", NULL, &dflt);
        tap_streq(dflt, "/dev/disk/by-uuid/x", "source: default directory is /dev/disk");
        free(dflt);
}

/* ---- fstab parsing ---- */

static int record_fstab(const BootFstabEntry *e, void *userdata) {
        Recorded *rec = userdata;
        size_t n = strlen(rec->text);

        snprintf(rec->text + n, sizeof(rec->text) - n, "%u|%s|%s|%s|%s\n", e->line, e->what,
                 e->where, e->type, e->options);
        return 0;
}

static void test_fstab_parse(void) {
        Recorded rec = {};
        int r;

        r = boot_fstab_foreach(fixture("fstab"), record_fstab, &rec);
        tap_streq(rec.text,
                  "2|/dev/vda|/|squashfs|ro\n"
                  "3|UUID=1234-ABCD|/var/lib/vigil|ext4|defaults,noatime,x-systemd.device-timeout="
                  "5s,nofail\n"
                  "4|LABEL=my data|/srv/game data|ext4|rw,nosuid,nodev,commit=30\n"
                  "6|tmpfs|/var/tmp|tmpfs|mode=1777,size=64m,comment=test\n"
                  "7|/dev/vdb|none|swap|sw\n"
                  "8|/var/lib/vigil/logs|/var/log/vigil|none|bind,ro\n"
                  "9|proc-only-two-fields|/mnt|auto|defaults\n"
                  "12|/dev/vdc|/mnt/cdrom|auto|noauto,user,ro\n",
                  "fstab: entries, \\040 unescaped, defaults filled in");
        tap_inteq(r, 2, "fstab: one-field and seven-field lines are failures");
        tap_inteq(boot_fstab_foreach(fixture("no-such-fstab"), record_fstab, &rec), 0,
                  "fstab: a missing file is no failure");
}

/* ---- mountinfo ---- */

static void test_mountinfo(void) {
        BootMount *m = NULL;
        size_t n = 0;
        int r;

        r = boot_mountinfo_read(fixture("mountinfo"), &m, &n);
        tap_inteq(r, 0, "mountinfo: parsed");
        tap_inteq(n, 10, "mountinfo: ten mounts");
        if (r < 0 || n != 10)
                return;
        tap_streq(m[0].where, "/", "mountinfo: root first");
        tap_streq(m[0].type, "squashfs", "mountinfo: type after the separator");
        tap_inteq(m[1].flags, MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME,
                  "mountinfo: per-mount flags of /proc");
        tap_streq(m[7].where, "/var/lib/vigil", "mountinfo: two optional fields skipped");
        tap_streq(m[7].source, "/dev/vdb", "mountinfo: source");
        tap_streq(m[8].where, "/var/lib/vigil/images/game server", "mountinfo: \\040 unescaped");
        tap_inteq(m[8].flags, MS_RDONLY | MS_NODEV | MS_RELATIME, "mountinfo: ro flags");
        tap_streq(m[9].source, "tmp\\fs", "mountinfo: \\134 unescaped");
        boot_mounts_free(m, n);

        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/bad-mountinfo", getenv("TEST_TMP"));
        write_file(path, "22 1 0:21 / / rw shared:1 squashfs /dev/vda ro\n", 47);
        tap_inteq(boot_mountinfo_read(path, &m, &n), -EBADMSG,
                  "mountinfo: a line without the separator is refused");

        /* not necessarily in mount order: "/" need not come first */
        r = boot_mountinfo_read("/proc/self/mountinfo", &m, &n);
        bool root = false;
        for (size_t i = 0; r == 0 && i < n; i++)
                root = root || streq(m[i].where, "/");
        tap_ok(r == 0 && root, "mountinfo: this process's own table parses and has /");
        if (r == 0)
                boot_mounts_free(m, n);
}

static void test_path_is_api(void) {
        static const struct {
                const char *p;
                bool api;
        } cases[] = {
                { "/proc", true },    { "/proc/sys/fs/binfmt_misc", true },
                { "/sys", true },     { "/sys/fs/cgroup", true },
                { "/dev", true },     { "/dev/pts", true },
                { "/dev/shm", true }, { "/devices", false },
                { "/", false },       { "/run", false },
                { "/tmp", false },    { "/var/lib/vigil", false },
                { "/procfs", false }, { "/system", false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                tap_inteq(boot_path_is_api(cases[i].p), cases[i].api, "api path: %s", cases[i].p);
}

/* ---- in namespaces of their own ---- */

static bool ns_differs(const char *ns, pid_t parent) {
        char a[64], b[64];
        struct stat sa, sb;

        snprintf(a, sizeof(a), "/proc/%d/ns/%s", (int) parent, ns);
        snprintf(b, sizeof(b), "/proc/self/ns/%s", ns);
        return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino != sb.st_ino;
}

/* Runs fn in a child that unshared flags and proved it; 77 from the child means skip. */
static int in_namespace(int flags, const char *ns, int (*fn)(void *), void *arg) {
        pid_t parent = getpid(), pid;
        int status;

        fflush(stdout);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                if (unshare(flags) < 0)
                        _exit(77);
                if (!ns_differs(ns, parent))
                        _exit(78); /* never touch the host's */
                _exit(fn(arg));
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int child_hostname(void *arg) {
        struct utsname u;

        if (boot_set_hostname(arg) < 0 || uname(&u) < 0)
                return 1;
        return streq(u.nodename, "appliance-01.example") ? 0 : 2;
}

static int child_hostname_fallback(void *arg) {
        struct utsname u;

        if (boot_set_hostname(arg) < 0 || uname(&u) < 0)
                return 1;
        return streq(u.nodename, "vigil") ? 0 : 2;
}

static int child_loopback(void *arg) {
        struct ifreq ifr = {};
        int fd;

        if (boot_loopback_up() < 0 || boot_loopback_up() < 0) /* twice: idempotent */
                return 1;
        fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0 || !(ifr.ifr_flags & IFF_UP))
                return 2;
        if (ioctl(fd, SIOCGIFADDR, &ifr) < 0 ||
            ((struct sockaddr_in *) &ifr.ifr_addr)->sin_addr.s_addr != htonl(INADDR_LOOPBACK))
                return 3;
        close(fd);

        /* ::1 answers a connect on a datagram socket only when it is configured */
        struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6,
                                    .sin6_port = htons(9),
                                    .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *) &sa6, sizeof(sa6)) < 0)
                return 4;
        return 0;
}

static int count_mounts(const char *where) {
        BootMount *m = NULL;
        size_t n = 0;
        int c = 0;

        if (boot_mountinfo_read("/proc/self/mountinfo", &m, &n) < 0)
                return -1;
        for (size_t i = 0; i < n; i++)
                c += streq(m[i].where, where);
        boot_mounts_free(m, n);
        return c;
}

static int child_fstab(void *arg) {
        const char *tmp = arg;
        char fstab[PATH_MAX], text[4096], a[PATH_MAX], b[PATH_MAX], e[PATH_MAX];
        struct statvfs sa, sb;
        int n;

        /* Without this, mounts would propagate back to the host's peer group. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return 77;

        snprintf(a, sizeof(a), "%s/mnt/a", tmp);
        snprintf(b, sizeof(b), "%s/mnt/b/", tmp); /* trailing slash: canonicalized */
        snprintf(e, sizeof(e), "%s/mnt/e", tmp);
        snprintf(fstab, sizeof(fstab), "%s/fstab", tmp);
        n = snprintf(text, sizeof(text),
                     "# test\n"
                     "tmpfs %s tmpfs nosuid,nodev,size=1m,x-test=1 0 0\n"
                     "%s %s none bind,ro 0 0\n"
                     "/nonexistent %s/mnt/c ext4 nofail 0 0\n"
                     "/nonexistent %s/mnt/d ext4 defaults 0 0\n"
                     "tmpfs %s tmpfs noauto 0 0\n",
                     a, a, b, tmp, tmp, e);
        if (write_file(fstab, text, (size_t) n) < 0)
                return 10;

        if (boot_mount_fstab(fstab) != 1)
                return 11;
        b[strlen(b) - 1] = '\0';
        if (statvfs(a, &sa) < 0 || statvfs(b, &sb) < 0)
                return 12;
        if (!(sa.f_flag & ST_NOSUID) || !(sa.f_flag & ST_NODEV) || (sa.f_flag & ST_RDONLY))
                return 13;
        if (sa.f_blocks * sa.f_frsize > 1024 * 1024)
                return 14; /* size=1m reached the filesystem */
        if (!(sb.f_flag & ST_RDONLY))
                return 15; /* the bind mount was remounted read-only */
        if (access(e, F_OK) == 0)
                return 16; /* noauto: not even created */

        /* again: what is mounted stays as it is, the broken entry still counts */
        if (boot_mount_fstab(fstab) != 1)
                return 17;
        if (count_mounts(a) != 1 || count_mounts(b) != 1)
                return 18;
        return 0;
}

/* The crash handler in a child: it must neither die nor return, and must say why. The child
 * is not dumpable (no core file) and sees an empty /dev (no line in the host's kernel log). */
static void test_crash_handler(void) {
        char buf[512] = "";
        size_t n = 0;
        int fds[2], status;
        bool alive;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                abort();
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
                pid_t parent = getppid();

                if (unshare(CLONE_NEWNS) < 0 || !ns_differs("mnt", parent) ||
                    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
                    mount("tmpfs", "/dev", "tmpfs", 0, NULL) < 0)
                        _exit(77);
                prctl(PR_SET_DUMPABLE, 0);
                dup2(fds[1], STDERR_FILENO);
                boot_install_crash_handler(false, 0);
                raise(SIGABRT);
                _exit(99); /* the handler returned: wrong */
        }
        close(fds[1]);
        /* wait for "freezing", at most 10 s */
        fcntl(fds[0], F_SETFL, O_NONBLOCK);
        for (int i = 0; i < 1000 && !strstr(buf, "freezing"); i++) {
                ssize_t k = read(fds[0], buf + n, sizeof(buf) - 1 - n);

                if (k > 0) {
                        n += (size_t) k;
                        buf[n] = '\0';
                } else if (k == 0)
                        break;
                else
                        nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
        }
        close(fds[0]);
        alive = waitpid(pid, &status, WNOHANG) == 0;
        if (alive) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
        } else if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
                skip("crash handler", "could not hide /dev/kmsg");
                return;
        }
        tap_ok(alive, "crash handler: the crashed process is still there, frozen");
        tap_ok(strstr(buf, "caught SIGABRT (6), no core dump.") != NULL,
               "crash handler: reports the signal and the core child");
        tap_ok(strstr(buf, "caught SIGABRT (6), freezing.") != NULL,
               "crash handler: reports freezing");
}

static void test_namespaced(const char *tmp) {
        int r;

        if (geteuid() != 0) {
                skip("hostname in a UTS namespace", "not root");
                skip("loopback in a network namespace", "not root");
                skip("fstab in a mount namespace", "not root");
                return;
        }

        r = in_namespace(CLONE_NEWUTS, "uts", child_hostname, (void *) fixture("hostname-ok"));
        if (r == 77)
                skip("hostname in a UTS namespace", "unshare failed");
        else
                tap_inteq(r, 0, "hostname set from the file in a private UTS namespace");
        r = in_namespace(CLONE_NEWUTS, "uts", child_hostname_fallback,
                         (void *) fixture("hostname-bad"));
        if (r != 77)
                tap_inteq(r, 0, "hostname falls back to \"vigil\" on an invalid name");

        r = in_namespace(CLONE_NEWNET, "net", child_loopback, NULL);
        if (r == 77)
                skip("loopback in a network namespace", "unshare failed");
        else
                tap_inteq(r, 0, "lo up with 127.0.0.1 and ::1 in a private network namespace");

        r = in_namespace(CLONE_NEWNS, "mnt", child_fstab, (void *) tmp);
        if (r == 77)
                skip("fstab in a mount namespace", "unshare or making / private failed");
        else
                tap_inteq(r, 0,
                          "fstab mounted, bind ro, nofail, noauto, already-mounted skipped "
                          "(private mount namespace)");

        test_crash_handler();
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

int main(void) {
        char tmp[] = "/tmp/test-boot.XXXXXX";

        find_fixtures();
        log_set_max_level(LOG_DEBUG);
        if (!mkdtemp(tmp))
                return 1;
        setenv("TEST_TMP", tmp, 1);

        test_hostname_valid();
        test_hostname_read();
        test_modules_fixture();
        test_modules_limits(tmp);
        test_modules_kmod(tmp);
        test_mount_options();
        test_fstab_source();
        test_fstab_parse();
        test_mountinfo();
        test_path_is_api();
        test_namespaced(tmp);

        if (nftw(tmp, remove_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
                printf("# failed to remove %s\n", tmp);
        return tap_done();
}
