#include "suspect.h"

#include <errno.h>
#include <stdlib.h>

typedef struct target {
    size_t probation; /* acknowledgements still wanted one at a time */
    uint16_t win;     /* the record blamed last, and how many times in a row */
    uint64_t seq;
    int hits;
} target;

struct suspect {
    target *t;
    size_t n;
    int max_attempts;
};

int suspect_create(size_t n_conns, int max_attempts, suspect **out)
{
    suspect *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->t = calloc(n_conns ? n_conns : 1, sizeof(*s->t));
    if (!s->t) {
        free(s);
        return -ENOMEM;
    }
    s->n = n_conns;
    s->max_attempts = max_attempts;
    *out = s;
    return 0;
}

void suspect_destroy(suspect *s)
{
    if (!s)
        return;
    free(s->t);
    free(s);
}

bool suspect_lost(suspect *s, uint16_t conn, size_t n_lost, uint16_t win, uint64_t seq)
{
    if (conn >= s->n || n_lost == 0)
        return false;
    target *t = &s->t[conn];
    if (n_lost > 1) {
        /* innocent company: send them one at a time to find the one */
        if (t->probation < n_lost)
            t->probation = n_lost;
        return false;
    }
    if (t->hits > 0 && t->win == win && t->seq == seq) {
        t->hits++;
    } else {
        t->win = win;
        t->seq = seq;
        t->hits = 1;
    }
    if (t->probation == 0)
        t->probation = 1; /* its next try goes alone too */
    if (s->max_attempts > 0 && t->hits >= s->max_attempts) {
        t->hits = 0;
        return true;
    }
    return false;
}

void suspect_acked(suspect *s, uint16_t conn)
{
    if (conn >= s->n)
        return;
    target *t = &s->t[conn];
    t->hits = 0;
    if (t->probation > 0)
        t->probation--;
}

bool suspect_may_send(const suspect *s, uint16_t conn, int outstanding)
{
    if (conn >= s->n)
        return true;
    return s->t[conn].probation == 0 || outstanding == 0;
}
