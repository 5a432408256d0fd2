/* A minimal TAP producer for vigil's unit tests. */
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 2, 3))) static inline int tap_ok(int cond, const char *fmt, ...) {
        va_list ap;

        printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
        if (!cond)
                tap_failed++;
        return cond;
}

/* Compares strings, printing both on mismatch (NULL allowed). */
#define tap_streq(got, want, ...)                                                                  \
        ({                                                                                         \
                const char *_g = (got), *_w = (want);                                              \
                int _ok = (!_g && !_w) || (_g && _w && strcmp(_g, _w) == 0);                       \
                if (!tap_ok(_ok, __VA_ARGS__))                                                     \
                        printf("#   got:  \"%s\"\n#   want: \"%s\"\n", _g ? _g : "(null)",         \
                               _w ? _w : "(null)");                                                \
                _ok;                                                                               \
        })

#define tap_inteq(got, want, ...)                                                                  \
        ({                                                                                         \
                long long _g = (long long) (got), _w = (long long) (want);                         \
                if (!tap_ok(_g == _w, __VA_ARGS__))                                                \
                        printf("#   got:  %lld\n#   want: %lld\n", _g, _w);                        \
                _g == _w;                                                                          \
        })

static inline int tap_done(void) {
        printf("1..%d\n", tap_n);
        return tap_failed ? 1 : 0;
}
