/* Tests for the unit-file lexer: comments, continuations, CRLF, BOM, NUL, long lines. */
#include "lexer.h"
#include "strv.h"
#include "tap.h"

/* Renders events as "L:[Section]" and "L:Key=Value" lines, diagnostics as "L:error:msg". */
static int record(const ini_event *ev, void *userdata) {
        char ***out = userdata, *s;
        int r;

        if (ev->kind == INI_SECTION)
                r = asprintf(&s, "%u:[%s]", ev->line, ev->section);
        else
                r = asprintf(&s, "%u:%s.%s=%s", ev->line, ev->section, ev->key, ev->value);
        if (r < 0)
                return -ENOMEM;
        return strv_push(out, s);
}

static char *lex(const char *data, size_t size) {
        _cleanup_strv_free_ char **out = NULL;
        diag_list diags = {};
        char *joined = NULL;
        size_t len = 0;
        FILE *f;

        tap_ok(ini_parse_buffer("t", data, size, &diags, record, &out) == 0, "parse returns 0");
        f = open_memstream(&joined, &len);
        STRV_FOREACH(s, out)
                fprintf(f, "%s|", *s);
        for (size_t i = 0; i < diags.n; i++)
                fprintf(f, "%u:%s:%s|", diags.items[i].line,
                        diags.items[i].level == DIAG_ERROR ? "error" : "warning",
                        diags.items[i].message);
        fclose(f);
        diag_list_done(&diags);
        return joined;
}

#define LEX(s) lex(s, sizeof(s) - 1)

#define CHECK(input, want, name)                                                                   \
        do {                                                                                       \
                _cleanup_free_ char *got = LEX(input);                                             \
                tap_streq(got, want, name);                                                        \
        } while (0)

static void test_long_line(void) {
        size_t n = 64 * 1024 + 100;
        _cleanup_free_ char *data = malloc(n + 32), *got = NULL;
        size_t l;

        l = (size_t) sprintf(data, "[S]\nK=");
        memset(data + l, 'x', n);
        l += n;
        memcpy(data + l, " ; y # z\n", 9);
        l += 9;
        got = lex(data, l);
        tap_ok(got && strlen(got) == strlen("1:[S]|2:S.K=") + n + strlen(" ; y # z|"),
               "a 64 KiB logical line is kept whole, with ; and # in it");
        tap_ok(got && strstr(got, "x ; y # z|") != NULL, "its tail is intact");
}

static void test_many_continuations(void) {
        /* 100000 continued lines: neither recursion nor quadratic behaviour. */
        size_t n = 100000;
        _cleanup_free_ char *data = malloc(n * 3 + 16), *got = NULL;
        size_t l = (size_t) sprintf(data, "[S]\nK=");

        for (size_t i = 0; i < n; i++) {
                memcpy(data + l, "a\\\n", 3);
                l += 3;
        }
        got = lex(data, l);
        tap_ok(got && strncmp(got, "1:[S]|2:S.K=a a a", 17) == 0,
               "100000 continuation lines join into one value");
}

static void test_nul_lines(void) {
        size_t n = 200000;
        _cleanup_free_ char *data = calloc(n, 2), *got = NULL;

        for (size_t i = 0; i < n; i++)
                data[2 * i + 1] = '\n';
        got = lex(data, 2 * n);
        tap_ok(got && strncmp(got, "1:error:line contains a NUL byte|2:error:", 41) == 0,
               "200000 NUL lines are each reported, without recursion");
}

int main(void) {
        CHECK("[Unit]\nDescription=hello world\n", "1:[Unit]|2:Unit.Description=hello world|",
              "section and assignment");
        CHECK("# c\n; c\n  # indented\n[S]\n\n\tK = v \n", "4:[S]|6:S.K=v|",
              "comments, blank lines and whitespace around = and the value");
        CHECK("[S]\nExecStart=/bin/sh -c \"a ; b\" # not a comment\n",
              "1:[S]|2:S.ExecStart=/bin/sh -c \"a ; b\" # not a comment|",
              "; and # inside a value are kept");
        CHECK("[S]\nK=one \\\n  two\nL=x\n", "1:[S]|2:S.K=one    two|4:S.L=x|",
              "a continuation replaces the backslash by a space and keeps the next line");
        CHECK("[S]\nK=a\\\n# comment\n; other\nb\n", "1:[S]|2:S.K=a b|",
              "comment lines inside a continuation are skipped");
        CHECK("[S]\nK=a\\\n\nL=b\n", "1:[S]|2:S.K=a|4:S.L=b|", "an empty line ends a continuation");
        CHECK("[S]\nK=end\\", "1:[S]|2:S.K=end|", "a continuation at the end of the file");
        CHECK("[S]\nK=end\\\n", "1:[S]|2:S.K=end|", "a continuation before a final newline");
        CHECK("[S]\nK=x\\\\\nL=y\n", "1:[S]|2:S.K=x\\\\|3:S.L=y|",
              "an escaped backslash at the end does not continue");
        CHECK("[S]\r\nK=v\r\nL=w\r\n", "1:[S]|2:S.K=v|3:S.L=w|", "CRLF line endings");
        CHECK("\xef\xbb\xbf[S]\nK=v\n", "1:[S]|2:S.K=v|", "a UTF-8 BOM is skipped");
        CHECK("[S]\n\xef\xbb\xbfK=v\n", "1:[S]|2:S.\xef\xbb\xbfK=v|",
              "a BOM elsewhere is part of the text");
        CHECK("[S]\nK=v\n[S]\nK=w\n", "1:[S]|2:S.K=v|3:[S]|4:S.K=w|",
              "duplicate sections are both reported");
        CHECK("[S]\nK=\n", "1:[S]|2:S.K=|", "an empty value");
        CHECK("[S]\nK=a=b\n", "1:[S]|2:S.K=a=b|", "only the first = splits");
        CHECK("[S]\nnovalue\nK=v\n",
              "1:[S]|3:S.K=v|2:error:expected Key=Value, a [Section] header or a comment, got "
              "novalue|",
              "a line without = is an error and skipped");
        CHECK("K=v\n[S]\n", "2:[S]|1:error:K= appears before any [Section] header|",
              "an assignment before any section");
        CHECK("[S]\n=v\n", "1:[S]|2:error:missing directive name before '='|",
              "an empty directive name");
        CHECK("[S\nK=v\n",
              "1:error:invalid section header [S: missing ']'|2:error:K= appears "
              "before any [Section] header|",
              "an unterminated section header");
        CHECK("[]\n", "1:error:invalid section name []|", "an empty section name");
        CHECK("[a]b]\n", "1:error:invalid section name [a]b]|", "brackets inside a section name");
        CHECK("[S]\nK=a\0b\nL=c\n", "1:[S]|3:S.L=c|2:error:line contains a NUL byte|",
              "a NUL byte is reported with its line and the line skipped");
        CHECK("[S]\nK=a\\\nb\0c\\\nd\nL=e\n", "1:[S]|5:S.L=e|3:error:line contains a NUL byte|",
              "a NUL byte inside a continuation drops the whole logical line");
        CHECK("[S]\nK=\x01\x7f\xff\n", "1:[S]|2:S.K=\x01\x7f\xff|", "other bytes are kept");
        CHECK("", "", "an empty file");
        CHECK("   \n\n\t\n", "", "a file of whitespace");
        CHECK("[S]\nA=1\\\n2\\\n3\nB=4\n", "1:[S]|2:S.A=1 2 3|5:S.B=4|",
              "line numbers after a continuation");
        CHECK("[S]\n   K   =   spaced value   \n", "1:[S]|2:S.K=spaced value|",
              "whitespace around key and value");
        CHECK("[S] \nK=v\n", "1:[S]|2:S.K=v|", "trailing whitespace after a section header");
        test_long_line();
        test_many_continuations();
        test_nul_lines();

        {
                char buf[INI_ESCAPE_MAX];

                tap_streq(ini_escape("a\nb\x80", buf, sizeof(buf)), "a\\x0ab\\x80",
                          "ini_escape escapes control and non-ASCII bytes");
                tap_streq(ini_escape("0123456789012345678901234567890123456789012345678901234567"
                                     "890123456789",
                                     buf, sizeof(buf)),
                          "012345678901234567890123456789012345678901234567890123456789...",
                          "ini_escape cuts long text");
        }
        return tap_done();
}
