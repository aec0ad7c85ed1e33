#!/usr/bin/env bash
# make bench: bench/run.sh, the side-by-side comparison that writes
# BENCHMARKS.md (about 15 minutes on 2 cores), then every Go benchmark once
# (a smoke run of each, with -benchmem; the README gives the command and
# -benchtime of each figure it quotes).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bench/run.sh
echo "side by side: $(( $(date +%s) - start )) s"
go test -run='^$' -bench=. -benchmem -benchtime=1x -count=1 -timeout 10m ./...
echo "make bench: $(( $(date +%s) - start )) s"
