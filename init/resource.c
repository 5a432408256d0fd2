/* Resource control of a service (see resource.h). */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>

#include "cgroup.h"
#include "resource.h"

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif

static int write_oom_score_adjust(int v) {
        char buf[16];
        int fd, n;
        ssize_t w;

        n = snprintf(buf, sizeof(buf), "%d\n", v);
        fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        w = write(fd, buf, (size_t) n);
        if (w != n) {
                int r = w < 0 ? -errno : -EIO;

                close(fd);
                return r;
        }
        close(fd);
        return 0;
}

int resource_apply_child(const unit_resource *r) {
        int policy, prio;

        if (r->nice_set && setpriority(PRIO_PROCESS, 0, r->nice) < 0)
                return -errno;

        policy = unit_resource_sched_policy(r, &prio);
        if (policy == SCHED_FIFO || policy == SCHED_RR) {
                struct rlimit rl;

                /* A real-time loop that never blocks would starve everything below it on
                 * its CPU: cap the CPU time it may use without blocking. */
                if (getrlimit(RLIMIT_RTTIME, &rl) == 0 && rl.rlim_max == RLIM_INFINITY) {
                        rl.rlim_cur = rl.rlim_max = RTTIME_CAP_DEFAULT_USEC;
                        if (setrlimit(RLIMIT_RTTIME, &rl) < 0)
                                return -errno;
                }
        }
        if (policy == SCHED_POLICY_UNSET && r->sched_reset_on_fork) {
                policy = sched_getscheduler(0);
                if (policy < 0)
                        return -errno;
                prio = policy == SCHED_FIFO || policy == SCHED_RR ? 1 : 0;
                {
                        struct sched_param cur;

                        if (sched_getparam(0, &cur) == 0)
                                prio = cur.sched_priority;
                }
        }
        if (policy != SCHED_POLICY_UNSET) {
                struct sched_param sp = { .sched_priority = prio };

                if (sched_setscheduler(0,
                                       policy | (r->sched_reset_on_fork ? SCHED_RESET_ON_FORK : 0),
                                       &sp) < 0)
                        return -errno;
        }

        if (r->oom_score_adjust_set)
                return write_oom_score_adjust(r->oom_score_adjust);
        return 0;
}

/* Each cgroup setting, whether a unit set it, and the controller it needs. */
typedef struct resource_check {
        const char *key;
        cgroup_controller controller;
        bool (*is_set)(const unit_resource *r);
} resource_check;

static bool limit_set(const scaled_limit *l) {
        return l->value != CGROUP_LIMIT_UNSET || l->permyriad > 0;
}

static bool cpu_weight_set(const unit_resource *r) {
        return r->cpu_policy == CPU_POLICY_WEIGHTED && r->cpu_weight != CGROUP_WEIGHT_UNSET;
}
static bool cpu_priority_set(const unit_resource *r) {
        return r->cpu_policy == CPU_POLICY_PRIORITY;
}
static bool cpu_quota_set(const unit_resource *r) {
        return r->cpu_quota_per_sec != CGROUP_LIMIT_UNSET;
}
static bool allowed_cpus_set(const unit_resource *r) {
        return !cpu_set_bits_is_empty(&r->allowed_cpus);
}
static bool cpu_exclusive_set(const unit_resource *r) {
        return r->cpu_exclusive;
}
static bool memory_max_set(const unit_resource *r) {
        return limit_set(&r->memory_max);
}
static bool memory_high_set(const unit_resource *r) {
        return limit_set(&r->memory_high);
}
static bool memory_swap_max_set(const unit_resource *r) {
        return limit_set(&r->memory_swap_max);
}
static bool tasks_max_set(const unit_resource *r) {
        return limit_set(&r->tasks_max);
}
static bool io_weight_set(const unit_resource *r) {
        return r->io_weight != CGROUP_WEIGHT_UNSET;
}

static const resource_check checks[] = {
        { "CPUWeight", CGROUP_CPU, cpu_weight_set },
        { "CPUPriority", CGROUP_CPU, cpu_priority_set },
        { "CPUQuota", CGROUP_CPU, cpu_quota_set },
        { "AllowedCPUs", CGROUP_CPUSET, allowed_cpus_set },
        { "CPUExclusive", CGROUP_CPUSET, cpu_exclusive_set },
        { "MemoryMax", CGROUP_MEMORY, memory_max_set },
        { "MemoryHigh", CGROUP_MEMORY, memory_high_set },
        { "MemorySwapMax", CGROUP_MEMORY, memory_swap_max_set },
        { "TasksMax", CGROUP_PIDS, tasks_max_set },
        { "IOWeight", CGROUP_IO, io_weight_set },
};

/* The missing-controller line of checks[i] for u into buf; false when it has none. */
static bool check_warning(const unit *u, size_t i, char *buf, size_t size) {
        if (!checks[i].is_set(u->resource) || (cgroup_controllers() & checks[i].controller))
                return false;
        if (!cgroup_have_tree())
                snprintf(buf, size, "%s= not enforced: no cgroup v2 hierarchy", checks[i].key);
        else
                snprintf(buf, size, "%s= not enforced: %s controller unavailable", checks[i].key,
                         cgroup_controller_to_string(checks[i].controller));
        return true;
}

int resource_warnings(const unit *u, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(checks); i++) {
                char buf[160];

                if (!check_warning(u, i, buf, sizeof(buf)))
                        continue;
                r = strv_extend(&l, buf);
                if (r < 0)
                        return r;
        }
        STRV_FOREACH(f, cgroup_apply_failures(u->name)) {
                r = strv_extend(&l, *f);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

size_t resource_unenforced(const unit *u, char *buf, size_t size) {
        char *const *failed = cgroup_apply_failures(u->name);
        size_t n = 0;
        char line[160];

        for (size_t i = 0; i < ELEMENTSOF(checks); i++)
                if (check_warning(u, i, line, sizeof(line)) && n++ == 0)
                        snprintf(buf, size, "%s", line);
        STRV_FOREACH(f, failed)
                if (n++ == 0)
                        snprintf(buf, size, "%s", *f);
        return n;
}
