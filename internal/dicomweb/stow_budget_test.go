package dicomweb

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/dcm/dcmtest"
	"github.com/cloudpacs/pacs/internal/storage"
)

// When the server-wide ingest budget stays full, a STOW answers 503 with
// Retry-After, names the refused instance with failure reason 0xA700 and
// says why in a Warning header; once room is made the same request is
// stored.
func TestSTOW_busyAnswers503(t *testing.T) {
	s := newTestServer(t, func(c *Config) {
		c.Archive.Limits = storage.Limits{Instances: 1, Wait: 100 * time.Millisecond}
	})
	const file = "images/ct_small_signed_no_window.dcm"
	data := readCorpus(t, file)
	// A first upload holds the only instance slot: its body stalls after
	// the part's headers and a few bytes.
	pr, pw := io.Pipe()
	stalled := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", s.URL+"/dicom-web/studies", pr)
		req.Header.Set("Content-Type", "application/dicom")
		res, err := s.Client().Do(req)
		if err != nil {
			stalled <- nil
			return
		}
		stalled <- res
	}()
	pw.Write(data[:200])
	deadline := time.Now().Add(10 * time.Second)
	for s.archive.IngestStats().Instances == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s.archive.IngestStats().Instances != 1 {
		t.Fatal("the stalled upload never took its slot")
	}

	other := uniqueParts(t, file, 1, 3)
	body, ct := multipartBody(t, `"application/dicom"`, other...)
	r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503: %s", r.status, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	failed := values(jsonObject(t, r.body), "00081198")
	if len(failed) != 1 || value(failed[0].(map[string]any), "00081197") != float64(reasonOutOfResources) {
		t.Fatalf("FailedSOPSequence %v, want one item with 0xA700", failed)
	}
	if w := strings.Join(r.header.Values("Warning"), "\n"); !strings.Contains(w, "busy") || !strings.Contains(w, "0xA700") {
		t.Errorf("Warning %q does not say why", w)
	}

	pw.Write(data[200:])
	pw.Close()
	if res := <-stalled; res == nil || res.StatusCode != http.StatusOK {
		t.Fatalf("the first upload: %v", res)
	} else {
		res.Body.Close()
	}
	if r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body); r.status != http.StatusOK {
		t.Fatalf("after room was made: status %d: %s", r.status, r.body)
	}
}

// A failed part says why in words (a Warning header per failure), and
// the words hold nothing of the server's internals.
func TestSTOW_failureWarningWords(t *testing.T) {
	s := newTestServer(t, nil)
	good := "images/ct_small_signed_no_window.dcm"
	parts := append(dicomParts(t, good, "bad/truncated.dcm"), part{"text/plain", []byte("hello")})
	body, ct := multipartBody(t, `"application/dicom"`, parts...)
	r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	ws := r.header.Values("Warning")
	if len(ws) != 2 {
		t.Fatalf("Warning headers %q, want one per failed part", ws)
	}
	for i, want := range []string{"0xC000", "0xC000"} {
		if !strings.HasPrefix(ws[i], `299 pacs "`) || !strings.Contains(ws[i], want) {
			t.Errorf("Warning[%d] = %q, want a 299 warning naming %s", i, ws[i], want)
		}
	}
	if !strings.Contains(ws[0], row(t, "bad/truncated.dcm").SOP) || !strings.Contains(strings.ToLower(ws[0]), "trunc") && !strings.Contains(ws[0], "EOF") {
		t.Errorf("Warning[0] = %q: does not name the instance or say it is cut short", ws[0])
	}
	if !strings.Contains(ws[1], "text/plain") {
		t.Errorf("Warning[1] = %q: does not name the part's type", ws[1])
	}
	for _, w := range ws {
		for _, internal := range []string{"storage:", "memblob", "sqlite", "/tmp", "s3blob", "pgindex"} {
			if strings.Contains(w, internal) {
				t.Errorf("Warning %q tells of %q", w, internal)
			}
		}
	}
}

// Versions of one instance in one STOW request are committed in part
// order: with the replace policy the last one is what is served.
func TestSTOW_sameSOPReplacedInPartOrder(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.Archive.ReplaceOnConflict = true })
	const file = "images/ct_small_signed_no_window.dcm"
	data := readCorpus(t, file)
	rw := row(t, file)
	for round := range 4 {
		var parts []part
		var last []byte
		for v := range 6 {
			b := bytes.Clone(data)
			b[len(b)-1] ^= byte(round*10 + v + 1)
			parts = append(parts, part{"application/dicom", b})
			last = b
		}
		body, ct := multipartBody(t, `"application/dicom"`, parts...)
		if r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body); r.status != http.StatusOK {
			t.Fatalf("round %d: status %d: %s", round, r.status, r.body)
		}
		got := s.do(t, "GET", "/dicom-web/studies/"+rw.Study+"/series/"+rw.Series+"/instances/"+rw.SOP,
			map[string]string{"Accept": `application/dicom; transfer-syntax=*`}, nil)
		if got.status != http.StatusOK || !bytes.Equal(got.body, last) {
			t.Fatalf("round %d: status %d; the served instance is not the last part's (%d bytes, want %d)", round, got.status, len(got.body), len(last))
		}
	}
}

// An instance whose pixel data contradict its attributes is stored (the
// archive keeps what it was sent), and the STOW response says so:
// 202, Warning Reason 0xB007 on its Referenced SOP Sequence item, and a
// Warning header in words; a good instance beside it has no warning.
func TestSTOW_pixelProblemIsWarning(t *testing.T) {
	s := newTestServer(t, nil)
	const study = "2.25.900000000000000000000000000000000777"
	short := dcmtest.Image(dcmtest.ExplicitVRLittleEndian, study, study+".1", study+".1.1", 16, 16, 1, 8, 1).
		Native(bytes.Repeat([]byte{7}, 100)) // 256 bytes wanted
	good := dcmtest.Image(dcmtest.ExplicitVRLittleEndian, study, study+".1", study+".1.2", 16, 16, 1, 8, 1).
		Native(bytes.Repeat([]byte{7}, 256))
	body, ct := multipartBody(t, `"application/dicom"`, part{"application/dicom", short.Bytes()}, part{"application/dicom", good.Bytes()})
	r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body)
	if r.status != http.StatusAccepted {
		t.Fatalf("status %d, want 202: %s", r.status, r.body)
	}
	stored := values(jsonObject(t, r.body), "00081199")
	if len(stored) != 2 {
		t.Fatalf("%d stored, want 2: %s", len(stored), r.body)
	}
	if got := value(stored[0].(map[string]any), "00081196"); got != float64(warningDoesNotMatch) {
		t.Errorf("WarningReason of the short instance = %v, want 0xB007", got)
	}
	if _, has := stored[1].(map[string]any)["00081196"]; has {
		t.Errorf("the good instance carries a warning: %v", stored[1])
	}
	ws := r.header.Values("Warning")
	if len(ws) != 1 || !strings.Contains(ws[0], study+".1.1") || !strings.Contains(ws[0], "0xB007") || !strings.Contains(strings.ToLower(ws[0]), "pixel") {
		t.Errorf("Warning %q: want one line naming the instance, 0xB007 and its pixel data", ws)
	}
	// Kept as sent.
	got := s.do(t, "GET", "/dicom-web/studies/"+study+"/series/"+study+".1/instances/"+study+".1.1",
		map[string]string{"Accept": `application/dicom; transfer-syntax=*`}, nil)
	if got.status != http.StatusOK || !bytes.Equal(got.body, short.Bytes()) {
		t.Errorf("retrieve as stored: status %d, %d bytes (want the %d sent)", got.status, len(got.body), len(short.Bytes()))
	}
}
