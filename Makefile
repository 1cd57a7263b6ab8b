# Developer entry points. `make help` lists them; each target documents
# itself with a `##` comment. The test command of the README and of CI is
# `make test`.

GO       ?= go
FUZZTIME ?= 30s
ARGS     ?=
# Tests that need an external tool (dcmtk, pydicom, later PostgreSQL, an S3
# server, a browser) fail instead of skipping when this is set. `make test`
# installs the tools first and sets it; `make test-short` does neither.
REQUIRE_TOOLS_ENV := PACS_TEST_REQUIRE_TOOLS=1

.DEFAULT_GOAL := help
.PHONY: help run build test test-deps test-short lint fmt fmt-check vet fuzz bench check clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## start the server on embedded defaults (extra flags: make run ARGS='--listen :9090')
	@tags="$$(bash scripts/build-tags.sh)"; $(GO) run -tags "$$tags" ./cmd/pacs serve $(ARGS)

build: ## build bin/pacs (with the cgo codecs when their libraries are there or can be installed)
	@tags="$$(bash scripts/build-tags.sh)"; echo "$(GO) build -tags '$$tags' -o bin/pacs ./cmd/pacs"; $(GO) build -tags "$$tags" -o bin/pacs ./cmd/pacs

test: ## THE test command (README, CI): installs tools, starts S3 + PostgreSQL, vet, gofmt, go test -race of everything
	GO=$(GO) bash scripts/test.sh

test-deps: ## install what the tests need (apt-get runs only when something is missing)
	@bash scripts/test-deps.sh

test-short: ## go test -short ./... (no services, no installs; the quick loop while coding)
	$(GO) test -short ./...

lint: vet fmt-check ## go vet + gofmt check

vet: ## go vet ./...
	$(GO) vet ./...

fmt-check: ## fail if gofmt would change a file
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

fmt: ## gofmt -w the tree
	gofmt -w .

fuzz: ## run every Fuzz* target for FUZZTIME (default 30s) each
	@FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

bench: ## Go benchmarks + HTTP load run of pacs vs Orthanc; writes bench-results/<date>.md
	@bash scripts/bench.sh

check: lint test ## run it before pushing

clean: ## remove build and benchmark output
	rm -rf bin bench-results
