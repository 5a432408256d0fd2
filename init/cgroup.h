/* cgroup v2 bookkeeping: one leaf per service to know and kill all of its processes. */
#pragma once

#include "manager.h"

/* Finds a cgroup2 hierarchy (mounting one at /sys/fs/cgroup as the real PID 1
 * is boot's job) and creates vigil's subtree in it. Without one, services are
 * tracked by process group and m->cgroup_root_fd stays -1. */
int cgroup_setup(manager *m);
void cgroup_teardown(manager *m);
/* The host side of --sandbox learns the path before the sandbox mounts its own /proc,
 * and after its PID 1 exited, however it did, removes what is left of its cgroups. */
char *cgroup_sandbox_path(pid_t sandbox_id);
void cgroup_sandbox_remove(const char *path);

/* Creates the service's leaf and watches its cgroup.events. */
int cgroup_service_create(service *s);
void cgroup_service_remove(service *s);

int cgroup_service_kill(service *s, int sig);
/* 1 when processes are left, 0 when empty, -errno. */
int cgroup_service_populated(service *s);
