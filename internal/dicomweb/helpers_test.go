package dicomweb

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/storage"
)

const corpusDir = "../../testdata/dicom"

// testServer is the DICOMweb API over the test backends (see
// testBackends): memblob + SQLite in a temp dir by default, the real S3
// server and PostgreSQL when PACS_TEST_DICOMWEB_BACKENDS says so.
type testServer struct {
	*httptest.Server
	archive *storage.Archive
	echo    *echo.Echo
	handler *Handler
}

func newTestServer(t testing.TB, mod func(*Config)) *testServer {
	t.Helper()
	blobs, idx := testBackends(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	// The location cache as pacs serve sets it for the embedded index:
	// every test goes through the archive, so it must never be seen.
	a := &storage.Archive{Blobs: blobs, Index: idx, Logger: log, LocationCache: storage.DefaultLocationCache}
	cfg := Config{Archive: a, Logger: log}
	if mod != nil {
		mod(&cfg)
	}
	e := echo.New()
	h := New(cfg)
	h.Register(e)
	s := httptest.NewServer(e)
	t.Cleanup(func() {
		s.Close()
		h.Close()
		cfg.Archive.Close() // background metadata rebuilds
		a.Close()
	})
	return &testServer{Server: s, archive: a, echo: e, handler: h}
}

func readCorpus(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// manifestRow is one line of testdata/dicom/MANIFEST.tsv.
type manifestRow struct {
	File, SOPClass, Modality, TS string
	Frames                       string
	Study, Series, SOP           string
}

var manifest = sync.OnceValues(func() (map[string]manifestRow, error) {
	f, err := os.Open(filepath.Join(corpusDir, "MANIFEST.tsv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]manifestRow{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 15 {
			continue
		}
		out[c[0]] = manifestRow{File: c[0], SOPClass: c[1], Modality: c[2], TS: c[3], Frames: c[7], Study: c[12], Series: c[13], SOP: c[14]}
	}
	return out, sc.Err()
})

func row(t testing.TB, file string) manifestRow {
	t.Helper()
	m, err := manifest()
	if err != nil {
		t.Fatal(err)
	}
	r, ok := m[file]
	if !ok {
		t.Fatalf("%s not in MANIFEST.tsv", file)
	}
	return r
}

type part struct {
	contentType string
	data        []byte
}

// multipartBody builds a multipart/related body.
func multipartBody(t testing.TB, typeParam string, parts ...part) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := map[string][]string{}
		if p.contentType != "" {
			h["Content-Type"] = []string{p.contentType}
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	mw.Close()
	ct := "multipart/related; boundary=" + mw.Boundary()
	if typeParam != "" {
		ct = "multipart/related; type=" + typeParam + "; boundary=" + mw.Boundary()
	}
	return buf.Bytes(), ct
}

func dicomParts(t testing.TB, files ...string) []part {
	var ps []part
	for _, f := range files {
		ps = append(ps, part{"application/dicom", readCorpus(t, f)})
	}
	return ps
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (s *testServer) do(t testing.TB, method, path string, hdr map[string]string, body []byte) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

// store STOWs files in one request and requires 200.
func (s *testServer) store(t testing.TB, files ...string) {
	t.Helper()
	body, ct := multipartBody(t, `"application/dicom"`, dicomParts(t, files...)...)
	r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body)
	if r.status != http.StatusOK {
		t.Fatalf("STOW %v: status %d: %s", files, r.status, r.body)
	}
}

func corpusFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(corpusDir, dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() {
			out = append(out, dir+"/"+e.Name())
		}
	}
	return out
}

// jsonArray decodes a DICOM JSON array (strictly: encoding/json).
func jsonArray(t testing.TB, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("invalid DICOM JSON array: %v\n%.400s", err, b)
	}
	return out
}

func jsonObject(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("invalid DICOM JSON: %v\n%.400s", err, b)
	}
	return out
}

// values returns the Value array of tag in a DICOM JSON object.
func values(obj map[string]any, tag string) []any {
	el, _ := obj[tag].(map[string]any)
	v, _ := el["Value"].([]any)
	return v
}

func value(obj map[string]any, tag string) any {
	if v := values(obj, tag); len(v) > 0 {
		return v[0]
	}
	return nil
}

type mpPart struct {
	contentType string
	data        []byte
}

// readMultipart splits a multipart/related response.
func readMultipart(t testing.TB, r response) (string, []mpPart) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	if err != nil || mt != "multipart/related" {
		t.Fatalf("Content-Type %q: want multipart/related (%v); body %.200s", r.header.Get("Content-Type"), err, r.body)
	}
	mr := multipart.NewReader(bytes.NewReader(r.body), params["boundary"])
	var parts []mpPart
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, mpPart{p.Header.Get("Content-Type"), b})
	}
	return params["type"], parts
}

func tagHex(t uint32) string { return fmt.Sprintf("%08X", t) }
