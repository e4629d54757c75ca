/* expr_eval: evaluation of a compiled expr against one message (see expr.h, expr_int.h).
 *
 * Allocates nothing except the jansson tree of the payload, parsed at most once per call and
 * only when a payload field is read; values point into the topic, the payload, the JSON tree
 * or the expr's pool, all valid for the duration of the call.
 */
#include "expr.h"

#include <math.h>
#include <string.h>

#include <jansson.h>

#include "expr_int.h"

typedef struct ectx {
    const expr *e;
    const char *topic;
    const char *payload;
    size_t payload_len;
    json_t *root;
    int json_tried;
    unsigned *flags;
} ectx;

/* The payload as JSON, or NULL (then *flags gets EXPR_JSON_INVALID). A first parse with
 * exact integers; only a document jansson refuses for an integer overflow is parsed again
 * with every number as a real (JSON_DECODE_INT_AS_REAL), so ordinary integers keep all 64
 * bits and the common case costs one parse. */
static json_t *parse_payload(const char *p, size_t len, unsigned *flags)
{
    json_error_t err;
    json_t *j = json_loadb(p, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!j && json_error_code(&err) == json_error_numeric_overflow)
        j = json_loadb(p, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
    if (!j && flags)
        *flags |= EXPR_JSON_INVALID;
    return j;
}

static val mk_null(void)
{
    val v = {.t = V_NULL};
    return v;
}

static val mk_bool(int b)
{
    val v = {.t = V_BOOL, .b = !!b};
    return v;
}

static val mk_num(double n)
{
    val v = {.t = V_NUM, .n = n};
    return v;
}

static int truthy(val v)
{
    switch (v.t) {
    case V_BOOL:
        return v.b;
    case V_NUM:
        return v.n != 0 && !isnan(v.n);
    case V_STR:
        return v.len > 0;
    case V_OTHER:
        return 1;
    default:
        return 0;
    }
}

/* The whole payload: a number when it is exactly one (JSON number syntax, blanks around
 * allowed), otherwise its bytes as a string. strtod alone would also take "inf", "nan" and
 * hex, which a sensor payload "nan" must not turn into a number. */
static val whole_payload(const ectx *c)
{
    val v = {.t = V_STR, .s = c->payload ? c->payload : "", .len = c->payload_len};
    const char *s = v.s;
    size_t b = 0, e = c->payload_len;
    char buf[128], *end;

    while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\n' || s[b] == '\r'))
        b++;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\n' || s[e - 1] == '\r'))
        e--;
    if (b == e || e - b >= sizeof(buf))
        return v;
    for (size_t i = b; i < e; i++) {
        char ch = s[i];
        if ((ch < '0' || ch > '9') && ch != '.' && ch != '-' && ch != '+' && ch != 'e' && ch != 'E')
            return v;
    }
    memcpy(buf, s + b, e - b);
    buf[e - b] = '\0';
    {
        double n = strtod(buf, &end);
        if (end != buf + (e - b))
            return v;
        return mk_num(n);
    }
}

static val from_json(json_t *j)
{
    val v = {.t = V_NULL};

    if (!j)
        return v;
    switch (json_typeof(j)) {
    case JSON_INTEGER:
        return mk_num((double)json_integer_value(j));
    case JSON_REAL:
        return mk_num(json_real_value(j));
    case JSON_TRUE:
        return mk_bool(1);
    case JSON_FALSE:
        return mk_bool(0);
    case JSON_STRING:
        v.t = V_STR;
        v.s = json_string_value(j);
        v.len = json_string_length(j);
        return v;
    case JSON_OBJECT:
    case JSON_ARRAY:
        v.t = V_OTHER;
        return v;
    default:
        return v;
    }
}

static val payload_field(ectx *c, const node *n)
{
    json_t *j;

    if (n->n_segs == 0)
        return whole_payload(c);
    if (!c->json_tried) {
        c->json_tried = 1;
        /* a payload that is not JSON has no fields (null); the caller counts and logs it */
        c->root = parse_payload(c->payload ? c->payload : "", c->payload_len, c->flags);
    }
    j = c->root;
    for (size_t i = 0; j && i < n->n_segs; i++) {
        const seg *sg = &c->e->segs[n->seg_first + i];
        if (sg->is_index)
            j = json_is_array(j) ? json_array_get(j, sg->index) : NULL;
        else
            j = json_is_object(j) ? json_object_get(j, sg->key) : NULL;
    }
    return from_json(j);
}

static val topic_level(const ectx *c, size_t level)
{
    const char *s = c->topic, *slash;
    val v = {.t = V_STR};

    for (size_t i = 0; i < level; i++) {
        slash = strchr(s, '/');
        if (!slash)
            return mk_null();
        s = slash + 1;
    }
    slash = strchr(s, '/');
    v.s = s;
    v.len = slash ? (size_t)(slash - s) : strlen(s);
    return v;
}

static int vals_equal(val a, val b)
{
    if (a.t != b.t)
        return 0;
    switch (a.t) {
    case V_NULL:
        return 1;
    case V_BOOL:
        return a.b == b.b;
    case V_NUM:
        return a.n == b.n;
    case V_STR:
        return a.len == b.len && !memcmp(a.s, b.s, a.len);
    default:
        return 0; /* objects and arrays are not compared structurally */
    }
}

/* <0, 0, >0, or 2 when the values are not ordered (null, mixed types, NaN). */
static int vals_order(val a, val b)
{
    if (a.t == V_NUM && b.t == V_NUM) {
        if (a.n < b.n)
            return -1;
        if (a.n > b.n)
            return 1;
        return a.n == b.n ? 0 : 2;
    }
    if (a.t == V_STR && b.t == V_STR) {
        size_t m = a.len < b.len ? a.len : b.len;
        int r = memcmp(a.s, b.s, m);
        if (r)
            return r < 0 ? -1 : 1;
        return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
    }
    return 2;
}

static val eval_node(ectx *c, int id)
{
    const node *n = &c->e->nodes[id];
    val a, b;
    int o;

    switch (n->op) {
    case N_LIT:
        return n->lit;
    case N_PAYLOAD:
        return payload_field(c, n);
    case N_TOPIC: {
        val v = {.t = V_STR, .s = c->topic, .len = strlen(c->topic)};
        return v;
    }
    case N_LEVEL:
        return topic_level(c, n->level);
    case N_NOT:
        return mk_bool(!truthy(eval_node(c, n->a)));
    case N_NEG:
        a = eval_node(c, n->a);
        return a.t == V_NUM ? mk_num(-a.n) : mk_null();
    case N_AND:
        if (!truthy(eval_node(c, n->a)))
            return mk_bool(0);
        return mk_bool(truthy(eval_node(c, n->b)));
    case N_OR:
        if (truthy(eval_node(c, n->a)))
            return mk_bool(1);
        return mk_bool(truthy(eval_node(c, n->b)));
    default:
        break;
    }
    a = eval_node(c, n->a);
    b = eval_node(c, n->b);
    switch (n->op) {
    case N_EQ:
        return mk_bool(vals_equal(a, b));
    case N_NE:
        return mk_bool(!vals_equal(a, b));
    case N_LT:
        o = vals_order(a, b);
        return mk_bool(o != 2 && o < 0);
    case N_LE:
        o = vals_order(a, b);
        return mk_bool(o != 2 && o <= 0);
    case N_GT:
        o = vals_order(a, b);
        return mk_bool(o != 2 && o > 0);
    case N_GE:
        o = vals_order(a, b);
        return mk_bool(o != 2 && o >= 0);
    default:
        break;
    }
    /* arithmetic: numbers only; anything else (or a division by zero) gives null, which then
     * compares false, rather than inventing string arithmetic or infinities */
    if (a.t != V_NUM || b.t != V_NUM)
        return mk_null();
    switch (n->op) {
    case N_MUL:
        return mk_num(a.n * b.n);
    case N_DIV:
        return b.n == 0 ? mk_null() : mk_num(a.n / b.n);
    case N_ADD:
        return mk_num(a.n + b.n);
    case N_SUB:
        return mk_num(a.n - b.n);
    default:
        return mk_null();
    }
}

int expr_eval(const expr *e, const char *topic, const void *payload, size_t payload_len)
{
    return expr_eval_ex(e, topic, payload, payload_len, NULL);
}

int expr_eval_ex(const expr *e, const char *topic, const void *payload, size_t payload_len,
                 unsigned *flags)
{
    ectx c = {.e = e,
              .topic = topic ? topic : "",
              .payload = payload,
              .payload_len = payload ? payload_len : 0,
              .flags = flags};
    int r;

    if (!e)
        return 0;
    r = truthy(eval_node(&c, e->root));
    json_decref(c.root);
    return r;
}
