/* futex: the three futex operations the rings park on (DESIGN §2).
 *
 * Every word here lives in a MAP_SHARED segment that different processes map, so every call
 * is a shared futex (no FUTEX_PRIVATE_FLAG): the kernel keys it by the backing page, not by
 * this process's address space. Deadlines are absolute CLOCK_MONOTONIC nanoseconds (the
 * clock_mono_ns() clock), or -1 for none, so a caller that loops after a spurious return does
 * not stretch its timeout. Callable from any thread; nothing is left behind on failure.
 *
 * Signals: a wait returns -EINTR when a handler installed without SA_RESTART runs; with
 * SA_RESTART the kernel restarts the wait, and blocked signals (signalfd) never interrupt it.
 */
#ifndef MF_FUTEX_H
#define MF_FUTEX_H

#include <stddef.h>
#include <stdint.h>

#define FUTEX_WAITV_MAX_WORDS 128 /* kernel limit of futex_waitv */

/* Sleeps while *word == expected, until woken or the deadline. 0 when woken or the word
 * already differed (the caller re-checks its condition either way); -ETIMEDOUT; -EINTR. */
int futex_wait(const uint32_t *word, uint32_t expected, int64_t deadline_ns);
/* Wakes up to n sleepers on word. Cannot fail in a way the caller could act on. */
void futex_wake(uint32_t *word, int n);
/* Sleeps until any words[i] != expected[i] (futex_waitv, Linux >= 5.16), woken or deadline.
 * n in 1..FUTEX_WAITV_MAX_WORDS. 0; -ETIMEDOUT; -EINTR; -ENOSYS on an older kernel;
 * -EINVAL on a bad n. */
int futex_wait_any(const uint32_t *const *words, const uint32_t *expected, size_t n,
                   int64_t deadline_ns);

#endif
