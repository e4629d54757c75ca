# 28-callback-hang: a callback that never returns is cut off by runtime.callback_timeout_ms.
#
# Two sequential rules on 2 workers (one per worker), callback_timeout_ms 300, max_attempts 2:
#   hangy   in/hang/#    hang_on (loops forever on a payload containing "HANG")
#   steady  in/steady/#  echo
# At the same time: 2,000 messages to steady at 500/s, and 100 JSON messages to hangy at
# 50/s of which only seq 50 carries "HANG". Asserted:
#  - steady: all 2,000 arrive, in order, no duplicate; its worker never restarted;
#  - hangy: its worker was killed and restarted (RESTARTS >= 1), the hanging message was
#    dead-lettered (dead counter 1) and never came out, every other one (0..49, 51..99) did;
#  - `mqttflow status` answered while the worker hung; clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so" "$IT_CB/hang_on.so"
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
  hang: {module: "$IT_CB/hang_on.so", function: "hang_on"}
rules:
  - {rule: "hangy", topic: "in/hang/#", action: "hang_chain", execution_mode: "sequential"}
  - {rule: "steady", topic: "in/steady/#", action: "steady_chain", execution_mode: "sequential"}
processing_chains:
  hang_chain:
    - {step: "custom_processor", config: {callback: "hang", topic: "out/hang"}}
  steady_chain:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
EOF
    it_runtime 2 "max_attempts: 2" "callback_timeout_ms: 300"
} >"$conf"
it_start "$conf"

it_sub s_steady -p "$MQTT_PORT" -t 'out/in/steady/#' -q 1 -n 2000 -I 20 -T 55
it_sub s_hang -p "$MQTT_PORT" -t 'out/hang' -q 1 -n 99 -I 20 -T 55 -D

vals=""
for ((i = 0; i < 100; i++)); do
    if ((i == 50)); then vals+='"HANG"'; else vals+=$i; fi
    ((i < 99)) && vals+=,
done
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n 2000 -r 500 -t in/steady/a >"$LIB_TMP/pub_steady.log" 2>&1 &
pub_steady=$!
lib_track "$pub_steady"
it_mfpub pub_hang -p "$MQTT_PORT" -q 1 -i 2 -n 100 -r 50 -t in/hang/a -j -V "$vals"

# while the hanging message is being retried, status must answer
it_status "$conf" >"$LIB_TMP/status_during.txt" || lib_fail "status did not answer during the hang"
wait "$pub_steady" || lib_fail "mfpub (steady) did not complete"

res=$(it_sub_result s_steady 60)
lib_log "steady: $res"
res=$(it_sub_result s_hang 60)
lib_log "hangy: $res"
status=$(it_status "$conf")
lib_log "status:"$'\n'"$status"
grep -E 'callback|died|dead message' "$LIB_TMP/mf.log" | head -n 12 >&2

f=$LIB_TMP/s_steady.log
expect_eq "steady unique" "$(result_field "$f" unique)" 2000
expect_eq "steady lost" "$(result_field "$f" lost)" 0
expect_eq "steady dup" "$(result_field "$f" dup)" 0
expect_eq "steady reorder" "$(result_field "$f" reorder)" 0

f=$LIB_TMP/s_hang.log
expect_eq "hangy unique (all but the hanging one)" "$(result_field "$f" unique)" 99
expect_eq "hangy gaps (the hanging one only)" "$(result_field "$f" lost)" 1
if grep -q '"seq":50,' "$f"; then
    lib_fail "the hanging message (seq 50) came out"
fi
lib_log "hangy duplicates (allowed): $(result_field "$f" dup)"

crashed=() ok=()
for w in 0 1; do
    r=$(it_metric "$conf" mqttflow_stage_restarts_total worker "$w")
    if [[ ${r:-0} -ge 1 ]]; then crashed+=("$w"); else ok+=("$w"); fi
done
expect_eq "workers that restarted" "${#crashed[@]}" 1
expect_eq "dead-lettered by worker ${crashed[0]}" \
    "$(it_metric "$conf" mqttflow_stage_dead_total worker "${crashed[0]}")" 1
grep -qi 'timeout\|callback_timeout_ms\|watchdog' "$LIB_TMP/mf.log" ||
    lib_fail "nothing in the log says that a callback ran past its timeout"

it_stop "$conf"
lib_log "PASS"
