/* cfg_schema: decode a YAML mapping into a struct along a declarative table (the Fluent Bit
 * config-map idea): each section lists (key, type, offset, default, range) once, and one
 * decoder does defaults, type and range checks, unknown keys and required keys for all of
 * them, so every section reports the same messages at the same places. */
#include "cfg_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- messages and paths ---- */

static void vreport(cfg_ctx *x, bool warning, const cfg_node *at, const char *fmt, va_list ap)
{
    char msg[1536];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    cfg_pos pos = at ? at->pos : (cfg_pos){1, 1};
    cfg_diag_add(x->d, warning, x->name, pos, x->path, "%s", msg);
    if (!warning)
        x->errors++;
}

void cfg_err(cfg_ctx *x, const cfg_node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(x, false, at, fmt, ap);
    va_end(ap);
}

void cfg_warn(cfg_ctx *x, const cfg_node *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(x, true, at, fmt, ap);
    va_end(ap);
}

void cfg_err_key(cfg_ctx *x, const cfg_node *m, const char *key, const char *fmt, ...)
{
    size_t old = cfg_path_key(x, key);
    va_list ap;
    va_start(ap, fmt);
    vreport(x, false, cfg_node_get(m, key), fmt, ap);
    va_end(ap);
    cfg_path_pop(x, old);
}

void cfg_warn_key(cfg_ctx *x, const cfg_node *m, const char *key, const char *fmt, ...)
{
    size_t old = cfg_path_key(x, key);
    va_list ap;
    va_start(ap, fmt);
    vreport(x, true, cfg_node_get(m, key), fmt, ap);
    va_end(ap);
    cfg_path_pop(x, old);
}

size_t cfg_path_key(cfg_ctx *x, const char *key)
{
    size_t old = x->plen;
    int n = snprintf(x->path + x->plen, sizeof(x->path) - x->plen, "%s%s", x->plen ? "." : "", key);
    if (n > 0)
        x->plen = strnlen(x->path, sizeof(x->path) - 1);
    return old;
}

size_t cfg_path_index(cfg_ctx *x, size_t i)
{
    size_t old = x->plen;
    int n = snprintf(x->path + x->plen, sizeof(x->path) - x->plen, "[%zu]", i);
    if (n > 0)
        x->plen = strnlen(x->path, sizeof(x->path) - 1);
    return old;
}

void cfg_path_pop(cfg_ctx *x, size_t len)
{
    x->plen = len;
    x->path[len] = 0;
}

void *cfg_entries_alloc(cfg_ctx *x, const cfg_node *at, size_t n, int limit, const char *what,
                        size_t size)
{
    if (n > (size_t)limit) {
        cfg_err(x, at, "%zu %s, more than the limit of %d", n, what, limit);
        return NULL;
    }
    void *a = calloc(n + 1, size);
    if (!a)
        cfg_err(x, at, "out of memory");
    return a;
}

/* ---- scalar parsers: 0 or -EINVAL/-ERANGE, never report ---- */

static int parse_ll(const char *s, long long *out)
{
    char *end;
    errno = 0;
    /* decimal, or 0x hex; not C's octal: "010" in a port or a count means ten */
    const char *digits = s + (*s == '-' || *s == '+');
    int base = digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X') ? 16 : 10;
    long long v = strtoll(s, &end, base);
    if (end == s || *end || isspace((unsigned char)*s))
        return -EINVAL;
    if (errno == ERANGE)
        return -ERANGE;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || isspace((unsigned char)*s) || !isfinite(v))
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    /* YAML 1.1 spellings, as the Python framework (PyYAML) accepted them */
    static const char *const yes[] = {"true", "yes", "on", "y"};
    static const char *const no[] = {"false", "no", "off", "n"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(s, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int cfg_schema_parse_duration(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || isspace((unsigned char)*s) || !isfinite(v))
        return -EINVAL;
    double mul = 1;
    if (!*end || !strcmp(end, "s"))
        mul = 1;
    else if (!strcmp(end, "ms"))
        mul = 1e-3;
    else if (!strcmp(end, "m") || !strcmp(end, "min"))
        mul = 60;
    else if (!strcmp(end, "h"))
        mul = 3600;
    else
        return -EINVAL;
    *out = v * mul;
    return 0;
}

int cfg_schema_parse_size(const char *s, size_t *out)
{
    static const struct {
        const char *sfx;
        unsigned long long mul;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"K", 1ull << 10},
        {"KiB", 1ull << 10},
        {"k", 1ull << 10},
        {"kB", 1000},
        {"KB", 1000},
        {"M", 1ull << 20},
        {"MiB", 1ull << 20},
        {"MB", 1000000},
        {"G", 1ull << 30},
        {"GiB", 1ull << 30},
        {"GB", 1000000000},
    };
    char *end;
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].sfx))
            continue;
        if (v > SIZE_MAX / units[i].mul)
            return -ERANGE;
        *out = (size_t)(v * units[i].mul);
        return 0;
    }
    return -EINVAL;
}

char *cfg_schema_abspath(const char *dir, const char *p)
{
    if (p[0] == '/' || !dir)
        return strdup(p);
    char *r;
    if (asprintf(&r, "%s/%s", dir, p[0] == '.' && p[1] == '/' ? p + 2 : p) < 0)
        return NULL;
    return r;
}

/* ---- did you mean ---- */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

void cfg_schema_unknown(cfg_ctx *x, const cfg_node *k, const cfg_field *t, size_t nt)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < nt; i++) {
        size_t dist = edit_distance(k->str, t[i].key);
        if (dist < best_d) {
            best_d = dist;
            best = t[i].key;
        }
    }
    size_t old = cfg_path_key(x, k->str);
    if (best && best_d <= 2 && best_d < strlen(k->str)) {
        cfg_err(x, k, "unknown key (did you mean \"%s\"?)", best);
    } else {
        char allowed[768] = "";
        size_t used = 0;
        for (size_t i = 0; i < nt && used < sizeof(allowed); i++) {
            int n =
                snprintf(allowed + used, sizeof(allowed) - used, "%s%s", i ? ", " : "", t[i].key);
            if (n < 0)
                break;
            used += (size_t)n;
        }
        cfg_err(x, k, "unknown key (allowed: %s)", allowed);
    }
    cfg_path_pop(x, old);
}

bool cfg_schema_has(const cfg_field *t, size_t nt, const char *key)
{
    for (size_t i = 0; i < nt; i++)
        if (!strcmp(t[i].key, key))
            return true;
    return false;
}

char *cfg_schema_string(cfg_ctx *x, const cfg_node *v)
{
    if (v->type != CFG_NODE_SCALAR) {
        cfg_err(x, v, "expected a string, got %s", cfg_node_kind(v));
        return NULL;
    }
    char *s = strdup(v->str);
    if (!s)
        cfg_err(x, v, "out of memory");
    return s;
}

/* ---- one value ---- */

static bool in_range(const cfg_field *f, double v)
{
    return (f->min == 0 && f->max == 0) || (v >= f->min && v <= f->max);
}

static void range_error(cfg_ctx *x, const cfg_node *v, const cfg_field *f, const char *what)
{
    /* whole bounds print as integers: "65536..1073741824", not "65536..1.07374e+09" */
    bool whole = f->min == (double)(long long)f->min && f->max == (double)(long long)f->max;
    if (f->max >= 1e18)
        cfg_err(x, v, "%s must be at least %g", what, f->min);
    else if (whole)
        cfg_err(x, v, "%s is out of range %lld..%lld", what, (long long)f->min, (long long)f->max);
    else
        cfg_err(x, v, "%s is out of range %g..%g", what, f->min, f->max);
}

/* CFG_F_STR, CFG_F_PATH: a copy of the text (a path made absolute against the file's folder). */
static void decode_string(cfg_ctx *x, const cfg_field *f, const cfg_node *v, const char *text,
                          char *dst)
{
    char *s = f->type == CFG_F_PATH ? cfg_schema_abspath(x->dir, text) : strdup(text);
    if (!s) {
        cfg_err(x, v, "out of memory");
        return;
    }
    free(*(char **)dst);
    *(char **)dst = s;
}

/* CFG_F_INT, CFG_F_U32: a whole number within the field's range and its C type's. */
static void decode_integer(cfg_ctx *x, const cfg_field *f, const cfg_node *v, const char *text,
                           char *dst)
{
    long long ll;
    int r = parse_ll(text, &ll);
    if (r == -EINVAL) {
        cfg_err(x, v, "expected an integer, got \"%s\"", text);
        return;
    }
    if (r < 0 || !in_range(f, (double)ll) ||
        (f->type == CFG_F_INT && (ll < INT_MIN || ll > INT_MAX)) ||
        (f->type == CFG_F_U32 && (ll < 0 || ll > UINT32_MAX))) {
        range_error(x, v, f, text);
        return;
    }
    if (f->type == CFG_F_INT)
        *(int *)dst = (int)ll;
    else
        *(uint32_t *)dst = (uint32_t)ll;
}

/* CFG_F_BOOL, CFG_F_TRIBOOL (an int, so that -1 can stand for "not set"). */
static void decode_bool(cfg_ctx *x, const cfg_field *f, const cfg_node *v, const char *text,
                        char *dst)
{
    bool b;
    if (parse_bool(text, &b) < 0) {
        cfg_err(x, v, "expected true or false, got \"%s\"", text);
        return;
    }
    if (f->type == CFG_F_BOOL)
        *(bool *)dst = b;
    else
        *(int *)dst = b;
}

/* CFG_F_DOUBLE, CFG_F_DURATION (seconds, or with a unit: 500ms, 2s, 1m, 1h). */
static void decode_double(cfg_ctx *x, const cfg_field *f, const cfg_node *v, const char *text,
                          char *dst)
{
    double d;
    int r = f->type == CFG_F_DOUBLE ? parse_double(text, &d) : cfg_schema_parse_duration(text, &d);
    if (r < 0) {
        cfg_err(x, v, "expected %s, got \"%s\"",
                f->type == CFG_F_DOUBLE ? "a number" : "a duration (seconds, or 500ms/2s/1m/1h)",
                text);
        return;
    }
    if (!in_range(f, d)) {
        range_error(x, v, f, text);
        return;
    }
    *(double *)dst = d;
}

/* CFG_F_SIZE: bytes, or with a binary unit (64KiB, 4MiB). */
static void decode_size(cfg_ctx *x, const cfg_field *f, const cfg_node *v, const char *text,
                        char *dst)
{
    size_t sz;
    int r = cfg_schema_parse_size(text, &sz);
    if (r == -EINVAL) {
        cfg_err(x, v, "expected a size in bytes (like 65536, \"64KiB\" or \"4MiB\"), got \"%s\"",
                text);
        return;
    }
    if (r < 0 || !in_range(f, (double)sz)) {
        range_error(x, v, f, text);
        return;
    }
    *(size_t *)dst = sz;
}

/* CFG_F_ENUM: one of the field's names; the error lists them all. */
static void decode_enum(cfg_ctx *x, const cfg_field *f, const cfg_node *v, const char *text,
                        char *dst)
{
    char allowed[256] = "";
    size_t used = 0;
    for (const cfg_enum_name *e = f->names; e->name; e++) {
        if (!strcmp(e->name, text)) {
            *(int *)dst = e->value;
            return;
        }
        int n = snprintf(allowed + used, sizeof(allowed) - used, "%s%s", e == f->names ? "" : " | ",
                         e->name);
        if (n > 0 && (size_t)n < sizeof(allowed) - used)
            used += (size_t)n;
    }
    cfg_err(x, v, "expected %s, got \"%s\"", allowed, text);
}

/* text: the value's text (from v, or a default when v is NULL) */
static void decode_value(cfg_ctx *x, const cfg_field *f, const cfg_node *v, const char *text,
                         void *base)
{
    char *dst = (char *)base + f->off;
    if (f->type == CFG_F_ANY)
        return;
    if (v && v->type != CFG_NODE_SCALAR) {
        static const char *const expect[] = {
            [CFG_F_STR] = "a string",         [CFG_F_PATH] = "a path",
            [CFG_F_INT] = "an integer",       [CFG_F_U32] = "an integer",
            [CFG_F_BOOL] = "true or false",   [CFG_F_TRIBOOL] = "true or false",
            [CFG_F_DOUBLE] = "a number",      [CFG_F_DURATION] = "a duration in seconds",
            [CFG_F_SIZE] = "a size in bytes", [CFG_F_ENUM] = "a string",
            [CFG_F_NAME] = "a name",
        };
        cfg_err(x, v, "expected %s, got %s", expect[f->type], cfg_node_kind(v));
        return;
    }
    switch (f->type) {
    case CFG_F_STR:
    case CFG_F_PATH:
        decode_string(x, f, v, text, dst);
        return;
    case CFG_F_NAME:
        if (!*text)
            cfg_err(x, v, "expected a name, got an empty string");
        return;
    case CFG_F_INT:
    case CFG_F_U32:
        decode_integer(x, f, v, text, dst);
        return;
    case CFG_F_BOOL:
    case CFG_F_TRIBOOL:
        decode_bool(x, f, v, text, dst);
        return;
    case CFG_F_DOUBLE:
    case CFG_F_DURATION:
        decode_double(x, f, v, text, dst);
        return;
    case CFG_F_SIZE:
        decode_size(x, f, v, text, dst);
        return;
    case CFG_F_ENUM:
        decode_enum(x, f, v, text, dst);
        return;
    case CFG_F_ANY:
        return;
    }
}

static bool is_number(enum cfg_ftype t)
{
    return t == CFG_F_INT || t == CFG_F_U32 || t == CFG_F_DOUBLE || t == CFG_F_DURATION ||
           t == CFG_F_SIZE;
}

bool cfg_schema_decode(cfg_ctx *x, const cfg_node *map, const cfg_field *t, size_t nt, void *base,
                       bool allow_extra)
{
    for (size_t i = 0; i < nt; i++)
        if (t[i].def)
            decode_value(x, &t[i], NULL, t[i].def, base);
    if (!map || map->type != CFG_NODE_MAP) {
        cfg_err(x, map, "expected a mapping, got %s", cfg_node_kind(map));
        return false;
    }
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const cfg_node *k = map->items[i], *v = map->items[i + 1];
        const cfg_field *f = NULL;
        for (size_t j = 0; j < nt && !f; j++)
            if (!strcmp(t[j].key, k->str))
                f = &t[j];
        if (!f) {
            if (!allow_extra)
                cfg_schema_unknown(x, k, t, nt);
            continue;
        }
        if (cfg_node_is_null(v) && !is_number(f->type))
            continue; /* `key:` with no value means "the default" */
        if (cfg_node_is_null(v)) {
            /* but not for a number: `port:` left empty by a template is a mistake that
             * silently became 1883, and Python's paho would refuse None there too */
            size_t old = cfg_path_key(x, k->str);
            cfg_err(x, v, "expected %s, got nothing (remove the key for the default)",
                    f->type == CFG_F_DURATION ? "a duration"
                    : f->type == CFG_F_SIZE   ? "a size"
                    : f->type == CFG_F_DOUBLE ? "a number"
                                              : "an integer");
            cfg_path_pop(x, old);
            continue;
        }
        size_t old = cfg_path_key(x, k->str);
        decode_value(x, f, v, v->str, base);
        cfg_path_pop(x, old);
    }
    for (size_t i = 0; i < nt; i++)
        if ((t[i].flags & CFG_REQUIRED) && !cfg_node_get(map, t[i].key))
            cfg_err(x, map, "missing required key \"%s\"", t[i].key);
    return true;
}
