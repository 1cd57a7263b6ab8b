#!/usr/bin/env bash
# Headless Chromium for the browser tests (viewer/e2e: our viewer and OHIF).
#
#   scripts/browser.sh install   # install Debian's chromium if missing (no-op when present)
#   scripts/browser.sh path      # print the browser binary the tests use
#
# The tests find the browser through PACS_CHROMIUM, else chromium,
# chromium-browser or google-chrome on PATH; they skip without one unless
# PACS_TEST_REQUIRE_TOOLS=1. scripts/test-deps.sh calls `install`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

path() {
	local c
	for c in "${PACS_CHROMIUM:-}" chromium chromium-browser google-chrome; do
		[[ -n $c ]] && command -v "$c" 2>/dev/null && return 0
	done
	return 1
}

case ${1:-} in
install)
	apt_install chromium
	path >/dev/null || die "chromium installed but not on PATH"
	;;
path) path || die "no chromium: run scripts/browser.sh install" ;;
*) die "usage: $0 install|path" ;;
esac
