package codec_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cloudpacs/pacs/internal/codec"
	"github.com/cloudpacs/pacs/internal/codec/codectest"
)

// TestDecode_dcmtkEncoded covers variants the corpus lacks by encoding
// native corpus files with dcmtk (dcmcjpls, dcmcjpeg) at test time:
// JPEG-LS near-lossless, signed JPEG-LS, colour JPEG-LS in every
// interleave mode, and
// 12-bit JPEG extended. Each decode is compared with dcmtk's decoder:
// JPEG-LS decoding is deterministic, so near-lossless too must match
// exactly; DCT decoding within 45 dB PSNR.
func TestDecode_dcmtkEncoded(t *testing.T) {
	for _, c := range []struct {
		name, tool, src string
		args            []string
		exact           bool
	}{
		{"jls-near-lossless-mono12", "dcmcjpls", "images/mr_prostate_t2_12bit.dcm", []string{"+en", "+md", "3"}, true},
		{"jls-lossless-signed", "dcmcjpls", "images/ct_small_signed_no_window.dcm", []string{"+el"}, true},
		{"jls-rgb-interleave-none", "dcmcjpls", "images/us_rgb_planar_explicit_le.dcm", []string{"+in"}, true},
		{"jls-rgb-interleave-sample", "dcmcjpls", "images/us_rgb_planar_explicit_le.dcm", []string{"+is"}, true},
		{"jls-rgb-near-lossless-line", "dcmcjpls", "images/us_rgb_planar_explicit_le.dcm", []string{"+en", "+il"}, true},
		{"jpeg-extended-12bit", "dcmcjpeg", "images/mr_prostate_t2_12bit.dcm", []string{"+ee"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tool := codectest.RequireTool(t, c.tool, "dcmtk")
			out := filepath.Join(t.TempDir(), "enc.dcm")
			codectest.Run(t, tool, append(c.args, filepath.Join(codectest.Corpus, c.src), out)...)
			f := codectest.Load(t, out)
			ts := f.Header.TransferSyntaxUID
			if _, ok := codec.Lookup(ts); !ok {
				codectest.Missing(t, fmt.Sprintf("no decoder for %s in this build (-tags cgocodecs)", codec.Name(ts)))
			}
			ref, ok := codectest.ReferenceDecode(t, out, ts)
			if !ok {
				t.Fatalf("no reference decoder for %s", ts)
			}
			got, err := f.Decode(0)
			if err != nil {
				t.Fatalf("%s: %v", codec.Name(ts), err)
			}
			want, err := ref.Decode(0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Data) != len(want.Data) {
				t.Fatalf("%d samples, reference %d", len(got.Data), len(want.Data))
			}
			if c.exact {
				if !equal(got.Data, want.Data) {
					t.Fatalf("%s decode differs from dcmtk's", codec.Name(ts))
				}
				return
			}
			p := psnr(got.Data, want.Data, got.BitsStored)
			t.Logf("%s: PSNR %.1f dB against dcmtk", codec.Name(ts), p)
			if p < 45 {
				t.Errorf("PSNR %.1f dB < 45", p)
			}
		})
	}
}
