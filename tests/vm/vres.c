/* Workloads for the resource-control tests in the appliance (static, no libraries):
 *   vres hog [N]                  burns CPU forever in N (1) processes
 *   vres tick TICKS OUT [HZ] [MS] a HZ (64) loop doing MS (2) ms of CPU work per tick; writes
 *                                 each tick's completion time after its deadline (µs) to OUT
 *   vres forkbomb                 forks without end (refuses unless its cgroup has pids.max)
 *   vres alloc MB                 allocates and touches MB MiB, then sleeps
 *   vres timeit CMD ARG...        runs CMD and prints its wall time in ms
 * The two destructive ones check that a cgroup limit confines them first. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static _Noreturn void hog(int argc, char **argv) {
        long n = argc > 2 ? strtol(argv[2], NULL, 10) : 1;
        volatile uint64_t x = 0;

        /* One process can use one CPU: a service that should be able to take them all
         * needs as many. */
        for (long i = 1; i < n && i < 64; i++)
                if (fork() == 0)
                        break;
        for (;;)
                x++;
}

/* Spins until this thread has used ns of CPU time: preemption delays it, never shortens it. */
static void work(uint64_t ns) {
        uint64_t end = now_ns(CLOCK_THREAD_CPUTIME_ID) + ns;
        volatile uint64_t x = 0;

        while (now_ns(CLOCK_THREAD_CPUTIME_ID) < end)
                for (int i = 0; i < 1000; i++)
                        x++;
}

static int tick(int argc, char **argv) {
        long ticks = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
        long hz = argc > 4 ? strtol(argv[4], NULL, 10) : 64;
        long ms = argc > 5 ? strtol(argv[5], NULL, 10) : 2;
        uint64_t period, next, *late;
        FILE *f;

        if (ticks <= 0 || ticks > 1000000 || argc < 4 || hz <= 0 || hz > 1000 || ms < 0 ||
            ms > 1000) {
                fprintf(stderr, "usage: vres tick TICKS OUT [HZ] [MS]\n");
                return 2;
        }
        late = calloc((size_t) ticks, sizeof(*late));
        if (!late)
                return 1;
        period = 1000000000u / (uint64_t) hz;
        next = now_ns(CLOCK_MONOTONIC) + period;
        for (long i = 0; i < ticks; i++) {
                struct timespec ts = { .tv_sec = (time_t) (next / 1000000000u),
                                       .tv_nsec = (long) (next % 1000000000u) };

                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                        ;
                work((uint64_t) ms * 1000000u);
                late[i] = (now_ns(CLOCK_MONOTONIC) - next) / 1000u;
                next += period;
                /* A tick that overran its successor: the next one starts at once. */
        }
        f = fopen(argv[3], "we");
        if (!f)
                return 1;
        for (long i = 0; i < ticks; i++)
                fprintf(f, "%llu\n", (unsigned long long) late[i]);
        if (fclose(f) != 0)
                return 1;
        /* Done: stay, so that a Restart= policy does not run the loop again. */
        for (;;)
                pause();
}

/* The limit file of our own cgroup (v2), or -1 when there is none or it says "max". */
static long long own_cgroup_limit(const char *file) {
        char line[512], path[1024];
        long long v = -1;
        FILE *f = fopen("/proc/self/cgroup", "re");

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "0::", 3) == 0) {
                        line[strcspn(line, "\n")] = 0;
                        snprintf(path, sizeof(path), "/sys/fs/cgroup%s/%s", line + 3, file);
                }
        fclose(f);
        f = fopen(path, "re");
        if (!f)
                return -1;
        if (fscanf(f, "%lld", &v) != 1)
                v = -1;
        fclose(f);
        return v;
}

static int forkbomb(void) {
        long long max = own_cgroup_limit("pids.max");

        if (max <= 0 || max > 4096) {
                fprintf(stderr, "vres forkbomb: refusing: no pids.max limit on this cgroup\n");
                return 2;
        }
        printf("forking without end under pids.max=%lld\n", max);
        fflush(stdout);
        for (;;)
                (void) fork();
}

static int alloc(int argc, char **argv) {
        long mb = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
        long long max = own_cgroup_limit("memory.max");

        if (mb <= 0 || mb > 4096)
                return 2;
        if (max <= 0 || max >= (long long) mb << 20) {
                fprintf(stderr, "vres alloc: refusing: no memory.max below %ld MiB\n", mb);
                return 2;
        }
        printf("allocating %ld MiB under memory.max=%lld\n", mb, max);
        fflush(stdout);
        for (long i = 0; i < mb; i++) {
                char *p = malloc(1 << 20);

                if (!p)
                        return 1;
                memset(p, 0x5a, 1 << 20);
        }
        printf("allocated %ld MiB: the limit did not hold\n", mb);
        fflush(stdout);
        for (;;)
                pause();
}

static int timeit(int argc, char **argv) {
        uint64_t t0 = now_ns(CLOCK_MONOTONIC);
        int status;
        pid_t pid;

        if (argc < 3)
                return 2;
        pid = fork();
        if (pid < 0)
                return 1;
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);

                if (null >= 0)
                        dup2(null, 1);
                execvp(argv[2], argv + 2);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return 1;
        printf("%.1f ms, exit %d\n", (double) (now_ns(CLOCK_MONOTONIC) - t0) / 1e6,
               WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        return 0;
}

int main(int argc, char **argv) {
        const char *cmd = argc > 1 ? argv[1] : "";

        if (strcmp(cmd, "hog") == 0)
                hog(argc, argv);
        if (strcmp(cmd, "tick") == 0)
                return tick(argc, argv);
        if (strcmp(cmd, "forkbomb") == 0)
                return forkbomb();
        if (strcmp(cmd, "alloc") == 0)
                return alloc(argc, argv);
        if (strcmp(cmd, "timeit") == 0)
                return timeit(argc, argv);
        fprintf(stderr, "usage: vres hog|tick|forkbomb|alloc|timeit ...\n");
        return 2;
}
