# 22-execution-modes: sequential, per_topic and parallel through the real pipeline.
#
# One source client, three echo rules (chain: custom_processor echo, prefix "out/"):
#   seq  in/seq/#  sequential    par  in/par/#  threaded
#   pt   in/pt/#   per_topic
# Run 1, runtime.workers 2:
#  - 2,000 QoS 1 messages to par: all arrive once, and both workers took some in (status);
#  - at the same time: 10,000 QoS 1 messages over 4 topics to seq, counted over all topics
#    (mfsub -g): lost 0, dup 0, reorder 0; 8,000 over 8 topics to pt, counted per topic: lost 0,
#    dup 0, reorder 0.
# Run 2, runtime.workers 3: 3,000 messages to par: all arrive, each of the 3 workers took some.
# Each run stops with mqttflow stop: exit 0, no segment left.
# shellcheck source=tests/integration/39-pipeline-lib.sh disable=SC2016 # it_until takes text
. "$(dirname "$0")/39-pipeline-lib.sh"

it_require "$IT_CB/echo.so"
it_broker || lib_fail "broker did not start"

write_conf() { # WORKERS
    it_conf_print 'topics: [{name: "in/#", qos: 1}]' -- "$1" <<EOF
callbacks:
  echo: {module: "$IT_CB/echo.so", function: "echo"}
rules:
  - {rule: "seq", topic: "in/seq/#", action: "echo_out", execution_mode: "sequential"}
  - {rule: "pt", topic: "in/pt/#", action: "echo_out", execution_mode: "per_topic"}
  - {rule: "par", topic: "in/par/#", action: "echo_out", execution_mode: "threaded"}
processing_chains:
  echo_out:
    - {step: "custom_processor", config: {callback: "echo", prefix: "out/"}}
EOF
}

check() { # NAME UNIQUE [reorder]: the mfsub NAME got UNIQUE, lost 0, dup 0 (and reorder 0)
    local res f
    res=$(it_sub_result "$1" 90)
    lib_log "$1: $res"
    f=$LIB_TMP/$1.log
    expect_eq "$1 unique" "$(result_field "$f" unique)" "$2"
    expect_eq "$1 lost" "$(result_field "$f" lost)" 0
    expect_eq "$1 dup" "$(result_field "$f" dup)" 0
    expect_eq "$1 badsum" "$(result_field "$f" badsum)" 0
    [[ ${3:-} != reorder ]] || expect_eq "$1 reorder" "$(result_field "$f" reorder)" 0
}

every_worker_took_some() { # CONF WORKERS
    local w n
    for ((w = 0; w < $2; w++)); do
        n=$(it_metric "$1" mqttflow_stage_in_total worker "$w")
        lib_log "worker $w in: $n"
        [[ -n $n && $n -gt 0 ]] || lib_fail "parallel rule: worker $w took in ${n:-nothing}"
    done
}

# ---- run 1: 2 workers
conf=$LIB_TMP/conf2.yaml
write_conf 2 >"$conf"
it_start "$conf"

it_sub par2 -p "$MQTT_PORT" -t 'out/in/par/#' -q 1 -n 2000 -I 15
it_mfpub pub_par2 -p "$MQTT_PORT" -q 1 -i 1 -n 2000 -t in/par/a -t in/par/b
check par2 2000
every_worker_took_some "$conf" 2

it_sub seq -p "$MQTT_PORT" -t 'out/in/seq/#' -q 1 -n 10000 -g -I 15
it_sub pt -p "$MQTT_PORT" -t 'out/in/pt/#' -q 1 -n 8000 -I 15
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 2 -n 10000 -T in/seq/t -k 4 >"$LIB_TMP/pub_seq.log" 2>&1 &
pub_seq=$!
lib_track "$pub_seq"
"$MFPUB" -p "$MQTT_PORT" -q 1 -i 3 -n 8000 -T in/pt/t -k 8 >"$LIB_TMP/pub_pt.log" 2>&1 &
pub_pt=$!
lib_track "$pub_pt"
it_wait_pub pub_seq "(seq)"
it_wait_pub pub_pt "(pt)"
lib_log "pub seq: $(grep '^RESULT' "$LIB_TMP/pub_seq.log")"
check seq 10000 reorder
check pt 8000 reorder
it_status "$conf" >&2
it_stop "$conf"

# ---- run 2: 3 workers
conf=$LIB_TMP/conf3.yaml
write_conf 3 >"$conf"
it_start "$conf"
it_sub par3 -p "$MQTT_PORT" -t 'out/in/par/#' -q 1 -n 3000 -I 15
it_mfpub pub_par3 -p "$MQTT_PORT" -q 1 -i 4 -n 3000 -T in/par/t -k 3
check par3 3000
every_worker_took_some "$conf" 3
it_status "$conf" >&2
it_stop "$conf"
lib_log "PASS"
