#!/usr/bin/env bash
# Orthanc with its DICOMweb plugin as a yardstick for benchmarks: a private
# process on loopback with its own config and storage in a run folder, not
# the system service.
#
#   scripts/orthanc.sh start    # install if missing, start, print the DICOMweb root URL
#   scripts/orthanc.sh stop     # stop it and remove its storage
#   scripts/orthanc.sh status   # print the URL when running
#   scripts/orthanc.sh url      # print the DICOMweb root URL
#
# Environment: ORTHANC_DIR (run folder; default $TMPDIR/pacs-orthanc),
# ORTHANC_PORT (HTTP port; default the first free one from 8042).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

dir=${ORTHANC_DIR:-${TMPDIR:-/tmp}/pacs-orthanc}
pidfile=$dir/orthanc.pid

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
url() { echo "http://127.0.0.1:$(cat "$dir/port")/dicom-web"; }

plugin_path() {
	dpkg -L orthanc-dicomweb | grep -E '/libOrthancDicomWeb\.so$' | head -n1
}

start() {
	if running; then
		url
		return 0
	fi
	apt_install orthanc orthanc-dicomweb
	local plugin port
	plugin=$(plugin_path)
	[[ -n $plugin ]] || die "libOrthancDicomWeb.so not found in orthanc-dicomweb"
	port=${ORTHANC_PORT:-$(free_port 8042)}
	rm -rf "$dir/db"
	mkdir -p "$dir/db"
	echo "$port" >"$dir/port"
	# Defaults of the Debian package except: private storage, loopback only,
	# no DIMSE listener, no job persistence. HttpThreadsCount stays at its
	# default (50) so that concurrent load is not throttled by us.
	cat >"$dir/orthanc.json" <<JSON
{
  "Name": "pacs-bench-orthanc",
  "StorageDirectory": "$dir/db",
  "IndexDirectory": "$dir/db",
  "StorageCompression": false,
  "Plugins": ["$plugin"],
  "HttpServerEnabled": true,
  "HttpPort": $port,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "DicomServerEnabled": false,
  "HttpCompressionEnabled": true,
  "KeepAlive": true,
  "TcpNoDelay": true,
  "HttpThreadsCount": 50,
  "SaveJobs": false,
  "ConcurrentJobs": 2,
  "LimitFindResults": 0,
  "LimitFindInstances": 0,
  "OverwriteInstances": false,
  "DicomWeb": {
    "Enable": true,
    "Root": "/dicom-web/",
    "EnableWado": true,
    "WadoRoot": "/wado",
    "Host": "127.0.0.1:$port",
    "Ssl": false
  }
}
JSON
	# setsid: its own process group, so stop can end it and nothing else.
	setsid Orthanc "$dir/orthanc.json" >"$dir/orthanc.log" 2>&1 </dev/null &
	echo $! >"$pidfile"
	if ! wait_http "http://127.0.0.1:$port/system" 60 "$(cat "$pidfile")"; then
		tail -n 30 "$dir/orthanc.log" >&2 || true
		stop
		die "Orthanc did not come up on port $port (log: $dir/orthanc.log)"
	fi
	if ! wait_http "http://127.0.0.1:$port/dicom-web/studies" 10; then
		tail -n 30 "$dir/orthanc.log" >&2 || true
		stop
		die "Orthanc runs but its DICOMweb plugin does not answer"
	fi
	url
}

stop() {
	stop_pidfile "$pidfile"
	rm -rf "$dir/db"
}

case ${1:-} in
start) start ;;
stop) stop ;;
status)
	if running; then url; else
		echo "not running" >&2
		exit 1
	fi
	;;
url) url ;;
*)
	echo "usage: $0 start|stop|status|url" >&2
	exit 2
	;;
esac
