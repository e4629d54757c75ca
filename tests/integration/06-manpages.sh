#!/usr/bin/env bash
# 06-manpages: the CLI's help and the manual pages agree with the code.
#   - mqttflow(1) and mqttflow.yaml(5) render with `man -l` without a groff warning;
#   - every command of the command table (`mqttflow help --list`) has its subsection in
#     mqttflow(1), its line in `mqttflow --help`, and `mqttflow help COMMAND` (exit 0);
#     an unknown one exits 2;
#   - every exit code of common/exitcode.h is in mqttflow(1)'s EXIT STATUS;
#   - every key of every cfg_field table of the config loader (config/*.c) is documented in
#     mqttflow.yaml(5), which is generated from config/examples/reference.yaml: a key added to
#     the loader without its line in the reference fails here, naming it;
#   - `mqttflow --version` names the version, the API version and the three libraries.
. "$(dirname "$0")/lib.sh"

command -v man >/dev/null || { echo "SKIP: man is not installed (man-db)"; exit 77; }
[[ -x $MQTTFLOW ]] || { echo "SKIP: $MQTTFLOW not built"; exit 77; }
man1=$BUILD/man/mqttflow.1 man5=$BUILD/man/mqttflow.yaml.5
[[ -f $man1 && -f $man5 ]] || { echo "SKIP: the manual pages are not built (make man)"; exit 77; }

for page in "$man1" "$man5"; do
    MANWIDTH=100 man --warnings -l "$page" >"$LIB_TMP/page.txt" 2>"$LIB_TMP/page.err" ||
        lib_fail "man -l $page failed: $(cat "$LIB_TMP/page.err")"
    [[ ! -s $LIB_TMP/page.err ]] || lib_fail "groff warnings for $page: $(cat "$LIB_TMP/page.err")"
    [[ $(wc -l <"$LIB_TMP/page.txt") -gt 40 ]] || lib_fail "$page renders almost empty"
done

"$MQTTFLOW" help --list >"$LIB_TMP/cmds" || lib_fail "help --list failed"
"$MQTTFLOW" --help >"$LIB_TMP/usage" || lib_fail "--help failed"
missing=()
while read -r cmd; do
    [[ $cmd == help ]] && continue
    grep -q "^\.SS $cmd\b" "$man1" || missing+=("mqttflow(1) has no '.SS $cmd' subsection (docs/man/mqttflow.1.in)")
    grep -q "^  mqttflow $cmd\b" "$LIB_TMP/usage" || missing+=("--help has no line for $cmd")
    "$MQTTFLOW" help "$cmd" >"$LIB_TMP/help" 2>&1 || missing+=("mqttflow help $cmd failed")
    grep -q "^  mqttflow $cmd" "$LIB_TMP/help" || missing+=("mqttflow help $cmd lacks its usage")
done <"$LIB_TMP/cmds"
[[ $(wc -l <"$LIB_TMP/cmds") -ge 6 ]] || lib_fail "help --list: $(cat "$LIB_TMP/cmds")"
"$MQTTFLOW" help no-such-command >/dev/null 2>&1
expect_eq "help of an unknown command" "$?" 2

# exit codes: common/exitcode.h -> EXIT STATUS
sed -n '/^\.SH EXIT STATUS/,/^\.SH [^E]/p' "$man1" >"$LIB_TMP/exit"
while read -r name value; do
    grep -q "^\.B $value$" "$LIB_TMP/exit" || missing+=("mqttflow(1) EXIT STATUS lacks $value ($name)")
done < <(sed -n 's/^ *\(MF_EXIT_[A-Z_]*\) *= *\([0-9]*\).*/\1 \2/p' common/exitcode.h)

# config keys: every cfg_field table's keys, against the keys the generated page documents
awk '
/cfg_field [a-z_0-9]+\[\] *= *\{/ { match($0, /cfg_field [a-z_0-9]+/); t = substr($0, RSTART + 10, RLENGTH - 10); on = 1; next }
on && /^\};/ { on = 0; next }
on && match($0, /^[ \t]*([A-Z_]+\(|\{)"[A-Za-z_0-9]+"/) {
    k = substr($0, RSTART, RLENGTH); sub(/^[^"]*"/, "", k); sub(/"$/, "", k)
    print FILENAME, t, k
}' config/*.c >"$LIB_TMP/table.keys"
[[ $(wc -l <"$LIB_TMP/table.keys") -gt 50 ]] || lib_fail "found only $(wc -l <"$LIB_TMP/table.keys") table keys: the extraction broke"
# the page's entries are ".B path.to.key" lines (roff-escaped); their last parts are the keys
sed -n 's/^\.B \(.*\)/\1/p' "$man5" | sed 's/\\-/-/g; s/\\e/\\/g; s/\\&//g' | tr '.' '\n' |
    sed 's/\[[^]]*\]//g; s/: .*//' | sort -u >"$LIB_TMP/page.keys"
while read -r file table key; do
    grep -qx "$key" "$LIB_TMP/page.keys" ||
        missing+=("config key \"$key\" ($file, table $table) is not in mqttflow.yaml(5): document it in config/examples/reference.yaml")
done <"$LIB_TMP/table.keys"

"$MQTTFLOW" --version >"$LIB_TMP/version" || lib_fail "--version failed"
for re in "^mqttflow $(cat VERSION)$" "^callback API \(MF_API_VERSION\) [0-9]+$" "^paho.mqtt.c [0-9]" \
    "^libyaml [0-9]" "^liburing [0-9]"; do
    grep -Eq "$re" "$LIB_TMP/version" || missing+=("--version lacks /$re/")
done

if [[ ${#missing[@]} -gt 0 ]]; then
    printf '  %s\n' "${missing[@]}" >&2
    lib_fail "${#missing[@]} problem(s) above"
fi
lib_log "PASS"
exit 0
