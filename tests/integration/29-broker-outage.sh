# 29-broker-outage: the target broker goes down under load, then the source broker restarts.
#
# Broker 1 is the source (c1 subscribes in/#), broker 2 the relay target (client t2, no
# topics; persistence on, so that the test's subscriber, a persistent session, keeps its
# messages over the restart). One sequential echo rule, relayed to t2 at QoS 1.
#  A. 5,000 messages at 1,000/s; once the router has taken 1,000, broker 2 is stopped for 2 s
#     and started again. The relay holds what it cannot publish and catches up when the broker
#     is back (its log says it reconnected): all 5,000 arrive, in order (duplicates of
#     publishes cut by the outage are allowed and reported).
#  B. broker 1 is restarted; once the ingress has subscribed again (its log), 2,000 more
#     messages all arrive: the ingress reconnected and resubscribed by itself.
# Clean stop at the end.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
it_broker_b2

it_conf_to t2 "fwd:in/#:t2" 1 "$IT_RECONNECT" 'topics: [{name: "in/#", qos: 1}]'
it_start "$conf"

# ---- A: the target broker goes away for 2 s
it_sub subA -p "$b2_PORT" -c "it$$-subA" -P -t 'out/#' -q 1 -n 5000 -I 25 -T 58
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n 5000 -r 1000 -t in/a >"$LIB_TMP/pubA.log" 2>&1 &
pubA=$!
lib_track "$pubA"
it_until 20 '[[ $(it_metric "$conf" mqttflow_stage_in_total router) -ge 1000 ]]' ||
    lib_fail "the load did not reach the router"
relay_conns=$(grep -c "client t2: connected" "$LIB_TMP/mf.log")
lib_log "stopping broker 2 for 2 s (relay out $(it_metric "$conf" mqttflow_stage_out_total relay))"
broker_restart b2 2 || lib_fail "broker 2 did not come back"
lib_log "broker 2 back (relay out $(it_metric "$conf" mqttflow_stage_out_total relay))"
it_wait_pub pubA "A"
res=$(it_sub_result subA 60)
lib_log "subA: $res"
[[ $(grep -c "client t2: connected" "$LIB_TMP/mf.log") -gt $relay_conns ]] ||
    lib_fail "the relay's log does not show a reconnect to broker 2"
f=$LIB_TMP/subA.log
expect_eq "A unique" "$(result_field "$f" unique)" 5000
expect_eq "A lost" "$(result_field "$f" lost)" 0
expect_eq "A reorder" "$(result_field "$f" reorder)" 0
expect_eq "A badsum" "$(result_field "$f" badsum)" 0
lib_log "A duplicates (allowed): $(result_field "$f" dup)"
expect_eq "relay restarts" "$(it_metric "$conf" mqttflow_stage_restarts_total relay)" 0

# ---- B: the source broker restarts
subs=$(grep -c "subscribed to" "$LIB_TMP/mf.log")
broker_restart MQTT 1 || lib_fail "broker 1 did not come back"
it_until 20 '[[ $(grep -c "subscribed to" "$LIB_TMP/mf.log") -gt $subs ]]' ||
    lib_fail "the ingress did not subscribe again within 20 s of broker 1's restart"
it_sub subB -p "$b2_PORT" -t 'out/#' -q 1 -n 2000 -I 15 -T 40
it_mfpub pubB -p "$MQTT_PORT" -q 1 -i 2 -n 2000 -t in/b
res=$(it_sub_result subB 40)
lib_log "subB: $res"
f=$LIB_TMP/subB.log
expect_eq "B unique" "$(result_field "$f" unique)" 2000
expect_eq "B lost" "$(result_field "$f" lost)" 0
expect_eq "ingress restarts (it reconnects by itself)" \
    "$(it_metric "$conf" mqttflow_stage_restarts_total ingress c1)" 0

it_stop "$conf"
lib_log "PASS"
