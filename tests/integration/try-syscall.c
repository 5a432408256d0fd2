/* try-syscall: makes forbidden system calls with harmless arguments through the x86-64, i386
 * (int $0x80) and x32 entry points and prints what each got, one key=value line per call and
 * ABI; asserts on the results when told which calls must be refused. Also reports the
 * confinement fields of /proc/self/status and the open fds. Linked statically so that it runs
 * in a container root without shared libraries.
 *
 *   try-syscall [--status] [--fds] [--blocked-errno N [--abis LIST] [PROBE[:ERRNO]...]]
 *
 * With --blocked-errno, every probe named on the command line must fail with N (or with the
 * given ERRNO), every other probe must not fail with N, and every call through an ABI missing
 * from --abis (default: native,x86,x32) must fail with N. Exit 0 when all checks pass, 1 when
 * one fails, 2 on usage errors, 77 when not confined. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "try-syscall.h"

#ifndef __NR_kexec_file_load
#define __NR_kexec_file_load -1
#endif
#ifndef __NR_nfsservctl
#define __NR_nfsservctl -1
#endif
#ifndef __NR_uselib
#define __NR_uselib -1
#endif
#ifndef __NR_socketcall
#define __NR_socketcall -1
#endif

#define TRY_NR(probe, call, ...) [P_##probe] = __NR_##call,
const long try_nr_native[N_PROBES] = { TRY_PROBES(TRY_NR) };

typedef struct probe {
        const char *name;
        long args[6];
} probe;

#define TRY_PROBE(p, call, a, b, c, d, e, f) [P_##p] = { #p, { a, b, c, d, e, f } },
static const probe probes[N_PROBES] = { TRY_PROBES(TRY_PROBE) };

enum {
        ABI_NATIVE,
        ABI_I386,
        ABI_X32,
        N_ABIS
};
static const char *const abi_names[N_ABIS] = { "native", "x86", "x32" };
static const long *const abi_numbers[N_ABIS] = { try_nr_native, try_nr_i386, try_nr_x32 };

#define X32_SYSCALL_BIT 0x40000000L

static sigjmp_buf segv_jump;

static void on_segv(int sig) {
        siglongjmp(segv_jump, 1);
}

/* The i386 entry point from 64-bit code: arguments in ebx, ecx, edx, esi, edi, ebp. The red
 * zone below the stack pointer is stepped over before rbp is saved. */
static long call_i386(long nr, const long *a) {
        long ret;
        register long r8 __asm__("r8") = a[5];

        __asm__ volatile("sub $128, %%rsp\n\t"
                         "push %%rbp\n\t"
                         "mov %%r8, %%rbp\n\t"
                         "int $0x80\n\t"
                         "pop %%rbp\n\t"
                         "add $128, %%rsp"
                         : "=a"(ret)
                         : "a"(nr), "b"(a[0]), "c"(a[1]), "d"(a[2]), "S"(a[3]), "D"(a[4]), "r"(r8)
                         : "memory", "cc", "r9", "r10", "r11");
        return (int) ret; /* a 32-bit result */
}

typedef enum outcome {
        OUT_RETURNED, /* ret, err */
        OUT_ABSENT,   /* the ABI has no such call */
        OUT_CRASHED,  /* the entry point itself faulted (i386 emulation disabled) */
} outcome;

static outcome try_one(int p, int abi, long *ret, int *err) {
        long nr = abi_numbers[abi][p];
        const long *a = probes[p].args;
        long r;

        if (nr < 0)
                return OUT_ABSENT;
        errno = 0;
        switch (abi) {
        case ABI_NATIVE:
        case ABI_X32:
                r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
                *err = r < 0 ? errno : 0;
                break;
        default:
                if (sigsetjmp(segv_jump, 1))
                        return OUT_CRASHED;
                r = call_i386(nr, a);
                *err = r < 0 && r > -4096 ? (int) -r : 0;
                break;
        }
        *ret = r;
        return OUT_RETURNED;
}

static const char *errno_name(int e) {
        const char *n = e ? strerrorname_np(e) : "0";
        return n ? n : "unknown";
}

static int parse_errno(const char *s) {
        char *end;
        long v;

        if (s[0] >= '0' && s[0] <= '9') {
                v = strtol(s, &end, 10);
                return *end || v <= 0 || v > 4095 ? -1 : (int) v;
        }
        for (int e = 1; e < 256; e++) {
                const char *n = strerrorname_np(e);

                if (n && strcmp(n, s) == 0)
                        return e;
        }
        return -1;
}

/* Prints "name=value" for the fields of /proc/self/status that tell how confined we are. */
static int read_status(const char *field, char *buf, size_t len) {
        char line[512];
        size_t n = strlen(field);
        FILE *f = fopen("/proc/self/status", "re");
        int r = -1;

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, field, n) == 0 && line[n] == ':') {
                        char *v = line + n + 1;

                        v += strspn(v, " \t");
                        v[strcspn(v, "\n")] = 0;
                        snprintf(buf, len, "%s", v);
                        r = 0;
                        break;
                }
        fclose(f);
        return r;
}

static void print_status(void) {
        static const char *const fields[] = { "CapInh", "CapPrm",     "CapEff",  "CapBnd",
                                              "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters",
                                              "Uid",    "Gid",        "Groups" };

        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                char v[256];

                if (read_status(fields[i], v, sizeof(v)) == 0) {
                        for (char *c = v; *c; c++)
                                if (*c == '\t' || *c == ' ')
                                        *c = ',';
                        printf("status %s=%s\n", fields[i], v);
                }
        }
}

static int print_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;

        if (!d) {
                printf("fds error=%s\n", errno_name(errno));
                return -1;
        }
        while ((de = readdir(d))) {
                char path[320], target[PATH_MAX];
                ssize_t n;

                if (de->d_name[0] == '.' || atoi(de->d_name) == dirfd(d))
                        continue;
                snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
                n = readlink(path, target, sizeof(target) - 1);
                target[n < 0 ? 0 : n] = 0;
                /* targets may contain spaces; they are the rest of the line */
                printf("fd %s=%s\n", de->d_name, target);
        }
        closedir(d);
        return 0;
}

/* Confined: no effective capabilities, or inside a user namespace other than the initial
 * one (whose uid_map is the identity over the whole range). */
static bool confined(void) {
        char cap[64], map[256] = "";
        FILE *f;

        if (read_status("CapEff", cap, sizeof(cap)) == 0 && strspn(cap, "0") == strlen(cap))
                return true;
        f = fopen("/proc/self/uid_map", "re");
        if (!f)
                return false;
        if (!fgets(map, sizeof(map), f))
                map[0] = 0;
        fclose(f);
        {
                unsigned long a, b, c;

                if (sscanf(map, "%lu %lu %lu", &a, &b, &c) == 3 && a == 0 && b == 0 &&
                    c == 4294967295UL)
                        return false;
        }
        return map[0] != 0;
}

static int find_probe(const char *name) {
        for (int p = 0; p < N_PROBES; p++)
                if (strcmp(probes[p].name, name) == 0)
                        return p;
        return -1;
}

static int usage(void) {
        fprintf(stderr, "usage: try-syscall [--status] [--fds] [--blocked-errno N [--abis "
                        "native,x86,x32] [PROBE[:ERRNO]...]]\n");
        return 2;
}

int main(int argc, char **argv) {
        bool status = false, fds = false, abi_allowed[N_ABIS] = { true, true, true };
        int blocked = 0, expect[N_PROBES] = { 0 }, failures = 0;
        struct sigaction sa = { .sa_handler = on_segv, .sa_flags = SA_NODEFER };

        setvbuf(stdout, NULL, _IOLBF, 0);
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--status") == 0)
                        status = true;
                else if (strcmp(argv[i], "--fds") == 0)
                        fds = true;
                else if (strcmp(argv[i], "--blocked-errno") == 0 && i + 1 < argc) {
                        blocked = parse_errno(argv[++i]);
                        if (blocked < 0)
                                return usage();
                } else if (strcmp(argv[i], "--abis") == 0 && i + 1 < argc) {
                        char *list = argv[++i];

                        for (int a = 0; a < N_ABIS; a++)
                                abi_allowed[a] = false;
                        for (char *w = strtok(list, ","); w; w = strtok(NULL, ",")) {
                                int a;

                                for (a = 0; a < N_ABIS; a++)
                                        if (strcmp(w, abi_names[a]) == 0)
                                                break;
                                if (a == N_ABIS)
                                        return usage();
                                abi_allowed[a] = true;
                        }
                } else if (argv[i][0] != '-') {
                        char *colon = strchr(argv[i], ':');
                        int p, e = -2;

                        if (colon) {
                                *colon = 0;
                                e = parse_errno(colon + 1);
                                if (e < 0)
                                        return usage();
                        }
                        p = find_probe(argv[i]);
                        if (p < 0) {
                                fprintf(stderr, "try-syscall: unknown probe \"%s\"\n", argv[i]);
                                return 2;
                        }
                        expect[p] = e; /* -2: the blocked errno */
                } else
                        return usage();
        }

        if (status)
                print_status();
        if (fds)
                print_fds();
        if (status || fds) {
                if (!blocked)
                        return 0;
        }

        if (!confined()) {
                printf("confined=no\n");
                fprintf(stderr, "try-syscall: refusing to run: effective capabilities in the "
                                "initial user namespace\n");
                return 77;
        }
        printf("confined=yes\n");
        sigaction(SIGSEGV, &sa, NULL);

        for (int p = 0; p < N_PROBES; p++)
                for (int abi = 0; abi < N_ABIS; abi++) {
                        int persona = personality(0xffffffff), err = 0, want = 0;
                        long ret = 0;
                        outcome o = try_one(p, abi, &ret, &err);
                        const char *check = "";

                        if (p == P_personality && o == OUT_RETURNED && err == 0)
                                personality((unsigned long) persona);

                        if (o == OUT_ABSENT) {
                                printf("syscall=%s abi=%s result=absent\n", probes[p].name,
                                       abi_names[abi]);
                                continue;
                        }
                        if (o == OUT_CRASHED) {
                                printf("syscall=%s abi=%s result=no-entry-point\n", probes[p].name,
                                       abi_names[abi]);
                                continue;
                        }
                        if (blocked) {
                                bool ok;

                                if (!abi_allowed[abi])
                                        want = blocked;
                                else if (expect[p])
                                        want = expect[p] == -2 ? blocked : expect[p];
                                ok = want ? err == want : err != blocked;
                                check = ok ? " check=ok" : " check=FAIL";
                                failures += !ok;
                        }
                        printf("syscall=%s abi=%s ret=%ld errno=%s%s%s%s\n", probes[p].name,
                               abi_names[abi], ret, errno_name(err), check, want ? " want=" : "",
                               want ? errno_name(want) : "");
                }

        if (!blocked)
                return 0;
        printf("result=%s failures=%d\n", failures ? "fail" : "pass", failures);
        return failures ? 1 : 0;
}
