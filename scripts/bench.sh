#!/usr/bin/env bash
# make bench: every Go benchmark once (a smoke run of each, with -benchmem;
# the README gives the command and -benchtime of each figure it quotes),
# then bench/run.sh, the side-by-side comparison that writes BENCHMARKS.md.
# The whole run takes under 20 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
go test -run='^$' -bench=. -benchmem -benchtime=1x -count=1 ./...
echo "go benchmarks: $(( $(date +%s) - start )) s"
bench/run.sh
echo "make bench: $(( $(date +%s) - start )) s"
