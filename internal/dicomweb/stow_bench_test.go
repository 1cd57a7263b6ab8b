package dicomweb

import (
	"bytes"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/fsblob"
)

// uniqueParts returns n copies of a corpus file, each under a new SOP
// Instance UID of the same length (first of series k), as parts.
func uniqueParts(tb testing.TB, file string, n, series int) []part {
	tb.Helper()
	data, sop := readCorpus(tb, file), row(tb, file).SOP
	out := make([]part, n)
	for i := range n {
		suffix := strconv.Itoa(series*100000 + i + 1)
		uid := sop[:len(sop)-len(suffix)] + suffix
		out[i] = part{"application/dicom", bytes.ReplaceAll(data, []byte(sop), []byte(uid))}
	}
	return out
}

// fsTestServer is a test server whose blobs are files (fsync, rename and
// folder fsync per commit, as in production) and whose SQLite index runs
// with synchronous=FULL.
func fsTestServer(tb testing.TB) *testServer {
	tb.Helper()
	dir := tb.TempDir()
	return newTestServer(tb, func(c *Config) {
		blobs, err := fsblob.New(filepath.Join(dir, "blobs"))
		if err != nil {
			tb.Fatal(err)
		}
		c.Archive = &storage.Archive{Blobs: blobs, Index: c.Archive.Index, Logger: c.Logger, MetadataRebuildDelay: -1}
	})
}

// BenchmarkSTOW100 posts one STOW-RS request of 100 new 39 KB instances
// per iteration to a folder store + SQLite (FULL) server.
func BenchmarkSTOW100(b *testing.B) {
	s := fsTestServer(b)
	hdr := func(ct string) map[string]string {
		return map[string]string{"Content-Type": ct, "Accept": "application/dicom+json"}
	}
	i := 0
	var size int64
	for b.Loop() {
		b.StopTimer()
		i++
		body, ct := multipartBody(b, `"application/dicom"`, uniqueParts(b, "images/ct_small_signed_no_window.dcm", 100, i)...)
		size = int64(len(body))
		b.StartTimer()
		if r := s.do(b, "POST", "/dicom-web/studies", hdr(ct), body); r.status != 200 {
			b.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	b.SetBytes(size)
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "inst/s")
}
