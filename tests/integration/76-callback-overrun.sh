# 76-callback-overrun: issue 8 item 4. A callback that writes past its payload must not corrupt
# the worker's input ring (the messages queued behind it were lost and the worker ended
# "failed"): ring data is mapped read-only in the processes that only read it, so the write
# faults at once, the worker restarts, and the message that did it is dead-lettered after
# runtime.max_attempts like any poison message; every other message is delivered.
# Published (QoS 1, one batch so they queue behind each other): m1, SCRIBBLE, m2 .. m7.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/scribble.so" "$MOSQUITTO_PUB" "$MOSQUITTO_SUB"
it_broker || lib_fail "broker did not start"

it_conf 'topics: [{name: "in/#", qos: 1}]' -- 1 "max_attempts: 2" <<EOF2
callbacks:
  scribble: {module: "$IT_CB/scribble.so", function: "scribble"}
rules:
  - {rule: "s", topic: "in/#", action: "out", execution_mode: "sequential"}
processing_chains:
  out:
    - {step: "custom_processor", config: {callback: "scribble", topic: "out/s"}}
EOF2
it_start "$conf"
it_msub out "$MQTT_PORT" out/probe 'out/#'
printf '%s\n' m1 SCRIBBLE m2 m3 m4 m5 m6 m7 |
    "$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t in/a -l || lib_fail "publish failed"
it_until 30 '[[ $(it_lines out out/s | grep -c "^m") -ge 7 ]]' ||
    lib_fail "not every good message came out: $(it_lines out out/s | tr '\n' ' '); $(it_status "$conf")"
expect_eq "good messages out" "$(it_lines out out/s | grep -c '^m')" 7
it_until 10 'grep -qs SCRIBBLE "$LIB_TMP/dead/dead-letters.jsonl"' ||
    lib_fail "the scribbling message was not dead-lettered"
it_status "$conf" | grep -q "worker 0 .* running" || lib_fail "worker 0 is not running: $(it_status "$conf")"
it_stop "$conf"
lib_log "PASS"
