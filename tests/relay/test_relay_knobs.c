/* test_relay_knobs: the relay honours runtime.relay.outstanding and runtime.relay.drain_batch.
 *
 * The observable is the broker's side of the wire: instead of mosquitto, the test listens on
 * the fixture's port with a minimal MQTT broker of its own (CONNACK, PUBACK, PINGRESP) that
 * holds back every PUBACK until the relay has sent nothing for QUIET_MS, then acknowledges all
 * it holds. So it sees a burst of as many QoS 1 publishes as the relay lets be outstanding,
 * and counts the most it ever held unacknowledged. A relay that ignored the key would show
 * more than the bound (a higher bound is shown to be reached, so the count can fail). The
 * quiet period only paces the test: no assertion depends on how long anything takes.
 */
#include "relay_fixture.h"

#define N_MSGS    24
#define QUIET_MS  100
#define MAX_PEERS 4

typedef struct fake_broker {
    int lfd, stop[2];
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t received, max_unacked; /* under mu */
} fake_broker;

static fake_broker fb = {.lfd = -1, .stop = {-1, -1}};

typedef struct peer {
    int fd, v5;
    unsigned char buf[4096];
    size_t len;
    uint16_t held[1024]; /* packet ids of publishes not yet acknowledged */
    size_t n_held;
} peer;

/* One complete packet at the front of p->buf: its total length, 0 when incomplete. */
static size_t packet_len(const peer *p, size_t *body)
{
    size_t rl = 0, i = 1;
    for (int shift = 0; i < p->len && i < 5; i++, shift += 7) {
        rl |= (size_t)(p->buf[i] & 0x7f) << shift;
        if (!(p->buf[i] & 0x80)) {
            *body = i + 1;
            return i + 1 + rl <= p->len ? i + 1 + rl : 0;
        }
    }
    return 0;
}

static size_t total_held(peer *ps, size_t n)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += ps[i].n_held;
    return t;
}

/* Answers one packet; -1 closes the peer. */
static int handle(peer *p, peer *ps, size_t n_ps, const unsigned char *pk, size_t body, size_t len)
{
    unsigned type = pk[0] >> 4;
    if (type == 1) { /* CONNECT: protocol level after the 6-byte name */
        p->v5 = len > body + 6 && pk[body + 6] == 5;
        static const unsigned char ack4[] = {0x20, 2, 0, 0}, ack5[] = {0x20, 3, 0, 0, 0};
        return p->v5 ? (int)write(p->fd, ack5, sizeof(ack5)) - 5
                     : (int)write(p->fd, ack4, sizeof(ack4)) - 4;
    }
    if (type == 3) {
        unsigned qos = (pk[0] >> 1) & 3;
        size_t tl = (size_t)pk[body] << 8 | pk[body + 1];
        pthread_mutex_lock(&fb.mu);
        fb.received++;
        if (qos == 1 && p->n_held < sizeof(p->held) / sizeof(p->held[0])) {
            size_t at = body + 2 + tl;
            p->held[p->n_held++] = (uint16_t)(pk[at] << 8 | pk[at + 1]);
            size_t t = total_held(ps, n_ps);
            if (t > fb.max_unacked)
                fb.max_unacked = t;
        }
        pthread_cond_broadcast(&fb.cv);
        pthread_mutex_unlock(&fb.mu);
        return 0;
    }
    if (type == 12) {
        static const unsigned char pong[] = {0xd0, 0};
        return (int)write(p->fd, pong, 2) - 2;
    }
    return type == 14 ? -1 : 0;
}

static void *fake_run(void *arg)
{
    (void)arg;
    peer ps[MAX_PEERS];
    size_t n = 0;
    for (;;) {
        struct pollfd pf[MAX_PEERS + 2] = {{fb.stop[0], POLLIN, 0}, {fb.lfd, POLLIN, 0}};
        for (size_t i = 0; i < n; i++)
            pf[2 + i] = (struct pollfd){ps[i].fd, POLLIN, 0};
        int r = poll(pf, 2 + n, QUIET_MS);
        if (r < 0 || pf[0].revents)
            break;
        if (r == 0) { /* quiet: acknowledge everything held */
            pthread_mutex_lock(&fb.mu);
            for (size_t i = 0; i < n; i++) {
                for (size_t k = 0; k < ps[i].n_held; k++) {
                    unsigned char ack[] = {0x40, 2, (unsigned char)(ps[i].held[k] >> 8),
                                           (unsigned char)ps[i].held[k]};
                    if (write(ps[i].fd, ack, sizeof(ack)) != (ssize_t)sizeof(ack))
                        break;
                }
                ps[i].n_held = 0;
            }
            pthread_mutex_unlock(&fb.mu);
            continue;
        }
        if ((pf[1].revents & POLLIN) && n < MAX_PEERS) {
            int fd = accept(fb.lfd, NULL, NULL);
            if (fd >= 0)
                ps[n++] = (peer){.fd = fd};
        }
        for (size_t i = 0; i < n; i++) {
            if (!pf[2 + i].revents)
                continue;
            peer *p = &ps[i];
            ssize_t rd = read(p->fd, p->buf + p->len, sizeof(p->buf) - p->len);
            int bad = rd <= 0;
            if (!bad)
                p->len += (size_t)rd;
            size_t body, len;
            while (!bad && (len = packet_len(p, &body)) > 0) {
                bad = handle(p, ps, n, p->buf, body, len) < 0;
                memmove(p->buf, p->buf + len, p->len - len);
                p->len -= len;
            }
            if (bad || p->len == sizeof(p->buf)) {
                close(p->fd);
                ps[i] = ps[--n];
                break; /* pf no longer matches ps: poll again */
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        close(ps[i].fd);
    return NULL;
}

static int fake_start(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    fb.received = fb.max_unacked = 0;
    if ((fb.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        setsockopt(fb.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fb.lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fb.lfd, 8) < 0 ||
        pipe2(fb.stop, O_CLOEXEC) < 0)
        return -1;
    pthread_mutex_init(&fb.mu, NULL);
    pthread_cond_init(&fb.cv, NULL);
    return pthread_create(&fb.th, NULL, fake_run, NULL) ? -1 : 0;
}

static void fake_stop(void)
{
    if (fb.stop[1] >= 0) {
        if (write(fb.stop[1], "x", 1) == 1)
            pthread_join(fb.th, NULL);
        close(fb.stop[0]);
        close(fb.stop[1]);
        pthread_mutex_destroy(&fb.mu);
        pthread_cond_destroy(&fb.cv);
    }
    if (fb.lfd >= 0)
        close(fb.lfd);
    fb.lfd = fb.stop[0] = fb.stop[1] = -1;
}

/* Waits until the fake broker has received n publishes; returns the count then. */
static size_t fake_wait_received(size_t n, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    pthread_mutex_lock(&fb.mu);
    while (fb.received < n && pthread_cond_timedwait(&fb.cv, &fb.mu, &until) == 0)
        ;
    size_t seen = fb.received;
    pthread_mutex_unlock(&fb.mu);
    return seen;
}

static size_t fake_max_unacked(void)
{
    pthread_mutex_lock(&fb.mu);
    size_t m = fb.max_unacked;
    pthread_mutex_unlock(&fb.mu);
    return m;
}

static int teardown_knobs(void **state)
{
    fixture *f = *state;
    if (f)
        kill_wait(&f->relay); /* before the broker goes, so it does not reconnect in vain */
    fake_stop();
    return teardown(state);
}

static void push_n(fixture *f, size_t n)
{
    unsigned char pl[MAX_PAYLOAD];
    for (size_t i = 0; i < n; i++)
        push_rec(f, 0, 0, "t/knob", pl, make_payload(pl, 0, i), 1, 0);
    ring_flush(f->prod[0]);
}

/* Live traffic: the relay connected to the fake broker, then n records in a ring at once. */
static size_t max_outstanding_live(fixture *f, const char *relay_yaml)
{
    snprintf(f->extra_runtime, sizeof(f->extra_runtime), "  relay: %s\n", relay_yaml);
    assert_int_equal(write_yaml(f), 0);
    assert_int_equal(fake_start(f->port), 0);
    assert_int_equal(start_relay(f), 0);
    push_n(f, N_MSGS);
    assert_int_equal(fake_wait_received(N_MSGS, 30000), N_MSGS);
    return fake_max_unacked();
}

/* A spool drain: n records spooled while the port is closed, then the fake broker starts. */
static size_t max_outstanding_drain(fixture *f, const char *relay_yaml)
{
    snprintf(f->extra_runtime, sizeof(f->extra_runtime), "  relay: %s\n", relay_yaml);
    assert_int_equal(write_yaml(f), 0);
    assert_int_equal(start_relay(f), 0);
    push_n(f, N_MSGS);
    assert_int_equal(wait_spooled(f, N_MSGS, 20000), 0);
    assert_int_equal(fake_start(f->port), 0);
    assert_int_equal(fake_wait_received(N_MSGS, 30000), N_MSGS);
    return fake_max_unacked();
}

static void test_relay_outstanding_1_holds_one_publish_in_flight(void **state)
{
    assert_int_equal(max_outstanding_live(*state, "{outstanding: 1}"), 1);
}

static void test_relay_outstanding_8_is_reached_not_passed(void **state)
{
    size_t m = max_outstanding_live(*state, "{outstanding: 8}");
    assert_in_range(m, 2, 8);
}

static void test_relay_drain_batch_2_drains_two_at_a_time(void **state)
{
    size_t m = max_outstanding_drain(*state, "{drain_batch: 2}");
    assert_in_range(m, 1, 2);
}

static void test_relay_drain_batch_8_is_reached_not_passed(void **state)
{
    size_t m = max_outstanding_drain(*state, "{drain_batch: 8}");
    assert_in_range(m, 3, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_relay_outstanding_1_holds_one_publish_in_flight,
                                        setup_no_broker, teardown_knobs),
        cmocka_unit_test_setup_teardown(test_relay_outstanding_8_is_reached_not_passed,
                                        setup_no_broker, teardown_knobs),
        cmocka_unit_test_setup_teardown(test_relay_drain_batch_2_drains_two_at_a_time,
                                        setup_no_broker, teardown_knobs),
        cmocka_unit_test_setup_teardown(test_relay_drain_batch_8_is_reached_not_passed,
                                        setup_no_broker, teardown_knobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
