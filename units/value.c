/* Value parsers for unit and policy files: systemd's syntax, bounded, without side effects. */
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <strings.h>

#include "strbuf.h"
#include "strv.h"
#include "value.h"

#define DIGITS "0123456789"

/* Signal numbers as the kernel defines them; glibc's SIGRTMIN moves with libc internals. */
#define KERNEL_SIGRTMIN 34
#define KERNEL_SIGRTMAX 64

#define EXEC_ARGS_MAX 4096                 /* words in one command */
#define ENV_ASSIGNMENT_MAX (128 * 1024)    /* one NAME=VALUE, far below ARG_MAX */
#define SPECIFIER_OUTPUT_MAX (1024 * 1024) /* expanded text */
#define UNESCAPE_INPUT_MAX (1024 * 1024)   /* same bound as systemd's longest unit file line */
#define ENV_ENTRIES_MAX 4096               /* variables one service may set */
#define USER_NAME_MAX 256
#define FILENAME_MAX_LEN 255 /* NAME_MAX */

static int fail(const char **reason, int r, const char *text) {
        if (reason)
                *reason = text;
        return r;
}

static bool ascii_isdigit(char c) {
        return c >= '0' && c <= '9';
}

/* Reads one or more decimal digits at s into *ret, refusing values above max. */
static int parse_digits(const char *s, uint64_t max, uint64_t *ret, const char **end) {
        uint64_t v = 0;
        const char *p = s;

        if (!ascii_isdigit(*p))
                return -EINVAL;
        for (; ascii_isdigit(*p); p++) {
                unsigned d = (unsigned) (*p - '0');

                if (v > (max - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        if (end)
                *end = p;
        return 0;
}

/* ---- booleans ---------------------------------------------------------------------------- */

int parse_boolean(const char *s) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

/* ---- time spans -------------------------------------------------------------------------- */

#define USEC_PER_HOUR (60 * USEC_PER_MINUTE)
#define USEC_PER_DAY (24 * USEC_PER_HOUR)
#define USEC_PER_WEEK (7 * USEC_PER_DAY)
#define USEC_PER_MONTH (UINT64_C(2629800) * USEC_PER_SEC) /* 30.44 days */
#define USEC_PER_YEAR (UINT64_C(31557600) * USEC_PER_SEC) /* 365.25 days */

/* Longer spellings come first: matching is by prefix. */
static const struct {
        const char *suffix;
        usec_t usec;
} time_units[] = {
        { "seconds", USEC_PER_SEC },
        { "second", USEC_PER_SEC },
        { "sec", USEC_PER_SEC },
        { "s", USEC_PER_SEC },
        { "minutes", USEC_PER_MINUTE },
        { "minute", USEC_PER_MINUTE },
        { "min", USEC_PER_MINUTE },
        { "months", USEC_PER_MONTH },
        { "month", USEC_PER_MONTH },
        { "M", USEC_PER_MONTH },
        { "msec", USEC_PER_MSEC },
        { "ms", USEC_PER_MSEC },
        { "m", USEC_PER_MINUTE },
        { "hours", USEC_PER_HOUR },
        { "hour", USEC_PER_HOUR },
        { "hr", USEC_PER_HOUR },
        { "h", USEC_PER_HOUR },
        { "days", USEC_PER_DAY },
        { "day", USEC_PER_DAY },
        { "d", USEC_PER_DAY },
        { "weeks", USEC_PER_WEEK },
        { "week", USEC_PER_WEEK },
        { "w", USEC_PER_WEEK },
        { "years", USEC_PER_YEAR },
        { "year", USEC_PER_YEAR },
        { "y", USEC_PER_YEAR },
        { "usec", 1 },
        { "us", 1 },
        { "\xce\xbcs", 1 }, /* U+03BC GREEK SMALL LETTER MU */
        { "\xc2\xb5s", 1 }, /* U+00B5 MICRO SIGN */
};

static const char *time_unit(const char *p, usec_t *ret) {
        for (size_t i = 0; i < ELEMENTSOF(time_units); i++) {
                const char *e = startswith(p, time_units[i].suffix);

                if (e) {
                        *ret = time_units[i].usec;
                        return e;
                }
        }
        return p;
}

int parse_time(const char *s, usec_t default_unit, usec_t *ret) {
        const char *p, *rest;
        usec_t total = 0;
        bool something = false;

        if (!s || default_unit == 0)
                return -EINVAL;

        p = s + strspn(s, WHITESPACE);
        rest = startswith(p, "infinity");
        if (rest) {
                if (rest[strspn(rest, WHITESPACE)] != '\0')
                        return -EINVAL;
                *ret = USEC_INFINITY;
                return 0;
        }

        for (;;) {
                usec_t multiplier = default_unit, whole = 0;
                const char *e, *u, *frac = NULL;
                int r;

                p += strspn(p, WHITESPACE);
                if (*p == '\0')
                        break;

                /* systemd reads the number with strtoll(): a plus sign is fine, a minus never. */
                if (*p == '+' && ascii_isdigit(p[1]))
                        p++;
                if (ascii_isdigit(*p)) {
                        r = parse_digits(p, INT64_MAX, &whole, &e);
                        if (r < 0)
                                return r;
                } else if (*p == '.')
                        e = p;
                else
                        return -EINVAL;

                if (*e == '.') {
                        frac = e + 1;
                        e = frac + strspn(frac, DIGITS);
                }

                u = time_unit(e + strspn(e, WHITESPACE), &multiplier);
                /* "12.34.56" is refused, "12.34 .56" and "1min30s" are not */
                if (u == e && *u != '\0')
                        return -EINVAL;

                if (whole >= USEC_INFINITY / multiplier)
                        return -ERANGE;
                if (whole * multiplier >= USEC_INFINITY - total)
                        return -ERANGE;
                total += whole * multiplier;

                if (frac) {
                        usec_t m = multiplier / 10;
                        const char *b;

                        for (b = frac; ascii_isdigit(*b); b++, m /= 10) {
                                usec_t k = (usec_t) (*b - '0') * m;

                                if (k >= USEC_INFINITY - total)
                                        return -ERANGE;
                                total += k;
                        }
                        /* "3.", "3.sec" and "3. 1" say nothing after the dot */
                        if (b == frac)
                                return -EINVAL;
                }

                p = u;
                something = true;
        }

        if (!something)
                return -EINVAL;
        *ret = total;
        return 0;
}

char *format_timespan(char *buf, size_t len, usec_t t) {
        static const struct {
                const char *suffix;
                usec_t usec;
        } table[] = {
                { "y", USEC_PER_YEAR }, { "month", USEC_PER_MONTH }, { "w", USEC_PER_WEEK },
                { "d", USEC_PER_DAY },  { "h", USEC_PER_HOUR },      { "min", USEC_PER_MINUTE },
                { "s", USEC_PER_SEC },  { "ms", USEC_PER_MSEC },     { "us", 1 },
        };
        char *p = buf;
        size_t l = len;

        if (!buf || len == 0)
                return buf;

        if (t == USEC_INFINITY || t == 0) {
                snprintf(buf, len, "%s", t == 0 ? "0" : "infinity");
                return buf;
        }

        /* Exact to the microsecond ("1s 500ms"), so parse_sec() reads it back. */
        for (size_t i = 0; i < ELEMENTSOF(table) && t > 0; i++) {
                int k;
                size_t n;

                if (t < table[i].usec)
                        continue;
                if (l <= 1)
                        break;
                k = snprintf(p, l, "%s%" PRIu64 "%s", p > buf ? " " : "", t / table[i].usec,
                             table[i].suffix);
                t %= table[i].usec;
                if (k < 0)
                        break;
                n = (size_t) k < l - 1 ? (size_t) k : l - 1;
                l -= n;
                p += n;
        }
        *p = '\0';
        return buf;
}

/* ---- sizes and plain numbers ------------------------------------------------------------- */

int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t factor;
        } table[] = {
                { "E", UINT64_C(1) << 60 },
                { "P", UINT64_C(1) << 50 },
                { "T", UINT64_C(1) << 40 },
                { "G", UINT64_C(1) << 30 },
                { "M", UINT64_C(1) << 20 },
                { "K", UINT64_C(1) << 10 },
                { "B", 1 },
                { "", 1 },
        };
        uint64_t total = 0;
        size_t start = 0;
        const char *p;

        if (!s)
                return -EINVAL;

        /* Components add up, each with a smaller suffix than the one before: "1G 512M". */
        p = s;
        do {
                uint64_t whole, v, f, frac = 0, scale = 1;
                const char *e;
                size_t i;
                int r;

                p += strspn(p, WHITESPACE);
                if (*p == '-')
                        return -EINVAL;
                if (*p == '+' && ascii_isdigit(p[1]))
                        p++;
                r = parse_digits(p, UINT64_MAX, &whole, &e);
                if (r < 0)
                        return r;

                if (*e == '.') {
                        /* digits past 10^-18 cannot change a 64-bit result: skip them */
                        for (e++; ascii_isdigit(*e); e++)
                                if (scale <= UINT64_C(100000000000000000)) {
                                        frac = frac * 10 + (uint64_t) (*e - '0');
                                        scale *= 10;
                                }
                }

                e += strspn(e, WHITESPACE);
                for (i = start; i < ELEMENTSOF(table); i++)
                        if (startswith(e, table[i].suffix))
                                break;
                if (i >= ELEMENTSOF(table))
                        return -EINVAL;

                if (whole > UINT64_MAX / table[i].factor)
                        return -ERANGE;
                v = whole * table[i].factor;
                f = (uint64_t) (((unsigned __int128) frac * table[i].factor) / scale);
                if (f > UINT64_MAX - v)
                        return -ERANGE;
                v += f;
                if (v > UINT64_MAX - total)
                        return -ERANGE;
                total += v;

                p = e + strlen(table[i].suffix);
                start = i + 1;
        } while (*p);

        *ret = total;
        return 0;
}

int parse_u64(const char *s, uint64_t *ret) {
        const char *e;
        uint64_t v;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_digits(s, UINT64_MAX, &v, &e);
        if (r < 0)
                return r;
        if (*e != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_unsigned(const char *s, unsigned *ret) {
        const char *e;
        uint64_t v;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_digits(s, UINT_MAX, &v, &e);
        if (r < 0)
                return r;
        if (*e != '\0')
                return -EINVAL;
        *ret = (unsigned) v;
        return 0;
}

/* ---- signals ----------------------------------------------------------------------------- */

static const char *const signal_names[KERNEL_SIGRTMIN] = {
        [SIGHUP] = "SIGHUP",
        [SIGINT] = "SIGINT",
        [SIGQUIT] = "SIGQUIT",
        [SIGILL] = "SIGILL",
        [SIGTRAP] = "SIGTRAP",
        [SIGABRT] = "SIGABRT",
        [SIGBUS] = "SIGBUS",
        [SIGFPE] = "SIGFPE",
        [SIGKILL] = "SIGKILL",
        [SIGUSR1] = "SIGUSR1",
        [SIGSEGV] = "SIGSEGV",
        [SIGUSR2] = "SIGUSR2",
        [SIGPIPE] = "SIGPIPE",
        [SIGALRM] = "SIGALRM",
        [SIGTERM] = "SIGTERM",
#ifdef SIGSTKFLT
        [SIGSTKFLT] = "SIGSTKFLT",
#endif
        [SIGCHLD] = "SIGCHLD",
        [SIGCONT] = "SIGCONT",
        [SIGSTOP] = "SIGSTOP",
        [SIGTSTP] = "SIGTSTP",
        [SIGTTIN] = "SIGTTIN",
        [SIGTTOU] = "SIGTTOU",
        [SIGURG] = "SIGURG",
        [SIGXCPU] = "SIGXCPU",
        [SIGXFSZ] = "SIGXFSZ",
        [SIGVTALRM] = "SIGVTALRM",
        [SIGPROF] = "SIGPROF",
        [SIGWINCH] = "SIGWINCH",
        [SIGIO] = "SIGIO",
#ifdef SIGPWR
        [SIGPWR] = "SIGPWR",
#endif
        [SIGSYS] = "SIGSYS",
        /* 32 and 33 belong to the C library's threads and have no name */
        [32] = "32",
        [33] = "33",
};

/* Spelled out rather than formatted so that signal_to_string() needs no buffer. */
static const char *const signal_rt_names[KERNEL_SIGRTMAX - KERNEL_SIGRTMIN + 1] = {
        "SIGRTMIN+0",  "SIGRTMIN+1",  "SIGRTMIN+2",  "SIGRTMIN+3",  "SIGRTMIN+4",  "SIGRTMIN+5",
        "SIGRTMIN+6",  "SIGRTMIN+7",  "SIGRTMIN+8",  "SIGRTMIN+9",  "SIGRTMIN+10", "SIGRTMIN+11",
        "SIGRTMIN+12", "SIGRTMIN+13", "SIGRTMIN+14", "SIGRTMIN+15", "SIGRTMIN+16", "SIGRTMIN+17",
        "SIGRTMIN+18", "SIGRTMIN+19", "SIGRTMIN+20", "SIGRTMIN+21", "SIGRTMIN+22", "SIGRTMIN+23",
        "SIGRTMIN+24", "SIGRTMIN+25", "SIGRTMIN+26", "SIGRTMIN+27", "SIGRTMIN+28", "SIGRTMIN+29",
        "SIGRTMIN+30",
};

const char *signal_to_string(int sig) {
        if (sig <= 0 || sig > KERNEL_SIGRTMAX)
                return NULL;
        if (sig >= KERNEL_SIGRTMIN)
                return signal_rt_names[sig - KERNEL_SIGRTMIN];
        return signal_names[sig];
}

int parse_signal(const char *s, int *ret) {
        const char *rest;
        uint64_t v;
        int r;

        if (!s)
                return -EINVAL;

        if (ascii_isdigit(*s)) {
                r = parse_u64(s, &v);
                if (r < 0)
                        return r;
                if (v < 1 || v > KERNEL_SIGRTMAX)
                        return -ERANGE;
                *ret = (int) v;
                return 0;
        }

        s = startswith(s, "SIG") ?: s;

        /* POLL is another name of IO */
        if (streq(s, "POLL")) {
                *ret = SIGIO;
                return 0;
        }
        for (int i = 1; i < KERNEL_SIGRTMIN; i++)
                if (signal_names[i] && startswith(signal_names[i], "SIG") &&
                    streq(signal_names[i] + 3, s)) {
                        *ret = i;
                        return 0;
                }

        rest = startswith(s, "RTMIN");
        if (rest) {
                if (*rest == '\0') {
                        *ret = KERNEL_SIGRTMIN;
                        return 0;
                }
                if (*rest != '+')
                        return -EINVAL;
                r = parse_u64(rest + 1, &v);
                if (r < 0)
                        return r;
                if (v > KERNEL_SIGRTMAX - KERNEL_SIGRTMIN)
                        return -ERANGE;
                *ret = KERNEL_SIGRTMIN + (int) v;
                return 0;
        }

        rest = startswith(s, "RTMAX");
        if (rest) {
                if (*rest == '\0') {
                        *ret = KERNEL_SIGRTMAX;
                        return 0;
                }
                if (*rest != '-')
                        return -EINVAL;
                r = parse_u64(rest + 1, &v);
                if (r < 0)
                        return r;
                if (v > KERNEL_SIGRTMAX - KERNEL_SIGRTMIN)
                        return -ERANGE;
                *ret = KERNEL_SIGRTMAX - (int) v;
                return 0;
        }

        return -EINVAL;
}

/* ---- exit statuses, umask ---------------------------------------------------------------- */

int parse_exit_status(const char *s, int *ret) {
        static const struct {
                const char *name;
                int status;
        } table[] = {
                /* LSB init script actions */
                { "SUCCESS", 0 },
                { "FAILURE", 1 },
                { "INVALIDARGUMENT", 2 },
                { "NOTIMPLEMENTED", 3 },
                { "NOPERMISSION", 4 },
                { "NOTINSTALLED", 5 },
                { "NOTCONFIGURED", 6 },
                { "NOTRUNNING", 7 },
                /* BSD <sysexits.h> */
                { "USAGE", 64 },
                { "DATAERR", 65 },
                { "NOINPUT", 66 },
                { "NOUSER", 67 },
                { "NOHOST", 68 },
                { "UNAVAILABLE", 69 },
                { "SOFTWARE", 70 },
                { "OSERR", 71 },
                { "OSFILE", 72 },
                { "CANTCREAT", 73 },
                { "IOERR", 74 },
                { "TEMPFAIL", 75 },
                { "PROTOCOL", 76 },
                { "NOPERM", 77 },
                { "CONFIG", 78 },
        };
        uint64_t v;
        int r;

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(s, table[i].name)) {
                        *ret = table[i].status;
                        return 0;
                }

        r = parse_u64(s, &v);
        if (r < 0)
                return r;
        if (v > 255)
                return -ERANGE;
        *ret = (int) v;
        return 0;
}

int parse_umask(const char *s, mode_t *ret) {
        unsigned v = 0;

        if (!s || *s == '\0')
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '7')
                        return -EINVAL;
                v = v * 8 + (unsigned) (*p - '0');
                /* stop before the value can wrap on very long input */
                if (v > 0777)
                        return -ERANGE;
        }
        *ret = (mode_t) v;
        return 0;
}

/* ---- resource limits --------------------------------------------------------------------- */

static const char *const rlimit_names[RLIM_NLIMITS] = {
        [RLIMIT_CPU] = "CPU",           [RLIMIT_FSIZE] = "FSIZE",
        [RLIMIT_DATA] = "DATA",         [RLIMIT_STACK] = "STACK",
        [RLIMIT_CORE] = "CORE",         [RLIMIT_RSS] = "RSS",
        [RLIMIT_NOFILE] = "NOFILE",     [RLIMIT_AS] = "AS",
        [RLIMIT_NPROC] = "NPROC",       [RLIMIT_MEMLOCK] = "MEMLOCK",
        [RLIMIT_LOCKS] = "LOCKS",       [RLIMIT_SIGPENDING] = "SIGPENDING",
        [RLIMIT_MSGQUEUE] = "MSGQUEUE", [RLIMIT_NICE] = "NICE",
        [RLIMIT_RTPRIO] = "RTPRIO",     [RLIMIT_RTTIME] = "RTTIME",
};

int rlimit_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(rlimit_names); i++)
                if (rlimit_names[i] && streq(rlimit_names[i], s))
                        return (int) i;
        return -EINVAL;
}

const char *rlimit_to_string(int resource) {
        if (resource < 0 || (size_t) resource >= ELEMENTSOF(rlimit_names))
                return NULL;
        return rlimit_names[resource];
}

static int rlimit_parse_one(int resource, const char *s, rlim_t *ret) {
        uint64_t v;
        usec_t t;
        int r;

        if (streq(s, "infinity")) {
                *ret = RLIM_INFINITY;
                return 0;
        }

        switch (resource) {
        case RLIMIT_FSIZE:
        case RLIMIT_DATA:
        case RLIMIT_STACK:
        case RLIMIT_CORE:
        case RLIMIT_RSS:
        case RLIMIT_AS:
        case RLIMIT_MEMLOCK:
        case RLIMIT_MSGQUEUE:
                r = parse_size(s, &v);
                break;

        case RLIMIT_CPU:
                r = parse_sec(s, &t);
                if (r < 0)
                        return r;
                if (t == USEC_INFINITY) {
                        *ret = RLIM_INFINITY;
                        return 0;
                }
                /* the kernel counts whole seconds; round up, never tighter than asked */
                v = t / USEC_PER_SEC + (t % USEC_PER_SEC != 0);
                break;

        case RLIMIT_RTTIME:
                r = parse_time(s, 1, &t);
                if (r < 0)
                        return r;
                if (t == USEC_INFINITY) {
                        *ret = RLIM_INFINITY;
                        return 0;
                }
                v = t;
                break;

        case RLIMIT_NICE:
                /* A signed value is a nice level (-20..19 ↦ 40..1); a plain number is the raw
                 * limit, where 0 is the kernel's default and maps to no nice level at all. */
                if (*s == '+' || *s == '-') {
                        r = parse_u64(s + 1, &v);
                        if (r < 0)
                                return r;
                        if (*s == '-' ? v > 20 : v > 19)
                                return -ERANGE;
                        v = *s == '-' ? 20 + v : 20 - v;
                } else {
                        r = parse_u64(s, &v);
                        if (r < 0)
                                return r;
                        if (v > 40)
                                return -ERANGE;
                }
                break;

        default:
                r = parse_u64(s, &v);
                break;
        }
        if (r < 0)
                return r;
        if (v >= (uint64_t) RLIM_INFINITY)
                return -ERANGE;
        *ret = (rlim_t) v;
        return 0;
}

int parse_rlimit(int resource, const char *s, struct rlimit *ret) {
        _cleanup_free_ char *soft = NULL;
        const char *colon;
        rlim_t sl, hl;
        int r;

        if (!s || !rlimit_to_string(resource))
                return -EINVAL;

        colon = strchr(s, ':');
        if (!colon) {
                r = rlimit_parse_one(resource, s, &sl);
                if (r < 0)
                        return r;
                hl = sl;
        } else {
                soft = strndup(s, (size_t) (colon - s));
                if (!soft)
                        return -ENOMEM;
                r = rlimit_parse_one(resource, soft, &sl);
                if (r < 0)
                        return r;
                /* systemd reads "5:" as "5:5" */
                if (colon[1] == '\0')
                        hl = sl;
                else {
                        if (strchr(colon + 1, ':'))
                                return -EINVAL;
                        r = rlimit_parse_one(resource, colon + 1, &hl);
                        if (r < 0)
                                return r;
                        if (sl > hl)
                                return -EINVAL;
                }
        }

        *ret = (struct rlimit){ .rlim_cur = sl, .rlim_max = hl };
        return 0;
}

/* ---- UTF-8 ------------------------------------------------------------------------------- */

/* The code points systemd accepts: no surrogates, no non-characters, nothing past U+10FFFF. */
static bool unichar_is_valid(uint32_t c) {
        if (c >= 0x110000)
                return false;
        if ((c & 0xFFFFF800) == 0xD800)
                return false;
        if (c >= 0xFDD0 && c <= 0xFDEF)
                return false;
        if ((c & 0xFFFE) == 0xFFFE)
                return false;
        return true;
}

static size_t utf8_encoded_len(uint32_t c) {
        return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

static size_t utf8_encode(char *out, uint32_t c) {
        size_t n = utf8_encoded_len(c);

        switch (n) {
        case 1:
                out[0] = (char) c;
                break;
        case 2:
                out[0] = (char) (0xc0 | (c >> 6));
                out[1] = (char) (0x80 | (c & 0x3f));
                break;
        case 3:
                out[0] = (char) (0xe0 | (c >> 12));
                out[1] = (char) (0x80 | ((c >> 6) & 0x3f));
                out[2] = (char) (0x80 | (c & 0x3f));
                break;
        default:
                out[0] = (char) (0xf0 | (c >> 18));
                out[1] = (char) (0x80 | ((c >> 12) & 0x3f));
                out[2] = (char) (0x80 | ((c >> 6) & 0x3f));
                out[3] = (char) (0x80 | (c & 0x3f));
                break;
        }
        return n;
}

static bool utf8_is_valid(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                uint32_t c;
                size_t n;

                if (*p < 0x80) {
                        p++;
                        continue;
                }
                if ((*p & 0xe0) == 0xc0) {
                        n = 2;
                        c = *p & 0x1f;
                } else if ((*p & 0xf0) == 0xe0) {
                        n = 3;
                        c = *p & 0x0f;
                } else if ((*p & 0xf8) == 0xf0) {
                        n = 4;
                        c = *p & 0x07;
                } else
                        return false;
                /* the terminating NUL fails the continuation test, so this never reads past it */
                for (size_t i = 1; i < n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        c = (c << 6) | (p[i] & 0x3f);
                }
                if (utf8_encoded_len(c) != n || !unichar_is_valid(c))
                        return false;
                p += n;
        }
        return true;
}

/* ---- escapes and words ------------------------------------------------------------------- */

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Decodes the escape whose letter is at p (after the backslash), reading at most avail bytes.
 * Writes up to 4 bytes to out and returns how many input bytes it used. */
static int unescape_one(const char *p, size_t avail, char *out, size_t *out_len,
                        const char **reason) {
        static const char simple_from[] = "abfnrtv\\\"'s";
        static const char simple_to[] = "\a\b\f\n\r\t\v\\\"' ";
        const char *simple;
        uint32_t c = 0;
        size_t digits;

        if (avail < 1 || *p == '\0')
                return fail(reason, -EINVAL, "trailing backslash");

        simple = strchr(simple_from, *p);
        if (simple) {
                out[0] = simple_to[simple - simple_from];
                *out_len = 1;
                return 1;
        }

        switch (*p) {
        case 'x':
                if (avail < 3)
                        return fail(reason, -EINVAL, "invalid escape sequence");
                for (size_t i = 1; i <= 2; i++) {
                        int h = unhex(p[i]);

                        if (h < 0)
                                return fail(reason, -EINVAL, "invalid escape sequence");
                        c = (c << 4) | (uint32_t) h;
                }
                if (c == 0)
                        return fail(reason, -EINVAL, "escape decodes to a NUL byte");
                /* \xNN is a raw byte, not a code point */
                out[0] = (char) c;
                *out_len = 1;
                return 3;

        case 'u':
        case 'U':
                digits = *p == 'u' ? 4 : 8;
                if (avail < digits + 1)
                        return fail(reason, -EINVAL, "invalid escape sequence");
                for (size_t i = 1; i <= digits; i++) {
                        int h = unhex(p[i]);

                        if (h < 0)
                                return fail(reason, -EINVAL, "invalid escape sequence");
                        c = (c << 4) | (uint32_t) h;
                }
                if (c == 0)
                        return fail(reason, -EINVAL, "escape decodes to a NUL byte");
                if (!unichar_is_valid(c))
                        return fail(reason, -EINVAL, "escape encodes an invalid code point");
                *out_len = utf8_encode(out, c);
                return (int) digits + 1;

        case '0' ... '7':
                /* exactly three octal digits, one byte */
                if (avail < 3)
                        return fail(reason, -EINVAL, "invalid escape sequence");
                for (size_t i = 0; i < 3; i++) {
                        if (p[i] < '0' || p[i] > '7')
                                return fail(reason, -EINVAL, "invalid escape sequence");
                        c = (c << 3) | (uint32_t) (p[i] - '0');
                }
                if (c == 0)
                        return fail(reason, -EINVAL, "escape decodes to a NUL byte");
                if (c > 255)
                        return fail(reason, -EINVAL, "invalid escape sequence");
                out[0] = (char) c;
                *out_len = 1;
                return 3;

        default:
                return fail(reason, -EINVAL, "invalid escape sequence");
        }
}

/* EXTRACT_KEEP_SEMICOLON: with EXTRACT_CUNESCAPE, "\;" stays the two characters "\;". It is not a
 * C escape; systemd keeps it verbatim in ExecStart= words (after a warning), which matters for
 * "sh -c 'a\;b'", where turning it into ";" would let the shell run a second command. */
int extract_first_word(const char **p, char **ret, unsigned flags, const char **reason) {
        _cleanup_(strbuf_done) strbuf b = {};
        const char *c;
        char quote = 0;
        int r;

        if (!p || !ret)
                return -EINVAL;
        if (!*p) {
                *ret = NULL;
                return 0;
        }

        c = *p + strspn(*p, WHITESPACE);
        if (*c == '\0') {
                *p = c;
                *ret = NULL;
                return 0;
        }

        /* a word was found, so even "" yields a string */
        r = strbuf_reserve(&b, 0);
        if (r < 0)
                return r;
        b.s[0] = '\0';

        for (;;) {
                char ch = *c;

                if (ch == '\0') {
                        if (quote && !(flags & EXTRACT_RELAX))
                                return fail(reason, -EINVAL, "unbalanced quotes");
                        break;
                }

                if (ch == '\\') {
                        char out[4];
                        size_t n;

                        c++;
                        if (*c == '\0') {
                                if (flags & EXTRACT_RELAX)
                                        break;
                                return fail(reason, -EINVAL, "trailing backslash");
                        }
                        if ((flags & EXTRACT_CUNESCAPE) && (flags & EXTRACT_KEEP_SEMICOLON) &&
                            *c == ';') {
                                r = strbuf_append(&b, "\\;", 2);
                                c++;
                        } else if (flags & EXTRACT_CUNESCAPE) {
                                r = unescape_one(c, SIZE_MAX, out, &n, reason);
                                if (r < 0)
                                        return r;
                                c += r;
                                r = strbuf_append(&b, out, n);
                        } else {
                                /* without unescaping, a backslash takes the next character as is */
                                r = strbuf_append(&b, c, 1);
                                c++;
                        }
                        if (r < 0)
                                return r;
                        continue;
                }

                if (quote) {
                        if (ch == quote)
                                quote = 0;
                        else {
                                r = strbuf_append(&b, c, 1);
                                if (r < 0)
                                        return r;
                        }
                        c++;
                        continue;
                }

                if ((flags & EXTRACT_UNQUOTE) && (ch == '\'' || ch == '"')) {
                        quote = ch;
                        c++;
                        continue;
                }

                if (strchr(WHITESPACE, ch))
                        break;

                r = strbuf_append(&b, c, 1);
                if (r < 0)
                        return r;
                c++;
        }

        *p = c + strspn(c, WHITESPACE);
        *ret = strbuf_steal(&b);
        return 1;
}

int cunescape(const char *s, size_t len, char **ret, const char **reason) {
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;

        if (!ret || (!s && len > 0))
                return -EINVAL;
        if (len > UNESCAPE_INPUT_MAX)
                return fail(reason, -E2BIG, "value too long");

        /* every escape is at least as long as what it decodes to */
        buf = malloc(len + 1);
        if (!buf)
                return -ENOMEM;

        for (size_t i = 0; i < len;) {
                size_t out_len;
                int r;

                if (s[i] == '\0')
                        return fail(reason, -EINVAL, "NUL byte in input");
                if (s[i] != '\\') {
                        buf[n++] = s[i++];
                        continue;
                }
                if (i + 1 >= len)
                        return fail(reason, -EINVAL, "trailing backslash");
                if (s[i + 1] == '\0')
                        return fail(reason, -EINVAL, "NUL byte in input");
                r = unescape_one(s + i + 1, len - i - 1, buf + n, &out_len, reason);
                if (r < 0)
                        return r;
                i += 1 + (size_t) r;
                n += out_len;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

/* ---- command lines ----------------------------------------------------------------------- */

void exec_command_done(exec_command *c) {
        if (!c)
                return;
        /* A parsed command is one block (see exec_command_pack()); path is inside it. */
        if (c->argv)
                free(c->argv);
        else
                free(c->path);
        *c = (exec_command){};
}

/* Copies path and argv into one allocation: the argv array, then its strings, then path
 * unless it is the same as argv[0]. Units keep thousands of commands, mostly of a few short
 * words, and each allocation has its own overhead. */
static int exec_command_pack(const char *path, char *const *argv, unsigned flags,
                             exec_command *ret) {
        size_t n = strv_length(argv), size = (n + 1) * sizeof(char *);
        bool path_is_argv0 = n > 0 && streq(path, argv[0]);
        char **block, *p;

        for (size_t i = 0; i < n; i++)
                size += strlen(argv[i]) + 1;
        if (!path_is_argv0)
                size += strlen(path) + 1;
        block = malloc(size);
        if (!block)
                return -ENOMEM;
        p = (char *) (block + n + 1);
        for (size_t i = 0; i < n; i++) {
                size_t l = strlen(argv[i]) + 1;

                block[i] = memcpy(p, argv[i], l);
                p += l;
        }
        block[n] = NULL;
        *ret = (exec_command){
                .path = path_is_argv0 ? block[0] : memcpy(p, path, strlen(path) + 1),
                .argv = block,
                .flags = flags,
        };
        return 0;
}

static bool filename_is_valid(const char *s) {
        return !isempty(s) && !streq(s, ".") && !streq(s, "..") && !strchr(s, '/') &&
               strlen(s) <= FILENAME_MAX_LEN;
}

/* Absolute, every component a valid file name length, shorter than PATH_MAX. */
static bool absolute_path_is_valid(const char *s) {
        size_t component = 0, len = 0;

        if (!s || s[0] != '/')
                return false;
        for (const char *p = s; *p; p++) {
                if (++len >= PATH_MAX)
                        return false;
                if (*p == '/')
                        component = 0;
                else if (++component > FILENAME_MAX_LEN)
                        return false;
        }
        return true;
}

/* No control characters, quotes or backslashes, as systemd's string_is_safe(). */
static bool string_is_safe(const char *s) {
        for (const char *p = s; *p; p++)
                if ((*p > 0 && *p < ' ') || strchr("\"'\\\x7f", *p))
                        return false;
        return true;
}

static bool path_implies_directory(const char *s) {
        return streq(s, ".") || streq(s, "..") || endswith(s, "/") || endswith(s, "/.") ||
               endswith(s, "/..");
}

/* Drops empty and "." components of an absolute path in place ("/usr//bin/./x" → "/usr/bin/x"). */
static void path_simplify(char *s) {
        char *out = s + 1;
        const char *in = s + 1;

        while (*in) {
                size_t l = strcspn(in, "/");

                if (l == 0 || (l == 1 && in[0] == '.')) {
                        in += l + (in[l] == '/');
                        continue;
                }
                if (out > s + 1)
                        *out++ = '/';
                memmove(out, in, l);
                out += l;
                in += l + (in[l] == '/');
        }
        *out = '\0';
}

/* Appends s (owned on success) to the NULL-terminated list *l of *n entries. strv_push() counts
 * the list on every call; this grows geometrically so that long lines stay linear. */
static int list_append(char ***l, size_t *n, size_t *cap, char *s) {
        if (*n + 2 > *cap) {
                size_t c = *cap ? *cap * 2 : 8;
                char **t = reallocarray(*l, c, sizeof(char *));

                if (!t)
                        return -ENOMEM;
                *l = t;
                *cap = c;
        }
        (*l)[(*n)++] = s;
        (*l)[*n] = NULL;
        return 0;
}

static bool exec_separator_at(const char *p, size_t skip) {
        return p[skip] == '\0' || strchr(WHITESPACE, p[skip]);
}

static void exec_commands_free(exec_command *cmds, size_t n) {
        for (size_t i = 0; i < n; i++)
                exec_command_done(cmds + i);
        free(cmds);
}

/* Parses one command starting with its already extracted first word. */
static int exec_command_parse(const char *first, const char **p, exec_command *ret, bool *semicolon,
                              const char **reason) {
        _cleanup_free_ char *path = NULL;
        _cleanup_strv_free_ char **argv = NULL;
        const unsigned word_flags = EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE | EXTRACT_KEEP_SEMICOLON;
        unsigned flags = 0;
        bool separate_argv0 = false;
        size_t n_argv = 0, cap_argv = 0;
        const char *f;
        int r;

        for (f = first;; f++) {
                if (*f == '-' && !(flags & EXEC_IGNORE_FAILURE))
                        flags |= EXEC_IGNORE_FAILURE;
                else if (*f == '@' && !separate_argv0)
                        separate_argv0 = true;
                else if (*f == ':' && !(flags & EXEC_NO_ENV_EXPAND))
                        flags |= EXEC_NO_ENV_EXPAND;
                else if (*f == '+' && !(flags & EXEC_PRIVILEGED))
                        flags |= EXEC_PRIVILEGED;
                else if (*f == '!')
                        return fail(reason, -EINVAL,
                                    "the ! and !! prefixes (ambient capabilities) are not "
                                    "supported by vigil");
                else if (*f == '|')
                        return fail(reason, -EINVAL,
                                    "the | prefix (run through the user's shell) is not supported "
                                    "by vigil");
                else
                        break;
        }

        if (*f == '\0')
                return fail(reason, -EINVAL, "empty executable path");
        if (!string_is_safe(f))
                return fail(reason, -EINVAL,
                            "executable path contains quotes, backslashes or control characters");
        if (path_implies_directory(f))
                return fail(reason, -EINVAL, "executable path refers to a directory");
        if (f[0] == '/' ? !absolute_path_is_valid(f) : !filename_is_valid(f))
                return fail(reason, -EINVAL, "path must be absolute or a plain program name");

        path = strdup(f);
        if (!path)
                return -ENOMEM;
        if (!separate_argv0) {
                /* argv[0] keeps the spelling the user wrote, the path is tidied */
                char *argv0 = strdup(path);

                if (!argv0)
                        return -ENOMEM;
                r = list_append(&argv, &n_argv, &cap_argv, argv0);
                if (r < 0) {
                        free(argv0);
                        return r;
                }
        }
        if (path[0] == '/')
                path_simplify(path);

        *semicolon = false;
        while (!isempty(*p)) {
                char *word = NULL;

                /* An unquoted lone ";" ends the command; a lone "\;" is a literal ";" argument.
                 * Both are checked on the raw text because unquoting would hide the difference. */
                if ((*p)[0] == ';' && exec_separator_at(*p, 1)) {
                        *p += 1;
                        *p += strspn(*p, WHITESPACE);
                        *semicolon = true;
                        break;
                }
                if ((*p)[0] == '\\' && (*p)[1] == ';' && exec_separator_at(*p, 2)) {
                        *p += 2;
                        *p += strspn(*p, WHITESPACE);
                        word = strdup(";");
                        if (!word)
                                return -ENOMEM;
                } else {
                        r = extract_first_word(p, &word, word_flags, reason);
                        if (r < 0)
                                return r;
                        if (r == 0)
                                break;
                }

                if (n_argv >= EXEC_ARGS_MAX) {
                        free(word);
                        return fail(reason, -E2BIG, "too many arguments (at most 4096)");
                }
                r = list_append(&argv, &n_argv, &cap_argv, word);
                if (r < 0) {
                        free(word);
                        return r;
                }
        }

        if (n_argv == 0)
                return fail(reason, -EINVAL, "the @ prefix needs argv[0] after the path");

        return exec_command_pack(path, argv, flags, ret);
}

int parse_exec_line(const char *s, exec_command **cmds, size_t *n, const char **reason) {
        const unsigned word_flags = EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE | EXTRACT_KEEP_SEMICOLON;
        exec_command *parsed = NULL, *grown;
        size_t n_parsed = 0, cap_parsed = 0;
        const char *p = s;
        bool semicolon;
        int r;

        if (!s || !cmds || !n)
                return -EINVAL;

        /* Commands are collected apart and only added at the end, so a failure changes nothing. */
        do {
                _cleanup_free_ char *first = NULL;
                exec_command c;

                semicolon = false;
                r = extract_first_word(&p, &first, word_flags, reason);
                if (r < 0)
                        goto fail;
                if (r == 0)
                        break;

                /* an empty command (";" where a program is expected) is skipped, as systemd does */
                if (streq(first, ";")) {
                        semicolon = true;
                        continue;
                }

                r = exec_command_parse(first, &p, &c, &semicolon, reason);
                if (r < 0)
                        goto fail;

                if (n_parsed == cap_parsed) {
                        size_t cap = cap_parsed ? cap_parsed * 2 : 4;

                        grown = reallocarray(parsed, cap, sizeof(exec_command));
                        if (!grown) {
                                exec_command_done(&c);
                                r = -ENOMEM;
                                goto fail;
                        }
                        parsed = grown;
                        cap_parsed = cap;
                }
                parsed[n_parsed++] = c;
        } while (semicolon);

        if (n_parsed == 0)
                return 0;

        grown = reallocarray(*cmds, *n + n_parsed, sizeof(exec_command));
        if (!grown) {
                r = -ENOMEM;
                goto fail;
        }
        memcpy(grown + *n, parsed, n_parsed * sizeof(exec_command));
        free(parsed);
        *cmds = grown;
        *n += n_parsed;
        return 0;

fail:
        exec_commands_free(parsed, n_parsed);
        return r;
}

/* ---- environment ------------------------------------------------------------------------- */

static bool env_name_is_valid_n(const char *s, size_t n) {
        if (n == 0 || n > ENV_ASSIGNMENT_MAX || ascii_isdigit(s[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(ascii_isdigit(s[i]) || s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') ||
                      (s[i] >= 'A' && s[i] <= 'Z')))
                        return false;
        return true;
}

bool env_name_is_valid(const char *s) {
        return s && env_name_is_valid_n(s, strnlen(s, ENV_ASSIGNMENT_MAX + 1));
}

static const char *env_assignment_problem(const char *s) {
        const char *eq;

        if (strnlen(s, ENV_ASSIGNMENT_MAX + 1) > ENV_ASSIGNMENT_MAX)
                return "environment assignment too long";
        eq = strchr(s, '=');
        if (!eq)
                return "invalid environment assignment (expected NAME=VALUE)";
        if (!env_name_is_valid_n(s, (size_t) (eq - s)))
                return "invalid environment variable name";
        /* systemd requires values to be valid UTF-8 */
        if (!utf8_is_valid(eq + 1))
                return "environment value is not valid UTF-8";
        return NULL;
}

bool env_assignment_is_valid(const char *s) {
        return s && !env_assignment_problem(s);
}

int parse_environment(const char *s, char ***env, const char **reason) {
        _cleanup_strv_free_ char **words = NULL, **merged = NULL;
        size_t n_words = 0, cap_words = 0, n_merged;
        const char *p = s;
        int r;

        if (!s || !env)
                return -EINVAL;

        for (;;) {
                char *word = NULL;
                const char *problem;

                r = extract_first_word(&p, &word, EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE, reason);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                problem = env_assignment_problem(word);
                if (!problem && n_words >= ENV_ENTRIES_MAX)
                        problem = "too many environment variables (at most 4096)";
                if (problem) {
                        free(word);
                        return fail(reason, n_words >= ENV_ENTRIES_MAX ? -E2BIG : -EINVAL, problem);
                }
                r = list_append(&words, &n_words, &cap_words, word);
                if (r < 0) {
                        free(word);
                        return r;
                }
        }
        if (n_words == 0)
                return 0;

        /* Work on a copy so that a failed allocation leaves *env untouched. A later assignment of
         * a name replaces the earlier one in place, as systemd's Environment= does. */
        merged = strv_copy(*env);
        if (!merged)
                return -ENOMEM;
        n_merged = strv_length(merged);
        STRV_FOREACH(w, words) {
                bool is_new = !strv_env_get_n(merged, *w, strcspn(*w, "="));
                char *copy;

                if (is_new && n_merged >= ENV_ENTRIES_MAX)
                        return fail(reason, -E2BIG,
                                    "too many environment variables (at most 4096)");
                copy = strdup(*w);
                if (!copy)
                        return -ENOMEM;
                r = strv_env_replace(&merged, copy);
                if (r < 0) {
                        free(copy);
                        return r;
                }
                n_merged += is_new;
        }

        strv_free(*env);
        *env = TAKE_PTR(merged);
        return 0;
}

/* ---- names and paths --------------------------------------------------------------------- */

const char *unit_name_suffix(const char *s) {
        static const char *const types[] = {
                "service", "socket", "target", "device", "mount", "automount",
                "swap",    "timer",  "path",   "slice",  "scope",
        };
        const char *dot;

        if (!s)
                return NULL;
        dot = strrchr(s, '.');
        if (!dot)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (streq(dot + 1, types[i]))
                        return dot;
        return NULL;
}

bool unit_name_is_valid(const char *s, unsigned flags) {
        const char *suffix, *at = NULL;

        if (isempty(s) || flags == 0)
                return false;
        if (strnlen(s, UNIT_NAME_MAX + 1) > UNIT_NAME_MAX)
                return false;
        suffix = unit_name_suffix(s);
        if (!suffix || suffix == s)
                return false;

        for (const char *p = s; p < suffix; p++) {
                if (*p == '@') {
                        if (at)
                                return false;
                        at = p;
                        continue;
                }
                if (!(ascii_isdigit(*p) || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      strchr(":_.\\-", *p)))
                        return false;
        }
        if (at == s)
                return false;

        if (!at)
                return flags & UNIT_NAME_PLAIN;
        if (suffix > at + 1)
                return flags & UNIT_NAME_INSTANCE;
        return flags & UNIT_NAME_TEMPLATE;
}

bool user_group_name_is_valid(const char *s) {
        uint64_t uid;
        size_t len;

        if (isempty(s))
                return false;
        len = strnlen(s, USER_NAME_MAX + 1);
        if (len > USER_NAME_MAX)
                return false;

        /* A number is a uid or gid; (uid_t) -1 and the 16-bit (uid_t) -1 are never real ids. */
        if (strspn(s, DIGITS) == len) {
                if (parse_u64(s, &uid) < 0)
                        return false;
                return uid < UINT32_MAX && uid != 65535;
        }

        /* systemd's relaxed rules: whatever a passwd entry can hold without confusing anyone */
        if (s[0] == ' ' || s[len - 1] == ' ' || s[0] == '-')
                return false;
        if (streq(s, ".") || streq(s, ".."))
                return false;
        if (!utf8_is_valid(s))
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f || *p == ':' || *p == '/')
                        return false;
        return true;
}

bool path_is_normalized_absolute(const char *s) {
        size_t len;

        if (!s || s[0] != '/')
                return false;
        len = strnlen(s, PATH_MAX);
        if (len >= PATH_MAX)
                return false;
        if (len > 1 && s[len - 1] == '/')
                return false;

        for (const char *p = s + 1; *p;) {
                size_t l = strcspn(p, "/");

                if (l == 0 || (l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                p += l;
                if (*p == '/')
                        p++;
        }
        return true;
}

/* ---- specifiers -------------------------------------------------------------------------- */

int specifier_expand(const char *s, const specifier_context *ctx, char **ret, char *bad) {
        _cleanup_(strbuf_done) strbuf b = {};
        const char *name, *prefix, *instance, *suffix;
        int r;

        if (!s || !ret)
                return -EINVAL;

        name = ctx && ctx->name ? ctx->name : "";
        prefix = ctx && ctx->prefix ? ctx->prefix : "";
        instance = ctx && ctx->instance ? ctx->instance : "";
        suffix = unit_name_suffix(name);

        r = strbuf_reserve(&b, 0);
        if (r < 0)
                return r;
        b.s[0] = '\0';

        for (const char *p = s; *p;) {
                const char *value;
                size_t l;

                if (*p != '%') {
                        l = strcspn(p, "%");
                        value = p;
                        p += l;
                } else {
                        switch (p[1]) {
                        case 'n':
                                value = name;
                                l = strlen(name);
                                break;
                        case 'N':
                                value = name;
                                l = suffix ? (size_t) (suffix - name) : strlen(name);
                                break;
                        case 'p':
                                value = prefix;
                                l = strlen(prefix);
                                break;
                        case 'i':
                                value = instance;
                                l = strlen(instance);
                                break;
                        case '%':
                                value = "%";
                                l = 1;
                                break;
                        default:
                                if (bad)
                                        *bad = p[1];
                                return -EBADMSG;
                        }
                        p += 2;
                }

                if (l > SPECIFIER_OUTPUT_MAX - b.n)
                        return -E2BIG;
                r = strbuf_append(&b, value, l);
                if (r < 0)
                        return r;
        }

        *ret = strbuf_steal(&b);
        return 0;
}
