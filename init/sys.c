/* The kernel side of the seam: spawning with spawn_command(), signals through pidfds,
 * whole services through their cgroup or, without one, their process groups. */
#include <signal.h>
#include <sys/syscall.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "cgroup.h"
#include "isolate.h"
#include "logstream.h"
#include "manager.h"
#include "spawn.h"
#include "sys.h"

static int kernel_spawn(service *s, const exec_command *cmd, bool control, pid_t *ret_pid,
                        int *ret_pidfd, int *ret_exec_fd) {
        const unit *u = s->unit;
        bool notify = u->type == SERVICE_NOTIFY || s->watchdog_usec > 0;
        const manager_settings *set = &s->manager->settings;
        char images[PATH_MAX], volumes[PATH_MAX];
        const char *slash = strrchr(set->state_dir, '/');
        int lib = slash ? (int) (slash - set->state_dir) : 0;
        /* Images and volumes live beside the state directory: /var/lib/vigil/{images,volumes}. */
        isolation_dirs dirs = {
                .images = images,
                .volumes = volumes,
                .state = set->state_dir,
                .runtime = set->runtime_dir,
        };
        isolation iso;
        int r;
        spawn_params p = {
                .unit = u,
                .isolation = &iso,
                .command = cmd,
                .log_fd = s->log ? log_stream_writer(s->log) : -1,
                .cgroup_fd = s->cgroup_fd,
                .notify_socket = !control && notify ? s->manager->notify_path : NULL,
                .main_pid = control ? s->main_pid : 0,
                .watchdog_usec = control ? 0 : s->watchdog_usec,
        };

        r = cgroup_service_renew(s);
        if (r < 0)
                return r;
        p.cgroup_fd = s->cgroup_fd;
        snprintf(images, sizeof(images), "%.*s/images", lib, set->state_dir);
        snprintf(volumes, sizeof(volumes), "%.*s/volumes", lib, set->state_dir);
        if (cmd->flags & EXEC_PRIVILEGED)
                p.isolation = NULL; /* "+": full privileges, outside the container */
        else {
                r = isolation_prepare(u, &dirs, &iso);
                if (r < 0)
                        return r;
                if (!iso.driver)
                        p.isolation = NULL;
                if (!control &&
                    free_and_strdup(&s->image_version,
                                    iso.image_version[0] ? iso.image_version : NULL) < 0)
                        return -ENOMEM;
        }
        return spawn_command(&p, ret_pid, ret_pidfd, ret_exec_fd);
}

static bool default_action_ends(int sig) {
        switch (sig) {
        case SIGCHLD:
        case SIGCONT:
        case SIGURG:
        case SIGWINCH:
        case SIGSTOP:
        case SIGTSTP:
        case SIGTTIN:
        case SIGTTOU:
                return false;
        default:
                return sig > 0 && sig < _NSIG;
        }
}

/* The init of a PID namespace gets only the signals it handles (and SIGKILL from
 * outside); every process vigil starts in a container is one. So that KillSignal= ends
 * it as it would end the same program outside a container, a signal that would
 * terminate it by default, while it neither handles nor ignores it, becomes SIGKILL.
 * Returns the signal to send. */
static int container_init_signal(const service *s, pid_t pid, int sig) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        uint64_t caught = 0, ignored = 0, bit;
        char path[64];
        size_t n = 0;

        if (!unit_is_container(s->unit) || !default_action_ends(sig) || sig == SIGKILL)
                return sig;
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return sig;
        while (getline(&line, &n, f) > 0) {
                unsigned long long v;

                if (sscanf(line, "SigCgt: %llx", &v) == 1)
                        caught = v;
                else if (sscanf(line, "SigIgn: %llx", &v) == 1)
                        ignored = v;
        }
        bit = UINT64_C(1) << (sig - 1);
        return (caught | ignored) & bit ? sig : SIGKILL;
}

static int kernel_kill_process(service *s, pid_t pid, int pidfd, int sig) {
        sig = container_init_signal(s, pid, sig);
        /* The pidfd cannot hit a recycled pid. */
        if (pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) >= 0)
                return 0;
        if (pidfd >= 0 && errno == ESRCH)
                return -ESRCH;
        return kill(pid, sig) < 0 ? -errno : 0;
}

static int kernel_kill_all(service *s, int sig) {
        int r = 0;

        /* The containers' inits first (see container_init_signal()). */
        if (s->main_pid > 0 && container_init_signal(s, s->main_pid, sig) != sig)
                (void) kernel_kill_process(s, s->main_pid, s->main_pidfd, sig);
        if (s->control_pid > 0 && container_init_signal(s, s->control_pid, sig) != sig)
                (void) kernel_kill_process(s, s->control_pid, s->control_pidfd, sig);
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
