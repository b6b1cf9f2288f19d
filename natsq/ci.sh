#!/usr/bin/env bash
# CI for the natsq module and its example (examples/distributed): vet, then
# the tests with the race detector, on an embedded NATS server (no external
# service). Called from the repository's .ci/run; exits non-zero on any
# failure. The first run builds nats-server with -race: about two minutes on
# two cores.
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
