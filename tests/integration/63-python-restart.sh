# 63-python-restart: `mqttflow restart worker 0` picks up edited Python code live, under QoS 1
# load, with nothing lost.
#
# One worker, one sequential rule in/a -> a Python callback that forwards each payload to
# out/v1/a. 6,000 QoS 1 messages at 1,500/s; once the router has taken in 1,500 the module is
# rewritten to forward to out/v2/a instead and `mqttflow restart worker 0` is issued.
# Asserted: the restart answers with a new pid; over out/# (both versions) all 6,000 arrive
# (0 lost; duplicates of records in flight at the restart are allowed and reported), in
# order; some came out through v1 and the rest through v2 (the new code runs: v2 > 0, and
# nothing goes through v1 after the first v2); clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$BUILD/bin/mqttflow-python.so" "$MOSQUITTO_SUB"
it_broker || lib_fail "broker did not start"

write_module() { # VERSION: written to a new file, then renamed (a worker never reads half)
    cat >"$LIB_TMP/fwd.py.new" <<PY
import mqttflow

VERSION = "$1"


def forward(msg):
    mqttflow.emit("out/%s/%s" % (VERSION, msg.topic[3:]), msg.payload)
PY
    mv "$LIB_TMP/fwd.py.new" "$LIB_TMP/fwd.py"
}
write_module v1

it_conf 'topics: [{name: "in/#", qos: 1}]' -- 1 <<YAML
callbacks:
  forward: {module: "fwd.py", function: "forward"}
rules:
  - {rule: "fwd", topic: "in/#", callback: "forward", execution_mode: "sequential"}
YAML
it_start "$conf"

it_sub s_all -p "$MQTT_PORT" -t 'out/#' -q 1 -n 6000 -I 15 -T 60
# the order of versions as seen by one subscriber: topic names only
"$MOSQUITTO_SUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t 'out/#' -t probe53 -F '%t' >"$LIB_TMP/topics.out" 2>&1 &
lib_track $!
it_until 10 '"$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -t probe53 -m p; grep -q "^probe53$" "$LIB_TMP/topics.out"' ||
    lib_fail "mosquitto_sub on out/# did not subscribe"
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n 6000 -r 1500 -t in/a >"$LIB_TMP/pub.log" 2>&1 &
pub=$!
lib_track "$pub"

it_until 20 '[[ $(it_metric "$conf" mqttflow_stage_in_total router) -ge 1500 ]]' ||
    lib_fail "the load did not reach the router"
write_module v2
out=$("$MQTTFLOW" restart -c "$conf" worker 0 2>&1) || lib_fail "restart worker 0 failed: $out"
lib_log "restart: $out"
[[ $out =~ restarted\ worker\ 0:\ pid\ ([0-9]+)\ -\>\ ([0-9]+) ]] ||
    lib_fail "unexpected answer to restart: $out"
[[ ${BASH_REMATCH[1]} != "${BASH_REMATCH[2]}" ]] || lib_fail "restart kept pid ${BASH_REMATCH[1]}"

it_wait_pub pub
res=$(it_sub_result s_all 60)
lib_log "out/#: $res"
f=$LIB_TMP/s_all.log
expect_eq "lost" "$(result_field "$f" lost)" 0
expect_eq "unique" "$(result_field "$f" unique)" 6000
expect_eq "reorder" "$(result_field "$f" reorder)" 0
lib_log "duplicates (records in flight at the restart, allowed): $(result_field "$f" dup)"

versioned() { grep -c '^out/v[12]/a$' "$LIB_TMP/topics.out"; }
it_until 10 '[[ $(versioned) -ge $(result_field "$f" recv) ]]' ||
    lib_fail "the topic log has $(versioned) of $(result_field "$f" recv) outputs"
v1=$(grep -c '^out/v1/a$' "$LIB_TMP/topics.out")
v2=$(grep -c '^out/v2/a$' "$LIB_TMP/topics.out")
lib_log "through v1: $v1, through v2: $v2"
[[ $v1 -gt 0 && $v2 -gt 0 ]] || lib_fail "want messages through both versions (v1 $v1, v2 $v2)"
first_v2=$(grep -n '^out/v2/a$' "$LIB_TMP/topics.out" | head -n 1 | cut -d: -f1)
late_v1=$(tail -n +"$first_v2" "$LIB_TMP/topics.out" | grep -c '^out/v1/a$')
expect_eq "v1 outputs after the first v2 output" "$late_v1" 0

it_stop "$conf"
lib_log "PASS"
