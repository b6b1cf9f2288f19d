#!/usr/bin/env bash
# CI for the comparison module: build it and run the adapters' exactly-once
# tests under the race detector. The timings are not run here: they mean
# nothing on a CI machine and take minutes (go run ./cmd/compare -quick).
set -euo pipefail
cd "$(dirname "$0")"

go vet ./...
go build ./...
go test -race -count=1 -run . ./...

# abtest builds the root package's test binary at two revisions and runs them
# in interleaved rounds; one short round checks that it still works here. It
# needs git and a checkout with HEAD: skipped, and said so, without them.
if command -v git >/dev/null && git rev-parse --verify -q HEAD >/dev/null; then
	go run ./cmd/abtest -n 1 -bench 'BenchmarkSubmit$/chan/workers=2' -benchtime 10ms HEAD >/dev/null
else
	echo "benchmarks/ci.sh: no git checkout here: cmd/abtest smoke run skipped"
fi
