/* Crash records and restart history, kept in the state directory across reboots. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "crash.h"
#include "fileio.h"
#include "lexer.h"
#include "log.h"
#include "logstream.h"
#include "manager.h"

#define CRASH_RECORDS_MAX 20
#define CRASH_LOG_LINES 50
#define HISTORY_MAX_BYTES (64 * 1024)

static void format_utc(usec_t t, char *buf, size_t len) {
        time_t sec = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        gmtime_r(&sec, &tm);
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The record file names of a service, oldest first (names are zero-padded times). */
static int list_records(const char *dir, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        struct dirent *de;
        DIR *d;

        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d)))
                if (endswith(de->d_name, ".record") && strv_extend(&l, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
        closedir(d);
        if (l)
                qsort(l, strv_length(l), sizeof(char *), name_cmp);
        *ret = TAKE_PTR(l);
        return 0;
}

static void history_append(const char *state_dir, const char *name, const char *line) {
        _cleanup_free_ char *dir = NULL, *path = NULL, *old = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (asprintf_safe(&dir, "%s/history", state_dir) < 0 ||
            asprintf_safe(&path, "%s/%s.log", dir, name) < 0 ||
            asprintf_safe(&old, "%s/%s.log.1", dir, name) < 0 || mkdir_p(dir, 0750) < 0)
                return;
        if (stat(path, &st) == 0 && st.st_size > HISTORY_MAX_BYTES)
                (void) rename(path, old);
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (fd < 0 || write(fd, line, strlen(line)) < 0)
                log_warning_errno(errno, "%s: cannot write its restart history: %m", name);
}

/* A record captured at the failure, written later: the disk work (and its fsync) must
 * not delay the restart. */
typedef struct pending_record {
        char *name, *history_line, *text;
        usec_t when;
        struct pending_record *next;
} pending_record;

#define PENDING_MAX 256

static pending_record *pending, **pending_tail = &pending;
static size_t n_pending;
static sd_event_source *write_source;

static void pending_record_free(pending_record *p) {
        free(p->name);
        free(p->history_line);
        free(p->text);
        free(p);
}

static void record_write(const char *state_dir, const pending_record *p) {
        _cleanup_free_ char *dir = NULL, *path = NULL;
        _cleanup_strv_free_ char **records = NULL;
        size_t n;
        int r;

        history_append(state_dir, p->name, p->history_line);

        if (asprintf_safe(&dir, "%s/crash", state_dir) < 0 || mkdir_p(dir, 0750) < 0)
                return;
        free(dir);
        if (asprintf_safe(&dir, "%s/crash/%s", state_dir, p->name) < 0 || mkdir_p(dir, 0750) < 0)
                return;
        /* Zero-padded so that names sort by time. */
        if (asprintf_safe(&path, "%s/%020llu.record", dir, (unsigned long long) p->when) < 0)
                return;
        r = write_file_atomic(path, p->text, strlen(p->text), 0640);
        if (r < 0) {
                log_warning_errno(r, "%s: cannot write a crash record: %m", p->name);
                return;
        }

        /* Keep the newest CRASH_RECORDS_MAX. */
        if (list_records(dir, &records) < 0)
                return;
        n = strv_length(records);
        for (size_t i = 0; n > CRASH_RECORDS_MAX && i < n - CRASH_RECORDS_MAX; i++) {
                _cleanup_free_ char *old = NULL;

                if (asprintf_safe(&old, "%s/%s", dir, records[i]) >= 0)
                        (void) unlink(old);
        }
}

void crash_records_flush(manager *m) {
        while (pending) {
                pending_record *p = pending;

                pending = p->next;
                record_write(m->settings.state_dir, p);
                pending_record_free(p);
        }
        pending_tail = &pending;
        n_pending = 0;
        write_source = sd_event_source_disable_unref(write_source);
}

static int on_write(sd_event_source *src, void *userdata) {
        crash_records_flush(userdata);
        return 0;
}

void crash_record_save(service *s) {
        manager *m = s->manager;
        _cleanup_strv_free_ char **logs = NULL;
        char when[64], up[64], how[96];
        usec_t now = now_usec(CLOCK_REALTIME), uptime = 0;
        pending_record *p;
        size_t len = 0;
        FILE *f;

        if (n_pending >= PENDING_MAX) {
                log_warning("%s: too many crash records waiting to be written; dropping one.",
                            service_name(s));
                return;
        }
        if (s->last_active_since > 0)
                uptime = now_usec(CLOCK_MONOTONIC) - s->last_active_since;
        format_utc(now, when, sizeof(when));
        format_timespan(up, sizeof(up), uptime);
        if (s->exit_code == CLD_EXITED)
                snprintf(how, sizeof(how), "status=%d", s->exit_status);
        else if (s->exit_code == CLD_KILLED || s->exit_code == CLD_DUMPED)
                snprintf(how, sizeof(how), "signal=%s%s", signal_to_string(s->exit_status) ?: "?",
                         s->exit_code == CLD_DUMPED ? " core-dumped" : "");
        else
                snprintf(how, sizeof(how), "no-exit");

        p = calloc(1, sizeof(*p));
        if (!p)
                return;
        p->when = now;
        p->name = strdup(service_name(s));
        if (asprintf_safe(&p->history_line, "%s result=%s %s uptime=%s restarts=%u\n", when,
                          service_result_to_string(s->result), how, up, s->restarts) < 0 ||
            !p->name) {
                pending_record_free(p);
                return;
        }
        f = open_memstream(&p->text, &len);
        if (!f) {
                pending_record_free(p);
                return;
        }
        fprintf(f, "Service=%s\nTime=%s\nResult=%s\nExit=%s\nUptime=%s\nRestarts=%u\n",
                service_name(s), when, service_result_to_string(s->result), how, up, s->restarts);
        if (s->log && log_stream_tail(s->log, CRASH_LOG_LINES, &logs) >= 0) {
                fprintf(f, "\n");
                STRV_FOREACH(l, logs)
                        fprintf(f, "%s\n", *l);
        }
        if (fclose(f) != 0 || !p->text) {
                pending_record_free(p);
                return;
        }

        /* Below every other source: restarts and requests go first. */
        if (!write_source &&
            (sd_event_add_defer(m->event, &write_source, on_write, m) < 0 ||
             sd_event_source_set_priority(write_source, SD_EVENT_PRIORITY_IDLE) < 0)) {
                write_source = sd_event_source_disable_unref(write_source);
                record_write(m->settings.state_dir, p); /* no queue: write it now */
                pending_record_free(p);
                return;
        }
        sd_event_source_set_enabled(write_source, SD_EVENT_ONESHOT);
        *pending_tail = p;
        pending_tail = &p->next;
        n_pending++;
}

int crash_records_list(manager *m, const char *name, size_t max, char ***ret) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_strv_free_ char **records = NULL, **out = NULL;
        size_t n;
        int r;

        if (asprintf_safe(&dir, "%s/crash/%s", m->settings.state_dir, name) < 0)
                return -ENOMEM;
        r = list_records(dir, &records);
        if (r < 0)
                return r;
        n = strv_length(records);
        for (size_t i = n; i > 0 && strv_length(out) < max; i--) {
                _cleanup_free_ char *p = NULL, *data = NULL;
                size_t size;

                if (asprintf_safe(&p, "%s/%s", dir, records[i - 1]) < 0)
                        return -ENOMEM;
                if (read_file_bounded(p, 1024 * 1024, &data, &size) < 0)
                        continue;
                r = strv_push(&out, data);
                if (r < 0)
                        return r;
                data = NULL;
        }
        *ret = TAKE_PTR(out);
        return 0;
}
