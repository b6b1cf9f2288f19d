#!/usr/bin/env bash
# Reliability checks for workpool (issue 6), run by .ci/run after the unit
# tests (which already replay the FuzzPool seed corpus and run the stress and
# soak tests scaled for -race):
#   1. the stress and soak tests at full size without the race detector
#      (1e6, 5e5 with retries and a Resize storm, and 1e7 jobs, a few
#      seconds);
#   2. the FuzzPool fuzzer for 300,000 executions (FUZZTIME, default
#      300000x; Go's -fuzztime takes a count with an x, or a duration),
#      with the number of executions printed. Since retries, rate limits and
#      Resize joined its operations an execution takes longer (about 1,100
#      per second on two loaded cores, 2026-12-02): 300,000 keeps CI within
#      its 20 minutes; FUZZTIME=1000000x or 10m for a longer run by hand.
# A fuzzer crash fails the script. Go has then written the failing input under
# testdata/fuzz/FuzzPool/; its path is printed: fix the bug and commit the
# input with the fix, so plain `go test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-300000x}
corpus=testdata/fuzz/FuzzPool

step() { printf '\n== %s\n' "$*"; }

step "stress and soak at full size (no -race)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! go test -run '^(TestStress|TestStressRetryResize|TestSoak)$' -count=1 -v . >"$log" 2>&1; then
	cat "$log"; exit 1
fi
grep -E '^\s+(stress|soak)_test.go|^--- |^ok' "$log"

step "fuzz: go test -run '^\$' -fuzz '^FuzzPool\$' -fuzztime $fuzztime"
before=$(ls "$corpus" | sort)
fuzzlog=$(mktemp)
trap 'rm -f "$log" "$fuzzlog"' EXIT
set +e
go test -run '^$' -fuzz '^FuzzPool$' -fuzztime "$fuzztime" ${FUZZ_PARALLEL:+-parallel "$FUZZ_PARALLEL"} . 2>&1 | tee "$fuzzlog"
status=${PIPESTATUS[0]}
set -e
after=$(ls "$corpus" | sort)
found=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after"))
if [ "$status" -ne 0 ] || [ -n "$found" ]; then
	echo
	echo "FuzzPool failed (exit status $status)."
	for f in $found; do
		echo "failing input: $corpus/$f"
		echo "  replay with: go test -run 'FuzzPool/$f' ."
	done
	exit 1
fi
execs=$(grep -o 'execs: [0-9]*' "$fuzzlog" | tail -1 | grep -o '[0-9]*' || true)
echo "FuzzPool: no failure in ${execs:-an unknown number of} executions (-fuzztime $fuzztime)"
