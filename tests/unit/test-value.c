/* Unit tests for units/value.c: every value parser against systemd's behaviour and its edges. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strv.h"
#include "tap.h"
#include "value.h"

#define SEC USEC_PER_SEC
#define MIN USEC_PER_MINUTE
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

/* A description-safe copy of s: TAP needs one line per result. Rotating buffers, test only. */
static const char *printable(const char *s) {
        static char bufs[4][160];
        static unsigned next;
        char *b = bufs[next++ % 4];
        size_t n = 0;

        for (; *s && n < sizeof(bufs[0]) - 5; s++) {
                unsigned char c = (unsigned char) *s;

                if (c < ' ' || c >= 0x7f)
                        n += (size_t) snprintf(b + n, sizeof(bufs[0]) - n, "\\x%02x", c);
                else
                        b[n++] = (char) c;
        }
        b[n] = '\0';
        return b;
}

/* -errno, or the parsed value when it succeeded; keeps each check on one line */
static long long time_of(const char *s, usec_t unit) {
        usec_t t = 12345;
        int r = parse_time(s, unit, &t);

        if (r < 0)
                return t == 12345 ? r : -9999; /* a failure must not write *ret */
        return (long long) t;
}

static long long size_of(const char *s) {
        uint64_t v = 777;
        int r = parse_size(s, &v);

        if (r < 0)
                return v == 777 ? r : -9999;
        return (long long) v;
}

static long long signal_of(const char *s) {
        int sig = -77;
        int r = parse_signal(s, &sig);

        if (r < 0)
                return sig == -77 ? r : -9999;
        return sig;
}

static long long status_of(const char *s) {
        int st = -77;
        int r = parse_exit_status(s, &st);

        if (r < 0)
                return st == -77 ? r : -9999;
        return st;
}

static long long umask_of(const char *s) {
        mode_t m = 01234;
        int r = parse_umask(s, &m);

        if (r < 0)
                return m == 01234 ? r : -9999;
        return m;
}

/* "soft:hard" as text, or "E<errno>" */
static const char *rlimit_of(int resource, const char *s, char *buf, size_t len) {
        struct rlimit rl = { 5, 5 };
        int r = parse_rlimit(resource, s, &rl);

        if (r < 0) {
                snprintf(buf, len, "E%d%s", -r, rl.rlim_cur == 5 && rl.rlim_max == 5 ? "" : "!");
                return buf;
        }
        if (rl.rlim_cur == RLIM_INFINITY && rl.rlim_max == RLIM_INFINITY)
                snprintf(buf, len, "inf:inf");
        else if (rl.rlim_max == RLIM_INFINITY)
                snprintf(buf, len, "%llu:inf", (unsigned long long) rl.rlim_cur);
        else
                snprintf(buf, len, "%llu:%llu", (unsigned long long) rl.rlim_cur,
                         (unsigned long long) rl.rlim_max);
        return buf;
}

/* The words of s joined with "|", "E<errno>:<reason>" on failure. Caller frees. */
static char *words_of(const char *s, unsigned flags) {
        char *out = strdup(""), *w = NULL, *joined;
        const char *p = s, *reason = NULL;
        size_t count = 0;
        int r;

        while ((r = extract_first_word(&p, &w, flags, &reason)) > 0) {
                if (asprintf(&joined, "%s%s%s", out, count++ > 0 ? "|" : "", w) < 0)
                        abort();
                free(out);
                free(w);
                out = joined;
        }
        if (r < 0) {
                free(out);
                if (asprintf(&out, "E%d:%s", -r, reason ? reason : "(none)") < 0)
                        abort();
        } else if (w)
                out[0] = '?'; /* the end must leave *ret NULL */
        return out;
}

/* Exec commands as "FLAGS path [argv0 argv1...]" joined with " ; " */
static char *describe_exec(const exec_command *c, size_t n) {
        char *out = strdup(""), *t;

        for (size_t i = 0; i < n; i++) {
                if (asprintf(&t, "%s%s%s%s%s%s [", out, i ? " ; " : "",
                             c[i].flags & EXEC_IGNORE_FAILURE ? "-" : "",
                             c[i].flags & EXEC_NO_ENV_EXPAND ? ":" : "",
                             c[i].flags & EXEC_PRIVILEGED ? "+" : "", c[i].path) < 0)
                        abort();
                free(out);
                out = t;
                STRV_FOREACH(a, c[i].argv) {
                        if (asprintf(&t, "%s%s%s", out, a == c[i].argv ? "" : " ", *a) < 0)
                                abort();
                        free(out);
                        out = t;
                }
                if (asprintf(&t, "%s]", out) < 0)
                        abort();
                free(out);
                out = t;
        }
        return out;
}

static void free_exec(exec_command *c, size_t n) {
        for (size_t i = 0; i < n; i++)
                exec_command_done(c + i);
        free(c);
}

/* Parses s into a fresh list; returns its description or "E<errno>:<reason>". */
static char *exec_of(const char *s) {
        exec_command *c = NULL;
        size_t n = 0;
        const char *reason = NULL;
        char *out;
        int r;

        r = parse_exec_line(s, &c, &n, &reason);
        if (r < 0) {
                if (asprintf(&out, "E%d:%s%s", -r, reason ? reason : "(none)",
                             c || n ? " (changed!)" : "") < 0)
                        abort();
                return out;
        }
        out = describe_exec(c, n);
        free_exec(c, n);
        return out;
}

#define CHECK_STR(call, want, ...)                                                                 \
        do {                                                                                       \
                char *_s = (call);                                                                 \
                tap_streq(_s, want, __VA_ARGS__);                                                  \
                free(_s);                                                                          \
        } while (0)

static void test_boolean(void) {
        static const char *const yes[] = { "1",  "yes", "y",    "true", "t",
                                           "on", "YES", "True", "On",   "Y" };
        static const char *const no[] = { "0",   "no", "n",     "false", "f",
                                          "off", "NO", "False", "OFF",   "F" };
        static const char *const bad[] = { "",    " yes", "yes ", "2",  "enable",
                                           "tru", "oui",  "10",   "-1", "yess" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                tap_inteq(parse_boolean(yes[i]), 1, "boolean \"%s\" is true", yes[i]);
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                tap_inteq(parse_boolean(no[i]), 0, "boolean \"%s\" is false", no[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                tap_inteq(parse_boolean(bad[i]), -EINVAL, "boolean \"%s\" is refused", bad[i]);
        tap_inteq(parse_boolean(NULL), -EINVAL, "boolean NULL is refused");
}

static void test_time(void) {
        static const struct {
                const char *s;
                usec_t unit;
                long long want;
        } cases[] = {
                { "0", SEC, 0 },
                { "5", SEC, 5 * SEC },
                { "5", 1, 5 },
                { "5", USEC_PER_MSEC, 5000 },
                { "5s", 1, 5 * SEC },
                { "5 s", SEC, 5 * SEC },
                { "5sec", SEC, 5 * SEC },
                { "5second", SEC, 5 * SEC },
                { "5seconds", SEC, 5 * SEC },
                { "1min 30s", SEC, 90 * SEC },
                { "1min30s", SEC, 90 * SEC },
                { "1min\t30s", SEC, 90 * SEC },
                { "5 min", SEC, 5 * MIN },
                { "2m", SEC, 2 * MIN },
                { "2minute", SEC, 2 * MIN },
                { "2minutes", SEC, 2 * MIN },
                { "1.5h", SEC, 90 * MIN },
                { "1h", SEC, HOUR },
                { "1hr", SEC, HOUR },
                { "1hour", SEC, HOUR },
                { "2hours", SEC, 2 * HOUR },
                { ".5s", SEC, SEC / 2 },
                { "0.5", SEC, SEC / 2 },
                { "500ms", SEC, 500000 },
                { "500msec", SEC, 500000 },
                { "10us", SEC, 10 },
                { "10usec", SEC, 10 },
                { "10\xc2\xb5s", SEC, 10 },
                { "10\xce\xbcs", SEC, 10 },
                { "2d", SEC, 2 * DAY },
                { "2 d", SEC, 2 * DAY },
                { "1day", SEC, DAY },
                { "3days", SEC, 3 * DAY },
                { "1w", SEC, 7 * DAY },
                { "1week", SEC, 7 * DAY },
                { "2weeks", SEC, 14 * DAY },
                { "1M", SEC, 2629800 * SEC },
                { "1month", SEC, 2629800 * SEC },
                { "2months", SEC, 2 * 2629800 * SEC },
                { "1y", SEC, 31557600 * SEC },
                { "1year", SEC, 31557600 * SEC },
                { "2years", SEC, 2 * 31557600 * SEC },
                { "  5s  ", SEC, 5 * SEC },
                { "\t1min\n", SEC, MIN },
                { "1h 2min 3s 4ms 5us", SEC, HOUR + 2 * MIN + 3 * SEC + 4000 + 5 },
                { "1.5", USEC_PER_MSEC, 1500 },
                { "1.0000001s", SEC, SEC },
                { "0.000001s", SEC, 1 },
                { "12.34 .56", SEC, 12900000 },
                { "+5s", SEC, 5 * SEC },
                { "5s 5s", SEC, 10 * SEC },
                { "infinity", SEC, (long long) USEC_INFINITY },
                { "  infinity  ", SEC, (long long) USEC_INFINITY },
                { "1.5min", SEC, 90 * SEC },
                { "0.25d", SEC, 6 * HOUR },
                /* errors */
                { "", SEC, -EINVAL },
                { "   ", SEC, -EINVAL },
                { "-1", SEC, -EINVAL },
                { "-0", SEC, -EINVAL },
                { "5s -1s", SEC, -EINVAL },
                { "abc", SEC, -EINVAL },
                { "5x", SEC, -EINVAL },
                { "5 x", SEC, -EINVAL },
                { "5mins", SEC, -EINVAL },
                { "5S", SEC, -EINVAL },
                { "5.", SEC, -EINVAL },
                { "5.s", SEC, -EINVAL },
                { ".", SEC, -EINVAL },
                { "3. 1", SEC, -EINVAL },
                { "12.34.56", SEC, -EINVAL },
                { "+", SEC, -EINVAL },
                { "+.5s", SEC, -EINVAL },
                { "infinity 5s", SEC, -EINVAL },
                { "5s infinity", SEC, -EINVAL },
                { "infinityx", SEC, -EINVAL },
                { "Infinity", SEC, -EINVAL },
                { "0x10", SEC, -EINVAL },
                { "s", SEC, -EINVAL },
                { "1e3", SEC, -EINVAL },
                /* overflow */
                { "18446744073709551616", SEC, -ERANGE },
                { "600000000000000000000s", SEC, -ERANGE },
                { "99999999999999999999h", SEC, -ERANGE },
                { "10000000000000000000us", SEC, -ERANGE },
                { "9223372036854775807us", SEC, 9223372036854775807LL },
                { "18446744073709s", SEC, -ERANGE },
                { "18446744073708s", SEC, (long long) (18446744073708ULL * 1000000) },
                { "584555y", SEC, -ERANGE },
                { "9223372036854775807us 9223372036854775807us", SEC,
                  (long long) (UINT64_MAX - 1) },
                { "9223372036854775807us 9223372036854775807us 1us", SEC, -ERANGE },
                /* systemd refuses a component whose value reaches UINT64_MAX / unit */
                { "584542y", SEC, -ERANGE },
                { "584541y", SEC, (long long) (UINT64_C(584541) * 31557600 * 1000000) },
                { "18446744073708s 2s", SEC, -ERANGE },
                { "18446744073708s 1s", SEC, (long long) (18446744073709ULL * 1000000) },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                tap_inteq(time_of(cases[i].s, cases[i].unit), cases[i].want,
                          "parse_time(\"%s\", %llu)", printable(cases[i].s),
                          (unsigned long long) cases[i].unit);

        usec_t t = 7;
        tap_inteq(parse_sec("1min", &t), 0, "parse_sec succeeds");
        tap_inteq(t, MIN, "parse_sec uses seconds for bare units");
        tap_inteq(parse_sec("90", &t), 0, "parse_sec bare number");
        tap_inteq(t, 90 * SEC, "parse_sec bare number is seconds");
        tap_inteq(parse_time(NULL, SEC, &t), -EINVAL, "parse_time NULL");
}

static void test_format_timespan(void) {
        static const struct {
                usec_t t;
                const char *want;
        } cases[] = {
                { 0, "0" },
                { USEC_INFINITY, "infinity" },
                { 1, "1us" },
                { 500000, "500ms" },
                { SEC, "1s" },
                { 90 * SEC, "1min 30s" },
                { HOUR, "1h" },
                { DAY + HOUR + MIN + SEC, "1d 1h 1min 1s" },
                { 1500000, "1s 500ms" },
                { 1500, "1ms 500us" },
                { 7 * DAY, "1w" },
                { 2629800 * SEC, "1month" },
                { 31557600 * SEC, "1y" },
                { MIN + 500000, "1min 500ms" },
        };
        char buf[64];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                tap_streq(format_timespan(buf, sizeof(buf), cases[i].t), cases[i].want,
                          "format_timespan(%llu)", (unsigned long long) cases[i].t);

        /* what it prints reads back as the same value */
        static const usec_t round_trip[] = { 1,
                                             999,
                                             1001,
                                             1500000,
                                             90 * SEC + 7,
                                             3 * DAY + 5,
                                             31557600 * SEC + 2629800 * SEC + 1,
                                             UINT64_C(500000) * 31557600 * SEC + 123456789 };
        for (size_t i = 0; i < ELEMENTSOF(round_trip); i++) {
                usec_t back = 0;

                format_timespan(buf, sizeof(buf), round_trip[i]);
                tap_ok(parse_sec(buf, &back) == 0 && back == round_trip[i],
                       "format_timespan(%llu) = \"%s\" parses back",
                       (unsigned long long) round_trip[i], buf);
        }

        char small[6];
        memset(small, 'x', sizeof(small));
        format_timespan(small, sizeof(small), 90 * SEC);
        tap_ok(memchr(small, '\0', sizeof(small)) != NULL, "format_timespan truncates with a NUL");
        tap_streq(small, "1min ", "format_timespan keeps the start when truncating");
        char one[1] = { 'x' };
        tap_streq(format_timespan(one, 1, 90 * SEC), "", "format_timespan into a 1-byte buffer");
        char inf[4];
        tap_streq(format_timespan(inf, sizeof(inf), USEC_INFINITY), "inf", "infinity truncated");
}

static void test_size(void) {
        static const struct {
                const char *s;
                long long want;
        } cases[] = {
                { "0", 0 },
                { "1", 1 },
                { "1B", 1 },
                { "1K", 1024 },
                { "1M", 1024 * 1024 },
                { "1G", 1024LL * 1024 * 1024 },
                { "2T", 2LL << 40 },
                { "3P", 3LL << 50 },
                { "7E", 7LL << 60 },
                { "1.5G", 3LL << 29 },
                { "1.5K", 1536 },
                { "0.5K", 512 },
                { "0.1K", 102 },
                { "10.M", 10LL << 20 },
                { "1 K", 1024 },
                { "  1K", 1024 },
                { "5 ", 5 },
                { "+5", 5 },
                { "1G 512M", (1LL << 30) + (512LL << 20) },
                { "1K5B", 1029 },
                { "1K 5", 1029 },
                { "18446744073709551615", -1 /* UINT64_MAX */ },
                { "15E", 15LL << 60 },
                { "1.999999999999999999999999K", 2047 },
                /* errors */
                { "", -EINVAL },
                { "   ", -EINVAL },
                { "-1", -EINVAL },
                { "-1K", -EINVAL },
                { "K", -EINVAL },
                { "1k", -EINVAL },
                { "1KB", -EINVAL },
                { "1KiB", -EINVAL },
                { "1X", -EINVAL },
                { ".5G", -EINVAL },
                { "1G ", -EINVAL },
                { "1M 1G", -EINVAL },
                { "1K 1K", -EINVAL },
                { "5 5", -EINVAL },
                { "0x10", -EINVAL },
                { "18446744073709551616", -ERANGE },
                { "16E", -ERANGE },
                { "99999999999999999999G", -ERANGE },
                { "17179869184G", -ERANGE },
                { "15E 1024P", -ERANGE },
                { "15E 1023P", (15LL << 60) + (1023LL << 50) },
                { "15.99999999999999999999E 1P", -ERANGE },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                tap_inteq(size_of(cases[i].s), cases[i].want, "parse_size(\"%s\")",
                          printable(cases[i].s));
        tap_inteq(parse_size(NULL, &(uint64_t){ 0 }), -EINVAL, "parse_size NULL");
}

static void test_numbers(void) {
        unsigned u = 99;
        uint64_t v = 99;

        tap_inteq(parse_unsigned("0", &u), 0, "parse_unsigned 0");
        tap_inteq(u, 0, "parse_unsigned 0 value");
        tap_inteq(parse_unsigned("4294967295", &u), 0, "parse_unsigned UINT_MAX");
        tap_inteq(u, 4294967295U, "parse_unsigned UINT_MAX value");
        tap_inteq(parse_unsigned("007", &u), 0, "parse_unsigned leading zeros");
        tap_inteq(u, 7, "parse_unsigned leading zeros are decimal");
        u = 99;
        tap_inteq(parse_unsigned("4294967296", &u), -ERANGE, "parse_unsigned UINT_MAX+1");
        tap_inteq(parse_unsigned("99999999999999999999999", &u), -ERANGE, "parse_unsigned huge");
        tap_inteq(parse_unsigned("", &u), -EINVAL, "parse_unsigned empty");
        tap_inteq(parse_unsigned(" 1", &u), -EINVAL, "parse_unsigned leading space");
        tap_inteq(parse_unsigned("1 ", &u), -EINVAL, "parse_unsigned trailing space");
        tap_inteq(parse_unsigned("+1", &u), -EINVAL, "parse_unsigned plus sign");
        tap_inteq(parse_unsigned("-1", &u), -EINVAL, "parse_unsigned minus sign");
        tap_inteq(parse_unsigned("0x1", &u), -EINVAL, "parse_unsigned hex");
        tap_inteq(parse_unsigned("1.0", &u), -EINVAL, "parse_unsigned decimal point");
        tap_inteq(u, 99, "parse_unsigned leaves *ret alone on failure");
        tap_inteq(parse_unsigned(NULL, &u), -EINVAL, "parse_unsigned NULL");

        tap_inteq(parse_u64("18446744073709551615", &v), 0, "parse_u64 UINT64_MAX");
        tap_ok(v == UINT64_MAX, "parse_u64 UINT64_MAX value");
        v = 99;
        tap_inteq(parse_u64("18446744073709551616", &v), -ERANGE, "parse_u64 UINT64_MAX+1");
        tap_inteq(parse_u64("184467440737095516150", &v), -ERANGE, "parse_u64 ten times too big");
        tap_inteq(parse_u64("", &v), -EINVAL, "parse_u64 empty");
        tap_inteq(parse_u64("12a", &v), -EINVAL, "parse_u64 trailing garbage");
        tap_inteq(parse_u64("\t12", &v), -EINVAL, "parse_u64 leading tab");
        tap_inteq(v, 99, "parse_u64 leaves *ret alone on failure");
        tap_inteq(parse_u64("42", &v), 0, "parse_u64 42");
        tap_inteq(v, 42, "parse_u64 42 value");
}

static void test_signal(void) {
        static const struct {
                const char *name;
                int sig;
        } named[] = {
                { "HUP", SIGHUP },       { "INT", SIGINT },       { "QUIT", SIGQUIT },
                { "ILL", SIGILL },       { "TRAP", SIGTRAP },     { "ABRT", SIGABRT },
                { "BUS", SIGBUS },       { "FPE", SIGFPE },       { "KILL", SIGKILL },
                { "USR1", SIGUSR1 },     { "SEGV", SIGSEGV },     { "USR2", SIGUSR2 },
                { "PIPE", SIGPIPE },     { "ALRM", SIGALRM },     { "TERM", SIGTERM },
                { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },     { "CONT", SIGCONT },
                { "STOP", SIGSTOP },     { "TSTP", SIGTSTP },     { "TTIN", SIGTTIN },
                { "TTOU", SIGTTOU },     { "URG", SIGURG },       { "XCPU", SIGXCPU },
                { "XFSZ", SIGXFSZ },     { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },
                { "WINCH", SIGWINCH },   { "IO", SIGIO },         { "PWR", SIGPWR },
                { "SYS", SIGSYS },
        };
        char buf[32];

        for (size_t i = 0; i < ELEMENTSOF(named); i++) {
                tap_inteq(signal_of(named[i].name), named[i].sig, "parse_signal(\"%s\")",
                          named[i].name);
                snprintf(buf, sizeof(buf), "SIG%s", named[i].name);
                tap_inteq(signal_of(buf), named[i].sig, "parse_signal(\"%s\")", buf);
                tap_streq(signal_to_string(named[i].sig), buf, "signal_to_string(%d)",
                          named[i].sig);
        }

        tap_inteq(signal_of("POLL"), SIGIO, "POLL is IO");
        tap_inteq(signal_of("SIGPOLL"), SIGIO, "SIGPOLL is IO");
        tap_inteq(signal_of("15"), 15, "number 15");
        tap_inteq(signal_of("1"), 1, "number 1");
        tap_inteq(signal_of("64"), 64, "number 64");
        tap_inteq(signal_of("0"), -ERANGE, "number 0");
        tap_inteq(signal_of("65"), -ERANGE, "number 65");
        tap_inteq(signal_of("99999999999999999999999"), -ERANGE, "huge number");
        tap_inteq(signal_of("-15"), -EINVAL, "negative number");
        tap_inteq(signal_of("15x"), -EINVAL, "number with garbage");
        tap_inteq(signal_of(""), -EINVAL, "empty");
        tap_inteq(signal_of("SIG"), -EINVAL, "bare SIG");
        tap_inteq(signal_of("term"), -EINVAL, "lower case is not a signal name");
        tap_inteq(signal_of("SIGSIGTERM"), -EINVAL, "double SIG prefix");
        tap_inteq(signal_of("SIG15"), -EINVAL, "SIG with a number");
        tap_inteq(signal_of(" TERM"), -EINVAL, "leading space");
        tap_inteq(signal_of("TERM "), -EINVAL, "trailing space");
        tap_inteq(signal_of("FOO"), -EINVAL, "unknown name");

        tap_inteq(signal_of("RTMIN"), 34, "RTMIN is 34");
        tap_inteq(signal_of("SIGRTMIN"), 34, "SIGRTMIN is 34");
        tap_inteq(signal_of("RTMIN+0"), 34, "RTMIN+0");
        tap_inteq(signal_of("SIGRTMIN+3"), 37, "SIGRTMIN+3");
        tap_inteq(signal_of("RTMIN+30"), 64, "RTMIN+30");
        tap_inteq(signal_of("RTMIN+31"), -ERANGE, "RTMIN+31");
        tap_inteq(signal_of("RTMIN+"), -EINVAL, "RTMIN+ without number");
        tap_inteq(signal_of("RTMIN-1"), -EINVAL, "RTMIN-1");
        tap_inteq(signal_of("RTMIN+ 1"), -EINVAL, "RTMIN+ space");
        tap_inteq(signal_of("RTMIN+1x"), -EINVAL, "RTMIN+1x");
        tap_inteq(signal_of("RTMAX"), 64, "RTMAX is 64");
        tap_inteq(signal_of("SIGRTMAX-1"), 63, "SIGRTMAX-1");
        tap_inteq(signal_of("RTMAX-0"), 64, "RTMAX-0");
        tap_inteq(signal_of("RTMAX-30"), 34, "RTMAX-30");
        tap_inteq(signal_of("RTMAX-31"), -ERANGE, "RTMAX-31");
        tap_inteq(signal_of("RTMAX+1"), -EINVAL, "RTMAX+1");
        tap_inteq(signal_of("RTMAX-"), -EINVAL, "RTMAX-");
        tap_inteq(parse_signal(NULL, &(int){ 0 }), -EINVAL, "parse_signal NULL");

        tap_streq(signal_to_string(34), "SIGRTMIN+0", "signal_to_string(34)");
        tap_streq(signal_to_string(37), "SIGRTMIN+3", "signal_to_string(37)");
        tap_streq(signal_to_string(64), "SIGRTMIN+30", "signal_to_string(64)");
        tap_streq(signal_to_string(32), "32", "signal_to_string(32)");
        tap_streq(signal_to_string(0), NULL, "signal_to_string(0)");
        tap_streq(signal_to_string(65), NULL, "signal_to_string(65)");
        tap_streq(signal_to_string(-1), NULL, "signal_to_string(-1)");

        /* every number survives a round trip */
        bool all = true;
        for (int sig = 1; sig <= 64; sig++) {
                const char *s = signal_to_string(sig);
                int back = 0;

                if (!s || parse_signal(s, &back) < 0 || back != sig)
                        all = false;
        }
        tap_ok(all, "signal_to_string and parse_signal are inverse for 1..64");
}

static void test_exit_status(void) {
        static const struct {
                const char *s;
                long long want;
        } cases[] = {
                { "0", 0 },
                { "1", 1 },
                { "255", 255 },
                { "256", -ERANGE },
                { "99999999999999999999999", -ERANGE },
                { "-1", -EINVAL },
                { "", -EINVAL },
                { " 1", -EINVAL },
                { "SUCCESS", 0 },
                { "FAILURE", 1 },
                { "INVALIDARGUMENT", 2 },
                { "NOTIMPLEMENTED", 3 },
                { "NOPERMISSION", 4 },
                { "NOTINSTALLED", 5 },
                { "NOTCONFIGURED", 6 },
                { "NOTRUNNING", 7 },
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
                { "tempfail", -EINVAL },
                { "EX_TEMPFAIL", -EINVAL },
                { "SIGTERM", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                tap_inteq(status_of(cases[i].s), cases[i].want, "parse_exit_status(\"%s\")",
                          cases[i].s);
}

static void test_umask(void) {
        static const struct {
                const char *s;
                long long want;
        } cases[] = {
                { "0027", 027 },
                { "027", 027 },
                { "27", 027 },
                { "0", 0 },
                { "777", 0777 },
                { "0777", 0777 },
                { "00000022", 022 },
                { "1000", -ERANGE },
                { "7777", -ERANGE },
                { "08", -EINVAL },
                { "9", -EINVAL },
                { "", -EINVAL },
                { " 022", -EINVAL },
                { "022 ", -EINVAL },
                { "-022", -EINVAL },
                { "0x12", -EINVAL },
                { "77777777777777777777777", -ERANGE },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                tap_inteq(umask_of(cases[i].s), cases[i].want, "parse_umask(\"%s\")", cases[i].s);
}

static void test_rlimit(void) {
        static const struct {
                const char *name;
                int resource;
        } names[] = {
                { "CPU", RLIMIT_CPU },           { "FSIZE", RLIMIT_FSIZE },
                { "DATA", RLIMIT_DATA },         { "STACK", RLIMIT_STACK },
                { "CORE", RLIMIT_CORE },         { "RSS", RLIMIT_RSS },
                { "NOFILE", RLIMIT_NOFILE },     { "AS", RLIMIT_AS },
                { "NPROC", RLIMIT_NPROC },       { "MEMLOCK", RLIMIT_MEMLOCK },
                { "LOCKS", RLIMIT_LOCKS },       { "SIGPENDING", RLIMIT_SIGPENDING },
                { "MSGQUEUE", RLIMIT_MSGQUEUE }, { "NICE", RLIMIT_NICE },
                { "RTPRIO", RLIMIT_RTPRIO },     { "RTTIME", RLIMIT_RTTIME },
        };
        static const struct {
                int resource;
                const char *s;
                const char *want;
        } cases[] = {
                { RLIMIT_NOFILE, "1024", "1024:1024" },
                { RLIMIT_NOFILE, "1024:4096", "1024:4096" },
                { RLIMIT_NOFILE, "0", "0:0" },
                { RLIMIT_NOFILE, "infinity", "inf:inf" },
                { RLIMIT_NOFILE, "1024:infinity", "1024:inf" },
                { RLIMIT_NOFILE, "infinity:1024", "E22" },
                { RLIMIT_NOFILE, "4096:1024", "E22" },
                { RLIMIT_NOFILE, "5:", "5:5" },
                { RLIMIT_NOFILE, ":5", "E22" },
                { RLIMIT_NOFILE, ":", "E22" },
                { RLIMIT_NOFILE, "", "E22" },
                { RLIMIT_NOFILE, "1:2:3", "E22" },
                { RLIMIT_NOFILE, "1K", "E22" },
                { RLIMIT_NOFILE, "-1", "E22" },
                { RLIMIT_NOFILE, "18446744073709551615", "E34" },
                { RLIMIT_NOFILE, "18446744073709551614",
                  "18446744073709551614:18446744073709551614" },
                { RLIMIT_NOFILE, "18446744073709551616", "E34" },
                { RLIMIT_NOFILE, " 1", "E22" },
                { RLIMIT_NPROC, "512:1024", "512:1024" },
                { RLIMIT_RTPRIO, "99", "99:99" },
                { RLIMIT_FSIZE, "1G", "1073741824:1073741824" },
                { RLIMIT_CORE, "0:infinity", "0:inf" },
                { RLIMIT_AS, "1.5K:2K", "1536:2048" },
                { RLIMIT_STACK, "8M", "8388608:8388608" },
                { RLIMIT_MEMLOCK, "64K", "65536:65536" },
                { RLIMIT_MSGQUEUE, "16E", "E34" },
                { RLIMIT_DATA, "1X", "E22" },
                { RLIMIT_CPU, "10", "10:10" },
                { RLIMIT_CPU, "1min", "60:60" },
                { RLIMIT_CPU, "1.5", "2:2" },
                { RLIMIT_CPU, "1us", "1:1" },
                { RLIMIT_CPU, "0", "0:0" },
                { RLIMIT_CPU, "1h:2h", "3600:7200" },
                { RLIMIT_CPU, "5x", "E22" },
                { RLIMIT_RTTIME, "1000", "1000:1000" },
                { RLIMIT_RTTIME, "1s", "1000000:1000000" },
                { RLIMIT_RTTIME, "500ms:1s", "500000:1000000" },
                { RLIMIT_RTTIME, "infinity", "inf:inf" },
                { RLIMIT_NICE, "-20", "40:40" },
                { RLIMIT_NICE, "+19", "1:1" },
                { RLIMIT_NICE, "-0", "20:20" },
                { RLIMIT_NICE, "+0", "20:20" },
                { RLIMIT_NICE, "-5", "25:25" },
                { RLIMIT_NICE, "0", "0:0" },
                { RLIMIT_NICE, "40", "40:40" },
                { RLIMIT_NICE, "41", "E34" },
                { RLIMIT_NICE, "-21", "E34" },
                { RLIMIT_NICE, "+20", "E34" },
                { RLIMIT_NICE, "+", "E22" },
                { RLIMIT_NICE, "10:+0", "10:20" },
                { RLIMIT_NICE, "-20:-10", "E22" },
        };
        char buf[96];

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                tap_inteq(rlimit_from_string(names[i].name), names[i].resource,
                          "rlimit_from_string(%s)", names[i].name);
                const char *got = rlimit_to_string(names[i].resource);

                /* tap_streq() here trips a false -Wformat-overflow in gcc 12 at -O2 */
                tap_ok(got && strcmp(got, names[i].name) == 0, "rlimit_to_string(%s) is %s",
                       names[i].name, got ? got : "NULL");
        }
        tap_inteq(rlimit_from_string("nofile"), -EINVAL, "rlimit names are upper case");
        tap_inteq(rlimit_from_string("RLIMIT_NOFILE"), -EINVAL, "RLIMIT_ prefix is not a name");
        tap_inteq(rlimit_from_string(""), -EINVAL, "empty rlimit name");
        tap_streq(rlimit_to_string(-1), NULL, "rlimit_to_string(-1)");
        tap_streq(rlimit_to_string(RLIM_NLIMITS), NULL, "rlimit_to_string(RLIM_NLIMITS)");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *name = rlimit_to_string(cases[i].resource);

                tap_streq(rlimit_of(cases[i].resource, cases[i].s, buf, sizeof(buf)), cases[i].want,
                          "parse_rlimit(%s, \"%s\")", name ? name : "?", cases[i].s);
        }
        tap_streq(rlimit_of(-1, "1", buf, sizeof(buf)), "E22", "parse_rlimit unknown resource");
        tap_streq(rlimit_of(99, "1", buf, sizeof(buf)), "E22", "parse_rlimit resource 99");
}

static void test_extract_word(void) {
        const unsigned uq = EXTRACT_UNQUOTE, ue = EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE;

        CHECK_STR(words_of("a b  c", 0), "a|b|c", "plain words");
        CHECK_STR(words_of("  \t a\n\rb \t ", 0), "a|b", "all whitespace kinds separate");
        CHECK_STR(words_of("", 0), "", "empty input has no words");
        CHECK_STR(words_of("   ", 0), "", "whitespace has no words");
        CHECK_STR(words_of("\"a b\" c", 0), "\"a|b\"|c", "without UNQUOTE quotes are text");
        CHECK_STR(words_of("\"a b\" c", uq), "a b|c", "double quotes group");
        CHECK_STR(words_of("'a b' c", uq), "a b|c", "single quotes group");
        CHECK_STR(words_of("a\"b c\"d", uq), "ab cd", "quotes inside a word");
        CHECK_STR(words_of("\"\"", uq), "", "empty quotes make an empty word");
        CHECK_STR(words_of("'' x", uq), "|x", "empty word then a word");
        CHECK_STR(words_of("\"it's\"", uq), "it's", "single quote inside double quotes");
        CHECK_STR(words_of("'say \"hi\"'", uq), "say \"hi\"", "double quote inside single quotes");
        CHECK_STR(words_of("\"a\"'b'c", uq), "abc", "adjacent quoted parts join");
        CHECK_STR(words_of("\"a", uq), "E22:unbalanced quotes", "unterminated double quote");
        CHECK_STR(words_of("'a", uq), "E22:unbalanced quotes", "unterminated single quote");
        CHECK_STR(words_of("x 'a", uq), "E22:unbalanced quotes",
                  "unterminated quote in a later word");
        CHECK_STR(words_of("\"a b", uq | EXTRACT_RELAX), "a b", "RELAX accepts unterminated quote");
        CHECK_STR(words_of("a\\", 0), "E22:trailing backslash", "trailing backslash");
        CHECK_STR(words_of("a\\", EXTRACT_RELAX), "a", "RELAX drops a trailing backslash");
        CHECK_STR(words_of("a\\ b", 0), "a b", "backslash escapes a space");
        CHECK_STR(words_of("a\\nb", 0), "anb", "without CUNESCAPE \\n is n");
        CHECK_STR(words_of("a\\\"b", uq), "a\"b", "escaped quote with UNQUOTE");
        CHECK_STR(words_of("\"a\\\"b\"", uq), "a\"b", "escaped quote inside quotes");
        CHECK_STR(words_of("a\\nb", ue), "a\nb", "\\n decodes");
        CHECK_STR(words_of("\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\\'\\s", ue), "\a\b\f\n\r\t\v\\\"' ",
                  "all simple escapes");
        CHECK_STR(words_of("a\\sb", ue), "a b", "\\s is a space");
        CHECK_STR(words_of("\\x41\\x7a", ue), "Az", "\\xNN");
        CHECK_STR(words_of("\\xff", ue), "\xff", "\\xff is a raw byte");
        CHECK_STR(words_of("\\x4", ue), "E22:invalid escape sequence", "\\x with one digit");
        CHECK_STR(words_of("\\xg0", ue), "E22:invalid escape sequence", "\\x with a bad digit");
        CHECK_STR(words_of("\\x00", ue), "E22:escape decodes to a NUL byte", "\\x00");
        CHECK_STR(words_of("\\101\\060", ue), "A0", "octal \\NNN");
        CHECK_STR(words_of("\\377", ue), "\xff", "octal 377");
        CHECK_STR(words_of("\\400", ue), "E22:invalid escape sequence", "octal above 255");
        CHECK_STR(words_of("\\000", ue), "E22:escape decodes to a NUL byte", "octal NUL");
        CHECK_STR(words_of("\\0", ue), "E22:invalid escape sequence", "\\0 is not three digits");
        CHECK_STR(words_of("\\12", ue), "E22:invalid escape sequence", "two octal digits");
        CHECK_STR(words_of("\\18", ue), "E22:invalid escape sequence", "8 is not octal");
        CHECK_STR(words_of("\\u00e9", ue), "\xc3\xa9", "\\u00e9 is UTF-8 é");
        CHECK_STR(words_of("\\u20AC", ue), "\xe2\x82\xac", "\\u20AC is UTF-8 €");
        CHECK_STR(words_of("\\u0041", ue), "A", "\\u0041 is A");
        CHECK_STR(words_of("\\U0001F600", ue), "\xf0\x9f\x98\x80", "\\U0001F600 is an emoji");
        CHECK_STR(words_of("\\u0000", ue), "E22:escape decodes to a NUL byte", "\\u0000");
        CHECK_STR(words_of("\\U00000000", ue), "E22:escape decodes to a NUL byte", "\\U00000000");
        CHECK_STR(words_of("\\uD800", ue), "E22:escape encodes an invalid code point", "surrogate");
        CHECK_STR(words_of("\\U00110000", ue), "E22:escape encodes an invalid code point",
                  "beyond U+10FFFF");
        CHECK_STR(words_of("\\uFFFE", ue), "E22:escape encodes an invalid code point", "U+FFFE");
        CHECK_STR(words_of("\\u12", ue), "E22:invalid escape sequence", "\\u too short");
        CHECK_STR(words_of("\\U1234567", ue), "E22:invalid escape sequence", "\\U too short");
        CHECK_STR(words_of("\\q", ue), "E22:invalid escape sequence", "unknown escape");
        CHECK_STR(words_of("\"a\\tb\"", ue), "a\tb", "escapes decode inside double quotes");
        CHECK_STR(words_of("'a\\tb'", ue), "a\tb", "escapes decode inside single quotes");
        CHECK_STR(words_of("'a\\'b'", ue), "a'b", "escaped single quote inside single quotes");
        CHECK_STR(words_of("\"a\\", ue), "E22:trailing backslash", "trailing backslash in quotes");
        CHECK_STR(words_of("a\\;b", ue), "E22:invalid escape sequence", "\\; is no C escape");
        CHECK_STR(words_of("a\\;b", ue | EXTRACT_KEEP_SEMICOLON), "a\\;b",
                  "KEEP_SEMICOLON keeps \\; verbatim");
        CHECK_STR(words_of("a\\;b", uq), "a;b", "without CUNESCAPE \\; is ;");
        CHECK_STR(words_of("\"a b\"c d", ue), "a bc|d", "quoted word continues after the quote");

        /* the cursor */
        const char *p = "  one  two ", *reason = NULL;
        char *w = NULL;
        tap_inteq(extract_first_word(&p, &w, 0, &reason), 1, "first word found");
        tap_streq(w, "one", "first word");
        tap_streq(p, "two ", "cursor skips the separators after the word");
        free(w);
        tap_inteq(extract_first_word(&p, &w, 0, &reason), 1, "second word found");
        free(w);
        tap_inteq(extract_first_word(&p, &w, 0, &reason), 0, "end of input");
        tap_ok(w == NULL, "end of input leaves NULL");
        tap_inteq(extract_first_word(&p, &w, 0, &reason), 0, "calling again at the end");
        const char *null_p = NULL;
        tap_inteq(extract_first_word(&null_p, &w, 0, &reason), 0, "NULL cursor is the end");
        p = "ok \"broken";
        const char *save = p;
        tap_inteq(extract_first_word(&p, &w, uq, &reason), 1, "word before a broken one");
        free(w);
        save = p;
        w = (char *) "untouched";
        tap_inteq(extract_first_word(&p, &w, uq, &reason), -EINVAL, "broken word fails");
        tap_ok(p == save, "a failure leaves the cursor alone");
        tap_streq(w, "untouched", "a failure leaves *ret alone");
        p = "\\q";
        tap_inteq(extract_first_word(&p, &w, ue, NULL), -EINVAL, "reason may be NULL");

        /* a 64 KiB word */
        char *big = malloc(65537);
        memset(big, 'x', 65536);
        big[65536] = '\0';
        big[0] = '"';
        big[65535] = '"';
        p = big;
        w = NULL;
        tap_inteq(extract_first_word(&p, &w, ue, &reason), 1, "64 KiB quoted word");
        tap_inteq(w ? strlen(w) : 0, 65534, "64 KiB word length");
        free(w);
        free(big);
}

static void test_cunescape(void) {
        const char *reason = NULL;
        char *out = NULL;

        tap_inteq(cunescape("a\\tb", 4, &out, &reason), 0, "cunescape \\t");
        tap_streq(out, "a\tb", "cunescape \\t result");
        free(out);
        tap_inteq(cunescape("a\\tb", 2, &out, &reason), -EINVAL, "length cuts an escape in half");
        tap_streq(reason, "trailing backslash", "cut escape reason");
        tap_inteq(cunescape("\\x41BC", 3, &out, &reason), -EINVAL, "length cuts \\x41");
        tap_inteq(cunescape("\\x41BC", 4, &out, &reason), 0, "length ends after \\x41");
        tap_streq(out, "A", "length is respected");
        free(out);
        tap_inteq(cunescape("\\u00e9", 5, &out, &reason), -EINVAL, "length cuts \\u");
        tap_inteq(cunescape("\\101", 3, &out, &reason), -EINVAL, "length cuts octal");
        tap_inteq(cunescape("", 0, &out, &reason), 0, "empty input");
        tap_streq(out, "", "empty output");
        free(out);
        tap_inteq(cunescape(NULL, 0, &out, &reason), 0, "NULL with length 0");
        free(out);
        tap_inteq(cunescape("a\0b", 3, &out, &reason), -EINVAL, "embedded NUL byte");
        tap_streq(reason, "NUL byte in input", "embedded NUL reason");
        tap_inteq(cunescape("a\\x00b", 6, &out, &reason), -EINVAL, "escaped NUL");
        tap_streq(reason, "escape decodes to a NUL byte", "escaped NUL reason");
        tap_inteq(cunescape("a\\", 2, &out, &reason), -EINVAL, "trailing backslash");
        tap_inteq(cunescape("a\\\0", 3, &out, &reason), -EINVAL, "NUL byte after a backslash");
        tap_streq(reason, "NUL byte in input", "NUL after backslash reason");
        tap_inteq(cunescape("\\z", 2, &out, &reason), -EINVAL, "unknown escape");
        tap_streq(reason, "invalid escape sequence", "unknown escape reason");
        tap_inteq(cunescape("\"quoted\" 'x'", 12, &out, &reason), 0, "quotes are plain text");
        tap_streq(out, "\"quoted\" 'x'", "quotes kept");
        free(out);
        tap_inteq(cunescape("\\U0001F600\\u00e9\\x41\\101\\s", 26, &out, &reason), 0,
                  "mixed escapes");
        tap_streq(out,
                  "\xf0\x9f\x98\x80\xc3\xa9"
                  "AA ",
                  "mixed escapes result");
        free(out);

        size_t big = 1024 * 1024 + 1;
        char *s = malloc(big);
        memset(s, 'a', big);
        out = (char *) "untouched";
        tap_inteq(cunescape(s, big, &out, &reason), -E2BIG, "more than 1 MiB is refused");
        tap_streq(out, "untouched", "failure leaves *ret alone");
        tap_inteq(cunescape(s, 65536, &out, &reason), 0, "64 KiB is fine");
        tap_inteq(strlen(out), 65536, "64 KiB output");
        free(out);
        free(s);
}

static void test_exec(void) {
        CHECK_STR(exec_of("/bin/true"), "/bin/true [/bin/true]", "plain command");
        CHECK_STR(exec_of("  /bin/echo  a  b  "), "/bin/echo [/bin/echo a b]", "arguments");
        CHECK_STR(exec_of("true"), "true [true]", "bare program name");
        CHECK_STR(exec_of("bin/true"), "E22:path must be absolute or a plain program name",
                  "relative path with a slash");
        CHECK_STR(exec_of("./true"), "E22:path must be absolute or a plain program name", "./true");
        CHECK_STR(exec_of("/bin/"), "E22:executable path refers to a directory", "trailing slash");
        CHECK_STR(exec_of("/bin/.."), "E22:executable path refers to a directory", "..");
        CHECK_STR(exec_of(".."), "E22:executable path refers to a directory", "bare ..");
        CHECK_STR(exec_of("//usr//bin/./env x"), "/usr/bin/env [//usr//bin/./env x]",
                  "path is simplified, argv[0] kept as written");
        CHECK_STR(exec_of("/bin/echo \"a b\" 'c d' e\\tf"), "/bin/echo [/bin/echo a b c d e\tf]",
                  "quotes and escapes");
        CHECK_STR(exec_of("/bin/echo \"unbalanced"), "E22:unbalanced quotes", "unbalanced quote");
        CHECK_STR(exec_of("/bin/echo \\q"), "E22:invalid escape sequence", "bad escape");
        CHECK_STR(exec_of("/bin/echo \\x00"), "E22:escape decodes to a NUL byte", "NUL escape");
        CHECK_STR(exec_of("\"/bin/my prog\" x"), "/bin/my prog [/bin/my prog x]",
                  "quoted path with a space");
        CHECK_STR(exec_of("/bin/a\\\"b"),
                  "E22:executable path contains quotes, backslashes or control characters",
                  "quote in path");
        CHECK_STR(exec_of("/bin/a\\tb"),
                  "E22:executable path contains quotes, backslashes or control characters",
                  "control character in path");

        /* prefixes */
        CHECK_STR(exec_of("-/bin/false"), "-/bin/false [/bin/false]", "- prefix");
        CHECK_STR(exec_of(":/bin/env"), ":/bin/env [/bin/env]", ": prefix");
        CHECK_STR(exec_of("+/bin/id"), "+/bin/id [/bin/id]", "+ prefix");
        CHECK_STR(exec_of("@/bin/busybox sh -c x"), "/bin/busybox [sh -c x]", "@ prefix");
        CHECK_STR(exec_of("-@:+/bin/busybox sh"), "-:+/bin/busybox [sh]", "all prefixes");
        CHECK_STR(exec_of("+:@-/bin/busybox sh"), "-:+/bin/busybox [sh]", "prefixes in any order");
        CHECK_STR(exec_of("@/bin/busybox"), "E22:the @ prefix needs argv[0] after the path",
                  "@ without argv[0]");
        CHECK_STR(exec_of("@/bin/busybox ; /bin/true"),
                  "E22:the @ prefix needs argv[0] after the path", "@ without argv[0] before ;");
        CHECK_STR(exec_of("--/bin/false"), "E22:path must be absolute or a plain program name",
                  "repeated - prefix");
        CHECK_STR(exec_of("@@/bin/x y"), "E22:path must be absolute or a plain program name",
                  "repeated @ prefix");
        CHECK_STR(exec_of("!/bin/x"),
                  "E22:the ! and !! prefixes (ambient capabilities) are not supported by vigil",
                  "! prefix");
        CHECK_STR(exec_of("!!/bin/x"),
                  "E22:the ! and !! prefixes (ambient capabilities) are not supported by vigil",
                  "!! prefix");
        CHECK_STR(exec_of("-!/bin/x"),
                  "E22:the ! and !! prefixes (ambient capabilities) are not supported by vigil",
                  "-! prefix");
        CHECK_STR(exec_of("|/bin/x"),
                  "E22:the | prefix (run through the user's shell) is not supported by vigil",
                  "| prefix");
        CHECK_STR(exec_of("-"), "E22:empty executable path", "only a prefix");
        CHECK_STR(exec_of("@"), "E22:empty executable path", "only @");
        CHECK_STR(exec_of("/bin/echo -@:+"), "/bin/echo [/bin/echo -@:+]",
                  "prefix characters in arguments");

        /* semicolons */
        CHECK_STR(exec_of("/bin/a ; /bin/b"), "/bin/a [/bin/a] ; /bin/b [/bin/b]", "two commands");
        CHECK_STR(exec_of("/bin/a x ; -/bin/b y ; @/bin/c z w"),
                  "/bin/a [/bin/a x] ; -/bin/b [/bin/b y] ; /bin/c [z w]",
                  "three commands with prefixes");
        CHECK_STR(exec_of("/bin/a ;"), "/bin/a [/bin/a]", "trailing ; is ignored");
        CHECK_STR(exec_of("/bin/a ;   "), "/bin/a [/bin/a]", "trailing ; and spaces");
        CHECK_STR(exec_of("; /bin/a"), "/bin/a [/bin/a]", "leading ; is an empty command, skipped");
        CHECK_STR(exec_of("/bin/a ; ; /bin/b"), "/bin/a [/bin/a] ; /bin/b [/bin/b]",
                  "empty command between separators is skipped");
        CHECK_STR(exec_of(";"), "", "a lone ; gives no command");
        CHECK_STR(exec_of("\";\" /bin/a"), "/bin/a [/bin/a]",
                  "a quoted ; in the program position is a separator too (systemd)");
        CHECK_STR(exec_of("\\; /bin/a"),
                  "E22:executable path contains quotes, backslashes or control characters",
                  "\\; is no program");
        CHECK_STR(exec_of("/bin/a;"), "/bin/a; [/bin/a;]", "; glued to the path is text");
        CHECK_STR(exec_of("/bin/echo a;b"), "/bin/echo [/bin/echo a;b]", "; inside a word is text");
        CHECK_STR(exec_of("/bin/echo a;"), "/bin/echo [/bin/echo a;]", "; at a word end is text");
        CHECK_STR(exec_of("/bin/echo \";\""), "/bin/echo [/bin/echo ;]", "quoted ; is an argument");
        CHECK_STR(exec_of("/bin/echo 'a ; b'"), "/bin/echo [/bin/echo a ; b]",
                  "quoted ; with spaces");
        CHECK_STR(exec_of("/bin/find . -exec rm {} \\;"), "/bin/find [/bin/find . -exec rm {} ;]",
                  "\\; is a literal ; argument");
        CHECK_STR(exec_of("/bin/find . -exec rm {} \\; ; /bin/b"),
                  "/bin/find [/bin/find . -exec rm {} ;] ; /bin/b [/bin/b]",
                  "\\; then a separator");
        CHECK_STR(exec_of("/bin/sh -c 'a\\;b'"), "/bin/sh [/bin/sh -c a\\;b]",
                  "\\; inside a word stays verbatim");
        CHECK_STR(exec_of("/bin/echo \\\\;"), "/bin/echo [/bin/echo \\;]",
                  "\\\\; is backslash semicolon");
        CHECK_STR(exec_of("/bin/a ;/bin/b"), "/bin/a [/bin/a ;/bin/b]",
                  "; glued to the next word is text");
        CHECK_STR(exec_of("/bin/a\t;\t/bin/b"), "/bin/a [/bin/a] ; /bin/b [/bin/b]",
                  "tab separated ;");
        CHECK_STR(exec_of("/bin/a ; !/bin/b"),
                  "E22:the ! and !! prefixes (ambient capabilities) are not supported by vigil",
                  "failure in a later command");

        /* appending and rollback */
        exec_command *cmds = NULL;
        size_t n = 0;
        const char *reason = NULL;
        tap_inteq(parse_exec_line("/bin/a", &cmds, &n, &reason), 0, "append first");
        tap_inteq(parse_exec_line("/bin/b ; /bin/c", &cmds, &n, &reason), 0, "append two more");
        tap_inteq(n, 3, "three commands");
        exec_command *before = cmds;
        tap_inteq(parse_exec_line("/bin/d ; /bin/e ; rel/x", &cmds, &n, &reason), -EINVAL,
                  "third line fails in its last command");
        tap_inteq(n, 3, "failure keeps the count");
        tap_ok(cmds == before, "failure keeps the array");
        tap_inteq(parse_exec_line("/bin/f \"oops", &cmds, &n, &reason), -EINVAL,
                  "unbalanced fails");
        tap_inteq(n, 3, "failure keeps the count again");
        tap_inteq(parse_exec_line("", &cmds, &n, &reason), 0, "empty value adds nothing");
        tap_inteq(parse_exec_line("   ", &cmds, &n, &reason), 0, "whitespace adds nothing");
        tap_inteq(n, 3, "still three");
        CHECK_STR(describe_exec(cmds, n), "/bin/a [/bin/a] ; /bin/b [/bin/b] ; /bin/c [/bin/c]",
                  "list after failures");
        free_exec(cmds, n);

        exec_command c = { .path = strdup("/x"), .argv = NULL, .flags = 3 };
        exec_command_done(&c);
        tap_ok(!c.path && !c.argv && c.flags == 0, "exec_command_done clears");
        exec_command_done(&c);
        exec_command_done(NULL);
        tap_ok(1, "exec_command_done twice and with NULL");

        /* limits */
        size_t words = 4095, len;
        char *line = malloc(16 + words * 2 + 16);
        len = (size_t) sprintf(line, "/bin/echo");
        for (size_t i = 0; i < words; i++)
                len += (size_t) sprintf(line + len, " x");
        cmds = NULL;
        n = 0;
        tap_inteq(parse_exec_line(line, &cmds, &n, &reason), 0, "4096 words are fine");
        tap_inteq(n == 1 ? strv_length(cmds[0].argv) : 0, 4096, "4096 argv entries");
        free_exec(cmds, n);
        sprintf(line + len, " y");
        cmds = NULL;
        n = 0;
        tap_inteq(parse_exec_line(line, &cmds, &n, &reason), -E2BIG, "4097 words are too many");
        tap_streq(reason, "too many arguments (at most 4096)", "too many words reason");
        tap_ok(!cmds && n == 0, "nothing appended after E2BIG");
        free(line);

        size_t biglen = 64 * 1024;
        char *arg = malloc(biglen + 32);
        strcpy(arg, "/bin/echo '");
        len = strlen(arg);
        memset(arg + len, 'y', biglen);
        strcpy(arg + len + biglen, "' z");
        cmds = NULL;
        n = 0;
        tap_inteq(parse_exec_line(arg, &cmds, &n, &reason), 0, "64 KiB argument");
        tap_ok(n == 1 && strlen(cmds[0].argv[1]) == biglen && strcmp(cmds[0].argv[2], "z") == 0,
               "64 KiB argument kept whole");
        free_exec(cmds, n);
        free(arg);

        /* a long line of tiny commands stays fast and keeps them all */
        size_t many = 100000;
        line = malloc(many * 5 + 1);
        for (size_t i = 0; i < many; i++)
                memcpy(line + 5 * i, "/a ; ", 5);
        line[many * 5] = '\0';
        cmds = NULL;
        n = 0;
        tap_inteq(parse_exec_line(line, &cmds, &n, &reason), 0, "100000 commands on one line");
        tap_inteq(n, many, "100000 commands parsed");
        free_exec(cmds, n);
        free(line);

        char *longpath = malloc(PATH_MAX + 16);
        longpath[0] = '/';
        memset(longpath + 1, 'a', PATH_MAX);
        for (size_t i = 200; i < PATH_MAX; i += 200)
                longpath[i] = '/';
        longpath[PATH_MAX + 1] = '\0';
        cmds = NULL;
        n = 0;
        tap_inteq(parse_exec_line(longpath, &cmds, &n, &reason), -EINVAL,
                  "path longer than PATH_MAX");
        free(longpath);
        char name[300];
        memset(name, 'n', 256);
        name[256] = '\0';
        tap_inteq(parse_exec_line(name, &cmds, &n, &reason), -EINVAL,
                  "program name longer than 255");
        name[255] = '\0';
        tap_inteq(parse_exec_line(name, &cmds, &n, &reason), 0, "program name of 255");
        free_exec(cmds, n);
}

static void test_environment(void) {
        char **env = NULL;
        const char *reason = NULL;
        char *joined;

        tap_inteq(parse_environment("A=1 B=2", &env, &reason), 0, "two assignments");
        tap_inteq(strv_length(env), 2, "two entries");
        tap_inteq(parse_environment("\"C=a b\" 'D=x\\ty' E=", &env, &reason), 0,
                  "quoted and escaped");
        tap_inteq(parse_environment("A=3", &env, &reason), 0, "reassignment");
        joined = NULL;
        STRV_FOREACH(e, env) {
                char *t;
                if (asprintf(&t, "%s%s%s", joined ? joined : "", joined ? "," : "", *e) < 0)
                        abort();
                free(joined);
                joined = t;
        }
        tap_streq(joined, "A=3,B=2,C=a b,D=x\ty,E=", "later assignment replaces in place");
        free(joined);

        char **before = env;
        size_t count = strv_length(env);
        tap_inteq(parse_environment("F=1 1BAD=2", &env, &reason), -EINVAL,
                  "name starting with a digit");
        tap_streq(reason, "invalid environment variable name", "bad name reason");
        tap_ok(env == before && strv_length(env) == count, "nothing appended on failure");
        tap_inteq(parse_environment("G=1 novalue", &env, &reason), -EINVAL, "missing =");
        tap_streq(reason, "invalid environment assignment (expected NAME=VALUE)",
                  "missing = reason");
        tap_inteq(parse_environment("=x", &env, &reason), -EINVAL, "empty name");
        tap_inteq(parse_environment("A-B=x", &env, &reason), -EINVAL, "dash in name");
        tap_inteq(parse_environment("\"H=unbalanced", &env, &reason), -EINVAL, "unbalanced quote");
        tap_streq(reason, "unbalanced quotes", "unbalanced reason");
        tap_inteq(parse_environment("I=\\x00", &env, &reason), -EINVAL, "NUL escape");
        tap_inteq(parse_environment("J=\\xff", &env, &reason), -EINVAL, "invalid UTF-8 value");
        tap_streq(reason, "environment value is not valid UTF-8", "UTF-8 reason");
        tap_ok(env == before && strv_length(env) == count, "still unchanged");
        tap_inteq(parse_environment("", &env, &reason), 0, "empty value");
        tap_inteq(parse_environment("K=\\u00e9 _x=1 y_2=", &env, &reason), 0,
                  "unicode value and odd names");
        tap_inteq(strv_length(env), count + 3, "appended three");
        tap_streq(env[count], "K=\xc3\xa9", "unicode value decoded");

        size_t biglen = 128 * 1024;
        char *big = malloc(biglen + 8);
        memcpy(big, "L=", 2);
        memset(big + 2, 'v', biglen - 2);
        big[biglen] = '\0';
        tap_inteq(parse_environment(big, &env, &reason), 0, "assignment of 128 KiB");
        big[biglen] = 'v';
        big[biglen + 1] = '\0';
        tap_inteq(parse_environment(big, &env, &reason), -EINVAL, "assignment over 128 KiB");
        tap_streq(reason, "environment assignment too long", "too long reason");
        free(big);
        strv_free(env);

        /* at most 4096 variables, and a long line of them stays fast */
        size_t many = 5000;
        char *line = malloc(many * 16);
        size_t len = 0;
        for (size_t i = 0; i < many; i++)
                len += (size_t) sprintf(line + len, "V%zu=x ", i);
        env = NULL;
        tap_inteq(parse_environment(line, &env, &reason), -E2BIG, "5000 variables are too many");
        tap_streq(reason, "too many environment variables (at most 4096)", "too many reason");
        tap_ok(env == NULL, "nothing set after E2BIG");
        len = 0;
        for (size_t i = 0; i < 4096; i++)
                len += (size_t) sprintf(line + len, "V%zu=x ", i);
        tap_inteq(parse_environment(line, &env, &reason), 0, "4096 variables are fine");
        tap_inteq(strv_length(env), 4096, "4096 entries");
        tap_inteq(parse_environment("V7=y", &env, &reason), 0, "replacing in a full list");
        tap_streq(env[7], "V7=y", "replaced in place");
        tap_inteq(parse_environment("NEW=1", &env, &reason), -E2BIG, "a 4097th variable");
        tap_inteq(strv_length(env), 4096, "full list unchanged");
        strv_free(env);
        free(line);

        tap_ok(env_name_is_valid("PATH"), "PATH is a name");
        tap_ok(env_name_is_valid("_"), "_ is a name");
        tap_ok(env_name_is_valid("a1"), "a1 is a name");
        tap_ok(!env_name_is_valid("1a"), "1a is not");
        tap_ok(!env_name_is_valid(""), "empty is not");
        tap_ok(!env_name_is_valid("A=B"), "A=B is not a name");
        tap_ok(!env_name_is_valid("A B"), "A B is not");
        tap_ok(!env_name_is_valid("\xc3\xa9"), "é is not");
        tap_ok(!env_name_is_valid(NULL), "NULL is not");
        tap_ok(env_assignment_is_valid("A="), "A= is valid");
        tap_ok(env_assignment_is_valid("A==="), "A=== is valid");
        tap_ok(env_assignment_is_valid("A=a\nb"), "newline in value is valid");
        tap_ok(!env_assignment_is_valid("A"), "A alone is not");
        tap_ok(!env_assignment_is_valid("=A"), "=A is not");
        tap_ok(!env_assignment_is_valid("A=\xc3"), "truncated UTF-8 is not");
        tap_ok(!env_assignment_is_valid("A=\xc0\x80"), "overlong UTF-8 is not");
        tap_ok(!env_assignment_is_valid("A=\xed\xa0\x80"), "encoded surrogate is not");
        tap_ok(!env_assignment_is_valid(NULL), "NULL is not");
}

static void test_unit_names(void) {
        static const struct {
                const char *s;
                unsigned flags;
                bool want;
        } cases[] = {
                { "foo.service", UNIT_NAME_PLAIN, true },
                { "foo.service", UNIT_NAME_INSTANCE, false },
                { "foo.service", UNIT_NAME_ANY, true },
                { "foo@bar.service", UNIT_NAME_INSTANCE, true },
                { "foo@bar.service", UNIT_NAME_PLAIN, false },
                { "foo@bar.service", UNIT_NAME_TEMPLATE, false },
                { "foo@.service", UNIT_NAME_TEMPLATE, true },
                { "foo@.service", UNIT_NAME_INSTANCE, false },
                { "foo@.service", UNIT_NAME_ANY, true },
                { "@bar.service", UNIT_NAME_ANY, false },
                { "@.service", UNIT_NAME_ANY, false },
                { ".service", UNIT_NAME_ANY, false },
                { "foo", UNIT_NAME_ANY, false },
                { "foo.", UNIT_NAME_ANY, false },
                { "foo.bar", UNIT_NAME_ANY, false },
                { "foo.service.bak", UNIT_NAME_ANY, false },
                { "foo.Service", UNIT_NAME_ANY, false },
                { "a@b@c.service", UNIT_NAME_ANY, false },
                { "a b.service", UNIT_NAME_ANY, false },
                { "a/b.service", UNIT_NAME_ANY, false },
                { "a\xc3\xa9.service", UNIT_NAME_ANY, false },
                { "a:b_c-d\\x2d.e.service", UNIT_NAME_PLAIN, true },
                { "foo.service", 0, false },
                { "", UNIT_NAME_ANY, false },
                { "x.socket", UNIT_NAME_PLAIN, true },
                { "x.target", UNIT_NAME_PLAIN, true },
                { "x.device", UNIT_NAME_PLAIN, true },
                { "x.mount", UNIT_NAME_PLAIN, true },
                { "x.automount", UNIT_NAME_PLAIN, true },
                { "x.swap", UNIT_NAME_PLAIN, true },
                { "x.timer", UNIT_NAME_PLAIN, true },
                { "x.path", UNIT_NAME_PLAIN, true },
                { "x.slice", UNIT_NAME_PLAIN, true },
                { "x.scope", UNIT_NAME_PLAIN, true },
        };
        char name[300];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                tap_inteq(unit_name_is_valid(cases[i].s, cases[i].flags), cases[i].want,
                          "unit_name_is_valid(\"%s\", %u)", printable(cases[i].s), cases[i].flags);
        tap_ok(!unit_name_is_valid(NULL, UNIT_NAME_ANY), "NULL unit name");

        memset(name, 'a', sizeof(name));
        strcpy(name + UNIT_NAME_MAX - 8, ".service");
        tap_inteq(strlen(name), 255, "test name is 255 bytes");
        tap_ok(unit_name_is_valid(name, UNIT_NAME_PLAIN), "255 bytes is valid");
        memset(name, 'a', sizeof(name));
        strcpy(name + UNIT_NAME_MAX - 7, ".service");
        tap_ok(!unit_name_is_valid(name, UNIT_NAME_PLAIN), "256 bytes is not");

        const char *s = "foo@bar.service";
        tap_ok(unit_name_suffix(s) == s + 7, "suffix of foo@bar.service");
        tap_streq(unit_name_suffix("a.b.timer"), ".timer", "suffix is the last dot");
        tap_streq(unit_name_suffix("a.timer.x"), NULL, "unknown suffix");
        tap_streq(unit_name_suffix("service"), NULL, "no dot");
        tap_streq(unit_name_suffix(".service"), ".service", "suffix alone");
}

static void test_user_names(void) {
        static const struct {
                const char *s;
                bool want;
        } cases[] = {
                { "root", true },
                { "nobody", true },
                { "game-server", true },
                { "a.b", true },
                { "user@domain", true },
                { "Ümlaut", true },
                { "0", true },
                { "1000", true },
                { "4294967294", true },
                { "4294967295", false },
                { "65535", false },
                { "65534", true },
                { "99999999999", false },
                { "", false },
                { "-user", false },
                { ".", false },
                { "..", false },
                { "...", true },
                { "a:b", false },
                { "a/b", false },
                { " a", false },
                { "a ", false },
                { "a b", true },
                { "a\tb", false },
                { "a\nb", false },
                { "a\x7f", false },
                { "\xff", false },
                { "007", true },
                { "_x", true },
                { "1a", true },
        };
        char name[300];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                tap_inteq(user_group_name_is_valid(cases[i].s), cases[i].want,
                          "user_group_name_is_valid(\"%s\")", printable(cases[i].s));
        tap_ok(!user_group_name_is_valid(NULL), "NULL user");
        memset(name, 'u', 256);
        name[256] = '\0';
        tap_ok(user_group_name_is_valid(name), "256 bytes is valid");
        name[256] = 'u';
        name[257] = '\0';
        tap_ok(!user_group_name_is_valid(name), "257 bytes is not");
}

static void test_paths(void) {
        static const struct {
                const char *s;
                bool want;
        } cases[] = {
                { "/", true },      { "/a", true },     { "/a/b", true },   { "/a/b/", false },
                { "//", false },    { "//a", false },   { "/a//b", false }, { "/./a", false },
                { "/a/.", false },  { "/a/..", false }, { "/../a", false }, { "/a/.b", true },
                { "/a/..b", true }, { "/a/b..", true }, { "a", false },     { "", false },
                { "./a", false },   { "/.", false },    { "/..", false },   { "/a b", true },
        };
        char *p;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                tap_inteq(path_is_normalized_absolute(cases[i].s), cases[i].want,
                          "path_is_normalized_absolute(\"%s\")", printable(cases[i].s));
        tap_ok(!path_is_normalized_absolute(NULL), "NULL path");

        p = malloc(PATH_MAX + 2);
        memset(p, 'a', PATH_MAX + 1);
        p[0] = '/';
        p[PATH_MAX - 1] = '\0';
        tap_ok(path_is_normalized_absolute(p), "PATH_MAX-1 bytes is fine");
        p[PATH_MAX - 1] = 'a';
        p[PATH_MAX] = '\0';
        tap_ok(!path_is_normalized_absolute(p), "PATH_MAX bytes is too long");
        free(p);
}

static void test_specifiers(void) {
        const specifier_context ctx = { .name = "web@eu.service",
                                        .prefix = "web",
                                        .instance = "eu" };
        const specifier_context plain = { .name = "db.service", .prefix = "db", .instance = "" };
        char *out = NULL, bad = 'x';

        tap_inteq(specifier_expand("%n|%N|%p|%i|%%", &ctx, &out, &bad), 0, "all specifiers");
        tap_streq(out, "web@eu.service|web@eu|web|eu|%", "specifier values");
        free(out);
        tap_inteq(specifier_expand("/run/%i/x", &plain, &out, &bad), 0, "empty instance");
        tap_streq(out, "/run//x", "empty instance expands to nothing");
        free(out);
        tap_inteq(specifier_expand("no specifiers", &ctx, &out, &bad), 0, "no specifiers");
        tap_streq(out, "no specifiers", "text kept");
        free(out);
        tap_inteq(specifier_expand("", &ctx, &out, &bad), 0, "empty string");
        tap_streq(out, "", "empty result");
        free(out);
        tap_inteq(specifier_expand("%%%%n", &ctx, &out, &bad), 0, "%%%% then n");
        tap_streq(out, "%%n", "escaped percent signs");
        free(out);
        tap_inteq(specifier_expand("%N", &plain, &out, &bad), 0, "%%N plain");
        tap_streq(out, "db", "%%N drops the suffix");
        free(out);
        out = (char *) "untouched";
        tap_inteq(specifier_expand("a%hb", &ctx, &out, &bad), -EBADMSG, "unknown specifier %%h");
        tap_inteq(bad, 'h', "bad is h");
        tap_streq(out, "untouched", "failure leaves *ret alone");
        tap_inteq(specifier_expand("abc%", &ctx, &out, &bad), -EBADMSG, "lone %% at the end");
        tap_inteq(bad, '\0', "bad is NUL at the end");
        tap_inteq(specifier_expand("%I", &ctx, &out, &bad), -EBADMSG, "%%I is not supported");
        tap_inteq(bad, 'I', "bad is I");

        /* expanding many %n past 1 MiB */
        size_t n = 80000;
        char *s = malloc(n * 2 + 1);
        for (size_t i = 0; i < n; i++)
                memcpy(s + 2 * i, "%n", 2);
        s[2 * n] = '\0';
        tap_inteq(specifier_expand(s, &ctx, &out, &bad), -E2BIG, "output over 1 MiB");
        s[2 * 60000] = '\0';
        tap_inteq(specifier_expand(s, &ctx, &out, &bad), 0, "output under 1 MiB");
        tap_inteq(strlen(out), 60000 * strlen("web@eu.service"), "long output length");
        free(out);
        free(s);
}

int main(void) {
        test_boolean();
        test_time();
        test_format_timespan();
        test_size();
        test_numbers();
        test_signal();
        test_exit_status();
        test_umask();
        test_rlimit();
        test_extract_word();
        test_cunescape();
        test_exec();
        test_environment();
        test_unit_names();
        test_user_names();
        test_paths();
        test_specifiers();
        return tap_done();
}
