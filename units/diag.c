/* Diagnostics collected by the loaders. */
#include <stdarg.h>

#include "diag.h"

void diag_add(diag_list *l, diag_level level, const char *path, unsigned line, const char *fmt,
              ...) {
        _cleanup_free_ char *msg = NULL, *p = NULL;
        va_list ap;
        diag *items;
        int r;

        if (level == DIAG_ERROR)
                l->n_errors++;
        if (l->n >= DIAG_MAX)
                return;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                l->oom = true;
                return;
        }
        p = strdup(path ? path : "-");
        items = realloc(l->items, (l->n + 1) * sizeof(diag));
        if (!p || !items) {
                if (items)
                        l->items = items;
                l->oom = true;
                return;
        }
        l->items = items;
        l->items[l->n++] = (diag){
                .path = TAKE_PTR(p),
                .line = line,
                .level = level,
                .message = TAKE_PTR(msg),
        };
}

void diag_list_done(diag_list *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].path);
                free(l->items[i].message);
        }
        free(l->items);
        *l = (diag_list){};
}

void diag_list_print(const diag_list *l, FILE *f) {
        for (size_t i = 0; i < l->n; i++) {
                const diag *d = &l->items[i];

                fprintf(f, "%s:%u: %s: %s\n", d->path, d->line,
                        d->level == DIAG_ERROR ? "error" : "warning", d->message);
        }
        if (l->oom)
                fprintf(f, "vigil: warning: out of memory, some diagnostics were lost\n");
        else if (l->n >= DIAG_MAX)
                fprintf(f, "vigil: warning: only the first %d diagnostics are shown\n", DIAG_MAX);
}
