#!/usr/bin/env bash
# 02-launcher: scripts/mqttflow-launch, what users start from a checkout.
#   - with a good config it checks it (summary in its log), then becomes the supervisor
#     (exec: the pid the launcher was started with is the supervisor's, so signals reach it);
#   - status/stop through the launcher are passed to the binary;
#   - SIGTERM to that pid stops everything in order: exit 0, no segment, no socket left;
#   - a second `mqttflow run` of the same instance is refused with exit 2 and names the pid.
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require
broker_start || lib_fail "broker did not start"
it_relay_conf 2

launcher=$IT_ROOT/scripts/mqttflow-launch
export MQTTFLOW_BIN=$IT_ROOT/$MQTTFLOW
[[ $MQTTFLOW == /* ]] && MQTTFLOW_BIN=$MQTTFLOW
lib_spawn launch "$launcher" "$conf"
it_until 30 '"$launcher" status "$conf" 2>/dev/null | head -n 1 | grep -q "^instance $IT_INSTANCE: running"' ||
    lib_fail "the launcher's instance did not come up: $(cat "$LIB_TMP/launch.log")"
grep -q "instance \"$IT_INSTANCE\"" "$LIB_TMP/launch.log" || lib_fail "no check summary in the log"

# exec: the launcher's pid is the supervisor's
sup=$("$launcher" status "$conf" | head -n 1 | sed -n 's/.*supervisor pid \([0-9]*\).*/\1/p')
expect_eq "supervisor pid" "$sup" "$launch_PID"
status=$("$launcher" status "$conf")
for stage in "ingress c1" router "worker 0" "worker 1" relay; do
    grep -Eq "^$stage +[0-9]+ .* running " <<<"$status" || lib_fail "$stage not running: $status"
done

# a second supervisor for the same instance is refused, naming the first
"$MQTTFLOW" run "$conf" >"$LIB_TMP/second.out" 2>&1
expect_eq "second run exit" "$?" 2
grep -q "instance $IT_INSTANCE is already running (pid $launch_PID)" "$LIB_TMP/second.out" ||
    lib_fail "second run: $(cat "$LIB_TMP/second.out")"

# SIGTERM, as systemd sends it
kill -TERM "$launch_PID"
it_wait_exit "$launch_PID" 30 || lib_fail "the supervisor did not exit after SIGTERM"
expect_eq "exit code after SIGTERM" "$IT_RC" 0
expect_eq "segments left" "$(it_shm_left "$IT_INSTANCE")" 0
[[ ! -e $LIB_TMP/$IT_INSTANCE.sock ]] || lib_fail "the control socket was left behind"
grep -q "ingress c1 (pid [0-9]*) stopped" "$LIB_TMP/launch.log" || lib_fail "no ordered stop in the log"
"$launcher" status "$conf" >/dev/null 2>&1 && lib_fail "status answers after the stop"

lib_log "PASS"
exit 0
