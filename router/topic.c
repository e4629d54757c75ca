/* topic: MQTT filter trie (see topic.h).
 *
 * Matching is a breadth-first walk: the set of trie nodes that the topic's first d levels
 * reach is advanced one level at a time. A node has exactly one parent and each parent adds
 * each of its children at most once, so the set never holds a node twice and never exceeds
 * the node count; two scratch arrays of that size are kept in the trie, so matching
 * allocates nothing. Exact children are kept sorted and found by binary search.
 */
#include "topic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"

typedef struct tnode tnode;
struct tnode {
    char *level; /* this edge's level text (exact children), not NUL-terminated */
    size_t level_len;
    tnode **kids; /* exact children sorted by (bytes, length) */
    size_t n_kids, cap_kids;
    tnode *plus, *hash;
    uint32_t *values; /* filters ending here */
    size_t n_values, cap_values;
};

struct topic_trie {
    tnode *root;
    size_t n_filters;
    size_t n_nodes;
    tnode **cur, **nxt; /* matching scratch, scratch_cap entries each */
    size_t scratch_cap;
};

int topic_filter_is_valid(const char *filter)
{
    size_t len;

    if (!filter || !*filter)
        return 0;
    len = strlen(filter);
    for (size_t i = 0; i < len; i++) {
        char c = filter[i];
        int starts = i == 0 || filter[i - 1] == '/';
        int ends = i + 1 == len || filter[i + 1] == '/';
        if (c == '+' && !(starts && ends))
            return 0;
        if (c == '#' && !(starts && i + 1 == len))
            return 0;
    }
    return 1;
}

int topic_create(topic_trie **out)
{
    topic_trie *t = calloc(1, sizeof(*t));

    *out = NULL;
    if (!t)
        return -ENOMEM;
    t->root = calloc(1, sizeof(*t->root));
    if (!t->root) {
        free(t);
        return -ENOMEM;
    }
    t->n_nodes = 1;
    *out = t;
    return 0;
}

/* Post-order without recursion would need a stack as deep as the trie; filters are at most
 * CFG_MAX_TOPIC bytes, so recursion depth is bounded by a config the loader validated. */
static void node_free(tnode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        node_free(n->kids[i]);
    node_free(n->plus);
    node_free(n->hash);
    free(n->kids);
    free(n->values);
    free(n->level);
    free(n);
}

void topic_destroy(topic_trie *t)
{
    if (!t)
        return;
    node_free(t->root);
    free(t->cur);
    free(t->nxt);
    free(t);
}

size_t topic_count(const topic_trie *t)
{
    return t->n_filters;
}

static int level_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int r = m ? memcmp(a, b, m) : 0;

    if (r)
        return r;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Index of the exact child for level, or where it would be inserted (*found = 0). */
static size_t kid_search(const tnode *n, const char *level, size_t len, int *found)
{
    size_t lo = 0, hi = n->n_kids;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const tnode *k = n->kids[mid];
        int r = level_cmp(k->level, k->level_len, level, len);
        if (r == 0) {
            *found = 1;
            return mid;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static tnode *kid_get_or_add(topic_trie *t, tnode *n, const char *level, size_t len)
{
    int found;
    size_t at = kid_search(n, level, len, &found);
    tnode *k;

    if (found)
        return n->kids[at];
    tnode **kids = grow_one(n->kids, &n->cap_kids, n->n_kids, sizeof(*kids), 4);
    if (!kids)
        return NULL;
    n->kids = kids;
    k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    k->level = malloc(len ? len : 1);
    if (!k->level) {
        free(k);
        return NULL;
    }
    memcpy(k->level, level, len);
    k->level_len = len;
    memmove(&n->kids[at + 1], &n->kids[at], (n->n_kids - at) * sizeof(*n->kids));
    n->kids[at] = k;
    n->n_kids++;
    t->n_nodes++;
    return k;
}

static tnode *wild_get_or_add(topic_trie *t, tnode **slot)
{
    if (!*slot) {
        *slot = calloc(1, sizeof(**slot));
        if (!*slot)
            return NULL;
        t->n_nodes++;
    }
    return *slot;
}

/* Grows the matching scratch to hold every node the trie could have after adding a filter
 * of `levels` levels, before anything is added, so a failure leaves the trie usable. */
static int scratch_reserve(topic_trie *t, size_t want)
{
    tnode **a, **b;

    if (want <= t->scratch_cap)
        return 0;
    if (want < 2 * t->scratch_cap)
        want = 2 * t->scratch_cap;
    a = realloc(t->cur, want * sizeof(*a));
    if (!a)
        return -ENOMEM;
    t->cur = a;
    b = realloc(t->nxt, want * sizeof(*b));
    if (!b)
        return -ENOMEM;
    t->nxt = b;
    t->scratch_cap = want;
    return 0;
}

int topic_add(topic_trie *t, const char *filter, uint32_t value)
{
    size_t levels = 1;
    const char *p = filter;
    tnode *n = t->root;

    if (!topic_filter_is_valid(filter))
        return -EINVAL;
    for (const char *s = filter; *s; s++)
        levels += *s == '/';
    if (scratch_reserve(t, t->n_nodes + levels + 1) < 0)
        return -ENOMEM;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 1 && *p == '+')
            n = wild_get_or_add(t, &n->plus);
        else if (len == 1 && *p == '#')
            n = wild_get_or_add(t, &n->hash);
        else
            n = kid_get_or_add(t, n, p, len);
        if (!n)
            return -ENOMEM;
        if (!slash)
            break;
        p = slash + 1;
    }
    uint32_t *v = grow_one(n->values, &n->cap_values, n->n_values, sizeof(*v), 2);
    if (!v)
        return -ENOMEM;
    n->values = v;
    n->values[n->n_values++] = value;
    t->n_filters++;
    return 0;
}

static void emit(const tnode *n, uint32_t *out, size_t cap, size_t *count)
{
    for (size_t i = 0; i < n->n_values; i++) {
        if (*count < cap)
            out[*count] = n->values[i];
        (*count)++;
    }
}

size_t topic_match(topic_trie *t, const char *topic, size_t topic_len, uint32_t *out, size_t cap)
{
    size_t count = 0, ncur = 1, pos = 0;
    /* MQTT §4.7.2: wildcards at the first level do not match topics starting with '$' */
    int dollar = topic_len > 0 && topic[0] == '$';
    int first = 1;

    if (t->scratch_cap == 0)
        return 0; /* no filter was ever added */
    t->cur[0] = t->root;
    for (;;) {
        const char *lvl = topic + pos;
        const char *slash = memchr(lvl, '/', topic_len - pos);
        size_t len = slash ? (size_t)(slash - lvl) : topic_len - pos;
        size_t nnxt = 0;
        int wild = !(first && dollar);
        tnode **tmp;

        for (size_t i = 0; i < ncur; i++) {
            const tnode *n = t->cur[i];
            int found;
            size_t at;
            if (wild && n->hash)
                emit(n->hash, out, cap, &count);
            if (wild && n->plus)
                t->nxt[nnxt++] = n->plus;
            if (n->n_kids) {
                at = kid_search(n, lvl, len, &found);
                if (found)
                    t->nxt[nnxt++] = n->kids[at];
            }
        }
        tmp = t->cur;
        t->cur = t->nxt;
        t->nxt = tmp;
        ncur = nnxt;
        if (ncur == 0)
            return count;
        first = 0;
        if (!slash)
            break;
        pos += len + 1;
    }
    /* the topic is consumed: filters ending here match, and so does "x/#" at the parent
     * level x (MQTT: "sport/#" matches "sport") */
    for (size_t i = 0; i < ncur; i++) {
        emit(t->cur[i], out, cap, &count);
        if (t->cur[i]->hash)
            emit(t->cur[i]->hash, out, cap, &count);
    }
    return count;
}
