# 32-dead-letter-store: dead-lettered messages reach the dead-letter store (DESIGN §2: "moved
# to the dead-letter store and skipped"; reference.yaml runtime.dead_letter: dir and/or topic).
#
# runtime.dead_letter: {dir: <tmp>/dead, topic: "dead/letters", client_id: "c1"},
# max_attempts 2. Two sequential rules:
#   crashy  in/crash/#  abort_on (abort() on a payload containing "ABORT"), echo to out/crash
#   failing in/fail/#   fail (returns 7), on_error: dead_letter
# Published: in/crash "keep-1", "ABORT-poison", "keep-2"; in/fail "fail-1", "fail-2".
# Asserted: keep-1 and keep-2 come out; the workers' dead counters add up to 3; a message
# carrying each of ABORT-poison, fail-1 and fail-2 arrives on dead/letters, and each of them
# is found in a file under the dead-letter dir.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so" "$IT_CB/abort_on.so" "$MOSQUITTO_PUB" "$MOSQUITTO_SUB"
it_broker || lib_fail "broker did not start"

IT_DEAD_LETTER="{dir: \"$LIB_TMP/dead\", topic: \"dead/letters\", client_id: \"c1\"}" it_conf \
    'topics: [{name: "in/#", qos: 1}]' -- 2 "max_attempts: 2" <<EOF
callbacks:
  abort: {module: "$IT_CB/abort_on.so", function: "abort_on"}
  fail: {module: "$IT_CB/echo.so", function: "fail"}
rules:
  - {rule: "crashy", topic: "in/crash/#", action: "crash_chain", execution_mode: "sequential"}
  - {rule: "failing", topic: "in/fail/#", callback: "fail", execution_mode: "sequential",
     on_error: "dead_letter"}
processing_chains:
  crash_chain:
    - {step: "custom_processor", config: {callback: "abort", topic: "out/crash"}}
EOF
"$MQTTFLOW" check "$conf" >"$LIB_TMP/check.log" 2>&1 || {
    cat "$LIB_TMP/check.log" >&2
    lib_fail "mqttflow check refused the config"
}
it_start "$conf"
it_msub out "$MQTT_PORT" out/probe 'out/#' 'dead/#'

pub() { # TOPIC PAYLOAD...
    local t=$1
    shift
    printf '%s\n' "$@" | "$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$t" -l ||
        lib_fail "mosquitto_pub failed"
}
pub in/crash/a keep-1 ABORT-poison keep-2
pub in/fail/a fail-1 fail-2

it_until 20 '[[ $(it_lines out out/crash | grep -c keep-) -ge 2 ]]' ||
    lib_fail "keep-1 and keep-2 did not both come out: $(it_lines out out/crash)"
dead_total() {
    local w s=0 n
    for w in 0 1; do
        n=$(it_metric "$conf" mqttflow_stage_dead_total worker "$w")
        s=$((s + ${n:-0}))
    done
    echo "$s"
}
it_until 20 '[[ $(dead_total) -ge 3 ]]' || lib_fail "dead counters add up to $(dead_total), want 3"
expect_eq "dead-lettered by the workers" "$(dead_total)" 3

# the counters say the workers handed all 3 on: give the relay 10 s to store and publish them
it_until 10 '[[ $(it_lines out dead/letters | wc -l) -ge 3 ]]'
missing=()
for m in ABORT-poison fail-1 fail-2; do
    it_lines out dead/letters | grep -q -- "$m" || missing+=("topic:$m")
    grep -rqs -- "$m" "$LIB_TMP/dead" || missing+=("dir:$m")
done
lib_log "on dead/letters: $(it_lines out dead/letters | head -n 5)"
lib_log "in the dead-letter dir: $(find "$LIB_TMP/dead" -type f | head -n 5)"
[[ ${#missing[@]} -eq 0 ]] ||
    lib_fail "dead letters missing from the store (runtime.dead_letter topic/dir): ${missing[*]}"

it_stop "$conf"
lib_log "PASS"
