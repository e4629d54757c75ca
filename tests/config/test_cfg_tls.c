/* cfg: the tls: section of a client: TLS turned on by a scheme or the section, the ssl:// URI
 * paho needs, a warning for a private key others can read, and malformed ALPN lists refused. */
#include "cfg_test.h"

static const char *const TLS_YAML = "mqtt_clients:\n"
                                    "  - client_id: c1\n"
                                    "    broker_url: mqtts://h\n"
                                    "    tls: {ca: ca.pem, cert: c.pem, key: c.key, alpn: mqtt}\n";

/* TLS_YAML loaded, next to its CA, certificate and a key file of mode key_mode. */
static cfg *load_tls_yaml(mode_t key_mode, cfg_diag *d)
{
    write_file("ca.pem", "x", 0644);
    write_file("c.pem", "x", 0644);
    write_file("c.key", "x", key_mode);
    return load_ok(TLS_YAML, d);
}

static void test_cfg_tls_scheme_and_uri(void **state)
{
    (void)state;
    cfg_diag d = {0};
    cfg *c = load_tls_yaml(0600, &d);
    assert_int_equal(d.n_warnings, 0);
    const cfg_client *cl = &c->clients[0];
    assert_true(cl->tls.enabled);
    assert_true(cl->tls.verify);
    assert_string_equal(cl->uri, "ssl://h:8883");
    assert_string_equal(cl->tls.alpn, "mqtt");
    assert_non_null(strstr(cl->tls.key, "/c.key"));
    cfg_destroy(c);
    cfg_diag_fini(&d);
    /* ssl:// with a port, no tls: section: TLS with the defaults */
    c = load_ok("mqtt_clients:\n  - {client_id: c1, broker_url: \"ssl://h:9000\"}\n", &d);
    assert_true(c->clients[0].tls.enabled);
    assert_string_equal(c->clients[0].uri, "ssl://h:9000");
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

static void test_cfg_tls_key_readable_by_others_warned(void **state)
{
    (void)state;
    cfg_diag d = {0};
    cfg *c = load_tls_yaml(0644, &d);
    assert_int_equal(d.n_warnings, 1);
    assert_non_null(strstr(d.warnings[0], "mqtt_clients[0].tls.key: private key "));
    assert_non_null(strstr(d.warnings[0], "c.key is readable by others (chmod 600 it)"));
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

static void test_cfg_tls_alpn_malformed_refused(void **state)
{
    (void)state;
    expect_error(
        "mqtt_clients:\n  - {client_id: c1, broker_url: mqtts://h, tls: {alpn: \"a,,b\"}}\n",
        "config.yaml:2:56: mqtt_clients[0].tls.alpn: expected protocol names of 1 to 255 "
        "bytes separated by commas (at most 1024 bytes in all), got \"a,,b\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cfg_tls_scheme_and_uri, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cfg_tls_key_readable_by_others_warned, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cfg_tls_alpn_malformed_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
