#!/bin/bash
# bench/idle.sh BIN N SECONDS [embedded|external]
#
# The plugs daemon BIN idle with N `sleep` instances (issue 17's idle rows):
# once all N children run and 10 s more have passed, the daemon's CPU time
# over SECONDS (utime+stime from /proc/<pid>/stat, in clock ticks; and the
# sum of its threads' run time and timeslices from /proc/<pid>/task/*/schedstat,
# in ns: CPU time, not wall, so it holds on a loaded machine) and its PSS
# and RSS (smaps_rollup) at the end. external: a Mosquitto (anonymous, on a
# random loopback port) in a broker block instead of the embedded broker.
# The daemon runs --sandbox=false with every listener on a free port, in a
# temporary directory it removes.
set -e
BIN=$(readlink -f "$1"); N=$2; IDLE=$3; MODE=${4:-embedded}
W=$(mktemp -d); cd "$W"; mkdir empty
MPID=
if [ "$MODE" = external ]; then
  PORT=$((20000 + RANDOM % 20000))
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' $PORT > m.conf
  mosquitto -c m.conf >m.log 2>&1 & MPID=$!
  printf 'broker {\n  url = "tcp://127.0.0.1:%s"\n}\n\n' $PORT > plugs.hcl
fi
for i in $(seq 1 "$N"); do
  printf 'plug "s%d" {\n  source = "./empty"\n  plugin {\n    kind    = "script"\n    command = ["sleep", "100000%d"]\n  }\n}\n\n' "$i" "$i" >> plugs.hcl
done
"$BIN" fetch -q -f plugs.hcl
setsid "$BIN" run -f plugs.hcl --metrics-addr 127.0.0.1:0 --broker-addr 127.0.0.1:0 --ui-addr 127.0.0.1:0 --sandbox=false >plugs.log 2>&1 &
PID=$!
c=0
for _ in $(seq 1 300); do c=$(pgrep -P $PID -c sleep || true); [ "$c" -ge "$N" ] && break; sleep 1; done
sleep 10
ticks() { awk '{print $14+$15}' /proc/$PID/stat; }
sched() { cat /proc/$PID/task/*/schedstat | awk -v f="$1" '{s+=$f} END {printf "%d", s}'; }
t0=$(ticks); n0=$(sched 1); w0=$(sched 3)
sleep "$IDLE"
t1=$(ticks); n1=$(sched 1); w1=$(sched 3)
HZ=$(getconf CLK_TCK)
pss=$(awk '/^Pss:/{print $2}' /proc/$PID/smaps_rollup)
rss=$(awk '/^Rss:/{print $2}' /proc/$PID/smaps_rollup)
printf 'broker=%s n=%d children=%d idle=%ss cpu_ms=%d run_ms=%.1f timeslices=%d pss_mib=%.1f rss_mib=%.1f\n' \
  "$MODE" "$N" "$c" "$IDLE" $(( (t1-t0)*1000/HZ )) "$(echo "($n1-$n0)/1000000" | bc -l)" $((w1-w0)) \
  "$(echo "$pss/1024" | bc -l)" "$(echo "$rss/1024" | bc -l)"
kill -TERM $PID
for _ in $(seq 1 120); do kill -0 $PID 2>/dev/null || break; sleep 0.5; done
[ -n "$MPID" ] && kill $MPID
cd /; rm -rf "$W"
