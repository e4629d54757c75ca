/* Tests of the configuration loader: every section and its defaults, the example and reference
 * configs, hostile inputs, module checks, topic rules. Bad configs are in test_cfg_errors.c. */
#include "cfg_test.h"
#include "tests/tools/testlib.h"

#include <sys/wait.h>

static const char full_yaml[] =
    "mqtt_clients:\n"
    "  - client_id: \"client1\"\n"
    "    broker_url: \"mqtt://127.0.0.1\"\n"
    "    port: 1883\n"
    "    username: alice\n"
    "    password_env: TEST_CFG_PASSWORD\n"
    "    keepalive: 30\n"
    "    clean_session: false\n"
    "    mqtt_version: 5\n"
    "    shared_group: g1\n"
    "    will: {topic: status/c1, payload: gone, qos: 1, retain: true}\n"
    "    reconnect: {min_delay: 0.5, max_delay: 10}\n"
    "    topics:\n"
    "      - name: \"sensors/+/temperature\"\n"
    "        qos: 1\n"
    "      - sensors/#\n"
    "  - client_id: client2\n"
    "    broker_url: mqtts://broker.example:9999/\n"
    "    password_file: secret.txt\n"
    "    mqtt_version: \"3.1.1\"\n"
    "    tls: {ca: ca.pem, verify: false, alpn: mqtt}\n"
    "  - client_id: client3\n"
    "    broker_url: ws://[::1]:8080/mqtt\n"
    "callbacks:\n"
    "  alert:\n"
    "    module: cb/a.so\n"
    "    function: alert_if_high\n"
    "  sample: {module: ./cb/b.so, function: on_window}\n"
    "rules:\n"
    "  - rule: r1\n"
    "    source_client_id: client1\n"
    "    topic: sensors/+/temperature\n"
    "    regex: '^sensors/(kitchen|hall)/'\n"
    "    condition: payload.temp > 30 && topic[1] == \"kitchen\"\n"
    "    callback: alert\n"
    "    execution_mode: per_topic\n"
    "    on_error: dead_letter\n"
    "  - rule: r2\n"
    "    action: chain1\n"
    "processing_chains:\n"
    "  chain1:\n"
    "    - step: sampler\n"
    "      config: {duration: 500ms, callback: sample, window_label: hot, limit: 3}\n"
    "    - step: format\n"
    "      config: {topic_prefix: out/, topic_suffix: /x, payload_template: '{\"v\": 1}'}\n"
    "    - step: filter\n"
    "      config: {condition: payload.v == 1}\n"
    "    - step: batch\n"
    "      config: {count: 10}\n"
    "    - step: throttle\n"
    "      config: {rate: 2.5}\n"
    "    - step: on_change\n"
    "      config: {field: temp}\n"
    "    - step: aggregate\n"
    "      config: {field: a.b, fn: max, interval: 1m}\n"
    "    - step: relay\n"
    "      config: {target_client_id: client2, target_topic: processed/t, qos: 1, retain: no}\n"
    "runtime:\n"
    "  instance: plant-7\n"
    "  workers: 4\n"
    "  cpus: {ingress: 0, router: 1, relay: 1, supervisor: 0, workers: [0, 1]}\n"
    "  ring_size: 64KiB\n"
    "  max_payload: 1024\n"
    "  max_attempts: 5\n"
    "  callback_timeout_ms: 250\n"
    "  overflow: drop\n"
    "  spool_dir: spool\n"
    "  dead_letter: {dir: /var/dead, topic: dead/letters, client_id: client2}\n"
    "  control_socket: /run/mf.sock\n"
    "  stats_interval: 10\n"
    "  spool_max_bytes: 10MB\n"
    "  mqtt_io: paho\n"
    "logging:\n"
    "  default_level: DEBUG\n"
    "  router: WARNING\n"
    "  levels: {relay: ERROR}\n";

static void test_cfg_full_config_values(void **state)
{
    (void)state;
    setenv("TEST_CFG_PASSWORD", "s3cret", 1);
    write_file("secret.txt", "filepw\n", 0600);
    write_file("ca.pem", "x", 0644);
    cfg_diag d = {0};
    cfg *c = load_ok(full_yaml, &d);
    assert_int_equal(d.n_warnings, 0);

    assert_int_equal(c->n_clients, 3);
    const cfg_client *c1 = &c->clients[0], *c2 = &c->clients[1], *c3 = &c->clients[2];
    assert_string_equal(c1->client_id, "client1");
    assert_string_equal(c1->host, "127.0.0.1");
    assert_int_equal(c1->port, 1883);
    assert_string_equal(c1->uri, "tcp://127.0.0.1:1883");
    assert_string_equal(c1->username, "alice");
    assert_string_equal(c1->password, "s3cret");
    assert_int_equal(c1->keepalive, 30);
    assert_false(c1->clean_session);
    assert_int_equal(c1->mqtt_version, 5);
    assert_string_equal(c1->shared_group, "g1");
    assert_true(c1->will.enabled);
    assert_string_equal(c1->will.topic, "status/c1");
    assert_string_equal(c1->will.payload, "gone");
    assert_int_equal(c1->will.qos, 1);
    assert_true(c1->will.retain);
    assert_true(c1->reconnect_min == 0.5 && c1->reconnect_max == 10);
    assert_false(c1->tls.enabled);
    assert_int_equal(c1->n_topics, 2);
    assert_string_equal(c1->topics[0].name, "sensors/+/temperature");
    assert_int_equal(c1->topics[0].qos, 1);
    assert_int_equal(c1->topics[0].pos.line, 14);
    assert_string_equal(c1->topics[1].name, "sensors/#");
    assert_int_equal(c1->topics[1].qos, 0);

    assert_int_equal(c2->scheme, CFG_MQTTS);
    assert_int_equal(c2->port, 9999);
    assert_string_equal(c2->uri, "ssl://broker.example:9999");
    assert_string_equal(c2->password, "filepw");
    assert_int_equal(c2->mqtt_version, 4);
    assert_true(c2->tls.enabled);
    assert_false(c2->tls.verify);
    assert_string_equal(c2->tls.alpn, "mqtt");
    char want[PATH_MAX + 16];
    snprintf(want, sizeof(want), "%s/ca.pem", tmpdir);
    assert_string_equal(c2->tls.ca, want);
    assert_int_equal(c2->n_topics, 0);
    assert_int_equal(c2->keepalive, 60);
    assert_true(c2->clean_session);
    assert_true(c2->reconnect_min == 0.1 && c2->reconnect_max == 30);

    assert_int_equal(c3->scheme, CFG_WS);
    assert_string_equal(c3->host, "::1");
    assert_string_equal(c3->uri, "ws://[::1]:8080/mqtt");
    assert_int_equal(cfg_ingress_count(c), 1);
    assert_int_equal(cfg_ingress_client(c, 0), 0);
    assert_int_equal(cfg_ingress_client(c, 1), -1);

    assert_int_equal(c->n_callbacks, 2);
    snprintf(want, sizeof(want), "%s/cb/a.so", tmpdir);
    assert_string_equal(c->callbacks[0].module, want);
    assert_string_equal(c->callbacks[0].function, "alert_if_high");
    snprintf(want, sizeof(want), "%s/cb/b.so", tmpdir);
    assert_string_equal(c->callbacks[1].module, want);
    assert_int_equal(cfg_callback_index(c, "sample"), 1);

    assert_int_equal(c->n_rules, 2);
    const cfg_rule *r1 = &c->rules[0], *r2 = &c->rules[1];
    assert_string_equal(r1->name, "r1");
    assert_int_equal(r1->source_client, 0);
    assert_string_equal(r1->topic, "sensors/+/temperature");
    assert_string_equal(r1->regex, "^sensors/(kitchen|hall)/");
    assert_non_null(strstr(r1->condition, "payload.temp > 30"));
    assert_int_equal(r1->callback, 0);
    assert_int_equal(r1->chain, -1);
    assert_int_equal(r1->exec_mode, CFG_EXEC_PER_TOPIC);
    assert_int_equal(r1->on_error, CFG_ON_ERROR_DEAD_LETTER);
    assert_int_equal(r2->source_client, -1);
    assert_null(r2->topic);
    assert_int_equal(r2->callback, -1);
    assert_int_equal(r2->chain, 0);
    assert_int_equal(r2->exec_mode, CFG_EXEC_SEQUENTIAL);
    assert_int_equal(r2->on_error, CFG_ON_ERROR_LOG);

    assert_int_equal(c->n_chains, 1);
    const cfg_chain *ch = &c->chains[0];
    assert_true(ch->stateful);
    assert_int_equal(ch->n_steps, 8);
    const cfg_step *s = ch->steps;
    assert_int_equal(s[0].kind, CFG_STEP_SAMPLER);
    assert_true(s[0].duration == 0.5);
    assert_int_equal(s[0].callback, 1);
    assert_int_equal(s[0].max_messages, 10000);
    assert_int_equal(s[0].n_params, 4);
    assert_string_equal(s[0].params[0].key, "duration");
    assert_string_equal(s[0].params[0].value, "500ms");
    assert_string_equal(s[0].params[3].key, "limit");
    assert_string_equal(s[0].params[3].value, "3");
    assert_int_equal(s[1].kind, CFG_STEP_FORMAT);
    assert_string_equal(s[1].topic_prefix, "out/");
    assert_string_equal(s[1].topic_suffix, "/x");
    assert_null(s[1].topic_template);
    assert_string_equal(s[1].payload_template, "{\"v\": 1}");
    assert_int_equal(s[2].kind, CFG_STEP_FILTER);
    assert_string_equal(s[2].condition, "payload.v == 1");
    assert_int_equal(s[3].kind, CFG_STEP_BATCH);
    assert_int_equal(s[3].batch_count, 10);
    assert_true(s[3].interval == 0);
    assert_int_equal(s[4].kind, CFG_STEP_THROTTLE);
    assert_true(s[4].rate == 2.5);
    assert_int_equal(s[5].kind, CFG_STEP_ON_CHANGE);
    assert_string_equal(s[5].field, "temp");
    assert_int_equal(s[6].kind, CFG_STEP_AGGREGATE);
    assert_int_equal(s[6].agg_fn, CFG_AGG_MAX);
    assert_true(s[6].interval == 60);
    assert_string_equal(s[6].field, "a.b");
    assert_int_equal(s[7].kind, CFG_STEP_RELAY);
    assert_int_equal(s[7].target_client, 1);
    assert_string_equal(s[7].target_topic, "processed/t");
    assert_int_equal(s[7].qos, 1);
    assert_int_equal(s[7].retain, 0);
    assert_int_equal(s[7].callback, -1);

    const cfg_runtime *rt = &c->runtime;
    assert_string_equal(rt->instance, "plant-7");
    assert_int_equal(rt->workers, 4);
    assert_int_equal(rt->cpu_ingress, 0);
    assert_int_equal(rt->cpu_router, 1);
    assert_int_equal(rt->cpu_relay, 1);
    assert_int_equal(rt->cpu_supervisor, 0);
    assert_int_equal(rt->n_cpu_workers, 2);
    assert_int_equal(rt->cpu_workers[1], 1);
    assert_int_equal(rt->ring_size, 65536);
    assert_int_equal(rt->max_payload, 1024);
    assert_int_equal(rt->max_attempts, 5);
    assert_int_equal(rt->callback_timeout_ms, 250);
    assert_int_equal(rt->overflow, CFG_OVERFLOW_DROP);
    assert_int_equal(rt->mqtt_io, CFG_MQTT_IO_PAHO);
    snprintf(want, sizeof(want), "%s/spool", tmpdir);
    assert_string_equal(rt->spool_dir, want);
    assert_string_equal(rt->dead_letter_dir, "/var/dead");
    assert_string_equal(rt->dead_letter_topic, "dead/letters");
    assert_int_equal(rt->dead_letter_client, 1);
    assert_string_equal(rt->control_socket, "/run/mf.sock");
    assert_true(rt->stats_interval == 10);
    assert_int_equal(rt->spool_max_bytes, 10000000);

    assert_int_equal(c->logging.default_level, MF_LOG_DEBUG);
    assert_int_equal(c->logging.n_levels, 2);
    assert_string_equal(c->logging.levels[0].key, "router");
    assert_string_equal(c->logging.levels[0].value, "WARNING");
    assert_string_equal(c->logging.levels[1].key, "relay");

    cfg_destroy(c);
    cfg_diag_fini(&d);
}

/* Another user (nobody) gets $XDG_STATE_HOME/mqttflow/<instance> and, without
 * XDG_RUNTIME_DIR or /run/user/<uid>, its socket there too: never /tmp. */
static void test_cfg_defaults_of_a_user(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    static const char yaml[] = "mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h}\n"
                               "runtime: {instance: u1}\n";
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("XDG_STATE_HOME", "/nonexistent-h8/state", 1);
        unsetenv("XDG_RUNTIME_DIR");
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(3);
        cfg *c = NULL;
        cfg_diag d = {0};
        int bad =
            cfg_load_buffer("u.yaml", "/", yaml, sizeof(yaml) - 1, 0, &c, &d) != 0 ||
            strcmp(c->runtime.spool_dir, "/nonexistent-h8/state/mqttflow/u1/spool") ||
            strcmp(c->runtime.dead_letter_dir, "/nonexistent-h8/state/mqttflow/u1/dead") ||
            (access("/run/user/65534", F_OK) != 0 &&
             strcmp(c->runtime.control_socket, "/nonexistent-h8/state/mqttflow/mqttflow-u1.sock"));
        if (bad && c)
            fprintf(stderr, "%s %s %s\n", c->runtime.spool_dir, c->runtime.dead_letter_dir,
                    c->runtime.control_socket);
        _exit(bad);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_cfg_defaults(void **state)
{
    (void)state;
    cfg_diag d = {0};
    unsetenv("XDG_RUNTIME_DIR");
    cfg *c = load_ok(CLIENTS CALLBACKS "rules:\n"
                                       "  - rule: r\n"
                                       "    callback: cb_a\n",
                     &d);
    const cfg_client *cl = &c->clients[0];
    assert_int_equal(cl->port, 1883);
    assert_string_equal(cl->uri, "tcp://localhost:1883");
    assert_null(cl->username);
    assert_null(cl->password);
    assert_int_equal(cl->keepalive, 60);
    assert_true(cl->clean_session);
    assert_int_equal(cl->mqtt_version, 4);
    assert_false(cl->will.enabled);
    assert_false(cl->tls.enabled);
    assert_true(cl->tls.verify);
    assert_null(cl->shared_group);
    const cfg_runtime *rt = &c->runtime;
    assert_string_equal(rt->instance, "default");
    assert_int_equal(rt->workers, 2);
    assert_int_equal(rt->cpu_ingress, -1);
    assert_int_equal(rt->cpu_router, -1);
    assert_int_equal(rt->n_cpu_workers, 0);
    assert_int_equal(rt->ring_size, 4u << 20);
    assert_int_equal(rt->max_payload, 256u << 10);
    assert_int_equal(rt->max_attempts, 3);
    assert_int_equal(rt->callback_timeout_ms, 5000);
    assert_int_equal(rt->overflow, CFG_OVERFLOW_BLOCK);
    /* issue 8: a folder of the service's own, never under world-writable /var/tmp */
    if (geteuid() == 0) {
        assert_string_equal(rt->spool_dir, "/var/lib/mqttflow/default/spool");
        assert_string_equal(rt->dead_letter_dir, "/var/lib/mqttflow/default/dead");
        assert_string_equal(rt->control_socket, "/run/mqttflow/mqttflow-default.sock");
    }
    assert_int_equal(rt->mqtt_io, CFG_MQTT_IO_AUTO);
    assert_null(rt->dead_letter_topic);
    assert_int_equal(rt->dead_letter_client, -1);
    assert_true(rt->stats_interval == 0);
    assert_int_equal(rt->spool_max_bytes, 1u << 30);
    assert_int_equal(rt->relay_outstanding, 256);
    assert_int_equal(rt->relay_drain_batch, 128);
    assert_int_equal(rt->ingress_coalesce_us, 500);
    assert_int_equal(c->logging.default_level, MF_LOG_INFO);
    assert_int_equal(c->logging.n_levels, 0);
    /* cb_b is declared but unused */
    assert_int_equal(d.n_warnings, 1);
    assert_string_equal(d.warnings[0],
                        "config.yaml:8:3: callbacks: callback \"cb_b\" is not used by any rule or "
                        "step");
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

/* issue 8: QoS >= 1 without a clean_session key gets a persistent session; QoS 0 keeps the
 * clean one; an explicit clean session with QoS 1 loads with a warning naming the key */
static void test_cfg_session_default_follows_qos(void **state)
{
    (void)state;
    cfg_diag d = {0};
    cfg *c = load_ok("mqtt_clients:\n"
                     "  - {client_id: q0, broker_url: mqtt://h, topics: [{name: a, qos: 0}]}\n"
                     "  - {client_id: q1, broker_url: mqtt://h, topics: [{name: a, qos: 1}]}\n"
                     "  - {client_id: q2, broker_url: mqtt://h, mqtt_version: 5,\n"
                     "     session_expiry: 1h, topics: [{name: a, qos: 2}]}\n"
                     "  - {client_id: t, broker_url: mqtt://h}\n"
                     "callbacks:\n"
                     "  cb_a: {module: cb/a.so, function: fa}\n"
                     "rules:\n"
                     "  - {rule: r, topic: a, callback: cb_a}\n",
                     &d);
    assert_true(c->clients[0].clean_session);
    assert_false(c->clients[1].clean_session);
    assert_int_equal(c->clients[1].session_expiry, UINT32_MAX);
    assert_false(c->clients[2].clean_session);
    assert_int_equal(c->clients[2].session_expiry, 3600);
    assert_true(c->clients[3].clean_session);
    assert_int_equal(d.n_warnings, 0);
    cfg_destroy(c);
    cfg_diag_fini(&d);

    cfg_diag d2 = {0};
    c = load_ok("mqtt_clients:\n"
                "  - {client_id: q1, broker_url: mqtt://h, clean_session: true,\n"
                "     topics: [{name: a, qos: 1}]}\n"
                "callbacks:\n"
                "  cb_a: {module: cb/a.so, function: fa}\n"
                "rules:\n"
                "  - {rule: r, topic: a, callback: cb_a}\n",
                &d2);
    assert_true(c->clients[0].clean_session);
    assert_int_equal(d2.n_warnings, 1);
    assert_non_null(strstr(d2.warnings[0], "config.yaml:2:58: mqtt_clients[0].clean_session: a "
                                           "clean session with a QoS 1 subscription"));
    cfg_destroy(c);
    cfg_diag_fini(&d2);
}

static void test_cfg_url_schemes(void **state)
{
    (void)state;
    static const struct {
        const char *url, *uri;
        int port;
    } cases[] = {
        {"mqtt://h", "tcp://h:1883", 1883},
        {"tcp://h:1999", "tcp://h:1999", 1999},
        {"mqtts://h", "ssl://h:8883", 8883},
        {"ssl://h:1", "ssl://h:1", 1},
        {"ws://h", "ws://h:80", 80},
        {"wss://h/mqtt", "wss://h:443/mqtt", 443},
        {"broker.local", "tcp://broker.local:1883", 1883},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml), "mqtt_clients:\n  - {client_id: x, broker_url: \"%s\"}\n",
                 cases[i].url);
        cfg_diag d = {0};
        cfg *c = load_ok(yaml, &d);
        assert_string_equal(c->clients[0].uri, cases[i].uri);
        assert_int_equal(c->clients[0].port, cases[i].port);
        cfg_destroy(c);
        cfg_diag_fini(&d);
    }
}

static void test_cfg_numbers_decimal_hex_and_units(void **state)
{
    (void)state;
    cfg_diag d = {0};
    cfg *c = load_ok(CLIENTS "runtime:\n"
                             "  workers: 08\n"
                             "  max_attempts: 0x10\n"
                             "  ring_size: \"1MiB\"\n"
                             "  max_payload: 64 KiB\n"
                             "  stats_interval: 1.5m\n"
                             "  callback_timeout_ms: 0\n"
                             "  relay: {outstanding: 1048576, drain_batch: 1}\n",
                     &d);
    assert_int_equal(c->runtime.workers, 8);
    assert_int_equal(c->runtime.max_attempts, 16);
    assert_int_equal(c->runtime.ring_size, 1u << 20);
    assert_int_equal(c->runtime.max_payload, 64u << 10);
    assert_true(c->runtime.stats_interval == 90);
    assert_int_equal(c->runtime.callback_timeout_ms, 0);
    assert_int_equal(c->runtime.relay_outstanding, 1 << 20); /* the top of their ranges */
    assert_int_equal(c->runtime.relay_drain_batch, 1);
    cfg_destroy(c);
    cfg_diag_fini(&d);
    /* the default max_payload shrinks to fit a small ring */
    c = load_ok(CLIENTS "runtime: {ring_size: 64KiB}\n", &d);
    assert_int_equal(c->runtime.max_payload, 16384);
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

/* config/examples/NAME of the source tree, copied here next to empty stand-ins for its modules
 * (callbacks/MOD.so for each of mods, NULL-terminated) and loaded: it loads without a warning. */
static cfg *load_example_copy(const char *name, const char *const *mods, cfg_diag *d)
{
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof(cmd), "cp '%s/config/examples/%s' copy.yaml", srcdir, name);
    assert_int_equal(system(cmd), 0);
    for (; *mods; mods++) {
        char so[PATH_MAX];
        snprintf(so, sizeof(so), "callbacks/%s.so", *mods);
        write_file(so, "", 0644);
    }
    cfg *c = NULL;
    int r = cfg_load("copy.yaml", 0, &c, d);
    if (r || d->n_warnings)
        dump(d);
    assert_int_equal(r, 0);
    assert_int_equal(d->n_warnings, 0);
    return c;
}

/* What cfg_print_summary says of c (the caller frees it). */
static char *summary_of(const cfg *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cfg_print_summary(c, f);
    fclose(f);
    return buf;
}

static void test_cfg_example_config(void **state)
{
    (void)state;
    /* the example in a copy, next to stand-ins for the modules a teammate builds */
    static const char *const mods[] = {"temperature_alerts", "humidity", "temperature_processing",
                                       NULL};
    cfg_diag d = {0};
    cfg *c = load_example_copy("config.yaml", mods, &d);
    assert_int_equal(c->n_clients, 2);
    assert_int_equal(c->clients[0].port, 1883);
    assert_int_equal(c->clients[1].port, 1884);
    assert_int_equal(c->n_rules, 3);
    assert_string_equal(c->rules[0].topic, "sensors/temperature");
    assert_string_equal(c->rules[1].topic, "sensors/humidity");
    assert_int_equal(c->rules[1].exec_mode, CFG_EXEC_PARALLEL);
    int ch = cfg_chain_index(c, "temperature_sampling_and_processing_chain");
    assert_int_equal(c->rules[2].chain, ch);
    assert_int_equal(c->chains[ch].steps[0].kind, CFG_STEP_SAMPLER);
    assert_true(c->chains[ch].steps[0].duration == 1);
    assert_int_equal(c->chains[ch].steps[2].target_client, 1);

    char *buf = summary_of(c);
    assert_non_null(strstr(buf, "client1 -> tcp://127.0.0.1:1883"));
    assert_non_null(strstr(buf, "subscribes sensors/temperature (qos 1)"));
    assert_non_null(strstr(buf, "simple_temperature_alert: sensors/temperature from client1 -> "
                                "callback handle_temperature_alert [sequential]"));
    assert_non_null(strstr(buf, "sampler(sample_temperature_collection) -> "
                                "custom_processor(process_sampled_temperature) -> "
                                "relay(client2 processed/temperature)"));
    assert_non_null(strstr(buf, "2 workers"));
    free(buf);
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

static void test_cfg_reference_config(void **state)
{
    (void)state;
    /* the annotated reference documents every key; it must stay a valid file */
    static const char *const mods[] = {"temperature_alerts", "temperature_processing", NULL};
    cfg_diag d = {0};
    cfg *c = load_example_copy("reference.yaml", mods, &d);
    assert_string_equal(c->clients[0].shared_group, "plant");
    assert_int_equal(c->chains[0].n_steps, 9);
    assert_string_equal(c->chains[0].steps[0].params[3].key, "unit");

    char *buf = summary_of(c);
    assert_non_null(strstr(buf, "subscribes $share/plant/sensors/+/temperature (qos 1)"));
    assert_non_null(strstr(buf, "kitchen_alert: sensors/+/temperature from client1 -> callback "
                                "alert [per_topic, errors dead-lettered]"));
    free(buf);
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

/* Each hostile input is refused at the point the error names (the first alias, level 33, the
 * duplicate key), not after expanding or walking it all; how long that takes is a benchmark's
 * business (no timed assertion: this machine is shared), a hang is caught by tests/run.sh's
 * per-test timeout. */
static void test_cfg_hostile_inputs_rejected_early(void **state)
{
    (void)state;
    /* billion laughs: 9 levels of 9 aliases each */
    char bomb[4096];
    size_t n = (size_t)snprintf(bomb, sizeof(bomb), "a0: &a0 [lol]\n");
    for (int i = 1; i < 10; i++) {
        n += (size_t)snprintf(bomb + n, sizeof(bomb) - n, "a%d: &a%d [", i, i);
        for (int j = 0; j < 9; j++)
            n += (size_t)snprintf(bomb + n, sizeof(bomb) - n, "%s*a%d", j ? ", " : "", i - 1);
        n += (size_t)snprintf(bomb + n, sizeof(bomb) - n, "]\n");
    }
    cfg *c = NULL;
    cfg_diag d = {0};
    assert_int_equal(cfg_load_buffer("bomb.yaml", tmpdir, bomb, n, 0, &c, &d), -EINVAL);
    assert_int_equal(d.n_errors, 1);
    assert_string_equal(d.errors[0],
                        "bomb.yaml:2:10: YAML aliases (*a0) are not allowed in a configuration");
    cfg_diag_fini(&d);

    /* 10,000-deep nesting, flow and block style */
    size_t depth = 10000;
    char *deep = malloc(4 * depth + 16);
    assert_non_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    assert_int_equal(cfg_load_buffer("deep.yaml", tmpdir, deep, 2 * depth, 0, &c, &d), -EINVAL);
    assert_string_equal(d.errors[0], "deep.yaml:1:33: nesting deeper than 32 levels");
    cfg_diag_fini(&d);
    n = 0;
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(deep + n, "- ");
    n += (size_t)sprintf(deep + n, "x\n");
    assert_int_equal(cfg_load_buffer("deep.yaml", tmpdir, deep, n, 0, &c, &d), -EINVAL);
    assert_string_equal(d.errors[0], "deep.yaml:1:65: nesting deeper than 32 levels");
    cfg_diag_fini(&d);
    free(deep);

    /* one oversized scalar, and an oversized file */
    size_t big = CFG_MAX_SCALAR + 10;
    char *s = malloc(big + 8);
    assert_non_null(s);
    memcpy(s, "a: ", 3);
    memset(s + 3, 'x', big);
    assert_int_equal(cfg_load_buffer("big.yaml", tmpdir, s, big + 3, 0, &c, &d), -EINVAL);
    assert_string_equal(d.errors[0], "big.yaml:1:4: value is 65546 bytes long, more than the "
                                     "limit of 65536");
    cfg_diag_fini(&d);
    free(s);
    assert_int_equal(cfg_load_buffer("huge.yaml", tmpdir, "", CFG_MAX_FILE + 1, 0, &c, &d),
                     -EINVAL);
    assert_int_equal(d.n_errors, 1);
    cfg_diag_fini(&d);

    /* many keys in one mapping: the duplicate check must not be quadratic */
    size_t keys = 50000;
    char *m = malloc(keys * 12 + 16);
    assert_non_null(m);
    n = 0;
    for (size_t i = 0; i < keys; i++)
        n += (size_t)sprintf(m + n, "k%zu: 1\n", i);
    n += (size_t)sprintf(m + n, "k7: 1\n");
    assert_int_equal(cfg_load_buffer("keys.yaml", tmpdir, m, n, 0, &c, &d), -EINVAL);
    assert_string_equal(d.errors[0], "keys.yaml:50001:1: duplicate key \"k7\" (first at line 8)");
    cfg_diag_fini(&d);

    /* too many rules: refused by count before any name is resolved */
    n = (size_t)sprintf(m, "mqtt_clients: [{client_id: c, broker_url: h}]\nrules:\n");
    for (size_t i = 0; i <= CFG_MAX_RULES; i++)
        n += (size_t)sprintf(m + n, "- {rule: r%zu, callback: x}\n", i);
    assert_int_equal(cfg_load_buffer("rules.yaml", tmpdir, m, n, 0, &c, &d), -EINVAL);
    assert_int_equal(d.n_errors, 1);
    assert_string_equal(d.errors[0], "rules.yaml:3:1: rules: 4097 rules, more than the limit of "
                                     "4096");
    cfg_diag_fini(&d);
    free(m);
}

static void test_cfg_load_missing_file(void **state)
{
    (void)state;
    cfg *c = (cfg *)1;
    cfg_diag d = {0};
    assert_int_equal(cfg_load("nope.yaml", 0, &c, &d), -ENOENT);
    assert_null(c);
    assert_int_equal(d.n_errors, 1);
    assert_string_equal(d.errors[0], "nope.yaml: cannot read: No such file or directory");
    cfg_diag_fini(&d);
    /* diag is optional */
    assert_int_equal(cfg_load("nope.yaml", 0, &c, NULL), -ENOENT);
}

static bool build_module(const char *name, const char *src)
{
    char cmd[1024];
    write_file("mod.c", src, 0644);
    snprintf(cmd, sizeof(cmd), "cc -shared -fPIC -o %s mod.c 2>/dev/null", name);
    return system(cmd) == 0;
}

/* Writes config.yaml whose callback ok is function fn of module mod (in tmpdir) and loads it
 * with flags: cfg_load's return, its diagnostics in *d (the caller finishes them). */
static int load_module_config(const char *mod, const char *fn, unsigned flags, cfg_diag *d)
{
    static const char yaml[] = "mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h}\n"
                               "callbacks:\n"
                               "  %s: {module: %s, function: %s}\n"
                               "rules:\n  - {rule: r, callback: %s}\n";
    char buf[512];
    cfg *c = NULL;
    snprintf(buf, sizeof(buf), yaml, "ok", mod, fn, "ok");
    write_file("config.yaml", buf, 0644);
    int r = cfg_load("config.yaml", flags, &c, d);
    cfg_destroy(c);
    return r;
}

/* Loading that config with the modules checked fails with one error, want_fmt with tmpdir for
 * its %s. */
static void expect_module_error(const char *mod, const char *fn, const char *want_fmt)
{
    char want[PATH_MAX + 200];
    cfg_diag d = {0};
    snprintf(want, sizeof(want), want_fmt, tmpdir);
    assert_int_equal(load_module_config(mod, fn, CFG_LOAD_CHECK_MODULES, &d), -EINVAL);
    assert_int_equal(d.n_errors, 1);
    assert_string_equal(d.errors[0], want);
    cfg_diag_fini(&d);
}

static void test_cfg_module_check(void **state)
{
    (void)state;
    if (!build_module("good.so", "const int mf_api_version = 1;\n"
                                 "int handle(void *c, const void *m, unsigned long n)\n"
                                 "{ (void)c; (void)m; (void)n; return 0; }\n") ||
        !build_module("old.so", "const int mf_api_version = 99;\n"
                                "int handle(void) { return 0; }\n") ||
        !build_module("bare.so", "int handle(void) { return 0; }\n"))
        skip();
    write_file("notelf.so", "not a shared object\n", 0644);
    cfg_diag d = {0};
    assert_int_equal(load_module_config("good.so", "handle", CFG_LOAD_CHECK_MODULES, &d), 0);
    cfg_diag_fini(&d);
    /* without the flag only existence is checked */
    assert_int_equal(load_module_config("good.so", "handel", 0, &d), 0);
    cfg_diag_fini(&d);
    expect_module_error("good.so", "handel",
                        "config.yaml:4:35: callbacks.ok.function: function \"handel\" not found "
                        "in %s/good.so");
    expect_module_error("old.so", "handle",
                        "config.yaml:4:16: callbacks.ok.module: %s/old.so was built for callback "
                        "API version 99, this mqttflow implements version 1 (rebuild it against "
                        "this mqttflow.h)");
    expect_module_error("bare.so", "handle",
                        "config.yaml:4:16: callbacks.ok.module: %s/bare.so does not export "
                        "mf_api_version (build it with #include \"mqttflow.h\")");

    assert_int_equal(load_module_config("notelf.so", "handle", CFG_LOAD_CHECK_MODULES, &d),
                     -EINVAL);
    assert_int_equal(d.n_errors, 1);
    char want[PATH_MAX + 200];
    snprintf(want, sizeof(want),
             "config.yaml:4:16: callbacks.ok.module: cannot load callback module %s/notelf.so: ",
             tmpdir);
    assert_non_null(strstr(d.errors[0], want));
    /* dlopen's own text starts with the path: it is said once */
    assert_null(strstr(d.errors[0] + strlen(want), "notelf.so"));
    cfg_diag_fini(&d);
}

static void test_cfg_module_check_api_and_undefined_symbols(void **state)
{
    (void)state;
    /* a module calling the callback API loads although this process does not export it; one
     * needing any other missing function is refused by name */
    if (!build_module("api.so", "const int mf_api_version = 1;\n"
                                "int mf_emit(void *, const char *, const void *, unsigned long);\n"
                                "int handle(void *c) { return mf_emit(c, \"t\", 0, 0); }\n") ||
        !build_module("undef.so", "const int mf_api_version = 1;\n"
                                  "int nosuch_fn(void);\n"
                                  "int handle(void) { return nosuch_fn(); }\n"))
        skip();
    cfg *c = NULL;
    cfg_diag d = {0};
    write_file("config.yaml",
               "mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h}\n"
               "callbacks:\n  a: {module: api.so, function: handle}\n"
               "rules:\n  - {rule: r, callback: a}\n",
               0644);
    int r = cfg_load("config.yaml", CFG_LOAD_CHECK_MODULES, &c, &d);
    if (r)
        dump(&d);
    assert_int_equal(r, 0);
    cfg_destroy(c);
    cfg_diag_fini(&d);
    write_file("config.yaml",
               "mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h}\n"
               "callbacks:\n  a: {module: undef.so, function: handle}\n"
               "rules:\n  - {rule: r, callback: a}\n",
               0644);
    assert_int_equal(cfg_load("config.yaml", CFG_LOAD_CHECK_MODULES, &c, &d), -EINVAL);
    assert_int_equal(d.n_errors, 1);
    assert_non_null(strstr(d.errors[0], "config.yaml:4:15: callbacks.a.module: cannot load "
                                        "callback module "));
    assert_non_null(strstr(d.errors[0], "undefined symbol: nosuch_fn"));
    cfg_diag_fini(&d);
}

static void test_cfg_example_with_real_modules(void **state)
{
    (void)state;
    /* the example callbacks built by `make` (config/examples/callbacks/NAME.so) */
    char path[PATH_MAX + 64];
    static const char *const mods[] = {"temperature_alerts", "humidity", "temperature_processing"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/config/examples/callbacks/%s.so", srcdir, mods[i]);
        if (access(path, R_OK) < 0)
            skip();
    }
    snprintf(path, sizeof(path), "%s/config/examples/config.yaml", srcdir);
    cfg *c = NULL;
    cfg_diag d = {0};
    int r = cfg_load(path, CFG_LOAD_CHECK_MODULES, &c, &d);
    if (r)
        dump(&d);
    assert_int_equal(r, 0);
    assert_int_equal(d.n_errors, 0);
    assert_int_equal(c->n_callbacks, 4);
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

static void test_cfg_topic_validity(void **state)
{
    (void)state;
    assert_true(cfg_topic_filter_is_valid("a/b"));
    assert_true(cfg_topic_filter_is_valid("#"));
    assert_true(cfg_topic_filter_is_valid("+"));
    assert_true(cfg_topic_filter_is_valid("a/+/b/#"));
    assert_true(cfg_topic_filter_is_valid("/"));
    assert_true(cfg_topic_filter_is_valid("+/+"));
    assert_false(cfg_topic_filter_is_valid(""));
    assert_false(cfg_topic_filter_is_valid(NULL));
    assert_false(cfg_topic_filter_is_valid("a/#/b"));
    assert_false(cfg_topic_filter_is_valid("a#"));
    assert_false(cfg_topic_filter_is_valid("a/b+"));
    assert_false(cfg_topic_filter_is_valid("++"));
    assert_true(cfg_topic_name_is_valid("a/b"));
    assert_false(cfg_topic_name_is_valid("a/+"));
    assert_false(cfg_topic_name_is_valid("#"));
    char *longt = malloc(CFG_MAX_TOPIC + 2);
    assert_non_null(longt);
    memset(longt, 'a', CFG_MAX_TOPIC);
    longt[CFG_MAX_TOPIC] = 0;
    assert_true(cfg_topic_name_is_valid(longt));
    longt[CFG_MAX_TOPIC] = 'a';
    longt[CFG_MAX_TOPIC + 1] = 0;
    assert_false(cfg_topic_name_is_valid(longt));
    free(longt);
}

static void test_cfg_topic_filters_overlap(void **state)
{
    (void)state;
    assert_true(cfg_topic_filters_overlap("a/b", "a/b"));
    assert_true(cfg_topic_filters_overlap("a/+", "a/b"));
    assert_true(cfg_topic_filters_overlap("#", "x/y/z"));
    assert_true(cfg_topic_filters_overlap("a/#", "a"));
    assert_true(cfg_topic_filters_overlap("a/+/c", "+/b/#"));
    assert_false(cfg_topic_filters_overlap("a/b", "a/c"));
    assert_false(cfg_topic_filters_overlap("a/+", "a/b/c"));
    assert_false(cfg_topic_filters_overlap("a", "a/b"));
    assert_false(cfg_topic_filters_overlap("a/+", "a"));
}

static void test_cfg_destroy_and_fini_accept_null(void **state)
{
    (void)state;
    cfg_destroy(NULL);
    cfg_diag_fini(NULL);
    /* a diag filled by a real load (errors; a warning added) is left empty by fini, and a second
     * fini of the emptied one is harmless; ASan checks that what it held was freed */
    write_file("config.yaml", CLIENTS CALLBACKS "runtime: {workers: 0, colour: blue}\n", 0644);
    cfg *c = (cfg *)1;
    cfg_diag d = {0};
    assert_int_equal(cfg_load("config.yaml", 0, &c, &d), -EINVAL);
    assert_null(c);
    assert_true(d.n_errors >= 2);
    cfg_diag_add(&d, true, "config.yaml", (cfg_pos){1, 1}, NULL, "a warning");
    assert_int_equal(d.n_warnings, 1);
    cfg_diag_fini(&d);
    assert_int_equal(d.n_errors, 0);
    assert_int_equal(d.n_warnings, 0);
    assert_null(d.errors);
    assert_null(d.warnings);
    cfg_diag_fini(&d);
    assert_int_equal(d.n_errors, 0);
}

/* A value equal to the top of its range is accepted: port 65535, qos 2, workers 64. */
static void test_cfg_values_at_the_top_of_their_ranges(void **state)
{
    (void)state;
    cfg_diag d = {0};
    cfg *c = load_ok("mqtt_clients:\n"
                     "  - client_id: c1\n"
                     "    broker_url: mqtt://localhost\n"
                     "    port: 65535\n"
                     "    will: {topic: w, payload: gone, qos: 2}\n"
                     "    topics:\n"
                     "      - {name: a/b, qos: 2}\n" CALLBACKS "rules:\n"
                     "  - {rule: r, callback: cb_a}\n"
                     "runtime: {workers: 64}\n",
                     &d);
    assert_int_equal(d.n_errors, 0);
    assert_int_equal(c->clients[0].port, 65535);
    assert_string_equal(c->clients[0].uri, "tcp://localhost:65535");
    assert_int_equal(c->clients[0].topics[0].qos, 2);
    assert_int_equal(c->clients[0].will.qos, 2);
    assert_int_equal(c->runtime.workers, CFG_MAX_WORKERS);
    assert_int_equal(CFG_MAX_WORKERS, 64);
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

int main(void)
{
    if (!getcwd(srcdir, sizeof(srcdir)))
        return 1;
    /* run from anywhere below the repository: find config/examples/config.yaml upwards */
    for (int i = 0; i < 4; i++) {
        char probe[PATH_MAX + 40];
        snprintf(probe, sizeof(probe), "%s/config/examples/config.yaml", srcdir);
        if (access(probe, R_OK) == 0)
            break;
        char *slash = strrchr(srcdir, '/');
        if (slash && slash != srcdir)
            *slash = 0;
    }
    const struct CMUnitTest tests[] = {
        TEST_ST(test_cfg_full_config_values),
        TEST_ST(test_cfg_defaults),
        TEST_ST(test_cfg_defaults_of_a_user),
        TEST_ST(test_cfg_url_schemes),
        TEST_ST(test_cfg_numbers_decimal_hex_and_units),
        TEST_ST(test_cfg_example_config),
        TEST_ST(test_cfg_reference_config),
        TEST_ST(test_cfg_hostile_inputs_rejected_early),
        TEST_ST(test_cfg_load_missing_file),
        TEST_ST(test_cfg_module_check),
        TEST_ST(test_cfg_module_check_api_and_undefined_symbols),
        TEST_ST(test_cfg_example_with_real_modules),
        TEST_ST(test_cfg_topic_validity),
        TEST_ST(test_cfg_session_default_follows_qos),
        TEST_ST(test_cfg_topic_filters_overlap),
        TEST_ST(test_cfg_destroy_and_fini_accept_null),
        TEST_ST(test_cfg_values_at_the_top_of_their_ranges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
