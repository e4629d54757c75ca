# 41-fault-poison: issue 4 fault test 2. Poison messages: a callback that segfaults on every
# 1000th message, one that aborts, one that never returns; only their workers restart, the
# other rule keeps flowing, each poison message is dead-lettered after max_attempts with its
# reason.
#
# 4 sequential rules, one per worker (rank order), runtime max_attempts 3,
# callback_timeout_ms 300, all at QoS 1 in and out:
#   segv   in/segv/#    segv_every, every: 1000 (JSON payloads: seq 0, 1000, 2000 ... poison)
#   abrt   in/abrt/#    abort_on (JSON payloads whose value is "ABORT": 1 in 250)
#   hang   in/hang/#    hang_on  (JSON payloads whose value is "HANG": 1 in 250)
#   steady in/steady/#  echo     (binary test payloads at FL_RATE msg/s)
# Asserted: steady: all N, lost 0, dup 0, reorder 0, its worker never restarted; each poison
# rule: every non-poison message arrives (unique = N - poisons; mfsub counts the poison
# sequence numbers as its only "lost"), no reordering (a sequential rule re-runs the crashed
# batch in order), its worker's dead counter = poisons, and dead-letters.jsonl holds one line
# per poison message with that rule, its callback and a reason that names what killed the
# worker (SIGSEGV, SIGABRT, timed out: issue 4 "the signal or error"); every stage runs at
# the end; clean stop.
# Quick: segv 3,000 messages (3 poison), abrt 1,000 (4), hang 500 (2). SOAK=1: x4.
# shellcheck source=tests/integration/faultlib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/faultlib.sh"

it_require "$IT_CB/echo.so" "$IT_CB/segv_every.so" "$IT_CB/abort_on.so" "$IT_CB/hang_on.so"
it_broker || lib_fail "broker did not start"
K=$(fl_rounds 1 4)

it_conf 'topics: [{name: "in/#", qos: 1}]' -- 4 "max_attempts: 3" "callback_timeout_ms: 300" <<EOF2
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
  segv: {module: "$IT_CB/segv_every.so", function: "segv_every"}
  abrt: {module: "$IT_CB/abort_on.so", function: "abort_on"}
  hang: {module: "$IT_CB/hang_on.so", function: "hang_on"}
rules:
  - {rule: "segv", topic: "in/segv/#", action: "segv_chain", execution_mode: "sequential"}
  - {rule: "abrt", topic: "in/abrt/#", action: "abrt_chain", execution_mode: "sequential"}
  - {rule: "hang", topic: "in/hang/#", action: "hang_chain", execution_mode: "sequential"}
  - {rule: "steady", topic: "in/steady/#", action: "steady_chain", execution_mode: "sequential"}
processing_chains:
  segv_chain:
    - {step: "custom_processor", config: {callback: "segv", topic: "out/segv", every: 1000}}
    - {step: "relay", config: {qos: 1}}
  abrt_chain:
    - {step: "custom_processor", config: {callback: "abrt", topic: "out/abrt"}}
    - {step: "relay", config: {qos: 1}}
  hang_chain:
    - {step: "custom_processor", config: {callback: "hang", topic: "out/hang"}}
    - {step: "relay", config: {qos: 1}}
  steady_chain:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
    - {step: "relay", config: {qos: 1}}
EOF2
it_start "$conf"

N_SEGV=$((3000 * K))
N_ABRT=$((1000 * K))
N_HANG=$((500 * K))
P_SEGV=$(((N_SEGV + 999) / 1000))
P_ABRT=$((N_ABRT / 250))
P_HANG=$((N_HANG / 250))
N_STEADY=$((FL_RATE * 6 * K))
# JSON values: the 126th of every 250 is the poison word
vals() {
    local i v=""
    for ((i = 0; i < 250; i++)); do
        if ((i == 125)); then v+="\"$1\""; else v+=$i; fi
        ((i < 249)) && v+=,
    done
    echo "$v"
}
T=$((60 * K + 60))
it_sub s_steady -p "$MQTT_PORT" -t 'out/in/steady/#' -q 1 -n $N_STEADY -I 30 -T $T
it_sub s_segv -p "$MQTT_PORT" -t 'out/segv' -q 1 -n $((N_SEGV - P_SEGV)) -I 30 -T $T
it_sub s_abrt -p "$MQTT_PORT" -t 'out/abrt' -q 1 -n $((N_ABRT - P_ABRT)) -I 30 -T $T
it_sub s_hang -p "$MQTT_PORT" -t 'out/hang' -q 1 -n $((N_HANG - P_HANG)) -I 30 -T $T

pubs=()
pub() { # NAME ARGS...
    local n=$1
    shift
    "$MFPUB" -p "$MQTT_PORT" -q 1 -W $T "$@" >"$LIB_TMP/$n.log" 2>&1 &
    lib_track $!
    pubs+=("$n:$!")
}
pub p_steady -i 1 -n $N_STEADY -r "$FL_RATE" -t in/steady/a
pub p_segv -i 2 -n $N_SEGV -r 500 -t in/segv/a -j
pub p_abrt -i 3 -n $N_ABRT -r 170 -t in/abrt/a -j -V "$(vals ABORT)"
pub p_hang -i 4 -n $N_HANG -r 85 -t in/hang/a -j -V "$(vals HANG)"
for p in "${pubs[@]}"; do
    wait "${p#*:}" || lib_fail "mfpub ${p%%:*} did not complete: $(tail -n 2 "$LIB_TMP/${p%%:*}.log")"
done
it_sub_results $T s_steady s_segv s_abrt s_hang
it_status "$conf" >&2

fails=()
chk() { # WHAT GOT WANT
    [[ $2 == "$3" ]] || fails+=("$1: got '$2', want '$3'")
}
f=$LIB_TMP/s_steady.log
chk "steady lost" "$(result_field "$f" lost)" 0
chk "steady unique" "$(result_field "$f" unique)" $N_STEADY
chk "steady dup" "$(result_field "$f" dup)" 0
chk "steady reorder" "$(result_field "$f" reorder)" 0
# which worker runs which rule: the one whose in counter moved with it
restarts_total=0
steady_w=""
for w in 0 1 2 3; do
    rs=$(it_metric "$conf" mqttflow_stage_restarts_total worker $w)
    dead=$(it_metric "$conf" mqttflow_stage_dead_total worker $w)
    win=$(it_metric "$conf" mqttflow_stage_in_total worker $w)
    lib_log "worker $w: in $win restarts $rs dead $dead"
    restarts_total=$((restarts_total + rs))
    # the steady rule's worker is the only one with nothing dead-lettered and its N in
    if [[ $dead == 0 && $win -ge $N_STEADY ]]; then steady_w=$w; fi
done
[[ -n $steady_w ]] || fails+=("no worker took the steady rule cleanly")
[[ -z $steady_w ]] ||
    chk "restarts of the steady rule's worker $steady_w" \
        "$(it_metric "$conf" mqttflow_stage_restarts_total worker "$steady_w")" 0
for st in ingress router relay; do
    chk "restarts of $st" "$(fl_metric_sum "$conf" mqttflow_stage_restarts_total $st)" 0
done
lost_extra=0
for r in segv:$N_SEGV:$P_SEGV abrt:$N_ABRT:$P_ABRT hang:$N_HANG:$P_HANG; do
    IFS=: read -r name n p <<<"$r"
    f=$LIB_TMP/s_$name.log
    chk "$name unique" "$(result_field "$f" unique)" $((n - p))
    chk "$name lost (= its poison messages)" "$(result_field "$f" lost)" "$p"
    chk "$name reorder" "$(result_field "$f" reorder)" 0
    lost_extra=$((lost_extra + $(result_field "$f" lost) - p))
done
chk "dead counters of the workers" "$(fl_metric_sum "$conf" mqttflow_stage_dead_total worker)" \
    $((P_SEGV + P_ABRT + P_HANG))
dl=$LIB_TMP/dead/$(basename "${DEADLETTER_FILE:-dead-letters.jsonl}")
it_until 10 '[[ $(wc -l <"$dl" 2>/dev/null || echo 0) -ge $((P_SEGV + P_ABRT + P_HANG)) ]]'
for r in segv:$P_SEGV abrt:$P_ABRT hang:$P_HANG; do
    name=${r%%:*}
    p=${r#*:}
    got=$(grep -c "\"rule\": *\"$name\"" "$dl" 2>/dev/null)
    chk "dead letters of rule $name in $dl" "${got:-0}" "$p"
    bad=$(grep "\"rule\": *\"$name\"" "$dl" 2>/dev/null |
        grep -vc "\"callback\": *\"$name\".*\"reason\": *\"[^\"]")
    chk "dead letters of $name without callback or reason" "${bad:-0}" 0
done
lib_log "dead letters: $(head -c 600 "$dl" 2>/dev/null)"
# the reason names what killed the worker (issue 4: "the signal or error")
for r in "segv:SIGSEGV" "abrt:SIGABRT" "hang:(timed out|watchdog)"; do
    name=${r%%:*}
    grep "\"rule\": *\"$name\"" "$dl" 2>/dev/null | grep -Eq "\"reason\": *\"[^\"]*${r#*:}" ||
        fails+=("the dead letters of rule $name do not name ${r#*:} in their reason")
done
for w in 0 1 2 3; do
    chk "worker $w up" "$(it_metric "$conf" mqttflow_stage_up worker $w)" 1
done

fl_log_restarts "$IT_LOG" '^worker'
fl_sub_sum s_steady s_segv s_abrt s_hang
fl_row "2 poison: segv/abort/hang" "$((P_SEGV + P_ABRT + P_HANG)) poison" \
    $((N_STEADY + N_SEGV + N_ABRT + N_HANG)) "$lost_extra" "$FL_DUP" "$FL_REORDER"
((${#fails[@]} == 0)) || lib_fail "$(printf '%s; ' "${fails[@]}")"
it_stop "$conf"
lib_log "PASS"
