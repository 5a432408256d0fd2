/* The kernel side of the seam: spawning with spawn_command(), signals through pidfds,
 * whole services through their cgroup or, without one, their process groups. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "cgroup.h"
#include "isolate.h"
#include "log.h"
#include "logstream.h"
#include "manager.h"
#include "spawn.h"
#include "sys.h"

/* What one start needs: its parameters, its container, and the paths they point into. */
typedef struct start_ctx {
        char images[PATH_MAX], volumes[PATH_MAX];
        isolation_dirs dirs;
        isolation iso;
        spawn_params p;
} start_ctx;

/* The context of the start being made: PID 1 is single-threaded and a start never runs
 * inside another, so one serves all (the child has its own copy after clone). It is too
 * large for PID 1's stack frame, and allocating it for each start would leave holes between
 * the allocations the boot's burst of starts makes to stay. */
static start_ctx the_start_ctx;

/* Fills ctx for cmd of s; a "+" command gets no container. */
static int start_ctx_init(start_ctx *ctx, service *s, const exec_command *cmd, bool control) {
        const unit *u = s->unit;
        const manager_settings *set = &s->manager->settings;
        const char *slash = strrchr(set->state_dir, '/');
        int lib = slash ? (int) (slash - set->state_dir) : 0, r;
        bool notify = u->type == SERVICE_NOTIFY || s->extra->watchdog_usec > 0;

        /* Images and volumes live beside the state directory: /var/lib/vigil/{images,volumes}. */
        snprintf(ctx->images, sizeof(ctx->images), "%.*s/images", lib, set->state_dir);
        snprintf(ctx->volumes, sizeof(ctx->volumes), "%.*s/volumes", lib, set->state_dir);
        ctx->dirs = (isolation_dirs){
                .images = ctx->images,
                .volumes = ctx->volumes,
                .state = set->state_dir,
                .runtime = set->runtime_dir,
        };
        ctx->iso = (isolation){ .userns_fd = -1, .netns_fd = -1 };
        ctx->p = (spawn_params){
                .unit = u,
                .command = cmd,
                .log_fd = s->log ? log_stream_writer(s->log) : -1,
                .cgroup_fd = s->cgroup_fd,
                .notify_socket = !control && notify ? s->manager->notify_path : NULL,
                .main_pid = control ? s->main_pid : 0,
                .watchdog_usec = control ? 0 : s->extra->watchdog_usec,
        };
        if (cmd->flags & EXEC_PRIVILEGED)
                return 0; /* "+": full privileges, outside the container */
        r = isolation_prepare(u, &ctx->dirs, &ctx->iso);
        if (r < 0)
                return r;
        if (ctx->iso.driver)
                ctx->p.isolation = &ctx->iso;
        return 0;
}

/* ---- KeepReady=: the next main process prepared ahead ------------------------------------ */

/* While a service is down, its next main process is prepared up to its exec, in the
 * service's own cgroup (cloned into it: nothing has to move at the start, which costs an RCU
 * grace period where cgroup2 lacks favordynmods), and waits there; a start lets it exec. It
 * is prepared at the next turn of the loop after the service went down, and dropped when
 * the unit or its settings change, or when what it was prepared from no longer holds at the
 * start (another image version, or prepared_from()). */

static void kernel_release(service *s) {
        service_extra *c = service_extra_own(s);

        if (!c)
                return;
        /* Gone before anything else goes (its cgroup, the manager): it only ever waited. */
        if (c->spare.pidfd >= 0 &&
            syscall(SYS_pidfd_send_signal, c->spare.pidfd, SIGKILL, NULL, 0) >= 0) {
                siginfo_t si;

                (void) waitid(P_PIDFD, (id_t) c->spare.pidfd, &si, WEXITED);
        }
        c->spare.go_fd = safe_close(c->spare.go_fd);
        c->spare.pidfd = safe_close(c->spare.pidfd);
        c->spare.exec_fd = safe_close(c->spare.exec_fd);
        c->spare.pid = 0;
        c->spare.unit = NULL;
        c->spare.prepared_from = 0;
        c->spare.image_version = mfree(c->spare.image_version);
        c->spare.timer = sd_event_source_disable_unref(c->spare.timer);
}

/* Whether cmd, the main command, is prepared ahead for s. Not with an output file that the
 * start truncates: preparing it would truncate it while the service is down. */
static bool keeps_ready(const service *s, const exec_command *cmd, bool control) {
        const unit *u = s->unit;

        return !control && u->container->keep_ready && unit_is_container(u) &&
               u->exec_start.n == 1 && cmd == &u->exec_start.items[0] &&
               u->process->std_output.kind != OUTPUT_TRUNCATE &&
               u->process->std_error.kind != OUTPUT_TRUNCATE;
}

/* Adds what path is now to *h: its identity, with content its size and modification time
 * too, or its absence. A symlink is not followed (it may point out of a container root). */
static void hash_path(uint64_t *h, int dir_fd, const char *path, bool content) {
        struct stat st = {};
        uint64_t f[5];

        if (fstatat(dir_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                st = (struct stat){ .st_ino = (ino_t) errno };
        f[0] = (uint64_t) st.st_dev;
        f[1] = (uint64_t) st.st_ino;
        f[2] = content ? (uint64_t) st.st_size : 0;
        f[3] = content ? (uint64_t) st.st_mtim.tv_sec : 0;
        f[4] = content ? (uint64_t) st.st_mtim.tv_nsec : 0;
        for (size_t j = 0; j < sizeof(f); j++) {
                *h ^= ((const uint8_t *) f)[j];
                *h *= UINT64_C(1099511628211);
        }
}

/* What a prepared process took from the host before it waits, as it is now: the
 * EnvironmentFile= files it read, the output files it opened, the root and the user
 * database it resolved User= in, and every directory or file it bound (a volume removed
 * and made again is another one). */
static uint64_t prepared_from(const start_ctx *ctx, const unit *u) {
        const unit_container *ct = u->container;
        uint64_t h = UINT64_C(14695981039346656037);

        for (size_t i = 0; i < u->process->n_environment_files; i++)
                hash_path(&h, AT_FDCWD, u->process->environment_files[i].path, true);
        if (u->process->std_output.path)
                hash_path(&h, AT_FDCWD, u->process->std_output.path, false);
        if (u->process->std_error.path)
                hash_path(&h, AT_FDCWD, u->process->std_error.path, false);
        if (ct->root_image)
                hash_path(&h, AT_FDCWD, ct->root_image, true);
        if (ct->root_directory) {
                _cleanup_close_ int fd = open(ct->root_directory, O_PATH | O_DIRECTORY | O_CLOEXEC);

                hash_path(&h, AT_FDCWD, ct->root_directory, false);
                hash_path(&h, fd, "etc/passwd", true);
                hash_path(&h, fd, "etc/group", true);
        }
        if (ct->n_mounts > 0) {
                _cleanup_close_ int volumes = open(ctx->volumes, O_PATH | O_DIRECTORY | O_CLOEXEC);

                for (size_t i = 0; i < ct->n_mounts; i++) {
                        const mount_entry *m = &ct->mounts[i];

                        if (m->kind == MOUNT_BIND && m->source)
                                hash_path(&h, m->named ? volumes : AT_FDCWD, m->source, false);
                }
        }
        return h;
}

/* Prepares the next start; a failure only means that the next start is an ordinary one. */
static int on_spare_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        service *s = userdata;
        service_extra *c = service_extra_own(s);
        start_ctx *ctx = &the_start_ctx;
        int r;

        c->spare.timer = sd_event_source_disable_unref(c->spare.timer);
        /* Only while it is down (a start may have come first), and its cgroup is empty. */
        if (c->spare.pid > 0 || service_is_active(s) || s->manager->shutting_down ||
            !keeps_ready(s, &s->unit->exec_start.items[0], false) ||
            (s->cgroup_fd >= 0 && cgroup_service_populated(s) != 0))
                return 0;
        r = cgroup_service_renew(s);
        if (r >= 0)
                r = start_ctx_init(ctx, s, &s->unit->exec_start.items[0], false);
        if (r >= 0 && ctx->p.isolation) {
                ctx->p.prepare_only = true;
                c->spare.prepared_from = prepared_from(ctx, s->unit);
                r = spawn_prepared(&ctx->p, &c->spare.pid, &c->spare.pidfd, &c->spare.exec_fd,
                                   &c->spare.go_fd);
        }
        if (r >= 0 && c->spare.pid > 0) {
                c->spare.unit = s->unit;
                if (free_and_strdup(&c->spare.image_version,
                                    ctx->iso.image_version[0] ? ctx->iso.image_version : NULL) < 0)
                        kernel_release(s);
        } else if (r < 0)
                log_warning_errno(r, "%s: cannot prepare the next start: %m", service_name(s));
        return 0;
}

/* s went down: its next start is prepared at the next turn of the loop. */
static void kernel_down(service *s) {
        service_extra *c;

        if (!keeps_ready(s, &s->unit->exec_start.items[0], false) || s->manager->shutting_down)
                return;
        c = service_extra_get(s);
        if (!c || c->spare.timer || c->spare.pid > 0)
                return;
        (void) sd_event_add_time_relative(s->manager->event, &c->spare.timer, CLOCK_MONOTONIC, 0, 0,
                                          on_spare_timer, s);
}

/* Starts the prepared process, if it was prepared from this unit and image version and
 * prepared_from() still holds: it is in the service's cgroup already, so it only execs. */
static bool spare_start(service *s, const start_ctx *ctx, pid_t *ret_pid, int *ret_pidfd,
                        int *ret_exec_fd) {
        service_extra *c = service_extra_own(s);

        if (!c || c->spare.pid <= 0)
                return false;
        if (c->spare.unit != s->unit ||
            !streq(c->spare.image_version ?: "", ctx->iso.image_version) ||
            c->spare.prepared_from != prepared_from(ctx, s->unit) ||
            write(c->spare.go_fd, "", 1) != 1) {
                /* Prepared from something else, or it died meanwhile: start afresh. */
                kernel_release(s);
                return false;
        }
        *ret_pid = c->spare.pid;
        *ret_pidfd = TAKE_FD(c->spare.pidfd);
        if (ret_exec_fd)
                *ret_exec_fd = TAKE_FD(c->spare.exec_fd);
        kernel_release(s);
        return true;
}

static int kernel_spawn(service *s, const exec_command *cmd, bool control, pid_t *ret_pid,
                        int *ret_pidfd, int *ret_exec_fd) {
        start_ctx *ctx = &the_start_ctx;
        int r;

        r = cgroup_service_renew(s);
        if (r < 0)
                return r;
        r = start_ctx_init(ctx, s, cmd, control);
        if (r < 0)
                return r;
        if (!control && !(cmd->flags & EXEC_PRIVILEGED) &&
            (ctx->iso.image_version[0] || s->extra->image_version)) {
                service_extra *c = service_extra_get(s);

                if (!c ||
                    free_and_strdup(&c->image_version,
                                    ctx->iso.image_version[0] ? ctx->iso.image_version : NULL) < 0)
                        return -ENOMEM;
        }

        if (keeps_ready(s, cmd, control) && ctx->p.isolation &&
            spare_start(s, ctx, ret_pid, ret_pidfd, ret_exec_fd))
                return 0;
        return spawn_command(&ctx->p, ret_pid, ret_pidfd, ret_exec_fd);
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
        .release = kernel_release,
        .down = kernel_down,
};
