# 34-chain-steps: built-in steps chained through the real pipeline, relayed to another broker.
#
# Source c1 on broker 1, target c2 on broker 2. Two sequential rules:
#   rooms   sensors/+/temp : filter payload.temp > 0 -> format (topic "room/{topic[1]}",
#                            payload {"room":"{topic[1]}","t":{payload.temp}}) -> batch of 3
#                            -> relay to c2, QoS 1, retained
#   changes sensors/+/state: on_change -> relay to c2 as "state/changes"
# Published on sensors/kitchen/temp: temp 5, -1, 7, 9, -3, 11, 13, 15; on sensors/door/state:
# open open closed closed closed open. Asserted (JSON compared with jq): exactly two batches
# on room/kitchen, [5,7,9] and [11,13,15] as {"room":"kitchen","t":N}; a new subscriber gets
# the second batch as a retained message; state/changes carries open, closed, open and nothing
# else; clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

command -v jq >/dev/null || {
    echo "SKIP: jq not installed"
    exit 77
}
it_require "$MOSQUITTO_PUB" "$MOSQUITTO_SUB"
it_broker || lib_fail "broker 1 did not start"
it_broker b2 || lib_fail "broker 2 did not start"

it_conf 'topics: [{name: "sensors/+/temp", qos: 1}, {name: "sensors/+/state", qos: 1}]' -- 2 <<EOF
  - client_id: "c2"
    broker_url: "mqtt://127.0.0.1"
    port: $b2_PORT
rules:
  - {rule: "rooms", topic: "sensors/+/temp", action: "rooms_chain", execution_mode: "sequential"}
  - {rule: "changes", topic: "sensors/+/state", action: "changes_chain",
     execution_mode: "sequential"}
processing_chains:
  rooms_chain:
    - {step: "filter", config: {condition: "payload.temp > 0"}}
    - step: "format"
      config:
        topic_template: "room/{topic[1]}"
        payload_template: '{"room":"{topic[1]}","t":{payload.temp}}'
    - {step: "batch", config: {count: 3}}
    - {step: "relay", config: {target_client_id: "c2", qos: 1, retain: true}}
  changes_chain:
    - {step: "on_change", config: {}}
    - {step: "relay", config: {target_client_id: "c2", target_topic: "state/changes", qos: 1}}
EOF
"$MQTTFLOW" check "$conf" >"$LIB_TMP/check.log" 2>&1 || {
    cat "$LIB_TMP/check.log" >&2
    lib_fail "mqttflow check refused the config"
}
it_start "$conf"
it_msub out "$b2_PORT" room/probe 'room/#' 'state/#'

pub() { # TOPIC PAYLOAD...
    local t=$1
    shift
    printf '%s\n' "$@" | "$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$t" -l ||
        lib_fail "mosquitto_pub failed"
}
pub sensors/kitchen/temp '{"temp":5}' '{"temp":-1}' '{"temp":7}' '{"temp":9}' '{"temp":-3}' \
    '{"temp":11}' '{"temp":13}' '{"temp":15}'
pub sensors/door/state open open closed closed closed open

it_until 20 '[[ $(it_lines out room/kitchen | wc -l) -ge 2 ]]' ||
    lib_fail "batches on room/kitchen: $(it_lines out room/kitchen | wc -l) of 2 in 20 s"
it_until 20 '[[ $(it_lines out state/changes | wc -l) -ge 3 ]]' ||
    lib_fail "state changes: $(it_lines out state/changes | wc -l) of 3 in 20 s"
# one more state message after the expected ones: when it comes out, nothing else was between
pub sensors/door/state closed
it_until 20 '[[ $(it_lines out state/changes | wc -l) -ge 4 ]]' ||
    lib_fail "the last state change did not come out"

mapfile -t batches < <(it_lines out room/kitchen)
lib_log "batches: ${batches[*]}"
expect_eq "number of batches" "${#batches[@]}" 2
want() { # N...: the expected batch, compact JSON
    local n out=""
    for n in "$@"; do out+="${out:+,}{\"room\":\"kitchen\",\"t\":$n}"; done
    echo "[$out]"
}
expect_eq "batch 1" "$(jq -c . <<<"${batches[0]}" 2>&1)" "$(want 5 7 9)"
expect_eq "batch 2" "$(jq -c . <<<"${batches[1]}" 2>&1)" "$(want 11 13 15)"
expect_eq "state changes" "$(it_lines out state/changes | tr '\n' ' ')" "open closed open closed "

retained=$("$MOSQUITTO_SUB" -h 127.0.0.1 -p "$b2_PORT" -t room/kitchen -C 1 -W 5 -F '%r %p' 2>&1)
lib_log "new subscriber got: $retained"
[[ ${retained%% *} == 1 ]] || lib_fail "no retained message on room/kitchen: '$retained'"
expect_eq "retained batch" "$(jq -c . <<<"${retained#* }" 2>&1)" "$(want 11 13 15)"

it_stop "$conf"
lib_log "PASS"
