/* The client of tests/bench/bus: round trips over one persistent connection, one line of
 * nanoseconds per measured call on stdout.
 *
 *   bus-rtt private ADDRESS CALL N WARMUP   peer to peer (vigil's private socket)
 *   bus-rtt bus ADDRESS CALL N WARMUP       a bus client of the dbus-daemon at ADDRESS,
 *                                           calling org.vigil1
 *   bus-rtt echo - - N WARMUP               the floor: 128 bytes to a forked echo process
 *                                           over a unix socketpair and back
 *   bus-rtt spawn - - N WARMUP PROG [ARG...]  wall time of fork+exec+wait of PROG
 *
 * CALL is "list" (org.vigil1.Manager.ListServices) or "get:NAME" (Properties.Get of the State
 * of service NAME). WARMUP calls run first and are not printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#define ECHO_SIZE 128
#define MAX_CALLS 10000000L

extern char **environ;

static int64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long parse_count(const char *s, const char *what) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < 0 || v > MAX_CALLS) {
                fprintf(stderr, "bus-rtt: invalid %s: %s\n", what, s);
                exit(2);
        }
        return v;
}

/* The object path of a service: "/org/vigil1/service/" + the name with every byte outside
 * [A-Za-z0-9] as _XX, as sd_bus_path_encode() does. */
static char *service_path(const char *name) {
        char *path = NULL;
        int r = sd_bus_path_encode("/org/vigil1/service", name, &path);

        if (r < 0) {
                fprintf(stderr, "bus-rtt: cannot encode %s: %s\n", name, strerror(-r));
                exit(2);
        }
        return path;
}

static int one_call(sd_bus *bus, const char *dest, const char *call, const char *path, int check) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r;

        if (strcmp(call, "list") == 0)
                r = sd_bus_call_method(bus, dest, "/org/vigil1", "org.vigil1.Manager",
                                       "ListServices", &error, &reply, NULL);
        else
                r = sd_bus_call_method(bus, dest, path, "org.freedesktop.DBus.Properties", "Get",
                                       &error, &reply, "ss", "org.vigil1.Service", "State");
        if (r < 0) {
                fprintf(stderr, "bus-rtt: %s failed: %s\n", call,
                        error.message ? error.message : strerror(-r));
                sd_bus_error_free(&error);
                return r;
        }
        if (check) {
                const char *sig = sd_bus_message_get_signature(reply, 1);
                const char *want = strcmp(call, "list") == 0 ? "a(sssssuu)" : "v";

                if (!sig || strcmp(sig, want) != 0) {
                        fprintf(stderr, "bus-rtt: %s: reply signature %s, expected %s\n", call,
                                sig ? sig : "(none)", want);
                        r = -EBADMSG;
                }
        }
        sd_bus_message_unref(reply);
        return r < 0 ? r : 0;
}

static int run_bus(int client, const char *address, const char *call, long n, long warmup) {
        const char *dest = client ? "org.vigil1" : NULL;
        char *path = NULL;
        sd_bus *bus = NULL;
        int r;

        if (strcmp(call, "list") != 0) {
                if (strncmp(call, "get:", 4) != 0 || !call[4]) {
                        fprintf(stderr, "bus-rtt: unknown call %s (list or get:NAME)\n", call);
                        return 2;
                }
                path = service_path(call + 4);
        }
        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, client);
        /* as vigilctl: ANONYMOUS to the private socket (vigil may run in another PID
         * namespace), EXTERNAL to the bus daemon */
        if (r >= 0 && !client)
                r = sd_bus_set_anonymous(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                fprintf(stderr, "bus-rtt: cannot connect to %s: %s\n", address, strerror(-r));
                sd_bus_unref(bus);
                free(path);
                return 1;
        }
        for (long i = 0; i < warmup + n; i++) {
                int64_t t0 = now_ns();

                r = one_call(bus, dest, call, path, i == 0);
                if (r < 0)
                        break;
                if (i >= warmup)
                        printf("%lld\n", (long long) (now_ns() - t0));
        }
        sd_bus_flush_close_unref(bus);
        free(path);
        return r < 0 ? 1 : 0;
}

static int full_io(int fd, char *buf, size_t len, int writing) {
        size_t done = 0;

        while (done < len) {
                ssize_t k = writing ? write(fd, buf + done, len - done)
                                    : read(fd, buf + done, len - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -1;
                done += (size_t) k;
        }
        return 0;
}

static int run_echo(long n, long warmup) {
        char buf[ECHO_SIZE];
        int sv[2], status, ret = 0;
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                perror("bus-rtt: socketpair");
                return 1;
        }
        pid = fork();
        if (pid < 0) {
                perror("bus-rtt: fork");
                return 1;
        }
        if (pid == 0) {
                close(sv[0]);
                while (full_io(sv[1], buf, sizeof buf, 0) == 0)
                        if (full_io(sv[1], buf, sizeof buf, 1) < 0)
                                break;
                _exit(0);
        }
        close(sv[1]);
        memset(buf, 'x', sizeof buf);
        for (long i = 0; i < warmup + n; i++) {
                int64_t t0 = now_ns();

                if (full_io(sv[0], buf, sizeof buf, 1) < 0 ||
                    full_io(sv[0], buf, sizeof buf, 0) < 0) {
                        fprintf(stderr, "bus-rtt: the echo process went away\n");
                        ret = 1;
                        break;
                }
                if (i >= warmup)
                        printf("%lld\n", (long long) (now_ns() - t0));
        }
        close(sv[0]);
        waitpid(pid, &status, 0);
        return ret;
}

static int run_spawn(char **argv, long n, long warmup) {
        int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        posix_spawn_file_actions_t fa;
        int ret = 0;

        if (devnull < 0) {
                perror("bus-rtt: /dev/null");
                return 1;
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, devnull, STDOUT_FILENO);
        for (long i = 0; i < warmup + n; i++) {
                int64_t t0 = now_ns();
                int status, e;
                pid_t pid;

                e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
                if (e != 0) {
                        fprintf(stderr, "bus-rtt: cannot run %s: %s\n", argv[0], strerror(e));
                        ret = 1;
                        break;
                }
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                if (i >= warmup)
                        printf("%lld\n", (long long) (now_ns() - t0));
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        fprintf(stderr, "bus-rtt: %s failed (status 0x%x)\n", argv[0], status);
                        ret = 1;
                        break;
                }
        }
        posix_spawn_file_actions_destroy(&fa);
        close(devnull);
        return ret;
}

int main(int argc, char **argv) {
        long n, warmup;
        int r;

        if (argc < 6) {
                fprintf(stderr,
                        "usage: %s private|bus ADDRESS list|get:NAME N WARMUP\n"
                        "       %s echo - - N WARMUP\n"
                        "       %s spawn - - N WARMUP PROGRAM [ARG...]\n",
                        argv[0], argv[0], argv[0]);
                return 2;
        }
        n = parse_count(argv[4], "count");
        warmup = parse_count(argv[5], "warm-up count");
        signal(SIGPIPE, SIG_IGN);
        if (strcmp(argv[1], "private") == 0 || strcmp(argv[1], "bus") == 0)
                r = run_bus(strcmp(argv[1], "bus") == 0, argv[2], argv[3], n, warmup);
        else if (strcmp(argv[1], "echo") == 0)
                r = run_echo(n, warmup);
        else if (strcmp(argv[1], "spawn") == 0 && argc > 6)
                r = run_spawn(argv + 6, n, warmup);
        else {
                fprintf(stderr, "bus-rtt: unknown mode %s\n", argv[1]);
                r = 2;
        }
        if (fflush(stdout) != 0)
                r = 1;
        return r;
}
