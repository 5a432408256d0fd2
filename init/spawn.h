/* The child side of starting a command: credentials, environment, stdio, limits, exec. */
#pragma once

#include <sys/types.h>

#include "unit.h"

/* Exit statuses of a child that failed before exec (systemd's numbers). */
enum {
        EXIT_CHDIR = 200,
        EXIT_FDS = 202,
        EXIT_EXEC = 203,
        EXIT_MEMORY = 204,
        EXIT_LIMITS = 205,
        EXIT_SIGNAL_MASK = 207,
        EXIT_STDIN = 208,
        EXIT_STDOUT = 209,
        EXIT_GROUP = 216,
        EXIT_USER = 217,
        EXIT_CAPABILITIES = 218,
        EXIT_CGROUP = 219,
        EXIT_SETSID = 220,
        EXIT_STDERR = 222,
        EXIT_NAMESPACE = 226,
        EXIT_NO_NEW_PRIVILEGES = 227,
        EXIT_SECCOMP = 228,
};

typedef struct isolation isolation;

typedef struct spawn_params {
        const unit *unit;
        const exec_command *command;
        /* Where the service's stdout/stderr go when StandardOutput=/StandardError= say
         * journal, syslog or kmsg: the write end of its log pipe; -1: /dev/null. */
        int log_fd;
        int cgroup_fd;              /* start the child in this cgroup (CLONE_INTO_CGROUP); -1: no */
        const char *notify_socket;  /* NOTIFY_SOCKET= for the child; NULL: not set */
        pid_t main_pid;             /* MAINPID= (for ExecStop=, ExecReload=); 0: not set */
        usec_t watchdog_usec;       /* WATCHDOG_USEC= and WATCHDOG_PID= (main process); 0: no */
        const char *root;           /* where /etc/passwd and /etc/group are read; NULL: "/" */
        const isolation *isolation; /* the container to run in (isolate.h); NULL: none */
        /* Prepared only: the child does everything up to its exec, then waits until a byte
         * arrives on *ret_go_fd of spawn_command() (and exits at EOF). */
        bool prepare_only;
} spawn_params;

/* Forks (clone3 with CLONE_PIDFD, and CLONE_INTO_CGROUP when cgroup_fd >= 0) and
 * execs the command in the child. Returns 0 with the child's pid, its pidfd
 * (O_CLOEXEC) and the read end of a CLOEXEC pipe (ret_exec_fd) that reaches EOF with
 * no data when execve() succeeded, or carries an int errno and then EOF when the
 * child failed before exec (it then also exits with one of the EXIT_* codes
 * above, after writing "vigil: NAME: what failed: error" to its stderr).
 * ret_exec_fd may be NULL. Never blocks on the child. */
int spawn_command(const spawn_params *p, pid_t *ret_pid, int *ret_pidfd, int *ret_exec_fd);

/* The same with p->prepare_only: also returns the write end of the child's go pipe
 * (O_CLOEXEC). Writing one byte lets it exec; closing it makes it exit. */
int spawn_prepared(const spawn_params *p, pid_t *ret_pid, int *ret_pidfd, int *ret_exec_fd,
                   int *ret_go_fd);

/* Builds the child's environment (exposed for tests): a default PATH, then
 * USER/LOGNAME/HOME/SHELL when User= is set, NOTIFY_SOCKET, MAINPID,
 * WATCHDOG_USEC/WATCHDOG_PID, then Environment=, then each EnvironmentFile=
 * (later assignments of a name replace earlier ones, as in systemd). */
int spawn_build_environment(const spawn_params *p, const char *user, const char *home,
                            const char *shell, pid_t self, char ***ret);

/* Expands $NAME and ${NAME} in argv like systemd: "${NAME}" inside a word is
 * replaced in place, a word that is exactly "$NAME" is split at whitespace
 * into several words, "$$" is a literal "$", an unset variable is empty. */
int spawn_expand_argv(char *const *argv, char *const *env, char ***ret);

/* Reads an EnvironmentFile= as systemd does: KEY=VALUE lines, # and ; comment
 * lines, single and double quotes, backslash-newline continuation; bounded in
 * size. Appends to *env, replacing earlier assignments of the same name. */
int env_file_load(const char *path, char ***env);
