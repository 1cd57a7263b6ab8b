package dicomweb

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func FuzzParseQIDOQuery(f *testing.F) {
	for _, s := range []string{
		"PatientName=DOE*&StudyDate=20200101-20201231",
		"includefield=all&limit=10&offset=5",
		"includefield=00100010,StudyDescription&includefield=PatientAge",
		"00100020=1&fuzzymatching=true",
		"StudyInstanceUID=1.2.3,1.2.4&limit=99999",
		"limit=-1", "a.b=1", "PatientID=&PatientID=x", "%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseQIDOQuery(v)
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
			if m.Value == "" {
				t.Fatalf("empty match value for %v", m.Tag)
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
