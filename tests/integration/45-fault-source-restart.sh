# 45-fault-source-restart: issue 4 fault test 6. The source broker is restarted under QoS 1
# load; the ingress has a persistent session (clean_session: false) and mosquitto keeps its
# sessions and queued messages over the restart (persistence on): 0 lost.
#
# Broker 1: source c1 (in/#, QoS 1, clean_session: false, persistence on); broker 2: the
# target t2 and the test's subscriber (not restarted). One sequential echo rule, QoS 1 out.
# mfpub -A publishes at FL_RATE msg/s and publishes again whatever failed while broker 1
# was down. Broker 1 is restarted (SIGTERM, 1 s down) ROUNDS times, 4 s apart. Asserted:
# every message arrives (unique N, lost 0; duplicates and reordering around the restart
# come from the broker's redelivery and mfpub's resends and are reported); the ingress
# reconnected by itself (no restart); clean stop. Restart time: broker 1 accepting
# connections again -> the ingress's log says it subscribed again.
# Quick: 1 restart. SOAK=1: 5. FAULT_ROUNDS=N: N.
# shellcheck source=tests/integration/faultlib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/faultlib.sh"

it_require "$IT_CB/echo.so"
mkdir -p "$LIB_TMP/b1db"
it_broker MQTT "persistence true" "persistence_location $LIB_TMP/b1db/" ||
    lib_fail "broker 1 did not start"
it_broker b2 || lib_fail "broker 2 did not start"
ROUNDS=$(fl_rounds 1 5)
GAP=4

it_conf_to t2 "fwd:in/#:t2" 1 'clean_session: false' "$IT_RECONNECT" \
    'topics: [{name: "in/#", qos: 1}]'
it_start "$conf"

N=$((FL_RATE * (ROUNDS * GAP + 4)))
T=$((N / FL_RATE + 120))
it_sub s_out -p "$b2_PORT" -t 'out/#' -q 1 -n $N -I 30 -T $T
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n $N -r "$FL_RATE" -t in/a -A -W $T >"$LIB_TMP/pub.log" 2>&1 &
pub=$!
lib_track $pub
it_until 20 '[[ $(it_metric "$conf" mqttflow_stage_in_total router) -ge 1000 ]]' ||
    lib_fail "no load through the router"
for ((r = 0; r < ROUNDS; r++)); do
    t_r=$SECONDS
    subs=$(grep -c "subscribed to" "$IT_LOG")
    lib_log "restarting broker 1 (router in $(it_metric "$conf" mqttflow_stage_in_total router))"
    broker_restart MQTT 1 || lib_fail "broker 1 did not come back"
    fl_time_until 20 '[[ $(grep -c "subscribed to" "$IT_LOG") -gt $subs ]]' \
        "the ingress did not subscribe again within 20 s of broker 1's restart"
    lib_log "ingress subscribed again $FL_MS ms after broker 1 was back"
    while ((SECONDS - t_r < GAP)); do sleep 0.2; done
done
it_wait_pub pub
lib_log "mfpub: $(tail -n 1 "$LIB_TMP/pub.log")"
lib_log "s_out: $(it_sub_result s_out $T)"
it_status "$conf" >&2
fails=()
f=$LIB_TMP/s_out.log
[[ $(result_field "$f" unique) == "$N" ]] || fails+=("unique $(result_field "$f" unique) of $N")
[[ $(result_field "$f" lost) == 0 ]] || fails+=("lost $(result_field "$f" lost)")
[[ $(result_field "$f" badsum) == 0 ]] || fails+=("badsum $(result_field "$f" badsum)")
[[ $(it_metric "$conf" mqttflow_stage_restarts_total ingress c1) == 0 ]] ||
    fails+=("the ingress restarted (it should reconnect by itself)")
fl_sub_sum s_out
fl_row "6 source broker restart, persistent session" "$ROUNDS" "$N" "$FL_LOST" "$FL_DUP" "$FL_REORDER"
((${#fails[@]} == 0)) || lib_fail "$(printf '%s; ' "${fails[@]}")"
it_stop "$conf"
lib_log "PASS"
