package codec_test

import (
	"errors"
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
		"ts/mr_jpegls_lossless.dcm",
		"ts/mr_j2k_lossless.dcm",
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
