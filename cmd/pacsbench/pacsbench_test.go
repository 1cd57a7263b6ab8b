package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var templatePath = filepath.Join("..", "..", "testdata", "dicom", "study", "s02_ct", "ct_0001.dcm")

func mustTemplate(t *testing.T) *template {
	t.Helper()
	tpl, err := loadTemplate(templatePath)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestParseTemplate(t *testing.T) {
	tpl := mustTemplate(t)
	for tag, want := range map[uint32]string{
		tagStudyInstanceUID: "2.25.282492203790397027926792421891334355820",
		tagSOPInstanceUID:   "2.25.161979019195251010193853837567655936885",
		tagPatientID:        "PACSTEST0001",
		tagStudyDate:        "20240315",
	} {
		if got := strings.TrimRight(tpl.text(tag), "\x00 "); got != want {
			t.Errorf("(%08X) = %q, want %q", tag, got, want)
		}
	}
	if tpl.frameBytes != 128*128*2 {
		t.Errorf("frameBytes = %d, want %d", tpl.frameBytes, 128*128*2)
	}
}

func TestParseTemplateRejects(t *testing.T) {
	for _, name := range []string{"ts/mr_implicit_le.dcm", "bad/empty.dcm", "bad/not_dicom.png", "bad/truncated.dcm"} {
		if _, err := loadTemplate(filepath.Join("..", "..", "testdata", "dicom", name)); err == nil {
			t.Errorf("%s: accepted as a template", name)
		}
	}
}

func TestDatasetUnique(t *testing.T) {
	tpl := mustTemplate(t)
	ds, err := newDataset(tpl, layout{Studies: 3, SeriesPerStudy: 2, InstPerSeries: 4, StudiesPerPatient: 2, LargeSeries: 5}, 42)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.insts) != 3*2*4+5 || len(ds.studies) != 4 {
		t.Fatalf("%d instances in %d studies", len(ds.insts), len(ds.studies))
	}
	seen := map[string]bool{}
	for i := range ds.insts {
		b := ds.bytes(i)
		if len(b) != len(tpl.data) {
			t.Fatalf("instance %d: %d bytes, template %d", i, len(b), len(tpl.data))
		}
		got, err := parseTemplate(b)
		if err != nil {
			t.Fatalf("instance %d does not parse: %v", i, err)
		}
		in := ds.insts[i]
		for tag, want := range map[uint32]string{
			tagSOPInstanceUID: in.SOP, tagMediaStorageSOPInstanceUID: in.SOP, tagStudyInstanceUID: in.Study,
			tagSeriesInstanceUID: in.Series, tagPatientID: in.PatientID, tagPatientName: in.Name, tagStudyDate: in.StudyDate,
		} {
			if g := got.text(tag); g != want {
				t.Errorf("instance %d (%08X) = %q, want %q", i, tag, g, want)
			}
		}
		if seen[in.SOP] {
			t.Errorf("SOP Instance UID %s twice", in.SOP)
		}
		seen[in.SOP] = true
		if len(in.SOP)%2 != 0 || len(in.SOP) > 64 {
			t.Errorf("bad UID length %d", len(in.SOP))
		}
	}
	// Same seed, same load.
	ds2, _ := newDataset(tpl, ds.lay, 42)
	if !bytes.Equal(ds.bytes(7), ds2.bytes(7)) {
		t.Error("same seed gave different instances")
	}
}

// TestDatasetDcmtk reads a generated instance back with dcmtk, an
// independent parser.
func TestDatasetDcmtk(t *testing.T) {
	dcmdump, err := exec.LookPath("dcmdump")
	if err != nil {
		if os.Getenv("PACS_TEST_REQUIRE_TOOLS") == "1" {
			t.Fatal("dcmdump (dcmtk) not found and PACS_TEST_REQUIRE_TOOLS=1")
		}
		t.Skip("dcmdump (dcmtk) not found")
	}
	tpl := mustTemplate(t)
	ds, err := newDataset(tpl, layout{Studies: 1, SeriesPerStudy: 1, InstPerSeries: 2}, 7)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "x.dcm")
	if err := os.WriteFile(path, ds.bytes(1), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(dcmdump, "-q", "+P", "0008,0018", "+P", "0020,000d", "+P", "0010,0020", path).CombinedOutput()
	if err != nil {
		t.Fatalf("dcmdump: %v\n%s", err, out)
	}
	for _, want := range []string{ds.insts[1].SOP, ds.insts[1].Study, ds.insts[1].PatientID} {
		if !bytes.Contains(out, []byte("["+want+"]")) {
			t.Errorf("dcmdump output lacks %s:\n%s", want, out)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8042/dicom-web", "http://localhost:8080/dicom-web/", "http://[::1]:1/x", "http://127.1.2.3/"} {
		if _, err := checkURL(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"", "http://10.0.0.1/dicom-web", "http://192.168.1.1/", "http://example.com/", "ftp://127.0.0.1/", "http://0.0.0.0:8080/"} {
		if _, err := checkURL(u); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 90: 90 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond} {
		if got := percentile(d, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if got := percentile(d[:1], 99); got != time.Millisecond {
		t.Errorf("p99 of one = %v", got)
	}
}

func TestRunLoadBounded(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	do := func(ctx context.Context, i int) (time.Duration, int64, int, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		}
		return 5 * time.Millisecond, 1, 1, nil
	}
	s := runLoad(context.Background(), 4, limits{Count: 1 << 30, Duration: 100 * time.Millisecond}, do)
	if s.stopped == "" || s.elapsed > 2*time.Second {
		t.Errorf("not stopped by its time limit: %+v", s.elapsed)
	}
	calls = 0
	s = runLoad(context.Background(), 3, limits{Count: 10, Duration: time.Minute, Warmup: 2}, do)
	if len(s.lats) != 10 || calls != 12 || s.stopped != "" {
		t.Errorf("%d samples, %d calls, stopped %q; want 10, 12, none", len(s.lats), calls, s.stopped)
	}
}

// fakeServer is a minimal in-memory DICOMweb server, enough for every
// phase of pacsbench: it keeps instances parsed with the template walker.
type fakeServer struct {
	mu    sync.Mutex
	insts []*template
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/dicom-web")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if r.Method == http.MethodPost && path == "/studies" {
		f.stow(w, r)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var matches []*template
	for _, in := range f.insts {
		ok := true
		for i, tag := range []uint32{tagStudyInstanceUID, tagSeriesInstanceUID, tagSOPInstanceUID} {
			if 2*i+1 < len(parts) && in.text(tag) != parts[2*i+1] {
				ok = false
			}
		}
		q := r.URL.Query()
		if v := q.Get("PatientID"); v != "" && in.text(tagPatientID) != v {
			ok = false
		}
		if v := q.Get("PatientName"); v != "" && !strings.HasPrefix(in.text(tagPatientName), strings.TrimSuffix(v, "*")) {
			ok = false
		}
		if v := q.Get("StudyDate"); v != "" {
			from, to, _ := strings.Cut(v, "-")
			if d := in.text(tagStudyDate); d < from || d > to {
				ok = false
			}
		}
		if ok {
			matches = append(matches, in)
		}
	}
	if len(matches) == 0 {
		http.NotFound(w, r)
		return
	}
	switch last := parts[len(parts)-1]; {
	case last == "studies" || last == "series": // one result per study / series
		level := uint32(tagStudyInstanceUID)
		if last == "series" {
			level = tagSeriesInstanceUID
		}
		seen := map[string]bool{}
		var out []map[string]string
		for _, m := range matches {
			if !seen[m.text(level)] {
				seen[m.text(level)] = true
				out = append(out, map[string]string{"uid": m.text(level)})
			}
		}
		json.NewEncoder(w).Encode(out)
	case last == "instances" || last == "metadata":
		out := make([]map[string]string, len(matches))
		for i, m := range matches {
			out[i] = map[string]string{"uid": m.text(tagSOPInstanceUID)}
		}
		json.NewEncoder(w).Encode(out)
	case len(parts) >= 7 && parts[6] == "frames":
		px := matches[0].fields[tagPixelData]
		w.Header().Set("Content-Type", `multipart/related; type="application/octet-stream"; boundary=b`)
		fmt.Fprintf(w, "--b\r\nContent-Type: application/octet-stream\r\n\r\n")
		w.Write(matches[0].data[px.off : px.off+px.n])
		fmt.Fprintf(w, "\r\n--b--\r\n")
	default: // instance
		w.Header().Set("Content-Type", `multipart/related; type="application/dicom"; boundary=b`)
		fmt.Fprintf(w, "--b\r\nContent-Type: application/dicom\r\n\r\n")
		w.Write(matches[0].data)
		fmt.Fprintf(w, "\r\n--b--\r\n")
	}
}

func (f *fakeServer) stow(w http.ResponseWriter, r *http.Request) {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || params["type"] != "application/dicom" {
		http.Error(w, "bad content type", http.StatusUnsupportedMediaType)
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(p)
		tpl, err := parseTemplate(b)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.insts = append(f.insts, tpl)
		f.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/dicom+json")
	w.Write([]byte("{}"))
}

func TestRunAgainstFakeServer(t *testing.T) {
	srv := httptest.NewServer(&fakeServer{})
	defer srv.Close()
	dir := t.TempDir()
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	args := []string{
		"--url", srv.URL + "/dicom-web", "--label", "fake", "--template", templatePath,
		"--studies", "4", "--series", "2", "--instances", "3", "--large-series", "20", "--per-request", "2",
		"--requests", "20", "--metadata-requests", "3", "--concurrency", "1,4", "--seed", "5",
		"--out", filepath.Join(dir, "fake.json"),
	}
	if err := cmdRun(args, &out, log); err != nil {
		t.Fatal(err)
	}
	rep, err := readReport(filepath.Join(dir, "fake.json"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Instances != 4*2*3+20 {
		t.Errorf("instances = %d", rep.Instances)
	}
	// stow + (5 QIDO + frames + metadata + instance) at two levels.
	if len(rep.Results) != 1+2*8 {
		t.Errorf("%d results, want 17:\n%s", len(rep.Results), out.String())
	}
	for _, r := range rep.Results {
		if r.Errors > 0 || r.Requests == 0 {
			t.Errorf("%s c=%d: %d requests, %d errors (%s)", r.Phase, r.Concurrency, r.Requests, r.Errors, r.FirstError)
		}
	}
	if rep.Results[0].ItemsPerSec <= 0 {
		t.Error("no STOW instances/s")
	}

	// compare against itself: every ratio is 1.0×.
	var cmp bytes.Buffer
	j := filepath.Join(dir, "fake.json")
	if err := cmdCompare([]string{j, j}, &cmp); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cmp.String(), "| 1.0× |") || strings.Contains(cmp.String(), "warning") {
		t.Errorf("compare output:\n%s", cmp.String())
	}
}

func TestRunRejectsRemoteURL(t *testing.T) {
	err := cmdRun([]string{"--url", "http://192.0.2.1/dicom-web"}, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err = %v", err)
	}
}
