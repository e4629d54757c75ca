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

N=8000
it_echo_load $N

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

it_echo_load_check $N
lib_log "PASS"
