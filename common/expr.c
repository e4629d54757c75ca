/* expr: the compiler (lexer and recursive-descent parser) of condition expressions (see
 * expr.h); evaluation is in expr_eval.c, the compiled form in expr_int.h.
 *
 * Layout: one expr owns three arrays sized from the source length at compile time (a node,
 * a path segment and a pooled string byte each consume at least one source byte, so the
 * bounds are exact upper limits): nodes, path segments and a string pool. Children are
 * indices, so destroy is three frees and cannot recurse, and a compiled expr is plain
 * immutable data that threads may share.
 *
 * Errors keep the first problem found (later ones are its consequences) with the byte
 * offset of the offending token, so the config loader can point at a line and column.
 */
#include "expr.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expr_int.h"

#define EXPR_MAX_SRC   4096
#define EXPR_MAX_DEPTH 64
#define EXPR_MAX_LEVEL 65535 /* a topic has at most CFG_MAX_TOPIC bytes, so fewer levels */

/* ---- lexer ---- */

enum tok_type {
    T_END,
    T_NUM,
    T_STR,
    T_IDENT,
    T_LPAREN,
    T_RPAREN,
    T_LBRACK,
    T_RBRACK,
    T_DOT,
    T_NOT,
    T_STAR,
    T_SLASH,
    T_PLUS,
    T_MINUS,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_EQ,
    T_NE,
    T_AND,
    T_OR,
    T_BAD,
};

typedef struct parser {
    const char *src;
    size_t len;
    size_t pos; /* scan position: just after the current token */
    /* current token */
    enum tok_type tt;
    size_t ts, te; /* its bytes: src[ts..te) */
    double num;
    const char *str; /* T_STR: decoded, NUL-terminated, in the pool */
    size_t str_len;
    expr *e;
    size_t pool_used, pool_cap;
    size_t nodes_cap, segs_cap;
    int depth;
    int failed;
    char *err;
    size_t errlen;
    size_t err_off;
} parser;

/* Keeps the first error only: later ones are consequences of it. */
static void fail(parser *p, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(parser *p, size_t off, const char *fmt, ...)
{
    va_list ap;

    if (p->failed)
        return;
    p->failed = 1;
    p->err_off = off;
    if (p->err && p->errlen) {
        va_start(ap, fmt);
        vsnprintf(p->err, p->errlen, fmt, ap);
        va_end(ap);
    }
}

/* "after 'payload.temp > 3'" context: the source before off, trailing blanks trimmed and
 * long prefixes shortened to their last 40 bytes so the message stays one readable line. */
static void context_before(const parser *p, size_t off, char *buf, size_t cap)
{
    size_t end = off, start = 0;

    while (end > 0 && (p->src[end - 1] == ' ' || p->src[end - 1] == '\t' ||
                       p->src[end - 1] == '\n' || p->src[end - 1] == '\r'))
        end--;
    if (end == 0) {
        snprintf(buf, cap, "at the start");
        return;
    }
    if (end > 40)
        start = end - 40;
    snprintf(buf, cap, "after '%s%.*s'", start ? "..." : "", (int)(end - start), p->src + start);
}

static void describe_tok(const parser *p, char *buf, size_t cap)
{
    size_t n = p->te - p->ts;

    if (p->tt == T_END)
        snprintf(buf, cap, "end of expression");
    else
        snprintf(buf, cap, "'%.*s'", (int)(n > 32 ? 32 : n), p->src + p->ts);
}

static void fail_expected(parser *p, const char *what)
{
    char ctx[64], tok[48];

    context_before(p, p->ts, ctx, sizeof(ctx));
    describe_tok(p, tok, sizeof(tok));
    fail(p, p->ts, "expected %s %s, found %s", what, ctx, tok);
}

static int is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_ident_char(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void lex_string(parser *p)
{
    char quote = p->src[p->pos];
    size_t i = p->pos + 1;
    char *out = p->e->pool + p->pool_used;
    size_t n = 0;

    while (i < p->len && p->src[i] != quote) {
        char c = p->src[i];
        if (c == '\\') {
            if (i + 1 >= p->len)
                break;
            switch (p->src[i + 1]) {
            case '\\':
                c = '\\';
                break;
            case '"':
                c = '"';
                break;
            case '\'':
                c = '\'';
                break;
            case '/':
                c = '/';
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            default:
                fail(p, i, "unknown escape '\\%c' in string (use \\\\ \\\" \\' \\n \\t \\r)",
                     p->src[i + 1]);
                p->tt = T_BAD;
                return;
            }
            i++;
        }
        out[n++] = c;
        i++;
    }
    if (i >= p->len) {
        fail(p, p->pos, "unterminated string starting at '%.*s'",
             (int)(p->len - p->pos > 20 ? 20 : p->len - p->pos), p->src + p->pos);
        p->tt = T_BAD;
        return;
    }
    out[n] = '\0';
    p->str = out;
    p->str_len = n;
    p->pool_used += n + 1;
    p->tt = T_STR;
    p->pos = i + 1;
}

static void lex_number(parser *p)
{
    size_t i = p->pos;
    char buf[80];

    while (i < p->len && is_digit(p->src[i]))
        i++;
    if (i < p->len && p->src[i] == '.') {
        i++;
        if (i >= p->len || !is_digit(p->src[i])) {
            fail(p, i, "expected a digit after '.' in number '%.*s'", (int)(i - p->pos),
                 p->src + p->pos);
            p->tt = T_BAD;
            return;
        }
        while (i < p->len && is_digit(p->src[i]))
            i++;
    }
    if (i < p->len && (p->src[i] == 'e' || p->src[i] == 'E')) {
        size_t j = i + 1;
        if (j < p->len && (p->src[j] == '+' || p->src[j] == '-'))
            j++;
        if (j < p->len && is_digit(p->src[j])) {
            while (j < p->len && is_digit(p->src[j]))
                j++;
            i = j;
        }
    }
    if (i < p->len && is_ident_char(p->src[i])) {
        fail(p, p->pos, "malformed number '%.*s'", (int)(i + 1 - p->pos), p->src + p->pos);
        p->tt = T_BAD;
        return;
    }
    if (i - p->pos >= sizeof(buf)) {
        fail(p, p->pos, "number too long");
        p->tt = T_BAD;
        return;
    }
    memcpy(buf, p->src + p->pos, i - p->pos);
    buf[i - p->pos] = '\0';
    p->num = strtod(buf, NULL);
    p->tt = T_NUM;
    p->pos = i;
}

/* Scans a name from pos; the three word operators are names that the lexer claims. */
static void lex_ident(parser *p)
{
    const char *s = p->src;
    size_t i = p->pos;

    while (i < p->len && is_ident_char(s[i]))
        i++;
    p->pos = i;
    p->tt = T_IDENT;
    if (i - p->ts == 3 && !memcmp(s + p->ts, "not", 3))
        p->tt = T_NOT;
    else if (i - p->ts == 3 && !memcmp(s + p->ts, "and", 3))
        p->tt = T_AND;
    else if (i - p->ts == 2 && !memcmp(s + p->ts, "or", 2))
        p->tt = T_OR;
}

/* Operator characters: `alone` is the token of the character by itself, `with_eq` the token when
 * '=' follows (T_BAD: the character never pairs with '='). A table rather than a switch so that
 * adding an operator is one row. */
static const struct {
    char c;
    enum tok_type alone, with_eq;
} puncts[] = {
    {'(', T_LPAREN, T_BAD}, {')', T_RPAREN, T_BAD}, {'[', T_LBRACK, T_BAD}, {']', T_RBRACK, T_BAD},
    {'.', T_DOT, T_BAD},    {'*', T_STAR, T_BAD},   {'/', T_SLASH, T_BAD},  {'+', T_PLUS, T_BAD},
    {'-', T_MINUS, T_BAD},  {'<', T_LT, T_LE},      {'>', T_GT, T_GE},      {'!', T_NOT, T_NE},
};

/* Scans an operator at pos (c, and d the byte after it or '\0'). The doubled forms '==', '&&' and
 * '||' have no single-character meaning, so their halves get an error that names the fix. */
static void lex_punct(parser *p, char c, char d)
{
    size_t w = 1;

    p->tt = T_BAD;
    for (size_t k = 0; k < sizeof(puncts) / sizeof(puncts[0]); k++) {
        if (puncts[k].c != c)
            continue;
        if (d == '=' && puncts[k].with_eq != T_BAD) {
            p->tt = puncts[k].with_eq;
            w = 2;
        } else {
            p->tt = puncts[k].alone;
        }
        break;
    }
    if (p->tt == T_BAD) {
        if (c == '=' && d == '=') {
            p->tt = T_EQ;
            w = 2;
        } else if (c == '=') {
            fail(p, p->pos, "'=' is not an operator (use '==' to compare)");
        } else if ((c == '&' || c == '|') && d == c) {
            p->tt = c == '&' ? T_AND : T_OR;
            w = 2;
        } else if (c == '&' || c == '|') {
            fail(p, p->pos, "'%c' is not an operator (use '%c%c')", c, c, c);
        } else if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f) {
            fail(p, p->pos, "unexpected character '%c'", c);
        } else {
            fail(p, p->pos, "unexpected byte 0x%02x", (unsigned char)c);
        }
    }
    if (p->tt != T_BAD)
        p->pos += w;
}

/* Scans the token at pos into the current token. */
static void next(parser *p)
{
    const char *s = p->src;
    char c, d;

    while (p->pos < p->len &&
           (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r'))
        p->pos++;
    p->ts = p->pos;
    if (p->pos >= p->len) {
        p->tt = T_END;
        p->te = p->pos;
        return;
    }
    c = s[p->pos];
    d = p->pos + 1 < p->len ? s[p->pos + 1] : '\0';
    if (c == '"' || c == '\'')
        lex_string(p);
    else if (is_digit(c))
        lex_number(p);
    else if (is_ident_start(c))
        lex_ident(p);
    else
        lex_punct(p, c, d);
    p->te = p->tt == T_BAD ? p->ts + 1 : p->pos;
}

/* Consumes the closing token tt (`what` in the message) that must come next. 0, or -1 after
 * saying what stands there instead (only the first error is kept, see fail). */
static int expect_close(parser *p, enum tok_type tt, const char *what)
{
    if (p->tt != tt) {
        fail_expected(p, what);
        return -1;
    }
    next(p);
    return 0;
}

/* ---- parser ---- */

static int new_node(parser *p, enum node_op op, int a, int b)
{
    node *n;

    /* cannot overflow: every node consumes at least one source byte (see the file comment) */
    if (p->e->n_nodes >= p->nodes_cap) {
        fail(p, p->ts, "expression too complex");
        return -1;
    }
    n = &p->e->nodes[p->e->n_nodes];
    memset(n, 0, sizeof(*n));
    n->op = op;
    n->a = a;
    n->b = b;
    return (int)p->e->n_nodes++;
}

static int parse_or(parser *p);

static int parse_payload(parser *p)
{
    int id = new_node(p, N_PAYLOAD, -1, -1);
    expr *e = p->e;

    if (id < 0)
        return -1;
    p->e->uses_payload = 1;
    e->nodes[id].seg_first = e->n_segs;
    next(p);
    for (;;) {
        seg *sg;
        if (p->tt == T_DOT) {
            size_t i = p->pos;
            char *key = e->pool + p->pool_used;
            while (i < p->len && is_ident_char(p->src[i]))
                i++;
            if (i == p->pos) {
                fail(p, p->pos, "expected a field name after '%.*s'", (int)p->pos, p->src);
                return -1;
            }
            memcpy(key, p->src + p->pos, i - p->pos);
            key[i - p->pos] = '\0';
            p->pool_used += i - p->pos + 1;
            sg = &e->segs[e->n_segs++];
            sg->is_index = 0;
            sg->key = key;
            p->pos = i;
            next(p);
        } else if (p->tt == T_LBRACK) {
            next(p);
            sg = &e->segs[e->n_segs];
            if (p->tt == T_STR) {
                sg->is_index = 0;
                sg->key = p->str;
            } else if (p->tt == T_NUM && p->num == floor(p->num) && p->num < 1e9) {
                sg->is_index = 1;
                sg->index = (size_t)p->num;
            } else {
                if (!p->failed)
                    fail_expected(p, "an array index or a \"key\"");
                return -1;
            }
            e->n_segs++;
            next(p);
            if (expect_close(p, T_RBRACK, "']'") < 0)
                return -1;
        } else {
            break;
        }
        e->nodes[id].n_segs++;
    }
    return p->failed ? -1 : id;
}

static int parse_topic(parser *p)
{
    int id;

    next(p);
    if (p->tt != T_LBRACK)
        return new_node(p, N_TOPIC, -1, -1);
    next(p);
    if (p->tt != T_NUM || p->num != floor(p->num) || p->num > EXPR_MAX_LEVEL) {
        if (!p->failed)
            fail_expected(p, "a topic level number (0-based)");
        return -1;
    }
    id = new_node(p, N_LEVEL, -1, -1);
    if (id < 0)
        return -1;
    p->e->nodes[id].level = (size_t)p->num;
    next(p);
    if (expect_close(p, T_RBRACK, "']'") < 0)
        return -1;
    return id;
}

static int lit_node(parser *p, val v)
{
    int id = new_node(p, N_LIT, -1, -1);

    if (id >= 0)
        p->e->nodes[id].lit = v;
    next(p);
    return p->failed ? -1 : id;
}

static int parse_primary(parser *p)
{
    val v = {.t = V_NULL};
    int id;

    switch (p->tt) {
    case T_NUM:
        v.t = V_NUM;
        v.n = p->num;
        return lit_node(p, v);
    case T_STR:
        v.t = V_STR;
        v.s = p->str;
        v.len = p->str_len;
        return lit_node(p, v);
    case T_LPAREN:
        if (++p->depth > EXPR_MAX_DEPTH) {
            fail(p, p->ts, "nesting deeper than %d", EXPR_MAX_DEPTH);
            return -1;
        }
        next(p);
        id = parse_or(p);
        if (id < 0)
            return -1;
        if (expect_close(p, T_RPAREN, "')'") < 0)
            return -1;
        p->depth--;
        return p->failed ? -1 : id;
    case T_IDENT: {
        size_t n = p->te - p->ts;
        const char *w = p->src + p->ts;
        if (n == 7 && !memcmp(w, "payload", 7))
            return parse_payload(p);
        if (n == 5 && !memcmp(w, "topic", 5))
            return parse_topic(p);
        if (n == 4 && !memcmp(w, "true", 4)) {
            v.t = V_BOOL;
            v.b = 1;
            return lit_node(p, v);
        }
        if (n == 5 && !memcmp(w, "false", 5)) {
            v.t = V_BOOL;
            return lit_node(p, v);
        }
        if (n == 4 && !memcmp(w, "null", 4))
            return lit_node(p, v);
        fail(p, p->ts,
             "unknown name '%.*s' (expected payload, topic, true, false, null or a literal)",
             (int)(n > 32 ? 32 : n), w);
        return -1;
    }
    case T_BAD:
        return -1; /* the lexer has reported it */
    default:
        fail_expected(p, "a value");
        return -1;
    }
}

static int parse_unary(parser *p)
{
    enum tok_type tt = p->tt;
    int a, id;

    if (tt != T_NOT && tt != T_MINUS)
        return parse_primary(p);
    if (++p->depth > EXPR_MAX_DEPTH) {
        fail(p, p->ts, "nesting deeper than %d", EXPR_MAX_DEPTH);
        return -1;
    }
    next(p);
    a = parse_unary(p);
    p->depth--;
    if (a < 0)
        return -1;
    /* fold "-3.5" into a literal: the common case costs no node at run time */
    if (tt == T_MINUS && p->e->nodes[a].op == N_LIT && p->e->nodes[a].lit.t == V_NUM) {
        p->e->nodes[a].lit.n = -p->e->nodes[a].lit.n;
        return a;
    }
    id = new_node(p, tt == T_NOT ? N_NOT : N_NEG, a, -1);
    return id;
}

/* The binary operators by precedence, loosest first: a level is one row, so a new operator or
 * level is one entry here. */
static const struct level {
    size_t n;
    enum tok_type tt[4];
    enum node_op op[4];
} levels[] = {
    {1, {T_OR}, {N_OR}},
    {1, {T_AND}, {N_AND}},
    {2, {T_EQ, T_NE}, {N_EQ, N_NE}},
    {4, {T_LT, T_LE, T_GT, T_GE}, {N_LT, N_LE, N_GT, N_GE}},
    {2, {T_PLUS, T_MINUS}, {N_ADD, N_SUB}},
    {2, {T_STAR, T_SLASH}, {N_MUL, N_DIV}},
};

static int binop_of(enum tok_type tt, const struct level *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->tt[i] == tt)
            return (int)l->op[i];
    return -1;
}

/* One left-associative binary level: operand (op operand)*, the operands of the next tighter
 * level (past the last, unary expressions). Iterative, so long chains such as a+b+c+... do not
 * deepen the parser's recursion. */
static int parse_level(parser *p, size_t lvl)
{
    if (lvl == sizeof(levels) / sizeof(levels[0]))
        return parse_unary(p);
    int left = parse_level(p, lvl + 1);

    while (left >= 0) {
        int op = binop_of(p->tt, &levels[lvl]), right;
        if (op < 0)
            break;
        next(p);
        right = parse_level(p, lvl + 1);
        if (right < 0)
            return -1;
        left = new_node(p, (enum node_op)op, left, right);
    }
    return left;
}

static int parse_or(parser *p)
{
    return parse_level(p, 0);
}

int expr_compile(const char *src, expr **out, char *err, size_t errlen, size_t *err_off)
{
    parser p = {0};
    expr *e = NULL;
    size_t len;
    int ret = -EINVAL;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (err_off)
        *err_off = 0;
    p.err = err;
    p.errlen = errlen;
    len = src ? strlen(src) : 0;
    if (len > EXPR_MAX_SRC) {
        fail(&p, EXPR_MAX_SRC, "expression longer than %d bytes", EXPR_MAX_SRC);
        goto fail_parse;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    p.src = src ? src : "";
    p.len = len;
    p.e = e;
    p.nodes_cap = len + 1;
    p.segs_cap = len + 1;
    p.pool_cap = len + 1;
    e->nodes = malloc(p.nodes_cap * sizeof(*e->nodes));
    e->segs = malloc(p.segs_cap * sizeof(*e->segs));
    e->pool = malloc(p.pool_cap);
    if (!e->nodes || !e->segs || !e->pool) {
        ret = -ENOMEM;
        goto fail_alloc;
    }
    next(&p);
    if (p.tt == T_END) {
        fail(&p, 0, "empty expression");
        goto fail_parse;
    }
    e->root = parse_or(&p);
    if (e->root >= 0 && !p.failed && p.tt != T_END)
        fail_expected(&p, "an operator or the end");
    if (e->root < 0 || p.failed)
        goto fail_parse;
    *out = e;
    return 0;

fail_parse:
    if (!p.failed)
        fail(&p, p.ts, "invalid expression");
    if (err_off)
        *err_off = p.err_off;
fail_alloc:
    expr_destroy(e);
    return ret;
}

void expr_destroy(expr *e)
{
    if (!e)
        return;
    free(e->nodes);
    free(e->segs);
    free(e->pool);
    free(e);
}

int expr_uses_payload(const expr *e)
{
    return e && e->uses_payload;
}
