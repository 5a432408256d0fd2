/* vigil's own log: to stderr (the console) and, as PID 1, to the kernel log. */
#include <fcntl.h>
#include <stdarg.h>

#include "log.h"

static int kmsg_fd = -1;
static int max_level = LOG_INFO;

void log_open(bool kmsg) {
        if (kmsg && kmsg_fd < 0)
                kmsg_fd = open("/dev/kmsg", O_WRONLY | O_NOCTTY | O_CLOEXEC);
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_internal(int level, int error, const char *fmt, ...) {
        char buf[1024];
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

        dprintf(STDERR_FILENO, "vigil: %s\n", buf);
        if (kmsg_fd >= 0)
                dprintf(kmsg_fd, "<%d>vigil: %s\n", level, buf);
        errno = saved;
        return -error;
}
