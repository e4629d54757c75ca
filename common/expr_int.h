/* expr_int: what the compiler (expr.c) and the evaluator (expr_eval.c) of common/expr share:
 * the compiled form. Private to those two files.
 *
 * A compiled expr is a flat array of nodes; children are indices into it. Path segments of
 * payload fields and every string (literals, field names) live in arrays owned by the expr,
 * so the whole thing is immutable after compile and freed without recursion.
 */
#ifndef MF_EXPR_INT_H
#define MF_EXPR_INT_H

#include <stddef.h>

#include "expr.h"

enum node_op {
    N_LIT,     /* lit */
    N_PAYLOAD, /* seg_first, n_segs: 0 segments = the whole payload */
    N_TOPIC,   /* the whole topic */
    N_LEVEL,   /* topic level `level` */
    N_NOT,
    N_NEG,
    N_MUL,
    N_DIV,
    N_ADD,
    N_SUB,
    N_LT,
    N_LE,
    N_GT,
    N_GE,
    N_EQ,
    N_NE,
    N_AND,
    N_OR,
};

enum val_type { V_NULL, V_BOOL, V_NUM, V_STR, V_OTHER /* JSON object or array */ };

typedef struct val {
    enum val_type t;
    int b;
    double n;
    const char *s; /* V_STR: len bytes, not necessarily NUL-terminated */
    size_t len;
} val;

typedef struct seg {
    int is_index;
    size_t index;    /* is_index */
    const char *key; /* !is_index: NUL-terminated, in the pool */
} seg;

typedef struct node {
    enum node_op op;
    int a, b; /* children, -1 = none */
    val lit;
    size_t seg_first, n_segs;
    size_t level;
} node;

struct expr {
    node *nodes;
    size_t n_nodes;
    seg *segs;
    size_t n_segs;
    char *pool;
    int root;
    int uses_payload;
};

#endif
