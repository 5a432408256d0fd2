/* vigil's own log: to stderr (the console) and, as PID 1, to the kernel log. */
#include <fcntl.h>
#include <stdarg.h>

#include "log.h"

/* A message longer than this is cut. */
#define LOG_MESSAGE_MAX 1024

static int kmsg_fd = -1;
static int max_level = LOG_INFO;

void log_open(bool kmsg) {
        if (kmsg && kmsg_fd < 0)
                kmsg_fd = open("/dev/kmsg", O_WRONLY | O_NOCTTY | O_CLOEXEC);
}

void log_set_max_level(int level) {
        max_level = level;
}

/* One line in one write(), formatted on the stack: dprintf() would allocate a buffer for
 * each line, and a log line between two allocations that stay leaves a hole in the heap.
 * level >= 0: the kernel log's "<level>" prefix. */
static void log_write(int fd, int level, const char *msg) {
        char line[LOG_MESSAGE_MAX + 32];
        int n = level >= 0 ? snprintf(line, sizeof(line), "<%d>vigil: %s\n", level, msg)
                           : snprintf(line, sizeof(line), "vigil: %s\n", msg);

        if (n < 0)
                return;
        if ((size_t) n >= sizeof(line)) {
                n = (int) sizeof(line) - 1;
                line[n - 1] = '\n';
        }
        if (write(fd, line, (size_t) n) < 0)
                return; /* nowhere to report it */
}

int log_internal(int level, int error, const char *fmt, ...) {
        char buf[LOG_MESSAGE_MAX];
        va_list ap;
        int saved = errno;

        error = error < 0 ? -error : error;
        if (level > max_level)
                return -error;

        /* glibc's "%m" prints strerror(errno). */
        errno = error;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);

        log_write(STDERR_FILENO, -1, buf);
        if (kmsg_fd >= 0)
                log_write(kmsg_fd, level, buf);
        errno = saved;
        return -error;
}
