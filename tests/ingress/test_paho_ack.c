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

#include "../tools/testlib.h"
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

static int log_has(const ack_fixture *f, const char *text)
{
    return testlib_file_has(f->log, text);
}

static int count_in_log(const ack_fixture *f, const char *text)
{
    char *buf = testlib_slurp(f->log);
    int c = 0;
    for (const char *p = buf; p && (p = strstr(p, text)) != NULL; p += strlen(text))
        c++;
    free(buf);
    return c;
}

/* Waits up to ms for the broker's log to contain text. */
static int wait_log(const ack_fixture *f, const char *text, int ms)
{
    return testlib_wait_file_has(f->log, text, ms);
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
        testlib_sleep_ms(20);
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
    *state = f;
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/mf-test-pahoack.XXXXXX");
    if (!mkdtemp(f->dir) || (f->port = testlib_free_port()) <= 0)
        return -1;
    /* every packet in a log of its own (the broker's output goes to mosquitto.log) */
    char extra[256];
    snprintf(f->log, sizeof(f->log), "%s/packets.log", f->dir);
    snprintf(extra, sizeof(extra), "log_type all\nlog_dest file %s\n", f->log);
    if (testlib_broker_start(f->dir, "mosquitto", f->port, NULL, extra, &f->broker) < 0 ||
        wait_log(f, "mosquitto version", 10000) < 0)
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
        testlib_sleep_ms(10);
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
        testlib_sleep_ms(100); /* let paho's threads finish the disconnect before the handle goes */
        MQTTAsync_destroy(&f->h);
    }
    if (f->broker > 0) {
        kill(f->broker, SIGTERM);
        waitpid(f->broker, NULL, 0);
    }
    testlib_remove_dir(f->dir);
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
