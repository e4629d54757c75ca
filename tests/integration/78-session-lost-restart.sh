# 78-session-lost-restart: issue 8 item 1. A persistent session the broker dropped while the
# ingress itself was down (kill -9, respawned by the supervisor) is reported as lost, as one
# dropped while the same process was reconnecting already was: the fact "this client had a
# session with this broker" is kept in the ingress's stats slot, which outlives the process.
#
# For each connection kind (runtime.mqtt_io: paho, then auto: io_uring for mqtt://), c1
# subscribes in/# QoS 1 on its own broker (persistence on). Negative first: the broker is stopped (its sessions saved),
# the ingress killed with SIGKILL, and once the supervisor has respawned it the broker starts
# again with its sessions: the ingress logs the session resumed, no lost-session line, the
# counter mqttflow_stage_sessions_lost_total stays 0. Then the same with the broker started
# again without persistence: the respawned ingress logs the lost session and the counter is 1.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
unset MQTTFLOW_MQTT_IO # the test runs both kinds itself

# ingress_respawn CONF: SIGKILL the ingress c1 and wait until the supervisor has a new one
ingress_respawn() {
    R_CONF=$1
    R_OLD=$(it_metric "$R_CONF" mqttflow_stage_pid ingress c1)
    [[ -n $R_OLD && $R_OLD -gt 0 ]] || lib_fail "no ingress pid"
    grep -q ingress "/proc/$R_OLD/cmdline" || lib_fail "pid $R_OLD is not the ingress"
    kill -KILL "$R_OLD"
    it_until 30 'R_NEW=$(it_metric "$R_CONF" mqttflow_stage_pid ingress c1); [[ -n $R_NEW && $R_NEW -gt 0 && $R_NEW != "$R_OLD" ]]' ||
        lib_fail "the supervisor did not respawn the ingress"
    lib_log "ingress $R_OLD killed, respawned as $R_NEW"
}

# down_cycle NAME CONF: broker NAME stopped, the ingress killed and respawned, broker started
down_cycle() {
    broker_stop "$1"
    ingress_respawn "$2"
    broker_restart "$1" || lib_fail "broker $1 did not come back"
}

for kind in paho auto; do
    B=B_$kind
    mkdir -p "$LIB_TMP/$B.db"
    it_broker "$B" "persistence true" "persistence_location $LIB_TMP/$B.db/" ||
        lib_fail "broker $B did not start"
    port_var=${B}_PORT
    conf=$LIB_TMP/conf-$kind.yaml
    {
        echo "mqtt_clients:"
        it_client c1 "${!port_var}" 'reconnect: {min_delay: 0.1, max_delay: 0.5}' \
            'topics: [{name: "in/#", qos: 1}]'
        it_echo_rules '{rule: "e", topic: "in/#", action: "out"}'
        it_echo_chain out
        it_runtime 1 "mqtt_io: $kind"
    } >"$conf"
    it_start "$conf" 30 "mf_$kind"
    it_until 20 'grep -q "subscribed to" "$IT_LOG"' || lib_fail "$kind: c1 never subscribed"

    # the broker kept the session: resumed, nothing reported
    # paho's kind says "session resumed", the io_uring kind "session present"
    resumed=$(grep -cE "session (resumed|present)" "$IT_LOG")
    down_cycle "$B" "$conf"
    it_until 20 '[[ $(grep -cE "session (resumed|present)" "$IT_LOG") -gt $resumed ]]' ||
        lib_fail "$kind: the respawned ingress did not resume its session: $(grep 'ingress' "$IT_LOG" | tail -n 5)"
    grep -q "session of c1 on .* was lost" "$IT_LOG" &&
        lib_fail "$kind: a kept session was reported lost: $(grep 'was lost' "$IT_LOG")"
    expect_eq "$kind: sessions lost after a kept session" \
        "$(it_metric "$conf" mqttflow_stage_sessions_lost_total ingress c1)" 0

    # the broker comes back without persistence: the session is gone, and said so
    conf_var=${B}_CONF
    sed -i '/^persistence true/d; /^persistence_location/d' "${!conf_var}"
    down_cycle "$B" "$conf"
    it_until 20 'grep -q "session of c1 on .* was lost" "$IT_LOG"' ||
        lib_fail "$kind: no lost-session line after the ingress restarted: $(grep 'ingress' "$IT_LOG" | tail -n 5)"
    grep "session of c1" "$IT_LOG" >&2
    expect_eq "$kind: sessions lost" \
        "$(it_metric "$conf" mqttflow_stage_sessions_lost_total ingress c1)" 1
    it_status "$conf" | grep -q "ingress c1: 1 lost session" ||
        lib_fail "$kind: status does not show the lost session: $(it_status "$conf")"
    it_stop "$conf"
    broker_stop "$B"
done
lib_log "PASS"
