/* futex: raw syscalls; see futex.h. */
#include "futex.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

static void to_timespec(int64_t ns, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

static int wait_result(long rc)
{
    if (rc == 0)
        return 0;
    switch (errno) {
    case EAGAIN: /* the word had already changed: not an error, the caller re-checks */
        return 0;
    case ETIMEDOUT:
        return -ETIMEDOUT;
    case EINTR:
        return -EINTR;
    default:
        return -errno;
    }
}

int futex_wait(const uint32_t *word, uint32_t expected, int64_t deadline_ns)
{
    struct timespec ts, *tsp = NULL;

    if (deadline_ns >= 0) {
        to_timespec(deadline_ns, &ts);
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC timeout (plain FUTEX_WAIT a
     * relative one); MATCH_ANY makes it wakeable by a plain FUTEX_WAKE. */
    long rc =
        syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, tsp, NULL, FUTEX_BITSET_MATCH_ANY);
    return wait_result(rc);
}

void futex_wake(uint32_t *word, int n)
{
    /* errors here (EFAULT on an unmapped word) are our bug; nothing to report to callers */
    (void)syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}

int futex_wait_any(const uint32_t *const *words, const uint32_t *expected, size_t n,
                   int64_t deadline_ns)
{
    struct futex_waitv w[FUTEX_WAITV_MAX_WORDS];
    struct timespec ts, *tsp = NULL;

    if (n == 0 || n > FUTEX_WAITV_MAX_WORDS)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        w[i].val = expected[i];
        w[i].uaddr = (uint64_t)(uintptr_t)words[i];
        w[i].flags = FUTEX_32; /* shared: no FUTEX_PRIVATE_FLAG */
        w[i].__reserved = 0;
    }
    if (deadline_ns >= 0) {
        to_timespec(deadline_ns, &ts);
        tsp = &ts;
    }
    /* futex_waitv's timeout is absolute on the given clock; it returns the index of the
     * woken word (>= 0), which callers do not need: they re-check every ring. */
    long rc = syscall(SYS_futex_waitv, w, (unsigned)n, 0u, tsp, (int)CLOCK_MONOTONIC);
    if (rc >= 0)
        return 0;
    return wait_result(rc);
}
