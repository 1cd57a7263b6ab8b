#!/usr/bin/env bash
# Prints the Go build tags for this machine, installing what they need
# first when it can: `cgocodecs` (the JPEG-LS and JPEG 2000/HTJ2K decoders,
# cgo bindings to Debian's CharLS and OpenJPEG) when gcc and the two -dev
# packages are there or can be installed (root, or sudo). Without them it
# prints nothing and warns: the server still builds and runs, and answers
# 406 for those transfer syntaxes where it would need to decode them.
#
#   go build -tags "$(scripts/build-tags.sh)" ./cmd/pacs
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

have() {
	command -v gcc >/dev/null &&
		[[ -e /usr/include/charls/charls.h && -e /usr/include/openjpeg-2.5/openjpeg.h ]]
}
if ! have && command -v apt-get >/dev/null && { [[ $(id -u) == 0 ]] || command -v sudo >/dev/null; }; then
	apt_install gcc libc6-dev libcharls-dev libopenjp2-7-dev >&2 || true
fi
if have && [[ $(go env CGO_ENABLED) == 1 ]]; then
	echo cgocodecs
else
	log "warning: building without the JPEG-LS and JPEG 2000 decoders (need gcc, libcharls-dev, libopenjp2-7-dev and cgo)"
fi
