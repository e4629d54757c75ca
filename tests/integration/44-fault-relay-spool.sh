# 44-fault-relay-spool: issue 4 fault test 5. kill -9 of the relay while it writes its spool,
# repeatedly; then bad spool files at start: no acknowledged message lost, bad files
# quarantined, the start never crashes.
#
# Broker 1: source c1; broker 2: target t2 (persistence on; the test's subscriber there is a
# persistent session). One sequential echo rule relayed to t2 at QoS 1.
#  1. Broker 2 is down from the start: N messages at FL_RATE msg/s, which the relay spools
#     under runtime.spool_dir/t2/. While it writes, the relay is killed (kill -9) KILLS times,
#     3 s apart (restart time: kill -> status shows it up with a new pid). Once the relay has
#     taken all N in, the pipeline is stopped (the spool stays on disk).
#  2. Into the spool dir go: an empty segment, one shorter than the segment header, one of
#     4 KiB of garbage, and 100 garbage bytes appended to the newest real segment (a torn
#     write after its last record).
#  3. Broker 2 is started, the subscriber connects, the pipeline is started again: asserted
#     that it starts and the relay does not restart, spool/t2/quarantine/ holds the three bad
#     files (and the cut tail), and all N messages arrive on broker 2: 0 lost, in order
#     (duplicates from records consumed but not acknowledged before a kill are reported);
#     the relay's log reports the quarantine; clean stop.
# Quick: 3 kills. SOAK=1: 10 kills. FAULT_ROUNDS=N: N kills.
# shellcheck source=tests/integration/faultlib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/faultlib.sh"

it_require "$IT_CB/echo.so"
it_broker_b2
KILLS=$(fl_rounds 3 10)
GAP=3

it_conf_to t2 "dn:in/#:t2" 1 "$IT_RECONNECT" 'topics: [{name: "in/#", qos: 1}]'

# the subscriber's persistent session on broker 2 exists before the outage
it_sub s_pre -p "$b2_PORT" -c "it$$-sdn" -P -t 'out/#' -q 1 -n 1 -I 1 -T 3
it_sub_result s_pre 10 >/dev/null || true
broker_stop b2

it_start "$conf" 30 mf1
N=$((FL_RATE * (KILLS * GAP + 3)))
T=$((N / FL_RATE + 120))
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 1 -n $N -r "$FL_RATE" -t in/a -W $T >"$LIB_TMP/pub.log" 2>&1 &
pub=$!
lib_track $pub
it_until 20 '[[ $(find "$LIB_TMP/spool" -name "*.seg" | wc -l) -gt 0 ]]' ||
    lib_fail "the relay does not spool with broker 2 down"
for ((k = 0; k < KILLS; k++)); do
    t_kill=$SECONDS
    fl_kill_stage "$conf" relay
    while ((SECONDS - t_kill < GAP)); do sleep 0.2; done
done
it_wait_pub pub
it_until 30 '[[ $(it_metric "$conf" mqttflow_stage_in_total router) -ge $N &&
                $(it_metric "$conf" mqttflow_stage_ring_fill_ratio relay) == 0 ]]' ||
    lib_fail "the relay did not take everything in: $(it_status "$conf")"
it_status "$conf" >&2
it_stop "$conf"

sdir=$LIB_TMP/spool/t2
[[ -d $sdir ]] || lib_fail "no spool dir $sdir: $(find "$LIB_TMP/spool")"
newest=$(find "$sdir" -maxdepth 1 -name '*.seg' | sort | tail -n 1)
[[ -n $newest ]] || lib_fail "nothing spooled in $sdir after the stop"
lib_log "spool after the stop: $(find "$sdir" -maxdepth 1 -type f | wc -l) file(s), $(du -sk "$sdir" | cut -f1) KiB"
: >"$sdir/00000000f0000000.seg"
head -c 10 /dev/urandom >"$sdir/00000000f0000001.seg"
head -c 4096 /dev/urandom >"$sdir/00000000f0000002.seg"
head -c 100 /dev/urandom >>"$newest"

broker_restart b2 || lib_fail "broker 2 did not come back"
it_sub s_dn -p "$b2_PORT" -c "it$$-sdn" -P -t 'out/#' -q 1 -n $N -I 30 -T $T
it_start "$conf" 30 mf2
lib_log "s_dn: $(it_sub_result s_dn $T)"
it_status "$conf" >&2
fails=()
f=$LIB_TMP/s_dn.log
[[ $(result_field "$f" unique) == "$N" ]] || fails+=("unique $(result_field "$f" unique) of $N")
[[ $(result_field "$f" lost) == 0 ]] || fails+=("lost $(result_field "$f" lost)")
[[ $(result_field "$f" reorder) == 0 ]] || fails+=("reordered $(result_field "$f" reorder)")
[[ $(result_field "$f" badsum) == 0 ]] || fails+=("badsum $(result_field "$f" badsum)")
[[ $(it_metric "$conf" mqttflow_stage_restarts_total relay) == 0 ]] ||
    fails+=("the relay restarted after a start with bad spool files")
q=$sdir/quarantine
for b in 00000000f0000000.seg 00000000f0000001.seg 00000000f0000002.seg; do
    [[ -e $sdir/$b ]] && fails+=("$b still in the spool dir")
    compgen -G "$q/${b%.seg}*" >/dev/null || fails+=("$b not in $q")
done
lib_log "quarantine: $(ls "$q" 2>/dev/null | tr '\n' ' ')"
grep -q "spool" "$LIB_TMP/mf2.log" && grep -i "quarantin" "$LIB_TMP/mf2.log" | head -n 5 >&2
grep -qi "quarantin" "$LIB_TMP/mf2.log" || fails+=("the log of the start does not report the quarantine")
fl_sub_sum s_dn
fl_row "5 kill -9 relay while spooling + bad spool files" "$FL_KILLS kills, 4 bad files" \
    "$N" "$FL_LOST" "$FL_DUP" "$FL_REORDER"
((${#fails[@]} == 0)) || lib_fail "$(printf '%s; ' "${fails[@]}")"
it_stop "$conf"
lib_log "PASS"
