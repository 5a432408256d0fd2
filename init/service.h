/* One supervised service: its state machine, restart policy and processes. */
#pragma once

#include <sys/types.h>
#include <systemd/sd-event.h>

#include "poller.h"
#include "unit.h"

/*
 * The state machine
 * =================
 *
 * Each service has a current state (below) and a desired state, `target`:
 * TARGET_STARTED or TARGET_STOPPED. Admins and dependencies change only the
 * target; the manager's dispatch pass then moves the service towards it when
 * its ordering allows. Only service_set_state() writes `state`.
 *
 * A start request is complete when `start_done` is set: the service reached
 * RUNNING, or a oneshot finished successfully (it is then DEAD but counts as
 * started for the units ordered after it). A start that fails for good sets
 * the target back to TARGET_STOPPED, which releases the units waiting for it
 * (those that Require= it fail with result dependency).
 *
 *   DEAD ──start──▶ START_PRE ──all ExecStartPre= ok──▶ START
 *                       │ (none)                       ▲
 *                       └──────────────────────────────┘
 *
 *   START: the main process (ExecStart=) runs. It leaves START when
 *     simple   the process was forked;
 *     exec     execve() succeeded;
 *     notify   READY=1 arrived from the main process;
 *     oneshot  every ExecStart= command exited successfully;
 *   then START_POST (ExecStartPost=, if any) and RUNNING (oneshot: DEAD with
 *   result success, or AUTO_RESTART for Restart=on-failure style policies).
 *
 *   RUNNING ──reload──▶ RELOAD (ExecReload= runs, or RELOADING=1 until READY=1)
 *           ◀─────────── done
 *
 *   RUNNING ──stop──▶ STOP (ExecStop=) ──▶ STOP_SIGTERM (KillSignal=, then
 *   TimeoutStopSec=) ──▶ STOP_SIGKILL ──all processes gone──▶ DEAD or FAILED
 *
 *   Main process exit in START/START_POST/RUNNING/RELOAD: the result is set
 *   (exit-code, signal, core-dump, watchdog...) and remaining processes are
 *   stopped as for "stop" (STOP_SIGTERM...); then the restart policy decides:
 *     restart wanted and under the start limit → AUTO_RESTART (a timer with
 *       the backoff delay) → START_PRE;
 *     start limit hit → FAILED (result start-limit-hit); with StartLimitRetrySec=
 *       a timer retries from FAILED after that long, forever;
 *     otherwise → FAILED (or DEAD for a clean exit).
 *
 *   Timeouts: TimeoutStartSec= in START_PRE/START/START_POST, TimeoutStopSec=
 *   in STOP/STOP_SIGTERM/STOP_SIGKILL (after which the service is FAILED even
 *   if a process survives SIGKILL), WatchdogSec= in RUNNING (SIGABRT, result
 *   watchdog). EXTEND_TIMEOUT_USEC= pushes the current deadline.
 */
typedef enum __attribute__((packed)) service_state {
        SERVICE_DEAD,
        SERVICE_START_PRE,
        SERVICE_START,
        SERVICE_START_POST,
        SERVICE_RUNNING,
        SERVICE_RELOAD,
        SERVICE_STOP,
        SERVICE_STOP_SIGTERM,
        SERVICE_STOP_SIGKILL,
        SERVICE_AUTO_RESTART,
        SERVICE_FAILED,
        _SERVICE_STATE_MAX,
} service_state;

typedef enum __attribute__((packed)) service_target {
        TARGET_STOPPED,
        TARGET_STARTED,
} service_target;

/* Why the service last stopped or failed (systemd's Result= values). */
typedef enum __attribute__((packed)) service_result {
        RESULT_SUCCESS,
        RESULT_RESOURCES, /* could not even fork/exec */
        RESULT_TIMEOUT,
        RESULT_EXIT_CODE,
        RESULT_SIGNAL,
        RESULT_CORE_DUMP,
        RESULT_WATCHDOG,
        RESULT_START_LIMIT_HIT,
        RESULT_DEPENDENCY,
        RESULT_PROTOCOL, /* ERRNO= from the service, or a notify service exited before READY=1 */
        RESULT_OOM_KILL, /* the kernel's OOM killer killed one of its processes (memory.events) */
        _SERVICE_RESULT_MAX,
} service_result;

typedef struct manager manager;
typedef struct log_stream log_stream;

typedef struct service service;
typedef struct service_timer service_timer;

/* The kinds of resolved dependencies (services only; .target names are always reached). */
typedef enum service_dep {
        DEP_AFTER,       /* ordered after these (After= here, Before= there) */
        DEP_BEFORE,      /* these are ordered after this one */
        DEP_REQUIRES,    /* Requires= and BindsTo= */
        DEP_WANTS,       /* Wants= */
        DEP_CONFLICTS,   /* both directions */
        DEP_REQUIRED_BY, /* stop when this one stops */
        DEP_BOUND_BY,    /* stop when this one goes inactive at all */
        _DEP_MAX,
} service_dep;

/* What few services use: service_no_extra (nothing, read-only) until one is needed
 * (service_extra_get()). */
typedef struct service_extra {
        char *status_text;             /* STATUS= */
        char *missing_requirement;     /* why it can never start, or NULL */
        service_timer *watchdog_timer; /* WatchdogSec=; NULL until settings call for it */
        service_timer *retry_timer;    /* StartLimitRetrySec=; likewise */
        sd_event_source *exec_source;  /* Type=exec: EOF when execve() succeeded */
        usec_t watchdog_usec;          /* WatchdogSec=, or WATCHDOG_USEC= */
        /* ReloadUnits: the unit that replaces the current one once the service is down */
        unit *pending_unit;
        char *image_version; /* the version of Image= its main process was started on */
        /* KeepReady=: the next main process, prepared up to its exec (init/sys.c). */
        struct {
                pid_t pid;
                int pidfd, exec_fd, go_fd;
                const unit *unit; /* what it was prepared from; another unit: discarded */
                char *image_version;
                uint64_t prepared_from; /* what it took from the host (init/sys.c) */
                sd_event_source *timer; /* prepares it, once the service is down */
        } spare;
} service_extra;

extern const service_extra service_no_extra;

/* One per service: the fields in size order, so that no padding comes between them. */
struct service {
        manager *manager;
        unit *unit; /* owned; replaced on reload */

        service_state state; /* the small fields first, in pairs (one-byte enums) */
        service_target target;
        service_result result;
        service_state state_before_stop; /* DEAD while no stop was asked for */
        uint16_t control_index;          /* in control_list (at most UNIT_LIST_MAX) */
        uint16_t exec_start_index;       /* oneshot: which ExecStart= command runs */

        /* The main process and the current control process (ExecStartPre=...). */
        pid_t main_pid, control_pid;
        int main_pidfd, control_pidfd;
        pid_t pgid; /* without cgroups: the main process's group */

        /* The last main-process exit. */
        int exit_code;   /* CLD_EXITED, CLD_KILLED, CLD_DUMPED, or 0 */
        int exit_status; /* exit status or signal */

        /* Restart bookkeeping. */
        unsigned restarts;     /* automatic restarts since boot ("Restarts") */
        unsigned backoff_step; /* restarts since the backoff was last reset */
        unsigned n_start_times;
        usec_t *start_times; /* ring of the last StartLimitBurst= start times; NULL: no limit */
        usec_t active_since; /* CLOCK_MONOTONIC, 0 when not running */
        usec_t active_since_realtime;
        usec_t last_active_since; /* active_since of the run that just ended */

        const exec_list *control_list; /* the list control_index walks */
        shared_timer timer;            /* the deadline of the current state */

        /* Resolved dependencies, every kind in one array, kind after kind (most services
         * have few or none): see service_deps(). */
        service **deps;
        uint32_t n_deps[_DEP_MAX];

        int cgroup_fd;          /* this service's cgroup directory, or -1 */
        bool cgroup_killed;     /* cgroup.kill was used on it: renewed before the next start */
        bool oom_killed;        /* the OOM killer struck during the current run */
        bool restart_requested; /* an admin restart: start again once stopped */
        bool start_done;        /* the current start request has completed */
        bool in_cycle;          /* part of an ordering cycle: never started */
        bool dispatch_mark;     /* scratch for the manager's passes */
        bool removed;           /* ReloadUnits: its file is gone */
        const service_extra *extra;
        fd_watch events;        /* its cgroup.events (fd -1: none), watched for "populated 0" */
        fd_watch memory_events; /* its memory.events, watched for oom_kill (fd -1: none) */
        uint64_t oom_kills;     /* the oom_kill count of memory.events last read */
        log_stream *log;
        uint64_t unit_digest; /* ReloadUnits: a digest of the files the unit came from */
};

int service_new(manager *m, unit *u, service **ret);
service *service_free(service *s);
/* Its unit's name (NULL only while service_new() gives up). */
static inline const char *service_name(const service *s) {
        return s->unit ? s->unit->name : NULL;
}

/* s->extra, its own from the first call on, to write to; NULL: out of memory. */
service_extra *service_extra_get(service *s);
/* s->extra to write to if it is its own already, else NULL (it has nothing to clear). */
service_extra *service_extra_own(service *s);
/* Forgets the unit that was to replace the current one. */
void service_drop_pending_unit(service *s);

/* The services that s has as dependencies of that kind, *ret_n of them. */
service *const *service_deps(const service *s, service_dep kind, size_t *ret_n);
/* Adds t (once) to s's dependencies of that kind: 0 or -ENOMEM. */
int service_dep_add(service *s, service_dep kind, service *t);
void service_deps_clear(service *s);

/* Admin and dependency requests: they change the target and dispatch. A start that can
 * never succeed is refused at once while the service is down (it fails with result
 * dependency): -ELOOP for an ordering cycle, -ECANCELED for the other reasons of
 * service_start_refused(). */
int service_start(service *s);
int service_stop(service *s);
int service_restart(service *s);
int service_reload(service *s);
int service_kill(service *s, int sig);
/* FAILED → DEAD with result success, start limit and backoff forgotten (ResetFailed). */
void service_reset_failed(service *s);
/* Takes u in place of the service's unit (which is freed) while it is down: DEAD or
 * FAILED. -EBUSY while it runs; on failure nothing changed and u is still the caller's. */
int service_replace_unit(service *s, unit *u);

/* Called by the manager's dispatch pass when ordering allows. */
void service_dispatch(service *s);
/* The start request cannot be met (cycle, missing or failed requirement). */
void service_dependency_failed(service *s, const char *why);
/* Whether s can never start as things stand, whatever other services do: an ordering
 * cycle, a required service that does not exist, or ResourceEnforcement=required with a
 * setting this machine does not enforce. The reason goes to why. */
bool service_start_refused(const service *s, char *why, size_t size);

/* Events from the manager. */
void service_sigchld(service *s, pid_t pid, int code, int status);
void service_notify(service *s, pid_t sender, char *const *fields);
/* The service's cgroup.events changed (it may be empty now). */
void service_cgroup_event(service *s);
/* In STOP_SIGTERM/STOP_SIGKILL: finishes the stop when no process is left. */
void service_check_stopped(service *s);

/* The ring of recent start times that u's start limit needs (StartLimitBurst= entries), or
 * NULL when u has none: 0, or -ENOMEM. */
int service_start_times_new(const unit *u, usec_t **ret);

/* The delay before automatic restart number step+1 (exposed for tests). */
usec_t service_restart_delay(const unit *u, unsigned step, uint64_t random);

bool service_is_active(const service *s);     /* anything but DEAD, FAILED, AUTO_RESTART */
bool service_is_started(const service *s);    /* target started and start_done */
bool service_retry_pending(const service *s); /* StartLimitRetrySec= timer armed */

const char *service_state_to_string(service_state s);
const char *service_result_to_string(service_result r);
/* systemd's ActiveState= for a state: active, activating, deactivating, inactive, failed. */
const char *service_active_state(const service *s);
