#!/usr/bin/env bash
# The function-length check of `make check` (issue 9): no function in the product's C sources
# (tests/ excepted) has a body longer than MAX_FUNC_LINES lines (default 100). A longer one wants
# splitting into pieces whose names say why. The house style (.clang-format, Linux braces) puts
# a function's opening and closing braces alone in column 0, and nothing else does; a function's
# length is how many lines its closing brace stands below its opening one (the measure issue 9
# was judged by). Prints each offender as file:line: signature (N lines) and exits 1.
set -u
cd "$(dirname "$0")/.."
max=${MAX_FUNC_LINES:-100}
status=0
while IFS= read -r f; do
    awk -v F="$f" -v MAX="$max" '
        /^[A-Za-z_]/ { sig = $0; sigline = NR }
        /^\{/ { start = NR; name = sig; at = sigline }
        /^\}/ { if (start && NR - start > MAX) {
                    printf "%s:%d: %s (%d lines, more than %d)\n", F, at, name, NR - start, MAX
                    bad = 1
                }
                start = 0 }
        END { exit bad }' "$f" || status=1
done < <(git ls-files '*.c' | grep -v '^tests/')
[ $status -eq 0 ] || echo "funclen: split the functions above (scripts/funclen.sh says why)" >&2
exit $status
