#!/usr/bin/env bash
# Python callbacks benchmark (`make bench`'s "python" section; issue 10), every figure beside
# its baseline measured in the same run:
#
#  0. the Python step alone against the same step in C, inside one process (bench_pystep: the
#     worker's chain_run, no broker), in ns per message;
# then on the reference harness of ../shared/bench:
#  1. forwarding in/# -> out/#: the harness's relay_py (paho-mqtt 1.x, the replaced framework's
#     style) vs mqttflow running a Python callback (python/forward.py) vs mqttflow running the
#     C callback it twins (tests/callbacks/forward.c), QoS 0 and 1. Reported: throughput
#     ratios and the CPU per message of the whole mqttflow process tree, whose difference
#     between the Python and the C run is the Python step's cost per message.
#  2. CPU-heavy: about 200 us of pure Python per message (python/heavy.py, the loop count
#     calibrated here), mqttflow with 1 worker vs 2 workers in `parallel` mode, and the
#     framework's `threaded` mode modelled (python/threaded_relay.py: a thread pool under one
#     interpreter), QoS 1.
#
# The copy of the harness gets one generic scenario kind, cmd_NAME, which runs $CMD_NAME the
# way its `pipeline` scenario runs $PIPELINE_CMD (so several commands share one run).
# Knobs: N (forwarding, default 100000), HEAVY_N (20000), REPS (3), QOS_LIST ("0 1"),
# HEAVY_QOS ("1"), PARTS ("0 1 2": which of the above), QUIET_WAIT, PORT (default: the first free one from 18840), SHARED_BENCH,
# BENCH_WORK.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
PY=${PY:-/usr/bin/python3}
if [ ! -d "$SHARED" ]; then
    echo "python bench: no reference harness at $SHARED (set SHARED_BENCH); skipped"
    exit 0
fi
for f in "$BUILD/bin/mqttflow-python.so" "$BUILD/tests/callbacks/forward.so"; do
    [ -f "$f" ] || { echo "python bench: $f missing (make first)"; exit 1; }
done
work=${BENCH_WORK:-/tmp/mqttflow-harness-py}
mkdir -p "$work"
cp -r "$SHARED/." "$work/"
chmod -R u+w "$work"
make -s -C "$work" >/dev/null
# cmd_NAME: like `pipeline`, with the command in $CMD_NAME
grep -q '^	cmd_\*)' "$work/run.sh" ||
    sed -i 's|^\tpipeline)$|\tcmd_*)\n\t\tv=CMD_${sc#cmd_}; start_group "$f.relay" timeout "$life" bash -c "${!v}" ;;\n\tpipeline)|' \
        "$work/run.sh"
grep -q '^	cmd_\*)' "$work/run.sh" || { echo "python bench: cannot add cmd_ scenarios"; exit 1; }
export BUILD
B=$ROOT/tests/bench/python
export CMD_py="BENCH_CB=$B/forward.py:forward exec $B/pipeline_cmd.sh"
export CMD_c="BENCH_CB=$BUILD/tests/callbacks/forward.so:forward exec $B/pipeline_cmd.sh"
loops=$("$PY" "$B/benchwork.py")
heavy="BENCH_CB=$B/heavy.py:forward_heavy BENCH_LOOPS=$loops BENCH_MODE=parallel"
export CMD_heavy1="$heavy BENCH_WORKERS=1 exec $B/pipeline_cmd.sh"
export CMD_heavy2="$heavy BENCH_WORKERS=2 exec $B/pipeline_cmd.sh"
export CMD_threaded="exec $PY $B/threaded_relay.py \$MQTT_HOST \$MQTT_PORT \$HARNESS_QOS $loops 4"
stamp=$(date +%Y%m%d-%H%M%S)
# the harness's own broker port: another harness on this machine may hold its default
if [ -z "${PORT:-}" ]; then
    for PORT in $(seq 18840 18899); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || break
    done
fi
export PORT

# summary CSV...: per (scenario, QoS) of the tp runs: median rate, lost (sum), mqttflow CPU
# us/msg (median relay_cpu_pct / 100 / rate)
summary() {
    awk -F, 'FNR == 1 { next } $3 == "tp" {
            k = $1 SUBSEP $2; if (!(k in n)) order[++no] = k
            n[k]++; r[k, n[k]] = $11; lost[k] += $7; c[k, n[k]] = $21
        }
        function med(a, k, m,   i, j, t, v) {
            for (i = 1; i <= m; i++) v[i] = a[k, i] + 0
            for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
            return v[int((m + 1) / 2)]
        }
        END {
            for (i = 1; i <= no; i++) {
                k = order[i]; split(k, p, SUBSEP); m = n[k]
                rate = med(r, k, m); cpu = med(c, k, m)
                printf "%s %s %.0f %d %.2f\n", p[1], p[2], rate, lost[k], (rate > 0 ? cpu / 100 / rate * 1e6 : 0)
            }
        }' "$@"
}

PARTS=${PARTS:-"0 1 2"}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

if part 0; then
echo "### 0. the Python forwarding step vs the C one, in one process (bench_pystep)"
echo
(cd "$ROOT" && BUILD=$BUILD "$BUILD/tests/bench/bench_pystep" "${PYSTEP_N:-200000}" 5)
echo
fi

if part 1; then
echo "### 1. forwarding in/# -> out/#: relay_py vs a Python callback vs the C callback"
(cd "$work" && OUT=$work/runs/py-fwd-$stamp SCENARIOS="relay_py cmd_py cmd_c" \
    QOS_LIST=${QOS_LIST:-"0 1"} N=${N:-100000} REPS=${REPS:-3} ./run.sh >/dev/null 2>&1) || true
fwd=$(summary "$work/runs/py-fwd-$stamp/results.csv")
echo
echo "| run | QoS | msgs/s (median) | lost | mqttflow CPU us/msg |"
echo "|---|---|---|---|---|"
awk '{ printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, ($1 == "relay_py" ? "-" : $5) }' <<<"$fwd"
echo
echo "| QoS | Python callback / relay_py (goal >= 1.8) | Python callback / C callback | Python step cost, us/msg (CPU, Python - C; goal <= 5) |"
echo "|---|---|---|---|"
awk '{ rate[$1, $2] = $3; cpu[$1, $2] = $5; q[$2] = 1 }
    END { for (k in q) printf "| %s | %s | %s | %s |\n", k,
        rate["relay_py", k] ? sprintf("%.2f", rate["cmd_py", k] / rate["relay_py", k]) : "-",
        rate["cmd_c", k] ? sprintf("%.2f", rate["cmd_py", k] / rate["cmd_c", k]) : "-",
        (("cmd_py", k) in cpu && ("cmd_c", k) in cpu) ? sprintf("%.2f", cpu["cmd_py", k] - cpu["cmd_c", k]) : "-" }' <<<"$fwd" | sort
echo
echo "harness table: $work/runs/py-fwd-$stamp/table.md"
fi

if part 2; then
echo
echo "### 2. CPU-heavy Python callback (~200 us/msg: $loops loops): 1 vs 2 workers (parallel) vs the framework's threaded mode"
(cd "$work" && OUT=$work/runs/py-heavy-$stamp SCENARIOS="cmd_heavy1 cmd_heavy2 cmd_threaded" \
    QOS_LIST=${HEAVY_QOS:-1} N=${HEAVY_N:-20000} WARMUP=2000 REPS=${REPS:-3} LAT_RATE=1000 \
    LAT_SECS=3 ./run.sh >/dev/null 2>&1) || true
heavyres=$(summary "$work/runs/py-heavy-$stamp/results.csv")
echo
echo "| run | QoS | msgs/s (median) | lost |"
echo "|---|---|---|---|"
awk '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' <<<"$heavyres"
echo
awk '{ rate[$1, $2] = $3; q[$2] = 1 }
    END { for (k in q) printf "QoS %s: 2 workers / 1 worker = %s (goal >= 1.5); 2 workers / threaded = %s\n", k,
        rate["cmd_heavy1", k] ? sprintf("%.2f", rate["cmd_heavy2", k] / rate["cmd_heavy1", k]) : "-",
        rate["cmd_threaded", k] ? sprintf("%.2f", rate["cmd_heavy2", k] / rate["cmd_threaded", k]) : "-" }' <<<"$heavyres"
echo "harness table: $work/runs/py-heavy-$stamp/table.md"
fi
