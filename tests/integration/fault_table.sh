#!/usr/bin/env bash
# fault_table.sh: the fault tests' result rows ($BUILD/fault-results.tsv, appended by the
# 4x/5x scripts through faultlib.sh's fl_row) as the markdown table of issue 4 "Figures for
# the closing note". usage: tests/integration/fault_table.sh [TSV]
set -u
tsv=${1:-${BUILD:-build}/fault-results.tsv}
[[ -s $tsv ]] || {
    echo "fault_table: no results in $tsv (run the fault tests first)" >&2
    exit 1
}
awk -F '\t' 'NR == 1 { next }
{
    printf "| %s | %s | %s | %s | %s | %s | %s | %s / %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9
}
BEGIN {
    print "| fault test | variant | runs | messages | lost | duplicated | reordered | restart p50 / p99 |"
    print "|---|---|---:|---:|---:|---:|---:|---|"
}' "$tsv"
