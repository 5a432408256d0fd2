/* The audit log: one line per mutating D-Bus call, allowed or not. */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "audit.h"
#include "log.h"

#define AUDIT_FIELD_MAX 200

/* Copies s into buf with every byte that could forge or break a line (controls, non-ASCII,
 * spaces unless allowed: the last field may have them) as \xNN, cut with "..." when long. */
static const char *audit_field(const char *s, bool spaces, char *buf, size_t len) {
        size_t o = 0;

        if (isempty(s))
                return "-";
        for (; *s && o + 5 < len; s++) {
                unsigned char c = (unsigned char) *s;

                if (c < ' ' || (c == ' ' && !spaces) || c >= 0x7f || c == '\\')
                        o += (size_t) snprintf(buf + o, len - o, "\\x%02x", c);
                else
                        buf[o++] = (char) c;
        }
        if (*s && len > 4) {
                if (o > len - 4)
                        o = len - 4;
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = '\0';
        return buf;
}

/* A uid, gid or pid as decimal, or "-" when unknown (UID_INVALID, GID_INVALID; pid 0: the
 * caller is outside vigil's PID namespace, or the bus daemon did not say). */
static const char *audit_id(unsigned long id, bool known, char buf[static 21]) {
        if (!known)
                return "-";
        snprintf(buf, 21, "%lu", id);
        return buf;
}

void audit_log(const char *dir, const access_caller *caller, pid_t pid, const char *transport,
               const char *verb, const char *target, const char *result) {
        static usec_t last_failure;
        _cleanup_free_ char *path = NULL, *old = NULL, *line = NULL;
        _cleanup_close_ int fd = -1;
        char when[32], t[AUDIT_FIELD_MAX], r[AUDIT_FIELD_MAX], u[21], g[21], p[21];
        struct timespec ts;
        struct tm tm;
        struct stat st;
        int n;

        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = (int) strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(when + n, sizeof(when) - (size_t) n, ".%03ldZ", ts.tv_nsec / 1000000);

        if (asprintf_safe(&path, "%s/audit.log", dir) < 0 ||
            asprintf_safe(&old, "%s/audit.log.1", dir) < 0 ||
            asprintf_safe(
                    &line, "%s uid=%s gid=%s pid=%s via=%s verb=%s target=%s result=%s\n", when,
                    audit_id(caller ? caller->uid : 0, caller && caller->uid != UID_INVALID, u),
                    audit_id(caller ? caller->gid : 0, caller && caller->gid != GID_INVALID, g),
                    audit_id((unsigned long) pid, pid > 0, p), transport, verb,
                    audit_field(target, false, t, sizeof(t)),
                    audit_field(result, true, r, sizeof(r))) < 0) {
                log_oom();
                return;
        }
        if (stat(path, &st) == 0 && st.st_size > AUDIT_LOG_MAX_BYTES)
                (void) rename(path, old);
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd >= 0 && write(fd, line, strlen(line)) == (ssize_t) strlen(line))
                return;
        {
                struct timespec mono;
                usec_t now;

                clock_gettime(CLOCK_MONOTONIC, &mono);
                now = (usec_t) mono.tv_sec * USEC_PER_SEC + (usec_t) mono.tv_nsec / 1000;
                if (last_failure == 0 || now - last_failure > 60 * USEC_PER_SEC) {
                        last_failure = now;
                        log_error_errno(errno, "Cannot write the audit log %s: %m", path);
                }
        }
        log_notice("audit: %s", line);
}
