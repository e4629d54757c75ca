# 26-restart-every-stage: `mqttflow restart router`, `relay`, `ingress c1` and `workers`, one
# after the other, while QoS 1 messages stream through (DESIGN §6: live, nothing lost).
#
# 2 workers; a sequential rule (echo to out/..., QoS 1 out) and a threaded one; c1 subscribes
# with clean_session: false so the broker keeps its QoS 1 messages while the ingress is being
# restarted. Two publishers at 1,000 msg/s each (QoS 1, 8,000 each). Each restart is issued
# once the router has taken 1,000 more messages. Asserted: each restart answers "restarted
# ...", its RESTARTS count in status grows, nothing is lost on either rule (duplicates
# allowed and reported), the sequential rule kept its order, clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker did not start"

conf=$LIB_TMP/conf.yaml
{
    cat <<EOF
mqtt_clients:
  - client_id: "c1"
    broker_url: "mqtt://127.0.0.1"
    port: $MQTT_PORT
    clean_session: false
    topics: [{name: "in/#", qos: 1}]
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
rules:
  - {rule: "seq", topic: "in/seq/#", action: "echo_out", execution_mode: "sequential"}
  - {rule: "par", topic: "in/par/#", action: "echo_out", execution_mode: "threaded"}
processing_chains:
  echo_out:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
    - {step: "relay", config: {qos: 1}}
EOF
    it_runtime 2
} >"$conf"
it_start "$conf"

N=8000
it_sub s_seq -p "$MQTT_PORT" -t 'out/in/seq/#' -q 1 -n $N -I 20 -T 58
it_sub s_par -p "$MQTT_PORT" -t 'out/in/par/#' -q 1 -n $N -I 20 -T 58
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n $N -r 1000 -t in/seq/a >"$LIB_TMP/pub_seq.log" 2>&1 &
pub_seq=$!
lib_track "$pub_seq"
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 2 -n $N -r 1000 -T in/par/t -k 4 >"$LIB_TMP/pub_par.log" 2>&1 &
pub_par=$!
lib_track "$pub_par"

restarts_of() { # STAGE [ID]
    it_metric "$conf" mqttflow_stage_restarts_total "$@"
}
mark=0
restart_one() { # STAGE [ID]: restart it once the router took 1,000 more; check answer + count
    local before after out
    mark=$((mark + 1000))
    it_until 20 '[[ $(it_metric "$conf" mqttflow_stage_in_total router) -ge $mark ]]' ||
        lib_fail "the router did not reach $mark messages"
    before=$(restarts_of "$@")
    out=$("$MQTTFLOW" restart -c "$conf" "$@" 2>&1) || lib_fail "mqttflow restart $* failed: $out"
    lib_log "restart $* (router in $(it_metric "$conf" mqttflow_stage_in_total router)): $out"
    [[ $out == *restarted* ]] || lib_fail "unexpected answer to restart $*: $out"
    [[ $1 != workers ]] || return 0 # one row per worker: checked by the caller
    after=$(restarts_of "$@")
    [[ -n $after && $after -gt ${before:-0} ]] ||
        lib_fail "$*: RESTARTS was ${before:-?} before, ${after:-?} after the restart"
}
restart_one router
restart_one relay
restart_one ingress c1
restart_one workers
for w in 0 1; do
    [[ $(restarts_of worker "$w") -ge 1 ]] || lib_fail "restart workers did not restart worker $w"
done

wait "$pub_seq" || lib_fail "mfpub (seq) did not complete: $(tail -n 2 "$LIB_TMP/pub_seq.log")"
wait "$pub_par" || lib_fail "mfpub (par) did not complete: $(tail -n 2 "$LIB_TMP/pub_par.log")"
for s in s_seq s_par; do
    res=$(it_sub_result "$s" 60)
    lib_log "$s: $res"
done
it_status "$conf" >&2
for s in s_seq s_par; do
    f=$LIB_TMP/$s.log
    expect_eq "$s lost" "$(result_field "$f" lost)" 0
    expect_eq "$s unique" "$(result_field "$f" unique)" $N
    expect_eq "$s badsum" "$(result_field "$f" badsum)" 0
    lib_log "$s duplicates (allowed): $(result_field "$f" dup)"
done
expect_eq "sequential rule reordered" "$(result_field "$LIB_TMP/s_seq.log" reorder)" 0
it_stop "$conf"
lib_log "PASS"
