#!/usr/bin/env bash
# fault_table.sh: the fault tests' result rows ($BUILD/fault-results.tsv, appended by the
# 4x scripts through faultlib.sh's fl_row on every run) as the markdown table of issue 4
# "Figures for the closing note". By default the latest row of each (fault, variant), in the
# order the faults first appear; -a: every row.
#   usage: tests/integration/fault_table.sh [-a] [TSV]
set -u
all=0
if [[ ${1:-} == -a ]]; then
    all=1
    shift
fi
tsv=${1:-${BUILD:-build}/fault-results.tsv}
[[ -s $tsv ]] || {
    echo "fault_table: no results in $tsv (run the fault tests first)" >&2
    exit 1
}
awk -F '\t' -v all="$all" '
$1 == "fault" && $2 == "variant" { next }
{
    k = all ? NR : $1 FS $2
    if (!(k in row)) order[++n] = k
    row[k] = sprintf("| %s | %s | %s | %s | %s | %s | %s | %s / %s |", $1, $2, $3, $4, $5, $6, $7, $8, $9)
}
END {
    print "| fault test | variant | runs | messages | lost | duplicated | reordered | restart p50 / p99 |"
    print "|---|---|---:|---:|---:|---:|---:|---|"
    for (i = 1; i <= n; i++) print row[order[i]]
}' "$tsv"
