# 51-tap: `mqttflow tap` on a running instance under load (tap.h, tap_cli.h).
#
# One echo rule (in/# -> out/<topic> on the same broker), two workers. Asserted:
# - three taps at once (ingress, rule RULE, out) each print one line per message of a run of
#   3000 published QoS 1 messages, with the client, the rule (rule, out) and the topic, while
#   the subscriber gets all 3000 (0 lost);
# - --topic keeps only the matching topics; a binary payload prints as hex, text as text;
#   a second tap at a busy point and an unknown rule are refused (exit 1);
# - a tap killed with kill -9 in the middle of 5000 messages: the pipeline delivers all of
#   them (0 lost) and the supervisor removes the tap's segment;
# - a slow tap (SIGSTOPped while 20000 messages pass, then continued): the subscriber gets
#   all 20000, the tap reports "# dropped" lines and its shown + dropped = 20000;
# - a tap ends by itself, exit 0, when the instance stops.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker did not start"
it_conf 'topics:' '  - {name: "in/#", qos: 1}' -- 2 <<EOF
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
rules:
  - {rule: "echo_rule", topic: "in/#", action: "echo_chain"}
processing_chains:
  echo_chain:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
    - {step: "relay", config: {target_client_id: "c1", qos: 1}}
EOF
it_start "$conf"

# tap_start NAME ARGS...: mqttflow tap -c CONF ARGS in the background ($NAME_PID), output in
# $LIB_TMP/NAME.out, stderr in NAME.err; waits until it says it is attached
tap_start() {
    local name=$1
    shift
    : >"$LIB_TMP/$name.err"
    "$MQTTFLOW" tap -c "$conf" "$@" >"$LIB_TMP/$name.out" 2>"$LIB_TMP/$name.err" &
    lib_track $!
    printf -v "${name}_PID" '%s' "$!"
    it_until 10 'grep -q "attached at" "$LIB_TMP/$name.err"' ||
        lib_fail "tap $name did not attach: $(cat "$LIB_TMP/$name.err")"
}
# tap_end NAME: SIGINT, exit 0 expected; TAP_SD = its "N shown, M dropped" as "N M" (not in
# a $(...): the tap must be this shell's child to be waited for)
tap_end() {
    local pidvar=${1}_PID
    kill -INT "${!pidvar}"
    it_wait_exit "${!pidvar}" 10 || lib_fail "tap $1 did not end on SIGINT"
    [[ $IT_RC == 0 ]] || lib_fail "tap $1 exited with $IT_RC: $(cat "$LIB_TMP/$1.err")"
    TAP_SD=$(sed -n 's/.*: \([0-9]*\) message(s) shown, \([0-9]*\) dropped$/\1 \2/p' "$LIB_TMP/$1.err")
}
tap_lines() { # NAME PATTERN: lines of NAME's output matching PATTERN
    grep -c -- "$2" "$LIB_TMP/$1.out"
}

# ---- three points at once, under load ----
tap_start t_in --at ingress
tap_start t_rule echo_rule
tap_start t_out --at out
it_sub sub -p "$MQTT_PORT" -t 'out/#' -q 1 -n 3000 -I 10
it_mfpub p1 -p "$MQTT_PORT" -t in/load -n 3000 -q 1 -i 1
it_sub_result sub 60 >/dev/null
expect_eq "delivered with three taps" "$(result_field "$LIB_TMP/sub.log" unique)" 3000
expect_eq "lost with three taps" "$(result_field "$LIB_TMP/sub.log" lost)" 0
it_until 10 '(( $(tap_lines t_out "out/in/load") >= 3000 ))' || true
expect_eq "ingress tap lines" "$(tap_lines t_in ' ingress client=c1 qos=1 topic="in/load" ')" 3000
expect_eq "rule tap lines" "$(tap_lines t_rule ' rule rule=echo_rule client=c1 qos=1 topic="in/load" ')" 3000
expect_eq "out tap lines" "$(tap_lines t_out ' out rule=echo_rule client=c1 qos=1 topic="out/in/load" ')" 3000
tap_end t_in
expect_eq "ingress tap shown/dropped" "$TAP_SD" "3000 0"
tap_end t_rule
expect_eq "rule tap shown/dropped" "$TAP_SD" "3000 0"
tap_end t_out
expect_eq "out tap shown/dropped" "$TAP_SD" "3000 0"

# ---- --topic, text and hex, refusals ----
tap_start t_topic --at ingress --topic 'in/b/#'
"$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t in/a -m 'not shown'
"$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t in/b/1 -m 'say "hi"'
printf '\x01\x02\xff' | "$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t in/b/2 -s
it_until 10 '[[ $(wc -l <"$LIB_TMP/t_topic.out") == 2 ]]' || lib_fail "--topic tap: $(cat "$LIB_TMP/t_topic.out")"
grep -q 'topic="in/b/1" payload="say \\"hi\\"" (8 bytes)$' "$LIB_TMP/t_topic.out" ||
    lib_fail "text payload: $(cat "$LIB_TMP/t_topic.out")"
grep -q 'topic="in/b/2" hex=0102ff (3 bytes)$' "$LIB_TMP/t_topic.out" ||
    lib_fail "binary payload: $(cat "$LIB_TMP/t_topic.out")"
"$MQTTFLOW" tap -c "$conf" --at ingress >/dev/null 2>"$LIB_TMP/busy.err" </dev/null &&
    lib_fail "a second tap at ingress was accepted"
grep -q "already attached at ingress" "$LIB_TMP/busy.err" || lib_fail "busy: $(cat "$LIB_TMP/busy.err")"
"$MQTTFLOW" tap -c "$conf" no_such_rule >/dev/null 2>"$LIB_TMP/norule.err" &&
    lib_fail "a tap of an unknown rule was accepted"
grep -q 'no rule "no_such_rule"' "$LIB_TMP/norule.err" || lib_fail "no rule: $(cat "$LIB_TMP/norule.err")"
tap_end t_topic

# ---- a tap killed with kill -9 under load ----
tap_start t_kill --at rule
it_sub sub2 -p "$MQTT_PORT" -t 'out/#' -q 1 -n 5000 -I 10
"$MFPUB" -p "$MQTT_PORT" -t in/kill -n 5000 -q 1 -i 2 >"$LIB_TMP/p2.log" 2>&1 &
pub=$!
lib_track "$pub"
it_until 20 '(( $(wc -l <"$LIB_TMP/t_kill.out") >= 500 ))' || lib_fail "the tap saw nothing of the load"
kill -9 "$t_kill_PID"
it_until 10 '[[ ! -e /dev/shm/mqttflow.$IT_INSTANCE.tap.rule ]]' ||
    lib_fail "the tap segment of a killed reader is still there"
it_wait_exit "$pub" 60 || lib_fail "mfpub did not finish"
it_sub_result sub2 60 >/dev/null
expect_eq "delivered across a kill -9 of the tap" "$(result_field "$LIB_TMP/sub2.log" unique)" 5000
expect_eq "lost across a kill -9 of the tap" "$(result_field "$LIB_TMP/sub2.log" lost)" 0
grep -q "tap at rule detached" "$IT_LOG" || lib_fail "no detach in the supervisor's log"

# ---- a slow tap: drops its copies, says how many; the pipeline loses nothing ----
tap_start t_slow --at out
kill -STOP "$t_slow_PID"
it_sub sub3 -p "$MQTT_PORT" -t 'out/#' -q 1 -n 20000 -I 10
it_mfpub p3 -p "$MQTT_PORT" -t in/slow -n 20000 -q 1 -i 3 -s 200
it_sub_result sub3 120 >/dev/null
expect_eq "delivered beside a stopped tap" "$(result_field "$LIB_TMP/sub3.log" unique)" 20000
expect_eq "lost beside a stopped tap" "$(result_field "$LIB_TMP/sub3.log" lost)" 0
kill -CONT "$t_slow_PID"
it_until 20 'grep -q "^# dropped [0-9]* message(s): this tap could not keep up" "$LIB_TMP/t_slow.out"' ||
    lib_fail "the slow tap did not report drops: $(tail -n 3 "$LIB_TMP/t_slow.out")"
tap_end t_slow
read -r shown dropped <<<"$TAP_SD"
lib_log "slow tap: $shown shown, $dropped dropped"
[[ $dropped -gt 0 ]] || lib_fail "the stopped tap dropped nothing"
expect_eq "slow tap shown + dropped" "$((shown + dropped))" 20000
expect_eq "slow tap lines" "$(tap_lines t_slow ' out rule=echo_rule ')" "$shown"

# ---- the instance stops: the tap ends with it ----
tap_start t_stop --at ingress
it_stop "$conf"
it_wait_exit "$t_stop_PID" 10 || lib_fail "the tap outlived the instance"
expect_eq "tap exit code at the stop" "$IT_RC" 0
grep -q "the instance stopped" "$LIB_TMP/t_stop.err" || lib_fail "stop: $(cat "$LIB_TMP/t_stop.err")"
lib_log "PASS"
