# 42-fault-crash-loop: issue 4 fault test 3. A crash loop at start: backoff, then the failed
# state, under 5% CPU.
#
# A. A module whose mf_init crashes (abort(): a signal, so the supervisor respawns it; the
#    module is built here from a few lines of C). Asserted: the worker is respawned with a
#    growing backoff ("restarting in N ms" grows), then marked failed by the restart
#    intensity limit with the reason in the log; `mqttflow run` gives up (exit 1, not a hang)
#    and the CPU of the supervisor and all its children over the whole loop (wall clock vs
#    user+sys from /usr/bin/time, which counts reaped children) stays under 5%.
# B. tests/callbacks/fail_init.so, whose mf_init returns -1: the worker exits 2 (a module
#    that refuses to init is fatal config, DESIGN: exit 2 is never respawned), so `mqttflow
#    run` exits 2 at once with the reason; CPU under 5% as well.
# Quick and SOAK=1 are the same (the loop's length is the supervisor's, not the test's).
# shellcheck source=tests/integration/faultlib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/faultlib.sh"

it_require "$IT_CB/fail_init.so" /usr/bin/time
it_broker || lib_fail "broker did not start"
CC=${CC:-cc}
cat >"$LIB_TMP/crash_init.c" <<'EOF2'
#include <mqttflow.h>
#include <signal.h>
#include <stdlib.h>
int mf_init(mf_ctx *ctx);
int never_called(mf_ctx *ctx, const mf_msg *msgs, size_t n);
int mf_init(mf_ctx *ctx) { (void)ctx; signal(SIGABRT, SIG_DFL); abort(); }
int never_called(mf_ctx *ctx, const mf_msg *msgs, size_t n) { (void)ctx; (void)msgs; (void)n; return 0; }
EOF2
"$CC" -std=c11 -shared -fPIC -I"$IT_ROOT/common" -o "$LIB_TMP/crash_init.so" \
    "$LIB_TMP/crash_init.c" || lib_fail "cannot build the crash_init module"

mkconf() { # MODULE FUNCTION -> prints a config
    it_conf_print 'topics: [{name: "in/#", qos: 1}]' -- 1 <<EOF2
callbacks:
  bad: {module: "$1", function: "$2"}
rules:
  - {rule: "bad", topic: "in/#", callback: "bad", execution_mode: "sequential"}
EOF2
}

fails=()
# run_loop NAME CONF [once]: runs mqttflow run under /usr/bin/time (120 s at most); sets RC,
# WALL, CPU. A loop must stay under 5% CPU; a single start that fails at once ("once") is no
# loop, and a percentage of a quarter second of start-up says nothing: it must stay under 1 s
# of CPU in all instead.
run_loop() {
    timeout 120 /usr/bin/time -f "TIME %e %U %S" -o "$LIB_TMP/$1.time" \
        "$MQTTFLOW" run "$2" >"$LIB_TMP/$1.log" 2>&1
    RC=$?
    read -r _ WALL U S < <(grep '^TIME ' "$LIB_TMP/$1.time") || lib_fail "no time for $1: $(cat "$LIB_TMP/$1.time")"
    CPU=$(awk -v w="$WALL" -v u="$U" -v s="$S" 'BEGIN { printf "%.2f", (w > 0 ? 100 * (u + s) / w : 0) }')
    lib_log "$1: exit $RC after ${WALL}s, user ${U}s sys ${S}s: ${CPU}% CPU"
    if [[ ${3:-} == once ]]; then
        awk -v u="$U" -v s="$S" 'BEGIN { exit !(u + s < 1) }' ||
            fails+=("$1: ${U}+${S} s of CPU for a single failed start (>= 1 s)")
    else
        awk -v c="$CPU" 'BEGIN { exit !(c < 5) }' || fails+=("$1: ${CPU}% CPU over the loop (>= 5%)")
    fi
}

# A: crash at init -> backoff, then failed
mkconf "$LIB_TMP/crash_init.so" never_called >"$LIB_TMP/a.yaml"
run_loop a "$LIB_TMP/a.yaml"
[[ $RC == 1 ]] || fails+=("A: mqttflow run exited $RC, want 1 (a stage failed)")
mapfile -t delays < <(sed -n 's/.*worker 0 (pid [0-9]*) died.*restarting in \([0-9]*\) ms.*/\1/p' "$LIB_TMP/a.log")
lib_log "A: respawn delays (ms): ${delays[*]}"
((${#delays[@]} >= 3)) || fails+=("A: ${#delays[@]} respawns, want a backoff series (>= 3)")
for ((i = 1; i < ${#delays[@]}; i++)); do
    ((delays[i] > delays[i - 1])) || fails+=("A: backoff did not grow: ${delays[*]}")
done
grep -q "cannot start: worker 0 failed: ." "$LIB_TMP/a.log" ||
    fails+=("A: the log does not say that worker 0 failed and why")
grep "failed" "$LIB_TMP/a.log" | tail -n 2 >&2
FL_RT=()
fl_row "3 crash loop at start (mf_init aborts)" \
    "${#delays[@]} respawns, failed after ${WALL} s, ${CPU}% CPU" 0 0 0 0

# B: mf_init returns -1 -> exit 2, never respawned
mkconf "$IT_CB/fail_init.so" never_called >"$LIB_TMP/b.yaml"
run_loop b "$LIB_TMP/b.yaml" once
[[ $RC == 2 ]] || fails+=("B: mqttflow run exited $RC, want 2 (fatal config)")
grep -q "cannot start: worker 0 failed: ." "$LIB_TMP/b.log" ||
    fails+=("B: the log does not say that worker 0 failed and why")
grep -q "fail_init: refusing on purpose" "$LIB_TMP/b.log" ||
    fails+=("B: the module's own error is not in the log")
nb=$(grep -c "worker 0 (pid [0-9]*) died" "$LIB_TMP/b.log")
lib_log "B: worker 0 started $((nb + 1)) time(s)"
((nb == 0)) || fails+=("B: worker 0 was respawned $nb time(s) after exit 2")
FL_RT=()
fl_row "3 crash loop at start (mf_init fails: exit 2)" \
    "$((nb + 1)) start, failed after ${WALL} s, ${CPU}% CPU" 0 0 0 0

((${#fails[@]} == 0)) || lib_fail "$(printf '%s; ' "${fails[@]}")"
lib_log "PASS"
