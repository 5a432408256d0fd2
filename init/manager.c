/* The manager: the event loop, the set of services, their ordering, boot and shutdown. */
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "bus.h"
#include "cgroup.h"
#include "config.h"
#include "crash.h"
#include "fileio.h"
#include "log.h"
#include "manager.h"
#include "sys.h"
#include "update.h"
#include "vigil-conf.h"

#define NOTIFY_MESSAGE_MAX 4096
#define NOTIFY_BATCH 64 /* messages per wakeup, so that a flood cannot starve the loop */

usec_t now_usec(clockid_t clock) {
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

service *manager_find_service(manager *m, const char *name) {
        size_t lo = 0, hi = m->n_services;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(name, service_name(m->services[mid]));

                if (c == 0)
                        return m->services[mid];
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

static service *manager_find_pid(manager *m, pid_t pid) {
        for (size_t i = 0; i < m->n_services; i++) {
                service *s = m->services[i];

                if (s->main_pid == pid || s->control_pid == pid)
                        return s;
        }
        return NULL;
}

static int on_dispatch(sd_event_source *src, void *userdata);

void manager_queue_dispatch(manager *m) {
        if (m->dispatch_queued)
                return;
        m->dispatch_queued = true;
        sd_event_source_set_enabled(m->dispatch_source, SD_EVENT_ONESHOT);
}

void manager_service_state_changed(manager *m, service *s) {
        /* BindsTo=: units bound to one that went down go down with it. */
        if (!service_is_active(s) && s->state != SERVICE_AUTO_RESTART) {
                size_t n;
                service *const *d = service_deps(s, DEP_BOUND_BY, &n);

                for (size_t i = 0; i < n; i++)
                        if (d[i]->target == TARGET_STARTED)
                                service_stop(d[i]);
        }
        if (m->bus)
                bus_service_changed(m->bus, s);
        update_service_state_changed(m, s);
        manager_queue_dispatch(m);
}

/* Moves every dependency of s of that kind to target. */
static void deps_request(service *s, service_dep kind, service_target target) {
        size_t n;
        service *const *d = service_deps(s, kind, &n);

        for (size_t i = 0; i < n; i++)
                if (d[i]->target != target)
                        (void) (target == TARGET_STARTED ? service_start(d[i])
                                                         : service_stop(d[i]));
}

void manager_service_requested(manager *m, service *s, service_target target) {
        if (target == TARGET_STARTED) {
                deps_request(s, DEP_REQUIRES, TARGET_STARTED);
                deps_request(s, DEP_WANTS, TARGET_STARTED);
                deps_request(s, DEP_CONFLICTS, TARGET_STOPPED);
        } else
                deps_request(s, DEP_REQUIRED_BY, TARGET_STOPPED);
        manager_queue_dispatch(m);
}

/* May s start now? 1: yes, 0: wait, -1: it can never start (already failed). */
static int start_allowed(service *s) {
        service *const *d;
        char why[512];
        size_t n;

        if (service_start_refused(s, why, sizeof(why))) {
                service_dependency_failed(s, why);
                return -1;
        }
        d = service_deps(s, DEP_AFTER, &n);
        for (size_t i = 0; i < n; i++) {
                service *t = d[i];

                if (t->target == TARGET_STARTED && !t->start_done)
                        return 0;
        }
        d = service_deps(s, DEP_REQUIRES, &n);
        for (size_t i = 0; i < n; i++) {
                service *t = d[i];

                if (t->target == TARGET_STOPPED && !service_is_started(t)) {
                        snprintf(why, sizeof(why), "required service %s did not start",
                                 service_name(t));
                        service_dependency_failed(s, why);
                        return -1;
                }
        }
        return 1;
}

/* May s stop now? Those ordered after it stop first. */
static bool stop_allowed(service *s) {
        size_t n;
        service *const *d = service_deps(s, DEP_BEFORE, &n);

        for (size_t i = 0; i < n; i++) {
                service *t = d[i];

                if (t->target == TARGET_STOPPED && service_is_active(t))
                        return false;
        }
        return true;
}

static bool manager_all_stopped(manager *m) {
        for (size_t i = 0; i < m->n_services; i++)
                if (service_is_active(m->services[i]) ||
                    m->services[i]->state == SERVICE_AUTO_RESTART)
                        return false;
        return true;
}

/* After a burst (the boot's starts, a reload that parsed every unit again), the memory freed
 * between what stays (spawn contexts, log buffers, units read again and dropped) goes back to
 * the kernel: PID 1 lives long and the next burst may be far off. */
static void manager_release_memory(void) {
        (void) malloc_trim(0);
}

static void manager_check_boot_finished(manager *m) {
        char buf[64];

        if (m->ts_all_started || m->shutting_down)
                return;
        for (size_t i = 0; i < m->n_services; i++) {
                service *s = m->services[i];

                if (s->target == TARGET_STARTED && !s->start_done)
                        return;
        }
        m->ts_all_started = now_usec(CLOCK_MONOTONIC);
        log_info("Startup finished in %s (units loaded after %s).",
                 format_timespan(buf, sizeof(buf), m->ts_all_started - m->ts_exec),
                 format_timespan(buf + 32, sizeof(buf) - 32, m->ts_units_loaded - m->ts_exec));
        manager_release_memory();
}

static void manager_apply_pending(manager *m);

static int on_dispatch(sd_event_source *src, void *userdata) {
        manager *m = userdata;

        m->dispatch_queued = false;
        manager_apply_pending(m);
        for (size_t i = 0; i < m->n_services; i++) {
                service *s = m->services[i];

                if (s->target == TARGET_STARTED) {
                        if ((s->state == SERVICE_DEAD || s->state == SERVICE_FAILED) &&
                            !s->start_done && !service_retry_pending(s) && start_allowed(s) > 0)
                                service_dispatch(s);
                } else if ((service_is_active(s) && s->state != SERVICE_STOP &&
                            s->state != SERVICE_STOP_SIGTERM && s->state != SERVICE_STOP_SIGKILL) ||
                           s->state == SERVICE_AUTO_RESTART || service_retry_pending(s)) {
                        if (stop_allowed(s))
                                service_dispatch(s);
                }
        }
        manager_check_boot_finished(m);
        if (m->shutting_down && manager_all_stopped(m)) {
                log_info("All services stopped.");
                sd_event_exit(m->event, 0);
        }
        return 0;
}

static void manager_reap(manager *m) {
        for (;;) {
                siginfo_t si = {};
                service *s;

                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != ECHILD)
                                log_error_errno(errno, "waitid() failed: %m");
                        break;
                }
                if (si.si_pid <= 0)
                        break;
                if (update_sigchld(m, si.si_pid, si.si_code, si.si_status))
                        continue;
                s = manager_find_pid(m, si.si_pid);
                if (s) {
                        log_stream_read_pending(s->log);
                        service_sigchld(s, si.si_pid, si.si_code, si.si_status);
                }
        }
        /* Without cgroups, a stopping service is gone when its process groups are. */
        if (m->cgroup_root_fd < 0)
                for (size_t i = 0; i < m->n_services; i++)
                        service_check_stopped(m->services[i]);
}

void manager_begin_shutdown(manager *m, manager_exit how) {
        static const char *const names[] = {
                [MANAGER_EXIT] = "exit",
                [MANAGER_REBOOT] = "reboot",
                [MANAGER_POWEROFF] = "power-off",
                [MANAGER_HALT] = "halt",
        };

        if (m->shutting_down) {
                m->exit = how;
                return;
        }
        log_info("Shutting down for %s: stopping all services.", names[how]);
        m->exit = how;
        m->shutting_down = true;
        for (size_t i = 0; i < m->n_services; i++)
                m->services[i]->target = TARGET_STOPPED;
        manager_queue_dispatch(m);
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        manager *m = userdata;
        usec_t now;

        switch (si->ssi_signo) {
        case SIGCHLD:
                manager_reap(m);
                break;
        case SIGTERM:
                manager_begin_shutdown(m, m->settings.sandbox ? MANAGER_EXIT : MANAGER_REBOOT);
                break;
        case SIGINT:
                /* Ctrl-Alt-Del: seven within 2 s force an immediate reboot. */
                now = now_usec(CLOCK_MONOTONIC);
                if (m->ctrl_alt_del_count == 0 || now - m->ctrl_alt_del_first > 2 * USEC_PER_SEC) {
                        m->ctrl_alt_del_first = now;
                        m->ctrl_alt_del_count = 0;
                }
                if (++m->ctrl_alt_del_count >= 7 && !m->settings.sandbox) {
                        log_notice("Ctrl-Alt-Del pressed 7 times within 2s: rebooting now.");
                        m->exit = MANAGER_REBOOT;
                        m->force = true;
                        sd_event_exit(m->event, 0);
                        break;
                }
                manager_begin_shutdown(m, m->settings.sandbox ? MANAGER_EXIT : MANAGER_REBOOT);
                break;
        case SIGUSR1:
                manager_begin_shutdown(m, m->settings.sandbox ? MANAGER_EXIT : MANAGER_HALT);
                break;
        case SIGUSR2:
                manager_begin_shutdown(m, m->settings.sandbox ? MANAGER_EXIT : MANAGER_POWEROFF);
                break;
        default:
                break;
        }
        return 0;
}

/* Splits a datagram into its NUL-free lines and hands them to the sender's service. */
static void handle_notify(manager *m, char *buf, size_t n, pid_t pid) {
        char *fields[64];
        size_t k = 0;
        service *s;

        s = manager_find_pid(m, pid);
        if (!s) {
                log_debug("Notification from pid %d, which is no service's; ignored.", (int) pid);
                return;
        }
        buf[n] = 0;
        for (char *p = buf, *e; *p && k < ELEMENTSOF(fields) - 1; p = e) {
                e = strchrnul(p, '\n');
                if (*e)
                        *e++ = 0;
                if (*p)
                        fields[k++] = p;
        }
        fields[k] = NULL;
        service_notify(s, pid, fields);
}

static int on_notify(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        manager *m = userdata;

        for (int i = 0; i < NOTIFY_BATCH; i++) {
                char buf[NOTIFY_MESSAGE_MAX + 1];
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * 16)];
                } control;
                struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &control,
                        .msg_controllen = sizeof(control),
                };
                struct ucred *cred = NULL;
                ssize_t n;

                n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_warning_errno(errno, "Reading a notification failed: %m");
                        break;
                }
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                        if (c->cmsg_level != SOL_SOCKET)
                                continue;
                        if (c->cmsg_type == SCM_CREDENTIALS &&
                            c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                                cred = (struct ucred *) CMSG_DATA(c);
                        else if (c->cmsg_type == SCM_RIGHTS) {
                                /* We take no fds: close whatever was passed. */
                                int *fds = (int *) CMSG_DATA(c);
                                size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

                                for (size_t j = 0; j < nfd; j++)
                                        close(fds[j]);
                        }
                }
                if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t) n > sizeof(buf) - 1) {
                        log_warning("Dropped an oversized notification.");
                        continue;
                }
                if (!cred || cred->pid <= 0 || n == 0)
                        continue;
                handle_notify(m, buf, (size_t) n, cred->pid);
        }
        return 0;
}

static int manager_open_notify(manager *m) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        int one = 1, r;

        if (strlen(m->notify_path) >= sizeof(sa.sun_path))
                return log_error_errno(ENAMETOOLONG, "Notify socket path %s is too long.",
                                       m->notify_path);
        memcpy(sa.sun_path, m->notify_path, strlen(m->notify_path) + 1);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(errno, "Cannot create the notify socket: %m");
        (void) unlink(m->notify_path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return log_error_errno(errno, "Cannot bind %s: %m", m->notify_path);
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                return log_error_errno(errno, "Cannot enable SO_PASSCRED: %m");
        r = sd_event_add_io(m->event, &m->notify_source, fd, EPOLLIN, on_notify, m);
        if (r < 0)
                return log_error_errno(r, "Cannot watch the notify socket: %m");
        sd_event_source_set_io_fd_own(m->notify_source, true);
        m->notify_fd = TAKE_FD(fd);
        return 0;
}

int manager_new(const manager_settings *s, manager **ret) {
        static const int signals[] = { SIGCHLD, SIGTERM, SIGINT, SIGUSR1, SIGUSR2 };
        manager *m;
        int r;

        m = calloc(1, sizeof(manager));
        if (!m)
                return log_oom();
        m->ops = &sys_ops_kernel;
        m->notify_fd = m->cgroup_root_fd = -1;
        m->ts_exec = now_usec(CLOCK_MONOTONIC);
        m->settings.sandbox = s->sandbox;
        m->settings.sandbox_id = s->sandbox_id;
        m->settings.config_dir = strdup(s->config_dir);
        m->settings.state_dir = strdup(s->state_dir);
        m->settings.runtime_dir = strdup(s->runtime_dir);
        m->settings.log_dir = strdup(s->log_dir);
        if (!m->settings.config_dir || !m->settings.state_dir || !m->settings.runtime_dir ||
            !m->settings.log_dir || asprintf_safe(&m->units_dir, "%s/units", s->config_dir) < 0 ||
            asprintf_safe(&m->policies_dir, "%s/policies", s->config_dir) < 0 ||
            asprintf_safe(&m->notify_path, "%s/notify", s->runtime_dir) < 0) {
                manager_free(m);
                return log_oom();
        }
        {
                _cleanup_free_ char *conf = NULL;

                if (asprintf_safe(&conf, "%s/vigil.conf", s->config_dir) < 0) {
                        manager_free(m);
                        return log_oom();
                }
                vigil_conf_load(conf, NULL, &m->conf);
        }
        m->log = (log_settings){
                .dir = m->settings.log_dir,
                .ring_bytes = 64 * 1024,
                .file_max_bytes = 1024 * 1024,
                .file_keep = 3,
                .console = m->conf.log_console,
        };

        r = sd_event_new(&m->event);
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < ELEMENTSOF(signals); i++) {
                r = sd_event_add_signal(m->event, NULL, signals[i], on_signal, m);
                if (r < 0)
                        goto fail;
        }
        r = sd_event_add_defer(m->event, &m->dispatch_source, on_dispatch, m);
        if (r < 0)
                goto fail;
        sd_event_source_set_enabled(m->dispatch_source, SD_EVENT_OFF);

        const char *dirs[] = { m->settings.runtime_dir, m->settings.state_dir,
                               m->settings.log_dir };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                r = mkdir_p(dirs[i], 0755);
                if (r < 0)
                        log_warning_errno(r, "Cannot create %s: %m", dirs[i]);
        }
        r = manager_open_notify(m);
        if (r < 0)
                goto fail;
        cgroup_setup(m);
        *ret = m;
        return 0;

fail:
        log_error_errno(r, "Cannot set up the event loop: %m");
        manager_free(m);
        return r;
}

static void override_free(property_override *o);

manager *manager_free(manager *m) {
        if (!m)
                return NULL;
        bus_server_free(m->bus);
        update_free(m);
        crash_records_flush(m);
        for (size_t i = 0; i < m->n_services; i++)
                service_free(m->services[i]);
        free(m->services);
        for (size_t i = 0; i < m->n_overrides; i++)
                override_free(&m->overrides[i]);
        free(m->overrides);
        vigil_conf_done(&m->conf);
        cgroup_teardown(m);
        sd_event_source_disable_unref(m->notify_source);
        sd_event_source_disable_unref(m->dispatch_source);
        if (m->notify_path)
                (void) unlink(m->notify_path);
        sd_event_unref(m->event);
        free((char *) m->settings.config_dir);
        free((char *) m->settings.state_dir);
        free((char *) m->settings.runtime_dir);
        free((char *) m->settings.log_dir);
        free(m->units_dir);
        free(m->policies_dir);
        free(m->notify_path);
        free(m);
        return NULL;
}

static int service_cmp(const void *a, const void *b) {
        return strcmp(service_name(*(service *const *) a), service_name(*(service *const *) b));
}

/* Turns the names in each unit into pointers, in both directions. */
static int manager_resolve(manager *m) {
        int r = 0;

        for (size_t i = 0; i < m->n_services; i++) {
                service *s = m->services[i];
                const unit *u = s->unit;
                service *t;

                STRV_FOREACH(n, u->relations->after)
                        if ((t = manager_find_service(m, *n)) && t != s)
                                r |= service_dep_add(s, DEP_AFTER, t) |
                                     service_dep_add(t, DEP_BEFORE, s);
                STRV_FOREACH(n, u->relations->before)
                        if ((t = manager_find_service(m, *n)) && t != s)
                                r |= service_dep_add(t, DEP_AFTER, s) |
                                     service_dep_add(s, DEP_BEFORE, t);
                STRV_FOREACH(n, u->relations->wants)
                        if ((t = manager_find_service(m, *n)) && t != s)
                                r |= service_dep_add(s, DEP_WANTS, t);
                STRV_FOREACH(n, u->relations->conflicts)
                        if ((t = manager_find_service(m, *n)) && t != s)
                                r |= service_dep_add(s, DEP_CONFLICTS, t) |
                                     service_dep_add(t, DEP_CONFLICTS, s);
                char **req[] = { u->relations->requires, u->relations->binds_to };
                for (size_t k = 0; k < ELEMENTSOF(req); k++)
                        STRV_FOREACH(n, req[k]) {
                                if (endswith(*n, ".target") || streq(*n, service_name(s)))
                                        continue;
                                t = manager_find_service(m, *n);
                                if (!t) {
                                        service_extra *x = s->extra->missing_requirement
                                                                   ? NULL
                                                                   : service_extra_get(s);

                                        if (x && asprintf_safe(&x->missing_requirement,
                                                               "required service %s does not exist",
                                                               *n) < 0)
                                                x->missing_requirement = NULL;
                                        continue;
                                }
                                r |= service_dep_add(s, DEP_REQUIRES, t) |
                                     service_dep_add(t, DEP_REQUIRED_BY, s);
                                if (k == 1)
                                        r |= service_dep_add(t, DEP_BOUND_BY, s);
                        }
        }
        return r < 0 ? -ENOMEM : 0;
}

/* Tarjan's strongly connected components over the After= edges: every component with
 * more than one service is an ordering cycle. Recursion depth is bounded by the number
 * of services. */
typedef struct tarjan {
        size_t *index, *low, next, *stack, depth;
        bool *on_stack;
        manager *m;
} tarjan;

static size_t service_index(manager *m, service *s) {
        service **p = bsearch(&s, m->services, m->n_services, sizeof(service *), service_cmp);

        return (size_t) (p - m->services);
}

static void tarjan_visit(tarjan *t, size_t v) {
        manager *m = t->m;
        service *s = m->services[v];
        service *const *d;
        size_t n;

        t->index[v] = t->low[v] = ++t->next;
        t->stack[t->depth++] = v;
        t->on_stack[v] = true;
        d = service_deps(s, DEP_AFTER, &n);
        for (size_t i = 0; i < n; i++) {
                size_t w = service_index(m, d[i]);

                if (!t->index[w]) {
                        tarjan_visit(t, w);
                        if (t->low[w] < t->low[v])
                                t->low[v] = t->low[w];
                } else if (t->on_stack[w] && t->index[w] < t->low[v])
                        t->low[v] = t->index[w];
        }
        if (t->low[v] != t->index[v])
                return;

        size_t top = t->depth;
        while (t->stack[--top] != v)
                ;
        if (t->depth - top > 1) {
                char names[1024] = "";
                size_t len = 0;

                for (size_t i = top; i < t->depth; i++) {
                        service *c = m->services[t->stack[i]];

                        c->in_cycle = true;
                        if (len < sizeof(names))
                                len += (size_t) snprintf(names + len, sizeof(names) - len, "%s%s",
                                                         i > top ? ", " : "", service_name(c));
                }
                log_error("Ordering cycle between %s: none of them will be started.", names);
        }
        for (size_t i = top; i < t->depth; i++)
                t->on_stack[t->stack[i]] = false;
        t->depth = top;
}

static int manager_find_cycles(manager *m) {
        size_t n = m->n_services;
        tarjan t = { .m = m };
        int r = 0;

        t.index = calloc(n + 1, sizeof(size_t));
        t.low = calloc(n + 1, sizeof(size_t));
        t.stack = calloc(n + 1, sizeof(size_t));
        t.on_stack = calloc(n + 1, sizeof(bool));
        if (!t.index || !t.low || !t.stack || !t.on_stack)
                r = log_oom();
        else
                for (size_t v = 0; v < n; v++)
                        if (!t.index[v])
                                tarjan_visit(&t, v);
        free(t.index);
        free(t.low);
        free(t.stack);
        free(t.on_stack);
        return r;
}

static void log_diags(const diag_list *d) {
        for (size_t i = 0; i < d->n; i++)
                log_internal(d->items[i].level == DIAG_ERROR ? LOG_ERR : LOG_WARNING, 0,
                             "%s:%u: %s", d->items[i].path, d->items[i].line, d->items[i].message);
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* ---- SetProperties ---------------------------------------------------------------------- */

#define OVERRIDE_FILE_MAX (64 * 1024)
#define OVERRIDES_MAX 4096
#define RELOAD_ERROR_MAX 8192

/* Sets one Key=Value on u (a copy of base) with the loader's own parsers; -EINVAL with *why on a
 * key that cannot change while running or a bad value. */
static int override_apply(unit *u, const unit *base, const char *key, const char *value,
                          char **why) {
        int r = unit_set_property(u, base, key, value, why);

        if (r == -ENOENT) {
                (void) asprintf_safe(why,
                                     "%s= cannot be changed while running (settable: Restart=, "
                                     "RestartSec=, RestartSteps=, RestartMaxDelaySec=, "
                                     "RestartBackoffResetSec=, RestartRandomizedDelaySec=, "
                                     "StartLimitIntervalSec=, StartLimitBurst=, and the "
                                     "resource settings: CPUWeight=, MemoryMax=, TasksMax=, ...)",
                                     key);
                return -EINVAL;
        }
        return r;
}

static void override_free(property_override *o) {
        free(o->service);
        free(o->key);
        free(o->value);
        free(o->source);
        free(o->persisted);
}

static property_override *override_find(manager *m, const char *name, const char *key) {
        for (size_t i = 0; i < m->n_overrides; i++)
                if (streq(m->overrides[i].service, name) && streq(m->overrides[i].key, key))
                        return &m->overrides[i];
        return NULL;
}

const char *manager_property_source(manager *m, const service *s, const char *key) {
        property_override *o = m ? override_find(m, service_name(s), key) : NULL;

        return o ? o->source : NULL;
}

static int override_record(manager *m, const char *name, const char *key, const char *value,
                           const char *source, bool runtime) {
        property_override *o = override_find(m, name, key), n = { .runtime = runtime };

        n.service = strdup(name);
        n.key = strdup(key);
        n.value = strdup(value);
        n.source = strdup(source);
        /* A runtime change hides the file's value until the next boot; the file keeps it
         * when it is written again for another key. */
        if (runtime && o && (o->persisted || !o->runtime))
                n.persisted = strdup(o->runtime ? o->persisted : o->value);
        if (!n.service || !n.key || !n.value || !n.source ||
            (runtime && o && (o->persisted || !o->runtime) && !n.persisted)) {
                override_free(&n);
                return -ENOMEM;
        }
        if (o) {
                override_free(o);
                *o = n;
                return 0;
        }
        if (m->n_overrides >= OVERRIDES_MAX) {
                override_free(&n);
                return -E2BIG;
        }
        o = reallocarray(m->overrides, m->n_overrides + 1, sizeof(*o));
        if (!o) {
                override_free(&n);
                return -ENOMEM;
        }
        m->overrides = o;
        m->overrides[m->n_overrides++] = n;
        return 0;
}

/* Applies the recorded overrides of name to u (a fresh unit after ReloadUnits). */
static void overrides_apply_to(manager *m, const char *name, unit *u) {
        unit scratch = *u;

        for (size_t i = 0; i < m->n_overrides; i++) {
                _cleanup_free_ char *why = NULL;

                if (streq(m->overrides[i].service, name) &&
                    override_apply(&scratch, u, m->overrides[i].key, m->overrides[i].value, &why) <
                            0)
                        log_warning("%s: override %s= not applied: %s", name, m->overrides[i].key,
                                    why ?: "invalid");
        }
        {
                _cleanup_free_ char *why = NULL;

                if (unit_check(&scratch, &why) < 0) {
                        log_warning("%s: overrides not applied to the new unit: %s", name,
                                    why ?: "invalid");
                        unit_changes_drop(&scratch, u);
                        return;
                }
        }
        unit_changes_take(u, &scratch);
}

static char *overrides_path(manager *m, const char *name) {
        char *p = NULL;

        (void) asprintf_safe(&p, "%s/overrides/%s.conf", m->settings.state_dir, name);
        return p;
}

/* Writes every persistent override of name, atomically. */
static int overrides_save(manager *m, const char *name, char *const *extra) {
        _cleanup_free_ char *path = overrides_path(m, name), *dir = NULL, *text = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        if (!path || asprintf_safe(&dir, "%s/overrides", m->settings.state_dir) < 0)
                return -ENOMEM;
        r = mkdir_p(dir, 0750);
        if (r < 0)
                return r;
        f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "# Written by vigil (SetProperties); applied over %s at every boot.\n", name);
        for (size_t i = 0; i < m->n_overrides; i++) {
                const property_override *o = &m->overrides[i];
                bool replaced = false;

                if (!streq(o->service, name) || (o->runtime && !o->persisted))
                        continue;
                STRV_FOREACH(a, extra)
                        if (startswith(*a, o->key) && (*a)[strlen(o->key)] == '=')
                                replaced = true;
                if (!replaced)
                        fprintf(f, "%s=%s\n", o->key, o->runtime ? o->persisted : o->value);
        }
        STRV_FOREACH(a, extra)
                fprintf(f, "%s\n", *a);
        if (fclose(f) != 0 || !text)
                return -ENOMEM;
        return write_file_atomic(path, text, len, 0640);
}

/* A changed StartLimitBurst= needs a ring of its size; a start limit set or lifted
 * (StartLimitIntervalSec=) a ring or none. */
static int service_resize_start_times(service *s, unsigned old_burst) {
        usec_t *t;
        int r;

        if (s->unit->start_limit_burst == old_burst &&
            !!s->start_times == (s->unit->start_limit_interval > 0 && old_burst > 0))
                return 0;
        r = service_start_times_new(s->unit, &t);
        if (r < 0)
                return r;
        free(s->start_times);
        s->start_times = t;
        s->n_start_times = 0;
        return 0;
}

int manager_set_properties(manager *m, service *s, char *const *assignments, bool runtime,
                           char **ret_error) {
        _cleanup_free_ char *path = NULL;
        unit scratch = *s->unit;
        unsigned old_burst = s->unit->start_limit_burst;
        int r;

        /* Everything is checked on a copy of the scalar settings first. */
        STRV_FOREACH(a, assignments) {
                _cleanup_free_ char *key = NULL;
                const char *eq = strchr(*a, '=');

                if (!eq || eq == *a) {
                        (void) asprintf_safe(ret_error, "\"%.64s\" is not KEY=VALUE", *a);
                        return -EINVAL;
                }
                key = strndup(*a, (size_t) (eq - *a));
                if (!key) {
                        r = -ENOMEM;
                        goto drop;
                }
                r = override_apply(&scratch, s->unit, key, eq + 1, ret_error);
                if (r < 0)
                        goto drop;
        }
        r = unit_check(&scratch, ret_error);
        if (r < 0)
                goto drop;
        /* A tier lives in a cgroup of its own: moving a running service's leaf is not done. */
        if (service_is_active(s) &&
            (scratch.resource->cpu_policy != s->unit->resource->cpu_policy ||
             scratch.resource->cpu_priority != s->unit->resource->cpu_priority)) {
                *ret_error = strdup("CPUPolicy= and CPUPriority= can only be changed while the "
                                    "service is stopped");
                r = -EINVAL;
                goto drop;
        }
        /* Nothing can fail after this but memory; the file is written first. */
        path = overrides_path(m, service_name(s));
        if (!path) {
                r = -ENOMEM;
                goto drop;
        }
        if (!runtime) {
                r = overrides_save(m, service_name(s), assignments);
                if (r < 0) {
                        (void) asprintf_safe(ret_error, "cannot write %s: %s", path, strerror(-r));
                        goto drop;
                }
        }
        STRV_FOREACH(a, assignments) {
                _cleanup_free_ char *key = strndup(*a, (size_t) (strchr(*a, '=') - *a));

                if (!key) {
                        r = -ENOMEM;
                        goto drop;
                }
                r = override_record(m, service_name(s), key, strchr(*a, '=') + 1,
                                    runtime ? "SetProperties (runtime)" : path, runtime);
                if (r < 0)
                        goto drop;
                log_info("%s: %s set%s.", service_name(s), *a,
                         runtime ? " until the next boot" : "");
        }
        unit_changes_take(s->unit, &scratch);
        /* A process prepared from the old settings is dropped, and the next prepared anew. */
        if (m->ops->release)
                m->ops->release(s);
        if (!service_is_active(s) && m->ops->down)
                m->ops->down(s);
        if (s->extra->pending_unit)
                overrides_apply_to(m, service_name(s), s->extra->pending_unit);
        /* The new limits reach the kernel now; Nice= and scheduling at the next start. */
        r = cgroup_service_apply(s);
        if (r > 0)
                log_warning("%s: %d resource setting(s) could not be written now; see its "
                            "warnings.",
                            service_name(s), r);
        r = service_resize_start_times(s, old_burst);
        if (r < 0)
                return r;
        manager_service_state_changed(m, s);
        return 0;

drop:
        unit_changes_drop(&scratch, s->unit);
        return r;
}

/* At boot: STATE/overrides/NAME.conf of each service; problems are logged with file:line
 * and skip that line. */
static void manager_load_overrides(manager *m) {
        for (size_t i = 0; i < m->n_services; i++) {
                service *s = m->services[i];
                _cleanup_free_ char *path = overrides_path(m, service_name(s)), *data = NULL;
                unsigned old_burst = s->unit->start_limit_burst, line = 0;
                unit scratch = *s->unit;
                char *save = NULL;
                size_t size;
                int r;

                if (!path)
                        return;
                r = read_file_bounded(path, OVERRIDE_FILE_MAX, &data, &size);
                if (r == -ENOENT)
                        continue;
                if (r < 0) {
                        log_error_errno(r, "%s: cannot read: %m", path);
                        continue;
                }
                for (char *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                        _cleanup_free_ char *why = NULL;
                        char *eq;

                        line++;
                        l = strstrip(l);
                        if (*l == '#' || *l == '\0')
                                continue;
                        eq = strchr(l, '=');
                        if (!eq) {
                                log_error("%s:%u: not KEY=VALUE; ignored", path, line);
                                continue;
                        }
                        *eq = '\0';
                        if (override_apply(&scratch, s->unit, l, eq + 1, &why) < 0 ||
                            override_record(m, service_name(s), l, eq + 1, path, false) < 0)
                                log_error("%s:%u: %s; ignored", path, line, why ?: "out of memory");
                }
                {
                        _cleanup_free_ char *why = NULL;

                        if (unit_check(&scratch, &why) < 0) {
                                log_error("%s: %s; overrides not applied", path, why);
                                unit_changes_drop(&scratch, s->unit);
                                continue;
                        }
                }
                unit_changes_take(s->unit, &scratch);
                (void) service_resize_start_times(s, old_burst);
        }
}

/* ---- ReloadUnits ------------------------------------------------------------------------ */

/* FNV-1a over the path and bytes of every file the unit came from. */
static uint64_t unit_digest(const unit *u) {
        uint64_t h = UINT64_C(14695981039346656037);

        STRV_FOREACH(f, u->files) {
                _cleanup_free_ char *data = NULL;
                size_t size = 0;
                int r = read_file_bounded(*f, UNIT_FILE_MAX, &data, &size);

                for (const char *p = *f; *p; p++)
                        h = (h ^ (unsigned char) *p) * UINT64_C(1099511628211);
                h = (h ^ (uint64_t) (r < 0 ? -r : 0)) * UINT64_C(1099511628211);
                for (size_t i = 0; i < size; i++)
                        h = (h ^ (unsigned char) data[i]) * UINT64_C(1099511628211);
        }
        return h;
}

/* The unit files to load, sorted: *.service, but not templates. */
static int list_unit_names(manager *m, char ***ret) {
        _cleanup_strv_free_ char **names = NULL;
        struct dirent *de;
        DIR *d;

        d = opendir(m->units_dir);
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                /* Templates are instantiated by NAME@INSTANCE.service files (or links). */
                if (de->d_name[0] == '.' || !endswith(de->d_name, ".service") ||
                    endswith(de->d_name, "@.service"))
                        continue;
                if (strv_length(names) >= MANAGER_SERVICES_MAX) {
                        log_error("More than %d units in %s; ignoring the rest.",
                                  MANAGER_SERVICES_MAX, m->units_dir);
                        break;
                }
                if (strv_extend(&names, de->d_name) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
        }
        closedir(d);
        if (names)
                qsort(names, strv_length(names), sizeof(char *), name_cmp);
        *ret = TAKE_PTR(names);
        return 0;
}

/* Sorts the services again and resolves every dependency and cycle from scratch. */
static int manager_rebuild(manager *m) {
        int r;

        qsort(m->services, m->n_services, sizeof(service *), service_cmp);
        for (size_t i = 0; i < m->n_services; i++) {
                service *s = m->services[i];

                service_deps_clear(s);
                if (service_extra_own(s))
                        service_extra_own(s)->missing_requirement =
                                mfree(s->extra->missing_requirement);
                s->in_cycle = false;
        }
        r = manager_resolve(m);
        if (r < 0)
                return log_oom();
        return manager_find_cycles(m);
}

static bool service_is_down(const service *s) {
        return !service_is_active(s) && s->state != SERVICE_AUTO_RESTART;
}

/* From the dispatch pass: changed services that are down now take their new unit; removed
 * ones that are down go. */
static void manager_apply_pending(manager *m) {
        _cleanup_free_ service **gone = NULL;
        bool rebuild = false;
        size_t k = 0, n_gone = 0;

        for (size_t i = 0; i < m->n_services; i++) {
                service *s = m->services[i];

                if (s->extra->pending_unit && service_is_down(s)) {
                        int r = service_replace_unit(s, s->extra->pending_unit);

                        if (r >= 0) {
                                service_extra_own(s)->pending_unit = NULL;
                                rebuild = true;
                        } else
                                log_error_errno(r, "%s: cannot take its new unit: %m",
                                                service_name(s));
                }
                if (s->removed && service_is_down(s) && !gone)
                        gone = calloc(m->n_services, sizeof(service *));
        }
        for (size_t i = 0; gone && i < m->n_services; i++) {
                service *s = m->services[i];

                if (s->removed && service_is_down(s))
                        gone[n_gone++] = s;
                else
                        m->services[k++] = s;
        }
        if (gone)
                m->n_services = k;
        if (!rebuild && n_gone == 0)
                return;
        (void) manager_rebuild(m);
        for (size_t i = 0; i < n_gone; i++) {
                log_info("%s: removed (its unit file is gone).", service_name(gone[i]));
                if (m->bus)
                        bus_service_removed(m->bus, gone[i]);
                service_free(gone[i]);
        }
        if (n_gone > 0)
                cgroup_services_removed(m);
}

static bool service_wanted_at_boot(const service *s) {
        return strv_contains(s->unit->wanted_by, "multi-user.target") ||
               strv_contains(s->unit->wanted_by, "default.target");
}

/* Each error as FILE:LINE: MESSAGE, one per line, up to RELOAD_ERROR_MAX bytes. */
static void append_diags(FILE *f, const diag_list *d) {
        for (size_t i = 0; i < d->n && ftell(f) < RELOAD_ERROR_MAX; i++)
                if (d->items[i].level == DIAG_ERROR)
                        fprintf(f, "%s%s:%u: %s", ftell(f) > 0 ? "\n" : "", d->items[i].path,
                                d->items[i].line, d->items[i].message);
}

int manager_reload_units(manager *m, char ***ret_changes, char **ret_error) {
        _cleanup_strv_free_ char **names = NULL, **changes = NULL;
        _cleanup_free_ unit **units = NULL;
        _cleanup_free_ service **added = NULL;
        _cleanup_free_ char *conf_path = NULL, *errors = NULL;
        unit_load_options opts = { .policy_dir = m->policies_dir };
        vigil_conf conf = {};
        size_t n, n_added = 0, errors_len = 0;
        bool failed = false;
        FILE *ef;
        int r;

        r = list_unit_names(m, &names);
        if (r < 0) {
                (void) asprintf_safe(ret_error, "cannot read %s: %s", m->units_dir, strerror(-r));
                return r;
        }
        n = strv_length(names);
        units = calloc(n + 1, sizeof(unit *));
        added = calloc(n + 1, sizeof(service *));
        ef = open_memstream(&errors, &errors_len);
        if (!units || !added || !ef) {
                if (ef)
                        fclose(ef);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                diag_list diags = {};

                if (asprintf_safe(&path, "%s/%s", m->units_dir, names[i]) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = unit_load_file(path, NULL, &opts, &diags, &units[i]);
                if (r < 0 || diags.n_errors > 0) {
                        failed = true;
                        if (diags.n_errors == 0)
                                fprintf(ef, "%s%s: %s", ftell(ef) > 0 ? "\n" : "", path,
                                        strerror(-r));
                        append_diags(ef, &diags);
                        units[i] = unit_free(units[i]);
                }
                diag_list_done(&diags);
                r = 0;
        }
        /* vigil.conf's [Access] too: a broken file must not open or close doors. */
        if (r >= 0 && asprintf_safe(&conf_path, "%s/vigil.conf", m->settings.config_dir) >= 0) {
                int k = vigil_conf_load(conf_path, NULL, &conf);

                if (k != 0) {
                        failed = true;
                        fprintf(ef, "%s%s: %d problem%s (see vigil's log)",
                                ftell(ef) > 0 ? "\n" : "", conf_path, k < 0 ? 1 : k,
                                k == 1 || k < 0 ? "" : "s");
                }
        } else if (r >= 0)
                r = -ENOMEM;
        if (fclose(ef) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0 || failed) {
                for (size_t i = 0; i < n; i++)
                        unit_free(units[i]);
                vigil_conf_done(&conf);
                if (failed) {
                        log_error("Reloading units failed; nothing changed:\n%s", errors ?: "");
                        *ret_error = TAKE_PTR(errors);
                        return -EBADMSG;
                }
                return r;
        }

        /* Everything loaded: from here on the running configuration changes. */
        vigil_conf_take_access(&m->conf, &conf);
        vigil_conf_done(&conf);

        service **grown = reallocarray(m->services, m->n_services + n + 1, sizeof(service *));
        if (!grown) {
                for (size_t i = 0; i < n; i++)
                        unit_free(units[i]);
                return -ENOMEM;
        }
        m->services = grown;

        size_t n_old = m->n_services;
        for (size_t i = 0; i < n; i++) {
                unit *u = TAKE_PTR(units[i]);
                uint64_t d = unit_digest(u);
                char *what = NULL;
                service *s = NULL;

                /* The old services are still sorted in [0, n_old). */
                for (size_t lo = 0, hi = n_old; lo < hi;) {
                        size_t mid = (lo + hi) / 2;
                        int c = strcmp(u->name, service_name(m->services[mid]));

                        if (c == 0) {
                                s = m->services[mid];
                                break;
                        }
                        if (c < 0)
                                hi = mid;
                        else
                                lo = mid + 1;
                }
                if (!s) {
                        r = service_new(m, u, &s);
                        if (r < 0) {
                                log_error_errno(r, "%s: cannot set up: %m", u->name);
                                unit_free(u);
                                continue;
                        }
                        s->unit_digest = d;
                        m->services[m->n_services++] = s;
                        added[n_added++] = s;
                        overrides_apply_to(m, service_name(s), s->unit);
                        r = cgroup_service_create(s);
                        if (r < 0)
                                log_warning_errno(r, "%s: cannot create its cgroup: %m",
                                                  service_name(s));
                        (void) asprintf_safe(&what, "added %s", service_name(s));
                } else if (s->unit_digest == d && !s->removed) {
                        unit_free(u);
                        continue;
                } else if (!service_extra_get(s)) { /* for pending_unit */
                        log_error("%s: out of memory for its new unit.", service_name(s));
                        unit_free(u);
                        continue;
                } else {
                        s->removed = false;
                        s->unit_digest = d;
                        service_drop_pending_unit(s);
                        overrides_apply_to(m, service_name(s), u);
                        if (service_is_down(s) && service_replace_unit(s, u) >= 0)
                                (void) asprintf_safe(&what, "changed %s", service_name(s));
                        else {
                                service_extra_own(s)->pending_unit = u;
                                (void) service_restart(s);
                                (void) asprintf_safe(&what, "changed %s (restarting)",
                                                     service_name(s));
                        }
                }
                if (what && strv_push(&changes, what) < 0)
                        free(what);
        }
        for (size_t i = 0; i < n_old; i++) {
                service *s = m->services[i];
                char *what = NULL;

                if (s->removed || strv_contains(names, service_name(s)))
                        continue;
                s->removed = true;
                service_drop_pending_unit(s);
                if (service_is_active(s) || s->state == SERVICE_AUTO_RESTART)
                        (void) service_stop(s);
                (void) asprintf_safe(&what, "removed %s", service_name(s));
                if (what && strv_push(&changes, what) < 0)
                        free(what);
        }
        r = manager_rebuild(m);
        if (r < 0)
                return r;
        (void) update_load(m); /* records of images the new units use */
        for (size_t i = 0; i < n_added; i++)
                if (service_wanted_at_boot(added[i]) && !m->shutting_down)
                        (void) service_start(added[i]);
        manager_queue_dispatch(m);
        log_info("Units reloaded: %zu change%s.", strv_length(changes),
                 strv_length(changes) == 1 ? "" : "s");
        manager_release_memory();
        *ret_changes = TAKE_PTR(changes);
        return 0;
}

int manager_load(manager *m) {
        _cleanup_strv_free_ char **names = NULL;
        unit_load_options opts = { .policy_dir = m->policies_dir };
        struct dirent *de;
        DIR *d;
        int r;

        d = opendir(m->units_dir);
        if (!d) {
                log_warning_errno(errno, "Cannot open %s: %m; no services.", m->units_dir);
                return 0;
        }
        while ((de = readdir(d))) {
                /* Templates are instantiated by NAME@INSTANCE.service files (or links). */
                if (de->d_name[0] == '.' || !endswith(de->d_name, ".service") ||
                    endswith(de->d_name, "@.service"))
                        continue;
                if (strv_length(names) >= MANAGER_SERVICES_MAX) {
                        log_error("More than %d units in %s; ignoring the rest.",
                                  MANAGER_SERVICES_MAX, m->units_dir);
                        break;
                }
                if (strv_extend(&names, de->d_name) < 0) {
                        closedir(d);
                        return log_oom();
                }
        }
        closedir(d);
        if (names)
                qsort(names, strv_length(names), sizeof(char *), name_cmp);

        m->services = calloc(strv_length(names) + 1, sizeof(service *));
        if (!m->services)
                return log_oom();
        STRV_FOREACH(n, names) {
                _cleanup_free_ char *path = NULL;
                diag_list diags = {};
                unit *u = NULL;
                service *s;

                if (asprintf_safe(&path, "%s/%s", m->units_dir, *n) < 0)
                        return log_oom();
                r = unit_load_file(path, NULL, &opts, &diags, &u);
                log_diags(&diags);
                diag_list_done(&diags);
                if (r < 0) {
                        log_error("%s: not loaded, skipping it.", *n);
                        continue;
                }
                r = service_new(m, u, &s);
                if (r < 0) {
                        unit_free(u);
                        log_error_errno(r, "%s: cannot set up: %m", *n);
                        continue;
                }
                s->unit_digest = unit_digest(u);
                m->services[m->n_services++] = s;
        }
        manager_load_overrides(m);
        r = manager_resolve(m);
        if (r < 0)
                return log_oom();
        r = manager_find_cycles(m);
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_services; i++) {
                r = cgroup_service_create(m->services[i]);
                if (r < 0)
                        log_warning_errno(r, "%s: cannot create its cgroup: %m",
                                          service_name(m->services[i]));
        }
        (void) update_load(m);
        m->ts_units_loaded = now_usec(CLOCK_MONOTONIC);
        log_info("Loaded %zu services from %s.", m->n_services, m->units_dir);
        return 0;
}

manager_exit manager_run(manager *m) {
        _cleanup_free_ char *private = NULL;
        int r;

        if (asprintf_safe(&private, "%s/private", m->settings.runtime_dir) < 0)
                log_oom();
        else {
                r = bus_server_new(m, private, &m->bus);
                if (r < 0)
                        log_error_errno(r, "Cannot serve D-Bus on %s: %m", private);
        }

        /* Staged updates are installed before anything runs on the images they replace. */
        update_boot(m);
        for (size_t i = 0; i < m->n_services; i++) {
                service *s = m->services[i];

                if (strv_contains(s->unit->wanted_by, "multi-user.target") ||
                    strv_contains(s->unit->wanted_by, "default.target"))
                        service_start(s);
        }
        manager_queue_dispatch(m);

        r = sd_event_loop(m->event);
        if (r < 0)
                log_error_errno(r, "The event loop failed: %m");
        /* Failures during the shutdown are recorded too. */
        crash_records_flush(m);
        return m->exit == MANAGER_RUNNING ? MANAGER_EXIT : m->exit;
}
