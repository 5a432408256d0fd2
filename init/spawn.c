/* The child side of starting a command: credentials, environment, stdio, limits, exec. */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <limits.h>
#include <sys/capability.h>
#include <sys/prctl.h>

#include "creds.h"
#include "fileio.h"
#include "isolate.h"
#include "resource.h"
#include "seccomp.h"
#include "spawn.h"
#include "strbuf.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Bounds on the child's environment and argv (CVE-2021-33910 taught us to bound input). */
#define _fallthrough_ __attribute__((fallthrough))
#define IN_SET(x, ...)                                                                             \
        ({                                                                                         \
                const int _in[] = { __VA_ARGS__ };                                                 \
                bool _found = false;                                                               \
                for (size_t _i = 0; _i < ELEMENTSOF(_in); _i++)                                    \
                        _found = _found || _in[_i] == (int) (x);                                   \
                _found;                                                                            \
        })

#define ENV_BYTES_MAX (1024u * 1024)
#define ENV_ENTRIES_MAX 8192u
#define ENV_FILE_MAX (1024u * 1024)
#define ARGV_BYTES_MAX (2u * 1024 * 1024)
#define ARGV_ENTRIES_MAX 65536u

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

/* ---- environment ---- */

/* Takes assignment (NAME=VALUE, owned) into *env, replacing an earlier one of the name. */
static int env_put(char ***env, char *assignment) {
        int r;

        if (strv_length(*env) >= ENV_ENTRIES_MAX &&
            !strv_env_get_n(*env, assignment, strcspn(assignment, "="))) {
                free(assignment);
                return -E2BIG;
        }
        r = strv_env_replace(env, assignment);
        if (r < 0)
                free(assignment);
        return r;
}

_printf_(2, 3) static int env_putf(char ***env, const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return env_put(env, s);
}

/* Adds KEY=VALUE unless it is not a valid assignment, which systemd skips too. */
static int env_file_push(char ***env, strbuf *key, strbuf *value) {
        _cleanup_free_ char *k = NULL, *v = NULL;
        char *a;

        k = strbuf_steal(key);
        v = strbuf_steal(value);
        if (!k || !v)
                return -ENOMEM;
        if (asprintf_safe(&a, "%s=%s", k, v) < 0)
                return -ENOMEM;
        if (!env_assignment_is_valid(a)) {
                free(a);
                return 0;
        }
        return env_put(env, a);
}

int env_file_load(const char *path, char ***env) {
        enum {
                PRE_KEY,
                KEY,
                PRE_VALUE,
                VALUE,
                VALUE_ESCAPE,
                SINGLE_QUOTE,
                DOUBLE_QUOTE,
                DOUBLE_QUOTE_ESCAPE,
                COMMENT,
                COMMENT_ESCAPE,
        } state = PRE_KEY;
        _cleanup_free_ char *buf = NULL;
        _cleanup_(strbuf_done) strbuf key = {}, value = {};
        size_t size = 0, key_len = 0, value_keep = 0;
        int r;

        if (isempty(path) || !env)
                return -EINVAL;
        r = read_file_bounded(path, ENV_FILE_MAX, &buf, &size);
        if (r < 0)
                return r;
        if (memchr(buf, 0, size))
                return -EBADMSG;

        /* The grammar of systemd's parse_env_file(): a state per character. value_keep is
         * the length of value up to its last character that is not unquoted trailing
         * whitespace; key_len the same for the key. */
        for (const char *p = buf; p < buf + size; p++) {
                char c = *p;
                bool nl = c == '\n' || c == '\r';
                bool ws = c == ' ' || c == '\t';

                switch (state) {
                case PRE_KEY:
                        if (c == '#' || c == ';')
                                state = COMMENT;
                        else if (!nl && !ws) {
                                state = KEY;
                                key_len = 0;
                                r = strbuf_putc(&key, c);
                                if (r < 0)
                                        return r;
                                key_len = key.n;
                        }
                        break;
                case KEY:
                        if (nl) {
                                /* A line without "=": ignored. */
                                strbuf_done(&key);
                                state = PRE_KEY;
                        } else if (c == '=') {
                                key.n = key_len;
                                if (key.s)
                                        key.s[key.n] = 0;
                                value_keep = 0;
                                state = PRE_VALUE;
                        } else {
                                r = strbuf_putc(&key, c);
                                if (r < 0)
                                        return r;
                                if (!ws)
                                        key_len = key.n;
                        }
                        break;
                case PRE_VALUE:
                        if (nl) {
                                r = env_file_push(env, &key, &value);
                                if (r < 0)
                                        return r;
                                state = PRE_KEY;
                        } else if (c == '\'')
                                state = SINGLE_QUOTE;
                        else if (c == '"')
                                state = DOUBLE_QUOTE;
                        else if (c == '\\')
                                state = VALUE_ESCAPE;
                        else if (!ws) {
                                r = strbuf_putc(&value, c);
                                if (r < 0)
                                        return r;
                                value_keep = value.n;
                                state = VALUE;
                        }
                        break;
                case VALUE:
                        if (nl) {
                                value.n = value_keep;
                                if (value.s)
                                        value.s[value.n] = 0;
                                r = env_file_push(env, &key, &value);
                                if (r < 0)
                                        return r;
                                state = PRE_KEY;
                        } else if (c == '\\')
                                state = VALUE_ESCAPE;
                        else {
                                r = strbuf_putc(&value, c);
                                if (r < 0)
                                        return r;
                                if (!ws)
                                        value_keep = value.n;
                        }
                        break;
                case VALUE_ESCAPE:
                        /* Backslash-newline continues the line; any other character is
                         * taken literally (and kept even when it is whitespace). */
                        state = VALUE;
                        if (c != '\n') {
                                r = strbuf_putc(&value, c);
                                if (r < 0)
                                        return r;
                                value_keep = value.n;
                        }
                        break;
                case SINGLE_QUOTE:
                        if (c == '\'')
                                state = PRE_VALUE;
                        else {
                                r = strbuf_putc(&value, c);
                                if (r < 0)
                                        return r;
                        }
                        value_keep = value.n;
                        break;
                case DOUBLE_QUOTE:
                        if (c == '"')
                                state = PRE_VALUE;
                        else if (c == '\\')
                                state = DOUBLE_QUOTE_ESCAPE;
                        else {
                                r = strbuf_putc(&value, c);
                                if (r < 0)
                                        return r;
                        }
                        value_keep = value.n;
                        break;
                case DOUBLE_QUOTE_ESCAPE:
                        /* As in a shell: \" \\ \` \$ lose the backslash, \newline vanishes,
                         * other backslashes stay. */
                        state = DOUBLE_QUOTE;
                        if (c == '\n')
                                break;
                        if (!strchr("\"\\`$", c)) {
                                r = strbuf_putc(&value, '\\');
                                if (r < 0)
                                        return r;
                        }
                        r = strbuf_putc(&value, c);
                        if (r < 0)
                                return r;
                        value_keep = value.n;
                        break;
                case COMMENT:
                        if (c == '\\')
                                state = COMMENT_ESCAPE;
                        else if (nl)
                                state = PRE_KEY;
                        break;
                case COMMENT_ESCAPE:
                        state = COMMENT;
                        break;
                }
        }

        /* A last line without newline, even inside quotes, still yields its value. */
        switch (state) {
        case VALUE:
        case VALUE_ESCAPE:
                value.n = value_keep;
                if (value.s)
                        value.s[value.n] = 0;
                _fallthrough_;
        case PRE_VALUE:
        case SINGLE_QUOTE:
        case DOUBLE_QUOTE:
        case DOUBLE_QUOTE_ESCAPE:
                return env_file_push(env, &key, &value);
        default:
                return 0;
        }
}

/* Reads every EnvironmentFile= of u into one list (later names replace earlier ones).
 * A container reads them before it leaves the host's file system. */
static int load_environment_files(const unit *u, char ***ret) {
        _cleanup_strv_free_ char **env = NULL;
        int r;

        for (size_t i = 0; i < u->process->n_environment_files; i++) {
                const env_file *f = &u->process->environment_files[i];

                r = env_file_load(f->path, &env);
                /* "-": like systemd, any failure to read the file is ignored. */
                if (r < 0 && (r == -ENOMEM || !f->missing_ok))
                        return r;
        }
        *ret = TAKE_PTR(env);
        return 0;
}

static int build_environment(const spawn_params *p, const char *user, const char *home,
                             const char *shell, pid_t self, char *const *file_env, char ***ret) {
        _cleanup_strv_free_ char **env = NULL;
        const unit *u;
        size_t bytes = 0;
        int r;

        if (!p || !p->unit || !ret)
                return -EINVAL;
        u = p->unit;

        r = env_putf(&env, "PATH=%s", DEFAULT_PATH);
        if (r < 0)
                return r;
        if (user) {
                r = env_putf(&env, "USER=%s", user);
                if (r >= 0)
                        r = env_putf(&env, "LOGNAME=%s", user);
                if (r >= 0 && home)
                        r = env_putf(&env, "HOME=%s", home);
                if (r >= 0 && shell)
                        r = env_putf(&env, "SHELL=%s", shell);
                if (r < 0)
                        return r;
        }
        if (p->notify_socket) {
                r = env_putf(&env, "NOTIFY_SOCKET=%s", p->notify_socket);
                if (r < 0)
                        return r;
        }
        if (p->main_pid > 0) {
                r = env_putf(&env, "MAINPID=%ld", (long) p->main_pid);
                if (r < 0)
                        return r;
        }
        if (p->watchdog_usec > 0 && p->watchdog_usec != USEC_INFINITY) {
                r = env_putf(&env, "WATCHDOG_USEC=%" PRIu64, p->watchdog_usec);
                if (r >= 0)
                        r = env_putf(&env, "WATCHDOG_PID=%ld", (long) self);
                if (r < 0)
                        return r;
        }
        STRV_FOREACH(e, u->process->environment) {
                char *d = strdup(*e);

                if (!d)
                        return -ENOMEM;
                r = env_put(&env, d);
                if (r < 0)
                        return r;
        }
        STRV_FOREACH(e, file_env) {
                char *d = strdup(*e);

                if (!d)
                        return -ENOMEM;
                r = env_put(&env, d);
                if (r < 0)
                        return r;
        }

        STRV_FOREACH(e, env)
                bytes += strlen(*e) + 1;
        if (bytes > ENV_BYTES_MAX)
                return -E2BIG;

        *ret = TAKE_PTR(env);
        return 0;
}

int spawn_build_environment(const spawn_params *p, const char *user, const char *home,
                            const char *shell, pid_t self, char ***ret) {
        _cleanup_strv_free_ char **file_env = NULL;
        int r;

        if (!p || !p->unit || !ret)
                return -EINVAL;
        r = load_environment_files(p->unit, &file_env);
        if (r < 0)
                return r;
        return build_environment(p, user, home, shell, self, file_env, ret);
}

/* ---- argv expansion ---- */

static bool word_is_variable(const char *w) {
        return w[0] == '$' && env_name_is_valid(w + 1);
}

/* Replaces ${NAME} by its value (unset: empty) and $$ by $; other $ stay. */
static int expand_word(const char *w, char *const *env, strbuf *b) {
        const char *p = w;
        int r;

        while (*p) {
                const char *dollar = strchr(p, '$'), *close;

                if (!dollar)
                        return strbuf_append(b, p, strlen(p));
                r = strbuf_append(b, p, (size_t) (dollar - p));
                if (r < 0)
                        return r;
                if (dollar[1] == '$') {
                        r = strbuf_putc(b, '$');
                        p = dollar + 2;
                } else if (dollar[1] == '{' && (close = strchr(dollar + 2, '}'))) {
                        const char *v =
                                strv_env_get_n(env, dollar + 2, (size_t) (close - dollar - 2));

                        r = v ? strbuf_append(b, v, strlen(v)) : 0;
                        p = close + 1;
                } else {
                        /* A bare $NAME inside a word, or an unterminated ${: verbatim. */
                        r = strbuf_putc(b, '$');
                        p = dollar + 1;
                }
                if (r < 0)
                        return r;
                if (b->n > ARGV_BYTES_MAX)
                        return -E2BIG;
        }
        return 0;
}

int spawn_expand_argv(char *const *argv, char *const *env, char ***ret) {
        _cleanup_strv_free_ char **out = NULL;
        size_t bytes = 0;
        int r;

        if (!ret)
                return -EINVAL;
        out = calloc(1, sizeof(char *));
        if (!out)
                return -ENOMEM;

        STRV_FOREACH(a, argv) {
                if (word_is_variable(*a)) {
                        /* "$NAME" as a whole word: split at whitespace, quotes group. */
                        const char *v = strv_env_get_n(env, *a + 1, strlen(*a + 1));

                        for (const char *q = v; q;) {
                                char *w = NULL;

                                r = extract_first_word(&q, &w, EXTRACT_UNQUOTE | EXTRACT_RELAX,
                                                       NULL);
                                if (r < 0)
                                        return r;
                                if (r == 0)
                                        break;
                                bytes += strlen(w) + 1;
                                if (bytes > ARGV_BYTES_MAX ||
                                    strv_length(out) >= ARGV_ENTRIES_MAX) {
                                        free(w);
                                        return -E2BIG;
                                }
                                r = strv_push(&out, w);
                                if (r < 0) {
                                        free(w);
                                        return r;
                                }
                        }
                } else {
                        _cleanup_(strbuf_done) strbuf b = {};
                        char *w;

                        r = expand_word(*a, env, &b);
                        if (r < 0)
                                return r;
                        w = strbuf_steal(&b);
                        if (!w)
                                return -ENOMEM;
                        bytes += strlen(w) + 1;
                        if (bytes > ARGV_BYTES_MAX || strv_length(out) >= ARGV_ENTRIES_MAX) {
                                free(w);
                                return -E2BIG;
                        }
                        r = strv_push(&out, w);
                        if (r < 0) {
                                free(w);
                                return r;
                        }
                }
        }

        *ret = TAKE_PTR(out);
        return 0;
}

/* ---- the child ---- */

typedef struct child {
        const spawn_params *p;
        const char *name;
        int exec_fd;
} child;

/* Reports a failure before exec: errno on the exec pipe for the parent, a line on the
 * (already redirected) stderr for the service log, and systemd's exit status. */
_printf_(4, 5) static _Noreturn void child_fail(const child *c, int err, int status,
                                                const char *step_fmt, ...) {
        char step[512];
        va_list ap;
        ssize_t k;

        if (err <= 0)
                err = EIO;
        va_start(ap, step_fmt);
        vsnprintf(step, sizeof(step), step_fmt, ap);
        va_end(ap);
        dprintf(STDERR_FILENO, "vigil: %s: %s failed: %s\n", c->name, step, strerror(err));
        do
                k = write(c->exec_fd, &err, sizeof(err));
        while (k < 0 && errno == EINTR);
        _exit(status);
}

/* Moves *fd out of 0..2 so that setting up stdio cannot clobber it (the copy is CLOEXEC),
 * and closes the original so that it cannot pass for an inherited stdio fd. */
static int fd_move_above_stdio(int *fd) {
        int n;

        if (*fd < 0 || *fd > 2)
                return 0;
        n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
        if (n < 0)
                return -errno;
        close(*fd);
        *fd = n;
        return 0;
}

/* Makes fd the target's stdio fd, without CLOEXEC. */
static int dup_to(int fd, int target) {
        if (fd == target)
                return fcntl(fd, F_SETFD, 0) < 0 ? -errno : 0;
        return dup2(fd, target) < 0 ? -errno : 0;
}

static int open_output(const output_setting *o, int log_fd, int target) {
        _cleanup_close_ int fd = -1;
        int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY;

        switch (o->kind) {
        case OUTPUT_JOURNAL:
        case OUTPUT_KMSG:
                if (log_fd >= 0)
                        return dup_to(log_fd, target);
                /* No log pipe: like null. */
                _fallthrough_;
        case OUTPUT_NULL:
                fd = open("/dev/null", O_WRONLY | O_CLOEXEC | O_NOCTTY);
                break;
        case OUTPUT_FILE:
        case OUTPUT_APPEND:
        case OUTPUT_TRUNCATE:
                if (isempty(o->path))
                        return -EINVAL;
                if (o->kind == OUTPUT_APPEND)
                        flags |= O_APPEND;
                else if (o->kind == OUTPUT_TRUNCATE)
                        flags |= O_TRUNC;
                fd = open(o->path, flags, 0644);
                break;
        case OUTPUT_INHERIT:
                /* stdout keeps what vigil has (stderr is handled by the caller); a closed
                 * fd 1 becomes /dev/null so that stderr can follow it. */
                if (fcntl(target, F_GETFD) >= 0)
                        return 0;
                fd = open("/dev/null", O_WRONLY | O_CLOEXEC | O_NOCTTY);
                break;
        default:
                return -EINVAL;
        }
        if (fd < 0)
                return -errno;
        if (fd == target)
                return dup_to(TAKE_FD(fd), target);
        return dup_to(fd, target);
}

static bool same_output(const output_setting *a, const output_setting *b) {
        if (a->kind != b->kind)
                return false;
        if (IN_SET(a->kind, OUTPUT_FILE, OUTPUT_APPEND, OUTPUT_TRUNCATE))
                return a->path && b->path && streq(a->path, b->path);
        return true;
}

static void setup_stdio(const child *c, int log_fd) {
        const unit *u = c->p->unit;
        int fd, r;

        fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                child_fail(c, errno, EXIT_STDIN, "opening /dev/null for stdin");
        r = dup_to(fd, STDIN_FILENO);
        if (fd != STDIN_FILENO)
                close(fd);
        if (r < 0)
                child_fail(c, -r, EXIT_STDIN, "setting up stdin");

        r = open_output(&u->process->std_output, log_fd, STDOUT_FILENO);
        if (r < 0)
                child_fail(c, -r, EXIT_STDOUT, "setting up stdout");

        /* stderr "inherit" means wherever stdout goes; the same file as stdout shares its
         * open file description, so appends and offsets do not overwrite each other. */
        if (u->process->std_error.kind == OUTPUT_INHERIT ||
            same_output(&u->process->std_error, &u->process->std_output))
                r = dup_to(STDOUT_FILENO, STDERR_FILENO);
        else
                r = open_output(&u->process->std_error, log_fd, STDERR_FILENO);
        if (r < 0)
                child_fail(c, -r, EXIT_STDERR, "setting up stderr");
}

/* The signals ignored here, which CLONE_CLEAR_SIGHAND leaves ignored in the child. */
static uint64_t ignored_signals(void) {
        uint64_t mask = 0;

        for (int sig = 1; sig < _NSIG && sig <= 64; sig++) {
                struct sigaction old;

                if (sigaction(sig, NULL, &old) >= 0 && old.sa_handler == SIG_IGN)
                        mask |= UINT64_C(1) << (sig - 1);
        }
        return mask;
}

/* reset: the signals whose disposition is still to be defaulted (all ones without
 * CLONE_CLEAR_SIGHAND, else only the ignored ones). */
static void reset_signals(const child *c, uint64_t reset) {
        struct sigaction sa = { .sa_handler = SIG_DFL };
        sigset_t all;

        for (int sig = 1; sig < _NSIG && sig <= 64; sig++) {
                if (!(reset & (UINT64_C(1) << (sig - 1))))
                        continue;
                if (sig == SIGKILL || sig == SIGSTOP)
                        continue;
                /* Signals reserved by libc fail with EINVAL; nothing to reset there. */
                (void) sigaction(sig, &sa, NULL);
        }
        if (sigemptyset(&all) < 0 || sigprocmask(SIG_SETMASK, &all, NULL) < 0)
                child_fail(c, errno, EXIT_SIGNAL_MASK, "unblocking signals");
}

static int mark_fds_cloexec(void) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;

        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) >= 0)
                return 0;
        if (errno != ENOSYS && errno != EINVAL)
                return -errno;

        /* Kernels before 5.11: walk /proc/self/fd. */
        d = opendir("/proc/self/fd");
        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                char *end;
                long fd = strtol(de->d_name, &end, 10);

                if (*end || end == de->d_name || fd < 3 || fd == dirfd(d))
                        continue;
                if (fcntl((int) fd, F_SETFD, FD_CLOEXEC) < 0 && errno != EBADF)
                        return -errno;
        }
        return 0;
}

/* User=, Group=, SupplementaryGroups= resolved from the files under root. */
typedef struct child_creds {
        user_record user;
        bool have_user;
        gid_t gid;
        bool have_gid;
        gid_t *groups;
        size_t n_groups;
        bool set_groups;
} child_creds;

static void resolve_creds(const child *c, child_creds *cr) {
        const unit *u = c->p->unit;
        int r;

        if (u->user) {
                r = creds_lookup_user(c->p->root, u->user, &cr->user);
                if (r < 0)
                        child_fail(c, -r, EXIT_USER, "looking up user %s", u->user);
                cr->have_user = true;
                cr->gid = cr->user.gid;
                cr->have_gid = true;
        }
        if (u->group) {
                r = creds_lookup_group(c->p->root, u->group, &cr->gid);
                if (r < 0)
                        child_fail(c, -r, EXIT_GROUP, "looking up group %s", u->group);
                cr->have_gid = true;
        }

        /* Without User= and SupplementaryGroups= the groups stay as they are (systemd). */
        if (cr->have_user) {
                r = creds_user_groups(c->p->root, cr->user.name, cr->gid, &cr->groups,
                                      &cr->n_groups);
                if (r < 0)
                        child_fail(c, -r, EXIT_GROUP, "reading the groups of %s", cr->user.name);
                cr->set_groups = true;
        }
        STRV_FOREACH(g, u->process->supplementary_groups) {
                gid_t gid, *l;
                bool dup = false;

                r = creds_lookup_group(c->p->root, *g, &gid);
                if (r < 0)
                        child_fail(c, -r, EXIT_GROUP, "looking up group %s", *g);
                for (size_t i = 0; i < cr->n_groups; i++)
                        dup = dup || cr->groups[i] == gid;
                cr->set_groups = true;
                if (dup)
                        continue;
                l = reallocarray(cr->groups, cr->n_groups + 1, sizeof(gid_t));
                if (!l)
                        child_fail(c, ENOMEM, EXIT_MEMORY, "allocating groups");
                cr->groups = l;
                cr->groups[cr->n_groups++] = gid;
        }
}

static void apply_creds(const child *c, const child_creds *cr) {
        if (cr->set_groups && setgroups(cr->n_groups, cr->groups) < 0)
                child_fail(c, errno, EXIT_GROUP, "setting supplementary groups");
        if (cr->have_gid && setresgid(cr->gid, cr->gid, cr->gid) < 0)
                child_fail(c, errno, EXIT_GROUP, "changing to group %lu", (unsigned long) cr->gid);
        if (cr->have_user && setresuid(cr->user.uid, cr->user.uid, cr->user.uid) < 0)
                child_fail(c, errno, EXIT_USER, "changing to user %s", cr->user.name);
}

/* The bounding set: CapabilityBoundingSet=, or none at all in a container that does
 * not name one (a game server needs no capability). */
static uint64_t bounding_set(const unit *u, const isolation *iso) {
        unit_source src;

        if (iso && !unit_directive_source(u, "Service", "CapabilityBoundingSet", &src))
                return u->process->ambient_capabilities;
        return u->process->capability_bounding_set;
}

static int drop_bounding_set(uint64_t keep) {
        for (unsigned long cap = 0; cap <= (unsigned long) cap_max_bits() - 1 && cap < 64; cap++)
                if (!(keep & (UINT64_C(1) << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 &&
                    errno != EINVAL)
                        return -errno;
        return 0;
}

/* After the change of user: permitted, inheritable and ambient get exactly set. */
static int raise_ambient(uint64_t set) {
        cap_value_t list[64];
        int n = 0, r = 0;
        cap_t caps;

        if (!set)
                return 0;
        for (int cap = 0; cap < 64; cap++)
                if (set & (UINT64_C(1) << cap))
                        list[n++] = cap;
        caps = cap_init();
        if (!caps)
                return -ENOMEM;
        if (cap_set_flag(caps, CAP_PERMITTED, n, list, CAP_SET) < 0 ||
            cap_set_flag(caps, CAP_EFFECTIVE, n, list, CAP_SET) < 0 ||
            cap_set_flag(caps, CAP_INHERITABLE, n, list, CAP_SET) < 0 || cap_set_proc(caps) < 0)
                r = -errno;
        cap_free(caps);
        for (int i = 0; r >= 0 && i < n; i++)
                if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (unsigned long) list[i], 0, 0) < 0)
                        r = -errno;
        (void) prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
        return r;
}

static bool cwd_is_inside_root(void) {
        char buf[PATH_MAX];

        /* getcwd() reports a directory not below the root as "(unreachable)/..." or fails. */
        return getcwd(buf, sizeof(buf)) && buf[0] == '/';
}

/* execve() path, or each $PATH entry for a bare name, like execvpe() but with the
 * child's own PATH. Returns only on failure, with the errno to report. */
static int exec_search(const char *path, char *const *argv, char *const *env) {
        const char *search, *p;
        bool seen_eacces = false;

        if (strchr(path, '/')) {
                execve(path, argv, env);
                return errno;
        }
        search = strv_env_get_n(env, "PATH", 4);
        if (!search)
                search = DEFAULT_PATH;
        for (p = search;; p++) {
                const char *colon = strchrnul(p, ':');
                size_t dl = (size_t) (colon - p);
                _cleanup_free_ char *full = NULL;

                if (dl == 0)
                        full = strdup(path); /* an empty entry is the cwd */
                else if (asprintf_safe(&full, "%.*s/%s", (int) dl, p, path) < 0)
                        full = NULL;
                if (!full)
                        return ENOMEM;
                execve(full, argv, env);
                if (errno == EACCES)
                        seen_eacces = true;
                else if (!IN_SET(errno, ENOENT, ENOTDIR, ENAMETOOLONG, ELOOP))
                        return errno;
                if (!*colon)
                        break;
                p = colon;
        }
        return seen_eacces ? EACCES : ENOENT;
}

static _Noreturn void child_run(const spawn_params *p, const seccomp_programs *progs, int exec_fd,
                                int go_fd, bool join_cgroup, uint64_t reset_signal_mask) {
        const unit *u = p->unit;
        const exec_command *cmd = p->command;
        child c = { .p = p, .name = u->name ? u->name : "?", .exec_fd = exec_fd };
        const isolation *iso = (cmd->flags & EXEC_PRIVILEGED) ? NULL : p->isolation;
        child_creds cr = {};
        _cleanup_strv_free_ char **env = NULL, **argv = NULL, **file_env = NULL;
        const char *wd;
        int log_fd = p->log_fd, r;

        reset_signals(&c, reset_signal_mask);

        /* Keep our own fds clear of 0..2 before stdio is rearranged. */
        r = fd_move_above_stdio(&c.exec_fd);
        if (r < 0)
                child_fail(&c, -r, EXIT_FDS, "moving the exec status pipe");
        r = fd_move_above_stdio(&log_fd);
        if (r < 0)
                child_fail(&c, -r, EXIT_FDS, "moving the log pipe");
        if (go_fd >= 0) {
                r = fd_move_above_stdio(&go_fd);
                if (r < 0)
                        child_fail(&c, -r, EXIT_FDS, "moving the go pipe");
        }

        if (join_cgroup) {
                /* The fork() fallback: no CLONE_INTO_CGROUP, so move ourselves. */
                _cleanup_close_ int fd =
                        openat(p->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0 || write(fd, "0\n", 2) != 2)
                        child_fail(&c, errno, EXIT_CGROUP, "joining the cgroup");
        }

        if (setsid() < 0)
                child_fail(&c, errno, EXIT_SETSID, "creating a session");

        /* Output files are opened with vigil's privileges, as systemd does. */
        setup_stdio(&c, log_fd);

        for (int i = 0; i < RLIMIT_COUNT; i++)
                if (u->process->limits[i].set && setrlimit(i, &u->process->limits[i].limit) < 0)
                        child_fail(&c, errno, EXIT_LIMITS, "setting resource limit %s",
                                   rlimit_to_string(i) ?: "?");

        umask(u->process->umask);

        r = resource_apply_child(u->resource);
        if (r < 0)
                child_fail(&c, -r, EXIT_LIMITS, "applying scheduling and OOM settings");

        /* The host's files are read before a container leaves them: EnvironmentFile=. */
        r = load_environment_files(u, &file_env);
        if (r < 0)
                child_fail(&c, -r, EXIT_MEMORY, "building the environment");
        if (iso) {
                const char *what = "entering the container";

                r = iso->driver->enter(iso, u, p->notify_socket, &what);
                if (r < 0)
                        child_fail(&c, -r, EXIT_NAMESPACE, "%s", what);
        }

        /* The user is resolved even for "+" commands: they still get USER=, HOME=. In a
         * container, from the image's /etc/passwd and /etc/group. */
        resolve_creds(&c, &cr);

        r = build_environment(p, cr.have_user ? cr.user.name : NULL,
                              cr.have_user ? cr.user.home : NULL,
                              cr.have_user ? cr.user.shell : NULL, getpid(), file_env, &env);
        if (r < 0)
                child_fail(&c, -r, EXIT_MEMORY, "building the environment");

        if (iso) {
                const char *what = "joining the container's user namespace";

                r = iso->driver->join(iso, &what);
                if (r < 0)
                        child_fail(&c, -r, EXIT_NAMESPACE, "%s", what);
        }

        if (!(cmd->flags & EXEC_PRIVILEGED)) {
                r = drop_bounding_set(bounding_set(u, iso));
                if (r < 0)
                        child_fail(&c, -r, EXIT_CAPABILITIES, "dropping capabilities");
                /* Ambient capabilities survive the change of user only with keep-caps. */
                if (u->process->ambient_capabilities && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                        child_fail(&c, errno, EXIT_CAPABILITIES, "keeping capabilities");
                apply_creds(&c, &cr);
                r = raise_ambient(u->process->ambient_capabilities);
                if (r < 0)
                        child_fail(&c, -r, EXIT_CAPABILITIES, "raising ambient capabilities");
        }

        /* After the switch: the directory may only be reachable as the service user. */
        if (u->process->working_directory_home) {
                if (!cr.have_user) {
                        r = creds_lookup_user(p->root, "0", &cr.user);
                        if (r < 0)
                                child_fail(&c, -r, EXIT_CHDIR, "looking up root's home");
                        cr.have_user = true;
                }
                wd = cr.user.home;
        } else
                wd = isempty(u->process->working_directory) ? "/" : u->process->working_directory;
        if (chdir(wd) < 0) {
                if (!u->process->working_directory_missing_ok)
                        child_fail(&c, errno, EXIT_CHDIR, "changing to directory %s", wd);
                (void) chdir("/");
        }
        /* A directory outside the root (an fd leaked from the host, CVE-2024-21626) has
         * no path from it. */
        if (iso && !cwd_is_inside_root())
                child_fail(&c, EPERM, EXIT_CHDIR, "the working directory is outside the container");

        if (cmd->flags & EXEC_NO_ENV_EXPAND)
                argv = strv_copy(cmd->argv);
        else if (spawn_expand_argv(cmd->argv, env, &argv) < 0)
                argv = NULL;
        if (!argv)
                child_fail(&c, ENOMEM, EXIT_MEMORY, "expanding the command line");

        /* The exec pipe is CLOEXEC already; everything else >= 3 closes at exec too. */
        r = mark_fds_cloexec();
        if (r < 0)
                child_fail(&c, -r, EXIT_FDS, "closing file descriptors");

        /* Prepared ahead of its start: wait for the word (EOF: not needed after all). */
        if (go_fd >= 0) {
                char b;
                ssize_t n;

                while ((n = read(go_fd, &b, 1)) < 0 && errno == EINTR)
                        ;
                if (n != 1)
                        _exit(0);
                close(go_fd);
        }

        if (!(cmd->flags & EXEC_PRIVILEGED) &&
            (u->process->no_new_privileges > 0 || (u->process->no_new_privileges < 0 && iso)) &&
            prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                child_fail(&c, errno, EXIT_NO_NEW_PRIVILEGES, "setting no_new_privs");

        /* Last, so that only execve() itself runs under the filters. Without CAP_SYS_ADMIN
         * (User= set) they need no_new_privs, which they then imply, as in systemd. */
        if (progs && progs->n > 0) {
                r = seccomp_programs_install(progs);
                if (r == -EACCES && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) >= 0)
                        r = seccomp_programs_install(progs);
                if (r < 0)
                        child_fail(&c, -r, EXIT_SECCOMP, "installing the system call filter");
        }

        r = exec_search(cmd->path, argv, env);
        child_fail(&c, r, EXIT_EXEC, "executing %s", cmd->path);
}

/* ---- the parent ---- */

static pid_t clone3_pidfd(int cgroup_fd, uint64_t ns_flags, int *ret_pidfd) {
        int pidfd = -1;
        struct clone_args args = {
                .flags = CLONE_PIDFD | ns_flags | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0),
                .pidfd = (uint64_t) (uintptr_t) &pidfd,
                .exit_signal = SIGCHLD,
                .cgroup = cgroup_fd >= 0 ? (uint64_t) cgroup_fd : 0,
        };
        long pid;

        pid = syscall(SYS_clone3, &args, sizeof(args));
        if (pid < 0)
                return -errno;
        if (pid == 0)
                return 0;
        *ret_pidfd = pidfd;
        return (pid_t) pid;
}

int spawn_command(const spawn_params *p, pid_t *ret_pid, int *ret_pidfd, int *ret_exec_fd) {
        if (p && p->prepare_only)
                return -EINVAL;
        return spawn_prepared(p, ret_pid, ret_pidfd, ret_exec_fd, NULL);
}

int spawn_prepared(const spawn_params *p, pid_t *ret_pid, int *ret_pidfd, int *ret_exec_fd,
                   int *ret_go_fd) {
        _cleanup_close_ int rfd = -1, wfd = -1, pidfd = -1, go_r = -1, go_w = -1;
        bool join_cgroup = false;
        uint64_t reset_mask = ignored_signals();
        seccomp_programs progs = {};
        uint64_t ns_flags;
        int fds[2], r;
        pid_t pid;

        if (!p || !p->unit || !p->command || isempty(p->command->path) || !p->command->argv ||
            !ret_pid || !ret_pidfd)
                return -EINVAL;

        /* Compiled (or found in the cache) here, so that the child only installs them. */
        if (!(p->command->flags & EXEC_PRIVILEGED)) {
                r = seccomp_programs_get(p->unit->seccomp, p->isolation != NULL, &progs);
                if (r < 0)
                        return r;
        }

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        rfd = fds[0];
        wfd = fds[1];
        if (p->prepare_only) {
                if (!ret_go_fd || pipe2(fds, O_CLOEXEC) < 0)
                        return ret_go_fd ? -errno : -EINVAL;
                go_r = fds[0];
                go_w = fds[1];
        }

        ns_flags = p->isolation && !(p->command->flags & EXEC_PRIVILEGED)
                           ? p->isolation->clone_flags
                           : 0;
        /* The child starts with every handler reset (and none of PID 1's to run). */
        pid = clone3_pidfd(p->cgroup_fd, ns_flags | CLONE_CLEAR_SIGHAND, &pidfd);
        if (pid == -EINVAL) { /* before Linux 5.5 */
                reset_mask = UINT64_MAX;
                pid = clone3_pidfd(p->cgroup_fd, ns_flags, &pidfd);
        }
        if ((pid == -ENOSYS || pid == -E2BIG) && ns_flags == 0) {
                /* Kernels before 5.7 (CLONE_INTO_CGROUP) or 5.3 (clone3). The child joins
                 * its cgroup itself. */
                pid = fork();
                if (pid < 0)
                        return -errno;
                if (pid > 0) {
                        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
                        if (pidfd < 0) {
                                r = -errno;

                                /* Without a pidfd the caller cannot track the child. */
                                (void) kill(pid, SIGKILL);
                                (void) waitpid(pid, NULL, 0);
                                return r;
                        }
                }
                join_cgroup = p->cgroup_fd >= 0;
                reset_mask = UINT64_MAX;
        }
        if (pid < 0)
                return pid;
        if (pid == 0) {
                close(TAKE_FD(rfd));
                if (go_w >= 0)
                        close(TAKE_FD(go_w));
                child_run(p, &progs, TAKE_FD(wfd), TAKE_FD(go_r), join_cgroup, reset_mask);
        }

        *ret_pid = pid;
        *ret_pidfd = TAKE_FD(pidfd);
        if (ret_exec_fd)
                *ret_exec_fd = TAKE_FD(rfd);
        if (ret_go_fd)
                *ret_go_fd = TAKE_FD(go_w);
        return 0;
}
