package dicomweb

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/storage"
)

func FuzzParseQIDOQuery(f *testing.F) {
	for _, s := range []string{
		"PatientName=DOE*&StudyDate=20200101-20201231",
		"includefield=all&limit=10&offset=5",
		"includefield=00100010,StudyDescription&includefield=PatientAge",
		"00100020=1&fuzzymatching=true",
		"StudyInstanceUID=1.2.3,1.2.4&limit=99999",
		"limit=-1", "a.b=1", "PatientID=&PatientID=x", "%zz",
		"_=1700000000&PatientID=1", "SOPClassUID=1.2&Modality=CT", "emptyvaluematching=true&includefield=Bogus",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		for _, level := range []storage.Level{storage.LevelStudy, storage.LevelSeries, storage.LevelInstance} {
			q, err := parseQIDOQuery(v, level)
			if err != nil {
				if statusOf(err) != http.StatusBadRequest {
					t.Fatalf("error %v maps to %d, want 400", err, statusOf(err))
				}
				return
			}
			if q.Limit < 1 || q.Limit > maxQIDOLimit || q.Offset < 0 {
				t.Fatalf("limit %d offset %d", q.Limit, q.Offset)
			}
			for _, m := range q.Matches {
				// Only keys the index matches on at this level reach it
				// (the others are ignored, PS3.18 8.3).
				a, ok := storage.LookupMatchAttr(m.Tag)
				if m.Value == "" || !ok || a.Level > level {
					t.Fatalf("match %+v at %s", m, level)
				}
			}
			for _, w := range q.warnings() {
				if !strings.HasPrefix(w, `299 pacs "`) || !strings.HasSuffix(w, `"`) || strings.ContainsFunc(w, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
					t.Fatalf("Warning %q", w)
				}
			}
		}
	})
}

// FuzzSTOW sends random multipart bodies and mutated DICOM parts through
// the STOW-RS handler: no panic, a status from the allowed set, and the
// server keeps answering.
func FuzzSTOW(f *testing.F) {
	good := readCorpus(f, "images/ct_small_signed_no_window.dcm")
	sr := readCorpus(f, "reports/sr_basic_text_utf8.dcm")
	body, ct := multipartBody(f, `"application/dicom"`, part{"application/dicom", sr}, part{"text/plain", []byte("x")})
	f.Add(body, ct)
	body, _ = multipartBody(f, `"application/dicom"`, part{"application/dicom", good[:2000]})
	f.Add(body, ct)
	f.Add(sr, "application/dicom")
	f.Add(good[:300], "application/dicom")
	f.Add([]byte("--b\r\nContent-Type: application/dicom\r\n\r\nDICM\r\n--b--\r\n"), `multipart/related; type="application/dicom"; boundary=b`)
	f.Add([]byte("--b\r\n\r\n"), `multipart/related; boundary=b`)

	s := newTestServer(f, func(c *Config) { c.MaxUploadBytes = 1 << 20 })
	allowed := map[int]bool{200: true, 202: true, 400: true, 409: true, 413: true, 415: true}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		req := httptest.NewRequest("POST", "/dicom-web/studies", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		s.echo.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
		}
		if rec.Code == 200 || rec.Code == 202 || rec.Code == 409 {
			jsonObject(t, rec.Body.Bytes())
		}
		req = httptest.NewRequest("GET", "/dicom-web/studies?limit=1", nil)
		rec = httptest.NewRecorder()
		s.echo.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("QIDO after STOW: %d", rec.Code)
		}
	})
}
