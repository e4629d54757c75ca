#include "window.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atom.h"
#include "log.h"
#include "wstate.h"

#define COMP "worker"

/* The published state of a window; one of two copies, see wstate_db_*. */
typedef struct win_commit {
    uint64_t count;    /* entries held */
    uint64_t data_end; /* bytes of the data area in use */
    uint64_t deadline; /* WINDOW_CLOSED when count == 0 or there is no time limit */
    uint64_t attempts; /* closes begun on these contents */
    wstate_applied applied;
} win_commit;

typedef struct win_entry {
    uint64_t off; /* into the data area: topic NUL payload NUL client_id NUL */
    uint32_t topic_len, payload_len, cid_len;
    int32_t client;
    uint8_t qos, retain, pad[6];
    uint64_t seq, received_ns;
} win_entry;
_Static_assert(sizeof(win_entry) == 48, "win_entry layout");

typedef struct win_geo {
    uint64_t max_messages, data_cap; /* 0 in a new region: written at first attach */
    uint64_t drops;                  /* relaxed counter, not part of the commit */
    uint64_t pad[5];
} win_geo;
_Static_assert(sizeof(win_geo) == 64, "win_geo layout");

#define DB_OFF      sizeof(win_geo)
#define ENTRIES_OFF (DB_OFF + WSTATE_DB_SIZE(sizeof(win_commit)))

struct window {
    char *region;
    win_geo *geo;
    win_entry *entries;
    char *data;
    uint64_t duration_ns, data_cap;
    uint32_t max;
    wstate_replay replay;
    mf_msg *msgs; /* process memory, built by window_msgs */
    size_t msgs_cap;
    char label[96];
};

size_t window_data_cap(uint32_t max_messages)
{
    size_t cap = (size_t)max_messages * 1024u;
    if (cap < (1u << 20))
        cap = 1u << 20;
    if (cap > (16u << 20))
        cap = 16u << 20;
    return cap;
}

size_t window_region_size(uint32_t max_messages)
{
    return ENTRIES_OFF + (size_t)max_messages * sizeof(win_entry) + window_data_cap(max_messages);
}

static const win_commit *cur(const window *w)
{
    return wstate_db_cur(w->region + DB_OFF, sizeof(win_commit));
}

static win_commit *next(window *w)
{
    return wstate_db_next(w->region + DB_OFF, sizeof(win_commit));
}

static void publish(window *w)
{
    wstate_db_publish(w->region + DB_OFF);
}

/* Whether what a previous worker left is within bounds; why not in *why. */
static bool valid(const window *w, const win_commit *c, const char **why)
{
    if (c->count > w->max || c->data_end > w->data_cap) {
        *why = "count or size out of range";
        return false;
    }
    if (c->count > 0 && w->duration_ns && c->deadline == WINDOW_CLOSED) {
        *why = "open window without a deadline";
        return false;
    }
    uint64_t end = 0;
    for (uint64_t i = 0; i < c->count; i++) {
        const win_entry *e = &w->entries[i];
        uint64_t n = (uint64_t)e->topic_len + e->payload_len + e->cid_len + 3;
        if (e->off != end || n > c->data_end - e->off) {
            *why = "message outside the data area";
            return false;
        }
        const char *p = w->data + e->off;
        if (p[e->topic_len] || p[e->topic_len + 1 + e->payload_len] || p[n - 1] || e->qos > 2 ||
            e->retain > 1) {
            *why = "malformed message";
            return false;
        }
        end = e->off + n;
    }
    if (end != c->data_end) {
        *why = "size disagrees with the messages";
        return false;
    }
    return true;
}

/* Stamps the region with this configuration's geometry and commits an empty, closed window:
 * a new region, or the old state given up. */
static void format_region(window *w, uint32_t max_messages)
{
    w->geo->max_messages = max_messages;
    w->geo->data_cap = w->data_cap;
    win_commit *n = next(w);
    memset(n, 0, sizeof(*n));
    n->deadline = WINDOW_CLOSED;
    publish(w);
}

int window_create(void *region, size_t len, uint64_t duration_ns, uint32_t max_messages,
                  bool replay, const char *label, window **out)
{
    *out = NULL;
    if (max_messages == 0 || !region || len < window_region_size(max_messages))
        return -EINVAL;
    window *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->region = region;
    w->geo = region;
    w->entries = (win_entry *)(w->region + ENTRIES_OFF);
    w->data = w->region + ENTRIES_OFF + (size_t)max_messages * sizeof(win_entry);
    w->duration_ns = duration_ns;
    w->max = max_messages;
    w->data_cap = window_data_cap(max_messages);
    snprintf(w->label, sizeof(w->label), "%s", label ? label : "window");

    const char *why = NULL;
    if (w->geo->max_messages == 0 && w->geo->data_cap == 0) {
        /* a new (zeroed) region: an empty commit copy is already current */
        format_region(w, max_messages);
    } else if (w->geo->max_messages != max_messages || w->geo->data_cap != w->data_cap) {
        why = "geometry of another configuration";
    } else {
        valid(w, cur(w), &why);
    }
    if (why) {
        log_error(COMP, "%s: state left by the previous worker is corrupt (%s): window emptied",
                  w->label, why);
        format_region(w, max_messages);
    }
    const win_commit *c = cur(w);
    w->replay.on = replay && c->applied.pos != 0;
    if (c->count > 0)
        log_info(COMP, "%s: window of %llu messages carried over from the previous worker",
                 w->label, (unsigned long long)c->count);
    *out = w;
    return 0;
}

void window_destroy(window *w)
{
    if (!w)
        return;
    free(w->msgs);
    free(w);
}

void window_reset(window *w)
{
    win_commit *n = next(w);
    n->count = 0;
    n->data_end = 0;
    n->deadline = WINDOW_CLOSED;
    n->attempts = 0;
    publish(w);
}

unsigned window_begin_close(window *w)
{
    win_commit *n = next(w);
    n->attempts++;
    unsigned att = (unsigned)n->attempts;
    publish(w);
    return att;
}

static void drop(window *w)
{
    /* relaxed: a statistic, read by nothing that needs order */
    atom_store_relaxed(&w->geo->drops, atom_load_relaxed(&w->geo->drops) + 1);
}

int window_add(window *w, const mf_msg *m, const ctx_origin *o, uint64_t now_ns)
{
    const win_commit *c = cur(w);
    if (wstate_replay_skip(&w->replay, &c->applied, o->pos))
        return 1;

    const char *cid = m->client_id ? m->client_id : "";
    size_t tl = strlen(m->topic), cl = strlen(cid);
    size_t n = tl + 1 + m->payload_len + 1 + cl + 1;
    if (c->count >= w->max || n > w->data_cap - c->data_end || tl > UINT32_MAX ||
        m->payload_len > UINT32_MAX || cl > UINT32_MAX) {
        drop(w);
        return -ENOSPC;
    }
    /* beyond the published count and size: invisible until the commit below */
    win_entry *e = &w->entries[c->count];
    char *p = w->data + c->data_end;
    e->off = c->data_end;
    e->topic_len = (uint32_t)tl;
    e->payload_len = (uint32_t)m->payload_len;
    e->cid_len = (uint32_t)cl;
    e->client = o->client;
    e->qos = (uint8_t)(m->qos >= 0 && m->qos <= 2 ? m->qos : 0);
    e->retain = (uint8_t)(m->retain ? 1 : 0);
    e->seq = o->seq;
    e->received_ns = o->received_ns;
    memcpy(p, m->topic, tl + 1);
    p += tl + 1;
    if (m->payload_len)
        memcpy(p, m->payload, m->payload_len);
    p[m->payload_len] = '\0';
    p += m->payload_len + 1;
    memcpy(p, cid, cl + 1);

    win_commit *nx = next(w);
    if (nx->count == 0) {
        nx->deadline = w->duration_ns ? now_ns + w->duration_ns : WINDOW_CLOSED;
        nx->attempts = 0;
    }
    nx->count++;
    nx->data_end += n;
    nx->applied = wstate_applied_next(nx->applied, o->pos);
    publish(w);
    return 0;
}

uint64_t window_deadline(const window *w)
{
    const win_commit *c = cur(w);
    return c->count ? c->deadline : WINDOW_CLOSED;
}

size_t window_count(const window *w)
{
    return (size_t)cur(w)->count;
}

uint64_t window_drops(const window *w)
{
    return atom_load_relaxed(&w->geo->drops); /* relaxed: a statistic */
}

size_t window_msgs(window *w, const mf_msg **msgs, ctx_origin *o)
{
    const win_commit *c = cur(w);
    size_t n = (size_t)c->count;

    memset(o, 0, sizeof(*o));
    o->client = -1;
    *msgs = w->msgs;
    if (n > w->msgs_cap) {
        mf_msg *p = realloc(w->msgs, n * sizeof(*p));
        if (!p)
            return 0;
        w->msgs = p;
        w->msgs_cap = n;
        *msgs = p;
    }
    int qos = 0;
    for (size_t i = 0; i < n; i++) {
        const win_entry *e = &w->entries[i];
        const char *d = w->data + e->off;
        mf_msg *m = &w->msgs[i];
        m->topic = d;
        m->payload = d + e->topic_len + 1;
        m->payload_len = e->payload_len;
        m->client_id = d + e->topic_len + 1 + e->payload_len + 1;
        m->qos = e->qos;
        m->retain = e->retain;
        m->received_ns = e->received_ns;
        if (e->qos > qos)
            qos = e->qos;
        o->client = e->client;
        o->seq = e->seq;
        o->received_ns = e->received_ns;
    }
    o->qos = qos;
    o->retain = 0;
    o->pos = 0;
    return n;
}
