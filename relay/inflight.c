/* inflight: the relay's in-order in-flight window over one ring; see inflight.h.
 *
 * Invariants: first <= cursor <= next; next - first <= capacity; every entry in
 * [first, cursor) is SENT or DONE (so the next PENDING one is at or after cursor).
 */
#include "inflight.h"

#include <errno.h>
#include <stdlib.h>

struct inflight {
    inflight_entry *e;
    uint64_t mask;
    uint64_t first;  /* oldest entry not released */
    uint64_t cursor; /* send cursor */
    uint64_t next;   /* sequence of the next push */
};

int inflight_create(size_t capacity, inflight **out)
{
    *out = NULL;
    if (capacity < 2 || (capacity & (capacity - 1)) != 0)
        return -EINVAL;
    inflight *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->e = calloc(capacity, sizeof(*w->e));
    if (!w->e) {
        free(w);
        return -ENOMEM;
    }
    w->mask = capacity - 1;
    *out = w;
    return 0;
}

void inflight_destroy(inflight *w)
{
    if (!w)
        return;
    for (uint64_t s = w->first; s < w->next; s++)
        free(w->e[s & w->mask].owned);
    free(w->e);
    free(w);
}

size_t inflight_count(const inflight *w)
{
    return (size_t)(w->next - w->first);
}

int inflight_is_full(const inflight *w)
{
    return w->next - w->first > w->mask;
}

int inflight_is_empty(const inflight *w)
{
    return w->next == w->first;
}

uint64_t inflight_push(inflight *w, const inflight_entry *e)
{
    if (inflight_is_full(w))
        abort(); /* caller bug: checks inflight_is_full before reading a record */
    uint64_t seq = w->next++;
    w->e[seq & w->mask] = *e;
    return seq;
}

inflight_entry *inflight_at(inflight *w, uint64_t seq)
{
    if (seq < w->first || seq >= w->next)
        return NULL;
    return &w->e[seq & w->mask];
}

inflight_entry *inflight_next_pending(inflight *w, uint64_t *seq)
{
    while (w->cursor < w->next) {
        inflight_entry *e = &w->e[w->cursor & w->mask];
        if (e->state == INFLIGHT_PENDING) {
            *seq = w->cursor;
            return e;
        }
        w->cursor++;
    }
    return NULL;
}

static inflight_entry *entry(inflight *w, uint64_t seq)
{
    inflight_entry *e = inflight_at(w, seq);
    if (!e)
        abort(); /* caller bug: a completion for an entry that is not in the inflight */
    return e;
}

void inflight_sent(inflight *w, uint64_t seq)
{
    entry(w, seq)->state = INFLIGHT_SENT;
}

void inflight_done(inflight *w, uint64_t seq)
{
    entry(w, seq)->state = INFLIGHT_DONE;
}

void inflight_retry(inflight *w, uint64_t seq)
{
    entry(w, seq)->state = INFLIGHT_PENDING;
    if (seq < w->cursor)
        w->cursor = seq;
}

size_t inflight_release(inflight *w, uint64_t *pos)
{
    size_t n = 0;
    while (w->first < w->next && w->e[w->first & w->mask].state == INFLIGHT_DONE) {
        inflight_entry *e = &w->e[w->first & w->mask];
        *pos = e->end_pos;
        free(e->owned);
        e->owned = NULL;
        w->first++;
        n++;
    }
    if (w->cursor < w->first)
        w->cursor = w->first;
    return n;
}
