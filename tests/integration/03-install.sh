#!/usr/bin/env bash
# 03-install: `make install` into a DESTDIR, used as an installed tree, then `make uninstall`.
#   - the layout: bin/mqttflow and bin/mqttflow-launch (names that never collide), the stages in
#     libexec/mqttflow, mqttflow.h, mqttflow.pc, the unit with its paths filled in, both manual
#     pages, the guides, the examples with their built callbacks;
#   - `mqttflow --version` and `mqttflow check` on the installed example and reference configs;
#   - a callback built with pkg-config alone (PKG_CONFIG_PATH into the DESTDIR, no -I of the
#     source tree) is loaded by `mqttflow check` and run by `mqttflow try`;
#   - a short pipeline from the installed binaries (the supervisor finds its stages in
#     ../libexec/mqttflow; MQTTFLOW_STAGE_DIR unset): 50 QoS 1 messages through the new
#     callback, none lost;
#   - `make uninstall` leaves no file in the DESTDIR.
. "$(dirname "$0")/39-pipeline-lib.sh"

for tool in make pkg-config cc python3; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done
it_require

root=$LIB_TMP/root
prefix=/opt/mqttflow-test
make --no-print-directory -s -C "$IT_ROOT" install BUILD="$BUILD" DESTDIR="$root" \
    PREFIX="$prefix" >"$LIB_TMP/install.log" 2>&1 || {
    cat "$LIB_TMP/install.log" >&2
    lib_fail "make install failed"
}
P=$root$prefix
for f in bin/mqttflow libexec/mqttflow/mqttflow-ingress libexec/mqttflow/mqttflow-router \
    libexec/mqttflow/mqttflow-worker libexec/mqttflow/mqttflow-relay include/mqttflow.h \
    share/pkgconfig/mqttflow.pc lib/systemd/system/mqttflow.service share/man/man1/mqttflow.1 \
    share/man/man5/mqttflow.yaml.5 share/doc/mqttflow/README.md \
    share/mqttflow/examples/config.yaml share/mqttflow/examples/reference.yaml \
    share/mqttflow/examples/callbacks/Makefile \
    share/mqttflow/examples/callbacks/temperature_alerts.so; do
    [[ -e $P/$f ]] || lib_fail "make install did not install $f"
done
expect_eq "files in bin/" "$(ls "$P/bin" | tr '\n' ' ')" "mqttflow mqttflow-launch "
# the installed launcher finds the binary beside it (no build tree, no MQTTFLOW_BIN)
(cd / && env -u MQTTFLOW_BIN PATH=/usr/bin:/bin BUILD=/nonexistent "$P/bin/mqttflow-launch" --version) |
    grep -q "^mqttflow $(cat "$IT_ROOT/VERSION")$" || lib_fail "the installed launcher did not find mqttflow"
unit=$P/lib/systemd/system/mqttflow.service
grep -q "^ExecStart=$prefix/bin/mqttflow run $prefix/etc/mqttflow/config.yaml$" "$unit" ||
    lib_fail "the unit's ExecStart: $(grep ExecStart "$unit")"
! grep -n '@[A-Z]*@' "$unit" "$P/share/pkgconfig/mqttflow.pc" "$P/share/man/man1/mqttflow.1" ||
    lib_fail "a placeholder was left in an installed file"

mf=$P/bin/mqttflow
"$mf" --version >"$LIB_TMP/version" || lib_fail "mqttflow --version failed"
for word in "mqttflow $(cat "$IT_ROOT/VERSION")" "MF_API_VERSION" paho libyaml liburing; do
    grep -q "$word" "$LIB_TMP/version" || lib_fail "--version lacks $word: $(cat "$LIB_TMP/version")"
done
for c in config reference python/config; do
    "$mf" check "$P/share/mqttflow/examples/$c.yaml" >/dev/null 2>"$LIB_TMP/check.err" ||
        lib_fail "check of the installed $c.yaml: $(cat "$LIB_TMP/check.err")"
done
# the Python support is installed once, in lib/mqttflow, where the CLI (bin/) and the stages
# (libexec/mqttflow/) both find it
[[ -f $P/lib/mqttflow/mqttflow-python.so ]] || lib_fail "mqttflow-python.so not installed in lib/mqttflow"

# a callback of our own, built the documented way and nothing else
export PKG_CONFIG_PATH=$P/share/pkgconfig
cflags=$(pkg-config --cflags mqttflow) || lib_fail "pkg-config does not know mqttflow"
[[ $cflags != *"$IT_ROOT"* ]] || lib_fail "pkg-config points into the source tree: $cflags"
mkdir -p "$LIB_TMP/cb"
cat >"$LIB_TMP/cb/upper.c" <<'EOF'
#include <ctype.h>
#include <mqttflow.h>
#include <stdlib.h>

int upper(mf_ctx *ctx, const mf_msg *msgs, size_t n);

int upper(mf_ctx *ctx, const mf_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *p = malloc(msgs[i].payload_len + 1);
        if (!p)
            return 1;
        for (size_t k = 0; k < msgs[i].payload_len; k++)
            p[k] = (char)toupper(((const unsigned char *)msgs[i].payload)[k]);
        int rc = mf_emit(ctx, "out/upper", p, msgs[i].payload_len);
        free(p);
        if (rc)
            return rc;
    }
    return 0;
}
EOF
# shellcheck disable=SC2086
cc $cflags -std=c11 -Wall -Wextra -Werror -shared -fPIC -o "$LIB_TMP/cb/upper.so" \
    "$LIB_TMP/cb/upper.c" 2>"$LIB_TMP/cc.err" || lib_fail "the callback did not build: $(cat "$LIB_TMP/cc.err")"

it_broker || lib_fail "no broker"
it_conf 'topics: [{name: "in/#", qos: 1}]' -- 1 <<EOF
callbacks:
  upper: {module: "cb/upper.so", function: "upper"}
rules:
  - {rule: "up", source_client_id: "c1", topic: "in/#", callback: "upper"}
EOF
"$mf" check "$conf" >/dev/null 2>"$LIB_TMP/check.err" ||
    lib_fail "check did not load the pkg-config-built callback: $(cat "$LIB_TMP/check.err")"
"$mf" try "$conf" --topic in/x --payload abc >"$LIB_TMP/try.out" 2>&1 ||
    lib_fail "try with the new callback: $(cat "$LIB_TMP/try.out")"
grep -q 'would publish on c1: topic "out/upper" qos 0 retain 0 payload "ABC"' "$LIB_TMP/try.out" ||
    lib_fail "try did not run the callback: $(cat "$LIB_TMP/try.out")"

# the pipeline, from the installed tree only
unset MQTTFLOW_STAGE_DIR
MQTTFLOW=$mf
it_start "$conf"
pids=$(pgrep -P "$mf_PID" -d ' ' || true)
for pid in $pids; do
    exe=$(readlink "/proc/$pid/exe")
    [[ $exe == "$P/libexec/mqttflow/"* ]] || lib_fail "stage pid $pid runs $exe, not the installed one"
done
it_sub sub -p "$MQTT_PORT" -t 'out/upper' -q 1 -n 50
it_mfpub pub -p "$MQTT_PORT" -t in/a -n 50 -q 1 -i 3
res=$(it_sub_result sub 30)
lib_log "mfsub: $res"
# upper-casing breaks mfpub's checksums: count what arrived
expect_eq "received" "$(result_field "$LIB_TMP/sub.log" recv)" 50
it_stop "$conf"

make --no-print-directory -s -C "$IT_ROOT" uninstall BUILD="$BUILD" DESTDIR="$root" \
    PREFIX="$prefix" >"$LIB_TMP/uninstall.log" 2>&1 || lib_fail "make uninstall failed"
left=$(find "$root" -type f -o -type l)
[[ -z $left ]] || lib_fail "make uninstall left: $left"
lib_log "PASS"
exit 0
