# 77-geometry-change: issue 8 item 5, the geometry part. A restart with another
# runtime.ring_size or runtime.max_payload cannot adopt the rings the last run left (their
# record layout is another one): the records queued in them never disappear silently, each
# becomes a dead letter with reason "configuration changed", topic and payload intact, before
# the ring is made anew.
#
# Each round: the relay is stopped (SIGSTOP) and 20 QoS 1 messages go through router and
# worker into the worker's output ring; then the router is stopped and 20 more wait in the
# ingress ring; the supervisor is killed (SIGKILL; its stages die with it) and the rings stay.
# The next run has another geometry: round 1 another ring_size and max_payload (the segment's
# size differs), round 2 only another max_payload (same size, another record limit). Asserted
# per round: 40 new dead letters with the reason (20 of each topic: 0 lost, 0 duplicated), and
# the new run delivers 10 fresh messages; clean stop at the end.
# shellcheck source=tests/integration/faultlib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/faultlib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker did not start"

conf=$LIB_TMP/conf.yaml
dead=$LIB_TMP/dead/dead-letters.jsonl
write_conf() { # RING_SIZE MAX_PAYLOAD
    {
        echo "mqtt_clients:"
        it_client c1 "$MQTT_PORT" 'topics: [{name: "in/#", qos: 1}]'
        it_echo_rules '{rule: "e", topic: "in/#", action: "out"}'
        it_echo_chain out c1
        cat <<EOF2
runtime:
  instance: "$IT_INSTANCE"
  workers: 1
  ring_size: $1
  max_payload: $2
  control_socket: "$LIB_TMP/$IT_INSTANCE.sock"
  spool_dir: "$LIB_TMP/spool"
  dead_letter: {dir: "$LIB_TMP/dead"}
EOF2
    } >"$conf"
}

stage_pid() { # STAGE: its pid, checked to be one of ours
    local pid
    pid=$(it_metric "$conf" mqttflow_stage_pid "$1")
    grep -q mqttflow "/proc/$pid/cmdline" 2>/dev/null || lib_fail "pid '$pid' is not the $1"
    echo "$pid"
}

# queue_and_kill ROUND: 20 records in the worker's output ring, 20 in the ingress ring, then
# the supervisor killed with them queued
queue_and_kill() {
    local round=$1 relay router w0 in0
    w0=$(it_metric "$conf" mqttflow_stage_out_total worker 0)
    in0=$(it_metric "$conf" mqttflow_stage_in_total ingress c1)
    relay=$(stage_pid relay)
    kill -STOP "$relay"
    it_mfpub "pa$round" pub -p "$MQTT_PORT" -t "in/a$round" -n 20 -q 1 -i 3
    it_until 10 '[[ $(it_metric "$conf" mqttflow_stage_out_total worker 0) == '$((w0 + 20))' ]]' ||
        lib_fail "the worker did not pass on the 20 messages"
    router=$(stage_pid router)
    kill -STOP "$router"
    it_mfpub "pb$round" pub -p "$MQTT_PORT" -t "in/b$round" -n 20 -q 1 -i 3
    it_until 10 '[[ $(it_metric "$conf" mqttflow_stage_in_total ingress c1) == '$((in0 + 40))' ]]' ||
        lib_fail "the ingress did not take the 20 messages"
    kill -KILL "$mf_PID"
    wait "$mf_PID" 2>/dev/null
    kill -KILL "$relay" "$router" 2>/dev/null
    # the stages die with their supervisor (parent-death signal); the run after waits for that
    it_until 10 '! kill -0 '"$relay"' 2>/dev/null && ! kill -0 '"$router"' 2>/dev/null' ||
        lib_fail "a stage outlived its supervisor"
}

# check_round ROUND: the 40 queued records are dead letters with the reason; the run works
check_round() {
    local round=$1 res
    expect_eq "round $round: dead letters of out/in/a$round" \
        "$(grep '"reason": *"configuration changed' "$dead" | grep -c "\"topic\": *\"out/in/a$round\"")" 20
    expect_eq "round $round: dead letters of in/b$round" \
        "$(grep '"reason": *"configuration changed' "$dead" | grep -c "\"topic\": *\"in/b$round\"")" 20
    grep -E "queued record|geometry" "$IT_LOG" >&2
    it_sub "s$round" -p "$MQTT_PORT" -t "out/in/c$round" -q 1 -n 10 -I 15
    it_mfpub "pc$round" pub -p "$MQTT_PORT" -t "in/c$round" -n 10 -q 1 -i 3
    res=$(it_sub_result "s$round" 30)
    lib_log "round $round sub: $res"
    expect_eq "round $round: lost after the restart" "$(result_field "$LIB_TMP/s$round.log" lost)" 0
}

it_runtime 1 >/dev/null # sets IT_INSTANCE (and its cleanup)
write_conf 4MiB 256KiB
it_start "$conf"
queue_and_kill 1
write_conf 1MiB 64KiB # another size and another record limit
it_start "$conf" 30 mf2
check_round 1

queue_and_kill 2
write_conf 1MiB 32KiB # the same size, another record limit
it_start "$conf" 30 mf3
check_round 2
expect_eq "dead letters in all" "$(wc -l <"$dead")" 80
it_stop "$conf"
lib_log "PASS"
