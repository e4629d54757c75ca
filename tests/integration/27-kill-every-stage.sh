# 27-kill-every-stage: SIGKILL of each stage in turn (router, relay, worker 0, ingress c1)
# while QoS 1 messages stream through: the supervisor restarts it and nothing is lost
# (DESIGN §5: "Nothing is lost on a crash of any single stage").
#
# Same pipeline as 26 (2 workers, a sequential and a threaded echo rule, QoS 1 out, c1 with
# clean_session: false so the broker redelivers what the killed ingress had not acknowledged).
# Two publishers at 1,000 msg/s each, 8,000 each. Each kill happens once the router has taken
# 1,000 more messages; the next one waits until the killed stage runs again with a new pid.
# Asserted: each killed stage's RESTARTS grows and it runs again, the supervisor's log says it
# died of SIGKILL, lost 0 on both rules (duplicates and reordering after a crash are reported;
# the sequential rule's order is asserted), clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

N=8000
it_echo_load $N

mark=0
kill_one() { # STAGE [ID]
    local pid newpid before
    mark=$((mark + 1000))
    it_until 20 '[[ $(it_metric "$conf" mqttflow_stage_in_total router) -ge $mark ]]' ||
        lib_fail "the router did not reach $mark messages"
    pid=$(it_metric "$conf" mqttflow_stage_pid "$@")
    before=$(it_metric "$conf" mqttflow_stage_restarts_total "$@")
    [[ -n $pid && $pid -gt 0 ]] || lib_fail "no pid for $* in the status"
    # the stage is the supervisor's child, not ours: make sure the pid is that stage's
    grep -q mqttflow "/proc/$pid/cmdline" 2>/dev/null || lib_fail "pid $pid of $* is not a stage"
    kill -KILL "$pid"
    lib_log "SIGKILL $* (pid $pid) at router in $(it_metric "$conf" mqttflow_stage_in_total router)"
    killed=("$@") # it_until evaluates in another function: "$@" would not be ours there
    it_until 20 '[[ $(it_metric "$conf" mqttflow_stage_up "${killed[@]}") == 1 &&
                    $(it_metric "$conf" mqttflow_stage_pid "${killed[@]}") != "$pid" ]]' ||
        lib_fail "$* did not run again after SIGKILL: $(it_status "$conf")"
    newpid=$(it_metric "$conf" mqttflow_stage_pid "$@")
    [[ $(it_metric "$conf" mqttflow_stage_restarts_total "$@") -gt ${before:-0} ]] ||
        lib_fail "$*: RESTARTS did not grow"
    # "died in a callback: ..." when the worker was running one (loop.c)
    grep -Eq "\(pid $pid\) died( in a callback)?: killed by SIGKILL" "$LIB_TMP/mf.log" ||
        lib_fail "the supervisor's log does not say that $* (pid $pid) died of SIGKILL"
    lib_log "$* runs again as pid $newpid"
}
kill_one router
kill_one relay
kill_one worker 0
kill_one ingress c1

it_echo_load_check $N
lib_log "PASS"
