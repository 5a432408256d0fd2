/* The timing loop of tests/bench/container: starts the payload N times and prints, per
 * start, "<latency> <request> <cycle>" in ns: latency = the payload's own CLOCK_MONOTONIC
 * stamp (read from FIFO) minus t0, taken just before the start request; request = t0 to
 * the end of the request (the StartService reply, or posix_spawn's return); cycle = t0 to
 * the moment the start is over (vigil says the service is inactive again, or the runtime
 * process was reaped). A start that gives no stamp within 10 s prints "lost".
 *
 *   ctr-driver spawn FIFO N WARMUP GAP_MS [--uid UID] -- ARGV...
 *       posix_spawn ARGV (every "{i}" in it replaced by the start's number), wait for the
 *       stamp, reap. --uid: first drop to UID/GID UID (no groups), for a runtime that
 *       should run unprivileged.
 *   ctr-driver vigil FIFO N WARMUP GAP_MS SOCKET UNIT
 *       one peer-to-peer sd-bus connection to vigil's private socket; per start,
 *       org.vigil1.Manager.StartService(UNIT), wait for the stamp and for the
 *       ServiceStateChanged signal saying UNIT is inactive (or failed) again. Before each
 *       start, untimed, StopService(UNIT): see run_vigil().
 *
 * WARMUP starts come first and are not printed. GAP_MS is an idle pause between starts
 * (the same for every runtime) so that one start's teardown does not overlap the next. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#define TIMEOUT_NS (10LL * 1000000000LL)
#define ARGS_MAX 256
#define ARG_LEN 4096

extern char **environ;

static int64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what, int err) {
        fprintf(stderr, "ctr-driver: %s: %s\n", what, strerror(err));
        exit(1);
}

/* Drops whatever an earlier start left in the FIFO. */
static void drain(int fifo) {
        char buf[256];

        while (read(fifo, buf, sizeof(buf)) > 0)
                ;
}

/* One stamp from the FIFO if a whole line is there: 1 and *ret, 0 if none yet. */
static int read_stamp(int fifo, int64_t *ret) {
        static char line[64];
        static size_t len;
        ssize_t n;

        n = read(fifo, line + len, sizeof(line) - 1 - len);
        if (n <= 0)
                return 0;
        len += (size_t) n;
        line[len] = 0;
        if (!strchr(line, '\n')) {
                if (len >= sizeof(line) - 1)
                        len = 0;
                return 0;
        }
        *ret = strtoll(line, NULL, 10);
        len = 0;
        return 1;
}

static void sleep_ms(long ms) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static void report(bool print, int64_t stamp, int64_t t0, int64_t request, int64_t cycle) {
        if (!print)
                return;
        if (stamp < 0)
                printf("lost\n");
        else
                printf("%lld %lld %lld\n", (long long) (stamp - t0), (long long) request,
                       (long long) cycle);
        fflush(stdout);
}

/* ---- spawn ---- */

static int substitute(char **argv, int n, long i, char **out, char *storage) {
        for (int k = 0; k < n; k++) {
                char *dst = storage + (size_t) k * ARG_LEN, *p = strstr(argv[k], "{i}");

                if (!p) {
                        out[k] = argv[k];
                        continue;
                }
                if (snprintf(dst, ARG_LEN, "%.*s%ld%s", (int) (p - argv[k]), argv[k], i, p + 3) >=
                    ARG_LEN)
                        return -E2BIG;
                out[k] = dst;
        }
        out[n] = NULL;
        return 0;
}

static int run_spawn(int fifo, long total, long warmup, long gap_ms, char **argv, int argc) {
        static char storage[ARGS_MAX * ARG_LEN];
        char *args[ARGS_MAX + 1];
        posix_spawn_file_actions_t fa;
        int r;

        if (argc > ARGS_MAX)
                die("too many arguments", E2BIG);
        /* The runtimes' own output goes to our stderr: stdout carries the figures. */
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
        for (long i = 0; i < total; i++) {
                int64_t t0, request, stamp = -1, cycle;
                pid_t pid;
                int status;

                r = substitute(argv, argc, i, args, storage);
                if (r < 0)
                        die("argument too long", -r);
                drain(fifo);
                t0 = now_ns();
                r = posix_spawn(&pid, args[0], &fa, NULL, args, environ);
                request = now_ns() - t0;
                if (r != 0)
                        die(args[0], r);
                for (;;) {
                        struct pollfd p = { .fd = fifo, .events = POLLIN };
                        int64_t left = t0 + TIMEOUT_NS - now_ns();

                        if (read_stamp(fifo, &stamp) || left <= 0)
                                break;
                        /* A runtime that fails exits without a stamp: stop waiting then. */
                        if (waitpid(pid, &status, WNOHANG) == pid) {
                                if (!read_stamp(fifo, &stamp))
                                        fprintf(stderr,
                                                "ctr-driver: %s exited with status %d "
                                                "without a stamp\n",
                                                args[0], status);
                                pid = -1;
                                break;
                        }
                        (void) poll(&p, 1, left > 100000000 ? 100 : (int) (left / 1000000) + 1);
                }
                if (pid > 0) {
                        if (stamp < 0)
                                kill(pid, SIGKILL);
                        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                                ;
                }
                cycle = now_ns() - t0;
                if (pid > 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
                        fprintf(stderr, "ctr-driver: %s: status %d\n", args[0], status);
                report(i >= warmup, stamp, t0, request, cycle);
                sleep_ms(gap_ms);
        }
        posix_spawn_file_actions_destroy(&fa);
        return 0;
}

/* ---- vigil ---- */

typedef struct watch {
        const char *unit;
        bool done;
        bool failed;
} watch;

static int on_state(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        watch *w = userdata;
        const char *name, *state, *sub, *result;

        (void) error;
        if (sd_bus_message_read(m, "ssss", &name, &state, &sub, &result) < 0)
                return 0;
        if (strcmp(name, w->unit) != 0)
                return 0;
        if (strcmp(state, "inactive") == 0 || strcmp(state, "failed") == 0) {
                w->done = true;
                w->failed = strcmp(state, "failed") == 0;
        }
        return 0;
}

/* Processes the bus and the FIFO until the stamp is in (if wanted) and the unit is
 * inactive again, or until deadline. */
static void vigil_wait(sd_bus *bus, int fifo, watch *w, int64_t *stamp, int64_t deadline) {
        for (;;) {
                struct pollfd p[2] = { { .fd = fifo, .events = POLLIN },
                                       { .fd = sd_bus_get_fd(bus) } };
                int64_t left;
                int r;

                while ((r = sd_bus_process(bus, NULL)) > 0)
                        ;
                if (r < 0)
                        die("talking to vigil", -r);
                if (*stamp < 0)
                        (void) read_stamp(fifo, stamp);
                left = deadline - now_ns();
                if ((*stamp >= 0 && w->done) || left <= 0)
                        return;
                p[1].events = (short) sd_bus_get_events(bus);
                (void) poll(p, 2, left > 100000000 ? 100 : (int) (left / 1000000) + 1);
        }
}

static int run_vigil(int fifo, long total, long warmup, long gap_ms, const char *socket,
                     const char *unit) {
        sd_bus *bus = NULL;
        char address[4200];
        watch w = { .unit = unit };
        int r;

        snprintf(address, sizeof(address), "unix:path=%s", socket);
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        /* Peer to peer (no bus daemon), anonymous as vigilctl: vigil runs in another PID
         * namespace, where EXTERNAL cannot be checked. */
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, false);
        if (r >= 0)
                r = sd_bus_set_anonymous(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, NULL, "/org/vigil1", "org.vigil1.Manager",
                                        "ServiceStateChanged", on_state, &w);
        if (r < 0)
                die(address, -r);

        for (long i = 0; i < total; i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                int64_t t0, request, stamp = -1, cycle, idle;

                /* Untimed: vigil's StartService of a oneshot that ran to completion is a
                 * no-op while its target is still "started"; StopService resets the target
                 * (the service is inactive already, so nothing else happens). */
                r = sd_bus_call_method(bus, "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                                       "StopService", &e, NULL, "s", unit);
                if (r < 0) {
                        fprintf(stderr, "ctr-driver: StopService(%s): %s\n", unit,
                                e.message ? e.message : strerror(-r));
                        exit(1);
                }
                sd_bus_error_free(&e);
                while ((r = sd_bus_process(bus, NULL)) > 0)
                        ;
                drain(fifo);
                w.done = w.failed = false;
                t0 = now_ns();
                r = sd_bus_call_method(bus, "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                                       "StartService", &e, NULL, "s", unit);
                request = now_ns() - t0;
                if (r < 0) {
                        fprintf(stderr, "ctr-driver: StartService(%s): %s\n", unit,
                                e.message ? e.message : strerror(-r));
                        exit(1);
                }
                sd_bus_error_free(&e);
                vigil_wait(bus, fifo, &w, &stamp, t0 + TIMEOUT_NS);
                cycle = now_ns() - t0;
                if (w.failed)
                        fprintf(stderr, "ctr-driver: %s failed\n", unit);
                if (!w.done) {
                        fprintf(stderr, "ctr-driver: %s still not inactive after 10 s\n", unit);
                        exit(1);
                }
                report(i >= warmup, stamp, t0, request, cycle);
                /* The pause, serving the bus meanwhile (late signals are dropped here). */
                idle = -1;
                vigil_wait(bus, fifo, &w, &idle, now_ns() + gap_ms * 1000000LL);
                drain(fifo);
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}

static void usage(void) {
        fprintf(stderr, "usage: ctr-driver spawn FIFO N WARMUP GAP_MS [--uid UID] -- ARGV...\n"
                        "       ctr-driver vigil FIFO N WARMUP GAP_MS SOCKET UNIT\n");
        exit(2);
}

int main(int argc, char **argv) {
        long n, warmup, gap;
        int fifo, a = 6;

        if (argc < 7)
                usage();
        n = strtol(argv[3], NULL, 10);
        warmup = strtol(argv[4], NULL, 10);
        gap = strtol(argv[5], NULL, 10);
        if (n < 0 || warmup < 0 || gap < 0 || n > 1000000 || warmup > 1000000 || gap > 60000)
                usage();
        /* Read and write: there is always a reader, so the payload's open never blocks,
         * and never an EOF. */
        fifo = open(argv[2], O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fifo < 0)
                die(argv[2], errno);

        if (strcmp(argv[1], "vigil") == 0) {
                if (argc != 8)
                        usage();
                return run_vigil(fifo, warmup + n, warmup, gap, argv[6], argv[7]);
        }
        if (strcmp(argv[1], "spawn") != 0)
                usage();
        if (strcmp(argv[a], "--uid") == 0) {
                uid_t uid;

                if (a + 1 >= argc)
                        usage();
                uid = (uid_t) strtoul(argv[a + 1], NULL, 10);
                if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
                    setresuid(uid, uid, uid) < 0)
                        die("dropping to --uid", errno);
                a += 2;
        }
        if (a >= argc || strcmp(argv[a], "--") != 0 || a + 1 >= argc)
                usage();
        return run_spawn(fifo, warmup + n, warmup, gap, argv + a + 1, argc - a - 1);
}
