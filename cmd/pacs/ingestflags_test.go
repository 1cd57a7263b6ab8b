package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
)

func TestIngestFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := parseServeFlags(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Ingest.limits, storage.DefaultLimits; got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	cfg, err = parseServeFlags([]string{"--ingest-bytes", "1GiB", "--ingest-commits", "4"},
		env(map[string]string{"PACS_INGEST_INSTANCES": "10", "PACS_INGEST_WAIT": "5s", "PACS_INGEST_HEADER_BYTES": "64 MiB"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := storage.Limits{Instances: 10, Bytes: 1 << 30, HeaderBytes: 64 << 20, Commits: 4, PerSource: storage.DefaultLimits.PerSource, Wait: 5 * time.Second}
	if cfg.Ingest.limits != want {
		t.Errorf("limits %+v, want %+v", cfg.Ingest.limits, want)
	}
	for _, bad := range [][]string{
		{"--ingest-bytes", "lots"}, {"--ingest-bytes", "0"}, {"--ingest-header-bytes", "-5"},
		{"--ingest-instances", "0"}, {"--ingest-commits", "-1"}, {"--ingest-wait", "0s"},
	} {
		if _, err := parseServeFlags(bad, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "ingest") {
			t.Errorf("%v: error %v, want one naming the ingest flag", bad, err)
		}
	}
}
