/* hash: the one non-cryptographic hash of mqttflow, 64-bit FNV-1a (STYLE 23).
 *
 * Used where a hash must be stable across processes, restarts and builds: the router's
 * per-topic worker choice (router/dispatch.c), the supervisor's config tag of adopted rings
 * (supervisor/topo.c), the state segment's config hash and the on_change step's topic and
 * value hashes (workers/). Stability is the point: a value computed by one process is compared
 * with one computed by another, or by the previous run, so the constants below are a format:
 * changing them moves every stored hash (wstate.h's layout version says which basis a state
 * segment was written with). Not for untrusted keys in a table an attacker can fill (no seed).
 * Header-only, pure, cannot fail; any thread.
 */
#ifndef MF_HASH_H
#define MF_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A_BASIS 14695981039346656037ull /* the offset basis of 64-bit FNV-1a */
#define HASH_FNV1A_PRIME 1099511628211ull

/* Continues hash h over n bytes at p (h = HASH_FNV1A_BASIS to start): hashing a then b equals
 * hashing a and b joined. */
static inline uint64_t hash_fnv1a_add(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * HASH_FNV1A_PRIME;
    return h;
}

/* The hash of n bytes at p. */
static inline uint64_t hash_fnv1a(const void *p, size_t n)
{
    return hash_fnv1a_add(HASH_FNV1A_BASIS, p, n);
}

#endif
