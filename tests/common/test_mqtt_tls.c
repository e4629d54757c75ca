/* mqtt_tls: cfg_client.tls -> MQTTAsync_SSLOptions, observed through mqtt_tls_apply. The
 * handshake itself runs against a real TLS mosquitto in tests/integration/37-tls.sh. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqtt_tls.h"

static cfg_client tls_client(char *alpn, bool verify)
{
    cfg_client cl = {0};
    cl.client_id = "c1";
    cl.scheme = CFG_MQTTS;
    cl.tls.enabled = true;
    cl.tls.ca = "/etc/ca.pem";
    cl.tls.cert = "/etc/client.pem";
    cl.tls.key = "/etc/client.key";
    cl.tls.alpn = alpn;
    cl.tls.verify = verify;
    return cl;
}

static void test_mqtt_tls_disabled_leaves_options_alone(void **state)
{
    (void)state;
    cfg_client cl = {0};
    cl.client_id = "plain";
    mqtt_tls *t = NULL;
    assert_int_equal(mqtt_tls_create(&cl, "test", &t), 0);
    assert_non_null(t);
    assert_false(mqtt_tls_is_enabled(t));
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    mqtt_tls_apply(t, &o);
    assert_null(o.ssl);
    mqtt_tls_destroy(t);
}

static void test_mqtt_tls_fills_files_and_verify(void **state)
{
    (void)state;
    cfg_client cl = tls_client(NULL, true);
    mqtt_tls *t = NULL;
    assert_int_equal(mqtt_tls_create(&cl, "test", &t), 0);
    assert_true(mqtt_tls_is_enabled(t));
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer5;
    mqtt_tls_apply(t, &o);
    assert_non_null(o.ssl);
    assert_memory_equal(o.ssl->struct_id, "MQTS", 4);
    assert_true(o.ssl->struct_version >= 5);
    assert_string_equal(o.ssl->trustStore, "/etc/ca.pem");
    assert_string_equal(o.ssl->keyStore, "/etc/client.pem");
    assert_string_equal(o.ssl->privateKey, "/etc/client.key");
    assert_int_equal(o.ssl->enableServerCertAuth, 1);
    assert_int_equal(o.ssl->verify, 1);
    assert_int_equal(o.ssl->sslVersion, MQTT_SSL_VERSION_DEFAULT);
    assert_null(o.ssl->protos);
    assert_int_equal(o.ssl->protos_len, 0);
    assert_non_null(o.ssl->ssl_error_cb);
    /* the options live in the mqtt_tls, not in the caller's frame: a second apply points at
     * the same storage */
    MQTTAsync_connectOptions o2 = MQTTAsync_connectOptions_initializer;
    mqtt_tls_apply(t, &o2);
    assert_ptr_equal(o.ssl, o2.ssl);
    mqtt_tls_destroy(t);
}

static void test_mqtt_tls_verify_false_turns_both_checks_off(void **state)
{
    (void)state;
    cfg_client cl = tls_client(NULL, false);
    mqtt_tls *t = NULL;
    assert_int_equal(mqtt_tls_create(&cl, "test", &t), 0);
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    mqtt_tls_apply(t, &o);
    assert_int_equal(o.ssl->enableServerCertAuth, 0);
    assert_int_equal(o.ssl->verify, 0);
    mqtt_tls_destroy(t);
}

static void test_mqtt_tls_alpn_wire_format(void **state)
{
    (void)state;
    cfg_client cl = tls_client("mqtt", true);
    mqtt_tls *t = NULL;
    assert_int_equal(mqtt_tls_create(&cl, "test", &t), 0);
    MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
    mqtt_tls_apply(t, &o);
    assert_int_equal(o.ssl->protos_len, 5);
    assert_memory_equal(o.ssl->protos, "\4mqtt", 5);
    mqtt_tls_destroy(t);

    cl = tls_client("x-amzn-mqtt-ca,mqtt", true);
    assert_int_equal(mqtt_tls_create(&cl, "test", &t), 0);
    mqtt_tls_apply(t, &o);
    assert_int_equal(o.ssl->protos_len, 20);
    assert_memory_equal(o.ssl->protos, "\16x-amzn-mqtt-ca\4mqtt", 20);
    mqtt_tls_destroy(t);
}

static void test_mqtt_tls_alpn_malformed_refused(void **state)
{
    (void)state;
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = 0;
    char *bad[] = {",mqtt", "mqtt,", "a,,b", long_name};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cfg_client cl = tls_client(bad[i], true);
        mqtt_tls *t = (mqtt_tls *)&cl; /* must be reset to NULL on failure */
        assert_int_equal(mqtt_tls_create(&cl, "test", &t), -EINVAL);
        assert_null(t);
    }
    mqtt_tls_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mqtt_tls_disabled_leaves_options_alone),
        cmocka_unit_test(test_mqtt_tls_fills_files_and_verify),
        cmocka_unit_test(test_mqtt_tls_verify_false_turns_both_checks_off),
        cmocka_unit_test(test_mqtt_tls_alpn_wire_format),
        cmocka_unit_test(test_mqtt_tls_alpn_malformed_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
