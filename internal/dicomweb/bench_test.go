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

// BenchmarkSeriesMetadata1000 serves the series metadata of a
// 1,000-instance series (about 11 MB of JSON, 0.5 MB gzip):
//   - build: from the instance rows (each iteration a new study version,
//     so neither the index nor the memory cache has the document), then
//     the base URL put in;
//   - miss: the archive's base-free document inflated, the base URL put
//     in, deflated again (each iteration another Host, so the memory
//     cache misses);
//   - gzip, identity: a memory cache hit, sent as is or inflated.
func BenchmarkSeriesMetadata1000(b *testing.B) {
	s, path := seriesOf1000(b)
	const study = "1.2.826.0.1.999.1"
	gz := map[string]string{"Accept-Encoding": "gzip"}
	b.Run("build", func(b *testing.B) {
		// A study version nobody asked for yet: a new study row per
		// iteration would change the document, so the version is bumped
		// by storing and deleting one more instance, outside the timer.
		i := 0
		for b.Loop() {
			b.StopTimer()
			i++
			in := storagetest.NewTestInstance(study, "1.2.826.0.1.999.1.2", "1.2.826.0.1.999.2."+strconv.Itoa(i))
			if _, err := s.archive.Index.PutInstance(b.Context(), in, false); err != nil {
				b.Fatal(err)
			}
			if _, err := s.archive.Index.Delete(b.Context(), study, in.SeriesInstanceUID, in.SOPInstanceUID); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			r, _ := s.getWithHost(b, path, "localhost", gz)
			if r.Code != 200 || r.Header().Get("X-Cache") != "miss" {
				b.Fatal(r.Code, r.Header().Get("X-Cache"))
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		s.getWithHost(b, path, "warm.example", gz) // the archive's document exists
		i := 0
		for b.Loop() {
			i++
			r, _ := s.getWithHost(b, path, "h"+strconv.Itoa(i)+".example", gz)
			if r.Code != 200 || r.Header().Get("X-Cache") != "hit" {
				b.Fatal(r.Code, r.Header().Get("X-Cache"))
			}
			b.SetBytes(int64(r.Body.Len()))
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

// BenchmarkRebase puts a base URL into the base-free document of a
// 1,000-instance series: the work of a memory cache miss without HTTP.
func BenchmarkRebase(b *testing.B) {
	s, _ := seriesOf1000(b)
	const study, series = "1.2.826.0.1.999.1", "1.2.826.0.1.999.1.1"
	v, err := s.archive.Index.StudyVersion(b.Context(), study)
	if err != nil {
		b.Fatal(err)
	}
	free, _, err := s.archive.MetadataDocument(b.Context(), study, series, v)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(free)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rebase(free, "http://viewer.example:8042/dicom-web"); err != nil {
			b.Fatal(err)
		}
	}
}
