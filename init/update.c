/* Image updates (see update.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "audit.h"
#include "bundle.h"
#include "bus.h"
#include "fileio.h"
#include "lexer.h"
#include "log.h"
#include "manager.h"
#include "strv.h"
#include "sys.h"
#include "update.h"

#define RECORD_MAX (64 * 1024)
#define TRIAL_TICK_USEC USEC_PER_SEC
#define HEALTH_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define HEALTH_RETRY_USEC (5 * USEC_PER_SEC)
#define STAGE_SMALL_MAX                                                                            \
        4096 /* a manifest or a signature: BUNDLE_MANIFEST_MAX, ..._SIGNATURE_MAX                  \
              */

struct update_state {
        image_record **records; /* sorted by name */
        size_t n;
        char *images, *incoming, *rejected, *records_dir;
        sd_event_source *timer; /* ticks while a trial runs */
        bool booting;           /* update_boot(): installs count this boot as a trial boot */
};

static const char *const kinds[] = { ".squashfs", ".manifest.minisig", ".manifest" };

const char *update_outcome_to_string(update_outcome o) {
        static const char *const names[] = {
                [UPDATE_INSTALLED] = "installed",
                [UPDATE_REJECTED] = "rejected",
                [UPDATE_DEFERRED] = "deferred",
        };
        return (unsigned) o < ELEMENTSOF(names) ? names[o] : "invalid";
}

static void hex_digest(const uint8_t d[BUNDLE_SHA256_SIZE], char out[UPDATE_SHA256_HEX + 1]) {
        for (size_t i = 0; i < BUNDLE_SHA256_SIZE; i++)
                snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Copies src (NULL: "") into dst, cut to size - 1 bytes. */
static void copy_string(char *dst, size_t size, const char *src) {
        size_t n = src ? strnlen(src, size - 1) : 0;

        if (n > 0)
                memcpy(dst, src, n);
        dst[n] = 0;
}

/* snprintf() that may cut: reasons are bounded on purpose. */
_printf_(3, 4) static void format_cut(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(buf, size, fmt, ap);
        va_end(ap);
}

/* ---- records on disk ---- */

static void record_free(image_record *r) {
        if (!r)
                return;
        safe_close(r->health_pidfd);
        free(r->rejected);
        free(r->name);
        free(r);
}

static char *record_path(update_state *u, const char *name) {
        char *p = NULL;

        (void) asprintf_safe(&p, "%s/%s.state", u->records_dir, name);
        return p;
}

static int record_add_rejection(image_record *r, const char *digest, const char *version,
                                const char *reason) {
        update_rejection *l;

        if (r->n_rejected >= UPDATE_REJECTED_MAX) { /* the oldest goes */
                memmove(r->rejected, r->rejected + 1, (r->n_rejected - 1) * sizeof(*r->rejected));
                r->n_rejected--;
        }
        l = reallocarray(r->rejected, r->n_rejected + 1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        r->rejected = l;
        l = &l[r->n_rejected++];
        copy_string(l->digest, sizeof(l->digest), digest);
        copy_string(l->version, sizeof(l->version), version);
        copy_string(l->reason, sizeof(l->reason), reason);
        return 0;
}

static bool digest_is_valid(const char *s) {
        return strlen(s) == UPDATE_SHA256_HEX && strspn(s, "0123456789abcdef") == UPDATE_SHA256_HEX;
}

/* Reads STATE/updates/NAME.state into r; a bad line is logged and skipped. */
static int record_read(update_state *u, image_record *r) {
        _cleanup_free_ char *path = record_path(u, r->name), *data = NULL;
        unsigned line = 0;
        char *p, *next;
        size_t size;
        int k;

        if (!path)
                return -ENOMEM;
        k = read_file_bounded(path, RECORD_MAX, &data, &size);
        if (k == -ENOENT)
                return 0;
        if (k < 0)
                return log_error_errno(k, "Cannot read %s: %m", path);
        for (p = data; p && *p; p = next) {
                char *eq, *key, *value;
                bool ok = true;

                line++;
                next = strchr(p, '\n');
                if (next)
                        *next++ = 0;
                if (*p == 0 || *p == '#')
                        continue;
                eq = strchr(p, '=');
                if (!eq) {
                        log_warning("%s:%u: not Key=value; ignored.", path, line);
                        continue;
                }
                *eq = 0;
                key = p;
                value = eq + 1;
                if (streq(key, "Current") || streq(key, "Previous")) {
                        ok = !*value || image_version_is_valid(value);
                        if (ok)
                                copy_string(streq(key, "Current") ? r->current : r->previous,
                                            IMAGE_VERSION_MAX + 1, value);
                } else if (streq(key, "Sha256") || streq(key, "PreviousSha256")) {
                        ok = !*value || digest_is_valid(value);
                        if (ok)
                                copy_string(streq(key, "Sha256") ? r->sha256 : r->previous_sha256,
                                            UPDATE_SHA256_HEX + 1, value);
                } else if (streq(key, "Trial")) {
                        k = parse_boolean(value);
                        ok = k >= 0;
                        r->trial = k > 0;
                } else if (streq(key, "TrialBoots")) {
                        ok = parse_unsigned(value, &r->trial_boots) >= 0;
                } else if (streq(key, "Rejected")) {
                        char *version = strchr(value, ' '), *reason;

                        ok = version != NULL;
                        if (ok) {
                                *version++ = 0;
                                reason = strchr(version, ' ');
                                if (reason)
                                        *reason++ = 0;
                                ok = digest_is_valid(value) && image_version_is_valid(version);
                                if (ok && record_add_rejection(r, value, version, reason) < 0)
                                        return log_oom();
                        }
                } else
                        ok = false;
                if (!ok)
                        log_warning("%s:%u: bad %s= line; ignored.", path, line, key);
        }
        return 0;
}

/* Replaces the record atomically (fsynced, directory too). */
static int record_write(update_state *u, image_record *r) {
        _cleanup_free_ char *path = record_path(u, r->name);
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        int k;

        if (!path)
                return log_oom();
        k = mkdir_p(u->records_dir, 0750);
        if (k < 0)
                return log_error_errno(k, "Cannot create %s: %m", u->records_dir);
        f = open_memstream(&buf, &size);
        if (!f)
                return log_oom();
        fprintf(f, "# The update record of image %s, written by vigil.\n", r->name);
        fprintf(f, "Current=%s\nSha256=%s\nPrevious=%s\nPreviousSha256=%s\n", r->current, r->sha256,
                r->previous, r->previous_sha256);
        fprintf(f, "Trial=%s\nTrialBoots=%u\n", r->trial ? "yes" : "no", r->trial_boots);
        for (size_t i = 0; i < r->n_rejected; i++) {
                const update_rejection *x = &r->rejected[i];
                char reason[UPDATE_REASON_MAX];

                /* one line: no newline may hide in the reason */
                copy_string(reason, sizeof(reason), x->reason);
                for (char *c = reason; *c; c++)
                        if ((unsigned char) *c < ' ')
                                *c = ' ';
                fprintf(f, "Rejected=%s %s %s\n", x->digest, x->version, reason);
        }
        if (fclose(f) != 0) {
                free(buf);
                return log_oom();
        }
        k = write_file_atomic(path, buf, size, 0640);
        free(buf);
        if (k < 0)
                return log_error_errno(k, "Cannot write %s: %m", path);
        return 0;
}

/* ---- the image store ---- */

static int image_dir_open(update_state *u, const char *name, int flags) {
        _cleanup_free_ char *dir = NULL;
        int fd;

        if (asprintf_safe(&dir, "%s/%s", u->images, name) < 0)
                return -ENOMEM;
        if (flags & O_CREAT) {
                int k = mkdir_p(dir, 0755);

                if (k < 0)
                        return k;
        }
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* The version `current` selects in images/NAME ("" when none), without checking the file. */
static void link_version(update_state *u, const char *name, char out[IMAGE_VERSION_MAX + 1]) {
        _cleanup_free_ char *path = NULL, *version = NULL;

        out[0] = 0;
        if (image_store_current(u->images, name, &path, &version) >= 0)
                copy_string(out, IMAGE_VERSION_MAX + 1, version);
}

static bool version_file_exists(int dfd, const char *version) {
        char file[IMAGE_VERSION_MAX + 16];
        struct stat st;

        snprintf(file, sizeof(file), "%s.squashfs", version);
        return fstatat(dfd, file, &st, AT_SYMLINK_NOFOLLOW) >= 0 && S_ISREG(st.st_mode);
}

/* Points `current` at VERSION.squashfs: a new link renamed over the old one, then the
 * directory fsynced. */
static int select_version(update_state *u, const char *name, const char *version) {
        _cleanup_close_ int dfd = image_dir_open(u, name, O_CREAT);
        char target[IMAGE_VERSION_MAX + 16];

        if (dfd < 0)
                return dfd;
        snprintf(target, sizeof(target), "%s.squashfs", version);
        (void) unlinkat(dfd, ".current.new", 0);
        if (symlinkat(target, dfd, ".current.new") < 0 ||
            renameat(dfd, ".current.new", dfd, "current") < 0 || fsync(dfd) < 0)
                return -errno;
        return 0;
}

static void remove_version(update_state *u, const char *name, const char *version) {
        _cleanup_close_ int dfd = image_dir_open(u, name, 0);
        char file[IMAGE_VERSION_MAX + 16];

        if (dfd < 0 || !*version)
                return;
        snprintf(file, sizeof(file), "%s.squashfs", version);
        if (unlinkat(dfd, file, 0) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Cannot remove %s/%s/%s: %m", u->images, name, file);
        (void) fsync(dfd);
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The entries of directory dfd but subdirectories, sorted: those ending in suffix, without
 * it, and not hidden (a leading '.'); or with suffix NULL every one, as is. NULL on error. */
static char **dir_list(int dfd, const char *suffix) {
        _cleanup_strv_free_ char **l = NULL;
        struct dirent *de;
        size_t count = 0;
        DIR *d;

        d = fdopendir(fcntl(dfd, F_DUPFD_CLOEXEC, 3));
        if (!d)
                return NULL;
        while ((de = readdir(d))) {
                const char *n = de->d_name;
                size_t k = strlen(n);

                if (streq(n, ".") || streq(n, "..") || de->d_type == DT_DIR)
                        continue;
                if (suffix && (n[0] == '.' || !endswith(n, suffix)))
                        continue;
                if (suffix)
                        k -= strlen(suffix);
                if (strv_extend(&l, n) < 0) {
                        closedir(d);
                        return NULL;
                }
                l[count++][k] = 0;
        }
        closedir(d);
        if (!l)
                return calloc(1, sizeof(char *));
        qsort(l, count, sizeof(char *), name_cmp);
        return TAKE_PTR(l);
}

/* Deletes every VERSION.squashfs of the image but Current= and Previous=. */
static void prune_versions(update_state *u, image_record *r) {
        _cleanup_close_ int dfd = image_dir_open(u, r->name, 0);
        _cleanup_strv_free_ char **versions = dfd >= 0 ? dir_list(dfd, ".squashfs") : NULL;

        STRV_FOREACH(v, versions) {
                if (streq(*v, r->current) || streq(*v, r->previous) || !image_version_is_valid(*v))
                        continue;
                log_info("Image %s: removing version %s (neither current nor previous).", r->name,
                         *v);
                remove_version(u, r->name, *v);
        }
}

/* ---- the set of records ---- */

static image_record *record_find(update_state *u, const char *name) {
        for (size_t i = 0; i < u->n; i++)
                if (streq(u->records[i]->name, name))
                        return u->records[i];
        return NULL;
}

static int record_cmp(const void *a, const void *b) {
        return strcmp((*(image_record *const *) a)->name, (*(image_record *const *) b)->name);
}

static int record_add(update_state *u, const char *name) {
        image_record **l, *r;
        int k;

        if (record_find(u, name))
                return 0;
        l = reallocarray(u->records, u->n + 1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        u->records = l;
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->health_pidfd = -1;
        r->name = strdup(name);
        if (!r->name) {
                free(r);
                return -ENOMEM;
        }
        k = record_read(u, r);
        if (k < 0) {
                record_free(r);
                return k;
        }
        /* No record yet (an image installed with the appliance): what the link says. */
        if (!r->current[0])
                link_version(u, name, r->current);
        l[u->n++] = r;
        qsort(u->records, u->n, sizeof(*u->records), record_cmp);
        return 0;
}

static char *lib_path(const manager *m, const char *leaf) {
        const char *state = m->settings.state_dir, *slash = strrchr(state, '/');
        int lib = slash ? (int) (slash - state) : 0;
        char *p = NULL;

        (void) asprintf_safe(&p, "%.*s/%s", lib, state, leaf);
        return p;
}

int update_load(manager *m) {
        update_state *u = m->updates;
        int k;

        if (!u) {
                u = calloc(1, sizeof(*u));
                if (!u)
                        return log_oom();
                m->updates = u;
                u->images = lib_path(m, "images");
                u->incoming = lib_path(m, "incoming");
                u->rejected = lib_path(m, "incoming/rejected");
                if (!u->images || !u->incoming || !u->rejected ||
                    asprintf_safe(&u->records_dir, "%s/updates", m->settings.state_dir) < 0)
                        return log_oom();
        }
        for (size_t i = 0; i < m->n_services; i++) {
                const char *image = m->services[i]->unit->container->image;

                if (image && (k = record_add(u, image)) < 0)
                        return log_error_errno(k, "Image %s: cannot load its update record: %m",
                                               image);
        }
        return 0;
}

void update_free(manager *m) {
        update_state *u = m->updates;

        if (!u)
                return;
        for (size_t i = 0; i < u->n; i++)
                record_free(u->records[i]);
        free(u->records);
        sd_event_source_disable_unref(u->timer);
        free(u->images);
        free(u->incoming);
        free(u->rejected);
        free(u->records_dir);
        free(u);
        m->updates = NULL;
}

image_record *const *update_records(manager *m, size_t *ret_n) {
        *ret_n = m->updates ? m->updates->n : 0;
        return m->updates ? m->updates->records : NULL;
}

/* ---- events: log, audit, D-Bus ---- */

static void announce(manager *m, const char *kind, const char *image, const char *version,
                     const char *detail) {
        char target[UPDATE_NAME_MAX + IMAGE_VERSION_MAX + 2];

        snprintf(target, sizeof(target), "%s:%s", image ?: "-", version ?: "-");
        audit_log(m->settings.log_dir, NULL, 0, "vigil", kind, target,
                  detail && *detail ? detail : "ok");
        if (m->bus)
                bus_image_update(m->bus, kind, image, version, detail);
}

/* The services that run the image (Image=NAME). */
static bool uses_image(const service *s, const image_record *r) {
        return s->unit->container->image && streq(s->unit->container->image, r->name);
}

/* A run that failed (a start limit hit, a failed start...): its start request was given up,
 * so its target is back to stopped. */
static bool failed(const service *s) {
        return s->state == SERVICE_FAILED && s->result != RESULT_SUCCESS;
}

/* Restarts what runs the image, and starts again what failed on it (the start limit of a
 * rolled-back trial). */
static void restart_users(manager *m, image_record *r) {
        for (size_t i = 0; i < m->n_services; i++) {
                service *s = m->services[i];

                if (!uses_image(s, r) || (s->target != TARGET_STARTED && !failed(s)))
                        continue;
                /* Another image is another program: its start limit counts afresh. */
                s->n_start_times = 0;
                s->backoff_step = 0;
                if (failed(s)) {
                        service_reset_failed(s);
                        (void) service_start(s);
                } else if (service_is_active(s) || s->state == SERVICE_AUTO_RESTART)
                        (void) service_restart(s);
        }
}

/* ---- trial ---- */

static void trial_arm(manager *m);

static void health_kill(image_record *r) {
        if (r->health_pid > 0 && r->health_pidfd >= 0)
                (void) syscall(SYS_pidfd_send_signal, r->health_pidfd, SIGKILL, NULL, 0);
}

static void health_forget(image_record *r) {
        r->health_pid = 0;
        r->health_pidfd = safe_close(r->health_pidfd);
}

static void trial_begin(manager *m, image_record *r) {
        r->trial_deadline = now_usec(CLOCK_MONOTONIC) + m->conf.trial_timeout;
        r->health_passed = 0;
        r->health_retry = 0;
        copy_string(r->trial_status, sizeof(r->trial_status), "starting");
        trial_arm(m);
}

/* Back to Previous=: the record first, then the link; the bad version is deleted and
 * never installed again. */
static int rollback(manager *m, image_record *r, const char *reason) {
        update_state *u = m->updates;
        char bad[IMAGE_VERSION_MAX + 1], bad_sha[UPDATE_SHA256_HEX + 1];
        int k;

        if (!r->previous[0])
                return -ESRCH;
        health_kill(r);
        copy_string(bad, sizeof(bad), r->current);
        copy_string(bad_sha, sizeof(bad_sha), r->sha256);
        if (digest_is_valid(bad_sha) && record_add_rejection(r, bad_sha, bad, reason) < 0)
                return log_oom();
        copy_string(r->current, sizeof(r->current), r->previous);
        copy_string(r->sha256, sizeof(r->sha256), r->previous_sha256);
        r->previous[0] = r->previous_sha256[0] = 0;
        r->trial = false;
        r->trial_boots = 0;
        r->trial_status[0] = 0;
        k = record_write(u, r);
        if (k < 0)
                return k;
        k = select_version(u, r->name, r->current);
        if (k < 0)
                return log_error_errno(k, "Image %s: cannot select version %s again: %m", r->name,
                                       r->current);
        remove_version(u, r->name, bad);
        log_warning("Image %s: rolled back from %s to %s: %s", r->name, bad, r->current, reason);
        announce(m, "rolled-back", r->name, bad, reason);
        restart_users(m, r);
        return 0;
}

static void trial_fail(manager *m, image_record *r, const char *fmt, ...) _printf_(3, 4);
static void trial_fail(manager *m, image_record *r, const char *fmt, ...) {
        char reason[UPDATE_REASON_MAX];
        va_list ap;
        int k;

        va_start(ap, fmt);
        vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        k = rollback(m, r, reason);
        if (k == -ESRCH) {
                log_error("Image %s: version %s failed its trial (%s), and there is no previous "
                          "version to go back to; keeping it.",
                          r->name, r->current, reason);
                r->trial = false;
                (void) record_write(m->updates, r);
        }
}

static void promote(manager *m, image_record *r) {
        r->trial = false;
        r->trial_boots = 0;
        r->trial_status[0] = 0;
        if (record_write(m->updates, r) < 0)
                return; /* still on trial: tried again at the next tick */
        log_info("Image %s: version %s is healthy: promoted (previous: %s).", r->name, r->current,
                 r->previous[0] ? r->previous : "none");
        announce(m, "promoted", r->name, r->current, NULL);
        prune_versions(m->updates, r);
}

static int health_start(manager *m, image_record *r, service *s) {
        const exec_list *l = &s->unit->container->health_cmd;
        pid_t pid;
        int pidfd, k;

        k = m->ops->spawn(s, &l->items[0], true, &pid, &pidfd, NULL);
        if (k < 0)
                return k;
        r->health_pid = pid;
        r->health_pidfd = pidfd;
        r->health_started = now_usec(CLOCK_MONOTONIC);
        return 0;
}

/* One look at a trial: a verdict, or what it waits for. */
static void trial_check(manager *m, image_record *r) {
        usec_t now = now_usec(CLOCK_MONOTONIC);
        size_t users = 0, k = 0;
        bool waiting = false;

        if (!r->trial)
                return;
        r->trial_status[0] = 0;
        for (size_t i = 0; i < m->n_services; i++) {
                service *s = m->services[i];
                bool notify;

                if (!uses_image(s, r) || (s->target != TARGET_STARTED && !failed(s)))
                        continue;
                users++;
                if (failed(s)) {
                        trial_fail(m, r, "%s failed on version %s (%s)", service_name(s),
                                   r->current, service_result_to_string(s->result));
                        return;
                }
                notify = s->unit->type == SERVICE_NOTIFY;
                if (s->state != SERVICE_RUNNING ||
                    !streq(s->extra->image_version ?: "", r->current) ||
                    (!notify && now - s->active_since < m->conf.trial_healthy)) {
                        waiting = true;
                        r->health_passed = 0; /* a restart: its checks run again */
                        snprintf(r->trial_status, sizeof(r->trial_status),
                                 "waiting for %s: %s, up %llu s of %llu s", service_name(s),
                                 service_state_to_string(s->state),
                                 s->state == SERVICE_RUNNING
                                         ? (unsigned long long) ((now - s->active_since) /
                                                                 USEC_PER_SEC)
                                         : 0ULL,
                                 (unsigned long long) (m->conf.trial_healthy / USEC_PER_SEC));
                        break;
                }
                /* Healthy so far; its HealthCmd=, in order, one at a time. */
                if (s->unit->container->health_cmd.n > 0 && k++ == r->health_passed) {
                        const char *what = "its HealthCmd= is running";

                        waiting = true;
                        if (r->health_pid > 0) {
                                if (now - r->health_started > HEALTH_TIMEOUT_USEC)
                                        health_kill(r);
                        } else if (now < r->health_retry)
                                what = "its HealthCmd= failed; trying again";
                        else if (health_start(m, r, s) < 0)
                                what = "its HealthCmd= cannot start";
                        format_cut(r->trial_status, sizeof(r->trial_status), "%s: %s",
                                   service_name(s), what);
                        break;
                }
        }
        if (users > 0 && !waiting) {
                promote(m, r);
                return;
        }
        if (users == 0)
                copy_string(r->trial_status, sizeof(r->trial_status),
                            "no service that uses the image is started");
        if (now >= r->trial_deadline)
                trial_fail(m, r, "not healthy within %llu s (%s)",
                           (unsigned long long) (m->conf.trial_timeout / USEC_PER_SEC),
                           r->trial_status);
}

static bool any_trial(update_state *u) {
        for (size_t i = 0; i < u->n; i++)
                if (u->records[i]->trial)
                        return true;
        return false;
}

static int on_trial_tick(sd_event_source *es, uint64_t usec, void *userdata) {
        manager *m = userdata;
        update_state *u = m->updates;

        (void) es, (void) usec;
        for (size_t i = 0; i < u->n; i++) {
                trial_check(m, u->records[i]);
        }
        trial_arm(m);
        return 0;
}

/* A tick every second while a trial runs; none otherwise (no idle wakeups). */
static void trial_arm_in(manager *m, usec_t delay) {
        update_state *u = m->updates;
        usec_t when = now_usec(CLOCK_MONOTONIC) + delay;

        if (!any_trial(u) || m->shutting_down) {
                if (u->timer)
                        (void) sd_event_source_set_enabled(u->timer, SD_EVENT_OFF);
                return;
        }
        if (!u->timer) {
                if (sd_event_add_time(m->event, &u->timer, CLOCK_MONOTONIC, when, 0, on_trial_tick,
                                      m) < 0)
                        log_oom();
                return;
        }
        (void) sd_event_source_set_time(u->timer, when);
        (void) sd_event_source_set_enabled(u->timer, SD_EVENT_ONESHOT);
}

static void trial_arm(manager *m) {
        trial_arm_in(m, TRIAL_TICK_USEC);
}

void update_service_state_changed(manager *m, service *s) {
        update_state *u = m->updates;
        image_record *r;

        if (!u || !s->unit->container->image)
                return;
        r = record_find(u, s->unit->container->image);
        /* A failure (its start limit hit) ends the trial at once, from the loop: not while
         * the state machine is still in the middle of this change. */
        if (r && r->trial && failed(s))
                trial_arm_in(m, 0);
}

bool update_sigchld(manager *m, pid_t pid, int code, int status) {
        update_state *u = m->updates;

        for (size_t i = 0; u && i < u->n; i++) {
                image_record *r = u->records[i];

                if (r->health_pid != pid || pid <= 0)
                        continue;
                health_forget(r);
                if (code == CLD_EXITED && status == 0) {
                        log_info("Image %s: a HealthCmd= passed.", r->name);
                        r->health_passed++;
                } else {
                        log_warning(
                                "Image %s: a HealthCmd= %s %d; trying again in %llu s.", r->name,
                                code == CLD_EXITED ? "exited with status" : "was killed by signal",
                                status, (unsigned long long) (HEALTH_RETRY_USEC / USEC_PER_SEC));
                        r->health_passed = 0;
                        r->health_retry = now_usec(CLOCK_MONOTONIC) + HEALTH_RETRY_USEC;
                }
                return true;
        }
        return false;
}

int update_rollback(manager *m, const char *image, char **ret_error) {
        image_record *r = m->updates ? record_find(m->updates, image) : NULL;
        int k;

        *ret_error = NULL;
        if (!r) {
                (void) asprintf_safe(ret_error, "no unit uses an image named %s", image);
                return -ENOENT;
        }
        k = rollback(m, r, "rolled back by an admin");
        if (k == -ESRCH)
                (void) asprintf_safe(ret_error, "image %s has no previous version to go back to",
                                     image);
        else if (k < 0)
                (void) asprintf_safe(ret_error, "image %s: the rollback failed: %s", image,
                                     strerror(-k));
        trial_arm(m);
        return k;
}

/* ---- staging ---- */

/* Copies from src (to its end) into dir/final through a temporary name: at most max bytes. */
/* Copies src from its offset to its end into fd: at most max bytes (-EFBIG beyond). In the
 * kernel (copy_file_range) where it can, else through a buffer. */
static int copy_bounded(int src, int fd, uint64_t max) {
        char buf[64 * 1024];
        uint64_t total = 0;
        bool in_kernel = true;

        for (;;) {
                uint64_t left = max + 1 - total;
                size_t chunk = left < ((uint64_t) 8 << 20) ? (size_t) left : (size_t) 8 << 20;
                ssize_t n;

                if (in_kernel) {
                        n = copy_file_range(src, NULL, fd, NULL, chunk, 0);
                        if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                                      errno == EOPNOTSUPP)) {
                                in_kernel = false;
                                continue;
                        }
                } else {
                        n = read(src, buf, chunk < sizeof(buf) ? chunk : sizeof(buf));
                        if (n > 0 && write(fd, buf, (size_t) n) != n)
                                return errno ? -errno : -EIO;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
                total += (uint64_t) n;
                if (total > max)
                        return -EFBIG;
        }
}

/* Copies from src (to its end) into dir/final through a temporary name: at most max bytes. */
static int stage_copy(int dfd, const char *final, int src, uint64_t max) {
        char tmp[NAME_MAX + 3];
        _cleanup_close_ int fd = -1;
        struct stat st;
        off_t at;
        int k;

        /* Regular files only: a pipe whose writer never finishes would stall PID 1. */
        if (fstat(src, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        at = lseek(src, 0, SEEK_CUR);
        if (at >= 0 && st.st_size > at && (uint64_t) (st.st_size - at) > max)
                return -EFBIG; /* known before copying anything */
        snprintf(tmp, sizeof(tmp), ".#%s", final);
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        k = copy_bounded(src, fd, max);
        if (k == 0 && (fsync(fd) < 0 || renameat(dfd, tmp, dfd, final) < 0))
                k = -errno;
        if (k < 0)
                (void) unlinkat(dfd, tmp, 0);
        return k;
}

int update_stage(manager *m, const char *stem, int payload_fd, int manifest_fd, int signature_fd,
                 char **ret_error) {
        const int fds[] = { payload_fd, signature_fd, manifest_fd };
        _cleanup_close_ int dfd = -1;
        int k;

        *ret_error = NULL;
        if (!m->updates)
                return -ENOMEM;
        if (!bundle_stem_is_valid(stem)) {
                (void) asprintf_safe(ret_error, "\"%s\" is not a bundle name (NAME-VERSION)", stem);
                return -EINVAL;
        }
        k = mkdir_p(m->updates->incoming, 0750);
        if (k >= 0) {
                dfd = open(m->updates->incoming, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0)
                        k = -errno;
        }
        if (k < 0) {
                (void) asprintf_safe(ret_error, "cannot open %s: %s", m->updates->incoming,
                                     strerror(-k));
                return k;
        }
        /* The manifest last: apply looks for manifests, so it never sees half a bundle. */
        for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
                char final[NAME_MAX + 1];

                snprintf(final, sizeof(final), "%s%s", stem, kinds[i]);
                k = stage_copy(dfd, final, fds[i],
                               i == 0 ? m->conf.update_max_size : STAGE_SMALL_MAX);
                if (k < 0) {
                        (void) asprintf_safe(ret_error, "%s: %s", final,
                                             k == -EFBIG    ? "larger than allowed"
                                             : k == -EBADFD ? "not a regular file"
                                                            : strerror(-k));
                        return k;
                }
        }
        if (fsync(dfd) < 0)
                return -errno;
        log_info("Staged update bundle %s.", stem);
        return 0;
}

/* ---- applying ---- */

char **update_staged(manager *m) {
        _cleanup_close_ int dfd =
                m->updates ? open(m->updates->incoming, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;

        return dfd >= 0 ? dir_list(dfd, ".manifest") : calloc(1, sizeof(char *));
}

/* Removes the bundle STEM from incoming/: the manifest first (then it is no longer staged),
 * or moves it to rejected/ with STEM.reason. */
static void bundle_dispose(update_state *u, const char *stem, const char *reason) {
        _cleanup_close_ int dfd = open(u->incoming, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int rfd = -1;

        if (dfd < 0)
                return;
        if (reason && mkdir_p(u->rejected, 0750) >= 0)
                rfd = open(u->rejected, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (size_t i = ELEMENTSOF(kinds); i-- > 0;) {
                char file[NAME_MAX + 1];

                snprintf(file, sizeof(file), "%s%s", stem, kinds[i]);
                if (rfd >= 0 ? renameat(dfd, file, rfd, file) < 0 : unlinkat(dfd, file, 0) < 0) {
                        if (errno != ENOENT)
                                log_warning_errno(errno, "Cannot %s %s/%s: %m",
                                                  rfd >= 0 ? "move aside" : "remove", u->incoming,
                                                  file);
                }
        }
        if (rfd >= 0) {
                char file[NAME_MAX + 1], line[UPDATE_REASON_MAX + 2];
                _cleanup_close_ int fd = -1;

                snprintf(file, sizeof(file), "%s.reason", stem);
                snprintf(line, sizeof(line), "%s\n", reason);
                fd = openat(rfd, file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
                if (fd < 0 || write(fd, line, strlen(line)) < 0)
                        log_warning_errno(errno, "Cannot write %s/%s: %m", u->rejected, file);
                (void) fsync(rfd);
        }
        (void) fsync(dfd);
}

typedef struct staged {
        char *stem;
        bundle b;
        bool opened;
        int error;
        char reason[UPDATE_REASON_MAX];
} staged;

static void result_set(update_result *res, const staged *st, update_outcome o, const char *why) {
        *res = (update_result){ .outcome = o };
        copy_string(res->stem, sizeof(res->stem), st->stem);
        if (st->opened) {
                copy_string(res->image, sizeof(res->image), st->b.manifest.name);
                copy_string(res->version, sizeof(res->version), st->b.manifest.version);
        }
        copy_string(res->reason, sizeof(res->reason), why);
}

/* Installs one verified bundle (steps 2 to 5 of update.h). Returns the outcome; *why says
 * why it is not installed. */
static update_outcome install(manager *m, staged *st, image_record *r, bool force, char *why,
                              size_t why_size) {
        update_state *u = m->updates;
        const bundle_manifest *mf = &st->b.manifest;
        char digest[UPDATE_SHA256_HEX + 1], old[IMAGE_VERSION_MAX + 1];
        _cleanup_close_ int dfd = -1;
        bundle_error err = {};
        image_record saved;
        int k;

        hex_digest(mf->sha256, digest);
        if (streq(digest, r->sha256) && streq(mf->version, r->current)) {
                /* installed before a power cut let it leave incoming/ */
                snprintf(why, why_size, "already installed");
                return UPDATE_INSTALLED;
        }
        for (size_t i = 0; i < r->n_rejected; i++)
                if (streq(r->rejected[i].digest, digest)) {
                        format_cut(why, why_size,
                                   "version %s with this digest was rolled back "
                                   "before (%s)",
                                   r->rejected[i].version, r->rejected[i].reason);
                        return UPDATE_REJECTED;
                }
        k = bundle_check_update(mf, r->name, r->current[0] ? r->current : NULL, force, &err);
        if (k < 0) {
                copy_string(why, why_size, err.message);
                return UPDATE_REJECTED;
        }
        dfd = image_dir_open(u, r->name, O_CREAT);
        if (dfd < 0) {
                snprintf(why, why_size, "cannot open %s/%s: %s", u->images, r->name,
                         strerror(-dfd));
                return UPDATE_DEFERRED;
        }
        (void) bundle_remove_temporaries(dfd);
        k = bundle_install_payload(st->b.payload_fd, mf, dfd, m->conf.update_max_size,
                                   BUNDLE_INSTALL_REPLACE, &err);
        if (k < 0) {
                copy_string(why, why_size, err.message);
                return bundle_error_is_rejection(k) ? UPDATE_REJECTED : UPDATE_DEFERRED;
        }

        /* The record, then the link. A version on trial is not kept as Previous=: the last
         * good one is. */
        saved = *r;
        copy_string(old, sizeof(old), r->current);
        if (!r->trial) {
                copy_string(r->previous, sizeof(r->previous), r->current);
                copy_string(r->previous_sha256, sizeof(r->previous_sha256), r->sha256);
        }
        copy_string(r->current, sizeof(r->current), mf->version);
        copy_string(r->sha256, sizeof(r->sha256), digest);
        r->trial = true;
        r->trial_boots = u->booting ? 1 : 0; /* at boot, this boot is its first */
        k = record_write(u, r);
        if (k >= 0) {
                k = select_version(u, r->name, r->current);
                if (k < 0)
                        log_error_errno(k, "Image %s: cannot select version %s: %m", r->name,
                                        r->current);
        }
        if (k < 0) {
                *r = saved;
                (void) record_write(u, r);
                if (!streq(mf->version, old))
                        remove_version(u, r->name, mf->version);
                snprintf(why, why_size, "cannot record or select the new version: %s",
                         strerror(-k));
                return UPDATE_DEFERRED;
        }
        if (saved.trial && !streq(old, r->current) && !streq(old, r->previous))
                remove_version(u, r->name, old); /* a version replaced while on trial */
        log_info("Image %s: installed version %s from %s (key %s); it runs on trial.", r->name,
                 r->current, st->stem, st->b.key_source);
        announce(m, "installed", r->name, r->current, st->stem);
        restart_users(m, r);
        trial_begin(m, r);
        why[0] = 0;
        return UPDATE_INSTALLED;
}

static int staged_cmp(const void *a, const void *b) {
        const staged *x = a, *y = b;
        int c;

        /* verified ones by image, newest version first; the others by stem */
        if (x->opened != y->opened)
                return x->opened ? -1 : 1;
        if (!x->opened)
                return strcmp(x->stem, y->stem);
        c = strcmp(x->b.manifest.name, y->b.manifest.name);
        return c ? c : -image_version_compare(x->b.manifest.version, y->b.manifest.version);
}

static void report_key(const char *path, int error, const char *message, void *userdata) {
        (void) userdata, (void) error;
        log_warning("%s: not a trusted key: %s", path, message);
}

int update_apply(manager *m, bool force, update_result **ret) {
        update_state *u = m->updates;
        _cleanup_strv_free_ char **stems = NULL;
        _cleanup_free_ char *trusted = NULL;
        _cleanup_close_ int dfd = -1;
        bundle_keyring keys = {};
        update_result *res = NULL;
        staged *st = NULL;
        size_t n;
        int k;

        *ret = NULL;
        if (!u)
                return -ENOMEM;
        stems = update_staged(m);
        if (!stems)
                return log_oom();
        n = strv_length(stems);
        if (n == 0)
                return 0;
        if (asprintf_safe(&trusted, "%s/trusted", m->settings.config_dir) < 0)
                return log_oom();
        k = bundle_keyring_load_dir(trusted, &keys, report_key, NULL);
        if (k < 0)
                log_warning_errno(k, "Cannot read the trusted keys in %s: %m", trusted);
        dfd = open(u->incoming, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        st = calloc(n, sizeof(*st));
        res = calloc(n, sizeof(*res));
        if (!st || !res || dfd < 0) {
                k = dfd < 0 ? log_error_errno(errno, "Cannot open %s: %m", u->incoming) : log_oom();
                free(st);
                free(res);
                bundle_keyring_done(&keys);
                return k;
        }

        /* 1. signatures and manifests */
        for (size_t i = 0; i < n; i++) {
                bundle_error err = {};

                st[i].stem = stems[i];
                st[i].b.payload_fd = -1;
                st[i].error = bundle_open(dfd, stems[i], &keys, &st[i].b, &err);
                st[i].opened = st[i].error >= 0;
                copy_string(st[i].reason, sizeof(st[i].reason), err.message);
        }
        qsort(st, n, sizeof(*st), staged_cmp);

        /* 2..5, one image at a time: its newest verified bundle; the older ones are moot. */
        for (size_t i = 0; i < n; i++) {
                image_record *r = st[i].opened ? record_find(u, st[i].b.manifest.name) : NULL;
                char why[UPDATE_REASON_MAX] = "";
                update_outcome o;

                if (!st[i].opened) {
                        o = bundle_error_is_rejection(st[i].error) ? UPDATE_REJECTED
                                                                   : UPDATE_DEFERRED;
                        copy_string(why, sizeof(why), st[i].reason);
                } else if (!r) {
                        o = UPDATE_REJECTED;
                        snprintf(why, sizeof(why), "no unit uses an image named %s",
                                 st[i].b.manifest.name);
                } else if (i > 0 && st[i - 1].opened &&
                           streq(st[i - 1].b.manifest.name, st[i].b.manifest.name)) {
                        o = UPDATE_REJECTED;
                        snprintf(why, sizeof(why), "superseded by %s, staged at the same time",
                                 st[i - 1].stem);
                } else
                        o = install(m, &st[i], r, force, why, sizeof(why));

                result_set(&res[i], &st[i], o, why);
                if (o == UPDATE_REJECTED) {
                        log_warning("Update bundle %s rejected: %s", st[i].stem, why);
                        bundle_dispose(u, st[i].stem, why);
                        announce(m, "rejected", res[i].image[0] ? res[i].image : NULL,
                                 res[i].version[0] ? res[i].version : NULL, why);
                } else if (o == UPDATE_DEFERRED)
                        log_error("Update bundle %s not installed now (kept for later): %s",
                                  st[i].stem, why);
                else
                        bundle_dispose(u, st[i].stem, NULL);
                bundle_done(&st[i].b);
        }
        free(st);
        bundle_keyring_done(&keys);
        *ret = res;
        return (int) n;
}

/* ---- boot ---- */

/* A power cut between writing the record and switching the link: finish what the record
 * says when its file is complete (it was fsynced before the record), else go back. */
static void recover(manager *m, image_record *r) {
        update_state *u = m->updates;
        _cleanup_close_ int dfd = image_dir_open(u, r->name, 0);
        char linked[IMAGE_VERSION_MAX + 1];
        int k;

        if (dfd < 0)
                return;
        (void) bundle_remove_temporaries(dfd);
        (void) unlinkat(dfd, ".current.new", 0);
        link_version(u, r->name, linked);
        if (!r->current[0] || streq(linked, r->current))
                return;
        if (version_file_exists(dfd, r->current)) {
                log_warning("Image %s: completing the interrupted switch from %s to %s.", r->name,
                            linked[0] ? linked : "nothing", r->current);
                k = select_version(u, r->name, r->current);
                if (k < 0)
                        log_error_errno(k, "Image %s: cannot select version %s: %m", r->name,
                                        r->current);
                return;
        }
        log_warning("Image %s: version %s of the record is not installed; keeping %s.", r->name,
                    r->current, linked[0] ? linked : "nothing");
        if (streq(linked, r->previous))
                copy_string(r->sha256, sizeof(r->sha256), r->previous_sha256);
        else
                r->sha256[0] = 0;
        copy_string(r->current, sizeof(r->current), linked);
        r->trial = false;
        r->trial_boots = 0;
        (void) record_write(u, r);
}

/* At boot: staging temporaries (".#*", a staging cut short) are removed; parts of a bundle
 * without its manifest and other hidden files are moved to rejected/ (never applied, and
 * not lost). */
static void clean_incoming(update_state *u) {
        _cleanup_close_ int dfd = open(u->incoming, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int rfd = -1;
        _cleanup_strv_free_ char **names = NULL, **gone = NULL, **aside = NULL;

        names = dfd >= 0 ? dir_list(dfd, NULL) : NULL;
        STRV_FOREACH(f, names) {
                const char *n = *f;
                char manifest[NAME_MAX + 1];
                size_t l = strlen(n);
                struct stat st;

                if (startswith(n, ".#")) {
                        (void) strv_extend(&gone, n);
                        continue;
                }
                if (n[0] == '.') {
                        (void) strv_extend(&aside, n);
                        continue;
                }
                for (size_t i = 0; i < 2; i++)
                        if (endswith(n, kinds[i])) {
                                snprintf(manifest, sizeof(manifest), "%.*s.manifest",
                                         (int) (l - strlen(kinds[i])), n);
                                if (fstatat(dfd, manifest, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                        (void) strv_extend(&aside, n);
                        }
        }
        STRV_FOREACH(f, gone) {
                log_info("Removing %s/%s: a staging cut short.", u->incoming, *f);
                (void) unlinkat(dfd, *f, 0);
        }
        if (aside && mkdir_p(u->rejected, 0750) >= 0)
                rfd = open(u->rejected, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        STRV_FOREACH(f, aside) {
                log_warning("Moving %s/%s to %s: not part of a complete bundle.", u->incoming, *f,
                            u->rejected);
                if (rfd < 0 || renameat(dfd, *f, rfd, *f) < 0)
                        log_warning_errno(errno, "Cannot move %s/%s aside: %m", u->incoming, *f);
        }
}

void update_boot(manager *m) {
        update_state *u = m->updates;
        _cleanup_free_ update_result *res = NULL;
        int n;

        if (!u)
                return;
        for (size_t i = 0; i < u->n; i++) {
                image_record *r = u->records[i];

                recover(m, r);
                if (!r->trial)
                        continue;
                if (r->trial_boots >= m->conf.trial_boots_max) {
                        trial_fail(m, r, "%u boots began on trial without it becoming healthy",
                                   r->trial_boots);
                        continue;
                }
                r->trial_boots++;
                (void) record_write(u, r);
                log_info("Image %s: version %s is on trial (boot %u of at most %u).", r->name,
                         r->current, r->trial_boots, m->conf.trial_boots_max);
                trial_begin(m, r);
        }
        clean_incoming(u);
        u->booting = true;
        n = update_apply(m, false, &res);
        u->booting = false;
        for (int i = 0; i < n; i++)
                if (res[i].outcome == UPDATE_INSTALLED && res[i].reason[0])
                        log_info("Update bundle %s: %s.", res[i].stem, res[i].reason);
}
