#include "window.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One allocation per message: topic NUL, payload NUL, client_id NUL. */
typedef struct held {
    ctx_origin o;
    size_t topic_len, payload_len;
    char data[];
} held;

struct window {
    uint64_t duration_ns;
    uint32_t max;
    uint64_t deadline; /* WINDOW_CLOSED when n == 0 or duration_ns == 0 */
    uint64_t drops;
    size_t n, cap;
    held **items;
    mf_msg *msgs; /* built from items, cap entries */
};

int window_create(uint64_t duration_ns, uint32_t max_messages, window **out)
{
    *out = NULL;
    if (max_messages == 0)
        return -EINVAL;
    window *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->duration_ns = duration_ns;
    w->max = max_messages;
    w->deadline = WINDOW_CLOSED;
    *out = w;
    return 0;
}

void window_reset(window *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->items[i]);
    w->n = 0;
    w->deadline = WINDOW_CLOSED;
}

void window_destroy(window *w)
{
    if (!w)
        return;
    window_reset(w);
    free(w->items);
    free(w->msgs);
    free(w);
}

static int grow(window *w)
{
    size_t cap = w->cap ? w->cap * 2 : 16;
    if (cap > w->max)
        cap = w->max;
    held **items = realloc(w->items, cap * sizeof(*items));
    if (!items)
        return -ENOMEM;
    w->items = items;
    mf_msg *msgs = realloc(w->msgs, cap * sizeof(*msgs));
    if (!msgs)
        return -ENOMEM;
    w->msgs = msgs;
    w->cap = cap;
    return 0;
}

int window_add(window *w, const mf_msg *m, const ctx_origin *o, uint64_t now_ns)
{
    if (w->n >= w->max) {
        w->drops++;
        return -ENOSPC;
    }
    if (w->n == w->cap && grow(w) < 0)
        return -ENOMEM;

    const char *cid = m->client_id ? m->client_id : "";
    size_t tl = strlen(m->topic), cl = strlen(cid);
    held *h = malloc(sizeof(*h) + tl + 1 + m->payload_len + 1 + cl + 1);
    if (!h)
        return -ENOMEM;
    h->o = *o;
    h->o.qos = m->qos;
    h->o.retain = m->retain;
    h->topic_len = tl;
    h->payload_len = m->payload_len;
    char *p = h->data;
    memcpy(p, m->topic, tl + 1);
    p += tl + 1;
    if (m->payload_len)
        memcpy(p, m->payload, m->payload_len);
    p[m->payload_len] = '\0';
    p += m->payload_len + 1;
    memcpy(p, cid, cl + 1);

    w->items[w->n++] = h;
    if (w->n == 1 && w->duration_ns)
        w->deadline = now_ns + w->duration_ns;
    return 0;
}

uint64_t window_deadline(const window *w)
{
    return w->deadline;
}

size_t window_count(const window *w)
{
    return w->n;
}

uint64_t window_drops(const window *w)
{
    return w->drops;
}

size_t window_msgs(window *w, const mf_msg **msgs, ctx_origin *o)
{
    memset(o, 0, sizeof(*o));
    o->client = -1;
    for (size_t i = 0; i < w->n; i++) {
        const held *h = w->items[i];
        mf_msg *m = &w->msgs[i];
        m->topic = h->data;
        m->payload = h->data + h->topic_len + 1;
        m->payload_len = h->payload_len;
        m->client_id = h->data + h->topic_len + 1 + h->payload_len + 1;
        m->qos = h->o.qos;
        m->retain = h->o.retain;
        m->received_ns = h->o.received_ns;
        int qos = o->qos > h->o.qos ? o->qos : h->o.qos;
        *o = h->o;
        o->qos = qos;
        o->retain = 0;
    }
    *msgs = w->msgs;
    return w->n;
}
