#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it, on a fresh Debian
# machine with Go: installs what the tests need (once), starts the real
# services they talk to (an S3-compatible server, PostgreSQL) on loopback,
# runs every test with the race detector, then the DICOMweb black-box
# suite a second time on S3 + PostgreSQL, and stops the services.
#
# Tests that need a tool or a service fail instead of skipping here
# (PACS_TEST_REQUIRE_TOOLS=1), so a missing piece never passes silently.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

GO=${GO:-go}

bash scripts/test-deps.sh

# Services. Each script reuses a server that is already running
# (idempotent) and prints the variables the tests read; the ones this run
# started are stopped on exit, whatever happens.
started=()
cleanup() {
	local s
	for s in "${started[@]}"; do bash "scripts/$s.sh" stop >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
bash scripts/s3.sh status >/dev/null 2>&1 || started+=(s3)
eval "$(bash scripts/s3.sh start)"
bash scripts/postgres.sh dsn >/dev/null 2>&1 || started+=(postgres)
eval "$(bash scripts/postgres.sh env)"
log "S3 test server at $PACS_TEST_S3_ENDPOINT, PostgreSQL at $PACS_TEST_POSTGRES_DSN"

# Every test runs with the cgo codecs (test-deps.sh installed their
# libraries): a decoder missing from the build fails its tests.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-tags=cgocodecs"

log "go vet"
$GO vet ./...
log "gofmt"
unformatted=$(gofmt -l .)
[[ -z $unformatted ]] || die "gofmt needed on: $unformatted"

export PACS_TEST_REQUIRE_TOOLS=1
log "go test -race ./..."
$GO test -race -count=1 -timeout 25m ./...
log "DICOMweb black-box suite on S3 + PostgreSQL"
PACS_TEST_DICOMWEB_BACKENDS=s3,postgres $GO test -race -count=1 -timeout 10m ./internal/dicomweb
