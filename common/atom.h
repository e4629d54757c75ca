/* atom: the only atomic primitives mqttflow uses (STYLE 12).
 *
 * Every process that shares a segment uses these on naturally aligned 32/64-bit fields.
 * Each call site carries a label ("R1") and names its partner ("pairs with A1"); a relaxed
 * access says why no ordering is needed. GCC/Clang __atomic builtins are used rather than
 * <stdatomic.h> because shared-memory layouts keep plain fixed-width fields (*_layout.h)
 * that must not change type. Nothing here can fail.
 */
#ifndef MF_ATOM_H
#define MF_ATOM_H

#define atom_load_relaxed(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define atom_load_acquire(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define atom_store_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define atom_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
/* counters only: never orders anything else */
#define atom_add_relaxed(p, v)  __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define atom_xchg_acq_rel(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQ_REL)
/* store-buffer fence: "store my index, fence, load the peer's waiting flag" */
#define atom_fence_full() __atomic_thread_fence(__ATOMIC_SEQ_CST)
/* keeps the compiler from moving memory accesses across it; no CPU fence */
#define atom_barrier() __atomic_signal_fence(__ATOMIC_SEQ_CST)

#endif
