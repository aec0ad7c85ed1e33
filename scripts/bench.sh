#!/usr/bin/env bash
# make bench: bench/run.sh, the side-by-side comparison that writes
# BENCHMARKS.md (BENCH_OUT to write elsewhere), then every Go benchmark once
# (a smoke run of each, with -benchmem; the README gives the command and
# -benchtime of each figure it quotes). Under 20 minutes on 2 shared cores;
# the elapsed time of each part and of the whole goes at the end of the
# report.
#
# go test's -timeout does not stop a benchmark (only tests), so the smoke
# run is bounded here: after BENCH_SMOKE_LIMIT seconds its process group
# gets SIGQUIT (each test binary prints its goroutines: the benchmark that
# hangs is named in bench/results/smoke.log), then SIGKILL.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_OUT:-BENCHMARKS.md}
SMOKE_LIMIT=${BENCH_SMOKE_LIMIT:-420}
start=$(date +%s)
bench/run.sh
side=$(($(date +%s) - start))
echo "side by side: ${side} s"

mkdir -p bench/results
log=bench/results/smoke.log
smoke_cmd=(go test -run='^$' -bench=. -benchmem -benchtime=1x -count=1 -timeout 10m ./...)
set -m # its own process group, whose id is its pid
"${smoke_cmd[@]}" >"$log" 2>&1 &
pid=$!
set +m
t=0
while kill -0 "$pid" 2>/dev/null && [ "$t" -lt "$SMOKE_LIMIT" ]; do sleep 1; t=$((t + 1)); done
smoke=ok
if kill -0 "$pid" 2>/dev/null; then
	kill -QUIT -- "-$pid" 2>/dev/null || true
	sleep 10
	kill -KILL -- "-$pid" 2>/dev/null || true
	wait "$pid" || true
	hung=$(grep -o 'plugs/[a-z/]*\.Benchmark[A-Za-z0-9_]*' "$log" | sort -u | paste -sd, || true)
	smoke="FAILED: stopped after ${SMOKE_LIMIT} s, still in ${hung:-?}"
elif ! wait "$pid"; then
	smoke="FAILED: $(grep -E '^(FAIL|--- FAIL)' "$log" | paste -sd';' | cut -c1-300)"
fi
grep -E '^(ok|FAIL|--- FAIL)' "$log" || true
echo "go benchmarks (smoke): $smoke"
total=$(($(date +%s) - start))
echo "make bench: ${total} s"
{
	echo
	echo "## Duration of this \`make bench\`"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'): **${total} s** in all: the side by side above (peers' install and builds included) ${side} s, then \`go test -run='^$' -bench=. -benchmem -benchtime=1x -count=1 -timeout 10m ./...\` (every Go benchmark once, a smoke run, bounded to ${SMOKE_LIMIT} s: ${smoke}) $((total - side)) s; load average $(cut -d' ' -f1 /proc/loadavg) at the end."
} >>"$OUT"
[ "$smoke" = ok ]
