package dicomweb

import (
	"bytes"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/codec/codectest"
	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/render"
	"github.com/cloudpacs/pacs/internal/storage"
)

// renderedServer stores a few corpus files and makes sure the rendered
// routes are registered (registerRendered is idempotent over Register).
func renderedServer(t *testing.T, files ...string) *testServer {
	t.Helper()
	ts := newTestServer(t, nil)
	registerRendered(ts.echo.Group(Root), ts.handler)
	for _, f := range files {
		if _, err := ts.archive.Store(t.Context(), bytes.NewReader(readCorpus(t, f)), ""); err != nil {
			t.Fatalf("store %s: %v", f, err)
		}
	}
	return ts
}

func renderedGet(t *testing.T, url, accept string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func renderedInstURL(t *testing.T, ts *testServer, rel string) string {
	t.Helper()
	f := codectest.Load(t, rel)
	h := f.Header
	return ts.URL + Root + "/studies/" + h.StudyInstanceUID + "/series/" + h.SeriesInstanceUID + "/instances/" + h.SOPInstanceUID
}

func TestRendered_instance(t *testing.T) {
	const ct = "study/s02_ct/ct_0001.dcm"
	ts := renderedServer(t, ct, "ts/mr_jpegls_lossless.dcm", "reports/sr_basic_text_utf8.dcm", "ts/us_rgb_jpeg_baseline_ybr422.dcm")
	base := renderedInstURL(t, ts, ct)

	res, body := renderedGet(t, base+"/rendered", "")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("rendered: %d %s %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	img, err := jpeg.Decode(bytes.NewReader(body))
	if err != nil || img.Bounds().Dx() != 128 {
		t.Fatalf("rendered JPEG: %v %v", err, img)
	}

	// PNG with an explicit window equals the pipeline's output exactly.
	res, body = renderedGet(t, base+"/rendered?window=40,400", "image/png")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("png: %d %s", res.StatusCode, body)
	}
	got, err := png.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	f := codectest.Load(t, ct)
	px, err := f.Decode(0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := render.AttrsFromJSON(dcm.AppendJSON(nil, f.Header), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := render.Render(px, a, render.Options{Window: &render.Window{Center: 40, Width: 400}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.(*image.Gray).Pix, want.(*image.Gray).Pix) {
		t.Error("rendered PNG differs from render.Render")
	}

	// Viewport scales, keeping the aspect ratio.
	res, body = renderedGet(t, base+"/frames/1/rendered?viewport=64,32&quality=50", "image/jpeg")
	if res.StatusCode != 200 {
		t.Fatalf("viewport: %d %s", res.StatusCode, body)
	}
	if img, _ := jpeg.Decode(bytes.NewReader(body)); img == nil || img.Bounds().Dx() != 32 || img.Bounds().Dy() != 32 {
		t.Errorf("viewport 64,32 of 128x128: got %v", img.Bounds())
	}

	// Colour JPEG baseline renders.
	res, body = renderedGet(t, renderedInstURL(t, ts, "ts/us_rgb_jpeg_baseline_ybr422.dcm")+"/rendered", "image/png")
	if res.StatusCode != 200 {
		t.Fatalf("colour: %d %s", res.StatusCode, body)
	}

	for _, c := range []struct {
		url, accept string
		status      int
		msg         string
	}{
		{base + "/rendered?window=40", "", 400, "window"},
		{base + "/rendered?window=40,0", "", 400, "width"},
		{base + "/rendered?window=40,400,cubic", "", 400, "function"},
		{base + "/rendered?viewport=0,10", "", 400, "viewport"},
		{base + "/rendered?quality=101", "", 400, "quality"},
		{base + "/rendered", "application/dicom", 406, "image/jpeg"},
		{base + "/frames/2/rendered", "", 404, "frame 2"},
		{renderedInstURL(t, ts, "reports/sr_basic_text_utf8.dcm") + "/frames/1/rendered", "", 404, "pixel data"}, // /rendered of an SR: reports_test.go
	} {
		res, body := renderedGet(t, c.url, c.accept)
		if res.StatusCode != c.status || !strings.Contains(string(body), c.msg) {
			t.Errorf("GET %s: %d %s, want %d mentioning %q", strings.TrimPrefix(c.url, ts.URL), res.StatusCode, body, c.status, c.msg)
		}
	}
	// A syntax without decoder in this build: 406 that names it.
	res, body = renderedGet(t, renderedInstURL(t, ts, "ts/mr_jpegls_lossless.dcm")+"/rendered", "")
	if res.StatusCode == 406 && !strings.Contains(string(body), "JPEG-LS") {
		t.Errorf("JPEG-LS: %d %s", res.StatusCode, body)
	} else if res.StatusCode != 406 && res.StatusCode != 200 {
		t.Errorf("JPEG-LS: %d %s", res.StatusCode, body)
	}
}

func TestRendered_seriesMultipart(t *testing.T) {
	files := []string{"study/s02_ct/ct_0001.dcm", "study/s02_ct/ct_0002.dcm", "study/s02_ct/ct_0003.dcm"}
	ts := renderedServer(t, files...)
	h := codectest.Load(t, files[0]).Header
	res, body := renderedGet(t, ts.URL+Root+"/studies/"+h.StudyInstanceUID+"/series/"+h.SeriesInstanceUID+"/rendered", "image/jpeg")
	if res.StatusCode != 200 {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	mt, params, err := mime.ParseMediaType(res.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/related" || params["type"] != "image/jpeg" {
		t.Fatalf("content type %q", res.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	n := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jpeg.Decode(p); err != nil {
			t.Fatalf("part %d: %v", n+1, err)
		}
		n++
	}
	if n != len(files) {
		t.Errorf("%d parts, want %d", n, len(files))
	}
}

func TestThumbnail_cached(t *testing.T) {
	files := []string{"study/s02_ct/ct_0001.dcm", "study/s02_ct/ct_0002.dcm", "study/s02_ct/ct_0003.dcm", "images/cr_chest_mono1_10bit_small.dcm"}
	ts := renderedServer(t, files...)
	h := codectest.Load(t, files[0]).Header
	urls := []string{
		ts.URL + Root + "/studies/" + h.StudyInstanceUID + "/thumbnail",
		ts.URL + Root + "/studies/" + h.StudyInstanceUID + "/series/" + h.SeriesInstanceUID + "/thumbnail",
		renderedInstURL(t, ts, files[0]) + "/thumbnail",
		renderedInstURL(t, ts, files[0]) + "/frames/1/thumbnail?viewport=64,64",
		renderedInstURL(t, ts, files[3]) + "/thumbnail",
	}
	for _, u := range urls {
		for round := 0; round < 2; round++ {
			res, body := renderedGet(t, u, "")
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/jpeg" {
				t.Fatalf("GET %s: %d %s", u, res.StatusCode, body)
			}
			img, err := jpeg.Decode(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() > 128 || b.Dy() > 128 {
				t.Errorf("thumbnail %v larger than 128", b)
			}
		}
	}
	var keys []string
	err := ts.archive.Blobs.List(t.Context(), "thumbs/", func(bi storage.BlobInfo) error {
		keys = append(keys, bi.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// study and series share the representative (middle CT) instance.
	if len(keys) != 4 {
		t.Errorf("cached thumbnails %v, want 4", keys)
	}
}

// annotatedDiff checks that annotated differs from plain only in boxes
// anchored at the top-left and bottom-left corners, that both boxes
// exist, cover little of the image, and hold light text on a dark
// background. It returns the two boxes.
func annotatedDiff(t *testing.T, plain, annotated image.Image) [2]image.Rectangle {
	t.Helper()
	b := plain.Bounds()
	if annotated.Bounds() != b {
		t.Fatalf("annotated size %v, plain %v", annotated.Bounds(), b)
	}
	grey := func(img image.Image, x, y int) int {
		r, g, bl, _ := img.At(x, y).RGBA()
		return int((r>>8 + g>>8 + bl>>8) / 3)
	}
	var boxes [2]image.Rectangle // top half, bottom half
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r1, g1, b1, _ := plain.At(x, y).RGBA()
			r2, g2, b2, _ := annotated.At(x, y).RGBA()
			if r1 == r2 && g1 == g2 && b1 == b2 {
				continue
			}
			i := 0
			if y >= b.Min.Y+b.Dy()/2 {
				i = 1
			}
			boxes[i] = boxes[i].Union(image.Rect(x, y, x+1, y+1))
		}
	}
	for i, box := range boxes {
		if box.Empty() {
			t.Fatalf("no annotation in the %s corner", []string{"top-left", "bottom-left"}[i])
		}
		// Every changed pixel is inside the corner box: the box starts
		// at the left edge and at the top (bottom) edge.
		if box.Min.X != b.Min.X || (i == 0 && box.Min.Y != b.Min.Y) || (i == 1 && box.Max.Y != b.Max.Y) {
			t.Errorf("annotation %d at %v is not in a left corner of %v", i, box, b)
		}
		if box.Dx()*box.Dy() > b.Dx()*b.Dy()/5 {
			t.Errorf("annotation box %v covers more than a fifth of %v", box, b)
		}
		light, dark := 0, 0
		for y := box.Min.Y; y < box.Max.Y; y++ {
			for x := box.Min.X; x < box.Max.X; x++ {
				switch v := grey(annotated, x, y); {
				case v >= 224:
					light++
				case v <= 32:
					dark++
				}
			}
		}
		if light < 20 || dark < box.Dx()*box.Dy()/2 {
			t.Errorf("annotation box %v: %d light and %d dark pixels, want text (light) on a dark box", box, light, dark)
		}
	}
	return boxes
}

func TestRendered_annotation(t *testing.T) {
	const ct = "study/s02_ct/ct_0001.dcm"
	const us = "ts/us_rgb_jpeg_baseline_ybr422.dcm"
	ts := renderedServer(t, ct, us)
	decode := func(url string) image.Image {
		t.Helper()
		res, body := renderedGet(t, url, "image/png")
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", url, res.StatusCode, body)
		}
		img, err := png.Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	base := renderedInstURL(t, ts, ct) + "/rendered?window=40,400&viewport=512,512"
	plain := decode(base)
	both := decode(base + "&annotation=patient,technique")
	if _, ok := both.(*image.Gray); !ok {
		t.Errorf("annotated grey image is %T, want it to stay grey", both)
	}
	boxes := annotatedDiff(t, plain, both)
	t.Logf("512x512 CT: patient box %v, technique box %v", boxes[0], boxes[1])

	// One group: one corner only; repeated parameters and any case work.
	onlyPatient := decode(base + "&annotation=Patient")
	tech := decode(base + "&annotation=technique&annotation=technique")
	pb, tb := diffBounds(plain, onlyPatient), diffBounds(plain, tech)
	if pb != boxes[0] || tb != boxes[1] {
		t.Errorf("patient alone %v (with both %v), technique alone %v (with both %v)", pb, boxes[0], tb, boxes[1])
	}

	// Colour images too.
	ub := renderedInstURL(t, ts, us) + "/rendered?viewport=400,300"
	annotatedDiff(t, decode(ub), decode(ub+"&annotation=patient,technique"))

	// WADO-URI takes the same parameter.
	h := codectest.Load(t, ct).Header
	wado := ts.URL + "/wado?requestType=WADO&studyUID=" + h.StudyInstanceUID + "&seriesUID=" + h.SeriesInstanceUID +
		"&objectUID=" + h.SOPInstanceUID + "&contentType=image/png&windowCenter=40&windowWidth=400&rows=512&columns=512"
	annotatedDiff(t, decode(wado), decode(wado+"&annotation=patient,technique"))

	for _, u := range []string{
		base + "&annotation=physician",
		base + "&annotation=patient,",
		base + "&annotation=",
		wado + "&annotation=all",
	} {
		res, body := renderedGet(t, u, "image/png")
		if res.StatusCode != 400 || !strings.Contains(string(body), "annotation") {
			t.Errorf("GET %s: %d %s, want 400 naming annotation", strings.TrimPrefix(u, ts.URL), res.StatusCode, body)
		}
	}
}

// diffBounds is the bounding box of the pixels where a and b differ.
func diffBounds(a, b image.Image) image.Rectangle {
	var r image.Rectangle
	bd := a.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			r1, g1, b1, _ := a.At(x, y).RGBA()
			r2, g2, b2, _ := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 {
				r = r.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return r
}
