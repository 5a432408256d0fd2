/* Tests for resource control: the directives' parsing and checks, the CPUPriority= tier
 * mapping, the child-side settings and what resource_warnings() says without cgroups. */
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "resource.h"
#include "tap.h"
#include "unit.h"

static unit *load_text(const char *text, diag_list *diags) {
        unit *u = NULL;

        if (unit_load_buffer("r.service", "r.service", text, strlen(text), diags, &u) < 0)
                return NULL;
        return u;
}

/* Loads text, expecting failure with a message containing want at line. */
static void expect_error(const char *text, unsigned line, const char *want) {
        diag_list diags = {};
        unit *u = load_text(text, &diags);
        bool found = false;

        for (size_t i = 0; i < diags.n; i++)
                if (diags.items[i].level == DIAG_ERROR && diags.items[i].line == line &&
                    strstr(diags.items[i].message, want))
                        found = true;
        if (!tap_ok(!u && found, "error at line %u: %s", line, want))
                for (size_t i = 0; i < diags.n; i++)
                        printf("#   %u: %s\n", diags.items[i].line, diags.items[i].message);
        unit_free(u);
        diag_list_done(&diags);
}

static void test_values(void) {
        static const char text[] = "[Service]\n"
                                   "ExecStart=/bin/true\n"
                                   "CPUWeight=700\n"
                                   "CPUQuota=150%\n"
                                   "CPUQuotaPeriodSec=10ms\n"
                                   "AllowedCPUs=0-2 5\n"
                                   "AllowedCPUs=7\n"
                                   "MemoryMax=32M\n"
                                   "MemoryHigh=50%\n"
                                   "MemorySwapMax=infinity\n"
                                   "TasksMax=64\n"
                                   "IOWeight=300\n"
                                   "Nice=-5\n"
                                   "CPUSchedulingPolicy=fifo\n"
                                   "CPUSchedulingPriority=20\n"
                                   "CPUSchedulingResetOnFork=yes\n"
                                   "OOMScoreAdjust=-900\n"
                                   "ResourceEnforcement=required\n";
        diag_list diags = {};
        _cleanup_unit_free_ unit *u = load_text(text, &diags);
        const unit_resource *r;
        char buf[64];
        int prio = 0;

        if (!tap_ok(u != NULL, "a unit with every resource directive loads")) {
                diag_list_print(&diags, stdout);
                diag_list_done(&diags);
                return;
        }
        diag_list_done(&diags);
        r = u->resource;
        tap_inteq(r->cpu_weight, 700, "CPUWeight=700");
        tap_inteq(r->cpu_quota_per_sec, 1500000, "CPUQuota=150%% is 1.5 s of CPU per second");
        tap_inteq(r->cpu_quota_period, 10000, "CPUQuotaPeriodSec=10ms");
        cpu_set_bits_format(&r->allowed_cpus, buf, sizeof(buf));
        tap_streq(buf, "0-2,5,7", "AllowedCPUs= assignments add up");
        tap_inteq(r->memory_max.value, 32 << 20, "MemoryMax=32M");
        tap_inteq(r->memory_high.permyriad, 5000, "MemoryHigh=50%% as 5000/10000");
        tap_inteq(scaled_limit_resolve(&r->memory_high, 1000000), 500000,
                  "MemoryHigh=50%% of 1000000 bytes");
        tap_inteq(r->memory_swap_max.value == CGROUP_LIMIT_MAX, 1, "MemorySwapMax=infinity");
        tap_inteq(r->tasks_max.value, 64, "TasksMax=64");
        tap_inteq(r->io_weight, 300, "IOWeight=300");
        tap_inteq(r->nice_set && r->nice == -5, 1, "Nice=-5");
        tap_inteq(unit_resource_sched_policy(r, &prio), SCHED_FIFO, "CPUSchedulingPolicy=fifo");
        tap_inteq(prio, 20, "CPUSchedulingPriority=20");
        tap_inteq(r->sched_reset_on_fork, 1, "CPUSchedulingResetOnFork=yes");
        tap_inteq(r->oom_score_adjust_set && r->oom_score_adjust == -900, 1, "OOMScoreAdjust=-900");
        tap_inteq(r->enforcement, ENFORCEMENT_REQUIRED, "ResourceEnforcement=required");
}

static void test_resets(void) {
        static const char text[] = "[Service]\n"
                                   "ExecStart=/bin/true\n"
                                   "CPUWeight=idle\n"
                                   "AllowedCPUs=1\n"
                                   "AllowedCPUs=\n"
                                   "Nice=3\n"
                                   "Nice=\n"
                                   "TasksMax=10%\n"
                                   "MemoryMax=1G\n"
                                   "MemoryMax=\n";
        diag_list diags = {};
        _cleanup_unit_free_ unit *u = load_text(text, &diags);

        diag_list_done(&diags);
        if (!tap_ok(u != NULL, "a unit with resets loads"))
                return;
        tap_inteq(u->resource->cpu_weight, CPU_WEIGHT_IDLE, "CPUWeight=idle");
        tap_inteq(unit_resource_cpu_weight(u->resource), CPU_WEIGHT_IDLE,
                  "CPUWeight=idle maps to cpu.idle");
        tap_inteq(cpu_set_bits_is_empty(&u->resource->allowed_cpus), 1, "AllowedCPUs= resets");
        tap_inteq(u->resource->nice_set, 0, "Nice= resets");
        tap_inteq(u->resource->memory_max.value, CGROUP_LIMIT_UNSET, "MemoryMax= resets");
        tap_inteq(scaled_limit_resolve(&u->resource->tasks_max, 32768), 3276,
                  "TasksMax=10%% of a 32768 pid space");
}

static void test_defaults(void) {
        static const char text[] = "[Service]\nExecStart=/bin/true\n";
        diag_list diags = {};
        _cleanup_unit_free_ unit *u = load_text(text, &diags);
        int prio;

        diag_list_done(&diags);
        if (!tap_ok(u != NULL, "a plain unit loads"))
                return;
        tap_inteq(u->resource->cpu_policy, CPU_POLICY_WEIGHTED, "CPUPolicy= defaults to weighted");
        tap_inteq(unit_resource_cpu_weight(u->resource), CGROUP_WEIGHT_UNSET,
                  "no CPUWeight=: the kernel's default");
        tap_inteq(unit_resource_sched_policy(u->resource, &prio), SCHED_POLICY_UNSET,
                  "no scheduling change by default");
        tap_inteq(u->resource->tasks_max.value, CGROUP_LIMIT_UNSET,
                  "TasksMax= unset (the 15%% default applies in the cgroup)");
        tap_ok(unit_resource_group(u->resource) == NULL, "a weighted service has no tier group");
        tap_ok(u->resource == &unit_resource_defaults,
               "a unit without settings shares the defaults");
}

/* Live changes go to a shallow copy: the loaded unit keeps its block until they are taken. */
static void test_live_changes(void) {
        static const char text[] = "[Service]\nExecStart=/bin/true\n";
        diag_list diags = {};
        _cleanup_unit_free_ unit *u = load_text(text, &diags);
        _cleanup_free_ char *why = NULL;
        const unit_resource *first;
        unit copy;

        diag_list_done(&diags);
        if (!tap_ok(u != NULL, "a plain unit loads"))
                return;
        copy = *u;
        tap_inteq(unit_set_property(&copy, u, "CPUWeight", "50", &why), 0, "CPUWeight=50 live");
        tap_ok(copy.resource != u->resource && u->resource == &unit_resource_defaults,
               "the copy has a block of its own, the unit still the defaults");
        unit_changes_drop(&copy, u);
        tap_ok(copy.resource == u->resource, "dropped changes leave the unit's block");

        tap_inteq(unit_set_property(&copy, u, "CPUWeight", "50", &why), 0, "CPUWeight=50 again");
        first = copy.resource;
        tap_inteq(unit_set_property(&copy, u, "MemoryMax", "10M", &why), 0, "MemoryMax=10M");
        tap_ok(copy.resource == first, "a second change writes the copy's own block");
        unit_changes_take(u, &copy);
        tap_inteq(u->resource->cpu_weight, 50, "taken: CPUWeight=50");
        tap_inteq(u->resource->memory_max.value, 10 * 1024 * 1024, "taken: MemoryMax=10M");

        copy = *u;
        tap_inteq(unit_set_property(&copy, u, "CPUWeight", "80", &why), 0, "CPUWeight=80 live");
        tap_ok(copy.resource != u->resource, "a block the copy shares is copied before a write");
        tap_inteq(u->resource->cpu_weight, 50, "the unit keeps CPUWeight=50");
        tap_inteq(unit_set_property(&copy, u, "CPUWeight", "x", &why), -EINVAL,
                  "a bad value is refused");
        unit_changes_drop(&copy, u);
        tap_inteq(u->resource->cpu_weight, 50, "after a dropped change too");
        /* The backoff settings live in a block of their own too (units/unit.c). */
        copy = *u;
        tap_inteq(unit_set_property(&copy, u, "RestartSteps", "3", &why), 0, "RestartSteps=3 live");
        tap_ok(copy.backoff != u->backoff && u->backoff == &unit_backoff_defaults &&
                       copy.backoff->restart_steps == 3 &&
                       copy.backoff->restart_backoff_reset == USEC_PER_MINUTE,
               "the copy has a backoff block of its own, the unit still the defaults");
        unit_changes_drop(&copy, u);
        tap_ok(copy.backoff == u->backoff, "dropped: the unit's backoff block again");
        tap_inteq(unit_set_property(&copy, u, "RestartMaxDelaySec", "1min", &why), 0,
                  "RestartMaxDelaySec=1min live");
        unit_changes_take(u, &copy);
        tap_inteq(u->backoff->restart_max_delay, USEC_PER_MINUTE, "taken: RestartMaxDelaySec=1min");
        copy = *u;
        tap_inteq(unit_set_property(&copy, u, "RestartBackoffResetSec", "5min", &why), 0,
                  "RestartBackoffResetSec=5min live");
        tap_ok(copy.backoff != u->backoff && u->backoff->restart_backoff_reset == USEC_PER_MINUTE,
               "a backoff block the copy shares is copied before a write");
        unit_changes_take(u, &copy);
        tap_ok(u->backoff->restart_backoff_reset == 5 * USEC_PER_MINUTE &&
                       u->backoff->restart_max_delay == USEC_PER_MINUTE,
               "taken: RestartBackoffResetSec=5min, RestartMaxDelaySec= kept");
}

static void test_tiers(void) {
        static const struct {
                const char *priority;
                uint64_t weight;
                const char *group;
                int sched;
        } want[] = {
                { "realtime", 10000, NULL, SCHED_RR },
                { "high", 1000, NULL, SCHED_POLICY_UNSET },
                { "normal", 100, NULL, SCHED_POLICY_UNSET },
                { "low", 100, "low.tier", SCHED_POLICY_UNSET },
                { "idle", 100, "low.tier/idle.tier", SCHED_POLICY_UNSET },
        };

        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                char text[256];
                diag_list diags = {};
                unit *u;
                int prio = -1, pol;

                snprintf(text, sizeof(text),
                         "[Service]\nExecStart=/bin/true\nCPUPolicy=priority\nCPUPriority=%s\n",
                         want[i].priority);
                u = load_text(text, &diags);
                diag_list_done(&diags);
                if (!tap_ok(u != NULL, "CPUPriority=%s loads", want[i].priority))
                        continue;
                tap_inteq(unit_resource_cpu_weight(u->resource), want[i].weight,
                          "CPUPriority=%s: cpu.weight", want[i].priority);
                tap_streq(unit_resource_group(u->resource), want[i].group,
                          "CPUPriority=%s: its group", want[i].priority);
                pol = unit_resource_sched_policy(u->resource, &prio);
                tap_inteq(pol, want[i].sched, "CPUPriority=%s: scheduling policy",
                          want[i].priority);
                if (pol == SCHED_RR)
                        tap_inteq(prio, 10, "the realtime tier runs SCHED_RR at priority 10");
                unit_free(u);
        }
}

static void test_errors(void) {
        expect_error("[Service]\nExecStart=/bin/true\nCPUWeight=0\n", 3, "from 1 to 10000");
        expect_error("[Service]\nExecStart=/bin/true\nCPUWeight=10001\n", 3, "from 1 to 10000");
        expect_error("[Service]\nExecStart=/bin/true\nIOWeight=idle\n", 3, "from 1 to 10000");
        expect_error("[Service]\nExecStart=/bin/true\nCPUQuota=20\n", 3, "percentage");
        expect_error("[Service]\nExecStart=/bin/true\nCPUQuota=0%\n", 3, "never");
        expect_error("[Service]\nExecStart=/bin/true\nCPUQuotaPeriodSec=2s\n", 3, "1ms to 1s");
        expect_error("[Service]\nExecStart=/bin/true\nAllowedCPUs=3-1\n", 3, "backwards");
        expect_error("[Service]\nExecStart=/bin/true\nAllowedCPUs=1024\n", 3, "up to 1023");
        expect_error("[Service]\nExecStart=/bin/true\nAllowedCPUs=a\n", 3, "CPU numbers");
        expect_error("[Service]\nExecStart=/bin/true\nMemoryMax=lots\n", 3, "size");
        expect_error("[Service]\nExecStart=/bin/true\nMemoryHigh=101%\n", 3, "percentage");
        expect_error("[Service]\nExecStart=/bin/true\nTasksMax=0\n", 3, "0 tasks");
        expect_error("[Service]\nExecStart=/bin/true\nNice=20\n", 3, "-20 to 19");
        expect_error("[Service]\nExecStart=/bin/true\nOOMScoreAdjust=-1001\n", 3, "-1000 to 1000");
        expect_error("[Service]\nExecStart=/bin/true\nCPUSchedulingPolicy=deadline\n", 3,
                     "fifo or rr");
        expect_error("[Service]\nExecStart=/bin/true\nCPUSchedulingPriority=100\n", 3, "0 to 99");
        expect_error("[Service]\nExecStart=/bin/true\nCPUPolicy=fair\n", 3, "weighted or priority");
        expect_error("[Service]\nExecStart=/bin/true\nCPUPolicy=priority\nCPUPriority=top\n", 4,
                     "realtime, high, normal, low or idle");
        expect_error("[Service]\nExecStart=/bin/true\nResourceEnforcement=maybe\n", 3,
                     "warn or required");
        /* Whole-unit checks point at the line that set the offending directive. */
        expect_error("[Service]\nExecStart=/bin/true\nCPUPolicy=priority\nCPUWeight=500\n", 4,
                     "cannot be combined with CPUPolicy=priority");
        expect_error("[Service]\nExecStart=/bin/true\nCPUPriority=high\n", 3,
                     "needs CPUPolicy=priority");
        expect_error("[Service]\nExecStart=/bin/true\nCPUExclusive=yes\n", 3, "needs AllowedCPUs=");
        expect_error("[Service]\nExecStart=/bin/true\nCPUSchedulingPolicy=batch\n"
                     "CPUSchedulingPriority=5\n",
                     4, "needs CPUSchedulingPolicy=fifo or rr");
        expect_error("[Service]\nExecStart=/bin/true\nCPUSchedulingPolicy=rr\n"
                     "CPUSchedulingPriority=0\n",
                     4, "fifo and rr take 1 to 99");
        expect_error("[Service]\nExecStart=/bin/true\nCPUWeight=idle\nCPUSchedulingPolicy=rr\n", 3,
                     "contradicts");
}

static void test_policy(void) {
        static const char policy[] = "[Service]\n"
                                     "CPUPolicy=priority\n"
                                     "CPUPriority=high\n"
                                     "MemoryMax=512M\n"
                                     "TasksMax=256\n"
                                     "OOMScoreAdjust=-500\n";
        diag_list diags = {};

        tap_inteq(policy_check_buffer("p.policy", policy, sizeof(policy) - 1, &diags), 0,
                  "resource directives are valid in a policy");
        diag_list_print(&diags, stdout);
        diag_list_done(&diags);
}

static void test_cpu_sets(void) {
        cpu_set_bits s = {};
        const char *reason = NULL;
        char buf[32], small[4];

        tap_inteq(cpu_set_bits_parse("0,1,2,4-6 9", &s, &reason), 0, "a CPU list parses");
        cpu_set_bits_format(&s, buf, sizeof(buf));
        tap_streq(buf, "0-2,4-6,9", "and formats as the kernel writes it");
        tap_inteq(cpu_set_bits_format(&s, small, sizeof(small)), -ENOBUFS,
                  "a too small buffer is -ENOBUFS");
        tap_inteq(cpu_set_bits_parse("1-", &s, &reason), -EINVAL, "\"1-\" is refused");
        tap_inteq(cpu_set_bits_parse("", &s, &reason), -EINVAL, "an empty list is refused");
        tap_inteq(cpu_set_bits_parse("99999999999999999999", &s, &reason), -ERANGE,
                  "a huge CPU number is -ERANGE");
}

static void test_warnings(void) {
        static const char text[] = "[Service]\n"
                                   "ExecStart=/bin/true\n"
                                   "CPUWeight=200\n"
                                   "MemoryMax=32M\n"
                                   "TasksMax=64\n"
                                   "Nice=5\n";
        diag_list diags = {};
        _cleanup_unit_free_ unit *u = load_text(text, &diags), *plain = NULL;
        _cleanup_strv_free_ char **w = NULL;

        diag_list_done(&diags);
        if (!tap_ok(u != NULL, "unit for resource_warnings() loads"))
                return;
        /* This process set up no cgroup tree: nothing is enforced, and each setting says so. */
        tap_inteq(resource_warnings(u, &w), 0, "resource_warnings() succeeds");
        tap_inteq(strv_length(w), 3, "one line per cgroup setting (Nice= is per process)");
        tap_ok(strv_contains(w, "CPUWeight= not enforced: no cgroup v2 hierarchy"),
               "CPUWeight= is reported");
        tap_ok(strv_contains(w, "MemoryMax= not enforced: no cgroup v2 hierarchy"),
               "MemoryMax= is reported");
        {
                char first[64] = "untouched";

                tap_inteq(resource_unenforced(u, first, sizeof(first)), strv_length(w),
                          "resource_unenforced() counts the same lines");
                tap_streq(first, w ? w[0] : "", "and gives the first one");
        }
        w = strv_free(w);
        plain = load_text("[Service]\nExecStart=/bin/true\n", &diags);
        diag_list_done(&diags);
        tap_ok(plain && resource_warnings(plain, &w) == 0 && !w,
               "a unit that sets nothing has no warning");
        {
                char first[64] = "untouched";

                tap_ok(plain && resource_unenforced(plain, first, sizeof(first)) == 0 &&
                               streq(first, "untouched"),
                       "resource_unenforced(): none, and the buffer is left alone");
        }
}

/* Runs resource_apply_child() in a child and reports what it then has. */
static void test_apply_child(void) {
        static const char text[] = "[Service]\n"
                                   "ExecStart=/bin/true\n"
                                   "Nice=7\n"
                                   "OOMScoreAdjust=321\n";
        diag_list diags = {};
        _cleanup_unit_free_ unit *u = load_text(text, &diags), *rt = NULL;
        int fds[2], status;
        char buf[128] = "";
        pid_t pid;

        diag_list_done(&diags);
        if (!tap_ok(u != NULL && pipe(fds) == 0, "unit for resource_apply_child() loads"))
                return;
        pid = fork();
        if (pid == 0) {
                char oom[16] = "";
                FILE *f;
                int r = resource_apply_child(u->resource);

                f = fopen("/proc/self/oom_score_adj", "re");
                if (f && fgets(oom, sizeof(oom), f))
                        oom[strcspn(oom, "\n")] = 0;
                dprintf(fds[1], "%d %d %s", r, getpriority(PRIO_PROCESS, 0), oom);
                _exit(0);
        }
        close(fds[1]);
        (void) !read(fds[0], buf, sizeof(buf) - 1);
        close(fds[0]);
        waitpid(pid, &status, 0);
        tap_streq(buf, "0 7 321", "the child gets Nice=7 and OOMScoreAdjust=321");

        /* The realtime tier: SCHED_RR and the RLIMIT_RTTIME cap (needs CAP_SYS_NICE). */
        if (geteuid() != 0) {
                tap_ok(1, "# SKIP the realtime tier needs root");
                return;
        }
        rt = load_text("[Service]\nExecStart=/bin/true\nCPUPolicy=priority\nCPUPriority=realtime\n",
                       &diags);
        diag_list_done(&diags);
        if (!tap_ok(rt != NULL && pipe(fds) == 0, "a realtime unit loads"))
                return;
        pid = fork();
        if (pid == 0) {
                struct sched_param sp = {};
                struct rlimit rl = {};
                int r = resource_apply_child(rt->resource);

                sched_getparam(0, &sp);
                getrlimit(RLIMIT_RTTIME, &rl);
                dprintf(fds[1], "%d %d %d %llu", r, sched_getscheduler(0), sp.sched_priority,
                        (unsigned long long) rl.rlim_max);
                _exit(0);
        }
        close(fds[1]);
        memset(buf, 0, sizeof(buf));
        (void) !read(fds[0], buf, sizeof(buf) - 1);
        close(fds[0]);
        waitpid(pid, &status, 0);
        {
                char want[64];

                snprintf(want, sizeof(want), "0 %d 10 %llu", SCHED_RR,
                         (unsigned long long) RTTIME_CAP_DEFAULT_USEC);
                tap_streq(buf, want, "the realtime tier: SCHED_RR 10 with RLIMIT_RTTIME capped");
        }
}

int main(void) {
        test_values();
        test_resets();
        test_defaults();
        test_live_changes();
        test_tiers();
        test_errors();
        test_policy();
        test_cpu_sets();
        test_warnings();
        test_apply_child();
        return tap_done();
}
