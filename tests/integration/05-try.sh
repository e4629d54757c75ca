#!/usr/bin/env bash
# 05-try: `mqttflow try`, one process, no broker, the real callbacks.
#   - the example config: a temperature reading matches the alert rule (its publish shown) and
#     the sampling chain (held by the sampler until the input ends, then the window closes:
#     sampler and custom_processor outputs, the relay's publish on client2); a topic no rule
#     matches says so; no segment of any instance is made;
#   - a dead-letter file written by a real pipeline (a rule whose callback fails, on_error:
#     dead_letter; a text and a binary payload) replayed with --file: against the broken
#     callback exit 1 with the error, against the fixed one exit 0 with each message's
#     publish, payloads intact;
#   - hand-written lines: missing fields take defaults, a truncated payload is said to be one,
#     a line without a topic (and no --topic) or that is not JSON is reported with its line
#     number and the rest still run (exit 1), an incomplete last line is reported as such.
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so" "$MOSQUITTO_PUB"
for so in "$IT_EXAMPLES"/callbacks/*.c; do
    [[ -f ${so%.c}.so ]] || { echo "SKIP: ${so%.c}.so not built"; exit 77; }
done

shm_before=$(find /dev/shm -maxdepth 1 -name 'mqttflow.*' | wc -l)
out=$LIB_TMP/try.out
"$MQTTFLOW" try "$IT_EXAMPLES/config.yaml" --topic sensors/temperature --payload 35.5 >"$out" 2>"$LIB_TMP/try.err"
expect_eq "try exit" "$?" 0
for want in 'message 1: client client1 topic "sensors/temperature" qos 0 payload "35.5"' \
    '  rule simple_temperature_alert matched: callback handle_temperature_alert' \
    'would publish on client1: topic "alerts/temperature" qos 0 retain 0 payload "{\"alert\":\"high_temperature\",\"temperature\":35.5' \
    '  rule temperature_sampling matched: chain temperature_sampling_and_processing_chain' \
    '    nothing emitted (held by a window until it closes, or dropped by a step)' \
    'end of input: closing open windows' \
    '    rule temperature_sampling, step 0 (sampler) emitted topic "sensors/temperature/sample" payload "{\"count\":1,\"avg\":35.500' \
    '    rule temperature_sampling, step 1 (custom_processor) emitted' \
    'would publish on client2: topic "processed/temperature"' \
    '1 message(s), 1 matched a rule, 2 publish(es), 0 callback error(s)'; do
    grep -qF -- "$want" "$out" || lib_fail "try output lacks: $want
$(cat "$out")"
done
# the window's publish comes after the end of the input, the alert's before
awk '/end of input/ {e = NR} /processed\/temperature/ {p = NR} /alerts\/temperature/ {a = NR}
     END {exit !(a < e && e < p)}' "$out" || lib_fail "order of the try output: $(cat "$out")"

"$MQTTFLOW" try "$IT_EXAMPLES/config.yaml" --topic other/topic --payload x --client client2 >"$out" 2>&1
expect_eq "try exit (no match)" "$?" 0
grep -q '^message 1: client client2 topic "other/topic"' "$out" || lib_fail "--client: $(cat "$out")"
grep -q '^  no rule matched$' "$out" || lib_fail "no 'no rule matched': $(cat "$out")"
"$MQTTFLOW" try "$IT_EXAMPLES/config.yaml" --topic 'a/+' --payload x >/dev/null 2>&1
expect_eq "try with a wildcard topic" "$?" 2
"$MQTTFLOW" try "$IT_EXAMPLES/config.yaml" --topic a --payload x --client nobody >/dev/null 2>&1
expect_eq "try with an unknown client" "$?" 2
expect_eq "segments made by try" "$(find /dev/shm -maxdepth 1 -name 'mqttflow.*' | wc -l)" "$shm_before"

# ---- dead letters from a real pipeline
it_broker || lib_fail "no broker"
conf_for() { # CALLBACK
    it_conf_print 'topics: [{name: "in/#", qos: 1}]' -- 1 <<EOF
callbacks:
  cb: {module: "$IT_CB/echo.so", function: "$1"}
rules:
  - {rule: "r", source_client_id: "c1", topic: "in/#", action: "ch", on_error: "dead_letter"}
processing_chains:
  ch:
    - step: "custom_processor"
      config: {callback: "cb", prefix: "fixed/"}
EOF
}
broken=$LIB_TMP/broken.yaml fixed=$LIB_TMP/fixed.yaml
conf_for fail >"$broken"
# the same instance, the callback fixed (a second conf_for would name another instance)
sed 's/function: "fail"/function: "echo"/' "$broken" >"$fixed"
it_start "$broken"
"$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t in/text -m 'hello "world"' || lib_fail "pub"
printf 'bin\377\000\001' >"$LIB_TMP/bin.payload"
"$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t in/bin -f "$LIB_TMP/bin.payload" || lib_fail "pub"
dl=$LIB_TMP/dead/dead-letters.jsonl
it_until 30 '[[ -f $dl && $(wc -l <"$dl") -ge 2 ]]' || lib_fail "no 2 dead letters: $(cat "$dl" 2>&1)"
it_stop "$broken"
grep -q '"payload_b64"' "$dl" || lib_fail "the binary payload was not stored as base64: $(cat "$dl")"

"$MQTTFLOW" try "$broken" --file "$dl" >"$out" 2>&1
expect_eq "replay against the broken callback" "$?" 1
grep -q "error: the callback returned 7 (on_error: dead_letter)" "$out" || lib_fail "no error shown: $(cat "$out")"
grep -q "dead letter of .*, rule r: " "$out" || lib_fail "the dead letter's context is not shown: $(cat "$out")"

"$MQTTFLOW" try "$fixed" --file "$dl" >"$out" 2>&1
expect_eq "replay against the fixed callback" "$?" 0
grep -qF 'would publish on c1: topic "fixed/in/text" qos 1 retain 0 payload "hello \"world\""' "$out" ||
    lib_fail "the text dead letter's replay: $(cat "$out")"
grep -qF 'would publish on c1: topic "fixed/in/bin" qos 1 retain 0 payload "bin\xff\x00\x01"' "$out" ||
    lib_fail "the binary dead letter's replay: $(cat "$out")"
grep -q '^2 message(s), 2 matched a rule, 2 publish(es), 0 callback error(s)$' "$out" ||
    lib_fail "replay summary: $(cat "$out")"

# ---- hand-written lines: defaults, truncation, bad lines
hand=$LIB_TMP/hand.jsonl
{
    echo '{"topic": "in/min"}'
    echo '{"topic": "in/cut", "payload": "abc", "payload_len": 10, "qos": 1}'
    echo '{"payload": "no topic"}'
    echo 'not json'
    printf '{"topic": "in/last", "payl'
} >"$hand"
"$MQTTFLOW" try "$fixed" --file "$hand" >"$out" 2>"$LIB_TMP/hand.err"
expect_eq "hand-written lines exit" "$?" 1
grep -qF 'message 1: client c1 topic "in/min" qos 0 payload ""' "$out" || lib_fail "defaults: $(cat "$out")"
grep -qF "hand.jsonl:2: payload truncated: 3 of 10 bytes (run as it is)" "$out" ||
    lib_fail "truncation not said: $(cat "$out")"
grep -qF 'would publish on c1: topic "fixed/in/cut" qos 1 retain 0 payload "abc"' "$out" ||
    lib_fail "the truncated message did not run: $(cat "$out")"
grep -qF "hand.jsonl:3: no topic (give --topic for lines without one)" "$LIB_TMP/hand.err" ||
    lib_fail "line 3: $(cat "$LIB_TMP/hand.err")"
grep -q "hand.jsonl:4:[0-9]*: not a JSON object" "$LIB_TMP/hand.err" || lib_fail "line 4: $(cat "$LIB_TMP/hand.err")"
grep -qF "hand.jsonl:5: an incomplete last line" "$LIB_TMP/hand.err" || lib_fail "line 5: $(cat "$LIB_TMP/hand.err")"
"$MQTTFLOW" try "$fixed" --file "$hand" --topic in/default >"$out" 2>/dev/null
grep -qF 'message 3: client c1 topic "in/default" qos 0 payload "no topic"' "$out" ||
    lib_fail "--topic as the default topic: $(cat "$out")"

lib_log "PASS"
exit 0
