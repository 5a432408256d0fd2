/* The seam between the state machine and the kernel: starting and signalling processes. */
#pragma once

#include <sys/types.h>

#include "service.h"

typedef struct sys_ops {
        /* Starts cmd for s (control: a control process, else the main process); see
         * spawn_command() for ret_exec_fd. */
        int (*spawn)(service *s, const exec_command *cmd, bool control, pid_t *ret_pid,
                     int *ret_pidfd, int *ret_exec_fd);
        /* Signals one process through its pidfd. */
        int (*kill_process)(service *s, pid_t pid, int pidfd, int sig);
        /* Signals every process of the service: its cgroup, or its process groups. */
        int (*kill_all)(service *s, int sig);
        /* Whether any process of the service is left. */
        bool (*has_processes)(service *s);
        /* Drops what the kernel side keeps for s between starts (a prepared process). */
        void (*release)(service *s);
        /* s went down (dead, failed or waiting to restart): the kernel side may prepare
         * its next start. Optional. */
        void (*down)(service *s);
} sys_ops;

extern const sys_ops sys_ops_kernel;
