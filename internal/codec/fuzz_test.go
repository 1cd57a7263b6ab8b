package codec_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/codec/codectest"
)

// fuzzDecoder feeds arbitrary frames and pixel descriptions to the
// decoder of ts: errors are fine, panics and hangs are not.
func fuzzDecoder(f *testing.F, ts string, seeds ...string) {
	for _, p := range seeds {
		c := codectest.Load(f, p)
		i := c.Info
		f.Add(c.Frames[0], uint16(i.Rows), uint16(i.Columns), uint8(i.SamplesPerPixel), uint8(i.BitsAllocated), uint8(i.BitsStored), uint8(i.PixelRepresentation))
	}
	f.Fuzz(func(t *testing.T, frame []byte, rows, cols uint16, spp, ba, bs, pr uint8) {
		if int(rows)*int(cols) > 1<<20 {
			return // keep each run small
		}
		info := codec.PixelInfo{Rows: int(rows), Columns: int(cols), SamplesPerPixel: int(spp), BitsAllocated: int(ba), BitsStored: int(bs), PixelRepresentation: int(pr & 1), PhotometricInterpretation: "MONOCHROME2"}
		if spp == 3 {
			info.PhotometricInterpretation = "RGB"
		}
		// A decode that hangs would stall the fuzzer without a report: crash
		// the worker instead, so that the input is saved.
		slow := time.AfterFunc(10*time.Second, func() {
			panic(fmt.Sprintf("%s decode of %d bytes, %dx%d, took over 10 s", codec.Name(ts), len(frame), cols, rows))
		})
		defer slow.Stop()
		px, err := codec.Decode(ts, frame, info)
		if err == nil && len(px.Data) != px.Rows*px.Columns*px.SamplesPerPixel {
			t.Fatalf("%d samples for %dx%dx%d", len(px.Data), px.Columns, px.Rows, px.SamplesPerPixel)
		}
	})
}

func FuzzRLE(f *testing.F) {
	fuzzDecoder(f, codec.RLELossless, "ts/mr_rle.dcm", "ts/sc_rgb_2f_rle_real.dcm")
}

func FuzzJPEGLossless(f *testing.F) {
	fuzzDecoder(f, codec.JPEGLosslessSV1, "ts/mr_jpeg_lossless_sv1.dcm")
}

func FuzzJPEGBaseline(f *testing.F) {
	fuzzDecoder(f, codec.JPEGBaseline8Bit, "ts/sc_gray8_jpeg_baseline.dcm", "ts/us_rgb_jpeg_baseline_ybr422.dcm")
}

func FuzzNative(f *testing.F) {
	fuzzDecoder(f, codec.ExplicitVRLittleEndian, "images/mr_small_signed_window.dcm", "images/sc_ybr_full_422_native.dcm")
}

func FuzzJPEGExtended12(f *testing.F) {
	fuzzDecoder(f, codec.JPEGExtended12Bit, "ts/mr_jpeg_extended_12bit_lossy.dcm")
}

// The cgo decoders (CharLS, OpenJPEG): the wrappers check the header
// against the data set's geometry before the C code allocates or
// decodes, so that a lying codestream fails cleanly.
func FuzzJPEGLS(f *testing.F) {
	fuzzDecoder(f, codec.JPEGLSLossless, "ts/mr_jpegls_lossless.dcm", "ts/ct_enhanced_2f_jpegls_lossless.dcm")
}

func FuzzJPEG2000(f *testing.F) {
	fuzzDecoder(f, codec.JPEG2000, "ts/mr_j2k_lossless.dcm", "ts/ct_signed_j2k_lossless.dcm", "ts/mr_j2k_lossy.dcm")
}

func FuzzHTJ2K(f *testing.F) {
	for _, p := range []string{"mr_htj2k_lossless.j2c", "mr_htj2k_lossy.j2c"} {
		b, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(176), uint16(176), uint8(1), uint8(16), uint8(12), uint8(0))
	}
	b, err := os.ReadFile(filepath.Join("testdata", "rgb_htj2k_lossless.j2c"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, uint16(100), uint16(100), uint8(3), uint8(8), uint8(8), uint8(0))
	fuzzDecoder(f, codec.HTJ2K)
}
