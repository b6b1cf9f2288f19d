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

# TestClusterLeaderLoss kills a three-server cluster's stream leader and
# restarts two servers while 5,000 jobs run; it is skipped by the step above
# unless NATSQ_CLUSTER_TEST is set. One run takes 19-27s on two cores, most
# of it nats-server's own election timeout (4-9s after a crash) and cluster
# formation, so three runs fit the step's budget of about 90s; it keeps
# -race, whose build the step above has cached. -timeout bounds the step.
step "cluster test: TestClusterLeaderLoss, 3 runs"
NATSQ_CLUSTER_TEST=1 go test -race -run '^TestClusterLeaderLoss$' -count=3 -timeout 120s .
