package codec_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/codec/codectest"
)

// corpusImages lists the corpus files with pixel data (bad/ excluded).
func corpusImages(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"images", "ts", "study/s02_ct", "study/s03_pt", "charset"} {
		ents, err := os.ReadDir(filepath.Join(codectest.Corpus, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".dcm") {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	return out
}

var lossy = map[string]bool{
	codec.JPEGBaseline8Bit:   true,
	codec.JPEGExtended12Bit:  true,
	codec.JPEG2000:           true,
	codec.JPEGLSNearLossless: true,
	codec.HTJ2K:              true,
}

// TestDecode_matchesReference decodes every frame of every corpus file
// and compares with an independent decoder: lossless bit-exact, lossy
// PSNR >= 45 dB. Native files are checked against their other-syntax
// twins (mr_*: implicit LE, explicit BE, deflated = images/mr_prostate).
func TestDecode_matchesReference(t *testing.T) {
	for _, path := range corpusImages(t) {
		t.Run(path, func(t *testing.T) {
			f := codectest.Load(t, path)
			ts := f.Header.TransferSyntaxUID
			if len(f.Frames) == 0 {
				t.Skip("no pixel data")
			}
			if !f.Header.Encapsulated {
				for i := range f.Frames {
					if _, err := f.Decode(i); err != nil {
						t.Fatalf("frame %d: %v", i+1, err)
					}
				}
				return
			}
			if _, ok := codec.Lookup(ts); !ok {
				codectest.Missing(t, "no decoder for "+codec.Name(ts)+" in this build")
			}
			ref, ok := codectest.ReferenceDecode(t, path, ts)
			if !ok {
				codectest.Missing(t, "no reference decoder for "+ts)
			}
			for i := range f.Frames {
				got, err := f.Decode(i)
				if errors.Is(err, codec.ErrUnsupported) {
					codectest.Missing(t, fmt.Sprintf("frame %d: %v", i+1, err))
				}
				if err != nil {
					t.Fatalf("frame %d: %v", i+1, err)
				}
				want, err := ref.Decode(i)
				if err != nil {
					t.Fatalf("reference frame %d: %v", i+1, err)
				}
				if len(got.Data) != len(want.Data) {
					t.Fatalf("frame %d: %d samples, reference %d", i+1, len(got.Data), len(want.Data))
				}
				if lossy[ts] {
					p := psnr(got.Data, want.Data, got.BitsStored)
					t.Logf("frame %d: PSNR %.1f dB", i+1, p)
					if p < 45 {
						t.Errorf("frame %d: PSNR %.1f dB < 45 dB against the reference", i+1, p)
					}
					continue
				}
				diff := 0
				for j := range got.Data {
					if got.Data[j] != want.Data[j] {
						if diff < 5 {
							t.Errorf("frame %d sample %d: got %d, reference %d", i+1, j, got.Data[j], want.Data[j])
						}
						diff++
					}
				}
				if diff > 0 {
					t.Fatalf("frame %d: %d of %d samples differ", i+1, diff, len(got.Data))
				}
			}
		})
	}
}

func psnr(a, b []int32, bits int) float64 {
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

// The same MR slice in four native encodings decodes to the same values.
func TestDecode_nativeTwins(t *testing.T) {
	base, err := codectest.Load(t, "images/mr_prostate_t2_12bit.dcm").Decode(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"ts/mr_implicit_le.dcm", "ts/mr_explicit_be.dcm", "ts/mr_deflated.dcm"} {
		got, err := codectest.Load(t, p).Decode(0)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if !equal(got.Data, base.Data) {
			t.Errorf("%s decodes differently from images/mr_prostate_t2_12bit.dcm", p)
		}
	}
	// Planar RGB, big and little endian.
	a, err := codectest.Load(t, "ts/us_rgb_planar_explicit_be_real.dcm").Decode(0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := codectest.Load(t, "images/us_rgb_planar_explicit_le.dcm").Decode(0)
	if err != nil {
		t.Fatal(err)
	}
	if !equal(a.Data, b.Data) {
		t.Error("planar RGB BE and LE differ")
	}
}

func equal(a, b []int32) bool {
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

func TestNative_bitsAndSign(t *testing.T) {
	// 12 bits stored in 16, high bit 11, signed; garbage in the top bits.
	frame := []byte{0xFF, 0xF7, 0x01, 0xF8, 0x00, 0x00, 0xFF, 0xFF}
	info := codec.PixelInfo{Rows: 2, Columns: 2, BitsAllocated: 16, BitsStored: 12, HighBit: 11, PixelRepresentation: 1, PhotometricInterpretation: "MONOCHROME2"}
	px, err := codec.Decode(codec.ExplicitVRLittleEndian, frame, info)
	if err != nil {
		t.Fatal(err)
	}
	want := []int32{2047, -2047, 0, -1}
	if !equal(px.Data, want) {
		t.Errorf("signed 12-bit: got %v, want %v", px.Data, want)
	}
	// High bit 15 with 12 bits stored: values sit in the top bits.
	info.HighBit, info.PixelRepresentation = 15, 0
	px, err = codec.Decode(codec.ExplicitVRLittleEndian, []byte{0x10, 0x00, 0xF0, 0xFF, 0, 0, 0, 0x80}, info)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{1, 4095, 0, 2048}; !equal(px.Data, want) {
		t.Errorf("high bit 15: got %v, want %v", px.Data, want)
	}
	// 1-bit, first pixel in the least significant bit.
	info = codec.PixelInfo{Rows: 1, Columns: 8, BitsAllocated: 1, PhotometricInterpretation: "MONOCHROME2"}
	px, err = codec.Decode(codec.ExplicitVRLittleEndian, []byte{0b10100001}, info)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{1, 0, 0, 0, 0, 1, 0, 1}; !equal(px.Data, want) {
		t.Errorf("1-bit: got %v, want %v", px.Data, want)
	}
	// 32-bit signed.
	info = codec.PixelInfo{Rows: 1, Columns: 1, BitsAllocated: 32, PixelRepresentation: 1, PhotometricInterpretation: "MONOCHROME2"}
	px, err = codec.Decode(codec.ExplicitVRLittleEndian, []byte{0xFE, 0xFF, 0xFF, 0xFF}, info)
	if err != nil || px.Data[0] != -2 {
		t.Errorf("32-bit signed: %v %v", px, err)
	}
	// Short frame.
	_, err = codec.Decode(codec.ExplicitVRLittleEndian, []byte{1, 2, 3}, codec.PixelInfo{Rows: 2, Columns: 2, BitsAllocated: 8})
	if !errors.Is(err, codec.ErrCorrupt) {
		t.Errorf("short frame: err = %v, want ErrCorrupt", err)
	}
}

func TestNative_planarAnd422(t *testing.T) {
	info := codec.PixelInfo{Rows: 1, Columns: 2, SamplesPerPixel: 3, BitsAllocated: 8, PlanarConfiguration: 1, PhotometricInterpretation: "RGB"}
	px, err := codec.Decode(codec.ExplicitVRLittleEndian, []byte{1, 2, 3, 4, 5, 6}, info)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{1, 3, 5, 2, 4, 6}; !equal(px.Data, want) {
		t.Errorf("planar: got %v, want %v", px.Data, want)
	}
	info = codec.PixelInfo{Rows: 1, Columns: 2, SamplesPerPixel: 3, BitsAllocated: 8, PhotometricInterpretation: "YBR_FULL_422"}
	px, err = codec.Decode(codec.ExplicitVRLittleEndian, []byte{10, 20, 100, 200}, info)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{10, 100, 200, 20, 100, 200}; !equal(px.Data, want) || px.PhotometricInterpretation != "YBR_FULL" {
		t.Errorf("422: got %v %s", px.Data, px.PhotometricInterpretation)
	}
}

func TestDecode_unsupportedSyntaxNamed(t *testing.T) {
	_, err := codec.Decode("1.2.3.4", []byte{0}, codec.PixelInfo{Rows: 1, Columns: 1, BitsAllocated: 8})
	if !errors.Is(err, codec.ErrUnsupported) || !strings.Contains(err.Error(), "1.2.3.4") {
		t.Errorf("err = %v", err)
	}
}
