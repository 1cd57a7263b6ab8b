package dicomweb

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/storage/storagetest"
)

// seriesOf1000 indexes a 1,000-instance series whose instances carry the
// metadata of a real CT instance (about 3 KB of JSON each).
func seriesOf1000(tb testing.TB) (*testServer, string) {
	s := newTestServer(tb, nil)
	s.store(tb, "study/s02_ct/ct_0001.dcm")
	rw := row(tb, "study/s02_ct/ct_0001.dcm")
	real, err := s.archive.Index.Instance(tb.Context(), rw.Study, rw.Series, rw.SOP)
	if err != nil {
		tb.Fatal(err)
	}
	const study, series = "1.2.826.0.1.999.1", "1.2.826.0.1.999.1.1"
	for i := range 1000 {
		sop := series + "." + strconv.Itoa(i+1)
		in := storagetest.NewTestInstance(study, series, sop)
		in.Metadata = bytes.ReplaceAll(real.Metadata, []byte(rw.SOP), []byte(sop))
		if _, err := s.archive.Index.PutInstance(tb.Context(), in, false); err != nil {
			tb.Fatal(err)
		}
	}
	return s, "/dicom-web/studies/" + study + "/series/" + series + "/metadata"
}

// The series metadata of a 1,000-instance series is served from the
// precomputed document once built (DESIGN.md decision 4): every request
// after the first is a cache hit with all 1,000 instances. The timings
// are logged, not asserted (BenchmarkSeriesMetadata1000 and make bench
// measure them).
func TestSeriesMetadata_1000(t *testing.T) {
	if testing.Short() {
		t.Skip("indexes 1,000 instances")
	}
	s, path := seriesOf1000(t)
	start := time.Now()
	r := s.do(t, "GET", path, map[string]string{"Accept-Encoding": "gzip"}, nil)
	first := time.Since(start)
	if r.status != 200 {
		t.Fatal(r.status)
	}
	best := time.Hour
	for range 5 {
		start = time.Now()
		r = s.do(t, "GET", path, map[string]string{"Accept-Encoding": "gzip"}, nil)
		best = min(best, time.Since(start))
		if r.status != 200 || r.header.Get("X-Cache") != "hit" {
			t.Fatalf("repeat request: status %d, X-Cache %q; want 200 from the cache", r.status, r.header.Get("X-Cache"))
		}
	}
	t.Logf("1,000-instance series metadata: first %v (build + gzip + cache), then %v (%d bytes gzip)", first, best, len(r.body))
	plain := s.do(t, "GET", path, nil, nil)
	if n := len(jsonArray(t, plain.body)); n != 1000 {
		t.Errorf("series metadata has %d instances, want 1000", n)
	}
}

func BenchmarkSeriesMetadata1000(b *testing.B) {
	s, path := seriesOf1000(b)
	// build: the first request, uncached (each iteration asks for another
	// base URL, which the cache key includes).
	b.Run("build", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			r := s.do(b, "GET", path, map[string]string{"Accept-Encoding": "gzip", "X-Forwarded-Host": "h" + strconv.Itoa(i)}, nil)
			if r.status != 200 || r.header.Get("X-Cache") == "hit" {
				b.Fatal(r.status, r.header.Get("X-Cache"))
			}
		}
	})
	for _, enc := range []string{"gzip", "identity"} {
		b.Run(enc, func(b *testing.B) {
			for b.Loop() {
				r := s.do(b, "GET", path, map[string]string{"Accept-Encoding": enc}, nil)
				if r.status != 200 {
					b.Fatal(r.status)
				}
				b.SetBytes(int64(len(r.body)))
			}
		})
	}
}
