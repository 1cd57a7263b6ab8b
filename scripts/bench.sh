#!/usr/bin/env bash
# `make bench`: the same HTTP load against pacs and against Orthanc (the
# yardstick, Debian's orthanc + orthanc-dicomweb) in one run, then the Go
# benchmarks. Writes bench-results/<date>.md and prints it.
#
# Environment:
#   BENCH_ARGS     extra pacsbench flags for both servers, e.g.
#                  "--studies 1000 --series 4 --instances 25" (100,000 instances + 1,000)
#   BENCH_SERVERS  "pacs orthanc" (default), or any of "pacs pacs-s3 orthanc";
#                  pacs-s3 is pacs with its blobs on the S3 test server
#                  (scripts/s3.sh), compared with pacs on the local folder
#   GOBENCH        go test -bench pattern (default "."; "none" skips the Go benchmarks)
#   GOBENCHTIME    go test -benchtime (default 1s)
#   FLOOD          "pacsbench flood" flags for the concurrent-upload memory run
#                  against a fresh pacs (default: 32 × 200 MB + 1,000 small
#                  STOWs at once); "none" skips it
# pacs is also measured in server CPU per request (/proc/PID/stat), and its
# frame phase is repeated against http.FileServer serving the frames it sent
# as files (pacsbench run --static-frames), the yardstick of issue 11.
# Every server runs on 127.0.0.1 on a free port with data in a temp folder
# that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

servers=${BENCH_SERVERS:-pacs orthanc}
read -r -a extra <<<"${BENCH_ARGS:-}"
gobench=${GOBENCH:-.}
gobenchtime=${GOBENCHTIME:-1s}
go=${GO:-go}

stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
mkdir -p bench-results
md=bench-results/$stamp.md
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pacs-bench.XXXXXX")
pids=()
failed=()
s3_started=

cleanup() {
	local pid
	for pid in "${pids[@]}"; do stop_pid "$pid"; done
	ORTHANC_DIR=$tmp/orthanc scripts/orthanc.sh stop >/dev/null 2>&1 || true
	[[ -z $s3_started ]] || scripts/s3.sh stop >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

log "building bin/pacsbench"
"$go" build -o bin/pacsbench ./cmd/pacsbench

seed=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${load_start%% *}" -v n="$(nproc)" 'BEGIN { exit !(l > n / 2) }'; then
	log "warning: load average $load_start on $(nproc) cores: other work will skew the figures"
fi
declare -A url=() pid_of=()

# start_pacs NAME [serve flags...] runs bin/pacs on a free port with its
# data in the temp folder and records its DICOMweb URL under NAME.
start_pacs() {
	local name=$1 port pid
	shift
	port=$(free_port 18080)
	mkdir -p "$tmp/$name-data"
	setsid bin/pacs serve --listen "127.0.0.1:$port" --data "$tmp/$name-data" "$@" >"$tmp/$name.log" 2>&1 </dev/null &
	pid=$!
	pids+=("$pid")
	if wait_http "http://127.0.0.1:$port/readyz" 60 "$pid"; then
		url[$name]=http://127.0.0.1:$port/dicom-web
		pid_of[$name]=$pid
	else
		tail -n 20 "$tmp/$name.log" >&2 || true
		failed+=("$name did not become ready on port $port")
	fi
}

if [[ " $servers " == *" pacs"* ]]; then
	log "building bin/pacs"
	if "$go" build -tags "$(scripts/build-tags.sh)" -o bin/pacs ./cmd/pacs 2>"$tmp/pacs-build.log"; then
		if [[ " $servers " == *" pacs "* ]]; then
			start_pacs pacs
		fi
		if [[ " $servers " == *" pacs-s3 "* ]]; then
			scripts/s3.sh status >/dev/null 2>&1 || s3_started=1
			eval "$(scripts/s3.sh start)"
			bucket=pacs-bench-$stamp
			bucket=${bucket,,}
			scripts/s3.sh bucket "$bucket"
			start_pacs pacs-s3 --blob "s3://$bucket/bench?endpoint=$PACS_TEST_S3_ENDPOINT&path_style=true&region=us-east-1"
		fi
	else
		cat "$tmp/pacs-build.log" >&2
		failed+=("go build ./cmd/pacs failed")
	fi
fi
if [[ " $servers " == *" orthanc "* ]]; then
	log "starting Orthanc"
	if u=$(ORTHANC_DIR=$tmp/orthanc scripts/orthanc.sh start); then
		url[orthanc]=$u
	else
		failed+=("Orthanc did not start")
	fi
fi

declare -A ran=()
for s in orthanc pacs pacs-s3; do
	[[ -n ${url[$s]:-} ]] || continue
	log "load run against $s at ${url[$s]}"
	# pacs: the server's CPU per request (its pid), and the frame phase
	# also against http.FileServer serving the frames pacs sent as files.
	own=()
	[[ -z ${pid_of[$s]:-} ]] || own=(--pid "${pid_of[$s]}")
	[[ $s != pacs ]] || own+=(--static-frames)
	if bin/pacsbench run --url "${url[$s]}" --label "$s" --seed "$seed" --out "$tmp/$s.json" "${own[@]}" "${extra[@]}" \
		>"$tmp/$s.txt" 2>"$tmp/$s.log"; then
		ran[$s]=1
	else
		tail -n 20 "$tmp/$s.log" >&2
		failed+=("pacsbench against $s failed (see its table)")
		[[ -s $tmp/$s.json ]] && ran[$s]=1
	fi
	cat "$tmp/$s.txt"
	cp "$tmp/$s.json" "bench-results/$stamp-$s.json" 2>/dev/null || true
done

# The flood: many uploads at once against a fresh server (its peak RSS
# counts from its start), after the load runs so that it skews nothing.
flood=${FLOOD:-}
if [[ $flood != none && -n ${url[pacs]:-} ]]; then
	read -r -a flood_args <<<"$flood"
	start_pacs flood
	if [[ -n ${url[flood]:-} ]]; then
		log "flood against a fresh pacs at ${url[flood]}"
		if ! bin/pacsbench flood --url "${url[flood]}" --pid "${pids[-1]}" --out "$tmp/flood.json" "${flood_args[@]}" \
			>"$tmp/flood.txt" 2>&1; then
			failed+=("pacsbench flood failed")
		fi
		cat "$tmp/flood.txt"
		stop_pid "${pids[-1]}"
		rm -rf "$tmp/flood-data"
	fi
fi

{
	echo "# Benchmark run $stamp"
	echo
	echo "Command: \`make bench\`${BENCH_ARGS:+ with \`BENCH_ARGS=\"$BENCH_ARGS\"\`}; seed $seed (both servers got the same load)."
	echo
	echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')),"
	echo "$(free -g | awk '/^Mem:/ {print $2}') GiB memory, $(uname -sr), $("$go" version | cut -d' ' -f3-)."
	if [[ -n ${url[orthanc]:-} ]]; then
		echo "Orthanc $(dpkg-query -W -f='${Version}' orthanc), DICOMweb plugin $(dpkg-query -W -f='${Version}' orthanc-dicomweb) (Debian packages)."
	fi
	echo "pacs: $(git describe --always --dirty 2>/dev/null || echo unknown), embedded mode (local blobs + SQLite) in a temp folder."
	echo "Load average (1, 5, 15 min) at start: $load_start; after the load runs: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Client and servers share the machine's cores; figures from a busy machine are not comparable with a quiet one."
	echo
	if [[ -n ${ran[pacs]:-} && -n ${ran[orthanc]:-} ]]; then
		echo "## pacs vs Orthanc"
		echo
		bin/pacsbench compare "$tmp/orthanc.json" "$tmp/pacs.json"
		echo
	fi
	if [[ -n ${ran[pacs]:-} && -n ${ran[pacs-s3]:-} ]]; then
		echo "## pacs on S3 (versitygw on loopback) vs pacs on the local folder"
		echo
		echo "× here: how many times faster the folder store is than S3 (below 1: S3 is faster)."
		echo
		bin/pacsbench compare "$tmp/pacs-s3.json" "$tmp/pacs.json"
		echo
	fi
	if [[ -s $tmp/flood.txt ]]; then
		echo "## Concurrent uploads (pacsbench flood, fresh pacs)"
		echo
		echo '```'
		cat "$tmp/flood.txt"
		echo '```'
		echo
	fi
	for s in pacs pacs-s3 orthanc; do
		[[ -n ${ran[$s]:-} ]] || continue
		echo "## $s"
		echo
		echo '```'
		cat "$tmp/$s.txt"
		echo '```'
		echo
	done
} >"$md"

if [[ $gobench != none ]]; then
	log "Go benchmarks (go test -run '^\$' -bench '$gobench' -benchmem -benchtime $gobenchtime ./...)"
	{
		echo "## Go benchmarks"
		echo
		echo "\`go test -run '^\$' -bench '$gobench' -benchmem -benchtime $gobenchtime ./...\`"
		echo
		echo '```'
	} >>"$md"
	if ! "$go" test -run '^$' -bench "$gobench" -benchmem -benchtime "$gobenchtime" ./... >"$tmp/gobench.txt" 2>&1; then
		failed+=("go test -bench failed")
	fi
	# The raw output, for benchstat (go run golang.org/x/perf/cmd/benchstat old.txt new.txt).
	cp "$tmp/gobench.txt" "bench-results/$stamp-gobench.txt"
	# In the report: only the packages that have benchmarks, and failures.
	awk '
		/^(ok|FAIL|\?)[ \t]/ || /^FAIL$/ {
			block = block $0 "\n"
			if (has || $1 == "FAIL") printf "%s", block
			block = ""; has = 0; next
		}
		/^Benchmark/ { has = 1 }
		/^PASS$/ { next }
		{ block = block $0 "\n" }
	' "$tmp/gobench.txt" >>"$md"
	echo '```' >>"$md"
	echo >>"$md"
	echo "Raw output for benchstat: bench-results/$stamp-gobench.txt" >>"$md"
fi

if ((${#failed[@]} > 0)); then
	{
		echo
		echo "## Failures"
		echo
		printf -- '- %s\n' "${failed[@]}"
	} >>"$md"
fi

echo
cat "$md"
echo
log "wrote $md"
if ((${#failed[@]} > 0)); then
	printf '%s: FAILED: %s\n' "${0##*/}" "${failed[@]}" >&2
	exit 1
fi
