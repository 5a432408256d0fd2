/* The container baseline: an allow list in the spirit of Docker's default profile, stricter
 * where a game server has no use for a call. policies/README.md gives the reasons. */
#include "seccomp-baseline.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/socket.h>

#include "syscall-groups.h"

/* Allowed without conditions. Calls that exist on one ABI only (the *32 and *64 variants of
 * i386, arch_prctl of x86-64) are listed once and apply where they exist. Not here, so
 * refused: keyrings, bpf, ptrace and process_vm_*, kcmp, pidfd_getfd, process_madvise, the
 * mount family and chroot, unshare and setns, open_by_handle_at and name_to_handle_at,
 * userfaultfd, perf_event_open, fanotify_init, kexec, modules, io_uring, reboot, swap, acct,
 * setting clocks (adjtimex included), syslog, iopl/ioperm, quotactl, lookup_dcookie, vhangup,
 * nfsservctl, uselib, sethostname/setdomainname, NUMA memory policies, vm86, socketcall (its
 * arguments cannot be inspected) and the obsolete calls. */
static const char allowed[] =
        /* files and plain I/O */
        "access chdir chmod chown chown32 close close_range copy_file_range creat dup dup2 dup3 "
        "faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod "
        "fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr "
        "flistxattr flock fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 "
        "fsync ftruncate ftruncate64 futimesat getcwd getdents getdents64 getxattr "
        "inotify_add_watch inotify_init inotify_init1 inotify_rm_watch lchown lchown32 "
        "lgetxattr link linkat listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat "
        "lstat64 mkdir mkdirat mknod mknodat newfstatat open openat openat2 pread64 preadv "
        "preadv2 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv removexattr "
        "rename renameat renameat2 rmdir sendfile sendfile64 setxattr splice stat stat64 statfs "
        "statfs64 statx symlink symlinkat sync sync_file_range syncfs tee truncate truncate64 "
        "umask unlink unlinkat utime utimensat utimensat_time64 utimes vmsplice write writev "
        /* memory */
        "brk madvise membarrier memfd_create memfd_secret mincore mlock mlock2 mlockall mmap "
        "mmap2 mprotect mremap msync munlock munlockall munmap pkey_alloc pkey_free "
        "pkey_mprotect remap_file_pages "
        /* processes, threads, credentials, scheduling */
        "arch_prctl capget capset execve execveat exit exit_group fork futex futex_time64 "
        "futex_waitv get_robust_list get_thread_area getcpu getegid getegid32 geteuid geteuid32 "
        "getgid getgid32 getgroups getgroups32 getpgid getpgrp getpid getppid getpriority "
        "getrandom getresgid getresgid32 getresuid getresuid32 getrlimit getrusage getsid gettid "
        "getuid getuid32 ioprio_get ioprio_set kill landlock_add_rule landlock_create_ruleset "
        "landlock_restrict_self modify_ldt nice pidfd_open pidfd_send_signal prctl prlimit64 "
        "process_mrelease rseq sched_get_priority_max sched_get_priority_min sched_getaffinity "
        "sched_getattr sched_getparam sched_getscheduler sched_rr_get_interval "
        "sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam "
        "sched_setscheduler sched_yield seccomp set_robust_list set_thread_area set_tid_address "
        "setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32 setpgid "
        "setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid "
        "setreuid32 setrlimit setsid setuid setuid32 sysinfo tgkill tkill times ugetrlimit uname "
        "vfork wait4 waitid waitpid "
        /* signals */
        "pause restart_syscall rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo "
        "rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo "
        "sigaction sigaltstack signal signalfd signalfd4 sigpending sigprocmask sigreturn "
        "sigsuspend "
        /* time and timers (reading and sleeping only) */
        "alarm clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep "
        "clock_nanosleep_time64 getitimer gettimeofday nanosleep setitimer time timer_create "
        "timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime "
        "timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime "
        "timerfd_settime64 "
        /* event loops */
        "_newselect epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 "
        "epoll_wait epoll_wait_old eventfd eventfd2 poll ppoll ppoll_time64 pselect6 "
        "pselect6_time64 select "
        /* SysV and POSIX IPC, pipes */
        "ipc mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 "
        "mq_timedsend mq_timedsend_time64 mq_unlink msgctl msgget msgrcv msgsnd pipe pipe2 "
        "semctl semget semop semtimedop semtimedop_time64 shmat shmctl shmdt shmget "
        /* sockets (socket() and ioctl() families and requests: see the prefix below) */
        "accept accept4 bind connect getpeername getsockname getsockopt ioctl listen recv "
        "recvfrom recvmmsg recvmmsg_time64 recvmsg send sendmmsg sendmsg sendto setsockopt "
        "shutdown socket socketpair "
        /* asynchronous I/O (not io_uring) */
        "io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup "
        "io_submit";

/* The personas a program may switch to (Docker's choice): the default, PER_LINUX32 (uname
 * reports i686), UNAME26, both, and 0xffffffff, which only queries. */
static const uint64_t personas[] = { PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32 | UNAME26,
                                     0xffffffffu };

/* Namespace flags that clone() must not carry (CLONE_NEWTIME is a CSIGNAL bit for clone()). */
#define CLONE_NAMESPACES                                                                           \
        (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |             \
         CLONE_NEWPID | CLONE_NEWNET)

static int add_allowed(scmp_filter_ctx ctx) {
        const char *p = allowed, *w;
        size_t len;

        while ((w = syscall_group_next(&p, &len))) {
                char name[64];
                int nr, r;

                if (len >= sizeof(name))
                        return -EINVAL;
                memcpy(name, w, len);
                name[len] = 0;
                nr = seccomp_syscall_resolve_name(name);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* newer than this libseccomp: refused */
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
                if (r < 0 && r != -EDOM)
                        return r;
        }
        return 0;
}

int seccomp_baseline_add_rules(scmp_filter_ctx ctx) {
        int r;

        r = add_allowed(ctx);
        if (r < 0)
                return r;

        /* clone() without namespace flags; the flags are its first argument on every x86 ABI. */
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                             SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_NAMESPACES, 0));
        if (r < 0)
                return r;

        /* clone3() passes its flags in memory, out of the filter's sight. ENOSYS makes glibc
         * fall back to clone(), where they can be checked. */
        r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        if (r < 0 && r != -EDOM)
                return r;

        /* An exact 64-bit match: a value with high bits set is refused, which is safe. */
        for (size_t i = 0; i < sizeof(personas) / sizeof(personas[0]); i++) {
                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
                                     SCMP_A0_64(SCMP_CMP_EQ, personas[i]));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- the argument prefix ------------------------------------------------------------------ */

/* libseccomp 2.5 compares "32-bit" arguments as 64-bit values, so "allow socket() unless the
 * family is AF_ALG" would let 0x100000026 through, which the kernel truncates to AF_ALG.
 * These checks look at the low 32 bits only, as the kernel does, and run before the
 * libseccomp program. */

#define X32_SYSCALL_BIT 0x40000000u
#define ARG_LOW(i) ((uint32_t) (offsetof(struct seccomp_data, args) + 8 * (i)))

typedef struct arg_check {
        uint32_t token;  /* SCMP_ARCH_* */
        uint32_t audit;  /* what the kernel reports in seccomp_data.arch */
        uint32_t nr;     /* the call's number in that ABI */
        unsigned arg;    /* which argument */
        uint32_t bad[2]; /* refused values of its low 32 bits */
} arg_check;

/* Numbers from the kernel's syscall tables (tests/integration/try-syscall checks them
 * against the kernel headers by calling them). */
static const arg_check checks[] = {
        { SCMP_ARCH_X86_64, AUDIT_ARCH_X86_64, 41, 0, { AF_ALG, AF_VSOCK } },   /* socket */
        { SCMP_ARCH_X86_64, AUDIT_ARCH_X86_64, 16, 1, { TIOCSTI, TIOCLINUX } }, /* ioctl */
        { SCMP_ARCH_X32, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 41, 0, { AF_ALG, AF_VSOCK } },
        { SCMP_ARCH_X32, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 514, 1, { TIOCSTI, TIOCLINUX } },
        { SCMP_ARCH_X86, AUDIT_ARCH_I386, 359, 0, { AF_ALG, AF_VSOCK } },  /* socket */
        { SCMP_ARCH_X86, AUDIT_ARCH_I386, 54, 1, { TIOCSTI, TIOCLINUX } }, /* ioctl */
};

int seccomp_baseline_prefix(const uint32_t *tokens, size_t n_tokens, uint32_t refusal,
                            struct sock_filter *out, size_t max) {
        const size_t block = 7; /* instructions per check */
        size_t n = 0, n_checks = 0, deny;

        for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
                for (size_t t = 0; t < n_tokens; t++)
                        if (checks[i].token == tokens[t])
                                n_checks++;
        if (n_checks == 0)
                return 0;
        if (n_checks * block + 2 > max || n_checks * block + 2 > 255)
                return -E2BIG;
        deny = n_checks * block + 1; /* after the final jump over it */

        for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
                const arg_check *c = &checks[i];
                bool want = false;

                for (size_t t = 0; t < n_tokens; t++)
                        want = want || c->token == tokens[t];
                if (!want)
                        continue;
                out[n++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                                         offsetof(struct seccomp_data, arch));
                out[n++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, c->audit, 0, 5);
                out[n++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                                         offsetof(struct seccomp_data, nr));
                out[n++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, c->nr, 0, 3);
                out[n++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LOW(c->arg));
                for (size_t v = 0; v < 2; v++) {
                        out[n] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, c->bad[v],
                                                               (uint8_t) (deny - n - 1), 0);
                        n++;
                }
        }
        out[n++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0);
        out[n++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, refusal);
        return (int) n;
}
