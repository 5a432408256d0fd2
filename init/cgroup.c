/* cgroup v2: vigil's subtree, one leaf per service, its controllers and limits. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>

#include "cgroup.h"
#include "lexer.h"
#include "log.h"
#include "logstream.h"
#include "resource.h"

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

/* ---- controllers ---------------------------------------------------------------------------- */

static const char *const controller_names[] = { "cpu", "cpuset", "memory", "pids", "io" };

static bool have_tree;        /* vigil's subtree exists */
static unsigned enabled;      /* controllers enabled for the services' leaves */
static uint64_t memory_total; /* bytes of RAM, for MemoryMax=N% */
static uint64_t pid_space;    /* for TasksMax=N% */
static cpu_set_bits cpus_online;
static cpu_set_bits reserved_applied; /* CPUExclusive= CPUs when the leaves were written */

bool cgroup_have_tree(void) {
        return have_tree;
}

unsigned cgroup_controllers(void) {
        return enabled;
}

const char *cgroup_controller_to_string(cgroup_controller c) {
        for (size_t i = 0; i < ELEMENTSOF(controller_names); i++)
                if (c == 1u << i)
                        return controller_names[i];
        return "?";
}

static unsigned parse_controllers(const char *buf) {
        unsigned mask = 0;
        const char *p = buf;

        while (*p) {
                size_t n;

                p += strspn(p, WHITESPACE);
                n = strcspn(p, WHITESPACE);
                for (size_t i = 0; i < ELEMENTSOF(controller_names); i++)
                        if (n == strlen(controller_names[i]) &&
                            strncmp(p, controller_names[i], n) == 0)
                                mask |= 1u << i;
                p += n;
        }
        return mask;
}

static unsigned read_controllers(int dir_fd, const char *file) {
        char buf[512];

        return read_small_at(dir_fd, file, buf, sizeof(buf)) < 0 ? 0 : parse_controllers(buf);
}

/* Enables each controller of want in the subtree of dir_fd that its cgroup has; one at a
 * time, so that one the kernel refuses does not keep the others out. */
static unsigned enable_controllers(int dir_fd, unsigned want) {
        unsigned have = read_controllers(dir_fd, "cgroup.controllers") & want;

        for (size_t i = 0; i < ELEMENTSOF(controller_names); i++) {
                char cmd[16];

                if (!(have & (1u << i)))
                        continue;
                snprintf(cmd, sizeof(cmd), "+%s", controller_names[i]);
                if (write_file_at(dir_fd, "cgroup.subtree_control", cmd) < 0)
                        log_debug("Cannot enable the %s controller: %m", controller_names[i]);
        }
        return read_controllers(dir_fd, "cgroup.subtree_control");
}

static void mask_to_string(unsigned mask, char *buf, size_t len) {
        size_t n = 0;

        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(controller_names); i++)
                if (mask & (1u << i)) {
                        int k = snprintf(buf + n, len - n, "%s%s", n ? " " : "",
                                         controller_names[i]);
                        if (k < 0 || (size_t) k >= len - n)
                                return;
                        n += (size_t) k;
                }
}

static uint64_t read_u64_file(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        unsigned long long v;

        if (!f || fscanf(f, "%llu", &v) != 1)
                return 0;
        return v;
}

/* What percentages are taken of, and the CPUs there are. */
static void machine_totals(void) {
        _cleanup_fclose_ FILE *f = NULL;
        struct sysinfo si;
        uint64_t threads;
        char buf[4096];
        const char *reason;

        if (sysinfo(&si) == 0)
                memory_total = (uint64_t) si.totalram * si.mem_unit;
        /* systemd's base for TasksMax=N%: the smaller of pid_max and threads-max. */
        pid_space = read_u64_file("/proc/sys/kernel/pid_max");
        threads = read_u64_file("/proc/sys/kernel/threads-max");
        if (threads > 0 && (pid_space == 0 || threads < pid_space))
                pid_space = threads;
        cpus_online = (cpu_set_bits){};
        f = fopen("/sys/devices/system/cpu/online", "re");
        if (!f || !fgets(buf, sizeof(buf), f) ||
            cpu_set_bits_parse(strstrip(buf), &cpus_online, &reason) < 0)
                cpus_online = (cpu_set_bits){};
}

int cgroup_setup(manager *m) {
        _cleanup_free_ char *path = NULL;
        char missing[128], on[128];
        int r;

        m->cgroup_root_fd = -1;
        have_tree = false;
        enabled = 0;
        reserved_applied = (cpu_set_bits){};
        machine_totals();
        r = vigil_cgroup_path(m->settings.sandbox ? m->settings.sandbox_id : 0, &path);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0) {
                log_warning("No cgroup v2 hierarchy: services are tracked by process group, and "
                            "a process that leaves its group escapes KillMode=control-group. "
                            "No resource limit (CPUWeight=, MemoryMax=, TasksMax=...) is "
                            "enforced.");
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
        have_tree = true;

        /* The real PID 1 owns the hierarchy: its root hands the controllers down to vigil's
         * subtree. A sandbox only uses what its own cgroup already has. */
        if (!m->settings.sandbox) {
                _cleanup_close_ int top =
                        openat(m->cgroup_root_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                if (top >= 0)
                        (void) enable_controllers(top, CGROUP_ALL);
        }
        enabled = enable_controllers(m->cgroup_root_fd, CGROUP_ALL);

        mask_to_string(enabled, on, sizeof(on));
        mask_to_string(CGROUP_ALL & ~enabled, missing, sizeof(missing));
        log_info("Services run in cgroups below %s (controllers: %s).", m->cgroup_root,
                 *on ? on : "none");
        if (*missing)
                log_warning("cgroup v2 controllers unavailable in %s: %s. The resource "
                            "settings that need them are not enforced (each service says "
                            "which), nor the default TasksMax=.",
                            m->cgroup_root, missing);
        return 0;
}

/* Tier groups, deepest first. */
static const char *const tier_groups[] = { "low.tier/idle.tier", "low.tier" };

void cgroup_teardown(manager *m) {
        if (m->cgroup_root_fd >= 0 && m->settings.sandbox)
                for (size_t i = 0; i < ELEMENTSOF(tier_groups); i++)
                        (void) unlinkat(m->cgroup_root_fd, tier_groups[i], AT_REMOVEDIR);
        if (m->cgroup_root_fd >= 0)
                close(m->cgroup_root_fd);
        m->cgroup_root_fd = -1;
        if (m->cgroup_root && m->settings.sandbox && rmdir(m->cgroup_root) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Cannot remove cgroup %s: %m", m->cgroup_root);
        m->cgroup_root = mfree(m->cgroup_root);
        have_tree = false;
        enabled = 0;
}

static void on_cgroup_events(fd_watch *w, uint32_t revents) {
        service *s = container_of(w, service, events);

        /* The event stays pending until the watched fd is read again: read it even when
         * no stop waits for the answer, or the loop would spin. */
        if (cgroup_service_populated(s) == 0)
                service_cgroup_event(s);
}

char *cgroup_sandbox_path(pid_t sandbox_id) {
        char *path = NULL;

        return vigil_cgroup_path(sandbox_id, &path) < 0 ? NULL : path;
}

/* Removes the cgroups below dir_fd, deepest first (the tier groups nest two deep). */
static void remove_children(int dir_fd, unsigned depth) {
        struct dirent *de;
        DIR *d;
        int fd;

        if (depth > 4)
                return;
        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        /* The sandbox's PID 1 is gone, and with it every process of its namespace; their
         * cgroups may take a moment to become empty. */
        while ((de = readdir(d))) {
                _cleanup_close_ int sub = -1;

                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (sub >= 0)
                        remove_children(sub, depth + 1);
                for (int i = 0; i < 100; i++) {
                        if (unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0 || errno != EBUSY)
                                break;
                        usleep(10 * 1000);
                }
        }
        closedir(d);
}

void cgroup_sandbox_remove(const char *path) {
        _cleanup_close_ int fd = -1;

        if (!path)
                return;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        remove_children(fd, 0);
        for (int i = 0; i < 100 && rmdir(path) < 0 && errno == EBUSY; i++)
                usleep(10 * 1000);
}

/* ---- failures, for resource_warnings() ------------------------------------------------------ */

typedef struct apply_failures {
        char *name;
        char **lines;
} apply_failures;

static apply_failures *failures;
static size_t n_failures;

char *const *cgroup_apply_failures(const char *name) {
        for (size_t i = 0; i < n_failures; i++)
                if (streq(failures[i].name, name))
                        return failures[i].lines;
        return NULL;
}

/* Replaces the failures recorded for name by lines (taken; NULL: none). */
static void failures_set(const char *name, char **lines) {
        size_t i;

        for (i = 0; i < n_failures; i++)
                if (streq(failures[i].name, name))
                        break;
        if (i < n_failures) {
                strv_free(failures[i].lines);
                if (lines) {
                        failures[i].lines = lines;
                        return;
                }
                free(failures[i].name);
                failures[i] = failures[--n_failures];
                if (n_failures == 0)
                        failures = mfree(failures);
                return;
        }
        if (!lines)
                return;
        {
                apply_failures *f = reallocarray(failures, n_failures + 1, sizeof(*f));
                char *n = strdup(name);

                if (!f || !n) {
                        /* The lines were logged; only the status listing misses them. */
                        free(n);
                        if (f)
                                failures = f;
                        strv_free(lines);
                        log_oom();
                        return;
                }
                failures = f;
                failures[n_failures++] = (apply_failures){ .name = n, .lines = lines };
        }
}

/* ---- a service's leaf ----------------------------------------------------------------------- */

/* Opens (creating) the group of a CPUPriority= tier below vigil's cgroup: cpu.idle=1 and
 * the same controllers at each level. group NULL: vigil's cgroup itself. */
static int open_group(manager *m, const char *group, int *ret) {
        _cleanup_close_ int fd = -1;
        const char *p = group;

        fd = openat(m->cgroup_root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        while (p && *p) {
                char name[64];
                size_t n = strcspn(p, "/");
                int sub;

                if (n >= sizeof(name))
                        return -ENAMETOOLONG;
                memcpy(name, p, n);
                name[n] = 0;
                p += n + (p[n] == '/');
                if (mkdirat(fd, name, 0755) < 0 && errno != EEXIST)
                        return -errno;
                sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (sub < 0)
                        return -errno;
                close(fd);
                fd = sub;
                /* Idle relative to its siblings: it runs on what they leave. */
                if ((enabled & CGROUP_CPU) && write_file_at(fd, "cpu.idle", "1") < 0)
                        return -errno;
                if (enabled && enable_controllers(fd, enabled) != enabled)
                        return -EIO;
        }
        *ret = TAKE_FD(fd);
        return 0;
}

static const char *service_group(service *s) {
        return unit_resource_group(s->unit->resource);
}

/* Whether the leaf is where the unit's tier puts it. */
static bool leaf_in_place(service *s) {
        _cleanup_close_ int parent = -1;
        struct stat a, b;

        if (s->cgroup_fd < 0 || fstat(s->cgroup_fd, &a) < 0)
                return false;
        if (open_group(s->manager, service_group(s), &parent) < 0)
                return false;
        return fstatat(parent, service_name(s), &b, AT_SYMLINK_NOFOLLOW) == 0 &&
               a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

_printf_(2, 3) static void add_failure(char ***lines, const char *fmt, ...) {
        char buf[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        (void) strv_extend(lines, buf);
}

/* Writes value to the leaf's file; a failure becomes a line naming the directive. */
static void apply_one(service *s, char ***lines, const char *key, const char *file,
                      const char *value) {
        int r = write_file_at(s->cgroup_fd, file, value);

        if (r < 0) {
                errno = -r;
                add_failure(lines, "%s= not enforced: writing \"%s\" to %s failed: %m", key, value,
                            file);
        }
}

static void format_limit(uint64_t v, char *buf, size_t len) {
        if (v == CGROUP_LIMIT_UNSET || v == CGROUP_LIMIT_MAX)
                snprintf(buf, len, "max");
        else
                snprintf(buf, len, "%" PRIu64, v);
}

/* The CPUs CPUExclusive= services reserve, all of them together. */
static cpu_set_bits reserved_cpus(manager *m, const service *except) {
        cpu_set_bits set = {};

        for (size_t i = 0; i < m->n_services; i++) {
                const unit_resource *r = m->services[i]->unit->resource;

                if (m->services[i] == except || !r->cpu_exclusive)
                        continue;
                for (size_t k = 0; k < ELEMENTSOF(set.bits); k++)
                        set.bits[k] |= r->allowed_cpus.bits[k];
        }
        return set;
}

static void apply_cpuset(service *s, char ***lines) {
        const unit_resource *r = s->unit->resource;
        cpu_set_bits want, reserved = reserved_cpus(s->manager, s);
        bool have_reserved = !cpu_set_bits_is_empty(&reserved);
        char buf[1024];

        if (!(enabled & CGROUP_CPUSET))
                return;
        want = cpu_set_bits_is_empty(&r->allowed_cpus) ? cpus_online : r->allowed_cpus;
        /* Others' reserved CPUs are off limits, unless this one reserves them too. */
        if (!r->cpu_exclusive && have_reserved) {
                cpu_set_bits left = want;

                for (size_t k = 0; k < ELEMENTSOF(left.bits); k++)
                        left.bits[k] &= ~reserved.bits[k];
                if (cpu_set_bits_is_empty(&left))
                        add_failure(lines, "CPUExclusive= of other services leaves no CPU for this "
                                           "one: it shares the reserved CPUs");
                else
                        want = left;
        }
        if (cpu_set_bits_is_empty(&r->allowed_cpus) && !have_reserved) {
                /* Nothing asked: an empty cpuset.cpus follows the parent's CPUs. The kernel
                 * refuses to empty it while the leaf has processes (ENOSPC): then all of
                 * them, e.g. when CPUs another service reserved come back. */
                if (write_file_at(s->cgroup_fd, "cpuset.cpus", "\n") >= 0)
                        return;
                want = cpus_online;
        }
        if (cpu_set_bits_is_empty(&want) || cpu_set_bits_format(&want, buf, sizeof(buf)) < 0) {
                add_failure(lines, "AllowedCPUs= not enforced: no usable CPU in it");
                return;
        }
        apply_one(s, lines, "AllowedCPUs", "cpuset.cpus", buf);
}

static void apply_cpu(service *s, char ***lines) {
        const unit_resource *r = s->unit->resource;
        const char *key = r->cpu_policy == CPU_POLICY_PRIORITY ? "CPUPriority" : "CPUWeight";
        uint64_t w = unit_resource_cpu_weight(r), period;
        char buf[64];

        if (!(enabled & CGROUP_CPU))
                return;
        if (w == CPU_WEIGHT_IDLE)
                apply_one(s, lines, key, "cpu.idle", "1");
        else {
                /* cpu.idle (Linux 5.15) may be missing; then it cannot be on either. */
                if (write_file_at(s->cgroup_fd, "cpu.idle", "0") < 0 && errno != ENOENT)
                        add_failure(lines, "%s= not enforced: cannot clear cpu.idle: %m", key);
                snprintf(buf, sizeof(buf), "%" PRIu64,
                         w == CGROUP_WEIGHT_UNSET ? CGROUP_WEIGHT_DEFAULT : w);
                apply_one(s, lines, key, "cpu.weight", buf);
        }

        period = r->cpu_quota_period ?: 100 * USEC_PER_MSEC;
        if (r->cpu_quota_per_sec == CGROUP_LIMIT_UNSET)
                snprintf(buf, sizeof(buf), "max %" PRIu64, period);
        else {
                /* As systemd: the share of the period, at least the kernel's 1 ms. */
                uint64_t q = r->cpu_quota_per_sec / 1000 * period / 1000;

                snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64, q < 1000 ? 1000 : q, period);
        }
        apply_one(s, lines, "CPUQuota", "cpu.max", buf);
}

static void apply_memory(service *s, char ***lines) {
        static const struct {
                const char *key, *file;
                size_t offset;
        } limits[] = {
                { "MemoryMax", "memory.max", offsetof(unit_resource, memory_max) },
                { "MemoryHigh", "memory.high", offsetof(unit_resource, memory_high) },
                { "MemorySwapMax", "memory.swap.max", offsetof(unit_resource, memory_swap_max) },
        };
        const unit_resource *r = s->unit->resource;
        char buf[32];

        if (!(enabled & CGROUP_MEMORY))
                return;
        for (size_t i = 0; i < ELEMENTSOF(limits); i++) {
                const scaled_limit *l = (const void *) ((const char *) r + limits[i].offset);
                bool set = l->value != CGROUP_LIMIT_UNSET || l->permyriad > 0;

                format_limit(scaled_limit_resolve(l, memory_total), buf, sizeof(buf));
                /* Without swap accounting there is no memory.swap.max: only a problem
                 * when the unit asked for a limit. */
                if (!set && write_file_at(s->cgroup_fd, limits[i].file, buf) < 0)
                        continue;
                if (set)
                        apply_one(s, lines, limits[i].key, limits[i].file, buf);
        }
}

static void apply_pids(service *s, char ***lines) {
        const scaled_limit *l = &s->unit->resource->tasks_max;
        scaled_limit def = { .value = CGROUP_LIMIT_MAX, .permyriad = TASKS_MAX_DEFAULT_PERMYRIAD };
        char buf[32];

        if (!(enabled & CGROUP_PIDS))
                return;
        if (l->value == CGROUP_LIMIT_UNSET && l->permyriad == 0)
                l = &def;
        format_limit(scaled_limit_resolve(l, pid_space), buf, sizeof(buf));
        apply_one(s, lines, "TasksMax", "pids.max", buf);
}

static void apply_io(service *s, char ***lines) {
        uint64_t w = s->unit->resource->io_weight;
        char buf[32];

        if (!(enabled & CGROUP_IO))
                return;
        snprintf(buf, sizeof(buf), "default %" PRIu64,
                 w == CGROUP_WEIGHT_UNSET ? CGROUP_WEIGHT_DEFAULT : w);
        /* io.weight exists only with the iocost controller; only a problem when asked. */
        if (w == CGROUP_WEIGHT_UNSET)
                (void) write_file_at(s->cgroup_fd, "io.weight", buf);
        else
                apply_one(s, lines, "IOWeight", "io.weight", buf);
}

/* A service's CPUExclusive= or AllowedCPUs= changed the reserved CPUs (a live change, a
 * reload): every other leaf's cpuset.cpus is written again. */
static void reserved_update(manager *m, const service *changed) {
        cpu_set_bits now = reserved_cpus(m, NULL);

        if (!(enabled & CGROUP_CPUSET) || memcmp(&now, &reserved_applied, sizeof(now)) == 0)
                return;
        reserved_applied = now;
        for (size_t i = 0; i < m->n_services; i++)
                if (m->services[i] != changed && m->services[i]->cgroup_fd >= 0)
                        (void) cgroup_service_apply(m->services[i]);
}

void cgroup_services_removed(manager *m) {
        reserved_update(m, NULL);
}

int cgroup_service_apply(service *s) {
        _cleanup_strv_free_ char **lines = NULL;
        size_t n;

        if (s->cgroup_fd < 0)
                return 0;
        if (!leaf_in_place(s)) {
                int r;

                /* CPUPriority= moved it to another tier group: a leaf with processes
                 * cannot move. */
                if (cgroup_service_populated(s) != 0)
                        return -EBUSY;
                cgroup_service_remove(s);
                r = cgroup_service_create(s);
                return r < 0 ? r
                             : (int) strv_length((char **) cgroup_apply_failures(service_name(s)));
        }
        apply_cpu(s, &lines);
        apply_cpuset(s, &lines);
        apply_memory(s, &lines);
        apply_pids(s, &lines);
        apply_io(s, &lines);
        STRV_FOREACH(l, lines)
                log_warning("%s: %s", service_name(s), *l);
        n = strv_length(lines);
        failures_set(service_name(s), TAKE_PTR(lines));
        reserved_update(s->manager, s);
        return (int) n;
}

/* ---- memory.events -------------------------------------------------------------------------- */

static int read_oom_kills(service *s, uint64_t *ret) {
        char buf[512];
        const char *p;
        ssize_t n;

        if (s->memory_events.fd < 0)
                return -EBADF;
        /* Reading through the watched fd also clears its pending EPOLLPRI. */
        n = pread(s->memory_events.fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
                unsigned long long v;

                if (sscanf(p, "oom_kill %llu", &v) == 1) {
                        *ret = v;
                        return 0;
                }
        }
        return -EBADMSG;
}

/* Counts new OOM kills; says so in the service's log and vigil's. */
static void oom_update(service *s) {
        uint64_t kills;
        char buf[256];

        if (read_oom_kills(s, &kills) < 0 || kills <= s->oom_kills)
                return;
        snprintf(buf, sizeof(buf),
                 "The OOM killer killed %" PRIu64 " process%s of this service (memory.max "
                 "reached).",
                 kills - s->oom_kills, kills - s->oom_kills == 1 ? "" : "es");
        s->oom_kills = kills;
        s->oom_killed = true;
        if (s->log)
                log_stream_append(s->log, buf);
        log_warning("%s: %s", service_name(s), buf);
}

static void on_memory_events(fd_watch *w, uint32_t revents) {
        oom_update(container_of(w, service, memory_events));
}

int cgroup_service_oom_check(service *s) {
        if (s->memory_events.fd < 0)
                return 0;
        oom_update(s);
        return s->oom_killed;
}

static int watch_memory_events(service *s) {
        _cleanup_close_ int fd = -1;
        uint64_t kills = 0;
        int r;

        if (!(enabled & CGROUP_MEMORY))
                return 0;
        fd = openat(s->cgroup_fd, "memory.events", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        s->memory_events.fd = TAKE_FD(fd);
        /* Kills from before this vigil (a leaf left by an earlier run) do not count. */
        if (read_oom_kills(s, &kills) >= 0)
                s->oom_kills = kills;
        r = fd_watch_add(s->manager->event, &s->memory_events, s->memory_events.fd, EPOLLPRI,
                         on_memory_events);
        if (r < 0) {
                close(s->memory_events.fd);
                s->memory_events.fd = -1;
        }
        return r;
}

/* Logs each setting of s that is not enforced and was not logged by the apply already
 * (ResourceEnforcement=required then keeps it down: service_start_refused()). */
static void log_unenforced(service *s) {
        _cleanup_strv_free_ char **warnings = NULL;
        char *const *failed = cgroup_apply_failures(service_name(s));

        if (resource_warnings(s->unit, &warnings) < 0)
                return;
        STRV_FOREACH(w, warnings)
                if (!failed || !strv_contains((char **) failed, *w))
                        log_warning("%s: %s", service_name(s), *w);
}

int cgroup_service_create(service *s) {
        manager *m = s->manager;
        _cleanup_close_ int parent = -1, fd = -1, events = -1;
        int r;

        if (m->cgroup_root_fd < 0) {
                log_unenforced(s);
                return 0;
        }
        r = open_group(m, service_group(s), &parent);
        if (r < 0)
                return r;
        if (mkdirat(parent, service_name(s), 0755) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(parent, service_name(s), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        events = openat(fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
        if (events < 0)
                return -errno;
        /* cgroup.events signals a change with EPOLLPRI. */
        r = fd_watch_add(m->event, &s->events, events, EPOLLPRI, on_cgroup_events);
        if (r < 0)
                return r;
        s->cgroup_fd = TAKE_FD(fd);
        s->events.fd = TAKE_FD(events);
        r = watch_memory_events(s);
        if (r < 0)
                log_warning_errno(r,
                                  "%s: cannot watch memory.events; OOM kills are not "
                                  "recorded: %m",
                                  service_name(s));
        (void) cgroup_service_apply(s);
        log_unenforced(s);
        return 0;
}

void cgroup_service_remove(service *s) {
        manager *m = s->manager;

        fd_watch_remove(&s->events);
        fd_watch_remove(&s->memory_events);
        if (s->events.fd >= 0)
                close(s->events.fd);
        if (s->memory_events.fd >= 0)
                close(s->memory_events.fd);
        if (s->cgroup_fd >= 0)
                close(s->cgroup_fd);
        s->events.fd = s->cgroup_fd = s->memory_events.fd = -1;
        failures_set(service_name(s), NULL);
        if (m->cgroup_root_fd < 0)
                return;
        /* Wherever a tier put it. */
        if (unlinkat(m->cgroup_root_fd, service_name(s), AT_REMOVEDIR) < 0 && errno != ENOENT)
                log_warning_errno(errno, "%s: cannot remove its cgroup: %m", service_name(s));
        for (size_t i = 0; i < ELEMENTSOF(tier_groups); i++) {
                _cleanup_close_ int g = openat(m->cgroup_root_fd, tier_groups[i],
                                               O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                if (g >= 0 && unlinkat(g, service_name(s), AT_REMOVEDIR) < 0 && errno != ENOENT)
                        log_warning_errno(errno, "%s: cannot remove its cgroup: %m",
                                          service_name(s));
        }
}

/* Some kernels (6.18 here) go on killing every process cloned into a cgroup with
 * CLONE_INTO_CGROUP once cgroup.kill was used on it (its kill sequence no longer matches
 * the parent's), so a killed leaf is replaced by a fresh one before the next start. */
int cgroup_service_renew(service *s) {
        if (!s->cgroup_killed || s->cgroup_fd < 0 || cgroup_service_populated(s) != 0)
                return 0;
        cgroup_service_remove(s);
        s->cgroup_killed = false;
        return cgroup_service_create(s);
}

int cgroup_service_kill(service *s, int sig) {
        char buf[CGROUP_FILE_MAX];
        char *p, *e;
        int r, first = 0;

        if (s->cgroup_fd < 0)
                return -EBADF;
        /* cgroup.kill (Linux 5.14) kills everything at once, including new forks. */
        if (sig == SIGKILL && write_file_at(s->cgroup_fd, "cgroup.kill", "1") >= 0) {
                s->cgroup_killed = true;
                return 0;
        }
        r = read_small_at(s->cgroup_fd, "cgroup.procs", buf, sizeof(buf));
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

        if (s->events.fd < 0)
                return -EBADF;
        /* Reading through the watched fd also clears its pending EPOLLPRI. */
        n = pread(s->events.fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        p = strstr(buf, "populated ");
        if (!p)
                return -EBADMSG;
        return p[10] == '1';
}
