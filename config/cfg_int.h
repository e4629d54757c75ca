/* cfg_int: what the files of the config module share (STYLE 4); not for other modules.
 *
 * Loading is three passes over one YAML document:
 *   cfg_yaml    libyaml events -> a small node tree with 1-based line/column, enforcing the
 *               input limits of cfg.h while parsing (so a hostile file costs milliseconds);
 *   cfg_schema  a declarative table per section (key, type, default, offset, range) decodes a
 *               mapping into a struct and reports unknown keys, wrong types and ranges;
 *   cfg_load    the sections, cross references, file checks and warnings.
 * Every problem is appended to a cfg_diag; loading goes on after an error so that one run
 * reports all of them. Single-threaded: a load owns its tree and its diag.
 */
#ifndef MF_CFG_INT_H
#define MF_CFG_INT_H

#include "cfg.h"

#include <stdarg.h>

/* ---- node tree (cfg_yaml.c) ---- */

enum cfg_node_type { CFG_NODE_NULL, CFG_NODE_SCALAR, CFG_NODE_SEQ, CFG_NODE_MAP };

typedef struct cfg_node {
    enum cfg_node_type type;
    cfg_pos pos;
    char *str; /* scalar text, NUL-terminated (NUL bytes inside are refused) */
    size_t len;
    bool plain;              /* an unquoted scalar: only those can be null, numbers, booleans */
    struct cfg_node **items; /* seq: the items; map: key, value, key, value, ... */
    size_t n;                /* number of items (a map holds n / 2 pairs) */
    size_t cap;
} cfg_node;

/* Parses data into *root (NULL for an empty document). 0, or -EINVAL after reporting the
 * problem in d (syntax error, limit exceeded, alias, duplicate key), or -ENOMEM. On failure
 * *root is NULL and nothing is left allocated. */
int cfg_yaml_parse(const char *name, const char *data, size_t len, cfg_node **root, cfg_diag *d);
void cfg_node_free(cfg_node *n); /* accepts NULL */
/* The value of key in a mapping, or NULL; a plain null value (`key:`, `~`) counts as absent. */
const cfg_node *cfg_node_get(const cfg_node *map, const char *key);
/* Whether n is absent or a YAML null. */
bool cfg_node_is_null(const cfg_node *n);
/* "a mapping", "a list", "a string", "nothing" — for "expected X, got Y" messages. */
const char *cfg_node_kind(const cfg_node *n);

/* ---- diagnostics (cfg_diag.c) ---- */

/* Appends "NAME:LINE:COL: PATH: message" (pos.line 0: "NAME: PATH: message"; path NULL or
 * empty: no path). Never fails: on ENOMEM the message is dropped but the count is kept by
 * the caller's error flag, so a load still fails. */
void cfg_diag_add(cfg_diag *d, bool warning, const char *name, cfg_pos pos, const char *path,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- load context and schema tables (cfg_schema.c) ---- */

typedef struct cfg_ctx {
    const char *name; /* file name for messages */
    const char *dir;  /* folder that relative paths are resolved against */
    unsigned flags;
    cfg *c;
    cfg_diag *d;
    int errors;      /* errors reported so far (also counts messages dropped on ENOMEM) */
    char path[1024]; /* the dotted path of the value being decoded, e.g. rules[1].topic */
    size_t plen;
} cfg_ctx;

void cfg_err(cfg_ctx *x, const cfg_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cfg_warn(cfg_ctx *x, const cfg_node *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* cfg_err/cfg_warn about the value of key in mapping m: the message names m.key's path and
 * stands at the value (at m's position when key is absent, a value that came by default). */
void cfg_err_key(cfg_ctx *x, const cfg_node *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void cfg_warn_key(cfg_ctx *x, const cfg_node *m, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Path building: push ".key" or "[i]", returning the length to pop back to. */
size_t cfg_path_key(cfg_ctx *x, const char *key);
size_t cfg_path_index(cfg_ctx *x, size_t i);
void cfg_path_pop(cfg_ctx *x, size_t len);
/* The zeroed array of a section's n entries of size bytes (one spare, so an empty section has
 * one too), after bounding n by limit; NULL after an error at `at` ("%zu <what>, more than the
 * limit of %d", or out of memory). The caller owns the array. */
void *cfg_entries_alloc(cfg_ctx *x, const cfg_node *at, size_t n, int limit, const char *what,
                        size_t size);

enum cfg_ftype {
    CFG_F_STR,      /* char * */
    CFG_F_PATH,     /* char *, resolved against the YAML's folder */
    CFG_F_INT,      /* int, within [min, max] */
    CFG_F_U32,      /* uint32_t, within [min, max] */
    CFG_F_BOOL,     /* bool */
    CFG_F_TRIBOOL,  /* int: 0/1, left as set by the caller (-1 = inherit) when absent */
    CFG_F_DOUBLE,   /* double, within [min, max] */
    CFG_F_DURATION, /* double seconds: a number, or "500ms" / "2s" / "1m" / "1h" */
    CFG_F_SIZE,     /* size_t bytes: an integer or "64KiB" / "4MiB" / "1GiB" / "10MB" */
    CFG_F_ENUM,     /* int, one of names[] */
    CFG_F_ANY,      /* accepted here and handled by the section's own code (offset unused) */
    CFG_F_NAME,     /* a non-empty string naming something; resolved by the section's code */
};

enum { CFG_REQUIRED = 1u << 0 };

typedef struct cfg_enum_name {
    const char *name;
    int value;
} cfg_enum_name;

typedef struct cfg_field {
    const char *key;
    enum cfg_ftype type;
    size_t off;      /* offsetof the destination in the section's struct */
    const char *def; /* default as YAML text, NULL: leave the struct as it is */
    unsigned flags;
    double min, max;            /* ranges of INT/U32/DOUBLE/DURATION/SIZE (0, 0: unbounded) */
    const cfg_enum_name *names; /* ENUM: terminated by a NULL name */
} cfg_field;

#define CFG_NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

/* Decodes mapping map into base along the table: applies defaults, decodes every known key,
 * reports unknown keys (with "did you mean"), missing required keys (at the mapping), wrong
 * types and ranges (at the value). With allow_extra, unknown keys are not errors (the caller
 * handles them). Returns false when map is not a mapping (already reported). */
bool cfg_schema_decode(cfg_ctx *x, const cfg_node *map, const cfg_field *t, size_t nt, void *base,
                       bool allow_extra);
/* Whether key is in the table. */
bool cfg_schema_has(const cfg_field *t, size_t nt, const char *key);
/* Reports "unknown key" for key node k of a mapping with the given allowed keys. */
void cfg_schema_unknown(cfg_ctx *x, const cfg_node *k, const cfg_field *t, size_t nt);
/* A string value: copies it (NULL on a type error, reported). */
char *cfg_schema_string(cfg_ctx *x, const cfg_node *v);
/* Resolves p against the YAML's folder into a new absolute path (NULL on ENOMEM). */
char *cfg_schema_abspath(const char *dir, const char *p);
/* Parses a size like "4MiB". 0 or -EINVAL. */
int cfg_schema_parse_size(const char *s, size_t *out);
/* "2s", "500ms", "1m", "1h" or a plain number of seconds: 0 and *out, or -EINVAL */
int cfg_schema_parse_duration(const char *s, double *out);

/* ---- sections: each decodes its part of the tree into x->c, reporting into x ---- */
void cfg_clients_load(cfg_ctx *x, const cfg_node *seq); /* cfg_client.c */
void cfg_client_fini(cfg_client *cl);
void cfg_callbacks_load(cfg_ctx *x, const cfg_node *map); /* cfg_callback.c */
void cfg_chains_load(cfg_ctx *x, const cfg_node *map);    /* cfg_chain.c */
void cfg_step_fini(cfg_step *s);
void cfg_rules_load(cfg_ctx *x, const cfg_node *seq); /* cfg_rule.c */
void cfg_rule_fini(cfg_rule *r);
void cfg_runtime_load(cfg_ctx *x, const cfg_node *m); /* cfg_runtime.c; m may be NULL */
void cfg_runtime_fini(cfg_runtime *rt);
/* cfg_python.c: runtime.python, and (CFG_LOAD_CHECK_MODULES) importing every Python module
 * and resolving every Python function, errors at the Python file's position */
void cfg_python_load(cfg_ctx *x, cfg_runtime *rt, const cfg_node *m);
void cfg_python_fini(cfg_runtime *rt);
void cfg_python_check(cfg_ctx *x, const cfg_node *root);
void cfg_logging_load(cfg_ctx *x, const cfg_node *m); /* m may be NULL */
void cfg_logging_fini(cfg_logging *lg);

/* Whether one topic name can match both MQTT filters (cfg_topic.c). */
bool cfg_topic_filters_overlap(const char *a, const char *b);

/* Shared checks (cfg_rule.c). An expression that does not compile is an error at the column
 * where expr_compile stopped. */
void cfg_check_condition(cfg_ctx *x, const cfg_node *v);
/* The index of the client / callback named under key in mapping m, -1 when absent; an unknown
 * name is an error at its value. */
int cfg_resolve_client(cfg_ctx *x, const cfg_node *m, const char *key);
int cfg_resolve_callback(cfg_ctx *x, const cfg_node *m, const char *key);

#endif
