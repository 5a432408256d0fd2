/* Tests for the system call filters: SystemCallFilter= and friends as the loader reads them,
 * compilation and the program cache, and the programs at work in a confined child that runs
 * tests/integration/try-syscall. */
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "seccomp.h"
#include "syscall-groups.h"
#include "tap.h"
#include "unit.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static char *diag_text(const diag_list *d) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);

        if (!f)
                return NULL;
        diag_list_print(d, f);
        fclose(f);
        return s;
}

/* Loads "[Service]\nExecStart=/bin/true\n" + body; returns the unit or NULL (errors in *err). */
static unit *load(const char *body, char **err) {
        _cleanup_free_ char *data = NULL;
        diag_list diags = {};
        unit *u = NULL;

        if (asprintf(&data, "[Service]\nExecStart=/bin/true\n%s", body) < 0)
                return NULL;
        unit_load_buffer("test.service", "test.service", data, strlen(data), &diags, &u);
        if (err)
                *err = diags.n ? diag_text(&diags) : NULL;
        else if (diags.n)
                diag_list_print(&diags, stdout);
        diag_list_done(&diags);
        return u;
}

static bool error_is(const char *body, const char *want) {
        _cleanup_free_ char *err = NULL;
        _cleanup_unit_free_ unit *u = load(body, &err);

        if (!tap_ok(!u && err && strstr(err, want), "refused: %s", want))
                printf("#   got: %s\n", err ?: "(loaded)");
        return !u;
}

static uint64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* ---- parsing ------------------------------------------------------------------------------ */

static void test_allow_list(void) {
        _cleanup_unit_free_ unit *u = load("SystemCallFilter=@mount\n", NULL);

        if (!tap_ok(u != NULL, "an allow list loads"))
                return;
        tap_ok(u->seccomp->filter && u->seccomp->allow_list, "the first plain assignment makes an "
                                                             "allow list");
        tap_ok(unit_seccomp_has(u->seccomp, "mount") && unit_seccomp_has(u->seccomp, "fsopen"),
               "@mount's calls are in it");
        tap_ok(unit_seccomp_has(u->seccomp, "execve") && unit_seccomp_has(u->seccomp, "exit_group"),
               "an allow list includes @default");
        tap_ok(!unit_seccomp_has(u->seccomp, "reboot"), "other calls are not");
}

static void test_deny_list(void) {
        _cleanup_unit_free_ unit *u = load("SystemCallFilter=~@mount @reboot\n", NULL);

        if (!tap_ok(u != NULL, "a deny list loads"))
                return;
        tap_ok(u->seccomp->filter && !u->seccomp->allow_list, "\"~\" makes a deny list");
        tap_ok(unit_seccomp_has(u->seccomp, "mount") && unit_seccomp_has(u->seccomp, "reboot") &&
                       unit_seccomp_has(u->seccomp, "kexec_load"),
               "it holds @mount and @reboot");
        tap_ok(!unit_seccomp_has(u->seccomp, "execve"), "a deny list has no @default");
}

static void test_combination(void) {
        _cleanup_unit_free_ unit *a = NULL, *b = NULL, *c = NULL, *d = NULL;

        a = load("SystemCallFilter=@system-service\nSystemCallFilter=~@privileged @resources\n",
                 NULL);
        if (tap_ok(a != NULL, "allow list, then ~ removals")) {
                tap_ok(a->seccomp->allow_list, "still an allow list");
                tap_ok(unit_seccomp_has(a->seccomp, "read") &&
                               unit_seccomp_has(a->seccomp, "getpid"),
                       "@system-service stays");
                tap_ok(!unit_seccomp_has(a->seccomp, "setuid") &&
                               !unit_seccomp_has(a->seccomp, "chown") &&
                               !unit_seccomp_has(a->seccomp, "sched_setattr"),
                       "@privileged (and its nested @chown) and @resources are removed");
        }

        b = load("SystemCallFilter=~@mount @reboot\nSystemCallFilter=reboot\n", NULL);
        if (tap_ok(b != NULL, "deny list, then a plain removal")) {
                tap_ok(!b->seccomp->allow_list, "still a deny list");
                tap_ok(!unit_seccomp_has(b->seccomp, "reboot"), "reboot left the deny list");
                tap_ok(unit_seccomp_has(b->seccomp, "kexec_load") &&
                               unit_seccomp_has(b->seccomp, "mount"),
                       "the rest stays");
        }

        c = load("SystemCallFilter=@mount\nSystemCallFilter=\nSystemCallFilter=~reboot\n", NULL);
        if (tap_ok(c != NULL, "an empty assignment resets")) {
                tap_ok(!c->seccomp->allow_list && c->seccomp->n_syscalls == 1 &&
                               unit_seccomp_has(c->seccomp, "reboot"),
                       "the next assignment starts a new list");
        }

        d = load("SystemCallFilter=\n", NULL);
        if (tap_ok(d != NULL, "an empty assignment alone"))
                tap_ok(!d->seccomp->filter, "no filter");
}

static void test_errno_entries(void) {
        _cleanup_unit_free_ unit *u = load("SystemCallFilter=~mount:EMEDIUMTYPE reboot\n"
                                           "SystemCallFilter=~umount2:kill @swap:13\n",
                                           NULL);
        int mount_error = 0, reboot_error = -9, umount_error = 0, swapon_error = 0;

        if (!tap_ok(u != NULL, "name:ERRNO entries load"))
                return;
        for (uint32_t i = 0; i < u->seccomp->n_syscalls; i++) {
                const seccomp_syscall *e = &u->seccomp->syscalls[i];

                if (e->nr == SYS_mount)
                        mount_error = e->error;
                if (e->nr == SYS_reboot)
                        reboot_error = e->error;
                if (e->nr == SYS_umount2)
                        umount_error = e->error;
                if (e->nr == SYS_swapon)
                        swapon_error = e->error;
        }
        tap_inteq(mount_error, EMEDIUMTYPE, "mount:EMEDIUMTYPE");
        tap_inteq(reboot_error, SECCOMP_ERROR_DEFAULT, "reboot gets SystemCallErrorNumber=");
        tap_inteq(umount_error, SECCOMP_ERROR_KILL, "umount2:kill");
        tap_inteq(swapon_error, 13, "a group with a numeric errno");
}

static void test_error_number_and_archs(void) {
        _cleanup_unit_free_ unit *a = NULL, *b = NULL, *c = NULL;

        a = load("SystemCallErrorNumber=EPERM\nSystemCallArchitectures=native\n"
                 "SystemCallArchitectures=x86 x32\n",
                 NULL);
        if (tap_ok(a != NULL, "SystemCallErrorNumber= and SystemCallArchitectures= load")) {
                tap_inteq(a->seccomp->error_number, EPERM, "EPERM");
                tap_inteq(a->seccomp->archs,
                          SECCOMP_ARCH_NATIVE | SECCOMP_ARCH_X86 | SECCOMP_ARCH_X32,
                          "repeated SystemCallArchitectures= add up");
        }
        b = load("SystemCallErrorNumber=kill\nSystemCallArchitectures=x86-64\n"
                 "SystemCallArchitectures=\n",
                 NULL);
        if (tap_ok(b != NULL, "kill, and an empty architecture list")) {
                tap_inteq(b->seccomp->error_number, SECCOMP_ERROR_KILL, "kill");
                tap_inteq(b->seccomp->archs, 0, "the empty assignment resets the architectures");
        }
        c = load("SystemCallErrorNumber=4095\nSystemCallErrorNumber=EWOULDBLOCK\n", NULL);
        if (tap_ok(c != NULL, "numbers and aliases"))
                tap_inteq(c->seccomp->error_number, EAGAIN, "EWOULDBLOCK is EAGAIN");
        tap_streq(seccomp_error_to_string(EMEDIUMTYPE), "EMEDIUMTYPE", "errno names back");
}

static void test_errors(void) {
        error_is("SystemCallFilter=~mount foo_bar\n",
                 "test.service:3: error: SystemCallFilter=: unknown system call \"foo_bar\"");
        error_is("SystemCallFilter=@mount @nope\n",
                 "test.service:3: error: SystemCallFilter=: unknown system call group \"@nope\"");
        error_is("SystemCallFilter=mount:EPERM\n", "only a deny list (\"~\") entry can name an "
                                                   "errno");
        error_is("SystemCallFilter=~mount:EFOO\n", "\"EFOO\" is not an errno name");
        error_is("SystemCallFilter=~mount:0\n", "\"0\" is not an errno name");
        error_is("SystemCallErrorNumber=0\n", "invalid SystemCallErrorNumber= value \"0\"");
        error_is("SystemCallErrorNumber=4096\n", "invalid SystemCallErrorNumber= value \"4096\"");
        error_is("SystemCallErrorNumber=EFOO\n", "invalid SystemCallErrorNumber= value \"EFOO\"");
        error_is("SystemCallArchitectures=native sparc\n",
                 "SystemCallArchitectures=: unknown architecture \"sparc\"");
        error_is("SystemCallFilter=~\"mount\n", "invalid SystemCallFilter= value");
}

static void test_known_but_unsupported(void) {
        /* Names systemd knows that this libseccomp may not: skipped, not refused. */
        static const char *const names[] = { "uretprobe", "riscv_hwprobe", "cachestat",
                                             "map_shadow_stack", "mseal" };

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                _cleanup_free_ char *body = NULL;
                _cleanup_unit_free_ unit *u = NULL;

                if (!syscall_name_is_known(names[i]))
                        continue;
                if (asprintf(&body, "SystemCallFilter=~%s\n", names[i]) < 0)
                        continue;
                u = load(body, NULL);
                tap_ok(u != NULL, "%s (known to systemd) loads", names[i]);
        }
        tap_ok(syscall_name_is_known("mount") && !syscall_name_is_known("foo_bar"),
               "syscall_name_is_known()");
}

static void test_groups(void) {
        static const char *const wanted[] = {
                "@default",     "@system-service",
                "@privileged",  "@mount",
                "@module",      "@raw-io",
                "@reboot",      "@swap",
                "@clock",       "@debug",
                "@obsolete",    "@cpu-emulation",
                "@keyring",     "@basic-io",
                "@file-system", "@io-event",
                "@ipc",         "@memlock",
                "@network-io",  "@process",
                "@resources",   "@setuid",
                "@signal",      "@sync",
                "@timer",       "@aio",
                "@chown",       "@pkey",
                "@sandbox",     "@known",
        };
        size_t bad = 0;

        for (size_t i = 0; i < ELEMENTSOF(wanted); i++)
                if (!syscall_group_find(wanted[i])) {
                        printf("# missing %s\n", wanted[i]);
                        bad++;
                }
        tap_inteq(bad, 0, "every group systemd documents exists");

        /* Every group loads in both list kinds, and every member is known to systemd. */
        bad = 0;
        for (size_t i = 0; i < N_SYSCALL_GROUPS; i++) {
                const char *p = syscall_groups[i].members, *w;
                _cleanup_free_ char *body = NULL;
                size_t len;

                if (asprintf(&body, "SystemCallFilter=%s\nSystemCallFilter=~%s\n",
                             syscall_groups[i].name, syscall_groups[i].name) < 0)
                        return;
                {
                        _cleanup_unit_free_ unit *u = load(body, NULL);

                        if (!u) {
                                printf("# %s does not load\n", syscall_groups[i].name);
                                bad++;
                        }
                }
                while ((w = syscall_group_next(&p, &len))) {
                        char name[64];

                        snprintf(name, sizeof(name), "%.*s", (int) len, w);
                        if (name[0] == '@' ? !syscall_group_find(name)
                                           : !syscall_name_is_known(name)) {
                                printf("# %s: unknown member %s\n", syscall_groups[i].name, name);
                                bad++;
                        }
                }
        }
        tap_inteq(bad, 0, "every group loads, and its members are known");

        {
                _cleanup_unit_free_ unit *u = load("SystemCallFilter=~@privileged\n", NULL);

                tap_ok(u && unit_seccomp_has(u->seccomp, "chown") &&
                               unit_seccomp_has(u->seccomp, "reboot") &&
                               unit_seccomp_has(u->seccomp, "init_module") &&
                               unit_seccomp_has(u->seccomp, "setuid"),
                       "nested groups (@privileged holds @chown, @reboot, @module)");
        }
}

static void test_policy(void) {
        static const char policy[] =
                "[Service]\nSystemCallFilter=~@mount\n"
                "SystemCallErrorNumber=EPERM\nSystemCallArchitectures=native\n";
        diag_list d = {};

        tap_inteq(policy_check_buffer("x.policy", policy, strlen(policy), &d), 0,
                  "the three directives are allowed in a policy");
        diag_list_done(&d);
}

/* ---- compilation and the cache ------------------------------------------------------------ */

static uint64_t compile_cold_ns[2], get_cached_ns;

static void test_cache(void) {
        _cleanup_unit_free_ unit *a = load("SystemCallFilter=~@mount\n", NULL);
        _cleanup_unit_free_ unit *b = load("SystemCallFilter=~@mount\n", NULL);
        _cleanup_unit_free_ unit *c =
                load("SystemCallFilter=~@mount\nSystemCallErrorNumber=EPERM\n", NULL);
        seccomp_programs p1, p2, p3, p4, p5;
        seccomp_cache_stats s0, s1, s2;
        uint64_t t;

        if (!tap_ok(a && b && c, "units for the cache tests load"))
                return;
        seccomp_cache_flush();
        seccomp_cache_get_stats(&s0);

        t = now_ns();
        tap_inteq(seccomp_programs_get(a->seccomp, false, &p1), 0, "compile a deny list");
        compile_cold_ns[0] = now_ns() - t;
        tap_inteq(p1.n, 1, "one program for a plain service");
        seccomp_cache_get_stats(&s1);
        tap_inteq(s1.compiled - s0.compiled, 1, "compiled once");

        t = now_ns();
        tap_inteq(seccomp_programs_get(a->seccomp, false, &p2), 0, "get it again");
        get_cached_ns = now_ns() - t;
        seccomp_cache_get_stats(&s2);
        tap_ok(p2.prog[0] == p1.prog[0] && s2.compiled == s1.compiled && s2.hits == s1.hits + 1,
               "the second get is a cache hit: same program, no compilation");

        tap_inteq(seccomp_programs_get(b->seccomp, false, &p3), 0,
                  "an equal policy of another unit");
        tap_ok(p3.prog[0] == p1.prog[0], "shares the program");

        tap_inteq(seccomp_programs_get(c->seccomp, false, &p4), 0, "a different errno");
        tap_ok(p4.prog[0] != p1.prog[0], "is another program");

        t = now_ns();
        tap_inteq(seccomp_programs_get(a->seccomp, true, &p5), 0, "a container");
        compile_cold_ns[1] = now_ns() - t;
        tap_ok(p5.n == 2 && p5.prog[1] == p1.prog[0] && p5.prog[0] != p1.prog[0],
               "gets the baseline first, then the unit's own (cached) program");
        tap_ok(p5.prog[0]->len > 100 && p5.prog[0]->len <= 4096, "the baseline has %u instructions",
               p5.prog[0]->len);

        {
                _cleanup_unit_free_ unit *plain = load("", NULL);
                seccomp_programs p;

                tap_ok(plain && seccomp_programs_get(plain->seccomp, false, &p) == 0 && p.n == 0,
                       "no filter, no container: no program");
        }

        seccomp_cache_flush();
        seccomp_cache_get_stats(&s1);
        tap_inteq(s1.entries, 0, "flush empties the cache");
        tap_inteq(seccomp_programs_get(a->seccomp, false, &p1), 0, "compile after a flush");
        seccomp_cache_get_stats(&s2);
        tap_inteq(s2.compiled, s1.compiled + 1, "compiles again");
}

/* ---- the programs at work ----------------------------------------------------------------- */

static const char *try_syscall(void) {
        return getenv("TRY_SYSCALL") ?: "../../build/tests/integration/try-syscall";
}

/* Drops every capability (bounding set, ambient, effective, permitted, inheritable) and sets
 * no_new_privs: what the child side of vigil does before it installs the programs. */
static int drop_privileges(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = {};

        for (int cap = 0; cap < 64; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
                        break;
        (void) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        if (syscall(SYS_capset, &h, d) < 0)
                return -errno;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        return 0;
}

typedef struct child_result {
        int status;   /* wait status */
        char *output; /* stdout of the child */
} child_result;

/* Forks a child that drops privileges, installs p, and runs argv (NULL: calls mount(2)). */
static int run_confined(const seccomp_programs *p, char *const *argv, child_result *ret) {
        int pipefd[2];
        pid_t pid;
        FILE *out;
        size_t n = 0;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        fflush(stdout);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                uint64_t t;
                char line[64];
                int r;

                dup2(pipefd[1], STDOUT_FILENO);
                if (drop_privileges() < 0)
                        _exit(120);
                t = now_ns();
                r = seccomp_programs_install(p);
                t = now_ns() - t;
                if (r < 0)
                        _exit(121);
                snprintf(line, sizeof(line), "install_ns=%llu\n", (unsigned long long) t);
                if (write(STDOUT_FILENO, line, strlen(line)) < 0)
                        _exit(122);
                if (!argv) {
                        r = mount("none", "/nonexistent", "tmpfs", 0, NULL);
                        _exit(r < 0 ? 123 : 124);
                }
                execv(argv[0], argv);
                _exit(125);
        }
        close(pipefd[1]);
        out = open_memstream(&ret->output, &n);
        if (out) {
                char buf[4096];
                ssize_t k;

                while ((k = read(pipefd[0], buf, sizeof(buf))) > 0)
                        fwrite(buf, 1, (size_t) k, out);
                fclose(out);
        }
        close(pipefd[0]);
        if (waitpid(pid, &ret->status, 0) < 0)
                return -errno;
        return 0;
}

/* Prints try-syscall's lines as TAP comments, in a compact table: one row per probe. */
static void print_table(const char *output) {
        const char *p = output;
        char row[512] = "";
        char current[64] = "";

        while (p && *p) {
                const char *e = strchr(p, '\n');
                size_t len = e ? (size_t) (e - p) : strlen(p);
                char line[512], name[64] = "", abi[16] = "", err[32] = "", check[16] = "";

                snprintf(line, sizeof(line), "%.*s", (int) len, p);
                p = e ? e + 1 : NULL;
                if (sscanf(line, "syscall=%63s abi=%15s", name, abi) != 2) {
                        if (row[0])
                                printf("# %s\n", row);
                        row[0] = current[0] = 0;
                        printf("# %s\n", line);
                        continue;
                }
                if (strcmp(name, current) != 0) {
                        if (row[0])
                                printf("# %s\n", row);
                        snprintf(current, sizeof(current), "%s", name);
                        snprintf(row, sizeof(row), "%-20s", name);
                }
                if (strstr(line, "result=absent"))
                        snprintf(err, sizeof(err), "-");
                else if (strstr(line, "result=no-entry-point"))
                        snprintf(err, sizeof(err), "no-entry");
                else {
                        const char *x = strstr(line, "errno=");

                        sscanf(x ? x + 6 : "", "%31s", err);
                        if (strstr(line, "check=FAIL"))
                                snprintf(check, sizeof(check), "!");
                }
                snprintf(row + strlen(row), sizeof(row) - strlen(row), " %s=%s%s", abi, err, check);
        }
        if (row[0])
                printf("# %s\n", row);
}

static void test_real(const char *what, const char *body, bool container, char *const *args) {
        _cleanup_unit_free_ unit *u = load(body, NULL);
        char *argv[128] = { (char *) try_syscall() };
        seccomp_programs p;
        child_result res = {};
        size_t n = 1;

        if (!tap_ok(u != NULL, "%s: the unit loads", what))
                return;
        for (; args[n - 1] && n < ELEMENTSOF(argv) - 1; n++)
                argv[n] = args[n - 1];
        argv[n] = NULL;
        if (!tap_inteq(seccomp_programs_get(u->seccomp, container, &p), 0, "%s: programs", what))
                return;
        if (!tap_inteq(run_confined(&p, argv, &res), 0, "%s: child runs", what))
                return;
        printf("# %s\n", what);
        print_table(res.output);
        tap_ok(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0 && res.output &&
                       strstr(res.output, "confined=yes") && strstr(res.output, "result=pass"),
               "%s: every call got what it should (status %d)", what, res.status);
        free(res.output);
}

static void test_try_syscall_refuses_unconfined(void) {
        char cap[64] = "";
        FILE *f = fopen("/proc/self/status", "re");
        char line[256];
        int status;
        pid_t pid;

        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "CapEff: %63s", cap) == 1)
                        break;
        if (f)
                fclose(f);
        if (strspn(cap, "0") == strlen(cap)) {
                tap_ok(1, "# SKIP try-syscall's own check needs a privileged caller");
                return;
        }
        fflush(stdout);
        pid = fork();
        if (pid == 0) {
                int devnull = open("/dev/null", O_WRONLY);

                dup2(devnull, STDOUT_FILENO);
                dup2(devnull, STDERR_FILENO);
                execl(try_syscall(), try_syscall(), "--blocked-errno", "EPERM", (char *) NULL);
                _exit(125);
        }
        waitpid(pid, &status, 0);
        tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 77,
               "try-syscall refuses to run with capabilities in the initial user namespace");
}

static void test_kill(void) {
        _cleanup_unit_free_ unit *u = load("SystemCallFilter=~@mount\n", NULL);
        seccomp_programs p;
        child_result res = {};

        if (!u || seccomp_programs_get(u->seccomp, false, &p) < 0 ||
            run_confined(&p, NULL, &res) < 0) {
                tap_ok(0, "without SystemCallErrorNumber= a filtered call kills");
                return;
        }
        tap_ok(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGSYS,
               "without SystemCallErrorNumber= a filtered call kills the process with SIGSYS "
               "(status %d)",
               res.status);
        free(res.output);
}

/* Everything a container refuses: all probes but the controls (*_ok). */
#define BASELINE_REFUSED                                                                           \
        "keyctl", "add_key", "request_key", "bpf", "ptrace", "process_vm_readv",                   \
                "process_vm_writev", "mount", "umount2", "pivot_root", "move_mount", "fsopen",     \
                "fsmount", "fsconfig", "fspick", "open_tree", "mount_setattr", "chroot",           \
                "unshare", "setns", "clone_newuser", "clone_newns", "clone3:ENOSYS",               \
                "open_by_handle_at", "name_to_handle_at", "userfaultfd", "perf_event_open",        \
                "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",   \
                "io_uring_setup", "io_uring_enter", "io_uring_register", "personality",            \
                "socket_alg", "socket_alg_hi", "socket_vsock", "ioctl_tiocsti",                    \
                "ioctl_tiocsti_hi", "socketcall", "reboot", "swapon", "swapoff", "acct",           \
                "settimeofday", "clock_settime", "adjtimex", "syslog", "iopl", "ioperm",           \
                "quotactl", "lookup_dcookie", "vhangup", "nfsservctl", "uselib", "kcmp",           \
                "sethostname"

static void test_programs_at_work(void) {
        char *const mount_args[] = { "--blocked-errno", "EMEDIUMTYPE", "mount",     "umount2",
                                     "pivot_root",      "move_mount",  "fsopen",    "fsmount",
                                     "fsconfig",        "fspick",      "open_tree", "mount_setattr",
                                     "chroot",          NULL };
        char *const mount_native_args[] = {
                "--blocked-errno", "EMEDIUMTYPE",   "--abis", "native",  "mount",    "umount2",
                "pivot_root",      "move_mount",    "fsopen", "fsmount", "fsconfig", "fspick",
                "open_tree",       "mount_setattr", "chroot", NULL
        };
        char *const baseline_args[] = { "--blocked-errno", "EMEDIUMTYPE",    "--abis",
                                        "native",          BASELINE_REFUSED, NULL };
        char *const baseline_all_args[] = { "--blocked-errno", "EMEDIUMTYPE",    "--abis",
                                            "native,x86,x32",  BASELINE_REFUSED, NULL };

        if (access(try_syscall(), X_OK) < 0) {
                tap_ok(0, "%s: %s", try_syscall(), strerror(errno));
                return;
        }
        test_try_syscall_refuses_unconfined();
        test_kill();
        test_real("(a) SystemCallFilter=~@mount, EMEDIUMTYPE, every ABI",
                  "SystemCallFilter=~@mount\nSystemCallErrorNumber=EMEDIUMTYPE\n", false,
                  mount_args);
        test_real("(a') the same with SystemCallArchitectures=native",
                  "SystemCallFilter=~@mount\nSystemCallErrorNumber=EMEDIUMTYPE\n"
                  "SystemCallArchitectures=native\n",
                  false, mount_native_args);
        test_real("(b) container baseline, native ABI only", "SystemCallErrorNumber=EMEDIUMTYPE\n",
                  true, baseline_args);
        test_real("(b') container baseline, SystemCallArchitectures=native x86 x32",
                  "SystemCallErrorNumber=EMEDIUMTYPE\nSystemCallArchitectures=native x86 x32\n",
                  true, baseline_all_args);
}

int main(void) {
        test_allow_list();
        test_deny_list();
        test_combination();
        test_errno_entries();
        test_error_number_and_archs();
        test_errors();
        test_known_but_unsupported();
        test_groups();
        test_policy();
        test_cache();
        printf("# compile (cold): deny list %.3f ms; baseline %.3f ms; cached get %.3f us\n",
               compile_cold_ns[0] / 1e6, compile_cold_ns[1] / 1e6, get_cached_ns / 1e3);
        test_programs_at_work();
        return tap_done();
}
