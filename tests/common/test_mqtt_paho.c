/* common/mqtt_paho: the callbacks of the client's protocol version on a request, and paho's
 * failure data read into one value (issue 8 "Clearer errors"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "mqtt_paho.h"

static void cb_ok(void *c, MQTTAsync_successData *d)
{
    (void)c;
    (void)d;
}
static void cb_fail(void *c, MQTTAsync_failureData *d)
{
    (void)c;
    (void)d;
}
static void cb_ok5(void *c, MQTTAsync_successData5 *d)
{
    (void)c;
    (void)d;
}
static void cb_fail5(void *c, MQTTAsync_failureData5 *d)
{
    (void)c;
    (void)d;
}

static void test_mqtt_paho_sets_the_version_pair(void **state)
{
    (void)state;
    static const mqtt_paho_cbs cbs = {cb_ok, cb_fail, cb_ok5, cb_fail5};
    int ctx;
    MQTTAsync_responseOptions r = MQTTAsync_responseOptions_initializer;
    mqtt_paho_response(&r, false, &cbs, &ctx);
    assert_ptr_equal(r.onSuccess, cb_ok);
    assert_ptr_equal(r.onFailure, cb_fail);
    assert_null(r.onSuccess5);
    assert_ptr_equal(r.context, &ctx);
    MQTTAsync_connectOptions c = MQTTAsync_connectOptions_initializer5;
    mqtt_paho_connect(&c, true, &cbs, &ctx);
    assert_ptr_equal(c.onSuccess5, cb_ok5);
    assert_ptr_equal(c.onFailure5, cb_fail5);
    assert_null(c.onSuccess);
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
    mqtt_paho_disconnect(&d, true, &cbs, &ctx);
    assert_ptr_equal(d.onFailure5, cb_fail5);
    assert_ptr_equal(d.context, &ctx);
}

static void test_mqtt_paho_failure_keeps_code_reason_message(void **state)
{
    (void)state;
    char buf[192];
    mqtt_why_fail f;
    /* MQTT 5 refusal as paho 1.3 reports it: the reason code in code, reasonCode 0 */
    MQTTAsync_failureData5 d5 = MQTTAsync_failureData5_initializer;
    d5.code = 0x87;
    d5.message = "CONNACK return code";
    mqtt_paho_failure5(&f, &d5);
    assert_int_equal(f.reason, 0x87);
    assert_non_null(strstr(mqtt_paho_why_connect(&f), "not authorized"));
    assert_string_equal(mqtt_paho_detail(&f, buf, sizeof(buf)),
                        "paho rc 135, reason 0x87: CONNACK return code");
    /* a refused TCP connect: paho's message survives, no reason */
    MQTTAsync_failureData d = {.code = MQTTASYNC_FAILURE, .message = "TCP/TLS connect failure"};
    mqtt_paho_failure(&f, &d);
    assert_int_equal(f.reason, 0);
    assert_non_null(strstr(mqtt_paho_why_connect(&f), "could not be reached"));
    assert_string_equal(mqtt_paho_detail(&f, buf, sizeof(buf)),
                        "paho rc -1: TCP/TLS connect failure");
    /* 3.1.1 CONNACK code 4; no data at all */
    d = (MQTTAsync_failureData){.code = 4};
    mqtt_paho_failure(&f, &d);
    assert_non_null(strstr(mqtt_paho_why_connect(&f), "bad user name or password"));
    mqtt_paho_failure5(&f, NULL);
    assert_int_equal(f.code, MQTTASYNC_FAILURE);
    assert_string_equal(mqtt_paho_detail(&f, buf, sizeof(buf)), "paho rc -1");
    /* a long message is cut, never overrun */
    char longm[400];
    memset(longm, 'x', sizeof(longm) - 1);
    longm[sizeof(longm) - 1] = '\0';
    d = (MQTTAsync_failureData){.code = -1, .message = longm};
    mqtt_paho_failure(&f, &d);
    assert_int_equal(strlen(f.message), sizeof(f.message) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mqtt_paho_sets_the_version_pair),
        cmocka_unit_test(test_mqtt_paho_failure_keeps_code_reason_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
