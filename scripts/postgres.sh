#!/usr/bin/env bash
# A private PostgreSQL cluster for tests and benchmarks: initdb in a run
# folder, a server on 127.0.0.1 with a free port (unix socket in the run
# folder), one database. Not the system service.
#
#   scripts/postgres.sh start   # install if missing, init, start; prints the DSN
#   scripts/postgres.sh env     # prints `export PACS_TEST_POSTGRES_DSN=...` (for eval)
#   scripts/postgres.sh dsn     # prints the DSN when running
#   scripts/postgres.sh stop    # pg_ctl stop -m fast (keeps the data folder)
#   scripts/postgres.sh clean   # stop and remove the run folder
#
# `start` is idempotent: a running cluster is reused. Typical use:
#   eval "$(scripts/postgres.sh env)"   # starts it when needed
#
# Environment: PACS_PG_DIR (run folder; default $TMPDIR/pacs-postgres),
# PACS_PG_PORT (default: the first free port from 15432).
#
# Tuned for throw-away test data: fsync=off, synchronous_commit=off,
# full_page_writes=off. Never point it at data you want to keep.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

dir=${PACS_PG_DIR:-${TMPDIR:-/tmp}/pacs-postgres}
data=$dir/data
pidfile=$data/postmaster.pid
db=pacs
user=pacs

bindir() {
	local d
	if command -v pg_config >/dev/null && d=$(pg_config --bindir 2>/dev/null) && [[ -x $d/initdb ]]; then
		echo "$d"
		return 0
	fi
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
	[[ -n $d && -x $d/initdb ]] || return 1
	echo "$d"
}

# as_owner CMD...: runs CMD as the owner of the cluster (initdb and
# postgres refuse to run as root).
as_owner() {
	if [[ $(id -u) == 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

running() {
	[[ -f $pidfile && -f $dir/port ]] && kill -0 "$(head -n1 "$pidfile")" 2>/dev/null
}

dsn() { echo "postgres://$user@127.0.0.1:$(cat "$dir/port")/$db?sslmode=disable"; }

start() {
	if running; then
		dsn
		return 0
	fi
	local bin
	if ! bin=$(bindir); then
		apt_install postgresql postgresql-contrib
		bin=$(bindir) || die "postgresql installed but no initdb under /usr/lib/postgresql/*/bin"
	fi
	mkdir -p "$dir"
	if [[ $(id -u) == 0 ]]; then
		id postgres >/dev/null 2>&1 || die "user postgres missing (the Debian package creates it)"
		chown postgres: "$dir"
		chmod 0700 "$dir"
	fi
	if [[ ! -f $data/PG_VERSION ]]; then
		rm -rf "$data"
		# trust on loopback: a throw-away cluster reachable from this host only.
		as_owner "$bin/initdb" -D "$data" -U "$user" -E UTF8 --locale=C.UTF-8 \
			--auth=trust --no-sync >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; die "initdb failed"; }
	fi
	local port=${PACS_PG_PORT:-$(free_port 15432)}
	echo "$port" >"$dir/port"
	rm -f "$pidfile" # stale after a crash or reboot
	as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start -o "-h 127.0.0.1 -p $port -k $dir \
		-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
		-c max_connections=200 -c shared_buffers=256MB -c work_mem=16MB \
		-c max_wal_size=2GB -c checkpoint_timeout=30min" >/dev/null ||
		{ tail -n 30 "$dir/server.log" >&2; die "pg_ctl start failed"; }
	if ! as_owner "$bin/psql" -h "$dir" -p "$port" -U "$user" -d postgres -Atqc \
		"SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
		as_owner "$bin/createdb" -h "$dir" -p "$port" -U "$user" "$db"
	fi
	dsn
}

stop() {
	local bin
	if running && bin=$(bindir); then
		as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
	fi
}

case ${1:-} in
start) start ;;
env) echo "export PACS_TEST_POSTGRES_DSN='$(start)'" ;;
dsn) running && dsn ;;
stop) stop ;;
clean)
	stop
	rm -rf "$dir"
	;;
status) if running; then dsn; else exit 1; fi ;;
*) die "usage: $0 start|stop|env|dsn|status|clean" ;;
esac
