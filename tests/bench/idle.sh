#!/usr/bin/env bash
# idle.sh: CPU of an idle mqttflow instance (no traffic), per process and in total, as % of
# one core, from /proc/PID/stat (utime + stime of all threads) over IDLE_SECS (default 60).
# The same pipeline as stages.sh (mosquitto, one echo rule, one worker), started and then left
# alone after a settle time. Goal (issue 7): under 0.5% of one core in total.
#   BUILD=build IDLE_SECS=60 tests/bench/idle.sh
# shellcheck source=tests/bench/benchlib.sh
. "$(dirname "$0")/benchlib.sh"
SECS=${IDLE_SECS:-60}
it_require "$IT_CB/echo.so"

bench_echo_start idle 1
sleep 2 # settle: start-up work (connects, first heartbeats) is not idle use

declare -A PID T0
PID[sup]=$mf_PID
for c in $(cat /proc/"$mf_PID"/task/*/children); do
    PID[$(cat /proc/"$c"/comm)]=$c
done
ticks() { awk '{ print $14 + $15 }' /proc/"$1"/stat; }
wakeups() { # voluntary + involuntary context switches of every thread of PID
    cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ { n += $2 } END { print n }'
}
declare -A W0
for s in "${!PID[@]}"; do
    T0[$s]=$(ticks "${PID[$s]}")
    W0[$s]=$(wakeups "${PID[$s]}")
done
sleep "$SECS"
tck=$(getconf CLK_TCK)
total=0
echo "Idle instance, $SECS s, $BUILD:"
echo
echo "| process | CPU % of one core | context switches/s |"
echo "|---|---:|---:|"
for s in $(printf '%s\n' "${!PID[@]}" | sort); do
    d=$(($(ticks "${PID[$s]}") - T0[$s]))
    w=$(($(wakeups "${PID[$s]}") - W0[$s]))
    total=$((total + d))
    awk -v d="$d" -v t="$tck" -v s="$SECS" -v n="$s" -v w="$w" \
        'BEGIN { printf "| %s | %.3f | %.1f |\n", n, 100 * d / t / s, w / s }'
done
awk -v d="$total" -v t="$tck" -v s="$SECS" 'BEGIN { printf "| total | %.3f | |\n", 100 * d / t / s }'
it_stop "$conf"
