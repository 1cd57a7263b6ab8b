#!/usr/bin/env bash
# Runs every Go fuzz target of the module for FUZZTIME (default 30s) each,
# one at a time (go test -fuzz takes one target per run). Targets are found
# with `go test -list`, so new ones are picked up without editing this.
# New crashers land in the package's testdata/fuzz/ and stay as tests.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
go=${GO:-go}
# The cgo codecs' fuzz targets need the cgocodecs build when it is possible.
tags=$(bash scripts/build-tags.sh)
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=$tags"

n=0
failed=()
for pkg in $("$go" list ./...); do
	# -list runs no test; a package without targets prints only "ok".
	if ! listed=$("$go" test -run '^$' -list '^Fuzz' "$pkg" 2>&1); then
		echo "$listed"
		failed+=("$pkg (does not build)")
		continue
	fi
	targets=$(grep -E '^Fuzz' <<<"$listed" || true)
	for t in $targets; do
		n=$((n + 1))
		echo "== $pkg $t ($FUZZTIME)"
		if ! "$go" test -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" ${FUZZPARALLEL:+-parallel "$FUZZPARALLEL"} "$pkg"; then
			failed+=("$pkg $t")
		fi
	done
done
echo "fuzz: $n targets run, ${#failed[@]} failed"
if ((${#failed[@]} > 0)); then
	printf '  FAIL %s\n' "${failed[@]}"
	exit 1
fi
