package dicomweb

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/storage"
)

// recordingIndex counts the metadata documents put into an index, and
// can make EachMetadata (the build of a document) slow.
type recordingIndex struct {
	storage.Index
	eachDelay time.Duration

	mu   sync.Mutex
	puts int
	docs map[string]int // "study key" -> size of the last document put
}

func (x *recordingIndex) PutCachedMetadata(ctx context.Context, study, key string, version int64, doc []byte) error {
	x.mu.Lock()
	x.puts++
	if x.docs == nil {
		x.docs = map[string]int{}
	}
	x.docs[study+" "+key] = len(doc)
	x.mu.Unlock()
	return x.Index.PutCachedMetadata(ctx, study, key, version, doc)
}

func (x *recordingIndex) EachMetadata(ctx context.Context, study, series string, fn func(series, sop string, md []byte) error) error {
	time.Sleep(x.eachDelay)
	if ml, ok := x.Index.(storage.MetadataLister); ok {
		return ml.EachMetadata(ctx, study, series, fn)
	}
	insts, err := x.Index.Instances(ctx, study, series)
	if err != nil {
		return err
	}
	for _, in := range insts {
		if err := fn(in.SeriesInstanceUID, in.SOPInstanceUID, in.Metadata); err != nil {
			return err
		}
	}
	return nil
}

// cachedDocs returns how many documents were put, how many distinct ones
// the index holds and their total size.
func (x *recordingIndex) cachedDocs() (puts, n, size int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, s := range x.docs {
		size += s
	}
	return x.puts, len(x.docs), size
}

// recordingServer is a test server whose archive indexes through a
// recordingIndex, without background rebuilds.
func recordingServer(t *testing.T, mod func(*Config)) (*testServer, *recordingIndex) {
	t.Helper()
	var rec *recordingIndex
	s := newTestServer(t, func(c *Config) {
		rec = &recordingIndex{Index: c.Archive.Index}
		c.Archive.Index = rec
		c.Archive.MetadataRebuildDelay = -1
		if mod != nil {
			mod(c)
		}
	})
	return s, rec
}

// get serves one request through the router with req.Host set, and
// returns the response and the base URL the handler derives from it.
func (s *testServer) getWithHost(t testing.TB, path, host string, hdr map[string]string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	base := s.handler.baseURL(s.echo.NewContext(req, nil))
	rec := httptest.NewRecorder()
	s.echo.ServeHTTP(rec, req)
	return rec, base
}

// A thousand requests with as many Host and X-Forwarded-Host values add
// nothing to the index (its documents are base-URL-free), keep the memory
// cache within its bound, and each get its own base URL in every
// BulkDataURI.
func TestMetadata_headersDoNotGrowCache(t *testing.T) {
	const bound = 256 << 10
	s, rec := recordingServer(t, func(c *Config) { c.MetadataCacheBytes = bound })
	files := studyFiles(t, "s02_ct")
	s.store(t, files...)
	rw := row(t, files[0])
	paths := []string{
		"/dicom-web/studies/" + rw.Study + "/metadata",
		"/dicom-web/studies/" + rw.Study + "/series/" + rw.Series + "/metadata",
	}
	for _, p := range paths { // the first request of each document builds it
		if r := s.do(t, "GET", p, nil, nil); r.status != 200 || r.header.Get("X-Cache") != "miss" {
			t.Fatalf("GET %s: %d, X-Cache %q", p, r.status, r.header.Get("X-Cache"))
		}
	}
	puts, n, size := rec.cachedDocs()
	if puts != 2 || n != 2 {
		t.Fatalf("after the first requests: %d puts, %d documents in the index; want 2, 2", puts, n)
	}
	requests := 1000
	if testing.Short() {
		requests = 100
	}
	hostSeen := 0
	for i := range requests {
		host, hdr := "localhost", map[string]string{}
		if i%2 == 0 {
			host = fmt.Sprintf("h%d.example:8042", i)
		} else {
			hdr["X-Forwarded-Host"] = fmt.Sprintf("proxy%d.example", i)
		}
		if i%3 == 0 {
			hdr["Accept-Encoding"] = "gzip"
		}
		r, base := s.getWithHost(t, paths[i%2], host, hdr)
		if r.Code != 200 || r.Header().Get("X-Cache") != "hit" {
			t.Fatalf("request %d: %d, X-Cache %q", i, r.Code, r.Header().Get("X-Cache"))
		}
		if strings.Contains(base, host) {
			hostSeen++
		}
		body := r.Body.Bytes()
		if r.Header().Get("Content-Encoding") == "gzip" {
			body = gunzip(t, body)
		}
		if i%50 == 0 { // decoding is most of the test's time: now and then
			arr := jsonArray(t, body)
			if len(arr) != len(files) {
				t.Fatalf("request %d: %d instances, want %d", i, len(arr), len(files))
			}
			if bases := bulkBases(t, arr); len(bases) != 1 || bases[base] == 0 {
				t.Fatalf("request %d: BulkDataURIs start with %v, want only %q", i, bases, base)
			}
		}
		uris := bytes.Count(body, []byte(`"BulkDataURI":"`))
		if ours := bytes.Count(body, []byte(`"BulkDataURI":"`+base+"/studies/"+rw.Study+"/series/")); uris < len(files) || ours != uris {
			t.Fatalf("request %d: %d of %d BulkDataURIs start with %q", i, ours, uris, base)
		}
		if st := s.handler.metaCache.stats(); st.Bytes > bound {
			t.Fatalf("request %d: memory cache holds %d bytes, bound %d", i, st.Bytes, bound)
		}
	}
	if hostSeen < requests/2 {
		t.Errorf("only %d of %d base URLs carried the Host header", hostSeen, requests)
	}
	if p2, n2, size2 := rec.cachedDocs(); p2 != puts || n2 != n || size2 != size {
		t.Errorf("index cache after %d base URLs: %d puts, %d documents, %d bytes; before: %d, %d, %d", requests, p2, n2, size2, puts, n, size)
	}
	if st := s.handler.metaCache.stats(); st.Entries < 2 || st.Entries >= requests {
		t.Errorf("memory cache: %+v; want some documents, the oldest evicted", st)
	}
	if st := s.archive.MetadataStats(); st.Built != 2 {
		t.Errorf("%d documents built from rows, want 2", st.Built)
	}
	// The index still serves the documents it holds.
	v, err := s.archive.Index.StudyVersion(t.Context(), rw.Study)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"study", "series/" + rw.Series} {
		if doc, err := s.archive.Index.CachedMetadata(t.Context(), rw.Study, key, v); err != nil || len(doc) == 0 {
			t.Errorf("index document %q: %d bytes, %v", key, len(doc), err)
		}
	}
}

// Concurrent requests that miss both caches build the document from the
// rows once, and put one base URL into it once.
func TestMetadata_concurrentMissesBuildOnce(t *testing.T) {
	s, rec := recordingServer(t, nil)
	rec.eachDelay = 200 * time.Millisecond // all requests arrive during the build
	files := studyFiles(t, "s02_ct")
	s.store(t, files...)
	rw := row(t, files[0])
	path := "/dicom-web/studies/" + rw.Study + "/series/" + rw.Series + "/metadata"

	const n = 16
	run := func(host func(i int) string) []*httptest.ResponseRecorder {
		out := make([]*httptest.ResponseRecorder, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { out[i], _ = s.getWithHost(t, path, host(i), map[string]string{"Accept-Encoding": "gzip"}) })
		}
		wg.Wait()
		return out
	}
	same := run(func(int) string { return "viewer.example" })
	for i, r := range same {
		if r.Code != 200 || !bytes.Equal(r.Body.Bytes(), same[0].Body.Bytes()) {
			t.Fatalf("request %d: %d, %d bytes (first: %d)", i, r.Code, r.Body.Len(), same[0].Body.Len())
		}
		if got := r.Header().Get("X-Cache"); got != "miss" {
			t.Errorf("request %d waited for the build: X-Cache %q, want miss", i, got)
		}
	}
	if b, rb := s.archive.MetadataStats().Built, s.handler.metaRebases.Load(); b != 1 || rb != 1 {
		t.Errorf("%d concurrent misses: %d builds from rows, %d base URLs put in; want 1, 1", n, b, rb)
	}
	if puts, _, _ := rec.cachedDocs(); puts != 1 {
		t.Errorf("%d documents put into the index, want 1", puts)
	}

	// Another study document, each request with its own base URL: one
	// build from rows, each base put in once.
	path = "/dicom-web/studies/" + rw.Study + "/metadata"
	before := s.handler.metaRebases.Load()
	for i, r := range run(func(i int) string { return fmt.Sprintf("v%d.example", i) }) {
		if r.Code != 200 {
			t.Fatalf("request %d: %d", i, r.Code)
		}
	}
	if b, rb := s.archive.MetadataStats().Built, s.handler.metaRebases.Load()-before; b != 2 || rb != n {
		t.Errorf("%d base URLs: %d builds in all, %d base URLs put in; want 2, %d", n, b, rb, n)
	}
}

// ETags name the version and the base URL; HEAD and non-gzip clients get
// the same document.
func TestMetadata_etagHeadIdentity(t *testing.T) {
	s, _ := recordingServer(t, nil)
	files := studyFiles(t, "s02_ct")
	s.store(t, files...)
	path := "/dicom-web/studies/" + row(t, files[0]).Study + "/metadata"
	gz, _ := s.getWithHost(t, path, "a.example", map[string]string{"Accept-Encoding": "gzip"})
	plain, _ := s.getWithHost(t, path, "a.example", nil)
	other, _ := s.getWithHost(t, path, "b.example", map[string]string{"Accept-Encoding": "gzip"})
	if gz.Header().Get("ETag") == "" || gz.Header().Get("ETag") != plain.Header().Get("ETag") {
		t.Errorf("ETag gzip %q, identity %q: want equal", gz.Header().Get("ETag"), plain.Header().Get("ETag"))
	}
	if gz.Header().Get("ETag") == other.Header().Get("ETag") {
		t.Errorf("two base URLs share ETag %q", gz.Header().Get("ETag"))
	}
	if v := gz.Header().Get("Vary"); v != "Accept-Encoding" {
		t.Errorf("Vary %q", v)
	}
	if plain.Header().Get("Content-Encoding") != "" || !bytes.Equal(gunzip(t, gz.Body.Bytes()), plain.Body.Bytes()) {
		t.Error("identity response differs from the inflated gzip one")
	}
	r, _ := s.getWithHost(t, path, "a.example", map[string]string{"If-None-Match": gz.Header().Get("ETag")})
	if r.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", r.Code)
	}
	r, _ = s.getWithHost(t, path, "b.example", map[string]string{"If-None-Match": gz.Header().Get("ETag")})
	if r.Code != 200 {
		t.Errorf("If-None-Match of another base URL: %d", r.Code)
	}
	for _, enc := range []string{"gzip", "identity"} {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodHead, path, nil)
		req.Host = "a.example"
		req.Header.Set("Accept-Encoding", enc)
		rec := httptest.NewRecorder()
		s.echo.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Header().Get("ETag") != gz.Header().Get("ETag") {
			t.Errorf("HEAD (%s): %d, ETag %q", enc, rec.Code, rec.Header().Get("ETag"))
		}
	}
	// A change: new ETag, new document.
	s.store(t, "study/s100_sr/sr_0001.dcm")
	r, _ = s.getWithHost(t, path, "a.example", map[string]string{"If-None-Match": gz.Header().Get("ETag")})
	if r.Code != 200 || r.Header().Get("ETag") == gz.Header().Get("ETag") || len(jsonArray(t, r.Body.Bytes())) != len(files)+1 {
		t.Errorf("after a STOW: %d, ETag %q", r.Code, r.Header().Get("ETag"))
	}
}

func TestRebase(t *testing.T) {
	free := []byte(`[{"7FE00010":{"vr":"OW","BulkDataURI":"` + storage.BulkPlaceholder + `/studies/1/series/2/instances/3/bulk/7FE00010"}},{}]`)
	gz := gzipBytes(t, free)
	out, err := rebase(gz, `http://h"x/dicom-web`)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"7FE00010":{"vr":"OW","BulkDataURI":"http://h\"x/dicom-web/studies/1/series/2/instances/3/bulk/7FE00010"}},{}]`
	if got := string(gunzip(t, out)); got != want {
		t.Errorf("rebase:\n got %s\nwant %s", got, want)
	}
	if _, err := rebase([]byte("not gzip"), "http://x"); err == nil {
		t.Error("rebase of a corrupt document: no error")
	}
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDocCache(t *testing.T) {
	k := func(i int) docKey { return docKey{study: "1", doc: "study", base: "b", version: int64(i)} }
	one := k(0).size() + 1000
	c := newDocCache(3 * one)
	for i := range 3 {
		c.put(k(i), make([]byte, 1000))
	}
	if st := c.stats(); st.Entries != 3 || st.Bytes != 3*one {
		t.Fatalf("3 puts: %+v", st)
	}
	c.get(k(0)) // now the most recent
	c.put(k(3), make([]byte, 1000))
	if _, ok := c.get(k(1)); ok {
		t.Error("least recently used entry kept")
	}
	for _, i := range []int{0, 2, 3} {
		if _, ok := c.get(k(i)); !ok {
			t.Errorf("entry %d evicted", i)
		}
	}
	c.put(k(9), make([]byte, 2*one)) // over half the bound: not kept
	if _, ok := c.get(k(9)); ok || c.stats().Bytes > 3*one {
		t.Errorf("oversized entry: %+v", c.stats())
	}
	var none *docCache
	none.put(k(0), []byte("x"))
	if _, ok := none.get(k(0)); ok {
		t.Error("nil cache returned a document")
	}
}
