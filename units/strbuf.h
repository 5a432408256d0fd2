/* A growing string buffer, always NUL-terminated once anything was added. */
#pragma once

#include <stddef.h>

#include "macro.h"

typedef struct strbuf {
        char *s;
        size_t n, cap;
} strbuf;

/* Room for extra more bytes (and the NUL); -ENOMEM on overflow or failure. */
int strbuf_reserve(strbuf *b, size_t extra);
int strbuf_append(strbuf *b, const char *s, size_t n);
static inline int strbuf_putc(strbuf *b, char c) {
        return strbuf_append(b, &c, 1);
}
/* Hands the string over, shrunk to fit; "" (not NULL) when nothing was added, NULL only
 * when even that cannot be allocated. The buffer is empty afterwards. */
char *strbuf_steal(strbuf *b);
void strbuf_done(strbuf *b);
