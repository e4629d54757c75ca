# 48-fault-soak: issue 4 fault test 9. A soak with faults 1, 2 and 4 once a period: RSS of
# every mqttflow process, their open fds and the instance's /dev/shm segments stay flat after
# the warm-up, and nothing is lost.
#
# Broker 1: source c1 (clean_session: false) and target of rule "steady"; broker 2 (persistent
# subscriber): target t2 of rule "dn". 3 workers, sequential rules: steady (echo, QoS 1 out to
# c1), dn (echo, to t2), segv (segv_every: dies on a payload containing "CRASH"); 256 KiB
# rings (they wrap during the warm-up: see the config). Load: two
# publishers at FL_RATE / 2 msg/s each for the whole run. Each period: a sample (summed VmRSS
# and fd count over the supervisor and all its children, segment count), then
#   fault 1: kill -9 of one stage (ingress, router, worker 0, relay in turn),
#   fault 2: one "CRASH" message to the segv rule (dead-lettered after max_attempts),
#   fault 4: broker 2 stopped for OUT s and started again,
# then the rest of the period. The first period is the warm-up. Asserted: the last sample
# (after the load, once the rings are empty) is at most the first post-warm-up sample plus a
# tolerance (RSS +10% + 4 MiB, fds +8, segments +0); steady and dn: unique N, 0 lost;
# dead counter = periods; clean stop.
# Quick: 4 periods of 15 s (60 s), OUT 2 s. SOAK=1: 10 periods of 60 s (10 min), OUT 5 s.
# shellcheck source=tests/integration/faultlib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/faultlib.sh"

# Under ASan freed memory sits in a quarantine (256 MiB by default) that shows as RSS growth
# of a process that leaks nothing (LeakSanitizer reports real leaks at exit): keep it small so
# the flat-RSS assertion means the same in both builds.
[[ -n ${ASAN_OPTIONS:-} ]] && export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=1:thread_local_quarantine_size_kb=64"

it_require "$IT_CB/echo.so" "$IT_CB/segv_every.so" "$MOSQUITTO_PUB"
it_broker_b2
if ((FL_LONG)); then
    PERIODS=${FAULT_ROUNDS:-10} P=60 OUT=5
else
    PERIODS=${FAULT_ROUNDS:-4} P=15 OUT=2
fi
RATE=$((FL_RATE / 2))

# small rings: they wrap within the warm-up, so the ring pages a process has touched (part of
# its RSS) are all of them by then, and growth after it is the processes' own memory
it_conf 'clean_session: false' "$IT_RECONNECT" 'topics: [{name: "in/#", qos: 1}]' -- \
    3 "max_attempts: 3" 'ring_size: "256KiB"' 'max_payload: "64KiB"' <<EOF2
$(it_client t2 "$b2_PORT" "$IT_RECONNECT")
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
  segv: {module: "$IT_CB/segv_every.so", function: "segv_every"}
rules:
  - {rule: "steady", topic: "in/a/#", action: "to_c1", execution_mode: "sequential"}
  - {rule: "dn", topic: "in/dn/#", action: "to_t2", execution_mode: "sequential"}
  - {rule: "segv", topic: "in/segv/#", action: "segv_chain", execution_mode: "sequential"}
processing_chains:
$(it_echo_chain to_c1 c1)
$(it_echo_chain to_t2 t2)
  segv_chain:
    - {step: "custom_processor", config: {callback: "segv", topic: "out/segv"}}
EOF2
it_start "$conf"

N=$((RATE * (PERIODS * P + 2)))
T=$((PERIODS * P + 180))
it_sub s_steady -p "$MQTT_PORT" -t 'out/in/a/#' -q 1 -n $N -I 60 -T $T
it_sub s_dn -p "$b2_PORT" -c "it$$-sdn" -P -t 'out/#' -q 1 -n $N -I 60 -T $T
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n $N -r $RATE -t in/a/x -W $T >"$LIB_TMP/p_steady.log" 2>&1 &
p_steady=$!
lib_track $p_steady
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 2 -n $N -r $RATE -t in/dn/x -W $T >"$LIB_TMP/p_dn.log" 2>&1 &
p_dn=$!
lib_track $p_dn

# sample: "RSS_KB FDS SEGMENTS ANON_KB" over the supervisor's process tree
sample() {
    local p rss=0 fds=0 anon=0 v
    for p in $(fl_tree_pids "$mf_PID"); do
        grep -q mqttflow "/proc/$p/cmdline" 2>/dev/null || continue
        v=$(awk '/^RssAnon:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        anon=$((anon + ${v:-0}))
        v=$(fl_rss_kb "$p")
        rss=$((rss + ${v:-0}))
        v=$(fl_fds "$p")
        fds=$((fds + ${v:-0}))
    done
    echo "$rss $fds $(it_shm_left "$IT_INSTANCE") $anon"
}
samples=()
stages=("ingress c1" "router" "worker 0" "relay")
for ((c = 0; c < PERIODS; c++)); do
    t_p=$SECONDS
    samples+=("$(sample)")
    lib_log "period $c: sample (rss_kb fds segs anon_kb) ${samples[-1]}"
    # shellcheck disable=SC2086 # "ingress c1" is stage and id
    fl_kill_stage "$conf" ${stages[c % 4]}
    "$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t in/segv/x -m "CRASH-$c" ||
        lib_fail "mosquitto_pub of the poison message failed"
    broker_restart b2 "$OUT" || lib_fail "broker 2 did not come back"
    while ((SECONDS - t_p < P)); do sleep 0.5; done
done
it_wait_pub p_steady "steady"
it_wait_pub p_dn "dn"
it_sub_results $T s_steady s_dn
it_until 30 '[[ $(fl_metric_sum "$conf" mqttflow_stage_dead_total worker) -ge $PERIODS ]]'
last=$(sample)
lib_log "final sample (rss_kb fds segs anon_kb): $last"
it_status "$conf" >&2

fails=()
for s in s_steady s_dn; do
    f=$LIB_TMP/$s.log
    [[ $(result_field "$f" unique) == "$N" ]] || fails+=("$s unique $(result_field "$f" unique) of $N")
    [[ $(result_field "$f" lost) == 0 ]] || fails+=("$s lost $(result_field "$f" lost)")
done
[[ $(fl_metric_sum "$conf" mqttflow_stage_dead_total worker) == "$PERIODS" ]] ||
    fails+=("dead counters $(fl_metric_sum "$conf" mqttflow_stage_dead_total worker), want $PERIODS")
if ((PERIODS >= 2)); then
    read -r rss0 fds0 seg0 _ <<<"${samples[1]}"
    read -r rss1 fds1 seg1 _ <<<"$last"
    ((rss1 <= rss0 + rss0 / 10 + 4096)) || fails+=("RSS grew: ${rss0} kB after the warm-up, ${rss1} kB at the end")
    ((fds1 <= fds0 + 8)) || fails+=("open fds grew: $fds0 after the warm-up, $fds1 at the end")
    ((seg1 <= seg0)) || fails+=("/dev/shm segments grew: $seg0 after the warm-up, $seg1 at the end")
    lib_log "flat: rss ${rss0} -> ${rss1} kB, fds $fds0 -> $fds1, segments $seg0 -> $seg1"
fi
fl_sub_sum s_steady s_dn
fl_row "9 soak ${PERIODS}x${P}s (faults 1+2+4 per period)" "$((3 * PERIODS)) faults" $((2 * N)) \
    "$FL_LOST" "$FL_DUP" "$FL_REORDER"
((${#fails[@]} == 0)) || lib_fail "$(printf '%s; ' "${fails[@]}")"
it_stop "$conf"
lib_log "PASS"
