/* The manager: the event loop, the set of services, their ordering, boot and shutdown. */
#include <dirent.h>
#include <signal.h>
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
                int c = strcmp(name, m->services[mid]->name);

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
        if (!service_is_active(s) && s->state != SERVICE_AUTO_RESTART)
                for (size_t i = 0; i < s->bound_by.n; i++)
                        if (s->bound_by.items[i]->target == TARGET_STARTED)
                                service_stop(s->bound_by.items[i]);
        if (m->bus)
                bus_service_changed(m->bus, s);
        manager_queue_dispatch(m);
}

void manager_service_requested(manager *m, service *s, service_target target) {
        if (target == TARGET_STARTED) {
                for (size_t i = 0; i < s->requires.n; i++)
                        if (s->requires.items[i]->target != TARGET_STARTED)
                                service_start(s->requires.items[i]);
                for (size_t i = 0; i < s->wants.n; i++)
                        if (s->wants.items[i]->target != TARGET_STARTED)
                                service_start(s->wants.items[i]);
                for (size_t i = 0; i < s->conflicts.n; i++)
                        if (s->conflicts.items[i]->target != TARGET_STOPPED)
                                service_stop(s->conflicts.items[i]);
        } else {
                for (size_t i = 0; i < s->required_by.n; i++)
                        if (s->required_by.items[i]->target != TARGET_STOPPED)
                                service_stop(s->required_by.items[i]);
        }
        manager_queue_dispatch(m);
}

/* May s start now? 1: yes, 0: wait, -1: it can never start (already failed). */
static int start_allowed(service *s) {
        if (s->in_cycle) {
                service_dependency_failed(s, "it is part of an ordering cycle");
                return -1;
        }
        if (s->missing_requirement) {
                service_dependency_failed(s, s->missing_requirement);
                return -1;
        }
        for (size_t i = 0; i < s->after.n; i++) {
                service *t = s->after.items[i];

                if (t->target == TARGET_STARTED && !t->start_done)
                        return 0;
        }
        for (size_t i = 0; i < s->requires.n; i++) {
                service *t = s->requires.items[i];

                if (t->target == TARGET_STOPPED && !service_is_started(t)) {
                        char why[300];

                        snprintf(why, sizeof(why), "required service %s did not start", t->name);
                        service_dependency_failed(s, why);
                        return -1;
                }
        }
        return 1;
}

/* May s stop now? Those ordered after it stop first. */
static bool stop_allowed(service *s) {
        for (size_t i = 0; i < s->before.n; i++) {
                service *t = s->before.items[i];

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
}

static int on_dispatch(sd_event_source *src, void *userdata) {
        manager *m = userdata;

        m->dispatch_queued = false;
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
                vigil_conf_load(conf, &m->conf);
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

manager *manager_free(manager *m) {
        if (!m)
                return NULL;
        bus_server_free(m->bus);
        crash_records_flush(m);
        for (size_t i = 0; i < m->n_services; i++)
                service_free(m->services[i]);
        free(m->services);
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
        return strcmp((*(service *const *) a)->name, (*(service *const *) b)->name);
}

static int list_add(service_list *l, service *s) {
        service **items;

        for (size_t i = 0; i < l->n; i++)
                if (l->items[i] == s)
                        return 0;
        items = reallocarray(l->items, l->n + 1, sizeof(service *));
        if (!items)
                return -ENOMEM;
        items[l->n++] = s;
        l->items = items;
        return 0;
}

/* Turns the names in each unit into pointers, in both directions. */
static int manager_resolve(manager *m) {
        int r = 0;

        for (size_t i = 0; i < m->n_services; i++) {
                service *s = m->services[i];
                const unit *u = s->unit;
                service *t;

                STRV_FOREACH(n, u->after)
                        if ((t = manager_find_service(m, *n)) && t != s)
                                r |= list_add(&s->after, t) | list_add(&t->before, s);
                STRV_FOREACH(n, u->before)
                        if ((t = manager_find_service(m, *n)) && t != s)
                                r |= list_add(&t->after, s) | list_add(&s->before, t);
                STRV_FOREACH(n, u->wants)
                        if ((t = manager_find_service(m, *n)) && t != s)
                                r |= list_add(&s->wants, t);
                STRV_FOREACH(n, u->conflicts)
                        if ((t = manager_find_service(m, *n)) && t != s)
                                r |= list_add(&s->conflicts, t) | list_add(&t->conflicts, s);
                char **req[] = { u->requires, u->binds_to };
                for (size_t k = 0; k < ELEMENTSOF(req); k++)
                        STRV_FOREACH(n, req[k]) {
                                if (endswith(*n, ".target") || streq(*n, s->name))
                                        continue;
                                t = manager_find_service(m, *n);
                                if (!t) {
                                        if (!s->missing_requirement &&
                                            asprintf_safe(&s->missing_requirement,
                                                          "required service %s does not exist",
                                                          *n) < 0)
                                                s->missing_requirement = NULL;
                                        continue;
                                }
                                r |= list_add(&s->requires, t) | list_add(&t->required_by, s);
                                if (k == 1)
                                        r |= list_add(&t->bound_by, s);
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

        t->index[v] = t->low[v] = ++t->next;
        t->stack[t->depth++] = v;
        t->on_stack[v] = true;
        for (size_t i = 0; i < s->after.n; i++) {
                size_t w = service_index(m, s->after.items[i]);

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
                                                         i > top ? ", " : "", c->name);
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
                m->services[m->n_services++] = s;
        }
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
                                          m->services[i]->name);
        }
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
