package dicomweb

import (
	"bytes"
	"compress/gzip"
	"io"
	"path/filepath"
	"testing"
	"time"
)

// idle waits until the rebuilder has nothing pending or running.
func (s *testServer) idle(t *testing.T) {
	t.Helper()
	r := s.handler.rebuilder
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		n := len(r.pending)
		r.mu.Unlock()
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

// After STOW (one request per instance, as gateways do) the study and
// series metadata are rebuilt once in the background, so the first GET is
// a cache hit; later STOW and DELETE never let a stale document through.
func TestMetadata_backgroundRebuild(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.MetadataRebuildDelay = 250 * time.Millisecond })
	ct, pt := studyFiles(t, "s02_ct"), studyFiles(t, "s03_pt")
	for _, f := range ct {
		s.store(t, f) // single-instance requests, quicker than the delay apart
	}
	s.idle(t)
	if n := s.handler.metadataRebuilds.Load(); n < 1 || n > 2 {
		t.Errorf("%d background rebuilds after %d single-instance STOWs, want 1 (debounced; 2 on a slow machine)", n, len(ct))
	}
	ctRow, ptRow := row(t, ct[0]), row(t, pt[0])
	study := "/dicom-web/studies/" + ctRow.Study
	get := func(path, wantCache string, wantN int) {
		t.Helper()
		for _, enc := range []string{"gzip", "identity"} {
			r := s.do(t, "GET", path, map[string]string{"Accept-Encoding": enc}, nil)
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
			if n := len(jsonArray(t, body)); n != wantN {
				t.Errorf("GET %s: %d instances, want %d", path, n, wantN)
			}
		}
	}
	get(study+"/metadata", "hit", len(ct))
	get(study+"/series/"+ctRow.Series+"/metadata", "hit", len(ct))
	if n := s.handler.metadataBuilds.Load(); n != 0 {
		t.Errorf("%d documents built on request, want 0", n)
	}

	// A later STOW: right away the documents are rebuilt on request (the
	// version changed), then kept warm again.
	s.store(t, pt...)
	get(study+"/metadata", "miss", len(ct)+len(pt))
	s.idle(t)
	get(study+"/series/"+ptRow.Series+"/metadata", "hit", len(pt))
	get(study+"/metadata", "hit", len(ct)+len(pt))

	// DELETE a series: the study document follows.
	if r := s.do(t, "DELETE", study+"/series/"+ptRow.Series, nil, nil); r.status != 204 {
		t.Fatalf("DELETE: %d", r.status)
	}
	s.idle(t)
	get(study+"/metadata", "hit", len(ct))
	if r := s.do(t, "GET", study+"/series/"+ptRow.Series+"/metadata", nil, nil); r.status != 404 {
		t.Errorf("deleted series metadata: %d", r.status)
	}
	// Another base URL (another Host) is built on request, not served from
	// the other base's cache.
	r := s.do(t, "GET", study+"/metadata", map[string]string{"X-Forwarded-Host": "viewer.example"}, nil)
	if r.status != 200 || r.header.Get("X-Cache") != "miss" {
		t.Errorf("other base: %d, X-Cache %q", r.status, r.header.Get("X-Cache"))
	}
}

// Close drops pending rebuilds and returns promptly.
func TestMetadata_rebuildClose(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.MetadataRebuildDelay = time.Hour })
	s.store(t, studyFiles(t, "s02_ct")[0])
	start := time.Now()
	s.handler.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	s.handler.changed("1.2.3", "http://x") // after Close: ignored
	if n := s.handler.metadataRebuilds.Load(); n != 0 {
		t.Errorf("%d rebuilds", n)
	}
	// Rebuilds can be turned off.
	off := newTestServer(t, func(c *Config) { c.MetadataRebuildDelay = -1 })
	if off.handler.rebuilder != nil {
		t.Error("rebuilder with MetadataRebuildDelay < 0")
	}
}

func gunzip(t *testing.T, b []byte) []byte {
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
