/* System call filters: the model of SystemCallFilter=, SystemCallErrorNumber= and
 * SystemCallArchitectures=, the container baseline, and their BPF programs (compiled with
 * libseccomp once per distinct policy, installed in the child with one system call each). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sock_fprog;

/* What a filtered call gets: an errno (1..4095), or one of these. */
#define SECCOMP_ERROR_DEFAULT 0 /* the unit's SystemCallErrorNumber= */
#define SECCOMP_ERROR_KILL (-1) /* "kill": the process dies of SIGSYS */
#define SECCOMP_ERRNO_MAX 4095

typedef struct seccomp_syscall {
        int32_t nr;    /* libseccomp's number for the native ABI; < 0: a call of another ABI only */
        int32_t error; /* deny lists: SECCOMP_ERROR_DEFAULT, SECCOMP_ERROR_KILL or an errno */
} seccomp_syscall;

/* Bits of unit_seccomp.archs, the ABIs systemd names in SystemCallArchitectures=. */
enum {
        SECCOMP_ARCH_NATIVE = 1u << 0,
        SECCOMP_ARCH_X86_64 = 1u << 1,
        SECCOMP_ARCH_X86 = 1u << 2,
        SECCOMP_ARCH_X32 = 1u << 3,
        /* the other architectures systemd knows follow (see seccomp_arch_from_string()) */
};

typedef struct unit_seccomp {
        seccomp_syscall *syscalls; /* sorted by nr, each at most once */
        uint32_t n_syscalls;
        bool filter;      /* SystemCallFilter= is set */
        bool allow_list;  /* its first assignment had no "~": only @default and these are allowed */
        int error_number; /* SystemCallErrorNumber=: SECCOMP_ERROR_DEFAULT (unset: kill, as in
                           * systemd), SECCOMP_ERROR_KILL or an errno */
        uint32_t archs;   /* SystemCallArchitectures=: SECCOMP_ARCH_* bits; 0: unset */
} unit_seccomp;

#define UNIT_SECCOMP_DEFAULTS                                                                      \
        { .syscalls = NULL }

/* ---- the model (used by the loader; no libseccomp state) ----------------------------------- */

/* Frees the list and restores the defaults of SystemCallFilter= (an empty assignment). */
void seccomp_filter_reset(unit_seccomp *s);

/* Starts one SystemCallFilter= assignment: the first one after a reset decides between an
 * allow list (which then holds @default) and a deny list ("~"). */
int seccomp_filter_begin(unit_seccomp *s, bool invert);

/* Applies one word of a SystemCallFilter= assignment: a system call or "@group", with error
 * (SECCOMP_ERROR_DEFAULT, SECCOMP_ERROR_KILL or an errno) for an entry of a deny list. When the
 * word's kind matches the list (no "~" on an allow list, "~" on a deny list) its calls are
 * added, otherwise removed. Names systemd knows but this libseccomp does not are skipped, as
 * systemd does. Returns 0, -EINVAL for an unknown name, -ENOMEM. */
int seccomp_filter_apply(unit_seccomp *s, const char *name, int error, bool invert);

/* "EPERM" or "1".."4095" → the errno, "kill" → SECCOMP_ERROR_KILL, in *ret; returns 0 or
 * -EINVAL (0 is refused: the call would seem to succeed without running). */
int seccomp_parse_error(const char *s, int *ret);
/* "EPERM" for 1, "kill" for SECCOMP_ERROR_KILL, NULL for unknown numbers. */
const char *seccomp_error_to_string(int error);

/* A SECCOMP_ARCH_* bit for "native", "x86-64", "x86", "x32" (or another of systemd's names);
 * -EINVAL if unknown. */
int seccomp_arch_from_string(const char *s, uint32_t *ret);

/* Deep copy and comparison (for runtime changes and tests). */
int unit_seccomp_copy(unit_seccomp *dst, const unit_seccomp *src);
bool unit_seccomp_equal(const unit_seccomp *a, const unit_seccomp *b);
/* Whether the list holds the call (by its name); for tests and status output. */
bool unit_seccomp_has(const unit_seccomp *s, const char *name);

/* ---- programs ----------------------------------------------------------------------------- */

typedef struct seccomp_programs {
        const struct sock_fprog *prog[2];
        size_t n;
} seccomp_programs;

/* Parent side, before fork: the BPF programs to install for a service, in order: for a
 * container (container=true) the baseline (policies/seccomp-baseline.c) first, then the
 * unit's own filter when SystemCallFilter= or SystemCallArchitectures= is set. Each distinct
 * policy is compiled once and cached for the process (single-threaded use only); the pointers
 * stay valid until the next seccomp_programs_get() or seccomp_cache_flush(), and in a child
 * forked in between. Returns 0 (ret->n may be 0), -ENOMEM, or another -errno of libseccomp. */
int seccomp_programs_get(const unit_seccomp *s, bool container, seccomp_programs *ret);

/* Child side, after fork, before exec: installs them with seccomp(2) (prctl() where that is
 * missing). No allocation, async-signal-safe. Needs no_new_privs or CAP_SYS_ADMIN in the
 * caller's user namespace. Returns 0 or -errno. */
int seccomp_programs_install(const seccomp_programs *p);

/* Drops every cached program. */
void seccomp_cache_flush(void);

typedef struct seccomp_cache_stats {
        unsigned entries;  /* programs held */
        unsigned compiled; /* compilations since start */
        unsigned hits;     /* seccomp_programs_get() lookups served from the cache */
} seccomp_cache_stats;
void seccomp_cache_get_stats(seccomp_cache_stats *ret);
