/* Tests of the configuration loader on bad configs: each asserts the exact
 * "file:line:col: path: message" a user sees, and the warnings of `mqttflow check`. */
#include "cfg_test.h"
#include "tests/tools/testlib.h"

static void test_cfg_error_unknown_keys(void **state)
{
    (void)state;
    expect_error(CLIENTS "rule:\n  - rule: x\n",
                 "config.yaml:6:1: rule: unknown key (did you mean \"rules\"?)");
    expect_error("mqtt_clients:\n  - client_id: c1\n    brokr_url: mqtt://h\n",
                 "config.yaml:3:5: mqtt_clients[0].brokr_url: unknown key (did you mean "
                 "\"broker_url\"?)");
    expect_error(CLIENTS "runtime:\n  colour: blue\n",
                 "config.yaml:7:3: runtime.colour: unknown key (allowed: instance, workers, cpus, "
                 "ring_size, max_payload, max_attempts, callback_timeout_ms, overflow, "
                 "spool_dir, dead_letter, control_socket, stats_interval, spool_max_bytes, "
                 "metrics, python, mqtt_io, relay, ingress_coalesce_us)");
    expect_error(CLIENTS CALLBACKS "processing_chains:\n"
                                   "  ch:\n"
                                   "    - step: relay\n"
                                   "      config: {target_client_id: c1, qoss: 1}\n",
                 "config.yaml:12:38: processing_chains.ch[0].config.qoss: unknown key (did you "
                 "mean \"qos\"?)");
}

static void test_cfg_error_types_and_ranges(void **state)
{
    (void)state;
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, port: abc}\n",
                 "config.yaml:2:49: mqtt_clients[0].port: expected an integer, got \"abc\"");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, port: 70000}\n",
                 "config.yaml:2:49: mqtt_clients[0].port: 70000 is out of range 1..65535");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, clean_session: 2}\n",
                 "config.yaml:2:58: mqtt_clients[0].clean_session: expected true or false, got "
                 "\"2\"");
    expect_error("mqtt_clients: {client_id: c1}\n",
                 "config.yaml:1:15: mqtt_clients: expected a list of clients, got a mapping");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, topics: [{name: a, "
                 "qos: 3}]}\n",
                 "config.yaml:2:67: mqtt_clients[0].topics[0].qos: 3 is out of range 0..2");
    expect_error(CLIENTS "runtime:\n  relay: {outstanding: 0}\n",
                 "config.yaml:7:24: runtime.relay.outstanding: 0 is out of range 1..1048576");
    expect_error(CLIENTS "runtime:\n  relay:\n    drain_batch: 257\n",
                 "config.yaml:8:18: runtime.relay.drain_batch: 257 is out of range 1..256");
    expect_error(CLIENTS "runtime:\n  relay: {outstandin: 4}\n",
                 "config.yaml:7:11: runtime.relay.outstandin: unknown key (did you mean "
                 "\"outstanding\"?)");
    expect_error(CLIENTS "runtime: {ingress_coalesce_us: 200000}\n",
                 "config.yaml:6:32: runtime.ingress_coalesce_us: 200000 is out of range 0..100000");
    expect_error(CLIENTS "runtime: {ingress_coalesce_us: -1}\n",
                 "config.yaml:6:32: runtime.ingress_coalesce_us: -1 is out of range 0..100000");
    expect_error(CLIENTS "runtime: {workers: 0}\n",
                 "config.yaml:6:20: runtime.workers: 0 is out of range 1..64");
    expect_error(CLIENTS "runtime: {ring_size: 100000}\n",
                 "config.yaml:6:22: runtime.ring_size: 100000 is not a power of two (try "
                 "131072)");
    expect_error(CLIENTS "runtime: {ring_size: 4XB}\n",
                 "config.yaml:6:22: runtime.ring_size: expected a size in bytes (like 65536, "
                 "\"64KiB\" or \"4MiB\"), got \"4XB\"");
    expect_error(CLIENTS "runtime: {ring_size: 32KiB}\n",
                 "config.yaml:6:22: runtime.ring_size: 32KiB is out of range 65536..1073741824");
    expect_error(CLIENTS "runtime: {max_attempts: 08x}\n",
                 "config.yaml:6:25: runtime.max_attempts: expected an integer, got \"08x\"");
    expect_error(CLIENTS "runtime: {stats_interval: 5 parsecs}\n",
                 "config.yaml:6:27: runtime.stats_interval: expected a duration (seconds, or "
                 "500ms/2s/1m/1h), got \"5 parsecs\"");
    expect_error(CLIENTS "runtime: {ring_size: 64KiB, max_payload: 32KiB}\n",
                 "config.yaml:6:42: runtime.max_payload: 32768 bytes is more than a quarter of "
                 "ring_size (65536)");
    expect_error(CLIENTS "runtime: {metrics: {listen: \"9464\"}}\n",
                 "config.yaml:6:29: runtime.metrics.listen: \"9464\" is not HOST:PORT (e.g. "
                 "\"127.0.0.1:9464\", \"[::1]:9464\")");
    expect_error(CLIENTS "runtime: {metrics: {listen: \"localhost:99999\"}}\n",
                 "config.yaml:6:29: runtime.metrics.listen: \"localhost:99999\" is not HOST:PORT "
                 "(e.g. \"127.0.0.1:9464\", \"[::1]:9464\")");
    expect_error(CLIENTS "runtime: {instance: \"a b\"}\n",
                 "config.yaml:6:21: runtime.instance: \"a b\" is not a valid instance name (1 to "
                 "32 of A-Z a-z 0-9 _ -)");
    expect_error(CLIENTS "runtime: {overflow: spill}\n",
                 "config.yaml:6:21: runtime.overflow: expected block | drop, got \"spill\"");
    expect_error(CLIENTS "runtime: {mqtt_io: uring}\n",
                 "config.yaml:6:20: runtime.mqtt_io: expected auto | paho, got \"uring\"");
    expect_error(CLIENTS "runtime: {cpus: {workers: [0, x]}}\n",
                 "config.yaml:6:31: runtime.cpus.workers[1]: expected a CPU number 0..4095");
    expect_error(CLIENTS "logging: {default_level: LOUD}\n",
                 "config.yaml:6:26: logging.default_level: expected DEBUG, INFO, WARNING or "
                 "ERROR, got \"LOUD\"");
    expect_error(CLIENTS "logging: {levels: {router: 7}}\n",
                 "config.yaml:6:28: logging.levels.router: expected DEBUG, INFO, WARNING or "
                 "ERROR, got \"7\"");
}

static void test_cfg_error_clients(void **state)
{
    (void)state;
    expect_error("mqtt_clients:\n  - broker_url: mqtt://h\n",
                 "config.yaml:2:5: mqtt_clients[0]: missing required key \"client_id\"");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: \"http://h\"}\n",
                 "config.yaml:2:33: mqtt_clients[0].broker_url: unsupported scheme in "
                 "\"http://h\" (expected mqtt://, tcp://, mqtts://, ssl://, ws:// or wss://)");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: \"mqtt://h:99999\"}\n",
                 "config.yaml:2:33: mqtt_clients[0].broker_url: bad port in \"mqtt://h:99999\" "
                 "(expected 1..65535)");
    expect_error("mqtt_clients:\n"
                 "  - {client_id: c1, broker_url: mqtt://h}\n"
                 "  - {client_id: c1, broker_url: mqtt://h}\n",
                 "config.yaml:3:17: mqtt_clients[1].client_id: duplicate client_id \"c1\" "
                 "(first at line 2)");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, topics: [a/#/b]}\n",
                 "config.yaml:2:52: mqtt_clients[0].topics[0]: malformed topic filter \"a/#/b\" "
                 "(+ and # must fill a whole level, # only last)");
    expect_error("mqtt_clients:\n"
                 "  - client_id: c1\n"
                 "    broker_url: mqtt://h\n"
                 "    topics:\n"
                 "      - name: a+/b\n",
                 "config.yaml:5:15: mqtt_clients[0].topics[0].name: malformed topic filter "
                 "\"a+/b\" (+ and # must fill a whole level, # only last)");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, mqtt_version: 4.0}\n",
                 "config.yaml:2:57: mqtt_clients[0].mqtt_version: expected \"3.1.1\" or 5, got "
                 "\"4.0\"");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, will: {qos: 1}}\n",
                 "config.yaml:2:49: mqtt_clients[0].will: missing required key \"topic\"");
    char want[PATH_MAX + 100];
    snprintf(want, sizeof(want),
             "config.yaml:2:53: mqtt_clients[0].tls.ca: cannot read %s/nope.pem: No such file "
             "or directory",
             tmpdir);
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, tls: {ca: nope.pem}}\n",
                 want);
}

static void test_cfg_error_client_details(void **state)
{
    (void)state;
    write_file("cert.pem", "x", 0644);
    expect_error(
        "mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, tls: {cert: cert.pem}}\n",
        "config.yaml:2:48: mqtt_clients[0].tls: a client certificate needs both cert and "
        "key");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, will: {topic: a/+}}\n",
                 "config.yaml:2:57: mqtt_clients[0].will.topic: \"a/+\" is not a valid topic name "
                 "(no wildcards)");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, reconnect: {min_delay: "
                 "5, max_delay: 1}}\n",
                 "config.yaml:2:54: mqtt_clients[0].reconnect: min_delay (5) is larger than "
                 "max_delay (1)");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, shared_group: a/b}\n",
                 "config.yaml:2:57: mqtt_clients[0].shared_group: a shared group name must be "
                 "non-empty without '/', '+' or '#'");
    expect_error("mqtt_clients:\n  - {client_id: \"\", broker_url: mqtt://h}\n",
                 "config.yaml:2:17: mqtt_clients[0].client_id: must not be empty");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: \"mqtt://\"}\n",
                 "config.yaml:2:33: mqtt_clients[0].broker_url: no host in \"mqtt://\"");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: \"mqtt://h/path\"}\n",
                 "config.yaml:2:33: mqtt_clients[0].broker_url: a path in \"mqtt://h/path\" only "
                 "makes sense with ws:// or wss://");
    setenv("TEST_CFG_SET", "x", 1);
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, password_env: "
                 "TEST_CFG_SET, password_file: b}\n",
                 "config.yaml:2:86: mqtt_clients[0].password_file: give password_env or "
                 "password_file, not both");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, topics: [\"a\\0b\"]}\n",
                 "config.yaml:2:52: value contains a NUL byte");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h}\n"
                 "runtime: {dead_letter: {topic: dead}}\n",
                 "config.yaml:3:24: runtime.dead_letter: a dead_letter topic needs client_id (the "
                 "client to publish on)");
    /* an unknown key under logging: is reported once, as unknown */
    cfg_diag d = {0};
    load_fails("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h}\n"
               "logging: {level: warning, bogus: 1}\n",
               &d);
    assert_int_equal(d.n_errors, 1);
    assert_string_equal(d.errors[0],
                        "config.yaml:3:27: logging.bogus: unknown key (allowed: default_level, "
                        "level, levels, ingress, router, worker, workers, relay, supervisor, "
                        "config, callbacks)");
    cfg_diag_fini(&d);
    /* a port key beside a different port in the URL wins, with a warning */
    cfg *c =
        load_ok("mqtt_clients:\n  - {client_id: c1, broker_url: \"mqtt://h:1\", port: 2}\n", &d);
    assert_int_equal(c->clients[0].port, 2);
    assert_int_equal(d.n_warnings, 1);
    assert_string_equal(d.warnings[0], "config.yaml:2:33: mqtt_clients[0].broker_url: port 2 "
                                       "overrides the port 1 of the URL");
    cfg_destroy(c);
    cfg_diag_fini(&d);
    /* level: is an alias of default_level; cpus.workers may be one number */
    c = load_ok("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h}\n"
                "logging: {level: warning}\nruntime: {cpus: {workers: 3}}\n",
                &d);
    assert_int_equal(c->logging.default_level, MF_LOG_WARNING);
    assert_int_equal(c->runtime.n_cpu_workers, 1);
    assert_int_equal(c->runtime.cpu_workers[0], 3);
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

static void test_cfg_error_password(void **state)
{
    (void)state;
    expect_error("mqtt_clients:\n"
                 "  - client_id: c1\n"
                 "    broker_url: mqtt://h\n"
                 "    password: hunter2\n",
                 "config.yaml:4:15: mqtt_clients[0].password: a password is never read from the "
                 "YAML; use password_env (an environment variable) or password_file (a file "
                 "readable only by you)");
    expect_error("mqtt_clients:\n"
                 "  - client_id: c1\n"
                 "    broker_url: mqtt://h\n"
                 "    password:\n",
                 "config.yaml:4:14: mqtt_clients[0].password: a password is never read from the "
                 "YAML; use password_env (an environment variable) or password_file (a file "
                 "readable only by you)");
    unsetenv("TEST_CFG_UNSET");
    expect_error("mqtt_clients:\n"
                 "  - client_id: c1\n"
                 "    broker_url: mqtt://h\n"
                 "    password_env: TEST_CFG_UNSET\n",
                 "config.yaml:4:19: mqtt_clients[0].password_env: environment variable "
                 "TEST_CFG_UNSET is not set");
    char want[PATH_MAX + 200];
    snprintf(want, sizeof(want),
             "config.yaml:4:20: mqtt_clients[0].password_file: cannot read password file "
             "%s/nope.txt: No such file or directory",
             tmpdir);
    expect_error("mqtt_clients:\n"
                 "  - client_id: c1\n"
                 "    broker_url: mqtt://h\n"
                 "    password_file: nope.txt\n",
                 want);
}

static void test_cfg_password_never_from_yaml(void **state)
{
    (void)state;
    /* even with a valid password_env beside it, the YAML password is refused, not used */
    setenv("TEST_CFG_PW2", "fromenv", 1);
    cfg_diag d = {0};
    load_fails("mqtt_clients:\n"
               "  - {client_id: c1, broker_url: mqtt://h, password: inyaml, "
               "password_env: TEST_CFG_PW2}\n",
               &d); /* and no config */
    assert_int_equal(d.n_errors, 1);
    assert_null(strstr(d.errors[0], "inyaml"));
    cfg_diag_fini(&d);

    cfg_diag d2 = {0};
    cfg *c = load_ok("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, password_env: "
                     "TEST_CFG_PW2}\n",
                     &d2);
    assert_string_equal(c->clients[0].password, "fromenv");
    cfg_destroy(c);
    cfg_diag_fini(&d2);
}

static void test_cfg_warning_password_file_readable(void **state)
{
    (void)state;
    write_file("pw.txt", "abc\n", 0644);
    cfg_diag d = {0};
    cfg *c = load_ok("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, password_file: "
                     "pw.txt}\n",
                     &d);
    assert_string_equal(c->clients[0].password, "abc");
    char want[PATH_MAX + 200];
    snprintf(want, sizeof(want),
             "config.yaml:2:58: mqtt_clients[0].password_file: password file %s/pw.txt is "
             "readable by others (chmod 600 it)",
             tmpdir);
    assert_int_equal(d.n_warnings, 1);
    assert_string_equal(d.warnings[0], want);
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

static void test_cfg_error_callbacks(void **state)
{
    (void)state;
    char want[PATH_MAX + 100];
    snprintf(want, sizeof(want),
             "config.yaml:8:13: callbacks.x.module: module file %s/cb/missing.so does not exist",
             tmpdir);
    expect_error(CLIENTS "callbacks:\n"
                         "  x:\n"
                         "    module: cb/missing.so\n"
                         "    function: f\n",
                 want);
    expect_error(CLIENTS "callbacks:\n  x: {module: cb/a.so}\n",
                 "config.yaml:7:6: callbacks.x: missing required key \"function\"");
    expect_error(CLIENTS "callbacks:\n  x: cb/a.so\n",
                 "config.yaml:7:6: callbacks.x: expected a mapping, got a string");
}

static void test_cfg_error_rules(void **state)
{
    (void)state;
    expect_error(CLIENTS CALLBACKS "rules:\n"
                                   "  - rule: r1\n"
                                   "    topic: a/b\n"
                                   "    callback: \"handle_temprature_alert\"\n",
                 "config.yaml:12:15: rules[0].callback: no callback named "
                 "\"handle_temprature_alert\"");
    expect_error(CLIENTS CALLBACKS "rules:\n"
                                   "  - {rule: r1, callback: cb_a}\n"
                                   "  - {rule: r1, callback: cb_b}\n",
                 "config.yaml:11:12: rules[1].rule: duplicate rule name \"r1\" (first at line "
                 "10)");
    expect_error(CLIENTS CALLBACKS "processing_chains:\n"
                                   "  ch: [{step: format}]\n"
                                   "rules:\n"
                                   "  - {rule: r1, callback: cb_a, action: ch}\n",
                 "config.yaml:12:40: rules[0].action: a rule has either callback or action, not "
                 "both");
    expect_error(CLIENTS CALLBACKS "rules:\n"
                                   "  - rule: r1\n"
                                   "    topic: a/b\n",
                 "config.yaml:10:5: rules[0]: a rule needs a callback (a name under callbacks) or "
                 "an action (a name under processing_chains)");
    expect_error(CLIENTS CALLBACKS "rules:\n  - {rule: r1, action: nochain}\n",
                 "config.yaml:10:24: rules[0].action: no processing chain named \"nochain\"");
    expect_error(CLIENTS CALLBACKS "rules:\n  - {rule: r1, source_client_id: c9, callback: cb_a}\n",
                 "config.yaml:10:34: rules[0].source_client_id: no client named \"c9\"");
    expect_error(CLIENTS CALLBACKS "rules:\n  - {rule: r1, topic: a/b#, callback: cb_a}\n",
                 "config.yaml:10:23: rules[0].topic: malformed topic filter \"a/b#\" (+ and # "
                 "must fill a whole level, # only last)");
    expect_error(CLIENTS CALLBACKS "rules:\n  - {rule: r1, regex: \"a(b\", callback: cb_a}\n",
                 "config.yaml:10:27: rules[0].regex: bad regex: missing closing parenthesis at "
                 "offset 3");
    expect_error(CLIENTS CALLBACKS "rules:\n  - {rule: r1, execution_mode: async, callback: "
                                   "cb_a}\n",
                 "config.yaml:10:32: rules[0].execution_mode: expected sequential | threaded | "
                 "parallel | per_topic, got \"async\"");
    expect_error(CLIENTS CALLBACKS "rules:\n  - {rule: r1, on_error: retry, callback: cb_a}\n",
                 "config.yaml:10:26: rules[0].on_error: expected log | dead_letter, got \"retry\"");
}

static void test_cfg_error_condition_column(void **state)
{
    (void)state;
    /* the column points into the expression, where expr_compile stopped */
    cfg_diag d = {0};
    load_fails(CLIENTS CALLBACKS "rules:\n  - {rule: r1, condition: \"payload.t > \", callback: "
                                 "cb_a}\n",
               &d);
    assert_int_equal(d.n_errors, 1);
    /* the value starts at column 27 (its quote); the problem is at its end, 12 bytes in */
    assert_non_null(strstr(d.errors[0], "config.yaml:10:40: rules[0].condition: bad condition: "));
    cfg_diag_fini(&d);
}

static void test_cfg_error_chains(void **state)
{
    (void)state;
    expect_error(CLIENTS CALLBACKS "processing_chains:\n  empty: []\n",
                 "config.yaml:10:10: processing_chains.empty: a processing chain needs at least "
                 "one step");
    /* the list of kinds comes from the table of kinds (cfg_steps.h), in its order */
    char want[1024];
    int at = snprintf(want, sizeof(want),
                      "config.yaml:11:13: processing_chains.ch[0].step: unknown step "
                      "\"teleport\" (expected sampler, custom_processor, relay, format, filter, "
                      "batch, throttle, on_change");
    for (int k = CFG_STEP_AGGREGATE; k < CFG_STEP_N_KINDS; k++)
        at += snprintf(want + at, sizeof(want) - (size_t)at, "%s%s",
                       k + 1 < CFG_STEP_N_KINDS ? ", " : " or ",
                       cfg_step_kind_name((enum cfg_step_kind)k));
    snprintf(want + at, sizeof(want) - (size_t)at, ")");
    expect_error(CLIENTS CALLBACKS "processing_chains:\n  ch:\n    - step: teleport\n", want);
    expect_error(CLIENTS CALLBACKS "processing_chains:\n"
                                   "  ch:\n"
                                   "    - step: sampler\n"
                                   "      config: {callback: cb_a}\n",
                 "config.yaml:12:15: processing_chains.ch[0].config: missing required key "
                 "\"duration\"");
    expect_error(CLIENTS CALLBACKS "processing_chains:\n"
                                   "  ch:\n"
                                   "    - step: sampler\n"
                                   "      config: {duration: 0}\n",
                 "config.yaml:12:26: processing_chains.ch[0].config.duration: must be greater "
                 "than 0 seconds");
    expect_error(CLIENTS CALLBACKS "processing_chains:\n"
                                   "  ch:\n"
                                   "    - step: custom_processor\n"
                                   "      config: {callback: nope}\n",
                 "config.yaml:12:26: processing_chains.ch[0].config.callback: no callback named "
                 "\"nope\"");
    expect_error(CLIENTS CALLBACKS "processing_chains:\n"
                                   "  ch:\n"
                                   "    - step: relay\n"
                                   "      config: {target_client_id: c7}\n",
                 "config.yaml:12:34: processing_chains.ch[0].config.target_client_id: no client "
                 "named \"c7\"");
    expect_error(CLIENTS CALLBACKS "processing_chains:\n"
                                   "  ch:\n"
                                   "    - step: relay\n"
                                   "      config: {target_topic: out/+}\n",
                 "config.yaml:12:30: processing_chains.ch[0].config.target_topic: \"out/+\" is "
                 "not a valid topic name (no + or # when publishing)");
    expect_error(CLIENTS CALLBACKS "processing_chains:\n"
                                   "  ch:\n"
                                   "    - step: batch\n"
                                   "      config: {}\n",
                 "config.yaml:12:15: processing_chains.ch[0].config: a batch needs count, "
                 "interval or both");
    expect_error(CLIENTS CALLBACKS "processing_chains:\n"
                                   "  ch:\n"
                                   "    - step: throttle\n"
                                   "      config: {rate: 1, interval: 2}\n",
                 "config.yaml:12:15: processing_chains.ch[0].config: a throttle needs exactly one "
                 "of rate (messages per second) or interval (seconds between messages)");
    expect_error(CLIENTS CALLBACKS "processing_chains:\n"
                                   "  ch:\n"
                                   "    - step: aggregate\n"
                                   "      config: {fn: median, interval: 5}\n",
                 "config.yaml:12:20: processing_chains.ch[0].config.fn: expected count | min | "
                 "max | avg | sum, got \"median\"");
    expect_error(CLIENTS CALLBACKS "processing_chains:\n"
                                   "  ch:\n"
                                   "    - step: filter\n",
                 "config.yaml:11:7: processing_chains.ch[0].config: missing required key "
                 "\"condition\"");
    expect_error(CLIENTS CALLBACKS "processing_chains:\n"
                                   "  ch:\n"
                                   "    - step: sampler\n"
                                   "      config: {duration: 1, extra: [1, 2]}\n",
                 "config.yaml:12:36: processing_chains.ch[0].config.extra: expected a string or a "
                 "number (a callback reads parameters as text with mf_param), got a list");
}

static void test_cfg_error_yaml_level(void **state)
{
    (void)state;
    expect_error(CLIENTS "runtime:\n  workers: 2\n  workers: 3\n",
                 "config.yaml:8:3: duplicate key \"workers\" (first at line 7)");
    expect_error("mqtt_clients:\n  - &c {client_id: c1, broker_url: mqtt://h}\n  - *c\n",
                 "config.yaml:3:5: YAML aliases (*c) are not allowed in a configuration");
    expect_error("mqtt_clients: [\n", "config.yaml:2:1: YAML syntax error: did not find expected "
                                      "node content while parsing a flow node");
    expect_error("- a\n- b\n", "config.yaml:1:1: expected a mapping, got a list");
    expect_error("", "config.yaml:1:1: expected a mapping, got nothing");
    expect_error("callbacks: {}\n", "config.yaml:1:1: missing required key \"mqtt_clients\"");
    expect_error("a: 1\n---\nb: 2\n",
                 "config.yaml:2:1: only one YAML document is allowed in a configuration");
}

static void test_cfg_warning_stateful_chain_threaded(void **state)
{
    (void)state;
    cfg_diag d = {0};
    cfg *c = load_ok(CLIENTS CALLBACKS "processing_chains:\n"
                                       "  ch:\n"
                                       "    - step: sampler\n"
                                       "      config: {duration: 1, callback: cb_a}\n"
                                       "    - step: custom_processor\n"
                                       "      config: {callback: cb_b}\n"
                                       "rules:\n"
                                       "  - rule: r\n"
                                       "    action: ch\n"
                                       "    execution_mode: threaded\n",
                     &d);
    assert_true(c->chains[0].stateful);
    assert_int_equal(c->rules[0].exec_mode, CFG_EXEC_PARALLEL);
    assert_int_equal(d.n_warnings, 1);
    assert_string_equal(
        d.warnings[0], "config.yaml:18:21: rules[0].execution_mode: chain \"ch\" keeps state "
                       "(sampler, batch, throttle, on_change or aggregate) but runs threaded: each "
                       "worker sees only part of the messages; use sequential or per_topic");
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

static void test_cfg_many_errors_reported_at_once(void **state)
{
    (void)state;
    cfg_diag d = {0};
    load_fails(CLIENTS CALLBACKS "rules:\n"
                                 "  - {rule: a, callback: x1}\n"
                                 "  - {rule: b, callback: x2}\n"
                                 "runtime: {workers: 99}\n",
               &d);
    assert_int_equal(d.n_errors, 3);
    cfg_diag_fini(&d);
}

static void test_cfg_warning_rule_topic_not_subscribed(void **state)
{
    (void)state;
    cfg_diag d = {0};
    cfg *c = load_ok(CLIENTS CALLBACKS "rules:\n"
                                       "  - {rule: r1, topic: a/+, callback: cb_a}\n"
                                       "  - {rule: r2, source_client_id: c1, topic: sensors/temp, "
                                       "callback: cb_b}\n",
                     &d);
    assert_int_equal(d.n_warnings, 1);
    assert_string_equal(d.warnings[0], "config.yaml:11:45: rules[1].topic: no subscription of "
                                       "client \"c1\" matches \"sensors/temp\": the rule never "
                                       "runs");
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

/* issue 8, "check and run agree": what `run` refuses or degrades, `check` refuses first, with
 * file:line:column (both go through cfg_load, so an error here is exit 2 for both). */
static void test_cfg_error_yaml_tags(void **state)
{
    (void)state;
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: !evil mqtt://h}\n",
                 "config.yaml:2:33: unknown YAML tag !evil (supported: !ENV NAME [default], "
                 "!!str)");
    expect_error("mqtt_clients: !!python/object:os.system\n  - {client_id: c1}\n",
                 "config.yaml:1:15: unknown YAML tag !!python/object:os.system (supported: !ENV "
                 "NAME [default], !!str)");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: !ENV [a, b]}\n",
                 "config.yaml:2:33: !ENV takes a scalar \"NAME [default]\", not a list");
    /* !ENV NAME [default], as the Python framework's loader defines it ("${NAME}" too) */
    setenv("TEST_H8_URL", "mqtt://fromenv:1884", 1);
    unsetenv("TEST_H8_UNSET");
    cfg_diag d = {0};
    cfg *c = load_ok("mqtt_clients:\n"
                     "  - {client_id: !ENV TEST_H8_UNSET c9, broker_url: !ENV TEST_H8_URL}\n"
                     "  - {client_id: c2, broker_url: !ENV \"${TEST_H8_UNSET} mqtt://dflt\", "
                     "keepalive: !ENV TEST_H8_UNSET 7}\n",
                     &d);
    assert_string_equal(c->clients[0].client_id, "c9");
    assert_string_equal(c->clients[0].host, "fromenv");
    assert_int_equal(c->clients[0].port, 1884);
    assert_string_equal(c->clients[1].host, "dflt");
    assert_int_equal(c->clients[1].keepalive, 7);
    cfg_destroy(c);
    cfg_diag_fini(&d);
    /* unset and no default: null, as in Python, so a required key is missing */
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: !ENV TEST_H8_UNSET}\n",
                 "config.yaml:2:5: mqtt_clients[0]: missing required key \"broker_url\"");
    /* the standard !!str tag keeps working */
    c = load_ok("mqtt_clients:\n  - {client_id: !!str 123, broker_url: mqtt://h}\n", &d);
    assert_string_equal(c->clients[0].client_id, "123");
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

static void test_cfg_error_empty_number(void **state)
{
    (void)state;
    expect_error("mqtt_clients:\n  - client_id: c1\n    broker_url: mqtt://h\n    port:\n",
                 "config.yaml:4:10: mqtt_clients[0].port: expected an integer, got nothing "
                 "(remove the key for the default)");
    expect_error(CLIENTS "runtime:\n  workers:\n",
                 "config.yaml:7:11: runtime.workers: expected an integer, got nothing (remove the "
                 "key for the default)");
}

static void test_cfg_error_hostile_host(void **state)
{
    (void)state;
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: \"mqtt://h; rm -rf /\"}\n",
                 "config.yaml:2:33: mqtt_clients[0].broker_url: \"h; rm -rf \" is not a valid "
                 "host name (letters, digits, '-', '.', '_' or an IP address)");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: \"$(reboot)\"}\n",
                 "config.yaml:2:33: mqtt_clients[0].broker_url: \"$(reboot)\" is not a valid "
                 "host name (letters, digits, '-', '.', '_' or an IP address)");
    cfg_diag d = {0};
    cfg *c = load_ok("mqtt_clients:\n  - {client_id: c1, broker_url: \"mqtt://[::1]:1\"}\n"
                     "  - {client_id: c2, broker_url: \"ws://broker-1.example_x.org/mqtt\"}\n",
                     &d);
    assert_string_equal(c->clients[0].host, "::1");
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

static void test_cfg_error_url_credentials_not_echoed(void **state)
{
    (void)state;
    const char *want = "config.yaml:2:33: mqtt_clients[0].broker_url: user info in the URL is "
                       "refused (not shown here): put the user in username and the password in "
                       "password_env or password_file";
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: \"mqtt://u:s3cret@h:1\"}\n", want);
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: \"u:s3cret@h\"}\n", want);
    cfg_diag d = {0};
    load_fails("mqtt_clients:\n  - {client_id: c1, broker_url: \"mqtts://u:s3cret@h:x/p\"}\n", &d);
    for (size_t i = 0; i < d.n_errors; i++)
        assert_null(strstr(d.errors[i], "s3cret"));
    cfg_diag_fini(&d);
}

/* `status CONFIG` and `stop CONFIG` need the instance and the socket, not the secrets */
static void test_cfg_control_load_needs_no_secret(void **state)
{
    (void)state;
    unsetenv("TEST_H8_PW");
    cfg_diag d = {0};
    load_fails("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, password_env: "
               "TEST_H8_PW}\nruntime: {instance: x1, control_socket: /run/x1.sock}\n",
               &d);
    cfg_diag_fini(&d);
    cfg *c = NULL;
    assert_int_equal(cfg_load("config.yaml", CFG_LOAD_CONTROL, &c, &d), 0);
    assert_string_equal(c->runtime.instance, "x1");
    assert_string_equal(c->runtime.control_socket, "/run/x1.sock");
    assert_null(c->clients[0].password);
    cfg_destroy(c);
    cfg_diag_fini(&d);
}

static void test_cfg_error_runtime_paths(void **state)
{
    (void)state;
    {
        char y[600] = "mqtt_clients:\n  - {client_id: \"";
        for (int i = 0; i < 90; i++)
            strcat(y, "/");
        strcat(y, "\", broker_url: mqtt://h}\n");
        expect_error(y, "config.yaml:2:17: mqtt_clients[0].client_id: too long for its spool "
                        "folder name (at most 255 bytes once encoded; bytes outside A-Z a-z 0-9 . "
                        "_ - take three)");
    }
    char want[PATH_MAX + 200];
    write_file("afile", "x", 0600);
    snprintf(want, sizeof(want), "config.yaml:6:22: runtime.spool_dir: %s/afile is not a directory",
             tmpdir);
    expect_error(CLIENTS "runtime: {spool_dir: afile}\n", want);
    expect_error(CLIENTS "runtime: {dead_letter: {dir: /dev/null}}\n",
                 "config.yaml:6:30: runtime.dead_letter.dir: /dev/null is not a directory");
    char sock[200];
    memset(sock, 'a', sizeof(sock));
    memcpy(sock, "/tmp/", 5);
    sock[120] = 0;
    char yaml[400];
    snprintf(yaml, sizeof(yaml), CLIENTS "runtime: {control_socket: %s}\n", sock);
    expect_error(yaml, "config.yaml:6:27: runtime.control_socket: the path is 120 bytes, more "
                       "than the 107 a Unix socket path can hold");
}

/* A list or a mapping where a scalar belongs is a type error naming what was found, for
 * every scalar type (the decoder must not read a list as text). */
static void test_cfg_error_scalar_given_a_collection(void **state)
{
    (void)state;
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, port: [1, 2]}\n",
                 "config.yaml:2:49: mqtt_clients[0].port: expected an integer, got a list");
    expect_error("mqtt_clients:\n  - {client_id: c1, broker_url: mqtt://h, keepalive: {a: 1}}\n",
                 "config.yaml:2:54: mqtt_clients[0].keepalive: expected an integer, got a mapping");
    expect_error(CLIENTS "runtime: {overflow: [block]}\n",
                 "config.yaml:6:21: runtime.overflow: expected a string, got a list");
    expect_error(CLIENTS "runtime: {ring_size: [1]}\n",
                 "config.yaml:6:22: runtime.ring_size: expected a size in bytes, got a list");
    expect_error(CLIENTS "runtime: {stats_interval: [1]}\n",
                 "config.yaml:6:27: runtime.stats_interval: expected a duration in seconds, got "
                 "a list");
}

/* A size whose unit multiplies it past 64 bits is out of range, not wrapped around:
 * (2^34 + 1) GiB would wrap to exactly 1 GiB, a valid ring size. */
static void test_cfg_error_size_overflow(void **state)
{
    (void)state;
    expect_error(CLIENTS "runtime: {ring_size: 17179869185G}\n",
                 "config.yaml:6:22: runtime.ring_size: 17179869185G is out of range "
                 "65536..1073741824");
}

/* "Did you mean" reaches two edits: a swapped pair of letters is two. */
static void test_cfg_error_did_you_mean_two_edits(void **state)
{
    (void)state;
    expect_error("mqtt_clients:\n  - client_di: c1\n    broker_url: mqtt://h\n",
                 "config.yaml:2:5: mqtt_clients[0].client_di: unknown key (did you mean "
                 "\"client_id\"?)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST_ST(test_cfg_error_unknown_keys),
        TEST_ST(test_cfg_error_types_and_ranges),
        TEST_ST(test_cfg_error_clients),
        TEST_ST(test_cfg_error_client_details),
        TEST_ST(test_cfg_error_password),
        TEST_ST(test_cfg_password_never_from_yaml),
        TEST_ST(test_cfg_warning_password_file_readable),
        TEST_ST(test_cfg_error_callbacks),
        TEST_ST(test_cfg_error_rules),
        TEST_ST(test_cfg_error_condition_column),
        TEST_ST(test_cfg_error_chains),
        TEST_ST(test_cfg_error_yaml_level),
        TEST_ST(test_cfg_warning_stateful_chain_threaded),
        TEST_ST(test_cfg_many_errors_reported_at_once),
        TEST_ST(test_cfg_error_yaml_tags),
        TEST_ST(test_cfg_error_empty_number),
        TEST_ST(test_cfg_error_hostile_host),
        TEST_ST(test_cfg_error_url_credentials_not_echoed),
        TEST_ST(test_cfg_control_load_needs_no_secret),
        TEST_ST(test_cfg_error_runtime_paths),
        TEST_ST(test_cfg_warning_rule_topic_not_subscribed),
        TEST_ST(test_cfg_error_scalar_given_a_collection),
        TEST_ST(test_cfg_error_size_overflow),
        TEST_ST(test_cfg_error_did_you_mean_two_edits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
