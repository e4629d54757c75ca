#!/usr/bin/env bash
# 04-deb: the Debian package's round trip on this machine (needs root: CI runs as root).
#   - scripts/mkdeb.sh builds it; its Depends are Debian library packages (paho, libyaml,
#     liburing, ...), found by dpkg-shlibdeps;
#   - `apt-get install ./mqttflow_*.deb` installs it: /usr/bin/mqttflow, the stages in
#     /usr/libexec/mqttflow, the unit (disabled: no enablement link; systemd-analyze verify
#     passes when present), the system user;
#   - `mqttflow check` passes on the installed example config;
#   - a short pipeline from the installed binaries and the installed example callback
#     (alert_if_high): 20 readings in, 20 alerts out, counted;
#   - `apt-get purge` leaves nothing behind: no file of `dpkg -L`, no folder the package
#     created, no /var/lib/mqttflow, no user it made, no package state.
# Skipped (77) when a tool is missing, when not root, or when a mqttflow package is already
# installed here (it is not this test's to remove).
. "$(dirname "$0")/39-pipeline-lib.sh"

for tool in dpkg-deb dpkg-shlibdeps dpkg-gencontrol apt-get make python3; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed (scripts/setup.sh)"; exit 77; }
done
[[ $(id -u) -eq 0 ]] || { echo "SKIP: installing a package needs root"; exit 77; }
if dpkg-query -W -f='${Status}' mqttflow 2>/dev/null | grep -q "install ok"; then
    echo "SKIP: a mqttflow package is already installed on this machine"
    exit 77
fi
it_require

deb=$(OUT=$LIB_TMP BUILD=$BUILD "$IT_ROOT/scripts/mkdeb.sh" 2>"$LIB_TMP/mkdeb.err") || {
    cat "$LIB_TMP/mkdeb.err" >&2
    lib_fail "mkdeb failed"
}
depends=$(dpkg-deb -f "$deb" Depends)
lib_log "Depends: $depends"
for d in libpaho-mqtt libyaml liburing; do
    [[ $depends == *"$d"* ]] || lib_fail "Depends lacks $d: $depends"
done

user_before=$(getent passwd mqttflow || true)
[[ -e /var/lib/mqttflow ]] && varlib_before=1 || varlib_before=0
# which folders of the package exist already (they are not the package's to remove)
mapfile -t entries < <(dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|; s|/$||' | grep -v '^$')
pre_existing=()
for e in "${entries[@]}"; do
    [[ -e $e ]] && pre_existing+=("$e")
done

purge() {
    apt-get purge -y -q -o DPkg::Lock::Timeout=300 mqttflow >"$LIB_TMP/purge.log" 2>&1
}
installed=0
deb_cleanup() { # never leave the package on the machine, whatever failed
    local rc=$? i
    if ((installed)); then
        for ((i = ${#LIB_PIDS[@]} - 1; i >= 0; i--)); do # our processes first: they run its files
            kill -0 "${LIB_PIDS[i]}" 2>/dev/null && lib_stop_pid "${LIB_PIDS[i]}" 3
        done
        purge
    fi
    return $rc
}
trap 'deb_cleanup; it_cleanup' EXIT

export DEBIAN_FRONTEND=noninteractive
installed=1
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "$(realpath "$deb")" \
    >"$LIB_TMP/apt.log" 2>&1 || {
    cat "$LIB_TMP/apt.log" >&2
    lib_fail "apt-get install of the package failed"
}
dpkg -L mqttflow >"$LIB_TMP/files"
# a minimal image may tell dpkg not to install manual pages (path-exclude): then not checked
mans=(/usr/share/man/man1/mqttflow.1.gz /usr/share/man/man5/mqttflow.yaml.5.gz)
grep -rqs 'path-exclude.*/usr/share/man' /etc/dpkg/dpkg.cfg.d && mans=()
for f in /usr/bin/mqttflow /usr/libexec/mqttflow/mqttflow-worker /lib/systemd/system/mqttflow.service \
    "${mans[@]}" /usr/include/mqttflow.h; do
    grep -qx "$f" "$LIB_TMP/files" || lib_fail "the package does not hold $f"
    [[ -e $f ]] || lib_fail "$f is not installed"
done
getent passwd mqttflow >/dev/null || lib_fail "no mqttflow user after the install"
for wants in /etc/systemd/system/*.wants/mqttflow.service; do
    [[ -e $wants || -L $wants ]] && lib_fail "the unit is enabled: $wants"
done
grep -q '^ExecStart=/usr/bin/mqttflow run /etc/mqttflow/config.yaml$' /lib/systemd/system/mqttflow.service ||
    lib_fail "unit ExecStart: $(grep ExecStart /lib/systemd/system/mqttflow.service)"
if command -v systemd-analyze >/dev/null; then # systemd's own check of the unit, as installed
    systemd-analyze verify /lib/systemd/system/mqttflow.service >"$LIB_TMP/verify" 2>&1 ||
        lib_fail "systemd-analyze verify: $(cat "$LIB_TMP/verify")"
fi
if [[ ${#mans[@]} -gt 0 ]]; then
    man -l /usr/share/man/man5/mqttflow.yaml.5.gz >/dev/null 2>&1 || lib_fail "the installed mqttflow.yaml(5) does not render"
fi

/usr/bin/mqttflow --version | grep -q "^mqttflow $(cat "$IT_ROOT/VERSION")$" || lib_fail "--version"
# as the unit runs it: the service user, whose /var/lib/mqttflow holds the default state folders
# (root refuses a folder another user owns: common/privdir.h)
(cd / && runuser -u mqttflow -- /usr/bin/mqttflow check /usr/share/mqttflow/examples/config.yaml) \
    >/dev/null 2>"$LIB_TMP/check.err" ||
    lib_fail "check of the installed example: $(cat "$LIB_TMP/check.err")"

# the pipeline: installed binaries, installed example callback
it_broker || lib_fail "no broker"
it_conf 'topics: [{name: "sensors/temperature", qos: 1}]' -- 1 <<EOF
callbacks:
  alert:
    module: "/usr/share/mqttflow/examples/callbacks/temperature_alerts.so"
    function: "alert_if_high"
rules:
  - {rule: "alert", source_client_id: "c1", topic: "sensors/temperature", callback: "alert"}
EOF
MQTTFLOW=/usr/bin/mqttflow
unset MQTTFLOW_STAGE_DIR
it_start "$conf"
it_msub alerts "$MQTT_PORT" probe/alerts alerts/temperature probe/alerts
for i in $(seq 1 20); do echo "3$((i % 10)).5"; done |
    "$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t sensors/temperature -l ||
    lib_fail "mosquitto_pub failed"
it_until 30 '[[ $(it_lines alerts alerts/temperature | wc -l) -ge 20 ]]' ||
    lib_fail "alerts: $(it_lines alerts alerts/temperature | wc -l) of 20"
expect_eq "alerts" "$(it_lines alerts alerts/temperature | grep -c high_temperature)" 20
it_stop "$conf"

purge || { cat "$LIB_TMP/purge.log" >&2; lib_fail "apt-get purge failed"; }
installed=0
dpkg-query -W -f='${Status}' mqttflow 2>/dev/null | grep -q "installed" && lib_fail "still known to dpkg"
while read -r f; do
    [[ $f == /. ]] && continue
    [[ -e $f || -L $f ]] || continue
    skip=0
    for p in "${pre_existing[@]}"; do [[ $p == "$f" ]] && skip=1; done
    ((skip)) || lib_fail "left behind after purge: $f"
done <"$LIB_TMP/files"
((varlib_before)) || [[ ! -e /var/lib/mqttflow ]] || lib_fail "/var/lib/mqttflow left behind"
[[ -n $user_before ]] || ! getent passwd mqttflow >/dev/null || lib_fail "the mqttflow user was left behind"
lib_log "PASS"
exit 0
