/* clock: the two clocks mqttflow reads. Monotonic for intervals, timeouts and windows; wall
 * clock (ns since the epoch) only for mf_msg.received_ns. Header-only; cannot fail. */
#ifndef MF_CLOCK_H
#define MF_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC_COARSE: the time of the last timer tick, read from the vDSO without the
 * TSC (about 5 ns here against 22 for clock_mono_ns). It lags the fine clock by up to its
 * resolution (clock_mono_coarse_res_ns, a jiffy: 1-10 ms) and never runs ahead of it: for
 * marks whose readers allow that lag (the worker's busy mark, workers/watchdog.h). */
static inline uint64_t clock_mono_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_mono_coarse_res_ns(void)
{
    struct timespec ts;
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &ts) != 0)
        return 10000000ull; /* a jiffy at HZ=100, the coarsest Linux has */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
