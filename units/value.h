/* Value parsers for unit and policy files, with systemd's syntax and semantics. */
#pragma once

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "macro.h"

typedef uint64_t usec_t;
#define USEC_INFINITY UINT64_MAX
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MINUTE (60 * USEC_PER_SEC)

/* Every parser returns 0 on success, -EINVAL for malformed input and -ERANGE
 * for a value that does not fit; nothing is written to *ret on failure.
 * Parsers that can fail in several ways also set *reason to a static, human
 * phrase ("unbalanced quotes") that the caller puts into its message. */

/* 1/yes/y/true/t/on → 1, 0/no/n/false/f/off → 0, case-insensitive. */
int parse_boolean(const char *s);

/* Time span: "1min 30s", "1.5h", "500ms", "2 d", "infinity"; components may
 * be separated by whitespace. default_unit is used for bare numbers
 * (USEC_PER_SEC for *Sec= directives). */
int parse_time(const char *s, usec_t default_unit, usec_t *ret);
static inline int parse_sec(const char *s, usec_t *ret) {
        return parse_time(s, USEC_PER_SEC, ret);
}
/* "1min 30s", "infinity", "0"; always NUL-terminates buf. */
char *format_timespan(char *buf, size_t len, usec_t t);

/* Size with base-1024 suffixes B K M G T P E and fractions ("1.5G"). */
int parse_size(const char *s, uint64_t *ret);

/* Decimal unsigned integers; no sign, no leading/trailing whitespace. */
int parse_unsigned(const char *s, unsigned *ret);
int parse_u64(const char *s, uint64_t *ret);

/* "TERM", "SIGTERM", "15", "SIGRTMIN+3", "RTMAX-1"; 1..64. */
int parse_signal(const char *s, int *ret);
/* "SIGTERM", "SIGRTMIN+3"; NULL for an invalid number. */
const char *signal_to_string(int sig);

/* 0..255, or an LSB/BSD name ("TEMPFAIL", "NOTINSTALLED"). */
int parse_exit_status(const char *s, int *ret);

/* Octal mode like "0027" or "027", at most 0777. */
int parse_umask(const char *s, mode_t *ret);

/* "NOFILE" → RLIMIT_NOFILE; -EINVAL if unknown. */
int rlimit_from_string(const char *s);
const char *rlimit_to_string(int resource);
/* Limit value for resource: "soft:hard" or one value for both, "infinity",
 * sizes for byte limits, time spans for CPU (seconds) and RTTIME (usec),
 * a nice value (-20..19) or raw 0..40 for NICE. */
int parse_rlimit(int resource, const char *s, struct rlimit *ret);

/* Splitting words as systemd does. */
enum {
        EXTRACT_UNQUOTE = 1 << 0,   /* "..." and '...' group words, quotes removed */
        EXTRACT_CUNESCAPE = 1 << 1, /* \n \t \xNN \NNN \uXXXX \s ... are decoded */
        EXTRACT_RELAX = 1 << 2,     /* an unterminated quote or trailing \ is accepted */
        EXTRACT_KEEP_SEMICOLON = 1 << 3,
};
/* Extracts the next whitespace-separated word from *p and advances *p.
 * Returns 1 and a newly allocated word in *ret, 0 at the end of input
 * (*ret = NULL), or -EINVAL with *reason set. */
int extract_first_word(const char **p, char **ret, unsigned flags, const char **reason);

/* Decodes C escapes of s[0..len). */
int cunescape(const char *s, size_t len, char **ret, const char **reason);

enum {
        EXEC_IGNORE_FAILURE = 1 << 0, /* "-": a failing exit status counts as success */
        EXEC_NO_ENV_EXPAND = 1 << 1,  /* ":": $VAR is passed verbatim */
        EXEC_PRIVILEGED = 1 << 2,     /* "+": no User=/Group=/sandboxing for this command */
};

typedef struct exec_command {
        char *path;     /* the program: absolute, or a bare name looked up in PATH at start */
        char **argv;    /* NULL-terminated; argv[0] is path unless "@" gave another */
        unsigned flags; /* EXEC_* */
} exec_command;

/* A parsed command is one allocation, argv, that path points into: exec_command_done()
 * frees argv, or path when there is no argv. */
void exec_command_done(exec_command *c);

/* Parses one ExecStart=-style value: prefixes - @ : + (the privilege
 * prefixes ! and !! are refused with a reason), quoting and escapes, and
 * several commands separated by a lone ";" word ("\;" is a literal
 * semicolon argument). Appends each command to *cmds (count *n). An empty value is
 * not handled here (it resets the list in the loader). */
int parse_exec_line(const char *s, exec_command **cmds, size_t *n, const char **reason);

/* Environment=: whitespace-separated, quoted, C-escaped NAME=VALUE words.
 * Every word must be a valid assignment. Appends copies to *env. */
int parse_environment(const char *s, char ***env, const char **reason);
bool env_name_is_valid(const char *s);
bool env_assignment_is_valid(const char *s);

enum {
        UNIT_NAME_PLAIN = 1 << 0,    /* foo.service */
        UNIT_NAME_INSTANCE = 1 << 1, /* foo@bar.service */
        UNIT_NAME_TEMPLATE = 1 << 2, /* foo@.service */
        UNIT_NAME_ANY = UNIT_NAME_PLAIN | UNIT_NAME_INSTANCE | UNIT_NAME_TEMPLATE,
};
#define UNIT_NAME_MAX 255
/* systemd's rules: ≤ 255 bytes, [A-Za-z0-9:_.\\-] and at most one "@",
 * a non-empty prefix and a known unit suffix (".service", ".target", ...). */
bool unit_name_is_valid(const char *s, unsigned flags);
/* The suffix including the dot, or NULL. */
const char *unit_name_suffix(const char *s);

/* Users and groups as systemd accepts them: a name or a numeric id. */
bool user_group_name_is_valid(const char *s);

/* Absolute, no "." or ".." components, no "//", ≤ PATH_MAX. */
bool path_is_normalized_absolute(const char *s);

typedef struct specifier_context {
        const char *name;     /* %n: foo@bar.service */
        const char *prefix;   /* %p: foo */
        const char *instance; /* %i: bar, "" when not an instance */
} specifier_context;

/* Expands %n %N %p %i %%. Any other specifier, or a lone "%" at the end,
 * is -EBADMSG with *bad set to the character after "%" ('\0' at the end). */
int specifier_expand(const char *s, const specifier_context *ctx, char **ret, char *bad);
