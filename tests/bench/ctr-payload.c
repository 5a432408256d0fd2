/* The payload of tests/bench/container: its first act is to read CLOCK_MONOTONIC, then
 * it writes "<ns>\n" to FILE (argv[1], default /out/stamp: a FIFO the bench holds open,
 * so the open never blocks and one write of a few bytes is atomic) and exits 0.
 *
 * With a second argument PROBE it first writes what the runtime gave it to PROBE (a
 * plain file): its credentials and capabilities (/proc/self/status), uid_map, the
 * namespace of each kind, and whether the root refuses writes. The bench runs it once
 * per runtime that way to check that every runtime isolates alike; the timed runs never
 * pass PROBE. Built static: no loader in the measured path, the same bytes everywhere. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void copy(int out, const char *label, const char *path) {
        char buf[8192];
        ssize_t n;
        int fd;

        dprintf(out, "== %s\n", label);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                dprintf(out, "error %s\n", strerror(errno));
                return;
        }
        while ((n = read(fd, buf, sizeof(buf))) > 0)
                if (write(out, buf, (size_t) n) != n)
                        break;
        close(fd);
}

static void probe(const char *path) {
        static const char *const kinds[] = { "user", "mnt", "pid", "ipc", "uts", "cgroup", "net" };
        char link[64], target[128];
        int out, fd;

        out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out < 0)
                return;
        copy(out, "status", "/proc/self/status");
        copy(out, "uid_map", "/proc/self/uid_map");
        dprintf(out, "== ns\n");
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
                ssize_t n;

                snprintf(link, sizeof(link), "/proc/self/ns/%s", kinds[i]);
                n = readlink(link, target, sizeof(target) - 1);
                target[n < 0 ? 0 : n] = 0;
                dprintf(out, "%s %s\n", kinds[i], n < 0 ? "?" : target);
        }
        copy(out, "mounts", "/proc/self/mounts");
        fd = open("/probe-write", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        dprintf(out, "== root\n%s\n", fd >= 0 ? "writable" : strerror(errno));
        if (fd >= 0) {
                close(fd);
                unlink("/probe-write");
        }
        close(out);
}

int main(int argc, char **argv) {
        const char *file = argc > 1 ? argv[1] : "/out/stamp";
        struct timespec ts;
        char buf[32];
        int fd, n;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (argc > 2)
                probe(argv[2]);
        n = snprintf(buf, sizeof(buf), "%lld\n", (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec);
        fd = open(file, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, buf, (size_t) n) != n)
                return 1;
        return 0;
}
