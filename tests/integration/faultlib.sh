# shellcheck shell=bash disable=SC2034
# faultlib.sh: helpers of the fault tests 40-59 (issue 4 "Fault tests"), on top of
# 39-pipeline-lib.sh (which sources lib.sh). Source it instead of 39-pipeline-lib.sh.
#
#   FL_LONG                  1 when SOAK=1 (the long variant `make soak` runs), else 0
#   fl_rounds QUICK LONG     prints FAULT_ROUNDS if set, else QUICK or LONG by FL_LONG
#   fl_now_ms                monotonic-enough wall clock in ms (date +%s%N)
#   fl_kill_stage CONF STAGE [ID]
#                            kill -9 of the stage's current pid (checked to be an mqttflow
#                            process), then polls `mqttflow status --prom` every 10 ms until
#                            the stage is up again with another pid: the restart time (kill
#                            -> ready event) is appended to FL_RT (ms); FL_KILLS counts kills
#   fl_time_until SECS 'EXPR' WHAT   it_until, lib_fail WHAT on timeout; the time it took
#                            appended to FL_RT and left in FL_MS (ms)
#   fl_pct P VALUE...        the P-th percentile (nearest rank) of the values, "-" if none
#   fl_row FAULT RUNS MSGS LOST DUP REORDERED
#                            appends one row to $BUILD/fault-results.tsv (header on first
#                            use), with restart p50/p99 from FL_RT
#   fl_metric_sum CONF METRIC STAGE   sum of METRIC over every id of STAGE
#   fl_tree_pids PID         PID and all its descendants (from /proc)
#   fl_cpu_ticks PID         utime+stime+cutime+cstime of PID (reaped children included)
#   fl_rss_kb PID / fl_fds PID        VmRSS in kB / number of open fds
#   fl_sub_sum NAME...       sums recv/unique/lost/dup/reorder over the mfsub logs NAME...
#                            into FL_RECV FL_UNIQUE FL_LOST FL_DUP FL_REORDER
#
# Rates: the quick variants run at FL_RATE msg/s per publisher (default 600; two publishers
# make 1,200 msg/s, which this 2-core machine sustains alongside other tests).

# shellcheck source=tests/integration/39-pipeline-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/39-pipeline-lib.sh"

FL_LONG=0
[[ ${SOAK:-0} == 1 ]] && FL_LONG=1
FL_RATE=${FL_RATE:-600}
FL_RT=()
FL_KILLS=0
FL_TSV=$BUILD/fault-results.tsv

fl_rounds() {
    if [[ -n ${FAULT_ROUNDS:-} ]]; then
        echo "$FAULT_ROUNDS"
    elif ((FL_LONG)); then
        echo "$2"
    else
        echo "$1"
    fi
}

fl_now_ms() {
    local t
    t=$(date +%s%N)
    echo $((t / 1000000))
}

fl_kill_stage() {
    local conf=$1 pid t0 t1 end up npid
    shift
    pid=$(it_metric "$conf" mqttflow_stage_pid "$@")
    [[ -n $pid && $pid -gt 0 ]] || lib_fail "no pid for $* in the status: $(it_status "$conf")"
    # the stage is the supervisor's child, not ours: make sure the pid is that stage's
    grep -q mqttflow "/proc/$pid/cmdline" 2>/dev/null || lib_fail "pid $pid of $* is not a stage"
    t0=$(fl_now_ms)
    kill -KILL "$pid" || lib_fail "kill -9 $pid ($*) failed"
    FL_KILLS=$((FL_KILLS + 1))
    end=$((t0 + 20000))
    while :; do
        npid=$(it_metric "$conf" mqttflow_stage_pid "$@")
        up=$(it_metric "$conf" mqttflow_stage_up "$@")
        [[ $up == 1 && -n $npid && $npid != 0 && $npid != "$pid" ]] && break
        t1=$(fl_now_ms)
        ((t1 < end)) || lib_fail "$* did not run again within 20 s of kill -9: $(it_status "$conf")"
        sleep 0.01
    done
    t1=$(fl_now_ms)
    FL_RT+=($((t1 - t0)))
    lib_log "kill -9 $* (pid $pid): running again as pid $npid after $((t1 - t0)) ms"
}

# fl_time_until SECS 'EXPR' WHAT: it_until SECS EXPR (lib_fail WHAT on timeout); the time it
# took is appended to FL_RT and left in FL_MS (ms)
fl_time_until() {
    local t0
    t0=$(fl_now_ms)
    it_until "$1" "$2" || lib_fail "$3"
    FL_MS=$(($(fl_now_ms) - t0))
    FL_RT+=("$FL_MS")
}

fl_pct() {
    local p=$1
    shift
    (($# > 0)) || {
        echo "-"
        return 0
    }
    printf '%s\n' "$@" | sort -n | awk -v p="$p" '{ v[NR] = $1 } END {
        r = int((p * NR + 99) / 100); if (r < 1) r = 1; if (r > NR) r = NR; print v[r] }'
}

fl_row() {
    local p50 p99
    p50=$(fl_pct 50 "${FL_RT[@]}")
    p99=$(fl_pct 99 "${FL_RT[@]}")
    [[ $p50 == - ]] || p50="${p50}ms"
    [[ $p99 == - ]] || p99="${p99}ms"
    mkdir -p "$(dirname "$FL_TSV")"
    [[ -s $FL_TSV ]] ||
        printf 'fault\tvariant\truns\tmessages\tlost\tdup\treordered\trestart_p50\trestart_p99\n' >"$FL_TSV"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$( ((FL_LONG)) && echo long || echo quick)" \
        "$2" "$3" "$4" "$5" "$6" "$p50" "$p99" >>"$FL_TSV"
    lib_log "row: $1 runs=$2 messages=$3 lost=$4 dup=$5 reordered=$6 restart p50=$p50 p99=$p99"
}

fl_metric_sum() {
    it_prom "$1" | awk -v m="$2" -v s="stage=\"$3\"" \
        'index($0, m "{") == 1 && index($0, s) { t += $NF } END { print t + 0 }'
}

fl_tree_pids() {
    local root=$1 f ppid pid changed=1
    local -A tree=([$root]=1)
    local all=()
    for f in /proc/[0-9]*/stat; do
        pid=${f#/proc/}
        pid=${pid%/stat}
        # field 4 is the ppid; comm (field 2) may hold spaces, so cut after the last ')'
        ppid=$(sed -n 's/.*) [A-Za-z] \([0-9]*\) .*/\1/p' "$f" 2>/dev/null) || continue
        [[ -n $ppid ]] && all+=("$pid:$ppid")
    done
    while ((changed)); do
        changed=0
        for f in "${all[@]}"; do
            pid=${f%:*}
            ppid=${f#*:}
            if [[ -n ${tree[$ppid]:-} && -z ${tree[$pid]:-} ]]; then
                tree[$pid]=1
                changed=1
            fi
        done
    done
    for pid in "${!tree[@]}"; do
        [[ -e /proc/$pid ]] && echo "$pid"
    done
}

fl_cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 + $14 + $15 }'
}

fl_rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

fl_fds() {
    find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l
}

fl_sub_sum() {
    local n f k
    FL_RECV=0 FL_UNIQUE=0 FL_LOST=0 FL_DUP=0 FL_REORDER=0
    for n in "$@"; do
        f=$LIB_TMP/$n.log
        for k in recv unique lost dup reorder; do
            local v
            v=$(result_field "$f" "$k")
            case $k in
            recv) FL_RECV=$((FL_RECV + ${v:-0})) ;;
            unique) FL_UNIQUE=$((FL_UNIQUE + ${v:-0})) ;;
            lost) FL_LOST=$((FL_LOST + ${v:-0})) ;;
            dup) FL_DUP=$((FL_DUP + ${v:-0})) ;;
            reorder) FL_REORDER=$((FL_REORDER + ${v:-0})) ;;
            esac
        done
    done
}

# fl_log_restarts LOG [STAGE_REGEX]: restart times from the supervisor's log (for deaths the
# test did not cause itself, e.g. poison messages): for each "<stage> (pid P) died" line, the
# time to the next "<stage> ready: pid" line, appended to FL_RT (ms)
fl_log_restarts() {
    local t
    for t in $(awk -v re="${2:-.}" '
        function ms(s,  a) { split(s, a, /[:.]/); return ((a[1] * 60 + a[2]) * 60 + a[3]) * 1000 + a[4] }
        / mqttflow supervisor: .* \(pid [0-9]+\) died/ {
            st = $0; sub(/.* mqttflow supervisor: /, "", st); sub(/ \(pid.*/, "", st)
            if (st ~ re) died[st] = ms($1)
        }
        / mqttflow supervisor: .* ready: pid / {
            st = $0; sub(/.* mqttflow supervisor: /, "", st); sub(/ ready: pid.*/, "", st)
            if (st in died) { d = ms($1) - died[st]; if (d < 0) d += 86400000; print d; delete died[st] }
        }' "$1"); do
        FL_RT+=("$t")
    done
}
