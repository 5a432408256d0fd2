/* cgroup v2: vigil's subtree, one leaf per service to know and kill all of its processes,
 * the controllers enabled for them and the limits written to each leaf. */
#pragma once

#include "manager.h"

/* The controllers vigil enables for its services. */
typedef enum cgroup_controller {
        CGROUP_CPU = 1 << 0,
        CGROUP_CPUSET = 1 << 1,
        CGROUP_MEMORY = 1 << 2,
        CGROUP_PIDS = 1 << 3,
        CGROUP_IO = 1 << 4,
        CGROUP_ALL = (1 << 5) - 1,
} cgroup_controller;

/* Finds a cgroup2 hierarchy (mounting one at /sys/fs/cgroup as the real PID 1
 * is boot's job), creates vigil's subtree in it and enables cpu, cpuset, memory, pids
 * and io for the services (the real PID 1 also in the hierarchy's root). Says at boot
 * which controllers are missing. Without a hierarchy, services are tracked by process
 * group and m->cgroup_root_fd stays -1. */
int cgroup_setup(manager *m);
void cgroup_teardown(manager *m);
/* The host side of --sandbox learns the path before the sandbox mounts its own /proc,
 * and after its PID 1 exited, however it did, removes what is left of its cgroups. */
char *cgroup_sandbox_path(pid_t sandbox_id);
void cgroup_sandbox_remove(const char *path);

/* Whether vigil has a cgroup v2 subtree, and the controllers enabled in it (0 when
 * none). One manager per process: the state is the process's. */
bool cgroup_have_tree(void);
unsigned cgroup_controllers(void);
const char *cgroup_controller_to_string(cgroup_controller c);

/* Creates the service's leaf (in its CPUPriority= tier's group), watches its
 * cgroup.events and memory.events, and writes the unit's limits with
 * cgroup_service_apply(). Logs what it cannot enforce (a unit with
 * ResourceEnforcement=required then never starts: service_start_refused()). */
int cgroup_service_create(service *s);
void cgroup_service_remove(service *s);

/* Writes s->unit's resource settings to the service's leaf: at creation, and again
 * after they changed at run time (SetProperties). Processes already running keep
 * their Nice= and scheduling settings; the cgroup limits apply at once. A change of
 * CPUPriority= that moves the service to another tier group needs the service to be
 * stopped: -EBUSY while it has processes. When the CPUs that CPUExclusive= services
 * reserve changed, every other leaf's settings are written again too. Returns the number
 * of settings of s that could not be written (each logged, and listed by
 * resource_warnings()), or -errno. */
int cgroup_service_apply(service *s);

/* After services left m->services (a reload removed their units): the CPUs they reserved
 * go back to the others. */
void cgroup_services_removed(manager *m);

/* The lines of what the last cgroup_service_apply() for the service NAME could not
 * write ("MemorySwapMax= not enforced: ..."); NULL when everything was written. */
char *const *cgroup_apply_failures(const char *name);

int cgroup_service_kill(service *s, int sig);
/* Before a start: a leaf emptied by cgroup.kill is replaced by a fresh one (see cgroup.c). */
int cgroup_service_renew(service *s);
/* 1 when processes are left, 0 when empty, -errno. */
int cgroup_service_populated(service *s);
/* Reads memory.events now: 1 when the OOM killer struck since the service's current run
 * started (s->oom_killed), 0 when not, -errno. */
int cgroup_service_oom_check(service *s);
