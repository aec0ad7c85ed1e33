#!/usr/bin/env bash
# Go benchmarks of every package; bench/run.sh adds the side-by-side comparison.
set -euo pipefail
go test -run='^$' -bench=. -benchmem -count=1 ./...
bench/run.sh
