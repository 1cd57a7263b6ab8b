package dicomweb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/dcm/dcmtest"
)

// Stored pixel data that cannot be decoded: every rendered, thumbnail,
// WADO-URI image and transcoding route answers 422 with a message that
// names the problem, the instance stays retrievable as stored, and the
// server keeps serving. The instances are made here (dcmtest), stored
// through STOW.

const undecStudy = "2.25.900000000000000000000000000000000001"

// undecodableCase is one broken instance of the table.
type undecodableCase struct {
	name string
	obj  *dcmtest.Object
	// encapsulated: the stored pixel data is in fragments, so frames and
	// instances in Explicit VR Little Endian need decoding.
	encapsulated bool
	// ok lists routes (keys of undecodableRoutes) that succeed anyway
	// because they need no decoding of the broken part.
	ok map[string]bool
	// want: words the 422 message must contain.
	want []string
}

// greyJPEG is a baseline JPEG of a w×h grey gradient.
func greyJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetGray(x, y, color.Gray{Y: uint8(16 * (x + y))})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func undecodableTable(t testing.TB) []undecodableCase {
	const le, jpg, rle = dcmtest.ExplicitVRLittleEndian, dcmtest.JPEGBaseline8Bit, dcmtest.RLELossless
	n := 0
	img := func(ts string, rows, cols, spp, bits, frames int) *dcmtest.Object {
		n++
		series := fmt.Sprintf("2.25.9000000000000000000000000000000000%02d", n)
		return dcmtest.Image(ts, undecStudy, series, series+".1", rows, cols, spp, bits, frames)
	}
	good := greyJPEG(t, 8, 8)
	notJPEG := bytes.Repeat([]byte("not a JPEG codestream "), 8)
	px := func(n int) []byte { return bytes.Repeat([]byte{0x40, 0x41}, n/2) }
	return []undecodableCase{
		{name: "JPEG label, fragments not JPEG", obj: img(jpg, 8, 8, 1, 8, 1).Encapsulated(notJPEG), encapsulated: true,
			want: []string{"JPEG"}},
		{name: "JPEG truncated", obj: img(jpg, 8, 8, 1, 8, 1).Encapsulated(good[:len(good)/2]), encapsulated: true,
			want: []string{"JPEG"}},
		{name: "JPEG of another size than Rows/Columns", obj: img(jpg, 16, 16, 1, 8, 1).Encapsulated(good), encapsulated: true,
			want: []string{"8x8", "16x16"}},
		{name: "JPEG label, native pixel data", obj: img(jpg, 8, 8, 1, 8, 1).Native(px(64)),
			want: []string{"JPEG"}},
		{name: "RLE label, fragment not RLE", obj: img(rle, 8, 8, 1, 8, 1).Encapsulated(notJPEG), encapsulated: true,
			want: []string{"RLE"}},
		{name: "native data shorter than Rows x Columns", obj: img(le, 16, 16, 1, 16, 1).Native(px(100)),
			want: []string{"100 bytes"}},
		{name: "SamplesPerPixel 3 of grey-sized data", obj: img(le, 8, 8, 3, 8, 1).Native(px(64)),
			want: []string{"64 bytes"}},
		{name: "BitsAllocated 32 of 8-bit data", obj: img(le, 8, 8, 1, 32, 1).Native(px(64)),
			want: []string{"64 bytes"}},
		{name: "last frame short of NumberOfFrames", obj: img(le, 4, 4, 1, 8, 3).Native(px(40)), want: []string{"8 bytes"},
			// frames 1 and 2 are whole: only frame 3 fails, and the
			// instance-level routes render frame 1.
			ok: map[string]bool{"rendered": true, "thumbnail": true, "HEAD thumbnail": true, "series thumbnail": true,
				"series rendered": true, "WADO-URI jpeg": true, "frame 1 rendered": true, "frame 1 thumbnail": true,
				"frame 1 png": true}},
		{name: "Rows missing", obj: img(le, 8, 8, 1, 8, 1).Delete(dcmtest.TagRows).Native(px(64)),
			want: []string{"pixels"}},
		{name: "RGB with one sample a pixel", obj: img(le, 8, 8, 1, 8, 1).Str(dcmtest.TagPhotometricInterpretation, "CS", "RGB").Native(px(64)),
			want: []string{"RGB"}},
		{name: "PALETTE COLOR without its palette", obj: img(le, 8, 8, 1, 8, 1).Str(dcmtest.TagPhotometricInterpretation, "CS", "PALETTE COLOR").Native(px(64)),
			want: []string{"PALETTE COLOR"}},
		{name: "BitsStored above BitsAllocated", obj: img(le, 8, 8, 1, 8, 1).US(dcmtest.TagBitsStored, 12).Native(px(64)),
			want: []string{"BitsStored"}},
		{name: "PALETTE COLOR with palettes shorter than their descriptors", obj: palette(img(le, 8, 8, 1, 8, 1)).Native(px(64)),
			want: []string{"LUT data", "256 entries"}},
		{name: "uncompressed label, encapsulated short data", obj: img(le, 8, 8, 1, 8, 1).Encapsulated(px(10)), encapsulated: true,
			want: []string{"10 bytes"},
			// Frames and instances in the stored (uncompressed) syntax
			// go out as stored: nothing to decode.
			ok: map[string]bool{"last frame native": true, "instance explicit LE": true, "instance multipart explicit LE": true}},
	}
}

// palette makes o PALETTE COLOR with 256-entry descriptors whose LUT
// data hold 5 entries.
func palette(o *dcmtest.Object) *dcmtest.Object {
	o.Str(dcmtest.TagPhotometricInterpretation, "CS", "PALETTE COLOR")
	for i := range 3 {
		o.US(dcm.Tag(0x00281101+i), 256, 0, 16)
		o.Raw(dcm.Tag(0x00281201+i), "OW", make([]byte, 10))
	}
	return o
}

// undecodableRoutes are the requests that decode the stored pixel data,
// by name: path (after /dicom-web, with {study}, {series}, {sop}),
// Accept, and whether the route decodes only encapsulated data (native
// frames and instances go out as stored, needing no decoder).
var undecodableRoutes = []struct {
	name, path, accept string
	encapsulatedOnly   bool
}{
	{"rendered", "/studies/{study}/series/{series}/instances/{sop}/rendered", "", false},
	{"frame 1 rendered", "/studies/{study}/series/{series}/instances/{sop}/frames/1/rendered", "image/png", false},
	{"frames 1,1 rendered", "/studies/{study}/series/{series}/instances/{sop}/frames/{last},1/rendered", "", false},
	{"thumbnail", "/studies/{study}/series/{series}/instances/{sop}/thumbnail", "", false},
	{"frame 1 thumbnail", "/studies/{study}/series/{series}/instances/{sop}/frames/1/thumbnail", "", false},
	{"last frame thumbnail", "/studies/{study}/series/{series}/instances/{sop}/frames/{last}/thumbnail", "", false},
	{"series thumbnail", "/studies/{study}/series/{series}/thumbnail", "", false},
	{"series rendered", "/studies/{study}/series/{series}/rendered", "", false},
	{"WADO-URI jpeg", "/wado?requestType=WADO&studyUID={study}&seriesUID={series}&objectUID={sop}&contentType=image/jpeg", "", false},
	{"WADO-URI png last frame", "/wado?requestType=WADO&studyUID={study}&seriesUID={series}&objectUID={sop}&contentType=image/png&frameNumber={last}", "", false},
	{"frame 1 png", "/studies/{study}/series/{series}/instances/{sop}/frames/1", "image/png", false},
	{"last frame native", "/studies/{study}/series/{series}/instances/{sop}/frames/{last}",
		`multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1`, true},
	{"instance explicit LE", "/studies/{study}/series/{series}/instances/{sop}",
		"application/dicom; transfer-syntax=1.2.840.10008.1.2.1", true},
	{"instance multipart explicit LE", "/studies/{study}/series/{series}/instances/{sop}",
		`multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1`, true},
	{"HEAD thumbnail", "HEAD /studies/{study}/series/{series}/instances/{sop}/thumbnail", "", false},
}

func TestUndecodable_routes(t *testing.T) {
	s := newTestServer(t, nil)
	table := undecodableTable(t)
	for _, c := range table {
		t.Run(c.name, func(t *testing.T) {
			b := c.obj.Bytes()
			body, ct := multipartBody(t, `"application/dicom"`, part{"application/dicom", b})
			r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body)
			if r.status != http.StatusOK && r.status != http.StatusAccepted {
				t.Fatalf("STOW: %d %s", r.status, r.body)
			}
			hdr, err := parseHeaderOf(b)
			if err != nil {
				t.Fatal(err)
			}
			last := "1"
			if f := hdr.frames; f > 1 {
				last = fmt.Sprint(f)
			}
			repl := strings.NewReplacer("{study}", hdr.study, "{series}", hdr.series, "{sop}", hdr.sop, "{last}", last)
			for _, rt := range undecodableRoutes {
				if rt.encapsulatedOnly && !c.encapsulated {
					continue
				}
				method, path := "GET", repl.Replace(rt.path)
				if m, p, ok := strings.Cut(path, " "); ok {
					method, path = m, p
				}
				h := map[string]string{}
				if rt.accept != "" {
					h["Accept"] = rt.accept
				}
				r := s.do(t, method, "/dicom-web"+path, h, nil)
				if c.ok[rt.name] {
					if r.status != http.StatusOK {
						t.Errorf("%s: status %d, want 200: %.300s", rt.name, r.status, r.body)
					}
					continue
				}
				if r.status != http.StatusUnprocessableEntity {
					t.Errorf("%s: status %d, want 422: %.300s", rt.name, r.status, r.body)
					continue
				}
				if method == "HEAD" {
					continue
				}
				var e struct{ Error string }
				if err := json.Unmarshal(r.body, &e); err != nil {
					t.Errorf("%s: body %q: %v", rt.name, r.body, err)
					continue
				}
				for _, w := range append([]string{"pixel data", "transfer-syntax=*"}, c.want...) {
					if !strings.Contains(e.Error, w) {
						t.Errorf("%s: message %q lacks %q", rt.name, e.Error, w)
					}
				}
			}
			// Still retrievable as stored, byte for byte.
			r = s.do(t, "GET", "/dicom-web"+repl.Replace("/studies/{study}/series/{series}/instances/{sop}"),
				map[string]string{"Accept": "application/dicom; transfer-syntax=*"}, nil)
			if r.status != http.StatusOK || !bytes.Equal(r.body, b) {
				t.Errorf("as stored: status %d, %d bytes (stored %d)", r.status, len(r.body), len(b))
			}
		})
	}
	// The server keeps serving: a good instance renders after them all.
	s.store(t, "images/ct_small_signed_no_window.dcm")
	ct := row(t, "images/ct_small_signed_no_window.dcm")
	r := s.do(t, "GET", "/dicom-web/studies/"+ct.Study+"/series/"+ct.Series+"/instances/"+ct.SOP+"/rendered", nil, nil)
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("good instance after the broken ones: %d %s", r.status, r.header.Get("Content-Type"))
	}
	// The study holds only broken instances: its thumbnail and
	// rendering name the problem too.
	for _, p := range []string{"/studies/" + undecStudy + "/thumbnail", "/studies/" + undecStudy + "/rendered"} {
		if r := s.do(t, "GET", "/dicom-web"+p, nil, nil); r.status != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422: %.300s", p, r.status, r.body)
		}
	}
}

type hdrOf struct {
	study, series, sop string
	frames             int
}

func parseHeaderOf(b []byte) (hdrOf, error) {
	h, err := dcm.Parse(bytes.NewReader(b))
	if err != nil {
		return hdrOf{}, err
	}
	return hdrOf{h.StudyInstanceUID, h.SeriesInstanceUID, h.SOPInstanceUID, len(h.Frames)}, nil
}

// TestUndecodable_mutations is a fuzz-ish table: real codestreams and
// native pixel data of the corpus, damaged (bytes changed, cut short) or
// relabelled (Rows, Columns, BitsAllocated, SamplesPerPixel, the
// transfer syntax), stored as new instances. No decoding route answers a
// 5xx; each answers 200, 406 (no decoder for what the attributes claim)
// or 422; every instance stays retrievable as stored; the server keeps
// answering.
func TestUndecodable_mutations(t *testing.T) {
	s := newTestServer(t, nil)
	type source struct {
		file  string
		frame []byte
		hdr   *dcm.Header
	}
	var sources []source
	for _, f := range []string{"ts/sc_gray8_jpeg_baseline.dcm", "ts/mr_rle.dcm", "ts/mr_jpeg_lossless_sv1.dcm",
		"ts/mr_jpegls_lossless.dcm", "ts/mr_j2k_lossless.dcm", "images/mr_small_signed_window.dcm"} {
		b := readCorpus(t, f)
		h, err := dcm.Parse(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var frame []byte
		for _, sp := range h.Frames[0] {
			frame = append(frame, b[sp.Offset:sp.Offset+sp.Length]...)
		}
		sources = append(sources, source{f, frame, h})
	}
	r := rand.New(rand.NewPCG(10, 1))
	type mutant struct {
		what string
		obj  *dcmtest.Object
	}
	var mutants []mutant
	n := 0
	for _, src := range sources {
		h := src.hdr
		for i := range 8 {
			n++
			series := fmt.Sprintf("2.25.91%06d", n)
			rows, cols := h.Int(dcmtest.TagRows), h.Int(dcmtest.TagColumns)
			spp, bits := h.Int(dcmtest.TagSamplesPerPixel), h.Int(dcmtest.TagBitsAllocated)
			ts := h.TransferSyntaxUID
			frame := append([]byte(nil), src.frame...)
			what := src.file
			switch i % 4 {
			case 0: // bytes changed
				for k := r.IntN(16) + 1; k > 0; k-- {
					frame[r.IntN(len(frame))] = byte(r.IntN(256))
				}
				what += ": bytes changed"
			case 1: // cut short
				frame = frame[:r.IntN(len(frame))+1]
				what += fmt.Sprintf(": cut to %d bytes", len(frame))
			case 2: // attributes that contradict the data
				switch r.IntN(4) {
				case 0:
					rows = rows*2 + r.IntN(3)
				case 1:
					cols = max(1, cols/2)
				case 2:
					bits = []int{1, 8, 16, 24, 32}[r.IntN(5)]
				case 3:
					spp = 4 - spp
				}
				what += fmt.Sprintf(": relabelled %dx%d, %d samples of %d bits", cols, rows, spp, bits)
			case 3: // another transfer syntax
				ts = []string{dcmtest.JPEGBaseline8Bit, dcmtest.RLELossless, dcmtest.JPEGLosslessSV1, "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90"}[r.IntN(5)]
				what += ": labelled " + ts
			}
			o := dcmtest.Image(ts, "2.25.9100", series, series+".1", rows, cols, spp, bits, 1)
			if h.Encapsulated || ts != h.TransferSyntaxUID {
				o.Encapsulated(frame)
			} else {
				o.Native(frame)
			}
			mutants = append(mutants, mutant{what, o})
		}
	}
	for _, m := range mutants {
		b := m.obj.Bytes()
		body, ct := multipartBody(t, `"application/dicom"`, part{"application/dicom", b})
		if r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body); r.status != http.StatusOK && r.status != http.StatusAccepted {
			t.Fatalf("%s: STOW %d %s", m.what, r.status, r.body)
		}
		h, err := dcm.Parse(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		inst := "/dicom-web/studies/" + h.StudyInstanceUID + "/series/" + h.SeriesInstanceUID + "/instances/" + h.SOPInstanceUID
		for _, rt := range []struct{ path, accept string }{
			{"/rendered", ""},
			{"/thumbnail", ""},
			{"/frames/1", "image/png"},
			{"/frames/1", `multipart/related; type="application/octet-stream"`},
			{"", "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"},
		} {
			hdr := map[string]string{}
			if rt.accept != "" {
				hdr["Accept"] = rt.accept
			}
			r := s.do(t, "GET", inst+rt.path, hdr, nil)
			switch r.status {
			case http.StatusOK, http.StatusNotAcceptable, http.StatusUnprocessableEntity:
			default:
				t.Errorf("%s: GET %s (%s): status %d: %.300s", m.what, rt.path, rt.accept, r.status, r.body)
			}
		}
		r := s.do(t, "GET", inst, map[string]string{"Accept": "application/dicom; transfer-syntax=*"}, nil)
		if r.status != http.StatusOK || !bytes.Equal(r.body, b) {
			t.Errorf("%s: as stored: %d, %d bytes", m.what, r.status, len(r.body))
		}
	}
	if r := s.do(t, "GET", "/dicom-web/studies", nil, nil); r.status != http.StatusOK {
		t.Fatalf("QIDO after the mutants: %d", r.status)
	}
}

// A data set whose bytes are not in the transfer syntax it is labelled
// with cannot even be parsed (element headers are read by the syntax):
// STOW refuses it (failure reason 0xC000, the words in a Warning header),
// nothing is stored, and no later request meets it.
func TestUndecodable_syntaxMismatchAtIngest(t *testing.T) {
	s := newTestServer(t, nil)
	px := bytes.Repeat([]byte{7}, 16)
	explicitLabelImplicitBytes := dcmtest.Image(dcmtest.ExplicitVRLittleEndian, "2.25.9200", "2.25.9200.1", "2.25.9200.1.1", 4, 4, 1, 8, 1).Native(px)
	explicitLabelImplicitBytes.Implicit = true
	implicitLabelExplicitBytes := dcmtest.Image(dcmtest.ImplicitVRLittleEndian, "2.25.9200", "2.25.9200.2", "2.25.9200.2.1", 4, 4, 1, 8, 1).Native(px)
	for _, c := range []struct {
		name string
		obj  *dcmtest.Object
		sop  string
	}{
		{"Explicit VR label, Implicit VR bytes", explicitLabelImplicitBytes, "2.25.9200.1.1"},
		{"Implicit VR label, Explicit VR bytes", implicitLabelExplicitBytes, "2.25.9200.2.1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body, ct := multipartBody(t, `"application/dicom"`, part{"application/dicom", c.obj.Bytes()})
			r := s.do(t, "POST", "/dicom-web/studies", map[string]string{"Content-Type": ct}, body)
			if r.status != http.StatusConflict || !strings.Contains(string(r.body), "C000") && !strings.Contains(string(r.body), "49152") {
				t.Fatalf("STOW: %d %s", r.status, r.body)
			}
			if w := strings.Join(r.header.Values("Warning"), " "); !strings.Contains(w, "invalid DICOM") {
				t.Errorf("Warning %q does not say why", w)
			}
			for _, p := range []string{"", "/rendered", "/thumbnail"} {
				if r := s.do(t, "GET", "/dicom-web/studies/2.25.9200/series/"+strings.TrimSuffix(c.sop, ".1")+"/instances/"+c.sop+p, nil, nil); r.status != http.StatusNotFound {
					t.Errorf("GET %s: %d, want 404", p, r.status)
				}
			}
		})
	}
}
