/* Resource control settings of a unit: cgroup v2 limits, CPU policy, scheduling. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* The kernel's cpu.weight and io.weight range; CGROUP_WEIGHT_UNSET leaves the kernel's
 * default (100). CPU_WEIGHT_IDLE is systemd's CPUWeight=idle: cpu.idle=1. */
#define CGROUP_WEIGHT_MIN UINT64_C(1)
#define CGROUP_WEIGHT_DEFAULT UINT64_C(100)
#define CGROUP_WEIGHT_MAX UINT64_C(10000)
#define CGROUP_WEIGHT_UNSET UINT64_MAX
#define CPU_WEIGHT_IDLE UINT64_C(0)

/* A limit that was not set, and "infinity" ("max" in the kernel's files). */
#define CGROUP_LIMIT_UNSET UINT64_MAX
#define CGROUP_LIMIT_MAX (UINT64_MAX - 1)

/* CPUs a cpu set can name: cpuset.cpus lists of up to this many CPUs. */
#define CPU_SET_MAX 1024

typedef struct cpu_set_bits {
        uint64_t bits[CPU_SET_MAX / 64];
} cpu_set_bits;

bool cpu_set_bits_is_empty(const cpu_set_bits *s);
/* CPU numbers and ranges separated by commas or whitespace ("0-3,6", "0 2"), added to
 * *s. -EINVAL with *reason for bad syntax, -ERANGE for a CPU above CPU_SET_MAX - 1. */
int cpu_set_bits_parse(const char *text, cpu_set_bits *s, const char **reason);
/* "0-3,6" as the kernel's cpuset files write it; always NUL-terminates buf. Returns
 * -ENOBUFS when buf is too small. */
int cpu_set_bits_format(const cpu_set_bits *s, char *buf, size_t len);

/* A size or count that may be given as a percentage of what the machine has. */
typedef struct scaled_limit {
        uint64_t value;     /* bytes or tasks; CGROUP_LIMIT_UNSET / CGROUP_LIMIT_MAX */
        uint32_t permyriad; /* > 0: value is this many 1/10000 of the machine's total */
} scaled_limit;

typedef enum cpu_policy {
        CPU_POLICY_WEIGHTED, /* CPUWeight= shares of contended CPU (the default) */
        CPU_POLICY_PRIORITY, /* CPUPriority= tiers, served strictly in order */
        _CPU_POLICY_MAX,
} cpu_policy;

/* The tiers of CPUPolicy=priority, highest first (see policies/README.md). */
typedef enum cpu_priority {
        CPU_PRIORITY_REALTIME,
        CPU_PRIORITY_HIGH,
        CPU_PRIORITY_NORMAL,
        CPU_PRIORITY_LOW,
        CPU_PRIORITY_IDLE,
        _CPU_PRIORITY_MAX,
} cpu_priority;

typedef enum resource_enforcement {
        ENFORCEMENT_WARN,     /* a setting this machine cannot enforce is reported */
        ENFORCEMENT_REQUIRED, /* ... and the service does not start */
        _ENFORCEMENT_MAX,
} resource_enforcement;

/* Nothing set: no sched_setscheduler() at all. */
#define SCHED_POLICY_UNSET (-1)

typedef struct unit_resource {
        /* cgroup v2 */
        uint64_t cpu_weight;        /* CPUWeight=: 1..10000, CPU_WEIGHT_IDLE or UNSET */
        uint64_t cpu_quota_per_sec; /* CPUQuota=: µs of CPU time per second; UNSET: none */
        uint64_t cpu_quota_period;  /* CPUQuotaPeriodSec=: µs; 0: the kernel's 100 ms */
        cpu_set_bits allowed_cpus;  /* AllowedCPUs=; empty: all */
        bool cpu_exclusive;         /* CPUExclusive=: AllowedCPUs= as a cpuset partition */
        scaled_limit memory_max, memory_high, memory_swap_max;
        scaled_limit tasks_max; /* TasksMax=; UNSET: the default (15% of the pid space) */
        uint64_t io_weight;     /* IOWeight=: 1..10000 or UNSET */

        /* vigil's CPU policies */
        cpu_policy cpu_policy;
        cpu_priority cpu_priority;
        resource_enforcement enforcement;

        /* per process, set before exec */
        bool nice_set;
        int nice;         /* Nice=: -20..19 */
        int sched_policy; /* CPUSchedulingPolicy=: SCHED_*, or SCHED_POLICY_UNSET */
        bool sched_priority_set;
        int sched_priority; /* CPUSchedulingPriority=: 1..99 for fifo and rr */
        bool sched_reset_on_fork;
        bool oom_score_adjust_set;
        int oom_score_adjust; /* OOMScoreAdjust=: -1000..1000 */
} unit_resource;

#define UNIT_RESOURCE_DEFAULTS                                                                     \
        {                                                                                          \
                .cpu_weight = CGROUP_WEIGHT_UNSET, .cpu_quota_per_sec = CGROUP_LIMIT_UNSET,        \
                .memory_max = { .value = CGROUP_LIMIT_UNSET },                                     \
                .memory_high = { .value = CGROUP_LIMIT_UNSET },                                    \
                .memory_swap_max = { .value = CGROUP_LIMIT_UNSET },                                \
                .tasks_max = { .value = CGROUP_LIMIT_UNSET }, .io_weight = CGROUP_WEIGHT_UNSET,    \
                .cpu_policy = CPU_POLICY_WEIGHTED, .cpu_priority = CPU_PRIORITY_NORMAL,            \
                .enforcement = ENFORCEMENT_WARN, .sched_policy = SCHED_POLICY_UNSET,               \
        }

/* Every setting unset: what unit->resource points to until one is set. */
extern const unit_resource unit_resource_defaults;

/* TasksMax= when a unit does not set it: systemd's DefaultTasksMax=15%. */
#define TASKS_MAX_DEFAULT_PERMYRIAD 1500
/* LimitRTTIME= when CPUSchedulingPolicy= is fifo or rr and the unit sets none: a real-time
 * process that runs this long without blocking is killed. */
#define RTTIME_CAP_DEFAULT_USEC UINT64_C(200000)

/* What CPUPriority= means in cgroup terms (policies/README.md has the table). */
typedef struct cpu_tier {
        const char *group; /* the subgroup of vigil's cgroup its services go in; NULL: none */
        uint64_t weight;   /* cpu.weight of each service */
        bool realtime;     /* SCHED_RR unless CPUSchedulingPolicy= says otherwise */
} cpu_tier;

const cpu_tier *cpu_priority_tier(cpu_priority p);
/* The cpu.weight the unit's leaf gets: CPUWeight= or its tier's; CGROUP_WEIGHT_UNSET:
 * untouched, CPU_WEIGHT_IDLE: cpu.idle. */
uint64_t unit_resource_cpu_weight(const unit_resource *r);
/* The subgroup of vigil's cgroup the unit's leaf lives in, or NULL (directly below). */
const char *unit_resource_group(const unit_resource *r);
/* The scheduling policy its processes get: CPUSchedulingPolicy=, or SCHED_RR for the
 * realtime tier; SCHED_POLICY_UNSET: unchanged. *ret_priority: 1..99 for fifo/rr. */
int unit_resource_sched_policy(const unit_resource *r, int *ret_priority);

/* A scaled limit resolved against total (bytes of RAM, or the pid space). */
uint64_t scaled_limit_resolve(const scaled_limit *l, uint64_t total);

const char *cpu_policy_to_string(cpu_policy p);
const char *cpu_priority_to_string(cpu_priority p);
const char *sched_policy_to_string(int policy);
