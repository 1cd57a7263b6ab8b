package dicomweb

import (
	"github.com/cloudpacs/pacs/internal/storage"
	"net/http"
	"strings"
	"testing"
)

const studyUID = "2.25.282492203790397027926792421891334355820" // testdata/dicom/study

func TestSTOW(t *testing.T) {
	good := "images/ct_small_signed_no_window.dcm"
	good2 := "images/mr_small_signed_window.dcm"
	bad := []string{"bad/empty.dcm", "bad/garbage_after_preamble.dcm", "bad/length_overflow_header.dcm",
		"bad/length_overflow_pixeldata.dcm", "bad/no_sop_instance_uid.dcm", "bad/not_dicom.png", "bad/truncated.dcm"}
	type tc struct {
		name       string
		path       string
		ct         string // "" = build multipart with type="application/dicom"
		typeParam  string
		parts      []part
		raw        []byte
		wantStatus int
		wantStored int
		wantFailed int
		wantReason int // FailureReason of the first failed item, if any
	}
	mk := func(files ...string) []part { return dicomParts(t, files...) }
	cases := []tc{
		{name: "single-part body", ct: "application/dicom", raw: readCorpus(t, good), wantStatus: 200, wantStored: 1},
		{name: "multipart two", parts: mk(good, good2), wantStatus: 200, wantStored: 2},
		{name: "type unquoted", typeParam: "application/dicom", parts: mk(good), wantStatus: 200, wantStored: 1},
		{name: "type absent, parts typed", typeParam: "-", parts: mk(good), wantStatus: 200, wantStored: 1},
		{name: "part without content-type", parts: []part{{"", readCorpus(t, good)}}, wantStatus: 200, wantStored: 1},
		{name: "duplicate identical", parts: mk(good, good), wantStatus: 200, wantStored: 2},
		{name: "mixed good and bad", parts: mk(append([]string{good}, bad...)...), wantStatus: 202, wantStored: 1, wantFailed: len(bad), wantReason: reasonCannotUnderstand},
		{name: "all bad", parts: mk(bad...), wantStatus: 409, wantFailed: len(bad), wantReason: reasonCannotUnderstand},
		{name: "unknown part type with good", parts: append(mk(good), part{"text/plain", []byte("hello")}), wantStatus: 202, wantStored: 1, wantFailed: 1, wantReason: reasonCannotUnderstand},
		{name: "only unknown part types", parts: []part{{"image/png", readCorpus(t, "bad/not_dicom.png")}}, wantStatus: 415, wantFailed: 1},
		{name: "study mismatch", path: "/dicom-web/studies/1.2.3", parts: mk(good), wantStatus: 409, wantFailed: 1, wantReason: reasonDoesNotMatch},
		{name: "study match in path", path: "/dicom-web/studies/" + studyUID, parts: mk("study/s02_ct/ct_0001.dcm", good), wantStatus: 202, wantStored: 1, wantFailed: 1, wantReason: reasonDoesNotMatch},
		{name: "wrong content type", ct: "text/plain", raw: []byte("x"), wantStatus: 415},
		{name: "no content type", ct: "-", raw: readCorpus(t, good), wantStatus: 415},
		{name: "dicom+json type", typeParam: `"application/dicom+json"`, parts: []part{{"application/dicom+json", []byte("[]")}}, wantStatus: 415},
		{name: "no boundary", ct: "multipart/related; type=\"application/dicom\"", raw: []byte("x"), wantStatus: 400},
		{name: "malformed multipart", ct: "multipart/related; type=\"application/dicom\"; boundary=xyz", raw: []byte("garbage without boundaries"), wantStatus: 400},
		{name: "empty multipart", ct: "multipart/related; type=\"application/dicom\"; boundary=xyz", raw: []byte("--xyz--\r\n"), wantStatus: 400},
		{name: "malformed study UID", path: "/dicom-web/studies/abc", parts: mk(good), wantStatus: 400},
	}
	s := newTestServer(t, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body, ct := c.raw, c.ct
			if c.parts != nil {
				tp := c.typeParam
				switch tp {
				case "":
					tp = `"application/dicom"`
				case "-":
					tp = ""
				}
				body, ct = multipartBody(t, tp, c.parts...)
			}
			hdr := map[string]string{"Content-Type": ct, "Accept": "application/dicom+json"}
			if ct == "-" {
				delete(hdr, "Content-Type")
			}
			path := c.path
			if path == "" {
				path = "/dicom-web/studies"
			}
			r := s.do(t, "POST", path, hdr, body)
			if r.status != c.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, c.wantStatus, r.body)
			}
			if c.wantStored == 0 && c.wantFailed == 0 {
				return
			}
			if got := r.header.Get("Content-Type"); got != "application/dicom+json" {
				t.Errorf("Content-Type %q", got)
			}
			obj := jsonObject(t, r.body)
			stored, failed := values(obj, "00081199"), values(obj, "00081198")
			if len(stored) != c.wantStored || len(failed) != c.wantFailed {
				t.Fatalf("stored %d failed %d, want %d/%d: %s", len(stored), len(failed), c.wantStored, c.wantFailed, r.body)
			}
			for _, it := range stored {
				item := it.(map[string]any)
				u, _ := value(item, "00081190").(string)
				sop, _ := value(item, "00081155").(string)
				if !strings.HasPrefix(u, s.URL+"/dicom-web/studies/") || !strings.HasSuffix(u, "/instances/"+sop) || value(item, "00081150") == nil {
					t.Errorf("ReferencedSOPSequence item %v", item)
				}
			}
			if c.wantStored > 0 && c.name != "multipart two" { // two studies: no single RetrieveURL
				if u, _ := value(obj, "00081190").(string); !strings.HasPrefix(u, s.URL+"/dicom-web/studies/") {
					t.Errorf("RetrieveURL %q", u)
				}
			}
			if c.wantReason != 0 {
				item := failed[0].(map[string]any)
				if got := value(item, "00081197"); got != float64(c.wantReason) {
					t.Errorf("FailureReason %v, want %#x", got, c.wantReason)
				}
			}
		})
	}
	// The server still answers after all that.
	if r := s.do(t, "GET", "/dicom-web/studies", nil, nil); r.status != 200 {
		t.Fatalf("QIDO after bad input: %d", r.status)
	}
	// The good parts of the mixed request are retrievable.
	rw := row(t, good)
	if r := s.do(t, "GET", "/dicom-web/studies/"+rw.Study+"/series/"+rw.Series+"/instances/"+rw.SOP, map[string]string{"Accept": "application/dicom"}, nil); r.status != 200 {
		t.Fatalf("WADO of stored instance: %d", r.status)
	}
}

// Failed items name the instance whenever its UIDs were read, even when
// the part is truncated, and leave the attributes out when unknown.
func TestSTOW_failedItemsNameInstances(t *testing.T) {
	s := newTestServer(t, nil)
	good := "images/ct_small_signed_no_window.dcm"
	s.store(t, good)
	changed := readCorpus(t, good)
	changed[len(changed)-1] ^= 0xFF
	parts := append(dicomParts(t, "bad/truncated.dcm", "bad/empty.dcm", "bad/no_sop_instance_uid.dcm"), part{"application/dicom", changed})
	body, ct := multipartBody(t, `"application/dicom"`, parts...)
	r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body)
	if r.status != 409 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	failed := values(jsonObject(t, r.body), "00081198")
	if len(failed) != 4 {
		t.Fatalf("%d failed items: %s", len(failed), r.body)
	}
	const ctClass = "1.2.840.10008.5.1.4.1.1.2"
	for i, want := range []struct {
		class, sop string
		reason     int
	}{
		{ctClass, row(t, "bad/truncated.dcm").SOP, reasonCannotUnderstand},
		{"", "", reasonCannotUnderstand},
		{ctClass, "", reasonCannotUnderstand},
		{ctClass, row(t, good).SOP, reasonDuplicateSOP},
	} {
		item := failed[i].(map[string]any)
		for tag, v := range map[string]string{"00081150": want.class, "00081155": want.sop} {
			_, present := item[tag]
			got, _ := value(item, tag).(string)
			if v == "" && present || got != v {
				t.Errorf("item %d: %s = %v (present %v), want %q", i, tag, item[tag], present, v)
			}
		}
		if got := value(item, "00081197"); got != float64(want.reason) {
			t.Errorf("item %d: FailureReason %v, want %#x", i, got, want.reason)
		}
	}
}

func TestSTOW_conflictingBytes(t *testing.T) {
	for _, replace := range []bool{false, true} {
		s := newTestServer(t, nil)
		s.archive.ReplaceOnConflict = replace
		f := readCorpus(t, "images/ct_small_signed_no_window.dcm")
		s.store(t, "images/ct_small_signed_no_window.dcm")
		// A cached thumbnail of the first bytes, which a replace must drop.
		if r := s.do(t, "GET", instPath(t, "images/ct_small_signed_no_window.dcm")+"/thumbnail", nil, nil); r.status != 200 {
			t.Fatalf("thumbnail: %d %s", r.status, r.body)
		}
		thumbs := func() int {
			n := 0
			s.archive.Blobs.List(t.Context(), "thumbs/", func(storage.BlobInfo) error { n++; return nil })
			return n
		}
		if thumbs() != 1 {
			t.Fatalf("%d cached thumbnails, want 1", thumbs())
		}
		changed := append([]byte(nil), f...)
		changed[len(changed)-1] ^= 0xFF // a pixel value: same UIDs, different bytes
		body, ct := multipartBody(t, `"application/dicom"`, part{"application/dicom", changed})
		r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body)
		if replace {
			if r.status != 200 {
				t.Fatalf("replace policy: status %d: %s", r.status, r.body)
			}
			if n := thumbs(); n != 0 {
				t.Errorf("replace left %d cached thumbnails of the old bytes", n)
			}
			continue
		}
		if r.status != http.StatusConflict {
			t.Fatalf("reject policy: status %d: %s", r.status, r.body)
		}
		item := values(jsonObject(t, r.body), "00081198")[0].(map[string]any)
		if got := value(item, "00081197"); got != float64(reasonDuplicateSOP) {
			t.Errorf("FailureReason %v, want 0x0111", got)
		}
	}
}

func TestSTOW_tooLarge(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.MaxUploadBytes = 10000 })
	body, ct := multipartBody(t, `"application/dicom"`, dicomParts(t, "images/ct_small_signed_no_window.dcm")...)
	r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if r := s.do(t, "GET", "/dicom-web/studies", nil, nil); r.status != 200 || string(r.body) != "[]" {
		t.Fatalf("after 413: %d %s", r.status, r.body)
	}
}
