#!/usr/bin/env bash
# 07-troubleshooting: docs/troubleshooting.md explains every warning and error the program
# can log. scripts/logmsgs.py reads every log_warn/log_error/log_msg(MF_LOG_WARNING|ERROR)
# call of the program's sources (not the tests) the way the compiler reads its format (string
# literals joined over lines and comments, PRIu64 and friends), and fails naming, for each
# message the guide lacks, its file:line, level, component and the entry to add.
#   - first the extractor on a fixture with the awkward cases (so a silent miss of the
#     extractor cannot make the real check pass);
#   - then the real sources against the guide.
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }

fix=$LIB_TMP/src
mkdir -p "$fix/common"
cat >"$fix/common/x.c" <<'EOF2'
#define COMP "fixture"
static void f(void)
{
    log_warn(COMP, "first part "
                   /* a comment between literals */ "second part %" PRIu64 " and %zu", a, b);
    log_error("direct", "with \"quotes\" and %.*s, (parens)", 3, s);
    log_msg(MF_LOG_WARNING, COMP, "via log_msg %d%%", 1);
    log_msg(MF_LOG_INFO, COMP, "an info line is not listed");
    log_info(COMP, "nor is this");
    /* a call named in a comment is none: log_warn(COMP, "in a comment %d", 1); */
}
EOF2
for i in $(seq 1 50); do echo "void g$i(void) { log_error(COMP, \"filler %d\", $i); }"; done >>"$fix/common/x.c"
python3 scripts/logmsgs.py --root "$fix" list >"$LIB_TMP/list" || lib_fail "logmsgs list failed"
for want in 'common/x.c:4 WARN fixture: first part second part %llu and %zu' \
    'common/x.c:6 ERROR direct: with "quotes" and %.*s, (parens)' \
    'common/x.c:7 WARN fixture: via log_msg %d%%'; do
    grep -qxF "$want" "$LIB_TMP/list" || lib_fail "the extractor missed: $want
$(head -5 "$LIB_TMP/list")"
done
grep -q "info" "$LIB_TMP/list" && lib_fail "the extractor listed an info line"
grep -q "in a comment" "$LIB_TMP/list" && lib_fail "the extractor listed a call in a comment"
cat >"$LIB_TMP/guide.md" <<'EOF2'
- `WARN` `first part second part %lu and %d` (written with other conversions)
  `ERROR` `with "quotes" and %s, (parens)` `via log_msg %d%` — on a continuation line
EOF2
for i in $(seq 1 50); do echo "- \`filler %s\` — x"; done >>"$LIB_TMP/guide.md"
python3 scripts/logmsgs.py --root "$fix" check "$LIB_TMP/guide.md" >"$LIB_TMP/check" ||
    lib_fail "the fixture guide should pass: $(cat "$LIB_TMP/check")"
sed -i 's/ `via log_msg %d%`//' "$LIB_TMP/guide.md"
python3 scripts/logmsgs.py --root "$fix" check "$LIB_TMP/guide.md" >"$LIB_TMP/check"
expect_eq "check with a message missing" "$?" 1
grep -q "MISSING from .*: common/x.c:7 WARN fixture:" "$LIB_TMP/check" ||
    lib_fail "the failure does not name the message: $(cat "$LIB_TMP/check")"

# the real sources against the guide
if ! python3 scripts/logmsgs.py check docs/troubleshooting.md >"$LIB_TMP/real" 2>&1; then
    cat "$LIB_TMP/real" >&2
    lib_fail "docs/troubleshooting.md lacks the messages above (add an entry for each)"
fi
cat "$LIB_TMP/real" >&2
lib_log "PASS"
exit 0
