package storage

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// The SQL backends keep metadata documents zstd-compressed; the encoder
// and decoder are shared (EncodeAll/DecodeAll are safe for concurrent use).
var (
	zenc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	zdec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
)

// CompressDoc compresses a metadata document for storage (nil stays nil).
func CompressDoc(b []byte) []byte {
	if b == nil {
		return nil
	}
	return zenc.EncodeAll(b, make([]byte, 0, len(b)/4+64))
}

// DecompressDoc appends the document compressed in b to dst (empty b:
// dst unchanged, nil when dst is nil).
func DecompressDoc(dst, b []byte) ([]byte, error) {
	if len(b) == 0 {
		return dst, nil
	}
	out, err := zdec.DecodeAll(b, dst)
	if err != nil {
		return nil, fmt.Errorf("storage: decompress: %w", err)
	}
	return out, nil
}

// DecodeStored fills the parts of inst that an index row keeps encoded:
// the frame table, the bulk table and the compressed metadata.
func DecodeStored(inst *Instance, frames, bulk, meta []byte) error {
	var err error
	if inst.Frames, err = DecodeFrames(frames); err != nil {
		return fmt.Errorf("instance %s: %w", inst.SOPInstanceUID, err)
	}
	if inst.Bulk, err = DecodeBulk(bulk); err != nil {
		return fmt.Errorf("instance %s: %w", inst.SOPInstanceUID, err)
	}
	if inst.Metadata, err = DecompressDoc(nil, meta); err != nil {
		return fmt.Errorf("instance %s: %w", inst.SOPInstanceUID, err)
	}
	return nil
}
