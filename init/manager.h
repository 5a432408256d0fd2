/* The manager: the event loop, the set of services, their ordering, boot and shutdown. */
#pragma once

#include <systemd/sd-event.h>

#include "logstream.h"
#include "service.h"
#include "vigil-conf.h"

#define MANAGER_SERVICES_MAX 10000

typedef enum manager_exit {
        MANAGER_RUNNING,
        MANAGER_EXIT, /* sandbox: stop everything, exit 0 */
        MANAGER_REBOOT,
        MANAGER_POWEROFF,
        MANAGER_HALT,
} manager_exit;

typedef struct manager_settings {
        const char *config_dir;  /* /etc/vigil: vigil.conf, units/, policies/ */
        const char *state_dir;   /* /var/lib/vigil/state */
        const char *runtime_dir; /* /run/vigil: private, notify */
        const char *log_dir;     /* /var/log/vigil */
        bool sandbox;
        pid_t sandbox_id; /* the host pid of `vigil --sandbox`, naming its cgroup */
} manager_settings;

typedef struct bus_server bus_server;

/* A setting changed with SetProperties, applied over the unit (also after ReloadUnits). */
typedef struct property_override {
        char *service, *key, *value;
        char *source;    /* the file that keeps it, or "SetProperties (runtime)" */
        char *persisted; /* a runtime one: the value its file keeps underneath, or NULL */
        bool runtime;
} property_override;
typedef struct sys_ops sys_ops;
typedef struct update_state update_state;

typedef struct manager {
        sd_event *event;
        const sys_ops *ops;        /* the kernel, or a test double */
        manager_settings settings; /* strings owned by the manager */
        vigil_conf conf;
        char *units_dir, *policies_dir, *notify_path;

        service **services; /* sorted by name */
        size_t n_services;

        log_settings log; /* defaults for every service's log */
        manager_exit exit;
        bool force; /* skip stopping services: Ctrl-Alt-Del pressed 7 times */
        bool shutting_down;
        bool dispatch_queued;

        int notify_fd;
        sd_event_source *notify_source, *dispatch_source;
        bus_server *bus;
        update_state *updates; /* image records and trials: init/update.c */
        property_override *overrides;
        size_t n_overrides;

        int cgroup_root_fd; /* vigil's cgroup (v2), or -1: process groups only */
        char *cgroup_root;

        /* Boot timeline, CLOCK_MONOTONIC (µs); 0 until reached. */
        usec_t ts_exec, ts_units_loaded, ts_all_started;
        unsigned ctrl_alt_del_count;
        usec_t ctrl_alt_del_first;
} manager;

int manager_new(const manager_settings *s, manager **ret);
manager *manager_free(manager *m);

/* Loads vigil.conf, every unit and policy; bad units are reported and skipped. */
int manager_load(manager *m);
/* Starts everything WantedBy= multi-user.target or default.target, runs the
 * loop until shutdown, and returns what should happen next. */
manager_exit manager_run(manager *m);

service *manager_find_service(manager *m, const char *name);
/* Soon, from the loop, moves every service whose ordering allows towards its
 * target. Cheap to call often. */
void manager_queue_dispatch(manager *m);
/* From service_set_state(): BindsTo= propagation, D-Bus signals, dispatch. */
void manager_service_state_changed(manager *m, service *s);
/* From service_start()/service_stop(): pulls in Requires=/Wants=, stops Conflicts=
 * on start, stops what Requires= s on stop. */
void manager_service_requested(manager *m, service *s, service_target target);
/* Sets every target to stopped; the loop ends when all are down. */
void manager_begin_shutdown(manager *m, manager_exit how);

/* Re-reads vigil.conf's [Access], every unit and policy. All or nothing: when any file has
 * an error, nothing changes, -EBADMSG, and *ret_error lists each problem as FILE:LINE:
 * MESSAGE. Otherwise new services are added (and started when wanted), removed ones stopped
 * and dropped, changed ones take their new unit (restarting if they run), and *ret_changes
 * says what happened ("added x.service", ...). */
int manager_reload_units(manager *m, char ***ret_changes, char **ret_error);

/* Live changes of restart settings: "Key=Value" assignments in unit-file syntax (Restart=,
 * RestartSec=, RestartSteps=, RestartMaxDelaySec=, RestartBackoffResetSec=,
 * RestartRandomizedDelaySec=, StartLimitIntervalSec=, StartLimitBurst=). All or nothing;
 * -EINVAL with *ret_error saying why. Unless runtime, kept in STATE/overrides/NAME.conf and
 * applied at every boot. */
int manager_set_properties(manager *m, service *s, char *const *assignments, bool runtime,
                           char **ret_error);
/* Where SetProperties set Key of s from, or NULL. */
const char *manager_property_source(manager *m, const service *s, const char *key);

usec_t now_usec(clockid_t clock);
