package storage

import (
	"reflect"
	"testing"

	"github.com/cloudpacs/pacs/internal/dcm"
)

// FuzzDecodeFrames: stored frame and bulk tables that are corrupt give an
// error, never a panic or a huge allocation; what decodes re-encodes to
// the same bytes.
func FuzzDecodeFrames(f *testing.F) {
	f.Add(EncodeFrames(nil, []dcm.Frame{{{Offset: 1000, Length: 32768}}, {{Offset: 33768, Length: 32768}}}))
	f.Add(EncodeFrames(nil, []dcm.Frame{{{Offset: 10, Length: 5}, {Offset: 23, Length: 7}}}))
	f.Add(EncodeBulk(nil, []dcm.BulkRef{{Path: "7FE00010", VR: "OW", Span: dcm.Span{Offset: 900, Length: 8192}}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		if fr, err := DecodeFrames(b); err == nil {
			// No frames may come back as nil or empty: the same to callers.
			if again, err := DecodeFrames(EncodeFrames(nil, fr)); err != nil || len(again) != len(fr) || (len(fr) > 0 && !reflect.DeepEqual(again, fr)) {
				t.Fatalf("frames do not round-trip: %v\n%v\n%v", err, fr, again)
			}
		}
		if br, err := DecodeBulk(b); err == nil {
			if again, err := DecodeBulk(EncodeBulk(nil, br)); err != nil || !reflect.DeepEqual(again, br) {
				t.Fatalf("bulk refs do not round-trip: %v\n%v\n%v", err, br, again)
			}
		}
	})
}
