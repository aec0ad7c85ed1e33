#!/usr/bin/env bash
# Side-by-side benchmark: plugs beside supervisord, s6, runit and pm2, and a
# minimal fork/exec baseline, for N = 100 and 1,000 children, several runs
# each. Installs the peers when missing (Debian packages supervisor, s6,
# runit; pm2 from npm into bench/.peers), then writes BENCHMARKS.md.
# Defaults: 2 runs per count (1 of supervisord and pm2, which take minutes
# per run at N = 1,000), idle window 10 s and 20 s, a converge capped at
# 30 s: about 15 minutes on 2 cores.
#
#   bench/run.sh                     # the full run
#   BENCH_N=1000 BENCH_RUNS=1 BENCH_IDLE=2s BENCH_PEERS=baseline,plugs bench/run.sh   # a quick look
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_N:-100,1000}
RUNS=${BENCH_RUNS:-2,2}
SLOW_RUNS=${BENCH_SLOW_RUNS:-1,1}
IDLE=${BENCH_IDLE:-10s,20s}
LIMIT=${BENCH_CONVERGE_LIMIT:-30s}
PEERS=${BENCH_PEERS:-baseline,plugs,supervisord,s6,runit,pm2}
OUT=${BENCH_OUT:-BENCHMARKS.md}

missing=()
command -v supervisord >/dev/null 2>&1 || missing+=(supervisor)
command -v s6-svscan >/dev/null 2>&1 || missing+=(s6)
command -v runsvdir >/dev/null 2>&1 || missing+=(runit)
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
		# Debian may start the packaged supervisord; the benchmark runs its own.
		if [ -x /etc/init.d/supervisor ]; then /etc/init.d/supervisor stop >/dev/null 2>&1 || true; fi
	else
		echo "missing: ${missing[*]} (install them, or run as root to let this script do it)" >&2
	fi
fi
if [ ! -x bench/.peers/node_modules/.bin/pm2 ] && command -v npm >/dev/null 2>&1; then
	echo "installing pm2 into bench/.peers"
	mkdir -p bench/.peers
	(cd bench/.peers && npm install --silent --no-audit --no-fund --prefix . pm2@7 >/dev/null)
fi

go build -o bin/plugs ./cmd/plugs
go build -o bin/baseline ./bench/baseline
# Raise the open-file limit so 1,000 children with pipes fit every peer.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
go run ./bench/sidebyside -n "$N" -runs "$RUNS" -runs-slow "$SLOW_RUNS" -idle "$IDLE" -converge-limit "$LIMIT" -peers "$PEERS" \
	-plugs bin/plugs -baseline bin/baseline -pm2 bench/.peers/node_modules/.bin/pm2 -o "$OUT"
