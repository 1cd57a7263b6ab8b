package dicomweb

import (
	"bytes"
	"compress/gzip"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// idle waits until the archive has no metadata rebuild pending or
// running.
func (s *testServer) idle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := s.archive.MetadataStats().Pending
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d studies still pending a metadata rebuild", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func studyFiles(t *testing.T, sub string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(corpusDir, "study", sub, "*.dcm"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no files in study/%s", sub)
	}
	for i, f := range m {
		m[i], _ = filepath.Rel(corpusDir, f)
	}
	return m
}

// After STOW (one request per instance, as gateways do) the archive
// rebuilds the study and series metadata once in the background, so the
// first GET is a cache hit; later STOW and DELETE never let a stale
// document through, and another base URL reuses the archive's document.
func TestMetadata_backgroundRebuild(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.Archive.MetadataRebuildDelay = 250 * time.Millisecond })
	ct, pt := studyFiles(t, "s02_ct"), studyFiles(t, "s03_pt")
	for _, f := range ct {
		s.store(t, f) // single-instance requests, quicker than the delay apart
	}
	s.idle(t)
	if n := s.archive.MetadataStats().Rebuilt; n < 1 || n > 2 {
		t.Errorf("%d background rebuilds after %d single-instance STOWs, want 1 (debounced; 2 on a slow machine)", n, len(ct))
	}
	ctRow, ptRow := row(t, ct[0]), row(t, pt[0])
	study := "/dicom-web/studies/" + ctRow.Study
	// get asks twice, with and without gzip; host "" is the test
	// server's.
	get := func(path, wantCache string, wantN int, host string) {
		t.Helper()
		for _, enc := range []string{"gzip", "identity"} {
			hdr := map[string]string{"Accept-Encoding": enc}
			var r response
			base := s.URL + Root
			if host == "" {
				r = s.do(t, "GET", path, hdr, nil)
			} else {
				rec, b := s.getWithHost(t, path, host, hdr)
				r, base = response{rec.Code, rec.Header(), rec.Body.Bytes()}, b
			}
			if r.status != 200 {
				t.Fatalf("GET %s: %d", path, r.status)
			}
			if got := r.header.Get("X-Cache"); got != wantCache {
				t.Errorf("GET %s (%s): X-Cache %q, want %q", path, enc, got, wantCache)
			}
			wantCache = "hit" // the miss cached it
			body := r.body
			if r.header.Get("Content-Encoding") == "gzip" {
				body = gunzip(t, body)
			}
			arr := jsonArray(t, body)
			if len(arr) != wantN {
				t.Errorf("GET %s: %d instances, want %d", path, len(arr), wantN)
			}
			if bases := bulkBases(t, arr); len(bases) != 1 || bases[base] == 0 {
				t.Errorf("GET %s: BulkDataURIs start with %v, want %q", path, bases, base)
			}
		}
	}
	get(study+"/metadata", "hit", len(ct), "")
	get(study+"/series/"+ctRow.Series+"/metadata", "hit", len(ct), "")
	if n := s.archive.MetadataStats().Built; n != 0 {
		t.Errorf("%d documents built on request, want 0", n)
	}

	// A later STOW: right away the documents are built on request (the
	// version changed), then kept warm again.
	s.store(t, pt...)
	get(study+"/metadata", "miss", len(ct)+len(pt), "")
	s.idle(t)
	get(study+"/series/"+ptRow.Series+"/metadata", "hit", len(pt), "")
	get(study+"/metadata", "hit", len(ct)+len(pt), "")

	// DELETE a series: the study document follows.
	if r := s.do(t, "DELETE", study+"/series/"+ptRow.Series, nil, nil); r.status != 204 {
		t.Fatalf("DELETE: %d", r.status)
	}
	s.idle(t)
	get(study+"/metadata", "hit", len(ct), "")
	if r := s.do(t, "GET", study+"/series/"+ptRow.Series+"/metadata", nil, nil); r.status != 404 {
		t.Errorf("deleted series metadata: %d", r.status)
	}
	// Another base URL (another Host) reuses the archive's document: no
	// build, its own base in every BulkDataURI.
	built := s.archive.MetadataStats().Built
	get(study+"/metadata", "hit", len(ct), "viewer.example")
	if n := s.archive.MetadataStats().Built; n != built {
		t.Errorf("another base URL built %d documents, want 0", n-built)
	}
}

// Close drops pending rebuilds and returns promptly; later changes
// schedule nothing. A negative delay turns the rebuilds off: documents are
// then built on their first request.
func TestMetadata_rebuildClose(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.Archive.MetadataRebuildDelay = time.Hour })
	ct := studyFiles(t, "s02_ct")
	s.store(t, ct[0])
	if n := s.archive.MetadataStats().Pending; n != 1 {
		t.Errorf("%d studies pending after a STOW, want 1", n)
	}
	start := time.Now()
	s.archive.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	s.store(t, ct[1]) // after Close: nothing scheduled
	if st := s.archive.MetadataStats(); st.Rebuilt != 0 || st.Pending != 0 {
		t.Errorf("after Close: %+v", st)
	}

	off := newTestServer(t, func(c *Config) { c.Archive.MetadataRebuildDelay = -1 })
	off.store(t, ct...)
	if st := off.archive.MetadataStats(); st.Pending != 0 {
		t.Errorf("rebuilds off: %+v", st)
	}
	path := "/dicom-web/studies/" + row(t, ct[0]).Study + "/metadata"
	for _, want := range []string{"miss", "hit"} {
		if r := off.do(t, "GET", path, nil, nil); r.status != 200 || r.header.Get("X-Cache") != want {
			t.Errorf("rebuilds off: GET %d, X-Cache %q, want %q", r.status, r.header.Get("X-Cache"), want)
		}
	}
}

func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// bulkBases returns the part of every BulkDataURI in a metadata array
// before "/studies/", and fails on one that does not point at its own
// instance.
func bulkBases(t testing.TB, arr []map[string]any) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, obj := range arr {
		sop, _ := value(obj, "00080018").(string)
		for _, u := range bulkURIs(obj, nil) {
			base, rest, ok := strings.Cut(u, "/studies/")
			if !ok || !strings.Contains(rest, "/instances/"+sop+"/bulk/") {
				t.Errorf("BulkDataURI %q of instance %s", u, sop)
			}
			out[base]++
		}
	}
	return out
}
