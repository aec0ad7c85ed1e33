#!/usr/bin/env bash
# Installs what the tests need when it is missing: a Mosquitto broker and its
# clients, a Prometheus server with promtool, git (git daemon, http-backend),
# Debian's chromium for the dashboard's browser tests, and pip and npm for the
# build-time dependency installs of fetch.
# Uses apt-get when run as root on Debian; otherwise says what to install.
set -euo pipefail

#
# With --run it installs only what the example plugins of `make run` use:
# mosquitto_pub (mosquitto-clients) and python3.
need=()
command -v mosquitto_sub >/dev/null 2>&1 || need+=(mosquitto-clients)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ "${1:-}" != "--run" ]; then
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
	command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
	command -v promtool >/dev/null 2>&1 || need+=(prometheus)
	command -v git >/dev/null 2>&1 || need+=(git)
	command -v unshare >/dev/null 2>&1 || need+=(util-linux)
	# fetch's build-time dependency tests: pip install --target, npm ci.
	python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
	command -v npm >/dev/null 2>&1 || need+=(npm)
	# The dashboard's browser tests (ui) drive Debian's chromium through chromedp.
	[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
fi

if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
# de-duplicate
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# --no-install-recommends keeps the Prometheus web UI assets and friends out.
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	# Debian starts the packaged services; the tests start their own on free ports.
	for svc in mosquitto prometheus; do
		if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
		if [ -x "/etc/init.d/$svc" ]; then "/etc/init.d/$svc" stop >/dev/null 2>&1 || true; fi
	done
else
	echo "missing: ${need[*]}" >&2
	echo "install them with: sudo apt-get install ${need[*]}" >&2
	# make run goes on: only the plugins that need them will fail, and say so.
	[ "${1:-}" = "--run" ] && exit 0
	exit 1
fi
