#!/usr/bin/env bash
# Mutation testing (`make mutate`): plants each mutant of tests/mutate/mutants.txt in the
# source tree, one at a time, rebuilds into a build folder of its own, runs the unit tests the
# entry names and restores the file. A mutant is KILLED when a test fails (or times out),
# SURVIVED when every test passes: a survivor is a plausible bug no test catches. Ends with
# the survivors and the line "mutation score: N%" (killed / applicable, rounded down).
#
#   tests/mutate/mutate.sh              every mutant
#   tests/mutate/mutate.sh ring cfg-    only mutants whose id or file contains one of the words
#   tests/mutate/mutate.sh --check      only check the list: every entry applies (no build)
#   MUTATE_TIMEOUT=60                   seconds per test binary (a hang counts as killed)
#   MUTATE_BUILD=build-mutate           the build folder (never ./build: a run leaves it alone)
#   MUTATE_MIN=90                       exit 1 when the score is below (also on STALE/NOBUILD)
#
# Why here (tests/mutate/, not scripts/): it is test tooling that measures the unit tests and
# its list grows with them; scripts/ holds what runs the product (setup, demo, service).
#
# The list (mutants.txt) is plain text, one entry per mutant:
#
#   [ring-pad-len]                       id: unique, short, module-prefixed
#   desc:  ring_peek takes a pad of any length      what the planted bug is (shown for survivors)
#   file:  common/ring.c
#   tests: common/test_ring common/test_ring_adopt  test binaries under $BUILD/tests/, in order
#   from:  if (hv.kind != RING_REC_PAD || hv.len != to_end || hv.len > avail)
#   to:    if (hv.kind != RING_REC_PAD || hv.len > avail)
#
# from/to are matched as text, never by line number, so an entry survives code moving around.
# Blanks after "from:"/"to:" are not part of the text; a following line starting with "|"
# continues it after a newline, verbatim (indentation included), for a text that is only
# unique over two lines. An empty "to:" deletes the text. The text of "from" must occur exactly
# once in the file: an entry whose text is gone (the code changed) or occurs more than once is
# reported STALE and counted apart, never skipped silently; mend it (more context, or the new
# spelling) when it shows up. A mutant that does not compile is NOBUILD, also counted apart.
#
# Adding a mutant for a new module: append an entry with the module's file and its unit test
# binaries (their names under tests/, without .c), run `tests/mutate/mutate.sh <id>` and see it
# KILLED; a survivor is a missing test: write it next to the module's tests, not a weaker
# mutant. Good mutants are bugs a careful person could write: an off-by-one comparison, a
# dropped check, a wrong constant or unit, a swapped branch, a skipped element.
#
# The tree is never left modified: each mutated file is copied to $BUILD/restore/ first and
# copied back with its original bytes and times (so ./build sees no change) after the tests,
# on failure and on Ctrl-C (trap); a run killed with SIGKILL is repaired by the next run,
# which finds the copy. A file changed by hand while its mutant was in is left alone (and the
# original kept beside it in $BUILD/): do not edit or build in the tree while a run goes.
# Needs bash, perl (Essential in Debian) and GNU timeout.
set -u
cd "$(dirname "$0")/../.." || exit 2
LIST=tests/mutate/mutants.txt
BUILD=${MUTATE_BUILD:-build-mutate}
TIMEOUT=${MUTATE_TIMEOUT:-60}
MIN=${MUTATE_MIN:-90}
SAVE=$BUILD/restore    # the original of the file a mutant is planted in
MUT=$BUILD/restore-mut # the mutated text: restore only a file that still holds it
LOGS=$BUILD/mutate-logs
export BUILD # the tests find their callback modules under $BUILD (tests/workers/wtest.h)
if [ "$BUILD" = build ]; then
    echo "mutate: MUTATE_BUILD must not be ./build" >&2
    exit 2
fi
mkdir -p "$SAVE" "$MUT" "$LOGS"

# ---- restore: the one way a mutated file goes back ----
restore_all() {
    local saved f
    while IFS= read -r -d '' saved; do
        f=${saved#"$SAVE"/}
        if cmp -s "$MUT/$f" "$f"; then
            cp -p "$saved" "$f"
        elif ! cmp -s "$saved" "$f"; then
            # someone changed it since the mutant went in: theirs, not ours to overwrite
            local keep
            keep="$BUILD/$(basename "$f").orig"
            cp -p "$saved" "$keep"
            echo "mutate: $f changed while its mutant was in: left as it is (original: $keep)" >&2
        fi
        rm -f "$MUT/$f"
        # The object built from the mutant is newer than the restored source: date it back so
        # make rebuilds it. (Deleting it is not enough: the Makefile's .SECONDARY makes a
        # missing object no reason to rebuild a library that is newer than its sources.)
        [ -e "$BUILD/obj/${f%.c}.o" ] && touch -d @0 "$BUILD/obj/${f%.c}.o"
        rm -f "$saved"
    done < <(find "$SAVE" -type f -print0 2>/dev/null)
}
cur_pid=
on_signal() {
    # the test being run: timeout gives it its own process group, so a Ctrl-C at the
    # terminal does not reach it; timeout passes this TERM on
    if [ -n "$cur_pid" ]; then
        kill -TERM "$cur_pid" 2>/dev/null
        wait "$cur_pid" 2>/dev/null
        kill -KILL -- -"$cur_pid" 2>/dev/null
    fi
    restore_all
    echo "mutate: interrupted; every file restored" >&2
    exit 130
}
trap restore_all EXIT
trap on_signal INT TERM HUP

if [ -n "$(find "$SAVE" -type f 2>/dev/null)" ]; then
    echo "mutate: a previous run was killed with a mutant planted; restoring:"
    find "$SAVE" -type f | sed "s|^$SAVE/|  |"
    restore_all
fi

# ---- the list ----
ids=() descs=() files=() tests=() froms=() tos=()
n=-1 last=
parse_error() {
    echo "mutate: $LIST:$1: $2" >&2
    exit 2
}
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    case $line in
    '' | '#'*) last= ;;
    '['*']')
        n=$((n + 1))
        ids[n]=${line:1:${#line}-2} descs[n]='' files[n]='' tests[n]='' froms[n]='' tos[n]=''
        last=
        ;;
    '|'*)
        [ "$last" = from ] && froms[n]+=$'\n'"${line:1}"
        [ "$last" = to ] && tos[n]+=$'\n'"${line:1}"
        [ -z "$last" ] && parse_error $lineno "a '|' line continues only from: or to:"
        ;;
    *:*)
        [ $n -ge 0 ] || parse_error $lineno "a key before the first [id]"
        key=${line%%:*} val=${line#*:}
        val=${val#"${val%%[![:space:]]*}"} # blanks after the colon are not part of the text
        last=
        case $key in
        desc) descs[n]=$val ;;
        file) files[n]=$val ;;
        tests) tests[n]=$val ;;
        from) froms[n]=$val last=from ;;
        to) tos[n]=$val last=to ;;
        *) parse_error $lineno "unknown key \"$key\"" ;;
        esac
        ;;
    *) parse_error $lineno "not an entry line: $line" ;;
    esac
done <"$LIST"
total=$((n + 1))
for ((i = 0; i < total; i++)); do
    if [ -z "${files[i]}" ] || [ -z "${tests[i]}" ] || [ -z "${froms[i]}" ]; then
        parse_error "?" "[${ids[i]}] needs file:, tests: and from:"
    fi
    for ((j = 0; j < i; j++)); do
        [ "${ids[i]}" != "${ids[j]}" ] || parse_error "?" "id [${ids[i]}] twice"
    done
done

check_only=0
if [ "${1:-}" = --check ]; then
    check_only=1
    shift
fi
filters=("$@")
selected() { # i
    [ ${#filters[@]} -eq 0 ] && return 0
    local f
    for f in "${filters[@]}"; do
        [[ "${ids[$1]}" == *"$f"* || "${files[$1]}" == *"$f"* ]] && return 0
    done
    return 1
}

count_in() { # file text: how many times text occurs in file
    MF_FROM=$2 perl -0777 -ne 'my $n = () = /\Q$ENV{MF_FROM}\E/g; print $n' "$1"
}

build_tests() { # test names...: builds them (and what they link) into $BUILD, quietly
    local targets=() t
    for t in "$@"; do targets+=("$BUILD/tests/$t"); done
    # the callback modules tests load from $BUILD (tests/workers/wtest.h): never from ./build
    for t in tests/callbacks/*.c; do targets+=("$BUILD/${t%.c}.so"); done
    make --no-print-directory -s BUILD="$BUILD" WERROR=0 "${targets[@]}" >"$LOGS/build.log" 2>&1
}

run_tests() { # log tests...: 0 when all pass; else 1 and the first failing test in $why
    local log=$1 t rc
    shift
    : >"$log"
    why=
    for t in "$@"; do
        # in the background and waited for: a signal's trap runs at once (bash runs it only
        # after a foreground command ends, and drops a SIGINT its child did not die of)
        timeout --kill-after=5 "$TIMEOUT" "$BUILD/tests/$t" >>"$log" 2>&1 &
        cur_pid=$!
        wait "$cur_pid" 2>/dev/null # (no "Aborted" line from bash: the log has it)
        rc=$?
        # a test killed by a mutant (or by the timeout) can leave forked children behind (a
        # parked consumer waits forever): timeout made a process group of its own; empty it
        kill -KILL -- -"$cur_pid" 2>/dev/null
        cur_pid=
        if [ $rc -ne 0 ]; then
            case $rc in
            124 | 137) why="$t (timeout)" ;;
            *) why="$t (exit $rc)" ;;
            esac
            return 1
        fi
    done
    return 0
}

if [ $check_only = 1 ]; then
    bad=0
    for ((i = 0; i < total; i++)); do
        selected $i || continue
        c=0
        [ -f "${files[i]}" ] && c=$(count_in "${files[i]}" "${froms[i]}")
        if [ "$c" != 1 ]; then
            bad=$((bad + 1))
            printf 'STALE     %-28s %s: original text found %s times (want 1)\n' "${ids[i]}" \
                "${files[i]}" "$c"
        fi
    done
    echo "mutate: $total mutants, $bad stale"
    [ $bad -eq 0 ]
    exit
fi

# ---- baseline: the named tests pass on the unmutated tree ----
all_tests=()
for ((i = 0; i < total; i++)); do
    selected $i || continue
    read -ra these <<<"${tests[i]}"
    for t in "${these[@]}"; do
        [[ " ${all_tests[*]} " == *" $t "* ]] || all_tests+=("$t")
    done
done
if [ ${#all_tests[@]} -eq 0 ]; then
    echo "mutate: no mutant matches: $*" >&2
    exit 2
fi
echo "mutate: building ${#all_tests[@]} test binaries into $BUILD/ (baseline)"
if ! build_tests "${all_tests[@]}"; then
    tail -n 20 "$LOGS/build.log"
    echo "mutate: the unmutated tree does not build" >&2
    exit 1
fi
if ! run_tests "$LOGS/baseline.log" "${all_tests[@]}"; then
    echo "mutate: a test fails without any mutant: $why (log: $LOGS/baseline.log)" >&2
    exit 1
fi

# ---- one mutant at a time ----
killed=0 survived=0 stale=0 nobuild=0 survivors=()
declare -A mod_k mod_a
for ((i = 0; i < total; i++)); do
    selected $i || continue
    id=${ids[i]} f=${files[i]}
    if [ ! -f "$f" ]; then
        stale=$((stale + 1))
        printf 'STALE     %-28s %s: no such file\n' "$id" "$f"
        continue
    fi
    c=$(count_in "$f" "${froms[i]}")
    if [ "$c" != 1 ]; then
        stale=$((stale + 1))
        printf 'STALE     %-28s %s: original text found %s times (want 1)\n' "$id" "$f" "$c"
        continue
    fi
    mkdir -p "$SAVE/$(dirname "$f")" "$MUT/$(dirname "$f")"
    cp -p "$f" "$SAVE/$f"
    MF_FROM=${froms[i]} MF_TO=${tos[i]} perl -0777 -pe 's/\Q$ENV{MF_FROM}\E/$ENV{MF_TO}/' \
        "$SAVE/$f" >"$MUT/$f"
    cat "$MUT/$f" >"$f" # in place: same inode and mode, a new mtime so make rebuilds it
    log="$LOGS/$id.log"
    read -ra these <<<"${tests[i]}"
    if ! build_tests "${these[@]}"; then
        nobuild=$((nobuild + 1))
        cp "$LOGS/build.log" "$log"
        printf 'NOBUILD   %-28s %s (log: %s)\n' "$id" "$f" "$log"
        restore_all
        continue
    fi
    start=$SECONDS
    mod_a[$f]=$((${mod_a[$f]:-0} + 1))
    if run_tests "$log" "${these[@]}"; then
        survived=$((survived + 1))
        survivors+=("$id ($f): ${descs[i]}")
        printf 'SURVIVED  %-28s %s  %3ss\n' "$id" "$f" $((SECONDS - start))
    else
        killed=$((killed + 1))
        mod_k[$f]=$((${mod_k[$f]:-0} + 1))
        printf 'KILLED    %-28s %s  %3ss  by %s\n' "$id" "$f" $((SECONDS - start)) "$why"
    fi
    restore_all
done

# the mutated objects are gone; rebuild the unmutated ones so $BUILD is usable as it is left
build_tests "${all_tests[@]}" || echo "mutate: rebuilding $BUILD after the run failed" >&2

echo
echo "per file (killed/applicable):"
for f in $(printf '%s\n' "${!mod_a[@]}" | sort); do
    printf '  %-28s %d/%d\n' "$f" "${mod_k[$f]:-0}" "${mod_a[$f]}"
done
if [ ${#survivors[@]} -gt 0 ]; then
    echo "survivors (a test is missing for each):"
    printf '  %s\n' "${survivors[@]}"
fi
applicable=$((killed + survived))
echo "$killed killed, $survived survived, $stale stale, $nobuild did not build"
if [ $applicable -eq 0 ]; then
    echo "mutation score: n/a (no applicable mutant)"
    exit 1
fi
score=$((100 * killed / applicable))
echo "mutation score: $score%"
[ $stale -eq 0 ] && [ $nobuild -eq 0 ] && [ $score -ge "$MIN" ]
