#!/usr/bin/env bash
# bench/daemon-times.sh MODE BINARY... : what a user of `plugs run` waits for,
# at N plugs of one `sleep` child each, timed from this shell, for one or
# more plugs binaries alternated run by run (old and new, to compare them).
#
#   exit      after all N run and IDLE seconds, `kill -TERM` the daemon:
#             the time until it has exited (what `systemctl stop` waits for)
#   converge  after all N run and IDLE seconds, replace plugs.hcl (10% removed,
#             10% with a changed command, 10% added) and time `plugs apply`
#             (it returns once the change runs), with the daemon's own
#             load/plan/apply figures from its log
#
# Environment: N (1000), RUNS (3), IDLE (3 s), GCTRACE=1 to count the
# daemon's garbage collections (GODEBUG=gctrace=1) in each run.
# Every run has a fresh folder under one temporary folder, removed at the
# end: on an ext4 without a journal, creating files within 30 s of
# deleting many is slow (README, Performance), so nothing is deleted
# between runs. Each daemon is stopped by its own pid; each loop is bounded.
set -euo pipefail
mode=${1:?usage: bench/daemon-times.sh exit|converge BINARY...}
shift
[ $# -ge 1 ] || { echo "usage: bench/daemon-times.sh exit|converge BINARY..." >&2; exit 2; }
N=${N:-1000} RUNS=${RUNS:-3} IDLE=${IDLE:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/plugs-daemon-times.XXXXXX")
trap 'rm -rf "$work"' EXIT
marker=$((RANDOM % 900 + 100)) # the children are `sleep <marker><5 digits>`

declaration() { # declaration FIRST LAST CHANGED_UP_TO
	local i m
	for ((i = $1; i <= $2; i++)); do
		m=$(printf '%s0%05d' "$marker" "$i")
		((i <= $3)) && m=$(printf '%s1%05d' "$marker" "$i")
		printf 'plug "p%05d" {\n  source = "./empty"\n  plugin {\n    kind    = "script"\n    command = ["sleep", "%s"]\n  }\n}\n\n' "$i" "$m"
	done
}

running() { pgrep -c -f "^sleep $marker" || true; }

one() { # one BINARY DIR
	local bin=$1 d=$2 pid t0 t1 i env=()
	mkdir -p "$d/empty"
	declaration 1 "$N" 0 >"$d/plugs.hcl"
	(cd "$d" && "$bin" fetch -q -f plugs.hcl)
	[ "${GCTRACE:-}" = 1 ] && env=(GODEBUG=gctrace=1)
	(cd "$d" && exec env "${env[@]}" "$bin" run -f plugs.hcl --metrics-addr 127.0.0.1:0 --broker-addr 127.0.0.1:0 \
		--ui-addr 127.0.0.1:0 --sandbox=false >plugs.log 2>&1 </dev/null) &
	pid=$!
	for ((i = 0; i < 1200; i++)); do
		[ "$(running)" -ge "$N" ] && break
		sleep 0.1
	done
	[ "$(running)" -ge "$N" ] || { kill -TERM "$pid"; wait "$pid" || true; echo "$bin: not all $N running after 120 s" >&2; return 1; }
	sleep "$IDLE"
	local out
	if [ "$mode" = converge ]; then
		local tenth=$((N / 10))
		declaration $((tenth + 1)) $((N + tenth)) $((2 * tenth)) >"$d/plugs.hcl.new"
		mv "$d/plugs.hcl.new" "$d/plugs.hcl"
		t0=$(date +%s%N)
		(cd "$d" && "$bin" apply -f plugs.hcl >apply.out 2>&1)
		t1=$(date +%s%N)
		out="apply $(((t1 - t0) / 1000000)) ms ($(grep -o 'load=[^ ]* plan=[^ ]* apply=[^ ]*' "$d/plugs.log" | tail -1))"
		kill -TERM "$pid"
		wait "$pid" || true
	else
		t0=$(date +%s%N)
		kill -TERM "$pid"
		wait "$pid" || true
		t1=$(date +%s%N)
		out="exited $(((t1 - t0) / 1000000)) ms after SIGTERM"
	fi
	[ "${GCTRACE:-}" = 1 ] && out="$out, $(grep -c '^gc ' "$d/plugs.log" || true) collections"
	echo "$bin: $out"
}

for ((r = 1; r <= RUNS; r++)); do
	k=0
	for bin in "$@"; do
		k=$((k + 1))
		one "$(realpath "$bin")" "$work/run$r.$k"
	done
done
