/* bench_ring: cross-process throughput and wake-up latency of the mqttflow ring, each figure
 * beside the same workload through a bare SPSC loop in shared memory that uses no mqttflow
 * code (a minimal inline ring below: same record format, same cached indices, same batched
 * publication and futex parking), measured in the same run, interleaved, medians of reps.
 *
 *   bench_ring [reps]        (default 7; prints markdown tables)
 *
 * Throughput: a producer and a consumer process, pinned to different cores and to the same
 * core, move N records of 64 B, 256 B and 1 KiB through a 4 MiB ring; the consumer reads the
 * first word of each record. Latency: the consumer is parked (its waiting flag is set and it
 * has had 200 us to fall asleep), the producer stamps CLOCK_MONOTONIC into a record and
 * publishes it; the consumer's receive time minus the stamp, p50/p99. A 1 ms cache-line
 * ping-pong probe before each cross-core pair tells the vCPU placement (IPC-LIMITS: ~65 ns
 * round trip when the vCPUs share an L3, ~290 ns across dies).
 */
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atom.h"
#include "clock.h"
#include "ring.h"
#include "ring_layout.h"

#define RING_CAP (4u << 20)
#define BATCH    32
#define SPIN_NS  4000
#define LAT_N    400
#define MAX_REPS 15
#define PAD_FLAG (1ull << 63)

/* ---- the bare loop: no mqttflow code ---- */

typedef struct bare {
    _Alignas(128) uint64_t head;
    _Alignas(128) uint64_t tail;
    _Alignas(128) uint32_t cwait;
    uint32_t cwake;
    _Alignas(128) uint32_t pwait;
    uint32_t pwake;
    _Alignas(4096) unsigned char data[RING_CAP];
} bare;

static inline void relax(void)
{
    __builtin_ia32_pause();
}

static void fwait(uint32_t *w, uint32_t v)
{
    syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void fwake(uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* store index (done by caller), fence, wake the peer only if it is parked */
static inline void bare_signal(uint32_t *wait, uint32_t *wake)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(wait, __ATOMIC_RELAXED)) {
        __atomic_fetch_add(wake, 1, __ATOMIC_RELAXED);
        fwake(wake);
    }
}

/* producer state kept across calls (the latency run sends one record per call) */
typedef struct bare_prod {
    uint64_t head, pub, tail;
    unsigned pend;
} bare_prod;

static void bare_produce(bare *b, bare_prod *st, size_t len, uint64_t n, const void *src, int stamp)
{
    const uint64_t mask = RING_CAP - 1, slot = 8 + ((len + 7) & ~7ull);
    uint64_t head = st->head, pub = st->pub, tail = st->tail;
    unsigned pend = st->pend;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t off = head & mask, to_end = RING_CAP - off;
        uint64_t need = slot > to_end ? to_end + slot : slot;
        if (RING_CAP - (head - tail) < need) {
            uint64_t spin_end = clock_mono_ns() + SPIN_NS;
            if (head != pub) {
                __atomic_store_n(&b->head, head, __ATOMIC_RELEASE);
                pub = head;
                pend = 0;
                bare_signal(&b->cwait, &b->cwake);
            }
            for (unsigned k = 0;; k++) {
                tail = __atomic_load_n(&b->tail, __ATOMIC_ACQUIRE);
                if (RING_CAP - (head - tail) >= need)
                    break;
                if (k % 16 == 0 && clock_mono_ns() > spin_end) {
                    __atomic_store_n(&b->pwait, 1, __ATOMIC_RELAXED);
                    uint32_t seq = __atomic_load_n(&b->pwake, __ATOMIC_RELAXED);
                    __atomic_thread_fence(__ATOMIC_SEQ_CST);
                    tail = __atomic_load_n(&b->tail, __ATOMIC_ACQUIRE);
                    if (RING_CAP - (head - tail) < need)
                        fwait(&b->pwake, seq);
                    __atomic_store_n(&b->pwait, 0, __ATOMIC_RELAXED);
                } else {
                    relax();
                }
            }
        }
        if (slot > to_end) {
            *(uint64_t *)(b->data + off) = PAD_FLAG | to_end;
            head += to_end;
            off = 0;
        }
        *(uint64_t *)(b->data + off) = len;
        memcpy(b->data + off + 8, src, len);
        if (stamp) {
            uint64_t t = clock_mono_ns();
            memcpy(b->data + off + 8, &t, 8);
        }
        head += slot;
        if (++pend == BATCH) {
            __atomic_store_n(&b->head, head, __ATOMIC_RELEASE);
            pub = head;
            pend = 0;
            bare_signal(&b->cwait, &b->cwake);
        }
    }
    __atomic_store_n(&b->head, head, __ATOMIC_RELEASE);
    bare_signal(&b->cwait, &b->cwake);
    st->head = st->pub = head;
    st->tail = tail;
    st->pend = 0;
}

/* Consumes n records; returns the sum of their first words. lat: receive - stamp per record */
static uint64_t bare_consume(bare *b, uint64_t n, uint64_t *lat, uint32_t *ack)
{
    const uint64_t mask = RING_CAP - 1;
    uint64_t tail = 0, head = 0, pubt = 0, sum = 0;
    unsigned pend = 0;
    for (uint64_t got = 0; got < n;) {
        if (tail == head) {
            head = __atomic_load_n(&b->head, __ATOMIC_ACQUIRE);
            if (tail == head) {
                if (tail != pubt) {
                    __atomic_store_n(&b->tail, tail, __ATOMIC_RELEASE);
                    pubt = tail;
                    pend = 0;
                    bare_signal(&b->pwait, &b->pwake);
                }
                uint64_t spin_end = clock_mono_ns() + SPIN_NS;
                for (unsigned k = 0;; k++) {
                    head = __atomic_load_n(&b->head, __ATOMIC_ACQUIRE);
                    if (head != tail)
                        break;
                    if (k % 16 == 0 && clock_mono_ns() > spin_end) {
                        __atomic_store_n(&b->cwait, 1, __ATOMIC_RELAXED);
                        uint32_t seq = __atomic_load_n(&b->cwake, __ATOMIC_RELAXED);
                        __atomic_thread_fence(__ATOMIC_SEQ_CST);
                        head = __atomic_load_n(&b->head, __ATOMIC_ACQUIRE);
                        if (head == tail)
                            fwait(&b->cwake, seq);
                        __atomic_store_n(&b->cwait, 0, __ATOMIC_RELAXED);
                    } else {
                        relax();
                    }
                }
            }
        }
        uint64_t h = *(uint64_t *)(b->data + (tail & mask));
        if (h & PAD_FLAG) {
            tail += h & ~PAD_FLAG;
            continue;
        }
        uint64_t w;
        memcpy(&w, b->data + (tail & mask) + 8, 8);
        if (lat)
            lat[got] = clock_mono_ns() - w;
        sum += w;
        tail += 8 + ((h + 7) & ~7ull);
        got++;
        if (ack)
            __atomic_store_n(ack, (uint32_t)got, __ATOMIC_RELEASE);
        if (++pend == BATCH) {
            __atomic_store_n(&b->tail, tail, __ATOMIC_RELEASE);
            pubt = tail;
            pend = 0;
            bare_signal(&b->pwait, &b->pwake);
        }
    }
    __atomic_store_n(&b->tail, tail, __ATOMIC_RELEASE);
    return sum;
}

/* ---- the mqttflow ring under the same workload ---- */

static int mf_produce(ring *p, size_t len, uint64_t n, const void *src, int stamp)
{
    for (uint64_t i = 0; i < n; i++) {
        void *buf;
        int rc;
        while ((rc = ring_reserve(p, len, &buf)) == -EAGAIN)
            if ((rc = ring_wait_space(p, len, -1)) != 0)
                return rc;
        if (rc != 0)
            return rc;
        memcpy(buf, src, len);
        if (stamp) {
            uint64_t t = clock_mono_ns();
            memcpy(buf, &t, 8);
        }
        ring_commit(p, len);
    }
    ring_flush(p);
    return 0;
}

static uint64_t mf_consume(ring *c, uint64_t n, uint64_t *lat, uint32_t *ack)
{
    uint64_t sum = 0;
    for (uint64_t got = 0; got < n;) {
        const void *buf;
        size_t len;
        int rc = ring_peek(c, &buf, &len);
        if (rc == -EAGAIN) {
            if (ring_wait_data(c, -1) != 0)
                exit(3);
            continue;
        }
        if (rc != 0)
            exit(4);
        uint64_t w;
        memcpy(&w, buf, 8);
        if (lat)
            lat[got] = clock_mono_ns() - w;
        sum += w;
        ring_advance(c);
        got++;
        if (ack)
            __atomic_store_n(ack, (uint32_t)got, __ATOMIC_RELEASE);
        if ((got & (BATCH - 1)) == 0)
            ring_release(c);
    }
    ring_release(c);
    return sum;
}

/* ---- harness ---- */

typedef struct shared {
    int ready, go;
    uint64_t t_start, t_end, sum;
    uint32_t ack;
    uint64_t lat[LAT_N];
} shared;

static shared *sh;
static char ring_name[96];

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        perror("sched_setaffinity");
        exit(5);
    }
}

static void await_go(void)
{
    __atomic_add_fetch(&sh->ready, 1, __ATOMIC_ACQ_REL);
    while (!__atomic_load_n(&sh->go, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void reap(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "bench child %d failed (status %d)\n", (int)pid, st);
        exit(1);
    }
}

enum impl { IMPL_BARE, IMPL_MF };

/* The shared area of one run: a bare ring (*b) or a mqttflow ring created anew (*obs). */
static void open_impl(enum impl impl, bare **b, ring **obs)
{
    if (impl == IMPL_BARE) {
        *b = mmap(NULL, sizeof(bare), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (*b == MAP_FAILED)
            exit(6);
    } else {
        ring_unlink(ring_name);
        if (ring_create(ring_name, RING_CAP, 4096, obs) != 0)
            exit(7);
    }
}

static void close_impl(bare *b, ring *obs)
{
    if (b)
        munmap(b, sizeof(bare));
    if (obs) {
        ring_detach(obs);
        ring_unlink(ring_name);
    }
}

/* In a child: pinned to cpu, attached to the mqttflow ring as role (NULL for the bare ring). */
static ring *child_attach(enum impl impl, enum ring_role role, int cpu)
{
    pin(cpu);
    ring *r = NULL;
    if (impl == IMPL_MF && ring_attach(ring_name, role, &r) != 0)
        _exit(8);
    return r;
}

/* Starts both children at once when both are ready, and reaps them. */
static void go_and_reap(pid_t prod, pid_t cons)
{
    while (__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE) < 2)
        sched_yield();
    __atomic_store_n(&sh->go, 1, __ATOMIC_RELEASE);
    reap(prod);
    reap(cons);
}

/* One throughput run; returns records per second. */
static double run_tput(enum impl impl, size_t len, uint64_t n, int pcpu, int ccpu)
{
    bare *b = NULL;
    ring *obs = NULL;
    unsigned char src[1024];
    memset(src, 0x33, sizeof(src));
    memset(sh, 0, offsetof(shared, lat));
    open_impl(impl, &b, &obs);
    pid_t cons = fork();
    if (cons == 0) {
        ring *c = child_attach(impl, RING_CONSUMER, ccpu);
        await_go();
        uint64_t sum =
            impl == IMPL_BARE ? bare_consume(b, n, NULL, NULL) : mf_consume(c, n, NULL, NULL);
        sh->t_end = clock_mono_ns();
        sh->sum = sum;
        _exit(0);
    }
    pid_t prod = fork();
    if (prod == 0) {
        ring *p = child_attach(impl, RING_PRODUCER, pcpu);
        await_go();
        sh->t_start = clock_mono_ns();
        bare_prod bp = {0};
        if (impl == IMPL_BARE)
            bare_produce(b, &bp, len, n, src, 0);
        else if (mf_produce(p, len, n, src, 0) != 0)
            _exit(9);
        _exit(0);
    }
    go_and_reap(prod, cons);
    if (sh->sum != n * 0x3333333333333333ull) {
        fprintf(stderr, "bench: consumer checksum mismatch (%s)\n", impl ? "mqttflow" : "bare");
        exit(1);
    }
    close_impl(b, obs);
    return (double)n / ((double)(sh->t_end - sh->t_start) / 1e9);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void sleep_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* Wake-up latency of a parked consumer: fills p50/p99 in ns. */
static void run_latency(enum impl impl, int pcpu, int ccpu, double *p50, double *p99)
{
    bare *b = NULL;
    ring *obs = NULL;
    uint32_t *flag;
    unsigned char src[64];
    memset(src, 0, sizeof(src));
    memset(sh, 0, sizeof(*sh));
    open_impl(impl, &b, &obs);
    if (impl == IMPL_BARE) {
        flag = &b->cwait;
    } else {
        shm *seg;
        if (shm_attach(ring_name, SHM_KIND_RING, RING_LAYOUT_VERSION, &seg) != 0)
            exit(7);
        flag = &((ring_ctl *)shm_base(seg))->cons_waiting; /* mapping kept until exit */
    }
    pid_t cons = fork();
    if (cons == 0) {
        ring *c = child_attach(impl, RING_CONSUMER, ccpu);
        await_go();
        if (impl == IMPL_BARE)
            bare_consume(b, LAT_N, sh->lat, &sh->ack);
        else
            mf_consume(c, LAT_N, sh->lat, &sh->ack);
        _exit(0);
    }
    pid_t prod = fork();
    if (prod == 0) {
        ring *p = child_attach(impl, RING_PRODUCER, pcpu);
        bare_prod bp = {0};
        await_go();
        for (uint32_t i = 0; i < LAT_N; i++) {
            while (__atomic_load_n(&sh->ack, __ATOMIC_ACQUIRE) < i)
                sched_yield();
            while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE))
                sched_yield();
            sleep_us(200); /* the flag is set just before FUTEX_WAIT: let it fall asleep */
            if (impl == IMPL_BARE)
                bare_produce(b, &bp, 64, 1, src, 1);
            else if (mf_produce(p, 64, 1, src, 1) != 0)
                _exit(9);
        }
        _exit(0);
    }
    go_and_reap(prod, cons);
    qsort(sh->lat, LAT_N, sizeof(uint64_t), cmp_u64);
    *p50 = (double)sh->lat[LAT_N / 2];
    *p99 = (double)sh->lat[LAT_N * 99 / 100];
    close_impl(b, obs);
}

/* ns per cache-line round trip between the two cores, over 1 ms */
static double probe_rtt(void)
{
    uint64_t *line = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (line == MAP_FAILED)
        exit(6);
    pid_t pid = fork();
    if (pid == 0) {
        pin(1);
        for (;;) {
            uint64_t v = __atomic_load_n(line, __ATOMIC_ACQUIRE);
            if (v == UINT64_MAX)
                _exit(0);
            if (v & 1)
                __atomic_store_n(line, v + 1, __ATOMIC_RELEASE);
            else
                relax();
        }
    }
    pin(0);
    uint64_t rounds = 0, t0 = clock_mono_ns(), t1;
    do {
        __atomic_store_n(line, 2 * rounds + 1, __ATOMIC_RELEASE);
        while (__atomic_load_n(line, __ATOMIC_ACQUIRE) != 2 * rounds + 2)
            relax();
        rounds++;
    } while ((t1 = clock_mono_ns()) - t0 < 1000000);
    __atomic_store_n(line, UINT64_MAX, __ATOMIC_RELEASE);
    reap(pid);
    cpu_set_t all;
    CPU_ZERO(&all);
    for (int i = 0; i < CPU_SETSIZE && i < 64; i++)
        CPU_SET(i, &all);
    sched_setaffinity(0, sizeof(all), &all);
    munmap(line, 4096);
    return (double)(t1 - t0) / (double)rounds;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int reps = argc > 1 ? atoi(argv[1]) : 7;
    if (reps < 1 || reps > MAX_REPS)
        reps = 7;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    snprintf(ring_name, sizeof(ring_name), "mqttflow.bench%d.ring", (int)getpid());
    sh = mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED)
        return 1;

    static const size_t sizes[] = {64, 256, 1024};
    static const uint64_t counts[] = {3000000, 1500000, 600000};
    struct {
        const char *name;
        int pcpu, ccpu;
    } places[] = {{"cross-core", 0, 1}, {"same core", 0, 0}};
    int nplaces = ncpu >= 2 ? 2 : 1;
    int first = ncpu >= 2 ? 0 : 1;
    double mf[3][2][MAX_REPS], bare_r[3][2][MAX_REPS], rtt[MAX_REPS * 3];
    int nrtt = 0;

    for (int rep = 0; rep < reps; rep++) {
        for (int s = 0; s < 3; s++) {
            for (int pl = first; pl < first + nplaces && pl < 2; pl++) {
                if (pl == 0)
                    rtt[nrtt++] = probe_rtt();
                /* alternate which goes first so drift in the machine's load hits both */
                if (rep % 2 == 0) {
                    bare_r[s][pl][rep] =
                        run_tput(IMPL_BARE, sizes[s], counts[s], places[pl].pcpu, places[pl].ccpu);
                    mf[s][pl][rep] =
                        run_tput(IMPL_MF, sizes[s], counts[s], places[pl].pcpu, places[pl].ccpu);
                } else {
                    mf[s][pl][rep] =
                        run_tput(IMPL_MF, sizes[s], counts[s], places[pl].pcpu, places[pl].ccpu);
                    bare_r[s][pl][rep] =
                        run_tput(IMPL_BARE, sizes[s], counts[s], places[pl].pcpu, places[pl].ccpu);
                }
            }
        }
        fprintf(stderr, "bench_ring: rep %d/%d done\n", rep + 1, reps);
    }

    printf("\n### mqttflow ring vs bare SPSC loop (medians of %d interleaved runs, 4 MiB ring)\n\n",
           reps);
    if (nrtt)
        printf("cache-line ping-pong probe, cross-core round trip: median %.0f ns "
               "(~65 ns: shared L3; ~290 ns: different dies)\n\n",
               median(rtt, nrtt));
    printf("ratio = median over reps of (mqttflow / bare) of the two runs made back to back, "
           "which cancels most of the drift in the machine's load\n\n");
    printf("| record | placement | mqttflow M msg/s | bare M msg/s | ratio | mqttflow GB/s |\n");
    printf("|---:|---|---:|---:|---:|---:|\n");
    for (int s = 0; s < 3; s++) {
        for (int pl = first; pl < first + nplaces && pl < 2; pl++) {
            double ratio[MAX_REPS];
            for (int rep = 0; rep < reps; rep++)
                ratio[rep] = mf[s][pl][rep] / bare_r[s][pl][rep];
            double m = median(mf[s][pl], reps), bb = median(bare_r[s][pl], reps);
            printf("| %zu B | %s | %.1f | %.1f | %.2f | %.2f |\n", sizes[s], places[pl].name,
                   m / 1e6, bb / 1e6, median(ratio, reps), m * (double)sizes[s] / 1e9);
        }
    }

    printf("\n### wake-up latency of a parked consumer (%d wake-ups each, 64 B record)\n\n", LAT_N);
    printf("| placement | mqttflow p50 us | p99 us | bare p50 us | p99 us | ratio p50 |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    for (int pl = first; pl < first + nplaces && pl < 2; pl++) {
        double m50, m99, b50, b99;
        run_latency(IMPL_BARE, places[pl].pcpu, places[pl].ccpu, &b50, &b99);
        run_latency(IMPL_MF, places[pl].pcpu, places[pl].ccpu, &m50, &m99);
        printf("| %s | %.1f | %.1f | %.1f | %.1f | %.2f |\n", places[pl].name, m50 / 1e3, m99 / 1e3,
               b50 / 1e3, b99 / 1e3, m50 / b50);
    }
    printf("\nload average during the run: ");
    fflush(stdout);
    FILE *f = fopen("/proc/loadavg", "r");
    char la[128] = "?";
    if (f) {
        if (!fgets(la, sizeof(la), f))
            la[0] = '\0';
        fclose(f);
    }
    printf("%s(teammates compile on the same 2 cores: figures are noisy)\n", la);
    return 0;
}
