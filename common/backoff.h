/* backoff: the wait before the next try of something that keeps failing (a dead-letter store
 * that cannot be written: the router's and the relay's held ring regions, issue 8). The
 * first wait is short, so a store that was broken for a moment is found again at once; it
 * doubles with each failure up to a bound, so a store that stays broken costs a log line or
 * a system call every few seconds, not ten a second, and a repaired one is found within that
 * bound. Header-only; cannot fail. */
#ifndef MF_BACKOFF_H
#define MF_BACKOFF_H

/* A dead-letter store that refused a dead letter: tried again after 100 ms, doubling to 3.2 s */
#define BACKOFF_STORE_FIRST_MS 100
#define BACKOFF_STORE_MAX_MS   3200

/* The wait after one more failure, given the last one (0: this is the first failure) */
static inline unsigned backoff_next(unsigned delay_ms, unsigned first_ms, unsigned max_ms)
{
    unsigned d = delay_ms ? delay_ms * 2 : first_ms;
    return d > max_ms || d < delay_ms ? max_ms : d;
}

#endif
