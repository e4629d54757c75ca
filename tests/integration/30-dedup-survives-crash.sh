# 30-dedup-survives-crash: a dedup step's table lives in the worker's state segment, so a
# worker killed with SIGKILL is followed by one that still drops the keys seen before.
#
# One sequential rule: dedup (window 10 min, key payload.id), then a relay to ids/out.
# {"id":1} {"id":2} {"id":1} go in: 2 come out, 1 dropped. Worker 0 is SIGKILLed and runs
# again; {"id":1} {"id":2} {"id":3} follow. Asserted, per id, on everything that came out:
# id 1 and id 2 exactly once (not again after the crash: a lost table would pass them), id 3
# exactly once (nothing new is dropped); 2 more drops counted after the crash.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$MOSQUITTO_PUB" "$MOSQUITTO_SUB"
it_broker || lib_fail "broker did not start"

it_conf 'topics: [{name: "ids/in", qos: 1}]' -- 1 <<EOF
rules:
  - {rule: "dedup", topic: "ids/in", action: "once", execution_mode: "sequential"}
processing_chains:
  once:
    - {step: "dedup", config: {window: "10m", key: "payload.id"}}
    - {step: "relay", config: {target_topic: "ids/out", qos: 1}}
EOF
it_start "$conf"
it_msub out "$MQTT_PORT" ids/probe 'ids/#'

pub() {
    printf '%s\n' "$@" | "$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t ids/in -l ||
        lib_fail "mosquitto_pub failed"
}
n_id() { it_lines out ids/out | grep -c "^{\"id\":$1}$"; }

pub '{"id":1}' '{"id":2}' '{"id":1}'
it_until 10 '[[ $(it_metric "$conf" mqttflow_stage_dropped_total worker 0) -ge 1 &&
                $(n_id 2) -ge 1 ]]' || lib_fail "worker 0 did not pass 1 and 2 and drop the repeat"
expect_eq "id 1 out before the crash" "$(n_id 1)" 1
d0=$(it_metric "$conf" mqttflow_stage_dropped_total worker 0)
pid=$(it_metric "$conf" mqttflow_stage_pid worker 0)
grep -q mqttflow "/proc/$pid/cmdline" 2>/dev/null || lib_fail "pid $pid is not worker 0"
kill -KILL "$pid"
lib_log "worker 0 (pid $pid) SIGKILLed with keys 1 and 2 in its dedup table"
it_until 10 '[[ $(it_metric "$conf" mqttflow_stage_up worker 0) == 1 &&
                $(it_metric "$conf" mqttflow_stage_pid worker 0) != "$pid" ]]' ||
    lib_fail "worker 0 did not run again"

pub '{"id":1}' '{"id":2}' '{"id":3}'
# in order through one sequential worker: once 3 is out, 1 and 2 were judged
it_until 10 '[[ $(n_id 3) -ge 1 ]]' || lib_fail "id 3 did not come out after the restart"
# the stage's counters live in the stats segment: they go on across the worker's restart
it_until 5 '[[ $(it_metric "$conf" mqttflow_stage_dropped_total worker 0) -ge $((d0 + 2)) ]]' ||
    lib_fail "dropped $(it_metric "$conf" mqttflow_stage_dropped_total worker 0), want $d0 + 2"
expect_eq "repeats dropped after the crash" \
    "$(($(it_metric "$conf" mqttflow_stage_dropped_total worker 0) - d0))" 2
lib_log "out: $(it_lines out ids/out | tr '\n' ' ')"
expect_eq "id 1 out (once before the crash, a repeat after)" "$(n_id 1)" 1
expect_eq "id 2 out (once before the crash, a repeat after)" "$(n_id 2)" 1
expect_eq "id 3 out" "$(n_id 3)" 1
expect_eq "messages out in total" "$(it_lines out ids/out | wc -l)" 3
it_stop "$conf"
lib_log "PASS"
