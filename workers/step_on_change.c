/* step_on_change: per topic, passes a message on only when its `field` (a JSON field path;
 * none = the whole payload) differs from the value last passed on that topic; repeats are
 * dropped silently (they are the point of the step, not a loss). The first message of a topic
 * always passes. JSON values compare as values ({"a":1} equals { "a" : 1 }); a payload without
 * the field compares as "missing".
 *
 * State: an open-addressing table topic -> last value, in process memory. It is bounded
 * (ON_CHANGE_MAX_TOPICS); when full it is cleared, which only lets one message per topic pass
 * again. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chain_int.h"
#include "log.h"

#define COMP                 "worker"
#define ON_CHANGE_MAX_TOPICS 65536u

typedef struct seen {
    char *topic; /* NULL = empty slot */
    char *value; /* the compact JSON of the field, or the raw payload */
    size_t value_len;
} seen;

typedef struct table {
    seen *slots;
    size_t cap, n; /* cap a power of two; n <= cap / 2 */
} table;

int step_on_change_init(chain_step *s)
{
    table *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->cap = 64;
    t->slots = calloc(t->cap, sizeof(*t->slots));
    if (!t->slots) {
        free(t);
        return -ENOMEM;
    }
    s->state = t;
    return 0;
}

static void clear(table *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        free(t->slots[i].topic);
        free(t->slots[i].value);
    }
    memset(t->slots, 0, t->cap * sizeof(*t->slots));
    t->n = 0;
}

void step_on_change_fini(chain_step *s)
{
    if (!s->cfg || s->cfg->kind != CFG_STEP_ON_CHANGE || !s->state)
        return;
    table *t = s->state;
    clear(t);
    free(t->slots);
    free(t);
    s->state = NULL;
}

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static seen *find(table *t, const char *topic)
{
    size_t i = hash(topic) & (t->cap - 1);
    while (t->slots[i].topic && strcmp(t->slots[i].topic, topic) != 0)
        i = (i + 1) & (t->cap - 1);
    return &t->slots[i];
}

static int grow(table *t)
{
    table bigger = {.cap = t->cap * 2};
    bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
    if (!bigger.slots)
        return -ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].topic)
            *find(&bigger, t->slots[i].topic) = t->slots[i];
    bigger.n = t->n;
    free(t->slots);
    *t = bigger;
    return 0;
}

/* The value m is compared by: compact JSON of the field, the raw payload, or "" (missing). */
static char *value_of(const chain_step *s, const mf_msg *m, size_t *len)
{
    if (!s->cfg->field) {
        char *v = malloc(m->payload_len + 1);
        if (v) {
            memcpy(v, m->payload, m->payload_len);
            v[m->payload_len] = '\0';
            *len = m->payload_len;
        }
        return v;
    }
    json_t *j = chain_json_field(m, s->cfg->field);
    char *v = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS) : strdup("");
    json_decref(j);
    if (v)
        *len = strlen(v);
    return v;
}

int step_on_change_process(chain_step *s, const ctx_origin *o, const mf_msg *m)
{
    table *t = s->state;
    size_t len = 0;
    char *v = value_of(s, m, &len);
    if (!v)
        goto oom;

    seen *e = find(t, m->topic);
    if (e->topic) {
        if (e->value_len == len && memcmp(e->value, v, len) == 0) {
            free(v);
            return 0; /* a repeat */
        }
        free(e->value);
        e->value = v;
        e->value_len = len;
        return chain_feed(s->cr, s->index + 1, o, m);
    }
    if (t->n + 1 > ON_CHANGE_MAX_TOPICS)
        clear(t);
    else if ((t->n + 1) * 2 > t->cap && grow(t) < 0) {
        free(v);
        goto oom;
    }
    e = find(t, m->topic);
    e->topic = strdup(m->topic);
    if (!e->topic) {
        free(v);
        goto oom;
    }
    e->value = v;
    e->value_len = len;
    t->n++;
    return chain_feed(s->cr, s->index + 1, o, m);
oom:
    /* without memory for the state, passing the message on is the lesser harm */
    log_warn(COMP, "rule %s, step %zu (on_change): out of memory, message passed unchecked",
             s->cr->r->name, s->index);
    return chain_feed(s->cr, s->index + 1, o, m);
}
