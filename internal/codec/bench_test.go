package codec_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/codec/codectest"
)

// BenchmarkDecode reports MB/s of decoded output (BitsAllocated-sized
// samples) per codec on corpus files.
func BenchmarkDecode(b *testing.B) {
	for _, p := range []string{
		"images/ct_enhanced_perfusion_2f_native.dcm",
		"ts/mr_rle.dcm",
		"ts/sc_rgb_2f_rle_real.dcm",
		"ts/mr_jpeg_lossless_sv1.dcm",
		"ts/sc_gray8_jpeg_baseline.dcm",
		"ts/us_rgb_jpeg_baseline_ybr422.dcm",
		"ts/mr_jpeg_extended_12bit_lossy.dcm",
		"ts/mr_jpegls_lossless.dcm",
		"ts/ct_enhanced_2f_jpegls_lossless.dcm",
		"ts/mr_j2k_lossless.dcm",
		"ts/ct_signed_j2k_lossless.dcm",
		"ts/mr_j2k_lossy.dcm",
		"ts/cr_mono1_j2k_lossy.dcm",
	} {
		f := codectest.Load(b, p)
		b.Run(codec.Name(f.Header.TransferSyntaxUID)+"/"+p, func(b *testing.B) {
			i := f.Info
			spp := max(i.SamplesPerPixel, 1)
			b.SetBytes(int64(i.Rows * i.Columns * spp * i.BitsAllocated / 8))
			if _, err := f.Decode(0); errors.Is(err, codec.ErrUnsupported) {
				b.Skip(err)
			}
			for b.Loop() {
				if _, err := f.Decode(0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeHTJ2K: HTJ2K codestreams of testdata (no corpus file is
// HTJ2K), MB/s of decoded output.
func BenchmarkDecodeHTJ2K(b *testing.B) {
	mr := codectest.Load(b, "ts/mr_jpegls_lossless.dcm").Info
	for _, c := range []struct {
		file, ts string
	}{
		{"mr_htj2k_lossless.j2c", codec.HTJ2KLossless},
		{"mr_htj2k_lossy.j2c", codec.HTJ2K},
	} {
		frame, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.file, func(b *testing.B) {
			b.SetBytes(int64(mr.Rows * mr.Columns * mr.BitsAllocated / 8))
			if _, err := codec.Decode(c.ts, frame, mr); errors.Is(err, codec.ErrUnsupported) {
				b.Skip(err)
			}
			for b.Loop() {
				if _, err := codec.Decode(c.ts, frame, mr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
