/* A service for tests/bench/run: on start, before anything else, it records
 * "<CLOCK_MONOTONIC ns> <pid>\n" atomically (writes FILE.tmp, renames it to FILE),
 * then pauses until a signal ends it.
 *
 * FILE is $STAMP_FILE when set; else "stamp.out" in the working directory when the
 * program runs as `run` (a symlink in an s6 or runit service directory: both run ./run
 * there; s6-supervise passes the service name as argv[1], which is ignored); else
 * argv[1]; else "stamp.out". With FILE "-" nothing is written.
 *
 * Run as `run` in a directory with a `notification-fd` file (s6's readiness
 * protocol), it then writes "\n" to that descriptor: ready as soon as it has stamped. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void notify_ready(void) {
        char buf[16];
        ssize_t n;
        int fd;

        fd = open("notification-fd", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return;
        buf[n] = 0;
        fd = atoi(buf);
        if (fd > 2 && write(fd, "\n", 1) == 1)
                close(fd);
}

int main(int argc, char **argv) {
        const char *file, *base;
        struct timespec ts;
        char buf[64], tmp[4096];
        int fd, n, as_run;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        base = strrchr(argv[0], '/');
        base = base ? base + 1 : argv[0];
        as_run = strcmp(base, "run") == 0;
        file = getenv("STAMP_FILE");
        if (!file || !*file)
                file = as_run || argc < 2 ? "stamp.out" : argv[1];
        if (strcmp(file, "-") != 0) {
                n = snprintf(buf, sizeof(buf), "%lld %ld\n",
                             (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec, (long) getpid());
                if ((size_t) snprintf(tmp, sizeof(tmp), "%s.tmp", file) >= sizeof(tmp))
                        return 2;
                fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || write(fd, buf, (size_t) n) != n || close(fd) < 0 ||
                    rename(tmp, file) < 0)
                        return 1;
        }
        if (as_run)
                notify_ready();
        for (;;)
                pause();
}
