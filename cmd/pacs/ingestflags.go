package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/cloudpacs/pacs/internal/storage"
)

// ingestFlags are the server-wide ingest budget (storage.Limits), shared
// by every door: env first (PACS_INGEST_*), then flags.
type ingestFlags struct {
	instances, commits int
	bytes, headerBytes string
	wait               time.Duration
	limits             storage.Limits
}

func addIngestFlags(fs *flag.FlagSet, f *ingestFlags, env func(k, def string) string) {
	d := storage.DefaultLimits
	atoi := func(k string, def int) int {
		if n, err := strconv.Atoi(env(k, "")); err == nil {
			return n
		}
		return def
	}
	dur := func(k string, def time.Duration) time.Duration {
		if v, err := time.ParseDuration(env(k, "")); err == nil {
			return v
		}
		return def
	}
	fs.IntVar(&f.instances, "ingest-instances", atoi("PACS_INGEST_INSTANCES", d.Instances),
		"instances being received or waiting for their commit, server-wide (PACS_INGEST_INSTANCES)")
	fs.StringVar(&f.bytes, "ingest-bytes", env("PACS_INGEST_BYTES", humanize.IBytes(uint64(d.Bytes))),
		"received bytes not yet committed above which new instances wait, server-wide (PACS_INGEST_BYTES)")
	fs.StringVar(&f.headerBytes, "ingest-header-bytes", env("PACS_INGEST_HEADER_BYTES", humanize.IBytes(uint64(d.HeaderBytes))),
		"parsed header bytes held between parse and commit, server-wide (PACS_INGEST_HEADER_BYTES)")
	fs.IntVar(&f.commits, "ingest-commits", atoi("PACS_INGEST_COMMITS", d.Commits),
		"commits (blob made durable, then the index row) running at once (PACS_INGEST_COMMITS)")
	fs.DurationVar(&f.wait, "ingest-wait", dur("PACS_INGEST_WAIT", d.Wait),
		"how long an instance waits for room in the ingest budget before the sender gets 503 (PACS_INGEST_WAIT)")
}

// resolve checks the values and fills f.limits.
func (f *ingestFlags) resolve() error {
	l := storage.Limits{Instances: f.instances, Commits: f.commits, Wait: f.wait, PerSource: storage.DefaultLimits.PerSource}
	for _, b := range []struct {
		name, v string
		dst     *int64
	}{{"ingest-bytes", f.bytes, &l.Bytes}, {"ingest-header-bytes", f.headerBytes, &l.HeaderBytes}} {
		n, err := humanize.ParseBytes(b.v)
		if err != nil || n == 0 || n > 1<<62 {
			return fmt.Errorf("serve: --%s %q: want a size such as 2GiB or 268435456", b.name, b.v)
		}
		*b.dst = int64(n)
	}
	if l.Instances <= 0 || l.Commits <= 0 || l.Wait <= 0 {
		return fmt.Errorf("serve: --ingest-instances, --ingest-commits and --ingest-wait must be positive")
	}
	f.limits = l
	return nil
}
