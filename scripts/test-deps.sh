#!/usr/bin/env bash
# Installs what `make test` needs, only when it is missing: with everything
# in place it runs no apt-get and takes well under a second. Needs root (CI
# runs as root) or sudo when something is missing.
#
# Tests that use these tools look at PACS_TEST_REQUIRE_TOOLS: when it is 1
# (as `make test` sets it), a missing tool fails the test instead of
# skipping it.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# --- Independent DICOM references --------------------------------------------
# dcmtk (dcmdump, dcm2json, dcmdjpeg, dcmj2pnm, ...), GDCM's gdcmconv, and
# pydicom + numpy from Debian. pydicom loads under the system interpreter
# /usr/bin/python3, which is not always the python3 first on PATH.
apt_install dcmtk libgdcm-tools python3-pydicom python3-numpy
command -v dcmdump >/dev/null || die "dcmtk installed but dcmdump not on PATH"
/usr/bin/python3 -c 'import pydicom, numpy' || die "pydicom/numpy do not import under /usr/bin/python3"

# --- C libraries the cgo codecs link against (JPEG-LS, JPEG 2000) ------------
apt_install gcc libc6-dev libcharls-dev libopenjp2-7-dev

# --- Headless Chromium for the viewer and OHIF tests -------------------------
bash scripts/browser.sh install
# OHIF v3's prebuilt viewer (npm package @ohif/app), cached outside the repo.
bash scripts/ohif.sh fetch >/dev/null

# --- Services ------------------------------------------------------------------
# PostgreSQL (Debian's postgresql package) is installed by scripts/postgres.sh
# and the S3 test server (versitygw, built once from the Go module proxy into
# a cache folder) by scripts/s3.sh, when scripts/test.sh starts them.

log "test dependencies present"
