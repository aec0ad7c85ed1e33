#!/usr/bin/env bash
# make bench: bench/run.sh, the side-by-side comparison that writes
# BENCHMARKS.md (BENCH_OUT to write elsewhere), then every Go benchmark once
# (a smoke run of each, with -benchmem; the README gives the command and
# -benchtime of each figure it quotes). Under 20 minutes on 2 shared cores;
# the elapsed time of each part and of the whole goes at the end of the
# report.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_OUT:-BENCHMARKS.md}
start=$(date +%s)
bench/run.sh
side=$(($(date +%s) - start))
echo "side by side: ${side} s"
smoke=ok
go test -run='^$' -bench=. -benchmem -benchtime=1x -count=1 -timeout 10m ./... || smoke="FAILED (exit $?)"
total=$(($(date +%s) - start))
echo "make bench: ${total} s"
{
	echo
	echo "## Duration of this \`make bench\`"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'): ${total} s in all: the side by side above (peers' install and builds included) ${side} s, then \`go test -run='^\$' -bench=. -benchmem -benchtime=1x -count=1 -timeout 10m ./...\` (every Go benchmark once, a smoke run: ${smoke}) $((total - side)) s; load average $(cut -d' ' -f1 /proc/loadavg) at the end."
} >>"$OUT"
[ "$smoke" = ok ]
