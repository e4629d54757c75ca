# 70-session-full: issue 8 item 1. A QoS 1 subscription without clean_session keeps its broker
# session, and a consumer that stops for longer than the keepalive never makes the broker drop
# it: with the ring and the ingress spool both full, the ingress disconnects cleanly (session
# kept, the broker queues) before half the keepalive, reconnects once there is room, and
# nothing is lost. A session the broker forgot (broker restarted without persistence) is
# logged as lost.
#
# c1 subscribes in/# QoS 1, keepalive 2 s, no clean_session key (the Python framework's files
# set none); ring 64 KiB, ingress spool capped at 64 KiB, 1 KiB payloads. The router is
# stopped (SIGSTOP) for 8 s (4 x keepalive) while 1,600 messages arrive at 200/s, then
# continued (SIGCONT). Asserted: the ingress logged its pause, status showed it disconnected
# meanwhile (CONN 0), all 1,600 arrive, 0 lost, 0 reordered; after a broker restart the
# ingress logs the lost session with its cause.
# shellcheck source=tests/integration/faultlib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/faultlib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker did not start"

it_conf 'keepalive: 2' 'reconnect: {min_delay: 0.1, max_delay: 0.5}' \
    'topics: [{name: "in/#", qos: 1}]' \
    -- 1 'ring_size: "64KiB"' 'spool_max_bytes: "64KiB"' <<EOF2
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
rules:
  - {rule: "e", topic: "in/#", action: "out", execution_mode: "sequential"}
processing_chains:
  out:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
    - {step: "relay", config: {qos: 1}}
EOF2
it_start "$conf"

N=1600
it_sub sub -p "$MQTT_PORT" -t 'out/#' -q 1 -n $N -I 40 -T 90
router=$(it_metric "$conf" mqttflow_stage_pid router)
[[ -n $router && $router -gt 0 ]] || lib_fail "no router pid"
grep -q mqttflow "/proc/$router/cmdline" || lib_fail "pid $router is not the router"
kill -STOP "$router"
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n $N -r 200 -s 1024 -t in/a -W 60 >"$LIB_TMP/pub.log" 2>&1 &
pub=$!
lib_track $pub
# while the router is stopped: the connection state the status shows
saw_down=0
end=$((SECONDS + 8))
while ((SECONDS < end)); do
    c=$(it_metric "$conf" mqttflow_stage_connections ingress c1)
    [[ $c == 0 ]] && saw_down=1
    sleep 0.2
done
kill -CONT "$router"
it_wait_pub pub
res=$(it_sub_result sub 90)
lib_log "sub: $res"
it_status "$conf" >&2
f=$LIB_TMP/sub.log
expect_eq "unique" "$(result_field "$f" unique)" $N
expect_eq "lost" "$(result_field "$f" lost)" 0
expect_eq "reorder" "$(result_field "$f" reorder)" 0
grep -q "with the session kept (the broker queues" "$IT_LOG" ||
    lib_fail "the ingress never paused its session: $(grep 'ingress c1' "$IT_LOG" | tail -n 5)"
expect_eq "status showed the paused ingress disconnected" $saw_down 1

# a broker restarted without persistence has forgotten the session: logged as lost
broker_restart MQTT || lib_fail "broker did not come back"
it_until 20 'grep -q "session of c1 on .* was lost" "$IT_LOG"' ||
    lib_fail "no lost-session line: $(grep 'ingress c1' "$IT_LOG" | tail -n 5)"
grep "session of c1" "$IT_LOG" >&2
it_stop "$conf"
lib_log "PASS"
