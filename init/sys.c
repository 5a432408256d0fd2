/* The kernel side of the seam: spawning with spawn_command(), signals through pidfds,
 * whole services through their cgroup or, without one, their process groups. */
#include <signal.h>
#include <sys/syscall.h>

#include "cgroup.h"
#include "logstream.h"
#include "manager.h"
#include "spawn.h"
#include "sys.h"

static int kernel_spawn(service *s, const exec_command *cmd, bool control, pid_t *ret_pid,
                        int *ret_pidfd, int *ret_exec_fd) {
        const unit *u = s->unit;
        bool notify = u->type == SERVICE_NOTIFY || s->watchdog_usec > 0;
        spawn_params p = {
                .unit = u,
                .command = cmd,
                .log_fd = s->log ? log_stream_writer(s->log) : -1,
                .cgroup_fd = s->cgroup_fd,
                .notify_socket = !control && notify ? s->manager->notify_path : NULL,
                .main_pid = control ? s->main_pid : 0,
                .watchdog_usec = control ? 0 : s->watchdog_usec,
        };

        return spawn_command(&p, ret_pid, ret_pidfd, ret_exec_fd);
}

static int kernel_kill_process(service *s, pid_t pid, int pidfd, int sig) {
        /* The pidfd cannot hit a recycled pid. */
        if (pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) >= 0)
                return 0;
        if (pidfd >= 0 && errno == ESRCH)
                return -ESRCH;
        return kill(pid, sig) < 0 ? -errno : 0;
}

static int kernel_kill_all(service *s, int sig) {
        int r = 0;

        if (s->cgroup_fd >= 0)
                return cgroup_service_kill(s, sig);
        /* Every command runs in a session of its own: signal the groups. */
        if (s->pgid > 0 && kill(-s->pgid, sig) < 0 && errno != ESRCH)
                r = -errno;
        if (s->control_pid > 0 && kill(-s->control_pid, sig) < 0 && errno != ESRCH)
                r = -errno;
        return r;
}

static bool kernel_has_processes(service *s) {
        if (s->cgroup_fd >= 0)
                return cgroup_service_populated(s) != 0;
        if (s->main_pid > 0 || s->control_pid > 0)
                return true;
        return s->pgid > 0 && kill(-s->pgid, 0) == 0;
}

const sys_ops sys_ops_kernel = {
        .spawn = kernel_spawn,
        .kill_process = kernel_kill_process,
        .kill_all = kernel_kill_all,
        .has_processes = kernel_has_processes,
};
