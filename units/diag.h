/* Diagnostics collected by the loaders: PATH:LINE: error|warning: MESSAGE. */
#pragma once

#include <stddef.h>

#include "macro.h"

typedef enum diag_level {
        DIAG_WARNING,
        DIAG_ERROR,
} diag_level;

typedef struct diag {
        char *path;
        unsigned line; /* 0: the problem concerns the whole file */
        diag_level level;
        char *message;
} diag;

/* Libraries never print: they append here and the caller decides. */
typedef struct diag_list {
        diag *items;
        size_t n;
        size_t n_errors;
        bool oom; /* a diagnostic could not be stored */
} diag_list;

#define DIAG_MAX 1000 /* further diagnostics are counted in oom-free silence */

_printf_(5, 6) void diag_add(diag_list *l, diag_level level, const char *path, unsigned line,
                             const char *fmt, ...);
void diag_list_done(diag_list *l);
/* "PATH:LINE: error: MESSAGE\n" into f, in the order they were added. */
void diag_list_print(const diag_list *l, FILE *f);
