/* cfg_diag: the error and warning lines of one load. */
#include "cfg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void push(char ***v, size_t *n, char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (!nv) {
        free(s);
        return;
    }
    nv[(*n)++] = s;
    *v = nv;
}

void cfg_diag_add(cfg_diag *d, bool warning, const char *name, cfg_pos pos, const char *path,
                  const char *fmt, ...)
{
    if (!d)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char *line = NULL;
    const char *sep = path && *path ? ": " : "";
    int r;
    if (pos.line > 0)
        r = asprintf(&line, "%s:%d:%d: %s%s%s", name, pos.line, pos.col, path ? path : "", sep,
                     msg);
    else
        r = asprintf(&line, "%s: %s%s%s", name, path ? path : "", sep, msg);
    if (r < 0)
        return;
    if (warning)
        push(&d->warnings, &d->n_warnings, line);
    else
        push(&d->errors, &d->n_errors, line);
}

void cfg_diag_fini(cfg_diag *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_errors; i++)
        free(d->errors[i]);
    for (size_t i = 0; i < d->n_warnings; i++)
        free(d->warnings[i]);
    free(d->errors);
    free(d->warnings);
    memset(d, 0, sizeof(*d));
}
