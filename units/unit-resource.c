/* Resource control directives: cgroup v2 limits, CPU policies, scheduling. */
#include <limits.h>
#include <sched.h>

#include "unit-private.h"

/* ---- the model's helpers ------------------------------------------------------------------ */

/* Tiers of CPUPolicy=priority. Each step down is 10x less weight; low and idle live in
 * nested cpu.idle groups, so they only get what the tiers above leave (and idle only
 * what low leaves). policies/README.md documents this table. */
static const cpu_tier tiers[_CPU_PRIORITY_MAX] = {
        [CPU_PRIORITY_REALTIME] = { NULL, 10000, true },
        [CPU_PRIORITY_HIGH] = { NULL, 1000, false },
        [CPU_PRIORITY_NORMAL] = { NULL, 100, false },
        [CPU_PRIORITY_LOW] = { "low.tier", 100, false },
        [CPU_PRIORITY_IDLE] = { "low.tier/idle.tier", 100, false },
};

/* The real-time priority of the realtime tier when CPUSchedulingPriority= is not set:
 * above every normal task, far below the kernel's own real-time threads (99). */
#define REALTIME_TIER_PRIORITY 10

const cpu_tier *cpu_priority_tier(cpu_priority p) {
        return p < _CPU_PRIORITY_MAX ? &tiers[p] : &tiers[CPU_PRIORITY_NORMAL];
}

uint64_t unit_resource_cpu_weight(const unit_resource *r) {
        if (r->cpu_policy == CPU_POLICY_PRIORITY)
                return cpu_priority_tier(r->cpu_priority)->weight;
        return r->cpu_weight;
}

const char *unit_resource_group(const unit_resource *r) {
        if (r->cpu_policy == CPU_POLICY_PRIORITY)
                return cpu_priority_tier(r->cpu_priority)->group;
        return NULL;
}

int unit_resource_sched_policy(const unit_resource *r, int *ret_priority) {
        int policy = r->sched_policy, prio = r->sched_priority_set ? r->sched_priority : 0;

        if (policy == SCHED_POLICY_UNSET && r->cpu_policy == CPU_POLICY_PRIORITY &&
            cpu_priority_tier(r->cpu_priority)->realtime)
                policy = SCHED_RR;
        if ((policy == SCHED_FIFO || policy == SCHED_RR) && !r->sched_priority_set)
                prio = r->sched_policy == SCHED_POLICY_UNSET ? REALTIME_TIER_PRIORITY : 1;
        if (policy == SCHED_POLICY_UNSET && r->sched_priority_set)
                policy = SCHED_OTHER; /* as systemd: the priority alone keeps the policy */
        *ret_priority = prio;
        return policy;
}

uint64_t scaled_limit_resolve(const scaled_limit *l, uint64_t total) {
        if (l->permyriad == 0)
                return l->value;
        if (total == 0 || total == UINT64_MAX)
                return CGROUP_LIMIT_MAX;
        /* total * permyriad / 10000 without overflow for any total below 2^64 */
        return total / 10000 * l->permyriad + total % 10000 * l->permyriad / 10000;
}

bool cpu_set_bits_is_empty(const cpu_set_bits *s) {
        for (size_t i = 0; i < ELEMENTSOF(s->bits); i++)
                if (s->bits[i])
                        return false;
        return true;
}

static bool cpu_set_bits_has(const cpu_set_bits *s, unsigned cpu) {
        return cpu < CPU_SET_MAX && (s->bits[cpu / 64] >> (cpu % 64)) & 1;
}

int cpu_set_bits_format(const cpu_set_bits *s, char *buf, size_t len) {
        size_t n = 0;

        if (len == 0)
                return -ENOBUFS;
        buf[0] = 0;
        for (unsigned cpu = 0; cpu < CPU_SET_MAX; cpu++) {
                unsigned last = cpu;
                int k;

                if (!cpu_set_bits_has(s, cpu))
                        continue;
                while (last + 1 < CPU_SET_MAX && cpu_set_bits_has(s, last + 1))
                        last++;
                if (last == cpu)
                        k = snprintf(buf + n, len - n, "%s%u", n ? "," : "", cpu);
                else
                        k = snprintf(buf + n, len - n, "%s%u-%u", n ? "," : "", cpu, last);
                if (k < 0 || (size_t) k >= len - n) {
                        buf[n] = 0;
                        return -ENOBUFS;
                }
                n += (size_t) k;
                cpu = last;
        }
        return 0;
}

int cpu_set_bits_parse(const char *text, cpu_set_bits *s, const char **reason) {
        cpu_set_bits n = {};
        const char *p = text;

        *reason = "expected CPU numbers or ranges (\"0-3,6\")";
        while (*p) {
                unsigned long lo, hi;
                char *e;

                p += strspn(p, ", \t\n");
                if (!*p)
                        break;
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                errno = 0;
                lo = strtoul(p, &e, 10);
                hi = lo;
                if (*e == '-') {
                        p = e + 1;
                        if (*p < '0' || *p > '9') {
                                *reason = "a range needs two CPU numbers";
                                return -EINVAL;
                        }
                        hi = strtoul(p, &e, 10);
                }
                if (*e && !strchr(", \t\n", *e))
                        return -EINVAL;
                if (hi < lo) {
                        *reason = "a range must not run backwards";
                        return -EINVAL;
                }
                if (errno == ERANGE || hi >= CPU_SET_MAX)
                        return -ERANGE;
                for (unsigned long cpu = lo; cpu <= hi; cpu++)
                        n.bits[cpu / 64] |= UINT64_C(1) << (cpu % 64);
                p = e;
        }
        if (cpu_set_bits_is_empty(&n)) {
                *reason = "no CPU given";
                return -EINVAL;
        }
        for (size_t i = 0; i < ELEMENTSOF(n.bits); i++)
                s->bits[i] |= n.bits[i];
        return 0;
}

static const char *const cpu_policy_names[_CPU_POLICY_MAX] = {
        [CPU_POLICY_WEIGHTED] = "weighted",
        [CPU_POLICY_PRIORITY] = "priority",
};

static const char *const cpu_priority_names[_CPU_PRIORITY_MAX] = {
        [CPU_PRIORITY_REALTIME] = "realtime", [CPU_PRIORITY_HIGH] = "high",
        [CPU_PRIORITY_NORMAL] = "normal",     [CPU_PRIORITY_LOW] = "low",
        [CPU_PRIORITY_IDLE] = "idle",
};

static const char *const enforcement_names[_ENFORCEMENT_MAX] = {
        [ENFORCEMENT_WARN] = "warn",
        [ENFORCEMENT_REQUIRED] = "required",
};

const char *cpu_policy_to_string(cpu_policy p) {
        return p < _CPU_POLICY_MAX ? cpu_policy_names[p] : NULL;
}

const char *cpu_priority_to_string(cpu_priority p) {
        return p < _CPU_PRIORITY_MAX ? cpu_priority_names[p] : NULL;
}

static const struct {
        const char *name;
        int policy;
} sched_policies[] = {
        { "other", SCHED_OTHER }, { "batch", SCHED_BATCH }, { "idle", SCHED_IDLE },
        { "fifo", SCHED_FIFO },   { "rr", SCHED_RR },
};

const char *sched_policy_to_string(int policy) {
        for (size_t i = 0; i < ELEMENTSOF(sched_policies); i++)
                if (sched_policies[i].policy == policy)
                        return sched_policies[i].name;
        return NULL;
}

/* ---- parsers ------------------------------------------------------------------------------- */

/* A decimal integer with an optional sign, within [min, max]. */
static int parse_int_range(const char *s, long min, long max, long *ret) {
        char *e;
        long v;

        if (!*s || strchr(WHITESPACE, *s))
                return -EINVAL;
        errno = 0;
        v = strtol(s, &e, 10);
        if (*e || e == s)
                return -EINVAL;
        if (errno == ERANGE || v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* "N%" or "N.NN%" (at most two decimals) as 1/10000; max in the same unit. */
static int parse_permyriad(const char *s, uint64_t max, uint64_t *ret) {
        uint64_t whole = 0, frac = 0;
        size_t nd = 0, nf = 0;
        const char *p = s;

        for (; *p >= '0' && *p <= '9'; p++, nd++) {
                if (whole > UINT64_MAX / 10 / 10000)
                        return -ERANGE;
                whole = whole * 10 + (uint64_t) (*p - '0');
        }
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++, nf++) {
                        if (nf >= 2)
                                return -EINVAL;
                        frac = frac * 10 + (uint64_t) (*p - '0');
                }
        if (nd == 0 || *p != '%' || p[1])
                return -EINVAL;
        if (nf == 1)
                frac *= 10;
        whole = whole * 100 + frac;
        if (whole > max)
                return -ERANGE;
        *ret = whole;
        return 0;
}

static int parse_weight(load_ctx *c, const char *value, void *field, bool idle_ok) {
        uint64_t v;
        int r;

        if (!*value) {
                load_reset_field(c, field, sizeof(uint64_t));
                return 0;
        }
        if (idle_ok && streq(value, "idle")) {
                *(uint64_t *) field = CPU_WEIGHT_IDLE;
                return 0;
        }
        r = parse_u64(value, &v);
        if (r < 0 || v < CGROUP_WEIGHT_MIN || v > CGROUP_WEIGHT_MAX)
                return load_invalid(c, value,
                                    idle_ok ? "expected a weight from 1 to 10000 or \"idle\""
                                            : "expected a weight from 1 to 10000");
        *(uint64_t *) field = v;
        return 0;
}

static int parse_cpu_weight(load_ctx *c, const char *value, void *field) {
        return parse_weight(c, value, field, true);
}

static int parse_io_weight(load_ctx *c, const char *value, void *field) {
        return parse_weight(c, value, field, false);
}

static int parse_cpu_quota(load_ctx *c, const char *value, void *field) {
        uint64_t pm;
        int r;

        if (!*value) {
                load_reset_field(c, field, sizeof(uint64_t));
                return 0;
        }
        /* Percent of one CPU; above 100% for more than one. */
        r = parse_permyriad(value, UINT64_C(1000000) * 100, &pm);
        if (r == -ERANGE)
                return load_invalid(c, value, "out of range");
        if (r < 0)
                return load_invalid(c, value, "expected a percentage such as \"20%\" or \"150%\"");
        if (pm == 0)
                return load_invalid(c, value, "a quota of 0% would never let the service run");
        /* 100% = one second of CPU time per second. */
        *(uint64_t *) field = pm * 100;
        return 0;
}

static int parse_cpu_quota_period(load_ctx *c, const char *value, void *field) {
        usec_t t;
        int r;

        if (!*value) {
                load_reset_field(c, field, sizeof(uint64_t));
                return 0;
        }
        r = parse_sec(value, &t);
        if (r < 0)
                return load_invalid(c, value, "expected a time span such as \"100ms\"");
        /* The kernel's bounds for cpu.max periods. */
        if (t < USEC_PER_MSEC || t > USEC_PER_SEC)
                return load_invalid(c, value, "must be from 1ms to 1s");
        *(uint64_t *) field = t;
        return 0;
}

static int parse_allowed_cpus(load_ctx *c, const char *value, void *field) {
        cpu_set_bits *set = field, n = {};
        const char *reason = NULL;
        int r;

        if (!*value) {
                *set = (cpu_set_bits){};
                return 0;
        }
        r = cpu_set_bits_parse(value, &n, &reason);
        if (r == -ERANGE)
                return load_invalid(c, value, "CPU numbers go up to 1023");
        if (r < 0)
                return load_invalid(c, value, reason);
        /* Repeated assignments add up, as in systemd; an empty one resets. */
        for (size_t i = 0; i < ELEMENTSOF(n.bits); i++)
                set->bits[i] |= n.bits[i];
        return 0;
}

/* A size, "N%" of the machine's memory, or "infinity". */
static int parse_memory(load_ctx *c, const char *value, void *field) {
        scaled_limit *l = field;
        uint64_t v;
        int r;

        if (!*value) {
                load_reset_field(c, field, sizeof(scaled_limit));
                return 0;
        }
        if (streq(value, "infinity")) {
                *l = (scaled_limit){ .value = CGROUP_LIMIT_MAX };
                return 0;
        }
        if (endswith(value, "%")) {
                r = parse_permyriad(value, 10000, &v);
                if (r < 0)
                        return load_invalid(c, value, "expected a percentage from 0% to 100%");
                *l = (scaled_limit){ .value = CGROUP_LIMIT_MAX, .permyriad = (uint32_t) v };
                if (v == 0)
                        *l = (scaled_limit){ .value = 0 };
                return 0;
        }
        r = parse_size(value, &v);
        if (r < 0 || v >= CGROUP_LIMIT_MAX)
                return load_invalid(c, value,
                                    "expected a size such as \"512M\" or \"2G\", a percentage "
                                    "of the memory, or \"infinity\"");
        *l = (scaled_limit){ .value = v };
        return 0;
}

static int parse_tasks_max(load_ctx *c, const char *value, void *field) {
        scaled_limit *l = field;
        uint64_t v;
        int r;

        if (!*value) {
                load_reset_field(c, field, sizeof(scaled_limit));
                return 0;
        }
        if (streq(value, "infinity")) {
                *l = (scaled_limit){ .value = CGROUP_LIMIT_MAX };
                return 0;
        }
        if (endswith(value, "%")) {
                r = parse_permyriad(value, 10000, &v);
                if (r < 0 || v == 0)
                        return load_invalid(c, value, "expected a percentage above 0%, up to 100%");
                *l = (scaled_limit){ .value = CGROUP_LIMIT_MAX, .permyriad = (uint32_t) v };
                return 0;
        }
        r = parse_u64(value, &v);
        if (r < 0 || v >= CGROUP_LIMIT_MAX)
                return load_invalid(c, value,
                                    "expected a number of tasks, a percentage or \"infinity\"");
        if (v == 0)
                return load_invalid(c, value, "0 tasks would never let the service start");
        *l = (scaled_limit){ .value = v };
        return 0;
}

/* The unit's block: a parser runs after load_field() made it the unit's own. */
static unit_resource *own_resource(load_ctx *c) {
        return (unit_resource *) c->u->resource;
}

/* An int field with a *_set flag right before it in struct unit_resource. */
static int parse_int_setting(load_ctx *c, const char *value, void *field, bool *set, long min,
                             long max) {
        char why[64];
        long v;

        if (!*value) {
                *set = false;
                load_reset_field(c, field, sizeof(int));
                return 0;
        }
        if (parse_int_range(value, min, max, &v) < 0) {
                snprintf(why, sizeof(why), "expected an integer from %ld to %ld", min, max);
                return load_invalid(c, value, why);
        }
        *set = true;
        *(int *) field = (int) v;
        return 0;
}

static int parse_nice(load_ctx *c, const char *value, void *field) {
        return parse_int_setting(c, value, field, &own_resource(c)->nice_set, -20, 19);
}

static int parse_oom_score_adjust(load_ctx *c, const char *value, void *field) {
        return parse_int_setting(c, value, field, &own_resource(c)->oom_score_adjust_set, -1000,
                                 1000);
}

static int parse_sched_priority(load_ctx *c, const char *value, void *field) {
        return parse_int_setting(c, value, field, &own_resource(c)->sched_priority_set, 0, 99);
}

static int parse_sched_policy(load_ctx *c, const char *value, void *field) {
        if (!*value) {
                *(int *) field = SCHED_POLICY_UNSET;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(sched_policies); i++)
                if (streq(value, sched_policies[i].name)) {
                        *(int *) field = sched_policies[i].policy;
                        return 0;
                }
        return load_invalid(c, value, "expected other, batch, idle, fifo or rr");
}

static int parse_cpu_policy(load_ctx *c, const char *value, void *field) {
        return load_parse_enum(c, value, field, cpu_policy_names, _CPU_POLICY_MAX,
                               "expected weighted or priority");
}

static int parse_cpu_priority(load_ctx *c, const char *value, void *field) {
        return load_parse_enum(c, value, field, cpu_priority_names, _CPU_PRIORITY_MAX,
                               "expected realtime, high, normal, low or idle");
}

static int parse_enforcement(load_ctx *c, const char *value, void *field) {
        return load_parse_enum(c, value, field, enforcement_names, _ENFORCEMENT_MAX,
                               "expected warn or required");
}

/* ---- the table ----------------------------------------------------------------------------- */

#define R(key, parse, field)                                                                       \
        { "Service", key, parse, F_RESOURCE(field), D_POLICY, 0 }

const directive resource_directives[] = {
        R("CPUWeight", parse_cpu_weight, cpu_weight),
        R("CPUQuota", parse_cpu_quota, cpu_quota_per_sec),
        R("CPUQuotaPeriodSec", parse_cpu_quota_period, cpu_quota_period),
        R("AllowedCPUs", parse_allowed_cpus, allowed_cpus),
        R("CPUExclusive", load_parse_bool, cpu_exclusive),
        R("MemoryMax", parse_memory, memory_max),
        R("MemoryHigh", parse_memory, memory_high),
        R("MemorySwapMax", parse_memory, memory_swap_max),
        R("TasksMax", parse_tasks_max, tasks_max),
        R("IOWeight", parse_io_weight, io_weight),
        R("CPUPolicy", parse_cpu_policy, cpu_policy),
        R("CPUPriority", parse_cpu_priority, cpu_priority),
        R("ResourceEnforcement", parse_enforcement, enforcement),
        R("Nice", parse_nice, nice),
        R("CPUSchedulingPolicy", parse_sched_policy, sched_policy),
        R("CPUSchedulingPriority", parse_sched_priority, sched_priority),
        R("CPUSchedulingResetOnFork", load_parse_bool, sched_reset_on_fork),
        R("OOMScoreAdjust", parse_oom_score_adjust, oom_score_adjust),
};
const size_t N_RESOURCE_DIRECTIVES = ELEMENTSOF(resource_directives);

const unit_resource unit_resource_defaults = UNIT_RESOURCE_DEFAULTS;

void unit_resource_free(const unit_resource *r) {
        if (r != &unit_resource_defaults)
                free((unit_resource *) r);
}

static bool is_set(load_ctx *c, const char *key) {
        unit_source s;

        return unit_directive_source(c->u, "Service", key, &s);
}

void unit_resource_verify(load_ctx *c) {
        const unit_resource *r = c->u->resource;
        int policy, prio;

        if (r->cpu_policy == CPU_POLICY_PRIORITY && is_set(c, "CPUWeight")) {
                load_at(c, "Service", "CPUWeight");
                load_report(c, "CPUWeight= cannot be combined with CPUPolicy=priority: the "
                               "CPUPriority= tier sets the weight (use CPUPolicy=weighted for "
                               "your own weights)");
        }
        if (r->cpu_policy != CPU_POLICY_PRIORITY && is_set(c, "CPUPriority")) {
                load_at(c, "Service", "CPUPriority");
                load_report(c, "CPUPriority= needs CPUPolicy=priority (the default policy, "
                               "weighted, uses CPUWeight=)");
        }
        if (r->cpu_exclusive && cpu_set_bits_is_empty(&r->allowed_cpus)) {
                load_at(c, "Service", "CPUExclusive");
                load_report(c, "CPUExclusive=yes needs AllowedCPUs=: which CPUs to reserve");
        }

        policy = unit_resource_sched_policy(r, &prio);
        if (r->sched_priority_set && policy != SCHED_FIFO && policy != SCHED_RR &&
            r->sched_priority != 0) {
                load_at(c, "Service", "CPUSchedulingPriority");
                load_report(c,
                            "CPUSchedulingPriority=%d needs CPUSchedulingPolicy=fifo or rr "
                            "(other, batch and idle only take 0)",
                            r->sched_priority);
        }
        if (r->sched_priority_set && (policy == SCHED_FIFO || policy == SCHED_RR) &&
            r->sched_priority == 0) {
                load_at(c, "Service", "CPUSchedulingPriority");
                load_report(c, "CPUSchedulingPriority=0 is not a real-time priority: fifo and "
                               "rr take 1 to 99");
        }
        if (r->cpu_weight == CPU_WEIGHT_IDLE && (policy == SCHED_FIFO || policy == SCHED_RR)) {
                load_at(c, "Service", "CPUWeight");
                load_report(c, "CPUWeight=idle contradicts a real-time CPUSchedulingPolicy=");
        }
}
