#!/usr/bin/env bash
# A private S3-compatible server for the tests: versitygw (Apache-2.0) with
# its posix backend in a run folder, on 127.0.0.1, a free port, fixed
# loopback-only credentials. Not for production.
#
#   eval "$(scripts/s3.sh start)"  # build if missing, start if not running, print env
#   eval "$(scripts/s3.sh env)"    # print the env of the running server
#   scripts/s3.sh stop             # stop it and remove its data
#   scripts/s3.sh status           # print the endpoint when running
#
# The env lines set PACS_TEST_S3_ENDPOINT (which turns on the s3blob tests),
# AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION. The tests create
# their own buckets.
#
# The binary is built once with `go install` (about 3 minutes cold, seconds
# with warm Go caches) into a cache folder outside the repo and reused:
# ${XDG_CACHE_HOME:-$HOME/.cache}/pacs-test/bin/versitygw. Environment:
# S3_DIR (run folder; default $TMPDIR/pacs-s3), S3_PORT (default the first
# free port from 9100), PACS_TEST_CACHE (cache folder).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

VERSITYGW_MODULE=github.com/versity/versitygw
VERSITYGW_VERSION=v1.8.0
ACCESS_KEY=pacs-test-access
SECRET_KEY=pacs-test-secret-not-for-production
REGION=us-east-1

cache=${PACS_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pacs-test}
bin=$cache/bin/versitygw
dir=${S3_DIR:-${TMPDIR:-/tmp}/pacs-s3}
pidfile=$dir/versitygw.pid

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
endpoint() { echo "http://127.0.0.1:$(cat "$dir/port")"; }

print_env() {
	cat <<EOF
export PACS_TEST_S3_ENDPOINT=$(endpoint)
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=$REGION
export PACS_TEST_VERSITYGW=$bin
EOF
}

# ensure_binary builds versitygw into the cache unless the binary there is
# already the pinned version (go version -m reads the module version that
# go install embedded).
ensure_binary() {
	if [[ -x $bin ]] && go version -m "$bin" 2>/dev/null |
		grep -qE "^[[:space:]]+mod[[:space:]]+${VERSITYGW_MODULE}[[:space:]]+${VERSITYGW_VERSION}([[:space:]]|$)"; then
		return 0
	fi
	log "building versitygw $VERSITYGW_VERSION into $cache/bin (about 3 minutes cold)"
	mkdir -p "$cache/bin"
	# Outside the repo, so our go.mod plays no part.
	(cd / && GOBIN="$cache/bin" GOFLAGS=-buildvcs=false go install "$VERSITYGW_MODULE/cmd/versitygw@$VERSITYGW_VERSION") ||
		die "go install versitygw failed"
}

start() {
	if running; then
		print_env
		return 0
	fi
	ensure_binary
	local port pid
	port=${S3_PORT:-$(free_port 9100)} || die "no free port"
	rm -rf "$dir/data"
	mkdir -p "$dir/data"
	echo "$port" >"$dir/port"
	# setsid: its own process group, so stop ends it and nothing else.
	# --keep-alive: without it every response closes the connection.
	ROOT_ACCESS_KEY=$ACCESS_KEY ROOT_SECRET_KEY=$SECRET_KEY \
		setsid "$bin" --port "127.0.0.1:$port" --region "$REGION" --health /health \
		--keep-alive --quiet posix "$dir/data" >"$dir/versitygw.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$pidfile"
	if ! wait_http "http://127.0.0.1:$port/health" 30 "$pid"; then
		tail -n 30 "$dir/versitygw.log" >&2 || true
		stop
		die "versitygw did not come up on port $port (log: $dir/versitygw.log)"
	fi
	print_env
}

stop() {
	stop_pidfile "$pidfile"
	rm -rf "$dir/data"
}

case ${1:-} in
start) start ;;
stop) stop ;;
env)
	running || die "not running; run: scripts/s3.sh start"
	print_env
	;;
status)
	if running; then endpoint; else
		echo "not running" >&2
		exit 1
	fi
	;;
build) ensure_binary ;;
bucket)
	# The posix backend keeps each bucket as a folder of its data folder.
	running || die "not running; run: scripts/s3.sh start"
	[[ ${2:-} =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "usage: $0 bucket NAME (DNS-style)"
	mkdir -p "$dir/data/$2"
	;;
*)
	echo "usage: $0 start|stop|env|status|build|bucket NAME" >&2
	exit 2
	;;
esac
