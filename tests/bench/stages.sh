#!/usr/bin/env bash
# stages.sh: CPU and system calls per message of each mqttflow stage, so a regression shows in
# the stage that caused it.
#
#   BUILD=build tests/bench/stages.sh        (knobs: STAGES_N, STAGES_RATE, STAGES_RATE_N,
#                                             STAGES_QOS, STAGES_REPS, STAGES_SIZE)
#
# Pipeline: mfpub -> mosquitto (in/#) -> ingress -> router -> worker (the C callback echo of
# tests/callbacks: forwards every message to out/<topic>) -> relay -> mosquitto -> mfsub on
# out/#, one worker. Two loads: full speed (STAGES_N messages) and STAGES_RATE msg/s
# (STAGES_RATE_N messages). Per stage process:
#  - CPU: utime + stime of /proc/PID/stat (all its threads) across the run, per message;
#  - system calls: `perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_futex,
#    syscalls:sys_enter_futex_waitv -p PID` across the run, per message (futex and futex_waitv
#    apart: the wake-up traffic). perf counts a tracepoint in the kernel without stopping the
#    process (strace -c stops it at every call and distorts the figures many times over); the
#    cost is a counter increment per call, well under the noise here.
# A row is the median of STAGES_REPS runs (each: a fresh mfsub, the same running instance).
# "sup" is the supervisor. CPU granularity is one clock tick (10 ms): the runs are long
# enough that this is under 2% of any stage's figure above 1 us/msg.
# shellcheck source=tests/bench/benchlib.sh
. "$(dirname "$0")/benchlib.sh"
N=${STAGES_N:-100000}
RATE=${STAGES_RATE:-5000}
RATE_N=${STAGES_RATE_N:-25000}
QOS=${STAGES_QOS:-0}
REPS=${STAGES_REPS:-3}
SIZE=${STAGES_SIZE:-64}
it_require "$IT_CB/echo.so"
command -v perf >/dev/null || {
    echo "stages: perf not installed (linux-perf); skipped"
    exit 0
}

bench_echo_start stages "$QOS"

# stage name -> pid, from the supervisor's children (comm is cut at 15 characters)
declare -A PID
PID[sup]=$mf_PID
for c in $(cat /proc/"$mf_PID"/task/*/children); do
    case $(cat /proc/"$c"/comm) in
    mqttflow-ingres*) PID[ingress]=$c ;;
    mqttflow-router) PID[router]=$c ;;
    mqttflow-worker) PID[worker]=$c ;;
    mqttflow-relay) PID[relay]=$c ;;
    esac
done
STAGES="ingress router worker relay sup"
for s in $STAGES; do
    [[ -n ${PID[$s]:-} ]] || lib_fail "no $s process among the supervisor's children"
done

ticks() { # PID: utime + stime in clock ticks (fields 14 and 15; comm has no spaces here)
    awk '{ print $14 + $15 }' /proc/"$1"/stat
}

# one_run LABEL RATE COUNT: appends "label stage cpu_us sys futex" lines to $LIB_TMP/rows
one_run() {
    local label=$1 rate=$2 n=$3 s rargs=() t0 t1
    declare -A c0 c1 perfpid
    rm -f "$LIB_TMP/sub.ready"
    lib_spawn sub "$MFSUB" -H 127.0.0.1 -p "$MQTT_PORT" -t 'out/#' -q "$QOS" -n "$n" -I 10 \
        -R "$LIB_TMP/sub.ready"
    wait_file "$LIB_TMP/sub.ready" 15 || lib_fail "mfsub did not subscribe"
    for s in $STAGES; do
        perf stat -x, -e raw_syscalls:sys_enter,syscalls:sys_enter_futex \
            -e syscalls:sys_enter_futex_waitv -p "${PID[$s]}" -o "$LIB_TMP/perf.$s" &
        perfpid[$s]=$!
        lib_track "${perfpid[$s]}"
    done
    sleep 0.5 # perf attaches asynchronously; an attach that misses the first messages
    # would undercount the calls, never the CPU
    for s in $STAGES; do c0[$s]=$(ticks "${PID[$s]}"); done
    [[ $rate == 0 ]] || rargs=(-r "$rate")
    t0=$(date +%s.%N)
    "$MFPUB" -H 127.0.0.1 -p "$MQTT_PORT" -t in/bench -n "$n" -s "$SIZE" -q "$QOS" \
        "${rargs[@]}" >"$LIB_TMP/pub.log" 2>&1 || lib_fail "mfpub failed: $(tail -n 2 "$LIB_TMP/pub.log")"
    it_wait_exit "$sub_PID" 120 || lib_fail "mfsub did not finish"
    t1=$(date +%s.%N)
    for s in $STAGES; do c1[$s]=$(ticks "${PID[$s]}"); done
    for s in $STAGES; do kill -INT "${perfpid[$s]}"; done
    for s in $STAGES; do wait "${perfpid[$s]}" 2>/dev/null || true; done
    local unique lost dup p50 p99
    p50=$(result_field "$LIB_TMP/sub.log" p50_us)
    p99=$(result_field "$LIB_TMP/sub.log" p99_us)
    unique=$(result_field "$LIB_TMP/sub.log" unique)
    lost=$(result_field "$LIB_TMP/sub.log" lost)
    dup=$(result_field "$LIB_TMP/sub.log" dup)
    for s in $STAGES; do
        local sys fut futv
        sys=$(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$LIB_TMP/perf.$s")
        fut=$(awk -F, '$3 == "syscalls:sys_enter_futex" { print $1 }' "$LIB_TMP/perf.$s")
        futv=$(awk -F, '$3 == "syscalls:sys_enter_futex_waitv" { print $1 }' "$LIB_TMP/perf.$s")
        echo "$label $s $(((c1[$s] - c0[$s]) * 10000)) ${sys:-0} $((${fut:-0} + ${futv:-0})) $n"
    done >>"$LIB_TMP/rows"
    echo "$label $(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }') $unique $lost $dup $p50 $p99" >>"$LIB_TMP/runs"
}

: >"$LIB_TMP/rows"
: >"$LIB_TMP/runs"
for ((r = 0; r < REPS; r++)); do
    one_run full 0 "$N"
    one_run "rate$RATE" "$RATE" "$RATE_N"
done

echo "Per stage, QoS $QOS, $SIZE B payloads, median of $REPS runs ($BUILD):"
echo "full = $N msgs as fast as mfpub goes; rate$RATE = $RATE_N msgs at $RATE msg/s."
echo
echo "| load | stage | CPU us/msg | syscalls/msg | futex/msg |"
echo "|---|---|---:|---:|---:|"
# median per (load, stage): cpu in ns-ish units (ticks * 10000 = us * 100 per 1 msg scale)
awk '
    { key = $1 " " $2; n[key]++; cpu[key, n[key]] = $3 / $6; sys[key, n[key]] = $4 / $6;
      fut[key, n[key]] = $5 / $6; if (!(key in seen)) { seen[key] = 1; order[++k] = key } }
    function med(a, key, cnt,    i, j, t, v) {
        for (i = 1; i <= cnt; i++) v[i] = a[key, i]
        for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return v[int((cnt + 1) / 2)]
    }
    END {
        for (i = 1; i <= k; i++) {
            key = order[i]; split(key, p, " ")
            printf "| %s | %s | %.2f | %.2f | %.2f |\n", p[1], p[2], med(cpu, key, n[key]),
                med(sys, key, n[key]), med(fut, key, n[key])
        }
    }' "$LIB_TMP/rows"
echo
echo "| load | msg/s (per run) | unique | lost | dup | p50 us | p99 us |"
echo "|---|---|---|---|---|---|---|"
awk '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$LIB_TMP/runs"
it_stop "$conf"
