# 28-callback-hang: a callback that never returns is cut off by runtime.callback_timeout_ms.
#
# Two sequential rules on 2 workers (one per worker), callback_timeout_ms 300, max_attempts 2:
#   hangy   in/hang/#    hang_on (loops forever on a payload containing "HANG")
#   steady  in/steady/#  echo
# At the same time: 2,000 messages to steady at 500/s, and 100 JSON messages to hangy at
# 50/s of which only seq 50 carries "HANG". Asserted:
#  - steady: all 2,000 arrive, in order, no duplicate; its worker never restarted;
#  - hangy: its worker was killed and restarted (RESTARTS >= 1), the hanging message was
#    dead-lettered (dead counter 1) and never came out, every other one (0..49, 51..99) did;
#  - `mqttflow status` answered while the worker hung; clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_poison_load hang hang_on HANG 2000 500 100 50 50 "max_attempts: 2" "callback_timeout_ms: 300"

# while the hanging message is being retried, status must answer
it_status "$conf" >"$LIB_TMP/status_during.txt" || lib_fail "status did not answer during the hang"
it_poison_check hang 2000 100 50
grep -E 'callback|died|dead message' "$LIB_TMP/mf.log" | head -n 12 >&2

it_workers_restarted
crashed=("${IT_RESTARTED[@]}")
expect_eq "workers that restarted" "${#crashed[@]}" 1
expect_eq "dead-lettered by worker ${crashed[0]}" \
    "$(it_metric "$conf" mqttflow_stage_dead_total worker "${crashed[0]}")" 1
grep -qi 'timeout\|callback_timeout_ms\|watchdog' "$LIB_TMP/mf.log" ||
    lib_fail "nothing in the log says that a callback ran past its timeout"

it_stop "$conf"
lib_log "PASS"
