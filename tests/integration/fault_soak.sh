#!/usr/bin/env bash
# fault_soak.sh: the long variants of the fault tests (issue 4 "Fault tests"), run by
# `make soak`: every tests/integration/4*.sh with SOAK=1 (20 kills per stage kind, a 30 s
# target outage, a 10-minute soak, ...), through tests/run.sh with a timeout that fits them,
# then the figures table (fault_table.sh) of this run's rows.
#   BUILD=build tests/integration/fault_soak.sh [FILTER...]   (default filter: integration/4)
set -u
cd "$(dirname "$0")/../.." || exit 1
export BUILD=${BUILD:-build}
export SOAK=1
export INTEG_TIMEOUT=${INTEG_TIMEOUT:-1500}
tsv=$BUILD/fault-results.tsv
# this run's rows only: the table is made of the rows appended from here on
before=0
[[ -s $tsv ]] && before=$(wc -l <"$tsv")
filters=("$@")
((${#filters[@]})) || filters=(integration/4)
tests/run.sh "${filters[@]}"
rc=$?
if [[ -s $tsv ]]; then
    { head -n 1 "$tsv"; tail -n +$((before + 1)) "$tsv" | grep -v '^fault	variant'; } >"$BUILD/fault-results-soak.tsv"
    tests/integration/fault_table.sh "$BUILD/fault-results-soak.tsv"
fi
exit $rc
