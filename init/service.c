/* One supervised service: its state machine, restart policy and processes. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/random.h>
#include <sys/wait.h>

#include "bus.h"
#include "cgroup.h"
#include "crash.h"
#include "log.h"
#include "manager.h"
#include "resource.h"
#include "sys.h"

static const char *const state_names[_SERVICE_STATE_MAX] = {
        [SERVICE_DEAD] = "dead",
        [SERVICE_START_PRE] = "start-pre",
        [SERVICE_START] = "start",
        [SERVICE_START_POST] = "start-post",
        [SERVICE_RUNNING] = "running",
        [SERVICE_RELOAD] = "reload",
        [SERVICE_STOP] = "stop",
        [SERVICE_STOP_SIGTERM] = "stop-sigterm",
        [SERVICE_STOP_SIGKILL] = "stop-sigkill",
        [SERVICE_AUTO_RESTART] = "auto-restart",
        [SERVICE_FAILED] = "failed",
};

static const char *const result_names[_SERVICE_RESULT_MAX] = {
        [RESULT_SUCCESS] = "success",       [RESULT_RESOURCES] = "resources",
        [RESULT_TIMEOUT] = "timeout",       [RESULT_EXIT_CODE] = "exit-code",
        [RESULT_SIGNAL] = "signal",         [RESULT_CORE_DUMP] = "core-dump",
        [RESULT_WATCHDOG] = "watchdog",     [RESULT_START_LIMIT_HIT] = "start-limit-hit",
        [RESULT_DEPENDENCY] = "dependency", [RESULT_PROTOCOL] = "protocol",
        [RESULT_OOM_KILL] = "oom-kill",
};

const char *service_state_to_string(service_state s) {
        return s < _SERVICE_STATE_MAX ? state_names[s] : "invalid";
}

const char *service_result_to_string(service_result r) {
        return r < _SERVICE_RESULT_MAX ? result_names[r] : "invalid";
}

const char *service_active_state(const service *s) {
        switch (s->state) {
        case SERVICE_DEAD:
                return "inactive";
        case SERVICE_FAILED:
                return "failed";
        case SERVICE_START_PRE:
        case SERVICE_START:
        case SERVICE_START_POST:
        case SERVICE_AUTO_RESTART:
                return "activating";
        case SERVICE_RUNNING:
                return "active";
        case SERVICE_RELOAD:
                return "reloading";
        default:
                return "deactivating";
        }
}

bool service_is_active(const service *s) {
        return s->state != SERVICE_DEAD && s->state != SERVICE_FAILED &&
               s->state != SERVICE_AUTO_RESTART;
}

bool service_is_started(const service *s) {
        return s->target == TARGET_STARTED && s->start_done;
}

/* The service's timers exist from service_new() on (slots of the loop's shared timer,
 * init/poller.c) and are only armed and disarmed later, which allocates nothing: a restart
 * is never lost to a failed allocation. */
static void timer_arm(shared_timer *t, usec_t usec) {
        if (t)
                shared_timer_set_relative(t, usec);
}

static bool timer_armed(const shared_timer *t) {
        return t && shared_timer_armed(t);
}

/* The timers only some services need (WatchdogSec=, StartLimitRetrySec=...), allocated when
 * their settings call for them: embedded, they would cost every service. */
struct service_timer {
        shared_timer timer;
        service *service;
};

static shared_timer *opt_timer(service_timer *t) {
        return t ? &t->timer : NULL;
}

static service *opt_timer_service(shared_timer *t) {
        return container_of(t, service_timer, timer)->service;
}

/* Arms the deadline of the current state (or the restart delay); USEC_INFINITY disarms it. */
static void service_arm_timer(service *s, usec_t usec) {
        timer_arm(&s->timer, usec);
}

static void service_arm_retry(service *s) {
        timer_arm(opt_timer(s->extra->retry_timer), s->unit->backoff->start_limit_retry);
}

bool service_retry_pending(const service *s) {
        return timer_armed(opt_timer(s->extra->retry_timer));
}

_printf_(2, 3) static void service_log(service *s, const char *fmt, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (s->log)
                log_stream_append(s->log, buf);
        log_info("%s: %s", service_name(s), buf);
}

/* The one place that changes s->state. */
static void service_set_state(service *s, service_state state) {
        service_state old = s->state;

        if (old == state)
                return;
        s->state = state;

        if (state == SERVICE_RUNNING && old != SERVICE_RELOAD) {
                s->active_since = now_usec(CLOCK_MONOTONIC);
                s->active_since_realtime = now_usec(CLOCK_REALTIME);
        }
        if (state == SERVICE_DEAD || state == SERVICE_FAILED || state == SERVICE_AUTO_RESTART)
                s->active_since = s->active_since_realtime = 0;
        if (state != SERVICE_RUNNING && state != SERVICE_RELOAD)
                timer_arm(opt_timer(s->extra->watchdog_timer), USEC_INFINITY);
        if (!service_is_active(s) && s->manager->ops->down)
                s->manager->ops->down(s);

        manager_service_state_changed(s->manager, s);
}

static void service_close_process(pid_t *pid, int *pidfd) {
        *pid = 0;
        if (*pidfd >= 0)
                close(*pidfd);
        *pidfd = -1;
}

static void service_enter_dead(service *s, service_result result);
static void service_enter_signal(service *s, service_state state, service_result result);
static void service_enter_running(service *s);
static void service_enter_start(service *s);
static void service_enter_start_post(service *s);

/* Runs the next command of s->control_list, or returns 0 when none is left. */
static int service_spawn_control(service *s) {
        const exec_command *c;
        int r;

        if (!s->control_list || s->control_index >= s->control_list->n)
                return 0;
        c = &s->control_list->items[s->control_index];
        r = s->manager->ops->spawn(s, c, true, &s->control_pid, &s->control_pidfd, NULL);
        if (r < 0) {
                service_log(s, "Failed to start %s: %s", c->path, strerror(-r));
                return r;
        }
        return 1;
}

static void service_begin_control(service *s, const exec_list *l) {
        s->control_list = l;
        s->control_index = 0;
}

static bool start_limit_hit(service *s) {
        const unit *u = s->unit;
        usec_t now = now_usec(CLOCK_MONOTONIC);
        size_t in_window = 0;

        if (u->start_limit_interval == 0 || u->start_limit_burst == 0 || !s->start_times)
                return false;
        for (size_t i = 0; i < s->n_start_times; i++)
                if (s->start_times[i] + u->start_limit_interval > now)
                        in_window++;
        if (in_window >= u->start_limit_burst)
                return true;
        /* Record this start in the ring, replacing the oldest. */
        if (s->n_start_times < u->start_limit_burst)
                s->start_times[s->n_start_times++] = now;
        else {
                size_t oldest = 0;

                for (size_t i = 1; i < s->n_start_times; i++)
                        if (s->start_times[i] < s->start_times[oldest])
                                oldest = i;
                s->start_times[oldest] = now;
        }
        return false;
}

int service_start_times_new(const unit *u, usec_t **ret) {
        /* Without a start limit (StartLimitIntervalSec=0 or StartLimitBurst=0), no ring. */
        if (u->start_limit_interval == 0 || u->start_limit_burst == 0) {
                *ret = NULL;
                return 0;
        }
        *ret = calloc(u->start_limit_burst, sizeof(usec_t));
        return *ret ? 0 : -ENOMEM;
}

static void on_retry(shared_timer *t) {
        service *s = opt_timer_service(t);

        if (s->target != TARGET_STARTED || s->state != SERVICE_FAILED)
                return;
        service_log(s, "Retrying after the start limit (StartLimitRetrySec=).");
        s->n_start_times = 0;
        s->backoff_step = 0;
        s->start_done = false;
        manager_queue_dispatch(s->manager);
}

static void service_enter_start_pre(service *s) {
        int r;

        if (start_limit_hit(s)) {
                char buf[64];

                service_log(s, "Start request repeated too quickly (StartLimitBurst=%u in %s).",
                            s->unit->start_limit_burst,
                            format_timespan(buf, sizeof(buf), s->unit->start_limit_interval));
                s->result = RESULT_START_LIMIT_HIT;
                service_enter_dead(s, RESULT_START_LIMIT_HIT);
                return;
        }
        s->result = RESULT_SUCCESS;
        s->state_before_stop = SERVICE_DEAD; /* no stop asked for yet */
        s->exit_code = s->exit_status = 0;
        s->oom_killed = false;
        if (service_extra_own(s))
                service_extra_own(s)->status_text = mfree(s->extra->status_text);
        if (service_extra_own(s)) /* else WatchdogSec= is 0: no watchdog timer was made */
                service_extra_own(s)->watchdog_usec = s->unit->watchdog;

        service_arm_timer(s, s->unit->timeout_start);
        service_begin_control(s, &s->unit->commands->exec_start_pre);
        r = service_spawn_control(s);
        if (r < 0) {
                service_enter_signal(s, SERVICE_STOP_SIGTERM, RESULT_RESOURCES);
                return;
        }
        if (r == 0) {
                service_enter_start(s);
                return;
        }
        service_set_state(s, SERVICE_START_PRE);
}

static int on_exec_done(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        service *s = userdata;
        int err = 0;
        ssize_t n;

        n = read(fd, &err, sizeof(err));
        if (n < 0 && errno == EAGAIN)
                return 0;
        service_extra_own(s)->exec_source = sd_event_source_disable_unref(s->extra->exec_source);
        /* EOF with no data: execve() succeeded. A failure shows up as the exit. */
        if (n == 0 && s->state == SERVICE_START && s->unit->type == SERVICE_EXEC)
                service_enter_start_post(s);
        return 0;
}

static void service_enter_start(service *s) {
        const unit *u = s->unit;
        const exec_command *c;
        int exec_fd = -1, r;

        service_set_state(s, SERVICE_START);
        s->exec_start_index = 0;
        c = &u->exec_start.items[0];
        r = s->manager->ops->spawn(s, c, false, &s->main_pid, &s->main_pidfd,
                                   u->type == SERVICE_EXEC ? &exec_fd : NULL);
        if (r < 0) {
                service_log(s, "Failed to start %s: %s", c->path, strerror(-r));
                service_enter_signal(s, SERVICE_STOP_SIGTERM, RESULT_RESOURCES);
                return;
        }
        s->pgid = s->main_pid;
        if (exec_fd >= 0) {
                service_extra *x = service_extra_get(s);

                r = x ? sd_event_add_io(s->manager->event, &x->exec_source, exec_fd, EPOLLIN,
                                        on_exec_done, s)
                      : -ENOMEM;
                if (r < 0) {
                        close(exec_fd);
                        log_error_errno(r, "%s: cannot watch the exec pipe: %m", service_name(s));
                } else
                        sd_event_source_set_io_fd_own(x->exec_source, true);
        }

        switch (u->type) {
        case SERVICE_SIMPLE:
                service_enter_start_post(s);
                break;
        case SERVICE_EXEC:
                if (!s->extra->exec_source) /* could not watch: treat like simple */
                        service_enter_start_post(s);
                break;
        default: /* oneshot: wait for the exit; notify: for READY=1 */
                break;
        }
}

static void service_start_watchdog(service *s);

static void service_enter_start_post(service *s) {
        int r;

        service_begin_control(s, &s->unit->commands->exec_start_post);
        r = service_spawn_control(s);
        if (r < 0) {
                service_enter_signal(s, SERVICE_STOP_SIGTERM, RESULT_RESOURCES);
                return;
        }
        if (r == 0) {
                service_enter_running(s);
                return;
        }
        service_set_state(s, SERVICE_START_POST);
}

static void service_enter_running(service *s) {
        service_arm_timer(s, USEC_INFINITY);
        s->start_done = true;
        if (s->unit->type == SERVICE_ONESHOT) {
                service_log(s, "Finished.");
                service_enter_dead(s, RESULT_SUCCESS);
                return;
        }
        service_set_state(s, SERVICE_RUNNING);
        service_log(s, "Started.");
        service_start_watchdog(s);
}

/* Stops what is left: the main process is gone or told to go. */
static void service_enter_signal(service *s, service_state state, service_result result) {
        const sys_ops *ops = s->manager->ops;
        int sig;

        if (s->result == RESULT_SUCCESS)
                s->result = result;
        sig = state == SERVICE_STOP_SIGKILL ? SIGKILL : s->unit->kill_signal;

        service_arm_timer(s, s->unit->timeout_stop);
        switch (s->unit->kill_mode) {
        case KILL_CONTROL_GROUP:
                ops->kill_all(s, sig);
                break;
        case KILL_MIXED:
                if (sig == SIGKILL)
                        ops->kill_all(s, SIGKILL);
                else {
                        if (s->main_pid > 0)
                                ops->kill_process(s, s->main_pid, s->main_pidfd, sig);
                        if (s->control_pid > 0)
                                ops->kill_process(s, s->control_pid, s->control_pidfd, sig);
                }
                break;
        case KILL_PROCESS:
                if (s->main_pid > 0)
                        ops->kill_process(s, s->main_pid, s->main_pidfd, sig);
                if (s->control_pid > 0)
                        ops->kill_process(s, s->control_pid, s->control_pidfd, sig);
                break;
        case KILL_NONE:
        default:
                break;
        }
        if (sig != SIGKILL && s->unit->kill_mode != KILL_NONE) {
                /* Stopped processes would never see the signal. */
                if (s->unit->kill_mode == KILL_CONTROL_GROUP)
                        ops->kill_all(s, SIGCONT);
                else if (s->main_pid > 0)
                        ops->kill_process(s, s->main_pid, s->main_pidfd, SIGCONT);
        }
        service_set_state(s, state);
        service_check_stopped(s);
}

/* The processes that count for being stopped, by KillMode=. */
static bool service_processes_left(service *s) {
        if (s->main_pid > 0 || s->control_pid > 0)
                return true;
        if (s->unit->kill_mode == KILL_CONTROL_GROUP || s->unit->kill_mode == KILL_MIXED)
                return s->manager->ops->has_processes(s);
        return false;
}

void service_check_stopped(service *s) {
        if (s->state != SERVICE_STOP_SIGTERM && s->state != SERVICE_STOP_SIGKILL)
                return;
        /* KillMode=mixed: once the main process is gone, the rest get SIGKILL at once. */
        if (s->unit->kill_mode == KILL_MIXED && s->state == SERVICE_STOP_SIGTERM &&
            s->main_pid == 0 && s->control_pid == 0 && s->manager->ops->has_processes(s)) {
                service_enter_signal(s, SERVICE_STOP_SIGKILL, RESULT_SUCCESS);
                return;
        }
        if (service_processes_left(s))
                return;
        service_enter_dead(s, s->result);
}

static bool restart_wanted(const service *s) {
        const unit *u = s->unit;
        service_result r = s->result;
        bool clean = r == RESULT_SUCCESS, sig = r == RESULT_SIGNAL || r == RESULT_CORE_DUMP;
        bool watchdog = r == RESULT_WATCHDOG, timeout = r == RESULT_TIMEOUT;

        if (s->target != TARGET_STARTED || s->manager->shutting_down)
                return false;
        if (r == RESULT_START_LIMIT_HIT || r == RESULT_DEPENDENCY)
                return false;
        if (s->exit_code == CLD_EXITED &&
            exit_status_set_has_status(u->restart_prevent_exit_status, s->exit_status))
                return false;
        if ((s->exit_code == CLD_KILLED || s->exit_code == CLD_DUMPED) &&
            exit_status_set_has_signal(u->restart_prevent_exit_status, s->exit_status))
                return false;

        switch (u->restart) {
        case RESTART_ALWAYS:
                return true;
        case RESTART_ON_SUCCESS:
                return clean;
        case RESTART_ON_FAILURE:
                return !clean;
        case RESTART_ON_ABNORMAL:
                return sig || watchdog || timeout;
        case RESTART_ON_WATCHDOG:
                return watchdog;
        case RESTART_ON_ABORT:
                return sig;
        default:
                return false;
        }
}

/* x^y for x > 0 and 0 <= y <= 1, within 1e-14: ln through frexp() and the atanh series,
 * exp through ldexp() and the Taylor series. The one power vigil needs; pow() would map
 * libm into PID 1 for good (≈70 kB of pages). */
static double pow_fraction(double x, double y) {
        static const double ln2 = 0.69314718055994530942;
        double m, z, z2, term, ln = 0, t, r, sum = 1;
        int e, k;

        m = frexp(x, &e); /* x = m * 2^e, m in [0.5, 1) */
        z = (m - 1) / (m + 1);
        z2 = z * z;
        term = z;
        for (int i = 1; i < 60; i += 2) {
                ln += term / i;
                term *= z2;
        }
        t = y * (2 * ln + e * ln2);
        k = (int) (t / ln2 + (t >= 0 ? 0.5 : -0.5));
        r = t - k * ln2; /* |r| <= ln2 / 2 */
        term = 1;
        for (int i = 1; i < 30; i++) {
                term *= r / i;
                sum += term;
        }
        return ldexp(sum, k);
}

/* RestartSec= grows to RestartMaxDelaySec= in RestartSteps= steps, exponentially, as systemd
 * does; RestartRandomizedDelaySec= adds jitter so that many services do not restart in step. */
usec_t service_restart_delay(const unit *u, unsigned step, uint64_t random) {
        usec_t base = u->restart_sec, delay = base;

        if (u->backoff->restart_steps > 0 && u->backoff->restart_max_delay != USEC_INFINITY) {
                double lo = base > 0 ? (double) base : 1.0,
                       hi = (double) u->backoff->restart_max_delay;
                unsigned k = step < u->backoff->restart_steps ? step : u->backoff->restart_steps;

                if (k == u->backoff->restart_steps)
                        delay = u->backoff->restart_max_delay;
                else if (hi <= 0)
                        delay = k == 0 ? (usec_t) lo : 0;
                else
                        delay = (usec_t) (lo * pow_fraction(hi / lo,
                                                            (double) k /
                                                                    u->backoff->restart_steps) +
                                          0.5);
                if (delay > u->backoff->restart_max_delay)
                        delay = u->backoff->restart_max_delay;
        }
        if (u->backoff->restart_randomized_delay > 0 &&
            u->backoff->restart_randomized_delay != USEC_INFINITY)
                delay += random % (u->backoff->restart_randomized_delay + 1);
        return delay;
}

static void service_restart_now(service *s) {
        s->restarts++;
        s->backoff_step++;
        service_log(s, "Restarting (restart %u).", s->restarts);
        service_enter_start_pre(s);
}

static void service_enter_auto_restart(service *s) {
        uint64_t random = 0;
        usec_t delay, up = 0;
        char buf[64];

        if (s->last_active_since > 0)
                up = now_usec(CLOCK_MONOTONIC) - s->last_active_since;
        if (up >= s->unit->backoff->restart_backoff_reset && s->backoff_step > 0) {
                service_log(s, "Up for %s: restart delay back to RestartSec=.",
                            format_timespan(buf, sizeof(buf), up));
                s->backoff_step = 0;
        }
        if (getrandom(&random, sizeof(random), GRND_NONBLOCK) < 0)
                random = now_usec(CLOCK_MONOTONIC);
        delay = service_restart_delay(s->unit, s->backoff_step, random);

        service_set_state(s, SERVICE_AUTO_RESTART);
        service_log(s, "Scheduled restart in %s.", format_timespan(buf, sizeof(buf), delay));
        service_arm_timer(s, delay);
}

/* Everything is gone: decide between DEAD, FAILED and AUTO_RESTART. */
static void service_enter_dead(service *s, service_result result) {
        bool failed;

        if (s->result == RESULT_SUCCESS)
                s->result = result;
        service_arm_timer(s, USEC_INFINITY);
        if (service_extra_own(s))
                service_extra_own(s)->exec_source =
                        sd_event_source_disable_unref(s->extra->exec_source);
        s->control_list = NULL;
        failed = s->result != RESULT_SUCCESS;

        if (failed) {
                crash_record_save(s);
                bus_service_crashed(s->manager->bus, s);
        }
        if (s->restart_requested) {
                s->restart_requested = false;
                s->target = TARGET_STARTED;
                s->start_done = false;
                service_set_state(s, failed ? SERVICE_FAILED : SERVICE_DEAD);
                return;
        }
        if (restart_wanted(s)) {
                s->start_done = false;
                service_enter_auto_restart(s);
                return;
        }
        if (failed) {
                service_log(s, "Failed with result '%s'.", service_result_to_string(s->result));
                if (s->result == RESULT_START_LIMIT_HIT &&
                    s->unit->backoff->start_limit_retry != USEC_INFINITY &&
                    s->target == TARGET_STARTED) {
                        char buf[64];

                        service_log(s, "Will retry in %s (StartLimitRetrySec=).",
                                    format_timespan(buf, sizeof(buf),
                                                    s->unit->backoff->start_limit_retry));
                        service_arm_retry(s);
                } else
                        s->target = TARGET_STOPPED;
                service_set_state(s, SERVICE_FAILED);
                return;
        }
        /* A finished oneshot keeps its target: it counts as started. */
        if (!(s->unit->type == SERVICE_ONESHOT && s->start_done && s->target == TARGET_STARTED))
                s->target = TARGET_STOPPED;
        service_set_state(s, SERVICE_DEAD);
        if (s->state_before_stop != SERVICE_DEAD)
                service_log(s, "Stopped.");
}

static void service_enter_stop(service *s) {
        int r;

        s->state_before_stop = s->state;
        if (s->main_pid > 0 && s->unit->commands->exec_stop.n > 0) {
                service_arm_timer(s, s->unit->timeout_stop);
                service_begin_control(s, &s->unit->commands->exec_stop);
                r = service_spawn_control(s);
                if (r > 0) {
                        service_set_state(s, SERVICE_STOP);
                        return;
                }
        }
        service_enter_signal(s, SERVICE_STOP_SIGTERM, RESULT_SUCCESS);
}

static void service_enter_reload(service *s) {
        int r;

        service_begin_control(s, &s->unit->commands->exec_reload);
        r = service_spawn_control(s);
        if (r <= 0)
                return;
        service_arm_timer(s, s->unit->timeout_start);
        service_set_state(s, SERVICE_RELOAD);
}

static void on_watchdog(shared_timer *t) {
        service *s = opt_timer_service(t);
        char buf[64];

        service_log(s, "Watchdog timeout (limit %s)! Killing with SIGABRT.",
                    format_timespan(buf, sizeof(buf), s->extra->watchdog_usec));
        s->result = RESULT_WATCHDOG;
        if (s->main_pid > 0)
                s->manager->ops->kill_process(s, s->main_pid, s->main_pidfd, SIGABRT);
        service_enter_signal(s, SERVICE_STOP_SIGTERM, RESULT_WATCHDOG);
}

static int service_add_watchdog_timer(service *s);

static void service_start_watchdog(service *s) {
        /* A service may ask for a watchdog at run time with WATCHDOG_USEC=. */
        if (!s->extra->watchdog_timer && s->extra->watchdog_usec > 0 &&
            service_add_watchdog_timer(s) < 0)
                log_error("%s: cannot create its watchdog timer.", service_name(s));
        timer_arm(opt_timer(s->extra->watchdog_timer),
                  s->extra->watchdog_usec == 0 ? USEC_INFINITY : s->extra->watchdog_usec);
}

static void on_timer(shared_timer *t) {
        service *s = container_of(t, service, timer);

        switch (s->state) {
        case SERVICE_AUTO_RESTART:
                service_restart_now(s);
                break;
        case SERVICE_START_PRE:
        case SERVICE_START:
        case SERVICE_START_POST:
                service_log(s, "Start operation timed out. Terminating.");
                service_enter_signal(s, SERVICE_STOP_SIGTERM, RESULT_TIMEOUT);
                break;
        case SERVICE_RELOAD:
                service_log(s, "Reload timed out; killing the reload command.");
                if (s->control_pid > 0)
                        s->manager->ops->kill_process(s, s->control_pid, s->control_pidfd, SIGKILL);
                service_set_state(s, SERVICE_RUNNING);
                break;
        case SERVICE_STOP:
        case SERVICE_STOP_SIGTERM:
                service_log(s, "Stopping timed out. Killing.");
                service_enter_signal(s, SERVICE_STOP_SIGKILL, RESULT_TIMEOUT);
                break;
        case SERVICE_STOP_SIGKILL:
                service_log(s, "Processes still around after SIGKILL. Giving up on them.");
                service_close_process(&s->main_pid, &s->main_pidfd);
                service_close_process(&s->control_pid, &s->control_pidfd);
                service_enter_dead(s, RESULT_TIMEOUT);
                break;
        default:
                break;
        }
}

static service_result exit_result(const service *s, int code, int status) {
        const exit_status_set *ok = s->unit->success_exit_status;

        if (code == CLD_EXITED)
                return status == 0 || exit_status_set_has_status(ok, status) ? RESULT_SUCCESS
                                                                             : RESULT_EXIT_CODE;
        /* Like systemd: these signals are how daemons are asked to stop. */
        if (code == CLD_KILLED && (status == SIGHUP || status == SIGINT || status == SIGTERM ||
                                   status == SIGPIPE || exit_status_set_has_signal(ok, status)))
                return RESULT_SUCCESS;
        return code == CLD_DUMPED ? RESULT_CORE_DUMP : RESULT_SIGNAL;
}

static void service_main_exited(service *s, int code, int status) {
        service_result r = exit_result(s, code, status);

        /* The OOM killer's SIGKILL may arrive before its memory.events notification. */
        if (r != RESULT_SUCCESS && cgroup_service_oom_check(s) > 0)
                r = RESULT_OOM_KILL;

        s->exit_code = code;
        s->exit_status = status;
        s->last_active_since = s->active_since;
        if (code == CLD_EXITED)
                service_log(s, "Main process exited, status=%d%s", status,
                            r == RESULT_SUCCESS ? "" : " (failure)");
        else
                service_log(s, "Main process killed by %s%s", signal_to_string(status) ?: "?",
                            code == CLD_DUMPED ? " (core dumped)" : "");

        switch (s->state) {
        case SERVICE_START:
                if (s->unit->type == SERVICE_ONESHOT && r == RESULT_SUCCESS) {
                        if (++s->exec_start_index < s->unit->exec_start.n) {
                                const exec_command *c =
                                        &s->unit->exec_start.items[s->exec_start_index];
                                int k = s->manager->ops->spawn(s, c, false, &s->main_pid,
                                                               &s->main_pidfd, NULL);

                                if (k < 0) {
                                        service_log(s, "Failed to start %s: %s", c->path,
                                                    strerror(-k));
                                        service_enter_signal(s, SERVICE_STOP_SIGTERM,
                                                             RESULT_RESOURCES);
                                }
                                return;
                        }
                        service_enter_start_post(s);
                        return;
                }
                if (s->unit->type == SERVICE_NOTIFY && r == RESULT_SUCCESS)
                        r = RESULT_PROTOCOL; /* exited before READY=1 */
                service_enter_signal(s, SERVICE_STOP_SIGTERM, r);
                return;
        case SERVICE_START_POST:
        case SERVICE_RUNNING:
        case SERVICE_RELOAD:
                service_enter_signal(s, SERVICE_STOP_SIGTERM, r);
                return;
        case SERVICE_STOP:
        case SERVICE_STOP_SIGTERM:
        case SERVICE_STOP_SIGKILL:
                /* Dying of the signal we sent is no failure. */
                if (code != CLD_EXITED && (status == s->unit->kill_signal || status == SIGKILL))
                        r = RESULT_SUCCESS;
                if (s->result == RESULT_SUCCESS)
                        s->result = r;
                service_check_stopped(s);
                return;
        default:
                return;
        }
}

static void service_control_exited(service *s, int code, int status) {
        const exec_command *c = s->control_list && s->control_index < s->control_list->n
                                        ? &s->control_list->items[s->control_index]
                                        : NULL;
        bool ok = code == CLD_EXITED && status == 0;
        int r;

        if (!ok && c && (c->flags & EXEC_IGNORE_FAILURE))
                ok = true;
        if (!ok && c)
                service_log(s, "%s %s with %s %d.", c->path,
                            code == CLD_EXITED ? "exited" : "was killed",
                            code == CLD_EXITED ? "status" : "signal", status);

        switch (s->state) {
        case SERVICE_START_PRE:
        case SERVICE_START_POST:
                if (!ok) {
                        service_enter_signal(s, SERVICE_STOP_SIGTERM,
                                             code == CLD_EXITED ? RESULT_EXIT_CODE : RESULT_SIGNAL);
                        return;
                }
                s->control_index++;
                r = service_spawn_control(s);
                if (r < 0)
                        service_enter_signal(s, SERVICE_STOP_SIGTERM, RESULT_RESOURCES);
                else if (r == 0 && s->state == SERVICE_START_PRE)
                        service_enter_start(s);
                else if (r == 0)
                        service_enter_running(s);
                return;
        case SERVICE_RELOAD:
                s->control_index++;
                r = ok ? service_spawn_control(s) : 0;
                if (r <= 0) {
                        service_arm_timer(s, USEC_INFINITY);
                        service_log(s, ok ? "Reloaded." : "Reload failed.");
                        service_set_state(s, SERVICE_RUNNING);
                }
                return;
        case SERVICE_STOP:
                s->control_index++;
                r = service_spawn_control(s);
                if (r <= 0)
                        service_enter_signal(s, SERVICE_STOP_SIGTERM, RESULT_SUCCESS);
                return;
        case SERVICE_STOP_SIGTERM:
        case SERVICE_STOP_SIGKILL:
                service_check_stopped(s);
                return;
        default:
                return;
        }
}

void service_sigchld(service *s, pid_t pid, int code, int status) {
        if (pid == s->main_pid) {
                service_close_process(&s->main_pid, &s->main_pidfd);
                service_main_exited(s, code, status);
        } else if (pid == s->control_pid) {
                service_close_process(&s->control_pid, &s->control_pidfd);
                service_control_exited(s, code, status);
        }
}

void service_cgroup_event(service *s) {
        service_check_stopped(s);
}

void service_notify(service *s, pid_t sender, char *const *fields) {
        bool ready = false, reloading = false;

        if (sender != s->main_pid) {
                log_debug("%s: notification from pid %d, not the main process; ignored.",
                          service_name(s), (int) sender);
                return;
        }
        STRV_FOREACH(f, fields) {
                const char *v;
                uint64_t u;

                if (streq(*f, "READY=1"))
                        ready = true;
                else if (streq(*f, "RELOADING=1"))
                        reloading = true;
                else if (streq(*f, "STOPPING=1"))
                        service_log(s, "Stopping (STOPPING=1).");
                else if (streq(*f, "WATCHDOG=1")) {
                        if (s->state == SERVICE_RUNNING || s->state == SERVICE_RELOAD)
                                service_start_watchdog(s);
                } else if (streq(*f, "WATCHDOG=trigger")) {
                        if (timer_armed(opt_timer(s->extra->watchdog_timer)))
                                on_watchdog(&s->extra->watchdog_timer->timer);
                } else if ((v = startswith(*f, "WATCHDOG_USEC=")) && parse_u64(v, &u) >= 0 &&
                           service_extra_get(s)) {
                        service_extra_own(s)->watchdog_usec = u;
                        if (s->state == SERVICE_RUNNING)
                                service_start_watchdog(s);
                } else if ((v = startswith(*f, "STATUS="))) {
                        service_extra *x = service_extra_get(s);
                        char *t = x ? strndup(v, 1024) : NULL;

                        if (t) {
                                free(x->status_text);
                                x->status_text = t;
                                manager_service_state_changed(s->manager, s);
                        }
                } else if ((v = startswith(*f, "ERRNO=")) && parse_u64(v, &u) >= 0) {
                        service_log(s, "Reported error: %s", strerror((int) (u & 0xffff)));
                } else if ((v = startswith(*f, "EXTEND_TIMEOUT_USEC=")) && parse_u64(v, &u) >= 0) {
                        bool starting = s->state == SERVICE_START_PRE ||
                                        s->state == SERVICE_START || s->state == SERVICE_START_POST;
                        bool stopping =
                                s->state == SERVICE_STOP || s->state == SERVICE_STOP_SIGTERM;
                        uint64_t want = now_usec(CLOCK_MONOTONIC) + u;

                        if ((starting || stopping) && timer_armed(&s->timer) &&
                            want > s->timer.deadline)
                                shared_timer_set(&s->timer, want);
                }
        }
        if (reloading && s->state == SERVICE_RUNNING)
                service_set_state(s, SERVICE_RELOAD);
        if (ready && s->state == SERVICE_START && s->unit->type == SERVICE_NOTIFY)
                service_enter_start_post(s);
        else if (ready && s->state == SERVICE_RELOAD && !s->control_pid)
                service_set_state(s, SERVICE_RUNNING);
}

/* Called by the manager when ordering allows the service to move to its target. */
void service_dispatch(service *s) {
        if (s->target == TARGET_STARTED) {
                if ((s->state == SERVICE_DEAD || s->state == SERVICE_FAILED) && !s->start_done)
                        service_enter_start_pre(s);
                return;
        }
        switch (s->state) {
        case SERVICE_AUTO_RESTART:
                service_arm_timer(s, USEC_INFINITY);
                service_enter_dead(s, RESULT_SUCCESS);
                break;
        case SERVICE_FAILED:
                timer_arm(opt_timer(s->extra->retry_timer), USEC_INFINITY);
                break;
        case SERVICE_START_PRE:
        case SERVICE_START:
        case SERVICE_START_POST:
                s->state_before_stop = s->state;
                service_enter_signal(s, SERVICE_STOP_SIGTERM, RESULT_SUCCESS);
                break;
        case SERVICE_RUNNING:
        case SERVICE_RELOAD:
                service_enter_stop(s);
                break;
        default:
                break;
        }
}

void service_dependency_failed(service *s, const char *why) {
        service_log(s, "Not starting: %s.", why);
        s->result = RESULT_DEPENDENCY;
        s->target = TARGET_STOPPED;
        service_set_state(s, SERVICE_FAILED);
}

bool service_start_refused(const service *s, char *why, size_t size) {
        char first[256];
        size_t n;

        if (s->in_cycle) {
                snprintf(why, size, "it is part of an ordering cycle");
                return true;
        }
        if (s->extra->missing_requirement) {
                snprintf(why, size, "%s", s->extra->missing_requirement);
                return true;
        }
        /* Asked each time: a reload or SetProperties may have changed the settings. */
        if (s->unit->resource->enforcement != ENFORCEMENT_REQUIRED)
                return false;
        n = resource_unenforced(s->unit, first, sizeof(first));
        if (n == 0)
                return false;
        snprintf(why, size, "ResourceEnforcement=required, but %s%s", first,
                 n > 1 ? " (and more: see vigilctl status)" : "");
        return true;
}

int service_start(service *s) {
        char why[512];

        if (s->in_cycle) {
                if (s->state != SERVICE_FAILED)
                        service_dependency_failed(s, "it is part of an ordering cycle");
                return -ELOOP;
        }
        /* Already running, or its start is under way; a service that has finished (a
         * oneshot, or one that exited cleanly) is started again, as systemd does. */
        if (s->target == TARGET_STARTED && (!s->start_done || service_is_active(s)) &&
            s->state != SERVICE_FAILED)
                return 0;
        /* While it is down the answer can go to the caller; otherwise the dispatch pass
         * refuses the start once the current run has ended. */
        if (!service_is_active(s) && s->state != SERVICE_AUTO_RESTART &&
            service_start_refused(s, why, sizeof(why))) {
                if (s->state != SERVICE_FAILED || s->result != RESULT_DEPENDENCY)
                        service_dependency_failed(s, why);
                return -ECANCELED;
        }
        s->target = TARGET_STARTED;
        s->start_done = false;
        /* An admin's start is a fresh chance: forget the start limit and the backoff. */
        s->n_start_times = 0;
        s->backoff_step = 0;
        timer_arm(opt_timer(s->extra->retry_timer), USEC_INFINITY);
        if (s->state == SERVICE_FAILED)
                service_set_state(s, SERVICE_DEAD);
        manager_service_requested(s->manager, s, TARGET_STARTED);
        return 0;
}

int service_stop(service *s) {
        s->target = TARGET_STOPPED;
        manager_service_requested(s->manager, s, TARGET_STOPPED);
        return 0;
}

int service_restart(service *s) {
        if (s->in_cycle)
                return -ELOOP;
        if (!service_is_active(s) && s->state != SERVICE_AUTO_RESTART)
                return service_start(s);
        s->restart_requested = true;
        return service_stop(s);
}

int service_reload(service *s) {
        if (s->state != SERVICE_RUNNING)
                return -EBUSY;
        if (s->unit->commands->exec_reload.n == 0)
                return -EOPNOTSUPP;
        service_enter_reload(s);
        return s->state == SERVICE_RELOAD ? 0 : -EIO;
}

void service_reset_failed(service *s) {
        if (s->state != SERVICE_FAILED)
                return;
        /* Forget the start limit and backoff too: the next start is a fresh one. */
        s->n_start_times = 0;
        s->backoff_step = 0;
        timer_arm(opt_timer(s->extra->retry_timer), USEC_INFINITY);
        s->result = RESULT_SUCCESS;
        s->target = TARGET_STOPPED;
        service_set_state(s, SERVICE_DEAD);
}

int service_kill(service *s, int sig) {
        if (sig < 1 || sig > 64)
                return -EINVAL;
        if (!service_is_active(s))
                return -ESRCH;
        return s->manager->ops->kill_all(s, sig);
}

/* A disarmed timer; accuracy 1 µs, as sd-event's default lets a timer slip by 250 ms. */
static int service_add_timer(service *s, shared_timer *t, shared_timer_fn cb) {
        return shared_timer_make(s->manager->event, t, cb);
}

static int service_add_opt_timer(service *s, service_timer **ret, shared_timer_fn cb) {
        service_timer *t;
        int r;

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->service = s;
        r = service_add_timer(s, &t->timer, cb);
        if (r < 0) {
                free(t);
                return r;
        }
        *ret = t;
        return 0;
}

static int service_add_watchdog_timer(service *s) {
        service_extra *x = service_extra_get(s);

        return x ? service_add_opt_timer(s, &x->watchdog_timer, on_watchdog) : -ENOMEM;
}

static int service_add_retry_timer(service *s) {
        service_extra *x = service_extra_get(s);

        return x ? service_add_opt_timer(s, &x->retry_timer, on_retry) : -ENOMEM;
}

static void service_opt_timer_free(service_timer *t) {
        if (!t)
                return;
        shared_timer_free(&t->timer);
        free(t);
}

const service_extra service_no_extra = { .spare = { .pidfd = -1, .exec_fd = -1, .go_fd = -1 } };

service_extra *service_extra_own(service *s) {
        return s->extra != &service_no_extra ? (service_extra *) s->extra : NULL;
}

void service_drop_pending_unit(service *s) {
        service_extra *x = service_extra_own(s);

        if (x)
                x->pending_unit = unit_free(x->pending_unit);
}

service_extra *service_extra_get(service *s) {
        service_extra *x = service_extra_own(s);

        if (x)
                return x;
        x = malloc(sizeof(service_extra));
        if (!x)
                return NULL;
        *x = service_no_extra;
        s->extra = x;
        return x;
}

static void service_free_but_unit(service *s);

int service_new(manager *m, unit *u, service **ret) {
        service *s;
        int r;

        s = calloc(1, sizeof(service));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->main_pidfd = s->control_pidfd = s->cgroup_fd = s->events.fd = -1;
        s->memory_events.fd = -1;
        s->extra = &service_no_extra;
        s->unit = u; /* the caller's until this succeeds */
        r = service_start_times_new(u, &s->start_times);
        /* The timers that a service's settings call for exist from the start, so that
         * arming them later cannot fail for want of memory. */
        if (r >= 0)
                r = service_add_timer(s, &s->timer, on_timer);
        if (r >= 0 && (u->watchdog > 0 || u->type == SERVICE_NOTIFY))
                r = service_add_watchdog_timer(s);
        if (r >= 0 && u->backoff->start_limit_retry != USEC_INFINITY)
                r = service_add_retry_timer(s);
        if (r >= 0) {
                /* StandardOutput=kmsg and the "+console" forms add copies of the lines. */
                log_settings ls = m->log;

                ls.console = ls.console || u->process->std_output.console ||
                             u->process->std_error.console;
                ls.kmsg = u->process->std_output.kind == OUTPUT_KMSG ||
                          u->process->std_error.kind == OUTPUT_KMSG;
                r = log_stream_new(m->event, service_name(s), &ls, &s->log);
        }
        if (r < 0) {
                service_free_but_unit(s);
                return r;
        }
        *ret = s;
        return 0;
}

service *const *service_deps(const service *s, service_dep kind, size_t *ret_n) {
        size_t off = 0;

        for (service_dep k = 0; k < kind; k++)
                off += s->n_deps[k];
        *ret_n = s->n_deps[kind];
        return s->deps ? s->deps + off : NULL;
}

int service_dep_add(service *s, service_dep kind, service *t) {
        size_t n, off = 0, total = 0;
        service *const *have = service_deps(s, kind, &n);
        service **d;

        for (size_t i = 0; i < n; i++)
                if (have[i] == t)
                        return 0;
        for (service_dep k = 0; k < _DEP_MAX; k++) {
                if (k <= kind)
                        off += s->n_deps[k];
                total += s->n_deps[k];
        }
        if (s->n_deps[kind] == UINT32_MAX)
                return -ENOMEM;
        d = reallocarray(s->deps, total + 1, sizeof(service *));
        if (!d)
                return -ENOMEM;
        memmove(d + off + 1, d + off, (total - off) * sizeof(service *));
        d[off] = t;
        s->deps = d;
        s->n_deps[kind]++;
        return 0;
}

void service_deps_clear(service *s) {
        s->deps = mfree(s->deps);
        memset(s->n_deps, 0, sizeof(s->n_deps));
}

/* Everything but s->unit, which is its name until the end. */
static void service_free_but_unit(service *s) {
        shared_timer_free(&s->timer);
        service_opt_timer_free(s->extra->watchdog_timer);
        service_opt_timer_free(s->extra->retry_timer);
        sd_event_source_disable_unref(s->extra->exec_source);
        service_close_process(&s->main_pid, &s->main_pidfd);
        service_close_process(&s->control_pid, &s->control_pidfd);
        if (s->manager->ops->release)
                s->manager->ops->release(s); /* a prepared process, before its cgroup goes */
        cgroup_service_remove(s);
        log_stream_free(s->log);
        service_deps_clear(s);
        if (service_extra_own(s)) {
                unit_free(s->extra->pending_unit);
                free(s->extra->image_version);
                free(s->extra->status_text);
                free(s->extra->missing_requirement);
                free(service_extra_own(s));
        }
        free(s->start_times);
        free(s);
}

service *service_free(service *s) {
        unit *u;

        if (!s)
                return NULL;
        u = s->unit;
        service_free_but_unit(s);
        unit_free(u);
        return NULL;
}

int service_replace_unit(service *s, unit *u) {
        usec_t *times;
        int r;

        if (service_is_active(s) || s->state == SERVICE_AUTO_RESTART)
                return -EBUSY;
        if (service_start_times_new(u, &times) < 0)
                return -ENOMEM;
        /* The timers the new settings call for, before anything changes. */
        r = 0;
        if (!s->extra->watchdog_timer && (u->watchdog > 0 || u->type == SERVICE_NOTIFY))
                r = service_add_watchdog_timer(s);
        if (r >= 0 && !s->extra->retry_timer && u->backoff->start_limit_retry != USEC_INFINITY)
                r = service_add_retry_timer(s);
        if (r < 0) {
                free(times);
                return r;
        }
        timer_arm(opt_timer(s->extra->retry_timer), USEC_INFINITY);
        free(s->start_times);
        s->start_times = times;
        s->n_start_times = 0;
        s->backoff_step = 0;
        s->control_list = NULL;
        if (s->manager->ops->release)
                s->manager->ops->release(s); /* prepared from the old unit */
        unit_free(s->unit);
        s->unit = u;
        /* Its cgroup takes the new limits (and moves to a new tier while it is down). */
        r = cgroup_service_apply(s);
        if (r > 0)
                log_warning("%s: %d resource setting(s) of its new unit could not be written; "
                            "see its warnings.",
                            service_name(s), r);
        return 0;
}
