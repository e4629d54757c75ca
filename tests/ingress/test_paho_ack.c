/* paho_ack: when does the paho.mqtt.c we link (MQTTAsync) send the QoS 1 PUBACK of a received
 * message? The ingress relies on the answer (subscriber.h "Messages"): the PUBACK must leave
 * only after messageArrived returned, i.e. after the message is in the ring or the spool.
 *
 * A real mosquitto logs every packet ("Received PUBACK from <id>"); the message function looks
 * at that log while it still runs. Also shows what returning 0 does: the message stays in
 * paho's memory and the PUBACK is sent all the same (why the ingress never returns 0).
 */
#include <MQTTAsync.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "clock.h"

#define CLIENT_ID "mf-acktest"
#define ACK_LINE  "Received PUBACK from " CLIENT_ID

typedef struct ack_fixture {
    char dir[64], log[128];
    int port;
    pid_t broker;
    MQTTAsync h;
    volatile int subscribed, calls;
    volatile int acked_during_call; /* the broker had the PUBACK during the first call */
    int return_value;               /* what the message function returns */
} ack_fixture;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int log_has(const ack_fixture *f, const char *text)
{
    char buf[65536];
    FILE *in = fopen(f->log, "r");
    size_t n = in ? fread(buf, 1, sizeof(buf) - 1, in) : 0;
    if (in)
        fclose(in);
    buf[n] = 0;
    return strstr(buf, text) != NULL;
}

static int count_in_log(const ack_fixture *f, const char *text)
{
    char buf[65536];
    FILE *in = fopen(f->log, "r");
    size_t n = in ? fread(buf, 1, sizeof(buf) - 1, in) : 0;
    if (in)
        fclose(in);
    buf[n] = 0;
    int c = 0;
    for (const char *p = buf; (p = strstr(p, text)) != NULL; p += strlen(text))
        c++;
    return c;
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &l) < 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}

/* Waits up to ms for the broker's log to contain text. */
static int wait_log(const ack_fixture *f, const char *text, int ms)
{
    uint64_t end = clock_mono_ns() + (uint64_t)ms * 1000000ull;
    while (!log_has(f, text)) {
        if (clock_mono_ns() > end)
            return -1;
        sleep_ms(20);
    }
    return 0;
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
    ack_fixture *f = ctx;
    (void)topic_len;
    /* stay inside the function long enough for a PUBACK sent before the call to reach the
     * broker and its log (loopback: well under a millisecond; we give it 700 ms) */
    uint64_t end = clock_mono_ns() + 700000000ull;
    while (f->calls == 0 && clock_mono_ns() < end && !f->acked_during_call) {
        if (log_has(f, ACK_LINE))
            f->acked_during_call = 1;
        sleep_ms(20);
    }
    f->calls++;
    if (f->return_value) {
        MQTTAsync_freeMessage(&m);
        MQTTAsync_free(topic);
    }
    return f->return_value;
}

static void on_subscribed(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    ((ack_fixture *)ctx)->subscribed = 1;
}

static void on_connected(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    ack_fixture *f = ctx;
    MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
    o.onSuccess = on_subscribed;
    o.context = f;
    MQTTAsync_subscribe(f->h, "x", 1, &o);
}

static int setup(void **state)
{
    ack_fixture *f = calloc(1, sizeof(*f));
    char conf[128];
    *state = f;
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/mf-test-pahoack.XXXXXX");
    if (!mkdtemp(f->dir) || (f->port = free_port()) <= 0)
        return -1;
    snprintf(conf, sizeof(conf), "%s/mosquitto.conf", f->dir);
    snprintf(f->log, sizeof(f->log), "%s/mosquitto.log", f->dir);
    FILE *c = fopen(conf, "w");
    if (!c)
        return -1;
    fprintf(c,
            "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
            "set_tcp_nodelay true\npersistence false\nlog_type all\nlog_dest file %s\n%s",
            f->port, f->log, geteuid() == 0 ? "user root\n" : "");
    fclose(c);
    f->broker = fork();
    if (f->broker == 0) {
        int nul = open("/dev/null", O_WRONLY);
        if (nul >= 0) {
            dup2(nul, 1);
            dup2(nul, 2);
        }
        execl("/usr/sbin/mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    if (wait_log(f, "mosquitto version", 10000) < 0)
        return -1;
    char uri[64];
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", f->port);
    if (MQTTAsync_create(&f->h, uri, CLIENT_ID, MQTTCLIENT_PERSISTENCE_NONE, NULL) != 0 ||
        MQTTAsync_setCallbacks(f->h, f, NULL, on_message, NULL) != 0)
        return -1;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    co.cleansession = 1;
    co.keepAliveInterval = 20;
    co.onSuccess = on_connected;
    co.context = f;
    if (MQTTAsync_connect(f->h, &co) != 0)
        return -1;
    uint64_t end = clock_mono_ns() + 10000000000ull;
    while (!f->subscribed && clock_mono_ns() < end)
        sleep_ms(10);
    return f->subscribed ? 0 : -1;
}

static int teardown(void **state)
{
    ack_fixture *f = *state;
    if (!f)
        return 0;
    if (f->h) {
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        d.timeout = 500;
        MQTTAsync_disconnect(f->h, &d);
        sleep_ms(100); /* let paho's threads finish the disconnect before the handle goes */
        MQTTAsync_destroy(&f->h);
    }
    if (f->broker > 0) {
        kill(f->broker, SIGTERM);
        waitpid(f->broker, NULL, 0);
    }
    if (f->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", f->dir);
    }
    free(f);
    return 0;
}

static void publish_one(const ack_fixture *f)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "mosquitto_pub -p %d -t x -q 1 -m hello", f->port);
    assert_int_equal(system(cmd), 0);
}

static void test_paho_ack_puback_follows_message_function(void **state)
{
    ack_fixture *f = *state;
    f->return_value = 1;
    publish_one(f);
    assert_int_equal(wait_log(f, ACK_LINE, 10000), 0);
    assert_int_equal(f->calls, 1);
    /* the broker got nothing while the function ran: a PUBACK means "the function returned",
     * which for the ingress means "in the ring or durable in the spool" */
    assert_false(f->acked_during_call);
}

static void test_paho_ack_returning_zero_still_acknowledges(void **state)
{
    ack_fixture *f = *state;
    f->return_value = 0; /* "not accepted": paho keeps the message in its memory queue */
    publish_one(f);
    assert_int_equal(wait_log(f, ACK_LINE, 10000), 0);
    assert_false(f->acked_during_call);
    /* acknowledged although the application refused it: a crash now loses it. Returning 0 is
     * no way to hold a message back; the ingress always returns 1 after storing it. */
    assert_int_equal(count_in_log(f, ACK_LINE), 1);
    assert_true(f->calls >= 1);
    f->return_value = 1; /* let paho's redelivery (if any) succeed before teardown */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_paho_ack_puback_follows_message_function, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_paho_ack_returning_zero_still_acknowledges, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
