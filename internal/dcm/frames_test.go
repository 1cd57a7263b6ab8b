package dcm_test

import (
	"bytes"
	"testing"

	"github.com/cloudpacs/pacs/internal/dcm"
	"github.com/cloudpacs/pacs/internal/dcm/dcmtest"
)

// Pixel data that contradicts its attributes parses: the archive keeps
// what it was sent, and the frames are what the value holds.
func TestParse_framesContradictingAttributes(t *testing.T) {
	const le, rle = dcmtest.ExplicitVRLittleEndian, dcmtest.RLELossless
	img := func(ts string, rows, cols, bits, frames int) *dcmtest.Object {
		return dcmtest.Image(ts, "2.25.1", "2.25.2", "2.25.3", rows, cols, 1, bits, frames)
	}
	soi := []byte{0xFF, 0xD8, 0xFF, 0xD9}
	for _, c := range []struct {
		name string
		obj  *dcmtest.Object
		want []int64 // frame lengths (sum of spans)
	}{
		{"native, as long as the attributes say", img(le, 2, 2, 8, 3).Native(make([]byte, 12)), []int64{4, 4, 4}},
		{"native, short: the last frame cut", img(le, 2, 2, 8, 3).Native(make([]byte, 10)), []int64{4, 4, 2}},
		{"native, short of a whole frame", img(le, 2, 2, 8, 3).Native(make([]byte, 8)), []int64{4, 4}},
		{"native, shorter than one frame", img(le, 4, 4, 16, 1).Native(make([]byte, 6)), []int64{6}},
		{"native, empty", img(le, 4, 4, 16, 1).Native(nil), []int64{0}},
		{"native, NumberOfFrames far too large", img(le, 2, 2, 8, 1000000).Native(make([]byte, 8)), []int64{4, 4}},
		{"fragments without markers for 3 frames", img(rle, 2, 2, 8, 3).Encapsulated(make([]byte, 6), make([]byte, 6)), []int64{12}},
		{"2 marked fragments for 3 frames", img(rle, 2, 2, 8, 3).Encapsulated(soi, soi), []int64{4, 4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, err := dcm.Parse(bytes.NewReader(c.obj.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, f := range h.Frames {
				var n int64
				for _, s := range f {
					n += s.Length
				}
				got = append(got, n)
			}
			if len(got) != len(c.want) {
				t.Fatalf("frame lengths %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("frame lengths %v, want %v", got, c.want)
				}
			}
		})
	}
}
