#!/bin/sh
# mqtt-shell: an example plugs plugin in POSIX shell. Every interval it
# publishes an Open mHealth body-temperature 3.0 data point (header 1.2) to its
# data topic with `mosquitto_pub -q 1`. Reads everything from $PLUGS_CONFIG.
#
# The broker credentials are handed to mosquitto_pub through a private options
# file ($XDG_CONFIG_HOME/mosquitto_pub), never on its command line, where any
# local user could read them in ps.
set -eu

: "${PLUGS_CONFIG:?PLUGS_CONFIG is not set: run this plugin under plugs}"
command -v python3 >/dev/null || { echo "mqtt-shell: python3 not found" >&2; exit 1; }
command -v mosquitto_pub >/dev/null || { echo "mqtt-shell: mosquitto_pub not found (apt-get install mosquitto-clients)" >&2; exit 1; }

exec 3>&2 # fd 3: the log (see the loop below)
here=$(cd "$(dirname "$0")" && pwd)
optdir=$(mktemp -d)
child=""
cleanup() {
	[ -n "$child" ] && kill "$child" 2>/dev/null || true
	rm -rf "$optdir"
}
trap 'cleanup; echo "mqtt-shell: stopping" >&3; exit 0' TERM INT
trap cleanup EXIT

# omh.py prints shell assignments (values quoted with shlex.quote) and writes
# the mosquitto_pub options file.
settings=$(python3 "$here/omh.py" config "$PLUGS_CONFIG" "$optdir") || exit 1
eval "$settings"
echo "mqtt-shell: publishing to $topic on $host:$port every ${interval}s" >&2

# The stop signal goes to the whole process group: a sleep or mosquitto_pub
# killed by it would make the shell print "Terminated" on its stderr. So the
# shell's own stderr goes to /dev/null from here on, and the plugin's log and
# its children's errors to fd 3, the original stderr.
exec 2>/dev/null
while :; do
	if python3 "$here/omh.py" reading "$PLUGS_CONFIG" 2>&3 |
		XDG_CONFIG_HOME="$optdir" mosquitto_pub -q 1 -t "$topic" -s 2>&3; then
		echo "mqtt-shell: published" >&3
	else
		echo "mqtt-shell: publish failed, retrying next interval" >&3
	fi
	# sleep in the background so that TERM is handled at once, not after the sleep.
	sleep "$interval" 2>&3 &
	child=$!
	wait "$child" || true
	child=""
done
