# 24-restart-under-load: `mqttflow restart worker 0` while QoS 1 messages stream through.
#
# 2 workers; a sequential rule (in/seq/#, on worker 0: the first sequential rule) and a
# threaded rule (in/par/#, both workers), echo to out/... at QoS 1. Two publishers at
# 1,500 msg/s each (QoS 1, 12,000 messages in total over 4 s). Once the router has taken in
# 2,000 messages (the load is on), `mqttflow restart worker 0` is issued. Asserted: the
# command answers "restarted worker 0: pid A -> B" with A != B, worker 0's RESTARTS in status
# is >= 1 and its pid changed, 0 lost on both rules (duplicates allowed and reported), the
# sequential rule kept its order, clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker did not start"

it_echo_conf true
pid_before=$(it_metric "$conf" mqttflow_stage_pid worker 0)

it_echo_traffic 6000 1500 15 55

it_until 20 '[[ $(it_metric "$conf" mqttflow_stage_in_total router) -ge 2000 ]]' ||
    lib_fail "the load did not reach the router"
[[ $(it_metric "$conf" mqttflow_stage_in_total worker 0) -gt 0 ]] ||
    lib_fail "worker 0 had taken nothing in before the restart"
t0=$SECONDS
out=$("$MQTTFLOW" restart -c "$conf" worker 0 2>&1) || lib_fail "mqttflow restart worker 0 failed: $out"
lib_log "restart answered in $((SECONDS - t0)) s: $out"
in_at_restart=$(it_metric "$conf" mqttflow_stage_in_total router)
[[ $out =~ restarted\ worker\ 0:\ pid\ ([0-9]+)\ -\>\ ([0-9]+) ]] ||
    lib_fail "unexpected answer to restart: $out"
[[ ${BASH_REMATCH[1]} != "${BASH_REMATCH[2]}" ]] || lib_fail "restart kept pid ${BASH_REMATCH[1]}"
[[ $in_at_restart -lt 12000 ]] ||
    lib_log "warning: the load had ended when the restart finished (router in $in_at_restart)"

it_wait_pub pub_seq "(seq)"
it_wait_pub pub_par "(par)"
for s in s_seq s_par; do
    res=$(it_sub_result "$s" 60)
    lib_log "$s: $res"
done
status=$(it_status "$conf")
lib_log "status:"$'\n'"$status"

for s in s_seq s_par; do
    f=$LIB_TMP/$s.log
    expect_eq "$s lost" "$(result_field "$f" lost)" 0
    expect_eq "$s unique" "$(result_field "$f" unique)" 6000
    expect_eq "$s badsum" "$(result_field "$f" badsum)" 0
    lib_log "$s duplicates (allowed): $(result_field "$f" dup)"
done
expect_eq "sequential rule reordered" "$(result_field "$LIB_TMP/s_seq.log" reorder)" 0

r=$(it_metric "$conf" mqttflow_stage_restarts_total worker 0)
[[ -n $r && $r -ge 1 ]] || lib_fail "worker 0 RESTARTS in status: '$r', want >= 1"
pid_after=$(it_metric "$conf" mqttflow_stage_pid worker 0)
[[ $pid_after != "$pid_before" && $pid_after -gt 0 ]] ||
    lib_fail "worker 0 pid before $pid_before, after $pid_after"
expect_eq "worker 1 restarts" "$(it_metric "$conf" mqttflow_stage_restarts_total worker 1)" 0

it_stop "$conf"
lib_log "PASS"
