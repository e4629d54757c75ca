/* mfsub: the test subscriber of the integration, fault and benchmark tests (paho MQTTAsync).
 *
 * Subscribes to one or more filters and checks the test payloads it receives (testlib.h):
 * per source id it counts unique messages, duplicates (a sequence number seen before) and
 * lost ones (gaps below the highest sequence seen, or fewer than -n unique at the end);
 * reordered messages are those whose sequence is lower than the highest already seen from
 * the same source on the same topic (per topic, because a per_topic or parallel pipeline
 * legitimately reorders across topics; -g counts per source over all topics). Latency is the
 * publisher's monotonic send time against the arrival time (same host).
 *
 * usage: mfsub [-H host] [-p port] [-c client_id] [-t filter]... [-q qos] [-P] [-R ready_file]
 *              [-n N] [-I idle_secs] [-T total_secs] [-g] [-v] [-D] [-u user:password]
 * It ends when N distinct messages arrived (unique test payloads, plus every payload that is
 * not a test payload, e.g. text for -D tests), after -I seconds without a message (default 5),
 * or after -T seconds in total. Last line:
 *   RESULT recv=.. unique=.. lost=.. dup=.. reorder=.. badsum=.. other=.. p50_us=.. p99_us=..
 *          max_us=.. rate=..
 * Exit 0 when it got its N (or when -n was not given), 1 otherwise, 2 on bad usage.
 * It survives broker restarts (paho automatic reconnect, 1-2 s retry, resubscribing every
 * time); the -R file is written again after each successful (re)subscribe.
 */
#include "testlib.h"
#include "toolconn.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <unistd.h>

#define MAX_FILTERS 64
#define MAX_SEQ     (1ull << 31) /* bound on a tracked sequence number: bitmap memory */

typedef struct src_track {
    uint32_t id;
    uint8_t *seen; /* bitmap of sequence numbers */
    uint64_t seen_bits;
    uint64_t max_seq;
    uint64_t unique;
} src_track;

typedef struct order_key { /* highest seq per (source, topic) for reorder counting */
    struct order_key *next;
    uint32_t src;
    uint64_t max_seq;
    char topic[];
} order_key;

#define ORDER_BUCKETS 4096

typedef struct sub_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    MQTTAsync client;
    char *const *filters;
    int n_filters, qos;
    int subscribed, sub_failed, conn_failed;
    const char *ready_file;
    int verbose, dump, global_order;
    int port, nodelay, done;
    /* counters */
    uint64_t recv, unique, dup, reorder, badsum, other;
    uint64_t t_first, t_last;
    src_track *srcs;
    size_t n_srcs, cap_srcs;
    order_key *order[ORDER_BUCKETS];
    int64_t *lat;
    size_t n_lat, cap_lat;
} sub_state;

static void cv_wait_ms(sub_state *st, int ms)
{
    toolconn_cond_wait_ms(&st->cv, &st->mu, ms);
}

static src_track *find_src(sub_state *st, uint32_t id)
{
    for (size_t i = 0; i < st->n_srcs; i++)
        if (st->srcs[i].id == id)
            return &st->srcs[i];
    if (st->n_srcs == st->cap_srcs) {
        size_t cap = st->cap_srcs ? st->cap_srcs * 2 : 8;
        src_track *s = realloc(st->srcs, cap * sizeof *s);
        if (!s)
            return NULL;
        st->srcs = s;
        st->cap_srcs = cap;
    }
    src_track *s = &st->srcs[st->n_srcs++];
    memset(s, 0, sizeof *s);
    s->id = id;
    return s;
}

/* Marks seq seen: 1 when it was new, 0 when a duplicate, -1 when out of memory. */
static int mark_seen(src_track *s, uint64_t seq)
{
    if (seq >= s->seen_bits) {
        uint64_t bits = s->seen_bits ? s->seen_bits : 1024;
        while (bits <= seq)
            bits *= 2;
        uint8_t *p = realloc(s->seen, (size_t)(bits / 8));
        if (!p)
            return -1;
        memset(p + s->seen_bits / 8, 0, (size_t)((bits - s->seen_bits) / 8));
        s->seen = p;
        s->seen_bits = bits;
    }
    uint8_t bit = (uint8_t)(1u << (seq % 8));
    if (s->seen[seq / 8] & bit)
        return 0;
    s->seen[seq / 8] |= bit;
    return 1;
}

/* Whether seq arrives after a higher one from the same source (and topic unless -g). */
static int is_reordered(sub_state *st, uint32_t src, const char *topic, uint64_t seq)
{
    const char *t = st->global_order ? "" : topic;
    uint32_t h = testlib_fnv1a(testlib_fnv1a(2166136261u, &src, 4), t, strlen(t));
    order_key **b = &st->order[h % ORDER_BUCKETS], *k;
    for (k = *b; k; k = k->next)
        if (k->src == src && strcmp(k->topic, t) == 0)
            break;
    if (!k) {
        size_t tl = strlen(t);
        k = malloc(sizeof *k + tl + 1);
        if (!k)
            return 0;
        k->src = src;
        k->max_seq = seq;
        memcpy(k->topic, t, tl + 1);
        k->next = *b;
        *b = k;
        return 0;
    }
    if (seq < k->max_seq)
        return 1;
    k->max_seq = seq;
    return 0;
}

static void count_message(sub_state *st, const char *topic, const void *payload, size_t len,
                          uint64_t now)
{
    testlib_hdr h;
    st->recv++;
    if (!st->t_first)
        st->t_first = now;
    st->t_last = now;
    if (testlib_parse(payload, len, &h) != 0 || h.seq >= MAX_SEQ) {
        st->other++;
        return;
    }
    if (!h.sumok) {
        st->badsum++;
        return;
    }
    src_track *s = find_src(st, h.src);
    int fresh = s ? mark_seen(s, h.seq) : -1;
    if (fresh < 0) {
        st->other++;
        return;
    }
    if (!fresh) {
        st->dup++;
        return;
    }
    st->unique++;
    s->unique++;
    if (s->unique == 1 || h.seq > s->max_seq)
        s->max_seq = h.seq;
    if (is_reordered(st, h.src, topic, h.seq))
        st->reorder++;
    if (h.t_ns) {
        if (st->n_lat == st->cap_lat) {
            size_t cap = st->cap_lat ? st->cap_lat * 2 : 4096;
            int64_t *p = realloc(st->lat, cap * sizeof *p);
            if (!p)
                return;
            st->lat = p;
            st->cap_lat = cap;
        }
        /* signed: the send time was read on another process's clock read (BASELINES 9) */
        int64_t d = (int64_t)now - (int64_t)h.t_ns;
        st->lat[st->n_lat++] = d < 0 ? 0 : d;
    }
}

static int msg_arrived(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
    sub_state *st = ctx;
    uint64_t now = testlib_now_ns();
    char tbuf[1024];
    const char *t = topic;
    if (tlen > 0) { /* not NUL-terminated when paho gives a length */
        size_t l = (size_t)tlen < sizeof tbuf - 1 ? (size_t)tlen : sizeof tbuf - 1;
        memcpy(tbuf, topic, l);
        tbuf[l] = 0;
        t = tbuf;
    }
    pthread_mutex_lock(&st->mu);
    if (st->done) { /* after the RESULT line: nothing more is counted or printed */
        pthread_mutex_unlock(&st->mu);
        MQTTAsync_freeMessage(&m);
        MQTTAsync_free(topic);
        return 1;
    }
    count_message(st, t, m->payload, (size_t)m->payloadlen, now);
    if (st->verbose)
        printf("%s\t%d\n", t, m->payloadlen);
    if (st->dump) {
        fputs(t, stdout);
        fputc('\t', stdout);
        const char *p = m->payload;
        for (int i = 0; i < m->payloadlen; i++) {
            if (p[i] == '\n')
                fputs("\\n", stdout);
            else
                fputc(p[i], stdout);
        }
        fputc('\n', stdout);
    }
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void write_ready(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "mfsub: cannot write %s: %s\n", tmp, strerror(errno));
        return;
    }
    fprintf(f, "ready %d\n", (int)getpid());
    fclose(f);
    /* rename: a test polling for the file never sees it half-written */
    if (rename(tmp, path) != 0)
        fprintf(stderr, "mfsub: rename to %s: %s\n", path, strerror(errno));
}

static void on_sub_ok(void *ctx, MQTTAsync_successData *r)
{
    sub_state *st = ctx;
    int failed = 0;
    if (r && st->n_filters == 1 && r->alt.qos == 0x80)
        failed = 1;
    if (r && st->n_filters > 1 && r->alt.qosList)
        for (int i = 0; i < st->n_filters; i++)
            if (r->alt.qosList[i] == 0x80)
                failed = 1;
    pthread_mutex_lock(&st->mu);
    if (failed) {
        st->sub_failed = 1;
        fprintf(stderr, "mfsub: subscription refused by the broker\n");
    } else {
        /* rewritten on every (re)subscribe: a test deletes it and waits for it again to know
         * that mfsub is back after a broker restart */
        st->subscribed = 1;
        if (st->ready_file)
            write_ready(st->ready_file);
    }
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static void on_sub_fail(void *ctx, MQTTAsync_failureData *r)
{
    sub_state *st = ctx;
    fprintf(stderr, "mfsub: subscribe failed rc=%d\n", r ? r->code : -1);
    toolconn_set_flag(&st->mu, &st->cv, &st->sub_failed);
}

/* Runs after every (re)connect, the first included: subscribe each time, because the broker
 * may have lost the session (clean session, or a restart without persistence). */
static void on_connected(void *ctx, char *cause)
{
    (void)cause;
    sub_state *st = ctx;
    /* paho's fresh socket runs with Nagle again (BASELINES pitfall 5) */
    st->nodelay += testlib_nodelay_peer_port(st->port);
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_sub_ok;
    ro.onFailure = on_sub_fail;
    ro.context = st;
    int qos[MAX_FILTERS];
    for (int i = 0; i < st->n_filters; i++)
        qos[i] = st->qos;
    int rc = MQTTAsync_subscribeMany(st->client, st->n_filters, st->filters, qos, &ro);
    if (rc != MQTTASYNC_SUCCESS)
        fprintf(stderr, "mfsub: subscribeMany rc=%d\n", rc);
}

static void on_conn_fail(void *ctx, MQTTAsync_failureData *r)
{
    sub_state *st = ctx;
    fprintf(stderr, "mfsub: connect failed rc=%d\n", r ? r->code : -1);
    toolconn_set_flag(&st->mu, &st->cv, &st->conn_failed);
}

static void conn_lost(void *ctx, char *cause)
{
    (void)ctx;
    fprintf(stderr, "mfsub: connection lost (%s), reconnecting\n", cause ? cause : "?");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void usage(void)
{
    fprintf(stderr, "usage: mfsub [-H host] [-p port] [-c client_id] [-t filter]... [-q qos]\n"
                    "             [-P (persistent session)] [-R ready_file] [-n N]\n"
                    "             [-I idle_secs=5] [-T total_secs] [-g] [-v] [-D]\n"
                    "             [-u user:password]\n");
}

int main(int argc, char **argv)
{
    const char *filters[MAX_FILTERS];
    toolconn tc = TOOLCONN_INIT("mfsub", filters);
    int persistent = 0, opt;
    long want = -1;
    double idle_secs = 5, total_secs = 0;
    sub_state st = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    while ((opt = getopt(argc, argv, "H:p:c:t:q:PR:n:I:T:gvDu:h")) != -1) {
        switch (opt) {
        case 'P':
            persistent = 1;
            break;
        case 'R':
            st.ready_file = optarg;
            break;
        case 'n':
            want = atol(optarg);
            break;
        case 'I':
            idle_secs = atof(optarg);
            break;
        case 'T':
            total_secs = atof(optarg);
            break;
        case 'g':
            st.global_order = 1;
            break;
        case 'v':
            st.verbose = 1;
            break;
        case 'D':
            st.dump = 1;
            break;
        default:
            if (toolconn_opt(&tc, opt, optarg) > 0)
                break;
            usage();
            return 2;
        }
    }
    int n_filters = (int)tc.n_topics, qos = tc.qos;
    if (n_filters == 0 || qos < 0 || qos > 2) {
        usage();
        return 2;
    }
    if (persistent && !tc.cid) {
        fprintf(stderr, "mfsub: -P needs a fixed client id (-c)\n");
        return 2;
    }
    toolconn_finish(&tc);
    st.filters = (char *const *)filters;
    st.n_filters = n_filters;
    st.qos = qos;
    st.port = tc.port;

    if (toolconn_create(&tc, &st.client) < 0)
        return 1;
    MQTTAsync_setCallbacks(st.client, &st, conn_lost, msg_arrived, NULL);
    MQTTAsync_setConnected(st.client, &st, on_connected);

    MQTTAsync_connectOptions co = toolconn_options(&tc);
    co.keepAliveInterval = 30;
    co.cleansession = !persistent;
    co.automaticReconnect = 1;
    co.minRetryInterval = 1;
    co.maxRetryInterval = 2;
    co.onFailure = on_conn_fail;
    co.context = &st;
    int rc = MQTTAsync_connect(st.client, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "mfsub: MQTTAsync_connect rc=%d\n", rc);
        MQTTAsync_destroy(&st.client);
        return 1;
    }

    uint64_t t0 = testlib_now_ns();
    pthread_mutex_lock(&st.mu);
    while (!st.subscribed && !st.sub_failed && !st.conn_failed &&
           testlib_now_ns() - t0 < 10000000000ull)
        cv_wait_ms(&st, 50);
    int ok_start = st.subscribed;
    pthread_mutex_unlock(&st.mu);
    if (!ok_start) {
        fprintf(stderr, "mfsub: not subscribed on %s\n", tc.uri);
        printf("RESULT recv=0 unique=0 lost=%ld dup=0 reorder=0 badsum=0 other=0 p50_us=0 "
               "p99_us=0 max_us=0 rate=0\n",
               want > 0 ? want : 0);
        MQTTAsync_destroy(&st.client);
        return 1;
    }

    uint64_t t_sub = testlib_now_ns();
    uint64_t idle_ns = (uint64_t)(idle_secs * 1e9);
    pthread_mutex_lock(&st.mu);
    for (;;) {
        uint64_t now = testlib_now_ns();
        if (want >= 0 && st.unique + st.other >= (uint64_t)want)
            break;
        uint64_t last = st.t_last > t_sub ? st.t_last : t_sub;
        if (idle_secs > 0 && now - last >= idle_ns)
            break;
        if (total_secs > 0 && now - t0 >= (uint64_t)(total_secs * 1e9))
            break;
        cv_wait_ms(&st, 50);
    }
    /* snapshot under the lock; the disconnect below stops further deliveries */
    uint64_t lost_gaps = 0;
    for (size_t i = 0; i < st.n_srcs; i++)
        lost_gaps += st.srcs[i].max_seq + 1 - st.srcs[i].unique;
    uint64_t lost = lost_gaps;
    uint64_t distinct = st.unique + st.other;
    if (want > 0 && distinct < (uint64_t)want && (uint64_t)want - distinct > lost)
        lost = (uint64_t)want - distinct;
    int64_t p50 = 0, p99 = 0, pmax = 0;
    if (st.n_lat) {
        qsort(st.lat, st.n_lat, sizeof *st.lat, cmp_i64);
        p50 = st.lat[st.n_lat / 2];
        p99 = st.lat[(size_t)((double)(st.n_lat - 1) * 0.99)];
        pmax = st.lat[st.n_lat - 1];
    }
    double secs = st.t_last > st.t_first ? (double)(st.t_last - st.t_first) / 1e9 : 0;
    int got = want < 0 || distinct >= (uint64_t)want;
    fflush(stdout);
    printf("RESULT recv=%" PRIu64 " unique=%" PRIu64 " lost=%" PRIu64 " dup=%" PRIu64
           " reorder=%" PRIu64 " badsum=%" PRIu64 " other=%" PRIu64 " p50_us=%" PRId64
           " p99_us=%" PRId64 " max_us=%" PRId64 " rate=%.0f sources=%zu nodelay=%d\n",
           st.recv, st.unique, lost, st.dup, st.reorder, st.badsum, st.other, p50 / 1000,
           p99 / 1000, pmax / 1000, secs > 0 ? (double)st.unique / secs : 0.0, st.n_srcs,
           st.nodelay);
    fflush(stdout);
    st.done = 1;
    pthread_mutex_unlock(&st.mu);

    MQTTAsync_disconnectOptions dopt = MQTTAsync_disconnectOptions_initializer;
    dopt.timeout = 1000;
    MQTTAsync_disconnect(st.client, &dopt);
    MQTTAsync_destroy(&st.client);

    for (size_t i = 0; i < st.n_srcs; i++)
        free(st.srcs[i].seen);
    free(st.srcs);
    for (size_t b = 0; b < ORDER_BUCKETS; b++)
        for (order_key *k = st.order[b], *nx; k; k = nx) {
            nx = k->next;
            free(k);
        }
    free(st.lat);
    return got ? 0 : 1;
}
