# Shared helpers for the scripts in this folder. Source it; don't run it.
# shellcheck shell=bash

# log MSG... prints a prefixed line on stderr.
log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# die MSG... prints MSG and exits 1.
die() { log "$@"; exit 1; }

# port_in_use PORT succeeds when something listens on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port [START] prints the first port from START (default 18000) that
# nothing listens on. Good enough for a single-user dev box and CI.
free_port() {
	local p=${1:-18000}
	local last=$((p + 500))
	while ((p < last)); do
		if ! port_in_use "$p"; then
			echo "$p"
			return 0
		fi
		p=$((p + 1))
	done
	return 1
}

# wait_http URL SECONDS [PID] polls URL until it answers 2xx, the time is
# up, or PID (when given) has died.
wait_http() {
	local url=$1 secs=$2 pid=${3:-} i
	for ((i = 0; i < secs * 10; i++)); do
		if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
			return 0
		fi
		if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		sleep 0.1
	done
	return 1
}

# apt_install PKG... installs the Debian packages that are not installed
# yet; it does nothing (and runs no apt-get) when all of them are.
apt_install() {
	local missing=() p
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
			missing+=("$p")
		fi
	done
	((${#missing[@]} == 0)) && return 0
	local sudo=()
	if [[ $(id -u) != 0 ]]; then
		command -v sudo >/dev/null || die "need root (or sudo) to install: ${missing[*]}"
		sudo=(sudo)
	fi
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# stop_pid PID sends SIGTERM, waits up to 10 s, then SIGKILL.
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
}

# stop_pidfile FILE stops the process whose pid FILE holds, and removes FILE.
stop_pidfile() {
	[[ -f $1 ]] || return 0
	stop_pid "$(cat "$1")"
	rm -f "$1"
}
