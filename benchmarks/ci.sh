#!/usr/bin/env bash
# CI for the comparison module: build it and run the adapters' exactly-once
# tests under the race detector. The timings are not run here: they mean
# nothing on a CI machine and take minutes (go run ./cmd/compare -quick).
set -euo pipefail
cd "$(dirname "$0")"

go vet ./...
go build ./...
go test -race -count=1 -run . ./...
