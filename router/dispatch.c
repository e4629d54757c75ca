/* dispatch: worker choice per execution_mode (see dispatch.h). */
#include "dispatch.h"

#include <errno.h>
#include <stdlib.h>

#include "hash.h"

struct dispatch {
    const cfg *c;
    size_t n_workers;
    size_t rr;     /* parallel: where the next least-loaded scan starts */
    size_t *fixed; /* sequential: the worker of each rule */
};

int dispatch_create(const cfg *c, size_t n_workers, dispatch **out)
{
    dispatch *d;

    *out = NULL;
    if (n_workers == 0)
        return -EINVAL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->c = c;
    d->n_workers = n_workers;
    d->fixed = calloc(c->n_rules + 1, sizeof(*d->fixed));
    if (!d->fixed) {
        free(d);
        return -ENOMEM;
    }
    /* the k-th sequential rule goes to worker k mod n: "rule index mod n" would stack
     * sequential rules on a few workers when other modes sit between them in the list */
    for (size_t i = 0, k = 0; i < c->n_rules; i++)
        if (c->rules[i].exec_mode == CFG_EXEC_SEQUENTIAL)
            d->fixed[i] = k++ % n_workers;
    *out = d;
    return 0;
}

void dispatch_destroy(dispatch *d)
{
    if (!d)
        return;
    free(d->fixed);
    free(d);
}

uint64_t dispatch_topic_hash(const char *topic, size_t topic_len)
{
    /* stable across processes and restarts (hash.h): a restarted router must send a topic to
     * the same worker as before, or per-topic order breaks across the restart */
    return hash_fnv1a(topic, topic_len);
}

static size_t least_loaded(dispatch *d, dispatch_load_fn load, void *ctx)
{
    size_t best = d->rr % d->n_workers, best_load = load(ctx, best);

    /* starting the scan at the cursor and keeping the first minimum breaks ties round-robin */
    for (size_t i = 1; i < d->n_workers && best_load > 0; i++) {
        size_t w = (d->rr + i) % d->n_workers, l = load(ctx, w);
        if (l < best_load) {
            best = w;
            best_load = l;
        }
    }
    d->rr = best + 1;
    return best;
}

size_t dispatch_pick(dispatch *d, size_t rule, const char *topic, size_t topic_len,
                     dispatch_load_fn load, void *ctx)
{
    if (d->n_workers == 1)
        return 0;
    switch (d->c->rules[rule].exec_mode) {
    case CFG_EXEC_PARALLEL:
        return least_loaded(d, load, ctx);
    case CFG_EXEC_PER_TOPIC:
        return (size_t)(dispatch_topic_hash(topic, topic_len) % d->n_workers);
    case CFG_EXEC_SEQUENTIAL:
    default:
        return d->fixed[rule];
    }
}
