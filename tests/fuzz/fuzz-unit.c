/* libFuzzer target: arbitrary bytes as a unit file and as a policy file. */
#include <stdint.h>

#include "unit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_UNIT_NAME "fuzz@inst.service"
#define FUZZ_UNIT_PATH "fuzz.service"
#define FUZZ_POLICY_PATH "fuzz.policy"

/* A loader bug must be a crash, so that libFuzzer keeps the input. */
static void fail(const char *what, const diag *d) {
        fprintf(stderr, "fuzz-unit: %s", what);
        if (d)
                fprintf(stderr, " (diagnostic %s:%u: %s)", d->path ? d->path : "(null)", d->line,
                        d->message ? d->message : "(null)");
        fputc('\n', stderr);
        abort();
}

/* Valid UTF-8 with no control characters: what a terminal shows as one line. */
static bool is_printable_line(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                size_t n;
                uint32_t c;

                if (*p < 0x20 || *p == 0x7f)
                        return false;
                if (*p < 0x80) {
                        p++;
                        continue;
                }
                if ((*p & 0xe0) == 0xc0) {
                        n = 1;
                        c = *p & 0x1f;
                } else if ((*p & 0xf0) == 0xe0) {
                        n = 2;
                        c = *p & 0x0f;
                } else if ((*p & 0xf8) == 0xf0) {
                        n = 3;
                        c = *p & 0x07;
                } else
                        return false;
                p++;
                for (size_t i = 0; i < n; i++, p++) {
                        if ((*p & 0xc0) != 0x80)
                                return false;
                        c = (c << 6) | (*p & 0x3f);
                }
                /* overlong forms, surrogates, beyond Unicode, C1 controls */
                if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) || (n == 3 && c < 0x10000) ||
                    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff || (c >= 0x80 && c < 0xa0))
                        return false;
        }
        return true;
}

static unsigned count_lines(const uint8_t *data, size_t size) {
        unsigned n = 1;

        for (size_t i = 0; i < size; i++)
                if (data[i] == '\n')
                        n++;
        return n;
}

static void check_diags(const diag_list *l, const char *path, unsigned max_line) {
        size_t n_errors = 0;

        if (l->n > DIAG_MAX)
                fail("more diagnostics stored than DIAG_MAX", NULL);
        if (l->n > 0 && !l->items)
                fail("diagnostics counted but not stored", NULL);
        for (size_t i = 0; i < l->n; i++) {
                const diag *d = &l->items[i];

                if (!d->path || !streq(d->path, path))
                        fail("diagnostic names another file", d);
                if (d->line > max_line)
                        fail("diagnostic line beyond the end of the input", d);
                if (d->level != DIAG_WARNING && d->level != DIAG_ERROR)
                        fail("diagnostic with an invalid level", d);
                if (isempty(d->message))
                        fail("empty diagnostic message", d);
                if (!is_printable_line(d->message))
                        fail("diagnostic message is not one printable line", d);
                if (d->level == DIAG_ERROR)
                        n_errors++;
        }
        if (n_errors > l->n_errors)
                fail("more errors stored than counted", NULL);
}

static void check_unit(const unit *u) {
        unit_source s;

        if (!u->name || !streq(u->name, FUZZ_UNIT_NAME))
                fail("unit has the wrong name", NULL);
        if (!u->prefix || !streq(u->prefix, "fuzz"))
                fail("unit has the wrong prefix", NULL);
        if (!unit_instance(u) || !streq(unit_instance(u), "inst"))
                fail("unit has the wrong instance", NULL);
        if (u->type >= _SERVICE_TYPE_MAX || u->restart >= _RESTART_MODE_MAX ||
            u->kill_mode >= _KILL_MODE_MAX)
                fail("unit enum out of range", NULL);
        if (!service_type_to_string(u->type) || !restart_mode_to_string(u->restart) ||
            !kill_mode_to_string(u->kill_mode))
                fail("unit enum without a name", NULL);
        if (unit_directive_source(u, "Service", "ExecStart", &s) && (!s.path || s.line == 0))
                fail("ExecStart= source without file:line", NULL);
        for (size_t i = 0; i < u->exec_start.n; i++)
                if (!u->exec_start.items[i].argv || !u->exec_start.items[i].argv[0])
                        fail("ExecStart= command without argv[0]", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static FILE *devnull;
        unsigned max_line = count_lines(data, size);
        diag_list diags = {};
        unit *u = NULL;
        int r;

        if (!devnull)
                devnull = fopen("/dev/null", "we");

        r = unit_load_buffer(FUZZ_UNIT_NAME, FUZZ_UNIT_PATH, (const char *) data, size, &diags, &u);
        check_diags(&diags, FUZZ_UNIT_PATH, max_line);
        if (r >= 0) {
                if (!u)
                        fail("unit_load_buffer() succeeded without a unit", NULL);
                if (diags.n_errors > 0)
                        fail("unit_load_buffer() succeeded despite errors", NULL);
                check_unit(u);
        } else {
                if (u)
                        fail("unit_load_buffer() failed but returned a unit", NULL);
                if (diags.n_errors == 0 && !diags.oom)
                        fail("unit_load_buffer() failed without reporting an error", NULL);
        }
        if (devnull)
                diag_list_print(&diags, devnull);
        u = unit_free(u);
        diag_list_done(&diags);

        r = policy_check_buffer(FUZZ_POLICY_PATH, (const char *) data, size, &diags);
        check_diags(&diags, FUZZ_POLICY_PATH, max_line);
        if (r >= 0 && diags.n_errors > 0)
                fail("policy_check_buffer() succeeded despite errors", NULL);
        if (r < 0 && diags.n_errors == 0 && !diags.oom)
                fail("policy_check_buffer() failed without reporting an error", NULL);
        if (devnull)
                diag_list_print(&diags, devnull);
        diag_list_done(&diags);

        return 0;
}
