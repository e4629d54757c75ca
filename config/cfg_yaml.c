/* cfg_yaml: libyaml's event stream -> cfg_node tree, with the input limits of cfg.h.
 *
 * Why events and not yaml_parser_load (libyaml's document API): the document API expands
 * nothing but builds the whole tree before we can look at it, so a 10,000-deep nesting or an
 * alias bomb would be fully materialised before being refused. With events every limit is
 * checked the moment it is crossed and parsing stops there.
 */
#include "cfg_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "grow.h"

static cfg_pos mark_pos(yaml_mark_t m)
{
    /* libyaml marks are 0-based; editors and our messages are 1-based */
    return (cfg_pos){(int)m.line + 1, (int)m.column + 1};
}

void cfg_node_free(cfg_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        cfg_node_free(n->items[i]);
    free(n->items);
    free(n->str);
    free(n);
}

static int node_append(cfg_node *parent, cfg_node *child)
{
    cfg_node **items = grow_one(parent->items, &parent->cap, parent->n, sizeof(*items), 8);
    if (!items)
        return -ENOMEM;
    parent->items = items;
    parent->items[parent->n++] = child;
    return 0;
}

static int key_cmp(const void *a, const void *b)
{
    const cfg_node *ka = *(cfg_node *const *)a, *kb = *(cfg_node *const *)b;
    int r = strcmp(ka->str, kb->str);
    if (r)
        return r;
    /* equal keys: file order, so the later occurrence is the one reported */
    if (ka->pos.line != kb->pos.line)
        return ka->pos.line < kb->pos.line ? -1 : 1;
    return (ka->pos.col > kb->pos.col) - (ka->pos.col < kb->pos.col);
}

/* Duplicate keys, checked once per completed mapping by sorting the keys: O(n log n), where
 * comparing each new key with every earlier one would be quadratic on a hostile 4 MiB file
 * of one-character keys. Reports the first duplicate in sort order; one is enough to fix. */
static int check_duplicates(const char *name, const cfg_node *map, cfg_diag *d)
{
    size_t np = map->n / 2;
    if (np < 2)
        return 0;
    cfg_node **keys = malloc(np * sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    for (size_t i = 0; i < np; i++)
        keys[i] = map->items[2 * i];
    qsort(keys, np, sizeof(*keys), key_cmp);
    int r = 0;
    for (size_t i = 1; i < np; i++) {
        if (strcmp(keys[i - 1]->str, keys[i]->str) == 0) {
            cfg_diag_add(d, false, name, keys[i]->pos, NULL,
                         "duplicate key \"%s\" (first at line %d)", keys[i]->str,
                         keys[i - 1]->pos.line);
            r = -EINVAL;
            break;
        }
    }
    free(keys);
    return r;
}

static bool is_null_text(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

#define YAML_STD_TAG "tag:yaml.org,2002:"

/* Tags. Unknown ones are refused, not ignored: PyYAML's unsafe loaders turn tags into object
 * constructors, so a tag a user wrote means something to someone and silently reading the
 * bare text would run a different configuration from the one intended. Supported: the
 * standard !!str (and !!map / !!seq on their collections, !!int !!float !!bool !!null on
 * plain scalars: no-ops here, the schema types each key), the non-specific "!" (a string),
 * and !ENV NAME [default] as the Python framework's loader defines it: the variable's value,
 * else the default (the rest after the first space), else null; "${NAME}" is accepted for
 * NAME. The substituted text is typed by its key like an unquoted scalar (port: !ENV P 1883
 * is an integer). Returns 0 or -EINVAL (reported) or -ENOMEM. */
static int apply_tag(const char *name, const char *tag, cfg_node *n, cfg_diag *d)
{
    if (!tag)
        return 0;
    bool collection = n->type == CFG_NODE_SEQ || n->type == CFG_NODE_MAP;
    if (!strncmp(tag, YAML_STD_TAG, strlen(YAML_STD_TAG))) {
        const char *t = tag + strlen(YAML_STD_TAG);
        if (collection && !strcmp(t, n->type == CFG_NODE_SEQ ? "seq" : "map"))
            return 0;
        if (!collection && !strcmp(t, "str")) {
            n->plain = false;
            n->type = CFG_NODE_SCALAR;
            return 0;
        }
        if (!collection && n->plain &&
            (!strcmp(t, "int") || !strcmp(t, "float") || !strcmp(t, "bool") || !strcmp(t, "null")))
            return 0;
    } else if (!strcmp(tag, "!") && !collection) {
        n->plain = false;
        n->type = CFG_NODE_SCALAR;
        return 0;
    } else if (!strcmp(tag, "!ENV")) {
        if (collection) {
            cfg_diag_add(d, false, name, n->pos, NULL,
                         "!ENV takes a scalar \"NAME [default]\", not %s",
                         n->type == CFG_NODE_SEQ ? "a list" : "a mapping");
            return -EINVAL;
        }
        const char *text = n->str, *sp = strchr(text, ' ');
        size_t vlen = sp ? (size_t)(sp - text) : strlen(text);
        while (vlen && strchr("${}", text[vlen - 1]))
            vlen--;
        while (vlen && strchr("${}", *text))
            text++, vlen--;
        char var[256];
        if (vlen == 0 || vlen >= sizeof(var)) {
            cfg_diag_add(d, false, name, n->pos, NULL,
                         "!ENV needs an environment variable name of 1 to 255 bytes");
            return -EINVAL;
        }
        memcpy(var, text, vlen);
        var[vlen] = 0;
        const char *val = getenv(var);
        if (!val)
            val = sp ? sp + 1 : NULL;
        if (!val) {
            n->type = CFG_NODE_NULL;
            return 0;
        }
        if (strlen(val) > CFG_MAX_SCALAR) {
            cfg_diag_add(d, false, name, n->pos, NULL,
                         "!ENV %s is %zu bytes long, more than the limit of %d", var, strlen(val),
                         CFG_MAX_SCALAR);
            return -EINVAL;
        }
        char *copy = strdup(val);
        if (!copy)
            return -ENOMEM;
        free(n->str);
        n->str = copy;
        n->len = strlen(copy);
        n->plain = true;
        n->type = CFG_NODE_SCALAR;
        return 0;
    }
    const char *shown = tag;
    char buf[256];
    if (!strncmp(tag, YAML_STD_TAG, strlen(YAML_STD_TAG))) {
        snprintf(buf, sizeof(buf), "!!%.200s", tag + strlen(YAML_STD_TAG));
        shown = buf;
    }
    cfg_diag_add(d, false, name, n->pos, NULL,
                 "unknown YAML tag %.200s (supported: !ENV NAME [default], !!str)", shown);
    return -EINVAL;
}

/* Turns the parser's error into a diagnostic at its position: -ENOMEM or -EINVAL. */
static int syntax_error(const char *name, const yaml_parser_t *p, cfg_diag *d)
{
    cfg_pos pos = mark_pos(p->problem_mark);
    if (p->error == YAML_MEMORY_ERROR)
        return -ENOMEM;
    if (p->context)
        cfg_diag_add(d, false, name, pos, NULL, "YAML syntax error: %s %s", p->problem, p->context);
    else
        cfg_diag_add(d, false, name, pos, NULL, "YAML syntax error: %s",
                     p->problem ? p->problem : "unknown");
    return -EINVAL;
}

/* A scalar event as a node in *out, within the size limit and without a NUL. On an error from
 * its tag *out is still set (the caller frees it); 0 or -errno. */
static int scalar_node(const char *name, const yaml_event_t *ev, cfg_pos pos, cfg_node **out,
                       cfg_diag *d)
{
    cfg_node *n;
    if (ev->data.scalar.length > CFG_MAX_SCALAR) {
        cfg_diag_add(d, false, name, pos, NULL,
                     "value is %zu bytes long, more than the limit of %d", ev->data.scalar.length,
                     CFG_MAX_SCALAR);
        return -EINVAL;
    }
    if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length)) {
        cfg_diag_add(d, false, name, pos, NULL, "value contains a NUL byte");
        return -EINVAL;
    }
    n = calloc(1, sizeof(*n));
    if (!n || !(n->str = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length))) {
        free(n);
        return -ENOMEM;
    }
    n->len = ev->data.scalar.length;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    n->type = n->plain && is_null_text(n->str) ? CFG_NODE_NULL : CFG_NODE_SCALAR;
    n->pos = pos;
    *out = n;
    return apply_tag(name, (const char *)ev->data.scalar.tag, n, d);
}

/* A sequence or mapping start as an empty node in *out, refused past CFG_MAX_DEPTH. On an error
 * from its tag *out is still set (the caller frees it); 0 or -errno. */
static int collection_node(const char *name, const yaml_event_t *ev, cfg_pos pos, int depth,
                           cfg_node **out, cfg_diag *d)
{
    bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
    if (depth >= CFG_MAX_DEPTH) {
        cfg_diag_add(d, false, name, pos, NULL, "nesting deeper than %d levels", CFG_MAX_DEPTH);
        return -EINVAL;
    }
    cfg_node *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->type = seq ? CFG_NODE_SEQ : CFG_NODE_MAP;
    n->pos = pos;
    *out = n;
    return apply_tag(
        name, (const char *)(seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag), n, d);
}

/* Hangs n under parent (the innermost open collection). A collection cannot be a mapping key:
 * keys sit at even indices of a mapping, and only scalars make sense there. On an error n is
 * freed; 0 or -errno. */
static int attach_node(const char *name, cfg_node *parent, cfg_node *n, cfg_diag *d)
{
    if (parent->type == CFG_NODE_MAP && parent->n % 2 == 0 &&
        (n->type == CFG_NODE_SEQ || n->type == CFG_NODE_MAP)) {
        cfg_diag_add(d, false, name, n->pos, NULL, "a mapping key must be a string");
        cfg_node_free(n);
        return -EINVAL;
    }
    if (node_append(parent, n) < 0) {
        cfg_node_free(n);
        return -ENOMEM;
    }
    return 0;
}

int cfg_yaml_parse(const char *name, const char *data, size_t len, cfg_node **root, cfg_diag *d)
{
    *root = NULL;
    if (len > CFG_MAX_FILE) {
        cfg_diag_add(d, false, name, (cfg_pos){0, 0}, NULL,
                     "file is %zu bytes, more than the limit of %u", len, CFG_MAX_FILE);
        return -EINVAL;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        return -ENOMEM;
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);

    /* stack[0..depth) are the open collections; the top one receives the next node */
    cfg_node *stack[CFG_MAX_DEPTH + 1];
    int depth = 0, docs = 0, r = 0;
    cfg_node *top = NULL;
    bool done = false;

    while (!done && r == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            r = syntax_error(name, &p, d);
            break;
        }
        cfg_pos pos = mark_pos(ev.start_mark);
        cfg_node *n = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                cfg_diag_add(d, false, name, pos, NULL,
                             "only one YAML document is allowed in a configuration");
                r = -EINVAL;
            }
            break;
        case YAML_ALIAS_EVENT:
            /* CFG_MAX_ALIASES == 0: refusing the first alias defeats "billion laughs" before
             * any expansion, and a configuration never needs one */
            cfg_diag_add(d, false, name, pos, NULL,
                         "YAML aliases (*%s) are not allowed in a configuration",
                         (const char *)ev.data.alias.anchor);
            r = -EINVAL;
            break;
        case YAML_SCALAR_EVENT:
            r = scalar_node(name, &ev, pos, &n, d);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            r = collection_node(name, &ev, pos, depth, &n, d);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            depth--;
            if (stack[depth]->type == CFG_NODE_MAP)
                r = check_duplicates(name, stack[depth], d);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (r < 0) {
            cfg_node_free(n);
            break;
        }
        if (!n)
            continue;
        if (depth == 0)
            top = n;
        else if ((r = attach_node(name, stack[depth - 1], n, d)) < 0)
            break;
        if (n->type == CFG_NODE_SEQ || n->type == CFG_NODE_MAP)
            stack[depth++] = n;
    }
    yaml_parser_delete(&p);
    if (r < 0) {
        cfg_node_free(top);
        return r;
    }
    *root = top;
    return 0;
}

bool cfg_node_is_null(const cfg_node *n)
{
    return !n || n->type == CFG_NODE_NULL;
}

const cfg_node *cfg_node_get(const cfg_node *map, const char *key)
{
    if (!map || map->type != CFG_NODE_MAP)
        return NULL;
    for (size_t i = 0; i + 1 < map->n; i += 2)
        if (!strcmp(map->items[i]->str, key))
            return cfg_node_is_null(map->items[i + 1]) ? NULL : map->items[i + 1];
    return NULL;
}

const char *cfg_node_kind(const cfg_node *n)
{
    if (cfg_node_is_null(n))
        return "nothing";
    switch (n->type) {
    case CFG_NODE_SEQ:
        return "a list";
    case CFG_NODE_MAP:
        return "a mapping";
    default:
        return "a string";
    }
}
