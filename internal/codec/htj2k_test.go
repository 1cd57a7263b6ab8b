package codec_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/codec/codectest"
)

// TestHTJ2K decodes HTJ2K codestreams made by OpenJPH (an independent
// encoder; testdata/README.md): lossless ones must give back the source
// pixels exactly, the lossy one within 45 dB of them and of OpenJPH's own
// decoder (ojph_expand, when installed).
func TestHTJ2K(t *testing.T) {
	if _, ok := codec.Lookup(codec.HTJ2KLossless); !ok {
		codectest.Missing(t, "no HTJ2K decoder in this build (needs -tags cgocodecs)")
	}
	mr := codectest.Load(t, "ts/mr_jpegls_lossless.dcm")
	mrPx, err := mr.Decode(0)
	if err != nil {
		t.Fatal(err)
	}
	rgb := codectest.Load(t, "ts/sc_rgb_2f_rle_real.dcm")
	rgbPx, err := rgb.Decode(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file string
		ts   string
		info codec.PixelInfo
		want *codec.Pixels
	}{
		{"mr_htj2k_lossless.j2c", codec.HTJ2KLossless, mr.Info, mrPx},
		{"mr_htj2k_lossless.j2c", codec.HTJ2KLosslessRPCL, mr.Info, mrPx},
		{"rgb_htj2k_lossless.j2c", codec.HTJ2KLossless, withPI(rgb.Info, "YBR_RCT"), rgbPx},
		{"mr_htj2k_lossy.j2c", codec.HTJ2K, mr.Info, mrPx},
	} {
		t.Run(c.file+"/"+c.ts, func(t *testing.T) {
			frame, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := codec.Decode(c.ts, frame, c.info)
			if err != nil {
				t.Fatal(err)
			}
			if c.info.SamplesPerPixel == 3 && got.PhotometricInterpretation != "RGB" {
				t.Errorf("PhotometricInterpretation %s, want RGB", got.PhotometricInterpretation)
			}
			if c.ts != codec.HTJ2K {
				if !equal(got.Data, c.want.Data) {
					t.Fatal("lossless HTJ2K decode differs from the source pixels")
				}
				return
			}
			p := psnr(got.Data, c.want.Data, got.BitsStored)
			t.Logf("PSNR vs source %.1f dB", p)
			if p < 45 {
				t.Errorf("PSNR vs source %.1f dB < 45", p)
			}
			ref := ojphExpand(t, filepath.Join("testdata", c.file))
			if ref != nil {
				p := psnr(got.Data, ref, got.BitsStored)
				t.Logf("PSNR vs ojph_expand %.1f dB", p)
				if p < 45 {
					t.Errorf("PSNR vs ojph_expand %.1f dB < 45", p)
				}
			}
		})
	}
	// A truncated codestream is an error.
	if _, err := codec.Decode(codec.HTJ2K, []byte{0xFF, 0x4F, 0xFF, 0x51, 0, 0}, mr.Info); !errors.Is(err, codec.ErrCorrupt) {
		t.Errorf("truncated HTJ2K: err = %v", err)
	}
}

func withPI(i codec.PixelInfo, pi string) codec.PixelInfo {
	i.PhotometricInterpretation = pi
	return i
}

// ojphExpand decodes a grey codestream with OpenJPH, nil when absent.
func ojphExpand(t *testing.T, path string) []int32 {
	if _, err := exec.LookPath("ojph_expand"); err != nil {
		t.Log("ojph_expand missing (apt-get install -y openjph-tools): lossy HTJ2K checked against the source only")
		return nil
	}
	out := filepath.Join(t.TempDir(), "ref.pgm")
	codectest.Run(t, "ojph_expand", "-i", path, "-o", out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// P5\n<w> <h>\n<max>\n then big-endian 16-bit samples.
	f := strings.Fields(string(b[:min(len(b), 32)]))
	if len(f) < 4 || f[0] != "P5" {
		t.Fatalf("ojph_expand wrote no PGM")
	}
	w, _ := strconv.Atoi(f[1])
	h, _ := strconv.Atoi(f[2])
	data := b[len(b)-2*w*h:]
	px := make([]int32, w*h)
	for i := range px {
		px[i] = int32(data[2*i])<<8 | int32(data[2*i+1])
	}
	return px
}
