/* The lexer for unit and policy files: systemd's line syntax on top of inih. */
#include <fcntl.h>
#include <ini.h>
#include <stdint.h>
#include <sys/stat.h>

#include "lexer.h"

/*
 * Debian's libinih reads at most 200 bytes a line, treats " ;" inside a
 * value as a comment and does not tell the handler the line number. So
 * the reader below does systemd's lexing itself (continuations, comments,
 * CRLF, BOM, line numbers) and hands inih one short surrogate line per
 * logical line; inih's handler then dispatches the lexed line. Values never
 * pass through inih's buffer, so they keep every byte and any length.
 */

typedef struct lexer {
        const char *path;
        const char *data;
        size_t size, pos;
        unsigned next_line;
        diag_list *diags;

        char *buf; /* the current logical line */
        size_t buf_len, buf_alloc;

        char *section; /* current section, owned */
        ini_event event;
        bool section_pending; /* the "[x]" surrogate was sent, its event not yet */
        int error;

        ini_event_fn fn;
        void *userdata;
} lexer;

static int buf_append(lexer *lx, const char *s, size_t n) {
        if (lx->buf_len + n + 1 > lx->buf_alloc) {
                size_t a = (lx->buf_len + n + 1) * 2;
                char *b = realloc(lx->buf, a);

                if (!b)
                        return -ENOMEM;
                lx->buf = b;
                lx->buf_alloc = a;
        }
        memcpy(lx->buf + lx->buf_len, s, n);
        lx->buf_len += n;
        lx->buf[lx->buf_len] = 0;
        return 0;
}

static bool ends_in_unescaped_backslash(const char *s, size_t n) {
        size_t k = 0;

        while (k < n && s[n - 1 - k] == '\\')
                k++;
        return k % 2 == 1;
}

/* Collects the next logical line into lx->buf. Returns its first line
 * number, 0 at the end of input, or -ENOMEM; *broken when it was reported
 * and must be skipped. */
static int collect_logical_line(lexer *lx, bool *broken) {
        bool continuing = false;
        unsigned first = 0;
        int r;

        lx->buf_len = 0;
        if (lx->buf)
                lx->buf[0] = 0;

        while (lx->pos < lx->size) {
                const char *p = lx->data + lx->pos, *nl;
                size_t n, rest = lx->size - lx->pos;
                unsigned line = lx->next_line++;

                nl = memchr(p, '\n', rest);
                n = nl ? (size_t) (nl - p) : rest;
                lx->pos += nl ? n + 1 : n;

                if (p == lx->data && n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
                        p += 3;
                        n -= 3;
                }
                if (n > 0 && p[n - 1] == '\r')
                        n--;

                if (memchr(p, 0, n)) {
                        diag_add(lx->diags, DIAG_ERROR, lx->path, line, "line contains a NUL byte");
                        *broken = true;
                        if (!continuing)
                                first = line;
                        continuing = ends_in_unescaped_backslash(p, n);
                        if (!continuing)
                                break;
                        continue;
                }

                size_t skip = 0;
                while (skip < n && strchr(" \t", p[skip]))
                        skip++;
                /* Comment lines are skipped, also in the middle of a continuation. */
                if (skip < n && strchr("#;", p[skip]))
                        continue;
                if (!continuing && skip == n)
                        continue;

                if (!continuing)
                        first = line;
                if (ends_in_unescaped_backslash(p, n)) {
                        /* systemd replaces the backslash by a space. */
                        r = buf_append(lx, p, n - 1);
                        if (r >= 0)
                                r = buf_append(lx, " ", 1);
                        if (r < 0)
                                return r;
                        continuing = true;
                        continue;
                }
                r = buf_append(lx, p, n);
                if (r < 0)
                        return r;
                continuing = false;
                break;
        }

        if (first == 0)
                return 0;
        /* A continuation at the end of input ends the line there. */
        if (!lx->buf) {
                r = buf_append(lx, "", 0);
                if (r < 0)
                        return r;
        }
        return (int) first;
}

static int read_logical_line(lexer *lx) {
        for (;;) {
                bool broken = false;
                int r = collect_logical_line(lx, &broken);

                if (r <= 0 || !broken)
                        return r;
        }
}

/* Turns the next logical line into lx->event. 1: an event is ready, 0: end. */
static int lex_next(lexer *lx) {
        char esc[INI_ESCAPE_MAX];

        for (;;) {
                int line = read_logical_line(lx);
                char *l, *eq, *key;

                if (line <= 0)
                        return line;

                l = strstrip(lx->buf);
                if (*l == '[') {
                        size_t n = strlen(l);
                        char *name;

                        if (n < 2 || l[n - 1] != ']') {
                                diag_add(lx->diags, DIAG_ERROR, lx->path, line,
                                         "invalid section header %s: missing ']'",
                                         ini_escape(l, esc, sizeof(esc)));
                                continue;
                        }
                        l[n - 1] = 0;
                        name = l + 1;
                        if (!*name || strpbrk(name, "[]")) {
                                diag_add(lx->diags, DIAG_ERROR, lx->path, line,
                                         "invalid section name [%s]",
                                         ini_escape(name, esc, sizeof(esc)));
                                continue;
                        }
                        free(lx->section);
                        lx->section = strdup(name);
                        if (!lx->section)
                                return -ENOMEM;
                        lx->event = (ini_event){
                                .kind = INI_SECTION,
                                .section = lx->section,
                                .line = (unsigned) line,
                        };
                        return 1;
                }

                eq = strchr(l, '=');
                if (!eq) {
                        diag_add(lx->diags, DIAG_ERROR, lx->path, line,
                                 "expected Key=Value, a [Section] header or a comment, got %s",
                                 ini_escape(l, esc, sizeof(esc)));
                        continue;
                }
                *eq = 0;
                key = strstrip(l);
                if (!*key) {
                        diag_add(lx->diags, DIAG_ERROR, lx->path, line,
                                 "missing directive name before '='");
                        continue;
                }
                if (!lx->section) {
                        diag_add(lx->diags, DIAG_ERROR, lx->path, line,
                                 "%s= appears before any [Section] header",
                                 ini_escape(key, esc, sizeof(esc)));
                        continue;
                }
                lx->event = (ini_event){
                        .kind = INI_ASSIGNMENT,
                        .section = lx->section,
                        .key = key,
                        .value = strstrip(eq + 1),
                        .line = (unsigned) line,
                };
                return 1;
        }
}

/* inih's reader: one surrogate line per lexed event. A section becomes
 * "[s]" followed by "s=" so that inih calls the handler for it too. */
static char *lexer_read(char *str, int num, void *stream) {
        lexer *lx = stream;
        int r;

        if (num < 8 || lx->error < 0)
                return NULL;
        if (lx->section_pending) {
                lx->section_pending = false;
                memcpy(str, "s=1\n", sizeof("s=1\n"));
                return str;
        }
        r = lex_next(lx);
        if (r <= 0) {
                if (r < 0)
                        lx->error = r;
                return NULL;
        }
        if (lx->event.kind == INI_SECTION) {
                lx->section_pending = true;
                memcpy(str, "[s]\n", sizeof("[s]\n"));
        } else
                memcpy(str, "a=1\n", sizeof("a=1\n"));
        return str;
}

static int lexer_handle(void *user, const char *section, const char *name, const char *value) {
        lexer *lx = user;
        int r;

        if (lx->error < 0)
                return 1;
        r = lx->fn(&lx->event, lx->userdata);
        if (r < 0)
                lx->error = r;
        return 1;
}

int ini_parse_buffer(const char *path, const char *data, size_t size, diag_list *diags,
                     ini_event_fn fn, void *userdata) {
        lexer lx = {
                .path = path,
                .data = data,
                .size = size,
                .next_line = 1,
                .diags = diags,
                .fn = fn,
                .userdata = userdata,
        };
        int r;

        r = ini_parse_stream(lexer_read, &lx, lexer_handle, &lx);
        free(lx.buf);
        free(lx.section);
        if (lx.error < 0)
                return lx.error;
        if (r == -2)
                return -ENOMEM;
        /* Our surrogate lines are always well-formed. */
        return r == 0 ? 0 : -EIO;
}

const char *ini_escape(const char *s, char *buf, size_t len) {
        const size_t cut = 60;
        size_t o = 0, i;

        for (i = 0; s[i] && i < cut && o + 8 < len; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c < 0x20 || c >= 0x7f)
                        o += (size_t) snprintf(buf + o, len - o, "\\x%02x", c);
                else if (c == '"' || c == '\\') {
                        buf[o++] = '\\';
                        buf[o++] = (char) c;
                } else
                        buf[o++] = (char) c;
        }
        if (s[i] && o + 4 < len) {
                memcpy(buf + o, "...", 3);
                o += 3;
        }
        buf[o] = 0;
        return buf;
}
