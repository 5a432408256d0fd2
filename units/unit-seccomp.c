/* System call filter directives: SystemCallFilter=, SystemCallErrorNumber=,
 * SystemCallArchitectures=. */
#include <errno.h>
#include <string.h>

#include "unit-private.h"

/* One word of SystemCallFilter=: "name", "@group", or "name:ERRNO" in a deny list. */
static int filter_word(load_ctx *c, unit_seccomp *s, char *w, bool invert) {
        char esc[INI_ESCAPE_MAX];
        char *colon = strchr(w, ':');
        int error = SECCOMP_ERROR_DEFAULT, r;

        if (colon) {
                *colon = 0;
                if (!invert)
                        return load_report(c,
                                           "SystemCallFilter=%s:%s: only a deny list (\"~\") "
                                           "entry can name an errno",
                                           ini_escape(w, esc, sizeof(esc)), colon + 1);
                if (seccomp_parse_error(colon + 1, &error) < 0)
                        return load_report(c,
                                           "SystemCallFilter=: \"%s\" is not an errno name, a "
                                           "number 1..4095 or \"kill\"",
                                           ini_escape(colon + 1, esc, sizeof(esc)));
        }
        r = seccomp_filter_apply(s, w, error, invert);
        if (r == -EINVAL)
                return load_report(c,
                                   w[0] == '@' ? "SystemCallFilter=: unknown system call group "
                                                 "\"%s\""
                                               : "SystemCallFilter=: unknown system call \"%s\"",
                                   ini_escape(w, esc, sizeof(esc)));
        return r;
}

static int parse_filter(load_ctx *c, const char *value, void *field) {
        unit_seccomp *s = field;
        const char *p = value;
        bool invert = false;
        int r;

        if (!*value) {
                seccomp_filter_reset(s);
                return 0;
        }
        if (*p == '~') {
                invert = true;
                p++;
        }
        r = seccomp_filter_begin(s, invert);
        if (r < 0)
                return r;
        for (;;) {
                _cleanup_free_ char *w = NULL;

                r = load_next_word(c, &p, value, &w);
                if (r < 0)
                        return r;
                if (r == 0)
                        return 0;
                r = filter_word(c, s, w, invert);
                if (r < 0)
                        return r;
        }
}

static int parse_error_number(load_ctx *c, const char *value, void *field) {
        int *e = field;

        if (!*value) {
                *e = SECCOMP_ERROR_DEFAULT;
                return 0;
        }
        if (seccomp_parse_error(value, e) < 0)
                return load_invalid(c, value,
                                    "expected an errno name (EPERM), a number 1..4095 "
                                    "or \"kill\"");
        return 0;
}

static int parse_architectures(load_ctx *c, const char *value, void *field) {
        uint32_t *archs = field, add = 0;
        const char *p = value;
        int r;

        if (!*value) {
                *archs = 0;
                return 0;
        }
        for (;;) {
                _cleanup_free_ char *w = NULL;
                uint32_t bit;

                r = load_next_word(c, &p, value, &w);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (seccomp_arch_from_string(w, &bit) < 0) {
                        char esc[INI_ESCAPE_MAX];

                        return load_report(c,
                                           "SystemCallArchitectures=: unknown architecture "
                                           "\"%s\" (expected native, x86-64, x86, x32 or "
                                           "another of systemd's names)",
                                           ini_escape(w, esc, sizeof(esc)));
                }
                add |= bit;
        }
        *archs |= add; /* repeated assignments add up */
        return 0;
}

const directive seccomp_directives[] = {
        { "Service", "SystemCallFilter", parse_filter, offsetof(unit_layout, seccomp), D_POLICY,
          0 },
        { "Service", "SystemCallErrorNumber", parse_error_number, F_SECCOMP(error_number), D_POLICY,
          0 },
        { "Service", "SystemCallArchitectures", parse_architectures, F_SECCOMP(archs), D_POLICY,
          0 },
};
const size_t N_SECCOMP_DIRECTIVES = ELEMENTSOF(seccomp_directives);

const unit_seccomp unit_seccomp_defaults = UNIT_SECCOMP_DEFAULTS;

void unit_seccomp_free(const unit_seccomp *s) {
        if (s == &unit_seccomp_defaults)
                return;
        seccomp_filter_reset((unit_seccomp *) s);
        free((unit_seccomp *) s);
}

/* Nothing to check across directives: each one takes effect on its own (the error number
 * also applies to the container baseline). */
void unit_seccomp_verify(load_ctx *c) {
}
