package dicomweb

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/codec/codectest"
	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/render"
	"github.com/cloudpacs/pacs/internal/storage"
	"github.com/cloudpacs/pacs/internal/storage/memblob"
	"github.com/cloudpacs/pacs/internal/storage/sqliteindex"
)

// transcodeArchive is an archive over memblob + SQLite, independent of
// the HTTP test helpers.
func transcodeArchive(t *testing.T) (*storage.Archive, *Handler) {
	t.Helper()
	idx, err := sqliteindex.Open(t.Context(), filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idx.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a := &storage.Archive{Blobs: memblob.New(), Index: idx, Logger: log}
	h := New(Config{Archive: a, Logger: log})
	t.Cleanup(func() { h.Close() })
	return a, h
}

func storeCorpus(t *testing.T, a *storage.Archive, rel string) *storage.Instance {
	t.Helper()
	res, err := a.Store(t.Context(), bytes.NewReader(readCorpus(t, rel)), "")
	if err != nil {
		t.Fatalf("store %s: %v", rel, err)
	}
	in, err := a.Index.Instance(t.Context(), res.Instance.StudyInstanceUID, res.Instance.SeriesInstanceUID, res.Instance.SOPInstanceUID)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// compressedCorpus lists the corpus files stored in an encapsulated
// transfer syntax.
func compressedCorpus(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"ts", "images"} {
		ents, err := os.ReadDir(filepath.Join(corpusDir, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".dcm") {
				continue
			}
			rel := dir + "/" + e.Name()
			h, err := dcm.Parse(bytes.NewReader(readCorpus(t, rel)))
			if err == nil && h.Encapsulated && len(h.Frames) > 0 {
				out = append(out, rel)
			}
		}
	}
	return out
}

func tcPSNR(a, b []int32, bits int) float64 {
	var se float64
	for i := range a {
		d := float64(a[i] - b[i])
		se += d * d
	}
	if se == 0 {
		return math.Inf(1)
	}
	peak := float64(int(1)<<bits - 1)
	return 10 * math.Log10(peak*peak/(se/float64(len(a))))
}

func tcLossy(ts string) bool {
	switch ts {
	case codec.JPEGBaseline8Bit, codec.JPEGExtended12Bit, codec.JPEG2000, codec.JPEGLSNearLossless, codec.HTJ2K:
		return true
	}
	return false
}

// TestTranscode_instances transcodes every compressed corpus file this
// build can decode to Explicit VR Little Endian: dcmdump re-parses the
// result, and its pixel data equals the reference decode (dcmdjpeg,
// dcmdjpls, dcmdrle, gdcmconv --raw): bit-exact for lossless syntaxes,
// PSNR >= 45 dB for lossy ones. The frames endpoint helper gives the
// same bytes.
func TestTranscode_instances(t *testing.T) {
	a, _ := transcodeArchive(t)
	files := compressedCorpus(t)
	if len(files) == 0 {
		t.Fatal("no compressed corpus files")
	}
	for _, rel := range files {
		t.Run(rel, func(t *testing.T) {
			in := storeCorpus(t, a, rel)
			if !canTranscode(in) {
				codectest.Missing(t, "no decoder for "+codec.Name(in.TransferSyntaxUID)+" in this build")
			}
			var out bytes.Buffer
			if err := transcodeInstanceToExplicitLE(t.Context(), &out, in, a); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "out.dcm")
			if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			codectest.Run(t, codectest.RequireTool(t, "dcmdump", "dcmtk"), "-q", "+E", path)

			got, err := codectest.Parse(out.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if got.Header.TransferSyntaxUID != tsExplicitLE || got.Header.Encapsulated {
				t.Fatalf("transfer syntax %s, encapsulated %v", got.Header.TransferSyntaxUID, got.Header.Encapsulated)
			}
			if len(got.Frames) != len(in.Frames) {
				t.Fatalf("%d frames, stored %d", len(got.Frames), len(in.Frames))
			}
			lossy := tcLossy(in.TransferSyntaxUID)
			if lc := got.Header.Text(dcm.Tag(0x00282110)); lossy && lc != "01" {
				t.Errorf("LossyImageCompression %q, want 01", lc)
			}
			ref, ok := codectest.ReferenceDecode(t, filepath.Join(corpusDir, rel), in.TransferSyntaxUID)
			if !ok {
				codectest.Missing(t, "no reference decoder for "+in.TransferSyntaxUID)
			}
			if g, w := got.Info.PhotometricInterpretation, ref.Info.PhotometricInterpretation; g != w {
				t.Errorf("PhotometricInterpretation %s, reference %s", g, w)
			}
			for i := range got.Frames {
				gp, err := got.Decode(i)
				if err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				wp, err := ref.Decode(i)
				if err != nil {
					t.Fatalf("reference frame %d: %v", i+1, err)
				}
				if len(gp.Data) != len(wp.Data) {
					t.Fatalf("frame %d: %d samples, reference %d", i+1, len(gp.Data), len(wp.Data))
				}
				if lossy {
					if p := tcPSNR(gp.Data, wp.Data, gp.BitsStored); p < 45 {
						t.Errorf("frame %d: PSNR %.1f dB < 45", i+1, p)
					}
				} else if !slicesEqual(gp.Data, wp.Data) {
					t.Errorf("frame %d differs from the reference decode", i+1)
				}
				fb, _, err := transcodeFrame(t.Context(), a, in, i+1)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(fb, got.Frames[i]) {
					t.Errorf("transcodeFrame(%d) differs from the instance's frame", i+1)
				}
			}
		})
	}
}

func slicesEqual(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestTranscode_framesEndpoint drives serveTranscodedFrames as frames.go
// would: native bytes in multipart, a rendered PNG, and the negotiation.
func TestTranscode_framesEndpoint(t *testing.T) {
	a, h := transcodeArchive(t)
	in := storeCorpus(t, a, "ts/ct_enhanced_2f_jpegls_lossless.dcm")
	if !canTranscode(in) {
		codectest.Missing(t, "no JPEG-LS decoder in this build")
	}
	e := echo.New()
	serve := func(accept string, list []int) *httptest.ResponseRecorder {
		t.Helper()
		tc, err := chooseFrames(parseAccept(accept), in, len(list), true)
		if err != nil || !tc.made {
			t.Fatalf("Accept %q: nothing to transcode to (%v)", accept, err)
		}
		rec := httptest.NewRecorder()
		c := e.NewContext(httptest.NewRequest(http.MethodGet, "/frames", nil), rec)
		if err := h.serveTranscodedFrames(c, in, list, tc); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	rec := serve(`multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1`, []int{1, 2})
	mt, params, err := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if err != nil || mt != "multipart/related" {
		t.Fatalf("content type %q", rec.Header().Get("Content-Type"))
	}
	mr := multipart.NewReader(rec.Body, params["boundary"])
	for n := 1; n <= 2; n++ {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		want, _, err := transcodeFrame(t.Context(), a, in, n)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) || len(b) != 512*512*2 {
			t.Errorf("frame %d: %d bytes, not the native frame", n, len(b))
		}
		if ct := p.Header.Get("Content-Type"); !strings.Contains(ct, "transfer-syntax=1.2.840.10008.1.2.1") {
			t.Errorf("part type %q", ct)
		}
	}
	rec = serve("image/png", []int{2})
	if ct := rec.Header().Get("Content-Type"); ct != render.MediaPNG || !bytes.HasPrefix(rec.Body.Bytes(), []byte("\x89PNG")) {
		t.Errorf("rendered frame: %q %d bytes", ct, rec.Body.Len())
	}
	if _, err := chooseFrames(parseAccept("image/gif"), in, 1, true); err == nil {
		t.Error("image/gif accepted")
	}
	if _, err := chooseFrames(parseAccept(`multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.4.50`), in, 1, true); err == nil {
		t.Error("JPEG baseline transcoding accepted")
	}
}

// A stored frame that does not decode gives an error, not a broken object.
func TestTranscode_corruptFrame(t *testing.T) {
	a, _ := transcodeArchive(t)
	in := storeCorpus(t, a, "ts/mr_rle.dcm")
	in.Metadata = bytes.Replace(in.Metadata, []byte(`"00280010":{"vr":"US","Value":[`), []byte(`"00280010":{"vr":"US","Value":[1`), 1)
	err := transcodeInstanceToExplicitLE(t.Context(), io.Discard, in, a)
	if err == nil || !(errors.Is(err, codec.ErrCorrupt) || errors.Is(err, codec.ErrUnsupported)) {
		t.Errorf("err = %v", err)
	}
}
