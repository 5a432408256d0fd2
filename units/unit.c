/* The unit loader: one table of directives, policy + unit + drop-ins merged into one unit. */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "config.h"
#include "known.h"
#include "lexer.h"
#include "unit-private.h"

static void load_ctx_init(load_ctx *c, unit *u, diag_list *diags);

_printf_(2, 3) int load_report(load_ctx *c, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL; /* undefined after a failure */
                return -ENOMEM;
        }
        diag_add(c->diags, DIAG_ERROR, c->path, c->line, "%s", msg);
        return -EINVAL;
}

_printf_(2, 3) void load_warn(load_ctx *c, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                msg = NULL; /* undefined after a failure */
        else
                diag_add(c->diags, DIAG_WARNING, c->path, c->line, "%s", msg);
}

/* "invalid Key= value "v": why" — the common shape of a bad value. */
int load_invalid(load_ctx *c, const char *value, const char *why) {
        char esc[INI_ESCAPE_MAX];

        return load_report(c, "invalid %s= value \"%s\": %s", c->d->key,
                           ini_escape(value, esc, sizeof(esc)), why);
}

/* Defaults as systemd has them; an empty assignment restores these. */
const unit unit_defaults = {
        .start_limit_interval = 10 * USEC_PER_SEC,
        .start_limit_burst = 5,
        .type = SERVICE_SIMPLE,
        .restart = RESTART_NO,
        .restart_sec = 100 * USEC_PER_MSEC,
        .backoff = &unit_backoff_defaults,
        .timeout_start = 90 * USEC_PER_SEC,
        .timeout_stop = 90 * USEC_PER_SEC,
        .kill_signal = SIGTERM,
        .kill_mode = KILL_CONTROL_GROUP,
        .process = &unit_process_defaults,
        .resource = &unit_resource_defaults,
        .seccomp = &unit_seccomp_defaults,
        .container = &unit_container_defaults,
        .commands = &unit_no_commands,
        .relations = &unit_no_relations,
        .restart_prevent_exit_status = &exit_status_set_empty,
        .success_exit_status = &exit_status_set_empty,
};

/* The blocks a unit points to: where each lies in unit_layout, its defaults and the unit's
 * pointer to it. Only plain values change live (the resource settings), so a block copied
 * from c->base holds no pointers of its own. */
typedef struct unit_block {
        size_t start, size;
        const void *defaults;
        size_t pointer;
} unit_block;

static const unit_block unit_blocks[] = {
        { offsetof(unit_layout, resource), sizeof(unit_resource), &unit_resource_defaults,
          F(resource) },
        { offsetof(unit_layout, container), sizeof(unit_container), &unit_container_defaults,
          F(container) },
        { offsetof(unit_layout, commands), sizeof(unit_commands), &unit_no_commands, F(commands) },
        { offsetof(unit_layout, relations), sizeof(unit_relations), &unit_no_relations,
          F(relations) },
        { offsetof(unit_layout, seccomp), sizeof(unit_seccomp), &unit_seccomp_defaults,
          F(seccomp) },
        { offsetof(unit_layout, process), sizeof(unit_process), &unit_process_defaults,
          F(process) },
        { offsetof(unit_layout, backoff), sizeof(unit_backoff), &unit_backoff_defaults,
          F(backoff) },
};

const unit_backoff unit_backoff_defaults = {
        .restart_max_delay = USEC_INFINITY,
        .restart_backoff_reset = USEC_PER_MINUTE,
        .start_limit_retry = USEC_INFINITY,
};

static const unit_block *unit_block_of(size_t offset) {
        for (size_t i = 0; i < ELEMENTSOF(unit_blocks); i++)
                if (offset >= unit_blocks[i].start &&
                    offset < unit_blocks[i].start + unit_blocks[i].size)
                        return &unit_blocks[i];
        return NULL;
}

void load_reset_field(load_ctx *c, void *field, size_t size) {
        const unit_block *b = unit_block_of(c->d->offset);

        if (b)
                memcpy(field, (const char *) b->defaults + c->d->offset - b->start, size);
        else
                memcpy(field, (const char *) &unit_defaults + c->d->offset, size);
}

void *load_field(load_ctx *c) {
        const unit_block *b = unit_block_of(c->d->offset);
        const void **p;

        if (!b)
                return (char *) c->u + c->d->offset;
        p = (const void **) ((char *) c->u + b->pointer);
        if (*p == b->defaults ||
            (c->base && *p == *(const void *const *) ((const char *) c->base + b->pointer))) {
                void *copy = malloc(b->size);

                if (!copy)
                        return NULL;
                memcpy(copy, *p, b->size);
                *p = copy;
        }
        return (char *) *p + c->d->offset - b->start;
}

int load_next_word(load_ctx *c, const char **p, const char *value, char **ret) {
        const char *reason = NULL;
        int r = extract_first_word(p, ret, EXTRACT_UNQUOTE, &reason);

        if (r < 0 && r != -ENOMEM)
                return load_invalid(c, value, reason);
        return r;
}

int load_list_add(load_ctx *c, char ***l, const char *s) {
        if (strv_length(*l) >= UNIT_LIST_MAX)
                return load_report(c, "%s= has more than %d entries", c->d->key, UNIT_LIST_MAX);
        return strv_extend(l, s);
}

/* ---- parsers ------------------------------------------------------------------------------ */

/* A boolean into *ret; an empty value restores the field's default (returns 1). */
static int parse_bool_value(load_ctx *c, const char *value, void *field, size_t size, int *ret) {
        if (!*value) {
                load_reset_field(c, field, size);
                return 1;
        }
        *ret = parse_boolean(value);
        if (*ret < 0)
                return load_invalid(c, value, "expected a boolean (yes or no)");
        return 0;
}

int load_parse_bool(load_ctx *c, const char *value, void *field) {
        int b, r = parse_bool_value(c, value, field, sizeof(bool), &b);

        if (r == 0)
                *(bool *) field = b;
        return r < 0 ? r : 0;
}

int load_parse_tristate(load_ctx *c, const char *value, void *field) {
        int b, r = parse_bool_value(c, value, field, sizeof(int), &b);

        if (r == 0)
                *(int *) field = b;
        return r < 0 ? r : 0;
}

int load_parse_string(load_ctx *c, const char *value, void *field) {
        char **s = field, *d = NULL;

        if (*value) {
                d = strdup(value);
                if (!d)
                        return -ENOMEM;
        }
        free(*s);
        *s = d;
        return 0;
}

static int parse_identifier(load_ctx *c, const char *value, void *field) {
        for (const char *p = value; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return load_invalid(c, value, "control characters are not allowed");
        return load_parse_string(c, value, field);
}

static int parse_documentation(load_ctx *c, const char *value, void *field) {
        static const char *const schemes[] = { "http://", "https://", "file:", "info:", "man:" };
        char ***l = field;
        const char *p = value;
        int r;

        if (!*value) {
                *l = strv_free(*l);
                return 0;
        }
        for (;;) {
                _cleanup_free_ char *w = NULL;
                bool ok = false;

                r = load_next_word(c, &p, value, &w);
                if (r < 0)
                        return r;
                if (r == 0)
                        return 0;
                for (size_t i = 0; i < ELEMENTSOF(schemes); i++)
                        if (startswith(w, schemes[i]) && w[strlen(schemes[i])])
                                ok = true;
                if (!ok)
                        return load_invalid(c, w,
                                            "a URI must start with http://, https://, "
                                            "file:, info: or man:");
                r = load_list_add(c, l, w);
                if (r < 0)
                        return r;
        }
}

enum {
        DEP_ORDER,   /* After=, Before=: any unit name, a missing unit is fine */
        DEP_REQUIRE, /* Requires=, BindsTo=: must be a .service or .target */
        DEP_WANT,    /* Wants=, Conflicts=, WantedBy=: other unit types are ignored */
};

static int parse_deps(load_ctx *c, const char *value, void *field) {
        char ***l = field, esc[INI_ESCAPE_MAX];
        const char *p = value;
        int r;

        if (!*value) {
                *l = strv_free(*l);
                return 0;
        }
        for (;;) {
                _cleanup_free_ char *w = NULL;
                const char *suffix;

                r = load_next_word(c, &p, value, &w);
                if (r < 0)
                        return r;
                if (r == 0)
                        return 0;
                if (!unit_name_is_valid(w, UNIT_NAME_PLAIN | UNIT_NAME_INSTANCE))
                        return load_invalid(c, w, "not a valid unit name");
                suffix = unit_name_suffix(w);
                if (!streq(suffix, ".service") && !streq(suffix, ".target")) {
                        if (c->d->arg == DEP_REQUIRE)
                                return load_invalid(c, w,
                                                    "vigil manages only .service and .target "
                                                    "units, so this could never be satisfied");
                        if (c->d->arg == DEP_WANT) {
                                load_warn(c,
                                          "%s=%s is ignored: vigil manages only .service and "
                                          ".target units",
                                          c->d->key, ini_escape(w, esc, sizeof(esc)));
                                continue;
                        }
                }
                if (strv_contains(*l, w))
                        continue;
                r = load_list_add(c, l, w);
                if (r < 0)
                        return r;
        }
}

int load_parse_sec(load_ctx *c, const char *value, void *field) {
        usec_t t;
        int r;

        if (!*value) {
                load_reset_field(c, field, sizeof(usec_t));
                return 0;
        }
        r = parse_sec(value, &t);
        if (r == -ERANGE)
                return load_invalid(c, value, "time span out of range");
        if (r < 0)
                return load_invalid(c, value,
                                    "expected a time span such as \"90s\", "
                                    "\"1min 30s\", \"500ms\" or \"infinity\"");
        *(usec_t *) field = t;
        return 0;
}

/* TimeoutStartSec=0 and TimeoutStopSec=0 mean no timeout, as in systemd. */
static int parse_timeout(load_ctx *c, const char *value, void *field) {
        int r = load_parse_sec(c, value, field);

        if (r >= 0 && *value && *(usec_t *) field == 0)
                *(usec_t *) field = USEC_INFINITY;
        return r;
}

/* TimeoutSec= sets TimeoutStartSec= and TimeoutStopSec= at once. */
static int parse_timeout_both(load_ctx *c, const char *value, void *field) {
        unit *u = c->u;
        int r;

        r = parse_timeout(c, value, &u->timeout_start);
        if (r < 0)
                return r;
        u->timeout_stop = u->timeout_start;
        if (!*value) {
                u->timeout_start = unit_defaults.timeout_start;
                u->timeout_stop = unit_defaults.timeout_stop;
        }
        /* TimeoutStopSec= is marked by the caller, as the row's own field. */
        return mark_source(c, offsetof(unit, timeout_stop));
}

int load_parse_unsigned(load_ctx *c, const char *value, void *field) {
        unsigned v;
        int r;

        if (!*value) {
                load_reset_field(c, field, sizeof(unsigned));
                return 0;
        }
        r = parse_unsigned(value, &v);
        if (r == -ERANGE)
                return load_invalid(c, value, "number out of range");
        if (r < 0)
                return load_invalid(c, value, "expected a non-negative integer");
        if (c->d->arg > 0 && v > (unsigned) c->d->arg) {
                char why[64];

                snprintf(why, sizeof(why), "must be at most %d", c->d->arg);
                return load_invalid(c, value, why);
        }
        *(unsigned *) field = v;
        return 0;
}

/* Looks value up in a table of names indexed by enum value. */
int load_parse_enum(load_ctx *c, const char *value, void *field, const char *const *names, size_t n,
                    const char *expected) {
        if (!*value) {
                load_reset_field(c, field, sizeof(int));
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                if (names[i] && streq(names[i], value)) {
                        *(int *) field = (int) i;
                        return 0;
                }
        return load_invalid(c, value, expected);
}

static const char *const service_type_names[_SERVICE_TYPE_MAX] = {
        [SERVICE_SIMPLE] = "simple",
        [SERVICE_EXEC] = "exec",
        [SERVICE_ONESHOT] = "oneshot",
        [SERVICE_NOTIFY] = "notify",
};

static int parse_type(load_ctx *c, const char *value, void *field) {
        static const char *const unsupported[] = { "forking", "dbus", "idle", "notify-reload" };

        for (size_t i = 0; i < ELEMENTSOF(unsupported); i++)
                if (streq(value, unsupported[i]))
                        return load_report(c,
                                           "Type=%s is not supported by vigil; use simple, exec, "
                                           "oneshot or notify (a service must not daemonize)",
                                           value);
        return load_parse_enum(c, value, field, service_type_names, _SERVICE_TYPE_MAX,
                               "expected simple, exec, oneshot or notify");
}

static const char *const restart_mode_names[_RESTART_MODE_MAX] = {
        [RESTART_NO] = "no",
        [RESTART_ON_SUCCESS] = "on-success",
        [RESTART_ON_FAILURE] = "on-failure",
        [RESTART_ON_ABNORMAL] = "on-abnormal",
        [RESTART_ON_WATCHDOG] = "on-watchdog",
        [RESTART_ON_ABORT] = "on-abort",
        [RESTART_ALWAYS] = "always",
};

static int parse_restart(load_ctx *c, const char *value, void *field) {
        return load_parse_enum(c, value, field, restart_mode_names, _RESTART_MODE_MAX,
                               "expected no, on-success, on-failure, on-abnormal, on-watchdog, "
                               "on-abort or always");
}

static const char *const kill_mode_names[_KILL_MODE_MAX] = {
        [KILL_CONTROL_GROUP] = "control-group",
        [KILL_MIXED] = "mixed",
        [KILL_PROCESS] = "process",
        [KILL_NONE] = "none",
};

static int parse_kill_mode(load_ctx *c, const char *value, void *field) {
        int r = load_parse_enum(c, value, field, kill_mode_names, _KILL_MODE_MAX,
                                "expected control-group, mixed, process or none");

        if (r >= 0 && streq(value, "none"))
                load_warn(c, "KillMode=none leaves processes running after the service stopped; "
                             "it is deprecated, use mixed or control-group");
        return r;
}

static int parse_signal_field(load_ctx *c, const char *value, void *field) {
        int sig;

        if (!*value) {
                load_reset_field(c, field, sizeof(int));
                return 0;
        }
        if (parse_signal(value, &sig) < 0)
                return load_invalid(c, value,
                                    "expected a signal name such as SIGTERM or a number "
                                    "from 1 to 64");
        *(int *) field = sig;
        return 0;
}

static void exit_status_set_add(exit_status_set *s, int status, int sig) {
        if (status >= 0)
                s->status[status / 64] |= UINT64_C(1) << (status % 64);
        else
                s->signal |= UINT64_C(1) << (sig - 1);
}

bool exit_status_set_has_status(const exit_status_set *s, int status) {
        return status >= 0 && status <= 255 && (s->status[status / 64] >> (status % 64)) & 1;
}

bool exit_status_set_has_signal(const exit_status_set *s, int sig) {
        return sig >= 1 && sig <= 64 && (s->signal >> (sig - 1)) & 1;
}

bool exit_status_set_is_empty(const exit_status_set *s) {
        return !(s->status[0] | s->status[1] | s->status[2] | s->status[3] | s->signal);
}

const exit_status_set exit_status_set_empty;
const unit_commands unit_no_commands;
const unit_relations unit_no_relations;

static void exit_status_set_free(const exit_status_set *s) {
        if (s != &exit_status_set_empty)
                free((exit_status_set *) s);
}

static int parse_exit_status_set(load_ctx *c, const char *value, void *field) {
        const exit_status_set **s = field;
        exit_status_set n = **s;
        const char *p = value, *reason = NULL;
        int r;

        if (!*value) {
                exit_status_set_free(*s);
                *s = &exit_status_set_empty;
                return 0;
        }
        for (;;) {
                _cleanup_free_ char *w = NULL;
                int v;

                r = extract_first_word(&p, &w, 0, &reason);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return load_invalid(c, value, reason);
                if (r == 0)
                        break;
                if (parse_exit_status(w, &v) >= 0)
                        exit_status_set_add(&n, v, 0);
                else if (parse_signal(w, &v) >= 0)
                        exit_status_set_add(&n, -1, v);
                else
                        return load_invalid(c, w,
                                            "expected an exit status from 0 to 255, its name "
                                            "(e.g. TEMPFAIL) or a signal name");
        }
        /* The unit's own copy, made at the first assignment that sets one. */
        if (*s == &exit_status_set_empty) {
                exit_status_set *copy = malloc(sizeof(*copy));

                if (!copy)
                        return -ENOMEM;
                *s = copy;
        }
        *(exit_status_set *) *s = n;
        return 0;
}

int load_parse_exec(load_ctx *c, const char *value, void *field) {
        exec_list *l = field;
        const char *reason = NULL;
        int r;

        if (!*value) {
                for (size_t i = 0; i < l->n; i++)
                        exec_command_done(&l->items[i]);
                free(l->items);
                *l = (exec_list){};
                return 0;
        }
        if (l->n >= UNIT_LIST_MAX)
                return load_report(c, "%s= has more than %d commands", c->d->key, UNIT_LIST_MAX);
        r = parse_exec_line(value, &l->items, &l->n, &reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return load_invalid(c, value, reason ? reason : "not a valid command line");
        /* One line may hold many commands separated by ";". */
        if (l->n > UNIT_LIST_MAX)
                return load_report(c, "%s= has more than %d commands", c->d->key, UNIT_LIST_MAX);
        return 0;
}

int load_parse_user_group(load_ctx *c, const char *value, void *field) {
        if (*value && !user_group_name_is_valid(value))
                return load_invalid(c, value, "not a valid user or group name or numeric id");
        return load_parse_string(c, value, field);
}

static int parse_groups(load_ctx *c, const char *value, void *field) {
        char ***l = field;
        const char *p = value;
        int r;

        if (!*value) {
                *l = strv_free(*l);
                return 0;
        }
        for (;;) {
                _cleanup_free_ char *w = NULL;

                r = load_next_word(c, &p, value, &w);
                if (r < 0)
                        return r;
                if (r == 0)
                        return 0;
                if (!user_group_name_is_valid(w))
                        return load_invalid(c, w, "not a valid group name or numeric id");
                if (strv_contains(*l, w))
                        continue;
                r = load_list_add(c, l, w);
                if (r < 0)
                        return r;
        }
}

static int parse_working_directory(load_ctx *c, const char *value, void *field) {
        unit_process *pr =
                (unit_process *) ((char *) field - offsetof(unit_process, working_directory));
        bool missing_ok = false;
        const char *p = value;

        if (*p == '-') {
                missing_ok = true;
                p++;
        }
        if (!*value) {
                pr->working_directory = mfree(pr->working_directory);
                pr->working_directory_home = pr->working_directory_missing_ok = false;
                return 0;
        }
        if (!streq(p, "~") && !path_is_normalized_absolute(p))
                return load_invalid(c, value, "expected an absolute, normalized path or \"~\"");
        if (load_parse_string(c, streq(p, "~") ? "" : p, &pr->working_directory) < 0)
                return -ENOMEM;
        pr->working_directory_home = streq(p, "~");
        pr->working_directory_missing_ok = missing_ok;
        return 0;
}

static int parse_env(load_ctx *c, const char *value, void *field) {
        char ***l = field;
        const char *reason = NULL;
        int r;

        if (!*value) {
                *l = strv_free(*l);
                return 0;
        }
        if (strv_length(*l) >= UNIT_LIST_MAX)
                return load_report(c, "%s= has more than %d entries", c->d->key, UNIT_LIST_MAX);
        r = parse_environment(value, l, &reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return load_invalid(c, value, reason ? reason : "not a valid NAME=VALUE list");
        return 0;
}

static int parse_env_file(load_ctx *c, const char *value, void *field) {
        unit_process *pr =
                (unit_process *) ((char *) field - offsetof(unit_process, environment_files));
        bool missing_ok = *value == '-';
        const char *p = value + missing_ok;
        env_file *f;

        if (!*value) {
                for (size_t i = 0; i < pr->n_environment_files; i++)
                        free(pr->environment_files[i].path);
                pr->environment_files = mfree(pr->environment_files);
                pr->n_environment_files = 0;
                return 0;
        }
        if (!path_is_normalized_absolute(p))
                return load_invalid(c, value, "expected an absolute, normalized path");
        if (pr->n_environment_files >= UNIT_LIST_MAX)
                return load_report(c, "%s= has more than %d entries", c->d->key, UNIT_LIST_MAX);
        f = reallocarray(pr->environment_files, pr->n_environment_files + 1, sizeof(env_file));
        if (!f)
                return -ENOMEM;
        pr->environment_files = f;
        f[pr->n_environment_files] = (env_file){ .path = strdup(p), .missing_ok = missing_ok };
        if (!f[pr->n_environment_files].path)
                return -ENOMEM;
        pr->n_environment_files++;
        return 0;
}

static int parse_umask_field(load_ctx *c, const char *value, void *field) {
        mode_t m;

        if (!*value) {
                load_reset_field(c, field, sizeof(mode_t));
                return 0;
        }
        if (parse_umask(value, &m) < 0)
                return load_invalid(c, value, "expected an octal mode from 0000 to 0777");
        *(mode_t *) field = m;
        return 0;
}

const rlimit_setting unit_no_limits[RLIMIT_COUNT];

const unit_process unit_process_defaults = {
        .umask = 0022,
        .no_new_privileges = -1,
        .limits = unit_no_limits,
        .std_output = { .kind = OUTPUT_JOURNAL },
        .std_error = { .kind = OUTPUT_INHERIT },
        .capability_bounding_set = UINT64_MAX,
};

/* The unit's own, writable array of limits, allocated at the first Limit*= that sets one. */
static rlimit_setting *unit_limits_writable(const rlimit_setting **limits) {
        rlimit_setting *l;

        if (*limits != unit_no_limits)
                return (rlimit_setting *) *limits;
        l = calloc(RLIMIT_COUNT, sizeof(rlimit_setting));
        if (l)
                *limits = l;
        return l;
}

static int parse_limit(load_ctx *c, const char *value, void *field) {
        const rlimit_setting **limits = field;
        rlimit_setting *all;
        struct rlimit rl;
        int res = c->d->arg, r;

        if (c->d->offset != F_PROCESS(limits) || res < 0 || res >= RLIMIT_COUNT)
                return -EINVAL; /* a table row that is not a Limit*= one */
        if (!*value) {
                if (*limits != unit_no_limits)
                        ((rlimit_setting *) *limits)[res] = (rlimit_setting){};
                return 0;
        }
        r = parse_rlimit(c->d->arg, value, &rl);
        if (r == -ERANGE)
                return load_invalid(c, value, "value out of range");
        if (r < 0)
                return load_invalid(c, value,
                                    "expected a value or SOFT:HARD (soft not above hard), "
                                    "or \"infinity\"");
        all = unit_limits_writable(limits);
        if (!all)
                return -ENOMEM;
        all[res] = (rlimit_setting){ .set = true, .limit = rl };
        return 0;
}

static int parse_output(load_ctx *c, const char *value, void *field) {
        static const struct {
                const char *name;
                output_kind kind;
                bool console;
        } kinds[] = {
                { "inherit", OUTPUT_INHERIT, false },
                { "null", OUTPUT_NULL, false },
                { "journal", OUTPUT_JOURNAL, false },
                { "syslog", OUTPUT_JOURNAL, false },
                { "kmsg", OUTPUT_KMSG, false },
                { "journal+console", OUTPUT_JOURNAL, true },
                { "syslog+console", OUTPUT_JOURNAL, true },
                { "kmsg+console", OUTPUT_KMSG, true },
        };
        static const struct {
                const char *prefix;
                output_kind kind;
        } files[] = {
                { "file:", OUTPUT_FILE },
                { "append:", OUTPUT_APPEND },
                { "truncate:", OUTPUT_TRUNCATE },
        };
        output_setting *o = field;

        if (!*value) {
                free(o->path);
                load_reset_field(c, field, sizeof(output_setting));
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (streq(value, kinds[i].name)) {
                        free(o->path);
                        *o = (output_setting){ .kind = kinds[i].kind, .console = kinds[i].console };
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                const char *p = startswith(value, files[i].prefix);
                char *d;

                if (!p)
                        continue;
                if (!path_is_normalized_absolute(p))
                        return load_invalid(c, value, "expected an absolute, normalized path");
                d = strdup(p);
                if (!d)
                        return -ENOMEM;
                free(o->path);
                *o = (output_setting){ .kind = files[i].kind, .path = d };
                return 0;
        }
        return load_invalid(c, value,
                            "vigil supports inherit, null, journal, syslog, kmsg, "
                            "journal+console, syslog+console, kmsg+console, file:PATH, "
                            "append:PATH and truncate:PATH");
}

#define NAME_MAX_LEN 64

bool image_name_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > NAME_MAX_LEN || s[0] == '.' || s[0] == '-')
                return false;
        return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static int parse_policy(load_ctx *c, const char *value, void *field) {
        if (*value && !image_name_is_valid(value))
                return load_invalid(c, value,
                                    "a policy name has up to 64 letters, digits, \"_\", "
                                    "\".\" or \"-\" and does not start with \".\" or \"-\"");
        return load_parse_string(c, value, field);
}

/* ---- the table ----------------------------------------------------------------------------- */

#define LIMIT(name, res)                                                                           \
        { "Service", "Limit" name, parse_limit, F_PROCESS(limits), D_POLICY, res }

static const directive core_directives[] = {
        { "Unit", "Description", load_parse_string, F(description), D_SPECIFIERS, 0 },
        { "Unit", "Documentation", parse_documentation, F_RELATIONS(documentation), D_SPECIFIERS,
          0 },
        { "Unit", "After", parse_deps, F_RELATIONS(after), D_SPECIFIERS, DEP_ORDER },
        { "Unit", "Before", parse_deps, F_RELATIONS(before), D_SPECIFIERS, DEP_ORDER },
        { "Unit", "Requires", parse_deps, F_RELATIONS(requires), D_SPECIFIERS, DEP_REQUIRE },
        { "Unit", "Wants", parse_deps, F_RELATIONS(wants), D_SPECIFIERS, DEP_WANT },
        { "Unit", "BindsTo", parse_deps, F_RELATIONS(binds_to), D_SPECIFIERS, DEP_REQUIRE },
        { "Unit", "BindTo", parse_deps, F_RELATIONS(binds_to), D_SPECIFIERS, DEP_REQUIRE },
        { "Unit", "Conflicts", parse_deps, F_RELATIONS(conflicts), D_SPECIFIERS, DEP_WANT },
        { "Unit", "StartLimitIntervalSec", load_parse_sec, F(start_limit_interval), D_POLICY, 0 },
        { "Unit", "StartLimitInterval", load_parse_sec, F(start_limit_interval), D_POLICY, 0 },
        { "Unit", "StartLimitBurst", load_parse_unsigned, F(start_limit_burst), D_POLICY, 0 },
        { "Unit", "StartLimitRetrySec", load_parse_sec, F_BACKOFF(start_limit_retry), D_POLICY, 0 },

        { "Service", "Type", parse_type, F(type), 0, 0 },
        { "Service", "ExecStartPre", load_parse_exec, F_COMMANDS(exec_start_pre), D_SPECIFIERS, 0 },
        { "Service", "ExecStart", load_parse_exec, F(exec_start), D_SPECIFIERS, 0 },
        { "Service", "ExecStartPost", load_parse_exec, F_COMMANDS(exec_start_post), D_SPECIFIERS,
          0 },
        { "Service", "ExecStop", load_parse_exec, F_COMMANDS(exec_stop), D_SPECIFIERS, 0 },
        { "Service", "ExecReload", load_parse_exec, F_COMMANDS(exec_reload), D_SPECIFIERS, 0 },
        { "Service", "Restart", parse_restart, F(restart), D_POLICY, 0 },
        { "Service", "RestartSec", load_parse_sec, F(restart_sec), D_POLICY, 0 },
        { "Service", "RestartSteps", load_parse_unsigned, F_BACKOFF(restart_steps), D_POLICY,
          10000 },
        { "Service", "RestartMaxDelaySec", load_parse_sec, F_BACKOFF(restart_max_delay), D_POLICY,
          0 },
        { "Service", "RestartBackoffResetSec", load_parse_sec, F_BACKOFF(restart_backoff_reset),
          D_POLICY, 0 },
        { "Service", "RestartRandomizedDelaySec", load_parse_sec,
          F_BACKOFF(restart_randomized_delay), D_POLICY, 0 },
        { "Service", "RestartPreventExitStatus", parse_exit_status_set,
          F(restart_prevent_exit_status), D_POLICY, 0 },
        { "Service", "SuccessExitStatus", parse_exit_status_set, F(success_exit_status), D_POLICY,
          0 },
        { "Service", "TimeoutStartSec", parse_timeout, F(timeout_start), D_POLICY, 0 },
        { "Service", "TimeoutStopSec", parse_timeout, F(timeout_stop), D_POLICY, 0 },
        { "Service", "TimeoutSec", parse_timeout_both, F(timeout_start), D_POLICY, 0 },
        { "Service", "KillSignal", parse_signal_field, F(kill_signal), D_POLICY, 0 },
        { "Service", "KillMode", parse_kill_mode, F(kill_mode), D_POLICY, 0 },
        { "Service", "WatchdogSec", load_parse_sec, F(watchdog), D_POLICY, 0 },
        { "Service", "StartLimitInterval", load_parse_sec, F(start_limit_interval), D_POLICY, 0 },
        { "Service", "StartLimitBurst", load_parse_unsigned, F(start_limit_burst), D_POLICY, 0 },
        { "Service", "User", load_parse_user_group, F(user), D_SPECIFIERS | D_POLICY, 0 },
        { "Service", "Group", load_parse_user_group, F(group), D_SPECIFIERS | D_POLICY, 0 },
        { "Service", "SupplementaryGroups", parse_groups, F_PROCESS(supplementary_groups),
          D_SPECIFIERS | D_POLICY, 0 },
        { "Service", "WorkingDirectory", parse_working_directory, F_PROCESS(working_directory),
          D_SPECIFIERS | D_POLICY, 0 },
        { "Service", "Environment", parse_env, F_PROCESS(environment), D_SPECIFIERS | D_POLICY, 0 },
        { "Service", "EnvironmentFile", parse_env_file, F_PROCESS(environment_files),
          D_SPECIFIERS | D_POLICY, 0 },
        { "Service", "UMask", parse_umask_field, F_PROCESS(umask), D_POLICY, 0 },
        LIMIT("CPU", RLIMIT_CPU),
        LIMIT("FSIZE", RLIMIT_FSIZE),
        LIMIT("DATA", RLIMIT_DATA),
        LIMIT("STACK", RLIMIT_STACK),
        LIMIT("CORE", RLIMIT_CORE),
        LIMIT("RSS", RLIMIT_RSS),
        LIMIT("NOFILE", RLIMIT_NOFILE),
        LIMIT("AS", RLIMIT_AS),
        LIMIT("NPROC", RLIMIT_NPROC),
        LIMIT("MEMLOCK", RLIMIT_MEMLOCK),
        LIMIT("LOCKS", RLIMIT_LOCKS),
        LIMIT("SIGPENDING", RLIMIT_SIGPENDING),
        LIMIT("MSGQUEUE", RLIMIT_MSGQUEUE),
        LIMIT("NICE", RLIMIT_NICE),
        LIMIT("RTPRIO", RLIMIT_RTPRIO),
        LIMIT("RTTIME", RLIMIT_RTTIME),
        { "Service", "StandardOutput", parse_output, F_PROCESS(std_output), D_SPECIFIERS | D_POLICY,
          0 },
        { "Service", "StandardError", parse_output, F_PROCESS(std_error), D_SPECIFIERS | D_POLICY,
          0 },
        { "Service", "SyslogIdentifier", parse_identifier, F_PROCESS(syslog_identifier),
          D_SPECIFIERS | D_POLICY, 0 },
        { "Service", "Policy", parse_policy, F(policy), D_SPECIFIERS, 0 },

        { "Install", "WantedBy", parse_deps, F(wanted_by), D_SPECIFIERS, DEP_WANT },
};

/* Every table, in order; a directive's row number counts through all of them. */
static const size_t N_CORE_DIRECTIVES = ELEMENTSOF(core_directives);

static const directive_table tables[] = {
        { core_directives, &N_CORE_DIRECTIVES },
        { container_directives, &N_CONTAINER_DIRECTIVES },
        { resource_directives, &N_RESOURCE_DIRECTIVES },
        { seccomp_directives, &N_SECCOMP_DIRECTIVES },
};

static size_t n_directives(void) {
        size_t n = 0;

        for (size_t t = 0; t < ELEMENTSOF(tables); t++)
                n += *tables[t].n;
        return n;
}

static const directive *directive_at(size_t row) {
        for (size_t t = 0; t < ELEMENTSOF(tables); t++) {
                if (row < *tables[t].n)
                        return &tables[t].rows[row];
                row -= *tables[t].n;
        }
        return NULL;
}

static const directive *directive_find(const char *section, const char *key) {
        for (size_t i = 0, n = n_directives(); i < n; i++) {
                const directive *d = directive_at(i);

                if (streq(d->section, section) && streq(d->key, key))
                        return d;
        }
        return NULL;
}

static unit_source_slot *source_slot(const unit *u, size_t row) {
        for (size_t i = 0; i < u->n_sources; i++)
                if (u->sources[i].row == row)
                        return &u->sources[i];
        return NULL;
}

/* Every row that writes the same field shares one source (aliases, TimeoutSec=): the slot
 * of the field's first row. The Limit*= rows share one field, the array, each setting its
 * own entry (arg). SIZE_MAX: no row writes it. */
static size_t field_row(size_t offset, int arg) {
        for (size_t i = 0, n = n_directives(); i < n; i++) {
                const directive *d = directive_at(i);

                if (d->offset == offset && (offset != F_PROCESS(limits) || d->arg == arg))
                        return i;
        }
        return SIZE_MAX;
}

/* Only the fields that were set have a slot: most units set a handful. */
int mark_source(load_ctx *c, size_t offset) {
        unit *u = c->u;
        size_t row = field_row(offset, c->d->arg);
        unit_source_slot *slot;
        uint16_t file = 0;

        if (row == SIZE_MAX || row >= UNIT_SOURCE_ROWS_MAX)
                return 0;
        for (size_t i = 0; u->files && u->files[i]; i++)
                if (u->files[i] == c->path)
                        file = (uint16_t) (i + 1);
        slot = source_slot(u, row);
        if (!slot) {
                slot = reallocarray(u->sources, u->n_sources + 1, sizeof(*slot));
                if (!slot)
                        return -ENOMEM;
                u->sources = slot;
                slot = &u->sources[u->n_sources++];
        }
        *slot = (unit_source_slot){ .row = row, .file = file, .line = c->line };
        return 0;
}

bool unit_directive_source(const unit *u, const char *section, const char *key, unit_source *ret) {
        const directive *d = directive_find(section, key);
        const unit_source_slot *s;

        s = d ? source_slot(u, field_row(d->offset, d->arg)) : NULL;
        if (!s || s->file == 0)
                return false;
        *ret = (unit_source){ .path = u->files[s->file - 1], .line = s->line };
        return true;
}

/* ---- applying files ------------------------------------------------------------------------ */

static bool section_is_known(const char *s) {
        return streq(s, "Unit") || streq(s, "Service") || streq(s, "Install") ||
               streq(s, "Container");
}

static int apply_section(load_ctx *c, const char *section) {
        static const char *const other_types[] = { "Socket", "Timer", "Mount", "Automount", "Swap",
                                                   "Path",   "Slice", "Scope", "Device" };
        char esc[INI_ESCAPE_MAX];

        c->section_ignored = true;
        if (startswith(section, "X-"))
                return 0;
        if (c->policy) {
                if (streq(section, "Service") || streq(section, "Container") ||
                    streq(section, "Unit")) {
                        c->section_ignored = false;
                        return 0;
                }
                return load_report(c,
                                   "unknown section [%s] in a policy: a policy has [Unit], "
                                   "[Service] and [Container]",
                                   ini_escape(section, esc, sizeof(esc)));
        }
        if (section_is_known(section)) {
                c->section_ignored = false;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(other_types); i++)
                if (streq(section, other_types[i]))
                        return load_report(c,
                                           "section [%s] belongs to systemd .%c%s units; "
                                           "vigil runs only .service units",
                                           section, section[0] + 'a' - 'A', section + 1);
        return load_report(c,
                           "unknown section [%s]: vigil units have [Unit], [Service], "
                           "[Container] and [Install]",
                           ini_escape(section, esc, sizeof(esc)));
}

static int unknown_directive(load_ctx *c, const char *section, const char *key) {
        char esc[INI_ESCAPE_MAX];

        ini_escape(key, esc, sizeof(esc));
        if (streq(section, "Container"))
                return load_report(c,
                                   quadlet_knows_container_key(key)
                                           ? "[Container] %s= is a Quadlet key that vigil does "
                                             "not support yet"
                                           : "unknown directive %s= in [Container]",
                                   esc);
        for (size_t i = 0, n = n_directives(); i < n; i++)
                if (streq(directive_at(i)->key, key))
                        return load_report(c, "%s= belongs in [%s], not [%s]", esc,
                                           directive_at(i)->section, section);
        if (systemd_knows_directive(section, key))
                return load_report(c, "[%s] %s= is a systemd directive that vigil does not support",
                                   section, esc);
        return load_report(c, "unknown directive %s= in [%s] (neither vigil nor systemd knows it)",
                           esc, section);
}

/* Expands specifiers if the directive wants them, then parses. */
static int apply_value(load_ctx *c, const directive *d, const char *value) {
        _cleanup_free_ char *expanded = NULL;
        const char *key = d->key;
        char esc[INI_ESCAPE_MAX];
        void *field;
        int r;

        if (d->flags & D_SPECIFIERS) {
                char bad = 0;

                r = specifier_expand(value, &c->spec, &expanded, &bad);
                if (r == -EBADMSG && bad == 0)
                        return load_report(
                                c, "%s= ends in a lone %%; write %%%% for a percent sign", key);
                if (r == -EBADMSG) {
                        char b[2] = { bad, 0 };

                        return load_report(c,
                                           "specifier %%%s in %s= is not supported (vigil knows "
                                           "%%n %%N %%p %%i and %%%%)",
                                           ini_escape(b, esc, sizeof(esc)), key);
                }
                if (r == -E2BIG)
                        return load_report(c, "%s= is too long after expanding specifiers", key);
                if (r < 0)
                        return r;
                value = expanded;
        }

        field = load_field(c);
        if (!field)
                return -ENOMEM;
        r = d->parse(c, value, field);
        if (r < 0)
                return r;
        return mark_source(c, d->offset);
}

static int apply_assignment(load_ctx *c, const char *section, const char *key, const char *value) {
        const directive *d;
        int r;

        if (c->section_ignored || startswith(key, "X-"))
                return 0;
        d = directive_find(section, key);
        if (!d)
                return unknown_directive(c, section, key);
        if (c->policy && !(d->flags & D_POLICY))
                return load_report(c, "%s= cannot be set in a policy, only in a unit", key);
        c->d = d;
        r = apply_value(c, d, value);
        if (r < 0 && d->offset == offsetof(unit, exec_start))
                c->exec_start_failed = true;
        return r;
}

/* One lexed file, kept so that Policy= can be found before anything is applied. */
typedef struct assignment {
        char *section, *key, *value; /* key NULL: a section header */
        unsigned line;
} assignment;

typedef struct file_events {
        const char *path; /* points into unit->files */
        assignment *items;
        size_t n;
} file_events;

static void file_events_done(file_events *f) {
        for (size_t i = 0; i < f->n; i++) {
                free(f->items[i].section);
                free(f->items[i].key);
                free(f->items[i].value);
        }
        free(f->items);
        *f = (file_events){};
}

static int collect_event(const ini_event *ev, void *userdata) {
        file_events *f = userdata;
        assignment *a;

        a = reallocarray(f->items, f->n + 1, sizeof(assignment));
        if (!a)
                return -ENOMEM;
        f->items = a;
        a = &f->items[f->n];
        *a = (assignment){ .line = ev->line };
        a->section = strdup(ev->section);
        if (ev->kind == INI_ASSIGNMENT) {
                a->key = strdup(ev->key);
                a->value = strdup(ev->value);
        }
        f->n++; /* counted before the checks so that file_events_done() frees it */
        if (!a->section || (ev->kind == INI_ASSIGNMENT && (!a->key || !a->value)))
                return -ENOMEM;
        return 0;
}

static int lex_buffer(const char *path, const char *data, size_t size, diag_list *diags,
                      file_events *ret) {
        int r;

        ret->path = path;
        if (size > UNIT_FILE_MAX) {
                diag_add(diags, DIAG_ERROR, path, 0, "file is larger than %d bytes", UNIT_FILE_MAX);
                return -EFBIG;
        }
        r = ini_parse_buffer(path, data, size, diags, collect_event, ret);
        return r;
}

static const char *describe_read_error(int r) {
        switch (r) {
        case -EFBIG:
                return "file is larger than 1 MiB";
        case -EBADFD:
                return "not a regular file";
        default:
                return strerror(-r);
        }
}

static int lex_file(const char *path, diag_list *diags, file_events *ret) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        ret->path = path;
        r = read_file_bounded(path, UNIT_FILE_MAX, &data, &size);
        if (r < 0) {
                diag_add(diags, DIAG_ERROR, path, 0, "cannot read: %s", describe_read_error(r));
                return r;
        }
        return lex_buffer(path, data, size, diags, ret);
}

static int apply_events(load_ctx *c, const file_events *f, bool policy) {
        int r;

        c->path = f->path;
        c->policy = policy;
        c->section_ignored = true;
        for (size_t i = 0; i < f->n; i++) {
                const assignment *a = &f->items[i];

                c->line = a->line;
                c->d = NULL;
                if (!a->key)
                        r = apply_section(c, a->section);
                else
                        r = apply_assignment(c, a->section, a->key, a->value);
                if (r == -ENOMEM)
                        return r;
        }
        return 0;
}

/* ---- the unit ------------------------------------------------------------------------------ */

static void exec_list_done(exec_list *l) {
        for (size_t i = 0; i < l->n; i++)
                exec_command_done(&l->items[i]);
        free(l->items);
        *l = (exec_list){};
}

/* The unit's lists of strings, files first, and its own strings (see unit_pack()). */
static const size_t list_fields[] = {
        F(files),
        F_RELATIONS(documentation),
        F_RELATIONS(after),
        F_RELATIONS(before),
        F_RELATIONS(requires),
        F_RELATIONS(wants),
        F_RELATIONS(binds_to),
        F_RELATIONS(conflicts),
        F(wanted_by),
        F_PROCESS(supplementary_groups),
        F_PROCESS(environment),
};
static const size_t string_fields[] = {
        F(description),
        F(user),
        F(group),
        F_PROCESS(working_directory),
        F_PROCESS(std_output.path),
        F_PROCESS(std_error.path),
        F(policy),
        F(policy_path),
        F_PROCESS(syslog_identifier),
};

/* The field at a row offset; NULL for one in a block still shared with its defaults: it is
 * empty, and stays so. */
static void *unit_own_field(unit *u, size_t offset) {
        const unit_block *b = unit_block_of(offset);
        const void *block;

        if (!b)
                return (char *) u + offset;
        block = *(const void *const *) ((const char *) u + b->pointer);
        return block == b->defaults ? NULL : (char *) block + offset - b->start;
}

static char ***unit_list(unit *u, size_t i) {
        return unit_own_field(u, list_fields[i]);
}

static char **unit_string(unit *u, size_t i) {
        return unit_own_field(u, string_fields[i]);
}

/* "NAME\0PREFIX\0INSTANCE\0": its length. */
static size_t name_block_len(const unit *u) {
        const char *last = unit_instance(u) ?: u->prefix;

        return (size_t) (last + strlen(last) + 1 - u->name);
}

/* Where unit_pack() puts things: pointer-aligned arrays first, then the bytes of strings.
 * While measuring, ptrs is NULL and only the counts grow. */
typedef struct packer {
        char **ptrs;
        char *chars;
        size_t n_ptrs, n_chars;
} packer;

static void *pack_ptrs(packer *p, size_t bytes) {
        size_t n = (bytes + sizeof(char *) - 1) / sizeof(char *);
        char **r = p->ptrs;

        p->n_ptrs += n;
        if (r)
                p->ptrs += n;
        return r;
}

static char *pack_bytes(packer *p, const char *s, size_t len) {
        char *r = p->chars;

        p->n_chars += len;
        if (p->ptrs) {
                memcpy(r, s, len);
                p->chars += len;
        }
        return r;
}

/* A list of strings: the new one while copying (the old one freed), else NULL. */
static char **pack_strv(packer *p, char **l) {
        size_t n = strv_length(l);
        char **a = pack_ptrs(p, (n + 1) * sizeof(char *));

        for (size_t i = 0; i < n; i++) {
                char *e = pack_bytes(p, l[i], strlen(l[i]) + 1);

                if (a)
                        a[i] = e;
        }
        if (a)
                a[n] = NULL;
        return a;
}

static void pack_exec_list(packer *p, exec_list *l) {
        exec_command *items;

        if (l->n == 0)
                return;
        items = pack_ptrs(p, l->n * sizeof(exec_command));
        for (size_t i = 0; i < l->n; i++) {
                exec_command *c = &l->items[i];
                char **argv = c->argv ? pack_strv(p, c->argv) : NULL;
                /* path is argv[0] itself, or its own string (see exec_command_pack()) */
                char *path = c->argv && c->path == c->argv[0]
                                     ? (argv ? argv[0] : NULL)
                                     : pack_bytes(p, c->path, strlen(c->path) + 1);

                if (items)
                        items[i] = (exec_command){ .path = path, .argv = argv, .flags = c->flags };
        }
        if (!items)
                return;
        for (size_t i = 0; i < l->n; i++)
                exec_command_done(&l->items[i]);
        free(l->items);
        l->items = items;
}

/* The unit's commands, each list once: the blocks still shared with their defaults have
 * none, and must not be changed. */
static exec_list *unit_exec_list(unit *u, size_t i) {
        unit_commands *cmd =
                u->commands != &unit_no_commands ? (unit_commands *) u->commands : NULL;
        unit_container *ct =
                u->container != &unit_container_defaults ? (unit_container *) u->container : NULL;
        exec_list *l[] = { &u->exec_start,
                           cmd ? &cmd->exec_start_pre : NULL,
                           cmd ? &cmd->exec_start_post : NULL,
                           cmd ? &cmd->exec_stop : NULL,
                           cmd ? &cmd->exec_reload : NULL,
                           ct ? &ct->health_cmd : NULL };

        for (size_t k = 0; k < ELEMENTSOF(l); k++)
                if (l[k] && i-- == 0)
                        return l[k];
        return NULL;
}

/* Measures (p->ptrs NULL) or moves (p->ptrs set) what unit_pack() packs. */
static void unit_pack_fields(unit *u, packer *p) {
        size_t len = name_block_len(u);
        char *name = pack_bytes(p, u->name, len);
        exec_list *el;
        void *sources;

        if (p->ptrs) {
                u->prefix = name + (u->prefix - u->name);
                free(u->name);
                u->name = name;
        }
        for (size_t i = 0; i < ELEMENTSOF(string_fields); i++) {
                char **f = unit_string(u, i), *n;

                if (!f || !*f)
                        continue;
                n = pack_bytes(p, *f, strlen(*f) + 1);
                if (p->ptrs) {
                        free(*f);
                        *f = n;
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(list_fields); i++) {
                char ***l = unit_list(u, i), **n;

                if (!l || !*l)
                        continue;
                n = pack_strv(p, *l);
                if (p->ptrs) {
                        strv_free(*l);
                        *l = n;
                }
        }
        for (size_t i = 0; (el = unit_exec_list(u, i)); i++)
                pack_exec_list(p, el);
        if (u->n_sources == 0)
                return;
        sources = pack_ptrs(p, u->n_sources * sizeof(unit_source_slot));
        if (p->ptrs) {
                memcpy(sources, u->sources, u->n_sources * sizeof(unit_source_slot));
                free(u->sources);
                u->sources = sources;
        }
}

/* A loaded unit's strings, lists, commands and source records never change again: they
 * become one allocation with the unit itself instead of one per string, per list entry and
 * per command. Made once they are all known, it lies beyond the loader's passing allocations
 * rather than among them, so freeing those leaves no hole behind each unit. Without memory
 * for that *u stays as it is. */
static void unit_pack(unit **u) {
        packer p = {};
        unit *n;

        if ((*u)->packed || !(*u)->files)
                return;
        unit_pack_fields(*u, &p);
        n = malloc(sizeof(unit) + p.n_ptrs * sizeof(char *) + p.n_chars);
        if (!n)
                return;
        *n = **u;
        p = (packer){ .ptrs = (char **) (n + 1), .chars = (char *) ((char **) (n + 1) + p.n_ptrs) };
        unit_pack_fields(n, &p);
        n->packed = true;
        free(*u);
        *u = n;
}

/* Its lists and strings go with the unit's (unit_free()). */
static void unit_process_free(const unit_process *p) {
        if (p == &unit_process_defaults)
                return;
        for (size_t i = 0; i < p->n_environment_files; i++)
                free(p->environment_files[i].path);
        free(p->environment_files);
        if (p->limits != unit_no_limits)
                free((rlimit_setting *) p->limits);
        free((unit_process *) p);
}

static void unit_backoff_free(const unit_backoff *b) {
        if (b != &unit_backoff_defaults)
                free((unit_backoff *) b);
}

unit *unit_free(unit *u) {
        if (!u)
                return NULL;
        if (!u->packed) { /* else everything unit_pack() moved went with the unit */
                exec_list *el;

                free(u->name); /* and prefix, instance */
                for (size_t i = 0; i < ELEMENTSOF(list_fields); i++)
                        if (unit_list(u, i))
                                strv_free(*unit_list(u, i));
                for (size_t i = 0; i < ELEMENTSOF(string_fields); i++)
                        if (unit_string(u, i))
                                free(*unit_string(u, i));
                for (size_t i = 0; (el = unit_exec_list(u, i)); i++)
                        exec_list_done(el);
                free(u->sources);
        }
        unit_process_free(u->process);
        if (u->commands != &unit_no_commands)
                free((unit_commands *) u->commands); /* its lists were freed above */
        if (u->relations != &unit_no_relations)
                free((unit_relations *) u->relations); /* likewise */
        unit_container_free(u->container);
        unit_resource_free(u->resource);
        unit_seccomp_free(u->seccomp);
        unit_backoff_free(u->backoff);
        exit_status_set_free(u->restart_prevent_exit_status);
        exit_status_set_free(u->success_exit_status);
        free(u);
        return NULL;
}

/* Sets name, prefix and instance; a template is checked as "NAME@instance". The three are
 * one allocation, "NAME\0PREFIX\0INSTANCE\0", owned by name. */
static int unit_new(const char *name, unit **ret) {
        _cleanup_unit_free_ unit *u = NULL;
        const char *at, *suffix, *instance = NULL;
        size_t prefix_len, instance_len = 0;
        int n;

        u = malloc(sizeof(unit));
        if (!u)
                return -ENOMEM;
        *u = unit_defaults;

        at = strchr(name, '@');
        suffix = unit_name_suffix(name);
        prefix_len = (size_t) ((at ?: suffix) - name);
        if (at) {
                instance = at + 1 == suffix ? "instance" : at + 1;
                instance_len = at + 1 == suffix ? strlen("instance") : (size_t) (suffix - at - 1);
        }
        if (at && at + 1 == suffix)
                n = asprintf(&u->name, "%.*sinstance%s%c%.*s%c%s", (int) (suffix - name), name,
                             suffix, 0, (int) prefix_len, name, 0, instance);
        else
                n = asprintf(&u->name, "%s%c%.*s%c%.*s", name, 0, (int) prefix_len, name, 0,
                             (int) instance_len, instance ?: "");
        if (n < 0) {
                u->name = NULL;
                return -ENOMEM;
        }
        u->prefix = u->name + strlen(u->name) + 1;
        *ret = TAKE_PTR(u);
        return 0;
}

static void load_ctx_init(load_ctx *c, unit *u, diag_list *diags) {
        *c = (load_ctx){
                .u = u,
                .diags = diags,
                .spec = {
                        .name = u->name,
                        .prefix = u->prefix,
                        .instance = unit_instance(u) ?: "",
                },
        };
}

/* The settings that may change while a service runs: the restart rules (read when the next
 * restart is decided) and every resource setting (written to its cgroup at once). They are
 * plain values, so that parsing one into a copy of a unit never touches shared memory. */
static const char *const live_keys[] = {
        "Restart",
        "RestartSec",
        "RestartSteps",
        "RestartMaxDelaySec",
        "RestartBackoffResetSec",
        "RestartRandomizedDelaySec",
        "StartLimitIntervalSec",
        "StartLimitBurst",
};

static void unit_verify(load_ctx *c);

static int first_error(diag_list *diags, int r, char **ret_error) {
        if (r >= 0 && diags->n > 0)
                r = -EINVAL;
        if (r == -EINVAL && diags->n > 0)
                *ret_error = strdup(diags->items[0].message);
        diag_list_done(diags);
        return r;
}

int unit_set_property(unit *u, const unit *base, const char *key, const char *value,
                      char **ret_error) {
        const directive *d = NULL;
        diag_list diags = {};
        load_ctx c;
        void *field;

        for (size_t i = 0; i < ELEMENTSOF(live_keys); i++)
                if (streq(live_keys[i], key))
                        for (size_t j = 0; j < N_CORE_DIRECTIVES && !d; j++)
                                if (streq(core_directives[j].key, key))
                                        d = &core_directives[j];
        for (size_t i = 0; i < N_RESOURCE_DIRECTIVES && !d; i++)
                if (streq(resource_directives[i].key, key))
                        d = &resource_directives[i];
        if (!d)
                return -ENOENT;
        load_ctx_init(&c, u, &diags);
        c.path = "SetProperties";
        c.d = d;
        c.base = base;
        field = load_field(&c);
        if (!field)
                return -ENOMEM;
        return first_error(&diags, d->parse(&c, value, field), ret_error);
}

void unit_changes_take(unit *base, const unit *copy) {
        if (base->resource != copy->resource)
                unit_resource_free(base->resource);
        if (base->backoff != copy->backoff)
                unit_backoff_free(base->backoff);
        *base = *copy;
}

void unit_changes_drop(unit *copy, const unit *base) {
        if (copy->resource != base->resource)
                unit_resource_free(copy->resource);
        if (copy->backoff != base->backoff)
                unit_backoff_free(copy->backoff);
        copy->resource = base->resource;
        copy->backoff = base->backoff;
}

int unit_check(unit *u, char **ret_error) {
        diag_list diags = {};
        load_ctx c;

        load_ctx_init(&c, u, &diags);
        unit_verify(&c);
        return first_error(&diags, 0, ret_error);
}

void load_at(load_ctx *c, const char *section, const char *key) {
        unit_source s;

        if (!unit_directive_source(c->u, section, key, &s))
                s = (unit_source){ .path = unit_path(c->u) };
        c->path = s.path;
        c->line = s.line;
}

/* Defaults that depend on other settings, then the checks that need the whole unit. */
static void unit_verify(load_ctx *c) {
        unit *u = c->u;
        unit_source s;
        char a[64], b[64];

        /* As in systemd, a oneshot has no start timeout unless it asks for one. */
        if (u->type == SERVICE_ONESHOT &&
            !unit_directive_source(u, "Service", "TimeoutStartSec", &s))
                u->timeout_start = USEC_INFINITY;

        if (u->exec_start.n == 0 && !c->exec_start_failed) {
                load_at(c, "Service", "ExecStart");
                load_report(c, "no ExecStart= in [Service]: nothing to run");
        }
        if (u->exec_start.n > 1 && u->type != SERVICE_ONESHOT) {
                load_at(c, "Service", "ExecStart");
                load_report(c,
                            "more than one ExecStart= command is only allowed with Type=oneshot");
        }
        if (u->type == SERVICE_ONESHOT &&
            (u->restart == RESTART_ALWAYS || u->restart == RESTART_ON_SUCCESS)) {
                load_at(c, "Service", "Restart");
                load_report(c,
                            "Restart=%s is not allowed with Type=oneshot: the finished command "
                            "would be started again forever",
                            restart_mode_to_string(u->restart));
        }
        if (u->backoff->restart_steps > 0 && u->backoff->restart_max_delay == USEC_INFINITY) {
                load_at(c, "Service", "RestartSteps");
                load_report(c, "RestartSteps= needs RestartMaxDelaySec=: the delay grows from "
                               "RestartSec= to RestartMaxDelaySec= in that many steps");
        }
        if (u->backoff->restart_steps == 0 && u->backoff->restart_max_delay != USEC_INFINITY) {
                load_at(c, "Service", "RestartMaxDelaySec");
                load_report(c, "RestartMaxDelaySec= needs RestartSteps= (how many steps the delay "
                               "takes to grow from RestartSec=)");
        }
        if (u->backoff->restart_max_delay != USEC_INFINITY &&
            u->backoff->restart_max_delay < u->restart_sec) {
                load_at(c, "Service", "RestartMaxDelaySec");
                load_report(c, "RestartMaxDelaySec=%s is below RestartSec=%s",
                            format_timespan(a, sizeof(a), u->backoff->restart_max_delay),
                            format_timespan(b, sizeof(b), u->restart_sec));
        }
        if (u->backoff->start_limit_retry == 0) {
                load_at(c, "Unit", "StartLimitRetrySec");
                load_report(c, "StartLimitRetrySec=0 would retry at once, forever; use a delay "
                               "such as 5min, or infinity for never");
        }
        unit_container_verify(c);
        unit_resource_verify(c);
        unit_seccomp_verify(c);
}

static bool is_dev_null(const char *path) {
        struct stat st;

        return stat(path, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

typedef struct dropin {
        char *name, *path;
} dropin;

static int dropin_cmp(const void *a, const void *b) {
        return strcmp(((const dropin *) a)->name, ((const dropin *) b)->name);
}

/* Adds DIR/?*.conf; a file of the same name in a later directory replaces the earlier one. */
static int dropins_add_dir(const char *dir, dropin **list, size_t *n, diag_list *diags) {
        DIR *d;
        struct dirent *de;
        int r = 0;

        d = opendir(dir);
        if (!d)
                return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
        while ((de = readdir(d))) {
                char *path = NULL, *name = NULL;
                size_t i;

                if (de->d_name[0] == '.' || !endswith(de->d_name, ".conf"))
                        continue;
                for (i = 0; i < *n; i++)
                        if (streq((*list)[i].name, de->d_name))
                                break;
                if (i == *n && *n >= UNIT_DROPINS_MAX) {
                        diag_add(diags, DIAG_ERROR, dir, 0, "more than %d drop-ins",
                                 UNIT_DROPINS_MAX);
                        r = -E2BIG;
                        break;
                }
                if (asprintf_safe(&path, "%s/%s", dir, de->d_name) < 0 ||
                    !(name = strdup(de->d_name))) {
                        if (path)
                                free(path);
                        r = -ENOMEM;
                        break;
                }
                if (i < *n) {
                        free((*list)[i].name);
                        free((*list)[i].path);
                } else {
                        dropin *l = reallocarray(*list, *n + 1, sizeof(dropin));

                        if (!l) {
                                free(path);
                                free(name);
                                r = -ENOMEM;
                                break;
                        }
                        *list = l;
                        (*n)++;
                }
                (*list)[i] = (dropin){ .name = name, .path = path };
        }
        closedir(d);
        return r;
}

static char *policy_dir_default(void) {
        return strdup(VIGIL_CONFIG_DIR "/policies");
}

/* The Policy= value the unit ends up with, specifiers expanded, and where it
 * was set; NULL if none or invalid (the error is reported when applying). */
static char *find_policy(const file_events *files, size_t n, const specifier_context *spec,
                         load_ctx *at) {
        const char *v = NULL;
        char *expanded = NULL, bad;

        for (size_t f = 0; f < n; f++)
                for (size_t i = 0; i < files[f].n; i++) {
                        const assignment *a = &files[f].items[i];

                        if (a->key && streq(a->section, "Service") && streq(a->key, "Policy")) {
                                v = *a->value ? a->value : NULL;
                                at->path = files[f].path;
                                at->line = a->line;
                        }
                }
        if (!v || specifier_expand(v, spec, &expanded, &bad) < 0)
                return NULL;
        if (!image_name_is_valid(expanded))
                return mfree(expanded);
        return expanded;
}

static int unit_add_file(unit *u, const char *path, const char **ret) {
        int r = strv_extend(&u->files, path);

        if (r < 0)
                return r;
        *ret = u->files[strv_length(u->files) - 1];
        return 0;
}

int unit_load_file(const char *path, const char *load_as, const unit_load_options *opts,
                   diag_list *diags, unit **ret) {
        _cleanup_unit_free_ unit *u = NULL;
        _cleanup_free_ char *dir = NULL, *base = NULL, *policy = NULL, *pdir = NULL;
        _cleanup_free_ file_events *files = NULL; /* the unit's, then its drop-ins' */
        file_events policy_events = {};
        dropin *dropins = NULL;
        size_t n_dropins = 0, n_files = 0, errors_before = diags->n_errors;
        const char *slash, *name, *stored;
        load_ctx c;
        int r;

        slash = strrchr(path, '/');
        dir = slash ? strndup(path, (size_t) (slash - path)) : strdup(".");
        base = strdup(slash ? slash + 1 : path);
        if (!dir || !base)
                return -ENOMEM;
        if (slash && !*dir) {
                free(dir);
                dir = strdup("/");
                if (!dir)
                        return -ENOMEM;
        }
        name = load_as ?: base;

        if (!unit_name_is_valid(name, UNIT_NAME_ANY) || !endswith(name, ".service")) {
                char esc[INI_ESCAPE_MAX];

                diag_add(diags, DIAG_ERROR, path, 0,
                         "\"%s\" is not a valid service name (letters, digits, \":-_.\\\", at "
                         "most one \"@\", ending in .service, at most %d bytes)",
                         ini_escape(name, esc, sizeof(esc)), UNIT_NAME_MAX);
                return -EINVAL;
        }
        if (load_as && !streq(load_as, base)) {
                const char *at = strchr(load_as, '@');

                if (!at || strncmp(base, load_as, (size_t) (at - load_as + 1)) != 0 ||
                    !streq(base + (at - load_as + 1), ".service")) {
                        diag_add(diags, DIAG_ERROR, path, 0,
                                 "%s cannot be loaded from %s (only an instance from its "
                                 "template)",
                                 load_as, base);
                        return -EINVAL;
                }
        }
        if (is_dev_null(path)) {
                diag_add(diags, DIAG_ERROR, path, 0, "unit is masked (a link to /dev/null)");
                return -ENOENT;
        }

        r = unit_new(name, &u);
        if (r < 0)
                return r;
        r = unit_add_file(u, path, &stored);
        if (r < 0)
                return r;

        /* The template's drop-ins first, then the instance's; later names win. */
        if (unit_instance(u)) {
                _cleanup_free_ char *tdir = NULL;

                if (asprintf_safe(&tdir, "%s/%s@.service.d", dir, u->prefix) < 0)
                        return -ENOMEM;
                r = dropins_add_dir(tdir, &dropins, &n_dropins, diags);
        }
        if (r >= 0) {
                _cleanup_free_ char *idir = NULL;

                if (asprintf_safe(&idir, "%s/%s.d", dir, name) < 0)
                        r = -ENOMEM;
                else if (!strchr(name, '@') || !endswith(name, "@.service"))
                        r = dropins_add_dir(idir, &dropins, &n_dropins, diags);
        }
        if (r < 0)
                goto finish;
        if (n_dropins > 0)
                qsort(dropins, n_dropins, sizeof(dropin), dropin_cmp);
        files = calloc(1 + n_dropins, sizeof(file_events));
        if (!files) {
                r = -ENOMEM;
                goto finish;
        }

        r = lex_file(stored, diags, &files[n_files++]);
        if (r == -ENOMEM)
                goto finish;
        for (size_t i = 0; i < n_dropins; i++) {
                if (is_dev_null(dropins[i].path))
                        continue;
                r = unit_add_file(u, dropins[i].path, &stored);
                if (r < 0)
                        goto finish;
                r = lex_file(stored, diags, &files[n_files++]);
                if (r == -ENOMEM)
                        goto finish;
        }

        load_ctx_init(&c, u, diags);
        policy = find_policy(files, n_files, &c.spec, &c);
        if (policy) {
                pdir = opts && opts->policy_dir ? strdup(opts->policy_dir) : policy_dir_default();
                if (!pdir || asprintf_safe(&u->policy_path, "%s/%s.policy", pdir, policy) < 0) {
                        u->policy_path = NULL;
                        r = -ENOMEM;
                        goto finish;
                }
                if (access(u->policy_path, F_OK) < 0) {
                        load_report(&c, "Policy=%s: no such policy (%s: %s)", policy,
                                    u->policy_path, strerror(errno));
                        r = 0;
                        goto finish;
                }
                r = unit_add_file(u, u->policy_path, &stored);
                if (r < 0)
                        goto finish;
                r = lex_file(stored, diags, &policy_events);
                if (r == -ENOMEM)
                        goto finish;
                r = apply_events(&c, &policy_events, true);
                if (r < 0)
                        goto finish;
        }
        for (size_t i = 0; i < n_files; i++) {
                r = apply_events(&c, &files[i], false);
                if (r < 0)
                        goto finish;
        }
        unit_verify(&c);
        r = 0;

finish:
        for (size_t i = 0; i < n_files; i++)
                file_events_done(&files[i]);
        file_events_done(&policy_events);
        for (size_t i = 0; i < n_dropins; i++) {
                free(dropins[i].name);
                free(dropins[i].path);
        }
        free(dropins);
        if (r == -ENOMEM)
                diag_add(diags, DIAG_ERROR, path, 0, "out of memory");
        if (r < 0)
                return r;
        if (diags->n_errors > errors_before)
                return -EBADMSG;
        unit_pack(&u);
        *ret = TAKE_PTR(u);
        return 0;
}

int unit_load_buffer(const char *name, const char *path, const char *data, size_t size,
                     diag_list *diags, unit **ret) {
        _cleanup_unit_free_ unit *u = NULL;
        file_events f = {};
        size_t errors_before = diags->n_errors;
        const char *stored;
        load_ctx c;
        int r;

        if (!unit_name_is_valid(name, UNIT_NAME_ANY) || !endswith(name, ".service"))
                return -EINVAL;
        r = unit_new(name, &u);
        if (r < 0)
                return r;
        r = unit_add_file(u, path, &stored);
        if (r < 0)
                return r;
        load_ctx_init(&c, u, diags);
        r = lex_buffer(stored, data, size, diags, &f);
        if (r >= 0)
                r = apply_events(&c, &f, false);
        file_events_done(&f);
        if (r < 0 && r != -EFBIG)
                return r;
        unit_verify(&c);
        if (diags->n_errors > errors_before)
                return -EBADMSG;
        unit_pack(&u);
        *ret = TAKE_PTR(u);
        return 0;
}

int policy_check_buffer(const char *path, const char *data, size_t size, diag_list *diags) {
        _cleanup_unit_free_ unit *u = NULL;
        file_events f = {};
        size_t errors_before = diags->n_errors;
        load_ctx c;
        int r;

        /* Specifiers in a policy are expanded for each unit; check them against an example. */
        r = unit_new("example.service", &u);
        if (r < 0)
                return r;
        r = lex_buffer(path, data, size, diags, &f);
        if (r >= 0) {
                load_ctx_init(&c, u, diags);
                r = apply_events(&c, &f, true);
        }
        file_events_done(&f);
        if (r < 0 && r != -EFBIG)
                return r;
        return diags->n_errors > errors_before ? -EBADMSG : 0;
}

int policy_check_file(const char *path, diag_list *diags) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_file_bounded(path, UNIT_FILE_MAX, &data, &size);
        if (r < 0) {
                diag_add(diags, DIAG_ERROR, path, 0, "cannot read: %s", describe_read_error(r));
                return r;
        }
        return policy_check_buffer(path, data, size, diags);
}

const char *service_type_to_string(service_type t) {
        return t < _SERVICE_TYPE_MAX ? service_type_names[t] : NULL;
}

const char *restart_mode_to_string(restart_mode m) {
        return m < _RESTART_MODE_MAX ? restart_mode_names[m] : NULL;
}

const char *kill_mode_to_string(kill_mode m) {
        return m < _KILL_MODE_MAX ? kill_mode_names[m] : NULL;
}
