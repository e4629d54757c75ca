/* grow: room for one more element at the end of an array that doubles as it fills (STYLE 23:
 * the idiom was written out in eight modules).
 *
 * grow_one(p, &cap, n, elem, first): when n < cap, returns p unchanged; otherwise reallocates
 * p to twice cap elements of elem bytes (first when cap is 0), stores the new capacity in
 * *cap and returns the new array. NULL when memory is short or the size would overflow: p
 * and *cap are then unchanged (still valid, still owned by the caller), so the caller only
 * returns -ENOMEM. Usage:
 *
 *     item *nq = grow_one(q->q, &q->cap, q->n, sizeof(*nq), 64);
 *     if (!nq)
 *         return -ENOMEM;
 *     q->q = nq;
 *
 * Header-only; any thread (the array is the caller's). */
#ifndef MF_GROW_H
#define MF_GROW_H

#include <stdint.h>
#include <stdlib.h>

static inline void *grow_one(void *p, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return p;
    size_t nc = *cap ? *cap * 2 : first;
    if (nc < *cap || nc > SIZE_MAX / elem)
        return NULL;
    void *np = realloc(p, nc * elem);
    if (np)
        *cap = nc;
    return np;
}

#endif
