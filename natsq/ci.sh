#!/usr/bin/env bash
# CI for the natsq module and its example (examples/distributed): vet, then
# the tests with the race detector, on embedded NATS servers (no external
# service), then the three-server cluster test in a step of its own. Called
# from the repository's .ci/run; exits non-zero on any failure. The first run
# builds nats-server with -race: about two minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n== natsq: %s\n' "$*"; }

for dir in . ../examples/distributed; do
	(
		cd "$dir"
		step "go vet ($dir)"
		go vet ./...
		if command -v staticcheck >/dev/null; then
			step "staticcheck ($dir)"
			staticcheck ./...
		fi
		step "go test -race -count=1 ./... ($dir)"
		go test -race -count=1 ./...
	)
done

# TestClusterLeaderLoss crashes a three-server cluster's stream leader and
# restarts a second server while 5,000 jobs run; the step above skips it
# (NATSQ_CLUSTER_TEST unset). One run takes 17-28 s on two idle cores (5
# runs: 17.8-28.1 s), most of it nats-server's own timeouts: 4-9s before
# followers elect a new leader after a crash, and up to 7s for a new
# cluster's first election. It runs five times in a row, as the issue asks
# (about two minutes); -race stays on
# because the step above has built nats-server with it and no step builds it
# without. The whole CI stays within its 20 minutes (the fuzzer's share was
# cut to make room: .ci/reliability.sh).
step "cluster test: TestClusterLeaderLoss, 5 runs in a row"
NATSQ_CLUSTER_TEST=1 go test -race -run '^TestClusterLeaderLoss$' -count=5 -failfast -timeout 300s .
