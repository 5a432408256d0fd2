/* NULL-terminated string vectors: the list type of the unit model. */
#pragma once

#include <stddef.h>

#include "macro.h"

char **strv_free(char **l);
size_t strv_length(char *const *l);
/* Appends a copy of s; -ENOMEM on failure, l unchanged. */
int strv_extend(char ***l, const char *s);
/* Appends s itself (taking ownership only on success). */
int strv_push(char ***l, char *s);
char **strv_copy(char *const *l);
bool strv_contains(char *const *l, const char *s);

/* Environment blocks (NAME=VALUE entries). */
/* The value of the len-byte name in env, or NULL. */
const char *strv_env_get_n(char *const *env, const char *name, size_t len);
/* Puts assignment into *env, replacing an earlier entry of its name; takes the string
 * on success only. */
int strv_env_replace(char ***env, char *assignment);

static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)
