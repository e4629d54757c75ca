# 23-worker-crash: a callback that segfaults on one message takes down only its worker.
#
# Two sequential rules on 2 workers (sequential rules are spread by rank: one per worker):
#   crashy  in/crash/#   segv_every (dies of SIGSEGV on a payload containing "CRASH")
#   steady  in/steady/#  echo
# At the same time: 3,000 messages to steady at 600/s, and 200 JSON messages to crashy at
# 100/s of which only seq 100 carries "CRASH". Asserted:
#  - steady: all 3,000 arrive, no duplicate, in order; its worker never restarted;
#  - crashy: its worker was restarted (status RESTARTS >= 1) and the poison message was
#    skipped after max_attempts (3): every other message (0..99 and 101..199) arrives
#    (duplicates of messages re-run after a crash are allowed and reported), seq 100 never,
#    and the worker's dead counter (mqttflow status --prom) is 1;
#  - exactly one worker restarted; every stage is running again; clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so" "$IT_CB/segv_every.so"
it_broker || lib_fail "broker did not start"

conf=$LIB_TMP/conf.yaml
{
    cat <<EOF
mqtt_clients:
  - client_id: "c1"
    broker_url: "mqtt://127.0.0.1"
    port: $MQTT_PORT
    topics: [{name: "in/#", qos: 1}]
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
  segv: {module: "$IT_CB/segv_every.so", function: "segv_every"}
rules:
  - {rule: "crashy", topic: "in/crash/#", action: "crash_chain", execution_mode: "sequential"}
  - {rule: "steady", topic: "in/steady/#", action: "steady_chain", execution_mode: "sequential"}
processing_chains:
  crash_chain:
    - {step: "custom_processor", config: {callback: "segv", topic: "out/crash"}}
  steady_chain:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
EOF
    it_runtime 2 "max_attempts: 3"
} >"$conf"
it_start "$conf"

it_sub s_steady -p "$MQTT_PORT" -t 'out/in/steady/#' -q 1 -n 3000 -I 20 -T 50
it_sub s_crash -p "$MQTT_PORT" -t 'out/crash' -q 1 -n 199 -I 20 -T 50 -D

vals=""
for ((i = 0; i < 200; i++)); do
    if ((i == 100)); then vals+='"CRASH"'; else vals+=$i; fi
    ((i < 199)) && vals+=,
done
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n 3000 -r 600 -t in/steady/a >"$LIB_TMP/pub_steady.log" 2>&1 &
pub_steady=$!
lib_track "$pub_steady"
it_mfpub pub_crash -p "$MQTT_PORT" -q 1 -i 2 -n 200 -r 100 -t in/crash/a -j -V "$vals"
wait "$pub_steady" || lib_fail "mfpub (steady) did not complete"

res=$(it_sub_result s_steady 60)
lib_log "steady: $res"
res=$(it_sub_result s_crash 60)
lib_log "crashy: $res"
status=$(it_status "$conf")
lib_log "status:"$'\n'"$status"
tail -n 40 "$LIB_TMP/mf.log" | grep -iE 'died|dead|restart' >&2

f=$LIB_TMP/s_steady.log
expect_eq "steady unique" "$(result_field "$f" unique)" 3000
expect_eq "steady lost" "$(result_field "$f" lost)" 0
expect_eq "steady dup" "$(result_field "$f" dup)" 0
expect_eq "steady reorder" "$(result_field "$f" reorder)" 0

f=$LIB_TMP/s_crash.log
expect_eq "crashy unique (all but the poison)" "$(result_field "$f" unique)" 199
expect_eq "crashy gaps (the poison only)" "$(result_field "$f" lost)" 1
if grep -q '"seq":100,' "$f"; then
    lib_fail "the poison message (seq 100) came out"
fi
grep -q '"seq":199,' "$f" || lib_fail "the last message of the crashing rule did not come out"
lib_log "crashy duplicates (re-run after a crash, allowed): $(result_field "$f" dup)"

# which worker crashed: exactly one, restarted at least once, and it dead-lettered one record
crashed=() ok=()
for w in 0 1; do
    r=$(it_metric "$conf" mqttflow_stage_restarts_total worker "$w")
    [[ -n $r ]] || lib_fail "no restart count for worker $w in the status"
    if [[ $r -ge 1 ]]; then crashed+=("$w"); else ok+=("$w"); fi
    lib_log "worker $w: restarts $r, dead $(it_metric "$conf" mqttflow_stage_dead_total worker "$w")"
done
expect_eq "workers that restarted" "${#crashed[@]}" 1
w=${crashed[0]}
expect_eq "dead-lettered records of worker $w" \
    "$(it_metric "$conf" mqttflow_stage_dead_total worker "$w")" 1
expect_eq "dead-lettered records of worker ${ok[0]}" \
    "$(it_metric "$conf" mqttflow_stage_dead_total worker "${ok[0]}")" 0
for s in router relay; do
    expect_eq "$s restarts" "$(it_metric "$conf" mqttflow_stage_restarts_total "$s")" 0
done
grep -q SIGSEGV "$LIB_TMP/mf.log" || lib_fail "the supervisor's log does not say a worker died of SIGSEGV"
it_until 10 '[[ $(it_status "$conf" | awk '\''$1 == "worker" && $5 != "running"'\'' | wc -l) == 0 ]]' ||
    lib_fail "not every worker is running again: $(it_status "$conf")"

it_stop "$conf"
lib_log "PASS"
