# 23-worker-crash: a callback that segfaults on one message takes down only its worker.
#
# Two sequential rules on 2 workers (sequential rules are spread by rank: one per worker):
#   crashy  in/crash/#   segv_every (dies of SIGSEGV on a payload containing "CRASH")
#   steady  in/steady/#  echo
# At the same time: 3,000 messages to steady at 600/s, and 200 JSON messages to crashy at
# 100/s of which only seq 100 carries "CRASH". Asserted:
#  - steady: all 3,000 arrive, no duplicate, in order; its worker never restarted;
#  - crashy: its worker was restarted (status RESTARTS >= 1) and the poison message was
#    skipped after max_attempts (3): every other message (0..99 and 101..199) arrives
#    (duplicates of messages re-run after a crash are allowed and reported), seq 100 never,
#    and the worker's dead counter (mqttflow status --prom) is 1;
#  - exactly one worker restarted; every stage is running again; clean stop.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_poison_load crash segv_every CRASH 3000 600 200 100 100 "max_attempts: 3"
it_poison_check crash 3000 200 100
tail -n 40 "$LIB_TMP/mf.log" | grep -iE 'died|dead|restart' >&2

grep -q '"seq":199,' "$LIB_TMP/s_crash.log" || lib_fail "the last message of the crashing rule did not come out"

# which worker crashed: exactly one, restarted at least once, and it dead-lettered one record
it_workers_restarted
crashed=("${IT_RESTARTED[@]}") ok=("${IT_NOT_RESTARTED[@]}")
expect_eq "workers that restarted" "${#crashed[@]}" 1
w=${crashed[0]}
expect_eq "dead-lettered records of worker $w" \
    "$(it_metric "$conf" mqttflow_stage_dead_total worker "$w")" 1
expect_eq "dead-lettered records of worker ${ok[0]}" \
    "$(it_metric "$conf" mqttflow_stage_dead_total worker "${ok[0]}")" 0
for s in router relay; do
    expect_eq "$s restarts" "$(it_metric "$conf" mqttflow_stage_restarts_total "$s")" 0
done
grep -q SIGSEGV "$LIB_TMP/mf.log" || lib_fail "the supervisor's log does not say a worker died of SIGSEGV"
it_until 10 '[[ $(it_status "$conf" | awk '\''$1 == "worker" && $5 != "running"'\'' | wc -l) == 0 ]]' ||
    lib_fail "not every worker is running again: $(it_status "$conf")"

it_stop "$conf"
lib_log "PASS"
