#!/usr/bin/env bash
# The prebuilt OHIF v3 viewer from the npm package @ohif/app, for the
# browser tests and for trying OHIF against a pacs server. Nothing lands in
# the repository: the package is cached under $OHIF_CACHE.
#
#   scripts/ohif.sh fetch    # npm pack + extract (once); prints the dist folder
#   scripts/ohif.sh dist     # print the dist folder (fails when not fetched)
#
# Environment: OHIF_VERSION (default below), OHIF_CACHE (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/pacs/ohif). The Go tests in viewer/e2e
# read the dist folder from PACS_OHIF_DIST, else run `scripts/ohif.sh dist`;
# without it they skip, or fail when PACS_TEST_REQUIRE_TOOLS=1 (make test).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

version=${OHIF_VERSION:-3.13.2}
cache=${OHIF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pacs/ohif}
dir=$cache/$version

dist() {
	[[ -f $dir/package/dist/index.html ]] || return 1
	echo "$dir/package/dist"
}

fetch() {
	dist 2>/dev/null && return 0
	command -v npm >/dev/null || die "npm not found"
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"
	log "npm pack @ohif/app@$version into $dir"
	(cd "$dir.tmp" && npm pack --silent "@ohif/app@$version" >/dev/null)
	tar -xzf "$dir.tmp"/ohif-app-"$version".tgz -C "$dir.tmp"
	rm -f "$dir.tmp"/*.tgz
	[[ -f $dir.tmp/package/dist/index.html ]] || die "@ohif/app@$version has no dist/index.html"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
	dist
}

case ${1:-} in
fetch) fetch ;;
dist) dist || die "OHIF $version not fetched: run $0 fetch" ;;
*) die "usage: $0 fetch|dist" ;;
esac
