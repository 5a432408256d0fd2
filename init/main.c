/* vigil: PID 1 for appliance images. main() only sets up; the manager runs the machine. */
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/wait.h>

#include "boot.h"
#include "cgroup.h"
#include "config.h"
#include "log.h"
#include "manager.h"

static void help(void) {
        printf("Usage: vigil [OPTIONS]\n"
               "\n"
               "PID 1 for appliance images. As PID 1 it boots the machine from " VIGIL_CONFIG_DIR
               ".\n"
               "\n"
               "  --sandbox            run as PID 1 of fresh PID and mount namespaces on a\n"
               "                       normal host; SIGTERM stops every service and exits 0\n"
               "  --config-dir DIR     vigil.conf, units/, policies/ (default " VIGIL_CONFIG_DIR
               ")\n"
               "  --state-dir DIR      persistent state (default /var/lib/vigil/state)\n"
               "  --runtime-dir DIR    private and notify sockets (default /run/vigil)\n"
               "  --log-dir DIR        service logs (default /var/log/vigil; in the sandbox\n"
               "                       STATE-DIR/log)\n"
               "  -h, --help           show this help\n"
               "      --version        show the version\n");
}

/* Signals the manager reads from its signalfd. A handler must be installed, or the
 * kernel drops signals sent to a PID namespace's init from outside it. */
static void noop_handler(int sig) {
}

static void install_noop_handlers(void) {
        static const int signals[] = { SIGCHLD, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP };
        struct sigaction sa = { .sa_handler = noop_handler, .sa_flags = SA_RESTART };

        sigfillset(&sa.sa_mask);
        for (size_t i = 0; i < ELEMENTSOF(signals); i++)
                sigaction(signals[i], &sa, NULL);
}

/* The host side of --sandbox: forward stop signals to the namespace's PID 1, clean up
 * after it and exit with its status. */
static int sandbox_parent(pid_t child, const char *cgroup) {
        sigset_t all;

        sigfillset(&all);
        for (;;) {
                siginfo_t si;
                int status;

                if (sigwaitinfo(&all, &si) < 0)
                        continue;
                if (si.si_signo == SIGCHLD) {
                        if (waitpid(child, &status, WNOHANG) != child)
                                continue;
                        cgroup_sandbox_remove(cgroup);
                        if (WIFEXITED(status))
                                return WEXITSTATUS(status);
                        return 128 + WTERMSIG(status);
                }
                if (si.si_signo == SIGTERM || si.si_signo == SIGINT || si.si_signo == SIGHUP ||
                    si.si_signo == SIGUSR1 || si.si_signo == SIGUSR2)
                        kill(child, si.si_signo == SIGHUP ? SIGTERM : si.si_signo);
        }
}

/* Becomes PID 1 of new PID and mount namespaces; returns in the child only. */
static int sandbox_enter(void) {
        _cleanup_free_ char *cgroup = cgroup_sandbox_path(getpid());
        pid_t child;

        if (unshare(CLONE_NEWPID | CLONE_NEWNS) < 0)
                return log_error_errno(errno, "Cannot create the sandbox namespaces: %m");
        child = fork();
        if (child < 0)
                return log_error_errno(errno, "fork: %m");
        if (child > 0)
                exit(sandbox_parent(child, cgroup));

        /* If the host side dies, so does the sandbox. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return log_error_errno(errno, "Cannot make mounts private: %m");
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return log_error_errno(errno, "Cannot mount a private /proc: %m");
        return 0;
}

static void boot_machine(void) {
        boot_mount_api_filesystems();
        log_open(true);
        /* Ctrl-Alt-Del becomes SIGINT for us instead of an immediate reboot. */
        reboot(RB_DISABLE_CAD);
        boot_set_hostname("/etc/hostname");
        boot_loopback_up();
        boot_load_modules("/etc/modules-load.d");
        boot_mount_fstab("/etc/fstab");
}

int main(int argc, char **argv) {
        enum {
                ARG_SANDBOX = 0x100,
                ARG_CONFIG,
                ARG_STATE,
                ARG_RUNTIME,
                ARG_LOG,
                ARG_VERSION
        };
        static const struct option options[] = {
                { "sandbox", no_argument, NULL, ARG_SANDBOX },
                { "config-dir", required_argument, NULL, ARG_CONFIG },
                { "state-dir", required_argument, NULL, ARG_STATE },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME },
                { "log-dir", required_argument, NULL, ARG_LOG },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        manager_settings settings = {
                .config_dir = VIGIL_CONFIG_DIR,
                .state_dir = "/var/lib/vigil/state",
                .runtime_dir = "/run/vigil",
        };
        _cleanup_free_ char *sandbox_log_dir = NULL;
        manager *m = NULL;
        manager_exit how;
        unsigned timeout;
        usec_t ts_exec;
        sigset_t all;
        int c, r;

        /* Before anything else: every signal is read from the loop's signalfd. */
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        ts_exec = now_usec(CLOCK_MONOTONIC); /* the boot timeline starts here */

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_SANDBOX:
                        settings.sandbox = true;
                        break;
                case ARG_CONFIG:
                        settings.config_dir = optarg;
                        break;
                case ARG_STATE:
                        settings.state_dir = optarg;
                        break;
                case ARG_RUNTIME:
                        settings.runtime_dir = optarg;
                        break;
                case ARG_LOG:
                        settings.log_dir = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("vigil %s\n", VIGIL_VERSION);
                        return 0;
                default:
                        return 2;
                }
        if (optind < argc && getpid() != 1) {
                fprintf(stderr, "vigil: unexpected argument \"%s\"\n", argv[optind]);
                return 2;
        }
        if (!settings.sandbox && getpid() != 1) {
                fprintf(stderr, "vigil: not PID 1; use --sandbox to run on a normal host\n");
                return 2;
        }
        if (!settings.log_dir) {
                if (settings.sandbox &&
                    asprintf_safe(&sandbox_log_dir, "%s/log", settings.state_dir) < 0)
                        return 1;
                settings.log_dir = settings.sandbox ? sandbox_log_dir : "/var/log/vigil";
        }

        install_noop_handlers();
        if (settings.sandbox) {
                settings.sandbox_id = getpid();
                r = sandbox_enter();
                if (r < 0)
                        return 1;
        } else {
                /* Freeze rather than return to the kernel until vigil.conf says otherwise. */
                boot_install_crash_handler(false, 0);
                boot_machine();
        }

        r = manager_new(&settings, &m);
        if (r >= 0)
                m->ts_exec = ts_exec;
        if (r >= 0 && !settings.sandbox)
                boot_install_crash_handler(m->conf.crash_action == CRASH_REBOOT,
                                           (unsigned) (m->conf.crash_reboot_delay / USEC_PER_SEC));
        if (r >= 0)
                r = manager_load(m);
        how = r >= 0 ? manager_run(m) : MANAGER_REBOOT;

        timeout = m ? (unsigned) (m->conf.shutdown_timeout / USEC_PER_SEC) : 10;
        /* Closes the log files, sockets and cgroup fds that would keep file systems busy,
         * and writes the crash records still queued. */
        manager_free(m);
        if (settings.sandbox) {
                log_info("Exiting.");
                return r < 0 ? 1 : 0;
        }
        boot_final_shutdown(how == MANAGER_POWEROFF ? RB_POWER_OFF
                            : how == MANAGER_HALT   ? RB_HALT_SYSTEM
                                                    : RB_AUTOBOOT,
                            timeout);
}
