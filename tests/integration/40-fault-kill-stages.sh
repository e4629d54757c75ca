# 40-fault-kill-stages: issue 4 fault test 1. kill -9 of each stage kind (ingress, router,
# worker 0, relay) in turn, ROUNDS times each, under steady QoS 1 load.
#
# Pipeline: c1 (clean_session: false, so the broker redelivers what a killed ingress had not
# acknowledged), 2 workers, a sequential and a threaded echo rule, QoS 1 out. Two publishers
# at FL_RATE msg/s each (default 600: 1,200 msg/s in total) for as long as the kills take.
# Kills are 3 s apart, so each stage is killed every 12 s: it has been up for longer than
# CHILD_STABLE_NS (10 s) and its backoff is back at 100 ms, and no stage comes near the
# restart intensity limit (> 5 in 10 s).
# Asserted: every killed stage runs again with a new pid; 0 lost and every message unique on
# both rules; no reordering on the sequential rule; duplicates at most DUP_PER_KILL (512,
# the relay's in-flight window) per kill; the restart time (kill -> the stage is up again
# with a new pid, per `mqttflow status`: the proxy of "full rate again") is at most 1 s at
# p99; clean stop. Besides the total row, one row per stage kind with its restart times.
# The row's "reordered" is the sequential rule's (the threaded rule reorders by design).
# Quick: 2 rounds (8 kills). SOAK=1: 20 rounds (80 kills). FAULT_ROUNDS=N overrides.
# shellcheck source=tests/integration/faultlib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/faultlib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker did not start"
ROUNDS=$(fl_rounds 2 20)
GAP=3
DUP_PER_KILL=${DUP_PER_KILL:-512}
RESTART_MAX_MS=${RESTART_MAX_MS:-1000}

it_echo_conf false

KILLS=$((ROUNDS * 4))
N=$((FL_RATE * (KILLS * GAP + 4)))
it_echo_traffic $N "$FL_RATE" 30 $((N / FL_RATE + 120)) -W $((N / FL_RATE + 120))
it_until 20 '[[ $(it_metric "$conf" mqttflow_stage_in_total router) -ge 1000 ]]' ||
    lib_fail "no load through the router"

declare -A rt_of=()
for ((r = 0; r < ROUNDS; r++)); do
    for st in "ingress c1" "router" "worker 0" "relay"; do
        t_kill=$SECONDS
        # shellcheck disable=SC2086 # "ingress c1" is stage and id
        fl_kill_stage "$conf" $st
        rt_of[$st]+="${FL_RT[-1]} "
        while ((SECONDS - t_kill < GAP)); do sleep 0.2; done
    done
done

it_wait_pub pub_seq "(seq)"
it_wait_pub pub_par "(par)"
it_sub_results 120 s_seq s_par
it_status "$conf" >&2
fl_sub_sum s_seq s_par
# reordered in the row: the sequential rule's (a threaded rule reorders by design)
FL_REORDER=$(result_field "$LIB_TMP/s_seq.log" reorder)
fl_row "1 kill -9 each stage (all kinds)" "$FL_KILLS" $((2 * N)) "$FL_LOST" "$FL_DUP" "$FL_REORDER"
all_rt=("${FL_RT[@]}")
for st in "ingress c1" "router" "worker 0" "relay"; do
    read -r -a FL_RT <<<"${rt_of[$st]}"
    fl_row "1 kill -9 ${st%% *} (restart times)" "${#FL_RT[@]}" "-" "-" "-" "-"
done
FL_RT=("${all_rt[@]}")

fails=()
for s in s_seq s_par; do
    f=$LIB_TMP/$s.log
    [[ $(result_field "$f" lost) == 0 ]] || fails+=("$s lost $(result_field "$f" lost)")
    [[ $(result_field "$f" unique) == "$N" ]] || fails+=("$s unique $(result_field "$f" unique) of $N")
    [[ $(result_field "$f" badsum) == 0 ]] || fails+=("$s badsum $(result_field "$f" badsum)")
done
[[ $(result_field "$LIB_TMP/s_seq.log" reorder) == 0 ]] ||
    fails+=("sequential rule reordered $(result_field "$LIB_TMP/s_seq.log" reorder)")
((FL_DUP <= FL_KILLS * DUP_PER_KILL)) ||
    fails+=("$FL_DUP duplicates > $DUP_PER_KILL per kill ($FL_KILLS kills)")
p99=$(fl_pct 99 "${FL_RT[@]}")
((p99 <= RESTART_MAX_MS)) || fails+=("restart time p99 ${p99} ms > ${RESTART_MAX_MS} ms")
((${#fails[@]} == 0)) || lib_fail "$(printf '%s; ' "${fails[@]}")"
it_stop "$conf"
lib_log "PASS"
