package dicomweb

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/testenv"
)

func instPath(t testing.TB, file string) string {
	r := row(t, file)
	return "/dicom-web/studies/" + r.Study + "/series/" + r.Series + "/instances/" + r.SOP
}

func TestWADO_instances(t *testing.T) {
	s := corpusServer(t)
	native := "images/ct_small_signed_no_window.dcm"
	implicit := "ts/mr_implicit_le.dcm"
	jpeg := "ts/sc_gray8_jpeg_baseline.dcm"
	type tc struct {
		name, path string
		accept     string
		want       int
		wantParts  int    // multipart: number of parts; 0: single part
		wantTS     string // transfer-syntax of the (first) part
		identical  string // corpus file the (first) body must equal
	}
	cases := []tc{
		{"instance default accept", instPath(t, native), "", 200, 1, tsExplicitLE, native},
		{"instance multipart ts=*", instPath(t, jpeg), `multipart/related; type="application/dicom"; transfer-syntax=*`, 200, 1, row(t, jpeg).TS, jpeg},
		{"instance multipart default ts of jpeg: decoded", instPath(t, jpeg), `multipart/related; type="application/dicom"`, 200, 1, tsExplicitLE, ""},
		{"instance jpeg as JPEG-LS: no encoder", instPath(t, jpeg), `multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.80`, 406, 0, "", ""},
		{"instance multipart explicit LE of implicit", instPath(t, implicit), `multipart/related; type="application/dicom"`, 200, 1, tsExplicitLE, ""},
		{"instance multipart stored implicit", instPath(t, implicit), `multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2`, 200, 1, tsImplicitLE, implicit},
		{"instance single part", instPath(t, native), "application/dicom", 200, 0, tsExplicitLE, native},
		{"instance single part jpeg as stored", instPath(t, jpeg), "application/dicom; transfer-syntax=*", 200, 0, row(t, jpeg).TS, jpeg},
		{"instance ?accept=", instPath(t, native) + "?accept=" + "application%2Fdicom", "", 200, 0, tsExplicitLE, native},
		{"series", "/dicom-web/studies/" + studyUID + "/series/" + ctSeries, `multipart/related; type="application/dicom"`, 200, 11, tsExplicitLE, ""},
		{"study", "/dicom-web/studies/" + studyUID, "*/*", 200, 20, tsExplicitLE, ""},
		{"study single part refused", "/dicom-web/studies/" + studyUID, "application/dicom", 406, 0, "", ""},
		{"unsupported accept", instPath(t, native), "image/png", 406, 0, "", ""},
		{"unknown study", "/dicom-web/studies/1.2.3", "", 404, 0, "", ""},
		{"unknown series", "/dicom-web/studies/" + studyUID + "/series/1.2.3", "", 404, 0, "", ""},
		{"unknown instance", "/dicom-web/studies/" + studyUID + "/series/" + ctSeries + "/instances/1.2.3", "", 404, 0, "", ""},
		{"malformed UID", "/dicom-web/studies/" + studyUID + "/series/x.y", "", 400, 0, "", ""},
		{"too long UID", "/dicom-web/studies/" + strings.Repeat("1", 65), "", 400, 0, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.do(t, "GET", c.path, map[string]string{"Accept": c.accept}, nil)
			if r.status != c.want {
				t.Fatalf("status %d, want %d: %.300s", r.status, c.want, r.body)
			}
			if c.want != 200 {
				return
			}
			var body []byte
			var ct string
			if c.wantParts > 0 {
				typ, parts := readMultipart(t, r)
				if typ != "application/dicom" || len(parts) != c.wantParts {
					t.Fatalf("type %q, %d parts; want %d", typ, len(parts), c.wantParts)
				}
				body, ct = parts[0].data, parts[0].contentType
			} else {
				body, ct = r.body, r.header.Get("Content-Type")
				if r.header.Get("ETag") == "" {
					t.Error("no ETag")
				}
			}
			if want := "application/dicom; transfer-syntax=" + c.wantTS; ct != want {
				t.Errorf("part Content-Type %q, want %q", ct, want)
			}
			if c.identical != "" && !bytes.Equal(body, readCorpus(t, c.identical)) {
				t.Errorf("body differs from %s (%d vs %d bytes)", c.identical, len(body), len(readCorpus(t, c.identical)))
			}
			h, err := dcm.Parse(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("returned object does not parse: %v", err)
			}
			if h.TransferSyntaxUID != c.wantTS {
				t.Errorf("object transfer syntax %s, want %s", h.TransferSyntaxUID, c.wantTS)
			}
		})
	}
}

// Every stored file comes back byte-identical with transfer-syntax=*.
func TestWADO_byteIdentical(t *testing.T) {
	s := corpusServer(t)
	m, _ := manifest()
	for file, rw := range m {
		if strings.HasPrefix(file, "bad/") {
			continue
		}
		r := s.do(t, "GET", instPath(t, file), map[string]string{"Accept": `multipart/related; type="application/dicom"; transfer-syntax=*`}, nil)
		if r.status != 200 {
			t.Errorf("%s: status %d", file, r.status)
			continue
		}
		_, parts := readMultipart(t, r)
		if len(parts) != 1 || !bytes.Equal(parts[0].data, readCorpus(t, file)) {
			t.Errorf("%s (%s): not byte-identical", file, rw.TS)
		}
	}
}

// Converted objects (implicit, big endian, deflated → explicit LE) carry
// the same frames as pydicom extracts from the originals.
func TestWADO_conversion(t *testing.T) {
	s := corpusServer(t)
	want := frameHashes(t)
	for _, file := range []string{"ts/mr_implicit_le.dcm", "ts/mr_explicit_be.dcm", "ts/mr_deflated.dcm", "ts/sc_gray8_deflated_real.dcm", "ts/us_rgb_planar_explicit_be_real.dcm", "images/cr_chest_mono1_10bit_small.dcm"} {
		r := s.do(t, "GET", instPath(t, file), map[string]string{"Accept": "application/dicom"}, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", file, r.status, r.body)
		}
		h, err := dcm.Parse(bytes.NewReader(r.body))
		if err != nil || h.TransferSyntaxUID != tsExplicitLE || h.SOPInstanceUID != row(t, file).SOP {
			t.Fatalf("%s: converted object: %v %+v", file, err, h)
		}
		for i, f := range h.Frames {
			var buf []byte
			for _, sp := range f {
				buf = append(buf, r.body[sp.Offset:sp.Offset+sp.Length]...)
			}
			if got := sha(buf); got != want[file][i+1] {
				t.Errorf("%s frame %d after conversion: sha %s, want %s", file, i+1, got, want[file][i+1])
			}
		}
	}
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// frameHashes reads testdata/frames_sha256.tsv (pydicom's view).
func frameHashes(t testing.TB) map[string]map[int]string {
	f, err := os.Open("testdata/frames_sha256.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[int]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) != 5 || strings.HasPrefix(c[0], "#") {
			continue
		}
		n, _ := strconv.Atoi(c[1])
		if out[c[0]] == nil {
			out[c[0]] = map[int]string{}
		}
		out[c[0]][n] = c[4]
	}
	return out
}

func TestWADO_frames(t *testing.T) {
	s := corpusServer(t)
	want := frameHashes(t)
	ohif := "multipart/related; type=application/octet-stream; transfer-syntax=*"
	for file, frames := range want {
		t.Run(file, func(t *testing.T) {
			list := make([]string, 0, len(frames))
			for n := 1; n <= len(frames); n++ {
				list = append(list, strconv.Itoa(n))
			}
			r := s.do(t, "GET", instPath(t, file)+"/frames/"+strings.Join(list, ","), map[string]string{"Accept": ohif}, nil)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			typ, parts := readMultipart(t, r)
			if typ != "application/octet-stream" || len(parts) != len(frames) {
				t.Fatalf("type %q with %d parts, want %d", typ, len(parts), len(frames))
			}
			ts := row(t, file).TS
			if uncompressedTS(ts) {
				ts = tsExplicitLE
			}
			for i, p := range parts {
				if got := sha(p.data); got != frames[i+1] {
					t.Errorf("frame %d: sha %s, want %s (%d bytes)", i+1, got, frames[i+1], len(p.data))
				}
				if want := "application/octet-stream; transfer-syntax=" + ts; p.contentType != want {
					t.Errorf("part Content-Type %q, want %q", p.contentType, want)
				}
			}
		})
	}
}

func TestWADO_framesNegotiation(t *testing.T) {
	s := corpusServer(t)
	native := instPath(t, "images/ct_enhanced_perfusion_2f_native.dcm")
	jpeg := instPath(t, "ts/us_cine_rgb_12f_jpeg_baseline.dcm")
	rle := instPath(t, "ts/mr_rle.dcm")
	cases := []struct {
		name, path, accept string
		want               int
		wantType           string // multipart type or single Content-Type prefix
	}{
		{"native default", native + "/frames/1", `multipart/related; type="application/octet-stream"`, 200, "application/octet-stream"},
		{"native no accept", native + "/frames/1,2", "", 200, "application/octet-stream"},
		{"native explicit LE", native + "/frames/2", `multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1`, 200, "application/octet-stream"},
		{"native single part", native + "/frames/2", "application/octet-stream", 200, "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"},
		{"native as jpeg: rendered", native + "/frames/1", `multipart/related; type="image/jpeg"`, 200, "image/jpeg"},
		{"native as jls: no encoder", native + "/frames/1", `multipart/related; type="image/jls"`, 406, ""},
		{"jpeg as image/jpeg", jpeg + "/frames/1,5,12", `multipart/related; type="image/jpeg"`, 200, "image/jpeg"},
		{"jpeg single image/jpeg", jpeg + "/frames/3", `image/jpeg`, 200, "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"},
		{"jpeg octet without ts: decoded", jpeg + "/frames/1", `multipart/related; type="application/octet-stream"`, 200, "application/octet-stream"},
		{"jpeg explicit ts", jpeg + "/frames/1", `multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.4.50`, 200, "application/octet-stream"},
		{"rle x-dicom-rle", rle + "/frames/1", `multipart/related; type="image/x-dicom-rle"`, 200, "image/dicom-rle"},
		{"wildcard", jpeg + "/frames/2", "*/*", 200, "image/jpeg"},
		{"out of range", jpeg + "/frames/13", "", 404, ""},
		{"zero", jpeg + "/frames/0", "", 400, ""},
		{"malformed", jpeg + "/frames/1,a", "", 400, ""},
		{"empty item", jpeg + "/frames/1,,2", "", 400, ""},
		{"no pixel data", instPath(t, "reports/sr_basic_text_utf8.dcm") + "/frames/1", "", 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.do(t, "GET", c.path, map[string]string{"Accept": c.accept}, nil)
			if r.status != c.want {
				t.Fatalf("status %d, want %d: %.300s", r.status, c.want, r.body)
			}
			if c.want != 200 {
				return
			}
			if strings.HasPrefix(r.header.Get("Content-Type"), "multipart/") {
				typ, _ := readMultipart(t, r)
				if typ != c.wantType {
					t.Errorf("type %q, want %q", typ, c.wantType)
				}
			} else if got := r.header.Get("Content-Type"); got != c.wantType {
				t.Errorf("Content-Type %q, want %q", got, c.wantType)
			}
		})
	}
}

func TestWADO_singlePartCaching(t *testing.T) {
	s := corpusServer(t)
	file := "images/ct_small_signed_no_window.dcm"
	data := readCorpus(t, file)
	p := instPath(t, file)
	r := s.do(t, "GET", p, map[string]string{"Accept": "application/dicom"}, nil)
	etag := r.header.Get("ETag")
	if etag != `"`+sha(data)+`"` || r.header.Get("Last-Modified") == "" {
		t.Fatalf("ETag %q Last-Modified %q", etag, r.header.Get("Last-Modified"))
	}
	r = s.do(t, "GET", p, map[string]string{"Accept": "application/dicom", "Range": "bytes=128-131"}, nil)
	if r.status != http.StatusPartialContent || string(r.body) != "DICM" {
		t.Fatalf("Range: %d %q", r.status, r.body)
	}
	r = s.do(t, "GET", p, map[string]string{"Accept": "application/dicom", "If-None-Match": etag}, nil)
	if r.status != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", r.status)
	}
	lm := s.do(t, "GET", p, map[string]string{"Accept": "application/dicom"}, nil).header.Get("Last-Modified")
	if r := s.do(t, "GET", p, map[string]string{"Accept": "application/dicom", "If-Modified-Since": lm}, nil); r.status != http.StatusNotModified {
		t.Fatalf("If-Modified-Since: %d", r.status)
	}
	// Frames: single part with Range, multipart with If-None-Match.
	fp := instPath(t, "images/ct_enhanced_perfusion_2f_native.dcm") + "/frames/2"
	r = s.do(t, "GET", fp, map[string]string{"Accept": "application/octet-stream", "Range": "bytes=0-9"}, nil)
	if r.status != http.StatusPartialContent || len(r.body) != 10 || !strings.HasSuffix(r.header.Get("ETag"), `-f2"`) {
		t.Fatalf("frame Range: %d %d bytes ETag %q", r.status, len(r.body), r.header.Get("ETag"))
	}
	r = s.do(t, "GET", fp, nil, nil)
	if r = s.do(t, "GET", fp, map[string]string{"If-None-Match": r.header.Get("ETag")}, nil); r.status != http.StatusNotModified {
		t.Fatalf("multipart If-None-Match: %d", r.status)
	}
	// Study retrieval honours If-None-Match too.
	sp := "/dicom-web/studies/" + studyUID
	r = s.do(t, "GET", sp, nil, nil)
	if r = s.do(t, "GET", sp, map[string]string{"If-None-Match": r.header.Get("ETag")}, nil); r.status != http.StatusNotModified {
		t.Fatalf("study If-None-Match: %d", r.status)
	}
}

func TestWADO_metadata(t *testing.T) {
	s := corpusServer(t)
	sp := "/dicom-web/studies/" + studyUID
	cases := []struct {
		path  string
		count int
	}{
		{sp + "/metadata", 20},
		{sp + "/series/" + ctSeries + "/metadata", 11},
		{sp + "/series/" + ptSeries + "/metadata", 8},
		{instPath(t, "study/s02_ct/ct_0003.dcm") + "/metadata", 1},
		{instPath(t, "ts/sc_rgb_2f_rle_real.dcm") + "/metadata", 1},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			for _, gz := range []bool{false, true, false} { // built, then from cache
				hdr := map[string]string{"Accept-Encoding": "identity"}
				if gz {
					hdr["Accept-Encoding"] = "gzip"
				}
				r := s.do(t, "GET", c.path, hdr, nil)
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				body := r.body
				if r.header.Get("Content-Encoding") == "gzip" {
					zr, err := gzip.NewReader(bytes.NewReader(body))
					if err != nil {
						t.Fatal(err)
					}
					body, _ = io.ReadAll(zr)
				}
				res := jsonArray(t, body)
				if len(res) != c.count {
					t.Fatalf("%d instances, want %d", len(res), c.count)
				}
				for _, in := range res {
					if value(in, "00080018") == nil {
						t.Fatal("instance without SOPInstanceUID")
					}
					if px, ok := in["7FE00010"].(map[string]any); ok {
						u, _ := px["BulkDataURI"].(string)
						if !strings.HasPrefix(u, s.URL+"/dicom-web/studies/") || !strings.HasSuffix(u, "/bulk/7FE00010") {
							t.Errorf("PixelData BulkDataURI %q", u)
						}
					}
				}
			}
		})
	}
	// ETag, 304, and a new one after a STOW into the study.
	mp := sp + "/metadata"
	r := s.do(t, "GET", mp, nil, nil)
	etag := r.header.Get("ETag")
	if etag == "" {
		t.Fatal("metadata without ETag")
	}
	if r := s.do(t, "GET", mp, map[string]string{"If-None-Match": etag}, nil); r.status != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", r.status)
	}
	sr := s.do(t, "GET", sp+"/series/"+ctSeries+"/metadata", nil, nil).header.Get("ETag")
	if r := s.do(t, "DELETE", instPath(t, "study/s100_sr/sr_0001.dcm"), nil, nil); r.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d", r.status)
	}
	r = s.do(t, "GET", mp, map[string]string{"If-None-Match": etag}, nil)
	if r.status != 200 || r.header.Get("ETag") == etag || len(jsonArray(t, r.body)) != 19 {
		t.Fatalf("after a change: status %d, ETag %q (was %q)", r.status, r.header.Get("ETag"), etag)
	}
	s.store(t, "study/s100_sr/sr_0001.dcm")
	r = s.do(t, "GET", sp+"/series/"+ctSeries+"/metadata", map[string]string{"If-None-Match": sr}, nil)
	if r.status != 200 || len(jsonArray(t, r.body)) != 11 {
		t.Fatalf("series after a change: %d", r.status)
	}
	if r := s.do(t, "GET", "/dicom-web/studies/1.2.3/metadata", nil, nil); r.status != 404 {
		t.Fatalf("unknown study metadata: %d", r.status)
	}
	if r := s.do(t, "GET", mp, map[string]string{"Accept": "application/dicom+xml"}, nil); r.status != 406 {
		t.Fatalf("xml metadata: %d", r.status)
	}
}

func TestWADO_bulk(t *testing.T) {
	s := corpusServer(t)
	want := frameHashes(t)
	file := "images/ct_enhanced_perfusion_2f_native.dcm"
	r := s.do(t, "GET", instPath(t, file)+"/bulk/7FE00010", map[string]string{"Accept": "application/octet-stream"}, nil)
	if r.status != 200 || len(r.body) != 2*524288 {
		t.Fatalf("PixelData bulk: %d, %d bytes", r.status, len(r.body))
	}
	if sha(r.body[:524288]) != want[file][1] || sha(r.body[524288:]) != want[file][2] {
		t.Error("PixelData bulk differs from the frames")
	}
	r = s.do(t, "GET", instPath(t, file)+"/bulk/7FE00010", nil, nil)
	if _, parts := readMultipart(t, r); len(parts) != 1 || len(parts[0].data) != 2*524288 {
		t.Fatalf("multipart PixelData bulk: %d parts", len(parts))
	}
	jp := "ts/us_cine_rgb_12f_jpeg_baseline.dcm"
	r = s.do(t, "GET", instPath(t, jp)+"/bulk/7FE00010", map[string]string{"Accept": "multipart/related; type=application/octet-stream; transfer-syntax=*"}, nil)
	if _, parts := readMultipart(t, r); len(parts) != 12 || sha(parts[11].data) != want[jp][12] {
		t.Fatalf("encapsulated PixelData bulk: %d parts", len(parts))
	}
	// Every BulkDataURI of the metadata answers.
	for _, f := range []string{"images/pt_acrin_flt_breast_icon.dcm", "images/us_rgb_planar_explicit_le.dcm"} {
		md := jsonArray(t, s.do(t, "GET", instPath(t, f)+"/metadata", nil, nil).body)
		uris := bulkURIs(md[0], nil)
		if len(uris) == 0 {
			t.Errorf("%s: no BulkDataURI in metadata", f)
		}
		for _, u := range uris {
			r := s.do(t, "GET", strings.TrimPrefix(u, s.URL), map[string]string{"Accept": "application/octet-stream"}, nil)
			if r.status != 200 || len(r.body) == 0 {
				t.Errorf("%s: GET %s: %d", f, u, r.status)
			}
		}
	}
	if r := s.do(t, "GET", instPath(t, file)+"/bulk/00091234", nil, nil); r.status != 404 {
		t.Errorf("missing bulk: %d", r.status)
	}
	if r := s.do(t, "GET", instPath(t, file)+"/bulk/zz", nil, nil); r.status != 400 {
		t.Errorf("malformed bulk path: %d", r.status)
	}
}

func bulkURIs(v any, out []string) []string {
	switch x := v.(type) {
	case map[string]any:
		if u, ok := x["BulkDataURI"].(string); ok {
			out = append(out, u)
		}
		for _, e := range x {
			out = bulkURIs(e, out)
		}
	case []any:
		for _, e := range x {
			out = bulkURIs(e, out)
		}
	}
	return out
}

func TestWADOURI(t *testing.T) {
	s := corpusServer(t)
	file := "images/ct_small_signed_no_window.dcm"
	rw := row(t, file)
	q := "/wado?requestType=WADO&studyUID=" + rw.Study + "&seriesUID=" + rw.Series + "&objectUID=" + rw.SOP
	cases := []struct {
		url       string
		want      int
		identical string
		ts        string
	}{
		{q, 200, file, tsExplicitLE},
		{q + "&contentType=application%2Fdicom", 200, file, tsExplicitLE},
		{"/dicom-web" + q, 200, file, tsExplicitLE},
		{q + "&contentType=image%2Fpdf", 406, "", ""}, // rendered contentTypes: reports_test.go
		{"/wado?requestType=WADO&studyUID=" + rw.Study + "&seriesUID=" + rw.Series, 400, "", ""},
		{"/wado?studyUID=" + rw.Study + "&seriesUID=" + rw.Series + "&objectUID=" + rw.SOP, 400, "", ""},
		{"/wado?requestType=WADO&studyUID=1.2&seriesUID=1.2&objectUID=1.2", 404, "", ""},
	}
	impl := row(t, "ts/mr_implicit_le.dcm")
	iq := "/wado?requestType=WADO&studyUID=" + impl.Study + "&seriesUID=" + impl.Series + "&objectUID=" + impl.SOP
	jp := row(t, "ts/sc_gray8_jpeg_baseline.dcm")
	jq := "/wado?requestType=WADO&studyUID=" + jp.Study + "&seriesUID=" + jp.Series + "&objectUID=" + jp.SOP
	cases = append(cases, []struct {
		url       string
		want      int
		identical string
		ts        string
	}{
		{iq, 200, "", tsExplicitLE},
		{iq + "&transferSyntax=1.2.840.10008.1.2", 200, "ts/mr_implicit_le.dcm", tsImplicitLE},
		{jq, 200, "ts/sc_gray8_jpeg_baseline.dcm", jp.TS},
		{jq + "&transferSyntax=1.2.840.10008.1.2.1", 200, "", tsExplicitLE},
		{jq + "&transferSyntax=1.2.840.10008.1.2.4.80", 406, "", ""},
	}...)
	for _, c := range cases {
		r := s.do(t, "GET", c.url, nil, nil)
		if r.status != c.want {
			t.Errorf("%s: status %d, want %d: %s", c.url, r.status, c.want, r.body)
			continue
		}
		if c.want != 200 {
			continue
		}
		if c.identical != "" && !bytes.Equal(r.body, readCorpus(t, c.identical)) {
			t.Errorf("%s: not byte-identical", c.url)
		}
		if h, err := dcm.Parse(bytes.NewReader(r.body)); err != nil || h.TransferSyntaxUID != c.ts {
			t.Errorf("%s: %v ts %v", c.url, err, h)
		}
	}
}

func TestDELETE(t *testing.T) {
	s := corpusServer(t)
	ip := instPath(t, "study/s02_ct/ct_0001.dcm")
	steps := []struct {
		method, path string
		want         int
	}{
		{"DELETE", ip, 204},
		{"GET", ip, 404},
		{"GET", ip + "/metadata", 404},
		{"DELETE", ip, 404},
		{"DELETE", "/dicom-web/studies/" + studyUID + "/series/" + ptSeries, 204},
		{"GET", "/dicom-web/studies/" + studyUID + "/series/" + ptSeries, 404},
		{"GET", "/dicom-web/studies/" + studyUID + "/series/" + ctSeries, 200},
		{"DELETE", "/dicom-web/studies/" + studyUID, 204},
		{"GET", "/dicom-web/studies/" + studyUID, 404},
		{"GET", "/dicom-web/studies/" + studyUID + "/metadata", 404},
		{"DELETE", "/dicom-web/studies/" + studyUID, 404},
		{"DELETE", "/dicom-web/studies/not-a-uid", 400},
	}
	for _, st := range steps {
		if r := s.do(t, st.method, st.path, nil, nil); r.status != st.want {
			t.Fatalf("%s %s: %d, want %d: %s", st.method, st.path, r.status, st.want, r.body)
		}
	}
	if res := jsonArray(t, s.do(t, "GET", "/dicom-web/studies?StudyInstanceUID="+studyUID, nil, nil).body); len(res) != 0 {
		t.Fatalf("deleted study still found by QIDO")
	}
}

func TestCORS(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.AllowedOrigins = []string{"https://viewer.example"} })
	r := s.do(t, "OPTIONS", "/dicom-web/studies/1.2.3/series/1.2/instances/1.2/frames/1", map[string]string{
		"Origin": "https://viewer.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "accept, range"}, nil)
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "https://viewer.example" ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "GET") || r.header.Get("Access-Control-Allow-Headers") == "" {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}
	r = s.do(t, "GET", "/dicom-web/studies", map[string]string{"Origin": "https://viewer.example"}, nil)
	if r.header.Get("Access-Control-Allow-Origin") != "https://viewer.example" || !strings.Contains(r.header.Get("Access-Control-Expose-Headers"), "ETag") {
		t.Fatalf("simple request: %v", r.header)
	}
	r = s.do(t, "GET", "/dicom-web/studies", map[string]string{"Origin": "https://evil.example"}, nil)
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("other origin allowed: %v", r.header)
	}
	s = newTestServer(t, nil)
	r = s.do(t, "OPTIONS", "/dicom-web/studies", map[string]string{"Origin": "http://any", "Access-Control-Request-Method": "POST"}, nil)
	if r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("default origins: %v", r.header)
	}
}

// pydicomValue returns the value bytes of the element at a BulkDataURI
// path ("00880200/0/7FE00010") as pydicom reads them.
func pydicomValue(t *testing.T, file, path string) []byte {
	t.Helper()
	const py = "/usr/bin/python3"
	if exec.Command(py, "-c", "import pydicom").Run() != nil {
		testenv.Missing(t, "pydicom missing (apt-get install -y python3-pydicom)")
	}
	script := `import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
parts = sys.argv[2].split("/")
for i in range(0, len(parts) - 1, 2):
    ds = ds[int(parts[i], 16)].value[int(parts[i + 1])]
sys.stdout.buffer.write(ds[int(parts[-1], 16)].value)
`
	out, err := exec.Command(py, "-c", script, filepath.Join(corpusDir, file), path).Output()
	if err != nil {
		t.Fatalf("pydicom %s %s: %v", file, path, err)
	}
	return out
}

// A non-PixelData bulk value (the icon image nested in IconImageSequence)
// is a ranged read at the span recorded at ingest, byte-equal to what
// pydicom reads; rows without recorded spans fall back to re-parsing.
func TestWADO_bulkRecordedSpans(t *testing.T) {
	s := newTestServer(t, nil)
	const file = "images/pt_acrin_flt_breast_icon.dcm"
	s.store(t, file)
	for _, path := range []string{"00880200/0/7FE00010", "7FE00010"} {
		want := pydicomValue(t, file, path)
		r := s.do(t, "GET", instPath(t, file)+"/bulk/"+path, map[string]string{"Accept": "application/octet-stream"}, nil)
		if r.status != 200 || !bytes.Equal(r.body, want) {
			t.Fatalf("bulk %s: %d, %d bytes; pydicom %d bytes, equal %v", path, r.status, len(r.body), len(want), bytes.Equal(r.body, want))
		}
		r = s.do(t, "GET", instPath(t, file)+"/bulk/"+path, map[string]string{"Accept": "application/octet-stream", "Range": "bytes=10-19"}, nil)
		if r.status != 206 || !bytes.Equal(r.body, want[10:20]) {
			t.Errorf("ranged bulk %s: %d %x", path, r.status, r.body)
		}
	}
	if n := s.archive.HeaderReparses(); n != 0 {
		t.Errorf("%d re-parses with recorded bulk spans", n)
	}
	if r := s.do(t, "GET", instPath(t, file)+"/bulk/00880200/1/7FE00010", nil, nil); r.status != 404 {
		t.Errorf("unknown bulk path: %d", r.status)
	}
	if n := s.archive.HeaderReparses(); n != 0 {
		t.Errorf("unknown path re-parsed (%d)", n)
	}

	// A row from before bulk spans were recorded.
	rw := row(t, file)
	in, err := s.archive.Index.Instance(t.Context(), rw.Study, rw.Series, rw.SOP)
	if err != nil {
		t.Fatal(err)
	}
	in.Bulk = nil
	in.SHA256 = strings.Repeat("0", 64) // replace needs other bytes; the blob stays
	if _, err := s.archive.Index.PutInstance(t.Context(), in, true); err != nil {
		t.Fatal(err)
	}
	want := pydicomValue(t, file, "00880200/0/7FE00010")
	r := s.do(t, "GET", instPath(t, file)+"/bulk/00880200/0/7FE00010", map[string]string{"Accept": "application/octet-stream"}, nil)
	if r.status != 200 || !bytes.Equal(r.body, want) {
		t.Fatalf("fallback bulk: %d, %d bytes", r.status, len(r.body))
	}
	if n := s.archive.HeaderReparses(); n != 1 {
		t.Errorf("fallback re-parses = %d, want 1", n)
	}
}

// A multipart retrieve whose parts all go out as stored states its
// length (no chunked encoding), and the length is exact; one with a
// converted part (unknown size) does not.
func TestWADO_multipartLength(t *testing.T) {
	s := corpusServer(t)
	asStored := `multipart/related; type="application/dicom"; transfer-syntax=*`
	for _, c := range []struct {
		name, path, accept string
		wantLength         bool
	}{
		{"instance as stored", instPath(t, "images/ct_small_signed_no_window.dcm"), asStored, true},
		{"study as stored", "/dicom-web/studies/" + studyUID, asStored, true},
		{"implicit converted", instPath(t, "ts/mr_implicit_le.dcm"), `multipart/related; type="application/dicom"`, false},
		{"frames", instPath(t, "images/ct_small_signed_no_window.dcm") + "/frames/1", `multipart/related; type="application/octet-stream"; transfer-syntax=*`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.do(t, "GET", c.path, map[string]string{"Accept": c.accept}, nil)
			if r.status != 200 {
				t.Fatalf("status %d: %.200s", r.status, r.body)
			}
			cl := r.header.Get("Content-Length")
			if (cl != "") != c.wantLength {
				t.Fatalf("Content-Length %q, want one: %v", cl, c.wantLength)
			}
			if cl != "" && cl != strconv.Itoa(len(r.body)) {
				t.Errorf("Content-Length %s, body %d bytes", cl, len(r.body))
			}
			if _, parts := readMultipart(t, r); len(parts) == 0 {
				t.Error("no parts")
			}
		})
	}
}
