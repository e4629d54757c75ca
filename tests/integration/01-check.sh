#!/usr/bin/env bash
# 01_check: `mqttflow check` and the launcher's refusal of a bad config.
#   - the example config and a minimal one: exit 0, the summary on stdout, nothing on stderr
#     that is an error;
#   - a config with mistakes: exit 2, every error as FILE:LINE:COL: ... on stderr, nothing on
#     stdout;
#   - a callback module that does not exist / a function it does not export: exit 2 (check
#     dlopens and resolves);
#   - scripts/mqttflow-launch with a bad config: exit 2 before any process or segment exists.
. "$(dirname "$0")/lib.sh"

[[ -x $MQTTFLOW ]] || { echo "SKIP: $MQTTFLOW not built"; exit 77; }
for so in config/examples/callbacks/*.c; do
    [[ -f ${so%.c}.so ]] || { echo "SKIP: ${so%.c}.so not built"; exit 77; }
done

# --- good: the example config as shipped
"$MQTTFLOW" check config/examples/config.yaml >"$LIB_TMP/out" 2>"$LIB_TMP/err"
expect_eq "check example exit" "$?" 0
grep -q 'instance "example"' "$LIB_TMP/out" || lib_fail "no summary on stdout: $(cat "$LIB_TMP/out")"
grep -q 'client1' "$LIB_TMP/out" || lib_fail "summary without the clients"
grep -q 'temperature_sampling_and_processing_chain' "$LIB_TMP/out" || lib_fail "summary without the chain"

# --- good: a minimal config
cat >"$LIB_TMP/min.yaml" <<'YAML'
mqtt_clients:
  - client_id: "a"
    broker_url: "mqtt://127.0.0.1"
    topics:
      - name: "in/#"
processing_chains:
  fwd:
    - step: "relay"
      config: { target_client_id: "a", target_topic: "out/x" }
rules:
  - rule: "r"
    source_client_id: "a"
    topic: "in/#"
    action: "fwd"
YAML
"$MQTTFLOW" check "$LIB_TMP/min.yaml" >"$LIB_TMP/out" 2>"$LIB_TMP/err"
expect_eq "check minimal exit" "$?" 0
[[ -s $LIB_TMP/out ]] || lib_fail "minimal: empty summary"

# --- bad: a misspelt callback and a wrong QoS, each reported with file:line:col
cat >"$LIB_TMP/bad.yaml" <<'YAML'
mqtt_clients:
  - client_id: "client1"
    broker_url: "mqtt://127.0.0.1"
    topics:
      - name: "sensors/temperature"
        qos: 7
callbacks:
  handle_temperature_alert:
    module: "cb.so"
    function: "alert_if_high"
rules:
  - rule: "alert"
    source_client_id: "client1"
    topic: "sensors/temperature"
    callback: "handle_temprature_alert"
YAML
"$MQTTFLOW" check "$LIB_TMP/bad.yaml" >"$LIB_TMP/out" 2>"$LIB_TMP/err"
expect_eq "check bad exit" "$?" 2
[[ ! -s $LIB_TMP/out ]] || lib_fail "bad config printed a summary: $(cat "$LIB_TMP/out")"
grep -Eq "bad\.yaml:15:[0-9]+: .*handle_temprature_alert" "$LIB_TMP/err" ||
    lib_fail "no file:line:col error for the misspelt callback: $(cat "$LIB_TMP/err")"
grep -Eq "bad\.yaml:6:[0-9]+: .*qos" "$LIB_TMP/err" ||
    lib_fail "no file:line:col error for qos 7: $(cat "$LIB_TMP/err")"
n=$(grep -Ec "bad\.yaml:[0-9]+:[0-9]+: " "$LIB_TMP/err")
((n >= 2)) || lib_fail "expected every error, got $n line(s)"

# --- bad: a module that is there but lacks the function
cp config/examples/callbacks/humidity.so "$LIB_TMP/cb.so"
sed -e 's/qos: 7/qos: 1/' -e 's/handle_temprature_alert/handle_temperature_alert/' \
    "$LIB_TMP/bad.yaml" >"$LIB_TMP/nofn.yaml"
"$MQTTFLOW" check "$LIB_TMP/nofn.yaml" >"$LIB_TMP/out" 2>"$LIB_TMP/err"
expect_eq "check missing function exit" "$?" 2
grep -q "alert_if_high" "$LIB_TMP/err" || lib_fail "missing function not named: $(cat "$LIB_TMP/err")"

# --- bad: the module itself is missing
rm -f "$LIB_TMP/cb.so"
"$MQTTFLOW" check "$LIB_TMP/nofn.yaml" >"$LIB_TMP/out" 2>"$LIB_TMP/err"
expect_eq "check missing module exit" "$?" 2

# --- a file that cannot be read
"$MQTTFLOW" check "$LIB_TMP/nonexistent.yaml" >"$LIB_TMP/out" 2>"$LIB_TMP/err"
expect_eq "check unreadable exit" "$?" 2
[[ -s $LIB_TMP/err ]] || lib_fail "unreadable file: no message"

# --- the launcher refuses a bad config before starting anything
BUILD=$BUILD MQTTFLOW_BIN=$(pwd)/$MQTTFLOW scripts/mqttflow-launch "$LIB_TMP/bad.yaml" >"$LIB_TMP/out" 2>"$LIB_TMP/err"
expect_eq "launcher bad config exit" "$?" 2
grep -q "handle_temprature_alert" "$LIB_TMP/err" || lib_fail "launcher did not show the error"

# --- issue 8: check and run agree, exit 2 for every configuration error, nothing echoed
#     secret. Each case: check exits 2 with FILE:LINE:COL, and run exits 2 the same way.
agree() { # NAME YAML-LINES... : check and run both exit 2 and name the file's position
    local name=$1
    shift
    printf '%s\n' "$@" >"$LIB_TMP/$name.yaml"
    "$MQTTFLOW" check "$LIB_TMP/$name.yaml" >"$LIB_TMP/out" 2>"$LIB_TMP/err"
    expect_eq "check $name exit" "$?" 2
    grep -Eq "$name\.yaml:[0-9]+:[0-9]+: " "$LIB_TMP/err" || lib_fail "$name: no position: $(cat "$LIB_TMP/err")"
    timeout 20 "$MQTTFLOW" run "$LIB_TMP/$name.yaml" >"$LIB_TMP/out" 2>"$LIB_TMP/err"
    expect_eq "run $name exit" "$?" 2
}
base=('mqtt_clients:' '  - {client_id: a, broker_url: "mqtt://127.0.0.1", topics: [{name: x}]}')
touch "$LIB_TMP/plainfile"
long=$LIB_TMP/$(printf 's%.0s' {1..110}).sock
agree evil "${base[@]}" 'runtime: {instance: !evil x}'
agree spoolfile "${base[@]}" "runtime: {instance: h8a, spool_dir: \"$LIB_TMP/plainfile\"}"
agree devnull "${base[@]}" 'runtime: {instance: h8b, dead_letter: {dir: /dev/null}}'
agree longsock "${base[@]}" "runtime: {instance: h8c, control_socket: \"$long\"}"
agree emptyport 'mqtt_clients:' '  - client_id: a' '    broker_url: "mqtt://127.0.0.1"' '    port:'
agree rmrf 'mqtt_clients:' '  - {client_id: a, broker_url: "mqtt://h; rm -rf /"}'
agree userinfo 'mqtt_clients:' '  - {client_id: a, broker_url: "mqtt://u:hunter2@127.0.0.1"}'
grep -q hunter2 "$LIB_TMP/err" && lib_fail "run echoed the password of the URL"
"$MQTTFLOW" check "$LIB_TMP/userinfo.yaml" 2>&1 | grep -q hunter2 && lib_fail "check echoed the password of the URL"
# !ENV NAME [default], as the Python framework's loader defines it
printf '%s\n' 'mqtt_clients:' '  - {client_id: !ENV H8_ID dflt, broker_url: !ENV H8_URL}' >"$LIB_TMP/env.yaml"
H8_URL=mqtt://127.0.0.1 "$MQTTFLOW" check "$LIB_TMP/env.yaml" >"$LIB_TMP/out" 2>"$LIB_TMP/err"
expect_eq "check !ENV exit" "$?" 0
grep -q 'dflt' "$LIB_TMP/out" || lib_fail "!ENV default not used: $(cat "$LIB_TMP/out")"

lib_log "PASS"
exit 0
