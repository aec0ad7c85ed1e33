#!/usr/bin/env bash
# Side-by-side benchmark: plugs beside supervisord, s6, runit and pm2, and a
# minimal fork/exec baseline, for N = 100 and 1,000 children. Installs the
# peers when missing, without a question (Debian packages supervisor, s6,
# runit, nodejs/npm; pm2 from npm into bench/.peers, which git ignores),
# then writes BENCHMARKS.md (BENCH_OUT to write elsewhere).
#
#   bench/run.sh                     # the full run, part of `make bench`
#   BENCH_N=1000 BENCH_RUNS=1 BENCH_IDLE=2s BENCH_PEERS=baseline,plugs BENCH_OUT=/tmp/b.md bench/run.sh   # a quick look
#
# The defaults keep `make bench` under 20 minutes on 2 shared cores; see
# BENCH_* below and `go run ./bench/sidebyside -h`.
set -euo pipefail
cd "$(dirname "$0")/.."

# N = 1,000 first: the issue's table; N = 100 after, within what is left.
N=${BENCH_N:-1000,100}
# baseline and plugs; supervisord, s6, runit and pm2 (1-4 min a run at 1,000).
RUNS=${BENCH_RUNS:-2,2}
PEER_RUNS=${BENCH_PEER_RUNS:-1,1}
IDLE=${BENCH_IDLE:-30s,5s}
LIMIT=${BENCH_CONVERGE_LIMIT:-20s}
START_LIMIT=${BENCH_START_LIMIT:-90s}
# A run that would start later than this into the side by side is skipped
# and reported so; the Go benchmarks' smoke run follows.
BUDGET=${BENCH_BUDGET:-12m}
PEERS=${BENCH_PEERS:-baseline,plugs,supervisord,s6,runit,pm2}
OUT=${BENCH_OUT:-BENCHMARKS.md}
WARM=${BENCH_WARM_DRIVER:-0}

missing=()
command -v supervisord >/dev/null 2>&1 || missing+=(supervisor)
command -v s6-svscan >/dev/null 2>&1 || missing+=(s6)
command -v runsvdir >/dev/null 2>&1 || missing+=(runit)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		# Another install (make test-deps) may hold dpkg's lock: wait for it.
		apt=(apt-get -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
		"${apt[@]}" update -qq
		# runit's and supervisor's packages may start a system instance
		# where an init runs; policy-rc.d keeps them from starting.
		rc=/usr/sbin/policy-rc.d
		own_rc=
		if [ ! -e "$rc" ]; then printf '#!/bin/sh\nexit 101\n' >"$rc" && chmod +x "$rc" && own_rc=1; fi
		"${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || echo "install of ${missing[*]} failed: those peers are reported as not measured" >&2
		[ -n "$own_rc" ] && rm -f "$rc"
	else
		echo "missing: ${missing[*]} (install them, or run as root to let this script do it); reported as not measured" >&2
	fi
fi
if [ ! -x bench/.peers/node_modules/.bin/pm2 ] && command -v npm >/dev/null 2>&1; then
	echo "installing pm2 into bench/.peers"
	mkdir -p bench/.peers
	(cd bench/.peers && CI=true npm install --silent --no-audit --no-fund --no-update-notifier --prefix . pm2@7 >/dev/null) ||
		echo "npm install pm2 failed: pm2 is reported as not measured" >&2
fi

go build -o bin/plugs ./cmd/plugs
go build -o bin/baseline ./bench/baseline
go build -o bin/sidebyside ./bench/sidebyside
# Every supervisor inherits this open-file limit (the driver's; report:
# "open files"). The hard limit may be below 65536 and not raisable (a
# container without CAP_SYS_RESOURCE: 20,000 here); the soft one goes up to
# it. Each peer needs far less at N = 1,000: its busiest process holds
# ~3,000 descriptors (supervisord, whose minfds the driver sets to 4N+256),
# s6-svscan, runsvdir, pm2 and plugs a few hundred at most.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
bin/sidebyside -n "$N" -runs "$RUNS" -runs-peers "$PEER_RUNS" -idle "$IDLE" \
	-converge-limit "$LIMIT" -start-limit "$START_LIMIT" -budget "$BUDGET" -warm-driver "$WARM" -peers "$PEERS" \
	-plugs bin/plugs -baseline bin/baseline -pm2 bench/.peers/node_modules/.bin/pm2 -o "$OUT"
