package codec_test

import (
	"errors"
	"runtime"
	"testing"

	"github.com/cloudpacs/pacs/internal/codec"
)

// A native frame shorter than its attributes say (the archive stores
// such instances as sent) fails with ErrCorrupt before the samples of
// the image it claims are allocated: 12 bytes claiming 16384 × 16384 RGB
// must not cost gigabytes.
func TestDecode_shortNativeFrame(t *testing.T) {
	info := codec.PixelInfo{Rows: 16384, Columns: 16384, SamplesPerPixel: 3, BitsAllocated: 16, PhotometricInterpretation: "RGB"}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	_, err := codec.Decode(codec.ExplicitVRLittleEndian, make([]byte, 12), info)
	runtime.ReadMemStats(&ms1)
	if !errors.Is(err, codec.ErrCorrupt) {
		t.Fatalf("Decode = %v, want ErrCorrupt", err)
	}
	if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 1<<20 {
		t.Errorf("allocated %d bytes to refuse a 12-byte frame", a)
	}
}
