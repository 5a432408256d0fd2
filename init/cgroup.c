/* cgroup v2 bookkeeping: one leaf per service to know and kill all of its processes. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include "cgroup.h"
#include "lexer.h"
#include "log.h"

#define CGROUP_FILE_MAX (64 * 1024)

/* The mount point of the first cgroup2 hierarchy in /proc/self/mountinfo. */
static int find_cgroup2_mount(char **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char line[4096];

        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char root[1024], point[1024], *sep;

                /* "ID PARENT MAJ:MIN ROOT POINT OPTS ... - FSTYPE SOURCE SUPER" */
                sep = strstr(line, " - ");
                if (!sep || !startswith(sep + 3, "cgroup2 "))
                        continue;
                if (sscanf(line, "%*s %*s %*s %1023s %1023s", root, point) != 2)
                        continue;
                if (!streq(root, "/") || strchr(point, '\\')) /* an escaped path: skip */
                        continue;
                *ret = strdup(point);
                return *ret ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

/* Our own cgroup path from the "0::" line of /proc/self/cgroup. */
static int own_cgroup_path(char **ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char line[4096];

        f = fopen("/proc/self/cgroup", "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                const char *p = startswith(line, "0::");

                if (!p)
                        continue;
                line[strcspn(line, "\n")] = 0;
                *ret = strdup(p);
                return *ret ? 0 : -ENOMEM;
        }
        return -ENOENT;
}

static int write_file_at(int dir_fd, const char *name, const char *value) {
        _cleanup_close_ int fd = -1;
        size_t n = strlen(value);

        fd = openat(dir_fd, name, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (write(fd, value, n) != (ssize_t) n)
                return errno > 0 ? -errno : -EIO;
        return 0;
}

static int read_file_at(int dir_fd, const char *name, char *buf, size_t size) {
        _cleanup_close_ int fd = -1;
        ssize_t n;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        return (int) n;
}

/* Where vigil's subtree goes: "vigil" below the hierarchy's root for the real PID 1,
 * "vigil-sandbox.HOSTPID" next to ourselves for a sandbox. */
static int vigil_cgroup_path(pid_t sandbox_id, char **ret) {
        _cleanup_free_ char *mnt = NULL, *own = NULL;
        int r;

        r = find_cgroup2_mount(&mnt);
        if (r >= 0)
                r = own_cgroup_path(&own);
        if (r < 0)
                return r;
        if (sandbox_id > 0)
                r = asprintf_safe(ret, "%s%s/vigil-sandbox.%ld", mnt, streq(own, "/") ? "" : own,
                                  (long) sandbox_id);
        else
                r = asprintf_safe(ret, "%s/vigil", mnt);
        return r < 0 ? -ENOMEM : 0;
}

int cgroup_setup(manager *m) {
        _cleanup_free_ char *path = NULL;
        int r;

        m->cgroup_root_fd = -1;
        r = vigil_cgroup_path(m->settings.sandbox ? m->settings.sandbox_id : 0, &path);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0) {
                log_warning("No cgroup v2 hierarchy: services are tracked by process group, and "
                            "a process that leaves its group escapes KillMode=control-group.");
                return 0;
        }
        if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                log_warning_errno(errno,
                                  "Cannot create cgroup %s, tracking services by process "
                                  "group: %m",
                                  path);
                return 0;
        }
        m->cgroup_root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (m->cgroup_root_fd < 0) {
                log_warning_errno(errno, "Cannot open cgroup %s: %m", path);
                return 0;
        }
        m->cgroup_root = TAKE_PTR(path);
        log_info("Services run in cgroups below %s.", m->cgroup_root);
        return 0;
}

void cgroup_teardown(manager *m) {
        if (m->cgroup_root_fd >= 0)
                close(m->cgroup_root_fd);
        m->cgroup_root_fd = -1;
        if (m->cgroup_root && m->settings.sandbox && rmdir(m->cgroup_root) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Cannot remove cgroup %s: %m", m->cgroup_root);
        m->cgroup_root = mfree(m->cgroup_root);
}

static int on_cgroup_events(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        service *s = userdata;

        /* The event stays pending until the watched fd is read again: read it even when
         * no stop waits for the answer, or the loop would spin. */
        if (cgroup_service_populated(s) == 0)
                service_cgroup_event(s);
        return 0;
}

char *cgroup_sandbox_path(pid_t sandbox_id) {
        char *path = NULL;

        return vigil_cgroup_path(sandbox_id, &path) < 0 ? NULL : path;
}

void cgroup_sandbox_remove(const char *path) {
        struct dirent *de;
        DIR *d;

        if (!path)
                return;
        d = opendir(path);
        if (!d)
                return;
        /* The sandbox's PID 1 is gone, and with it every process of its namespace; their
         * cgroups may take a moment to become empty. */
        while ((de = readdir(d)))
                if (de->d_type == DT_DIR && de->d_name[0] != '.')
                        for (int i = 0; i < 100; i++) {
                                if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0 ||
                                    errno != EBUSY)
                                        break;
                                usleep(10 * 1000);
                        }
        closedir(d);
        for (int i = 0; i < 100 && rmdir(path) < 0 && errno == EBUSY; i++)
                usleep(10 * 1000);
}

int cgroup_service_create(service *s) {
        manager *m = s->manager;
        _cleanup_close_ int fd = -1, events = -1;
        int r;

        if (m->cgroup_root_fd < 0)
                return 0;
        if (mkdirat(m->cgroup_root_fd, s->name, 0755) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(m->cgroup_root_fd, s->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        events = openat(fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
        if (events < 0)
                return -errno;
        /* cgroup.events signals a change with EPOLLPRI. */
        r = sd_event_add_io(m->event, &s->events_source, events, EPOLLPRI, on_cgroup_events, s);
        if (r < 0)
                return r;
        s->cgroup_fd = TAKE_FD(fd);
        s->events_fd = TAKE_FD(events);
        return 0;
}

void cgroup_service_remove(service *s) {
        s->events_source = sd_event_source_disable_unref(s->events_source);
        if (s->events_fd >= 0)
                close(s->events_fd);
        if (s->cgroup_fd >= 0)
                close(s->cgroup_fd);
        s->events_fd = s->cgroup_fd = -1;
        if (s->manager->cgroup_root_fd >= 0 &&
            unlinkat(s->manager->cgroup_root_fd, s->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                log_warning_errno(errno, "%s: cannot remove its cgroup: %m", s->name);
}

int cgroup_service_kill(service *s, int sig) {
        char buf[CGROUP_FILE_MAX];
        char *p, *e;
        int r, first = 0;

        if (s->cgroup_fd < 0)
                return -EBADF;
        /* cgroup.kill (Linux 5.14) kills everything at once, including new forks. */
        if (sig == SIGKILL && write_file_at(s->cgroup_fd, "cgroup.kill", "1") >= 0)
                return 0;
        r = read_file_at(s->cgroup_fd, "cgroup.procs", buf, sizeof(buf));
        if (r < 0)
                return r;
        for (p = buf; *p; p = e) {
                long pid = strtol(p, &e, 10);

                if (e == p)
                        break;
                while (*e == '\n')
                        e++;
                if (pid > 1 && kill((pid_t) pid, sig) < 0 && errno != ESRCH && first == 0)
                        first = -errno;
        }
        return first;
}

int cgroup_service_populated(service *s) {
        char buf[256];
        const char *p;
        ssize_t n;

        if (s->events_fd < 0)
                return -EBADF;
        /* Reading through the watched fd also clears its pending EPOLLPRI. */
        n = pread(s->events_fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        p = strstr(buf, "populated ");
        if (!p)
                return -EBADMSG;
        return p[10] == '1';
}
