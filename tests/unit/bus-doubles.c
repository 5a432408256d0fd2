/* Test doubles of the manager, its services, their log streams and the update engine, for
 * init/bus.c in tests/unit/test-bus.c and tests/fuzz/fuzz-bus.c: four fake services
 * (a.service, b@x.service, c.service, fail.service), the first two with logs, c refused a
 * start, and two images (game on trial with a rejected digest, fresh without a previous
 * version). */
#include <signal.h>
#include <stdarg.h>
#include <systemd/sd-bus.h>

#include "bus-doubles.h"
#include "bus.h"
#include "crash.h"
#include "log.h"
#include "resource.h"
#include "strv.h"
#include "update.h"
#include "vigil-conf.h"

#define MAX_SUBSCRIBERS 64

struct log_stream {
        char **lines;
        struct {
                log_line_fn fn;
                void *userdata;
                bool used;
        } subs[MAX_SUBSCRIBERS];
};

manager fake_manager;

int log_internal(int level, int error, const char *fmt, ...) {
        va_list ap;

        if (getenv("TEST_BUS_DEBUG")) {
                fprintf(stderr, "# server: ");
                errno = error < 0 ? -error : error;
                va_start(ap, fmt);
                vfprintf(stderr, fmt, ap);
                va_end(ap);
                fputc('\n', stderr);
        }
        return -(error < 0 ? -error : error);
}

service *manager_find_service(manager *m, const char *name) {
        for (size_t i = 0; i < m->n_services; i++)
                if (streq(service_name(m->services[i]), name))
                        return m->services[i];
        return NULL;
}

static void fake_log(service *s, const char *line) {
        if (!s->log)
                return;
        for (size_t i = 0; i < MAX_SUBSCRIBERS; i++)
                if (s->log->subs[i].used)
                        s->log->subs[i].fn(line, strlen(line), s->log->subs[i].userdata);
}

/* c.service plays one that ResourceEnforcement=required keeps down. */
bool service_start_refused(const service *s, char *why, size_t size) {
        if (!streq(service_name(s), "c.service"))
                return false;
        snprintf(why, size,
                 "ResourceEnforcement=required, but CPUWeight= not enforced: cpu "
                 "controller unavailable");
        return true;
}

int service_start(service *s) {
        if (streq(service_name(s), "fail.service"))
                return -EIO;
        if (streq(service_name(s), "c.service"))
                return -ECANCELED;
        s->state = SERVICE_RUNNING;
        s->main_pid = 4242;
        s->active_since = 1;
        s->active_since_realtime = 1700000000000000ULL;
        fake_log(s, "2024-01-01T00:00:03.000Z started");
        bus_service_changed(s->manager->bus, s);
        return 0;
}

int service_stop(service *s) {
        s->state = SERVICE_DEAD;
        s->main_pid = 0;
        s->active_since = 0;
        /* b@x.service plays a service that goes away when stopped. */
        if (streq(service_name(s), "b@x.service"))
                bus_service_removed(s->manager->bus, s);
        bus_service_changed(s->manager->bus, s);
        return 0;
}

int service_restart(service *s) {
        s->restarts++;
        return service_start(s);
}

int service_kill(service *s, int sig) {
        if (s->state != SERVICE_RUNNING)
                return -ESRCH;
        s->result = sig == SIGKILL ? RESULT_SIGNAL : s->result;
        return 0;
}

const char *service_active_state(const service *s) {
        switch (s->state) {
        case SERVICE_RUNNING:
                return "active";
        case SERVICE_FAILED:
                return "failed";
        case SERVICE_DEAD:
                return "inactive";
        default:
                return "activating";
        }
}

const char *service_state_to_string(service_state st) {
        return st == SERVICE_RUNNING ? "running" : st == SERVICE_FAILED ? "failed" : "dead";
}

const char *service_result_to_string(service_result r) {
        return r == RESULT_SUCCESS ? "success" : "exit-code";
}

int log_stream_tail(const log_stream *l, size_t n, char ***ret) {
        size_t len = strv_length(l->lines);
        char **copy = NULL;

        if (n > 100000) /* the contract bus.c must honour */
                return -EINVAL;
        for (size_t i = len > n ? len - n : 0; i < len; i++)
                if (strv_extend(&copy, l->lines[i]) < 0) {
                        strv_free(copy);
                        return -ENOMEM;
                }
        *ret = copy;
        return 0;
}

int log_stream_subscribe(log_stream *l, log_line_fn fn, void *userdata, unsigned *ret_id) {
        for (unsigned i = 0; i < MAX_SUBSCRIBERS; i++)
                if (!l->subs[i].used) {
                        l->subs[i].fn = fn;
                        l->subs[i].userdata = userdata;
                        l->subs[i].used = true;
                        *ret_id = i;
                        return 0;
                }
        return -ENOSPC;
}

void log_stream_unsubscribe(log_stream *l, unsigned id) {
        if (id < MAX_SUBSCRIBERS)
                l->subs[id].used = false;
}

int service_reload(service *s) {
        if (s->state != SERVICE_RUNNING)
                return -EBUSY;
        return streq(service_name(s), "a.service") ? -EOPNOTSUPP : 0;
}

void service_reset_failed(service *s) {
        if (s->state == SERVICE_FAILED) {
                s->state = SERVICE_DEAD;
                s->result = RESULT_SUCCESS;
                bus_service_changed(s->manager->bus, s);
        }
}

/* ReloadUnits plays a broken file while WORK/broken exists. */
char bus_doubles_work[64];

/* gid 4242 may restart and start a.service (and instances of b), 4243 is the admin group,
 * 4244 may reboot. */
#define TEST_CONF                                                                                  \
        "[Access]\nAdminGroup=4243\nGrant=4242 restart,start a,b@x.service\n"                      \
        "Grant=4244 reboot\n"

int manager_reload_units(manager *m, char ***ret_changes, char **ret_error) {
        char p[128];

        snprintf(p, sizeof(p), "%s/broken", bus_doubles_work);
        if (access(p, F_OK) == 0) {
                *ret_error = strdup("/etc/vigil/units/x.service:3: unknown directive Bogus=");
                return -EBADMSG;
        }
        *ret_changes = strv_copy((char *[]){ "changed a.service", NULL });
        return 0;
}

int manager_set_properties(manager *m, service *s, char *const *assignments, bool runtime,
                           char **ret_error) {
        STRV_FOREACH(a, assignments)
                if (!startswith(*a, "Restart")) {
                        *ret_error = strdup("not settable");
                        return -EINVAL;
                }
        STRV_FOREACH(a, assignments)
                if (streq(*a, "RestartSec=2500000us"))
                        s->unit->restart_sec = 2500000;
        return 0;
}

const char *manager_property_source(manager *m, const service *s, const char *key) {
        return streq(key, "RestartSec") && s->unit->restart_sec == 2500000 ? "runtime" : NULL;
}

int crash_records_list(manager *m, const char *name, size_t max, char ***ret) {
        *ret = NULL;
        if (streq(name, "a.service") && max > 0)
                *ret = strv_copy((char *[]){ "Service=a.service\nResult=signal\n", NULL });
        return 0;
}

int shutdowns;

void manager_begin_shutdown(manager *m, manager_exit how) {
        shutdowns++;
        if (how == MANAGER_EXIT)
                sd_event_exit(m->event, 0);
}

int resource_warnings(const unit *u, char ***ret) {
        *ret = strv_copy((char *[]){ "CPUWeight= not enforced: no cpu controller", NULL });
        return 0;
}

usec_t now_usec(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

/* ---- the update engine ---- */

#define STAGED_MAX 16

static char **staged;

const char *update_outcome_to_string(update_outcome o) {
        switch (o) {
        case UPDATE_INSTALLED:
                return "installed";
        case UPDATE_REJECTED:
                return "rejected";
        case UPDATE_DEFERRED:
                return "deferred";
        }
        return "invalid";
}

/* Reads the manifest from its fd: "[Bundle]..." stages the bundle (GetUpdateStatus then lists
 * it), anything else is -EINVAL; stem big-1.0 is too large. */
int update_stage(manager *m, const char *stem, int payload_fd, int manifest_fd, int signature_fd,
                 char **ret_error) {
        char buf[64] = "";
        ssize_t n;

        *ret_error = NULL;
        if (streq(stem, "big-1.0")) {
                *ret_error = strdup("big-1.0.squashfs: larger than MaxBundleSize= (4G)");
                return -EFBIG;
        }
        n = read(manifest_fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        if (!startswith(buf, "[Bundle]")) {
                if (asprintf(ret_error, "%s.manifest: not a manifest", stem) < 0)
                        return -ENOMEM;
                return -EINVAL;
        }
        if (strv_length(staged) >= STAGED_MAX || strv_contains(staged, stem))
                return 0;
        return strv_extend(&staged, stem);
}

static update_result results[] = {
        { "game-1.2", "game", "1.2", UPDATE_INSTALLED, "" },
        { "bad-0.1", "bad", "0.1", UPDATE_REJECTED,
          "bad-0.1.manifest.minisig: no trusted key \xff" },
        { "full-1.0", "full", "1.0", UPDATE_DEFERRED, "No space left on device" },
};

/* force: one bundle installed; else one of each outcome. */
int update_apply(manager *m, bool force, update_result **ret) {
        size_t n = force ? 1 : ELEMENTSOF(results);

        *ret = malloc(n * sizeof(update_result));
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, results, n * sizeof(update_result));
        staged = strv_free(staged);
        return (int) n;
}

/* game rolls back (and signals it), fresh has no previous version, the rest do not exist. */
int update_rollback(manager *m, const char *image, char **ret_error) {
        *ret_error = NULL;
        if (streq(image, "game")) {
                bus_image_update(m->bus, "rolled-back", "game", "1.0", "rolled back by an admin");
                return 0;
        }
        if (streq(image, "fresh")) {
                *ret_error = strdup("fresh has no previous version");
                return -ESRCH;
        }
        return -ENOENT;
}

static update_rejection rejected[] = {
        { "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd", "1.2",
          "crashed \xff on trial" },
};

static image_record records[] = {
        { .name = (char *) "game",
          .current = "1.1",
          .sha256 = "abababababababababababababababababababababababababababababababab",
          .previous = "1.0",
          .trial = true,
          .trial_boots = 1,
          .rejected = rejected,
          .n_rejected = ELEMENTSOF(rejected),
          .trial_status = "waiting for a.service to be up for 30s" },
        { .name = (char *) "fresh", .current = "2.0" },
};

image_record *const *update_records(manager *m, size_t *ret_n) {
        static image_record *const list[] = { &records[0], &records[1] };

        *ret_n = ELEMENTSOF(list);
        return list;
}

char **update_staged(manager *m) {
        return staged ? strv_copy(staged) : calloc(1, sizeof(char *));
}

static log_stream logs[2];

void bus_doubles_setup(manager *m) {
        static unit units[4];
        static service services[4];
        static service_extra no_extra, extra; /* bus.c only reads them */
        static service *list[4];
        static const char *names[] = { "a.service", "b@x.service", "c.service", "fail.service" };

        logs[0].lines = strv_copy((char *[]){ "2024-01-01T00:00:00.000Z one",
                                              "2024-01-01T00:00:01.000Z two",
                                              "2024-01-01T00:00:02.000Z bad \xff byte", NULL });
        for (size_t i = 0; i < ELEMENTSOF(services); i++) {
                units[i].name = (char *) names[i];
                units[i].description = (char *) "A fake service";
                units[i].container = &unit_container_defaults;
                units[i].resource = &unit_resource_defaults;
                units[i].commands = &unit_no_commands;
                units[i].relations = &unit_no_relations;
                units[i].seccomp = &unit_seccomp_defaults;
                units[i].process = &unit_process_defaults;
                units[i].backoff = &unit_backoff_defaults;
                services[i] = (service){ .manager = m,
                                         .unit = &units[i],
                                         .main_pid = -1,
                                         .extra = &no_extra,
                                         .log = i < 2 ? &logs[i] : NULL };
                list[i] = &services[i];
        }
        units[2].description = (char *) "Bad \xc0\xaf UTF-8";
        extra = (service_extra){ .status_text = (char *) "status \xed\xa0\x80 surrogate" };
        services[2].extra = &extra;
        m->services = list;
        m->n_services = ELEMENTSOF(list);
        m->settings.log_dir = bus_doubles_work;
        if (vigil_conf_parse("test.conf", TEST_CONF, strlen(TEST_CONF), NULL, &m->conf) != 0)
                _exit(89);
}

void bus_doubles_done(void) {
        logs[0].lines = strv_free(logs[0].lines);
        staged = strv_free(staged);
}
