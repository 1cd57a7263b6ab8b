package dicomweb

import (
	"github.com/cloudpacs/pacs/internal/testenv"

	"bytes"
	"encoding/json"
	"html"
	"image"
	"image/gif"
	"image/jpeg"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/reports"
	"github.com/cloudpacs/pacs/internal/storage"
)

// dcmtkTexts returns the TEXT values dsrdump prints for an SR file.
func dcmtkTexts(t *testing.T, path string) []string {
	t.Helper()
	if _, err := exec.LookPath("dsrdump"); err != nil {
		testenv.Missing(t, "dsrdump (dcmtk) not installed: scripts/test-deps.sh")
	}
	out, err := exec.Command("dsrdump", "+U8", "+Pl", path).Output()
	if err != nil {
		t.Fatalf("dsrdump %s: %v", path, err)
	}
	re := regexp.MustCompile(`TEXT:\(.*?\)="(.*)">`)
	un := strings.NewReplacer(`\r`, "\r", `\n`, "\n", `\t`, "\t", `\\`, `\`)
	var texts []string
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		texts = append(texts, un.Replace(m[1]))
	}
	if len(texts) == 0 {
		t.Fatalf("dsrdump printed no TEXT items for %s", path)
	}
	return texts
}

func reportServer(t *testing.T, files ...string) *testServer {
	t.Helper()
	ts := newTestServer(t, nil)
	for _, f := range files {
		if _, err := ts.archive.Store(t.Context(), bytes.NewReader(readFile(t, f)), ""); err != nil {
			t.Fatalf("store %s: %v", f, err)
		}
	}
	return ts
}

// readFile reads a corpus file ("reports/x.dcm") or a package test file
// ("testdata/...").
func readFile(t *testing.T, f string) []byte {
	t.Helper()
	if strings.HasPrefix(f, "testdata/") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return readCorpus(t, f)
}

func filePath(f string) string {
	if strings.HasPrefix(f, "testdata/") {
		return f
	}
	return filepath.Join(corpusDir, f)
}

func headerOf(t *testing.T, f string) *dcm.Header {
	t.Helper()
	h, err := dcm.Parse(bytes.NewReader(readFile(t, f)))
	if err != nil {
		t.Fatalf("%s: %v", f, err)
	}
	return h
}

func instPathOf(t *testing.T, f string) string {
	t.Helper()
	h := headerOf(t, f)
	return "/dicom-web/studies/" + h.StudyInstanceUID + "/series/" + h.SeriesInstanceUID + "/instances/" + h.SOPInstanceUID
}

func TestReports_renderedSR(t *testing.T) {
	files := []string{"reports/sr_basic_text_utf8.dcm", "reports/sr_comprehensive_dcmtk_real.dcm", "study/s100_sr/sr_0001.dcm"}
	ts := reportServer(t, files...)
	for _, f := range files {
		texts := dcmtkTexts(t, filePath(f))
		p := instPathOf(t, f) + "/rendered"
		r := ts.do(t, "GET", p, nil, nil)
		if r.status != 200 || r.header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("%s: %d %s %.300s", f, r.status, r.header.Get("Content-Type"), r.body)
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", f, csp)
		}
		page := html.UnescapeString(string(r.body))
		for _, want := range texts {
			if !strings.Contains(page, want) {
				t.Errorf("%s: HTML lacks dcmtk's TEXT value %q", f, want)
			}
		}
		rt := ts.do(t, "GET", p+"?accept=text/plain", nil, nil)
		if rt.status != 200 || !strings.HasPrefix(rt.header.Get("Content-Type"), "text/plain") {
			t.Fatalf("%s text: %d %s", f, rt.status, rt.body)
		}
		norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
		txt := norm(string(rt.body))
		for _, want := range texts {
			if !strings.Contains(txt, norm(want)) {
				t.Errorf("%s: text lacks %q", f, want)
			}
		}
		// Accept header negotiation; images are not available.
		if r := ts.do(t, "GET", p, map[string]string{"Accept": "text/plain;q=0.9, text/html;q=0.5"}, nil); !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: Accept text/plain preferred: got %s", f, r.header.Get("Content-Type"))
		}
		if r := ts.do(t, "GET", p, map[string]string{"Accept": "image/jpeg"}, nil); r.status != 406 || !strings.Contains(string(r.body), "text/html") {
			t.Errorf("%s: Accept image/jpeg: %d %s", f, r.status, r.body)
		}
	}
	// Header details of the UTF-8 SR (patient, flags, observer, dates).
	r := ts.do(t, "GET", instPathOf(t, "reports/sr_basic_text_utf8.dcm")+"/rendered", nil, nil)
	page := html.UnescapeString(string(r.body))
	for _, want := range []string{"Jürgen Müller", "PACSTEST0002", "1955-11-02", "XR CHEST PA/LAT", "COMPLETE", "Final report",
		"VERIFIED", "Ångström Zoë", "Synthetic Test Hospital", "2024-02-01 11:42", "Diagnostic imaging report", "Findings", "Impressions"} {
		if !strings.Contains(page, want) {
			t.Errorf("basic SR: HTML lacks %q", want)
		}
	}
}

// TestReports_imageLinks: the IMAGE items of the study's SR link to the
// /rendered URL of the referenced instances that are archived.
func TestReports_imageLinks(t *testing.T) {
	const sr = "study/s100_sr/sr_0001.dcm"
	ts := reportServer(t, sr)
	in, err := ts.archive.Index.Instance(t.Context(), "", "", headerOf(t, sr).SOPInstanceUID)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := reports.Parse(in.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, it := range doc.Root.Children {
		for _, c := range it.Children {
			for _, ref := range c.Refs {
				for _, rw := range m {
					if rw.SOP == ref.SOPInstanceUID {
						if _, err := ts.archive.Store(t.Context(), bytes.NewReader(readCorpus(t, rw.File)), ""); err != nil {
							t.Fatal(err)
						}
						want = append(want, "/dicom-web/studies/"+rw.Study+"/series/"+rw.Series+"/instances/"+rw.SOP+"/rendered")
					}
				}
			}
		}
	}
	if len(want) == 0 {
		t.Skip("the SR references no corpus instance")
	}
	r := ts.do(t, "GET", instPathOf(t, sr)+"/rendered", nil, nil)
	for _, w := range want {
		if !bytes.Contains(r.body, []byte(`href="`+ts.URL+w+`"`)) {
			t.Errorf("no link to %s in\n%s", w, r.body)
		}
	}
}

func TestReports_escaping(t *testing.T) {
	// A real SR with a TEXT value patched to hold markup (same length).
	b := readCorpus(t, "reports/sr_basic_text_utf8.dcm")
	const orig, evil = "Heart size normal.", "<script>x</script>"
	if !bytes.Contains(b, []byte(orig)) {
		t.Fatal("fixture changed")
	}
	b = bytes.Replace(b, []byte(orig), []byte(evil), 1)
	ts := newTestServer(t, nil)
	if _, err := ts.archive.Store(t.Context(), bytes.NewReader(b), ""); err != nil {
		t.Fatal(err)
	}
	r := ts.do(t, "GET", instPathOf(t, "reports/sr_basic_text_utf8.dcm")+"/rendered", nil, nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if bytes.Contains(r.body, []byte("<script")) || !bytes.Contains(r.body, []byte("&lt;script&gt;x&lt;/script&gt;")) {
		t.Errorf("TEXT value not escaped:\n%s", r.body)
	}
	if r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
}

func TestReports_pdf(t *testing.T) {
	if _, err := exec.LookPath("dcm2pdf"); err != nil {
		testenv.Missing(t, "dcm2pdf (dcmtk) not installed")
	}
	for _, f := range []string{"reports/encapsulated_pdf.dcm", "testdata/reports/pdf_bulk.dcm", "testdata/reports/pdf_bulk_deflated.dcm"} {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.pdf")
			if msg, err := exec.Command("dcm2pdf", filePath(f), out).CombinedOutput(); err != nil {
				t.Fatalf("dcm2pdf: %v %s", err, msg)
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			ts := reportServer(t, f)
			p := instPathOf(t, f) + "/rendered"
			for _, hdr := range []map[string]string{nil, {"Accept": "application/pdf"}} {
				r := ts.do(t, "GET", p, hdr, nil)
				if r.status != 200 || r.header.Get("Content-Type") != "application/pdf" || !bytes.Equal(r.body, want) {
					t.Fatalf("GET %v: %d %s, %d bytes, want %d identical to dcm2pdf", hdr, r.status, r.header.Get("Content-Type"), len(r.body), len(want))
				}
			}
			r := ts.do(t, "GET", p+"?accept=application/pdf", map[string]string{"Range": "bytes=5-20"}, nil)
			if r.status != 206 || !bytes.Equal(r.body, want[5:21]) {
				t.Errorf("range: %d %q", r.status, r.body)
			}
			if r := ts.do(t, "GET", p, map[string]string{"Accept": "text/html"}, nil); r.status != 406 || !strings.Contains(string(r.body), "application/pdf") {
				t.Errorf("Accept text/html: %d %s", r.status, r.body)
			}
			// The bulk data URI of the document (not for InlineBinary values):
			// the raw value, which may carry one pad byte after the PDF.
			if f != "reports/encapsulated_pdf.dcm" {
				r := ts.do(t, "GET", instPathOf(t, f)+"/bulk/00420011", map[string]string{"Accept": "application/octet-stream"}, nil)
				if r.status != 200 || !bytes.HasPrefix(r.body, want) || len(r.body) > len(want)+1 {
					t.Errorf("bulk 00420011: %d, %d bytes, want the %d PDF bytes (+ pad)", r.status, len(r.body), len(want))
				}
			}
			// WADO-URI.
			h := headerOf(t, f)
			q := "/wado?requestType=WADO&studyUID=" + h.StudyInstanceUID + "&seriesUID=" + h.SeriesInstanceUID + "&objectUID=" + h.SOPInstanceUID
			if r := ts.do(t, "GET", q+"&contentType=application/pdf", nil, nil); r.status != 200 || !bytes.Equal(r.body, want) {
				t.Errorf("WADO-URI pdf: %d", r.status)
			}
			if r := ts.do(t, "GET", q+"&contentType=image/jpeg", nil, nil); r.status != 406 || !strings.Contains(string(r.body), "application/pdf") {
				t.Errorf("WADO-URI jpeg of a PDF: %d %s", r.status, r.body)
			}
		})
	}
}

func TestReports_listing(t *testing.T) {
	ts := reportServer(t, "study/s100_sr/sr_0001.dcm", "study/s02_ct/ct_0001.dcm", "reports/encapsulated_pdf.dcm",
		"testdata/reports/pdf_bulk.dcm", "reports/sr_basic_text_utf8.dcm", "reports/sr_comprehensive_dcmtk_real.dcm")
	list := func(p string) []reportEntry {
		t.Helper()
		r := ts.do(t, "GET", p, nil, nil)
		if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: %d %s %s", p, r.status, r.header.Get("Content-Type"), r.body)
		}
		var out []reportEntry
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	sr := row(t, "study/s100_sr/sr_0001.dcm")
	got := list("/dicom-web/studies/" + sr.Study + "/reports")
	if len(got) != 1 || got[0].SOPInstanceUID != sr.SOP || got[0].Kind != "sr" || got[0].Title != "Diagnostic imaging report" ||
		got[0].CompletionFlag != "COMPLETE" || got[0].VerificationFlag != "VERIFIED" || got[0].URLs.HTML == "" || got[0].URLs.PDF != "" {
		t.Errorf("study listing: %+v", got)
	}
	// The patient PACSTEST0001 has the study's SR and two PDFs.
	got = list("/dicom-web/reports?PatientID=PACSTEST0001")
	kinds := map[string]int{}
	for _, e := range got {
		kinds[e.Kind]++
		if e.PatientID != "PACSTEST0001" {
			t.Errorf("other patient: %+v", e)
		}
	}
	if kinds["sr"] != 1 || kinds["pdf"] != 2 {
		t.Errorf("patient listing: %+v", got)
	}
	for _, e := range got {
		u := e.URLs.HTML
		if e.Kind == "pdf" {
			u = e.URLs.PDF
		}
		r := ts.do(t, "GET", strings.TrimPrefix(u, ts.URL), nil, nil)
		if r.status != 200 {
			t.Errorf("%s: %d", u, r.status)
		}
	}
	if got := list("/dicom-web/reports?PatientID=PACSTEST0001&IssuerOfPatientID=NOSUCH"); len(got) != 0 {
		t.Errorf("issuer mismatch: %+v", got)
	}
	if got := list("/dicom-web/reports?PatientID=PACSTEST0002"); len(got) != 1 || !strings.Contains(got[0].URLs.Text, "accept=text%2Fplain") {
		t.Errorf("PACSTEST0002: %+v", got)
	}
	r := ts.do(t, "GET", "/dicom-web/reports?PatientID=PACSTEST0001", map[string]string{"Accept": "text/html"}, nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !bytes.Contains(r.body, []byte("Diagnostic imaging report")) ||
		!bytes.Contains(r.body, []byte("Bulk PDF report (test)")) {
		t.Errorf("HTML listing: %d %s", r.status, r.body)
	}
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/dicom-web/reports", 400},
		{"/dicom-web/reports?PatientID=PACS*", 400},
		{"/dicom-web/studies/1.2.3.4/reports", 404},
		{"/dicom-web/studies/" + sr.Study + "/reports?limit=x", 400},
	} {
		if r := ts.do(t, "GET", c.path, nil, nil); r.status != c.status {
			t.Errorf("%s: %d, want %d: %s", c.path, r.status, c.status, r.body)
		}
	}
}

func TestWADOURI_rendered(t *testing.T) {
	const ct = "study/s02_ct/ct_0001.dcm"
	ts := reportServer(t, ct, "reports/sr_basic_text_utf8.dcm")
	rw := row(t, ct)
	q := "/wado?requestType=WADO&studyUID=" + rw.Study + "&seriesUID=" + rw.Series + "&objectUID=" + rw.SOP
	h := headerOf(t, ct)
	rows, cols := h.Int(0x00280010), h.Int(0x00280011)
	decode := func(r response) image.Image {
		t.Helper()
		img, _, err := image.Decode(bytes.NewReader(r.body))
		if err != nil {
			t.Fatalf("decode %s: %v", r.header.Get("Content-Type"), err)
		}
		return img
	}
	r := ts.do(t, "GET", q+"&contentType=image/jpeg", nil, nil)
	if r.status != 200 || r.header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if b := decode(r).Bounds(); b.Dx() != cols || b.Dy() != rows {
		t.Errorf("full size %v, want %dx%d", b, cols, rows)
	}
	r = ts.do(t, "GET", q+"&contentType=image%2Fjpeg&rows=128&columns=128&windowCenter=40&windowWidth=400&imageQuality=80&frameNumber=1", nil, nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if _, err := jpeg.Decode(bytes.NewReader(r.body)); err != nil {
		t.Fatal(err)
	}
	wantW, wantH := 128, 128*rows/cols
	if rows > cols {
		wantW, wantH = 128*cols/rows, 128
	}
	if b := decode(r).Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("rows=columns=128: %v, want %dx%d", b, wantW, wantH)
	}
	r = ts.do(t, "GET", q+"&contentType=image/png&region=0,0,0.5,0.5", nil, nil)
	if b := decode(r).Bounds(); r.status != 200 || b.Dx() != cols/2 || b.Dy() != rows/2 {
		t.Errorf("region: %d %v", r.status, b)
	}
	r = ts.do(t, "GET", q+"&contentType=image/gif&columns=64", nil, nil)
	if r.status != 200 || r.header.Get("Content-Type") != "image/gif" {
		t.Fatalf("gif: %d %s", r.status, r.body)
	}
	if g, err := gif.Decode(bytes.NewReader(r.body)); err != nil || g.Bounds().Dx() != 64 {
		t.Errorf("gif: %v %v", err, g)
	}
	sr := row(t, "reports/sr_basic_text_utf8.dcm")
	sq := "/wado?requestType=WADO&studyUID=" + sr.Study + "&seriesUID=" + sr.Series + "&objectUID=" + sr.SOP
	for _, c := range []struct {
		url    string
		status int
		ct     string
	}{
		{q + "&contentType=image/jpeg&windowCenter=40", 400, ""},
		{q + "&contentType=image/jpeg&rows=0", 400, ""},
		{q + "&contentType=image/jpeg&region=0.5,0,0.2,1", 400, ""},
		{q + "&contentType=image/jpeg&frameNumber=2", 404, ""},
		{q + "&contentType=image/jpeg&presentationUID=1.2.3", 406, ""},
		{q + "&contentType=application/pdf", 406, ""},
		{q + "&contentType=video/mpeg", 406, ""},
		{sq + "&contentType=text/html", 200, "text/html; charset=utf-8"},
		{sq + "&contentType=text/plain", 200, "text/plain; charset=utf-8"},
		{sq + "&contentType=image/jpeg", 406, ""},
		{sq + "&contentType=image/jpeg,text/html", 200, "text/html; charset=utf-8"},
		{sq, 200, "application/dicom; transfer-syntax=" + tsExplicitLE},
	} {
		r := ts.do(t, "GET", c.url, nil, nil)
		if r.status != c.status || (c.ct != "" && r.header.Get("Content-Type") != c.ct) {
			t.Errorf("%s: %d %s, want %d %s: %.200s", c.url, r.status, r.header.Get("Content-Type"), c.status, c.ct, r.body)
		}
	}
}

func TestDelete_removesThumbnails(t *testing.T) {
	files := []string{"study/s02_ct/ct_0001.dcm", "study/s03_pt/pt_0001.dcm"}
	ts := newTestServer(t, nil)
	var shas []string
	for _, f := range files {
		res, err := ts.archive.Store(t.Context(), bytes.NewReader(readCorpus(t, f)), "")
		if err != nil {
			t.Fatal(err)
		}
		shas = append(shas, res.Instance.SHA256)
		if r := ts.do(t, "GET", instPathOf(t, f)+"/thumbnail", nil, nil); r.status != 200 {
			t.Fatalf("thumbnail %s: %d %s", f, r.status, r.body)
		}
	}
	thumbsOf := func(sha string) int {
		n := 0
		ts.archive.Blobs.List(t.Context(), "thumbs/", func(bi storage.BlobInfo) error {
			if strings.Contains(bi.Key, sha) {
				n++
			}
			return nil
		})
		return n
	}
	for _, s := range shas {
		if thumbsOf(s) == 0 {
			t.Fatalf("no cached thumbnail for %s", s)
		}
	}
	// Instance delete: only its thumbnails go.
	if r := ts.do(t, "DELETE", instPathOf(t, files[0]), nil, nil); r.status != 204 {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	if thumbsOf(shas[0]) != 0 || thumbsOf(shas[1]) == 0 {
		t.Errorf("after instance DELETE: %d, %d thumbnails", thumbsOf(shas[0]), thumbsOf(shas[1]))
	}
	// Study delete: the rest.
	if r := ts.do(t, "DELETE", "/dicom-web/studies/"+row(t, files[1]).Study, nil, nil); r.status != 204 {
		t.Fatalf("DELETE study: %d %s", r.status, r.body)
	}
	if thumbsOf(shas[1]) != 0 {
		t.Error("thumbnails left after study DELETE")
	}
}
