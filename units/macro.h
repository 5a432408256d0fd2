/* Small helpers shared by every part of vigil: cleanup attributes and ownership moves. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_ __attribute__((warn_unused_result))

/* Hand an owned pointer or fd to someone else and leave the variable empty. */
#define TAKE_PTR(p)                                                                                \
        ({                                                                                         \
                __typeof__(p) _p = (p);                                                            \
                (p) = NULL;                                                                        \
                _p;                                                                                \
        })
#define TAKE_FD(fd)                                                                                \
        ({                                                                                         \
                int _fd = (fd);                                                                    \
                (fd) = -1;                                                                         \
                _fd;                                                                               \
        })

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

/* Replaces *p with a copy of s (NULL: none): 0, or -ENOMEM leaving *p as it was. */
static inline int free_and_strdup(char **p, const char *s) {
        char *d = NULL;

        if (s && !(d = strdup(s)))
                return -ENOMEM;
        free(*p);
        *p = d;
        return 0;
}

/* Closes fd if open; returns -1 to store back: fd = safe_close(fd). */
static inline int safe_close(int fd) {
        if (fd >= 0)
                close(fd);
        return -1;
}

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* asprintf() that leaves *ret NULL on failure (glibc leaves it undefined), so that a
 * _cleanup_free_ variable is never freed twice. */
#define asprintf_safe(ret, ...)                                                                    \
        ({                                                                                         \
                int _r = asprintf(ret, __VA_ARGS__);                                               \
                if (_r < 0)                                                                        \
                        *(ret) = NULL;                                                             \
                _r;                                                                                \
        })

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool isempty(const char *s) {
        return !s || !*s;
}

/* Returns the rest of s after prefix, or NULL when s does not start with it. */
static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

static inline bool endswith(const char *s, const char *suffix) {
        size_t ls = strlen(s), lx = strlen(suffix);
        return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

#define WHITESPACE " \t\n\r"

/* Trims whitespace at both ends, in place. */
static inline char *strstrip(char *s) {
        char *e;

        s += strspn(s, WHITESPACE);
        e = s + strlen(s);
        while (e > s && strchr(WHITESPACE, e[-1]))
                e--;
        *e = '\0';
        return s;
}
