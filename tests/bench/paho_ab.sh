#!/usr/bin/env bash
# paho A/B: the whole pipeline through the reference harness (../shared/bench) once with
# Debian's libpaho-mqtt and once with mqttflow's private PAHO_HIGH_PERFORMANCE build
# (scripts/paho.sh, staged by make into $BUILD/lib/mqttflow), each harness run beside relay_c
# (Debian's paho) as its same-run baseline, plus the CPU per message of every stage: user +
# system time from /proc/PID/stat, sampled each second over the pipeline's life, divided by the
# messages of that life (warm-up + N x REPS + the latency run).
#
#   tests/bench/paho_ab.sh                   SCENARIOS="relay_c pipeline" N=50000 REPS=3
#   N=100000 QOS_LIST=0 tests/bench/paho_ab.sh    (any harness knob)
#   PRIVATE_DIR=/some/dir tests/bench/paho_ab.sh  (another directory holding libpaho-mqtt3as.so.1:
#                                            with a copy of the system's one, an A/A run)
# Prints both harness tables, then one table: msgs/s, CPU us/msg of the ingress, the relay and
# all stages, and the private/system ratios. Results stay in $BENCH_WORK/paho-ab-<time>/.
set -eu
SO=libpaho-mqtt3as.so.1

# --wrap OUT CMD...: run CMD (the pipeline) and keep OUT = "pid comm ticks" for every
# mqttflow process of this session, the last value seen of each (a stage that exits keeps its
# last sample, at most a second old: the harness stops the pipeline only after its runs)
if [ "${1:-}" = --wrap ]; then
    out=$2
    shift 2
    "$@" &
    child=$!
    trap 'kill -TERM "$child" 2>/dev/null' TERM INT
    declare -A seen
    sid=$(ps -o sid= -p $$ | tr -d " ")
    sample() {
        local p line
        for p in $(ps -o pid= -s "$sid"); do
            line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
            # comm may hold spaces: fields 14 and 15 (utime, stime) count from after ") "
            set -- ${line##*) }
            local comm=${line#*(}
            comm=${comm%%)*}
            [[ $comm == mqttflow* ]] && seen[$p]="$comm $((${12} + ${13}))"
        done
        for p in "${!seen[@]}"; do echo "$p ${seen[$p]}"; done >"$out.tmp"
        mv "$out.tmp" "$out"
    }
    while kill -0 "$child" 2>/dev/null; do
        sample
        sleep 1 &
        wait $! || true
    done
    wait "$child" || true
    exit 0
fi

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
[ -d "$SHARED" ] || { echo "paho A/B: no reference harness at $SHARED (set SHARED_BENCH)" >&2; exit 1; }
PRIVATE_DIR=${PRIVATE_DIR:-$BUILD/lib/mqttflow}
[ -f "$PRIVATE_DIR/$SO" ] || { echo "paho A/B: no $PRIVATE_DIR/$SO: run scripts/setup.sh, then make" >&2; exit 1; }
SYSTEM_DIR=$(dirname "$(ldconfig -p | awk -v so="$SO" '$1 == so { print $NF; exit }')")

work=${BENCH_WORK:-/tmp/mqttflow-harness}
mkdir -p "$work"
cp -r "$SHARED/." "$work/"
chmod -R u+w "$work"
make -s -C "$work" >/dev/null
res=$work/paho-ab-$(date +%Y%m%d-%H%M%S)
mkdir -p "$res"
export SCENARIOS=${SCENARIOS:-"relay_c pipeline"} N=${N:-50000} REPS=${REPS:-3}
export QOS_LIST=${QOS_LIST:-"0 1"} WARMUP=${WARMUP:-10000} LAT_RATE=${LAT_RATE:-5000}
export LAT_SECS=${LAT_SECS:-10} BUILD
msgs=$((WARMUP + N * REPS + LAT_RATE * LAT_SECS))

# the pipeline runs with LD_LIBRARY_PATH set to one directory (it wins over the rpath); the
# harness's own tools keep the system's paho either way
for v in system private; do
    dir=$SYSTEM_DIR
    [ "$v" = private ] && dir=$PRIVATE_DIR
    echo "=== paho $v: $dir/$SO" | tee -a "$res/summary.txt"
    # shellcheck disable=SC2016 # expanded by the harness's shell, which exports HARNESS_QOS
    (cd "$work" && OUT=$res/$v PIPELINE_CMD="exec env LD_LIBRARY_PATH='$dir' '$ROOT/tests/bench/paho_ab.sh' --wrap '$res/$v.cpu.q'\$HARNESS_QOS '$ROOT/tests/bench/pipeline_cmd.sh'" ./run.sh) |
        tee "$res/$v.out" | grep -E '^\| (scenario|---|relay_c|pipeline)' || true
done

# median msgs/s of the throughput runs, per scenario and QoS (results.csv: rate is column 11)
median_rate() { # dir scenario qos
    awk -F, -v s="$2" -v q="$3" '$1 == s && $2 == q && $3 == "tp" { print $11 }' "$1/results.csv" |
        sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print 0 }'
}
hz=$(getconf CLK_TCK)
us_per_msg() { # file comm-prefix ("" = all)
    [ -f "$1" ] || { echo "-"; return; }
    awk -v c="$2" -v hz="$hz" -v m="$msgs" 'index($2, c) == 1 { t += $3 } END { printf "%.1f", t * 1e6 / hz / m }' "$1"
}
{
    echo
    echo "N=$N REPS=$REPS WARMUP=$WARMUP latency $LAT_RATE msg/s x ${LAT_SECS}s: $msgs messages per pipeline life"
    echo "| QoS | paho | relay_c msg/s | pipeline msg/s | pipeline/relay_c | ingress us/msg | relay us/msg | all stages us/msg |"
    echo "|---|---|---|---|---|---|---|---|"
    for q in $QOS_LIST; do
        for v in system private; do
            rc=$(median_rate "$res/$v" relay_c "$q")
            pl=$(median_rate "$res/$v" pipeline "$q")
            f=$res/$v.cpu.q$q
            echo "| $q | $v | $rc | $pl | $(awk -v a="$pl" -v b="$rc" 'BEGIN { printf "%.2f", b ? a / b : 0 }') |" \
                "$(us_per_msg "$f" mqttflow-ingres) | $(us_per_msg "$f" mqttflow-relay) | $(us_per_msg "$f" "") |"
        done
        s=$(median_rate "$res/system" pipeline "$q")
        p=$(median_rate "$res/private" pipeline "$q")
        echo "| $q | private/system | | $(awk -v a="$p" -v b="$s" 'BEGIN { printf "%.2f", b ? a / b : 0 }') | |" \
            "$(awk -v a="$(us_per_msg "$res/private.cpu.q$q" mqttflow-ingres)" -v b="$(us_per_msg "$res/system.cpu.q$q" mqttflow-ingres)" 'BEGIN { printf "%.2f", b ? a / b : 0 }') |" \
            "$(awk -v a="$(us_per_msg "$res/private.cpu.q$q" mqttflow-relay)" -v b="$(us_per_msg "$res/system.cpu.q$q" mqttflow-relay)" 'BEGIN { printf "%.2f", b ? a / b : 0 }') |" \
            "$(awk -v a="$(us_per_msg "$res/private.cpu.q$q" "")" -v b="$(us_per_msg "$res/system.cpu.q$q" "")" 'BEGIN { printf "%.2f", b ? a / b : 0 }') |"
    done
    echo "results: $res"
} | tee -a "$res/summary.txt"
