/* System call filters: the SystemCallFilter= model, compilation to BPF with libseccomp, the
 * process-wide program cache, and installation in the child. */
#include "seccomp.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "seccomp-baseline.h"
#include "syscall-groups.h"

#define GROUP_DEPTH_MAX 4 /* systemd's groups nest two levels */
#define CACHE_MAX 64      /* distinct programs kept; the least recently used goes first */
#define PREFIX_MAX 64

/* ---- the model ---------------------------------------------------------------------------- */

void seccomp_filter_reset(unit_seccomp *s) {
        free(s->syscalls);
        s->syscalls = NULL;
        s->n_syscalls = 0;
        s->filter = false;
        s->allow_list = false;
}

/* The index of nr, or where it would go (*found false). */
static uint32_t syscall_find(const unit_seccomp *s, int32_t nr, bool *found) {
        uint32_t lo = 0, hi = s->n_syscalls;

        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;

                if (s->syscalls[mid].nr == nr) {
                        *found = true;
                        return mid;
                }
                if (s->syscalls[mid].nr < nr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

static int syscall_put(unit_seccomp *s, int32_t nr, int32_t error) {
        bool found;
        uint32_t i = syscall_find(s, nr, &found);

        if (found) {
                s->syscalls[i].error = error; /* a later assignment's errno wins, as in systemd */
                return 0;
        }
        /* capacity: the next power of two at or above n_syscalls */
        if ((s->n_syscalls & (s->n_syscalls - 1)) == 0) {
                size_t cap = s->n_syscalls ? 2 * (size_t) s->n_syscalls : 8;
                seccomp_syscall *l = reallocarray(s->syscalls, cap, sizeof(seccomp_syscall));

                if (!l)
                        return -ENOMEM;
                s->syscalls = l;
        }
        memmove(s->syscalls + i + 1, s->syscalls + i,
                (s->n_syscalls - i) * sizeof(seccomp_syscall));
        s->syscalls[i] = (seccomp_syscall){ .nr = nr, .error = error };
        s->n_syscalls++;
        return 0;
}

static void syscall_drop(unit_seccomp *s, int32_t nr) {
        bool found;
        uint32_t i = syscall_find(s, nr, &found);

        if (!found)
                return;
        memmove(s->syscalls + i, s->syscalls + i + 1,
                (s->n_syscalls - i - 1) * sizeof(seccomp_syscall));
        s->n_syscalls--;
}

static int apply_word(unit_seccomp *s, const char *name, int error, bool add, unsigned depth) {
        if (name[0] == '@') {
                const syscall_group *g = syscall_group_find(name);
                const char *p, *w;
                size_t len;

                if (!g || depth >= GROUP_DEPTH_MAX)
                        return -EINVAL;
                p = g->members;
                while ((w = syscall_group_next(&p, &len))) {
                        char member[64];
                        int r;

                        if (len >= sizeof(member))
                                return -EINVAL;
                        memcpy(member, w, len);
                        member[len] = 0;
                        r = apply_word(s, member, error, add, depth + 1);
                        if (r == -EINVAL && member[0] != '@')
                                continue; /* a member this libseccomp does not know */
                        if (r < 0)
                                return r;
                }
                return 0;
        }

        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR)
                return -EINVAL;
        if (add)
                return syscall_put(s, nr, error);
        syscall_drop(s, nr);
        return 0;
}

int seccomp_filter_begin(unit_seccomp *s, bool invert) {
        if (s->filter)
                return 0;
        s->filter = true;
        s->allow_list = !invert;
        /* An allow list always lets the calls of @default through. */
        return s->allow_list ? apply_word(s, "@default", SECCOMP_ERROR_DEFAULT, true, 0) : 0;
}

int seccomp_filter_apply(unit_seccomp *s, const char *name, int error, bool invert) {
        int r;

        if (!s->filter)
                return -EINVAL; /* seccomp_filter_begin() first */
        r = apply_word(s, name, s->allow_list ? SECCOMP_ERROR_DEFAULT : error,
                       invert != s->allow_list, 0);
        /* A name systemd knows but this libseccomp does not cannot be filtered: skip it, as
         * systemd does. */
        if (r == -EINVAL && name[0] != '@' && syscall_name_is_known(name))
                return 0;
        return r;
}

/* Aliases that strerrorname_np() does not return. */
static const struct {
        const char *name;
        int error;
} errno_aliases[] = {
        { "EWOULDBLOCK", EWOULDBLOCK },
        { "EDEADLOCK", EDEADLOCK },
        { "ENOTSUP", ENOTSUP },
};

int seccomp_parse_error(const char *s, int *ret) {
        int e = -EINVAL;

        if (strcmp(s, "kill") == 0)
                e = SECCOMP_ERROR_KILL;
        else if (s[0] >= '0' && s[0] <= '9') {
                unsigned long v;

                if (strlen(s) > 4 || strspn(s, "0123456789") != strlen(s))
                        return -EINVAL;
                v = strtoul(s, NULL, 10);
                if (v < 1 || v > SECCOMP_ERRNO_MAX)
                        return -EINVAL;
                e = (int) v;
        } else {
                for (size_t i = 0; i < sizeof(errno_aliases) / sizeof(errno_aliases[0]); i++)
                        if (strcmp(s, errno_aliases[i].name) == 0)
                                e = errno_aliases[i].error;
                for (int i = 1; i < 256 && e == -EINVAL; i++) {
                        const char *n = strerrorname_np(i);

                        if (n && strcmp(n, s) == 0)
                                e = i;
                }
                if (e == -EINVAL)
                        return -EINVAL;
        }
        *ret = e;
        return 0;
}

const char *seccomp_error_to_string(int error) {
        if (error == SECCOMP_ERROR_KILL)
                return "kill";
        return error > 0 ? strerrorname_np(error) : NULL;
}

/* systemd's architecture names, in the order of the SECCOMP_ARCH_* bits. */
static const struct {
        const char *name;
        uint32_t token;
} arch_names[] = {
        { "native", SCMP_ARCH_NATIVE },
        { "x86-64", SCMP_ARCH_X86_64 },
        { "x86", SCMP_ARCH_X86 },
        { "x32", SCMP_ARCH_X32 },
        { "arm", SCMP_ARCH_ARM },
        { "arm64", SCMP_ARCH_AARCH64 },
        { "mips", SCMP_ARCH_MIPS },
        { "mips64", SCMP_ARCH_MIPS64 },
        { "mips64-n32", SCMP_ARCH_MIPS64N32 },
        { "mips-le", SCMP_ARCH_MIPSEL },
        { "mips64-le", SCMP_ARCH_MIPSEL64 },
        { "mips64-le-n32", SCMP_ARCH_MIPSEL64N32 },
        { "ppc", SCMP_ARCH_PPC },
        { "ppc64", SCMP_ARCH_PPC64 },
        { "ppc64-le", SCMP_ARCH_PPC64LE },
        { "s390", SCMP_ARCH_S390 },
        { "s390x", SCMP_ARCH_S390X },
        { "riscv64", SCMP_ARCH_RISCV64 },
};
#define N_ARCHS (sizeof(arch_names) / sizeof(arch_names[0]))

int seccomp_arch_from_string(const char *s, uint32_t *ret) {
        for (size_t i = 0; i < N_ARCHS; i++)
                if (strcmp(s, arch_names[i].name) == 0) {
                        *ret = 1u << i;
                        return 0;
                }
        return -EINVAL;
}

int unit_seccomp_copy(unit_seccomp *dst, const unit_seccomp *src) {
        seccomp_syscall *l = NULL;

        if (src->n_syscalls > 0) {
                l = malloc(src->n_syscalls * sizeof(seccomp_syscall));
                if (!l)
                        return -ENOMEM;
                memcpy(l, src->syscalls, src->n_syscalls * sizeof(seccomp_syscall));
        }
        *dst = *src;
        dst->syscalls = l;
        return 0;
}

bool unit_seccomp_equal(const unit_seccomp *a, const unit_seccomp *b) {
        return a->filter == b->filter && a->allow_list == b->allow_list &&
               a->error_number == b->error_number && a->archs == b->archs &&
               a->n_syscalls == b->n_syscalls &&
               (a->n_syscalls == 0 ||
                memcmp(a->syscalls, b->syscalls, a->n_syscalls * sizeof(seccomp_syscall)) == 0);
}

bool unit_seccomp_has(const unit_seccomp *s, const char *name) {
        int nr = seccomp_syscall_resolve_name(name);
        bool found;

        if (nr == __NR_SCMP_ERROR)
                return false;
        syscall_find(s, nr, &found);
        return found;
}

/* ---- compilation -------------------------------------------------------------------------- */

static void ctx_releasep(scmp_filter_ctx *c) {
        if (*c)
                seccomp_release(*c);
}

static void fd_closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}

static uint32_t action_of(int error) {
        if (error == SECCOMP_ERROR_KILL)
                return SCMP_ACT_KILL_PROCESS;
        return SCMP_ACT_ERRNO((uint32_t) error);
}

/* The ABIs a filter covers: the listed ones, or without a list every ABI of this machine
 * (as systemd filters them all). Returns how many tokens were written. */
static size_t arch_tokens(uint32_t archs, uint32_t *tokens, size_t max) {
        static const uint32_t local[] = {
#if defined(__x86_64__) && !defined(__ILP32__)
                SCMP_ARCH_X86_64,
                SCMP_ARCH_X86,
                SCMP_ARCH_X32,
#else
                SCMP_ARCH_NATIVE,
#endif
        };
        uint32_t native = seccomp_arch_native();
        size_t n = 0;

        if (archs == 0) {
                for (size_t i = 0; i < sizeof(local) / sizeof(local[0]) && n < max; i++)
                        tokens[n++] = local[i] == SCMP_ARCH_NATIVE ? native : local[i];
                return n;
        }
        for (size_t i = 0; i < N_ARCHS; i++) {
                uint32_t t;
                bool dup = false;

                if (!(archs & (1u << i)))
                        continue;
                t = arch_names[i].token == SCMP_ARCH_NATIVE ? native : arch_names[i].token;
                for (size_t j = 0; j < n; j++)
                        dup = dup || tokens[j] == t;
                if (!dup && n < max)
                        tokens[n++] = t;
        }
        return n;
}

static int ctx_new(uint32_t default_action, uint32_t badarch, const uint32_t *tokens,
                   size_t n_tokens, scmp_filter_ctx *ret) {
        scmp_filter_ctx ctx;
        uint32_t native = seccomp_arch_native();
        bool keep_native = false;
        int r;

        ctx = seccomp_init(default_action);
        if (!ctx)
                return -ENOMEM;
        for (size_t i = 0; i < n_tokens; i++) {
                if (tokens[i] == native) {
                        keep_native = true;
                        continue;
                }
                r = seccomp_arch_add(ctx, tokens[i]);
                if (r < 0 && r != -EEXIST)
                        goto fail;
        }
        if (!keep_native) {
                r = seccomp_arch_remove(ctx, native);
                if (r < 0)
                        goto fail;
        }
        r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, badarch);
        if (r < 0)
                goto fail;
        /* Only exported, never loaded by libseccomp; the caller decides about no_new_privs. */
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (r < 0)
                goto fail;
        *ret = ctx;
        return 0;
fail:
        seccomp_release(ctx);
        return r;
}

/* Exports ctx as one sock_fprog (one allocation), after prefix. */
static int export_bpf(scmp_filter_ctx ctx, const struct sock_filter *prefix, size_t n_prefix,
                      struct sock_fprog **ret) {
        __attribute__((cleanup(fd_closep))) int fd = -1;
        struct sock_fprog *prog;
        struct stat st;
        size_t n, size;
        char *p;
        int r;

        fd = memfd_create("vigil-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = seccomp_export_bpf(ctx, fd);
        if (r < 0)
                return r;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) != 0)
                return -EIO;
        n = (size_t) st.st_size / sizeof(struct sock_filter) + n_prefix;
        if (n > BPF_MAXINSNS)
                return -E2BIG;
        size = (size_t) st.st_size;

        prog = malloc(sizeof(struct sock_fprog) + n * sizeof(struct sock_filter));
        if (!prog)
                return -ENOMEM;
        prog->len = (unsigned short) n;
        prog->filter = (struct sock_filter *) (prog + 1);
        if (n_prefix > 0) /* prefix may be NULL then */
                memcpy(prog->filter, prefix, n_prefix * sizeof(struct sock_filter));
        p = (char *) (prog->filter + n_prefix);
        for (size_t done = 0; done < size;) {
                ssize_t k = pread(fd, p + done, size - done, (off_t) done);

                if (k <= 0) {
                        free(prog);
                        return k < 0 ? -errno : -EIO;
                }
                done += (size_t) k;
        }
        *ret = prog;
        return 0;
}

/* The unit's own filter: SystemCallFilter= over the ABIs of SystemCallArchitectures=. */
static int compile_unit(const unit_seccomp *s, struct sock_fprog **ret) {
        __attribute__((cleanup(ctx_releasep))) scmp_filter_ctx ctx = NULL;
        uint32_t tokens[N_ARCHS], refusal, badarch;
        size_t n_tokens;
        int r;

        /* Without SystemCallErrorNumber= a filtered call kills the process, as in systemd. */
        refusal = s->error_number == SECCOMP_ERROR_DEFAULT ? SCMP_ACT_KILL_PROCESS
                                                           : action_of(s->error_number);
        n_tokens = arch_tokens(s->archs, tokens, N_ARCHS);
        /* With SystemCallArchitectures= the calls of every other ABI are refused; without it
         * the filter covers every ABI this machine has. */
        badarch = s->archs ? refusal : SCMP_ACT_ALLOW;
        r = ctx_new(s->filter && s->allow_list ? refusal : SCMP_ACT_ALLOW, badarch, tokens,
                    n_tokens, &ctx);
        if (r < 0)
                return r;
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
        if (r < 0)
                return r;

        for (uint32_t i = 0; s->filter && i < s->n_syscalls; i++) {
                const seccomp_syscall *e = &s->syscalls[i];
                uint32_t action;

                if (s->allow_list)
                        action = SCMP_ACT_ALLOW;
                else
                        action = e->error == SECCOMP_ERROR_DEFAULT ? refusal : action_of(e->error);
                r = seccomp_rule_add(ctx, action, e->nr, 0);
                if (r < 0 && r != -EDOM) /* -EDOM: the call exists on none of these ABIs */
                        return r;
        }
        return export_bpf(ctx, NULL, 0, ret);
}

/* The container baseline over the ABIs of SystemCallArchitectures= (default: native only),
 * refusing with SystemCallErrorNumber= (default: EPERM, as Docker). */
static int compile_baseline(uint32_t archs, int error, struct sock_fprog **ret) {
        __attribute__((cleanup(ctx_releasep))) scmp_filter_ctx ctx = NULL;
        struct sock_filter prefix[PREFIX_MAX];
        uint32_t tokens[N_ARCHS], refusal;
        size_t n_tokens;
        int r, n_prefix;

        refusal = action_of(error == SECCOMP_ERROR_DEFAULT ? EPERM : error);
        n_tokens = arch_tokens(archs ?: SECCOMP_ARCH_NATIVE, tokens, N_ARCHS);
        r = ctx_new(refusal, refusal, tokens, n_tokens, &ctx);
        if (r < 0)
                return r;
        r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
        if (r < 0)
                return r;
        r = seccomp_baseline_add_rules(ctx);
        if (r < 0)
                return r;
        n_prefix = seccomp_baseline_prefix(tokens, n_tokens, refusal, prefix, PREFIX_MAX);
        if (n_prefix < 0)
                return n_prefix;
        return export_bpf(ctx, prefix, (size_t) n_prefix, ret);
}

/* ---- the cache ---------------------------------------------------------------------------- */

typedef struct cache_entry {
        struct cache_entry *next;
        unsigned long used; /* lookup counter at the last use */
        bool baseline;
        unit_seccomp key; /* the baseline's key: archs and error_number only */
        struct sock_fprog *prog;
} cache_entry;

static cache_entry *cache;
static unsigned long cache_clock;
static seccomp_cache_stats stats;

static void entry_free(cache_entry *e) {
        free(e->key.syscalls);
        free(e->prog);
        free(e);
}

static void cache_evict_one(void) {
        cache_entry **victim = NULL;

        for (cache_entry **e = &cache; *e; e = &(*e)->next)
                if ((*e)->used != cache_clock && (!victim || (*e)->used < (*victim)->used))
                        victim = e;
        if (victim) {
                cache_entry *v = *victim;

                *victim = v->next;
                entry_free(v);
                stats.entries--;
        }
}

static int cache_get(bool baseline, const unit_seccomp *key, const struct sock_fprog **ret) {
        cache_entry *e;
        int r;

        for (e = cache; e; e = e->next)
                if (e->baseline == baseline && unit_seccomp_equal(&e->key, key)) {
                        e->used = cache_clock;
                        stats.hits++;
                        *ret = e->prog;
                        return 0;
                }

        e = calloc(1, sizeof(cache_entry));
        if (!e)
                return -ENOMEM;
        r = unit_seccomp_copy(&e->key, key);
        if (r >= 0)
                r = baseline ? compile_baseline(key->archs, key->error_number, &e->prog)
                             : compile_unit(key, &e->prog);
        if (r < 0) {
                entry_free(e);
                return r;
        }
        stats.compiled++;
        if (stats.entries >= CACHE_MAX)
                cache_evict_one();
        e->baseline = baseline;
        e->used = cache_clock;
        e->next = cache;
        cache = e;
        stats.entries++;
        *ret = e->prog;
        return 0;
}

int seccomp_programs_get(const unit_seccomp *s, bool container, seccomp_programs *ret) {
        seccomp_programs p = {};
        int r;

        cache_clock++;
        if (container) {
                unit_seccomp key = { .archs = s->archs, .error_number = s->error_number };

                r = cache_get(true, &key, &p.prog[p.n]);
                if (r < 0)
                        return r;
                p.n++;
        }
        if (s->filter || s->archs) {
                r = cache_get(false, s, &p.prog[p.n]);
                if (r < 0)
                        return r;
                p.n++;
        }
        *ret = p;
        return 0;
}

void seccomp_cache_flush(void) {
        while (cache) {
                cache_entry *e = cache;

                cache = e->next;
                entry_free(e);
        }
        stats.entries = 0;
}

void seccomp_cache_get_stats(seccomp_cache_stats *ret) {
        *ret = stats;
}

/* ---- the child side ----------------------------------------------------------------------- */

int seccomp_programs_install(const seccomp_programs *p) {
        for (size_t i = 0; i < p->n; i++) {
                if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, p->prog[i]) == 0)
                        continue;
                if (errno != ENOSYS)
                        return -errno;
                if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, p->prog[i], 0, 0) < 0)
                        return -errno;
        }
        return 0;
}
