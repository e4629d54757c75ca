# 75-ingress-broker-down: issue 8 "Clearer errors". A source broker that is down at start (or
# never answers CONNACK) does not hold the instance in "starting" while the ingress is
# SIGKILLed every 30 s: the ingress reports ready once its first attempt failed and keeps
# retrying; the instance runs, status shows the ingress not connected (CONN 0), the log says
# what happened and what to do, and once the broker is up the messages flow.
# Broker 2 (port reserved, started only later) is c2's source; broker 1 is up for c1.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker did not start"
B2_PORT=$(free_port) || lib_fail "no free port"

it_conf 'topics: [{name: "in/#", qos: 1}]' -- 1 <<EOF2
  - client_id: "c2"
    broker_url: "mqtt://127.0.0.1"
    port: $B2_PORT
    reconnect: {min_delay: 0.1, max_delay: 0.5}
    topics: [{name: "in2/#", qos: 1}]
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
rules:
  - {rule: "e2", source_client_id: "c2", topic: "in2/#", action: "out"}
processing_chains:
  out:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
    - {step: "relay", config: {target_client_id: "c1", qos: 1}}
EOF2
it_start "$conf" 10
expect_eq "c2 connected" "$(it_metric "$conf" mqttflow_stage_connections ingress c2)" 0
# paho: "... failed: the broker could not be reached ..."; io_uring: "... failed (the broker
# could not be reached: connect(): ...)"
grep -q "ingress c2 .*failed.*the broker could not be reached" "$IT_LOG" ||
    lib_fail "no clear connect error: $(grep 'ingress c2' "$IT_LOG" | tail -n 3)"

broker_start b2 "$B2_PORT" || lib_fail "broker 2 did not start"
it_until 15 '[[ $(it_metric "$conf" mqttflow_stage_connections ingress c2) == 1 ]]' ||
    lib_fail "ingress c2 did not connect once its broker was up"
it_sub sub -p "$MQTT_PORT" -t 'out/#' -q 1 -n 50 -I 15
it_mfpub pub -p "$B2_PORT" -t in2/a -n 50 -q 1 -i 4
res=$(it_sub_result sub 30)
lib_log "sub: $res"
expect_eq "lost" "$(result_field "$LIB_TMP/sub.log" lost)" 0
expect_eq "ingress c2 restarts" "$(it_metric "$conf" mqttflow_stage_restarts_total ingress c2)" 0
it_stop "$conf"
lib_log "PASS"
