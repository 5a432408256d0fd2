/* A growing string buffer, always NUL-terminated once anything was added. */
#include <stdint.h>

#include "strbuf.h"

int strbuf_reserve(strbuf *b, size_t extra) {
        size_t want, cap;
        char *s;

        if (extra > SIZE_MAX / 2 - b->n)
                return -ENOMEM;
        want = b->n + extra + 1;
        if (want <= b->cap)
                return 0;
        cap = b->cap * 2;
        if (cap < want)
                cap = want;
        if (cap < 32)
                cap = 32;
        s = realloc(b->s, cap);
        if (!s)
                return -ENOMEM;
        b->s = s;
        b->cap = cap;
        return 0;
}

int strbuf_append(strbuf *b, const char *s, size_t n) {
        int r;

        r = strbuf_reserve(b, n);
        if (r < 0)
                return r;
        memcpy(b->s + b->n, s, n);
        b->n += n;
        b->s[b->n] = '\0';
        return 0;
}

char *strbuf_steal(strbuf *b) {
        char *s, *t;

        if (!b->s && strbuf_reserve(b, 0) < 0)
                return NULL;
        b->s[b->n] = '\0';
        s = TAKE_PTR(b->s);
        /* Shrunk to fit: argv vectors keep thousands of these. */
        t = realloc(s, b->n + 1);
        b->n = b->cap = 0;
        return t ?: s;
}

void strbuf_done(strbuf *b) {
        free(b->s);
        *b = (strbuf){};
}
